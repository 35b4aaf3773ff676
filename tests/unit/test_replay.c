/* Unit tests of common/replay.c: the initiation timestamp window and TAI64N timestamps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "replay.h"

#define BASE_SECONDS UINT64_C(1764878400)
#define MILLISECOND UINT32_C(1000000)

/* The timestamp at BASE_SECONDS plus offset_ms milliseconds. */
static void at_ms(uint8_t timestamp[WIRE_TIMESTAMP_LEN], uint64_t offset_ms)
{
	replay_timestamp_encode(timestamp, BASE_SECONDS + offset_ms / 1000,
				(uint32_t)(offset_ms % 1000) * MILLISECOND);
}

static bool accept_ms(struct replay_timestamps *window, uint64_t offset_ms)
{
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	at_ms(timestamp, offset_ms);
	return replay_timestamps_accept(window, timestamp);
}

static void test_increasing_accepted(void **state)
{
	struct replay_timestamps window = { 0 };
	uint8_t newest[WIRE_TIMESTAMP_LEN];
	uint64_t ms;

	for (ms = 0; ms < 3 * REPLAY_TIMESTAMP_WINDOW; ms++)
		assert_true(accept_ms(&window, ms));
	assert_int_equal(window.count, REPLAY_TIMESTAMP_WINDOW);
	at_ms(newest, 3 * REPLAY_TIMESTAMP_WINDOW - 1);
	assert_memory_equal(window.newest, newest, WIRE_TIMESTAMP_LEN);
}

static void test_repeat_rejected(void **state)
{
	struct replay_timestamps window = { 0 };
	uint64_t ms;

	assert_true(accept_ms(&window, 0));
	assert_false(accept_ms(&window, 0));

	/* Still rejected after newer ones, while it is in the window. */
	for (ms = 1; ms < 10; ms++)
		assert_true(accept_ms(&window, ms * 1000));
	assert_false(accept_ms(&window, 0));
	assert_false(accept_ms(&window, 5000));
	assert_int_equal(window.count, 10);
}

static void test_repeat_rejected_after_window_wrapped(void **state)
{
	struct replay_timestamps window = { 0 };
	uint64_t ms;

	for (ms = 0; ms < 4 * REPLAY_TIMESTAMP_WINDOW + 3; ms++)
		assert_true(accept_ms(&window, ms));

	/* Every timestamp, forgotten or remembered, is rejected a second time. */
	for (ms = 0; ms < 4 * REPLAY_TIMESTAMP_WINDOW + 3; ms++)
		assert_false(accept_ms(&window, ms));
	assert_int_equal(window.count, REPLAY_TIMESTAMP_WINDOW);
}

static void test_repeat_rejected_long_after(void **state)
{
	struct replay_timestamps window = { 0 };

	assert_true(accept_ms(&window, 0));
	assert_true(accept_ms(&window, 3600 * 1000));
	assert_false(accept_ms(&window, 0));
}

static void test_out_of_order_accepted_once(void **state)
{
	struct replay_timestamps window = { 0 };
	const uint64_t order[] = { 500, 300, 400, 100, 200, 600, 50 };
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		assert_true(accept_ms(&window, order[i]));
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		assert_false(accept_ms(&window, order[i]));
}

/* With the window full, gaps between remembered timestamps still fill once. */
static void test_full_window_accepts_gaps(void **state)
{
	struct replay_timestamps window = { 0 };
	uint64_t ms;

	for (ms = 0; ms < REPLAY_TIMESTAMP_WINDOW; ms++)
		assert_true(accept_ms(&window, 100 + 2 * ms));
	assert_int_equal(window.count, REPLAY_TIMESTAMP_WINDOW);

	/* 101 lies between 100 and 102, so it is accepted and replaces 100, the oldest. */
	assert_true(accept_ms(&window, 101));
	assert_false(accept_ms(&window, 101));
	assert_false(accept_ms(&window, 100));
}

static void test_full_window_rejects_older_than_all(void **state)
{
	struct replay_timestamps window = { 0 };
	uint64_t ms;

	for (ms = 100; ms < 100 + REPLAY_TIMESTAMP_WINDOW; ms++)
		assert_true(accept_ms(&window, ms));

	/* Never seen, within the tolerance, but older than every remembered one. */
	assert_false(accept_ms(&window, 99));
	assert_false(accept_ms(&window, 0));

	/* A newer one pushes 100 out, so 100 is now older than all. */
	assert_true(accept_ms(&window, 100 + REPLAY_TIMESTAMP_WINDOW));
	assert_false(accept_ms(&window, 100));
}

static void test_window_not_full_accepts_older(void **state)
{
	struct replay_timestamps window = { 0 };

	assert_true(accept_ms(&window, 10000));
	assert_true(accept_ms(&window, 5000));
	assert_true(accept_ms(&window, 1000));
}

static void test_tolerance(void **state)
{
	const uint64_t tolerance_ms = REPLAY_TIMESTAMP_TOLERANCE_SECONDS * 1000;
	const uint64_t newest_ms = 10 * tolerance_ms + 500;
	struct replay_timestamps window = { 0 };
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];

	assert_true(accept_ms(&window, newest_ms));

	/* Exactly the tolerance older is accepted, one nanosecond more is not. */
	at_ms(timestamp, newest_ms - tolerance_ms);
	assert_true(replay_timestamps_accept(&window, timestamp));
	replay_timestamp_encode(timestamp, BASE_SECONDS + (newest_ms - tolerance_ms) / 1000,
				500 * MILLISECOND - 1);
	assert_false(replay_timestamps_accept(&window, timestamp));
	assert_false(accept_ms(&window, newest_ms - tolerance_ms - 1000));
	assert_false(accept_ms(&window, 0));

	/* A much newer one moves the tolerance along. */
	assert_true(accept_ms(&window, newest_ms + 2 * tolerance_ms));
	assert_false(accept_ms(&window, newest_ms + 1));
}

static void test_seconds_compare_before_nanoseconds(void **state)
{
	struct replay_timestamps window = { 0 };
	uint8_t later[WIRE_TIMESTAMP_LEN];
	uint8_t earlier[WIRE_TIMESTAMP_LEN];

	replay_timestamp_encode(later, BASE_SECONDS + 1, 0);
	replay_timestamp_encode(earlier, BASE_SECONDS, 999999999);
	assert_true(replay_timestamps_accept(&window, later));
	assert_true(replay_timestamps_accept(&window, earlier));
	assert_memory_equal(window.newest, later, WIRE_TIMESTAMP_LEN);
}

static void test_invalid_nanoseconds_rejected(void **state)
{
	struct replay_timestamps window = { 0 };
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	const uint32_t invalid[] = { 1000000000, 1000000001, UINT32_MAX };
	size_t i;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		replay_timestamp_encode(timestamp, BASE_SECONDS, 0);
		timestamp[8] = (uint8_t)(invalid[i] >> 24);
		timestamp[9] = (uint8_t)(invalid[i] >> 16);
		timestamp[10] = (uint8_t)(invalid[i] >> 8);
		timestamp[11] = (uint8_t)invalid[i];
		assert_false(replay_timestamps_accept(&window, timestamp));
	}
	assert_int_equal(window.count, 0);

	replay_timestamp_encode(timestamp, BASE_SECONDS, 999999999);
	assert_true(replay_timestamps_accept(&window, timestamp));
}

static void test_encode_layout(void **state)
{
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t carried[WIRE_TIMESTAMP_LEN];
	const uint8_t epoch[WIRE_TIMESTAMP_LEN] = { 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	/* 2^62 + 0x01020304 seconds and 0x075bcd15 = 123456789 nanoseconds. */
	const uint8_t example[WIRE_TIMESTAMP_LEN] = {
		0x40, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x07, 0x5b, 0xcd, 0x15,
	};

	replay_timestamp_encode(timestamp, 0, 0);
	assert_memory_equal(timestamp, epoch, WIRE_TIMESTAMP_LEN);
	replay_timestamp_encode(timestamp, 0x01020304, 123456789);
	assert_memory_equal(timestamp, example, WIRE_TIMESTAMP_LEN);

	/* Whole seconds in the nanoseconds are carried over. */
	replay_timestamp_encode(timestamp, BASE_SECONDS, 1500000000);
	replay_timestamp_encode(carried, BASE_SECONDS + 1, 500000000);
	assert_memory_equal(timestamp, carried, WIRE_TIMESTAMP_LEN);
}

static void test_next_follows_clock(void **state)
{
	uint8_t previous[WIRE_TIMESTAMP_LEN] = { 0 };
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t expected[WIRE_TIMESTAMP_LEN];

	/* No initiation yet: previous is all zero. */
	replay_timestamp_next(timestamp, previous, BASE_SECONDS, 42);
	replay_timestamp_encode(expected, BASE_SECONDS, 42);
	assert_memory_equal(timestamp, expected, WIRE_TIMESTAMP_LEN);

	memcpy(previous, timestamp, WIRE_TIMESTAMP_LEN);
	replay_timestamp_next(timestamp, previous, BASE_SECONDS + 5, 7);
	replay_timestamp_encode(expected, BASE_SECONDS + 5, 7);
	assert_memory_equal(timestamp, expected, WIRE_TIMESTAMP_LEN);
}

static void test_next_when_clock_stands_still(void **state)
{
	uint8_t previous[WIRE_TIMESTAMP_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t expected[WIRE_TIMESTAMP_LEN];

	replay_timestamp_encode(previous, BASE_SECONDS, 5);
	replay_timestamp_next(timestamp, previous, BASE_SECONDS, 5);
	replay_timestamp_encode(expected, BASE_SECONDS, 6);
	assert_memory_equal(timestamp, expected, WIRE_TIMESTAMP_LEN);
}

static void test_next_when_clock_goes_back(void **state)
{
	uint8_t previous[WIRE_TIMESTAMP_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t expected[WIRE_TIMESTAMP_LEN];

	replay_timestamp_encode(previous, BASE_SECONDS, 5);
	replay_timestamp_next(timestamp, previous, BASE_SECONDS - 3600, 999);
	replay_timestamp_encode(expected, BASE_SECONDS, 6);
	assert_memory_equal(timestamp, expected, WIRE_TIMESTAMP_LEN);
}

static void test_next_nanosecond_rollover(void **state)
{
	uint8_t previous[WIRE_TIMESTAMP_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t expected[WIRE_TIMESTAMP_LEN];

	replay_timestamp_encode(previous, BASE_SECONDS, 999999999);
	replay_timestamp_next(timestamp, previous, BASE_SECONDS, 999999999);
	replay_timestamp_encode(expected, BASE_SECONDS + 1, 0);
	assert_memory_equal(timestamp, expected, WIRE_TIMESTAMP_LEN);

	replay_timestamp_next(timestamp, previous, BASE_SECONDS - 1, 0);
	assert_memory_equal(timestamp, expected, WIRE_TIMESTAMP_LEN);
}

/* A stuck or retreating clock still yields strictly increasing, valid and accepted timestamps. */
static void test_next_sequence_strictly_increasing(void **state)
{
	struct replay_timestamps window = { 0 };
	uint8_t previous[WIRE_TIMESTAMP_LEN] = { 0 };
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint32_t nanoseconds = 999999990;
	int i;

	for (i = 0; i < 1000; i++) {
		/* The clock stands still or goes back by up to two seconds. */
		uint64_t seconds = BASE_SECONDS - (uint64_t)(i % 3);

		replay_timestamp_next(timestamp, previous, seconds, nanoseconds);
		assert_true(memcmp(timestamp, previous, WIRE_TIMESTAMP_LEN) > 0);
		assert_true(((uint32_t)timestamp[8] << 24 | (uint32_t)timestamp[9] << 16 |
			     (uint32_t)timestamp[10] << 8 | timestamp[11]) < 1000000000);
		assert_true(replay_timestamps_accept(&window, timestamp));
		memcpy(previous, timestamp, WIRE_TIMESTAMP_LEN);
	}

	/* previous may be the output buffer itself. */
	replay_timestamp_next(previous, previous, BASE_SECONDS, 0);
	assert_true(memcmp(previous, timestamp, WIRE_TIMESTAMP_LEN) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_increasing_accepted),
		cmocka_unit_test(test_repeat_rejected),
		cmocka_unit_test(test_repeat_rejected_after_window_wrapped),
		cmocka_unit_test(test_repeat_rejected_long_after),
		cmocka_unit_test(test_out_of_order_accepted_once),
		cmocka_unit_test(test_full_window_accepts_gaps),
		cmocka_unit_test(test_full_window_rejects_older_than_all),
		cmocka_unit_test(test_window_not_full_accepts_older),
		cmocka_unit_test(test_tolerance),
		cmocka_unit_test(test_seconds_compare_before_nanoseconds),
		cmocka_unit_test(test_invalid_nanoseconds_rejected),
		cmocka_unit_test(test_encode_layout),
		cmocka_unit_test(test_next_follows_clock),
		cmocka_unit_test(test_next_when_clock_stands_still),
		cmocka_unit_test(test_next_when_clock_goes_back),
		cmocka_unit_test(test_next_nanosecond_rollover),
		cmocka_unit_test(test_next_sequence_strictly_increasing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
