#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_lvm_01: dmstream copy of an LVM logical volume.
#
# LVM's metadata keeps naming the old physical volume, whatever dm-stream
# does to the LV's table: any reactivation (lvchange --refresh, vgchange -an
# and -ay, a reboot) maps the LV onto that PV again. A VG on a loop PV, an
# LV with random data; dmst.writer writes to the LV's first half and keeps
# the image of every acknowledged write.
#
# - copy --no-mirror of the LV is refused (exit 2, naming LVM and the
#   reactivation), the table untouched.
# - Mirror copy (the default) under writes, then abort: the LV is back on
#   LVM's own table and the helper gone; vgchange -an, -ay: the LV holds
#   every acknowledged write.
# - Mirror copy under writes, then lvchange --refresh while still writing
#   (a reactivation that replaces the stream behind dmstream's back): the LV
#   maps the PV again and holds every acknowledged write, during and after
#   the copy; the helper origin that LVM does not know is left over.
# - copy --no-mirror --force (a warning), a write, then vgchange -an, -ay:
#   the LV maps the old PV, which lacks that write. This is the loss the
#   refusal prevents, asserted as its documentation.
#
# LVM runs with its own lvm.conf (lvm_helpers.sh: LVM_SYSTEM_DIR under
# $TEST_TMP, the guest's /etc being read-only): no udev, no devices file, no
# metadata backups, only the test's loop devices.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"
. "$DIR/lvm_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum cmp
lh_require
sh_start 17

VG=dmstvg$$
LV=$VG-lv
LV_MB=8
HALF_BYTES=$((LV_MB * 1048576 / 2))
RATE=256k

make_loop -v PV 32 pv || ktap_skip_all "cannot set up loop devices"
make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v NEW $LV_MB new || ktap_skip_all "cannot set up loop devices"

lh_conf "$PV" || ktap_skip_all "cannot write an lvm.conf"

lh_lvm pvcreate -q "$PV" || ktap_skip_all "lvm pvcreate does not work here: $(tail -n 2 "$TEST_TMP/lvm.log")"
# At exit: the LV goes (vgchange -an), the VG, then a helper left over.
cleanup_add "_dm_remove_hard $LV-origin"
lh_vg_cleanup "$VG"
sh_setup lh_lvm vgcreate -q "$VG" "$PV"
sh_setup lh_lvm lvcreate -q -y -L ${LV_MB}M -n lv "$VG"
DEV=$(dm_dev "$LV")
_dm_node "$LV" || ktap_bail "no node for $LV: $DM_ERR"
LVM_TABLE=$(sh_table "$LV")
uuid=$(dmsetup info -c --noheadings -o uuid "$LV" | tr -d ' ')
ktap_check "the LV $LV: dm uuid ${uuid:0:12}..., table '$LVM_TABLE'" \
	test "${uuid:0:4}" = LVM- -a -n "$LVM_TABLE"

# lv_holds_img: LVM's own table, and the LV reads the image.
lv_holds_img()
{
	[[ $(sh_table "$LV") == "$LVM_TABLE" ]] && sh_cmp "$DEV" "$IMG"
}

# reactivate: vgchange -an, -ay; the LV's node again.
reactivate()
{
	lh_lvm vgchange -q -an "$VG" && lh_lvm vgchange -q -ay "$VG" && _dm_node "$LV"
}

# --- one-way refused -------------------------------------------------------------------

sh_fill_random "$DEV"
IMG=$(sh_tmpfile)
sh_read "$DEV" >"$IMG"
sh_zero "$META"
tt_expect "copy --no-mirror of an LVM LV: refused, exit 2, naming the reactivation" 2 \
	"LVM logical volume.*reactivation.*mirror" \
	copy "$LV" --dest "$NEW" --meta "$META" --no-mirror
ktap_check "... the LV's table untouched, no helper" \
	test "$(sh_table "$LV")" = "$LVM_TABLE" -a -z "$(dmsetup ls | grep -- "$LV-origin")"

# --- mirror, abort, reactivation -----------------------------------------------------

kmsg "dm-stream selftest: $TEST_NAME: mirror then abort"
sh_writer_start "$DEV" "$IMG" 0 "$HALF_BYTES"
sh_writer_more 20
tt_expect "copy of the LV in use (mirror): exit 0" 0 "mirrored" \
	copy "$LV" --dest "$NEW" --meta "$META" --rate $RATE
tt_run pause "$LV"
sh_writer_more 50
c=$(sh_copied "$LV")
tot=$(sh_total "$LV")
ktap_check "... mid-way under writes ($c/$tot regions copied, $(sh_writes) writes)" \
	test -n "$c" -a -n "$tot" -a "${c:-0}" -lt "${tot:-0}"
tt_expect "abort: exit 0, the helper removed" 0 "removed the helper origin" abort "$LV"
sh_writer_more 20
sh_writer_stop
ktap_check "... the writer wrote throughout ($(sh_writes) writes, rc $SH_WRITER_RC: $SH_WRITER_OUT)" \
	test "$SH_WRITER_RC" -eq 0
ktap_check "... the LV is on LVM's table again" test "$(sh_table "$LV")" = "$LVM_TABLE"
reactivate || ktap_diag "reactivation failed"
ktap_check "after vgchange -an, -ay: LVM's table, every acknowledged write there" \
	lv_holds_img

# --- mirror, reactivation behind dmstream's back -----------------------------------

sh_zero "$META"
kmsg "dm-stream selftest: $TEST_NAME: mirror then lvchange --refresh"
sh_writer_start "$DEV" "$IMG" 0 "$HALF_BYTES"
sh_writer_more 20
tt_expect "copy of the LV in use (mirror) again: exit 0" 0 "mirrored" \
	copy "$LV" --dest "$NEW" --meta "$META" --rate $RATE
tt_run pause "$LV"
sh_writer_more 50
n_before=$(sh_writes)
lh_lvm lvchange -q --refresh "$VG/lv"
ktap_check "lvchange --refresh while writing: LVM puts its own table back (no stream)" \
	test "$(sh_table "$LV")" = "$LVM_TABLE"
sh_writer_more 50
sh_writer_stop
ktap_check "... the writer wrote across it ($n_before writes before, $(sh_writes) in all, rc $SH_WRITER_RC)" \
	test "$SH_WRITER_RC" -eq 0 -a "$(sh_writes)" -gt "$n_before"
ktap_check "... the LV holds every acknowledged write: the PV was kept current" \
	sh_cmp "$DEV" "$IMG"
ktap_check "... the helper origin, unknown to LVM, is left over" dm_exists "$LV-origin"
dmsetup remove "$LV-origin" >/dev/null 2>&1 || ktap_diag "cannot remove $LV-origin"

# --- one-way with --force: the loss ------------------------------------------------

sh_zero "$META"
tt_expect "copy --no-mirror --force of the LV: exit 0 with a warning" 0 \
	"warning: .*LVM logical volume copied one-way" \
	copy "$LV" --dest "$NEW" --meta "$META" --no-mirror --force --rate $RATE
W=$(sh_tmpfile)
head -c 65536 /dev/urandom >"$W"
sh_write_at "$DEV" "$W" 0 65536
ktap_check "... a write reads back through the stream" \
	test "$(sh_md5 "$DEV" 65536)" = "$(md5sum <"$W" | cut -d' ' -f1)"
reactivate || ktap_diag "reactivation failed"
ktap_check "after vgchange -an, -ay the LV maps the old PV, and that write is lost" \
	test "$(sh_table "$LV")" = "$LVM_TABLE" -a \
	"$(sh_md5 "$DEV" 65536)" = "$(sh_md5 "$IMG" 65536)" -a \
	"$(sh_md5 "$DEV" 65536)" != "$(md5sum <"$W" | cut -d' ' -f1)"
dmsetup remove "$LV-origin" >/dev/null 2>&1 || ktap_diag "cannot remove $LV-origin"

ktap_finish
