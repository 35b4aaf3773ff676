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
# shellcheck source=tests/e2e/loopback_lib.sh
. "$(dirname "$0")/loopback_lib.sh"
loopback_init 20000

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
loopback_start_echo
write_responder_config "$user" "$work/jail"
loopback_start_daemons
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
