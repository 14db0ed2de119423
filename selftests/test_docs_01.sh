#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_docs_01: the admin guide and the man page state the defaults, limits,
# target version and status field order of dm-stream/stream-interface.h,
# the one header the kernel and dmstream(8) share. One subtest per claim,
# from scripts/check-interface-docs.py (which make lint runs too).

# shellcheck source=selftests/common.sh
. "$(dirname "$0")/common.sh"

python3 "$REPO_ROOT/scripts/check-interface-docs.py" "$REPO_ROOT"
