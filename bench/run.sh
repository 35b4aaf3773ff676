#!/bin/bash
# Benchmark walguard against other forwarders on loopback.
#
# Run as root on Debian 12, by hand; never in CI. See docs/performance.md
# for what each figure means. Everything runs on 127.0.0.1 in a temporary
# directory, and every process, cluster and file the run makes is stopped
# and removed when it ends, also on failure or Ctrl-C.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)

# shellcheck source=bench/lib/common.sh
. "$BENCH_DIR/lib/common.sh"
# shellcheck source=bench/lib/forwarders.sh
. "$BENCH_DIR/lib/forwarders.sh"
# shellcheck source=bench/lib/postgres.sh
. "$BENCH_DIR/lib/postgres.sh"
# shellcheck source=bench/lib/report.sh
. "$BENCH_DIR/lib/report.sh"

REPETITIONS=3
SECONDS_PER_RUN=5
SYNC_SECONDS=15
HELD_CONNECTIONS=100
BASEBACKUP_MIB=1100
FORWARDERS=$FORWARDERS_ALL
RUN_REPLICATION=1
RUN_BASEBACKUP=1
RUN_PROFILE=0
UPDATE_DOCS=1
RESULTS_DIR=$BENCH_DIR/results
BUILD_DIR=$BENCH_DIR/build

usage() {
	cat <<-EOF
		Usage: bench/run.sh [OPTION]...
		Benchmark walguard against other forwarders on loopback (as root, Debian 12).

		  --quick               the same steps, shorter: 1 repetition, 2 s runs,
		                        5 s replication runs; does not update
		                        docs/performance.md
		  --repetitions N       repetitions of every figure (default $REPETITIONS)
		  --seconds N           length of each iperf3 and pgbench run (default $SECONDS_PER_RUN)
		  --sync-seconds N      length of each replication run (default $SYNC_SECONDS)
		  --forwarders LIST     space-separated subset of: $FORWARDERS_ALL
		                        (walguard is always included)
		  --no-replication      skip the synchronous replication runs
		  --no-basebackup       skip the pg_basebackup runs
		  --profile             also record the two daemons with perf during one
		                        extra iperf3 run, into RESULTS-profile.txt
		  --no-docs             do not update docs/performance.md
		  --keep-logs           keep the temporary directory with all logs on failure
		  --results DIR         where to write the results (default bench/results)
		  -h, --help            show this help
	EOF
}

parse_options() {
	local forwarder
	while [ $# -gt 0 ]; do
		case $1 in
		--quick)
			REPETITIONS=1
			SECONDS_PER_RUN=2
			SYNC_SECONDS=5
			UPDATE_DOCS=0
			;;
		--repetitions) REPETITIONS=${2:?--repetitions needs a number}; shift ;;
		--seconds) SECONDS_PER_RUN=${2:?--seconds needs a number}; shift ;;
		--sync-seconds) SYNC_SECONDS=${2:?--sync-seconds needs a number}; shift ;;
		--forwarders) FORWARDERS=${2:?--forwarders needs a list}; shift ;;
		--no-replication) RUN_REPLICATION=0 ;;
		--no-basebackup) RUN_BASEBACKUP=0 ;;
		--profile) RUN_PROFILE=1 ;;
		--no-docs) UPDATE_DOCS=0 ;;
		--keep-logs) BENCH_KEEP_LOGS=1 ;;
		--results) RESULTS_DIR=${2:?--results needs a directory}; shift ;;
		-h | --help) usage; exit 0 ;;
		*) usage >&2; bench_die "unknown option '$1'" ;;
		esac
		shift
	done
	for value in "$REPETITIONS" "$SECONDS_PER_RUN" "$SYNC_SECONDS"; do
		[[ $value =~ ^[1-9][0-9]*$ ]] || bench_die "invalid number '$value' (expected a whole number above 0)"
	done
	for forwarder in $FORWARDERS; do
		[[ " $FORWARDERS_ALL " == *" $forwarder "* ]] ||
			bench_die "unknown forwarder '$forwarder' (expected some of: $FORWARDERS_ALL)"
	done
	[[ " $FORWARDERS " == *" walguard "* ]] || FORWARDERS="$FORWARDERS walguard"
}

# Debian packages the benchmark needs. Services that installing them
# would start (sshd, PostgreSQL's default cluster, stunnel) are kept from
# starting: the run starts its own copies on loopback ports.
BENCH_PACKAGES="
build-essential pkg-config meson ninja-build libsodium-dev libuv1-dev libinih-dev libusrsctp-dev
postgresql-15 postgresql-client-15
iperf3 socat spiped stunnel4 openssh-server openssh-client kcptun
gnuplot-nox jq openssl iproute2 procps util-linux linux-perf valgrind
"

install_packages() {
	local package status missing="" made_policy=0
	for package in $BENCH_PACKAGES; do
		status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
		[ "$status" = "install ok installed" ] || missing="$missing $package"
	done
	[ -z "$missing" ] && return 0

	bench_log "installing:$missing"
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		# Exit status 101 makes invoke-rc.d start no service.
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086 # the list is meant to split into words
	if ! { timeout 600 apt-get update -qq &&
		timeout 1200 apt-get install -y -qq --no-install-recommends $missing >/dev/null; }; then
		[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
		bench_die "apt-get could not install:$missing"
	fi
	[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
	return 0
}

build_walguard() {
	local commit
	bench_log "building walguard (release) in $BUILD_DIR"
	commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo "unknown")
	BUILD_SOURCE="commit $commit"
	if [ -n "$(git -C "$REPO_ROOT" status --porcelain -- tunnel common meson.build 2>/dev/null)" ]; then
		BUILD_SOURCE="$BUILD_SOURCE with uncommitted changes in tunnel/, common/ or meson.build"
	fi
	if [ -f "$BUILD_DIR/build.ninja" ]; then
		timeout 300 meson setup --reconfigure "$BUILD_DIR" "$REPO_ROOT" -Dbuildtype=release \
			>"$BUILD_DIR/setup.log" 2>&1
	else
		mkdir -p "$BUILD_DIR"
		timeout 300 meson setup "$BUILD_DIR" "$REPO_ROOT" -Dbuildtype=release >"$BUILD_DIR/setup.log" 2>&1
	fi || bench_die "meson setup failed (see $BUILD_DIR/setup.log)"
	# Only the two programs: a test that does not build must not stop the benchmark.
	timeout 600 ninja -C "$BUILD_DIR" tunnel/walguard keys/walguard-keygen >"$BUILD_DIR/ninja.log" 2>&1 ||
		bench_die "building walguard failed (see $BUILD_DIR/ninja.log)"
	WALGUARD=$BUILD_DIR/tunnel/walguard
	WALGUARD_KEYGEN=$BUILD_DIR/keys/walguard-keygen

	# shellcheck disable=SC2046 # pkg-config prints several flags
	cc -O2 -Wall -Wextra -o "$BUILD_DIR/aead_bound" "$BENCH_DIR/aead_bound.c" \
		$(pkg-config --cflags --libs libsodium) || bench_die "building bench/aead_bound.c failed"
}

# Print OpenSSL's single-core encrypt throughput of CIPHER on 16 KiB
# blocks, in GB/s.
openssl_speed() {
	timeout 60 openssl speed -evp "$1" -bytes 16384 -seconds 2 2>/dev/null |
		awk 'END { sub(/k$/, "", $NF); printf "%.3f\n", $NF / 1e6 }'
}

# Results: each key maps to the values of all repetitions, space-separated.
declare -A RESULTS=()

result_add() {
	RESULTS[$1]="${RESULTS[$1]:-} $2"
}

start_sinks() {
	bench_free_port IPERF_PORT
	bench_spawn sink-iperf3 iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
	bench_wait_tcp sink-iperf3 "$IPERF_PORT"

	bench_free_port PG_PORT
	pg_create primary "$PG_PORT"
	pg_sql "$PG_PORT" postgres "create database bench" >/dev/null
	timeout 600 "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -i -s 10 -q bench \
		>"$BENCH_LOG_DIR/pgbench-init.log" 2>&1 || bench_die "pgbench -i failed (see $BENCH_LOG_DIR/pgbench-init.log)"
}

# Hold 100 (HELD_CONNECTIONS) connections open through a walguard pair in
# front of an echo server, each having carried one line both ways, and
# record both daemons' memory before and with them.
measure_walguard_memory() {
	local echo_port fds=() fd i line daemon pid
	bench_free_port echo_port
	bench_spawn memory-echo socat "TCP-LISTEN:$echo_port,bind=127.0.0.1,reuseaddr,fork,backlog=512" PIPE
	bench_wait_tcp memory-echo "$echo_port"
	walguard_pair walguard-memory "$echo_port"
	sleep 0.5
	for daemon in a b; do
		pid=$(bench_pid "walguard-memory-$daemon")
		RESULTS[rss_idle:$daemon]=$(bench_status_kib "$pid" VmRSS)
		RESULTS[hwm_idle:$daemon]=$(bench_status_kib "$pid" VmHWM)
	done

	for i in $(seq 1 "$HELD_CONNECTIONS"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PAIR_PORT"
		fds+=("$fd")
		printf 'connection %d\n' "$i" >&"$fd"
		if ! read -r -t 10 -u "$fd" line || [ "$line" != "connection $i" ]; then
			bench_die "held connection $i got no echo through walguard within 10 s"
		fi
	done
	sleep 0.5
	for daemon in a b; do
		pid=$(bench_pid "walguard-memory-$daemon")
		RESULTS[rss_held:$daemon]=$(bench_status_kib "$pid" VmRSS)
		RESULTS[hwm_held:$daemon]=$(bench_status_kib "$pid" VmHWM)
	done
	for fd in "${fds[@]}"; do
		exec {fd}>&-
	done
	forwarder_stop walguard-memory
	bench_stop memory-echo
}

# Run iperf3 through PORT and print "BITS_PER_SECOND BYTES".
iperf3_run() {
	local port=$1 output=$BENCH_LOG_DIR/iperf3-client.json
	if ! timeout $((SECONDS_PER_RUN + 30)) iperf3 -c 127.0.0.1 -p "$port" -t "$SECONDS_PER_RUN" -J \
		--connect-timeout 5000 >"$output" 2>&1; then
		head -c 2000 "$output" >&2
		bench_die "iperf3 through port $port failed (output above)"
	fi
	jq -r '"\(.end.sum_received.bits_per_second) \(.end.sum_received.bytes)"' "$output"
}

measure_forwarder() {
	local forwarder=$1 result bits bytes daemon pid tps
	local -A ticks_before=()

	forwarder_start "$forwarder" "$IPERF_PORT" "$PG_PORT"
	timeout 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$FWD_PG_PORT" -t 20 ||
		bench_die "$forwarder: PostgreSQL is not reachable through port $FWD_PG_PORT"

	if [ "$forwarder" = walguard ]; then
		for daemon in a b; do
			pid=$(bench_pid "walguard-iperf-$daemon")
			result_add "hwm_start:$daemon" "$(bench_status_kib "$pid" VmHWM)"
			ticks_before[$daemon]=$(bench_cpu_ticks "$pid")
		done
	fi
	result=$(iperf3_run "$FWD_IPERF_PORT")
	read -r bits bytes <<<"$result"
	result_add "throughput:$forwarder" "$(awk -v b="$bits" 'BEGIN { printf "%.4f", b / 1e9 }')"
	if [ "$forwarder" = walguard ]; then
		for daemon in a b; do
			pid=$(bench_pid "walguard-iperf-$daemon")
			result_add "hwm_throughput:$daemon" "$(bench_status_kib "$pid" VmHWM)"
			result_add "cpu_per_gb:$daemon" "$(awk -v t0="${ticks_before[$daemon]}" \
				-v t1="$(bench_cpu_ticks "$pid")" -v hz="$(getconf CLK_TCK)" -v bytes="$bytes" \
				'BEGIN { printf "%.4f", (t1 - t0) / hz / (bytes / 1e9) }')"
		done
	fi

	pgbench_run "$FWD_PG_PORT" "$SECONDS_PER_RUN" "$BENCH_LOG_DIR/pgbench-select.log" -S -c 1
	tps=$(pgbench_field "$BENCH_LOG_DIR/pgbench-select.log" tps)
	result_add "latency:$forwarder" "$(awk -v tps="$tps" 'BEGIN { printf "%.5f", 1000 / tps }')"

	pgbench_run "$FWD_PG_PORT" "$SECONDS_PER_RUN" "$BENCH_LOG_DIR/pgbench-connect.log" -S -C -c 1
	result_add "connections:$forwarder" "$(pgbench_field "$BENCH_LOG_DIR/pgbench-connect.log" tps)"
	result_add "connect_ms:$forwarder" \
		"$(pgbench_field "$BENCH_LOG_DIR/pgbench-connect.log" "average connection time")"

	forwarder_stop "$forwarder"
}

# Run every forwarder once per repetition. The order rotates from one
# repetition to the next, so that a slow spell of the machine does not
# always hit the same forwarder.
measure_forwarders() {
	local repetition forwarder list=() count i
	read -r -a list <<<"$FORWARDERS"
	count=${#list[@]}
	for repetition in $(seq 1 "$REPETITIONS"); do
		for i in $(seq 0 $((count - 1))); do
			forwarder=${list[$(((i + repetition - 1) % count))]}
			bench_log "repetition $repetition/$REPETITIONS: $forwarder"
			measure_forwarder "$forwarder"
		done
	done
}

# The paths of the replication and basebackup runs. socat, a relay with
# no crypto, separates the cost of any extra hop from walguard's own.
PAIR_PATHS="direct socat walguard"

# Measure a synchronous standby of the benchmark cluster, fed directly,
# through socat and through walguard in turn. pgbench's default
# TPC-B-like script runs on the primary with 8 clients.
measure_replication() {
	local standby_port standby_data repetition path upstream output
	bench_free_port standby_port
	bench_log "replication: making a standby"
	pg_create_standby bench_standby "$standby_port" "$PG_PORT"
	standby_data=$PG_CREATED_DATA
	pg_start "$standby_data" standby
	local -A upstream_ports=([direct]=$PG_PORT)
	socat_pair socat-replication "$PG_PORT"
	upstream_ports[socat]=$PAIR_PORT
	walguard_pair walguard-replication "$PG_PORT"
	upstream_ports[walguard]=$PAIR_PORT

	pg_sql "$PG_PORT" postgres "alter system set synchronous_commit = on" >/dev/null
	pg_sql "$PG_PORT" postgres "alter system set synchronous_standby_names = 'bench_standby'" >/dev/null
	pg_sql "$PG_PORT" postgres "select pg_reload_conf()" >/dev/null

	for repetition in $(seq 1 "$REPETITIONS"); do
		for path in $PAIR_PATHS; do
			upstream=${upstream_ports[$path]}
			bench_log "repetition $repetition/$REPETITIONS: synchronous replication, $path"
			pg_standby_switch "$standby_port" "$PG_PORT" "$upstream" bench_standby
			output=$BENCH_LOG_DIR/pgbench-replication.log
			pgbench_run "$PG_PORT" "$SYNC_SECONDS" "$output" -c 8 -j 2
			result_add "sync_tps:$path" "$(pgbench_field "$output" tps)"
			result_add "sync_latency:$path" "$(pgbench_field "$output" "latency average")"
		done
	done

	# Without its standby the primary would wait forever on every commit.
	pg_sql "$PG_PORT" postgres "alter system reset synchronous_standby_names" >/dev/null
	pg_sql "$PG_PORT" postgres "select pg_reload_conf()" >/dev/null
	pg_stop "$standby_data"
	rm -rf "$standby_data"
	forwarder_stop socat-replication
	forwarder_stop walguard-replication
}

# pg_basebackup of the whole cluster after adding about 1.1 GiB of table
# data, directly, through socat and through walguard. The backup goes to a temporary
# directory and is removed after each run.
measure_basebackup() {
	local rows repetition path port target start elapsed size_mib
	bench_log "basebackup: generating about $BASEBACKUP_MIB MiB of table data"
	pg_sql "$PG_PORT" postgres "create database bulk" >/dev/null
	# About 1 KiB per row, so that the table is BASEBACKUP_MIB MiB on disk.
	rows=$((BASEBACKUP_MIB * 1024 * 7 / 8))
	pg_sql "$PG_PORT" bulk "create table filler as select g as id, repeat(md5(g::text), 30) as pad from generate_series(1, $rows) g" >/dev/null
	pg_sql "$PG_PORT" postgres "checkpoint" >/dev/null
	size_mib=$(pg_sql "$PG_PORT" postgres "select sum(pg_database_size(datname)) / 1048576 from pg_database")
	RESULTS[basebackup_cluster_mib]=${size_mib%.*}
	[ "${size_mib%.*}" -ge 1024 ] || bench_die "the cluster is $size_mib MiB, below the 1 GiB that the basebackup runs require"

	local -A ports=([direct]=$PG_PORT)
	socat_pair socat-basebackup "$PG_PORT"
	ports[socat]=$PAIR_PORT
	walguard_pair walguard-basebackup "$PG_PORT"
	ports[walguard]=$PAIR_PORT
	for repetition in $(seq 1 "$REPETITIONS"); do
		for path in $PAIR_PATHS; do
			port=${ports[$path]}
			target=$BENCH_TMP/basebackup
			rm -rf "$target"
			bench_log "repetition $repetition/$REPETITIONS: pg_basebackup, $path"
			start=$EPOCHREALTIME
			timeout 900 "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$port" -D "$target" -X stream \
				-c fast --no-sync >"$BENCH_LOG_DIR/basebackup.log" 2>&1 ||
				bench_die "pg_basebackup through port $port failed (see $BENCH_LOG_DIR/basebackup.log)"
			elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
			result_add "basebackup_seconds:$path" "$elapsed"
			rm -rf "$target"
		done
	done
	forwarder_stop socat-basebackup
	forwarder_stop walguard-basebackup
	pg_sql "$PG_PORT" postgres "drop database bulk" >/dev/null
}

# Print the hottest entries of the perf recording FILE.
profile_summary() {
	local perf_data=$1
	local report=(timeout 300 perf report -i "$perf_data" --stdio --percent-limit)
	echo "### Self time by shared object"
	"${report[@]}" 0.5 --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' || true
	echo
	echo "### Self time by symbol"
	"${report[@]}" 0.7 --no-children --sort dso,symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' || true
	echo
	echo "### Time including callees, by symbol"
	"${report[@]}" 4 --children --sort symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' || true
}

# Record the daemons of the walguard pair NAME with perf while COMMAND...
# runs, into FILE.
profile_record() {
	local name=$1 perf_data=$2
	shift 2
	bench_spawn perf-record perf record --call-graph dwarf,16384 -F 499 -o "$perf_data" \
		-p "$(bench_pid "$name-a"),$(bench_pid "$name-b")"
	sleep 1
	"$@"
	kill -INT "$(bench_pid perf-record)"
	wait "$(bench_pid perf-record)" 2>/dev/null || true
	unset "BENCH_GROUPS[perf-record]"
}

# Record both daemons with perf during one extra iperf3 run and one extra
# pgbench run with a new connection per transaction, and keep the hottest
# entries. The daemons are a build with the release optimization and
# debug info, so that perf can name walguard's functions and unwind
# through them.
profile_walguard() {
	local output=$1 profile_build=$BENCH_DIR/build-profile

	if [ ! -f "$profile_build/build.ninja" ]; then
		timeout 300 meson setup "$profile_build" "$REPO_ROOT" -Doptimization=3 -Ddebug=true -Db_ndebug=true \
			>"$BENCH_LOG_DIR/profile-setup.log" 2>&1 || bench_die "meson setup of $profile_build failed"
	fi
	timeout 600 ninja -C "$profile_build" tunnel/walguard >"$BENCH_LOG_DIR/profile-ninja.log" 2>&1 ||
		bench_die "building $profile_build failed (see $BENCH_LOG_DIR/profile-ninja.log)"

	WALGUARD=$profile_build/tunnel/walguard walguard_pair walguard-profile-iperf "$IPERF_PORT"
	profile_record walguard-profile-iperf "$BENCH_TMP/perf-iperf.data" iperf3_run "$PAIR_PORT" >/dev/null
	forwarder_stop walguard-profile-iperf

	WALGUARD=$profile_build/tunnel/walguard walguard_pair walguard-profile-pg "$PG_PORT"
	profile_record walguard-profile-pg "$BENCH_TMP/perf-connect.data" \
		pgbench_run "$PAIR_PORT" "$SECONDS_PER_RUN" "$BENCH_LOG_DIR/pgbench-profile.log" -S -C -c 1
	forwarder_stop walguard-profile-pg

	{
		echo "# perf record --call-graph dwarf -F 499 of both walguard daemons"
		echo
		echo "## During one iperf3 run of $SECONDS_PER_RUN s"
		echo
		profile_summary "$BENCH_TMP/perf-iperf.data"
		echo
		echo "## During pgbench -S -C -c 1 for $SECONDS_PER_RUN s (a new connection per transaction)"
		echo
		profile_summary "$BENCH_TMP/perf-connect.data"
	} >"$output"
}

main() {
	parse_options "$@"
	[ "$(id -u)" -eq 0 ] || bench_die "run as root (it installs packages and starts PostgreSQL as postgres)"
	grep -q '^VERSION_ID="12"' /etc/os-release 2>/dev/null || bench_log "warning: not Debian 12; package names may differ"

	install_packages
	build_walguard
	bench_make_tmp
	bench_install_traps

	local stamp
	stamp=$(date +%Y-%m-%d-%H%M)
	RUN_DATE=$(date '+%Y-%m-%d %H:%M %Z')

	bench_log "measuring the AEAD bound"
	RESULTS[aead]=$(timeout 120 "$BUILD_DIR/aead_bound" 2)
	# For reference: OpenSSL's implementations on the same core, because
	# the ssh and stunnel anchors use OpenSSL.
	RESULTS[openssl_chacha20]=$(openssl_speed chacha20-poly1305)
	RESULTS[openssl_aes128gcm]=$(openssl_speed aes-128-gcm)

	forwarders_prepare
	[[ " $FORWARDERS " == *" ssh-"* ]] && sshd_start
	start_sinks

	bench_log "walguard memory with $HELD_CONNECTIONS held connections"
	measure_walguard_memory
	measure_forwarders
	[ "$RUN_REPLICATION" = 1 ] && measure_replication
	[ "$RUN_BASEBACKUP" = 1 ] && measure_basebackup

	mkdir -p "$RESULTS_DIR"
	if [ "$RUN_PROFILE" = 1 ]; then
		bench_log "profiling walguard"
		profile_walguard "$RESULTS_DIR/$stamp-profile.txt"
	fi
	report_write "$RESULTS_DIR/$stamp.md" "$RESULTS_DIR/$stamp.png"
	[ "$UPDATE_DOCS" = 1 ] && report_update_docs "$REPO_ROOT/docs/performance.md" "$RESULTS_DIR/$stamp.md"
	bench_log "results: $RESULTS_DIR/$stamp.md"
}

main "$@"
