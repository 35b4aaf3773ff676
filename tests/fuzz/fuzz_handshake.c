/*
 * libFuzzer target: bytes a stranger sends to the tunnel listener, read as
 * an initiation and, with a fixed initiator, as a response.
 */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "handshake.h"

static uint8_t responder_priv[NOISE_KEY_LEN];
static uint8_t initiator_priv[NOISE_KEY_LEN];
static uint8_t responder_pub[NOISE_KEY_LEN];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sodium_init() < 0)
		return -1;
	memset(responder_priv, 0x41, sizeof(responder_priv));
	memset(initiator_priv, 0x42, sizeof(initiator_priv));
	noise_public_key(responder_pub, responder_priv);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct noise_handshake responder;
	struct noise_handshake initiator;
	uint8_t timestamp[WIRE_TIMESTAMP_LEN] = { 0 };
	uint8_t ephemeral[NOISE_KEY_LEN];
	uint8_t initiation[WIRE_INITIATION_LEN];

	handshake_initiation_prefix_valid(data, size);
	handshake_consume_initiation(&responder, responder_priv, data, size, timestamp);

	memset(ephemeral, 0x43, sizeof(ephemeral));
	if (handshake_create_initiation(&initiator, initiator_priv, responder_pub, NULL, ephemeral,
					timestamp, initiation) == NOISE_OK)
		handshake_consume_response(&initiator, data, size);

	noise_handshake_wipe(&responder);
	noise_handshake_wipe(&initiator);
	return 0;
}
