#include "forward.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_channel.h"
#include "udp_transport.h"

/*
 * One forwarded connection. On the initiator the local socket is a client
 * of forward_listen; on the responder it is our connection to the
 * forward_target. Both directions run independently until each has seen
 * its end (local EOF, or FIN from the channel).
 */
struct forward {
	struct daemon *daemon;
	struct peer *peer;
	uint64_t id;
	bool initiator;
	struct forward *prev;
	struct forward *next;

	uv_tcp_t local;
	uv_timer_t retry_timer;		/* initiator: the wait before the next dial */
	uv_getaddrinfo_t resolve_request;
	uv_connect_t connect_request;
	uv_shutdown_t shutdown_request;
	bool resolving;
	int open_handles;		/* local and retry_timer: freed when both closed */

	struct channel *channel;	/* NULL once closed */
	uint8_t *block;			/* read buffer for local, CHANNEL_BLOCK_SIZE */
	size_t early_len;		/* initiator: client bytes read before the tunnel opened */

	bool local_connected;
	bool local_reading;
	bool local_eof;			/* local sent EOF, FIN passed on */
	bool channel_fin;		/* channel sent FIN, local write side shut */
	bool channel_paused;		/* by us, because local writes queued up */
	bool opened;			/* the channel opened at least once */
	bool closing;

	uint32_t dial_attempts;
	char last_dial_error[320];

	char peer_address[64];
	char local_address[64];
	uint64_t bytes_to_channel;
	uint64_t bytes_to_local;
	uint64_t started_ms;
};

/* A queued write to the local socket, with a copy of its bytes. */
struct local_write {
	uv_write_t request;
	struct forward *forward;
	uint8_t data[];
};

static const struct channel_events forward_events;

static void list_add(struct forward *forward)
{
	struct daemon *daemon = forward->daemon;

	forward->prev = NULL;
	forward->next = daemon->forwards;
	if (daemon->forwards != NULL)
		daemon->forwards->prev = forward;
	daemon->forwards = forward;
}

static void list_remove(struct forward *forward)
{
	struct daemon *daemon = forward->daemon;

	if (forward->prev != NULL)
		forward->prev->next = forward->next;
	else
		daemon->forwards = forward->next;
	if (forward->next != NULL)
		forward->next->prev = forward->prev;
}

static struct forward *forward_new(struct peer *peer, uint64_t id, bool initiator)
{
	struct forward *forward = calloc(1, sizeof(*forward));

	if (forward == NULL)
		return NULL;
	forward->daemon = peer->daemon;
	forward->peer = peer;
	forward->id = id;
	forward->initiator = initiator;
	forward->started_ms = daemon_now_ms(peer->daemon);
	uv_tcp_init(peer->daemon->loop, &forward->local);
	peer->daemon->sockets++;
	uv_timer_init(peer->daemon->loop, &forward->retry_timer);
	forward->local.data = forward;
	forward->retry_timer.data = forward;
	forward->open_handles = 2;
	snprintf(forward->peer_address, sizeof(forward->peer_address), "-");
	snprintf(forward->local_address, sizeof(forward->local_address), "-");
	peer->connection_count++;
	list_add(forward);
	return forward;
}

static void forward_free_if_done(struct forward *forward)
{
	struct daemon *daemon = forward->daemon;

	if (forward->open_handles > 0 || forward->resolving)
		return;
	forward->peer->connection_count--;
	forward->peer->closed_bytes_sent += forward->bytes_to_channel;
	forward->peer->closed_bytes_received += forward->bytes_to_local;
	daemon->sockets--;
	list_remove(forward);
	free(forward->block);
	free(forward);
	daemon_forward_removed(daemon);
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct forward *forward = handle->data;

	forward->open_handles--;
	forward_free_if_done(forward);
}

/*
 * Close both ends. With reset, the local socket is closed with RST and the
 * other daemon receives RESET, so that no side mistakes a failure for a
 * clean end of stream.
 */
static void forward_close(struct forward *forward, bool reset, const char *reason)
{
	if (forward->closing)
		return;
	forward->closing = true;
	if (reset)
		forward->daemon->counters.connections_reset++;

	log_event(reset ? LOG_WARN : LOG_INFO, "connection_closed",
		  "peer=%s addr=%s conn=%llu local=%s sent=%llu received=%llu duration_ms=%llu reason=\"%s\"",
		  forward->peer->name, forward->peer_address, (unsigned long long)forward->id,
		  forward->local_address, (unsigned long long)forward->bytes_to_channel,
		  (unsigned long long)forward->bytes_to_local,
		  (unsigned long long)(daemon_now_ms(forward->daemon) - forward->started_ms), reason);

	if (forward->channel != NULL) {
		forward->channel->ops->close(forward->channel, reset, reason);
		forward->channel = NULL;
	}
	if (forward->resolving)
		uv_cancel((uv_req_t *)&forward->resolve_request);
	uv_close((uv_handle_t *)&forward->retry_timer, on_handle_closed);
	if (reset && forward->local_connected)
		uv_tcp_close_reset(&forward->local, on_handle_closed);
	else
		uv_close((uv_handle_t *)&forward->local, on_handle_closed);
}

/* Both directions ended cleanly and every byte was written: close. */
static void forward_finish_if_done(struct forward *forward)
{
	if (forward->channel == NULL && forward->local_eof && forward->channel_fin &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&forward->local) == 0 &&
	    forward->shutdown_request.handle == NULL)
		forward_close(forward, false, "closed by both sides");
}

/* Local socket to channel. */

static void on_local_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
	struct forward *forward = handle->data;

	if (forward->block == NULL)
		forward->block = malloc(CHANNEL_BLOCK_SIZE);
	if (forward->block == NULL) {
		*buffer = uv_buf_init(NULL, 0);
		return;
	}
	*buffer = uv_buf_init((char *)forward->block + CHANNEL_HEADROOM + forward->early_len,
			      (unsigned int)(CHANNEL_MAX_BODY_LEN - forward->early_len));
}

static void local_read_stop(struct forward *forward)
{
	if (!forward->local_reading)
		return;
	forward->local_reading = false;
	uv_read_stop((uv_stream_t *)&forward->local);
}

static void on_local_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer);

static void local_read_start(struct forward *forward)
{
	if (forward->local_reading || forward->local_eof || forward->closing)
		return;
	forward->local_reading = true;
	uv_read_start((uv_stream_t *)&forward->local, on_local_alloc, on_local_read);
}

/*
 * Initiator, while dials go on: the client is read so that its leaving is
 * noticed, and its first bytes wait in the block (up to one block, then
 * reading stops) until the tunnel opens.
 */
static void handle_early_read(struct forward *forward, ssize_t nread)
{
	if (nread == UV_EOF) {
		/*
		 * EOF cannot tell a half-close from a client that left. With
		 * bytes to deliver it is a half-close, carried as FIN once the
		 * tunnel opens; with none there is nothing to carry.
		 */
		if (forward->early_len == 0) {
			forward_close(forward, false, "client left before the tunnel opened");
			return;
		}
		forward->local_eof = true;
		local_read_stop(forward);
		return;
	}
	if (nread < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "local connection failed before the tunnel opened: %s",
			 uv_strerror((int)nread));
		forward_close(forward, true, reason);
		return;
	}
	forward->early_len += (size_t)nread;
	if (forward->early_len == CHANNEL_MAX_BODY_LEN)
		local_read_stop(forward);
}

static void on_local_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer)
{
	struct forward *forward = stream->data;
	struct channel *channel = forward->channel;
	bool taken;
	int result;

	if (forward->closing)
		return;
	if (forward->initiator && !forward->opened) {
		handle_early_read(forward, nread);
		return;
	}
	if (channel == NULL)
		return;
	if (nread == UV_ENOBUFS) {
		forward_close(forward, true, "out of memory");
		return;
	}
	if (nread == UV_EOF) {
		forward->local_eof = true;
		local_read_stop(forward);
		channel->ops->send_fin(channel);
		return;
	}
	if (nread < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "local connection failed: %s", uv_strerror((int)nread));
		forward_close(forward, true, reason);
		return;
	}
	if (nread == 0)
		return;

	forward->bytes_to_channel += (uint64_t)nread;
	result = channel->ops->send_data(channel, forward->block, (size_t)nread, &taken);
	/* The channel may own the block even when it failed right after queueing it. */
	if (taken)
		forward->block = NULL;
	if (result != 0)
		return;
	if (forward->channel != NULL && channel->ops->queued(channel) > DAEMON_HIGH_WATER)
		local_read_stop(forward);
}

static void channel_drained(void *owner)
{
	struct forward *forward = owner;

	if (!forward->closing && forward->local_connected)
		local_read_start(forward);
}

/* Channel to local socket. */

static void on_local_write_done(uv_write_t *request, int status)
{
	struct local_write *write = (struct local_write *)request;
	struct forward *forward = write->forward;

	free(write);
	if (forward->closing || status == UV_ECANCELED)
		return;
	if (status < 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "write to local connection failed: %s", uv_strerror(status));
		forward_close(forward, true, reason);
		return;
	}
	if (forward->channel_paused && forward->channel != NULL &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&forward->local) <= DAEMON_LOW_WATER) {
		forward->channel_paused = false;
		forward->channel->ops->resume(forward->channel);
	}
}

static void channel_data(void *owner, const uint8_t *data, size_t len)
{
	struct forward *forward = owner;
	uv_buf_t buffer = uv_buf_init((char *)data, (unsigned int)len);
	struct local_write *write;
	int written;

	forward->bytes_to_local += len;

	/* Most writes go straight to the kernel; copy only what it leaves. */
	written = uv_try_write((uv_stream_t *)&forward->local, &buffer, 1);
	if (written == (int)len)
		return;
	if (written < 0 && written != UV_EAGAIN) {
		char reason[128];

		snprintf(reason, sizeof(reason), "write to local connection failed: %s", uv_strerror(written));
		forward_close(forward, true, reason);
		return;
	}
	if (written < 0)
		written = 0;

	write = malloc(sizeof(*write) + len - (size_t)written);
	if (write == NULL) {
		forward_close(forward, true, "out of memory");
		return;
	}
	write->forward = forward;
	memcpy(write->data, data + written, len - (size_t)written);
	buffer = uv_buf_init((char *)write->data, (unsigned int)(len - (size_t)written));
	if (uv_write(&write->request, (uv_stream_t *)&forward->local, &buffer, 1, on_local_write_done) < 0) {
		free(write);
		forward_close(forward, true, "write to local connection failed");
		return;
	}

	if (!forward->channel_paused &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&forward->local) > DAEMON_HIGH_WATER) {
		forward->channel_paused = true;
		forward->channel->ops->pause(forward->channel);
	}
}

static void on_local_shutdown(uv_shutdown_t *request, int status)
{
	struct forward *forward = request->data;

	request->handle = NULL;
	if (forward->closing || status == UV_ECANCELED)
		return;
	if (status < 0 && status != UV_ENOTCONN) {
		char reason[128];

		snprintf(reason, sizeof(reason), "local shutdown failed: %s", uv_strerror(status));
		forward_close(forward, true, reason);
		return;
	}
	forward_finish_if_done(forward);
}

static void channel_fin(void *owner)
{
	struct forward *forward = owner;

	forward->channel_fin = true;
	forward->shutdown_request.data = forward;
	/* Sent after the queued writes: the client sees EOF after the last byte. */
	if (uv_shutdown(&forward->shutdown_request, (uv_stream_t *)&forward->local, on_local_shutdown) < 0)
		forward->shutdown_request.handle = NULL;
}

static void forward_dial_failed(struct forward *forward, const char *reason);

static void channel_closed(void *owner, bool clean, const char *reason)
{
	struct forward *forward = owner;

	forward->channel = NULL;
	if (forward->initiator && !forward->opened) {
		forward_dial_failed(forward, reason);
		return;
	}
	if (!clean) {
		forward_close(forward, true, reason);
		return;
	}
	forward_finish_if_done(forward);
}

static void start_forwarding(struct forward *forward)
{
	struct channel *channel = forward->channel;

	forward->daemon->counters.connections_opened++;
	forward->local_connected = true;
	uv_tcp_nodelay(&forward->local, 1);
	if (forward->early_len > 0) {
		size_t len = forward->early_len;
		bool taken;
		int result;

		forward->bytes_to_channel += len;
		forward->early_len = 0;
		result = channel->ops->send_data(channel, forward->block, len, &taken);
		if (taken)
			forward->block = NULL;
		if (result != 0 || forward->channel == NULL)
			return;
		if (forward->local_eof && channel->ops->send_fin(channel) != 0)
			return;
	}
	local_read_start(forward);
	channel->ops->resume(channel);
}

/* Initiator. */

static void channel_opened(void *owner)
{
	struct forward *forward = owner;
	struct peer *peer = forward->peer;

	forward->opened = true;
	peer->dial_failures = 0;
	peer->dial_not_before_ms = 0;
	log_event(LOG_INFO, "connection_opened", "peer=%s addr=%s conn=%llu local=%s attempts=%u",
		  peer->name, forward->peer_address, (unsigned long long)forward->id, forward->local_address,
		  forward->dial_attempts);
	start_forwarding(forward);
}

static void forward_dial(struct forward *forward)
{
	forward->dial_attempts++;
	if (forward->peer->config->transport == CONFIG_TRANSPORT_UDP)
		forward->channel = udp_channel_dial(forward->peer, forward->id, &forward_events, forward);
	else
		forward->channel = tcp_channel_dial(forward->peer, forward->id, &forward_events, forward);
	if (forward->channel == NULL)
		forward_dial_failed(forward, "could not start the tunnel connection");
}

static void on_retry_timer(uv_timer_t *timer)
{
	struct forward *forward = timer->data;

	if (forward->closing)
		return;
	if (forward->daemon->stopping) {
		forward_close(forward, true, "daemon stopping before the tunnel opened");
		return;
	}
	forward_dial(forward);
}

/* Dial now, or when the peer's backoff allows. */
static void forward_schedule_dial(struct forward *forward)
{
	uint64_t now = daemon_now_ms(forward->daemon);
	uint64_t not_before = forward->peer->dial_not_before_ms;

	if (not_before <= now) {
		forward_dial(forward);
		return;
	}
	uv_timer_start(&forward->retry_timer, on_retry_timer, not_before - now, 0);
}

/* The next delay: exponential, capped, and spread over its upper half so that peers do not dial in step. */
static uint64_t backoff_delay_ms(const struct peer *peer)
{
	uint64_t delay = DAEMON_DIAL_BACKOFF_BASE_MS;
	uint64_t max = peer->daemon->config->dial_backoff_max_ms;

	for (uint32_t i = 1; i < peer->dial_failures && delay < max; i++)
		delay *= 2;
	if (delay > max)
		delay = max;
	return delay / 2 + randombytes_uniform((uint32_t)(delay / 2) + 1);
}

/*
 * A dial failed before the channel opened. The client waits, unread,
 * while dials are retried with backoff for up to connect_timeout; then it
 * is reset with the last error.
 */
static void forward_dial_failed(struct forward *forward, const char *reason)
{
	struct peer *peer = forward->peer;
	uint64_t now = daemon_now_ms(forward->daemon);
	uint64_t delay;

	snprintf(forward->last_dial_error, sizeof(forward->last_dial_error), "%s", reason);
	peer->dial_failures++;
	delay = backoff_delay_ms(peer);
	if (peer->dial_not_before_ms < now + delay)
		peer->dial_not_before_ms = now + delay;

	if (forward->closing)
		return;
	if (forward->daemon->stopping ||
	    peer->dial_not_before_ms - forward->started_ms >= forward->daemon->config->connect_timeout_ms) {
		char message[448];

		snprintf(message, sizeof(message), "no tunnel after %u attempts in %llu ms: %s",
			 forward->dial_attempts, (unsigned long long)(now - forward->started_ms),
			 forward->last_dial_error);
		forward_close(forward, true, message);
		return;
	}
	forward_schedule_dial(forward);
}

void forward_accept_local(struct peer *peer, uv_stream_t *listener)
{
	struct daemon *daemon = peer->daemon;
	struct forward *forward;
	struct sockaddr_storage address;
	int length = sizeof(address);
	int error;

	forward = forward_new(peer, ++daemon->next_connection_id, true);
	if (forward == NULL) {
		log_event(LOG_ERROR, "accept_failed", "peer=%s error=\"out of memory\"", peer->name);
		return;
	}
	error = uv_accept(listener, (uv_stream_t *)&forward->local);
	if (error < 0) {
		log_event(LOG_WARN, "accept_failed", "peer=%s error=\"%s\"", peer->name, uv_strerror(error));
		forward->closing = true;
		uv_close((uv_handle_t *)&forward->local, on_handle_closed);
		uv_close((uv_handle_t *)&forward->retry_timer, on_handle_closed);
		return;
	}
	if (uv_tcp_getpeername(&forward->local, (struct sockaddr *)&address, &length) == 0)
		config_format_address(forward->local_address, sizeof(forward->local_address), &address);
	snprintf(forward->peer_address, sizeof(forward->peer_address), "%s:%u",
		 peer->config->endpoint.host, (unsigned)peer->config->endpoint.port);

	if (peer->connection_count > daemon->config->max_connections_per_peer) {
		forward_close(forward, true, "too many connections to this peer (max_connections_per_peer)");
		return;
	}

	forward->local_connected = true;
	local_read_start(forward);
	forward_schedule_dial(forward);
}

/* Responder. */

static void on_target_connected(uv_connect_t *request, int status)
{
	struct forward *forward = request->data;

	if (forward->closing || status == UV_ECANCELED)
		return;
	if (status < 0) {
		char reason[160];

		snprintf(reason, sizeof(reason), "cannot connect to forward_target %s: %s",
			 forward->local_address, uv_strerror(status));
		forward_close(forward, true, reason);
		return;
	}
	log_event(LOG_INFO, "connection_opened", "peer=%s addr=%s conn=%llu target=%s",
		  forward->peer->name, forward->peer_address, (unsigned long long)forward->id,
		  forward->local_address);
	start_forwarding(forward);
}

static void connect_target(struct forward *forward, const struct sockaddr *address)
{
	int error;

	config_format_address(forward->local_address, sizeof(forward->local_address),
			      (const struct sockaddr_storage *)address);
	forward->connect_request.data = forward;
	error = uv_tcp_connect(&forward->connect_request, &forward->local, address, on_target_connected);
	if (error < 0) {
		char reason[160];

		snprintf(reason, sizeof(reason), "cannot connect to forward_target %s: %s",
			 forward->local_address, uv_strerror(error));
		forward_close(forward, true, reason);
	}
}

static void on_target_resolved(uv_getaddrinfo_t *request, int status, struct addrinfo *result)
{
	struct forward *forward = request->data;

	forward->resolving = false;
	if (forward->closing) {
		uv_freeaddrinfo(result);
		forward_free_if_done(forward);
		return;
	}
	if (status < 0) {
		char reason[192];

		snprintf(reason, sizeof(reason), "cannot resolve forward_target %s: %s",
			 forward->peer->config->forward_target.host, uv_strerror(status));
		forward_close(forward, true, reason);
		return;
	}
	connect_target(forward, result->ai_addr);
	uv_freeaddrinfo(result);
}

void forward_start_responder(struct peer *peer, struct channel *channel, uint64_t connection_id,
			     const char *address)
{
	const struct config_endpoint *target = &peer->config->forward_target;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct sockaddr_storage literal;
	struct forward *forward;
	char port[8];
	int error;

	/* The channel already counts against the peer; forward_new counts it again. */
	peer->connection_count--;
	forward = forward_new(peer, connection_id, false);
	if (forward == NULL) {
		log_event(LOG_ERROR, "connection_failed", "peer=%s conn=%llu error=\"out of memory\"",
			  peer->name, (unsigned long long)connection_id);
		channel->ops->close(channel, true, "out of memory");
		return;
	}
	forward->channel = channel;
	channel->events = &forward_events;
	channel->owner = forward;
	snprintf(forward->peer_address, sizeof(forward->peer_address), "%s", address);

	/* Leave the client's first bytes in the kernel until the target connection is up. */
	channel->ops->pause(channel);

	if (uv_ip4_addr(target->host, target->port, (struct sockaddr_in *)&literal) == 0 ||
	    uv_ip6_addr(target->host, target->port, (struct sockaddr_in6 *)&literal) == 0) {
		connect_target(forward, (const struct sockaddr *)&literal);
		return;
	}

	snprintf(forward->local_address, sizeof(forward->local_address), "%s:%u", target->host,
		 (unsigned)target->port);
	snprintf(port, sizeof(port), "%u", (unsigned)target->port);
	forward->resolve_request.data = forward;
	forward->resolving = true;
	error = uv_getaddrinfo(peer->daemon->loop, &forward->resolve_request, on_target_resolved,
			       target->host, port, &hints);
	if (error < 0) {
		forward->resolving = false;
		forward_close(forward, true, uv_strerror(error));
	}
}

const struct forward *forward_next(const struct forward *forward)
{
	return forward->next;
}

void forward_close_all(struct daemon *daemon, const char *reason)
{
	struct forward *forward = daemon->forwards;

	while (forward != NULL) {
		struct forward *next = forward->next;

		forward_close(forward, true, reason);
		forward = next;
	}
}

static const struct channel_events forward_events = {
	.opened = channel_opened,
	.data = channel_data,
	.fin = channel_fin,
	.drained = channel_drained,
	.closed = channel_closed,
};

void forward_peer_bytes(const struct peer *peer, uint64_t *sent, uint64_t *received)
{
	*sent = peer->closed_bytes_sent;
	*received = peer->closed_bytes_received;
	for (const struct forward *forward = peer->daemon->forwards; forward != NULL; forward = forward->next) {
		if (forward->peer != peer)
			continue;
		*sent += forward->bytes_to_channel;
		*received += forward->bytes_to_local;
	}
}
