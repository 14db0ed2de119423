#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In-guest merge part of the dm-stream benchmark, run by bench/guest-bench.sh
# (when its parts include `merge`) on its devices: merging a dm-snapshot back
# into its origin, the kernel's way and dmstream's, on the same data.
#
# The volume: REAL, a loop device of $BENCH_SECTORS sectors, restored before
# every run from the pristine file $BENCH_MERGE_PRISTINE; ORIGIN
# (`snapshot-origin REAL`) and SNAP (`snapshot REAL COW P 8`: persistent,
# 4 KiB chunks, LVM's default chunk size) over it; COW a loop device over a
# tmpfs file. For every percentage P in $BENCH_MERGE_PCTS, P% of the chunks
# (chosen at random, the same ones for both methods in one repetition) are
# overwritten with random data through SNAP, and the snapshot's checksum is
# taken. Then, timed from the first command:
#   snapshot-merge  what `lvconvert --merge` does: SNAP removed, ORIGIN
#                   reloaded as `snapshot-merge REAL COW P 8` (switch); poll
#                   its status until <allocated> == <metadata> sectors
#                   (merged); ORIGIN reloaded as `linear REAL` (complete).
#                   A reload is `dmsetup load` + `dmsetup resume` (which
#                   suspends first): two processes, as few as dmsetup allows
#   dmstream        `dmstream merge SNAP --meta META --rollback` (switch: ORIGIN
#                   shows the snapshot at once); poll ORIGIN's stream status
#                   until `complete` (merged); `dmstream finish ORIGIN`
#                   (complete: ORIGIN is `linear` on REAL, SNAP removed)
# Both are polled the same way: the DM_TABLE_STATUS ioctl (noflush) every
# $BENCH_IOCTL_POLL s from one process (bench/dmwait.py's table_status).
# Recorded: the switch, merged and complete times; bytes read and written on
# REAL, COW and META (deltas of /sys/block/loopN/stat over the timed part);
# REAL's bytes written over the changed chunks' bytes (goal <= 1.1). A run is
# valid when the volume's checksum after completion equals the snapshot's,
# and the snapshot held exactly the chunks written.
#
# Environment: BENCH_MERGE_REAL, BENCH_META (loop devices), BENCH_PREPARE
# (work directory, for cow.img), BENCH_MERGE_PRISTINE (file of REAL's
# content), BENCH_SECTORS, BENCH_REPS (3), BENCH_MERGE_PCTS ("5 30"),
# BENCH_MERGE_CHUNK (8 sectors), BENCH_RUN_TIMEOUT (120 s per wait),
# BENCH_IOCTL_POLL (0.01), DMSTREAM (tools/dmstream).
# Output: DIR/merge.csv, each line also printed prefixed with "BENCH-MERGE ".
# Exit status: 0 when every run was valid, 1 otherwise, 2 on setup failure.

set -u

OUT=bench/out
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "guest-merge: unknown argument $1" >&2; exit 2 ;;
	esac
done

REAL=${BENCH_MERGE_REAL:?} META=${BENCH_META:?} WORK=${BENCH_PREPARE:?}
PRISTINE=${BENCH_MERGE_PRISTINE:?} SECTORS=${BENCH_SECTORS:?}
REPS=${BENCH_REPS:-3}
PCTS=${BENCH_MERGE_PCTS:-5 30}
CHUNK=${BENCH_MERGE_CHUNK:-8}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
IOCTL_POLL=${BENCH_IOCTL_POLL:-0.01}
DMSTREAM=${DMSTREAM:-tools/dmstream}
ORIGIN=bench-morigin SNAP=bench-msnap
CSV=$OUT/merge.csv
COW=""

log() { echo "guest-merge: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

have_target() { dmsetup targets 2>/dev/null | awk '{ print $1 }' | grep -qx "$1"; }

remove_all() {
	local d
	for d in "$ORIGIN" "$SNAP"; do
		dmsetup info "$d" >/dev/null 2>&1 || continue
		dmsetup remove --retry "$d" >/dev/null 2>&1 ||
			dmsetup remove --force "$d" >/dev/null 2>&1
	done
}
cleanup() {
	remove_all
	[ -n "$COW" ] && losetup -d "$COW" 2>/dev/null
	rm -f "$WORK/cow.img"
}
trap cleanup EXIT

echo "method,pct,rep,changed_chunks,switch_s,merged_s,complete_s,real_read_b,real_write_b,cow_read_b,cow_write_b,meta_write_b,write_ratio,valid,note" \
	> "$CSV" || exit 2
record() {	# method pct rep chunks switch merged complete rr rw cr cw mw ratio valid note
	local line
	line=$(IFS=,; echo "${*:1:14}")
	line="$line,${15//,/;}"
	echo "$line" >> "$CSV"
	echo "BENCH-MERGE $line"
}

modprobe dm-snapshot 2>/dev/null
have_target snapshot-merge || { log "no snapshot-merge target"; exit 2; }
if ! [ -b "$REAL" ] || ! [ -b "$META" ] || ! [ -f "$PRISTINE" ]; then
	log "bad devices"; exit 2
fi
META_SECTORS=$(blockdev --getsz "$META") || exit 2
HAVE_TOOL=1
if ! [ -x "$DMSTREAM" ] || ! "$DMSTREAM" help merge >/dev/null 2>&1; then
	HAVE_TOOL=0
	log "$DMSTREAM has no merge command: dmstream runs skipped"
fi

# The COW device holds the largest percentage's chunks plus one 4 KiB area
# of exceptions per 256 chunks, and some slack.
maxpct=0
for p in $PCTS; do [ "$p" -gt "$maxpct" ] && maxpct=$p; done
nchunks=$((SECTORS / CHUNK))
cow_mib=$(( nchunks * maxpct * CHUNK * 105 / (100 * 2048 * 100) + 8 ))
truncate -s "${cow_mib}M" "$WORK/cow.img" || exit 2
COW=$(losetup -f --show "$WORK/cow.img") || { log "losetup failed"; exit 2; }
{
	echo "merge: a $((SECTORS / 2048)) MiB volume, snapshot persistent (P) with $((CHUNK / 2)) KiB chunks (LVM's default); ${PCTS// /, } % of the chunks changed at random"
	echo "merge_chunk_bytes: $((CHUNK * 512))"
	echo "merge_devices: REAL $REAL, COW $COW (${cow_mib} MiB), META $META (tmpfs-backed loop)"
	[ $HAVE_TOOL = 1 ] && echo "merge: dmstream: $("$DMSTREAM" --version 2>&1 | head -n 1)"
} >> "$OUT/env.txt"

# What one dmsetup process costs here (the snapshot-merge steps use three).
t0=$(now)
for _ in 1 2 3 4 5; do dmsetup version >/dev/null 2>&1; done
echo "merge_dmsetup_call_s: $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", (b - a) / 5 }')" \
	>> "$OUT/env.txt"

# Bytes read and written on a block device so far: "<read> <written>".
io_bytes() {
	local s
	read -r -a s < "/sys/block/${1#/dev/}/stat"
	echo "$((s[2] * 512)) $((s[6] * 512))"
}

# change_chunks PCT SEED: overwrite PCT% of SNAP's chunks (chosen by SEED)
# with random data; prints how many.
change_chunks() {
	python3 - "/dev/mapper/$SNAP" "$nchunks" "$1" "$2" "$((CHUNK * 512))" <<'EOF'
import os, random, sys
dev, n, pct, seed, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rng = random.Random(seed)
idx = sorted(rng.sample(range(n), round(n * pct / 100)))
fd = os.open(dev, os.O_WRONLY)
for i in idx:
    os.pwrite(fd, rng.randbytes(size), i * size)
os.fsync(fd)
os.close(fd)
print(len(idx))
EOF
}

# wait_done KIND NAME: poll NAME's status until the merge is done; prints
# "<epoch seconds> <complete|failed|timeout> <status>".
wait_done() {
	python3 - "$1" "$2" "$RUN_TIMEOUT" "$IOCTL_POLL" <<'EOF'
import os, sys, time
sys.path.insert(0, "bench")
import dmwait
kind, name, timeout, interval = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ctl = os.open("/dev/mapper/control", os.O_RDWR)
t0 = time.monotonic()
while True:
    try:
        st = dmwait.table_status(ctl, name)
    except OSError as e:
        st, res = "ioctl: %s" % e, "failed"
    else:
        if kind == "stream":
            res = dmwait.judge("stream", st)
        else:   # snapshot-merge: "<allocated>/<total> <metadata>" in sectors
            w = st.split()
            try:
                res = "complete" if int(w[0].split("/")[0]) == int(w[1]) else None
            except (IndexError, ValueError):
                res = "failed"
    if res:
        break
    if time.monotonic() - t0 > timeout:
        res = "timeout"
        break
    time.sleep(interval)
print("%.6f %s %s" % (time.time(), res, st))
EOF
}

# Build the stack on a pristine REAL and change PCT% of the chunks through
# SNAP; sets EXPECT (the snapshot's md5) and CHANGED, or returns 1 with NOTE.
setup_run() {	# pct seed
	local st alloc meta
	remove_all
	if ! { dd if="$PRISTINE" of="$REAL" bs=1M oflag=direct status=none &&
	       dd if=/dev/zero of="$COW" bs=64k count=1 oflag=direct status=none &&
	       dd if=/dev/zero of="$META" bs=64k count="$((META_SECTORS / 128))" \
			oflag=direct status=none; }; then
		NOTE="restoring REAL or zeroing COW/META failed"; return 1
	fi
	if ! { dmsetup create "$ORIGIN" --table "0 $SECTORS snapshot-origin $REAL" &&
	       dmsetup create "$SNAP" --table "0 $SECTORS snapshot $REAL $COW P $CHUNK"; }; then
		NOTE="creating the snapshot stack failed"; return 1
	fi
	CHANGED=$(change_chunks "$1" "$2") || { NOTE="writing through the snapshot failed"; return 1; }
	# The store must hold exactly the chunks written.
	st=$(dmsetup status "$SNAP" | cut -d' ' -f4-)
	alloc=${st%%/*} meta=${st##* }
	if ! [[ $alloc =~ ^[0-9]+$ && $meta =~ ^[0-9]+$ ]] ||
	   [ $(( (alloc - meta) / CHUNK )) -ne "$CHANGED" ]; then
		NOTE="snapshot status '$st' does not show $CHANGED changed chunks"; return 1
	fi
	EXPECT=$(md5sum < "/dev/mapper/$SNAP" | cut -d' ' -f1)
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

run_snapshot_merge() {
	local t0
	t0=$(now)
	if ! { dmsetup remove "$SNAP" &&
	       dmsetup load "$ORIGIN" --table "0 $SECTORS snapshot-merge $REAL $COW P $CHUNK" &&
	       dmsetup resume "$ORIGIN"; }; then
		NOTE="switch to snapshot-merge failed"; return 1
	fi
	T_SWITCH=$(elapsed "$t0" "$(now)")
	W=$(wait_done merge "$ORIGIN")
	T_MERGED=$(elapsed "$t0" "${W%% *}")
	case $W in *" complete "*) ;; *) NOTE="merge: ${W#* }"; return 1 ;; esac
	if ! { dmsetup load "$ORIGIN" --table "0 $SECTORS linear $REAL 0" &&
	       dmsetup resume "$ORIGIN"; }; then
		NOTE="switch to linear failed"; return 1
	fi
	T_DONE=$(elapsed "$t0" "$(now)")
}

run_dmstream() {
	local t0 out
	t0=$(now)
	out=$("$DMSTREAM" merge "$SNAP" --meta "$META" --rollback 2>&1) ||
		{ NOTE="dmstream merge failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; return 1; }
	T_SWITCH=$(elapsed "$t0" "$(now)")
	W=$(wait_done stream "$ORIGIN")
	T_MERGED=$(elapsed "$t0" "${W%% *}")
	case $W in *" complete "*) ;; *) NOTE="stream: ${W#* }"; return 1 ;; esac
	out=$("$DMSTREAM" finish "$ORIGIN" 2>&1) ||
		{ NOTE="dmstream finish failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; return 1; }
	T_DONE=$(elapsed "$t0" "$(now)")
}

run() {	# method pct rep
	local m=$1 pct=$2 rep=$3 ok=1 r0 r1 c0 c1 m0 m1 rr="" rw="" cr="" cw="" mw="" ratio="" sum tbl
	NOTE="" CHANGED="" T_SWITCH="" T_MERGED="" T_DONE=""
	if setup_run "$pct" "merge-$pct-$rep"; then
		read -r -a r0 <<< "$(io_bytes "$REAL")"
		read -r -a c0 <<< "$(io_bytes "$COW")"
		read -r -a m0 <<< "$(io_bytes "$META")"
		if "run_${m//-/_}"; then
			read -r -a r1 <<< "$(io_bytes "$REAL")"
			read -r -a c1 <<< "$(io_bytes "$COW")"
			read -r -a m1 <<< "$(io_bytes "$META")"
			rr=$((r1[0] - r0[0])) rw=$((r1[1] - r0[1]))
			cr=$((c1[0] - c0[0])) cw=$((c1[1] - c0[1])) mw=$((m1[1] - m0[1]))
			ratio=$(awk -v w="$rw" -v c="$CHANGED" -v s="$((CHUNK * 512))" \
				'BEGIN { if (c > 0) printf "%.3f", w / (c * s) }')
			tbl=$(dmsetup table "$ORIGIN" | awk '{ print $3 }')
			[ "$tbl" = linear ] || { ok=0; NOTE="volume is '$tbl' after completion, not linear"; }
			if dmsetup info "$SNAP" >/dev/null 2>&1; then
				ok=0; NOTE="${NOTE:+$NOTE; }$SNAP still exists"
			fi
			sum=$(md5sum < "/dev/mapper/$ORIGIN" | cut -d' ' -f1)
			[ "$sum" = "$EXPECT" ] ||
				{ ok=0; NOTE="${NOTE:+$NOTE; }volume differs from the snapshot"; }
		else
			ok=0
		fi
	else
		ok=0
	fi
	[ $ok = 1 ] || log "$m $pct% rep $rep: $NOTE"
	record "$m" "$pct" "$rep" "$CHANGED" "$T_SWITCH" "$T_MERGED" "$T_DONE" \
		"$rr" "$rw" "$cr" "$cw" "$mw" "$ratio" "$ok" "$NOTE"
	remove_all
	[ $ok = 1 ]
}

fail=0
methods=(snapshot-merge)
[ $HAVE_TOOL = 1 ] && methods+=(dmstream)
read -r -a pcts <<< "$PCTS"
configs=()
for p in "${pcts[@]}"; do
	for m in "${methods[@]}"; do configs+=("$m $p"); done
done
n=${#configs[@]}
for ((rep = 1; rep <= REPS; rep++)); do
	for ((i = 0; i < n; i++)); do
		# shellcheck disable=SC2086 # method and percentage
		run ${configs[(i + rep - 1) % n]} "$rep" || fail=1
	done
done
[ $HAVE_TOOL = 1 ] || {
	record dmstream "" 0 "" "" "" "" "" "" "" "" "" "" skip "no merge command in $DMSTREAM"
}
log "done"
exit $fail
