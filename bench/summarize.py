#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise bench/guest-bench.sh output: medians, MiB/s and ratios.

Usage: bench/summarize.py DIR
Reads DIR/runs.csv and DIR/env.txt; writes DIR/results.csv (one line per
configuration), DIR/ratios.csv and DIR/results.md (the tables), and prints
the markdown.
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
    md.extend(foreground(out))
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
