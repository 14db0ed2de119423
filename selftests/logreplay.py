#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""logreplay.py - read and replay a dm-log-writes log.

A small stand-in for fstests' src/log-writes/replay-log (no Debian package
ships it). The format is the one written by drivers/md/dm-log-writes.c
(Linux 6.1):

  sector 0 of the log: struct log_write_super, little endian,
      u64 magic (0x6a736677736872), u64 version (1), u64 nr_entries,
      u32 sectorsize (the logical block size of the logged device).
  Then nr_entries entries, back to back, starting at byte <sectorsize>:
      one block of <sectorsize> bytes holding struct log_write_entry,
          u64 sector, u64 nr_sectors   (both in <sectorsize> units),
          u64 flags, u64 data_len,
      followed, for a MARK, by the mark's text (data_len bytes) in the same
      block;
      then, unless the entry is a DISCARD, nr_sectors blocks of written data.
  Flags: FLUSH=1 FUA=2 DISCARD=4 MARK=8 METADATA=16.

Entries are in the order the target logged them: writes in completion order,
held back until the next flush completes (so they precede that FLUSH entry);
FUA writes and marks when they complete or are made. nr_entries in the super
block is rewritten after each FUA and mark entry and when the target is
removed (which logs a final "dm-log-writes-end" mark).

Replaying entries [0, N) onto a device holding what the logged device held
when logging started gives the device's content as of entry N. A DISCARD is
replayed by writing zeros (what a loop device over tmpfs returns after a
discard), unless --no-discard is given.

Command line (entry numbers are 0-based indices into the log):
  logreplay.py --log LOG --list
        one line per entry: "<idx> <sector> <nr_sectors> <FLAGS> [mark]",
        sectors in 512-byte units
  logreplay.py --log LOG --num-entries
  logreplay.py --log LOG --find (--mark NAME | --next-fua | --next-flush)
               [--start-entry N]
        print the index of the first matching entry at or after N
        (--next-fua matches FUA or FLUSH entries, like replay-log)
  logreplay.py --log LOG --replay DEV [--start-entry N]
               (--limit N | --end-mark NAME | nothing: the whole log)
        write entries [start, limit) onto DEV in log order, one pwrite per
        entry (O_DIRECT when DEV is a block device), then fsync;
        --end-mark replays up to and including the mark.

As a module: Log(path) parses the log; Log.entries is a list of Entry;
Log.data(entry) returns the entry's data; apply(image, log, entry) replays
one entry onto a bytearray.
"""

import argparse
import mmap
import os
import stat
import struct
import sys

LOG_MAGIC = 0x6a736677736872
LOG_VERSION = 1

FLUSH = 1 << 0
FUA = 1 << 1
DISCARD = 1 << 2
MARK = 1 << 3
METADATA = 1 << 4

_SUPER = struct.Struct("<QQQI")
_ENTRY = struct.Struct("<QQQQ")


def flag_names(flags):
    names = [n for bit, n in ((FLUSH, "FLUSH"), (FUA, "FUA"),
                              (DISCARD, "DISCARD"), (MARK, "MARK"),
                              (METADATA, "METADATA")) if flags & bit]
    rest = flags & ~(FLUSH | FUA | DISCARD | MARK | METADATA)
    if rest:
        names.append("0x%x" % rest)
    return "|".join(names) or "WRITE"


class LogError(Exception):
    pass


class Entry:
    """One log entry. sector/nr_sectors are in 512-byte units; dev_* in the
    log's sectorsize units as stored; data_off is the byte offset of the
    written data in the log (None for marks, flushes and discards)."""
    __slots__ = ("index", "pos", "dev_sector", "dev_nr_sectors", "flags",
                 "data_len", "sector", "nr_sectors", "data_off", "mark")

    def __repr__(self):
        return "Entry(%d %d+%d %s%s)" % (
            self.index, self.sector, self.nr_sectors, flag_names(self.flags),
            " " + self.mark if self.mark is not None else "")

    def is_point(self):
        """A FLUSH or FUA entry: a replay point in the generic/482 sense."""
        return bool(self.flags & (FLUSH | FUA))

    def writes_data(self):
        return (self.nr_sectors > 0 and not self.flags & DISCARD)


class Log:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if stat.S_ISBLK(os.fstat(f.fileno()).st_mode):
                size = f.seek(0, 2)
                f.seek(0)
            if size < _SUPER.size:
                raise LogError("%s: too small for a log super block" % path)
            self.buf = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)
        magic, version, nr, ssize = _SUPER.unpack_from(self.buf, 0)
        if magic != LOG_MAGIC:
            raise LogError("%s: bad magic 0x%x (not a dm-log-writes log)"
                           % (path, magic))
        if version != LOG_VERSION:
            raise LogError("%s: unsupported log version %d" % (path, version))
        if ssize < 512 or ssize & (ssize - 1):
            raise LogError("%s: bad sectorsize %d" % (path, ssize))
        self.sectorsize = ssize
        self.nr_entries = nr
        self.entries = self._parse()

    def _parse(self):
        ss = self.sectorsize
        scale = ss // 512
        pos = ss
        out = []
        for i in range(self.nr_entries):
            if pos + ss > len(self.buf):
                raise LogError("entry %d at byte %d runs past the end of the "
                               "log (%d bytes)" % (i, pos, len(self.buf)))
            e = Entry()
            e.index = i
            e.pos = pos
            (e.dev_sector, e.dev_nr_sectors, e.flags,
             e.data_len) = _ENTRY.unpack_from(self.buf, pos)
            e.sector = e.dev_sector * scale
            e.nr_sectors = e.dev_nr_sectors * scale
            e.mark = None
            e.data_off = None
            pos += ss
            if e.flags & MARK:
                if e.data_len > ss - _ENTRY.size:
                    raise LogError("entry %d: mark of %d bytes does not fit "
                                   "its block" % (i, e.data_len))
                raw = bytes(self.buf[e.pos + _ENTRY.size:
                                     e.pos + _ENTRY.size + e.data_len])
                e.mark = raw.decode("utf-8", "replace")
            elif e.data_len:
                # 6.1 only attaches data to marks; anything else is a format
                # this parser does not know.
                raise LogError("entry %d: data_len %d on a non-mark entry"
                               % (i, e.data_len))
            if not e.flags & DISCARD:
                if e.nr_sectors:
                    e.data_off = pos
                pos += e.dev_nr_sectors * ss
            if pos > len(self.buf):
                raise LogError("entry %d: data runs past the end of the log"
                               % i)
            out.append(e)
        self.end = pos
        return out

    def data(self, e):
        """The bytes entry e wrote (a memoryview into the log), or None."""
        if e.data_off is None:
            return None
        return memoryview(self.buf)[e.data_off:e.data_off + e.nr_sectors * 512]

    def find_mark(self, name, start=0):
        for e in self.entries[start:]:
            if e.mark == name:
                return e.index
        return None

    def find_next(self, mask, start=0):
        for e in self.entries[start:]:
            if e.flags & mask:
                return e.index
        return None


def apply(image, log, e, discard_zeroes=True):
    """Replay entry e onto image (a bytearray of the device's size)."""
    if e.flags & DISCARD:
        if discard_zeroes and e.nr_sectors:
            off = e.sector * 512
            n = e.nr_sectors * 512
            _check_range(len(image), off, n, e)
            image[off:off + n] = bytes(n)
        return
    d = log.data(e)
    if d is None:
        return
    off = e.sector * 512
    _check_range(len(image), off, len(d), e)
    image[off:off + len(d)] = d


def _check_range(size, off, n, e):
    if off + n > size:
        raise LogError("entry %d writes bytes [%d, %d) past the end of the "
                       "replay device (%d bytes)" % (e.index, off, off + n, size))


class _Dev:
    """A replay target: a file, or a block device written with O_DIRECT."""

    def __init__(self, path):
        fd = os.open(path, os.O_RDWR)
        self.blk = stat.S_ISBLK(os.fstat(fd).st_mode)
        self.size = os.lseek(fd, 0, os.SEEK_END)
        if self.blk:
            os.close(fd)
            fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        self.fd = fd
        self.bounce = None

    def pwrite(self, data, off):
        if off + len(data) > self.size:
            raise LogError("write of %d bytes at %d past the end of the "
                           "replay device (%d bytes)"
                           % (len(data), off, self.size))
        if not self.blk:
            os.pwrite(self.fd, data, off)
            return
        # O_DIRECT wants an aligned buffer: an anonymous mmap is.
        n = len(data)
        if self.bounce is None or len(self.bounce) < n:
            self.bounce = mmap.mmap(-1, max(n, 1 << 20))
        self.bounce[0:n] = data
        done = 0
        while done < n:
            done += os.pwrite(self.fd, memoryview(self.bounce)[done:n],
                              off + done)

    def close(self):
        os.fsync(self.fd)
        os.close(self.fd)


def replay(log, dev_path, start, limit, discard_zeroes=True):
    dev = _Dev(dev_path)
    n = 0
    try:
        for e in log.entries[start:limit]:
            if e.flags & DISCARD:
                if discard_zeroes and e.nr_sectors:
                    dev.pwrite(bytes(e.nr_sectors * 512), e.sector * 512)
                    n += 1
                continue
            d = log.data(e)
            if d is not None:
                dev.pwrite(d, e.sector * 512)
                n += 1
    finally:
        dev.close()
    return n


def main(argv):
    p = argparse.ArgumentParser(
        description="Read and replay a dm-log-writes log.")
    p.add_argument("--log", required=True)
    p.add_argument("--list", action="store_true")
    p.add_argument("--num-entries", action="store_true")
    p.add_argument("--find", action="store_true")
    p.add_argument("--mark")
    p.add_argument("--next-fua", action="store_true")
    p.add_argument("--next-flush", action="store_true")
    p.add_argument("--replay", metavar="DEV")
    p.add_argument("--start-entry", type=int, default=0)
    p.add_argument("--limit", type=int)
    p.add_argument("--end-mark")
    p.add_argument("--no-discard", action="store_true")
    a = p.parse_args(argv)

    try:
        log = Log(a.log)
    except (LogError, OSError) as err:
        print("logreplay: %s" % err, file=sys.stderr)
        return 1

    if a.num_entries:
        print(log.nr_entries)
        return 0
    if a.list:
        for e in log.entries:
            print("%d %d %d %s%s" % (e.index, e.sector, e.nr_sectors,
                                     flag_names(e.flags),
                                     " " + e.mark if e.mark is not None else ""))
        return 0
    if a.find:
        if a.mark is not None:
            idx = log.find_mark(a.mark, a.start_entry)
        elif a.next_fua:
            idx = log.find_next(FUA | FLUSH, a.start_entry)
        elif a.next_flush:
            idx = log.find_next(FLUSH, a.start_entry)
        else:
            print("logreplay: --find needs --mark, --next-fua or --next-flush",
                  file=sys.stderr)
            return 2
        if idx is None:
            return 1
        print(idx)
        return 0
    if a.replay:
        limit = log.nr_entries
        if a.limit is not None:
            limit = a.limit
        elif a.end_mark is not None:
            idx = log.find_mark(a.end_mark, a.start_entry)
            if idx is None:
                print("logreplay: no mark %r" % a.end_mark, file=sys.stderr)
                return 1
            limit = idx + 1
        if not 0 <= a.start_entry <= limit <= log.nr_entries:
            print("logreplay: bad entry range [%d, %d) of %d"
                  % (a.start_entry, limit, log.nr_entries), file=sys.stderr)
            return 2
        try:
            replay(log, a.replay, a.start_entry, limit, not a.no_discard)
        except (LogError, OSError) as err:
            print("logreplay: %s" % err, file=sys.stderr)
            return 1
        return 0
    p.print_usage(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
