#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In-guest foreground part of the dm-stream benchmark, run by
# bench/guest-bench.sh on its devices once the copy runs are done: what users
# see while dm-stream (default settings) and dm-clone (its best settings)
# copy. Four groups, each in BENCH_FG_GROUPS (default "load pwlat nbd thin"):
#
# load  fio 4 KiB random read/write 70/30, iodepth 8, direct,
#       $BENCH_FG_SECONDS s, on a device of $BENCH_FG_MIB MiB (origin: the
#       bench origin repeated by a `linear` table; destination: a
#       fallocated tmpfs file) so that the copy lasts:
#         fg-linear  `linear` over the destination: the ceiling
#         fg-stream  dm-stream, default settings, streaming
#         fg-clone   dm-clone, hydration_threshold/batch $BENCH_CLONE_TUNED,
#                    hydrating
#         fg-stream-paused, fg-clone-nohyd  the same, background copying
#                    never started (`paused`, `no_hydration`): what fio's
#                    writes into uncopied regions cost without it
#         fg-rate    dm-stream, rate $BENCH_FG_RATE KiB/s
#         fg-oneway  the same on the bench's own (smaller) devices (the old
#                    run)
#         fg-mirror  that in mirror mode; then the copy completes and the
#                    origin must equal the destination
#       The targets are created with background copying stopped; it starts
#       1 s after fio's first reads completed (fio's own start takes seconds
#       under TCG). Then idle-stream and idle-clone: the same devices with
#       no fio, copying from the create for $BENCH_FG_IDLE_SECONDS s: the
#       idle copy rate. Copy progress and the device's I/O counts are
#       sampled every 0.5 s (bench/fgtool.py sample); fio logs IOPS and
#       latency histograms every second, and every I/O (--write_iolog).
#       Recorded: read/write IOPS and p99 completion latencies of the whole
#       run and while copying (until the copy completed, if it did), MiB
#       copied during fio and the copy rate while copying, and how much of
#       it fio's writes caused (writes into uncopied regions, from the I/O
#       log), so the background's own rate.
# pwlat first partial write latency: one 4 KiB O_DIRECT write into an uncopied
#       region ahead of the cursor (50-98% of the device) while the
#       background copies at full speed, 1, 2 and 3 s after the create,
#       $BENCH_PW_SAMPLES writes per target (a new device every 3); and the
#       same write with no background copying (dm-stream `paused`, dm-clone
#       `no_hydration`): the time to copy one region.
# nbd   the origin ($BENCH_NBD_MIB MiB) exported by nbd-server on loopback,
#       shaped by `tc qdisc add dev lo root netem $BENCH_NBD_NETEM`: the
#       link's read rate (fio, 1 MiB, iodepth 16), idle streaming time of both targets
#       (bench/dmwait.py, then cmp), and the partial write latency as above
#       (2 and 5 s after the create, $BENCH_NBD_PW_SAMPLES writes).
# thin  destination: a dm-thin volume ($BENCH_THIN_MIB MiB, 64 KiB blocks) in
#       a new pool; origin: 4 MiB random, 4 MiB zeros, alternating. After
#       the copy: the pool's used data blocks over the volume's blocks for
#       dm-stream (default, skip_zeroes), dm-clone, and `dd conv=sparse`
#       (what skipping every zero block gives). The volume must then equal
#       the origin.
#
# Environment: BENCH_ORIG, BENCH_DEST, BENCH_META (loop devices over
# $BENCH_PREPARE/{origin,dest,meta}.img), BENCH_SECTORS, BENCH_REGION,
# BENCH_REPS (3: load runs and idle streaming runs), BENCH_FG_SECONDS (20),
# BENCH_FG_IDLE_SECONDS (5), BENCH_FG_RATE (8192 KiB/s), BENCH_FG_MIB (2048,
# a multiple of the bench size, less when memory is short), BENCH_PW_SAMPLES
# (21), BENCH_NBD_MIB (64), BENCH_NBD_NETEM ("delay 10ms rate 40mbit"),
# BENCH_NBD_PW_SAMPLES (8), BENCH_THIN_MIB (64), BENCH_CLONE_TUNED ("256 64"),
# CLONE_OK / STREAM_OK (0 skips that target's runs).
# Output in DIR: fg.csv (load), fg-series.csv (time series), pwlat.csv,
# nbd.csv, thin.csv; every line also printed with a "BENCH-FG " prefix.
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
IDLE_S=${BENCH_FG_IDLE_SECONDS:-5}
RATE=${BENCH_FG_RATE:-8192}
FG_MIB=${BENCH_FG_MIB:-2048}
PW_SAMPLES=${BENCH_PW_SAMPLES:-21}
NBD_MIB=${BENCH_NBD_MIB:-64}
NBD_NETEM=${BENCH_NBD_NETEM:-delay 10ms rate 40mbit}
NBD_PW_SAMPLES=${BENCH_NBD_PW_SAMPLES:-8}
THIN_MIB=${BENCH_THIN_MIB:-64}
GROUPS_FG=" ${BENCH_FG_GROUPS:-load pwlat nbd thin} "
read -r CT CB <<< "${BENCH_CLONE_TUNED:-256 64}"
CLONE_ARGS="0 4 hydration_threshold $CT hydration_batch_size $CB"
CLONE_OK=${CLONE_OK:-1} STREAM_OK=${STREAM_OK:-1}
SIZE_MIB=$((SECTORS / 2048))
NAME=bench-fg
TOOL="python3 bench/fgtool.py"
SERIES=$OUT/fg-series.csv

log() { echo "guest-fg: $*" >&2; }
group() { [[ $GROUPS_FG == *" $1 "* ]]; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
kmsg() { dmesg | tail -n 1 | sed 's/^\[[ 0-9.]*\] //' | cut -c1-120; }

emit() {	# file line
	echo "$2" >> "$OUT/$1"
	echo "BENCH-FG $1 $2"
}

zero_meta() { dd if=/dev/zero of="$META" bs=1M oflag=direct status=none 2>/dev/null; }

# Fields of `dmsetup status` after the target type (dm-stream: 4 copied/total,
# 6 state, 7 mode, 8 copy errors; dm-clone: 4 hydrated/total, last: mode).
status_of() { dmsetup status "$1" 2>/dev/null | cut -d' ' -f4-; }

# A target's status after a run: "" when fine, else what is wrong.
judge() {	# name kind
	local st
	st=$(status_of "$1")
	case $2 in
	stream)
		echo "$st" | awk '$1 == "Fail" || $7 == "fail" || $7 == "ro" || $8 != 0 {
			print "status: " $0 }' ;;
	clone)
		echo "$st" | awk '$1 == "Fail" || $NF == "Fail" || $NF == "ro" { print "status: " $0 }' ;;
	esac
}

fail=0
echo "config,rep,series,t,value" > "$SERIES"

# ---------------------------------------------------------------- tables

# The foreground devices: FG_ORIG repeats the bench origin, FG_DEST is a
# fallocated tmpfs file (pages allocated up front, as the bench's own).
FG_ORIG=/dev/mapper/bench-fgorig FG_DEST="" FG_SECTORS=0
fg_devices() {
	local avail need k i table=""
	avail=$(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
	# Room for the nbd and thin groups and fio.
	need=$((NBD_MIB + 3 * THIN_MIB + 320))
	k=$((FG_MIB / SIZE_MIB))
	while [ $k -gt 1 ] && [ $((k * SIZE_MIB + need)) -gt "$avail" ]; do
		k=$((k - 1))
	done
	[ $k -ge 1 ] || k=1
	[ $((k * SIZE_MIB)) -lt "$FG_MIB" ] &&
		log "$avail MiB available: foreground device $((k * SIZE_MIB)) MiB instead of $FG_MIB"
	FG_MIB=$((k * SIZE_MIB)) FG_SECTORS=$((k * SECTORS))
	for ((i = 0; i < k; i++)); do
		table+="$((i * SECTORS)) $SECTORS linear $ORIG 0"$'\n'
	done
	dmsetup create bench-fgorig <<< "$table" || return 1
	fallocate -l "${FG_MIB}M" "$WORK/fg-dest.img" || return 1
	FG_DEST=$(losetup -f --show "$WORK/fg-dest.img") || return 1
	echo "fg_device: $FG_MIB MiB (origin: the bench origin x $k, destination: fallocated tmpfs loop $FG_DEST)" >> "$OUT/env.txt"
}

# The load runs' devices start with background copying stopped (dm-stream
# `paused`, dm-clone `no_hydration`); it starts (go_message) once fio runs,
# so that the whole copy window is under load.
table_of() {	# config -> "kind table"
	local st="stream $META $FG_DEST $FG_ORIG $REGION" cl="clone $META $FG_DEST $FG_ORIG $REGION"
	case $1 in
	fg-linear) echo "linear 0 $FG_SECTORS linear $FG_DEST 0" ;;
	idle-stream) echo "stream 0 $FG_SECTORS $st" ;;
	idle-clone) echo "clone 0 $FG_SECTORS $cl $CLONE_ARGS" ;;
	fg-stream|fg-stream-paused) echo "stream 0 $FG_SECTORS $st 1 paused" ;;
	fg-clone|fg-clone-nohyd) echo "clone 0 $FG_SECTORS $cl 1 no_hydration 4 hydration_threshold $CT hydration_batch_size $CB" ;;
	fg-rate) echo "stream 0 $FG_SECTORS $st 3 paused rate $RATE" ;;
	fg-oneway) echo "stream 0 $SECTORS stream $META $DEST $ORIG $REGION 3 paused rate $RATE" ;;
	fg-mirror) echo "stream 0 $SECTORS stream $META $DEST $ORIG $REGION 4 paused rate $RATE mirror" ;;
	esac
}
go_message() {	# kind
	case $1 in
	stream) dmsetup message "$NAME" 0 continue ;;
	clone) dmsetup message "$NAME" 0 enable_hydration ;;
	esac
}

# Reads completed on NAME (its /sys/block/dm-N/stat).
reads_of() {
	local minor
	minor=$(dmsetup info -c --noheadings -o minor "$NAME" 2>/dev/null | tr -d ' ')
	awk '{ print $1 }' "/sys/block/dm-$minor/stat" 2>/dev/null || echo 0
}

# ---------------------------------------------------------------- load

SAMPLER=""
start_sampler() {	# file: started before the create, so that it sees it at once
	local i
	rm -f "$1" "$1.ready"
	$TOOL sample "$NAME" 0.5 "$1" &
	SAMPLER=$!
	for ((i = 0; i < 300; i++)); do
		[ -e "$1.ready" ] && break
		sleep 0.1
	done
}
stop_sampler() {
	[ -n "$SAMPLER" ] || return 0
	kill "$SAMPLER" 2>/dev/null
	wait "$SAMPLER" 2>/dev/null
	SAMPLER=""
}

copied_of() { status_of "$NAME" | awk '{ split($4, a, "/"); print a[1] + 0 }'; }

run_idle() {	# cfg rep
	local cfg=$1 rep=$2 kind table t0 nums ok=1 note=""
	read -r kind table <<< "$(table_of "$cfg")"
	zero_meta
	start_sampler "$WORK/samples"
	t0=$(now)
	if ! dmsetup create "$NAME" --table "$table"; then
		stop_sampler
		emit fg.csv "$cfg,$rep,,,,,,,,,,,,,,0,dmsetup create failed: $(kmsg)"
		return 1
	fi
	sleep "$(awk -v s="$IDLE_S" 'BEGIN { print s + 0.5 }')"
	stop_sampler
	note=$(judge "$NAME" "$kind")
	[ -n "$note" ] && ok=0
	dmsetup remove --retry "$NAME" >/dev/null 2>&1 || { ok=0; note="${note:+$note; }remove failed"; }
	# Rate from 0.5 s after the create (as fio starts) for IDLE_S s.
	nums=$($TOOL idle "$REGION" "$(awk -v t="$t0" 'BEGIN { printf "%.3f", t + 0.5 }')" \
		"$(awk -v t="$t0" -v s="$IDLE_S" 'BEGIN { printf "%.3f", t + 0.5 + s }')" \
		"$WORK/samples" "$cfg" "$rep" "$SERIES") || { ok=0; note="${note:+$note; }no samples"; }
	local mib secs rate done_
	read -r mib secs rate done_ <<< "$nums"
	emit fg.csv "$cfg,$rep,,,,,$mib,$secs,$rate,,$done_,,,,,$ok,${note//,/;}"
	[ $ok = 1 ]
}

run_load() {	# cfg rep
	local cfg=$1 rep=$2 kind table t0 nums="" ok=1 note="" i bad fio_pid log=$WORK/fio_iops.1.log
	read -r kind table <<< "$(table_of "$cfg")"
	[ "$kind" != linear ] && zero_meta
	start_sampler "$WORK/samples"
	rm -f "$log" "$WORK/fio.json" "$WORK/fio_clat_hist.1.log" "$WORK/fio.iolog"
	if ! dmsetup create "$NAME" --table "$table"; then
		stop_sampler
		emit fg.csv "$cfg,$rep,,,,,,,,,,,,,,0,dmsetup create failed: $(kmsg)"
		return 1
	fi
	fio --name=fg --filename="/dev/mapper/$NAME" --rw=randrw --rwmixread=70 --bs=4k \
		--iodepth=8 --ioengine=libaio --direct=1 --time_based --runtime="$SECONDS_FG" \
		--norandommap --randrepeat=0 --output-format=json --output="$WORK/fio.json" \
		--write_iops_log="$WORK/fio" --log_avg_msec=1000 --write_hist_log="$WORK/fio" \
		--log_hist_msec=1000 --write_iolog="$WORK/fio.iolog" >/dev/null 2>&1 &
	fio_pid=$!
	# fio takes seconds to start under TCG: start copying 1 s after its
	# first reads completed (the same moment for linear, for the plot).
	for ((i = 0; i < 300; i++)); do
		[ "$(reads_of)" -gt 0 ] && break
		sleep 0.1
	done
	sleep 1
	t0=$(now)
	case $cfg in
	*-paused|*-nohyd) ;;
	*) go_message "$kind" || { ok=0; note="cannot start copying"; } ;;
	esac
	wait "$fio_pid" || { ok=0; note="${note:+$note; }fio failed"; }
	stop_sampler
	if [ $ok = 1 ]; then
		nums=$($TOOL analyze "$cfg" "$rep" "$REGION" "$t0" \
			"$WORK/samples" "$WORK/fio.json" "$log" "$WORK/fio_clat_hist.1.log" \
			"$WORK/fio.iolog" "$SERIES") || { ok=0; note="fio output unreadable"; }
	fi
	local ri wi pr pw mib secs rate ic done_ prc pwc wmib bg
	read -r ri wi pr pw mib secs rate ic done_ prc pwc wmib bg <<< "${nums:-}"
	[ "$kind" = linear ] && mib="" rate="" done_="" wmib="" bg=""
	if [ "$kind" != linear ]; then
		bad=$(judge "$NAME" "$kind")
		[ -n "$bad" ] && { ok=0; note="${note:+$note; }$bad"; }
		[ "${done_:-0}" = 1 ] && note="${note:+$note; }copy completed during the fio run"
	fi
	if [ "$cfg" = fg-mirror ]; then
		# The copy completes; then both legs must hold every write.
		dmsetup message "$NAME" 0 rate 0
		for ((i = 0; i < 600 && $(copied_of) < SECTORS / REGION; i++)); do
			sleep 0.2
		done
		[ "$(status_of "$NAME" | awk '{ print $6 }')" = complete ] ||
			{ ok=0; note="${note:+$note; }copy did not complete: $(status_of "$NAME")"; }
	fi
	dmsetup remove --retry "$NAME" >/dev/null 2>&1 || { ok=0; note="${note:+$note; }remove failed"; }
	if [ "$cfg" = fg-mirror ] && [ $ok = 1 ] && ! cmp -s "$ORIG" "$DEST"; then
		ok=0; note="${note:+$note; }mirror: origin and destination differ after the copy"
	fi
	emit fg.csv "$cfg,$rep,${ri:-},${wi:-},${pr:-},${pw:-},${mib:-},${secs:-},${rate:-},${ic:-},${done_:-},${prc:-},${pwc:-},${wmib:-},${bg:-},$ok,${note//,/;}"
	[ $ok = 1 ]
}

group_load() {
	local cfgs=(fg-linear) idle=() rep i
	[ "$STREAM_OK" = 1 ] &&
		{ cfgs+=(fg-stream fg-stream-paused fg-rate fg-oneway fg-mirror); idle+=(idle-stream); }
	[ "$CLONE_OK" = 1 ] && { cfgs+=(fg-clone fg-clone-nohyd); idle+=(idle-clone); }
	echo "config,rep,read_iops,write_iops,p99_read_us,p99_write_us,copied_mib,copying_s,copy_mib_s,iops_copying,complete,p99_read_copying_us,p99_write_copying_us,write_copied_mib,bg_copy_mib_s,valid,note" > "$OUT/fg.csv"
	echo "fg: fio randrw 70/30 bs=4k iodepth=8 direct ${SECONDS_FG}s; idle window ${IDLE_S}s; rate rows $RATE KiB/s" >> "$OUT/env.txt"
	for ((rep = 1; rep <= REPS; rep++)); do
		for ((i = 0; i < ${#idle[@]}; i++)); do
			run_idle "${idle[(i + rep - 1) % ${#idle[@]}]}" "$rep" || fail=1
		done
		for ((i = 0; i < ${#cfgs[@]}; i++)); do
			run_load "${cfgs[(i + rep - 1) % ${#cfgs[@]}]}" "$rep" || fail=1
		done
	done
}

# ---------------------------------------------------------------- pwlat

PW_HEAD="link,target,mode,rep,at_s,region,cursor_pct,ahead,ms,ok,note"

# pw_run link target mode rep table delays lo hi seed
pw_run() {
	local link=$1 target=$2 mode=$3 rep=$4 table=$5 delays=$6 lo=$7 hi=$8 seed=$9 out at r c a ms ok e
	zero_meta
	if ! out=$($TOOL pwlat "$NAME" "$target" "$table" "$REGION" "$delays" "$lo" "$hi" "$seed"); then
		emit pwlat.csv "$link,$target,$mode,$rep,,,,,,0,dmsetup create failed: $(kmsg)"
		dmsetup remove --retry "$NAME" >/dev/null 2>&1
		return 1
	fi
	while read -r at r c a ms ok e; do
		[ "$e" = - ] && e=""
		emit pwlat.csv "$link,$target,$mode,$rep,$at,$r,$c,$a,$ms,$ok,$e"
		[ "$ok" = 1 ] || fail=1
	done <<< "$out"
}

# pw_target link target sectors dest orig samples delays-per-device idle-samples
pw_target() {
	local link=$1 target=$2 sec=$3 dest=$4 orig=$5 n=$6 delays=$7 nidle=$8 base idle per i d
	per=$(wc -w <<< "$delays")
	if [ "$target" = stream ]; then
		base="0 $sec stream $META $dest $orig $REGION"
		idle="$base 1 paused"
	else
		base="0 $sec clone $META $dest $orig $REGION"
		idle="$base 1 no_hydration 4 hydration_threshold $CT hydration_batch_size $CB"
		base="$base $CLONE_ARGS"
	fi
	for ((i = 0; i * per < n; i++)); do
		pw_run "$link" "$target" load "$((i + 1))" "$base" "$delays" 0.5 0.98 "$((1000 + i))" ||
			{ fail=1; break; }
	done
	d=$(seq -s ' ' 0.5 0.5 "$(awk -v n="$nidle" 'BEGIN { print n / 2 }')")
	pw_run "$link" "$target" idle 1 "$idle" "$d" 0.05 0.98 7 || fail=1
}

group_pwlat() {
	echo "$PW_HEAD" > "$OUT/pwlat.csv"
	echo "pwlat: $PW_SAMPLES writes per target under load, 1, 2, 3 s after the create, region 50-98% of the device" >> "$OUT/env.txt"
	[ "$STREAM_OK" = 1 ] && pw_target local stream "$FG_SECTORS" "$FG_DEST" "$FG_ORIG" "$PW_SAMPLES" "1 2 3" 10
	[ "$CLONE_OK" = 1 ] && pw_target local clone "$FG_SECTORS" "$FG_DEST" "$FG_ORIG" "$PW_SAMPLES" "1 2 3" 10
}

# ---------------------------------------------------------------- nbd

NBD_PID="" NBD_DEV=/dev/nbd0 NBD_UP=0 NETEM=0
nbd_cleanup() {
	dmsetup remove --retry "$NAME" >/dev/null 2>&1
	[ $NETEM = 1 ] && tc qdisc del dev lo root 2>/dev/null
	NETEM=0
	[ $NBD_UP = 1 ] && nbd-client -d "$NBD_DEV" >/dev/null 2>&1
	NBD_UP=0
	[ -n "$NBD_PID" ] && kill "$NBD_PID" 2>/dev/null
	NBD_PID=""
}

nbd_setup() {	# -> "" or the reason it cannot run
	local port=10809 i
	for i in nbd-server nbd-client tc ip; do
		command -v "$i" >/dev/null || { echo "$i not installed"; return; }
	done
	modprobe nbd 2>/dev/null || { echo "no nbd module"; return; }
	modprobe sch_netem 2>/dev/null || { echo "no sch_netem module"; return; }
	ip link set lo up || { echo "ip link set lo up failed"; return; }
	dd if="$WORK/origin.img" of="$WORK/nbd-origin.img" bs=1M count="$NBD_MIB" status=none ||
		{ echo "cannot write the nbd origin"; return; }
	cat > "$WORK/nbd.conf" <<-EOF
	[generic]
		listenaddr = 127.0.0.1
		port = $port
		allowlist = false
	[bench]
		exportname = $WORK/nbd-origin.img
	EOF
	nbd-server -C "$WORK/nbd.conf" -p "$WORK/nbd.pid" 2>/dev/null || { echo "nbd-server failed"; return; }
	for ((i = 0; i < 50; i++)); do
		NBD_PID=$(cat "$WORK/nbd.pid" 2>/dev/null) && [ -n "$NBD_PID" ] && break
		sleep 0.1
	done
	nbd-client -N bench 127.0.0.1 "$port" "$NBD_DEV" -b 4096 -t 60 >/dev/null 2>&1 ||
		{ echo "nbd-client failed"; return; }
	NBD_UP=1
	# shellcheck disable=SC2086 # netem's arguments
	tc qdisc add dev lo root netem $NBD_NETEM || { echo "tc qdisc add netem failed"; return; }
	NETEM=1
	[ "$(blockdev --getsize64 "$NBD_DEV")" = $((NBD_MIB * 1048576)) ] ||
		{ echo "$NBD_DEV has $(blockdev --getsize64 "$NBD_DEV") bytes"; return; }
}

group_nbd() {
	local why sec=$((NBD_MIB * 2048)) st rc secs ok note rep cfg kind table tgt
	echo "config,rep,seconds,mib_per_s,valid,note" > "$OUT/nbd.csv"
	why=$(nbd_setup)
	if [ -n "$why" ]; then
		log "nbd group skipped: $why"
		emit nbd.csv "nbd,0,,,skip,$why"
		nbd_cleanup
		return
	fi
	echo "nbd: $NBD_MIB MiB origin over nbd on lo, netem $NBD_NETEM" >> "$OUT/env.txt"
	# The link's rate: 16 MiB read in 1 MiB pieces, 16 in flight.
	secs=$(fio --name=link --filename="$NBD_DEV" --rw=read --bs=1M --iodepth=16 \
		--ioengine=libaio --direct=1 --size=16M --output-format=json 2>/dev/null |
		python3 -c 'import json, sys; print("%.3f" % (json.load(sys.stdin)["jobs"][0]["read"]["runtime"] / 1000))')
	emit nbd.csv "nbd-link,1,$secs,$(awk -v s="$secs" 'BEGIN { if (s > 0) printf "%.2f", 16 / s }'),1,fio read of 16 MiB from $NBD_DEV: bs 1M iodepth 16"
	for ((rep = 1; rep <= REPS; rep++)); do
		for cfg in nbd-stream nbd-clone; do
			kind=${cfg#nbd-}
			[ "$kind" = stream ] && [ "$STREAM_OK" != 1 ] && continue
			[ "$kind" = clone ] && [ "$CLONE_OK" != 1 ] && continue
			table="0 $sec $kind $META $DEST $NBD_DEV $REGION"
			[ "$kind" = clone ] && table="$table $CLONE_ARGS"
			zero_meta
			ok=1 note=""
			st=$(python3 bench/dmwait.py "$NAME" "$kind" "$table" 600 0.05); rc=$?
			secs=${st%% *}
			[ $rc = 0 ] || { ok=0; note="not complete: ${st#* }"; }
			dmsetup remove --retry "$NAME" >/dev/null 2>&1
			if [ $ok = 1 ] && ! cmp -s -n $((NBD_MIB * 1048576)) "$WORK/nbd-origin.img" "$DEST"; then
				ok=0; note="destination differs from origin"
			fi
			[ $ok = 1 ] || fail=1
			emit nbd.csv "$cfg,$rep,$secs,$(awk -v s="$secs" -v m="$NBD_MIB" 'BEGIN { if (s > 0) printf "%.2f", m / s }'),$ok,${note//,/;}"
		done
	done
	for tgt in stream clone; do
		[ "$tgt" = stream ] && [ "$STREAM_OK" != 1 ] && continue
		[ "$tgt" = clone ] && [ "$CLONE_OK" != 1 ] && continue
		pw_target nbd "$tgt" "$sec" "$DEST" "$NBD_DEV" "$NBD_PW_SAMPLES" "2 5" 5
	done
	nbd_cleanup
}

# ---------------------------------------------------------------- thin

THIN_LOOPS=()
thin_cleanup() {
	local d
	for d in bench-thinvol bench-thinpool; do
		dmsetup remove --retry "$d" >/dev/null 2>&1
	done
	for d in "${THIN_LOOPS[@]}"; do
		losetup -d "$d" 2>/dev/null
	done
	THIN_LOOPS=()
}

group_thin() {
	local sec=$((THIN_MIB * 2048)) i pmeta pdata torig cfg kind table st rc secs ok note used blocks t0 rep
	echo "config,rep,seconds,volume_blocks,used_blocks,used_pct,valid,note" > "$OUT/thin.csv"
	if ! modprobe dm-thin-pool 2>/dev/null; then
		emit thin.csv "thin,0,,,,,skip,no dm-thin-pool module"
		return
	fi
	# 4 MiB of random data, 4 MiB of zeros, alternating.
	truncate -s "${THIN_MIB}M" "$WORK/thin-origin.img"
	for ((i = 0; i < THIN_MIB / 4; i += 2)); do
		dd if="$WORK/origin.img" of="$WORK/thin-origin.img" bs=4M skip="$i" seek="$i" count=1 \
			conv=notrunc status=none
	done
	truncate -s 4M "$WORK/thin-meta.img"
	truncate -s "${THIN_MIB}M" "$WORK/thin-data.img"
	if ! { pmeta=$(losetup -f --show "$WORK/thin-meta.img") && THIN_LOOPS+=("$pmeta") &&
	       pdata=$(losetup -f --show "$WORK/thin-data.img") && THIN_LOOPS+=("$pdata") &&
	       torig=$(losetup -f --show "$WORK/thin-origin.img") && THIN_LOOPS+=("$torig"); }; then
		emit thin.csv "thin,0,,,,,0,losetup failed"; fail=1; thin_cleanup; return
	fi
	echo "thin: $THIN_MIB MiB volume, 64 KiB blocks, origin 4 MiB random / 4 MiB zeros" >> "$OUT/env.txt"
	blocks=$((sec / 128))
	for ((rep = 1; rep <= REPS; rep++)); do
		for cfg in thin-stream thin-stream-skipz thin-clone thin-dd-sparse; do
			kind=stream
			case $cfg in
			thin-stream) table="0 $sec stream $META /dev/mapper/bench-thinvol $torig $REGION" ;;
			thin-stream-skipz) table="0 $sec stream $META /dev/mapper/bench-thinvol $torig $REGION 1 skip_zeroes" ;;
			thin-clone) kind=clone; table="0 $sec clone $META /dev/mapper/bench-thinvol $torig $REGION $CLONE_ARGS" ;;
			thin-dd-sparse) kind=sparse-dd ;;
			esac
			[ "$kind" = stream ] && [ "$STREAM_OK" != 1 ] && continue
			[ "$kind" = clone ] && [ "$CLONE_OK" != 1 ] && continue
			ok=1 note="" secs="" used=""
			dd if=/dev/zero of="$pmeta" bs=4k count=1 oflag=direct status=none
			dd if=/dev/zero of="$META" bs=1M oflag=direct status=none
			if ! dmsetup create bench-thinpool --table "0 $sec thin-pool $pmeta $pdata 128 0" ||
			   ! dmsetup message bench-thinpool 0 "create_thin 0" ||
			   ! dmsetup create bench-thinvol --table "0 $sec thin /dev/mapper/bench-thinpool 0"; then
				emit thin.csv "$cfg,$rep,,$blocks,,,0,thin pool setup failed: $(kmsg)"
				fail=1; thin_cleanup; return
			fi
			if [ "$kind" = sparse-dd ]; then
				t0=$(now)
				dd if="$torig" of=/dev/mapper/bench-thinvol bs=64k conv=sparse,notrunc \
					iflag=direct oflag=direct status=none || { ok=0; note="dd failed"; }
				secs=$(elapsed "$t0" "$(now)")
			else
				st=$(python3 bench/dmwait.py "$NAME" "$kind" "$table" 300 0.02); rc=$?
				secs=${st%% *}
				case $st in *dmsetup-create-failed*) note="dmsetup create failed: $(kmsg)" ;; esac
				[ $rc = 0 ] || { ok=0; note=${note:-"not complete: ${st#* }"}; }
				dmsetup remove --retry "$NAME" >/dev/null 2>&1
			fi
			used=$(dmsetup status bench-thinpool | awk '{ split($6, a, "/"); print a[1] }')
			if [ $ok = 1 ] && ! cmp -s "$WORK/thin-origin.img" /dev/mapper/bench-thinvol; then
				ok=0; note="volume differs from origin"
			fi
			[ $ok = 1 ] || fail=1
			emit thin.csv "$cfg,$rep,$secs,$blocks,$used,$(awk -v u="$used" -v b="$blocks" 'BEGIN { if (u != "") printf "%.1f", 100 * u / b }'),$ok,${note//,/;}"
			dmsetup remove --retry bench-thinvol >/dev/null 2>&1
			dmsetup remove --retry bench-thinpool >/dev/null 2>&1
		done
	done
	thin_cleanup
}

# ---------------------------------------------------------------- main

cleanup() {
	stop_sampler
	dmsetup remove --retry "$NAME" >/dev/null 2>&1
	nbd_cleanup
	thin_cleanup
	dmsetup remove --retry bench-fgorig >/dev/null 2>&1
	[ -n "$FG_DEST" ] && losetup -d "$FG_DEST" 2>/dev/null
	rm -f "$WORK/fg-dest.img"
}
trap cleanup EXIT

t_all=$(now)
# Under TCG the first start of fio and python3 (read over 9p) takes seconds.
fio --version >/dev/null
python3 -c 'import json, mmap, subprocess' 2>/dev/null
if group load || group pwlat; then
	fg_devices || { log "cannot set up the foreground devices"; exit 2; }
fi
if group load; then
	group_load
	log "load: $(elapsed "$t_all" "$(now)") s"
fi
if group pwlat; then
	group_pwlat
	log "pwlat: $(elapsed "$t_all" "$(now)") s"
fi
# The foreground device's memory goes back before the nbd and thin groups.
dmsetup remove --retry bench-fgorig >/dev/null 2>&1
[ -n "$FG_DEST" ] && losetup -d "$FG_DEST" 2>/dev/null
FG_DEST=""
rm -f "$WORK/fg-dest.img"
if group nbd; then
	[ -f "$OUT/pwlat.csv" ] || echo "$PW_HEAD" > "$OUT/pwlat.csv"
	group_nbd
	log "nbd: $(elapsed "$t_all" "$(now)") s"
fi
if group thin; then
	group_thin
	log "thin: $(elapsed "$t_all" "$(now)") s"
fi
log "done in $(elapsed "$t_all" "$(now)") s"
exit $fail
