/* The handshake messages as framed on the wire (common/handshake.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

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
};

static struct keys keys;

static int setup_keys(void **state)
{
	randombytes_buf(keys.initiator_priv, NOISE_KEY_LEN);
	randombytes_buf(keys.responder_priv, NOISE_KEY_LEN);
	randombytes_buf(keys.psk, NOISE_KEY_LEN);
	randombytes_buf(keys.ephemeral, NOISE_KEY_LEN);
	noise_public_key(keys.initiator_pub, keys.initiator_priv);
	noise_public_key(keys.responder_pub, keys.responder_priv);
	replay_timestamp_encode(keys.timestamp, 1764878400, 123456789);
	return 0;
}

static void make_initiation(struct noise_handshake *initiator, const uint8_t *psk,
			    uint8_t out[WIRE_INITIATION_LEN])
{
	assert_int_equal(handshake_create_initiation(initiator, keys.initiator_priv, keys.responder_pub,
						     psk, keys.ephemeral, keys.timestamp, out),
			 NOISE_OK);
}

static void test_sizes_match_wire_constants(void **state)
{
	assert_int_equal(WIRE_INITIATION_LEN, 112);
	assert_int_equal(WIRE_RESPONSE_LEN, 52);
}

static void test_round_trip_with_psk(void **state)
{
	struct noise_handshake initiator, responder;
	struct noise_cipher i_send, i_receive, r_send, r_receive;
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t message[] = "startup packet";
	uint8_t sealed[sizeof(message) + NOISE_TAG_LEN];
	uint8_t opened[sizeof(message)];

	make_initiation(&initiator, keys.psk, initiation);
	assert_int_equal(initiation[0], WIRE_TYPE_INITIATION);
	assert_int_equal(initiation[1] | initiation[2] | initiation[3], 0);

	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      sizeof(initiation), timestamp),
			 NOISE_OK);
	assert_memory_equal(responder.rs, keys.initiator_pub, NOISE_KEY_LEN);
	assert_memory_equal(timestamp, keys.timestamp, WIRE_TIMESTAMP_LEN);

	assert_int_equal(handshake_create_response(&responder, keys.psk, keys.ephemeral, response), NOISE_OK);
	assert_int_equal(response[0], WIRE_TYPE_RESPONSE);
	assert_int_equal(handshake_consume_response(&initiator, response, sizeof(response)), NOISE_OK);

	assert_int_equal(noise_handshake_split(&initiator, &i_send, &i_receive), NOISE_OK);
	assert_int_equal(noise_handshake_split(&responder, &r_send, &r_receive), NOISE_OK);
	assert_int_equal(noise_cipher_encrypt(&i_send, NULL, 0, message, sizeof(message), sealed), NOISE_OK);
	assert_int_equal(noise_cipher_decrypt(&r_receive, NULL, 0, sealed, sizeof(sealed), opened), NOISE_OK);
	assert_memory_equal(opened, message, sizeof(message));
}

static void test_round_trip_without_psk(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	make_initiation(&initiator, NULL, initiation);
	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      sizeof(initiation), timestamp),
			 NOISE_OK);
	assert_int_equal(handshake_create_response(&responder, NULL, keys.ephemeral, response), NOISE_OK);
	assert_int_equal(handshake_consume_response(&initiator, response, sizeof(response)), NOISE_OK);
}

static void test_psk_on_one_side_only_fails(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	make_initiation(&initiator, NULL, initiation);
	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      sizeof(initiation), timestamp),
			 NOISE_OK);
	assert_int_equal(handshake_create_response(&responder, keys.psk, keys.ephemeral, response), NOISE_OK);
	assert_int_equal(handshake_consume_response(&initiator, response, sizeof(response)), NOISE_ERR_DECRYPT);
}

static void test_initiation_for_other_responder_fails(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t other_priv[NOISE_KEY_LEN];
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	randombytes_buf(other_priv, sizeof(other_priv));
	make_initiation(&initiator, keys.psk, initiation);
	assert_int_equal(handshake_consume_initiation(&responder, other_priv, initiation, sizeof(initiation),
						      timestamp),
			 NOISE_ERR_DECRYPT);
}

static void test_initiation_header_checked(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	make_initiation(&initiator, keys.psk, initiation);

	initiation[0] = WIRE_TYPE_RESPONSE;
	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      sizeof(initiation), timestamp),
			 NOISE_ERR_LENGTH);
	initiation[0] = WIRE_TYPE_INITIATION;
	initiation[3] = 1;
	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      sizeof(initiation), timestamp),
			 NOISE_ERR_LENGTH);
}

static void test_initiation_length_checked(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[WIRE_INITIATION_LEN + 1];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	make_initiation(&initiator, keys.psk, initiation);
	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      WIRE_INITIATION_LEN - 1, timestamp),
			 NOISE_ERR_LENGTH);
	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      WIRE_INITIATION_LEN + 1, timestamp),
			 NOISE_ERR_LENGTH);
}

static void test_response_header_checked(void **state)
{
	struct noise_handshake initiator, responder;
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	make_initiation(&initiator, keys.psk, initiation);
	assert_int_equal(handshake_consume_initiation(&responder, keys.responder_priv, initiation,
						      sizeof(initiation), timestamp),
			 NOISE_OK);
	assert_int_equal(handshake_create_response(&responder, keys.psk, keys.ephemeral, response), NOISE_OK);
	response[0] = WIRE_TYPE_INITIATION;
	assert_int_equal(handshake_consume_response(&initiator, response, sizeof(response)), NOISE_ERR_LENGTH);
	response[0] = WIRE_TYPE_RESPONSE;
	assert_int_equal(handshake_consume_response(&initiator, response, sizeof(response) - 1), NOISE_ERR_LENGTH);
}

static void test_prefix_check(void **state)
{
	const uint8_t good[] = { 1, 0, 0, 0, 0xff };
	const uint8_t bad_type[] = { 'G', 'E', 'T', ' ' };
	const uint8_t bad_zero[] = { 1, 0, 7 };

	assert_true(handshake_initiation_prefix_valid(good, 0));
	assert_true(handshake_initiation_prefix_valid(good, 1));
	assert_true(handshake_initiation_prefix_valid(good, sizeof(good)));
	assert_false(handshake_initiation_prefix_valid(bad_type, 1));
	assert_false(handshake_initiation_prefix_valid(bad_zero, sizeof(bad_zero)));
	assert_true(handshake_initiation_prefix_valid(bad_zero, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_match_wire_constants),
		cmocka_unit_test(test_round_trip_with_psk),
		cmocka_unit_test(test_round_trip_without_psk),
		cmocka_unit_test(test_psk_on_one_side_only_fails),
		cmocka_unit_test(test_initiation_for_other_responder_fails),
		cmocka_unit_test(test_initiation_header_checked),
		cmocka_unit_test(test_initiation_length_checked),
		cmocka_unit_test(test_response_header_checked),
		cmocka_unit_test(test_prefix_check),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup_keys, NULL);
}
