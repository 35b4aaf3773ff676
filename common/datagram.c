#include "datagram.h"

#include <sodium.h>
#include <string.h>

static const uint8_t prologue[] = WIRE_PROLOGUE_UDP;

static void put_u32(uint8_t *out, uint32_t value)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(value >> (8 * i));
}

static void put_u64(uint8_t *out, uint64_t value)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t get_u32(const uint8_t *in)
{
	uint32_t value = 0;

	for (int i = 3; i >= 0; i--)
		value = value << 8 | in[i];
	return value;
}

static uint64_t get_u64(const uint8_t *in)
{
	uint64_t value = 0;

	for (int i = 7; i >= 0; i--)
		value = value << 8 | in[i];
	return value;
}

static void write_header(uint8_t *out, uint8_t type)
{
	out[0] = type;
	out[1] = 0;
	out[2] = 0;
	out[3] = 0;
}

/* The nonce of a counter, as Noise's ChaChaPoly builds it: 4 zero bytes and the counter, little-endian. */
static void counter_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t counter)
{
	memset(nonce, 0, 4);
	put_u64(nonce + 4, counter);
}

enum datagram_result datagram_parse(struct datagram *out, const uint8_t *data, size_t len)
{
	memset(out, 0, sizeof(*out));
	if (len < DATAGRAM_HEADER_LEN)
		return DATAGRAM_ERR_SHORT;
	if (data[1] != 0 || data[2] != 0 || data[3] != 0)
		return DATAGRAM_ERR_HEADER;
	out->type = data[0];
	out->raw = data;
	out->raw_len = len;

	switch (data[0]) {
	case DATAGRAM_TYPE_INITIATION:
		if (len < DATAGRAM_INITIATION_LEN)
			return DATAGRAM_ERR_SHORT;
		if (len > DATAGRAM_INITIATION_LEN)
			return DATAGRAM_ERR_LONG;
		out->sender_index = get_u32(data + DATAGRAM_HEADER_LEN);
		out->message = data + DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN;
		out->message_len = len - DATAGRAM_HEADER_LEN - DATAGRAM_INDEX_LEN;
		return DATAGRAM_OK;
	case DATAGRAM_TYPE_RESPONSE:
		if (len < DATAGRAM_RESPONSE_LEN)
			return DATAGRAM_ERR_SHORT;
		if (len > DATAGRAM_RESPONSE_LEN)
			return DATAGRAM_ERR_LONG;
		out->sender_index = get_u32(data + DATAGRAM_HEADER_LEN);
		out->receiver_index = get_u32(data + DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN);
		out->message = data + DATAGRAM_HEADER_LEN + 2 * DATAGRAM_INDEX_LEN;
		out->message_len = len - DATAGRAM_HEADER_LEN - 2 * DATAGRAM_INDEX_LEN;
		return DATAGRAM_OK;
	case DATAGRAM_TYPE_DATA:
		if (len < DATAGRAM_DATA_OVERHEAD)
			return DATAGRAM_ERR_SHORT;
		if (len > DATAGRAM_MAX_DATA_LEN)
			return DATAGRAM_ERR_LONG;
		out->receiver_index = get_u32(data + DATAGRAM_HEADER_LEN);
		out->counter = get_u64(data + DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN);
		if (out->counter >= DATAGRAM_COUNTER_LIMIT)
			return DATAGRAM_ERR_COUNTER;
		out->message = data + DATAGRAM_DATA_HEADER_LEN;
		out->message_len = len - DATAGRAM_DATA_HEADER_LEN;
		return DATAGRAM_OK;
	default:
		return DATAGRAM_ERR_TYPE;
	}
}

enum noise_result datagram_create_initiation(struct noise_handshake *hs,
					     const uint8_t static_priv[NOISE_KEY_LEN],
					     const uint8_t peer_public[NOISE_KEY_LEN], const uint8_t *psk,
					     const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					     const uint8_t timestamp[WIRE_TIMESTAMP_LEN], uint32_t sender_index,
					     uint8_t out[DATAGRAM_INITIATION_LEN])
{
	enum noise_result result;

	/* The prologue is passed without its terminating NUL. */
	result = noise_ik_init(hs, NOISE_INITIATOR, true, prologue, sizeof(prologue) - 1, static_priv,
			       peer_public, psk);
	if (result != NOISE_OK)
		return result;
	write_header(out, DATAGRAM_TYPE_INITIATION);
	put_u32(out + DATAGRAM_HEADER_LEN, sender_index);
	return noise_ik_write_initiation(hs, ephemeral_priv, timestamp, WIRE_TIMESTAMP_LEN,
					 out + DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN);
}

enum noise_result datagram_consume_initiation(struct noise_handshake *hs,
					      const uint8_t static_priv[NOISE_KEY_LEN],
					      const struct datagram *initiation,
					      uint8_t timestamp[WIRE_TIMESTAMP_LEN])
{
	enum noise_result result;

	if (initiation->type != DATAGRAM_TYPE_INITIATION ||
	    initiation->message_len != NOISE_IK_INITIATION_LEN(WIRE_TIMESTAMP_LEN))
		return NOISE_ERR_LENGTH;
	result = noise_ik_init(hs, NOISE_RESPONDER, true, prologue, sizeof(prologue) - 1, static_priv, NULL,
			       NULL);
	if (result != NOISE_OK)
		return result;
	return noise_ik_read_initiation(hs, initiation->message, initiation->message_len, timestamp);
}

enum noise_result datagram_create_response(struct noise_handshake *hs, const uint8_t *psk,
					   const uint8_t ephemeral_priv[NOISE_KEY_LEN], uint32_t sender_index,
					   uint32_t receiver_index, uint8_t out[DATAGRAM_RESPONSE_LEN])
{
	static const uint8_t zero_psk[NOISE_KEY_LEN];

	noise_handshake_set_psk(hs, psk != NULL ? psk : zero_psk);
	write_header(out, DATAGRAM_TYPE_RESPONSE);
	put_u32(out + DATAGRAM_HEADER_LEN, sender_index);
	put_u32(out + DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN, receiver_index);
	return noise_ik_write_response(hs, ephemeral_priv, NULL, 0,
				       out + DATAGRAM_HEADER_LEN + 2 * DATAGRAM_INDEX_LEN);
}

enum noise_result datagram_consume_response(struct noise_handshake *hs, const struct datagram *response)
{
	if (response->type != DATAGRAM_TYPE_RESPONSE || response->message_len != NOISE_IK_RESPONSE_LEN(0))
		return NOISE_ERR_LENGTH;
	return noise_ik_read_response(hs, response->message, response->message_len, NULL);
}

enum datagram_result datagram_seal_data(const uint8_t key[NOISE_KEY_LEN], uint32_t receiver_index,
					uint64_t counter, const uint8_t *payload, size_t payload_len,
					uint8_t *out, size_t *out_len)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	unsigned long long ciphertext_len;

	*out_len = 0;
	if (counter >= DATAGRAM_COUNTER_LIMIT)
		return DATAGRAM_ERR_COUNTER;
	if (payload_len > DATAGRAM_MAX_PAYLOAD_LEN)
		return DATAGRAM_ERR_LONG;
	write_header(out, DATAGRAM_TYPE_DATA);
	put_u32(out + DATAGRAM_HEADER_LEN, receiver_index);
	put_u64(out + DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN, counter);
	counter_nonce(nonce, counter);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + DATAGRAM_DATA_HEADER_LEN, &ciphertext_len, payload,
						  payload_len, out, DATAGRAM_DATA_HEADER_LEN, NULL, nonce, key);
	*out_len = DATAGRAM_DATA_HEADER_LEN + (size_t)ciphertext_len;
	return DATAGRAM_OK;
}

enum datagram_result datagram_open_data(const uint8_t key[NOISE_KEY_LEN], const struct datagram *data,
					uint8_t *payload, size_t payload_capacity, size_t *payload_len)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	unsigned long long plaintext_len;

	*payload_len = 0;
	if (data->type != DATAGRAM_TYPE_DATA || data->message_len < NOISE_TAG_LEN)
		return DATAGRAM_ERR_SHORT;
	if (data->message_len - NOISE_TAG_LEN > payload_capacity)
		return DATAGRAM_ERR_BUFFER;
	if (data->counter >= DATAGRAM_COUNTER_LIMIT)
		return DATAGRAM_ERR_COUNTER;
	counter_nonce(nonce, data->counter);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(payload, &plaintext_len, NULL, data->message,
						      data->message_len, data->raw, DATAGRAM_DATA_HEADER_LEN,
						      nonce, key) != 0)
		return DATAGRAM_ERR_DECRYPT;
	*payload_len = (size_t)plaintext_len;
	return DATAGRAM_OK;
}

const char *datagram_result_string(enum datagram_result result)
{
	switch (result) {
	case DATAGRAM_OK:
		return "ok";
	case DATAGRAM_ERR_SHORT:
		return "datagram too short for its type";
	case DATAGRAM_ERR_LONG:
		return "datagram too long for its type";
	case DATAGRAM_ERR_TYPE:
		return "unknown datagram type";
	case DATAGRAM_ERR_HEADER:
		return "reserved header bytes are not zero";
	case DATAGRAM_ERR_DECRYPT:
		return "datagram failed to authenticate";
	case DATAGRAM_ERR_COUNTER:
		return "counter at the session's limit";
	case DATAGRAM_ERR_BUFFER:
		return "payload larger than the buffer";
	}
	return "unknown";
}
