#!/bin/bash
# End-to-end test: the standby's daemon stops running for longer than its
# keepalive_timeout while its peer keeps sending, and must keep its
# connections when it runs again.
#
# A process can stall for seconds without any fault on the path: SIGSTOP,
# a paused or migrated VM, heavy swapping, or a fork storm on a small
# machine. With 500 psql clients started at once on 2 CPUs, a daemon's
# log had gaps of up to 2.4 s. Here the standby's daemon
# (keepalive_timeout = 3s) gets SIGSTOP for 5 s. The primary's daemon
# (keepalive_timeout = 30s) keeps sending KEEPALIVE records, which wait in
# the standby's socket buffer. After SIGCONT those records are there to be
# read, so the path has proved alive: the walreceiver's tunnel connection
# must stay up (same walsender), and replication must go on.
#
# Run as root: bash tests/e2e/recovery_process_stall.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_process_stall" or "FAIL
# recovery_process_stall: REASON"; the exit status is 0, 1, or 77
# (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

stall_seconds=5

rec_init recovery_process_stall 90
# PostgreSQL's own timeouts stay out of the way, so that only walguard can
# end the connection.
REC_WAL_SENDER_TIMEOUT=60s
REC_WAL_RECEIVER_TIMEOUT=60s
rec_option both keepalive_interval 1s
rec_option standby keepalive_timeout 3s
rec_option primary keepalive_timeout 30s
rec_setup_all

# Print the bytes waiting unread in the receive queue of the standby
# daemon's tunnel connection.
tunnel_receive_queue() {
	ip netns exec "$E2E_NS_STANDBY" ss -Htn state established "( dport = :$E2E_TUNNEL_PORT )" \
		| awk '{ sum += $1 } END { print sum + 0 }'
}

e2e_step "stop the standby's daemon for $stall_seconds s with SIGSTOP"
walsender_before=$(rec_walsender_pid primary standby)
standby_mark=$(rec_log_mark standby)
pid=$(rec_daemon_pid standby)
kill -STOP "$pid"
sleep "$stall_seconds"
queued=$(tunnel_receive_queue)
kill -CONT "$pid"
echo "    $queued bytes from the primary's daemon waited unread in the standby's socket"
[ "$queued" -gt 0 ] \
	|| e2e_fail "nothing from the primary's daemon waited in the standby's socket: the test proves nothing"

e2e_step "check that the daemon kept the walreceiver's connection"
sleep 2
e2e_daemon_alive standby || e2e_fail "walguard on the standby exited after SIGCONT"
if rec_log_has standby "$standby_mark" "event=tunnel_timeout|event=connection_closed"; then
	rec_log_since standby "$standby_mark" | grep -E "event=tunnel_timeout|event=connection_closed" | cut -c1-250 | sed 's/^/    /'
	e2e_fail "after SIGCONT the standby's daemon closed the connection (lines above) although the primary's records waited unread in its socket"
fi
walsender_after=$(rec_walsender_pid primary standby)
[ "$walsender_after" = "$walsender_before" ] \
	|| e2e_fail "the walsender changed from '$walsender_before' to '$walsender_after' across the stall"

e2e_step "write and compare the clusters"
rec_mark after-stall
rec_compare_clusters primary standby
[ "$(rec_marker_count standby after-stall)" = 1 ] || e2e_fail "the standby lacks the marker row 'after-stall'"

e2e_print_total_time
