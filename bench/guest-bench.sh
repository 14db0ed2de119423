#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In-guest part of the dm-stream benchmark (started by bench/run.sh through
# selftests/run-guest; runs as root in a chroot of the host root, at the repo
# root, with dm-mod, dm-bufio and loop loaded and DM_DISABLE_UDEV=1).
#
# One origin loop device filled once with random data, one destination and one
# metadata loop device (all tmpfs-backed files under $BENCH_WORKDIR).  For each
# configuration and repetition (interleaved, order rotated per repetition):
# zero the destination and the metadata, drop caches, copy, check with cmp that
# the destination equals the origin (otherwise the run is invalid).
#
# Configurations:
#   dd            dd bs=1M iflag=direct oflag=direct origin -> destination
#   linear        the same dd, reading through a `linear` dm device over the origin
#                 (timed from table creation to the end of dd)
#   clone         dm-clone, default settings
#   clone-tuned   dm-clone, hydration_threshold/hydration_batch_size $BENCH_CLONE_TUNED
#   stream        dm-stream, default settings
#   stream-mi<N>  dm-stream with max_inflight N, for N in $BENCH_INFLIGHT
#   stream-mirror dm-stream in mirror mode (`1 mirror`): nothing writes, so
#                 this is what mirror mode costs idle streaming
#   stream-event  (only when named in BENCH_CONFIGS) dm-stream, default settings,
#                 completion awaited with `dmsetup wait` on its event counter
#   stream-dmsetup  (likewise) completion polled with `dmsetup status` every
#                 $BENCH_POLL s: shows what spawning dmsetup 20 times/s costs
# Target runs are timed from `dmsetup create` until the status says the copy is
# complete: dm-stream state `complete`, dm-clone hydrated == total. Both are
# polled the same way, by bench/dmwait.py: the DM_TABLE_STATUS ioctl with
# DM_NOFLUSH_FLAG (a flushing status makes dm-clone commit its metadata) every
# $BENCH_IOCTL_POLL s from one process. BENCH_WAIT=dmsetup (or no python3)
# polls with `dmsetup status --noflush` every $BENCH_POLL s instead.
#
# Usage: bench/guest-bench.sh [--out DIR]
# Environment (defaults): BENCH_SIZE_MIB (256), BENCH_REGION (128 sectors),
#   BENCH_REPS (3), BENCH_INFLIGHT ("16 64"), BENCH_CLONE_TUNED ("256 64"),
#   BENCH_STREAM_DEFAULT_INFLIGHT (the module's default max_inflight: that
#   value is left out of the sweep, since `stream` runs it),
#   BENCH_CONFIGS (all of the above), BENCH_RUN_TIMEOUT (120 s per run),
#   BENCH_WAIT (ioctl), BENCH_IOCTL_POLL (0.01), BENCH_POLL (0.05), BENCH_WORKDIR (/tmp/dmstream-bench), DMCLONE_KO (path
#   of dm-clone.ko if the clone target is not loaded yet), DMSTREAM_KO
#   (dm-stream/dm-stream.ko, insmod'ed only if the stream target is missing),
#   BENCH_HOST_STATE (file written by run.sh), BENCH_QUIET_BUDGET (300 s in
#   all of waiting for a quiet host), BENCH_RETRIES (2 reruns of a busy run),
#   BENCH_PARTS ("copy fg": the copy runs above, bench/guest-fg.sh's
#   foreground runs, and `merge`: bench/guest-merge.sh's snapshot merges).
# Output: DIR/runs.csv (one line per run; valid = 1, 0 or skip; host_busy = 1
# when other guests ran on the host meanwhile), DIR/env.txt, DIR/dmesg.txt;
# every CSV line is also printed on stdout prefixed with "BENCH ".
# Exit status: 0 when every run that could be attempted was valid, 1 otherwise,
# 2 on setup failure.

set -u

OUT=${BENCH_OUT:-bench/out}
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "guest-bench: unknown argument $1" >&2; exit 2 ;;
	esac
done

SIZE_MIB=${BENCH_SIZE_MIB:-256}
PARTS=" ${BENCH_PARTS:-copy fg} "
has_part() { [[ $PARTS == *" $1 "* ]]; }
REGION=${BENCH_REGION:-128}
REPS=${BENCH_REPS:-3}
INFLIGHT=${BENCH_INFLIGHT-16 64}
DEFMI=${BENCH_STREAM_DEFAULT_INFLIGHT:-}
CLONE_TUNED=${BENCH_CLONE_TUNED:-256 64}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
POLL=${BENCH_POLL:-0.05}
IOCTL_POLL=${BENCH_IOCTL_POLL:-0.01}
WAIT=${BENCH_WAIT:-ioctl}
WORK=${BENCH_WORKDIR:-/tmp/dmstream-bench}
STREAM_KO=${DMSTREAM_KO:-dm-stream/dm-stream.ko}
CLONE_KO=${DMCLONE_KO:-}
META_MIB=8
SECTORS=$((SIZE_MIB * 2048))
PFX=bench

log() { echo "guest-bench: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

mkdir -p "$OUT" || { log "cannot create $OUT"; exit 2; }
CSV=$OUT/runs.csv
echo "config,rep,seconds,mib_per_s,valid,host_busy,note" > "$CSV" || exit 2

# The run functions record() their result; the main loop emit()s it, or
# drops it and runs again when the host was busy meanwhile.
record() {	# config rep seconds valid note
	R_CFG=$1 R_REP=$2 R_SEC=$3 R_VALID=$4 R_NOTE=$5
}
emit() {	# host_busy
	local mibs=""
	if [ -n "$R_SEC" ] && [ "$R_VALID" = 1 ]; then
		mibs=$(awk -v s="$R_SEC" -v m="$SIZE_MIB" 'BEGIN { if (s > 0) printf "%.1f", m / s }')
	fi
	local line="$R_CFG,$R_REP,$R_SEC,$mibs,$R_VALID,$1,${R_NOTE//,/;}"
	echo "$line" >> "$CSV"
	echo "BENCH $line"
}

# Other QEMU guests on the host slow this one down. bench/run.sh samples the
# host every second into $BENCH_HOST_STATE: "<other guests now> <busy samples
# so far>". Before a run wait (within a total budget) until the host is quiet;
# a run during which the host was busy is run again (up to $BENCH_RETRIES
# times), else kept with host_busy=1.
HOST_STATE=${BENCH_HOST_STATE:-}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-300}
RETRIES=${BENCH_RETRIES:-2}
QUIET_SPENT=0
host_state() {
	local st=""
	[ -n "$HOST_STATE" ] && st=$(cat "$HOST_STATE" 2>/dev/null)
	echo "${st:-0 0}"
}
wait_quiet() {
	local t0=$EPOCHSECONDS n c
	[ "$QUIET_SPENT" -lt "$QUIET_BUDGET" ] || return 0
	read -r n c <<< "$(host_state)"
	[ "$n" -gt 0 ] || return 0
	log "host busy ($n other guests): waiting"
	while [ "$n" -gt 0 ] && [ $((QUIET_SPENT + EPOCHSECONDS - t0)) -lt "$QUIET_BUDGET" ]; do
		sleep 1
		read -r n c <<< "$(host_state)"
	done
	QUIET_SPENT=$((QUIET_SPENT + EPOCHSECONDS - t0))
	[ "$n" -gt 0 ] && log "quiet-wait budget (${QUIET_BUDGET}s) spent: running on a busy host"
}

# ---------------------------------------------------------------- setup

cleanup() {
	local d
	for d in $(dmsetup ls 2>/dev/null | awk -v p="$PFX-" 'index($1, p) == 1 { print $1 }'); do
		dmsetup remove --retry "$d" >/dev/null 2>&1
	done
	for d in ${ORIG:-} ${DEST:-} ${META:-}; do
		losetup -d "$d" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

have_target() { dmsetup targets 2>/dev/null | awk '{ print $1 }' | grep -qx "$1"; }

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "kernel: $(uname -r) ($(uname -v))"
	echo "cpus: $(nproc)"
	echo "mem: $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)"
	echo "size_mib: $SIZE_MIB"
	echo "region_sectors: $REGION"
	echo "reps: $REPS"
	echo "parts:$PARTS"
	echo "clone_tuned: $CLONE_TUNED"
	echo "inflight: $INFLIGHT"
	echo "stream_default_inflight: ${DEFMI:-?}"
	command -v python3 >/dev/null || WAIT=dmsetup
	if [ "$WAIT" = ioctl ]; then
		echo "completion: DM_TABLE_STATUS ioctl (noflush) every $IOCTL_POLL s (bench/dmwait.py)"
	else
		echo "completion: dmsetup status --noflush every $POLL s"
	fi
	[ -n "${BENCH_REV:-}" ] && echo "dm-stream: $BENCH_REV"
	[ -n "${BENCH_HOST:-}" ] && echo "host: $BENCH_HOST"
} > "$OUT/env.txt"

for m in dm-mod dm-bufio loop dm-persistent-data; do
	modprobe "$m" 2>/dev/null || log "modprobe $m failed"
done

CLONE_OK=1
if ! have_target clone; then
	if [ -n "$CLONE_KO" ] && [ -f "$CLONE_KO" ]; then
		insmod "$CLONE_KO" || log "insmod $CLONE_KO failed"
	fi
	have_target clone || { CLONE_OK=0; log "no clone target: dm-clone runs skipped"; }
fi
STREAM_OK=1
if ! have_target stream; then
	if [ -f "$STREAM_KO" ]; then
		insmod "$STREAM_KO" || log "insmod $STREAM_KO failed"
	fi
	have_target stream || { STREAM_OK=0; log "no stream target: dm-stream runs skipped"; }
fi
dmsetup targets | sed 's/^/target: /' >> "$OUT/env.txt"

avail_mib=$(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
need_mib=$((2 * SIZE_MIB + META_MIB + 128))
# The merge runs' COW device: up to a third of the volume.
has_part merge && need_mib=$((need_mib + SIZE_MIB / 3 + 8))
if [ "$avail_mib" -lt "$need_mib" ]; then
	log "not enough memory: $avail_mib MiB available, $need_mib MiB needed (use --mem or a smaller BENCH_SIZE_MIB)"
	exit 2
fi

rm -rf "$WORK"
mkdir -p "$WORK" || exit 2
if ! mountpoint -q /tmp && [ "$WORK" = /tmp/dmstream-bench ]; then
	mount -t tmpfs -o size=$((need_mib))m benchtmp "$WORK" || exit 2
fi
log "filling the origin with $SIZE_MIB MiB of random data"
t0=$(now)
dd if=/dev/urandom of="$WORK/origin.img" bs=1M count="$SIZE_MIB" status=none || exit 2
log "  $(elapsed "$t0" "$(now)") s"
truncate -s "${SIZE_MIB}M" "$WORK/dest.img" || exit 2
truncate -s "${META_MIB}M" "$WORK/meta.img" || exit 2
# shellcheck disable=SC2015 # a failure of any losetup ends the run
ORIG=$(losetup -f --show "$WORK/origin.img") &&
DEST=$(losetup -f --show "$WORK/dest.img") &&
META=$(losetup -f --show "$WORK/meta.img") || { log "losetup failed"; exit 2; }
echo "devices: origin=$ORIG dest=$DEST meta=$META (tmpfs-backed loop)" >> "$OUT/env.txt"

prepare() {
	dd if=/dev/zero of="$WORK/dest.img" bs=1M count="$SIZE_MIB" conv=notrunc status=none
	dd if=/dev/zero of="$WORK/meta.img" bs=1M count="$META_MIB" conv=notrunc status=none
	blockdev --flushbufs "$ORIG" "$DEST" "$META" 2>/dev/null
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

verify() { cmp -s "$WORK/origin.img" "$WORK/dest.img"; }

# ---------------------------------------------------------------- waiting

# The status fields after "<start> <len> <target>".
status_of() { dmsetup status "$@" 2>/dev/null | cut -d' ' -f4-; }

# dm-stream: wait on the event counter until state is complete.
# Prints the final status; returns 0 on complete, 1 on failure, 2 on timeout.
wait_stream() {
	local name=$1 deadline=$2 ev st left
	while :; do
		ev=$(dmsetup info -c --noheadings -o events "$name" 2>/dev/null | tr -d ' ')
		st=$(status_of "$name")
		case $(echo "$st" | awk '{ print $6 " " $7 }') in
		complete*) echo "$st"; return 0 ;;
		*" fail"|*" ro") echo "$st"; return 1 ;;
		esac
		case $st in Fail*|"") echo "$st"; return 1 ;; esac
		left=$(awk -v d="$deadline" -v n="$EPOCHREALTIME" 'BEGIN { l = d - n; print (l > 0) ? int(l) + 1 : 0 }')
		[ "$left" -gt 0 ] || { echo "$st"; return 2; }
		timeout "$left" dmsetup wait "$name" "${ev:-0}" >/dev/null 2>&1
	done
}

# dm-stream, polling with dmsetup status.
wait_stream_poll() {
	local name=$1 deadline=$2 st
	while :; do
		st=$(status_of --noflush "$name")
		case $st in Fail*|"") echo "$st"; return 1 ;; esac
		case $(echo "$st" | awk '{ print $6 " " $7 }') in
		complete*) echo "$st"; return 0 ;;
		*" fail"|*" ro") echo "$st"; return 1 ;;
		esac
		if awk -v d="$deadline" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n > d) }'; then
			echo "$st"; return 2
		fi
		sleep "$POLL"
	done
}

# dm-clone: poll "<hydrated>/<total regions>" (4th status field).
wait_clone() {
	local name=$1 deadline=$2 st h
	while :; do
		st=$(status_of --noflush "$name")
		case $st in Fail*|"") echo "$st"; return 1 ;; esac
		h=$(echo "$st" | awk '{ print $4 }')
		[ "${h%/*}" = "${h#*/}" ] && { echo "$st"; return 0; }
		case $st in *" ro"|*" Fail") echo "$st"; return 1 ;; esac
		if awk -v d="$deadline" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n > d) }'; then
			echo "$st"; return 2
		fi
		sleep "$POLL"
	done
}

# ---------------------------------------------------------------- runs

run_dd() {	# rep
	local t0 t1 ok=1 note=""
	t0=$(now)
	timeout "$RUN_TIMEOUT" dd if="$ORIG" of="$DEST" bs=1M count="$SIZE_MIB" \
		iflag=direct oflag=direct status=none || { ok=0; note="dd failed"; }
	t1=$(now)
	[ $ok = 1 ] && ! verify && { ok=0; note="destination differs from origin"; }
	record dd "$1" "$(elapsed "$t0" "$t1")" "$ok" "$note"
}

run_linear() {	# rep
	local name=$PFX-linear t0 t1 ok=1 note=""
	t0=$(now)
	if dmsetup create "$name" --table "0 $SECTORS linear $ORIG 0"; then
		timeout "$RUN_TIMEOUT" dd if="/dev/mapper/$name" of="$DEST" bs=1M \
			count="$SIZE_MIB" iflag=direct oflag=direct status=none ||
			{ ok=0; note="dd failed"; }
		t1=$(now)
		dmsetup remove --retry "$name"
	else
		t1=$(now); ok=0; note="dmsetup create failed"
	fi
	[ $ok = 1 ] && ! verify && { ok=0; note="destination differs from origin"; }
	record linear "$1" "$(elapsed "$t0" "$t1")" "$ok" "$note"
}

# run_target config rep kind table-args
create_failed() {	# cfg rep kind
	record "$1" "$2" "" 0 "dmsetup create failed: $(dmesg | grep -E "table: .*: $3: |$3: " | tail -n 1 | sed 's/^\[[ 0-9.]*\] //' | cut -c1-160)"
}

run_target() {
	local cfg=$1 rep=$2 kind=$3 args=$4 name=$PFX-$1 t0 t1 st rc ok=1 note="" deadline secs
	local table="0 $SECTORS $kind $META $DEST $ORIG $REGION${args:+ $args}"
	if [ "$WAIT" = ioctl ] && [ "$cfg" != stream-event ] && [ "$cfg" != stream-dmsetup ]; then
		# dmwait.py creates the device and times it itself.
		st=$(python3 bench/dmwait.py "$name" "$kind" "$table" "$RUN_TIMEOUT" "$IOCTL_POLL"); rc=$?
		secs=${st%% *}; st=${st#* }; st=${st#* }
		if [ "$st" = dmsetup-create-failed ]; then
			create_failed "$cfg" "$rep" "$kind"
			return 1
		fi
	else
		t0=$(now)
		deadline=$(awk -v t="$t0" -v d="$RUN_TIMEOUT" 'BEGIN { printf "%.3f", t + d }')
		if ! dmsetup create "$name" --table "$table"; then
			create_failed "$cfg" "$rep" "$kind"
			return 1
		fi
		if [ "$cfg" = stream-dmsetup ] || { [ "$kind" = stream ] && [ "$cfg" != stream-event ]; }; then
			st=$(wait_stream_poll "$name" "$deadline"); rc=$?
		elif [ "$kind" = stream ]; then
			st=$(wait_stream "$name" "$deadline"); rc=$?
		else
			st=$(wait_clone "$name" "$deadline"); rc=$?
		fi
		t1=$(now)
		secs=$(elapsed "$t0" "$t1")
	fi
	case $rc in
	0) ;;
	1) ok=0; note="target failed: $st" ;;
	*) ok=0; note="timeout after ${RUN_TIMEOUT}s: $st" ;;
	esac
	dmsetup remove --retry "$name" >/dev/null 2>&1 ||
		{ ok=0; note="${note:+$note; }remove failed"; dmsetup remove --force "$name" >/dev/null 2>&1; }
	if [ $ok = 1 ] && ! verify; then
		ok=0; note="destination differs from origin (final status: $st)"
	fi
	[ "$kind" = stream ] && [ $ok = 1 ] && [ "$(echo "$st" | awk '{ print $8 }')" != 0 ] &&
		note="copy errors: $(echo "$st" | awk '{ print $8 }')"
	record "$cfg" "$rep" "$secs" "$ok" "$note"
	[ $ok = 1 ]
}

declare -A ARGS KIND
CONFIGS_ALL="dd linear"
if [ $CLONE_OK = 1 ]; then
	# shellcheck disable=SC2086 # two words: threshold and batch size
	set -- $CLONE_TUNED
	KIND[clone]=clone; ARGS[clone]=""
	KIND[clone-tuned]=clone; ARGS[clone-tuned]="0 4 hydration_threshold $1 hydration_batch_size $2"
	CONFIGS_ALL+=" clone clone-tuned"
fi
if [ $STREAM_OK = 1 ]; then
	KIND[stream]=stream; ARGS[stream]=""
	CONFIGS_ALL+=" stream"
	KIND[stream-mirror]=stream; ARGS[stream-mirror]="1 mirror"
	CONFIGS_ALL+=" stream-mirror"
	KIND[stream-event]=stream; ARGS[stream-event]=""
	KIND[stream-dmsetup]=stream; ARGS[stream-dmsetup]=""
	for n in $INFLIGHT; do
		[ "$n" = "$DEFMI" ] && continue
		KIND[stream-mi$n]=stream; ARGS[stream-mi$n]="2 max_inflight $n"
		CONFIGS_ALL+=" stream-mi$n"
	done
fi
CONFIGS=${BENCH_CONFIGS:-$CONFIGS_ALL}
for c in $CONFIGS; do echo "config: $c ${KIND[$c]:-} ${ARGS[$c]:-}" >> "$OUT/env.txt"; done
has_part copy && [ $CLONE_OK = 0 ] && {
	record clone 0 "" skip "clone target unavailable"; emit 0
	record clone-tuned 0 "" skip "clone target unavailable"; emit 0
}
has_part copy && [ $STREAM_OK = 0 ] && { record stream 0 "" skip "stream target unavailable"; emit 0; }
copy_reps=$REPS
has_part copy || copy_reps=0

declare -A BROKEN
read -r -a list <<<"$CONFIGS"
n=${#list[@]}
fail=0
dmesg_start=$(dmesg | wc -l)
t_all=$(now)
for ((rep = 1; rep <= copy_reps; rep++)); do
	for ((i = 0; i < n; i++)); do
		cfg=${list[(i + rep - 1) % n]}
		if [ -n "${BROKEN[$cfg]:-}" ]; then
			record "$cfg" "$rep" "" skip "skipped: an earlier run of it failed"
			emit 0
			continue
		fi
		if [ "$cfg" != dd ] && [ "$cfg" != linear ] && [ -z "${KIND[$cfg]:-}" ]; then
			log "unknown or unavailable config $cfg"; continue
		fi
		for ((try = 0; ; try++)); do
			wait_quiet
			read -r _ c0 <<< "$(host_state)"
			prepare
			case $cfg in
			dd) run_dd "$rep" ;;
			linear) run_linear "$rep" ;;
			*)
				# A target that fails or hangs once is not run
				# again: keep the total time bounded.
				run_target "$cfg" "$rep" "${KIND[$cfg]}" "${ARGS[$cfg]}" ||
					BROKEN[$cfg]=1
				;;
			esac
			read -r n1 c1 <<< "$(host_state)"
			busy=0
			[ "$c1" != "$c0" ] || [ "$n1" -gt 0 ] && busy=1
			if [ $busy = 1 ] && [ "$R_VALID" = 1 ] && [ $try -lt "$RETRIES" ] &&
			   [ "$QUIET_SPENT" -lt "$QUIET_BUDGET" ]; then
				log "$cfg rep $rep: host busy during the run ($R_SEC s): again"
				continue
			fi
			emit $busy
			break
		done
	done
done
log "all runs: $(elapsed "$t_all" "$(now)") s"
awk -F, 'NR > 1 && $5 == 0 { bad = 1 } END { exit !bad }' "$CSV" && fail=1

# Foreground I/O while copying, partial write latency, an NBD origin, a thin
# destination (bench/guest-fg.sh), on the same devices.
if has_part fg && [ "${BENCH_FG_SECONDS:-20}" -gt 0 ] && { [ $STREAM_OK = 1 ] || [ $CLONE_OK = 1 ]; } &&
   command -v fio >/dev/null; then
	BENCH_ORIG=$ORIG BENCH_DEST=$DEST BENCH_META=$META BENCH_SECTORS=$SECTORS \
		BENCH_REGION=$REGION BENCH_PREPARE="$WORK" BENCH_REPS=$REPS \
		BENCH_CLONE_TUNED="$CLONE_TUNED" CLONE_OK=$CLONE_OK STREAM_OK=$STREAM_OK \
		bash bench/guest-fg.sh --out "$OUT" || fail=1
elif has_part fg; then
	log "fg part skipped (no fio, or neither target available)"
fi

# Merging a snapshot back (bench/guest-merge.sh): the destination serves as
# the volume, restored from the origin's file before every run.
if has_part merge; then
	BENCH_MERGE_REAL=$DEST BENCH_META=$META BENCH_SECTORS=$SECTORS BENCH_PREPARE="$WORK" \
		BENCH_MERGE_PRISTINE="$WORK/origin.img" \
		bash bench/guest-merge.sh --out "$OUT" || fail=1
fi

dmesg > "$OUT/dmesg.txt"
if dmesg | tail -n +"$((dmesg_start + 1))" |
	grep -E 'BUG:|WARNING:|Oops|KASAN:|circular locking|general protection|Call Trace' > "$OUT/dmesg-bad.txt"; then
	log "kernel reported problems during the bench (see dmesg-bad.txt)"
	echo "dmesg: PROBLEMS (see dmesg-bad.txt)" >> "$OUT/env.txt"
	fail=1
else
	rm -f "$OUT/dmesg-bad.txt"
fi
exit $fail
