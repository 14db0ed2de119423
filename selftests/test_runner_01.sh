#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The runner itself: run_tests.sh, pointed at selftests/fixtures/, must count
# a failing, a crashing, a hanging and a skipped script and a warning in the
# kernel log, exit non-zero, and clean up after the scripts it killed; on the
# passing fixture alone it must exit 0. The warning is a line written to
# /dev/kmsg by a fixture (not raised by the kernel); it is declared to this
# outer run through DMSTREAM_KLOG_ALLOW so only the inner run counts it.

. "$(dirname "$0")/common.sh"

require_cmd dmsetup losetup timeout
require_module dm-mod

ktap_plan 10

runner=$TEST_DIR/run_tests.sh
fixtures=$TEST_DIR/fixtures
nonce="nonce $$-$RANDOM"
export DMSTREAM_FIXTURE_NONCE=$nonce
# The outer runner must not count the injected line; the inner one must.
[[ -n ${DMSTREAM_KLOG_ALLOW:-} ]] && echo "$nonce" >>"$DMSTREAM_KLOG_ALLOW"

kmsg "dm-stream selftest: $TEST_NAME: inner run"
rc=0
"$runner" --dir "$fixtures" --no-load --out "$TEST_TMP/out" \
	>"$TEST_TMP/inner.log" 2>&1 || rc=$?
inner=$(cat "$TEST_TMP/inner.log")
inner_dmesg=$(dmesg_since_mark)

has()
{
	grep -qE -- "$1" <<<"$inner"
}

if [[ $rc -ne 0 ]]; then
	ktap_ok "runner exits non-zero when tests fail"
else
	ktap_fail "runner exits non-zero when tests fail" "exit status 0"
fi

if has '^not ok [0-9]+ test_fixture_fail( |$)' &&
   has '^    not ok 2 fixture fails on purpose$'; then
	ktap_ok "failing subtest reported as not ok"
else
	ktap_fail "failing subtest reported as not ok"
fi

if has '^not ok [0-9]+ test_fixture_crash( |$)' &&
   has 'runner: test_fixture_crash exited with status 3'; then
	ktap_ok "script exiting non-zero counted as a failure"
else
	ktap_fail "script exiting non-zero counted as a failure"
fi

if has '^not ok [0-9]+ test_fixture_hang( |$)' &&
   has 'runner: test_fixture_hang timed out after [0-9]+ s'; then
	ktap_ok "script past its timeout killed and counted as a failure"
else
	ktap_fail "script past its timeout killed and counted as a failure"
fi

if has '^not ok [0-9]+ kernel log$' &&
   has "^    # test_fixture_warn: .*WARNING: fixture line .*\\($nonce\\)"; then
	ktap_ok "WARNING in the kernel log counted as a failure"
else
	ktap_fail "WARNING in the kernel log counted as a failure"
fi

if has '^ok [0-9]+ test_fixture_skip # SKIP$'; then
	ktap_ok "skipped script reported as skipped"
else
	ktap_fail "skipped script reported as skipped"
fi

# pass: 2 (pass) + 1 (fail) + 1 (crash) + 1 (warn); fail: fail, crash, hang,
# kernel log; skip: skip.
expected="5 passed, 4 failed, 1 skipped"
last=$(tail -n 1 <<<"$inner")
if [[ $last == "$expected" ]]; then
	ktap_ok "summary line is '$expected'"
else
	ktap_fail "summary line is '$expected'" "got '$last'"
fi

leftover=
for d in dmst-fixture-fail dmst-fixture-hang; do
	dm_exists "$d" && leftover+=" $d"
done
leftover+=$(losetup -a | grep -o '/tmp/dmst-test_fixture_[^)]*' | sed 's/^/ /')
if [[ -z $leftover ]]; then
	ktap_ok "failed and killed scripts left no device behind"
else
	ktap_fail "failed and killed scripts left no device behind" "left:$leftover"
fi

if grep -q 'dm-stream selftest: end test_fixture_hang (exit 143)' <<<"$inner_dmesg"; then
	ktap_ok "killed script ran its cleanup"
else
	ktap_fail "killed script ran its cleanup" "no end marker with exit 143"
fi

if [[ $rc -ne 0 || $(tail -n 1 <<<"$inner") != "5 passed, 4 failed, 1 skipped" ]]; then
	ktap_diag "inner run (exit $rc):"
	ktap_diag "$inner"
fi

rc=0
"$runner" --dir "$fixtures" --no-load --out "$TEST_TMP/out" test_fixture_pass \
	>"$TEST_TMP/pass.log" 2>&1 || rc=$?
last=$(tail -n 1 "$TEST_TMP/pass.log")
if [[ $rc -eq 0 && $last == "3 passed, 0 failed" ]]; then
	ktap_ok "passing run exits 0 with '3 passed, 0 failed'"
else
	ktap_fail "passing run exits 0 with '3 passed, 0 failed'" \
		"exit $rc, last line '$last'"
	ktap_diag "$(cat "$TEST_TMP/pass.log")"
fi

ktap_finish
