#!/bin/bash
# End-to-end test: the link goes dark for longer than PostgreSQL's own
# replication timeouts, while walguard's keepalive_timeout is longer
# still, so PostgreSQL notices first.
#
# With wal_receiver_timeout = wal_sender_timeout = 5s and a 15 s cut, the
# walreceiver and the walsender give up on their own and close their
# sockets; walguard's tunnel connection (keepalive_timeout = 30s) is still
# up and must not be torn down early. The startup process then keeps
# retrying through the tunnel, and once the path is back the walreceiver
# must stream again with no manual step. The stale tunnel connection must
# be gone within keepalive_timeout of the cut, and the clusters must match.
#
# Run as root: bash tests/e2e/recovery_blackhole.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_blackhole" or "FAIL recovery_blackhole:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

cut_seconds=15
receiver_timeout=5
keepalive_timeout=30
resume_bound=20

rec_init recovery_blackhole 150
REC_WAL_RECEIVER_TIMEOUT=${receiver_timeout}s
REC_WAL_SENDER_TIMEOUT=${receiver_timeout}s
rec_option both keepalive_interval 2s
rec_option both keepalive_timeout "${keepalive_timeout}s"
rec_setup_all

standby_pg_log=$E2E_TMP/logs/standby-postgres.log
primary_pg_log=$E2E_TMP/logs/primary-postgres.log

receiver_timed_out() {
	tail -n +"$((standby_pg_lines + 1))" "$standby_pg_log" | grep -q "terminating walreceiver due to timeout"
}
sender_timed_out() {
	tail -n +"$((primary_pg_lines + 1))" "$primary_pg_log" | grep -q "terminating walsender process due to replication timeout"
}
one_tunnel_connection() {
	[ "$(rec_established_count standby "$E2E_TUNNEL_PORT")" -eq 1 ] \
		&& [ "$(rec_established_count primary "$E2E_TUNNEL_PORT")" -eq 1 ]
}

e2e_step "write with pgbench and cut the link for $cut_seconds s"
rec_mark before-cut
rec_pgbench_start primary $((cut_seconds + 10)) -R 300
sleep 3
standby_mark=$(rec_log_mark standby)
primary_mark=$(rec_log_mark primary)
standby_pg_lines=$(wc -l <"$standby_pg_log")
primary_pg_lines=$(wc -l <"$primary_pg_log")
cut_start=$EPOCHREALTIME
rec_cut_link

rec_wait_until $((receiver_timeout + 4)) "the standby's PostgreSQL to log 'terminating walreceiver due to timeout'" \
	receiver_timed_out
echo "    the walreceiver timed out $(rec_seconds_since "$cut_start") s after the cut"
rec_wait_until 4 "the primary's PostgreSQL to log 'terminating walsender process due to replication timeout'" \
	sender_timed_out
echo "    the walsender timed out $(rec_seconds_since "$cut_start") s after the cut"
rec_mark during-cut

while ! rec_at_most "$cut_seconds" "$(rec_seconds_since "$cut_start")"; do
	sleep 0.5
done
for node in standby primary; do
	mark=$standby_mark
	[ "$node" = primary ] && mark=$primary_mark
	count=$(rec_log_count "$node" "$mark" "event=tunnel_timeout")
	[ "$count" -eq 0 ] \
		|| e2e_fail "the $node's daemon logged tunnel_timeout during a $cut_seconds s cut, with keepalive_timeout = ${keepalive_timeout}s"
done
dropped=$(rec_cut_drop_count)
[ "$dropped" -gt 0 ] || e2e_fail "the iptables rules dropped no packet during the cut"
echo "    $dropped packets dropped; no tunnel_timeout during the cut, as keepalive_timeout is longer"

e2e_step "restore the link and wait until the walreceiver streams again"
standby_mark=$(rec_log_mark standby)
rec_restore_link
rec_wait_streaming primary standby "$resume_bound"
echo "    streaming again $REC_WAITED s after the restore"
rec_log_has standby "$standby_mark" "event=connection_opened" \
	|| e2e_fail "the standby's daemon logged no connection_opened after the restore"
rec_mark after-restore

e2e_step "wait until the stale tunnel connection is gone"
# The old connection ends when the retransmitted FINs get through, or at
# the latest keepalive_timeout after its last record, before the cut.
left=$(awk -v start="$cut_start" -v now="$EPOCHREALTIME" -v limit=$((keepalive_timeout + 5)) \
	'BEGIN { left = limit - (now - start); print (left > 1 ? int(left) : 1) }')
rec_wait_until "$left" "one established tunnel connection in each namespace (the walreceiver's)" \
	one_tunnel_connection
echo "    one tunnel connection left $(rec_seconds_since "$cut_start") s after the cut"

e2e_step "wait for pgbench, then compare the clusters"
rec_pgbench_wait
rec_compare_clusters primary standby
for label in before-cut during-cut after-restore; do
	[ "$(rec_marker_count standby "$label")" = 1 ] \
		|| e2e_fail "the standby lacks the marker row '$label'"
done

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
