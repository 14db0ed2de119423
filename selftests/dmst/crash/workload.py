# SPDX-License-Identifier: GPL-2.0
"""test_crash_01's workload: known patterns written through the streaming
target, each acknowledged by fsync or O_DSYNC and followed by a log mark
"wNNN"; whole and partial regions far ahead of the copy, straddling and
multi-region writes, rewrites, writes at the copy frontier and behind it.
Writes WRITES_JSON: {"writes": [...], "fails": [...]}."""

import json
import mmap
import os
import subprocess
import time

from .patterns import pattern_range


def status(name):
    """(copied regions, state) of the stream target, or (-1, "?")."""
    try:
        w = subprocess.run(["dmsetup", "status", name], capture_output=True,
                           text=True, timeout=10).stdout.split()
        c, _ = w[6].split("/")
        return int(c), w[8]
    except Exception:
        return -1, "?"


class Workload:
    """Sequential writes to DEV; every one recorded, acknowledged or not."""

    def __init__(self, dev, name, lw):
        self.name, self.lw = name, lw
        self.fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
        self.fds = os.open(dev, os.O_RDWR | os.O_DIRECT | os.O_DSYNC)
        self.writes = []
        self.fails = []

    def close(self):
        os.close(self.fd)
        os.close(self.fds)

    def w(self, desc, sector, nsect, mode="fsync"):
        """Write i (the next): @nsect sectors at @sector, acknowledged by
        fsync or O_DSYNC (@mode), then the mark w<i>."""
        i = len(self.writes)
        c, st = status(self.name)
        data = pattern_range(i, sector, nsect)
        buf = mmap.mmap(-1, len(data))
        buf[:] = data
        t0 = time.monotonic()
        try:
            n = os.pwrite(self.fds if mode == "dsync" else self.fd, buf,
                          sector * 512)
            if n != len(data):
                raise OSError("short write %d" % n)
            if mode == "fsync":
                os.fsync(self.fd)
        except OSError as e:
            self.fails.append("w%03d %s: %s" % (i, desc, e))
            # An unacknowledged write: no mark; the checker treats it as
            # in flight until the end.
            self.writes.append(dict(i=i, desc=desc, sector=sector,
                                    nsect=nsect, mode=mode, acked=False,
                                    copied_before=c, state_before=st))
            return
        r = subprocess.run(["dmsetup", "message", self.lw, "0", "mark",
                            "w%03d" % i], capture_output=True, text=True)
        if r.returncode:
            self.fails.append("w%03d: mark failed: %s" % (i, r.stderr.strip()))
        self.writes.append(dict(i=i, desc=desc, sector=sector, nsect=nsect,
                                mode=mode, acked=True, copied_before=c,
                                state_before=st,
                                ms=int((time.monotonic() - t0) * 1000)))


def free_region(used, r, nr, down):
    """@r, or the next region up not in @used; failing that, the first free
    one from the top (@down) or from the bottom."""
    while r in used and r < nr - 1:
        r += 1
    if r in used:
        order = range(nr - 1, -1, -1) if down else range(nr)
        r = next(x for x in order if x not in used)
    used.add(r)
    return r


def run(wl, rs, nr):
    """The writes, in order."""
    def R(r, off=0):
        return r * rs + off

    w = wl.w
    # Far ahead of the copy frontier (uncopied when written).
    w("whole uncopied region 240", R(240), rs)
    w("4 KiB into uncopied region 241", R(241, 16), 8)
    w("8 KiB straddling regions 200/201", R(200, rs - 8), 16, "dsync")
    w("4 KiB over the whole-region write (240)", R(240, 64), 8)
    w("512 B into region 250", R(250, 5), 1)
    w("192 KiB over regions 220-223", R(220, rs // 2), 3 * rs, "dsync")
    w("whole region 241 again", R(241), rs, "dsync")
    w("version 1 of region 230 +0", R(230), 8)
    # At and just behind the frontier, racing with copies in flight.
    used = {200, 201, 220, 221, 222, 223, 230, 240, 241, 250}
    for j in range(10):
        c, _ = status(wl.name)
        if c < 0:
            c = 0
        r = free_region(used, min(c + 1 + j % 3, nr - 1), nr, True)
        w("4 KiB at the frontier (copied %d), region %d" % (c, r),
          R(r, 8 * (j % 16)), 8, "dsync" if j % 2 else "fsync")
        if j == 4:
            w("version 2 of region 230 +0", R(230), 8, "dsync")
            b = free_region(used, max(c - 4, 0), nr, False)
            w("4 KiB behind the frontier, region %d" % b, R(b, 32), 8)
        time.sleep(0.1)
    w("version 3 of region 230 +0", R(230), 8)
    w("4 KiB into region 0", R(0, 40), 8, "dsync")
    w("last 4 KiB of the last region", R(nr - 1, rs - 8), 8)


def main(argv):
    dev, name, lw, out, rs, nr = argv
    wl = Workload(dev, name, lw)
    run(wl, int(rs), int(nr))
    wl.close()
    with open(out, "w") as f:
        json.dump({"writes": wl.writes, "fails": wl.fails}, f, indent=1)
    for line in wl.fails:
        print("# workload: " + line)
    return 0
