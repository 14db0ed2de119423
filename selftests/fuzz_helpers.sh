# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the fuzz and soak selftests (test_fuzz_*.sh, test_soak_*.sh).
# Source after common.sh and stream_helpers.sh. Every function is prefixed
# fz_. The cases are generated and judged by the Python package fuzz/ (see
# fuzz/__init__.py); the scripts run them, with one process per dmsetup, dd
# or dmstream call and shell builtins for everything else, because every
# process costs about 0.2 s in the TCG guest.
#
# Environment:
#   DMSTREAM_FUZZ=full        full counts and durations (make fuzz); else a
#                             slice that fits `make check`
#   DMSTREAM_FUZZ_SEED=N      the seed (default: random, always printed)
#   DMSTREAM_FUZZ_COUNT=N     override every case count (e.g. to rerun a few)
#   DMSTREAM_FUZZ_FIRST=N     first case number (default 1): with the seed
#                             and a count of 1, reruns one case

# fz_init: FZ_FULL (1 or empty), FZ_SEED, FZ_FIRST; prints them.
fz_init()
{
	FZ_FULL=
	[[ ${DMSTREAM_FUZZ:-} == full ]] && FZ_FULL=1
	FZ_SEED=${DMSTREAM_FUZZ_SEED:-$SRANDOM}
	# shellcheck disable=SC2034 # used by the scripts
	FZ_FIRST=${DMSTREAM_FUZZ_FIRST:-1}
	local what="slice (DMSTREAM_FUZZ=full for the full counts)"
	[[ -n $FZ_FULL ]] && what="full counts"
	ktap_diag "seed $FZ_SEED, $what; rerun with DMSTREAM_FUZZ_SEED=$FZ_SEED"
}

# fz_count SLICE FULL: the case count for this run.
fz_count()
{
	if [[ -n ${DMSTREAM_FUZZ_COUNT:-} ]]; then
		echo "$DMSTREAM_FUZZ_COUNT"
	elif [[ -n $FZ_FULL ]]; then
		echo "$2"
	else
		echo "$1"
	fi
}

# fz_py ARGS...: the fuzz package (bytecode not written: the root may be
# read-only).
fz_py()
{
	PYTHONPATH=$TEST_DIR${PYTHONPATH:+:$PYTHONPATH} python3 -B -m fuzz "$@"
}

# fz_mark KIND N: the kernel log marker that opens case N (a builtin write).
fz_mark()
{
	printf 'dmst-fuzz: %s case %d\n' "$1" "$2" >/dev/kmsg
}

# fz_klog_start FILE: stream new kernel log lines to FILE until fz_klog_stop.
FZ_KLOG_PID=
fz_klog_start()
{
	FZ_KLOG_FILE=$1
	dmesg --follow-new >"$FZ_KLOG_FILE" 2>/dev/null &
	FZ_KLOG_PID=$!
	# dmesg must be reading before the first marker.
	local start=$SECONDS
	while [[ $((SECONDS - start)) -lt 120 ]]; do
		printf 'dmst-fuzz: klog start\n' >/dev/kmsg
		sleep 0.2
		grep -q 'dmst-fuzz: klog start' "$FZ_KLOG_FILE" && return 0
	done
	return 1
}

# fz_klog_stop: wait until everything logged so far is in the file, then
# stop the reader.
fz_klog_stop()
{
	local start=$SECONDS tag="dmst-fuzz: klog end $RANDOM"

	printf '%s\n' "$tag" >/dev/kmsg
	while [[ $((SECONDS - start)) -lt 120 ]]; do
		grep -qF -- "$tag" "$FZ_KLOG_FILE" && break
		sleep 0.2
	done
	[[ -n $FZ_KLOG_PID ]] && kill "$FZ_KLOG_PID" 2>/dev/null
	wait "$FZ_KLOG_PID" 2>/dev/null
	FZ_KLOG_PID=
}

# fz_exists NAME: a dm device NAME exists (builtins only: reads sysfs).
fz_exists()
{
	local f n
	for f in /sys/block/dm-*/dm/name; do
		[[ -r $f ]] || continue
		read -r n <"$f"
		[[ $n == "$1" ]] && return 0
	done
	return 1
}

# fz_remove NAME: dmsetup remove, retried a few times; status of the last try.
fz_remove()
{
	local i
	for i in 1 2 3; do
		dmsetup remove "$1" >/dev/null 2>&1 && return 0
		fz_exists "$1" || return 0
		sleep 0.2
	done
	return 1
}

# fz_case_end NAME RC: what a case left after its `dmsetup create NAME`
# exited with RC: FZ_STATUS, the device's status when it was created ("-"
# when not); FZ_RM, the exit status of its removal ("-"); FZ_LEFT, 1 when a
# device NAME is left behind, else 0.
# shellcheck disable=SC2034 # FZ_* are read by the scripts
fz_case_end()
{
	FZ_STATUS=- FZ_RM=-
	if [[ $2 -eq 0 ]]; then
		FZ_STATUS=$(dmsetup status "$1" 2>&1)
		fz_remove "$1"
		FZ_RM=$?
	fi
	FZ_LEFT=0
	fz_exists "$1" && FZ_LEFT=1
}

# fz_remove_prefix PREFIX: remove every dm device whose name starts with
# PREFIX (what the case loops may have left; registered with cleanup_add).
fz_remove_prefix()
{
	local f n
	for f in /sys/block/dm-*/dm/name; do
		[[ -r $f ]] || continue
		read -r n <"$f"
		[[ $n == "$1"* ]] && _dm_remove_hard "$n"
	done
	return 0
}

# fz_loop VAR BYTES NAME [SECTOR_SIZE]: a loop device over a sparse file of
# BYTES in $TEST_TMP (logical blocks of SECTOR_SIZE bytes, default 512),
# detached at exit. Its backing file is FZ_FILE[<device>]. Files up to
# 64 KiB are made without a process.
declare -gA FZ_FILE
FZ_NLOOP=0
fz_loop()
{
	local _fzl_file _fzl_dev _fzl_z

	FZ_NLOOP=$((FZ_NLOOP + 1))
	_fzl_file=$TEST_TMP/fzloop$FZ_NLOOP.$3.img
	if [[ $2 -le 65536 ]]; then
		printf -v _fzl_z '%*s' "$2" ''
		printf '%b' "${_fzl_z// /\\0}" >"$_fzl_file" || return 1
	else
		: >"$_fzl_file" && truncate -s "$2" "$_fzl_file" || return 1
	fi
	_fzl_dev=$(losetup -f --show ${4:+--sector-size "$4"} "$_fzl_file") || return 1
	cleanup_add "losetup -d $_fzl_dev"
	# shellcheck disable=SC2034 # read by the scripts
	FZ_FILE[$_fzl_dev]=$_fzl_file
	printf -v "$1" '%s' "$_fzl_dev"
}

# fz_put FILE ESCAPED: overwrite the start of FILE with the bytes that the
# file ESCAPED spells in printf %b escapes (one line), without a process.
# FILE is a loop device's backing file: the loop device (buffered, over
# tmpfs) reads the same page cache, so the kernel sees the bytes at once.
fz_put()
{
	local data
	read -r data <"$2" || return 1
	printf '%b' "$data" 1<>"$1"
}

# fz_blank FILE: zero the first 4 KiB of a loop device's backing file (a
# blank metadata device), without a process.
FZ_ZERO4K=
fz_blank()
{
	[[ -n $FZ_ZERO4K ]] || FZ_ZERO4K=$(printf '\\0%.0s' {1..4096})
	printf '%b' "$FZ_ZERO4K" 1<>"$1"
}

# fz_inventory FILE ROLE NAME DEV KIND: append a device line for fuzz/devices.py
# (role name path major:minor sectors lbs kind aliases), read from sysfs
# without a process. DEV is /dev/<kernel name> or /dev/mapper/<dm name>.
fz_inventory()
{
	local file=$1 role=$2 name=$3 dev=$4 kind=$5 kname='' alias='' f n devt size lbs

	if [[ $dev == /dev/mapper/* ]]; then
		for f in /sys/block/dm-*/dm/name; do
			read -r n <"$f" || continue
			[[ $n == "${dev#/dev/mapper/}" ]] || continue
			kname=${f#/sys/block/}
			kname=${kname%%/*}
			alias=/dev/$kname
			break
		done
	else
		kname=${dev#/dev/}
	fi
	[[ -n $kname && -d /sys/block/$kname ]] || return 1
	read -r devt <"/sys/block/$kname/dev" &&
	read -r size <"/sys/block/$kname/size" &&
	read -r lbs <"/sys/block/$kname/queue/logical_block_size" || return 1
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$role" "$name" "$dev" "$devt" \
		"$size" "$lbs" "$kind" "$alias" >>"$file"
}

# fz_total FILE KEY: a number from the "... totals: key=N ..." line of a judge.
fz_total()
{
	sed -n "s/.* totals: .*\\b$2=\\([0-9]*\\).*/\\1/p" "$1" | tail -n 1
}

# fz_judged OUT RC N WHAT MATCHES: the first two results of a judge's run
# (its output in OUT, exit status RC): "WHAT: N ... run" when the judge
# counted N cases, and "WHAT: every verdict and MATCHES matches the model".
fz_judged()
{
	local out=$1 rc=$2 n=$3 what=$4 cases mism

	cases=$(fz_total "$out" cases)
	mism=$(fz_total "$out" mismatches)
	if [[ ${cases:-0} -eq $n ]]; then
		ktap_ok "$what run (seed $FZ_SEED)"
	else
		ktap_fail "$what run (seed $FZ_SEED)" "${cases:-no} cases judged"
	fi
	if [[ $rc -eq 0 && $mism == 0 ]]; then
		ktap_ok "${what%%:*}: every verdict and $5 matches the model"
	else
		ktap_fail "${what%%:*}: every verdict and $5 matches the model" \
			"$mism mismatches (judge exit $rc)"
	fi
}

# fz_show FILE: a judge's output as KTAP diagnostics (it prints '# ' lines).
fz_show()
{
	local line
	while IFS= read -r line; do
		[[ $line == "#"* ]] && echo "$line" || echo "# $line"
	done <"$1"
}

# fz_hex_words HEX...: decode words written by fuzz/message.py (each word
# '=' followed by its bytes in hex) into the array FZ_WORDS.
fz_hex_words()
{
	local h s i
	FZ_WORDS=()
	for h in "$@"; do
		h=${h#=}
		s=
		for ((i = 0; i < ${#h}; i += 2)); do
			s+="\\x${h:i:2}"
		done
		printf -v s '%b' "$s"
		FZ_WORDS+=("$s")
	done
}
