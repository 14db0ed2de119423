#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Helpers of bench/guest-fg.sh: sample copy progress, time partial writes,
reduce a foreground run to its numbers.

Usage:
  fgtool.py sample NAME INTERVAL OUTFILE
      Every INTERVAL s, read NAME's status (DM_TABLE_STATUS ioctl, noflush,
      as bench/dmwait.py) and append "<epoch s> <copied> <total> <in flight>
      <state> <user I/Os completed>" to OUTFILE, until SIGTERM ("-" for what
      a target does not tell; the I/Os from /sys/block/dm-N/stat). Works for dm-stream (<copied>/<total>
      regions, regions copying, state) and dm-clone (<hydrated>/<total>,
      hydrating regions; state "-", or "complete"). Creates OUTFILE.ready
      once it polls.

  fgtool.py pwlat NAME KIND TABLE REGION_SECTORS DELAYS LO HI SEED
      `dmsetup create NAME --table TABLE`; then, DELAYS (space-separated
      seconds after the create) later each, one 4 KiB O_DIRECT write into a
      region picked at random (SEED) between LO and HI (fractions of the
      device) and ahead of the copy cursor (copied + in flight + 1% of the
      regions), timed around pwrite() alone; then `dmsetup remove`. Prints
      one line per write: "<at s> <region> <cursor %> <ahead 0|1> <ms> <ok
      0|1> <error>". Exit status 1 when the create failed.

  fgtool.py analyze CFG REP REGION_SECTORS T_COPY SAMPLES FIO_JSON IOPS_LOG HIST_LOG IOLOG SERIES
      Reduce one fio run and the progress SAMPLES of the same run (or "-")
      to "<read iops> <write iops> <p99 read us> <p99 write us> (whole run,
      FIO_JSON) <MiB copied during fio> <copying s> <copy MiB/s> <IOPS while
      copying> <complete during fio 0|1> <p99 read us> <p99 write us> (while
      copying) <MiB copied because fio wrote there> <background copy MiB/s>"
      ("-" for what does not apply). fio's start and end are taken from the
      samples' I/O counts (else from its JSON). The copy window runs from
      T_COPY (epoch s: background copying started) or fio's start, whichever
      is later, to fio's end or the copy's completion, whichever is sooner
      (no copy: the whole run). IOPS_LOG: --write_iops_log with
      --log_avg_msec=1000; HIST_LOG: --write_hist_log with
      --log_hist_msec=1000 (the p99s in the window); IOLOG: --write_iolog
      (version 3, with times: which writes found their region uncopied).
      Appends the time series (seconds after T_COPY) to the CSV SERIES:
      "CFG,REP,copied_pct,t,value" and "CFG,REP,iops,t,value".

  fgtool.py idle REGION_SECTORS START END SAMPLES CFG REP SERIES
      The copy rate of an idle run between epoch START and END (or the
      completion, if sooner): "<MiB copied> <s> <MiB/s> <complete 0|1>";
      the progress samples also go to SERIES.
"""

import bisect
import json
import mmap
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dmwait import table_status  # noqa: E402

SECTOR = 512


def parse_status(st):
    """(copied, total, in flight, state) from a dm-stream or dm-clone status
    line (the fields after the target type), or None."""
    w = st.split()
    if len(w) < 6 or w[0] == "Fail":
        return None
    try:
        c, t = (int(x) for x in w[3].split("/"))
        inflight = int(w[4])
    except ValueError:
        return None
    state = w[5] if not w[5].isdigit() else ("complete" if c == t else "-")
    return c, t, inflight, state


def dm_stat(name):
    """/sys/block/dm-N/stat of the dm device NAME, or None."""
    for d in os.listdir("/sys/block"):
        try:
            with open("/sys/block/%s/dm/name" % d) as f:
                if f.read().strip() == name:
                    return "/sys/block/%s/stat" % d
        except OSError:
            continue
    return None


def user_ios(path):
    """Reads plus writes completed on the dm device: user I/O only (a
    target's own copies do not pass through it)."""
    try:
        with open(path) as f:
            w = f.read().split()
        return int(w[0]) + int(w[4])
    except (OSError, IndexError, ValueError):
        return None


def cmd_sample(name, interval, path):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    ctl = os.open("/dev/mapper/control", os.O_RDWR)
    stat = None
    with open(path, "a", buffering=1) as f:
        # Ready: the caller creates the device once this file exists.
        open(path + ".ready", "w").close()
        while not stop:
            try:
                st = table_status(ctl, name)
            except OSError:
                st = None
            if st is not None:
                stat = stat or dm_stat(name)
                ios = user_ios(stat) if stat else None
                p = parse_status(st) or ("-", "-", "-", "-")
                f.write("%.3f %s %s %s %s %s\n" % (time.time(), *p,
                                                   "-" if ios is None else ios))
            time.sleep(interval)
    return 0


def cmd_pwlat(name, kind, table, region, delays, lo, hi, seed):
    rnd = random.Random(seed)
    ctl = os.open("/dev/mapper/control", os.O_RDWR)
    t0 = time.monotonic()
    if subprocess.run(["dmsetup", "create", name, "--table", table]).returncode:
        return 1
    buf = mmap.mmap(-1, 4096)
    buf.write(os.urandom(4096))
    dev = "/dev/mapper/" + name
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    rbytes = region * SECTOR
    for d in delays:
        left = t0 + d - time.monotonic()
        if left > 0:
            time.sleep(left)
        try:
            p = parse_status(table_status(ctl, name))
        except OSError:
            p = None
        if not p:
            print("%.3f - - 0 - 0 no-status" % (time.monotonic() - t0))
            continue
        c, total, infl, _ = p
        cursor = c + infl + max(1, total // 100)
        a, b = int(lo * total), int(hi * total) - 1
        ahead = 1
        if cursor > a:
            a = cursor
        if a > b:
            a, ahead = int(lo * total), 0
        r = rnd.randint(a, max(a, b))
        # One 4 KiB block inside the region, not at its start: a partial write.
        off = r * rbytes + 4096 * rnd.randint(1, max(1, rbytes // 4096 - 1))
        err, ok = "", 1
        ts = time.perf_counter()
        try:
            os.pwrite(fd, buf, off)
        except OSError as e:
            err, ok = e.strerror.replace(" ", "_"), 0
        ms = (time.perf_counter() - ts) * 1000
        print("%.3f %d %.1f %d %.3f %d %s" % (d, r, 100.0 * c / total, ahead, ms, ok, err or "-"),
              flush=True)
    os.close(fd)
    subprocess.run(["dmsetup", "remove", "--retry", name], stdout=subprocess.DEVNULL)
    return 0


def read_samples(path):
    """([(epoch, copied, total)], [(epoch, user ios)])"""
    prog, ios = [], []
    if path == "-" or not os.path.exists(path):
        return prog, ios
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) < 6:
                continue
            if w[1] != "-":
                prog.append((float(w[0]), int(w[1]), int(w[2])))
            if w[5] != "-":
                ios.append((float(w[0]), int(w[5])))
    return prog, ios


def io_span(ios, interval=0.5):
    """(first, last) epoch at which user I/O was seen completing, each taken
    half a sampling interval before the sample that saw it; or None."""
    first = last = None
    for (ta, a), (tb, b) in zip(ios, ios[1:]):
        if b > a:
            if first is None:
                first = tb - interval / 2
            last = tb - interval / 2
    return (first, last) if first is not None else None


def at(samples, t):
    """Copied regions at epoch t, linearly interpolated."""
    if not samples:
        return None
    if t <= samples[0][0]:
        return samples[0][1]
    for (ta, ca, _), (tb, cb, _) in zip(samples, samples[1:]):
        if ta <= t <= tb:
            return ca + (cb - ca) * ((t - ta) / (tb - ta) if tb > ta else 1)
    return samples[-1][1]


def completion(samples):
    for t, c, n in samples:
        if c >= n:
            return t
    return None


def write_series(path, cfg, rep, t_create, samples, iops):
    with open(path, "a") as f:
        for t, c, n in samples:
            f.write("%s,%s,copied_pct,%.2f,%.2f\n" % (cfg, rep, t - t_create, 100.0 * c / n))
        for t, v in iops:
            f.write("%s,%s,iops,%.2f,%.0f\n" % (cfg, rep, t - t_create, v))


def p99(j):
    return j["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1000


def plat_val(idx, bits=6):
    """The latency (ns) in the middle of fio's histogram bin idx (as fio's
    tools/hist/fiologparser_hist.py)."""
    if idx < (1 << bits) << 1:
        return idx
    err = (idx >> bits) - 1
    return (1 << (err + bits)) + ((idx % (1 << bits)) + 0.5) * (1 << err)


def hist_p99(path, t0, lo, hi):
    """p99 completion latency (us) of reads and of writes whose one-second
    histogram interval (fio --write_hist_log --log_hist_msec=1000) lies in
    [lo, hi] (epoch; the log's times count from t0)."""
    sums = {0: None, 1: None}
    if path == "-" or not os.path.exists(path):
        return None, None
    with open(path) as f:
        for line in f:
            w = line.split(",")
            if len(w) < 4:
                continue
            t, d = t0 + int(w[0]) / 1000, int(w[1])
            if d not in sums or t - 1 < lo - 0.01 or t > hi + 0.01:
                continue
            bins = [int(x) for x in w[3:]]
            sums[d] = bins if sums[d] is None else [x + y for x, y in zip(sums[d], bins)]
    res = []
    for d in (0, 1):
        b = sums[d]
        n = sum(b) if b else 0
        if not n:
            res.append(None)
            continue
        acc = 0
        for i, c in enumerate(b):
            acc += c
            if acc >= 0.99 * n:
                res.append(plat_val(i) / 1000)
                break
    return tuple(res)


def write_copies(path, t0, region, samples, lo, hi):
    """Regions copied because fio wrote into them while uncopied, between
    epoch lo and hi, estimated from fio's I/O log (--write_iolog, version 3:
    microseconds from t0) and the progress samples: the background copies
    in order and skips copied regions, so the copied set is [0, B) plus the
    write-copied regions W, |copied| = B + |W above B|; a write at region r
    copies it when r is at or above B and not in W."""
    if path == "-" or not os.path.exists(path) or len(samples) < 2:
        return None
    rbytes = region * SECTOR
    writes = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 5 and w[2] == "write" and w[0].isdigit():
                writes.append((t0 + int(w[0]) / 1e6, int(w[3]) // rbytes))
    writes.sort()
    wset, wsorted, counted, i = set(), [], 0, 0

    def cursor(c):
        # The least B with B + |{w in W: w >= B}| >= c.
        lo_, hi_ = 0, c
        while lo_ < hi_:
            mid = (lo_ + hi_) // 2
            above = len(wsorted) - bisect.bisect_left(wsorted, mid)
            if mid + above >= c:
                hi_ = mid
            else:
                lo_ = mid + 1
        return lo_

    b = cursor(samples[0][1])
    for (ta, _, _), (tb, cb, _) in zip(samples, samples[1:]):
        while i < len(writes) and writes[i][0] <= tb:
            t, r = writes[i]
            i += 1
            if r >= b and r not in wset:
                wset.add(r)
                bisect.insort(wsorted, r)
                if lo <= t <= hi:
                    counted += 1
        b = cursor(cb)
    return counted


def cmd_analyze(cfg, rep, region, t_copy, spath, jpath, lpath, hpath, ipath, series):
    mib = region * SECTOR / 1048576
    job = json.load(open(jpath))
    j = job["jobs"][0]
    samples, ios = read_samples(spath)
    # When fio's I/O ran: from the device's own statistics (its JSON's
    # timestamp is taken after its teardown, a second or so late under TCG).
    span = io_span(ios)
    if span:
        t_start, t_end = span
    else:
        t_end = job.get("timestamp_ms", time.time() * 1000) / 1000
        t_start = t_end - j.get("job_runtime", 0) / 1000
    iops = {}
    if lpath != "-" and os.path.exists(lpath):
        with open(lpath) as f:
            for line in f:
                w = [x.strip() for x in line.split(",")]
                if len(w) >= 2:
                    # Read and write samples of one second may be logged a
                    # few ms apart: sum them by the second.
                    k = round(int(w[0]) / 1000)
                    iops[k] = iops.get(k, 0) + float(w[1])
    # A sample at second k averages the second before it.
    iops = sorted((t_start + k - 0.5, v) for k, v in iops.items() if k > 0)
    write_series(series, cfg, rep, t_copy, samples, iops)
    whole = ["%.0f" % j["read"]["iops"], "%.0f" % j["write"]["iops"],
             "%.0f" % p99(j["read"]), "%.0f" % p99(j["write"])]
    if not samples:
        # No copy: the whole run is the window.
        ic = [v for t, v in iops]
        pr, pw = hist_p99(hpath, t_start, t_start, t_end)
        print(" ".join(whole + ["-", "%.2f" % (t_end - t_start), "-",
                                "%.0f" % (sum(ic) / len(ic)) if ic else "-", "0",
                                "-" if pr is None else "%.0f" % pr,
                                "-" if pw is None else "%.0f" % pw, "-", "-"]))
        return 0
    tc = completion(samples)
    w_start = max(t_start, t_copy)
    w_end = min(t_end, tc) if tc else t_end
    done_during = 1 if tc and tc < t_end else 0
    copied = (at(samples, t_end) - at(samples, t_start)) * mib
    span = max(w_end - w_start, 0)
    in_win = (at(samples, w_end) - at(samples, w_start)) * mib
    rate = in_win / span if span > 0.2 else None
    inside = [v for t, v in iops if t - 0.5 >= w_start - 0.01 and t + 0.5 <= w_end + 0.01]
    ic = sum(inside) / len(inside) if inside else None
    pr, pw = hist_p99(hpath, t_start, w_start, w_end)
    wc = write_copies(ipath, t_start, region, samples, w_start, w_end)
    bg = (in_win - wc * mib) / span if wc is not None and span > 0.2 else None
    out = whole + ["%.1f" % copied, "%.2f" % span, "-" if rate is None else "%.1f" % rate,
                   "-" if ic is None else "%.0f" % ic, str(done_during),
                   "-" if pr is None else "%.0f" % pr, "-" if pw is None else "%.0f" % pw,
                   "-" if wc is None else "%.1f" % (wc * mib), "-" if bg is None else "%.1f" % bg]
    print(" ".join(out))
    return 0


def cmd_idle(region, start, end, spath, cfg, rep, series):
    mib = region * SECTOR / 1048576
    samples = read_samples(spath)[0]
    if not samples:
        print("- - - 0")
        return 1
    write_series(series, cfg, rep, samples[0][0], samples, [])
    tc = completion(samples)
    w_end = min(end, tc) if tc else min(end, samples[-1][0])
    span = w_end - start
    copied = (at(samples, w_end) - at(samples, start)) * mib
    print("%.1f %.2f %s %d" % (copied, span, "%.1f" % (copied / span) if span > 0.2 else "-",
                               1 if tc else 0))
    return 0


def main(a):
    if len(a) == 4 and a[0] == "sample":
        return cmd_sample(a[1], float(a[2]), a[3])
    if len(a) == 9 and a[0] == "pwlat":
        return cmd_pwlat(a[1], a[2], a[3], int(a[4]), [float(x) for x in a[5].split()],
                         float(a[6]), float(a[7]), int(a[8]))
    if len(a) == 11 and a[0] == "analyze":
        return cmd_analyze(a[1], a[2], int(a[3]), float(a[4]), *a[5:11])
    if len(a) == 8 and a[0] == "idle":
        return cmd_idle(int(a[1]), float(a[2]), float(a[3]), a[4], a[5], a[6], a[7])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
