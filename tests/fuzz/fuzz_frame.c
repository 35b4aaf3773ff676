/*
 * libFuzzer target: a stream of transport records from the tunnel, parsed
 * the way the daemon parses its receive buffer.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return sodium_init() < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct noise_cipher receive = { .nonce = 0, .has_key = true };
	uint8_t *copy;
	size_t offset = 0;

	memset(receive.key, 0x11, sizeof(receive.key));
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);

	while (offset < size) {
		enum frame_type type;
		uint8_t *body;
		size_t body_len;
		size_t record_len;

		if (frame_record_length(copy + offset, size - offset, &record_len) != FRAME_OK)
			break;
		if (record_len > size - offset)
			break;
		if (frame_open(&receive, copy + offset, record_len, &type, &body, &body_len) != FRAME_OK)
			break;
		offset += record_len;
	}
	free(copy);
	return 0;
}
