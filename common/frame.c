#include "frame.h"

#include <stdbool.h>

#define FRAME_TYPE_OFFSET FRAME_HEADER_LEN
#define FRAME_BODY_OFFSET (FRAME_HEADER_LEN + FRAME_TYPE_LEN)

/* Return whether type is known and body_len fits it: DATA needs a body, the others allow none. */
static bool frame_type_valid(uint8_t type, size_t body_len)
{
	switch (type) {
	case FRAME_DATA:
		return body_len > 0;
	case FRAME_OPEN:
	case FRAME_FIN:
	case FRAME_RESET:
	case FRAME_KEEPALIVE:
	case FRAME_REKEY:
		return body_len == 0;
	}
	return false;
}

static size_t frame_header_decode(const uint8_t *header)
{
	return (size_t)header[0] << 8 | header[1];
}

static void frame_header_encode(uint8_t *header, size_t ciphertext_len)
{
	header[0] = (uint8_t)(ciphertext_len >> 8);
	header[1] = (uint8_t)ciphertext_len;
}

/*
 * The header is the associated data, so a record whose length field was
 * changed fails to open even when the stream still parses.
 */
enum frame_result frame_seal(struct noise_cipher *send, uint8_t *record, enum frame_type type,
			     size_t body_len, size_t *record_len)
{
	size_t plaintext_len = FRAME_TYPE_LEN + body_len;

	if (body_len > FRAME_MAX_BODY_LEN)
		return FRAME_ERR_LENGTH;
	if ((unsigned)type > UINT8_MAX || !frame_type_valid((uint8_t)type, body_len))
		return FRAME_ERR_TYPE;
	/*
	 * Without a key, noise_cipher_encrypt() would copy the body out in
	 * clear text, so such a cipher counts as unusable.
	 */
	if (!send->has_key)
		return FRAME_ERR_NONCE_EXHAUSTED;

	frame_header_encode(record, plaintext_len + NOISE_TAG_LEN);
	record[FRAME_TYPE_OFFSET] = (uint8_t)type;
	switch (noise_cipher_encrypt(send, record, FRAME_HEADER_LEN, record + FRAME_TYPE_OFFSET,
				     plaintext_len, record + FRAME_TYPE_OFFSET)) {
	case NOISE_OK:
		break;
	case NOISE_ERR_NONCE_EXHAUSTED:
		return FRAME_ERR_NONCE_EXHAUSTED;
	default:
		return FRAME_ERR_LENGTH;
	}

	*record_len = FRAME_HEADER_LEN + plaintext_len + NOISE_TAG_LEN;
	return FRAME_OK;
}

enum frame_result frame_record_length(const uint8_t *buf, size_t avail, size_t *record_len)
{
	size_t ciphertext_len;

	if (avail < FRAME_HEADER_LEN)
		return FRAME_NEED_MORE;

	ciphertext_len = frame_header_decode(buf);
	if (ciphertext_len < FRAME_MIN_CIPHERTEXT_LEN)
		return FRAME_ERR_LENGTH;

	*record_len = FRAME_HEADER_LEN + ciphertext_len;
	return FRAME_OK;
}

/*
 * The counter of receive is the only sequence number, so a dropped,
 * repeated or reordered record fails authentication here. When
 * authentication fails, the bytes between header and tag are zeroed.
 */
enum frame_result frame_open(struct noise_cipher *receive, uint8_t *record, size_t record_len,
			     enum frame_type *type, uint8_t **body, size_t *body_len)
{
	size_t ciphertext_len;
	size_t plaintext_len;

	if (record_len < FRAME_HEADER_LEN + FRAME_MIN_CIPHERTEXT_LEN || record_len > FRAME_MAX_RECORD_LEN)
		return FRAME_ERR_LENGTH;
	ciphertext_len = frame_header_decode(record);
	if (ciphertext_len != record_len - FRAME_HEADER_LEN)
		return FRAME_ERR_LENGTH;
	if (!receive->has_key)
		return FRAME_ERR_DECRYPT;

	switch (noise_cipher_decrypt(receive, record, FRAME_HEADER_LEN, record + FRAME_TYPE_OFFSET,
				     ciphertext_len, record + FRAME_TYPE_OFFSET)) {
	case NOISE_OK:
		break;
	case NOISE_ERR_NONCE_EXHAUSTED:
		return FRAME_ERR_NONCE_EXHAUSTED;
	case NOISE_ERR_LENGTH:
		return FRAME_ERR_LENGTH;
	default:
		return FRAME_ERR_DECRYPT;
	}

	plaintext_len = ciphertext_len - NOISE_TAG_LEN;
	if (!frame_type_valid(record[FRAME_TYPE_OFFSET], plaintext_len - FRAME_TYPE_LEN))
		return FRAME_ERR_TYPE;

	*type = (enum frame_type)record[FRAME_TYPE_OFFSET];
	*body = record + FRAME_BODY_OFFSET;
	*body_len = plaintext_len - FRAME_TYPE_LEN;
	return FRAME_OK;
}

const char *frame_result_string(enum frame_result result)
{
	switch (result) {
	case FRAME_OK:
		return "success";
	case FRAME_NEED_MORE:
		return "incomplete record";
	case FRAME_ERR_LENGTH:
		return "invalid record length";
	case FRAME_ERR_DECRYPT:
		return "record failed to authenticate (tampered, dropped, repeated or reordered)";
	case FRAME_ERR_TYPE:
		return "unknown record type, or a body the type does not allow";
	case FRAME_ERR_NONCE_EXHAUSTED:
		return "cipher nonce exhausted: the connection must be closed";
	}
	return "unknown frame error";
}
