# SPDX-License-Identifier: GPL-2.0
"""ondisk's decoder against `dmstream dump --json`, field by field.

    python3 -m dmst.crosscheck DMSTREAM IMAGE...

For every metadata image (a file as long as the metadata device), runs
DMSTREAM dump --json on it and compares with ondisk.scan() of its bytes:
blank, every superblock field (but reserved0, which the JSON lacks: its
warning is compared) and csum_ok, every bitmap block (slot in
use; each slot's block, validity, problem, transaction id, uncommitted),
the copied and uncopied runs, copied_regions, the error and warning counts
and the severities of the problems in order. Prints one line per image,
"# NAME: ..." and the differences; exits 1 if any image differs (or the
tool fails), 0 otherwise. The check fails whichever side drifts from the
format: the tool (tools/meta.c) or the tests' decoder (dmst/ondisk.py).
"""

import json
import os
import subprocess
import sys

from . import ondisk


def tool_dump(tool, path):
    """The tool's JSON of @path, or raises RuntimeError."""
    r = subprocess.run([tool, "dump", "--json", path], capture_output=True,
                       text=True, timeout=120)
    if r.returncode not in (0, 3):
        raise RuntimeError("dump --json exited %d: %s"
                           % (r.returncode, r.stderr.strip()[:200]))
    return json.loads(r.stdout)


def ours(path):
    """ondisk.scan() of @path, shaped as the tool's JSON."""
    with open(path, "rb") as f:
        img = f.read()
    d = ondisk.scan(img, os.path.getsize(path))
    for b in d["bitmap_blocks"]:
        for s in b["slots"]:
            if s["valid"]:
                del s["problem"]
    d["severities"] = [sev for sev, _ in d.pop("problems")]
    if d["superblock"] is None:
        del d["superblock"]
    else:
        del d["superblock"]["reserved0"]     # the tool's JSON lacks it
    return d


def theirs(j):
    """The tool's JSON with only the fields ours() has."""
    j = dict(j)
    j["severities"] = [p["severity"] for p in j.pop("problems")]
    del j["device"]
    return j


def differences(a, b, where=""):
    """Paths at which the JSON-like values @a (ours) and @b (the tool's)
    differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append("%s.%s: %s only" % (where, k, "decoder" if k in a
                                                else "tool"))
            else:
                out += differences(a[k], b[k], "%s.%s" % (where, k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, "%s[%d]" % (where, i))
        return out
    if a != b or type(a) is not type(b):
        sa, sb = repr(a), repr(b)
        return ["%s: decoder %s, tool %s" % (where or "value", sa[:120],
                                             sb[:120])]
    return []


def summary(d):
    """A few words on what an image holds."""
    if d["blank"]:
        return "blank"
    sb = d.get("superblock")
    if sb is None:
        return "no superblock"
    return "transaction %d, %s copied, %d bitmap blocks, %d errors" % (
        sb["transaction_id"], d["copied_regions"], len(d["bitmap_blocks"]),
        d["errors"])


def check(tool, path):
    """Lines describing @path; True when decoder and tool agree."""
    name = os.path.basename(path)
    try:
        t = theirs(tool_dump(tool, path))
    except (RuntimeError, ValueError, KeyError, OSError) as e:
        return False, ["# %s: the tool failed: %s" % (name, e)]
    o = ours(path)
    diff = differences(o, t)
    if not diff:
        return True, ["# %s: agree (%s)" % (name, summary(o))]
    lines = ["# %s: DIFFER in %d fields" % (name, len(diff))]
    lines += ["#   " + x for x in diff[:12]]
    return False, lines


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: python3 -m dmst.crosscheck DMSTREAM IMAGE...")
    tool, images = argv[0], argv[1:]
    bad = 0
    for path in images:
        ok, lines = check(tool, path)
        bad += not ok
        print("\n".join(lines))
    print("# %d images, %d agree, %d differ" % (len(images), len(images) - bad,
                                                bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
