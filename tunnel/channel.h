/*
 * A channel carries one forwarded connection between two daemons: an
 * authenticated, encrypted, ordered byte stream with half-close. The
 * forwarding logic (forward.c) talks to channels only through this
 * interface, so that another transport can sit beside TCP without changes
 * there.
 */
#ifndef WALGUARD_CHANNEL_H
#define WALGUARD_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/*
 * Blocks handed to channel_send_data() have this much room before and
 * after the body, so that a transport can seal a record in place.
 */
#define CHANNEL_HEADROOM (FRAME_HEADER_LEN + FRAME_TYPE_LEN)
#define CHANNEL_TAILROOM NOISE_TAG_LEN
#define CHANNEL_MAX_BODY_LEN FRAME_MAX_BODY_LEN
#define CHANNEL_BLOCK_SIZE (CHANNEL_HEADROOM + CHANNEL_MAX_BODY_LEN + CHANNEL_TAILROOM)

struct channel;

/* Events a channel delivers to its owner. */
struct channel_events {
	/* Records may flow. */
	void (*opened)(void *owner);
	/* Bytes from the other side; valid only during the call. */
	void (*data)(void *owner, const uint8_t *data, size_t len);
	/* The other side will send no more data. */
	void (*fin)(void *owner);
	/* The bytes queued for sending fell below the low-water mark. */
	void (*drained)(void *owner);
	/*
	 * The channel closed by itself: an error, a reset from the other
	 * side, or both sides finished with FIN (then clean is true). reason
	 * states the cause in a few words. The channel must not be used
	 * after this call. It is not called for a close the owner asked for.
	 */
	void (*closed)(void *owner, bool clean, const char *reason);
};

struct channel_ops {
	/*
	 * Seal and send len bytes found at block + CHANNEL_HEADROOM. Sets
	 * *block_taken when the channel keeps the block (it frees it with
	 * free()); otherwise the caller may reuse it at once.
	 */
	int (*send_data)(struct channel *channel, uint8_t *block, size_t len, bool *block_taken);
	int (*send_fin)(struct channel *channel);
	/* Stop and restart delivering data events (backpressure). */
	void (*pause)(struct channel *channel);
	void (*resume)(struct channel *channel);
	/* Bytes accepted by send_data and not yet handed to the kernel. */
	size_t (*queued)(const struct channel *channel);
	/*
	 * Tear the channel down; with reset, first tell the other side that
	 * this connection was reset. No event follows.
	 */
	void (*close)(struct channel *channel, bool reset, const char *reason);
};

struct channel {
	const struct channel_ops *ops;
	const struct channel_events *events;
	void *owner;
};

#endif
