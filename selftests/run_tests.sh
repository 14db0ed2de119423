#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run_tests.sh - run the dm-stream selftests (KTAP) and check the kernel log.
#
# Usage:
#   selftests/run_tests.sh [--timeout SEC] [--mem SIZE] [--kernel FILE
#       --modules DIR] [--append ARGS] [-e VAR=VALUE]... [TEST...]   (host)
#   selftests/run_tests.sh [--dir DIR] [--out DIR] [--no-load] [--single-boot]
#       [TEST...]                                                  (guest)
#
# On the host (DMSTREAM_GUEST unset) it boots the guest once with
# selftests/run-guest and runs itself there; its options are run-guest's:
# overall guest timeout (default 3600 s), RAM, another kernel and its
# modules, kernel arguments, variables exported to the tests.
# DMSTREAM_STRESS_CYCLES and DMSTREAM_TIMEOUT_SCALE are passed on when set.
# `make check [T=name]` and `make fuzz` call it this way; `make check
# KERNEL=debug` with the debug kernel of scripts/debug-kernel.sh,
# DMSTREAM_KO set to the module built for it and DMSTREAM_TIMEOUT_SCALE=4.
#
# In the guest it:
#   1. loads dm-mod dm-bufio libcrc32c loop dm-flakey dm-delay dm-log-writes
#      ext4 and insmods $DMSTREAM_KO (default dm-stream/dm-stream.ko), unless
#      --no-load: reported as the top-level test "setup" (2 subtests);
#   2. runs each TEST (a name like test_module_01, with or without .sh;
#      default: every DIR/test_*.sh, sorted) with bash, from a copy of
#      selftests/ and of the module taken when the run starts (so edits and
#      rebuilds during a run do not leak into it), under the per-test
#      timeout from DIR/settings (`timeout=SEC`, default 600) times
#      $DMSTREAM_TIMEOUT_SCALE (default 1; the variable
#      DMSTREAM_TEST_TIMEOUT replaces the product), its output indented as
#      a KTAP subtest;
#   3. on a kernel with kmemleak (the debug kernel), unless --no-load:
#      removes the dm devices left, unloads dm-stream, scans for leaks
#      (twice, 5 s apart) and reports every unreferenced object allocated
#      since the run started as a failed subtest of the top-level test
#      "kmemleak" (frames in dm-stream named from its symbols, saved before
#      the unload, by kmemleak.py); one more subtest for the unload;
#   4. scans the kernel log written since its own start marker for BUG:,
#      WARNING:, Oops, KASAN:, UBSAN:, lockdep reports (circular or
#      recursive locking, inconsistent lock state), sleeping in atomic
#      context, ODEBUG, hung tasks, list corruption and the like: the
#      top-level test "kernel log", one failed subtest per offending line
#      (lines a test declared as injected on purpose, see
#      DMSTREAM_KLOG_ALLOW, are skipped);
#   5. prints as its last line `N passed, M failed` (`, K skipped` appended
#      when K > 0) and exits 0 only when M is 0.
#
# Counting: N, M and K count subtests, i.e. each `ok`/`not ok` line of the
# test scripts plus the runner's own checks above (setup: 2, kmemleak: 2
# when clean, kernel log: 1 when clean). A script that prints `1..0 # SKIP`
# (exit 4) counts as one skipped; a script that times out, exits non-zero
# without reporting a failure, or reports fewer results than its plan gets
# one failure more.
#
# Files (--out, default $DMSTREAM_OUT or selftests/out): dmesg.log (the whole
# guest kernel log, streamed while the tests run, so it survives a hang),
# summary (the last line), tally (running counts, read by the host side when
# the guest dies). The console log level is lowered to 1 during the run, so
# expected kernel errors do not interleave with the KTAP output.
#
# Environment for the tests: DMSTREAM_KO, DMSTREAM_OUT, and
# DMSTREAM_KLOG_ALLOW: a file; a test that writes a kernel log line on
# purpose appends a fixed string unique to that line to it. Also, when set
# on the host: DMSTREAM_STRESS_CYCLES (test_stress_01).
#
# --dir and --out let a test run this driver on fixtures (test_runner_01).
#
# Tests that need several boots (test_reboot_01): a script declares, in a
# comment line of its first 40 lines,
#   # dmstream-boots: N          (2..9)
#   # dmstream-disk: NAME SIZE_MB  (repeatable; NAME of 1-15 [a-z0-9])
# The host side leaves such tests out of the main guest run (the guest side's
# --single-boot) and runs each after it in N boots of its own, over raw
# images <out>/<test>/disks/NAME.img (created sparse before boot 1) attached
# as virtio-blk disks with serial dmst-NAME (boot_helpers.sh: bt_disk NAME).
# Boot b runs the guest side on that test alone with DMSTREAM_BOOT=b,
# DMSTREAM_BOOTS=N, DMSTREAM_STATE=<out>/<test>/state (kept across boots)
# and --out <out>/<test>/boot<b> (the test's log is written there as it runs,
# not only at the end). Every boot but the last must end in the test's
# bt_crash (an immediate reset, no sync: the guest's page cache and every
# in-core state are lost); the host then counts that boot's subtests from
# the log, one subtest for "boot b ended in the power-off" and the kernel
# log lines of that boot (as in 4.). The last boot ends normally and its
# summary is added. The console of each boot is <out>/<test>/boot<b>/
# console.log. When a boot skips (exit 4), the later boots are not run.
# The last line, `N passed, M failed`, and <out>/summary add up the main
# run and every boot.

set -u

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
SELFTESTS=$(dirname "$SELF")
REPO=$(dirname "$SELFTESTS")

# Reports of kernel bugs; our own markers are excluded (they name tests).
# The debug kernel's checkers: KASAN ("BUG: KASAN: use-after-free in ..."),
# lockdep ("WARNING: possible circular locking dependency detected",
# "possible recursive locking", "inconsistent lock state"),
# DEBUG_ATOMIC_SLEEP ("BUG: sleeping function called from invalid context"),
# debug objects ("ODEBUG: free active ..."), hung tasks ("INFO: task ...
# blocked for more than 120 seconds"), DEBUG_LIST ("list_add corruption").
KLOG_BAD='BUG:|WARNING:|Oops|KASAN:|UBSAN:|possible circular locking|possible recursive locking|inconsistent lock state|sleeping function called from invalid context|ODEBUG:|lockdep|hung task|blocked for more than|unreferenced object|general protection fault|Kernel panic|detected stalls? on CPU|list_(add|del) corruption'

summary_line()
{
	local s="$1 passed, $2 failed"

	[[ $3 -eq 0 ]] || s+=", $3 skipped"
	echo "$s"
}

# --- host side ---------------------------------------------------------------

# boots_of FILE: N when the test FILE declares "# dmstream-boots: N".
boots_of()
{
	[[ -f $1 ]] || return 0
	sed -n '1,40s/^# dmstream-boots: \([2-9]\)$/\1/p' "$1" | head -n 1
}

# add_summary FILE: add "N passed, M failed[, K skipped]" to the totals.
add_summary()
{
	local p f s

	read -r p _ f _ s _ <<<"$(tr -d ',' <"$1")"
	TPASS=$((TPASS + ${p:-0}))
	TFAIL=$((TFAIL + ${f:-0}))
	TSKIP=$((TSKIP + ${s:-0}))
}

# main_run: one guest for every single-boot test (${single[@]}); its
# summary line is added to the totals.
main_run()
{
	local rc pass fail skip why f

	"$SELFTESTS/run-guest" --out "$out" "${guest_opts[@]+"${guest_opts[@]}"}" -- \
		selftests/run_tests.sh "${single[@]+"${single[@]}"}"
	rc=$?
	if [[ -s $out/summary ]]; then
		add_summary "$out/summary"
		return $rc
	fi

	# The guest died before the runner finished: count what was done.
	read -r pass fail skip 2>/dev/null <"$out/tally" || { pass=0 fail=0 skip=0; }
	case $rc in
	124) why="timed out" ;;
	125) why="stopped without an exit status (kernel panic?)" ;;
	*) why="ended with status $rc before the runner finished" ;;
	esac
	echo "not ok - guest $why"
	for f in "$out/dmesg.log" "$out/console.log"; do
		[[ -s $f ]] || continue
		echo "# last lines of $f:"
		tail -n 30 "$f" | sed 's/^/# /'
		break
	done
	summary_line "$pass" $((fail + 1)) "$skip" | tee "$out/summary"
	add_summary "$out/summary"
	[[ $rc -ne 0 ]] || rc=1
	return $rc
}

# crashed_boot NAME BOOT BDIR RC: judge boot BOOT (not the last) of test
# NAME, which must have ended in the test's bt_crash: adds to the totals;
# returns 1 when the later boots must not run.
crashed_boot()
{
	local name=$1 b=$2 bdir=$3 rc=$4 log=$3/$1.log klog p f s bad line

	p=$(grep -cE '^ok [0-9]+' "$log" 2>/dev/null)
	s=$(grep -ciE '^ok [0-9]+[^#]*#[[:space:]]*skip' "$log" 2>/dev/null)
	f=$(grep -cE '^not ok [0-9]+' "$log" 2>/dev/null)
	TPASS=$((TPASS + ${p:-0} - ${s:-0}))
	TFAIL=$((TFAIL + ${f:-0}))
	TSKIP=$((TSKIP + ${s:-0}))
	if grep -q '^1\.\.0 # SKIP' "$log" 2>/dev/null; then
		echo "# $name: boot $b skipped: the later boots are not run"
		TSKIP=$((TSKIP + 1))
		return 1
	fi
	# The kernel log of the crashed boot: bt_crash saved it just before.
	klog=$bdir/dmesg-at-crash.log
	[[ -s $klog ]] || klog=$bdir/dmesg.log
	# From the boot's runner mark on, as for the main guest: the boot
	# banner of a debug kernel says "RCU lockdep checking is enabled".
	bad=$(sed -n '/dm-stream runner: start /,$p' "$klog" 2>/dev/null |
		grep -E -- "$KLOG_BAD" | grep -vE 'dm-stream (selftest|runner): ')
	if [[ -z $bad ]]; then
		echo "ok - $name: boot $b kernel log clean"
		TPASS=$((TPASS + 1))
	else
		while IFS= read -r line; do
			echo "not ok - $name: boot $b kernel log clean"
			echo "# $line"
			TFAIL=$((TFAIL + 1))
		done <<<"$bad"
	fi
	if grep -q '^# dmstream-boot: power off$' "$log" 2>/dev/null && [[ $rc -eq 125 ]]; then
		echo "ok - $name: boot $b ended in its power-off"
		TPASS=$((TPASS + 1))
		return 0
	fi
	echo "not ok - $name: boot $b did not end in bt_crash (run-guest status $rc)"
	tail -n 20 "$bdir/console.log" 2>/dev/null | sed 's/^/# /'
	TFAIL=$((TFAIL + 1))
	return 1
}

# multi_boot_run NAME: the boots of test NAME over its disks (header above).
multi_boot_run()
{
	local name=$1 t=$SELFTESTS/$1.sh boots tdir disks=() d mb b bdir rc

	boots=$(boots_of "$t")
	tdir=$out/$name
	rm -rf "$tdir"
	mkdir -p "$tdir/disks" "$tdir/state" || return 1
	while read -r d mb; do
		if [[ ! $d =~ ^[a-z0-9]{1,15}$ || ! $mb =~ ^[1-9][0-9]{0,5}$ ]]; then
			echo "not ok - $name: bad line '# dmstream-disk: $d $mb'"
			TFAIL=$((TFAIL + 1))
			return 1
		fi
		truncate -s "${mb}M" "$tdir/disks/$d.img" || return 1
		disks+=(--disk "$tdir/disks/$d.img:dmst-$d")
	done < <(sed -n '1,40s/^# dmstream-disk: //p' "$t")

	for ((b = 1; b <= boots; b++)); do
		bdir=$tdir/boot$b
		mkdir -p "$bdir"
		echo "# $name: boot $b of $boots"
		SECONDS=0
		"$SELFTESTS/run-guest" --out "$tdir" "${guest_opts[@]+"${guest_opts[@]}"}" \
			"${disks[@]+"${disks[@]}"}" -e DMSTREAM_BOOT=$b \
			-e DMSTREAM_BOOTS="$boots" -e DMSTREAM_STATE="$tdir/state" -- \
			selftests/run_tests.sh --out "$bdir" "$name"
		rc=$?
		mv -f "$tdir/console.log" "$bdir/console.log" 2>/dev/null
		echo "# $name: boot $b took $SECONDS s (run-guest status $rc)"
		if [[ $b -lt $boots ]]; then
			crashed_boot "$name" "$b" "$bdir" "$rc" || break
		elif [[ -s $bdir/summary ]]; then
			add_summary "$bdir/summary"
		else
			echo "not ok - $name: boot $b stopped before its summary (run-guest status $rc)"
			tail -n 20 "$bdir/console.log" 2>/dev/null | sed 's/^/# /'
			TFAIL=$((TFAIL + 1))
		fi
	done
	return 0
}

if [[ -z ${DMSTREAM_GUEST:-} ]]; then
	guest_opts=()
	args=()
	raw=()
	while [[ $# -gt 0 ]]; do
		case $1 in
		--timeout|--mem|--kernel|--modules|--append|-e)
			guest_opts+=("$1" "${2:?}"); shift 2 ;;
		*) args+=("$(printf '%q' "$1")"); raw+=("$1"); shift ;;
		esac
	done
	# Knobs passed on when set on the host: the cycles of test_stress_01,
	# the factor on the per-test timeout (KERNEL=debug sets it).
	for v in DMSTREAM_STRESS_CYCLES DMSTREAM_TIMEOUT_SCALE; do
		[[ -z ${!v:-} ]] || guest_opts+=(-e "$v=${!v}")
	done
	out=${DMSTREAM_OUT:-$REPO/selftests/out}
	mkdir -p "$out" && out=$(cd "$out" && pwd -P) || exit 2
	# Hold the output directory from before the guest starts until its
	# results are read (run-guest sees DMSTREAM_OUT_LOCKED and does not
	# lock again).
	exec 9>"$out/.run-guest.lock"
	if ! flock -n 9; then
		echo "run_tests.sh: waiting for another guest using $out" >&2
		flock 9
	fi
	export DMSTREAM_OUT_LOCKED=$out
	rm -f "$out/summary" "$out/tally" "$out/dmesg.log"

	# Tests declaring several boots run after the main guest run, each in
	# boots of its own (see the header).
	single=()
	multi=()
	named=
	for i in "${!raw[@]}"; do
		case ${raw[$i]} in
		-*) single+=("${args[$i]}"); continue ;;
		esac
		named=1
		n=$(basename "${raw[$i]}" .sh)
		if [[ -n $(boots_of "$SELFTESTS/$n.sh") ]]; then
			multi+=("$n")
		else
			single+=("${args[$i]}")
		fi
	done
	if [[ -z $named ]]; then
		for t in "$SELFTESTS"/test_*.sh; do
			[[ -n $(boots_of "$t") ]] && multi+=("$(basename "$t" .sh)")
		done
		single+=(--single-boot)
	fi

	TPASS=0 TFAIL=0 TSKIP=0
	rc=0
	if [[ -z $named || ${#single[@]} -gt 0 ]]; then
		main_run
		rc=$?
	fi
	for n in "${multi[@]+"${multi[@]}"}"; do
		multi_boot_run "$n" || rc=1
	done
	if [[ ${#multi[@]} -gt 0 ]]; then
		summary_line "$TPASS" "$TFAIL" "$TSKIP" | tee "$out/summary"
	fi
	[[ $TFAIL -eq 0 ]] || [[ $rc -ne 0 ]] || rc=1
	exit $rc
fi

# --- guest side --------------------------------------------------------------

dir=$SELFTESTS
out=${DMSTREAM_OUT:-$REPO/selftests/out}
load=1
single_boot=
names=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--dir) dir=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--no-load) load=; shift ;;
	--single-boot) single_boot=1; shift ;;
	# host options, nothing to do here
	--timeout|--mem|--kernel|--modules|--append|-e) shift 2 ;;
	-h|--help) sed -n '3,/^$/s/^# \{0,1\}//p' "$SELF"; exit 0 ;;
	*) names+=("$1"); shift ;;
	esac
done
dir=$(cd "$dir" && pwd -P) || exit 2
mkdir -p "$out" || exit 2
export DMSTREAM_OUT=$out
export DMSTREAM_KO=${DMSTREAM_KO:-$REPO/dm-stream/dm-stream.ko}
export DM_DISABLE_UDEV=1

work=$(mktemp -d /tmp/dmst-runner.XXXXXX) || exit 2
export DMSTREAM_KLOG_ALLOW=$work/klog-allow
: >"$DMSTREAM_KLOG_ALLOW"

# Run a copy of selftests/ and of the module taken now: the working tree may
# be edited or rebuilt while a long run goes on, and bash reads a script as
# it runs it. A nested run (test_runner_01) already runs from the copy.
shown_dir=$dir
if [[ -z ${DMSTREAM_SNAPSHOT:-} && $dir/ == "$SELFTESTS"/* ]]; then
	mkdir "$work/selftests" &&
	tar -C "$SELFTESTS" --exclude=./out --exclude=__pycache__ -cf - . |
		tar -C "$work/selftests" -xf - &&
	dir=$work/selftests${dir#"$SELFTESTS"} &&
	export DMSTREAM_SNAPSHOT=$work/selftests
fi
if [[ -n $load && -f $DMSTREAM_KO ]] && cp "$DMSTREAM_KO" "$work/dm-stream.ko"; then
	DMSTREAM_KO=$work/dm-stream.ko
fi

echo on >/proc/sys/kernel/printk_devkmsg 2>/dev/null
RUN_ID=$$-$RANDOM
MARK="dm-stream runner: start $RUN_ID"
echo "$MARK" >/dev/kmsg

# Stream the kernel log to the output directory, so it survives a hang.
dmesg --follow >"$out/dmesg.log" 2>/dev/null &
follower=$!
saved_loglevel=$(awk '{ print $1 }' /proc/sys/kernel/printk)
dmesg -n 1

cleanup()
{
	kill "$follower" 2>/dev/null
	wait "$follower" 2>/dev/null
	dmesg -n "$saved_loglevel"
	rm -rf "$work"
}
trap cleanup EXIT

test_timeout=600
if [[ -f $dir/settings ]]; then
	t=$(sed -n 's/^timeout=\([0-9][0-9]*\)$/\1/p' "$dir/settings")
	[[ -z $t ]] || test_timeout=$t
fi
if [[ ${DMSTREAM_TIMEOUT_SCALE:-1} =~ ^[1-9][0-9]*$ ]]; then
	test_timeout=$((test_timeout * ${DMSTREAM_TIMEOUT_SCALE:-1}))
fi
[[ ${DMSTREAM_TEST_TIMEOUT:-} =~ ^[0-9]+$ ]] && test_timeout=$DMSTREAM_TEST_TIMEOUT

tests=()
if [[ ${#names[@]} -eq 0 ]]; then
	for t in "$dir"/test_*.sh; do
		[[ -f $t ]] || continue
		# The host side runs these in boots of their own.
		[[ -n $single_boot && -n $(boots_of "$t") ]] && continue
		tests+=("$t")
	done
else
	for n in "${names[@]}"; do
		n=$(basename "$n" .sh)
		tests+=("$dir/$n.sh")
	done
fi

PASS=0
FAIL=0
SKIP=0
TOP=0

tally()
{
	echo "$PASS $FAIL $SKIP" >"$out/tally"
}

indent()
{
	sed -u 's/^/    /'
}

# --- kmemleak, before the tests ---------------------------------------------------

# Only on a kernel with kmemleak (make check KERNEL=debug), and not in the
# nested run of test_runner_01 (--no-load), which must leave it alone.
KMEMLEAK=/sys/kernel/debug/kmemleak
kmemleak=
if [[ -n $load ]]; then
	[[ -e $KMEMLEAK ]] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[[ -e $KMEMLEAK ]] && kmemleak=1
fi

dm_devices()
{
	dmsetup ls 2>/dev/null | awk '$1 != "No" { printf "%s ", $1 }'
}

# kmemleak reports an object once two scans in a row found it unreferenced
# and unchanged (the first scan only records its checksum), and only when it
# is over 5 s old: two scans with a pause, as Documentation/dev-tools/
# kmemleak.rst advises against transient false positives.
kmemleak_scan()
{
	echo scan >"$KMEMLEAK" 2>"$work/kmemleak.err" &&
		sleep 5 &&
		echo scan >"$KMEMLEAK" 2>"$work/kmemleak.err"
}

echo "TAP version 13"
echo "1..$((${#tests[@]} + 1 + ${load:-0} + ${kmemleak:-0}))"
echo "# dm-stream selftests: kernel $(uname -r), $(nproc) CPUs, tests from $shown_dir"

# Whatever the boot (or anything before this run) left unreferenced is not
# the tests' doing. kmemleak records the jiffies of every allocation: note
# the jiffies now, and the final report leaves out older objects. (The
# other way, two scans now and "clear", which marks what they reported as
# seen, costs two minutes under TCG; a "clear" alone would not do, as it
# skips objects no scan has reported yet, and none has run: the debug
# kernel has no kmemleak auto scan.)
if [[ -n $kmemleak ]]; then
	start_jiffies=$(awk '$1 == "jiffies:" { print $2; exit }' /proc/timer_list 2>/dev/null)
	echo "# kmemleak: objects allocated from jiffies ${start_jiffies:-0} on are counted"
fi

# --- setup ---------------------------------------------------------------------

if [[ -n $load ]]; then
	echo "# setup"
	{
		echo "TAP version 13"
		echo "1..2"
		mods="dm-mod dm-bufio libcrc32c loop dm-flakey dm-delay dm-log-writes ext4"
		bad=
		for m in $mods; do
			modprobe "$m" 2>"$work/modprobe.err" || bad+=" $m"
		done
		if [[ -z $bad ]]; then
			echo "ok 1 load kernel modules"
		else
			echo "not ok 1 load kernel modules"
			echo "# modprobe failed:$bad"
			sed 's/^/# /' "$work/modprobe.err"
		fi
		if [[ -d /sys/module/dm_stream ]]; then
			echo "ok 2 insmod dm-stream.ko # already loaded"
		elif err=$(insmod "$DMSTREAM_KO" 2>&1); then
			echo "ok 2 insmod dm-stream.ko"
		else
			echo "not ok 2 insmod dm-stream.ko"
			echo "# $err"
			echo "# vermagic: $(modinfo -F vermagic "$DMSTREAM_KO" 2>&1), kernel: $(uname -r)"
		fi
	} >"$work/setup.log"
	indent <"$work/setup.log"
	p=$(grep -c '^ok ' "$work/setup.log")
	f=$(grep -c '^not ok ' "$work/setup.log")
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
	TOP=$((TOP + 1))
	if [[ $f -eq 0 ]]; then
		echo "ok $TOP setup"
	else
		echo "not ok $TOP setup"
	fi
	tally
fi

# --- tests ---------------------------------------------------------------------

for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log=$work/$name.log
	# A boot of a multi-boot test may end in a crash: its log goes straight
	# to the shared output directory, which the host reads afterwards.
	if [[ -n ${DMSTREAM_BOOT:-} ]]; then
		log=$out/$name.log
		export DMSTREAM_BOOT_LOG=$log
	fi
	TOP=$((TOP + 1))
	echo "# $name"
	if [[ ! -f $t ]]; then
		echo "not ok $TOP $name # no such test: $t"
		FAIL=$((FAIL + 1))
		tally
		continue
	fi
	start=$SECONDS
	(cd "$dir" && timeout -k 30 "$test_timeout" bash "$t" 2>&1) |
		tee "$log" | indent
	rc=${PIPESTATUS[0]}
	secs=$((SECONDS - start))

	f=$(grep -cE '^not ok [0-9]+' "$log")
	s=$(grep -ciE '^ok [0-9]+[^#]*#[[:space:]]*skip' "$log")
	p=$(($(grep -cE '^ok [0-9]+' "$log") - s))
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
	why=
	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		why="timed out after $test_timeout s"
	elif [[ $rc -eq 4 && $((p + f + s)) -eq 0 ]]; then
		s=1
	elif [[ $rc -ne 0 && $rc -ne 4 && $f -eq 0 ]]; then
		why="exited with status $rc"
	elif [[ $rc -eq 0 && -n $plan && $plan -ne $((p + f + s)) ]]; then
		why="planned $plan tests, reported $((p + f + s))"
	elif [[ -z $plan && $((p + f + s)) -eq 0 ]]; then
		why="no KTAP output (exit status $rc)"
	fi
	if [[ -n $why ]]; then
		echo "    # runner: $name $why"
		f=$((f + 1))
	fi
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
	SKIP=$((SKIP + s))
	echo "# $name: $p passed, $f failed, $s skipped in $secs s"
	if [[ $f -gt 0 ]]; then
		echo "not ok $TOP $name"
	elif [[ $p -eq 0 && $s -gt 0 ]]; then
		echo "ok $TOP $name # SKIP"
	else
		echo "ok $TOP $name"
	fi
	tally
done

# --- kmemleak, after the tests ----------------------------------------------------

# Remove what the tests left behind and unload dm-stream, so that memory it
# frees only on removal or at module exit is not counted, then scan. Every
# unreferenced object is one failed subtest; frames in dm-stream are named
# from its symbols, saved before the unload (the kernel cannot name them
# after it).
if [[ -n $kmemleak ]]; then
	TOP=$((TOP + 1))
	echo "# kmemleak"
	start=$SECONDS
	{
		echo "TAP version 13"
		left=$(dm_devices)
		dmsetup remove_all >/dev/null 2>&1
		grep '\[dm_stream\]' /proc/kallsyms >"$work/kallsyms" 2>/dev/null
		err=
		if [[ -n $(dm_devices) ]]; then
			err="dm devices remain: $(dm_devices)"
		elif [[ -d /sys/module/dm_stream ]]; then
			err=$(rmmod dm_stream 2>&1)
		fi
		n=0
		if kmemleak_scan; then
			cat "$KMEMLEAK" >"$work/kmemleak.txt"
			python3 "$SELFTESTS/kmemleak.py" --since "${start_jiffies:-0}" \
				2 "$work/kmemleak.txt" "$work/kallsyms" >"$work/kmemleak.tap"
			n=$(grep -c '^not ok ' "$work/kmemleak.tap")
		fi
		echo "1..$((1 + (n > 0 ? n : 1)))"
		if [[ -z $err ]]; then
			echo "ok 1 remove dm devices, rmmod dm-stream"
		else
			echo "not ok 1 remove dm devices, rmmod dm-stream"
			echo "# $err"
		fi
		[[ -z $left ]] || echo "# dm devices the tests left behind: $left"
		if [[ ! -f $work/kmemleak.txt ]]; then
			echo "not ok 2 kmemleak scan"
			echo "# $(cat "$work/kmemleak.err"): kmemleak is off (see the boot log)"
		else
			[[ $n -gt 0 ]] || echo "ok 2 no unreferenced objects"
			cat "$work/kmemleak.tap"
		fi
		echo "# kmemleak: $((SECONDS - start)) s"
	} >"$work/kmemleak.log"
	indent <"$work/kmemleak.log"
	p=$(grep -c '^ok ' "$work/kmemleak.log")
	f=$(grep -c '^not ok ' "$work/kmemleak.log")
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
	if [[ $f -eq 0 ]]; then
		echo "ok $TOP kmemleak"
	else
		echo "not ok $TOP kmemleak"
	fi
	tally
fi

# --- kernel log ----------------------------------------------------------------

TOP=$((TOP + 1))
echo "# kernel log"
dmesg >"$work/dmesg.all"
n=$(grep -nF -- "$MARK" "$work/dmesg.all" | tail -n 1 | cut -d: -f1)
tail -n +"${n:-1}" "$work/dmesg.all" |
	awk -v bad="$KLOG_BAD" -v allow="$DMSTREAM_KLOG_ALLOW" '
	BEGIN { while ((getline a < allow) > 0) if (a != "") ok[a] = 1 }
	/dm-stream selftest: start / { t = $NF }
	/dm-stream (selftest|runner): / { next }
	$0 ~ bad {
		for (a in ok)
			if (index($0, a))
				next
		print t "\t" $0
	}' >"$work/klog.bad"
bad=$(wc -l <"$work/klog.bad")
{
	echo "TAP version 13"
	if [[ $bad -eq 0 ]]; then
		echo "1..1"
		echo "ok 1 kernel log clean"
	else
		echo "1..$bad"
		i=0
		while IFS=$'\t' read -r during line; do
			i=$((i + 1))
			echo "not ok $i kernel log clean"
			echo "# ${during:-before the first test}: $line"
		done <"$work/klog.bad"
	fi
} | indent
if [[ $bad -eq 0 ]]; then
	PASS=$((PASS + 1))
	echo "ok $TOP kernel log"
else
	FAIL=$((FAIL + bad))
	echo "not ok $TOP kernel log"
fi
tally

if [[ $FAIL -gt 0 ]]; then
	echo "# kernel log tail (all of it: $out/dmesg.log):"
	tail -n +"${n:-1}" "$work/dmesg.all" | tail -n 40 | sed 's/^/# /'
fi
# Replace the streamed copy with the complete log.
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
cp "$work/dmesg.all" "$out/dmesg.log"

summary_line "$PASS" "$FAIL" "$SKIP" | tee "$out/summary"
[[ $FAIL -eq 0 ]]
