#!/bin/bash
# End-to-end test: the link under the UDP transport goes dark for 30 s
# while pgbench writes on the primary, then comes back.
#
# iptables rules in both namespaces drop every packet on the veth link.
# With keepalive_timeout = 3s each daemon's session must give up on its
# connections (event=tunnel_timeout) and reset the walreceiver's or
# walsender's socket. Once the link is back, the walreceiver's next
# attempt must get through the same sessions, the standby must catch up,
# and every table must match the primary's. Waits have generous bounds;
# nothing here asserts how fast a step was.
#
# Run as root: bash tests/e2e/udp_link_cut.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS udp_link_cut" or "FAIL udp_link_cut: REASON";
# the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"
# shellcheck source=tests/e2e/udp_lib.sh
. "$(dirname "$0")/udp_lib.sh"

cut_seconds=30

rec_init udp_link_cut 170
rec_option both keepalive_interval 1s
rec_option both keepalive_timeout 3s
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
	rec_wait_until 25 "the $node's daemon to give up on the session over the cut link (event=tunnel_timeout)" \
		rec_log_has "$node" "$mark" "event=tunnel_timeout.*transport=udp"
	echo "    the $node's daemon gave up after $(rec_seconds_since "$cut_start") s:"
	rec_log_since "$node" "$mark" | grep -m 1 "event=tunnel_timeout" | sed 's/.*error=/      error=/'
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

e2e_step "restore the link and wait until the standby streams again"
standby_mark=$(rec_log_mark standby)
rec_restore_link
rec_wait_streaming primary standby 60
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
	udp_no_tcp_tunnel "$node" || e2e_fail "a TCP socket uses port $UDP_PORT in the $node's namespace"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
