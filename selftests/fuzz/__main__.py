# SPDX-License-Identifier: GPL-2.0
"""Command line of the fuzz package: see __init__.py."""

import argparse
import sys

from . import message, meta, seed, table
from .devices import Inventory


def main(argv):
    p = argparse.ArgumentParser(prog="python3 -m fuzz")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, gen):
        sp.add_argument("--seed", required=True)
        if gen:
            sp.add_argument("--count", type=int, required=True)
            sp.add_argument("--first", type=int, default=1)
            sp.add_argument("--out", required=True)
        else:
            sp.add_argument("--cases", required=True)
            sp.add_argument("--results", required=True)
            sp.add_argument("--kmsg", required=True)

    for gen in (True, False):
        sp = sub.add_parser("table-gen" if gen else "table-judge")
        common(sp, gen)
        sp.add_argument("--inventory", required=True)
        sp = sub.add_parser("msg-gen" if gen else "msg-judge")
        common(sp, gen)
        sp.add_argument("--length", type=int, required=True)
        if not gen:
            sp.add_argument("--initial", default="", help="the table's optional arguments")
        sp = sub.add_parser("meta-gen" if gen else "meta-judge")
        common(sp, gen)
        sp.add_argument("--geos", required=True)
        if not gen:
            sp.add_argument("--tool", required=True, help="dmstream check results")
        if gen:
            sp.add_argument("--bases", required=True)
            sp.add_argument("--dir", required=True)
        sp = sub.add_parser("seed-gen" if gen else "seed-judge")
        if gen:
            common(sp, gen)
        else:
            sp.add_argument("--cases", required=True)
            sp.add_argument("--results", required=True)
        sp.add_argument("--dir", required=True)
        sp.add_argument("--dev-bytes", type=int, required=True)
        sp.add_argument("--region-bytes", type=int, required=True)
    a = p.parse_args(argv)

    if a.cmd == "table-gen":
        table.gen_main(a, Inventory(a.inventory))
        return 0
    if a.cmd == "table-judge":
        return table.judge_main(a, Inventory(a.inventory))
    if a.cmd == "seed-gen":
        seed.gen_main(a)
        return 0
    if a.cmd == "seed-judge":
        return seed.judge_main(a)
    if a.cmd == "msg-gen":
        message.gen_main(a)
        return 0
    if a.cmd == "msg-judge":
        return message.judge_main(a)
    if a.cmd == "meta-gen":
        meta.gen_main(a)
        return 0
    return meta.judge_main(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
