#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_message_01: messages and status.
#
# "pause" stops the copied count, "continue" lets it grow again, "rate N" and
# "max_inflight N" show in the status opt args and in the table line, "rate
# 0" drops back to the default; unknown and malformed messages fail with a
# "device-mapper: stream:" error in dmesg and change nothing; while the
# device is suspended, status, table and message return at once (they must
# never wait for I/O), nothing is copying and the count does not move.

# shellcheck disable=SC2317 # helpers called through ktap_check and friends
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"


sh_start 24

RS=128
MB=32
NAME=msg01

sh_stream_loops $MB 4
LEN=$(sectors "$ORIG")
sh_setup dm_create $NAME "0 $LEN stream $META $DEST $ORIG $RS 2 rate 256"

# opt args of status and of the table line (words after the region size).
st_opts()  { sh_opt_args $NAME; }
tbl_opts() { local w; read -r -a w <<<"$(sh_table $NAME)"; echo "${w[*]:7}"; }
# has_pair_both KEY VALUE: well formed groups, KEY VALUE in both.
has_pair_both()
{
	local s t
	s=$(st_opts)
	t=$(tbl_opts)
	sh_opt_ok "$s" && sh_opt_ok "$t" && sh_has_pair "$s" "$1" "$2" &&
		sh_has_pair "$t" "$1" "$2"
}

# 1-2: streaming moves under rate 256 (32 MiB take 128 s).
ktap_check "streaming progresses (copied >= 2 within 60 s)" \
	sh_wait_copied_ge $NAME 2 60
ktap_check "initial rate 256 in status and table opt args" \
	has_pair_both rate 256

# 3-5: pause.
ktap_check "message pause accepted" dm_message $NAME pause
ktap_check "pause: state paused" test "$(sh_state $NAME)" = paused
# In-flight copies may still land: wait for none copying, then watch.
for i in $(seq 10); do
	[ "$(sh_copying $NAME)" = 0 ] && break
	sleep 1
done
C1=$(sh_copied $NAME)
sleep 3
C2=$(sh_copied $NAME)
ktap_check "pause: copied stays put over 3 s ($C1 -> $C2), none copying" \
	test "$C1 $(sh_copying $NAME)" = "$C2 0"

# 6-7: continue.
ktap_check "message continue accepted" dm_message $NAME continue
if [ "$(sh_state $NAME)" = streaming ] && sh_wait_copied_ge $NAME $((C2 + 1)) 30; then
	ktap_ok "continue: state streaming, copied grows again"
else
	ktap_fail "continue: state streaming, copied grows again" \
		"from $C2; status: $(dm_status $NAME)"
fi

# 8-11: rate and max_inflight.
ktap_check "message rate 1024 accepted" dm_message $NAME rate 1024
ktap_check "rate 1024 in status and table opt args" has_pair_both rate 1024
ktap_check "message max_inflight 8 accepted" dm_message $NAME max_inflight 8
ktap_check "max_inflight 8 (and rate 1024) in status and table opt args" \
	eval 'has_pair_both max_inflight 8 && has_pair_both rate 1024'

# 12-20: unknown and malformed messages fail, log, change nothing. A slow
# rate keeps the copy going until the suspend checks below.
dm_message $NAME rate 128
BEFORE="$(st_opts) | $(tbl_opts)"
sh_msg_fail "unknown message frob fails" $NAME frob
sh_msg_fail "malformed: rate (no value)" $NAME rate
sh_msg_fail "malformed: rate abc" $NAME rate abc
sh_msg_fail "malformed: rate 1 2" $NAME rate 1 2
sh_msg_fail "malformed: rate -1" $NAME rate -1
sh_msg_fail "malformed: max_inflight 0" $NAME max_inflight 0
sh_msg_fail "malformed: max_inflight 1025" $NAME max_inflight 1025
sh_msg_fail "malformed: pause now" $NAME pause now
AFTER="$(st_opts) | $(tbl_opts)"
ktap_check "refused messages changed nothing ('$AFTER')" \
	test "$AFTER" = "$BEFORE"

# 21-23: suspended device.
STATE0=$(sh_state $NAME)
ktap_diag "state before the suspend: $STATE0, copied $(sh_field $NAME 4)"
timeout 60 dmsetup suspend $NAME
C1=$(timeout 5 dmsetup status $NAME)
RC1=$?
timeout 5 dmsetup table $NAME >/dev/null
RC2=$?
timeout 5 dmsetup message $NAME 0 rate 2048
RC3=$?
sleep 2
C2=$(timeout 5 dmsetup status $NAME)
RC4=$?
ktap_check "suspended: status, table, message return in time (rc $RC1 $RC2 $RC3 $RC4)" \
	test "$RC1$RC2$RC3$RC4" = 0000
read -r -a w1 <<<"$C1"
read -r -a w2 <<<"$C2"
if [ "$STATE0" = streaming ]; then
	ktap_check "suspended: none copying, count still (${w1[6]:-?} -> ${w2[6]:-?})" \
		test "${w1[7]:-x} ${w1[6]:-y}" = "0 ${w2[6]:-z}"
else
	ktap_skip "suspended: none copying, count still" \
		"the copy was $STATE0 before the suspend (test too slow)"
fi
timeout 60 dmsetup resume $NAME
ktap_check "resumed: rate 2048 set while suspended is in force" \
	has_pair_both rate 2048

# 24: rate 0 is the default again: no rate in the status opt args.
dm_message $NAME rate 0
S=$(st_opts)
if sh_opt_ok "$S" && ! sh_has_word "$S" rate; then
	ktap_ok "rate 0: rate gone from the status opt args ('$S')"
else
	ktap_fail "rate 0: rate gone from the status opt args" "got '$S'"
fi


dm_remove $NAME
ktap_finish
