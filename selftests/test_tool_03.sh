#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tool_03: dmstream copy, the live block copy of a dm device in use.
#
# - A plain linear device over a whole disk: the disk itself becomes the
#   origin (no helper device), the table has the mirror option (copy's
#   default); wait and finish leave the device linear on the new disk with
#   the same data. Copying a stream device is refused.
# - A two-segment table copied one-way (--no-mirror): a read-only helper
#   NAME-origin with the old table (uuid DMSTREAM-ORIGIN-...) becomes the
#   origin; the device reads the old data while streaming; finish removes
#   the helper.
# - Refusals change nothing: metadata holding something (exit 3; --force
#   overwrites it), a destination too small or in use (exit 2).
# - Rollback: metadata whose writes fail (dm-flakey error_writes) makes the
#   kernel refuse the stream table after the helper was made: exit 2 with the
#   kernel's reason, and the device is back on its original table, resumed,
#   without helper, still reading and writing.
# - copy --finish (stdout not a terminal: progress lines) while fio writes
#   with verify=crc32c (verify_backlog, verify_fatal) to one half of the
#   device and a reader checks the other half's old data again and again:
#   zero verify errors, no I/O errors, and after the finish the device is
#   linear on the new disk holding the old half intact.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum fio
sh_start 26 dm-flakey

MB=32
LEN=$((MB * 2048))


# The device-mapper attributes of NAME ("L--w" and so on: s = suspended).
attr() { dmsetup info -c --noheadings -o attr "$1" 2>/dev/null | tr -d ' '; }

make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v A $MB a || ktap_skip_all "cannot set up loop devices"
make_loop -v B $((MB / 2)) b || ktap_skip_all "cannot set up loop devices"
make_loop -v C $((MB / 2)) c || ktap_skip_all "cannot set up loop devices"
make_loop -v NEW1 $MB new1 || ktap_skip_all "cannot set up loop devices"
make_loop -v NEW2 $MB new2 || ktap_skip_all "cannot set up loop devices"
make_loop -v SMALL $((MB / 2)) small || ktap_skip_all "cannot set up loop devices"

# --- a linear device over a whole disk --------------------------------------------------

sh_fill_random "$A"
A_MD5=$(sh_md5 "$A")
sh_zero "$META"
dm_create tt03-one "0 $LEN linear $A 0" || ktap_skip_all "dmsetup: $DM_ERR"

tt_expect "copy of a linear device over a whole disk: exit 0" 0 "copying 32.0 MiB onto $NEW1" \
	copy tt03-one --dest "$NEW1" --meta "$META" --rate 16M/s
ktap_check "... its table: a stream with the disk itself as the origin" \
	grep -q "^0 $LEN stream $(sh_devt "$META") $(sh_devt "$NEW1") $(sh_devt "$A") 128 3 rate 16384 mirror\$" \
	<<<"$(sh_table tt03-one)"
ktap_check "... and no helper device" test -z "$(dmsetup ls | grep tt03-one-origin)"
tt_expect "copy of a stream device: refused, exit 2" 2 "is a stream device already" \
	copy tt03-one --dest "$NEW2" --meta "$META"
tt_run wait tt03-one
tt_expect "wait (exit $TT_RC), then finish: exit 0" 0 "finished: linear" finish tt03-one
ktap_check "... linear on the new disk, with the old data" \
	test "$(sh_table tt03-one)" = "0 $LEN linear $(sh_devt "$NEW1") 0" -a \
	"$(sh_md5 "$(dm_dev tt03-one)")" = "$A_MD5"
dm_remove tt03-one

# --- a two-segment table ----------------------------------------------------------------

sh_fill_random "$B"
sh_fill_random "$C"
OLD2=$(sh_tmpfile)
sh_read "$B" >"$OLD2"
sh_read "$C" >>"$OLD2"
OLD2_MD5=$(md5sum <"$OLD2" | cut -d' ' -f1)
HALF=$((LEN / 2))
TBL2="0 $HALF linear $B 0
$HALF $HALF linear $C 0"
cleanup_add "_dm_remove_hard tt03-two-origin"
dm_create tt03-two "$TBL2" || ktap_skip_all "dmsetup: $DM_ERR"
OLDT=$(sh_table tt03-two)

# META holds tt03-one's metadata now.
tt_expect "copy onto metadata holding a stream's: refused, exit 3" 3 \
	"a copy needs a blank metadata device.*--force" \
	copy tt03-two --dest "$NEW2" --meta "$META"
tt_expect "copy onto a destination too small: exit 2" 2 "smaller than" \
	copy tt03-two --dest "$SMALL" --meta "$META" --force
dm_create tt03-hold "0 2048 linear $NEW1 0"
tt_expect "copy onto a destination in use: exit 2" 2 "in use" \
	copy tt03-two --dest "$NEW1" --meta "$META" --force
dm_remove tt03-hold
ktap_check "... none of them touched the table or made a helper" \
	test "$(sh_table tt03-two)" = "$OLDT" -a -z "$(dmsetup ls | grep tt03-two-origin)"

tt_expect "copy --no-mirror of a two-segment device, --force on the metadata: exit 0" 0 \
	"origin tt03-two-origin.*one-way" copy tt03-two --dest "$NEW2" --meta "$META" --force \
	--rate 8M/s --no-mirror
read -r _ _ _ _ _ O _ <<<"$(sh_table tt03-two)"
HI=$(dmsetup info -c --noheadings -o major,minor,attr,uuid --separator ' ' tt03-two-origin 2>/dev/null)
read -r hmaj hmin hattr huuid <<<"$HI"
ktap_check "... the helper tt03-two-origin is the origin ($O), read-only (${hattr:-?}), uuid ${huuid:0:16}..." \
	test "$O" = "$hmaj:$hmin" -a "${hattr//[^r]/}" = r -a "${huuid:0:16}" = DMSTREAM-ORIGIN-
ktap_check "... and maps the old table" test "$(sh_table tt03-two-origin)" = "$OLDT"
c=$(sh_copied tt03-two)
ktap_check "... the device reads the old data while streaming ($c regions copied)" \
	test "$(sh_md5 "$(dm_dev tt03-two)")" = "$OLD2_MD5"
tt_run wait tt03-two
tt_expect "finish: exit 0, the helper removed" 0 "removed the helper origin tt03-two-origin" \
	finish tt03-two
ktap_check "... no helper left; linear on the new disk with the old data" \
	test -z "$(dmsetup ls | grep tt03-two-origin)" -a \
	"$(sh_table tt03-two)" = "0 $LEN linear $(sh_devt "$NEW2") 0" -a \
	"$(sh_md5 "$(dm_dev tt03-two)")" = "$OLD2_MD5"
dm_remove tt03-two

# --- rollback: the kernel refuses the stream table ---------------------------------------

dm_create tt03-three "$TBL2" || ktap_skip_all "dmsetup: $DM_ERR"
OLDT=$(sh_table tt03-three)
sh_zero "$META"
# Reads pass, writes fail: the tool sees blank metadata, the kernel cannot
# format it.
dm_create tt03-badmeta "0 8192 flakey $META 0 0 1 1 error_writes" ||
	ktap_diag "flakey: $DM_ERR"
cleanup_add "_dm_remove_hard tt03-three-origin"
kmsg "dm-stream selftest: $TEST_NAME: rollback"
tt_expect "copy whose stream table the kernel refuses: exit 2, with its reason" 2 \
	"the kernel says: stream: .*(format|metadata)" \
	copy tt03-three --dest "$NEW1" --meta "$(dm_dev tt03-badmeta)"
a=$(attr tt03-three)
ktap_check "... back on the same table, resumed ($a), no helper" \
	test "$(sh_table tt03-three)" = "$OLDT" -a "${a/s/}" = "$a" -a \
	-z "$(dmsetup ls | grep tt03-three-origin)" -a \
	-n "$(grep 'back on its original table' <<<"$TT_ERR")"
W=$(sh_tmpfile)
head -c 65536 /dev/urandom >"$W"
dd if="$W" of="$(dm_dev tt03-three)" bs=64k seek=3 oflag=direct conv=notrunc status=none
ktap_check "... and it still writes and reads (on the old disk)" \
	test "$(sh_md5 "$(dm_dev tt03-three)" 65536 196608)" = "$(md5sum <"$W" | cut -d' ' -f1)" -a \
	"$(sh_md5 "$B" 65536 196608)" = "$(md5sum <"$W" | cut -d' ' -f1)"
dm_remove tt03-three
dm_remove tt03-badmeta

# --- copy --finish under fio verify ----------------------------------------------------

sh_fill_random "$B"
sh_fill_random "$C"
sh_zero "$META"
sh_zero "$NEW1"
HALF_MD5=$(sh_md5 "$B")
dm_create tt03-fio "$TBL2" || ktap_skip_all "dmsetup: $DM_ERR"
cleanup_add "_dm_remove_hard tt03-fio-origin"
DEV=$(dm_dev tt03-fio)
kmsg "dm-stream selftest: $TEST_NAME: copy under fio"

# The second half: random 4 KiB writes, each verified (crc32c) 256 writes
# later and at the end; any mismatch fails fio.
fio --name=vjob --filename="$DEV" --direct=1 --ioengine=psync --rw=randwrite \
	--bs=4k --offset=$((HALF * 512)) --size=$((HALF * 512)) --verify=crc32c \
	--verify_backlog=256 --verify_fatal=1 --time_based --runtime=15 \
	--output="$TEST_TMP/fio.out" >/dev/null 2>"$TEST_TMP/fio.err" &
fio_pid=$!
# The first half, never written: read again and again, always the old data.
(
	n=0 bad=0
	while [[ ! -e $TEST_TMP/stop ]]; do
		[[ $(sh_md5 "$DEV" $((HALF * 512))) == "$HALF_MD5" ]] || bad=$((bad + 1))
		n=$((n + 1))
	done
	echo "$n $bad" >"$TEST_TMP/reader"
) &
reader_pid=$!
sleep 2

running=no
kill -0 $fio_pid 2>/dev/null && running=yes
tt_expect "copy --finish while fio ($running) writes and verifies: exit 0" 0 \
	"finished: linear on" copy tt03-fio --dest "$NEW1" --meta "$META" --rate 8M/s --finish
still=no
kill -0 $fio_pid 2>/dev/null && still=yes
ktap_diag "fio running when the copy started: $running, when it finished: $still"
lines=$(grep -c "% copied (" <<<"$TT_OUT")
ktap_check "... progress as plain lines when stdout is no terminal ($lines lines)" \
	test "$lines" -ge 2
wait $fio_pid
frc=$?
touch "$TEST_TMP/stop"
wait $reader_pid
read -r nreads nbad <"$TEST_TMP/reader"
verr=$(grep -ci "verify.*fail\|bad magic\|crc32c:" "$TEST_TMP/fio.out" "$TEST_TMP/fio.err" | awk -F: '{ s += $NF } END { print s + 0 }')
ktap_check "fio: exit 0, no verify errors ($(grep -o 'err= *[0-9]*' "$TEST_TMP/fio.out" | head -n 1), $verr verify messages)" \
	test $frc -eq 0 -a "$verr" -eq 0
ktap_check "the old half read back unchanged all along ($nreads reads, $nbad bad)" \
	test "$nreads" -ge 1 -a "$nbad" -eq 0
ktap_check "no I/O error in the kernel log" \
	bash -c "! grep -Ei 'I/O error|Buffer I/O|critical medium' <<<\"\$1\"" _ "$(dmesg_since_mark)"
ktap_check "after the finish: linear on the new disk, the old half intact" \
	test "$(sh_table tt03-fio)" = "0 $LEN linear $(sh_devt "$NEW1") 0" -a \
	"$(sh_md5 "$DEV" $((HALF * 512)))" = "$HALF_MD5"
dm_remove tt03-fio
ktap_check "no helper left" test -z "$(dmsetup ls | grep tt03-fio-origin)"

ktap_finish
