#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_assemble_01: dmstream list and assemble, from the identity record.
#
# - A stream over dm-linear devices with uuids, rate limited, with a write
#   through it, removed part way: list (every block device, and --json of
#   its metadata) finds it, not active, its origin and destination where
#   they are; assemble makes it again with the same table, the progress
#   kept; it completes with the data intact (the write included). A second
#   assemble exits 0 (boot idempotence); list says it is active.
# - A missing destination: assemble fails (exit 2) naming the dm uuid it
#   looked for, and creates nothing; with --timeout it waits for the
#   device to appear, then assembles.
# - A device of the stream's name that is not the stream: refused; --name
#   assembles it under another name.
# - copy of a two-segment device: after the stream and its helper origin
#   are removed, assemble makes the helper again (same name, same table,
#   same uuid) and the stream (with the copied device's uuid); the copy
#   completes with the old data.
# - Devices known by udev's serial (its database faked in /run/udev/data,
#   where no udev runs): found by serial; two devices of that serial and
#   size are ambiguous: assemble refuses (exit 2) naming both, list says so.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum
sh_start 29

MB=8
LEN=$((MB * 2048))
NR=$((LEN / 128))
NAME=ta01

make_loop -v OL $MB orig || ktap_skip_all "cannot set up loop devices"
make_loop -v DL $MB dest || ktap_skip_all "cannot set up loop devices"
make_loop -v META 1 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v BL $((MB / 2)) b || ktap_skip_all "cannot set up loop devices"
make_loop -v CL $((MB / 2)) c || ktap_skip_all "cannot set up loop devices"
make_loop -v NL $MB new || ktap_skip_all "cannot set up loop devices"
CMETA=$(make_loop 1 meta2) || ktap_skip_all "cannot set up loop devices"
make_loop -v X1 4 x1 || ktap_skip_all "cannot set up loop devices"
make_loop -v X2 4 x2 || ktap_skip_all "cannot set up loop devices"
make_loop -v X3 4 x3 || ktap_skip_all "cannot set up loop devices"
SMETA=$(make_loop 1 meta3) || ktap_skip_all "cannot set up loop devices"
sh_fill_random "$OL"

lin() # NAME UUID DEV
{
	dmsetup create "$1" --uuid "$2" --table "0 $(sectors "$3") linear $3 0" >/dev/null 2>&1 &&
		cleanup_add "_dm_remove_hard $1" && _dm_node "$1"
}
for n in $NAME ${NAME}b ${NAME}c ${NAME}c-origin ${NAME}x; do
	cleanup_add "_dm_remove_hard $n"
done
sh_setup lin ta01-o TA01-O "$OL"
sh_setup lin ta01-d TA01-D "$DL"
ORIG=$(dm_dev ta01-o)
DEST=$(dm_dev ta01-d)
# absent NAME: no dm device NAME.
absent() { ! dm_exists "$1"; }
J=$TEST_TMP/list.json
jget() { dmst_py identity get "$J" "$1"; }

# --- a stream removed part way, listed and assembled ---------------------------------

tt_expect "create $NAME, rate limited" 0 "streaming" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --rate 1M/s
# One region written through the stream, and the image it makes.
PATCH=$(sh_tmpfile)
EXPECT=$(sh_tmpfile)
dd if=/dev/urandom of="$PATCH" bs=64k count=1 status=none
sh_setup dd if="$PATCH" of="$(dm_dev $NAME)" bs=64k seek=100 oflag=direct conv=notrunc status=none
sh_read "$OL" >"$EXPECT"
dd if="$PATCH" of="$EXPECT" bs=64k seek=100 conv=notrunc status=none
EXPECT_MD5=$(md5sum <"$EXPECT" | cut -d' ' -f1)
sh_setup sh_wait_copied_ge $NAME 8 120
TABLE1=$(sh_table $NAME)
sh_setup dm_remove $NAME
C1=$("$DMSTREAM" dump --json "$META" | dmst_py identity get - superblock.nr_copied)
ktap_diag "removed at $C1/$NR regions copied"

tt_expect "list (every device) finds it, not active, its origin where it is" 0 \
	"^$META: stream $NAME, $C1/$NR regions copied.*not active" list
ktap_check "... origin and destination found by their dm uuids" \
	grep -Eq "origin +dm uuid TA01-O, $LEN sectors: at /dev/dm-[0-9]+ \\($(sh_devt "$ORIG")\\)" \
	<<<"$TT_OUT"
"$DMSTREAM" list --json "$META" >"$J"
ktap_check "list --json: name, progress, not active, mode one-way" \
	test "$(jget 0.name) $(jget 0.copied)/$(jget 0.total) $(jget 0.active) $(jget 0.mode)" \
	= "$NAME $C1/$NR false one-way"
ktap_check "... the devices it found are the origin and the destination" \
	test "$(sh_devt "$(jget 0.origin.found.0)") $(sh_devt "$(jget 0.dest.found.0)")" \
	= "$(sh_devt "$ORIG") $(sh_devt "$DEST")"

tt_expect "assemble: exit 0" 0 "$NAME: assembled from $META" assemble "$META"
ktap_check "... with the same table" test "$(sh_table $NAME)" = "$TABLE1"
C2=$(sh_copied $NAME)
ktap_check "... the progress kept ($C2 >= $C1 of $NR)" test "$C2" -ge "$C1"
tt_expect "a second assemble: exit 0, already there" 0 "already assembled" assemble "$META"
"$DMSTREAM" list --json "$META" >"$J"
ktap_check "list --json: active as $NAME" \
	test "$(jget 0.active) $(jget 0.active_name)" = "true $NAME"
sh_setup sh_wait_state $NAME complete 120
ktap_check "the copy completes with the data intact, the write included" \
	test "$(sh_md5 "$(dm_dev $NAME)")" = "$EXPECT_MD5" -a "$(sh_md5 "$DL")" = "$EXPECT_MD5"
sh_setup dm_remove $NAME

# --- a missing device ---------------------------------------------------------------------

sh_setup dm_remove ta01-d
tt_expect "the destination gone: assemble fails (exit 2), naming what it looked for" 2 \
	"destination not found: looked for dm uuid TA01-D, $LEN sectors" assemble "$META"
ktap_check "... and makes nothing" absent $NAME
"$DMSTREAM" assemble "$META" --timeout 60 >"$TEST_TMP/as.out" 2>&1 &
AS=$!
sleep 1
ktap_check "assemble --timeout 60 waits for it" kill -0 $AS
sh_setup lin ta01-d TA01-D "$DL"
wait $AS
RC=$?
ktap_check "... and assembles once it appears (exit $RC)" \
	test $RC -eq 0 -a "$(sh_table $NAME)" = "$TABLE1"
sh_setup dm_remove $NAME

# --- a device of that name that is not the stream ----------------------------------------

sh_setup dm_create $NAME "0 8 zero"
tt_expect "$NAME exists and is no stream: refused (exit 2)" 2 "exists and is not the stream" \
	assemble "$META"
tt_expect "... --name ${NAME}b assembles it under that name" 0 "${NAME}b: assembled" \
	assemble "$META" --name ${NAME}b
ktap_check "... with the same table" test "$(sh_table ${NAME}b)" = "$TABLE1"
sh_setup dm_remove ${NAME}b
sh_setup dm_remove $NAME

# --- copy's helper origin --------------------------------------------------------------

sh_fill_random "$BL"
sh_fill_random "$CL"
OLD=$(sh_tmpfile)
sh_read "$BL" >"$OLD"
sh_read "$CL" >>"$OLD"
OLD_MD5=$(md5sum <"$OLD" | cut -d' ' -f1)
HALF=$((LEN / 2))
printf '0 %s linear %s 0\n%s %s linear %s 0\n' $HALF "$BL" $HALF $HALF "$CL" |
	dmsetup create ${NAME}c --uuid TA01-C >/dev/null 2>&1
sh_setup _dm_node ${NAME}c
sh_setup lin ta01-n TA01-N "$NL"
tt_expect "copy of a two-segment device: a helper origin" 0 "origin ${NAME}c-origin" \
	copy ${NAME}c --dest "$(dm_dev ta01-n)" --meta "$CMETA" --rate 1M/s
HTABLE=$(sh_table ${NAME}c-origin)
OLDH=$(sh_devt "$(dm_dev ${NAME}c-origin)")
HUUID=$(dmsetup info -c --noheadings -o uuid ${NAME}c-origin)
CTABLE=$(sh_table ${NAME}c)
sh_setup sh_wait_copied_ge ${NAME}c 4 120
sh_setup dm_remove ${NAME}c
sh_setup dm_remove ${NAME}c-origin
tt_expect "stream and helper removed: assemble makes the helper again" 0 \
	"made the helper origin ${NAME}c-origin again" assemble "$CMETA"
ktap_check "... with its table and uuid" \
	test "$(sh_table ${NAME}c-origin)" = "$HTABLE" -a \
	"$(dmsetup info -c --noheadings -o uuid ${NAME}c-origin)" = "$HUUID"
NEWH=$(sh_devt "$(dm_dev ${NAME}c-origin)")
ktap_check "... and the stream with the device's uuid and its table (helper $OLDH now $NEWH)" \
	test "$(dmsetup info -c --noheadings -o uuid ${NAME}c)" = TA01-C -a \
	"$(sh_table ${NAME}c)" = "${CTABLE/$OLDH/$NEWH}"
sh_setup sh_wait_state ${NAME}c complete 120
ktap_check "... the copy completes with the old data" \
	test "$(sh_md5 "$(dm_dev ${NAME}c)")" = "$OLD_MD5"
sh_setup dm_remove ${NAME}c
sh_setup dm_remove ${NAME}c-origin

# --- udev serials: found, and ambiguous ---------------------------------------------------

UDEV=/run/udev/data
if [[ -e /run/udev/control ]] || ! mkdir -p $UDEV 2>/dev/null; then
	for i in 1 2 3 4 5 6; do
		ktap_skip "udev serials" "a udev runs here (or /run is read-only): its database is not ours to fake"
	done
else
	fake() { printf 'E:ID_SERIAL=%s\n' "$2" >"$UDEV/b$(sh_devt "$1")"; cleanup_add "rm -f $UDEV/b$(sh_devt "$1")"; }
	fake "$X1" SER-X1
	fake "$X3" SER-X3
	tt_expect "create over devices known by their serials" 0 "streaming" \
		create ${NAME}x --origin "$X1" --dest "$X3" --meta "$SMETA" --paused
	sh_setup dm_remove ${NAME}x
	"$DMSTREAM" dump --json "$SMETA" >"$J"
	ktap_check "... the record holds the serials" \
		test "$(jget identity.origin.serial) $(jget identity.dest.serial)" = "SER-X1 SER-X3"
	tt_expect "assemble finds them by serial" 0 "origin $X1 .*destination $X3" assemble "$SMETA"
	sh_setup dm_remove ${NAME}x
	fake "$X2" SER-X1
	tt_expect "two devices of that serial and size: assemble refuses (exit 2), naming both" 2 \
		"origin is ambiguous: 2 devices match serial SER-X1" assemble "$SMETA"
	ktap_check "... and makes nothing" absent ${NAME}x
	tt_expect "list says so" 0 "origin +serial SER-X1, 8192 sectors: ambiguous, 2 devices" \
		list "$SMETA"
fi

ktap_finish
