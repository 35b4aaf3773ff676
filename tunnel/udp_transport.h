/*
 * The UDP transport: one UDP socket per daemon, one Noise IKpsk2 session
 * per peer over it, and one SCTP association (usrsctp, AF_CONN) per
 * forwarded connection inside the peer's session. usrsctp runs without
 * threads: its packets go through the session, and its timers run from a
 * libuv timer. docs/protocol.md describes the datagrams.
 */
#ifndef WALGUARD_UDP_TRANSPORT_H
#define WALGUARD_UDP_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "channel.h"
#include "daemon.h"

/*
 * Whether the config uses the UDP transport at all: listen_udp, or a
 * peer dialed with transport = udp.
 */
bool udp_transport_needed(const struct config *config);

/*
 * Start usrsctp, bind the UDP socket (listen_udp, or an ephemeral port),
 * and set up a session per peer. Returns -1 after logging why.
 */
int udp_transport_start(struct daemon *daemon);

/* Stop accepting new associations from peers (on stop). */
void udp_transport_stop_listening(struct daemon *daemon);

/* Close the socket and every handle, so that the loop can end. */
void udp_transport_close(struct daemon *daemon);

/* Free the sessions, wiping their keys, and shut usrsctp down (after the loop ended). */
void udp_transport_free(struct daemon *daemon);

/*
 * Open an SCTP association to the peer inside its UDP session, starting a
 * handshake if the session has no keys. events receive opened() once the
 * association is up and OPEN was sent, or closed() on failure. Returns
 * NULL when nothing could be started (the reason is logged).
 */
struct channel *udp_channel_dial(struct peer *peer, uint64_t connection_id,
				 const struct channel_events *events, void *owner);

#endif
