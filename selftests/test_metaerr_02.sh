#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_metaerr_02: metadata read errors at load, and copy retries once the
# metadata has failed.
#
# 1. A bitmap slot that cannot be read counts as an invalid slot: when the
#    other slot is the one in use, the metadata loads (it used to fail as a
#    whole); when the unreadable slot is the one in use, the load is
#    refused with a clear error.
# 2. Retries already queued are not issued once the target is in ro mode.
#    A write waits for the copy of a region whose origin is unreadable; its
#    first try fails and its retry is queued in the same worker run that
#    then blocks in a commit, held at the metadata device's flush (a gate);
#    that commit fails, so the target goes to ro. The queued retry must
#    then be given up (the write fails, one copy error), not issued (it
#    would show as a read held at the origin's gate).
# 3. An unreadable slot is rewritten at the next commit. It may hold a
#    later, uncommitted transaction (a commit that failed after writing
#    it); left alone, the next commits raise the superblock's id past it
#    and it becomes the block's current slot, with its stale bits. Bitmap
#    block 0's free slot gets such a transaction (bits 0 and 1, id 2); the
#    target loads with that slot unreadable (an error target, replaced by
#    the plain device once the target is up; meanwhile a gate holds the
#    destination's flushes, with which every commit starts) and commits
#    twice into bitmap block 1 only; then the metadata must load as it is.
#    Meanwhile, the slot to rewrite must not make block 0's committed
#    regions look uncommitted: a FUA write to region 0 goes to the
#    destination while that first commit is held, not after it.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 10 dm-delay dm-flakey

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))

# --- 1. unreadable slots ---------------------------------------------------------

sh_stream_loops 8 1
origin=$ORIG dest=$DEST meta=$META
len=$(sectors "$origin")
msz=$(sectors "$meta")

# One commit: bitmap block 0 lives in slot 1 (block 2), slot 0 (block 1)
# holds the formatted, older transaction.
sh_setup dm_create s "0 $len stream $meta $dest $origin $RS 1 paused"
dd if=/dev/urandom of="$(dm_dev s)" bs=$RB seek=3 count=1 oflag=direct conv=fsync status=none
dm_remove s

# meta_with_error BLOCK: the metadata with BLOCK unreadable (and unwritable).
meta_with_error()
{
	local b=$((8 * $1))

	echo "0 $b linear $meta 0
$b 8 error
$((b + 8)) $((msz - b - 8)) linear $meta $((b + 8))"
}

sh_setup dm_create mbad "$(meta_with_error 1)"
dm_create s "0 $len stream $(dm_dev mbad) $dest $origin $RS 1 paused"
if dm_exists s && [[ $(sh_copied s) == 1 ]]; then
	ktap_ok "slot not in use unreadable: the metadata loads (1 copied)"
else
	ktap_fail "slot not in use unreadable: the metadata loads" \
		"$(dmesg_since_mark | grep stream | tail -n 2)"
fi
dm_exists s && dm_remove s

sh_setup dm_reload mbad "$(meta_with_error 2)"
sh_ctr_fail "slot in use unreadable: refused" \
	"0 $len stream $(dm_dev mbad) $dest $origin $RS 1 paused" "disagrees|cannot read"
dm_remove mbad

# --- 2. no retry in ro mode ------------------------------------------------------

sh_stream_loops 8 1
origin2=$ORIG dest2=$DEST mloop=$META
msz=$(sectors "$mloop")
X=5				# unreadable at the origin
Y=9				# written whole: the first commit
Z=12				# discarded whole: the second commit
sh_setup dm_create olin "0 $((X * RS)) linear $origin2 0
$((X * RS)) $RS error
$(((X + 1) * RS)) $((len - (X + 1) * RS)) linear $origin2 $(((X + 1) * RS))"
sh_setup sh_gate ogate "$(dm_dev olin)" "r"
# The metadata device: the superblock block through gate ga (whose flushes
# go to mflush), the bitmap blocks through gate gb.
sh_setup dm_create mflush "0 $msz linear $mloop 0"
sh_setup sh_gate ga "$mloop" "" "$(dm_dev mflush)"
sh_setup sh_gate gb "$mloop" ""
sh_setup dm_create mtop "0 8 linear $(dm_dev ga) 0
8 $((msz - 8)) linear $(dm_dev gb) 8"
sh_setup dm_create s2 "0 $len stream $(dm_dev mtop) $dest2 $(dm_dev ogate) $RS 1 paused"
dev=$(dm_dev s2)
sh_flush "$dev"			# the origin flush of the first flush

ok=1
# The write into X waits for a copy; its first read is held.
dd if=/dev/urandom of="$dev" bs=4096 seek=$((X * RB / 4096)) count=1 oflag=direct \
	status=none 2>/dev/null &
wpid=$!
sh_gate_wait ogate r 1 || ok=
# The worker blocks in the commit of Y, at its superblock write.
sh_gate_set ga "$mloop" "w" "$(dm_dev mflush)" || ok=
dd if=/dev/urandom of="$dev" bs=$RB seek=$Y count=1 oflag=direct conv=fsync status=none &
sh_gate_wait ga w 1 || ok=
# The copy's first try fails meanwhile (the release issues the held read,
# which fails at once): its completion waits for the worker. kcopyd calls
# back from its own thread: give it a second. Should it take longer, the
# failure is processed after the ro switch and the test cannot tell a
# module that issues retries in ro mode from one that does not; a correct
# module passes either way.
sh_gate_release ogate || ok=
sleep 1
# A discard of Z and a flush wait for the worker too.
sh_discard "$dev" $((Z * RB)) $RB &
dpid=$!
sh_flush "$dev" 2>/dev/null &
fpid=$!
for pid in $dpid $fpid; do
	sh_wait_stack "$pid" "submit_bio_wait\|blkdev_issue_discard\|blkdev_issue_flush" || {
		ok=
		ktap_diag "$(for p in $(_sh_tree "$pid"); do cat "/proc/$p/stack"; done 2>&1)"
	}
done
# The commit of Y completes. The next worker run queues the retry (the copy
# failed in rw mode), marks Z and blocks in its commit, at the bitmap write.
sh_gate_set gb "$mloop" "w" || ok=
sh_gate_set ga "$mloop" "" "$(dm_dev mflush)" || ok=
sh_gate_wait gb w 1 || ok=
# That commit fails (at the flush after the bitmap): ro.
dm_reload mflush "$(sh_failing_table "$mloop")" || ok=
sh_gate_set gb "$mloop" "" || ok=
for ((i = 0; i < 300; i++)); do
	[[ $(sh_mode s2) == rw ]] || break
	sleep 0.1
done
if [[ -n $ok && $(sh_mode s2) == ro ]]; then
	ktap_ok "a retry queued, then a failed commit: ro"
else
	ktap_fail "a retry queued, then a failed commit: ro" "setup ok '$ok', status $(dm_status s2)"
fi

# Either the write fails (the retry given up), or a retry reaches the gate.
for ((i = 0; i < 300; i++)); do
	kill -0 $wpid 2>/dev/null || break
	[[ $(sh_gate_held ogate r) -ge 1 ]] && break
	sleep 0.1
done
held=$(sh_gate_held ogate r)
if [[ $held == 0 ]] && ! wait $wpid; then
	ktap_ok "ro: the queued retry is given up, the write fails"
else
	ktap_fail "ro: the queued retry is given up, the write fails" \
		"origin reads held $held (a retry issued in ro mode), status $(dm_status s2)"
fi
if [[ $(sh_copy_errors s2) == 1 ]]; then
	ktap_ok "... and counted as a copy error"
else
	ktap_fail "... and counted as a copy error" "status $(dm_status s2)"
fi
sh_setup sh_gate_set ogate "$(dm_dev olin)" ""
wait
if sh_cmp "$dev" "$origin2" $((X * RB)) &&
   [[ $(sh_md5 "$dev" $RB $(((X + 1) * RB))) == $(sh_md5 "$origin2" $RB $(((X + 1) * RB))) ]]; then
	ktap_ok "ro: reads still work"
else
	ktap_fail "ro: reads still work"
fi


# --- 3. an unreadable slot is rewritten ------------------------------------------

# 33024 regions of 4 KiB: two bitmap blocks
if ! origin3=$(make_loop 129) || ! dest3=$(make_loop 129) || ! meta3=$(make_loop 1); then
	ktap_skip_all "cannot set up a loop device"
fi
len=$(sectors "$origin3")
msz=$(sectors "$meta3")
B1=32600			# a region of bitmap block 1

sh_setup dm_create s3 "0 $len stream $meta3 $dest3 $origin3 8 1 paused"
dd if=/dev/urandom of="$(dm_dev s3)" bs=4096 count=1 oflag=direct conv=fsync status=none
dm_remove s3

# Block 0's free slot: the current one with bit 1 set too, in the transaction
# after the superblock's.
slot=$(dmst_py uncommitted "$meta3")
if [[ $slot == [01] ]]; then
	ktap_ok "bitmap block 0, slot $slot: an uncommitted transaction with regions 0 and 1"
else
	ktap_fail "bitmap block 0: an uncommitted transaction with regions 0 and 1" "$slot"
fi
b=$((8 * (1 + slot)))
sh_setup dm_create mbad3 "0 $b linear $meta3 0
$b 8 error
$((b + 8)) $((msz - b - 8)) linear $meta3 $((b + 8))"
sh_setup sh_gate dgate "$dest3" "f"
ok=
fua=
if dm_create s3 "0 $len stream $(dm_dev mbad3) $(dm_dev dgate) $origin3 8 1 paused" &&
   [[ $(sh_copied s3) == 1 ]]; then
	# O_DSYNC: a FUA write, then a flush that waits for the held commit.
	w0=$(sh_stat "$dest3" 7)
	dd if=/dev/urandom of="$(dm_dev s3)" bs=4096 count=1 oflag=direct,dsync status=none &
	fua=$!
	for ((i = 0; i < 300; i++)); do
		[[ $(sh_stat "$dest3" 7) -gt $w0 ]] && break
		sleep 0.1
	done
	w1=$(sh_stat "$dest3" 7)
fi
if [[ -n $fua && $w1 -gt $w0 ]]; then
	ktap_ok "a FUA write to a committed region of that block is not held by the rewrite"
else
	ktap_fail "a FUA write to a committed region of that block is not held by the rewrite" \
		"${DM_ERR:-destination sectors written $w0 -> $w1}"
fi
if [[ -n $fua ]] && dm_reload mbad3 "0 $msz linear $meta3 0" &&
   sh_gate_set dgate "$dest3" "" && wait "$fua"; then
	dev=$(dm_dev s3)
	for r in $B1 $((B1 + 1)); do
		dd if=/dev/urandom of="$dev" bs=4096 seek="$r" count=1 oflag=direct conv=fsync \
			status=none || break
	done && [[ $(sh_copied s3) == 3 && $(sh_mode s3) == rw ]] && ok=1
fi
if [[ -n $ok ]]; then
	ktap_ok "slot unreadable at load: loads, two commits in bitmap block 1 (3 copied)"
else
	ktap_fail "slot unreadable at load: loads, two commits in bitmap block 1" \
		"${DM_ERR:-status $(dm_status s3)}"
fi
dm_exists s3 && dm_remove s3
dm_remove mbad3
if dm_create s3 "0 $len stream $meta3 $(dm_dev dgate) $origin3 8 1 paused" &&
   [[ $(sh_copied s3) == 3 ]]; then
	ktap_ok "then the metadata loads with 3 copied (the slot was rewritten)"
else
	ktap_fail "then the metadata loads with 3 copied (the slot was rewritten)" \
		"${DM_ERR:-status $(dm_status s3)}"
fi
dm_exists s3 && dm_remove s3

ktap_finish
