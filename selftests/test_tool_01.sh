#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tool_01: dmstream's argument handling, and `check`/`dump` of metadata
# the kernel wrote, intact and damaged.
#
# Usage: --help to stdout with exit 0, usage errors to stderr with exit 1,
# missing devices exit 2. Then a stream marks regions 0 and 5 copied by
# whole-region writes, each followed by a flush (so two commits: region 0 in
# transaction 1, both in transaction 2), and is removed: `check` passes,
# `dump` (text and JSON) shows exactly those regions. Each damage -- a
# flipped superblock byte, a flipped byte in the bitmap slot in use, in the
# slot not in use, in both, a bit past the last region and a wrong copied
# count (both with a correct checksum, computed the kernel's way by
# dmst/metapatch.py) -- makes `check` exit 3 with the matching problem, and
# the kernel agrees: it refuses the same metadata with the matching error,
# or (the slot not in use) accepts it. The tests' decoder (dmst/ondisk.py)
# reads the intact and every damaged metadata as `dump --json` does, field by
# field. `create` refuses metadata of another geometry and continues
# metadata of its own.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd dmsetup blockdev dd python3
sh_start 55

RS=128				# sectors (64 KiB)
MB=32
LEN=$((MB * 2048))
NR=$((LEN / RS))		# 512 regions, one bitmap block
NAME=tt01


# tt_usage DESC ARGS...: a usage error: exit 1, nothing on stdout, the
# command's usage line on stderr.
tt_usage()
{
	local desc=$1

	shift
	tt_run "$@"
	if [[ $TT_RC -eq 1 && -z $TT_OUT ]] && grep -q '^usage: dmstream' <<<"$TT_ERR"; then
		ktap_ok "$desc ($(head -n 1 <<<"$TT_ERR"))"
	else
		ktap_fail "$desc" "dmstream $*: exit $TT_RC, stdout '${TT_OUT:0:80}'"
		ktap_diag "stderr: $TT_ERR"
	fi
}

# tt_bad_option DESC WORD ARGS...: a usage error (exit 1, nothing on stdout)
# whose first line quotes the option WORD as typed, in printable characters.
tt_bad_option()
{
	local desc=$1 word=$2 first

	shift 2
	tt_run "$@"
	first=$(head -n 1 <<<"$TT_ERR")
	if [[ $TT_RC -eq 1 && -z $TT_OUT ]] && grep -qF -- "'$word'" <<<"$first" &&
	   ! LC_ALL=C grep -q '[^[:print:]]' <<<"$first"; then
		ktap_ok "$desc ($first)"
	else
		ktap_fail "$desc" "dmstream $*: exit $TT_RC, stderr $(printf '%q' "$first")"
	fi
}

# --- usage -------------------------------------------------------------------

tt_run --help
if [[ $TT_RC -eq 0 && -z $TT_ERR ]] && grep -q '^Commands:' <<<"$TT_OUT"; then
	ktap_ok "--help: commands on stdout, exit 0"
else
	ktap_fail "--help: commands on stdout, exit 0" "exit $TT_RC, stderr '$TT_ERR'"
fi

tt_run
if [[ $TT_RC -eq 1 && -z $TT_OUT ]] && grep -q '^usage:' <<<"$TT_ERR"; then
	ktap_ok "no command: usage on stderr, exit 1"
else
	ktap_fail "no command: usage on stderr, exit 1" "exit $TT_RC"
fi

tt_expect "unknown command: exit 1" 1 "unknown command 'frobnicate'" frobnicate

bad=
for c in create status wait finish copy abort pause continue rate check dump help version; do
	tt_run "$c" --help
	if [[ $TT_RC -ne 0 || -n $TT_ERR ]] || ! grep -q "^usage: dmstream $c" <<<"$TT_OUT"; then
		bad+=" $c(exit $TT_RC)"
	fi
done
ktap_check "every command's --help: its usage on stdout, exit 0${bad:+:$bad}" test -z "$bad"

tt_expect "-h after a command is its help" 0 '^usage: dmstream wait' wait -h
tt_usage "unknown option" status x --bogus
tt_bad_option "unknown option with a value: named as typed" --bogus=1 status x --bogus=1
tt_bad_option "option that takes no value, given one: named as typed" --quiet=1 \
	check x --quiet=1
tt_bad_option "... --json=yes too" --json=yes status x --json=yes
tt_bad_option "... and a global one, --verbose=2" --verbose=2 --verbose=2 status x
tt_usage "create without --meta" create x --origin /dev/null --dest /dev/null
tt_usage "region size not a size" create x --origin a --dest b --meta c --region-size 64q
tt_usage "region size not a power of two" create x --origin a --dest b --meta c --region-size 96k
tt_usage "region size below 4 KiB" create x --origin a --dest b --meta c --region-size 2k
tt_usage "bad rate" rate x 12parsecs
# The kernel takes KiB/s in 32 bits; rounding up must not wrap to 0 (no limit).
tt_usage "rate 2^64-1 bytes/s: too large, not 'no limit'" rate x 18446744073709551615
tt_usage "rate 2^64-1023 bytes/s: too large" rate x 18446744073709550593
tt_usage "create --rate 2^64-1: too large" \
	create x --origin a --dest b --meta c --rate 18446744073709551615
tt_usage "rate 4294967296k: above 32 bits of KiB/s" rate x 4294967296k
tt_expect "rate 4294967295k, the largest, is accepted (then no device: exit 2)" 2 \
	"[Nn]o such device" rate tt01-nosuch 4294967295k
tt_usage "bad --timeout" wait x --timeout soon
tt_usage "option missing its value" wait x --timeout
tt_usage "too many arguments" finish x y
tt_usage "missing argument" rate x
tt_usage "option of another command" check /dev/null --rate 5M

# --- missing and unsuitable devices -----------------------------------------------

tt_expect "status of a missing device: exit 2" 2 "no such device" status tt01-nosuch
tt_expect "finish of a missing device: exit 2" 2 "no such device" finish tt01-nosuch
tt_expect "create with a missing origin: exit 2" 2 "/nonexistent" \
	create tt01-x --origin /dev/nonexistent --dest /dev/null --meta /dev/null
tt_expect "check of a missing device: exit 2" 2 "No such file" check /dev/nonexistent

make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v DEST $MB dest || ktap_skip_all "cannot set up loop devices"
make_loop -v ORIG $MB orig || ktap_skip_all "cannot set up loop devices"
sh_fill_random "$ORIG"
sh_zero "$META"

if dm_create tt01-lin "0 $LEN linear $ORIG 0"; then
	tt_expect "status of a linear device: exit 2" 2 "not a stream device" status tt01-lin
	tt_expect "pause of a linear device: exit 2" 2 "not a stream device" pause tt01-lin
	dm_remove tt01-lin
else
	ktap_fail "status of a linear device: exit 2" "cannot create it: $DM_ERR"
	ktap_fail "pause of a linear device: exit 2" "cannot create it"
fi

# --- metadata written by the kernel ----------------------------------------------------

tt_expect "check of blank metadata: exit 0, blank" 0 "blank" check "$META"

# Regions 0 and 5 written whole, each with a flush: transactions 1 and 2
# (2 and 3 after the one-way stream's commit of the stale origin flag).
tt_run create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --paused
if [[ $TT_RC -ne 0 ]]; then
	ktap_fail "create, write regions 0 and 5 with flushes, remove" "create: $TT_ERR"
	ktap_skip_all "no stream device"
fi
cleanup_add "_dm_remove_hard $NAME"
ok=1
for r in 0 5; do
	dd if=/dev/urandom of="$(dm_dev $NAME)" bs=64k count=1 seek=$r \
		oflag=direct conv=fsync,notrunc status=none || ok=
done
[[ $(sh_copied $NAME) == 2 ]] || ok=
dm_remove $NAME || ok=
ktap_check "create, write regions 0 and 5 with flushes, remove" test -n "$ok"

tt_expect "check: ok, exit 0" 0 "^$META: ok" check "$META"
tt_run check --quiet "$META"
ktap_check "check --quiet: no output, exit 0" test "$TT_RC" -eq 0 -a -z "$TT_OUT$TT_ERR"
tt_expect "dump: the copied and uncopied runs" 0 \
	"copied regions \(2\): 0 5"$'\n'"uncopied regions \($((NR - 2))\): 1-4 6-$((NR - 1))" \
	dump "$META"

tt_run dump --json "$META"
if [[ $TT_RC -eq 0 ]] &&
   PYTHONPATH=$DIR python3 -B -m dmst.toolcheck dump-two "$NR" "$TT_OUT"; then
	ktap_ok "dump --json parses: two commits, slot 0 in use, runs [0] [5]"
else
	ktap_fail "dump --json parses: two commits, slot 0 in use, runs [0] [5]" "exit $TT_RC"
	ktap_diag "$TT_OUT"
fi

# --- damage ----------------------------------------------------------------------------

SAVED=$(sh_tmpfile)
dd if="$META" of="$SAVED" bs=4096 count=3 iflag=direct status=none
# restore: the metadata as the kernel wrote it again; the damaged state is
# kept for the decoder check.
XC_N=0
restore()
{
	XC_N=$((XC_N + 1))
	dd if="$META" of="$TEST_TMP/xc-$XC_N.img" bs=4096 count=3 iflag=direct status=none
	dd if="$SAVED" of="$META" bs=4096 count=3 oflag=direct conv=notrunc status=none
}

# patch BLOCK OFFSET HEXBYTES [sb|bitmap]: flip bits of a metadata block
# (O_DIRECT through a file), then, with a block type, recompute its checksum
# the kernel's way (dmst/metapatch.py).
patch()
{
	local blk=$1 f

	f=$(sh_tmpfile)
	dd if="$META" of="$f" bs=4096 count=1 skip="$blk" iflag=direct status=none &&
	PYTHONPATH=$DIR python3 -B -m dmst.metapatch "$f" "$2" "$3" "${4:-}" &&
	dd if="$f" of="$META" bs=4096 count=1 seek="$blk" oflag=direct conv=notrunc status=none
}

TBL="0 $LEN stream $META $DEST $ORIG $RS 1 paused"

patch 0 40 01
tt_expect "superblock byte flipped: check exit 3" 3 "superblock checksum mismatch" check "$META"
sh_ctr_fail "superblock byte flipped: the kernel refuses it too" "$TBL" "checksum mismatch"
restore

patch 1 30 80		# slot 0 of bitmap block 0: the one in use
tt_expect "byte flipped in the slot in use: check exit 3" 3 \
	"holds 1 copied regions, the superblock says 2" check "$META"
sh_ctr_fail "byte flipped in the slot in use: the kernel refuses it too" "$TBL" \
	"disagrees with the superblock's copied count"
restore

patch 2 30 80		# slot 1: not in use
tt_expect "byte flipped in the slot not in use: check exit 3 (non-fatal)" 3 \
	"warning: bitmap block 0, slot 1 .*checksum mismatch; not in use" check "$META"
tt_expect "... exit 0 with --ignore-non-fatal-errors" 0 "" \
	check --ignore-non-fatal-errors "$META"
if dmsetup create $NAME --table "$TBL" >/dev/null 2>&1; then
	c=$(sh_copied $NAME)
	dm_remove $NAME
	ktap_check "... and the kernel accepts it (copied $c)" test "$c" = 2
else
	ktap_fail "... and the kernel accepts it" "refused: $(dmesg_since_mark | tail -n 1)"
fi
restore

patch 1 30 80
patch 2 30 80
tt_expect "both slots damaged: check exit 3" 3 "bitmap block 0 has no valid slot" \
	check "$META"
sh_ctr_fail "both slots damaged: the kernel refuses it too" "$TBL" "both slots"
restore

# Bit NR (the first past the last region): byte 24 + NR/8 of the slot.
patch 1 $((24 + NR / 8)) 01 bitmap
tt_expect "bit past the last region, checksum right: check exit 3" 3 \
	"bits set past the last region" check "$META"
sh_ctr_fail "bit past the last region: the kernel refuses it too" "$TBL" \
	"bits set past the last region"
restore

# nr_copied (offset 88) from 2 to 3, checksum right.
patch 0 88 01 sb
tt_expect "superblock copied count 3, checksum right: check exit 3" 3 \
	"holds 2 copied regions, the superblock says 3" check "$META"
sh_ctr_fail "copied count 3: the kernel refuses it too" "$TBL" \
	"disagrees with the superblock's copied count"
tt_expect "check --super-block-only passes it (exit 0)" 0 "ok" check --super-block-only "$META"
restore

XC_DESC="dmst/ondisk.py decodes the kernel's metadata and its $XC_N damaged copies as dump --json does"
if XC=$(PYTHONPATH=$DIR python3 -B -m dmst.crosscheck "$DMSTREAM" "$SAVED" "$TEST_TMP"/xc-*.img); then
	ktap_ok "$XC_DESC"
else
	ktap_fail "$XC_DESC"
	grep -v ': agree (' <<<"$XC"
fi

# --- create and existing metadata ----------------------------------------------------

tt_expect "create: metadata of another region size refused (exit 3)" 3 \
	"another geometry.*--force" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --region-size 128k --paused
tt_expect "create: metadata of this geometry continued" 0 "continuing.*2/$NR regions copied" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --paused
ktap_check "... with 2 regions copied" test "$(sh_copied $NAME)" = 2
dm_remove $NAME

ktap_finish
