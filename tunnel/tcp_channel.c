#include "tcp_channel.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "forward.h"
#include "frame.h"
#include "handshake.h"
#include "ratelimit.h"

enum tcp_channel_state {
	TCP_CHANNEL_RESOLVING,		/* initiator: looking up the endpoint */
	TCP_CHANNEL_CONNECTING,		/* initiator: TCP connect in progress */
	TCP_CHANNEL_AWAIT_RESPONSE,	/* initiator: initiation sent */
	TCP_CHANNEL_AWAIT_INITIATION,	/* responder: accepted, nothing valid yet */
	TCP_CHANNEL_AWAIT_OPEN,		/* responder: response sent */
	TCP_CHANNEL_OPEN,		/* records flow both ways */
	TCP_CHANNEL_CLOSING,		/* handles are closing; no more events */
};

/* Key material of one channel, kept in sodium_malloc() memory. */
struct tcp_channel_secrets {
	struct noise_handshake handshake;
	struct noise_cipher send;
	struct noise_cipher receive;
	uint8_t ephemeral[NOISE_KEY_LEN];
};

struct tcp_channel {
	struct channel base;
	struct daemon *daemon;
	struct peer *peer;		/* NULL until an initiation names a known peer */
	enum tcp_channel_state state;
	uint64_t id;
	char address[64];		/* the other daemon's address, for logs */

	uv_tcp_t socket;
	uv_timer_t timer;
	uv_getaddrinfo_t resolve_request;
	uv_connect_t connect_request;
	uv_shutdown_t shutdown_request;
	int open_handles;		/* socket and timer: freed when both closed */
	bool resolving;

	/*
	 * Allocated only for an initiator, or for a responder once the
	 * initiation has authenticated: a stranger's connection costs this
	 * struct alone.
	 */
	struct tcp_channel_secrets *secrets;
	uint8_t *rx;			/* handshake_rx, then FRAME_MAX_RECORD_LEN bytes */
	size_t rx_len;
	size_t rx_capacity;
	uint8_t handshake_rx[WIRE_INITIATION_LEN + 1];
	uint8_t source[RATELIMIT_ADDRESS_LEN];	/* responder: the address charged for failures */
	bool paused;

	bool fin_sent;
	bool fin_received;
	bool eof_received;
	bool shutdown_done;

	/* Responder: counted in peer->connection_count, not yet handed to a forward. */
	bool counted;

	/* Liveness and rekeying, in loop milliseconds, once open. */
	uint64_t last_sent_ms;
	uint64_t last_received_ms;
	uint64_t last_rekey_ms;
	uint64_t records_since_rekey;
	uint32_t rekeys_sent;
	uint32_t rekeys_received;

	/* Pending handshakes, linked from the daemon. */
	struct tcp_channel *pending_prev;
	struct tcp_channel *pending_next;
	bool pending;
};

/* One queued write; data points into owned or into inline_data. */
struct tcp_write {
	uv_write_t request;
	struct tcp_channel *channel;
	uint8_t *owned;
	uint8_t inline_data[];
};

static const struct channel_ops tcp_channel_ops;
static size_t tcp_queued(const struct channel *base);

static struct tcp_channel *from_base(struct channel *base)
{
	return (struct tcp_channel *)base;
}

static const char *peer_name(const struct tcp_channel *channel)
{
	return channel->peer != NULL ? channel->peer->name : "-";
}

static void pending_add(struct tcp_channel *channel)
{
	struct daemon *daemon = channel->daemon;

	channel->pending = true;
	channel->pending_prev = NULL;
	channel->pending_next = daemon->pending_channels;
	if (daemon->pending_channels != NULL)
		daemon->pending_channels->pending_prev = channel;
	daemon->pending_channels = channel;
	daemon->pending_handshakes++;
}

static void pending_remove(struct tcp_channel *channel)
{
	struct daemon *daemon = channel->daemon;

	if (!channel->pending)
		return;
	if (channel->pending_prev != NULL)
		channel->pending_prev->pending_next = channel->pending_next;
	else
		daemon->pending_channels = channel->pending_next;
	if (channel->pending_next != NULL)
		channel->pending_next->pending_prev = channel->pending_prev;
	channel->pending = false;
	daemon->pending_handshakes--;
}

/*
 * Wiped secrets blocks kept for reuse. sodium_malloc() and sodium_free()
 * cost about ten system calls each (mmap, mprotect, mlock and their
 * undoing), which a busy initiator would pay on every connection.
 */
#define SECRETS_CACHE_MAX 64

static struct tcp_channel_secrets *secrets_cache[SECRETS_CACHE_MAX];
static size_t secrets_cached;

static int channel_alloc_secrets(struct tcp_channel *channel)
{
	if (secrets_cached > 0) {
		channel->secrets = secrets_cache[--secrets_cached];
		return 0;
	}
	channel->secrets = sodium_malloc(sizeof(*channel->secrets));
	if (channel->secrets == NULL)
		return -1;
	sodium_memzero(channel->secrets, sizeof(*channel->secrets));
	return 0;
}

static void channel_release_secrets(struct tcp_channel *channel)
{
	if (channel->secrets == NULL)
		return;
	sodium_memzero(channel->secrets, sizeof(*channel->secrets));
	if (secrets_cached < SECRETS_CACHE_MAX)
		secrets_cache[secrets_cached++] = channel->secrets;
	else
		sodium_free(channel->secrets);
	channel->secrets = NULL;
}

void tcp_channel_free_cache(void)
{
	while (secrets_cached > 0)
		sodium_free(secrets_cache[--secrets_cached]);
}

/* Switch from the small handshake buffer to one large enough for any record. */
static int channel_alloc_rx(struct tcp_channel *channel)
{
	uint8_t *rx = malloc(FRAME_MAX_RECORD_LEN);

	if (rx == NULL)
		return -1;
	memcpy(rx, channel->rx, channel->rx_len);
	channel->rx = rx;
	channel->rx_capacity = FRAME_MAX_RECORD_LEN;
	return 0;
}

static struct tcp_channel *channel_new(struct daemon *daemon, uint64_t id, bool with_secrets)
{
	struct tcp_channel *channel = calloc(1, sizeof(*channel));

	if (channel == NULL)
		return NULL;
	if (with_secrets && channel_alloc_secrets(channel) != 0) {
		free(channel);
		return NULL;
	}
	channel->rx = channel->handshake_rx;
	channel->rx_capacity = sizeof(channel->handshake_rx);
	channel->base.ops = &tcp_channel_ops;
	channel->daemon = daemon;
	channel->id = id;
	snprintf(channel->address, sizeof(channel->address), "-");
	uv_tcp_init(daemon->loop, &channel->socket);
	daemon->sockets++;
	uv_timer_init(daemon->loop, &channel->timer);
	channel->socket.data = channel;
	channel->timer.data = channel;
	channel->open_handles = 2;
	return channel;
}

static void channel_free_if_done(struct tcp_channel *channel)
{
	if (channel->open_handles > 0 || channel->resolving)
		return;
	channel->daemon->sockets--;
	channel_release_secrets(channel);
	if (channel->rx != channel->handshake_rx)
		free(channel->rx);
	free(channel);
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct tcp_channel *channel = handle->data;

	channel->open_handles--;
	channel_free_if_done(channel);
}

/*
 * Close the handles. Pending writes are cancelled and the memory is freed
 * after the last close callback. Wipes the keys at once.
 */
static void channel_teardown(struct tcp_channel *channel)
{
	if (channel->state == TCP_CHANNEL_CLOSING)
		return;
	channel->state = TCP_CHANNEL_CLOSING;
	pending_remove(channel);
	if (channel->counted) {
		channel->peer->connection_count--;
		channel->counted = false;
	}
	if (channel->secrets != NULL)
		sodium_memzero(channel->secrets, sizeof(*channel->secrets));
	if (channel->resolving)
		uv_cancel((uv_req_t *)&channel->resolve_request);
	uv_close((uv_handle_t *)&channel->socket, on_handle_closed);
	uv_close((uv_handle_t *)&channel->timer, on_handle_closed);
}

static void log_closed(const struct tcp_channel *channel, const char *reason)
{
	if (channel->state != TCP_CHANNEL_OPEN)
		return;
	log_event(LOG_DEBUG, "tunnel_closed", "peer=%s addr=%s conn=%llu rekeys_sent=%u rekeys_received=%u reason=\"%s\"",
		  peer_name(channel), channel->address, (unsigned long long)channel->id, channel->rekeys_sent,
		  channel->rekeys_received, reason);
}

static void channel_fail(struct tcp_channel *channel, bool clean, const char *reason);

/*
 * An initiator's attempt failed before the channel opened. The forward
 * decides whether to dial again; the line is rate-limited per peer because
 * a waiting client may see many attempts.
 */
static void dial_fail(struct tcp_channel *channel, const char *reason)
{
	struct peer *peer = channel->peer;
	uint64_t suppressed;

	channel->daemon->counters.dials_failed++;
	if (log_ratelimit_allow(&peer->dial_log, daemon_now_ms(channel->daemon), &suppressed))
		log_event(LOG_WARN, "handshake_failed", "peer=%s addr=%s conn=%llu suppressed=%llu error=\"%s\"",
			  peer->name, channel->address, (unsigned long long)channel->id,
			  (unsigned long long)suppressed, reason);
	channel_fail(channel, false, reason);
}

/* Close because of an error or the end of the stream, and tell the owner. */
static void channel_fail(struct tcp_channel *channel, bool clean, const char *reason)
{
	const struct channel_events *events = channel->base.events;
	void *owner = channel->base.owner;

	if (channel->state == TCP_CHANNEL_CLOSING)
		return;
	log_closed(channel, reason);
	channel_teardown(channel);
	if (events != NULL)
		events->closed(owner, clean, reason);
}

/*
 * Close a responder connection whose handshake failed, without sending a
 * byte. The line is rate-limited because a stranger can cause it.
 */
static void channel_reject(struct tcp_channel *channel, const char *reason)
{
	struct daemon *daemon = channel->daemon;
	uint64_t suppressed;

	daemon->counters.handshakes_rejected++;
	if (log_ratelimit_allow(&daemon->rejected_log, daemon_now_ms(daemon), &suppressed)) {
		log_event(LOG_WARN, "handshake_rejected", "peer=%s addr=%s conn=%llu suppressed=%llu error=\"%s\"",
			  peer_name(channel), channel->address, (unsigned long long)channel->id,
			  (unsigned long long)suppressed, reason);
	}
	channel_teardown(channel);
}

static void on_write_done(uv_write_t *request, int status)
{
	struct tcp_write *write = (struct tcp_write *)request;
	struct tcp_channel *channel = write->channel;

	free(write->owned);
	free(write);
	if (status == UV_ECANCELED || channel->state == TCP_CHANNEL_CLOSING)
		return;
	if (status < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "write to tunnel failed: %s", uv_strerror(status));
		channel_fail(channel, false, reason);
		return;
	}
	if (channel->state == TCP_CHANNEL_OPEN && channel->base.events != NULL &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&channel->socket) <= DAEMON_LOW_WATER)
		channel->base.events->drained(channel->base.owner);
}

/*
 * Write len bytes at data: directly first, then whatever the kernel did
 * not take goes to the write queue. When block is the allocation that data
 * points into, the queue takes ownership of it and *block_taken is set.
 * Without a block, the rest is copied.
 */
static int channel_write(struct tcp_channel *channel, uint8_t *data, size_t len,
			 uint8_t *block, bool *block_taken)
{
	uv_buf_t buffer = uv_buf_init((char *)data, (unsigned int)len);
	struct tcp_write *write;
	int written;
	int error;

	if (block_taken != NULL)
		*block_taken = false;
	channel->last_sent_ms = daemon_now_ms(channel->daemon);

	written = uv_try_write((uv_stream_t *)&channel->socket, &buffer, 1);
	if (written == (int)len)
		return 0;
	if (written < 0 && written != UV_EAGAIN && written != UV_ENOSYS) {
		char reason[128];

		snprintf(reason, sizeof(reason), "write to tunnel failed: %s", uv_strerror(written));
		channel_fail(channel, false, reason);
		return -1;
	}
	if (written < 0)
		written = 0;

	if (block != NULL) {
		write = malloc(sizeof(*write));
		if (write == NULL)
			goto no_memory;
		write->owned = block;
		*block_taken = true;
		buffer = uv_buf_init((char *)data + written, (unsigned int)(len - (size_t)written));
	} else {
		write = malloc(sizeof(*write) + len - (size_t)written);
		if (write == NULL)
			goto no_memory;
		write->owned = NULL;
		memcpy(write->inline_data, data + written, len - (size_t)written);
		buffer = uv_buf_init((char *)write->inline_data, (unsigned int)(len - (size_t)written));
	}
	write->channel = channel;

	error = uv_write(&write->request, (uv_stream_t *)&channel->socket, &buffer, 1, on_write_done);
	if (error < 0) {
		/* The caller keeps the block, so it must not be freed here. */
		if (block_taken != NULL)
			*block_taken = false;
		free(write);
		channel_fail(channel, false, uv_strerror(error));
		return -1;
	}
	return 0;

no_memory:
	channel_fail(channel, false, "out of memory");
	return -1;
}

/* Seal and send a record with no body. */
static int channel_send_control(struct tcp_channel *channel, enum frame_type type)
{
	uint8_t record[FRAME_OVERHEAD];
	size_t record_len;
	enum frame_result result;

	result = frame_seal(&channel->secrets->send, record, type, 0, &record_len);
	if (result != FRAME_OK) {
		channel_fail(channel, false, frame_result_string(result));
		return -1;
	}
	return channel_write(channel, record, record_len, NULL, NULL);
}

static void channel_arm_timer(struct tcp_channel *channel, void (*callback)(uv_timer_t *), uint64_t timeout_ms)
{
	uv_timer_start(&channel->timer, callback, timeout_ms, 0);
}

static bool input_pending(const struct tcp_channel *channel);

static void on_handshake_timeout(uv_timer_t *timer)
{
	struct tcp_channel *channel = timer->data;
	char reason[96];

	/*
	 * After this process was stopped for a while, the timer may run
	 * before the loop reads bytes that arrived in time. Let the loop
	 * read them first; each pass consumes input, so this cannot go on
	 * past one handshake message.
	 */
	if (input_pending(channel)) {
		uv_timer_start(&channel->timer, on_handshake_timeout, 10, 0);
		return;
	}

	snprintf(reason, sizeof(reason), "handshake timed out after %u ms",
		 (unsigned)channel->daemon->config->handshake_timeout_ms);
	if (channel->base.events == NULL) {
		channel_reject(channel, reason);
		return;
	}
	dial_fail(channel, reason);
}

/*
 * Kernel keepalive probes after keepalive_interval of silence watch an
 * idle path. TCP_USER_TIMEOUT is not set, because Linux counts the time a
 * slow reader keeps a zero window against it and would cut a healthy
 * connection. on_tick() checks acknowledgements instead.
 */
static void set_socket_options(struct tcp_channel *channel)
{
	const struct config *config = channel->daemon->config;
	int idle = (int)(config->keepalive_interval_ms / 1000);
	int count = 3;
	int interval;
	uv_os_fd_t fd;

	uv_tcp_nodelay(&channel->socket, 1);
	if (idle < 1)
		idle = 1;
	interval = (int)(config->keepalive_timeout_ms / 1000) / count;
	if (interval < 1)
		interval = 1;
	if (uv_fileno((uv_handle_t *)&channel->socket, &fd) != 0)
		return;
	uv_tcp_keepalive(&channel->socket, 1, (unsigned int)idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

/* Whether bytes wait in the socket's receive queue, not yet read by us. */
static bool input_pending(const struct tcp_channel *channel)
{
	uv_os_fd_t fd;
	int pending = 0;

	if (uv_fileno((const uv_handle_t *)&channel->socket, &fd) != 0)
		return false;
	return ioctl(fd, FIONREAD, &pending) == 0 && pending > 0;
}

/*
 * Milliseconds since the kernel last saw an acknowledgement while some of
 * our bytes were unacknowledged, or 0 when nothing is outstanding. A zero
 * window still has its probes acknowledged, so a slow reader never counts
 * as a dead path here.
 */
static uint64_t unacknowledged_for_ms(const struct tcp_channel *channel)
{
	struct tcp_info info;
	socklen_t length = sizeof(info);
	uv_os_fd_t fd;

	if (uv_fileno((const uv_handle_t *)&channel->socket, &fd) != 0 ||
	    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0 || info.tcpi_unacked == 0)
		return 0;
	return info.tcpi_last_ack_recv;
}

static void channel_timeout(struct tcp_channel *channel, const char *reason)
{
	log_event(LOG_WARN, "tunnel_timeout", "peer=%s addr=%s conn=%llu error=\"%s\"", peer_name(channel),
		  channel->address, (unsigned long long)channel->id, reason);
	channel_fail(channel, false, reason);
}

/* Liveness and rekeying once the channel is open. */

static void channel_rekey_send(struct tcp_channel *channel)
{
	if (channel_send_control(channel, FRAME_REKEY) != 0)
		return;
	noise_cipher_rekey(&channel->secrets->send);
	channel->records_since_rekey = 0;
	channel->last_rekey_ms = daemon_now_ms(channel->daemon);
	channel->rekeys_sent++;
	log_event(LOG_DEBUG, "rekeyed", "peer=%s addr=%s conn=%llu direction=send rekeys=%u",
		  peer_name(channel), channel->address, (unsigned long long)channel->id, channel->rekeys_sent);
}

/* Count a sent record, and switch keys when enough have used this one. */
static void channel_count_record(struct tcp_channel *channel)
{
	channel->records_since_rekey++;
	if (channel->records_since_rekey >= channel->daemon->config->rekey_after_records)
		channel_rekey_send(channel);
}

static void on_tick(uv_timer_t *timer)
{
	struct tcp_channel *channel = timer->data;
	const struct config *config = channel->daemon->config;
	uint64_t now = daemon_now_ms(channel->daemon);
	uint64_t unacknowledged_ms;
	char reason[128];

	/*
	 * While paused this side reads nothing, and after the other side's
	 * FIN it expects nothing: then only the acknowledgement check below
	 * and the kernel's keepalive watch the path. Input already waiting in
	 * the socket (after this process was stopped for a while, say) is
	 * life, even if the loop has not read it yet.
	 */
	if (!channel->paused && !channel->fin_received && now - channel->last_received_ms >= config->keepalive_timeout_ms &&
	    !input_pending(channel)) {
		snprintf(reason, sizeof(reason), "nothing received for %llu ms: the path or the peer is down",
			 (unsigned long long)(now - channel->last_received_ms));
		channel_timeout(channel, reason);
		return;
	}
	unacknowledged_ms = unacknowledged_for_ms(channel);
	if (unacknowledged_ms >= config->keepalive_timeout_ms) {
		snprintf(reason, sizeof(reason), "sent bytes unacknowledged for %llu ms: the path or the peer is down",
			 (unsigned long long)unacknowledged_ms);
		channel_timeout(channel, reason);
		return;
	}
	if (channel->fin_sent)
		return;
	if (now - channel->last_rekey_ms >= config->rekey_interval_ms) {
		channel_rekey_send(channel);
		if (channel->state != TCP_CHANNEL_OPEN)
			return;
	}
	/* Behind queued records a keepalive would add nothing. */
	if (now - channel->last_sent_ms >= config->keepalive_interval_ms && tcp_queued(&channel->base) == 0)
		channel_send_control(channel, FRAME_KEEPALIVE);
}

static void channel_start_ticks(struct tcp_channel *channel)
{
	uint64_t now = daemon_now_ms(channel->daemon);
	uint64_t period = daemon_tick_period_ms(channel->daemon->config);

	channel->last_received_ms = now;
	channel->last_rekey_ms = now;
	uv_timer_start(&channel->timer, on_tick, period, period);
}

/* Opening: the responder receives the initiator's OPEN record. */

static void channel_open_responder(struct tcp_channel *channel)
{
	struct peer *peer = channel->peer;

	pending_remove(channel);
	channel->state = TCP_CHANNEL_OPEN;
	channel_start_ticks(channel);
	channel->daemon->counters.handshakes_completed++;
	peer->last_handshake_time = time(NULL);
	log_event(LOG_DEBUG, "handshake_complete", "peer=%s addr=%s conn=%llu role=responder",
		  peer->name, channel->address, (unsigned long long)channel->id);
	/* From here the forward owns the channel and the connection count. */
	channel->counted = false;
	forward_start_responder(peer, &channel->base, channel->id, channel->address);
}

/*
 * Check the initiation and send the response. The handshake state lives
 * on the stack until the initiator is known and allowed in, so that a
 * failed initiation allocates nothing.
 */
static void handle_initiation(struct tcp_channel *channel)
{
	struct daemon *daemon = channel->daemon;
	struct noise_handshake handshake;
	uint8_t ephemeral[NOISE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	const char *rejection = NULL;
	enum noise_result result;
	struct peer *peer = NULL;
	uint64_t now_ms = daemon_now_ms(daemon);

	/*
	 * The DH work below is what a stranger can make us spend, so an
	 * address whose initiations keep failing is refused before it.
	 * Initiations that succeed cost no token.
	 */
	sodium_memzero(&handshake, sizeof(handshake));
	if (!ratelimit_check(daemon->failed_handshakes, channel->source, now_ms)) {
		rejection = "too many failed handshakes from this address";
		daemon->counters.handshakes_rate_limited++;
		goto out;
	}

	result = handshake_consume_initiation(&handshake, daemon->config->private_key,
					      channel->rx, WIRE_INITIATION_LEN, timestamp);
	if (result != NOISE_OK) {
		rejection = "initiation failed to authenticate (not made for this host's public key)";
		goto charge;
	}

	peer = daemon_find_peer_by_key(daemon, handshake.rs);
	if (peer == NULL) {
		rejection = "initiation from an unknown public key (no [peer] section pins it)";
		goto charge;
	}
	channel->peer = peer;

	if (!peer->config->accepts_connections) {
		rejection = "peer may not open connections here (its section has forward_listen but no forward_target)";
		goto charge;
	}
	if (!replay_timestamps_accept(&peer->initiations_seen, timestamp)) {
		rejection = "replayed or outdated initiation";
		goto charge;
	}
	if (peer->connection_count >= daemon->config->max_connections_per_peer) {
		rejection = "too many connections from this peer (max_connections_per_peer)";
		goto out;
	}
	if (channel_alloc_secrets(channel) != 0 || channel_alloc_rx(channel) != 0) {
		rejection = "out of memory";
		goto out;
	}

	randombytes_buf(ephemeral, sizeof(ephemeral));
	result = handshake_create_response(&handshake, peer->config->preshared_key, ephemeral, response);
	if (result == NOISE_OK)
		result = noise_handshake_split(&handshake, &channel->secrets->send, &channel->secrets->receive);
	if (result != NOISE_OK) {
		rejection = noise_result_string(result);
		goto out;
	}

	peer->connection_count++;
	channel->counted = true;
	channel->rx_len = 0;
	channel->state = TCP_CHANNEL_AWAIT_OPEN;
	/*
	 * The peer is authenticated: from here its connection limit bounds
	 * these channels, and evicting one would break a connection the
	 * initiator already treats as open. The handshake timer still runs.
	 */
	pending_remove(channel);
	channel_write(channel, response, sizeof(response), NULL, NULL);
	goto out;

charge:
	ratelimit_charge(daemon->failed_handshakes, channel->source, now_ms);
out:
	noise_handshake_wipe(&handshake);
	sodium_memzero(ephemeral, sizeof(ephemeral));
	if (rejection != NULL)
		channel_reject(channel, rejection);
}

static void handle_response(struct tcp_channel *channel)
{
	struct tcp_channel_secrets *secrets = channel->secrets;
	enum noise_result result;

	result = handshake_consume_response(&secrets->handshake, channel->rx, WIRE_RESPONSE_LEN);
	if (result == NOISE_OK)
		result = noise_handshake_split(&secrets->handshake, &secrets->send, &secrets->receive);
	noise_handshake_wipe(&secrets->handshake);
	if (result != NOISE_OK) {
		char reason[160];

		snprintf(reason, sizeof(reason),
			 "invalid handshake response (%s): the peer's public_key or preshared_key_file differs from what it uses",
			 noise_result_string(result));
		dial_fail(channel, reason);
		return;
	}

	channel->rx_len = 0;
	if (channel_alloc_rx(channel) != 0) {
		channel_fail(channel, false, "out of memory");
		return;
	}
	channel->state = TCP_CHANNEL_OPEN;
	channel_start_ticks(channel);
	channel->daemon->counters.handshakes_completed++;
	channel->peer->last_handshake_time = time(NULL);
	log_event(LOG_DEBUG, "handshake_complete", "peer=%s addr=%s conn=%llu role=initiator",
		  peer_name(channel), channel->address, (unsigned long long)channel->id);
	if (channel_send_control(channel, FRAME_OPEN) != 0)
		return;
	channel->base.events->opened(channel->base.owner);
}

static void channel_finish_if_done(struct tcp_channel *channel)
{
	if (channel->fin_received && channel->shutdown_done)
		channel_fail(channel, true, "closed by both sides");
}

/* Act on one opened record. Returns false when the channel closed. */
static bool handle_record(struct tcp_channel *channel, enum frame_type type, uint8_t *body, size_t body_len)
{
	const struct channel_events *events = channel->base.events;

	if (channel->state == TCP_CHANNEL_AWAIT_OPEN) {
		if (type != FRAME_OPEN) {
			channel_reject(channel, "first record is not OPEN");
			return false;
		}
		channel_open_responder(channel);
		return channel->state == TCP_CHANNEL_OPEN;
	}

	switch (type) {
	case FRAME_DATA:
		if (channel->fin_received) {
			channel_fail(channel, false, "protocol error: data after FIN");
			return false;
		}
		events->data(channel->base.owner, body, body_len);
		break;
	case FRAME_FIN:
		if (channel->fin_received) {
			channel_fail(channel, false, "protocol error: second FIN");
			return false;
		}
		channel->fin_received = true;
		events->fin(channel->base.owner);
		if (channel->state == TCP_CHANNEL_OPEN)
			channel_finish_if_done(channel);
		break;
	case FRAME_RESET:
		channel_fail(channel, false, "connection reset by the other side (its log says why)");
		return false;
	case FRAME_KEEPALIVE:
		break;
	case FRAME_REKEY:
		noise_cipher_rekey(&channel->secrets->receive);
		channel->rekeys_received++;
		break;
	case FRAME_OPEN:
		channel_fail(channel, false, "protocol error: OPEN on an open connection");
		return false;
	}
	return channel->state == TCP_CHANNEL_OPEN;
}

/* Parse and act on whole records in rx, and keep a partial one. */
static void process_records(struct tcp_channel *channel)
{
	size_t offset = 0;

	while (!channel->paused || channel->state == TCP_CHANNEL_AWAIT_OPEN) {
		enum frame_result result;
		enum frame_type type;
		size_t record_len;
		uint8_t *body;
		size_t body_len;

		result = frame_record_length(channel->rx + offset, channel->rx_len - offset, &record_len);
		if (result == FRAME_NEED_MORE)
			break;
		if (result == FRAME_OK && record_len > channel->rx_len - offset)
			break;
		if (result == FRAME_OK)
			result = frame_open(&channel->secrets->receive, channel->rx + offset, record_len,
					    &type, &body, &body_len);
		if (result != FRAME_OK) {
			char reason[128];

			snprintf(reason, sizeof(reason), "invalid record from the tunnel: %s",
				 frame_result_string(result));
			if (channel->state == TCP_CHANNEL_AWAIT_OPEN)
				channel_reject(channel, reason);
			else {
				log_event(LOG_WARN, "tunnel_error", "peer=%s addr=%s conn=%llu error=\"%s\"",
					  peer_name(channel), channel->address,
					  (unsigned long long)channel->id, reason);
				channel_fail(channel, false, reason);
			}
			return;
		}
		offset += record_len;
		if (!handle_record(channel, type, body, body_len))
			return;
	}

	if (offset > 0) {
		memmove(channel->rx, channel->rx + offset, channel->rx_len - offset);
		channel->rx_len -= offset;
	}
}

static void process_rx(struct tcp_channel *channel)
{
	switch (channel->state) {
	case TCP_CHANNEL_AWAIT_INITIATION:
		if (!handshake_initiation_prefix_valid(channel->rx, channel->rx_len)) {
			channel_reject(channel, "not a walguard initiation");
			return;
		}
		if (channel->rx_len < WIRE_INITIATION_LEN)
			return;
		if (channel->rx_len > WIRE_INITIATION_LEN) {
			channel_reject(channel, "bytes after the initiation before any response");
			return;
		}
		handle_initiation(channel);
		return;
	case TCP_CHANNEL_AWAIT_RESPONSE:
		if (channel->rx_len < WIRE_RESPONSE_LEN)
			return;
		handle_response(channel);
		return;
	case TCP_CHANNEL_AWAIT_OPEN:
	case TCP_CHANNEL_OPEN:
		process_records(channel);
		return;
	default:
		return;
	}
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
	struct tcp_channel *channel = handle->data;

	*buffer = uv_buf_init((char *)channel->rx + channel->rx_len,
			      (unsigned int)(channel->rx_capacity - channel->rx_len));
}

static void handle_eof(struct tcp_channel *channel)
{
	const char *reason;

	switch (channel->state) {
	case TCP_CHANNEL_AWAIT_INITIATION:
		channel_reject(channel, "closed during the handshake");
		return;
	case TCP_CHANNEL_AWAIT_OPEN:
		/* The initiator could not read our response. */
		channel_reject(channel,
			       "initiator closed after our response: check that preshared_key_file is the same file on both hosts");
		return;
	case TCP_CHANNEL_AWAIT_RESPONSE:
		reason = "peer closed the connection without a handshake response: check that the peer's config pins this host's public key and that this peer's public_key is right (the peer's log says why; under a burst of connections it may have shed pending handshakes)";
		dial_fail(channel, reason);
		return;
	default:
		if (channel->fin_received) {
			/* The other side shut down its half after its FIN. */
			channel->eof_received = true;
			uv_read_stop((uv_stream_t *)&channel->socket);
			channel_finish_if_done(channel);
			return;
		}
		channel_fail(channel, false, "tunnel connection closed without FIN");
		return;
	}
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer)
{
	struct tcp_channel *channel = stream->data;

	if (channel->state == TCP_CHANNEL_CLOSING)
		return;
	if (nread == UV_EOF) {
		handle_eof(channel);
		return;
	}
	if (nread < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "tunnel read failed: %s", uv_strerror((int)nread));
		if (channel->base.events == NULL)
			channel_reject(channel, reason);
		else
			channel_fail(channel, false, reason);
		return;
	}
	channel->rx_len += (size_t)nread;
	channel->last_received_ms = daemon_now_ms(channel->daemon);
	process_rx(channel);
}

/* Initiator: resolve, connect, send the initiation. */

static void send_initiation(struct tcp_channel *channel)
{
	struct daemon *daemon = channel->daemon;
	struct peer *peer = channel->peer;
	struct tcp_channel_secrets *secrets = channel->secrets;
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t initiation[WIRE_INITIATION_LEN];
	struct timespec now;
	enum noise_result result;

	clock_gettime(CLOCK_REALTIME, &now);
	replay_timestamp_next(timestamp, peer->last_initiation_timestamp, (uint64_t)now.tv_sec,
			      (uint32_t)now.tv_nsec);
	memcpy(peer->last_initiation_timestamp, timestamp, sizeof(timestamp));

	randombytes_buf(secrets->ephemeral, sizeof(secrets->ephemeral));
	result = handshake_create_initiation(&secrets->handshake, daemon->config->private_key,
					     peer->config->public_key, peer->config->preshared_key,
					     secrets->ephemeral, timestamp, initiation);
	sodium_memzero(secrets->ephemeral, sizeof(secrets->ephemeral));
	if (result != NOISE_OK) {
		log_event(LOG_ERROR, "handshake_failed", "peer=%s addr=%s conn=%llu error=\"%s\"",
			  peer->name, channel->address, (unsigned long long)channel->id,
			  noise_result_string(result));
		channel_fail(channel, false, noise_result_string(result));
		return;
	}

	channel->state = TCP_CHANNEL_AWAIT_RESPONSE;
	if (channel_write(channel, initiation, sizeof(initiation), NULL, NULL) != 0)
		return;
	uv_read_start((uv_stream_t *)&channel->socket, on_alloc, on_read);
}

static void on_connected(uv_connect_t *request, int status)
{
	struct tcp_channel *channel = request->data;

	if (status == UV_ECANCELED || channel->state == TCP_CHANNEL_CLOSING)
		return;
	if (status < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(status));
		dial_fail(channel, reason);
		return;
	}
	set_socket_options(channel);
	send_initiation(channel);
}

static int channel_connect(struct tcp_channel *channel, const struct sockaddr *address)
{
	config_format_address(channel->address, sizeof(channel->address),
			      (const struct sockaddr_storage *)address);
	channel->state = TCP_CHANNEL_CONNECTING;
	channel->connect_request.data = channel;
	return uv_tcp_connect(&channel->connect_request, &channel->socket, address, on_connected);
}

static void on_resolved(uv_getaddrinfo_t *request, int status, struct addrinfo *result)
{
	struct tcp_channel *channel = request->data;
	int error;

	channel->resolving = false;
	if (channel->state == TCP_CHANNEL_CLOSING) {
		uv_freeaddrinfo(result);
		channel_free_if_done(channel);
		return;
	}
	if (status < 0) {
		char reason[160];

		snprintf(reason, sizeof(reason), "cannot resolve endpoint %s: %s",
			 channel->peer->config->endpoint.host, uv_strerror(status));
		dial_fail(channel, reason);
		return;
	}

	/* NOTE: only the first address is tried. */
	error = channel_connect(channel, result->ai_addr);
	uv_freeaddrinfo(result);
	if (error < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "connect failed: %s", uv_strerror(error));
		dial_fail(channel, reason);
	}
}

struct channel *tcp_channel_dial(struct peer *peer, uint64_t connection_id,
				 const struct channel_events *events, void *owner)
{
	struct daemon *daemon = peer->daemon;
	const struct config_endpoint *endpoint = &peer->config->endpoint;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct sockaddr_storage literal;
	struct tcp_channel *channel;
	char port[8];
	int error;

	channel = channel_new(daemon, connection_id, true);
	if (channel == NULL) {
		log_event(LOG_ERROR, "handshake_failed", "peer=%s conn=%llu error=\"out of memory\"",
			  peer->name, (unsigned long long)connection_id);
		return NULL;
	}
	/* Read the response alone: the responder sends nothing more before OPEN. */
	channel->rx_capacity = WIRE_RESPONSE_LEN;
	channel->peer = peer;
	channel->base.events = events;
	channel->base.owner = owner;
	snprintf(channel->address, sizeof(channel->address), "%s:%u", endpoint->host, (unsigned)endpoint->port);
	channel->state = TCP_CHANNEL_RESOLVING;
	channel_arm_timer(channel, on_handshake_timeout, daemon->config->handshake_timeout_ms);

	/* An address literal needs no lookup and no trip through libuv's thread pool. */
	if (uv_ip4_addr(endpoint->host, endpoint->port, (struct sockaddr_in *)&literal) == 0 ||
	    uv_ip6_addr(endpoint->host, endpoint->port, (struct sockaddr_in6 *)&literal) == 0) {
		error = channel_connect(channel, (const struct sockaddr *)&literal);
		if (error < 0) {
			/* No event has been delivered yet, so the caller hears of it from NULL. */
			log_event(LOG_WARN, "handshake_failed", "peer=%s addr=%s conn=%llu error=\"connect failed: %s\"",
				  peer->name, channel->address, (unsigned long long)connection_id, uv_strerror(error));
			channel_teardown(channel);
			return NULL;
		}
		return &channel->base;
	}

	/* Resolved on every dial, so that a changed DNS record takes effect. */
	snprintf(port, sizeof(port), "%u", (unsigned)endpoint->port);
	channel->resolve_request.data = channel;
	channel->resolving = true;
	error = uv_getaddrinfo(daemon->loop, &channel->resolve_request, on_resolved, endpoint->host, port, &hints);
	if (error < 0) {
		channel->resolving = false;
		log_event(LOG_WARN, "handshake_failed", "peer=%s addr=%s conn=%llu error=\"resolve failed: %s\"",
			  peer->name, channel->address, (unsigned long long)connection_id, uv_strerror(error));
		channel_teardown(channel);
		return NULL;
	}
	return &channel->base;
}

/* The source address as a rate-limit key: IPv4 is mapped into IPv6. */
static void source_key(uint8_t key[RATELIMIT_ADDRESS_LEN], const uv_tcp_t *socket)
{
	struct sockaddr_storage address;
	int length = sizeof(address);

	memset(key, 0, RATELIMIT_ADDRESS_LEN);
	if (uv_tcp_getpeername(socket, (struct sockaddr *)&address, &length) != 0)
		return;
	if (address.ss_family == AF_INET) {
		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &((struct sockaddr_in *)&address)->sin_addr, 4);
	} else if (address.ss_family == AF_INET6) {
		memcpy(key, &((struct sockaddr_in6 *)&address)->sin6_addr, 16);
	}
}

void tcp_channel_accept(struct daemon *daemon, uv_stream_t *listener)
{
	struct tcp_channel *channel;
	int error;

	channel = channel_new(daemon, ++daemon->next_connection_id, false);
	if (channel == NULL) {
		log_event(LOG_ERROR, "accept_failed", "error=\"out of memory\"");
		return;
	}
	error = uv_accept(listener, (uv_stream_t *)&channel->socket);
	if (error < 0) {
		log_event(LOG_WARN, "accept_failed", "error=\"%s\"", uv_strerror(error));
		channel_teardown(channel);
		return;
	}
	daemon_format_peer_address(channel->address, sizeof(channel->address), &channel->socket);
	source_key(channel->source, &channel->socket);

	if (daemon->stopping) {
		channel_teardown(channel);
		return;
	}
	/*
	 * At the limit the oldest pending handshake makes room: a real peer
	 * finishes within a round trip, so a flood of slow connections
	 * evicts only its own.
	 */
	if (daemon->pending_handshakes >= DAEMON_MAX_PENDING_HANDSHAKES) {
		struct tcp_channel *oldest = daemon->pending_channels;

		while (oldest->pending_next != NULL)
			oldest = oldest->pending_next;
		daemon->counters.handshakes_evicted++;
		channel_reject(oldest, "evicted: too many pending handshakes");
	}

	pending_add(channel);
	set_socket_options(channel);
	channel->state = TCP_CHANNEL_AWAIT_INITIATION;
	channel_arm_timer(channel, on_handshake_timeout, daemon->config->handshake_timeout_ms);
	uv_read_start((uv_stream_t *)&channel->socket, on_alloc, on_read);
}

void tcp_channel_close_pending(struct daemon *daemon)
{
	while (daemon->pending_channels != NULL)
		channel_teardown(daemon->pending_channels);
}

/* The channel_ops used by forward.c. */

static int tcp_send_data(struct channel *base, uint8_t *block, size_t len, bool *block_taken)
{
	struct tcp_channel *channel = from_base(base);
	enum frame_result result;
	size_t record_len;

	*block_taken = false;
	if (channel->state != TCP_CHANNEL_OPEN || channel->fin_sent)
		return -1;
	result = frame_seal(&channel->secrets->send, block, FRAME_DATA, len, &record_len);
	if (result != FRAME_OK) {
		channel_fail(channel, false, frame_result_string(result));
		return -1;
	}
	if (channel_write(channel, block, record_len, block, block_taken) != 0)
		return -1;
	channel_count_record(channel);
	return channel->state == TCP_CHANNEL_OPEN ? 0 : -1;
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
	struct tcp_channel *channel = request->data;

	if (status == UV_ECANCELED || channel->state == TCP_CHANNEL_CLOSING)
		return;
	if (status < 0) {
		channel_fail(channel, false, uv_strerror(status));
		return;
	}
	channel->shutdown_done = true;
	channel_finish_if_done(channel);
}

static int tcp_send_fin(struct channel *base)
{
	struct tcp_channel *channel = from_base(base);
	int error;

	if (channel->state != TCP_CHANNEL_OPEN || channel->fin_sent)
		return -1;
	channel->fin_sent = true;
	if (channel_send_control(channel, FRAME_FIN) != 0)
		return -1;
	/* The TCP FIN follows the queued records; the read side stays open. */
	channel->shutdown_request.data = channel;
	error = uv_shutdown(&channel->shutdown_request, (uv_stream_t *)&channel->socket, on_shutdown);
	if (error < 0) {
		channel_fail(channel, false, uv_strerror(error));
		return -1;
	}
	return 0;
}

static void tcp_pause(struct channel *base)
{
	struct tcp_channel *channel = from_base(base);

	if (channel->state == TCP_CHANNEL_CLOSING || channel->paused)
		return;
	channel->paused = true;
	uv_read_stop((uv_stream_t *)&channel->socket);
}

static void tcp_resume(struct channel *base)
{
	struct tcp_channel *channel = from_base(base);

	if (channel->state != TCP_CHANNEL_OPEN || !channel->paused)
		return;
	channel->paused = false;
	/* Records received before the pause come first. */
	process_records(channel);
	if (channel->state != TCP_CHANNEL_OPEN || channel->paused || channel->eof_received)
		return;
	uv_read_start((uv_stream_t *)&channel->socket, on_alloc, on_read);
}

static size_t tcp_queued(const struct channel *base)
{
	const struct tcp_channel *channel = (const struct tcp_channel *)base;

	return uv_stream_get_write_queue_size((const uv_stream_t *)&channel->socket);
}

static void tcp_close(struct channel *base, bool reset, const char *reason)
{
	struct tcp_channel *channel = from_base(base);

	if (channel->state == TCP_CHANNEL_CLOSING)
		return;
	if (reset && channel->state == TCP_CHANNEL_OPEN) {
		uint8_t record[FRAME_OVERHEAD];
		size_t record_len;

		/* Best effort: behind a full queue the RESET is dropped, and the
		 * other side learns of the failure from the TCP close alone. */
		if (frame_seal(&channel->secrets->send, record, FRAME_RESET, 0, &record_len) == FRAME_OK &&
		    tcp_queued(base) == 0) {
			uv_buf_t buffer = uv_buf_init((char *)record, (unsigned int)record_len);

			uv_try_write((uv_stream_t *)&channel->socket, &buffer, 1);
		}
	}
	log_closed(channel, reason);
	channel_teardown(channel);
}

static const struct channel_ops tcp_channel_ops = {
	.send_data = tcp_send_data,
	.send_fin = tcp_send_fin,
	.pause = tcp_pause,
	.resume = tcp_resume,
	.queued = tcp_queued,
	.close = tcp_close,
};
