#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tool_02: dmstream create, status (text, JSON, --watch), wait,
# pause/continue, rate and finish on real stream devices.
#
# A paused stream: its status and JSON say so; `rate` reaches the table;
# `finish` refuses (exit 6) and leaves the table alone; `wait --timeout`
# times out (exit 5); a second create of the name, or over metadata in use,
# fails. Then `continue`: `status --watch --json` (not a terminal) prints
# JSON lines whose percentage never drops and that end complete; `wait`
# returns 0 having slept on dm events (a few ioctls for seconds of copying:
# no busy poll); `pause` holds the count still; `finish` makes the
# device `linear` on the destination, with the origin's data, and frees the
# metadata device. `wait` on failures: an origin that fails every read
# (dm-flakey, down) stalls the stream, and a metadata device whose writes
# start failing (dm-flakey error_writes, reloaded underneath) switches it to
# ro: both make `wait` and `status --watch` exit 4 with the reason.

# shellcheck disable=SC2153 # make_loop -v sets META2 and DEST2
DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd strace dmsetup blockdev dd python3 md5sum
sh_start 27 dm-flakey

RS=128
MB=32
LEN=$((MB * 2048))
NR=$((LEN / RS))
NAME=tt02


# json_check JSON PYTHON-EXPR: the expression, over the parsed object "d",
# is true.
json_check()
{
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$1" "$2"
}

make_loop -v META 4 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v DEST $MB dest || ktap_skip_all "cannot set up loop devices"
make_loop -v ORIG $MB orig || ktap_skip_all "cannot set up loop devices"
make_loop -v META2 4 meta2 || ktap_skip_all "cannot set up loop devices"
make_loop -v DEST2 $MB dest2 || ktap_skip_all "cannot set up loop devices"
sh_fill_random "$ORIG"
ORIG_MD5=$(sh_md5 "$ORIG")
sh_zero "$META"
sh_zero "$META2"

# --- paused ------------------------------------------------------------------------------

cleanup_add "_dm_remove_hard $NAME"
tt_expect "create --paused: exit 0" 0 "^$NAME: streaming 32.0 MiB" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --paused --max-inflight 16
ktap_check "the node exists and the table is a paused stream" \
	grep -q " stream .* $RS 3 paused max_inflight 16\$" <<<"$([[ -b $(dm_dev $NAME) ]] && sh_table $NAME)"

tt_expect "status: 0/$NR, paused" 0 "^$NAME: 0\.0% copied \(0/$NR regions.*paused, rw, 0 errors" \
	status $NAME
tt_run status $NAME --json
if [[ $TT_RC -eq 0 ]] && json_check "$TT_OUT" \
	'd["state"] == "paused" and d["copied"] == 0 and d["total"] == '$NR' and d["percent"] == 0 and d["paused"] and d["max_inflight"] == 16 and d["total_bytes"] == '$((LEN * 512))' and d["rate"] is None'; then
	ktap_ok "status --json parses: paused, 0/$NR"
else
	ktap_fail "status --json parses: paused, 0/$NR" "exit $TT_RC: $TT_OUT"
fi

tt_expect "rate 8M/s: exit 0" 0 "" rate $NAME 8M/s
ktap_check "... the table says rate 8192" sh_has_pair "$(sh_table $NAME)" rate 8192

tt_expect "finish while paused: refused, exit 6" 6 "not complete: 0/$NR" finish $NAME
ktap_check "... the table is still the stream" grep -q " stream " <<<"$(sh_table $NAME)"

t0=$SECONDS
tt_expect "wait --timeout 2 on a paused stream: exit 5" 5 "timed out after 2 s" \
	wait $NAME --timeout 2
ktap_check "... after waiting ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -ge 1 -a $((SECONDS - t0)) -le 60

tt_expect "create of an existing name: exit 2" 2 "already exists" \
	create $NAME --origin "$ORIG" --dest "$DEST2" --meta "$META2"
tt_expect "create over metadata in use: exit 2" 2 "in use" \
	create tt02-b --origin "$ORIG" --dest "$DEST2" --meta "$META"

# --- streaming ---------------------------------------------------------------------------

WATCH=$TEST_TMP/watch.json
"$DMSTREAM" status $NAME --watch --json --interval 0.5 >"$WATCH" 2>"$TEST_TMP/watch.err" &
watcher=$!
# Sleep through the copy: 32 MiB at 8 MiB/s, at least 4 s. Count the ioctls
# (not CPU time, which depends on the host): a poll would make one every
# interval, sleeping on dm events makes a few. The wait starts while the
# stream is paused and the stream continues once the wait sleeps on events,
# so the copy happens during the wait however slow the host is.
strace -f -e trace=ioctl -o "$TEST_TMP/wait.strace" \
	"$DMSTREAM" wait $NAME >/dev/null 2>"$TEST_TMP/wait.err" &
waiter=$!
sh_wait_for 120 grep -qs DM_DEV_WAIT "$TEST_TMP/wait.strace"
tt_expect "continue: exit 0" 0 "" continue $NAME
wait $waiter
rc=$?
wait $watcher
wrc=$?
ktap_check "wait: exit 0 once complete (state $(sh_state $NAME))" \
	test $rc -eq 0 -a "$(sh_state $NAME)" = complete
nwait=$(grep -c DM_DEV_WAIT "$TEST_TMP/wait.strace")
nioctl=$(grep -c "ioctl(" "$TEST_TMP/wait.strace")
ktap_check "wait slept on events: $nwait DM_DEV_WAIT among $nioctl ioctls" \
	test "$nwait" -ge 1 -a "$nioctl" -le 50
if [[ $wrc -eq 0 ]] &&
   PYTHONPATH=$DIR python3 -B -m dmst.toolcheck watch "$WATCH" "$NR"; then
	ktap_ok "status --watch --json: JSON lines, rising, ending complete, exit 0"
else
	ktap_fail "status --watch --json: JSON lines, rising, ending complete, exit 0" "exit $wrc"
	ktap_diag "$(tail -n 3 "$WATCH") $(cat "$TEST_TMP/watch.err")"
fi
tt_expect "status: 100%, complete" 0 "100\.0% copied \($NR/$NR regions.*complete, rw, 0 errors" \
	status $NAME

tt_expect "finish: exit 0" 0 "finished: linear on" finish $NAME
ktap_check "... the table is linear on the destination at offset 0" \
	test "$(sh_table $NAME)" = "0 $LEN linear $(sh_devt "$DEST") 0"
ktap_check "... the device holds the origin's data" test "$(sh_md5 "$(dm_dev $NAME)")" = "$ORIG_MD5"
tt_run check "$META"
ktap_check "... the metadata device is free: check opens it exclusively, finds it ok" \
	test "$TT_RC" -eq 0 -a -z "$(grep 'in use' <<<"$TT_ERR")" -a \
	-n "$(grep "^$META: ok" <<<"$TT_OUT")"
dm_remove $NAME

# --- pause while streaming -----------------------------------------------------------------

sh_zero "$META2"
cleanup_add "_dm_remove_hard tt02-p"
# 32 MiB at 1 MiB/s: 32 s to pause in; a host too slow for that skips.
tt_run create tt02-p --origin "$ORIG" --dest "$DEST2" --meta "$META2" --rate 1M/s
sh_wait_copied_ge tt02-p 2 20
tt_expect "pause while streaming: exit 0" 0 "" pause tt02-p
sleep 1
c1=$(sh_copied tt02-p)
sleep 2
c2=$(sh_copied tt02-p)
if [[ $(sh_state tt02-p) == complete ]]; then
	ktap_skip "... the count holds still and the state is paused" \
		"the copy completed before the pause (a slow host)"
else
	ktap_check "... the count holds still ($c1, $c2) and the state is paused" \
		test "$c1" = "$c2" -a "$(sh_state tt02-p)" = paused
fi
dm_remove tt02-p

# --- failures --------------------------------------------------------------------------------

# An origin that fails every read: flakey, always down.
sh_zero "$META2"
dm_create tt02-bad "0 $LEN flakey $ORIG 0 0 1" || ktap_diag "flakey: $DM_ERR"
cleanup_add "_dm_remove_hard tt02-s"
tt_run create tt02-s --origin "$(dm_dev tt02-bad)" --dest "$DEST2" --meta "$META2"
tt_expect "wait on an origin that cannot be read: exit 4, stalled" 4 \
	"stalled: [0-9]+ regions could not be copied" wait tt02-s --timeout 120
tt_expect "status --watch on it: exit 4 too" 4 "stalled" status tt02-s --watch
dm_remove tt02-s

# A metadata device whose writes start failing once the stream runs.
sh_zero "$META2"
dm_create tt02-fm "0 8192 linear $META2 0" || ktap_diag "meta: $DM_ERR"
cleanup_add "_dm_remove_hard tt02-r"
# Slowly (32 s at 1 MiB/s), so that the first commit fails long before the
# copy could complete: a complete copy in ro mode counts as complete.
tt_run create tt02-r --origin "$ORIG" --dest "$DEST2" --meta "$(dm_dev tt02-fm)" --paused \
	--rate 1M/s
dm_reload tt02-fm "0 8192 flakey $META2 0 0 1 1 error_writes" ||
	ktap_diag "flakey reload: $DM_ERR"
"$DMSTREAM" continue tt02-r
tt_expect "wait when the metadata cannot be written: exit 4, ro mode" 4 "ro mode" \
	wait tt02-r --timeout 120
tt_expect "wait --json --progress prints JSON lines and exits 4" 4 '"mode":"ro"' \
	wait tt02-r --progress --json
dm_remove tt02-r

ktap_finish
