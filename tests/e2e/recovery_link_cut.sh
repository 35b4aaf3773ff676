#!/bin/bash
# End-to-end test: the link between primary and standby goes dark for
# 15 s while pgbench writes on the primary, then comes back.
#
# iptables rules in both namespaces drop every packet on the veth link.
# With keepalive_timeout = 3s each daemon must tear down its tunnel
# connection within a few seconds (event=tunnel_timeout, or the kernel's
# TCP_USER_TIMEOUT set to the same value, whichever fires first), reset the
# walreceiver's or walsender's socket, and once the link is back dial
# again for the walreceiver's next attempt. The standby must then catch
# up, and every table must match the primary's.
#
# Run as root: bash tests/e2e/recovery_link_cut.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_link_cut" or "FAIL recovery_link_cut:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

cut_seconds=15
keepalive_timeout=3
# Time allowed from the cut to the connection_closed line: keepalive_timeout,
# plus the daemon's tick (a quarter of the shortest timer) and slack for a
# loaded machine.
notice_bound=$((keepalive_timeout + 3))
# Time allowed from the restore to streaming: a dial that is under way
# may need handshake_timeout (2 s) to fail, the next waits up to
# dial_backoff_max (1 s), PostgreSQL retries every
# wal_retrieve_retry_interval (1 s); plus slack.
resume_bound=20

rec_init recovery_link_cut 150
rec_option both keepalive_interval 1s
rec_option both keepalive_timeout "${keepalive_timeout}s"
rec_setup_all

e2e_step "write with pgbench, and cut the link for $cut_seconds s in the middle"
walsender_before=$(rec_walsender_pid primary standby)
rec_mark before-cut
rec_pgbench_start primary $((cut_seconds + 12)) -R 300
sleep 4
standby_mark=$(rec_log_mark standby)
primary_mark=$(rec_log_mark primary)
cut_start=$EPOCHREALTIME
rec_cut_link
echo "    link cut"

for node in standby primary; do
	mark=$standby_mark
	[ "$node" = primary ] && mark=$primary_mark
	rec_wait_until "$notice_bound" "the $node's daemon to close the tunnel connection over the cut link" \
		rec_log_has "$node" "$mark" "$REC_DEAD_PATH_CLOSE"
	echo "    the $node's daemon closed it $(rec_seconds_since "$cut_start") s after the cut:"
	rec_log_since "$node" "$mark" | grep -m 1 -E "$REC_DEAD_PATH_CLOSE" | sed 's/.*reason=/      reason=/'
done

rec_mark during-cut
while ! rec_at_most "$cut_seconds" "$(rec_seconds_since "$cut_start")"; do
	sleep 0.5
done
rec_is_streaming primary standby \
	&& e2e_fail "pg_stat_replication shows the standby streaming while the link is cut"
dropped=$(rec_cut_drop_count)
[ "$dropped" -gt 0 ] || e2e_fail "the iptables rules dropped no packet during the cut"
echo "    $dropped packets dropped during the cut"
dial_failures=$(rec_log_count standby "$standby_mark" "event=handshake_failed")
echo "    the standby's daemon logged $dial_failures failed dials during the cut"

e2e_step "restore the link and wait until the standby streams again"
standby_mark=$(rec_log_mark standby)
rec_restore_link
rec_wait_streaming primary standby "$resume_bound"
echo "    streaming again $REC_WAITED s after the restore"
rec_log_has standby "$standby_mark" "event=connection_opened" \
	|| e2e_fail "the standby's daemon logged no connection_opened after the restore"
walsender_after=$(rec_walsender_pid primary standby)
[ "$walsender_after" != "$walsender_before" ] \
	|| e2e_fail "the walsender's pid is still $walsender_before: the old connection was never torn down"
rec_mark after-restore

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
