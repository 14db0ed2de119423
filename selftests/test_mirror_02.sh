#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_mirror_02: mirror mode and the identity record's origin samples.
#
# The constructor compares the origin with the samples the identity record
# checks (a CRC32C of 8 sectors each); mirror mode writes the origin, so a
# sample must be unchecked on disk before an origin-leg write overlaps it,
# or the next load would refuse the origin it wrote itself.
#
# Metadata formatted by a mirror table gets a record (dmst.samples) with
# samples at sectors 260 and 1024. Then: the mirror table loads; a 4 KiB
# write at sector 256 (half over sample 0) reaches the origin and leaves
# only sample 1 checked on disk; a write far from both unchecks nothing;
# the table loads again on the origin it changed; and (the control that
# shows the samples are really compared) after a change to the origin at
# sample 1, behind the target's back, the table is refused.

# shellcheck disable=SC2317 # helpers called through ktap_check
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 6

RS=128				# region size, sectors (64 KiB)

sh_stream_loops 4 1
LEN=$(sectors "$ORIG")
TABLE="0 $LEN stream $META $DEST $ORIG $RS 2 paused mirror"

# checked: the record's sample_checked mask, as on the disk.
checked()
{
	local f

	f=$(sh_tmpfile)
	sh_read "$META" 4096 >"$f" && dmst_py samples checked "$f"
}

checked_is()
{
	[[ $(checked) == "$1" ]]
}

# The metadata, formatted by a mirror table, then given the record.
sh_setup dm_create m "$TABLE"
sh_setup dm_remove m
SB=$(sh_tmpfile) IMG=$(sh_tmpfile)
if ! sh_read "$META" 4096 >"$SB" || ! sh_read "$ORIG" >"$IMG" ||
   ! dmst_py samples set "$SB" "$IMG" 260 1024 ||
   ! dd if="$SB" of="$META" bs=4096 count=1 oflag=direct conv=notrunc status=none; then
	ktap_bail "cannot write the identity record"
fi

if dm_create m "$TABLE" && checked_is 3; then
	ktap_ok "a mirror table loads on metadata with two checked origin samples"
else
	ktap_fail "a mirror table loads on metadata with two checked origin samples" \
		"${DM_ERR:-checked $(checked)}"
	ktap_bail "no target"
fi
DEV=$(dm_dev m)

W=$(sh_tmpfile)
head -c 4096 /dev/urandom >"$W"
sh_write_at "$DEV" "$W" 256
ktap_check "a write over sample 0 unchecks it on disk, sample 1 stays checked" checked_is 2
if [[ $(sh_md5 "$ORIG" 4096 $((256 * 512))) == $(sh_md5 "$W") ]]; then
	ktap_ok "that write reached the origin"
else
	ktap_fail "that write reached the origin"
fi
sh_write_at "$DEV" "$W" 4096
ktap_check "a write far from the samples unchecks nothing" checked_is 2
dm_remove m

if dm_create m "$TABLE"; then
	ktap_ok "the table loads again on the origin it wrote (sample 0 unchecked)"
	dm_remove m
else
	ktap_fail "the table loads again on the origin it wrote (sample 0 unchecked)" "$DM_ERR"
fi

sh_write_at "$ORIG" "$W" 1024
sh_ctr_fail "control: an origin changed at checked sample 1 is refused" "$TABLE" \
	"content differs"

ktap_finish
