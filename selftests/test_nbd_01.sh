#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_nbd_01: a network origin. nbd-server on the loopback serves a 32 MiB
# file, /dev/nbdN holds it (request timeout NBD_T), and netem makes the
# loopback a WAN (10 ms each way, 4 Mbit/s): background copies queue up on
# the link, as they would on a real one. The stream's origin is a dm-linear
# shim over /dev/nbdN (nbd_helpers.sh: a dead nbd device cannot be reused
# while held, so the shim is swapped to a new one when the server is back).
# Regions of 64 KiB: 512 of them, 66 s of streaming at 4 Mbit/s.
#
# - Usable at once: while streaming, a read of an uncopied region returns
#   the origin's data.
# - Priority: the time one region takes to copy on the idle link (a partial
#   write into an uncopied region while paused) is measured first; then,
#   with background streaming at default settings (max_inflight 256) for a
#   few seconds, partial 4 KiB O_DIRECT writes into uncopied regions far
#   ahead of the cursor, each after 2 s without user I/O, must each take at
#   most 8x that + 0.5 s. (The 2.0 kernel had up to 16 MiB of copies in
#   flight ahead of such a write: 21.6 s seen, against a bound of 5.5 s.)
# - copy_on_read while paused: a hot set read twice; the second read adds
#   no reads on /dev/nbdN, both return the origin's data.
# - Origin gone: nbd-server killed while streaming: the stream reaches
#   `stalled` within NBD_T + 15 s, counts copy errors, raises a dm event;
#   a read of an uncopied region ends (fails or succeeds) within that bound;
#   copied regions still read right. The server restarted, the shim swapped
#   to a new nbd device, `continue`: the stream completes and holds the
#   origin plus the writes.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/nbd_helpers.sh"

require_cmd dmsetup dd md5sum cmp timeout
nh_require
sh_start 11

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))		# region size, bytes
MB=32				# origin size, MiB
N=$((MB * 1048576 / RB))	# regions
# nbd request timeout, s: the 2.0 kernel queued more than 30 s of copies on
# the link (a read waited 32 s); a shorter timeout would kill the connection
# there, and the priority check would fail on EIO instead of on latency.
NBD_T=60
STALL_BOUND=$((NBD_T + 15))	# s: origin gone -> stalled, reads end
S=nbd-s				# the stream
C=nbd-cor			# the copy_on_read stream
SHIM=nbd-orig			# the stream's origin, linear over /dev/nbdN

IMG=$TEST_TMP/origin.img	# what nbd-server serves
EXP=$TEST_TMP/expected.img	# what the stream must read
if ! { head -c $((MB * 1048576)) /dev/urandom >"$IMG" && cp "$IMG" "$EXP"; }; then
	ktap_bail "cannot write the origin image"
fi
if ! { DEST=$(make_loop $MB dest) && META=$(make_loop 1 meta) &&
       DEST2=$(make_loop $MB dest2) && META2=$(make_loop 1 meta2); }; then
	ktap_skip_all "cannot set up a loop device"
fi

nh_server_start "$IMG" || ktap_bail "nbd-server failed: $(tail -n 3 "$NH_LOG")"
NBD=$(nh_free_dev) || ktap_skip_all "no free nbd device"
nh_connect "$NBD" $NBD_T || ktap_bail "nbd-client failed: $(tail -n 3 "$NH_LOG")"
[[ $(sectors "$NBD") == $((MB * 2048)) ]] ||
	ktap_bail "$NBD has $(sectors "$NBD") sectors, expected $((MB * 2048))"
sh_setup nh_shim $SHIM "$NBD"
nh_netem_on 10ms 4mbit || ktap_skip_all "tc qdisc netem on lo failed: $(tail -n 2 "$NH_LOG")"
ktap_diag "origin: $SHIM over $NBD (nbd-client -t $NBD_T), lo: $(tc qdisc show dev lo)"

sh_setup dm_create $S "0 $((MB * 2048)) stream $META $DEST $(dm_dev $SHIM) $RS 1 paused"

# write4k REGION SEED: 4 KiB of pattern SEED, O_DIRECT, 8 KiB into REGION of
# the stream (a partial write: the region must be copied first), patched
# into $EXP when acknowledged; LAT_MS is its latency. Bounded by 120 s.
write4k()
{
	local f off rc

	f=$(pattern_file "$2" 8) || return 1
	off=$(($1 * RS + 16))
	nh_time_ms LAT_MS timeout 120 dd if="$f" of="$(dm_dev $S)" bs=4096 \
		seek=$((off / 8)) oflag=direct conv=notrunc status=none
	rc=$?
	[[ $rc -eq 0 ]] && sh_patch_file "$EXP" "$f" "$off"
	return $rc
}

# region_ok DEV IMG REGION [COUNT]: COUNT regions of DEV equal IMG's, read
# within STALL_BOUND.
region_ok()
{
	local a b

	a=$(timeout $STALL_BOUND dd if="$1" bs=$RB skip="$3" count="${4:-1}" \
		iflag=direct status=none | md5sum | cut -d' ' -f1)
	b=$(sh_region_md5 "$2" "$3" $RS "${4:-1}")
	[[ $a == "$b" ]]
}

_idle()
{
	[[ $(sh_copying "$1") == 0 ]]
}

_copied_gt()
{
	[[ $(sh_copied "$1") -gt $2 ]]
}

# ---- the time one region takes on the idle link ------------------------------

t1=0 ms=0 LAT_MS=0
for r in 1 2 3; do
	write4k $r $r || ktap_bail "partial write into region $r while paused failed"
	ktap_diag "idle link: write into uncopied region $r: $LAT_MS ms"
	[[ $LAT_MS -gt $t1 ]] && t1=$LAT_MS
done
BOUND_MS=$((8 * t1 + 500))

# ---- 1: usable at once --------------------------------------------------------

sh_setup dm_message $S continue
sleep 1
desc="while streaming, a read of uncopied region $((N - 6)) returns the origin's data"
c=$(sh_copied $S)
if [[ $(sh_state $S) != streaming || $c -ge $((N - 6)) ]]; then
	ktap_fail "$desc" "not streaming far behind it: $(dm_status $S)"
elif nh_time_ms ms region_ok "$(dm_dev $S)" "$EXP" $((N - 6)); then
	ktap_ok "$desc ($ms ms)"
else
	ktap_fail "$desc" "wrong data or no answer within $STALL_BOUND s ($ms ms)"
fi

# ---- 2: priority of a write over the background ------------------------------

sleep 3
desc="a partial write far ahead of the cursor waits <= 8x the idle copy + 0.5 s"
max=0 lats='' why=''
for r in $((N - 60)) $((N - 45)) $((N - 30)) $((N - 15)); do
	sleep 2				# users idle: the background at full window
	c=$(sh_copied $S)
	st="copied $c/$N copying $(sh_copying $S) $(sh_state $S)"
	if [[ $(sh_state $S) != streaming || $c -ge $((r - 8)) ]]; then
		why+="region $r: not far ahead of the cursor ($st); "
		continue
	fi
	if ! write4k "$r" "$((r + 100))"; then
		why+="region $r: write failed after $LAT_MS ms; "
		continue
	fi
	lats+=" $LAT_MS"
	ktap_diag "streaming ($st): write into uncopied region $r: $LAT_MS ms"
	[[ $LAT_MS -gt $max ]] && max=$LAT_MS
done
ktap_diag "idle copy $t1 ms, bound $BOUND_MS ms, latencies:${lats:- none} ms"
if [[ -n $why ]]; then
	ktap_fail "$desc" "$why"
elif [[ $max -le $BOUND_MS ]]; then
	ktap_ok "$desc (max $max ms, idle $t1 ms)"
else
	ktap_fail "$desc" "max $max ms > $BOUND_MS ms (idle copy $t1 ms)"
fi

# ---- 3: copy_on_read while paused ----------------------------------------------

sh_setup dm_message $S pause
sh_wait_for 60 _idle $S ||
	ktap_diag "pause: copies still in flight after 60 s: $(dm_status $S)"

# _cor_settled: the hot copies are done: nothing in flight, the copied count
# unchanged for 1 s, at least the hot set copied.
_cor_settled()
{
	local a

	a=$(sh_copied "$C")
	[[ $(sh_copying "$C") == 0 && $a -ge 4 ]] || return 1
	sleep 1
	[[ $(sh_copying "$C") == 0 && $(sh_copied "$C") == "$a" ]]
}

HOT=$((N - 80))			# hot set: 4 regions from here
d1="copy_on_read, paused: a hot set reads the origin's data, twice"
d2="copy_on_read, paused: the second read of the hot set reads nothing from $NBD"
if ! dm_create $C "0 $((MB * 2048)) stream $META2 $DEST2 $(dm_dev $SHIM) $RS 2 paused copy_on_read"; then
	ktap_fail "$d1" "table refused: $DM_ERR"
	ktap_fail "$d2" "no copy_on_read stream"
else
	n0=$(nh_sectors_read "$NBD")
	region_ok "$(dm_dev $C)" "$IMG" $HOT 4
	ok1=$?
	n1=$(nh_sectors_read "$NBD")
	sh_wait_for 60 _cor_settled
	settled=$?
	ktap_diag "copy_on_read: first read $((n1 - n0)) sectors from $NBD; then $(dm_status $C)"
	n2=$(nh_sectors_read "$NBD")
	region_ok "$(dm_dev $C)" "$IMG" $HOT 4
	ok2=$?
	n3=$(nh_sectors_read "$NBD")
	if [[ $ok1 -eq 0 && $ok2 -eq 0 ]]; then
		ktap_ok "$d1"
	else
		ktap_fail "$d1" "first read ok: $ok1 (0 = yes), second: $ok2"
	fi
	if [[ $settled -ne 0 ]]; then
		ktap_fail "$d2" "hot copies not done within 60 s: $(dm_status $C)"
	elif [[ $((n1 - n0)) -lt $((4 * RS)) ]]; then
		ktap_fail "$d2" "the first read took only $((n1 - n0)) sectors from $NBD"
	elif [[ $n3 -ne $n2 ]]; then
		ktap_fail "$d2" "it read $((n3 - n2)) sectors from $NBD"
	else
		ktap_ok "$d2 (the first read $((n1 - n0)) sectors)"
	fi
	dm_remove $C || ktap_diag "cannot remove $C: $DM_ERR"
fi

# ---- 4: the origin gone, and back -------------------------------------------

sh_setup dm_message $S continue
c0=$(sh_copied $S)
sh_wait_for 30 _copied_gt $S "$c0" ||
	ktap_diag "no progress after continue within 30 s: $(dm_status $S)"
ev0=$(sh_event_nr $S)
ktap_diag "before the kill: $(dm_status $S), events $ev0"
nh_server_kill
t0=$(sh_now_ms)

desc="server killed while streaming: state stalled within $STALL_BOUND s"
if sh_wait_state $S stalled $STALL_BOUND; then
	ktap_ok "$desc ($(($(sh_now_ms) - t0)) ms)"
else
	ktap_fail "$desc" "$(dm_status $S)"
fi
ktap_diag "after the kill: $(dm_status $S)"
e=$(sh_copy_errors $S)
if [[ $e =~ ^[0-9]+$ && $e -gt 0 ]]; then
	ktap_ok "copy errors counted ($e)"
else
	ktap_fail "copy errors counted" "copy errors '$e': $(dm_status $S)"
fi
if [[ $(sh_event_nr $S) -gt $ev0 ]]; then
	ktap_ok "a dm event was raised"
else
	ktap_fail "a dm event was raised" "events $ev0 -> $(sh_event_nr $S)"
fi

r=$((N - 2))
nh_time_ms ms timeout $STALL_BOUND dd if="$(dm_dev $S)" of=/dev/null bs=$RB skip=$r \
	count=1 iflag=direct status=none 2>/dev/null
rc=$?
desc="a read of uncopied region $r ends within $STALL_BOUND s"
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
	ktap_fail "$desc" "still blocked after $ms ms"
else
	ktap_ok "$desc ($([[ $rc -eq 0 ]] && echo succeeded || echo failed) in $ms ms)"
fi
ktap_check "reads of copied regions 1-3 still return their data" \
	region_ok "$(dm_dev $S)" "$EXP" 1 3

desc="server back, shim on a new nbd device, continue: complete"
NBD_OLD=$NBD
ms_d=0 ms_s=0 ms_c=0 ms_w=0
# nbd-client -d fails at once what is stuck on the dead device (else it waits
# for its timeout), so that the shim's suspend does not wait for it.
nh_time_ms ms_d nh_disconnect "$NBD_OLD" || ktap_diag "nbd-client -d $NBD_OLD failed"
if ! nh_time_ms ms_s nh_server_start "$IMG"; then
	ktap_fail "$desc" "nbd-server did not restart: $(tail -n 3 "$NH_LOG")"
elif ! NBD=$(nh_free_dev) || ! nh_time_ms ms_c nh_connect "$NBD" $NBD_T; then
	ktap_fail "$desc" "reconnect failed: $(tail -n 3 "$NH_LOG")"
elif ! nh_time_ms ms_w nh_shim_swap $SHIM "$NBD"; then
	ktap_fail "$desc" "shim swap to $NBD failed: $DM_ERR"
else
	ktap_diag "nbd-client -d $NBD_OLD $ms_d ms, nbd-server $ms_s ms, nbd-client $NBD $ms_c ms, swap $ms_w ms"
	ktap_diag "before continue: $(dm_status $S)"
	nh_netem_off
	dm_message $S continue
	if sh_wait_state $S complete 120; then
		ktap_ok "$desc ($NBD)"
	else
		ktap_fail "$desc" "$(dm_status $S)"
	fi
fi
a=$(sh_md5 "$(dm_dev $S)")
b=$(sh_md5 "$EXP")
if [[ $a == "$b" ]]; then
	ktap_ok "the stream holds the origin plus the writes (md5 $a)"
else
	ktap_fail "the stream holds the origin plus the writes" "md5 $a, expected $b"
	ktap_diag "regions that differ: $(sh_read "$(dm_dev $S)" >"$TEST_TMP/got" &&
		sh_regions_diff "$TEST_TMP/got" "$EXP" $RB | cut -c1-200)"
fi

ktap_finish
