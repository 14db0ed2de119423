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

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/tool_helpers.sh"

DMSTREAM=${DMSTREAM:-$REPO_ROOT/tools/dmstream}
[[ -x $DMSTREAM ]] || ktap_skip_all "tools/dmstream is not built (make)"
require_cmd python3 timeout mkfifo

ktap_plan 18

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
	--region-size 8 --sb $NEAR64 --sb nr_regions=0 --sb nr_bitmap_blocks=0 \
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

python3 "$DIR/metaimg.py" "$IMG" --region-size 2097152 --target-size "2**52" --slots zero \
	--sb origin_size=2**54-1 --sb dest_size=2**54-1 >/dev/null
tt_expect "the largest geometry (2^31 regions of 1 GiB, 2^54-1-sector devices) passes" 0 \
	"2147483648 regions of 2097152 sectors" check --super-block-only "$IMG"

python3 "$DIR/metaimg.py" "$IMG" --region-size 8 --sb $NEAR64 --sb nr_regions=0 \
	--sb nr_bitmap_blocks=0 >/dev/null
tt_expect "dump shows that target length without overflow" 3 \
	"target_size +18446744073709551609 sectors \(8192\.0 EiB\)" dump "$IMG"

ktap_finish
