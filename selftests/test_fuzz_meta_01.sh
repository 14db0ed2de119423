#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_fuzz_meta_01: corrupted metadata, in the kernel and in dmstream check.
#
# Base images are made by the kernel: for six geometries (g1: one bitmap
# block; g2: a partial last region; g3: three bitmap blocks; g4: 4 KiB logical
# blocks; g5: one region of 1 GiB; g6: 32577 regions, so the second bitmap
# block holds one bit; see setup()),
# a freshly formatted device, one after three commits (whole-region writes
# and a flush each: both slots of a block in use, different transactions)
# and one left mid-stream. fuzz/meta.py mutates them: superblock fields
# (checksum recomputed or not), bytes, magic, version, block number,
# checksums, transaction ids; bitmap slots (one or both damaged, transaction
# ids above, equal to or below the superblock's, past 2^63, block numbers,
# magic, bits past the last region, bits flipped with or without the copied
# count following, slots swapped, copied or zeroed); metadata devices cut
# shorter than needed; superblocks of another geometry.
#
# Each image is written to the metadata device and loaded with its
# geometry's table (paused); `dmstream check --ignore-non-fatal-errors` checks
# the same bytes, as a file as long as the device, in parallel.
# Three verdicts are compared (fuzz/meta.py judge_main):
#   - the kernel and the model of the admin guide: refused with the rst's
#     message, or loaded with the copied count of the valid slots;
#   - the kernel and dmstream check: loads <=> check exits 0, except for
#     table-dependent images, where the kernel's refusal comes from the
#     table: the superblock records another region size, length, origin or
#     destination size than the table's, or the device is too small for the
#     table but not for the geometry the superblock records (or is blank).
#     Those are counted apart, and check must then give the model's verdict
#     for the table the superblock records (ok for a blank device);
#   - never an oops or a warning, never a device left behind.
#
# Counts: 30 images over g1 and two more geometries chosen by the seed
# (slice), 1000 images over all six with DMSTREAM_FUZZ=full.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"
. "$(dirname "$0")/fuzz_helpers.sh"

DMSTREAM=$REPO_ROOT/tools/dmstream
[[ -x $DMSTREAM ]] || ktap_skip_all "tools/dmstream is not built (make)"
require_cmd losetup

sh_start 6 dm-zero
fz_init
N=$(fz_count 30 1000)
W=$TEST_TMP/fz
mkdir -p "$W/img"
cleanup_add "fz_remove_prefix fzm-"

# --- devices -----------------------------------------------------------------
# Every metadata device is a loop device (fz_loop), so the images are written
# into its backing file without a process (fz_put): META and META4K (4 KiB
# logical blocks) hold 1 MiB; the truncated variants (one sector short, one
# block short, one block, one sector: multiples of 4 KiB on META4K) are
# loop devices of their own, one per size.
declare -A MDEV DEST ORIG RS LEN TDEV DEVS
ALL_GEOS="g1 g2 g3 g4 g5 g6"
if [[ -n $FZ_FULL ]]; then
	GEOS=$ALL_GEOS
else
	# g1 and two more, chosen by the seed: every slice run covers a part.
	set -- g2 g3 g4 g5 g6
	a=$((FZ_SEED % 5 + 1))
	GEOS="g1 ${!a}"
	set -- "${@:1:a-1}" "${@:a+1}"
	b=$(((FZ_SEED / 5) % 4 + 1))
	GEOS+=" ${!b}"
	set --
fi

# devs SET: the origin and destination devices of a set of geometries, made
# on first use (DEVS[SET] holds "origin dest").
devs()
{
	local o d
	[[ -n ${DEVS[$1]:-} ]] && return 0
	case $1 in
	small) make_loop -v o 8 o8 && make_loop -v d 8 d8 ;;
	big) sh_setup dm_create fzm-oz "0 600000 zero" && o=$(dm_dev fzm-oz) &&
		make_loop -v d 300 dbig ;;
	4k) o=$(make_loop -b 4096 4 o4k) && d=$(make_loop -b 4096 4 d4k) ;;
	esac || return 1
	DEVS[$1]="$o $d"
}

# tdev VAR SECTORS LBS: the truncated metadata device of SECTORS.
tdev()
{
	local key=$3:$2 tdev_new
	if [[ -z ${TDEV[$key]:-} ]]; then
		fz_loop tdev_new $(($2 * 512)) "t$2" "$3" || return 1
		TDEV[$key]=$tdev_new
	fi
	printf -v "$1" '%s' "${TDEV[$key]}"
}

# geo GID RS LEN SET: a geometry over the devices of SET, its metadata
# device and truncated variants, and its line in geos.tsv.
geo()
{
	local gid=$1 set=$4 nr need m lbs t1 t8 tblk tsec v o d
	devs "$set" || return 1
	read -r o d <<<"${DEVS[$set]}"
	RS[$gid]=$2 LEN[$gid]=$3 ORIG[$gid]=$o DEST[$gid]=$d
	nr=$(((LEN[$gid] + RS[$gid] - 1) / RS[$gid]))
	need=$((8 * (1 + 2 * ((nr + 32575) / 32576))))
	if [[ $set == 4k ]]; then
		[[ -n ${META4K:-} ]] || fz_loop META4K $((1 << 20)) meta4k 4096 || return 1
		m=$META4K lbs=4096 t1=$((need - 8)) t8=$((need - 8)) tblk=8 tsec=8
	else
		m=$META lbs=512 t1=$((need - 1)) t8=$((need - 8)) tblk=8 tsec=1
	fi
	MDEV[$gid:full]=$m
	for v in t1 t8 tblk tsec; do
		tdev "MDEV[$gid:$v]" "${!v}" "$lbs" || return 1
	done
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$gid" "$2" "$3" \
		"$(sectors "$o")" "$(sectors "$d")" "$(sectors "$m")" "$t1" "$t8" \
		"$tblk" "$tsec" >>"$W/geos.tsv"
}

setup()
{
	local gid
	fz_loop META $((1 << 20)) meta || return 1
	for gid in $GEOS; do
		case $gid in
		g1) geo g1 8 8192 small ;;		# one bitmap block
		g2) geo g2 128 16001 small ;;		# last region: one sector
		g3) geo g3 8 529216 big ;;		# three bitmap blocks
		g4) geo g4 16 4096 4k ;;		# 4 KiB logical blocks
		g5) geo g5 2097152 10000 small ;;	# one region, 1 GiB
		g6) geo g6 8 260616 big ;;		# 32577 regions: 2 blocks
		esac || return 1
	done
}

table()
{
	local gid=$1
	echo "0 ${LEN[$gid]} stream ${2:-${MDEV[$gid:full]}} ${DEST[$gid]} ${ORIG[$gid]} ${RS[$gid]}"
}

: >"$W/geos.tsv"
setup || ktap_skip_all "cannot set up the loop devices"

# --- base images, written by the kernel ---------------------------------------

# dump GID NAME: the metadata blocks the geometry uses, into a base image.
dump()
{
	local gid=$1 nr need
	nr=$(((LEN[$gid] + RS[$gid] - 1) / RS[$gid]))
	need=$((1 + 2 * ((nr + 32575) / 32576)))
	dd if="${MDEV[$gid:full]}" of="$W/base-$gid-$2.img" bs=4096 count="$need" \
		iflag=direct status=none &&
	printf '%s\t%s\t%s\n' "$gid" "$2" "$W/base-$gid-$2.img" >>"$W/bases.tsv"
}

# write_region GID R [FSYNC]: one write covering region R (O_DIRECT).
write_region()
{
	local gid=$1 r=$2 rs=${RS[$1]} n
	n=$((LEN[$gid] - r * rs))
	[[ $n -gt $rs ]] && n=$rs
	dd if=/dev/zero of="$(dm_dev fzm-base)" bs=$((n * 512)) count=1 \
		seek=$((r * rs * 512)) oflag=direct,seek_bytes conv=notrunc${3:+,fsync} \
		status=none
}

bases()
{
	local gid=$1 nr round r regions
	nr=$(((LEN[$gid] + RS[$gid] - 1) / RS[$gid]))
	fz_blank "${FZ_FILE[${MDEV[$gid:full]}]}"
	dm_create fzm-base "$(table "$gid") 1 paused" && dm_remove fzm-base &&
		dump "$gid" fresh || return 1

	# Three commits, each a flush after whole-region writes spread over the
	# bitmap blocks.
	dm_create fzm-base "$(table "$gid") 1 paused" || return 1
	for round in 0 1 2; do
		regions="$((nr - 1 - round)) $((32576 + 7 * round))"
		for r in $regions; do
			[[ $r -lt $nr && $r -ge 0 ]] || continue
			write_region "$gid" "$r" || return 1
		done
		write_region "$gid" $((round % nr)) fsync || return 1
	done
	dm_remove fzm-base && dump "$gid" commits || return 1

	# Streaming at 512 KiB/s for a second, then removed mid-stream.
	dm_create fzm-base "$(table "$gid") 2 rate 512" || return 1
	sleep 1
	dm_remove fzm-base && dump "$gid" mid
}

start=$SECONDS
: >"$W/bases.tsv"
bases_ok=1
ktap_diag "geometries: $GEOS"
for gid in $GEOS; do
	if ! bases "$gid"; then
		bases_ok=
		ktap_diag "base images of $gid: ${DM_ERR:-dd failed}"
		dm_exists fzm-base && dm_remove fzm-base
	fi
done
if [[ -n $bases_ok ]]; then
	ktap_ok "base images written by the kernel ($(wc -l <"$W/bases.tsv") in $((SECONDS - start)) s)"
else
	ktap_fail "base images written by the kernel"
fi
[[ -s $W/bases.tsv ]] || ktap_bail "no base image"

# --- the cases ---------------------------------------------------------------------
start=$SECONDS
fz_py meta-gen --seed "$FZ_SEED" --first "$FZ_FIRST" --count "$N" --geos "$W/geos.tsv" \
	--bases "$W/bases.tsv" --dir "$W/img" --out "$W/cases.tsv" || {
	ktap_fail "the case generator ran" "fuzz meta-gen crashed (seed $FZ_SEED): a bug in selftests/fuzz"
	ktap_bail "meta-gen failed"
}
gen_secs=$((SECONDS - start))
fz_klog_start "$W/kmsg.log" || ktap_skip_all "cannot follow the kernel log"
start=$SECONDS

# dmstream check on every image (the bytes the metadata device will hold, as
# a file as long as the device), on the other CPU while the kernel loads them.
: >"$W/tool.tsv"
(
	while IFS=$'\t' read -r n _ _ _ img _; do
		rc=0
		out=$("$DMSTREAM" check --ignore-non-fatal-errors "$img" 2>&1) || rc=$?
		out=${out//$'\t'/ }
		printf '%s\t%s\t%s\n' "$n" "$rc" "${out//$'\n'/ | }" >>"$W/tool.tsv"
	done <"$W/cases.tsv"
) &
tool_pid=$!

: >"$W/results.tsv"
while IFS=$'\t' read -r n gid _ variant img _; do
	dev=${MDEV[$gid:$variant]}
	fz_put "${FZ_FILE[$dev]}" "${img%.bin}.esc"
	name=fzm-c$n
	fz_mark meta "$n"
	rc=0
	dmsetup create "$name" --table "$(table "$gid" "$dev") 1 paused" >/dev/null 2>&1 ||
		rc=$?
	fz_case_end "$name" "$rc"
	printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$rc" "${FZ_STATUS//$'\n'/ }" "$FZ_RM" \
		"$FZ_LEFT" >>"$W/results.tsv"
done <"$W/cases.tsv"
wait "$tool_pid"
run_secs=$((SECONDS - start))
fz_klog_stop

# --- verdicts ----------------------------------------------------------------------
start=$SECONDS
fz_py meta-judge --seed "$FZ_SEED" --geos "$W/geos.tsv" --cases "$W/cases.tsv" \
	--results "$W/results.tsv" --tool "$W/tool.tsv" --kmsg "$W/kmsg.log" \
	>"$W/judge.out" 2>&1
judge_rc=$?
fz_show "$W/judge.out"
cases=$(fz_total "$W/judge.out" cases)
ktap_diag "images: ${cases:-0} generated in $gen_secs s, run in $run_secs s, judged in $((SECONDS - start)) s"
if [[ ${cases:-0} -eq $N && $judge_rc -ne 2 ]]; then
	ktap_ok "meta fuzz: $N images run (seed $FZ_SEED)"
else
	ktap_fail "meta fuzz: $N images run (seed $FZ_SEED)" "${cases:-no} judged"
fi
for key in kernel-model-mismatches kernel-tool-disagreements tool-model-mismatches; do
	v=$(fz_total "$W/judge.out" "$key")
	case $key in
	kernel-model-mismatches) d="kernel verdicts and messages match the model" ;;
	kernel-tool-disagreements) d="dmstream check agrees with the kernel (table-dependent images apart)" ;;
	*) d="dmstream check matches the model (table-dependent images included)" ;;
	esac
	if [[ $v == 0 ]]; then
		ktap_ok "meta fuzz: $d"
	else
		ktap_fail "meta fuzz: $d" "${v:-?} $key, tool failures $(fz_total "$W/judge.out" tool-failures)"
	fi
done
if [[ $(fz_total "$W/judge.out" oopses) == 0 && $(fz_total "$W/judge.out" left) == 0 ]]; then
	ktap_ok "meta fuzz: no oops or warning, no device left behind"
else
	ktap_fail "meta fuzz: no oops or warning, no device left behind"
fi
ktap_finish
