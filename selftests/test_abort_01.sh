#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_abort_01: dmstream abort, going back to the origin.
#
# A writer (dmst.writer) writes random 4 KiB blocks with O_DIRECT to the
# first half of the device all along, before, during and after the abort,
# and keeps the image of every acknowledged write. The copy is rate limited
# and then paused, so it is mid-way when aborted whatever the host's speed
# (the second half is never written: only the background copy could copy it).
#
# - Mirror (copy's default) of a linear device over a disk: status and
#   --json say "mirror"; abort mid-copy (exit 0) leaves the device linear
#   on the disk, the destination and the metadata device held by nobody,
#   and the disk alone holds every acknowledged write.
# - One-way (copy --no-mirror): status says "one-way"; abort is refused
#   with exit 7 and "up to N regions copied or written since the copy
#   started", the device still a stream; abort --force goes back, and the
#   origin then lacks a write made during the copy (the loss the refusal
#   is about).
# - Degraded: an origin whose writes fail (dm-flakey error_writes swapped
#   in under it) turns a mirrored stream "degraded"; abort is refused with
#   exit 7 and says so.
# - A helper origin: a device with a two-segment table copied in mirror
#   mode (its helper NAME-origin read-write); abort mid-copy under the
#   writer gives the device its two-segment table back, removes the helper,
#   and the two disks hold every acknowledged write.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum cmp
sh_start 31 dm-flakey

MB=16
LEN=$((MB * 2048))
HALF_BYTES=$((MB * 1048576 / 2))
# 256 KiB/s: the 16 MiB cannot be copied in under 64 s; the copy is paused
# right after it starts anyway.
RATE=256k

# mirror_of NAME: the mirror field of `dmstream status --json`.
mirror_of()
{
	"$DMSTREAM" status "$1" --json --interval 0 2>/dev/null |
		grep -o '"mirror":"[a-z-]*"' | cut -d'"' -f4
}

_mirror_is()
{
	[[ $(mirror_of "$1") == "$2" ]]
}

# holders DEV: what holds DEV open in a dm table (sysfs holders).
holders()
{
	ls "/sys/dev/block/$(sh_devt "$1")/holders" 2>/dev/null
}

make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v ORIG $MB orig || ktap_skip_all "cannot set up loop devices"
make_loop -v DEST $MB dest || ktap_skip_all "cannot set up loop devices"
make_loop -v B $((MB / 2)) b || ktap_skip_all "cannot set up loop devices"
make_loop -v C $((MB / 2)) c || ktap_skip_all "cannot set up loop devices"
make_loop -v O3 $MB o3 || ktap_skip_all "cannot set up loop devices"

# --- mirror: abort mid-copy under writes ---------------------------------------------

sh_fill_random "$ORIG"
sh_zero "$META"
IMG=$(sh_tmpfile)
sh_read "$ORIG" >"$IMG"
sh_setup dm_create ta-one "0 $LEN linear $ORIG 0"
DEV=$(dm_dev ta-one)
kmsg "dm-stream selftest: $TEST_NAME: mirror"
sh_writer_start "$DEV" "$IMG" 0 "$HALF_BYTES"
sh_writer_more 20 || ktap_diag "the writer has not started: $(cat "$TEST_TMP/sh.writer.out")"

tt_expect "copy (mirror by default) while writing: exit 0, says mirrored" 0 "mirrored" \
	copy ta-one --dest "$DEST" --meta "$META" --rate $RATE
tt_run pause ta-one
ktap_check "... the table has the mirror option" \
	sh_has_word "$(sh_table ta-one)" mirror
m=$(mirror_of ta-one)
ktap_check "... status --json says mirror ($m)" test "$m" = mirror
tt_run status ta-one --interval 0
ktap_check "... and so does the status line" grep -q ", mirror" <<<"$TT_OUT"
sh_writer_more 50
c=$(sh_copied ta-one)
tot=$(sh_total ta-one)
ktap_check "... mid-way while the writer writes ($c/$tot regions copied, $(sh_writes) writes)" \
	test -n "$c" -a -n "$tot" -a "${c:-0}" -lt "${tot:-0}"
n_before=$(sh_writes)
tt_expect "abort mid-copy: exit 0, linear on its origin" 0 "aborted: linear on its origin" \
	abort ta-one
sh_writer_more 50
sh_writer_stop
ktap_check "... the writer kept writing across it ($n_before writes before, $(sh_writes) in all; rc $SH_WRITER_RC: $SH_WRITER_OUT)" \
	test "$SH_WRITER_RC" -eq 0 -a "$(sh_writes)" -gt "$n_before"
ktap_check "... the table is linear on the disk again" \
	test "$(sh_table ta-one)" = "0 $LEN linear $(sh_devt "$ORIG") 0"
ktap_check "... destination and metadata device are held by nobody" \
	test -z "$(holders "$DEST")" -a -z "$(holders "$META")"
ktap_check "... the disk alone holds every acknowledged write" sh_cmp "$ORIG" "$IMG"
ktap_check "... and the device reads it" sh_cmp "$DEV" "$IMG"
tt_expect "abort of a device that is no stream: exit 2" 2 "not a stream device" abort ta-one
dm_remove ta-one

# --- one-way: refused, then --force --------------------------------------------------

sh_fill_random "$ORIG"
sh_zero "$META"
sh_zero "$DEST"
OLD_MD5=$(sh_md5 "$ORIG")
sh_setup dm_create ta-two "0 $LEN linear $ORIG 0"
DEV=$(dm_dev ta-two)
kmsg "dm-stream selftest: $TEST_NAME: one-way"
tt_expect "copy --no-mirror: exit 0, says one-way" 0 "one-way" \
	copy ta-two --dest "$DEST" --meta "$META" --rate $RATE --no-mirror
tt_run pause ta-two
m=$(mirror_of ta-two)
ktap_check "... status --json says one-way ($m); no mirror option in the table" \
	test "$m" = one-way -a -z "$(sh_has_word "$(sh_table ta-two)" mirror && echo y)"
W=$(sh_tmpfile)
head -c 65536 /dev/urandom >"$W"
sh_write_at "$DEV" "$W" 0 65536
c=$(sh_copied ta-two)
tt_expect "abort of a one-way stream: refused, exit 7, saying what would be lost" 7 \
	"one-way.*up to $c regions .* copied or written since the copy started" abort ta-two
ktap_check "... still a stream" grep -q " stream " <<<"$(sh_table ta-two)"
tt_expect "abort --force: exit 0, says the origin lacks writes" 0 \
	"origin lacks the writes" abort ta-two --force
ktap_check "... linear on the origin, which lacks the write made during the copy" \
	test "$(sh_table ta-two)" = "0 $LEN linear $(sh_devt "$ORIG") 0" -a \
	"$(sh_md5 "$DEV" 65536)" != "$(md5sum <"$W" | cut -d' ' -f1)" -a \
	"$(sh_md5 "$ORIG")" = "$OLD_MD5"
dm_remove ta-two

# --- degraded: refused --------------------------------------------------------------

sh_fill_random "$O3"
sh_zero "$META"
sh_setup dm_create ta-o3 "0 $LEN linear $O3 0"
sh_setup dm_create ta-three "0 $LEN linear $(dm_dev ta-o3) 0"
DEV=$(dm_dev ta-three)
kmsg "dm-stream selftest: $TEST_NAME: degraded"
tt_expect "copy (mirror) over an origin that is a dm device: exit 0" 0 "mirrored" \
	copy ta-three --dest "$DEST" --meta "$META" --rate $RATE
tt_run pause ta-three
sh_setup dm_reload ta-o3 "$(sh_failing_table "$O3")"
dd if=/dev/urandom of="$DEV" bs=64k count=1 seek=4 oflag=direct status=none ||
	ktap_diag "the write to ta-three failed"
sh_wait_for 60 _mirror_is ta-three degraded
m=$(mirror_of ta-three)
ktap_check "an origin-leg write that fails: the stream is degraded ($m)" test "$m" = degraded
tt_expect "abort of a degraded stream: refused, exit 7" 7 "degraded.*up to [0-9]+ regions" \
	abort ta-three
ktap_check "... still a stream" grep -q " stream " <<<"$(sh_table ta-three)"
sh_setup dm_reload ta-o3 "0 $LEN linear $O3 0"
dm_remove ta-three
dm_remove ta-o3

# --- a helper origin: the two-segment table comes back -------------------------------

sh_fill_random "$B"
sh_fill_random "$C"
sh_zero "$META"
sh_zero "$DEST"
IMG=$(sh_tmpfile)
sh_read "$B" >"$IMG"
sh_read "$C" >>"$IMG"
HALF=$((LEN / 2))
TBL2="0 $HALF linear $B 0
$HALF $HALF linear $C 0"
cleanup_add "_dm_remove_hard ta-four-origin"
sh_setup dm_create ta-four "$TBL2"
OLDT=$(sh_table ta-four)
DEV=$(dm_dev ta-four)
kmsg "dm-stream selftest: $TEST_NAME: helper origin"
sh_writer_start "$DEV" "$IMG" 0 "$HALF_BYTES"
sh_writer_more 20
tt_expect "copy (mirror) of a two-segment device while writing: exit 0, helper origin" 0 \
	"origin ta-four-origin.*mirrored" copy ta-four --dest "$DEST" --meta "$META" --rate $RATE
tt_run pause ta-four
hattr=$(dmsetup info -c --noheadings -o attr ta-four-origin 2>/dev/null | tr -d ' ')
ktap_check "... the helper is read-write (${hattr:-none}): the stream writes it" \
	test -n "$hattr" -a "${hattr//[^r]/}" = ""
sh_writer_more 50
c=$(sh_copied ta-four)
tot=$(sh_total ta-four)
n_before=$(sh_writes)
ktap_check "... mid-way ($c/$tot regions copied, $n_before writes)" \
	test -n "$c" -a -n "$tot" -a "${c:-0}" -lt "${tot:-0}"
tt_expect "abort: exit 0, back on the helper's table, the helper removed" 0 \
	"removed the helper origin ta-four-origin" abort ta-four
sh_writer_more 50
sh_writer_stop
ktap_check "... the writer kept writing across it ($n_before writes before, $(sh_writes) in all; rc $SH_WRITER_RC)" \
	test "$SH_WRITER_RC" -eq 0 -a "$(sh_writes)" -gt "$n_before"
ktap_check "... the two-segment table is back; no helper left" \
	test "$(sh_table ta-four)" = "$OLDT" -a -z "$(dmsetup ls | grep ta-four-origin)"
ALL=$(sh_tmpfile)
sh_read "$B" >"$ALL"
sh_read "$C" >>"$ALL"
ktap_check "... the two disks alone hold every acknowledged write" cmp "$ALL" "$IMG"
ktap_check "... and the device reads it" sh_cmp "$DEV" "$IMG"
ktap_check "... destination and metadata device are held by nobody" \
	test -z "$(holders "$DEST")" -a -z "$(holders "$META")"
dm_remove ta-four

ktap_finish
