#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_seed_01: seeding, `dmstream create|copy --copied RANGES` and
# `--copied-from FILE`: regions the ranges cover whole start copied.
#
# A 16 MiB origin of random bytes, 64 KiB regions (256), a destination
# pre-filled with other random bytes.
#
# - create --copied "0-1M,4M+512k,10M+96k,12320k-12480k,30720s+128s"
#   --paused: says "seeded 28 of 256 regions as copied" (10M+96k covers
#   region 160 whole and half of 161; 12320k-12480k covers 193 and 194 and
#   half of 192); the status counts 28 copied of 256 and `dump --json`
#   shows exactly those runs. The origin loop device's read counter: the
#   create itself reads at most the eight 4 KiB origin samples (the guest
#   has no udev, nothing else opens the loop device), and the copy, from
#   `continue` to complete, reads exactly the 228 unseeded regions, no
#   sector more. After finish the destination holds the origin's bytes
#   outside the seeded regions (the half-covered ones included) and its
#   own pre-filled bytes inside them.
# - --copied-from FILE (comments, blank lines, the two halves of region 224
#   on two lines, the last region up to the device's end): the union of the
#   lines counts, "seeded 19 of 256".
# - Refused with nothing written: that metadata again once it holds a
#   stream to continue (--copied and --copied-from); on blank metadata a
#   range of bad syntax (usage error, exit 1), one beyond the device, a
#   missing or malformed file. The metadata is byte for byte as before and
#   no device is left.
# - copy --copied of a linear device: the same seeding, and the origin
#   reads only the unseeded regions (plus the samples) until --finish
#   switches it to linear on a destination holding the expected bytes.

# shellcheck disable=SC2153 # make_loop -v sets ORIG2, DEST2 and META2
DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/common.sh"
. "$DIR/stream_helpers.sh"
. "$DIR/tool_helpers.sh"
. "$DIR/merge_helpers.sh"

require_cmd dmsetup blockdev dd python3 md5sum cmp seq
sh_start 34

MB=16
LEN=$((MB * 2048))
RS=128				# sectors (64 KiB)
RB=$((RS * 512))
NR=$((LEN / RS))		# 256
SAMPLES=64			# sectors: eight 4 KiB origin samples
NAME=ts01
RANGES=0-1M,4M+512k,10M+96k,12320k-12480k,30720s+128s
SEEDED="$(mh_seq 0 15) $(mh_seq 64 71) 160 193 194 240"
NSEED=28

make_loop -v META 1 meta || ktap_skip_all "cannot set up loop devices"
make_loop -v ORIG $MB orig || ktap_skip_all "cannot set up loop devices"
make_loop -v DEST $MB dest || ktap_skip_all "cannot set up loop devices"
make_loop -v META2 1 meta2 || ktap_skip_all "cannot set up loop devices"
make_loop -v ORIG2 $MB orig2 || ktap_skip_all "cannot set up loop devices"
make_loop -v DEST2 $MB dest2 || ktap_skip_all "cannot set up loop devices"

sh_fill_random "$ORIG"
sh_fill_random "$DEST"
OIMG=$(sh_tmpfile)
DIMG=$(sh_tmpfile)
sh_read "$ORIG" >"$OIMG"
sh_read "$DEST" >"$DIMG"

# no_device NAME: no dm device NAME exists.
no_device()
{
	! dm_exists "$1"
}

# refused DESC REGEX META ARGS...: dmstream ARGS fails (any non-zero exit,
# or exit $REFUSE_RC when set), saying REGEX (extended, case-insensitive);
# META holds the same bytes as before and no device $NAME exists.
refused()
{
	local desc=$1 re=$2 meta=$3 before after

	shift 3
	before=$(sh_md5 "$meta")
	tt_run "$@"
	after=$(sh_md5 "$meta")
	if [[ $TT_RC -eq 0 || ( -n ${REFUSE_RC:-} && $TT_RC -ne $REFUSE_RC ) ]]; then
		ktap_fail "$desc" "dmstream $* exited $TT_RC, expected ${REFUSE_RC:-non-zero}"
	elif ! grep -Eiq -- "$re" <<<"$TT_OUT$TT_ERR"; then
		ktap_fail "$desc" "exit $TT_RC, but the output lacks /$re/"
	elif [[ $before != "$after" ]]; then
		ktap_fail "$desc" "exit $TT_RC, but the metadata device changed"
	elif dm_exists $NAME; then
		ktap_fail "$desc" "exit $TT_RC, but device $NAME exists"
	else
		ktap_ok "$desc (exit $TT_RC: $(head -n 1 <<<"$TT_ERR"))"
		return 0
	fi
	ktap_diag "stdout: $TT_OUT"
	ktap_diag "stderr: $TT_ERR"
	_dm_remove_hard $NAME
	return 1
}

# --- create --copied RANGES ---------------------------------------------------------------

sh_zero "$META"
cleanup_add "_dm_remove_hard $NAME"
kmsg "dm-stream selftest: $TEST_NAME: create --copied"
r0=$(mh_rsect "$ORIG")
tt_expect "create --copied $RANGES --paused: exit 0, seeded $NSEED of $NR" 0 \
	"^$NAME: seeded $NSEED of $NR regions as copied" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --region-size 64k \
	--copied "$RANGES" --paused
r1=$(mh_rsect "$ORIG")
dm_exists $NAME || ktap_bail "create --copied made no device: $TT_ERR"
ktap_check "the status starts at the seeded count: $(sh_copied $NAME)/$(sh_total $NAME) copied" \
	test "$(sh_copied $NAME)/$(sh_total $NAME)" = "$NSEED/$NR"
runs=$(mh_dump_copied "$META")
ktap_check "dump --json: the copied runs are the regions covered whole ($runs)" \
	test "$runs" = "0-15 64-71 160-160 193-194 240-240"
ktap_check "create read $((r1 - r0)) sectors of the origin: at most the $SAMPLES of its samples" \
	test $((r1 - r0)) -le $SAMPLES
tt_run continue $NAME
TT_TIMEOUT=300 tt_run wait $NAME --timeout 240
ktap_check "continue, wait: exit $TT_RC, complete" \
	test "$TT_RC" -eq 0 -a "$(sh_state $NAME)" = complete
r2=$(mh_rsect "$ORIG")
ktap_check "the copy read $((r2 - r1)) sectors of the origin: exactly the $((NR - NSEED)) unseeded regions ($(((NR - NSEED) * RS)))" \
	test $((r2 - r1)) -eq $(((NR - NSEED) * RS))
tt_expect "finish: exit 0" 0 "" finish $NAME
ktap_check "... linear on the destination" \
	test "$(sh_table $NAME)" = "0 $LEN linear $(sh_devt "$DEST") 0"
EXP=$(sh_tmpfile)
cp "$OIMG" "$EXP"
# shellcheck disable=SC2086 # a list of regions
mh_image "$EXP" "$DIMG" $RB $SEEDED
ktap_check "the destination: the origin's bytes, its own in the seeded regions" \
	sh_cmp "$DEST" "$EXP"
ktap_check "... the half-covered regions 161 and 192 are the origin's" \
	test "$(sh_region_md5 "$DEST" 161 $RS)$(sh_region_md5 "$DEST" 192 $RS)" = \
	"$(sh_region_md5 "$ORIG" 161 $RS)$(sh_region_md5 "$ORIG" 192 $RS)"
ktap_check "... and the seeded regions 15, 160 and 240 its own, not the origin's" \
	test "$(sh_region_md5 "$DEST" 15 $RS 1)$(sh_region_md5 "$DEST" 160 $RS)$(sh_region_md5 "$DEST" 240 $RS)" = \
	"$(sh_region_md5 "$DIMG" 15 $RS)$(sh_region_md5 "$DIMG" 160 $RS)$(sh_region_md5 "$DIMG" 240 $RS)" -a \
	"$(sh_region_md5 "$DEST" 160 $RS)" != "$(sh_region_md5 "$ORIG" 160 $RS)"
dm_remove $NAME

# --- create --copied-from FILE -----------------------------------------------------------

sh_zero "$META"
sh_fill_random "$DEST"
sh_read "$DEST" >"$DIMG"
FILE=$TEST_TMP/ranges
cat >"$FILE" <<EOF
# regions of a previous copy

0+64k
2M-3M
# region 224 in two halves
14M+32k
14368k+32k
16320k-16M
EOF
kmsg "dm-stream selftest: $TEST_NAME: create --copied-from"
tt_expect "create --copied-from FILE --paused: exit 0, seeded 19 of $NR" 0 \
	"^$NAME: seeded 19 of $NR regions as copied" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --region-size 64k \
	--copied-from "$FILE" --paused
ktap_check "... the status: $(sh_copied $NAME)/$(sh_total $NAME) copied" \
	test "$(sh_copied $NAME)/$(sh_total $NAME)" = "19/$NR"
runs=$(mh_dump_copied "$META")
ktap_check "... dump --json: the runs of the file, region 224 from its two halves ($runs)" \
	test "$runs" = "0-0 32-47 224-224 255-255"
dm_remove $NAME
ktap_check "... removed, its metadata is a stream to continue (check: exit 0)" \
	"$DMSTREAM" check --quiet "$META"

# --- refusals --------------------------------------------------------------------------------

kmsg "dm-stream selftest: $TEST_NAME: refusals"
refused "--copied on metadata holding a stream to continue: refused, unchanged" \
	"metadata|blank|force|continue" "$META" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --region-size 64k \
	--copied 0-1M
refused "--copied-from on it: refused, unchanged" "metadata|blank|force|continue" "$META" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --region-size 64k \
	--copied-from "$FILE"
sh_zero "$META"
REFUSE_RC=1
for bad in 1M- abc 2M-1M 1M+ 4M+1x 1M-2Q 64k 0-1M,x; do
	refused "a range of bad syntax '$bad': usage error (exit 1), blank metadata untouched" \
		"range|copied|invalid|syntax|usage" "$META" \
		create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --copied "$bad"
done
REFUSE_RC=
for bad in 15M-17M 16M+64k 0-16777217; do
	refused "a range beyond the 16 MiB device '$bad': refused, blank metadata untouched" \
		"beyond|past|end|size|outside|range" "$META" \
		create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --copied "$bad"
done
refused "--copied-from a file that does not exist: refused" "no such|exist|open|$TEST_TMP" \
	"$META" create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" \
	--copied-from "$TEST_TMP/none"
printf '0-1M\nfoo\n' >"$TEST_TMP/bad"
refused "--copied-from a file with a bad line: refused" "foo|line|range|invalid" "$META" \
	create $NAME --origin "$ORIG" --dest "$DEST" --meta "$META" --copied-from "$TEST_TMP/bad"

# --- copy --copied ---------------------------------------------------------------------------

sh_fill_random "$ORIG2"
sh_fill_random "$DEST2"
sh_zero "$META2"
sh_read "$ORIG2" >"$OIMG"
sh_read "$DEST2" >"$DIMG"
sh_setup dm_create ts01-lin "0 $LEN linear $ORIG2 0"
kmsg "dm-stream selftest: $TEST_NAME: copy --copied"
r0=$(mh_rsect "$ORIG2")
TT_TIMEOUT=300 tt_expect "copy --copied 0-2M,8M+1M --finish: exit 0, seeded 48 of $NR" 0 \
	"seeded 48 of $NR regions as copied" \
	copy ts01-lin --dest "$DEST2" --meta "$META2" --region-size 64k \
	--copied 0-2M,8M+1M --finish --quiet --timeout 240
r1=$(mh_rsect "$ORIG2")
ktap_check "... linear on the destination" \
	test "$(sh_table ts01-lin)" = "0 $LEN linear $(sh_devt "$DEST2") 0"
ktap_check "... the origin was read for $((r1 - r0)) sectors: the $((NR - 48)) unseeded regions ($(((NR - 48) * RS))) and at most its $SAMPLES of samples" \
	test $((r1 - r0)) -ge $(((NR - 48) * RS)) -a $((r1 - r0)) -le $(((NR - 48) * RS + SAMPLES))
cp "$OIMG" "$EXP"
# shellcheck disable=SC2046 # a list of regions
mh_image "$EXP" "$DIMG" $RB $(mh_seq 0 31) $(mh_seq 128 143)
ktap_check "... the destination: the origin's bytes, its own in the seeded regions" \
	sh_cmp "$DEST2" "$EXP"
dm_remove ts01-lin

ktap_finish
