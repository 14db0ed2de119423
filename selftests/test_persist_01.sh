#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_persist_01: progress survives remove + create with the same metadata.
#
# Stream 32 MiB under "rate 1024" (KiB/s), write into the last region, sample
# the copied count, remove the device mid-copy and recreate it from the same
# metadata: the count never drops (the target commits at suspend/dtr), a
# paused recreate reads back the origin with the write applied (the write's
# region can only come from the destination), every region counted as
# copied is really on the destination, streaming continues and, once the
# rate is lifted, finishes with the destination equal to the expected image.
# A paused recreate after completion still reads everything correctly.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd cmp

sh_start 13

RS=128
RB=$((RS * 512))
MB=32
LEN=$((MB * 2048))
NR=$((LEN / RS))		# 512
NAME=ps01

sh_stream_loops $MB 4
sh_fill_byte "$DEST" 245
IMG=$(sh_tmpfile)
sh_read "$ORIG" >"$IMG"
ORIG_MD5=$(md5sum <"$IMG" | cut -d' ' -f1)
TBL="0 $LEN stream $META $DEST $ORIG $RS"

T0=$SECONDS
sh_setup dm_create $NAME "$TBL 2 rate 1024"

# 1: a partial write to the last region (copied first, then written).
W=$(sh_tmpfile)
head -c 4096 /dev/urandom >"$W"
WSECT=$((LEN - RS + 16))
sh_patch_file "$IMG" "$W" $WSECT
IMG_MD5=$(md5sum <"$IMG" | cut -d' ' -f1)
ktap_check "partial write to the last region while streaming" \
	dd if="$W" of="$(dm_dev $NAME)" bs=4096 count=1 seek=$((WSECT * 512)) \
	oflag=direct,seek_bytes status=none

# 2-3: sample the count for ~6 s.
SAMPLES=
PREV=0
DROP=
for i in 1 2 3 4 5 6; do
	sleep 1
	C=$(sh_copied $NAME)
	SAMPLES="$SAMPLES $C"
	[ "$C" -lt "$PREV" ] && DROP=yes
	PREV=$C
done
C_BEFORE=$(sh_copied $NAME)
SAMPLES="$SAMPLES $C_BEFORE"
[ "$C_BEFORE" -lt "$PREV" ] && DROP=yes
ktap_diag "copied samples at ~1 s intervals:$SAMPLES (of $NR)"
ktap_check "copied count never drops while streaming" test -z "$DROP"
# At 1024 KiB/s, 32 MiB take at least 32 s: after ~7 s the copy is
# partial. The written region counts as copied, so more than 1 means
# streaming moved. A host so slow that the sampling took 32 s cannot tell.
ELAPSED=$((SECONDS - T0))
if [ "$C_BEFORE" -eq "$NR" ] && [ "$ELAPSED" -ge 32 ]; then
	ktap_skip "rate 1024: streaming partial after ~7 s" \
		"the sampling took $ELAPSED s (a slow host): the copy could end"
else
	ktap_check "rate 1024: streaming partial after $ELAPSED s (1 < $C_BEFORE < $NR)" \
		test "$C_BEFORE" -gt 1 -a "$C_BEFORE" -lt "$NR"
fi

dm_remove $NAME

# 4-7: recreate paused from the same metadata.
if dm_create $NAME "$TBL 1 paused"; then
	C_AFTER=$(sh_copied $NAME)
	ktap_check "recreate: copied $C_AFTER >= $C_BEFORE seen before remove" \
		test "$C_AFTER" -ge "$C_BEFORE"
	sleep 3
	# A copy that ended before the remove shows complete, not paused.
	WANT=paused
	[ "$C_AFTER" -eq "$NR" ] && WANT=complete
	ktap_check "recreated paused: state $WANT, count stays $C_AFTER" \
		test "$(sh_state $NAME) $(sh_copied $NAME)" = "$WANT $C_AFTER"
	ktap_check "recreated paused: reads equal origin + write" \
		test "$(sh_md5 "$(dm_dev $NAME)")" = "$IMG_MD5"
	D=$(sh_tmpfile)
	sh_read "$DEST" >"$D"
	BAD=$(sh_regions_diff "$D" "$IMG" $RB | wc -w)
	rm -f "$D"
	ktap_check "destination holds >= $C_AFTER final regions ($((NR - BAD)))" \
		test $((NR - BAD)) -ge "$C_AFTER"
	dm_remove $NAME
else
	ktap_fail "recreate: copied >= before remove" \
		"create failed: $(dmesg_since_mark | tail -n 2)"
	for i in 5 6 7; do ktap_fail "recreated paused: subtest $i" "no device"; done
	C_AFTER=$C_BEFORE
fi

# 8-12: recreate streaming, lift the rate, finish.
if dm_create $NAME "$TBL 2 rate 1024"; then
	C2=$(sh_copied $NAME)
	ktap_check "recreate streaming: copied $C2 >= $C_AFTER" \
		test "$C2" -ge "$C_AFTER"
	dm_message $NAME rate 0
	if sh_wait_state $NAME complete 150; then
		ktap_ok "rate 0: streaming completes"
	else
		ktap_fail "rate 0: streaming completes" "status: $(dm_status $NAME)"
	fi
	dm_remove $NAME
else
	ktap_fail "recreate streaming" "create failed: $(dmesg_since_mark | tail -n 2)"
	ktap_fail "rate 0: streaming completes" "no device"
fi
ktap_check "destination equals origin + write" sh_cmp "$DEST" "$IMG"
ktap_check "origin unchanged" test "$(sh_md5 "$ORIG")" = "$ORIG_MD5"

# 12-13: a paused recreate of the finished copy.
if dm_create $NAME "$TBL 1 paused"; then
	ktap_diag "state of a paused recreate after completion: $(sh_state $NAME)"
	ktap_check "finished copy recreated: $NR/$NR copied" \
		test "$(sh_field $NAME 4)" = "$NR/$NR"
	ktap_check "finished copy recreated paused: reads equal origin + write" \
		test "$(sh_md5 "$(dm_dev $NAME)")" = "$IMG_MD5"
	dm_remove $NAME
else
	ktap_fail "finished copy recreated" "create failed: $(dmesg_since_mark | tail -n 2)"
	ktap_fail "finished copy recreated paused: reads" "no device"
fi

ktap_finish
