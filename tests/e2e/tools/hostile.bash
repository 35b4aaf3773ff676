# Helpers for the hostile-network tests (strangers, tampering,
# replay_handshake, key_secrecy, wire_secrecy), sourced after lib.sh.
#
# They add what lib.sh does not have: configs with any keys and options,
# daemons beyond the primary and the standby, and the python tools in
# this folder (raw_client.py, sink.py, mitm_proxy.py) started inside the
# run's namespaces. Everything they start runs in a namespace of the run,
# so lib.sh's cleanup stops it. The python tools also exit on their own
# after --lifetime seconds.

# shellcheck shell=bash

HOSTILE_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The port where the proxy of a test listens, inside the standby namespace.
HOSTILE_PROXY_PORT=6001

hostile_find_python() {
	command -v python3 >/dev/null || e2e_fail "python3 not found"
}

# Write an initiator config to FILE: this host's PRIVATE_KEY_FILE, the
# responder's PEER_PUBLIC_KEY, PSK_FILE ("-" for none), ENDPOINT and
# FORWARD_LISTEN. Each further argument is one more [interface] line,
# such as "connect_timeout = 0".
hostile_write_initiator_config() {
	local file=$1 private_key_file=$2 peer_public_key=$3 psk_file=$4
	local endpoint=$5 forward_listen=$6
	shift 6
	{
		echo "[interface]"
		echo "private_key_file = $private_key_file"
		echo "log_level = debug"
		[ $# -eq 0 ] || printf '%s\n' "$@"
		echo
		echo "[peer primary]"
		echo "public_key = $peer_public_key"
		[ "$psk_file" = - ] || echo "preshared_key_file = $psk_file"
		echo "endpoint = $endpoint"
		echo "forward_listen = $forward_listen"
	} >"$file"
}

# Write a responder config to FILE: this host's PRIVATE_KEY_FILE, the
# initiator's PEER_PUBLIC_KEY, PSK_FILE ("-" for none), LISTEN and
# FORWARD_TARGET. Each further argument is one more [interface] line.
hostile_write_responder_config() {
	local file=$1 private_key_file=$2 peer_public_key=$3 psk_file=$4
	local listen=$5 forward_target=$6
	shift 6
	{
		echo "[interface]"
		echo "private_key_file = $private_key_file"
		echo "listen = $listen"
		echo "log_level = debug"
		[ $# -eq 0 ] || printf '%s\n' "$@"
		echo
		echo "[peer standby]"
		echo "public_key = $peer_public_key"
		[ "$psk_file" = - ] || echo "preshared_key_file = $psk_file"
		echo "forward_target = $forward_target"
	} >"$file"
}

# Succeed when something listens on ADDRESS (HOST:PORT) in NODE's namespace.
hostile_listening() {
	local node=$1 address=$2
	ip netns exec "$(e2e_namespace_of "$node")" ss -Hltn "src $address" | grep -q .
}

# Wait until PID listens on ADDRESS in NODE's namespace. Fails the run,
# naming WHAT and its log, when PID exits or 5 s pass.
hostile_wait_listening() {
	local what=$1 node=$2 address=$3 pid=$4 log=$5
	local _
	for _ in $(seq 50); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			e2e_fail "$what exited with status $? before listening on $address (see $(basename "$log") above)"
		fi
		hostile_listening "$node" "$address" && return 0
		sleep 0.1
	done
	e2e_fail "timed out waiting for $what to listen on $address in the $node namespace"
}

# Start a walguard daemon named NAME with CONFIG in NODE's namespace, log
# to logs/NAME-walguard.log, and wait until it listens on ADDRESS. The
# process id goes to lib.sh's E2E_DAEMON_PIDS, so e2e_daemon_alive NAME
# and e2e_daemon_stop NAME work for it.
hostile_daemon_start() {
	local name=$1 node=$2 config=$3 address=$4
	local log
	log=$(e2e_daemon_log "$name")
	ip netns exec "$(e2e_namespace_of "$node")" "$WALGUARD_BIN" --config "$config" \
		</dev/null >>"$log" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	# shellcheck disable=SC2004 # an associative array, declared in lib.sh
	E2E_DAEMON_PIDS[$name]=$!
	hostile_wait_listening "walguard '$name'" "$node" "$address" "${E2E_DAEMON_PIDS[$name]}" "$log"
}

# Start sink.py on ADDRESS in NODE's namespace, recording into DIRECTORY,
# echoing every chunk back. Sets HOSTILE_SINK_PID.
hostile_sink_start() {
	local node=$1 address=$2 directory=$3
	mkdir -p "$directory"
	ip netns exec "$(e2e_namespace_of "$node")" python3 "$HOSTILE_TOOLS/sink.py" \
		--listen "$address" --directory "$directory" --echo \
		</dev/null >>"$E2E_TMP/logs/sink.log" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	HOSTILE_SINK_PID=$!
	hostile_wait_listening "sink.py" "$node" "$address" "$HOSTILE_SINK_PID" "$E2E_TMP/logs/sink.log"
}

# Start mitm_proxy.py in the standby namespace on 127.0.0.1:HOSTILE_PROXY_PORT,
# relaying to UPSTREAM, with its events and initiations in DIRECTORY and
# its plan in DIRECTORY/plan. Sets HOSTILE_PROXY_PID.
hostile_proxy_start() {
	local upstream=$1 directory=$2
	mkdir -p "$directory"
	echo pass >"$directory/plan"
	ip netns exec "$E2E_NS_STANDBY" python3 "$HOSTILE_TOOLS/mitm_proxy.py" \
		--listen "127.0.0.1:$HOSTILE_PROXY_PORT" --upstream "$upstream" \
		--directory "$directory" --plan-file "$directory/plan" \
		</dev/null >>"$E2E_TMP/logs/proxy.log" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	HOSTILE_PROXY_PID=$!
	hostile_wait_listening "mitm_proxy.py" standby "127.0.0.1:$HOSTILE_PROXY_PORT" \
		"$HOSTILE_PROXY_PID" "$E2E_TMP/logs/proxy.log"
}

# Run raw_client.py ARGS... in NODE's namespace, bounded by 60 s, and
# print its key=value output.
hostile_client() {
	local node=$1
	shift
	ip netns exec "$(e2e_namespace_of "$node")" timeout 60 python3 "$HOSTILE_TOOLS/raw_client.py" "$@" \
		{E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&-
}

# Print TEXT with its lines joined by spaces, for one-line messages.
hostile_one_line() {
	printf '%s' "$1" | tr '\n' ' '
}

# Print the value of KEY in key=value TEXT (one pair per line or word).
hostile_value() {
	local text=$1 key=$2
	printf '%s\n' "$text" | tr ' ' '\n' | sed -n "s/^$key=//p" | tail -n 1
}

# Print the events.log line of EVENT for connection CONN in DIRECTORY.
hostile_event() {
	local directory=$1 event=$2 conn=$3
	grep -E "^event=$event conn=$conn( |\$)" "$directory/events.log" 2>/dev/null | tail -n 1
}

hostile_has_event() {
	[ -n "$(hostile_event "$@")" ]
}

# Number of connections sink.py has accepted so far.
hostile_sink_accepts() {
	local directory=$1
	grep -c '^event=accepted ' "$directory/events.log" 2>/dev/null || true
}

# Send a stream of CHUNKS random chunks from the standby namespace through
# the standby daemon's forward_listen (127.0.0.1:PORT), and fail the run
# unless the echo through the tunnel comes back whole and the connection
# ends cleanly. WHAT names the check in the failure message.
hostile_check_tunnel_works() {
	local what=$1 port=${2:-$E2E_FORWARD_PORT} chunks=${3:-3}
	local out result
	out=$E2E_TMP/check-$RANDOM
	result=$(hostile_client standby stream --connect "127.0.0.1:$port" --chunks "$chunks" \
		--sent-file "$out.sent" --received-file "$out.received" --wait-seconds 10) \
		|| e2e_fail "$what: raw_client.py stream failed: $result"
	if [ "$(hostile_value "$result" end)" != eof ] || ! cmp -s "$out.sent" "$out.received" \
		|| [ "$(hostile_value "$result" sent)" -eq 0 ]; then
		e2e_fail "$what: a connection through the tunnel did not echo its bytes back and end cleanly ($(hostile_one_line "$result"))"
	fi
}

# Stop PID (a process this run started) with TERM, then KILL after 5 s.
# Unlike e2e_stop_process it is safe under set -e when PID is already gone.
hostile_stop_process() {
	local pid=$1 _
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
