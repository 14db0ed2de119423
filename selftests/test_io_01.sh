#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_io_01: I/O through a paused target.
#
# With background copying paused: the origin's content reads back through
# the target; writes (partial 4 KiB inside a region, a whole region, a write
# straddling two regions, a 512-byte write, a write into an already copied
# region, a write to the last region) complete and read back as the origin
# image with the writes applied, immediately and after "continue" has let
# streaming finish. Exactly the written regions are copied while paused (the
# status count and the destination's content say so), the origin never
# changes, and the destination ends up equal to the expected image.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd cmp

sh_start 14

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))		# region size, bytes
MB=16
LEN=$((MB * 2048))
NR=$((LEN / RS))		# 256 regions
NAME=io01

sh_stream_loops $MB 4
sh_fill_byte "$DEST" 245	# 0xa5

IMG=$(sh_tmpfile)		# expected content of the target
PAT=$(sh_tmpfile)		# the destination's initial content
sh_read "$ORIG" >"$IMG"
sh_read "$DEST" >"$PAT"
ORIG_MD5=$(md5sum <"$IMG" | cut -d' ' -f1)

sh_setup dm_create $NAME "0 $LEN stream $META $DEST $ORIG $RS 1 paused"
DEV=$(dm_dev $NAME)

# 1-2: a fresh paused target is the origin.
ktap_check "reads through the target equal the origin" \
	test "$(sh_md5 "$DEV")" = "$ORIG_MD5"
ktap_check "fresh target: 0/$NR copied, paused" \
	test "$(sh_field $NAME 4) $(sh_state $NAME)" = "0/$NR paused"

# 3: the writes. sh_io_write TAG SECTOR BYTES: one O_DIRECT write of BYTES
# random bytes at SECTOR, applied to the target and to the expected image.
WFAIL=
sh_io_write()
{
	local src
	src=$(sh_tmpfile)
	head -c "$3" /dev/urandom >"$src"
	if ! dd if="$src" of="$DEV" bs="$3" count=1 seek=$(($2 * 512)) \
		oflag=direct,seek_bytes status=none; then
		WFAIL="$WFAIL $1"
	fi
	sh_patch_file "$IMG" "$src" "$2"
	rm -f "$src"
}
sh_io_write partial	$((5 * RS + 32))	4096	# region 5
sh_io_write whole	$((10 * RS))		$RB	# region 10
sh_io_write straddle	$((20 * RS + RS / 2))	$RB	# regions 20, 21
sh_io_write 512B	$((30 * RS + 3))	512	# region 30
sh_io_write recopy	$((10 * RS + 8))	4096	# region 10 again
sh_io_write last	$((LEN - 8))		4096	# region NR-1
WRITTEN="5 10 20 21 30 $((NR - 1))"
ktap_check "writes while paused complete (failed:${WFAIL:- none})" \
	test -z "$WFAIL"

# 4-8: immediately after the writes.
IMG_MD5=$(md5sum <"$IMG" | cut -d' ' -f1)
ktap_check "target reads back origin + writes while paused" \
	test "$(sh_md5 "$DEV")" = "$IMG_MD5"
ktap_check "copied count rose by exactly the regions written (6), none copying" \
	test "$(sh_field $NAME 4) $(sh_copying $NAME)" = "6/$NR 0"
D=$(sh_tmpfile)
sh_read "$DEST" >"$D"
GOT=$(sh_regions_diff "$D" "$PAT" $RB)
ktap_check "destination changed in exactly the written regions (got: $GOT)" \
	test "$GOT" = "$WRITTEN"
# shellcheck disable=SC2086 # WRITTEN is a list
GOT=$(sh_regions_diff "$D" "$IMG" $RB $WRITTEN)
ktap_check "written regions on the destination hold origin + writes (bad: ${GOT:-none})" \
	test -z "$GOT"
ktap_check "origin unchanged after the writes" \
	test "$(sh_md5 "$ORIG")" = "$ORIG_MD5"

# 9-14: let streaming finish.
if dm_message $NAME continue; then
	ktap_ok "message continue accepted"
else
	ktap_fail "message continue accepted"
fi
if sh_wait_state $NAME complete 150; then
	ktap_ok "streaming completes after continue"
else
	ktap_fail "streaming completes after continue" "status: $(dm_status $NAME)"
fi
ktap_check "complete: copied == total, none copying" \
	test "$(sh_field $NAME 4) $(sh_copying $NAME)" = "$NR/$NR 0"
ktap_check "target reads back origin + writes after streaming" \
	test "$(sh_md5 "$DEV")" = "$IMG_MD5"
ktap_check "destination equals origin + writes" sh_cmp "$DEST" "$IMG"
ktap_check "origin unchanged at the end" \
	test "$(sh_md5 "$ORIG")" = "$ORIG_MD5"

dm_remove $NAME
ktap_finish
