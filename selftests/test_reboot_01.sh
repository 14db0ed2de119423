#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A stream survives a power cut in the middle of its copy, over two boots of
# the guest on the same virtual disks (boot_helpers.sh; the host side of
# run_tests.sh runs both boots).
#
# Boot 1: a marker written with O_DIRECT and a flush on its own disk, and one
# written through the page cache with writeback off; then, when the tool has
# `assemble` and the kernel mirrors, a stream in mirror mode (dmstream create
# --mirror) from a random origin, slowed to 256 KiB/s so that it is mid-way,
# O_DIRECT writes through it (some flushed, some not), the md5 of its whole
# content recorded in the state directory; then bt_crash (sysrq b: no sync).
# Boot 2: the flushed marker is there, the page-cache one is not (the crash
# really dropped what the guest held); the origin holds every acknowledged
# write (mirror); `dmstream assemble` brings the stream back with its table
# and its progress (> 0), a second assemble is a no-op, the copy completes,
# the device and, after `finish`, the destination hold every acknowledged
# write.
#
# dmstream-boots: 2
# dmstream-disk: orig 32
# dmstream-disk: dest 32
# dmstream-disk: meta 4
# dmstream-disk: mark 1

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"
. "$(dirname "$0")/boot_helpers.sh"

DMSTREAM=${DMSTREAM:-$REPO_ROOT/tools/dmstream}
NAME=reboot01
REGION=128		# sectors (64 KiB)
RATE=256k		# 4 regions/s: 128 s for the whole origin
SEEN=8			# regions copied before the writes (and their flushes)

require_cmd dmsetup dd md5sum cmp timeout
bt_require

if ! { ORIG=$(bt_disk orig) && DEST=$(bt_disk dest) && META=$(bt_disk meta) &&
	MARK=$(bt_disk mark); }; then
	ktap_skip_all "the test's virtio disks are missing"
fi

# quiet CMD...: CMD with its stdout dropped (not KTAP).
quiet()
{
	"$@" >/dev/null
}

# stream_missing: why the stream part cannot run here (empty: it can).
stream_missing()
{
	[[ -x $DMSTREAM ]] || { echo "tools/dmstream is not built"; return; }
	"$DMSTREAM" --help 2>&1 | grep -qw assemble ||
		{ echo "dmstream has no assemble command yet"; return; }
	"$DMSTREAM" create --help 2>&1 | grep -q -- '--mirror' ||
		{ echo "dmstream create has no --mirror option yet"; return; }
	[[ -d /sys/module/dm_stream ]] || insmod "$DMSTREAM_KO" 2>/dev/null
	dmsetup targets | grep -Eq '^stream +v([2-9]|[1-9][0-9])\.' ||
		{ echo "the stream target is older than 2.0.0 (no mirror mode)"; return; }
}

marker_md5()
{
	sh_md5 "$MARK" 4096 "$1"
}

boot1()
{
	local why copied total f off i extra w

	ktap_plan 6
	# Marker 1: O_DIRECT and a flush, so it is on the disk.
	f=$(sh_tmpfile)
	head -c 4096 /dev/urandom >"$f"
	md5sum <"$f" | cut -d' ' -f1 >"$BT_STATE/marker.md5"
	ktap_check "marker written with O_DIRECT and a flush" \
		dd if="$f" of="$MARK" bs=4096 oflag=direct conv=fsync,notrunc status=none
	# Marker 2, at 4 KiB: through the page cache, writeback put off for an
	# hour, so only a sync (or a clean shutdown) could bring it to the
	# disk. (Writeback interval 0 would not do: the first dirty page then
	# wakes the flusher at once.) It is written through fd 7, which stays
	# open until the crash: the last close of a block device writes its
	# dirty pages back.
	echo 360000 >/proc/sys/vm/dirty_writeback_centisecs
	echo 360000 >/proc/sys/vm/dirty_expire_centisecs
	exec 7<>"$MARK"
	head -c 4096 /dev/urandom >"$f"
	md5sum <"$f" | cut -d' ' -f1 >"$BT_STATE/buffered.md5"
	marker_md5 4096 >"$BT_STATE/buffered-before.md5"
	# The disk's count of completed writes does not move: the page stays
	# in the cache. (Not /proc/meminfo's Dirty: it lags, per-CPU counts.)
	w=$(sh_stat "$MARK" 5)
	if dd if="$f" bs=4096 seek=1 conv=notrunc status=none >&7 &&
	   sleep 1 && [[ $(sh_stat "$MARK" 5) == "$w" ]]; then
		ktap_ok "marker written to the page cache only"
	else
		ktap_fail "marker written to the page cache only" \
			"writes completed on $MARK: $w before, $(sh_stat "$MARK" 5) after"
	fi

	why=$(stream_missing)
	if [[ -n $why ]]; then
		for i in 1 2 3 4; do
			ktap_skip "stream part $i" "$why"
		done
		bt_crash
	fi

	sh_setup sh_fill_random "$ORIG"
	sh_setup quiet "$DMSTREAM" create "$NAME" --origin "$ORIG" --dest "$DEST" \
		--meta "$META" --region-size "${REGION}s" --rate "$RATE" --mirror
	if dm_status "$NAME" | grep -qw mirror && sh_wait_copied_ge "$NAME" "$SEEN" 60; then
		ktap_ok "stream in mirror mode, copying"
	else
		ktap_fail "stream in mirror mode, copying" "status: $(dm_status "$NAME")"
	fi
	total=$(sh_total "$NAME")

	# Writes: 4 KiB at every 37th region + 1 sector (copied or not), the
	# first half flushed, the second not; one whole region. All acknowledged.
	for ((i = 0, off = 0; off < total; i++, off += 37)); do
		extra=()
		[[ $((i % 2)) -eq 0 ]] || extra=(conv=fsync)
		dd if=/dev/urandom of="$(dm_dev "$NAME")" bs=4096 count=1 \
			seek=$(((off * REGION + 8) / 8)) oflag=direct "${extra[@]}" \
			conv=notrunc status=none || break
	done
	if [[ $off -ge $total ]] &&
	   sh_write_region "$(dm_dev "$NAME")" $((total - 3)) "$REGION" /dev/urandom; then
		ktap_ok "$i writes of 4 KiB and one of a region acknowledged"
	else
		ktap_fail "$i writes of 4 KiB and one of a region acknowledged"
	fi

	# What the device holds now, all of it acknowledged.
	sh_md5 "$(dm_dev "$NAME")" >"$BT_STATE/expected.md5"
	sh_table "$NAME" >"$BT_STATE/table"
	ktap_check "content recorded ($(cat "$BT_STATE/expected.md5"))" \
		test -s "$BT_STATE/expected.md5"

	copied=$(sh_copied "$NAME")
	echo "$copied" >"$BT_STATE/copied"
	if [[ $copied -gt 0 && $copied -lt $total ]]; then
		ktap_ok "mid-way at the power cut: $copied/$total regions"
	else
		ktap_fail "mid-way at the power cut: $copied/$total regions" \
			"the rate limit ($RATE) should keep the copy going"
	fi
	bt_crash
}

boot2()
{
	local why t copied total

	ktap_plan 9
	if [[ $(marker_md5 0) == "$(cat "$BT_STATE/marker.md5")" ]]; then
		ktap_ok "flushed marker survived the power cut"
	else
		ktap_fail "flushed marker survived the power cut"
	fi
	t=$(marker_md5 4096)
	if [[ $t == "$(cat "$BT_STATE/buffered-before.md5")" ]]; then
		ktap_ok "page-cache marker lost: boot 1 ended without a sync"
	else
		ktap_fail "page-cache marker lost: boot 1 ended without a sync" \
			"$([[ $t == "$(cat "$BT_STATE/buffered.md5")" ]] && echo "it is on the disk")"
	fi

	why=$(stream_missing)
	if [[ -n $why || ! -s $BT_STATE/expected.md5 ]]; then
		[[ -n $why ]] || why="boot 1 recorded no stream"
		for t in 1 2 3 4 5 6 7; do
			ktap_skip "stream part $t" "$why"
		done
		ktap_finish
	fi

	if [[ $(sh_md5 "$ORIG") == "$(cat "$BT_STATE/expected.md5")" ]]; then
		ktap_ok "origin holds every acknowledged write (mirror)"
	else
		ktap_fail "origin holds every acknowledged write (mirror)"
	fi

	cleanup_add "dmsetup remove $NAME >/dev/null 2>&1"
	if TT=$(timeout 60 "$DMSTREAM" assemble "$META" --name "$NAME" --timeout 20 2>&1) &&
	   [[ $(sh_table "$NAME") == "$(cat "$BT_STATE/table")" ]]; then
		ktap_ok "assemble: same name, same table"
	else
		ktap_fail "assemble: same name, same table" "$TT"
		ktap_diag "table now: $(sh_table "$NAME" 2>&1)"
		ktap_diag "boot 1:    $(cat "$BT_STATE/table")"
	fi
	copied=$(sh_copied "$NAME")
	total=$(sh_total "$NAME")
	# At least what boot 1 had before its flushed writes (each flush
	# commits the bitmap); a copy started over would not be there yet at
	# 4 regions/s.
	if [[ -n $copied && $copied -ge $SEEN ]]; then
		ktap_ok "progress resumed: $copied/$total (boot 1 saw $(cat "$BT_STATE/copied"))"
	else
		ktap_fail "progress resumed: ${copied:-?}/${total:-?}" "status: $(dm_status "$NAME")"
	fi
	if TT=$(timeout 60 "$DMSTREAM" assemble "$META" --name "$NAME" --timeout 20 2>&1) &&
	   [[ $(sh_table "$NAME") == "$(cat "$BT_STATE/table")" ]]; then
		ktap_ok "assemble again: exit 0, nothing changed"
	else
		ktap_fail "assemble again: exit 0, nothing changed" "$TT"
	fi
	"$DMSTREAM" rate "$NAME" 0 >/dev/null 2>&1
	ktap_check "copy completes" timeout 600 "$DMSTREAM" wait "$NAME" --timeout 500
	if [[ $(sh_md5 "$(dm_dev "$NAME")") == "$(cat "$BT_STATE/expected.md5")" ]]; then
		ktap_ok "device holds every acknowledged write"
	else
		ktap_fail "device holds every acknowledged write"
	fi
	if "$DMSTREAM" finish "$NAME" >/dev/null 2>&1 &&
	   [[ $(sh_md5 "$DEST") == "$(cat "$BT_STATE/expected.md5")" ]]; then
		ktap_ok "finish: the destination holds every acknowledged write"
	else
		ktap_fail "finish: the destination holds every acknowledged write"
	fi
	ktap_finish
}

case $BT_BOOT in
1) boot1 ;;
2) boot2 ;;
*) ktap_skip_all "boot $BT_BOOT: this test has two" ;;
esac
