#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_ctr_01: the constructor matrix.
#
# Every invalid table line must be refused, leave no device behind, and log
# a "device-mapper: table: M:N: stream: <error>" line; valid lines must be
# accepted; the TABLE status must reload as is; a blank metadata device gets
# formatted and keeps its state across remove/create; metadata formatted for
# another geometry or holding garbage is refused and left untouched.

# shellcheck disable=SC2317 # helpers called through ktap_check and friends
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd losetup

sh_start 47

RS=128				# region size, sectors
LEN=$((32 * 2048))		# target length: 32 MiB

if ! META=$(make_loop 4 meta) || ! DEST=$(make_loop 32 dest) ||
   ! ORIG=$(make_loop 32 orig) || ! DEST48=$(make_loop 48 dest48) ||
   ! ORIG48=$(make_loop 48 orig48); then
	ktap_skip_all "cannot set up a loop device"
fi

T="0 $LEN stream"
GOOD="$META $DEST $ORIG"

# ---------------------------------------------------------------- counts
sh_ctr_fail "no arguments" "$T"
sh_ctr_fail "3 arguments" "$T $GOOD"
sh_ctr_fail "opt count larger than the words given" "$T $GOOD $RS 2 paused"
sh_ctr_fail "opt count smaller, trailing words" \
	"$T $GOOD $RS 1 paused rate 4096"
sh_ctr_fail "opt count unparsable" "$T $GOOD $RS x paused"

# ----------------------------------------------------------- region size
sh_ctr_fail "region size not a power of two (100)" "$T $GOOD 100" region
sh_ctr_fail "region size too small (4)" "$T $GOOD 4" region
sh_ctr_fail "region size zero" "$T $GOOD 0" region
sh_ctr_fail "region size too large (4194304)" "$T $GOOD 4194304" region
sh_ctr_fail "region size unparsable (12x)" "$T $GOOD 12x" region
sh_ctr_fail "region size unparsable (128x)" "$T $GOOD 128x" region
sh_ctr_fail "region size unparsable (abc)" "$T $GOOD abc" region
sh_ctr_fail "region size negative (-8)" "$T $GOOD -8" region

# A 4096-byte logical block is 8 sectors, and every power of two >= 8 is a
# multiple of 8; logical blocks cannot exceed the 4 KiB page on x86, so no
# valid-looking region size can violate the logical block rule.
ktap_diag "a power-of-two region size >= 8 that is not a multiple of a logical block size needs a logical block > 4096 bytes: not constructible"
ktap_skip "region size not a multiple of the logical block size" \
	"unreachable: logical block size <= 4096 bytes = 8 sectors"

# -------------------------------------------------------------- opt args
sh_ctr_fail "unknown opt arg (frobnicate)" "$T $GOOD $RS 1 frobnicate"
sh_ctr_fail "rate without a value" "$T $GOOD $RS 1 rate"
sh_ctr_fail "rate with junk (12k)" "$T $GOOD $RS 2 rate 12k"
sh_ctr_fail "rate negative (-5)" "$T $GOOD $RS 2 rate -5"
sh_ctr_fail "max_inflight 0" "$T $GOOD $RS 2 max_inflight 0"
sh_ctr_fail "max_inflight 1025" "$T $GOOD $RS 2 max_inflight 1025"
sh_ctr_fail "max_inflight 4294967297 (u32 overflow)" \
	"$T $GOOD $RS 2 max_inflight 4294967297"

# ------------------------------------------------------ devices and sizes
sh_ctr_fail "metadata == destination (path and major:minor)" \
	"$T $DEST $(sh_devt "$DEST") $ORIG $RS"
sh_ctr_fail "destination == origin" "$T $META $ORIG $ORIG $RS"
sh_ctr_fail "metadata == origin" "$T $ORIG $DEST $ORIG $RS"
sh_ctr_fail "origin shorter than the target" \
	"0 $((LEN + 8)) stream $META $DEST48 $ORIG $RS"
sh_ctr_fail "destination shorter than the target" \
	"0 $((LEN + 8)) stream $META $DEST $ORIG48 $RS"

# Metadata size: <= 32640 regions need 3 blocks = 24 sectors.
sh_setup dm_create ctr01-md23 "0 23 linear $META 0"
sh_setup dm_create ctr01-md24 "0 24 linear $META 4096"
sh_zero "$META"
# (The log line with the sectors needed: test_ctr_02.)
sh_ctr_fail "metadata device too small (23 sectors)" \
	"$T $(dm_dev ctr01-md23) $DEST $ORIG $RS" \
	"Metadata device too small"
if dm_create ctr01-x "$T $(dm_dev ctr01-md24) $DEST $ORIG $RS 1 paused"; then
	ktap_ok "metadata device of exactly 24 sectors accepted"
	dm_remove ctr01-x
else
	ktap_fail "metadata device of exactly 24 sectors accepted" \
		"$(dmesg_since_mark | tail -n 3)"
fi
dm_remove ctr01-md23
dm_remove ctr01-md24

# ------------------------------------------- metadata of another geometry
sh_zero "$META"
if dm_create ctr01-geo "$T $GOOD $RS 1 paused"; then
	dm_remove ctr01-geo
	sh_ctr_fail "metadata formatted for region size 128, table says 256" \
		"$T $GOOD 256 1 paused"
	sh_ctr_fail "metadata formatted for another target length" \
		"0 $((LEN / 2)) stream $GOOD $RS 1 paused"
	sh_ctr_fail "metadata formatted for another origin size" \
		"$T $META $DEST $ORIG48 $RS 1 paused"
	sh_ctr_fail "metadata formatted for another destination size" \
		"$T $META $DEST48 $ORIG $RS 1 paused"
	if dm_create ctr01-geo "$T $GOOD $RS 1 paused"; then
		ktap_ok "refused tables left the metadata usable"
		dm_remove ctr01-geo
	else
		ktap_fail "refused tables left the metadata usable" \
			"$(dmesg_since_mark | tail -n 3)"
	fi
else
	for d in "region size 256" "target length" "origin size" \
		"destination size" "metadata usable after refusals"; do
		ktap_fail "metadata of another geometry: $d" \
			"could not create the reference device"
	done
fi

# ------------------------------------------------------------ valid lines
# sh_ctr_ok DESC OPTS CHECK...: create with "$T $GOOD $RS OPTS", then run
# the CHECK command (status words in $ST, state in $STATE).
sh_ctr_ok()
{
	local desc=$1 opts=$2 err=
	shift 2
	sh_zero "$META" 1
	kmsg "ctr01: $desc"
	if ! dm_create ctr01-ok "$T $GOOD $RS $opts"; then
		ktap_fail "$desc" "create failed: $(dmesg_since_mark | tail -n 2)"
		return
	fi
	ST=$(sh_opt_args ctr01-ok)
	STATE=$(sh_state ctr01-ok)
	if [ $# -gt 0 ] && ! "$@"; then
		err="status: $(dm_status ctr01-ok)"
	fi
	dm_remove ctr01-ok
	if [ -n "$err" ]; then
		ktap_fail "$desc" "$err"
	else
		ktap_ok "$desc"
	fi
}
st_is()	{ [ "$ST" = "$1" ]; }
st_rate_paused() { [ "$STATE" = paused ] && sh_opt_ok "$ST" && sh_has_pair "$ST" rate 4096; }
st_word() { sh_opt_ok "$ST" && sh_has_word "$ST" "$1"; }
st_pair() { sh_opt_ok "$ST" && sh_has_pair "$ST" "$1" "$2"; }

sh_ctr_ok "valid: minimal line (no opt args)" "" st_is 0
sh_ctr_ok "valid: 3 paused rate 4096" "3 paused rate 4096" st_rate_paused
sh_ctr_ok "valid: 1 no_discard_passdown" "1 no_discard_passdown" \
	st_word no_discard_passdown
sh_ctr_ok "valid: 2 max_inflight 8" "2 max_inflight 8" st_pair max_inflight 8
sh_ctr_ok "valid: 3 paused max_inflight 1 (range start)" \
	"3 paused max_inflight 1" st_pair max_inflight 1
sh_ctr_ok "valid: 3 paused max_inflight 1024 (range end)" \
	"3 paused max_inflight 1024" st_pair max_inflight 1024

# 4 KiB logical blocks everywhere: region size 8 (4 KiB) is a multiple.
if META4K=$(make_loop -b 4096 4 meta4k) && DEST4K=$(make_loop -b 4096 16 dest4k) &&
	ORIG4K=$(make_loop -b 4096 16 orig4k); then
	if dm_create ctr01-4k "0 $((16 * 2048)) stream $META4K $DEST4K $ORIG4K 8 1 paused"; then
		ktap_ok "valid: 4096-byte logical blocks with region size 8"
		dm_remove ctr01-4k
	else
		ktap_fail "valid: 4096-byte logical blocks with region size 8" \
			"$(dmesg_since_mark | tail -n 2)"
	fi
else
	ktap_skip "valid: 4096-byte logical blocks with region size 8" \
		"losetup --sector-size 4096 not available"
fi

# ------------------------------------------------------ TABLE reloads as is
sh_zero "$META" 1
OPTS="6 paused rate 4096 max_inflight 8 no_discard_passdown"
if dm_create ctr01-tbl "$T $GOOD $RS $OPTS"; then
	TBL=$(sh_table ctr01-tbl)
	read -r -a w <<<"$TBL"
	if [ "${w[*]:0:7}" = "$T $(sh_devt "$META") $(sh_devt "$DEST") $(sh_devt "$ORIG") $RS" ] &&
		sh_opt_ok "${w[*]:7}" && sh_has_word "${w[*]:7}" paused &&
		sh_has_pair "${w[*]:7}" rate 4096 &&
		sh_has_pair "${w[*]:7}" max_inflight 8 &&
		sh_has_word "${w[*]:7}" no_discard_passdown; then
		ktap_ok "table line: devices as major:minor, region size, opt args"
	else
		ktap_fail "table line: devices as major:minor, region size, opt args" \
			"got '$TBL'"
	fi
	if dm_reload ctr01-tbl "$TBL"; then
		TBL2=$(sh_table ctr01-tbl)
		if [ "$TBL2" = "$TBL" ]; then
			ktap_ok "table line reloads as is and is unchanged"
		else
			ktap_fail "table line reloads as is and is unchanged" \
				"before '$TBL' after '$TBL2'"
		fi
	else
		ktap_fail "table line reloads as is and is unchanged" \
			"reload of '$TBL' failed: $(dmesg_since_mark | tail -n 2)"
	fi
	dm_remove ctr01-tbl
else
	ktap_fail "table line: devices as major:minor, region size, opt args" \
		"create failed"
	ktap_fail "table line reloads as is and is unchanged" "create failed"
fi

# ------------------------------------------ blank metadata gets formatted
sh_zero "$META"
ZERO_MD5=$(head -c 4096 /dev/zero | md5sum | cut -d' ' -f1)
if dm_create ctr01-fmt "$T $GOOD $RS 1 paused"; then
	# One whole-region write marks exactly one region copied.
	dd if=/dev/urandom of="$(dm_dev ctr01-fmt)" bs=$((RS * 512)) count=1 \
		seek=7 oflag=direct status=none
	C0=$(sh_copied ctr01-fmt)
	dm_remove ctr01-fmt
	B0=$(sh_md5 "$META" 4096)
	ktap_check "blank metadata formatted (block 0 no longer zero)" \
		test "$B0" != "$ZERO_MD5"
	if dm_create ctr01-fmt "$T $GOOD $RS 1 paused"; then
		C1=$(sh_copied ctr01-fmt)
		if [ "$C0" = 1 ] && [ "$C1" = 1 ]; then
			ktap_ok "recreate with the same metadata keeps its state"
		else
			ktap_fail "recreate with the same metadata keeps its state" \
				"copied before remove '$C0' after recreate '$C1' (want 1, 1)"
		fi
		S=$(dm_status ctr01-fmt)
		read -r -a w <<<"$S"
		# "paused" may or may not count as an opt arg in force.
		if [ "${w[0]}" = 8 ] && [ "${w[1]}" = 3/1024 ] &&
			[ "${w[2]}" = "$RS" ] && [ "${w[3]}" = "1/$((LEN / RS))" ] &&
			[ "${w[4]}" = 0 ] && [ "${w[5]}" = paused ] &&
			[ "${w[6]}" = rw ] && [ "${w[7]}" = 0 ] && [ "${w[8]}" = one-way ] &&
			{ [ "${w[*]:9}" = "1 paused" ] || [ "${w[*]:9}" = 0 ]; }; then
			ktap_ok "status fields: 8 3/1024 $RS 1/$((LEN / RS)) . paused rw 0 one-way"
		else
			ktap_fail "status fields: 8 3/1024 $RS 1/$((LEN / RS)) . paused rw 0 one-way" \
				"got '$S'"
		fi
		dm_remove ctr01-fmt
	else
		ktap_fail "recreate with the same metadata keeps its state" \
			"recreate failed: $(dmesg_since_mark | tail -n 2)"
		ktap_fail "status fields" "no device"
	fi
else
	ktap_fail "blank metadata formatted" "create failed"
	ktap_fail "recreate with the same metadata keeps its state" "create failed"
	ktap_fail "status fields" "no device"
fi

# -------------------------------------------------- garbage is refused
GARBAGE=$(sh_tmpfile)
head -c 4096 /dev/urandom >"$GARBAGE"
dd if="$GARBAGE" of="$META" bs=4096 count=1 oflag=direct conv=notrunc status=none
G0=$(sh_md5 "$META" 4096)
sh_ctr_fail "metadata with garbage in block 0 refused" "$T $GOOD $RS 1 paused"
ktap_check "refused garbage metadata left untouched" \
	test "$(sh_md5 "$META" 4096)" = "$G0"

ktap_finish
