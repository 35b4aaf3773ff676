/*
 * Unit tests of common/noise.c: the IKpsk2 handshake between two ends with
 * random keys, its failure cases, and the transport cipher. The published
 * vectors are checked by noise_vectors.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "noise.h"

#define PROLOGUE "walguard/1 tcp"
#define PAYLOAD_LEN 12
#define RESPONSE_PAYLOAD "ok"

struct fixture {
	struct noise_handshake initiator;
	struct noise_handshake responder;
	struct noise_cipher initiator_send;
	struct noise_cipher initiator_receive;
	struct noise_cipher responder_send;
	struct noise_cipher responder_receive;
	uint8_t initiator_priv[NOISE_KEY_LEN];
	uint8_t initiator_pub[NOISE_KEY_LEN];
	uint8_t responder_priv[NOISE_KEY_LEN];
	uint8_t responder_pub[NOISE_KEY_LEN];
	uint8_t initiator_ephemeral[NOISE_KEY_LEN];
	uint8_t responder_ephemeral[NOISE_KEY_LEN];
	uint8_t psk[NOISE_KEY_LEN];
	uint8_t payload[PAYLOAD_LEN];
	uint8_t initiation[NOISE_IK_INITIATION_LEN(PAYLOAD_LEN)];
	uint8_t response[NOISE_IK_RESPONSE_LEN(sizeof(RESPONSE_PAYLOAD) - 1)];
};

static int fixture_setup(void **state)
{
	struct fixture *f = sodium_malloc(sizeof(*f));

	if (f == NULL)
		return -1;
	memset(f, 0, sizeof(*f));
	randombytes_buf(f->initiator_priv, NOISE_KEY_LEN);
	randombytes_buf(f->responder_priv, NOISE_KEY_LEN);
	randombytes_buf(f->initiator_ephemeral, NOISE_KEY_LEN);
	randombytes_buf(f->responder_ephemeral, NOISE_KEY_LEN);
	randombytes_buf(f->psk, NOISE_KEY_LEN);
	randombytes_buf(f->payload, PAYLOAD_LEN);
	noise_public_key(f->initiator_pub, f->initiator_priv);
	noise_public_key(f->responder_pub, f->responder_priv);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	noise_handshake_wipe(&f->initiator);
	noise_handshake_wipe(&f->responder);
	noise_cipher_wipe(&f->initiator_send);
	noise_cipher_wipe(&f->initiator_receive);
	noise_cipher_wipe(&f->responder_send);
	noise_cipher_wipe(&f->responder_receive);
	sodium_free(f);
	return 0;
}

/* Start both ends of an IKpsk2 handshake. The responder gets its PSK later. */
static void start_both(struct fixture *f)
{
	assert_int_equal(noise_ik_init(&f->initiator, NOISE_INITIATOR, true, (const uint8_t *)PROLOGUE,
				       strlen(PROLOGUE), f->initiator_priv, f->responder_pub, f->psk),
			 NOISE_OK);
	assert_int_equal(noise_ik_init(&f->responder, NOISE_RESPONDER, true, (const uint8_t *)PROLOGUE,
				       strlen(PROLOGUE), f->responder_priv, NULL, NULL),
			 NOISE_OK);
}

static void write_initiation(struct fixture *f)
{
	assert_int_equal(noise_ik_write_initiation(&f->initiator, f->initiator_ephemeral, f->payload,
						   PAYLOAD_LEN, f->initiation),
			 NOISE_OK);
}

static void read_initiation(struct fixture *f)
{
	uint8_t payload[PAYLOAD_LEN];

	assert_int_equal(noise_ik_read_initiation(&f->responder, f->initiation, sizeof(f->initiation),
						  payload),
			 NOISE_OK);
	assert_memory_equal(payload, f->payload, PAYLOAD_LEN);
}

static void write_response(struct fixture *f)
{
	noise_handshake_set_psk(&f->responder, f->psk);
	assert_int_equal(noise_ik_write_response(&f->responder, f->responder_ephemeral,
						 (const uint8_t *)RESPONSE_PAYLOAD,
						 strlen(RESPONSE_PAYLOAD), f->response),
			 NOISE_OK);
}

/* Run the handshake up to a response that the initiator has not read yet. */
static void run_until_response(struct fixture *f)
{
	start_both(f);
	write_initiation(f);
	read_initiation(f);
	write_response(f);
}

static void send_and_receive(struct noise_cipher *send, struct noise_cipher *receive,
			     const char *text)
{
	size_t len = strlen(text);
	uint8_t message[64];
	uint8_t received[64];

	assert_true(len + NOISE_TAG_LEN <= sizeof(message));
	assert_int_equal(noise_cipher_encrypt(send, NULL, 0, (const uint8_t *)text, len, message), NOISE_OK);
	assert_memory_not_equal(message, text, len);
	assert_int_equal(noise_cipher_decrypt(receive, NULL, 0, message, len + NOISE_TAG_LEN, received),
			 NOISE_OK);
	assert_memory_equal(received, text, len);
}

/* The handshake */

static void test_ikpsk2_round_trip(void **state)
{
	struct fixture *f = *state;
	uint8_t payload[sizeof(RESPONSE_PAYLOAD) - 1];

	run_until_response(f);
	assert_int_equal(f->responder.state, NOISE_HS_RESPONSE_DONE);
	assert_memory_equal(f->responder.rs, f->initiator_pub, NOISE_KEY_LEN);

	assert_int_equal(noise_ik_read_response(&f->initiator, f->response, sizeof(f->response), payload),
			 NOISE_OK);
	assert_memory_equal(payload, RESPONSE_PAYLOAD, sizeof(payload));
	assert_int_equal(f->initiator.state, NOISE_HS_RESPONSE_DONE);
	assert_memory_equal(f->initiator.h, f->responder.h, NOISE_HASH_LEN);

	assert_int_equal(noise_handshake_split(&f->initiator, &f->initiator_send, &f->initiator_receive),
			 NOISE_OK);
	assert_int_equal(noise_handshake_split(&f->responder, &f->responder_send, &f->responder_receive),
			 NOISE_OK);
	assert_memory_equal(f->initiator_send.key, f->responder_receive.key, NOISE_KEY_LEN);
	assert_memory_equal(f->responder_send.key, f->initiator_receive.key, NOISE_KEY_LEN);
	assert_memory_not_equal(f->initiator_send.key, f->initiator_receive.key, NOISE_KEY_LEN);

	send_and_receive(&f->initiator_send, &f->responder_receive, "first from the initiator");
	send_and_receive(&f->responder_send, &f->initiator_receive, "first from the responder");
	send_and_receive(&f->initiator_send, &f->responder_receive, "second from the initiator");
	send_and_receive(&f->responder_send, &f->initiator_receive, "second from the responder");
	assert_int_equal(f->initiator_send.nonce, 2);
	assert_int_equal(f->initiator_receive.nonce, 2);
}

static void test_ik_round_trip_without_psk(void **state)
{
	struct fixture *f = *state;
	uint8_t received[PAYLOAD_LEN];
	uint8_t response[NOISE_IK_RESPONSE_LEN(0)];

	assert_int_equal(noise_ik_init(&f->initiator, NOISE_INITIATOR, false, NULL, 0, f->initiator_priv,
				       f->responder_pub, NULL),
			 NOISE_OK);
	assert_int_equal(noise_ik_init(&f->responder, NOISE_RESPONDER, false, NULL, 0, f->responder_priv,
				       NULL, NULL),
			 NOISE_OK);
	write_initiation(f);
	assert_int_equal(noise_ik_read_initiation(&f->responder, f->initiation, sizeof(f->initiation),
						  received),
			 NOISE_OK);
	assert_memory_equal(received, f->payload, PAYLOAD_LEN);
	assert_int_equal(noise_ik_write_response(&f->responder, f->responder_ephemeral, NULL, 0, response),
			 NOISE_OK);
	assert_int_equal(noise_ik_read_response(&f->initiator, response, sizeof(response), NULL), NOISE_OK);
	assert_memory_equal(f->initiator.h, f->responder.h, NOISE_HASH_LEN);
}

static void test_ik_and_ikpsk2_differ(void **state)
{
	struct fixture *f = *state;
	uint8_t initiation_ik[sizeof(f->initiation)];

	assert_int_equal(noise_ik_init(&f->initiator, NOISE_INITIATOR, false, (const uint8_t *)PROLOGUE,
				       strlen(PROLOGUE), f->initiator_priv, f->responder_pub, NULL),
			 NOISE_OK);
	write_initiation(f);
	memcpy(initiation_ik, f->initiation, sizeof(initiation_ik));

	start_both(f);
	write_initiation(f);
	/* Same ephemeral key, but the protocol name goes into h. */
	assert_memory_equal(initiation_ik, f->initiation, NOISE_KEY_LEN);
	assert_memory_not_equal(initiation_ik + NOISE_KEY_LEN, f->initiation + NOISE_KEY_LEN,
				sizeof(initiation_ik) - NOISE_KEY_LEN);
}

static void test_psk_mismatch_fails_response(void **state)
{
	struct fixture *f = *state;
	uint8_t other_psk[NOISE_KEY_LEN];
	uint8_t payload[sizeof(RESPONSE_PAYLOAD) - 1];

	start_both(f);
	write_initiation(f);
	read_initiation(f);

	memcpy(other_psk, f->psk, NOISE_KEY_LEN);
	other_psk[0] ^= 0x01;
	noise_handshake_set_psk(&f->responder, other_psk);
	assert_int_equal(noise_ik_write_response(&f->responder, f->responder_ephemeral,
						 (const uint8_t *)RESPONSE_PAYLOAD,
						 strlen(RESPONSE_PAYLOAD), f->response),
			 NOISE_OK);

	assert_int_equal(noise_ik_read_response(&f->initiator, f->response, sizeof(f->response), payload),
			 NOISE_ERR_DECRYPT);
	assert_int_equal(f->initiator.state, NOISE_HS_FAILED);
}

static void test_responder_without_psk_fails(void **state)
{
	struct fixture *f = *state;
	uint8_t payload[sizeof(RESPONSE_PAYLOAD) - 1];

	start_both(f);
	write_initiation(f);
	read_initiation(f);
	/* No noise_handshake_set_psk(): the responder uses 32 zero bytes. */
	assert_int_equal(noise_ik_write_response(&f->responder, f->responder_ephemeral,
						 (const uint8_t *)RESPONSE_PAYLOAD,
						 strlen(RESPONSE_PAYLOAD), f->response),
			 NOISE_OK);
	assert_int_equal(noise_ik_read_response(&f->initiator, f->response, sizeof(f->response), payload),
			 NOISE_ERR_DECRYPT);
}

/* Every single flipped bit of the initiation must be detected. */
static void test_initiation_bit_flip_fails(void **state)
{
	struct fixture *f = *state;
	uint8_t tampered[sizeof(f->initiation)];
	uint8_t payload[PAYLOAD_LEN];
	size_t bit;

	start_both(f);
	write_initiation(f);

	for (bit = 0; bit < sizeof(tampered) * 8; bit++) {
		assert_int_equal(noise_ik_init(&f->responder, NOISE_RESPONDER, true,
					       (const uint8_t *)PROLOGUE, strlen(PROLOGUE),
					       f->responder_priv, NULL, NULL),
				 NOISE_OK);
		memcpy(tampered, f->initiation, sizeof(tampered));
		tampered[bit / 8] ^= (uint8_t)(1u << (bit % 8));

		assert_int_equal(noise_ik_read_initiation(&f->responder, tampered, sizeof(tampered), payload),
				 NOISE_ERR_DECRYPT);
		assert_int_equal(f->responder.state, NOISE_HS_FAILED);
	}
}

static void test_response_bit_flip_fails(void **state)
{
	struct fixture *f = *state;
	uint8_t tampered[sizeof(f->response)];
	uint8_t payload[sizeof(RESPONSE_PAYLOAD) - 1];
	struct noise_handshake *saved = sodium_malloc(sizeof(*saved));
	size_t bit;

	assert_non_null(saved);
	run_until_response(f);
	memcpy(saved, &f->initiator, sizeof(*saved));

	for (bit = 0; bit < sizeof(tampered) * 8; bit++) {
		memcpy(&f->initiator, saved, sizeof(*saved));
		memcpy(tampered, f->response, sizeof(tampered));
		tampered[bit / 8] ^= (uint8_t)(1u << (bit % 8));

		assert_int_equal(noise_ik_read_response(&f->initiator, tampered, sizeof(tampered), payload),
				 NOISE_ERR_DECRYPT);
	}
	noise_handshake_wipe(saved);
	sodium_free(saved);
}

static void test_prologue_mismatch_fails(void **state)
{
	struct fixture *f = *state;
	uint8_t payload[PAYLOAD_LEN];

	start_both(f);
	write_initiation(f);
	assert_int_equal(noise_ik_init(&f->responder, NOISE_RESPONDER, true, (const uint8_t *)"walguard/1 udp",
				       strlen("walguard/1 udp"), f->responder_priv, NULL, NULL),
			 NOISE_OK);
	assert_int_equal(noise_ik_read_initiation(&f->responder, f->initiation, sizeof(f->initiation),
						  payload),
			 NOISE_ERR_DECRYPT);
}

static void test_initiation_for_other_responder_fails(void **state)
{
	struct fixture *f = *state;
	uint8_t other_priv[NOISE_KEY_LEN];
	uint8_t payload[PAYLOAD_LEN];

	start_both(f);
	write_initiation(f);

	randombytes_buf(other_priv, sizeof(other_priv));
	assert_int_equal(noise_ik_init(&f->responder, NOISE_RESPONDER, true, (const uint8_t *)PROLOGUE,
				       strlen(PROLOGUE), other_priv, NULL, NULL),
			 NOISE_OK);
	assert_int_equal(noise_ik_read_initiation(&f->responder, f->initiation, sizeof(f->initiation),
						  payload),
			 NOISE_ERR_DECRYPT);
	assert_int_equal(f->responder.state, NOISE_HS_FAILED);
	sodium_memzero(other_priv, sizeof(other_priv));
}

/*
 * The messages below start with an all-zero ephemeral key, which would fail
 * with NOISE_ERR_DH if any DH ran, so NOISE_ERR_LENGTH shows that the
 * length is checked first.
 */
static void test_wrong_lengths_fail_before_crypto(void **state)
{
	struct fixture *f = *state;
	static uint8_t message[NOISE_MAX_MESSAGE_LEN + 1];
	uint8_t payload[NOISE_MAX_MESSAGE_LEN];
	uint8_t untouched[sizeof(f->initiation)];
	const size_t bad_initiation_lens[] = {
		0, NOISE_KEY_LEN, NOISE_IK_INITIATION_LEN(0) - 1, NOISE_MAX_MESSAGE_LEN + 1,
	};
	const size_t bad_response_lens[] = {
		0, NOISE_KEY_LEN, NOISE_IK_RESPONSE_LEN(0) - 1, NOISE_MAX_MESSAGE_LEN + 1,
	};
	size_t i;

	for (i = 0; i < sizeof(bad_initiation_lens) / sizeof(bad_initiation_lens[0]); i++) {
		start_both(f);
		assert_int_equal(noise_ik_read_initiation(&f->responder, message, bad_initiation_lens[i],
							  payload),
				 NOISE_ERR_LENGTH);
		assert_int_equal(f->responder.state, NOISE_HS_FAILED);
	}

	for (i = 0; i < sizeof(bad_response_lens) / sizeof(bad_response_lens[0]); i++) {
		start_both(f);
		write_initiation(f);
		assert_int_equal(noise_ik_read_response(&f->initiator, message, bad_response_lens[i], payload),
				 NOISE_ERR_LENGTH);
		assert_int_equal(f->initiator.state, NOISE_HS_FAILED);
	}

	/* A message of the maximum length passes the length check and reaches the DH. */
	start_both(f);
	assert_int_equal(noise_ik_read_initiation(&f->responder, message, NOISE_MAX_MESSAGE_LEN, payload),
			 NOISE_ERR_DH);

	/* A payload that makes the message too long leaves out untouched. */
	start_both(f);
	memset(f->initiation, 0xa5, sizeof(f->initiation));
	memcpy(untouched, f->initiation, sizeof(untouched));
	assert_int_equal(noise_ik_write_initiation(&f->initiator, f->initiator_ephemeral, message,
						   NOISE_MAX_MESSAGE_LEN - NOISE_IK_INITIATION_LEN(0) + 1,
						   f->initiation),
			 NOISE_ERR_LENGTH);
	assert_memory_equal(f->initiation, untouched, sizeof(untouched));

	start_both(f);
	write_initiation(f);
	read_initiation(f);
	memset(f->response, 0xa5, sizeof(f->response));
	memcpy(untouched, f->response, sizeof(f->response));
	assert_int_equal(noise_ik_write_response(&f->responder, f->responder_ephemeral, message,
						 NOISE_MAX_MESSAGE_LEN - NOISE_IK_RESPONSE_LEN(0) + 1,
						 f->response),
			 NOISE_ERR_LENGTH);
	assert_memory_equal(f->response, untouched, sizeof(f->response));
}

static void test_longest_payload_round_trip(void **state)
{
	struct fixture *f = *state;
	const size_t payload_len = NOISE_MAX_MESSAGE_LEN - NOISE_IK_INITIATION_LEN(0);
	static uint8_t payload[NOISE_MAX_MESSAGE_LEN];
	static uint8_t message[NOISE_MAX_MESSAGE_LEN];
	static uint8_t received[NOISE_MAX_MESSAGE_LEN];

	randombytes_buf(payload, payload_len);
	start_both(f);
	assert_int_equal(noise_ik_write_initiation(&f->initiator, f->initiator_ephemeral, payload,
						   payload_len, message),
			 NOISE_OK);
	assert_int_equal(noise_ik_read_initiation(&f->responder, message, NOISE_MAX_MESSAGE_LEN, received),
			 NOISE_OK);
	assert_memory_equal(received, payload, payload_len);
}

static void test_wrong_state_calls_fail(void **state)
{
	struct fixture *f = *state;
	uint8_t payload[PAYLOAD_LEN];

	/* The responder cannot write an initiation, nor the initiator read one. */
	start_both(f);
	assert_int_equal(noise_ik_write_initiation(&f->responder, f->responder_ephemeral, NULL, 0,
						   f->initiation),
			 NOISE_ERR_STATE);
	assert_int_equal(f->responder.state, NOISE_HS_FAILED);
	write_initiation(f);
	assert_int_equal(noise_ik_read_initiation(&f->initiator, f->initiation, sizeof(f->initiation),
						  payload),
			 NOISE_ERR_STATE);
	assert_int_equal(f->initiator.state, NOISE_HS_FAILED);

	/* A second initiation from the same handshake. */
	start_both(f);
	write_initiation(f);
	assert_int_equal(noise_ik_write_initiation(&f->initiator, f->initiator_ephemeral, f->payload,
						   PAYLOAD_LEN, f->initiation),
			 NOISE_ERR_STATE);

	/* A response before the initiation, and a split before the response. */
	start_both(f);
	assert_int_equal(noise_ik_write_response(&f->responder, f->responder_ephemeral, NULL, 0,
						 f->response),
			 NOISE_ERR_STATE);
	assert_int_equal(noise_ik_read_response(&f->initiator, f->response, NOISE_IK_RESPONSE_LEN(0),
						NULL),
			 NOISE_ERR_STATE);
	start_both(f);
	write_initiation(f);
	assert_int_equal(noise_handshake_split(&f->initiator, &f->initiator_send, &f->initiator_receive),
			 NOISE_ERR_STATE);
	assert_false(f->initiator_send.has_key);

	/* The initiator cannot write a response. */
	start_both(f);
	write_initiation(f);
	assert_int_equal(noise_ik_write_response(&f->initiator, f->initiator_ephemeral, NULL, 0,
						 f->response),
			 NOISE_ERR_STATE);

	/* A failed handshake stays failed. */
	start_both(f);
	write_initiation(f);
	f->initiation[NOISE_KEY_LEN] ^= 0x01;
	assert_int_equal(noise_ik_read_initiation(&f->responder, f->initiation, sizeof(f->initiation),
						  payload),
			 NOISE_ERR_DECRYPT);
	f->initiation[NOISE_KEY_LEN] ^= 0x01;
	assert_int_equal(noise_ik_read_initiation(&f->responder, f->initiation, sizeof(f->initiation),
						  payload),
			 NOISE_ERR_STATE);
	assert_int_equal(noise_ik_write_response(&f->responder, f->responder_ephemeral, NULL, 0,
						 f->response),
			 NOISE_ERR_STATE);
}

static void test_split_twice_fails(void **state)
{
	struct fixture *f = *state;
	struct noise_cipher *send = sodium_malloc(sizeof(*send));
	struct noise_cipher *receive = sodium_malloc(sizeof(*receive));
	uint8_t h[NOISE_HASH_LEN];

	assert_non_null(send);
	assert_non_null(receive);
	run_until_response(f);
	assert_int_equal(noise_handshake_split(&f->responder, &f->responder_send, &f->responder_receive),
			 NOISE_OK);
	assert_int_equal(f->responder.state, NOISE_HS_SPLIT);
	memcpy(h, f->responder.h, NOISE_HASH_LEN);
	assert_true(sodium_is_zero(f->responder.ck, NOISE_HASH_LEN));
	assert_true(sodium_is_zero(f->responder.e_priv, NOISE_KEY_LEN));
	assert_true(sodium_is_zero(f->responder.s_priv, NOISE_KEY_LEN));
	assert_true(sodium_is_zero(f->responder.psk, NOISE_KEY_LEN));
	assert_false(sodium_is_zero(h, NOISE_HASH_LEN));

	memset(send, 0, sizeof(*send));
	memset(receive, 0, sizeof(*receive));
	assert_int_equal(noise_handshake_split(&f->responder, send, receive), NOISE_ERR_STATE);
	assert_false(send->has_key);
	assert_false(receive->has_key);
	noise_cipher_wipe(send);
	noise_cipher_wipe(receive);
	sodium_free(send);
	sodium_free(receive);
}

static void test_init_role_arguments_checked(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(noise_ik_init(&f->initiator, NOISE_INITIATOR, true, NULL, 0, f->initiator_priv,
				       NULL, f->psk),
			 NOISE_ERR_STATE);
	assert_int_equal(f->initiator.state, NOISE_HS_FAILED);
	assert_int_equal(noise_ik_init(&f->responder, NOISE_RESPONDER, true, NULL, 0, f->responder_priv,
				       f->initiator_pub, NULL),
			 NOISE_ERR_STATE);
	assert_int_equal(f->responder.state, NOISE_HS_FAILED);
	assert_int_equal(noise_ik_init(&f->responder, NOISE_RESPONDER, true, NULL, 1, f->responder_priv,
				       NULL, NULL),
			 NOISE_ERR_LENGTH);
}

/* An ephemeral key at a low-order point makes the DH result all zero. */
static void test_low_order_ephemeral_fails(void **state)
{
	struct fixture *f = *state;
	/* u = 0 and u = 1 have small order, so X25519 with them gives all zeros. */
	static const uint8_t low_order_points[][NOISE_KEY_LEN] = {
		{ 0 },
		{ 1 },
	};
	uint8_t payload[NOISE_MAX_MESSAGE_LEN];
	size_t i;

	for (i = 0; i < sizeof(low_order_points) / sizeof(low_order_points[0]); i++) {
		start_both(f);
		write_initiation(f);
		memcpy(f->initiation, low_order_points[i], NOISE_KEY_LEN);
		assert_int_equal(noise_ik_read_initiation(&f->responder, f->initiation,
							  sizeof(f->initiation), payload),
				 NOISE_ERR_DH);
		assert_int_equal(f->responder.state, NOISE_HS_FAILED);

		run_until_response(f);
		memcpy(f->response, low_order_points[i], NOISE_KEY_LEN);
		assert_int_equal(noise_ik_read_response(&f->initiator, f->response, sizeof(f->response),
							payload),
				 NOISE_ERR_DH);
		assert_int_equal(f->initiator.state, NOISE_HS_FAILED);
	}

	/* A responder static key at a low-order point fails the initiator's es. */
	assert_int_equal(noise_ik_init(&f->initiator, NOISE_INITIATOR, true, NULL, 0, f->initiator_priv,
				       low_order_points[0], f->psk),
			 NOISE_OK);
	assert_int_equal(noise_ik_write_initiation(&f->initiator, f->initiator_ephemeral, NULL, 0,
						   f->initiation),
			 NOISE_ERR_DH);
}

/* The cipher */

static void cipher_set(struct noise_cipher *cipher, const uint8_t key[NOISE_KEY_LEN], uint64_t nonce)
{
	memcpy(cipher->key, key, NOISE_KEY_LEN);
	cipher->nonce = nonce;
	cipher->has_key = true;
}

/* The ChaChaPoly nonce is 4 zero bytes and the counter in little-endian order. */
static void test_cipher_nonce_encoding(void **state)
{
	struct noise_cipher cipher;
	uint8_t key[NOISE_KEY_LEN];
	const uint8_t nonce[12] = { 0, 0, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01 };
	const uint8_t ad[] = "ad";
	const uint8_t plaintext[] = "plaintext";
	uint8_t expected[sizeof(plaintext) + NOISE_TAG_LEN];
	uint8_t actual[sizeof(plaintext) + NOISE_TAG_LEN];

	randombytes_buf(key, sizeof(key));
	cipher_set(&cipher, key, UINT64_C(0x0102030405060708));
	crypto_aead_chacha20poly1305_ietf_encrypt(expected, NULL, plaintext, sizeof(plaintext), ad,
						  sizeof(ad), NULL, nonce, key);
	assert_int_equal(noise_cipher_encrypt(&cipher, ad, sizeof(ad), plaintext, sizeof(plaintext), actual),
			 NOISE_OK);
	assert_memory_equal(actual, expected, sizeof(expected));
	assert_true(cipher.nonce == UINT64_C(0x0102030405060709));
	noise_cipher_wipe(&cipher);
}

static void test_cipher_in_place(void **state)
{
	struct noise_cipher send;
	struct noise_cipher receive;
	uint8_t key[NOISE_KEY_LEN];
	const char text[] = "in place";
	uint8_t buffer[sizeof(text) + NOISE_TAG_LEN];

	randombytes_buf(key, sizeof(key));
	cipher_set(&send, key, 0);
	cipher_set(&receive, key, 0);
	memcpy(buffer, text, sizeof(text));

	assert_int_equal(noise_cipher_encrypt(&send, NULL, 0, buffer, sizeof(text), buffer), NOISE_OK);
	assert_memory_not_equal(buffer, text, sizeof(text));
	assert_int_equal(noise_cipher_decrypt(&receive, NULL, 0, buffer, sizeof(buffer), buffer), NOISE_OK);
	assert_memory_equal(buffer, text, sizeof(text));
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&receive);
}

static void test_cipher_decrypt_failure_keeps_nonce(void **state)
{
	struct noise_cipher send;
	struct noise_cipher receive;
	uint8_t key[NOISE_KEY_LEN];
	const uint8_t text[] = "payload";
	uint8_t message[sizeof(text) + NOISE_TAG_LEN];
	uint8_t tampered[sizeof(message)];
	uint8_t received[sizeof(text)];

	randombytes_buf(key, sizeof(key));
	cipher_set(&send, key, 7);
	cipher_set(&receive, key, 7);
	assert_int_equal(noise_cipher_encrypt(&send, NULL, 0, text, sizeof(text), message), NOISE_OK);

	memcpy(tampered, message, sizeof(message));
	tampered[sizeof(tampered) - 1] ^= 0x80;
	assert_int_equal(noise_cipher_decrypt(&receive, NULL, 0, tampered, sizeof(tampered), received),
			 NOISE_ERR_DECRYPT);
	assert_int_equal(receive.nonce, 7);

	/* Authentic but with other associated data. */
	assert_int_equal(noise_cipher_decrypt(&receive, (const uint8_t *)"x", 1, message, sizeof(message),
					      received),
			 NOISE_ERR_DECRYPT);
	assert_int_equal(receive.nonce, 7);

	assert_int_equal(noise_cipher_decrypt(&receive, NULL, 0, message, sizeof(message), received),
			 NOISE_OK);
	assert_memory_equal(received, text, sizeof(text));
	assert_int_equal(receive.nonce, 8);
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&receive);
}

static void test_cipher_lengths_checked(void **state)
{
	struct noise_cipher cipher;
	uint8_t key[NOISE_KEY_LEN];
	static uint8_t buffer[NOISE_MAX_MESSAGE_LEN + 1];

	randombytes_buf(key, sizeof(key));
	cipher_set(&cipher, key, 0);
	assert_int_equal(noise_cipher_decrypt(&cipher, NULL, 0, buffer, NOISE_TAG_LEN - 1, buffer),
			 NOISE_ERR_LENGTH);
	assert_int_equal(noise_cipher_decrypt(&cipher, NULL, 0, buffer, NOISE_MAX_MESSAGE_LEN + 1, buffer),
			 NOISE_ERR_LENGTH);
	assert_int_equal(noise_cipher_encrypt(&cipher, NULL, 0, buffer,
					      NOISE_MAX_MESSAGE_LEN - NOISE_TAG_LEN + 1, buffer),
			 NOISE_ERR_LENGTH);
	assert_int_equal(cipher.nonce, 0);

	assert_int_equal(noise_cipher_encrypt(&cipher, NULL, 0, buffer, NOISE_MAX_MESSAGE_LEN - NOISE_TAG_LEN,
					      buffer),
			 NOISE_OK);
	assert_int_equal(cipher.nonce, 1);
	noise_cipher_wipe(&cipher);
}

static void test_cipher_without_key_copies(void **state)
{
	struct noise_cipher cipher = { 0 };
	const uint8_t text[] = "clear";
	uint8_t out[sizeof(text)];

	assert_int_equal(noise_cipher_encrypt(&cipher, NULL, 0, text, sizeof(text), out), NOISE_OK);
	assert_memory_equal(out, text, sizeof(text));
	memset(out, 0, sizeof(out));
	assert_int_equal(noise_cipher_decrypt(&cipher, NULL, 0, text, sizeof(text), out), NOISE_OK);
	assert_memory_equal(out, text, sizeof(text));
	assert_int_equal(cipher.nonce, 0);
}

static void test_cipher_nonce_exhaustion(void **state)
{
	struct noise_cipher send;
	struct noise_cipher receive;
	uint8_t key[NOISE_KEY_LEN];
	const uint8_t text[] = "last";
	uint8_t message[sizeof(text) + NOISE_TAG_LEN];
	uint8_t untouched[sizeof(message)];
	uint8_t received[sizeof(text)];
	int attempt;

	randombytes_buf(key, sizeof(key));
	cipher_set(&send, key, NOISE_NONCE_MAX);
	cipher_set(&receive, key, NOISE_NONCE_MAX);

	assert_int_equal(noise_cipher_encrypt(&send, NULL, 0, text, sizeof(text), message), NOISE_OK);
	assert_true(send.nonce == UINT64_MAX);
	assert_int_equal(noise_cipher_decrypt(&receive, NULL, 0, message, sizeof(message), received),
			 NOISE_OK);
	assert_memory_equal(received, text, sizeof(text));
	assert_true(receive.nonce == UINT64_MAX);

	/* Every later call fails, leaves out alone and never moves the nonce. */
	memset(message, 0x5a, sizeof(message));
	memcpy(untouched, message, sizeof(message));
	for (attempt = 0; attempt < 3; attempt++) {
		assert_int_equal(noise_cipher_encrypt(&send, NULL, 0, text, sizeof(text), message),
				 NOISE_ERR_NONCE_EXHAUSTED);
		assert_memory_equal(message, untouched, sizeof(message));
		assert_true(send.nonce == UINT64_MAX);
		assert_int_equal(noise_cipher_decrypt(&receive, NULL, 0, message, sizeof(message), received),
				 NOISE_ERR_NONCE_EXHAUSTED);
		assert_true(receive.nonce == UINT64_MAX);
	}
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&receive);
}

static void test_cipher_rekey(void **state)
{
	struct noise_cipher send;
	struct noise_cipher receive;
	struct noise_cipher old_send;
	uint8_t key[NOISE_KEY_LEN];
	uint8_t expected_key[NOISE_KEY_LEN + NOISE_TAG_LEN];
	const uint8_t zeros[NOISE_KEY_LEN] = { 0 };
	const uint8_t rekey_nonce[12] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t text[] = "after rekey";
	uint8_t message[sizeof(text) + NOISE_TAG_LEN];
	uint8_t old_message[sizeof(message)];
	uint8_t received[sizeof(text)];

	randombytes_buf(key, sizeof(key));
	cipher_set(&send, key, 5);
	cipher_set(&receive, key, 5);
	old_send = send;

	noise_cipher_rekey(&send);
	noise_cipher_rekey(&receive);
	assert_int_equal(send.nonce, 5);
	assert_memory_equal(send.key, receive.key, NOISE_KEY_LEN);
	assert_memory_not_equal(send.key, key, NOISE_KEY_LEN);

	/* REKEY(k) is the first 32 bytes of ENCRYPT(k, 2^64-1, empty ad, zeros). */
	crypto_aead_chacha20poly1305_ietf_encrypt(expected_key, NULL, zeros, sizeof(zeros), NULL, 0, NULL,
						  rekey_nonce, key);
	assert_memory_equal(send.key, expected_key, NOISE_KEY_LEN);

	assert_int_equal(noise_cipher_encrypt(&send, NULL, 0, text, sizeof(text), message), NOISE_OK);
	assert_int_equal(noise_cipher_encrypt(&old_send, NULL, 0, text, sizeof(text), old_message), NOISE_OK);
	assert_memory_not_equal(message, old_message, sizeof(message));
	assert_int_equal(noise_cipher_decrypt(&receive, NULL, 0, message, sizeof(message), received),
			 NOISE_OK);
	assert_memory_equal(received, text, sizeof(text));

	/* Only one side rekeyed: the other can no longer read it. */
	noise_cipher_rekey(&send);
	assert_int_equal(noise_cipher_encrypt(&send, NULL, 0, text, sizeof(text), message), NOISE_OK);
	assert_int_equal(noise_cipher_decrypt(&receive, NULL, 0, message, sizeof(message), received),
			 NOISE_ERR_DECRYPT);

	noise_cipher_wipe(&send);
	noise_cipher_wipe(&receive);
	noise_cipher_wipe(&old_send);
	sodium_memzero(expected_key, sizeof(expected_key));
}

static void test_split_ciphers_rekey_in_sync(void **state)
{
	struct fixture *f = *state;
	struct noise_cipher not_rekeyed;
	const uint8_t text[] = "same text";
	uint8_t message[sizeof(text) + NOISE_TAG_LEN];
	uint8_t not_rekeyed_message[sizeof(message)];
	uint8_t payload[sizeof(RESPONSE_PAYLOAD) - 1];

	run_until_response(f);
	assert_int_equal(noise_ik_read_response(&f->initiator, f->response, sizeof(f->response), payload),
			 NOISE_OK);
	assert_int_equal(noise_handshake_split(&f->initiator, &f->initiator_send, &f->initiator_receive),
			 NOISE_OK);
	assert_int_equal(noise_handshake_split(&f->responder, &f->responder_send, &f->responder_receive),
			 NOISE_OK);
	send_and_receive(&f->initiator_send, &f->responder_receive, "before rekey");
	send_and_receive(&f->responder_send, &f->initiator_receive, "before rekey");

	not_rekeyed = f->initiator_send;
	noise_cipher_rekey(&f->initiator_send);
	noise_cipher_rekey(&f->responder_receive);
	noise_cipher_rekey(&f->responder_send);
	noise_cipher_rekey(&f->initiator_receive);

	assert_int_equal(noise_cipher_encrypt(&not_rekeyed, NULL, 0, text, sizeof(text), not_rekeyed_message),
			 NOISE_OK);
	assert_int_equal(noise_cipher_encrypt(&f->initiator_send, NULL, 0, text, sizeof(text), message),
			 NOISE_OK);
	assert_memory_not_equal(message, not_rekeyed_message, sizeof(message));
	assert_int_equal(noise_cipher_decrypt(&f->responder_receive, NULL, 0, message, sizeof(message),
					      message),
			 NOISE_OK);
	assert_memory_equal(message, text, sizeof(text));

	send_and_receive(&f->responder_send, &f->initiator_receive, "after rekey");
	send_and_receive(&f->initiator_send, &f->responder_receive, "after rekey");
	noise_cipher_wipe(&not_rekeyed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ikpsk2_round_trip, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_ik_round_trip_without_psk, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_ik_and_ikpsk2_differ, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_psk_mismatch_fails_response, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_responder_without_psk_fails, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_initiation_bit_flip_fails, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_response_bit_flip_fails, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_prologue_mismatch_fails, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_initiation_for_other_responder_fails, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_lengths_fail_before_crypto, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_longest_payload_round_trip, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_state_calls_fail, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_split_twice_fails, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_init_role_arguments_checked, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_low_order_ephemeral_fails, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_split_ciphers_rekey_in_sync, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_cipher_nonce_encoding),
		cmocka_unit_test(test_cipher_in_place),
		cmocka_unit_test(test_cipher_decrypt_failure_keeps_nonce),
		cmocka_unit_test(test_cipher_lengths_checked),
		cmocka_unit_test(test_cipher_without_key_copies),
		cmocka_unit_test(test_cipher_nonce_exhaustion),
		cmocka_unit_test(test_cipher_rekey),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
