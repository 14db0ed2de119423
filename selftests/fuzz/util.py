# SPDX-License-Identifier: GPL-2.0
"""Shared pieces: seeded random streams, number tokens, dm's argument
splitting, the kernel log captured during a run. (CRC32C and the metadata
format: dmst/ondisk.py.)"""

import random
import re

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1

# What run_tests.sh counts as a kernel bug report (its KLOG_BAD).
KLOG_BAD = re.compile(
    r"BUG:|WARNING:|Oops|KASAN:|UBSAN:|possible circular locking|lockdep|hung task|"
    r"blocked for more than|unreferenced object|general protection fault|Kernel panic|"
    r"detected stalls? on CPU|list_(add|del) corruption")

# The marker the bash side writes to /dev/kmsg before each case.
MARK_RE = re.compile(r"dmst-fuzz: (\S+) case (\d+)$")


def case_rng(seed, kind, n):
    """The random stream of case @n of @kind: independent of the count."""
    return random.Random("%s:%s:%d" % (seed, kind, n))


def decimal(tok):
    """The value of a plain decimal token, or None (the rst: "Numbers must be
    plain decimal"). The value is exact: no wrapping past 64 bits."""
    if tok is not None and re.fullmatch(r"[0-9]+", tok):
        return int(tok)
    return None


def number_token(rng, interesting=(), lo=0, hi=U64_MAX):
    """A token meant to be parsed as a number: mostly values near the limits,
    sometimes malformed, overflowing or wrapping modulo 2^64 back into range."""
    pick = rng.random()
    if pick < 0.30 and interesting:
        return str(rng.choice(interesting))
    if pick < 0.45:
        return str(rng.choice([lo, hi, lo - 1 if lo else 0, hi + 1, U32_MAX,
                               U32_MAX + 1, U64_MAX, U64_MAX + 1]))
    if pick < 0.55:
        return str(rng.randint(lo, hi) if hi - lo < 1 << 40 else rng.getrandbits(64))
    if pick < 0.65:
        # Past 2^64 but congruent to a value in range: wraps in a %llu parser.
        base = rng.choice(interesting) if interesting else lo
        return str(base + rng.choice([1, 1, 2, 16, 1 << 32]) * (1 << 64))
    if pick < 0.72:
        return "0" * rng.randint(1, 30) + str(rng.choice(interesting or [lo]))
    junk = ["-1", "-0", "+8", "0x10", "0X10", "1e3", "12x", "x12", "8.0", "8,0",
            "", "\u0668", "0b1000", "08x", "-18446744073709551616",
            "99999999999999999999999999999999999999"]
    tok = rng.choice(junk)
    if tok == "" and interesting:
        tok = str(rng.choice(interesting)) + rng.choice("kKmMgG ")
    return tok.strip() or "nan"


def split_args(s):
    """dm_split_args(): words separated by white space, a backslash quotes the
    next character."""
    out, cur, i, inword = [], [], 0, False
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i + 1])
            inword = True
            i += 2
            continue
        if c.isspace():
            if inword:
                out.append("".join(cur))
                cur, inword = [], False
        else:
            cur.append(c)
            inword = True
        i += 1
    if inword:
        out.append("".join(cur))
    return out


class KernelLog:
    """A `dmesg -W` capture split at the per-case markers."""

    def __init__(self, path, kind):
        self.cases = {}
        self.bad_outside = []
        cur = None
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                msg = re.sub(r"^\[[ 0-9.]*\] ?", "", line)
                m = MARK_RE.search(msg)
                if m:
                    cur = int(m.group(2)) if m.group(1) == kind else None
                    if cur is not None:
                        self.cases[cur] = []
                    continue
                if cur is not None:
                    self.cases[cur].append(msg)
                elif KLOG_BAD.search(msg) and "dm-stream selftest" not in msg:
                    self.bad_outside.append(msg)

    def lines(self, n):
        return self.cases.get(n, [])

    def bad(self, n):
        return [l for l in self.lines(n) if KLOG_BAD.search(l)]


def kmsg_escape(s):
    """A message as `dmesg` prints it: /dev/kmsg escapes control bytes, bytes
    from 0x7f and the backslash as \\xHH; dmesg decodes that and escapes
    again what is not printable in its (C) locale, which spares the
    backslash."""
    return "".join(chr(b) if 32 <= b < 127 else "\\x%02x" % b for b in s.encode())


def stream_table_errors(lines):
    """The constructor's errors: "device-mapper: table: M:N: stream: <error>"."""
    out = []
    for l in lines:
        m = re.search(r"device-mapper: table: \d+:\d+: stream: (.*)", l)
        if m:
            out.append(m.group(1))
    return out


def core_table_errors(lines):
    """dm core's own table errors (no "stream:" after the device)."""
    out = []
    for l in lines:
        m = re.search(r"device-mapper: table: \d+:\d+: (.*)", l)
        if m and not m.group(1).startswith("stream: "):
            out.append(m.group(1))
    return out


def read_tsv(path):
    with open(path) as f:
        return [l.rstrip("\n").split("\t") for l in f if l.strip() and not l.startswith("#")]


class Totals:
    """Counters printed at the end of every judge."""

    def __init__(self, *names):
        self.names = names
        self.n = {k: 0 for k in names}

    def add(self, name, k=1):
        self.n[name] = self.n.get(name, 0) + k

    def line(self):
        return " ".join("%s=%d" % (k, self.n.get(k, 0)) for k in self.names)
