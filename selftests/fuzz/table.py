# SPDX-License-Identifier: GPL-2.0
"""Table lines for `dmsetup create`, and a model of what must happen to each.

The model is the constructor as the admin guide describes it (Constructor,
Metadata), checked in the order of dm-stream's stream_ctr(): argument count,
the three devices (opened in order, then compared), region size, optional
arguments, geometry (origin, destination, logical blocks, number of regions,
metadata size), then the metadata (blank: formatted; else its superblock
must match the table). Around it, what dm core does to every table: a zero or
too large length is refused before the constructor, and after it the length
must be a multiple of the destination's and origin's logical block size.
"""

import re

from .devices import JUNK_DEVICES
from .util import (U32_MAX, U64_MAX, KernelLog, Totals, case_rng, core_table_errors, decimal,
                   number_token, read_tsv, split_args, stream_table_errors)

MIN_RS, MAX_RS = 8, 2097152
MAX_REGIONS = 1 << 31
BITS_PER_BLOCK = 32576
MAX_OPT_WORDS = 13
DEFAULT_MAX_INFLIGHT = 256
LLONG_MAX = (1 << 63) - 1

E_ARGC = "Invalid argument count"
E_OPEN = "Error opening %s device"
E_SAME = "The metadata, destination and origin devices must all differ"
E_RS = "Invalid region size: expected a power of two from 8 to 2097152 sectors"
E_NOPT = "Invalid number of optional arguments"
E_RATE = "Invalid rate: expected KiB/s as an unsigned 32-bit number"
E_MAXIF = "Invalid max_inflight: expected 1 to 1024 regions"
E_MINRATE = "Invalid min_rate: expected KiB/s as an unsigned 32-bit number"
E_MAXRATE = "Invalid max_rate: expected KiB/s as an unsigned 32-bit number"
NUMBER_OPTS = {"rate": (0, U32_MAX, E_RATE), "max_inflight": (1, 1024, E_MAXIF),
               "min_rate": (0, U32_MAX, E_MINRATE), "max_rate": (0, U32_MAX, E_MAXRATE)}
FLAG_OPTS = ("paused", "no_discard_passdown", "copy_on_read", "skip_zeroes")
E_UNKNOWN = "Unknown optional argument"
E_TRAIL = "Too many arguments: trailing words after the optional arguments"
E_ORIGIN = "Origin device is shorter than the target"
E_DEST = "Destination device is shorter than the target"
E_LBS = "Region size is not a multiple of a device's logical block size"
E_NREG = "Too many regions: use a larger region size"
E_META = "Metadata device too small (the log line above says how many sectors are needed)"
E_GEO = "Metadata was formatted for another %s"

UNKNOWN_WORDS = ["pause", "continue", "discard_passdown", "rate=5", "paused=1",
                 "max-inflight", "no_discard", "foo", "maxinflight", "paused,",
                 "-paused", "rates", "\u00e9", "1", "0"]


def metadata_sectors(nr_regions):
    return 8 * (1 + 2 * -(-nr_regions // BITS_PER_BLOCK))


def is_pow2(v):
    return v > 0 and not v & (v - 1)


class Outcome:
    """What the model expects. kind: accept, refuse (the constructor's
    error), core (dm core's error), unknown (the metadata's state is not
    known after an earlier surprise)."""

    def __init__(self, kind, msg="", fmt=None, meta=None):
        self.kind, self.msg, self.fmt, self.meta = kind, msg, fmt, meta
        self.status = None        # expectations for an accepted line
        self.taint = []           # metadata devices whose content is now unknown

    def __repr__(self):
        return "%s%s" % (self.kind, ": " + self.msg if self.msg else "")


def parse_opts(words):
    """The optional argument group, as the rst says. Returns (error, opts)."""
    opts = {"paused": False, "rate": 0, "max_inflight": DEFAULT_MAX_INFLIGHT,
            "no_discard_passdown": False, "mirror": False, "min_rate": 0, "max_rate": 0,
            "copy_on_read": False, "skip_zeroes": False}
    if not words:
        return None, opts
    cnt = decimal(words[0])
    rest = words[1:]
    if cnt is None or cnt > MAX_OPT_WORDS or cnt > len(rest):
        return E_NOPT, None
    group, trailing = rest[:cnt], rest[cnt:]
    i = 0
    while i < len(group):
        w = ascii_lower(group[i])
        i += 1
        if w in FLAG_OPTS:
            opts[w] = True
        elif w == "mirror":
            # Not generated: whether a mirror table loads depends on the
            # metadata's stale flag, which the model does not follow.
            opts["mirror"] = True
        elif w in NUMBER_OPTS:
            lo, hi, err = NUMBER_OPTS[w]
            v = decimal(group[i]) if i < len(group) else None
            if v is None or not lo <= v <= hi:
                return err, None
            opts[w] = v
            i += 1
        else:
            return E_UNKNOWN, None
    if trailing:
        return E_TRAIL, None
    return None, opts


def ascii_lower(s):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def opt_words(opts):
    """The optional arguments as the status shows them."""
    w = []
    if opts["paused"]:
        w.append("paused")
    if opts["rate"]:
        w += ["rate", str(opts["rate"])]
    if opts["max_inflight"] != DEFAULT_MAX_INFLIGHT:
        w += ["max_inflight", str(opts["max_inflight"])]
    if opts["no_discard_passdown"]:
        w.append("no_discard_passdown")
    if opts.get("mirror"):
        w.append("mirror")
    for k in ("min_rate", "max_rate"):
        if opts.get(k):
            w += [k, str(opts[k])]
    for k in ("copy_on_read", "skip_zeroes"):
        if opts.get(k):
            w.append(k)
    return [str(len(w))] + w


def predict(line, inv, state):
    """The model. @state maps a metadata device name to None (blank), a
    geometry tuple (region size, length, origin size, destination size) or
    "unknown"."""
    w = line.split(None, 3)
    length = min(decimal(w[1]), U64_MAX)   # dmsetup's %llu saturates
    params = w[3] if len(w) > 3 else ""
    if length == 0:
        return Outcome("core", "zero-length target")
    if length > LLONG_MAX >> 9:
        return Outcome("core", "too large device")
    args = split_args(params)
    if len(args) < 4:
        return Outcome("refuse", E_ARGC)
    devs = []
    for word, role in zip(args[:3], ("metadata", "destination", "origin")):
        d, _ = inv.resolve(word)
        if d is None:
            return Outcome("refuse", E_OPEN % role)
        devs.append(d)
    meta, dest, origin = devs
    if meta is dest or meta is origin or dest is origin:
        return Outcome("refuse", E_SAME)
    rs = decimal(args[3])
    if rs is None or not MIN_RS <= rs <= MAX_RS or not is_pow2(rs):
        return Outcome("refuse", E_RS)
    err, opts = parse_opts(args[4:])
    if err:
        return Outcome("refuse", err)
    if origin.sectors < length:
        return Outcome("refuse", E_ORIGIN)
    if dest.sectors < length:
        return Outcome("refuse", E_DEST)
    if any(rs % (d.lbs // 512) for d in devs):
        return Outcome("refuse", E_LBS)
    nr = -(-length // rs)
    if nr > MAX_REGIONS:
        return Outcome("refuse", E_NREG)
    need = metadata_sectors(nr)
    if meta.sectors < need:
        return Outcome("refuse", E_META)
    geo = (rs, length, origin.sectors, dest.sectors)
    if meta.role != "meta" or "meta" in (dest.role, origin.role):
        # A data device formatted, or a metadata device streamed into: the
        # model keeps no picture of either.
        o = Outcome("unknown", "device roles mixed", meta=meta.name)
        o.taint = [d.name for d in devs if d.role == "meta"]
        return o
    st = None if meta.kind == "zero" else state.get(meta.name)
    if st == "unknown":
        return Outcome("unknown", "metadata state unknown", meta=meta.name)
    if st is not None:
        for i, what in enumerate(("region size", "target length", "origin size",
                                  "destination size")):
            if st[i] != geo[i]:
                return Outcome("refuse", E_GEO % what, meta=meta.name)
    fmt = geo if meta.kind != "zero" else None
    for d in (dest, origin):
        if length % (d.lbs // 512):
            o = Outcome("core", "len=%d not aligned to h/w logical block size %d"
                        % (length, d.lbs), fmt=fmt, meta=meta.name)
            return o
    o = Outcome("accept", fmt=fmt, meta=meta.name)
    o.status = {"used": need // 8, "total": meta.sectors // 8, "rs": rs, "nr": nr,
                "opts": opt_words(opts), "blank": st is None}
    return o


# --- generation -------------------------------------------------------------

def _pick_form(rng, dev):
    forms = dev.forms()
    return forms[0] if rng.random() < 0.6 else rng.choice(forms)


def _gen_opts(rng):
    words = []
    choices = ["paused", "rate", "max_inflight", "no_discard_passdown", "min_rate", "max_rate",
               "copy_on_read", "skip_zeroes"]
    for c in rng.sample(choices, rng.randint(0, 5)):
        if c in ("rate", "min_rate", "max_rate"):
            words += [c, str(rng.choice([0, 1, 1024, 51200, U32_MAX,
                                         rng.randint(0, U32_MAX)]))]
        elif c == "max_inflight":
            words += [c, str(rng.choice([1, 2, 16, 64, 256, 1023, 1024,
                                         rng.randint(1, 1024)]))]
        else:
            words.append(c)
    if rng.random() < 0.1 and words:
        words.append(rng.choice(["paused", "no_discard_passdown", "copy_on_read"]))  # a repeat
    return [w.upper() if rng.random() < 0.15 and not w.isdigit() else w for w in words]


def generate(seed, n, inv):
    """Case @n: (description of the mutations, table line, metadata device name
    or "-")."""
    rng = case_rng(seed, "table", n)
    metas, datas = inv.role("meta"), inv.role("data")
    small = [d for d in datas if d.kind != "zero"]
    zeros = [d for d in datas if d.kind == "zero"]
    big = [d for d in metas if d.sectors >= 1024]
    meta = rng.choice(big if big and rng.random() < 0.8 else metas)
    dest, origin = rng.sample(small, 2)
    what = []
    if zeros and rng.random() < 0.12:
        dest, origin = rng.sample(zeros, 2) if len(zeros) > 1 else (zeros[0], rng.choice(small))
        if rng.random() < 0.5:
            dest, origin = origin, dest
        what.append("huge")
    lim = min(dest.sectors, origin.sectors)
    align = max(dest.lbs, origin.lbs) // 512
    r = rng.random()
    if "huge" in what:
        length = rng.choice([MAX_REGIONS * 8, MAX_REGIONS * 8 + 1, 1 << 34, lim,
                             rng.randint(1 << 20, lim)])
    elif r < 0.3:
        length = lim
    elif r < 0.7:
        length = rng.randint(1, lim)
    else:
        length = max(1, lim - rng.randint(0, 4096))
    if align > 1 and rng.random() < 0.9:
        length = max(align, length - length % align)
    rs = 1 << rng.randint(3, 21)
    if "huge" in what:
        rs = rng.choice([8, 16, 1 << rng.randint(3, 21)])
    opts = _gen_opts(rng)
    if length > 1 << 17 and "paused" not in [o.lower() for o in opts]:
        # Never let a large target stream: removing it would wait for the
        # copies in flight (up to max_inflight regions of up to 1 GiB).
        opts.insert(0, "paused")
    dev_words = [_pick_form(rng, d) for d in (meta, dest, origin)]
    rs_word = str(rs)
    count_word = str(len(opts)) if opts or rng.random() < 0.3 else None
    trailing = []
    argc = None

    nmut = 0 if rng.random() < 0.35 else rng.choice([1, 1, 1, 2, 2, 3])
    for _ in range(nmut):
        m = rng.choice(["argc", "dev_junk", "dev_same", "region", "region", "region",
                        "length", "length", "length_huge", "count", "count", "unknown",
                        "value", "value", "value", "missing_value", "trailing", "too_many",
                        "meta_small", "unaligned", "stale"])
        what.append(m)
        if m == "argc":
            argc = rng.randint(0, 3)
        elif m == "dev_junk":
            dev_words[rng.randrange(3)] = rng.choice(JUNK_DEVICES)
        elif m == "dev_same":
            i, j = rng.sample(range(3), 2)
            d, _ = inv.resolve(dev_words[j])
            dev_words[i] = _pick_form(rng, d) if d else dev_words[j]
        elif m == "region":
            rs_word = number_token(rng, [0, 1, 2, 4, 7, 8, 9, 12, 24, 100, 127, 128,
                                         129, 4096, MAX_RS, MAX_RS + 1, MAX_RS * 2,
                                         3 << 20], MIN_RS, MAX_RS)
        elif m == "length":
            length = rng.choice([lim + 1, lim + 8, lim + align, lim * 2, 1, 7, 8, 4095,
                                 max(d.sectors for d in datas)])
        elif m == "length_huge":
            length = rng.choice([0, LLONG_MAX >> 9, (LLONG_MAX >> 9) + 1, 1 << 63,
                                 U64_MAX, U64_MAX + 1, rng.getrandbits(64)])
        elif m == "count":
            count_word = number_token(rng, [len(opts) - 1, len(opts) + 1, 7, 0, 6],
                                      0, MAX_OPT_WORDS)
        elif m == "unknown":
            opts.insert(rng.randint(0, len(opts)), rng.choice(UNKNOWN_WORDS))
            count_word = str(len(opts))
        elif m == "value":
            key = rng.choice(["rate", "max_inflight", "min_rate", "max_rate"])
            lo, hi = NUMBER_OPTS[key][:2]
            at = rng.randint(0, len(opts))
            opts[at:at] = [key, number_token(rng, [lo, hi, hi + 1, 0, 256, 64], lo, hi)]
            count_word = str(len(opts))
        elif m == "missing_value":
            opts.append(rng.choice(["rate", "max_inflight", "RATE", "min_rate", "max_rate"]))
            count_word = str(len(opts))
        elif m == "trailing":
            trailing = rng.choice([["x"], ["paused"], ["1"], ["rate", "5"], ["0"]])
            count_word = count_word or str(len(opts))
        elif m == "too_many":
            opts = ["paused"] * rng.randint(MAX_OPT_WORDS, MAX_OPT_WORDS + 2)
            count_word = str(len(opts))
        elif m == "meta_small":
            dev_words[0] = _pick_form(rng, min(metas, key=lambda d: d.sectors))
        elif m == "unaligned":
            length = length - length % 8 + rng.randint(1, 7)
        elif m == "stale":
            pass                  # gen_main keeps the metadata as it is

    args = dev_words + [rs_word]
    if count_word is not None:
        args += [count_word] + opts + trailing
    if argc is not None:
        args = args[:argc]
    line = "0 %d stream %s" % (length, " ".join(args))
    md, _ = inv.resolve(dev_words[0]) if argc is None or argc >= 1 else (None, None)
    meta_name = md.name if md is not None and md.role == "meta" else "-"
    return ",".join(what) or "plain", line, meta_name


def gen_main(args, inv):
    """Writes the cases: n, mutations, metadata device to blank first (or -),
    table line. The generator keeps its own picture of the metadata devices
    (the model's), and asks for a blank device in most cases where the model
    expects it formatted."""
    state = {}
    out = []
    for n in range(args.first, args.first + args.count):
        what, line, meta = generate(args.seed, n, inv)
        rng = case_rng(args.seed, "table-blank", n)
        blank = meta if meta != "-" and state.get(meta) is not None and \
            "stale" not in what.split(",") and rng.random() < 0.9 else "-"
        if blank != "-":
            state[blank] = None
        o = predict(line, inv, state)
        if o.fmt is not None and o.kind in ("accept", "core"):
            state[o.meta] = o.fmt
        for t in o.taint:
            state[t] = "unknown"
        out.append("%d\t%s\t%s\t%s\t%s" % (n, what, meta, blank, line))
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")


# --- judging ----------------------------------------------------------------

def check_status(o, status):
    """Problems with an accepted line's status, as a list of strings."""
    s = o.status
    f = status.split()[3:]
    if len(f) < 10:
        return ["status too short: %r" % status]
    bad = []
    if f[0] != "8":
        bad.append("metadata block size %s, expected 8" % f[0])
    if f[1] != "%d/%d" % (s["used"], s["total"]):
        bad.append("metadata blocks %s, expected %d/%d" % (f[1], s["used"], s["total"]))
    if f[2] != str(s["rs"]):
        bad.append("region size %s, expected %d" % (f[2], s["rs"]))
    try:
        copied, nr = (int(x) for x in f[3].split("/"))
        copying, errors = int(f[4]), int(f[7])
    except ValueError:
        return bad + ["unparsable counts in %r" % status]
    paused = "paused" in s["opts"]
    if nr != s["nr"] or copied > nr:
        bad.append("regions %s, expected ?/%d" % (f[3], s["nr"]))
    if s["blank"] and paused and copied:
        bad.append("%d regions copied on fresh metadata while paused" % copied)
    if copying < 0 or errors:
        bad.append("copying %d, copy errors %d" % (copying, errors))
    if paused:
        want = {"complete"} if copied == nr else {"paused"}
    else:
        want = {"complete"} if copied == nr else {"streaming", "complete"}
    if f[5] not in want:
        bad.append("state %s, expected %s" % (f[5], "/".join(sorted(want))))
    if f[6] != "rw":
        bad.append("mode %s, expected rw" % f[6])
    if f[8] != ("mirror" if "mirror" in s["opts"] else "one-way"):
        bad.append("mirror field %s" % f[8])
    if f[9:] != s["opts"]:
        bad.append("opt args '%s', expected '%s'" % (" ".join(f[9:]), " ".join(s["opts"])))
    return bad


def hint(line):
    """A likely cause when the kernel accepted a line the model refuses."""
    args = split_args(line.split(None, 3)[3]) if len(line.split()) > 3 else []
    if len(args) > 4:
        v = decimal(args[4])
        if v is not None and v > U32_MAX:
            return ("opt-arg count %s is read modulo 2^64, then 2^32 (dm_read_arg_group: "
                    "%%u)" % args[4])
    for w in args[3:]:
        v = decimal(w)
        if v is not None and v > U64_MAX:
            return "%s is past 2^64 and read modulo 2^64 (vsscanf %%llu wraps)" % w
    return ""


def judge(o, res, log_lines):
    """(category, problem or "") for one executed case. res: the result row."""
    rc, status, rm_rc, left = int(res["rc"]), res["status"], res["rm_rc"], res["left"]
    serr = stream_table_errors(log_lines)
    cerr = core_table_errors(log_lines)
    if left != "0":
        return "left", "device left behind"
    if o.kind == "unknown":
        return "uncertain", ""
    if rc == 0:
        if o.kind != "accept":
            return "mismatch", "accepted, model: %r" % o
        if rm_rc != "0":
            return "mismatch", "accepted but remove failed (%s)" % rm_rc
        bad = check_status(o, status)
        if bad:
            return "mismatch", "status: " + "; ".join(bad)
        return "accepted", ""
    if o.kind == "accept":
        return "mismatch", "refused (%s), model: accept" % ((serr or cerr or ["no log"])[0])
    if o.kind == "refuse":
        if not serr:
            return "mismatch", "refused without a 'stream:' error (core: %s)" % cerr
        if not serr[0].startswith(o.msg):
            return "mismatch", "refused with '%s', model: '%s'" % (serr[0], o.msg)
        return "refused", ""
    # core
    if serr:
        return "mismatch", "constructor refused ('%s'), model: dm core '%s'" % (serr[0], o.msg)
    if not any(o.msg in c for c in cerr):
        return "mismatch", "dm core errors %s, model: '%s'" % (cerr, o.msg)
    return "refused-core", ""


def judge_main(args, inv):
    cases = {int(r[0]): r for r in read_tsv(args.cases)}
    results = {}
    for r in read_tsv(args.results):
        results[int(r[0])] = dict(zip(("n", "blanked", "rc", "status", "rm_rc", "left",
                                       "err"), r + [""] * 7))
    klog = KernelLog(args.kmsg, "table")
    tot = Totals("cases", "accepted", "refused", "refused-core", "uncertain",
                 "mismatches", "oopses", "left", "not-run")
    state = {}
    failed = 0
    verdicts = {}
    for n in sorted(cases):
        _, what, meta, blank, line = cases[n]
        res = results.get(n)
        if res is None:
            tot.add("not-run")
            continue
        tot.add("cases")
        if res["blanked"] == "1":
            state[blank] = None
        o = predict(line, inv, state)
        cat, problem = judge(o, res, klog.lines(n))
        if res["rc"] == "0":
            key = "accepted"
        else:
            errs = stream_table_errors(klog.lines(n)) or \
                ["dm core: " + e for e in core_table_errors(klog.lines(n))] or ["no log"]
            key = re.sub(r"\d+", "N", errs[0].split(" (-")[0])
        verdicts[key] = verdicts.get(key, 0) + 1
        bad = klog.bad(n)
        if bad:
            tot.add("oopses")
            problem = (problem + "; " if problem else "") + "kernel log: " + bad[0]
        tot.add(cat if cat != "mismatch" else "mismatches")
        if cat in ("mismatch", "left") or bad:
            failed += 1
            h = hint(line) if cat == "mismatch" and o.kind != "accept" else ""
            print("# MISMATCH case %d (seed %s, %s): %s" % (n, args.seed, what, problem))
            print("#   table: %s" % line)
            print("#   metadata %s before: %s%s" % (
                meta, "blank (zeroed)" if res["blanked"] == "1" else
                describe_state(state.get(meta)), "; hint: " + h if h else ""))
            for l in klog.lines(n)[:4]:
                print("#   log: %s" % l)
        # The metadata device after the case, from what really happened.
        md = o.meta or (meta if meta != "-" else None)
        for t in o.taint:
            state[t] = "unknown"
        if cat in ("accepted", "refused-core") and o.fmt is not None:
            state[o.meta] = o.fmt
        elif cat == "mismatch" and md is not None:
            serr = stream_table_errors(klog.lines(n))
            if int(res["rc"]) == 0 or not serr or serr[0].startswith("Cannot format"):
                state[md] = "unknown"
    for l in klog.bad_outside[:5]:
        print("# kernel log outside the cases: %s" % l)
    print("# kernel verdicts: " + ", ".join("%s %d" % kv for kv in sorted(verdicts.items())))
    print("# table totals: %s" % tot.line())
    return 1 if failed or klog.bad_outside or tot.n["not-run"] else 0


def describe_state(st):
    if st is None:
        return "blank"
    if st == "unknown":
        return "unknown"
    return "formatted for region size %d, length %d, origin %d, destination %d" % st
