# SPDX-License-Identifier: GPL-2.0
"""python3 -m dmst.uncommitted META: writes an uncommitted transaction 2
into bitmap block 0 of metadata whose block 0 holds transaction 1 with
region 0 copied: its free slot becomes the current slot with region 1 set
too, under transaction id 2, checksummed, so that only the superblock
(still at transaction 1) says it is not committed. Prints the slot
written (0 or 1)."""

import os
import struct
import sys

from . import ondisk


def main(meta):
    fd = os.open(meta, os.O_RDWR)
    try:
        slots = [bytearray(os.pread(fd, ondisk.BLOCK_SIZE, ondisk.BLOCK_SIZE * (1 + s)))
                 for s in (0, 1)]
        tid = [struct.unpack_from("<Q", b, 16)[0] for b in slots]
        cur = 1 if tid[1] > tid[0] else 0
        b = slots[cur]
        assert tid[cur] == 1 and b[24] == 1, (tid, b[24])
        b[24] |= 2
        struct.pack_into("<QQ", b, 8, 2 - cur, 2)
        ondisk.seal(b, ondisk.BITMAP_CSUM_XOR)
        os.pwrite(fd, bytes(b), ondisk.BLOCK_SIZE * (2 - cur))
        os.fsync(fd)
    finally:
        os.close(fd)
    print(1 - cur)


if __name__ == "__main__":
    main(sys.argv[1])
