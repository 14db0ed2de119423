#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Copy errors: an origin with one unreadable region. Streaming copies every
# other region, gives the bad one up after bounded retries, counts exactly
# one error (a merged run is split, so its good regions still get copied),
# ends the pass in the state stalled with a dm event and stays usable: a
# write covering the bad region makes it copied, and `continue` then
# completes.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

sh_start 7

RS=128				# region size, sectors
BAD=37				# the unreadable region
sh_stream_loops 8 1
base=$ORIG dest=$DEST meta=$META
len=$(sectors "$base")
total=$((len / RS))

# The origin: linear over $base, with an error segment over region $BAD.
sh_setup dm_create origin "0 $((BAD * RS)) linear $base 0
$((BAD * RS)) $RS error
$(((BAD + 1) * RS)) $((len - (BAD + 1) * RS)) linear $base $(((BAD + 1) * RS))"

# Created paused: the event counter is read before the pass can stall.
sh_setup dm_create s "0 $len stream $meta $dest $(dm_dev origin) $RS 1 paused"
ev0=$(sh_event_nr s)
sh_setup dm_message s continue

# Wait for the pass to end: every good region copied, the bad one given up.
for ((i = 0; i < 60; i++)); do
	[ "$(sh_copy_errors s)" != 0 ] && [ "$(sh_copying s)" = 0 ] && break
	sleep 1
done
sleep 1
ktap_diag "status: $(dm_status s)"

if [ "$(sh_copy_errors s)" = 1 ]; then
	ktap_ok "exactly one region counted as a copy error"
else
	ktap_fail "exactly one region counted as a copy error" "copy errors $(sh_copy_errors s)"
fi
if [ "$(sh_copied s)" = $((total - 1)) ] && [ "$(sh_state s)" = stalled ]; then
	ktap_ok "every other region copied, state stalled"
else
	ktap_fail "every other region copied, state stalled" "$(dm_status s)"
fi
if [ "$(sh_event_nr s)" -gt "$ev0" ]; then
	ktap_ok "a dm event announced the stalled pass"
else
	ktap_fail "a dm event announced the stalled pass" "events $ev0 -> $(sh_event_nr s)"
fi

# A partial write to the bad region needs its copy: it fails, with EIO.
f=$(pattern_file 7 8)
if sh_write_at "$(dm_dev s)" "$f" $((BAD * RS + 8)) 2>/dev/null; then
	ktap_fail "partial write to the unreadable region fails"
else
	ktap_ok "partial write to the unreadable region fails"
fi

# A write covering the region needs no copy.
whole=$(pattern_file 8 $RS)
if sh_write_at "$(dm_dev s)" "$whole" $((BAD * RS)) 65536 &&
   [ "$(sh_copied s)" = "$total" ]; then
	ktap_ok "whole-region write over the unreadable region marks it copied"
else
	ktap_fail "whole-region write over the unreadable region marks it copied" "$(dm_status s)"
fi

dm_message s continue
if sh_wait_state s complete 30; then
	ktap_ok "continue after the error: complete"
else
	ktap_fail "continue after the error: complete" "$(dm_status s)"
fi

expected=$(sh_tmpfile)
sh_read "$base" >"$expected"
sh_patch_file "$expected" "$whole" $((BAD * RS))
ktap_check "destination holds the origin plus the write" sh_cmp "$dest" "$expected"

ktap_finish
