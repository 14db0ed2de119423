#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_crash_01: crash consistency with dm-log-writes (the fstests generic/482
# method).
#
# The stream target's metadata and destination are two dm-linear slices of
# ONE log-writes device (over a loop device, logging to a second loop), so a
# single log orders every write of both. The origin is a separate loop with
# random data (16 MiB, 256 regions of 64 KiB). The target is created
# unpaused with a rate limit, and while it streams, known patterns are
# written through it (whole and partial regions far ahead of the copy,
# straddling and multi-region writes, rewrites of the same sectors, writes
# at the copy frontier and behind it), each acknowledged by fsync or
# O_DSYNC; after each acknowledgement a log mark "wNNN" is dropped. After
# teardown the log is replayed (selftests/logreplay.py, in memory) and these
# crash states are built:
#
# - prefix states: the log up to every entry (a disk may persist completed
#   writes in any subset; the log's prefixes are the subsets in completion
#   order, and the states at FLUSH/FUA entries are generic/482's);
# - reordered states: for every superblock write that is not itself a
#   FLUSH/FUA entry, the log up to the last FLUSH/FUA before it plus that
#   superblock write alone (it overtook the rest of its epoch);
# - torn states: for every metadata block write, the log before it plus only
#   its first sector, or all of it but its first sector.
#
# Static checks, at every state, against stream-format.h and the model: the
# metadata is blank (all-zero superblock: the target formats it, so this is
# legal before the first superblock write, with a blank or partial bitmap
# area) or valid (checksums, geometry, the slot rule, bitmap popcount equal
# to the superblock's count), never torn; every region the committed bitmap
# marks copied holds, on the destination slice, the origin's data or for
# written sectors the data acknowledged by the last mark before the state
# (the one write in flight may show either version, sector by sector); every
# region an acknowledged write touched is committed; along the prefix states
# the committed transaction id and bitmap only grow.
#
# Target checks, at sampled states (at most $CRASH_POINTS FLUSH/FUA points:
# the format phase, the end, mid-commit, commit and data points evenly
# spaced; $CRASH_REORDER reordered and $CRASH_TORN torn states): the state is
# written onto a fresh loop device of the logged device's geometry, the same
# two slices are mapped over it and the stream target is built over them
# (same origin) in `paused` mode. It must construct (and must refuse a state
# the decoder calls torn: accepting it is a failure of its own), its status
# copied count must equal the committed bitmap's, and every region read
# through it must hold the data above.
#
# What one shared log cannot show: a missing destination flush before the
# metadata flush (the metadata device's flush flushes the destination too).
# That needs blktrace on separate devices; it is reported as skipped here.
#
# And the metadata of every sampled state is decoded by the tests' decoder
# (dmst/ondisk.py) and by `dmstream dump --json`, which must agree field by
# field (dmst/crosscheck.py).
#
# The Python is in dmst/crash/: the workload, the log checks and the replay
# checker (check.py).
#
# Knobs (environment): CRASH_RATE (KiB/s, default 1024), CRASH_POINTS
# (default 24), CRASH_REORDER (default 6), CRASH_TORN (default 4). Each
# target check costs about 2 s under TCG; the static checks cover every
# state either way. On failure the log's entry list is saved in $TEST_OUT.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"

require_cmd dmsetup python3 losetup blockdev dd cmp
require_module dm-stream dm-log-writes

RS=128				# region size, sectors (64 KiB)
MB=16				# origin and destination, MiB
LEN=$((MB * 2048))		# target length, sectors
NR=$((LEN / RS))		# 256 regions
META_MB=1
META_SECT=$((META_MB * 2048))	# the metadata slice
DATA_MB=$((META_MB + MB))	# the logged device: metadata + destination
DATA_SECT=$((DATA_MB * 2048))
LOG_MB=48
RATE=${CRASH_RATE:-1024}
N=crash01
LW=$N-lw
CHK=$N-chk

ktap_plan 17

# --- setup -------------------------------------------------------------------

make_loop -v ORIG $MB orig
make_loop -v DATA $DATA_MB data
make_loop -v LOGD $LOG_MB log
make_loop -v CHKD $DATA_MB chk
make_loop -v REPLAY $DATA_MB replay
dd if=/dev/urandom of="$ORIG" bs=1M count=$MB iflag=fullblock oflag=direct \
	status=none
ORIG_MD5=$(dev_md5 "$ORIG")
DEV=$(dm_dev $N)

kmsg "dm-stream selftest: $TEST_NAME: setup"
if dm_create $LW "0 $DATA_SECT log-writes $DATA $LOGD" &&
   dm_create $N-meta "0 $META_SECT linear $(dm_dev $LW) 0" &&
   dm_create $N-dest "0 $LEN linear $(dm_dev $LW) $META_SECT" &&
   dm_message $LW mark start &&
   dm_create $N "0 $LEN stream $(dm_dev $N-meta) $(dm_dev $N-dest) $ORIG $RS 2 rate $RATE"; then
	ktap_ok "setup: streaming target (rate $RATE) over two slices of one log-writes device"
else
	ktap_fail "setup: streaming target (rate $RATE) over two slices of one log-writes device" \
		"$DM_ERR"
	ktap_diag "$(dmesg_since_mark | tail -n 5)"
	ktap_skip_all "setup failed"
fi

# --- workload: acknowledged writes while streaming ---------------------------

kmsg "dm-stream selftest: $TEST_NAME: workload"
T0=$SECONDS
PYTHONPATH=$DIR python3 -B -m dmst.crash workload "$DEV" $N $LW "$TEST_TMP/writes.json" $RS $NR
WL_RC=$?
read -r NW NACK OVERLAP FAILS < <(PYTHONPATH=$DIR python3 -B -m dmst.crash summary "$TEST_TMP/writes.json" $NR)
ktap_diag "workload: $NW writes, $NACK acknowledged, $OVERLAP issued while 0 < copied < $NR, $((SECONDS - T0)) s"
if [[ $WL_RC -eq 0 && $FAILS -eq 0 && $NW -gt 0 && $NACK -eq $NW && $OVERLAP -ge 3 ]]; then
	ktap_ok "workload: $NACK writes acknowledged by fsync/O_DSYNC while streaming"
else
	ktap_fail "workload: $NACK writes acknowledged by fsync/O_DSYNC while streaming" \
		"rc $WL_RC, $FAILS failures, $NACK/$NW acknowledged, $OVERLAP overlapping streaming (need >= 3)"
fi

# --- the live run ends: streaming completes, content is origin + writes -----

EXP=$TEST_TMP/expected.img
PYTHONPATH=$DIR python3 -B -m dmst.crash expected "$ORIG" "$TEST_TMP/writes.json" "$EXP" $LEN
COMPLETE=
for ((i = 0; i < 180; i++)); do
	ST=$(dm_status $N)
	[[ $(awk '{print $6}' <<<"$ST") == complete ]] && { COMPLETE=1; break; }
	sleep 1
done
LIVE_MD5=$(dev_md5 "$DEV")
EXP_MD5=$(md5sum <"$EXP" | cut -d' ' -f1)
DEST_MD5=$(dev_md5 "$(dm_dev $N-dest)")
if [[ -n $COMPLETE && $LIVE_MD5 == "$EXP_MD5" && $DEST_MD5 == "$EXP_MD5" &&
      $(dev_md5 "$ORIG") == "$ORIG_MD5" ]]; then
	ktap_ok "live run: streaming completes; target and destination hold origin + writes"
else
	ktap_fail "live run: streaming completes; target and destination hold origin + writes" \
		"complete=${COMPLETE:-no} status '$ST'; target md5 $LIVE_MD5, destination md5 $DEST_MD5, expected $EXP_MD5; origin md5 $(dev_md5 "$ORIG") (was $ORIG_MD5)"
fi

# --- teardown: every write reaches the log ------------------------------------

dm_message $LW mark end-of-workload
dm_remove $N || ktap_diag "remove $N: $DM_ERR"
dm_message $LW mark stream-removed
dm_remove $N-meta
dm_remove $N-dest
LW_STATUS=$(dm_status $LW)
dm_remove $LW || ktap_diag "remove $LW: $DM_ERR"
ktap_diag "log-writes status before removal: $LW_STATUS"
# Status: <logged entries> <highest allocated sector> [logging_disabled].
read -r _ LW_HI _ <<<"$LW_STATUS"
LOG=$TEST_TMP/log.img
dd if="$LOGD" of="$LOG" bs=1M iflag=direct status=none
ktap_diag "log: $(python3 -B "$DIR/logreplay.py" --log "$LOG" --num-entries 2>&1) entries, $(((${LW_HI:-0} + 1) / 2)) KiB used of $LOG_MB MiB"

LOGCHK=$(PYTHONPATH=$DIR python3 -B -m dmst.crash logcheck "$LOG" "$TEST_TMP/writes.json")
if [[ -z $LOGCHK && $LW_STATUS != *logging_disabled* ]]; then
	ktap_ok "log: complete (logging never disabled, every mark present)"
else
	ktap_fail "log: complete (logging never disabled, every mark present)" \
		"${LOGCHK:-logging disabled: $LW_STATUS}"
fi

# --- the replayer against ground truth ------------------------------------------

kmsg "dm-stream selftest: $TEST_NAME: replay"
T0=$SECONDS
if python3 -B "$DIR/logreplay.py" --log "$LOG" --replay "$REPLAY" &&
   [[ $(dev_md5 "$REPLAY") == "$(dev_md5 "$DATA")" ]]; then
	ktap_ok "logreplay: the whole log replayed onto a fresh device equals the logged device"
else
	ktap_fail "logreplay: the whole log replayed onto a fresh device equals the logged device" \
		"replay md5 $(dev_md5 "$REPLAY"), logged device md5 $(dev_md5 "$DATA") (a replayer bug, or overlapping writes in flight at once: the log orders completions)"
fi
ktap_diag "full replay: $((SECONDS - T0)) s"

# --- replay points -------------------------------------------------------------

if ! dm_create $CHK-meta "0 $META_SECT linear $CHKD 0" ||
   ! dm_create $CHK-dest "0 $LEN linear $CHKD $META_SECT"; then
	ktap_diag "cannot map the check slices: $DM_ERR"
fi
cleanup_add "dm_exists $CHK && _dm_remove_hard $CHK"

RES=$TEST_TMP/results
T0=$SECONDS
mkdir -p "$TEST_TMP/images"
PYTHONPATH=$DIR python3 -B -m dmst.crash check log="$LOG" writes="$TEST_TMP/writes.json" \
	orig="$ORIG" data="$DATA" chk="$CHKD" \
	chk_meta="$(dm_dev $CHK-meta)" chk_dest="$(dm_dev $CHK-dest)" \
	chk_name=$CHK rs=$RS len=$LEN nr=$NR meta_sect=$META_SECT \
	data_sect=$DATA_SECT max_points="${CRASH_POINTS:-24}" \
	max_reorder="${CRASH_REORDER:-6}" max_torn="${CRASH_TORN:-4}" \
	results="$RES" images="$TEST_TMP/images"
CHECK_RC=$?
ktap_diag "replay checks: $((SECONDS - T0)) s (checker exit $CHECK_RC)"

# report KEY DESC: one KTAP line from the checker's verdict on KEY.
report()
{
	local verdict
	verdict=$(awk -v k="$1" '$1 == "R" && $2 == k {print $3}' "$RES" 2>/dev/null)
	if [[ $verdict == ok ]]; then
		ktap_ok "$2"
	elif [[ $verdict == fail ]]; then
		ktap_fail "$2"
	else
		ktap_fail "$2" "the checker did not report (exit $CHECK_RC)"
	fi
	awk -v k="$1" '$1 == "D" && $2 == k {$1 = ""; $2 = ""; sub(/^  /, ""); print}' \
		"$RES" 2>/dev/null | while IFS= read -r l; do echo "# $l"; done
}

read -r _ _ NPTS _ NPRE _ NREO _ NTORN _ NTGT < <(grep '^N ' "$RES" 2>/dev/null)
report final "replay: the in-memory replay of the whole log equals the logged device"
report meta "${NPRE:-?} prefix states (every log entry; ${NPTS:-?} FLUSH/FUA points): metadata blank or valid, never torn"
report dest "${NPRE:-?} prefix states: committed regions hold origin or acknowledged data on the destination"
report acked "${NPRE:-?} prefix states: every region an acknowledged write touched is committed"
report mono "${NPRE:-?} prefix states: the committed transaction and bitmap only grow"
report reorder "${NREO:-?} superblock writes overtaking their epoch: metadata valid, committed and acknowledged data intact"
report torn "${NTORN:-?} torn metadata block writes: metadata valid, committed and acknowledged data intact"
report ctr "${NTGT:-?} sampled states: the target constructs (paused) over the replayed slices"
report count "${NTGT:-?} sampled states: status copied count equals the committed bitmap"
report read "${NTGT:-?} sampled states: reads through the target give origin or acknowledged data"

# The metadata of the sampled states, decoded by dmst/ondisk.py and by the
# tool: they must agree field by field, or one of them left the format.
DMSTREAM=${DMSTREAM:-$REPO_ROOT/tools/dmstream}
XC_DESC="${NTGT:-?} sampled states: dmst/ondisk.py decodes the metadata as dmstream dump --json does"
if [[ ! -x $DMSTREAM ]]; then
	ktap_skip "$XC_DESC" "tools/dmstream is not built"
elif XC=$(PYTHONPATH=$DIR python3 -B -m dmst.crosscheck "$DMSTREAM" "$TEST_TMP"/images/meta-*.img); then
	ktap_ok "$XC_DESC"
	XC_LAST=${XC##*$'\n'}
	ktap_diag "${XC_LAST#\# }"
else
	ktap_fail "$XC_DESC"
	grep -v ': agree (' <<<"$XC"
fi
if [[ $KTAP_FAIL -gt 0 ]]; then
	python3 -B "$DIR/logreplay.py" --log "$LOG" --list \
		>"$TEST_OUT/$TEST_NAME.entries" 2>&1 &&
		ktap_diag "log entries saved in $TEST_OUT/$TEST_NAME.entries"
fi
ktap_skip "blktrace: destination flush completes before the superblock write" \
	"one shared log cannot show it; needs blktrace on separate devices (optional, not run)"

ktap_finish
