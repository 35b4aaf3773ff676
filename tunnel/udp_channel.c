/*
 * Forwarded connections over the UDP transport: each one is an SCTP
 * association (one-to-one style, non-blocking) inside its peer's session.
 * SCTP provides the ordered, reliable stream, the retransmissions and the
 * flow control. SCTP has no half-close of its own, so every SCTP message
 * starts with a one-byte record type:
 *
 *   OPEN (1)   the initiator's first message; only then does the responder connect to forward_target
 *   DATA (2)   bytes of the forwarded connection, at least one
 *   FIN (3)    the sender will send no more DATA
 *   RESET (4)  the sender's side failed: close at once (an SCTP ABORT follows)
 *
 * usrsctp reports events through upcalls from inside its own calls, so an
 * upcall only puts the channel on the transport's service list, and the
 * channel is handled from an idle handle afterwards.
 */
#include "udp_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usrsctp.h>

#include "forward.h"
#include "udp_internal.h"

/* Payload protocol identifier of walguard's SCTP messages ("WG", version 1). */
#define UDP_SCTP_PPID 0x57470001

/* Receive buffer: a record type and the largest body. */
#define RX_BUFFER_LEN (FRAME_TYPE_LEN + CHANNEL_MAX_BODY_LEN)

enum udp_channel_state {
	UDP_CHANNEL_CONNECTING,		/* initiator: association being set up */
	UDP_CHANNEL_AWAIT_OPEN,		/* responder: accepted, waiting for OPEN */
	UDP_CHANNEL_OPEN,
	UDP_CHANNEL_CLOSING,
};

/* A message that the association's send buffer could not take yet. */
struct udp_send {
	struct udp_send *next;
	uint8_t *owned;			/* the channel block it lies in, freed with it, or NULL */
	uint8_t *data;
	size_t len;
	uint8_t inline_data[];
};

struct udp_channel {
	struct channel base;
	struct udp_session *session;
	struct socket *socket;
	enum udp_channel_state state;
	uint64_t id;
	uv_timer_t timer;		/* handshake_timeout until open */

	bool counted;			/* responder: counted in peer->connection_count, not yet handed to a forward */
	bool paused;
	bool fin_sent;
	bool fin_received;

	/* The message being received, which SCTP may hand over in pieces. */
	bool in_message;
	uint8_t message_type;
	size_t message_body_len;
	uint8_t *rx;

	struct udp_send *send_head;
	struct udp_send *send_tail;
	size_t queued_bytes;

	struct udp_channel *prev;	/* in the session's list */
	struct udp_channel *next;
	struct udp_channel *service_next;
	bool service_queued;
};

static const struct channel_ops udp_channel_ops;

static struct udp_channel *from_base(struct channel *base)
{
	return (struct udp_channel *)base;
}

static struct daemon *daemon_of(const struct udp_channel *channel)
{
	return channel->session->transport->daemon;
}

/* The service list. */

void udp_channel_request_service(struct udp_channel *channel)
{
	struct udp_transport *transport = channel->session->transport;

	if (channel->service_queued || channel->state == UDP_CHANNEL_CLOSING)
		return;
	channel->service_queued = true;
	channel->service_next = transport->service_head;
	transport->service_head = channel;
	udp_transport_request_service(transport);
}

static void service_remove(struct udp_channel *channel)
{
	struct udp_channel **link = &channel->session->transport->service_head;

	if (!channel->service_queued)
		return;
	while (*link != NULL && *link != channel)
		link = &(*link)->service_next;
	if (*link == channel)
		*link = channel->service_next;
	channel->service_queued = false;
}

static void on_upcall(struct socket *socket, void *arg, int flags)
{
	udp_channel_request_service(arg);
}

void udp_channel_listener_upcall(struct socket *socket, void *arg, int flags)
{
	struct udp_session *session = arg;

	session->accept_pending = true;
	session->transport->accept_pending = true;
	udp_transport_request_service(session->transport);
}

/* Set-up and teardown. */

int udp_sctp_configure_socket(struct socket *socket, const struct config *config)
{
	struct sctp_paddrparams path;
	struct sctp_initmsg init;
	int on = 1;

	if (usrsctp_set_non_blocking(socket, 1) != 0)
		return -1;
	/* Records go out at once; the forward already sends whole reads. */
	if (usrsctp_setsockopt(socket, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on)) != 0)
		return -1;
	memset(&path, 0, sizeof(path));
	path.spp_assoc_id = SCTP_FUTURE_ASSOC;
	path.spp_pathmtu = UDP_SCTP_MTU;
	path.spp_hbinterval = config->keepalive_interval_ms;
	path.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_ENABLE;
	if (usrsctp_setsockopt(socket, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &path, sizeof(path)) != 0)
		return -1;
	memset(&init, 0, sizeof(init));
	init.sinit_num_ostreams = 1;
	init.sinit_max_instreams = 1;
	return usrsctp_setsockopt(socket, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof(init));
}

static struct udp_channel *channel_new(struct udp_session *session, struct socket *socket, uint64_t id)
{
	struct udp_channel *channel = calloc(1, sizeof(*channel));

	if (channel == NULL)
		return NULL;
	channel->rx = malloc(RX_BUFFER_LEN);
	if (channel->rx == NULL) {
		free(channel);
		return NULL;
	}
	channel->base.ops = &udp_channel_ops;
	channel->session = session;
	channel->socket = socket;
	channel->id = id;
	uv_timer_init(session->transport->daemon->loop, &channel->timer);
	channel->timer.data = channel;

	channel->next = session->channels;
	if (session->channels != NULL)
		session->channels->prev = channel;
	session->channels = channel;
	udp_session_channel_added(session);
	usrsctp_set_upcall(socket, on_upcall, channel);
	return channel;
}

static void on_timer_closed(uv_handle_t *handle)
{
	struct udp_channel *channel = handle->data;

	free(channel->rx);
	free(channel);
}

static void send_queue_free(struct udp_channel *channel)
{
	while (channel->send_head != NULL) {
		struct udp_send *send = channel->send_head;

		channel->send_head = send->next;
		free(send->owned);
		free(send);
	}
	channel->send_tail = NULL;
	channel->queued_bytes = 0;
}

/*
 * Close the association (abortively unless graceful) and free the channel
 * once its timer has closed. No event follows.
 */
static void channel_teardown(struct udp_channel *channel, bool graceful)
{
	struct udp_session *session = channel->session;

	if (channel->state == UDP_CHANNEL_CLOSING)
		return;
	channel->state = UDP_CHANNEL_CLOSING;
	service_remove(channel);
	if (channel->counted) {
		session->peer->connection_count--;
		channel->counted = false;
	}
	usrsctp_set_upcall(channel->socket, NULL, NULL);
	if (!graceful) {
		struct linger linger = { .l_onoff = 1, .l_linger = 0 };

		usrsctp_setsockopt(channel->socket, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
	}
	/* A graceful close sends what the association still holds, then SCTP's SHUTDOWN. */
	usrsctp_close(channel->socket);
	channel->socket = NULL;
	send_queue_free(channel);

	if (channel->prev != NULL)
		channel->prev->next = channel->next;
	else
		session->channels = channel->next;
	if (channel->next != NULL)
		channel->next->prev = channel->prev;
	udp_session_channel_removed(session);
	uv_close((uv_handle_t *)&channel->timer, on_timer_closed);
}

static void log_closed(const struct udp_channel *channel, const char *reason)
{
	if (channel->state != UDP_CHANNEL_OPEN)
		return;
	log_event(LOG_DEBUG, "tunnel_closed", "peer=%s addr=%s conn=%llu transport=udp reason=\"%s\"",
		  channel->session->peer->name, channel->session->address, (unsigned long long)channel->id, reason);
}

/* Close because of an error or the end of the stream, and tell the owner. */
static void channel_fail(struct udp_channel *channel, bool clean, const char *reason)
{
	const struct channel_events *events = channel->base.events;
	void *owner = channel->base.owner;

	if (channel->state == UDP_CHANNEL_CLOSING)
		return;
	log_closed(channel, reason);
	channel_teardown(channel, clean);
	if (events != NULL)
		events->closed(owner, clean, reason);
}

/* An initiator's association failed before it opened; the forward decides whether to dial again. */
static void dial_fail(struct udp_channel *channel, const char *reason)
{
	struct peer *peer = channel->session->peer;
	uint64_t suppressed;

	daemon_of(channel)->counters.dials_failed++;
	if (log_ratelimit_allow(&peer->dial_log, daemon_now_ms(daemon_of(channel)), &suppressed))
		log_event(LOG_WARN, "handshake_failed", "peer=%s addr=%s conn=%llu transport=udp suppressed=%llu error=\"%s\"",
			  peer->name, channel->session->address, (unsigned long long)channel->id,
			  (unsigned long long)suppressed, reason);
	channel_fail(channel, false, reason);
}

/* A responder association that never became a forwarded connection. The peer is authenticated, so this is a warning about it. */
static void channel_reject(struct udp_channel *channel, const char *reason)
{
	struct daemon *daemon = daemon_of(channel);
	uint64_t suppressed;

	if (log_ratelimit_allow(&daemon->rejected_log, daemon_now_ms(daemon), &suppressed))
		log_event(LOG_WARN, "connection_rejected", "peer=%s addr=%s conn=%llu transport=udp suppressed=%llu error=\"%s\"",
			  channel->session->peer->name, channel->session->address, (unsigned long long)channel->id,
			  (unsigned long long)suppressed, reason);
	channel_teardown(channel, false);
}

void udp_session_fail_channels(struct udp_session *session, const char *reason)
{
	size_t count = session->channel_count;
	struct udp_channel **channels;
	size_t i = 0;

	if (count == 0)
		return;
	/*
	 * A copy of the list, because a forward may dial again from its
	 * closed() event and add a channel. Torn-down channels are freed only
	 * after their timer closes, so every pointer stays valid here.
	 */
	channels = malloc(count * sizeof(*channels));
	if (channels == NULL) {
		while (session->channels != NULL)
			channel_teardown(session->channels, false);
		return;
	}
	for (struct udp_channel *channel = session->channels; channel != NULL && i < count; channel = channel->next)
		channels[i++] = channel;
	count = i;
	for (i = 0; i < count; i++) {
		struct udp_channel *channel = channels[i];

		if (channel->state == UDP_CHANNEL_CLOSING)
			continue;
		if (channel->base.events == NULL)
			channel_teardown(channel, false);
		else if (channel->state == UDP_CHANNEL_CONNECTING)
			dial_fail(channel, reason);
		else
			channel_fail(channel, false, reason);
	}
	free(channels);
}

/* Sending. */

/* Hand one message to SCTP. Returns 1 when it took it, 0 when its buffer is full, -1 on error. */
static int sctp_send(struct udp_channel *channel, const uint8_t *data, size_t len)
{
	struct sctp_sndinfo info;
	ssize_t sent;
	char reason[128];

	memset(&info, 0, sizeof(info));
	info.snd_ppid = htonl(UDP_SCTP_PPID);
	sent = usrsctp_sendv(channel->socket, data, len, NULL, 0, &info, sizeof(info), SCTP_SENDV_SNDINFO, 0);
	if (sent == (ssize_t)len)
		return 1;
	if (sent < 0 && (errno == EWOULDBLOCK || errno == EAGAIN))
		return 0;
	if (sent >= 0)
		snprintf(reason, sizeof(reason), "SCTP took %zd of %zu bytes of a message", sent, len);
	else
		snprintf(reason, sizeof(reason), "SCTP send failed: %s", strerror(errno));
	channel_fail(channel, false, reason);
	return -1;
}

static void queue_append(struct udp_channel *channel, struct udp_send *send)
{
	send->next = NULL;
	if (channel->send_tail != NULL)
		channel->send_tail->next = send;
	else
		channel->send_head = send;
	channel->send_tail = send;
	channel->queued_bytes += send->len;
}

/*
 * Send a message, or queue it behind earlier ones. With block, the queue
 * takes the block and sets *block_taken; without, the bytes are copied.
 */
static int channel_send_message(struct udp_channel *channel, uint8_t *data, size_t len, uint8_t *block,
				bool *block_taken)
{
	struct udp_send *send;
	int result;

	if (block_taken != NULL)
		*block_taken = false;
	if (channel->send_head == NULL) {
		result = sctp_send(channel, data, len);
		if (result != 0)
			return result > 0 ? 0 : -1;
	}
	send = malloc(sizeof(*send) + (block != NULL ? 0 : len));
	if (send == NULL) {
		channel_fail(channel, false, "out of memory");
		return -1;
	}
	if (block != NULL) {
		send->owned = block;
		send->data = data;
		*block_taken = true;
	} else {
		send->owned = NULL;
		memcpy(send->inline_data, data, len);
		send->data = send->inline_data;
	}
	send->len = len;
	queue_append(channel, send);
	return 0;
}

static int channel_send_control(struct udp_channel *channel, enum frame_type type)
{
	uint8_t message = (uint8_t)type;

	return channel_send_message(channel, &message, 1, NULL, NULL);
}

static void channel_finish_if_done(struct udp_channel *channel)
{
	if (channel->state == UDP_CHANNEL_OPEN && channel->fin_sent && channel->fin_received &&
	    channel->send_head == NULL)
		channel_fail(channel, true, "closed by both sides");
}

/* Move queued messages into SCTP's send buffer as room appears. */
static void flush_queue(struct udp_channel *channel)
{
	bool had_queue = channel->send_head != NULL;

	while (channel->send_head != NULL) {
		struct udp_send *send = channel->send_head;
		int result = sctp_send(channel, send->data, send->len);

		if (result < 0)
			return;
		if (result == 0)
			break;
		channel->send_head = send->next;
		if (channel->send_head == NULL)
			channel->send_tail = NULL;
		channel->queued_bytes -= send->len;
		free(send->owned);
		free(send);
	}
	if (had_queue && channel->state == UDP_CHANNEL_OPEN && channel->queued_bytes <= DAEMON_LOW_WATER &&
	    channel->base.events != NULL) {
		channel->base.events->drained(channel->base.owner);
		if (channel->state != UDP_CHANNEL_OPEN)
			return;
	}
	channel_finish_if_done(channel);
}

/* Receiving. */

static void channel_open_responder(struct udp_channel *channel)
{
	struct udp_session *session = channel->session;

	uv_timer_stop(&channel->timer);
	channel->state = UDP_CHANNEL_OPEN;
	log_event(LOG_DEBUG, "association_open", "peer=%s addr=%s conn=%llu transport=udp role=responder",
		  session->peer->name, session->address, (unsigned long long)channel->id);
	/* From here the forward owns the channel and the connection count. */
	channel->counted = false;
	forward_start_responder(session->peer, &channel->base, channel->id, session->address);
}

/* Act on a piece of a message: the whole of it, or the next part when SCTP delivers it in parts. */
static void handle_piece(struct udp_channel *channel, const uint8_t *data, size_t len, bool end_of_message)
{
	const struct channel_events *events = channel->base.events;
	const uint8_t *body = data;
	size_t body_len = len;

	if (!channel->in_message) {
		if (len == 0) {
			channel_fail(channel, false, "protocol error: empty SCTP message");
			return;
		}
		channel->in_message = true;
		channel->message_type = data[0];
		channel->message_body_len = 0;
		body = data + 1;
		body_len = len - 1;
	}
	channel->message_body_len += body_len;
	if (end_of_message)
		channel->in_message = false;

	if (channel->state == UDP_CHANNEL_AWAIT_OPEN) {
		if (channel->message_type != FRAME_OPEN || channel->message_body_len != 0 || !end_of_message) {
			channel_reject(channel, "first message is not OPEN");
			return;
		}
		channel_open_responder(channel);
		return;
	}

	switch (channel->message_type) {
	case FRAME_DATA:
		if (channel->fin_received) {
			channel_fail(channel, false, "protocol error: data after FIN");
			return;
		}
		if (end_of_message && channel->message_body_len == 0) {
			channel_fail(channel, false, "protocol error: DATA without bytes");
			return;
		}
		if (body_len > 0)
			events->data(channel->base.owner, body, body_len);
		return;
	case FRAME_FIN:
		if (channel->message_body_len != 0 || !end_of_message || channel->fin_received) {
			channel_fail(channel, false, "protocol error: invalid FIN");
			return;
		}
		channel->fin_received = true;
		events->fin(channel->base.owner);
		channel_finish_if_done(channel);
		return;
	case FRAME_RESET:
		channel_fail(channel, false, "connection reset by the other side (its log says why)");
		return;
	default:
		channel_fail(channel, false, "protocol error: unknown record type");
		return;
	}
}

static void read_messages(struct udp_channel *channel)
{
	while (channel->state == UDP_CHANNEL_AWAIT_OPEN || (channel->state == UDP_CHANNEL_OPEN && !channel->paused)) {
		struct sctp_rcvinfo info;
		socklen_t info_len = sizeof(info);
		unsigned int info_type = 0;
		int flags = 0;
		ssize_t received;
		char reason[128];

		received = usrsctp_recvv(channel->socket, channel->rx, RX_BUFFER_LEN, NULL, NULL, &info, &info_len,
					 &info_type, &flags);
		if (received < 0) {
			if (errno == EWOULDBLOCK || errno == EAGAIN)
				return;
			snprintf(reason, sizeof(reason), "SCTP association failed: %s",
				 errno == ECONNRESET ? "aborted by the other side" : strerror(errno));
			if (channel->state == UDP_CHANNEL_AWAIT_OPEN)
				channel_reject(channel, reason);
			else
				channel_fail(channel, false, reason);
			return;
		}
		if (received == 0) {
			/* A graceful SHUTDOWN: clean only after the other side's FIN. */
			if (channel->state == UDP_CHANNEL_AWAIT_OPEN)
				channel_reject(channel, "association closed before OPEN");
			else if (!channel->fin_received)
				channel_fail(channel, false, "association closed without FIN");
			else
				channel_fail(channel, channel->fin_sent && channel->send_head == NULL,
					     channel->fin_sent ? "closed by both sides" : "association closed before our FIN");
			return;
		}
		if (flags & MSG_NOTIFICATION)
			continue;
		handle_piece(channel, channel->rx, (size_t)received, (flags & MSG_EOR) != 0);
	}
}

static void channel_connected(struct udp_channel *channel)
{
	uv_timer_stop(&channel->timer);
	channel->state = UDP_CHANNEL_OPEN;
	log_event(LOG_DEBUG, "association_open", "peer=%s addr=%s conn=%llu transport=udp role=initiator",
		  channel->session->peer->name, channel->session->address, (unsigned long long)channel->id);
	if (channel_send_control(channel, FRAME_OPEN) != 0)
		return;
	channel->base.events->opened(channel->base.owner);
}

static void channel_service(struct udp_channel *channel)
{
	int events = usrsctp_get_events(channel->socket);

	if (channel->state == UDP_CHANNEL_CONNECTING) {
		if (events & SCTP_EVENT_ERROR) {
			dial_fail(channel, "SCTP association failed: the peer aborted it (is its listen_udp set, and may this host connect there?)");
			return;
		}
		if (!(events & SCTP_EVENT_WRITE))
			return;
		channel_connected(channel);
		if (channel->state != UDP_CHANNEL_OPEN)
			return;
	}
	if (channel->send_head != NULL && (events & SCTP_EVENT_WRITE)) {
		flush_queue(channel);
		if (channel->state == UDP_CHANNEL_CLOSING)
			return;
	}
	/* Our FIN may have been the last step, after the other side's. */
	channel_finish_if_done(channel);
	if (channel->state == UDP_CHANNEL_CLOSING)
		return;
	read_messages(channel);
}

void udp_channels_service(struct udp_transport *transport)
{
	for (size_t i = 0; transport->accept_pending && i < transport->session_count; i++) {
		struct udp_session *session = &transport->sessions[i];

		if (session->accept_pending) {
			session->accept_pending = false;
			udp_session_accept(session);
		}
	}
	transport->accept_pending = false;

	while (transport->service_head != NULL) {
		struct udp_channel *channel = transport->service_head;

		transport->service_head = channel->service_next;
		channel->service_queued = false;
		channel_service(channel);
	}
}

/* Timeouts before the channel opens. */

static void on_open_timeout(uv_timer_t *timer)
{
	struct udp_channel *channel = timer->data;
	char reason[96];

	snprintf(reason, sizeof(reason), "no SCTP association within %u ms",
		 (unsigned)daemon_of(channel)->config->handshake_timeout_ms);
	if (channel->state == UDP_CHANNEL_CONNECTING)
		dial_fail(channel, reason);
	else if (channel->state == UDP_CHANNEL_AWAIT_OPEN)
		channel_reject(channel, "no OPEN within handshake_timeout");
}

/* The responder's listener. */

int udp_session_listen(struct udp_session *session)
{
	const struct config *config = session->transport->daemon->config;
	struct sockaddr_conn address;
	struct socket *listener;

	listener = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
	if (listener == NULL)
		return -1;
	memset(&address, 0, sizeof(address));
	address.sconn_family = AF_CONN;
	address.sconn_port = htons(UDP_SCTP_PORT);
	address.sconn_addr = session;
	if (udp_sctp_configure_socket(listener, config) != 0 ||
	    usrsctp_bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 ||
	    usrsctp_listen(listener, 128) != 0) {
		usrsctp_close(listener);
		return -1;
	}
	usrsctp_set_upcall(listener, udp_channel_listener_upcall, session);
	session->listener = listener;
	return 0;
}

void udp_session_accept(struct udp_session *session)
{
	struct daemon *daemon = session->transport->daemon;
	struct peer *peer = session->peer;

	while (session->listener != NULL) {
		struct socket *socket = usrsctp_accept(session->listener, NULL, NULL);
		struct udp_channel *channel;
		struct linger linger = { .l_onoff = 1, .l_linger = 0 };
		uint64_t suppressed;

		if (socket == NULL)
			return;
		if (daemon->stopping || peer->connection_count >= daemon->config->max_connections_per_peer ||
		    usrsctp_set_non_blocking(socket, 1) != 0) {
			if (log_ratelimit_allow(&daemon->rejected_log, daemon_now_ms(daemon), &suppressed))
				log_event(LOG_WARN, "connection_rejected",
					  "peer=%s addr=%s transport=udp suppressed=%llu error=\"%s\"", peer->name,
					  session->address, (unsigned long long)suppressed,
					  daemon->stopping ? "daemon stopping"
							   : "too many connections from this peer (max_connections_per_peer)");
			usrsctp_setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
			usrsctp_close(socket);
			continue;
		}
		channel = channel_new(session, socket, ++daemon->next_connection_id);
		if (channel == NULL) {
			log_event(LOG_ERROR, "accept_failed", "peer=%s transport=udp error=\"out of memory\"", peer->name);
			usrsctp_setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
			usrsctp_close(socket);
			continue;
		}
		channel->state = UDP_CHANNEL_AWAIT_OPEN;
		peer->connection_count++;
		channel->counted = true;
		uv_timer_start(&channel->timer, on_open_timeout, daemon->config->handshake_timeout_ms, 0);
		/* OPEN may have arrived before the upcall was set. */
		udp_channel_request_service(channel);
	}
}

/* The initiator's dial. */

struct channel *udp_channel_dial(struct peer *peer, uint64_t connection_id,
				 const struct channel_events *events, void *owner)
{
	struct udp_session *session = peer->udp_session;
	struct daemon *daemon = peer->daemon;
	struct sockaddr_conn address;
	struct udp_channel *channel;
	struct socket *socket;

	if (session == NULL) {
		log_event(LOG_ERROR, "handshake_failed", "peer=%s conn=%llu transport=udp error=\"no UDP transport\"",
			  peer->name, (unsigned long long)connection_id);
		return NULL;
	}
	socket = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
	if (socket == NULL || udp_sctp_configure_socket(socket, daemon->config) != 0) {
		log_event(LOG_ERROR, "handshake_failed", "peer=%s conn=%llu transport=udp error=\"cannot create an SCTP socket: %s\"",
			  peer->name, (unsigned long long)connection_id, strerror(errno));
		if (socket != NULL)
			usrsctp_close(socket);
		return NULL;
	}
	memset(&address, 0, sizeof(address));
	address.sconn_family = AF_CONN;
	address.sconn_addr = session;
	if (usrsctp_bind(socket, (struct sockaddr *)&address, sizeof(address)) != 0) {
		log_event(LOG_ERROR, "handshake_failed", "peer=%s conn=%llu transport=udp error=\"SCTP bind failed: %s\"",
			  peer->name, (unsigned long long)connection_id, strerror(errno));
		usrsctp_close(socket);
		return NULL;
	}
	channel = channel_new(session, socket, connection_id);
	if (channel == NULL) {
		log_event(LOG_ERROR, "handshake_failed", "peer=%s conn=%llu transport=udp error=\"out of memory\"",
			  peer->name, (unsigned long long)connection_id);
		usrsctp_close(socket);
		return NULL;
	}
	channel->state = UDP_CHANNEL_CONNECTING;
	channel->base.events = events;
	channel->base.owner = owner;
	uv_timer_start(&channel->timer, on_open_timeout, daemon->config->handshake_timeout_ms, 0);

	address.sconn_port = htons(UDP_SCTP_PORT);
	/* The INIT goes out through the session, which starts a handshake if it has no keys. */
	if (usrsctp_connect(socket, (struct sockaddr *)&address, sizeof(address)) != 0 && errno != EINPROGRESS) {
		log_event(LOG_WARN, "handshake_failed", "peer=%s conn=%llu transport=udp error=\"SCTP connect failed: %s\"",
			  peer->name, (unsigned long long)connection_id, strerror(errno));
		channel->base.events = NULL;
		channel_teardown(channel, false);
		return NULL;
	}
	udp_transport_request_service(session->transport);
	return &channel->base;
}

/* The channel_ops used by forward.c. */

static int udp_send_data(struct channel *base, uint8_t *block, size_t len, bool *block_taken)
{
	struct udp_channel *channel = from_base(base);
	uint8_t *message = block + CHANNEL_HEADROOM - FRAME_TYPE_LEN;

	*block_taken = false;
	if (channel->state != UDP_CHANNEL_OPEN || channel->fin_sent)
		return -1;
	/* The type byte goes into the block's headroom, so the body is not copied. */
	message[0] = FRAME_DATA;
	if (channel_send_message(channel, message, FRAME_TYPE_LEN + len, block, block_taken) != 0)
		return -1;
	return channel->state == UDP_CHANNEL_OPEN ? 0 : -1;
}

static int udp_send_fin(struct channel *base)
{
	struct udp_channel *channel = from_base(base);

	if (channel->state != UDP_CHANNEL_OPEN || channel->fin_sent)
		return -1;
	channel->fin_sent = true;
	if (channel_send_control(channel, FRAME_FIN) != 0)
		return -1;
	/* Deferred: the forward expects no closed() event from inside this call. */
	udp_channel_request_service(channel);
	return 0;
}

static void udp_pause(struct channel *base)
{
	from_base(base)->paused = true;
}

static void udp_resume(struct channel *base)
{
	struct udp_channel *channel = from_base(base);

	if (channel->state != UDP_CHANNEL_OPEN || !channel->paused)
		return;
	channel->paused = false;
	udp_channel_request_service(channel);
}

static size_t udp_queued(const struct channel *base)
{
	return ((const struct udp_channel *)base)->queued_bytes;
}

static void udp_close(struct channel *base, bool reset, const char *reason)
{
	struct udp_channel *channel = from_base(base);

	if (channel->state == UDP_CHANNEL_CLOSING)
		return;
	/* Best effort: behind a full queue the RESET is dropped, and the other side learns of the reset from the ABORT alone. */
	if (reset && channel->state == UDP_CHANNEL_OPEN && channel->send_head == NULL) {
		uint8_t message = FRAME_RESET;

		usrsctp_sendv(channel->socket, &message, 1, NULL, 0, NULL, 0, SCTP_SENDV_NOINFO, 0);
	}
	log_closed(channel, reason);
	channel->base.events = NULL;
	channel_teardown(channel, !reset);
}

static const struct channel_ops udp_channel_ops = {
	.send_data = udp_send_data,
	.send_fin = udp_send_fin,
	.pause = udp_pause,
	.resume = udp_resume,
	.queued = udp_queued,
	.close = udp_close,
};
