#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_ext4_01: ext4 through dm-stream while it streams.
#
# ext4 with a file tree on the origin; a rate-limited streaming target over
# it; the target is mounted and files are written, modified, appended,
# deleted while regions are being copied; md5s recorded. After completion the
# table is switched to "linear <destination> 0": fsck clean, files right.
# The origin is untouched: same bytes, fsck clean, original files intact.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd mkfs.ext4 fsck.ext4 mount umount
grep -qw ext4 /proc/filesystems || ktap_skip_all "no ext4 in this kernel"
sh_start 10

RS=128
MB=64
SECT=$((MB * 2048))
NAME=sbext4
DM=$(dm_dev $NAME)
if ! ORIG=$(make_loop $MB orig) || ! DEST=$(make_loop $MB dest) ||
   ! META=$(make_loop 4 meta); then
	ktap_skip_all "cannot set up a loop device"
fi

WORK=$TEST_TMP
MNT=$WORK/mnt
mkdir -p "$MNT"

# Origin file system: 20 files of 1 MiB random data, a few dirs.
mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$ORIG" ||
	ktap_skip_all "mkfs.ext4 failed"
mount -t ext4 "$ORIG" "$MNT" || ktap_skip_all "cannot mount ext4 on a loop device"
cleanup_add "umount $MNT 2>/dev/null"
mkdir -p "$MNT/a" "$MNT/b/c"
for i in $(seq 1 20); do
	d=$MNT/a
	[ $((i % 3)) = 0 ] && d=$MNT/b/c
	head -c 1048576 /dev/urandom >"$d/f$i"
done
echo "hello" >"$MNT/small"
(cd "$MNT" && find . -type f ! -path './lost+found/*' | sort | xargs md5sum) >"$WORK/orig.md5"
umount "$MNT"
ORIG_MD5=$(sh_md5 "$ORIG")
ktap_diag "origin: $(wc -l <"$WORK/orig.md5") files ($SECONDS s)"

ktap_check "create streaming target over ext4 origin" \
	dm_create "$NAME" "0 $SECT stream $META $DEST $ORIG $RS 2 rate 2048" ||
	ktap_bail "setup failed: $DM_ERR"
cleanup_add "umount $MNT 2>/dev/null"	# before the target's removal

# 2. Mount through the target and change the tree while streaming.
ok=1
mount -t ext4 "$DM" "$MNT" || ok=0
if [ $ok = 1 ]; then
	ktap_diag "mounted at $(sh_field $NAME 4) copied ($SECONDS s)"
	for i in $(seq 1 10); do
		head -c 524288 /dev/urandom >"$MNT/new$i" || ok=0
	done
	for i in 2 5 8 11 14; do
		f=$(cd "$MNT" && find . -name "f$i" | head -n 1)
		head -c 65536 /dev/urandom |
			dd of="$MNT/$f" bs=4096 seek=100 conv=notrunc status=none || ok=0
	done
	f=$(cd "$MNT" && find . -name f17 | head -n 1)
	head -c 300000 /dev/urandom >>"$MNT/$f" || ok=0
	f=$(cd "$MNT" && find . -name f4 | head -n 1)
	rm -f "$MNT/$f" || ok=0
	f=$(cd "$MNT" && find . -name f19 | head -n 1)
	mv "$MNT/$f" "$MNT/b/f19-renamed" || ok=0
	echo "world" >>"$MNT/small" || ok=0
	sync || ok=0
	(cd "$MNT" && find . -type f ! -path './lost+found/*' | sort | xargs md5sum) >"$WORK/new.md5"
	st=$(sh_state $NAME)
	ktap_diag "after writes ($SECONDS s): $(dm_status $NAME)"
fi
if [ $ok = 1 ]; then
	ktap_ok "mount and modify files while streaming (state then: $st)"
else
	ktap_fail "mount and modify files while streaming"
	umount "$MNT" 2>/dev/null
	ktap_bail "file system changes failed"
fi

# 3. Cold re-read (drop caches) while the copy may still run.
sync
echo 3 >/proc/sys/vm/drop_caches
if (cd "$MNT" && md5sum --quiet -c "$WORK/new.md5"); then
	ktap_ok "md5s right after drop_caches (state: $(sh_state $NAME))"
else
	ktap_fail "md5s right after drop_caches"
fi

# 4. Streaming completes (lift the rate limit once the writes are done).
dmsetup message $NAME 0 rate 0
if sh_wait_state $NAME complete 120; then
	ktap_ok "streaming completes ($(sh_field $NAME 4), at $SECONDS s)"
else
	ktap_fail "streaming completes" "status: $(dm_status $NAME)"
fi
umount "$MNT"

# 5. Switch the table to linear over the destination.
if dm_reload $NAME "0 $SECT linear $DEST 0"; then
	ktap_ok "switch to linear over the destination"
else
	ktap_fail "switch to linear over the destination"
fi

# fsck_clean WHAT DEV: one result, fsck.ext4 -fn of DEV finds nothing.
fsck_clean()
{
	local out rc

	out=$(fsck.ext4 -fn "$2" 2>&1)
	rc=$?
	if [ $rc = 0 ]; then
		ktap_ok "$1: fsck.ext4 -fn clean"
	else
		echo "$out" | sed 's/^/# fsck: /' | tail -n 20
		ktap_fail "$1: fsck.ext4 -fn clean" "rc=$rc"
	fi
}

# 6. fsck of the destination file system.
fsck_clean destination "$DM"

# 7. Files on the destination.
if mount -t ext4 -o ro "$DM" "$MNT"; then
	if (cd "$MNT" && md5sum --quiet -c "$WORK/new.md5") &&
	   [ "$(cd "$MNT" && find . -type f ! -path './lost+found/*' | wc -l)" = "$(wc -l <"$WORK/new.md5")" ]; then
		ktap_ok "destination: md5s of all files right"
	else
		ktap_fail "destination: md5s of all files right"
	fi
	umount "$MNT"
else
	ktap_fail "destination: md5s of all files right" "mount failed"
fi
dm_remove $NAME

# 8-10. Origin untouched.
if [ "$(sh_md5 "$ORIG")" = "$ORIG_MD5" ]; then
	ktap_ok "origin: bytes unchanged"
else
	ktap_fail "origin: bytes unchanged"
fi
fsck_clean origin "$ORIG"
if mount -t ext4 -o ro,noload "$ORIG" "$MNT"; then
	if (cd "$MNT" && md5sum --quiet -c "$WORK/orig.md5") &&
	   [ ! -e "$MNT/new1" ]; then
		ktap_ok "origin: original files intact"
	else
		ktap_fail "origin: original files intact"
	fi
	umount "$MNT"
else
	ktap_fail "origin: original files intact" "mount failed"
fi
ktap_diag "done at $SECONDS s"
ktap_finish
