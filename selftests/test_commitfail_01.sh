#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_commitfail_01: a commit that fails half-way never costs the metadata.
#
# Part 1, the superblock landed but its flush failed. The metadata device's
# superblock block goes through a gate whose flushes go to a separate
# dm-linear: the test holds the superblock write (the slots are written and
# flushed), fails that linear, then lets the write through: the flush after
# it fails. The target must go to
# ro and never write either slot of that transaction again: a copy that
# completes afterwards (it was in flight, held at the origin) and the
# final commit at remove must not rewrite the slot the superblock on disk
# now points to under the same transaction id. Then the metadata must load
# again, with the regions committed before.
#
# Part 2, the destination flush fails. The copies made since the last
# commit may be lost, so they must never be committed: the flush that
# needed the commit fails, the target goes to ro with a dm event, the
# metadata device sees no write after that, and the next flush that needs
# a commit fails too (fail mode). The metadata loads again afterwards with
# what was committed before, and those regions hold the origin's data.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 10 dm-delay dm-flakey

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))

writes() { sh_stat "$1" 5; }

# --- part 1 ---------------------------------------------------------------------

sh_stream_loops 8 1
origin=$ORIG dest=$DEST mloop=$META
len=$(sectors "$origin")
msz=$(sectors "$mloop")

# The metadata device: its superblock block goes through gate ga, whose
# flushes go to mflush; the bitmap blocks go straight to the loop device.
sh_setup dm_create mflush "0 $msz linear $mloop 0"
sh_setup sh_gate ga "$mloop" "" "$(dm_dev mflush)"
sh_setup dm_create mtop "0 8 linear $(dm_dev ga) 0
8 $((msz - 8)) linear $mloop 8"
sh_setup sh_gate ogate "$origin" ""
sh_setup dm_create s1 "0 $len stream $(dm_dev mtop) $dest $(dm_dev ogate) $RS 1 paused"
dev=$(dm_dev s1)
expected=$(sh_tmpfile)
sh_read "$origin" >"$expected"

# Region 0 copied and committed: transaction 1.
dd if=/dev/urandom of="$dev" bs=$RB count=1 oflag=direct conv=fsync status=none
sh_read "$dev" $RB >"$TEST_TMP/r0"

# A copy in flight, held at the origin: a 4 KiB write into region 5.
sh_setup sh_gate_set ogate "$origin" "r"
dd if=/dev/urandom of="$dev" bs=4096 seek=$((5 * RB / 4096)) count=1 oflag=direct \
	status=none &
sh_gate_wait ogate r 1 || ktap_diag "the copy of region 5 never reached the origin"

# Region 2 copied; its (periodic) commit writes the slot and flushes, then
# its superblock write is held.
ok=1
sh_gate_set ga "$mloop" "w" "$(dm_dev mflush)" || ok=
ev0=$(sh_event_nr s1)
dd if=/dev/urandom of="$dev" bs=$RB seek=2 count=1 oflag=direct status=none
sh_read "$dev" $RB $((2 * RB)) >"$TEST_TMP/r2"
sh_gate_wait ga w 1 || ok=
# The superblock lands; the flush after it fails.
dm_reload mflush "$(sh_failing_table "$mloop")" || ok=
sh_gate_set ga "$mloop" "" "$(dm_dev mflush)" || ok=
for ((i = 0; i < 100; i++)); do
	[[ $(sh_mode s1) == rw ]] || break
	sleep 0.1
done
if [[ -n $ok && $(sh_mode s1) == ro && $(sh_event_nr s1) -gt $ev0 ]]; then
	ktap_ok "superblock written, its flush failed: ro, an event"
else
	ktap_fail "superblock written, its flush failed: ro, an event" \
		"setup ok '$ok', status $(dm_status s1), events $ev0 -> $(sh_event_nr s1)"
fi

# The held copy completes after the failure; then the device is removed.
sh_setup sh_gate_set ogate "$origin" ""
wait
if [[ $(sh_copied s1) -ge 3 ]]; then
	ktap_ok "the copy in flight completes in ro mode"
else
	ktap_fail "the copy in flight completes in ro mode" "status $(dm_status s1)"
fi
dm_remove s1 || ktap_diag "remove: $DM_ERR"

# Back on healthy metadata: it loads, with regions 0 and 2 (transaction 2,
# whose superblock landed), and the copy completed in ro mode is not there.
dm_create s1b "0 $len stream $mloop $dest $origin $RS 1 paused"
if dm_exists s1b; then
	ktap_ok "the metadata loads after the failed commit"
else
	ktap_fail "the metadata loads after the failed commit" \
		"$(dmesg_since_mark | grep 'stream' | tail -n 3)"
fi
c=$(sh_copied s1b)
if [[ $c == 2 ]] && [[ $(sh_md5 "$(dm_dev s1b)" $RB) == $(md5sum <"$TEST_TMP/r0" | cut -d' ' -f1) ]] &&
   [[ $(sh_md5 "$(dm_dev s1b)" $RB $((2 * RB))) == $(md5sum <"$TEST_TMP/r2" | cut -d' ' -f1) ]] &&
   [[ $(sh_md5 "$(dm_dev s1b)" $RB $((5 * RB))) == $(sh_md5 "$expected" $RB $((5 * RB))) ]]; then
	ktap_ok "... with regions 0 and 2 as written, region 5 from the origin"
else
	ktap_fail "... with regions 0 and 2 as written, region 5 from the origin" \
		"copied '$c', status $(dm_status s1b)"
fi
dm_remove s1b

# --- part 2 ---------------------------------------------------------------------

sh_stream_loops 8 1
origin2=$ORIG dloop=$DEST meta2=$META
sh_setup dm_create dflush "0 $(sectors "$dloop") linear $dloop 0"
sh_setup dm_create dest2 "0 $(sectors "$dloop") delay $dloop 0 0 $dloop 0 0 $(dm_dev dflush) 0 0"
# Paused until the destination's flushes fail: then every copy is made
# after the last commit, whatever the host's speed.
sh_setup dm_create s2 "0 $len stream $meta2 $(dm_dev dest2) $origin2 $RS 1 paused"
dev2=$(dm_dev s2)
sh_flush "$dev2"

# The next (periodic) commit's destination flush fails.
ev0=$(sh_event_nr s2)
sh_setup dm_reload dflush "$(sh_failing_table "$dloop")"
dm_message s2 continue
for ((i = 0; i < 300; i++)); do
	[[ $(sh_mode s2) == rw ]] || break
	sleep 0.1
done
w0=$(writes "$meta2")
if [[ $(sh_mode s2) == ro && $(sh_event_nr s2) -gt $ev0 ]]; then
	ktap_ok "destination flush failed: ro, an event"
else
	ktap_fail "destination flush failed: ro, an event" \
		"status $(dm_status s2), events $ev0 -> $(sh_event_nr s2)"
fi
if ! sh_flush "$dev2" 2>/dev/null && [[ $(dm_status s2) == Fail ]]; then
	ktap_ok "ro: a flush that needs a commit fails, and so does the target"
else
	ktap_fail "ro: a flush that needs a commit fails, and so does the target" \
		"status $(dm_status s2)"
fi
dm_remove s2
w1=$(writes "$meta2")
if [[ $w1 == "$w0" ]]; then
	ktap_ok "nothing written to the metadata after the destination flush failed"
else
	ktap_fail "nothing written to the metadata after the destination flush failed" \
		"metadata writes $w0 -> $w1"
fi

sh_setup dm_reload dflush "0 $(sectors "$dloop") linear $dloop 0"
dm_create s2b "0 $len stream $meta2 $(dm_dev dest2) $origin2 $RS 1 paused"
if dm_exists s2b; then
	ktap_ok "the metadata loads after the failed destination flush"
else
	ktap_fail "the metadata loads after the failed destination flush"
fi
if sh_cmp "$(dm_dev s2b)" "$origin2"; then
	ktap_ok "... and the device reads the origin's data ($(sh_copied s2b) regions copied)"
else
	ktap_fail "... and the device reads the origin's data"
fi
dm_message s2b continue
if sh_wait_state s2b complete 120 && sh_cmp "$(dm_dev dest2)" "$origin2"; then
	ktap_ok "... and streams to completion"
else
	ktap_fail "... and streams to completion" "status $(dm_status s2b)"
fi

ktap_finish
