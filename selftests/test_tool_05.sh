#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tool_05: dmstream finish refuses a stream whose metadata failed,
# before the switch and after the suspend's final commit.
#
# A paused stream of two regions keeps its metadata on a dm-linear device,
# META-dev. Region 0 is written whole with a flush (committed), then region
# 1 whole without one: every region is copied in core, and its bit waits
# for a commit.
#
# - Refusal up front: META-dev becomes `error` before region 1 is written,
#   so the next commit fails and the stream leaves rw (ro with today's
#   kernel) while its state says complete. `finish` exits 4, naming the
#   mode, and the device stays a resumed stream with no inactive table.
#   After a flush (a second failing commit: fail mode, or still ro) the same.
# - Refusal after the suspend: META-dev is suspended with `error` loaded
#   before region 1 is written, so the commit blocks and the status says
#   complete and rw when `finish` looks. `finish` loads the linear table
#   and suspends the stream, whose postsuspend waits on that commit; once
#   the stream shows suspended, META-dev is resumed on `error`: the commit
#   and the final one fail, the mode leaves rw, and `finish` must notice it
#   before resuming: exit 4, the stream table resumed, no inactive table.
#
# Both hold for a kernel that steps rw -> ro -> fail on failed commits and
# for one that goes to ro or fail at once: only "not rw" is assumed.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd dmsetup dd python3 timeout
sh_start 12

RS=128				# sectors: 64 KiB regions
LEN=$((2 * RS))			# two regions
NAME=tt05
MNAME=tt05-meta
MSECT=8192

make_loop -v MLOOP 4 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v DEST 1 dest || ktap_skip_all "cannot set up loop devices"
make_loop -v ORIG 1 orig || ktap_skip_all "cannot set up loop devices"
sh_fill_random "$ORIG"

# A field of NAME's status, "Fail" when the whole status is that.
mode_of()
{
	local st

	st=$(dm_status "$1")
	[[ $st == Fail* ]] && { echo Fail; return; }
	sh_mode "$1"
}

# write_region R [fsync]: region R written whole through the stream.
write_region()
{
	dd if=/dev/urandom of="$(dm_dev $NAME)" bs=$((RS * 512)) count=1 seek="$1" \
		oflag=direct ${2:+conv=fsync} status=none
}

# is_stream: NAME's live table is the stream, it is resumed (ACTIVE), and
# nothing is loaded in its inactive slot (tables present: LIVE only).
is_stream()
{
	local info

	info=$(dmsetup info "$NAME")
	if [[ $(sh_table "$NAME") == "0 $LEN stream "* ]] &&
	   grep -q '^State: *ACTIVE$' <<<"$info" &&
	   grep -q '^Tables present: *LIVE$' <<<"$info"; then
		return 0
	fi
	echo "table: $(sh_table "$NAME")"
	echo "$info"
	return 1
}

# setup: a fresh paused stream over META-dev (linear on the zeroed loop),
# region 0 written and committed. Returns non-zero on failure.
setup()
{
	_dm_remove_hard $NAME
	_dm_remove_hard $MNAME
	sh_zero "$MLOOP"
	dm_create $MNAME "0 $MSECT linear $MLOOP 0" &&
	dm_create $NAME "0 $LEN stream $(dm_dev $MNAME) $DEST $ORIG $RS 1 paused" &&
	write_region 0 fsync && [[ $(sh_copied $NAME) == 1 && $(sh_mode $NAME) == rw ]]
}

left_rw() { [[ $(mode_of $NAME) != rw ]]; }

# --- refusal before the switch --------------------------------------------------------

kmsg "dm-stream selftest: $TEST_NAME: refusal before the switch"
if setup && dm_reload $MNAME "0 $MSECT error" && write_region 1; then
	ktap_ok "stream over a metadata device now 'error'; both regions written"
else
	ktap_fail "stream over a metadata device now 'error'; both regions written" "$DM_ERR"
	ktap_skip_all "setup failed"
fi
# The periodic commit fails within a second or so.
for ((i = 0; i < 100; i++)); do
	left_rw && break
	sleep 0.2
done
mode=$(mode_of $NAME)
st=$(sh_state $NAME)
ktap_check "the commit failed: mode $mode, state ${st:-?} (every region copied in core)" \
	test "$mode" != rw -a "$(sh_copied $NAME)" = 2

tt_expect "finish in $mode mode: refused, exit 4, names the mode" 4 \
	"(ro|fail) mode.*not finished, it is still a stream" finish $NAME
ktap_check "... the device is still a resumed stream, no inactive table" is_stream

# A flush makes another commit, which fails too.
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' \
	"$(dm_dev $NAME)" 2>/dev/null
mode=$(mode_of $NAME)
tt_expect "after a failing flush ($mode): finish refused again, exit 4" 4 \
	"(ro|fail) mode.*still a stream" finish $NAME
ktap_check "... still a resumed stream, no inactive table" is_stream

# --- refusal after the suspend's final commit ------------------------------------------------

kmsg "dm-stream selftest: $TEST_NAME: refusal after the suspend"
ok=
if setup && dmsetup suspend $MNAME && dmsetup load $MNAME --table "0 $MSECT error" &&
   write_region 1; then
	ok=1
fi
st=$(dm_status $NAME)
ktap_check "metadata device suspended with 'error' loaded; status before finish: ${st:-?}" \
	test -n "$ok" -a "$(sh_state $NAME)" = complete -a "$(sh_mode $NAME)" = rw

timeout -k 10 300 "$DMSTREAM" finish $NAME >"$TEST_TMP/finish.out" 2>"$TEST_TMP/finish.err" &
finish_pid=$!
# finish suspends the stream, whose postsuspend waits on the blocked commit.
suspended=
for ((i = 0; i < 300; i++)); do
	if dmsetup info $NAME | grep -q '^State: *SUSPENDED'; then
		suspended=1
		break
	fi
	kill -0 $finish_pid 2>/dev/null || break
	sleep 0.2
done
ktap_check "finish loaded the linear table and suspended the stream" test -n "$suspended"
dmsetup resume $MNAME || ktap_diag "cannot resume $MNAME"
wait $finish_pid
rc=$?
ktap_diag "finish: exit $rc; stderr:"
ktap_diag "$(cat "$TEST_TMP/finish.err")"
ktap_check "finish noticed the failed final commit: exit 4" test $rc -eq 4
ktap_check "... and said so" grep -q "final commit at the suspend failed.*(ro|fail) mode" \
	-E "$TEST_TMP/finish.err"
ktap_check "... the stream table is resumed, no inactive table (mode $(mode_of $NAME))" is_stream
ktap_check "... nothing on stdout" test ! -s "$TEST_TMP/finish.out"

dm_remove $NAME
dm_remove $MNAME

ktap_finish
