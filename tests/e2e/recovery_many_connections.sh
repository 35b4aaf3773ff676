#!/bin/bash
# End-to-end test: 500 simultaneous client connections through one pair
# of daemons while replication runs, then more connections than the
# standby's daemon has descriptors for.
#
# All 500 clients start at once. Each is a psql from the standby
# namespace that connects through 127.0.0.1:5433 and waits for a shared
# advisory lock held on the primary, so all 500 are connected at the same
# moment. All must succeed, the walreceiver must keep its connection (same
# walsender), and each daemon's open descriptor count must return to its
# baseline afterwards.
#
# Then the standby's daemon restarts under prlimit --nofile=64:64, and 80
# clients try to connect at once. Those that do not fit must be rejected,
# with log lines that name the cause (the descriptor limit). Those that fit
# and the walreceiver must keep working, and the daemon must not spin: its
# CPU time during the overload must stay low.
#
# Run as root: bash tests/e2e/recovery_many_connections.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_many_connections" or "FAIL
# recovery_many_connections: REASON"; the exit status is 0, 1, or 77
# (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

client_count=500
limited_descriptors=64
limited_client_count=80
lock_key=4242
# The daemon's CPU time during the overload, as a share of the wall time,
# above which it counts as spinning.
max_cpu_share=0.25

rec_init recovery_many_connections 200
REC_PG_MAX_CONNECTIONS=$((client_count + 50))
# 1000 new processes (500 psql clients and their backends, all doing
# SCRAM) leave a daemon on a 2-CPU machine without CPU for seconds at a
# time. So this test keeps the default handshake and connect timeouts and
# uses a keepalive_timeout of 15s, not the short ones of the other tests.
rec_option both handshake_timeout 5s
rec_option both connect_timeout 10s
rec_option both keepalive_interval 5s
rec_option both keepalive_timeout 15s
rec_setup_all

clients_script=$E2E_TMP/clients.sh
cat >"$clients_script" <<'EOF'
# Start COUNT psql clients at once through the tunnel, each waiting for
# the shared advisory lock KEY, and write DIR/N.out and DIR/N.status for
# client N. Runs as postgres in the standby namespace.
count=$1 dir=$2 key=$3 psql=$4 port=$5
for i in $(seq "$count"); do
	{
		"$psql" -X -q -A -t -v ON_ERROR_STOP=1 \
			-d "host=127.0.0.1 port=$port dbname=walguard_test user=app sslmode=disable connect_timeout=30" \
			-c "SELECT pg_advisory_lock_shared($key)" >"$dir/$i.out" 2>&1
		echo $? >"$dir/$i.status"
	} &
done
wait
EOF

# Start a session on the primary that holds the advisory lock exclusively,
# so that every client waits.
hold_lock() {
	e2e_as_postgres primary timeout 150 "$PG_BIN/psql" -X -q -h "$(e2e_pg_socket_dir primary)" \
		-p "$E2E_PG_PORT" -d walguard_test \
		-c "SELECT pg_advisory_lock($lock_key)" -c "SELECT pg_sleep(140)" \
		>/dev/null 2>&1 &
	lock_holder_job=$!
	rec_wait_until 10 "the primary to hold advisory lock $lock_key" lock_is_held
}

lock_is_held() {
	local count
	count=$(e2e_sql primary walguard_test "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $lock_key AND mode = 'ExclusiveLock' AND granted") || return 1
	[ "$count" = 1 ]
}

release_lock() {
	e2e_sql primary walguard_test "
		SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND objid = $lock_key AND mode = 'ExclusiveLock' AND granted" >/dev/null \
		|| e2e_fail "terminating the session that holds advisory lock $lock_key failed"
	wait "$lock_holder_job" 2>/dev/null || true
}

# Print how many clients wait for the advisory lock on the primary.
waiting_clients() {
	e2e_sql primary postgres "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND wait_event = 'advisory'"
}

# Start COUNT clients at once in the background, writing into DIR.
start_clients() {
	local count=$1 dir=$2
	mkdir -p "$dir"
	chown postgres: "$dir"
	e2e_as_postgres standby env PGPASSWORD="$(cat "$E2E_TMP/app.password")" \
		PGOPTIONS="-c statement_timeout=60s" \
		bash "$clients_script" "$count" "$dir" "$lock_key" "$PG_BIN/psql" "$E2E_FORWARD_PORT" \
		>"$dir/launcher.out" 2>&1 &
	clients_job=$!
}

# Print how many clients in DIR have exited, and how many with status 0.
finished_clients() {
	find "$1" -name '*.status' | wc -l
}
successful_clients() {
	grep -lx 0 "$1"/*.status 2>/dev/null | wc -l
}

# Succeed when each of the COUNT clients started into DIR either waits
# for the lock or has exited.
settled() {
	local dir=$1 count=$2
	local waiting finished
	waiting=$(waiting_clients) || return 1
	finished=$(finished_clients "$dir")
	[ $((waiting + finished)) -eq "$count" ]
}

# Print the output of one client in DIR that failed, and how often each
# daemon logged each warning, so that a failure shows its cause.
print_failed_client() {
	local status node
	status=$(grep -L -x 0 "$1"/*.status | head -n 1)
	[ -n "$status" ] || return 0
	echo "---- output of client $(basename "${status%.status}") ----" >&2
	cat "${status%.status}.out" >&2
	for node in primary standby; do
		echo "---- warnings of the $node's daemon, counted ----" >&2
		grep "level=warn" "$(e2e_daemon_log "$node")" \
			| sed -E 's/.*event=([a-z_]+) .*(error|reason)="([^"]*)".*/\1: \3/; s/[0-9]+ (ms|attempts)/N \1/g' \
			| sort | uniq -c | sort -rn | head -n 8 >&2
	done
}

fd_count_is() {
	[ "$(rec_fd_count "$1")" -eq "$2" ]
}

e2e_step "record the baseline with only the walreceiver connected"
walsender_before=$(rec_walsender_pid primary standby)
declare -A baseline_fds
for node in primary standby; do
	baseline_fds[$node]=$(rec_fd_count "$node")
	echo "    the $node's daemon has ${baseline_fds[$node]} open descriptors"
done
rec_pgbench_start primary 15 -R 100

e2e_step "connect $client_count clients through the tunnel, all open at once"
hold_lock
start=$EPOCHREALTIME
start_clients "$client_count" "$E2E_TMP/clients"
rec_wait_until 90 "each of the $client_count clients to either wait for the lock or fail" \
	settled "$E2E_TMP/clients" "$client_count"
failed=$(finished_clients "$E2E_TMP/clients")
if [ "$failed" -ne 0 ]; then
	print_failed_client "$E2E_TMP/clients"
	e2e_fail "$failed of $client_count clients failed before the lock was released (the output of one is above)"
fi
echo "    all $client_count clients connected after $REC_WAITED s"
for node in primary standby; do
	peak=$(rec_fd_count "$node")
	echo "    the $node's daemon has $peak open descriptors"
	[ "$peak" -ge $((baseline_fds[$node] + 2 * client_count)) ] \
		|| e2e_fail "the $node's daemon has $peak descriptors with $client_count clients, expected at least $((baseline_fds[$node] + 2 * client_count)) (two per connection)"
done
rec_is_streaming primary standby || e2e_fail "the standby does not stream with $client_count clients connected"

e2e_step "release the clients and check that all succeeded"
release_lock
status=0
wait "$clients_job" || status=$?
[ "$status" -eq 0 ] || e2e_fail "the client launcher exited with status $status"
succeeded=$(successful_clients "$E2E_TMP/clients")
if [ "$succeeded" -ne "$client_count" ]; then
	print_failed_client "$E2E_TMP/clients"
	e2e_fail "only $succeeded of $client_count clients succeeded (the output of one that failed is above)"
fi
echo "    all $client_count clients succeeded, $(rec_seconds_since "$start") s after the first started"
walsender_after=$(rec_walsender_pid primary standby)
[ "$walsender_after" = "$walsender_before" ] \
	|| e2e_fail "the walsender changed from '$walsender_before' to '$walsender_after': the walreceiver reconnected"
for node in primary standby; do
	rec_wait_until 15 "the $node's daemon to return to ${baseline_fds[$node]} open descriptors (now $(rec_fd_count "$node"))" \
		fd_count_is "$node" "${baseline_fds[$node]}"
done
echo "    both daemons are back to their baseline descriptor counts"
rec_pgbench_wait

e2e_step "restart the standby's daemon with $limited_descriptors descriptors"
status=0
e2e_daemon_stop standby || status=$?
[ "$status" -eq 0 ] || e2e_fail "walguard on the standby exited with status $status on SIGTERM, expected 0"
rec_daemon_start standby prlimit --nofile="$limited_descriptors:$limited_descriptors"
limits=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$(rec_daemon_pid standby)/limits")
[ "$limits" = "$limited_descriptors $limited_descriptors" ] \
	|| e2e_fail "the standby's daemon runs with descriptor limits '$limits', expected '$limited_descriptors $limited_descriptors'"
rec_wait_streaming primary standby 20
walsender_limited=$(rec_walsender_pid primary standby)
limited_baseline=$(rec_fd_count standby)
echo "    the daemon has $limited_baseline of $limited_descriptors descriptors open with the walreceiver connected"

e2e_step "connect $limited_client_count clients at once, more than fit"
standby_mark=$(rec_log_mark standby)
hold_lock
cpu_start=$(rec_cpu_ms standby)
start=$EPOCHREALTIME
start_clients "$limited_client_count" "$E2E_TMP/limited"
rec_wait_until 60 "each of the $limited_client_count clients to either wait for the lock or fail" \
	settled "$E2E_TMP/limited" "$limited_client_count"
# Stay at the limit a little longer: a daemon that spins burns CPU here.
sleep 3
rejected=$(finished_clients "$E2E_TMP/limited")
connected=$(waiting_clients)
cpu_ms=$(($(rec_cpu_ms standby) - cpu_start))
wall=$(rec_seconds_since "$start")
echo "    $connected clients connected and $rejected were rejected after $wall s"
echo "    the standby's daemon used $cpu_ms ms of CPU in those $wall s"
[ "$connected" -ge 5 ] || e2e_fail "only $connected clients got through with $limited_descriptors descriptors"
[ "$rejected" -ge 1 ] || e2e_fail "no client was rejected: all $limited_client_count fit in $limited_descriptors descriptors"
awk -v cpu="$cpu_ms" -v wall="$wall" -v share="$max_cpu_share" 'BEGIN { exit !(cpu / 1000 <= wall * share) }' \
	|| e2e_fail "the standby's daemon used $cpu_ms ms of CPU in $wall s at its descriptor limit, more than $max_cpu_share of the time: it spins"
rejections=$(rec_log_count standby "$standby_mark" 'event=connection_rejected')
[ "$rejections" -gt 0 ] || e2e_fail "the standby's daemon logged nothing about the rejected clients"
echo "    $rejections log lines about the rejections (rate-limited), for example:"
rec_log_since standby "$standby_mark" | grep -m 2 -E 'event=connection_rejected' | cut -c1-260 | sed 's/^/      /'
# No client may be dropped without being counted: the status counter
# must match the clients that failed.
kill -USR1 "$(rec_daemon_pid standby)"
rec_wait_until 5 "a status line from the standby's daemon" \
	rec_log_has standby "$standby_mark" 'event=status '
counted=$(rec_log_since standby "$standby_mark" | grep 'event=status ' | tail -n 1 \
	| sed -n 's/.* connections_rejected=\([0-9]*\).*/\1/p')
[ "$counted" = "$rejected" ] \
	|| e2e_fail "the standby's daemon counted ${counted:-no} rejected connections, but $rejected clients failed"
sample=$(grep -L -x 0 "$E2E_TMP/limited"/*.status | head -n 1)
echo "    a rejected client: $(head -n 1 "${sample%.status}.out")"

e2e_step "check replication while the daemon is at its limit"
e2e_daemon_alive standby || e2e_fail "walguard on the standby exited at its descriptor limit"
[ "$(rec_walsender_pid primary standby)" = "$walsender_limited" ] \
	|| e2e_fail "the walreceiver lost its connection while the daemon was at its descriptor limit"
rec_mark at-descriptor-limit
rec_wait_replayed primary standby 10
echo "    a row written now reached the standby after $REC_WAITED s"

e2e_step "release the clients that got through"
release_lock
status=0
wait "$clients_job" || status=$?
[ "$status" -eq 0 ] || e2e_fail "the client launcher exited with status $status"
succeeded=$(successful_clients "$E2E_TMP/limited")
[ "$succeeded" -eq "$connected" ] \
	|| e2e_fail "$succeeded clients succeeded, but $connected had connected"
rec_wait_until 15 "the standby's daemon to return to $limited_baseline open descriptors (now $(rec_fd_count standby))" \
	fd_count_is standby "$limited_baseline"
echo "    the daemon is back to $limited_baseline open descriptors"

e2e_step "compare the clusters"
rec_compare_clusters primary standby
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done

e2e_print_total_time
