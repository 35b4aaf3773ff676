#!/bin/bash
# End-to-end test: each daemon is killed with SIGKILL while pgbench
# writes on the primary, and started again.
#
# First the standby's daemon dies: the kernel closes its sockets, so the
# primary's daemon gets an end of stream without FIN and must
# reset the walsender's socket at once. Then the primary's daemon dies:
# the standby's daemon must reset the walreceiver's socket, and retry
# dials while the primary's daemon is down. After each restart the
# walreceiver must stream again through a new tunnel connection, and in
# the end no row may be missing on the standby.
#
# Run as root: bash tests/e2e/recovery_daemon_killed.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_daemon_killed" or "FAIL
# recovery_daemon_killed: REASON"; the exit status is 0, 1, or 77
# (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

down_seconds=3
# The surviving daemon gets the kernel's FIN or RST at once; allow slack.
notice_bound=2
resume_bound=20

rec_init recovery_daemon_killed 150
rec_setup_all

# Kill NODE's daemon, check that the other daemon closes the connection it
# carried at once, keep NODE down for down_seconds, start it again and
# wait until the walreceiver streams through it.
kill_and_restart() {
	local node=$1 other=$2
	local other_mark walsender_before walsender_after kill_start

	walsender_before=$(rec_walsender_pid primary standby)
	[ -n "$walsender_before" ] || e2e_fail "the standby does not stream before the $node's daemon is killed"
	other_mark=$(rec_log_mark "$other")
	kill_start=$EPOCHREALTIME
	rec_daemon_kill "$node"
	echo "    killed the $node's daemon with SIGKILL"

	rec_wait_until "$notice_bound" "the $other's daemon to log connection_closed for the connection it carried" \
		rec_log_has "$other" "$other_mark" "event=connection_closed"
	echo "    the $other's daemon closed the connection $(rec_seconds_since "$kill_start") s after the kill:"
	rec_log_since "$other" "$other_mark" | grep "event=connection_closed" | head -n 3 | cut -c1-220 | sed 's/^/      /'
	rec_mark "while-$node-down"

	sleep "$down_seconds"
	rec_is_streaming primary standby \
		&& e2e_fail "the standby streams while the $node's daemon is down"

	rec_daemon_start "$node"
	rec_wait_streaming primary standby "$resume_bound"
	echo "    streaming again $REC_WAITED s after the $node's daemon started"
	walsender_after=$(rec_walsender_pid primary standby)
	[ "$walsender_after" != "$walsender_before" ] \
		|| e2e_fail "the walsender's pid is still $walsender_before after the $node's daemon was killed"
	rec_mark "after-$node-restart"
}

e2e_step "start pgbench"
rec_mark before-kills
rec_pgbench_start primary 16 -R 300
sleep 3

e2e_step "kill the standby's daemon and start it again"
kill_and_restart standby primary
dial_failures=$(rec_log_count standby 0 "event=handshake_failed")
[ "$dial_failures" -eq 0 ] \
	|| e2e_fail "the standby's daemon logged $dial_failures failed dials although the primary's daemon was up"

e2e_step "kill the primary's daemon and start it again"
standby_mark=$(rec_log_mark standby)
kill_and_restart primary standby
rec_log_has standby "$standby_mark" 'event=handshake_failed .*connect failed: connection refused' \
	|| e2e_fail "the standby's daemon logged no refused dial while the primary's daemon was down"
echo "    the standby's daemon logged $(rec_log_count standby "$standby_mark" "event=handshake_failed") failed dials (rate-limited) while the primary's was down"

e2e_step "wait for pgbench, then compare the clusters"
rec_pgbench_wait
rec_compare_clusters primary standby
for label in before-kills while-standby-down after-standby-restart while-primary-down after-primary-restart; do
	[ "$(rec_marker_count standby "$label")" = 1 ] \
		|| e2e_fail "the standby lacks the marker row '$label'"
done
slot_active=$(e2e_sql primary postgres "SELECT active FROM pg_replication_slots WHERE slot_name = '$REC_SLOT'")
[ "$slot_active" = t ] || e2e_fail "the replication slot $REC_SLOT is not active after the restarts (active = '$slot_active')"

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
