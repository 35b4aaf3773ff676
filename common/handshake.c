#include "handshake.h"

#include <string.h>

static const uint8_t prologue[] = WIRE_PROLOGUE_TCP;

static void write_header(uint8_t *out, uint8_t type)
{
	out[0] = type;
	out[1] = 0;
	out[2] = 0;
	out[3] = 0;
}

static bool header_valid(const uint8_t *message, size_t len, uint8_t type)
{
	static const uint8_t zero[WIRE_HANDSHAKE_HEADER_LEN - 1];
	size_t checked = len < WIRE_HANDSHAKE_HEADER_LEN ? len : WIRE_HANDSHAKE_HEADER_LEN;

	if (checked >= 1 && message[0] != type)
		return false;
	return checked <= 1 || memcmp(message + 1, zero, checked - 1) == 0;
}

bool handshake_initiation_prefix_valid(const uint8_t *message, size_t len)
{
	return header_valid(message, len, WIRE_TYPE_INITIATION);
}

enum noise_result handshake_create_initiation(struct noise_handshake *hs,
					      const uint8_t static_priv[NOISE_KEY_LEN],
					      const uint8_t peer_public[NOISE_KEY_LEN],
					      const uint8_t *psk,
					      const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					      const uint8_t timestamp[WIRE_TIMESTAMP_LEN],
					      uint8_t out[WIRE_INITIATION_LEN])
{
	enum noise_result result;

	/* The prologue is passed without its terminating NUL. */
	result = noise_ik_init(hs, NOISE_INITIATOR, true, prologue, sizeof(prologue) - 1,
			       static_priv, peer_public, psk);
	if (result != NOISE_OK)
		return result;

	write_header(out, WIRE_TYPE_INITIATION);
	return noise_ik_write_initiation(hs, ephemeral_priv, timestamp, WIRE_TIMESTAMP_LEN,
					 out + WIRE_HANDSHAKE_HEADER_LEN);
}

enum noise_result handshake_consume_initiation(struct noise_handshake *hs,
					       const uint8_t static_priv[NOISE_KEY_LEN],
					       const uint8_t *message, size_t len,
					       uint8_t timestamp[WIRE_TIMESTAMP_LEN])
{
	enum noise_result result;

	if (len != WIRE_INITIATION_LEN || !header_valid(message, len, WIRE_TYPE_INITIATION))
		return NOISE_ERR_LENGTH;

	result = noise_ik_init(hs, NOISE_RESPONDER, true, prologue, sizeof(prologue) - 1,
			       static_priv, NULL, NULL);
	if (result != NOISE_OK)
		return result;

	return noise_ik_read_initiation(hs, message + WIRE_HANDSHAKE_HEADER_LEN,
					len - WIRE_HANDSHAKE_HEADER_LEN, timestamp);
}

enum noise_result handshake_create_response(struct noise_handshake *hs, const uint8_t *psk,
					    const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					    uint8_t out[WIRE_RESPONSE_LEN])
{
	static const uint8_t zero_psk[NOISE_KEY_LEN];

	noise_handshake_set_psk(hs, psk != NULL ? psk : zero_psk);
	write_header(out, WIRE_TYPE_RESPONSE);
	return noise_ik_write_response(hs, ephemeral_priv, NULL, 0, out + WIRE_HANDSHAKE_HEADER_LEN);
}

enum noise_result handshake_consume_response(struct noise_handshake *hs,
					     const uint8_t *message, size_t len)
{
	if (len != WIRE_RESPONSE_LEN || !header_valid(message, len, WIRE_TYPE_RESPONSE))
		return NOISE_ERR_LENGTH;

	return noise_ik_read_response(hs, message + WIRE_HANDSHAKE_HEADER_LEN,
				      len - WIRE_HANDSHAKE_HEADER_LEN, NULL);
}
