# SPDX-License-Identifier: GPL-2.0
"""Small block-device operations for the shell helpers and tests, run as
`python3 -m dmst.devio <command> ARGS` (common.sh: dmst_py devio ...):

  flush DEV                   a REQ_PREFLUSH: fsync of the node opened O_RDWR
  discard DEV OFF LEN         BLKDISCARD of LEN bytes at OFF, nothing else
  write-flush-probe DEV STAT LEN PRIMER_OFF OFF
                              an O_DIRECT write of LEN random bytes at
                              PRIMER_OFF and an fsync, then a write at OFF
                              and an fsync; prints the writes-completed
                              counter of STAT (a /sys/block/*/stat) before
                              the second write, after it and after its flush
  regions-diff A B REGION_BYTES [REGION...]
                              the regions whose bytes differ between two
                              files, ascending, space separated
  checkerboard DEV IMG REGION_BYTES NR
                              the even regions of DEV written whole with
                              O_DIRECT, each filled with its number; the
                              same bytes patched into the image IMG ("" for
                              none)
"""

import fcntl
import mmap
import os
import struct
import sys

BLKDISCARD = 0x1277


def flush(dev):
    fd = os.open(dev, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(dev, off, ln):
    fd = os.open(dev, os.O_WRONLY)
    try:
        fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", int(off), int(ln)))
    finally:
        os.close(fd)


def write_flush_probe(dev, stat, ln, p_off, off):
    ln, p_off, off = int(ln), int(p_off), int(off)

    def writes():
        with open(stat) as f:
            return int(f.read().split()[4])

    buf = mmap.mmap(-1, ln)
    buf.write(os.urandom(ln))
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    try:
        os.pwritev(fd, [buf], p_off)
        os.fsync(fd)
        a = writes()
        os.pwritev(fd, [buf], off)
        b = writes()
        os.fsync(fd)
        c = writes()
    finally:
        os.close(fd)
    print(a, b, c)


def regions_diff(a, b, rb, *only):
    rb = int(rb)
    out = []
    with open(a, "rb") as fa, open(b, "rb") as fb:
        size = max(fa.seek(0, 2), fb.seek(0, 2))
        regions = [int(x) for x in only] or range((size + rb - 1) // rb)
        for r in regions:
            fa.seek(r * rb)
            fb.seek(r * rb)
            if fa.read(rb) != fb.read(rb):
                out.append(str(r))
    print(" ".join(out))


def checkerboard(dev, img, rb, nr):
    rb, nr = int(rb), int(nr)
    buf = mmap.mmap(-1, rb)
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    f = open(img, "r+b") if img else None
    try:
        for r in range(0, nr, 2):
            data = struct.pack("<4sI", b"CHKB", r) * (rb // 8)
            buf.seek(0)
            buf.write(data)
            os.pwrite(fd, buf, r * rb)
            if f:
                f.seek(r * rb)
                f.write(data)
        os.fsync(fd)
    finally:
        os.close(fd)
        if f:
            f.close()


COMMANDS = {
    "flush": (flush, 1),
    "discard": (discard, 3),
    "write-flush-probe": (write_flush_probe, 5),
    "regions-diff": (regions_diff, 3),
    "checkerboard": (checkerboard, 4),
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.exit("usage: python3 -m dmst.devio {%s} ARGS" % ",".join(COMMANDS))
    fn, nargs = COMMANDS[argv[0]]
    args = argv[1:]
    if len(args) < nargs or (fn is not regions_diff and len(args) != nargs):
        sys.exit("dmst.devio %s: expected %d arguments" % (argv[0], nargs))
    fn(*args)


if __name__ == "__main__":
    main(sys.argv[1:])
