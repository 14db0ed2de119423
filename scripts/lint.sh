#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# lint.sh - the static checks of `make lint`, each one reported as a KTAP
# subtest; exits 1 when any fails.
#
#   1. scripts/check-interface-docs.py: the docs state stream-interface.h
#   2. shellcheck -x of every shell script in the tree
#   3. checkpatch.pl --strict of dm-stream/ (from Debian's linux-source-6.1,
#      extracted once into $DMSTREAM_CACHE/checkpatch); LINUX_VERSION_CODE
#      is allowed in dm-stream/compat.h only
#   4. sparse over the module (kbuild's C=2) against the guest kernel's
#      headers
#
# Installs shellcheck, sparse and linux-source-6.1 when missing (root).

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

CACHE=${DMSTREAM_CACHE:-/var/cache/dm-stream}
SOURCE_TAR=/usr/src/linux-source-6.1.tar.xz
n=0
failed=0

need() {
	local pkg=$1 file=$2

	[[ -e $file ]] && return 0
	echo "# installing $pkg" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null
}

# report NAME LOG STATUS: one subtest, the log indented under it on failure.
report() {
	n=$((n + 1))
	if [[ $3 -eq 0 ]]; then
		echo "ok $n $1"
	else
		sed 's/^/# /' "$2"
		echo "not ok $n $1"
		failed=$((failed + 1))
	fi
}

checkpatch() {
	local dir=$CACHE/checkpatch

	if [[ ! -x $dir/scripts/checkpatch.pl ]]; then
		need linux-source-6.1 "$SOURCE_TAR" || return 1
		mkdir -p "$dir" &&
			tar -xJf "$SOURCE_TAR" -C "$dir" --strip-components=1 --wildcards \
				'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
				'*/scripts/const_structs.checkpatch' || return 1
	fi
	# LONG_LINE(_STRING): checkpatch takes `x = "a long message";` for code;
	# messages are never split (coding style); long_lines checks the rest.
	# PREFER_DEFINED_ATTRIBUTE_MACRO: stream-format.h defines __packed for
	# userspace.
	# compat.h is where the kernel versions are tested: LINUX_VERSION_CODE
	# (and its comparison with a constant) is allowed there and nowhere else.
	local ign=LONG_LINE,LONG_LINE_STRING,PREFER_DEFINED_ATTRIBUTE_MACRO r=0 rest

	mapfile -t rest < <(git ls-files 'dm-stream/*.[ch]' | grep -vx dm-stream/compat.h)
	"$dir/scripts/checkpatch.pl" --no-tree --strict --quiet --show-types \
		--ignore "$ign" -f "${rest[@]}" || r=1
	"$dir/scripts/checkpatch.pl" --no-tree --strict --quiet --show-types \
		--ignore "$ign,LINUX_VERSION_CODE,CONSTANT_COMPARISON" -f dm-stream/compat.h || r=1
	if grep -n 'LINUX_VERSION_CODE\|KERNEL_VERSION(' "${rest[@]}"; then
		echo "kernel versions are tested in dm-stream/compat.h only"
		r=1
	fi
	long_lines || r=1
	return $r
}

# Lines over 100 columns (tabs of 8) that hold no string literal.
long_lines() {
	git ls-files 'dm-stream/*.[ch]' | xargs expand -t 8 | awk '
		length($0) > 100 && !/"/ { print "line over 100 columns: " $0; bad = 1 }
		END { exit bad }'
}

sparse_check() {
	local abi kdir

	need sparse /usr/bin/sparse || return 1
	abi=$(scripts/deps.sh --abi) || return 1
	kdir=/usr/src/linux-headers-$abi
	# Only the module's own files: warnings from kernel headers are not ours.
	make -s -C "$kdir" M="$PWD" C=2 CHECK="sparse -Wno-decl" modules 2>&1 |
		grep -E 'dm-stream/[^:]*\.[ch]:[0-9]+:[0-9]+: (warning|error):'
	[[ ${PIPESTATUS[0]} -eq 0 ]] || echo "the build failed"
}

shell_scripts() {
	git ls-files '*.sh' selftests/run-guest tools/dmstream-generator .ci/run |
		while read -r f; do [[ -f $f ]] && echo "$f"; done
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "TAP version 13"
echo "1..4"

python3 scripts/check-interface-docs.py >"$log" 2>&1
report "docs state stream-interface.h" "$log" $?

need shellcheck /usr/bin/shellcheck
mapfile -t scripts < <(shell_scripts)
shellcheck -x "${scripts[@]}" >"$log" 2>&1
report "shellcheck (${#scripts[@]} scripts)" "$log" $?

checkpatch >"$log" 2>&1
report "checkpatch --strict dm-stream/" "$log" $?

sparse_check >"$log" 2>&1
[[ -s $log ]]
report "sparse dm-stream/" "$log" $((!$?))

echo "# $((n - failed)) passed, $failed failed"
[[ $failed -eq 0 ]]
