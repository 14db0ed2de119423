#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_stress_01: create and remove a stream target again and again while
# copies are in flight.
#
# Aimed at races between kcopyd's completion callback and the destructor
# (a callback still touching the target or its workqueue while the
# destructor destroys them). Such a race seldom shows on the stock kernel:
# run it on the debug kernel, `make check KERNEL=debug`, where KASAN, debug
# objects and lockdep report it. It did not catch the race fixed in
# 9048da7 (the workqueue destroyed before the kcopyd client): the module
# before that fix passed 200 cycles on the debug kernel too, as the
# suspend's drain leaves only a window of a few instructions.
#
# Copies are in flight by construction, not by timing: the origin sits
# behind dm-delay (reads delayed by 200 ms), and before the cycles every
# other 4 KiB region (8 sectors) is written whole through a paused target,
# which marks it copied without a copy. Every uncopied region then stands
# alone, so each is its own kcopyd job, up to 32 at a time (max_inflight),
# and each stays in flight for at least 200 ms. A cycle creates the target
# over the same metadata, waits until the status shows regions copying and
# then, with copies still in flight, ends it in one of four ways in turn:
# remove; suspend, then remove; reload the same table (the old instance is
# destroyed) and remove the new one; create paused, continue and remove.
# When everything has been copied, the metadata saved right after the
# checkerboard is written back: its regions are on the destination
# unchanged, so that is a valid state, and copies can be in flight again.
#
# Checked in every cycle: the create and the remove succeed, regions were
# copying just before the teardown (unless the copy had just completed),
# afterwards the device is gone and the origin, destination and metadata
# devices are released, the copied count of the next create is at least the
# one read before the remove (the removal committed), a paused target
# copies nothing, and the kernel's taint flags did not change (a KASAN
# report or a WARN taints it; the cycles stop at the first). At the end: no
# kernel report in the log, and a last target over the same metadata, with
# the delay gone, completes and reads back the origin with the checkerboard
# applied, as does the destination alone, and the origin is untouched.
#
# The cycles run in selftests/stress_cycles.py. DMSTREAM_STRESS_CYCLES sets
# their number (default 200; `make check` passes it on from the host).

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd cmp

CYCLES=${DMSTREAM_STRESS_CYCLES:-200}
[[ $CYCLES =~ ^[1-9][0-9]*$ ]] ||
	ktap_skip_all "DMSTREAM_STRESS_CYCLES='$CYCLES' is not a number of cycles"

RS=8			# 4 KiB regions
RB=$((RS * 512))
MB=8
LEN=$((MB * 2048))
NR=$((LEN / RS))	# 2048 regions, half of them copied by the checkerboard
DELAY_MS=200
INFLIGHT=32		# as in stress_cycles.py
NAME=st01
ONAME=st01-origin
# How long a target may take to show copies in flight: long enough for any
# host, as copying starts at once on create or continue.
WAIT_S=60

sh_start 11 dm-delay

sh_stream_loops $MB 1
ORIG_MD5=$(sh_md5 "$ORIG")
IMG=$(sh_tmpfile)
sh_read "$ORIG" >"$IMG"

sh_setup dm_create "$ONAME" "0 $LEN delay $ORIG 0 $DELAY_MS"
ODEV=$(dm_dev "$ONAME")
TBL="0 $LEN stream $META $DEST $ODEV $RS"

# checkerboard DEV [IMG]: the even regions written whole with O_DIRECT, each
# filled with its number; the same bytes patched into the image IMG.
checkerboard()
{
	dmst_py devio checkerboard "$1" "${2:-}" "$RB" "$NR"
}

# The checkerboard, through a paused target over blank metadata: half the
# regions are then copied. The metadata as it is then is kept in META_IMG.
META_IMG=$(sh_tmpfile)
sh_zero "$META"
if dm_create $NAME "$TBL 3 paused max_inflight $INFLIGHT" &&
   checkerboard "$(dm_dev $NAME)" "$IMG" &&
   copied=$(sh_copied $NAME) && dm_remove $NAME &&
   [[ $copied -eq $((NR / 2)) ]] &&
   dd if="$META" of="$META_IMG" bs=1M iflag=direct status=none; then
	ktap_ok "setup: every other region written through a paused target ($copied of $NR copied)"
else
	ktap_fail "setup: every other region written through a paused target" \
		"${DM_ERR:-$copied regions copied, not $((NR / 2))}"
	ktap_bail "no checkerboard"
fi

# The cycles, from one python process (a dmsetup per step would cost
# seconds each on the debug kernel); cleanup removes the device if it is
# left behind.
cleanup_add "dm_exists $NAME && _dm_remove_hard $NAME"
kmsg "dm-stream selftest: $TEST_NAME: cycles start"
OBLK=$(dmsetup info -c --noheadings -o blkdevname "$ONAME" | tr -d ' ')
python3 "$TEST_DIR/stress_cycles.py" $NAME "$TBL" $NR "$CYCLES" "$META" "$META_IMG" \
	$WAIT_S "$OBLK" "${DEST#/dev/}" "${META#/dev/}" >"$TEST_TMP/cycles" 2>&1
declare -A R=()
while IFS='=' read -r k v; do
	R[$k]=$v
done <"$TEST_TMP/cycles"
if [[ -z ${R[done]:-} ]]; then
	ktap_diag "stress_cycles.py: $(tail -n 5 "$TEST_TMP/cycles")"
	for k in create copying remove progress paused taint; do
		R[fail_$k]="stress_cycles.py did not finish"
	done
fi
ktap_diag "${R[done]:-0} of $CYCLES cycles in ${R[seconds]:-?} s, on average ${R[inflight_avg]:-?} regions copying at teardown, ${R[all_copied]:-?} teardown(s) after everything was copied, metadata restored ${R[restores]:-?} time(s)"

report()
{
	if [[ -z $2 ]]; then
		ktap_ok "$1"
	else
		ktap_fail "$1" "$2"
	fi
}

report "$CYCLES creates succeed" "${R[fail_create]:-}"
report "regions copying at every teardown before completion" "${R[fail_copying]:-}"
report "every remove succeeds, the device is gone, its devices are released" "${R[fail_remove]:-}"
report "a create finds every region copied before the last remove" "${R[fail_progress]:-}"
report "a paused target copies nothing until continue" "${R[fail_paused]:-}"
log=$(dmesg_since_mark | grep -E 'BUG:|WARNING:|KASAN:|ODEBUG:|Oops|general protection|possible (circular|recursive) locking|inconsistent lock state|sleeping function called|blocked for more than|list_(add|del) corruption' | head -n 5)
if [[ -z ${R[fail_taint]:-} && -z $log ]]; then
	ktap_ok "no kernel report during the cycles"
else
	ktap_fail "no kernel report during the cycles" "${R[fail_taint]:-not tainted anew}"
	[[ -z $log ]] || ktap_diag "$log"
fi

# The last target, without the delay, must finish and read back what was
# written and copied, whatever the removals interrupted.
dm_exists $NAME && dm_remove $NAME
if dm_reload "$ONAME" "0 $LEN delay $ORIG 0 0" && dm_create $NAME "$TBL"; then
	if sh_wait_state $NAME complete 300; then
		ktap_ok "a last target over the same metadata completes ($(sh_copied $NAME) regions)"
	else
		ktap_fail "a last target over the same metadata completes" "status: $(dm_status $NAME)"
	fi
	if out=$(sh_cmp "$(dm_dev $NAME)" "$IMG"); then
		ktap_ok "it reads back the origin with the checkerboard"
	else
		ktap_fail "it reads back the origin with the checkerboard" "$out"
	fi
	dm_remove $NAME || ktap_diag "cannot remove $NAME: $DM_ERR"
else
	ktap_fail "a last target over the same metadata completes" "$DM_ERR"
	ktap_fail "it reads back the origin with the checkerboard" "no target"
fi
if out=$(sh_cmp "$DEST" "$IMG"); then
	ktap_ok "the destination alone holds the same"
else
	ktap_fail "the destination alone holds the same" "$out"
fi
if [[ $(sh_md5 "$ORIG") == "$ORIG_MD5" ]]; then
	ktap_ok "origin untouched"
else
	ktap_fail "origin untouched"
fi
ktap_finish
