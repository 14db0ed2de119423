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
import struct
import sys

BLOCK = 4096
HDR = 24
BITS_PER_BLOCK = (BLOCK - HDR) * 8
MAGIC = 0x4D525453544D44
BITMAP_MAGIC = 0x504D4254
SB_SALT = 0x5B3C9E17
BM_SALT = 0x2D81F4A6
SB_FIELDS = [  # name, struct format, offset
    ("csum", "<I", 0), ("flags", "<I", 4), ("blocknr", "<Q", 8),
    ("magic", "<Q", 16), ("version", "<I", 24), ("block_size", "<I", 28),
    ("region_size", "<I", 32), ("reserved0", "<I", 36),
    ("target_size", "<Q", 40), ("nr_regions", "<Q", 48),
    ("origin_size", "<Q", 56), ("dest_size", "<Q", 64),
    ("nr_bitmap_blocks", "<Q", 72), ("transaction_id", "<Q", 80),
    ("nr_copied", "<Q", 88),
]

_TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _TABLE.append(c)


def csum(block, salt):
    crc = 0xFFFFFFFF
    t = _TABLE
    for x in block[4:]:
        crc = t[(crc ^ x) & 0xFF] ^ (crc >> 8)
    return crc ^ salt


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
    nr = (ts + rs - 1) // rs
    nbb = (nr + BITS_PER_BLOCK - 1) // BITS_PER_BLOCK
    copied = {"none": 0, "all": nr, "alternating": (nr + 1) // 2}[a.bits]
    runs = {"none": 1 if nr else 0, "all": 1 if nr else 0, "alternating": nr}[a.bits]
    sb = dict(flags=0, blocknr=0, magic=MAGIC, version=1, block_size=BLOCK,
              region_size=rs, reserved0=0, target_size=ts, nr_regions=nr,
              origin_size=ts, dest_size=ts, nr_bitmap_blocks=nbb,
              transaction_id=1, nr_copied=copied)
    for kv in a.sb:
        k, _, v = kv.partition("=")
        if k not in sb and k != "csum":
            sys.exit("metaimg.py: no superblock field " + k)
        sb[k] = number(v)

    blocks = a.blocks if a.blocks is not None else 1 + 2 * nbb
    with open(a.image, "wb") as f:
        f.truncate(blocks * BLOCK)
        if a.slots == "valid":
            for i in range(nbb):
                first = i * BITS_PER_BLOCK
                bits = bitmap_bytes(a.bits, first, min(BITS_PER_BLOCK, nr - first))
                for s in range(2):
                    loc = 1 + 2 * i + s
                    if loc >= blocks:
                        break
                    # Slot 0 holds the committed transaction, slot 1 the
                    # one before, with no bits (as after a first commit).
                    tid = max(sb["transaction_id"] - s, 0) & (2 ** 64 - 1)
                    for kv in a.slot_tid:
                        k, _, v = kv.partition("=")
                        if int(k) == s:
                            tid = number(v) & (2 ** 64 - 1)
                    b = bytearray(struct.pack("<IIQQ", 0, BITMAP_MAGIC, loc, tid))
                    b += bits if s == 0 else bytes(len(bits))
                    struct.pack_into("<I", b, 0, csum(b, BM_SALT))
                    f.seek(loc * BLOCK)
                    f.write(b)
        b = bytearray(BLOCK)
        for name, fmt, off in SB_FIELDS[1:]:
            struct.pack_into(fmt, b, off, sb[name] & (2 ** (8 * struct.calcsize(fmt)) - 1))
        struct.pack_into("<I", b, 0, csum(b, SB_SALT))
        for kv in a.sb:
            if kv.startswith("csum="):
                struct.pack_into("<I", b, 0, number(kv[5:]))
        f.seek(0)
        f.write(b)
    print(nr, copied, runs)


if __name__ == "__main__":
    main()
