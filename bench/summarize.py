#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise bench/guest-bench.sh output: medians, MiB/s and ratios.

Usage: bench/summarize.py DIR
Reads DIR/runs.csv and DIR/env.txt; writes DIR/results.csv (one line per
configuration), DIR/ratios.csv and DIR/results.md (the tables), and prints
the markdown. With bench/guest-fg.sh's files present (DIR/fg.csv,
fg-series.csv, pwlat.csv, nbd.csv, thin.csv) their sections too, their
medians in DIR/fg-results.csv, pwlat-results.csv, nbd-results.csv,
thin-results.csv, and DIR/fg.png (gnuplot, script in DIR/fg.gp): copy
progress and IOPS over time. With DIR/merge.csv (bench/guest-merge.sh) its
section, the medians in DIR/merge-results.csv.
"""

import csv
import math
import os
import shutil
import statistics
import subprocess
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


FG_DESCR = {
    "fg-linear": "`linear` over the destination (the ceiling)",
    "fg-stream": "dm-stream, default settings, streaming",
    "fg-clone": "dm-clone, hydration_threshold {t} hydration_batch_size {b}, hydrating",
    "fg-stream-paused": "dm-stream, `paused` (no background copying)",
    "fg-clone-nohyd": "dm-clone, `no_hydration` (no background copying)",
    "fg-rate": "dm-stream, rate {r} KiB/s",
    "fg-oneway": "dm-stream, rate {r} KiB/s, on the bench's own {s} MiB devices (the old run)",
    "fg-mirror": "the same in mirror mode",
    "idle-stream": "dm-stream, default settings, nothing else running",
    "idle-clone": "dm-clone, hydration_threshold {t} hydration_batch_size {b}, nothing else running",
}
FG_ORDER = ["fg-linear", "fg-stream", "fg-stream-paused", "fg-clone", "fg-clone-nohyd", "fg-rate",
            "fg-oneway", "fg-mirror"]
# The same target without background copying: what the background costs.
FG_PAUSED = {"fg-stream": "fg-stream-paused", "fg-clone": "fg-clone-nohyd",
             "fg-rate": "fg-stream-paused"}
# Which idle rate a foreground row is held against.
FG_IDLE = {"fg-stream": "idle-stream", "fg-rate": "idle-stream", "fg-oneway": "idle-stream",
           "fg-mirror": "idle-stream", "fg-clone": "idle-clone"}
# Rows on the foreground device, comparable with fg-linear.
FG_SAME_DEVICE = ("fg-stream", "fg-clone", "fg-rate", "fg-stream-paused", "fg-clone-nohyd")
FG_KEYS = ["read_iops", "write_iops", "p99_read_us", "p99_write_us", "copied_mib", "copying_s",
           "copy_mib_s", "iops_copying", "p99_read_copying_us", "p99_write_copying_us",
           "write_copied_mib", "bg_copy_mib_s"]
GOAL_IOPS = 0.90        # foreground IOPS while copying / linear
GOAL_PROGRESS = 0.25    # background copy rate under load / idle copy rate
GOAL_PW = 2.0           # p99 first partial write / one-region copy time


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def pct_rank(v, p):
    """Nearest-rank percentile (p99 of 20 samples is the largest)."""
    v = sorted(v)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)] if v else None


def goal(x, limit, above=True):
    if x is None:
        return "-"
    return "yes" if (x >= limit if above else x <= limit) else "**no**"


def read_csv(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return list(csv.DictReader(f))


def write_csv(out, name, rows, fields):
    with open(os.path.join(out, name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else
                            ("%.3f" % r[k] if isinstance(r[k], float) else r[k])) for k in fields})


def fg_load(out, env):
    rows = read_csv(out, "fg.csv")
    if rows is None:
        return []
    t, b = (env.get("clone_tuned", "? ?").split() + ["?", "?"])[:2]
    rate = "?"
    for w in env.get("fg", "").split(";"):
        if "rate rows" in w:
            rate = w.split()[2]
    desc = {c: d.format(t=t, b=b, r=rate, s=env.get("size_mib", "?")) for c, d in FG_DESCR.items()}
    res, order, notes = {}, [], []
    for r in rows:
        c = r["config"]
        if c not in res:
            res[c] = {"runs": 0, "ok": [], "complete": 0}
            order.append(c)
        e = res[c]
        e["runs"] += 1
        if r["valid"] == "1":
            e["ok"].append(r)
            if r["complete"] == "1":
                e["complete"] += 1
        if r["note"]:
            notes.append("%s rep %s: %s" % (c, r["rep"], r["note"]))

    def m(c, k):
        return med([num(r.get(k)) for r in res.get(c, {"ok": []})["ok"]])

    def iops(c):
        v = [num(r["read_iops"]) + num(r["write_iops"]) for r in res.get(c, {"ok": []})["ok"]
             if num(r["read_iops"]) is not None and num(r["write_iops"]) is not None]
        return med(v)

    ceiling = m("fg-linear", "iops_copying") or iops("fg-linear")
    table, csvrows = [], []
    for c in [x for x in FG_ORDER if x in res] + \
            [x for x in order if x.startswith("fg-") and x not in FG_ORDER]:
        e = res[c]
        io, ic = iops(c), m(c, "iops_copying")
        vsc = ic / ceiling if ic and ceiling and c in FG_SAME_DEVICE else None
        pz = iops(FG_PAUSED.get(c))
        vsp = ic / pz if ic and pz and c in FG_PAUSED else None
        cr, bg = m(c, "copy_mib_s"), m(c, "bg_copy_mib_s")
        span = m(c, "copying_s")
        wr = m(c, "write_copied_mib")
        idle = m(FG_IDLE.get(c), "copy_mib_s") if c in FG_IDLE else None
        prog = cr / idle if cr is not None and idle else None
        bprog = bg / idle if bg is not None and idle else None
        row = {"config": c, "valid_runs": len(e["ok"]), "runs": e["runs"], "iops": io,
               "iops_copying_vs_linear": vsc, "iops_copying_vs_paused": vsp,
               "idle_copy_mib_s": idle,
               "progress_vs_idle": prog, "bg_progress_vs_idle": bprog,
               "complete_during_fio": e["complete"]}
        row.update({k: m(c, k) for k in FG_KEYS})
        csvrows.append(row)
        lin = c == "fg-linear"
        goals = c in ("fg-stream", "fg-clone")

        def ms(k):
            return fmt(row[k] / 1000 if row[k] is not None else None, ".2f")
        table.append("| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                     "| %s | %s | %s |" % (
                         c, desc.get(c, c), len(e["ok"]), e["runs"], fmt(io, ".0f"),
                         fmt(ic, ".0f"), "1.00" if lin else fmt(vsc),
                         goal(vsc, GOAL_IOPS) if goals else "-", fmt(vsp),
                         ms("p99_read_copying_us"), ms("p99_write_copying_us"),
                         "-" if lin else fmt(span, ".1f"), "-" if lin else fmt(cr, ".1f"),
                         "-" if lin or wr is None or not span else fmt(wr / span, ".1f"),
                         "-" if lin else fmt(bg, ".1f"), "-" if lin else fmt(idle, ".1f"),
                         "-" if lin else "%s / %s" % (
                             fmt(100 * prog if prog is not None else None, ".0f"),
                             fmt(100 * bprog if bprog is not None else None, ".0f")),
                         goal(bprog, GOAL_PROGRESS) if goals else "-"))
        table[-1] += " %s |" % ("-" if lin else "%d/%d" % (e["complete"], len(e["ok"])))
    for c in ("idle-stream", "idle-clone"):
        if c in res:
            csvrows.append({"config": c, "valid_runs": len(res[c]["ok"]), "runs": res[c]["runs"],
                            "complete_during_fio": res[c]["complete"],
                            **{k: m(c, k) for k in FG_KEYS}})
    fields = ["config", "valid_runs", "runs", "iops", "read_iops", "write_iops", "p99_read_us",
              "p99_write_us", "iops_copying", "iops_copying_vs_linear", "iops_copying_vs_paused",
              "p99_read_copying_us",
              "p99_write_copying_us", "copying_s", "copied_mib", "copy_mib_s", "write_copied_mib",
              "bg_copy_mib_s", "idle_copy_mib_s", "progress_vs_idle", "bg_progress_vs_idle",
              "complete_during_fio"]
    write_csv(out, "fg-results.csv", csvrows, fields)

    idle_s = env.get("fg", "").split("idle window ")[-1].split("s")[0] or "?"
    lines = ["", "## Foreground I/O while copying\n",
             "%s; device %s. Copying starts 1 s after fio's first reads; *while copying* is "
             "from then until fio ends or the copy completes (`linear`: the whole run). "
             "*copy MiB/s* counts every region copied meanwhile; fio's random writes into "
             "uncopied regions copy them too (*by fio's writes*, from fio's I/O log), the "
             "rest is the *background*'s. *vs no background*: IOPS while copying over the "
             "IOPS of the same target with background copying never started (fio's writes "
             "still copy the regions they hit). *idle* is the rate of the same target with nothing "
             "else running (%s s, same devices). Goals, for dm-stream at its defaults: IOPS "
             "while copying >= %.2f of linear's; background progress under load >= %d%% of "
             "idle. Medians of valid runs; the rows on the bench's own devices are not "
             "held against `fg-linear` (a smaller device is faster under TCG).\n" % (
                 env.get("fg", "?"), env.get("fg_device", "?"), idle_s, GOAL_IOPS,
                 100 * GOAL_PROGRESS),
             "| config | what | valid/runs | IOPS r+w, whole run | IOPS while copying "
             "| vs linear | goal >= %.2f | vs no background | p99 read ms | p99 write ms "
             "| s copying "
             "| copy MiB/s | by fio's writes MiB/s | background MiB/s | idle MiB/s "
             "| under load, %% of idle: all / background | goal >= %d%% | completed during fio |"
             % (GOAL_IOPS, 100 * GOAL_PROGRESS),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"] + table
    a, b = iops("fg-mirror"), iops("fg-oneway")
    if a and b:
        lines += ["", "Mirror mode IOPS / one-way (same devices, same rate): %s" % fmt(a / b)]
    idle = [c for c in ("idle-stream", "idle-clone") if c in res]
    if idle:
        lines += ["", "| idle run | what | valid/runs | MiB copied | s | MiB/s | completed |",
                  "|---|---|---|---|---|---|---|"]
        for c in idle:
            e = res[c]
            lines.append("| %s | %s | %d/%d | %s | %s | %s | %d/%d |" % (
                c, desc[c], len(e["ok"]), e["runs"],
                fmt(m(c, "copied_mib"), ".0f"), fmt(m(c, "copying_s"), ".2f"),
                fmt(m(c, "copy_mib_s"), ".1f"), e["complete"], len(e["ok"])))
    png = fg_plot(out)
    if png:
        lines += ["", "Copy progress and IOPS over time (first repetition): `%s`" % png]
    for n in notes:
        lines.append("- %s" % n)
    return lines


def fg_plot(out):
    """DIR/fg.png from DIR/fg-series.csv with gnuplot; its name, or None."""
    rows = read_csv(out, "fg-series.csv") or []
    if not rows or not shutil.which("gnuplot"):
        return None
    data = {}
    for r in rows:
        if r.get("rep") != (rows[0].get("rep")):
            continue
        data.setdefault((r["config"], r["series"]), []).append((float(r["t"]), float(r["value"])))
    blocks, top, bottom = [], [], []
    style = {"fg-stream": "lc rgb '#1f77b4'", "fg-clone": "lc rgb '#d62728'",
             "fg-linear": "lc rgb '#2ca02c'", "idle-stream": "lc rgb '#1f77b4' dt 2",
             "idle-clone": "lc rgb '#d62728' dt 2", "fg-rate": "lc rgb '#9467bd'"}
    label = {"fg-stream": "dm-stream under fio", "fg-clone": "dm-clone under fio",
             "fg-linear": "linear (no copy)", "idle-stream": "dm-stream idle",
             "idle-clone": "dm-clone idle", "fg-rate": "dm-stream rate-limited"}
    for (cfg, ser), pts in sorted(data.items()):
        if cfg not in style:
            continue
        name = "$%s_%s" % (cfg.replace("-", "_"), ser)
        blocks.append("%s << EOD\n%s\nEOD" % (name, "\n".join("%.2f %.2f" % p for p in sorted(pts))))
        plot = "%s using 1:2 with linespoints pt 7 ps 0.4 lw 2 %s title '%s'" % (
            name, style[cfg], label[cfg])
        (top if ser == "copied_pct" else bottom).append(plot)
    if not top and not bottom:
        return None
    term = "pngcairo size 1000,800 font 'sans,10'"
    probe = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    if "pngcairo" not in probe.stdout + probe.stderr:
        term = "png size 1000,800"
    gp = ["set terminal %s" % term, "set output '%s'" % os.path.join(out, "fg.png")] + blocks + [
        "set multiplot layout 2,1 title 'fio 4 KiB randrw 70/30 while copying'",
        "set grid", "set key outside right",
        "set xlabel 's after copying started (idle runs: after the create)'"]
    if top:
        gp += ["set ylabel '% copied'", "set yrange [0:100]", "plot " + ", ".join(top)]
    if bottom:
        gp += ["set ylabel 'fio IOPS (read+write)'", "set yrange [0:*]",
               "plot " + ", ".join(bottom)]
    gp.append("unset multiplot")
    with open(os.path.join(out, "fg.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", os.path.join(out, "fg.gp")], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write("summarize: gnuplot failed: %s\n" % r.stderr.strip())
        return None
    return "fg.png"


def fg_pwlat(out):
    rows = read_csv(out, "pwlat.csv")
    if not rows:
        return []
    res, notes, links = {}, [], []
    for r in rows:
        if r["link"] not in links:
            links.append(r["link"])
        e = res.setdefault((r["link"], r["target"]), {"load": [], "idle": [], "behind": 0,
                                                      "bad": 0})
        if r["ok"] != "1" or num(r["ms"]) is None:
            e["bad"] += 1
            if r["note"]:
                notes.append("%s %s %s: %s" % (r["link"], r["target"], r["mode"], r["note"]))
            continue
        if r["mode"] == "load" and r["ahead"] != "1":
            e["behind"] += 1
            continue
        e[r["mode"]].append(float(r["ms"]))
    out_rows, table = [], []
    for link in links:
        for tgt in ("stream", "clone"):
            e = res.get((link, tgt))
            if not e:
                continue
            p99 = pct_rank(e["load"], 99)
            one = med(e["idle"])
            ratio = p99 / one if p99 is not None and one else None
            row = {"link": link, "target": tgt, "writes": len(e["load"]),
                   "not_ahead": e["behind"], "failed": e["bad"], "median_ms": med(e["load"]),
                   "p99_ms": p99, "max_ms": max(e["load"]) if e["load"] else None,
                   "idle_writes": len(e["idle"]), "one_region_ms": one, "p99_vs_one_region": ratio}
            out_rows.append(row)
            table.append("| %s | %s | %d | %s | %s | %s | %d | %s | %s | %s |" % (
                link, "dm-stream, default" if tgt == "stream" else "dm-clone, tuned",
                len(e["load"]), fmt(row["median_ms"], ".1f"), fmt(p99, ".1f"),
                fmt(row["max_ms"], ".1f"), len(e["idle"]), fmt(one, ".1f"),
                fmt(ratio, ".1f"), goal(ratio, GOAL_PW, above=False)))
    write_csv(out, "pwlat-results.csv", out_rows,
              ["link", "target", "writes", "not_ahead", "failed", "median_ms", "p99_ms", "max_ms",
               "idle_writes", "one_region_ms", "p99_vs_one_region"])
    lines = ["", "## First partial write latency\n",
             "One 4 KiB O_DIRECT write into an uncopied region ahead of the copy cursor while "
             "the background copies at full speed (`load`: 1-3 s after the create locally, 2 and "
             "5 s over NBD; writes that found the cursor past their region are left out), and "
             "the same write with no background copy (dm-stream `paused`, dm-clone "
             "`no_hydration`): the time to copy one region. p99 is nearest-rank (the largest "
             "of fewer than 100). Goal: p99 <= %g x one region.\n" % GOAL_PW,
             "| link | target | writes | median ms | p99 ms | max ms | idle writes "
             "| one region idle ms | p99 / one region | goal <= %gx |" % GOAL_PW,
             "|---|---|---|---|---|---|---|---|---|---|"] + table
    for n in notes:
        lines.append("- %s" % n)
    return lines


def fg_nbd(out, env):
    rows = read_csv(out, "nbd.csv")
    if not rows:
        return []
    res, notes, link = {}, [], None
    for r in rows:
        if r["valid"] == "skip":
            notes.append("skipped: %s" % r["note"])
            continue
        if r["config"] in ("nbd-link", "nbd-dd"):
            link = num(r["mib_per_s"])
            continue
        e = res.setdefault(r["config"], {"s": [], "runs": 0})
        e["runs"] += 1
        if r["valid"] == "1":
            e["s"].append(float(r["seconds"]))
        elif r["note"]:
            notes.append("%s rep %s: %s" % (r["config"], r["rep"], r["note"]))
    lines = ["", "## NBD origin\n", "%s. The link's read rate (fio, 1 MiB reads, 16 in "
             "flight, direct): %s MiB/s.\n"
             % (env.get("nbd", "not run"), fmt(link, ".2f"))]
    out_rows = []
    if res:
        lines += ["| config | valid/runs | median s | MiB/s | vs the link |", "|---|---|---|---|---|"]
        mib = num(env.get("nbd", "").split(" MiB")[0]) if env.get("nbd") else None
        for c in ("nbd-stream", "nbd-clone"):
            if c not in res:
                continue
            s = med(res[c]["s"])
            rate = mib / s if mib and s else None
            out_rows.append({"config": c, "valid_runs": len(res[c]["s"]), "runs": res[c]["runs"],
                             "median_s": s, "mib_per_s": rate, "link_mib_per_s": link})
            lines.append("| %s | %d/%d | %s | %s | %s |" % (
                c, len(res[c]["s"]), res[c]["runs"], fmt(s, ".2f"), fmt(rate, ".2f"),
                fmt(rate / link if rate and link else None)))
        a, b = med(res.get("nbd-stream", {"s": []})["s"]), med(res.get("nbd-clone", {"s": []})["s"])
        lines.append("")
        lines.append("dm-stream time / dm-clone time over NBD: %s" % fmt(a / b if a and b else None))
    write_csv(out, "nbd-results.csv", out_rows,
              ["config", "valid_runs", "runs", "median_s", "mib_per_s", "link_mib_per_s"])
    for n in notes:
        lines.append("- %s" % n)
    return lines


THIN_DESCR = {
    "thin-stream": "dm-stream, default",
    "thin-stream-skipz": "dm-stream, skip_zeroes",
    "thin-clone": "dm-clone, tuned",
    "thin-dd-sparse": "dd bs=64k conv=sparse (every zero block skipped)",
}


def fg_thin(out, env):
    rows = read_csv(out, "thin.csv")
    if not rows:
        return []
    res, notes = {}, []
    for r in rows:
        if r["valid"] == "skip":
            notes.append("skipped: %s" % r["note"])
            continue
        e = res.setdefault(r["config"], {"used": [], "s": [], "runs": 0, "blocks": r["volume_blocks"]})
        e["runs"] += 1
        if r["valid"] == "1":
            e["used"].append(float(r["used_blocks"]))
            e["s"].append(float(r["seconds"]))
        elif r["note"]:
            notes.append("%s rep %s: %s" % (r["config"], r["rep"], r["note"]))
    lines = ["", "## Thin destination\n",
             "%s. Used data blocks of the pool after the copy (the volume then equals the "
             "origin); half the volume is zeros, so about 50%% is the least.\n"
             % env.get("thin", "not run"),
             "| config | what | valid/runs | volume blocks | used blocks | used % | s |",
             "|---|---|---|---|---|---|---|"]
    out_rows = []
    for c in THIN_DESCR:
        if c not in res:
            continue
        e = res[c]
        u, blocks = med(e["used"]), num(e["blocks"])
        pct = 100 * u / blocks if u is not None and blocks else None
        out_rows.append({"config": c, "valid_runs": len(e["used"]), "runs": e["runs"],
                         "volume_blocks": e["blocks"], "used_blocks": u, "used_pct": pct,
                         "median_s": med(e["s"])})
        lines.append("| %s | %s | %d/%d | %s | %s | %s | %s |" % (
            c, THIN_DESCR[c], len(e["used"]), e["runs"], e["blocks"], fmt(u, ".0f"),
            fmt(pct, ".1f"), fmt(med(e["s"]), ".2f")))
    write_csv(out, "thin-results.csv", out_rows,
              ["config", "valid_runs", "runs", "volume_blocks", "used_blocks", "used_pct",
               "median_s"])
    for n in notes:
        lines.append("- %s" % n)
    return lines


def foreground(out):
    """The sections of bench/guest-fg.sh's CSV files, as markdown lines."""
    env = read_env(os.path.join(out, "env.txt"))
    return fg_load(out, env) + fg_pwlat(out) + fg_nbd(out, env) + fg_thin(out, env)


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
