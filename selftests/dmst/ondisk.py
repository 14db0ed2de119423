# SPDX-License-Identifier: GPL-2.0
"""The dm-stream on-disk metadata format, as dm-stream/stream-format.h
defines it (the header the kernel and tools/ share). The only copy of the
format in the selftests: tests, metaimg.py and the fuzz package import it,
and test_crash_01/test_tool_01 compare its decoder with `dmstream dump
--json` (dmst.crosscheck) so that the two cannot drift apart.

Layout, in 4096-byte blocks: block 0 the superblock, block 1 + 2 * i + s
bitmap block i, slot s. Checksums: CRC32C seeded ~0 over bytes 4..4095 of
the block, without the final inversion (the kernel's crc32c(~0, p, len)),
xor a per-block-type salt. All numbers little endian.

Two decoders:
  scan(img)         what tools/meta.c meta_scan() finds, without a table:
                    the shape of `dmstream dump --json`;
  decode(meta, geo) what the kernel loads for a table of geometry geo (the
                    slot rule of stream-format.h), or why it is torn.
"""

import struct

BLOCK_SIZE = 4096
BLOCK_SECTORS = BLOCK_SIZE >> 9
MAGIC = 0x4D525453544D44                # "DMTSTRM"
BITMAP_MAGIC = 0x504D4254               # "TBMP"
VERSION = 1
SB_CSUM_XOR = 0x5B3C9E17
BITMAP_CSUM_XOR = 0x2D81F4A6
SB_BLOCK = 0
BITMAP_HDR_SIZE = 24
BITS_PER_BLOCK = (BLOCK_SIZE - BITMAP_HDR_SIZE) * 8
MIN_REGION_SECTORS = 8
MAX_REGION_SECTORS = 2097152
MAX_REGIONS = 1 << 31
SB_FLAG_NEEDS_CHECK = 0x1
SB_FLAG_ORIGIN_STALE = 0x2
SB_FLAG_ORIGIN_FAILED = 0x4
SB_FLAGS_KNOWN = 0x7
INT64_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1
# No block device is larger: its size in bytes is a loff_t (tools/meta.c).
MAX_DEVICE_SECTORS = INT64_MAX >> 9

# struct stream_superblock_disk, in order: name, struct format.
SB_LAYOUT = (
    ("csum", "I"), ("flags", "I"), ("blocknr", "Q"), ("magic", "Q"),
    ("version", "I"), ("block_size", "I"), ("region_size", "I"),
    ("reserved0", "I"), ("target_size", "Q"), ("nr_regions", "Q"),
    ("origin_size", "Q"), ("dest_size", "Q"), ("nr_bitmap_blocks", "Q"),
    ("transaction_id", "Q"), ("nr_copied", "Q"),
)
# struct stream_bitmap_disk, the header before the bits.
SLOT_LAYOUT = (("csum", "I"), ("magic", "I"), ("blocknr", "Q"),
               ("transaction_id", "Q"))


def _offsets(layout):
    """name -> (offset, size) of a packed little-endian layout."""
    out, off = {}, 0
    for name, fmt in layout:
        size = struct.calcsize("<" + fmt)
        out[name] = (off, size)
        off += size
    return out


SB_STRUCT = struct.Struct("<" + "".join(f for _, f in SB_LAYOUT))
SLOT_STRUCT = struct.Struct("<" + "".join(f for _, f in SLOT_LAYOUT))
SB_FIELDS = _offsets(SB_LAYOUT)
SLOT_FIELDS = _offsets(SLOT_LAYOUT)
assert SB_STRUCT.size == 96 and SLOT_STRUCT.size == BITMAP_HDR_SIZE

# The identity record (struct stream_identity_disk) at byte IDENTITY_OFFSET
# of the superblock block; strings are NUL-padded "Ns" fields.
IDENTITY_OFFSET = 512
IDENTITY_MAGIC = 0x4E444953             # "SIDN"
NR_SAMPLES = 8
SAMPLE_SECTORS = 8
ID_OPT_MIRROR = 0x1
ID_OPT_NO_DISCARD_PASSDOWN = 0x2
ID_OPT_MERGE = 0x4
ID_OPT_ROLLBACK = 0x8
ID_OPT_COPY_ON_READ = 0x10
ID_OPT_SKIP_ZEROES = 0x20
MIN_MAX_INFLIGHT = 1
MAX_MAX_INFLIGHT = 1024
DEV_ID_LAYOUT = (
    ("size", "Q"), ("major", "I"), ("minor", "I"), ("dm_name", "128s"),
    ("dm_uuid", "136s"), ("wwn", "80s"), ("serial", "80s"),
    ("part_uuid", "40s"), ("fs_uuid", "40s"),
)
DEV_ID_STRUCT = struct.Struct("<" + "".join(f for _, f in DEV_ID_LAYOUT))
ID_HEAD_LAYOUT = (
    ("magic", "I"), ("options", "I"), ("created", "Q"), ("name", "128s"),
    ("uuid", "136s"), ("rate_kib", "I"), ("max_inflight", "I"),
    ("sample_checked", "I"), ("sample_wanted", "I"),
    ("sample_sector", "%dQ" % NR_SAMPLES), ("sample_csum", "%dI" % NR_SAMPLES),
)
ID_HEAD_STRUCT = struct.Struct("<" + "".join(f for _, f in ID_HEAD_LAYOUT))
ID_TABLE_LEN = 1024
# After origin_table: dmstream merge's fingerprint of the exception store,
# then the table's min_rate and max_rate (a record written before they
# existed has zeros there: the bytes after a record are zero).
ID_TAIL_LAYOUT = (("merge_exceptions", "Q"), ("merge_csum", "I"), ("merge_chunk", "I"),
                  ("min_rate_kib", "I"), ("max_rate_kib", "I"))
ID_TAIL_STRUCT = struct.Struct("<" + "".join(f for _, f in ID_TAIL_LAYOUT))
IDENTITY_SIZE = (ID_HEAD_STRUCT.size + 2 * DEV_ID_STRUCT.size + ID_TABLE_LEN +
                 ID_TAIL_STRUCT.size)
assert DEV_ID_STRUCT.size == 520 and IDENTITY_SIZE == 2480
# Offsets in the record of the fields the kernel reads.
ID_SAMPLE_CHECKED = 4 + 4 + 8 + 128 + 136 + 4 + 4
ID_SAMPLE_SECTOR = ID_SAMPLE_CHECKED + 8
ID_SAMPLE_CSUM = ID_SAMPLE_SECTOR + 8 * NR_SAMPLES

# --- CRC32C --------------------------------------------------------------------


def _crc_tables():
    """Slicing-by-8 tables of the reflected Castagnoli polynomial."""
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t0.append(c)
    tabs = [t0]
    for _ in range(7):
        prev = tabs[-1]
        tabs.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tabs


_CRC_T = _crc_tables()
_CRC_CACHE = {}


def crc32c_raw(data, crc=0xFFFFFFFF):
    """The kernel's crc32c(crc, data, len): no final inversion. Cached by
    content (metadata blocks repeat a lot)."""
    key = (bytes(data), crc)
    hit = _CRC_CACHE.get(key)
    if hit is not None:
        return hit
    t0, t1, t2, t3, t4, t5, t6, t7 = _CRC_T
    n = len(data) // 8
    c = crc
    for w in struct.unpack_from("<%dQ" % n, data):
        x = w ^ c
        c = (t7[x & 0xFF] ^ t6[(x >> 8) & 0xFF] ^ t5[(x >> 16) & 0xFF] ^
             t4[(x >> 24) & 0xFF] ^ t3[(x >> 32) & 0xFF] ^
             t2[(x >> 40) & 0xFF] ^ t1[(x >> 48) & 0xFF] ^ t0[x >> 56])
    for b in data[n * 8:]:
        c = (c >> 8) ^ t0[(c ^ b) & 0xFF]
    if len(_CRC_CACHE) > 4096:
        _CRC_CACHE.clear()
    _CRC_CACHE[key] = c
    return c


def crc32c(data):
    """The standard CRC32C (the complement of crc32c_raw)."""
    return crc32c_raw(data) ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def block_csum(block, xor):
    """The checksum a metadata block must carry: crc32c_raw over bytes
    4..4095, xor the salt of its type."""
    return crc32c_raw(bytes(block[4:BLOCK_SIZE])) ^ xor


def seal(buf, xor, off=0):
    """Writes the checksum of the block at @off of @buf into its csum."""
    struct.pack_into("<I", buf, off,
                     block_csum(buf[off:off + BLOCK_SIZE], xor))

# --- geometry ------------------------------------------------------------------


def nr_regions(region_size, target_size):
    return -(-target_size // region_size)


def nr_bitmap_blocks(nr):
    return -(-nr // BITS_PER_BLOCK)


def metadata_blocks(nr):
    """Metadata blocks a device of @nr regions needs."""
    return 1 + 2 * nr_bitmap_blocks(nr)


def bitmap_location(index, slot):
    """The block of bitmap block @index, slot @slot."""
    return 1 + 2 * index + slot


def block(img, n):
    """Block @n of an image; zeros past its end."""
    d = bytes(img[n * BLOCK_SIZE:(n + 1) * BLOCK_SIZE])
    return d + bytes(BLOCK_SIZE - len(d))

# --- pack / unpack -------------------------------------------------------------


def get(buf, off, size):
    """A little-endian number of @size bytes at @off."""
    return int.from_bytes(buf[off:off + size], "little")


def put(buf, off, size, value):
    """Stores @value modulo 2^(8 * size) at @off, little endian."""
    buf[off:off + size] = (value % (1 << (8 * size))).to_bytes(size, "little")


def unpack_sb(blk):
    """The superblock fields of block 0, by name."""
    return dict(zip((n for n, _ in SB_LAYOUT), SB_STRUCT.unpack_from(blk, 0)))


def pack_sb(fields, csum=None):
    """A superblock block from @fields (missing ones 0, values taken modulo
    their size); the checksum computed unless @csum is given."""
    b = bytearray(BLOCK_SIZE)
    for name, (off, size) in SB_FIELDS.items():
        put(b, off, size, fields.get(name, 0))
    if csum is None:
        seal(b, SB_CSUM_XOR)
    else:
        put(b, 0, 4, csum)
    return b


def unpack_slot(blk):
    """The header fields of a bitmap slot, by name."""
    return dict(zip((n for n, _ in SLOT_LAYOUT), SLOT_STRUCT.unpack_from(blk, 0)))


def pack_slot(location, tid, bits=b""):
    """A valid bitmap slot at @location of transaction @tid; @bits padded
    with zeros."""
    b = bytearray(BLOCK_SIZE)
    SLOT_STRUCT.pack_into(b, 0, 0, BITMAP_MAGIC, location, tid % (U64_MAX + 1))
    b[BITMAP_HDR_SIZE:BITMAP_HDR_SIZE + len(bits)] = bits
    seal(b, BITMAP_CSUM_XOR)
    return b


def _unpack_named(layout, st, buf, off):
    vals = list(st.unpack_from(buf, off))
    out = {}
    for name, fmt in layout:
        n = int(fmt[:-1]) if fmt[:-1] and fmt[-1] in "QI" else 1
        if n > 1:
            out[name], vals = vals[:n], vals[n:]
        else:
            out[name], vals = vals[0], vals[1:]
    return out


def unpack_identity(blk):
    """The identity record of a superblock block: fields by name, strings
    as raw bytes (NUL padding included), origin and dest as dicts."""
    off = IDENTITY_OFFSET
    d = _unpack_named(ID_HEAD_LAYOUT, ID_HEAD_STRUCT, blk, off)
    off += ID_HEAD_STRUCT.size
    for role in ("origin", "dest"):
        d[role] = _unpack_named(DEV_ID_LAYOUT, DEV_ID_STRUCT, blk, off)
        off += DEV_ID_STRUCT.size
    d["origin_table"] = bytes(blk[off:off + ID_TABLE_LEN])
    off += ID_TABLE_LEN
    d.update(_unpack_named(ID_TAIL_LAYOUT, ID_TAIL_STRUCT, blk, off))
    return d


def pack_identity(fields):
    """The IDENTITY_SIZE bytes of an identity record from @fields (as
    unpack_identity() gives them; missing ones 0 or empty, str or bytes)."""
    def vals(layout, f):
        out = []
        for name, fmt in layout:
            v = f.get(name)
            if fmt.endswith("s"):
                out.append(v.encode() if isinstance(v, str) else (v or b""))
            elif fmt[:-1]:
                out += list(v or [0] * int(fmt[:-1]))
            else:
                out.append(v or 0)
        return out
    b = ID_HEAD_STRUCT.pack(*vals(ID_HEAD_LAYOUT, fields))
    for role in ("origin", "dest"):
        b += DEV_ID_STRUCT.pack(*vals(DEV_ID_LAYOUT, fields.get(role, {})))
    t = fields.get("origin_table", b"")
    t = t.encode() if isinstance(t, str) else t
    return (b + t + bytes(ID_TABLE_LEN - len(t)) +
            ID_TAIL_STRUCT.pack(*vals(ID_TAIL_LAYOUT, fields)))


def _id_string_problem(raw, newlines=False):
    """tools/meta.c id_string_problem()."""
    if 0 not in raw:
        return "is not NUL-terminated"
    head = raw[:raw.index(0)]
    for c in head:
        if (c < 0x20 or c > 0x7E) and not (newlines and c == 0x0A):
            return "holds a byte that is not printable ASCII"
    if any(raw[raw.index(0):]):
        return "has bytes after its NUL"
    return None


def tool_identity_problem(ident, sb):
    """tools/meta.c meta_identity_problem(): what is wrong with the record
    for dmstream (a short phrase), or None."""
    if ident["magic"] != IDENTITY_MAGIC:
        return "bad magic"
    if ident["options"] & ~(ID_OPT_MIRROR | ID_OPT_NO_DISCARD_PASSDOWN | ID_OPT_MERGE |
                            ID_OPT_ROLLBACK | ID_OPT_COPY_ON_READ | ID_OPT_SKIP_ZEROES):
        return "unknown options"
    for f in ("name", "uuid"):
        if _id_string_problem(ident[f]):
            return "stream " + f
    if not ident["name"][0]:
        return "empty name"
    if _id_string_problem(ident["origin_table"], True):
        return "origin_table"
    mi = ident["max_inflight"]
    if mi and not MIN_MAX_INFLIGHT <= mi <= MAX_MAX_INFLIGHT:
        return "max_inflight"
    checked = ident["sample_checked"] | ident["sample_wanted"]
    if checked & ~((1 << NR_SAMPLES) - 1):
        return "sample_checked"
    for i in range(NR_SAMPLES):
        sector = ident["sample_sector"][i]
        if checked & (1 << i) and (sector > sb["origin_size"] or
                                   sb["origin_size"] - sector < SAMPLE_SECTORS):
            return "sample %d past the origin" % i
    for role, size in (("origin", sb["origin_size"]), ("dest", sb["dest_size"])):
        d = ident[role]
        for f in ("dm_name", "dm_uuid", "wwn", "serial", "part_uuid", "fs_uuid"):
            if _id_string_problem(d[f]):
                return "%s %s" % (role, f)
        if d["size"] != size:
            return "%s size" % role
    return None


def _cstr(raw):
    return raw[:raw.index(0)].decode("ascii")


def identity_json(sb_block, sb):
    """What `dmstream dump --json` prints as "identity" for a superblock
    block with a right magic: None, {"valid": False}, or the fields."""
    raw = sb_block[IDENTITY_OFFSET:IDENTITY_OFFSET + IDENTITY_SIZE]
    if not any(raw):
        return None
    ident = unpack_identity(sb_block)
    if tool_identity_problem(ident, sb):
        return {"valid": False}
    out = {"valid": True}
    for f in ("options", "created", "rate_kib", "max_inflight", "sample_checked",
              "sample_wanted"):
        out[f] = ident[f]
    out["name"], out["uuid"] = _cstr(ident["name"]), _cstr(ident["uuid"])
    out["samples"] = [[ident["sample_sector"][i], ident["sample_csum"][i]]
                      for i in range(NR_SAMPLES)]
    for role in ("origin", "dest"):
        d = dict(ident[role])
        for f in ("dm_name", "dm_uuid", "wwn", "serial", "part_uuid", "fs_uuid"):
            d[f] = _cstr(d[f])
        out[role] = d
    out["origin_table"] = _cstr(ident["origin_table"])
    for f in ("merge_exceptions", "merge_csum", "merge_chunk", "min_rate_kib",
              "max_rate_kib"):
        out[f] = ident[f]
    return out


def bit(bits, n):
    """Bit @n of a bitmap: bit n % 8 of byte n / 8."""
    return bits[n >> 3] >> (n & 7) & 1

# --- the slot rule -------------------------------------------------------------


def slot_check(blk, location):
    """A slot as tools/meta.c slot_check() sees it: a dict with block,
    valid, problem (None when valid), transaction_id."""
    h = unpack_slot(blk)
    why = None
    if not any(blk):
        why = "all zero"
    elif h["magic"] != BITMAP_MAGIC:
        why = "bad magic"
    elif h["csum"] != block_csum(blk, BITMAP_CSUM_XOR):
        why = "checksum mismatch"
    elif h["blocknr"] != location:
        why = "wrong block number"
    return {"block": location, "valid": why is None, "problem": why,
            "transaction_id": h["transaction_id"]}


def pick_slot(slots, committed):
    """The slot in use: the valid one with the highest transaction id not
    above @committed, the lower slot on a tie; -1 if none. Marks the valid
    slots above it "uncommitted" (all of them when @committed is not a
    signed 64-bit number: the kernel compares them so)."""
    ids = []
    for s in slots:
        s["uncommitted"] = s["valid"] and (
            s["transaction_id"] > committed or committed > INT64_MAX)
        ok = s["valid"] and not s["uncommitted"]
        ids.append(s["transaction_id"] if ok else -1)
    if ids[0] < 0 and ids[1] < 0:
        return -1
    return 1 if ids[1] > ids[0] else 0


def read_slots(img, index, committed):
    """(slot dicts, slot in use) of bitmap block @index."""
    slots = [slot_check(block(img, bitmap_location(index, s)),
                        bitmap_location(index, s)) for s in (0, 1)]
    return slots, pick_slot(slots, committed)

# --- scan: what `dmstream dump --json` reports ---------------------------------


class _Scan:
    """The state of one scan: problems by severity, runs of regions."""

    def __init__(self):
        self.problems = []          # (severity, what)
        self.runs = {True: [], False: []}
        self.run = None             # [copied, first]

    def error(self, what):
        self.problems.append(("error", what))

    def warning(self, what):
        self.problems.append(("warning", what))

    def note(self, what):
        self.problems.append(("note", what))

    def emit(self, copied, first):
        if self.run is not None and self.run[0] == copied:
            return
        self.close(first)
        self.run = [copied, first]

    def close(self, end):
        if self.run is not None:
            self.runs[self.run[0]].append([self.run[1], end - 1])
        self.run = None


def _pow2(v):
    return v and not v & (v - 1)


def _check_geometry(sc, sb, dev_bytes):
    """tools/meta.c check_geometry(): the checks that need no table, the
    same problems in the same order. True when the bitmap can be read."""
    rs, ts, nr = sb["region_size"], sb["target_size"], sb["nr_regions"]
    region_ok = MIN_REGION_SECTORS <= rs <= MAX_REGION_SECTORS and _pow2(rs)
    regions_ok = 1 <= nr <= MAX_REGIONS
    usable = region_ok and regions_ok
    expected = 0
    if not region_ok:
        sc.error("region size")
    if not ts:
        sc.error("target length 0")
        usable = False
    elif region_ok:
        expected = nr_regions(rs, ts)
        if expected > MAX_REGIONS:
            sc.error("too many regions")
            usable = False
        elif regions_ok and nr != expected:
            sc.error("nr_regions inconsistent")
            usable = False
    if not regions_ok:
        if nr != expected:
            sc.error("nr_regions out of range")
    elif sb["nr_bitmap_blocks"] != nr_bitmap_blocks(nr):
        sc.error("nr_bitmap_blocks inconsistent")
        usable = False
    for key in ("origin_size", "dest_size"):
        if sb[key] < ts:
            sc.error(key + " below the target length")
        elif sb[key] > MAX_DEVICE_SECTORS:
            sc.error(key + " larger than any device")
    if sb["nr_copied"] > nr:
        sc.error("nr_copied above nr_regions")
    if sb["transaction_id"] > INT64_MAX:
        sc.error("transaction id out of range")
    if usable and dev_bytes // BLOCK_SIZE < metadata_blocks(nr):
        sc.error("device too small")
        usable = False
    return usable


def _check_extras(sc, sb, sb_block):
    """tools/meta.c check_sb_extras()."""
    if sb["flags"] & SB_FLAG_NEEDS_CHECK:
        sc.note("needs-check flag")
    if sb["flags"] & SB_FLAG_ORIGIN_STALE:
        sc.note("origin stale")
    elif sb["flags"] & SB_FLAG_ORIGIN_FAILED:
        sc.warning("origin-failed without origin-stale")
    if sb["flags"] & ~SB_FLAGS_KNOWN:
        sc.error("unknown flags")
    if sb["flags"] & (SB_FLAG_ORIGIN_STALE | SB_FLAG_ORIGIN_FAILED) == SB_FLAG_ORIGIN_FAILED:
        sc.error("origin failed but not stale")
    kernel_why = identity_problem(sb_block, sb["origin_size"])
    if kernel_why:
        sc.error(kernel_why)
    if sb["reserved0"]:
        sc.warning("reserved0 not 0")
    if any(sb_block[SB_STRUCT.size:IDENTITY_OFFSET]):
        sc.warning("bytes after the fields")
    raw = sb_block[IDENTITY_OFFSET:IDENTITY_OFFSET + IDENTITY_SIZE]
    if not kernel_why and any(raw):
        why = tool_identity_problem(unpack_identity(sb_block), sb)
        if why:
            sc.warning("identity record: " + why)
    if not kernel_why and any(sb_block[IDENTITY_OFFSET + IDENTITY_SIZE:]):
        sc.warning("bytes after the identity record")


def _scan_bits(sc, bits, first, nr):
    """Emits the runs of @nr regions from @first; returns the bits set."""
    count = 0
    n = 0
    while n < nr:
        byte = bits[n >> 3]
        if not n & 7 and n + 8 <= nr and byte in (0, 0xFF):
            sc.emit(byte != 0, first + n)
            count += 8 if byte else 0
            n += 8
            continue
        b = bit(bits, n)
        sc.emit(bool(b), first + n)
        count += b
        n += 1
    return count


def _scan_bitmap(sc, img, sb, out):
    """tools/meta.c scan_bitmap(): every bitmap block, its slots and runs."""
    count = 0
    for index in range(sb["nr_bitmap_blocks"]):
        first = index * BITS_PER_BLOCK
        nr = min(sb["nr_regions"] - first, BITS_PER_BLOCK)
        slots, used = read_slots(img, index, sb["transaction_id"])
        out["bitmap_blocks"].append({"index": index, "used_slot":
                                     None if used < 0 else used,
                                     "slots": slots})
        for s in slots:
            if s["uncommitted"]:
                sc.note("slot %d above the committed transaction" % s["block"])
            elif not s["valid"] and used >= 0:
                sc.warning("slot %d not in use: %s" % (s["block"], s["problem"]))
        if used < 0:
            sc.error("bitmap block %d has no valid slot" % index)
            sc.emit(False, first)
            continue
        bits = block(img, bitmap_location(index, used))[BITMAP_HDR_SIZE:]
        count += _scan_bits(sc, bits, first, nr)
        if nr < BITS_PER_BLOCK and int.from_bytes(bits, "little") >> nr:
            sc.error("bitmap block %d: bits past the last region" % index)
    sc.close(sb["nr_regions"])
    out["copied_regions"] = count
    if count != sb["nr_copied"]:
        sc.error("bitmap holds %d, superblock says %d" % (count, sb["nr_copied"]))


def scan(img, dev_bytes=None):
    """Decodes a metadata image (bytes; @dev_bytes the device size, by
    default the image's) into what `dmstream dump --json` prints: blank,
    superblock (when its magic is right; with csum_ok), bitmap_blocks,
    copied, uncopied, copied_regions, and problems as (severity, what)."""
    if dev_bytes is None:
        dev_bytes = len(img)
    sc = _Scan()
    out = {"blank": False, "superblock": None, "identity": None,
           "bitmap_blocks": [], "copied": [], "uncopied": [],
           "copied_regions": None}
    if dev_bytes < BLOCK_SIZE:
        sc.error("device smaller than a superblock")
        return _finish(out, sc)
    sb_block = block(img, SB_BLOCK)
    sb = unpack_sb(sb_block)
    sb["csum_ok"] = sb["csum"] == block_csum(sb_block, SB_CSUM_XOR)
    if not any(sb_block):
        out["blank"] = True
        return _finish(out, sc)
    if sb["magic"] != MAGIC:
        sc.error("bad superblock magic")
        return _finish(out, sc)
    out["superblock"] = sb
    out["identity"] = identity_json(sb_block, sb)
    if not sb["csum_ok"]:
        sc.error("superblock checksum mismatch")
    elif sb["blocknr"] != SB_BLOCK:
        sc.error("superblock block number")
    elif sb["version"] != VERSION:
        sc.error("version")
    elif sb["block_size"] != BLOCK_SIZE:
        sc.error("block size")
    if sb["version"] != VERSION or sb["block_size"] != BLOCK_SIZE:
        if not sb["csum_ok"] or sb["blocknr"] != SB_BLOCK:
            sc.error("version or block size not readable")
        return _finish(out, sc)
    usable = _check_geometry(sc, sb, dev_bytes)
    _check_extras(sc, sb, sb_block)
    if usable:
        _scan_bitmap(sc, img, sb, out)
    return _finish(out, sc)


def _finish(out, sc):
    out["copied"], out["uncopied"] = sc.runs[True], sc.runs[False]
    out["problems"] = sc.problems
    out["errors"] = sum(1 for s, _ in sc.problems if s == "error")
    out["non_fatal_errors"] = sum(1 for s, _ in sc.problems if s == "warning")
    return out

# --- decode: what the kernel loads for a table --------------------------------


def identity_problem(sb_block, origin_size):
    """Why the kernel's identity_check() refuses the identity record of
    superblock block @sb_block (its words), or None."""
    rec = sb_block[IDENTITY_OFFSET:BLOCK_SIZE]
    magic = struct.unpack_from("<I", rec, 0)[0]
    if magic != IDENTITY_MAGIC:
        return "Metadata identity record is corrupt (bad magic)" if any(rec) else None
    checked, wanted = struct.unpack_from("<II", rec, ID_SAMPLE_CHECKED)
    checked |= wanted
    if checked >> NR_SAMPLES:
        return "Metadata identity record names samples that do not exist"
    for i in range(NR_SAMPLES):
        sector = struct.unpack_from("<Q", rec, ID_SAMPLE_SECTOR + 8 * i)[0]
        if checked >> i & 1 and (sector > origin_size or
                                 origin_size - sector < SAMPLE_SECTORS):
            return "Metadata identity record has an origin sample past the origin's end"
    return None


def decode(meta, geo):
    """What the kernel loads from @meta (the metadata device's bytes) for a
    table of geometry @geo (dict: region_size, target_size, nr_regions,
    origin_size, dest_size). A dict with state 'blank' | 'valid' |
    'invalid' (+ reason); for 'valid': tid, nr_copied, flags, copied (a list
    of bools), slot_tids (per block, the valid slots' ids or None),
    newer_slots (valid slots above the committed transaction). Stricter than
    the kernel in one way: two slots of one block carrying the same
    transaction with different bits are 'invalid' (no commit writes that)."""
    sb_block = meta[0:BLOCK_SIZE]
    if not any(sb_block):
        return {"state": "blank", "nr_copied": 0, "tid": -1,
                "copied": [False] * geo["nr_regions"], "newer_slots": 0}
    sb = unpack_sb(sb_block)

    def bad(reason):
        return {"state": "invalid", "reason": reason}

    if sb["magic"] != MAGIC:
        return bad("superblock magic 0x%x" % sb["magic"])
    want_csum = block_csum(sb_block, SB_CSUM_XOR)
    if sb["csum"] != want_csum:
        return bad("superblock checksum 0x%08x, computed 0x%08x"
                   % (sb["csum"], want_csum))
    if sb["blocknr"] != SB_BLOCK or sb["version"] != VERSION or \
            sb["block_size"] != BLOCK_SIZE:
        return bad("superblock blocknr %d version %d block size %d"
                   % (sb["blocknr"], sb["version"], sb["block_size"]))
    keys = ("region_size", "target_size", "nr_regions", "origin_size",
            "dest_size")
    got, want = tuple(sb[k] for k in keys), tuple(geo[k] for k in keys)
    if got != want:
        return bad("superblock geometry %r, expected %r" % (got, want))
    nreg, tid = sb["nr_regions"], sb["transaction_id"]
    nb = nr_bitmap_blocks(nreg)
    if sb["nr_bitmap_blocks"] != nb:
        return bad("superblock says %d bitmap blocks, expected %d"
                   % (sb["nr_bitmap_blocks"], nb))
    if sb["nr_copied"] > nreg:
        return bad("superblock copied count %d > %d regions"
                   % (sb["nr_copied"], nreg))
    if sb["flags"] & ~SB_FLAGS_KNOWN:
        return bad("superblock flags 0x%x unknown" % sb["flags"])
    if sb["flags"] & (SB_FLAG_ORIGIN_STALE | SB_FLAG_ORIGIN_FAILED) == SB_FLAG_ORIGIN_FAILED:
        return bad("superblock says the origin failed but not that it is stale")
    why = identity_problem(sb_block, geo["origin_size"])
    if why:
        return bad(why)
    copied, slot_tids, newer = [], [], 0
    for i in range(nb):
        if len(meta) < bitmap_location(i, 1) * BLOCK_SIZE + BLOCK_SIZE:
            return bad("metadata slice too small for bitmap block %d" % i)
        blks = [meta[bitmap_location(i, s) * BLOCK_SIZE:
                     (bitmap_location(i, s) + 1) * BLOCK_SIZE] for s in (0, 1)]
        slots = [slot_check(blks[s], bitmap_location(i, s)) for s in (0, 1)]
        tids = [s["transaction_id"] if s["valid"] else None for s in slots]
        slot_tids.append(tids)
        newer += sum(1 for t in tids if t is not None and t > tid)
        cand = [(tids[s], s) for s in (0, 1)
                if tids[s] is not None and tids[s] <= tid]
        if not cand:
            return bad("bitmap block %d: no valid slot with transaction id "
                       "<= %d (slots: %r)" % (i, tid, tids))
        if len(cand) == 2 and cand[0][0] == cand[1][0] and \
                blks[0][BITMAP_HDR_SIZE:] != blks[1][BITMAP_HDR_SIZE:]:
            return bad("bitmap block %d: both slots carry transaction %d "
                       "with different bits" % (i, cand[0][0]))
        used = max(cand, key=lambda c: (c[0], -c[1]))[1]
        bits = blks[used][BITMAP_HDR_SIZE:]
        here = min(nreg - i * BITS_PER_BLOCK, BITS_PER_BLOCK)
        copied.extend(bool(bit(bits, n)) for n in range(here))
        if int.from_bytes(bits, "little") >> here:
            return bad("bitmap block %d: bit set past the last region" % i)
    pop = sum(copied)
    if pop != sb["nr_copied"]:
        return bad("committed bitmap holds %d regions, superblock says %d"
                   % (pop, sb["nr_copied"]))
    return {"state": "valid", "tid": tid, "nr_copied": sb["nr_copied"],
            "flags": sb["flags"], "copied": copied, "slot_tids": slot_tids,
            "newer_slots": newer}
