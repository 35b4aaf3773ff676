/*
 * A token bucket per source address, for work that strangers can cause
 * (failed handshakes). Fixed memory: a table of RATELIMIT_TABLE_SIZE
 * buckets indexed by a keyed hash of the address, so that an attacker
 * without the random key cannot aim addresses at one bucket. Two addresses that share
 * a bucket take turns owning it; the newcomer starts with a full bucket.
 */
#ifndef WALGUARD_RATELIMIT_H
#define WALGUARD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include <sodium.h>

#define RATELIMIT_TABLE_SIZE 4096
#define RATELIMIT_ADDRESS_LEN 16	/* IPv6, or IPv4 mapped into IPv6 */

struct ratelimit_bucket {
	uint8_t address[RATELIMIT_ADDRESS_LEN];
	bool used;
	uint64_t updated_ms;
	uint64_t millitokens;
};

struct ratelimit {
	uint32_t per_second;
	uint32_t burst;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct ratelimit_bucket buckets[RATELIMIT_TABLE_SIZE];
};

/* per_second tokens are added each second, up to burst; hash_key should be random. */
void ratelimit_init(struct ratelimit *limit, uint32_t per_second, uint32_t burst,
		   const uint8_t hash_key[crypto_shorthash_KEYBYTES]);

/* Whether the address has a token left at now_ms. Takes none. */
bool ratelimit_check(struct ratelimit *limit, const uint8_t address[RATELIMIT_ADDRESS_LEN], uint64_t now_ms);

/* Take one token from the address's bucket (none left: stays empty). */
void ratelimit_charge(struct ratelimit *limit, const uint8_t address[RATELIMIT_ADDRESS_LEN], uint64_t now_ms);

#endif
