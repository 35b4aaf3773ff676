#!/bin/bash
# End-to-end test: a PostgreSQL 15 standby replicates from its primary
# through two walguard daemons, and through nothing else.
#
# The primary and the standby run in two network namespaces. An iptables
# rule in the standby's namespace drops every packet to the primary's port
# 5432, so the only path is standby -> 127.0.0.1:5433 (walguard) ->
# 198.18.0.1:5434 (walguard) -> 127.0.0.1:5432 on the primary.
#
# Run as root: bash tests/e2e/replication.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS replication" or "FAIL replication: REASON"; the
# exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init replication
e2e_start_watchdog 170
e2e_find_binaries

e2e_step "create the namespaces and the veth link"
e2e_setup_network

e2e_step "make keys with walguard-keygen and write the configs"
e2e_make_keys
e2e_write_configs "$(e2e_public_key primary)"
e2e_check_configs

e2e_step "create and start the primary"
e2e_pg_init_primary
e2e_pg_start primary
e2e_pg_create_roles

e2e_step "block the direct path from the standby to 198.18.0.1:5432"
direct="host=$E2E_PRIMARY_ADDR port=$E2E_PG_PORT dbname=postgres sslmode=disable connect_timeout=3"
# Control: without the rule the direct connection works, so a failure
# after adding the rule is the rule's doing.
result=$(e2e_psql_from_standby app "$direct" "SELECT 'direct path open'" 2>&1) \
	|| e2e_fail "control check failed: direct psql from the standby to $E2E_PRIMARY_ADDR:$E2E_PG_PORT failed before the iptables rule: $result"
e2e_block_direct_path
if result=$(e2e_psql_from_standby app "$direct" "SELECT 1" 2>&1); then
	e2e_fail "direct psql from the standby to $E2E_PRIMARY_ADDR:$E2E_PG_PORT still works after the iptables rule (output: $result)"
fi
echo "    direct psql failed as expected: $(printf '%s' "$result" | head -n 1)"
dropped=$(e2e_direct_path_drop_count)
[ "${dropped:-0}" -gt 0 ] \
	|| e2e_fail "the iptables rule in the standby namespace dropped no packet during the direct psql"

e2e_step "start the walguard daemons"
e2e_daemon_start primary
e2e_daemon_start standby

e2e_step "run a psql query through the tunnel"
tunnel="host=127.0.0.1 port=$E2E_FORWARD_PORT dbname=postgres sslmode=disable"
result=$(e2e_psql_from_standby app "$tunnel" \
	"SELECT host(inet_client_addr()) || ' ' || current_setting('cluster_name')" 2>&1) \
	|| e2e_fail "psql through 127.0.0.1:$E2E_FORWARD_PORT failed: $result"
[ "$result" = "127.0.0.1 primary" ] \
	|| e2e_fail "psql through the tunnel: expected '127.0.0.1 primary' (client address as the primary sees it, cluster name), got '$result'"
echo "    the primary sees the tunnel client as: $result"

e2e_step "take the standby's base backup through the tunnel"
e2e_pg_basebackup \
	|| e2e_fail "pg_basebackup through 127.0.0.1:$E2E_FORWARD_PORT failed (see standby-basebackup.log above)"
[ -f "$(e2e_pg_data_dir standby)/standby.signal" ] \
	|| e2e_fail "pg_basebackup -R did not write standby.signal"
conninfo=$(e2e_standby_primary_conninfo) \
	|| e2e_fail "pg_basebackup -R wrote no primary_conninfo to postgresql.auto.conf"
case "$conninfo" in
*"port=$E2E_FORWARD_PORT"*) ;;
*) e2e_fail "primary_conninfo has no port=$E2E_FORWARD_PORT: $conninfo" ;;
esac
case "$conninfo" in
*"sslmode=disable"*) ;;
*) e2e_fail "primary_conninfo has no sslmode=disable: $conninfo" ;;
esac
case "$conninfo" in
*"host=127.0.0.1"*) ;;
*) e2e_fail "primary_conninfo has no host=127.0.0.1: $conninfo" ;;
esac

e2e_step "start the standby and wait until it streams"
e2e_pg_start standby
e2e_wait_for "pg_stat_replication on the primary to show the standby streaming" 60 0.5 \
	e2e_standby_is_streaming

e2e_step "write on the primary: pgbench -i, pgbench -T 5, 10000 marker rows"
marker="walguard-e2e-$$-$RANDOM"
e2e_write_test_rows "$marker"
primary_lsn=$(e2e_sql primary postgres "SELECT pg_current_wal_lsn()")
echo "    primary WAL position after the writes: $primary_lsn"

e2e_step "wait until the standby has replayed up to $primary_lsn"
e2e_wait_for "the standby to replay WAL up to $primary_lsn" 120 0.5 \
	e2e_standby_replayed "$primary_lsn"

e2e_step "compare every table on the primary and the standby"
primary_digests=$(e2e_table_digests primary) \
	|| e2e_fail "reading the table digests on the primary failed"
standby_digests=$(e2e_table_digests standby) \
	|| e2e_fail "reading the table digests on the standby failed"
printf '%s\n' "$primary_digests" | awk -F '\t' '{ printf "    %-18s %8d rows  md5 %s\n", $1, $2, $3 }'
for table in pgbench_accounts pgbench_branches pgbench_history pgbench_tellers marker_rows; do
	printf '%s\n' "$primary_digests" | grep -q "^$table	" \
		|| e2e_fail "table $table is missing from the primary's digests"
done
if [ "$primary_digests" != "$standby_digests" ]; then
	diff <(printf '%s\n' "$primary_digests") <(printf '%s\n' "$standby_digests") | sed 's/^/    /' >&2
	e2e_fail "row counts or md5 digests differ between the primary (<) and the standby (>)"
fi
history_rows=$(printf '%s\n' "$primary_digests" | awk -F '\t' '$1 == "pgbench_history" { print $2 }')
[ "$history_rows" -gt 0 ] \
	|| e2e_fail "pgbench -T 5 wrote no row to pgbench_history, so the comparison proves little"
marker_count=$(e2e_sql standby walguard_test "SELECT count(*) FROM marker_rows WHERE marker LIKE '$marker-%'")
[ "$marker_count" = 10000 ] \
	|| e2e_fail "the standby has $marker_count marker rows of this run, expected 10000"

e2e_step "check pg_stat_replication on the primary"
replication=$(e2e_sql primary postgres \
	"SELECT application_name, client_addr, state FROM pg_stat_replication")
echo "    $replication"
[ "$replication" = "standby|127.0.0.1|streaming" ] \
	|| e2e_fail "pg_stat_replication: expected 'standby|127.0.0.1|streaming' (name, client address, state), got '$replication'"

e2e_step "check the daemons after the run"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited during the run"
done
if grep -h "level=error" "$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)"; then
	e2e_fail "the daemons logged errors during a clean run (lines above)"
fi
for node in standby primary; do
	status=0
	e2e_daemon_stop "$node" || status=$?
	[ "$status" -eq 0 ] \
		|| e2e_fail "walguard on the $node exited with status $status on SIGTERM, expected 0"
done

e2e_print_total_time
