/*
 * libFuzzer target: bytes that arrive on a tunnel connection during the
 * handshake, handled the way tunnel/tcp_channel.c handles them.
 *
 * As a responder, the input is a whole initiation. After one that
 * authenticates, the response is written and the session is split, as
 * handle_initiation() does.
 *
 * As the fixed initiator, whose initiation is made once at start-up, the
 * first WIRE_RESPONSE_LEN bytes are the response, as handle_response()
 * reads it. After a response that authenticates, the rest of the input is
 * opened as the records that follow it on the connection.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz_support.h"
#include "handshake.h"

static uint8_t responder_priv[NOISE_KEY_LEN];
static uint8_t ephemeral_priv[NOISE_KEY_LEN];

/* The initiator's state after its initiation: copied for every input. */
static struct noise_handshake initiator_after_initiation;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t initiator_priv[NOISE_KEY_LEN];
	uint8_t responder_pub[NOISE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t initiation[WIRE_INITIATION_LEN];

	if (sodium_init() < 0)
		return -1;
	fuzz_key(responder_priv, FUZZ_RESPONDER_PRIVATE_BYTE);
	fuzz_key(initiator_priv, FUZZ_INITIATOR_PRIVATE_BYTE);
	fuzz_key(ephemeral_priv, FUZZ_EPHEMERAL_PRIVATE_BYTE);
	fuzz_timestamp(timestamp);
	noise_public_key(responder_pub, responder_priv);

	/* A failure here would make every response input fail the same way. */
	if (handshake_create_initiation(&initiator_after_initiation, initiator_priv, responder_pub,
					NULL, ephemeral_priv, timestamp, initiation) != NOISE_OK)
		abort();
	return 0;
}

static void respond(const uint8_t *data, size_t size)
{
	struct noise_handshake responder;
	struct noise_cipher send;
	struct noise_cipher receive;
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];

	handshake_initiation_prefix_valid(data, size);
	if (handshake_consume_initiation(&responder, responder_priv, data, size, timestamp) == NOISE_OK &&
	    handshake_create_response(&responder, NULL, ephemeral_priv, response) == NOISE_OK)
		noise_handshake_split(&responder, &send, &receive);

	noise_handshake_wipe(&responder);
	sodium_memzero(&send, sizeof(send));
	sodium_memzero(&receive, sizeof(receive));
}

static void initiate(const uint8_t *data, size_t size)
{
	struct noise_handshake initiator;
	struct noise_cipher send;
	struct noise_cipher receive;
	uint8_t *rest;
	size_t rest_len;

	/* process_rx() waits for a whole response and passes exactly its bytes on. */
	if (size < WIRE_RESPONSE_LEN)
		return;

	memcpy(&initiator, &initiator_after_initiation, sizeof(initiator));
	if (handshake_consume_response(&initiator, data, WIRE_RESPONSE_LEN) == NOISE_OK &&
	    noise_handshake_split(&initiator, &send, &receive) == NOISE_OK) {
		/* Exactly the remaining bytes, so that ASan reports any read past the end. */
		rest_len = size - WIRE_RESPONSE_LEN;
		rest = malloc(rest_len > 0 ? rest_len : 1);
		if (rest != NULL) {
			memcpy(rest, data + WIRE_RESPONSE_LEN, rest_len);
			fuzz_open_records(&receive, rest, rest_len);
			free(rest);
		}
	}

	noise_handshake_wipe(&initiator);
	sodium_memzero(&send, sizeof(send));
	sodium_memzero(&receive, sizeof(receive));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	respond(data, size);
	initiate(data, size);
	return 0;
}
