# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# kernel-cache.sh - the cache of unpacked Debian kernels the guest boots,
# shared by scripts/deps.sh (the stock kernel) and scripts/kernels.sh
# (the others). Sourced: the caller sets CACHE and defines log and die.
#
#   kernel_dir RELEASE    $CACHE/kernel-RELEASE: boot/vmlinuz-RELEASE and
#                         lib/modules/RELEASE
#   kernel_ok RELEASE     0 when that directory is complete
#   fetch_kernel RELEASE  download linux-image-RELEASE-unsigned with
#                         `apt-get download`, unpack it with `dpkg -x`
#                         (never installed: its hooks want a bootloader),
#                         depmod it and put it in place whole; 1 when the
#                         download fails (stale package lists?), die when
#                         the package lacks the image or its modules

kernel_dir() { printf '%s/kernel-%s\n' "$CACHE" "$1"; }

kernel_ok()
{
	local d

	d=$(kernel_dir "$1")
	[[ -f $d/.complete && -f $d/boot/vmlinuz-$1 && -f $d/lib/modules/$1/modules.dep ]]
}

fetch_kernel()
{
	local r=$1 d stage pkg

	d=$(kernel_dir "$r")
	pkg=linux-image-$r-unsigned
	mkdir -p "$CACHE"
	stage=$(mktemp -d "$CACHE/.kernel-$r.XXXXXX")
	# apt-get download drops to the _apt user: let it write here.
	chmod 0755 "$stage"
	chown _apt "$stage" 2>/dev/null || true
	log "fetching $pkg into $d"
	(cd "$stage" && apt-get download -q "$pkg" >&2) ||
		{ rm -rf "$stage"; return 1; }
	mkdir "$stage/root"
	dpkg -x "$stage"/"$pkg"_*.deb "$stage/root"
	rm -f "$stage"/*.deb
	# A merged-/usr package would ship usr/lib/modules.
	if [[ ! -d $stage/root/lib/modules && -d $stage/root/usr/lib/modules ]]; then
		mv "$stage/root/usr/lib/modules" "$stage/root/lib/modules" 2>/dev/null ||
			{ mkdir -p "$stage/root/lib" &&
			  mv "$stage/root/usr/lib/modules" "$stage/root/lib/modules"; }
	fi
	[[ -f $stage/root/boot/vmlinuz-$r && -d $stage/root/lib/modules/$r ]] ||
		{ rm -rf "$stage"; die "$pkg has no boot/vmlinuz-$r or lib/modules/$r"; }
	depmod -b "$stage/root" "$r"
	touch "$stage/root/.complete"
	rm -rf "$d"
	mv "$stage/root" "$d"
	rmdir "$stage"
}
