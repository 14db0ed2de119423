#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that the admin guide and the man page state the interface of
dm-stream/stream-interface.h (and the region limits of stream-format.h):
defaults, limits, the target version and the order of the status fields.

Each claim is a pattern with numbers in groups, searched in a document with
its markup and line breaks flattened; it must be found, and every match must
state the header's values. Prints KTAP (one subtest per claim), exits 1 when
any claim fails. Usage: check-interface-docs.py [REPO]
"""
import math
import os
import re
import sys

REPO = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
GUIDE = "Documentation/admin-guide/device-mapper/dm-stream.rst"
MAN = "Documentation/dmstream.8.rst"
SIZE_UNITS = {"": 1, "k": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def constants():
    """#define NAME value and the enum stream_status_field, from the headers."""
    defs, fields = {}, []
    for header in ("dm-stream/stream-interface.h", "dm-stream/stream-format.h"):
        text = read(header)
        for name, value in re.findall(r"^#define\s+(STREAM_\w+)\s+(0x[0-9a-fA-F]+|\d+)U?L*\b",
                                      text, re.M):
            defs[name] = int(value, 0)
        for name, value in re.findall(r'^#define\s+(STREAM_\w+)\s+"([^"]*)"', text, re.M):
            defs[name] = value
        m = re.search(r"enum stream_status_field \{(.*?)\};", text, re.S)
        if m:
            fields = re.findall(r"^\s*(STREAM_STATUS_\w+),", m.group(1), re.M)
    return defs, [f for f in fields if f != "STREAM_STATUS_NR_FIELDS"]


def flatten(text):
    """Markup and line breaks out: one line of words."""
    text = re.sub(r"\*\*|``|\\", "", text)
    text = re.sub(r"(?<![\w<])\*(?=\S)|(?<=\S)\*(?![\w>])", "", text)
    text = re.sub(r"\s*\n\s*\|?\s*", " ", text)
    return re.sub(r"[ \t]+", " ", text)


def size(word):
    m = re.fullmatch(r"(\d+)([kMG]?)", word)
    return int(m.group(1)) * SIZE_UNITS[m.group(2)] if m else None


def main():
    d, fields = constants()
    docs = {GUIDE: flatten(read(GUIDE)), MAN: flatten(read(MAN))}
    version = (d["STREAM_TARGET_VERSION_MAJOR"], d["STREAM_TARGET_VERSION_MINOR"],
               d["STREAM_TARGET_VERSION_PATCH"])
    region_bytes = (d["STREAM_MIN_REGION_SECTORS"] * 512, d["STREAM_MAX_REGION_SECTORS"] * 512)
    # (document, what, pattern, expected values of the groups, converter)
    claims = [
        (GUIDE, "region size limits", r"a power of two from (\d+) to (\d+)",
         (d["STREAM_MIN_REGION_SECTORS"], d["STREAM_MAX_REGION_SECTORS"]), int),
        (GUIDE, "region limit", r"at most 2\^(\d+) regions",
         (int(math.log2(d["STREAM_MAX_REGIONS"])),), int),
        (GUIDE, "suggested region size", r"\((\d+) sectors\) is a reasonable default",
         (d["STREAM_DEFAULT_REGION_SECTORS"],), int),
        (GUIDE, "optional argument count", r"#opt args Number of words that follow, from 0 to (\d+)",
         (d["STREAM_MAX_OPT_ARGS"],), int),
        (GUIDE, "rate limit", r"rate <KiB/s> [^.]*?from 0 to (\d+)",
         (d["STREAM_MAX_RATE_KIB"],), int),
        (GUIDE, "rate default", r"rate <KiB/s> [^.]*?\. (\d+), the default, means no limit",
         (d["STREAM_DEFAULT_RATE_KIB"],), int),
        (GUIDE, "max_inflight range", r"max_inflight <\w+> [^.]*?from (\d+) to (\d+)",
         (d["STREAM_MIN_MAX_INFLIGHT"], d["STREAM_MAX_MAX_INFLIGHT"]), int),
        (GUIDE, "max_inflight default", r"max_inflight <regions> [^=]*?The default is (\d+)",
         (d["STREAM_DEFAULT_MAX_INFLIGHT"],), int),
        (GUIDE, "max_inflight omitted from status", r"max_inflight <N> \(when not (\d+)\)",
         (d["STREAM_DEFAULT_MAX_INFLIGHT"],), int),
        (GUIDE, "min_rate limit", r"min_rate <KiB/s> [^.]*?from 0 to (\d+)",
         (d["STREAM_MAX_RATE_KIB"],), int),
        (GUIDE, "max_rate limit", r"max_rate <KiB/s> [^.]*?from 0 to (\d+)",
         (d["STREAM_MAX_RATE_KIB"],), int),
        (GUIDE, "busy window", r"completed within the last (\d+) ms",
         (d["STREAM_BUSY_MS"],), int),
        (GUIDE, "target version", r"target_version=(\d+)\.(\d+)\.(\d+)", version, int),
        (GUIDE, "failed status", r"In fail mode the whole status is the string (\w+)",
         (d["STREAM_STATUS_FAILED"],), str),
        (MAN, "region size limits", r"--region-size SIZE [^.]*?a power of two from (\w+) to (\w+)",
         region_bytes, size),
        (MAN, "region size default", r"--region-size SIZE [^=]*?\. Default (\d+)s\b",
         (d["STREAM_DEFAULT_REGION_SECTORS"],), int),
        (MAN, "max-inflight range and default",
         r"--max-inflight N Background regions in flight, (\d+) to (\d+)\. Default (\d+)",
         (d["STREAM_MIN_MAX_INFLIGHT"], d["STREAM_MAX_MAX_INFLIGHT"],
          d["STREAM_DEFAULT_MAX_INFLIGHT"]), int),
        (MAN, "rate limit", r"a rate above (\d+) KiB/s \((\d+)k",
         (d["STREAM_MAX_RATE_KIB"], d["STREAM_MAX_RATE_KIB"]), int),
    ]
    print("TAP version 13")
    print(f"1..{len(claims) + 1}")
    failed = 0
    for n, (doc, what, pattern, want, conv) in enumerate(claims, 1):
        found = [tuple(conv(g) for g in m.groups()) for m in re.finditer(pattern, docs[doc])]
        bad = [f for f in found if f != tuple(want)]
        if not found:
            print(f"# {doc}: no statement of the {what} (pattern {pattern!r})")
        for f in bad:
            print(f"# {doc}: states the {what} as {f}, the header says {tuple(want)}")
        ok = found and not bad
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {n} {os.path.basename(doc)}: {what}")
    failed += not check_status_order(docs[GUIDE], fields, len(claims) + 1)
    print(f"# {len(claims) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0


# The admin guide's name of each status field (enum stream_status_field).
STATUS_WORDS = {
    "STREAM_STATUS_MD_BLOCK_SECTORS": "<metadata block size>",
    "STREAM_STATUS_MD_BLOCKS": "<#used metadata blocks>/<#total metadata blocks>",
    "STREAM_STATUS_REGION_SIZE": "<region size>",
    "STREAM_STATUS_REGIONS": "<#copied regions>/<#total regions>",
    "STREAM_STATUS_COPYING": "<#copying regions>",
    "STREAM_STATUS_STATE": "<state>",
    "STREAM_STATUS_MODE": "<mode>",
    "STREAM_STATUS_COPY_ERRORS": "<#copy errors>",
    "STREAM_STATUS_MIRROR": "<mirror>",
    "STREAM_STATUS_NR_OPT_ARGS": "<#opt args>",
}


def check_status_order(guide, fields, n):
    """The Status section's field line lists the enum's fields in order."""
    want = " ".join(STATUS_WORDS.get(f, f"<unknown field {f}>") for f in fields)
    m = re.search(r"Status -+ :: (<metadata block size>.*?) <opt args>", guide)
    ok = bool(m) and m.group(1) == want
    if not ok:
        print(f"# guide's status fields: {m.group(1) if m else 'not found'}")
        print(f"# the header's order:    {want}")
    print(f"{'ok' if ok else 'not ok'} {n} {os.path.basename(GUIDE)}: status field order")
    return ok


if __name__ == "__main__":
    sys.exit(main())
