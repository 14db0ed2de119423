#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_suspend_01: suspend/resume and table reloads while streaming and while
# fio writes (with crc32c verification) run on the target.
#
# Spec: suspend stops copies and commits; resume continues. The table line
# is reloadable as is. Copied count never decreases. Status and message never
# wait for I/O (they work while suspended).
#
# The origin is a dm-delay device (no delay at first). While fio runs: three
# suspend/resume cycles, a reload with the very same table, another cycle,
# all at rate 512 KiB/s (96 s for the 48 MiB) so that streaming is still under way. Then the
# origin's reads are delayed by 1 s and the table reloaded with rate 65536
# and max_inflight 8 so that copies are in flight, and the target is
# suspended in the middle of them. After fio: remove and recreate mid-stream.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd fio
sh_start 15 dm-delay

RS=128
MB=48
SECT=$((MB * 2048))
NAME=sbsusp
DM=$(dm_dev $NAME)
FIO_OFF=8		# MiB: fio writes [8, 24) MiB
FIO_MB=16

sh_stream_loops $MB 4
sh_fill_byte "$DEST" 132	# 0x5a
ORIG_MD5=$(sh_md5 "$ORIG")
ONAME=${NAME}-orig

WORK=$TEST_TMP

fio_job() {
	# $1 = filename, rest = extra args
	local f=$1
	shift
	fio --name=v --filename="$f" --rw=randwrite --bs=4k \
		--offset=${FIO_OFF}M --size=${FIO_MB}M --ioengine=psync --direct=1 \
		--verify=crc32c --verify_fatal=1 --randrepeat=1 --randseed=4242 \
		--rate_iops=,300 \
		--group_reporting "$@"
}

# shellcheck disable=SC2317 # called by ktap_check
create_all()
{
	dm_create "$ONAME" "0 $SECT delay $ORIG 0 0" &&
		dm_create "$NAME" "0 $SECT stream $META $DEST $(dm_dev "$ONAME") $RS 2 rate 512"
}
ktap_check "create streaming target (rate 512) over a dm-delay origin" create_all ||
	ktap_bail "setup failed: $DM_ERR"

# Status sampler: copied/copying/state every 0.2 s until $WORK/stop exists.
(
	while [ ! -e "$WORK/stop" ]; do
		echo "$(sh_now_ms) $(dm_status $NAME 2>/dev/null)" >>"$WORK/samples"
		sleep 0.2
	done
) &
SAMPLER=$!

# fio writes + verify in the background.
fio_job "$DM" --do_verify=1 >"$WORK/fio1.log" 2>&1 &
FIO=$!
sleep 1

susp_ok=1	# copying == 0 while suspended, every time
still_ok=1	# copied unchanged while suspended
res_ok=1	# suspend/resume commands succeeded
fio_during=0
suspend_check() {
	local before c1 c2 cp st
	before=$(sh_copying $NAME)
	kill -0 $FIO 2>/dev/null && fio_during=$((fio_during + 1))
	dmsetup suspend $NAME || { res_ok=0; return; }
	cp=$(sh_copying $NAME)
	c1=$(sh_copied $NAME)
	st=$(dm_status $NAME)
	sleep 1.2
	c2=$(sh_copied $NAME)
	ktap_diag "suspend: copying before=$before while suspended=$cp, copied $c1 -> $c2 (1.2 s); status: $st"
	[ "$cp" = 0 ] || susp_ok=0
	[ "$c1" = "$c2" ] || still_ok=0
	dmsetup resume $NAME || res_ok=0
}

for i in 1 2 3; do
	sleep 0.7
	suspend_check
done

# Reload with the very same table (as dmsetup table prints it).
t=$(sh_table $NAME)
ktap_diag "table: $t"
kill -0 $FIO 2>/dev/null && fio_during=$((fio_during + 1))
c0=$(sh_copied $NAME)
if dm_reload $NAME "$t"; then
	c1=$(sh_copied $NAME)
	opt=$(sh_opt_args $NAME)
	if [ "$(sh_table $NAME)" = "$t" ] && [ "$opt" = "2 rate 512" ] &&
	   [ "$c1" -ge "$c0" ]; then
		ktap_ok "reload with the same table"
	else
		ktap_fail "reload with the same table" \
			"table now '$(sh_table $NAME)', opt args '$opt', copied $c0 -> $c1"
	fi
else
	ktap_fail "reload with the same table" "load/suspend/resume failed"
fi

sleep 0.7
suspend_check

# Copies in flight: delay the origin's reads by 1 s, lift the rate and
# allow 8 regions in flight with a table reload; then hold the origin's
# reads at a gate and suspend in the middle of the copies; the gate opens
# (to the 1 s read delay, which keeps the rest of the streaming slow) once
# the suspend has begun.
sh_setup dm_reload "$ONAME" "0 $SECT delay $ORIG 0 1000"
t2=${t/%" 2 rate 512"/" 4 rate 65536 max_inflight 8"}
kill -0 $FIO 2>/dev/null && fio_during=$((fio_during + 1))
c0=$(sh_copied $NAME)
if [ "$t2" != "$t" ] && dm_reload $NAME "$t2"; then
	c1=$(sh_copied $NAME)
	opt=$(sh_opt_args $NAME)
	if [ "${opt%% *}" = 4 ] && sh_has_pair "$opt" rate 65536 &&
	   sh_has_pair "$opt" max_inflight 8 && [ "$c1" -ge "$c0" ]; then
		ktap_ok "reload changing rate 512 -> 65536, max_inflight 8"
	else
		ktap_fail "reload changing rate 512 -> 65536, max_inflight 8" \
			"opt args '$opt', copied $c0 -> $c1"
	fi
else
	ktap_fail "reload changing rate 512 -> 65536, max_inflight 8" "table edit or reload failed"
fi

# (The gate closes after the stream's reload: that reload's suspend waits for
# fio's writes, which may wait for copies.)
sh_setup dm_reload "$ONAME" "$(sh_gate_table "$ORIG" r)"
if [ "$(sh_copied $NAME)" = "$(sh_total $NAME)" ]; then
	dm_reload "$ONAME" "0 $SECT delay $ORIG 0 1000"
	ktap_skip "suspend with copies in flight: none copying while suspended" \
		"every region was copied before (a slow host): no copy could be in flight"
	suspend_ok=skip
elif ! sh_gate_wait "$ONAME" r 1; then
	dm_reload "$ONAME" "0 $SECT delay $ORIG 0 1000"
	ktap_fail "suspend with copies in flight: none copying while suspended" \
		"no copy reached the origin"
	suspend_ok=skip
fi
inflight=$(sh_copying $NAME)
c0=$(sh_copied $NAME)
t0=$(sh_now_ms)
if [ "${suspend_ok:-}" = skip ]; then
	:
elif dmsetup suspend $NAME & spid=$!
	sh_wait_stack $spid dm_suspend
	dm_reload "$ONAME" "0 $SECT delay $ORIG 0 1000"
	wait $spid; then
	t1=$(sh_now_ms)
	cp=$(sh_copying $NAME)
	c1=$(sh_copied $NAME)
	sleep 1.2
	c2=$(sh_copied $NAME)
	dmsetup resume $NAME || res_ok=0
	ktap_diag "suspend with $inflight copies in flight took $((t1 - t0)) ms; while suspended: copying $cp, copied $c1 -> $c2 (1.2 s) of $(sh_total $NAME)"
	if [ "$inflight" -gt 0 ] && [ "$cp" = 0 ] && [ "$c1" = "$c2" ] && [ "$c1" -ge "$c0" ]; then
		ktap_ok "suspend with copies in flight: none copying while suspended"
	else
		ktap_fail "suspend with copies in flight: none copying while suspended" \
			"in flight before: $inflight, while suspended: copying $cp, copied $c0 -> $c1 -> $c2"
	fi
else
	res_ok=0
	ktap_fail "suspend with copies in flight: none copying while suspended" "suspend failed"
fi
ktap_diag "fio was running during $fio_during of 6 operations"

ktap_check "suspend/resume commands succeed" test $res_ok = 1
ktap_check "no regions copying while suspended" test $susp_ok = 1
ktap_check "copied count frozen while suspended" test $still_ok = 1

# fio write+verify pass.
if sh_wait_for 120 sh_not_running $FIO; then
	wait $FIO
	rc=$?
else
	kill $FIO
	rc=timeout
fi
if [ "$rc" = 0 ] && ! grep -qi "verify.*fail\|bad magic\|crc32c.*wanted" "$WORK/fio1.log"; then
	ktap_ok "fio randwrite + crc32c verify during suspend/reload"
else
	sed 's/^/# fio: /' "$WORK/fio1.log" | tail -n 30
	ktap_fail "fio randwrite + crc32c verify during suspend/reload" "fio rc=$rc"
fi

# Remove and recreate in the middle of streaming (still slow: origin delay
# 1 s, 8 in flight): the removal's suspend commits, so the new instance
# starts with every region the old one had copied.
t3=$(sh_table $NAME)
c1=x c2=y
if dmsetup suspend $NAME; then
	c1=$(sh_copied $NAME)
	if dm_remove $NAME && dm_create $NAME "$t3"; then
		c2=$(sh_copied $NAME)
	fi
fi
ktap_diag "remove while suspended at $c1 copied, recreate: $c2 copied (of $(sh_total $NAME))"
if [ "$c1" = "$(sh_total $NAME)" ]; then
	ktap_skip "remove + recreate mid-stream keeps the copied count" \
		"everything was copied before the removal"
elif [ "$c2" -ge "$c1" ] 2>/dev/null; then
	ktap_ok "remove + recreate mid-stream keeps the copied count"
else
	ktap_fail "remove + recreate mid-stream keeps the copied count" \
		"copied $c1 before removal, $c2 after recreate $DM_ERR"
fi

dm_message $NAME max_inflight 64 || ktap_diag "message max_inflight 64 failed"
sh_setup dm_reload "$ONAME" "0 $SECT delay $ORIG 0 0"

# Streaming completes.
if sh_wait_state $NAME complete 90; then
	ktap_ok "streaming completes ($(sh_field $NAME 4), at $SECONDS s)"
else
	ktap_fail "streaming completes" "status: $(dm_status $NAME)"
fi
touch "$WORK/stop"
wait $SAMPLER

# Copied count never decreased.
bad=$(awk '{ split($5, a, "/"); if (a[1] == "") next;
	if (p != "" && a[1] + 0 < p + 0) { print "at " $1 ": " p " -> " a[1]; exit }
	p = a[1] }' "$WORK/samples")
nsamp=$(wc -l <"$WORK/samples")
if [ -z "$bad" ] && [ "$nsamp" -gt 10 ]; then
	ktap_ok "copied count never decreases ($nsamp samples)"
else
	ktap_fail "copied count never decreases" "${bad:-only $nsamp samples}"
fi

# Verify-only pass through the completed target.
if fio_job "$DM" --verify_only >"$WORK/fio2.log" 2>&1; then
	ktap_ok "fio verify-only pass after completion"
else
	sed 's/^/# fio: /' "$WORK/fio2.log" | tail -n 30
	ktap_fail "fio verify-only pass after completion"
fi

dm_remove $NAME
dm_remove $ONAME

# The destination alone: fio's range verifies, everything else is the
# origin's data; the origin was never written.
if fio_job "$DEST" --verify_only >"$WORK/fio3.log" 2>&1; then
	ktap_ok "destination: fio verify-only pass"
else
	sed 's/^/# fio: /' "$WORK/fio3.log" | tail -n 30
	ktap_fail "destination: fio verify-only pass"
fi
lo=$((FIO_OFF * 1048576))
hi=$(((FIO_OFF + FIO_MB) * 1048576))
end=$((MB * 1048576))
if [ "$(sh_md5 "$DEST" $lo)" = "$(sh_md5 "$ORIG" $lo)" ] &&
   [ "$(sh_md5 "$DEST" $((end - hi)) $hi)" = "$(sh_md5 "$ORIG" $((end - hi)) $hi)" ]; then
	ktap_ok "destination outside fio's range equals the origin"
else
	ktap_fail "destination outside fio's range equals the origin"
fi
if [ "$(sh_md5 "$ORIG" $end)" = "$ORIG_MD5" ]; then
	ktap_ok "origin untouched"
else
	ktap_fail "origin untouched"
fi
ktap_finish
