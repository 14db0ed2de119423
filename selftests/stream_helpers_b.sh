# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Helpers for test_commit_01, test_suspend_01, test_discard_01, test_ext4_01,
# test_metaerr_01. Source after common.sh. All names start with sb_ so they
# cannot collide with common.sh or stream_helpers.sh.

# ---- status parsing ------------------------------------------------------
# "dmsetup status" params after the target type, e.g.
#   8 3/1024 128 40/800 16 streaming rw 0 0
# fields: 1 md block size, 2 used/total md blocks, 3 region size,
#         4 copied/total regions, 5 regions copying, 6 state, 7 mode,
#         8 copy errors, 9 #opt args, 10.. opt args.

sb_status() {
	dmsetup status "$1" 2>/dev/null | cut -d' ' -f4-
}

# sb_field NAME N: Nth whitespace separated status field (after target type)
sb_field() {
	sb_status "$1" | awk -v n="$2" '{ print $n }'
}

sb_copied() { sb_field "$1" 4 | cut -d/ -f1; }
sb_total()  { sb_field "$1" 4 | cut -d/ -f2; }
sb_copying() { sb_field "$1" 5; }
sb_state()  { sb_field "$1" 6; }
sb_mode()   { sb_field "$1" 7; }
sb_errors() { sb_field "$1" 8; }
# opt args part, count first ("0" or "2 rate 4096")
sb_optargs() { sb_status "$1" | cut -d' ' -f9-; }

# dm event counter of a dm device
sb_events() {
	dmsetup info -c --noheadings -o events "$1" 2>/dev/null | tr -d ' '
}

# ---- block device helpers --------------------------------------------------

# kernel name (dm-N) of a dm device
sb_blkname() {
	dmsetup info -c --noheadings -o blkdevname "$1" 2>/dev/null | tr -d ' '
}

# writes completed (field 5 of /sys/block/<dev>/stat) of a dm device
sb_writes() {
	awk '{ print $5 }' "/sys/block/$(sb_blkname "$1")/stat"
}

# sb_flush DEV: REQ_PREFLUSH on a block device (fsync of the block device
# node opened O_RDWR issues blkdev_issue_flush). Returns python's exit status.
sb_flush() {
	python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    os.fsync(fd)
finally:
    os.close(fd)' "$1"
}

# sb_write_region DEV REGION REGION_SECTORS SRCFILE [fsync]
# O_DIRECT write of one whole region taken from SRCFILE at the same offset
# (SRCFILE may be /dev/urandom: then no skip). With "fsync" a flush follows.
sb_write_region() {
	local dev=$1 r=$2 rs=$3 src=$4 extra=
	local bs=$((rs * 512))
	[ "${5:-}" = fsync ] && extra=conv=fsync
	if [ "$src" = /dev/urandom ] || [ "$src" = /dev/zero ]; then
		dd if="$src" of="$dev" bs=$bs count=1 seek="$r" oflag=direct \
			$extra status=none
	else
		dd if="$src" of="$dev" bs=$bs count=1 skip="$r" seek="$r" \
			oflag=direct $extra status=none
	fi
}

# sb_md5 DEV OFFSET_BYTES LEN_BYTES: md5 of a byte range read with O_DIRECT
# (offset and length multiples of 4096)
sb_md5() {
	local dev=$1 off=$2 len=$3
	dd if="$dev" bs=4096 skip=$((off / 4096)) count=$((len / 4096)) \
		iflag=direct status=none | md5sum | cut -d' ' -f1
}

# sb_region_md5 DEV REGION REGION_SECTORS [NREGIONS]
sb_region_md5() {
	local n=${4:-1}
	sb_md5 "$1" $(($2 * $3 * 512)) $(($n * $3 * 512))
}

# md5 of LEN bytes of zeros
sb_zero_md5() {
	head -c "$1" /dev/zero | md5sum | cut -d' ' -f1
}

# sb_wait_for TIMEOUT_S CMD...: poll CMD every 0.2 s until it succeeds.
# Returns 0 on success, 1 on timeout.
sb_wait_for() {
	local t=$1 end
	shift
	end=$(($(date +%s%N) + t * 1000000000))
	while :; do
		"$@" && return 0
		[ "$(date +%s%N)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

sb_is_complete() { [ "$(sb_state "$1")" = complete ]; }

# sb_wait_complete NAME TIMEOUT_S
sb_wait_complete() {
	sb_wait_for "$2" sb_is_complete "$1"
}

# milliseconds since the epoch
sb_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# "maj:min" of a block device node
sb_majmin() {
	local d
	d=$(readlink -f "$1")
	printf '%d:%d\n' "0x$(stat -c %t "$d")" "0x$(stat -c %T "$d")"
}

# mode from a status string: rw | ro | fail ("Fail" status -> fail)
sb_mode_of() {
	case "$1" in
	Fail*) echo fail ;;
	*) echo "$1" | awk '{ print $7 }' ;;
	esac
}

# sb_not_running PID
sb_not_running() { ! kill -0 "$1" 2>/dev/null; }

# sb_bail N REASON: report the N remaining subtests as failed and finish
# (used when setup of the remaining subtests failed).
sb_bail() {
	local i
	for i in $(seq 1 "$1"); do
		ktap_fail "not run ($2)"
	done
	ktap_finish
	exit 1
}

# sb_mkloop VAR SIZE_MB: tmpfs-backed loop device (cleaned up by common.sh)
# stored in VAR; the whole script is skipped if none can be made.
sb_mkloop() {
	make_loop -v "$1" "$2" "sb-$1" || ktap_skip_all "cannot create a loop device"
}

# sb_on_exit CMD: run CMD at exit (reverse order with dm device removals:
# register it after the devices it must run before).
sb_on_exit() { cleanup_add "$*"; }

# full table line ("0 <len> <target> <args>") as dmsetup table prints it
sb_table_line() { dmsetup table "$1"; }

# sb_pair_in "WORDS" KEY VALUE: KEY is immediately followed by VALUE
sb_pair_in() {
	local -a w
	local i
	read -r -a w <<<"$1"
	for ((i = 0; i + 1 < ${#w[@]}; i++)); do
		[ "${w[i]}" = "$2" ] && [ "${w[i + 1]}" = "$3" ] && return 0
	done
	return 1
}

# sb_write_flush_probe DEV STATDEV LEN_BYTES PRIMER_OFFSET OFFSET
# One process: an O_DIRECT write of LEN random bytes at PRIMER_OFFSET and a
# fsync (so a commit has just happened and the periodic timer is not due),
# then at once an O_DIRECT write at OFFSET and a fsync of DEV (a flush).
# Prints the writes-completed counter of dm device STATDEV before the second
# write, between it and its flush, and after the flush.
sb_write_flush_probe() {
	python3 - "$1" "/sys/block/$(sb_blkname "$2")/stat" "$3" "$4" "$5" <<'PY'
import mmap, os, sys
dev, stat = sys.argv[1], sys.argv[2]
ln, p_off, off = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def w():
    with open(stat) as f:
        return int(f.read().split()[4])
buf = mmap.mmap(-1, ln)
buf.write(os.urandom(ln))
fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
os.pwritev(fd, [buf], p_off)
os.fsync(fd)
a = w()
os.pwritev(fd, [buf], off)
b = w()
os.fsync(fd)
c = w()
os.close(fd)
print(a, b, c)
PY
}
