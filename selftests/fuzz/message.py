# SPDX-License-Identifier: GPL-2.0
"""`dmsetup message` fuzzing: words, a model of the Messages section of the
admin guide (plus dm core's own checks), and a judge that compares the
status after every message with the model's state."""

from .table import DEFAULT_MAX_INFLIGHT, ascii_lower, opt_words
from .util import (U32_MAX, KernelLog, Totals, case_rng, decimal, kmsg_escape, number_token,
                   read_tsv, split_args)


def encode_words(words):
    """Words in the case file: '=' and the word's bytes in hex, each; so
    empty words, tabs and backslashes survive bash's read."""
    return " ".join("=" + w.encode().hex() for w in words)


def decode_words(field):
    return [bytes.fromhex(h[1:]).decode(errors="replace") for h in field.split()]


def _case(rng, word):
    r = rng.random()
    if r < 0.15:
        return word.upper()
    if r < 0.25:
        return word.capitalize()
    return word


def generate(seed, n, length):
    """Case @n: (what, sector, words)."""
    rng = case_rng(seed, "message", n)
    sector = 0
    if rng.random() < 0.05:
        sector = rng.choice([length - 1, length, length + 1, length // 2])
    k = rng.choice(["pause", "continue", "rate", "rate", "rate", "max_inflight",
                    "max_inflight", "max_inflight", "min_rate", "max_rate", "copy_on_read",
                    "unknown", "count", "joined", "empty", "core"])
    if k in ("pause", "continue"):
        words = [_case(rng, k)]
    elif k in ("rate", "min_rate", "max_rate"):
        words = [_case(rng, k), number_token(rng, [0, 1, 1024, 51200, U32_MAX, U32_MAX + 1],
                                            0, U32_MAX)]
    elif k == "copy_on_read":
        words = [_case(rng, k), _case(rng, rng.choice(["on", "off", "on", "off", "yes", "1",
                                                       "", "of"]))]
    elif k == "max_inflight":
        words = [_case(rng, k), number_token(rng, [1, 2, 64, 256, 1024, 1025, 0], 1, 1024)]
    elif k == "unknown":
        words = [rng.choice(["stop", "resume", "rate2", "max-inflight", "paused", "continue!",
                             "status", "-1", "--", "rate=5", "maxinflight", "pause\\"])]
    elif k == "count":
        words = rng.choice([["rate"], ["rate", "1", "2"], ["max_inflight"], ["pause", "now"],
                            ["continue", "0"], ["max_inflight", "8", "8"], ["pause", ""],
                            ["copy_on_read"], ["min_rate", "1", "2"], ["copy_on_read", "on", "x"]])
    elif k == "joined":
        words = [rng.choice(["rate 5", "max_inflight  32", "pause ", " continue",
                             "rate\\ 5", "rate\t7"])]
    elif k == "empty":
        words = [rng.choice(["", " "])]
    else:
        words = ["@nonsense"]
    return k, sector, words


def predict(words, sector, length, st):
    """(kind, message, new state). kind: accept, refuse (dm-stream's error in
    the log), core (dm core's)."""
    args = split_args(" ".join(words))        # dmsetup joins with spaces
    if not args:
        return "core", "Empty message received.", st
    if args[0].startswith("@"):
        return "core", "Unsupported message sent to DM core", st
    if sector >= length:
        return "core", "Target message sector outside device.", st
    a0, argc = ascii_lower(args[0]), len(args)
    new = dict(st)
    if argc == 1 and a0 in ("pause", "continue"):
        new["paused"] = a0 == "pause"
    elif argc == 2 and a0 in ("rate", "min_rate", "max_rate"):
        v = decimal(args[1])
        if v is None or v > U32_MAX:
            return "refuse", "invalid %s '%s': expected KiB/s" % (a0, args[1]), st
        new[a0] = v
    elif argc == 2 and a0 == "copy_on_read":
        v = ascii_lower(args[1])
        if v not in ("on", "off"):
            return "refuse", "invalid 'copy_on_read %s': expected on or off" % args[1], st
        new["copy_on_read"] = v == "on"
    elif argc == 2 and a0 == "mirror":
        # "mirror off" stops mirroring; the fuzzed tables are one-way.
        if ascii_lower(args[1]) != "off":
            return "refuse", "invalid 'mirror %s'" % args[1], st
    elif argc == 2 and a0 == "max_inflight":
        v = decimal(args[1])
        if v is None or not 1 <= v <= 1024:
            return "refuse", "invalid max_inflight '%s': expected 1 to 1024" % args[1], st
        new["max_inflight"] = v
    else:
        return "refuse", "unsupported message '%s' with %d argument(s)" % (args[0], argc - 1), st
    return "accept", "", new


def gen_main(args):
    with open(args.out, "w") as f:
        for n in range(args.first, args.first + args.count):
            what, sector, words = generate(args.seed, n, args.length)
            f.write("%d\t%s\t%d\t%s\n" % (n, what, sector, encode_words(words)))


def initial_state(words):
    st = {"paused": False, "rate": 0, "max_inflight": DEFAULT_MAX_INFLIGHT,
          "no_discard_passdown": False, "min_rate": 0, "max_rate": 0, "copy_on_read": False,
          "skip_zeroes": False}
    w = [ascii_lower(x) for x in words]
    i = 0
    while i < len(w):
        if w[i] in ("rate", "max_inflight", "min_rate", "max_rate"):
            st[w[i]] = int(w[i + 1])
            i += 1
        else:
            st[w[i]] = True
        i += 1
    return st


def stream_msg_errors(lines):
    out = []
    for l in lines:
        if "device-mapper: stream: " in l:
            out.append(l.split("device-mapper: stream: ", 1)[1])
    return out


def judge_main(args):
    cases = read_tsv(args.cases)
    results = {int(r[0]): r for r in read_tsv(args.results)}
    klog = KernelLog(args.kmsg, "message")
    tot = Totals("cases", "accepted", "refused", "refused-core", "mismatches", "oopses",
                 "not-run")
    st = initial_state(args.initial.split())
    failed = 0
    for row in cases:
        n, what, sector, words = int(row[0]), row[1], int(row[2]), decode_words(row[3])
        if n not in results:
            tot.add("not-run")
            continue
        tot.add("cases")
        _, rc, status = (results[n] + ["", "", ""])[:3]
        kind, msg, new = predict(words, sector, args.length, st)
        lines = klog.lines(n)
        serr = stream_msg_errors(lines)
        problem = ""
        if kind == "accept":
            if rc != "0":
                problem = "refused (%s), model: accept" % (serr or lines or ["no log"])[0]
        elif rc == "0":
            problem = "accepted, model: %s '%s'" % (kind, msg)
        elif kind == "refuse" and not (serr and serr[0].startswith(kmsg_escape(msg))):
            problem = "refused with %s, model: '%s'" % (serr or "no 'stream:' error", msg)
        elif kind == "core" and not any(msg in l for l in lines):
            problem = "no dm core error '%s' in the log" % msg
        if rc != "0":
            status = ""           # not read after a refused message
        elif kind == "accept":
            st = new
        else:
            st = guess_state(status, st)
        f = status.split()[3:]
        if not problem and status and f[9:] != opt_words(st):
            problem = "status opt args '%s', model: '%s'" % (" ".join(f[9:]),
                                                             " ".join(opt_words(st)))
            st = guess_state(status, st)
        if not problem and status:
            problem = check_state_field(f, st)
        bad = klog.bad(n)
        if bad:
            tot.add("oopses")
            problem = (problem + "; " if problem else "") + "kernel log: " + bad[0]
        if problem:
            failed += 1
            tot.add("mismatches")
            print("# MISMATCH message case %d (seed %s, %s): %s" % (n, args.seed, what, problem))
            print("#   dmsetup message -- NAME %d %s" % (sector, " ".join(
                "'%s'" % w for w in words)))
            print("#   status after: %s" % status)
        else:
            tot.add({"accept": "accepted", "refuse": "refused", "core": "refused-core"}[kind])
    for l in klog.bad_outside[:5]:
        print("# kernel log outside the cases: %s" % l)
    print("# message totals: %s" % tot.line())
    return 1 if failed or klog.bad_outside or tot.n["not-run"] else 0


def guess_state(status, st):
    """The state the status shows (to go on after a surprise)."""
    f = status.split()[3:]
    try:
        return initial_state(f[10:]) if len(f) > 9 else st
    except (ValueError, IndexError):
        return st


def check_state_field(f, st):
    if len(f) < 10:
        return "status too short: %r" % " ".join(f)
    copied, nr = (int(x) for x in f[3].split("/"))
    want = "complete" if copied == nr else "paused" if st["paused"] else "streaming"
    if f[5] != want and not (f[5] == "complete" and not st["paused"]):
        return "state %s, expected %s (%s copied)" % (f[5], want, f[3])
    if f[6] != "rw" or f[7] != "0":
        return "mode %s, copy errors %s: expected rw, 0" % (f[6], f[7])
    return ""
