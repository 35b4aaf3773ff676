#!/bin/bash
# End-to-end test: a stranger who connects to the responder's tunnel port
# gets not one byte back, and cannot stop it from serving its real peer.
#
# The responder runs in the primary namespace on 198.18.0.1:5434, with
# sink.py (echo) as its forward_target. The real initiator and every
# stranger run in the standby namespace. The strangers send:
#
#   garbage        random bytes that are not a walguard initiation
#   random-header  112 random bytes behind a valid initiation header
#   http           an HTTP request
#   unknown-key    a full initiation from a real walguard daemon whose
#                  key the responder does not pin
#   other-host     a full initiation from the real peer's key, made for
#                  another responder's public key
#   truncated      the first 50 bytes of a real initiation, then silence
#   silent         nothing at all
#
# The two daemon-made initiations pass through mitm_proxy.py, which
# records the bytes in each direction. After each kind the responder must
# have logged handshake_rejected with the stranger's address, the real
# peer's connection must still work and no stranger may reach the
# forward_target. A burst of 200 garbage connections must produce far
# fewer than 200 log lines, and a later line must count the suppressed
# ones.
#
# Run as root: bash tests/e2e/strangers.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS strangers" or "FAIL strangers: REASON"; the exit
# status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

e2e_init strangers
e2e_start_watchdog 100
e2e_find_binaries
hostile_find_python

# Seconds: the responder's handshake_timeout, and how much later than
# that a silent stranger may still be connected.
handshake_timeout=2
close_margin=1.5

responder="$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT"
unknown_port=5443
other_host_port=5444

e2e_step "create the namespaces and the veth link"
e2e_setup_network

e2e_step "make keys and configs for the peers and two stranger daemons"
e2e_make_keys
keys=$E2E_TMP/keys
(cd "$keys" && "$WALGUARD_KEYGEN" pair stranger >/dev/null && "$WALGUARD_KEYGEN" pair elsewhere >/dev/null) \
	|| e2e_fail "walguard-keygen pair failed for the stranger keys"
config=$E2E_TMP/config
hostile_write_responder_config "$config/primary.conf" "$keys/primary.key" \
	"$(e2e_public_key standby)" "$keys/link.psk" "$responder" "127.0.0.1:$E2E_PG_PORT" \
	"handshake_timeout = ${handshake_timeout}s"
hostile_write_initiator_config "$config/standby.conf" "$keys/standby.key" \
	"$(e2e_public_key primary)" "$keys/link.psk" "$responder" "127.0.0.1:$E2E_FORWARD_PORT"
# A host the responder has never heard of, pinning the right responder
# key. connect_timeout = 0 makes each stranger daemon dial once per client.
hostile_write_initiator_config "$config/unknown.conf" "$keys/stranger.key" \
	"$(e2e_public_key primary)" - "127.0.0.1:$HOSTILE_PROXY_PORT" "127.0.0.1:$unknown_port" \
	"connect_timeout = 0"
# The real peer's key and PSK, but an initiation made for another host's key.
hostile_write_initiator_config "$config/other-host.conf" "$keys/standby.key" \
	"$(cat "$keys/elsewhere.pub")" "$keys/link.psk" "127.0.0.1:$HOSTILE_PROXY_PORT" "127.0.0.1:$other_host_port" \
	"connect_timeout = 0"
for name in primary standby unknown other-host; do
	"$WALGUARD_BIN" --check --config "$config/$name.conf" >"$E2E_TMP/logs/$name-check.out" 2>&1 \
		|| e2e_fail "walguard --check rejected $name.conf (see $name-check.out above)"
done

e2e_step "start the sink, the daemons and the proxy"
sink_dir=$E2E_TMP/sink
proxy_dir=$E2E_TMP/proxy
hostile_sink_start primary "127.0.0.1:$E2E_PG_PORT" "$sink_dir"
hostile_daemon_start primary primary "$config/primary.conf" "$responder"
hostile_daemon_start standby standby "$config/standby.conf" "127.0.0.1:$E2E_FORWARD_PORT"
hostile_proxy_start "$responder" "$proxy_dir"
hostile_daemon_start unknown standby "$config/unknown.conf" "127.0.0.1:$unknown_port"
hostile_daemon_start other-host standby "$config/other-host.conf" "127.0.0.1:$other_host_port"
responder_log=$(e2e_daemon_log primary)

e2e_step "check the real peer's connection before any stranger"
hostile_check_tunnel_works "before the strangers"
tunnel_checks=1

# Wait for the responder's handshake_rejected line about ADDRESS and print it.
rejected_line() {
	grep -F "event=handshake_rejected" "$responder_log" | grep -F " addr=$1 " | tail -n 1
}

rejected_line_logged() {
	[ -n "$(rejected_line "$1")" ]
}

# After the stranger KIND came from ADDRESS: check the responder's log
# line, that it still runs, and that the real peer still gets through.
check_after_stranger() {
	local kind=$1 address=$2
	e2e_retry 20 0.1 rejected_line_logged "$address" \
		|| e2e_fail "$kind: the responder logged no handshake_rejected line with addr=$address"
	echo "    responder: $(rejected_line "$address" | sed 's/^.* level=/level=/')"
	e2e_daemon_alive primary || e2e_fail "$kind: the responder exited after the stranger"
	hostile_check_tunnel_works "after the $kind stranger"
	tunnel_checks=$((tunnel_checks + 1))
}

# Check that the probe RESULT got zero bytes and saw the connection closed
# (EOF or reset) before its wait ran out. MAX_SECONDS bounds how long the
# responder took to close, and MIN_SECONDS, when given, is the least.
check_probe() {
	local kind=$1 result=$2 max_seconds=$3 min_seconds=${4:-0}
	local received end elapsed
	received=$(hostile_value "$result" received)
	end=$(hostile_value "$result" end)
	elapsed=$(hostile_value "$result" elapsed)
	echo "    $kind: received $received bytes, connection end: $end after $elapsed s"
	[ "$received" = 0 ] \
		|| e2e_fail "$kind: the responder sent $received bytes to a stranger (first bytes: $(hostile_value "$result" received_hex))"
	case "$end" in
	eof | reset) ;;
	*) e2e_fail "$kind: the responder did not close the connection within the wait (end: $end after $elapsed s)" ;;
	esac
	awk -v elapsed="$elapsed" -v max="$max_seconds" 'BEGIN { exit !(elapsed <= max) }' \
		|| e2e_fail "$kind: the responder closed the connection after $elapsed s, expected within $max_seconds s"
	awk -v elapsed="$elapsed" -v min="$min_seconds" 'BEGIN { exit !(elapsed >= min) }' \
		|| e2e_fail "$kind: the responder closed the connection after $elapsed s, before the handshake_timeout of $min_seconds s ran out"
}

# Send a probe from the standby namespace straight to the responder, then
# run both checks.
probe_responder() {
	local kind=$1 max_seconds=$2 min_seconds=$3
	shift 3
	local result
	result=$(hostile_client standby probe --connect "$responder" --wait-seconds 8 "$@") \
		|| e2e_fail "$kind: raw_client.py failed: $result"
	check_probe "$kind" "$result" "$max_seconds" "$min_seconds"
	check_after_stranger "$kind" "$E2E_STANDBY_ADDR:$(hostile_value "$result" local_port)"
}

# A stranger daemon's initiation goes through the proxy: connect a client
# to the daemon's forward_listen PORT, then read what the proxy saw.
probe_through_daemon() {
	local kind=$1 daemon=$2 port=$3
	local conn result closed up_bytes down_bytes upstream_port
	conn=$(($(grep -c '^event=accepted ' "$proxy_dir/events.log" 2>/dev/null || true) + 1))

	result=$(hostile_client standby probe --connect "127.0.0.1:$port" \
		--send-text "SELECT 'from a stranger'" --wait-seconds 8) \
		|| e2e_fail "$kind: raw_client.py failed: $result"
	# The client of the stranger daemon gets nothing either.
	check_probe "$kind (client of the $daemon daemon)" "$result" 6

	e2e_retry 50 0.1 hostile_has_event "$proxy_dir" closed "$conn" \
		|| e2e_fail "$kind: the proxy did not see connection $conn of the $daemon daemon end"
	closed=$(hostile_event "$proxy_dir" closed "$conn")
	up_bytes=$(hostile_value "$closed" up_bytes)
	down_bytes=$(hostile_value "$closed" down_bytes)
	echo "    $kind: the $daemon daemon sent $up_bytes bytes, the responder sent back $down_bytes"
	[ "$up_bytes" = 112 ] \
		|| e2e_fail "$kind: the $daemon daemon sent $up_bytes bytes, expected one 112-byte initiation"
	[ "$down_bytes" = 0 ] \
		|| e2e_fail "$kind: the responder sent $down_bytes bytes to the $daemon daemon, expected none"
	grep -q "event=handshake_failed .*without a handshake response" "$(e2e_daemon_log "$daemon")" \
		|| e2e_fail "$kind: the $daemon daemon did not log that the peer closed without a handshake response"

	upstream_port=$(hostile_value "$(hostile_event "$proxy_dir" upstream "$conn")" upstream_port)
	check_after_stranger "$kind" "$E2E_STANDBY_ADDR:$upstream_port"
	cp "$proxy_dir/conn-$conn.initiation" "$E2E_TMP/$daemon.initiation"
}

e2e_step "stranger sends random garbage"
probe_responder garbage 1 0 --send-random 300

e2e_step "stranger sends 112 random bytes behind an initiation header"
probe_responder random-header 1 0 --send-random 112 --random-header

e2e_step "stranger sends an HTTP request"
probe_responder http 1 0 \
	--send-text 'GET / HTTP/1.1\r\nHost: 198.18.0.1:5434\r\nUser-Agent: walguard-test\r\n\r\n'

e2e_step "stranger daemon with a key the responder does not pin"
probe_through_daemon unknown-key unknown "$unknown_port"

e2e_step "real peer's key, initiation made for another responder key"
probe_through_daemon other-host other-host "$other_host_port"

e2e_step "stranger sends the first 50 bytes of an initiation, then waits"
initiation=$E2E_TMP/unknown.initiation
[ "$(stat -c %s "$initiation")" = 112 ] \
	|| e2e_fail "the proxy recorded $(stat -c %s "$initiation") bytes of the unknown daemon's initiation, expected 112"
[ "$(head -c 4 "$initiation" | od -An -tx1 | tr -d ' \n')" = 01000000 ] \
	|| e2e_fail "the recorded initiation does not start with the header 01 00 00 00"
probe_responder truncated "$(awk -v t="$handshake_timeout" -v m="$close_margin" 'BEGIN { print t + m }')" \
	"$(awk -v t="$handshake_timeout" 'BEGIN { print t * 0.9 }')" \
	--send-file "$initiation" --truncate 50

e2e_step "stranger connects and sends nothing"
probe_responder silent "$(awk -v t="$handshake_timeout" -v m="$close_margin" 'BEGIN { print t + m }')" \
	"$(awk -v t="$handshake_timeout" 'BEGIN { print t * 0.9 }')"

e2e_step "no stranger reached the forward_target"
accepts=$(hostile_sink_accepts "$sink_dir")
echo "    the sink accepted $accepts connections; the real peer made $tunnel_checks"
[ "$accepts" = "$tunnel_checks" ] \
	|| e2e_fail "the forward_target accepted $accepts connections, but only $tunnel_checks came from the real peer"

e2e_step "burst of 200 garbage connections"
lines_before=$(grep -c "event=handshake_rejected" "$responder_log" || true)
result=$(hostile_client standby probe --connect "$responder" --send-random 64 --count 200 --wait-seconds 3) \
	|| e2e_fail "raw_client.py failed during the burst: $result"
echo "    $(hostile_one_line "$result")"
[ "$(hostile_value "$result" received_total)" = 0 ] \
	|| e2e_fail "the responder sent $(hostile_value "$result" received_total) bytes to the 200 garbage connections"
[ "$(hostile_value "$result" not_closed)" = 0 ] \
	|| e2e_fail "$(hostile_value "$result" not_closed) of the 200 garbage connections were not closed within 3 s"
lines_after=$(grep -c "event=handshake_rejected" "$responder_log" || true)
burst_lines=$((lines_after - lines_before))
echo "    the burst produced $burst_lines handshake_rejected lines"
[ "$burst_lines" -lt 50 ] \
	|| e2e_fail "200 garbage connections produced $burst_lines handshake_rejected lines, expected far fewer (rate limit)"
e2e_daemon_alive primary || e2e_fail "the responder exited during the burst"
hostile_check_tunnel_works "after the burst"
tunnel_checks=$((tunnel_checks + 1))

e2e_step "a later rejection reports the suppressed lines"
# The rate limit window is 10 s long: send one garbage connection a
# second until a line with suppressed > 0 appears, for up to 15 s.
suppressed_line() {
	hostile_client standby probe --connect "$responder" --send-random 64 --wait-seconds 2 >/dev/null || return 1
	tail -n +"$((lines_after + 1))" <(grep "event=handshake_rejected" "$responder_log") \
		| grep -qE " suppressed=[1-9][0-9]* "
}
e2e_retry 15 1 suppressed_line \
	|| e2e_fail "no handshake_rejected line with suppressed > 0 appeared within 15 s after the burst"
echo "    $(grep "event=handshake_rejected" "$responder_log" | grep -E " suppressed=[1-9]" | tail -n 1 | sed 's/^.* level=/level=/')"

e2e_step "check the daemons and the forward_target at the end"
e2e_daemon_alive primary || e2e_fail "the responder has exited"
e2e_daemon_alive standby || e2e_fail "the real initiator has exited"
accepts=$(hostile_sink_accepts "$sink_dir")
[ "$accepts" = "$tunnel_checks" ] \
	|| e2e_fail "the forward_target accepted $accepts connections, but only $tunnel_checks came from the real peer"
if grep -h "level=error" "$responder_log"; then
	e2e_fail "the responder logged errors (lines above)"
fi
status=0
e2e_daemon_stop primary || status=$?
[ "$status" -eq 0 ] || e2e_fail "the responder exited with status $status on SIGTERM, expected 0"

e2e_print_total_time
