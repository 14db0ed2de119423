# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# merge_helpers.sh - helpers of the seeding and merge tests (test_seed_01,
# test_merge_01). Source after common.sh, stream_helpers.sh and
# tool_helpers.sh. Every function is prefixed mh_.
#
# A plain dm-snapshot stack PREFIX (mh_stack) is three dm devices, the
# names used by `dmstream merge`'s documentation:
#   PREFIX-real  REAL    linear over a loop device
#   PREFIX       ORIGIN  snapshot-origin REAL
#   PREFIX-snap  SNAP    snapshot REAL COW P|N CHUNK
# Their removal at exit does not follow the order of creation (a merge
# turns ORIGIN or SNAP into a stream holding the others): mh_teardown
# removes what it can, pass after pass, before common.sh's own removals.

# mh_teardown NAME...: remove the dm devices NAME... (and the merge helper
# NAME-origin of each) in whatever order they let themselves be removed;
# suspended ones are resumed first.
mh_teardown()
{
	local names=() n pass left

	for n in "$@"; do
		names+=("$n" "$n-origin")
	done
	for ((pass = 0; pass < 6; pass++)); do
		left=0
		for n in "${names[@]}"; do
			dm_exists "$n" || continue
			dmsetup info -c --noheadings -o attr "$n" 2>/dev/null | grep -q s &&
				dmsetup resume "$n" >/dev/null 2>&1
			dmsetup remove "$n" >/dev/null 2>&1 || left=1
		done
		[[ $left -eq 0 ]] && return 0
		sleep 0.3
	done
	return 0
}

# mh_stack PREFIX REAL_DEV COW_DEV [P|N [CHUNK_SECTORS]]: the stack above
# (default persistent, 8-sector chunks) over all of REAL_DEV. The COW
# device should read zeroes (a fresh store). Sets DM_ERR on failure.
mh_stack()
{
	local p=$1 real=$2 cow=$3 kind=${4:-P} chunk=${5:-8} len

	len=$(sectors "$real")
	cleanup_add "mh_teardown $p-snap $p $p-real"
	dm_create "$p-real" "0 $len linear $real 0" &&
		dm_create "$p" "0 $len snapshot-origin $(dm_dev "$p-real")" &&
		mh_snapshot "$p-snap" "$p" "$cow" "$kind" "$chunk"
}

# mh_snapshot NAME PREFIX COW_DEV [P|N [CHUNK_SECTORS]]: one more snapshot
# of stack PREFIX's REAL. ORIGIN is suspended and resumed afterwards, as
# LVM does: snapshot-origin learns the smallest chunk size of the origin's
# snapshots at its resume, and splits writes at that boundary; without it
# a write of many chunks would give its first chunk alone an exception.
mh_snapshot()
{
	local name=$1 p=$2 cow=$3 kind=${4:-P} chunk=${5:-8}

	cleanup_add "mh_teardown $name"
	dm_create "$name" \
		"0 $(sectors "$(dm_dev "$p-real")") snapshot $(dm_dev "$p-real") $cow $kind $chunk" &&
		mh_origin_resplit "$p"
}

# mh_origin_resplit P: suspend and resume ORIGIN P (see mh_snapshot).
mh_origin_resplit()
{
	DM_ERR=$(dmsetup suspend "$1" 2>&1 >/dev/null) || return 1
	# shellcheck disable=SC2034 # DM_ERR is read by the callers
	DM_ERR=$(dmsetup resume "$1" 2>&1 >/dev/null)
}

# mh_exceptions SNAP: the exceptions of a persistent snapshot, from its
# status "<allocated>/<total> <metadata>" (sectors; allocated counts the
# header and the metadata chunks too) and its table's chunk size.
mh_exceptions()
{
	local st alloc meta chunk

	read -r -a st <<<"$(dm_status "$1")"
	alloc=${st[0]%%/*}
	meta=${st[1]:-}
	read -r _ _ _ _ _ _ chunk <<<"$(dmsetup table "$1")"
	[[ $alloc =~ ^[0-9]+$ && $meta =~ ^[0-9]+$ && $chunk =~ ^[0-9]+$ ]] || return 1
	echo $(((alloc - meta) / chunk))
}

# mh_ro NAME: the dm device is read-only (its attr has an r).
mh_ro()
{
	local a

	a=$(dmsetup info -c --noheadings -o attr "$1" 2>/dev/null) || return 1
	[[ $a == *r* ]]
}

# mh_open_count NAME: how many hold NAME open.
mh_open_count()
{
	dmsetup info -c --noheadings -o open "$1" 2>/dev/null | tr -d ' '
}

# mh_state PREFIX: name and attr, then the table, of every dm device whose
# name starts with PREFIX, sorted: what "nothing changed" compares.
mh_state()
{
	dmsetup info -c --noheadings -o name,attr --separator ' ' 2>/dev/null |
		grep "^$1" | sort
	dmsetup table 2>/dev/null | grep "^$1" | sort
}

# mh_rsect DEV: sectors read from a block device so far (its stat field 3).
mh_rsect()
{
	sh_stat "$1" 3
}

# mh_dump_copied META: the runs of copied regions of a metadata device,
# from `dmstream dump --json`, as "first-last" words ("0-15 64-71").
mh_dump_copied()
{
	"$DMSTREAM" dump --json "$1" 2>/dev/null |
		python3 -c 'import json, sys
print(" ".join("%d-%d" % (a, b) for a, b in json.load(sys.stdin)["copied"]))'
}

# mh_seeded OUTPUT: N of "seeded N of M regions as copied" in OUTPUT.
mh_seeded()
{
	sed -n 's/.*seeded \([0-9]*\) of [0-9]* regions as copied.*/\1/p' <<<"$1" | head -n 1
}

# mh_seed_total OUTPUT: M of the same line.
mh_seed_total()
{
	sed -n 's/.*seeded [0-9]* of \([0-9]*\) regions as copied.*/\1/p' <<<"$1" | head -n 1
}

# mh_image EXPECT SRC REGION_BYTES REGION...: the file EXPECT gets the given
# regions of the file SRC (the rest of EXPECT is left as it is).
mh_image()
{
	local exp=$1 src=$2 rb=$3 r

	shift 3
	for r in "$@"; do
		dd if="$src" of="$exp" bs="$rb" skip="$r" seek="$r" count=1 conv=notrunc \
			status=none || return 1
	done
}

# mh_seq A B: the integers A..B, space separated (region lists).
mh_seq()
{
	seq -s ' ' "$1" "$2"
}
