#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# common.sh - helpers for the dm-stream selftests (KTAP output, loop and dm
# devices with automatic cleanup, kernel log markers, test patterns).
#
# CALLING CONVENTION
#
#   #!/bin/bash
#   # SPDX-License-Identifier: GPL-2.0
#   . "$(dirname "$0")/common.sh"
#   require_module dm-stream          # skips the whole script (exit 4) if absent
#   ktap_plan 3
#   meta=$(make_loop 8)               # fine inside $(...): see below
#   ...
#   ktap_finish                       # exits 0, or 1 if anything failed
#
# - Source this file first thing, from bash. It creates $TEST_TMP (a fresh
#   directory under /tmp, a tmpfs in the guest), installs an EXIT trap and
#   writes the start marker "dm-stream selftest: start <script>" to the
#   kernel log. Do not install your own EXIT trap: add commands to the
#   cleanup with cleanup_add instead.
# - Do not `set -e`: a failed check must report and go on, not abort. `set -u`
#   is fine.
# - Cleanup registrations live in a file under $TEST_TMP, not in shell
#   variables, so make_loop, dm_create and cleanup_add work from subshells,
#   e.g. dev=$(make_loop 64). On exit, even a failing or killed one, the trap
#   kills the script's background jobs, then runs cleanup_add commands and
#   removes dm devices in reverse registration order (resume if suspended,
#   `dmsetup remove` with retries, --force last), then detaches the loop
#   devices, then deletes $TEST_TMP, then writes the end marker.
# - The ktap_* counters are shell variables: call ktap_* (and the checks of
#   stream_helpers.sh that report a result) from the script's main shell,
#   never inside $(...) or a pipeline, or the numbering breaks.
# - A setup step that fails: the environment's fault skips the script
#   (ktap_skip_all), a failure of our own setup fails it (ktap_bail); the
#   policy is spelled out at the top of stream_helpers.sh.
# - Functions that report through DM_ERR (dm_create, dm_reload, dm_remove)
#   set it in the caller's shell: call them directly, not in $(...).
#
# VARIABLES
#   TEST_NAME   script name without .sh        TEST_DIR   selftests/
#   REPO_ROOT   repository root                TEST_TMP   private scratch dir
#   TEST_OUT    writable output dir (selftests/out, shared with the host)
#               (TEST_OUT: used by the scripts)
#   DMSTREAM_KO the module to insmod (default $REPO_ROOT/dm-stream/dm-stream.ko)
#   DM_ERR      stderr of the last failed dmsetup call made by dm_* helpers
#
# FUNCTIONS
#   KTAP:    ktap_plan N | ktap_ok DESC | ktap_fail DESC [REASON] |
#            ktap_skip DESC REASON | ktap_check DESC CMD [ARGS...] |
#            ktap_diag MSG... | ktap_finish | ktap_skip_all REASON |
#            ktap_bail REASON
#   Needs:   require_cmd CMD... | require_module MOD...
#   Devices: make_loop [-b LBS] SIZE_MB [NAME]  (echoes /dev/loopN)
#            make_loop -v VAR [-b LBS] SIZE_MB [NAME]  (sets VAR, no subshell)
#            dm_create NAME TABLE | dm_remove NAME | dm_reload NAME TABLE |
#            dm_status NAME | dm_message NAME MSG... |
#            dm_dev NAME | dm_exists NAME | sectors DEV | cleanup_add CMD
#   Kernel:  kmsg MSG | dmesg_since_mark
#   Data:    pattern_file SEED SECTORS | dev_md5 DEV [SECTORS [OFFSET]]
#   Python:  dmst_py MODULE ARGS...  (python3 -m dmst.MODULE: the tests'
#            Python lives in the selftests/dmst package, never in heredocs)
#
# TABLE arguments are whole dmsetup table lines ("0 <len> <target> <args>");
# several targets: one line each, separated by newlines.

TEST_NAME=$(basename "$0" .sh)
TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=${DMSTREAM_ROOT:-$(cd "$TEST_DIR/.." && pwd -P)}
# shellcheck disable=SC2034 # used by the scripts
TEST_OUT=${DMSTREAM_OUT:-$REPO_ROOT/selftests/out}
DMSTREAM_KO=${DMSTREAM_KO:-$REPO_ROOT/dm-stream/dm-stream.ko}
DM_ERR=
export DM_DISABLE_UDEV=1

TEST_TMP=$(mktemp -d "/tmp/dmst-$TEST_NAME.XXXXXX") || {
	echo "# common.sh: cannot create a scratch directory" >&2
	exit 1
}
_CLEANUP_LIST=$TEST_TMP/.cleanup
: >"$_CLEANUP_LIST"

KTAP_PLAN=
KTAP_NUM=0
KTAP_PASS=0
KTAP_FAIL=0
KTAP_SKIP=0
_KTAP_HEADER=

# --- KTAP ------------------------------------------------------------------

_ktap_header()
{
	[[ -n $_KTAP_HEADER ]] && return
	_KTAP_HEADER=1
	echo "TAP version 13"
}

ktap_plan()
{
	_ktap_header
	KTAP_PLAN=$1
	echo "1..$1"
}

ktap_diag()
{
	local line

	while IFS= read -r line; do
		echo "# $line"
	done <<<"$*"
}

ktap_ok()
{
	KTAP_NUM=$((KTAP_NUM + 1))
	KTAP_PASS=$((KTAP_PASS + 1))
	echo "ok $KTAP_NUM $1"
}

ktap_fail()
{
	KTAP_NUM=$((KTAP_NUM + 1))
	KTAP_FAIL=$((KTAP_FAIL + 1))
	echo "not ok $KTAP_NUM $1"
	[[ $# -lt 2 || -z $2 ]] || ktap_diag "$2"
}

ktap_skip()
{
	KTAP_NUM=$((KTAP_NUM + 1))
	KTAP_SKIP=$((KTAP_SKIP + 1))
	echo "ok $KTAP_NUM $1 # SKIP $2"
}

# ktap_check DESC CMD [ARGS...]: ok when CMD exits 0. CMD runs in this shell
# (functions work); its output is shown only when it fails.
ktap_check()
{
	local desc=$1 rc=0 out=$TEST_TMP/.check.out

	shift
	"$@" >"$out" 2>&1 || rc=$?
	if [[ $rc -eq 0 ]]; then
		ktap_ok "$desc"
	else
		ktap_fail "$desc" "'$*' exited with status $rc"
		[[ -s $out ]] && ktap_diag "$(tail -n 20 "$out")"
	fi
	return $rc
}

ktap_finish()
{
	local rc=0

	echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL xfail:0 xpass:0 skip:$KTAP_SKIP error:0"
	if [[ -n $KTAP_PLAN && $KTAP_PLAN -ne $KTAP_NUM ]]; then
		echo "# Planned $KTAP_PLAN tests but ran $KTAP_NUM"
		rc=1
	fi
	[[ $KTAP_FAIL -eq 0 ]] || rc=1
	exit $rc
}

# Skip the whole script (exit 4). After ktap_plan, the remaining planned
# tests are reported as skipped and the exit status is 1 if any had failed.
ktap_skip_all()
{
	local reason=$1

	if [[ -z $KTAP_PLAN ]]; then
		_ktap_header
		echo "1..0 # SKIP $reason"
		exit 4
	fi
	while [[ $KTAP_NUM -lt $KTAP_PLAN ]]; do
		ktap_skip "not run" "$reason"
	done
	echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL xfail:0 xpass:0 skip:$KTAP_SKIP error:0"
	[[ $KTAP_FAIL -eq 0 ]] || exit 1
	exit 4
}

# ktap_bail REASON: a setup step of our own failed: every remaining planned
# test is reported failed ("not run", with REASON) and the script exits 1.
# Before ktap_plan, the script reports one failed test.
ktap_bail()
{
	if [[ -z $KTAP_PLAN || $KTAP_NUM -ge $KTAP_PLAN ]]; then
		[[ -n $KTAP_PLAN ]] || ktap_plan 1
		ktap_fail "setup" "$1"
	fi
	while [[ $KTAP_NUM -lt $KTAP_PLAN ]]; do
		ktap_fail "not run ($1)"
	done
	ktap_finish
}

# --- requirements ----------------------------------------------------------

require_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			ktap_skip_all "command not found: $c"
	done
}

# Loaded, or loadable with modprobe; dm-stream is insmod'ed from the tree.
require_module()
{
	local m sys

	for m in "$@"; do
		sys=${m//-/_}
		[[ -d /sys/module/$sys ]] && continue
		if [[ $sys == dm_stream ]]; then
			insmod "$DMSTREAM_KO" 2>/dev/null && continue
		else
			modprobe -q "$m" 2>/dev/null && continue
		fi
		ktap_skip_all "module not available: $m"
	done
}

# --- cleanup ---------------------------------------------------------------

_cleanup_register()
{
	printf '%s %s\n' "$1" "$2" >>"$_CLEANUP_LIST"
}

# cleanup_add CMD: run the shell command CMD (one line) at exit, in reverse
# order with the dm device removals.
cleanup_add()
{
	_cleanup_register cmd "$*"
}

_dm_remove_hard()
{
	local name=$1 try

	dm_exists "$name" || return 0
	dmsetup info -c --noheadings -o attr "$name" 2>/dev/null | grep -q s &&
		dmsetup resume "$name" >/dev/null 2>&1
	for ((try = 0; try < 10; try++)); do
		dmsetup remove "$name" >/dev/null 2>&1 && return 0
		dm_exists "$name" || return 0
		sleep 0.3
	done
	echo "# cleanup: dm device $name busy, removing with --force" >&2
	dmsetup remove --force "$name" >/dev/null 2>&1 && return 0
	echo "# cleanup: cannot remove dm device $name" >&2
	return 1
}

_cleanup_all()
{
	local rc=$? kind arg

	trap - EXIT
	set +e
	# Background jobs may hold the devices open.
	local pids

	mapfile -t pids < <(jobs -p)
	if [[ ${#pids[@]} -gt 0 ]]; then
		kill "${pids[@]}" 2>/dev/null
		sleep 0.2
		kill -9 "${pids[@]}" 2>/dev/null
	fi
	if [[ -f $_CLEANUP_LIST ]]; then
		while read -r kind arg; do
			case $kind in
			dm) _dm_remove_hard "$arg" ;;
			cmd) eval "$arg" ;;
			esac
		done < <(tac "$_CLEANUP_LIST")
		while read -r kind arg; do
			[[ $kind == loop ]] || continue
			losetup -d "$arg" 2>/dev/null
		done < <(tac "$_CLEANUP_LIST")
	fi
	rm -rf "$TEST_TMP"
	kmsg "dm-stream selftest: end $TEST_NAME (exit $rc)"
	exit $rc
}

trap _cleanup_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Python ----------------------------------------------------------------

# dmst_py MODULE ARGS...: python3 -m dmst.MODULE ARGS, with selftests/ on
# the module path.
dmst_py()
{
	PYTHONPATH=$TEST_DIR${PYTHONPATH:+:$PYTHONPATH} python3 -B -m "dmst.$1" "${@:2}"
}

# --- devices ---------------------------------------------------------------

sectors()
{
	blockdev --getsz "$1"
}

# make_loop [-b LBS] SIZE_MB [NAME] echoes the loop device; make_loop -v VAR
# ... stores it in VAR instead. The backing file is a sparse file in
# $TEST_TMP (tmpfs), so it reads back zeroes until written. With -b, the
# device has logical blocks of LBS bytes; it fails when losetup cannot.
make_loop()
{
	local var='' lbs='' size name file dev

	if [[ ${1:-} == -v ]]; then
		var=$2
		shift 2
	fi
	if [[ ${1:-} == -b ]]; then
		lbs=$2
		shift 2
	fi
	size=$1
	name=${2:-loop}
	file=$(mktemp "$TEST_TMP/$name.XXXXXX.img") || return 1
	truncate -s "${size}M" "$file" || return 1
	dev=$(losetup -f --show ${lbs:+--sector-size "$lbs"} "$file") || return 1
	_cleanup_register loop "$dev"
	[[ -z $lbs || $(blockdev --getss "$dev") == "$lbs" ]] || return 1
	if [[ -n $var ]]; then
		printf -v "$var" '%s' "$dev"
	else
		echo "$dev"
	fi
}

dm_dev()
{
	echo "/dev/mapper/$1"
}

dm_exists()
{
	dmsetup info "$1" >/dev/null 2>&1
}

# Without udev, dmsetup makes the node itself; make sure anyway.
_dm_node()
{
	[[ -b /dev/mapper/$1 ]] && return 0
	dmsetup mknodes "$1" >/dev/null 2>&1
	[[ -b /dev/mapper/$1 ]] && return 0
	DM_ERR="no /dev/mapper/$1 node after dmsetup mknodes"
	return 1
}

dm_create()
{
	local name=$1 table=$2 rc=0

	DM_ERR=$(printf '%s\n' "$table" | dmsetup create "$name" 2>&1 >/dev/null) ||
		rc=$?
	if [[ $rc -ne 0 ]]; then
		# dmsetup normally reverts a failed create; be sure.
		dm_exists "$name" && _dm_remove_hard "$name"
		return $rc
	fi
	_cleanup_register dm "$name"
	_dm_node "$name"
}

dm_remove()
{
	local name=$1 try

	for ((try = 0; try < 10; try++)); do
		DM_ERR=$(dmsetup remove "$name" 2>&1 >/dev/null) && return 0
		dm_exists "$name" || return 1
		sleep 0.3
	done
	return 1
}

# Load TABLE as the inactive table, then suspend and resume to swap it in.
dm_reload()
{
	local name=$1 table=$2

	DM_ERR=$(printf '%s\n' "$table" | dmsetup load "$name" 2>&1 >/dev/null) ||
		return
	DM_ERR=$(dmsetup suspend "$name" 2>&1 >/dev/null) || {
		dmsetup clear "$name" >/dev/null 2>&1
		return 1
	}
	# shellcheck disable=SC2034 # DM_ERR is read by the callers
	DM_ERR=$(dmsetup resume "$name" 2>&1 >/dev/null)
}

dm_status()
{
	local out

	out=$(dmsetup status "$1") || return
	printf '%s\n' "$out" | cut -d' ' -f4-
}

dm_message()
{
	local name=$1

	shift
	dmsetup message "$name" 0 "$@"
}

# --- kernel log ------------------------------------------------------------

# Userspace writes to /dev/kmsg are rate limited (10 per 5 s) by default,
# which would drop markers.
echo on >/proc/sys/kernel/printk_devkmsg 2>/dev/null

# kmsg MSG: write MSG to the kernel log; it becomes the mark for
# dmesg_since_mark.
kmsg()
{
	[[ -d $TEST_TMP ]] && printf '%s\n' "$*" >"$TEST_TMP/.kmsg_mark"
	printf '%s\n' "$*" >/dev/kmsg
}

# The kernel log after the last line holding the last kmsg() text.
dmesg_since_mark()
{
	local mark n

	mark=$(cat "$TEST_TMP/.kmsg_mark" 2>/dev/null) || mark=
	[[ -n $mark ]] || { dmesg; return; }
	n=$(dmesg | grep -nF -- "$mark" | tail -n 1 | cut -d: -f1)
	dmesg | tail -n +"$((${n:-0} + 1))"
}

# --- data patterns ---------------------------------------------------------
#
# Seeded streams of random bytes, kept in $TEST_TMP/.pattern.SEED and grown
# on demand: the same SEED gives the same bytes throughout one test script
# (not across scripts or boots), and a shorter stream is a prefix of a
# longer one. Block devices are read and written with O_DIRECT, so the page
# cache can hide nothing.

pattern_file()
{
	local seed=$1 bytes=$(($2 * 512)) f have

	f=$TEST_TMP/.pattern.$seed
	have=$(stat -c %s "$f" 2>/dev/null) || have=0
	if [[ $have -lt $bytes ]]; then
		head -c $((bytes - have)) /dev/urandom >>"$f" || return 1
	fi
	echo "$f"
}

# dev_md5 DEV [SECTORS [OFFSET]]: md5 of SECTORS (default: the rest of DEV)
# starting at sector OFFSET (default 0).
dev_md5()
{
	local dev=$1 off=${3:-0} n flags=count_bytes,skip_bytes

	# O_DIRECT for a block device; it fails on tmpfs files.
	[[ -b $dev ]] && flags=direct,$flags
	n=${2:-$(($(sectors "$dev") - off))}
	dd if="$dev" bs=1M count=$((n * 512)) skip=$((off * 512)) \
		iflag="$flags" status=none |
		md5sum | cut -d' ' -f1
}

kmsg "dm-stream selftest: start $TEST_NAME"
