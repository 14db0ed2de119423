#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In-guest foreground part of the dm-stream benchmark, run by
# bench/guest-bench.sh on its devices once the copy runs are done: what users
# of a stream device see while it streams, one-way and in mirror mode.
#
# For each configuration and repetition (interleaved): zero the destination
# and the metadata, create the device, run fio (4 KiB random writes,
# iodepth 8, direct, $BENCH_FG_SECONDS s) on it, then let the copy finish.
#   fg-linear   `linear` over the destination: the ceiling
#   fg-oneway   dm-stream, rate $BENCH_FG_RATE KiB/s, so that it streams
#               throughout the fio run
#   fg-mirror   the same in mirror mode: every write also goes to the origin
# Recorded: write IOPS, p99 completion latency, MiB copied during the fio
# run. Validity: fio must succeed, and in mirror mode, once the copy is
# complete, the origin must equal the destination (both legs got every
# write): cmp, otherwise the run is invalid.
#
# Environment: BENCH_ORIG, BENCH_DEST, BENCH_META (loop devices over
# $BENCH_PREPARE/{origin,dest,meta}.img), BENCH_SECTORS, BENCH_REGION,
# BENCH_REPS (3), BENCH_FG_SECONDS (20), BENCH_FG_RATE (8192 KiB/s).
# Output: DIR/fg.csv, each line also printed prefixed with "BENCH-FG ".
# Exit status: 0 when every run was valid, 1 otherwise, 2 on setup failure.

set -u

OUT=bench/out
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "guest-fg: unknown argument $1" >&2; exit 2 ;;
	esac
done

ORIG=${BENCH_ORIG:?} DEST=${BENCH_DEST:?} META=${BENCH_META:?}
SECTORS=${BENCH_SECTORS:?} REGION=${BENCH_REGION:-128} WORK=${BENCH_PREPARE:?}
REPS=${BENCH_REPS:-3}
SECONDS_FG=${BENCH_FG_SECONDS:-20}
RATE=${BENCH_FG_RATE:-8192}
NAME=bench-fg
CSV=$OUT/fg.csv

log() { echo "guest-fg: $*" >&2; }

echo "config,rep,write_iops,p99_us,copied_mib,valid,note" > "$CSV" || exit 2
echo "fg: fio randwrite bs=4k iodepth=8 direct ${SECONDS_FG}s; stream rate $RATE KiB/s" >> "$OUT/env.txt"

prepare() {
	dd if=/dev/zero of="$DEST" bs=1M oflag=direct status=none 2>/dev/null
	dd if=/dev/zero of="$META" bs=1M oflag=direct status=none 2>/dev/null
}

# Copied regions, from the status line's <copied>/<total> field.
copied() { dmsetup status "$NAME" 2>/dev/null | awk '{ split($7, a, "/"); print a[1] + 0 }'; }
state() { dmsetup status "$NAME" 2>/dev/null | awk '{ print $9 }'; }

# fio's JSON -> "<write iops> <p99 us>".
fio_numbers() {
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]["write"]
p = j["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1000
print("%.0f %.0f" % (j["iops"], p))' "$1"
}

record() {	# cfg rep iops p99 mib valid note
	local line="$1,$2,$3,$4,$5,$6,${7//,/;}"
	echo "$line" >> "$CSV"
	echo "BENCH-FG $line"
}

run() {	# cfg rep
	local cfg=$1 rep=$2 table c0 c1 nums iops="" p99="" mib="" ok=1 note="" i
	case $cfg in
	fg-linear) table="0 $SECTORS linear $DEST 0" ;;
	fg-oneway) table="0 $SECTORS stream $META $DEST $ORIG $REGION 2 rate $RATE" ;;
	fg-mirror) table="0 $SECTORS stream $META $DEST $ORIG $REGION 3 rate $RATE mirror" ;;
	esac
	prepare
	if ! dmsetup create "$NAME" --table "$table"; then
		record "$cfg" "$rep" "" "" "" 0 "dmsetup create failed: $(dmesg | tail -n 1 | cut -c1-120)"
		return 1
	fi
	c0=$(copied)
	if fio --name=fg --filename="/dev/mapper/$NAME" --rw=randwrite --bs=4k --iodepth=8 \
		--ioengine=libaio --direct=1 --time_based --runtime="$SECONDS_FG" \
		--norandommap --randrepeat=0 --output-format=json \
		--output="$WORK/fio.json" >/dev/null 2>&1 && nums=$(fio_numbers "$WORK/fio.json"); then
		read -r iops p99 <<< "$nums"
	else
		ok=0; note="fio failed"
	fi
	if [ "$cfg" != fg-linear ]; then
		c1=$(copied)
		mib=$(awk -v a="$c0" -v b="$c1" -v r="$REGION" 'BEGIN { printf "%.1f", (b - a) * r / 2048 }')
		[ "$(state)" = complete ] && note="${note:+$note; }copy completed during the fio run"
		dmsetup message "$NAME" 0 rate 0
		for ((i = 0; i < 600 && $(copied) < SECTORS / REGION; i++)); do
			sleep 0.2
		done
		[ "$(state)" = complete ] || { ok=0; note="${note:+$note; }copy did not complete: $(dmsetup status "$NAME")"; }
	fi
	dmsetup remove --retry "$NAME" >/dev/null 2>&1 || { ok=0; note="${note:+$note; }remove failed"; }
	if [ "$cfg" = fg-mirror ] && [ $ok = 1 ] && ! cmp -s "$ORIG" "$DEST"; then
		ok=0; note="${note:+$note; }mirror: origin and destination differ after the copy"
	fi
	record "$cfg" "$rep" "$iops" "$p99" "$mib" "$ok" "$note"
	[ $ok = 1 ]
}

fail=0
configs=(fg-linear fg-oneway fg-mirror)
for ((rep = 1; rep <= REPS; rep++)); do
	for ((i = 0; i < ${#configs[@]}; i++)); do
		run "${configs[(i + rep - 1) % ${#configs[@]}]}" "$rep" || fail=1
	done
done
dmsetup remove --retry "$NAME" >/dev/null 2>&1
log "done"
exit $fail
