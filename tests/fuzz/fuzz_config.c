/* libFuzzer target: the text of a config file. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return sodium_init() < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config config;
	struct config_errors errors = { 0 };
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	memset(&config, 0, sizeof(config));
	config_parse_string(&config, text, "/fuzz/walguard.conf", &errors);
	config_free(&config);
	config_errors_free(&errors);
	free(text);
	return 0;
}
