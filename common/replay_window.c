#include "replay_window.h"

#include <string.h>

void replay_window_init(struct replay_window *window)
{
	memset(window, 0, sizeof(*window));
}

static size_t block_index(uint64_t counter)
{
	return (size_t)((counter / REPLAY_WINDOW_BLOCK_BITS) % REPLAY_WINDOW_BLOCKS);
}

static uint64_t bit_of(uint64_t counter)
{
	return UINT64_C(1) << (counter % REPLAY_WINDOW_BLOCK_BITS);
}

enum replay_window_result replay_window_check(const struct replay_window *window, uint64_t counter,
					      uint64_t limit)
{
	if (counter >= limit)
		return REPLAY_WINDOW_LIMIT;
	if (counter >= window->top)
		return REPLAY_WINDOW_OK;
	/* Here top > counter >= 0, so top - 1 does not wrap. */
	if (window->top - 1 - counter >= REPLAY_WINDOW_SIZE)
		return REPLAY_WINDOW_TOO_OLD;
	if (window->blocks[block_index(counter)] & bit_of(counter))
		return REPLAY_WINDOW_DUPLICATE;
	return REPLAY_WINDOW_OK;
}

/* Clear the blocks that counters above the current top and up to counter land in. */
static void slide_to(struct replay_window *window, uint64_t counter)
{
	uint64_t new_block = counter / REPLAY_WINDOW_BLOCK_BITS;
	uint64_t old_block;
	uint64_t steps;

	if (window->top == 0) {
		memset(window->blocks, 0, sizeof(window->blocks));
		window->top = counter + 1;
		return;
	}
	old_block = (window->top - 1) / REPLAY_WINDOW_BLOCK_BITS;
	steps = new_block - old_block;
	if (steps > REPLAY_WINDOW_BLOCKS)
		steps = REPLAY_WINDOW_BLOCKS;
	for (uint64_t i = 1; i <= steps; i++)
		window->blocks[(size_t)((old_block + i) % REPLAY_WINDOW_BLOCKS)] = 0;
	window->top = counter + 1;
}

enum replay_window_result replay_window_accept(struct replay_window *window, uint64_t counter, uint64_t limit)
{
	enum replay_window_result result = replay_window_check(window, counter, limit);

	if (result != REPLAY_WINDOW_OK)
		return result;
	/* counter < limit <= UINT64_MAX, so counter + 1 does not wrap. */
	if (counter >= window->top)
		slide_to(window, counter);
	window->blocks[block_index(counter)] |= bit_of(counter);
	return REPLAY_WINDOW_OK;
}

const char *replay_window_result_string(enum replay_window_result result)
{
	switch (result) {
	case REPLAY_WINDOW_OK:
		return "ok";
	case REPLAY_WINDOW_DUPLICATE:
		return "replayed counter";
	case REPLAY_WINDOW_TOO_OLD:
		return "counter below the replay window";
	case REPLAY_WINDOW_LIMIT:
		return "counter at the session's limit";
	}
	return "unknown";
}
