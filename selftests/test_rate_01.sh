#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_rate_01: the load-aware background rate (min_rate, max_rate, rate) is
# enforced, measured.
#
# A 64 MiB stream of 64 KiB regions. Throughput is measured from the status
# line's copied count over windows of 4 s, each opened when a copy
# completes: KiB copied in the window against the limit L in force over the
# window's measured length T:
#   upper: <= L * T * 1.15 + L / 4 + 2 * RUN   (one token bucket: a quarter
#          second of the rate, plus one run in flight at each end of the
#          window; RUN = L / 4 clamped to [one region, 1 MiB], what the
#          bucket lets one job copy at once)
#   lower: >= L * T / 2 - RUN
# Upper bounds do not depend on the host's speed. Every limit measured is at
# most 1 MiB/s, far below what TCG copies (100+ MiB/s), so the lower bounds
# do not either; and each upper bound is below what the previous limit
# would give, so a limit that is not applied fails its check.
#
# "Busy" is a user load: a loop of O_DIRECT 64 KiB reads and writes (each
# writes back what it read, so the content never changes) over the first
# MiB of the stream device, copied by then. Idle is no I/O through the
# device for STREAM_BUSY_MS (500 ms): each window starts 2 s after the load
# started or stopped.
#
#  - min_rate 256 max_rate 1024 in the table: both shown in the table line
#    and the status opt args (exactly, in the documented order);
#  - idle: ~max_rate; under the load: ~min_rate; the load stops: ~max_rate
#    again;
#  - message max_rate 512: ~512 idle (live change);
#  - message rate 64, below min_rate: caps both, idle and under the load;
#  - rate 0, message min_rate 64 under the load: ~64;
#  - min_rate 0 (the default) under the load: copying still progresses;
#  - malformed min_rate / max_rate messages (negative, 1e3, 4294967296,
#    words, no value, two values) are refused with a "device-mapper:
#    stream:" error and change nothing; max_rate 4294967295 is accepted.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 33

RS=128				# region size, sectors (64 KiB)
RKIB=$((RS / 2))		# region size, KiB
RB=$((RS * 512))
MB=64
WIN=4				# measuring window, s
NAME=rate01

sh_stream_loops $MB 4
LEN=$(sectors "$ORIG")
NR=$((LEN / RS))
sh_setup dm_create $NAME "0 $LEN stream $META $DEST $ORIG $RS 4 min_rate 256 max_rate 1024"
DEV=$(dm_dev $NAME)

# ---- opt args ----------------------------------------------------------------

tbl_opts()
{
	local w

	read -r -a w <<<"$(sh_table $NAME)"
	echo "${w[*]:7}"
}

# opts_are DESC "COUNT WORD...": one result: the status opt args and the
# table line's are exactly that.
opts_are()
{
	local s t

	s=$(sh_opt_args $NAME)
	t=$(tbl_opts)
	if [[ $s == "$2" && $t == "$2" ]]; then
		ktap_ok "$1: opt args '$2' in status and table"
	else
		ktap_fail "$1: opt args '$2' in status and table" \
			"status '$s', table '$t'"
	fi
}

# msg_ok DESC WORD...: one result: the message is accepted.
msg_ok()
{
	local desc=$1 err

	shift
	if err=$(dm_message $NAME "$@" 2>&1); then
		ktap_ok "$desc"
	else
		ktap_fail "$desc" "dmsetup message $NAME 0 $*: $err"
	fi
}

# ---- the user load -----------------------------------------------------------

LOAD_STOP=$TEST_TMP/load.stop
LOAD_PID=

_load_loop()
{
	while [[ ! -e $LOAD_STOP ]]; do
		dd if="$DEV" of="$DEV" bs=$RB count=16 iflag=direct oflag=direct \
			conv=notrunc status=none || return 1
	done
}

# The first MiB of the destination holds the origin's (so is copied, and
# the load's writes trigger no copy and mark nothing).
_first_mib_copied()
{
	sh_cmp "$DEST" "$ORIG" 1048576 >/dev/null
}

load_start()
{
	sh_wait_for 30 _first_mib_copied ||
		ktap_diag "the first MiB is not copied yet: the load's writes may mark regions copied"
	rm -f "$LOAD_STOP"
	_load_loop &
	LOAD_PID=$!
	LOAD_R0=$(sh_stat "$DEV" 1)
	sleep 2
}

# load_stop: stop it; one result: it ran all along (dd never failed).
load_stop()
{
	local rc n

	touch "$LOAD_STOP"
	wait "$LOAD_PID"
	rc=$?
	n=$(($(sh_stat "$DEV" 1) - LOAD_R0))
	if [[ $rc -eq 0 ]]; then
		ktap_ok "the load ran without an error ($n reads through the device)"
	else
		ktap_fail "the load ran without an error" "dd failed after $n reads"
	fi
	sleep 2
}

# ---- measuring ---------------------------------------------------------------

_moved_or_complete()
{
	[[ $(sh_copied "$NAME") -gt $1 || $(sh_state "$NAME") == complete ]]
}

# measure [SECONDS]: M_KIB copied in the window, M_MS its length, M_END
# "complete" when the stream completed within it. The window opens when a
# copy completes (a 30 s bound): after a change of the limit, the bucket's
# debt of the last run taken at the old limit is paid at the new one (a
# 256 KiB run at 64 KiB/s: 4 s) before anything moves.
measure()
{
	local c0 c1 t0 t1

	c0=$(sh_copied $NAME)
	sh_wait_for 30 _moved_or_complete "$c0"
	c0=$(sh_copied $NAME)
	t0=$(sh_now_ms)
	sleep "${1:-$WIN}"
	c1=$(sh_copied $NAME)
	t1=$(sh_now_ms)
	M_KIB=$(((c1 - c0) * RKIB))
	M_MS=$((t1 - t0))
	M_END=$(sh_state $NAME)
}

# run_kib LIMIT: what one job copies at once under LIMIT KiB/s.
run_kib()
{
	local r=$(($1 / 4))

	((r < RKIB)) && r=$RKIB
	((r > 1024)) && r=1024
	echo $r
}

# rate_check DESC LIMIT [upper]: one result for the last window against
# LIMIT KiB/s: within the bounds of the header (only the upper one with
# "upper" as third argument).
rate_check()
{
	local desc=$1 lim=$2 run hi lo got

	run=$(run_kib "$lim")
	hi=$((lim * M_MS * 115 / 100000 + lim / 4 + 2 * run))
	lo=$((lim * M_MS / 2000 - run))
	[[ ${3:-} == upper ]] && lo=0
	got="$M_KIB KiB in $M_MS ms = $((M_KIB * 1000 / M_MS)) KiB/s"
	if [[ $M_END == complete ]]; then
		ktap_fail "$desc" "the stream completed within the window ($got)"
	elif ((M_KIB >= lo && M_KIB <= hi)); then
		ktap_ok "$desc ($got; bounds $lo..$hi KiB)"
	else
		ktap_fail "$desc" "$got, outside $lo..$hi KiB (limit $lim KiB/s)"
	fi
}

# ---- the table ---------------------------------------------------------------

opts_are "table min_rate 256 max_rate 1024" "4 min_rate 256 max_rate 1024"

# ---- idle, busy, idle --------------------------------------------------------

sh_wait_copied_ge $NAME 1 30 || ktap_diag "nothing copied after 30 s: $(dm_status $NAME)"
measure
rate_check "idle: ~max_rate 1024 KiB/s" 1024

# The load runs over the first MiB: copied by now at the rate above (the
# check just made says whether it was).
load_start
measure
rate_check "under the load: ~min_rate 256 KiB/s" 256
load_stop

measure
rate_check "load stopped: ~max_rate 1024 KiB/s again" 1024

# ---- max_rate changed live ---------------------------------------------------

msg_ok "message max_rate 512 accepted" max_rate 512
opts_are "after max_rate 512" "4 min_rate 256 max_rate 512"
measure
rate_check "idle: ~max_rate 512 KiB/s after the message" 512

# ---- rate caps both ----------------------------------------------------------

msg_ok "message rate 64 accepted" rate 64
opts_are "after rate 64" "6 rate 64 min_rate 256 max_rate 512"
measure
rate_check "idle, rate 64 below max_rate 512: ~64 KiB/s" 64
load_start
measure
rate_check "under the load, rate 64 below min_rate 256: <= 64 KiB/s" 64 upper

# ---- min_rate changed live, min_rate 0 ---------------------------------------

msg_ok "message rate 0 accepted (under the load)" rate 0
msg_ok "message min_rate 64 accepted (under the load)" min_rate 64
opts_are "after rate 0, min_rate 64" "4 min_rate 64 max_rate 512"
measure
rate_check "under the load: ~min_rate 64 KiB/s after the message" 64

msg_ok "message min_rate 0 accepted (under the load)" min_rate 0
C0=$(sh_copied $NAME)
measure 4
if ((M_KIB > 0)) || [[ $M_END == complete ]]; then
	ktap_ok "min_rate 0 under the load: copying progresses ($M_KIB KiB in $M_MS ms, $M_END)"
else
	ktap_fail "min_rate 0 under the load: copying progresses" \
		"copied stayed at $C0 of $NR over $M_MS ms: $(dm_status $NAME)"
fi
load_stop

# ---- malformed messages ------------------------------------------------------

opts_are "after min_rate 0" "2 max_rate 512"
BEFORE="$(sh_opt_args $NAME) | $(tbl_opts)"
sh_msg_fail "malformed: min_rate -1" $NAME min_rate -1
sh_msg_fail "malformed: min_rate 1e3" $NAME min_rate 1e3
sh_msg_fail "malformed: min_rate 4294967296" $NAME min_rate 4294967296
sh_msg_fail "malformed: min_rate fast" $NAME min_rate fast
sh_msg_fail "malformed: min_rate (no value)" $NAME min_rate
sh_msg_fail "malformed: max_rate -1" $NAME max_rate -1
sh_msg_fail "malformed: max_rate 1e3" $NAME max_rate 1e3
sh_msg_fail "malformed: max_rate 4294967296" $NAME max_rate 4294967296
sh_msg_fail "malformed: max_rate 0x10" $NAME max_rate 0x10
sh_msg_fail "malformed: max_rate 1 2" $NAME max_rate 1 2
AFTER="$(sh_opt_args $NAME) | $(tbl_opts)"
ktap_check "refused messages changed nothing ('$AFTER')" test "$AFTER" = "$BEFORE"
msg_ok "message max_rate 4294967295 accepted" max_rate 4294967295
opts_are "after max_rate 4294967295" "2 max_rate 4294967295"

ktap_diag "final status: $(dm_status $NAME)"
dm_remove $NAME
ktap_finish
