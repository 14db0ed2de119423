#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_desterr_01: destination write errors.
#
# The destination is a dm-linear whose table is swapped for one with
# "error" segments over region 1 (copied) and region 4 (not copied):
# - a user write to the copied region fails with EIO, nothing else changes;
# - a partial write to the uncopied region needs a copy, which fails every
#   try: the write fails with EIO, one copy error, the mode stays rw;
# - a whole-region write to it fails with EIO and leaves it uncopied;
# - background copying copies every other region, gives region 4 up after
#   its tries and stalls with a dm event;
# - once the destination is healthy again, `continue` completes the copy,
#   and the device holds every acknowledged write and nothing else.
# (Destination flush failures: test_commitfail_01.)

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 7

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))
sh_stream_loops 8 1
origin=$ORIG dloop=$DEST meta=$META
len=$(sectors "$origin")
nr=$((len / RS))

sh_setup dm_create dlin "0 $len linear $dloop 0"
sh_setup dm_create s "0 $len stream $meta $(dm_dev dlin) $origin $RS 1 paused"
dev=$(dm_dev s)
expected=$(sh_tmpfile)
sh_read "$origin" >"$expected"

# Region 1 copied by a whole-region write, committed.
data=$(sh_tmpfile)
head -c $RB /dev/urandom >"$data"
dd if="$data" of="$dev" bs=$RB seek=1 oflag=direct conv=fsync status=none
sh_patch_file "$expected" "$data" $RS

sh_setup dm_reload dlin "0 $RS linear $dloop 0
$RS $RS error
$((2 * RS)) $((2 * RS)) linear $dloop $((2 * RS))
$((4 * RS)) $RS error
$((5 * RS)) $((len - 5 * RS)) linear $dloop $((5 * RS))"

if ! dd if=/dev/urandom of="$dev" bs=4096 seek=$((RB / 4096 + 3)) count=1 oflag=direct \
	status=none 2>/dev/null && [[ $(sh_mode s) == rw && $(sh_copy_errors s) == 0 ]]; then
	ktap_ok "write to a copied region on a failing destination: EIO, mode rw"
else
	ktap_fail "write to a copied region on a failing destination: EIO, mode rw" \
		"status $(dm_status s)"
fi

if ! dd if=/dev/urandom of="$dev" bs=4096 seek=$((4 * RB / 4096)) count=1 oflag=direct \
	status=none 2>/dev/null && [[ $(sh_mode s) == rw && $(sh_copy_errors s) == 1 ]]; then
	ktap_ok "partial write needing a failing copy: EIO, one copy error, mode rw"
else
	ktap_fail "partial write needing a failing copy: EIO, one copy error, mode rw" \
		"status $(dm_status s)"
fi

c0=$(sh_copied s)
if ! dd if=/dev/urandom of="$dev" bs=$RB seek=4 count=1 oflag=direct status=none 2>/dev/null &&
   [[ $(sh_copied s) == "$c0" && $(sh_mode s) == rw ]]; then
	ktap_ok "whole-region write to a failing destination: EIO, region left uncopied"
else
	ktap_fail "whole-region write to a failing destination: EIO, region left uncopied" \
		"copied $c0 -> $(sh_copied s), status $(dm_status s)"
fi

ev0=$(sh_event_nr s)
dm_message s continue
for ((i = 0; i < 600; i++)); do
	[[ $(sh_copied s) == $((nr - 1)) && $(sh_copying s) == 0 && $(sh_event_nr s) -gt $ev0 ]] &&
		break
	sleep 0.2
done
if [[ $(sh_copied s) == $((nr - 1)) && $(sh_copy_errors s) -ge 2 && $(sh_event_nr s) -gt $ev0 &&
      $(sh_mode s) == rw ]]; then
	ktap_ok "background copying: all but the failing region, then a stall event"
else
	ktap_fail "background copying: all but the failing region, then a stall event" \
		"status $(dm_status s), events $ev0 -> $(sh_event_nr s)"
fi

sh_setup dm_reload dlin "0 $len linear $dloop 0"
dm_message s continue
if sh_wait_state s complete 120; then
	ktap_ok "healthy destination: continue completes the copy"
else
	ktap_fail "healthy destination: continue completes the copy" "status $(dm_status s)"
fi
if sh_cmp "$dev" "$expected" && sh_cmp "$dloop" "$expected"; then
	ktap_ok "every acknowledged write is there, and no failed one"
else
	ktap_fail "every acknowledged write is there, and no failed one"
fi
if sh_dmesg_has "copy of regions 4-4 failed"; then
	ktap_ok "the given-up copy is in the kernel log"
else
	ktap_fail "the given-up copy is in the kernel log"
fi

ktap_finish
