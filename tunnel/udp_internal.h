/*
 * Shared between udp_session.c (the socket, the Noise sessions and the
 * datagrams) and udp_channel.c (the SCTP associations that carry the
 * forwarded connections). Nothing else includes this header.
 */
#ifndef WALGUARD_UDP_INTERNAL_H
#define WALGUARD_UDP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "daemon.h"
#include "datagram.h"
#include "log.h"
#include "replay_window.h"

/* The SCTP port of the responder's listener inside each session. */
#define UDP_SCTP_PORT 5434

/*
 * The path MTU given to usrsctp. usrsctp 0.9.5.0 makes AF_CONN packets up
 * to 12 bytes longer than this (measured), so the margin keeps every
 * packet within DATAGRAM_MAX_PAYLOAD_LEN.
 */
#define UDP_SCTP_MTU (DATAGRAM_MAX_PAYLOAD_LEN - 64)

/* Packets kept while an initiator waits for its handshake; older ones are dropped first. */
#define UDP_QUEUE_MAX_PACKETS 256

/* Handshake retransmissions: about once a second, with up to a third more as jitter. */
#define UDP_HANDSHAKE_RETRY_MS 1000

/*
 * A key pair older than this many rekey intervals is not used any more,
 * in either direction, so that a session whose initiator stopped
 * rekeying cannot run on one key for ever.
 */
#define UDP_KEY_LIFETIME_REKEY_INTERVALS 3

struct udp_keypair {
	bool valid;
	bool confirmed;			/* a data datagram arrived with it (the initiator's are confirmed at once) */
	bool initiated_here;		/* this host sent the initiation that made it */
	uint32_t local_index;		/* what the peer puts in its datagrams to us */
	uint32_t remote_index;		/* what we put in ours */
	uint64_t created_ms;
	uint64_t send_counter;		/* the next counter to send */
	struct replay_window replay;
	uint8_t send_key[NOISE_KEY_LEN];
	uint8_t receive_key[NOISE_KEY_LEN];
};

/* Key material of one session, in sodium_malloc() memory. */
struct udp_session_secrets {
	struct udp_keypair current;	/* sends, and receives */
	struct udp_keypair previous;	/* receives datagrams still in flight after a rekey */
	struct udp_keypair next;	/* responder: made by the last handshake, not yet confirmed */
	struct noise_handshake handshake;	/* initiator: the handshake in flight */
	uint8_t ephemeral[NOISE_KEY_LEN];
};

/* An SCTP packet waiting for keys. */
struct udp_packet {
	struct udp_packet *next;
	size_t len;
	uint8_t data[];
};

struct udp_channel;
struct udp_transport;

/*
 * One peer's session. Its address is also the AF_CONN address that
 * usrsctp hands back with every packet the peer's associations send.
 */
struct udp_session {
	struct udp_transport *transport;
	struct peer *peer;
	struct udp_session_secrets *secrets;
	bool initiator;			/* this host dials the peer over UDP */

	/* Destination of datagrams: the resolved endpoint, then the source of the last authenticated datagram. */
	bool has_endpoint;
	struct sockaddr_storage endpoint;
	char address[64];

	bool handshaking;
	uint32_t handshake_index;
	uint64_t handshake_started_ms;
	uint32_t handshake_attempts;
	uv_timer_t retransmit_timer;
	bool resolving;
	uv_getaddrinfo_t resolve_request;

	struct udp_packet *queue_head;
	struct udp_packet *queue_tail;
	size_t queue_count;

	uint64_t last_sent_ms;
	uint64_t last_received_ms;
	uint64_t unanswered_since_ms;	/* the first send after the last authenticated receive, or 0 */
	uint64_t watched_since_ms;	/* when the first of the current channels appeared */

	struct socket *listener;	/* responder: accepts the peer's associations */
	bool accept_pending;
	struct udp_channel *channels;
	size_t channel_count;
};

struct udp_transport {
	struct daemon *daemon;
	uv_udp_t socket;
	bool socket_open;
	int family;			/* of the socket: AF_INET or AF_INET6 */
	uv_timer_t sctp_timer;
	uint64_t sctp_timer_last_ms;
	uv_timer_t tick_timer;
	uv_idle_t service_idle;
	bool handles_open;
	bool sctp_started;

	struct udp_session *sessions;
	size_t session_count;

	/* Channels and listeners that usrsctp reported events on, handled from the idle handle. */
	struct udp_channel *service_head;
	bool accept_pending;

	/* Lines that strangers can cause. */
	struct log_ratelimit datagram_log;

	uint8_t receive_buffer[2048];
	uint8_t payload_buffer[DATAGRAM_MAX_PAYLOAD_LEN];
	uint8_t send_buffer[DATAGRAM_MAX_LEN];
};

/* udp_session.c */
void udp_session_channel_added(struct udp_session *session);
void udp_session_channel_removed(struct udp_session *session);
void udp_transport_request_service(struct udp_transport *transport);

/* udp_channel.c */
void udp_channel_request_service(struct udp_channel *channel);
void udp_channels_service(struct udp_transport *transport);
void udp_channel_listener_upcall(struct socket *socket, void *arg, int flags);
/* Responder: open the SCTP listener of the peer's session. */
int udp_session_listen(struct udp_session *session);
void udp_session_accept(struct udp_session *session);
/* Fail every channel of the session with reason, for a dead path. */
void udp_session_fail_channels(struct udp_session *session, const char *reason);
/* Set the socket options every association uses. */
int udp_sctp_configure_socket(struct socket *socket, const struct config *config);

#endif
