/*
 * The TCP transport: each forwarded connection gets its own TCP connection
 * between the daemons, with its own IKpsk2 handshake, so that a stalled
 * connection never holds up another one.
 */
#ifndef WALGUARD_TCP_CHANNEL_H
#define WALGUARD_TCP_CHANNEL_H

#include <stdint.h>
#include <uv.h>

#include "channel.h"
#include "daemon.h"

/*
 * Dial the peer's endpoint and run the handshake as initiator. events
 * receive opened() once records may flow, or closed() on failure. Returns
 * NULL when nothing could be started (the reason is logged).
 */
struct channel *tcp_channel_dial(struct peer *peer, uint64_t connection_id,
				 const struct channel_events *events, void *owner);

/* Accept a connection on the tunnel listener and run the handshake as responder. */
void tcp_channel_accept(struct daemon *daemon, uv_stream_t *listener);

/* Free the wiped key blocks kept for reuse (at exit). */
void tcp_channel_free_cache(void);

/* Close every channel whose handshake has not finished (on stop). */
void tcp_channel_close_pending(struct daemon *daemon);

#endif
