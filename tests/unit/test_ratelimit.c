/* The per-address token buckets for failed handshakes (common/ratelimit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

static struct ratelimit *new_limit(uint32_t per_second, uint32_t burst)
{
	uint8_t key[crypto_shorthash_KEYBYTES];
	struct ratelimit *limit = malloc(sizeof(*limit));

	assert_non_null(limit);
	randombytes_buf(key, sizeof(key));
	ratelimit_init(limit, per_second, burst, key);
	return limit;
}

static void address_of(uint8_t address[RATELIMIT_ADDRESS_LEN], uint32_t n)
{
	memset(address, 0, RATELIMIT_ADDRESS_LEN);
	memcpy(address + 12, &n, sizeof(n));
}

static void test_new_address_has_full_burst(void **state)
{
	struct ratelimit *limit = new_limit(1, 3);
	uint8_t address[RATELIMIT_ADDRESS_LEN];

	address_of(address, 1);
	for (int i = 0; i < 3; i++) {
		assert_true(ratelimit_check(limit, address, 1000));
		ratelimit_charge(limit, address, 1000);
	}
	assert_false(ratelimit_check(limit, address, 1000));
	free(limit);
}

static void test_tokens_come_back_at_rate(void **state)
{
	struct ratelimit *limit = new_limit(2, 2);
	uint8_t address[RATELIMIT_ADDRESS_LEN];

	address_of(address, 7);
	ratelimit_charge(limit, address, 10000);
	ratelimit_charge(limit, address, 10000);
	assert_false(ratelimit_check(limit, address, 10000));
	/* Two per second: one token after 500 ms, not after 499. */
	assert_false(ratelimit_check(limit, address, 10499));
	assert_true(ratelimit_check(limit, address, 10500));
	ratelimit_charge(limit, address, 10500);
	assert_false(ratelimit_check(limit, address, 10500));
	free(limit);
}

static void test_refill_capped_at_burst(void **state)
{
	struct ratelimit *limit = new_limit(1000, 2);
	uint8_t address[RATELIMIT_ADDRESS_LEN];

	address_of(address, 9);
	ratelimit_charge(limit, address, 0);
	/* A year later the bucket holds the burst, no more. */
	assert_true(ratelimit_check(limit, address, UINT64_C(31536000000)));
	ratelimit_charge(limit, address, UINT64_C(31536000000));
	ratelimit_charge(limit, address, UINT64_C(31536000000));
	assert_false(ratelimit_check(limit, address, UINT64_C(31536000000)));
	free(limit);
}

static void test_addresses_are_independent(void **state)
{
	struct ratelimit *limit = new_limit(1, 1);
	uint8_t stranger[RATELIMIT_ADDRESS_LEN];
	uint8_t peer[RATELIMIT_ADDRESS_LEN];

	address_of(stranger, 100);
	address_of(peer, 200);
	ratelimit_charge(limit, stranger, 5000);
	assert_false(ratelimit_check(limit, stranger, 5000));
	assert_true(ratelimit_check(limit, peer, 5000));
	free(limit);
}

static void test_clock_going_back_adds_nothing(void **state)
{
	struct ratelimit *limit = new_limit(1, 1);
	uint8_t address[RATELIMIT_ADDRESS_LEN];

	address_of(address, 3);
	ratelimit_charge(limit, address, 50000);
	assert_false(ratelimit_check(limit, address, 1000));
	assert_false(ratelimit_check(limit, address, 50000));
	assert_true(ratelimit_check(limit, address, 51000));
	free(limit);
}

static void test_zero_rate_never_refills(void **state)
{
	struct ratelimit *limit = new_limit(0, 1);
	uint8_t address[RATELIMIT_ADDRESS_LEN];

	address_of(address, 4);
	ratelimit_charge(limit, address, 0);
	assert_false(ratelimit_check(limit, address, UINT64_C(100000000)));
	free(limit);
}

static void test_many_addresses_stay_bounded(void **state)
{
	struct ratelimit *limit = new_limit(1, 1);
	uint8_t address[RATELIMIT_ADDRESS_LEN];
	uint32_t limited = 0;

	/* More addresses than buckets: the table is reused, never grown. */
	for (uint32_t n = 0; n < 4 * RATELIMIT_TABLE_SIZE; n++) {
		address_of(address, n);
		ratelimit_charge(limit, address, 1000);
	}
	for (uint32_t n = 0; n < 4 * RATELIMIT_TABLE_SIZE; n++) {
		address_of(address, n);
		if (!ratelimit_check(limit, address, 1000))
			limited++;
	}
	assert_true(limited > 0);
	assert_true(limited <= RATELIMIT_TABLE_SIZE);
	free(limit);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_address_has_full_burst),
		cmocka_unit_test(test_tokens_come_back_at_rate),
		cmocka_unit_test(test_refill_capped_at_burst),
		cmocka_unit_test(test_addresses_are_independent),
		cmocka_unit_test(test_clock_going_back_adds_nothing),
		cmocka_unit_test(test_zero_rate_never_refills),
		cmocka_unit_test(test_many_addresses_stay_bounded),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
