/*
 * Forwarded connections: a local TCP socket joined to a channel, with
 * backpressure in both directions and half-close carried across.
 */
#ifndef WALGUARD_FORWARD_H
#define WALGUARD_FORWARD_H

#include <stdint.h>
#include <uv.h>

#include "channel.h"
#include "daemon.h"

/* Initiator: accept a client on the peer's forward_listen socket and dial the peer. */
void forward_accept_local(struct peer *peer, uv_stream_t *listener);

/*
 * Responder: the peer proved its keys on a new channel. Connect to the
 * peer's forward_target and join the two.
 */
void forward_start_responder(struct peer *peer, struct channel *channel, uint64_t connection_id,
			     const char *address);

/* The next forwarded connection in the daemon's list. */
const struct forward *forward_next(const struct forward *forward);

/* Reset every forwarded connection (on stop). */
void forward_close_all(struct daemon *daemon, const char *reason);

/*
 * Total bytes forwarded for a peer since start, closed and open
 * connections alike: sent into the tunnel, and received from it.
 */
void forward_peer_bytes(const struct peer *peer, uint64_t *sent, uint64_t *received);

#endif
