#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kernels.sh - fetch and cache another Debian kernel for the guest, and the
# headers to build the module against it (`make check KVER=<name>`).
#
# Usage:
#   scripts/kernels.sh NAME            install the headers and fetch the image
#                                      unless cached (quick when they are),
#                                      then print the release
#   scripts/kernels.sh --check NAME    exit 0 when both are there, 1 otherwise
#   scripts/kernels.sh --release NAME  print the release NAME stands for
#   scripts/kernels.sh --kdir NAME | --image NAME | --modules NAME
#                                      print the headers (for KDIR=), the
#                                      kernel image or the modules directory
#                                      (for run-guest --modules); fail when
#                                      not fetched
#
# NAME is one of
#   6.1          the stock guest kernel (the ABI of linux-headers-amd64, as
#                scripts/deps.sh fetches it)
#   rt           the PREEMPT_RT build of that ABI (6.1.0-<N>-rt-amd64)
#   X.Y, X.Y-rt  the release Debian's meta package linux-headers-X.Y-amd64
#                (linux-headers-X.Y-rt-amd64) depends on, e.g. 6.12 ->
#                6.12.<n>+deb12-amd64, from bookworm-security
#   a release    as `uname -r` prints it, e.g. 6.12.117+deb12-amd64 or
#                6.1.0-57-rt-amd64
#
# The image is Debian's linux-image-<release>-unsigned, downloaded with
# `apt-get download`, unpacked with `dpkg -x` (never installed) and
# depmod'ed in ${DMSTREAM_CACHE:-/var/cache/dm-stream}/kernel-<release>/,
# like the stock one (scripts/deps.sh); the headers are the package
# linux-headers-<release>, installed with apt-get (in /usr/src).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${DMSTREAM_CACHE:-/var/cache/dm-stream}

log() { printf 'kernels: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

# kernel_dir, kernel_ok, fetch_kernel
# shellcheck source=scripts/kernel-cache.sh
. "$REPO/scripts/kernel-cache.sh"

# meta_dep PKG: the linux-headers-<release> the candidate of PKG depends on.
meta_dep()
{
	local dep

	dep=$(apt-cache depends "$1" 2>/dev/null |
	      sed -n 's/^ *Depends: \(linux-headers-[^ ]*-amd64\)$/\1/p' | head -n 1)
	[[ -n $dep ]] || return 1
	printf '%s\n' "${dep#linux-headers-}"
}

# release NAME: the release NAME stands for.
release()
{
	local stock

	case $1 in
	6.1|stock|rt)
		stock=$("$REPO/scripts/deps.sh" --abi) || return 1
		if [[ $1 == rt ]]; then
			echo "${stock%-amd64}-rt-amd64"
		else
			echo "$stock"
		fi
		;;
	[0-9]*.*-amd64)
		echo "$1"
		;;
	[0-9].[0-9]|[0-9].[0-9][0-9])
		meta_dep "linux-headers-$1-amd64" ||
			die "no package linux-headers-$1-amd64 (apt-get update?)"
		;;
	[0-9].[0-9]-rt|[0-9].[0-9][0-9]-rt)
		meta_dep "linux-headers-${1%-rt}-rt-amd64" ||
			die "no package linux-headers-${1%-rt}-rt-amd64 (apt-get update?)"
		;;
	*)
		die "unknown kernel name '$1' (6.1, rt, X.Y, X.Y-rt or a release)"
		;;
	esac
}

headers_ok() { [[ -f /usr/src/linux-headers-$1/Makefile ]]; }

install_headers()
{
	log "installing linux-headers-$1"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=600 "linux-headers-$1" >&2
}

op=fetch
case ${1:-} in
--check|--release|--kdir|--image|--modules) op=${1#--}; shift ;;
-h|--help) usage; exit 0 ;;
-*) usage >&2; exit 1 ;;
esac
[[ $# -eq 1 && -n $1 ]] || { usage >&2; exit 1; }

r=$(release "$1") || die "cannot tell which release '$1' is"
d=$(kernel_dir "$r")

case $op in
release)
	echo "$r"
	;;
check)
	headers_ok "$r" && kernel_ok "$r"
	;;
kdir)
	headers_ok "$r" || die "no headers for $r (run: scripts/kernels.sh $1)"
	echo "/usr/src/linux-headers-$r"
	;;
image)
	kernel_ok "$r" || die "no image for $r (run: scripts/kernels.sh $1)"
	echo "$d/boot/vmlinuz-$r"
	;;
modules)
	kernel_ok "$r" || die "no image for $r (run: scripts/kernels.sh $1)"
	echo "$d/lib/modules"
	;;
fetch)
	if ! headers_ok "$r" || ! kernel_ok "$r"; then
		[[ $(id -u) -eq 0 ]] || die "must run as root to fetch kernel $r"
		# The package lists may be stale: update once and retry.
		updated=
		if ! headers_ok "$r"; then
			install_headers "$r" ||
				{ apt-get update -q >&2; updated=1; install_headers "$r"; } ||
				die "cannot install linux-headers-$r"
		fi
		if ! kernel_ok "$r"; then
			fetch_kernel "$r" ||
				{ [[ -z $updated ]] && apt-get update -q >&2 && fetch_kernel "$r"; } ||
				die "cannot fetch linux-image-$r-unsigned"
		fi
	fi
	log "kernel $r: headers in /usr/src/linux-headers-$r, image in $d"
	echo "$r"
	;;
esac
