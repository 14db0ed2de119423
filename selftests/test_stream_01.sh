#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_stream_01: background streaming to completion.
#
# A: 48 MiB of random origin, destination pre-filled with another pattern,
#    blank metadata, created unpaused: the state reaches "complete", copied
#    equals total with nothing copying, the dm event counter has moved, and
#    the destination equals the origin byte for byte.
# B: a target length that is not a multiple of the region size (last region
#    partial), created paused then continued: "dmsetup wait" returns with the
#    completion event, the destination holds the origin over the target's
#    length and nothing was written past it.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd cmp

sh_start 12

RS=128

# ------------------------------------------------------------------- A
MB=48
LEN=$((MB * 2048))
NR=$((LEN / RS))		# 768
sh_stream_loops $MB 4
sh_fill_byte "$DEST" 245
ORIG_MD5=$(sh_md5 "$ORIG")

if dm_create st01a "0 $LEN stream $META $DEST $ORIG $RS"; then
	E0=$(sh_event_nr st01a)
	S0=$(sh_state st01a)
	T0=$(date +%s)
	if sh_wait_state st01a complete 300; then
		ktap_ok "A: unpaused target reaches complete ($(($(date +%s) - T0)) s)"
	else
		ktap_fail "A: unpaused target reaches complete" \
			"after 300 s: $(dm_status st01a)"
	fi
	ktap_check "A: copied == total ($NR), none copying" \
		test "$(sh_field st01a 4) $(sh_copying st01a)" = "$NR/$NR 0"
	E1=$(sh_event_nr st01a)
	if [ "$S0" = complete ]; then
		ktap_check "A: event counter moved (>= 1; complete before first look)" \
			test "$E1" -ge 1
	else
		ktap_check "A: event counter moved at completion ($E0 -> $E1)" \
			test "$E1" -gt "$E0"
	fi
	ktap_check "A: destination equals the origin (cmp)" \
		sh_cmp "$DEST" "$ORIG"
	ktap_check "A: target reads equal the origin" \
		test "$(sh_md5 "$(dm_dev st01a)")" = "$ORIG_MD5"
	dm_remove st01a
else
	ktap_fail "A: create" "$(dmesg_since_mark | tail -n 2)"
	for i in 2 3 4 5; do ktap_fail "A: subtest $i" "no device"; done
fi

# ------------------------------------------------------------------- B
MB=20
LEN=$((MB * 2048 - 40))		# 40920 sectors: 319 regions + 88 sectors
NR=$(((LEN + RS - 1) / RS))	# 320
TAIL=$((MB * 1048576 - LEN * 512))
sh_stream_loops $MB 4
sh_fill_byte "$DEST" 245
TAIL_MD5=$(sh_md5 "$DEST" $TAIL $((LEN * 512)))
ORIG2_MD5=$(sh_md5 "$ORIG")

if dm_create st01b "0 $LEN stream $META $DEST $ORIG $RS 1 paused"; then
	ktap_check "B: partial last region counted: total $NR regions" \
		test "$(sh_total st01b)" = "$NR"
	E0=$(sh_event_nr st01b)
	dm_message st01b continue
	# dmsetup wait returns once the event counter exceeds E0; the spec
	# raises an event at completion. Wait again if it returned early.
	DEADLINE=$(($(date +%s) + 300))
	E=$E0
	WAITED=fail
	while [ "$(date +%s)" -lt "$DEADLINE" ]; do
		if ! timeout $((DEADLINE - $(date +%s))) dmsetup wait st01b "$E" \
			>/dev/null; then
			break
		fi
		if sh_wait_state st01b complete 3; then
			WAITED=ok
			break
		fi
		E=$(sh_event_nr st01b)
	done
	E1=$(sh_event_nr st01b)
	if [ $WAITED = ok ]; then
		ktap_ok "B: dmsetup wait returns with the completion event ($E0 -> $E1)"
	else
		ktap_fail "B: dmsetup wait returns with the completion event" \
			"events $E0 -> $E1, status: $(dm_status st01b)"
	fi
	ktap_check "B: copied == total ($NR), none copying, complete" \
		test "$(sh_field st01b 4) $(sh_copying st01b) $(sh_state st01b)" = \
		"$NR/$NR 0 complete"
	ktap_check "B: destination equals the origin over the target length" \
		sh_cmp "$DEST" "$ORIG" $((LEN * 512))
	ktap_check "B: destination past the target length untouched" \
		test "$(sh_md5 "$DEST" $TAIL $((LEN * 512)))" = "$TAIL_MD5"
	ktap_check "B: target size and reads equal the origin's first $LEN sectors" \
		test "$(blockdev --getsz "$(dm_dev st01b)") $(sh_md5 "$(dm_dev st01b)")" = \
		"$LEN $(sh_md5 "$ORIG" $((LEN * 512)))"
	ktap_check "B: origin unchanged" test "$(sh_md5 "$ORIG")" = "$ORIG2_MD5"
	dm_remove st01b
else
	ktap_fail "B: create" "$(dmesg_since_mark | tail -n 2)"
	for i in 2 3 4 5 6; do ktap_fail "B: subtest $i" "no device"; done
fi

ktap_finish
