/*
 * Replay protection for UDP data datagrams: a sliding window over the
 * 64-bit counters a receiver has accepted, kept as a ring of 64-bit
 * blocks in the manner of RFC 6479. Datagrams may arrive reordered or
 * duplicated, so each counter is accepted at most once. A counter
 * REPLAY_WINDOW_SIZE or more below the greatest accepted one is rejected
 * as too old.
 *
 * Check before decrypting (cheap), then mark after the datagram has
 * authenticated, so that a forged datagram never moves the window.
 */
#ifndef WALGUARD_REPLAY_WINDOW_H
#define WALGUARD_REPLAY_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#define REPLAY_WINDOW_BLOCK_BITS 64
#define REPLAY_WINDOW_BLOCKS 32
#define REPLAY_WINDOW_BITS (REPLAY_WINDOW_BLOCK_BITS * REPLAY_WINDOW_BLOCKS)

/*
 * Counters less than this far below the greatest accepted one are still
 * accepted once. One block less than the bitmap, because the block of the greatest
 * counter is only partly behind it.
 */
#define REPLAY_WINDOW_SIZE (REPLAY_WINDOW_BITS - REPLAY_WINDOW_BLOCK_BITS)

enum replay_window_result {
	REPLAY_WINDOW_OK = 0,
	REPLAY_WINDOW_DUPLICATE,	/* this counter was accepted before */
	REPLAY_WINDOW_TOO_OLD,		/* below the window */
	REPLAY_WINDOW_LIMIT,		/* at or above the limit the caller set */
};

struct replay_window {
	uint64_t top;		/* greatest accepted counter plus one; 0 before the first */
	uint64_t blocks[REPLAY_WINDOW_BLOCKS];
};

void replay_window_init(struct replay_window *window);

/* Check whether counter would be accepted, without marking it. limit is the first counter never accepted. */
enum replay_window_result replay_window_check(const struct replay_window *window, uint64_t counter,
					      uint64_t limit);

/*
 * Check counter as replay_window_check() does and, when it passes, mark
 * it as accepted and slide the window forward if it is the newest.
 */
enum replay_window_result replay_window_accept(struct replay_window *window, uint64_t counter, uint64_t limit);

const char *replay_window_result_string(enum replay_window_result result);

#endif
