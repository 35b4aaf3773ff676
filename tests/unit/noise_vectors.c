/*
 * Replays published Noise test vectors against common/noise.c.
 *
 *   noise_vectors FILE.json
 *
 * FILE.json has the layout described in tests/vectors/README.md: the
 * current one (protocol_name, init_psks) and the older noise-c one (name,
 * init_psk). Entries for Noise_IK_25519_ChaChaPoly_BLAKE2b and
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b are run and all others are
 * counted as skipped. Exit status: 0 when at least one entry ran and none
 * failed, 1 otherwise, 2 when the file cannot be read or parsed.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"

#define PROTOCOL_IK "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define PROTOCOL_IKPSK2 "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b"

/* noise-c's names for its pre-revision-31 PSK scheme, which rev 34 replaced by pskN modifiers. */
#define OBSOLETE_PSK_PREFIX "NoisePSK_"

/* IK has two handshake messages: the initiation and the response. */
#define HANDSHAKE_MESSAGES 2

struct bytes {
	uint8_t *data;
	size_t len;
};

struct vector {
	const char *protocol;
	bool psk2;
	bool expect_failure;
	uint8_t init_static[NOISE_KEY_LEN];
	uint8_t init_ephemeral[NOISE_KEY_LEN];
	uint8_t init_remote_static[NOISE_KEY_LEN];
	uint8_t resp_static[NOISE_KEY_LEN];
	uint8_t resp_ephemeral[NOISE_KEY_LEN];
	uint8_t init_psk[NOISE_KEY_LEN];
	uint8_t resp_psk[NOISE_KEY_LEN];
	struct bytes init_prologue;
	struct bytes resp_prologue;
	struct bytes handshake_hash;	/* len 0 when the entry has none */
	size_t message_count;
	struct bytes *payloads;
	struct bytes *ciphertexts;
};

/* Both ends of one handshake, in sodium_malloc() memory because they hold keys. */
struct session {
	struct noise_handshake initiator;
	struct noise_handshake responder;
	struct noise_cipher initiator_send;
	struct noise_cipher initiator_receive;
	struct noise_cipher responder_send;
	struct noise_cipher responder_receive;
};

struct counts {
	unsigned passed;
	unsigned failed;
	unsigned skipped_pattern;
	unsigned skipped_obsolete;
};

/* Why an entry failed: one line, allocated. */
static char *failure_reason;

static void fail(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *format, ...)
{
	va_list args;

	free(failure_reason);
	va_start(args, format);
	if (vasprintf(&failure_reason, format, args) < 0)
		failure_reason = NULL;
	va_end(args);
}

static char *hex_encode(const uint8_t *data, size_t len)
{
	char *hex = malloc(len * 2 + 1);

	if (hex == NULL) {
		fprintf(stderr, "noise_vectors: out of memory\n");
		exit(1);
	}
	sodium_bin2hex(hex, len * 2 + 1, data, len);
	return hex;
}

/* Record a mismatch as "WHAT: expected HEX, actual HEX". */
static bool check_equal(const char *what, const uint8_t *expected, size_t expected_len,
			const uint8_t *actual, size_t actual_len)
{
	char *expected_hex;
	char *actual_hex;

	if (expected_len == actual_len && (expected_len == 0 || memcmp(expected, actual, expected_len) == 0))
		return true;

	expected_hex = hex_encode(expected, expected_len);
	actual_hex = hex_encode(actual, actual_len);
	fail("%s: expected %s, actual %s", what, expected_hex, actual_hex);
	free(expected_hex);
	free(actual_hex);
	return false;
}

static void *allocate(size_t len)
{
	/* One spare byte, so that empty payloads still get a valid pointer. */
	void *memory = calloc(1, len + 1);

	if (memory == NULL) {
		fprintf(stderr, "noise_vectors: out of memory\n");
		exit(1);
	}
	return memory;
}

/* Loading an entry */

static bool hex_decode(const char *field, const char *hex, struct bytes *out)
{
	size_t hex_len = strlen(hex);
	const char *hex_end;
	size_t len;

	out->data = allocate(hex_len / 2);
	out->len = 0;
	if (hex_len % 2 != 0 ||
	    sodium_hex2bin(out->data, hex_len / 2, hex, hex_len, NULL, &len, &hex_end) != 0 ||
	    hex_end != hex + hex_len) {
		fail("field %s is not valid hex", field);
		return false;
	}
	out->len = len;
	return true;
}

static bool load_bytes(json_t *entry, const char *field, bool required, struct bytes *out)
{
	json_t *value = json_object_get(entry, field);

	out->data = NULL;
	out->len = 0;
	if (value == NULL && !required)
		return true;
	if (!json_is_string(value)) {
		fail("field %s is missing or not a string", field);
		return false;
	}
	return hex_decode(field, json_string_value(value), out);
}

static bool load_key(json_t *entry, const char *field, uint8_t key[NOISE_KEY_LEN])
{
	struct bytes bytes;
	bool ok = false;

	if (!load_bytes(entry, field, true, &bytes))
		goto out;
	if (bytes.len != NOISE_KEY_LEN) {
		fail("field %s has %zu bytes, expected %d", field, bytes.len, NOISE_KEY_LEN);
		goto out;
	}
	memcpy(key, bytes.data, NOISE_KEY_LEN);
	ok = true;
out:
	if (bytes.data != NULL)
		sodium_memzero(bytes.data, bytes.len);
	free(bytes.data);
	return ok;
}

/*
 * The PSK of one side: array_field (current layout, one PSK per psk token)
 * or string_field (noise-c). IKpsk2 has one psk token and IK none.
 */
static bool load_psk(json_t *entry, bool psk2, const char *array_field, const char *string_field,
		     uint8_t psk[NOISE_KEY_LEN])
{
	json_t *array = json_object_get(entry, array_field);
	json_t *string = json_object_get(entry, string_field);
	size_t expected = psk2 ? 1 : 0;
	size_t found;

	if (array != NULL && !json_is_array(array)) {
		fail("field %s is not an array", array_field);
		return false;
	}
	found = (array != NULL ? json_array_size(array) : 0) + (string != NULL ? 1 : 0);
	if (found != expected) {
		fail("found %zu PSKs in %s and %s, the pattern takes %zu", found, array_field,
		     string_field, expected);
		return false;
	}
	if (!psk2)
		return true;

	if (array != NULL) {
		json_t *wrapper = json_pack("{sO}", array_field, json_array_get(array, 0));
		bool ok = load_key(wrapper, array_field, psk);

		json_decref(wrapper);
		return ok;
	}
	return load_key(entry, string_field, psk);
}

static bool load_messages(json_t *entry, struct vector *vector)
{
	json_t *messages = json_object_get(entry, "messages");
	size_t i;

	if (!json_is_array(messages) || json_array_size(messages) < HANDSHAKE_MESSAGES) {
		fail("field messages is missing or has fewer than %d entries", HANDSHAKE_MESSAGES);
		return false;
	}

	vector->message_count = json_array_size(messages);
	vector->payloads = allocate(vector->message_count * sizeof(struct bytes));
	vector->ciphertexts = allocate(vector->message_count * sizeof(struct bytes));
	for (i = 0; i < vector->message_count; i++) {
		json_t *message = json_array_get(messages, i);

		if (!json_is_object(message)) {
			fail("message %zu is not an object", i);
			return false;
		}
		if (!load_bytes(message, "payload", true, &vector->payloads[i]) ||
		    !load_bytes(message, "ciphertext", true, &vector->ciphertexts[i])) {
			char *reason = failure_reason;

			failure_reason = NULL;
			fail("message %zu: %s", i, reason);
			free(reason);
			return false;
		}
	}
	return true;
}

static bool vector_load(json_t *entry, struct vector *vector)
{
	json_t *expect_failure = json_object_get(entry, "fail");

	if (expect_failure != NULL && !json_is_boolean(expect_failure)) {
		fail("field fail is not a boolean");
		return false;
	}
	vector->expect_failure = json_is_true(expect_failure);

	if (!load_key(entry, "init_static", vector->init_static) ||
	    !load_key(entry, "init_ephemeral", vector->init_ephemeral) ||
	    !load_key(entry, "init_remote_static", vector->init_remote_static) ||
	    !load_key(entry, "resp_static", vector->resp_static) ||
	    !load_key(entry, "resp_ephemeral", vector->resp_ephemeral) ||
	    !load_psk(entry, vector->psk2, "init_psks", "init_psk", vector->init_psk) ||
	    !load_psk(entry, vector->psk2, "resp_psks", "resp_psk", vector->resp_psk) ||
	    !load_bytes(entry, "init_prologue", false, &vector->init_prologue) ||
	    !load_bytes(entry, "resp_prologue", false, &vector->resp_prologue) ||
	    !load_bytes(entry, "handshake_hash", false, &vector->handshake_hash) ||
	    !load_messages(entry, vector))
		return false;

	if (vector->handshake_hash.data != NULL && vector->handshake_hash.len != NOISE_HASH_LEN) {
		fail("field handshake_hash has %zu bytes, expected %d", vector->handshake_hash.len,
		     NOISE_HASH_LEN);
		return false;
	}
	return true;
}

static void vector_free(struct vector *vector)
{
	size_t i;

	for (i = 0; i < vector->message_count; i++) {
		if (vector->payloads != NULL)
			free(vector->payloads[i].data);
		if (vector->ciphertexts != NULL)
			free(vector->ciphertexts[i].data);
	}
	free(vector->payloads);
	free(vector->ciphertexts);
	free(vector->init_prologue.data);
	free(vector->resp_prologue.data);
	free(vector->handshake_hash.data);
	sodium_memzero(vector, sizeof(*vector));
}

/* Playing an entry */

static bool run_initiation(struct session *session, const struct vector *vector)
{
	const struct bytes *payload = &vector->payloads[0];
	const struct bytes *ciphertext = &vector->ciphertexts[0];
	uint8_t initiator_pub[NOISE_KEY_LEN];
	uint8_t *message = allocate(NOISE_IK_INITIATION_LEN(payload->len));
	uint8_t *received = allocate(ciphertext->len);
	enum noise_result result;
	bool ok = false;

	result = noise_ik_write_initiation(&session->initiator, vector->init_ephemeral,
					   payload->data, payload->len, message);
	if (result != NOISE_OK) {
		fail("message 0: initiator failed to write it: %s", noise_result_string(result));
		goto out;
	}
	if (!check_equal("message 0 ciphertext", ciphertext->data, ciphertext->len, message,
			 NOISE_IK_INITIATION_LEN(payload->len)))
		goto out;

	result = noise_ik_read_initiation(&session->responder, ciphertext->data, ciphertext->len,
					  received);
	if (result != NOISE_OK) {
		fail("message 0: responder failed to read it: %s", noise_result_string(result));
		goto out;
	}
	if (!check_equal("message 0 payload read by the responder", payload->data, payload->len,
			 received, ciphertext->len - NOISE_IK_INITIATION_LEN(0)))
		goto out;

	noise_public_key(initiator_pub, vector->init_static);
	if (!check_equal("message 0 initiator static key learned by the responder", initiator_pub,
			 NOISE_KEY_LEN, session->responder.rs, NOISE_KEY_LEN))
		goto out;
	ok = true;
out:
	free(message);
	free(received);
	return ok;
}

static bool run_response(struct session *session, const struct vector *vector)
{
	const struct bytes *payload = &vector->payloads[1];
	const struct bytes *ciphertext = &vector->ciphertexts[1];
	uint8_t *message = allocate(NOISE_IK_RESPONSE_LEN(payload->len));
	uint8_t *received = allocate(ciphertext->len);
	enum noise_result result;
	bool ok = false;

	/* A responder learns which PSK to use only from the initiation, as walguard's does. */
	if (vector->psk2)
		noise_handshake_set_psk(&session->responder, vector->resp_psk);

	result = noise_ik_write_response(&session->responder, vector->resp_ephemeral,
					 payload->data, payload->len, message);
	if (result != NOISE_OK) {
		fail("message 1: responder failed to write it: %s", noise_result_string(result));
		goto out;
	}
	if (!check_equal("message 1 ciphertext", ciphertext->data, ciphertext->len, message,
			 NOISE_IK_RESPONSE_LEN(payload->len)))
		goto out;

	result = noise_ik_read_response(&session->initiator, ciphertext->data, ciphertext->len,
					received);
	if (result != NOISE_OK) {
		fail("message 1: initiator failed to read it: %s", noise_result_string(result));
		goto out;
	}
	if (!check_equal("message 1 payload read by the initiator", payload->data, payload->len,
			 received, ciphertext->len - NOISE_IK_RESPONSE_LEN(0)))
		goto out;
	ok = true;
out:
	free(message);
	free(received);
	return ok;
}

/* Transport message index (2 and up): even ones come from the initiator. */
static bool run_transport(struct session *session, const struct vector *vector, size_t index)
{
	const struct bytes *payload = &vector->payloads[index];
	const struct bytes *ciphertext = &vector->ciphertexts[index];
	bool from_initiator = index % 2 == 0;
	struct noise_cipher *send = from_initiator ? &session->initiator_send : &session->responder_send;
	struct noise_cipher *receive = from_initiator ? &session->responder_receive
						      : &session->initiator_receive;
	const char *receiver = from_initiator ? "responder" : "initiator";
	uint8_t *message = allocate(payload->len + NOISE_TAG_LEN);
	uint8_t *received = allocate(ciphertext->len);
	enum noise_result result;
	char what[96];
	bool ok = false;

	result = noise_cipher_encrypt(send, NULL, 0, payload->data, payload->len, message);
	if (result != NOISE_OK) {
		fail("message %zu: %s failed to encrypt it: %s", index,
		     from_initiator ? "initiator" : "responder", noise_result_string(result));
		goto out;
	}
	snprintf(what, sizeof(what), "message %zu ciphertext", index);
	if (!check_equal(what, ciphertext->data, ciphertext->len, message, payload->len + NOISE_TAG_LEN))
		goto out;

	result = noise_cipher_decrypt(receive, NULL, 0, ciphertext->data, ciphertext->len, received);
	if (result != NOISE_OK) {
		fail("message %zu: %s failed to decrypt it: %s", index, receiver,
		     noise_result_string(result));
		goto out;
	}
	snprintf(what, sizeof(what), "message %zu payload decrypted by the %s", index, receiver);
	if (!check_equal(what, payload->data, payload->len, received, ciphertext->len - NOISE_TAG_LEN))
		goto out;
	ok = true;
out:
	free(message);
	free(received);
	return ok;
}

static bool run_handshake_hash(struct session *session, const struct vector *vector)
{
	if (vector->handshake_hash.data == NULL)
		return true;
	return check_equal("handshake_hash of the initiator", vector->handshake_hash.data,
			   NOISE_HASH_LEN, session->initiator.h, NOISE_HASH_LEN) &&
	       check_equal("handshake_hash of the responder", vector->handshake_hash.data,
			   NOISE_HASH_LEN, session->responder.h, NOISE_HASH_LEN);
}

static bool vector_run(const struct vector *vector)
{
	struct session *session = sodium_malloc(sizeof(*session));
	enum noise_result result;
	bool ok = false;
	size_t i;

	if (session == NULL) {
		fprintf(stderr, "noise_vectors: out of memory\n");
		exit(1);
	}

	result = noise_ik_init(&session->initiator, NOISE_INITIATOR, vector->psk2,
			       vector->init_prologue.data, vector->init_prologue.len,
			       vector->init_static, vector->init_remote_static,
			       vector->psk2 ? vector->init_psk : NULL);
	if (result != NOISE_OK) {
		fail("initiator failed to start: %s", noise_result_string(result));
		goto out;
	}
	result = noise_ik_init(&session->responder, NOISE_RESPONDER, vector->psk2,
			       vector->resp_prologue.data, vector->resp_prologue.len,
			       vector->resp_static, NULL, NULL);
	if (result != NOISE_OK) {
		fail("responder failed to start: %s", noise_result_string(result));
		goto out;
	}

	if (!run_initiation(session, vector) || !run_response(session, vector) ||
	    !run_handshake_hash(session, vector))
		goto out;

	result = noise_handshake_split(&session->initiator, &session->initiator_send,
				       &session->initiator_receive);
	if (result == NOISE_OK)
		result = noise_handshake_split(&session->responder, &session->responder_send,
					       &session->responder_receive);
	if (result != NOISE_OK) {
		fail("split failed: %s", noise_result_string(result));
		goto out;
	}

	for (i = HANDSHAKE_MESSAGES; i < vector->message_count; i++) {
		if (!run_transport(session, vector, i))
			goto out;
	}
	ok = true;
out:
	noise_handshake_wipe(&session->initiator);
	noise_handshake_wipe(&session->responder);
	noise_cipher_wipe(&session->initiator_send);
	noise_cipher_wipe(&session->initiator_receive);
	noise_cipher_wipe(&session->responder_send);
	noise_cipher_wipe(&session->responder_receive);
	sodium_free(session);
	return ok;
}

static const char *entry_protocol(json_t *entry)
{
	json_t *name = json_object_get(entry, "protocol_name");

	if (name == NULL)
		name = json_object_get(entry, "name");
	return json_string_value(name);
}

/* Load, run and report one entry of the vectors array. */
static void entry_check(json_t *entry, size_t index, struct counts *counts)
{
	struct vector vector = { 0 };
	bool loaded;
	bool passed;

	vector.protocol = json_is_object(entry) ? entry_protocol(entry) : NULL;
	if (vector.protocol == NULL) {
		printf("FAIL entry %zu: no protocol_name or name string\n", index);
		counts->failed++;
		return;
	}
	if (strncmp(vector.protocol, OBSOLETE_PSK_PREFIX, strlen(OBSOLETE_PSK_PREFIX)) == 0) {
		counts->skipped_obsolete++;
		return;
	}
	if (strcmp(vector.protocol, PROTOCOL_IK) != 0 && strcmp(vector.protocol, PROTOCOL_IKPSK2) != 0) {
		counts->skipped_pattern++;
		return;
	}
	vector.psk2 = strcmp(vector.protocol, PROTOCOL_IKPSK2) == 0;

	loaded = vector_load(entry, &vector);
	if (!loaded)
		passed = false;
	else if (vector.expect_failure)
		passed = !vector_run(&vector);
	else
		passed = vector_run(&vector);

	if (passed && vector.expect_failure)
		printf("PASS %s (entry %zu): failed as expected: %s\n", vector.protocol, index,
		       failure_reason != NULL ? failure_reason : "");
	else if (passed)
		printf("PASS %s (entry %zu)\n", vector.protocol, index);
	else if (loaded && vector.expect_failure)
		printf("FAIL %s (entry %zu): marked \"fail\": true, but every message matched\n",
		       vector.protocol, index);
	else
		printf("FAIL %s (entry %zu): %s\n", vector.protocol, index,
		       failure_reason != NULL ? failure_reason : "out of memory");

	if (passed)
		counts->passed++;
	else
		counts->failed++;
	free(failure_reason);
	failure_reason = NULL;
	vector_free(&vector);
}

int main(int argc, char **argv)
{
	struct counts counts = { 0 };
	json_error_t error;
	json_t *vectors;
	json_t *root;
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: noise_vectors FILE.json\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "noise_vectors: libsodium failed to initialize\n");
		return 1;
	}

	root = json_load_file(argv[1], JSON_REJECT_DUPLICATES, &error);
	if (root == NULL) {
		if (error.line > 0)
			fprintf(stderr, "noise_vectors: %s:%d:%d: invalid JSON: %s\n", argv[1],
				error.line, error.column, error.text);
		else
			fprintf(stderr, "noise_vectors: cannot read %s: %s\n", argv[1], error.text);
		return 2;
	}
	vectors = json_object_get(root, "vectors");
	if (!json_is_array(vectors)) {
		fprintf(stderr, "noise_vectors: %s: expected an object with a \"vectors\" array\n",
			argv[1]);
		json_decref(root);
		return 2;
	}

	for (i = 0; i < json_array_size(vectors); i++)
		entry_check(json_array_get(vectors, i), i, &counts);
	json_decref(root);

	printf("vectors: %u passed, %u failed, %u skipped", counts.passed, counts.failed,
	       counts.skipped_pattern + counts.skipped_obsolete);
	if (counts.skipped_obsolete > 0)
		printf(" (pattern not implemented: %u, obsolete NoisePSK_ scheme: %u)\n",
		       counts.skipped_pattern, counts.skipped_obsolete);
	else
		printf(" (pattern not implemented)\n");
	if (counts.passed + counts.failed == 0)
		printf("vectors: no entry in %s uses %s or %s\n", argv[1], PROTOCOL_IK, PROTOCOL_IKPSK2);

	return counts.failed == 0 && counts.passed > 0 ? 0 : 1;
}
