# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# dm-stream specific helpers for the selftests. Source after common.sh:
#
#   . "$(dirname "$0")/common.sh"
#   . "$(dirname "$0")/stream_helpers.sh"
#
# Every function is prefixed sh_. Status fields (spec, "Status"):
#   1 <md block size> 2 <used>/<total md blocks> 3 <region size>
#   4 <copied>/<total regions> 5 <regions copying> 6 <state> 7 <mode>
#   8 <copy errors> 9 <#opt args> 10.. <opt args>
# Data is always read and written with O_DIRECT, so that no page cache of a
# loop device (written behind its back by the target) or of the dm device can
# hide what is really on the disk.

# sh_require_stream: skip the script (exit 4) unless dm-stream is loaded or
# can be: its dependencies (modinfo) are modprobe'd first, as insmod does
# not resolve them, and loop devices are needed too.
sh_require_stream()
{
	local deps=

	if [ ! -d /sys/module/dm_stream ] && [ -f "$DMSTREAM_KO" ]; then
		deps=$(modinfo -F depends "$DMSTREAM_KO" 2>/dev/null | tr ',' ' ')
	fi
	# shellcheck disable=SC2086 # a list of modules
	require_module loop dm-mod $deps dm-stream
}

# sh_table NAME: the whole table line ("0 <len> stream <args>").
sh_table()
{
	dmsetup table "$1"
}

# sh_make_loop_4k SIZE_MB VAR: a loop device with 4096-byte logical blocks
# in VAR (tmpfs-backed, detached at exit). Fails when losetup cannot.
sh_make_loop_4k()
{
	local file dev

	file=$(mktemp "$TEST_TMP/loop4k.XXXXXX.img") || return 1
	truncate -s "${1}M" "$file" || return 1
	dev=$(losetup -f --show --sector-size 4096 "$file" 2>/dev/null) || return 1
	cleanup_add "losetup -d $dev"
	[ "$(blockdev --getss "$dev")" = 4096 ] || return 1
	printf -v "$2" '%s' "$dev"
}

# sh_field NAME N: the Nth word (1-based) of the target's status info.
sh_field()
{
	local words
	read -r -a words <<<"$(dm_status "$1")"
	echo "${words[$(($2 - 1))]}"
}

# sh_copied NAME: regions copied. sh_total NAME: regions in the target.
sh_copied()	{ local f; f=$(sh_field "$1" 4); echo "${f%%/*}"; }
sh_total()	{ local f; f=$(sh_field "$1" 4); echo "${f##*/}"; }
sh_copying()	{ sh_field "$1" 5; }
sh_state()	{ sh_field "$1" 6; }
sh_mode()	{ sh_field "$1" 7; }
sh_copy_errors() { sh_field "$1" 8; }

# sh_opt_args NAME: "<#opt args> <opt args>*" from the status.
sh_opt_args()
{
	local words
	read -r -a words <<<"$(dm_status "$1")"
	echo "${words[*]:8}"
}

# sh_opt_ok "COUNT WORD..." : the opt-arg group is well formed (count equals
# the number of words following it).
sh_opt_ok()
{
	local words
	read -r -a words <<<"$1"
	[ "${#words[@]}" -ge 1 ] && [ "${words[0]}" = "$((${#words[@]} - 1))" ]
}

# sh_has_pair "WORDS" KEY VALUE: KEY is immediately followed by VALUE in WORDS.
sh_has_pair()
{
	local words i
	read -r -a words <<<"$1"
	for ((i = 0; i + 1 < ${#words[@]}; i++)); do
		[ "${words[i]}" = "$2" ] && [ "${words[i + 1]}" = "$3" ] && return 0
	done
	return 1
}

# sh_has_word "WORDS" WORD
sh_has_word()
{
	local w
	for w in $1; do
		[ "$w" = "$2" ] && return 0
	done
	return 1
}

# sh_wait_state NAME STATE TIMEOUT_S: poll once a second; 0 when reached.
sh_wait_state()
{
	local i
	for ((i = 0; i <= $3; i++)); do
		[ "$(sh_state "$1")" = "$2" ] && return 0
		sleep 1
	done
	return 1
}

# sh_wait_copied_ge NAME N TIMEOUT_S
sh_wait_copied_ge()
{
	local i c
	for ((i = 0; i <= $3; i++)); do
		c=$(sh_copied "$1")
		[ -n "$c" ] && [ "$c" -ge "$2" ] && return 0
		sleep 1
	done
	return 1
}

# sh_event_nr NAME: the device's dm event counter.
sh_event_nr()
{
	dmsetup info -c --noheadings -o events "$1" | tr -d ' '
}

# sh_devt DEV: "major:minor" of a block device node.
sh_devt()
{
	local d
	d=$(readlink -f "$1")
	printf '%d:%d\n' "0x$(stat -c %t "$d")" "0x$(stat -c %T "$d")"
}

# sh_stat DEV FIELD: field FIELD (1-based) of the block device's I/O
# statistics (/sys/dev/block/MAJ:MIN/stat): 1 reads, 5 writes, 7 sectors
# written, 16 flushes completed... Works for loop devices and for dm nodes
# (which are plain nodes, not symlinks, without udev).
sh_stat()
{
	awk -v f="$2" '{ print $f }' "/sys/dev/block/$(sh_devt "$1")/stat"
}

# sh_lbs DEV: logical block size in bytes.
sh_lbs()	{ blockdev --getss "$1"; }

# sh_read DEV [BYTES [OFFSET_BYTES]]: the device's bytes on stdout (O_DIRECT).
# BYTES and OFFSET must be multiples of 512; whole device when BYTES is empty.
sh_read()
{
	local dev=$1 bytes=${2:-} off=${3:-0}
	if [ -z "$bytes" ]; then
		dd if="$dev" bs=1M iflag=direct,skip_bytes skip="$off" status=none
	else
		dd if="$dev" bs=1M iflag=direct,skip_bytes,count_bytes \
			skip="$off" count="$bytes" status=none
	fi
}

# sh_md5 DEV [BYTES [OFFSET_BYTES]]: md5 of (part of) a device, O_DIRECT.
sh_md5()
{
	sh_read "$@" | md5sum | cut -d' ' -f1
}

# sh_file_md5 FILE [BYTES [OFFSET_BYTES]]
sh_file_md5()
{
	local f=$1 bytes=${2:-} off=${3:-0}
	if [ -z "$bytes" ]; then
		dd if="$f" bs=1M iflag=skip_bytes skip="$off" status=none
	else
		dd if="$f" bs=1M iflag=skip_bytes,count_bytes skip="$off" \
			count="$bytes" status=none
	fi | md5sum | cut -d' ' -f1
}

# sh_cmp A B [BYTES]: byte-for-byte comparison of two devices or files
# (O_DIRECT for block devices). Prints cmp's first difference on failure.
sh_cmp()
{
	local a=$1 b=$2 bytes=${3:-} fa fb rc
	fa=$(sh_tmpfile) && fb=$(sh_tmpfile) || return 2
	_sh_dump "$a" "$bytes" >"$fa" && _sh_dump "$b" "$bytes" >"$fb" || return 2
	cmp -- "$fa" "$fb"
	rc=$?
	rm -f "$fa" "$fb"
	return $rc
}

_sh_dump()
{
	if [ -b "$1" ]; then
		sh_read "$1" "$2"
	elif [ -n "$2" ]; then
		head -c "$2" "$1"
	else
		cat "$1"
	fi
}

# sh_tmpfile: a fresh file under common.sh's $TEST_TMP (removed at exit).
sh_tmpfile()
{
	mktemp "$TEST_TMP/sh.XXXXXX"
}

# sh_fill_random DEV [MB]: random bytes over the first MB MiB (all of DEV
# when MB is empty).
sh_fill_random()
{
	local mb=${2:-$(($(blockdev --getsize64 "$1") / 1048576))}
	dd if=/dev/urandom of="$1" bs=1M count="$mb" iflag=fullblock \
		oflag=direct status=none
}

# sh_fill_byte DEV OCTAL_BYTE [MB]: DEV filled with one byte value, e.g. 245
# for 0xa5 ("\245").
sh_fill_byte()
{
	local mb=${3:-$(($(blockdev --getsize64 "$1") / 1048576))}
	tr '\000' "\\$2" </dev/zero |
		dd of="$1" bs=1M count="$mb" iflag=fullblock oflag=direct status=none
}

# sh_zero DEV [MB]: zero DEV (whole device by default).
sh_zero()
{
	local mb=${2:-$(($(blockdev --getsize64 "$1") / 1048576))}
	dd if=/dev/zero of="$1" bs=1M count="$mb" oflag=direct status=none
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

# sh_patch_file FILE SRC_FILE OFFSET_SECTORS: the same write applied to an
# image file (the expected content).
sh_patch_file()
{
	dd if="$2" of="$1" bs=512 seek="$3" conv=notrunc status=none
}

# sh_discard DEV OFFSET_BYTES LEN_BYTES: BLKDISCARD, and nothing else (blkdiscard
# probes the device for signatures first, which reads it).
sh_discard()
{
	python3 -c 'import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
fcntl.ioctl(fd, 0x1277, struct.pack("QQ", int(sys.argv[2]), int(sys.argv[3])))' "$@"
}

# sh_dmesg_has REGEX: dmesg since the last mark matches the extended regex.
sh_dmesg_has()
{
	dmesg_since_mark | grep -Eq -- "$1"
}

# sh_regions_diff FILE_A FILE_B REGION_BYTES [REGION...]: the indices of the
# regions (of REGION_BYTES; the last one may be partial) whose bytes differ
# between two files, space separated, ascending. With REGION arguments only
# those regions are compared.
sh_regions_diff()
{
	python3 - "$@" <<'PY'
import sys
a, b, rb = sys.argv[1], sys.argv[2], int(sys.argv[3])
only = [int(x) for x in sys.argv[4:]]
out = []
with open(a, "rb") as fa, open(b, "rb") as fb:
    size = max(fa.seek(0, 2), fb.seek(0, 2))
    regions = only if only else range((size + rb - 1) // rb)
    for r in regions:
        fa.seek(r * rb)
        fb.seek(r * rb)
        if fa.read(rb) != fb.read(rb):
            out.append(str(r))
print(" ".join(out))
PY
}

# sh_ctr_fail DESC TABLE [REGEX]: one KTAP result. The table must be refused
# (dmsetup create fails, no device is left behind) and dmesg must carry the
# constructor's error, "device-mapper: table: M:N: stream: <error>", whose
# text matches the extended REGEX (case-insensitive) when one is given.
SH_CTR_FAIL_N=0
sh_ctr_fail()
{
	local desc=$1 table=$2 re=${3:-.} name log
	SH_CTR_FAIL_N=$((SH_CTR_FAIL_N + 1))
	name=sh-ctr-fail-$$-$SH_CTR_FAIL_N
	kmsg "dm-stream selftest: $TEST_NAME: sh_ctr_fail $SH_CTR_FAIL_N: $desc"
	if dmsetup create "$name" --table "$table" >/dev/null 2>&1; then
		dmsetup remove "$name" >/dev/null 2>&1
		ktap_fail "$desc" "table accepted: $table"
		return
	fi
	if dmsetup info "$name" >/dev/null 2>&1; then
		dmsetup remove "$name" >/dev/null 2>&1
		ktap_fail "$desc" "refused, but device $name left behind"
		return
	fi
	log=$(dmesg_since_mark |
		grep -E 'device-mapper: table: [0-9]+:[0-9]+: stream: .' |
		sed 's/.*device-mapper: table: [0-9]*:[0-9]*: stream: //')
	if [ -z "$log" ]; then
		ktap_fail "$desc" "refused, but no 'stream:' table error in dmesg"
	elif ! grep -Eiq -- "$re" <<<"$log"; then
		ktap_fail "$desc" "error '$log' does not match /$re/"
		ktap_diag "other stream lines: $(dmesg_since_mark |
			grep -E 'stream' | grep -v 'device-mapper: table:' |
			sed 's/^\[[ 0-9.]*\] //')"
	else
		ktap_ok "$desc ($(head -n 1 <<<"$log"))"
	fi
}

SH_MSG_FAIL_N=0
# sh_msg_fail DESC NAME WORD...: one KTAP result. "dmsetup message -- NAME 0
# WORD..." must fail and log a "device-mapper: stream: " error. The "--"
# keeps dmsetup from taking a word such as "-1" for one of its options.
sh_msg_fail()
{
	local desc=$1 name=$2 log
	shift 2
	SH_MSG_FAIL_N=$((SH_MSG_FAIL_N + 1))
	kmsg "dm-stream selftest: $TEST_NAME: sh_msg_fail $SH_MSG_FAIL_N: $desc"
	if timeout 10 dmsetup message -- "$name" 0 "$@" >/dev/null 2>&1; then
		ktap_fail "$desc" "message '$*' accepted"
		return
	fi
	log=$(dmesg_since_mark | grep -E 'device-mapper: stream: .' |
		sed 's/.*device-mapper: stream: //')
	if [ -z "$log" ]; then
		ktap_fail "$desc" "refused, but no 'device-mapper: stream:' error in dmesg"
	else
		ktap_ok "$desc ($(head -n 1 <<<"$log"))"
	fi
}

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
