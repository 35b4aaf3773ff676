#!/bin/bash
# End-to-end test: PostgreSQL restarts and a failover, with the tunnel up
# the whole time.
#
# First the primary's PostgreSQL restarts (pg_ctl restart -m fast): the
# walsender's socket closes, the daemons pass the end of stream on, and
# the walreceiver must stream again once the primary is back. Then the
# standby is promoted while the old primary still takes writes, so the
# two timelines diverge. The old primary is stopped, rewound with
# pg_rewind from the new primary through the tunnel in the other
# direction (primary's forward_listen to the standby's forward_target),
# and started as a standby of the new primary through the same two
# daemons. Both clusters must then hold the new primary's data, and the
# row written on the old primary after the split must be gone.
#
# Run as root: bash tests/e2e/recovery_postgres_restart.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_postgres_restart" or "FAIL
# recovery_postgres_restart: REASON"; the exit status is 0, 1, or 77
# (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

rec_init recovery_postgres_restart 170
rec_setup_all

primary_data=$(e2e_pg_data_dir primary)
standby_data=$(e2e_pg_data_dir standby)
old_primary_slot=old_primary_slot

e2e_step "write, restart the primary's PostgreSQL with -m fast, write again"
rec_pgbench_start primary 4 -R 300
rec_pgbench_wait
walsender_before=$(rec_walsender_pid primary standby)
primary_mark=$(rec_log_mark primary)
standby_mark=$(rec_log_mark standby)
e2e_as_postgres primary timeout 90 "$PG_BIN/pg_ctl" -D "$primary_data" \
	-l "$E2E_TMP/logs/primary-postgres.log" -w -t 60 restart -m fast \
	>"$E2E_TMP/logs/primary-pg_ctl-restart.out" 2>&1 \
	|| e2e_fail "pg_ctl restart -m fast of the primary failed (see primary-postgres.log above)"
rec_wait_streaming primary standby 20
echo "    streaming again $REC_WAITED s after the restart returned"
walsender_after=$(rec_walsender_pid primary standby)
[ "$walsender_after" != "$walsender_before" ] \
	|| e2e_fail "the walsender's pid is still $walsender_before after the primary restarted"
for node in primary standby; do
	mark=$primary_mark
	[ "$node" = standby ] && mark=$standby_mark
	rec_log_has "$node" "$mark" "event=connection_closed" \
		|| e2e_fail "the $node's daemon logged no connection_closed when the walsender went away"
	rec_log_has "$node" "$mark" "event=connection_opened" \
		|| e2e_fail "the $node's daemon logged no connection_opened for the new walreceiver connection"
done
rec_mark after-restart
rec_pgbench_start primary 4 -R 300
rec_pgbench_wait
rec_compare_clusters primary standby

e2e_step "promote the standby while the old primary still takes writes"
e2e_as_postgres standby timeout 60 "$PG_BIN/pg_ctl" -D "$standby_data" -w -t 50 promote \
	>"$E2E_TMP/logs/standby-promote.out" 2>&1 \
	|| e2e_fail "pg_ctl promote of the standby failed (see standby-postgres.log above)"
in_recovery=$(e2e_sql standby postgres "SELECT pg_is_in_recovery()")
[ "$in_recovery" = f ] || e2e_fail "the standby is still in recovery after pg_ctl promote"
# Written only on the old primary: pg_rewind must throw it away.
rec_mark old-primary-after-split primary
rec_mark new-primary-after-promotion standby
rec_pgbench_start standby 4 -R 300
rec_pgbench_wait
# pg_rewind reads the new timeline from the control file, which the
# checkpoint after promotion writes.
e2e_sql standby postgres "CHECKPOINT" >/dev/null

e2e_step "stop the old primary and rewind it through the tunnel"
e2e_as_postgres primary timeout 60 "$PG_BIN/pg_ctl" -D "$primary_data" -w -t 50 stop -m fast \
	>"$E2E_TMP/logs/primary-pg_ctl-stop.out" 2>&1 \
	|| e2e_fail "pg_ctl stop -m fast of the old primary failed"
# A role with only the functions pg_rewind needs, as the PostgreSQL 15
# pg_rewind documentation shows, in place of a superuser.
rewinder_password=$(e2e_random_password)
e2e_sql standby postgres "
	CREATE ROLE rewinder LOGIN PASSWORD '$rewinder_password';
	GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewinder;
	GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO rewinder;
	GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO rewinder;
	GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewinder;
	SELECT pg_create_physical_replication_slot('$old_primary_slot');" >/dev/null \
	|| e2e_fail "creating the rewinder role and the slot $old_primary_slot on the new primary failed"
standby_mark=$(rec_log_mark standby)
e2e_as_postgres primary env PGPASSWORD="$rewinder_password" PGCONNECT_TIMEOUT=10 \
	timeout 120 "$PG_BIN/pg_rewind" -D "$primary_data" --progress \
	--source-server="host=127.0.0.1 port=$E2E_FORWARD_PORT user=rewinder dbname=postgres sslmode=disable" \
	>"$E2E_TMP/logs/primary-pg_rewind.log" 2>&1 \
	|| e2e_fail "pg_rewind of the old primary through 127.0.0.1:$E2E_FORWARD_PORT in its namespace failed (see primary-pg_rewind.log above)"
grep -q "Done!" "$E2E_TMP/logs/primary-pg_rewind.log" \
	|| e2e_fail "pg_rewind did not report 'Done!' (see primary-pg_rewind.log above)"
rec_log_has standby "$standby_mark" "event=connection_opened peer=primary .*target=127.0.0.1:$E2E_PG_PORT" \
	|| e2e_fail "the standby's daemon logged no connection from the primary's daemon to its forward_target"
echo "    pg_rewind reached the new primary through the primary's daemon"

e2e_step "start the old primary as a standby of the new primary"
replicator_password=$(cat "$E2E_TMP/replicator.password")
touch "$primary_data/standby.signal"
chown postgres: "$primary_data/standby.signal"
# The last setting in the file wins over what pg_rewind copied.
cat >>"$primary_data/postgresql.auto.conf" <<-EOF
	primary_conninfo = 'host=127.0.0.1 port=$E2E_FORWARD_PORT user=replicator password=$replicator_password sslmode=disable'
	primary_slot_name = '$old_primary_slot'
EOF
e2e_pg_start primary
rec_wait_streaming standby primary 60
echo "    the new primary streams to the old one after $REC_WAITED s"

e2e_step "write on the new primary and compare the clusters"
rec_pgbench_start standby 4 -R 300
rec_pgbench_wait
rec_mark after-failback standby
rec_compare_clusters standby primary
for node in primary standby; do
	[ "$(rec_marker_count "$node" old-primary-after-split)" = 0 ] \
		|| e2e_fail "the $node still has the row written on the old primary after the split"
	for label in after-restart new-primary-after-promotion after-failback; do
		[ "$(rec_marker_count "$node" "$label")" = 1 ] \
			|| e2e_fail "the $node lacks the marker row '$label'"
	done
done
slot_active=$(e2e_sql standby postgres "SELECT active FROM pg_replication_slots WHERE slot_name = '$old_primary_slot'")
[ "$slot_active" = t ] || e2e_fail "the slot $old_primary_slot on the new primary is not active (active = '$slot_active')"

e2e_step "check the daemons"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors (lines above)"
fi

e2e_print_total_time
