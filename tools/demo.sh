#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo.sh - `make demo`: a live block copy the way a hypervisor admin would
# do it, in the QEMU test guest.
#
# Usage:
#   tools/demo.sh [--timeout SEC] [--size MB] [--rate RATE]     (host)
#
# On the host it boots the guest once (selftests/run-guest, console saved in
# <out>/console.log) and shows the guest's demo output as it happens; the
# progress bar is redrawn in place when stdout is a terminal. In the guest
# (DMSTREAM_GUEST set) it:
#
#   1. builds "vol", a dm device (linear over a loop device: the VM's disk)
#      holding an ext4 file system with real files, mounted;
#   2. starts a workload that keeps writing to it: new files, rewrites of
#      existing ones, log appends, each one's checksum recorded;
#   3. runs `dmstream copy vol --dest NEW --meta META --finish`, with its
#      progress bar, while the workload writes;
#   4. stops the workload, then proves nothing was lost: e2fsck -fn, every
#      file's checksum on vol, and again on the new disk alone once vol is
#      gone;
#   5. prints a summary.
#
# Exit status: 0 when every check passed; the guest runner's status
# otherwise (see selftests/run-guest).
#
# Environment: DMSTREAM_OUT (default selftests/out) as for run-guest.

set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

timeout=900
size_mb=256
rate=16M/s

while [[ $# -gt 0 ]]; do
	case $1 in
	--timeout) timeout=${2:?}; shift 2 ;;
	--size) size_mb=${2:?}; shift 2 ;;
	--rate) rate=${2:?}; shift 2 ;;
	-h|--help) sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "usage: $0 [--timeout SEC] [--size MB] [--rate RATE]" >&2; exit 1 ;;
	esac
done

# --- host side ---------------------------------------------------------------

if [[ -z ${DMSTREAM_GUEST:-} ]]; then
	out=${DMSTREAM_OUT:-$REPO/selftests/out}
	mkdir -p "$out" && out=$(cd "$out" && pwd -P) || exit 2
	log=$out/demo.log
	: >"$log"
	start=$SECONDS
	echo "demo: booting the QEMU guest (TCG, about 10 s)..."
	"$REPO/selftests/run-guest" -q --out "$out" --timeout "$timeout" \
		-- tools/demo.sh --size "$size_mb" --rate "$rate" &
	guest=$!
	# The guest writes its output to $log over the shared directory.
	if [[ -t 1 ]]; then
		tail -n +1 -s 0.2 -f --pid=$guest "$log"
	else
		tail -n +1 -s 0.2 -f --pid=$guest "$log" | stdbuf -o0 tr '\r' '\n' |
			grep --line-buffered -v '^ *$'
	fi
	wait $guest
	rc=$?
	echo
	if [[ $rc -eq 0 ]]; then
		echo "demo: passed in $((SECONDS - start)) s, guest boot included" \
			"(guest console: $out/console.log)"
	else
		echo "demo: FAILED (exit status $rc) after $((SECONDS - start)) s;" \
			"guest console: $out/console.log"
		tail -n 15 "$out/console.log" 2>/dev/null | sed 's/^/  | /'
	fi
	exit $rc
fi

# --- guest side ----------------------------------------------------------------

exec >>"${DMSTREAM_OUT:?}/demo.log" 2>&1
export PATH=$REPO/tools:$PATH DM_DISABLE_UDEV=1

W=/tmp/demo
T0=$SECONDS
MNT=/tmp/demo/mnt
failures=0

step() { printf '\n==> [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() { echo "FAIL: $*"; exit 1; }

cleanup()
{
	[[ -n ${writer:-} ]] && kill "$writer" 2>/dev/null
	umount "$MNT" 2>/dev/null
	for d in vol vol-origin; do
		dmsetup remove "$d" >/dev/null 2>&1
	done
	losetup -D 2>/dev/null
}
trap cleanup EXIT

step "Setup: modules, and three disks on tmpfs-backed loop devices"
modprobe -a dm-mod dm-bufio libcrc32c loop ext4 || die "modprobe failed"
ko=${DMSTREAM_KO:-$REPO/dm-stream/dm-stream.ko}
[[ -d /sys/module/dm_stream ]] || insmod "$ko" || die "cannot insmod $ko"
mkdir -p "$W" "$MNT"
truncate -s "${size_mb}M" "$W/old.img" "$W/new.img"
truncate -s 1M "$W/meta.img"
# shellcheck disable=SC2015 # a failure of any losetup ends the demo
old=$(losetup -f --show "$W/old.img") && new=$(losetup -f --show "$W/new.img") &&
	meta=$(losetup -f --show "$W/meta.img") || die "losetup failed"
sectors=$(blockdev --getsz "$old")
echo "old disk $old, new disk $new, metadata $meta (${size_mb} MiB disks)"

step "The VM's disk: vol, linear over the old disk, with ext4 and real files"
echo "0 $sectors linear $old 0" | dmsetup create vol || die "dmsetup create vol"
run dmsetup table vol
mkfs.ext4 -q -F -L vmdisk /dev/mapper/vol || die "mkfs.ext4"
mount /dev/mapper/vol "$MNT" || die "mount"
# Real files: text, logs, binaries, "photos" and "databases" (generated in
# the guest by one process: forks and 9p reads are slow under TCG).
cp -r /usr/share/common-licenses "$MNT/licenses"
mkdir -p "$MNT/bin" && cp /usr/bin/fio /usr/sbin/dmsetup /bin/bash "$MNT/bin/"
python3 - "$MNT" <<'PY' || die "generating files"
import os, random, sys
root = sys.argv[1]
rnd = random.Random(42)
def put(path, data):
    path = os.path.join(root, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
for i in range(1, 301):
    lines = "".join("%06d host%d GET /item/%d 200 %d\n" % (n, i % 7, n * i, rnd.randrange(9999))
                    for n in range(i * 10))
    put("var/log/app-%d.log" % i, lines.encode())
for i in range(1, 41):
    put("home/user/notes/note-%d.txt" % i, ("note %d\n" % i * (50 * i)).encode())
for i in range(1, 25):
    put("home/user/photos/img-%d.raw" % i, os.urandom((2 + i % 3) << 20))
for i in range(1, 9):
    put("srv/db/table-%d.db" % i, os.urandom(4 << 20))
PY
sync
(cd "$MNT" && find . -type f -print0 | sort -z | xargs -0 md5sum) >"$W/manifest.before"
nfiles=$(wc -l <"$W/manifest.before")
used=$(df -h --output=used "$MNT" | tail -n 1 | tr -d ' ')
echo "$nfiles files, $used used on vol"

step "The workload: keeps writing to vol while it is copied"
# New files, rewrites inside the databases, log appends; every change's
# checksum goes to $W/changes, failures to $W/errors.
python3 - "$MNT" "$W" <<'PY' &
import hashlib, os, random, sys, time
root, work = sys.argv[1], sys.argv[2]
rnd = random.Random(7)
n = errors = 0
with open(os.path.join(work, "changes"), "w") as changes:
    while not os.path.exists(os.path.join(work, "stop")):
        n += 1
        kind = n % 3
        if kind == 0:
            rel = "new/file-%d.bin" % n
        elif kind == 1:
            rel = "srv/db/table-%d.db" % (n % 8 + 1)
        else:
            rel = "var/log/app-1.log"
        path = os.path.join(root, rel)
        try:
            if kind == 0:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(os.urandom(256 << 10))
            elif kind == 1:
                with open(path, "r+b") as f:
                    f.seek(rnd.randrange(1000) * 4096)
                    f.write(os.urandom(64 << 10))
            else:
                with open(path, "ab") as f:
                    f.write(b"%.6f request %d ok\n" % (time.time(), n))
            if n % 10 == 0:
                os.sync()
            with open(path, "rb") as f:
                changes.write("%s  ./%s\n" % (hashlib.md5(f.read()).hexdigest(), rel))
            changes.flush()
        except OSError as e:
            errors += 1
            with open(os.path.join(work, "errors"), "a") as f:
                f.write("write %d to %s: %s\n" % (n, rel, e))
        time.sleep(0.05)
with open(os.path.join(work, "writes"), "w") as f:
    f.write("%d\n" % n)
PY
writer=$!
sleep 2
echo "writing: $(wc -l <"$W/changes") writes so far"

step "Live copy onto the new disk: dmstream copy vol ... --finish"
echo "\$ dmstream copy vol --dest $new --meta $meta --rate $rate --finish"
t0=$(date +%s.%N)
# Under a pty, so that dmstream draws its progress bar.
script -qfec "dmstream copy vol --dest $new --meta $meta --rate $rate --finish" /dev/null
rc=$?
t1=$(date +%s.%N)
[[ $rc -eq 0 ]] || die "dmstream copy exited with $rc"
copy_s=$(printf '%.1f' "$(echo "$t1 - $t0" | bc)")
run dmsetup table vol
newdev=$(printf '%d:%d' "0x$(stat -c %t "$new")" "0x$(stat -c %T "$new")")
[[ $(dmsetup table vol) == "0 $sectors linear $newdev 0" ]] ||
	fail "vol is not linear on the new disk"
dmsetup ls | grep -q vol-origin && fail "the helper origin is still there"

step "Stop the workload; fsck and checksums"
sleep 1
touch "$W/stop"
wait "$writer"
writer=
writes=$(cat "$W/writes")
sync
touch "$W/errors"
echo "$writes writes by the workload, $(wc -l <"$W/errors") failed"
[[ -s $W/errors ]] && fail "the workload saw write errors: $(head -n 3 "$W/errors")"
if dmesg | grep -E 'I/O error|EXT4-fs (error|warning)|Buffer I/O' >"$W/kerr"; then
	fail "the kernel logged I/O errors: $(head -n 3 "$W/kerr")"
fi
# The expected state: the first listing, updated by each change in order.
awk '{ sum[$2] = $1; if (!($2 in seen)) { order[++n] = $2; seen[$2] = 1 } }
     END { for (i = 1; i <= n; i++) print sum[order[i]] "  " order[i] }' \
	"$W/manifest.before" "$W/changes" >"$W/manifest"
nexpected=$(wc -l <"$W/manifest")
umount "$MNT" || die "umount"
echo "\$ e2fsck -fn /dev/mapper/vol"
e2fsck -fn /dev/mapper/vol >"$W/fsck.log" 2>&1
fsck_rc=$?
tail -n 2 "$W/fsck.log"
[[ $fsck_rc -eq 0 ]] || fail "e2fsck -fn exited with $fsck_rc"

check_sums()
{
	local where=$1 bad

	bad=$(cd "$MNT" && md5sum -c --quiet "$W/manifest" 2>&1 | grep -c . )
	if [[ $bad -eq 0 ]]; then
		echo "$where: $nexpected/$nexpected files match"
	else
		fail "$where: $bad of $nexpected files differ"
		(cd "$MNT" && md5sum -c --quiet "$W/manifest" 2>&1 | head -n 5)
	fi
}
mount -o ro /dev/mapper/vol "$MNT" || die "mount vol"
check_sums "on vol"
umount "$MNT"

step "The new disk alone, without vol"
dmsetup remove vol || fail "dmsetup remove vol"
mount -o ro "$new" "$MNT" || die "mount $new"
check_sums "on $new"
umount "$MNT"
run dmstream check "$meta" || fail "dmstream check of the metadata"

step "Summary"
rate_avg=$(echo "scale=1; $size_mb / $copy_s" | bc)
printf '  %-16s %s\n' \
	"vol:" "ext4, $nfiles files, $used used, on a ${size_mb} MiB disk" \
	"live copy:" "$old -> $new in $copy_s s (${rate_avg} MiB/s, limit $rate)" \
	"while copying:" "$writes writes by the workload, $(wc -l <"$W/errors") failed" \
	"switch:" "vol became 'linear $new 0'; the metadata device is free" \
	"e2fsck -fn:" "$([[ $fsck_rc -eq 0 ]] && echo clean || echo "exit $fsck_rc")" \
	"checksums:" "$nexpected files, on vol and on the new disk alone"
if [[ $failures -eq 0 ]]; then
	printf '  %-16s %s\n' "result:" "PASS: nothing was lost"
	exit 0
fi
printf '  %-16s %s\n' "result:" "FAIL ($failures checks failed)"
exit 1
