#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise bench/guest-bench.sh output: medians, MiB/s and ratios.

Usage: bench/summarize.py DIR
Reads DIR/runs.csv and DIR/env.txt; writes DIR/results.csv (one line per
configuration), DIR/ratios.csv and DIR/results.md (the tables), and prints
the markdown. With DIR/fg.csv (bench/guest-fg.sh) and DIR/merge.csv
(bench/guest-merge.sh) present, their sections too; the merge medians also
go to DIR/merge-results.csv.
"""

import csv
import os
import statistics
import sys

DESCR = {
    "dd": "dd bs=1M iflag=direct oflag=direct (raw copy)",
    "linear": "dd through a `linear` dm device over the origin",
    "clone": "dm-clone, default (hydration_threshold 1, batch 1)",
    "clone-tuned": "dm-clone, hydration_threshold {t} hydration_batch_size {b}",
    "stream": "dm-stream, default settings (max_inflight {d})",
    "stream-event": "dm-stream, default settings, completion by `dmsetup wait`",
    "stream-dmsetup": "dm-stream, default settings, completion polled with `dmsetup status`",
    "stream-mirror": "dm-stream in mirror mode (`mirror`), nothing writing",
}

FG_DESCR = {
    "fg-linear": "`linear` over the destination (the ceiling)",
    "fg-oneway": "dm-stream, one-way, copying (background rate-limited)",
    "fg-mirror": "dm-stream, mirror mode, copying (background rate-limited)",
}


def read_env(path):
    env = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition(": ")
                env.setdefault(k, v)
    except OSError:
        pass
    return env


def sweep_point(cfg):
    """The max_inflight of a stream-mi<N> configuration, or None."""
    n = cfg[len("stream-mi"):] if cfg.startswith("stream-mi") else ""
    return int(n) if n.isdigit() else None


def describe(cfg, env):
    if sweep_point(cfg) is not None:
        return "dm-stream, max_inflight %s" % cfg[len("stream-mi"):]
    if cfg == "stream":
        return DESCR[cfg].format(d=env.get("stream_default_inflight", "?"))
    if cfg == "clone-tuned":
        t, b = (env.get("clone_tuned", "? ?").split() + ["?", "?"])[:2]
        return DESCR[cfg].format(t=t, b=b)
    return DESCR.get(cfg, cfg)


def foreground(out):
    """The table of bench/guest-fg.sh's fg.csv, as markdown lines, or []."""
    path = os.path.join(out, "fg.csv")
    if not os.path.exists(path):
        return []
    fg, order = {}, []
    with open(path) as f:
        for r in csv.DictReader(f):
            e = fg.setdefault(r["config"], {"iops": [], "p99": [], "mib": [], "bad": 0, "notes": []})
            if r["config"] not in order:
                order.append(r["config"])
            if r["valid"] == "1" and r["write_iops"]:
                e["iops"].append(float(r["write_iops"]))
                e["p99"].append(float(r["p99_us"]))
                if r["copied_mib"]:
                    e["mib"].append(float(r["copied_mib"]))
            else:
                e["bad"] += 1
            if r["note"] and r["note"] not in e["notes"]:
                e["notes"].append(r["note"])

    def m(cfg, key):
        v = fg.get(cfg, {}).get(key)
        return statistics.median(v) if v else None

    ceiling = m("fg-linear", "iops")
    lines = ["", "## Foreground 4 KiB random writes while streaming\n",
             "| config | what | valid/runs | write IOPS | vs linear | p99 us | MiB copied meanwhile |",
             "|---|---|---|---|---|---|---|"]
    for cfg in order:
        e = fg[cfg]
        iops = m(cfg, "iops")
        lines.append("| %s | %s | %d/%d | %s | %s | %s | %s |" % (
            cfg, FG_DESCR.get(cfg, cfg), len(e["iops"]), len(e["iops"]) + e["bad"],
            fmt(iops, ".0f"), fmt(iops / ceiling if iops and ceiling else None),
            fmt(m(cfg, "p99"), ".0f"), fmt(m(cfg, "mib"), ".1f")))
    a, b = m("fg-mirror", "iops"), m("fg-oneway", "iops")
    lines.append("")
    lines.append("Mirror mode write IOPS / one-way: %s" % fmt(a / b if a and b else None))
    for cfg in order:
        for n in fg[cfg]["notes"]:
            lines.append("- %s: %s" % (cfg, n))
    return lines


MERGE_DESCR = {
    "snapshot-merge": "kernel `snapshot-merge` (as `lvconvert --merge`)",
    "dmstream": "`dmstream merge --rollback`",
}
MERGE_KEYS = ["switch_s", "merged_s", "complete_s", "real_read_b", "real_write_b",
              "cow_read_b", "cow_write_b", "meta_write_b", "write_ratio"]


def merge_section(out):
    """The table of bench/guest-merge.sh's merge.csv, as markdown lines, or [];
    writes DIR/merge-results.csv (medians of the valid runs)."""
    path = os.path.join(out, "merge.csv")
    if not os.path.exists(path):
        return []
    res, notes, byrep = {}, [], {}
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["valid"] == "skip":
                notes.append("%s: %s" % (r["method"], r["note"]))
                continue
            e = res.setdefault((r["pct"], r["method"]),
                               {"runs": 0, "chunks": [], **{k: [] for k in MERGE_KEYS}})
            e["runs"] += 1
            if r["note"]:
                notes.append("%s, %s%%, rep %s: %s" % (r["method"], r["pct"], r["rep"], r["note"]))
            if r["valid"] != "1":
                continue
            e["chunks"].append(int(r["changed_chunks"]))
            for k in MERGE_KEYS:
                e[k].append(float(r[k]))
            byrep.setdefault((r["pct"], r["rep"]), {})[r["method"]] = r

    def m(e, k):
        return statistics.median(e[k]) if e[k] else None

    def mib(x):
        return fmt(x / 1048576 if x is not None else None, ".1f")

    env = read_env(os.path.join(out, "env.txt"))
    keys = sorted(res, key=lambda k: (float(k[0] or 0), list(MERGE_DESCR).index(k[1])
                                      if k[1] in MERGE_DESCR else 9))
    rows = []
    for pct, meth in keys:
        e = res[(pct, meth)]
        row = {"method": meth, "pct": pct, "valid_runs": len(e["switch_s"]),
               "runs": e["runs"], "changed_chunks": m(e, "chunks")}
        row.update({k: m(e, k) for k in MERGE_KEYS})
        rows.append(row)
    with open(os.path.join(out, "merge-results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["method", "pct", "valid_runs", "runs", "changed_chunks"]
                           + ["median_" + k for k in MERGE_KEYS])
        w.writeheader()
        for r in rows:
            w.writerow({**{k: r[k] for k in ("method", "pct", "valid_runs", "runs")},
                        "changed_chunks": "" if r["changed_chunks"] is None
                        else "%d" % r["changed_chunks"],
                        **{"median_" + k: "" if r[k] is None else
                           ("%.0f" if k.endswith("_b") else "%.3f") % r[k]
                           for k in MERGE_KEYS}})

    lines = ["", "## Merging a snapshot back into its origin\n",
             "Setup: %s. Times from the first command: *switch* until the volume shows the "
             "snapshot's content, *merged* until the status says the merge is done, "
             "*complete* until the volume is `linear` on REAL again. MiB read/written are "
             "`/sys/block/loopN/stat` deltas over that time; the last column is REAL's "
             "bytes written over the changed chunks' bytes (goal <= 1.1). A run is valid "
             "when the volume's checksum then equals the snapshot's. Medians of valid runs.\n"
             % env.get("merge", "?"),
             "| changed | method | valid/runs | switch s | merged s | complete s "
             "| REAL read MiB | REAL written MiB | COW read MiB | COW written MiB "
             "| META written MiB | REAL written / changed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ch = r["changed_chunks"]
        size = float(env.get("merge_chunk_bytes", "4096"))
        lines.append("| %s%% (%s chunks, %s MiB) | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s "
                     "| %s | %s |" % (
                         r["pct"], fmt(ch, ".0f"), mib(ch * size if ch else None),
                         MERGE_DESCR.get(r["method"], r["method"]), r["valid_runs"], r["runs"],
                         fmt(r["switch_s"], ".3f"), fmt(r["merged_s"], ".3f"),
                         fmt(r["complete_s"], ".3f"), mib(r["real_read_b"]),
                         mib(r["real_write_b"]), mib(r["cow_read_b"]), mib(r["cow_write_b"]),
                         mib(r["meta_write_b"]), fmt(r["write_ratio"], ".3f")))
    pcts = sorted({k[0] for k in keys}, key=lambda p: float(p or 0))
    ratios = []
    for pct in pcts:
        a, b = res.get((pct, "dmstream")), res.get((pct, "snapshot-merge"))
        if not a or not b:
            continue
        for k, label in (("switch_s", "switch"), ("complete_s", "complete")):
            per = [float(t["dmstream"][k]) / float(t["snapshot-merge"][k])
                   for (p, _), t in byrep.items()
                   if p == pct and "dmstream" in t and "snapshot-merge" in t
                   and t["dmstream"]["valid"] == "1" and t["snapshot-merge"]["valid"] == "1"
                   and float(t["snapshot-merge"][k]) > 0]
            ma, mb = m(a, k), m(b, k)
            ratios.append("| %s%% | %s | %s | %s |" % (
                pct, label, fmt(ma / mb if ma and mb else None),
                fmt(statistics.median(per) if per else None)))
    if ratios:
        lines += ["", "| changed | dmstream time / snapshot-merge time | of medians "
                  "| median of per-repetition ratios |", "|---|---|---|---|"] + ratios
    for n in notes:
        lines.append("- %s" % n)
    return lines


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    env = read_env(os.path.join(out, "env.txt"))
    size = float(env.get("size_mib", "256"))
    runs = {}
    order = []
    byrep = {}
    with open(os.path.join(out, "runs.csv")) as f:
        for r in csv.DictReader(f):
            cfg = r["config"]
            if cfg not in runs:
                runs[cfg] = {"all": [], "ok": [], "bad": 0, "skip": 0, "notes": []}
                order.append(cfg)
            e = runs[cfg]
            if r["valid"] == "1":
                e["all"].append((float(r["seconds"]), r.get("host_busy") == "1", r["rep"]))
            elif r["valid"] == "skip":
                e["skip"] += 1
            else:
                e["bad"] += 1
            if r["note"] and r["note"] not in e["notes"]:
                e["notes"].append(r["note"])

    # Put the configurations in a stable order.
    rank = ["dd", "linear", "clone", "clone-tuned", "stream", "stream-mirror", "stream-event",
            "stream-dmsetup"]
    order.sort(key=lambda c: (rank.index(c) if c in rank else len(rank),
                              sweep_point(c) or 0))

    # Runs disturbed by other guests on the host count only when a
    # configuration has no undisturbed run.
    for cfg in order:
        e = runs[cfg]
        quiet = [x for x in e["all"] if not x[1]]
        used = quiet or e["all"]
        e["busy"] = len(e["all"]) - len(quiet)
        e["busy_used"] = bool(used) and not quiet
        e["ok"] = [x[0] for x in used]
        for sec, _, rp in used:
            byrep.setdefault(rp, {})[cfg] = sec

    med = {}
    for cfg in order:
        ok = runs[cfg]["ok"]
        med[cfg] = statistics.median(ok) if ok else None

    def mibs(cfg):
        m = med.get(cfg)
        return size / m if m else None

    def ratio(a, b):
        return a / b if a and b else None

    def paired(a, b):
        """Median over repetitions of time(a) / time(b) within one repetition:
        steadier than the ratio of medians when the host load drifts."""
        r = [t[a] / t[b] for t in byrep.values() if a in t and b in t and t[b] > 0]
        return statistics.median(r) if r else None

    rows = []
    for cfg in order:
        e = runs[cfg]
        rows.append({
            "config": cfg,
            "description": describe(cfg, env),
            "valid_runs": len(e["all"]),
            "invalid_runs": e["bad"],
            "host_busy_runs": e["busy"],
            "median_from": "busy runs" if e["busy_used"] else ("quiet runs" if e["ok"] else ""),
            "median_s": fmt(med[cfg], ".3f") if med[cfg] else "",
            "min_s": fmt(min(e["ok"]), ".3f") if e["ok"] else "",
            "max_s": fmt(max(e["ok"]), ".3f") if e["ok"] else "",
            "mib_per_s": fmt(mibs(cfg), ".1f") if mibs(cfg) else "",
            "throughput_vs_dd": fmt(ratio(mibs(cfg), mibs("dd")), ".2f") if ratio(mibs(cfg), mibs("dd")) else "",
            "notes": "; ".join(e["notes"]),
        })
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["config"])
        w.writeheader()
        w.writerows(rows)

    md = []
    md.append("# dm-stream benchmark\n")
    md.append("- date: %s" % env.get("date", "?"))
    md.append("- guest kernel: %s" % env.get("kernel", "?"))
    md.append("- guest: %s CPUs, %s (QEMU TCG)" % (env.get("cpus", "?"), env.get("mem", "?")))
    md.append("- data: %s MiB of random data, tmpfs-backed loop devices, region %s sectors, "
              "%s repetitions interleaved; median of valid runs"
              % (env.get("size_mib", "?"), env.get("region_sectors", "?"), env.get("reps", "?")))
    if "dm-stream" in env:
        md.append("- dm-stream: %s" % env["dm-stream"])
    if "host" in env:
        md.append("- host: %s" % env["host"])
    nbusy = sum(runs[c]["busy"] for c in order)
    nall = sum(len(runs[c]["all"]) for c in order)
    skewed = [c for c in order if runs[c]["busy_used"]]
    if "host_busy" in env:
        md.append("- other guests on the host: %s" % env["host_busy"])
    if nbusy:
        md.append("- %d of %d valid runs had other guests running on the host; "
                  "medians use only the undisturbed runs where there are any" % (nbusy, nall))
    if skewed:
        md.append("- **skewed by a busy host (no undisturbed run): %s -- rerun on a quiet host**"
                  % ", ".join(skewed))
    if "dmesg" in env:
        md.append("- **dmesg: %s**" % env["dmesg"])
    md.append("")
    head = len(md)
    md.append("| config | what | valid/runs | host busy | median s | min s | max s | MiB/s | vs raw dd |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        md.append("| %s | %s | %d/%d | %d%s | %s | %s | %s | %s | %s |" % (
            r["config"], r["description"], r["valid_runs"],
            r["valid_runs"] + r["invalid_runs"], r["host_busy_runs"],
            " (used)" if r["median_from"] == "busy runs" else "",
            r["median_s"] or "-", r["min_s"] or "-",
            r["max_s"] or "-", r["mib_per_s"] or "-", r["throughput_vs_dd"] or "-"))
    md.append("")
    md.append("## Ratios (medians)\n")
    md.append("| ratio | of medians | median of per-repetition ratios |")
    md.append("|---|---|---|")
    ratio_rows = []
    for label, a, b, timer in [
        ("dm-stream time / dm-clone time (default)", "stream", "clone", True),
        ("dm-stream time / dm-clone time (tuned)", "stream", "clone-tuned", True),
        ("dm-stream MiB/s / raw dd MiB/s", "stream", "dd", False),
        ("dm-stream mirror time / one-way time (idle)", "stream-mirror", "stream", True),
        ("dm-stream MiB/s / linear dd MiB/s", "stream", "linear", False),
        ("dm-clone tuned MiB/s / raw dd MiB/s", "clone-tuned", "dd", False),
        ("dm-clone default MiB/s / raw dd MiB/s", "clone", "dd", False),
        ("linear dd MiB/s / raw dd MiB/s", "linear", "dd", False),
    ]:
        if timer:
            v, p = ratio(med.get(a), med.get(b)), paired(a, b)
        else:
            v, p = ratio(mibs(a), mibs(b)), paired(b, a)
        md.append("| %s | %s | %s |" % (label, fmt(v), fmt(p)))
        ratio_rows.append([label, fmt(v, ".3f") if v else "", fmt(p, ".3f") if p else ""])
    with open(os.path.join(out, "ratios.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ratio", "of_medians", "median_of_per_rep_ratios"])
        w.writerows(ratio_rows)
    sweep = [c for c in order if sweep_point(c) is not None]
    if sweep:
        md.append("")
        md.append("## dm-stream max_inflight sweep\n")
        md.append("| max_inflight | valid/runs | median s | MiB/s | time vs default | per-repetition |")
        md.append("|---|---|---|---|---|---|")
        pts = [("%s (default)" % env.get("stream_default_inflight", "?"), "stream")]
        pts += [(c[9:], c) for c in sweep]
        pts.sort(key=lambda p: int(p[0].split()[0]) if p[0].split()[0].isdigit() else 0)
        for label, c in pts:
            e = runs.get(c, {"all": [], "bad": 0})
            md.append("| %s | %d/%d | %s | %s | %s | %s |" % (
                label, len(e["all"]), len(e["all"]) + e["bad"], fmt(med.get(c), ".3f"),
                fmt(mibs(c), ".1f"), fmt(ratio(med.get(c), med.get("stream"))),
                fmt(paired(c, "stream"))))
    if not rows:    # no copy runs (run.sh --parts without copy)
        del md[head:]
    md.extend(foreground(out))
    md.extend(merge_section(out))
    notes = [(c, n) for c in order for n in runs[c]["notes"]]
    if notes:
        md.append("")
        md.append("## Notes\n")
        for c, n in notes:
            md.append("- %s: %s" % (c, n))
    text = "\n".join(md) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
