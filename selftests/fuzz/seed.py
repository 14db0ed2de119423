# SPDX-License-Identifier: GPL-2.0
"""Seeding ranges (dmstream create --copied / --copied-from) and their model.

The model is dmstream(8)'s description of --copied: byte ranges START-END
(END excluded) or START+LEN, sizes as the man page's DESCRIPTION takes them
(a decimal number, then nothing, b, s, k, kb, kib, m, ... tib, any case),
separated by commas; in a file one per line, blank lines and '#' comments
allowed. A range that does not parse, is empty or reversed, or ends past the
device refuses the whole option (exit 1) and nothing changes. Otherwise each
region the ranges cover whole is seeded (the last, short region is covered
when a range reaches the device's end).

seed-gen writes DIR/N.arg (the --copied argument) or DIR/N.txt (the
--copied-from file, bytes as they are), and the list "N kind" to --out. The
script runs each case and writes "N RC" lines to --results; after an exit 0,
DIR/N.json holds `dmstream dump --json` of the metadata; after a refusal,
DIR/N.blank says whether the metadata's first 4 KiB stayed zero ("yes").
seed-judge compares that with the model.
"""

import json

from .util import case_rng, U64_MAX

UNITS = {"": 0, "b": 0, "s": 9, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20,
         "mib": 20, "g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40}
SEED_FILE_MAX = 16 << 20


def parse_size(s):
    """parse_size(): digits, then a unit; None when it does not parse."""
    i = 0
    while i < len(s) and s[i] in "0123456789":
        i += 1
    if not i:
        return None
    x = int(s[:i])
    if x > U64_MAX:
        return None
    unit = s[i:]
    if unit.lower() not in UNITS or not unit.isascii():
        return None
    v = x << UNITS[unit.lower()]
    return None if v > U64_MAX else v


def parse_range(w, dev_bytes):
    """(start, end) or None."""
    cut = [k for k in (w.find("-"), w.find("+")) if k >= 0]
    if not cut or min(cut) >= 64:
        return None
    k = min(cut)
    start, x = parse_size(w[:k]), parse_size(w[k + 1:])
    if start is None or x is None:
        return None
    if w[k] == "+":
        if x > U64_MAX - start:
            return None
        x += start
    if x <= start or x > dev_bytes:
        return None
    return start, x


def model(kind, text, dev_bytes, region_bytes):
    """The seeded regions as sorted [first, last] runs, or None (refused)."""
    if kind == "file":
        if len(text.encode("utf-8", "surrogateescape")) > SEED_FILE_MAX or "\0" in text:
            return None
        words = text.split("\n")
    else:
        words = text.split(",")
    ranges = []
    for w in words:
        if kind == "file" and "#" in w:
            w = w[:w.index("#")]
        w = w.strip(" \t\r")
        if not w:
            if kind == "file":
                continue
            return None
        r = parse_range(w, dev_bytes)
        if r is None:
            return None
        ranges.append(r)
    if not ranges:
        return None
    nr = (dev_bytes + region_bytes - 1) // region_bytes
    seeded = set()
    for start, end in ranges:
        first = (start + region_bytes - 1) // region_bytes
        last = nr if end == dev_bytes else end // region_bytes
        seeded.update(range(first, last))
    runs = []
    for r in sorted(seeded):
        if runs and runs[-1][1] == r - 1:
            runs[-1][1] = r
        else:
            runs.append([r, r])
    return runs


def size_token(rng, value, exact=True):
    """@value bytes spelt in some unit that divides it, or a near miss."""
    units = [("", 0), ("s", 9), ("k", 10), ("M", 20), ("G", 30)]
    fits = [(u, sh) for u, sh in units if value % (1 << sh) == 0]
    u, sh = rng.choice(fits)
    spell = rng.choice([u, u.lower(), u.upper(), u + "iB" if u not in ("", "s") else u,
                        u + "b" if u not in ("", "s") else u])
    tok = str(value >> sh) + spell
    if not exact and rng.random() < 0.5:
        tok = rng.choice(["0" * rng.randint(1, 5) + tok, tok + rng.choice(["x", "KB ", "i"]),
                          " " + tok, "-" + tok, "0x" + tok, tok.replace("0", "O", 1)])
    return tok


def one_range(rng, dev_bytes, region_bytes):
    """A range, mostly valid, aligned to regions or not, sometimes broken."""
    pick = rng.random()
    if pick < 0.08:
        return rng.choice(["", "-", "+", "1M", "0-", "-1M", "1M-", "+4k", "a-b", "0--1",
                           "1M+0", "2M-1M", "0-%d" % (dev_bytes + 1),
                           "0+%d" % (dev_bytes + 512), "%d+%d" % (U64_MAX, 1),
                           "18446744073709551616-1", "0-16T", "0 - 1M", "0\t-1M",
                           "0-1M\n", "\u0661-2M", "0-1M 2M-3M", "0-1Mx"])
    gran = rng.choice([1, 512, 4096, region_bytes, region_bytes // 2])
    a = rng.randrange(0, dev_bytes // gran) * gran
    b = rng.randrange(a // gran + 1, dev_bytes // gran + 1) * gran
    if rng.random() < 0.1:
        b = dev_bytes
    exact = rng.random() < 0.85
    if rng.random() < 0.5:
        return size_token(rng, a, exact) + "-" + size_token(rng, b, exact)
    return size_token(rng, a, exact) + "+" + size_token(rng, b - a, exact)


def gen_case(seed, n, dev_bytes, region_bytes):
    rng = case_rng(seed, "seed", n)
    kind = "file" if rng.random() < 0.35 else "ranges"
    parts = [one_range(rng, dev_bytes, region_bytes) for _ in range(rng.randint(1, 6))]
    if kind == "ranges":
        sep = "," if rng.random() < 0.9 else rng.choice([",,", ";", " , ", ", "])
        text = sep.join(parts)
        if rng.random() < 0.05:
            text += ","
    else:
        lines = []
        for p in parts:
            if rng.random() < 0.2:
                lines.append(rng.choice(["", "# a comment", "   ", "\t# x"]))
            lines.append(p + rng.choice(["", "", " # why", "\r", "  "]))
        text = "\n".join(lines) + rng.choice(["\n", "", "\n\n"])
        if rng.random() < 0.03:
            text += "0-4k\0"
    return {"n": n, "kind": kind, "text": text}


def gen_main(a):
    with open(a.out, "w") as f:
        for n in range(a.first, a.first + a.count):
            c = gen_case(a.seed, n, a.dev_bytes, a.region_bytes)
            ext = "txt" if c["kind"] == "file" else "arg"
            with open("%s/%d.%s" % (a.dir, n, ext), "wb") as g:
                g.write(c["text"].encode("utf-8"))
            f.write("%d %s\n" % (n, c["kind"]))


def judge_main(a):
    cases = {}
    with open(a.cases) as f:
        for line in f:
            n, kind = line.split()
            ext = "txt" if kind == "file" else "arg"
            with open("%s/%s.%s" % (a.dir, n, ext), "rb") as g:
                cases[int(n)] = (kind, g.read().decode("utf-8"))
    bad = seen = refused = 0
    with open(a.results) as f:
        for line in f:
            n, rc = (int(x) for x in line.split())
            kind, text = cases[n]
            want = model(kind, text, a.dev_bytes, a.region_bytes)
            seen += 1
            got = None
            if rc == 0:
                with open("%s/%d.json" % (a.dir, n)) as g:
                    got = json.load(g)["copied"]
            if want is None:
                refused += 1
                try:
                    with open("%s/%d.blank" % (a.dir, n)) as g:
                        blank = g.read().strip() == "yes"
                except OSError:
                    blank = False
                ok = rc == 1 and blank
                what = "refused (exit 1), the metadata still blank"
            else:
                ok = rc == 0 and got == want
                what = "exit 0, copied %s" % want
            if not ok:
                bad += 1
                if bad <= 10:
                    print("# case %d (%s %r): want %s; got exit %d, copied %s" %
                          (n, kind, text, what, rc, got))
    print("# seed totals: cases=%d mismatches=%d refused=%d" % (seen, bad, refused))
    return 0 if seen == len(cases) and not bad else 1
