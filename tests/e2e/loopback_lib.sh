# Helpers for the end-to-end tests that run on loopback alone: a responder
# and an initiator daemon on 127.0.0.1 and an echo server as the
# responder's forward_target. Sourced by flood.sh and privileges.sh.
#
# A test sets name, calls loopback_init, writes responder.conf (the parts
# it tests), then calls the loopback_* steps. Its files live in $work,
# which is also the current folder; the EXIT trap stops every process in
# $pids and removes $work, also when a step fails.

# shellcheck shell=bash

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${WALGUARD_BUILD:-$root/build}
walguard=$build/tunnel/walguard
keygen=$build/keys/walguard-keygen
pids=()
work=""

loopback_cleanup() {
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	[ -z "$work" ] || rm -rf "$work"
}

# Print the daemons' last log lines and the FAIL line, and exit 1.
fail() {
	echo "--- responder log (last lines)"
	tail -n 15 "$work/responder.log" 2>/dev/null || true
	echo "--- initiator log (last lines)"
	tail -n 15 "$work/initiator.log" 2>/dev/null || true
	echo "FAIL $name: $*"
	exit 1
}

# loopback_init FIRST_PORT: skip unless root, make $work, pick three ports
# (sink_port, tunnel_port, forward_port) from FIRST_PORT and the process
# id, so that runs in parallel do not collide, and make both key pairs.
loopback_init() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP $name: run as root, like the other end-to-end tests"
		exit 77
	fi
	work=$(mktemp -d "/tmp/walguard-$name.XXXXXX")
	trap loopback_cleanup EXIT
	trap 'exit 1' INT TERM HUP PIPE

	local base=$(($1 + ($$ % 500) * 4))
	sink_port=$base
	tunnel_port=$((base + 1))
	forward_port=$((base + 2))

	cd "$work" || exit 1
	"$keygen" pair responder >/dev/null
	"$keygen" pair initiator >/dev/null
	cat >initiator.conf <<EOF
[interface]
private_key_file = initiator.key

[peer responder]
public_key = $(cat responder.pub)
endpoint = 127.0.0.1:$tunnel_port
forward_listen = 127.0.0.1:$forward_port
EOF
}

# Start an echo server on sink_port. It stops by itself once no client has
# connected for two minutes, and at cleanup.
loopback_start_echo() {
	python3 - "$sink_port" <<'EOF' &
import socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(128)
server.settimeout(120)

def echo(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)

while True:
    try:
        conn, _ = server.accept()
    except OSError:
        break
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
EOF
	pids+=($!)
}

# Start both daemons with responder.conf and initiator.conf; the
# responder's process id goes to responder_pid.
loopback_start_daemons() {
	"$walguard" --config responder.conf 2>responder.log &
	responder_pid=$!
	pids+=("$responder_pid")
	"$walguard" --config initiator.conf 2>initiator.log &
	pids+=($!)
}

# wait_for_port PORT: wait up to 10 s until something accepts on it.
wait_for_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}
