# SPDX-License-Identifier: GPL-2.0
"""python3 -m dmst.uncommitted META: writes an uncommitted transaction
T + 1 into bitmap block 0 of metadata whose superblock holds transaction T
and whose block 0 has region 0 copied: its free slot becomes the current
slot with region 1 set too, under transaction id T + 1, checksummed, so
that only the superblock (still at T) says it is not committed. Prints the
slot written (0 or 1). (T is 2 when the stream's first resume committed
the origin's stale flag, then a write committed region 0.)"""

import os
import struct
import sys

from . import ondisk


def main(meta):
    fd = os.open(meta, os.O_RDWR)
    try:
        top = ondisk.unpack_sb(os.pread(fd, ondisk.BLOCK_SIZE, 0))["transaction_id"]
        slots = [bytearray(os.pread(fd, ondisk.BLOCK_SIZE, ondisk.BLOCK_SIZE * (1 + s)))
                 for s in (0, 1)]
        tid = [struct.unpack_from("<Q", b, 16)[0] for b in slots]
        cur = 1 if top >= tid[1] > tid[0] else 0
        b = slots[cur]
        assert 1 <= tid[cur] <= top and b[24] == 1, (top, tid, b[24])
        b[24] |= 2
        struct.pack_into("<QQ", b, 8, 2 - cur, top + 1)
        ondisk.seal(b, ondisk.BITMAP_CSUM_XOR)
        os.pwrite(fd, bytes(b), ondisk.BLOCK_SIZE * (2 - cur))
        os.fsync(fd)
    finally:
        os.close(fd)
    print(1 - cur)


if __name__ == "__main__":
    main(sys.argv[1])
