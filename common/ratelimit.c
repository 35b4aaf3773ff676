#include "ratelimit.h"

#include <string.h>

void ratelimit_init(struct ratelimit *limit, uint32_t per_second, uint32_t burst,
		   const uint8_t hash_key[crypto_shorthash_KEYBYTES])
{
	memset(limit, 0, sizeof(*limit));
	limit->per_second = per_second;
	limit->burst = burst;
	memcpy(limit->hash_key, hash_key, sizeof(limit->hash_key));
}

/* The address's bucket, refilled up to now_ms; a new or taken-over bucket starts full. */
static struct ratelimit_bucket *bucket_refill(struct ratelimit *limit,
					      const uint8_t address[RATELIMIT_ADDRESS_LEN], uint64_t now_ms)
{
	uint8_t hash[crypto_shorthash_BYTES];
	uint64_t index;
	uint64_t full = (uint64_t)limit->burst * 1000;
	struct ratelimit_bucket *bucket;

	crypto_shorthash(hash, address, RATELIMIT_ADDRESS_LEN, limit->hash_key);
	memcpy(&index, hash, sizeof(index));
	bucket = &limit->buckets[index % RATELIMIT_TABLE_SIZE];

	if (!bucket->used || memcmp(bucket->address, address, RATELIMIT_ADDRESS_LEN) != 0) {
		memcpy(bucket->address, address, RATELIMIT_ADDRESS_LEN);
		bucket->used = true;
		bucket->updated_ms = now_ms;
		bucket->millitokens = full;
		return bucket;
	}

	/* A clock that goes back adds nothing. */
	if (now_ms > bucket->updated_ms) {
		uint64_t elapsed = now_ms - bucket->updated_ms;
		uint64_t time_to_fill_ms = limit->per_second > 0 ? full / limit->per_second + 1 : 0;

		/* per_second tokens a second is per_second millitokens a
		 * millisecond; capping the time first keeps the product small. */
		if (elapsed > time_to_fill_ms)
			elapsed = time_to_fill_ms;
		bucket->millitokens += elapsed * limit->per_second;
		if (bucket->millitokens > full)
			bucket->millitokens = full;
		bucket->updated_ms = now_ms;
	}
	return bucket;
}

bool ratelimit_check(struct ratelimit *limit, const uint8_t address[RATELIMIT_ADDRESS_LEN], uint64_t now_ms)
{
	return bucket_refill(limit, address, now_ms)->millitokens >= 1000;
}

void ratelimit_charge(struct ratelimit *limit, const uint8_t address[RATELIMIT_ADDRESS_LEN], uint64_t now_ms)
{
	struct ratelimit_bucket *bucket = bucket_refill(limit, address, now_ms);

	bucket->millitokens = bucket->millitokens >= 1000 ? bucket->millitokens - 1000 : 0;
}
