#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_soak_01: fio with verification on a streaming target while suspends,
# reloads, rate and max_inflight changes, pauses and continues hit it.
#
# A 64 MiB target (64 KiB regions) streams random origin data under a rate
# limit. Four fio write jobs, each on its own 6 MiB area (at 0, 16, 32 and
# 48 MiB, so the copier reaches some of them late), write every block of
# their area exactly once (a random permutation, one block size per job:
# 4 KiB and 12 KiB split regions and make copies, 64 KiB and 192 KiB cover
# whole regions), rate-limited so that a pass lasts about the soak, and
# verify with crc32c as they go (verify_backlog) and at the end (do_verify);
# two read jobs read the whole device with mixed block sizes. Meanwhile a
# loop picks, for a bounded time, one of: suspend/resume, reload of the same
# table (dmsetup load + suspend + resume), rate change, max_inflight change,
# pause or continue; and every few operations it reads a random MiB of the
# area fio never writes and compares it with the origin's. The streaming
# must still be in progress when the loop ends (the output says so, or says
# that it was not).
#
# Then: fio exited 0 with no verify error, no kernel warning, copied never
# went down and the mode stayed rw, every operation succeeded; with the rate
# lifted, streaming completes (state complete, copied == total); the area fio
# never wrote equals the origin, a verify-only replay of the fio jobs passes,
# and the destination holds exactly what the device shows.
#
# Duration: 60 s (slice), 300 s with DMSTREAM_FUZZ=full; DMSTREAM_SOAK_SECS
# overrides both. The operation sequence follows the seed (fuzz_helpers.sh).

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"
. "$(dirname "$0")/fuzz_helpers.sh"

require_cmd losetup fio

sh_start 9
fz_init
SECS=${DMSTREAM_SOAK_SECS:-$([[ -n $FZ_FULL ]] && echo 300 || echo 60)}
RANDOM=$FZ_SEED

MB=64
LEN=$((MB * 2048))
RS=128
NAME=soak01
DEV=$(dm_dev $NAME)
AREA_MB=6
AREAS=(0 16 32 48)			# MiB offsets of the four fio areas
BSS=(4k 12k 64k 192k)
# Rates (KiB/s): a quarter of the device in the soak at most, on average
# much less; the fio writes copy their own areas' regions.
MAX_RATE=$((MB * 1024 / 4 / SECS))
[[ $MAX_RATE -ge 16 ]] || MAX_RATE=16
RATES=($((MAX_RATE / 8)) $((MAX_RATE / 4)) $((MAX_RATE / 2)) "$MAX_RATE")
W=$TEST_TMP/soak
mkdir -p "$W"

sh_stream_loops $MB 1

# mib_md5s DEV ARRAY: the md5 of every MiB of DEV into ARRAY (4 processes).
mib_md5s()
{
	local -n _out=$2
	local f sum

	rm -rf "$W/mib" && mkdir "$W/mib" &&
	sh_read "$1" | split -a 3 -d -b 1M - "$W/mib/" || return 1
	_out=()
	while read -r sum f; do
		_out[10#${f##*/}]=$sum
	done < <(md5sum "$W/mib/"*)
	rm -rf "$W/mib"
}

# The untouched MiBs (not in a fio area).
UNTOUCHED=()
for ((m = 0; m < MB; m++)); do
	in_area=
	for a in "${AREAS[@]}"; do
		[[ $m -ge $a && $m -lt $((a + AREA_MB)) ]] && in_area=1
	done
	[[ -n $in_area ]] || UNTOUCHED+=("$m")
done
mib_md5s "$ORIG" ORIG_MD5 || ktap_bail "cannot read the origin"

rate=${RATES[0]}
if dm_create $NAME "0 $LEN stream $META $DEST $ORIG $RS 2 rate $rate"; then
	ktap_ok "streaming target created (rate $rate KiB/s, ${SECS} s soak, rates: ${RATES[*]})"
else
	ktap_fail "streaming target created" "$DM_ERR"
	ktap_bail "no target"
fi
kmsg "dm-stream selftest: $TEST_NAME: soak starts"

# fio_args RATE: append to FIO the options of the write jobs, one per area,
# each limited to RATE KiB/s (0: no limit, for the verify-only replay).
fio_args()
{
	local i a
	for ((i = 0; i < ${#AREAS[@]}; i++)); do
		a=${AREAS[i]}
		# shellcheck disable=SC2054 # --rate=,N: writes only
		FIO+=(--name="w$i" --filename="$DEV" --rw=randwrite --bs="${BSS[i]}"
			--offset="${a}M" --size="${AREA_MB}M" --io_size="${AREA_MB}M"
			--randrepeat=1 --randseed=$((FZ_SEED + i))
			--ioengine=psync --direct=1 --verify=crc32c --verify_fatal=1
			--verify_backlog=32 --do_verify=1
			--rate=,"$1"k)
	done
}
FIO=()
fio_args $((AREA_MB * 1024 / SECS))
# Readers: the whole device, mixed block sizes, as long as the soak.
READERS=()
for r in 1 2; do
	READERS+=(--name="r$r" --filename="$DEV" --rw=randread --ioengine=psync
		--direct=1 --bssplit=4k/50:64k/30:256k/20 --time_based --runtime="$SECS"
		--randseed=$((FZ_SEED + 10 + r)))
done

fio --output="$W/fio.out" "${FIO[@]}" "${READERS[@]}" >/dev/null 2>"$W/fio.err" &
fio_pid=$!

# --- the operations loop ------------------------------------------------------------
declare -A OPS OPS_BAD
paused=
last_copied=0
mono_ok=1 mode_ok=1
reads=0 bad_reads=0
# One status read per call: copied never goes down, the mode stays rw.
check_status()
{
	local f copied mode
	read -r -a f <<<"$(dmsetup status $NAME)"
	copied=${f[6]%%/*} mode=${f[9]:-}
	[[ $mode == rw ]] || mode_ok=
	if [[ -n $copied && $copied -lt $last_copied ]]; then
		mono_ok=
		ktap_diag "copied went down: $last_copied -> $copied"
	fi
	[[ -n $copied ]] && last_copied=$copied
}

op()
{
	local what=$1 rc=0 t
	shift
	case $what in
	suspend)
		dmsetup suspend $NAME || rc=1
		sleep 0.$((RANDOM % 5))
		dmsetup resume $NAME || rc=1 ;;
	reload)
		# The same table, loaded while the old one runs: the two share
		# the in-core metadata.
		if t=$(dmsetup table $NAME) && printf '%s\n' "$t" | dmsetup load $NAME; then
			dmsetup suspend $NAME || { rc=1; dmsetup clear $NAME; }
			dmsetup resume $NAME || rc=1
		else
			rc=1
		fi ;;
	*)
		dmsetup message $NAME 0 "$what" "$@" || rc=1 ;;
	esac
	OPS[$what]=$((${OPS[$what]:-0} + 1))
	[[ $rc -eq 0 ]] || OPS_BAD[$what]=$((${OPS_BAD[$what]:-0} + 1))
}

read_check()
{
	local m=${UNTOUCHED[RANDOM % ${#UNTOUCHED[@]}]} sum
	sum=$(dd if="$DEV" bs=1M skip="$m" count=1 iflag=direct status=none | md5sum)
	sum=${sum%% *}
	reads=$((reads + 1))
	if [[ $sum != "${ORIG_MD5[$m]}" ]]; then
		bad_reads=$((bad_reads + 1))
		ktap_diag "MiB $m of the device differs from the origin"
	fi
}

start=$SECONDS
OPS_N=0
while [[ $((SECONDS - start)) -lt $SECS ]]; do
	case $((RANDOM % 10)) in
	0|1) op suspend ;;
	2|3) op reload ;;
	4|5) op rate "${RATES[RANDOM % 4]}" ;;
	6) op max_inflight $((4 ** (RANDOM % 5))) ;;
	7|8) if [[ -n $paused ]]; then op continue; paused=; else op pause; paused=1; fi ;;
	9) sleep 1 ;;
	esac
	check_status
	[[ $((OPS_N % 4)) -eq 0 ]] && read_check
	OPS_N=$((OPS_N + 1))
done
[[ -n $paused ]] && op continue
state=$(sh_state $NAME) copied=$(sh_copied $NAME) total=$(sh_total $NAME)
fio_running=no
kill -0 $fio_pid 2>/dev/null && fio_running=yes
if [[ $copied -lt $total ]]; then
	ktap_diag "after $SECS s: streaming still in progress ($copied/$total regions copied, $state); fio still running: $fio_running"
else
	ktap_diag "after $SECS s: streaming was NOT in progress any more (complete before the soak ended); fio still running: $fio_running"
fi
summary=
for k in "${!OPS[@]}"; do
	summary+=" $k ${OPS[$k]}${OPS_BAD[$k]:+ (${OPS_BAD[$k]} failed)}"
done
ktap_diag "operations:$summary; reads of the untouched area: $reads"

wait $fio_pid
fio_rc=$?
verr=$(grep -ciE "verify.*(fail|error)|bad (magic|header)|crc32c" "$W/fio.out" "$W/fio.err" |
	awk -F: '{ s += $NF } END { print s + 0 }')
ktap_diag "fio: $(grep -oE 'err= *[0-9]+' "$W/fio.out" | sort | uniq -c | tr -s ' \n' ' ')"
if [[ $fio_rc -eq 0 && $verr -eq 0 ]]; then
	ktap_ok "fio: exit 0, no verify error"
else
	ktap_fail "fio: exit 0, no verify error" "exit $fio_rc, $verr verify messages"
	ktap_diag "$(grep -iE "verify|error|crc" "$W/fio.out" "$W/fio.err" | head -n 10)"
fi

nbad=0
for k in "${!OPS_BAD[@]}"; do
	nbad=$((nbad + OPS_BAD[$k]))
done
ktap_check "every operation succeeded ($nbad failed)" test "$nbad" -eq 0
ktap_check "copied never went down, mode stayed rw" test -n "$mono_ok" -a -n "$mode_ok"
ktap_check "reads of the area fio never writes match the origin ($reads reads, $bad_reads bad)" \
	test "$bad_reads" -eq 0

# --- completion and the final content ------------------------------------------------
# Wait for the completion event, however long it takes (the test's timeout
# catches a hang); a stall (copy errors) or another mode ends the wait.
wait_complete()
{
	local ev f
	while :; do
		ev=$(sh_event_nr $NAME)
		read -r -a f <<<"$(dmsetup status $NAME)"
		[[ ${f[8]:-} == complete ]] && return 0
		[[ ${f[9]:-} == rw && ${f[10]:-} == 0 ]] || return 1
		dmsetup wait $NAME "$ev" >/dev/null || return 1
	done
}

dmsetup message $NAME 0 rate 0 && dmsetup message $NAME 0 max_inflight 256
if wait_complete; then
	ktap_ok "streaming completes: $(sh_field $NAME 4) copied, $(sh_state $NAME)"
else
	ktap_fail "streaming completes" "status: $(dm_status $NAME)"
fi

ok=1
mib_md5s "$DEV" DEV_MD5 || ok=
mib_md5s "$DEST" DST_MD5 || ok=
for m in "${UNTOUCHED[@]}"; do
	[[ ${DEV_MD5[m]:-} == "${ORIG_MD5[m]}" ]] || { ok=; ktap_diag "MiB $m differs from the origin"; }
done
ktap_check "the area fio never wrote equals the origin (${#UNTOUCHED[@]} MiB)" test -n "$ok"

FIO=()
fio_args 0
fio --output="$W/fio2.out" "${FIO[@]}" --verify_only=1 >/dev/null 2>"$W/fio2.err"
fio2_rc=$?
ktap_check "a verify-only replay of the fio writes passes (exit $fio2_rc)" test $fio2_rc -eq 0 ||
	ktap_diag "$(grep -iE "verify|error|crc" "$W/fio2.out" "$W/fio2.err" | head -n 10)"

same=1
for ((m = 0; m < MB; m++)); do
	[[ ${DEV_MD5[m]:-x} == "${DST_MD5[m]:-y}" ]] || same=
done
bad=$(dmesg_since_mark | grep -cE 'BUG:|WARNING:|Oops|KASAN:|UBSAN:|circular locking|hung task|blocked for more than')
ktap_check "the destination holds what the device shows, no kernel warning ($bad)" \
	test -n "$same" -a "$bad" -eq 0
nops=0
for k in "${!OPS[@]}"; do
	nops=$((nops + OPS[$k]))
done
ktap_diag "soak totals: operations $nops, failed $nbad, untouched-area reads $reads, bad $bad_reads, fio verify errors $verr"
ktap_finish
