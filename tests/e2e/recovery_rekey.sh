#!/bin/bash
# End-to-end test: the tunnel switches keys hundreds of times while
# pgbench writes for 20 s, and nothing is lost or reconnected.
#
# Both daemons run with rekey_interval = 1s and rekey_after_records = 16,
# so every tunnel connection sends a REKEY record at least each second in
# each direction, and far more often under load. While idle, the timer
# alone must keep rekeying. The walreceiver must
# keep its one connection the whole time (same walsender), the clusters
# must match, and for the walreceiver's connection the counts must agree:
# the event=rekeyed lines of each daemon, the rekeys_sent it reports on
# event=tunnel_closed, and the rekeys_received that the other daemon
# reports.
#
# Run as root: bash tests/e2e/recovery_rekey.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_rekey" or "FAIL recovery_rekey:
# REASON"; the exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

write_seconds=20
min_rekeys=200
# With rekey_interval = 1s and the daemon's tick of 250 ms, timer rekeys
# come at most 1.25 s apart: at least 4 in 5 s. Allow one less for load.
idle_seconds=5
min_idle_rekeys=3

rec_init recovery_rekey 120
rec_option both rekey_interval 1s
rec_option both rekey_after_records 16
rec_setup_all

# Print FIELD (conn, rekeys_sent, rekeys_received or reason) of the last
# tunnel_closed line in NODE's daemon log: the walreceiver's connection,
# which closes when the standby stops.
last_closed_field() {
	local node=$1 field=$2
	grep "event=tunnel_closed" "$(e2e_daemon_log "$node")" | tail -n 1 \
		| sed -n -E "s/.* $field=(\"[^\"]*\"|[0-9]+).*/\1/p"
}

e2e_step "write with pgbench for $write_seconds s"
walsender_before=$(rec_walsender_pid primary standby)
standby_mark=$(rec_log_mark standby)
primary_mark=$(rec_log_mark primary)
rec_pgbench_start primary "$write_seconds"
rec_pgbench_wait
standby_rekeys=$(rec_log_count standby "$standby_mark" "event=rekeyed ")
primary_rekeys=$(rec_log_count primary "$primary_mark" "event=rekeyed ")
echo "    rekeys during the run: $standby_rekeys sent by the standby's daemon, $primary_rekeys by the primary's"
[ $((standby_rekeys + primary_rekeys)) -ge "$min_rekeys" ] \
	|| e2e_fail "only $((standby_rekeys + primary_rekeys)) rekeys in $write_seconds s, expected at least $min_rekeys"
for node in standby primary; do
	count=$standby_rekeys
	[ "$node" = primary ] && count=$primary_rekeys
	[ "$count" -ge "$write_seconds" ] \
		|| e2e_fail "the $node's daemon rekeyed only $count times in $write_seconds s with rekey_interval = 1s"
done

e2e_step "stay idle for $idle_seconds s: the timer alone must rekey"
standby_mark_idle=$(rec_log_mark standby)
primary_mark_idle=$(rec_log_mark primary)
sleep "$idle_seconds"
for node in standby primary; do
	mark=$standby_mark_idle
	[ "$node" = primary ] && mark=$primary_mark_idle
	count=$(rec_log_count "$node" "$mark" "event=rekeyed ")
	echo "    the $node's daemon rekeyed $count times while idle"
	[ "$count" -ge "$min_idle_rekeys" ] \
		|| e2e_fail "the $node's daemon rekeyed $count times in $idle_seconds idle seconds with rekey_interval = 1s"
done

e2e_step "compare the clusters"
rec_compare_clusters primary standby
walsender_after=$(rec_walsender_pid primary standby)
[ "$walsender_after" = "$walsender_before" ] \
	|| e2e_fail "the walsender changed from '$walsender_before' to '$walsender_after': the walreceiver reconnected during the rekeys"
for node in standby primary; do
	for event in tunnel_error tunnel_timeout handshake_failed connection_closed; do
		mark=$standby_mark
		[ "$node" = primary ] && mark=$primary_mark
		count=$(rec_log_count "$node" "$mark" "event=$event ")
		[ "$count" -eq 0 ] || e2e_fail "the $node's daemon logged $count $event lines during the run"
	done
done

e2e_step "stop the standby and compare the rekey counts of both daemons"
e2e_as_postgres standby timeout 60 "$PG_BIN/pg_ctl" -D "$(e2e_pg_data_dir standby)" -w -t 50 stop -m fast \
	>"$E2E_TMP/logs/standby-pg_ctl-stop.out" 2>&1 \
	|| e2e_fail "pg_ctl stop -m fast of the standby failed"
no_tunnel_left() {
	[ "$(rec_established_count standby "$E2E_TUNNEL_PORT")" -eq 0 ]
}
rec_wait_until 10 "the walreceiver's tunnel connection to close" no_tunnel_left
for node in standby primary; do
	reason=$(last_closed_field "$node" reason)
	[ "$reason" = '"closed by both sides"' ] \
		|| e2e_fail "the walreceiver's tunnel connection ended with reason $reason on the $node's daemon, expected FIN both ways"
done
standby_sent=$(last_closed_field standby rekeys_sent)
standby_received=$(last_closed_field standby rekeys_received)
primary_sent=$(last_closed_field primary rekeys_sent)
primary_received=$(last_closed_field primary rekeys_received)
echo "    standby's daemon: rekeys_sent=$standby_sent rekeys_received=$standby_received"
echo "    primary's daemon: rekeys_sent=$primary_sent rekeys_received=$primary_received"
[ "$standby_sent" -eq "$primary_received" ] \
	|| e2e_fail "the standby's daemon sent $standby_sent REKEY records but the primary's received $primary_received"
[ "$primary_sent" -eq "$standby_received" ] \
	|| e2e_fail "the primary's daemon sent $primary_sent REKEY records but the standby's received $standby_received"
for node in standby primary; do
	conn=$(last_closed_field "$node" conn)
	lines=$(rec_log_count "$node" 0 "event=rekeyed .* conn=$conn ")
	sent=$standby_sent
	[ "$node" = primary ] && sent=$primary_sent
	[ "$lines" -eq "$sent" ] \
		|| e2e_fail "the $node's daemon logged $lines rekeyed lines for conn=$conn but reports rekeys_sent=$sent on its tunnel_closed line"
done

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
