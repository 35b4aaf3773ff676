# Helpers for the end-to-end tests and the demo, sourced by them.
#
# A run builds two network namespaces joined by a veth pair:
#
#   primary namespace  198.18.0.1/24  PostgreSQL on 5432, walguard on 5434
#   standby namespace  198.18.0.2/24  PostgreSQL on 5432, walguard on 127.0.0.1:5433
#
# 198.18.0.0/15 is the RFC 2544 benchmarking range, and these addresses
# exist only inside the two namespaces. Everything a run makes (data dirs,
# sockets, keys, configs, logs) lives in one temporary directory. The EXIT,
# INT and TERM traps tear it all down, also when a step fails halfway.
#
# A script sources this file, calls e2e_init NAME, then the e2e_* steps.
# It must not install its own EXIT, INT, TERM or ERR traps.

# shellcheck shell=bash

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO_ROOT=$(cd "$E2E_LIB_DIR/../.." && pwd)

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

E2E_PRIMARY_ADDR=198.18.0.1
E2E_STANDBY_ADDR=198.18.0.2
E2E_PG_PORT=5432
E2E_FORWARD_PORT=5433
E2E_TUNNEL_PORT=5434

# Bounds on single commands, in seconds. Every command that talks to a
# server runs under timeout(1) so that no step can hang the run.
E2E_SQL_TIMEOUT=${E2E_SQL_TIMEOUT:-30}
E2E_BASEBACKUP_TIMEOUT=${E2E_BASEBACKUP_TIMEOUT:-90}
# libpq's connect_timeout for clients that connect through the tunnel.
E2E_CONNECT_TIMEOUT=${E2E_CONNECT_TIMEOUT:-10}
# How long e2e_daemon_stop waits after SIGTERM before it sends KILL: more
# than walguard's default shutdown_grace of 10 s, which open connections
# such as the walreceiver's get to finish.
E2E_DAEMON_STOP_TIMEOUT=${E2E_DAEMON_STOP_TIMEOUT:-15}

E2E_NAME=""
E2E_TMP=""
E2E_NS_PRIMARY=""
E2E_NS_STANDBY=""
E2E_VETH_PRIMARY=""
E2E_VETH_STANDBY=""
E2E_FAIL_REASON=""
E2E_LAST_ERROR=""
E2E_KEEP=0
E2E_QUIET_RESULT=0
E2E_WATCHDOG_PID=""
E2E_STEP_NAME=""
E2E_LAST_STEP_NAME=""
E2E_STEP_START=""
E2E_RUN_START=""
# Daemon name -> process id, for the daemons this run started.
declare -A E2E_DAEMON_PIDS=()

# ---------------------------------------------------------------------------
# Start, result and teardown

# Set up a run: check that we are root, pick the names, make the temporary
# directory and install the traps. NAME appears in the PASS/FAIL/SKIP line.
e2e_init() {
	E2E_NAME=$1

	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP $E2E_NAME: must run as root (it creates network namespaces)"
		exit 77
	fi

	E2E_RUN_START=$EPOCHREALTIME
	E2E_NS_PRIMARY="walguard-primary-$$"
	E2E_NS_STANDBY="walguard-standby-$$"
	E2E_VETH_PRIMARY="wgp$$"
	E2E_VETH_STANDBY="wgs$$"

	# A trap can fire while a function runs with its output redirected to
	# a log file. The EXIT trap restores these copies of the original
	# stdout and stderr, so the result line reaches the caller.
	exec {E2E_STDOUT_FD}>&1 {E2E_STDERR_FD}>&2

	set -E
	trap 'E2E_LAST_ERROR="line $LINENO: $BASH_COMMAND (exit status $?)"' ERR
	trap 'e2e_on_exit' EXIT
	trap 'e2e_on_signal INT' INT
	trap 'e2e_on_signal TERM' TERM

	if ! id postgres >/dev/null 2>&1; then
		e2e_fail "user postgres not found; install postgresql-15 (scripts/install-deps.sh)"
	fi

	E2E_TMP=$(mktemp -d "/tmp/walguard-e2e.$$.XXXXXX")
	# The postgres user must reach the data and socket dirs inside.
	chmod 0755 "$E2E_TMP"
	mkdir -p "$E2E_TMP/logs" "$E2E_TMP/pg" "$E2E_TMP/keys" "$E2E_TMP/config"
	chmod 0700 "$E2E_TMP/keys"
	chown postgres: "$E2E_TMP/pg"
	chmod 0755 "$E2E_TMP/logs"
	touch "$E2E_TMP/logs/primary-postgres.log" "$E2E_TMP/logs/standby-postgres.log"
	chown postgres: "$E2E_TMP/logs/primary-postgres.log" "$E2E_TMP/logs/standby-postgres.log"

	# Commands run as postgres start in this directory, so none of them
	# fails on a working directory that postgres may not enter.
	cd "$E2E_TMP" || e2e_fail "cannot enter $E2E_TMP"
}

# Stop the run with a failure. The EXIT trap prints the log tails, cleans
# up and prints the FAIL line last.
e2e_fail() {
	E2E_FAIL_REASON=$1
	exit 1
}

# Stop the whole run when it takes longer than SECONDS, by sending TERM to
# the script. The trap then treats it like an interrupt.
e2e_start_watchdog() {
	local seconds=$1
	local script_pid=$$
	(
		trap - EXIT INT TERM ERR
		sleep "$seconds"
		kill -TERM "$script_pid" 2>/dev/null
	) &
	E2E_WATCHDOG_PID=$!
	E2E_WATCHDOG_SECONDS=$seconds
}

e2e_on_signal() {
	local signal=$1
	trap '' INT TERM
	if [ "$signal" = TERM ] && [ -n "${E2E_WATCHDOG_SECONDS:-}" ] \
		&& e2e_elapsed_at_least "$E2E_WATCHDOG_SECONDS"; then
		E2E_FAIL_REASON="timed out: the run took longer than $E2E_WATCHDOG_SECONDS s"
	else
		E2E_FAIL_REASON="interrupted by SIG$signal (last step started: '${E2E_LAST_STEP_NAME:-none}')"
	fi
	exit 1
}

e2e_elapsed_at_least() {
	local seconds=$1
	awk -v start="$E2E_RUN_START" -v now="$EPOCHREALTIME" -v limit="$seconds" \
		'BEGIN { exit !(now - start >= limit) }'
}

e2e_on_exit() {
	local status=$?
	trap '' INT TERM
	trap - ERR
	set +e
	exec 1>&"$E2E_STDOUT_FD" 2>&"$E2E_STDERR_FD"

	if [ "$status" -ne 0 ] && [ -z "$E2E_FAIL_REASON" ]; then
		E2E_FAIL_REASON="unexpected error at ${E2E_LAST_ERROR:-an unknown line}"
	fi
	if [ "$status" -ne 0 ]; then
		e2e_print_log_tails
	fi

	if [ "$E2E_KEEP" = 1 ] && [ "$status" -eq 0 ]; then
		e2e_stop_watchdog
		e2e_write_state
	else
		e2e_cleanup
	fi

	if [ "$E2E_QUIET_RESULT" = 1 ] && [ "$status" -eq 0 ]; then
		exit 0
	fi
	if [ "$status" -eq 0 ]; then
		echo "PASS $E2E_NAME"
		exit 0
	fi
	echo "FAIL $E2E_NAME: $E2E_FAIL_REASON"
	exit 1
}

e2e_stop_watchdog() {
	if [ -n "$E2E_WATCHDOG_PID" ]; then
		# The watchdog subshell waits in sleep(1). Stop the subshell
		# first, so that it cannot go on to signal the script, then its
		# sleep, so that no process outlives the run.
		local sleep_pids
		sleep_pids=$(pgrep -P "$E2E_WATCHDOG_PID")
		kill -TERM "$E2E_WATCHDOG_PID" 2>/dev/null
		wait "$E2E_WATCHDOG_PID" 2>/dev/null
		# shellcheck disable=SC2086 # one process id per word
		[ -n "$sleep_pids" ] && kill -TERM $sleep_pids 2>/dev/null
		E2E_WATCHDOG_PID=""
	fi
}

# Print the last lines of every log of the run to stderr.
e2e_print_log_tails() {
	local log
	[ -n "$E2E_TMP" ] && [ -d "$E2E_TMP/logs" ] || return 0
	for log in "$E2E_TMP"/logs/*.log; do
		[ -s "$log" ] || continue
		echo "---- last lines of $(basename "$log") ----" >&2
		tail -n 25 "$log" >&2
	done
	echo "----" >&2
}

# Tear down everything this run made. Safe to call more than once and with
# any part missing. Runs quietly, so the result line stays last.
e2e_cleanup() {
	set +e
	cd /

	e2e_stop_watchdog

	local name data_dir
	for name in primary standby; do
		data_dir="$E2E_TMP/pg/$name"
		if [ -n "$E2E_TMP" ] && [ -f "$data_dir/postmaster.pid" ]; then
			runuser -u postgres -- timeout 20 "$PG_BIN/pg_ctl" -D "$data_dir" \
				stop -m immediate -w -t 15 >/dev/null 2>&1
		fi
	done

	for name in "${!E2E_DAEMON_PIDS[@]}"; do
		e2e_stop_process "${E2E_DAEMON_PIDS[$name]}"
	done
	E2E_DAEMON_PIDS=()

	local namespace pid
	for namespace in "$E2E_NS_PRIMARY" "$E2E_NS_STANDBY"; do
		if [ -z "$namespace" ] || [ ! -e "/run/netns/$namespace" ]; then
			continue
		fi
		# Anything still running in a namespace of this run is ours.
		for pid in $(ip netns pids "$namespace" 2>/dev/null); do
			e2e_stop_process "$pid"
		done
		# Deleting the namespace also deletes its veth end and its
		# iptables rules.
		ip netns delete "$namespace" 2>/dev/null
	done
	# A veth pair created but not yet moved into a namespace.
	if [ -n "$E2E_VETH_PRIMARY" ] && ip link show "$E2E_VETH_PRIMARY" >/dev/null 2>&1; then
		ip link delete "$E2E_VETH_PRIMARY" 2>/dev/null
	fi

	if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
		rm -rf "$E2E_TMP"
	fi
}

# Send TERM to a process, wait up to 5 s for it to go, then KILL it.
e2e_stop_process() {
	local pid=$1
	local try
	kill -TERM "$pid" 2>/dev/null || return 0
	for try in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# ---------------------------------------------------------------------------
# Steps and waiting

# Start a named step, printing how long the previous one took.
e2e_step() {
	e2e_end_step
	E2E_STEP_NAME=$1
	E2E_LAST_STEP_NAME=$1
	E2E_STEP_START=$EPOCHREALTIME
	echo "==> $E2E_STEP_NAME"
}

e2e_end_step() {
	if [ -n "$E2E_STEP_NAME" ]; then
		awk -v start="$E2E_STEP_START" -v now="$EPOCHREALTIME" -v name="$E2E_STEP_NAME" \
			'BEGIN { printf "    took %.2f s: %s\n", now - start, name }'
	fi
	E2E_STEP_NAME=""
}

e2e_print_total_time() {
	e2e_end_step
	awk -v start="$E2E_RUN_START" -v now="$EPOCHREALTIME" \
		'BEGIN { printf "total: %.2f s\n", now - start }'
}

# Run COMMAND... up to TRIES times, INTERVAL seconds apart, until it
# succeeds. Returns 1 when it never did; the caller decides how to fail.
e2e_retry() {
	local tries=$1 interval=$2
	shift 2
	local try
	for try in $(seq "$tries"); do
		if "$@"; then
			return 0
		fi
		[ "$try" -lt "$tries" ] && sleep "$interval"
	done
	return 1
}

# Like e2e_retry, but fail the run with "timed out waiting for WHAT".
e2e_wait_for() {
	local what=$1 tries=$2 interval=$3
	shift 3
	if ! e2e_retry "$tries" "$interval" "$@"; then
		e2e_fail "timed out waiting for $what (tried $tries times, $interval s apart)"
	fi
}

# ---------------------------------------------------------------------------
# Binaries

e2e_find_binaries() {
	local build=${WALGUARD_BUILD:-$E2E_REPO_ROOT/build}
	case "$build" in
	/*) ;;
	*) build="$E2E_REPO_ROOT/$build" ;;
	esac
	WALGUARD_BIN="$build/tunnel/walguard"
	WALGUARD_KEYGEN="$build/keys/walguard-keygen"

	local binary
	for binary in "$WALGUARD_BIN" "$WALGUARD_KEYGEN"; do
		[ -x "$binary" ] || e2e_fail "$binary not found or not executable; build with 'meson setup build && ninja -C build' or set WALGUARD_BUILD"
	done
	for binary in initdb pg_ctl postgres psql pg_basebackup pgbench; do
		[ -x "$PG_BIN/$binary" ] || e2e_fail "$PG_BIN/$binary not found; install postgresql-15 (scripts/install-deps.sh)"
	done
	for binary in ip iptables ss runuser timeout; do
		command -v "$binary" >/dev/null || e2e_fail "$binary not found; run scripts/install-deps.sh"
	done
}

# ---------------------------------------------------------------------------
# Network

e2e_setup_network() {
	ip netns add "$E2E_NS_PRIMARY"
	ip netns add "$E2E_NS_STANDBY"
	ip link add "$E2E_VETH_PRIMARY" type veth peer name "$E2E_VETH_STANDBY"
	ip link set "$E2E_VETH_PRIMARY" netns "$E2E_NS_PRIMARY"
	ip link set "$E2E_VETH_STANDBY" netns "$E2E_NS_STANDBY"

	ip -n "$E2E_NS_PRIMARY" link set lo up
	ip -n "$E2E_NS_STANDBY" link set lo up
	ip -n "$E2E_NS_PRIMARY" address add "$E2E_PRIMARY_ADDR/24" dev "$E2E_VETH_PRIMARY"
	ip -n "$E2E_NS_STANDBY" address add "$E2E_STANDBY_ADDR/24" dev "$E2E_VETH_STANDBY"
	ip -n "$E2E_NS_PRIMARY" link set "$E2E_VETH_PRIMARY" up
	ip -n "$E2E_NS_STANDBY" link set "$E2E_VETH_STANDBY" up

	e2e_wait_for "the veth link between the namespaces to come up" 50 0.1 \
		e2e_veth_is_up
}

e2e_veth_is_up() {
	ip -n "$E2E_NS_PRIMARY" -o link show dev "$E2E_VETH_PRIMARY" | grep -q "state UP" \
		&& ip -n "$E2E_NS_STANDBY" -o link show dev "$E2E_VETH_STANDBY" | grep -q "state UP"
}

# In the standby namespace, drop every packet to the primary's PostgreSQL
# port, so that the standby can reach the primary only through walguard.
e2e_block_direct_path() {
	ip netns exec "$E2E_NS_STANDBY" iptables -A OUTPUT -p tcp \
		-d "$E2E_PRIMARY_ADDR" --dport "$E2E_PG_PORT" -j DROP
}

# Packets the rule of e2e_block_direct_path has dropped so far.
e2e_direct_path_drop_count() {
	ip netns exec "$E2E_NS_STANDBY" iptables -L OUTPUT -v -n -x \
		| awk -v addr="$E2E_PRIMARY_ADDR" '$3 == "DROP" && $9 == addr && /dpt:5432/ { print $1 }'
}

# ---------------------------------------------------------------------------
# Running commands in the namespaces

e2e_namespace_of() {
	case "$1" in
	primary) echo "$E2E_NS_PRIMARY" ;;
	standby) echo "$E2E_NS_STANDBY" ;;
	*) e2e_fail "unknown node '$1' (expected primary or standby)" ;;
	esac
}

# Run COMMAND... as postgres in the namespace of NODE (primary or standby).
# The command does not inherit the saved copies of the script's stdout and
# stderr, so a server it starts cannot hold the caller's pipe open.
e2e_as_postgres() {
	local namespace
	namespace=$(e2e_namespace_of "$1")
	shift
	ip netns exec "$namespace" runuser -u postgres -- "$@" \
		{E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&-
}

# ---------------------------------------------------------------------------
# PostgreSQL

e2e_pg_data_dir() { echo "$E2E_TMP/pg/$1"; }
e2e_pg_socket_dir() { echo "$E2E_TMP/pg/$1-socket"; }

# Create the primary's cluster, with roles and access rules for the tunnel.
# Sets E2E_REPLICATOR_PASSWORD and E2E_APP_PASSWORD.
e2e_pg_init_primary() {
	local data_dir socket_dir
	data_dir=$(e2e_pg_data_dir primary)
	socket_dir=$(e2e_pg_socket_dir primary)

	e2e_as_postgres primary "$PG_BIN/initdb" -D "$data_dir" -U postgres \
		--auth-local=trust --auth-host=scram-sha-256 \
		--locale=C --encoding=UTF8 >"$E2E_TMP/logs/primary-initdb.out" 2>&1 \
		|| e2e_fail "initdb of the primary failed (see primary-initdb.out above)"

	cat >>"$data_dir/postgresql.conf" <<-EOF

		# Written by walguard's tests/e2e/lib.sh.
		listen_addresses = '*'
		port = $E2E_PG_PORT
		wal_level = replica
		max_wal_senders = 5
		wal_keep_size = 256MB
		hot_standby = on
		log_connections = on
		log_disconnections = on
		# The clusters are thrown away after each run: skip the fsync cost.
		fsync = off
	EOF

	# The tunnel delivers connections from 127.0.0.1. The last line lets the
	# test show that the direct path works until the iptables rule drops it.
	cat >"$data_dir/pg_hba.conf" <<-EOF
		# TYPE  DATABASE     USER        ADDRESS            METHOD
		local   all          all                            trust
		host    replication  replicator  127.0.0.1/32       scram-sha-256
		host    all          all         127.0.0.1/32       scram-sha-256
		host    all          app         $E2E_STANDBY_ADDR/32      scram-sha-256
	EOF

	mkdir -p "$(e2e_pg_socket_dir primary)" "$(e2e_pg_socket_dir standby)"
	chown postgres: "$(e2e_pg_socket_dir primary)" "$(e2e_pg_socket_dir standby)"
	chmod 0700 "$socket_dir" "$(e2e_pg_socket_dir standby)"

	E2E_REPLICATOR_PASSWORD=$(e2e_random_password)
	E2E_APP_PASSWORD=$(e2e_random_password)
	printf '%s\n' "$E2E_REPLICATOR_PASSWORD" >"$E2E_TMP/replicator.password"
	printf '%s\n' "$E2E_APP_PASSWORD" >"$E2E_TMP/app.password"
	chmod 0600 "$E2E_TMP/replicator.password" "$E2E_TMP/app.password"
}

e2e_random_password() {
	head -c 18 /dev/urandom | base64 | tr -d '/+='
}

# Start the cluster of NODE and wait until it accepts connections.
e2e_pg_start() {
	local node=$1
	local listen=127.0.0.1
	[ "$node" = primary ] && listen='*'

	e2e_as_postgres "$node" timeout 90 "$PG_BIN/pg_ctl" -D "$(e2e_pg_data_dir "$node")" \
		-l "$E2E_TMP/logs/$node-postgres.log" -w -t 60 \
		-o "-c port=$E2E_PG_PORT -c listen_addresses='$listen' -c unix_socket_directories='$(e2e_pg_socket_dir "$node")' -c cluster_name=$node" \
		start >"$E2E_TMP/logs/$node-pg_ctl.out" 2>&1 \
		|| e2e_fail "PostgreSQL on the $node did not start (see $node-postgres.log above)"
}

# Create the roles the tests use. Must run on the primary.
e2e_pg_create_roles() {
	e2e_sql primary postgres "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '$E2E_REPLICATOR_PASSWORD'" >/dev/null
	e2e_sql primary postgres "CREATE ROLE app WITH LOGIN PASSWORD '$E2E_APP_PASSWORD'" >/dev/null
	e2e_sql primary postgres "GRANT pg_read_all_data TO app" >/dev/null
	e2e_sql primary postgres "CREATE DATABASE walguard_test" >/dev/null
}

# Run SQL on NODE's DATABASE over the unix socket, printing unaligned
# tuples-only output. Fails the command (not the run) on any SQL error.
e2e_sql() {
	local node=$1 database=$2 sql=$3
	e2e_as_postgres "$node" timeout "$E2E_SQL_TIMEOUT" "$PG_BIN/psql" -X -q -A -t \
		-v ON_ERROR_STOP=1 -h "$(e2e_pg_socket_dir "$node")" -p "$E2E_PG_PORT" \
		-d "$database" -c "$sql" </dev/null
}

# Run psql with CONNINFO from the standby namespace as postgres, with the
# password of USER from the run's password file.
e2e_psql_from_standby() {
	local user=$1 conninfo=$2 sql=$3
	local password
	password=$(cat "$E2E_TMP/$user.password")
	e2e_as_postgres standby env PGPASSWORD="$password" PGCONNECT_TIMEOUT="$E2E_CONNECT_TIMEOUT" \
		timeout "$E2E_SQL_TIMEOUT" "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-d "$conninfo user=$user" -c "$sql"
}

# Take the standby's base backup through the tunnel, with -R so that the
# standby then streams from the same address. Returns pg_basebackup's exit
# status; its output goes to logs/standby-basebackup.log.
e2e_pg_basebackup() {
	local conninfo="host=127.0.0.1 port=$E2E_FORWARD_PORT user=replicator sslmode=disable"
	local password
	password=$(cat "$E2E_TMP/replicator.password")
	e2e_as_postgres standby env PGPASSWORD="$password" PGCONNECT_TIMEOUT="$E2E_CONNECT_TIMEOUT" \
		timeout "$E2E_BASEBACKUP_TIMEOUT" "$PG_BIN/pg_basebackup" \
		-D "$(e2e_pg_data_dir standby)" -d "$conninfo" \
		-R -X stream -c fast --no-sync --progress --verbose \
		>"$E2E_TMP/logs/standby-basebackup.log" 2>&1
}

# Print the primary_conninfo line that pg_basebackup -R wrote.
e2e_standby_primary_conninfo() {
	grep "^primary_conninfo" "$(e2e_pg_data_dir standby)/postgresql.auto.conf"
}

# Succeed when the primary lists a walsender in state 'streaming'.
e2e_standby_is_streaming() {
	local state
	state=$(e2e_sql primary postgres "SELECT state FROM pg_stat_replication WHERE application_name = 'standby'" 2>/dev/null) || return 1
	[ "$state" = streaming ]
}

# Succeed when the standby has replayed WAL up to LSN.
e2e_standby_replayed() {
	local lsn=$1 result
	result=$(e2e_sql standby postgres "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '$lsn') >= 0" 2>/dev/null) || return 1
	[ "$result" = t ]
}

# Write on the primary: pgbench -i, pgbench -T 5 with four clients, and
# the table marker_rows with 10000 rows of the form MARKER-N. Prints
# pgbench's transaction count and rate.
e2e_write_test_rows() {
	local marker=$1
	local socket_dir log
	socket_dir=$(e2e_pg_socket_dir primary)
	log="$E2E_TMP/logs/primary-pgbench.log"

	e2e_as_postgres primary timeout 60 "$PG_BIN/pgbench" -h "$socket_dir" -p "$E2E_PG_PORT" \
		-i -s 1 -q walguard_test >"$log" 2>&1 \
		|| e2e_fail "pgbench -i on the primary failed (see primary-pgbench.log above)"
	e2e_as_postgres primary timeout 30 "$PG_BIN/pgbench" -h "$socket_dir" -p "$E2E_PG_PORT" \
		-T 5 -c 4 -j 2 walguard_test >>"$log" 2>&1 \
		|| e2e_fail "pgbench -T 5 on the primary failed (see primary-pgbench.log above)"
	grep -E "^number of transactions actually processed|^tps" "$log" | sed 's/^/    pgbench: /'

	e2e_sql primary walguard_test "
		CREATE TABLE marker_rows (id integer PRIMARY KEY, marker text NOT NULL);
		INSERT INTO marker_rows SELECT g, '$marker-' || g FROM generate_series(1, 10000) AS g;" \
		>/dev/null || e2e_fail "creating marker_rows on the primary failed"
}

# Print, for every table of the public schema in walguard_test, a line
# "table<TAB>rows<TAB>md5" as read on NODE. Rows are hashed in primary key
# order, or by their whole text in the C collation where a table has none
# (pgbench_history).
e2e_table_digests() {
	local node=$1
	local table order_by
	local tables
	tables=$(e2e_sql primary walguard_test "
		SELECT c.relname || '|' || coalesce((
			SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey::int2[], a.attnum))
			FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
			WHERE i.indrelid = c.oid AND i.indisprimary), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		ORDER BY c.relname") || return 1
	[ -n "$tables" ] || return 1

	local digest
	while IFS='|' read -r table order_by; do
		[ -n "$order_by" ] || order_by='t::text COLLATE "C"'
		digest=$(e2e_sql "$node" walguard_test "
			SELECT '$table', count(*), md5(coalesce(string_agg(t::text, E'\n' ORDER BY $order_by), ''))
			FROM public.$table AS t") || return 1
		printf '%s\n' "$digest" | tr '|' '\t'
	done <<<"$tables"
}

# ---------------------------------------------------------------------------
# Keys, configs and daemons

# Make both key pairs and a pre-shared key with the real walguard-keygen.
e2e_make_keys() {
	local keys=$E2E_TMP/keys
	(cd "$keys" && "$WALGUARD_KEYGEN" pair primary && "$WALGUARD_KEYGEN" pair standby) \
		>"$E2E_TMP/logs/keygen.out" 2>&1 \
		|| e2e_fail "walguard-keygen pair failed (see keygen.out above)"
	(umask 077 && "$WALGUARD_KEYGEN" genpsk >"$keys/link.psk") \
		|| e2e_fail "walguard-keygen genpsk failed"
	chmod 0600 "$keys/link.psk"

	local file
	for file in primary.key primary.pub standby.key standby.pub link.psk; do
		[ -s "$keys/$file" ] || e2e_fail "walguard-keygen did not write $keys/$file"
	done
	for file in primary.key standby.key; do
		[ "$(stat -c %a "$keys/$file")" = 600 ] \
			|| e2e_fail "walguard-keygen wrote $file with mode $(stat -c %a "$keys/$file"), expected 600"
	done
}

# Print the public key of NODE made by e2e_make_keys.
e2e_public_key() {
	cat "$E2E_TMP/keys/$1.pub"
}

# Write the two daemons' configs. PRIMARY_PUBLIC_KEY is the key that the
# standby pins for the primary: the real one is "$(e2e_public_key primary)".
e2e_write_configs() {
	local primary_public_key=$1
	local keys=$E2E_TMP/keys

	cat >"$E2E_TMP/config/primary.conf" <<-EOF
		[interface]
		private_key_file = $keys/primary.key
		listen = $E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT
		log_level = debug

		[peer standby]
		public_key = $(e2e_public_key standby)
		preshared_key_file = $keys/link.psk
		forward_target = 127.0.0.1:$E2E_PG_PORT
	EOF

	cat >"$E2E_TMP/config/standby.conf" <<-EOF
		[interface]
		private_key_file = $keys/standby.key
		log_level = debug

		[peer primary]
		public_key = $primary_public_key
		preshared_key_file = $keys/link.psk
		endpoint = $E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT
		forward_listen = 127.0.0.1:$E2E_FORWARD_PORT
	EOF
}

e2e_check_configs() {
	local node
	for node in primary standby; do
		"$WALGUARD_BIN" --check --config "$E2E_TMP/config/$node.conf" \
			>"$E2E_TMP/logs/$node-check.out" 2>&1 \
			|| e2e_fail "walguard --check rejected $node.conf (see $node-check.out above)"
	done
}

e2e_daemon_log() { echo "$E2E_TMP/logs/$1-walguard.log"; }

# Start the walguard daemon of NODE in its namespace, logging to
# logs/NODE-walguard.log, and wait until it listens.
e2e_daemon_start() {
	local node=$1
	local namespace
	namespace=$(e2e_namespace_of "$node")

	# ip netns exec execs the daemon, so $! is the daemon's own process id.
	ip netns exec "$namespace" "$WALGUARD_BIN" --config "$E2E_TMP/config/$node.conf" \
		</dev/null >>"$(e2e_daemon_log "$node")" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	E2E_DAEMON_PIDS[$node]=$!

	local address
	if [ "$node" = primary ]; then
		address="$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT"
	else
		address="127.0.0.1:$E2E_FORWARD_PORT"
	fi
	e2e_wait_for "walguard on the $node to listen on $address" 50 0.1 \
		e2e_daemon_listening "$node" "$address"
}

# Succeed when NODE's daemon is alive and something listens on ADDRESS in
# its namespace. Fails the run when the daemon has exited.
e2e_daemon_listening() {
	local node=$1 address=$2
	local pid=${E2E_DAEMON_PIDS[$node]}
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		e2e_fail "walguard on the $node exited with status $? (see $node-walguard.log above)"
	fi
	ip netns exec "$(e2e_namespace_of "$node")" ss -Hltn "src $address" | grep -q .
}

# Succeed when NODE's daemon process is still running.
e2e_daemon_alive() {
	kill -0 "${E2E_DAEMON_PIDS[$1]}" 2>/dev/null
}

# Stop NODE's daemon with SIGTERM and return its exit status. Sends KILL
# after E2E_DAEMON_STOP_TIMEOUT seconds, which makes the status 137.
e2e_daemon_stop() {
	local node=$1
	local pid=${E2E_DAEMON_PIDS[$node]}
	local try status
	kill -TERM "$pid" 2>/dev/null
	for try in $(seq $((E2E_DAEMON_STOP_TIMEOUT * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	status=$?
	unset "E2E_DAEMON_PIDS[$node]"
	return "$status"
}

# ---------------------------------------------------------------------------
# Keeping a run (the demo's --keep)

E2E_STATE_FILE=${E2E_STATE_FILE:-/run/walguard-demo.state}

# Record what a kept run left running, for e2e_cleanup_from_state. The
# daemons' process ids are left out on purpose: a later cleanup finds
# them with 'ip netns pids', which cannot hit a reused id.
e2e_write_state() {
	{
		printf 'E2E_TMP=%q\n' "$E2E_TMP"
		printf 'E2E_NS_PRIMARY=%q\n' "$E2E_NS_PRIMARY"
		printf 'E2E_NS_STANDBY=%q\n' "$E2E_NS_STANDBY"
		printf 'E2E_VETH_PRIMARY=%q\n' "$E2E_VETH_PRIMARY"
		printf 'E2E_VETH_STANDBY=%q\n' "$E2E_VETH_STANDBY"
	} >"$E2E_STATE_FILE"
}

# Tear down a run kept earlier, as recorded in E2E_STATE_FILE. Returns 1
# when there is no such file.
e2e_cleanup_from_state() {
	[ -f "$E2E_STATE_FILE" ] || return 1
	# shellcheck source=/dev/null
	. "$E2E_STATE_FILE"
	e2e_cleanup
	rm -f "$E2E_STATE_FILE"
}
