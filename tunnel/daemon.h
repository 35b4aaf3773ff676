/*
 * The daemon's run-time state: the loaded config, one struct peer per
 * configured peer, and the listeners.
 */
#ifndef WALGUARD_DAEMON_H
#define WALGUARD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "ratelimit.h"
#include "replay.h"

/*
 * Unauthenticated tunnel connections (accepted, handshake not finished)
 * kept at once. A new connection over the limit evicts the oldest.
 */
#define DAEMON_MAX_PENDING_HANDSHAKES 1024

/*
 * Failed handshakes allowed per source address: a burst, then this many
 * per second. Handshakes that succeed cost nothing.
 */
#define DAEMON_FAILED_HANDSHAKE_BURST 20
#define DAEMON_FAILED_HANDSHAKES_PER_SECOND 5

/*
 * Backpressure: a socket stops being read while the other side has more
 * than this many bytes queued for writing, and resumes below the low mark.
 */
#define DAEMON_HIGH_WATER (256 * 1024)
#define DAEMON_LOW_WATER (64 * 1024)

/*
 * Descriptors kept free for what the daemon opens besides its sockets:
 * name lookups in libuv's thread pool, and the spare descriptor libuv
 * uses to shed connections when accept() fails. A connection that would
 * eat into them is rejected with a log line instead.
 */
#define DAEMON_DESCRIPTOR_RESERVE 16

struct daemon;

/* Totals since start, logged on SIGUSR1 and at stop. */
struct daemon_counters {
	uint64_t handshakes_completed;	/* as responder or initiator */
	uint64_t handshakes_rejected;	/* responder: every handshake_rejected event, evictions too */
	uint64_t handshakes_rate_limited; /* responder: refused before any DH work */
	uint64_t handshakes_evicted;	/* responder: pending ones closed to make room */
	uint64_t dials_failed;		/* initiator */
	uint64_t connections_opened;
	uint64_t connections_reset;	/* closed because of an error or reset */
	uint64_t connections_rejected;	/* accepted and closed at once: descriptor limit */
};

struct peer {
	struct daemon *daemon;
	const struct config_peer *config;
	const char *name;

	bool has_forward_listener;
	uv_tcp_t forward_listener;

	/* Responder: timestamps of the initiations accepted from this peer. */
	struct replay_timestamps initiations_seen;
	/* Initiator: timestamp of the last initiation sent to this peer. */
	uint8_t last_initiation_timestamp[WIRE_TIMESTAMP_LEN];

	uint32_t connection_count;

	/* The UDP transport's session with this peer, or NULL without the UDP transport. */
	struct udp_session *udp_session;

	/*
	 * Initiator: consecutive failed dials, and the earliest time of the
	 * next one. Shared by every client waiting for this peer, so that a
	 * dead peer is dialed at a slowing pace however many clients wait.
	 */
	uint32_t dial_failures;
	uint64_t dial_not_before_ms;
	struct log_ratelimit dial_log;

	/* For the metrics: bytes of connections already closed (see forward_peer_bytes()). */
	uint64_t closed_bytes_sent;
	uint64_t closed_bytes_received;
	int64_t last_handshake_time;	/* Unix seconds, 0 before the first */
};

/* Dial retries: 100 ms, doubling up to the peer's dial_backoff_max, with jitter. */
#define DAEMON_DIAL_BACKOFF_BASE_MS 100

struct daemon {
	uv_loop_t *loop;
	struct config *config;
	struct peer *peers;
	size_t peer_count;

	bool has_tunnel_listener;
	uv_tcp_t tunnel_listener;
	struct udp_transport *udp;	/* NULL unless the config uses the UDP transport */
	uv_signal_t sigterm;
	uv_signal_t sigint;
	uv_signal_t sigusr1;

	bool stopping;
	uv_timer_t grace_timer;
	uint32_t pending_handshakes;
	uint64_t next_connection_id;
	struct log_ratelimit rejected_log;
	struct log_ratelimit descriptor_log;
	struct ratelimit *failed_handshakes;
	struct daemon_counters counters;

	/*
	 * The descriptor budget: the soft limit, the descriptors open once
	 * the listeners were bound, and the sockets of live connections
	 * since then (counted by forward.c and tcp_channel.c).
	 */
	size_t descriptor_limit;
	size_t descriptors_at_start;
	size_t sockets;

	/* So that a stop can close them: forwarded connections, and tunnel
	 * connections whose handshake has not finished. */
	struct forward *forwards;
	struct tcp_channel *pending_channels;

	int64_t start_time;		/* Unix seconds */
	bool has_metrics_listener;
	uv_tcp_t metrics_listener;
	struct metrics_client *metrics_clients;
	uint32_t metrics_client_count;
	struct log_ratelimit metrics_log;
};

int daemon_run(struct config *config);

/*
 * Whether a new connection that needs NEEDED more sockets fits in the
 * descriptor budget. If not, it is rejected and logged.
 */
bool daemon_has_descriptors(const struct daemon *daemon, size_t needed);

/* Called by forward.c when a forwarded connection is freed. */
void daemon_forward_removed(struct daemon *daemon);

struct peer *daemon_find_peer_by_key(struct daemon *daemon, const uint8_t public_key[KEY_LEN]);

/*
 * Period of the liveness and rekey checks on open tunnels: a quarter of
 * the shortest of keepalive_interval, keepalive_timeout and
 * rekey_interval, kept between 50 ms and 5 s.
 */
uint64_t daemon_tick_period_ms(const struct config *config);

/* Milliseconds from the loop's clock, for rate limits. */
uint64_t daemon_now_ms(const struct daemon *daemon);

/* Format the peer address of a connected TCP handle. */
void daemon_format_peer_address(char *out, size_t out_size, const uv_tcp_t *handle);

#endif
