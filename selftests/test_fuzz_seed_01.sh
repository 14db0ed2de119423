#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_fuzz_seed_01: generated seeding ranges (dmstream create --copied and
# --copied-from) against a model.
#
# fuzz/seed.py writes range lists, mostly valid (region aligned or not, every
# unit spelling, ranges reaching the device's end), some with mutations
# (missing or doubled separators, signs, hex, units that do not exist, numbers
# past 2^64, ranges reversed, empty or past the end, stray blanks, newlines,
# in files comments, CRLF and NUL bytes). Each goes to `dmstream create
# --paused` over blank metadata. The model (dmstream(8), --copied) predicts a
# refusal or exactly the regions seeded: a refusal must exit 1 and leave the
# metadata blank; an accepted list must show, in `dmstream dump --json`, the
# model's copied regions, and the device is removed again.
#
# Counts: 40 lists (slice), 400 with DMSTREAM_FUZZ=full; see fuzz_helpers.sh.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"
. "$(dirname "$0")/fuzz_helpers.sh"
. "$(dirname "$0")/tool_helpers.sh"

require_cmd losetup

sh_start 3
fz_init
N=$(fz_count 40 400)
W=$TEST_TMP/fz
mkdir -p "$W"
DEV_BYTES=$((16 << 20))
REGION=65536
NAME=fzs-seed$$
cleanup_add "fz_remove_prefix fzs-seed"

loops()
{
	fz_loop ORIG $DEV_BYTES orig && fz_loop DEST $DEV_BYTES dest &&
		fz_loop META $((1 << 20)) meta
}
loops || ktap_skip_all "cannot set up the loop devices"

sh_setup fz_py seed-gen --seed "$FZ_SEED" --count "$N" --first "$FZ_FIRST" --out "$W/list" \
	--dir "$W" --dev-bytes $DEV_BYTES --region-bytes $REGION

# blank_now FILE: "yes" when the first 4 KiB of FILE are zero (the loop
# device's backing file, read without a process but od).
blank_now()
{
	if [[ -z $(od -An -v -tx1 -N4096 "$1" | tr -d ' 0\n') ]]; then
		echo yes
	else
		echo no
	fi
}

: >"$W/results"
mfile=${FZ_FILE[$META]}
while read -r n kind; do
	fz_blank "$mfile"
	if [[ $kind == file ]]; then
		"$DMSTREAM" create "$NAME" --origin "$ORIG" --dest "$DEST" --meta "$META" \
			--region-size $REGION --paused --copied-from "$W/$n.txt" >"$W/$n.out" 2>&1
		rc=$?
	else
		IFS= read -r -d '' arg <"$W/$n.arg"
		"$DMSTREAM" create "$NAME" --origin "$ORIG" --dest "$DEST" --meta "$META" \
			--region-size $REGION --paused --copied "$arg" >"$W/$n.out" 2>&1
		rc=$?
	fi
	if [[ $rc -eq 0 ]]; then
		fz_remove "$NAME"
		"$DMSTREAM" dump "$META" --json >"$W/$n.json" 2>/dev/null
	else
		blank_now "$mfile" >"$W/$n.blank"
		fz_exists "$NAME" && fz_remove "$NAME"
	fi
	echo "$n $rc" >>"$W/results"
done <"$W/list"

fz_py seed-judge --cases "$W/list" --results "$W/results" --dir "$W" \
	--dev-bytes $DEV_BYTES --region-bytes $REGION >"$W/judge.out" 2>&1
jrc=$?
fz_show "$W/judge.out"
fz_judged "$W/judge.out" $jrc "$N" "seeding lists: $N" "every seeded region"
ktap_check "no device left behind" bash -c "! ls /dev/mapper/ | grep -q '^fzs-seed'"
ktap_finish
