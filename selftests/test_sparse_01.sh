#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_sparse_01: zero pieces of the origin: skip_zeroes, WRITE_ZEROES.
#
# The origin: 32 MiB, alternating 1 MiB extents of random data and of
# zeros (16 of each). Regions of 64 KiB, streamed to completion at full
# speed. Destinations:
#
#  A. a dm-thin volume (a thin-pool over two loop devices, 64 KiB data
#     blocks, a fresh thin id) with skip_zeroes: the pool's used data
#     blocks grow by about half the volume, not all of it: at least the 256
#     blocks of the data extents, at most 320 of 512 (62.5%). Zeros are
#     found per chunk, here the pool's 64 KiB block: 256 when every
#     all-zero chunk is left unprovisioned.
#  B. a fresh thin volume of the same pool without skip_zeroes. On Linux
#     6.1 dm-thin does not take REQ_OP_WRITE_ZEROES (thin sets no
#     num_write_zeroes_bios, so the thin device's
#     queue/write_zeroes_max_bytes is 0): the stream writes the zero pieces
#     as zeros and the pool provisions every block (all 512). The test
#     reads write_zeroes_max_bytes and asserts that only where it is 0;
#     where a kernel's dm-thin takes WRITE_ZEROES the allocation is not
#     asserted (skipped with the reason).
#  C. a plain loop device (a tmpfs file) filled with 0xa5, without
#     skip_zeroes. The loop driver takes WRITE_ZEROES on a file that has
#     fallocate (checked: write_zeroes_max_bytes > 0) and turns it into a
#     hole punched in the file (FALLOC_FL_PUNCH_HOLE, as long as the
#     WRITE_ZEROES is not REQ_NOUNMAP: tmpfs has no FALLOC_FL_ZERO_RANGE
#     and fails that). The destination then reads zeros where the origin
#     has zeros, and the backing file keeps at most 20 of its 32 MiB
#     allocated (62.5%, as in A: the zero pieces went as WRITE_ZEROES, not
#     as zero pages).
#
# In every case the stream completes with no copy error, and the stream
# device and its destination read exactly as the origin (md5).
#
#  D. skip_zeroes never resurrects data the target itself left on the
#     destination: an all-zero origin of 8 MiB, a paused stream with
#     skip_zeroes over a dm-linear metadata device, which then fails every
#     write (flakey error_writes). A 4 KiB write of 0xaa into uncopied
#     region 5 is acknowledged (its copy and the write reach the
#     destination), but its bit is never committed. The target is removed,
#     the metadata device healed, and the stream created again with the
#     same table (paused, skip_zeroes): region 5 is uncopied and reads as
#     the origin (zeros). After "continue" and completion, with no write
#     since, it must still read zeros, and the destination must equal the
#     origin: the destination does not read zeros there, so the stream
#     may not skip writing it.
#
#  E. skip_zeroes where the destination cannot be read: a loop device
#     holding 0xa5 behind a dm-delay that fails every read (sent to an
#     "error" device) and passes writes. The
#     zero chunks cannot be checked against the destination, so they are
#     written: the stream completes with no copy error (a failed read of
#     the destination is not a copy error) and the destination equals the
#     origin (and the destination's read count shows it was read). Left
#     alone, they would keep the 0xa5.
#
# skip_zeroes over a thin pool that does not zero new blocks (garbage the
# target never wrote): test_sparse_02.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd losetup stat

sh_start 24 dm-thin-pool

RS=128				# region size, sectors (64 KiB) = thin block size
MB=32
LEN=$((MB * 2048))
NR=$((LEN / RS))		# 512
HALF=$((NR / 2))
POOL=sp01-pool
P=sp01

ORIG=$(make_loop $MB orig) || ktap_skip_all "cannot set up a loop device"
for ((i = 0; i < MB; i += 2)); do
	dd if=/dev/urandom of="$ORIG" bs=1M count=1 seek=$i iflag=fullblock \
		oflag=direct status=none
done
ORIG_MD5=$(sh_md5 "$ORIG")

if ! PMETA=$(make_loop 8 pmeta) || ! PDATA=$(make_loop 96 pdata); then
	ktap_skip_all "cannot set up a loop device"
fi
sh_setup dm_create $POOL "0 $(sectors "$PDATA") thin-pool $PMETA $PDATA $RS 0"

# pool_used: the pool's used data blocks.
pool_used()
{
	local w

	read -r -a w <<<"$(dm_status "$POOL")"
	echo "${w[2]%%/*}"
}

# thin_new NAME ID: a fresh thin volume of LEN sectors.
thin_new()
{
	dmsetup message "$POOL" 0 "create_thin $2" &&
		dm_create "$1" "0 $LEN thin $(dm_dev "$POOL") $2"
}

# wz_bytes DEV: the device's queue/write_zeroes_max_bytes.
wz_bytes()
{
	cat "$(sh_sysfs "$1")/queue/write_zeroes_max_bytes"
}

# stream_run DESC NAME DEST [OPT ARGS...]: a stream of ORIG onto DEST with
# its own metadata, streamed to completion (a 120 s bound): one result.
stream_run()
{
	local desc=$1 name=$2 dest=$3 meta opts=

	shift 3
	[[ $# -eq 0 ]] || opts="$# $*"
	meta=$(make_loop 4 meta) || ktap_skip_all "cannot set up a loop device"
	sh_setup dm_create "$name" "0 $LEN stream $meta $dest $ORIG $RS${opts:+ $opts}"
	if sh_wait_state "$name" complete 120 &&
	   [[ $(sh_field "$name" 4) == "$NR/$NR" && $(sh_copy_errors "$name") == 0 ]]; then
		ktap_ok "$desc: the stream completes, no copy error"
	else
		ktap_fail "$desc: the stream completes, no copy error" "$(dm_status "$name")"
	fi
}

# md5_is DESC DEV: one result: DEV reads as the origin.
md5_is()
{
	ktap_check "$1 reads as the origin" test "$(sh_md5 "$2")" = "$ORIG_MD5"
}

# ---- A: thin, skip_zeroes ------------------------------------------------------

sh_setup thin_new $P-thin0 0
THIN0=$(dm_dev $P-thin0)
U0=$(pool_used)
stream_run "A (thin, skip_zeroes)" $P-a "$THIN0" skip_zeroes
S=$(sh_opt_args $P-a)
ktap_check "A: skip_zeroes in the status opt args ('$S')" test "$S" = "1 skip_zeroes"
md5_is "A: the stream device" "$(dm_dev $P-a)"
md5_is "A: the thin volume" "$THIN0"
U1=$(pool_used)
D=$((U1 - U0))
ktap_check "A: about half the volume provisioned ($D blocks, $HALF..$((HALF + NR / 8)) of $NR)" \
	test $D -ge $HALF -a $D -le $((HALF + NR / 8))

# ---- B: thin, without skip_zeroes ------------------------------------------------

sh_setup thin_new $P-thin1 1
THIN1=$(dm_dev $P-thin1)
WZ=$(wz_bytes "$THIN1")
ktap_diag "thin volume: write_zeroes_max_bytes $WZ"
U0=$(pool_used)
stream_run "B (thin, no skip_zeroes)" $P-b "$THIN1"
md5_is "B: the stream device" "$(dm_dev $P-b)"
md5_is "B: the thin volume" "$THIN1"
U1=$(pool_used)
D=$((U1 - U0))
if [[ $WZ == 0 ]]; then
	ktap_check "B: thin takes no WRITE_ZEROES: the zeros are written, every block provisioned ($D of $NR)" \
		test $D -eq $NR
else
	ktap_skip "B: provisioning without skip_zeroes ($D of $NR blocks)" \
		"this kernel's dm-thin takes WRITE_ZEROES ($WZ bytes): not asserted"
fi

# ---- C: loop over garbage, without skip_zeroes ------------------------------------

DEST=$(make_loop $MB dest) || ktap_skip_all "cannot set up a loop device"
sh_fill_byte "$DEST" 245	# 0xa5
WZ=$(wz_bytes "$DEST")
if [[ $WZ -gt 0 ]]; then
	ktap_ok "C: the loop destination takes WRITE_ZEROES ($WZ bytes)"
else
	ktap_skip "C: the loop destination takes WRITE_ZEROES" \
		"write_zeroes_max_bytes is 0 here"
fi
BACK=$(losetup -n -O BACK-FILE "$DEST" | sed 's/[[:space:]]*$//')
ktap_diag "C: backing file $BACK, $(($(stat -c %b "$BACK") / 2048)) MiB allocated before"
stream_run "C (loop, 0xa5, no skip_zeroes)" $P-c "$DEST"
md5_is "C: the stream device" "$(dm_dev $P-c)"
md5_is "C: the destination (zeros over 0xa5 where the origin has zeros)" "$DEST"
ALLOC=$(($(stat -c %b "$BACK") / 2048))
if [[ $WZ -gt 0 ]]; then
	ktap_check "C: the zero pieces went as WRITE_ZEROES (holes): $ALLOC MiB of $MB allocated, <= 20" \
		test "$ALLOC" -le 20
else
	ktap_skip "C: the zero pieces went as WRITE_ZEROES" "the loop device takes none"
fi

S=$(dm_status $POOL)
read -r -a W <<<"$S"
ktap_check "the pool is healthy at the end (rw, no needs_check: '$S')" \
	test "${W[4]:-} ${W[7]:-}" = "rw -"

dm_remove $P-a
dm_remove $P-b
dm_remove $P-c

# ---- D: an acknowledged write whose bit was never committed ----------------------

DRS=128
DLEN=16384			# 8 MiB, 128 regions
DR=5				# the region written
DNAME=$P-d
DMETA=$P-dmeta
if ! ZO=$(make_loop 8 zorig) || ! ZD=$(make_loop 8 zdest) || ! ZM=$(make_loop 1 zmeta); then
	ktap_skip_all "cannot set up a loop device"
fi
DTAB="$ZD $ZO $DRS 2 paused skip_zeroes"
ZERO4K=$(sh_zero_md5 4096)
AA=$(sh_tmpfile)
head -c 4096 /dev/zero | tr '\000' '\252' >"$AA"
AA_MD5=$(md5sum <"$AA" | cut -d' ' -f1)

# d_md5: md5 of the 4 KiB written, read through the stream device.
d_md5()
{
	sh_md5 "$(dm_dev $DNAME)" 4096 $((DR * DRS * 512))
}

sh_setup sh_stream_over_linear_meta $DNAME $DMETA "$ZM" "$DTAB"
sh_setup dm_reload $DMETA "$(sh_failing_table "$ZM")"
sh_write_at "$(dm_dev $DNAME)" "$AA" $((DR * DRS))
rc=$?
S=$(dm_status $DNAME)
if [[ $rc == 0 && $(d_md5) == "$AA_MD5" ]]; then
	ktap_ok "D: a write into uncopied region $DR is acknowledged while the metadata fails ($S)"
else
	ktap_fail "D: a write into uncopied region $DR is acknowledged while the metadata fails" \
		"dd rc $rc, status $S"
fi
sh_setup dm_remove $DNAME
sh_setup dm_reload $DMETA "0 $(sectors "$ZM") linear $ZM 0"
sh_setup dm_create $DNAME "0 $DLEN stream $(dm_dev $DMETA) $DTAB"
ktap_diag "D: created again: $(dm_status $DNAME)"
ktap_check "D: created again: the write's bit was never committed ($(sh_field $DNAME 4))" \
	test "$(sh_copied $DNAME)" = 0
ktap_check "D: paused, region $DR reads as the origin (zeros)" test "$(d_md5)" = "$ZERO4K"
dm_message $DNAME continue
if sh_wait_state $DNAME complete 60; then
	ktap_diag "D: streamed: $(dm_status $DNAME)"
	G=$(d_md5)
	ktap_check "D: streamed, no write since: region $DR still reads zeros ($([[ $G == "$AA_MD5" ]] && echo "reads 0xaa" || echo "md5 $G"))" \
		test "$G" = "$ZERO4K"
else
	ktap_fail "D: streamed, no write since: region $DR still reads zeros" \
		"not complete within 60 s: $(dm_status $DNAME)"
fi
ktap_check "D: the destination equals the origin" sh_cmp "$ZD" "$ZO"
dm_remove $DNAME

# ---- E: skip_zeroes, the destination's reads fail -----------------------------------

EDEST=$(make_loop $MB edest) || ktap_skip_all "cannot set up a loop device"
sh_fill_byte "$EDEST" 245	# 0xa5
# Reads fail, writes pass: dm-delay (no delay) sends reads to an "error"
# device and writes and flushes to the loop device.
sh_setup dm_create $P-eerr "0 $LEN error"
sh_setup dm_create $P-esplit "0 $LEN delay $(dm_dev $P-eerr) 0 0 $EDEST 0 0 $EDEST 0 0"
ES=$(dm_dev $P-esplit)
A5=$(sh_tmpfile)
head -c 4096 /dev/zero | tr '\000' '\245' >"$A5"
if ! dd if="$ES" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null &&
   sh_write_at "$ES" "$A5" 0; then
	ktap_ok "E: the destination fails reads and takes writes"
else
	ktap_fail "E: the destination fails reads and takes writes" "$(dmsetup table $P-esplit)"
fi
# read I/Os of the split device (diskstats count failed ones too)
R0=$(sh_stat "$ES" 1)
stream_run "E (reads of the destination fail, skip_zeroes)" $P-e "$ES" skip_zeroes
R1=$(sh_stat "$ES" 1)
ktap_check "E: the stream read the destination (read I/Os $R0 -> $R1)" test "$R1" -gt "$R0"
sh_setup dm_remove $P-e
md5_is "E: the destination (zeros written over 0xa5 where the origin has zeros)" "$EDEST"
dm_remove $P-esplit
dm_remove $P-eerr
ktap_finish
