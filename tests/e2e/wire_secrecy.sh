#!/bin/bash
# End-to-end test: nothing of the PostgreSQL traffic is readable on the
# wire between the two walguard daemons.
#
# The same traffic runs twice from the standby namespace to the primary's
# PostgreSQL 15, each time captured by tcpdump on the standby's end of the
# veth link:
#
#   control  through two plain socat relays in place of the daemons:
#            127.0.0.1:5433 -> 198.18.0.1:5434 -> 127.0.0.1:5432
#   walguard through the two walguard daemons, on the same addresses,
#            once over the TCP transport and once over the UDP transport
#
# The traffic: a role with a distinctive name logs in and inserts a unique
# marker string, a replication=database connection runs IDENTIFY_SYSTEM,
# and pg_receivewal streams the WAL that contains the marker. The raw bytes
# of each capture are searched for the marker, the role name, the word
# "replication", "IDENTIFY_SYSTEM" and "SCRAM-SHA-256". The control
# capture must contain every one (else the test cannot see plaintext and
# fails). Each walguard capture must contain none, nor any key, and only
# packets of its own transport on the tunnel port.
#
# Run as root: bash tests/e2e/wire_secrecy.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS wire_secrecy" or "FAIL wire_secrecy: REASON"; the
# exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

e2e_init wire_secrecy
e2e_start_watchdog 150
e2e_find_binaries
hostile_find_python
for binary in tcpdump socat; do
	command -v "$binary" >/dev/null || e2e_fail "$binary not found; run scripts/install-deps.sh"
done
[ -x "$PG_BIN/pg_receivewal" ] || e2e_fail "$PG_BIN/pg_receivewal not found; install postgresql-15"

marker="walguard-wire-marker-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
role="quokka_ledger_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
needles=("$marker" "$role" replication IDENTIFY_SYSTEM SCRAM-SHA-256)
tunnel="host=127.0.0.1 port=$E2E_FORWARD_PORT sslmode=disable"

e2e_step "create the namespaces and the veth link"
e2e_setup_network

e2e_step "make keys and the daemons' configs"
e2e_make_keys
e2e_write_configs "$(e2e_public_key primary)"
e2e_check_configs

e2e_step "create and start the primary, with the role $role"
e2e_pg_init_primary
e2e_pg_start primary
e2e_pg_create_roles
role_password=$(e2e_random_password)
printf '%s\n' "$role_password" >"$E2E_TMP/$role.password"
chmod 0600 "$E2E_TMP/$role.password"
e2e_sql primary postgres "CREATE ROLE $role WITH LOGIN PASSWORD '$role_password'" >/dev/null
e2e_sql primary walguard_test "
	CREATE TABLE wire_notes (id serial PRIMARY KEY, note text NOT NULL);
	GRANT SELECT, INSERT ON wire_notes TO $role;
	GRANT USAGE ON SEQUENCE wire_notes_id_seq TO $role;" >/dev/null \
	|| e2e_fail "creating wire_notes on the primary failed"

# Start tcpdump on the standby's veth end, writing LABEL.pcap, and wait
# until it captures.
capture_start() {
	local label=$1
	local log=$E2E_TMP/logs/tcpdump-$label.log
	capture_file=$E2E_TMP/$label.pcap
	ip netns exec "$E2E_NS_STANDBY" tcpdump -i "$E2E_VETH_STANDBY" -n -s 0 -U -Z root \
		-w "$capture_file" tcp or udp \
		</dev/null >"$log" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
	capture_pid=$!
	e2e_wait_for "tcpdump to start capturing on $E2E_VETH_STANDBY" 50 0.1 \
		grep -q "listening on" "$log"
}

# Stop tcpdump with SIGINT, so that it writes out every packet, and wait.
capture_stop() {
	local label=$1 try
	kill -INT "$capture_pid" 2>/dev/null
	for try in $(seq 50); do
		kill -0 "$capture_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$capture_pid" 2>/dev/null && e2e_fail "tcpdump did not stop within 5 s of SIGINT"
	wait "$capture_pid" 2>/dev/null || true
	echo "    $label capture: $(stat -c %s "$capture_file") bytes, $(grep "packets captured" "$E2E_TMP/logs/tcpdump-$label.log")"
}

# Run the traffic through 127.0.0.1:5433 in the standby namespace. LABEL
# names the run; the WAL that pg_receivewal gets goes to pg/wal-LABEL.
run_traffic() {
	local label=$1
	local result lsn wal_dir

	result=$(e2e_psql_from_standby "$role" "$tunnel dbname=walguard_test" \
		"INSERT INTO wire_notes (note) VALUES ('$marker'); SELECT count(*) FROM wire_notes WHERE note = '$marker'" 2>&1) \
		|| e2e_fail "$label: psql as $role through 127.0.0.1:$E2E_FORWARD_PORT failed: $result"
	echo "    $label: $role inserted the marker; rows with it: $result"

	result=$(e2e_psql_from_standby replicator "$tunnel dbname=walguard_test replication=database" \
		"IDENTIFY_SYSTEM" 2>&1) \
		|| e2e_fail "$label: IDENTIFY_SYSTEM on a replication=database connection failed: $result"
	echo "    $label: IDENTIFY_SYSTEM: $result"

	# pg_receivewal starts at the beginning of the current WAL segment,
	# so the stream up to the flush position contains the committed
	# insert. In these runs pg_receivewal 15 waited at --endpos until more
	# WAL followed it (about 14 s, for the next background record), so
	# one more commit (txid_current) writes some at once.
	lsn=$(e2e_sql primary postgres "SELECT pg_current_wal_flush_lsn()")
	e2e_sql primary postgres "SELECT txid_current()" >/dev/null
	wal_dir=$E2E_TMP/pg/wal-$label
	e2e_as_postgres standby mkdir -p "$wal_dir"
	e2e_as_postgres standby env PGPASSWORD="$(cat "$E2E_TMP/replicator.password")" PGCONNECT_TIMEOUT=5 \
		timeout 30 "$PG_BIN/pg_receivewal" -d "$tunnel user=replicator" -D "$wal_dir" \
		--endpos="$lsn" --no-loop --no-sync \
		>"$E2E_TMP/logs/pg_receivewal-$label.log" 2>&1 \
		|| e2e_fail "$label: pg_receivewal up to $lsn failed (see pg_receivewal-$label.log above)"
	grep -rqaF -- "$marker" "$wal_dir" \
		|| e2e_fail "$label: the WAL that pg_receivewal received up to $lsn does not contain the marker"
	echo "    $label: pg_receivewal streamed WAL up to $lsn, which contains the marker"
}

# Print, for each needle, "NEEDLE<TAB>COUNT" of its matches in FILE.
count_needles() {
	local file=$1 needle
	for needle in "${needles[@]}"; do
		printf '%s\t%s\n' "$needle" "$(grep -a -o -F -- "$needle" "$file" | wc -l)"
	done
}

e2e_step "control: the same traffic through plain socat relays"
ip netns exec "$E2E_NS_PRIMARY" socat \
	"TCP-LISTEN:$E2E_TUNNEL_PORT,bind=$E2E_PRIMARY_ADDR,reuseaddr,fork" "TCP:127.0.0.1:$E2E_PG_PORT" \
	</dev/null >"$E2E_TMP/logs/socat-primary.log" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
socat_primary=$!
ip netns exec "$E2E_NS_STANDBY" socat \
	"TCP-LISTEN:$E2E_FORWARD_PORT,bind=127.0.0.1,reuseaddr,fork" "TCP:$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT" \
	</dev/null >"$E2E_TMP/logs/socat-standby.log" 2>&1 {E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&- &
socat_standby=$!
hostile_wait_listening "socat" primary "$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT" "$socat_primary" \
	"$E2E_TMP/logs/socat-primary.log"
hostile_wait_listening "socat" standby "127.0.0.1:$E2E_FORWARD_PORT" "$socat_standby" \
	"$E2E_TMP/logs/socat-standby.log"
capture_start control
run_traffic control
capture_stop control
for pid in "$socat_primary" "$socat_standby"; do
	# socat forks a child per connection: stop those by parent id first.
	pkill -TERM -P "$pid" 2>/dev/null || true
	hostile_stop_process "$pid"
done

e2e_step "control: the capture shows every needle in plain text"
control_counts=$(count_needles "$E2E_TMP/control.pcap")
printf '%s\n' "$control_counts" | sed 's/^/    /'
while IFS=$'\t' read -r needle count; do
	[ "$count" -gt 0 ] \
		|| e2e_fail "control failed: the plain socat capture does not contain '$needle', so this test cannot see plaintext on the wire"
done <<<"$control_counts"

# Run the traffic through the two daemons over TRANSPORT (tcp or udp),
# capture it, and check that the capture shows no needle and no key. The
# daemons are stopped at the end, so that the next run starts afresh.
check_walguard_run() {
	local transport=$1
	local label=walguard-$transport other=tcp
	[ "$transport" = tcp ] && other=udp

	e2e_step "the same traffic through the walguard daemons over $transport"
	e2e_daemon_start primary
	e2e_daemon_start standby
	capture_start "$label"
	run_traffic "$label"
	capture_stop "$label"
	tunnel_packets=$(ip netns exec "$E2E_NS_STANDBY" tcpdump -r "$E2E_TMP/$label.pcap" -n \
		"$transport port $E2E_TUNNEL_PORT" 2>/dev/null | wc -l)
	other_packets=$(ip netns exec "$E2E_NS_STANDBY" tcpdump -r "$E2E_TMP/$label.pcap" -n \
		"$other port $E2E_TUNNEL_PORT" 2>/dev/null | wc -l)
	echo "    $label capture: $tunnel_packets $transport packets to or from port $E2E_TUNNEL_PORT, $other_packets $other packets"
	[ "$tunnel_packets" -ge 20 ] \
		|| e2e_fail "the $label capture has only $tunnel_packets $transport packets on port $E2E_TUNNEL_PORT, so it saw no real traffic"
	[ "$other_packets" -eq 0 ] \
		|| e2e_fail "the $label capture has $other_packets $other packets on port $E2E_TUNNEL_PORT: the traffic did not go over $transport alone"
	walguard_bytes=$(stat -c %s "$E2E_TMP/$label.pcap")
	control_bytes=$(stat -c %s "$E2E_TMP/control.pcap")
	[ "$walguard_bytes" -ge $((control_bytes / 2)) ] \
		|| e2e_fail "the $label capture ($walguard_bytes bytes) is less than half the control capture ($control_bytes bytes), so it missed traffic"
	grep -q "event=connection_opened" "$(e2e_daemon_log primary)" \
		|| e2e_fail "the primary's daemon logged no connection_opened line, so the traffic did not pass through walguard"

	e2e_step "the $label capture shows none of the needles"
	walguard_counts=$(count_needles "$E2E_TMP/$label.pcap")
	printf '%s\n' "$walguard_counts" | sed 's/^/    /'
	while IFS=$'\t' read -r needle count; do
		[ "$count" -eq 0 ] \
			|| e2e_fail "the $label capture contains '$needle' $count times in plain text"
	done <<<"$walguard_counts"
	findings=$(python3 "$HOSTILE_TOOLS/find_secrets.py" \
		--key "the primary's public key=$E2E_TMP/keys/primary.pub" \
		--key "the standby's public key=$E2E_TMP/keys/standby.pub" \
		--key "the primary's private key=$E2E_TMP/keys/primary.key" \
		--key "the standby's private key=$E2E_TMP/keys/standby.key" \
		--key "the PSK=$E2E_TMP/keys/link.psk" \
		"$E2E_TMP/$label.pcap" 2>&1) || {
		printf '%s\n' "$findings" | sed 's/^/    /' >&2
		e2e_fail "the $label capture contains a key (findings above)"
	}

	e2e_step "check the daemons after the $transport run"
	for node in standby primary; do
		e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited during the $transport run"
		status=0
		e2e_daemon_stop "$node" || status=$?
		[ "$status" -eq 0 ] || e2e_fail "walguard on the $node exited with status $status on SIGTERM, expected 0"
	done
}

check_walguard_run tcp

# The same configs, with the tunnel over UDP: the primary also listens on
# UDP on the tunnel port, and the standby dials the primary over UDP.
sed -i "s/^listen = .*/&\nlisten_udp = $E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT/" "$E2E_TMP/config/primary.conf"
sed -i "s/^endpoint = .*/&\ntransport = udp/" "$E2E_TMP/config/standby.conf"
e2e_check_configs
check_walguard_run udp
grep -q "event=handshake_complete .*transport=udp" "$(e2e_daemon_log primary)" \
	|| e2e_fail "the primary's daemon logged no UDP handshake, so the udp run did not use the UDP transport"

e2e_print_total_time
