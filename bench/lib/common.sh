# Process, port and cleanup helpers for bench/run.sh, sourced by it.
#
# Every long-running process of a run is started with bench_spawn, in a
# process group of its own, and every PostgreSQL cluster is registered
# with bench_register_cluster. bench_cleanup, installed on EXIT, stops
# all of them and removes the run's temporary directory, also after a
# failure or an interrupt.

# shellcheck shell=bash

BENCH_TMP=""
BENCH_LOG_DIR=""
# Process group ids of the processes this run started, by name.
declare -A BENCH_GROUPS=()
# Data directories of the clusters this run started.
BENCH_CLUSTERS=()
# Ports handed out by bench_free_port, so that two calls never agree.
declare -A BENCH_PORTS_TAKEN=()
BENCH_MADE_RUN_SSHD=0
BENCH_CLEANED=0

bench_log() {
	printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bench_die() {
	bench_log "error: $*"
	exit 1
}

bench_make_tmp() {
	BENCH_TMP=$(mktemp -d /tmp/walguard-bench.XXXXXX)
	# The postgres user must reach the data and socket directories inside.
	chmod 0755 "$BENCH_TMP"
	BENCH_LOG_DIR=$BENCH_TMP/logs
	mkdir -p "$BENCH_LOG_DIR"
	chmod 0777 "$BENCH_LOG_DIR"
}

# Set the variable named VAR to a port on 127.0.0.1 that nothing listens
# on (TCP or UDP) and that this run has not handed out yet. It assigns
# rather than prints, because a command substitution would lose the
# record of ports handed out. The range lies below Linux's default
# ephemeral ports (32768 and up), so outgoing connections do not take it.
bench_free_port() {
	# The locals have unusual names so that they never hide the caller's VAR.
	local free_port_var=$1 free_port_candidate free_port_try free_port_used
	free_port_used=$(ss -Htanu 2>/dev/null | awk '{ n = split($5, a, ":"); print a[n] }')
	for free_port_try in $(seq 1 200); do
		free_port_candidate=$((29000 + RANDOM % 3700))
		[ -n "${BENCH_PORTS_TAKEN[$free_port_candidate]:-}" ] && continue
		if ! grep -qx "$free_port_candidate" <<<"$free_port_used"; then
			BENCH_PORTS_TAKEN[$free_port_candidate]=1
			printf -v "$free_port_var" '%s' "$free_port_candidate"
			return 0
		fi
	done
	bench_die "no free port found between 29000 and 32699"
}

# Start COMMAND... in the background in a new process group, with its
# output in logs/NAME.log. NAME must be unique among running processes.
bench_spawn() {
	local name=$1
	shift
	setsid "$@" >"$BENCH_LOG_DIR/$name.log" 2>&1 </dev/null &
	BENCH_GROUPS[$name]=$!
}

bench_pid() {
	echo "${BENCH_GROUPS[$1]}"
}

# Stop the process group started as NAME: TERM, then KILL after 5 s.
bench_stop() {
	local name=$1
	local group=${BENCH_GROUPS[$name]:-}
	local waited

	[ -n "$group" ] || return 0
	unset "BENCH_GROUPS[$name]"
	kill -TERM -- "-$group" 2>/dev/null || true
	for waited in $(seq 1 50); do
		kill -0 -- "-$group" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$group" 2>/dev/null || true
	wait "$group" 2>/dev/null || true
}

# Stop every process group whose name starts with PREFIX.
bench_stop_prefix() {
	local prefix=$1 name
	for name in "${!BENCH_GROUPS[@]}"; do
		case $name in
		"$prefix"*) bench_stop "$name" ;;
		esac
	done
}

# Fail unless the process started as NAME is still running.
bench_check_alive() {
	local name=$1
	if ! kill -0 "${BENCH_GROUPS[$name]:-0}" 2>/dev/null; then
		tail -n 20 "$BENCH_LOG_DIR/$name.log" >&2 2>/dev/null
		bench_die "$name exited early (log above, from $BENCH_LOG_DIR/$name.log)"
	fi
}

# Wait up to SECONDS for a TCP listener on 127.0.0.1:PORT, and fail if
# the process NAME that should open it exits first.
bench_wait_tcp() {
	local name=$1 port=$2 seconds=${3:-10}
	local deadline=$((SECONDS + seconds))
	while [ "$SECONDS" -le "$deadline" ]; do
		bench_check_alive "$name"
		if ss -Htln "sport = :$port" | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	bench_die "$name: nothing listens on 127.0.0.1:$port after $seconds s (log: $BENCH_LOG_DIR/$name.log)"
}

bench_wait_udp() {
	local name=$1 port=$2 seconds=${3:-10}
	local deadline=$((SECONDS + seconds))
	while [ "$SECONDS" -le "$deadline" ]; do
		bench_check_alive "$name"
		if ss -Huln "sport = :$port" | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	bench_die "$name: no UDP socket on port $port after $seconds s (log: $BENCH_LOG_DIR/$name.log)"
}

bench_register_cluster() {
	BENCH_CLUSTERS+=("$1")
}

bench_unregister_cluster() {
	local data=$1 i
	for i in "${!BENCH_CLUSTERS[@]}"; do
		[ "${BENCH_CLUSTERS[$i]}" = "$data" ] && unset "BENCH_CLUSTERS[$i]"
	done
	BENCH_CLUSTERS=("${BENCH_CLUSTERS[@]}")
}

# Stop a cluster this run started: pg_ctl first, then KILL to its
# postmaster, whose process id comes from its postmaster.pid.
bench_stop_cluster() {
	local data=$1 postmaster
	[ -f "$data/postmaster.pid" ] || return 0
	runuser -u postgres -- timeout 30 "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 20 stop \
		>/dev/null 2>&1 || true
	if [ -f "$data/postmaster.pid" ]; then
		postmaster=$(head -n 1 "$data/postmaster.pid")
		[ -n "$postmaster" ] && kill -KILL "$postmaster" 2>/dev/null || true
	fi
}

# Log whether the process started as NAME had already exited, and how,
# because after a failure that is often the cause.
bench_report_exited() {
	local name=$1 pid=${BENCH_GROUPS[$1]} exit_status
	kill -0 "$pid" 2>/dev/null && return 0
	wait "$pid" 2>/dev/null
	exit_status=$?
	if [ "$exit_status" -gt 128 ]; then
		bench_log "$name (process $pid) had been ended by signal $((exit_status - 128))"
	else
		bench_log "$name (process $pid) had exited with status $exit_status"
	fi
}

bench_cleanup() {
	local status=$? name data
	[ "$BENCH_CLEANED" = 1 ] && return 0
	BENCH_CLEANED=1
	trap '' INT TERM
	set +e
	cd /
	for name in "${!BENCH_GROUPS[@]}"; do
		[ "$status" -ne 0 ] && bench_report_exited "$name"
		bench_stop "$name"
	done
	for data in "${BENCH_CLUSTERS[@]}"; do
		bench_stop_cluster "$data"
	done
	[ "$BENCH_MADE_RUN_SSHD" = 1 ] && rmdir /run/sshd 2>/dev/null
	if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
		if [ "$status" -ne 0 ] && [ "${BENCH_KEEP_LOGS:-0}" = 1 ]; then
			bench_log "logs kept in $BENCH_TMP/logs; remove $BENCH_TMP when done"
		else
			rm -rf "$BENCH_TMP"
		fi
	fi
	[ "$status" -ne 0 ] && bench_log "failed (exit status $status); everything it started is stopped"
	return "$status"
}

bench_install_traps() {
	trap bench_cleanup EXIT
	trap 'bench_log "interrupted"; exit 130' INT
	trap 'bench_log "terminated"; exit 143' TERM
}

# Print the median, minimum and maximum of the numbers given, one line:
# "MEDIAN MIN MAX". An even count takes the mean of the middle two.
bench_stats() {
	printf '%s\n' "$@" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - -"; exit }
			if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.6g %.6g %.6g\n", m, v[1], v[NR]
		}'
}

# The CPU time in clock ticks (utime + stime) that process PID has used.
bench_cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# A field of /proc/PID/status in KiB, for example VmRSS or VmHWM.
bench_status_kib() {
	awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"
}
