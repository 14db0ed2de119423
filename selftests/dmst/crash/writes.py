# SPDX-License-Identifier: GPL-2.0
"""What test_crash_01's writes.json says: a one-line summary of the
workload, and the image the target must hold at the end (the origin with
every acknowledged write on it)."""

import json

from ..blockio import read_dev
from .patterns import pattern_range


def summary(argv):
    """Prints "<writes> <acknowledged> <issued while streaming> <failures>";
    "0 0 0 1" when writes.json is unreadable."""
    path, nr = argv[0], int(argv[1])
    try:
        with open(path) as f:
            d = json.load(f)
    except Exception:
        print("0 0 0 1")
        return 0
    ws = d["writes"]
    ov = sum(1 for w in ws if 0 < w["copied_before"] < nr)
    print(len(ws), sum(1 for w in ws if w["acked"]), ov, len(d["fails"]))
    return 0


def expected(argv):
    """Writes OUT: LEN sectors of ORIG with the acknowledged writes."""
    orig, wj, out, length = argv[0], argv[1], argv[2], int(argv[3])
    img = bytearray(read_dev(orig, length * 512))
    with open(wj) as f:
        writes = json.load(f)["writes"]
    for w in writes:
        if not w["acked"]:
            continue
        img[w["sector"] * 512:(w["sector"] + w["nsect"]) * 512] = \
            pattern_range(w["i"], w["sector"], w["nsect"])
    with open(out, "wb") as f:
        f.write(img)
    return 0
