#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_tool_06: dmstream's foreground-first options (target 2.1):
# --min-rate, --max-rate, --copy-on-read, --skip-zeroes, the set command,
# their round trip through the identity record, and a stalled stream.
#
# - Usage: bad rates, set without options, set --copy-on-read without on
#   or off or with another word, --copy-on-read=on for create, merge
#   --skip-zeroes (a merge copies only what changed): exit 1.
# - create with every option: the table line holds them in the kernel's
#   order; status (text and JSON) shows them; dump --json records the
#   rates and the copy_on_read and skip_zeroes bits; check passes.
# - set sends rate, min_rate, max_rate, max_inflight and copy_on_read in
#   one call (the table shows the new values), rate still works, set on a
#   device that is no stream fails (exit 2); the identity record keeps the
#   values the stream was created with.
# - assemble after the removal makes the table as created (not as set,
#   and not paused); the copy completes with the origin's data (half of it
#   zeros, which skip_zeroes leaves unwritten on a zeroed destination).
# - A record as a dmstream before 2.1 wrote it (no rates after
#   merge_chunk, no new bits): check passes, assemble makes the table
#   without them.
# - An origin that fails every read (dm-flakey, down): wait exits 4 at
#   once, the state field says stalled, status says so with the command
#   that goes on; once the origin is back, continue and wait complete it
#   with the origin's data.

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum
sh_start 37 dm-flakey

MB=8
NAME=tt06

make_loop -v OL $MB orig || ktap_skip_all "cannot set up loop devices"
make_loop -v DL $MB dest || ktap_skip_all "cannot set up loop devices"
make_loop -v META 1 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v SO $((MB / 2)) sorig || ktap_skip_all "cannot set up loop devices"
make_loop -v SD $((MB / 2)) sdest || ktap_skip_all "cannot set up loop devices"
SMETA=$(make_loop 1 smeta) || ktap_skip_all "cannot set up loop devices"
# The origin: 4 MiB of random bytes, then 4 MiB of zeros.
sh_fill_random "$OL" $((MB / 2))
sh_fill_random "$SO"

# dm-linear devices with uuids: what the identity record names.
lin() # NAME UUID DEV
{
	dmsetup create "$1" --uuid "$2" --table "0 $(sectors "$3") linear $3 0" >/dev/null 2>&1 &&
		cleanup_add "_dm_remove_hard $1" && _dm_node "$1"
}
sh_setup lin tt06-o TT06-ORIGIN "$OL"
sh_setup lin tt06-d TT06-DEST "$DL"
cleanup_add "_dm_remove_hard $NAME"
ORIG=$(dm_dev tt06-o)
DEST=$(dm_dev tt06-d)
ORIG_MD5=$(sh_md5 "$OL")
J=$TEST_TMP/out.json
jget() { dmst_py identity get "$J" "$1"; }
# table_opts NAME: the table line's words after the region size.
table_opts() { sh_table "$1" | cut -d' ' -f8-; }

# --- usage ---------------------------------------------------------------------------------

tt_expect "create --min-rate 12parsecs: usage error" 1 "invalid rate '12parsecs'" \
	create x --origin a --dest b --meta c --min-rate 12parsecs
tt_expect "create --max-rate 4294967296k: above 32 bits of KiB/s" 1 "is too large" \
	create x --origin a --dest b --meta c --max-rate 4294967296k
tt_expect "set without an option: usage error" 1 "nothing to set" set x
tt_expect "set --copy-on-read maybe: usage error" 1 "on or off" set x --copy-on-read maybe
tt_expect "set --copy-on-read without a value: usage error" 1 "needs an argument" \
	set x --copy-on-read
tt_expect "create --copy-on-read=on: it takes no value" 1 "takes no value" \
	create x --origin a --dest b --meta c --copy-on-read=on
tt_expect "merge --skip-zeroes: not an option of merge" 1 "unknown option" \
	merge x --meta m --skip-zeroes
tt_expect "set --help: exit 0, naming its options" 0 "--copy-on-read on\|off" set --help

# --- create with every option --------------------------------------------------------------

tt_expect "create with --min-rate, --max-rate, --copy-on-read, --skip-zeroes" 0 \
	"streaming .*\(paused\)" create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" \
	--paused --rate 8M --min-rate 1M --max-rate 64M --max-inflight 16 --copy-on-read \
	--skip-zeroes
CREATED="10 rate 8192 max_inflight 16 min_rate 1024 max_rate 65536 copy_on_read skip_zeroes"
ktap_check "... the table line holds them, in the kernel's order" \
	test "$(table_opts $NAME)" = "11 paused ${CREATED#10 }"
ktap_diag "table: $(sh_table $NAME)"
tt_expect "status shows them" 0 \
	"paused, .*limit 8\.0 MiB/s, busy 1\.0 MiB/s, idle 64\.0 MiB/s, copy-on-read, skip-zeroes" \
	status $NAME --interval 0
"$DMSTREAM" status $NAME --json --interval 0 >"$J"
ktap_check "status --json: rate_limit, min_rate, max_rate, copy_on_read, skip_zeroes" \
	test "$(jget rate_limit) $(jget min_rate) $(jget max_rate) $(jget copy_on_read) $(jget skip_zeroes)" \
	= "8192 1024 65536 true true"
"$DMSTREAM" dump --json "$META" >"$J"
ktap_check "dump --json: the record holds the rates and the copy_on_read|skip_zeroes bits" \
	test "$(jget identity.rate_kib) $(jget identity.min_rate_kib) $(jget identity.max_rate_kib) $(jget identity.max_inflight) $(jget identity.options)" \
	= "8192 1024 65536 16 48"
tt_expect "check passes" 0 "" check "$META"

# --- set -------------------------------------------------------------------------------------

tt_expect "set --rate --min-rate --max-rate 0 --max-inflight --copy-on-read off: exit 0" 0 "" \
	set $NAME --rate 16M --min-rate 2M --max-rate 0 --max-inflight 32 --copy-on-read off
ktap_check "... the table shows the new values" \
	test "$(table_opts $NAME)" = "8 paused rate 16384 max_inflight 32 min_rate 2048 skip_zeroes"
tt_expect "set --copy-on-read on: exit 0" 0 "" set $NAME --copy-on-read on
ktap_check "... the table says copy_on_read" sh_has_word "$(table_opts $NAME)" copy_on_read
tt_expect "rate 4M still works" 0 "" rate $NAME 4M
ktap_check "... the table says rate 4096" sh_has_pair "$(table_opts $NAME)" rate 4096
tt_expect "set on a device that is no stream: exit 2" 2 "is not a stream device" \
	set tt06-o --min-rate 1M
"$DMSTREAM" dump --json "$META" >"$J"
ktap_check "the identity record keeps the values the stream was created with" \
	test "$(jget identity.rate_kib) $(jget identity.min_rate_kib) $(jget identity.max_rate_kib) $(jget identity.options)" \
	= "8192 1024 65536 48"

# --- assemble ------------------------------------------------------------------------------

sh_setup dm_remove $NAME
tt_expect "assemble: exit 0" 0 "$NAME: assembled from $META" assemble "$META"
ktap_check "... the table as created: rates, max_inflight, copy_on_read, skip_zeroes" \
	test "$(table_opts $NAME)" = "$CREATED"
ktap_diag "table: $(sh_table $NAME)"
if sh_wait_state $NAME complete 120; then
	ktap_check "... the copy completes with the origin's data" \
		test "$(sh_md5 "$(dm_dev $NAME)")" = "$ORIG_MD5" -a "$(sh_md5 "$DL")" = "$ORIG_MD5"
else
	ktap_fail "... the copy completes with the origin's data" \
		"state $(sh_state $NAME) after 120 s"
fi
sh_setup dm_remove $NAME

# --- a record of an older dmstream ---------------------------------------------------------

IMG=$TEST_TMP/meta.img
dd if="$META" of="$IMG" bs=1M status=none
dmst_py identity corrupt "$IMG" pre-2.1
dd if="$IMG" of="$META" bs=1M oflag=direct conv=notrunc status=none
tt_expect "a record without the 2.1 fields: check passes" 0 "" check "$META"
"$DMSTREAM" dump --json "$META" >"$J"
ktap_check "... dump reads 0 for the rates and no new bits" \
	test "$(jget identity.min_rate_kib) $(jget identity.max_rate_kib) $(jget identity.options)" \
	= "0 0 0"
tt_expect "... assemble: exit 0" 0 "$NAME: assembled from $META" assemble "$META"
ktap_check "... the table without them" test "$(table_opts $NAME)" = "4 rate 8192 max_inflight 16"
sh_setup dm_remove $NAME

# --- stalled ---------------------------------------------------------------------------------

# An origin that fails every read: flakey, always down.
SLEN=$(sectors "$SO")
sh_setup dm_create tt06-bad "0 $SLEN flakey $SO 0 0 1"
cleanup_add "_dm_remove_hard tt06-s"
tt_expect "create over an origin that fails every read" 0 "streaming" \
	create tt06-s --origin "$(dm_dev tt06-bad)" --dest "$SD" --meta "$SMETA"
tt_expect "wait: exit 4, stalled, naming continue" 4 \
	"stalled: [0-9]+ regions could not be copied.*continue tt06-s" wait tt06-s --timeout 120
ktap_check "... the state field says stalled" test "$(sh_state tt06-s)" = stalled
tt_expect "status: what to do" 0 "copying stopped: .*Fix it, then '[^']*continue tt06-s'" \
	status tt06-s --interval 0
"$DMSTREAM" status tt06-s --json --interval 0 >"$J"
ktap_check "status --json: state stalled, copy errors counted" \
	test "$(jget state)" = stalled -a "$(jget errors)" -gt 0
sh_setup dm_reload tt06-bad "0 $SLEN linear $SO 0"
tt_expect "the origin back: continue, exit 0" 0 "" continue tt06-s
tt_expect "... wait: complete (exit 0)" 0 "" wait tt06-s --timeout 120
ktap_check "... with the origin's data" test "$(sh_md5 "$(dm_dev tt06-s)")" = "$(sh_md5 "$SO")"
sh_setup dm_remove tt06-s

ktap_finish
