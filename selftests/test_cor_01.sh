#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_cor_01: copy_on_read.
#
# A paused stream of 32 MiB (512 regions of 64 KiB) over a "remote" origin:
# a dm-delay device (5 ms per bio) over the origin's loop, whose own disk
# statistics (/sys/block/dm-N/stat, field 3: sectors read) count only what
# the stream reads from the origin. The destination starts all zeros, the
# origin random, so a region of the destination that is no longer zero has
# been copied (and must then hold the origin's bytes).
#
# The hot set: regions 40, 41, 100, 4 KiB in the middle of 200, 300-302 in
# one read, 460; clusters more than 2 MiB apart. The cold regions 150, 250,
# 400 lie more than 1 MiB from any of them.
#
#  - Paused, without copy_on_read: reading all of the device (md5 equal to
#    the origin's) and the hot set copies nothing.
#  - Reloaded with copy_on_read (the option shown in the status and the
#    table line): reading the hot set returns the origin's data, and gets
#    exactly the hot regions copied, and at most their neighbours within
#    1 MiB (16 regions), nothing else (the cursor stays paused); the copied
#    count equals the regions written; the whole of region 200 is copied
#    although 4 KiB of it were read. The first reads came from the origin;
#    re-reading the hot set once copied reads nothing more from it.
#  - "copy_on_read off": reads of cold regions copy nothing (2 s later) and
#    the option leaves the table; "copy_on_read on" again: a read copies
#    its region. Malformed copy_on_read messages are refused.
#  - The device still reads as the origin; "continue" completes the stream
#    and the destination equals the origin.
#
# Paused while a background region is held mid-copy: a stream of 16 MiB in
# regions of 1 MiB with "rate 256" (KiB/s: pieces of 64 KiB, a region takes
# 4 s) and copy_on_read streams for 1 s, so region 0 is partly copied (its
# first 64 KiB on the destination, copied 0: else the check is skipped),
# then gets "pause" and "rate 0": the background job stays held between two
# pieces (a copying region, status field 5). A 4 KiB read of region 12 must
# get that region copied within 10 s (its bytes on the destination are the
# origin's), with max_inflight 1 (the held job fills the in-flight budget)
# and with the default; "continue" then completes the stream. No dm-delay
# here: the origin is the loop device itself.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd cmp

sh_start 30 dm-delay

RS=128				# region size, sectors (64 KiB)
RB=$((RS * 512))
MB=32
NAME=cor01
ONAME=cor01-orig
NEAR=16				# neighbours within 1 MiB, in regions
HOT="40 41 100 200 300 301 302 460"
NHOT=8

sh_stream_loops $MB 4
LEN=$(sectors "$ORIG")
NR=$((LEN / RS))
IMG=$(sh_tmpfile)		# the origin's content
PAT=$(sh_tmpfile)		# the destination's initial content (zeros)
sh_read "$ORIG" >"$IMG"
sh_read "$DEST" >"$PAT"
ORIG_MD5=$(md5sum <"$IMG" | cut -d' ' -f1)

sh_setup dm_create $ONAME "0 $LEN delay $ORIG 0 5"
ODEV=$(dm_dev $ONAME)
TABLE="0 $LEN stream $META $DEST $ODEV $RS"
sh_setup dm_create $NAME "$TABLE 1 paused"
DEV=$(dm_dev $NAME)

# ---- helpers -----------------------------------------------------------------

tbl_opts()
{
	local w

	read -r -a w <<<"$(sh_table $NAME)"
	echo "${w[*]:7}"
}

# opts_are DESC "COUNT WORD...": one result: status and table opt args.
opts_are()
{
	local s t

	s=$(sh_opt_args $NAME)
	t=$(tbl_opts)
	if [[ $s == "$2" && $t == "$2" ]]; then
		ktap_ok "$1: opt args '$2' in status and table"
	else
		ktap_fail "$1: opt args '$2' in status and table" \
			"status '$s', table '$t'"
	fi
}

# msg_ok DESC WORD...: one result: the message is accepted.
msg_ok()
{
	local desc=$1 err

	shift
	if err=$(dm_message $NAME "$@" 2>&1); then
		ktap_ok "$desc"
	else
		ktap_fail "$desc" "dmsetup message $NAME 0 $*: $err"
	fi
}

# rd OFFSET_BYTES LEN_BYTES: one O_DIRECT read through the device; appends
# the offset to RDFAIL when the bytes are not the origin's.
RDFAIL=
rd()
{
	local got exp

	got=$(sh_tmpfile) && exp=$(sh_tmpfile) || return 1
	sh_read "$DEV" "$2" "$1" >"$got"
	sh_read "$IMG" "$2" "$1" >"$exp"
	cmp -s "$got" "$exp" || RDFAIL="$RDFAIL $1"
	rm -f "$got" "$exp"
}

# read_hot: the hot set, as the header says.
read_hot()
{
	rd $((40 * RB)) $RB
	rd $((41 * RB)) $RB
	rd $((100 * RB)) $RB
	rd $((200 * RB + 32768)) 4096
	rd $((300 * RB)) $((3 * RB))
	rd $((460 * RB)) $RB
}
HOT_SECTORS=$(((7 * RB + 4096) / 512))

# read_region R...: whole regions.
read_region()
{
	local r

	for r in "$@"; do
		rd $((r * RB)) $RB
	done
}

# _differ FILE R...: the regions R... (ascending) whose bytes on the
# destination differ from those of FILE.
_differ()
{
	local f=$1 r out=

	shift
	for r in "$@"; do
		sh_region_same "$DEST" "$f" "$r" $RS || out="$out $r"
	done
	echo "${out# }"
}

# completes_equal DESC NAME DEST ORIG SECS: one result: NAME completes
# within SECS and DEST then equals ORIG.
completes_equal()
{
	if sh_wait_state "$2" complete "$5" && sh_cmp "$3" "$4" >/dev/null; then
		ktap_ok "$1"
	else
		ktap_fail "$1" "$(dm_status "$2")"
	fi
}

# written [REGION...]: the regions of the destination that differ from its
# initial content (all of them, or among REGION...).
written()
{
	local d

	if [[ $# -gt 0 ]]; then
		_differ "$PAT" "$@"
		return
	fi
	d=$(sh_tmpfile)
	sh_read "$DEST" >"$d"
	sh_regions_diff "$d" "$PAT" $RB
	rm -f "$d"
}

# bad_copies REGION...: the regions of the destination among REGION...
# whose bytes are not the origin's.
bad_copies()
{
	_differ "$IMG" "$@"
}

_settled()
{
	local c

	c=$(sh_copied $NAME)
	[[ -n $c && $c -ge $1 && $(sh_copying $NAME) == 0 ]]
}

# settle N: wait (a 60 s bound) until N regions are copied and none is
# copying, then 1 s more; 0 when the count did not move in that second.
settle()
{
	local c

	sh_wait_for 60 _settled "$1" || return 1
	c=$(sh_copied $NAME)
	sleep 1
	_settled "$c" && [[ $(sh_copied $NAME) == "$c" ]]
}

# near_hot R: R is within NEAR regions of a hot region.
near_hot()
{
	local h d

	for h in $HOT; do
		d=$(($1 - h))
		((d < 0)) && d=$((-d))
		((d <= NEAR)) && return 0
	done
	return 1
}

# ---- paused, without copy_on_read --------------------------------------------

ktap_check "no copy_on_read: the device reads as the origin" \
	test "$(sh_md5 "$DEV")" = "$ORIG_MD5"
RDFAIL=
read_hot
ktap_check "no copy_on_read: the hot reads return the origin's bytes (bad:${RDFAIL:- none})" \
	test -z "$RDFAIL"
sleep 2
if [[ $(sh_field $NAME 4) == "0/$NR" && $(sh_copying $NAME) == 0 &&
      $(sh_md5 "$DEST") == "$(md5sum <"$PAT" | cut -d' ' -f1)" ]]; then
	ktap_ok "no copy_on_read, paused: reads copied nothing"
else
	ktap_fail "no copy_on_read, paused: reads copied nothing" \
		"status: $(dm_status $NAME); destination regions written: $(written)"
fi

# ---- copy_on_read: the hot set -----------------------------------------------

sh_setup dm_reload $NAME "$TABLE 2 paused copy_on_read"
opts_are "reloaded with copy_on_read" "2 paused copy_on_read"

R0=$(sh_stat "$ODEV" 3)
RDFAIL=
read_hot
ktap_check "copy_on_read: the hot reads return the origin's bytes (bad:${RDFAIL:- none})" \
	test -z "$RDFAIL"
R1=$(sh_stat "$ODEV" 3)
ktap_check "the first reads came from the origin ($((R1 - R0)) >= $HOT_SECTORS sectors read)" \
	test $((R1 - R0)) -ge $HOT_SECTORS

if settle $NHOT; then
	ktap_ok "the hot regions are copied (copied $(sh_copied $NAME), state $(sh_state $NAME))"
else
	ktap_fail "the hot regions are copied" \
		"copied fewer than $NHOT or still moving after 60 s: $(dm_status $NAME)"
fi
ktap_check "the stream is still paused" test "$(sh_state $NAME)" = paused

W=$(written)
ktap_diag "destination regions written: $W"
MISS=
for h in $HOT; do
	sh_has_word "$W" "$h" || MISS="$MISS $h"
done
ktap_check "every hot region is copied, 200 whole after a 4 KiB read (missing:${MISS:- none})" \
	test -z "$MISS"
FAR=
for w in $W; do
	near_hot "$w" || FAR="$FAR $w"
done
ktap_check "nothing copied farther than 1 MiB from a hot region (far:${FAR:- none})" \
	test -z "$FAR"
NW=$(wc -w <<<"$W")
ktap_check "the copied count is the regions written ($(sh_copied $NAME) == $NW)" \
	test "$(sh_copied $NAME)" = "$NW"
# shellcheck disable=SC2086 # a list of regions
BAD=$(bad_copies $W)
ktap_check "the copied regions hold the origin's bytes (bad: ${BAD:-none})" test -z "$BAD"

R2=$(sh_stat "$ODEV" 3)
RDFAIL=
# shellcheck disable=SC2086 # a list of regions
read_region $HOT
R3=$(sh_stat "$ODEV" 3)
ktap_check "re-reading the hot set (whole regions) returns the origin's bytes (bad:${RDFAIL:- none})" \
	test -z "$RDFAIL"
ktap_check "re-reading the hot set reads nothing from the origin ($R2 -> $R3 sectors)" \
	test "$R3" = "$R2"

# ---- copy_on_read off, on ----------------------------------------------------

msg_ok "message copy_on_read off accepted" copy_on_read off
opts_are "after copy_on_read off" "1 paused"
C0=$(sh_copied $NAME)
RDFAIL=
read_region 150 250
sleep 2
W=$(written 150 250)
if [[ -z $RDFAIL && $(sh_copied $NAME) == "$C0" && $(sh_copying $NAME) == 0 && -z $W ]]; then
	ktap_ok "copy_on_read off: reads of regions 150, 250 copy nothing"
else
	ktap_fail "copy_on_read off: reads of regions 150, 250 copy nothing" \
		"copied $C0 -> $(sh_copied $NAME), written: '$W', bad reads:${RDFAIL:- none}; $(dm_status $NAME)"
fi

msg_ok "message copy_on_read on accepted" copy_on_read on
opts_are "after copy_on_read on" "2 paused copy_on_read"
C0=$(sh_copied $NAME)
read_region 400
if settle $((C0 + 1)) && [[ -z $(bad_copies 400) ]]; then
	ktap_ok "copy_on_read on again: a read of region 400 copies it"
else
	ktap_fail "copy_on_read on again: a read of region 400 copies it" \
		"copied $C0 -> $(sh_copied $NAME), written: '$(written 400)'; $(dm_status $NAME)"
fi

sh_msg_fail "malformed: copy_on_read (no value)" $NAME copy_on_read
sh_msg_fail "malformed: copy_on_read yes" $NAME copy_on_read yes
sh_msg_fail "malformed: copy_on_read on off" $NAME copy_on_read on off
opts_are "the refused messages changed nothing" "2 paused copy_on_read"

# ---- the end -----------------------------------------------------------------

ktap_check "copy_on_read: the device reads as the origin" \
	test "$(sh_md5 "$DEV")" = "$ORIG_MD5"
dm_message $NAME continue
completes_equal "continue: the stream completes, the destination equals the origin" \
	$NAME "$DEST" "$IMG" 120

dm_remove $NAME

# ---- paused with a background region held mid-copy -----------------------------

HRS=2048			# region size, sectors (1 MiB)
HRB=$((HRS * 512))
HOT_R=12			# the region read, far from the held one

# held_case DESC [OPT ARGS...]: the scenario of the header over fresh devices,
# with OPT ARGS added to "rate 256 copy_on_read": two results.
held_case()
{
	local desc=$1 name=cor01-held o d m opts n got exp

	shift
	opts="rate 256 copy_on_read $*"
	n=$(wc -w <<<"$opts")
	if ! o=$(make_loop 16 horig) || ! d=$(make_loop 16 hdest) ||
	   ! m=$(make_loop 4 hmeta); then
		ktap_skip_all "cannot set up a loop device"
	fi
	sh_fill_random "$o"
	sh_setup dm_create $name "0 $(sectors "$o") stream $m $d $o $HRS $n $opts"
	sleep 1
	sh_setup dm_message $name pause
	sh_setup dm_message $name rate 0
	sleep 0.5
	ktap_diag "$desc: paused after 1 s at 256 KiB/s: $(dm_status $name)"
	# Region 0 mid-copy: its first piece on the destination, not copied.
	got=$(sh_md5 "$d" 65536 0)
	if [[ $got == "$(sh_zero_md5 65536)" || $(sh_copied $name) != 0 ]]; then
		ktap_skip "$desc: a read of region $HOT_R gets it copied within 10 s" \
			"region 0 not mid-copy at the pause (first 64 KiB $got): $(dm_status $name)"
	else
		got=$(sh_md5 "$(dm_dev $name)" 4096 $((HOT_R * HRB)))
		exp=$(sh_md5 "$o" 4096 $((HOT_R * HRB)))
		[[ $got == "$exp" ]] || ktap_diag "$desc: the read returned bytes that are not the origin's"
		if sh_wait_for 10 sh_region_same "$d" "$o" $HOT_R $HRS; then
			ktap_ok "$desc: a read of region $HOT_R gets it copied within 10 s ($(dm_status $name))"
		else
			ktap_fail "$desc: a read of region $HOT_R gets it copied within 10 s" \
				"10 s after the read: $(dm_status $name)"
		fi
	fi
	sh_setup dm_message $name continue
	completes_equal "$desc: continue: complete, the destination equals the origin" \
		$name "$d" "$o" 60
	dm_remove $name
}

held_case "held mid-copy, max_inflight 1" max_inflight 1
held_case "held mid-copy, default max_inflight"

ktap_finish
