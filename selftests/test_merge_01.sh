#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_merge_01: `dmstream merge` of a plain dm-snapshot.
#
# A stack (merge_helpers.sh, mh_stack): REAL, a linear device over a 16 MiB
# loop device of random bytes; ORIGIN, snapshot-origin REAL; SNAP, snapshot
# REAL COW P 8 (4 KiB chunks) over an 8 MiB loop device. Chunks are changed
# through ORIGIN (the snapshot keeps their old bytes) and through SNAP;
# mh_exceptions counts the exceptions from the snapshot's status.
#
# - Live merge (the default), --finish, under dmst.writer writing 4 KiB
#   blocks to SNAP before, during and after the switch, within 1 MiB whose
#   chunks all hold exceptions already (so the writer adds none). The copy
#   is rate limited and paused once SNAP is a stream, so it is mid-way
#   whatever the host's speed. While merging: SNAP is a stream with
#   destination REAL and origin the read-only helper SNAP-origin, which
#   carries the snapshot's table; ORIGIN is read-only; the status counts
#   all 4096 regions, of which all but the 305 holding exceptions are
#   seeded. At the end: SNAP is linear on REAL, the helper is gone, REAL
#   holds exactly what SNAP showed plus every acknowledged write, SNAP and
#   ORIGIN read it; the merge read from the COW and REAL loop devices at
#   most 1.1 times the exceptions' bytes plus one region.
# - Rollback (--rollback): right after merge returns, with the copy rate
#   limited and then paused, ORIGIN reads SNAP's content; ORIGIN is a stream
#   with destination REAL and origin SNAP, which is read-only. Writes to
#   ORIGIN (whole regions and 512 bytes, in regions with and without
#   exceptions) land; finish leaves ORIGIN linear on REAL holding SNAP's
#   content with those writes, and SNAP removed.
# - --region-size 64k over 4 KiB chunks: the 4 regions holding the 4
#   exceptions are copied whole (REAL's loop device is read for their other
#   15 chunks each), "seeded 252 of 256", the data is SNAP's.
# - Refused with nothing changed (tables, read-only flags, no helper, the
#   metadata byte for byte): SNAP no snapshot (a linear device, ORIGIN),
#   a transient (N) store, an invalid (overflowed) snapshot, --rollback
#   while SNAP is open, metadata holding another stream.
# - A merge interrupted (stream and helper removed, the snapshot stack made
#   again with dmsetup) continues when the same command runs again: it says
#   "continuing" and not "seeded", the copied count is not set back to the
#   seeded one, and the merge finishes with SNAP's data in REAL.

# shellcheck disable=SC2153 # make_loop -v sets the loop device variables
DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"
. "$DIR/merge_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum cmp seq
sh_require_stream
require_module dm-snapshot
ktap_plan 54

MB=16
LEN=$((MB * 2048))
CH=8				# chunk, sectors
CB=$((CH * 512))
NR=$((LEN / CH))		# 4096 regions of one chunk
KB=1024
MIB=1048576

make_loop -v REAL $MB real || ktap_skip_all "cannot set up loop devices"
make_loop -v COW 8 cow || ktap_skip_all "cannot set up loop devices"
make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v COW2 4 cow2 || ktap_skip_all "cannot set up loop devices"
make_loop -v COW3 1 cow3 || ktap_skip_all "cannot set up loop devices"
make_loop -v META2 4 meta2 || ktap_skip_all "cannot set up loop devices"
make_loop -v X $MB x || ktap_skip_all "cannot set up loop devices"
make_loop -v Y $MB y || ktap_skip_all "cannot set up loop devices"

# put DEV OFFSET_BYTES LEN_BYTES [FILE]: LEN random bytes (or FILE's first
# LEN) written at OFFSET with O_DIRECT in one write.
put()
{
	local src=${4:-/dev/urandom}

	dd if="$src" of="$1" bs="$3" count=1 seek="$2" oflag=direct,seek_bytes \
		iflag=fullblock status=none
}

# fresh: REAL random, COW and META zero, for a new stack.
fresh()
{
	sh_fill_random "$REAL"
	sh_zero "$COW"
	sh_zero "$META"
}

# gone NAME: no dm device NAME.
gone()
{
	! dm_exists "$1"
}

# ro_snapshot NAME P: NAME is read-only, with stack P's snapshot table.
ro_snapshot()
{
	mh_ro "$1" &&
		test "$(dmsetup table "$1")" = \
		"0 $LEN snapshot $(sh_devt "$(dm_dev "$2-real")") $(sh_devt "$COW") P $CH"
}

# linear_on_real NAME P: NAME is linear on stack P's REAL, with no helper.
linear_on_real()
{
	test "$(sh_table "$1")" = "0 $LEN linear $(sh_devt "$(dm_dev "$2-real")") 0" &&
		gone "$1-origin"
}

# remake P: after a crash took P and P-snap (and the helper), make them
# again as they were: ORIGIN, then SNAP over the same COW.
remake()
{
	gone "$1-snap" && gone "$1-snap-origin" && gone "$1" &&
		dm_create "$1" "0 $LEN snapshot-origin $(dm_dev "$1-real")" &&
		dm_create "$1-snap" "0 $LEN snapshot $(dm_dev "$1-real") $COW P $CH" &&
		mh_origin_resplit "$1"
}

# no_stream_error: since the last mark, the kernel log has no stream line
# saying that something failed or could not be done.
no_stream_error()
{
	local l

	l=$(dmesg_since_mark | grep -E 'device-mapper: stream.*(cannot|error|fail)')
	[[ -z $l ]] || { printf '%s\n' "$l" | head -n 3; return 1; }
}

is_stream()
{
	[[ $(dmsetup table "$1" 2>/dev/null) == *" stream "* ]]
}

# stream_args NAME: "META DEST ORIGIN REGION" of a stream table, as devts.
stream_args()
{
	local w

	read -r -a w <<<"$(dmsetup table "$1")"
	echo "${w[3]:-} ${w[4]:-} ${w[5]:-} ${w[6]:-}"
}

_switched_or_gone()
{
	is_stream "$1" || sh_not_running "$2"
}

# merge_bg OUT ARGS...: dmstream merge ARGS in the background (a 300 s
# bound), stdout and stderr to OUT; MPID.
merge_bg()
{
	local out=$1

	shift
	timeout -k 5 300 "$DMSTREAM" merge "$@" >"$out" 2>&1 &
	MPID=$!
}

# merge_wait: MRC, the exit status of merge_bg's merge.
merge_wait()
{
	wait "$MPID"
	MRC=$?
}

# --- live merge under a writer ------------------------------------------------------

fresh
sh_setup mh_stack tml "$REAL" "$COW"
ORIGIN=$(dm_dev tml)
SNAP=$(dm_dev tml-snap)
put "$ORIGIN" $MIB $((64 * KB))			# chunks 256-271
put "$ORIGIN" $((3 * MIB + 4 * KB)) $((4 * KB))	# chunk 769
put "$SNAP" $((8 * MIB)) $MIB			# chunks 2048-2303: the writer's
put "$SNAP" $((MIB + 8 * KB)) $((4 * KB))	# chunk 258 again
put "$SNAP" $((5 * MIB)) $((128 * KB))		# chunks 1280-1311
E=305
e=$(mh_exceptions tml-snap)
ktap_check "the snapshot holds the $E exceptions of the changed chunks ($e)" test "$e" = $E
IMG=$(sh_tmpfile)
sh_read "$SNAP" >"$IMG"
SIMG=$(sh_tmpfile)
cp "$IMG" "$SIMG"
ktap_check "ORIGIN and SNAP differ before the merge" \
	test "$(sh_md5 "$ORIGIN")" != "$(md5sum <"$SIMG" | cut -d' ' -f1)"

kmsg "dm-stream selftest: $TEST_NAME: live merge"
sh_writer_start "$SNAP" "$IMG" $((8 * MIB)) $MIB
sh_writer_more 20 || ktap_diag "the writer has not started: $(cat "$TEST_TMP/sh.writer.out")"
c0=$(mh_rsect "$COW")
q0=$(mh_rsect "$REAL")
# 8 KiB/s: the 49 regions with exceptions outside the writer's MiB take
# 25 s; the copy is paused as soon as SNAP is a stream anyway.
merge_bg "$TEST_TMP/live.out" tml-snap --meta "$META" --rate 8k --finish --quiet
sh_wait_for 120 _switched_or_gone tml-snap "$MPID"
tt_run pause tml-snap
n_switch=$(sh_writes)
if is_stream tml-snap; then
	ktap_ok "merge --finish: SNAP is switched to a stream"
else
	ktap_fail "merge --finish: SNAP is switched to a stream" \
		"merge: $(cat "$TEST_TMP/live.out"); table: $(dmsetup table tml-snap)"
fi
HELPER_DEVT=$(sh_devt "$(dm_dev tml-snap-origin)" 2>/dev/null)
ktap_check "... with metadata META, destination REAL, origin the helper, 4 KiB regions ($(stream_args tml-snap))" \
	test "$(stream_args tml-snap)" = \
	"$(sh_devt "$META") $(sh_devt "$(dm_dev tml-real)") ${HELPER_DEVT:-none} $CH"
ktap_check "... the helper tml-snap-origin is read-only and carries the snapshot table" \
	ro_snapshot tml-snap-origin tml
ktap_check "... ORIGIN is read-only while merging" mh_ro tml
c=$(sh_copied tml-snap)
tot=$(sh_total tml-snap)
ktap_check "... mid-way: $c of $tot copied, at least the $((NR - E)) seeded" \
	test -n "$c" -a "$tot" = $NR -a "${c:-0}" -ge $((NR - E)) -a "${c:-0}" -lt $NR
sh_writer_more 50
ktap_check "... the writer writes across the switch ($n_switch writes at the switch, $(sh_writes) now)" \
	test "$(sh_writes)" -gt "$n_switch"
tt_run continue tml-snap
tt_run rate tml-snap 0
sh_wait_for 240 sh_not_running "$MPID"
merge_wait
c1=$(mh_rsect "$COW")
q1=$(mh_rsect "$REAL")
out=$(cat "$TEST_TMP/live.out")
sh_writer_more 30
sh_writer_stop
ktap_check "merge --finish: exit $MRC, seeded $(mh_seeded "$out") of $(mh_seed_total "$out"): every region but the $E with exceptions" \
	test "$MRC" -eq 0 -a "$(mh_seeded "$out")/$(mh_seed_total "$out")" = "$((NR - E))/$NR"
[[ $MRC -eq 0 ]] || ktap_diag "merge: $out"
ktap_check "... SNAP is linear on REAL" \
	test "$(sh_table tml-snap)" = "0 $LEN linear $(sh_devt "$(dm_dev tml-real)") 0"
ktap_check "... the helper is removed" gone tml-snap-origin
ktap_check "... the writer wrote all along ($(sh_writes) writes; rc $SH_WRITER_RC: $SH_WRITER_OUT)" \
	test "$SH_WRITER_RC" -eq 0 -a "$(sh_writes)" -gt "$n_switch"
ktap_check "... REAL holds SNAP's content and every acknowledged write" sh_cmp "$REAL" "$IMG"
ktap_check "... SNAP reads it" sh_cmp "$SNAP" "$IMG"
ro=no
mh_ro tml && ro=yes
ktap_check "... ORIGIN reads it (read-only: $ro)" sh_cmp "$ORIGIN" "$IMG"
rd=$((c1 - c0 + q1 - q0))
lim=$((E * CH * 11 / 10 + CH))
ktap_check "... read $rd sectors from COW ($((c1 - c0))) and REAL ($((q1 - q0))): at most $lim (1.1 x $((E * CH)) + a region)" \
	test $rd -le $lim
ktap_check "... the kernel log has no error of the stream (an origin sample or a copy that failed)" \
	no_stream_error
mh_teardown tml-snap tml tml-real

# --- rollback -------------------------------------------------------------------------

fresh
sh_setup mh_stack tmb "$REAL" "$COW"
ORIGIN=$(dm_dev tmb)
SNAP=$(dm_dev tmb-snap)
put "$ORIGIN" $((2 * MIB)) $((64 * KB))		# chunks 512-527
put "$SNAP" $((6 * MIB)) $((256 * KB))		# chunks 1536-1599
put "$SNAP" $((2 * MIB + 4 * KB)) $((4 * KB))	# chunk 513 again
E=80
e=$(mh_exceptions tmb-snap)
ktap_check "rollback: the snapshot holds $E exceptions ($e)" test "$e" = $E
SIMG=$(sh_tmpfile)
sh_read "$SNAP" >"$SIMG"
SMD5=$(md5sum <"$SIMG" | cut -d' ' -f1)
kmsg "dm-stream selftest: $TEST_NAME: rollback"
TT_TIMEOUT=120 tt_expect "merge --rollback: exit 0, seeded $((NR - E)) of $NR" 0 \
	"seeded $((NR - E)) of $NR regions as copied" \
	merge tmb-snap --meta "$META" --rollback --rate 16k
m=$(sh_md5 "$ORIGIN")
tt_run pause tmb
c=$(sh_copied tmb)
ktap_check "... at once ORIGIN reads SNAP's content, the copy not done ($c of $(sh_total tmb) copied)" \
	test "$m" = "$SMD5" -a -n "$c" -a "${c:-0}" -lt $NR
ktap_check "... ORIGIN is a stream: META, destination REAL, origin SNAP, 4 KiB regions ($(stream_args tmb))" \
	test "$(stream_args tmb)" = \
	"$(sh_devt "$META") $(sh_devt "$(dm_dev tmb-real)") $(sh_devt "$SNAP") $CH"
ktap_check "... SNAP is read-only and still the snapshot" ro_snapshot tmb-snap tmb
EXP=$(sh_tmpfile)
cp "$SIMG" "$EXP"
W=$(sh_tmpfile)
head -c $((64 * KB)) /dev/urandom >"$W"
# Whole chunks and 512 bytes, with and without exceptions; region 1599 is
# the last to be copied.
wok=0
for w in "$((1599 * CB)) 4096" "$((1598 * CB + 512)) 512" "$((10 * MIB)) 65536" \
	"$((12 * MIB + 512)) 512"; do
	read -r off n <<<"$w"
	put "$ORIGIN" "$off" "$n" "$W" && wok=$((wok + 1))
	dd if="$W" of="$EXP" bs="$n" count=1 seek="$off" oflag=seek_bytes conv=notrunc \
		status=none
done
ktap_check "... 4 writes to ORIGIN during the merge are acknowledged ($wok)" test $wok -eq 4
tt_run continue tmb
tt_run rate tmb 0
TT_TIMEOUT=200 tt_expect "... wait: exit 0" 0 "" wait tmb --timeout 180
tt_expect "... finish ORIGIN: exit 0" 0 "" finish tmb
ktap_check "... ORIGIN is linear on REAL" \
	test "$(sh_table tmb)" = "0 $LEN linear $(sh_devt "$(dm_dev tmb-real)") 0"
ktap_check "... SNAP is removed" gone tmb-snap
ktap_check "... REAL holds SNAP's content and the writes" sh_cmp "$REAL" "$EXP"
ktap_check "... ORIGIN reads it" sh_cmp "$ORIGIN" "$EXP"
mh_teardown tmb-snap tmb tmb-real

# --- regions of 64 KiB over 4 KiB chunks ---------------------------------------------

fresh
sh_setup mh_stack tmc "$REAL" "$COW"
ORIGIN=$(dm_dev tmc)
SNAP=$(dm_dev tmc-snap)
RB=$((64 * KB))
put "$ORIGIN" $((3 * RB + 8 * KB)) $((4 * KB))	# region 3
put "$SNAP" $((10 * RB + 60 * KB)) $((4 * KB))	# region 10
put "$SNAP" $((21 * RB - 4 * KB)) $((8 * KB))	# regions 20 and 21
e=$(mh_exceptions tmc-snap)
ktap_check "64k regions: the snapshot holds 4 exceptions in regions 3, 10, 20, 21 ($e)" \
	test "$e" = 4
SIMG=$(sh_tmpfile)
sh_read "$SNAP" >"$SIMG"
c0=$(mh_rsect "$COW")
q0=$(mh_rsect "$REAL")
kmsg "dm-stream selftest: $TEST_NAME: 64k regions"
TT_TIMEOUT=200 tt_expect "merge --region-size 64k --finish: exit 0, seeded 252 of 256" 0 \
	"seeded 252 of 256 regions as copied" \
	merge tmc-snap --meta "$META" --region-size 64k --finish --quiet --timeout 180
c1=$(mh_rsect "$COW")
q1=$(mh_rsect "$REAL")
ktap_check "... SNAP is linear on REAL, no helper" linear_on_real tmc-snap tmc
ktap_check "... REAL holds SNAP's content" sh_cmp "$REAL" "$SIMG"
ktap_check "... the regions copied whole: REAL's loop read $((q1 - q0)) sectors (>= 4 x 15 chunks, $((60 * CH))), COW's $((c1 - c0)) (>= 4 chunks)" \
	test $((q1 - q0)) -ge $((60 * CH)) -a $((c1 - c0)) -ge $((4 * CH))
ktap_check "... and not much more: $((q1 - q0 + c1 - c0)) sectors <= 1.1 x 4 regions + a region + the 64 of the samples" \
	test $((q1 - q0 + c1 - c0)) -le $((4 * 128 * 11 / 10 + 128 + 64))
mh_teardown tmc-snap tmc tmc-real

# --- refusals ------------------------------------------------------------------------

# merge_refused DESC REGEX META ARGS...: dmstream ARGS exits non-zero,
# saying REGEX (extended, case-insensitive); the tm* devices (tables,
# flags, names) and META's bytes are as before.
merge_refused()
{
	local desc=$1 re=$2 meta=$3 s0 s1 m0 m1

	shift 3
	s0=$(mh_state tm)
	m0=$(sh_md5 "$meta")
	TT_TIMEOUT=60 tt_run "$@"
	s1=$(mh_state tm)
	m1=$(sh_md5 "$meta")
	if [[ $TT_RC -eq 0 ]]; then
		ktap_fail "$desc" "dmstream $* exited 0"
	elif ! grep -Eiq -- "$re" <<<"$TT_OUT$TT_ERR"; then
		ktap_fail "$desc" "exit $TT_RC, but the output lacks /$re/"
	elif [[ $s0 != "$s1" ]]; then
		ktap_fail "$desc" "exit $TT_RC, but the devices changed"
		ktap_diag "before: $s0"
		ktap_diag "after: $s1"
	elif [[ $m0 != "$m1" ]]; then
		ktap_fail "$desc" "exit $TT_RC, but the metadata device changed"
	else
		ktap_ok "$desc (exit $TT_RC: $(head -n 1 <<<"$TT_ERR"))"
		return 0
	fi
	ktap_diag "stdout: $TT_OUT"
	ktap_diag "stderr: $TT_ERR"
	return 1
}

fresh
sh_zero "$META2"
sh_setup mh_stack tmr "$REAL" "$COW"
put "$(dm_dev tmr)" $MIB $((64 * KB))
put "$(dm_dev tmr-snap)" $((4 * MIB)) $((64 * KB))
kmsg "dm-stream selftest: $TEST_NAME: refusals"
exec {hold}<"$(dm_dev tmr-snap)"
ktap_check "SNAP is open ($(mh_open_count tmr-snap))" test "$(mh_open_count tmr-snap)" -ge 1
merge_refused "merge --rollback while SNAP is open: refused, nothing changed" \
	"open|in use|busy|holder" "$META" merge tmr-snap --meta "$META" --rollback
exec {hold}<&-
cleanup_add "_dm_remove_hard tmo"
tt_run create tmo --origin "$X" --dest "$Y" --meta "$META2" --paused
sh_setup dm_remove tmo
merge_refused "merge onto metadata holding another stream: refused, nothing changed" \
	"metadata|stream|force" "$META2" merge tmr-snap --meta "$META2"
sh_setup dm_create tmr-lin "0 $LEN linear $X 0"
cleanup_add "mh_teardown tmr-lin"
merge_refused "merge of a linear device: refused (no snapshot), nothing changed" \
	"snapshot" "$META" merge tmr-lin --meta "$META"
merge_refused "merge of ORIGIN (snapshot-origin): refused, nothing changed" \
	"snapshot" "$META" merge tmr --meta "$META"
sh_setup mh_snapshot tmr-tsnap tmr "$COW2" N $CH
sh_setup mh_snapshot tmr-isnap tmr "$COW3" P $CH
put "$(dm_dev tmr)" 0 $((2 * MIB))
ist=$(dm_status tmr-isnap)
ktap_check "a 1 MiB COW overflowed by 2 MiB of writes to ORIGIN: Invalid ($ist)" \
	test "$ist" = Invalid
merge_refused "merge of a transient (N) snapshot: refused, nothing changed" \
	"transient|persistent" "$META" merge tmr-tsnap --meta "$META"
merge_refused "merge of an invalid snapshot: refused, nothing changed" \
	"invalid|overflow" "$META" merge tmr-isnap --meta "$META"
merge_refused "merge --rollback of an invalid snapshot: refused, nothing changed" \
	"invalid|overflow" "$META" merge tmr-isnap --meta "$META" --rollback
mh_teardown tmr-isnap tmr-tsnap tmr-snap tmr tmr-real tmr-lin

# --- an interrupted merge continues ----------------------------------------------------

fresh
sh_setup mh_stack tmd "$REAL" "$COW"
SNAP=$(dm_dev tmd-snap)
put "$SNAP" $((4 * MIB)) $((512 * KB))		# chunks 1024-1151
put "$(dm_dev tmd)" $((12 * MIB)) $((64 * KB))	# chunks 3072-3087
E=144
SIMG=$(sh_tmpfile)
sh_read "$SNAP" >"$SIMG"
kmsg "dm-stream selftest: $TEST_NAME: continue"
TT_TIMEOUT=120 tt_expect "merge (interrupted later): exit 0, seeded $((NR - E)) of $NR" 0 \
	"seeded $((NR - E)) of $NR regions as copied" merge tmd-snap --meta "$META" --rate 16k
sh_wait_copied_ge tmd-snap $((NR - E + 8)) 120
tt_run pause tmd-snap
C=$(sh_copied tmd-snap)
ktap_check "... paused with $C copied: more than the $((NR - E)) seeded, fewer than $NR" \
	test -n "$C" -a "${C:-0}" -gt $((NR - E)) -a "${C:-0}" -lt $NR
# The crash: the stream, its helper and ORIGIN go; the stack is made again.
dmsetup remove tmd-snap >/dev/null 2>&1
dmsetup remove tmd-snap-origin >/dev/null 2>&1
dmsetup remove tmd >/dev/null 2>&1
ktap_check "... removed; the snapshot stack made again with dmsetup" remake tmd
kmsg "dm-stream selftest: $TEST_NAME: the same merge again"
TT_TIMEOUT=120 tt_run merge tmd-snap --meta "$META" --rate 16k
c=$(sh_copied tmd-snap)
if [[ $TT_RC -eq 0 ]] && grep -q continuing <<<"$TT_OUT$TT_ERR" &&
   ! grep -q seeded <<<"$TT_OUT$TT_ERR"; then
	ktap_ok "the same merge command again: exit 0, continuing, not seeded again"
else
	ktap_fail "the same merge command again: exit 0, continuing, not seeded again" \
		"exit $TT_RC: $TT_OUT $TT_ERR"
fi
ktap_check "... the copied count goes on from $C ($c), not from the seeded $((NR - E))" \
	test -n "$c" -a "${c:-0}" -ge "$C"
ktap_check "... the kernel log has no error of the stream (the origin's samples are read, checked)" \
	no_stream_error
tt_run rate tmd-snap 0
TT_TIMEOUT=200 tt_expect "... wait: exit 0" 0 "" wait tmd-snap --timeout 180
tt_expect "... finish: exit 0" 0 "" finish tmd-snap
ktap_check "... SNAP linear on REAL, no helper" linear_on_real tmd-snap tmd
ktap_check "... REAL holds SNAP's content" sh_cmp "$REAL" "$SIMG"
mh_teardown tmd-snap tmd tmd-real

ktap_finish
