# SPDX-License-Identifier: GPL-2.0
"""test_crash_01's replay checker.

    python3 -m dmst.crash check dir=... log=LOG writes=WRITES_JSON
        orig=ORIG data=DATA chk=CHKD chk_meta=DEV chk_dest=DEV chk_name=NAME
        rs=RS len=LEN nr=NR meta_sect=N data_sect=N max_points=N
        max_reorder=N max_torn=N results=FILE [images=DIR]

Replays the log once, in memory, and checks every crash state (prefix,
reordered, torn; see test_crash_01.sh) statically against the write model,
and the stream target built over sampled states. Writes its verdicts to
RESULTS: "R <key> ok|fail", "D <key> <diagnostic>" and one
"N points P prefix N reorder N torn N target N" line. With images=DIR, the
metadata of the sampled states is also saved there (meta-*.img), for
dmst.crosscheck.
"""

import json
import os
import subprocess
import time

import logreplay
from logreplay import DISCARD

from .. import ondisk
from ..blockio import read_dev, write_dev
from .patterns import SECT, parse, pattern, pattern_range

KEYS = ("final", "meta", "dest", "acked", "mono", "reorder", "torn", "ctr",
        "count", "read")
SB_END = ondisk.BLOCK_SECTORS                   # block 0, in sectors
# The two slots of bitmap block 0 (the only one of 256 regions).
SLOT_END = (ondisk.bitmap_location(0, 1) + 1) * ondisk.BLOCK_SECTORS


def say(line):
    print("# " + line, flush=True)


class Results:
    """The verdicts and diagnostics, by key, in the results file."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.diag_count = {}
        self.failed = set()
        self.counts = {}

    def count(self, kind):
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def diag(self, key, line):
        n = self.diag_count.get(key, 0)
        self.diag_count[key] = n + 1
        if n < 10:
            self.f.write("D %s %s\n" % (key, line))
        elif n == 10:
            self.f.write("D %s (further failures not shown)\n" % key)

    def fail(self, key, line):
        self.failed.add(key)
        self.diag(key, line)

    def finish(self, npoints):
        for key in KEYS:
            self.f.write("R %s %s\n" % (key, "fail" if key in self.failed
                                        else "ok"))
        c = self.counts
        self.f.write("N points %d prefix %d reorder %d torn %d target %d\n"
                     % (npoints, c.get("prefix", 0), c.get("reorder", 0),
                        c.get("torn", 0), c.get("target", 0)))
        self.f.close()

# ---- the log's shape ---------------------------------------------------------


def touches(e, lo, hi):
    """Entry @e writes sectors in [lo, hi)."""
    return e.writes_data() and e.sector < hi and e.sector + e.nr_sectors > lo


def regions_of(sector, nsect, rs):
    return range(sector // rs, (sector + nsect - 1) // rs + 1)


def what_entry(e, meta, rs):
    """An entry in words: its flags and what it writes."""
    if e.mark is not None:
        return "MARK %s" % e.mark
    f = logreplay.flag_names(e.flags)
    if not e.nr_sectors:
        return f
    if e.sector < SB_END:
        where = "superblock"
    elif e.sector < SLOT_END:
        where = "bitmap slot %d" % ((e.sector - SB_END) // 8)
    elif e.sector < meta:
        where = "metadata sector %d" % e.sector
    else:
        rr = regions_of(e.sector - meta, e.nr_sectors, rs)
        where = "destination region %d%s" % (
            rr[0], "-%d" % rr[-1] if len(rr) > 1 else "")
    return "%s %s" % (f, where)


def classify_points(E, points):
    """FLUSH/FUA point -> format | commit | mid-commit | data, by what the
    entries since the previous point wrote."""
    first_sb = next((e.index for e in E if touches(e, 0, SB_END)), None)
    cls = {}
    prev = -1
    for p in points:
        ep = E[prev + 1:p + 1]
        sb = any(touches(e, 0, SB_END) for e in ep)
        slot = any(touches(e, SB_END, SLOT_END) for e in ep)
        if first_sb is None or p <= first_sb or (prev < first_sb and sb):
            cls[p] = "format"
        elif sb:
            cls[p] = "commit"
        elif slot:
            cls[p] = "mid-commit"
        else:
            cls[p] = "data"
        prev = p
    return cls


def spread(items, m):
    """At most @m of @items, evenly spaced, the first and last included."""
    if m <= 0 or not items:
        return []
    if len(items) <= m:
        return list(items)
    if m == 1:
        return [items[len(items) // 2]]
    return sorted({items[round(i * (len(items) - 1) / (m - 1))]
                   for i in range(m)})


def sample_points(points, cls, maxp):
    """The FLUSH/FUA points for the target checks: the format phase, the
    end, and evenly spaced mid-commit, commit and data points."""
    chosen = set(p for p in points if cls[p] == "format")
    if points:
        chosen.add(points[-1])
    budget = max(maxp - len(chosen), 0)
    groups = [[p for p in points if cls[p] == c and p not in chosen]
              for c in ("mid-commit", "commit", "data")]
    quota = [budget // 3, budget // 3, budget - 2 * (budget // 3)]
    for _ in range(3):
        spare = sum(max(q - len(g), 0) for q, g in zip(quota, groups))
        quota = [min(q, len(g)) for q, g in zip(quota, groups)]
        for i, g in enumerate(groups):
            add = min(spare, len(g) - quota[i])
            quota[i] += add
            spare -= add
    for g, q in zip(groups, quota):
        chosen.update(spread(g, q))
    return set(sorted(chosen)[:max(maxp, 2)])


class Plan:
    """Which crash states are checked, and how."""

    def __init__(self, E, A):
        self.points = [e.index for e in E if e.is_point()]
        self.cls = classify_points(E, self.points)
        self.sample_prefix = sample_points(self.points, self.cls,
                                           int(A["max_points"]))
        self.last_pt_before = {}
        lp = None
        for e in E:
            self.last_pt_before[e.index] = lp
            if e.is_point():
                lp = e.index
        # Reordered states: every superblock write that is not itself a
        # FLUSH/FUA point, on top of the state at the last point before it.
        self.reorder_all = [e.index for e in E if touches(e, 0, SB_END)
                            and not e.is_point()
                            and self.last_pt_before[e.index] is not None]
        self.sample_reorder = set(spread(self.reorder_all,
                                         int(A["max_reorder"])))
        # Torn states: every metadata block write, first sector only or all
        # but it.
        self.torn_all = [(e.index, how) for e in E
                         if touches(e, 0, SLOT_END) and e.nr_sectors >= 2
                         for how in ("head", "tail")]
        self.sample_torn = set(spread(self.torn_all, int(A["max_torn"])))
        self.torn_by = {}
        for t, how in self.torn_all:
            self.torn_by.setdefault(t, []).append(how)
        self.nstatic = sum(1 for e in E if e.writes_data() or
                           e.mark is not None or e.flags & DISCARD)

    def describe(self, E):
        n = {c: sum(1 for p in self.points if self.cls[p] == c)
             for c in ("format", "mid-commit", "commit", "data")}
        say("log: %d entries, %d FLUSH/FUA points (format %d, mid-commit %d, "
            "commit %d, data %d), %d superblock writes outside points, %d "
            "metadata block writes" % (
                len(E), len(self.points), n["format"], n["mid-commit"],
                n["commit"], n["data"], len(self.reorder_all),
                len(self.torn_all) // 2))
        say("static checks: %d prefix, %d reordered, %d torn states; target "
            "checks: %d prefix, %d reordered, %d torn"
            % (self.nstatic, len(self.reorder_all), len(self.torn_all),
               len(self.sample_prefix), len(self.sample_reorder),
               len(self.sample_torn)))

# ---- the expected content model ----------------------------------------------
# Writes are sequential: write i+1 is issued after write i returned (and,
# when it was acknowledged, after its mark w<i> was logged). In a state whose
# history is the entries before index X, let j be the last write whose mark
# precedes X: writes up to j that were acknowledged must show (later ones
# over earlier ones) on top of the origin; write j+1 may be in flight and a
# write that returned an error may or may not have landed: each sector of
# those may show the new or the old data.


class Model:
    """What the target's sectors may hold after a prefix of the writes."""

    def __init__(self, writes, ack_idx, origin, rs, length, nr):
        self.writes, self.ack_idx, self.origin = writes, ack_idx, origin
        self.rs, self.len, self.rb = rs, length, rs * SECT
        self.w_regions = [set(regions_of(w["sector"], w["nsect"], rs))
                          for w in writes]
        self.base = bytearray(origin)
        self.base_j = -1
        self.ver = [0] * nr                 # bumped when a region's model moves

    def last_acked(self, x):
        """The last acknowledged write whose mark precedes log index @x."""
        j = -1
        for i, idx in enumerate(self.ack_idx):
            if idx is not None and idx < x:
                j = i
        return j

    def advance(self, j):
        """Applies the acknowledged writes up to @j to the base image."""
        while self.base_j < j:
            self.base_j += 1
            w = self.writes[self.base_j]
            if self.ack_idx[self.base_j] is not None:
                self.base[w["sector"] * SECT:
                          (w["sector"] + w["nsect"]) * SECT] = \
                    pattern_range(w["i"], w["sector"], w["nsect"])
            for r in self.w_regions[self.base_j]:
                self.ver[r] += 1

    def maybe_writes(self, j, s):
        """Writes whose data sector @s may show besides the base's: the one
        in flight, failed ones not overwritten since."""
        out = []
        if j + 1 < len(self.writes) and covers(self.writes[j + 1], s):
            out.append(j + 1)
        for m in range(j, -1, -1):
            if not covers(self.writes[m], s):
                continue
            if self.ack_idx[m] is not None:
                break
            out.append(m)
        return out

    def what(self, sec, sector):
        """Where the 512 bytes @sec, found at @sector, came from."""
        o = self.origin
        if sec == o[sector * SECT:(sector + 1) * SECT]:
            return "origin"
        p = parse(sec)
        if p is not None:
            i, s = p
            return "w%03d" % i + ("" if s == sector
                                  else "(of sector %d)" % s)
        if not any(sec):
            return "zeros"
        for off in (-self.rs, self.rs):
            x = sector + off
            if 0 <= x < self.len and sec == o[x * SECT:(x + 1) * SECT]:
                return "origin sector %d" % x
        return "unknown data"

    def expect_name(self, sector, j):
        for i in range(j, -1, -1):
            if self.ack_idx[i] is not None and covers(self.writes[i], sector):
                return "w%03d" % i
        return "origin"

    def region_ok(self, r, got, j):
        """None when region @r's bytes (@got) are allowed, else a
        description."""
        rs, base = self.rs, self.base
        lo = r * self.rb
        if got == base[lo:lo + self.rb]:
            return None
        for n in range(rs):
            s = r * rs + n
            g = bytes(got[n * SECT:(n + 1) * SECT])
            if g == base[s * SECT:(s + 1) * SECT]:
                continue
            maybe = self.maybe_writes(j, s)
            if any(g == pattern(m, s) for m in maybe):
                continue
            alt = "".join(" or w%03d (%s)" % (m, "in flight" if m == j + 1
                                              else "failed") for m in maybe)
            nbad = sum(1 for nn in range(n, rs)
                       if got[nn * SECT:(nn + 1) * SECT] !=
                       base[(r * rs + nn) * SECT:(r * rs + nn + 1) * SECT])
            return ("region %d sector %d (+%d): %s, expected %s%s "
                    "(%d sectors from there differ from the acknowledged "
                    "state)" % (r, s, n, self.what(g, s),
                                self.expect_name(s, j), alt, nbad))
        return None


def covers(w, s):
    return w["sector"] <= s < w["sector"] + w["nsect"]

# ---- the checks of one crash state -------------------------------------------


class Checker:
    """Static checks (the replayed image against the model) and target
    checks (the stream target over the replayed image)."""

    def __init__(self, A, res, model):
        self.A, self.res, self.model = A, res, model
        self.rs, self.len, self.nr = int(A["rs"]), int(A["len"]), int(A["nr"])
        self.rb = self.rs * SECT
        self.mb = int(A["meta_sect"]) * SECT    # the metadata slice, bytes
        # The metadata blocks in use.
        self.md = ondisk.metadata_blocks(self.nr) * ondisk.BLOCK_SIZE
        self.geo = dict(region_size=self.rs, target_size=self.len,
                        nr_regions=self.nr, origin_size=self.len,
                        dest_size=self.len)
        self.images = A.get("images")
        self.decoded = {}
        self.dest_ver = [0] * self.nr       # bumped when the live image changes
        self.ok_cache = {}                  # region -> key it was verified under
        self.last_good = None               # committed state of the last prefix

    def decode_md(self, meta):
        key = bytes(meta[0:self.md])
        d = self.decoded.get(key)
        if d is None:
            d = ondisk.decode(bytes(meta[0:self.mb]), self.geo)
            if len(self.decoded) > 256:
                self.decoded.clear()
            self.decoded[key] = d
        return d

    def region_key(self, r, j):
        m = self.model
        nxt = j + 1 if j + 1 < len(m.writes) and r in m.w_regions[j + 1] \
            else -1
        return (self.dest_ver[r], m.ver[r], nxt)

    def static(self, label, kind, meta, dest, x, live):
        """Checks one crash state: @meta holds the metadata slice, @dest the
        destination slice, @x the first log index not in its history.
        @live: @dest is the live replay image (region results can be
        cached)."""
        key = {"prefix": None, "reorder": "reorder", "torn": "torn"}[kind]
        K = (lambda k: key or k)
        self.res.count(kind)
        j = self.model.last_acked(x)
        self.model.advance(j)
        md = self.decode_md(meta)
        if md["state"] == "invalid":
            self.res.fail(K("meta"), "%s: metadata torn/inconsistent: %s"
                          % (label, md["reason"]))
            return md, j
        self.check_dest(label, K("dest"), md, dest, j, live)
        self.check_acked(label, K("acked"), md, j)
        if kind == "prefix":
            self.check_mono(label, md)
        return md, j

    def check_dest(self, label, key, md, dest, j, live):
        """Every committed region holds allowed data on the destination."""
        bad = 0
        for r in range(self.nr):
            if not md["copied"][r]:
                continue
            if live:
                rk = self.region_key(r, j)
                if self.ok_cache.get(r) == rk:
                    continue
            d = self.model.region_ok(r, dest[r * self.rb:(r + 1) * self.rb], j)
            if d:
                bad += 1
                if bad <= 2:
                    self.res.fail(key, "%s: committed (transaction %d) but on "
                                  "the destination: %s" % (label, md["tid"], d))
            elif live:
                self.ok_cache[r] = rk
        if bad > 2:
            self.res.fail(key, "%s: %d committed regions wrong on the "
                          "destination" % (label, bad))

    def check_acked(self, label, key, md, j):
        """Every region an acknowledged write touched is committed."""
        m = self.model
        lost = []
        for i in range(j + 1):
            if m.ack_idx[i] is None:
                continue
            for r in sorted(m.w_regions[i]):
                if not md["copied"][r]:
                    lost.append("w%03d (mark at entry %d) region %d"
                                % (i, m.ack_idx[i], r))
        if lost:
            self.res.fail(key, "%s: acknowledged but not committed (metadata "
                          "%s%s): %s" % (
                              label, md["state"],
                              ", transaction %d, %d copied"
                              % (md["tid"], md["nr_copied"])
                              if md["state"] == "valid" else "",
                              "; ".join(lost[:4]) +
                              (" and %d more" % (len(lost) - 4)
                               if len(lost) > 4 else "")))

    def check_mono(self, label, md):
        """Along the prefix states, the committed state only grows."""
        copied = md["copied"]
        if self.last_good is not None:
            plabel, ptid, pcopied = self.last_good
            if md["tid"] < ptid:
                self.res.fail("mono", "%s: transaction %d (%s) after %d at %s"
                              % (label, md["tid"], md["state"], ptid, plabel))
            else:
                gone = [r for r in range(self.nr)
                        if pcopied[r] and not copied[r]]
                if gone:
                    self.res.fail("mono", "%s: regions %s committed at %s are "
                                  "no longer marked" % (label, gone[:8],
                                                        plabel))
        self.last_good = (label, md["tid"], copied)

    def save_meta(self, image):
        """The metadata slice of a sampled state, for dmst.crosscheck."""
        if self.images:
            path = os.path.join(self.images, "meta-%03d.img"
                                % self.res.counts.get("target", 0))
            with open(path, "wb") as f:
                f.write(bytes(image[0:self.mb]))

    def target(self, label, image, md, j):
        """Builds the target (paused) over @image and checks it."""
        A = self.A
        self.res.count("target")
        self.save_meta(image)
        t0 = time.monotonic()
        write_dev(A["chk"], image)
        table = "0 %d stream %s %s %s %d 1 paused" % (
            self.len, A["chk_meta"], A["chk_dest"], A["orig"], self.rs)
        with open("/dev/kmsg", "w") as k:
            k.write("dm-stream selftest: crash01 %s\n" % label)
        created, st, got, err = self.build(label, table)
        summary = "%s: %s, metadata %s" % (
            label, "acked through w%03d" % j if j >= 0 else "nothing acked",
            md["state"])
        if md["state"] == "valid":
            summary += " (transaction %d, %d copied%s)" % (
                md["tid"], md["nr_copied"], ", a newer uncommitted slot"
                if md["newer_slots"] else "")
        self.check_ctr(label, md, created, st, err)
        if created and md["state"] != "invalid":
            summary += self.check_status(label, md, st)
        if got is not None:
            summary += self.check_reads(label, got, j)
        say("%s (%.1f s)" % (summary, time.monotonic() - t0))

    def build(self, label, table):
        """(created, status words, bytes read through it, error)."""
        name = self.A["chk_name"]
        r = dmsetup("create", name, "--table", table)
        created = r.returncode == 0
        err = r.stderr.strip()
        st, got = None, None
        if created:
            st = dmsetup("status", name).stdout.split()
            try:
                got = read_dev("/dev/mapper/" + name, self.len * SECT)
            except OSError as e:
                self.res.fail("read", "%s: read through the target failed: %s"
                              % (label, e))
            if dmsetup("remove", name).returncode:
                time.sleep(0.5)
                dmsetup("remove", "--retry", name)
        else:
            kl = subprocess.run(["sh", "-c", "dmesg | grep -E 'device-mapper' "
                                 "| tail -n 2"], capture_output=True,
                                text=True).stdout.strip().replace("\n", " | ")
            err = "%s; kernel: %s" % (err, kl)
        return created, st, got, err

    def check_ctr(self, label, md, created, st, err):
        """The target constructs over blank or valid metadata, refuses torn
        metadata."""
        if md["state"] == "invalid":
            if created:
                self.res.fail("ctr", "%s: the target ACCEPTED torn metadata "
                              "(%s); status %s" % (label, md["reason"],
                                                   " ".join(st[3:] if st
                                                            else [])))
            else:
                self.res.diag("ctr", "%s: the target refused the torn "
                              "metadata: %s" % (label, err))
        elif not created:
            self.res.fail("ctr", "%s: the target refused %s metadata: %s"
                          % (label, md["state"], err))

    def check_status(self, label, md, st):
        """Its status: the committed bitmap's count, paused, rw, no error."""
        info = st[3:] if st else []
        want_c = md["nr_copied"]
        want_state = "complete" if want_c == self.nr else "paused"
        try:
            c, t = info[3].split("/")
            ok = (int(info[2]) == self.rs and int(c) == want_c and
                  int(t) == self.nr and info[4] == "0" and
                  info[5] == want_state and info[6] == "rw" and
                  info[7] == "0")
        except (IndexError, ValueError):
            ok = False
        if not ok:
            self.res.fail("count", "%s: status '%s', expected %d/%d copied, "
                          "0 copying, %s rw 0 errors"
                          % (label, " ".join(info), want_c, self.nr,
                             want_state))
        return ", status %s" % (info[3] if len(info) > 3 else "?")

    def check_reads(self, label, got, j):
        """Every region read through the target holds allowed data."""
        bad = 0
        for r in range(self.nr):
            d = self.model.region_ok(r, got[r * self.rb:(r + 1) * self.rb], j)
            if d:
                bad += 1
                if bad <= 3:
                    self.res.fail("read", "%s: read through the target: %s"
                                  % (label, d))
        if bad > 3:
            self.res.fail("read", "%s: %d regions read wrong in all"
                          % (label, bad))
        return ", reads %s" % ("ok" if not bad else "%d regions bad" % bad)


def dmsetup(*args):
    return subprocess.run(("dmsetup",) + args, capture_output=True,
                          text=True, timeout=60)

# ---- replay once, in memory ---------------------------------------------------


def torn_meta(img, log, e, how, mb):
    """The metadata slice with entry @e torn: its first sector only
    (head) or all but it (tail)."""
    meta = bytearray(img[0:mb])
    d = log.data(e)
    off = e.sector * SECT
    if how == "head":
        meta[off:off + SECT] = d[0:SECT]
    else:
        meta[off + SECT:off + len(d)] = d[SECT:]
    return meta


def replay(log, plan, chk, size):
    """Every crash state along the log; returns the final image."""
    E, mb, meta_sect, rs = log.entries, chk.mb, chk.mb // SECT, chk.rs
    img = bytearray(size)
    mv = memoryview(img)
    reorder_set = set(plan.reorder_all)
    snap_users = {}
    for e in plan.reorder_all:
        f = plan.last_pt_before[e]
        snap_users[f] = snap_users.get(f, 0) + 1
    snaps = {}
    for e in E:
        x = e.index
        for how in plan.torn_by.get(e.index, []):
            meta = torn_meta(img, log, e, how, mb)
            label = "torn entry %d (%s, %s)" % (
                e.index, what_entry(e, meta_sect, rs),
                "first sector only" if how == "head"
                else "all but the first sector")
            md, j = chk.static(label, "torn", meta, mv[mb:], x, True)
            if (e.index, how) in plan.sample_torn:
                full = bytearray(img)
                full[0:mb] = meta
                chk.target(label, full, md, j)
        if e.index in reorder_set:
            f = plan.last_pt_before[e.index]
            snap = snaps[f]
            snap_users[f] -= 1
            if not snap_users[f]:
                del snaps[f]
            meta = bytearray(snap[0:mb])
            logreplay.apply(meta, log, e)
            label = "reorder: point %d + superblock entry %d" % (f, e.index)
            md, j = chk.static(label, "reorder", meta, memoryview(snap)[mb:],
                               x, False)
            if e.index in plan.sample_reorder:
                full = bytearray(snap)
                full[0:mb] = meta
                chk.target(label, full, md, j)
        logreplay.apply(img, log, e)
        if e.writes_data() and e.sector + e.nr_sectors > meta_sect:
            lo = max(e.sector, meta_sect)
            for r in regions_of(lo - meta_sect, e.sector + e.nr_sectors - lo,
                                rs):
                chk.dest_ver[r] += 1
        if e.index in snap_users:
            snaps[e.index] = bytes(img)
        if e.writes_data() or e.mark is not None or e.flags & DISCARD or \
                e.index in plan.sample_prefix:
            label = "entry %d (%s)" % (e.index, what_entry(e, meta_sect, rs))
            if e.index in plan.sample_prefix:
                label = "point %d (%s, %s)" % (
                    e.index, logreplay.flag_names(e.flags), plan.cls[e.index])
            md, j = chk.static(label, "prefix", mv[0:mb], mv[mb:], x + 1,
                               True)
            if e.index in plan.sample_prefix:
                chk.target(label, img, md, j)
    del mv
    return img


def check_final(img, data_path, size, res):
    """The end of the log is the logged device."""
    data = read_dev(data_path, size)
    if bytes(img) != data:
        first = next(i for i in range(0, size, SECT)
                     if img[i:i + SECT] != data[i:i + SECT])
        res.fail("final", "in-memory replay of the whole log differs from "
                 "the logged device, first at sector %d (overlapping writes "
                 "in flight at once land in an order the log cannot show)"
                 % (first // SECT))


def main(argv):
    A = dict(a.split("=", 1) for a in argv)
    rs, length = int(A["rs"]), int(A["len"])
    res = Results(A["results"])
    log = logreplay.Log(A["log"])
    E = log.entries
    with open(A["writes"]) as f:
        writes = json.load(f)["writes"]
    mark_at = {e.mark: e.index for e in E if e.mark is not None}
    ack_idx = [mark_at.get("w%03d" % w["i"]) if w["acked"] else None
               for w in writes]
    model = Model(writes, ack_idx, read_dev(A["orig"], length * SECT), rs,
                  length, int(A["nr"]))
    plan = Plan(E, A)
    plan.describe(E)
    chk = Checker(A, res, model)
    t_start = time.monotonic()
    size = int(A["data_sect"]) * SECT
    img = replay(log, plan, chk, size)
    check_final(img, A["data"], size, res)
    res.finish(len(plan.points))
    say("replay checks: %.0f s" % (time.monotonic() - t_start))
    return 0
