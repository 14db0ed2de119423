#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_fuzz_table_01: generated table lines and messages against a model.
#
# Table lines (fuzz/table.py) mix valid geometry with mutations: argument
# counts, junk and repeated devices (paths, major:minor, hex dev_t forms),
# region sizes and numbers at, past and far past their limits (2^32, 2^64,
# leading zeros, signs, hex), optional argument groups with wrong counts,
# unknown or repeated words, trailing words, target lengths past the devices,
# zero or too large, lengths that are not a multiple of a 4 KiB logical block
# device, metadata devices one sector too small, and huge dm-zero devices
# (too many regions). Each line goes to `dmsetup create`; the model (the
# admin guide's Constructor and Metadata sections, in the constructor's
# order) predicts acceptance or the exact error. Metadata devices are mostly
# blanked first, so accepted lines format them; the rest of the time they
# keep what an earlier line wrote and the superblock geometry checks answer.
# An accepted line's status must match (metadata blocks, regions, state,
# optional arguments in force), and the device must go away with `dmsetup
# remove`.
#
# Then messages (fuzz/message.py) to one live device: pause, continue, rate
# and max_inflight with numbers at and past their limits, unknown words,
# wrong word counts, empty and dm core (@) messages, sectors past the end.
# After each, the status must show the model's state.
#
# Counts: 50 lines and 30 messages (slice), 500 and 300 with
# DMSTREAM_FUZZ=full; see fuzz_helpers.sh for the seed and the other knobs.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"
. "$(dirname "$0")/fuzz_helpers.sh"

require_cmd losetup

sh_start 6 dm-zero
fz_init
TABLE_N=$(fz_count 50 500)
MSG_N=$(fz_count 30 300)
W=$TEST_TMP/fz
mkdir -p "$W"
INV=$W/inventory.tsv
: >"$INV"
cleanup_add "fz_remove_prefix fzt-c"

# --- devices -----------------------------------------------------------------
# Metadata devices are loop devices whose backing files the loop blanks
# directly (fz_blank), or dm-zero (always blank).
loops()
{
	fz_loop M1 $((4 << 20)) meta1 && fz_loop M4K $((1 << 20)) m4k 4096 &&
	fz_loop M23 $((23 * 512)) m23 && fz_loop M24 $((24 * 512)) m24 &&
	fz_loop M40 $((40 * 512)) m40 &&
	make_loop -v D1 8 d1 && make_loop -v D2 8 d2 && make_loop -v BACKD 8 backd &&
	d4k1=$(make_loop -b 4096 4 d4k1) && d4k2=$(make_loop -b 4096 4 d4k2)
}
loops || ktap_skip_all "cannot set up the loop devices"
sh_setup dm_create fzt-mz "0 32768 zero"
sh_setup dm_create fzt-d3 "0 12345 linear $BACKD 0"
sh_setup dm_create fzt-z1 "0 68719476736 zero"
sh_setup dm_create fzt-z2 "0 68719476736 zero"

# inventory: the devices' lines for the generator, "ROLE NAME DEV KIND" each.
inventory()
{
	local e role name dev kind

	for e in "meta M1 $M1 loop" "meta M4K $M4K loop" "meta M23 $M23 loop" \
		"meta M24 $M24 loop" "meta M40 $M40 loop" "meta MZ $(dm_dev fzt-mz) zero" \
		"data D1 $D1 loop" "data D2 $D2 loop" "data D3 $(dm_dev fzt-d3) linear" \
		"data D4K1 $d4k1 loop" "data D4K2 $d4k2 loop" \
		"data Z1 $(dm_dev fzt-z1) zero" "data Z2 $(dm_dev fzt-z2) zero" \
		"other BACKD $BACKD loop"; do
		read -r role name dev kind <<<"$e"
		fz_inventory "$INV" "$role" "$name" "$dev" "$kind" || return 1
	done
}
inventory || ktap_bail "cannot list the devices for the generator"

declare -A DEVPATH
while IFS=$'\t' read -r _ name path _; do
	DEVPATH[$name]=$path
done <"$INV"

fz_klog_start "$W/kmsg.log" || ktap_skip_all "cannot follow the kernel log"

# --- table lines ---------------------------------------------------------------
start=$SECONDS
fz_py table-gen --seed "$FZ_SEED" --first "$FZ_FIRST" --count "$TABLE_N" \
	--inventory "$INV" --out "$W/cases.tsv" || {
	ktap_fail "the case generator ran" "fuzz table-gen crashed (seed $FZ_SEED): a bug in selftests/fuzz"
	ktap_bail "table-gen failed"
}
: >"$W/results.tsv"
while IFS=$'\t' read -r n _ _ blank line; do
	blanked=0
	if [[ $blank != - ]]; then
		fz_blank "${FZ_FILE[${DEVPATH[$blank]}]}" && blanked=1
	fi
	name=fzt-c$n
	fz_mark table "$n"
	rc=0
	err=$(dmsetup create "$name" --table "$line" 2>&1 >/dev/null) || rc=$?
	fz_case_end "$name" "$rc"
	err=${err//$'\t'/ }
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$blanked" "$rc" "${FZ_STATUS//$'\n'/ }" \
		"$FZ_RM" "$FZ_LEFT" "${err%%$'\n'*}" >>"$W/results.tsv"
done <"$W/cases.tsv"
table_secs=$((SECONDS - start))

# --- messages --------------------------------------------------------------------
MSG_LEN=16384
MSG_OPTS="paused rate 1024"
start=$SECONDS
msg_ok=
fz_blank "${FZ_FILE[$M1]}"
if dm_create fzt-msg "0 $MSG_LEN stream $M1 $D1 $D2 128 3 $MSG_OPTS"; then
	msg_ok=1
	fz_py msg-gen --seed "$FZ_SEED" --first "$FZ_FIRST" --count "$MSG_N" \
		--length "$MSG_LEN" --out "$W/msg-cases.tsv" || msg_ok=
fi
: >"$W/msg-results.tsv"
if [[ -n $msg_ok ]]; then
	while IFS=$'\t' read -r n _ sector words; do
		read -r -a hex <<<"$words"
		fz_hex_words "${hex[@]}"
		fz_mark message "$n"
		rc=0
		dmsetup message -- fzt-msg "$sector" "${FZ_WORDS[@]}" >/dev/null 2>&1 || rc=$?
		# The status after accepted messages only: a refused one that
		# changed something shows in the next accepted one's status.
		status=-
		[[ $rc -eq 0 ]] && status=$(dmsetup status fzt-msg 2>&1)
		printf '%s\t%s\t%s\n' "$n" "$rc" "${status//$'\n'/ }" >>"$W/msg-results.tsv"
	done <"$W/msg-cases.tsv"
fi
msg_secs=$((SECONDS - start))
fz_klog_stop

# --- verdicts --------------------------------------------------------------------
fz_py table-judge --seed "$FZ_SEED" --inventory "$INV" --cases "$W/cases.tsv" \
	--results "$W/results.tsv" --kmsg "$W/kmsg.log" >"$W/judge.out" 2>&1
judge_rc=$?
fz_show "$W/judge.out"
ktap_diag "table lines: $(fz_total "$W/judge.out" cases) in ${table_secs} s"
fz_judged "$W/judge.out" $judge_rc "$TABLE_N" "table fuzz: $TABLE_N lines" error
if [[ $(fz_total "$W/judge.out" oopses) == 0 && $(fz_total "$W/judge.out" left) == 0 ]]; then
	ktap_ok "table fuzz: no oops or warning, no device left behind"
else
	ktap_fail "table fuzz: no oops or warning, no device left behind"
fi

if [[ -n $msg_ok ]]; then
	fz_py msg-judge --seed "$FZ_SEED" --length "$MSG_LEN" --initial "$MSG_OPTS" \
		--cases "$W/msg-cases.tsv" --results "$W/msg-results.tsv" \
		--kmsg "$W/kmsg.log" >"$W/msg-judge.out" 2>&1
	judge_rc=$?
	fz_show "$W/msg-judge.out"
	ktap_diag "messages: $(fz_total "$W/msg-judge.out" cases) in ${msg_secs} s"
	fz_judged "$W/msg-judge.out" $judge_rc "$MSG_N" "message fuzz: $MSG_N messages" status
	if [[ $(fz_total "$W/msg-judge.out" oopses) == 0 ]] && dm_remove fzt-msg; then
		ktap_ok "message fuzz: no oops or warning, device removed"
	else
		ktap_fail "message fuzz: no oops or warning, device removed" "$DM_ERR"
	fi
else
	for t in "messages run" "messages match the model" "no oops or warning"; do
		ktap_fail "message fuzz: $t" "could not create the device or the cases"
	done
fi
ktap_finish
