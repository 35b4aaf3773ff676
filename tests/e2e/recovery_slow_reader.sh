#!/bin/bash
# End-to-end test: a client starts a large COPY ... TO STDOUT through the
# tunnel and then stops reading for 60 s.
#
# The client is psql in the standby namespace, writing into a FIFO whose
# only reader never reads, so psql blocks in write(2) and stops reading
# its socket. Each daemon stops reading a socket while more than 256 KiB
# wait to be written on the other side, so the stall must travel back
# through both daemons until the primary's backend waits in ClientWrite.
# The client's connection must stay open all along, and both daemons'
# VmRSS must stay below the bound documented in docs/operations.md.
# Replication, on its own tunnel connection, must go on: the walsender
# stays the same and the standby replays every write within seconds.
# When a reader reads the FIFO again, the COPY must go on. The stall
# lasts far longer than keepalive_timeout (3s): a zero window whose
# probes are answered is not a dead path.
#
# Run as root: bash tests/e2e/recovery_slow_reader.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_slow_reader" or "FAIL
# recovery_slow_reader: REASON"; the exit status is 0, 1, or 77 (skipped:
# not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

stall_seconds=60
# The bound on each daemon's VmRSS while the reader stalls, as documented
# in docs/operations.md: its baseline plus 4 MiB, and never above 16 MiB.
rss_growth_bound_kib=$((4 * 1024))
rss_bound_kib=$((16 * 1024))
# How far replication may lag during the stall: a write on the primary
# must be replayed on the standby within this many seconds.
lag_bound=5

rec_init recovery_slow_reader 150
rec_setup_all

copy_dir=$E2E_TMP/copy
mkdir -p "$copy_dir"
chown postgres: "$copy_dir"
cat >"$copy_dir/stalled_copy.sh" <<'EOF'
# Start psql's COPY with its output going into a FIFO that is opened for
# reading but never read. Runs as postgres in the standby namespace.
dir=$1 psql=$2 port=$3
mkfifo "$dir/copy.fifo"
sleep 600 <"$dir/copy.fifo" &
echo $! >"$dir/reader.pid"
"$psql" -X -d "host=127.0.0.1 port=$port dbname=walguard_test user=app sslmode=disable" \
	-c "COPY (SELECT g, repeat(md5(g::text), 30) FROM (SELECT generate_series(1, 20000000) AS g) AS s) TO STDOUT" \
	>"$dir/copy.fifo" 2>"$dir/copy.err" &
echo $! >"$dir/psql.pid"
wait
EOF

# Print the wait_event of the primary's backend that runs the COPY.
copy_wait_event() {
	e2e_sql primary postgres \
		"SELECT coalesce(wait_event, 'none') FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY%'" 2>/dev/null
}

copy_blocked_on_client() {
	[ "$(copy_wait_event)" = ClientWrite ]
}

# Print the receive queue of psql's own socket, in bytes.
psql_receive_queue() {
	ip netns exec "$E2E_NS_STANDBY" ss -Htnp state established "( dport = :$E2E_FORWARD_PORT )" \
		| awk -v pid="pid=$psql_pid," 'index($0, pid) { print $1 }'
}

# Succeed when the backend waits in ClientWrite and psql's receive queue
# is the same as one second ago.
stall_settled() {
	local before after
	copy_blocked_on_client || return 1
	before=$(psql_receive_queue)
	sleep 1
	after=$(psql_receive_queue)
	[ -n "$before" ] && [ "$before" = "$after" ] && copy_blocked_on_client
}

e2e_step "record the daemons' memory before the COPY"
declare -A baseline_rss max_rss
for node in primary standby; do
	baseline_rss[$node]=$(rec_rss_kib "$node")
	max_rss[$node]=${baseline_rss[$node]}
	echo "    the $node's daemon: VmRSS ${baseline_rss[$node]} KiB"
done
walsender_before=$(rec_walsender_pid primary standby)

e2e_step "start the COPY and wait until the stall reaches the primary's backend"
e2e_as_postgres standby env PGPASSWORD="$(cat "$E2E_TMP/app.password")" \
	bash "$copy_dir/stalled_copy.sh" "$copy_dir" "$PG_BIN/psql" "$E2E_FORWARD_PORT" \
	>"$E2E_TMP/logs/standby-copy-launcher.out" 2>&1 &
copy_job=$!
rec_wait_until 5 "psql's process id" test -s "$copy_dir/psql.pid"
psql_pid=$(cat "$copy_dir/psql.pid")
rec_wait_until 30 "the primary's COPY backend to wait in ClientWrite and psql's receive queue to stop changing (now: $(copy_wait_event), $(psql_receive_queue) bytes)" \
	stall_settled
echo "    the primary's backend waits in ClientWrite, psql's queue is steady after $REC_WAITED s"
first_queue=$(psql_receive_queue)
[ "${first_queue:-0}" -gt 0 ] \
	|| e2e_fail "psql's socket has nothing queued ('$first_queue'): it is not the client that stalls"

e2e_step "keep the reader stalled for $stall_seconds s, with pgbench writing"
rec_pgbench_start primary "$stall_seconds" -R 200
primary_mark=$(rec_log_mark primary)
standby_mark=$(rec_log_mark standby)
stall_start=$EPOCHREALTIME
next_lag_check=10
lag_checks=0
while ! rec_at_most "$stall_seconds" "$(rec_seconds_since "$stall_start")"; do
	for node in primary standby; do
		mark=$primary_mark
		[ "$node" = standby ] && mark=$standby_mark
		if rec_log_has "$node" "$mark" "event=connection_closed"; then
			rec_log_since "$node" "$mark" | grep "event=connection_closed" | cut -c1-250 | sed 's/^/    /'
			e2e_fail "the $node's daemon closed a connection $(rec_seconds_since "$stall_start") s into the stall (line above): a reader that stops must be slowed down, not cut off"
		fi
	done
	for node in primary standby; do
		rss=$(rec_rss_kib "$node")
		[ "$rss" -gt "${max_rss[$node]}" ] && max_rss[$node]=$rss
	done
	if ! rec_at_most "$(rec_seconds_since "$stall_start")" "$next_lag_check"; then
		rec_wait_replayed primary standby "$lag_bound"
		lag_checks=$((lag_checks + 1))
		echo "    at $(rec_seconds_since "$stall_start") s: the standby replayed the primary's position after $REC_WAITED s"
		next_lag_check=$((next_lag_check + 10))
	fi
	sleep 1
done
rec_pgbench_wait
[ "$lag_checks" -ge 4 ] || e2e_fail "only $lag_checks replication checks ran during the stall"

last_queue=$(psql_receive_queue)
[ "$last_queue" = "$first_queue" ] \
	|| e2e_fail "psql's receive queue went from $first_queue to $last_queue bytes: something read from it during the stall"
copy_blocked_on_client \
	|| e2e_fail "the primary's COPY backend no longer waits in ClientWrite at the end of the stall (now: $(copy_wait_event))"
echo "    psql's socket held $last_queue unread bytes from start to end"
walsender_after=$(rec_walsender_pid primary standby)
[ "$walsender_after" = "$walsender_before" ] \
	|| e2e_fail "the walsender changed from '$walsender_before' to '$walsender_after' during the stall"

for node in primary standby; do
	growth=$((max_rss[$node] - baseline_rss[$node]))
	echo "    the $node's daemon: max VmRSS ${max_rss[$node]} KiB during the stall, $growth KiB over its baseline"
	[ "$growth" -le "$rss_growth_bound_kib" ] \
		|| e2e_fail "the $node's daemon grew by $growth KiB during the stall, more than $rss_growth_bound_kib KiB"
	[ "${max_rss[$node]}" -le "$rss_bound_kib" ] \
		|| e2e_fail "the $node's daemon reached a VmRSS of ${max_rss[$node]} KiB, more than $rss_bound_kib KiB"
done

e2e_step "read again and check that the COPY goes on"
read_bytes=$(timeout 3 cat "$copy_dir/copy.fifo" | wc -c)
echo "    a reader got $read_bytes bytes of the COPY in 3 s"
[ "$read_bytes" -gt $((1024 * 1024)) ] \
	|| e2e_fail "a reader got only $read_bytes bytes of the COPY in 3 s after the stall"

e2e_step "end the client and check that the daemons close its connection"
standby_mark=$(rec_log_mark standby)
kill -TERM "$psql_pid"
kill -TERM "$(cat "$copy_dir/reader.pid")" 2>/dev/null || true
wait "$copy_job" 2>/dev/null || true
rec_wait_until 10 "the standby's daemon to close the COPY's connection" \
	rec_log_has standby "$standby_mark" "event=connection_closed"
rec_log_since standby "$standby_mark" | grep -m 1 "event=connection_closed" | cut -c1-250 | sed 's/^/    /'
copy_gone() {
	[ -z "$(copy_wait_event)" ]
}
rec_wait_until 10 "the primary's COPY backend to exit" copy_gone

e2e_step "compare the clusters"
rec_mark after-stall
rec_compare_clusters primary standby
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited"
done

e2e_print_total_time
