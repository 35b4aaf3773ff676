/* The rate limit on log lines that strangers can cause (common/log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"

static void test_burst_then_suppressed(void **state)
{
	struct log_ratelimit limit = LOG_RATELIMIT_INIT(1000, 3);
	uint64_t suppressed = 99;

	for (int i = 0; i < 3; i++) {
		assert_true(log_ratelimit_allow(&limit, 5000, &suppressed));
		assert_int_equal(suppressed, 0);
	}
	assert_false(log_ratelimit_allow(&limit, 5000, &suppressed));
	assert_false(log_ratelimit_allow(&limit, 5999, &suppressed));
	assert_int_equal(limit.suppressed, 2);
}

static void test_next_window_reports_count(void **state)
{
	struct log_ratelimit limit = LOG_RATELIMIT_INIT(1000, 1);
	uint64_t suppressed = 0;

	assert_true(log_ratelimit_allow(&limit, 10000, &suppressed));
	assert_false(log_ratelimit_allow(&limit, 10100, &suppressed));
	assert_false(log_ratelimit_allow(&limit, 10200, &suppressed));
	assert_true(log_ratelimit_allow(&limit, 11000, &suppressed));
	assert_int_equal(suppressed, 2);
	assert_false(log_ratelimit_allow(&limit, 11001, &suppressed));
	assert_true(log_ratelimit_allow(&limit, 12500, &suppressed));
	assert_int_equal(suppressed, 1);
}

static void test_clock_going_back_starts_window(void **state)
{
	struct log_ratelimit limit = LOG_RATELIMIT_INIT(1000, 1);
	uint64_t suppressed = 0;

	assert_true(log_ratelimit_allow(&limit, 50000, &suppressed));
	assert_true(log_ratelimit_allow(&limit, 100, &suppressed));
}

static void test_level_names(void **state)
{
	enum log_level level;

	assert_int_equal(log_level_parse("debug", &level), 0);
	assert_int_equal(level, LOG_DEBUG);
	assert_int_equal(log_level_parse("warn", &level), 0);
	assert_int_equal(level, LOG_WARN);
	assert_int_equal(log_level_parse("verbose", &level), -1);
	assert_int_equal(log_level_parse("", &level), -1);
	assert_string_equal(log_level_name(LOG_ERROR), "error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_suppressed),
		cmocka_unit_test(test_next_window_reports_count),
		cmocka_unit_test(test_clock_going_back_starts_window),
		cmocka_unit_test(test_level_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
