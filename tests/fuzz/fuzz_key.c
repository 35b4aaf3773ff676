/* libFuzzer target: key text as found in a key file or a config value. */
#include <sodium.h>
#include <stdint.h>

#include "key.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return sodium_init() < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[KEY_LEN];
	char text[KEY_BASE64_LEN + 1];
	const char *error = NULL;

	if (key_decode(key, (const char *)data, size, &error) == 0) {
		key_encode(text, key);
		if (key_decode(key, text, KEY_BASE64_LEN, &error) != 0)
			__builtin_trap();
	}
	return 0;
}
