#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_merge_04: a merge's metadata is continued only over the store it was
# seeded from, and never formatted again while that merge is unfinished;
# a rollback refuses a mounted origin. Each case was a data loss or a
# corruption found by review (the tool before the fix fails them):
# - A first merge that fails after formatting the metadata (here: the
#   stream target missing, so the kernel refuses the table) wipes the
#   metadata again. A write to SNAP between the attempts then survives the
#   second attempt, which seeds anew ("seeded", not "continuing").
# - Continuing a stopped live merge (stream, helper and ORIGIN removed, the
#   stack made again) is refused while SNAP is open, with another
#   --region-size (with --force too), and once SNAP got a new exception
#   (a write the merge would lose): each time exit non-zero, nothing changed.
# - Metadata of a finished merge is refused for a new snapshot of the same
#   name (its store is another): before, it "continued" a complete bitmap
#   and the new snapshot's writes were lost.
# - --rollback with ext4 mounted on ORIGIN is refused (the filesystem would
#   keep what it cached of the old content).

# shellcheck disable=SC2153 # make_loop -v sets the loop device variables
DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"
. "$DIR/merge_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum cmp mkfs.ext4 mount umount
sh_require_stream
require_module dm-snapshot ext4
ktap_plan 28

MB=16

make_loop -v REAL $MB real || ktap_skip_all "cannot set up loop devices"
make_loop -v COW 8 cow || ktap_skip_all "cannot set up loop devices"
make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"

P=tm4$$
SNAP=$P-snap

# chunk_write DEV CHUNK BYTE [N]: N (1) 4 KiB chunks of BYTE from CHUNK on,
# one O_DIRECT write each.
chunk_write()
{
	python3 -c 'import mmap, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
m = mmap.mmap(-1, 4096)
m.write(bytes([int(sys.argv[3])]) * 4096)
for c in range(int(sys.argv[2]), int(sys.argv[2]) + int(sys.argv[4])):
    os.pwrite(fd, m, c * 4096)
os.close(fd)' "$1" "$2" "$3" "${4:-1}"
}

# chunk_is DEV CHUNK BYTE: the chunk holds BYTE only.
chunk_is()
{
	python3 -c 'import sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]) * 4096)
    sys.exit(0 if f.read(4096) == bytes([int(sys.argv[3])]) * 4096 else 1)' "$1" "$2" "$3"
}

meta_blank()
{
	[[ -z $(od -An -v -tx1 -N4096 "$META" | tr -d ' 0\n') ]]
}

# make_stack: ORIGIN and SNAP (over COW as it is) on REAL.
make_stack()
{
	dm_create "$P" "0 $((MB * 2048)) snapshot-origin $(dm_dev "$P-real")" &&
		dm_create "$SNAP" \
			"0 $((MB * 2048)) snapshot $(dm_dev "$P-real") $COW P 8" &&
		mh_origin_resplit "$P"
}

# restack: what a crash leaves and the admin makes again: the stream,
# the helper and ORIGIN gone, ORIGIN and SNAP made as before (same COW).
restack()
{
	mh_teardown "$SNAP" "$P"
	make_stack
}

# newstack: ORIGIN and SNAP made again over an empty COW (a new snapshot).
newstack()
{
	mh_teardown "$SNAP" "$P"
	dd if=/dev/zero of="$COW" bs=1M count=1 oflag=direct status=none && make_stack
}

dd if=/dev/zero of="$COW" bs=1M count=1 oflag=direct status=none
dd if=/dev/urandom of="$REAL" bs=1M count=$MB oflag=direct status=none
sh_setup mh_stack "$P" "$REAL" "$COW"
for c in 10 11 12 500 501 3000; do
	sh_setup chunk_write "$(dm_dev "$SNAP")" $c 171
done

# --- a failed first attempt leaves no seed behind ------------------------------
dd if=/dev/zero of="$META" bs=1M count=1 oflag=direct status=none
rmmod dm_stream 2>/dev/null
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rate 64k 2>&1)
rc=$?
insmod "$DMSTREAM_KO" 2>/dev/null || ktap_bail "cannot insmod $DMSTREAM_KO again"
ktap_check "without the stream target the merge fails (exit $rc: $(tail -n 1 <<<"$out"))" \
	test $rc -ne 0 -a "$(sh_table "$SNAP" | awk '{print $3}')" = snapshot
ktap_check "... and the metadata it had formatted is wiped (block 0 zero)" meta_blank
sh_setup chunk_write "$(dm_dev "$SNAP")" 2000 85
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rate 64k 2>&1)
rc=$?
ktap_diag "$(head -n 2 <<<"$out")"
ktap_check "the next attempt seeds anew (exit $rc)" \
	test $rc -eq 0 -a -n "$(mh_seeded "$out")"
ktap_check "... counting the chunk written between the attempts (7 exceptions)" \
	test "$(mh_seeded "$out")" -eq $((MB * 256 - 7))
"$DMSTREAM" pause "$SNAP" >/dev/null 2>&1

# --- continuing a stopped live merge ----------------------------------------------
sh_setup restack
state=$(mh_state "$P")
exec 9<"$(dm_dev "$SNAP")"
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" 2>&1)
rc=$?
exec 9<&-
ktap_check "continuing while SNAP is open is refused (exit $rc)" \
	test $rc -ne 0 -a "$(mh_state "$P")" = "$state"
ktap_check "... saying why" grep -q "is open" <<<"$out"
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --region-size 8k --force 2>&1)
rc=$?
ktap_check "another --region-size is refused, --force or not (exit $rc)" \
	test $rc -ne 0 -a "$(mh_state "$P")" = "$state"
ktap_check "... and the metadata is still this merge's" \
	bash -c "'$DMSTREAM' dump '$META' | grep -q 'options *merge'"
sh_setup chunk_write "$(dm_dev "$SNAP")" 3500 90
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" 2>&1)
rc=$?
ktap_diag "$(tail -n 2 <<<"$out")"
ktap_check "a SNAP written since the stop (a new exception) is refused (exit $rc)" \
	test $rc -ne 0
ktap_check "... saying it was written since" grep -q "written since the merge stopped" <<<"$out"
ktap_check "... SNAP is a snapshot again, read-write, no helper left" \
	test "$(sh_table "$SNAP" | awk '{print $3}')" = snapshot -a \
	"$(dm_exists "$SNAP-origin" && echo y)" = "" -a "$(mh_ro "$SNAP" && echo y)" = ""
ktap_check "... ORIGIN read-write again" test "$(mh_ro "$P" && echo y)" = ""
ktap_check "... the metadata still this merge's (never wiped when continued)" \
	bash -c "'$DMSTREAM' dump '$META' | grep -q 'options *merge'"

# --- a finished merge's metadata and a new snapshot of the same name ------------
# A fresh stack over the same REAL, a merge finished from a clean start.
dd if=/dev/zero of="$META" bs=1M count=1 oflag=direct status=none
sh_setup newstack
sh_setup chunk_write "$(dm_dev "$SNAP")" 40 7
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --finish --quiet 2>&1)
rc=$?
ktap_check "a merge runs and finishes (exit $rc)" \
	test $rc -eq 0 -a "$(sh_table "$SNAP" | awk '{print $3}')" = linear
ktap_check "... with SNAP's chunk in REAL" chunk_is "$(dm_dev "$P-real")" 40 7
ktap_check "... and zeroes its metadata device, never to be continued" meta_blank
# The same snapshot again (a new COW): the same first write, so the same
# store as the finished merge's, pair for pair.
sh_setup newstack
sh_setup chunk_write "$(dm_dev "$SNAP")" 40 9
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --finish --quiet 2>&1)
rc=$?
ktap_check "a new snapshot writing the same chunk merges anew (exit $rc, seeded)" \
	test $rc -eq 0 -a -n "$(mh_seeded "$out")"
ktap_check "... its write reaches REAL" chunk_is "$(dm_dev "$P-real")" 40 9

# A stopped merge, then another store under the same name: refused.
dd if=/dev/zero of="$META" bs=1M count=1 oflag=direct status=none
sh_setup newstack
sh_setup chunk_write "$(dm_dev "$SNAP")" 50 1
sh_setup chunk_write "$(dm_dev "$SNAP")" 51 1
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rate 4k 2>&1)
"$DMSTREAM" pause "$SNAP" >/dev/null 2>&1
sh_setup newstack
sh_setup chunk_write "$(dm_dev "$SNAP")" 60 2
state=$(mh_state "$P")
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" 2>&1)
rc=$?
ktap_diag "$(tail -n 1 <<<"$out")"
ktap_check "a stopped merge's metadata is refused over another store (exit $rc)" \
	test $rc -ne 0 -a "$(mh_state "$P")" = "$state"
ktap_check "... as not the store this merge started from" \
	grep -q "not the one this merge started from" <<<"$out"
ktap_check "... the new snapshot's write is where it was (SNAP)" \
	chunk_is "$(dm_dev "$SNAP")" 60 2

# --- a stopped rollback continues after a write to ORIGIN ------------------------
mh_teardown "$SNAP" "$P"
dd if=/dev/zero of="$COW" bs=1M count=1 oflag=direct status=none
dd if=/dev/zero of="$META" bs=1M count=1 oflag=direct status=none
sh_setup dm_create "$P" "0 $((MB * 2048)) snapshot-origin $(dm_dev "$P-real")"
sh_setup chunk_write "$(dm_dev "$P")" 70 3 64
sh_setup dm_create "$SNAP" "0 $((MB * 2048)) snapshot $(dm_dev "$P-real") $COW P 8"
sh_setup mh_origin_resplit "$P"
# 64 changed chunks at 4 KiB/s: the merge is far from done when paused.
sh_setup chunk_write "$(dm_dev "$SNAP")" 70 4 64
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rollback --rate 4k 2>&1)
rc=$?
"$DMSTREAM" pause "$P" >/dev/null 2>&1
ktap_check "a rollback starts (exit $rc) and is stopped mid-way" \
	test $rc -eq 0 -a "$(sh_copied "$P")" -lt $((MB * 256))
sh_setup restack
# A write to the half-merged ORIGIN: a new exception (chunk 900, seeded).
sh_setup chunk_write "$(dm_dev "$P")" 900 5
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rollback --finish --quiet 2>&1)
rc=$?
ktap_diag "$(grep -m1 "written since" <<<"$out")"
ktap_check "it continues (exit $rc), warning of the write since the stop" \
	test $rc -eq 0 -a "$(grep -c "continuing" <<<"$out")" -ge 1 -a \
	"$(grep -c "written since the merge stopped" <<<"$out")" -ge 1
ktap_check "... ORIGIN holds the snapshot's chunks 70 and 133, and the write to seeded chunk 900" \
	bash -c "$(declare -f chunk_is); chunk_is '$(dm_dev "$P")' 70 4 &&
		chunk_is '$(dm_dev "$P")' 133 4 && chunk_is '$(dm_dev "$P")' 900 5"

# --- --rollback of a mounted origin ------------------------------------------------
mh_teardown "$SNAP" "$P"
dd if=/dev/zero of="$COW" bs=1M count=1 oflag=direct status=none
dd if=/dev/zero of="$META" bs=1M count=1 oflag=direct status=none
sh_setup dm_create "$P" "0 $((MB * 2048)) snapshot-origin $(dm_dev "$P-real")"
sh_setup mkfs.ext4 -q -F "$(dm_dev "$P")"
sh_setup dm_create "$SNAP" "0 $((MB * 2048)) snapshot $(dm_dev "$P-real") $COW P 8"
sh_setup mh_origin_resplit "$P"
mkdir -p "$TEST_TMP/mnt"
sh_setup mount "$(dm_dev "$P")" "$TEST_TMP/mnt"
cleanup_add "umount $TEST_TMP/mnt"
echo hello >"$TEST_TMP/mnt/new-file" && sync
state=$(mh_state "$P")
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rollback 2>&1)
rc=$?
ktap_check "--rollback of a mounted ORIGIN is refused (exit $rc)" \
	test $rc -ne 0 -a "$(mh_state "$P")" = "$state"
ktap_check "... saying it is mounted" grep -q "mounted" <<<"$out"
ktap_check "... the metadata untouched (blank)" meta_blank
umount "$TEST_TMP/mnt"
out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rollback --finish --quiet 2>&1)
rc=$?
ktap_check "unmounted, it rolls back (exit $rc) to the snapshot: the file is gone" \
	test $rc -eq 0 -a "$(debugfs -R 'ls -l /' "$(dm_dev "$P")" 2>/dev/null |
		grep -c new-file)" = 0
ktap_finish
