/*
 * Tests of key text encoding and of loading secret key files, on real
 * files in a temporary folder that the tests create and remove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "key.h"

/* The bytes 0, 1, ..., 31 and their base64 form. */
#define COUNTING_KEY_TEXT "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static char temp_dir[256];

static void counting_key(uint8_t key[KEY_LEN])
{
	for (int i = 0; i < KEY_LEN; i++)
		key[i] = (uint8_t)i;
}

/* Decode text and return the error message, or NULL when it decoded. */
static const char *decode_error(const char *text)
{
	uint8_t key[KEY_LEN];
	const char *error = NULL;

	if (key_decode(key, text, strlen(text), &error) == 0)
		return NULL;
	assert_non_null(error);
	return error;
}

static void assert_contains(const char *text, const char *part)
{
	if (text == NULL || strstr(text, part) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", part, text != NULL ? text : "(null)");
}

static void assert_starts_with(const char *text, const char *prefix)
{
	if (strncmp(text, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s\" to start with \"%s\"", text, prefix);
}

/* ---- Encoding ---- */

static void encode_known_key(void **unused)
{
	uint8_t key[KEY_LEN];
	char text[KEY_BASE64_LEN + 1];

	counting_key(key);
	key_encode(text, key);
	assert_string_equal(text, COUNTING_KEY_TEXT);
}

static void encode_decode_round_trip(void **unused)
{
	uint8_t key[KEY_LEN];
	uint8_t decoded[KEY_LEN];
	char text[KEY_BASE64_LEN + 1];
	const char *error = NULL;

	for (int round = 0; round < 100; round++) {
		randombytes_buf(key, sizeof(key));
		key_encode(text, key);
		assert_int_equal(strlen(text), KEY_BASE64_LEN);
		assert_int_equal(text[KEY_BASE64_LEN - 1], '=');
		assert_int_equal(key_decode(decoded, text, strlen(text), &error), 0);
		assert_memory_equal(decoded, key, KEY_LEN);
	}
}

static void decode_accepts_surrounding_whitespace(void **unused)
{
	const char *texts[] = {
		COUNTING_KEY_TEXT "\n",
		COUNTING_KEY_TEXT "\r\n",
		" \t" COUNTING_KEY_TEXT,
		"\n\n  " COUNTING_KEY_TEXT " \t\r\n\n",
	};
	uint8_t expected[KEY_LEN];
	uint8_t key[KEY_LEN];
	const char *error = NULL;

	counting_key(expected);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		memset(key, 0, sizeof(key));
		assert_int_equal(key_decode(key, texts[i], strlen(texts[i]), &error), 0);
		assert_memory_equal(key, expected, KEY_LEN);
	}
}

static void decode_uses_only_len_bytes(void **unused)
{
	const char *text = COUNTING_KEY_TEXT "garbage after the given length";
	uint8_t key[KEY_LEN];
	const char *error = NULL;

	assert_int_equal(key_decode(key, text, KEY_BASE64_LEN, &error), 0);
}

static void decode_rejects_whitespace_inside(void **unused)
{
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0O DxAREhMUFRYXGBkaGxwdHh8="),
			"whitespace inside");
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0O\nDxAREhMUFRYXGBkaGxwdHh8="),
			"whitespace inside");
}

static void decode_rejects_wrong_length(void **unused)
{
	/* 43 and 45 characters. */
	assert_contains(decode_error("AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
			"wrong length: expected 44 base64 characters for a 32-byte key, got 43");
	assert_contains(decode_error("AAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
			"wrong length: expected 44 base64 characters for a 32-byte key, got 45");
}

static void decode_rejects_empty(void **unused)
{
	assert_contains(decode_error(""), "empty");
	assert_contains(decode_error(" \r\n\t"), "empty");
}

static void decode_rejects_non_base64(void **unused)
{
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh*="),
			"not valid base64");
	/* The URL-safe alphabet is another variant, not the one keys use. */
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8="),
			"not valid base64");
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd_h8="),
			"not valid base64");
}

static void decode_rejects_bytes_above_ascii(void **unused)
{
	char text[] = COUNTING_KEY_TEXT;
	const char *error;

	/* libsodium 1.0.18 decodes each of these bytes as '/' instead of failing. */
	for (int c = 0x80; c <= 0xff; c++) {
		text[10] = (char)c;
		error = decode_error(text);
		if (error == NULL)
			fail_msg("byte 0x%02x accepted as a base64 character", c);
		assert_contains(error, "not valid base64");
	}
}

static void decode_rejects_wrong_padding(void **unused)
{
	/* '=' in the middle. */
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0ODxAREhMUF=YXGBkaGxwdHh8="),
			"not valid base64");
	/* The last character carries bits that a 32-byte key cannot have. */
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9="),
			"not valid base64");
	/* Two '=' make 31 bytes. */
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="),
			"decodes to 31 bytes");
}

static void decode_rejects_33_bytes(void **unused)
{
	/* 44 characters without padding are the bytes 0..32. */
	assert_contains(decode_error("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"),
			"decodes to 33 bytes");
}

/* ---- Key files ---- */

static int temp_dir_create(void **unused)
{
	const char *base = getenv("TMPDIR");

	snprintf(temp_dir, sizeof(temp_dir), "%s/walguard-test-key.XXXXXX",
		 base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(temp_dir) == NULL)
		return -1;
	return sodium_init() < 0 ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int temp_dir_remove(void **unused)
{
	/* Depth first and without following links: only what the tests made goes. */
	return nftw(temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void temp_path(char *out, size_t out_size, const char *name)
{
	snprintf(out, out_size, "%s/%s", temp_dir, name);
}

/* Write a file with exactly the given mode, whatever the umask. */
static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void write_key_file(const char *name, mode_t mode, char *path, size_t path_size)
{
	const char *text = COUNTING_KEY_TEXT "\n";

	temp_path(path, path_size, name);
	write_file(path, text, strlen(text), mode);
}

/* Load a file and return the error message, or NULL when it loaded. */
static const char *load_error(const char *path, char *error, size_t error_size)
{
	uint8_t *key = sodium_malloc(KEY_LEN);
	uint8_t expected[KEY_LEN];
	int result;

	assert_non_null(key);
	result = key_load_secret_file(key, path, error, error_size);
	if (result == 0) {
		counting_key(expected);
		assert_memory_equal(key, expected, KEY_LEN);
	}
	sodium_free(key);
	return result == 0 ? NULL : error;
}

static void load_mode_0600_ok(void **unused)
{
	char path[512];
	char error[512];

	write_key_file("ok.key", 0600, path, sizeof(path));
	assert_null(load_error(path, error, sizeof(error)));
}

static void load_mode_0400_ok(void **unused)
{
	char path[512];
	char error[512];

	write_key_file("read-only.key", 0400, path, sizeof(path));
	assert_null(load_error(path, error, sizeof(error)));
}

static void assert_mode_rejected(const char *name, mode_t mode, const char *mode_text)
{
	char path[512];
	char error[512];
	char fix[600];
	const char *message;

	write_key_file(name, mode, path, sizeof(path));
	message = load_error(path, error, sizeof(error));
	assert_non_null(message);
	assert_starts_with(message, path);
	assert_contains(message, mode_text);
	snprintf(fix, sizeof(fix), "chmod 600 %s", path);
	assert_contains(message, fix);
}

static void load_mode_0640_rejected(void **unused)
{
	assert_mode_rejected("group.key", 0640, "readable by group or others (mode 0640)");
}

static void load_mode_0604_rejected(void **unused)
{
	assert_mode_rejected("others.key", 0604, "readable by group or others (mode 0604)");
}

static void load_mode_0620_rejected(void **unused)
{
	assert_mode_rejected("group-write.key", 0620, "(mode 0620)");
}

static void load_symlink_to_0600_ok(void **unused)
{
	char target[512];
	char link_path[512];
	char error[512];

	write_key_file("link-target-ok.key", 0600, target, sizeof(target));
	temp_path(link_path, sizeof(link_path), "link-ok.key");
	unlink(link_path);
	assert_int_equal(symlink(target, link_path), 0);
	assert_null(load_error(link_path, error, sizeof(error)));
}

static void load_symlink_to_0644_rejected(void **unused)
{
	char target[512];
	char link_path[512];
	char error[512];
	const char *message;

	write_key_file("link-target-open.key", 0644, target, sizeof(target));
	temp_path(link_path, sizeof(link_path), "link-open.key");
	unlink(link_path);
	assert_int_equal(symlink(target, link_path), 0);
	message = load_error(link_path, error, sizeof(error));
	assert_non_null(message);
	assert_starts_with(message, link_path);
	assert_contains(message, "(mode 0644)");
}

static void load_directory_rejected(void **unused)
{
	char path[512];
	char error[512];
	const char *message;

	temp_path(path, sizeof(path), "a-folder.key");
	assert_int_equal(mkdir(path, 0700), 0);
	message = load_error(path, error, sizeof(error));
	assert_non_null(message);
	assert_starts_with(message, path);
	assert_contains(message, "not a regular file");
}

static void load_fifo_rejected(void **unused)
{
	char path[512];
	char error[512];
	const char *message;

	/* Opening a FIFO for reading would block without a writer. */
	temp_path(path, sizeof(path), "a-fifo.key");
	assert_int_equal(mkfifo(path, 0600), 0);
	message = load_error(path, error, sizeof(error));
	assert_non_null(message);
	assert_contains(message, "not a regular file");
}

static void load_missing_file_rejected(void **unused)
{
	char path[512];
	char error[512];
	const char *message;

	temp_path(path, sizeof(path), "no-such.key");
	message = load_error(path, error, sizeof(error));
	assert_non_null(message);
	assert_starts_with(message, path);
	assert_contains(message, "No such file or directory");
}

static void load_oversized_file_rejected(void **unused)
{
	char text[2048];
	char path[512];
	char error[512];
	const char *message;

	/* A valid key followed by blank lines, so only the size is wrong. */
	memset(text, '\n', sizeof(text));
	memcpy(text, COUNTING_KEY_TEXT, KEY_BASE64_LEN);
	temp_path(path, sizeof(path), "big.key");
	write_file(path, text, sizeof(text), 0600);
	message = load_error(path, error, sizeof(error));
	assert_non_null(message);
	assert_starts_with(message, path);
	assert_contains(message, "too large to be a key file");
}

static void load_invalid_content_rejected(void **unused)
{
	const char *text = "this is not a key\n";
	char path[512];
	char error[512];
	const char *message;

	temp_path(path, sizeof(path), "garbage.key");
	write_file(path, text, strlen(text), 0600);
	message = load_error(path, error, sizeof(error));
	assert_non_null(message);
	assert_starts_with(message, path);
	assert_contains(message, "invalid key");
}

static void load_error_truncated_safely(void **unused)
{
	char path[512];
	char error[16];
	const char *message;

	temp_path(path, sizeof(path), "no-such-either.key");
	message = load_error(path, error, sizeof(error));
	assert_non_null(message);
	assert_int_equal(strlen(message), sizeof(error) - 1);
}

int main(void)
{
	const struct CMUnitTest encoding_tests[] = {
		cmocka_unit_test(encode_known_key),
		cmocka_unit_test(encode_decode_round_trip),
		cmocka_unit_test(decode_accepts_surrounding_whitespace),
		cmocka_unit_test(decode_uses_only_len_bytes),
		cmocka_unit_test(decode_rejects_whitespace_inside),
		cmocka_unit_test(decode_rejects_wrong_length),
		cmocka_unit_test(decode_rejects_empty),
		cmocka_unit_test(decode_rejects_non_base64),
		cmocka_unit_test(decode_rejects_bytes_above_ascii),
		cmocka_unit_test(decode_rejects_wrong_padding),
		cmocka_unit_test(decode_rejects_33_bytes),
	};
	const struct CMUnitTest file_tests[] = {
		cmocka_unit_test(load_mode_0600_ok),
		cmocka_unit_test(load_mode_0400_ok),
		cmocka_unit_test(load_mode_0640_rejected),
		cmocka_unit_test(load_mode_0604_rejected),
		cmocka_unit_test(load_mode_0620_rejected),
		cmocka_unit_test(load_symlink_to_0600_ok),
		cmocka_unit_test(load_symlink_to_0644_rejected),
		cmocka_unit_test(load_directory_rejected),
		cmocka_unit_test(load_fifo_rejected),
		cmocka_unit_test(load_missing_file_rejected),
		cmocka_unit_test(load_oversized_file_rejected),
		cmocka_unit_test(load_invalid_content_rejected),
		cmocka_unit_test(load_error_truncated_safely),
	};
	int failed = 0;

	if (sodium_init() < 0)
		return 1;
	failed += cmocka_run_group_tests_name("key encoding", encoding_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("key files", file_tests, temp_dir_create, temp_dir_remove);
	return failed;
}
