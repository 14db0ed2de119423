#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tool_04: dmstream check and dump on crafted images and on files that
# cannot hold metadata. Image files only: no kernel module, no devices.
#
# - A FIFO (and a character device) is refused with exit 2 and a message
#   that says what it is, at once: opening a FIFO must not wait for a writer
#   (run under `timeout`, so a hang fails instead of stalling the run).

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/tool_helpers.sh"

DMSTREAM=${DMSTREAM:-$REPO_ROOT/tools/dmstream}
[[ -x $DMSTREAM ]] || ktap_skip_all "tools/dmstream is not built (make)"
require_cmd python3 timeout mkfifo

ktap_plan 4

# --- files that cannot hold metadata ----------------------------------------------------

FIFO=$TEST_TMP/fifo
mkfifo "$FIFO" || ktap_skip_all "cannot make a FIFO"
# tt_expect under timeout(1): a hang exits 124, not 2.
tt_timed() { TT_TIMEOUT=20 tt_expect "$@"; }
tt_timed "check of a FIFO: exit 2 at once, says FIFO" 2 "$FIFO: a FIFO, not a block device" \
	check "$FIFO"
tt_timed "dump of a FIFO: exit 2 at once" 2 "a FIFO" dump "$FIFO"
tt_timed "dump --json of a FIFO: exit 2 at once" 2 "a FIFO" dump --json "$FIFO"
tt_timed "check of /dev/null: exit 2, a character device" 2 "a character device" \
	check /dev/null

ktap_finish
