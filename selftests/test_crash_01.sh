#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_crash_01: crash consistency with dm-log-writes (the fstests generic/482
# method).
#
# The stream target's metadata and destination are two dm-linear slices of
# ONE log-writes device (over a loop device, logging to a second loop), so a
# single log orders every write of both. The origin is a separate loop with
# random data (16 MiB, 256 regions of 64 KiB). The target is created
# unpaused with a rate limit, and while it streams, known patterns are
# written through it (whole and partial regions far ahead of the copy,
# straddling and multi-region writes, rewrites of the same sectors, writes
# at the copy frontier and behind it), each acknowledged by fsync or
# O_DSYNC; after each acknowledgement a log mark "wNNN" is dropped. After
# teardown the log is replayed (selftests/logreplay.py, in memory) and these
# crash states are built:
#
# - prefix states: the log up to every entry (a disk may persist completed
#   writes in any subset; the log's prefixes are the subsets in completion
#   order, and the states at FLUSH/FUA entries are generic/482's);
# - reordered states: for every superblock write that is not itself a
#   FLUSH/FUA entry, the log up to the last FLUSH/FUA before it plus that
#   superblock write alone (it overtook the rest of its epoch);
# - torn states: for every metadata block write, the log before it plus only
#   its first sector, or all of it but its first sector.
#
# Static checks, at every state, against stream-format.h and the model: the
# metadata is blank (all-zero superblock: the target formats it, so this is
# legal before the first superblock write, with a blank or partial bitmap
# area) or valid (checksums, geometry, the slot rule, bitmap popcount equal
# to the superblock's count), never torn; every region the committed bitmap
# marks copied holds, on the destination slice, the origin's data or for
# written sectors the data acknowledged by the last mark before the state
# (the one write in flight may show either version, sector by sector); every
# region an acknowledged write touched is committed; along the prefix states
# the committed transaction id and bitmap only grow.
#
# Target checks, at sampled states (at most $CRASH_POINTS FLUSH/FUA points:
# the format phase, the end, mid-commit, commit and data points evenly
# spaced; $CRASH_REORDER reordered and $CRASH_TORN torn states): the state is
# written onto a fresh loop device of the logged device's geometry, the same
# two slices are mapped over it and the stream target is built over them
# (same origin) in `paused` mode. It must construct (and must refuse a state
# the decoder calls torn: accepting it is a failure of its own), its status
# copied count must equal the committed bitmap's, and every region read
# through it must hold the data above.
#
# What one shared log cannot show: a missing destination flush before the
# metadata flush (the metadata device's flush flushes the destination too).
# That needs blktrace on separate devices; it is reported as skipped here.
#
# Knobs (environment): CRASH_RATE (KiB/s, default 1024), CRASH_POINTS
# (default 24), CRASH_REORDER (default 6), CRASH_TORN (default 4). Each
# target check costs about 2 s under TCG; the static checks cover every
# state either way. On failure the log's entry list is saved in $TEST_OUT.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"

require_cmd dmsetup python3 losetup blockdev dd cmp
require_module dm-stream dm-log-writes

RS=128				# region size, sectors (64 KiB)
MB=16				# origin and destination, MiB
LEN=$((MB * 2048))		# target length, sectors
NR=$((LEN / RS))		# 256 regions
META_MB=1
META_SECT=$((META_MB * 2048))	# the metadata slice
DATA_MB=$((META_MB + MB))	# the logged device: metadata + destination
DATA_SECT=$((DATA_MB * 2048))
LOG_MB=48
RATE=${CRASH_RATE:-1024}
N=crash01
LW=$N-lw
CHK=$N-chk

ktap_plan 16

# --- shared python: test patterns and the metadata decoder ------------------

cat >"$TEST_TMP/crashlib.py" <<'PY'
# Test patterns and a dm-stream metadata decoder (stream-format.h).
import mmap
import os
import struct

SECT = 512


def pattern(i, sector):
    """512 bytes written by test write i at target sector `sector`."""
    head = b"dm-stream crash01 w=%03d sector=%08d " % (i, sector)
    return head + bytes([0x40 + i % 64]) * (SECT - len(head))


def pattern_range(i, sector, n):
    return b"".join(pattern(i, sector + j) for j in range(n))


def read_dev(path, nbytes, off=0):
    """nbytes of a block device at off, with O_DIRECT."""
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


# CRC32C (Castagnoli), reflected, table driven.
_T = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _T.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    t = _T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

STREAM_MAGIC = 0x4d525453544d44
BITMAP_MAGIC = 0x504d4254
BLOCK = 4096
SB_XOR = 0x5b3c9e17
BM_XOR = 0x2d81f4a6
HDR = 24
BITS_PER_BLOCK = (BLOCK - HDR) * 8
_csum_cache = {}


def block_csum(block, xor):
    """The kernel's crc32c(~0, block + 4, BLOCK - 4) ^ xor: no final
    inversion, i.e. the complement of a standard CRC32C."""
    key = (bytes(block), xor)
    v = _csum_cache.get(key)
    if v is None:
        v = ((~crc32c(block[4:BLOCK])) & 0xFFFFFFFF) ^ xor
        if len(_csum_cache) > 4096:
            _csum_cache.clear()
        _csum_cache[key] = v
    return v


SB = struct.Struct("<IIQQIIIIQQQQQQQ")


def decode(meta, geo):
    """meta: the metadata slice's bytes. geo: dict with region_size,
    target_size, nr_regions, origin_size, dest_size. Returns a dict with
    state 'blank' | 'valid' | 'invalid' (+ reason); for 'valid': tid,
    nr_copied, copied (list of bools), slot_tids, newer_slots (valid slots
    above the committed transaction)."""
    sb = meta[0:BLOCK]
    if not any(sb):
        return {"state": "blank", "nr_copied": 0, "tid": -1,
                "copied": [False] * geo["nr_regions"], "newer_slots": 0}
    (csum, flags, blocknr, magic, version, bsize, rsize, _r0, tsize, nreg,
     osize, dsize, nbm, tid, ncop) = SB.unpack_from(sb, 0)

    def bad(reason):
        return {"state": "invalid", "reason": reason}

    if magic != STREAM_MAGIC:
        return bad("superblock magic 0x%x" % magic)
    if csum != block_csum(sb, SB_XOR):
        return bad("superblock checksum 0x%08x, computed 0x%08x"
                   % (csum, block_csum(sb, SB_XOR)))
    if blocknr != 0 or version != 1 or bsize != BLOCK:
        return bad("superblock blocknr %d version %d block size %d"
                   % (blocknr, version, bsize))
    want = (geo["region_size"], geo["target_size"], geo["nr_regions"],
            geo["origin_size"], geo["dest_size"])
    if (rsize, tsize, nreg, osize, dsize) != want:
        return bad("superblock geometry %r, expected %r"
                   % ((rsize, tsize, nreg, osize, dsize), want))
    nb = (nreg + BITS_PER_BLOCK - 1) // BITS_PER_BLOCK
    if nbm != nb:
        return bad("superblock says %d bitmap blocks, expected %d" % (nbm, nb))
    if ncop > nreg:
        return bad("superblock copied count %d > %d regions" % (ncop, nreg))
    copied = []
    slot_tids = []
    newer = 0
    for i in range(nb):
        cand = []
        tids = []
        for s in (0, 1):
            loc = 1 + 2 * i + s
            blk = meta[loc * BLOCK:(loc + 1) * BLOCK]
            if len(blk) < BLOCK:
                return bad("metadata slice too small for bitmap block %d" % i)
            bcs, bmagic, bblock, btid = struct.unpack_from("<IIQQ", blk, 0)
            ok = (bmagic == BITMAP_MAGIC and bblock == loc and
                  bcs == block_csum(blk, BM_XOR))
            tids.append(btid if ok else None)
            if ok and btid > tid:
                newer += 1
            if ok and btid <= tid:
                cand.append((btid, s, blk))
        slot_tids.append(tids)
        if not cand:
            return bad("bitmap block %d: no valid slot with transaction id "
                       "<= %d (slots: %r)" % (i, tid, tids))
        cand.sort(key=lambda c: (c[0], -c[1]))
        if len(cand) == 2 and cand[0][0] == cand[1][0] and \
                cand[0][2][HDR:] != cand[1][2][HDR:]:
            return bad("bitmap block %d: both slots carry transaction %d "
                       "with different bits" % (i, cand[0][0]))
        bits = cand[-1][2][HDR:]
        here = min(nreg - i * BITS_PER_BLOCK, BITS_PER_BLOCK)
        copied.extend(bool(bits[n >> 3] >> (n & 7) & 1) for n in range(here))
        tail = (bits[here >> 3] >> (here & 7)) if here & 7 else 0
        if tail or any(bits[(here + 7) >> 3:]):
            return bad("bitmap block %d: bit set past the last region" % i)
    pop = sum(copied)
    if pop != ncop:
        return bad("committed bitmap holds %d regions, superblock says %d"
                   % (pop, ncop))
    return {"state": "valid", "tid": tid, "nr_copied": ncop, "flags": flags,
            "copied": copied, "slot_tids": slot_tids, "newer_slots": newer}
PY

# --- setup -------------------------------------------------------------------

make_loop -v ORIG $MB orig
make_loop -v DATA $DATA_MB data
make_loop -v LOGD $LOG_MB log
make_loop -v CHKD $DATA_MB chk
make_loop -v REPLAY $DATA_MB replay
dd if=/dev/urandom of="$ORIG" bs=1M count=$MB iflag=fullblock oflag=direct \
	status=none
ORIG_MD5=$(dev_md5 "$ORIG")
DEV=$(dm_dev $N)

kmsg "dm-stream selftest: $TEST_NAME: setup"
if dm_create $LW "0 $DATA_SECT log-writes $DATA $LOGD" &&
   dm_create $N-meta "0 $META_SECT linear $(dm_dev $LW) 0" &&
   dm_create $N-dest "0 $LEN linear $(dm_dev $LW) $META_SECT" &&
   dm_message $LW mark start &&
   dm_create $N "0 $LEN stream $(dm_dev $N-meta) $(dm_dev $N-dest) $ORIG $RS 2 rate $RATE"; then
	ktap_ok "setup: streaming target (rate $RATE) over two slices of one log-writes device"
else
	ktap_fail "setup: streaming target (rate $RATE) over two slices of one log-writes device" \
		"$DM_ERR"
	ktap_diag "$(dmesg_since_mark | tail -n 5)"
	ktap_skip_all "setup failed"
fi

# --- workload: acknowledged writes while streaming ---------------------------

cat >"$TEST_TMP/workload.py" <<'PY'
import json
import mmap
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crashlib import pattern_range

dev, name, lw, out, rs, nr = sys.argv[1:7]
rs, nr = int(rs), int(nr)


def status():
    try:
        w = subprocess.run(["dmsetup", "status", name], capture_output=True,
                           text=True, timeout=10).stdout.split()
        c, t = w[6].split("/")
        return int(c), w[8]
    except Exception:
        return -1, "?"


fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
fds = os.open(dev, os.O_RDWR | os.O_DIRECT | os.O_DSYNC)
writes = []
fails = []


def w(desc, sector, nsect, mode="fsync"):
    i = len(writes)
    c, st = status()
    data = pattern_range(i, sector, nsect)
    buf = mmap.mmap(-1, len(data))
    buf[:] = data
    t0 = time.monotonic()
    try:
        n = os.pwrite(fds if mode == "dsync" else fd, buf, sector * 512)
        if n != len(data):
            raise OSError("short write %d" % n)
        if mode == "fsync":
            os.fsync(fd)
    except OSError as e:
        fails.append("w%03d %s: %s" % (i, desc, e))
        # An unacknowledged write: no mark; the checker treats it as in
        # flight until the end.
        writes.append(dict(i=i, desc=desc, sector=sector, nsect=nsect,
                           mode=mode, acked=False, copied_before=c,
                           state_before=st))
        return
    r = subprocess.run(["dmsetup", "message", lw, "0", "mark", "w%03d" % i],
                       capture_output=True, text=True)
    if r.returncode:
        fails.append("w%03d: mark failed: %s" % (i, r.stderr.strip()))
    writes.append(dict(i=i, desc=desc, sector=sector, nsect=nsect, mode=mode,
                       acked=True, copied_before=c, state_before=st,
                       ms=int((time.monotonic() - t0) * 1000)))


R = lambda r, off=0: r * rs + off
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
    c, st = status()
    if c < 0:
        c = 0
    r = min(c + 1 + j % 3, nr - 1)
    while r in used and r < nr - 1:
        r += 1
    if r in used:
        r = next(x for x in range(nr - 1, -1, -1) if x not in used)
    used.add(r)
    w("4 KiB at the frontier (copied %d), region %d" % (c, r),
      R(r, 8 * (j % 16)), 8, "dsync" if j % 2 else "fsync")
    if j == 4:
        w("version 2 of region 230 +0", R(230), 8, "dsync")
        b = max(c - 4, 0)
        while b in used and b < nr - 1:
            b += 1
        if b in used:
            b = next(x for x in range(nr) if x not in used)
        used.add(b)
        w("4 KiB behind the frontier, region %d" % b, R(b, 32), 8)
    time.sleep(0.1)
w("version 3 of region 230 +0", R(230), 8)
w("4 KiB into region 0", R(0, 40), 8, "dsync")
w("last 4 KiB of the last region", R(nr - 1, rs - 8), 8)
os.close(fd)
os.close(fds)
with open(out, "w") as f:
    json.dump({"writes": writes, "fails": fails}, f, indent=1)
for line in fails:
    print("# workload: " + line)
PY

kmsg "dm-stream selftest: $TEST_NAME: workload"
T0=$SECONDS
python3 "$TEST_TMP/workload.py" "$DEV" $N $LW "$TEST_TMP/writes.json" $RS $NR
WL_RC=$?
read -r NW NACK OVERLAP FAILS < <(python3 - "$TEST_TMP/writes.json" $NR <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print("0 0 0 1")
    sys.exit()
nr = int(sys.argv[2])
ws = d["writes"]
ov = sum(1 for w in ws if 0 < w["copied_before"] < nr)
print(len(ws), sum(1 for w in ws if w["acked"]), ov, len(d["fails"]))
PY
)
ktap_diag "workload: $NW writes, $NACK acknowledged, $OVERLAP issued while 0 < copied < $NR, $((SECONDS - T0)) s"
if [[ $WL_RC -eq 0 && $FAILS -eq 0 && $NW -gt 0 && $NACK -eq $NW && $OVERLAP -ge 3 ]]; then
	ktap_ok "workload: $NACK writes acknowledged by fsync/O_DSYNC while streaming"
else
	ktap_fail "workload: $NACK writes acknowledged by fsync/O_DSYNC while streaming" \
		"rc $WL_RC, $FAILS failures, $NACK/$NW acknowledged, $OVERLAP overlapping streaming (need >= 3)"
fi

# --- the live run ends: streaming completes, content is origin + writes -----

EXP=$TEST_TMP/expected.img
python3 - "$ORIG" "$TEST_TMP/writes.json" "$EXP" $LEN <<'PY'
import json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[3]))
from crashlib import read_dev, pattern_range
orig, wj, out, length = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
img = bytearray(read_dev(orig, length * 512))
for w in json.load(open(wj))["writes"]:
    if not w["acked"]:
        continue
    img[w["sector"] * 512:(w["sector"] + w["nsect"]) * 512] = \
        pattern_range(w["i"], w["sector"], w["nsect"])
open(out, "wb").write(img)
PY
COMPLETE=
for ((i = 0; i < 180; i++)); do
	ST=$(dm_status $N)
	[[ $(awk '{print $6}' <<<"$ST") == complete ]] && { COMPLETE=1; break; }
	sleep 1
done
LIVE_MD5=$(dev_md5 "$DEV")
EXP_MD5=$(md5sum <"$EXP" | cut -d' ' -f1)
DEST_MD5=$(dev_md5 "$(dm_dev $N-dest)")
if [[ -n $COMPLETE && $LIVE_MD5 == "$EXP_MD5" && $DEST_MD5 == "$EXP_MD5" &&
      $(dev_md5 "$ORIG") == "$ORIG_MD5" ]]; then
	ktap_ok "live run: streaming completes; target and destination hold origin + writes"
else
	ktap_fail "live run: streaming completes; target and destination hold origin + writes" \
		"complete=${COMPLETE:-no} status '$ST'; target md5 $LIVE_MD5, destination md5 $DEST_MD5, expected $EXP_MD5; origin md5 $(dev_md5 "$ORIG") (was $ORIG_MD5)"
fi

# --- teardown: every write reaches the log ------------------------------------

dm_message $LW mark end-of-workload
dm_remove $N || ktap_diag "remove $N: $DM_ERR"
dm_message $LW mark stream-removed
dm_remove $N-meta
dm_remove $N-dest
LW_STATUS=$(dm_status $LW)
dm_remove $LW || ktap_diag "remove $LW: $DM_ERR"
ktap_diag "log-writes status before removal: $LW_STATUS"
# Status: <logged entries> <highest allocated sector> [logging_disabled].
read -r _ LW_HI _ <<<"$LW_STATUS"
LOG=$TEST_TMP/log.img
dd if="$LOGD" of="$LOG" bs=1M iflag=direct status=none
ktap_diag "log: $(python3 -B "$DIR/logreplay.py" --log "$LOG" --num-entries 2>&1) entries, $(((${LW_HI:-0} + 1) / 2)) KiB used of $LOG_MB MiB"

LOGCHK=$(python3 -B - "$DIR" "$LOG" "$TEST_TMP/writes.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import logreplay
try:
    log = logreplay.Log(sys.argv[2])
except Exception as e:
    print("unparsable: %s" % e)
    sys.exit()
bad = []
if not log.entries or log.entries[-1].mark != "dm-log-writes-end":
    bad.append("last entry is not the dm-log-writes-end mark")
marks = [e.mark for e in log.entries if e.mark is not None]
for w in json.load(open(sys.argv[3]))["writes"]:
    if w["acked"] and "w%03d" % w["i"] not in marks:
        bad.append("mark w%03d missing" % w["i"])
for m in ("start", "end-of-workload", "stream-removed"):
    if m not in marks:
        bad.append("mark %s missing" % m)
print("; ".join(bad))
PY
)
if [[ -z $LOGCHK && $LW_STATUS != *logging_disabled* ]]; then
	ktap_ok "log: complete (logging never disabled, every mark present)"
else
	ktap_fail "log: complete (logging never disabled, every mark present)" \
		"${LOGCHK:-logging disabled: $LW_STATUS}"
fi

# --- the replayer against ground truth ------------------------------------------

kmsg "dm-stream selftest: $TEST_NAME: replay"
T0=$SECONDS
if python3 -B "$DIR/logreplay.py" --log "$LOG" --replay "$REPLAY" &&
   [[ $(dev_md5 "$REPLAY") == "$(dev_md5 "$DATA")" ]]; then
	ktap_ok "logreplay: the whole log replayed onto a fresh device equals the logged device"
else
	ktap_fail "logreplay: the whole log replayed onto a fresh device equals the logged device" \
		"replay md5 $(dev_md5 "$REPLAY"), logged device md5 $(dev_md5 "$DATA") (a replayer bug, or overlapping writes in flight at once: the log orders completions)"
fi
ktap_diag "full replay: $((SECONDS - T0)) s"

# --- replay points -------------------------------------------------------------

if ! dm_create $CHK-meta "0 $META_SECT linear $CHKD 0" ||
   ! dm_create $CHK-dest "0 $LEN linear $CHKD $META_SECT"; then
	ktap_diag "cannot map the check slices: $DM_ERR"
fi
cleanup_add "dm_exists $CHK && _dm_remove_hard $CHK"

cat >"$TEST_TMP/check.py" <<'PY'
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
A = dict(a.split("=", 1) for a in sys.argv[1:])
sys.path.insert(0, A["dir"])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logreplay
from logreplay import DISCARD
from crashlib import read_dev, write_dev, decode, pattern, pattern_range, SECT

RS, LEN, NR = int(A["rs"]), int(A["len"]), int(A["nr"])
META = int(A["meta_sect"])
RB = RS * SECT
MB = META * SECT                # the metadata slice, bytes
MD = 3 * 4096                   # the metadata blocks in use (256 regions)
geo = dict(region_size=RS, target_size=LEN, nr_regions=NR, origin_size=LEN,
           dest_size=LEN)
res = open(A["results"], "w")
diag_count = {}
failed = set()
counts = {}


def say(line):
    print("# " + line, flush=True)


def diag(key, line):
    n = diag_count.get(key, 0)
    diag_count[key] = n + 1
    if n < 10:
        res.write("D %s %s\n" % (key, line))
    elif n == 10:
        res.write("D %s (further failures not shown)\n" % key)


def fail(key, line):
    failed.add(key)
    diag(key, line)


log = logreplay.Log(A["log"])
E = log.entries
writes = json.load(open(A["writes"]))["writes"]
mark_at = {e.mark: e.index for e in E if e.mark is not None}
ack_idx = [mark_at.get("w%03d" % w["i"]) if w["acked"] else None
           for w in writes]
origin = read_dev(A["orig"], LEN * SECT)


def regions_of(sector, nsect):
    return range(sector // RS, (sector + nsect - 1) // RS + 1)


w_regions = [set(regions_of(w["sector"], w["nsect"])) for w in writes]

# ---- the log's shape ---------------------------------------------------------
SB_END = 8                  # metadata block 0, in sectors
SLOT_END = 8 * 3            # blocks 1-2: the two slots of bitmap block 0


def touches(e, lo, hi):
    return e.writes_data() and e.sector < hi and e.sector + e.nr_sectors > lo


def what_entry(e):
    if e.mark is not None:
        return "MARK %s" % e.mark
    f = logreplay.flag_names(e.flags)
    if not e.nr_sectors:
        return f
    if e.sector < SB_END:
        where = "superblock"
    elif e.sector < SLOT_END:
        where = "bitmap slot %d" % ((e.sector - SB_END) // 8)
    elif e.sector < META:
        where = "metadata sector %d" % e.sector
    else:
        rr = regions_of(e.sector - META, e.nr_sectors)
        where = "destination region %d%s" % (
            rr[0], "-%d" % rr[-1] if len(rr) > 1 else "")
    return "%s %s" % (f, where)


points = [e.index for e in E if e.is_point()]
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


def spread(items, m):
    if m <= 0 or not items:
        return []
    if len(items) <= m:
        return list(items)
    if m == 1:
        return [items[len(items) // 2]]
    return sorted({items[round(i * (len(items) - 1) / (m - 1))]
                   for i in range(m)})


# Sampled FLUSH/FUA points for the target checks: the format phase, the end,
# and evenly spaced mid-commit, commit and data points.
maxp = int(A["max_points"])
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
sample_prefix = set(sorted(chosen)[:max(maxp, 2)])

last_pt_before = {}
lp = None
for e in E:
    last_pt_before[e.index] = lp
    if e.is_point():
        lp = e.index
# Reordered states: every superblock write that is not itself a FLUSH/FUA
# point, on top of the state at the last point before it.
reorder_all = [e.index for e in E if touches(e, 0, SB_END)
               and not e.is_point() and last_pt_before[e.index] is not None]
sample_reorder = set(spread(reorder_all, int(A["max_reorder"])))
# Torn states: every metadata block write, first sector only or all but it.
torn_all = [(e.index, how) for e in E
            if touches(e, 0, SLOT_END) and e.nr_sectors >= 2
            for how in ("head", "tail")]
sample_torn = set(spread(torn_all, int(A["max_torn"])))
torn_by = {}
for t, how in torn_all:
    torn_by.setdefault(t, []).append(how)

nstatic = sum(1 for e in E if e.writes_data() or e.mark is not None
              or e.flags & DISCARD)
say("log: %d entries, %d FLUSH/FUA points (format %d, mid-commit %d, "
    "commit %d, data %d), %d superblock writes outside points, %d metadata "
    "block writes" % (len(E), len(points),
                      sum(1 for p in points if cls[p] == "format"),
                      sum(1 for p in points if cls[p] == "mid-commit"),
                      sum(1 for p in points if cls[p] == "commit"),
                      sum(1 for p in points if cls[p] == "data"),
                      len(reorder_all), len(torn_all) // 2))
say("static checks: %d prefix, %d reordered, %d torn states; target checks: "
    "%d prefix, %d reordered, %d torn"
    % (nstatic, len(reorder_all), len(torn_all), len(sample_prefix),
       len(sample_reorder), len(sample_torn)))

# ---- the expected content model ----------------------------------------------
# Writes are sequential: write i+1 is issued after write i returned (and,
# when it was acknowledged, after its mark w<i> was logged). In a state whose
# history is the entries before index X, let j be the last write whose mark
# precedes X: writes up to j that were acknowledged must show (later ones
# over earlier ones) on top of the origin; write j+1 may be in flight and a
# write that returned an error may or may not have landed: each sector of
# those may show the new or the old data.

base = bytearray(origin)
base_j = -1
model_ver = [0] * NR


def last_acked(x):
    j = -1
    for i, idx in enumerate(ack_idx):
        if idx is not None and idx < x:
            j = i
    return j


def advance(j):
    global base_j
    while base_j < j:
        base_j += 1
        w = writes[base_j]
        if ack_idx[base_j] is not None:
            base[w["sector"] * SECT:(w["sector"] + w["nsect"]) * SECT] = \
                pattern_range(w["i"], w["sector"], w["nsect"])
        for r in w_regions[base_j]:
            model_ver[r] += 1


def covers(w, s):
    return w["sector"] <= s < w["sector"] + w["nsect"]


def maybe_writes(j, s):
    out = []
    if j + 1 < len(writes) and covers(writes[j + 1], s):
        out.append(j + 1)
    for m in range(j, -1, -1):
        if not covers(writes[m], s):
            continue
        if ack_idx[m] is not None:
            break
        out.append(m)
    return out


def what(sec, sector):
    if sec == origin[sector * SECT:(sector + 1) * SECT]:
        return "origin"
    if sec.startswith(b"dm-stream crash01 w="):
        try:
            i = int(sec[20:23])
            s = int(sec[31:39])
            return "w%03d" % i + ("" if s == sector else "(of sector %d)" % s)
        except ValueError:
            pass
    if not any(sec):
        return "zeros"
    for off in (-RS, RS):
        o = sector + off
        if 0 <= o < LEN and sec == origin[o * SECT:(o + 1) * SECT]:
            return "origin sector %d" % o
    return "unknown data"


def expect_name(sector, j):
    for i in range(j, -1, -1):
        if ack_idx[i] is not None and covers(writes[i], sector):
            return "w%03d" % i
    return "origin"


def region_ok(r, got, j):
    """None when region r's bytes (got) are allowed, else a description."""
    lo = r * RB
    if got == base[lo:lo + RB]:
        return None
    for n in range(RS):
        s = r * RS + n
        g = bytes(got[n * SECT:(n + 1) * SECT])
        if g == base[s * SECT:(s + 1) * SECT]:
            continue
        maybe = maybe_writes(j, s)
        if any(g == pattern(m, s) for m in maybe):
            continue
        alt = "".join(" or w%03d (%s)" % (m, "in flight" if m == j + 1
                                          else "failed") for m in maybe)
        nbad = sum(1 for nn in range(n, RS)
                   if got[nn * SECT:(nn + 1) * SECT] !=
                   base[(r * RS + nn) * SECT:(r * RS + nn + 1) * SECT])
        return ("region %d sector %d (+%d): %s, expected %s%s "
                "(%d sectors from there differ from the acknowledged state)"
                % (r, s, n, what(g, s), expect_name(s, j), alt, nbad))
    return None


# ---- static checks: the replayed image against the model -------------------
_decoded = {}


def decode_md(meta):
    key = bytes(meta[0:MD])
    d = _decoded.get(key)
    if d is None:
        d = decode(bytes(meta[0:MB]), geo)
        if len(_decoded) > 256:
            _decoded.clear()
        _decoded[key] = d
    return d


dest_ver = [0] * NR             # bumped when the live image's region changes
ok_cache = {}                   # region -> key under which it was verified
last_good = None                # committed state of the previous prefix state


def region_key(r, j):
    nxt = j + 1 if j + 1 < len(writes) and r in w_regions[j + 1] else -1
    return (dest_ver[r], model_ver[r], nxt)


def static(label, kind, meta, dest, x, live):
    """Checks one crash state: meta holds the metadata slice, dest the
    destination slice, x the first log index not in its history. live: dest
    is the live replay image (region results can be cached)."""
    global last_good
    key = {"prefix": None, "reorder": "reorder", "torn": "torn"}[kind]
    K = (lambda k: key or k)
    counts[kind] = counts.get(kind, 0) + 1
    j = last_acked(x)
    advance(j)
    md = decode_md(meta)
    if md["state"] == "invalid":
        fail(K("meta"), "%s: metadata torn/inconsistent: %s"
             % (label, md["reason"]))
        return md, j
    copied = md["copied"]
    # Every committed region holds allowed data on the destination.
    bad = 0
    for r in range(NR):
        if not copied[r]:
            continue
        if live:
            rk = region_key(r, j)
            if ok_cache.get(r) == rk:
                continue
        d = region_ok(r, dest[r * RB:(r + 1) * RB], j)
        if d:
            bad += 1
            if bad <= 2:
                fail(K("dest"), "%s: committed (transaction %d) but on the "
                     "destination: %s" % (label, md["tid"], d))
        elif live:
            ok_cache[r] = rk
    if bad > 2:
        fail(K("dest"), "%s: %d committed regions wrong on the destination"
             % (label, bad))
    # Every region an acknowledged write touched is committed.
    lost = []
    for i in range(j + 1):
        if ack_idx[i] is None:
            continue
        for r in sorted(w_regions[i]):
            if not copied[r]:
                lost.append("w%03d (mark at entry %d) region %d"
                            % (i, ack_idx[i], r))
    if lost:
        fail(K("acked"), "%s: acknowledged but not committed (metadata %s%s): "
             "%s" % (label, md["state"], ", transaction %d, %d copied"
                     % (md["tid"], md["nr_copied"]) if md["state"] == "valid"
                     else "", "; ".join(lost[:4])
                     + (" and %d more" % (len(lost) - 4) if len(lost) > 4
                        else "")))
    # Along the prefix states, the committed state only grows.
    if kind == "prefix":
        if last_good is not None:
            plabel, ptid, pcopied = last_good
            if md["tid"] < ptid:
                fail("mono", "%s: transaction %d (%s) after %d at %s"
                     % (label, md["tid"], md["state"], ptid, plabel))
            else:
                gone = [r for r in range(NR) if pcopied[r] and not copied[r]]
                if gone:
                    fail("mono", "%s: regions %s committed at %s are no "
                         "longer marked" % (label, gone[:8], plabel))
        last_good = (label, md["tid"], copied)
    return md, j


# ---- target checks: build the stream target over the replayed state ---------
def dmsetup(*args):
    return subprocess.run(("dmsetup",) + args, capture_output=True,
                          text=True, timeout=60)


def target(label, image, md, j):
    counts["target"] = counts.get("target", 0) + 1
    t0 = time.monotonic()
    write_dev(A["chk"], image)
    table = "0 %d stream %s %s %s %d 1 paused" % (
        LEN, A["chk_meta"], A["chk_dest"], A["orig"], RS)
    with open("/dev/kmsg", "w") as k:
        k.write("dm-stream selftest: crash01 %s\n" % label)
    r = dmsetup("create", A["chk_name"], "--table", table)
    created = r.returncode == 0
    err = r.stderr.strip()
    st, got = None, None
    if created:
        st = dmsetup("status", A["chk_name"]).stdout.split()
        try:
            got = read_dev("/dev/mapper/" + A["chk_name"], LEN * SECT)
        except OSError as e:
            fail("read", "%s: read through the target failed: %s" % (label, e))
        if dmsetup("remove", A["chk_name"]).returncode:
            time.sleep(0.5)
            dmsetup("remove", "--retry", A["chk_name"])
    else:
        kl = subprocess.run(["sh", "-c", "dmesg | grep -E 'device-mapper' | "
                             "tail -n 2"], capture_output=True,
                            text=True).stdout.strip().replace("\n", " | ")
        err = "%s; kernel: %s" % (err, kl)
    summary = "%s: %s, metadata %s" % (
        label, "acked through w%03d" % j if j >= 0 else "nothing acked",
        md["state"])
    if md["state"] == "valid":
        summary += " (transaction %d, %d copied%s)" % (
            md["tid"], md["nr_copied"], ", a newer uncommitted slot"
            if md["newer_slots"] else "")
    if md["state"] == "invalid":
        if created:
            fail("ctr", "%s: the target ACCEPTED torn metadata (%s); status %s"
                 % (label, md["reason"], " ".join(st[3:] if st else [])))
        else:
            diag("ctr", "%s: the target refused the torn metadata: %s"
                 % (label, err))
    elif not created:
        fail("ctr", "%s: the target refused %s metadata: %s"
             % (label, md["state"], err))
    if created and md["state"] != "invalid":
        info = st[3:] if st else []
        want_c = md["nr_copied"]
        want_state = "complete" if want_c == NR else "paused"
        try:
            c, t = info[3].split("/")
            ok = (int(info[2]) == RS and int(c) == want_c and int(t) == NR
                  and info[4] == "0" and info[5] == want_state and
                  info[6] == "rw" and info[7] == "0")
        except (IndexError, ValueError):
            ok = False
        summary += ", status %s" % (info[3] if len(info) > 3 else "?")
        if not ok:
            fail("count", "%s: status '%s', expected %d/%d copied, 0 copying, "
                 "%s rw 0 errors" % (label, " ".join(info), want_c, NR,
                                     want_state))
    if got is not None:
        bad = 0
        for r in range(NR):
            d = region_ok(r, got[r * RB:(r + 1) * RB], j)
            if d:
                bad += 1
                if bad <= 3:
                    fail("read", "%s: read through the target: %s"
                         % (label, d))
        if bad > 3:
            fail("read", "%s: %d regions read wrong in all" % (label, bad))
        summary += ", reads %s" % ("ok" if not bad else "%d regions bad" % bad)
    say("%s (%.1f s)" % (summary, time.monotonic() - t0))


# ---- replay once, in memory ---------------------------------------------------
size = int(A["data_sect"]) * SECT
img = bytearray(size)
mv = memoryview(img)
reorder_set = set(reorder_all)
snap_users = {}
for e in reorder_all:
    f = last_pt_before[e]
    snap_users[f] = snap_users.get(f, 0) + 1
snaps = {}
t_start = time.monotonic()
for e in E:
    x = e.index
    for how in torn_by.get(e.index, []):
        meta = bytearray(img[0:MB])
        d = log.data(e)
        off = e.sector * SECT
        if how == "head":
            meta[off:off + SECT] = d[0:SECT]
        else:
            meta[off + SECT:off + len(d)] = d[SECT:]
        label = "torn entry %d (%s, %s)" % (
            e.index, what_entry(e), "first sector only" if how == "head"
            else "all but the first sector")
        md, j = static(label, "torn", meta, mv[MB:], x, True)
        if (e.index, how) in sample_torn:
            full = bytearray(img)
            full[0:MB] = meta
            target(label, full, md, j)
    if e.index in reorder_set:
        f = last_pt_before[e.index]
        snap = snaps[f]
        snap_users[f] -= 1
        if not snap_users[f]:
            del snaps[f]
        meta = bytearray(snap[0:MB])
        logreplay.apply(meta, log, e)
        label = "reorder: point %d + superblock entry %d" % (f, e.index)
        md, j = static(label, "reorder", meta, memoryview(snap)[MB:], x,
                       False)
        if e.index in sample_reorder:
            full = bytearray(snap)
            full[0:MB] = meta
            target(label, full, md, j)
    logreplay.apply(img, log, e)
    if e.writes_data() and e.sector + e.nr_sectors > META:
        for r in regions_of(max(e.sector, META) - META,
                            e.sector + e.nr_sectors - max(e.sector, META)):
            dest_ver[r] += 1
    if e.index in snap_users:
        snaps[e.index] = bytes(img)
    if e.writes_data() or e.mark is not None or e.flags & DISCARD or \
            e.index in sample_prefix:
        label = "entry %d (%s)" % (e.index, what_entry(e))
        if e.index in sample_prefix:
            label = "point %d (%s, %s)" % (
                e.index, logreplay.flag_names(e.flags), cls[e.index])
        md, j = static(label, "prefix", mv[0:MB], mv[MB:], x + 1, True)
        if e.index in sample_prefix:
            target(label, img, md, j)
del mv

# ---- the end of the log is the logged device ----------------------------------
data = read_dev(A["data"], size)
if bytes(img) != data:
    first = next(i for i in range(0, size, SECT)
                 if img[i:i + SECT] != data[i:i + SECT])
    fail("final", "in-memory replay of the whole log differs from the logged "
         "device, first at sector %d (overlapping writes in flight at once "
         "land in an order the log cannot show)" % (first // SECT))

for key in ("final", "meta", "dest", "acked", "mono", "reorder", "torn",
            "ctr", "count", "read"):
    res.write("R %s %s\n" % (key, "fail" if key in failed else "ok"))
res.write("N points %d prefix %d reorder %d torn %d target %d\n"
          % (len(points), counts.get("prefix", 0), counts.get("reorder", 0),
             counts.get("torn", 0), counts.get("target", 0)))
res.close()
say("replay checks: %.0f s" % (time.monotonic() - t_start))
PY

RES=$TEST_TMP/results
T0=$SECONDS
python3 -B "$TEST_TMP/check.py" dir="$DIR" log="$LOG" writes="$TEST_TMP/writes.json" \
	orig="$ORIG" data="$DATA" chk="$CHKD" \
	chk_meta="$(dm_dev $CHK-meta)" chk_dest="$(dm_dev $CHK-dest)" \
	chk_name=$CHK rs=$RS len=$LEN nr=$NR meta_sect=$META_SECT \
	data_sect=$DATA_SECT max_points="${CRASH_POINTS:-24}" \
	max_reorder="${CRASH_REORDER:-6}" max_torn="${CRASH_TORN:-4}" \
	results="$RES"
CHECK_RC=$?
ktap_diag "replay checks: $((SECONDS - T0)) s (checker exit $CHECK_RC)"

# report KEY DESC: one KTAP line from the checker's verdict on KEY.
report()
{
	local verdict
	verdict=$(awk -v k="$1" '$1 == "R" && $2 == k {print $3}' "$RES" 2>/dev/null)
	if [[ $verdict == ok ]]; then
		ktap_ok "$2"
	elif [[ $verdict == fail ]]; then
		ktap_fail "$2"
	else
		ktap_fail "$2" "the checker did not report (exit $CHECK_RC)"
	fi
	awk -v k="$1" '$1 == "D" && $2 == k {$1 = ""; $2 = ""; sub(/^  /, ""); print}' \
		"$RES" 2>/dev/null | while IFS= read -r l; do echo "# $l"; done
}

read -r _ _ NPTS _ NPRE _ NREO _ NTORN _ NTGT < <(grep '^N ' "$RES" 2>/dev/null)
report final "replay: the in-memory replay of the whole log equals the logged device"
report meta "${NPRE:-?} prefix states (every log entry; ${NPTS:-?} FLUSH/FUA points): metadata blank or valid, never torn"
report dest "${NPRE:-?} prefix states: committed regions hold origin or acknowledged data on the destination"
report acked "${NPRE:-?} prefix states: every region an acknowledged write touched is committed"
report mono "${NPRE:-?} prefix states: the committed transaction and bitmap only grow"
report reorder "${NREO:-?} superblock writes overtaking their epoch: metadata valid, committed and acknowledged data intact"
report torn "${NTORN:-?} torn metadata block writes: metadata valid, committed and acknowledged data intact"
report ctr "${NTGT:-?} sampled states: the target constructs (paused) over the replayed slices"
report count "${NTGT:-?} sampled states: status copied count equals the committed bitmap"
report read "${NTGT:-?} sampled states: reads through the target give origin or acknowledged data"
if [[ $KTAP_FAIL -gt 0 ]]; then
	python3 -B "$DIR/logreplay.py" --log "$LOG" --list \
		>"$TEST_OUT/$TEST_NAME.entries" 2>&1 &&
		ktap_diag "log entries saved in $TEST_OUT/$TEST_NAME.entries"
fi
ktap_skip "blktrace: destination flush completes before the superblock write" \
	"one shared log cannot show it; needs blktrace on separate devices (optional, not run)"

ktap_finish
