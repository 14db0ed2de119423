#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tool_04: dmstream check and dump on crafted images and on files that
# cannot hold metadata. Image files only: no kernel module, no devices.
#
# - A FIFO (and a character device) is refused with exit 2 and a message
#   that says what it is, at once: opening a FIFO must not wait for a writer
#   (run under `timeout`, so a hang fails instead of stalling the run).
# - Superblocks with right checksums (metaimg.py) that no table could load:
#   the region count of a target near 2^64 sectors wrapping to 0, no
#   regions, too many, a zero length, origin or destination sizes below the
#   target or above any block device, inconsistent counts, a device too
#   small: `check` exits 3 naming the problem. The largest geometry the
#   kernel takes (2^31 regions of 1 GiB, devices of 2^54-1 sectors) passes
#   `check --super-block-only`.
# - The largest image (2^31 regions, 65923 bitmap blocks, sparse) with no
#   valid slot: one error per bitmap block, of which `check` and `dump`
#   print the first 20 and then "... and 65903 more errors"; the count
#   line says 65923 errors; dump's runs are the one uncopied run.
# - An image of 8 bitmap blocks whose bits alternate (260608 regions, as
#   many runs): `dump --json` and `dump` under `ulimit -v` 32 MiB (the runs
#   stream through temporary files, not memory) exit 0 with every run
#   right. With TMPDIR unusable, dump fails cleanly (exit 2).

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/tool_helpers.sh"

require_cmd python3 timeout mkfifo

ktap_plan 27

# --- files that cannot hold metadata ----------------------------------------------------

FIFO=$TEST_TMP/fifo
mkfifo "$FIFO" || ktap_skip_all "cannot make a FIFO"
# tt_expect under timeout(1): a hang exits 124, not 2.
tt_timed() { TT_TIMEOUT=20 tt_expect "$@"; }
tt_timed "check of a FIFO: exit 2 at once, says FIFO" 2 "$FIFO: a FIFO, not a block device" \
	check "$FIFO"
tt_timed "dump of a FIFO: exit 2 at once" 2 "a FIFO" dump "$FIFO"
tt_timed "dump --json of a FIFO: exit 2 at once" 2 "a FIFO" dump --json "$FIFO"
tt_timed "check of /dev/null: exit 2, a character device" 2 "a character device" \
	check /dev/null

# --- superblocks that no table could load, checksums right ----------------------------

IMG=$TEST_TMP/img

# bad_sb DESC REGEX METAIMG-ARGS...: check of that image exits 3, naming the
# problem (REGEX).
bad_sb()
{
	local desc=$1 re=$2

	shift 2
	if ! python3 "$DIR/metaimg.py" "$IMG" "$@" >/dev/null; then
		ktap_fail "$desc" "metaimg.py $* failed"
		return
	fi
	tt_expect "$desc" 3 "$re" check "$IMG"
}

NEAR64="target_size=2**64-7"
bad_sb "target of 2^64-7 sectors: its region count wraps to 0, 0 bitmap blocks" \
	"makes 2305843009213693952 regions, above the limit" \
	--region-size 8 --sb "$NEAR64" --sb nr_regions=0 --sb nr_bitmap_blocks=0 \
	--sb origin_size=2**64-7 --sb dest_size=2**64-7
bad_sb "target of 2^64-1 sectors in 1 GiB regions, 0 regions" "above the limit" \
	--region-size 2097152 --sb target_size=2**64-1 --sb nr_regions=0 \
	--sb nr_bitmap_blocks=0 --sb origin_size=2**64-1 --sb dest_size=2**64-1
bad_sb "0 regions and 0 bitmap blocks for a small target" "0 regions: expected 1 to" \
	--sb nr_regions=0 --sb nr_bitmap_blocks=0
bad_sb "target length 0" "target length is 0" \
	--sb target_size=0 --sb nr_regions=0 --sb nr_bitmap_blocks=0
bad_sb "2^31+1 regions" "above the limit of 2147483648" \
	--region-size 8 --target-size "2**34+8" --slots zero
bad_sb "origin of 2^64-1 sectors: larger than any block device" \
	"origin size 18446744073709551615 sectors is larger than any block device" \
	--sb origin_size=2**64-1
bad_sb "destination of 2^54 sectors: larger than any block device" \
	"destination size 18014398509481984 sectors is larger" --sb dest_size=2**54
bad_sb "origin below the target" "origin size 65535 sectors is below" \
	--sb origin_size=65535
bad_sb "copied count above the regions" "copied count 513 is above" --sb nr_copied=513
bad_sb "2 bitmap blocks for 512 regions" "2 bitmap blocks for 512 regions" \
	--sb nr_bitmap_blocks=2
bad_sb "region size 12 sectors" "region size 12 is not a power of two" \
	--region-size 12 --target-size 65532
bad_sb "device too small for the bitmap" "too small: 24 sectors needed, 16 given" --blocks 2
bad_sb "transaction id 2^63: slot ids are signed" "transaction id 9223372036854775808 is out of range" \
	--sb transaction_id=2**63
python3 "$DIR/metaimg.py" "$IMG" --bits alternating --sb transaction_id=2 --slot-tid 0=1 \
	--slot-tid 1=2**63+2 >/dev/null
tt_expect "a slot id of 2^63 + 2 is above the superblock's 2, not id 2: ok" 0 \
	"transaction 9223372036854775810 is above the committed 2" check "$IMG"

python3 "$DIR/metaimg.py" "$IMG" --region-size 2097152 --target-size "2**52" --slots zero \
	--sb origin_size=2**54-1 --sb dest_size=2**54-1 >/dev/null
tt_expect "the largest geometry (2^31 regions of 1 GiB, 2^54-1-sector devices) passes" 0 \
	"2147483648 regions of 2097152 sectors" check --super-block-only "$IMG"

python3 "$DIR/metaimg.py" "$IMG" --region-size 8 --sb "$NEAR64" --sb nr_regions=0 \
	--sb nr_bitmap_blocks=0 >/dev/null
tt_expect "dump shows that target length without overflow" 3 \
	"target_size +18446744073709551609 sectors \(8192\.0 EiB\)" dump "$IMG"

# --- the largest image, no valid slot anywhere ------------------------------------------

# 2^31 regions of 8 sectors: 65923 bitmap blocks, 131847 blocks (sparse).
if python3 "$DIR/metaimg.py" "$IMG" --region-size 8 --target-size "2**34" --slots zero \
	>/dev/null; then
	tt_run check "$IMG"
	n=$(wc -l <<<"$TT_ERR")
	e=$(grep -c ': error: bitmap block [0-9]* has no valid slot' <<<"$TT_ERR")
	ktap_check "check: exit 3, $n lines on stderr: the first 20 errors and a summary" \
		test "$TT_RC" -eq 3 -a "$n" -eq 21 -a "$e" -eq 20
	l20=$(sed -n 20p <<<"$TT_ERR")
	l21=$(sed -n 21p <<<"$TT_ERR")
	ktap_check "... blocks 0 to 19, then '... and 65903 more errors'" \
		test "${l20#*: error: bitmap block 19 has no valid slot}" != "$l20" -a \
		"${l21#"$IMG": ... and 65903 more errors}" != "$l21"
	ktap_check "... and the count line says 65923 errors" \
		grep -q "^$IMG: 65923 errors, 0 non-fatal errors\$" <<<"$TT_OUT"
	tt_run dump "$IMG"
	n=$(wc -l <<<"$TT_ERR")
	ktap_check "dump: exit 3, $n lines on stderr, one uncopied run 0-2147483647" \
		test "$TT_RC" -eq 3 -a "$n" -eq 21 -a \
		-n "$(grep -x 'uncopied regions (2147483648): 0-2147483647' <<<"$TT_OUT")"
else
	ktap_skip_all "metaimg.py failed"
fi

# --- dump in bounded memory -------------------------------------------------------------

# 8 bitmap blocks of alternating bits: 260608 regions, each its own run.
NR=$((8 * 32576))
read -r _ _ runs < <(python3 "$DIR/metaimg.py" "$IMG" --region-size 8 \
	--target-size $((NR * 8)) --bits alternating)
OUT=$TEST_TMP/dump.out
(ulimit -v 32768 && exec "$DMSTREAM" dump --json "$IMG") >"$OUT" 2>"$TEST_TMP/dump.err"
rc=$?
if [[ $rc -eq 0 ]] &&
   PYTHONPATH=$DIR python3 -B -m dmst.toolcheck dump-alternating "$OUT" "$NR"; then
	ktap_ok "dump --json of $runs alternating runs under ulimit -v 32 MiB: exit 0, all runs right"
else
	ktap_fail "dump --json of $runs alternating runs under ulimit -v 32 MiB: exit 0, all runs right" \
		"exit $rc: $(head -c 300 "$TEST_TMP/dump.err")"
fi
(ulimit -v 32768 && exec "$DMSTREAM" dump "$IMG") >"$OUT" 2>"$TEST_TMP/dump.err"
rc=$?
c=$(grep '^copied regions' "$OUT" | wc -w)
u=$(grep '^uncopied regions' "$OUT" | wc -w)
ktap_check "dump (text) under the same limit: exit $rc, $((c - 3)) + $((u - 3)) runs" \
	test $rc -eq 0 -a $((c - 3)) -eq $((NR / 2)) -a $((u - 3)) -eq $((NR / 2)) -a \
	-n "$(grep -x "copied regions ($((NR / 2))): 0 2 4 .* $((NR - 2))" "$OUT")"
TMPDIR=$TEST_TMP/none tt_expect "dump with TMPDIR missing: exit 2, says so" 2 \
	"cannot create a temporary file in $TEST_TMP/none" dump --json "$IMG"

ktap_finish
