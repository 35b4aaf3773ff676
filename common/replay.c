#include "replay.h"

#include <string.h>

/* wire.h defines the seconds field as 2^62 + Unix time. */
#define TAI64_UNIX_OFFSET (UINT64_C(1) << 62)
#define NANOSECONDS_PER_SECOND UINT32_C(1000000000)
#define TIMESTAMP_SECONDS_LEN 8

static uint64_t timestamp_seconds(const uint8_t timestamp[WIRE_TIMESTAMP_LEN])
{
	uint64_t seconds = 0;
	size_t i;

	for (i = 0; i < TIMESTAMP_SECONDS_LEN; i++)
		seconds = seconds << 8 | timestamp[i];
	return seconds;
}

static uint32_t timestamp_nanoseconds(const uint8_t timestamp[WIRE_TIMESTAMP_LEN])
{
	uint32_t nanoseconds = 0;
	size_t i;

	for (i = TIMESTAMP_SECONDS_LEN; i < WIRE_TIMESTAMP_LEN; i++)
		nanoseconds = nanoseconds << 8 | timestamp[i];
	return nanoseconds;
}

static void timestamp_store(uint8_t timestamp[WIRE_TIMESTAMP_LEN], uint64_t seconds, uint32_t nanoseconds)
{
	size_t i;

	for (i = 0; i < TIMESTAMP_SECONDS_LEN; i++)
		timestamp[i] = (uint8_t)(seconds >> (8 * (TIMESTAMP_SECONDS_LEN - 1 - i)));
	for (i = 0; i < WIRE_TIMESTAMP_LEN - TIMESTAMP_SECONDS_LEN; i++)
		timestamp[TIMESTAMP_SECONDS_LEN + i] = (uint8_t)(nanoseconds >> (8 * (3 - i)));
}

/* Both fields are big-endian, so byte order is time order for valid timestamps. */
static int timestamp_compare(const uint8_t a[WIRE_TIMESTAMP_LEN], const uint8_t b[WIRE_TIMESTAMP_LEN])
{
	return memcmp(a, b, WIRE_TIMESTAMP_LEN);
}

/* Return whether timestamp is more than the tolerance older than newest. */
static bool timestamp_outdated(const uint8_t timestamp[WIRE_TIMESTAMP_LEN],
			       const uint8_t newest[WIRE_TIMESTAMP_LEN])
{
	uint64_t seconds = timestamp_seconds(timestamp);
	uint64_t newest_seconds = timestamp_seconds(newest);
	uint64_t age;

	if (seconds >= newest_seconds)
		return false;
	age = newest_seconds - seconds;
	if (age != REPLAY_TIMESTAMP_TOLERANCE_SECONDS)
		return age > REPLAY_TIMESTAMP_TOLERANCE_SECONDS;
	return timestamp_nanoseconds(newest) > timestamp_nanoseconds(timestamp);
}

/*
 * The window keeps the REPLAY_TIMESTAMP_WINDOW greatest timestamps
 * accepted so far, in no order. A forgotten timestamp is smaller than every
 * remembered one, so its replay fails the "older than every remembered
 * timestamp" check even though the window no longer contains it.
 */
bool replay_timestamps_accept(struct replay_timestamps *window, const uint8_t timestamp[WIRE_TIMESTAMP_LEN])
{
	uint32_t remembered = window->count < REPLAY_TIMESTAMP_WINDOW ? window->count : REPLAY_TIMESTAMP_WINDOW;
	uint32_t oldest = 0;
	uint32_t i;

	if (timestamp_nanoseconds(timestamp) >= NANOSECONDS_PER_SECOND)
		return false;
	if (remembered > 0 && timestamp_outdated(timestamp, window->newest))
		return false;

	for (i = 0; i < remembered; i++) {
		if (timestamp_compare(window->accepted[i], timestamp) == 0)
			return false;
		if (timestamp_compare(window->accepted[i], window->accepted[oldest]) < 0)
			oldest = i;
	}

	if (remembered == REPLAY_TIMESTAMP_WINDOW) {
		if (timestamp_compare(timestamp, window->accepted[oldest]) < 0)
			return false;
		memcpy(window->accepted[oldest], timestamp, WIRE_TIMESTAMP_LEN);
	} else {
		memcpy(window->accepted[remembered], timestamp, WIRE_TIMESTAMP_LEN);
		window->count = remembered + 1;
	}

	if (remembered == 0 || timestamp_compare(timestamp, window->newest) > 0)
		memcpy(window->newest, timestamp, WIRE_TIMESTAMP_LEN);
	return true;
}

/* Whole seconds in nanoseconds are carried into the seconds. */
void replay_timestamp_encode(uint8_t timestamp[WIRE_TIMESTAMP_LEN], uint64_t unix_seconds,
			     uint32_t nanoseconds)
{
	uint64_t seconds = TAI64_UNIX_OFFSET + unix_seconds + nanoseconds / NANOSECONDS_PER_SECOND;

	timestamp_store(timestamp, seconds, nanoseconds % NANOSECONDS_PER_SECOND);
}

void replay_timestamp_next(uint8_t timestamp[WIRE_TIMESTAMP_LEN], const uint8_t previous[WIRE_TIMESTAMP_LEN],
			   uint64_t unix_seconds, uint32_t nanoseconds)
{
	uint8_t now[WIRE_TIMESTAMP_LEN];
	uint64_t seconds;
	uint32_t previous_nanoseconds;

	replay_timestamp_encode(now, unix_seconds, nanoseconds);
	if (timestamp_compare(now, previous) > 0) {
		memcpy(timestamp, now, WIRE_TIMESTAMP_LEN);
		return;
	}

	/* The clock stood still or went back: one nanosecond after previous. */
	seconds = timestamp_seconds(previous);
	previous_nanoseconds = timestamp_nanoseconds(previous);
	if (previous_nanoseconds >= NANOSECONDS_PER_SECOND - 1)
		timestamp_store(timestamp, seconds + 1, 0);
	else
		timestamp_store(timestamp, seconds, previous_nanoseconds + 1);
}
