#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# dkms-check.sh - build and install dm-stream through DKMS, as a user would
# (dkms add, build, install), for kernels whose headers are installed,
# without touching the system's DKMS state or /lib/modules.
#
# Usage:
#   scripts/dkms-check.sh [--quiet] [--kernel RELEASE]...
#                         every kernel with headers in /usr/src (each
#                         /usr/src/linux-headers-*/ with a Module.symvers),
#                         or the RELEASEs given (e.g. 6.1.0-57-amd64)
#   scripts/dkms-check.sh --source-hash
#                         print the hash of the module's sources in this tree
#                         (what the result records; test_dkms_01 compares)
#
# For each kernel, in a private directory: a copy of the files the module's
# build reads (dkms.conf, Kbuild, dm-stream/Kbuild, dm-stream/*.[ch]) is
# added with `dkms add --sourcetree --dkmstree`, built with `dkms build -k
# RELEASE --kernelsourcedir /usr/src/linux-headers-RELEASE`, and installed
# with `dkms install --installtree --no-depmod`. DKMS signs the module on
# the way (as it does on Secure Boot machines) with a throw-away key made
# in that directory (its mok_signing_key, mok_certificate and sign_file
# variables, set in the environment), not with /var/lib/dkms/mok.key.
#
# The result replaces ${DMSTREAM_CACHE:-/var/cache/dm-stream}/dkms/RELEASE/:
#   status        result=ok|failed, reason=, version= (dkms.conf's
#                 PACKAGE_VERSION), source_sha256=, mok_serial= (the
#                 throw-away certificate's serial), tree=, date=
#   dm-stream.ko  the module DKMS installed (result=ok only)
#   mok.der       the certificate DKMS signed it with
#   dkms.log      the output of the dkms commands (and make.log on failure)
# selftests/test_dkms_01.sh (in the guest) loads that module.
#
# A dkms.conf whose PACKAGE_VERSION is not the target version of
# dm-stream/stream-interface.h fails the check: the two are kept in step.
#
# Exits 0 when every kernel built and installed, 1 otherwise (and when no
# kernel headers or no dkms are found). Needs root (dkms add does).

set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${DMSTREAM_CACHE:-/var/cache/dm-stream}
NAME=dm-stream

quiet=
kernels=()

log() { printf 'dkms-check: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The files the module's build reads, relative to the tree (sorted, the
# generated *.mod.c left out).
source_files()
{
	local f

	(
		cd "$REPO" || exit 1
		for f in dkms.conf Kbuild dm-stream/Kbuild dm-stream/*.[ch]; do
			[[ $f == *.mod.c || ! -f $f ]] || echo "$f"
		done | LC_ALL=C sort
	)
}

source_hash()
{
	local files

	mapfile -t files < <(source_files)
	[[ ${#files[@]} -gt 0 ]] || return 1
	(cd "$REPO" && sha256sum -- "${files[@]}") | sha256sum | cut -d' ' -f1
}

# dkms.conf's PACKAGE_VERSION and the target's version from the header.
conf_version()
{
	sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO/dkms.conf"
}

target_version()
{
	local h=$REPO/dm-stream/stream-interface.h v p out=

	for p in MAJOR MINOR PATCH; do
		v=$(sed -n "s/^#define[[:space:]]*STREAM_TARGET_VERSION_${p}[[:space:]]*\\([0-9]*\\).*/\\1/p" "$h")
		[[ -n $v ]] || return 1
		out+=${out:+.}$v
	done
	echo "$out"
}

# Releases with usable headers in /usr/src (the *-common directories have
# no Module.symvers).
installed_kernels()
{
	local d

	for d in /usr/src/linux-headers-*/; do
		[[ -f $d/Module.symvers && -f $d/include/generated/utsrelease.h ]] || continue
		sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$d/include/generated/utsrelease.h"
	done
}

kdir_of()
{
	local d

	for d in "/usr/src/linux-headers-$1" "/lib/modules/$1/build"; do
		[[ -f $d/Module.symvers ]] && { readlink -f "$d"; return 0; }
	done
	return 1
}

# sign-file for RELEASE: the headers' own, or Debian's linux-kbuild one.
sign_file_of()
{
	local f

	for f in "$2/scripts/sign-file" "/usr/lib/linux-kbuild-${1%.*}/scripts/sign-file" \
		"/usr/lib/linux-kbuild-${1%-*}/scripts/sign-file"; do
		[[ -x $f ]] && { echo "$f"; return 0; }
	done
	return 1
}

# run LOG CMD...: CMD's output appended to LOG (and shown unless --quiet).
run()
{
	local logf=$1

	shift
	printf '$ %s\n' "$*" >>"$logf"
	if [[ -n $quiet ]]; then
		"$@" >>"$logf" 2>&1
	else
		"$@" 2>&1 | tee -a "$logf" >&2
		return "${PIPESTATUS[0]}"
	fi
}

# check_kernel RELEASE: one DKMS round in a private directory; the result
# replaces $CACHE/dkms/RELEASE.
check_kernel()
{
	local rel=$1 kdir sign ver tver work res reason='' rc=0 f serial=''
	local -a trees

	mkdir -p "$CACHE/dkms" || return 1
	work=$(mktemp -d "$CACHE/dkms/.work.XXXXXX") || return 1
	res=$work/result
	mkdir -p "$res" "$work/src/dm-stream" "$work/source" "$work/tree" \
		"$work/install/$rel"
	: >"$res/dkms.log"
	ver=$(conf_version)
	tver=$(target_version)
	trees=(--sourcetree "$work/source" --dkmstree "$work/tree")

	if ! kdir=$(kdir_of "$rel"); then
		reason="no kernel headers for $rel in /usr/src/linux-headers-$rel"
	elif [[ -z $ver || $ver != "$tver" ]]; then
		reason="dkms.conf PACKAGE_VERSION '$ver' is not the target version '$tver' of dm-stream/stream-interface.h"
	elif ! (cd "$REPO" && source_files | cpio -pdm --quiet "$work/src"); then
		reason="cannot copy the sources"
	elif ! sign=$(sign_file_of "$rel" "$kdir"); then
		reason="no sign-file for $rel"
	fi

	if [[ -z $reason ]]; then
		# DKMS reads these from its framework.conf, else from the
		# environment: a private key, never /var/lib/dkms/mok.key.
		export sign_file=$sign mok_signing_key=$work/mok.key \
			mok_certificate=$work/mok.der
		if ! run "$res/dkms.log" dkms add "${trees[@]}" "$work/src"; then
			reason="dkms add failed"
		elif ! run "$res/dkms.log" dkms build -m "$NAME" -v "$ver" -k "$rel" \
			--kernelsourcedir "$kdir" "${trees[@]}"; then
			reason="dkms build failed"
			f=$work/tree/$NAME/$ver/build/make.log
			[[ -f $f ]] && cat "$f" >>"$res/dkms.log"
		elif ! run "$res/dkms.log" dkms install -m "$NAME" -v "$ver" -k "$rel" \
			--kernelsourcedir "$kdir" "${trees[@]}" \
			--installtree "$work/install" --no-depmod; then
			reason="dkms install failed"
		else
			# Compressed as the kernel's own modules are (6.12: .ko.xz).
			f=$(find "$work/install/$rel" -name "$NAME.ko*" -print -quit)
			case $f in
			"") reason="dkms install left no $NAME.ko under the install tree" ;;
			*.ko) cp "$f" "$res/$NAME.ko" ;;
			*.ko.xz) xz -dc "$f" >"$res/$NAME.ko" ;;
			*.ko.zst) zstd -qdc "$f" >"$res/$NAME.ko" ;;
			*.ko.gz) gzip -dc "$f" >"$res/$NAME.ko" ;;
			*) reason="dkms installed $f: unknown compression" ;;
			esac || reason="cannot decompress $f"
		fi
		unset sign_file mok_signing_key mok_certificate
		if [[ -f $work/mok.der ]]; then
			cp "$work/mok.der" "$res/mok.der"
			serial=$(openssl x509 -inform DER -in "$work/mok.der" -noout -serial)
			serial=${serial#serial=}
		fi
	fi

	{
		if [[ -z $reason ]]; then
			echo result=ok
		else
			echo result=failed
			rc=1
		fi
		echo "reason=$reason"
		echo "version=$ver"
		echo "source_sha256=$(source_hash)"
		echo "mok_serial=$serial"
		echo "tree=$REPO"
		echo "date=$(date -u +%FT%TZ)"
	} >"$res/status"
	chmod -R a+rX "$res"

	rm -rf "$CACHE/dkms/$rel"
	mv "$res" "$CACHE/dkms/$rel"
	rm -rf "$work"
	if [[ $rc -eq 0 ]]; then
		log "$rel: ok ($NAME $ver: $CACHE/dkms/$rel/$NAME.ko)"
	else
		log "$rel: FAILED: $reason (log: $CACHE/dkms/$rel/dkms.log)"
	fi
	return $rc
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--quiet) quiet=1; shift ;;
	--kernel) [[ $# -ge 2 ]] || die "--kernel needs a release"; kernels+=("$2"); shift 2 ;;
	--source-hash) source_hash; exit ;;
	-h|--help) sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "usage: $0 [--quiet] [--kernel RELEASE]... | --source-hash" >&2; exit 1 ;;
	esac
done

command -v dkms >/dev/null || die "dkms is not installed (run: make deps)"
command -v openssl >/dev/null || die "openssl is not installed (run: make deps)"
[[ $(id -u) -eq 0 ]] || die "dkms add needs root"
[[ ${#kernels[@]} -gt 0 ]] || mapfile -t kernels < <(installed_kernels)
[[ ${#kernels[@]} -gt 0 ]] || die "no kernel headers in /usr/src (run: make deps)"

failed=0
for k in "${kernels[@]}"; do
	check_kernel "$k" || failed=$((failed + 1))
done
[[ $failed -eq 0 ]]
