/*
 * libFuzzer target: a stream of transport records from the tunnel, opened
 * the way tunnel/tcp_channel.c opens its receive buffer (see
 * fuzz_open_records()). Each input is opened twice, from counter 0 and from
 * FUZZ_FRAME_NEAR_LIMIT_NONCE, so that the nonce limit is reached too.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz_support.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return sodium_init() < 0 ? -1 : 0;
}

/* frame_open() works in place, so each pass gets its own copy. */
static void open_stream(const uint8_t *data, size_t size, uint64_t first_nonce)
{
	struct noise_cipher receive;
	uint8_t *rx;

	rx = malloc(size > 0 ? size : 1);
	if (rx == NULL)
		return;
	memcpy(rx, data, size);
	fuzz_frame_cipher(&receive, first_nonce);

	fuzz_open_records(&receive, rx, size);

	noise_cipher_wipe(&receive);
	free(rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	open_stream(data, size, 0);
	open_stream(data, size, FUZZ_FRAME_NEAR_LIMIT_NONCE);
	return 0;
}
