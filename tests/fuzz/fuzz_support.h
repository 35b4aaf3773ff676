/*
 * Fixed keys and the record loop shared by the fuzz targets and
 * make_corpus.c. The seeds in tests/fuzz/corpus are made with these keys,
 * so a seed that authenticates under them reaches the code behind the
 * cryptographic checks. Changing a key makes those seeds useless until
 * make_corpus regenerates them.
 */
#ifndef WALGUARD_FUZZ_SUPPORT_H
#define WALGUARD_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "noise.h"
#include "wire.h"

/* Each key is NOISE_KEY_LEN copies of one byte. */
#define FUZZ_RESPONDER_PRIVATE_BYTE 0x41
#define FUZZ_INITIATOR_PRIVATE_BYTE 0x42
#define FUZZ_EPHEMERAL_PRIVATE_BYTE 0x43
#define FUZZ_FRAME_KEY_BYTE 0x11

/* The session indexes in the fixed UDP handshake (fuzz_datagram). */
#define FUZZ_DATAGRAM_INITIATOR_INDEX 0x01020304
#define FUZZ_DATAGRAM_RESPONDER_INDEX 0x0a0b0c0d

/*
 * fuzz_frame opens every input twice: with the receive counter at 0, as on
 * a new connection, and with the counter at this value, so that the second
 * record uses NOISE_NONCE_MAX and the third one finds the cipher exhausted.
 */
#define FUZZ_FRAME_NEAR_LIMIT_NONCE (NOISE_NONCE_MAX - 1)

/* The timestamp inside the fixed initiator's initiation: all zero bytes. */
static inline void fuzz_timestamp(uint8_t timestamp[WIRE_TIMESTAMP_LEN])
{
	memset(timestamp, 0, WIRE_TIMESTAMP_LEN);
}

static inline void fuzz_key(uint8_t key[NOISE_KEY_LEN], uint8_t byte)
{
	memset(key, byte, NOISE_KEY_LEN);
}

/* A send or receive cipher with the frame key and the given counter. */
static inline void fuzz_frame_cipher(struct noise_cipher *cipher, uint64_t nonce)
{
	fuzz_key(cipher->key, FUZZ_FRAME_KEY_BYTE);
	cipher->nonce = nonce;
	cipher->has_key = true;
}

/* Whether type is one that frame_open() may return. */
static inline bool fuzz_frame_type_known(enum frame_type type)
{
	/* No default, so that -Wswitch points here when a type is added. */
	switch (type) {
	case FRAME_OPEN:
	case FRAME_DATA:
	case FRAME_FIN:
	case FRAME_RESET:
	case FRAME_KEEPALIVE:
	case FRAME_REKEY:
		return true;
	}
	return false;
}

/* Keeps the reads of each opened body from being optimized away. */
static volatile uint8_t fuzz_body_sink;

/* Check what frame_open() promises about a record it accepted. */
static inline void fuzz_check_opened(const uint8_t *record, size_t record_len, enum frame_type type,
				     const uint8_t *body, size_t body_len)
{
	if (body != record + FRAME_HEADER_LEN + FRAME_TYPE_LEN)
		__builtin_trap();
	if (body_len != record_len - FRAME_OVERHEAD)
		__builtin_trap();
	if (!fuzz_frame_type_known(type))
		__builtin_trap();
	if ((type == FRAME_DATA) != (body_len > 0))
		__builtin_trap();

	/* Touch both ends so that ASan checks that the body lies inside the record. */
	if (body_len > 0)
		fuzz_body_sink = body[0] ^ body[body_len - 1];
}

/*
 * Open the records in rx with the calls and stops of process_records() in
 * tunnel/tcp_channel.c: stop at a partial record or at the first failure,
 * and switch the receive key after a REKEY record, as handle_record()
 * does. rx must hold exactly size bytes, so that ASan reports any read past
 * the end. Returns the number of records opened.
 */
static inline size_t fuzz_open_records(struct noise_cipher *receive, uint8_t *rx, size_t size)
{
	size_t offset = 0;
	size_t opened = 0;

	for (;;) {
		enum frame_result result;
		enum frame_type type;
		size_t record_len;
		uint8_t *body;
		size_t body_len;

		result = frame_record_length(rx + offset, size - offset, &record_len);
		if (result == FRAME_NEED_MORE)
			break;
		if (result == FRAME_OK && record_len > size - offset)
			break;
		if (result == FRAME_OK)
			result = frame_open(receive, rx + offset, record_len, &type, &body, &body_len);
		if (result != FRAME_OK) {
			if (frame_result_string(result) == NULL)
				__builtin_trap();
			break;
		}

		fuzz_check_opened(rx + offset, record_len, type, body, body_len);
		if (type == FRAME_REKEY)
			noise_cipher_rekey(receive);
		offset += record_len;
		opened++;
	}
	return opened;
}

#endif
