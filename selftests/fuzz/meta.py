# SPDX-License-Identifier: GPL-2.0
"""Corrupted metadata images: mutations of images the kernel wrote, a model
of how the constructor must treat each (admin guide, Metadata), and a judge
comparing the kernel, the model and `dmstream check`.

The model, for a table of geometry (region size, length, origin size,
destination size) and a metadata device of a given size:

  1. a device smaller than 1 + 2 * ceil(nr_regions / 32576) blocks is refused;
  2. a superblock of 4096 zero bytes is formatted: accepted, 0 copied;
  3. the superblock checks of the rst's table, in its order;
  4. for every bitmap block, the valid slot (checksum, magic, block number)
     with the highest transaction id not above the superblock's is used, the
     lower slot on a tie; a block without one is refused;
  5. no bit past the last region; the bits set equal the superblock's count;
  6. accepted: the status shows that many copied regions.

The kernel's refusal depends on the table exactly when the superblock is
self-consistent (some table could load it) but records another region size,
target length, origin size or destination size than the table: such images
are "table-dependent". `dmstream check` sees no table, so for every image it
must say what the model says for the table the superblock records (`tool
model`); for all other images that is the kernel's verdict.
"""

import os

from dmst.ondisk import (BITMAP_CSUM_XOR as BM_XOR, BITMAP_HDR_SIZE as HDR,
                         BITMAP_MAGIC as BMAGIC, BITS_PER_BLOCK, BLOCK_SIZE as BLOCK,
                         MAGIC, MAX_DEVICE_SECTORS, MAX_REGIONS, SB_CSUM_XOR as SB_XOR,
                         SB_FIELDS, SLOT_FIELDS, bitmap_location as slot_loc,
                         block as blk, block_csum, get, metadata_blocks as needed_blocks,
                         SB_FLAGS_KNOWN, identity_problem, nr_bitmap_blocks, put,
                         slot_check)

from .util import U64_MAX, KernelLog, Totals, case_rng, read_tsv

E_SMALL = "Metadata device too small (the log line above says how many sectors are needed)"
E_MAGIC = "Metadata device holds something else: bad superblock magic"
E_CSUM = "Metadata superblock checksum mismatch"
E_BLOCKNR = "Metadata superblock has a wrong block number"
E_VERSION = "Unsupported metadata version"
E_BSIZE = "Unsupported metadata block size"
E_GEO = "Metadata was formatted for another "
E_INCONS = "Metadata superblock geometry is inconsistent"
E_RANGE = "Metadata superblock copied count is out of range"
E_TID = "Metadata superblock transaction id is out of range"
E_FLAGS = "Metadata superblock has flags this kernel module does not know"
E_FAILED = "Metadata superblock says the origin failed but not that it is stale"
E_CORRUPT = "Metadata bitmap block corrupt (checksum mismatch in both slots)"
E_PAST = "Metadata bitmap has bits set past the last region"
E_COUNT = "Metadata bitmap disagrees with the superblock's copied count"


def sb_get(buf, name):
    """Superblock field @name of an image (block 0 first)."""
    return get(buf, *SB_FIELDS[name])


def sb_put(buf, name, value):
    off, size = SB_FIELDS[name]
    put(buf, off, size, value)


class Verdict:
    def __init__(self, ok, msg="", copied=None):
        self.ok, self.msg, self.copied = ok, msg, copied

    def __repr__(self):
        return ("accept (%s copied)" % self.copied) if self.ok else "refuse: " + self.msg


def slot_info(img, i, s):
    """(valid, transaction id) of bitmap block @i, slot @s."""
    si = slot_check(blk(img, slot_loc(i, s)), slot_loc(i, s))
    return si["valid"], si["transaction_id"]


def chosen_slot(img, i, tid):
    """The slot the rst says bitmap block @i uses, or None."""
    ids = []
    for s in (0, 1):
        valid, t = slot_info(img, i, s)
        ids.append(t if valid and t <= tid else -1)
    if ids[0] < 0 and ids[1] < 0:
        return None
    return 1 if ids[1] > ids[0] else 0


def slot_bits(img, i, s):
    """The bits of a slot as one integer (bit n = region i * 32576 + n)."""
    return int.from_bytes(blk(img, slot_loc(i, s))[HDR:], "little")


def model(img, dev_sectors, geo):
    """What loading @img with a table of geometry @geo must do."""
    rs, length, osize, dsize = geo
    nr = -(-length // rs)
    nb = nr_bitmap_blocks(nr)
    if dev_sectors < 8 * needed_blocks(nr):
        return Verdict(False, E_SMALL)
    sb = blk(img, 0)
    if not any(sb):
        return Verdict(True, "formatted", 0)
    f = {k: get(sb, o, n) for k, (o, n) in SB_FIELDS.items()}
    if f["magic"] != MAGIC:
        return Verdict(False, E_MAGIC)
    if f["csum"] != block_csum(sb, SB_XOR):
        return Verdict(False, E_CSUM)
    if f["blocknr"] != 0:
        return Verdict(False, E_BLOCKNR)
    if f["version"] != 1:
        return Verdict(False, E_VERSION)
    if f["block_size"] != BLOCK:
        return Verdict(False, E_BSIZE)
    for key, val, what in (("region_size", rs, "region size"),
                           ("target_size", length, "target length"),
                           ("origin_size", osize, "origin size"),
                           ("dest_size", dsize, "destination size")):
        if f[key] != val:
            return Verdict(False, E_GEO + what)
    if f["nr_regions"] != nr or f["nr_bitmap_blocks"] != nb:
        return Verdict(False, E_INCONS)
    if f["nr_copied"] > nr:
        return Verdict(False, E_RANGE)
    if f["transaction_id"] >= 1 << 63:
        return Verdict(False, E_TID)
    if f["flags"] & ~SB_FLAGS_KNOWN:
        return Verdict(False, E_FLAGS)
    if f["flags"] & 0x6 == 0x4:
        return Verdict(False, E_FAILED)
    why = identity_problem(sb, osize)
    if why:
        return Verdict(False, why)
    chosen = []
    for i in range(nb):
        s = chosen_slot(img, i, f["transaction_id"])
        if s is None:
            return Verdict(False, E_CORRUPT)
        chosen.append(s)
    total = 0
    for i, s in enumerate(chosen):
        bits = slot_bits(img, i, s)
        here = min(BITS_PER_BLOCK, nr - i * BITS_PER_BLOCK)
        if bits >> here:
            return Verdict(False, E_PAST)
        total += bin(bits).count("1")
    if total != f["nr_copied"]:
        return Verdict(False, E_COUNT)
    return Verdict(True, "", total)


def sb_geometry(img):
    """The geometry the superblock records, if some table could have it."""
    sb = blk(img, 0)
    rs, length = sb_get(sb, "region_size"), sb_get(sb, "target_size")
    osize, dsize = sb_get(sb, "origin_size"), sb_get(sb, "dest_size")
    if not 8 <= rs <= 2097152 or rs & (rs - 1) or not length:
        return None
    if -(-length // rs) > MAX_REGIONS or osize < length or dsize < length:
        return None
    # No block device is larger (its size in bytes is a loff_t).
    if max(osize, dsize) > MAX_DEVICE_SECTORS:
        return None
    return rs, length, osize, dsize


def tool_model(img, dev_sectors, geo):
    """What `dmstream check` must say: the model for the table the
    superblock records (the table's own when the superblock is blank,
    unreadable or records an impossible geometry)."""
    if dev_sectors < BLOCK // 512:
        return Verdict(False, "device smaller than a superblock")
    sb = blk(img, 0)
    if not any(sb):
        return Verdict(True, "blank", 0)
    g = sb_geometry(img)
    if g is None or sb_get(sb, "magic") != MAGIC:
        v = model(img, dev_sectors, geo)
        if v.ok or v.msg.startswith(E_GEO):
            return Verdict(False, "impossible geometry in the superblock")
        return v
    return model(img, dev_sectors, g)


# --- mutations ------------------------------------------------------------------

def fix_sb(img):
    sb = blk(img, 0)
    sb_put(img, "csum", block_csum(sb, SB_XOR))


def fix_slot(img, i, s):
    b = slot_loc(i, s)
    put(img, b * BLOCK, 4, block_csum(blk(img, b), BM_XOR))


class Ctx:
    def __init__(self, rng, img, geo, others):
        self.rng, self.img, self.geo, self.others = rng, img, geo, others
        rs, length = geo[0], geo[1]
        self.nr = -(-length // rs)
        self.nb = nr_bitmap_blocks(self.nr)
        self.variant = "full"

    def tid(self):
        return sb_get(self.img, "transaction_id")

    def pick_slot(self):
        return self.rng.randrange(self.nb), self.rng.randrange(2)

    def used_slot(self, i):
        s = chosen_slot(self.img, i, self.tid())
        return self.rng.randrange(2) if s is None else s


def _values(rng, cur, size, extra=()):
    top = (1 << (8 * size)) - 1
    return rng.choice([0, 1, cur + 1, cur - 1 if cur else top, cur * 2, cur // 2, top,
                       1 << (8 * size - 1), rng.getrandbits(8 * size), cur ^ (1 << rng.randrange(8 * size))]
                      + list(extra))


def m_sb_field(c):
    r = c.rng
    name = r.choice([k for k in SB_FIELDS if k != "csum"])
    off, size = SB_FIELDS[name]
    cur = get(c.img, off, size)
    extra = {"version": [2, 0], "block_size": [512, 8192, 4095],
             "region_size": [c.geo[0] * 2, c.geo[0] // 2, 100],
             "transaction_id": [(1 << 63) + cur, 1 << 63, U64_MAX],
             "nr_copied": [c.nr, c.nr + 1],
             "nr_regions": [c.nr + 1, c.nr - 1, BITS_PER_BLOCK, BITS_PER_BLOCK + 1],
             "nr_bitmap_blocks": [c.nb + 1, c.nb - 1],
             "flags": [1, 2, 4, 6, 8, 0x80000000]}.get(name, [])
    val = _values(r, cur, size, extra)
    put(c.img, off, size, val)
    fixed = r.random() < 0.8
    if fixed:
        fix_sb(c.img)
    return "sb.%s=%d%s" % (name, val % (1 << (8 * size)), "" if fixed else " (csum stale)")


def m_sb_geometry(c):
    """A self-consistent superblock for another table."""
    r = c.rng
    rs, length = sb_get(c.img, "region_size"), sb_get(c.img, "target_size")
    what = r.choice(["region_size", "target_size", "origin_size", "dest_size"])
    if what == "region_size":
        rs = r.choice([x for x in (8, 16, 128, 1024, 2097152) if x != rs])
        sb_put(c.img, "region_size", rs)
    elif what == "target_size":
        length = r.choice([length - 1, length + 1, length // 2 or 1, 8])
        sb_put(c.img, "target_size", length)
    else:
        off = SB_FIELDS[what][0]
        put(c.img, off, 8, get(c.img, off, 8) + r.choice([1, 8, -1, -get(c.img, off, 8) + 1]))
    nr = -(-length // rs) if rs else 0
    if r.random() < 0.9:
        sb_put(c.img, "nr_regions", nr)
        sb_put(c.img, "nr_bitmap_blocks", nr_bitmap_blocks(nr))
        if sb_get(c.img, "nr_copied") > nr:
            sb_put(c.img, "nr_copied", 0)
    fix_sb(c.img)
    return "sb geometry: %s" % what


def m_sb_bytes(c):
    r = c.rng
    offs = [r.randrange(96) if r.random() < 0.7 else r.randrange(96, BLOCK)
            for _ in range(r.randint(1, 4))]
    for o in offs:
        c.img[o] ^= 1 << r.randrange(8)
    fixed = r.random() < 0.5
    if fixed:
        fix_sb(c.img)
    return "sb bits flipped at %s%s" % (offs, "" if fixed else " (csum stale)")


def m_sb_fill(c):
    v = c.rng.choice([0, 0, 0xFF, 0xA5])
    c.img[0:BLOCK] = bytes([v]) * BLOCK
    return "sb filled with 0x%02x" % v


def m_sb_csum(c):
    v = c.rng.choice([sb_get(c.img, "csum") ^ 1, 0, 0xFFFFFFFF, block_csum(blk(c.img, 0), 0)])
    sb_put(c.img, "csum", v)
    return "sb.csum=0x%08x" % v


def m_sb_tid(c):
    r = c.rng
    t = c.tid()
    val = r.choice([t - 1 if t else 0, t + 1, 0, 1 << 63, (1 << 63) + t, U64_MAX])
    sb_put(c.img, "transaction_id", val)
    fix_sb(c.img)
    return "sb.transaction_id %d -> %d" % (t, val)


def m_slot_corrupt(c):
    r = c.rng
    i, s = c.pick_slot()
    if r.random() < 0.5:
        s = c.used_slot(i)
    slots = [s] if r.random() < 0.7 else [0, 1]
    for s in slots:
        o = slot_loc(i, s) * BLOCK + r.randrange(BLOCK)
        c.img[o] ^= 1 << r.randrange(8)
    return "block %d slot(s) %s: a bit flipped (csum stale)" % (i, slots)


def m_slot_field(c):
    r = c.rng
    i, s = c.pick_slot()
    if r.random() < 0.6:
        s = c.used_slot(i)
    name = r.choice(["magic", "blocknr", "transaction_id", "transaction_id"])
    off, size = SLOT_FIELDS[name]
    base = slot_loc(i, s) * BLOCK
    cur = get(c.img, base + off, size)
    t = c.tid()
    extra = {"transaction_id": [t + 1, t, t - 1 if t else 0, 0, 1 << 63, (1 << 63) + 1,
                                (1 << 63) + t, U64_MAX, get(c.img, slot_loc(i, 1 - s) * BLOCK + SLOT_FIELDS["transaction_id"][0], 8)],
             "blocknr": [slot_loc(i, 1 - s), 0, slot_loc(i + 1, s)],
             "magic": [MAGIC & 0xFFFFFFFF, BMAGIC ^ 0x100]}[name]
    val = r.choice(extra) if r.random() < 0.7 else _values(r, cur, size)
    put(c.img, base + off, size, val)
    fixed = r.random() < 0.85
    if fixed:
        fix_slot(c.img, i, s)
    return "block %d slot %d %s=%d%s" % (i, s, name, val % (1 << (8 * size)),
                                         "" if fixed else " (csum stale)")


def m_slot_bits(c):
    """Flip bits of a slot, the checksum recomputed; maybe fix the count."""
    r = c.rng
    i = r.randrange(c.nb)
    s = c.used_slot(i) if r.random() < 0.8 else r.randrange(2)
    here = min(BITS_PER_BLOCK, c.nr - i * BITS_PER_BLOCK)
    base = slot_loc(i, s) * BLOCK + HDR
    past = r.random() < 0.3 and here < BITS_PER_BLOCK
    flips = []
    for _ in range(r.randint(1, 5)):
        n = r.randrange(here, BITS_PER_BLOCK) if past else r.randrange(here)
        c.img[base + n // 8] ^= 1 << (n % 8)
        flips.append(n)
    fix_slot(c.img, i, s)
    recount = r.random() < 0.5
    if recount:
        tot = 0
        for j in range(c.nb):
            u = chosen_slot(c.img, j, c.tid())
            if u is not None:
                h = min(BITS_PER_BLOCK, c.nr - j * BITS_PER_BLOCK)
                tot += bin(slot_bits(c.img, j, u) & ((1 << h) - 1)).count("1")
        sb_put(c.img, "nr_copied", tot)
        fix_sb(c.img)
    return "block %d slot %d bits %s flipped%s%s" % (i, s, flips[:3], " (past the end)" if past
                                                     else "", ", sb count fixed" if recount else "")


def m_slot_swap(c):
    r = c.rng
    i = r.randrange(c.nb)
    a, b = slot_loc(i, 0) * BLOCK, slot_loc(i, 1) * BLOCK
    mode = r.choice(["swap", "copy01", "copy10", "zero"])
    s0, s1 = bytes(c.img[a:a + BLOCK]), bytes(c.img[b:b + BLOCK])
    if mode == "swap":
        c.img[a:a + BLOCK], c.img[b:b + BLOCK] = s1, s0
    elif mode == "copy01":
        c.img[b:b + BLOCK] = s0
    elif mode == "copy10":
        c.img[a:a + BLOCK] = s1
    else:
        z = r.randrange(2)
        c.img[(a, b)[z]:(a, b)[z] + BLOCK] = bytes(BLOCK)
        return "block %d slot %d zeroed" % (i, z)
    fixed = r.random() < 0.7
    if fixed:
        for s in (0, 1):
            put(c.img, slot_loc(i, s) * BLOCK + SLOT_FIELDS["blocknr"][0], 8, slot_loc(i, s))
            fix_slot(c.img, i, s)
    return "block %d slots %s%s" % (i, mode, ", block numbers fixed" if fixed else "")


def m_truncate(c):
    c.variant = c.rng.choice(["t1", "t8", "tblk", "tsec"])
    return "device truncated (%s)" % c.variant


def m_other_image(c):
    if not c.others:
        return m_sb_field(c)
    name, data = c.rng.choice(c.others)
    c.img[:] = data.ljust(len(c.img), b"\0")
    return "image of geometry %s" % name


MUTATIONS = [
    (m_sb_field, 14), (m_sb_geometry, 5), (m_sb_bytes, 6), (m_sb_fill, 2), (m_sb_csum, 3),
    (m_sb_tid, 5), (m_slot_corrupt, 10), (m_slot_field, 14), (m_slot_bits, 12),
    (m_slot_swap, 6), (m_truncate, 3), (m_other_image, 2),
]


def generate(seed, n, geos, bases):
    """Case @n: (geometry id, base name, variant, description, image bytes)."""
    rng = case_rng(seed, "meta", n)
    gid = rng.choice(sorted(geos))
    g = geos[gid]
    name, data = rng.choice(bases[gid])
    others = [("%s/%s" % (og, bn), d) for og in bases if og != gid for bn, d in bases[og]]
    size = max([len(data), g["need_blocks"] * BLOCK] + [len(d) for _, d in others])
    c = Ctx(rng, bytearray(data.ljust(size, b"\0")), g["geo"], others)
    k = rng.choice([1, 1, 1, 1, 1, 1, 2, 2, 2, 3])
    funcs, weights = zip(*MUTATIONS)
    desc = [f(c) for f in rng.choices(funcs, weights, k=k)]
    img = bytes(c.img)
    return gid, name, c.variant, "; ".join(desc), img


def load_geos(path):
    """geos.tsv: gid rs length origin dest full_sectors t1 t8 tblk tsec"""
    geos = {}
    for w in read_tsv(path):
        rs, length, osize, dsize = (int(x) for x in w[1:5])
        nr = -(-length // rs)
        geos[w[0]] = {"geo": (rs, length, osize, dsize), "need_blocks": needed_blocks(nr),
                      "sectors": {"full": int(w[5]), "t1": int(w[6]), "t8": int(w[7]),
                                  "tblk": int(w[8]), "tsec": int(w[9])}}
    return geos


def load_bases(path):
    """bases.tsv: gid name image-file"""
    bases = {}
    for gid, name, f in read_tsv(path):
        with open(f, "rb") as fh:
            bases.setdefault(gid, []).append((name, fh.read()))
    return bases


_ESC = ["\\0" if b == 0 else "\\x%02x" % b for b in range(256)]


def gen_main(args):
    """Per case: imgNNNNN.bin, what the metadata device holds (as long as the
    device, sparse), for dmstream check and the judge; imgNNNNN.esc, the
    blocks the table's geometry uses in printf %b escapes, for fz_put."""
    geos, bases = load_geos(args.geos), load_bases(args.bases)
    os.makedirs(args.dir, exist_ok=True)
    with open(args.out, "w") as f:
        for n in range(args.first, args.first + args.count):
            gid, base, variant, desc, img = generate(args.seed, n, geos, bases)
            g = geos[gid]
            path = os.path.join(args.dir, "img%05d.bin" % n)
            size = g["sectors"][variant] * 512
            with open(path, "wb") as fh:
                fh.write(img[:size].rstrip(b"\0"))
                fh.truncate(size)
            with open(path[:-4] + ".esc", "w") as fh:
                fh.write("".join(map(_ESC.__getitem__, img[:g["need_blocks"] * BLOCK])))
                fh.write("\n")
            f.write("%d\t%s\t%s\t%s\t%s\t%s\n" % (n, gid, base, variant, path, desc))


# --- judging ----------------------------------------------------------------------

def likely_cause(img, geo):
    """A guess at why the kernel or the tool left the model, for the report."""
    sb = blk(img, 0)
    if sb_get(sb, "transaction_id") >= 1 << 63:
        return "superblock transaction id >= 2^63: compared as a signed number"
    rs, length = geo[0], geo[1]
    nb = nr_bitmap_blocks(-(-length // rs))
    for i in range(min(nb, sb_get(sb, "nr_bitmap_blocks"))):
        for s in (0, 1):
            if slot_info(img, i, s)[1] >= 1 << 63:
                return "slot transaction id >= 2^63: masked to 63 bits"
    return "other"


def judge_main(args):
    geos = load_geos(args.geos)
    cases = read_tsv(args.cases)
    results = {int(r[0]): r for r in read_tsv(args.results)}
    tools = {int(r[0]): r for r in read_tsv(args.tool)}
    klog = KernelLog(args.kmsg, "meta")
    tot = Totals("cases", "kernel-accepted", "kernel-refused", "table-dependent",
                 "kernel-model-mismatches", "kernel-tool-disagreements", "tool-model-mismatches",
                 "tool-failures", "oopses", "left", "not-run")
    reasons = {}
    causes = {}
    failed = 0
    for row in cases:
        n, gid, base, variant, path, desc = int(row[0]), *row[1:6]
        if n not in results or n not in tools:
            tot.add("not-run")
            continue
        tot.add("cases")
        _, rc, status, rm_rc, left = (results[n] + [""] * 5)[:5]
        _, tool_rc, tool_out = (tools[n] + [""] * 3)[:3]
        with open(path, "rb") as fh:
            img = fh.read()
        g = geos[gid]
        sectors = g["sectors"][variant]
        want = model(img, sectors, g["geo"])
        want_tool = tool_model(img, sectors, g["geo"])
        # The table decides: the geometry recorded, or the size a device
        # needs (for a blank device, only the table knows it).
        table_dep = not want.ok and want_tool.ok and (
            want.msg.startswith(E_GEO) or want.msg.startswith(E_SMALL))
        lines = klog.lines(n)
        serr = [l.split(" stream: ", 1)[1] for l in lines
                if "device-mapper: table:" in l and " stream: " in l]
        k_ok = rc == "0"
        tot.add("kernel-accepted" if k_ok else "kernel-refused")
        key = "accepted" if k_ok else (serr[0].split(" (-")[0] if serr else "no stream error")
        key = key.split(":")[0] if key.startswith("Metadata device too small") else key
        reasons[key] = reasons.get(key, 0) + 1
        problems = []
        # 1. kernel vs model
        if k_ok != want.ok:
            problems.append(("kernel-model-mismatches", "kernel %s, model %r" % (
                "accepted" if k_ok else "refused (%s)" % (serr or ["no stream error"])[0], want)))
        elif not k_ok and not (serr and serr[0].startswith(want.msg)):
            problems.append(("kernel-model-mismatches", "kernel refused with %s, model: '%s'"
                             % (serr or "no 'stream:' error", want.msg)))
        elif k_ok:
            f = status.split()
            copied = f[6].split("/")[0] if len(f) > 8 else "?"
            if copied != str(want.copied) or f[8] not in ("paused", "complete"):
                problems.append(("kernel-model-mismatches", "status '%s', model: %d copied"
                                 % (status, want.copied)))
            if rm_rc != "0":
                problems.append(("kernel-model-mismatches", "remove failed"))
        # 2. kernel vs tool, 3. tool vs model
        t_ok = tool_rc == "0"
        if tool_rc not in ("0", "3"):
            problems.append(("tool-failures", "dmstream check exited %s: %s" % (tool_rc, tool_out)))
        elif table_dep:
            tot.add("table-dependent")
            if not t_ok:
                problems.append(("tool-model-mismatches", "table-dependent image: tool refused "
                                 "(%s), model for the superblock's table: ok" % tool_out))
        else:
            if t_ok != k_ok:
                problems.append(("kernel-tool-disagreements", "kernel %s, dmstream check %s (%s)"
                                 % ("accepted" if k_ok else "refused", "ok" if t_ok else
                                    "errors", tool_out)))
            if t_ok != want_tool.ok:
                problems.append(("tool-model-mismatches", "dmstream check %s, model %r"
                                 % ("ok" if t_ok else "errors", want_tool)))
        if left != "0":
            problems.append(("left", "device left behind"))
        bad = klog.bad(n)
        if bad:
            tot.add("oopses")
            problems.append(("oopses", bad[0]))
        if problems:
            failed += 1
            for cat, p in problems:
                if cat != "oopses":
                    tot.add(cat)
            cause = likely_cause(img, g["geo"])
            causes[cause] = causes.get(cause, 0) + 1
            print("# MISMATCH meta case %d (seed %s, geometry %s, base %s, %s): %s" % (
                n, args.seed, gid, base, variant, desc))
            print("#   likely cause: %s" % cause)
            for cat, p in problems:
                print("#   %s: %s" % (cat, p))
    print("# kernel verdicts: " + ", ".join("%s %d" % (k, v) for k, v in sorted(reasons.items())))
    if causes:
        print("# mismatched images by likely cause: " +
              ", ".join("%s: %d" % (k, v) for k, v in sorted(causes.items())))
    for l in klog.bad_outside[:5]:
        print("# kernel log outside the cases: %s" % l)
    print("# meta totals: %s" % tot.line())
    return 1 if failed or klog.bad_outside or tot.n["not-run"] else 0
