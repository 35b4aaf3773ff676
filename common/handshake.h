/*
 * The two handshake messages as they travel on the wire: a four-byte
 * header (type, three zero bytes) in front of the Noise IKpsk2 message. The
 * initiation's payload is a TAI64N timestamp so that the responder can
 * reject a replayed initiation; the response's payload is empty.
 *
 * Pure code like noise.c: keys, randomness and time come in as arguments.
 */
#ifndef WALGUARD_HANDSHAKE_H
#define WALGUARD_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "wire.h"

/* Start the initiator's side and write the initiation message. */
enum noise_result handshake_create_initiation(struct noise_handshake *hs,
					      const uint8_t static_priv[NOISE_KEY_LEN],
					      const uint8_t peer_public[NOISE_KEY_LEN],
					      const uint8_t *psk,
					      const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					      const uint8_t timestamp[WIRE_TIMESTAMP_LEN],
					      uint8_t out[WIRE_INITIATION_LEN]);

/*
 * Start the responder's side and read an initiation of len bytes. On
 * NOISE_OK, hs->rs is the initiator's static public key (not yet checked
 * against any list) and timestamp is its TAI64N timestamp. A message with
 * the wrong length, type or header bytes fails with NOISE_ERR_LENGTH
 * before any cryptography runs.
 */
enum noise_result handshake_consume_initiation(struct noise_handshake *hs,
					       const uint8_t static_priv[NOISE_KEY_LEN],
					       const uint8_t *message, size_t len,
					       uint8_t timestamp[WIRE_TIMESTAMP_LEN]);

/* Write the response; psk is the initiator's pre-shared key or NULL. */
enum noise_result handshake_create_response(struct noise_handshake *hs, const uint8_t *psk,
					    const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					    uint8_t out[WIRE_RESPONSE_LEN]);

enum noise_result handshake_consume_response(struct noise_handshake *hs,
					     const uint8_t *message, size_t len);

/* Whether the first bytes received could start an initiation (type and zero bytes). */
bool handshake_initiation_prefix_valid(const uint8_t *message, size_t len);

#endif
