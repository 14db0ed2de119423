#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench/run.sh - stream a few hundred MiB with dm-stream, side by side with
# dm-clone, a raw dd copy and dd through a linear device, in one guest boot.
#
# Usage: bench/run.sh [OPTIONS]
#
#   --size MIB        data to copy (default 256; the guest needs about
#                     2 * MIB + 150 MiB of free RAM for its tmpfs devices)
#   --reps N          repetitions of every configuration (default 3, interleaved)
#   --inflight LIST   dm-stream max_inflight values to sweep besides the
#                     default (default "16 64"; the default itself is skipped;
#                     "" for none)
#   --clone-tuned "T B"  dm-clone hydration_threshold and hydration_batch_size
#                     of its tuned run (default "256 64")
#   --configs LIST    run only these (dd linear clone clone-tuned stream
#                     stream-mi<N>, and stream-poll: dm-stream timed by polling
#                     its status like dm-clone instead of waiting for its event)
#   --region SECTORS  region size for both targets (default 128 = 64 KiB)
#   --parts LIST      what to run (default "copy fg"): copy (the runs above),
#                     fg (foreground I/O while streaming, bench/guest-fg.sh),
#                     merge (merging a dm-snapshot back: snapshot-merge
#                     against `dmstream merge --rollback`, bench/guest-merge.sh;
#                     builds the tool too)
#   --merge-pcts LIST percentages of the volume's chunks changed through the
#                     snapshot before a merge (default "5 30")
#   --mem SIZE        guest RAM (default 3G; 5G with the fg part, whose
#                     foreground device is 2 GiB)
#   --timeout SEC     guest timeout (default 1200; 2400 with the fg part)
#   --out DIR         results directory (default bench/out)
#   --no-build        do not run `make modules` first
#   --ko FILE         benchmark this dm-stream.ko (built for the guest kernel)
#                     instead of the tree's; implies --no-build
#   --idle-wait SEC   wait up to SEC s (default 600) for other QEMU guests on
#                     this host to finish before booting; 0 to not wait
#   -h, --help        this text
#
# Steps: build dm-stream (make modules, against the guest kernel's headers),
# build dm-clone from Debian's linux-source into the cache
# (bench/build-dm-clone.sh), boot the guest once (selftests/run-guest) running
# bench/guest-bench.sh, then bench/summarize.py.  If dm-clone cannot be built
# or dm-stream does not load, the other configurations still run.
#
# Output in DIR: results.md (tables: medians, MiB/s, ratios, max_inflight
# sweep), results.csv (one line per configuration), runs.csv (every run),
# env.txt, dmesg.txt, console.log; with the fg part fg.csv, fg-series.csv,
# pwlat.csv, nbd.csv, thin.csv, their medians in fg-results.csv,
# pwlat-results.csv, nbd-results.csv, thin-results.csv, and fg.png (copy
# progress and IOPS over time, by gnuplot).
#
# The fg part's knobs are environment variables, passed into the guest:
# BENCH_FG_SECONDS, BENCH_FG_IDLE_SECONDS, BENCH_FG_RATE, BENCH_FG_MIB,
# BENCH_FG_GROUPS, BENCH_PW_SAMPLES, BENCH_NBD_MIB, BENCH_NBD_NETEM,
# BENCH_NBD_PW_SAMPLES, BENCH_THIN_MIB (see bench/guest-fg.sh).
#
# Exit status: 0 when every attempted run was valid (destination == origin)
# and dmesg stayed clean, 1 otherwise, 2 on setup errors.

set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO" || exit 2

usage() { sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { echo "bench: $*" >&2; exit 2; }

size=256 reps=3 inflight="16 64" clone_tuned="256 64" configs="" region=128
mem="" timeout="" out=$REPO/bench/out build=1 idle_wait=600 ko=
parts="copy fg" merge_pcts="5 30"
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=${2:?}; shift 2 ;;
	--reps) reps=${2:?}; shift 2 ;;
	--inflight) inflight=${2?}; shift 2 ;;
	--clone-tuned) clone_tuned=${2:?}; shift 2 ;;
	--configs) configs=${2:?}; shift 2 ;;
	--region) region=${2:?}; shift 2 ;;
	--parts) parts=${2:?}; shift 2 ;;
	--merge-pcts) merge_pcts=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--no-build) build=0; shift ;;
	--ko) ko=$(realpath "${2:?}") || die "no $2"; build=0; shift 2 ;;
	--idle-wait) idle_wait=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[[ $size =~ ^[0-9]+$ && $size -gt 0 ]] || die "bad --size '$size'"
[[ $reps =~ ^[0-9]+$ && $reps -gt 0 ]] || die "bad --reps '$reps'"
[[ $region =~ ^[0-9]+$ ]] || die "bad --region '$region'"
for p in $parts; do
	case $p in copy|fg|merge) ;; *) die "bad --parts '$parts' (copy, fg, merge)" ;; esac
done
[[ $merge_pcts =~ ^[0-9\ ]+$ ]] || die "bad --merge-pcts '$merge_pcts'"
if [[ " $parts " == *" fg "* ]]; then
	mem=${mem:-5G} timeout=${timeout:-2400}
else
	mem=${mem:-3G} timeout=${timeout:-1200}
fi
# The fg part's knobs (bench/guest-fg.sh), from the environment.
fgenv=()
for v in $(compgen -e); do
	case $v in BENCH_FG_*|BENCH_PW_*|BENCH_NBD_*|BENCH_THIN_*) fgenv+=(-e "$v=${!v}") ;; esac
done

scripts/deps.sh --check >/dev/null 2>&1 || scripts/deps.sh || die "scripts/deps.sh failed"
abi=$(scripts/deps.sh --abi) || die "cannot derive the kernel ABI"

if [ $build = 1 ]; then
	make --no-print-directory modules KDIR="/usr/src/linux-headers-$abi" >&2 ||
		echo "bench: building dm-stream failed: the dm-stream runs will be skipped" >&2
	if [[ " $parts " == *" merge "* ]]; then
		make --no-print-directory tools >&2 ||
			echo "bench: building the tool failed: the dmstream merge runs will be skipped" >&2
	fi
fi

clone_ko=$(KABI=$abi bench/build-dm-clone.sh) ||
	{ clone_ko=""; echo "bench: building dm-clone failed: the dm-clone runs will be skipped" >&2; }

mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd -P)
rm -f "$out"/{runs.csv,results.md,results.csv,ratios.csv,env.txt,dmesg.txt,dmesg-bad.txt}
rm -f "$out"/{fg.csv,fg-series.csv,pwlat.csv,nbd.csv,thin.csv,merge.csv,fg.png,fg.gp}
rm -f "$out"/{fg-results.csv,pwlat-results.csv,nbd-results.csv,thin-results.csv}

# What was measured: the commit (noting local changes to dm-stream/) and a
# hash of the module; the host and QEMU.
if [ -n "$ko" ]; then
	case $ko in /tmp/*) die "--ko $ko: the guest cannot see the host's /tmp" ;; esac
	rev="$ko"
else
	ko=$REPO/dm-stream/dm-stream.ko
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		rev=$(git log -1 --format='%h %s' | cut -c1-72)
		git diff --quiet HEAD -- dm-stream || rev="$rev (+ uncommitted changes)"
	else
		rev="$REPO (not a git checkout)"
	fi
fi
[ -f "$ko" ] && rev="$rev, dm-stream.ko sha1 $(sha1sum "$ko" | cut -c1-12)"
# The module's default max_inflight, from the interface header beside it,
# for the labels.
defmi=$(sed -n 's/^#define[[:space:]]*STREAM_DEFAULT_MAX_INFLIGHT[[:space:]]*\([0-9]*\).*/\1/p' \
	"$(dirname "$ko")/stream-interface.h" 2>/dev/null | head -n1)
host="$(nproc) CPUs, $(qemu-system-x86_64 --version 2>/dev/null | head -n1)"

# Timings under TCG depend on the host's CPUs: other guests (selftests) skew
# them.  Wait for a quiet host, then sample it while the bench runs; the
# summary flags a busy host.
other_guests() {	# QEMU processes other than the bench's own guest
	local p n=0
	for p in $(pgrep -x qemu-system-x86 2>/dev/null); do
		{ tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null |
			grep -q -- "dmstream.out=$out " || n=$((n + 1))
	done
	echo $n
}
if [ "$idle_wait" -gt 0 ] && [ "$(other_guests)" -gt 0 ]; then
	echo "bench: waiting up to ${idle_wait}s for $(other_guests) other QEMU guest(s) to finish" >&2
	end=$(( $(date +%s) + idle_wait ))
	while [ "$(other_guests)" -gt 0 ] && [ "$(date +%s)" -lt "$end" ]; do
		sleep 5
	done
	[ "$(other_guests)" -eq 0 ] ||
		echo "bench: host still busy with $(other_guests) other guest(s): timings will be noisy" >&2
fi
# The guest reads .host-state ("<other guests now> <busy samples so far>") to
# wait for quiet moments and to rerun runs the host disturbed.
(
	max=0 count=0
	while :; do
		n=$(other_guests)
		[ "$n" -gt "$max" ] && max=$n
		[ "$n" -gt 0 ] && count=$((count + 1))
		echo "$n $count" > "$out/.host-state.tmp" && mv -f "$out/.host-state.tmp" "$out/.host-state"
		echo "$max $(cut -d' ' -f1 /proc/loadavg)" > "$out/.host-load"
		sleep 1
	done
) &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT

t0=$(date +%s)
selftests/run-guest --quiet --timeout "$timeout" --mem "$mem" --out "$out" \
	-e "BENCH_SIZE_MIB=$size" -e "BENCH_REPS=$reps" -e "BENCH_INFLIGHT=$inflight" \
	-e "BENCH_CLONE_TUNED=$clone_tuned" -e "BENCH_CONFIGS=$configs" \
	-e "BENCH_REGION=$region" -e "DMCLONE_KO=$clone_ko" \
	-e "BENCH_PARTS=$parts" -e "BENCH_MERGE_PCTS=$merge_pcts" \
	-e "BENCH_REV=$rev" -e "BENCH_HOST=$host" -e "BENCH_HOST_STATE=$out/.host-state" \
	-e "BENCH_STREAM_DEFAULT_INFLIGHT=$defmi" \
	-e "DMSTREAM_KO=$ko" "${fgenv[@]}" \
	-- bash bench/guest-bench.sh --out "$out"
rc=$?
kill $sampler 2>/dev/null
read -r busy load1 < "$out/.host-load" 2>/dev/null || busy=0
rm -f "$out/.host-load" "$out/.host-state" "$out/.host-state.tmp"
if [ -f "$out/env.txt" ]; then
	echo "host_busy: $busy other QEMU guest(s) at most during the bench; load average at the end $load1 (host has $(nproc) CPUs)" >> "$out/env.txt"
fi
echo "bench: guest finished with status $rc after $(( $(date +%s) - t0 )) s" >&2
# The guest's own log lines (stderr goes to the console).
grep -E '^(guest-bench|guest-fg|guest-merge|BENCH|BENCH-FG|BENCH-MERGE) ' "$out/console.log" >&2 || true

lines=0
for f in runs.csv fg.csv pwlat.csv nbd.csv thin.csv merge.csv; do
	[ -s "$out/$f" ] && lines=$((lines + $(wc -l < "$out/$f") - 1))
done
if [ ! -s "$out/runs.csv" ] || [ "$lines" -lt 1 ]; then
	echo "bench: no results (console: $out/console.log)" >&2
	exit 2
fi
python3 bench/summarize.py "$out" || exit 2
echo "bench: results in $out/results.md and $out/results.csv" >&2
case $rc in
0) exit 0 ;;
1) exit 1 ;;
*) exit 2 ;;
esac
