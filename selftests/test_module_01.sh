#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The module: registers target "stream" >= 1.0.0, rejects a wrong argument
# count with a readable ti->error, keeps no reference after a failed
# constructor, unloads and loads again. Leaves the module loaded.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

require_cmd dmsetup insmod rmmod losetup
require_module dm-mod dm-stream

ktap_plan 9

# Re-load the module even if this script dies between rmmod and insmod:
# later tests need it.
cleanup_add "[ -d /sys/module/dm_stream ] || insmod '$DMSTREAM_KO'"

target_version()
{
	dmsetup targets | awk '$1 == "stream" { sub(/^v/, "", $2); print $2 }'
}

version=$(target_version)
if [[ -z $version ]]; then
	ktap_fail "target stream registered, version >= 1.0.0" \
		"dmsetup targets lists no stream target"
elif [[ $(printf '1.0.0\n%s\n' "$version" | sort -V | head -n 1) != 1.0.0 ]]; then
	ktap_fail "target stream registered, version >= 1.0.0" "version $version"
else
	ktap_ok "target stream registered, version >= 1.0.0"
	ktap_diag "stream target version $version"
fi

meta=$(make_loop 8 meta)
dest=$(make_loop 64 dest)
origin=$(make_loop 64 origin)
len=$(sectors "$origin")

sh_ctr_fail "constructor rejects 0 arguments" \
	"0 $len stream" "Invalid argument count"
sh_ctr_fail "constructor rejects 1 argument" \
	"0 $len stream $meta" "Invalid argument count"
sh_ctr_fail "constructor rejects 3 arguments" \
	"0 $len stream $meta $dest $origin" "Invalid argument count"

# dmsetup reports the kernel's refusal as the failed table load.
if grep -q "reload ioctl on .* failed: Invalid argument" <<<"$DM_ERR"; then
	ktap_ok "dmsetup reports EINVAL for a rejected table"
else
	ktap_fail "dmsetup reports EINVAL for a rejected table" "dmsetup said: $DM_ERR"
fi

leftover=$(dmsetup ls | grep -c '^dmst-ctrfail-')
if [[ $leftover -eq 0 ]]; then
	ktap_ok "no device left behind by failed constructors"
else
	ktap_fail "no device left behind by failed constructors" "$(dmsetup ls)"
fi

refcnt=$(cat /sys/module/dm_stream/refcnt 2>/dev/null)
if [[ $refcnt == 0 ]]; then
	ktap_ok "failed constructors drop their module reference"
else
	ktap_fail "failed constructors drop their module reference" \
		"refcnt is '$refcnt'"
fi

if err=$(rmmod dm_stream 2>&1) && [[ -z $(target_version) ]]; then
	ktap_ok "rmmod dm_stream unregisters the target"
else
	ktap_fail "rmmod dm_stream unregisters the target" \
		"${err:-stream still listed by dmsetup targets}"
fi

if err=$(insmod "$DMSTREAM_KO" 2>&1) && [[ $(target_version) == "$version" ]]; then
	ktap_ok "insmod again registers stream $version"
else
	ktap_fail "insmod again registers stream $version" \
		"${err:-dmsetup targets: $(dmsetup targets | tr '\n' ' ')}"
fi

ktap_finish
