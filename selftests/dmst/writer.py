# SPDX-License-Identifier: GPL-2.0
"""A writer that keeps the image of what it wrote, for tests that switch a
device's table under writes (test_abort_01, test_lvm_01):

  python3 -m dmst.writer DEV IMG OFF LEN STOP COUNT [SEED]

Writes random 4 KiB blocks with O_DIRECT at random 4 KiB-aligned offsets of
DEV within [OFF, OFF + LEN) bytes, one at a time, until the file STOP
exists. Every write that returned (acknowledged) is patched into the image
file IMG at the same offset, so IMG, a copy of DEV taken before the writer
started, is what DEV must hold afterwards. The number of acknowledged
writes goes into the file COUNT after each write. A failed write ends the
writer with exit 1 and a message (its block's content is unknown); exit 0
otherwise, printing "<writes> writes".
"""

import mmap
import os
import random
import sys

BS = 4096


def run(dev, img, off, ln, stop, count, seed=None):
    off, ln = int(off), int(ln)
    if off % BS or ln % BS or ln < BS:
        sys.exit("dmst.writer: OFF and LEN must be multiples of %d" % BS)
    rnd = random.Random(seed)
    buf = mmap.mmap(-1, BS)
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    n = 0
    try:
        with open(img, "r+b") as f:
            while not os.path.exists(stop):
                pos = off + rnd.randrange(ln // BS) * BS
                data = rnd.randbytes(BS)
                buf.seek(0)
                buf.write(data)
                try:
                    done = os.pwritev(fd, [buf], pos)
                except OSError as e:
                    sys.exit("dmst.writer: write of %d bytes at %d failed after %d "
                             "writes: %s" % (BS, pos, n, e))
                if done != BS:
                    sys.exit("dmst.writer: short write at %d: %d bytes" % (pos, done))
                f.seek(pos)
                f.write(data)
                n += 1
                with open(count + ".tmp", "w") as c:
                    c.write("%d\n" % n)
                os.replace(count + ".tmp", count)
            f.flush()
    finally:
        os.close(fd)
    print("%d writes" % n)


def main(argv):
    if len(argv) not in (6, 7):
        sys.exit(__doc__)
    run(*argv)


if __name__ == "__main__":
    main(sys.argv[1:])
