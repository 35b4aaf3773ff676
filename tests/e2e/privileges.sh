#!/bin/bash
# Least privilege: a daemon started as root with `user` and `chroot` binds
# its listener, then runs as that user inside the chroot and still carries
# connections. A user that does not exist, or a chroot that cannot be
# entered, stops the daemon at start with a message.
#
# Runs on loopback only: an echo sink on 127.0.0.1, a responder daemon
# (the one that drops privileges) and an initiator daemon in front of it.
set -eu

name=privileges
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${WALGUARD_BUILD:-$root/build}
walguard=$build/tunnel/walguard
keygen=$build/keys/walguard-keygen

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP $name: needs root to start the daemon as root"
	exit 77
fi

work=$(mktemp -d /tmp/walguard-privileges.XXXXXX)
pids=()

cleanup() {
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "--- responder log"
	tail -n 20 "$work/responder.log" 2>/dev/null || true
	echo "--- initiator log"
	tail -n 20 "$work/initiator.log" 2>/dev/null || true
	echo "FAIL $name: $*"
	exit 1
}

# Ports picked from the PID so that parallel runs on one host do not collide.
base=$((20000 + ($$ % 2000) * 4))
sink_port=$base
tunnel_port=$((base + 1))
forward_port=$((base + 2))

cd "$work"
"$keygen" pair responder >/dev/null
"$keygen" pair initiator >/dev/null
mkdir -m 0755 jail
user=nobody
user_uid=$(id -u "$user")

write_responder_config() {	# write_responder_config USER CHROOT
	cat >responder.conf <<EOF
[interface]
private_key_file = responder.key
listen = 127.0.0.1:$tunnel_port
user = $1
chroot = $2

[peer initiator]
public_key = $(cat initiator.pub)
forward_target = 127.0.0.1:$sink_port
EOF
}

cat >initiator.conf <<EOF
[interface]
private_key_file = initiator.key

[peer responder]
public_key = $(cat responder.pub)
endpoint = 127.0.0.1:$tunnel_port
forward_listen = 127.0.0.1:$forward_port
EOF

wait_for_port() {	# wait_for_port PORT
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Bad settings first: each must stop the daemon at start, naming the problem.
write_responder_config no-such-user-walguard "$work/jail"
status=0
timeout 10 "$walguard" --config responder.conf 2>bad-user.log || status=$?
[ "$status" -ne 0 ] || fail "daemon with an unknown user kept running or exited 0"
grep -q 'event=privileges_failed.*user=no-such-user-walguard.*no such user' bad-user.log ||
	fail "no privileges_failed line naming the unknown user: $(cat bad-user.log)"

write_responder_config "$user" "$work/no-such-folder"
status=0
timeout 10 "$walguard" --config responder.conf 2>bad-chroot.log || status=$?
[ "$status" -ne 0 ] || fail "daemon with a missing chroot folder exited 0"
grep -q "event=privileges_failed chroot=$work/no-such-folder" bad-chroot.log ||
	fail "no privileges_failed line naming the chroot folder: $(cat bad-chroot.log)"

# The real run.
python3 - "$sink_port" <<'EOF' &
# An echo server on loopback for the tunnel's forward_target; it stops by itself.
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
write_responder_config "$user" "$work/jail"
"$walguard" --config responder.conf 2>responder.log &
responder_pid=$!
pids+=("$responder_pid")
"$walguard" --config initiator.conf 2>initiator.log &
pids+=($!)
wait_for_port "$sink_port" || fail "sink did not start"
wait_for_port "$forward_port" || fail "initiator did not start listening"
grep -q 'event=privileges_dropped' responder.log || sleep 1
grep -q "event=privileges_dropped user=$user uid=$user_uid" responder.log ||
	fail "no privileges_dropped line for $user"

# Every uid and gid of the process (real, effective, saved, filesystem).
read -r _ uids < <(grep '^Uid:' "/proc/$responder_pid/status")
read -r _ gids < <(grep '^Gid:' "/proc/$responder_pid/status")
for uid in $uids; do
	[ "$uid" = "$user_uid" ] || fail "responder has uid $uid, expected $user_uid: Uid: $uids"
done
for gid in $gids; do
	[ "$gid" = "$(id -g "$user")" ] || fail "responder has gid $gid: Gid: $gids"
done
groups=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$responder_pid/status" | tr -d ' ')
[ "$groups" = "$(id -g "$user")" ] || [ -z "$groups" ] ||
	fail "responder kept supplementary groups: $groups"
[ "$(readlink "/proc/$responder_pid/root")" = "$work/jail" ] ||
	fail "responder's root is $(readlink "/proc/$responder_pid/root"), expected $work/jail"

# A connection through the tunnel still works after the drop.
reply=$(python3 - "$forward_port" <<'EOF'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as conn:
    conn.sendall(b"through the dropped responder\n")
    conn.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
print(data.decode().strip())
EOF
) || fail "connection through the tunnel failed"
[ "$reply" = "through the dropped responder" ] || fail "echo through the tunnel returned '$reply'"

echo "PASS $name"
