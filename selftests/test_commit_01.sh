#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_commit_01: when dm-stream commits its metadata.
#
# The metadata device is a dm-linear device over a loop device, so
# /sys/block/dm-N/stat field 5 (writes completed) counts metadata writes.
# Spec: REQ_PREFLUSH completes after the destination is flushed and the
# metadata committed; background commit at most every second when something
# changed; no commit when nothing changed.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 10

RS=128			# region size, sectors (64 KiB)
MB=8			# target size, MiB
NAME=sbcommit
MNAME=${NAME}-meta
DM=$(dm_dev $NAME)
MDEV=$(dm_dev "$MNAME")
sh_stream_loops $MB 4

ktap_check "create paused stream over a dm-linear metadata device" \
	sh_stream_over_linear_meta "$NAME" "$MNAME" "$META" "$DEST $ORIG $RS 1 paused" ||
	ktap_bail "setup failed: $DM_ERR"
ktap_diag "status: $(dm_status $NAME)"

# Let the constructor's formatting (and any first commit) settle.
sleep 1.5

# 2. Idle: no commit when nothing changed.
w0=$(sh_stat "$MDEV" 5)
sleep 3
w1=$(sh_stat "$MDEV" 5)
ktap_diag "idle 3 s: metadata writes $w0 -> $w1"
if [ "$w1" -eq "$w0" ]; then
	ktap_ok "idle 3 s: no metadata write"
else
	ktap_fail "idle 3 s: no metadata write" "$((w1 - w0)) writes"
fi

# 3. Whole-region write to an uncopied region, then a flush: the flush does
#    not complete before the commit, so the counter has moved when fsync
#    returns. A first write + flush (a "primer") commits, so that the
#    periodic commit is not due (the first change after an idle second may
#    be committed at once); then the write and the flush, in one process.
#    If a commit still slipped in between them, retry with other regions.
#    Regions used: 3 (primer), 4; then 5, 6; then 11, 12.
c0=$(sh_copied "$NAME")
res=
n=0
for pr in "3 4" "5 6" "11 12"; do
	read -r p r <<<"$pr"
	n=$((n + 2))
	read -r -a w <<<"$(sh_write_flush_probe "$DM" "$MDEV" $((RS * 512)) \
		$((p * RS * 512)) $((r * RS * 512)))"
	set -- "${w[@]}"
	ktap_diag "write region $p + flush, then region $r: metadata writes $1 -> $2 (written) -> $3 (flushed)"
	if [ $# != 3 ]; then
		res="write or flush failed"
		break
	fi
	if [ "$1" = "$2" ]; then
		[ "$3" -gt "$2" ] && res=ok ||
			res="flush returned without a metadata write"
		break
	fi
	res="a commit came between write and flush 3 times"
done
c1=$(sh_copied "$NAME")
if [ "$res" = ok ] && [ "$c1" -eq $((c0 + n)) ]; then
	ktap_ok "whole-region write + flush: commit before the flush completes"
else
	ktap_fail "whole-region write + flush: commit before the flush completes" \
		"$res; copied $c0 -> $c1 after $n whole-region writes"
fi

# 4. Rewrite of the already-copied region (whole and partial) + flush: nothing
#    changed, so no commit, neither at the flush nor later.
sleep 1.5
w0=$(sh_stat "$MDEV" 5)
ok=1
sh_write_region "$DM" 3 $RS /dev/urandom fsync || ok=0
dd if=/dev/urandom of="$DM" bs=4096 count=1 seek=$((3 * RS / 8 + 5)) \
	oflag=direct conv=fsync status=none || ok=0
w1=$(sh_stat "$MDEV" 5)
sleep 2.5
w2=$(sh_stat "$MDEV" 5)
ktap_diag "rewrite copied region + flush: metadata writes $w0 -> $w1 -> (2.5 s) $w2"
if [ $ok = 1 ] && [ "$w1" -eq "$w0" ] && [ "$w2" -eq "$w0" ]; then
	ktap_ok "write to a copied region + flush: no commit"
else
	ktap_fail "write to a copied region + flush: no commit" \
		"ok=$ok writes $w0 -> $w1 -> $w2"
fi

# 5. An empty flush with nothing dirty: no commit.
w0=$(sh_stat "$MDEV" 5)
sh_flush "$DM"
rc=$?
sh_flush "$DM"
w1=$(sh_stat "$MDEV" 5)
if [ $rc = 0 ] && [ "$w1" -eq "$w0" ]; then
	ktap_ok "flush with nothing dirty: no commit"
else
	ktap_fail "flush with nothing dirty: no commit" "rc=$rc writes $w0 -> $w1"
fi

# 6. Partial write to an uncopied region (copy first) + flush: commit, region
#    copied, content = origin with the 4 KiB patch.
w0=$(sh_stat "$MDEV" 5)
c0=$(sh_copied "$NAME")
tmp=$(mktemp "$TEST_TMP/r10.XXXXXX")
dd if="$ORIG" of="$tmp" bs=$((RS * 512)) skip=10 count=1 iflag=direct status=none
head -c 4096 /dev/urandom >"$tmp.p"
dd if="$tmp.p" of="$tmp" bs=4096 seek=3 conv=notrunc status=none
if dd if="$tmp.p" of="$DM" bs=4096 seek=$((10 * RS / 8 + 3)) oflag=direct \
	conv=fsync status=none; then
	w1=$(sh_stat "$MDEV" 5)
	c1=$(sh_copied "$NAME")
	want=$(md5sum <"$tmp" | cut -d' ' -f1)
	got=$(sh_region_md5 "$DM" 10 $RS)
	gotd=$(sh_region_md5 "$DEST" 10 $RS)
	ktap_diag "partial write region 10 + flush: writes $w0 -> $w1, copied $c0 -> $c1"
	if [ "$w1" -gt "$w0" ] && [ "$c1" -eq $((c0 + 1)) ] &&
	   [ "$got" = "$want" ] && [ "$gotd" = "$want" ]; then
		ktap_ok "partial write to an uncopied region + flush: copy, commit"
	else
		ktap_fail "partial write to an uncopied region + flush: copy, commit" \
			"writes $w0 -> $w1 copied $c0 -> $c1 content ok: $([ "$got" = "$want" ] && echo y || echo n) dest ok: $([ "$gotd" = "$want" ] && echo y || echo n)"
	fi
else
	ktap_fail "partial write to an uncopied region + flush: copy, commit" "dd failed"
fi
rm -f "$tmp" "$tmp.p"

# 7. Write to a new region without any flush: a background commit follows
#    (after about a second: the time is shown, not asserted, since it
#    depends on the host's load; 60 s bounds a missing commit).
sleep 1.5
w0=$(sh_stat "$MDEV" 5)
t0=$(sh_now_ms)
sh_write_region "$DM" 7 $RS /dev/urandom
# shellcheck disable=SC2317 # called by sh_wait_for
_meta_moved() { [ "$(sh_stat "$MDEV" 5)" -gt "$w0" ]; }
if sh_wait_for 60 _meta_moved; then
	ktap_diag "background commit seen after $(($(sh_now_ms) - t0)) ms"
	ktap_ok "write without flush: a periodic commit follows"
else
	ktap_fail "write without flush: a periodic commit follows" "no commit in 60 s"
fi

# 8. After that commit nothing is dirty: no more commits.
sleep 1
w0=$(sh_stat "$MDEV" 5)
sleep 3
w1=$(sh_stat "$MDEV" 5)
if [ "$w1" -eq "$w0" ]; then
	ktap_ok "idle after periodic commit: no metadata write"
else
	ktap_fail "idle after periodic commit: no metadata write" "$((w1 - w0)) writes"
fi

# 9-10. blktrace (optional): order of the destination flush and the metadata
#    superblock write, and the commit rate under a steady trickle of writes.
bt_skip() {
	ktap_skip "blktrace: destination flush completes before the superblock write" "$1"
	ktap_skip "blktrace: at most ~1 commit/s under steady writes" "$1"
}
bt_run() {
	if ! command -v blktrace >/dev/null || ! command -v blkparse >/dev/null; then
		bt_skip "blktrace/blkparse not installed"; return
	fi
	if [ ! -d /sys/kernel/debug/block ]; then
		mount -t debugfs none /sys/kernel/debug 2>/dev/null
	fi
	if [ ! -d /sys/kernel/debug/block ]; then
		bt_skip "debugfs not available"; return
	fi
	local wc
	wc=$(cat "/sys/block/$(basename "$(readlink -f "$DEST")")/queue/write_cache" 2>/dev/null)
	ktap_diag "destination write_cache: $wc"
	if [ "$wc" != "write back" ]; then
		bt_skip "destination has no volatile write cache ($wc): flushes are dropped"; return
	fi
	local dir
	dir=$(mktemp -d "$TEST_TMP/bt.XXXXXX")
	(cd "$dir" && exec blktrace -d "$DEST" -d "$META" >blktrace.log 2>&1) &
	local btpid=$!
	sleep 2
	if ! kill -0 $btpid 2>/dev/null; then
		ktap_diag "blktrace: $(cat "$dir/blktrace.log")"
		rm -rf "$dir"
		bt_skip "blktrace did not start"; return
	fi
	# (a) whole uncopied region + flush
	sh_write_region "$DM" 20 $RS /dev/urandom
	sh_flush "$DM"
	sleep 1.5
	# (b) a new region every 0.2 s for 4 s, no flush
	local i t0 t1
	t0=$(sh_now_ms)
	for i in $(seq 30 49); do
		sh_write_region "$DM" "$i" $RS /dev/urandom
		sleep 0.2
	done
	t1=$(sh_now_ms)
	sleep 2
	kill -INT $btpid
	wait $btpid
	local dd_dev md_dev
	dd_dev=$(sh_devt "$DEST" | tr : ,)
	md_dev=$(sh_devt "$META" | tr : ,)
	(cd "$dir" && blkparse -q -i "$(basename "$(readlink -f "$DEST")")" \
		-i "$(basename "$(readlink -f "$META")")" \
		-f "%D %a %d %S %n %T %t\n" >parsed.txt 2>blkparse.err)
	# ns timestamp, device, action, rwbs, sector, blocks
	awk '{ printf "%d%09d %s %s %s %s %s\n", $6, $7, $1, $2, $3, $4, $5 }' \
		"$dir/parsed.txt" | sort -n >"$dir/ev.txt"
	ktap_diag "blktrace: $(wc -l <"$dir/ev.txt") events"
	# (a): data write of region 20 (sector 2560) completes at tW; the first
	# superblock write (metadata sector 0, non-empty: empty flushes show as
	# sector 0 too) queued after tW is tS; a destination flush must
	# complete in [tW, tS].
	local res
	res=$(awk -v D="$dd_dev" -v M="$md_dev" -v S=$((20 * RS)) '
		$2 == D && $3 == "C" && $4 ~ /W/ && $5 == S && tW == "" { tW = $1 }
		tW != "" && $2 == M && ($3 == "Q" || $3 == "D") && $4 ~ /W/ && $5 == 0 && $6 > 0 && tS == "" { tS = $1 }
		tW != "" && tS == "" && $2 == D && $3 == "C" && $4 ~ /F/ { tF = $1 }
		END { printf "%s %s %s\n", (tW == "" ? "-" : tW), (tS == "" ? "-" : tS), (tF == "" ? "-" : tF) }
	' "$dir/ev.txt")
	ktap_diag "data write done / superblock write / dest flush done (ns): $res"
	# Every superblock write after destination data writes: a destination
	# flush completed between the last data write's completion and it.
	local bad nsb
	read -r nsb bad < <(awk -v D="$dd_dev" -v M="$md_dev" '
		$2 == D && $3 == "C" && $4 ~ /W/ && $6 > 0 { dirty = 1; fl = 0 }
		$2 == D && $3 == "C" && $4 ~ /F/ { fl = 1 }
		$2 == M && $3 == "Q" && $4 ~ /W/ && $5 == 0 && $6 > 0 {
			n++
			if (dirty && !fl) bad++
			dirty = 0; fl = 0
		}
		END { print n + 0, bad + 0 }' "$dir/ev.txt")
	ktap_diag "superblock writes: $nsb, without a destination flush after the data writes before them: $bad"
	read -r -a w <<<"$res"
	set -- "${w[@]}"
	if [ "$bad" != 0 ]; then
		ktap_fail "blktrace: destination flush completes before the superblock write" \
			"$bad of $nsb superblock writes not preceded by a destination flush"
	elif [ "$1" = - ] || [ "$2" = - ]; then
		ktap_fail "blktrace: destination flush completes before the superblock write" \
			"data write or superblock write not found in trace"
	elif [ "$3" = - ]; then
		ktap_fail "blktrace: destination flush completes before the superblock write" \
			"no destination flush completed between the data write and the superblock write"
	else
		ktap_ok "blktrace: destination flush completes before the superblock write"
	fi
	# (b): superblock writes queued during the trickle window (+1 s tail)
	local n secs
	n=$(awk -v M="$md_dev" '$2 == M && $3 == "Q" && $4 ~ /W/ && $5 == 0 && $6 > 0' "$dir/ev.txt" |
		awk -v a="$(awk -v D="$dd_dev" -v S=$((30 * RS)) '$2 == D && $3 == "Q" && $4 ~ /W/ && $5 == S { print $1; exit }' "$dir/ev.txt")" \
			'a != "" && $1 >= a { n++ } END { print n + 0 }')
	secs=$(((t1 - t0 + 999) / 1000 + 2))
	ktap_diag "superblock writes during a $((t1 - t0)) ms trickle + 2 s: $n"
	if [ "$n" -ge 1 ] && [ "$n" -le $((secs + 1)) ]; then
		ktap_ok "blktrace: at most ~1 commit/s under steady writes"
	else
		ktap_fail "blktrace: at most ~1 commit/s under steady writes" \
			"$n superblock writes in ~$secs s"
	fi
	if [ -n "${SB_KEEP:-}" ] && [ -d "${TEST_OUT:-}" ]; then
		cp "$dir/ev.txt" "$TEST_OUT/$TEST_NAME.blktrace.txt" &&
			ktap_diag "trace kept in $TEST_OUT/$TEST_NAME.blktrace.txt"
	fi
	rm -rf "$dir"
}
bt_run

dm_remove "$NAME"
dm_remove "$MNAME"
ktap_finish
