# The forwarders that bench/run.sh compares, sourced by it.
#
# Each forwarder NAME has forwarder_start_NAME IPERF_PORT PG_PORT, which
# starts its client side and server side on loopback in front of the two
# sinks and sets FWD_IPERF_PORT and FWD_PG_PORT to the ports that clients
# connect to. forwarder_stop NAME stops every process it started. Keys,
# certificates and configs are made once per run by forwarders_prepare,
# inside the run's temporary directory.

# shellcheck shell=bash

FORWARDERS_ALL="direct socat spiped stunnel ssh-chacha20 ssh-aes128gcm kcptun walguard walguard-udp"

FWD_IPERF_PORT=""
FWD_PG_PORT=""
SSHD_PORT=""
KCPTUN_KEY=""

forwarders_prepare() {
	local dir=$BENCH_TMP/keys
	mkdir -p "$dir"
	chmod 0700 "$dir"

	# spiped: one 256-bit key shared by both ends.
	head -c 32 /dev/urandom >"$dir/spiped.key"

	# stunnel: a throwaway self-signed certificate for the server side.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=walguard-bench -keyout "$dir/stunnel.key" -out "$dir/stunnel.crt" \
		>/dev/null 2>&1 || bench_die "openssl could not make the stunnel certificate"

	# ssh: a host key and a client key, both made for this run only.
	ssh-keygen -q -t ed25519 -N '' -C walguard-bench-host -f "$dir/ssh_host_key"
	ssh-keygen -q -t ed25519 -N '' -C walguard-bench-client -f "$dir/ssh_client_key"
	cp "$dir/ssh_client_key.pub" "$dir/ssh_authorized_keys"

	# kcptun: a random pre-shared secret.
	KCPTUN_KEY=$(head -c 24 /dev/urandom | base64)

	# walguard: the two daemons' key pairs, mode 0600 as walguard requires.
	(cd "$dir" && "$WALGUARD_KEYGEN" pair wg-a >/dev/null && "$WALGUARD_KEYGEN" pair wg-b >/dev/null) ||
		bench_die "walguard-keygen failed"
	chmod 0600 "$dir/wg-a.key" "$dir/wg-b.key"
}

forwarder_stop() {
	bench_stop_prefix "$1-"
}

forwarder_start() {
	local name=$1 iperf_port=$2 pg_port=$3
	"forwarder_start_${name//-/_}" "$iperf_port" "$pg_port"
}

forwarder_start_direct() {
	FWD_IPERF_PORT=$1
	FWD_PG_PORT=$2
}

# socat: a plain TCP relay on each side, no crypto. It forks one process
# per connection. nodelay on the listener is inherited by the accepted
# sockets, so that Nagle's algorithm delays no small write on either
# side, as in walguard.
socat_pair() {
	local name=$1 target=$2 middle client
	bench_free_port middle
	bench_free_port client
	bench_spawn "$name-server" socat "TCP-LISTEN:$middle,bind=127.0.0.1,reuseaddr,fork,backlog=512,nodelay" \
		"TCP:127.0.0.1:$target,nodelay"
	bench_spawn "$name-client" socat "TCP-LISTEN:$client,bind=127.0.0.1,reuseaddr,fork,backlog=512,nodelay" \
		"TCP:127.0.0.1:$middle,nodelay"
	bench_wait_tcp "$name-server" "$middle"
	bench_wait_tcp "$name-client" "$client"
	PAIR_PORT=$client
}

forwarder_start_socat() {
	socat_pair socat-iperf "$1"
	FWD_IPERF_PORT=$PAIR_PORT
	socat_pair socat-pg "$2"
	FWD_PG_PORT=$PAIR_PORT
}

# spiped: -e encrypts on the client side, -d decrypts on the server side.
spiped_pair() {
	local name=$1 target=$2 middle client
	bench_free_port middle
	bench_free_port client
	bench_spawn "$name-server" spiped -F -d -n 0 -s "[127.0.0.1]:$middle" -t "[127.0.0.1]:$target" \
		-k "$BENCH_TMP/keys/spiped.key"
	bench_spawn "$name-client" spiped -F -e -n 0 -s "[127.0.0.1]:$client" -t "[127.0.0.1]:$middle" \
		-k "$BENCH_TMP/keys/spiped.key"
	bench_wait_tcp "$name-server" "$middle"
	bench_wait_tcp "$name-client" "$client"
	PAIR_PORT=$client
}

forwarder_start_spiped() {
	spiped_pair spiped-iperf "$1"
	FWD_IPERF_PORT=$PAIR_PORT
	spiped_pair spiped-pg "$2"
	FWD_PG_PORT=$PAIR_PORT
}

# stunnel: one process per side with one service per sink. The client
# side does not verify the certificate, which costs nothing on the path.
forwarder_start_stunnel() {
	local iperf_target=$1 pg_target=$2
	local dir=$BENCH_TMP/stunnel
	local iperf_middle iperf_client pg_middle pg_client
	bench_free_port iperf_middle
	bench_free_port iperf_client
	bench_free_port pg_middle
	bench_free_port pg_client
	mkdir -p "$dir"

	cat >"$dir/server.conf" <<-EOF
		foreground = yes
		pid =
		syslog = no
		debug = warning
		cert = $BENCH_TMP/keys/stunnel.crt
		key = $BENCH_TMP/keys/stunnel.key
		socket = l:TCP_NODELAY=1
		socket = r:TCP_NODELAY=1
		[iperf]
		accept = 127.0.0.1:$iperf_middle
		connect = 127.0.0.1:$iperf_target
		[pg]
		accept = 127.0.0.1:$pg_middle
		connect = 127.0.0.1:$pg_target
	EOF
	cat >"$dir/client.conf" <<-EOF
		foreground = yes
		pid =
		syslog = no
		debug = warning
		client = yes
		socket = l:TCP_NODELAY=1
		socket = r:TCP_NODELAY=1
		[iperf]
		accept = 127.0.0.1:$iperf_client
		connect = 127.0.0.1:$iperf_middle
		[pg]
		accept = 127.0.0.1:$pg_client
		connect = 127.0.0.1:$pg_middle
	EOF
	bench_spawn stunnel-server stunnel "$dir/server.conf"
	bench_spawn stunnel-client stunnel "$dir/client.conf"
	bench_wait_tcp stunnel-server "$iperf_middle"
	bench_wait_tcp stunnel-server "$pg_middle"
	bench_wait_tcp stunnel-client "$iperf_client"
	bench_wait_tcp stunnel-client "$pg_client"
	FWD_IPERF_PORT=$iperf_client
	FWD_PG_PORT=$pg_client
}

# ssh -L through a throwaway sshd on a loopback port, with this run's own
# host key and authorized key. The system's sshd and the user's keys and
# ssh config are never used.
sshd_start() {
	local dir=$BENCH_TMP/ssh
	mkdir -p "$dir"
	bench_free_port SSHD_PORT
	cat >"$dir/sshd_config" <<-EOF
		Port $SSHD_PORT
		ListenAddress 127.0.0.1
		HostKey $BENCH_TMP/keys/ssh_host_key
		PidFile none
		AuthorizedKeysFile $BENCH_TMP/keys/ssh_authorized_keys
		AuthenticationMethods publickey
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		PermitRootLogin prohibit-password
		StrictModes no
		AllowTcpForwarding local
		UseDNS no
		Ciphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com
	EOF
	# sshd refuses to start without its privilege separation directory,
	# which only the ssh service creates.
	if [ ! -d /run/sshd ]; then
		mkdir -m 0755 /run/sshd
		BENCH_MADE_RUN_SSHD=1
	fi
	bench_spawn sshd /usr/sbin/sshd -D -e -f "$dir/sshd_config"
	bench_wait_tcp sshd "$SSHD_PORT"
}

ssh_tunnel_start() {
	local name=$1 cipher=$2 iperf_target=$3 pg_target=$4
	local iperf_client pg_client
	bench_free_port iperf_client
	bench_free_port pg_client
	bench_spawn "$name-client" ssh -F /dev/null -N -T -c "$cipher" -p "$SSHD_PORT" \
		-i "$BENCH_TMP/keys/ssh_client_key" -o IdentitiesOnly=yes -o BatchMode=yes \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o ExitOnForwardFailure=yes -o Compression=no -o ConnectTimeout=10 \
		-L "127.0.0.1:$iperf_client:127.0.0.1:$iperf_target" \
		-L "127.0.0.1:$pg_client:127.0.0.1:$pg_target" \
		root@127.0.0.1
	bench_wait_tcp "$name-client" "$iperf_client" 15
	bench_wait_tcp "$name-client" "$pg_client" 15
	FWD_IPERF_PORT=$iperf_client
	FWD_PG_PORT=$pg_client
}

forwarder_start_ssh_chacha20() {
	ssh_tunnel_start ssh-chacha20 chacha20-poly1305@openssh.com "$1" "$2"
}

forwarder_start_ssh_aes128gcm() {
	ssh_tunnel_start ssh-aes128gcm aes128-gcm@openssh.com "$1" "$2"
}

# kcptun: KCP over UDP with smux streams inside. Compression is off
# because iperf3 sends random bytes, and forward error correction is off
# because loopback drops nothing. The windows are raised from the default
# 128 and 512 packets, which cap a loopback stream at about 35 Mbit/s
# on the machine this was written on; 1024 gave about 3 times that.
kcptun_pair() {
	local name=$1 target=$2 middle client
	local options=(--crypt aes-128 --mode fast --nocomp --datashard 0 --parityshard 0
		--sndwnd 1024 --rcvwnd 1024 --quiet)
	bench_free_port middle
	bench_free_port client
	bench_spawn "$name-server" env KCPTUN_KEY="$KCPTUN_KEY" kcptun-server -l "127.0.0.1:$middle" \
		-t "127.0.0.1:$target" "${options[@]}"
	bench_spawn "$name-client" env KCPTUN_KEY="$KCPTUN_KEY" kcptun-client -l "127.0.0.1:$client" \
		-r "127.0.0.1:$middle" "${options[@]}"
	bench_wait_udp "$name-server" "$middle"
	bench_wait_tcp "$name-client" "$client"
	PAIR_PORT=$client
}

forwarder_start_kcptun() {
	kcptun_pair kcptun-iperf "$1"
	FWD_IPERF_PORT=$PAIR_PORT
	kcptun_pair kcptun-pg "$2"
	FWD_PG_PORT=$PAIR_PORT
}

# walguard: daemon NAME-a is the responder (the primary's side, which
# connects to the target), NAME-b the initiator (the standby's side, with
# forward_listen), over TRANSPORT (tcp, the default, or udp). Sets
# PAIR_PORT to the forward_listen port. One pair carries one target,
# because a peer has one forward_target.
walguard_pair() {
	local name=$1 target=$2 transport=${3:-tcp}
	local dir=$BENCH_TMP/walguard/$name
	local tunnel_port listen_port listen_key=listen
	bench_free_port tunnel_port
	bench_free_port listen_port
	[ "$transport" = udp ] && listen_key=listen_udp
	mkdir -p "$dir"
	cat >"$dir/a.conf" <<-EOF
		[interface]
		private_key_file = $BENCH_TMP/keys/wg-a.key
		$listen_key = 127.0.0.1:$tunnel_port
		[peer b]
		public_key = $(cat "$BENCH_TMP/keys/wg-b.pub")
		forward_target = 127.0.0.1:$target
	EOF
	cat >"$dir/b.conf" <<-EOF
		[interface]
		private_key_file = $BENCH_TMP/keys/wg-b.key
		[peer a]
		public_key = $(cat "$BENCH_TMP/keys/wg-a.pub")
		endpoint = 127.0.0.1:$tunnel_port
		transport = $transport
		forward_listen = 127.0.0.1:$listen_port
	EOF
	bench_spawn "$name-a" "$WALGUARD" --config "$dir/a.conf"
	bench_spawn "$name-b" "$WALGUARD" --config "$dir/b.conf"
	"bench_wait_$transport" "$name-a" "$tunnel_port"
	bench_wait_tcp "$name-b" "$listen_port"
	PAIR_PORT=$listen_port
}

# walguard-udp: the same pair over the UDP transport, with one UDP socket
# each and an SCTP association per forwarded connection inside a Noise
# session.
forwarder_start_walguard_udp() {
	walguard_pair walguard-udp-iperf "$1" udp
	FWD_IPERF_PORT=$PAIR_PORT
	walguard_pair walguard-udp-pg "$2" udp
	FWD_PG_PORT=$PAIR_PORT
}

forwarder_start_walguard() {
	walguard_pair walguard-iperf "$1"
	FWD_IPERF_PORT=$PAIR_PORT
	walguard_pair walguard-pg "$2"
	FWD_PG_PORT=$PAIR_PORT
}
