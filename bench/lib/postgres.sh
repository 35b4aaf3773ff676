# PostgreSQL clusters for bench/run.sh, sourced by it.
#
# Clusters live in the run's temporary directory, run as the postgres
# user, listen on 127.0.0.1 only, and trust every local connection.
# Clients connect over TCP with sslmode=disable, through a forwarder or
# directly.

# shellcheck shell=bash

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CREATED_DATA=""
export PGSSLMODE=disable
export PGCONNECT_TIMEOUT=10
export PGUSER=postgres

as_postgres() {
	runuser -u postgres -- "$@"
}

# Run one SQL statement on 127.0.0.1:PORT in database DB and print the
# result unaligned, without headers.
pg_sql() {
	local port=$1 db=$2 sql=$3
	timeout 120 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -d "$db" -c "$sql"
}

pg_write_config() {
	local data=$1 port=$2
	cat >>"$data/postgresql.conf" <<-EOF
		# Set by walguard's bench/run.sh
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '$BENCH_TMP/sockets'
		shared_buffers = 256MB
		max_connections = 100
		max_wal_senders = 4
		wal_keep_size = 1GB
	EOF
}

pg_start() {
	local data=$1 name=$2
	bench_register_cluster "$data"
	as_postgres timeout 90 "$PG_BIN/pg_ctl" -D "$data" -l "$BENCH_LOG_DIR/$name.log" -w -t 60 start \
		>/dev/null || {
		tail -n 20 "$BENCH_LOG_DIR/$name.log" >&2
		bench_die "PostgreSQL cluster $name did not start (log above)"
	}
}

pg_stop() {
	local data=$1
	as_postgres timeout 90 "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null ||
		bench_stop_cluster "$data"
	bench_unregister_cluster "$data"
}

# Make and start a new cluster named NAME on PORT, and set PG_CREATED_DATA
# to its data directory.
pg_create() {
	local name=$1 port=$2
	local data=$BENCH_TMP/pg/$name
	mkdir -p "$BENCH_TMP/pg" "$BENCH_TMP/sockets"
	chown postgres: "$BENCH_TMP/pg" "$BENCH_TMP/sockets"
	as_postgres timeout 120 "$PG_BIN/initdb" -D "$data" -A trust -U postgres --no-sync \
		>"$BENCH_LOG_DIR/$name-initdb.log" 2>&1 || bench_die "initdb for $name failed (see $BENCH_LOG_DIR/$name-initdb.log)"
	pg_write_config "$data" "$port"
	pg_start "$data" "$name"
	PG_CREATED_DATA=$data
}

# Make a standby of the cluster on PRIMARY_PORT, named NAME, on PORT,
# streaming directly from the primary, and set PG_CREATED_DATA to its data
# directory. The caller starts it.
pg_create_standby() {
	local name=$1 port=$2 primary_port=$3
	local data=$BENCH_TMP/pg/$name
	as_postgres timeout 600 "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -D "$data" \
		-X stream -c fast --no-sync -R >"$BENCH_LOG_DIR/$name-basebackup.log" 2>&1 ||
		bench_die "pg_basebackup for the standby $name failed (see $BENCH_LOG_DIR/$name-basebackup.log)"
	# The copied postgresql.conf has the primary's settings, and the ones
	# appended here come later, so they win. pg_standby_switch sets
	# primary_conninfo with application_name before any measurement.
	pg_write_config "$data" "$port"
	PG_CREATED_DATA=$data
}

# Point the standby on STANDBY_PORT at UPSTREAM_PORT and wait up to 60 s
# until the primary on PRIMARY_PORT reports it streaming as the
# synchronous standby through that port.
pg_standby_switch() {
	local standby_port=$1 primary_port=$2 upstream_port=$3 name=$4
	local deadline=$((SECONDS + 60)) state
	pg_sql "$standby_port" postgres "alter system set primary_conninfo = 'host=127.0.0.1 port=$upstream_port user=postgres sslmode=disable application_name=$name'" >/dev/null
	pg_sql "$standby_port" postgres "select pg_reload_conf()" >/dev/null
	while [ "$SECONDS" -le "$deadline" ]; do
		state=$(pg_sql "$standby_port" postgres \
			"select sender_port from pg_stat_wal_receiver where status = 'streaming'" || true)
		if [ "$state" = "$upstream_port" ]; then
			state=$(pg_sql "$primary_port" postgres \
				"select sync_state from pg_stat_replication where application_name = '$name' and state = 'streaming'" || true)
			[ "$state" = sync ] && return 0
		fi
		sleep 0.2
	done
	bench_die "the standby $name did not stream synchronously through port $upstream_port within 60 s"
}

# Print the value after "NAME = " in pgbench's output file FILE.
pgbench_field() {
	local file=$1 field=$2
	awk -v field="$field" 'index($0, field " = ") == 1 { sub(/^[^=]*= /, ""); print $1; exit }' "$file"
}

# Run pgbench for SECONDS against 127.0.0.1:PORT with the extra options
# given, and keep its output in OUTPUT.
pgbench_run() {
	local port=$1 seconds=$2 output=$3
	shift 3
	if ! timeout $((seconds + 60)) "$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -n -T "$seconds" "$@" bench \
		>"$output" 2>&1; then
		tail -n 20 "$output" >&2
		bench_die "pgbench $* on port $port failed (output above)"
	fi
}
