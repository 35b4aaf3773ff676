/* The UDP datagrams (common/datagram.c): framing, handshake and data, and every reject path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "datagram.h"
#include "handshake.h"
#include "replay.h"

struct keys {
	uint8_t initiator_priv[NOISE_KEY_LEN];
	uint8_t initiator_pub[NOISE_KEY_LEN];
	uint8_t responder_priv[NOISE_KEY_LEN];
	uint8_t responder_pub[NOISE_KEY_LEN];
	uint8_t psk[NOISE_KEY_LEN];
	uint8_t ephemeral[NOISE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t session_key[NOISE_KEY_LEN];
};

static struct keys keys;

static int setup_keys(void **state)
{
	randombytes_buf(keys.initiator_priv, NOISE_KEY_LEN);
	randombytes_buf(keys.responder_priv, NOISE_KEY_LEN);
	randombytes_buf(keys.psk, NOISE_KEY_LEN);
	randombytes_buf(keys.ephemeral, NOISE_KEY_LEN);
	randombytes_buf(keys.session_key, NOISE_KEY_LEN);
	noise_public_key(keys.initiator_pub, keys.initiator_priv);
	noise_public_key(keys.responder_pub, keys.responder_priv);
	replay_timestamp_encode(keys.timestamp, 1764878400, 123456789);
	return 0;
}

static void make_initiation(struct noise_handshake *initiator, uint8_t out[DATAGRAM_INITIATION_LEN])
{
	assert_int_equal(datagram_create_initiation(initiator, keys.initiator_priv, keys.responder_pub, keys.psk,
						    keys.ephemeral, keys.timestamp, 0x01020304, out),
			 NOISE_OK);
}

static void make_data(uint64_t counter, const uint8_t *payload, size_t len, uint8_t *out, size_t *out_len)
{
	assert_int_equal(datagram_seal_data(keys.session_key, 0xa1b2c3d4, counter, payload, len, out, out_len),
			 DATAGRAM_OK);
}

static void test_sizes(void **state)
{
	assert_int_equal(DATAGRAM_INITIATION_LEN, 116);
	assert_int_equal(DATAGRAM_RESPONSE_LEN, 60);
	assert_int_equal(DATAGRAM_DATA_OVERHEAD, 32);
	/* An IPv6 and a UDP header on top still fit in 1500 bytes. */
	assert_true(DATAGRAM_MAX_LEN + 40 + 8 <= 1500);
}

static void test_handshake_round_trip(void **state)
{
	struct noise_handshake initiator, responder;
	struct noise_cipher i_send, i_receive, r_send, r_receive;
	uint8_t initiation[DATAGRAM_INITIATION_LEN];
	uint8_t response[DATAGRAM_RESPONSE_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	struct datagram parsed;

	make_initiation(&initiator, initiation);
	assert_int_equal(initiation[0], DATAGRAM_TYPE_INITIATION);
	assert_int_equal(initiation[1] | initiation[2] | initiation[3], 0);
	/* The index is little-endian. */
	assert_int_equal(initiation[4], 0x04);
	assert_int_equal(initiation[7], 0x01);

	assert_int_equal(datagram_parse(&parsed, initiation, sizeof(initiation)), DATAGRAM_OK);
	assert_int_equal(parsed.type, DATAGRAM_TYPE_INITIATION);
	assert_int_equal(parsed.sender_index, 0x01020304);
	assert_int_equal(datagram_consume_initiation(&responder, keys.responder_priv, &parsed, timestamp), NOISE_OK);
	assert_memory_equal(responder.rs, keys.initiator_pub, NOISE_KEY_LEN);
	assert_memory_equal(timestamp, keys.timestamp, WIRE_TIMESTAMP_LEN);

	assert_int_equal(datagram_create_response(&responder, keys.psk, keys.ephemeral, 77, 0x01020304, response),
			 NOISE_OK);
	assert_int_equal(datagram_parse(&parsed, response, sizeof(response)), DATAGRAM_OK);
	assert_int_equal(parsed.type, DATAGRAM_TYPE_RESPONSE);
	assert_int_equal(parsed.sender_index, 77);
	assert_int_equal(parsed.receiver_index, 0x01020304);
	assert_int_equal(datagram_consume_response(&initiator, &parsed), NOISE_OK);

	assert_int_equal(noise_handshake_split(&initiator, &i_send, &i_receive), NOISE_OK);
	assert_int_equal(noise_handshake_split(&responder, &r_send, &r_receive), NOISE_OK);
	assert_memory_equal(i_send.key, r_receive.key, NOISE_KEY_LEN);
	assert_memory_equal(i_receive.key, r_send.key, NOISE_KEY_LEN);
}

static void test_psk_mismatch_fails_response(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[DATAGRAM_INITIATION_LEN];
	uint8_t response[DATAGRAM_RESPONSE_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t other_psk[NOISE_KEY_LEN];
	struct datagram parsed;

	randombytes_buf(other_psk, sizeof(other_psk));
	make_initiation(&initiator, initiation);
	assert_int_equal(datagram_parse(&parsed, initiation, sizeof(initiation)), DATAGRAM_OK);
	assert_int_equal(datagram_consume_initiation(&responder, keys.responder_priv, &parsed, timestamp), NOISE_OK);
	assert_int_equal(datagram_create_response(&responder, other_psk, keys.ephemeral, 1, 2, response), NOISE_OK);
	assert_int_equal(datagram_parse(&parsed, response, sizeof(response)), DATAGRAM_OK);
	assert_int_equal(datagram_consume_response(&initiator, &parsed), NOISE_ERR_DECRYPT);
}

/* A TCP initiation with the 4 index bytes spliced in has the right shape but the wrong prologue. */
static void test_tcp_initiation_rejected(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t tcp[WIRE_INITIATION_LEN];
	uint8_t udp[DATAGRAM_INITIATION_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	struct datagram parsed;

	assert_int_equal(handshake_create_initiation(&initiator, keys.initiator_priv, keys.responder_pub, keys.psk,
						     keys.ephemeral, keys.timestamp, tcp),
			 NOISE_OK);
	memcpy(udp, tcp, WIRE_HANDSHAKE_HEADER_LEN);
	memset(udp + WIRE_HANDSHAKE_HEADER_LEN, 0, DATAGRAM_INDEX_LEN);
	memcpy(udp + WIRE_HANDSHAKE_HEADER_LEN + DATAGRAM_INDEX_LEN, tcp + WIRE_HANDSHAKE_HEADER_LEN,
	       WIRE_INITIATION_LEN - WIRE_HANDSHAKE_HEADER_LEN);
	assert_int_equal(datagram_parse(&parsed, udp, sizeof(udp)), DATAGRAM_OK);
	assert_int_equal(datagram_consume_initiation(&responder, keys.responder_priv, &parsed, timestamp),
			 NOISE_ERR_DECRYPT);
	/* And the raw TCP initiation is one of the wrong length. */
	assert_int_equal(datagram_parse(&parsed, tcp, sizeof(tcp)), DATAGRAM_ERR_SHORT);
}

static void test_initiation_for_other_host_rejected(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[DATAGRAM_INITIATION_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t other_priv[NOISE_KEY_LEN];
	struct datagram parsed;

	randombytes_buf(other_priv, sizeof(other_priv));
	make_initiation(&initiator, initiation);
	assert_int_equal(datagram_parse(&parsed, initiation, sizeof(initiation)), DATAGRAM_OK);
	assert_int_equal(datagram_consume_initiation(&responder, other_priv, &parsed, timestamp), NOISE_ERR_DECRYPT);
}

static void test_tampered_initiation_rejected(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[DATAGRAM_INITIATION_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	struct datagram parsed;

	make_initiation(&initiator, initiation);
	/* Every byte of the Noise message is covered; the index is not, so it is skipped. */
	for (size_t i = DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN; i < sizeof(initiation); i++) {
		initiation[i] ^= 0x01;
		assert_int_equal(datagram_parse(&parsed, initiation, sizeof(initiation)), DATAGRAM_OK);
		assert_int_not_equal(datagram_consume_initiation(&responder, keys.responder_priv, &parsed, timestamp),
				     NOISE_OK);
		initiation[i] ^= 0x01;
	}
}

static void test_parse_empty_and_header(void **state)
{
	uint8_t buffer[DATAGRAM_MAX_LEN + 1] = { 0 };
	struct datagram parsed;

	assert_int_equal(datagram_parse(&parsed, buffer, 0), DATAGRAM_ERR_SHORT);
	assert_int_equal(datagram_parse(&parsed, buffer, 3), DATAGRAM_ERR_SHORT);
	buffer[0] = DATAGRAM_TYPE_DATA;
	for (int i = 1; i < 4; i++) {
		buffer[i] = 1;
		assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_DATA_OVERHEAD), DATAGRAM_ERR_HEADER);
		buffer[i] = 0;
	}
}

static void test_parse_unknown_types(void **state)
{
	uint8_t buffer[DATAGRAM_INITIATION_LEN] = { 0 };
	struct datagram parsed;
	int types[] = { 0, 3, 5, 6, 0x41, 0xff };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		buffer[0] = (uint8_t)types[i];
		assert_int_equal(datagram_parse(&parsed, buffer, sizeof(buffer)), DATAGRAM_ERR_TYPE);
	}
}

static void test_parse_handshake_lengths(void **state)
{
	uint8_t buffer[DATAGRAM_INITIATION_LEN + 1] = { 0 };
	struct datagram parsed;

	buffer[0] = DATAGRAM_TYPE_INITIATION;
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_INITIATION_LEN - 1), DATAGRAM_ERR_SHORT);
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_INITIATION_LEN + 1), DATAGRAM_ERR_LONG);
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_INITIATION_LEN), DATAGRAM_OK);
	buffer[0] = DATAGRAM_TYPE_RESPONSE;
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_RESPONSE_LEN - 1), DATAGRAM_ERR_SHORT);
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_RESPONSE_LEN + 1), DATAGRAM_ERR_LONG);
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_RESPONSE_LEN), DATAGRAM_OK);
}

static void test_parse_data_lengths(void **state)
{
	uint8_t buffer[DATAGRAM_MAX_LEN + 1] = { 0 };
	struct datagram parsed;

	buffer[0] = DATAGRAM_TYPE_DATA;
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_DATA_OVERHEAD - 1), DATAGRAM_ERR_SHORT);
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_DATA_OVERHEAD), DATAGRAM_OK);
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_MAX_DATA_LEN), DATAGRAM_OK);
	assert_int_equal(datagram_parse(&parsed, buffer, DATAGRAM_MAX_DATA_LEN + 1), DATAGRAM_ERR_LONG);
}

static void test_data_round_trip(void **state)
{
	uint8_t payload[DATAGRAM_MAX_PAYLOAD_LEN];
	uint8_t sealed[DATAGRAM_MAX_LEN];
	uint8_t opened[DATAGRAM_MAX_PAYLOAD_LEN];
	size_t sealed_len, opened_len;
	struct datagram parsed;

	randombytes_buf(payload, sizeof(payload));
	make_data(42, payload, sizeof(payload), sealed, &sealed_len);
	assert_int_equal(sealed_len, DATAGRAM_MAX_LEN);
	assert_int_equal(datagram_parse(&parsed, sealed, sealed_len), DATAGRAM_OK);
	assert_int_equal(parsed.receiver_index, 0xa1b2c3d4);
	assert_int_equal(parsed.counter, 42);
	assert_int_equal(datagram_open_data(keys.session_key, &parsed, opened, sizeof(opened), &opened_len),
			 DATAGRAM_OK);
	assert_int_equal(opened_len, sizeof(payload));
	assert_memory_equal(opened, payload, sizeof(payload));
}

static void test_keepalive_round_trip(void **state)
{
	uint8_t sealed[DATAGRAM_DATA_OVERHEAD];
	uint8_t opened[1];
	size_t sealed_len, opened_len = 99;
	struct datagram parsed;

	make_data(0, NULL, 0, sealed, &sealed_len);
	assert_int_equal(sealed_len, DATAGRAM_DATA_OVERHEAD);
	assert_int_equal(datagram_parse(&parsed, sealed, sealed_len), DATAGRAM_OK);
	assert_int_equal(datagram_open_data(keys.session_key, &parsed, opened, 0, &opened_len), DATAGRAM_OK);
	assert_int_equal(opened_len, 0);
}

static void test_data_tampering_rejected(void **state)
{
	uint8_t payload[64];
	uint8_t sealed[DATAGRAM_DATA_OVERHEAD + sizeof(payload)];
	uint8_t opened[sizeof(payload)];
	size_t sealed_len, opened_len;
	struct datagram parsed;

	randombytes_buf(payload, sizeof(payload));
	make_data(9, payload, sizeof(payload), sealed, &sealed_len);
	/* Index, counter and ciphertext are all authenticated (the header's zero bytes fail to parse). */
	for (size_t i = DATAGRAM_HEADER_LEN; i < sealed_len; i++) {
		sealed[i] ^= 0x80;
		if (datagram_parse(&parsed, sealed, sealed_len) == DATAGRAM_OK)
			assert_int_equal(datagram_open_data(keys.session_key, &parsed, opened, sizeof(opened),
							    &opened_len),
					 DATAGRAM_ERR_DECRYPT);
		sealed[i] ^= 0x80;
	}
}

static void test_data_wrong_key_rejected(void **state)
{
	uint8_t other_key[NOISE_KEY_LEN];
	uint8_t sealed[DATAGRAM_DATA_OVERHEAD + 5];
	uint8_t opened[5];
	size_t sealed_len, opened_len;
	struct datagram parsed;

	randombytes_buf(other_key, sizeof(other_key));
	make_data(1, (const uint8_t *)"hello", 5, sealed, &sealed_len);
	assert_int_equal(datagram_parse(&parsed, sealed, sealed_len), DATAGRAM_OK);
	assert_int_equal(datagram_open_data(other_key, &parsed, opened, sizeof(opened), &opened_len),
			 DATAGRAM_ERR_DECRYPT);
}

static void test_data_truncated_rejected(void **state)
{
	uint8_t sealed[DATAGRAM_DATA_OVERHEAD + 5];
	uint8_t opened[5];
	size_t sealed_len, opened_len;
	struct datagram parsed;

	make_data(1, (const uint8_t *)"hello", 5, sealed, &sealed_len);
	for (size_t len = DATAGRAM_DATA_OVERHEAD; len < sealed_len; len++) {
		assert_int_equal(datagram_parse(&parsed, sealed, len), DATAGRAM_OK);
		assert_int_equal(datagram_open_data(keys.session_key, &parsed, opened, sizeof(opened), &opened_len),
				 DATAGRAM_ERR_DECRYPT);
	}
	assert_int_equal(datagram_parse(&parsed, sealed, DATAGRAM_DATA_OVERHEAD - 1), DATAGRAM_ERR_SHORT);
}

static void test_data_buffer_too_small(void **state)
{
	uint8_t sealed[DATAGRAM_DATA_OVERHEAD + 5];
	uint8_t opened[5];
	size_t sealed_len, opened_len;
	struct datagram parsed;

	make_data(1, (const uint8_t *)"hello", 5, sealed, &sealed_len);
	assert_int_equal(datagram_parse(&parsed, sealed, sealed_len), DATAGRAM_OK);
	assert_int_equal(datagram_open_data(keys.session_key, &parsed, opened, 4, &opened_len), DATAGRAM_ERR_BUFFER);
}

static void test_counter_limit(void **state)
{
	uint8_t sealed[DATAGRAM_DATA_OVERHEAD];
	uint8_t opened[1];
	size_t sealed_len, opened_len;
	struct datagram parsed;

	make_data(DATAGRAM_COUNTER_LIMIT - 1, NULL, 0, sealed, &sealed_len);
	assert_int_equal(datagram_parse(&parsed, sealed, sealed_len), DATAGRAM_OK);
	assert_int_equal(datagram_open_data(keys.session_key, &parsed, opened, 0, &opened_len), DATAGRAM_OK);

	assert_int_equal(datagram_seal_data(keys.session_key, 1, DATAGRAM_COUNTER_LIMIT, NULL, 0, sealed, &sealed_len),
			 DATAGRAM_ERR_COUNTER);
	assert_int_equal(sealed_len, 0);
	assert_int_equal(datagram_seal_data(keys.session_key, 1, UINT64_MAX, NULL, 0, sealed, &sealed_len),
			 DATAGRAM_ERR_COUNTER);

	/* A datagram that claims a counter at the limit is rejected before any decryption. */
	make_data(5, NULL, 0, sealed, &sealed_len);
	memset(sealed + DATAGRAM_HEADER_LEN + DATAGRAM_INDEX_LEN, 0xff, DATAGRAM_COUNTER_LEN);
	assert_int_equal(datagram_parse(&parsed, sealed, sealed_len), DATAGRAM_ERR_COUNTER);
}

static void test_seal_rejects_large_payload(void **state)
{
	static uint8_t payload[DATAGRAM_MAX_PAYLOAD_LEN + 1];
	static uint8_t sealed[DATAGRAM_MAX_LEN + 64];
	size_t sealed_len;

	assert_int_equal(datagram_seal_data(keys.session_key, 1, 0, payload, sizeof(payload), sealed, &sealed_len),
			 DATAGRAM_ERR_LONG);
}

static void test_consume_wrong_type_rejected(void **state)
{
	struct noise_handshake hs;
	uint8_t sealed[DATAGRAM_DATA_OVERHEAD];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	size_t sealed_len;
	struct datagram parsed;

	make_data(0, NULL, 0, sealed, &sealed_len);
	assert_int_equal(datagram_parse(&parsed, sealed, sealed_len), DATAGRAM_OK);
	assert_int_equal(datagram_consume_initiation(&hs, keys.responder_priv, &parsed, timestamp), NOISE_ERR_LENGTH);
	assert_int_equal(datagram_consume_response(&hs, &parsed), NOISE_ERR_LENGTH);
}

static void test_result_strings(void **state)
{
	assert_string_equal(datagram_result_string(DATAGRAM_ERR_DECRYPT), "datagram failed to authenticate");
	assert_string_equal(datagram_result_string(DATAGRAM_ERR_TYPE), "unknown datagram type");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_handshake_round_trip),
		cmocka_unit_test(test_psk_mismatch_fails_response),
		cmocka_unit_test(test_tcp_initiation_rejected),
		cmocka_unit_test(test_initiation_for_other_host_rejected),
		cmocka_unit_test(test_tampered_initiation_rejected),
		cmocka_unit_test(test_parse_empty_and_header),
		cmocka_unit_test(test_parse_unknown_types),
		cmocka_unit_test(test_parse_handshake_lengths),
		cmocka_unit_test(test_parse_data_lengths),
		cmocka_unit_test(test_data_round_trip),
		cmocka_unit_test(test_keepalive_round_trip),
		cmocka_unit_test(test_data_tampering_rejected),
		cmocka_unit_test(test_data_wrong_key_rejected),
		cmocka_unit_test(test_data_truncated_rejected),
		cmocka_unit_test(test_data_buffer_too_small),
		cmocka_unit_test(test_counter_limit),
		cmocka_unit_test(test_seal_rejects_large_payload),
		cmocka_unit_test(test_consume_wrong_type_rejected),
		cmocka_unit_test(test_result_strings),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup_keys, NULL);
}
