/*
 * libFuzzer target: one datagram arriving on the UDP transport's socket,
 * handled in the order tunnel/udp_session.c handles it. The framing is
 * parsed first. Then its type picks the handshake step to run or the data
 * datagram to open, and an opened datagram's counter goes through a
 * replay window.
 *
 * The keys are the fixed ones of fuzz_support.h. A response is read by
 * the fixed initiator, whose initiation is made once at start-up; a data
 * datagram is opened with the frame key.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "fuzz_support.h"
#include "replay_window.h"

static uint8_t responder_priv[NOISE_KEY_LEN];
static uint8_t ephemeral_priv[NOISE_KEY_LEN];
static struct noise_handshake initiator_after_initiation;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t initiator_priv[NOISE_KEY_LEN];
	uint8_t responder_pub[NOISE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t initiation[DATAGRAM_INITIATION_LEN];

	if (sodium_init() < 0)
		return -1;
	fuzz_key(responder_priv, FUZZ_RESPONDER_PRIVATE_BYTE);
	fuzz_key(initiator_priv, FUZZ_INITIATOR_PRIVATE_BYTE);
	fuzz_key(ephemeral_priv, FUZZ_EPHEMERAL_PRIVATE_BYTE);
	fuzz_timestamp(timestamp);
	noise_public_key(responder_pub, responder_priv);
	if (datagram_create_initiation(&initiator_after_initiation, initiator_priv, responder_pub, NULL,
				       ephemeral_priv, timestamp, FUZZ_DATAGRAM_INITIATOR_INDEX,
				       initiation) != NOISE_OK)
		abort();
	return 0;
}

static void respond(const struct datagram *initiation)
{
	struct noise_handshake responder;
	struct noise_cipher send, receive;
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t response[DATAGRAM_RESPONSE_LEN];

	if (datagram_consume_initiation(&responder, responder_priv, initiation, timestamp) == NOISE_OK &&
	    datagram_create_response(&responder, NULL, ephemeral_priv, FUZZ_DATAGRAM_RESPONDER_INDEX,
				     initiation->sender_index, response) == NOISE_OK &&
	    noise_handshake_split(&responder, &send, &receive) != NOISE_OK)
		__builtin_trap();
	noise_handshake_wipe(&responder);
}

static void read_response(const struct datagram *response)
{
	struct noise_handshake initiator = initiator_after_initiation;
	struct noise_cipher send, receive;

	if (datagram_consume_response(&initiator, response) == NOISE_OK &&
	    noise_handshake_split(&initiator, &send, &receive) != NOISE_OK)
		__builtin_trap();
	noise_handshake_wipe(&initiator);
}

static void open_data(const struct datagram *data)
{
	struct replay_window window;
	uint8_t key[NOISE_KEY_LEN];
	uint8_t payload[DATAGRAM_MAX_PAYLOAD_LEN];
	size_t payload_len;

	/* A fresh window per input, so that every input runs the same way alone or in a corpus. */
	replay_window_init(&window);
	fuzz_key(key, FUZZ_FRAME_KEY_BYTE);
	if (replay_window_check(&window, data->counter, DATAGRAM_COUNTER_LIMIT) != REPLAY_WINDOW_OK)
		return;
	if (datagram_open_data(key, data, payload, sizeof(payload), &payload_len) != DATAGRAM_OK)
		return;
	if (payload_len != data->raw_len - DATAGRAM_DATA_OVERHEAD)
		__builtin_trap();
	if (replay_window_accept(&window, data->counter, DATAGRAM_COUNTER_LIMIT) != REPLAY_WINDOW_OK)
		__builtin_trap();
	/* The same counter twice is a replay. */
	if (replay_window_check(&window, data->counter, DATAGRAM_COUNTER_LIMIT) != REPLAY_WINDOW_DUPLICATE)
		__builtin_trap();
	if (payload_len > 0)
		fuzz_body_sink = payload[0] ^ payload[payload_len - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct datagram parsed;
	enum datagram_result result;

	result = datagram_parse(&parsed, data, size);
	if (datagram_result_string(result) == NULL)
		__builtin_trap();
	if (result != DATAGRAM_OK)
		return 0;
	if (parsed.raw != data || parsed.raw_len != size || parsed.message + parsed.message_len != data + size)
		__builtin_trap();

	switch (parsed.type) {
	case DATAGRAM_TYPE_INITIATION:
		respond(&parsed);
		break;
	case DATAGRAM_TYPE_RESPONSE:
		read_response(&parsed);
		break;
	case DATAGRAM_TYPE_DATA:
		open_data(&parsed);
		break;
	default:
		__builtin_trap();
	}
	return 0;
}
