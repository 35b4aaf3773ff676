#!/bin/bash
# End-to-end test: a flood of bogus initiations over UDP does not starve
# the real peer, and the primary's key work and memory stay bounded.
#
# The standby streams from the primary over the UDP transport, with
# rekey_interval = 2s, so that the real standby keeps making new
# handshakes. Three extra addresses on the standby's end of the veth link
# (198.18.0.11 to .13) send initiations without a pause: the walguard
# header and random bytes of the right length, so that each one parses and
# can only fail to authenticate. While they do, the test waits for the
# real standby to complete new handshakes, and 20 psql clients connect
# through the tunnel one after another.
#
# Every client must succeed, the walreceiver must keep its connection, no
# flood datagram may get a reply, the primary's status line must show
# initiations refused before any key work, and the primary's RSS may grow
# by at most 2 MiB.
#
# Run as root: bash tests/e2e/udp_flood.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS udp_flood" or "FAIL udp_flood: REASON"; the exit
# status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"
UDP_PRIMARY_DIALS=0
# shellcheck source=tests/e2e/udp_lib.sh
. "$(dirname "$0")/udp_lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

tools=$(cd "$(dirname "$0")/tools" && pwd)
primary_udp="$E2E_PRIMARY_ADDR:$UDP_PORT"
flood_addresses=(198.18.0.11 198.18.0.12 198.18.0.13)
client_count=20
max_rss_growth_kib=2048

rec_init udp_flood 150
hostile_find_python
rec_option both rekey_interval 2s
rec_setup_all

# Log a status line from the primary's daemon and print the number in
# its field NAME.
primary_status_field() {
	local name=$1 mark
	mark=$(rec_log_mark primary)
	kill -USR1 "$(rec_daemon_pid primary)"
	rec_wait_until 5 "a status line from the primary's daemon" \
		rec_log_has primary "$mark" 'event=status '
	rec_log_since primary "$mark" | grep 'event=status ' | tail -n 1 \
		| sed -n "s/.* $name=\([0-9]*\).*/\1/p"
}

# Send bogus initiations from ADDRESS until the stop file exists, and
# append udp_probe.py's result lines to OUTPUT.
flood() {
	local address=$1 output=$2
	while [ ! -e "$E2E_TMP/flood.stop" ]; do
		ip netns exec "$E2E_NS_STANDBY" python3 "$tools/udp_probe.py" send --to "$primary_udp" \
			--bind "$address" --header 1 --random 116 --count 500 --wait-seconds 0.2 \
			>>"$output" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- || break
	done
}

responder_handshakes() {
	rec_log_count primary "$1" 'event=handshake_complete .*transport=udp role=responder'
}

e2e_step "record the baseline"
for address in "${flood_addresses[@]}"; do
	ip -n "$E2E_NS_STANDBY" address add "$address/24" dev "$E2E_VETH_STANDBY"
done
walsender_before=$(rec_walsender_pid primary standby)
rss_before=$(rec_rss_kib primary)
rate_limited_before=$(primary_status_field handshakes_rate_limited)
echo "    the primary's daemon uses $rss_before KiB; $rate_limited_before initiations rate-limited so far"

e2e_step "flood the primary from ${#flood_addresses[@]} addresses"
flood_mark=$(rec_log_mark primary)
flood_jobs=()
for address in "${flood_addresses[@]}"; do
	flood "$address" "$E2E_TMP/flood-$address.out" &
	flood_jobs+=($!)
done
flooding() { [ -s "$E2E_TMP/flood-${flood_addresses[0]}.out" ]; }
rec_wait_until 20 "the first flood round to finish" flooding

e2e_step "the real standby completes handshakes during the flood"
two_handshakes() { [ "$(responder_handshakes "$flood_mark")" -ge 2 ]; }
rec_wait_until 30 "two handshakes from the real standby during the flood" two_handshakes
echo "    $(responder_handshakes "$flood_mark") handshakes with the standby since the flood began"

e2e_step "$client_count psql clients connect through the tunnel during the flood"
tunnel="host=127.0.0.1 port=$E2E_FORWARD_PORT dbname=walguard_test sslmode=disable connect_timeout=20"
for i in $(seq "$client_count"); do
	result=$(e2e_psql_from_standby app "$tunnel" "SELECT $i" 2>&1) \
		|| e2e_fail "client $i of $client_count failed during the flood: $result"
	[ "$result" = "$i" ] || e2e_fail "client $i of $client_count got '$result', expected '$i'"
done
echo "    all $client_count clients succeeded"

e2e_step "stop the flood and check the primary"
touch "$E2E_TMP/flood.stop"
for job in "${flood_jobs[@]}"; do
	wait "$job" || true
done
sent=0
for address in "${flood_addresses[@]}"; do
	output=$E2E_TMP/flood-$address.out
	while read -r line; do
		[ "$(hostile_value "$line" received)" = 0 ] \
			|| e2e_fail "a flood datagram from $address got a reply: $line"
		sent=$((sent + $(hostile_value "$line" sent)))
	done < <(grep '^local_port=' "$output")
	grep -v '^local_port=' "$output" | head -n 3 | grep . && e2e_fail "udp_probe.py from $address printed errors (above)"
done
echo "    $sent bogus initiations sent, none answered"
[ "$sent" -ge 3000 ] || e2e_fail "only $sent bogus initiations were sent: the flood did not run"

rate_limited=$(($(primary_status_field handshakes_rate_limited) - rate_limited_before))
echo "    $rate_limited of them were refused before any key work"
[ "$rate_limited" -gt 0 ] || e2e_fail "no initiation was rate-limited: every one cost the primary its key work"
rss_after=$(rec_rss_kib primary)
echo "    the primary's daemon uses $rss_after KiB, $((rss_after - rss_before)) KiB more than before"
[ $((rss_after - rss_before)) -le "$max_rss_growth_kib" ] \
	|| e2e_fail "the primary's RSS grew by $((rss_after - rss_before)) KiB during the flood, more than $max_rss_growth_kib"

e2e_step "replication kept its connection"
[ "$(rec_walsender_pid primary standby)" = "$walsender_before" ] \
	|| e2e_fail "the walreceiver reconnected during the flood"
rec_mark after-flood
rec_compare_clusters primary standby
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done

e2e_print_total_time
