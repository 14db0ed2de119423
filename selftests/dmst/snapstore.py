# SPDX-License-Identifier: GPL-2.0
"""A model of dm-snapshot's persistent exception store (Linux 6.1,
drivers/md/dm-snap-persistent.c), written apart from tools/snapstore.c, and
the checks of `dmstream exceptions` against it (test_fuzz_cow_01).

The format: chunk 0 is the header (le32 magic "SnAp" 0x70416e53, valid,
version 1, chunk size in sectors); area i's metadata chunk is chunk
1 + i * (epa + 1), epa = chunk bytes / 16, holding (le64 old_chunk, le64
new_chunk) pairs, followed by the epa data chunks it describes. The list
ends at the first new_chunk 0 (the kernel zeroes the next area before it
commits a full one).

The rules the tool must apply (snapstore.h): a magic of 0 is a fresh store
(nothing to read); any other magic than "SnAp", a chunk size that is not a
power of two or above INT_MAX >> 9, a version other than 1, a valid field
other than 1, a new chunk past the device, on the header or a metadata chunk
or used twice, an old chunk past the origin (when known), a device that
ends before the list does: refused.

Command lines (PYTHONPATH=selftests python3 -B -m dmst.snapstore ...):

  valid TOOL DIR [--origin DEV:SECTORS]
      valid stores of several chunk sizes and exception counts (0, 1, a full
      area, two full areas and the device ending after the next area's
      chunk, several areas), each checked
      against the tool's --json; prints KTAP-ready '#' lines and a totals line
  fuzz TOOL DIR --seed S --count N [--first F] [--origin DEV:SECTORS ...]
      N seeded mutations of valid stores (header fields, pairs, truncation),
      each run through the tool: exit 0 or 3 only; the verdict and, on exit
      0, the counts and changed chunks equal the model's
  kernel JSON --chunk SECTORS --chunks LIST --status 'dmsetup status line'
      a store the kernel wrote: the tool's JSON lists exactly LIST (comma-
      separated origin chunks) and its exception count is the status line's
      allocated minus metadata sectors, in chunks
"""

import argparse
import json
import os
import random
import struct
import subprocess
import sys

MAGIC = 0x70416E53
VERSION = 1
PAIR = 16
MAX_CHUNK = 0x7FFFFFFF >> 9


class Refused(Exception):
    pass


def epa(chunk_sectors):
    return chunk_sectors * 512 // PAIR


def area_chunk(chunk_sectors, i):
    return 1 + i * (epa(chunk_sectors) + 1)


def is_metadata(chunk_sectors, c):
    return c == 0 or (c - 1) % (epa(chunk_sectors) + 1) == 0


def allocate(olds, chunk_sectors):
    """The kernel's allocation: next_free from 2, metadata chunks skipped
    (persistent_prepare_exception(), skip_metadata())."""
    pairs, nf = [], 2
    for o in olds:
        pairs.append((o, nf))
        nf += 1
        if (nf - 1) % (epa(chunk_sectors) + 1) == 0:
            nf += 1
    return pairs


def write_store(path, pairs, chunk_sectors, cow_bytes=None, header=None):
    """A sparse image: the header, then the areas holding @pairs in order
    (the next area after the last full one zeroed, as the kernel leaves it).
    @header: (magic, valid, version, chunk) to write instead of the real one.
    Returns the image's size."""
    cb = chunk_sectors * 512
    e = epa(chunk_sectors)
    nareas = len(pairs) // e + 1
    need = max([area_chunk(chunk_sectors, nareas - 1) + 1] +
               [n + 1 for _, n in pairs if n < 1 << 32])
    size = cow_bytes if cow_bytes is not None else need * cb
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(struct.pack("<4I", *(header or (MAGIC, 1, VERSION, chunk_sectors))))
        for a in range(nareas):
            part = pairs[a * e:(a + 1) * e]
            if not part:
                continue
            f.seek(area_chunk(chunk_sectors, a) * cb)
            f.write(b"".join(struct.pack("<QQ", o, n) for o, n in part))
        f.truncate(size)
    return size


class Store:
    """A parse: fresh, chunk_sectors, areas, exceptions, olds (in order)."""

    def __init__(self):
        self.fresh = False
        self.chunk_sectors = 0
        self.areas = 0
        self.olds = []


def parse(f, origin_sectors=0, lbs=512):
    """The model's reading of the device or image open as @f (only the
    header and the metadata chunks are read)."""
    st = Store()
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    hdr = f.read(16)
    if len(hdr) < 16:
        raise Refused("too small for a header")
    magic, valid, version, chunk = struct.unpack_from("<4I", hdr, 0)
    if magic == 0:
        st.fresh = True
        return st
    if magic != MAGIC:
        raise Refused("magic")
    if chunk == 0 or chunk & (chunk - 1):
        raise Refused("chunk size not a power of two")
    if chunk > MAX_CHUNK:
        raise Refused("chunk size too large")
    if (chunk * 512) % lbs:
        raise Refused("chunk size below the block size")
    if version != VERSION:
        raise Refused("version")
    if valid != 1:
        raise Refused("invalid" if valid == 0 else "valid field")
    st.chunk_sectors = chunk
    cb = chunk * 512
    nchunks = size // cb
    ochunks = -(-origin_sectors // chunk) if origin_sectors else None
    seen = set()
    a = 0
    while True:
        loc = area_chunk(chunk, a)
        if loc >= nchunks:
            raise Refused("the device ends before the list")
        st.areas += 1
        f.seek(loc * cb)
        area = f.read(cb)
        for i in range(epa(chunk)):
            old, new = struct.unpack_from("<QQ", area, i * PAIR)
            if new == 0:
                return st
            if new >= nchunks:
                raise Refused("new chunk past the device")
            if is_metadata(chunk, new):
                raise Refused("new chunk on metadata")
            if new in seen:
                raise Refused("new chunk twice")
            seen.add(new)
            if ochunks is not None and old >= ochunks:
                raise Refused("old chunk past the origin")
            st.olds.append(old)
        a += 1


def summary(st, origin_bytes=0, region_bytes=0):
    """What the tool's JSON must say of a parse."""
    cb = st.chunk_sectors * 512 or 512
    rb = region_bytes or st.chunk_sectors * 512 or 4096
    changed = sorted(set(st.olds))
    nbytes = nch = regions = 0
    last = -1
    for c in changed:
        s, e = c * cb, (c + 1) * cb
        if origin_bytes:
            e = min(e, origin_bytes)
        if e <= s:
            continue
        nch += 1
        nbytes += e - s
        first, lst = max(s // rb, last + 1), (e - 1) // rb
        if first <= lst:
            regions += lst - first + 1
        last = max(last, lst)
    return {"fresh": st.fresh, "chunk_sectors": st.chunk_sectors, "areas": st.areas,
            "exceptions": len(st.olds), "changed_chunks": nch, "changed_bytes": nbytes,
            "regions": regions, "region_bytes": rb, "changed": changed}


def runs_to_set(runs):
    out = []
    for first, n in runs:
        out.extend(range(first, first + n))
    return out


def run_tool(tool, path, origin=None, region=None):
    cmd = [tool, "exceptions", path, "--json"]
    if origin:
        cmd += ["--origin", origin]
    if region:
        cmd += ["--region-size", str(region)]
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    return p.returncode, p.stdout, p.stderr


def compare(want, out):
    """The differences between the model's summary and the tool's JSON."""
    try:
        got = json.loads(out)
    except ValueError as e:
        return ["no JSON (%s): %r" % (e, out[:200])]
    diffs = []
    for k, v in want.items():
        g = runs_to_set(got.get("changed", [])) if k == "changed" else got.get(k)
        if g != v:
            if k == "changed":
                g, v = "%d chunks %s" % (len(g), g[:8]), "%d chunks %s" % (len(v), v[:8])
            diffs.append("%s: tool %s, model %s" % (k, g, v))
    return diffs


class Origin:
    def __init__(self, spec):
        self.dev, s = spec.rsplit(":", 1)
        self.sectors = int(s)


# --- one case -----------------------------------------------------------------

class Totals:
    KEYS = ("cases", "accepted", "refused", "bad-exit", "verdict-mismatches",
            "output-mismatches")

    def __init__(self):
        self.n = {k: 0 for k in self.KEYS}

    def line(self, what):
        return "# %s totals: %s" % (what, " ".join("%s=%d" % (k, self.n[k]) for k in self.KEYS))


def check_case(t, tool, label, path, origin=None, region=None, shown=[0]):
    """Runs the tool on @path and judges it against the model. Returns True
    when all agrees."""
    t.n["cases"] += 1
    osec = origin.sectors if origin else 0
    try:
        with open(path, "rb") as f:
            want = summary(parse(f, osec), osec * 512, region or 0)
        why = None
    except Refused as e:
        want, why = None, str(e)
    rc, out, errout = run_tool(tool, path, origin.dev if origin else None, region)
    ok = True

    def say(msg):
        if shown[0] < 30:
            print("# %s: %s" % (label, msg))
        shown[0] += 1

    if rc not in (0, 3):
        t.n["bad-exit"] += 1
        say("exit %d (model: %s): %s" % (rc, why or "accept", errout.strip()[:300]))
        return False
    t.n["accepted" if rc == 0 else "refused"] += 1
    if (rc == 0) != (want is not None):
        t.n["verdict-mismatches"] += 1
        say("tool exit %d (%s), model %s" % (rc, errout.strip()[:200], why or "accepts"))
        ok = False
    if rc == 0 and want is not None:
        d = compare(want, out)
        if d:
            t.n["output-mismatches"] += 1
            say("; ".join(d))
            ok = False
    if rc == 3 and not errout.strip():
        t.n["verdict-mismatches"] += 1
        say("refused without a reason on stderr")
        ok = False
    return ok


# --- valid stores ---------------------------------------------------------------

def valid_cases(rng, origin_sectors):
    """(label, chunk, pairs, cow_bytes or None, region or None)."""
    out = []
    for chunk in (1, 8, 16, 64, 128):
        e = epa(chunk)
        ochunks = -(-origin_sectors // chunk) if origin_sectors else 1 << 20
        for n, how in ((0, "empty"), (1, "one"), (e, "a full area"),
                       (2 * e, "two full areas, device ends after the next"),
                       (2 * e + e // 3 + 1, "several areas")):
            olds = rng.sample(range(ochunks), min(n, ochunks)) if n <= ochunks else \
                [rng.randrange(ochunks) for _ in range(n)]
            pairs = allocate(olds, chunk)
            cow = None
            if how.endswith("after the next"):
                # The device ends right after the (zeroed) next area's chunk.
                cow = (area_chunk(chunk, 2) + 1) * chunk * 512
            region = rng.choice([None, 512, 4096, 65536, 3 * 512])
            out.append(("chunk %d, %s (%d)" % (chunk, how, n), chunk, pairs, cow, region))
    return out


def cmd_valid(a):
    t = Totals()
    rng = random.Random(a.seed)
    origin = Origin(a.origin) if a.origin else None
    bad = 0
    for i, (label, chunk, pairs, cow, region) in enumerate(valid_cases(
            rng, origin.sectors if origin else 0)):
        path = os.path.join(a.dir, "valid-%d.img" % i)
        write_store(path, pairs, chunk, cow)
        if not check_case(t, a.tool, label, path, origin, region):
            bad += 1
        with open(path, "rb") as f:
            st = parse(f)
        if len(st.olds) != len(pairs) and not bad:
            print("# %s: the model reads %d, not %d" % (label, len(st.olds), len(pairs)))
            bad += 1
        os.unlink(path)
    print(t.line("valid"))
    return 1 if bad else 0


# --- mutations ------------------------------------------------------------------

def u32(rng):
    return rng.choice([0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, rng.getrandbits(32)])


def mutate(rng, path, origin_sectors):
    """Writes a mutated store to @path; returns its label and a region size."""
    chunk = rng.choice([1, 2, 8, 16, 64])
    e = epa(chunk)
    ochunks = -(-origin_sectors // chunk) if origin_sectors else 4096
    n = rng.choice([0, 1, 3, e - 1, e, e + 1, 2 * e, 2 * e + 5])
    pairs = allocate([rng.randrange(ochunks) for _ in range(n)], chunk)
    header = [MAGIC, 1, VERSION, chunk]
    # The unmutated layout's size: a new chunk mutated past it is past the end.
    cow = (max([area_chunk(chunk, n // e)] + [nw for _, nw in pairs]) + 1) * chunk * 512
    assert all(nw < 1 << 32 for _, nw in pairs)
    kinds = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        # "none" (no mutation in this round): valid stores of random shapes too.
        k = rng.choice(["none", "none", "none", "magic", "valid", "version", "chunk", "chunk",
                        "meta-new", "past-new", "dup-new", "zero-new", "old-past", "old-huge",
                        "dup-old", "trunc", "trunc", "flip", "end-full"])
        kinds.append(k)
        if k == "magic":
            header[0] = rng.choice([0, MAGIC ^ (1 << rng.randrange(32)), u32(rng),
                                    0x536E4170])
        elif k == "valid":
            header[1] = rng.choice([0, 2, u32(rng)])
        elif k == "version":
            header[2] = rng.choice([0, 2, u32(rng)])
        elif k == "chunk":
            header[3] = rng.choice([0, 3, 24, chunk * 2, max(1, chunk // 2), 1 << 21, 1 << 22,
                                    1 << 31, u32(rng)])
        elif pairs and k == "meta-new":
            i = rng.randrange(len(pairs))
            pairs[i] = (pairs[i][0], area_chunk(chunk, rng.randrange(3)))
        elif pairs and k == "past-new":
            i = rng.randrange(len(pairs))
            last = max((nw for _, nw in pairs if nw < 1 << 32), default=1)
            pairs[i] = (pairs[i][0], rng.choice([last + 1, last + 100, 1 << 40, (1 << 64) - 1]))
        elif len(pairs) > 1 and k == "dup-new":
            i, j = rng.sample(range(len(pairs)), 2)
            pairs[i] = (pairs[i][0], pairs[j][1])
        elif pairs and k == "zero-new":
            i = rng.randrange(len(pairs))
            pairs[i] = (pairs[i][0], 0)
        elif pairs and k == "old-past":
            i = rng.randrange(len(pairs))
            pairs[i] = (rng.choice([ochunks, ochunks + 1, ochunks - 1]), pairs[i][1])
        elif pairs and k == "old-huge":
            i = rng.randrange(len(pairs))
            pairs[i] = (rng.choice([1 << 40, (1 << 64) - 1, 1 << 63]), pairs[i][1])
        elif len(pairs) > 1 and k == "dup-old":
            i, j = rng.sample(range(len(pairs)), 2)
            pairs[i] = (pairs[j][0], pairs[i][1])
        elif k == "trunc":
            full = cow
            cow = rng.choice([0, 8, 15, 16, 511, 512, chunk * 512, chunk * 512 + 512,
                              rng.randrange(full + 1), full - 512, full + 512,
                              area_chunk(chunk, 1) * chunk * 512,
                              area_chunk(chunk, 1) * chunk * 512 + 512])
            cow = max(0, cow)
        elif k == "end-full":
            # Full areas only, the device ending where the next area starts.
            pairs = pairs[:e] if len(pairs) >= e else pairs
            cow = area_chunk(chunk, len(pairs) // e) * chunk * 512
    write_store(path, pairs, chunk, cow, tuple(h & 0xFFFFFFFF for h in header))
    if "flip" in kinds:
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            for _ in range(rng.randint(1, 8)):
                where = rng.choice([0, chunk * 512]) + rng.randrange(min(chunk * 512, 64))
                if where < size:
                    f.seek(where)
                    b = f.read(1)
                    f.seek(where)
                    f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
    region = rng.choice([None, None, 512, 4096, 1536, 1 << 20])
    return "chunk %d, %d pairs, %s" % (chunk, len(pairs), "+".join(kinds)), region


def cmd_fuzz(a):
    t = Totals()
    origins = [Origin(o) for o in a.origin or []]
    for n in range(a.first, a.first + a.count):
        rng = random.Random("%s:cow:%d" % (a.seed, n))
        origin = rng.choice(origins + [None]) if origins else None
        path = os.path.join(a.dir, "cow-%d.img" % n)
        label, region = mutate(rng, path, origin.sectors if origin else 0)
        check_case(t, a.tool, "case %d (%s%s)" % (n, label, ", origin" if origin else ""),
                   path, origin, region)
        if a.keep:
            continue
        os.unlink(path)
    print(t.line("fuzz"))
    return 0


# --- the kernel's store ---------------------------------------------------------

def cmd_kernel(a):
    with open(a.json) as f:
        got = json.load(f)
    want = sorted(int(x) for x in a.chunks.split(",") if x)
    changed = runs_to_set(got.get("changed", []))
    bad = 0
    if changed != want:
        print("# chunks listed %s, written %s" % (changed, want))
        bad += 1
    if got.get("chunk_sectors") != a.chunk:
        print("# chunk size %s, table %d" % (got.get("chunk_sectors"), a.chunk))
        bad += 1
    # "<start> <len> snapshot <allocated>/<total> <metadata>"
    w = a.status.split()
    alloc, _ = w[3].split("/")
    exc = (int(alloc) - int(w[4])) // a.chunk
    if got.get("exceptions") != exc:
        print("# %s exceptions, dmsetup status says %d (%s)" % (got.get("exceptions"), exc,
                                                               a.status))
        bad += 1
    print("# kernel store: %d exceptions, changed chunk runs [first, count]: %s"
          % (got.get("exceptions", -1), got.get("changed")))
    return 1 if bad else 0


def main(argv):
    p = argparse.ArgumentParser(prog="dmst.snapstore")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("valid")
    s.add_argument("tool")
    s.add_argument("dir")
    s.add_argument("--origin")
    s.add_argument("--seed", default="0")
    s = sub.add_parser("fuzz")
    s.add_argument("tool")
    s.add_argument("dir")
    s.add_argument("--seed", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--first", type=int, default=1)
    s.add_argument("--origin", action="append")
    s.add_argument("--keep", action="store_true", help="keep the images")
    s = sub.add_parser("kernel")
    s.add_argument("json")
    s.add_argument("--chunk", type=int, required=True)
    s.add_argument("--chunks", required=True)
    s.add_argument("--status", required=True)
    a = p.parse_args(argv)
    return {"valid": cmd_valid, "fuzz": cmd_fuzz, "kernel": cmd_kernel}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
