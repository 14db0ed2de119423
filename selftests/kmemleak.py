#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""kmemleak.py - turn /sys/kernel/debug/kmemleak into KTAP subtests.

Usage: kmemleak.py [--since JIFFIES] FIRST REPORT [KALLSYMS]

Prints one "not ok N <title>" line per unreferenced object in REPORT (a copy
of /sys/kernel/debug/kmemleak), numbered from FIRST, each followed by the
object's whole report as "# " lines. With --since, objects allocated before
JIFFIES are left out (and counted in a "# " line). KALLSYMS is a copy of the /proc/kallsyms
lines of a module taken before it was unloaded: backtrace frames in that
module, which the kernel can no longer name ("[<ffffffffc0a01234>]
0xffffffffc0a01234"), are named from it ("stream_ctr+0x234 [dm_stream]").

The title names the frame that asked for the memory: the first one in an
unloaded module, else the first one past the allocator's own frames.
run_tests.sh calls this in the guest after its final kmemleak scan.
"""

import bisect
import re
import sys

# Frames of the allocators themselves, skipped when picking the title.
ALLOCATOR = re.compile(
    r"^(__)?(kmemleak_|kmem_cache_alloc|kmalloc|__kmalloc|kvmalloc|kzalloc|"
    r"kcalloc|krealloc|kstrdup|kmemdup|kasprintf|kvasprintf|__kmem_cache|"
    r"slab_|___slab|__slab|alloc_pages|__alloc_pages|vmalloc|__vmalloc|"
    r"vzalloc|kvzalloc|kvcalloc|mempool_|pcpu_|__alloc_percpu|alloc_percpu|"
    r"kasan_|__do_kmalloc)")
UNNAMED = re.compile(r"\[<([0-9a-f]{16})>\] 0x([0-9a-f]{16})\s*$")
FRAME = re.compile(r"\[<[0-9a-f]{16}>\] (\S+)(.*)$")
JIFFIES = re.compile(r"^\s+comm \".*\", pid \d+, jiffies (\d+)")


def load_symbols(path):
    syms = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    mod = parts[3] if len(parts) > 3 else ""
                    syms.append((int(parts[0], 16), parts[2], mod))
    except OSError:
        pass
    syms.sort()
    return syms


def name(addr, syms, starts):
    i = bisect.bisect_right(starts, addr) - 1
    if i < 0:
        return None
    start, sym, mod = syms[i]
    # A module's text is far below 1 MiB: anything further is not ours.
    if addr - start >= 1 << 20:
        return None
    return "%s+0x%x %s" % (sym, addr - start, mod)


def main():
    args = sys.argv[1:]
    since = 0
    if args[:1] == ["--since"]:
        since = int(args[1])
        args = args[2:]
    first = int(args[0])
    with open(args[1], errors="replace") as f:
        text = f.read()
    syms = load_symbols(args[2]) if len(args) > 2 else []
    starts = [s[0] for s in syms]

    objects = []
    old = 0
    for line in text.splitlines():
        if line.startswith("unreferenced object"):
            objects.append([line])
        elif objects:
            objects[-1].append(line)
            m = JIFFIES.search(line)
            if m and int(m.group(1)) < since and objects[-1][0]:
                objects[-1][0] = None
                old += 1
    objects = [o for o in objects if o[0]]
    if old:
        print("# %d unreferenced object(s) allocated before the run "
              "(jiffies %d) not counted" % (old, since))

    n = first
    for obj in objects:
        lines = []
        title_frame = None
        fallback = None
        for line in obj:
            m = UNNAMED.search(line)
            if m and syms:
                named = name(int(m.group(1), 16), syms, starts)
                if named:
                    line = line[:m.start(2) - 2] + named
                    title_frame = title_frame or named
            f = FRAME.search(line)
            if f and not fallback and not ALLOCATOR.match(f.group(1)):
                fallback = (f.group(1) + f.group(2)).strip()
            lines.append(line.rstrip())
        head = obj[0].rstrip(":").replace("unreferenced object ", "")
        print("not ok %d unreferenced object %s from %s" %
              (n, head, title_frame or fallback or "an unknown caller"))
        for line in lines:
            print("# " + line)
        n += 1


if __name__ == "__main__":
    main()
