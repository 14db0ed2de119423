# SPDX-License-Identifier: GPL-2.0
"""Command line of dmst.crash: see __init__.py."""

import importlib
import sys

# command: (module, function). Only the command's module is imported: the
# workload starts while the target streams, and every second counts.
COMMANDS = {
    "workload": ("workload", "main"),
    "summary": ("writes", "summary"),
    "expected": ("writes", "expected"),
    "logcheck": ("logcheck", "main"),
    "check": ("check", "main"),
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.exit("usage: python3 -m dmst.crash {%s} ARGS..."
                 % ",".join(COMMANDS))
    module, func = COMMANDS[argv[0]]
    mod = importlib.import_module("." + module, __package__)
    return getattr(mod, func)(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
