/*
 * Measure libsodium's ChaCha20-Poly1305 (IETF) encrypt and decrypt
 * throughput on one core, the cost that no forwarder using this cipher
 * can avoid.
 *
 * The records are laid out like walguard's (common/frame.c): a 2-byte
 * length header as associated data, then a type byte and the body,
 * sealed in place with a 16-byte tag. Sizes are body lengths; the type
 * byte is added to each.
 *
 * Usage: aead_bound [SECONDS_PER_SIZE [BODY_LEN...]]
 * Prints one line per body length and direction:
 *   aead op=encrypt body=65518 gbps=1.234
 * where gbps is 10^9 plaintext bytes per second, the median of 5 runs.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 5
#define HEADER_LEN 2
#define TYPE_LEN 1
#define TAG_LEN crypto_aead_chacha20poly1305_ietf_ABYTES
#define MAX_BODY_LEN 65518

static double now_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void nonce_from_counter(uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t counter)
{
	memset(nonce, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Seal records of body_len bytes in place for about seconds, and return
 * the plaintext bytes per second.
 */
static double run_encrypt(const uint8_t *key, uint8_t *record, size_t body_len, double seconds)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	size_t plaintext_len = TYPE_LEN + body_len;
	uint64_t counter = 0;
	double start = now_seconds();
	double elapsed;

	do {
		/* Check the clock every 64 records so that reading it costs nothing. */
		for (int i = 0; i < 64; i++) {
			nonce_from_counter(nonce, counter++);
			crypto_aead_chacha20poly1305_ietf_encrypt(record + HEADER_LEN, NULL, record + HEADER_LEN,
								  plaintext_len, record, HEADER_LEN, NULL, nonce, key);
		}
		elapsed = now_seconds() - start;
	} while (elapsed < seconds);
	return (double)counter * (double)plaintext_len / elapsed;
}

/*
 * Open the same sealed record again and again for about seconds, and
 * return the plaintext bytes per second. Decrypting into a scratch
 * buffer keeps the ciphertext intact, so every call authenticates.
 */
static double run_decrypt(const uint8_t *key, const uint8_t *record, uint8_t *scratch, size_t body_len,
			  double seconds)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	size_t plaintext_len = TYPE_LEN + body_len;
	uint64_t count = 0;
	double start = now_seconds();
	double elapsed;

	nonce_from_counter(nonce, 0);
	do {
		for (int i = 0; i < 64; i++) {
			if (crypto_aead_chacha20poly1305_ietf_decrypt(scratch, NULL, NULL, record + HEADER_LEN,
								      plaintext_len + TAG_LEN, record, HEADER_LEN,
								      nonce, key) != 0) {
				fprintf(stderr, "aead_bound: decryption failed to authenticate\n");
				exit(1);
			}
			count++;
		}
		elapsed = now_seconds() - start;
	} while (elapsed < seconds);
	return (double)count * (double)plaintext_len / elapsed;
}

static void measure(size_t body_len, double seconds)
{
	uint8_t key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	size_t plaintext_len = TYPE_LEN + body_len;
	size_t ciphertext_len = plaintext_len + TAG_LEN;
	uint8_t *record = malloc(HEADER_LEN + ciphertext_len);
	uint8_t *scratch = malloc(plaintext_len);
	double encrypt_rates[RUNS];
	double decrypt_rates[RUNS];

	if (record == NULL || scratch == NULL) {
		fprintf(stderr, "aead_bound: out of memory\n");
		exit(1);
	}
	crypto_aead_chacha20poly1305_ietf_keygen(key);
	randombytes_buf(record, HEADER_LEN + plaintext_len);
	record[0] = (uint8_t)(ciphertext_len >> 8);
	record[1] = (uint8_t)ciphertext_len;

	for (int run = 0; run < RUNS; run++)
		encrypt_rates[run] = run_encrypt(key, record, body_len, seconds / RUNS);

	/* A fresh record sealed with nonce 0, for run_decrypt. */
	randombytes_buf(record + HEADER_LEN, plaintext_len);
	nonce_from_counter(nonce, 0);
	crypto_aead_chacha20poly1305_ietf_encrypt(record + HEADER_LEN, NULL, record + HEADER_LEN, plaintext_len,
						  record, HEADER_LEN, NULL, nonce, key);
	for (int run = 0; run < RUNS; run++)
		decrypt_rates[run] = run_decrypt(key, record, scratch, body_len, seconds / RUNS);

	qsort(encrypt_rates, RUNS, sizeof(double), compare_doubles);
	qsort(decrypt_rates, RUNS, sizeof(double), compare_doubles);
	printf("aead op=encrypt body=%zu gbps=%.3f\n", body_len, encrypt_rates[RUNS / 2] / 1e9);
	printf("aead op=decrypt body=%zu gbps=%.3f\n", body_len, decrypt_rates[RUNS / 2] / 1e9);

	sodium_memzero(key, sizeof(key));
	free(record);
	free(scratch);
}

int main(int argc, char **argv)
{
	double seconds = 2.0;
	static const size_t default_lengths[] = { MAX_BODY_LEN, 16384 };

	if (sodium_init() < 0) {
		fprintf(stderr, "aead_bound: sodium_init() failed\n");
		return 1;
	}
	if (argc > 1) {
		char *end;

		seconds = strtod(argv[1], &end);
		if (*end != '\0' || seconds <= 0 || seconds > 600) {
			fprintf(stderr, "aead_bound: invalid SECONDS_PER_SIZE '%s' (expected a number from 0 to 600)\n",
				argv[1]);
			return 2;
		}
	}
	if (argc <= 2) {
		for (size_t i = 0; i < sizeof(default_lengths) / sizeof(default_lengths[0]); i++)
			measure(default_lengths[i], seconds);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		char *end;
		unsigned long body_len = strtoul(argv[i], &end, 10);

		if (*end != '\0' || body_len < 1 || body_len > MAX_BODY_LEN) {
			fprintf(stderr, "aead_bound: invalid BODY_LEN '%s' (expected 1 to %d)\n", argv[i], MAX_BODY_LEN);
			return 2;
		}
		measure((size_t)body_len, seconds);
	}
	return 0;
}
