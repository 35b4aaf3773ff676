/* Unit tests of common/frame.c: sealing and opening transport records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "frame.h"

#define BODY "hello, replica"
#define BODY_LEN (sizeof(BODY) - 1)

/* One direction of a tunnel: the sender's and the receiver's cipher share a key. */
struct fixture {
	struct noise_cipher send;
	struct noise_cipher receive;
	uint8_t record[FRAME_MAX_RECORD_LEN];
	uint8_t copy[FRAME_MAX_RECORD_LEN];
};

static int fixture_setup(void **state)
{
	struct fixture *f = sodium_malloc(sizeof(*f));

	if (f == NULL)
		return -1;
	memset(f, 0, sizeof(*f));
	randombytes_buf(f->send.key, NOISE_KEY_LEN);
	memcpy(f->receive.key, f->send.key, NOISE_KEY_LEN);
	f->send.has_key = true;
	f->receive.has_key = true;
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	noise_cipher_wipe(&f->send);
	noise_cipher_wipe(&f->receive);
	sodium_free(f);
	return 0;
}

/* Seal body into record the way a sender does, and return the record length. */
static size_t seal(struct noise_cipher *send, uint8_t *record, enum frame_type type, const void *body,
		   size_t body_len)
{
	size_t record_len = 0;

	if (body_len > 0)
		memcpy(record + FRAME_HEADER_LEN + FRAME_TYPE_LEN, body, body_len);
	assert_int_equal(frame_seal(send, record, type, body_len, &record_len), FRAME_OK);
	assert_int_equal(record_len, body_len + FRAME_OVERHEAD);
	return record_len;
}

/*
 * Build a record by hand with any type byte, so that the receiver's checks
 * can be tested on authentic records that frame_seal() would not make. ad
 * is the associated data, or NULL for the header as frame_seal() uses it.
 */
static size_t craft(struct noise_cipher *send, uint8_t *record, uint8_t type, const void *body,
		    size_t body_len, const uint8_t *ad)
{
	size_t ciphertext_len = FRAME_TYPE_LEN + body_len + NOISE_TAG_LEN;

	record[0] = (uint8_t)(ciphertext_len >> 8);
	record[1] = (uint8_t)ciphertext_len;
	record[FRAME_HEADER_LEN] = type;
	if (body_len > 0)
		memcpy(record + FRAME_HEADER_LEN + FRAME_TYPE_LEN, body, body_len);
	assert_int_equal(noise_cipher_encrypt(send, ad != NULL ? ad : record, FRAME_HEADER_LEN,
					      record + FRAME_HEADER_LEN, FRAME_TYPE_LEN + body_len,
					      record + FRAME_HEADER_LEN),
			 NOISE_OK);
	return FRAME_HEADER_LEN + ciphertext_len;
}

static void test_round_trip_each_type(void **state)
{
	struct fixture *f = *state;
	const struct {
		enum frame_type type;
		const char *body;
	} cases[] = {
		{ FRAME_OPEN, "" },
		{ FRAME_DATA, BODY },
		{ FRAME_DATA, "x" },
		{ FRAME_FIN, "" },
		{ FRAME_RESET, "" },
		{ FRAME_KEEPALIVE, "" },
		{ FRAME_REKEY, "" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t body_len = strlen(cases[i].body);
		size_t record_len = seal(&f->send, f->record, cases[i].type, cases[i].body, body_len);
		size_t parsed_len = 0;
		enum frame_type type = 0;
		uint8_t *body = NULL;
		size_t opened_len = 99;

		/* The header is the big-endian length of type, body and tag. */
		assert_int_equal(f->record[0], (record_len - FRAME_HEADER_LEN) >> 8);
		assert_int_equal(f->record[1], (record_len - FRAME_HEADER_LEN) & 0xff);
		assert_int_equal(frame_record_length(f->record, record_len, &parsed_len), FRAME_OK);
		assert_int_equal(parsed_len, record_len);

		assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &opened_len),
				 FRAME_OK);
		assert_int_equal(type, cases[i].type);
		assert_int_equal(opened_len, body_len);
		assert_ptr_equal(body, f->record + FRAME_HEADER_LEN + FRAME_TYPE_LEN);
		assert_memory_equal(body, cases[i].body, body_len);
	}
	assert_int_equal(f->send.nonce, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(f->receive.nonce, sizeof(cases) / sizeof(cases[0]));
}

static void test_max_body(void **state)
{
	struct fixture *f = *state;
	static uint8_t body[FRAME_MAX_BODY_LEN + 1];
	size_t record_len;
	size_t rejected_len = 12345;
	enum frame_type type;
	uint8_t *opened;
	size_t opened_len;

	randombytes_buf(body, sizeof(body));
	record_len = seal(&f->send, f->record, FRAME_DATA, body, FRAME_MAX_BODY_LEN);
	assert_int_equal(record_len, FRAME_MAX_RECORD_LEN);
	assert_int_equal(f->record[0], 0xff);
	assert_int_equal(f->record[1], 0xff);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &opened, &opened_len),
			 FRAME_OK);
	assert_int_equal(opened_len, FRAME_MAX_BODY_LEN);
	assert_memory_equal(opened, body, FRAME_MAX_BODY_LEN);

	/* One byte more does not fit the 2-byte length. */
	assert_int_equal(frame_seal(&f->send, f->record, FRAME_DATA, FRAME_MAX_BODY_LEN + 1, &rejected_len),
			 FRAME_ERR_LENGTH);
	assert_int_equal(rejected_len, 12345);
	assert_int_equal(f->send.nonce, 1);
}

static void test_data_without_body_rejected(void **state)
{
	struct fixture *f = *state;
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	assert_int_equal(frame_seal(&f->send, f->record, FRAME_DATA, 0, &record_len), FRAME_ERR_TYPE);
	assert_int_equal(f->send.nonce, 0);

	record_len = craft(&f->send, f->record, FRAME_DATA, NULL, 0, NULL);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len),
			 FRAME_ERR_TYPE);
}

static void test_control_with_body_rejected(void **state)
{
	struct fixture *f = *state;
	const enum frame_type types[] = { FRAME_OPEN, FRAME_FIN, FRAME_RESET, FRAME_KEEPALIVE, FRAME_REKEY };
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memset(f->record + FRAME_HEADER_LEN + FRAME_TYPE_LEN, 'b', 1);
		assert_int_equal(frame_seal(&f->send, f->record, types[i], 1, &record_len), FRAME_ERR_TYPE);

		record_len = craft(&f->send, f->record, (uint8_t)types[i], "b", 1, NULL);
		assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len),
				 FRAME_ERR_TYPE);
	}
}

static void test_unknown_type_rejected(void **state)
{
	struct fixture *f = *state;
	const unsigned unknown_types[] = { 0, 7, 0x7f, 0xff };
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;
	size_t i;

	for (i = 0; i < sizeof(unknown_types) / sizeof(unknown_types[0]); i++) {
		assert_int_equal(frame_seal(&f->send, f->record, (enum frame_type)unknown_types[i], 0,
					    &record_len),
				 FRAME_ERR_TYPE);
		assert_int_equal(frame_seal(&f->send, f->record, (enum frame_type)unknown_types[i], 1,
					    &record_len),
				 FRAME_ERR_TYPE);

		record_len = craft(&f->send, f->record, (uint8_t)unknown_types[i], NULL, 0, NULL);
		assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len),
				 FRAME_ERR_TYPE);
	}

	/* A type that only matches DATA in its low byte. */
	assert_int_equal(frame_seal(&f->send, f->record, (enum frame_type)(0x100 | FRAME_DATA), 1,
				    &record_len),
			 FRAME_ERR_TYPE);
}

static void test_short_length_field_rejected(void **state)
{
	struct fixture *f = *state;
	size_t ciphertext_len;
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	for (ciphertext_len = 0; ciphertext_len < FRAME_MIN_CIPHERTEXT_LEN; ciphertext_len++) {
		memset(f->record, 0, FRAME_HEADER_LEN + FRAME_MIN_CIPHERTEXT_LEN);
		f->record[1] = (uint8_t)ciphertext_len;
		record_len = 777;
		assert_int_equal(frame_record_length(f->record, FRAME_HEADER_LEN, &record_len),
				 FRAME_ERR_LENGTH);
		assert_int_equal(record_len, 777);
		assert_int_equal(frame_open(&f->receive, f->record, FRAME_HEADER_LEN + ciphertext_len, &type,
					    &body, &body_len),
				 FRAME_ERR_LENGTH);
	}
	assert_int_equal(f->receive.nonce, 0);

	f->record[1] = FRAME_MIN_CIPHERTEXT_LEN;
	assert_int_equal(frame_record_length(f->record, FRAME_HEADER_LEN, &record_len), FRAME_OK);
	assert_int_equal(record_len, FRAME_HEADER_LEN + FRAME_MIN_CIPHERTEXT_LEN);
}

/* frame_open() gets the whole record, so its length must agree with the header. */
static void test_record_length_mismatch_rejected(void **state)
{
	struct fixture *f = *state;
	size_t record_len = seal(&f->send, f->record, FRAME_DATA, BODY, BODY_LEN);
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	assert_int_equal(frame_open(&f->receive, f->record, record_len - 1, &type, &body, &body_len),
			 FRAME_ERR_LENGTH);
	assert_int_equal(frame_open(&f->receive, f->record, record_len + 1, &type, &body, &body_len),
			 FRAME_ERR_LENGTH);
	assert_int_equal(frame_open(&f->receive, f->record, FRAME_MAX_RECORD_LEN + 1, &type, &body,
				    &body_len),
			 FRAME_ERR_LENGTH);
	assert_int_equal(f->receive.nonce, 0);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len), FRAME_OK);
}

static void test_bit_flip_anywhere_fails(void **state)
{
	struct fixture *f = *state;
	size_t record_len = seal(&f->send, f->record, FRAME_DATA, BODY, BODY_LEN);
	enum frame_type type;
	uint8_t *body;
	size_t body_len;
	size_t bit;

	for (bit = 0; bit < record_len * 8; bit++) {
		enum frame_result result;

		memcpy(f->copy, f->record, record_len);
		f->copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		result = frame_open(&f->receive, f->copy, record_len, &type, &body, &body_len);
		if (bit < FRAME_HEADER_LEN * 8)
			assert_int_equal(result, FRAME_ERR_LENGTH);
		else
			assert_int_equal(result, FRAME_ERR_DECRYPT);
		assert_int_equal(f->receive.nonce, 0);
	}
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len), FRAME_OK);
}

/*
 * A changed length field must fail even when the ciphertext that follows
 * has exactly that length, because the header is the associated data.
 */
static void test_length_bound_as_associated_data(void **state)
{
	struct fixture *f = *state;
	const uint8_t other_header[FRAME_HEADER_LEN] = { 0x00, 0x00 };
	struct noise_cipher sender_copy = f->send;
	size_t record_len;
	size_t parsed_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	record_len = craft(&f->send, f->record, FRAME_DATA, BODY, BODY_LEN, other_header);
	assert_int_equal(frame_record_length(f->record, record_len, &parsed_len), FRAME_OK);
	assert_int_equal(parsed_len, record_len);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len),
			 FRAME_ERR_DECRYPT);

	/* The same record with its real header as associated data opens. */
	record_len = craft(&sender_copy, f->record, FRAME_DATA, BODY, BODY_LEN, NULL);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len), FRAME_OK);
	assert_memory_equal(body, BODY, BODY_LEN);

	/* A sealed record with one byte appended and the length raised to match. */
	record_len = seal(&f->send, f->record, FRAME_DATA, BODY, BODY_LEN);
	f->record[record_len] = 0;
	f->record[1]++;
	assert_int_equal(frame_open(&f->receive, f->record, record_len + 1, &type, &body, &body_len),
			 FRAME_ERR_DECRYPT);
	noise_cipher_wipe(&sender_copy);
}

/* Three sealed records, opened in an order that tests one stream fault. */
struct sequence {
	uint8_t records[3][FRAME_OVERHEAD + BODY_LEN];
	size_t record_len;
};

static void sequence_seal(struct fixture *f, struct sequence *sequence)
{
	size_t i;

	for (i = 0; i < 3; i++) {
		memcpy(f->record + FRAME_HEADER_LEN + FRAME_TYPE_LEN, BODY, BODY_LEN);
		f->record[FRAME_HEADER_LEN + FRAME_TYPE_LEN] = (uint8_t)('0' + i);
		assert_int_equal(frame_seal(&f->send, f->record, FRAME_DATA, BODY_LEN, &sequence->record_len),
				 FRAME_OK);
		memcpy(sequence->records[i], f->record, sequence->record_len);
	}
}

/* Open a copy of record index, since a failed open overwrites the record. */
static enum frame_result sequence_open(struct fixture *f, const struct sequence *sequence, size_t index)
{
	enum frame_type type;
	uint8_t *body;
	size_t body_len;
	enum frame_result result;

	memcpy(f->copy, sequence->records[index], sequence->record_len);
	result = frame_open(&f->receive, f->copy, sequence->record_len, &type, &body, &body_len);
	if (result == FRAME_OK)
		assert_int_equal(body[0], '0' + index);
	return result;
}

static void test_dropped_record_fails(void **state)
{
	struct fixture *f = *state;
	struct sequence sequence;

	sequence_seal(f, &sequence);
	assert_int_equal(sequence_open(f, &sequence, 0), FRAME_OK);
	assert_int_equal(sequence_open(f, &sequence, 2), FRAME_ERR_DECRYPT);
	assert_int_equal(f->receive.nonce, 1);
}

static void test_repeated_record_fails(void **state)
{
	struct fixture *f = *state;
	struct sequence sequence;

	sequence_seal(f, &sequence);
	assert_int_equal(sequence_open(f, &sequence, 0), FRAME_OK);
	assert_int_equal(sequence_open(f, &sequence, 0), FRAME_ERR_DECRYPT);
	assert_int_equal(sequence_open(f, &sequence, 1), FRAME_OK);
	assert_int_equal(sequence_open(f, &sequence, 1), FRAME_ERR_DECRYPT);
}

static void test_swapped_records_fail(void **state)
{
	struct fixture *f = *state;
	struct sequence sequence;

	sequence_seal(f, &sequence);
	assert_int_equal(sequence_open(f, &sequence, 1), FRAME_ERR_DECRYPT);
	assert_int_equal(sequence_open(f, &sequence, 0), FRAME_OK);
	assert_int_equal(sequence_open(f, &sequence, 2), FRAME_ERR_DECRYPT);
	assert_int_equal(sequence_open(f, &sequence, 1), FRAME_OK);
	assert_int_equal(sequence_open(f, &sequence, 2), FRAME_OK);
}

static void test_need_more_before_header(void **state)
{
	const uint8_t buffer[FRAME_HEADER_LEN] = { 0x00, 0x20 };
	size_t record_len = 777;

	assert_int_equal(frame_record_length(buffer, 0, &record_len), FRAME_NEED_MORE);
	assert_int_equal(frame_record_length(buffer, 1, &record_len), FRAME_NEED_MORE);
	assert_int_equal(record_len, 777);

	/* Two bytes are enough for the length, even though the record is longer. */
	assert_int_equal(frame_record_length(buffer, 2, &record_len), FRAME_OK);
	assert_int_equal(record_len, FRAME_HEADER_LEN + 0x20);
}

static void test_records_back_to_back(void **state)
{
	struct fixture *f = *state;
	size_t first_len = seal(&f->send, f->record, FRAME_DATA, BODY, BODY_LEN);
	size_t second_len = seal(&f->send, f->record + first_len, FRAME_FIN, NULL, 0);
	size_t avail = first_len + second_len;
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	assert_int_equal(frame_record_length(f->record, avail, &record_len), FRAME_OK);
	assert_int_equal(record_len, first_len);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len), FRAME_OK);
	assert_int_equal(type, FRAME_DATA);

	assert_int_equal(frame_record_length(f->record + first_len, avail - first_len, &record_len), FRAME_OK);
	assert_int_equal(record_len, second_len);
	assert_int_equal(frame_open(&f->receive, f->record + first_len, record_len, &type, &body, &body_len),
			 FRAME_OK);
	assert_int_equal(type, FRAME_FIN);
	assert_int_equal(body_len, 0);
}

static void test_nonce_exhaustion_reported(void **state)
{
	struct fixture *f = *state;
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	f->send.nonce = NOISE_NONCE_MAX;
	f->receive.nonce = NOISE_NONCE_MAX;
	record_len = seal(&f->send, f->record, FRAME_KEEPALIVE, NULL, 0);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len), FRAME_OK);

	assert_int_equal(frame_seal(&f->send, f->record, FRAME_KEEPALIVE, 0, &record_len),
			 FRAME_ERR_NONCE_EXHAUSTED);
	record_len = FRAME_HEADER_LEN + FRAME_MIN_CIPHERTEXT_LEN;
	f->record[0] = 0;
	f->record[1] = FRAME_MIN_CIPHERTEXT_LEN;
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len),
			 FRAME_ERR_NONCE_EXHAUSTED);
}

/* A cipher without a key would pass records through in clear text. */
static void test_cipher_without_key_rejected(void **state)
{
	struct noise_cipher cipher = { 0 };
	uint8_t record[FRAME_OVERHEAD + BODY_LEN];
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	memcpy(record + FRAME_HEADER_LEN + FRAME_TYPE_LEN, BODY, BODY_LEN);
	assert_int_equal(frame_seal(&cipher, record, FRAME_DATA, BODY_LEN, &record_len),
			 FRAME_ERR_NONCE_EXHAUSTED);

	record[0] = 0;
	record[1] = FRAME_TYPE_LEN + BODY_LEN + NOISE_TAG_LEN;
	record[FRAME_HEADER_LEN] = FRAME_DATA;
	assert_int_equal(frame_open(&cipher, record, sizeof(record), &type, &body, &body_len),
			 FRAME_ERR_DECRYPT);
}

/* The rekey sequence both sides follow: REKEY under the old key, then REKEY(k). */
static void test_rekey_keeps_stream_in_sync(void **state)
{
	struct fixture *f = *state;
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;
	uint8_t old_key[NOISE_KEY_LEN];

	memcpy(old_key, f->send.key, NOISE_KEY_LEN);
	for (int round = 0; round < 3; round++) {
		record_len = seal(&f->send, f->record, FRAME_REKEY, NULL, 0);
		noise_cipher_rekey(&f->send);
		assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len), FRAME_OK);
		assert_int_equal(type, FRAME_REKEY);
		noise_cipher_rekey(&f->receive);

		record_len = seal(&f->send, f->record, FRAME_DATA, BODY, BODY_LEN);
		assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len), FRAME_OK);
		assert_memory_equal(body, BODY, BODY_LEN);
	}
	assert_memory_not_equal(f->send.key, old_key, NOISE_KEY_LEN);
}

/* A receiver that missed the switch cannot read what follows. */
static void test_rekey_on_one_side_only_fails(void **state)
{
	struct fixture *f = *state;
	size_t record_len;
	enum frame_type type;
	uint8_t *body;
	size_t body_len;

	noise_cipher_rekey(&f->send);
	record_len = seal(&f->send, f->record, FRAME_DATA, BODY, BODY_LEN);
	assert_int_equal(frame_open(&f->receive, f->record, record_len, &type, &body, &body_len),
			 FRAME_ERR_DECRYPT);
}

static void test_result_strings(void **state)
{
	enum frame_result result;

	for (result = FRAME_OK; result <= FRAME_ERR_NONCE_EXHAUSTED; result++) {
		assert_non_null(frame_result_string(result));
		assert_string_not_equal(frame_result_string(result), "unknown frame error");
	}
}

#define FRAME_TEST(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FRAME_TEST(test_round_trip_each_type),
		FRAME_TEST(test_max_body),
		FRAME_TEST(test_data_without_body_rejected),
		FRAME_TEST(test_control_with_body_rejected),
		FRAME_TEST(test_unknown_type_rejected),
		FRAME_TEST(test_rekey_keeps_stream_in_sync),
		FRAME_TEST(test_rekey_on_one_side_only_fails),
		FRAME_TEST(test_short_length_field_rejected),
		FRAME_TEST(test_record_length_mismatch_rejected),
		FRAME_TEST(test_bit_flip_anywhere_fails),
		FRAME_TEST(test_length_bound_as_associated_data),
		FRAME_TEST(test_dropped_record_fails),
		FRAME_TEST(test_repeated_record_fails),
		FRAME_TEST(test_swapped_records_fail),
		FRAME_TEST(test_records_back_to_back),
		FRAME_TEST(test_nonce_exhaustion_reported),
		cmocka_unit_test(test_need_more_before_header),
		cmocka_unit_test(test_cipher_without_key_rejected),
		cmocka_unit_test(test_result_strings),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
