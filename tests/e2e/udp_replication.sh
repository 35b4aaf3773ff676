#!/bin/bash
# End-to-end test: a PostgreSQL 15 standby takes its base backup and then
# streams WAL from its primary through the UDP transport alone.
#
# Both daemons have listen_udp and no TCP listen, and dial each other with
# transport = udp. rekey_interval = 2s makes the sessions change keys
# several times while data flows. The standby's path to the primary's port 5432 is
# blocked, so every byte goes standby -> 127.0.0.1:5433 (walguard) ->
# UDP 198.18.0.1:5434 (walguard) -> 127.0.0.1:5432 on the primary.
#
# Run as root: bash tests/e2e/udp_replication.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS udp_replication" or "FAIL udp_replication:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"
# shellcheck source=tests/e2e/udp_lib.sh
. "$(dirname "$0")/udp_lib.sh"

rec_init udp_replication 170
# Short enough that the sessions replace their keys several times during
# the run, while the base backup and pgbench are in flight.
rec_option both rekey_interval 2s
rec_setup_network_and_keys
rec_setup_primary
udp_count_datagrams primary
rec_start_daemons
rec_setup_standby

e2e_step "write with pgbench on the primary"
rec_mark before-pgbench
rec_pgbench_start primary 5
rec_pgbench_wait
rec_mark after-pgbench

e2e_step "compare the clusters"
rec_compare_clusters primary standby
for label in before-pgbench after-pgbench; do
	[ "$(rec_marker_count standby "$label")" = 1 ] \
		|| e2e_fail "the standby lacks the marker row '$label'"
done

e2e_step "check that the replication went over UDP"
datagrams=$(udp_datagram_count primary)
echo "    $datagrams UDP datagrams reached the primary's port $UDP_PORT"
[ "$datagrams" -gt 100 ] \
	|| e2e_fail "only $datagrams UDP datagrams reached the primary's port $UDP_PORT"
for node in primary standby; do
	udp_no_tcp_tunnel "$node" || e2e_fail "a TCP socket uses port $UDP_PORT in the $node's namespace"
done
grep -q "event=handshake_complete.*transport=udp role=initiator" "$(e2e_daemon_log standby)" \
	|| e2e_fail "the standby's daemon logged no UDP handshake as initiator"
grep -q "event=handshake_complete.*transport=udp role=responder" "$(e2e_daemon_log primary)" \
	|| e2e_fail "the primary's daemon logged no UDP handshake as responder"
handshakes=$(grep -c "event=handshake_complete.*transport=udp" "$(e2e_daemon_log standby)" || true)
echo "    the standby's daemon completed $handshakes UDP handshakes (rekey_interval = 2s)"
[ "$handshakes" -ge 3 ] \
	|| e2e_fail "the standby's daemon completed $handshakes UDP handshakes, expected rekeys to make at least 3"

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi
for node in standby primary; do
	status=0
	e2e_daemon_stop "$node" || status=$?
	[ "$status" -eq 0 ] \
		|| e2e_fail "walguard on the $node exited with status $status on SIGTERM, expected 0"
done

e2e_print_total_time
