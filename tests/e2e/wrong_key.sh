#!/bin/bash
# End-to-end test: a standby that pins the wrong public key for the primary
# gets nothing through the tunnel.
#
# Same set-up as replication.sh, except that the standby's config names a
# fresh, unrelated key as the primary's. The handshake must fail, so
# pg_basebackup through 127.0.0.1:5433 fails, no data reaches the standby,
# PostgreSQL on the primary receives no connection from the tunnel, and
# both daemons log why. A raw client that sends a bogus 112-byte initiation
# must get zero bytes back and a closed connection.
#
# Run as root: bash tests/e2e/wrong_key.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS wrong_key" or "FAIL wrong_key: REASON"; the exit
# status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# The log lines this test expects, as extended regular expressions: strict
# about the event names and the peer and address fields, loose about the
# level and the free text, which may be reworded.
#   primary: a rejected handshake from the standby's address (the peer is
#            unknown to the primary, so only the address can name it).
#   standby: a failed handshake with the peer named primary at its endpoint.
PRIMARY_REJECT_PATTERN=" event=handshake_rejected (.* )?addr=${E2E_STANDBY_ADDR//./\\.}:[0-9]+( |$)"
STANDBY_FAIL_PATTERN=" event=handshake_failed (.* )?peer=primary (.* )?addr=${E2E_PRIMARY_ADDR//./\\.}:$E2E_TUNNEL_PORT( |$)"

# Bytes in an initiation message: 4 header bytes, then the Noise IK first
# message with a 12-byte timestamp payload (32 + 48 + 28).
INITIATION_LEN=112

# Clients wait while the standby's daemon retries the handshake, and the
# daemon resets them after its connect_timeout (10 s by default). Give
# libpq longer than that, so the test observes the daemon's reset.
E2E_CONNECT_TIMEOUT=25
E2E_BASEBACKUP_TIMEOUT=40

e2e_init wrong_key
e2e_start_watchdog 170
e2e_find_binaries

e2e_step "create the namespaces and the veth link"
e2e_setup_network

e2e_step "make keys and pin a wrong public key for the primary"
e2e_make_keys
wrong_key=$("$WALGUARD_KEYGEN" genkey | "$WALGUARD_KEYGEN" pubkey) \
	|| e2e_fail "walguard-keygen genkey | pubkey failed"
if [ -z "$wrong_key" ] || [ "$wrong_key" = "$(e2e_public_key primary)" ]; then
	e2e_fail "walguard-keygen made an empty key or the primary's own key: '$wrong_key'"
fi
e2e_write_configs "$wrong_key"
e2e_check_configs

e2e_step "create and start the primary, block the direct path"
e2e_pg_init_primary
e2e_pg_start primary
e2e_pg_create_roles
e2e_block_direct_path
direct="host=$E2E_PRIMARY_ADDR port=$E2E_PG_PORT dbname=postgres sslmode=disable connect_timeout=3"
if result=$(e2e_psql_from_standby app "$direct" "SELECT 1" 2>&1); then
	e2e_fail "direct psql from the standby to $E2E_PRIMARY_ADDR:$E2E_PG_PORT works despite the iptables rule (output: $result)"
fi

e2e_step "start the walguard daemons"
e2e_daemon_start primary
e2e_daemon_start standby

e2e_step "pg_basebackup through the tunnel must fail"
start=$EPOCHREALTIME
status=0
e2e_pg_basebackup || status=$?
seconds=$(awk -v start="$start" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }')
[ "$status" -ne 0 ] \
	|| e2e_fail "pg_basebackup through the tunnel succeeded although the standby pins a wrong key for the primary"
[ "$status" -ne 124 ] \
	|| e2e_fail "pg_basebackup through the tunnel hung for $E2E_BASEBACKUP_TIMEOUT s instead of failing"
echo "    pg_basebackup failed after $seconds s with status $status:"
grep -i "error" "$E2E_TMP/logs/standby-basebackup.log" | head -n 3 | sed 's/^/      /'
grep -q "server closed the connection unexpectedly" "$E2E_TMP/logs/standby-basebackup.log" \
	|| e2e_fail "pg_basebackup did not fail by the standby's daemon closing its connection (expected libpq's 'server closed the connection unexpectedly' within $E2E_CONNECT_TIMEOUT s)"

data_dir=$(e2e_pg_data_dir standby)
if [ -e "$data_dir" ]; then
	leftovers=$(find "$data_dir" -mindepth 1 -maxdepth 1 -printf '%f ' | head -c 200)
	[ -z "$leftovers" ] \
		|| e2e_fail "the standby's data dir $data_dir is not empty after the failed base backup: $leftovers"
fi

e2e_step "psql through the tunnel must fail too"
tunnel="host=127.0.0.1 port=$E2E_FORWARD_PORT dbname=postgres sslmode=disable"
if result=$(e2e_psql_from_standby app "$tunnel" "SELECT 1" 2>&1); then
	e2e_fail "psql through the tunnel succeeded with a wrong key pinned (output: $result)"
fi
echo "    psql failed as expected: $(printf '%s' "$result" | head -n 1)"
case "$result" in
*"server closed the connection unexpectedly"*) ;;
*) e2e_fail "psql did not fail by the standby's daemon closing its connection within $E2E_CONNECT_TIMEOUT s: $result" ;;
esac

e2e_step "the daemons' logs must say why"
primary_log=$(e2e_daemon_log primary)
standby_log=$(e2e_daemon_log standby)
e2e_wait_for "a handshake rejection from $E2E_STANDBY_ADDR in the primary's log (pattern: $PRIMARY_REJECT_PATTERN)" 30 0.2 \
	grep -Eq "$PRIMARY_REJECT_PATTERN" "$primary_log"
e2e_wait_for "a failed handshake with peer primary in the standby's log (pattern: $STANDBY_FAIL_PATTERN)" 30 0.2 \
	grep -Eq "$STANDBY_FAIL_PATTERN" "$standby_log"
echo "    primary: $(grep -E "$PRIMARY_REJECT_PATTERN" "$primary_log" | head -n 1)"
echo "    standby: $(grep -E "$STANDBY_FAIL_PATTERN" "$standby_log" | head -n 1)"

e2e_step "nothing reached PostgreSQL on the primary through the tunnel"
if grep "connection received: host=127.0.0.1" "$E2E_TMP/logs/primary-postgres.log"; then
	e2e_fail "PostgreSQL on the primary received a connection from 127.0.0.1 (lines above) although no handshake may succeed"
fi

e2e_step "a bogus initiation gets zero bytes back"
# Each probe connects from the standby namespace, sends HEADER (printf
# escapes, HEADER_BYTES bytes long) and then random bytes up to
# INITIATION_LEN, and reads until EOF, reset, or 8 s (longer than the
# daemon's default 5 s handshake timeout). It prints "BYTES STATUS", where
# STATUS is the reading cat's exit status: 0 at EOF, 1 on a reset, 124 on
# timeout.
probe_primary() {
	local header=$1 header_bytes=$2
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	ip netns exec "$E2E_NS_STANDBY" timeout 15 bash -c '
		set -u
		header=$1 random_bytes=$2 address=$3 port=$4 reply=$5
		exec 3<>"/dev/tcp/$address/$port" || { echo "connect-failed"; exit 0; }
		{
			printf "$header"
			head -c "$random_bytes" /dev/urandom
		} >&3 2>/dev/null
		status=0
		timeout 8 cat <&3 >"$reply" 2>/dev/null || status=$?
		echo "$(wc -c <"$reply") $status"
	' probe "$header" "$((INITIATION_LEN - header_bytes))" \
		"$E2E_PRIMARY_ADDR" "$E2E_TUNNEL_PORT" "$E2E_TMP/probe-reply" \
		{E2E_STDOUT_FD}>&- {E2E_STDERR_FD}>&-
}

# A type 1 header makes the daemon try to decrypt the body as an
# initiation. Pure random bytes take the other paths to a rejection. Both
# must be logged.
for probe in initiation-header random; do
	if [ "$probe" = initiation-header ]; then
		header='\x01\x00\x00\x00'
		header_bytes=4
	else
		header=''
		header_bytes=0
	fi
	rejections_before=$(grep -Ec "$PRIMARY_REJECT_PATTERN" "$primary_log" || true)

	result=$(probe_primary "$header" "$header_bytes")
	read -r bytes status <<<"$result"
	case "$result" in
	connect-failed)
		e2e_fail "probe '$probe': could not connect to $E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT from the standby namespace" ;;
	"0 0") echo "    probe '$probe': 0 bytes back, connection closed" ;;
	"0 1") echo "    probe '$probe': 0 bytes back, connection reset" ;;
	*" 124")
		e2e_fail "probe '$probe': the primary kept the connection open for 8 s after a bogus $INITIATION_LEN-byte initiation ($bytes bytes read)" ;;
	*)
		e2e_fail "probe '$probe': the primary sent $bytes bytes back to a bogus $INITIATION_LEN-byte initiation (expected 0, read status $status)" ;;
	esac

	e2e_wait_for "a new handshake rejection line in the primary's log after probe '$probe'" 30 0.2 \
		test "$(grep -Ec "$PRIMARY_REJECT_PATTERN" "$primary_log")" -gt "$rejections_before"
done

e2e_step "the daemons survive the failed handshakes"
for node in primary standby; do
	e2e_daemon_alive "$node" || e2e_fail "walguard on the $node has exited after the failed handshakes"
done
for node in standby primary; do
	status=0
	e2e_daemon_stop "$node" || status=$?
	[ "$status" -eq 0 ] \
		|| e2e_fail "walguard on the $node exited with status $status on SIGTERM, expected 0"
done

e2e_print_total_time
