/*
 * libFuzzer target: key text as found in a key file (key_load_secret_file()
 * passes the bytes read, NUL bytes included) or in a config value.
 *
 * Beyond memory errors it checks the contract of key.h: a failure sets an
 * error message, and a key is accepted only in its one canonical form, 44
 * base64 characters with optional whitespace around them.
 */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "key.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return sodium_init() < 0 ? -1 : 0;
}

static int is_key_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[KEY_LEN];
	uint8_t decoded_again[KEY_LEN];
	char text[KEY_BASE64_LEN + 1];
	const char *error = NULL;
	size_t start = 0;
	size_t end = size;

	if (key_decode(key, (const char *)data, size, &error) != 0) {
		if (error == NULL || error[0] == '\0')
			__builtin_trap();
		return 0;
	}

	/* The accepted text, without the whitespace around it, is the key's encoding. */
	while (start < end && is_key_space(data[start]))
		start++;
	while (end > start && is_key_space(data[end - 1]))
		end--;
	key_encode(text, key);
	if (end - start != KEY_BASE64_LEN || memcmp(data + start, text, KEY_BASE64_LEN) != 0)
		__builtin_trap();

	if (key_decode(decoded_again, text, KEY_BASE64_LEN, &error) != 0 ||
	    memcmp(decoded_again, key, KEY_LEN) != 0)
		__builtin_trap();
	return 0;
}
