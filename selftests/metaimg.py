#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""metaimg.py - write a dm-stream metadata image for the tool tests.

The layout and checksums of dm-stream/stream-format.h: superblock in block
0, bitmap block i in blocks 1 + 2i (slot 0) and 2 + 2i (slot 1); CRC32C
seeded ~0 over bytes 4..4095 without the final inversion, xor a per-type
salt. The image is a sparse file: blocks left all zero are not written.

    metaimg.py IMAGE [--region-size S] [--target-size S] [--bits PATTERN]
                     [--slots valid|zero] [--blocks N] [--sb FIELD=VALUE]...
                     [--slot-tid SLOT=ID]...

Sizes are in sectors. By default the geometry is consistent (nr_regions,
nr_bitmap_blocks, origin and destination sizes, nr_copied from the bits,
transaction 1) and the image is just large enough; --sb overrides any
superblock field after that (values may be hex, or 2**N forms like
"2**64-1"), with the checksum computed over the result. --bits: none,
all, alternating (region 0, 2, 4, ... copied). --slots zero leaves every
bitmap slot all zero (no valid slot), which is quick for huge images.
Valid slots: slot 0 holds the bits with the superblock's transaction id,
slot 1 no bits with the one before; --slot-tid gives every block's slot
SLOT another id (checksum recomputed).
Prints the number of regions, copied regions and runs of equal bits.
"""
import argparse
import sys

from dmst import ondisk
from dmst.ondisk import BITS_PER_BLOCK, BLOCK_SIZE as BLOCK

# For callers that patch blocks themselves (test_metaerr_02).
SB_SALT = ondisk.SB_CSUM_XOR
BM_SALT = ondisk.BITMAP_CSUM_XOR


def csum(block, salt):
    """The checksum of a 4096-byte block of the type of @salt."""
    return ondisk.block_csum(block, salt)


def number(text):
    text = text.strip()
    if "**" in text:
        base, _, rest = text.partition("**")
        exp, sign, off = rest, "", "0"
        for s in "+-":
            if s in rest:
                exp, sign, off = rest.partition(s)
        v = int(base, 0) ** int(exp, 0)
        return v + int(off, 0) if sign == "+" else v - int(off, 0)
    return int(text, 0)


def bitmap_bytes(pattern, first, nr):
    """The bits of one bitmap block holding regions first .. first+nr-1."""
    if pattern == "none" or nr == 0:
        return bytes(BITS_PER_BLOCK // 8)
    if pattern == "all":
        full, rest = divmod(nr, 8)
        b = b"\xff" * full + (bytes([(1 << rest) - 1]) if rest else b"")
    else:  # alternating: even regions; first is a multiple of 8
        full, rest = divmod(nr, 8)
        b = b"\x55" * full + (bytes([0x55 & ((1 << rest) - 1)]) if rest else b"")
    return b + bytes(BITS_PER_BLOCK // 8 - len(b))


def write_slots(f, a, sb_tid, nr, nbb, blocks):
    """Both slots of every bitmap block that fits in @blocks. Slot 0 holds
    the committed transaction, slot 1 the one before, with no bits (as
    after a first commit); --slot-tid overrides a slot's id."""
    for i in range(nbb):
        first = i * BITS_PER_BLOCK
        bits = bitmap_bytes(a.bits, first, min(BITS_PER_BLOCK, nr - first))
        for s in range(2):
            loc = ondisk.bitmap_location(i, s)
            if loc >= blocks:
                break
            tid = max(sb_tid - s, 0)
            for kv in a.slot_tid:
                k, _, v = kv.partition("=")
                if int(k) == s:
                    tid = number(v)
            f.seek(loc * BLOCK)
            f.write(ondisk.pack_slot(loc, tid, bits if s == 0 else b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("--region-size", type=number, default=128)
    ap.add_argument("--target-size", type=number, default=65536)
    ap.add_argument("--bits", choices=["none", "all", "alternating"], default="none")
    ap.add_argument("--slots", choices=["valid", "zero"], default="valid")
    ap.add_argument("--blocks", type=number, help="image size in 4 KiB blocks")
    ap.add_argument("--sb", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--slot-tid", action="append", default=[], metavar="SLOT=ID")
    a = ap.parse_args()

    rs, ts = a.region_size, a.target_size
    nr = ondisk.nr_regions(rs, ts)
    nbb = ondisk.nr_bitmap_blocks(nr)
    copied = {"none": 0, "all": nr, "alternating": (nr + 1) // 2}[a.bits]
    runs = {"none": 1 if nr else 0, "all": 1 if nr else 0, "alternating": nr}[a.bits]
    sb = dict(flags=0, blocknr=0, magic=ondisk.MAGIC, version=ondisk.VERSION,
              block_size=BLOCK,
              region_size=rs, reserved0=0, target_size=ts, nr_regions=nr,
              origin_size=ts, dest_size=ts, nr_bitmap_blocks=nbb,
              transaction_id=1, nr_copied=copied)
    for kv in a.sb:
        k, _, v = kv.partition("=")
        if k not in sb and k != "csum":
            sys.exit("metaimg.py: no superblock field " + k)
        sb[k] = number(v)

    blocks = a.blocks if a.blocks is not None else ondisk.metadata_blocks(nr)
    with open(a.image, "wb") as f:
        f.truncate(blocks * BLOCK)
        if a.slots == "valid":
            write_slots(f, a, sb["transaction_id"], nr, nbb, blocks)
        f.seek(0)
        f.write(ondisk.pack_sb(sb, sb.get("csum")))
    print(nr, copied, runs)


if __name__ == "__main__":
    main()
