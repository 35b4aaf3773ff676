#!/bin/bash
# End-to-end test: forwarded connections over the UDP transport are
# ordered byte streams with half-close, alone and several at once.
#
# The primary's forward_target is sink.py, which echoes every chunk and
# shuts down its writing side after the client's end of stream. Clients
# in the standby's namespace send random chunks through the standby's
# daemon and shut down their writing side. Each must then read back
# exactly what it sent, and a clean end of stream: the FIN went one way
# while the echo still came the other way. Runs: small chunks, 4 MiB in 64 KiB
# chunks (eight times what SCTP buffers per direction), and eight
# connections at once. The primary allows eight connections from its peer
# (max_connections_per_peer). While eight are open, the primary must
# abort a ninth association as it accepts it, so that its client is reset
# with no byte back. The eight must still finish whole.
#
# Run as root: bash tests/e2e/udp_half_close.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS udp_half_close" or "FAIL udp_half_close:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"
# shellcheck source=tests/e2e/udp_lib.sh
. "$(dirname "$0")/udp_lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

UDP_PRIMARY_DIALS=0
max_connections=8
rec_init udp_half_close 120
rec_option primary max_connections_per_peer "$max_connections"
hostile_find_python
rec_setup_network_and_keys

e2e_step "start the echoing sink as the primary's forward_target"
sink_dir=$E2E_TMP/sink
hostile_sink_start primary "127.0.0.1:$E2E_PG_PORT" "$sink_dir"
rec_start_daemons

# Stream CHUNKS chunks of SIZE bytes through the tunnel and check the echo.
stream_once() {
	local what=$1 chunks=$2 size=$3 out result
	out=$E2E_TMP/stream-$RANDOM$RANDOM
	result=$(hostile_client standby stream --connect "127.0.0.1:$E2E_FORWARD_PORT" --chunks "$chunks" \
		--chunk-size "$size" --interval 0.01 --sent-file "$out.sent" --received-file "$out.received" \
		--wait-seconds 40) \
		|| { echo "$what: raw_client.py stream failed: $(hostile_one_line "$result")"; return 1; }
	if [ "$(hostile_value "$result" end)" != eof ] || [ "$(hostile_value "$result" send_error)" != none ] \
		|| [ "$(hostile_value "$result" sent)" -ne $((chunks * size)) ] || ! cmp -s "$out.sent" "$out.received"; then
		echo "$what: the echo did not come back whole with a clean end ($(hostile_one_line "$result"))"
		return 1
	fi
	echo "    $what: $(hostile_value "$result" sent) bytes sent and echoed, then a clean end of stream"
}

e2e_step "one connection, small chunks"
stream_once "small chunks" 20 100 || e2e_fail "small chunks did not echo whole"

e2e_step "one connection, 4 MiB in 64 KiB chunks"
stream_once "4 MiB" 64 65536 || e2e_fail "4 MiB did not echo whole"

e2e_step "eight connections at once"
pids=()
for i in $(seq 8); do
	stream_once "connection $i" 16 16384 >"$E2E_TMP/parallel-$i.out" 2>&1 &
	pids+=($!)
done
failed=0
for i in $(seq 8); do
	wait "${pids[$((i - 1))]}" || failed=$((failed + 1))
	sed 's/^/  /' "$E2E_TMP/parallel-$i.out"
done
[ "$failed" -eq 0 ] || e2e_fail "$failed of 8 parallel connections did not echo whole"

e2e_step "check the sink and the daemons after the clean runs"
accepts=$(hostile_sink_accepts "$sink_dir")
[ "$accepts" = 10 ] || e2e_fail "the sink accepted $accepts connections, expected 10"
e2e_retry 50 0.1 grep -q "event=closed conn=10 " "$sink_dir/events.log" || true
closed_clean=$(grep -c "^event=closed .* end=eof" "$sink_dir/events.log" || true)
[ "$closed_clean" = 10 ] || e2e_fail "the sink saw $closed_clean of 10 connections end cleanly"
clean_closes=$(grep -c 'event=connection_closed.*reason="closed by both sides"' "$(e2e_daemon_log primary)" || true)
echo "    the primary's daemon closed $clean_closes connections with reason=\"closed by both sides\""
[ "$clean_closes" = 10 ] || e2e_fail "the primary's daemon closed $clean_closes of 10 connections cleanly"
if grep -h "level=error\|level=warn" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged warnings or errors during the clean runs (lines above)"
fi

e2e_step "a ninth connection while $max_connections are open"
# Eight slow streams of about 15 s each hold every slot, longer than the
# ninth client's connect_timeout (5 s) plus one handshake_timeout (2 s).
pids=()
for i in $(seq "$max_connections"); do
	(
		out=$E2E_TMP/held-$i
		result=$(hostile_client standby stream --connect "127.0.0.1:$E2E_FORWARD_PORT" --chunks 150 \
			--chunk-size 1000 --interval 0.1 --sent-file "$out.sent" --received-file "$out.received" \
			--wait-seconds 50) || exit 1
		[ "$(hostile_value "$result" end)" = eof ] && cmp -s "$out.sent" "$out.received"
	) >"$E2E_TMP/held-$i.out" 2>&1 &
	pids+=($!)
done
open_on_primary() {
	[ "$(grep -c "event=connection_opened" "$(e2e_daemon_log primary)")" -ge $((10 + max_connections)) ]
}
e2e_wait_for "the primary to open the $max_connections held connections" 100 0.1 open_on_primary
result=$(hostile_client standby probe --connect "127.0.0.1:$E2E_FORWARD_PORT" --send-text "one too many" \
	--wait-seconds 12) || e2e_fail "raw_client.py probe failed: $result"
echo "    ninth client: $(hostile_one_line "$result")"
[ "$(hostile_value "$result" received)" = 0 ] \
	|| e2e_fail "the ninth connection got $(hostile_value "$result" received) bytes back, expected none"
case "$(hostile_value "$result" end)" in
eof | reset) ;;
*) e2e_fail "the ninth connection was not closed within the wait: $(hostile_one_line "$result")" ;;
esac
grep -q "event=connection_rejected.*max_connections_per_peer" "$(e2e_daemon_log primary)" \
	|| e2e_fail "the primary logged no connection_rejected line naming max_connections_per_peer"
echo "    primary: $(grep "event=connection_rejected" "$(e2e_daemon_log primary)" | tail -n 1 | sed 's/^.* level=/level=/')"
failed=0
for pid in "${pids[@]}"; do
	wait "$pid" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || e2e_fail "$failed of the $max_connections held connections did not echo whole"
echo "    the $max_connections held connections echoed whole and ended cleanly"

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
