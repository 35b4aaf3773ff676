#!/bin/bash
# End-to-end test: datagrams from strangers to the UDP transport get not
# one byte back, and do not disturb the replication of the real peer.
#
# The daemons run as in udp_replication.sh, and the standby streams from
# the primary. tcpdump records the datagrams that the real standby sends
# to the primary's port 5434: the first ones, and a few recent ones. Then,
# from other sockets in the standby's namespace, udp_probe.py sends:
#
#   garbage            random bytes
#   random-initiation  random bytes behind an initiation header
#   random-data        random bytes behind a data header
#   short-initiation   the first 50 bytes of the recorded initiation
#   short-data         the first 40 bytes of a recorded data datagram
#   replayed-initiation, replayed-data   recorded datagrams, unchanged
#   tampered-data      a recorded data datagram with one counter bit flipped
#
# and a walguard daemon with a key the primary does not pin dials it over
# UDP. The primary must log a rejection with each stranger's address,
# send nothing to any of them, keep its real peer's address, and keep
# streaming to the real standby on the same connection. A burst of 200
# garbage datagrams must produce far fewer than 200 log lines.
#
# Run as root: bash tests/e2e/udp_strangers.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS udp_strangers" or "FAIL udp_strangers: REASON";
# the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"
# shellcheck source=tests/e2e/udp_lib.sh
. "$(dirname "$0")/udp_lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

primary_udp="$E2E_PRIMARY_ADDR:$UDP_PORT"
stranger_port=5443

rec_init udp_strangers 150
hostile_find_python
command -v tcpdump >/dev/null || e2e_fail "tcpdump not found; install it (scripts/install-deps.sh)"
rec_setup_network_and_keys
rec_setup_primary

# Record COUNT datagrams from the real standby to the primary's port with
# tcpdump in the primary's namespace, into FILE. tcpdump exits by itself
# after COUNT datagrams; capture_wait waits for that.
capture_start() {
	local count=$1 file=$2
	ip netns exec "$E2E_NS_PRIMARY" tcpdump -i "$E2E_VETH_PRIMARY" -U -s 0 -c "$count" -w "$file" \
		"udp and src host $E2E_STANDBY_ADDR and dst host $E2E_PRIMARY_ADDR and dst port $UDP_PORT" \
		</dev/null >"$file.log" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	capture_pid=$!
	e2e_wait_for "tcpdump to start" 50 0.1 grep -q "listening on" "$file.log"
}

capture_wait() {
	local file=$1 _
	for _ in $(seq 100); do
		kill -0 "$capture_pid" 2>/dev/null || break
		sleep 0.1
	done
	hostile_stop_process "$capture_pid"
	python3 "$HOSTILE_TOOLS/udp_probe.py" extract --pcap "$file" --out-dir "$file.d" --dport "$UDP_PORT" \
		|| e2e_fail "udp_probe.py extract failed on $file"
}

e2e_step "record the first datagrams from the standby with tcpdump"
capture_start 50 "$E2E_TMP/first.pcap"

rec_start_daemons
rec_setup_standby
rec_mark before-strangers
rec_wait_replayed primary standby 60
walsender_before=$(rec_walsender_pid primary standby)

e2e_step "pick recorded datagrams to send again"
echo "    first datagrams: $(capture_wait "$E2E_TMP/first.pcap")"
# A few recent ones too, whose counters are still inside the replay window.
capture_start 3 "$E2E_TMP/recent.pcap"
echo "    recent datagrams: $(capture_wait "$E2E_TMP/recent.pcap")"
initiation=$(find "$E2E_TMP/first.pcap.d" -name '*-initiation.bin' | sort | head -n 1)
first_data=$(find "$E2E_TMP/first.pcap.d" -name '*-data.bin' | sort | head -n 1)
recent_data=$(find "$E2E_TMP/recent.pcap.d" -name '*-data.bin' | sort | tail -n 1)
[ -n "$initiation" ] || e2e_fail "tcpdump recorded no initiation from the standby"
[ -n "$first_data" ] || e2e_fail "tcpdump recorded no data datagram from the standby at the start"
[ -n "$recent_data" ] || e2e_fail "tcpdump recorded no recent data datagram from the standby"

# Count every datagram from the primary's port to a port other than the
# real standby's: all of them would be replies to strangers.
ip netns exec "$E2E_NS_STANDBY" iptables -I INPUT -p udp --sport "$UDP_PORT" ! --dport "$UDP_PORT" -j ACCEPT
replies_to_strangers() {
	ip netns exec "$E2E_NS_STANDBY" iptables -L INPUT -v -n -x \
		| awk '$3 == "ACCEPT" && $4 == "17" && /spt:/ && /dpt:!/ { sum += $1 } END { print sum + 0 }'
}

primary_log=$(e2e_daemon_log primary)

# The primary's rejection line about ADDRESS.
rejection_line() {
	grep -E "event=(handshake|datagram)_rejected" "$primary_log" | grep -F " addr=$1 " | tail -n 1
}

rejection_logged() {
	[ -n "$(rejection_line "$1")" ]
}

# Send the datagram that ARGS... describe from a fresh socket in the
# standby's namespace, and check that nothing came back and that the
# primary logged a rejection with the socket's address containing PHRASE.
probe() {
	local kind=$1 phrase=$2
	shift 2
	local result port line
	result=$(ip netns exec "$E2E_NS_STANDBY" timeout 30 python3 "$HOSTILE_TOOLS/udp_probe.py" send \
		--to "$primary_udp" --wait-seconds 1 "$@" {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&-) \
		|| e2e_fail "$kind: udp_probe.py send failed: $result"
	port=$(hostile_value "$result" local_port)
	echo "    $kind: $result"
	[ "$(hostile_value "$result" received)" = 0 ] \
		|| e2e_fail "$kind: the primary sent $(hostile_value "$result" received) datagrams back to a stranger"
	e2e_retry 20 0.1 rejection_logged "$E2E_STANDBY_ADDR:$port" \
		|| e2e_fail "$kind: the primary logged no rejection with addr=$E2E_STANDBY_ADDR:$port"
	line=$(rejection_line "$E2E_STANDBY_ADDR:$port")
	echo "      primary: ${line#* level=}" | cut -c1-220
	case "$line" in
	*"$phrase"*) ;;
	*) e2e_fail "$kind: the primary's rejection does not say '$phrase': $line" ;;
	esac
}

e2e_step "strangers send datagrams"
probe garbage "datagram" --random 300
probe random-initiation "failed to authenticate" --header 1 --random 116
probe random-data "unknown session index" --header 4 --random 100
probe short-initiation "too short" --file "$initiation" --truncate 50
probe short-data "replayed counter" --file "$recent_data" --truncate 40
probe replayed-initiation "replayed or outdated initiation" --file "$initiation"
probe replayed-data-old "counter below the replay window" --file "$first_data"
probe replayed-data-recent "replayed counter" --file "$recent_data"
# Byte 14 is in the counter: a counter 2^48 ahead passes the window and
# must fail to authenticate, without moving the window for the real peer.
probe tampered-data "failed to authenticate" --file "$recent_data" --flip 14

e2e_step "a walguard daemon with a key the primary does not pin dials it over UDP"
(cd "$E2E_TMP/keys" && "$WALGUARD_KEYGEN" pair stranger >/dev/null) || e2e_fail "walguard-keygen pair stranger failed"
cat >"$E2E_TMP/config/stranger.conf" <<-EOF2
	[interface]
	private_key_file = $E2E_TMP/keys/stranger.key
	log_level = debug
	handshake_timeout = 2s
	connect_timeout = 0

	[peer primary]
	public_key = $(e2e_public_key primary)
	endpoint = $primary_udp
	transport = udp
	forward_listen = 127.0.0.1:$stranger_port
EOF2
hostile_daemon_start stranger standby "$E2E_TMP/config/stranger.conf" "127.0.0.1:$stranger_port"
result=$(hostile_client standby probe --connect "127.0.0.1:$stranger_port" --send-text "SELECT 1" --wait-seconds 8) \
	|| e2e_fail "raw_client.py through the stranger daemon failed: $result"
echo "    client of the stranger daemon: $(hostile_one_line "$result")"
[ "$(hostile_value "$result" received)" = 0 ] \
	|| e2e_fail "the client of the stranger daemon received $(hostile_value "$result" received) bytes"
e2e_retry 30 0.1 grep -q "event=handshake_rejected.*unknown public key" "$primary_log" \
	|| e2e_fail "the primary logged no handshake_rejected line for the unknown key"
echo "    primary: $(grep "event=handshake_rejected.*unknown public key" "$primary_log" | tail -n 1 | sed 's/^.* level=/level=/')"
grep -q "event=handshake_failed.*transport=udp" "$(e2e_daemon_log stranger)" \
	|| e2e_fail "the stranger daemon did not log that its UDP handshake failed"

e2e_step "burst of 200 garbage datagrams"
lines_before=$(grep -cE "event=(handshake|datagram)_rejected" "$primary_log" || true)
result=$(ip netns exec "$E2E_NS_STANDBY" timeout 30 python3 "$HOSTILE_TOOLS/udp_probe.py" send \
	--to "$primary_udp" --random 64 --count 200 --wait-seconds 1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&-) \
	|| e2e_fail "udp_probe.py send failed during the burst: $result"
echo "    $result"
[ "$(hostile_value "$result" received)" = 0 ] || e2e_fail "the primary answered the burst"
lines_after=$(grep -cE "event=(handshake|datagram)_rejected" "$primary_log" || true)
burst_lines=$((lines_after - lines_before))
echo "    the burst produced $burst_lines rejection lines"
[ "$burst_lines" -lt 50 ] \
	|| e2e_fail "200 garbage datagrams produced $burst_lines rejection lines, expected far fewer (rate limit)"

e2e_step "nothing went back to a stranger, and the real standby still streams"
replies=$(replies_to_strangers)
echo "    datagrams from the primary's port to stranger ports: $replies"
[ "$replies" = 0 ] || e2e_fail "the primary sent $replies datagrams to stranger ports"
if grep "event=peer_address" "$primary_log" | grep -vF " addr=$E2E_STANDBY_ADDR:$UDP_PORT "; then
	e2e_fail "the primary moved its peer's address to a stranger's (lines above)"
fi
rec_mark after-strangers
rec_compare_clusters primary standby
for label in before-strangers after-strangers; do
	[ "$(rec_marker_count standby "$label")" = 1 ] \
		|| e2e_fail "the standby lacks the marker row '$label'"
done
walsender_after=$(rec_walsender_pid primary standby)
[ "$walsender_after" = "$walsender_before" ] \
	|| e2e_fail "the walsender changed from $walsender_before to $walsender_after: the strangers broke the connection"

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
if grep -h "level=error" "$primary_log" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
