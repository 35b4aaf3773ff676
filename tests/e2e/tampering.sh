#!/bin/bash
# End-to-end test: a man in the middle who changes, drops, repeats,
# reorders or replays one transport record gets the connection torn down,
# and no changed byte reaches either end.
#
#   standby namespace                                 primary namespace
#   raw_client.py -> 127.0.0.1:5433 walguard -> mitm_proxy.py 127.0.0.1:6001
#                    -> 198.18.0.1:5434 walguard -> 127.0.0.1:5432 sink.py (echo)
#
# For each mode and direction the proxy tampers with transport record 3
# (counted after the handshake message; up record 0 is OPEN) of one
# connection, while the client sends eight 100-byte chunks 50 ms apart
# and the sink echoes them. Then:
#
# - the client's connection ends with a reset, and so does the sink's;
# - what the receiving end got is an exact prefix of what the sending end
#   sent, no longer than the records relayed unchanged before record 3;
# - the daemon that received the record logs tunnel_error, and both
#   daemons log connection_closed at level warn with a reason;
# - the next connection, untouched, carries every byte both ways.
#
# A changed OPEN record must make the responder reject the handshake
# without ever connecting to the sink.
#
# Run as root: bash tests/e2e/tampering.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS tampering" or "FAIL tampering: REASON"; the exit
# status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

e2e_init tampering
e2e_start_watchdog 120
e2e_find_binaries
hostile_find_python

responder="$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT"
# The record each mode changes, and the stream that carries it.
tamper_index=3
chunks=8
chunk_size=100

e2e_step "create the namespaces and the veth link"
e2e_setup_network

e2e_step "make keys and configs; the standby dials through the proxy"
e2e_make_keys
keys=$E2E_TMP/keys
config=$E2E_TMP/config
hostile_write_responder_config "$config/primary.conf" "$keys/primary.key" \
	"$(e2e_public_key standby)" "$keys/link.psk" "$responder" "127.0.0.1:$E2E_PG_PORT"
hostile_write_initiator_config "$config/standby.conf" "$keys/standby.key" \
	"$(e2e_public_key primary)" "$keys/link.psk" "127.0.0.1:$HOSTILE_PROXY_PORT" \
	"127.0.0.1:$E2E_FORWARD_PORT"
e2e_check_configs

e2e_step "start the sink, the daemons and the proxy"
sink_dir=$E2E_TMP/sink
proxy_dir=$E2E_TMP/proxy
hostile_sink_start primary "127.0.0.1:$E2E_PG_PORT" "$sink_dir"
hostile_daemon_start primary primary "$config/primary.conf" "$responder"
hostile_daemon_start standby standby "$config/standby.conf" "127.0.0.1:$E2E_FORWARD_PORT"
hostile_proxy_start "$responder" "$proxy_dir"
responder_log=$(e2e_daemon_log primary)
initiator_log=$(e2e_daemon_log standby)

proxy_connections() {
	grep -c '^event=accepted ' "$proxy_dir/events.log" 2>/dev/null || true
}

# Succeed when the first bytes of file A are exactly file B's bytes, and A
# is no longer than B.
is_prefix() {
	local part=$1 whole=$2
	local size
	size=$(stat -c %s "$part")
	[ "$size" -le "$(stat -c %s "$whole")" ] && cmp -s -n "$size" "$part" "$whole"
}

# Run one stream through the tunnel under PLAN (written to the proxy's plan
# file). Sets conn (the proxy's connection number), sink_conn (the sink's,
# or 0 when the sink accepted nothing), client_result, out (file prefix
# for the sent and received bytes) and proxy_closed (its closed event).
run_stream() {
	local plan=$1
	local sink_before
	echo "$plan" >"$proxy_dir/plan"
	conn=$(($(proxy_connections) + 1))
	sink_before=$(hostile_sink_accepts "$sink_dir")
	out=$E2E_TMP/stream-$conn
	client_result=$(hostile_client standby stream --connect "127.0.0.1:$E2E_FORWARD_PORT" \
		--chunks "$chunks" --chunk-size "$chunk_size" --interval 0.05 --initial-delay 0.3 \
		--sent-file "$out.sent" --received-file "$out.received" --wait-seconds 8) \
		|| e2e_fail "$plan: raw_client.py stream failed: $client_result"
	e2e_retry 50 0.1 hostile_has_event "$proxy_dir" closed "$conn" \
		|| e2e_fail "$plan: the proxy did not see its connection $conn end within 5 s"
	proxy_closed=$(hostile_event "$proxy_dir" closed "$conn")
	sink_conn=0
	if [ "$(hostile_sink_accepts "$sink_dir")" -gt "$sink_before" ]; then
		sink_conn=$((sink_before + 1))
		e2e_retry 50 0.1 hostile_has_event "$sink_dir" closed "$sink_conn" \
			|| e2e_fail "$plan: the sink's connection $sink_conn did not end within 5 s"
	fi
	echo "    client: $(hostile_one_line "$client_result")"
	echo "    proxy:  $proxy_closed"
}

# The initiator's connection_closed line for the client's local port.
initiator_closed_line() {
	grep "event=connection_closed" "$initiator_log" \
		| grep -F " local=127.0.0.1:$(hostile_value "$client_result" local_port) " | tail -n 1
}

# The responder's line of EVENT for the proxy's upstream port of conn.
responder_line() {
	local event=$1 upstream_port
	upstream_port=$(hostile_value "$(hostile_event "$proxy_dir" upstream "$conn")" upstream_port)
	grep "event=$event " "$responder_log" | grep -F " addr=$E2E_STANDBY_ADDR:$upstream_port " | tail -n 1
}

responder_closed_logged() { [ -n "$(responder_line connection_closed)" ]; }
responder_rejected_logged() { [ -n "$(responder_line handshake_rejected)" ]; }
initiator_closed_logged() { [ -n "$(initiator_closed_line)" ]; }

# A clean connection through the untouched proxy: every byte comes back,
# the sink got exactly what was sent, and both sides end without a reset.
check_clean_stream() {
	local what=$1
	run_stream pass
	[ "$(hostile_value "$proxy_closed" tampered)" = no ] \
		|| e2e_fail "$what: the proxy tampered with a connection planned as pass"
	[ "$(hostile_value "$client_result" end)" = eof ] \
		|| e2e_fail "$what: the clean connection ended with '$(hostile_value "$client_result" end)', expected eof"
	[ "$(hostile_value "$client_result" sent)" = $((chunks * chunk_size)) ] \
		|| e2e_fail "$what: the client sent $(hostile_value "$client_result" sent) bytes, expected $((chunks * chunk_size))"
	cmp -s "$out.sent" "$out.received" \
		|| e2e_fail "$what: the echo through the tunnel differs from what the client sent"
	[ "$sink_conn" -gt 0 ] || e2e_fail "$what: the sink accepted no connection"
	cmp -s "$out.sent" "$sink_dir/conn-$sink_conn.bin" \
		|| e2e_fail "$what: the sink received other bytes than the client sent"
	[ "$(hostile_value "$(hostile_event "$sink_dir" closed "$sink_conn")" end)" = eof ] \
		|| e2e_fail "$what: the sink's connection did not end with a clean EOF"
}

# One tampered connection: MODE DIRECTION, on record tamper_index.
check_tampered_stream() {
	local mode=$1 direction=$2
	local plan="$mode $direction $tamper_index"
	local clean_bytes client_end sink_end sender_file receiver_file receiver_size
	local detector_line other_line

	run_stream "$plan"
	[ "$(hostile_value "$proxy_closed" tampered)" = yes ] \
		|| e2e_fail "$plan: the proxy never tampered (the stream had fewer than $((tamper_index + 1)) records $direction)"
	if grep -q "^event=error conn=$conn " "$proxy_dir/events.log"; then
		e2e_fail "$plan: the proxy could not carry out the plan: $(grep "^event=error conn=$conn " "$proxy_dir/events.log")"
	fi
	clean_bytes=$(hostile_value "$proxy_closed" clean_body_bytes)

	client_end=$(hostile_value "$client_result" end)
	[ "$client_end" = reset ] \
		|| e2e_fail "$plan: the client's connection ended with '$client_end', expected a reset"
	[ "$sink_conn" -gt 0 ] || e2e_fail "$plan: the sink accepted no connection"
	sink_end=$(hostile_value "$(hostile_event "$sink_dir" closed "$sink_conn")" end)
	[ "$sink_end" = reset ] \
		|| e2e_fail "$plan: the sink's connection ended with '$sink_end', expected a reset"

	# Up: the client sends, the sink receives. Down: the sink's echo is
	# what it sent, and the client receives.
	if [ "$direction" = up ]; then
		sender_file=$out.sent
		receiver_file=$sink_dir/conn-$sink_conn.bin
	else
		sender_file=$sink_dir/conn-$sink_conn.bin
		receiver_file=$out.received
	fi
	receiver_size=$(stat -c %s "$receiver_file")
	echo "    receiving end got $receiver_size bytes; records before the tampered one carried $clean_bytes"
	is_prefix "$receiver_file" "$sender_file" \
		|| e2e_fail "$plan: the receiving end got bytes that the sending end never sent (not a prefix)"
	[ "$receiver_size" -le "$clean_bytes" ] \
		|| e2e_fail "$plan: the receiving end got $receiver_size bytes, more than the $clean_bytes bytes of the records before the tampered one"
	[ "$receiver_size" -gt 0 ] \
		|| e2e_fail "$plan: the receiving end got nothing, so the records before the tampered one were lost too"
	if [ "$direction" = up ]; then
		is_prefix "$out.received" "$out.sent" \
			|| e2e_fail "$plan: the client's echo is not a prefix of what it sent"
	fi

	e2e_retry 30 0.1 responder_closed_logged \
		|| e2e_fail "$plan: the responder logged no connection_closed line for this connection"
	e2e_retry 30 0.1 initiator_closed_logged \
		|| e2e_fail "$plan: the initiator logged no connection_closed line for the client's port"
	local responder_closed initiator_closed initiator_conn
	responder_closed=$(responder_line connection_closed)
	initiator_closed=$(initiator_closed_line)
	initiator_conn=$(hostile_value "$initiator_closed" conn)
	if [ "$direction" = up ]; then
		detector_line=$(responder_line tunnel_error)
		[ -n "$detector_line" ] \
			|| e2e_fail "$plan: the responder logged no tunnel_error for the changed record"
	else
		detector_line=$(grep "event=tunnel_error " "$initiator_log" | grep -F " conn=$initiator_conn " | tail -n 1)
		[ -n "$detector_line" ] \
			|| e2e_fail "$plan: the initiator logged no tunnel_error for the changed record (conn=$initiator_conn)"
	fi
	echo "    detected: level=${detector_line#* level=}"
	for other_line in "$responder_closed" "$initiator_closed"; do
		case "$other_line" in
		*"level=warn event=connection_closed "*'reason="'?*) ;;
		*) e2e_fail "$plan: expected a warn connection_closed line with a reason, got: $other_line" ;;
		esac
		echo "    closed:   level=${other_line#* level=}"
	done

	for node in primary standby; do
		e2e_daemon_alive "$node" || e2e_fail "$plan: walguard on the $node exited"
	done
}

e2e_step "a clean connection through the proxy"
check_clean_stream "before any tampering"
initiation=$proxy_dir/conn-$conn.initiation
[ "$(stat -c %s "$initiation")" = 112 ] \
	|| e2e_fail "the proxy saw a $(stat -c %s "$initiation")-byte first message, expected a 112-byte initiation"
up_records=$(hostile_value "$proxy_closed" up_records)
down_records=$(hostile_value "$proxy_closed" down_records)
# OPEN, a DATA record per chunk (or fewer, merged), FIN; the echo the same less OPEN.
if [ "$up_records" -lt $((tamper_index + 2)) ] || [ "$down_records" -lt $((tamper_index + 2)) ]; then
	e2e_fail "the clean stream had $up_records records up and $down_records down, too few to tamper with record $tamper_index"
fi

for mode in flip flip-length drop duplicate swap replay; do
	for direction in up down; do
		e2e_step "$mode record $tamper_index going $direction, then a clean connection"
		check_tampered_stream "$mode" "$direction"
		check_clean_stream "after $mode $direction"
	done
done

e2e_step "a changed OPEN record: the responder rejects the handshake"
sink_accepts_before=$(hostile_sink_accepts "$sink_dir")
run_stream "flip up 0"
[ "$(hostile_value "$proxy_closed" tampered)" = yes ] \
	|| e2e_fail "flip up 0: the proxy never tampered with the OPEN record"
[ "$(hostile_value "$client_result" end)" = reset ] \
	|| e2e_fail "flip up 0: the client's connection ended with '$(hostile_value "$client_result" end)', expected a reset"
[ "$(hostile_sink_accepts "$sink_dir")" = "$sink_accepts_before" ] \
	|| e2e_fail "flip up 0: the responder connected to the forward_target although the OPEN record was changed"
[ "$(stat -c %s "$out.received")" = 0 ] \
	|| e2e_fail "flip up 0: the client received $(stat -c %s "$out.received") bytes"
e2e_retry 30 0.1 responder_rejected_logged \
	|| e2e_fail "flip up 0: the responder logged no handshake_rejected line for the changed OPEN record"
echo "    responder: $(responder_line handshake_rejected | sed 's/^.* level=/level=/')"
check_clean_stream "after a changed OPEN record"

e2e_step "check the daemons at the end"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
for node in standby primary; do
	status=0
	e2e_daemon_stop "$node" || status=$?
	[ "$status" -eq 0 ] || e2e_fail "walguard on the $node exited with status $status on SIGTERM, expected 0"
done

e2e_print_total_time
