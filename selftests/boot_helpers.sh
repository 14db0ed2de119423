# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# boot_helpers.sh - helpers for tests that run over several boots of the
# guest (test_reboot_01). Source after common.sh. Such a test declares, in
# comment lines among its first 40 lines,
#
#   # dmstream-boots: 2
#   # dmstream-disk: orig 32
#   # dmstream-disk: meta 4
#
# and the host side of run_tests.sh runs it once per boot, over raw images
# (sparse files, NAME.img, SIZE MiB) that outlive each boot, attached as
# virtio-blk disks with serial dmst-NAME. In boot b the script sees
# DMSTREAM_BOOT=b (BT_BOOT), DMSTREAM_BOOTS=N (BT_BOOTS) and
# DMSTREAM_STATE (BT_STATE), a writable directory of the host's that every
# boot sees (put expected checksums there). It branches on BT_BOOT; every
# boot but the last ends in bt_crash.
#
#   bt_require                 skip unless run as one boot of several
#   bt_disk NAME               echo /dev/vdX, the disk with serial dmst-NAME
#   bt_crash                   end this boot now, as a power cut would

# bt_require: BT_BOOT, BT_BOOTS and BT_STATE from the runner, virtio_blk
# loaded; skips the script (exit 4) when it is not run by the host side of
# run_tests.sh (e.g. by the guest side alone).
bt_require()
{
	BT_BOOT=${DMSTREAM_BOOT:-}
	BT_BOOTS=${DMSTREAM_BOOTS:-}
	BT_STATE=${DMSTREAM_STATE:-}
	if [[ -z $BT_BOOT || -z $BT_BOOTS || ! -d $BT_STATE ]]; then
		ktap_skip_all "needs several boots: run it through the host's run_tests.sh (make check T=$TEST_NAME)"
	fi
	require_module virtio_blk
	ktap_diag "boot $BT_BOOT of $BT_BOOTS, state in $BT_STATE"
}

# bt_disk NAME: the block device of the disk with serial dmst-NAME (waits
# up to 10 s for it to appear); fails when there is none.
bt_disk()
{
	local i f

	for ((i = 0; i < 100; i++)); do
		for f in /sys/block/vd*/serial; do
			[[ -f $f && $(cat "$f") == "dmst-$1" ]] || continue
			f=${f%/serial}
			echo "/dev/${f##*/}"
			return 0
		done
		sleep 0.1
	done
	return 1
}

# bt_crash: end the boot at once, like a power cut: no sync, no unmount, no
# device shutdown, dm devices left as they are (sysrq b; QEMU runs with
# -no-reboot and exits). Everything the guest kernel held -- page cache,
# in-core dm state, I/O not yet handed to the virtual disks -- is lost.
# Before that, the script's KTAP output so far must have reached the host
# (the runner's log on the shared directory, $DMSTREAM_BOOT_LOG), with the
# marker line the host looks for, and the kernel log is saved beside it.
bt_crash()
{
	local i mark='# dmstream-boot: power off'

	echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL xfail:0 xpass:0 skip:$KTAP_SKIP error:0"
	echo "$mark"
	for ((i = 0; i < 200; i++)); do
		grep -qxF -- "$mark" "${DMSTREAM_BOOT_LOG:-/dev/null}" 2>/dev/null && break
		sleep 0.1
	done
	dmesg >"$DMSTREAM_OUT/dmesg-at-crash.log" 2>/dev/null
	echo b >/proc/sysrq-trigger
	# Not reached.
	sleep 60
	echo "# bt_crash: the guest is still running"
	exit 1
}
