# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers shared by the dmstream tool tests (test_tool_*.sh). Source after
# common.sh; $DMSTREAM is the tool under test: tools/dmstream, or the binary
# named by DMSTREAM in the environment (to run the tests against another
# build, e.g. selftests/run-guest -e DMSTREAM=<path> -- selftests/run_tests.sh
# test_tool_01; the path must be visible in the guest, not under /tmp).

DMSTREAM=${DMSTREAM:-$REPO_ROOT/tools/dmstream}
[[ -x $DMSTREAM ]] || ktap_skip_all "tools/dmstream is not built (make)"

# tt_run ARGS...: dmstream ARGS; TT_RC, TT_OUT (stdout), TT_ERR (stderr).
# With TT_TIMEOUT=SEC set, under timeout(1): a hang exits 124.
tt_run()
{
	local t=()

	[[ -n ${TT_TIMEOUT:-} ]] && t=(timeout -k 5 "$TT_TIMEOUT")
	TT_OUT=$("${t[@]}" "$DMSTREAM" "$@" 2>"$TEST_TMP/.tt.err")
	TT_RC=$?
	TT_ERR=$(cat "$TEST_TMP/.tt.err")
}

# tt_expect DESC RC REGEX ARGS...: one result; dmstream ARGS exits RC and,
# when REGEX is not empty, its stdout+stderr match REGEX (extended).
tt_expect()
{
	local desc=$1 rc=$2 re=$3

	shift 3
	tt_run "$@"
	if [[ $TT_RC -ne $rc ]]; then
		ktap_fail "$desc" "dmstream $* exited $TT_RC, expected $rc"
		ktap_diag "stdout: $TT_OUT"
		ktap_diag "stderr: $TT_ERR"
		return 1
	fi
	if [[ -n $re ]] && ! grep -Eq -- "$re" <<<"$TT_OUT"$'\n'"$TT_ERR"; then
		ktap_fail "$desc" "output of dmstream $* lacks /$re/"
		ktap_diag "stdout: $TT_OUT"
		ktap_diag "stderr: $TT_ERR"
		return 1
	fi
	ktap_ok "$desc"
}
