#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# debug-kernel.sh - build, once, the guest kernel for `make check KERNEL=debug`.
#
# Usage:
#   scripts/debug-kernel.sh            build it unless already built (about
#                                      90 minutes on two busy cores; quick when
#                                      cached), then print its directory
#   scripts/debug-kernel.sh --check    exit 0 when it is built, 1 otherwise
#   scripts/debug-kernel.sh --dir      print its directory, built or not
#   scripts/debug-kernel.sh --kdir | --image | --modules | --release
#                                      print the build tree (for KDIR=), the
#                                      bzImage, the modules directory (for
#                                      run-guest --modules) or the release;
#                                      fail when it is not built
#
# The kernel is Debian's linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz,
# installed by scripts/deps.sh) configured as x86_64_defconfig +
# kvm_guest.config + scripts/debug-kernel.config: KASAN, lockdep, kmemleak,
# debug objects and the like; virtio, 9p, ext4 and loop built in; the dm
# targets as modules. Every option of the fragment is checked in the final
# .config and the build stops when one did not take.
#
# It is cached outside the git tree, in
#   ${DMSTREAM_CACHE:-/var/cache/dm-stream}/debug-kernel-<source version>-<hash>/
#     linux/             the build tree: .config, Module.symvers, scripts;
#                        `make -C linux M=<dir> modules` builds against it
#     bzImage            the kernel image
#     lib/modules/<release>/
#                        the installed modules, with depmod run
#     build.log          the configuration and build output
#     .complete          written last: release and build time
# where <hash> covers the fragment and the recipe below, so editing the
# fragment builds a new kernel in a new directory (the old one stays until
# removed by hand). An interrupted build resumes where it stopped. Two
# builds of the same kernel do not run at once: the second waits for the
# first and then finds it done.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${DMSTREAM_CACHE:-/var/cache/dm-stream}
FRAGMENT=$REPO/scripts/debug-kernel.config
SOURCE_PKG=linux-source-6.1
SOURCE_TAR=/usr/src/$SOURCE_PKG.tar.xz

# Part of the hash: change it when the steps below change what is built.
RECIPE="x86_64_defconfig kvm_guest.config fragment; bzImage modules; v1"

log() { printf 'debug-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kernel_dir()
{
	local ver hash

	ver=$(dpkg-query -W -f='${Version}' "$SOURCE_PKG" 2>/dev/null) ||
		die "$SOURCE_PKG is not installed (run: make deps)"
	[[ -f $FRAGMENT ]] || die "no $FRAGMENT"
	hash=$( { printf '%s\n' "$RECIPE"; cat "$FRAGMENT"; } |
		sha256sum | cut -c1-12)
	printf '%s/debug-kernel-%s-%s\n' "$CACHE" "$ver" "$hash"
}

built()
{
	[[ -f $1/.complete && -f $1/bzImage && -f $1/linux/Module.symvers ]]
}

# The kernel's make, isolated from a calling make's flags (W=1, C=2 or a
# jobserver would leak into the kernel build). An empty LOCALVERSION keeps
# setlocalversion from appending "+".
kmake()
{
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		make -C "$d/linux" LOCALVERSION= "$@"
}

# Every line of the fragment must hold in $d/linux/.config.
check_config()
{
	local line opt want have bad=0

	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			opt=${line%%=*}
			want=${line#*=}
			want=${want#\"}
			want=${want%\"}
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			want=n
			;;
		*)
			continue
			;;
		esac
		have=$("$d/linux/scripts/config" --file "$d/linux/.config" \
			--state "${opt#CONFIG_}")
		[[ $want == n && $have == undef ]] && have=n
		if [[ $have != "$want" ]]; then
			log "$opt: asked for $want, got $have"
			bad=$((bad + 1))
		fi
	done <"$FRAGMENT"
	[[ $bad -eq 0 ]] ||
		die "$bad option(s) of $FRAGMENT did not take (see $d/linux/.config)"
}

build()
{
	local start=$SECONDS rel

	[[ -f $SOURCE_TAR ]] || die "no $SOURCE_TAR (run: make deps)"
	if ! command -v flex >/dev/null || ! command -v bison >/dev/null ||
	   [[ ! -f /usr/include/gelf.h ]]; then
		die "flex, bison or libelf-dev missing (run: make deps)"
	fi
	mkdir -p "$d"

	if [[ ! -f $d/.extracted ]]; then
		log "extracting $SOURCE_TAR into $d/linux"
		rm -rf "$d/linux"
		mkdir "$d/linux"
		tar -xJf "$SOURCE_TAR" -C "$d/linux" --strip-components=1
		touch "$d/.extracted"
	fi

	log "configuring (log: $d/build.log)"
	cp "$FRAGMENT" "$d/fragment.config"
	{
		kmake x86_64_defconfig kvm_guest.config &&
		"$d/linux/scripts/kconfig/merge_config.sh" -m -O "$d/linux" \
			"$d/linux/.config" "$d/fragment.config" &&
		kmake olddefconfig
	} >"$d/build.log" 2>&1 || {
		tail -n 20 "$d/build.log" >&2
		die "configuration failed"
	}
	check_config
	log "building with $(nproc) jobs (bzImage modules)"
	if ! kmake -j"$(nproc)" bzImage modules >>"$d/build.log" 2>&1; then
		grep -E -m 20 'error|Error' "$d/build.log" >&2 || true
		tail -n 10 "$d/build.log" >&2
		die "build failed (log: $d/build.log)"
	fi
	# Known only now: setlocalversion reads the generated auto.conf.
	rel=$(cat "$d/linux/include/config/kernel.release")
	[[ $rel == *-dmstream-debug ]] || die "unexpected kernel release '$rel'"

	rm -rf "${d:?}/lib"
	kmake INSTALL_MOD_PATH="$d" INSTALL_MOD_STRIP=1 modules_install \
		>>"$d/build.log" 2>&1 || die "modules_install failed (log: $d/build.log)"
	[[ -f $d/lib/modules/$rel/modules.dep ]] ||
		die "no modules.dep after modules_install: depmod did not run"
	cp "$d/linux/arch/x86/boot/bzImage" "$d/bzImage"
	printf 'release=%s\nbuild_seconds=%d\n' "$rel" $((SECONDS - start)) \
		>"$d/.complete"
	log "built $rel in $((SECONDS - start)) s"
}

d=$(kernel_dir)

case ${1:-} in
--dir)
	echo "$d"
	exit 0
	;;
--check)
	built "$d"
	exit
	;;
--kdir|--image|--modules|--release)
	built "$d" || die "not built yet: run scripts/debug-kernel.sh"
	case $1 in
	--kdir) echo "$d/linux" ;;
	--image) echo "$d/bzImage" ;;
	--modules) echo "$d/lib/modules" ;;
	--release) sed -n 's/^release=//p' "$d/.complete" ;;
	esac
	exit 0
	;;
"")
	;;
-h|--help)
	sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit 0
	;;
*)
	echo "usage: $0 [--check | --dir | --kdir | --image | --modules | --release]" >&2
	exit 1
	;;
esac

if ! built "$d"; then
	mkdir -p "$CACHE" || die "cannot write $CACHE (set DMSTREAM_CACHE)"
	exec 8>"$CACHE/.debug-kernel.lock"
	if ! flock -n 8; then
		log "waiting for another build of the debug kernel"
		flock 8
	fi
	built "$d" || build
	exec 8>&-
fi
echo "$d"
