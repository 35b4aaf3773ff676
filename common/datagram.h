/*
 * The UDP transport's datagrams. Every datagram starts with the same
 * four-byte header as a TCP handshake message: a type byte and three zero
 * bytes. Integers after it are little-endian.
 *
 *   initiation (1) = header || sender index (4) || IKpsk2 message 1 (108)
 *   response   (2) = header || sender index (4) || receiver index (4) || IKpsk2 message 2 (48)
 *   data       (4) = header || receiver index (4) || counter (8) || ciphertext
 *   ciphertext     = ChaCha20-Poly1305(session key, nonce = counter, ad = the 16 bytes before it, payload)
 *
 * The handshake uses the prologue "walguard/1 udp", so a TCP initiation
 * or response never completes a UDP handshake, nor the other way round.
 * An index names the sender's session so that the receiver finds its keys
 * without trying each. A data datagram with an empty payload is a
 * keepalive.
 *
 * Pure code: keys, randomness and time come in as arguments.
 */
#ifndef WALGUARD_DATAGRAM_H
#define WALGUARD_DATAGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "wire.h"

#define WIRE_PROLOGUE_UDP "walguard/1 udp"

#define DATAGRAM_TYPE_INITIATION 1
#define DATAGRAM_TYPE_RESPONSE 2
#define DATAGRAM_TYPE_DATA 4

#define DATAGRAM_HEADER_LEN WIRE_HANDSHAKE_HEADER_LEN
#define DATAGRAM_INDEX_LEN 4
#define DATAGRAM_COUNTER_LEN 8

#define DATAGRAM_INITIATION_LEN \
	(DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN + NOISE_IK_INITIATION_LEN(WIRE_TIMESTAMP_LEN))
#define DATAGRAM_RESPONSE_LEN (DATAGRAM_HEADER_LEN + 2 * DATAGRAM_INDEX_LEN + NOISE_IK_RESPONSE_LEN(0))

/* The bytes in front of a data datagram's ciphertext, all of them authenticated. */
#define DATAGRAM_DATA_HEADER_LEN (DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN + DATAGRAM_COUNTER_LEN)
#define DATAGRAM_DATA_OVERHEAD (DATAGRAM_DATA_HEADER_LEN + NOISE_TAG_LEN)

/*
 * The largest payload of a data datagram (an SCTP packet). With the
 * overhead, an IPv6 header (40) and a UDP header (8) it fits in an
 * Ethernet MTU of 1500 bytes.
 */
#define DATAGRAM_MAX_PAYLOAD_LEN 1380
#define DATAGRAM_MAX_DATA_LEN (DATAGRAM_DATA_OVERHEAD + DATAGRAM_MAX_PAYLOAD_LEN)
#define DATAGRAM_MAX_LEN DATAGRAM_MAX_DATA_LEN

/*
 * The first counter a session never uses. A sender stops before it and a
 * receiver rejects it and anything above, so a nonce never repeats and
 * never reaches 2^64 - 1, which Noise reserves.
 */
#define DATAGRAM_COUNTER_LIMIT NOISE_NONCE_MAX

enum datagram_result {
	DATAGRAM_OK = 0,
	DATAGRAM_ERR_SHORT,		/* shorter than its type requires */
	DATAGRAM_ERR_LONG,		/* longer than its type allows */
	DATAGRAM_ERR_TYPE,		/* unknown type byte */
	DATAGRAM_ERR_HEADER,		/* a reserved header byte is not zero */
	DATAGRAM_ERR_DECRYPT,		/* failed to authenticate */
	DATAGRAM_ERR_COUNTER,		/* counter at or above DATAGRAM_COUNTER_LIMIT */
	DATAGRAM_ERR_BUFFER,		/* the caller's payload does not fit */
};

/* A parsed datagram. Pointers point into the buffer given to datagram_parse(). */
struct datagram {
	uint8_t type;
	uint32_t sender_index;		/* initiation, response */
	uint32_t receiver_index;	/* response, data */
	uint64_t counter;		/* data */
	const uint8_t *message;		/* the Noise message (handshake) or the ciphertext (data) */
	size_t message_len;
	const uint8_t *raw;		/* the whole datagram */
	size_t raw_len;
};

/*
 * Check the framing of a received datagram: type, reserved bytes and
 * length, and the counter limit of a data datagram. No cryptography runs,
 * so this is the first thing done with bytes from anyone.
 */
enum datagram_result datagram_parse(struct datagram *out, const uint8_t *data, size_t len);

/* Start the initiator's side of a handshake and write the initiation. */
enum noise_result datagram_create_initiation(struct noise_handshake *hs,
					     const uint8_t static_priv[NOISE_KEY_LEN],
					     const uint8_t peer_public[NOISE_KEY_LEN], const uint8_t *psk,
					     const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					     const uint8_t timestamp[WIRE_TIMESTAMP_LEN], uint32_t sender_index,
					     uint8_t out[DATAGRAM_INITIATION_LEN]);

/*
 * Start the responder's side with a parsed initiation. On NOISE_OK,
 * hs->rs is the initiator's static public key (not yet checked against
 * any list) and timestamp is its TAI64N timestamp.
 */
enum noise_result datagram_consume_initiation(struct noise_handshake *hs,
					      const uint8_t static_priv[NOISE_KEY_LEN],
					      const struct datagram *initiation,
					      uint8_t timestamp[WIRE_TIMESTAMP_LEN]);

/* Write the response; psk is the initiator's pre-shared key or NULL. */
enum noise_result datagram_create_response(struct noise_handshake *hs, const uint8_t *psk,
					   const uint8_t ephemeral_priv[NOISE_KEY_LEN], uint32_t sender_index,
					   uint32_t receiver_index, uint8_t out[DATAGRAM_RESPONSE_LEN]);

/* Finish the initiator's side with a parsed response. */
enum noise_result datagram_consume_response(struct noise_handshake *hs, const struct datagram *response);

/*
 * Seal payload_len bytes into a data datagram at out, which needs room
 * for DATAGRAM_DATA_OVERHEAD + payload_len bytes. The caller picks the
 * counter and must never use one twice with the same key.
 */
enum datagram_result datagram_seal_data(const uint8_t key[NOISE_KEY_LEN], uint32_t receiver_index,
					uint64_t counter, const uint8_t *payload, size_t payload_len,
					uint8_t *out, size_t *out_len);

/*
 * Open a parsed data datagram into payload, which has room for
 * payload_capacity bytes. Replay checks are the caller's (see
 * replay_window.h), after this succeeds.
 */
enum datagram_result datagram_open_data(const uint8_t key[NOISE_KEY_LEN], const struct datagram *data,
					uint8_t *payload, size_t payload_capacity, size_t *payload_len);

const char *datagram_result_string(enum datagram_result result);

#endif
