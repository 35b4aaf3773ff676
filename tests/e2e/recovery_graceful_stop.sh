#!/bin/bash
# End-to-end test: the standby's daemon stops on SIGTERM and on SIGINT
# with shutdown_grace = 3s while a psql session runs through it.
#
# For each signal: the listener must close at once, so a new connection
# is refused, while the open session (and the walreceiver) keep working
# until the grace period ends. Then the daemon must reset them, log what
# it closed, and exit with status 0 within the grace period plus a
# margin. A second SIGTERM during the grace period must reset the
# connections at once. After each stop the daemon starts again, and in
# the end the clusters must match.
#
# Run as root: bash tests/e2e/recovery_graceful_stop.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS recovery_graceful_stop" or "FAIL
# recovery_graceful_stop: REASON"; the exit status is 0, 1, or 77
# (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/recovery_lib.sh
. "$(dirname "$0")/recovery_lib.sh"

grace=3
# How much later than the grace period the daemon may exit.
exit_margin=2

rec_init recovery_graceful_stop 150
rec_option standby shutdown_grace "${grace}s"
rec_setup_all

tunnel="host=127.0.0.1 port=$E2E_FORWARD_PORT dbname=postgres sslmode=disable"
session_count=0

# Start a psql session through the tunnel that reads its queries from a
# FIFO, and keep the FIFO's write end open as session_fd.
open_session() {
	session_count=$((session_count + 1))
	session_in=$E2E_TMP/session-$session_count.in
	session_out=$E2E_TMP/logs/standby-session-$session_count.out
	mkfifo "$session_in"
	e2e_as_postgres standby env PGPASSWORD="$(cat "$E2E_TMP/app.password")" PGCONNECT_TIMEOUT=5 \
		stdbuf -oL "$PG_BIN/psql" -X -A -t -d "$tunnel user=app" \
		<"$session_in" >"$session_out" 2>&1 &
	session_job=$!
	exec {session_fd}>"$session_in"
}

close_session() {
	exec {session_fd}>&-
	wait "$session_job" 2>/dev/null || true
}

session_printed() {
	grep -qx "$1" "$session_out"
}

# Run SELECT 'TAG' in the session and wait up to 3 s for its output.
session_query() {
	local tag=$1
	echo "SELECT '$tag';" >&"$session_fd"
	rec_wait_until 3 "the session to print '$tag'" session_printed "$tag"
}

forward_listener_closed() {
	! ip netns exec "$E2E_NS_STANDBY" ss -Hltn "src 127.0.0.1:$E2E_FORWARD_PORT" | grep -q .
}

no_forwarded_connection() {
	[ "$(ip netns exec "$E2E_NS_STANDBY" ss -Htn state established "( dport = :$E2E_FORWARD_PORT )" | wc -l)" -eq 0 ]
}

daemon_exited() {
	! kill -0 "$1" 2>/dev/null
}

# Stop the standby's daemon with SIGNAL while a session is open, and check
# each step of the graceful stop. With "twice", send SIGNAL again after
# half a second and expect the connections reset at once.
stop_with() {
	local signal=$1 mode=${2:-once}
	local pid mark start status exit_seconds
	local name=${signal,,}-$mode

	open_session
	session_query "ready-$name"
	pid=$(rec_daemon_pid standby)
	mark=$(rec_log_mark standby)
	start=$EPOCHREALTIME
	kill -"$signal" "$pid"

	rec_wait_until 1 "the forward listener on 127.0.0.1:$E2E_FORWARD_PORT to close" forward_listener_closed
	echo "    the listener closed $(rec_seconds_since "$start") s after SIG$signal"
	if result=$(e2e_psql_from_standby app "$tunnel" "SELECT 1" 2>&1); then
		e2e_fail "a new connection through the tunnel worked after SIG$signal (output: $result)"
	fi
	case "$result" in
	*"Connection refused"*) ;;
	*) e2e_fail "a new connection after SIG$signal failed, but not with 'Connection refused': $result" ;;
	esac

	if [ "$mode" = twice ]; then
		sleep 0.5
		kill -"$signal" "$pid"
		rec_wait_until 1.5 "the daemon to exit after the second SIG$signal" daemon_exited "$pid"
	else
		sleep 1
		session_query "in-grace-$name"
		echo "    the session still answered $(rec_seconds_since "$start") s after SIG$signal"
		rec_wait_until $((grace + exit_margin)) "the daemon to exit after SIG$signal" daemon_exited "$pid"
	fi
	exit_seconds=$(rec_seconds_since "$start")
	status=0
	wait "$pid" || status=$?
	unset "E2E_DAEMON_PIDS[standby]"
	echo "    the daemon exited with status $status $exit_seconds s after the first SIG$signal"
	[ "$status" -eq 0 ] || e2e_fail "the daemon exited with status $status after SIG$signal, expected 0"
	if [ "$mode" = once ]; then
		rec_at_most "$(awk -v grace="$grace" 'BEGIN { print grace - 0.3 }')" "$exit_seconds" \
			|| e2e_fail "the daemon exited $exit_seconds s after SIG$signal, before its ${grace} s grace period ended"
	fi

	rec_wait_until 2 "the session's connection to be gone" no_forwarded_connection
	echo "SELECT 'after-stop';" >&"$session_fd"
	close_session
	grep -q "server closed the connection unexpectedly\|connection to server was lost" "$session_out" \
		|| e2e_fail "the session did not report its connection closed after the stop (see $(basename "$session_out"))"

	rec_log_has standby "$mark" "event=stopping reason=\"SIG$signal\" connections=2 grace_ms=${grace}000" \
		|| e2e_fail "no 'event=stopping reason=\"SIG$signal\" connections=2 grace_ms=${grace}000' line (the session and the walreceiver)"
	local closed_reason="daemon stopping: grace period over"
	if [ "$mode" = twice ]; then
		rec_log_has standby "$mark" "event=stopping_now reason=\"SIG$signal again\" connections=2" \
			|| e2e_fail "no 'event=stopping_now' line after the second SIG$signal"
		closed_reason="daemon stopping"
	else
		rec_log_has standby "$mark" "event=grace_period_over connections=2" \
			|| e2e_fail "no 'event=grace_period_over connections=2' line after SIG$signal"
	fi
	local closed
	closed=$(rec_log_count standby "$mark" "event=connection_closed .*reason=\"$closed_reason\"")
	[ "$closed" -eq 2 ] \
		|| e2e_fail "$closed connection_closed lines with reason \"$closed_reason\", expected 2 (the session and the walreceiver)"
	rec_log_has standby "$mark" "event=stopped status=0" \
		|| e2e_fail "no 'event=stopped status=0' line after SIG$signal"
	rec_log_since standby "$mark" | grep -E "event=(stopping|stopping_now|grace_period_over|connection_closed|stopped)" \
		| cut -c1-200 | sed 's/^/      /'

	rec_daemon_start standby
	rec_wait_streaming primary standby 20
	echo "    streaming again $REC_WAITED s after the daemon started again"
}

rec_pgbench_start primary 12 -R 200

e2e_step "SIGTERM with a session open"
stop_with TERM
rec_mark after-sigterm

e2e_step "SIGINT with a session open"
stop_with INT
rec_mark after-sigint

e2e_step "SIGTERM twice with a session open"
stop_with TERM twice
rec_mark after-two-sigterms

e2e_step "compare the clusters"
rec_pgbench_wait
rec_compare_clusters primary standby
for label in after-sigterm after-sigint after-two-sigterms; do
	[ "$(rec_marker_count standby "$label")" = 1 ] \
		|| e2e_fail "the standby lacks the marker row '$label'"
done

e2e_print_total_time
