#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_flush_01: what a flush and a FUA write make durable.
#
# 1. The origin is flushed. A live copy starts from a plain mapping of the
#    origin: writes that this earlier table completed may still sit in the
#    origin's volatile cache. A completed flush covers every write completed
#    before it, whichever table completed it, so the first flush through
#    the stream table must flush the origin too (its flush counter in
#    /sys/block/<loop>/stat, field 16, grows), and later ones need not.
# 2. A FUA write to a region whose bit is already on disk needs no commit:
#    it reaches the destination while the metadata device holds every write
#    (a gate) and a commit of other changes waits there. A FUA write to a
#    region copied but not yet committed waits for the commit.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 6 dm-delay

RS=128				# region size, sectors (64 KiB)
if ! origin=$(make_loop 16) || ! dest=$(make_loop 16) || ! meta=$(make_loop 1); then
	ktap_skip_all "cannot set up a loop device"
fi
len=$(sectors "$origin")

flushes() { sh_stat "$1" 16; }
written() { sh_stat "$1" 7; }

# --- 1. origin flush -----------------------------------------------------------

f0=$(flushes "$origin")
sh_flush "$origin"
if [[ $(flushes "$origin") -gt $f0 ]]; then
	ktap_ok "precondition: the origin loop device counts flushes"
else
	ktap_skip_all "the loop device does not count flushes (no write cache?)"
fi

# The user's device, first a plain mapping of the origin, written with
# O_DIRECT (completed, never flushed), then switched to a stream.
sh_setup dm_create vol "0 $len linear $origin 0"
sh_fill_random "$(dm_dev vol)" 1
sh_setup dm_reload vol "0 $len stream $meta $dest $origin $RS 1 paused"
f1=$(flushes "$origin")
sh_flush "$(dm_dev vol)"
f2=$(flushes "$origin")
if [[ $f2 -gt $f1 ]]; then
	ktap_ok "first flush after the switch flushes the origin ($f1 -> $f2)"
else
	ktap_fail "first flush after the switch flushes the origin" \
		"origin flush count $f1 -> $f2: writes of the old table are not durable"
fi
sh_flush "$(dm_dev vol)"
f3=$(flushes "$origin")
if [[ $f3 -eq $f2 ]]; then
	ktap_ok "later flushes leave the origin alone"
else
	ktap_fail "later flushes leave the origin alone" "origin flush count $f2 -> $f3"
fi
dm_remove vol

# --- 2. FUA writes and commits ---------------------------------------------------

meta2=$(make_loop 1) || ktap_skip_all "cannot set up a loop device"
sh_setup sh_gate mgate "$meta2" ""
sh_setup dm_create s "0 $len stream $(dm_dev mgate) $dest $origin $RS 1 paused"
dev=$(dm_dev s)
# Region 1 copied and committed (whole-region write, then a flush).
dd if=/dev/urandom of="$dev" bs=$((RS * 512)) seek=1 count=1 oflag=direct \
	conv=fsync status=none
# Hold every metadata write; region 200 copied but not committed. (Bits are
# tracked as committed per 64 regions: 200 is far from 1.)
sh_setup sh_gate_set mgate "$meta2" "w"
dd if=/dev/urandom of="$dev" bs=$((RS * 512)) seek=200 count=1 oflag=direct status=none

# fua_write REGION: a 4 KiB FUA write into REGION, in the background.
fua_write()
{
	dd if=/dev/urandom of="$dev" bs=4096 seek=$(($1 * RS / 8)) count=1 \
		oflag=direct,dsync status=none &
}

# done_within PID: the job ended within 30 s (a bound for a hang, not a timing).
done_within()
{
	local i

	for ((i = 0; i < 300; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# Region 200's (periodic) commit waits at the gate. The block device issues
# an O_DSYNC write as a FUA write and then a flush, which needs the commit:
# so watch the FUA write reach the destination.
sh_gate_wait mgate w 1 || ktap_diag "no commit held"
w0=$(written "$dest")
fua_write 1
p1=$!
for ((i = 0; i < 300; i++)); do
	[[ $(written "$dest") -gt $w0 ]] && break
	sleep 0.1
done
if [[ $(written "$dest") -gt $w0 ]]; then
	ktap_ok "FUA write to a committed region goes on while a commit is held"
else
	ktap_fail "FUA write to a committed region goes on while a commit is held" \
		"destination sectors written $w0 -> $(written "$dest"), held metadata writes $(sh_gate_held mgate w)"
fi

fua_write 200
p3=$!
if sh_gate_wait mgate w 1 && kill -0 $p3 2>/dev/null; then
	ktap_ok "FUA write to a region not committed waits for the commit"
else
	ktap_fail "FUA write to a region not committed waits for the commit" \
		"held metadata writes: $(sh_gate_held mgate w)"
fi
sh_setup sh_gate_set mgate "$meta2" ""
if done_within $p3 && wait $p3 && wait $p1; then
	ktap_ok "... and completes once the commit is done"
else
	ktap_fail "... and completes once the commit is done"
fi

ktap_finish
