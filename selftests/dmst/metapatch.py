# SPDX-License-Identifier: GPL-2.0
"""Damage one metadata block in a file (test_tool_01).

    python3 -m dmst.metapatch FILE OFFSET HEXBYTES [sb|bitmap]

FILE holds one 4096-byte metadata block. The bytes of HEXBYTES are xor'ed
into it at OFFSET (flipping the bits given); with sb or bitmap, the block's
checksum is then recomputed the kernel's way for that block type, so that
only the damage itself remains.
"""

import sys

from . import ondisk

SALTS = {"sb": ondisk.SB_CSUM_XOR, "bitmap": ondisk.BITMAP_CSUM_XOR}


def main(argv):
    path, off, data = argv[0], int(argv[1]), bytes.fromhex(argv[2])
    kind = argv[3] if len(argv) > 3 else ""
    if kind and kind not in SALTS:
        sys.exit("metapatch: block type sb or bitmap, not '%s'" % kind)
    with open(path, "rb") as f:
        b = bytearray(f.read())
    for i, x in enumerate(data):
        b[off + i] ^= x
    if kind:
        ondisk.seal(b, SALTS[kind])
    with open(path, "wb") as f:
        f.write(b)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
