#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_cor_02: copy_on_read of a region whose background copy is between
# two pieces when the stream is paused.
#
# The origin sits behind dm-delay (3 s per read), regions are 128 KiB,
# copied in pieces of 64 KiB (the smallest piece, while no throughput is
# measured yet): region 0's copy needs two pieces, 3 s each. The stream
# starts with copy_on_read and max_inflight 3; once region 0's first piece
# is in flight it is paused, and region 0 is read (4 KiB). The read asks
# for region 0 while its copy is in flight: that copy must go on, paused
# or not, and region 0 reach the destination. Before the fix the request
# was dropped (the region was busy) and, the job not being one a read
# asked for, the pause dropped it at its next piece: region 0 was never
# copied.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 4 dm-delay

RS=256				# 128 KiB
NAME=cor02

sh_stream_loops 8 1
LEN=$(sectors "$ORIG")
sh_setup dm_create cor02-orig "0 $LEN delay $ORIG 0 3000"
sh_setup dm_create $NAME "0 $LEN stream $META $DEST $(dm_dev cor02-orig) $RS 3 max_inflight 3 copy_on_read"

for ((i = 0; i < 50; i++)); do
	[[ $(sh_copying $NAME) != 0 ]] && break
	sleep 0.1
done
sh_setup dm_message $NAME pause
ktap_diag "paused: $(dm_status $NAME)"
ktap_check "region 0 was not copied yet (its first piece takes 3 s)" \
	test "$(sh_region_md5 "$DEST" 0 $RS)" != "$(sh_region_md5 "$ORIG" 0 $RS)"

# The read goes to the origin (3 s) and asks for region 0.
ktap_check "a 4 KiB read of region 0 while paused" \
	dd if="$(dm_dev $NAME)" of=/dev/null bs=4096 count=1 skip=8 iflag=direct status=none

ok=
sh_wait_for 20 sh_region_same "$DEST" "$ORIG" 0 $RS && ok=1
ktap_diag "after the read: $(dm_status $NAME)"
ktap_check "region 0 reaches the destination within 20 s, paused" test -n "$ok"
ktap_check "the stream is still paused" test "$(sh_state $NAME)" = paused

dm_remove $NAME
ktap_finish
