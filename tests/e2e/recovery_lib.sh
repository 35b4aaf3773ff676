# Helpers for the recovery tests (tests/e2e/recovery_*.sh), sourced after
# lib.sh. They write configs in which each daemon can dial the other, and
# set up PostgreSQL with short replication timeouts and a replication
# slot. They also run pgbench in the background, cut the link, read the
# daemons' logs and /proc, and compare the two clusters.
#
# A run that uses rec_netns_file also leaves files in /etc/netns; the
# teardown of lib.sh is wrapped below so that they go on every exit path.
# With REC_SAVE_LOGS=DIR in the environment, the teardown first copies
# the run's logs into DIR, which it creates.

# shellcheck shell=bash

REC_SLOT=standby_slot
REC_WAL_RECEIVER_TIMEOUT=5s
REC_WAL_SENDER_TIMEOUT=5s
REC_PG_MAX_CONNECTIONS=100

# The standby's endpoint for the primary and the primary's listen address;
# a test may change them before rec_write_configs.
REC_PRIMARY_ENDPOINT_HOST=$E2E_PRIMARY_ADDR
REC_PRIMARY_LISTEN="$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT"
REC_STANDBY_LISTEN="$E2E_STANDBY_ADDR:$E2E_TUNNEL_PORT"

# [interface] keys of each daemon, set with rec_option. Short timeouts, so
# that each event is noticed within seconds.
declare -A REC_OPTIONS_PRIMARY=(
	[log_level]=debug
	[handshake_timeout]=2s
	[keepalive_interval]=1s
	[keepalive_timeout]=3s
	[connect_timeout]=5s
	[dial_backoff_max]=1s
	[shutdown_grace]=1s
)
declare -A REC_OPTIONS_STANDBY=()
for rec_key in "${!REC_OPTIONS_PRIMARY[@]}"; do
	REC_OPTIONS_STANDBY[$rec_key]=${REC_OPTIONS_PRIMARY[$rec_key]}
done
unset rec_key

# Files this run made under /etc/netns, and whether it made the folder.
REC_NETNS_FILES=()
REC_NETNS_DIRS=()
REC_MADE_ETC_NETNS=0

# A connection_closed line for a tunnel connection that the daemon gave up
# on because nothing came back: after keepalive_timeout without a record
# or with its sent bytes unacknowledged (both logged as
# event=tunnel_timeout), or when the kernel's TCP keepalive gave up first.
REC_DEAD_PATH_CLOSE='event=connection_closed .*reason="(nothing received for|sent bytes unacknowledged for|tunnel read failed: connection timed out|write to tunnel failed: connection timed out)'

REC_PGBENCH_PID=""
REC_PGBENCH_LOG=""
REC_PGBENCH_RUNS=0
REC_WAITED=0

# ---------------------------------------------------------------------------
# Start and teardown

# Start a run: e2e_init, a watchdog of SECONDS, the binaries.
rec_init() {
	local name=$1 seconds=$2
	e2e_init "$name"
	# lib.sh traps INT and TERM. A closed output pipe or a closed terminal
	# must also end the run through its EXIT trap, which cleans up.
	trap 'rec_on_lost_output PIPE' PIPE
	trap 'rec_on_lost_output HUP' HUP
	e2e_start_watchdog "$seconds"
	e2e_find_binaries
	local binary
	for binary in prlimit stdbuf mkfifo getconf; do
		command -v "$binary" >/dev/null || e2e_fail "$binary not found; install util-linux and coreutils"
	done
}

# Handle SIGPIPE or SIGHUP: the run's output may have nowhere to go.
# After SIGPIPE, send all further output to /dev/null, so that no write
# can kill the teardown halfway. Then stop the run like lib.sh does for
# INT and TERM, unless the EXIT trap already runs (it sets INT to be
# ignored first), which must not be cut short by a second exit.
rec_on_lost_output() {
	local signal=$1
	trap '' "$signal"
	if [ "$signal" = PIPE ]; then
		exec >/dev/null 2>&1 {E2E_STDOUT_FD}>/dev/null {E2E_STDERR_FD}>/dev/null
	fi
	case "$(trap -p INT)" in
	*"''"*) return 0 ;;
	esac
	e2e_on_signal "$signal"
}

# lib.sh's teardown, renamed, so that e2e_cleanup can run ours first.
eval "rec_lib_cleanup() $(declare -f e2e_cleanup | tail -n +2)"

e2e_cleanup() {
	if [ -n "${REC_SAVE_LOGS:-}" ] && [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP/logs" ]; then
		mkdir -p "$REC_SAVE_LOGS" && cp -r "$E2E_TMP/logs/." "$REC_SAVE_LOGS/"
	fi
	rec_cleanup_netns_files
	rec_lib_cleanup
}

rec_cleanup_netns_files() {
	local file dir
	for file in "${REC_NETNS_FILES[@]}"; do
		rm -f "$file"
	done
	REC_NETNS_FILES=()
	for dir in "${REC_NETNS_DIRS[@]}"; do
		rmdir "$dir" 2>/dev/null
	done
	REC_NETNS_DIRS=()
	if [ "$REC_MADE_ETC_NETNS" = 1 ]; then
		rmdir /etc/netns 2>/dev/null
		REC_MADE_ETC_NETNS=0
	fi
	return 0
}

# Write CONTENT to /etc/netns/NAMESPACE/FILE, which 'ip netns exec' mounts
# over /etc/FILE for the commands it starts. The write keeps the file's
# inode, so a process started earlier reads the new content too.
rec_netns_file() {
	local namespace=$1 file=$2 content=$3
	local dir=/etc/netns/$namespace
	if [ ! -d /etc/netns ]; then
		mkdir /etc/netns
		REC_MADE_ETC_NETNS=1
	fi
	if [ ! -d "$dir" ]; then
		mkdir "$dir"
		REC_NETNS_DIRS+=("$dir")
	fi
	if [ ! -e "$dir/$file" ]; then
		REC_NETNS_FILES+=("$dir/$file")
	fi
	printf '%s\n' "$content" >"$dir/$file"
}

# ---------------------------------------------------------------------------
# Time

# Print the seconds since START (an $EPOCHREALTIME value), to 0.1 s.
rec_seconds_since() {
	awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'
}

# Succeed when A <= B, both decimal numbers.
rec_at_most() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}

# Poll COMMAND... every 0.2 s for up to SECONDS, and fail the run with
# "timed out after SECONDS s waiting for WHAT" when it never succeeds.
# Sets REC_WAITED to the seconds it took.
rec_wait_until() {
	local seconds=$1 what=$2
	shift 2
	local start=$EPOCHREALTIME
	while true; do
		if "$@"; then
			REC_WAITED=$(rec_seconds_since "$start")
			return 0
		fi
		if ! rec_at_most "$(rec_seconds_since "$start")" "$seconds"; then
			e2e_fail "timed out after $seconds s waiting for $what"
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------------------
# Configs and daemons

# Set an [interface] KEY of NODE (primary, standby or both) to VALUE.
rec_option() {
	local node=$1 key=$2 value=$3
	case "$node" in
	primary) REC_OPTIONS_PRIMARY[$key]=$value ;;
	standby) REC_OPTIONS_STANDBY[$key]=$value ;;
	both)
		REC_OPTIONS_PRIMARY[$key]=$value
		REC_OPTIONS_STANDBY[$key]=$value
		;;
	*) e2e_fail "rec_option: unknown node '$node' (expected primary, standby or both)" ;;
	esac
}

rec_interface_lines() {
	local node=$1 key
	local -n options=REC_OPTIONS_${node^^}
	for key in $(printf '%s\n' "${!options[@]}" | sort); do
		printf '%s = %s\n' "$key" "${options[$key]}"
	done
}

# Write both daemons' configs. Each peer section has endpoint and
# forward_listen, so this host can dial the other, and forward_target, so
# the other can dial here: replication can run either way after a
# failover, through the same two daemons.
rec_write_configs() {
	local keys=$E2E_TMP/keys
	{
		echo "[interface]"
		echo "private_key_file = $keys/primary.key"
		echo "listen = $REC_PRIMARY_LISTEN"
		rec_interface_lines primary
		echo
		echo "[peer standby]"
		echo "public_key = $(e2e_public_key standby)"
		echo "preshared_key_file = $keys/link.psk"
		echo "endpoint = $E2E_STANDBY_ADDR:$E2E_TUNNEL_PORT"
		echo "forward_listen = 127.0.0.1:$E2E_FORWARD_PORT"
		echo "forward_target = 127.0.0.1:$E2E_PG_PORT"
	} >"$E2E_TMP/config/primary.conf"
	{
		echo "[interface]"
		echo "private_key_file = $keys/standby.key"
		echo "listen = $REC_STANDBY_LISTEN"
		rec_interface_lines standby
		echo
		echo "[peer primary]"
		echo "public_key = $(e2e_public_key primary)"
		echo "preshared_key_file = $keys/link.psk"
		echo "endpoint = $REC_PRIMARY_ENDPOINT_HOST:$E2E_TUNNEL_PORT"
		echo "forward_listen = 127.0.0.1:$E2E_FORWARD_PORT"
		echo "forward_target = 127.0.0.1:$E2E_PG_PORT"
	} >"$E2E_TMP/config/standby.conf"
}

# Start NODE's daemon in its namespace, optionally under WRAPPER... (a
# command that execs the rest, such as prlimit), and wait until it listens
# on its forward_listen address.
rec_daemon_start() {
	local node=$1
	shift
	local namespace
	namespace=$(e2e_namespace_of "$node")

	# ip netns exec and the wrapper exec the daemon, so $! is its process id.
	ip netns exec "$namespace" "$@" "$WALGUARD_BIN" --config "$E2E_TMP/config/$node.conf" \
		</dev/null >>"$(e2e_daemon_log "$node")" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	E2E_DAEMON_PIDS[$node]=$!
	e2e_wait_for "walguard on the $node to listen on 127.0.0.1:$E2E_FORWARD_PORT" 50 0.1 \
		e2e_daemon_listening "$node" "127.0.0.1:$E2E_FORWARD_PORT"
}

rec_daemon_pid() {
	echo "${E2E_DAEMON_PIDS[$1]}"
}

# Send SIGKILL to NODE's daemon and reap it.
rec_daemon_kill() {
	local node=$1
	local pid=${E2E_DAEMON_PIDS[$node]}
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	unset "E2E_DAEMON_PIDS[$node]"
}

# The number of lines in NODE's daemon log, as a mark for rec_log_since.
rec_log_mark() {
	local log
	log=$(e2e_daemon_log "$1")
	[ -f "$log" ] || { echo 0; return; }
	wc -l <"$log"
}

# Print the lines of NODE's daemon log after line MARK.
rec_log_since() {
	tail -n +"$(($2 + 1))" "$(e2e_daemon_log "$1")"
}

# Print how many lines after MARK in NODE's daemon log match the
# extended regular expression PATTERN.
rec_log_count() {
	local node=$1 mark=$2 pattern=$3
	rec_log_since "$node" "$mark" | grep -cE -- "$pattern" || true
}

rec_log_has() {
	[ "$(rec_log_count "$@")" -gt 0 ]
}

# Descriptors, resident memory in KiB and CPU time in milliseconds of
# NODE's daemon, from /proc.
rec_fd_count() {
	local pid
	pid=$(rec_daemon_pid "$1")
	find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l
}

rec_rss_kib() {
	local pid
	pid=$(rec_daemon_pid "$1")
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status"
}

rec_cpu_ms() {
	local pid ticks
	pid=$(rec_daemon_pid "$1")
	ticks=$(getconf CLK_TCK)
	# Fields 14 and 15 are utime and stime; the name in field 2 has no space.
	awk -v ticks="$ticks" '{ printf "%d", ($14 + $15) * 1000 / ticks }' "/proc/$pid/stat"
}

# Established TCP connections in NODE's namespace whose source or
# destination port is PORT.
rec_established_count() {
	local node=$1 port=$2
	ip netns exec "$(e2e_namespace_of "$node")" ss -Htn state established \
		"( sport = :$port or dport = :$port )" | wc -l
}

# ---------------------------------------------------------------------------
# The link between the namespaces

# Drop every packet on the veth link, both ways, in both namespaces.
# Loopback inside each namespace keeps working.
rec_cut_link() {
	ip netns exec "$E2E_NS_PRIMARY" iptables -I INPUT -i "$E2E_VETH_PRIMARY" -j DROP
	ip netns exec "$E2E_NS_PRIMARY" iptables -I OUTPUT -o "$E2E_VETH_PRIMARY" -j DROP
	ip netns exec "$E2E_NS_STANDBY" iptables -I INPUT -i "$E2E_VETH_STANDBY" -j DROP
	ip netns exec "$E2E_NS_STANDBY" iptables -I OUTPUT -o "$E2E_VETH_STANDBY" -j DROP
}

rec_restore_link() {
	ip netns exec "$E2E_NS_PRIMARY" iptables -D INPUT -i "$E2E_VETH_PRIMARY" -j DROP
	ip netns exec "$E2E_NS_PRIMARY" iptables -D OUTPUT -o "$E2E_VETH_PRIMARY" -j DROP
	ip netns exec "$E2E_NS_STANDBY" iptables -D INPUT -i "$E2E_VETH_STANDBY" -j DROP
	ip netns exec "$E2E_NS_STANDBY" iptables -D OUTPUT -o "$E2E_VETH_STANDBY" -j DROP
}

# Packets dropped so far by the rules of rec_cut_link, both namespaces.
rec_cut_drop_count() {
	{
		ip netns exec "$E2E_NS_PRIMARY" iptables -L -v -n -x
		ip netns exec "$E2E_NS_STANDBY" iptables -L -v -n -x
	} | awk -v a="$E2E_VETH_PRIMARY" -v b="$E2E_VETH_STANDBY" '
		$3 == "DROP" && ($6 == a || $6 == b || $7 == a || $7 == b) { sum += $1 }
		END { print sum + 0 }'
}

# ---------------------------------------------------------------------------
# PostgreSQL

# Create the primary's cluster with lib.sh, then add short replication
# timeouts: the settings that docs/operations.md recommends, scaled down.
rec_pg_init_primary() {
	e2e_pg_init_primary
	cat >>"$(e2e_pg_data_dir primary)/postgresql.conf" <<-EOF

		# Written by walguard's tests/e2e/recovery_lib.sh.
		max_connections = $REC_PG_MAX_CONNECTIONS
		wal_sender_timeout = $REC_WAL_SENDER_TIMEOUT
		wal_receiver_timeout = $REC_WAL_RECEIVER_TIMEOUT
		wal_receiver_status_interval = 1s
		wal_retrieve_retry_interval = 1s
		# pg_rewind needs it (or data checksums).
		wal_log_hints = on
	EOF
}

# Take the standby's base backup through the tunnel, creating the
# replication slot REC_SLOT on the primary; -R makes the standby stream
# through the same address and slot.
rec_pg_basebackup() {
	local conninfo="host=127.0.0.1 port=$E2E_FORWARD_PORT user=replicator sslmode=disable"
	local password
	password=$(cat "$E2E_TMP/replicator.password")
	e2e_as_postgres standby env PGPASSWORD="$password" PGCONNECT_TIMEOUT=10 \
		timeout "$E2E_BASEBACKUP_TIMEOUT" "$PG_BIN/pg_basebackup" \
		-D "$(e2e_pg_data_dir standby)" -d "$conninfo" \
		-R -X stream -C -S "$REC_SLOT" -c fast --no-sync --verbose \
		>"$E2E_TMP/logs/standby-basebackup.log" 2>&1 \
		|| e2e_fail "pg_basebackup through 127.0.0.1:$E2E_FORWARD_PORT failed (see standby-basebackup.log above)"
}

# Print the process id of the walsender on SENDER that streams to the
# cluster named RECEIVER, or nothing when none streams.
rec_walsender_pid() {
	local sender=$1 receiver=$2
	e2e_sql "$sender" postgres \
		"SELECT pid FROM pg_stat_replication WHERE application_name = '$receiver' AND state = 'streaming'" \
		2>/dev/null
}

rec_is_streaming() {
	local pid
	pid=$(rec_walsender_pid "$@") || return 1
	[ -n "$pid" ]
}

# Wait up to SECONDS until SENDER streams to RECEIVER.
rec_wait_streaming() {
	local sender=$1 receiver=$2 seconds=$3
	rec_wait_until "$seconds" "the $sender to stream WAL to the $receiver (pg_stat_replication)" \
		rec_is_streaming "$sender" "$receiver"
}

# Succeed when NODE has replayed WAL up to LSN.
rec_replayed() {
	local node=$1 lsn=$2 result
	result=$(e2e_sql "$node" postgres "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '$lsn') >= 0" 2>/dev/null) || return 1
	[ "$result" = t ]
}

rec_current_lsn() {
	e2e_sql "$1" postgres "SELECT pg_current_wal_lsn()" \
		|| e2e_fail "reading pg_current_wal_lsn() on the $1 failed"
}

# Wait up to SECONDS until RECEIVER has replayed what SENDER has written.
rec_wait_replayed() {
	local sender=$1 receiver=$2 seconds=$3
	local lsn
	lsn=$(rec_current_lsn "$sender")
	rec_wait_until "$seconds" "the $receiver to replay WAL up to $lsn, the $sender's position" \
		rec_replayed "$receiver" "$lsn"
}

# Create pgbench's tables (scale 1) and recovery_markers on the primary.
rec_pg_create_tables() {
	e2e_as_postgres primary timeout 60 "$PG_BIN/pgbench" -h "$(e2e_pg_socket_dir primary)" \
		-p "$E2E_PG_PORT" -i -s 1 -q walguard_test >"$E2E_TMP/logs/primary-pgbench-init.log" 2>&1 \
		|| e2e_fail "pgbench -i on the primary failed (see primary-pgbench-init.log above)"
	e2e_sql primary walguard_test "
		CREATE TABLE recovery_markers (
			id bigserial PRIMARY KEY,
			label text NOT NULL,
			written_at timestamptz NOT NULL DEFAULT now())" >/dev/null \
		|| e2e_fail "creating recovery_markers on the primary failed"
}

# Insert a row labeled LABEL into recovery_markers on NODE (default primary).
rec_mark() {
	local label=$1 node=${2:-primary}
	e2e_sql "$node" walguard_test "INSERT INTO recovery_markers (label) VALUES ('$label')" >/dev/null \
		|| e2e_fail "inserting the marker '$label' on the $node failed"
}

# Print how many rows labeled LABEL NODE has.
rec_marker_count() {
	local node=$1 label=$2
	e2e_sql "$node" walguard_test "SELECT count(*) FROM recovery_markers WHERE label = '$label'"
}

# Run pgbench on NODE in the background for SECONDS, with OPTIONS... on
# top of "-c 2 -j 2". rec_pgbench_wait collects it.
rec_pgbench_start() {
	local node=$1 seconds=$2
	shift 2
	REC_PGBENCH_RUNS=$((REC_PGBENCH_RUNS + 1))
	REC_PGBENCH_LOG="$E2E_TMP/logs/$node-pgbench-$REC_PGBENCH_RUNS.log"
	e2e_as_postgres "$node" timeout $((seconds + 60)) "$PG_BIN/pgbench" \
		-h "$(e2e_pg_socket_dir "$node")" -p "$E2E_PG_PORT" \
		-T "$seconds" -c 2 -j 2 "$@" walguard_test >"$REC_PGBENCH_LOG" 2>&1 &
	REC_PGBENCH_PID=$!
}

# Wait for the pgbench run of rec_pgbench_start and check that it wrote.
rec_pgbench_wait() {
	local status=0 processed
	wait "$REC_PGBENCH_PID" || status=$?
	REC_PGBENCH_PID=""
	[ "$status" -eq 0 ] \
		|| e2e_fail "pgbench exited with status $status (see $(basename "$REC_PGBENCH_LOG") above)"
	processed=$(awk -F': ' '/^number of transactions actually processed/ { split($2, n, "/"); print n[1] }' "$REC_PGBENCH_LOG")
	[ "${processed:-0}" -gt 0 ] \
		|| e2e_fail "pgbench processed no transaction (see $(basename "$REC_PGBENCH_LOG") above)"
	grep -E "^number of transactions actually processed|^tps" "$REC_PGBENCH_LOG" | sed 's/^/    pgbench: /'
}

# Wait until RECEIVER has replayed everything SENDER has written, then
# compare every table of walguard_test on both: row counts and an md5 of
# the rows in primary key order must match.
rec_compare_clusters() {
	local sender=$1 receiver=$2
	rec_wait_replayed "$sender" "$receiver" 60
	echo "    the $receiver replayed the $sender's WAL position after $REC_WAITED s"

	local sender_digests receiver_digests table
	sender_digests=$(e2e_table_digests "$sender") \
		|| e2e_fail "reading the table digests on the $sender failed"
	receiver_digests=$(e2e_table_digests "$receiver") \
		|| e2e_fail "reading the table digests on the $receiver failed"
	printf '%s\n' "$sender_digests" | awk -F '\t' '{ printf "    %-18s %8d rows  md5 %s\n", $1, $2, $3 }'
	for table in pgbench_accounts pgbench_branches pgbench_history pgbench_tellers recovery_markers; do
		printf '%s\n' "$sender_digests" | grep -q "^$table	" \
			|| e2e_fail "table $table is missing from the $sender's digests"
	done
	if [ "$sender_digests" != "$receiver_digests" ]; then
		diff <(printf '%s\n' "$sender_digests") <(printf '%s\n' "$receiver_digests") | sed 's/^/    /' >&2
		e2e_fail "row counts or md5 digests differ between the $sender (<) and the $receiver (>)"
	fi
}

# ---------------------------------------------------------------------------
# The usual start of a run

rec_setup_network_and_keys() {
	e2e_step "create the namespaces, keys and configs"
	e2e_setup_network
	e2e_make_keys
	rec_write_configs
	e2e_check_configs
}

rec_setup_primary() {
	e2e_step "create and start the primary"
	rec_pg_init_primary
	e2e_pg_start primary
	e2e_pg_create_roles
	rec_pg_create_tables
	# The standby reaches the primary's PostgreSQL only through walguard.
	e2e_block_direct_path
}

rec_start_daemons() {
	e2e_step "start both daemons"
	rec_daemon_start primary
	rec_daemon_start standby
}

rec_setup_standby() {
	e2e_step "take the base backup through the tunnel and start the standby"
	rec_pg_basebackup
	e2e_pg_start standby
	rec_wait_streaming primary standby 60
}

# Everything up to a standby that streams from the primary through walguard.
rec_setup_all() {
	rec_setup_network_and_keys
	rec_setup_primary
	rec_start_daemons
	rec_setup_standby
}
