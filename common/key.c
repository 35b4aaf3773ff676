#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

/* A key file contains 44 characters and a newline, so a file above this size is not one. */
#define KEY_FILE_MAX_SIZE 1024

/* Buffer for the one message of key_decode() that contains a number. */
static _Thread_local char decode_message[96];

static bool key_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool key_is_base64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

int key_decode(uint8_t key[KEY_LEN], const char *text, size_t len, const char **error)
{
	/* One byte more than a key, so that a 33-byte decode is detected. */
	uint8_t decoded[KEY_LEN + 1];
	size_t decoded_len = 0;
	size_t start = 0;
	size_t end = len;
	int result = -1;

	while (start < end && key_is_space(text[start]))
		start++;
	while (end > start && key_is_space(text[end - 1]))
		end--;

	if (start == end) {
		*error = "empty: expected 44 base64 characters";
		goto out;
	}
	for (size_t i = start; i < end; i++) {
		if (key_is_space(text[i])) {
			*error = "contains whitespace inside the key";
			goto out;
		}
	}
	if (end - start != KEY_BASE64_LEN) {
		snprintf(decode_message, sizeof(decode_message),
			 "wrong length: expected %d base64 characters for a %d-byte key, got %zu",
			 KEY_BASE64_LEN, KEY_LEN, end - start);
		*error = decode_message;
		goto out;
	}
	/*
	 * libsodium 1.0.18 decodes every byte from 0x80 up as '/' instead of
	 * failing, so the alphabet is checked here first. Where '=' may stand
	 * is left to libsodium.
	 */
	for (size_t i = start; i < end; i++) {
		if (!key_is_base64(text[i])) {
			*error = "not valid base64";
			goto out;
		}
	}
	if (sodium_base642bin(decoded, sizeof(decoded), text + start, end - start, NULL,
			      &decoded_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		*error = "not valid base64";
		goto out;
	}
	/* 44 characters decode to 31, 32 or 33 bytes, by the number of '='. */
	if (decoded_len > KEY_LEN) {
		*error = "decodes to 33 bytes instead of 32 (a key ends with one '=')";
		goto out;
	}
	if (decoded_len < KEY_LEN) {
		*error = "decodes to 31 bytes instead of 32 (a key ends with one '=')";
		goto out;
	}

	memcpy(key, decoded, KEY_LEN);
	result = 0;
out:
	sodium_memzero(decoded, sizeof(decoded));
	return result;
}

void key_encode(char text[KEY_BASE64_LEN + 1], const uint8_t key[KEY_LEN])
{
	sodium_bin2base64(text, KEY_BASE64_LEN + 1, key, KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

/*
 * Check the file behind an open descriptor, so that what is checked is
 * what gets read even if the path is swapped in between.
 */
static int key_check_file(int fd, const char *path, char *error, size_t error_size)
{
	struct stat st;
	unsigned int mode;

	if (fstat(fd, &st) != 0) {
		snprintf(error, error_size, "%s: cannot stat: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(error, error_size, "%s: not a regular file", path);
		return -1;
	}

	mode = (unsigned int)st.st_mode & 07777;
	if ((mode & 077) != 0) {
		snprintf(error, error_size, "%s: %s by group or others (mode %04o); run 'chmod 600 %s'",
			 path, (mode & 044) != 0 ? "readable" : "accessible", mode, path);
		return -1;
	}
	if (st.st_size > KEY_FILE_MAX_SIZE) {
		snprintf(error, error_size, "%s: too large to be a key file (%lld bytes, at most %d)",
			 path, (long long)st.st_size, KEY_FILE_MAX_SIZE);
		return -1;
	}
	return 0;
}

int key_load_secret_file(uint8_t key[KEY_LEN], const char *path, char *error, size_t error_size)
{
	/* One byte more than the limit, to notice a file that grew after fstat(). */
	char text[KEY_FILE_MAX_SIZE + 1];
	size_t used = 0;
	const char *decode_error;
	ssize_t n;
	int result = -1;
	int fd;

	/* O_NONBLOCK keeps a FIFO from blocking the open; fstat then rejects it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(error, error_size, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (key_check_file(fd, path, error, error_size) != 0)
		goto out;

	while (used < sizeof(text)) {
		n = read(fd, text + used, sizeof(text) - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(error, error_size, "%s: cannot read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > KEY_FILE_MAX_SIZE) {
		snprintf(error, error_size, "%s: too large to be a key file (more than %d bytes)",
			 path, KEY_FILE_MAX_SIZE);
		goto out;
	}

	if (key_decode(key, text, used, &decode_error) != 0) {
		snprintf(error, error_size, "%s: invalid key: %s", path, decode_error);
		goto out;
	}
	result = 0;
out:
	sodium_memzero(text, sizeof(text));
	close(fd);
	return result;
}
