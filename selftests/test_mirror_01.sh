#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_mirror_01: mirror mode (the "mirror" table option).
#
# 1. Writes reach both legs: with the copy paused (so regions are really
#    uncopied), a partial write into an uncopied region, a whole-region
#    write and a write into a copied region; the origin alone then holds
#    every write, the device reads them, the destination holds the written
#    regions; after the copy completes, destination == origin == expected.
#    Every flush reaches the origin (its flush counter grows at each one,
#    where a one-way stream flushes it once), a FUA write too, and a
#    discard reaches both legs.
# 2. "mirror off": status one-way, mirror gone from the opt args and the
#    table line, ORIGIN_STALE (not FAILED) in the superblock, later writes
#    one-way; "mirror on" is refused; a mirror table on that metadata
#    (stale, regions copied) is refused.
# 3. A one-way stream records ORIGIN_STALE at its first resume; with
#    nothing copied it can be reloaded with mirror, which clears the flag.
# 4. An origin-leg failure (the origin's linear wrapper switched to a
#    flakey error_writes table): the write succeeds, status degraded, an
#    event, ORIGIN_STALE|ORIGIN_FAILED in the superblock, one DMERR.
# 5. Zero loss: fio with crc32c verification through a mirrored stream
#    whose copy is rate limited (in flight); a verify-only replay on the
#    origin alone passes, and the origin equals the device.

# shellcheck disable=SC2317 # helpers called through ktap_check
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd fio od cmp
sh_start 26 dm-flakey

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))		# region size, bytes
MB=8
STALE=2 FAILED=4		# STREAM_SB_FLAG_ORIGIN_*

# sb_flags META: the superblock's flags word, as on the disk.
sb_flags()
{
	dd if="$1" bs=4096 count=1 iflag=direct status=none | od -An -tu4 -j4 -N4 | tr -d ' '
}

# flags_are META WANT: the superblock's flags are exactly WANT.
flags_are()
{
	[[ $(sb_flags "$1") == "$2" ]]
}

flushes() { sh_stat "$1" 16; }
writes() { sh_stat "$1" 5; }

# tbl_opts NAME: the table line's words after the region size.
tbl_opts()
{
	local w

	read -r -a w <<<"$(sh_table "$1")"
	echo "${w[*]:7}"
}

# write_file DEV FILE OFFSET_BYTES: FILE onto DEV at OFFSET with O_DIRECT.
write_file()
{
	dd if="$2" of="$1" bs=4096 seek=$(($3 / 4096)) oflag=direct conv=notrunc status=none
}

# patch EXPECTED FILE OFFSET_BYTES: the same write applied to the image.
patch()
{
	dd if="$2" of="$1" bs=4096 seek=$(($3 / 4096)) conv=notrunc status=none
}

sh_stream_loops $MB 1
LEN=$(sectors "$ORIG")
NR=$((LEN / RS))
EXP=$(sh_tmpfile)
sh_read "$ORIG" >"$EXP"

# --- 1. writes, flushes, FUA and discards reach both legs -----------------------

kmsg "dm-stream selftest: $TEST_NAME: mirror table"
sh_setup dm_create m1 "0 $LEN stream $META $DEST $ORIG $RS 2 paused mirror"
DEV=$(dm_dev m1)
# The origin is opened read-only, then read-write: dm upgrades the device,
# and a reference dropped through the wrong pointer shows in the log.
if [[ $(sh_mirror m1) == mirror ]] && sh_has_word "$(sh_opt_args m1)" mirror &&
   sh_opt_ok "$(sh_opt_args m1)" && sh_has_word "$(tbl_opts m1)" mirror &&
   ! sh_dmesg_has "not in table devices list"; then
	ktap_ok "mirror table: status field mirror, mirror in the opt args and the table line"
else
	ktap_fail "mirror table: status field mirror, mirror in the opt args and the table line" \
		"status '$(dm_status m1)', table '$(sh_table m1)', log: $(dmesg_since_mark | tail -n 3)"
fi

# Region 3: a partial 8 KiB write (copy first); region 5: a whole-region
# write, then 4 KiB into it (a copied region).
P3=$(sh_tmpfile) W5=$(sh_tmpfile) P5=$(sh_tmpfile)
head -c 8192 /dev/urandom >"$P3"
head -c $RB /dev/urandom >"$W5"
head -c 4096 /dev/urandom >"$P5"
write_file "$DEV" "$P3" $((3 * RB + 12288)) && patch "$EXP" "$P3" $((3 * RB + 12288))
write_file "$DEV" "$W5" $((5 * RB)) && patch "$EXP" "$W5" $((5 * RB))
write_file "$DEV" "$P5" $((5 * RB + 8192)) && patch "$EXP" "$P5" $((5 * RB + 8192))
ktap_diag "copied while paused: $(sh_copied m1)/$NR, state $(sh_state m1)"
ktap_check "mid-copy: the origin alone holds every write (partial, whole, into a copied region)" \
	sh_cmp "$ORIG" "$EXP"
ktap_check "mid-copy: the device reads every write" sh_cmp "$DEV" "$EXP"
if [[ $(sh_region_md5 "$DEST" 3 $RS) == $(sh_region_md5 "$EXP" 3 $RS) &&
      $(sh_region_md5 "$DEST" 5 $RS) == $(sh_region_md5 "$EXP" 5 $RS) ]]; then
	ktap_ok "mid-copy: the destination holds the written regions 3 and 5"
else
	ktap_fail "mid-copy: the destination holds the written regions 3 and 5"
fi

f0=$(flushes "$ORIG")
sh_flush "$DEV"
f1=$(flushes "$ORIG")
sh_flush "$DEV"
f2=$(flushes "$ORIG")
if [[ $f1 -gt $f0 && $f2 -gt $f1 ]]; then
	ktap_ok "every flush reaches the origin (origin flushes $f0 -> $f1 -> $f2)"
else
	ktap_fail "every flush reaches the origin" "origin flushes $f0 -> $f1 -> $f2"
fi

# A FUA write (O_DIRECT|O_DSYNC) into region 7: the origin's loop device
# has a write cache and no FUA, so the block layer turns the origin leg's
# FUA into a write and a flush.
F7=$(sh_tmpfile)
head -c 4096 /dev/urandom >"$F7"
w0=$(writes "$ORIG") f0=$(flushes "$ORIG")
dd if="$F7" of="$DEV" bs=4096 seek=$((7 * RB / 4096)) oflag=direct,dsync conv=notrunc \
	status=none && patch "$EXP" "$F7" $((7 * RB))
w1=$(writes "$ORIG") f1=$(flushes "$ORIG")
if [[ $w1 -gt $w0 && $f1 -gt $f0 ]] &&
   [[ $(sh_md5 "$ORIG" 4096 $((7 * RB))) == $(sh_md5 "$F7") ]]; then
	ktap_ok "a FUA (O_DSYNC) write reaches the origin (origin writes $w0 -> $w1, flushes $f0 -> $f1)"
else
	ktap_fail "a FUA (O_DSYNC) write reaches the origin" "origin writes $w0 -> $w1, flushes $f0 -> $f1"
fi

# A discard of region 10, written whole first so that both legs hold data.
if [[ $(cat "$(sh_sysfs "$ORIG")/queue/discard_max_bytes") -gt 0 &&
      $(cat "$(sh_sysfs "$DEST")/queue/discard_max_bytes") -gt 0 ]]; then
	sh_write_region "$DEV" 10 $RS /dev/urandom
	sh_discard "$DEV" $((10 * RB)) $RB
	head -c $RB /dev/zero >"$TEST_TMP/zero"
	patch "$EXP" "$TEST_TMP/zero" $((10 * RB))
	z=$(sh_zero_md5 $RB)
	if [[ $(sh_region_md5 "$ORIG" 10 $RS) == "$z" && $(sh_region_md5 "$DEST" 10 $RS) == "$z" ]]; then
		ktap_ok "a discard reaches both legs (region 10 reads zeroes on each)"
	else
		ktap_fail "a discard reaches both legs" "region 10 of the origin or destination not zero"
	fi
else
	ktap_skip "a discard reaches both legs" "the loop devices do not discard"
fi

dm_message m1 continue
if sh_wait_state m1 complete 300; then
	if sh_cmp "$DEST" "$EXP" && sh_cmp "$ORIG" "$EXP"; then
		ktap_ok "copy complete: destination == origin == every write"
	else
		ktap_fail "copy complete: destination == origin == every write"
	fi
else
	ktap_fail "copy complete: destination == origin == every write" \
		"not complete in 300 s: $(dm_status m1)"
fi
ktap_check "while mirroring the superblock calls the origin current (flags 0)" flags_are "$META" 0

# --- 2. mirror off ------------------------------------------------------------------

ev=$(sh_event_nr m1)
ktap_check "message 'mirror off' accepted" dm_message m1 mirror off
if [[ $(sh_mirror m1) == one-way ]] && ! sh_has_word "$(sh_opt_args m1)" mirror &&
   sh_opt_ok "$(sh_opt_args m1)" && ! sh_has_word "$(tbl_opts m1)" mirror &&
   [[ $(sh_event_nr m1) -gt $ev ]]; then
	ktap_ok "mirror off: status one-way, mirror gone from opt args and table line, an event"
else
	ktap_fail "mirror off: status one-way, mirror gone from opt args and table line, an event" \
		"status '$(dm_status m1)', table '$(sh_table m1)', events $ev -> $(sh_event_nr m1)"
fi
ktap_check "mirror off: ORIGIN_STALE in the superblock, not FAILED" flags_are "$META" $STALE
O20=$(sh_region_md5 "$ORIG" 20 $RS)
sh_write_region "$DEV" 20 $RS /dev/urandom
if [[ $(sh_region_md5 "$ORIG" 20 $RS) == "$O20" &&
      $(sh_region_md5 "$DEV" 20 $RS) == $(sh_region_md5 "$DEST" 20 $RS) &&
      $(sh_region_md5 "$DEV" 20 $RS) != "$O20" ]]; then
	ktap_ok "after mirror off a write goes one-way (origin unchanged)"
else
	ktap_fail "after mirror off a write goes one-way (origin unchanged)"
fi
sh_msg_fail "message 'mirror on' refused" m1 mirror on
dm_remove m1
sh_ctr_fail "mirror table on a stale origin with regions copied refused" \
	"0 $LEN stream $META $DEST $ORIG $RS 1 mirror" "stale"

# --- 3. a fresh one-way stream, nothing copied, reloaded with mirror ---------------

META2=
make_loop -v META2 1 || ktap_skip_all "cannot set up a loop device"
sh_setup dm_create m3 "0 $LEN stream $META2 $DEST $ORIG $RS 1 paused"
ktap_check "a one-way stream records ORIGIN_STALE at its first resume" flags_are "$META2" $STALE
if dm_reload m3 "0 $LEN stream $META2 $DEST $ORIG $RS 2 paused mirror" &&
   [[ $(sh_mirror m3) == mirror ]] && flags_are "$META2" 0; then
	ktap_ok "nothing copied: reloaded with mirror, status mirror, ORIGIN_STALE cleared"
else
	ktap_fail "nothing copied: reloaded with mirror, status mirror, ORIGIN_STALE cleared" \
		"$DM_ERR; status: $(dm_status m3); flags $(sb_flags "$META2")"
fi
dm_remove m3

# --- 4. an origin-leg failure -------------------------------------------------------

sh_zero "$META2" 1
sh_setup dm_create morig "0 $LEN linear $ORIG 0"
sh_setup dm_create m4 "0 $LEN stream $META2 $DEST $(dm_dev morig) $RS 2 paused mirror"
DEV=$(dm_dev m4)
sh_setup dm_reload morig "$(sh_failing_table "$ORIG")"
ev=$(sh_event_nr m4)
O30=$(sh_region_md5 "$ORIG" 30 $RS)
kmsg "dm-stream selftest: $TEST_NAME: origin-leg failure"
W30=$(sh_tmpfile) W31=$(sh_tmpfile)
head -c $RB /dev/urandom >"$W30"
head -c $RB /dev/urandom >"$W31"
if write_file "$DEV" "$W30" $((30 * RB)); then
	ktap_ok "origin-leg failure: the write succeeds"
else
	ktap_fail "origin-leg failure: the write succeeds"
fi
write_file "$DEV" "$W31" $((31 * RB))
if [[ $(sh_mirror m4) == degraded && $(sh_event_nr m4) -gt $ev ]] &&
   ! sh_has_word "$(sh_opt_args m4)" mirror; then
	ktap_ok "origin-leg failure: status degraded, an event"
else
	ktap_fail "origin-leg failure: status degraded, an event" \
		"status '$(dm_status m4)', events $ev -> $(sh_event_nr m4)"
fi
ktap_check "origin-leg failure: ORIGIN_STALE|ORIGIN_FAILED in the superblock" \
	flags_are "$META2" $((STALE | FAILED))
n=$(dmesg_since_mark | grep -c "origin write failed")
ktap_check "origin-leg failure: one DMERR ($n)" test "$n" -eq 1
if [[ $(sh_region_md5 "$DEV" 30 $RS) == $(sh_md5 "$W30") &&
      $(sh_region_md5 "$DEST" 31 $RS) == $(sh_md5 "$W31") &&
      $(sh_region_md5 "$ORIG" 30 $RS) == "$O30" ]]; then
	ktap_ok "origin-leg failure: the device and the destination hold both writes"
else
	ktap_fail "origin-leg failure: the device and the destination hold both writes"
fi
dm_remove m4
dm_remove morig

# --- 5. zero loss: fio through a mirrored stream mid-copy --------------------------

sh_fill_random "$ORIG"
sh_zero "$DEST"
sh_zero "$META2" 1
# 16 KiB/s: the 2 MiB fio never writes alone take the copy two minutes.
sh_setup dm_create m5 "0 $LEN stream $META2 $DEST $ORIG $RS 3 rate 16 mirror"
DEV=$(dm_dev m5)
FIO=(--name=w --rw=randwrite --bs=4k --offset=1M --size=6M --io_size=2M
     --randrepeat=1 --randseed=4711 --ioengine=psync --direct=1
     --verify=crc32c --verify_fatal=1)
fio --output="$TEST_TMP/fio.out" --filename="$DEV" "${FIO[@]}" --do_verify=1 \
	>/dev/null 2>"$TEST_TMP/fio.err"
rc=$?
c=$(sh_copied m5)
ktap_check "fio with crc32c verification through the mirrored stream (exit $rc)" test $rc -eq 0
if [[ $c -lt $NR ]]; then
	ktap_ok "the copy was in flight all along ($c/$NR regions copied after fio)"
else
	ktap_skip "the copy was in flight all along" "fio took longer than the rate-limited copy"
fi
fio --output="$TEST_TMP/fio2.out" --filename="$ORIG" "${FIO[@]}" --verify_only \
	>/dev/null 2>"$TEST_TMP/fio2.err"
rc=$?
ktap_check "zero loss: a verify-only replay on the origin alone passes (exit $rc)" test $rc -eq 0
ktap_check "zero loss: the origin alone equals the device" sh_cmp "$ORIG" "$DEV"
if [[ $rc -ne 0 ]]; then
	ktap_diag "$(grep -iE "verify|error|crc" "$TEST_TMP/fio2.out" "$TEST_TMP/fio2.err" | head -n 5)"
fi
dm_remove m5

ktap_finish
