#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_dkms_01: the module as DKMS builds and installs it loads and streams.
#
# scripts/dkms-check.sh (on the host, before the guest boots) runs `dkms
# add`, `dkms build` and `dkms install` of this tree in private DKMS trees
# and leaves the result in ${DMSTREAM_CACHE:-/var/cache/dm-stream}/dkms/
# <release>/ (status, dm-stream.ko, mok.der). For the running kernel, this
# test checks that DKMS succeeded, that its module is for this kernel and
# signed with the key DKMS was given, then swaps it in for the tree's
# module (no stream device may exist), streams a small device to complete
# with its content checked, and puts the tree's module back.
#
# Skips when dkms-check.sh has not run for this kernel, or ran on other
# sources than this tree's (its source_sha256 differs). A failed DKMS build
# or install fails the test.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd dmsetup insmod rmmod modinfo cmp openssl

REL=$(uname -r)
DKMS_DIR=${DMSTREAM_CACHE:-/var/cache/dm-stream}/dkms/$REL
DKMS_KO=$DKMS_DIR/dm-stream.ko
STATUS=$DKMS_DIR/status

# status_get KEY: a value from dkms-check.sh's status file.
status_get()
{
	sed -n "s/^$1=//p" "$STATUS" | head -n 1
}

# same A B: A is not empty and equals B.
same()
{
	[[ -n $1 && $1 == "$2" ]]
}

target_version()
{
	dmsetup targets | awk '$1 == "stream" { sub(/^v/, "", $2); print $2 }'
}

[[ -f $STATUS ]] ||
	ktap_skip_all "no DKMS build for $REL: run scripts/dkms-check.sh on the host first"
src=$("$REPO_ROOT/scripts/dkms-check.sh" --source-hash) ||
	ktap_skip_all "cannot hash this tree's module sources"
[[ $(status_get source_sha256) == "$src" ]] ||
	ktap_skip_all "the DKMS build for $REL is of other sources ($(status_get tree), $(status_get date)): run scripts/dkms-check.sh"

sh_start 10

# Whatever happens, leave the tree's module loaded for the later tests.
cleanup_add "[ -f '$TEST_TMP/dkms-loaded' ] && rmmod dm_stream; [ -d /sys/module/dm_stream ] || insmod '$DMSTREAM_KO'"

if [[ $(status_get result) == ok && -f $DKMS_KO ]]; then
	ktap_ok "dkms add, build and install for $REL"
else
	ktap_fail "dkms add, build and install for $REL" \
		"$(status_get reason); $DKMS_DIR/dkms.log ends:
$(tail -n 15 "$DKMS_DIR/dkms.log" 2>/dev/null)"
	ktap_bail "DKMS built no module for $REL"
fi
VERSION=$(status_get version)

vermagic=$(modinfo -F vermagic "$DKMS_KO")
ktap_check "DKMS module's vermagic is $REL" same "${vermagic%% *}" "$REL"

# modinfo prints the serial as colon-separated hex bytes.
serial=$(status_get mok_serial | sed 's/../&:/g; s/:$//')
sig_key=$(modinfo -F sig_key "$DKMS_KO")
ktap_check "DKMS signed it with the key it was given (sig_key $serial)" \
	same "$sig_key" "$serial"

# Swap the modules: nothing may be using the tree's.
busy=$(dmsetup ls --target stream 2>/dev/null | grep -v '^No devices found')
[[ -z $busy ]] || ktap_skip_all "stream devices exist (left by another test): $busy"
if err=$(rmmod dm_stream 2>&1) && [[ -z $(target_version) ]]; then
	ktap_ok "rmmod the tree's module"
else
	ktap_bail "cannot unload the tree's module: ${err:-stream still registered}"
fi

if err=$(insmod "$DKMS_KO" 2>&1); then
	touch "$TEST_TMP/dkms-loaded"
	ktap_check "DKMS module registers stream $VERSION (dkms.conf's version)" \
		same "$(target_version)" "$VERSION"
else
	ktap_bail "insmod $DKMS_KO: $err"
fi

sh_stream_loops 8 1
ORIG_MD5=$(sh_md5 "$ORIG")
sh_setup dm_create dkms01 "0 $(sectors "$ORIG") stream $META $DEST $ORIG 128"
if sh_wait_state dkms01 complete 300; then
	ktap_ok "stream through the DKMS module reaches complete"
else
	ktap_fail "stream through the DKMS module reaches complete" \
		"after 300 s: $(dm_status dkms01)"
fi
ktap_check "destination equals the origin (cmp)" sh_cmp "$DEST" "$ORIG"
ktap_check "target reads equal the origin" \
	test "$(sh_md5 "$(dm_dev dkms01)")" = "$ORIG_MD5"

if dm_remove dkms01 && err=$(rmmod dm_stream 2>&1); then
	rm -f "$TEST_TMP/dkms-loaded"
	ktap_ok "remove the device, rmmod the DKMS module"
else
	ktap_fail "remove the device, rmmod the DKMS module" "${err:-$DM_ERR}"
fi

if [[ ! -f $TEST_TMP/dkms-loaded ]] && err=$(insmod "$DMSTREAM_KO" 2>&1) &&
   [[ -n $(target_version) ]]; then
	ktap_ok "the tree's module loads again"
else
	ktap_fail "the tree's module loads again" "${err:-DKMS module still loaded}"
fi

ktap_finish
