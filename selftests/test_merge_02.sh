#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_merge_02: dmstream merge --rollback of an LVM snapshot (as
# `lvconvert --merge` does it, but while the origin LV is open and in use).
#
# A VG on a loop PV; `lvcreate -L 16M -n vol`, random data; a classic
# snapshot `lvcreate -s -L 8M -c 4k -n snap`; then writes through the origin
# LV and through the snapshot LV (lvm_helpers.sh, lh_snap_changes: different
# chunks, some the same, some partial). With the origin LV held open:
#
# - `dmstream exceptions` of the COW LV counts the chunks changed;
# - `dmstream merge VG-snap --meta M --rollback --rate 16k`: VG-vol becomes
#   a stream with destination VG-vol-real and origin VG-snap (read-only),
#   every region without an exception seeded as copied, LVM's activation
#   skip flag set on vol; background copies paused at once (`dmstream
#   pause`: the merge stays mid-way whatever the host's speed), VG-vol reads
#   the snapshot's content;
# - partial writes to exception chunks not yet copied and a writer
#   (dmst.writer) on VG-vol during the merge (paused, then copying at
#   16 KiB/s, then at full speed), after it completes and across `dmstream
#   finish VG-vol`: every write lands;
# - after finish: VG-vol is linear, lvs lists no snapshot, no snapshot
#   device is left, the skip flag is cleared, vgck is clean, VG-vol holds the
#   snapshot's content plus every acknowledged write, and so after
#   vgchange -an, -ay.
#
# LVM runs with its own lvm.conf (lvm_helpers.sh).

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"
. "$DIR/lvm_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum cmp
lh_require
"$DMSTREAM" help merge >/dev/null 2>&1 || ktap_skip_all "dmstream has no merge command yet"
sh_start 18 dm-snapshot

VG=dmstm2vg$$
ORIGIN=$VG-vol
SNAP=$VG-snap
RATE=16k		# 4 regions of 4 KiB a second: about 25 s for the merge
CHUNKS=4096		# 16 MiB in 4 KiB chunks (and regions)
W_OFF=$((3880 * 4096))	# the writer: chunks 3880-3929, 3900-3929 with exceptions
W_LEN=$((50 * 4096))

make_loop -v PV 40 pv || ktap_skip_all "cannot set up loop devices"
make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"
lh_conf "$PV" || ktap_skip_all "cannot write an lvm.conf"
lh_lvm pvcreate -q "$PV" ||
	ktap_skip_all "lvm pvcreate does not work here: $(tail -n 2 "$TEST_TMP/lvm.log")"
lh_vg_cleanup "$VG"
sh_setup lh_lvm vgcreate -q "$VG" "$PV"
sh_setup lh_lvm lvcreate -q -y -L 16M -n vol "$VG"
DEV=$(dm_dev "$ORIGIN")
SDEV=$(dm_dev "$SNAP")
sh_setup _dm_node "$ORIGIN"
sh_setup sh_fill_random "$DEV"
OIMG=$(sh_tmpfile)
SIMG=$(sh_tmpfile)
sh_read "$DEV" >"$OIMG"
cp "$OIMG" "$SIMG"
sh_setup lh_lvm lvcreate -q -y -s -L 8M -c 4k -n snap "$VG/vol"
sh_setup _dm_node "$SNAP"
sh_setup _dm_node "$SNAP-cow"

t=$(sh_table "$SNAP")
if [[ $t =~ ^0\ 32768\ snapshot\ [0-9:]+\ [0-9:]+\ P\ 8$ &&
      $(sh_table "$ORIGIN") =~ ^0\ 32768\ snapshot-origin\  ]]; then
	ktap_ok "classic snapshot with 4 KiB chunks: $t"
else
	ktap_fail "classic snapshot with 4 KiB chunks" "$SNAP: '$t', $ORIGIN: '$(sh_table "$ORIGIN")'"
fi

sh_setup lh_snap_changes "$DEV" "$SDEV" "$OIMG" "$SIMG"
if sh_cmp "$DEV" "$OIMG" && sh_cmp "$SDEV" "$SIMG"; then
	ktap_ok "origin and snapshot read their own changes ($LH_WRITES)"
else
	ktap_fail "origin and snapshot read their own changes"
fi

tt_expect "exceptions of the COW LV: exit 0, $LH_CHUNKS exceptions" 0 "\\b$LH_CHUNKS\\b" \
	exceptions "$(dm_dev "$SNAP-cow")" --region-size 4k
ktap_diag "$TT_OUT"

# --- the merge, the origin LV open ---------------------------------------------

REAL_DEVT=$(lh_devt "$ORIGIN-real")
SNAP_DEVT=$(lh_devt "$SNAP")
exec 8<>"$DEV"
kmsg "dm-stream selftest: $TEST_NAME: merge --rollback"
TT_TIMEOUT=120 tt_expect "merge --rollback $SNAP with $ORIGIN open: exit 0" 0 "" \
	merge "$SNAP" --meta "$META" --rollback --rate $RATE ||
	ktap_bail "the merge did not start"
ktap_diag "$TT_OUT"
MERGE_OUT=$TT_OUT
copied0=$(sh_copied "$ORIGIN")
total=$(sh_total "$ORIGIN")
# Background copies paused: what follows sees the merge mid-way whatever
# the host's speed (copies on demand go on).
tt_run pause "$ORIGIN"
PAUSE="pause: exit $TT_RC $TT_ERR, $(sh_copied "$ORIGIN") copied, $(sh_state "$ORIGIN")"

read -r -a words <<<"$(sh_table "$ORIGIN")"
if [[ ${words[2]:-} == stream && ${words[4]:-} == "$REAL_DEVT" && ${words[5]:-} == "$SNAP_DEVT" ]]; then
	ktap_ok "$ORIGIN is a stream to $ORIGIN-real ($REAL_DEVT) from $SNAP ($SNAP_DEVT)"
else
	ktap_fail "$ORIGIN is a stream to $ORIGIN-real ($REAL_DEVT) from $SNAP ($SNAP_DEVT)" \
		"table: ${words[*]}"
fi

attr=$(dmsetup info -c --noheadings -o attr "$SNAP" 2>&1)
skipflag=$(lh_lv_field "$VG/vol" lv_skip_activation)
ktap_check "$SNAP read-only (attr $attr), activation skip flag on $VG/vol ('$skipflag')" \
	test "${attr//[^r]/}" = r -a "$skipflag" = 1

seeded=$((CHUNKS - LH_CHUNKS))
if [[ $total == "$CHUNKS" && $copied0 -ge $seeded && $copied0 -lt $CHUNKS ]] &&
   [[ $MERGE_OUT =~ seeded\ ([0-9]+)\ of\ ([0-9]+)\ regions ]] &&
   [[ ${BASH_REMATCH[1]} == "$seeded" && ${BASH_REMATCH[2]} == "$CHUNKS" ]]; then
	ktap_ok "regions without exceptions seeded: $copied0/$total copied at once ($seeded seeded)"
else
	ktap_fail "regions without exceptions seeded: $copied0/$total copied at once" \
		"expected 'seeded $seeded of $CHUNKS regions', $LH_CHUNKS to copy"
fi

if sh_cmp "$DEV" "$SIMG" >"$TEST_TMP/cmp" 2>&1 &&
   c=$(sh_copied "$ORIGIN") && [[ $c -lt $total ]]; then
	ktap_ok "$ORIGIN reads the snapshot's content at once ($c/$total copied; $PAUSE)"
else
	ktap_fail "$ORIGIN reads the snapshot's content at once" \
		"$(cat "$TEST_TMP/cmp"); copied ${c:-?}/$total ($PAUSE)"
fi

# Partial writes to exception chunks copied last (3945, 3957), then the writer.
WIMG=$(sh_tmpfile)
cp "$SIMG" "$WIMG"
if ! lh_write "$DEV" "$WIMG" $((3945 * 4096 + 512)) 1024 ||
   ! lh_write "$DEV" "$WIMG" $((3957 * 4096 + 3584)) 512; then
	ktap_diag "partial writes to $ORIGIN failed"
fi
sh_writer_start "$DEV" "$WIMG" "$W_OFF" "$W_LEN"
if sh_writer_more 30 && c=$(sh_copied "$ORIGIN") && [[ $c -lt $total ]]; then
	ktap_ok "writes to $ORIGIN during the merge ($(sh_writes) writes, $c/$total copied)"
else
	ktap_fail "writes to $ORIGIN during the merge" \
		"$(sh_writes) writes, copied ${c:-?}/$total; writer: $(cat "$TEST_TMP/sh.writer.out")"
fi

# More writes while the background copy runs, then at full speed.
tt_run continue "$ORIGIN"
sh_writer_more 30
tt_run rate "$ORIGIN" 0
TT_TIMEOUT=400 tt_expect "the merge completes (rate 0 now)" 0 "" wait "$ORIGIN" --timeout 300
sh_writer_more 20
n=$(sh_writes)
kmsg "dm-stream selftest: $TEST_NAME: finish"
TT_TIMEOUT=120 tt_expect "finish $ORIGIN: exit 0" 0 "" finish "$ORIGIN"
ktap_diag "$TT_OUT"
sh_writer_more 20
sh_writer_stop
ktap_check "the writer wrote throughout ($n writes before finish, $(sh_writes) in all, rc $SH_WRITER_RC: $SH_WRITER_OUT)" \
	test "$SH_WRITER_RC" -eq 0 -a "$(sh_writes)" -gt "$n"
exec 8<&-

lh_merged_checks "$VG" vol snap "$WIMG"

ktap_finish
