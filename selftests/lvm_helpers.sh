# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# lvm_helpers.sh - LVM (lvm2) in the guest, for the tests of LVM logical
# volumes (test_lvm_01, test_merge_02, test_merge_03). Source after
# common.sh and stream_helpers.sh.
#
# The guest runs no udev and its /etc is the host's, read-only: LVM runs
# with its own lvm.conf in $TEST_TMP/lvm (LVM_SYSTEM_DIR, exported, so the
# dmstream tool's own lvm calls use it too): no udev, no devices file, no
# metadata backups or archives, no lvmpolld, and a filter that accepts only
# the test's physical volumes.
#
#   lh_require                 skip the script unless lvm2 is installed
#   lh_conf PV...              write that lvm.conf, accepting only PV...
#   lh_lvm ARGS...             an lvm command, its output kept in
#                              $TEST_TMP/lvm.log; on failure the last
#                              lines as a KTAP diagnostic, status 1
#   lh_vg_cleanup VG           at exit: VG deactivated, then removed
#   lh_lv_field VG/LV FIELD    one lvs field of one LV (--binary: 0/1 for
#                              flags), blanks removed
#   lh_lvs VG                  the names of every LV of VG (hidden ones
#                              too), one a line, sorted
#   lh_devt NAME               "major:minor" of the dm device NAME
#
# Classic snapshots with 4 KiB chunks, as the merge tests use them:
#
#   lh_snap_changes ODEV SDEV OIMG SIMG
#                              the same set of writes to an origin LV ODEV
#                              and to its snapshot SDEV (chunks changed
#                              through each, some through both, some
#                              partly), patched into OIMG and SIMG, the
#                              images of what each must read; sets
#                              LH_CHUNKS (how many chunks now have an
#                              exception) and LH_WRITES (a description)
#   lh_write DEV IMG OFFSET LEN   LEN random bytes to DEV at OFFSET
#                              (O_DIRECT), patched into IMG
#   lh_merged_checks VG LV SNAPLV IMG
#                              six results: after a merge of VG/SNAPLV
#                              into VG/LV was finished, LVM's view is
#                              clean (linear LV, no snapshot and none of
#                              its devices, skip flag cleared, vgck) and
#                              the LV reads IMG, before and after
#                              vgchange -an, -ay
#
# The writer with verifiable content is stream_helpers.sh's sh_writer_*.

LH_CHUNK=4096

lh_require()
{
	command -v lvm >/dev/null 2>&1 ||
		ktap_skip_all "lvm2 is not installed (scripts/deps.sh installs it)"
}

lh_conf()
{
	local pv filter=''

	for pv in "$@"; do
		filter+="\"a|^$pv\$|\", "
	done
	export LVM_SYSTEM_DIR=$TEST_TMP/lvm LVM_SUPPRESS_FD_WARNINGS=1
	mkdir -p "$LVM_SYSTEM_DIR" || return 1
	cat >"$LVM_SYSTEM_DIR/lvm.conf" <<EOF
devices {
	obtain_device_list_from_udev = 0
	use_devicesfile = 0
	external_device_info_source = "none"
	filter = [ $filter"r|.*|" ]
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
global {
	use_lvmpolld = 0
}
backup {
	backup = 0
	archive = 0
}
EOF
}

lh_lvm()
{
	if ! lvm "$@" >>"$TEST_TMP/lvm.log" 2>&1; then
		ktap_diag "lvm $* failed: $(tail -n 3 "$TEST_TMP/lvm.log")"
		return 1
	fi
}

lh_vg_cleanup()
{
	cleanup_add "lvm vgremove -q -f $1 >/dev/null 2>&1"
	cleanup_add "lvm vgchange -q -an $1 >/dev/null 2>&1"
}

lh_lv_field()
{
	lvm lvs --noheadings --binary -o "$2" "$1" 2>/dev/null | tr -d ' '
}

lh_lvs()
{
	lvm lvs -a --noheadings -o lv_name "$1" 2>/dev/null | tr -d ' []' | sort
}

lh_devt()
{
	dmsetup info -c --noheadings -o major,minor --separator : "$1" 2>/dev/null |
		tr -d ' '
}

# lh_write DEV IMG OFFSET_BYTES LEN_BYTES: LEN random bytes written to DEV
# at OFFSET with O_DIRECT (in 512-byte blocks unless both are multiples of
# 4 KiB), then patched into IMG.
lh_write()
{
	local dev=$1 img=$2 off=$3 len=$4 bs=4096 f

	[[ $((len % 4096)) -eq 0 && $((off % 4096)) -eq 0 ]] || bs=512
	f=$(sh_tmpfile) || return 1
	head -c "$len" /dev/urandom >"$f" &&
		sh_write_at "$dev" "$f" $((off / 512)) "$bs" &&
		sh_patch_file "$img" "$f" $((off / 512)) &&
		rm -f "$f"
}

# Origin: chunks 3900-3939 in one write, 5 + 97 i (i < 20).
# Snapshot: chunks 3920-3959 in one write (20 chunks in common), 7 + 89 i
# (i < 20), 1 KiB inside chunk 2500 (copied before it is written) and
# 512 bytes inside chunk 102 (which the origin changed too).
lh_snap_changes()
{
	local odev=$1 sdev=$2 oimg=$3 simg=$4 i c
	local -A chunks=()

	lh_write "$odev" "$oimg" $((3900 * LH_CHUNK)) $((40 * LH_CHUNK)) || return 1
	for ((c = 3900; c < 3940; c++)); do chunks[$c]=1; done
	for ((i = 0; i < 20; i++)); do
		c=$((5 + 97 * i))
		lh_write "$odev" "$oimg" $((c * LH_CHUNK)) $LH_CHUNK || return 1
		chunks[$c]=1
	done
	lh_write "$sdev" "$simg" $((3920 * LH_CHUNK)) $((40 * LH_CHUNK)) || return 1
	for ((c = 3920; c < 3960; c++)); do chunks[$c]=1; done
	for ((i = 0; i < 20; i++)); do
		c=$((7 + 89 * i))
		lh_write "$sdev" "$simg" $((c * LH_CHUNK)) $LH_CHUNK || return 1
		chunks[$c]=1
	done
	lh_write "$sdev" "$simg" $((2500 * LH_CHUNK + 1536)) 1024 || return 1
	chunks[2500]=1
	# Chunk 102 is 5 + 97: changed through the origin above.
	lh_write "$sdev" "$simg" $((102 * LH_CHUNK + 2048)) 512 || return 1
	chunks[102]=1
	# shellcheck disable=SC2034 # for the caller
	LH_CHUNKS=${#chunks[@]}
	# shellcheck disable=SC2034 # for the caller
	LH_WRITES="60 chunks through the origin, 60 and 2 partial ones through the snapshot, 21 in common"
}

lh_merged_checks()
{
	local vg=$1 lv=$2 snap=$3 img=$4 dev t left d

	dev=$(dm_dev "$vg-$lv")
	t=$(sh_table "$vg-$lv" 2>&1)
	left=
	for d in "$vg-$lv-real" "$vg-$snap" "$vg-$snap-cow"; do
		dm_exists "$d" && left+=" $d"
	done
	if [[ $t =~ ^0\ [0-9]+\ linear\  && -z $left ]]; then
		ktap_ok "$vg-$lv is linear on the PV, no snapshot devices left"
	else
		ktap_fail "$vg-$lv is linear on the PV, no snapshot devices left" \
			"table '$t'; left:${left:- none}"
	fi
	t=$(lh_lvs "$vg")
	ktap_check "lvs lists no snapshot (LVs: ${t//$'\n'/ })" test "$t" = "$lv"
	t=$(lh_lv_field "$vg/$lv" lv_skip_activation)
	ktap_check "the activation skip flag of $vg/$lv is cleared ('$t')" test "$t" = 0
	ktap_check "vgck $vg: clean" _lh_vgck "$vg"
	ktap_check "$vg-$lv holds the snapshot's content and every acknowledged write" \
		sh_cmp "$dev" "$img"
	if lh_lvm vgchange -q -an "$vg" && lh_lvm vgchange -q -ay "$vg" &&
	   _dm_node "$vg-$lv" && sh_cmp "$dev" "$img" >"$TEST_TMP/.lh.cmp" 2>&1 &&
	   [[ $(sh_table "$vg-$lv") =~ ^0\ [0-9]+\ linear\  ]]; then
		ktap_ok "after vgchange -an, -ay: linear, the same content"
	else
		ktap_fail "after vgchange -an, -ay: linear, the same content" \
			"table '$(sh_table "$vg-$lv" 2>&1)' $(cat "$TEST_TMP/.lh.cmp" 2>/dev/null)"
	fi
}

# _lh_vgck VG: vgck exits 0 and warns of nothing.
_lh_vgck()
{
	local out rc=0

	out=$(lvm vgck "$1" 2>&1) || rc=$?
	echo "$out"
	[[ $rc -eq 0 ]] && ! grep -Eqi 'warning|error|inconsisten|fail' <<<"$out"
}
