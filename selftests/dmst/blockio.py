# SPDX-License-Identifier: GPL-2.0
"""O_DIRECT reads and writes of block devices, through page-aligned
buffers (mmap), so that what is read or written is what the device holds,
not the page cache."""

import mmap
import os


def read_dev(path, nbytes, off=0):
    """@nbytes of a block device at @off, with O_DIRECT."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, nbytes)
        done = 0
        while done < nbytes:
            n = os.preadv(fd, [memoryview(buf)[done:]], off + done)
            if n <= 0:
                raise OSError("short read of %s at %d" % (path, off + done))
            done += n
        return bytes(buf)
    finally:
        os.close(fd)


def write_dev(path, data, off=0):
    """@data onto a block device at @off, with O_DIRECT, then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, len(data))
        buf[:] = data
        done = 0
        while done < len(data):
            done += os.pwrite(fd, memoryview(buf)[done:], off + done)
        os.fsync(fd)
    finally:
        os.close(fd)
