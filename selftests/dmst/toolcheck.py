# SPDX-License-Identifier: GPL-2.0
"""Checks of dmstream's JSON output for the test_tool_* scripts.

    python3 -m dmst.toolcheck dump-two NR JSON
        test_tool_01: `dump --json` of metadata the kernel wrote with regions
        0 and 5 copied in two commits, after the commit of the stale
        origin flag when it is set (JSON given as the argument)
    python3 -m dmst.toolcheck watch FILE NR
        test_tool_02: `status --watch --json` lines in FILE, rising, ending
        complete with NR regions copied, a rate measured
    python3 -m dmst.toolcheck dump-alternating FILE NR
        test_tool_04: `dump --json` (in FILE) of NR regions, every other one
        copied, in 8 bitmap blocks

Exit 0 when the output is as expected, 1 (with the first difference on
stderr) when not.
"""

import json
import sys


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def dump_two(argv):
    nr, d = int(argv[0]), json.loads(argv[1])
    sb = d["superblock"]
    expect(d["blank"] is False and d["errors"] == 0, d)
    # A one-way stream's first resume commits the origin's stale flag: a
    # transaction of its own before the two writes'.
    t = 3 if sb["flags"] & 0x2 else 2
    expect(sb["nr_regions"] == nr and sb["nr_copied"] == 2 and
           sb["transaction_id"] == t, sb)
    expect(sb["region_size"] == 128 and sb["csum_ok"], sb)
    expect(d["copied"] == [[0, 0], [5, 5]], d["copied"])
    expect(d["uncopied"] == [[1, 4], [6, nr - 1]], d["uncopied"])
    b = d["bitmap_blocks"]
    expect(len(b) == 1 and b[0]["used_slot"] == 0, b)
    expect([s["transaction_id"] for s in b[0]["slots"]] == [t, t - 1], b)


def watch(argv):
    with open(argv[0]) as f:
        objs = [json.loads(line) for line in f.read().splitlines()]
    expect(len(objs) >= 3, len(objs))
    pct = [o["percent"] for o in objs]
    expect(pct == sorted(pct), pct)
    expect(objs[-1]["state"] == "complete" and
           objs[-1]["copied"] == int(argv[1]), objs[-1])
    expect(any(o["rate"] for o in objs[1:-1]), "no rate measured")
    print("# %d JSON lines, %s%% .. %s%%" % (len(objs), pct[0], pct[-1]))


def dump_alternating(argv):
    with open(argv[0]) as f:
        d = json.load(f)
    nr = int(argv[1])
    c, u = d["copied"], d["uncopied"]
    expect(d["errors"] == 0 and d["copied_regions"] == nr // 2,
           d["copied_regions"])
    expect(c == [[i, i] for i in range(0, nr, 2)], "copied runs")
    expect(u == [[i, i] for i in range(1, nr, 2)], "uncopied runs")
    expect(len(d["bitmap_blocks"]) == 8 and
           d["superblock"]["nr_regions"] == nr, "8 bitmap blocks")
    print("# %d copied and %d uncopied runs" % (len(c), len(u)))


COMMANDS = {"dump-two": dump_two, "watch": watch,
            "dump-alternating": dump_alternating}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.exit("usage: python3 -m dmst.toolcheck {%s} ARGS..."
                 % ",".join(COMMANDS))
    try:
        COMMANDS[argv[0]](argv[1:])
    except (Mismatch, KeyError, IndexError, TypeError, ValueError) as e:
        print("toolcheck %s: unexpected: %r" % (argv[0], e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
