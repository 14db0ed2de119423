# SPDX-License-Identifier: GPL-2.0
"""Is test_crash_01's log complete? Prints what is missing ("; "
separated; nothing when complete): the final dm-log-writes-end mark, the
mark of every acknowledged write, the start/end-of-workload/stream-removed
marks; "unparsable: ..." when the log cannot be read."""

import json

import logreplay


def main(argv):
    try:
        log = logreplay.Log(argv[0])
    except Exception as e:
        print("unparsable: %s" % e)
        return 0
    bad = []
    if not log.entries or log.entries[-1].mark != "dm-log-writes-end":
        bad.append("last entry is not the dm-log-writes-end mark")
    marks = [e.mark for e in log.entries if e.mark is not None]
    with open(argv[1]) as f:
        writes = json.load(f)["writes"]
    for w in writes:
        if w["acked"] and "w%03d" % w["i"] not in marks:
            bad.append("mark w%03d missing" % w["i"])
    for m in ("start", "end-of-workload", "stream-removed"):
        if m not in marks:
            bad.append("mark %s missing" % m)
    print("; ".join(bad))
    return 0
