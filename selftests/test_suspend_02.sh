#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_suspend_02: what a suspend waits for, and what an interrupted or a
# noflush suspend leaves behind. Copies are held at a gate (a dm-delay
# device holding the origin's reads) so that they are in flight whatever
# the host's speed, and the suspend's progress is read from dmsetup's
# kernel stack, not guessed with sleeps.
#
# 1. A suspend interrupted by a signal (while it waits for a write parked
#    on a held copy) leaves the device live and streaming: it completes.
# 2. Background copies in flight are bounded in bytes, whatever the region
#    size: with 16 MiB regions a suspend waits for at most 16 MiB of
#    copying (one 1 MiB piece per region in flight, the rest of a region
#    is dropped and copied later), not for whole regions; under a rate
#    limit, for about a second of it.
# 3. A noflush suspend does not wait for a copy that keeps failing: the
#    write waiting for it goes back to dm, and after a table with a good
#    origin is loaded and resumed, the write completes.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 9 dm-delay

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))

written() { sh_stat "$1" 7; }

[[ -r /proc/self/stack ]] || ktap_skip_all "no /proc/PID/stack to follow a suspend"

# --- 1. interrupted suspend ----------------------------------------------------

sh_stream_loops 8 1
origin=$ORIG dest=$DEST meta=$META
len=$(sectors "$origin")
sh_setup sh_gate ogate "$origin" "r"
sh_setup dm_create s "0 $len stream $meta $dest $(dm_dev ogate) $RS 1 paused"
dev=$(dm_dev s)

dd if=/dev/urandom of="$dev" bs=4096 seek=$((7 * RB / 4096)) count=1 oflag=direct status=none &
sh_gate_wait ogate r 1
dmsetup suspend s &
spid=$!
ok=
if sh_wait_stack $spid dm_suspend; then
	kill -KILL $spid
	wait $spid && ktap_diag "the suspend was not interrupted"
	dmsetup info s | grep -q SUSPENDED || ok=1
fi
sh_setup sh_gate_set ogate "$origin" ""
wait
if [[ -n $ok ]]; then
	ktap_ok "a suspend interrupted by a signal leaves the device live"
else
	ktap_fail "a suspend interrupted by a signal leaves the device live" "$(dmsetup info s)"
fi
dm_message s continue
if sh_wait_state s complete 120 && sh_cmp "$dest" "$dev"; then
	ktap_ok "... and streaming goes on to completion"
else
	ktap_fail "... and streaming goes on to completion" "status $(dm_status s)"
fi
dm_remove s

# --- 2. bytes in flight --------------------------------------------------------

BIG=32768			# 16 MiB regions
sh_stream_loops 64 1
origin2=$ORIG dest2=$DEST meta2=$META
len2=$(sectors "$origin2")

# suspend_cost NAME TABLE: sectors copied while NAME's suspend waited for
# its copies in flight (all held at the gate g2 when the suspend starts).
suspend_cost()
{
	local name=$1 d0 pid

	sh_gate g2 "$origin2" "r"
	dm_create "$name" "$2"
	sh_gate_wait g2 r 1 || { echo "none held"; return 1; }
	d0=$(written "$dest2")
	dmsetup suspend "$name" &
	pid=$!
	sh_wait_stack $pid stream_postsuspend || { echo "no postsuspend"; return 1; }
	sh_gate_set g2 "$origin2" ""
	wait $pid || { echo "suspend failed"; return 1; }
	echo $(($(written "$dest2") - d0))
	dmsetup resume "$name"
	dm_remove "$name"
	dm_remove g2
}

cost=$(suspend_cost big "0 $len2 stream $meta2 $dest2 $(dm_dev g2) $BIG")
if [[ $cost =~ ^[0-9]+$ && $cost -le 32768 ]]; then
	ktap_ok "16 MiB regions: a suspend waits for at most 16 MiB of copies ($((cost / 2048)) MiB)"
else
	ktap_fail "16 MiB regions: a suspend waits for at most 16 MiB of copies" \
		"$cost sectors copied during the suspend"
fi

dd if=/dev/zero of="$meta2" bs=4096 count=1 oflag=direct status=none
cost=$(suspend_cost slow "0 $len2 stream $meta2 $dest2 $(dm_dev g2) $BIG 2 rate 2048")
# One second at 2 MiB/s, plus a piece.
if [[ $cost =~ ^[0-9]+$ && $cost -le $((4096 + 1024)) ]]; then
	ktap_ok "rate 2 MiB/s: a suspend waits for about a second of copying ($((cost / 2)) KiB)"
else
	ktap_fail "rate 2 MiB/s: a suspend waits for about a second of copying" \
		"$cost sectors copied during the suspend"
fi

dd if=/dev/zero of="$meta2" bs=4096 count=1 oflag=direct status=none
sh_setup dm_create full "0 $len2 stream $meta2 $dest2 $origin2 $BIG"
if sh_wait_state full complete 300 && sh_cmp "$dest2" "$origin2"; then
	ktap_ok "regions copied in pieces end up whole"
else
	ktap_fail "regions copied in pieces end up whole" "status $(dm_status full)"
fi
dm_remove full

# --- 3. noflush suspend --------------------------------------------------------

sh_stream_loops 8 1
origin3=$ORIG dest3=$DEST meta3=$META
len3=$(sectors "$origin3")
# The origin as the stream sees it: region 3 unreadable, reads held.
sh_setup dm_create bad "0 $((3 * RS)) linear $origin3 0
$((3 * RS)) $RS error
$((4 * RS)) $((len3 - 4 * RS)) linear $origin3 $((4 * RS))"
sh_setup sh_gate g3 "$(dm_dev bad)" "r"
sh_setup dm_create s3 "0 $len3 stream $meta3 $dest3 $(dm_dev g3) $RS 1 paused"
dev3=$(dm_dev s3)
expected=$(sh_tmpfile)
sh_read "$origin3" >"$expected"
data=$(sh_tmpfile)
head -c 4096 /dev/urandom >"$data"
sh_patch_file "$expected" "$data" $((3 * RS + 8))

dd if="$data" of="$dev3" bs=4096 seek=$(((3 * RS + 8) / 8)) oflag=direct status=none &
wpid=$!
sh_gate_wait g3 r 1
dmsetup suspend --noflush s3 &
spid=$!
sh_wait_stack $spid dm_suspend || ktap_diag "the suspend did not start"
tries=0
while kill -0 $spid 2>/dev/null && [[ $tries -lt 8 ]]; do
	if [[ $(sh_gate_held g3 r) -ge 1 ]]; then
		sh_gate_release g3
		tries=$((tries + 1))
	fi
	sleep 0.1
done
if wait $spid; then
	ktap_ok "noflush suspend with a write waiting on a failing copy ($tries tries)"
else
	ktap_fail "noflush suspend with a write waiting on a failing copy" "$tries tries"
fi
if kill -0 $wpid 2>/dev/null; then
	ktap_ok "... the write is held by dm, not failed"
else
	ktap_fail "... the write is held by dm, not failed"
fi
dmsetup load s3 --table "0 $len3 stream $meta3 $dest3 $origin3 $RS 1 paused"
dmsetup resume s3
if wait $wpid; then
	ktap_ok "... and completes on the new table, with a good origin"
else
	ktap_fail "... and completes on the new table, with a good origin"
fi
if sh_cmp "$dev3" "$expected"; then
	ktap_ok "... the device holds the write and the origin's data"
else
	ktap_fail "... the device holds the write and the origin's data"
fi

ktap_finish
