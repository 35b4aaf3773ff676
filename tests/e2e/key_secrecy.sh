#!/bin/bash
# End-to-end test: walguard keeps its secret keys secret.
#
# 1. The daemon (and --check) refuses to start when the private key file
#    or the PSK file is mode 0640, 0604 or 0644, or is a symlink to such a
#    file: the exit status is not 0 and the message names the file and
#    the 'chmod 600' that fixes it. With mode 0600 the same config starts.
# 2. A daemon pair at log_level = debug carries real connections, turns
#    away a stranger and a peer with the wrong PSK, and stops on SIGTERM.
#    No log of that run, and no message from part 1, contains a private
#    key or a PSK in base64, hex or raw form (tools/find_secrets.py).
#
# Run as root: bash tests/e2e/key_secrecy.sh
# WALGUARD_BUILD names the build dir (default: build in the repo root).
# The last line is "PASS key_secrecy" or "FAIL key_secrecy: REASON"; the
# exit status is 0, 1, or 77 (skipped: not root).
set -eu

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/tools/hostile.bash
. "$(dirname "$0")/tools/hostile.bash"

e2e_init key_secrecy
e2e_start_watchdog 90
e2e_find_binaries
hostile_find_python

responder="$E2E_PRIMARY_ADDR:$E2E_TUNNEL_PORT"
wrong_psk_port=5445

e2e_step "create the namespaces and the veth link"
e2e_setup_network

e2e_step "make keys"
e2e_make_keys
keys=$E2E_TMP/keys
config=$E2E_TMP/config
(umask 077 && "$WALGUARD_KEYGEN" genpsk >"$keys/wrong.psk") || e2e_fail "walguard-keygen genpsk failed"
messages=$E2E_TMP/logs/refusals.log
: >"$messages"

# Write the responder's config with PRIVATE_KEY_FILE and PSK_FILE to FILE.
write_responder_config() {
	hostile_write_responder_config "$1" "$2" "$(e2e_public_key standby)" "$3" \
		"$responder" "127.0.0.1:$E2E_PG_PORT"
}

# Run the daemon (and then --check) on CONFIG, where the file at PATH is
# insecure, and check that both refuse it. TARGET is the file PATH links
# to, or PATH itself.
check_refused() {
	local what=$1 conf=$2 path=$3 target=$4
	local output status mode
	mode=$(stat -L -c %a "$path")

	status=0
	output=$(ip netns exec "$E2E_NS_PRIMARY" timeout 5 "$WALGUARD_BIN" --config "$conf" 2>&1 </dev/null) || status=$?
	printf '%s\n' "== $what (daemon)" "$output" >>"$messages"
	[ "$status" -ne 124 ] \
		|| e2e_fail "$what: the daemon started and ran for 5 s with a mode $mode key file"
	[ "$status" -ne 0 ] \
		|| e2e_fail "$what: the daemon exited with status 0 with a mode $mode key file"
	case "$output" in
	*"chmod 600 $path"* | *"chmod 600 $target"*) ;;
	*) e2e_fail "$what: the daemon's message does not say 'chmod 600 $path': $output" ;;
	esac
	echo "    $what: status $status: $(printf '%s' "$output" | head -n 1)"

	status=0
	output=$("$WALGUARD_BIN" --check --config "$conf" 2>&1 </dev/null) || status=$?
	printf '%s\n' "== $what (--check)" "$output" >>"$messages"
	[ "$status" -ne 0 ] \
		|| e2e_fail "$what: walguard --check accepted a mode $mode key file"
	case "$output" in
	*"chmod 600 $path"* | *"chmod 600 $target"*) ;;
	*) e2e_fail "$what: the --check message does not say 'chmod 600 $path': $output" ;;
	esac
}

# Start the daemon on CONFIG and check that it listens, as a control for
# the refusals; then stop it.
check_starts() {
	local what=$1 conf=$2
	hostile_daemon_start control primary "$conf" "$responder"
	local status=0
	e2e_daemon_stop control || status=$?
	[ "$status" -eq 0 ] || e2e_fail "$what: the daemon exited with status $status on SIGTERM"
	echo "    $what: started, listened and stopped"
}

e2e_step "control: the config with mode 0600 key files starts"
write_responder_config "$config/control.conf" "$keys/primary.key" "$keys/link.psk"
check_starts "mode 0600 files" "$config/control.conf"

for kind in private-key psk; do
	if [ "$kind" = private-key ]; then
		source_file=$keys/primary.key
	else
		source_file=$keys/link.psk
	fi
	for mode in 0640 0604 0644; do
		e2e_step "$kind file with mode $mode, directly and through a symlink"
		file=$keys/insecure-$kind-$mode
		link=$keys/link-to-$kind-$mode
		cp "$source_file" "$file"
		chmod "$mode" "$file"
		ln -s "$file" "$link"
		for path in "$file" "$link"; do
			if [ "$kind" = private-key ]; then
				write_responder_config "$config/refused.conf" "$path" "$keys/link.psk"
			else
				write_responder_config "$config/refused.conf" "$keys/primary.key" "$path"
			fi
			what="$kind mode $mode"
			[ "$path" = "$link" ] && what="$what via symlink"
			check_refused "$what" "$config/refused.conf" "$path" "$file"
		done
		rm -f "$file" "$link"
	done
done

e2e_step "control: a symlink to a mode 0600 file starts"
ln -s "$keys/primary.key" "$keys/link-to-primary.key"
write_responder_config "$config/control.conf" "$keys/link-to-primary.key" "$keys/link.psk"
check_starts "symlink to a mode 0600 private key" "$config/control.conf"

e2e_step "start a daemon pair at log_level = debug, the sink and a wrong-PSK peer"
e2e_write_configs "$(e2e_public_key primary)"
grep -q "^log_level = debug" "$config/primary.conf" "$config/standby.conf" \
	|| e2e_fail "e2e_write_configs no longer sets log_level = debug"
hostile_write_initiator_config "$config/wrong-psk.conf" "$keys/standby.key" \
	"$(e2e_public_key primary)" "$keys/wrong.psk" "$responder" "127.0.0.1:$wrong_psk_port" \
	"connect_timeout = 0"
e2e_check_configs
hostile_sink_start primary "127.0.0.1:$E2E_PG_PORT" "$E2E_TMP/sink"
e2e_daemon_start primary
e2e_daemon_start standby
hostile_daemon_start wrong-psk standby "$config/wrong-psk.conf" "127.0.0.1:$wrong_psk_port"

e2e_step "carry connections, turn away a stranger and a wrong PSK"
for try in 1 2 3; do
	hostile_check_tunnel_works "debug run, connection $try"
done
result=$(hostile_client standby probe --connect "$responder" --send-random 200 --wait-seconds 3) \
	|| e2e_fail "raw_client.py failed: $result"
[ "$(hostile_value "$result" received)" = 0 ] \
	|| e2e_fail "the responder sent bytes to a stranger: $(hostile_one_line "$result")"
result=$(hostile_client standby probe --connect "127.0.0.1:$wrong_psk_port" --send-text "x" --wait-seconds 5) \
	|| e2e_fail "raw_client.py failed: $result"
[ "$(hostile_value "$result" received)" = 0 ] \
	|| e2e_fail "a client of the wrong-PSK daemon received bytes: $(hostile_one_line "$result")"
e2e_wait_for "the wrong-PSK daemon to log its failed handshake" 30 0.1 \
	grep -q "event=handshake_failed" "$(e2e_daemon_log wrong-psk)"

e2e_step "stop the daemons with SIGTERM"
for node in wrong-psk standby primary; do
	status=0
	e2e_daemon_stop "$node" || status=$?
	[ "$status" -eq 0 ] || e2e_fail "walguard '$node' exited with status $status on SIGTERM, expected 0"
done

e2e_step "search every log and message for the secret keys"
logs=("$(e2e_daemon_log primary)" "$(e2e_daemon_log standby)" "$(e2e_daemon_log wrong-psk)"
	"$(e2e_daemon_log control)" "$messages" "$E2E_TMP"/logs/*-check.out)
for log in "${logs[@]}"; do
	[ -s "$log" ] || e2e_fail "$(basename "$log") is empty, so searching it proves nothing"
done
for node in primary standby; do
	grep -q "level=debug event=handshake_complete" "$(e2e_daemon_log "$node")" \
		|| e2e_fail "the $node's log has no debug handshake_complete line, so debug logging was not on"
done
wc -l "${logs[@]}" | sed 's/^/    /'
# Control: the search finds a key where there is one.
printf 'level=debug psk=%s\n' "$(cut -c 1-20 "$keys/link.psk")" >"$E2E_TMP/planted.log"
if python3 "$HOSTILE_TOOLS/find_secrets.py" --key "PSK=$keys/link.psk" "$E2E_TMP/planted.log" >/dev/null; then
	e2e_fail "control failed: find_secrets.py did not find a PSK prefix planted in a file"
fi
findings=$(python3 "$HOSTILE_TOOLS/find_secrets.py" \
	--key "primary private key=$keys/primary.key" \
	--key "standby private key=$keys/standby.key" \
	--key "PSK=$keys/link.psk" \
	--key "wrong PSK=$keys/wrong.psk" \
	"${logs[@]}" 2>&1) || {
	printf '%s\n' "$findings" | sed 's/^/    /' >&2
	e2e_fail "a secret key appears in the logs or messages (findings above)"
}

e2e_print_total_time
