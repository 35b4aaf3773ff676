#!/bin/bash
# End-to-end test: replication through the UDP transport while the link
# drops 5% of the transport's datagrams in each direction.
#
# An iptables rule in each namespace drops incoming datagrams to the
# walguard UDP port at random (-m statistic --probability 0.05), from
# before the daemons start: the handshakes, the base backup and the
# streaming all run over the lossy link. SCTP inside the session must
# retransmit what is lost, so that after pgbench every table of the
# standby matches the primary's.
#
# Run as root: bash tests/e2e/udp_packet_loss.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS udp_packet_loss" or "FAIL udp_packet_loss:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"
# shellcheck source=tests/e2e/udp_lib.sh
. "$(dirname "$0")/udp_lib.sh"

loss=0.05
loss_percent=5

# Drop a random share of the datagrams that reach NODE's walguard port.
drop_at_random() {
	ip netns exec "$(e2e_namespace_of "$1")" iptables -I INPUT -p udp --dport "$UDP_PORT" \
		-m statistic --mode random --probability "$loss" -j DROP
}

# Datagrams the random rule of NODE has dropped so far.
random_drop_count() {
	ip netns exec "$(e2e_namespace_of "$1")" iptables -L INPUT -v -n -x \
		| awk '$3 == "DROP" && /statistic mode random/ { sum += $1 } END { print sum + 0 }'
}

rec_init udp_packet_loss 170
rec_setup_network_and_keys
rec_setup_primary

e2e_step "drop $loss_percent% of the datagrams to port $UDP_PORT in both namespaces"
for node in primary standby; do
	drop_at_random "$node"
done

rec_start_daemons
rec_setup_standby

e2e_step "write with pgbench on the primary over the lossy link"
rec_mark before-pgbench
rec_pgbench_start primary 10 -R 200
rec_pgbench_wait
rec_mark after-pgbench

e2e_step "compare the clusters"
rec_compare_clusters primary standby
for label in before-pgbench after-pgbench; do
	[ "$(rec_marker_count standby "$label")" = 1 ] \
		|| e2e_fail "the standby lacks the marker row '$label'"
done

e2e_step "check that datagrams were dropped"
primary_drops=$(random_drop_count primary)
standby_drops=$(random_drop_count standby)
echo "    dropped: $primary_drops datagrams to the primary, $standby_drops to the standby"
[ "$primary_drops" -gt 0 ] || e2e_fail "the random rule in the primary's namespace dropped no datagram"
[ "$standby_drops" -gt 0 ] || e2e_fail "the random rule in the standby's namespace dropped no datagram"

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
	udp_no_tcp_tunnel "$node" || e2e_fail "a TCP socket uses port $UDP_PORT in the $node's namespace"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
