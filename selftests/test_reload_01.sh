#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Table reloads of a live stream device: the new table must see every region
# the old one copied or wrote until it was suspended, even those written
# between `dmsetup load` and the suspend (the new instance is constructed
# while the old one still runs). A reload with another geometry while the
# device is live is refused.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 4

RS=128				# region size, sectors (64 KiB)
sh_stream_loops 16 1
origin=$ORIG dest=$DEST meta=$META
sh_fill_byte "$dest" 245
len=$(sectors "$origin")

expected=$(sh_tmpfile)
sh_read "$origin" >"$expected"

# Slow streaming, so most regions are still uncopied around the reload.
sh_setup dm_create s "0 $len stream $meta $dest $origin $RS 2 rate 512"
dev=$(dm_dev s)
table=$(sh_table s)

write_one()	# SECTOR SEED: 4 KiB of pattern at SECTOR, on the target and in $expected
{
	local f
	f=$(pattern_file "$2" 8)
	sh_write_at "$dev" "$f" "$1"
	sh_patch_file "$expected" "$f" "$1"
}

# Far from the cursor: regions 200 and 220 are uncopied when written.
write_one $((200 * RS + 16)) 11
dmsetup load s --table "$table"
write_one $((220 * RS + 40)) 12		# after load, before the swap
dmsetup suspend s && dmsetup resume s
write_one $((230 * RS)) 13		# after the swap

if sh_cmp "$dev" "$expected"; then
	ktap_ok "reload while streaming: content right before completion"
else
	ktap_fail "reload while streaming: content right before completion"
fi

dm_message s rate 0
if sh_wait_state s complete 120 && sh_cmp "$dev" "$expected" &&
   sh_cmp "$dest" "$expected"; then
	ktap_ok "reload while streaming: writes kept after streaming completes"
else
	ktap_fail "reload while streaming: writes kept after streaming completes" \
		"state $(sh_state s)"
fi

kmsg "dm-stream selftest: geometry reload"
if dmsetup load s --table "0 $len stream $meta $dest $origin 256" 2>/dev/null; then
	dmsetup clear s
	ktap_fail "live reload with another region size refused"
else
	if sh_dmesg_has "in use with another geometry"; then
		ktap_ok "live reload with another region size refused"
	else
		ktap_fail "live reload with another region size refused" "no message in dmesg"
	fi
fi

# After remove, the persistent metadata still rejects the other geometry
# and accepts the same one, fully copied.
dm_remove s
sh_ctr_fail "recreate with another region size refused" \
	"0 $len stream $meta $dest $origin 256" "another region size"
ktap_diag "copied after recreate checked by test_persist_01"

ktap_finish
