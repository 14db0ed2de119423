#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_metaerr_01: metadata I/O errors and copy errors.
#
# Spec: metadata I/O errors: mode rw -> ro (no new copies; writes needing a
# new copy/bit fail with EIO; reads keep working; writes to already-copied
# regions keep working) -> fail (every I/O fails, status "Fail"), with a dm
# event at each step; never an oops. Copy errors: counted in <copy errors>,
# retried a bounded number of times with back-off, then left uncopied.
#
# Part 1: the metadata device is a dm-linear device whose table is swapped
# for "error" under a live, paused stream target. A whole-region write to a
# new region (no flush) makes the periodic commit fail: ro. Then a flush,
# which needs a commit of that region's bit, fails: fail. (With the write and
# the flush back to back, e.g. dd conv=fsync, which of the two commits comes
# first is a matter of timing; this order is deterministic.)
# Part 2: the origin is a dm-linear device swapped for "error" before
# streaming starts; every copy fails.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers_b.sh"

require_module dm-stream

require_cmd dmsetup dd md5sum python3

RS=128
MB=8
SECT=$((MB * 2048))
NAME=sbmerr
MNAME=sbmerr-meta
DM=/dev/mapper/$NAME

ktap_plan 14

sb_mkloop ORIG $MB
sb_mkloop DEST $MB
sb_mkloop MLOOP 4
dd if=/dev/urandom of="$ORIG" bs=1M count=$MB oflag=direct status=none

# ---------------------------------------------------------------- part 1
if ! dm_create $MNAME "0 8192 linear $MLOOP 0" ||
   ! dm_create $NAME "0 $SECT stream /dev/mapper/$MNAME $DEST $ORIG $RS 1 paused"; then
	ktap_fail "create paused stream over a dm-linear metadata device"
	sb_bail 13 "setup failed"
fi
ktap_ok "create paused stream over a dm-linear metadata device"

# 2. A whole-region write + flush works while the metadata is healthy.
if sb_write_region "$DM" 0 $RS /dev/urandom fsync &&
   [ "$(sb_copied $NAME)" = 1 ] && [ "$(sb_mode $NAME)" = rw ]; then
	ktap_ok "whole-region write + flush with healthy metadata"
else
	ktap_fail "whole-region write + flush with healthy metadata" "status: $(sb_status $NAME)"
fi
R0_MD5=$(sb_region_md5 "$DM" 0 $RS)
sleep 1.5	# nothing left to commit

# 3. Metadata device -> error target; a whole-region write to a new region
#    (region 5) without flush; the periodic commit fails: mode ro, an event.
ev0=$(sb_events $NAME)
if ! dm_reload $MNAME "0 8192 error"; then
	ktap_fail "failed periodic commit: mode ro, dm event"
	sb_bail 11 "cannot reload the metadata device: $DM_ERR"
fi
kmsg "test_metaerr_01: metadata device now error"
sb_write_region "$DM" 5 $RS /dev/urandom
rc=$?
R5_MD5=$(sb_region_md5 "$DM" 5 $RS)
_left_rw() { [ "$(sb_mode_of "$(sb_status $NAME)")" != rw ]; }
sb_wait_for 6 _left_rw
st=$(sb_status $NAME)
mode=$(sb_mode_of "$st")
ev1=$(sb_events $NAME)
ktap_diag "write region 5 (no flush): rc=$rc; then status: $st; event_nr $ev0 -> $ev1"
if [ "$mode" = ro ] && [ "$ev1" -ge $((ev0 + 1)) ]; then
	ktap_ok "failed periodic commit: mode ro, dm event"
else
	ktap_fail "failed periodic commit: mode ro, dm event" "mode $mode, event_nr $ev0 -> $ev1"
fi

# 4. ro: reads keep working: copied regions (0, 5) from the destination,
#    uncopied ones from the origin.
if [ "$mode" = ro ]; then
	if [ "$(sb_region_md5 "$DM" 0 $RS)" = "$R0_MD5" ] &&
	   [ "$(sb_region_md5 "$DM" 5 $RS)" = "$R5_MD5" ] &&
	   [ "$(sb_region_md5 "$DM" 3 $RS)" = "$(sb_region_md5 "$ORIG" 3 $RS)" ] &&
	   [ "$(sb_region_md5 "$DM" 40 $RS 4)" = "$(sb_region_md5 "$ORIG" 40 $RS 4)" ]; then
		ktap_ok "ro: reads of copied and uncopied regions work"
	else
		ktap_fail "ro: reads of copied and uncopied regions work" \
			"mode now $(sb_mode $NAME)"
	fi
else
	ktap_fail "ro: reads of copied and uncopied regions work" "mode is $mode, not ro"
fi

# 5. ro: writes to copied regions keep working (no flush: a flush needs a
#    commit).
if [ "$mode" = ro ]; then
	w1=0
	tmp=$TEST_TMP/r0
	head -c 4096 /dev/urandom >"$tmp"
	dd if="$tmp" of="$DM" bs=4096 count=1 seek=3 oflag=direct status=none &&
		[ "$(sb_md5 "$DM" 12288 4096)" = "$(md5sum <"$tmp" | cut -d' ' -f1)" ] && w1=1
	sb_write_region "$DM" 5 $RS /dev/urandom || w1=0
	if [ $w1 = 1 ] && [ "$(sb_mode $NAME)" = ro ]; then
		ktap_ok "ro: writes to copied regions work"
	else
		ktap_fail "ro: writes to copied regions work" "ok=$w1, status $(sb_status $NAME)"
	fi
else
	ktap_fail "ro: writes to copied regions work" "mode is $mode, not ro"
fi

# 6. ro: writes needing a new copy or a new bit fail (partial write into
#    uncopied region 20, whole-region write to uncopied region 21); nothing
#    gets copied.
if [ "$mode" = ro ]; then
	w2=0; w3=0
	c0=$(sb_copied $NAME)
	dd if=/dev/urandom of="$DM" bs=4096 count=1 seek=$((20 * RS / 8 + 1)) \
		oflag=direct status=none 2>/dev/null && w2=1
	sb_write_region "$DM" 21 $RS /dev/urandom 2>/dev/null && w3=1
	c1=$(sb_copied $NAME)
	if [ $w2 = 0 ] && [ $w3 = 0 ] && [ "$c1" = "$c0" ] &&
	   [ "$(sb_region_md5 "$DM" 20 $RS 2)" = "$(sb_region_md5 "$ORIG" 20 $RS 2)" ]; then
		ktap_ok "ro: writes needing a copy or a new bit fail"
	else
		ktap_fail "ro: writes needing a copy or a new bit fail" \
			"partial write ok=$w2, whole-region write ok=$w3, copied $c0 -> $c1"
	fi
else
	ktap_fail "ro: writes needing a copy or a new bit fail" "mode is $mode, not ro"
fi

# 7. A flush now needs a commit (region 5's bit) and it fails: the flush
#    returns an error, mode fail, status "Fail", another event.
sb_flush "$DM" 2>/dev/null
rc=$?
_is_fail() { [ "$(sb_mode_of "$(sb_status $NAME)")" = fail ]; }
sb_wait_for 5 _is_fail
st=$(sb_status $NAME)
ev2=$(sb_events $NAME)
ktap_diag "flush: rc=$rc; then status: $st; event_nr $ev1 -> $ev2"
if [ $rc != 0 ] && [ "$st" = Fail ] && [ "$ev2" -ge $((ev1 + 1)) ]; then
	ktap_ok "flush needing a failing commit: error, status Fail, dm event"
else
	ktap_fail "flush needing a failing commit: error, status Fail, dm event" \
		"flush rc=$rc, status '$st', event_nr $ev1 -> $ev2"
fi

# 8. fail: every I/O fails.
n=0
dd if="$DM" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null && n=$((n + 1))
dd if="$DM" of=/dev/null bs=4096 count=1 skip=$((3 * RS / 8)) iflag=direct status=none 2>/dev/null && n=$((n + 1))
dd if=/dev/zero of="$DM" bs=4096 count=1 seek=1 oflag=direct status=none 2>/dev/null && n=$((n + 1))
if [ "$(sb_status $NAME)" = Fail ] && [ $n = 0 ]; then
	ktap_ok "fail: reads and writes fail"
else
	ktap_fail "fail: reads and writes fail" "$n of 3 I/Os succeeded, status '$(sb_status $NAME)'"
fi

# 9. The device can be removed.
if timeout 60 dmsetup remove $NAME; then
	ktap_ok "stream device removable after metadata failure"
else
	ktap_fail "stream device removable after metadata failure"
fi
dm_remove $MNAME

# ---------------------------------------------------------------- part 2
# Origin = dm-linear "sbmerr-orig" over the origin loop; destination loop
# re-zeroed; fresh metadata.
ONAME=sbmerr-orig
dd if=/dev/zero of="$MLOOP" bs=1M count=4 oflag=direct status=none
dd if=/dev/zero of="$DEST" bs=1M count=$MB oflag=direct status=none
if ! dm_create $ONAME "0 $SECT linear $ORIG 0" ||
   ! dm_create $NAME "0 $SECT stream $MLOOP $DEST /dev/mapper/$ONAME $RS 1 paused"; then
	ktap_fail "copy errors: setup (origin as dm-linear)"
	sb_bail 4 "setup failed"
fi
# Two regions copied by whole writes before the origin dies.
sb_write_region "$DM" 0 $RS /dev/urandom
sb_write_region "$DM" 1 $RS /dev/urandom
R01_MD5=$(sb_region_md5 "$DM" 0 $RS 2)
c0=$(sb_copied $NAME)
if dm_reload $ONAME "0 $SECT error"; then
	ktap_ok "copy errors: setup, origin swapped for error ($c0 regions copied)"
else
	ktap_fail "copy errors: setup, origin swapped for error"
fi
dmsetup message $NAME 0 continue

# 11. Copy errors are counted.
_has_errors() { [ "$(sb_errors $NAME)" -gt 0 ] 2>/dev/null; }
if sb_wait_for 20 _has_errors; then
	ktap_ok "copy errors counted ($(sb_errors $NAME) after start)"
else
	ktap_fail "copy errors counted" "status: $(sb_status $NAME)"
fi

# 12. Retries are bounded: the error count stops growing and nothing is left
#     in flight (stable for 5 s, within 90 s).
stable=0
prev=""
t0=$(sb_now_ms)
while [ $(($(sb_now_ms) - t0)) -lt 90000 ]; do
	cur="$(sb_errors $NAME) $(sb_copying $NAME)"
	if [ "$cur" = "$prev" ] && [ "${cur#* }" = 0 ]; then
		stable=$((stable + 1))
		[ $stable -ge 5 ] && break
	else
		stable=0
	fi
	prev=$cur
	sleep 1
done
ktap_diag "after $((($(sb_now_ms) - t0) / 1000)) s: $(sb_status $NAME)"
if [ $stable -ge 5 ]; then
	ktap_ok "copy retries bounded: error count settles at $(sb_errors $NAME)"
else
	ktap_fail "copy retries bounded: error count settles" "still changing: $prev"
fi

# 13. Failed regions are left uncopied; the copied ones stay copied and
#     readable.
c1=$(sb_copied $NAME)
tot=$(sb_total $NAME)
if [ "$c1" = "$c0" ] && [ "$c1" -lt "$tot" ] && [ "$(sb_state $NAME)" != complete ] &&
   [ "$(sb_region_md5 "$DM" 0 $RS 2)" = "$R01_MD5" ]; then
	ktap_ok "failed regions left uncopied ($c1/$tot, state $(sb_state $NAME))"
else
	ktap_fail "failed regions left uncopied" "copied $c0 -> $c1 of $tot, state $(sb_state $NAME)"
fi

# 14. Still removable.
if timeout 60 dmsetup remove $NAME; then
	ktap_ok "device removable after copy errors"
else
	ktap_fail "device removable after copy errors"
fi
dm_remove $ONAME
ktap_finish
