#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_ctr_02: the constructor's numbers and its sharing of metadata.
#
# - Numbers are digits only, and out-of-range values are refused, not
#   wrapped: 2^64 + 8 is not a region size of 8, 2^64 + 1 not a rate or a
#   max_inflight of 1 (table lines and messages alike); a sign, a base
#   prefix or a trailing character is refused.
# - Two stream targets of one table on one metadata device are refused
#   (a reload of the device, a new table, still shares it: test_reload_01).
# - A metadata device too small: the log names the sectors needed.
# - A superblock transaction id past 2^63 - 1 is refused, and a slot id
#   with bit 63 set is above the superblock's (it used to be masked).
# - The largest geometry, 2^31 regions (8 TiB of 4 KiB regions), on dm
#   zero devices: it constructs (its in-core dirty map, over 4 MiB, came
#   from kmalloc, which refused it with a page allocator warning).

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 18 dm-zero

if ! origin=$(make_loop 4) || ! dest=$(make_loop 4) || ! meta=$(make_loop 1) ||
   ! origin2=$(make_loop 4) || ! dest2=$(make_loop 4); then
	ktap_skip_all "cannot set up a loop device"
fi
len=$(sectors "$origin")
base="0 $len stream $meta $dest $origin"

sh_ctr_fail "region size 2^64 + 8 refused" "$base 18446744073709551624" "region size"
sh_ctr_fail "region size +8 refused" "$base +8" "region size"
sh_ctr_fail "region size 0x10 refused" "$base 0x10" "region size"
sh_ctr_fail "region size 8k refused" "$base 8k" "region size"
sh_ctr_fail "rate 2^64 + 1 refused" "$base 8 2 rate 18446744073709551617" "rate"
sh_ctr_fail "rate 2^32 refused" "$base 8 2 rate 4294967296" "rate"
sh_ctr_fail "rate -1 refused" "$base 8 2 rate -1" "rate"
sh_ctr_fail "max_inflight 2^64 + 1 refused" "$base 8 2 max_inflight 18446744073709551617" \
	"max_inflight"
sh_ctr_fail "opt arg count 2^64 + 1 refused" "$base 8 18446744073709551617 paused" "."

sh_setup dm_create s "$base 8 1 paused"
sh_msg_fail "message rate 2^64 + 1 refused" s rate 18446744073709551617
sh_msg_fail "message max_inflight 2^64 + 1 refused" s max_inflight 18446744073709551617
if [[ $(sh_opt_args s) == "1 paused" ]]; then
	ktap_ok "refused messages changed nothing"
else
	ktap_fail "refused messages changed nothing" "opt args: $(sh_opt_args s)"
fi
dm_remove s

# Two targets of one table, one metadata device, the same geometry.
sh_ctr_fail "two targets of one table on one metadata device refused" \
	"0 $len stream $meta $dest $origin 8
$len $len stream $meta $dest2 $origin2 8" "used twice in one table"

# put_image ARGS...: a metadata image (metaimg.py ARGS) on $meta.
put_image()
{
	python3 "$(dirname "$0")/metaimg.py" "$TEST_TMP/img" --region-size 8 \
		--target-size "$len" --bits alternating "$@" >/dev/null &&
		dd if="$TEST_TMP/img" of="$meta" bs=4096 oflag=direct conv=notrunc status=none
}

# A superblock whose transaction id does not fit the signed slot ids.
put_image --sb transaction_id=2**63
sh_ctr_fail "transaction id 2^63 refused" "$base 8 1 paused" "transaction id is out of range"
# A slot whose id has bit 63 set is above the superblock's (2), not id 2.
put_image --sb transaction_id=2 --slot-tid 0=1 --slot-tid 1=2**63+2
dm_create s "$base 8 1 paused"
if [[ $(sh_copied s) == 512 ]]; then
	ktap_ok "a slot id of 2^63 + 2 is above the superblock's 2: the other slot serves"
else
	ktap_fail "a slot id of 2^63 + 2 is above the superblock's 2: the other slot serves" \
		"$(dmesg_since_mark | grep stream | tail -n 2)"
fi
dm_exists s && dm_remove s
dd if=/dev/zero of="$meta" bs=4096 count=1 oflag=direct status=none

# 1024 regions of 8 sectors need 3 blocks (24 sectors): give it 16.
sh_setup dm_create tiny "0 16 linear $meta 0"
sh_ctr_fail "metadata too small: refused" "0 $len stream $(dm_dev tiny) $dest $origin 8" \
	"Metadata device too small"
if sh_dmesg_has "has 16 sectors, 24 needed"; then
	ktap_ok "... and the log says how many sectors are needed"
else
	ktap_fail "... and the log says how many sectors are needed" \
		"$(dmesg_since_mark | grep stream | tail -n 3)"
fi


# The largest geometry: 2^31 regions of 8 sectors; the metadata needs
# 1 + 2 * 65923 blocks. dm zero devices: nothing is stored.
big=$((1 << 34))
mbig=$((8 * (1 + 2 * 65923)))
if dm_create zo "0 $big zero" && dm_create zd "0 $big zero" && dm_create zm "0 $mbig zero" &&
   dm_create s "0 $big stream $(dm_dev zm) $(dm_dev zd) $(dm_dev zo) 8 1 paused" &&
   [[ $(dm_status s) == *" 0/2147483648 "* ]]; then
	ktap_ok "2^31 regions: constructed"
else
	ktap_fail "2^31 regions: constructed" "${DM_ERR:-status $(dm_status s)}"
fi
for d in s zm zd zo; do
	dm_exists $d && dm_remove $d
done

ktap_finish
