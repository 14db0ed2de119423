#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_merge_03: dmstream merge --rollback of an LVM snapshot survives a
# power cut, over two boots of the guest on the same virtual disks
# (boot_helpers.sh).
#
# Boot 1: a VG on the disk "pv"; `lvcreate -L 16M -n vol`, random data; a
# classic snapshot `lvcreate -s -L 8M -c 4k -n snap`; writes through both
# (lvm_helpers.sh, lh_snap_changes). `dmstream merge VG-snap --meta M
# --rollback --rate 16k` (metadata on the disk "meta"); partial writes to
# exception chunks and a writer (dmst.writer) on VG-vol during the merge
# (background copies paused with `dmstream pause`, so that the merge stays
# mid-way whatever the host's speed, but for a few regions copied while it
# writes); a flush of VG-vol (every write acknowledged before it is then stable, and
# the stream's bitmap committed); the merge still mid-way and LVM's
# activation skip flag set on vol; the expected content in the state
# directory; bt_crash (a power cut: no sync, dm devices left as they are).
# Boot 2: `vgchange -ay` does not activate vol (activation skip: no
# reactivation may show the half-merged content); `lvchange -ay -K VG/vol`
# brings back the snapshot stack; the same `dmstream merge` command
# continues the merge where boot 1 committed it (copied at once at least
# what boot 1 had copied before its flush, more than the seeded regions),
# VG-vol reads the expected content at once; a writer during the rest of the
# merge (paused at first, then at full speed); the merge completes; `dmstream finish VG-vol`; then LVM's view is
# clean (linear LV, no snapshot, skip flag cleared, vgck) and VG-vol holds
# the snapshot's content plus every acknowledged write, also after
# vgchange -an, -ay.
#
# dmstream-boots: 2
# dmstream-disk: pv 40
# dmstream-disk: meta 4

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"
. "$DIR/boot_helpers.sh"
. "$DIR/lvm_helpers.sh"

VG=dmstm3vg		# the disks are the test's own: a fixed name
ORIGIN=$VG-vol
SNAP=$VG-snap
RATE=16k		# 4 regions of 4 KiB a second: about 25 s for the merge
CHUNKS=4096		# 16 MiB in 4 KiB chunks (and regions)
W_OFF=$((3880 * 4096))	# the writer: chunks 3880-3929, 3900-3929 with exceptions
W_LEN=$((50 * 4096))

require_cmd dmsetup blockdev dd python3 md5sum cmp
lh_require
bt_require
"$DMSTREAM" help merge >/dev/null 2>&1 || ktap_skip_all "dmstream has no merge command yet"
sh_require_stream
require_module dm-snapshot

if ! { PV=$(bt_disk pv) && META=$(bt_disk meta); }; then
	ktap_skip_all "the test's virtio disks are missing"
fi
lh_conf "$PV" || ktap_skip_all "cannot write an lvm.conf"
DEV=$(dm_dev "$ORIGIN")
SDEV=$(dm_dev "$SNAP")

# merge_cmd: the merge, the same command in both boots.
merge_cmd()
{
	TT_TIMEOUT=120 tt_run merge "$SNAP" --meta "$META" --rollback --rate $RATE
}

# stream_of_snap: ORIGIN is a stream to ORIGIN-real from SNAP.
stream_of_snap()
{
	local words

	read -r -a words <<<"$(sh_table "$ORIGIN")"
	[[ ${words[2]:-} == stream && ${words[4]:-} == "$(lh_devt "$ORIGIN-real")" &&
	   ${words[5]:-} == "$(lh_devt "$SNAP")" ]]
}

boot1()
{
	local oimg simg wimg c total seeded

	ktap_plan 8
	lh_lvm pvcreate -q "$PV" ||
		ktap_skip_all "lvm pvcreate does not work here: $(tail -n 2 "$TEST_TMP/lvm.log")"
	sh_setup lh_lvm vgcreate -q "$VG" "$PV"
	sh_setup lh_lvm lvcreate -q -y -L 16M -n vol "$VG"
	sh_setup _dm_node "$ORIGIN"
	sh_setup sh_fill_random "$DEV"
	oimg=$(sh_tmpfile)
	simg=$(sh_tmpfile)
	sh_read "$DEV" >"$oimg"
	cp "$oimg" "$simg"
	sh_setup lh_lvm lvcreate -q -y -s -L 8M -c 4k -n snap "$VG/vol"
	sh_setup _dm_node "$SNAP"
	sh_setup lh_snap_changes "$DEV" "$SDEV" "$oimg" "$simg"
	if [[ $(sh_table "$SNAP") =~ \ P\ 8$ ]] && sh_cmp "$DEV" "$oimg" && sh_cmp "$SDEV" "$simg"; then
		ktap_ok "classic snapshot, 4 KiB chunks, changes read back ($LH_WRITES)"
	else
		ktap_fail "classic snapshot, 4 KiB chunks, changes read back" \
			"$SNAP: '$(sh_table "$SNAP")'"
	fi

	exec 8<>"$DEV"
	kmsg "dm-stream selftest: $TEST_NAME: merge --rollback, boot 1"
	merge_cmd
	ktap_diag "merge: exit $TT_RC: $TT_OUT $TT_ERR"
	[[ $TT_RC -eq 0 ]] || ktap_bail "dmstream merge $SNAP --rollback exited $TT_RC"
	# Background copies paused but for a moment below: the merge stays
	# mid-way whatever the host's speed (copies on demand go on).
	tt_run pause "$ORIGIN"
	total=$(sh_total "$ORIGIN")
	seeded=$((CHUNKS - LH_CHUNKS))
	if stream_of_snap && sh_cmp "$DEV" "$simg" && c=$(sh_copied "$ORIGIN") &&
	   [[ $total == "$CHUNKS" && $c -ge $seeded && $c -lt $total ]]; then
		ktap_ok "merge: exit 0, $ORIGIN a stream from $SNAP, its content at once ($c/$total copied)"
	else
		ktap_fail "merge: exit 0, $ORIGIN a stream from $SNAP, its content at once" \
			"table '$(sh_table "$ORIGIN")', copied ${c:-?}/$total, $seeded seeded"
	fi

	wimg=$(sh_tmpfile)
	cp "$simg" "$wimg"
	if ! lh_write "$DEV" "$wimg" $((3945 * 4096 + 512)) 1024 ||
	   ! lh_write "$DEV" "$wimg" $((3957 * 4096 + 3584)) 512; then
		ktap_diag "partial writes to $ORIGIN failed"
	fi
	sh_writer_start "$DEV" "$wimg" "$W_OFF" "$W_LEN"
	sh_writer_more 30
	c=$(sh_copied "$ORIGIN")
	tt_run continue "$ORIGIN"
	sh_wait_copied_ge "$ORIGIN" $((c + 4)) 60
	tt_run pause "$ORIGIN"
	sh_writer_stop
	ktap_check "writes during the merge ($(sh_writes), rc $SH_WRITER_RC: $SH_WRITER_OUT)" \
		test "$SH_WRITER_RC" -eq 0 -a "$(sh_writes)" -gt 0

	# What was copied before the flush is committed by it.
	c=$(sh_copied "$ORIGIN")
	ktap_check "a flush of $ORIGIN" sh_flush "$DEV"
	echo "$c" >"$BT_STATE/copied"
	echo "$seeded" >"$BT_STATE/seeded"
	cp "$wimg" "$BT_STATE/expected.img"
	if [[ $c -gt $seeded && $c -lt $total && $(sh_copied "$ORIGIN") -lt $total ]]; then
		ktap_ok "mid-way at the power cut: $c/$total copied before the flush, $seeded seeded"
	else
		ktap_fail "mid-way at the power cut: $c/$total copied before the flush, $seeded seeded" \
			"now $(sh_copied "$ORIGIN")/$total, state $(sh_state "$ORIGIN")"
	fi
	ktap_check "$ORIGIN holds every acknowledged write" sh_cmp "$DEV" "$wimg"
	ktap_check "activation skip flag set on $VG/vol" \
		test "$(lh_lv_field "$VG/vol" lv_skip_activation)" = 1
	ktap_check "expected content recorded" cmp "$wimg" "$BT_STATE/expected.img"
	bt_crash
}

boot2()
{
	local wimg c0 c total seeded words

	ktap_plan 16
	[[ -s $BT_STATE/expected.img && -s $BT_STATE/copied ]] ||
		ktap_skip_all "boot 1 recorded no merge"
	seeded=$(cat "$BT_STATE/seeded")
	lh_vg_cleanup "$VG"

	if lh_lvm vgchange -q -ay "$VG" && ! dm_exists "$ORIGIN" && ! dm_exists "$SNAP" &&
	   [[ $(lh_lv_field "$VG/vol" lv_skip_activation) == 1 ]]; then
		ktap_ok "vgchange -ay: $VG/vol (skip flag set) and its snapshot stay inactive"
	else
		ktap_fail "vgchange -ay: $VG/vol (skip flag set) and its snapshot stay inactive" \
			"$(dmsetup ls 2>&1 | grep -- "$VG")"
	fi
	if lh_lvm lvchange -q -ay -K "$VG/vol" && _dm_node "$ORIGIN" && _dm_node "$SNAP" &&
	   [[ $(sh_table "$ORIGIN") =~ ^0\ 32768\ snapshot-origin\  &&
	      $(sh_table "$SNAP") =~ ^0\ 32768\ snapshot\ .*\ P\ 8$ ]]; then
		ktap_ok "lvchange -ay -K $VG/vol: the snapshot stack is back"
	else
		ktap_fail "lvchange -ay -K $VG/vol: the snapshot stack is back" \
			"$(dmsetup table 2>&1 | grep -- "$VG")"
	fi

	exec 8<>"$DEV"
	kmsg "dm-stream selftest: $TEST_NAME: merge --rollback, boot 2"
	merge_cmd
	c0=$(sh_copied "$ORIGIN")
	if [[ $TT_RC -eq 0 ]] && grep -qi continuing <<<"$TT_OUT$TT_ERR"; then
		ktap_ok "the same merge command again: exit 0, continuing"
	else
		ktap_fail "the same merge command again: exit 0, continuing" \
			"exit $TT_RC: $TT_OUT $TT_ERR"
	fi
	ktap_diag "$TT_OUT"
	tt_run pause "$ORIGIN"
	total=$(sh_total "$ORIGIN")
	if [[ -n $c0 && $c0 -ge $(cat "$BT_STATE/copied") && $c0 -gt $seeded ]]; then
		ktap_ok "not restarted: $c0/$total copied at once (boot 1: $(cat "$BT_STATE/copied") before its flush, $seeded seeded)"
	else
		ktap_fail "not restarted: ${c0:-?}/${total:-?} copied at once" \
			"boot 1: $(cat "$BT_STATE/copied") before its flush, $seeded seeded"
	fi
	read -r -a words <<<"$(sh_table "$ORIGIN")"
	ktap_check "$ORIGIN is a stream to $ORIGIN-real from $SNAP (${words[*]:2:4})" \
		stream_of_snap
	if sh_cmp "$DEV" "$BT_STATE/expected.img" >"$TEST_TMP/cmp" 2>&1 &&
	   c=$(sh_copied "$ORIGIN") && [[ $c -lt $total ]]; then
		ktap_ok "$ORIGIN reads the merged content and boot 1's writes at once ($c/$total)"
	else
		ktap_fail "$ORIGIN reads the merged content and boot 1's writes at once" \
			"$(cat "$TEST_TMP/cmp"); copied ${c:-?}/$total"
	fi

	wimg=$(sh_tmpfile)
	cp "$BT_STATE/expected.img" "$wimg"
	sh_writer_start "$DEV" "$wimg" "$W_OFF" "$W_LEN"
	if sh_writer_more 20 && c=$(sh_copied "$ORIGIN") && [[ $c -lt $total ]]; then
		ktap_ok "writes to $ORIGIN during the resumed merge ($(sh_writes), $c/$total copied)"
	else
		ktap_fail "writes to $ORIGIN during the resumed merge" \
			"$(sh_writes) writes, copied ${c:-?}/$total"
	fi
	tt_run continue "$ORIGIN"
	tt_run rate "$ORIGIN" 0
	TT_TIMEOUT=400 tt_expect "the merge completes" 0 "" wait "$ORIGIN" --timeout 300
	sh_writer_stop
	ktap_check "the writer: rc $SH_WRITER_RC ($SH_WRITER_OUT)" test "$SH_WRITER_RC" -eq 0
	kmsg "dm-stream selftest: $TEST_NAME: finish"
	TT_TIMEOUT=120 tt_expect "finish $ORIGIN: exit 0" 0 "" finish "$ORIGIN"
	ktap_diag "$TT_OUT"
	exec 8<&-

	lh_merged_checks "$VG" vol snap "$wimg"
	ktap_finish
}

case $BT_BOOT in
1) boot1 ;;
2) boot2 ;;
*) ktap_skip_all "boot $BT_BOOT: this test has two" ;;
esac
