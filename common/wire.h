/*
 * Wire formats, sizes and limits of the walguard protocol. docs/protocol.md
 * describes the same formats step by step.
 */
#ifndef WALGUARD_WIRE_H
#define WALGUARD_WIRE_H

#include "noise.h"

/* Bound into every handshake as the Noise prologue: a peer speaking another
 * protocol version or transport fails the handshake. */
#define WIRE_PROLOGUE_TCP "walguard/1 tcp"

/* Handshake messages start with a type byte and three zero bytes. */
#define WIRE_TYPE_INITIATION 1
#define WIRE_TYPE_RESPONSE 2
#define WIRE_HANDSHAKE_HEADER_LEN 4

/* TAI64N: 8 bytes of seconds (2^62 + Unix time) and 4 of nanoseconds, big-endian. */
#define WIRE_TIMESTAMP_LEN 12

/* The initiation's payload is the timestamp; the response's payload is empty. */
#define WIRE_INITIATION_LEN (WIRE_HANDSHAKE_HEADER_LEN + NOISE_IK_INITIATION_LEN(WIRE_TIMESTAMP_LEN))
#define WIRE_RESPONSE_LEN (WIRE_HANDSHAKE_HEADER_LEN + NOISE_IK_RESPONSE_LEN(0))

/*
 * Transport records on a stream (TCP), after the handshake:
 *
 *   record     = length (2 bytes, big-endian) || ciphertext (length bytes)
 *   ciphertext = ChaCha20-Poly1305(key, nonce = counter, ad = length bytes, plaintext)
 *   plaintext  = type (1 byte) || body
 *
 * The counter of each direction starts at 0 and grows by one per record.
 * It is never sent, so a dropped, repeated or reordered record fails to
 * decrypt.
 */
#define FRAME_HEADER_LEN 2
#define FRAME_TYPE_LEN 1
#define FRAME_OVERHEAD (FRAME_HEADER_LEN + FRAME_TYPE_LEN + NOISE_TAG_LEN)
#define FRAME_MAX_CIPHERTEXT_LEN NOISE_MAX_MESSAGE_LEN
#define FRAME_MIN_CIPHERTEXT_LEN (FRAME_TYPE_LEN + NOISE_TAG_LEN)
#define FRAME_MAX_BODY_LEN (FRAME_MAX_CIPHERTEXT_LEN - NOISE_TAG_LEN - FRAME_TYPE_LEN)
#define FRAME_MAX_RECORD_LEN (FRAME_HEADER_LEN + FRAME_MAX_CIPHERTEXT_LEN)

enum frame_type {
	FRAME_OPEN = 1,		/* initiator's first record: proves it holds the session keys */
	FRAME_DATA = 2,		/* body: bytes of the forwarded connection, at least one */
	FRAME_FIN = 3,		/* the sender will send no more data (half-close) */
	FRAME_RESET = 4,	/* the sender's side was reset: close at once */
	FRAME_KEEPALIVE = 5,	/* nothing; keeps middleboxes and timers alive */
	FRAME_REKEY = 6,	/* the sender's next record uses REKEY(k) of its current key */
};

#endif
