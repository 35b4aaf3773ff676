#!/bin/bash
# End-to-end test: the metrics listener of both daemons while a standby
# streams from its primary through them.
#
# Each daemon has metrics_listen = 127.0.0.1:9187 in its namespace. The
# test scrapes both with curl and checks the text format: every sample
# has HELP and TYPE lines. It checks the counters that replication must
# have moved (handshakes, open connections, bytes both ways, last
# handshake time), and that the byte counters grow when the primary
# writes. Then it sends bad requests (wrong method, wrong path, garbage,
# a head over 4096 bytes, HTTP/2.0) and checks each status code. It keeps
# 8 silent connections open so that a 9th client is reset, and checks
# that the silent ones are closed by the request timeout and that scrapes
# work again. Replication must stream throughout, and the metrics port
# must not be reachable from the other namespace.
#
# Run as root: bash tests/e2e/metrics.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS metrics" or "FAIL metrics: REASON"; the exit
# status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

tools=$(cd "$(dirname "$0")/tools" && pwd)
metrics_port=9187
max_clients=8

rec_init metrics 150
command -v curl >/dev/null || e2e_fail "curl not found; run scripts/install-deps.sh as root"
rec_option both metrics_listen "127.0.0.1:$metrics_port"
rec_setup_all

# Print the response of NODE's metrics listener to curl ARGS... (head and body).
scrape() {
	local node=$1
	shift
	ip netns exec "$(e2e_namespace_of "$node")" curl -sS -i --max-time 10 "$@" \
		"http://127.0.0.1:$metrics_port/metrics"
}

# Print the value of the sample NAME (with its labels, as written) in TEXT.
sample() {
	local text=$1 name=$2
	printf '%s\n' "$text" | awk -v name="$name" '$1 == name { print $2; found = 1 } END { exit !found }'
}

# Send raw TEXT to NODE's metrics listener and print the response's status line.
probe() {
	local node=$1 text=$2
	ip netns exec "$(e2e_namespace_of "$node")" python3 "$tools/http_probe.py" send 127.0.0.1 "$metrics_port" "$text" \
		| head -n 1 | tr -d '\r'
}

check_format() {
	local node=$1 text=$2 line name
	local -A described=()
	while IFS= read -r line; do
		case "$line" in
		'# HELP '* | '# TYPE '*)
			name=${line#\# ???? }
			name=${name%% *}
			described[$name]=$((${described[$name]:-0} + 1))
			;;
		'#'* | '') e2e_fail "the $node's metrics have an unexpected line: '$line'" ;;
		*)
			[[ $line =~ ^([a-z_]+)(\{[a-z_]+=\"[^\"]*\"\})?\ -?[0-9]+$ ]] \
				|| e2e_fail "the $node's metrics have a malformed sample: '$line'"
			name=${BASH_REMATCH[1]}
			[ "${described[$name]:-0}" -eq 2 ] \
				|| e2e_fail "the $node's sample '$line' comes without one HELP and one TYPE line before it"
			;;
		esac
	done <<<"$text"
}

e2e_step "scrape both daemons while the standby streams"
declare -A bodies
for node in primary standby; do
	response=$(scrape "$node") || e2e_fail "scraping the $node's metrics failed: $response"
	head=${response%%$'\r\n\r\n'*}
	body=${response#*$'\r\n\r\n'}
	case "$head" in
	'HTTP/1.1 200 OK'*) ;;
	*) e2e_fail "the $node's metrics answered '$(head -n 1 <<<"$head")', expected HTTP/1.1 200 OK" ;;
	esac
	grep -qi '^Content-Type: text/plain; version=0.0.4' <<<"$head" \
		|| e2e_fail "the $node's metrics have no Prometheus text content type: $head"
	check_format "$node" "$body"
	bodies[$node]=$body
	echo "    the $node's daemon sent $(wc -l <<<"$body") lines of metrics"
done

now=$(date +%s)
declare -A peer_of=([primary]=standby [standby]=primary)
for node in primary standby; do
	body=${bodies[$node]}
	peer=${peer_of[$node]}
	completed=$(sample "$body" walguard_handshakes_completed_total) \
		|| e2e_fail "the $node's metrics have no walguard_handshakes_completed_total"
	[ "$completed" -ge 1 ] || e2e_fail "the $node counts $completed completed handshakes, expected at least 1"
	connections=$(sample "$body" "walguard_peer_connections{peer=\"$peer\"}") \
		|| e2e_fail "the $node's metrics have no walguard_peer_connections for peer $peer"
	[ "$connections" -ge 1 ] \
		|| e2e_fail "the $node counts $connections open connections with $peer, expected the walreceiver's"
	last=$(sample "$body" "walguard_peer_last_handshake_time_seconds{peer=\"$peer\"}") \
		|| e2e_fail "the $node's metrics have no last handshake time for peer $peer"
	started=$(sample "$body" walguard_start_time_seconds) \
		|| e2e_fail "the $node's metrics have no walguard_start_time_seconds"
	[ "$last" -ge "$started" ] && [ "$last" -le "$now" ] \
		|| e2e_fail "the $node's last handshake time $last is not between its start $started and now $now"
	for direction in sent received; do
		bytes=$(sample "$body" "walguard_peer_${direction}_bytes_total{peer=\"$peer\"}") \
			|| e2e_fail "the $node's metrics have no walguard_peer_${direction}_bytes_total for peer $peer"
		[ "$bytes" -gt 0 ] || e2e_fail "the $node counts no bytes $direction with $peer after a base backup"
	done
	rejected=$(sample "$body" walguard_handshakes_rejected_total) \
		|| e2e_fail "the $node's metrics have no walguard_handshakes_rejected_total"
	[ "$rejected" -eq 0 ] || e2e_fail "the $node counts $rejected rejected handshakes with only real peers"
	echo "    $node: $completed handshakes, $connections connections with $peer, last handshake at $last"
done

e2e_step "write on the primary: the byte counters grow"
before=$(sample "${bodies[standby]}" 'walguard_peer_received_bytes_total{peer="primary"}')
e2e_sql primary walguard_test "INSERT INTO recovery_markers (label) SELECT 'metrics-' || n FROM generate_series(1, 5000) AS n" >/dev/null \
	|| e2e_fail "writing 5000 rows on the primary failed"
rec_wait_replayed primary standby 30
after=$(scrape standby | awk '$1 == "walguard_peer_received_bytes_total{peer=\"primary\"}" { print $2 }')
[ -n "$after" ] && [ "$after" -gt "$before" ] \
	|| e2e_fail "the standby's received bytes went from $before to '$after' while 5000 rows were replicated"
echo "    the standby's received bytes went from $before to $after"

e2e_step "bad requests get the right status codes"
check_status() {
	local what=$1 expected=$2 text=$3 status
	status=$(probe standby "$text")
	[ "$status" = "$expected" ] || e2e_fail "$what: expected '$expected', got '$status'"
	echo "    $what: $status"
}
check_status "HEAD /metrics" "HTTP/1.1 200 OK" 'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
check_status "POST /metrics" "HTTP/1.1 405 Method Not Allowed" 'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n'
check_status "GET /" "HTTP/1.1 404 Not Found" 'GET / HTTP/1.1\r\n\r\n'
check_status "garbage" "HTTP/1.1 400 Bad Request" 'hello there\r\n\r\n'
check_status "a TLS client hello" "HTTP/1.1 400 Bad Request" '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n\n'
check_status "HTTP/2.0" "HTTP/1.1 505 HTTP Version Not Supported" 'GET /metrics HTTP/2.0\r\n\r\n'
long_header=$(printf 'X-Padding: %05000d\\r\\n' 0)
check_status "a 5000-byte header" "HTTP/1.1 431 Request Header Fields Too Large" "GET /metrics HTTP/1.1\\r\\n$long_header\\r\\n"
allow=$(ip netns exec "$E2E_NS_STANDBY" python3 "$tools/http_probe.py" send 127.0.0.1 "$metrics_port" \
	'DELETE /metrics HTTP/1.1\r\n\r\n' | tr -d '\r' | grep -i '^Allow:' || true)
[ "$allow" = "Allow: GET, HEAD" ] || e2e_fail "a 405 response came with '$allow', expected 'Allow: GET, HEAD'"

e2e_step "hold $max_clients silent connections: a further client is reset"
standby_mark=$(rec_log_mark standby)
holder_output=$E2E_TMP/holders.out
ip netns exec "$E2E_NS_STANDBY" python3 "$tools/http_probe.py" hold 127.0.0.1 "$metrics_port" "$max_clients" \
	>"$holder_output" 2>&1 &
holder_job=$!
holding() { grep -q '^holding' "$holder_output"; }
rec_wait_until 10 "the holder to open $max_clients connections" holding
if response=$(scrape standby 2>&1); then
	e2e_fail "a client beyond $max_clients silent ones was served: $(head -n 1 <<<"$response")"
fi
echo "    the client beyond the limit failed: $(head -n 1 <<<"$response")"
rec_wait_until 5 "a log line about the rejected client" \
	rec_log_has standby "$standby_mark" 'event=metrics_request_rejected .*too many metrics clients'

e2e_step "the silent connections time out, then scrapes work again"
status=0
wait "$holder_job" || status=$?
[ "$status" -eq 0 ] || e2e_fail "the holder exited with status $status: $(cat "$holder_output")"
closed=$(grep -c '^closed after' "$holder_output" || true)
[ "$closed" -eq "$max_clients" ] \
	|| e2e_fail "$closed of $max_clients silent connections were closed by the daemon: $(cat "$holder_output")"
echo "    the daemon closed all $max_clients: $(grep '^closed after' "$holder_output" | head -n 1)"
rec_log_has standby "$standby_mark" 'event=metrics_request_rejected .*no complete request within' \
	|| e2e_fail "the standby's daemon logged nothing about the silent metrics clients"
scrape_works() { scrape standby >/dev/null 2>&1; }
rec_wait_until 10 "a scrape to work again" scrape_works

e2e_step "the metrics port is closed to the other namespace"
if ip netns exec "$E2E_NS_STANDBY" curl -sS --max-time 5 "http://$E2E_PRIMARY_ADDR:$metrics_port/metrics" \
	>"$E2E_TMP/remote.out" 2>&1; then
	e2e_fail "the primary's metrics answered on $E2E_PRIMARY_ADDR:$metrics_port: $(head -n 3 "$E2E_TMP/remote.out")"
fi
echo "    from the standby: $(head -n 1 "$E2E_TMP/remote.out")"

e2e_step "replication kept streaming"
rec_is_streaming primary standby || e2e_fail "the standby no longer streams"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
rec_compare_clusters primary standby

e2e_print_total_time
