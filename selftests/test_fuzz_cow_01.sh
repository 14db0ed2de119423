#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_fuzz_cow_01: `dmstream exceptions`, the offline reader of dm-snapshot's
# persistent exception store, against an independent model (dmst/snapstore.py)
# and against the kernel.
#
# - Valid stores written by the model (chunks of 1, 8, 16, 64 and 128
#   sectors; 0 exceptions, 1, a full area, two full areas with the device
#   ending after the next area's chunk, several areas; several region sizes;
#   --origin a 1 GiB zero device): the tool's JSON (exception and area
#   counts, changed chunks, bytes, regions) equals the model's.
# - Seeded mutations of such stores (header magic, valid, version and chunk
#   size; new chunks on a metadata chunk, past the device, used twice, 0
#   mid-list; old chunks past --origin, huge, repeated; truncated images;
#   bit flips): exit 0 or 3 only, never another code or a crash; the
#   verdict is the model's, and on exit 0 the output agrees with the model's
#   parse of the same bytes. --origin is one of two devices (2048 and 2049
#   sectors: a partial last chunk) or none.
# - The kernel's own stores: a snapshot (P, chunks of 8 and of 64 sectors)
#   of a loop device, chunks written through snapshot-origin (300 chunks
#   in a row: two metadata areas with chunks of 8) and through the
#   snapshot; both suspended, `dmstream exceptions COW --origin REAL --json`
#   lists exactly the chunks written, and as many exceptions as the
#   snapshot's status says (allocated minus metadata sectors, in chunks).
#   The same store with --origin a device too small for its last chunk is
#   refused (exit 3); a snapshot that overflowed its COW (marked invalid by
#   the kernel) is refused (exit 3).
#
# Counts: 100 mutations, 3000 with DMSTREAM_FUZZ=full.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"
. "$(dirname "$0")/fuzz_helpers.sh"

DMSTREAM=$REPO_ROOT/tools/dmstream
[[ -x $DMSTREAM ]] || ktap_skip_all "tools/dmstream is not built (make)"
require_cmd dmsetup losetup dd python3 blockdev
require_module loop dm-mod dm-snapshot
ktap_plan 8

fz_init
N=$(fz_count 100 3000)
W=$TEST_TMP/cow
mkdir -p "$W"
cleanup_add "fz_remove_prefix fzc-"

# judged WHAT OUT RC CASES: the results of a dmst.snapstore run (its output
# in OUT, exit status RC, expected case count CASES).
judged()
{
	local what=$1 out=$2 rc=$3 n=$4 cases bad

	fz_show "$out"
	cases=$(fz_total "$out" cases)
	bad=$(($(fz_total "$out" verdict-mismatches) + $(fz_total "$out" output-mismatches)))
	if [[ $rc -eq 0 && ${cases:-0} -eq $n && $bad -eq 0 ]]; then
		ktap_ok "$what"
	else
		ktap_fail "$what" "exit $rc, ${cases:-no} of $n cases, $bad disagreements"
	fi
}

# --- valid stores ---------------------------------------------------------------
sh_setup dm_create fzc-big "0 2097152 zero"
rc=0
dmst_py snapstore valid "$DMSTREAM" "$W" --origin "$(dm_dev fzc-big):2097152" \
	--seed "$FZ_SEED" >"$W/valid.out" 2>&1 || rc=$?
judged "valid stores: exceptions and changed chunks equal the model's" "$W/valid.out" $rc 25

# --- mutations ----------------------------------------------------------------------
sh_setup dm_create fzc-o2049 "0 2049 zero"
make_loop -v O2048 1 o2048 || ktap_bail "cannot set up a loop device"
start=$SECONDS
rc=0
dmst_py snapstore fuzz "$DMSTREAM" "$W" --seed "$FZ_SEED" --first "$FZ_FIRST" --count "$N" \
	--origin "$O2048:2048" --origin "$(dm_dev fzc-o2049):2049" >"$W/fuzz.out" 2>&1 || rc=$?
fz_show "$W/fuzz.out"
ktap_diag "$N mutations in $((SECONDS - start)) s"
cases=$(fz_total "$W/fuzz.out" cases)
if [[ $rc -eq 0 && ${cases:-0} -eq $N ]]; then
	ktap_ok "fuzz: $N mutated stores run (seed $FZ_SEED)"
else
	ktap_fail "fuzz: $N mutated stores run (seed $FZ_SEED)" "exit $rc, ${cases:-no} cases"
fi
if [[ $(fz_total "$W/fuzz.out" bad-exit) == 0 ]]; then
	ktap_ok "fuzz: the tool exits 0 or 3 only, never crashes"
else
	ktap_fail "fuzz: the tool exits 0 or 3 only, never crashes" \
		"$(fz_total "$W/fuzz.out" bad-exit) other exits"
fi
vm=$(fz_total "$W/fuzz.out" verdict-mismatches)
om=$(fz_total "$W/fuzz.out" output-mismatches)
if [[ $vm == 0 && $om == 0 ]]; then
	ktap_ok "fuzz: verdicts, and on exit 0 the output, equal the model's"
else
	ktap_fail "fuzz: verdicts, and on exit 0 the output, equal the model's" \
		"${vm:-?} verdicts, ${om:-?} outputs differ"
fi

# --- the kernel's stores --------------------------------------------------------------

# write DEV CHUNK FIRST COUNT: write COUNT chunks of CHUNK sectors from chunk
# FIRST of DEV (O_DIRECT, one write).
write()
{
	dd if=/dev/urandom of="$1" bs=$(($2 * 512)) seek="$3" count="$4" oflag=direct \
		conv=notrunc status=none
}

# kernel CHUNK ORIGIN-WRITES SNAP-WRITES: a snapshot of chunks of CHUNK
# sectors; each write is FIRST+COUNT (chunks). Sets KSTATUS and KCOW; leaves
# fzc-origin and fzc-snap suspended (removed by the caller).
REAL_MB=4
kernel()
{
	local chunk=$1 w s
	local -a want=()

	make_loop -v KREAL $REAL_MB real && make_loop -v KCOW 4 cow || return 1
	dm_create fzc-origin "0 $((REAL_MB * 2048)) snapshot-origin $KREAL" &&
		dm_create fzc-snap "0 $((REAL_MB * 2048)) snapshot $KREAL $KCOW P $chunk" || return 1
	for w in $2; do
		write "$(dm_dev fzc-origin)" "$chunk" "${w%+*}" "${w#*+}" || return 1
		for ((s = ${w%+*}; s < ${w%+*} + ${w#*+}; s++)); do
			want+=("$s")
		done
	done
	for w in $3; do
		write "$(dm_dev fzc-snap)" "$chunk" "${w%+*}" "${w#*+}" || return 1
		for ((s = ${w%+*}; s < ${w%+*} + ${w#*+}; s++)); do
			want+=("$s")
		done
	done
	KWANT=$(printf '%s\n' "${want[@]}" | sort -n -u | paste -s -d,)
	dmsetup suspend fzc-snap && dmsetup suspend fzc-origin || return 1
	KSTATUS=$(dmsetup status fzc-snap) || return 1
}

kernel_done()
{
	dmsetup resume fzc-origin
	dmsetup resume fzc-snap
	dm_remove fzc-snap
	dm_remove fzc-origin
}

short="kernel store: an old chunk past --origin is refused (exit 3)"
for spec in "8|0+1 10+300|5+1 7+1 1023+1" "64|0+1 3+2|10+1 127+1"; do
	IFS='|' read -r chunk owrites swrites <<<"$spec"
	what="kernel store, chunk $chunk: exceptions lists exactly the chunks written"
	what+=", as many as dmsetup status"
	if ! kernel "$chunk" "$owrites" "$swrites"; then
		ktap_fail "$what" "setup failed${DM_ERR:+: $DM_ERR}"
		kernel_done >/dev/null 2>&1
		[[ $chunk == 8 ]] && ktap_fail "$short" "not run"
		continue
	fi
	rc=0
	"$DMSTREAM" exceptions "$KCOW" --origin "$KREAL" --json >"$W/k$chunk.json" \
		2>"$W/k$chunk.err" || rc=$?
	if [[ $rc -eq 0 ]] && dmst_py snapstore kernel "$W/k$chunk.json" --chunk "$chunk" \
		--chunks "$KWANT" --status "$KSTATUS" >"$W/k$chunk.out" 2>&1; then
		fz_show "$W/k$chunk.out"
		ktap_ok "$what"
	else
		[[ -s $W/k$chunk.out ]] && fz_show "$W/k$chunk.out"
		ktap_fail "$what" "exit $rc: $(head -c 300 "$W/k$chunk.err"); status: $KSTATUS"
	fi
	if [[ $chunk == 8 ]]; then
		# Chunk 1023 was written: an origin of 1023 chunks is too small.
		sh_setup dm_create fzc-short "0 $((1023 * 8)) zero"
		rc=0
		"$DMSTREAM" exceptions "$KCOW" --origin "$(dm_dev fzc-short)" >"$W/short.out" \
			2>&1 || rc=$?
		if [[ $rc -eq 3 ]] && grep -q 'beyond the origin' "$W/short.out"; then
			ktap_ok "$short"
		else
			ktap_fail "$short" "exit $rc: $(head -c 300 "$W/short.out")"
		fi
		dm_remove fzc-short
	fi
	kernel_done
done

# An overflowed snapshot: the kernel marks its store invalid.
what="kernel store of an overflowed snapshot is refused (exit 3)"
if make_loop -v OREAL 4 oreal && make_loop -v OCOW 1 ocow &&
	dm_create fzc-origin "0 8192 snapshot-origin $OREAL" &&
	dm_create fzc-snap "0 8192 snapshot $OREAL $OCOW P 8"; then
	# 2 MiB through the origin: 512 exceptions, more than a 1 MiB COW holds.
	write "$(dm_dev fzc-origin)" 8 0 512 2>/dev/null
	dm_remove fzc-snap
	dm_remove fzc-origin
	rc=0
	"$DMSTREAM" exceptions "$OCOW" >"$W/over.out" 2>&1 || rc=$?
	if [[ $rc -eq 3 ]] && grep -q 'invalid' "$W/over.out"; then
		ktap_ok "$what"
	else
		ktap_fail "$what" "exit $rc: $(head -c 300 "$W/over.out")"
	fi
else
	ktap_fail "$what" "setup failed${DM_ERR:+: $DM_ERR}"
fi
ktap_finish
