# SPDX-License-Identifier: GPL-2.0
"""test_crash_01's Python: crash consistency with dm-log-writes (the
scenario is described at the top of selftests/test_crash_01.sh).

    python3 -m dmst.crash workload DEV NAME LW WRITES_JSON RS NR
    python3 -m dmst.crash summary WRITES_JSON NR
    python3 -m dmst.crash expected ORIG WRITES_JSON OUT LEN
    python3 -m dmst.crash logcheck LOG WRITES_JSON
    python3 -m dmst.crash check KEY=VALUE...

Modules: patterns (what each test write writes), workload (the writes,
acknowledged and marked in the log), writes (what writes.json implies),
logcheck (the log holds every mark), check (the replay checker: every
crash state against the model, and the target over sampled states).
"""
