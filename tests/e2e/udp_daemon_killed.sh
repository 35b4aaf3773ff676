#!/bin/bash
# End-to-end test: over the UDP transport, each daemon in turn is killed
# with SIGKILL while pgbench writes, and started again.
#
# Only the standby dials; the primary is a pure responder. A restarted
# daemon has lost its session keys. After the primary's restart the
# standby keeps sending with the old ones, which are now rejected, until
# its session notices that nothing comes back and makes new keys with a
# handshake.
# Replication must resume after each restart, and every table must match
# the primary's. Waits have generous bounds; nothing here asserts how fast
# a step was.
#
# Run as root: bash tests/e2e/udp_daemon_killed.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS udp_daemon_killed" or "FAIL udp_daemon_killed:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"
# shellcheck source=tests/e2e/udp_lib.sh
. "$(dirname "$0")/udp_lib.sh"

# The primary only responds, so after its restart it cannot start a
# handshake: the standby must notice that its datagrams go unanswered.
UDP_PRIMARY_DIALS=0
rec_init udp_daemon_killed 170
rec_setup_all

# Succeed when a walsender other than OLD_PID streams to the standby.
streams_again() {
	local old_pid=$1 pid
	pid=$(rec_walsender_pid primary standby) || return 1
	[ -n "$pid" ] && [ "$pid" != "$old_pid" ]
}

kill_and_restart() {
	local node=$1
	local walsender_before walsender_after

	walsender_before=$(rec_walsender_pid primary standby)
	[ -n "$walsender_before" ] || e2e_fail "the standby does not stream before the $node's daemon is killed"
	rec_daemon_kill "$node"
	echo "    killed the $node's daemon with SIGKILL"
	rec_mark "while-$node-down"
	sleep 2
	rec_daemon_start "$node"
	# The old walsender may still look alive until its connection times
	# out, so wait for a new one.
	rec_wait_until 60 "a new walsender (not $walsender_before) to stream to the standby" \
		streams_again "$walsender_before"
	walsender_after=$(rec_walsender_pid primary standby)
	echo "    walsender $walsender_after streams $REC_WAITED s after the $node's daemon started"
	rec_mark "after-$node-restart"
}

e2e_step "kill and restart each daemon while pgbench writes"
rec_pgbench_start primary 25 -R 200
sleep 2
kill_and_restart primary
kill_and_restart standby

e2e_step "wait for pgbench, then compare the clusters"
rec_pgbench_wait
rec_compare_clusters primary standby
for label in while-primary-down after-primary-restart while-standby-down after-standby-restart; do
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
