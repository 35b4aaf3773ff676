# Helpers for the UDP transport's end-to-end tests (tests/e2e/udp_*.sh),
# sourced after lib.sh and recovery_lib.sh. They replace the recovery
# configs with ones in which both daemons reach each other only over the
# UDP transport: each has listen_udp and no TCP listen, and each peer
# section that dials has transport = udp.
#
# shellcheck shell=bash

UDP_PORT=$E2E_TUNNEL_PORT

# With 1, each daemon may dial the other. With 0, only the standby dials,
# and the primary is a pure responder: no endpoint, no forward_listen.
UDP_PRIMARY_DIALS=${UDP_PRIMARY_DIALS:-1}

# Write both daemons' configs, symmetric as in recovery_lib.sh unless
# UDP_PRIMARY_DIALS=0: either host may dial the other, and only over UDP.
rec_write_configs() {
	local keys=$E2E_TMP/keys
	{
		echo "[interface]"
		echo "private_key_file = $keys/primary.key"
		echo "listen_udp = $E2E_PRIMARY_ADDR:$UDP_PORT"
		rec_interface_lines primary
		echo
		echo "[peer standby]"
		echo "public_key = $(e2e_public_key standby)"
		echo "preshared_key_file = $keys/link.psk"
		if [ "$UDP_PRIMARY_DIALS" = 1 ]; then
			echo "endpoint = $E2E_STANDBY_ADDR:$UDP_PORT"
			echo "transport = udp"
			echo "forward_listen = 127.0.0.1:$E2E_FORWARD_PORT"
		fi
		echo "forward_target = 127.0.0.1:$E2E_PG_PORT"
	} >"$E2E_TMP/config/primary.conf"
	{
		echo "[interface]"
		echo "private_key_file = $keys/standby.key"
		echo "listen_udp = $E2E_STANDBY_ADDR:$UDP_PORT"
		rec_interface_lines standby
		echo
		echo "[peer primary]"
		echo "public_key = $(e2e_public_key primary)"
		echo "preshared_key_file = $keys/link.psk"
		echo "endpoint = $E2E_PRIMARY_ADDR:$UDP_PORT"
		echo "transport = udp"
		echo "forward_listen = 127.0.0.1:$E2E_FORWARD_PORT"
		echo "forward_target = 127.0.0.1:$E2E_PG_PORT"
	} >"$E2E_TMP/config/standby.conf"
}

# Count the UDP datagrams that reach NODE's walguard port, with an ACCEPT
# rule whose counter udp_datagram_count reads. It changes no verdict.
udp_count_datagrams() {
	ip netns exec "$(e2e_namespace_of "$1")" iptables -I INPUT -p udp --dport "$UDP_PORT" -j ACCEPT
}

udp_datagram_count() {
	ip netns exec "$(e2e_namespace_of "$1")" iptables -L INPUT -v -n -x \
		| awk -v port="dpt:$UDP_PORT" '$3 == "ACCEPT" && $4 == "17" && $0 ~ port { sum += $1 } END { print sum + 0 }'
}

# Succeed when no TCP socket of NODE's namespace uses the tunnel port, so
# that the replication seen cannot have come over the TCP transport.
udp_no_tcp_tunnel() {
	[ -z "$(ip netns exec "$(e2e_namespace_of "$1")" ss -Htan "( sport = :$UDP_PORT or dport = :$UDP_PORT )")" ]
}

# recovery_lib.sh's start, renamed, for the daemons that have forward_listen.
eval "rec_daemon_start_forwarding() $(declare -f rec_daemon_start | tail -n +2)"

# Start NODE's daemon as recovery_lib.sh does, and wait until it listens:
# on forward_listen, or on listen_udp for a primary that does not dial.
rec_daemon_start() {
	local node=$1
	shift
	if [ "$node" = standby ] || [ "$UDP_PRIMARY_DIALS" = 1 ]; then
		rec_daemon_start_forwarding "$node" "$@"
		return
	fi
	ip netns exec "$E2E_NS_PRIMARY" "$@" "$WALGUARD_BIN" --config "$E2E_TMP/config/primary.conf" \
		</dev/null >>"$(e2e_daemon_log primary)" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	E2E_DAEMON_PIDS[primary]=$!
	e2e_wait_for "walguard on the primary to listen on UDP $E2E_PRIMARY_ADDR:$UDP_PORT" 50 0.1 \
		udp_daemon_listening primary "$E2E_PRIMARY_ADDR:$UDP_PORT"
}

# Succeed when NODE's daemon is alive and has a UDP socket on ADDRESS.
udp_daemon_listening() {
	local node=$1 address=$2
	local pid=${E2E_DAEMON_PIDS[$node]}
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		e2e_fail "walguard on the $node exited with status $? (see $node-walguard.log above)"
	fi
	ip netns exec "$(e2e_namespace_of "$node")" ss -Hlun "src $address" | grep -q .
}
