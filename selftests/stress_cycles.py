#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""stress_cycles.py - the create/teardown cycles of test_stress_01.

Usage: stress_cycles.py NAME TABLE NR CYCLES META META_IMG WAIT_S HOLDERS...

  NAME      dm device to create and remove, again and again
  TABLE     its table line without optional arguments ("0 <len> stream
            <meta> <dest> <origin> <region size>")
  NR        the number of regions; CYCLES the number of cycles
  META      the metadata device; META_IMG a copy of it to write back when
            every region has been copied (so copies can be in flight again)
  WAIT_S    how long a target may take to show regions copying
  HOLDERS   block devices (sysfs names, e.g. loop1 dm-0) nothing may hold
            once the target is removed

Cycle i creates NAME with "2 max_inflight 32" (cycles 4k + 3: "3 paused
max_inflight 32", then the "continue" message), waits until the status
shows regions copying (16, or any a second after the first) and tears it
down while they are in flight, in turn
by: remove; suspend, remove; reload of the same table (the old instance is
destroyed), remove; (paused) remove. Device-mapper is driven with its
ioctls from this one process, as dmsetup would (create = DEV_CREATE,
TABLE_LOAD, resume), so a cycle costs the guest the kernel's work, not
starting dmsetup several times: on the debug kernel under TCG starting a
process takes seconds.

Prints "key=value" lines: done, seconds, inflight_avg, all_copied,
restores, and, for each check that failed, fail_<check>=<first failure>
with check one of create, copying, remove, progress, paused, taint.
The cycles stop at the first failed create or remove or taint change.
Exit status 0 when nothing failed, 1 otherwise.
"""

import fcntl
import mmap
import os
import struct
import sys
import time

DM_IOCTL = 0xFD
DM_STRUCT = struct.Struct("=3I I I I i I I I Q 128s 129s 7s")  # struct dm_ioctl
assert DM_STRUCT.size == 312
DM_SPEC = struct.Struct("=Q Q i I 16s")  # struct dm_target_spec
DM_DEV_CREATE, DM_DEV_REMOVE, DM_DEV_SUSPEND, DM_DEV_STATUS = 3, 4, 6, 7
DM_TABLE_LOAD, DM_TABLE_STATUS, DM_TARGET_MSG = 9, 12, 14
DM_SUSPEND_FLAG = 1 << 1
DM_BUFFER_FULL_FLAG = 1 << 8
DM_NOFLUSH_FLAG = 1 << 11
BUFSIZE = 16384
INFLIGHT = 32
WAYS = ("remove", "suspend, remove", "reload, remove", "paused, continue, remove")


def dm_ioctl(ctl, cmd, name, flags=0, target_count=0, data=b""):
    """One dm ioctl; returns (header fields, whole buffer)."""
    size = max(BUFSIZE, DM_STRUCT.size + len(data))
    hdr = DM_STRUCT.pack(4, 0, 0, size, DM_STRUCT.size, target_count, 0, flags,
                         0, 0, 0, name.encode(), b"", b"")
    buf = bytearray(hdr + data + bytes(size - len(hdr) - len(data)))
    nr = (3 << 30) | (DM_STRUCT.size << 16) | (DM_IOCTL << 8) | cmd
    fcntl.ioctl(ctl, nr, buf, True)
    return DM_STRUCT.unpack_from(buf), buf


def load(ctl, name, table):
    start, length, ttype, params = table.split(None, 3)
    p = params.encode() + b"\0"
    p += bytes(-(DM_SPEC.size + len(p)) % 8)
    spec = DM_SPEC.pack(int(start), int(length), 0, 0, ttype.encode())
    dm_ioctl(ctl, DM_TABLE_LOAD, name, target_count=1, data=spec + p)


def create(ctl, name, table):
    """DEV_CREATE, TABLE_LOAD, resume; returns "major:minor"."""
    f, _ = dm_ioctl(ctl, DM_DEV_CREATE, name)
    dev = f[10]
    try:
        load(ctl, name, table)
        resume(ctl, name)
    except OSError:
        remove(ctl, name)
        raise
    return "%d:%d" % ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00))


def suspend(ctl, name):
    dm_ioctl(ctl, DM_DEV_SUSPEND, name, flags=DM_SUSPEND_FLAG)


def resume(ctl, name):
    dm_ioctl(ctl, DM_DEV_SUSPEND, name)


def remove(ctl, name):
    dm_ioctl(ctl, DM_DEV_REMOVE, name)


def exists(ctl, name):
    try:
        dm_ioctl(ctl, DM_DEV_STATUS, name)
    except OSError:
        return False
    return True


def message(ctl, name, msg):
    data = struct.pack("=Q", 0) + msg.encode() + b"\0"
    dm_ioctl(ctl, DM_TARGET_MSG, name, data=data)


def status(ctl, name):
    """(copied, copying) from the status, or None for a target in Fail."""
    f, buf = dm_ioctl(ctl, DM_TABLE_STATUS, name, flags=DM_NOFLUSH_FLAG)
    if f[7] & DM_BUFFER_FULL_FLAG or f[5] < 1:
        return None
    s = buf[f[4] + DM_SPEC.size:]
    w = s[:s.index(0)].decode(errors="replace").split()
    if len(w) < 5:
        return None
    return int(w[3].split("/")[0]), int(w[4])


def restore(meta, image):
    with open(image, "rb") as f:
        data = f.read()
    buf = mmap.mmap(-1, len(data))
    buf.write(data)
    fd = os.open(meta, os.O_WRONLY | os.O_DIRECT)
    try:
        os.pwrite(fd, buf, 0)
    finally:
        os.close(fd)


def tainted():
    with open("/proc/sys/kernel/tainted") as f:
        return f.read().strip()


def main():
    if len(sys.argv) < 8:
        sys.exit(__doc__)
    name, table, nr, cycles, meta, meta_img, wait_s = sys.argv[1:8]
    nr, cycles, wait_s = int(nr), int(cycles), float(wait_s)
    holders = sys.argv[8:]
    ctl = os.open("/dev/mapper/control", os.O_RDWR)
    fail = {}
    taint0 = tainted()
    done = restores = all_copied = inflight_sum = last_copied = 0
    t0 = time.monotonic()

    def failed(key, what):
        fail.setdefault(key, what)

    def wait_copying(what):
        """Poll until regions are copying (or all are copied).

        Then, for up to a second more, until half of max_inflight are: a
        slow kernel starts its copies one by one, and more copies in
        flight make a harder teardown. Only "some" is checked."""
        nonlocal all_copied
        end = time.monotonic() + wait_s
        seen = None
        while True:
            st = status(ctl, name)
            now = time.monotonic()
            if st and st[1] > 0:
                seen = seen or now
                if st[1] >= INFLIGHT // 2 or now - seen > 1:
                    return st
            elif st and st[0] == nr:
                all_copied += 1
                return st
            if now > end:
                failed("copying", "%s: nothing copying after %d s (%s)" % (what, wait_s, st))
                return st or (0, 0)
            time.sleep(0.01)

    i = 0
    while i < cycles:
        i += 1
        way = i % 4
        what = "cycle %d (%s)" % (i, WAYS[way])
        opts = "3 paused max_inflight %d" % INFLIGHT if way == 3 else \
            "2 max_inflight %d" % INFLIGHT
        try:
            devt = create(ctl, name, "%s %s" % (table, opts))
        except OSError as e:
            failed("create", "%s: create failed: %s" % (what, e))
            break
        st = status(ctl, name) or (0, 0)
        if st[0] < last_copied:
            failed("progress", "%s: %d copied after create, %d before the last remove"
                   % (what, st[0], last_copied))
        try:
            if st[0] == nr:
                # All copied, nothing left to have in flight: back to the
                # metadata of right after the checkerboard.
                remove(ctl, name)
                restore(meta, meta_img)
                restores += 1
                last_copied = 0
                i -= 1
                continue
            if way == 3:
                time.sleep(0.2)
                st = status(ctl, name) or (0, -1)
                if st[1] != 0:
                    failed("paused", "%s: %d regions copying while paused" % (what, st[1]))
                message(ctl, name, "continue")
            if st[1] < INFLIGHT // 2:
                st = wait_copying(what)
            inflight_sum += st[1]
            # The last count read: the removal commits at least that much.
            last_copied = st[0]
            if way == 1:
                suspend(ctl, name)
            elif way == 2:
                load(ctl, name, "%s %s" % (table, opts))
                suspend(ctl, name)
                resume(ctl, name)
                wait_copying(what + " after the reload")
            remove(ctl, name)
        except OSError as e:
            failed("remove", "%s: %s" % (what, e))
            break
        if exists(ctl, name) or os.path.exists("/sys/dev/block/" + devt):
            failed("remove", "%s: %s (%s) still there after the remove" % (what, name, devt))
            break
        held = [h for h in holders if os.listdir("/sys/block/%s/holders" % h)]
        if held:
            failed("remove", "%s: %s still held after the remove" % (what, " ".join(held)))
        done = i
        if tainted() != taint0:
            failed("taint", "after %s the kernel is tainted %s, was %s"
                   % (what, tainted(), taint0))
            break

    print("done=%d" % done)
    print("seconds=%d" % (time.monotonic() - t0))
    print("inflight_avg=%d" % (inflight_sum // max(done, 1)))
    print("all_copied=%d" % all_copied)
    print("restores=%d" % restores)
    for k, v in sorted(fail.items()):
        print("fail_%s=%s" % (k, v))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
