#!/bin/bash
# End-to-end test: the standby's endpoint is a host name, and the primary
# moves to another address.
#
# The standby's config names the primary as primary-db. Only the standby
# namespace's hosts file (/etc/netns/NAMESPACE/hosts, which ip netns exec
# mounts over /etc/hosts) can resolve it. Its resolv.conf points at
# 127.0.0.1, where no DNS server runs, so no query leaves the namespace.
#
# First the standby's daemon starts while the name does not resolve: it
# must keep running, fail each dial with a clear error, and connect once
# the hosts file has the name, with no restart. Then, while pgbench
# writes, the primary gets a second address 198.18.0.3 and the hosts file
# points primary-db at it: the next dial must go there. When the old
# address 198.18.0.1 is removed, the walreceiver's tunnel connection
# stalls, times out, and the walreceiver must stream again through the
# new address, with every row on the standby.
#
# Run as root: bash tests/e2e/recovery_endpoint_change.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_endpoint_change" or "FAIL
# recovery_endpoint_change: REASON"; the exit status is 0, 1, or 77
# (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

endpoint_name=primary-db
new_address=198.18.0.3
connect_timeout=3

rec_init recovery_endpoint_change 150
REC_PRIMARY_ENDPOINT_HOST=$endpoint_name
REC_PRIMARY_LISTEN="0.0.0.0:$E2E_TUNNEL_PORT"
rec_option both connect_timeout "${connect_timeout}s"
rec_setup_network_and_keys

tunnel="host=127.0.0.1 port=$E2E_FORWARD_PORT dbname=postgres sslmode=disable"

write_hosts() {
	local address=$1
	local content="127.0.0.1 localhost"
	[ -n "$address" ] && content="$content
$address $endpoint_name"
	rec_netns_file "$E2E_NS_STANDBY" hosts "$content"
}

# Print what the standby namespace resolves the endpoint name to.
resolve_in_standby() {
	ip netns exec "$E2E_NS_STANDBY" getent ahostsv4 "$endpoint_name" | awk 'NR == 1 { print $1 }'
}

tunnel_query_works() {
	e2e_psql_from_standby app "$tunnel" "SELECT 1" >/dev/null 2>&1
}

# Succeed when the last handshake_complete line of the standby's daemon
# since MARK names ADDRESS.
last_dial_went_to() {
	local mark=$1 address=$2
	rec_log_since standby "$mark" | grep "event=handshake_complete" | tail -n 1 \
		| grep -q "addr=$address:$E2E_TUNNEL_PORT "
}

e2e_step "give the standby namespace a hosts file without $endpoint_name"
write_hosts ""
rec_netns_file "$E2E_NS_STANDBY" resolv.conf "nameserver 127.0.0.1
options timeout:1 attempts:1"
resolved=$(resolve_in_standby || true)
[ -z "$resolved" ] || e2e_fail "$endpoint_name resolves to '$resolved' in the standby namespace before it is in the hosts file"

rec_setup_primary
# The primary gets a second address below: keep the direct path to it
# closed as well.
ip netns exec "$E2E_NS_STANDBY" iptables -A OUTPUT -p tcp -d "$new_address" --dport "$E2E_PG_PORT" -j DROP

e2e_step "start the standby's daemon while $endpoint_name does not resolve"
rec_daemon_start primary
rec_daemon_start standby
standby_pid=$(rec_daemon_pid standby)
if result=$(e2e_psql_from_standby app "$tunnel" "SELECT 1" 2>&1); then
	e2e_fail "psql through the tunnel worked while $endpoint_name did not resolve (output: $result)"
fi
echo "    psql failed as expected: $(printf '%s' "$result" | head -n 1)"
e2e_daemon_alive standby || e2e_fail "walguard on the standby exited while its endpoint did not resolve"
rec_log_has standby 0 "event=handshake_failed .*cannot resolve endpoint $endpoint_name" \
	|| e2e_fail "the standby's daemon logged no 'cannot resolve endpoint $endpoint_name'"
rec_log_has standby 0 "event=connection_closed .*reason=\"no tunnel after" \
	|| e2e_fail "the standby's daemon logged no connection_closed for the client it could not carry"
rec_log_since standby 0 | grep -m 1 "cannot resolve endpoint" | cut -c1-200 | sed 's/^/    /'

e2e_step "add $endpoint_name to the hosts file and connect with no restart"
write_hosts "$E2E_PRIMARY_ADDR"
resolved=$(resolve_in_standby)
[ "$resolved" = "$E2E_PRIMARY_ADDR" ] \
	|| e2e_fail "$endpoint_name resolves to '$resolved' in the standby namespace, expected $E2E_PRIMARY_ADDR"
rec_wait_until 15 "psql through the tunnel to work once $endpoint_name resolves" tunnel_query_works
echo "    psql through the tunnel worked $REC_WAITED s after the hosts file changed"
[ "$(rec_daemon_pid standby)" = "$standby_pid" ] && e2e_daemon_alive standby \
	|| e2e_fail "the standby's daemon is not the process started before the name resolved"
rec_setup_standby

e2e_step "move the primary to $new_address while pgbench writes"
rec_pgbench_start primary 16 -R 300
sleep 2
walsender_before=$(rec_walsender_pid primary standby)
# Without promote_secondaries, removing 198.18.0.1/24 later would take
# every other address of that subnet with it.
ip netns exec "$E2E_NS_PRIMARY" sysctl -q -w "net.ipv4.conf.$E2E_VETH_PRIMARY.promote_secondaries=1"
ip -n "$E2E_NS_PRIMARY" address add "$new_address/24" dev "$E2E_VETH_PRIMARY"
write_hosts "$new_address"
mark=$(rec_log_mark standby)
tunnel_query_works || e2e_fail "psql through the tunnel failed right after $endpoint_name moved to $new_address"
last_dial_went_to "$mark" "$new_address" \
	|| e2e_fail "the next dial after the hosts file changed did not go to $new_address:$E2E_TUNNEL_PORT (see standby-walguard.log above)"
echo "    the next dial went to $new_address"
rec_mark after-move

e2e_step "remove the old address $E2E_PRIMARY_ADDR and wait for the walreceiver"
mark=$(rec_log_mark standby)
ip -n "$E2E_NS_PRIMARY" address del "$E2E_PRIMARY_ADDR/24" dev "$E2E_VETH_PRIMARY"
walsender_moved() {
	local pid
	pid=$(rec_walsender_pid primary standby) || return 1
	[ -n "$pid" ] && [ "$pid" != "$walsender_before" ]
}
rec_wait_until 20 "a new walsender streaming to the standby" walsender_moved
echo "    the standby streams again $REC_WAITED s after the old address went"
rec_log_has standby "$mark" "$REC_DEAD_PATH_CLOSE" \
	|| e2e_fail "the standby's daemon logged no connection_closed for the stalled connection to the removed address"
last_dial_went_to "$mark" "$new_address" \
	|| e2e_fail "the walreceiver's new tunnel connection did not go to $new_address"
peers=$(ip netns exec "$E2E_NS_STANDBY" ss -Htn state established "( dport = :$E2E_TUNNEL_PORT )" | awk '{ print $4 }' | sort -u)
[ "$peers" = "$new_address:$E2E_TUNNEL_PORT" ] \
	|| e2e_fail "tunnel connections from the standby go to '$peers', expected only $new_address:$E2E_TUNNEL_PORT"
rec_mark after-old-address-removed

e2e_step "wait for pgbench, then compare the clusters"
rec_pgbench_wait
rec_compare_clusters primary standby
for label in after-move after-old-address-removed; do
	[ "$(rec_marker_count standby "$label")" = 1 ] \
		|| e2e_fail "the standby lacks the marker row '$label'"
done

e2e_step "check the daemons"
[ "$(rec_daemon_pid standby)" = "$standby_pid" ] && e2e_daemon_alive standby \
	|| e2e_fail "the standby's daemon exited during the run"
e2e_daemon_alive primary || e2e_fail "walguard on the primary has exited"
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
