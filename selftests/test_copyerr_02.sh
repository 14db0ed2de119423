#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_copyerr_02: the origin gone. Once background copying has stalled,
# nothing is retried or started until "continue".
#
# A paused stream of 8 MiB (128 regions of 64 KiB), max_inflight 4 and
# rate 64 (KiB/s: pieces of 16 KiB, the token bucket holds one, so the
# first regions do not all start at once), over an origin that is a dm
# device: linear over the origin's loop, then, while paused, reloaded to
# fail every read after GONE_MS (a dm-delay in front of an "error" device:
# an origin that times out, as a network origin does). "continue". Every
# copy fails, 4 tries each; four regions given up in a row (STALL_STREAK)
# stall the target. Regions 4 and 5 start when the first ones are given up,
# so at the stall (region 3 given up, started later) their first reads are
# in flight and they have tries left (on a39e996: regions 0-2 given up
# together, 3 0.1-0.7 s later, in each of 5 runs):
#
#  - the state becomes stalled within 30 s;
#  - from the stall on, no read is sent to the origin (reads completed plus
#    reads in flight at the origin device do not grow over GONE_MS + 3 s):
#    a retry that was queued is given up (or dropped), not issued;
#  - then (the reads in flight at the stall have failed) nothing is
#    copying, and copied, copying, state and copy errors stay the same for
#    3 s more;
#  - copy errors stay within STALL_STREAK + max_inflight (8), nothing is
#    copied;
#  - the origin comes back (reloaded linear), "rate 0", "continue": the
#    stream completes and the destination equals the origin.
#
# (An "error" origin that fails at once, or regions started together, make
# every copy in flight give up in the same worker pass that stalls: no retry
# is left to ignore. A bad spot on a live origin: test_copyerr_01.)

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 6 dm-delay

RS=128				# region size, sectors (64 KiB)
MB=8
GONE_MS=2000			# a read of the gone origin fails after this (ms)
STREAK=4			# STALL_STREAK of the target
MAXIN=4				# max_inflight
NAME=ce02
ONAME=ce02-orig
ENAME=ce02-err

sh_stream_loops $MB 1
LEN=$(sectors "$ORIG")
ODEV=$(dm_dev $ONAME)

sh_setup dm_create $ENAME "0 $LEN error"
sh_setup dm_create $ONAME "0 $LEN linear $ORIG 0"
sh_setup dm_create $NAME \
	"0 $LEN stream $META $DEST $ODEV $RS 5 paused rate 64 max_inflight $MAXIN"

# issued: reads the origin device has completed or holds now.
issued()
{
	local n inflight

	n=$(sh_stat "$ODEV" 1)
	read -r inflight _ <"$(sh_sysfs "$ODEV")/inflight"
	echo $((n + inflight))
}

# counters: the status fields copied, copying, state and copy errors.
counters()
{
	echo "$(sh_field $NAME 4) $(sh_copying $NAME) $(sh_state $NAME) $(sh_copy_errors $NAME)"
}

sh_setup dm_reload $ONAME "0 $LEN delay $(dm_dev $ENAME) 0 $GONE_MS"
ktap_diag "origin gone: $(dmsetup table $ONAME)"
sh_setup dm_message $NAME continue
t0=$(sh_now_ms)

# ---- stalled ------------------------------------------------------------------

desc="origin gone: state stalled within 30 s"
if sh_wait_state $NAME stalled 30; then
	I0=$(issued)
	ktap_ok "$desc ($(($(sh_now_ms) - t0)) ms)"
else
	I0=$(issued)
	ktap_fail "$desc" "$(dm_status $NAME)"
fi
ktap_diag "at the stall: $(dm_status $NAME); origin reads issued $I0"

sleep $((GONE_MS / 1000 + 3))
I1=$(issued)
C0=$(counters)
ktap_diag "$((GONE_MS / 1000 + 3)) s later: $(dm_status $NAME); origin reads issued $I1"
ktap_check "stalled: nothing retried or started, no read sent to the origin ($I0 -> $I1)" \
	test "$I1" = "$I0"

sleep 3
C1=$(counters)
read -r _ Q _ <<<"$C0"
if [[ $Q == 0 && $C1 == "$C0" ]]; then
	ktap_ok "stalled: nothing copying, the counters do not move for 3 s ($C1)"
else
	ktap_fail "stalled: nothing copying, the counters do not move for 3 s" \
		"copied copying state errors: '$C0' -> '$C1'"
fi

E=$(sh_copy_errors $NAME)
desc="copy errors within $STREAK + max_inflight ($E <= $((STREAK + MAXIN))), nothing copied"
if [[ $E =~ ^[0-9]+$ && $E -le $((STREAK + MAXIN)) && $(sh_copied $NAME) == 0 ]]; then
	ktap_ok "$desc"
else
	ktap_fail "$desc" "$(dm_status $NAME)"
fi

# ---- the origin back --------------------------------------------------------------

sh_setup dm_reload $ONAME "0 $LEN linear $ORIG 0"
sh_setup dm_message $NAME rate 0
sh_setup dm_message $NAME continue
if sh_wait_state $NAME complete 60; then
	ktap_ok "origin back, continue: complete"
else
	ktap_fail "origin back, continue: complete" "$(dm_status $NAME)"
fi
ktap_check "the destination equals the origin" sh_cmp "$DEST" "$ORIG"

dm_remove $NAME
ktap_finish
