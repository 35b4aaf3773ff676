/* Unit tests of common/replay_window.c: the counter window for data datagrams. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "replay_window.h"

#define NO_LIMIT UINT64_MAX

static void test_in_order_accepted(void **state)
{
	struct replay_window window;

	replay_window_init(&window);
	for (uint64_t counter = 0; counter < 5 * REPLAY_WINDOW_BITS; counter++)
		assert_int_equal(replay_window_accept(&window, counter, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(window.top, 5 * REPLAY_WINDOW_BITS);
}

static void test_first_counter_may_be_large(void **state)
{
	struct replay_window window;

	replay_window_init(&window);
	assert_int_equal(replay_window_accept(&window, 1000000, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 1000000 - 1, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 1000000, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
}

static void test_duplicate_rejected(void **state)
{
	struct replay_window window;

	replay_window_init(&window);
	assert_int_equal(replay_window_accept(&window, 0, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 0, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
	assert_int_equal(replay_window_accept(&window, 7, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 7, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
	assert_int_equal(replay_window_accept(&window, 0, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
}

static void test_out_of_order_accepted_once(void **state)
{
	struct replay_window window;

	replay_window_init(&window);
	assert_int_equal(replay_window_accept(&window, 100, NO_LIMIT), REPLAY_WINDOW_OK);
	for (uint64_t counter = 0; counter < 100; counter += 3)
		assert_int_equal(replay_window_accept(&window, counter, NO_LIMIT), REPLAY_WINDOW_OK);
	for (uint64_t counter = 0; counter < 100; counter += 3)
		assert_int_equal(replay_window_accept(&window, counter, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
	/* The ones skipped above are still open. */
	for (uint64_t counter = 1; counter < 100; counter += 3)
		assert_int_equal(replay_window_accept(&window, counter, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(window.top, 101);
}

static void test_window_edge(void **state)
{
	struct replay_window window;
	uint64_t top = 10 * REPLAY_WINDOW_BITS + 17;

	replay_window_init(&window);
	assert_int_equal(replay_window_accept(&window, top, NO_LIMIT), REPLAY_WINDOW_OK);
	/* The oldest counter still inside, then the first one below. */
	assert_int_equal(replay_window_check(&window, top - (REPLAY_WINDOW_SIZE - 1), NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_check(&window, top - REPLAY_WINDOW_SIZE, NO_LIMIT), REPLAY_WINDOW_TOO_OLD);
	assert_int_equal(replay_window_accept(&window, top - (REPLAY_WINDOW_SIZE - 1), NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, top - (REPLAY_WINDOW_SIZE - 1), NO_LIMIT),
			 REPLAY_WINDOW_DUPLICATE);
	assert_int_equal(replay_window_accept(&window, 0, NO_LIMIT), REPLAY_WINDOW_TOO_OLD);
}

static void test_check_changes_nothing(void **state)
{
	struct replay_window window;

	replay_window_init(&window);
	assert_int_equal(replay_window_check(&window, 5, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_check(&window, 5, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(window.top, 0);
	assert_int_equal(replay_window_accept(&window, 5, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_check(&window, 5, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
}

static void test_big_jump_clears_old_marks(void **state)
{
	struct replay_window window;
	uint64_t far = 3 * REPLAY_WINDOW_BITS + 5;

	replay_window_init(&window);
	for (uint64_t counter = 0; counter < REPLAY_WINDOW_BITS; counter++)
		assert_int_equal(replay_window_accept(&window, counter, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, far, NO_LIMIT), REPLAY_WINDOW_OK);
	/* Counters that share ring slots with the old marks are fresh. */
	for (uint64_t counter = far - REPLAY_WINDOW_SIZE + 1; counter < far; counter++)
		assert_int_equal(replay_window_accept(&window, counter, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, REPLAY_WINDOW_BITS - 1, NO_LIMIT), REPLAY_WINDOW_TOO_OLD);
}

static void test_jump_of_one_block(void **state)
{
	struct replay_window window;

	replay_window_init(&window);
	assert_int_equal(replay_window_accept(&window, 63, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 64, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 63, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
	assert_int_equal(replay_window_accept(&window, 62, NO_LIMIT), REPLAY_WINDOW_OK);
	/* 64 + 2048 lands in the same ring slot as 64. */
	assert_int_equal(replay_window_accept(&window, 64 + REPLAY_WINDOW_BITS, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 64 + REPLAY_WINDOW_BITS - 1, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, 64, NO_LIMIT), REPLAY_WINDOW_TOO_OLD);
}

static void test_limit_rejected(void **state)
{
	struct replay_window window;
	uint64_t limit = 1000;

	replay_window_init(&window);
	assert_int_equal(replay_window_accept(&window, limit - 1, limit), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, limit, limit), REPLAY_WINDOW_LIMIT);
	assert_int_equal(replay_window_accept(&window, limit + 1, limit), REPLAY_WINDOW_LIMIT);
	assert_int_equal(window.top, limit);
}

static void test_counter_near_2_64(void **state)
{
	struct replay_window window;
	uint64_t last = UINT64_MAX - 1;

	replay_window_init(&window);
	assert_int_equal(replay_window_accept(&window, last - 10, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(replay_window_accept(&window, last, NO_LIMIT), REPLAY_WINDOW_OK);
	assert_int_equal(window.top, UINT64_MAX);
	assert_int_equal(replay_window_accept(&window, last, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
	assert_int_equal(replay_window_accept(&window, last - 10, NO_LIMIT), REPLAY_WINDOW_DUPLICATE);
	assert_int_equal(replay_window_accept(&window, last - 5, NO_LIMIT), REPLAY_WINDOW_OK);
	/* UINT64_MAX itself is at the limit, whatever the caller passes. */
	assert_int_equal(replay_window_accept(&window, UINT64_MAX, NO_LIMIT), REPLAY_WINDOW_LIMIT);
	assert_int_equal(replay_window_accept(&window, 0, NO_LIMIT), REPLAY_WINDOW_TOO_OLD);
}

static void test_result_strings(void **state)
{
	assert_string_equal(replay_window_result_string(REPLAY_WINDOW_DUPLICATE), "replayed counter");
	assert_string_equal(replay_window_result_string(REPLAY_WINDOW_TOO_OLD), "counter below the replay window");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order_accepted),
		cmocka_unit_test(test_first_counter_may_be_large),
		cmocka_unit_test(test_duplicate_rejected),
		cmocka_unit_test(test_out_of_order_accepted_once),
		cmocka_unit_test(test_window_edge),
		cmocka_unit_test(test_check_changes_nothing),
		cmocka_unit_test(test_big_jump_clears_old_marks),
		cmocka_unit_test(test_jump_of_one_block),
		cmocka_unit_test(test_limit_rejected),
		cmocka_unit_test(test_counter_near_2_64),
		cmocka_unit_test(test_result_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
