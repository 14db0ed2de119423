#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot integration: tools/dmstream-generator turns /etc/dmstreamtab
# (Documentation/dmstreamtab.5.rst) into systemd units. It is run here
# against tab files into temporary output directories, as systemd would (three
# directory arguments): the units' content, the escaping of odd names and
# paths, noauto/nofail/timeout=, bad lines reported with their number and
# skipped while the good ones still give units, a missing, empty or
# non-regular tab giving nothing; `systemd-analyze verify` on the units when
# it is there. Last, the ExecStart line of a generated unit is run for real
# against a stream that was removed, once `dmstream assemble` exists.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/stream_helpers.sh"

GEN=$REPO_ROOT/tools/dmstream-generator
DMSTREAM=${DMSTREAM:-$REPO_ROOT/tools/dmstream}

require_cmd timeout mkfifo
[[ -x $GEN ]] || ktap_skip_all "no $GEN"
ktap_plan 14

# quiet CMD...: CMD with its stdout dropped (not KTAP).
quiet()
{
	"$@" >/dev/null
}

# gen TAB: run the generator on TAB into a fresh $O; GEN_RC, GEN_ERR.
gen()
{
	O=$(mktemp -d "$TEST_TMP/gen.XXXXXX")
	mkdir -p "$O/normal" "$O/early" "$O/late"
	GEN_ERR=$(DMSTREAMTAB=$1 DMSTREAM_BIN=${GEN_BIN:-/usr/sbin/dmstream} \
		timeout 120 "$GEN" "$O/normal" "$O/early" "$O/late" 2>&1)
	GEN_RC=$?
}

# nfiles: files and links the last gen wrote (all three directories).
nfiles()
{
	find "$O" -mindepth 2 \( -type f -o -type l \) | wc -l
}

# has UNIT LINE: the generated UNIT holds LINE (whole line).
has()
{
	grep -qxF -- "$2" "$O/normal/$1"
}

tab=$TEST_TMP/dmstreamtab

# 1-2: nothing to do.
gen "$TEST_TMP/no-such-tab"
if [[ $GEN_RC -eq 0 && $(nfiles) -eq 0 && -z $GEN_ERR ]]; then
	ktap_ok "missing tab: no units, exit 0, silent"
else
	ktap_fail "missing tab: no units, exit 0, silent" "rc $GEN_RC, $(nfiles) files: $GEN_ERR"
fi
printf '# nothing here\n\n   \t\n  # indented comment\n' >"$tab"
gen "$tab"
if [[ $GEN_RC -eq 0 && $(nfiles) -eq 0 && -z $GEN_ERR ]]; then
	ktap_ok "comments and blank lines only: no units"
else
	ktap_fail "comments and blank lines only: no units" "rc $GEN_RC, $(nfiles) files: $GEN_ERR"
fi

# 3-7: good lines.
cat >"$tab" <<'EOF'
# NAME	METADATA-DEVICE	OPTIONS
vol1	/dev/disk/by-id/virtio-dmst-meta
my-vol	/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part2	nofail,timeout=30
spaced	/dev/disk/by-path/odd\040path-x	noauto
gpt	PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4	defaults
EOF
cp "$tab" "$TEST_TMP/good.tab"
gen "$tab"
u1='dmstream-assemble@vol1.service'
u2='dmstream-assemble@my\x2dvol.service'
u3='dmstream-assemble@spaced.service'
u4='dmstream-assemble@gpt.service'
d1='dev-disk-by\x2did-virtio\x2ddmst\x2dmeta.device'
if [[ $GEN_RC -eq 0 && -z $GEN_ERR ]] &&
   has "$u1" 'ExecStart="/usr/sbin/dmstream" assemble --name "vol1" --timeout 90 "/dev/disk/by-id/virtio-dmst-meta"' &&
   has "$u1" "BindsTo=$d1" && has "$u1" "Type=oneshot" &&
   has "$u1" "RemainAfterExit=yes" && has "$u1" "DefaultDependencies=no" &&
   has "$u1" "After=$d1 systemd-udevd-kernel.socket systemd-modules-load.service" &&
   has "$u1" "Before=dmstream.target" &&
   [[ -L $O/normal/dmstream.target.requires/$u1 &&
      $(readlink "$O/normal/dmstream.target.requires/$u1") == "../$u1" ]] &&
   has dmstream.target "Before=local-fs-pre.target" &&
   [[ -L $O/normal/sysinit.target.wants/dmstream.target ]] &&
   [[ -z $(find "$O/early" "$O/late" -mindepth 1) ]]; then
	ktap_ok "plain line: unit, device binding, required by dmstream.target"
else
	ktap_fail "plain line: unit, device binding, required by dmstream.target" "rc $GEN_RC: $GEN_ERR"
	ktap_diag "$(cat "$O/normal/$u1" 2>&1)"
fi
if [[ -f $O/normal/$u2 ]] &&
   has "$u2" 'ExecStart="/usr/sbin/dmstream" assemble --name "my-vol" --timeout 30 "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part2"' &&
   has "$u2" 'BindsTo=dev-disk-by\x2did-wwn\x2d0x5000c500a1b2c3d4\x2dpart2.device'; then
	ktap_ok "name with a dash: unit $u2"
else
	ktap_fail "name with a dash: unit $u2" "$(ls "$O/normal")"
fi
if has "$u3" 'ExecStart="/usr/sbin/dmstream" assemble --name "spaced" --timeout 90 "/dev/disk/by-path/odd path-x"' &&
   has "$u3" 'BindsTo=dev-disk-by\x2dpath-odd\x20path\x2dx.device'; then
	ktap_ok "path with an escaped space (\\040): quoted, device unit escaped"
else
	ktap_fail "path with an escaped space (\\040): quoted, device unit escaped"
	ktap_diag "$(cat "$O/normal/$u3" 2>&1)"
fi
if [[ -f $O/normal/$u3 ]] && [[ -z $(find "$O/normal" -name "$u3" -type l) ]] &&
   [[ -L $O/normal/dmstream.target.wants/$u2 && ! -e $O/normal/dmstream.target.requires/$u2 ]] &&
   ! has "$u2" "Before=dmstream.target" &&
   has "$u2" "TimeoutStartSec=90" &&
   grep -qx 'JobRunningTimeoutSec=30' "$O/normal/dev-disk-by\\x2did-wwn\\x2d0x5000c500a1b2c3d4\\x2dpart2.device.d/50-dmstream-my\\x2dvol.conf"; then
	ktap_ok "noauto: not linked; nofail: wanted, not ordered; timeout=30"
else
	ktap_fail "noauto: not linked; nofail: wanted, not ordered; timeout=30"
	ktap_diag "$(cd "$O/normal" && find . | sort)"
fi
if has "$u4" 'ExecStart="/usr/sbin/dmstream" assemble --name "gpt" --timeout 90 "/dev/disk/by-partuuid/0fc63daf-8483-4772-8e79-3d69d8477de4"'; then
	ktap_ok "PARTUUID= becomes /dev/disk/by-partuuid/<lower case>"
else
	ktap_fail "PARTUUID= becomes /dev/disk/by-partuuid/<lower case>"
	ktap_diag "$(cat "$O/normal/$u4" 2>&1)"
fi

# 8: the generator escapes names as systemd-escape does (it does not run it).
if command -v systemd-escape >/dev/null; then
	printf '%s\n' '.hid /dev/disk/by-label/caf\303\251' 'a+b=c@d#e:f_g.h-i /dev/mapper/x.y-z' >"$tab"
	gen "$tab"
	bad=
	for n in .hid 'a+b=c@d#e:f_g.h-i'; do
		[[ -f $O/normal/dmstream-assemble@$(systemd-escape -- "$n").service ]] ||
			bad+=" unit of $n;"
	done
	for p in "/dev/disk/by-label/caf"$'\303\251' /dev/mapper/x.y-z; do
		grep -rqxF "BindsTo=$(systemd-escape --path --suffix=device -- "$p")" "$O/normal" ||
			bad+=" device unit of $p;"
	done
	if [[ -z $bad && -z $GEN_ERR ]]; then
		ktap_ok "unit names escaped as systemd-escape does"
	else
		ktap_fail "unit names escaped as systemd-escape does" "$bad $GEN_ERR"
		ktap_diag "$(cd "$O/normal" && find . | sort)"
	fi
else
	ktap_skip "unit names escaped as systemd-escape does" "no systemd-escape"
fi

# 9: systemd's own check of the units.
if command -v systemd-analyze >/dev/null && [[ -x $DMSTREAM ]]; then
	GEN_BIN=$DMSTREAM gen "$TEST_TMP/good.tab"
	v=$(cd "$O/normal" && SYSTEMD_UNIT_PATH=$O/normal: timeout 60 \
		systemd-analyze verify --man=no --generators=no ./*.service dmstream.target 2>&1)
	rc=$?
	if [[ $rc -eq 0 ]]; then
		ktap_ok "systemd-analyze verify: no complaint"
	else
		ktap_fail "systemd-analyze verify: no complaint" "exit $rc: $v"
	fi
else
	ktap_skip "systemd-analyze verify" "no systemd-analyze or tools/dmstream not built"
fi

# 10-11: bad lines reported with their number and skipped, the rest kept.
long=$(printf 'x%.0s' {1..5000})
{
	echo "good1 /dev/sda1"
	echo "bad/name /dev/sdb1"
	echo "rel sdb1"
	echo "dots /dev/../etc/passwd"
	echo "good2 /dev/sdc1 nofail"
	echo "unk /dev/sdd1 foo"
	echo "zero /dev/sdd1 timeout=0"
	echo "many /dev/sdd1 nofail extra"
	echo "good1 /dev/sde1"
	echo "pct%n /dev/sdf1"
	printf 'ctl /dev/sd\001g1\n'
	echo "$long /dev/sdh1"
	echo "-dash /dev/sdi1"
	echo "trail /dev/sdj1 nofail,"
	echo "bslash /dev/x\\y"
	printf 'good3 /dev/sdk1'	# no newline at the end
} >"$tab"
gen "$tab"
want=$(printf '%s\n' 2 3 4 6 7 8 9 10 11 12 13 14 15)
got=$(sed -n "s|^dmstream-generator: $tab:\\([0-9]*\\): .*; line skipped$|\\1|p" <<<"$GEN_ERR")
if [[ $GEN_RC -eq 0 && $got == "$want" ]] &&
   grep -q "$tab:9: stream 'good1' already defined on line 1" <<<"$GEN_ERR"; then
	ktap_ok "13 bad lines reported with their line numbers, exit 0"
else
	ktap_fail "13 bad lines reported with their line numbers, exit 0" "rc $GEN_RC"
	ktap_diag "$GEN_ERR"
fi
units=$(find "$O/normal" -maxdepth 1 -name '*.service' -printf '%f ' | tr ' ' '\n' |
	sort | tr '\n' ' ')
if [[ $units == 'dmstream-assemble@good1.service dmstream-assemble@good2.service dmstream-assemble@good3.service ' ]] &&
   has dmstream-assemble@good1.service 'ExecStart="/usr/sbin/dmstream" assemble --name "good1" --timeout 90 "/dev/sda1"'; then
	ktap_ok "the good lines around them still give their units"
else
	ktap_fail "the good lines around them still give their units" "units: $units"
fi

# 12: a tab that is not a regular file is not read (a FIFO would hang).
rm -f "$tab"
mkfifo "$tab"
gen "$tab"
if [[ $GEN_RC -eq 0 && $(nfiles) -eq 0 && $GEN_ERR == *"not a regular file"* ]]; then
	ktap_ok "a FIFO as the tab: not read, reported"
else
	ktap_fail "a FIFO as the tab: not read, reported" "rc $GEN_RC: $GEN_ERR"
fi
rm -f "$tab"

# 13: bad usage.
e=$("$GEN" 2>&1)
rc=$?
if [[ $rc -eq 2 && $e == *Usage* ]]; then
	ktap_ok "no output directory: usage, exit 2"
else
	ktap_fail "no output directory: usage, exit 2" "exit $rc"
fi

# 14: the generated ExecStart brings a removed stream back.
assemble_run()
{
	local line words meta out

	if [[ ! -x $DMSTREAM ]] || ! "$DMSTREAM" --help 2>&1 | grep -qw assemble; then
		ktap_skip "ExecStart of a generated unit assembles the stream" \
			"dmstream has no assemble command yet"
		return
	fi
	sh_require_stream
	sh_stream_loops 8 1
	# Origin and destination as dm devices with uuids, which assemble can
	# find again.
	sh_setup dm_create bt01-orig "0 $(sectors "$ORIG") linear $ORIG 0"
	sh_setup dm_create bt01-dest "0 $(sectors "$DEST") linear $DEST 0"
	dmsetup rename bt01-orig --setuuid "DMST-BT01-ORIG-$$" >/dev/null 2>&1
	dmsetup rename bt01-dest --setuuid "DMST-BT01-DEST-$$" >/dev/null 2>&1
	sh_setup quiet "$DMSTREAM" create bt01 --origin "$(dm_dev bt01-orig)" \
		--dest "$(dm_dev bt01-dest)" --meta "$META" --rate 1M/s
	cleanup_add "dmsetup remove bt01 >/dev/null 2>&1"
	sh_setup dmsetup remove bt01
	echo "bt01 $META timeout=10" >"$tab"
	GEN_BIN=$DMSTREAM gen "$tab"
	line=$(sed -n 's/^ExecStart=//p' "$O/normal/dmstream-assemble@bt01.service")
	# The quoting is systemd's; for these words (no % $ \) the shell's is
	# the same.
	eval "words=($line)"
	meta=${words[-1]}
	if [[ $meta == "$META" ]] && out=$(timeout 60 "${words[@]}" 2>&1) &&
	   dm_exists bt01 && [[ $(sh_state bt01) == streaming ]]; then
		ktap_ok "ExecStart of a generated unit assembles the stream"
	else
		ktap_fail "ExecStart of a generated unit assembles the stream" "$line"
	fi
	ktap_diag "$out"
}
assemble_run

ktap_finish
