#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_discard_01: discards on a paused dm-stream target.
#
# Spec: discards of copied regions pass down to the destination (unless
# no_discard_passdown); whole uncopied regions are marked copied without
# copying; partial uncopied regions are left alone.
# The destination is a loop device over tmpfs: a discard punches a hole and
# the range reads back as zeros. Before the target is created the
# destination is filled with 0xa5 bytes, the origin with random data, so a
# region's content tells whether it was copied, discarded or left alone.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd blkdiscard
sh_start 13

RS=128				# region size, sectors
RB=$((RS * 512))		# region size, bytes
MB=8
NAME=sbdisc
DM=$(dm_dev $NAME)
sh_stream_loops $MB 4
sh_fill_byte "$DEST" 245	# 0xa5
ORIG_MD5=$(sh_md5 "$ORIG")
A5_REGION=$(sh_region_md5 "$DEST" 0 $RS)
ZERO_REGION=$(sh_zero_md5 $RB)

TABLE_BASE="0 $(sectors "$ORIG") stream $META $DEST $ORIG $RS"
ktap_check "create paused stream" dm_create "$NAME" "$TABLE_BASE 1 paused" ||
	ktap_bail "setup failed: $DM_ERR"

# Does the dm device advertise discard at all?
dgran=$(cat "$(sh_sysfs "$DM")/queue/discard_granularity" 2>/dev/null)
dmax=$(cat "$(sh_sysfs "$DM")/queue/discard_max_bytes" 2>/dev/null)
ktap_diag "dm discard_granularity=$dgran discard_max_bytes=$dmax"

# discard BYTE_OFFSET BYTE_LEN
disc() { blkdiscard -o "$1" -l "$2" "$DM"; }

# region_is R WHAT: WHAT = orig | zero | a5 | md5:<sum>, read through the target
# (and, for the destination-backed cases, directly from the destination).
dmr() { sh_region_md5 "$DM" "$1" $RS; }
dsr() { sh_region_md5 "$DEST" "$1" $RS; }
orr() { sh_region_md5 "$ORIG" "$1" $RS; }

# 2. Whole uncopied regions 2-3: copied +2, and no copy happened (the target
#    now reads the destination's bytes there, which are not the origin's).
c0=$(sh_copied $NAME)
if disc $((2 * RB)) $((2 * RB)); then
	c1=$(sh_copied $NAME)
	ok=1
	for r in 2 3; do
		m=$(dmr $r)
		[ "$m" = "$(dsr $r)" ] || ok=0
		[ "$m" != "$(orr $r)" ] || ok=0
		case $m in
		"$A5_REGION") what=0xa5 ;;
		"$ZERO_REGION") what=zeros ;;
		*) what=other ;;
		esac
		ktap_diag "region $r after discard: $what"
	done
	# copied +2, content as wanted
	ktap_check "discard of whole uncopied regions: marked copied, not copied" \
		test "$c1" -eq $((c0 + 2)) -a $ok = 1
else
	ktap_fail "discard of whole uncopied regions: marked copied, not copied" "blkdiscard failed"
fi

# 3. Partial discards of uncopied regions 5 (middle), 6 (head), 7 (tail):
#    copied unchanged, the regions still read the origin's data.
c0=$(sh_copied $NAME)
rc=0
disc $((5 * RB + 4096)) 32768 || rc=1
disc $((6 * RB)) $((RB / 2)) || rc=1
disc $((7 * RB + RB / 2)) $((RB / 2)) || rc=1
c1=$(sh_copied $NAME)
ok=1
for r in 5 6 7; do
	[ "$(dmr $r)" = "$(orr $r)" ] || { ok=0; ktap_diag "region $r does not read the origin"; }
	# Not asserted (the spec's "left alone" is about the region's state):
	# whether the discard reached the destination's part of the region.
	[ "$(dsr $r)" = "$A5_REGION" ] ||
		ktap_diag "region $r: discarded range passed down to the (unused) destination"
done
if [ $rc = 0 ] && [ "$c1" -eq "$c0" ] && [ $ok = 1 ]; then
	ktap_ok "partial discard of uncopied regions: left alone"
else
	ktap_fail "partial discard of uncopied regions: left alone" \
		"rc=$rc copied $c0 -> $c1 (want same), content ok=$ok"
fi

# 4. Discard of a copied region passes down: region 8 is copied by a whole
#    region write of random data, then discarded: zeros on the destination
#    and through the target.
sh_write_region "$DM" 8 $RS /dev/urandom
c0=$(sh_copied $NAME)
before=$(dmr 8)
if disc $((8 * RB)) $RB; then
	c1=$(sh_copied $NAME)
	if [ "$(dsr 8)" = "$ZERO_REGION" ] && [ "$(dmr 8)" = "$ZERO_REGION" ] &&
	   [ "$before" != "$ZERO_REGION" ] && [ "$c1" -eq "$c0" ]; then
		ktap_ok "discard of a copied region passes down"
	else
		ktap_fail "discard of a copied region passes down" \
			"dest zero: $([ "$(dsr 8)" = "$ZERO_REGION" ] && echo y || echo n), copied $c0 -> $c1"
	fi
else
	ktap_fail "discard of a copied region passes down" "blkdiscard failed"
fi

# 5. Partial (4 KiB aligned) discard of a copied region passes down too:
#    region 9 written with random data, 16 KiB at +8 KiB discarded.
tmp=$(mktemp "$TEST_TMP/r9.XXXXXX")
head -c $RB /dev/urandom >"$tmp"
dd if="$tmp" of="$DM" bs=$RB seek=9 oflag=direct status=none
dd if=/dev/zero of="$tmp" bs=4096 seek=2 count=4 conv=notrunc status=none
want=$(md5sum <"$tmp" | cut -d' ' -f1)
if disc $((9 * RB + 8192)) 16384; then
	if [ "$(dsr 9)" = "$want" ] && [ "$(dmr 9)" = "$want" ]; then
		ktap_ok "partial discard of a copied region passes down"
	else
		ktap_fail "partial discard of a copied region passes down" "content differs"
	fi
else
	ktap_fail "partial discard of a copied region passes down" "blkdiscard failed"
fi

# 6. Discard spanning regions 20..40 with unaligned ends (+8 KiB into 20,
#    +16 KiB into 40): whole regions 21..39 marked copied (+19), 20 and 40
#    untouched (origin data, still uncopied).
c0=$(sh_copied $NAME)
if disc $((20 * RB + 8192)) $((20 * RB + 8192)); then
	c1=$(sh_copied $NAME)
	ok=1
	for r in 20 40; do
		[ "$(dmr $r)" = "$(orr $r)" ] || { ok=0; ktap_diag "region $r not origin"; }
		[ "$(dsr $r)" = "$A5_REGION" ] ||
			ktap_diag "region $r: discarded range passed down to the (unused) destination"
	done
	for r in 21 30 39; do
		[ "$(dmr $r)" != "$(orr $r)" ] || { ok=0; ktap_diag "region $r reads origin"; }
		[ "$(dmr $r)" = "$(dsr $r)" ] || { ok=0; ktap_diag "region $r not dest"; }
	done
	# copied +19, content as wanted
	ktap_check "unaligned multi-region discard: inner regions marked, ends untouched" \
		test "$c1" -eq $((c0 + 19)) -a $ok = 1
else
	ktap_fail "unaligned multi-region discard: inner regions marked, ends untouched" \
		"blkdiscard failed"
fi

# 7. Discard of copied and uncopied regions mixed: 2..4 (2,3 copied, 4 not):
#    4 marked copied, 2,3 discarded on the destination (zeros).
c0=$(sh_copied $NAME)
if disc $((2 * RB)) $((3 * RB)); then
	c1=$(sh_copied $NAME)
	if [ "$c1" -eq $((c0 + 1)) ] && [ "$(dsr 2)" = "$ZERO_REGION" ] &&
	   [ "$(dsr 3)" = "$ZERO_REGION" ] && [ "$(dmr 4)" != "$(orr 4)" ]; then
		ktap_ok "discard over copied + uncopied regions"
	else
		ktap_fail "discard over copied + uncopied regions" "copied $c0 -> $c1 (want +1)"
	fi
else
	ktap_fail "discard over copied + uncopied regions" "blkdiscard failed"
fi

# 8. The origin was never written.
if [ "$(sh_md5 "$ORIG")" = "$ORIG_MD5" ]; then
	ktap_ok "origin untouched"
else
	ktap_fail "origin untouched"
fi

# 9. Reload with no_discard_passdown (keeps paused); status shows it.
if dm_reload "$NAME" "$TABLE_BASE 2 paused no_discard_passdown"; then
	opt=$(sh_opt_args $NAME)
	ktap_diag "opt args: $opt"
	case " $opt " in
	*" no_discard_passdown "*) ktap_ok "reload with no_discard_passdown" ;;
	*) ktap_fail "reload with no_discard_passdown" "status opt args: $opt" ;;
	esac
else
	ktap_fail "reload with no_discard_passdown" "reload failed"
fi

# 10. no_discard_passdown: a copied region's data stays after a discard.
sh_write_region "$DM" 12 $RS /dev/urandom
before=$(dsr 12)
disc $((12 * RB)) $RB
rc=$?
if [ $rc = 0 ] && [ "$(dsr 12)" = "$before" ] && [ "$before" != "$ZERO_REGION" ] &&
   [ "$(dmr 12)" = "$before" ]; then
	ktap_ok "no_discard_passdown: copied region keeps its data"
else
	ktap_fail "no_discard_passdown: copied region keeps its data" \
		"destination changed (blkdiscard rc=$rc)"
fi

# 11. no_discard_passdown: whole uncopied regions are still marked copied
#     without copying (the option only stops the pass-down).
c0=$(sh_copied $NAME)
disc $((50 * RB)) $((2 * RB))
rc=$?
c1=$(sh_copied $NAME)
ktap_diag "no_discard_passdown, uncopied 50-51: blkdiscard rc=$rc copied $c0 -> $c1"
if [ $rc = 0 ] && [ "$c1" -eq $((c0 + 2)) ] && [ "$(dmr 50)" != "$(orr 50)" ]; then
	ktap_ok "no_discard_passdown: whole uncopied regions marked copied"
else
	ktap_fail "no_discard_passdown: whole uncopied regions marked copied" \
		"rc=$rc copied $c0 -> $c1"
fi

# 12. Remove and recreate with the same metadata: the discard-marked regions
#     are still copied (the marks were committed).
expect=$(sh_copied $NAME)
dm_remove "$NAME"
if dm_create "$NAME" "$TABLE_BASE 1 paused"; then
	got=$(sh_copied $NAME)
	if [ "$got" = "$expect" ] && [ "$(dmr 30)" = "$(dsr 30)" ] &&
	   [ "$(dmr 20)" = "$(orr 20)" ]; then
		ktap_ok "recreate: discard marks persisted ($got regions copied)"
	else
		ktap_fail "recreate: discard marks persisted" "copied $expect before, $got after"
	fi
	# 13. Streaming the rest copies the partially discarded regions whole
	#     from the origin.
	dm_message "$NAME" continue
	ok=1
	sh_wait_state "$NAME" complete 60 || { ok=0; ktap_diag "not complete: $(dm_status $NAME)"; }
	for r in 5 6 7 20 40; do
		[ "$(dsr $r)" = "$(orr $r)" ] || { ok=0; ktap_diag "region $r: destination differs from origin"; }
		[ "$(dmr $r)" = "$(orr $r)" ] || { ok=0; ktap_diag "region $r: target differs from origin"; }
	done
	if [ $ok = 1 ]; then
		ktap_ok "after streaming: partially discarded regions hold the origin's data"
	else
		ktap_fail "after streaming: partially discarded regions hold the origin's data"
	fi
	dm_remove "$NAME"
else
	ktap_fail "recreate: discard marks persisted" "create failed"
	ktap_fail "after streaming: partially discarded regions hold the origin's data" "not run"
fi
rm -f "$tmp"
ktap_finish
