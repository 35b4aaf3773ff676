#!/bin/bash
# End-to-end test: a recorded handshake initiation, sent again, gets no
# reply and never reaches the forward_target.
#
#   standby namespace                                 primary namespace
#   raw_client.py -> 127.0.0.1:5433 walguard -> mitm_proxy.py 127.0.0.1:6001
#                    -> 198.18.0.1:5434 walguard -> 127.0.0.1:5432 sink.py (echo)
#
# The proxy records the 112-byte initiation of a real connection. The test
# then sends those bytes from a fresh socket straight to the responder:
# while the real connection is still open, after it has closed, and five
# times in a row. Each time zero bytes come back, the connection is
# closed, the responder logs handshake_rejected with "replayed" in the
# error, and the sink accepts no connection.
#
# An initiation that the proxy swallowed (so the responder never saw it)
# is accepted once when replayed: the responder replies with its 52-byte
# response, as docs/protocol.md describes, but the replayer cannot send
# the OPEN record, so the responder closes after handshake_timeout and
# still never connects to the sink. A second replay of it is rejected.
#
# Run as root: bash tests/e2e/replay_handshake.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS replay_handshake" or "FAIL replay_handshake:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

e2e_init replay_handshake
e2e_start_watchdog 90
e2e_find_binaries
hostile_find_python

responder="$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT"
# Seconds: the responder's handshake_timeout, and the slack allowed on it.
handshake_timeout=2
close_margin=1.5

e2e_step "create the namespaces and the veth link"
e2e_setup_network

e2e_step "make keys and configs; the standby dials through the proxy"
e2e_make_keys
keys=$E2E_TMP/keys
config=$E2E_TMP/config
hostile_write_responder_config "$config/primary.conf" "$keys/primary.key" \
	"$(e2e_public_key standby)" "$keys/link.psk" "$responder" "127.0.0.1:$E2E_PG_PORT" \
	"handshake_timeout = ${handshake_timeout}s"
# connect_timeout = 0: one dial per client, so that the swallowed
# initiation below is the only one that client causes.
hostile_write_initiator_config "$config/standby.conf" "$keys/standby.key" \
	"$(e2e_public_key primary)" "$keys/link.psk" "127.0.0.1:$HOSTILE_PROXY_PORT" \
	"127.0.0.1:$E2E_FORWARD_PORT" "connect_timeout = 0"
e2e_check_configs

e2e_step "start the sink, the daemons and the proxy"
sink_dir=$E2E_TMP/sink
proxy_dir=$E2E_TMP/proxy
hostile_sink_start primary "127.0.0.1:$E2E_PG_PORT" "$sink_dir"
hostile_daemon_start primary primary "$config/primary.conf" "$responder"
hostile_daemon_start standby standby "$config/standby.conf" "127.0.0.1:$E2E_FORWARD_PORT"
hostile_proxy_start "$responder" "$proxy_dir"
responder_log=$(e2e_daemon_log primary)

rejected_line() {
	grep -F "event=handshake_rejected" "$responder_log" | grep -F " addr=$1 " | tail -n 1
}

rejected_line_logged() {
	[ -n "$(rejected_line "$1")" ]
}

# Send the initiation in FILE straight to the responder, expect zero bytes
# back, a prompt close and a "replayed" rejection, and no new connection
# at the sink. WHAT names the case.
check_replay_rejected() {
	local what=$1 file=$2
	local accepts_before result received end elapsed address line
	accepts_before=$(hostile_sink_accepts "$sink_dir")
	result=$(hostile_client standby probe --connect "$responder" --send-file "$file" --wait-seconds 6) \
		|| e2e_fail "$what: raw_client.py failed: $result"
	received=$(hostile_value "$result" received)
	end=$(hostile_value "$result" end)
	elapsed=$(hostile_value "$result" elapsed)
	echo "    replay: received $received bytes, connection end: $end after $elapsed s"
	[ "$received" = 0 ] \
		|| e2e_fail "$what: the responder replied to a replayed initiation with $received bytes (first bytes: $(hostile_value "$result" received_hex))"
	case "$end" in
	eof | reset) ;;
	*) e2e_fail "$what: the responder did not close the connection of a replayed initiation within 6 s" ;;
	esac
	awk -v elapsed="$elapsed" 'BEGIN { exit !(elapsed < 1) }' \
		|| e2e_fail "$what: the responder took $elapsed s to close the connection, expected an immediate close"

	address="$E2E_STANDBY_ADDR:$(hostile_value "$result" local_port)"
	e2e_retry 20 0.1 rejected_line_logged "$address" \
		|| e2e_fail "$what: the responder logged no handshake_rejected line with addr=$address"
	line=$(rejected_line "$address")
	echo "    responder: level=${line#* level=}"
	case "$line" in
	*error=\"*replayed*) ;;
	*) e2e_fail "$what: the rejection does not say the initiation was replayed: $line" ;;
	esac

	[ "$(hostile_sink_accepts "$sink_dir")" = "$accepts_before" ] \
		|| e2e_fail "$what: the forward_target accepted a connection after the replay"
	e2e_daemon_alive primary || e2e_fail "$what: the responder exited"
}

e2e_step "a real connection through the proxy, kept open for about 3 s"
stream_out=$E2E_TMP/long-stream
hostile_client standby stream --connect "127.0.0.1:$E2E_FORWARD_PORT" --chunks 25 --interval 0.1 \
	--sent-file "$stream_out.sent" --received-file "$stream_out.received" --wait-seconds 15 \
	>"$stream_out.result" &
stream_pid=$!
e2e_wait_for "the proxy to record the initiation of connection 1" 50 0.1 \
	test -s "$proxy_dir/conn-1.initiation"
sink_has_accepted_one() {
	[ "$(hostile_sink_accepts "$sink_dir")" = 1 ]
}
e2e_wait_for "the sink to accept the real connection" 50 0.1 sink_has_accepted_one
initiation=$proxy_dir/conn-1.initiation
[ "$(stat -c %s "$initiation")" = 112 ] \
	|| e2e_fail "the recorded initiation has $(stat -c %s "$initiation") bytes, expected 112"
[ "$(head -c 4 "$initiation" | od -An -tx1 | tr -d ' \n')" = 01000000 ] \
	|| e2e_fail "the recorded initiation does not start with the header 01 00 00 00"

e2e_step "replay the initiation while its connection is open"
kill -0 "$stream_pid" 2>/dev/null \
	|| e2e_fail "the real connection ended before the replay, so this case proves nothing"
check_replay_rejected "replay during the connection" "$initiation"

e2e_step "the real connection carries every byte despite the replay"
wait "$stream_pid" || e2e_fail "raw_client.py stream failed: $(cat "$stream_out.result")"
result=$(cat "$stream_out.result")
echo "    client: $(hostile_one_line "$result")"
[ "$(hostile_value "$result" end)" = eof ] \
	|| e2e_fail "the real connection ended with '$(hostile_value "$result" end)', expected eof"
cmp -s "$stream_out.sent" "$stream_out.received" \
	|| e2e_fail "the real connection's echo differs from what it sent"

e2e_step "replay the initiation after its connection closed"
check_replay_rejected "replay after the connection" "$initiation"

e2e_step "replay the initiation five times in a row"
accepts_before=$(hostile_sink_accepts "$sink_dir")
result=$(hostile_client standby probe --connect "$responder" --send-file "$initiation" \
	--count 5 --wait-seconds 3) || e2e_fail "raw_client.py failed: $result"
echo "    $(hostile_one_line "$result")"
[ "$(hostile_value "$result" received_total)" = 0 ] \
	|| e2e_fail "the responder sent $(hostile_value "$result" received_total) bytes to five replays"
[ "$(hostile_value "$result" not_closed)" = 0 ] \
	|| e2e_fail "$(hostile_value "$result" not_closed) of five replays were not closed within 3 s"
[ "$(hostile_sink_accepts "$sink_dir")" = "$accepts_before" ] \
	|| e2e_fail "the forward_target accepted a connection during five replays"

e2e_step "an initiation the responder never saw: replied to, never opened"
echo blackhole >"$proxy_dir/plan"
conn=$(($(grep -c '^event=accepted ' "$proxy_dir/events.log") + 1))
result=$(hostile_client standby probe --connect "127.0.0.1:$E2E_FORWARD_PORT" \
	--send-text "SELECT 'swallowed'" --wait-seconds 8) || e2e_fail "raw_client.py failed: $result"
echo pass >"$proxy_dir/plan"
e2e_retry 50 0.1 hostile_has_event "$proxy_dir" closed "$conn" \
	|| e2e_fail "the proxy did not finish swallowing connection $conn"
swallowed=$proxy_dir/conn-$conn.initiation
[ "$(stat -c %s "$swallowed")" = 112 ] \
	|| e2e_fail "the swallowed initiation has $(stat -c %s "$swallowed") bytes, expected 112"
accepts_before=$(hostile_sink_accepts "$sink_dir")
result=$(hostile_client standby probe --connect "$responder" --send-file "$swallowed" --wait-seconds 8) \
	|| e2e_fail "raw_client.py failed: $result"
received=$(hostile_value "$result" received)
end=$(hostile_value "$result" end)
elapsed=$(hostile_value "$result" elapsed)
echo "    first replay: received $received bytes, connection end: $end after $elapsed s"
[ "$received" = 52 ] \
	|| e2e_fail "the responder sent $received bytes for an initiation it had not seen, expected its 52-byte response"
[ "$(hostile_value "$result" received_hex | cut -c 1-8)" = 02000000 ] \
	|| e2e_fail "the 52 bytes do not start with the response header 02 00 00 00"
case "$end" in
eof | reset) ;;
*) e2e_fail "the responder did not close the replayer's connection within 8 s" ;;
esac
awk -v elapsed="$elapsed" -v t="$handshake_timeout" -v m="$close_margin" \
	'BEGIN { exit !(elapsed >= t * 0.9 && elapsed <= t + m) }' \
	|| e2e_fail "the responder closed the replayer's connection after $elapsed s, expected after the handshake_timeout of $handshake_timeout s"
[ "$(hostile_sink_accepts "$sink_dir")" = "$accepts_before" ] \
	|| e2e_fail "the forward_target accepted a connection for a replayed initiation that never sent OPEN"
check_replay_rejected "second replay of the swallowed initiation" "$swallowed"

e2e_step "a new real connection still works"
hostile_check_tunnel_works "after the replays"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
[ "$(hostile_sink_accepts "$sink_dir")" = 2 ] \
	|| e2e_fail "the forward_target accepted $(hostile_sink_accepts "$sink_dir") connections, expected 2 (the two real ones)"
status=0
e2e_daemon_stop primary || status=$?
[ "$status" -eq 0 ] || e2e_fail "the responder exited with status $status on SIGTERM, expected 0"

e2e_print_total_time
