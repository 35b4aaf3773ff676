#!/bin/bash
# Floods do not starve real peers. While strangers hold hundreds of slow
# half-open connections to the responder and send a burst of bogus
# initiations, a real peer's connections through the tunnel still work,
# the responder's memory stays bounded, its pending handshakes stay at
# their limit, and the bogus initiations beyond the per-address burst are
# refused before any DH work.
#
# Runs on loopback only. The strangers use the source addresses 127.0.0.2
# and 127.0.0.3, and the real peer 127.0.0.1, so that the per-address
# limits can tell them apart.
set -eu

name=flood
# shellcheck source=tests/e2e/loopback_lib.sh
. "$(dirname "$0")/loopback_lib.sh"

# Bounds checked below. The pending limit is DAEMON_MAX_PENDING_HANDSHAKES
# in tunnel/daemon.h; the memory bound leaves room for the 1024 pending
# connections and the real peer's traffic.
max_pending=1024
max_rss_kib=$((32 * 1024))
slow_connections=1300
bogus_initiations=300
failed_handshake_burst=20

loopback_init 22000

cat >responder.conf <<EOF
[interface]
private_key_file = responder.key
listen = 127.0.0.1:$tunnel_port
handshake_timeout = 20s

[peer initiator]
public_key = $(cat initiator.pub)
forward_target = 127.0.0.1:$sink_port
EOF
loopback_start_echo
loopback_start_daemons
wait_for_port "$sink_port" || fail "echo server did not start"
wait_for_port "$forward_port" || fail "initiator did not start listening"

# The flood: slow half-open connections from 127.0.0.2 that send one byte
# of a valid-looking initiation header a second, and a burst of full-size
# initiations with random bytes from 127.0.0.3. It stops by itself.
python3 - "$tunnel_port" "$slow_connections" "$bogus_initiations" >flood.log 2>&1 <<'EOF' &
import os, resource, socket, sys, time
port, slow_count, bogus_count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
# More sockets than the usual soft limit of 1024 descriptors.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def connect(source):
    conn = socket.socket()
    conn.bind((source, 0))
    conn.settimeout(2)
    conn.connect(("127.0.0.1", port))
    return conn

slow = []
for _ in range(slow_count):
    try:
        conn = connect("127.0.0.2")
        conn.setblocking(False)
        slow.append(conn)
    except OSError as error:
        print("slow connect failed:", error)
print("slow connections open:", len(slow), flush=True)

answered = 0
for _ in range(bogus_count):
    try:
        conn = connect("127.0.0.3")
        conn.sendall(bytes([1, 0, 0, 0]) + os.urandom(108))
        conn.settimeout(2)
        if conn.recv(1):
            answered += 1
        conn.close()
    except OSError:
        pass
print("bogus initiations answered:", answered, flush=True)

# One byte a second on each slow connection for a while; the responder
# evicts them, and sends them nothing.
for _ in range(8):
    for conn in slow:
        try:
            conn.send(b"\x00")
        except OSError:
            pass
    time.sleep(1)
for conn in slow:
    conn.close()
print("flood done", flush=True)
EOF
flood_pid=$!
pids+=("$flood_pid")

# The real peer, during the flood: sequential connections, each carried
# through a fresh handshake. Each must come back whole.
python3 - "$forward_port" >real.log 2>&1 <<'EOF' || fail "real peer's connections failed during the flood: $(tail -n 3 "$work/real.log")"
import os, socket, sys, time
port = int(sys.argv[1])
time.sleep(1)
slowest = 0.0
for n in range(20):
    payload = os.urandom(4096)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    took = time.monotonic() - start
    slowest = max(slowest, took)
    if data != payload:
        sys.exit("connection %d came back with %d of %d bytes" % (n, len(data), len(payload)))
    time.sleep(0.2)
print("20 connections whole; slowest took %.3f s" % slowest)
EOF
echo "real peer: $(tail -n 1 real.log)"

rss_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$responder_pid/status")
echo "responder peak RSS: ${rss_kib} KiB (bound ${max_rss_kib} KiB)"
[ "$rss_kib" -le "$max_rss_kib" ] || fail "responder peak RSS ${rss_kib} KiB is over ${max_rss_kib} KiB"

for _ in $(seq 150); do
	kill -0 "$flood_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q "bogus initiations answered: 0" flood.log || fail "a bogus initiation got bytes back: $(cat flood.log)"

kill -USR1 "$responder_pid"
sleep 0.5
status=$(grep 'event=status ' responder.log | tail -n 1)
[ -n "$status" ] || fail "no status line after SIGUSR1"
echo "responder $status"

field() {	# field NAME: a number from the status line
	sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$status"
}
[ "$(field pending_handshakes)" -le "$max_pending" ] || fail "more than $max_pending pending handshakes"
[ "$(field handshakes_evicted)" -gt 0 ] || fail "the slow connections evicted nothing: is the pending limit enforced?"
[ "$(field handshakes_completed)" -ge 20 ] || fail "the real peer's handshakes are not all counted"
# Random initiations fail to authenticate: after the burst the address
# pays with tokens, so most are refused before the DH work.
rate_limited=$(field handshakes_rate_limited)
[ "$rate_limited" -gt $((bogus_initiations - failed_handshake_burst - 100)) ] ||
	fail "only $rate_limited of $bogus_initiations bogus initiations were refused before the DH work"
[ "$(field rejections_not_logged)" -gt 0 ] || fail "repeated rejections were not counted as suppressed"
[ "$(grep -c 'event=handshake_rejected' responder.log)" -lt 100 ] ||
	fail "rejections are not rate-limited in the log"
kill -0 "$responder_pid" 2>/dev/null || fail "responder died"

echo "PASS $name"
