#!/bin/bash
# Show walguard carrying PostgreSQL replication, step by step.
#
# As root on Debian 12: installs what is missing, builds walguard into
# build/ (or WALGUARD_BUILD) if needed, then runs a PostgreSQL 15 primary and standby in two
# network namespaces that can reach each other only through two walguard
# daemons. It prints every step and, at the end, the proof that the
# standby has the primary's rows.
#
#   scripts/demo.sh            run the demo, then remove everything it made
#   scripts/demo.sh --keep     leave it running and print how to use it
#   scripts/demo.sh --cleanup  remove what a --keep run left running
set -eu

repo_root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<-EOF
		Usage: scripts/demo.sh [--keep | --cleanup]

		Run a PostgreSQL primary and standby in two network namespaces that
		replicate only through two walguard daemons, and show that it works.

		  --keep     leave the namespaces, servers and daemons running at the
		             end, and print how to connect and how to remove them
		  --cleanup  remove what an earlier --keep run left running
		  -h, --help show this help

		Run as root on Debian 12.
	EOF
}

keep=0
cleanup_only=0
case "${1:-}" in
"") ;;
--keep) keep=1 ;;
--cleanup) cleanup_only=1 ;;
-h | --help)
	usage
	exit 0
	;;
*)
	echo "demo: unknown option '$1'" >&2
	usage >&2
	exit 2
	;;
esac
if [ $# -gt 1 ]; then
	echo "demo: expected at most one option, got $#" >&2
	exit 2
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root: it installs packages, creates network namespaces and starts PostgreSQL" >&2
	exit 1
fi

# shellcheck source=tests/e2e/lib.sh
. "$repo_root/tests/e2e/lib.sh"

if [ "$cleanup_only" = 1 ]; then
	if [ ! -f "$E2E_STATE_FILE" ]; then
		echo "demo: no kept demo found ($E2E_STATE_FILE does not exist), so there is nothing to remove"
		exit 0
	fi
	echo "Removing the kept demo recorded in $E2E_STATE_FILE:"
	sed 's/^/  /' "$E2E_STATE_FILE"
	e2e_cleanup_from_state
	echo "Done: PostgreSQL stopped, daemons stopped, namespaces and temporary files removed."
	exit 0
fi

if [ "$keep" = 1 ] && [ -f "$E2E_STATE_FILE" ]; then
	echo "demo: a kept demo is still running (see $E2E_STATE_FILE). Remove it first with: scripts/demo.sh --cleanup" >&2
	exit 1
fi

# Print a heading for a part of the demo that is not a timed step.
print_heading() {
	echo
	echo "$*"
}

# Print a file or command output indented under the current step.
indent() {
	sed 's/^/    /'
}

echo "== Installing missing packages (scripts/install-deps.sh)"
"$repo_root/scripts/install-deps.sh"

build=${WALGUARD_BUILD:-$repo_root/build}
echo "== Building walguard into $build"
build_log=$(mktemp /tmp/walguard-demo-build.XXXXXX)
# e2e_init below replaces this trap with the full cleanup.
trap 'rm -f "$build_log"' EXIT
if [ ! -f "$build/build.ninja" ] && ! meson setup "$build" "$repo_root" >"$build_log" 2>&1; then
	cat "$build_log" >&2
	rm -f "$build_log"
	echo "demo: meson setup failed (output above)" >&2
	exit 1
fi
if ! ninja -C "$build" >>"$build_log" 2>&1; then
	tail -n 40 "$build_log" >&2
	rm -f "$build_log"
	echo "demo: the build failed (last lines of its output above)" >&2
	exit 1
fi
rm -f "$build_log"
export WALGUARD_BUILD="$build"

e2e_init demo
E2E_QUIET_RESULT=1
e2e_start_watchdog 240
e2e_find_binaries

e2e_step "Create two network namespaces joined by a veth pair"
e2e_setup_network
cat <<-EOF | indent
	primary: namespace $E2E_NS_PRIMARY, address $E2E_PRIMARY_ADDR/24
	standby: namespace $E2E_NS_STANDBY, address $E2E_STANDBY_ADDR/24
	(198.18.0.0/15 is the RFC 2544 benchmarking range: these addresses exist only inside the two namespaces)
EOF

e2e_step "Make key pairs and a pre-shared key with walguard-keygen"
e2e_make_keys
(cd "$E2E_TMP/keys" && ls -l primary.key primary.pub standby.key standby.pub link.psk) | indent
echo "    primary's public key: $(e2e_public_key primary)"
echo "    standby's public key: $(e2e_public_key standby)"

e2e_step "Write the two daemons' configs"
e2e_write_configs "$(e2e_public_key primary)"
e2e_check_configs
for node in primary standby; do
	print_heading "    $E2E_TMP/config/$node.conf (walguard --check: valid)"
	indent <"$E2E_TMP/config/$node.conf" | indent
done

e2e_step "Create and start PostgreSQL 15 on the primary"
e2e_pg_init_primary
e2e_pg_start primary
e2e_pg_create_roles
echo "    listening on *:$E2E_PG_PORT in $E2E_NS_PRIMARY, with roles replicator and app"

e2e_step "Block the direct path: drop packets from the standby to $E2E_PRIMARY_ADDR:$E2E_PG_PORT"
e2e_block_direct_path
ip netns exec "$E2E_NS_STANDBY" iptables -S OUTPUT | grep -- "-j DROP" | indent

e2e_step "Start the walguard daemons"
e2e_daemon_start primary
echo "    primary: listens for the standby's daemon on $E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT, forwards to 127.0.0.1:$E2E_PG_PORT"
e2e_daemon_start standby
echo "    standby: listens for local clients on 127.0.0.1:$E2E_FORWARD_PORT, carries them to $E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT"

e2e_step "Take the standby's base backup through the tunnel"
echo "    pg_basebackup -d \"host=127.0.0.1 port=$E2E_FORWARD_PORT user=replicator sslmode=disable\" -R -X stream"
e2e_pg_basebackup \
	|| e2e_fail "pg_basebackup through 127.0.0.1:$E2E_FORWARD_PORT failed (see standby-basebackup.log above)"
echo "    pg_basebackup -R wrote to postgresql.auto.conf:"
e2e_standby_primary_conninfo | sed -E "s/password=[^ ']+/password=.../" | indent | indent

e2e_step "Start the standby and wait until it streams from the primary"
e2e_pg_start standby
e2e_wait_for "pg_stat_replication on the primary to show the standby streaming" 60 0.5 \
	e2e_standby_is_streaming
echo "    streaming"

e2e_step "Write rows on the primary: pgbench -i, pgbench -T 5, 10000 marker rows"
e2e_write_test_rows walguard-demo
primary_lsn=$(e2e_sql primary postgres "SELECT pg_current_wal_lsn()")
e2e_wait_for "the standby to replay WAL up to $primary_lsn" 120 0.5 \
	e2e_standby_replayed "$primary_lsn"
echo "    the standby has replayed the primary's WAL up to $primary_lsn"
e2e_end_step

print_heading "== Proof"

print_heading "Rows on the primary and on the standby (md5 over all rows in key order):"
primary_digests=$(e2e_table_digests primary) || e2e_fail "reading the tables on the primary failed"
standby_digests=$(e2e_table_digests standby) || e2e_fail "reading the tables on the standby failed"
LC_ALL=C join -t "$(printf '\t')" <(printf '%s\n' "$primary_digests") <(printf '%s\n' "$standby_digests") \
	| awk -F '\t' '
		BEGIN { printf "    %-18s %10s %10s  %s\n", "table", "primary", "standby", "rows and md5" }
		{ printf "    %-18s %10d %10d  %s\n", $1, $2, $4, ($2 == $4 && $3 == $5) ? "identical" : "DIFFERENT" }'
[ "$primary_digests" = "$standby_digests" ] \
	|| e2e_fail "the standby's tables differ from the primary's"

print_heading "pg_stat_replication on the primary (the standby arrives from 127.0.0.1, through walguard):"
e2e_as_postgres primary timeout "$E2E_SQL_TIMEOUT" "$PG_BIN/psql" -X -q -h "$(e2e_pg_socket_dir primary)" \
	-p "$E2E_PG_PORT" -d postgres -c \
	"SELECT application_name, client_addr, state, sent_lsn, replay_lsn FROM pg_stat_replication" \
	</dev/null | sed "/^$/d" | indent

print_heading "The direct path is blocked: psql from the standby to $E2E_PRIMARY_ADDR:$E2E_PG_PORT:"
direct="host=$E2E_PRIMARY_ADDR port=$E2E_PG_PORT dbname=postgres sslmode=disable connect_timeout=3"
if result=$(e2e_psql_from_standby app "$direct" "SELECT 1" 2>&1); then
	e2e_fail "direct psql from the standby to $E2E_PRIMARY_ADDR:$E2E_PG_PORT works despite the iptables rule (output: $result)"
fi
printf '%s\n' "$result" | head -n 1 | indent
echo "    packets dropped by the rule so far: $(e2e_direct_path_drop_count)"

print_heading "The same query through the tunnel (127.0.0.1:$E2E_FORWARD_PORT in the standby namespace):"
tunnel="host=127.0.0.1 port=$E2E_FORWARD_PORT dbname=walguard_test sslmode=disable"
e2e_psql_from_standby app "$tunnel" \
	"SELECT 'connected to ' || current_setting('cluster_name') || ' as ' || current_user || ', ' || count(*) || ' marker rows' FROM marker_rows" \
	| indent

print_heading "Daemon log lines:"
for node in primary standby; do
	echo "    $node:"
	grep -E "event=(started|listening|handshake_complete|connection_opened)" "$(e2e_daemon_log "$node")" \
		| head -n 5 | cut -c 1-200 | indent
done

echo
e2e_print_total_time

if [ "$keep" = 1 ]; then
	E2E_KEEP=1
	password_file="$E2E_TMP/app.password"
	cat <<-EOF

		== The demo is still running

		Query the standby (read-only) and the primary as postgres:
		  ip netns exec $E2E_NS_STANDBY runuser -u postgres -- $PG_BIN/psql -h $(e2e_pg_socket_dir standby) -d walguard_test
		  ip netns exec $E2E_NS_PRIMARY runuser -u postgres -- $PG_BIN/psql -h $(e2e_pg_socket_dir primary) -d walguard_test

		Connect through the tunnel from the standby's namespace:
		  ip netns exec $E2E_NS_STANDBY env PGPASSWORD="\$(cat $password_file)" $PG_BIN/psql "host=127.0.0.1 port=$E2E_FORWARD_PORT user=app dbname=walguard_test sslmode=disable"

		Logs: $E2E_TMP/logs/

		Remove everything (PostgreSQL, daemons, namespaces, $E2E_TMP):
		  scripts/demo.sh --cleanup
	EOF
	exit 0
fi

print_heading "== Cleaning up (run with --keep to leave the demo running)"
e2e_cleanup
echo "Removed the namespaces, stopped PostgreSQL and the daemons, deleted $E2E_TMP."
