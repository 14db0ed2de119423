#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_sparse_02: skip_zeroes over a thin destination whose pool does not
# zero new blocks (thin-pool skip_block_zeroing, LVM's -Zn) and whose data
# device holds garbage (0xbb): a block provisioned for part of a write
# holds that garbage in the rest.
#
# The origin: 8 MiB; its first 4 MiB are 64 KiB extents of 16 KiB of 0xaa
# followed by 48 KiB of zeros, its last 4 MiB are zeros. Pool blocks and
# regions are 64 KiB. skip_zeroes may skip only whole all-zero blocks
# (whole allocation units, from the thin volume's optimal I/O size): the
# stream completes, the thin volume and the stream device read exactly as
# the origin, and the pool provisions exactly the 64 blocks of the first
# half. Before the fix (zeros looked for in 16 KiB chunks), the zero part
# of each block of the first half was skipped because the unprovisioned
# block read zeros, and read 0xbb once the data chunk provisioned it.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 5 dm-thin-pool

RS=128				# region size and thin block size, sectors
MB=8
LEN=$((MB * 2048))
NR=$((LEN / RS))
POOL=sp02-pool

ORIG=$(make_loop $MB orig) || ktap_skip_all "cannot set up a loop device"
EXT=$TEST_TMP/ext
{ tr '\000' '\252' </dev/zero | head -c 16384; head -c 49152 /dev/zero; } >"$EXT"
for ((i = 0; i < 64; i++)); do cat "$EXT"; done |
	dd of="$ORIG" bs=1M oflag=direct iflag=fullblock status=none
dd if=/dev/zero of="$ORIG" bs=1M seek=4 count=4 oflag=direct status=none

if ! PMETA=$(make_loop 4 pmeta) || ! PDATA=$(make_loop 16 pdata) ||
   ! META=$(make_loop 1 meta); then
	ktap_skip_all "cannot set up a loop device"
fi
sh_fill_byte "$PDATA" 273	# 0xbb
sh_setup dm_create $POOL "0 $(sectors "$PDATA") thin-pool $PMETA $PDATA $RS 0 1 skip_block_zeroing"
sh_setup dmsetup message $POOL 0 "create_thin 0"
sh_setup dm_create sp02-thin "0 $LEN thin $(dm_dev $POOL) 0"
THIN=$(dm_dev sp02-thin)
ktap_diag "thin volume: optimal_io_size $(cat "$(sh_sysfs "$THIN")/queue/optimal_io_size")"

sh_setup dm_create sp02 "0 $LEN stream $META $THIN $ORIG $RS 1 skip_zeroes"
if sh_wait_state sp02 complete 120 && [[ $(sh_copy_errors sp02) == 0 ]]; then
	ktap_ok "the stream completes, no copy error"
else
	ktap_fail "the stream completes, no copy error" "$(dm_status sp02)"
fi

ndiff=$(cmp -l "$ORIG" "$THIN" | wc -l)
ktap_check "the thin volume reads as the origin ($ndiff bytes differ)" test "$ndiff" -eq 0
ktap_check "so does the stream device" sh_cmp "$(dm_dev sp02)" "$ORIG"
read -r -a W <<<"$(dm_status $POOL)"
used=${W[2]%%/*}
ktap_check "the pool provisioned the 64 blocks holding data, not the zero half ($used of $NR)" \
	test "$used" -eq 64
ktap_check "the pool is healthy (rw, no needs_check: ${W[4]:-} ${W[7]:-})" \
	test "${W[4]:-} ${W[7]:-}" = "rw -"

dm_remove sp02
dm_remove sp02-thin
ktap_finish
