/*
 * Write the seed corpus of fuzz_handshake, fuzz_frame and fuzz_datagram: messages and
 * records made with the fixed keys of fuzz_support.h, so that the fuzzers
 * start from inputs that pass the cryptographic checks. Each stream is
 * opened again with fuzz_open_records() before it is written, to check
 * that it stops where it is meant to.
 *
 *   make_corpus DIR          write DIR/handshake/, DIR/frame/ and DIR/datagram/
 *   make_corpus --check DIR  compare those files with what would be written
 *
 * Everything is deterministic, so --check fails only when the code or the
 * keys changed and the committed seeds no longer match. Files in DIR that
 * this program does not make (hand-written seeds, crash inputs) are left
 * alone.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "datagram.h"
#include "frame.h"
#include "fuzz_support.h"
#include "handshake.h"

/* Large enough for the biggest seed: a record at FRAME_MAX_RECORD_LEN and a little more. */
#define SEED_MAX_LEN (FRAME_MAX_RECORD_LEN + 1024)

struct seed {
	char name[64];		/* "handshake/initiation-valid.bin" */
	uint8_t data[SEED_MAX_LEN];
	size_t len;
};

static void fail(const char *message)
{
	fprintf(stderr, "make_corpus: %s\n", message);
	exit(1);
}

static struct seed *seed_new(const char *name)
{
	struct seed *seed = calloc(1, sizeof(*seed));

	if (seed == NULL)
		fail("out of memory");
	snprintf(seed->name, sizeof(seed->name), "%s", name);
	return seed;
}

static void seed_append(struct seed *seed, const void *data, size_t len)
{
	if (len > SEED_MAX_LEN - seed->len)
		fail("seed too large");
	memcpy(seed->data + seed->len, data, len);
	seed->len += len;
}

/* Seal a record with frame_seal() and append it. */
static void seed_append_record(struct seed *seed, struct noise_cipher *send, enum frame_type type,
			       const void *body, size_t body_len)
{
	static uint8_t record[FRAME_MAX_RECORD_LEN];
	size_t record_len;

	if (body_len > FRAME_MAX_BODY_LEN)
		fail("body too large");
	if (body_len > 0)
		memcpy(record + FRAME_HEADER_LEN + FRAME_TYPE_LEN, body, body_len);
	if (frame_seal(send, record, type, body_len, &record_len) != FRAME_OK)
		fail("frame_seal failed");
	seed_append(seed, record, record_len);
}

/*
 * Append an authentic record with any type byte, even one that
 * frame_seal() rejects, so that the receiver's type checks have a seed.
 */
static void seed_append_crafted_record(struct seed *seed, struct noise_cipher *send, uint8_t type,
				       const void *body, size_t body_len)
{
	uint8_t record[FRAME_OVERHEAD + 64];
	size_t ciphertext_len = FRAME_TYPE_LEN + body_len + NOISE_TAG_LEN;

	if (body_len > 64)
		fail("crafted body too large");
	record[0] = (uint8_t)(ciphertext_len >> 8);
	record[1] = (uint8_t)ciphertext_len;
	record[FRAME_HEADER_LEN] = type;
	if (body_len > 0)
		memcpy(record + FRAME_HEADER_LEN + FRAME_TYPE_LEN, body, body_len);
	if (noise_cipher_encrypt(send, record, FRAME_HEADER_LEN, record + FRAME_HEADER_LEN,
				 FRAME_TYPE_LEN + body_len, record + FRAME_HEADER_LEN) != NOISE_OK)
		fail("noise_cipher_encrypt failed");
	seed_append(seed, record, FRAME_HEADER_LEN + ciphertext_len);
}

/*
 * Open the records from offset on with a copy of receive, as the fuzz
 * targets do, and fail unless exactly expected records open.
 */
static void seed_expect_records(const struct seed *seed, size_t offset,
				const struct noise_cipher *receive, size_t expected)
{
	static uint8_t rx[SEED_MAX_LEN];
	struct noise_cipher copy = *receive;
	size_t opened;

	memcpy(rx, seed->data + offset, seed->len - offset);
	opened = fuzz_open_records(&copy, rx, seed->len - offset);
	noise_cipher_wipe(&copy);
	if (opened != expected) {
		fprintf(stderr, "make_corpus: %s: %zu records opened, expected %zu\n", seed->name,
			opened, expected);
		exit(1);
	}
}

/* The same from a fresh frame cipher whose counter starts at first_nonce. */
static void seed_expect_frame_records(const struct seed *seed, uint64_t first_nonce, size_t expected)
{
	struct noise_cipher receive;

	fuzz_frame_cipher(&receive, first_nonce);
	seed_expect_records(seed, 0, &receive, expected);
	noise_cipher_wipe(&receive);
}

/* ---- Handshake seeds ---- */

/* The messages and ciphers of the fixed handshake that fuzz_handshake replays. */
struct handshake_messages {
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	struct noise_cipher responder_send;	/* seals what the initiator receives */
	struct noise_cipher initiator_receive;	/* opens them */
};

static void handshake_messages_make(struct handshake_messages *messages)
{
	struct noise_handshake initiator;
	struct noise_handshake responder;
	struct noise_cipher responder_receive;
	struct noise_cipher initiator_send;
	uint8_t responder_priv[NOISE_KEY_LEN];
	uint8_t responder_pub[NOISE_KEY_LEN];
	uint8_t initiator_priv[NOISE_KEY_LEN];
	uint8_t ephemeral_priv[NOISE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t received_timestamp[WIRE_TIMESTAMP_LEN];

	fuzz_key(responder_priv, FUZZ_RESPONDER_PRIVATE_BYTE);
	fuzz_key(initiator_priv, FUZZ_INITIATOR_PRIVATE_BYTE);
	fuzz_key(ephemeral_priv, FUZZ_EPHEMERAL_PRIVATE_BYTE);
	fuzz_timestamp(timestamp);
	noise_public_key(responder_pub, responder_priv);

	if (handshake_create_initiation(&initiator, initiator_priv, responder_pub, NULL,
					ephemeral_priv, timestamp, messages->initiation) != NOISE_OK)
		fail("handshake_create_initiation failed");
	if (handshake_consume_initiation(&responder, responder_priv, messages->initiation,
					 WIRE_INITIATION_LEN, received_timestamp) != NOISE_OK)
		fail("handshake_consume_initiation failed on the initiation just made");
	if (handshake_create_response(&responder, NULL, ephemeral_priv, messages->response) != NOISE_OK)
		fail("handshake_create_response failed");
	if (noise_handshake_split(&responder, &messages->responder_send, &responder_receive) != NOISE_OK)
		fail("noise_handshake_split failed");
	if (handshake_consume_response(&initiator, messages->response, WIRE_RESPONSE_LEN) != NOISE_OK)
		fail("handshake_consume_response failed on the response just made");
	if (noise_handshake_split(&initiator, &initiator_send, &messages->initiator_receive) != NOISE_OK)
		fail("noise_handshake_split failed");

	noise_handshake_wipe(&initiator);
	noise_handshake_wipe(&responder);
	noise_cipher_wipe(&responder_receive);
	noise_cipher_wipe(&initiator_send);
}

static size_t seeds_add_handshake(struct seed **seeds, size_t count)
{
	static const uint8_t header_only[WIRE_HANDSHAKE_HEADER_LEN] = { WIRE_TYPE_INITIATION, 0, 0, 0 };
	static const char body[] = "SELECT 1;";
	struct handshake_messages messages;
	struct seed *seed;

	handshake_messages_make(&messages);

	seed = seeds[count++] = seed_new("handshake/initiation-valid.bin");
	seed_append(seed, messages.initiation, WIRE_INITIATION_LEN);

	/* One bit in the encrypted static key, so that the first decryption fails. */
	seed = seeds[count++] = seed_new("handshake/initiation-bit-flipped.bin");
	seed_append(seed, messages.initiation, WIRE_INITIATION_LEN);
	seed->data[WIRE_HANDSHAKE_HEADER_LEN + NOISE_KEY_LEN + 3] ^= 0x10;

	/*
	 * An all-zero ephemeral key is a low-order point, so the first DH
	 * fails before any decryption, in the initiation and in the response.
	 */
	seed = seeds[count++] = seed_new("handshake/initiation-zero-ephemeral.bin");
	seed_append(seed, messages.initiation, WIRE_INITIATION_LEN);
	memset(seed->data + WIRE_HANDSHAKE_HEADER_LEN, 0, NOISE_KEY_LEN);

	seed = seeds[count++] = seed_new("handshake/response-zero-ephemeral.bin");
	seed_append(seed, messages.response, WIRE_RESPONSE_LEN);
	memset(seed->data + WIRE_HANDSHAKE_HEADER_LEN, 0, NOISE_KEY_LEN);

	seed = seeds[count++] = seed_new("handshake/initiation-truncated.bin");
	seed_append(seed, messages.initiation, WIRE_INITIATION_LEN - 1);

	seed = seeds[count++] = seed_new("handshake/response-valid.bin");
	seed_append(seed, messages.response, WIRE_RESPONSE_LEN);

	/* The records that follow the response on the connection. */
	seed = seeds[count++] = seed_new("handshake/response-then-records.bin");
	seed_append(seed, messages.response, WIRE_RESPONSE_LEN);
	seed_append_record(seed, &messages.responder_send, FRAME_DATA, body, sizeof(body) - 1);
	seed_append_record(seed, &messages.responder_send, FRAME_KEEPALIVE, NULL, 0);
	seed_append_record(seed, &messages.responder_send, FRAME_FIN, NULL, 0);
	seed_expect_records(seed, WIRE_RESPONSE_LEN, &messages.initiator_receive, 3);

	seed = seeds[count++] = seed_new("handshake/header-only.bin");
	seed_append(seed, header_only, sizeof(header_only));

	noise_cipher_wipe(&messages.responder_send);
	noise_cipher_wipe(&messages.initiator_receive);
	return count;
}

/* ---- Frame seeds ---- */

static size_t seeds_add_frame(struct seed **seeds, size_t count)
{
	static const char body[] = "COPY pg_wal FROM STDIN";
	static uint8_t max_body[FRAME_MAX_BODY_LEN];
	static const uint8_t one_byte[1] = { 0 };
	struct noise_cipher send;
	struct seed *seed;
	size_t bad_offset;

	/*
	 * Every type, in the order a connection sends them. The sender
	 * switches its key right after the REKEY record, as the daemon does.
	 */
	seed = seeds[count++] = seed_new("frame/stream-each-type.bin");
	fuzz_frame_cipher(&send, 0);
	seed_append_record(seed, &send, FRAME_OPEN, NULL, 0);
	seed_append_record(seed, &send, FRAME_DATA, body, sizeof(body) - 1);
	seed_append_record(seed, &send, FRAME_KEEPALIVE, NULL, 0);
	seed_append_record(seed, &send, FRAME_REKEY, NULL, 0);
	noise_cipher_rekey(&send);
	seed_append_record(seed, &send, FRAME_DATA, "x", 1);
	seed_append_record(seed, &send, FRAME_FIN, NULL, 0);
	seed_append_record(seed, &send, FRAME_RESET, NULL, 0);
	seed_expect_frame_records(seed, 0, 7);

	seed = seeds[count++] = seed_new("frame/record-max-length.bin");
	fuzz_frame_cipher(&send, 0);
	for (size_t i = 0; i < sizeof(max_body); i++)
		max_body[i] = (uint8_t)i;
	seed_append_record(seed, &send, FRAME_DATA, max_body, sizeof(max_body));
	seed_expect_frame_records(seed, 0, 1);

	/* The third of five records has one bit flipped in its ciphertext. */
	seed = seeds[count++] = seed_new("frame/stream-bad-middle.bin");
	fuzz_frame_cipher(&send, 0);
	seed_append_record(seed, &send, FRAME_OPEN, NULL, 0);
	seed_append_record(seed, &send, FRAME_DATA, body, sizeof(body) - 1);
	bad_offset = seed->len;
	seed_append_record(seed, &send, FRAME_DATA, body, sizeof(body) - 1);
	seed->data[bad_offset + FRAME_HEADER_LEN + 1] ^= 0x01;
	seed_append_record(seed, &send, FRAME_KEEPALIVE, NULL, 0);
	seed_append_record(seed, &send, FRAME_FIN, NULL, 0);
	seed_expect_frame_records(seed, 0, 2);

	seed = seeds[count++] = seed_new("frame/one-byte.bin");
	seed_append(seed, one_byte, sizeof(one_byte));
	seed_expect_frame_records(seed, 0, 0);

	/*
	 * Authentic records of a kind frame_open() rejects: type 0, which no
	 * record has, DATA without a body, and FIN with one.
	 */
	seed = seeds[count++] = seed_new("frame/type-unknown.bin");
	fuzz_frame_cipher(&send, 0);
	seed_append_crafted_record(seed, &send, 0, NULL, 0);
	seed_expect_frame_records(seed, 0, 0);

	seed = seeds[count++] = seed_new("frame/data-empty.bin");
	fuzz_frame_cipher(&send, 0);
	seed_append_crafted_record(seed, &send, FRAME_DATA, NULL, 0);
	seed_expect_frame_records(seed, 0, 0);

	seed = seeds[count++] = seed_new("frame/fin-with-body.bin");
	fuzz_frame_cipher(&send, 0);
	seed_append_crafted_record(seed, &send, FRAME_FIN, "x", 1);
	seed_expect_frame_records(seed, 0, 0);

	/*
	 * Two records sealed from FUZZ_FRAME_NEAR_LIMIT_NONCE, then one more:
	 * the sender's cipher is exhausted by then, so the third is sealed
	 * from counter 0, and the receiver rejects it on its counter alone.
	 */
	seed = seeds[count++] = seed_new("frame/stream-near-nonce-limit.bin");
	fuzz_frame_cipher(&send, FUZZ_FRAME_NEAR_LIMIT_NONCE);
	seed_append_record(seed, &send, FRAME_DATA, body, sizeof(body) - 1);
	seed_append_record(seed, &send, FRAME_KEEPALIVE, NULL, 0);
	fuzz_frame_cipher(&send, 0);
	seed_append_record(seed, &send, FRAME_DATA, body, sizeof(body) - 1);
	seed_expect_frame_records(seed, FUZZ_FRAME_NEAR_LIMIT_NONCE, 2);
	seed_expect_frame_records(seed, 0, 0);

	noise_cipher_wipe(&send);
	return count;
}

/* ---- Datagram seeds ---- */

/* A data datagram sealed with the frame key, as fuzz_datagram opens it. */
static void seed_append_datagram(struct seed *seed, uint64_t counter, const void *payload, size_t len)
{
	uint8_t key[NOISE_KEY_LEN];
	uint8_t datagram[DATAGRAM_MAX_LEN];
	size_t datagram_len;

	fuzz_key(key, FUZZ_FRAME_KEY_BYTE);
	if (datagram_seal_data(key, FUZZ_DATAGRAM_RESPONDER_INDEX, counter, payload, len, datagram,
			       &datagram_len) != DATAGRAM_OK)
		fail("datagram_seal_data failed");
	seed_append(seed, datagram, datagram_len);
}

static size_t seeds_add_datagram(struct seed **seeds, size_t count)
{
	static const char body[] = "an SCTP packet";
	static uint8_t large[DATAGRAM_MAX_PAYLOAD_LEN];
	uint8_t initiator_priv[NOISE_KEY_LEN];
	uint8_t responder_priv[NOISE_KEY_LEN];
	uint8_t responder_pub[NOISE_KEY_LEN];
	uint8_t ephemeral_priv[NOISE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t received_timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t initiation[DATAGRAM_INITIATION_LEN];
	uint8_t response[DATAGRAM_RESPONSE_LEN];
	struct noise_handshake initiator, responder;
	struct datagram parsed;
	struct seed *seed;

	fuzz_key(initiator_priv, FUZZ_INITIATOR_PRIVATE_BYTE);
	fuzz_key(responder_priv, FUZZ_RESPONDER_PRIVATE_BYTE);
	fuzz_key(ephemeral_priv, FUZZ_EPHEMERAL_PRIVATE_BYTE);
	fuzz_timestamp(timestamp);
	noise_public_key(responder_pub, responder_priv);

	if (datagram_create_initiation(&initiator, initiator_priv, responder_pub, NULL, ephemeral_priv, timestamp,
				       FUZZ_DATAGRAM_INITIATOR_INDEX, initiation) != NOISE_OK)
		fail("datagram_create_initiation failed");
	if (datagram_parse(&parsed, initiation, sizeof(initiation)) != DATAGRAM_OK ||
	    datagram_consume_initiation(&responder, responder_priv, &parsed, received_timestamp) != NOISE_OK)
		fail("datagram_consume_initiation failed on the initiation just made");
	if (datagram_create_response(&responder, NULL, ephemeral_priv, FUZZ_DATAGRAM_RESPONDER_INDEX,
				     FUZZ_DATAGRAM_INITIATOR_INDEX, response) != NOISE_OK)
		fail("datagram_create_response failed");
	if (datagram_parse(&parsed, response, sizeof(response)) != DATAGRAM_OK ||
	    datagram_consume_response(&initiator, &parsed) != NOISE_OK)
		fail("datagram_consume_response failed on the response just made");
	noise_handshake_wipe(&initiator);
	noise_handshake_wipe(&responder);

	seed = seeds[count++] = seed_new("datagram/initiation-valid.bin");
	seed_append(seed, initiation, sizeof(initiation));

	seed = seeds[count++] = seed_new("datagram/initiation-truncated.bin");
	seed_append(seed, initiation, sizeof(initiation) - 1);

	seed = seeds[count++] = seed_new("datagram/response-valid.bin");
	seed_append(seed, response, sizeof(response));

	seed = seeds[count++] = seed_new("datagram/data-valid.bin");
	seed_append_datagram(seed, 1, body, sizeof(body) - 1);

	seed = seeds[count++] = seed_new("datagram/data-keepalive.bin");
	seed_append_datagram(seed, 0, NULL, 0);

	seed = seeds[count++] = seed_new("datagram/data-max-length.bin");
	seed_append_datagram(seed, 2, large, sizeof(large));

	seed = seeds[count++] = seed_new("datagram/data-near-counter-limit.bin");
	seed_append_datagram(seed, DATAGRAM_COUNTER_LIMIT - 1, body, sizeof(body) - 1);
	return count;
}

/* ---- Writing and checking ---- */

static void seed_write(const char *dir, const struct seed *seed)
{
	char path[4096];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", dir, seed->name);
	file = fopen(path, "wb");
	if (file == NULL || fwrite(seed->data, 1, seed->len, file) != seed->len || fclose(file) != 0) {
		fprintf(stderr, "make_corpus: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Return whether the file at dir/name has exactly the seed's bytes. */
static bool seed_matches(const char *dir, const struct seed *seed)
{
	static uint8_t content[SEED_MAX_LEN + 1];
	char path[4096];
	FILE *file;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, seed->name);
	file = fopen(path, "rb");
	if (file == NULL) {
		fprintf(stderr, "make_corpus: cannot read %s: %s\n", path, strerror(errno));
		return false;
	}
	len = fread(content, 1, sizeof(content), file);
	fclose(file);
	if (len != seed->len || memcmp(content, seed->data, len) != 0) {
		fprintf(stderr, "make_corpus: %s differs from the seed made by the current code\n", path);
		return false;
	}
	return true;
}

static void make_dir(const char *dir, const char *sub)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "make_corpus: cannot create %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct seed *seeds[32];
	size_t count = 0;
	bool check = false;
	const char *dir;
	int status = 0;

	if (argc == 3 && strcmp(argv[1], "--check") == 0) {
		check = true;
		dir = argv[2];
	} else if (argc == 2 && argv[1][0] != '-') {
		dir = argv[1];
	} else {
		fprintf(stderr, "usage: make_corpus [--check] DIR\n"
				"Writes (or with --check, compares) DIR/handshake/*.bin, DIR/frame/*.bin and DIR/datagram/*.bin.\n");
		return 2;
	}
	if (sodium_init() < 0)
		fail("sodium_init failed");

	count = seeds_add_handshake(seeds, count);
	count = seeds_add_frame(seeds, count);
	count = seeds_add_datagram(seeds, count);

	if (!check) {
		make_dir(dir, "");
		make_dir(dir, "handshake");
		make_dir(dir, "frame");
		make_dir(dir, "datagram");
	}
	for (size_t i = 0; i < count; i++) {
		if (!check)
			seed_write(dir, seeds[i]);
		else if (!seed_matches(dir, seeds[i]))
			status = 1;
		free(seeds[i]);
	}
	if (status != 0)
		fprintf(stderr, "make_corpus: regenerate the seeds with: %s %s\n", argv[0], dir);
	return status;
}
