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
. "$(dirname "$0")/stream_helpers.sh"

sh_start 14

RS=128
MB=8
NAME=sbmerr
MNAME=sbmerr-meta
DM=$(dm_dev $NAME)
sh_stream_loops $MB 4
SECT=$(sectors "$ORIG")

# ---------------------------------------------------------------- part 1
ktap_check "create paused stream over a dm-linear metadata device" \
	sh_stream_over_linear_meta $NAME $MNAME "$META" "$DEST $ORIG $RS 1 paused" ||
	ktap_bail "setup failed: $DM_ERR"

# 2. A whole-region write + flush works while the metadata is healthy.
if sh_write_region "$DM" 0 $RS /dev/urandom fsync &&
   [ "$(sh_copied $NAME)" = 1 ] && [ "$(sh_mode $NAME)" = rw ]; then
	ktap_ok "whole-region write + flush with healthy metadata"
else
	ktap_fail "whole-region write + flush with healthy metadata" "status: $(dm_status $NAME)"
fi
R0_MD5=$(sh_region_md5 "$DM" 0 $RS)
sleep 1.5	# nothing left to commit

# 3. Metadata device -> error target; a whole-region write to a new region
#    (region 5) without flush; the periodic commit fails: mode ro, an event.
ev0=$(sh_event_nr $NAME)
dm_reload $MNAME "0 8192 error" ||
	ktap_bail "cannot reload the metadata device: $DM_ERR"
kmsg "test_metaerr_01: metadata device now error"
sh_write_region "$DM" 5 $RS /dev/urandom
rc=$?
R5_MD5=$(sh_region_md5 "$DM" 5 $RS)
# shellcheck disable=SC2317 # called by sh_wait_for
_left_rw() { [ "$(sh_mode "$NAME")" != rw ]; }
sh_wait_for 6 _left_rw
st=$(dm_status $NAME)
mode=$(sh_mode $NAME)
ev1=$(sh_event_nr $NAME)
ktap_diag "write region 5 (no flush): rc=$rc; then status: $st; event_nr $ev0 -> $ev1"
if [ "$mode" = ro ] && [ "$ev1" -ge $((ev0 + 1)) ]; then
	ktap_ok "failed periodic commit: mode ro, dm event"
else
	ktap_fail "failed periodic commit: mode ro, dm event" "mode $mode, event_nr $ev0 -> $ev1"
fi

# 4. ro: reads keep working: copied regions (0, 5) from the destination,
#    uncopied ones from the origin.
if [ "$mode" = ro ]; then
	if [ "$(sh_region_md5 "$DM" 0 $RS)" = "$R0_MD5" ] &&
	   [ "$(sh_region_md5 "$DM" 5 $RS)" = "$R5_MD5" ] &&
	   [ "$(sh_region_md5 "$DM" 3 $RS)" = "$(sh_region_md5 "$ORIG" 3 $RS)" ] &&
	   [ "$(sh_region_md5 "$DM" 40 $RS 4)" = "$(sh_region_md5 "$ORIG" 40 $RS 4)" ]; then
		ktap_ok "ro: reads of copied and uncopied regions work"
	else
		ktap_fail "ro: reads of copied and uncopied regions work" \
			"mode now $(sh_mode $NAME)"
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
		[ "$(sh_md5 "$DM" 4096 12288)" = "$(md5sum <"$tmp" | cut -d' ' -f1)" ] && w1=1
	sh_write_region "$DM" 5 $RS /dev/urandom || w1=0
	if [ $w1 = 1 ] && [ "$(sh_mode $NAME)" = ro ]; then
		ktap_ok "ro: writes to copied regions work"
	else
		ktap_fail "ro: writes to copied regions work" "ok=$w1, status $(dm_status $NAME)"
	fi
else
	ktap_fail "ro: writes to copied regions work" "mode is $mode, not ro"
fi

# 6. ro: writes needing a new copy or a new bit fail (partial write into
#    uncopied region 20, whole-region write to uncopied region 21); nothing
#    gets copied.
if [ "$mode" = ro ]; then
	w2=0; w3=0
	c0=$(sh_copied $NAME)
	dd if=/dev/urandom of="$DM" bs=4096 count=1 seek=$((20 * RS / 8 + 1)) \
		oflag=direct status=none 2>/dev/null && w2=1
	sh_write_region "$DM" 21 $RS /dev/urandom 2>/dev/null && w3=1
	c1=$(sh_copied $NAME)
	if [ $w2 = 0 ] && [ $w3 = 0 ] && [ "$c1" = "$c0" ] &&
	   [ "$(sh_region_md5 "$DM" 20 $RS 2)" = "$(sh_region_md5 "$ORIG" 20 $RS 2)" ]; then
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
sh_flush "$DM" 2>/dev/null
rc=$?
# shellcheck disable=SC2317 # called by sh_wait_for
_is_fail() { [ "$(sh_mode "$NAME")" = fail ]; }
sh_wait_for 5 _is_fail
st=$(dm_status $NAME)
ev2=$(sh_event_nr $NAME)
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
if [ "$(dm_status $NAME)" = Fail ] && [ $n = 0 ]; then
	ktap_ok "fail: reads and writes fail"
else
	ktap_fail "fail: reads and writes fail" "$n of 3 I/Os succeeded, status '$(dm_status $NAME)'"
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
dd if=/dev/zero of="$META" bs=1M count=4 oflag=direct status=none
dd if=/dev/zero of="$DEST" bs=1M count=$MB oflag=direct status=none
sh_setup dm_create $ONAME "0 $SECT linear $ORIG 0"
sh_setup dm_create $NAME "0 $SECT stream $META $DEST $(dm_dev $ONAME) $RS 1 paused"
# Two regions copied by whole writes before the origin dies.
sh_write_region "$DM" 0 $RS /dev/urandom
sh_write_region "$DM" 1 $RS /dev/urandom
R01_MD5=$(sh_region_md5 "$DM" 0 $RS 2)
c0=$(sh_copied $NAME)
if dm_reload $ONAME "0 $SECT error"; then
	ktap_ok "copy errors: setup, origin swapped for error ($c0 regions copied)"
else
	ktap_fail "copy errors: setup, origin swapped for error"
fi
dmsetup message $NAME 0 continue

# 11. Copy errors are counted.
# shellcheck disable=SC2317 # called by sh_wait_for
_has_errors() { [ "$(sh_copy_errors "$NAME")" -gt 0 ] 2>/dev/null; }
if sh_wait_for 20 _has_errors; then
	ktap_ok "copy errors counted ($(sh_copy_errors $NAME) after start)"
else
	ktap_fail "copy errors counted" "status: $(dm_status $NAME)"
fi

# 12. Retries are bounded: the error count stops growing and nothing is left
#     in flight (stable for 5 s, within 90 s).
stable=0
prev=""
t0=$(sh_now_ms)
while [ $(($(sh_now_ms) - t0)) -lt 90000 ]; do
	cur="$(sh_copy_errors $NAME) $(sh_copying $NAME)"
	if [ "$cur" = "$prev" ] && [ "${cur#* }" = 0 ]; then
		stable=$((stable + 1))
		[ $stable -ge 5 ] && break
	else
		stable=0
	fi
	prev=$cur
	sleep 1
done
ktap_diag "after $((($(sh_now_ms) - t0) / 1000)) s: $(dm_status $NAME)"
if [ $stable -ge 5 ]; then
	ktap_ok "copy retries bounded: error count settles at $(sh_copy_errors $NAME)"
else
	ktap_fail "copy retries bounded: error count settles" "still changing: $prev"
fi

# 13. Failed regions are left uncopied; the copied ones stay copied and
#     readable.
c1=$(sh_copied $NAME)
tot=$(sh_total $NAME)
if [ "$c1" = "$c0" ] && [ "$c1" -lt "$tot" ] && [ "$(sh_state $NAME)" != complete ] &&
   [ "$(sh_region_md5 "$DM" 0 $RS 2)" = "$R01_MD5" ]; then
	ktap_ok "failed regions left uncopied ($c1/$tot, state $(sh_state $NAME))"
else
	ktap_fail "failed regions left uncopied" "copied $c0 -> $c1 of $tot, state $(sh_state $NAME)"
fi

# 14. Still removable.
if timeout 60 dmsetup remove $NAME; then
	ktap_ok "device removable after copy errors"
else
	ktap_fail "device removable after copy errors"
fi
dm_remove $ONAME
ktap_finish
