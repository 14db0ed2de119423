#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# deps.sh - install what dm-stream needs to build and to run its selftests.
#
# Usage:
#   scripts/deps.sh            install missing Debian packages, fetch the guest
#                              kernel (idempotent; quick when nothing is missing)
#   scripts/deps.sh --check    exit 0 when nothing is missing, 1 otherwise
#   scripts/deps.sh --abi      print the kernel ABI of the installed
#                              linux-headers-amd64 (e.g. 6.1.0-56-amd64)
#   scripts/deps.sh --kernel-dir
#                              print the directory holding the unpacked guest
#                              kernel (boot/vmlinuz-<abi>, lib/modules/<abi>)
#
# The guest kernel is Debian's linux-image-<abi>-amd64-unsigned for the ABI
# that linux-headers-amd64 depends on, so the module built against those
# headers loads in the guest. It is fetched with `apt-get download`, unpacked
# with `dpkg -x` (never installed: its hooks want a bootloader) and cached
# outside the git tree in ${DMSTREAM_CACHE:-/var/cache/dm-stream}/kernel-<abi>/.

set -euo pipefail

CACHE=${DMSTREAM_CACHE:-/var/cache/dm-stream}

# Everything the build, the selftests, the bench and the tool need. python3
# and coreutils are normally present already; listing them costs nothing.
# flex, bison, libelf-dev (objtool) and libssl-dev build the debug kernel
# (scripts/debug-kernel.sh) from linux-source-6.1. lvm2 is for the LVM
# tests (test_lvm_01), nbd-server, nbd-client and iproute2 (tc netem) for
# the network origin of test_nbd_01: the guest runs the host's tools from
# its shared root. gnuplot-nox draws the bench's fg.png (bench/summarize.py).
# dkms builds the module as users install it (scripts/dkms-check.sh,
# test_dkms_01); openssl makes the throw-away signing keys of test_sign_01
# and of DKMS's module signing.
PACKAGES=(
	make gcc libc6-dev pkg-config
	linux-headers-amd64 linux-source-6.1 sparse
	libdevmapper-dev libisal-dev libjson-c-dev python3-docutils
	qemu-system-x86 busybox-static cpio xz-utils
	kmod dmsetup util-linux coreutils e2fsprogs
	fio bc blktrace python3 bsdutils strace stress-ng lvm2 gnuplot-nox
	nbd-server nbd-client iproute2
	flex bison libelf-dev libssl-dev
	dkms openssl
)

log() { printf 'deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# kernel_dir, kernel_ok, fetch_kernel
# shellcheck source=scripts/kernel-cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/kernel-cache.sh"

# ABI (uname -r of the guest kernel) from the headers meta package's
# dependency, e.g. "linux-headers-6.1.0-56-amd64 (= 6.1.192-2)".
abi() {
	local dep

	dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null) ||
		return 1
	dep=${dep%%[ ,]*}
	[[ $dep == linux-headers-*-amd64 ]] || return 1
	printf '%s\n' "${dep#linux-headers-}"
}

missing_packages() {
	local p st

	for p in "${PACKAGES[@]}"; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || st=
		[[ $st == installed ]] || printf '%s\n' "$p"
	done
}

case ${1:-} in
--abi)
	abi || die "linux-headers-amd64 is not installed (run: make deps)"
	exit 0
	;;
--kernel-dir)
	a=$(abi) || die "linux-headers-amd64 is not installed (run: make deps)"
	kernel_dir "$a"
	exit 0
	;;
--check)
	m=$(missing_packages)
	[[ -z $m ]] || { log "missing packages: $m"; exit 1; }
	a=$(abi) || exit 1
	kernel_ok "$a" || { log "guest kernel $a not in $(kernel_dir "$a")"; exit 1; }
	exit 0
	;;
"")
	;;
*)
	echo "usage: $0 [--check | --abi | --kernel-dir]" >&2
	exit 1
	;;
esac

mapfile -t missing < <(missing_packages)
a=$(abi) || a=
if [[ ${#missing[@]} -eq 0 && -n $a ]] && kernel_ok "$a"; then
	log "nothing missing (guest kernel $a in $(kernel_dir "$a"))"
	exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root to install packages (sudo make deps)"
export DEBIAN_FRONTEND=noninteractive

updated=
apt_update() {
	[[ -n $updated ]] && return 0
	log "apt-get update"
	apt-get update -q
	updated=1
}

if [[ ${#missing[@]} -gt 0 ]]; then
	apt_update
	log "installing: ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

a=$(abi) || die "cannot derive the kernel ABI from linux-headers-amd64"
if ! kernel_ok "$a"; then
	# The package lists may be missing on a fresh machine even when
	# every package is installed: update once and retry.
	fetch_kernel "$a" || { apt_update; fetch_kernel "$a"; } ||
		die "cannot fetch linux-image-$a-unsigned"
fi
log "done (guest kernel $a in $(kernel_dir "$a"))"
