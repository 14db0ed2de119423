#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_ident_01: the metadata dmstream formats, its identity record, and
# dmstream rebind.
#
# - create formats the metadata itself: the kernel loads it (the stream
#   starts at 0/N), its bitmap slot is byte for byte the one the kernel's
#   own format writes for the same geometry, and the superblock's fields
#   too; check passes; the identity record names the stream, its rate and
#   max_inflight, the origin and destination (dm-linear devices with
#   uuids) and, once the kernel took them at the first resume, the 8
#   origin samples, each the CRC32C this test computes from the origin.
# - The record survives the kernel's commits: after the copy completes and
#   the device is removed it is unchanged, the copy complete; dump --json
#   and dmst/ondisk.py agree on it (crosscheck).
# - Hostile records: an unterminated name, bytes after a NUL, a size that
#   is not the superblock's: check warns (exit 3), assemble and rebind
#   refuse (exit 3) and change nothing.
# - rebind: refused while the stream is active and for a device of another
#   size; an origin of the same size with other content is refused by the
#   kernel (its reason in dmesg) and by assemble, and accepted once rebind
#   recorded it; assemble then makes the stream over it with the recorded
#   rate and max_inflight.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum cmp
sh_start 30

MB=8
LEN=$((MB * 2048))
NAME=ti01

make_loop -v OL $MB orig || ktap_skip_all "cannot set up loop devices"
make_loop -v DL $MB dest || ktap_skip_all "cannot set up loop devices"
make_loop -v WL $MB wrong || ktap_skip_all "cannot set up loop devices"
make_loop -v SL $((MB / 2)) small || ktap_skip_all "cannot set up loop devices"
make_loop -v META 1 meta || ktap_skip_all "cannot set up loop devices"
KMETA=$(make_loop 1 meta2) || ktap_skip_all "cannot set up loop devices"
sh_fill_random "$OL"
sh_fill_random "$WL"

# dm-linear devices with uuids: what the identity record names.
lin() # NAME UUID DEV
{
	dmsetup create "$1" --uuid "$2" --table "0 $(sectors "$3") linear $3 0" >/dev/null 2>&1 &&
		cleanup_add "_dm_remove_hard $1" && _dm_node "$1"
}
sh_setup lin ti01-o TI01-ORIGIN "$OL"
sh_setup lin ti01-d TI01-DEST "$DL"
sh_setup lin ti01-w TI01-WRONG "$WL"
cleanup_add "_dm_remove_hard $NAME"
ORIG=$(dm_dev ti01-o)
DEST=$(dm_dev ti01-d)
WRONG=$(dm_dev ti01-w)
# absent NAME: no dm device NAME.
absent() { ! dm_exists "$1"; }
J=$TEST_TMP/dump.json

# jget KEY: a value of the last dump --json ($J).
jget() { dmst_py identity get "$J" "$1"; }

# --- create formats the metadata ----------------------------------------------------

tt_expect "create formats the metadata and the kernel loads it" 0 "streaming" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --paused --rate 4M/s \
	--max-inflight 8
ktap_check "... the stream starts at 0 of $((LEN / 128)) regions" \
	test "$(sh_copied $NAME)/$(sh_total $NAME)" = "0/$((LEN / 128))"
sh_setup dm_remove $NAME

# The kernel's own format of the same geometry, on KMETA.
sh_zero "$KMETA"
sh_setup dm_create ti01-k "0 $LEN stream $KMETA $DEST $ORIG 128 1 paused"
sh_setup dm_remove ti01-k
# The kernel's commit of the samples at the first resume writes slot 1 of
# the one bitmap block and a new transaction id: slot 0 and the other
# fields are still as formatted.
ktap_check "... its bitmap block's slot 0 is the kernel's format, byte for byte" \
	cmp -n 4096 -i 4096:4096 "$META" "$KMETA"
ktap_check "... and so are the superblock's fields up to the transaction id" \
	cmp -n 76 -i 4:4 "$META" "$KMETA"

tt_expect "check passes on it" 0 "" check "$META"
"$DMSTREAM" dump --json "$META" >"$J"
ktap_check "dump: the identity record is valid, naming $NAME" \
	test "$(jget identity.valid)" = true -a "$(jget identity.name)" = $NAME
ktap_check "... rate 4096 KiB/s, max_inflight 8, no options (no mirror asked)" \
	test "$(jget identity.rate_kib)/$(jget identity.max_inflight)/$(jget identity.options)" \
	= "4096/8/0"
ktap_check "... the origin and destination by their dm uuids and sizes" \
	test "$(jget identity.origin.dm_uuid) $(jget identity.origin.size) $(jget identity.dest.dm_uuid) $(jget identity.dest.size)" \
	= "TI01-ORIGIN $LEN TI01-DEST $LEN"
EXP=$(dmst_py identity samples "$OL")
ktap_check "... 8 origin samples taken by the kernel, each the CRC32C of the origin there" \
	test "$(jget identity.sample_checked)/$(jget identity.sample_wanted)" = 255/0 -a \
	"$(jget identity.samples)" = "$EXP"
ktap_diag "samples: $EXP"

# --- the record survives the kernel's commits -------------------------------------------

SUM=$(md5sum <"$META" | cut -c1-8)
sh_setup dm_create $NAME "0 $LEN stream $META $DEST $ORIG 128 2 rate 4096"
sh_setup sh_wait_state $NAME complete 120
sh_setup dm_remove $NAME
"$DMSTREAM" dump --json "$META" >"$J"
ktap_check "after the copy and the removal: complete, the identity record unchanged" \
	test "$(jget superblock.nr_copied)" = $((LEN / 128)) -a "$(jget identity.name)" = $NAME \
	-a "$(jget identity.samples)" = "$EXP" -a "$(jget identity.origin.dm_uuid)" = TI01-ORIGIN
ktap_diag "metadata md5 before the copy $SUM, after $(md5sum <"$META" | cut -c1-8)"
tt_expect "... check passes" 0 "" check "$META"
IMG=$TEST_TMP/xc-meta.img
dd if="$META" of="$IMG" bs=1M status=none
ktap_check "dump --json and dmst/ondisk.py agree on it" \
	dmst_py crosscheck "$DMSTREAM" "$IMG"

# --- hostile records ------------------------------------------------------------------

for damage in name-unterminated dest-uuid-garbage dest-size; do
	BAD=$TEST_TMP/bad-$damage.img
	cp "$IMG" "$BAD"
	dmst_py identity corrupt "$BAD" $damage
	B0=$(md5sum <"$BAD")
	tt_expect "$damage: check warns (exit 3)" 3 "warning: identity record: " check "$BAD"
	tt_run assemble "$BAD"
	tt_run rebind "$BAD" --dest "$DEST"
	R2=$TT_RC
	tt_run assemble "$BAD"
	ktap_check "... assemble and rebind refuse it (exit 3/$R2) and change nothing" \
		test "$TT_RC/$R2" = 3/3 -a "$(md5sum <"$BAD")" = "$B0"
done
ktap_check "... with crosscheck agreeing on all three" \
	dmst_py crosscheck "$DMSTREAM" "$TEST_TMP"/bad-*.img

# --- rebind -----------------------------------------------------------------------------

sh_setup dm_create $NAME "0 $LEN stream $META $DEST $ORIG 128 0"
tt_expect "rebind of an active stream: refused (exit 2)" 2 "in use" \
	rebind "$META" --origin "$WRONG"
sh_setup dm_remove $NAME
tt_expect "rebind to an origin of another size: refused (exit 2)" 2 "has $((LEN / 2)) sectors" \
	rebind "$META" --origin "$SL"

sh_ctr_fail "the kernel refuses a same-size origin with other content, saying why" \
	"0 $LEN stream $META $DEST $WRONG 128 0" "origin is not the device recorded"
sh_setup dm_remove ti01-o
sh_setup lin ti01-o2 TI01-ORIGIN "$WL"
tt_expect "assemble: the origin's uuid on other content: refused (exit 2)" 2 \
	"differs from the recorded origin at sample 0" assemble "$META"
ktap_check "... and makes nothing" absent $NAME
sh_setup dm_remove ti01-o2
tt_expect "assemble with the origin's uuid gone: origin not found (exit 2)" 2 \
	"origin not found: looked for dm uuid TI01-ORIGIN" assemble "$META"
tt_expect "rebind --origin to it: exit 0, samples taken again" 0 "samples taken again" \
	rebind "$META" --origin "$WRONG"
"$DMSTREAM" dump --json "$META" >"$J"
ktap_check "... the record names it, with its samples" \
	test "$(jget identity.origin.dm_uuid)" = TI01-WRONG -a \
	"$(jget identity.samples)" = "$(dmst_py identity samples "$WL")"
tt_expect "... assemble takes it now" 0 "assembled from $META" assemble "$META"
ktap_check "... the stream runs over it" \
	test "$(sh_table $NAME)" = "0 $LEN stream $(sh_devt "$META") $(sh_devt "$DEST") $(sh_devt "$WRONG") 128 4 rate 4096 max_inflight 8"
sh_setup dm_remove $NAME
tt_expect "check passes after rebind" 0 "" check "$META"

ktap_finish
