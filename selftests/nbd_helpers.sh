# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# nbd_helpers.sh - a network origin for the selftests: nbd-server on the
# guest's loopback serving a file, nbd-client attaching it as /dev/nbdN, and
# WAN shaping of the loopback with tc netem. Source after common.sh and
# stream_helpers.sh. Guest only: it brings lo up and shapes it.
#
#   nh_require                 skip the script (exit 4) unless nbd-server,
#                              nbd-client, ip, tc and the nbd and sch_netem
#                              modules are there; brings lo up. Call it
#                              before making devices: its cleanup (every
#                              nbd device disconnected, netem removed, the
#                              server killed, lo down again if it was down)
#                              then runs after the dm devices are removed
#   nh_server_start FILE       serve FILE read-only (export $NH_EXPORT on
#                              127.0.0.1:$NH_PORT), as a daemon with a pid
#                              file. Again after nh_server_kill: the same
#                              port, the same file
#   nh_server_kill             SIGKILL to the server and to its per-connection
#                              children (by their pids): the origin is gone,
#                              its clients see the connection drop at once
#   nh_free_dev                the first /dev/nbdN that is not connected and
#                              not held
#   nh_connect DEV [TIMEOUT_S] nbd-client (netlink) on DEV with a request
#                              timeout (default $NH_TIMEOUT); waits for DEV's
#                              size
#   nh_disconnect DEV          nbd-client -d DEV
#   nh_sectors_read DEV        sectors read so far by DEV (its sysfs stat)
#   nh_netem_on [DELAY [RATE]] netem on lo (default 10ms, 4mbit): every
#                              packet both ways is delayed and the link is
#                              bandwidth-limited
#   nh_netem_off               no qdisc on lo
#   nh_shim NAME DEV           a dm-linear device NAME over all of DEV, to
#                              be a stream's origin (see below)
#   nh_shim_swap NAME DEV      NAME maps DEV instead (load, suspend, resume)
#   nh_time_ms VAR CMD...      run CMD; VAR = its duration in ms; CMD's status
#
# What Debian 12's nbd (3.24, kernel 6.1, netlink mode) does when the server
# dies and comes back, seen in a guest (Dec 2026):
# - The server killed (the daemon and its per-connection child): the kernel
#   sees the socket close ("Receive control failed"); new requests fail at
#   once with EIO ("Dead connection, failed to find a fallback"); requests
#   that were in flight fail when their timeout (-t) expires. A hung server
#   (SIGSTOP) fails a request after -t seconds, later ones at once. Without
#   -t a request in flight on a dead connection is retried for ever.
# - /dev/nbdN stays "connected" to the dead socket while a dm table holds it
#   open: nbd-client on the same device fails ("nbd0 already in use"), also
#   after nbd-client -d; in ioctl mode (-L) a second nbd-client on it
#   succeeds but I/O still fails. -persist does not help: on 6.1 NBD_DO_IT
#   returns 0 when the connection drops and nbd-client 3.24 then exits.
# - What works: connect the restarted server on another device, swap the
#   table that holds the dead one (dmsetup load, suspend, resume: 0.8 s),
#   then nbd-client -d the dead one, which frees it (size 0, reusable).
#   The suspend waits for the requests stuck on the dead device, up to its
#   -t: nbd-client -d it first, which fails them at once.
# So the tests give a stream a dm-linear shim over /dev/nbdN as origin: the
# stream's table keeps its origin device while the shim is swapped to the
# new nbd device. (Reloading the stream's own table with the new device
# and the same metadata would do too, but replaces the target instance.)

NH_PORT=${NH_PORT:-10809}
NH_EXPORT=origin
NH_TIMEOUT=${NH_TIMEOUT:-10}
NH_DIR=$TEST_TMP/nbd
NH_LOG=$NH_DIR/nbd.log

nh_require()
{
	require_cmd nbd-server nbd-client ip tc pgrep blockdev
	require_module nbd sch_netem
	if ! { mkdir -p "$NH_DIR" && : >"$NH_DIR/devs"; }; then
		ktap_skip_all "cannot create $NH_DIR"
	fi
	cleanup_add "_nh_cleanup"
	if ! ip link show lo | grep -q '<[^>]*\bUP\b'; then
		ip link set lo up || ktap_skip_all "cannot bring the loopback up"
		touch "$NH_DIR/lo-was-down"
	fi
}

# At exit, after the dm devices over the nbd devices are gone.
_nh_cleanup()
{
	local dev

	while read -r dev; do
		nh_disconnect "$dev"
	done <"$NH_DIR/devs"
	[[ -e $NH_DIR/netem ]] && nh_netem_off
	nh_server_kill
	[[ -e $NH_DIR/lo-was-down ]] && ip link set lo down
	return 0
}

nh_server_start()
{
	local file=$1 i

	cat >"$NH_DIR/server.conf" <<EOF || return 1
[generic]
	listenaddr = 127.0.0.1
	port = $NH_PORT
[$NH_EXPORT]
	exportname = $file
	readonly = true
EOF
	rm -f "$NH_DIR/server.pid"
	nbd-server -C "$NH_DIR/server.conf" -p "$NH_DIR/server.pid" >>"$NH_LOG" 2>&1 ||
		return 1
	# The daemon writes its pid file once it listens.
	for ((i = 0; i < 100; i++)); do
		[[ -s $NH_DIR/server.pid ]] && return 0
		sleep 0.1
	done
	echo "nh_server_start: no pid file after 10 s" >>"$NH_LOG"
	return 1
}

# _nh_alive PID: PID runs (a zombie does not).
_nh_alive()
{
	local st

	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

nh_server_kill()
{
	local pid pids p i

	pid=$(cat "$NH_DIR/server.pid" 2>/dev/null) || return 0
	[[ -n $pid ]] || return 0
	mapfile -t pids < <(pgrep -P "$pid")
	kill -9 "$pid" "${pids[@]}" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		for p in "$pid" "${pids[@]}"; do
			_nh_alive "$p" && break
			p=
		done
		[[ -z $p ]] && break
		sleep 0.1
	done
	rm -f "$NH_DIR/server.pid"
}

nh_free_dev()
{
	local s n

	for s in /sys/block/nbd*; do
		n=${s##*/}
		[[ -e $s/pid || $(cat "$s/size" 2>/dev/null) != 0 || ! -b /dev/$n ]] && continue
		[[ -z $(ls -A "$s/holders" 2>/dev/null) ]] || continue
		echo "/dev/$n"
		return 0
	done
	return 1
}

nh_connect()
{
	local dev=$1 t=${2:-$NH_TIMEOUT} i sz

	echo "$dev" >>"$NH_DIR/devs"
	nbd-client -N "$NH_EXPORT" 127.0.0.1 "$NH_PORT" "$dev" -t "$t" >>"$NH_LOG" 2>&1 ||
		return 1
	for ((i = 0; i < 100; i++)); do
		sz=$(blockdev --getsz "$dev" 2>/dev/null)
		[[ -n $sz && $sz -gt 0 ]] && return 0
		sleep 0.1
	done
	echo "nh_connect: $dev has no size after 10 s" >>"$NH_LOG"
	return 1
}

nh_disconnect()
{
	nbd-client -d "$1" >>"$NH_LOG" 2>&1
}

nh_sectors_read()
{
	awk '{ print $3 }' "/sys/block/${1##*/}/stat"
}

nh_netem_on()
{
	touch "$NH_DIR/netem"
	tc qdisc replace dev lo root netem delay "${1:-10ms}" rate "${2:-4mbit}" \
		>>"$NH_LOG" 2>&1
}

nh_netem_off()
{
	tc qdisc del dev lo root >/dev/null 2>&1
	return 0
}

nh_shim()
{
	dm_create "$1" "0 $(sectors "$2") linear $2 0"
}

nh_shim_swap()
{
	dm_reload "$1" "0 $(sectors "$2") linear $2 0"
}

nh_time_ms()
{
	local var=$1 t0 rc

	shift
	t0=$(sh_now_ms)
	"$@"
	rc=$?
	printf -v "$var" '%s' $(($(sh_now_ms) - t0))
	return $rc
}
