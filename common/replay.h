/*
 * Replay protection for handshake initiations. Each initiation carries a
 * TAI64N timestamp, and the responder accepts a timestamp from a peer only
 * once. Initiations from one peer may arrive out of order because every
 * tunnel connection is its own TCP connection, so the responder remembers
 * the newest REPLAY_TIMESTAMP_WINDOW timestamps rather than just the
 * newest one.
 */
#ifndef WALGUARD_REPLAY_H
#define WALGUARD_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

#define REPLAY_TIMESTAMP_WINDOW 64

/* An initiation older than the newest accepted one by more than this is rejected. */
#define REPLAY_TIMESTAMP_TOLERANCE_SECONDS 60

struct replay_timestamps {
	uint8_t accepted[REPLAY_TIMESTAMP_WINDOW][WIRE_TIMESTAMP_LEN];
	uint32_t count;
	uint8_t newest[WIRE_TIMESTAMP_LEN];
};

/*
 * Accept and remember the timestamp, or return false when it was seen
 * before, is older than every remembered timestamp while the window is
 * full, or is older than the newest by more than the tolerance. When the
 * window is full, the oldest timestamp is forgotten.
 */
bool replay_timestamps_accept(struct replay_timestamps *window, const uint8_t timestamp[WIRE_TIMESTAMP_LEN]);

/* Encode a TAI64N timestamp from Unix time. */
void replay_timestamp_encode(uint8_t timestamp[WIRE_TIMESTAMP_LEN], uint64_t unix_seconds,
			     uint32_t nanoseconds);

/*
 * The timestamp for the next initiation to one peer: now, or one
 * nanosecond after the previous one when the clock has not moved past it,
 * so that the timestamps one initiator sends are strictly increasing.
 */
void replay_timestamp_next(uint8_t timestamp[WIRE_TIMESTAMP_LEN], const uint8_t previous[WIRE_TIMESTAMP_LEN],
			   uint64_t unix_seconds, uint32_t nanoseconds);

#endif
