# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# stream_helpers.sh - the dm-stream helper layer of the selftests, on top of
# common.sh (KTAP, loop and dm devices, cleanup). Source it after common.sh:
#
#   . "$(dirname "$0")/common.sh"
#   . "$(dirname "$0")/stream_helpers.sh"
#   require_cmd ...                         # what the test needs beyond
#   sh_start N [MODULE...]                  # dm-stream and the helpers
#   sh_stream_loops 8 1                     # sets ORIG, DEST, META
#   sh_setup dm_create s "0 $(sectors "$ORIG") stream $META $DEST $ORIG 128"
#
# Every function is prefixed sh_; one function per behaviour. Assertions
# are common.sh's ktap_* (ktap_check, ktap_ok/ktap_fail); sh_ctr_fail and
# sh_msg_fail are the two checks that report a KTAP result themselves.
#
# SETUP-FAILURE POLICY (every test script follows it):
# - The environment's fault -- a module, a command, a kernel feature, a loop
#   device, a file system the guest lacks -- skips the whole script (exit 4)
#   with the reason: require_cmd, require_module, sh_start,
#   sh_require_stream, sh_stream_loops, or
#   `make_loop ... || ktap_skip_all "REASON"`.
# - A setup step of our own making that fails -- a dm table that should
#   load (stream, linear, delay, flakey, error...), a reload, a helper of
#   ours -- is a failure, never a skip: sh_setup CMD... (or
#   `ktap_check DESC CMD... || ktap_bail REASON` when the step is a subtest
#   of its own) reports every remaining planned subtest as failed and exits
#   1 (ktap_bail, common.sh).
# - A later step that cannot run because an earlier assertion failed is a
#   ktap_fail of its own, with the reason, not a skip. ktap_skip is only for
#   what cannot be observed in this run (e.g. no copy in flight on a slow
#   host), always with the reason.
#
# Status fields (Documentation, "Status"; sh_field NAME N):
#   1 <md block size> 2 <used>/<total md blocks> 3 <region size>
#   4 <copied>/<total regions> 5 <regions copying> 6 <state> 7 <mode>
#   8 <copy errors> 9 <mirror> 10 <#opt args> 11.. <opt args>; or the single
#   word "Fail".
# Data is read and written with O_DIRECT on block devices, so that no page
# cache of a loop device (written behind its back by the target) or of the
# dm device can hide what is really on the disk.

# ---- requirements and setup ---------------------------------------------------

# sh_require_stream: skip the script (exit 4) unless dm-stream is loaded or
# can be, and the commands of these helpers (dmsetup, dd, md5sum, blockdev,
# python3, timeout) are there: dm-stream's dependencies (modinfo) are modprobe'd
# first, as insmod does not resolve them, and loop devices are needed too.
sh_require_stream()
{
	local deps=

	if [[ ! -d /sys/module/dm_stream && -f $DMSTREAM_KO ]]; then
		deps=$(modinfo -F depends "$DMSTREAM_KO" 2>/dev/null | tr ',' ' ')
	fi
	# shellcheck disable=SC2086 # a list of modules
	require_module loop dm-mod $deps dm-stream
	require_cmd dmsetup dd md5sum blockdev python3 timeout
}

# sh_start PLAN [MODULE...]: the start of a dm-stream test, after its own
# require_cmd: sh_require_stream, require_module MODULE..., ktap_plan PLAN.
sh_start()
{
	sh_require_stream
	require_module "${@:2}"
	ktap_plan "$1"
}

# sh_setup CMD [ARGS...]: run one setup step of our own making (a dm_create
# of a table that must load, a dm_reload, ...); when it fails, bail out: the
# remaining planned subtests fail (policy above). CMD runs in this shell.
sh_setup()
{
	"$@" && return 0
	ktap_bail "setup failed: $*${DM_ERR:+ ($DM_ERR)}"
}

# sh_stream_loops SIZE_MB META_MB: the three loop devices of a stream
# target: ORIG and DEST of SIZE_MB, META of META_MB; the origin holds
# random bytes, destination and metadata read zeroes. Skips the script when a loop device cannot be made.
sh_stream_loops()
{
	# shellcheck disable=SC2034 # DEST and META are the caller's
	if ! ORIG=$(make_loop "$1" orig) || ! DEST=$(make_loop "$1" dest) ||
	   ! META=$(make_loop "$2" meta); then
		ktap_skip_all "cannot set up a loop device"
	fi
	sh_fill_random "$ORIG"
}

# sh_stream_over_linear_meta NAME MNAME MDEV "ARGS": a dm-linear device
# MNAME over all of MDEV, and the stream target NAME with MNAME as its
# metadata device: "0 <len> stream /dev/mapper/MNAME ARGS", where ARGS
# starts with the destination and the origin (whose size is the target's).
sh_stream_over_linear_meta()
{
	local args=$4 origin

	read -r _ origin _ <<<"$args"
	dm_create "$2" "0 $(sectors "$3") linear $3 0" &&
		dm_create "$1" "0 $(sectors "$origin") stream $(dm_dev "$2") $args"
}

# sh_tmpfile: a fresh file under common.sh's $TEST_TMP (removed at exit).
sh_tmpfile()
{
	mktemp "$TEST_TMP/sh.XXXXXX"
}

# ---- status and table ---------------------------------------------------------

# sh_table NAME: the whole table line ("0 <len> stream <args>").
sh_table()
{
	dmsetup table "$1"
}

# sh_field NAME N: the Nth word (1-based) of the target's status info.
sh_field()
{
	local words

	read -r -a words <<<"$(dm_status "$1")"
	echo "${words[$(($2 - 1))]}"
}

# sh_copied NAME: regions copied.
sh_copied()
{
	local f

	f=$(sh_field "$1" 4)
	echo "${f%%/*}"
}

# sh_total NAME: regions in the target.
sh_total()
{
	local f

	f=$(sh_field "$1" 4)
	echo "${f##*/}"
}

# sh_copying NAME: regions being copied now.
sh_copying()
{
	sh_field "$1" 5
}

# sh_state NAME: paused, streaming or complete.
sh_state()
{
	sh_field "$1" 6
}

# sh_mode NAME: rw, ro, or fail (the status is the single word "Fail").
sh_mode()
{
	local words

	read -r -a words <<<"$(dm_status "$1")"
	if [[ ${words[0]:-} == Fail ]]; then
		echo fail
	else
		echo "${words[6]:-}"
	fi
}

# sh_copy_errors NAME: the copy error count.
sh_copy_errors()
{
	sh_field "$1" 8
}

# sh_opt_args NAME: "<#opt args> <opt args>*" from the status.
sh_opt_args()
{
	local words

	read -r -a words <<<"$(dm_status "$1")"
	echo "${words[*]:9}"
}

# sh_mirror NAME: mirror, one-way or degraded.
sh_mirror()
{
	sh_field "$1" 9
}

# sh_opt_ok "COUNT WORD...": the opt-arg group is well formed (count equals
# the number of words following it).
sh_opt_ok()
{
	local words

	read -r -a words <<<"$1"
	[[ ${#words[@]} -ge 1 && ${words[0]} == "$((${#words[@]} - 1))" ]]
}

# sh_has_pair "WORDS" KEY VALUE: KEY is immediately followed by VALUE.
sh_has_pair()
{
	local words i

	read -r -a words <<<"$1"
	for ((i = 0; i + 1 < ${#words[@]}; i++)); do
		[[ ${words[i]} == "$2" && ${words[i + 1]} == "$3" ]] && return 0
	done
	return 1
}

# sh_has_word "WORDS" WORD: WORD is one of WORDS.
sh_has_word()
{
	local w

	for w in $1; do
		[[ $w == "$2" ]] && return 0
	done
	return 1
}

# sh_event_nr NAME: the device's dm event counter.
sh_event_nr()
{
	dmsetup info -c --noheadings -o events "$1" | tr -d ' '
}

# ---- waiting ------------------------------------------------------------------
#
# Every timeout is a bound for a broken test, never a timing the test
# relies on.

# sh_now_ms: milliseconds since the epoch (no process).
sh_now_ms()
{
	local t=${EPOCHREALTIME/[.,]/}

	echo $((t / 1000))
}

# sh_wait_for TIMEOUT_S CMD [ARGS...]: run CMD every 0.2 s until it
# succeeds (0) or TIMEOUT_S seconds have passed (1).
sh_wait_for()
{
	local end=$(($(sh_now_ms) + $1 * 1000))

	shift
	while :; do
		"$@" && return 0
		[[ $(sh_now_ms) -ge $end ]] && return 1
		sleep 0.2
	done
}

_sh_state_is()
{
	[[ $(sh_state "$1") == "$2" ]]
}

# sh_wait_state NAME STATE TIMEOUT_S: 0 when NAME reaches STATE in time.
sh_wait_state()
{
	sh_wait_for "$3" _sh_state_is "$1" "$2"
}

_sh_copied_ge()
{
	local c

	c=$(sh_copied "$1")
	[[ -n $c && $c -ge $2 ]]
}

# sh_wait_copied_ge NAME N TIMEOUT_S: 0 when NAME has N regions copied.
sh_wait_copied_ge()
{
	sh_wait_for "$3" _sh_copied_ge "$1" "$2"
}

# sh_not_running PID: the process has ended.
sh_not_running()
{
	! kill -0 "$1" 2>/dev/null
}

# ---- a writer with verifiable content (dmst.writer) ---------------------------

# sh_writer_start DEV IMG OFF LEN: dmst.writer in the background on DEV within
# bytes [OFF, OFF+LEN), IMG being a copy of DEV's content now (the writer
# applies every acknowledged write to it); SH_WRITER is its pid.
sh_writer_start()
{
	rm -f "$TEST_TMP/sh.stop" "$TEST_TMP/sh.count"
	dmst_py writer "$1" "$2" "$3" "$4" "$TEST_TMP/sh.stop" "$TEST_TMP/sh.count" \
		>"$TEST_TMP/sh.writer.out" 2>&1 &
	SH_WRITER=$!
}

# sh_writes: the writes acknowledged so far.
sh_writes()
{
	local n

	n=$(cat "$TEST_TMP/sh.count" 2>/dev/null)
	echo "${n:-0}"
}

_sh_writes_ge()
{
	[[ $(sh_writes) -ge $1 ]]
}

# sh_writer_more N: wait (a 120 s bound for a broken test) until N more
# writes are acknowledged.
sh_writer_more()
{
	sh_wait_for 120 _sh_writes_ge $(($(sh_writes) + $1))
}

# sh_writer_stop: stop it; SH_WRITER_RC, SH_WRITER_OUT.
sh_writer_stop()
{
	touch "$TEST_TMP/sh.stop"
	wait "$SH_WRITER"
	# shellcheck disable=SC2034 # read by the callers
	SH_WRITER_RC=$?
	# shellcheck disable=SC2034 # read by the callers
	SH_WRITER_OUT=$(cat "$TEST_TMP/sh.writer.out")
}

# ---- block devices ------------------------------------------------------------

# sh_devt DEV: "major:minor" of a block device node.
sh_devt()
{
	local d

	d=$(readlink -f "$1")
	printf '%d:%d\n' "0x$(stat -c %t "$d")" "0x$(stat -c %T "$d")"
}

# sh_sysfs DEV: the sysfs directory of a block device node (works for loop
# devices and for dm nodes, which are plain nodes without udev).
sh_sysfs()
{
	echo "/sys/dev/block/$(sh_devt "$1")"
}

# sh_stat DEV FIELD: field FIELD (1-based) of the block device's I/O
# statistics: 1 reads, 5 writes completed, 7 sectors written, 16 flushes
# completed...
sh_stat()
{
	awk -v f="$2" '{ print $f }' "$(sh_sysfs "$1")/stat"
}

# sh_flush DEV: a REQ_PREFLUSH on a block device (an fsync of the node
# opened O_RDWR issues blkdev_issue_flush); python's exit status.
sh_flush()
{
	dmst_py devio flush "$1"
}

# sh_discard DEV OFFSET_BYTES LEN_BYTES: BLKDISCARD, and nothing else
# (blkdiscard probes the device for signatures first, which reads it).
sh_discard()
{
	dmst_py devio discard "$@"
}

# sh_write_flush_probe DEV STAT_DEV LEN_BYTES PRIMER_OFFSET OFFSET
# One process: an O_DIRECT write of LEN random bytes at PRIMER_OFFSET and a
# fsync (so a commit has just happened and the periodic timer is not due),
# then at once an O_DIRECT write at OFFSET and a fsync of DEV (a flush).
# Prints the writes-completed counter of block device STAT_DEV before the
# second write, between it and its flush, and after the flush.
sh_write_flush_probe()
{
	dmst_py devio write-flush-probe "$1" "$(sh_sysfs "$2")/stat" "$3" "$4" "$5"
}

# ---- data ---------------------------------------------------------------------

# sh_read DEV [BYTES [OFFSET_BYTES]]: the bytes of a device (O_DIRECT) or
# file on stdout; all from OFFSET when BYTES is empty. For a device, BYTES
# and OFFSET must be multiples of its logical block size.
sh_read()
{
	local dev=$1 bytes=${2:-} off=${3:-0} flags=skip_bytes

	[[ -b $dev ]] && flags=direct,$flags
	if [[ -z $bytes ]]; then
		dd if="$dev" bs=1M iflag="$flags" skip="$off" status=none
	else
		dd if="$dev" bs=1M iflag="$flags",count_bytes \
			skip="$off" count="$bytes" status=none
	fi
}

# sh_md5 DEV [BYTES [OFFSET_BYTES]]: md5 of (part of) a device or file.
sh_md5()
{
	sh_read "$@" | md5sum | cut -d' ' -f1
}

# sh_region_md5 DEV REGION REGION_SECTORS [NREGIONS]: md5 of NREGIONS
# (default 1) whole regions from REGION on.
sh_region_md5()
{
	sh_md5 "$1" $((${4:-1} * $3 * 512)) $(($2 * $3 * 512))
}

# sh_region_same A B REGION REGION_SECTORS [NREGIONS]: 0 when A and B hold
# the same bytes in those regions (md5 of each; sh_wait_for can poll it).
sh_region_same()
{
	[[ $(sh_region_md5 "$1" "$3" "$4" "${5:-1}") == "$(sh_region_md5 "$2" "$3" "$4" "${5:-1}")" ]]
}

# sh_zero_md5 BYTES: md5 of BYTES zero bytes.
sh_zero_md5()
{
	head -c "$1" /dev/zero | md5sum | cut -d' ' -f1
}

# sh_cmp A B [BYTES]: byte-for-byte comparison of two devices or files
# (O_DIRECT for block devices). Prints cmp's first difference on failure.
sh_cmp()
{
	local a=$1 b=$2 bytes=${3:-} fa fb rc

	fa=$(sh_tmpfile) && fb=$(sh_tmpfile) || return 2
	sh_read "$a" "$bytes" >"$fa" && sh_read "$b" "$bytes" >"$fb" || return 2
	cmp -- "$fa" "$fb"
	rc=$?
	rm -f "$fa" "$fb"
	return $rc
}

# sh_regions_diff FILE_A FILE_B REGION_BYTES [REGION...]: the indices of the
# regions (of REGION_BYTES; the last one may be partial) whose bytes differ
# between two files, space separated, ascending. With REGION arguments only
# those regions are compared.
sh_regions_diff()
{
	dmst_py devio regions-diff "$@"
}

# _sh_mb DEV [MB]: MB, or the size of DEV in MiB.
_sh_mb()
{
	echo "${2:-$(($(blockdev --getsize64 "$1") / 1048576))}"
}

# sh_fill_random DEV [MB]: random bytes over the first MB MiB (all of DEV
# when MB is empty).
sh_fill_random()
{
	dd if=/dev/urandom of="$1" bs=1M count="$(_sh_mb "$@")" iflag=fullblock \
		oflag=direct status=none
}

# sh_fill_byte DEV OCTAL_BYTE [MB]: DEV filled with one byte value, e.g. 245
# for 0xa5 ("\245").
sh_fill_byte()
{
	tr '\000' "\\$2" </dev/zero | dd of="$1" bs=1M count="$(_sh_mb "$1" "${3:-}")" \
		iflag=fullblock oflag=direct status=none
}

# sh_zero DEV [MB]: zero DEV (whole device by default).
sh_zero()
{
	dd if=/dev/zero of="$1" bs=1M count="$(_sh_mb "$@")" oflag=direct status=none
}

# sh_write_at DEV SRC_FILE OFFSET_SECTORS [BS]: write SRC_FILE onto DEV at a
# sector offset with O_DIRECT, in blocks of BS bytes (default 4096; SRC_FILE
# size must be a multiple of BS).
sh_write_at()
{
	local bs=${4:-4096}

	dd if="$2" of="$1" bs="$bs" seek="$(($3 * 512 / bs))" oflag=direct \
		conv=notrunc status=none
}

# sh_write_region DEV REGION REGION_SECTORS SRC [fsync]: an O_DIRECT write
# of one whole region, taken from SRC at the same offset (/dev/urandom and
# /dev/zero: from their start). With "fsync" a flush follows.
sh_write_region()
{
	local dev=$1 r=$2 bs=$(($3 * 512)) src=$4 extra=() skip=()

	[[ ${5:-} == fsync ]] && extra=(conv=fsync)
	[[ $src == /dev/urandom || $src == /dev/zero ]] || skip=(skip="$r")
	dd if="$src" of="$dev" bs=$bs count=1 "${skip[@]}" seek="$r" \
		oflag=direct "${extra[@]}" status=none
}

# sh_patch_file FILE SRC_FILE OFFSET_SECTORS: the same write applied to an
# image file (the expected content).
sh_patch_file()
{
	dd if="$2" of="$1" bs=512 seek="$3" conv=notrunc status=none
}

# ---- checks -------------------------------------------------------------------

# sh_dmesg_has REGEX: dmesg since the last mark matches the extended regex.
sh_dmesg_has()
{
	dmesg_since_mark | grep -Eq -- "$1"
}

# sh_ctr_fail DESC TABLE [REGEX]: one KTAP result. `dmsetup create` of
# TABLE (one line per target) must fail, leave no device behind, and the
# kernel log must carry the constructor's error, "device-mapper: table:
# M:N: stream: <error>", whose text matches the extended REGEX
# (case-insensitive) when one is given. Sets DM_ERR to dmsetup's stderr:
# call it from the script's main shell.
SH_CTR_FAIL_N=0
sh_ctr_fail()
{
	local desc=$1 table=$2 re=${3:-.} name log

	SH_CTR_FAIL_N=$((SH_CTR_FAIL_N + 1))
	name=dmst-ctrfail-$$-$SH_CTR_FAIL_N
	kmsg "dm-stream selftest: $TEST_NAME: sh_ctr_fail $SH_CTR_FAIL_N: $desc"
	if DM_ERR=$(printf '%s\n' "$table" | dmsetup create "$name" 2>&1 >/dev/null); then
		_dm_remove_hard "$name"
		ktap_fail "$desc" "table accepted: $table"
		return 1
	fi
	if dm_exists "$name"; then
		_dm_remove_hard "$name"
		ktap_fail "$desc" "refused, but device $name left behind"
		return 1
	fi
	log=$(dmesg_since_mark |
		grep -E 'device-mapper: table: [0-9]+:[0-9]+: stream: .' |
		sed 's/.*device-mapper: table: [0-9]*:[0-9]*: stream: //')
	if [[ -z $log ]]; then
		ktap_fail "$desc" "refused, but no 'stream:' table error in dmesg"
		ktap_diag "dmsetup: $DM_ERR"
		return 1
	fi
	if ! grep -Eiq -- "$re" <<<"$log"; then
		ktap_fail "$desc" "error '$log' does not match /$re/"
		ktap_diag "other stream lines: $(dmesg_since_mark |
			grep -E 'stream' | grep -v 'device-mapper: table:' |
			sed 's/^\[[ 0-9.]*\] //')"
		return 1
	fi
	ktap_ok "$desc ($(head -n 1 <<<"$log"))"
}

# sh_msg_fail DESC NAME WORD...: one KTAP result. "dmsetup message -- NAME 0
# WORD..." must fail and log a "device-mapper: stream: " error. The "--"
# keeps dmsetup from taking a word such as "-1" for one of its options.
SH_MSG_FAIL_N=0
sh_msg_fail()
{
	local desc=$1 name=$2 log

	shift 2
	SH_MSG_FAIL_N=$((SH_MSG_FAIL_N + 1))
	kmsg "dm-stream selftest: $TEST_NAME: sh_msg_fail $SH_MSG_FAIL_N: $desc"
	if timeout 10 dmsetup message -- "$name" 0 "$@" >/dev/null 2>&1; then
		ktap_fail "$desc" "message '$*' accepted"
		return 1
	fi
	log=$(dmesg_since_mark | grep -E 'device-mapper: stream: .' |
		sed 's/.*device-mapper: stream: //')
	if [[ -z $log ]]; then
		ktap_fail "$desc" "refused, but no 'device-mapper: stream:' error in dmesg"
		return 1
	fi
	ktap_ok "$desc ($(head -n 1 <<<"$log"))"
}

# ---- tables -------------------------------------------------------------------

# sh_failing_table DEV: a table over all of DEV that fails every write and
# flush. (The "error" target fails writes, but a flush to a device with
# only "error" succeeds: such a device has no write cache, so the block
# layer completes flushes without sending them.)
sh_failing_table()
{
	echo "0 $(sectors "$1") flakey $1 0 0 1 1 error_writes"
}

# ---- gates: hold bios deterministically --------------------------------------
#
# A gate is a dm-delay device over DEV that holds the bios of some classes
# (r: reads, w: writes, f: flushes) for ten minutes. dm-delay's status
# counts the bios it holds per class, so a test can wait until a bio is
# really held; a suspend (which dm-delay's presuspend turns into "issue
# every held bio now") releases them. No test then depends on timing.

SH_GATE_HOLD_MS=600000

# sh_gate_table DEV HOLD [FLUSH_DEV]: the table line of a gate over DEV that
# holds the classes in HOLD (a string of r, w, f; "" holds nothing). Flushes
# go to FLUSH_DEV when given (to fail them separately), else to DEV.
sh_gate_table()
{
	local dev=$1 hold=$2 fdev=${3:-$1} r=0 w=0 f=0

	[[ $hold == *r* ]] && r=$SH_GATE_HOLD_MS
	[[ $hold == *w* ]] && w=$SH_GATE_HOLD_MS
	[[ $hold == *f* ]] && f=$SH_GATE_HOLD_MS
	echo "0 $(sectors "$dev") delay $dev 0 $r $dev 0 $w $fdev 0 $f"
}

# A gate that holds something is opened at exit before the devices created
# until then are removed (cleanup runs in reverse order).
_sh_gate_cleanup()
{
	[[ -z $3 ]] || cleanup_add "sh_gate_set $1 $2 '' ${4:-}"
}

# sh_gate NAME DEV HOLD [FLUSH_DEV]: create the gate /dev/mapper/NAME.
sh_gate()
{
	dm_create "$1" "$(sh_gate_table "$2" "$3" "${4:-}")" &&
		_sh_gate_cleanup "$@"
}

# sh_gate_set NAME DEV HOLD [FLUSH_DEV]: swap in a gate table holding HOLD
# (bios held so far are issued by the swap's suspend).
sh_gate_set()
{
	dm_reload "$1" "$(sh_gate_table "$2" "$3" "${4:-}")" &&
		_sh_gate_cleanup "$@"
}

# sh_gate_held NAME CLASS: bios held now in CLASS (r, w or f).
sh_gate_held()
{
	local words

	read -r -a words <<<"$(dm_status "$1")"
	case $2 in
	r) echo "${words[0]}" ;;
	w) echo "${words[1]}" ;;
	f) echo "${words[2]}" ;;
	esac
}

# sh_gate_wait NAME CLASS N [TIMEOUT_S]: wait until at least N bios are held
# in CLASS (default timeout 60 s, a bound for a broken test, not a timing).
sh_gate_wait()
{
	local i n

	for ((i = 0; i < ${4:-60} * 10; i++)); do
		n=$(sh_gate_held "$1" "$2")
		[[ -n $n && $n -ge $3 ]] && return 0
		sleep 0.1
	done
	return 1
}

# sh_gate_release NAME: issue every held bio now; the gate keeps holding
# later ones, except those that arrive while it suspends (dm-delay lets
# them through): to hold the bio that follows a released one, hold it at
# another gate.
sh_gate_release()
{
	dmsetup suspend "$1" && dmsetup resume "$1"
}

# _sh_tree PID: PID and its descendants (a function run with & is a subshell
# whose child does the work).
_sh_tree()
{
	local c

	echo "$1"
	for c in $(pgrep -P "$1"); do
		_sh_tree "$c"
	done
}

# sh_wait_stack PID FUNCTION: wait until FUNCTION (a grep pattern) is in the
# kernel stack (/proc/P/stack) of PID or of one of its descendants, e.g. a
# dmsetup suspend in stream_postsuspend; a 60 s bound for a broken test.
# Fails when PID ends first.
sh_wait_stack()
{
	local i p

	for ((i = 0; i < 600; i++)); do
		for p in $(_sh_tree "$1"); do
			grep -q "$2" "/proc/$p/stack" 2>/dev/null && return 0
		done
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
