/*
 * The UDP socket and the Noise sessions on it. Each datagram is handled
 * statelessly until it authenticates: a stranger's datagram costs at most
 * a parse, a table lookup or a handshake attempt that its source address
 * pays for in the failed-handshake rate limit, and it never gets a reply.
 */
#include "udp_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <usrsctp.h>

#include "udp_internal.h"

/* Lines about rejected datagrams: strangers can cause them. */
#define DATAGRAM_LOG_INTERVAL_MS 10000
#define DATAGRAM_LOG_BURST 20

/* usrsctp's timers run this often. */
#define SCTP_TIMER_PERIOD_MS 20

/*
 * usrsctp keeps global state, so one transport per process: the
 * conn_output callback finds its session through the AF_CONN address.
 */
static struct udp_transport *the_transport;

static uint64_t now_ms(const struct udp_transport *transport)
{
	return daemon_now_ms(transport->daemon);
}

static const struct config *config_of(const struct udp_session *session)
{
	return session->transport->daemon->config;
}

/* The source address as a rate-limit key: IPv4 is mapped into IPv6. */
static void source_key(uint8_t key[RATELIMIT_ADDRESS_LEN], const struct sockaddr *address)
{
	memset(key, 0, RATELIMIT_ADDRESS_LEN);
	if (address->sa_family == AF_INET) {
		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)address)->sin_addr, 4);
	} else if (address->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)address)->sin6_addr, 16);
	}
}

static void format_address(char *out, size_t out_size, const struct sockaddr *address)
{
	struct sockaddr_storage storage;

	memset(&storage, 0, sizeof(storage));
	memcpy(&storage, address,
	       address->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	config_format_address(out, out_size, &storage);
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
	return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

/*
 * Log a rejected datagram with its source, rate-limited across the
 * transport, and send nothing back.
 */
static void reject_datagram(struct udp_transport *transport, const struct sockaddr *source, const char *peer_name,
			    const char *event, const char *reason)
{
	char address[64];
	uint64_t suppressed;

	if (!log_ratelimit_allow(&transport->datagram_log, now_ms(transport), &suppressed))
		return;
	format_address(address, sizeof(address), source);
	log_event(LOG_WARN, event, "peer=%s addr=%s transport=udp suppressed=%llu error=\"%s\"", peer_name, address,
		  (unsigned long long)suppressed, reason);
}

/* Key pairs and indexes. */

static void keypair_clear(struct udp_keypair *keypair)
{
	sodium_memzero(keypair, sizeof(*keypair));
}

static void keypair_move(struct udp_keypair *to, struct udp_keypair *from)
{
	memcpy(to, from, sizeof(*to));
	keypair_clear(from);
}

static uint64_t key_lifetime_ms(const struct config *config)
{
	return (uint64_t)config->rekey_interval_ms * UDP_KEY_LIFETIME_REKEY_INTERVALS;
}

static bool keypair_expired(const struct udp_session *session, const struct udp_keypair *keypair)
{
	return now_ms(session->transport) - keypair->created_ms >= key_lifetime_ms(config_of(session));
}

static bool index_in_use(const struct udp_transport *transport, uint32_t index)
{
	for (size_t i = 0; i < transport->session_count; i++) {
		const struct udp_session *session = &transport->sessions[i];
		const struct udp_session_secrets *secrets = session->secrets;

		if ((session->handshaking && session->handshake_index == index) ||
		    (secrets->current.valid && secrets->current.local_index == index) ||
		    (secrets->previous.valid && secrets->previous.local_index == index) ||
		    (secrets->next.valid && secrets->next.local_index == index))
			return true;
	}
	return false;
}

static uint32_t new_index(const struct udp_transport *transport)
{
	uint32_t index;

	/* 0 is left out, so that it can mean "no handshake yet". */
	do
		index = randombytes_random();
	while (index == 0 || index_in_use(transport, index));
	return index;
}

/* Find the key pair a data datagram names; *session_out receives its session. */
static struct udp_keypair *find_keypair(struct udp_transport *transport, uint32_t index,
					struct udp_session **session_out)
{
	for (size_t i = 0; i < transport->session_count; i++) {
		struct udp_session *session = &transport->sessions[i];
		struct udp_session_secrets *secrets = session->secrets;
		struct udp_keypair *candidates[] = { &secrets->current, &secrets->previous, &secrets->next };

		for (size_t j = 0; j < 3; j++) {
			if (candidates[j]->valid && candidates[j]->local_index == index) {
				*session_out = session;
				return candidates[j];
			}
		}
	}
	return NULL;
}

/* Sending. */

static void send_datagram(struct udp_session *session, const uint8_t *data, size_t len,
			  const struct sockaddr *to)
{
	struct udp_transport *transport = session->transport;
	uv_buf_t buffer = uv_buf_init((char *)data, (unsigned int)len);
	int result;

	if (!transport->socket_open)
		return;
	if (session->unanswered_since_ms == 0)
		session->unanswered_since_ms = now_ms(transport);
	result = uv_udp_try_send(&transport->socket, &buffer, 1, to);
	/* A datagram the kernel cannot take now is lost like any other; SCTP sends it again. */
	if (result < 0)
		log_event(LOG_DEBUG, "datagram_not_sent", "peer=%s addr=%s error=\"%s\"", session->peer->name,
			  session->address, uv_strerror(result));
	session->last_sent_ms = now_ms(transport);
}

static void handshake_start(struct udp_session *session);

/*
 * Whether nothing authenticated came back for a keepalive interval plus
 * handshake_timeout while this host kept sending. The peer may then have
 * lost the session's keys in a restart, so a new handshake is due.
 */
static bool peer_silent(const struct udp_session *session)
{
	const struct config *config = config_of(session);

	return session->unanswered_since_ms != 0 &&
	       now_ms(session->transport) - session->unanswered_since_ms >=
		       (uint64_t)config->keepalive_interval_ms + config->handshake_timeout_ms;
}

/* The key pair to send with, or NULL. An initiator starts a handshake when it has none or the key is due. */
static struct udp_keypair *sending_keypair(struct udp_session *session)
{
	const struct config *config = config_of(session);
	struct udp_keypair *current = &session->secrets->current;
	bool usable = current->valid && current->confirmed && !keypair_expired(session, current) &&
		      current->send_counter < DATAGRAM_COUNTER_LIMIT;

	uint64_t rekey_after_ms = config->rekey_interval_ms;

	/*
	 * When both hosts may dial, the one that made the current keys
	 * replaces them by age. The other waits handshake_timeout longer, so
	 * that two handshakes at once do not push each other's keys out.
	 */
	if (current->valid && !current->initiated_here)
		rekey_after_ms += config->handshake_timeout_ms;
	if (session->initiator && !session->handshaking &&
	    (!usable || now_ms(session->transport) - current->created_ms >= rekey_after_ms ||
	     current->send_counter >= config->rekey_after_records || peer_silent(session)))
		handshake_start(session);
	return usable && session->has_endpoint ? current : NULL;
}

/* Seal payload (an SCTP packet, or nothing for a keepalive) and send it. Returns false when no key is usable. */
static bool seal_and_send(struct udp_session *session, const uint8_t *payload, size_t len)
{
	struct udp_transport *transport = session->transport;
	struct udp_keypair *keypair = sending_keypair(session);
	size_t datagram_len;

	if (keypair == NULL)
		return false;
	if (datagram_seal_data(keypair->send_key, keypair->remote_index, keypair->send_counter, payload, len,
			       transport->send_buffer, &datagram_len) != DATAGRAM_OK)
		return false;
	/* The counter moves on even when the send fails, so no counter is sealed twice with one key. */
	keypair->send_counter++;
	send_datagram(session, transport->send_buffer, datagram_len, (const struct sockaddr *)&session->endpoint);
	return true;
}

static void queue_free(struct udp_session *session)
{
	while (session->queue_head != NULL) {
		struct udp_packet *packet = session->queue_head;

		session->queue_head = packet->next;
		free(packet);
	}
	session->queue_tail = NULL;
	session->queue_count = 0;
}

static void queue_packet(struct udp_session *session, const uint8_t *data, size_t len)
{
	struct udp_packet *packet = malloc(sizeof(*packet) + len);

	if (packet == NULL)
		return;
	if (session->queue_count >= UDP_QUEUE_MAX_PACKETS) {
		struct udp_packet *oldest = session->queue_head;

		session->queue_head = oldest->next;
		if (session->queue_head == NULL)
			session->queue_tail = NULL;
		session->queue_count--;
		free(oldest);
	}
	packet->next = NULL;
	packet->len = len;
	memcpy(packet->data, data, len);
	if (session->queue_tail != NULL)
		session->queue_tail->next = packet;
	else
		session->queue_head = packet;
	session->queue_tail = packet;
	session->queue_count++;
}

static void queue_flush(struct udp_session *session)
{
	while (session->queue_head != NULL) {
		struct udp_packet *packet = session->queue_head;

		if (!seal_and_send(session, packet->data, packet->len))
			return;
		session->queue_head = packet->next;
		if (session->queue_head == NULL)
			session->queue_tail = NULL;
		session->queue_count--;
		free(packet);
	}
}

/*
 * usrsctp's output: an SCTP packet for the association whose AF_CONN
 * address is addr, the session. Called from inside usrsctp.
 */
static int on_sctp_output(void *addr, void *buffer, size_t length, uint8_t tos, uint8_t set_df)
{
	struct udp_session *session = addr;

	if (the_transport == NULL || session == NULL)
		return 0;
	if (length > DATAGRAM_MAX_PAYLOAD_LEN) {
		log_event(LOG_ERROR, "datagram_not_sent", "peer=%s error=\"SCTP packet of %zu bytes exceeds %d\"",
			  session->peer->name, length, DATAGRAM_MAX_PAYLOAD_LEN);
		return 0;
	}
	if (seal_and_send(session, buffer, length))
		return 0;
	/* Only the initiator waits for keys; a responder drops, and SCTP sends again later. */
	if (session->initiator)
		queue_packet(session, buffer, length);
	return 0;
}

static void on_sctp_debug(const char *format, ...)
{
}

/* The initiator's handshake. */

static void on_retransmit_timer(uv_timer_t *timer);

static void handshake_give_up(struct udp_session *session, const char *reason)
{
	struct peer *peer = session->peer;
	uint64_t suppressed;

	session->handshaking = false;
	uv_timer_stop(&session->retransmit_timer);
	noise_handshake_wipe(&session->secrets->handshake);
	queue_free(session);
	if (log_ratelimit_allow(&peer->dial_log, now_ms(session->transport), &suppressed))
		log_event(LOG_WARN, "handshake_failed", "peer=%s addr=%s transport=udp attempts=%u suppressed=%llu error=\"%s\"",
			  peer->name, session->address, session->handshake_attempts, (unsigned long long)suppressed,
			  reason);
}

static void send_initiation(struct udp_session *session)
{
	struct udp_transport *transport = session->transport;
	struct daemon *daemon = transport->daemon;
	struct peer *peer = session->peer;
	struct udp_session_secrets *secrets = session->secrets;
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t initiation[DATAGRAM_INITIATION_LEN];
	struct timespec now;
	enum noise_result result;
	uint64_t delay;

	/* Each attempt is a new initiation: the responder accepts a timestamp only once. */
	clock_gettime(CLOCK_REALTIME, &now);
	replay_timestamp_next(timestamp, peer->last_initiation_timestamp, (uint64_t)now.tv_sec,
			      (uint32_t)now.tv_nsec);
	memcpy(peer->last_initiation_timestamp, timestamp, sizeof(timestamp));

	session->handshaking = false;
	session->handshake_index = new_index(transport);
	session->handshaking = true;
	randombytes_buf(secrets->ephemeral, sizeof(secrets->ephemeral));
	result = datagram_create_initiation(&secrets->handshake, daemon->config->private_key, peer->config->public_key,
					    peer->config->preshared_key, secrets->ephemeral, timestamp,
					    session->handshake_index, initiation);
	sodium_memzero(secrets->ephemeral, sizeof(secrets->ephemeral));
	if (result != NOISE_OK) {
		handshake_give_up(session, noise_result_string(result));
		return;
	}
	session->handshake_attempts++;
	send_datagram(session, initiation, sizeof(initiation), (const struct sockaddr *)&session->endpoint);

	delay = UDP_HANDSHAKE_RETRY_MS;
	if (delay > daemon->config->handshake_timeout_ms / 2)
		delay = daemon->config->handshake_timeout_ms / 2;
	delay += randombytes_uniform((uint32_t)(delay / 3) + 1);
	uv_timer_start(&session->retransmit_timer, on_retransmit_timer, delay, 0);
}

static void on_retransmit_timer(uv_timer_t *timer)
{
	struct udp_session *session = timer->data;
	const struct config *config = config_of(session);
	char reason[256];

	if (!session->handshaking)
		return;
	if (now_ms(session->transport) - session->handshake_started_ms >= config->handshake_timeout_ms) {
		snprintf(reason, sizeof(reason),
			 "no handshake response within %u ms: check that the peer runs with listen_udp, that "
			 "the UDP port is open, and that both hosts pin each other's public keys and PSK",
			 (unsigned)config->handshake_timeout_ms);
		handshake_give_up(session, reason);
		return;
	}
	send_initiation(session);
}

static void on_endpoint_resolved(uv_getaddrinfo_t *request, int status, struct addrinfo *result)
{
	struct udp_session *session = request->data;
	char reason[192];

	session->resolving = false;
	if (!session->transport->handles_open || !session->handshaking) {
		uv_freeaddrinfo(result);
		return;
	}
	if (status < 0 || result == NULL) {
		snprintf(reason, sizeof(reason), "cannot resolve endpoint %s: %s", session->peer->config->endpoint.host,
			 uv_strerror(status < 0 ? status : UV_EAI_NONAME));
		uv_freeaddrinfo(result);
		handshake_give_up(session, reason);
		return;
	}
	/* NOTE: only the first address is tried. */
	memset(&session->endpoint, 0, sizeof(session->endpoint));
	memcpy(&session->endpoint, result->ai_addr, result->ai_addrlen);
	session->has_endpoint = true;
	uv_freeaddrinfo(result);
	send_initiation(session);
}

/*
 * Start a handshake: resolve the endpoint (a name on every handshake, so
 * that a changed DNS record takes effect) and send the initiation.
 */
static void handshake_start(struct udp_session *session)
{
	struct udp_transport *transport = session->transport;
	const struct config_endpoint *endpoint = &session->peer->config->endpoint;
	struct addrinfo hints = { .ai_family = transport->family, .ai_socktype = SOCK_DGRAM };
	struct sockaddr_storage literal;
	char port[8];
	int error;

	if (session->handshaking || !session->initiator || transport->daemon->stopping || !transport->socket_open)
		return;
	session->handshaking = true;
	session->handshake_index = 0;
	session->handshake_started_ms = now_ms(transport);
	session->handshake_attempts = 0;
	snprintf(session->address, sizeof(session->address), "%s:%u", endpoint->host, (unsigned)endpoint->port);

	memset(&literal, 0, sizeof(literal));
	if ((transport->family == AF_INET && uv_ip4_addr(endpoint->host, endpoint->port, (struct sockaddr_in *)&literal) == 0) ||
	    (transport->family == AF_INET6 && uv_ip6_addr(endpoint->host, endpoint->port, (struct sockaddr_in6 *)&literal) == 0)) {
		session->endpoint = literal;
		session->has_endpoint = true;
		send_initiation(session);
		return;
	}
	if (session->resolving)
		return;
	snprintf(port, sizeof(port), "%u", (unsigned)endpoint->port);
	session->resolve_request.data = session;
	session->resolving = true;
	error = uv_getaddrinfo(transport->daemon->loop, &session->resolve_request, on_endpoint_resolved,
			       endpoint->host, port, &hints);
	if (error < 0) {
		char reason[128];

		session->resolving = false;
		snprintf(reason, sizeof(reason), "resolve failed: %s", uv_strerror(error));
		handshake_give_up(session, reason);
	}
}

/* Receiving. */

static void handle_initiation(struct udp_transport *transport, const struct datagram *parsed,
			      const struct sockaddr *source)
{
	struct daemon *daemon = transport->daemon;
	struct noise_handshake handshake;
	struct noise_cipher send, receive;
	uint8_t ephemeral[NOISE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t response[DATAGRAM_RESPONSE_LEN];
	uint8_t source_address[RATELIMIT_ADDRESS_LEN];
	const char *rejection = NULL;
	struct udp_session *session;
	struct udp_keypair *next;
	struct peer *peer = NULL;
	enum noise_result result;
	uint64_t now = now_ms(transport);

	sodium_memzero(&handshake, sizeof(handshake));
	sodium_memzero(&send, sizeof(send));
	sodium_memzero(&receive, sizeof(receive));
	sodium_memzero(ephemeral, sizeof(ephemeral));
	source_key(source_address, source);

	/* The DH work below is what a stranger can make us spend, so failing addresses are refused first. */
	if (!ratelimit_check(daemon->failed_handshakes, source_address, now)) {
		daemon->counters.handshakes_rate_limited++;
		rejection = "too many failed handshakes from this address";
		goto out;
	}
	result = datagram_consume_initiation(&handshake, daemon->config->private_key, parsed, timestamp);
	if (result != NOISE_OK) {
		rejection = "initiation failed to authenticate (not made for this host's public key, or a TCP handshake sent over UDP)";
		goto charge;
	}
	peer = daemon_find_peer_by_key(daemon, handshake.rs);
	if (peer == NULL) {
		rejection = "initiation from an unknown public key (no [peer] section pins it)";
		goto charge;
	}
	session = peer->udp_session;
	if (!peer->config->accepts_connections || session == NULL || session->listener == NULL) {
		rejection = "peer may not open connections here over UDP (it needs forward_target or no forward_listen, and [interface] needs listen_udp)";
		goto charge;
	}
	if (!replay_timestamps_accept(&peer->initiations_seen, timestamp)) {
		rejection = "replayed or outdated initiation";
		goto charge;
	}

	randombytes_buf(ephemeral, sizeof(ephemeral));
	next = &session->secrets->next;
	keypair_clear(next);
	next->local_index = new_index(transport);
	result = datagram_create_response(&handshake, peer->config->preshared_key, ephemeral, next->local_index,
					  parsed->sender_index, response);
	if (result == NOISE_OK)
		result = noise_handshake_split(&handshake, &send, &receive);
	if (result != NOISE_OK) {
		keypair_clear(next);
		rejection = noise_result_string(result);
		goto out;
	}
	memcpy(next->send_key, send.key, NOISE_KEY_LEN);
	memcpy(next->receive_key, receive.key, NOISE_KEY_LEN);
	next->remote_index = parsed->sender_index;
	next->created_ms = now;
	replay_window_init(&next->replay);
	next->valid = true;
	/*
	 * The response goes to the initiation's source, but the session's
	 * endpoint moves only with a data datagram, which proves the keys: a
	 * replayed initiation cannot divert the session.
	 */
	send_datagram(session, response, sizeof(response), source);
	if (log_enabled(LOG_DEBUG)) {
		char address[64];

		format_address(address, sizeof(address), source);
		log_event(LOG_DEBUG, "handshake_response_sent", "peer=%s addr=%s transport=udp", peer->name, address);
	}
	goto out;

charge:
	ratelimit_charge(daemon->failed_handshakes, source_address, now);
out:
	if (rejection != NULL) {
		daemon->counters.handshakes_rejected++;
		reject_datagram(transport, source, peer != NULL ? peer->name : "-", "handshake_rejected", rejection);
	}
	noise_handshake_wipe(&handshake);
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&receive);
	sodium_memzero(ephemeral, sizeof(ephemeral));
}

static struct udp_session *find_handshake(struct udp_transport *transport, uint32_t index)
{
	for (size_t i = 0; i < transport->session_count; i++) {
		struct udp_session *session = &transport->sessions[i];

		if (session->handshaking && session->handshake_index != 0 && session->handshake_index == index)
			return session;
	}
	return NULL;
}

static void handle_response(struct udp_transport *transport, const struct datagram *parsed,
			    const struct sockaddr *source)
{
	struct udp_session *session = find_handshake(transport, parsed->receiver_index);
	struct noise_handshake *handshake;
	struct noise_cipher send, receive;
	struct udp_session_secrets *secrets;
	struct udp_keypair *current;
	enum noise_result result;

	if (session == NULL) {
		reject_datagram(transport, source, "-", "datagram_rejected", "response to no handshake in flight");
		return;
	}
	secrets = session->secrets;
	/* Work on a copy, so that a forged response cannot spoil the handshake in flight. */
	handshake = sodium_malloc(sizeof(*handshake));
	if (handshake == NULL)
		return;
	memcpy(handshake, &secrets->handshake, sizeof(*handshake));
	result = datagram_consume_response(handshake, parsed);
	if (result == NOISE_OK)
		result = noise_handshake_split(handshake, &send, &receive);
	noise_handshake_wipe(handshake);
	sodium_free(handshake);
	if (result != NOISE_OK) {
		reject_datagram(transport, source, session->peer->name, "datagram_rejected",
				"invalid handshake response: the peer's public_key or preshared_key_file differs from what it uses");
		return;
	}

	noise_handshake_wipe(&secrets->handshake);
	session->handshaking = false;
	uv_timer_stop(&session->retransmit_timer);
	keypair_clear(&secrets->previous);
	if (secrets->current.valid)
		keypair_move(&secrets->previous, &secrets->current);
	current = &secrets->current;
	memcpy(current->send_key, send.key, NOISE_KEY_LEN);
	memcpy(current->receive_key, receive.key, NOISE_KEY_LEN);
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&receive);
	current->local_index = session->handshake_index;
	current->remote_index = parsed->sender_index;
	current->created_ms = now_ms(transport);
	current->send_counter = 0;
	replay_window_init(&current->replay);
	current->confirmed = true;
	current->initiated_here = true;
	current->valid = true;
	session->last_received_ms = now_ms(transport);
	session->unanswered_since_ms = 0;
	transport->daemon->counters.handshakes_completed++;
	session->peer->last_handshake_time = time(NULL);
	log_event(LOG_DEBUG, "handshake_complete", "peer=%s addr=%s transport=udp role=initiator attempts=%u",
		  session->peer->name, session->address, session->handshake_attempts);

	/* The queued packets confirm the keys to the responder; without any, a keepalive does. */
	if (session->queue_head != NULL)
		queue_flush(session);
	else
		seal_and_send(session, NULL, 0);
}

static void handle_data(struct udp_transport *transport, const struct datagram *parsed,
			const struct sockaddr *source)
{
	struct udp_session *session = NULL;
	struct udp_keypair *keypair = find_keypair(transport, parsed->receiver_index, &session);
	struct udp_session_secrets *secrets;
	enum replay_window_result replay;
	enum datagram_result result;
	size_t payload_len;

	/*
	 * Unlike initiations, data datagrams are not charged to the source's
	 * failed-handshake limit: that would let anyone who spoofs the peer's
	 * address starve it. Reaching the decryption needs a live index, which
	 * only an observer of the path can read, and such an attacker can drop
	 * the traffic anyway.
	 */
	if (keypair == NULL) {
		reject_datagram(transport, source, "-", "datagram_rejected", "data for an unknown session index");
		return;
	}
	if (keypair_expired(session, keypair)) {
		reject_datagram(transport, source, session->peer->name, "datagram_rejected", "data with an expired key");
		return;
	}
	replay = replay_window_check(&keypair->replay, parsed->counter, DATAGRAM_COUNTER_LIMIT);
	if (replay != REPLAY_WINDOW_OK) {
		reject_datagram(transport, source, session->peer->name, "datagram_rejected",
				replay_window_result_string(replay));
		return;
	}
	result = datagram_open_data(keypair->receive_key, parsed, transport->payload_buffer,
				    sizeof(transport->payload_buffer), &payload_len);
	if (result != DATAGRAM_OK) {
		reject_datagram(transport, source, session->peer->name, "datagram_rejected",
				datagram_result_string(result));
		return;
	}
	replay_window_accept(&keypair->replay, parsed->counter, DATAGRAM_COUNTER_LIMIT);

	session->last_received_ms = now_ms(transport);
	session->unanswered_since_ms = 0;
	/* Replies follow the peer to the source of its last authenticated datagram. */
	if (!session->has_endpoint || !same_address(&session->endpoint, source)) {
		memset(&session->endpoint, 0, sizeof(session->endpoint));
		memcpy(&session->endpoint, source,
		       source->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		session->has_endpoint = true;
		format_address(session->address, sizeof(session->address), source);
		log_event(LOG_INFO, "peer_address", "peer=%s addr=%s transport=udp", session->peer->name,
			  session->address);
	}
	secrets = session->secrets;
	if (keypair == &secrets->next) {
		/* The initiator used the new keys: they replace the current ones, which stay for stragglers. */
		keypair_clear(&secrets->previous);
		if (secrets->current.valid)
			keypair_move(&secrets->previous, &secrets->current);
		keypair_move(&secrets->current, &secrets->next);
		keypair = &secrets->current;
		keypair->confirmed = true;
		transport->daemon->counters.handshakes_completed++;
		session->peer->last_handshake_time = time(NULL);
		log_event(LOG_DEBUG, "handshake_complete", "peer=%s addr=%s transport=udp role=responder",
			  session->peer->name, session->address);
	}
	if (payload_len == 0)
		return;
	usrsctp_conninput(session, transport->payload_buffer, payload_len, 0);
}

static void on_receive_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
	struct udp_transport *transport = handle->data;

	*buffer = uv_buf_init((char *)transport->receive_buffer, sizeof(transport->receive_buffer));
}

static void on_receive(uv_udp_t *socket, ssize_t nread, const uv_buf_t *buffer, const struct sockaddr *source,
		       unsigned flags)
{
	struct udp_transport *transport = socket->data;
	struct datagram parsed;
	enum datagram_result result;

	if (nread < 0) {
		log_event(LOG_WARN, "receive_failed", "transport=udp error=\"%s\"", uv_strerror((int)nread));
		return;
	}
	if (source == NULL || transport->daemon->stopping)
		return;
	if (flags & UV_UDP_PARTIAL) {
		reject_datagram(transport, source, "-", "datagram_rejected", "datagram longer than any walguard datagram");
		return;
	}
	result = datagram_parse(&parsed, transport->receive_buffer, (size_t)nread);
	if (result != DATAGRAM_OK) {
		reject_datagram(transport, source, "-", "datagram_rejected", datagram_result_string(result));
		return;
	}
	switch (parsed.type) {
	case DATAGRAM_TYPE_INITIATION:
		handle_initiation(transport, &parsed, source);
		break;
	case DATAGRAM_TYPE_RESPONSE:
		handle_response(transport, &parsed, source);
		break;
	case DATAGRAM_TYPE_DATA:
		handle_data(transport, &parsed, source);
		break;
	}
	udp_transport_request_service(transport);
}

/* Timers. */

static void on_sctp_timer(uv_timer_t *timer)
{
	struct udp_transport *transport = timer->data;
	uint64_t now = now_ms(transport);

	usrsctp_handle_timers((uint32_t)(now - transport->sctp_timer_last_ms));
	transport->sctp_timer_last_ms = now;
	udp_transport_request_service(transport);
}

void udp_session_channel_added(struct udp_session *session)
{
	if (session->channel_count++ == 0)
		session->watched_since_ms = now_ms(session->transport);
}

void udp_session_channel_removed(struct udp_session *session)
{
	session->channel_count--;
}

/* Liveness, keepalives and rekeying, for sessions that carry channels. */
static void session_tick(struct udp_session *session)
{
	const struct config *config = config_of(session);
	struct udp_session_secrets *secrets = session->secrets;
	uint64_t now = now_ms(session->transport);
	uint64_t last_heard_ms = session->last_received_ms;
	char reason[128];

	/* Silence counts only from when the current channels appeared. */
	if (last_heard_ms < session->watched_since_ms)
		last_heard_ms = session->watched_since_ms;

	if (secrets->previous.valid && keypair_expired(session, &secrets->previous))
		keypair_clear(&secrets->previous);
	if (secrets->next.valid && now - secrets->next.created_ms >= config->handshake_timeout_ms * 3ULL)
		keypair_clear(&secrets->next);
	if (session->channel_count == 0)
		return;

	if (now - last_heard_ms >= config->keepalive_timeout_ms) {
		snprintf(reason, sizeof(reason), "nothing received for %llu ms: the path or the peer is down",
			 (unsigned long long)(now - last_heard_ms));
		log_event(LOG_WARN, "tunnel_timeout", "peer=%s addr=%s transport=udp channels=%zu error=\"%s\"",
			  session->peer->name, session->address, session->channel_count, reason);
		udp_session_fail_channels(session, reason);
		/* The next channel watches the path afresh. */
		session->watched_since_ms = now;
		return;
	}
	/* sending_keypair() starts a rekey when one is due; the keepalive below also calls it. */
	if (now - session->last_sent_ms >= config->keepalive_interval_ms)
		seal_and_send(session, NULL, 0);
	else if (session->initiator)
		sending_keypair(session);
}

static void on_tick(uv_timer_t *timer)
{
	struct udp_transport *transport = timer->data;

	for (size_t i = 0; i < transport->session_count; i++)
		session_tick(&transport->sessions[i]);
	udp_transport_request_service(transport);
}

/* Channels and listeners with usrsctp events are handled from an idle handle, outside usrsctp's calls. */
static void on_service_idle(uv_idle_t *idle)
{
	struct udp_transport *transport = idle->data;

	uv_idle_stop(idle);
	udp_channels_service(transport);
}

void udp_transport_request_service(struct udp_transport *transport)
{
	if (transport->handles_open && (transport->service_head != NULL || transport->accept_pending))
		uv_idle_start(&transport->service_idle, on_service_idle);
}

/* Start and stop. */

bool udp_transport_needed(const struct config *config)
{
	if (config->has_listen_udp)
		return true;
	for (size_t i = 0; i < config->peer_count; i++) {
		if (config->peers[i].has_endpoint && config->peers[i].transport == CONFIG_TRANSPORT_UDP)
			return true;
	}
	return false;
}

/* The socket's family: listen_udp's, or IPv6 when a UDP peer's endpoint is an IPv6 literal. */
static int choose_family(const struct config *config)
{
	struct in6_addr ignored;

	if (config->has_listen_udp)
		return config->listen_udp.ss_family;
	for (size_t i = 0; i < config->peer_count; i++) {
		const struct config_peer *peer = &config->peers[i];

		if (peer->has_endpoint && peer->transport == CONFIG_TRANSPORT_UDP &&
		    inet_pton(AF_INET6, peer->endpoint.host, &ignored) == 1)
			return AF_INET6;
	}
	return AF_INET;
}

static void start_sctp(const struct config *config)
{
	usrsctp_init_nothreads(0, on_sctp_output, on_sctp_debug);
	/* Each association's datagrams are authenticated by the session, and ECN is not carried. */
	usrsctp_sysctl_set_sctp_ecn_enable(0);
	/*
	 * Retransmission timeouts suited to a LAN or a WAN path, capped at
	 * 2 s so that traffic resumes soon after a path heals. SCTP itself
	 * gives up only after about a minute of failed retransmissions; the
	 * session's keepalive_timeout normally decides first.
	 */
	usrsctp_sysctl_set_sctp_rto_min_default(100);
	usrsctp_sysctl_set_sctp_rto_initial_default(500);
	usrsctp_sysctl_set_sctp_rto_max_default(2000);
	usrsctp_sysctl_set_sctp_init_rto_max_default(2000);
	usrsctp_sysctl_set_sctp_assoc_rtx_max_default(30);
	usrsctp_sysctl_set_sctp_path_rtx_max_default(30);
	usrsctp_sysctl_set_sctp_init_rtx_max_default(30);
	usrsctp_sysctl_set_sctp_heartbeat_interval_default(config->keepalive_interval_ms);
	usrsctp_sysctl_set_sctp_sendspace(DAEMON_HIGH_WATER * 2);
	usrsctp_sysctl_set_sctp_recvspace(DAEMON_HIGH_WATER * 2);
}

static int open_socket(struct udp_transport *transport)
{
	const struct config *config = transport->daemon->config;
	struct sockaddr_storage address;
	char text[64];
	int error;

	transport->family = choose_family(config);
	memset(&address, 0, sizeof(address));
	if (config->has_listen_udp)
		address = config->listen_udp;
	else if (transport->family == AF_INET6)
		uv_ip6_addr("::", 0, (struct sockaddr_in6 *)&address);
	else
		uv_ip4_addr("0.0.0.0", 0, (struct sockaddr_in *)&address);

	config_format_address(text, sizeof(text), &address);
	error = uv_udp_bind(&transport->socket, (const struct sockaddr *)&address, 0);
	if (error == 0)
		error = uv_udp_recv_start(&transport->socket, on_receive_alloc, on_receive);
	if (error < 0) {
		log_event(LOG_ERROR, "listen_failed", "listener=udp addr=%s error=\"%s\"", text, uv_strerror(error));
		return -1;
	}
	transport->socket_open = true;
	if (config->has_listen_udp)
		log_event(LOG_INFO, "listening", "listener=udp addr=%s", text);
	return 0;
}

static int session_init(struct udp_transport *transport, struct udp_session *session, struct peer *peer)
{
	const struct config *config = transport->daemon->config;

	session->transport = transport;
	session->peer = peer;
	uv_timer_init(transport->daemon->loop, &session->retransmit_timer);
	session->retransmit_timer.data = session;
	peer->udp_session = session;
	session->initiator = peer->config->has_endpoint && peer->config->transport == CONFIG_TRANSPORT_UDP;
	snprintf(session->address, sizeof(session->address), "-");
	session->secrets = sodium_malloc(sizeof(*session->secrets));
	if (session->secrets == NULL)
		return -1;
	sodium_memzero(session->secrets, sizeof(*session->secrets));
	usrsctp_register_address(session);

	if (config->has_listen_udp && peer->config->accepts_connections)
		return udp_session_listen(session);
	return 0;
}

int udp_transport_start(struct daemon *daemon)
{
	struct udp_transport *transport;
	const struct config *config = daemon->config;

	transport = calloc(1, sizeof(*transport));
	if (transport == NULL) {
		log_event(LOG_ERROR, "start_failed", "error=\"out of memory\"");
		return -1;
	}
	daemon->udp = transport;
	the_transport = transport;
	transport->daemon = daemon;
	transport->datagram_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(DATAGRAM_LOG_INTERVAL_MS, DATAGRAM_LOG_BURST);

	uv_udp_init(daemon->loop, &transport->socket);
	uv_timer_init(daemon->loop, &transport->sctp_timer);
	uv_timer_init(daemon->loop, &transport->tick_timer);
	uv_idle_init(daemon->loop, &transport->service_idle);
	transport->socket.data = transport;
	transport->sctp_timer.data = transport;
	transport->tick_timer.data = transport;
	transport->service_idle.data = transport;
	transport->handles_open = true;

	if (open_socket(transport) != 0)
		return -1;

	start_sctp(config);
	transport->sctp_started = true;
	transport->sessions = calloc(daemon->peer_count, sizeof(*transport->sessions));
	if (transport->sessions == NULL) {
		log_event(LOG_ERROR, "start_failed", "error=\"out of memory\"");
		return -1;
	}
	for (size_t i = 0; i < daemon->peer_count; i++) {
		transport->session_count++;
		if (session_init(transport, &transport->sessions[i], &daemon->peers[i]) != 0) {
			log_event(LOG_ERROR, "start_failed", "peer=%s transport=udp error=\"cannot set up the session\"",
				  daemon->peers[i].name);
			return -1;
		}
	}

	transport->sctp_timer_last_ms = now_ms(transport);
	uv_timer_start(&transport->sctp_timer, on_sctp_timer, SCTP_TIMER_PERIOD_MS, SCTP_TIMER_PERIOD_MS);
	uv_timer_start(&transport->tick_timer, on_tick, daemon_tick_period_ms(config), daemon_tick_period_ms(config));
	return 0;
}

void udp_transport_stop_listening(struct daemon *daemon)
{
	struct udp_transport *transport = daemon->udp;

	if (transport == NULL)
		return;
	for (size_t i = 0; i < transport->session_count; i++) {
		struct udp_session *session = &transport->sessions[i];

		if (session->listener != NULL) {
			usrsctp_set_upcall(session->listener, NULL, NULL);
			usrsctp_close(session->listener);
			session->listener = NULL;
		}
	}
}

void udp_transport_close(struct daemon *daemon)
{
	struct udp_transport *transport = daemon->udp;

	if (transport == NULL || !transport->handles_open)
		return;
	udp_transport_stop_listening(daemon);
	for (size_t i = 0; i < transport->session_count; i++) {
		struct udp_session *session = &transport->sessions[i];

		udp_session_fail_channels(session, "daemon stopping");
		session->handshaking = false;
		queue_free(session);
		if (session->resolving)
			uv_cancel((uv_req_t *)&session->resolve_request);
		uv_close((uv_handle_t *)&session->retransmit_timer, NULL);
	}
	transport->handles_open = false;
	transport->socket_open = false;
	uv_close((uv_handle_t *)&transport->socket, NULL);
	uv_close((uv_handle_t *)&transport->sctp_timer, NULL);
	uv_close((uv_handle_t *)&transport->tick_timer, NULL);
	uv_close((uv_handle_t *)&transport->service_idle, NULL);
}

void udp_transport_free(struct daemon *daemon)
{
	struct udp_transport *transport = daemon->udp;

	if (transport == NULL)
		return;
	for (size_t i = 0; i < transport->session_count; i++) {
		struct udp_session *session = &transport->sessions[i];

		if (session->secrets != NULL) {
			sodium_memzero(session->secrets, sizeof(*session->secrets));
			sodium_free(session->secrets);
		}
		usrsctp_deregister_address(session);
	}
	/* NOTE: associations still closing make usrsctp_finish() fail; the process exits next anyway. */
	if (transport->sctp_started)
		usrsctp_finish();
	free(transport->sessions);
	the_transport = NULL;
	free(transport);
	daemon->udp = NULL;
}
