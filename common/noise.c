/*
 * Noise_IK_25519_ChaChaPoly_BLAKE2b and Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b,
 * following revision 34 of the Noise Protocol Framework specification:
 *
 *   IK:                          IKpsk2:
 *     <- s                         <- s
 *     ...                          ...
 *     -> e, es, s, ss              -> e, es, s, ss
 *     <- e, ee, se                 <- e, ee, se, psk
 *
 * The file follows the specification's layers from the bottom up:
 * CipherState, the hash functions (HASH, HMAC, HKDF), SymmetricState and
 * then the two IK messages, each writer next to its reader.
 */
#include "noise.h"

#include <sodium.h>
#include <string.h>

#define PROTOCOL_NAME_IK "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define PROTOCOL_NAME_IKPSK2 "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b"

/* BLOCKLEN of BLAKE2b, which HMAC needs. */
#define HMAC_BLOCK_LEN 128

/* The nonce that REKEY() uses. No message is sent with it. */
#define REKEY_NONCE UINT64_MAX

#define NONCE_LEN crypto_aead_chacha20poly1305_ietf_NPUBBYTES

/* Offsets inside the IK messages. */
#define INITIATION_STATIC_OFFSET NOISE_KEY_LEN
#define INITIATION_PAYLOAD_OFFSET (NOISE_KEY_LEN + NOISE_KEY_LEN + NOISE_TAG_LEN)
#define RESPONSE_PAYLOAD_OFFSET NOISE_KEY_LEN

_Static_assert(sizeof(PROTOCOL_NAME_IKPSK2) - 1 <= NOISE_HASH_LEN,
	       "protocol names longer than HASHLEN would have to be hashed");
_Static_assert(NONCE_LEN == 12, "the ChaChaPoly nonce is 4 zero bytes and a 64-bit counter");

/* CipherState */

/* ChaChaPoly nonce: 32 bits of zeros followed by the little-endian counter. */
static void cipher_nonce_encode(uint8_t nonce[NONCE_LEN], uint64_t counter)
{
	size_t i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static void cipher_initialize_key(struct noise_cipher *cipher, const uint8_t key[NOISE_KEY_LEN])
{
	memcpy(cipher->key, key, NOISE_KEY_LEN);
	cipher->nonce = 0;
	cipher->has_key = true;
}

/*
 * Without a key, EncryptWithAd() and DecryptWithAd() return the input
 * unchanged and leave the nonce alone.
 */
static void cipher_copy(uint8_t *out, const uint8_t *in, size_t len)
{
	if (len > 0 && out != in)
		memmove(out, in, len);
}

/*
 * A Noise message is at most NOISE_MAX_MESSAGE_LEN bytes, so a longer
 * ciphertext is rejected as well; that also keeps len + NOISE_TAG_LEN from
 * overflowing.
 */
enum noise_result noise_cipher_encrypt(struct noise_cipher *cipher,
				       const uint8_t *ad, size_t ad_len,
				       const uint8_t *plaintext, size_t len,
				       uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];

	if (!cipher->has_key) {
		if (len > NOISE_MAX_MESSAGE_LEN)
			return NOISE_ERR_LENGTH;
		cipher_copy(out, plaintext, len);
		return NOISE_OK;
	}
	if (len > NOISE_MAX_MESSAGE_LEN - NOISE_TAG_LEN)
		return NOISE_ERR_LENGTH;
	if (cipher->nonce > NOISE_NONCE_MAX)
		return NOISE_ERR_NONCE_EXHAUSTED;

	/* libsodium encrypts in place when out == plaintext and appends the tag. */
	cipher_nonce_encode(nonce, cipher->nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plaintext, len, ad, ad_len,
						  NULL, nonce, cipher->key);
	cipher->nonce++;
	return NOISE_OK;
}

/*
 * When authentication fails, libsodium (1.0.18) zeroes the len -
 * NOISE_TAG_LEN bytes of out, so a failed in-place decryption destroys the
 * ciphertext.
 */
enum noise_result noise_cipher_decrypt(struct noise_cipher *cipher,
				       const uint8_t *ad, size_t ad_len,
				       const uint8_t *ciphertext, size_t len,
				       uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];

	if (len > NOISE_MAX_MESSAGE_LEN)
		return NOISE_ERR_LENGTH;
	if (!cipher->has_key) {
		cipher_copy(out, ciphertext, len);
		return NOISE_OK;
	}
	if (len < NOISE_TAG_LEN)
		return NOISE_ERR_LENGTH;
	if (cipher->nonce > NOISE_NONCE_MAX)
		return NOISE_ERR_NONCE_EXHAUSTED;

	cipher_nonce_encode(nonce, cipher->nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ciphertext, len, ad, ad_len,
						      nonce, cipher->key) != 0)
		return NOISE_ERR_DECRYPT;
	cipher->nonce++;
	return NOISE_OK;
}

/* REKEY(k) = the first 32 bytes of ENCRYPT(k, 2^64-1, empty ad, 32 zero bytes). */
void noise_cipher_rekey(struct noise_cipher *cipher)
{
	static const uint8_t zeros[NOISE_KEY_LEN];
	uint8_t nonce[NONCE_LEN];
	uint8_t ciphertext[NOISE_KEY_LEN + NOISE_TAG_LEN];

	if (!cipher->has_key)
		return;

	cipher_nonce_encode(nonce, REKEY_NONCE);
	crypto_aead_chacha20poly1305_ietf_encrypt(ciphertext, NULL, zeros, sizeof(zeros), NULL, 0,
						  NULL, nonce, cipher->key);
	memcpy(cipher->key, ciphertext, NOISE_KEY_LEN);
	sodium_memzero(ciphertext, sizeof(ciphertext));
}

void noise_cipher_wipe(struct noise_cipher *cipher)
{
	sodium_memzero(cipher, sizeof(*cipher));
}

/* Hash functions: BLAKE2b-512, and HMAC and HKDF built from it */

/*
 * HMAC-BLAKE2b of data1 || data2 (RFC 2104). Every key HKDF passes here is
 * HASHLEN bytes, shorter than the block, so it is only padded with zeros.
 */
static void hash_hmac(uint8_t out[NOISE_HASH_LEN], const uint8_t key[NOISE_HASH_LEN],
		      const uint8_t *data1, size_t len1, const uint8_t *data2, size_t len2)
{
	crypto_generichash_state state;
	uint8_t pad[HMAC_BLOCK_LEN];
	uint8_t inner[NOISE_HASH_LEN];
	size_t i;

	/* inner = HASH((key ^ ipad) || data) */
	memset(pad, 0x36, sizeof(pad));
	for (i = 0; i < NOISE_HASH_LEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_init(&state, NULL, 0, NOISE_HASH_LEN);
	crypto_generichash_update(&state, pad, sizeof(pad));
	if (len1 > 0)
		crypto_generichash_update(&state, data1, len1);
	if (len2 > 0)
		crypto_generichash_update(&state, data2, len2);
	crypto_generichash_final(&state, inner, sizeof(inner));

	/* out = HASH((key ^ opad) || inner) */
	memset(pad, 0x5c, sizeof(pad));
	for (i = 0; i < NOISE_HASH_LEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_init(&state, NULL, 0, NOISE_HASH_LEN);
	crypto_generichash_update(&state, pad, sizeof(pad));
	crypto_generichash_update(&state, inner, sizeof(inner));
	crypto_generichash_final(&state, out, NOISE_HASH_LEN);

	sodium_memzero(&state, sizeof(state));
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

/*
 * HKDF(chaining_key, input_key_material, num_outputs) with two outputs, or
 * three when output3 is not NULL.
 */
static void hash_hkdf(uint8_t output1[NOISE_HASH_LEN], uint8_t output2[NOISE_HASH_LEN],
		      uint8_t *output3, const uint8_t chaining_key[NOISE_HASH_LEN],
		      const uint8_t *input_key_material, size_t input_len)
{
	static const uint8_t one = 0x01, two = 0x02, three = 0x03;
	uint8_t temp_key[NOISE_HASH_LEN];

	hash_hmac(temp_key, chaining_key, input_key_material, input_len, NULL, 0);
	hash_hmac(output1, temp_key, &one, 1, NULL, 0);
	hash_hmac(output2, temp_key, output1, NOISE_HASH_LEN, &two, 1);
	if (output3 != NULL)
		hash_hmac(output3, temp_key, output2, NOISE_HASH_LEN, &three, 1);

	sodium_memzero(temp_key, sizeof(temp_key));
}

/* SymmetricState, kept in the handshake struct: ck, h and the cipher */

/* h = HASH(h || data) */
static void symmetric_mix_hash(struct noise_handshake *hs, const uint8_t *data, size_t len)
{
	crypto_generichash_state state;

	crypto_generichash_init(&state, NULL, 0, NOISE_HASH_LEN);
	crypto_generichash_update(&state, hs->h, NOISE_HASH_LEN);
	if (len > 0)
		crypto_generichash_update(&state, data, len);
	crypto_generichash_final(&state, hs->h, NOISE_HASH_LEN);
	sodium_memzero(&state, sizeof(state));
}

/* ck, temp_k = HKDF(ck, input, 2); the cipher key is temp_k cut to 32 bytes. */
static void symmetric_mix_key(struct noise_handshake *hs, const uint8_t *input, size_t len)
{
	uint8_t ck[NOISE_HASH_LEN];
	uint8_t temp_k[NOISE_HASH_LEN];

	hash_hkdf(ck, temp_k, NULL, hs->ck, input, len);
	memcpy(hs->ck, ck, NOISE_HASH_LEN);
	cipher_initialize_key(&hs->cipher, temp_k);

	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* ck, temp_h, temp_k = HKDF(ck, input, 3); MixHash(temp_h); key = temp_k cut to 32 bytes. */
static void symmetric_mix_key_and_hash(struct noise_handshake *hs, const uint8_t *input, size_t len)
{
	uint8_t ck[NOISE_HASH_LEN];
	uint8_t temp_h[NOISE_HASH_LEN];
	uint8_t temp_k[NOISE_HASH_LEN];

	hash_hkdf(ck, temp_h, temp_k, hs->ck, input, len);
	memcpy(hs->ck, ck, NOISE_HASH_LEN);
	symmetric_mix_hash(hs, temp_h, sizeof(temp_h));
	cipher_initialize_key(&hs->cipher, temp_k);

	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(temp_h, sizeof(temp_h));
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* out = EncryptWithAd(h, plaintext); MixHash(out). out gets len + NOISE_TAG_LEN bytes. */
static enum noise_result symmetric_encrypt_and_hash(struct noise_handshake *hs,
						    const uint8_t *plaintext, size_t len,
						    uint8_t *out)
{
	enum noise_result result;

	result = noise_cipher_encrypt(&hs->cipher, hs->h, NOISE_HASH_LEN, plaintext, len, out);
	if (result == NOISE_OK)
		symmetric_mix_hash(hs, out, len + (hs->cipher.has_key ? NOISE_TAG_LEN : 0));
	return result;
}

/*
 * out = DecryptWithAd(h, ciphertext); MixHash(ciphertext). The new h is
 * computed first, so that out may overlap the ciphertext, and kept only
 * when the ciphertext is authentic.
 */
static enum noise_result symmetric_decrypt_and_hash(struct noise_handshake *hs,
						    const uint8_t *ciphertext, size_t len,
						    uint8_t *out)
{
	crypto_generichash_state state;
	uint8_t next_h[NOISE_HASH_LEN];
	enum noise_result result;

	crypto_generichash_init(&state, NULL, 0, NOISE_HASH_LEN);
	crypto_generichash_update(&state, hs->h, NOISE_HASH_LEN);
	if (len > 0)
		crypto_generichash_update(&state, ciphertext, len);
	crypto_generichash_final(&state, next_h, sizeof(next_h));

	result = noise_cipher_decrypt(&hs->cipher, hs->h, NOISE_HASH_LEN, ciphertext, len, out);
	if (result == NOISE_OK)
		memcpy(hs->h, next_h, NOISE_HASH_LEN);

	sodium_memzero(&state, sizeof(state));
	sodium_memzero(next_h, sizeof(next_h));
	return result;
}

/* Handshake tokens shared by both messages */

void noise_public_key(uint8_t pub[NOISE_KEY_LEN], const uint8_t priv[NOISE_KEY_LEN])
{
	crypto_scalarmult_base(pub, priv);
}

/*
 * MixKey(DH(priv, pub)). crypto_scalarmult() fails when the result is all
 * zero, as it is for a low-order public key. Such a result does not depend
 * on our private key, so the handshake fails with NOISE_ERR_DH, which the
 * specification allows for an invalid public key.
 */
static enum noise_result token_mix_dh(struct noise_handshake *hs, const uint8_t priv[NOISE_KEY_LEN],
				      const uint8_t pub[NOISE_KEY_LEN])
{
	uint8_t shared[NOISE_KEY_LEN];
	enum noise_result result = NOISE_OK;

	if (crypto_scalarmult(shared, priv, pub) != 0)
		result = NOISE_ERR_DH;
	else
		symmetric_mix_key(hs, shared, sizeof(shared));

	sodium_memzero(shared, sizeof(shared));
	return result;
}

/* e: MixHash(e.pub), and in a psk handshake also MixKey(e.pub). */
static void token_mix_ephemeral(struct noise_handshake *hs, const uint8_t pub[NOISE_KEY_LEN])
{
	symmetric_mix_hash(hs, pub, NOISE_KEY_LEN);
	if (hs->psk2)
		symmetric_mix_key(hs, pub, NOISE_KEY_LEN);
}

static void handshake_set_ephemeral(struct noise_handshake *hs, const uint8_t priv[NOISE_KEY_LEN])
{
	memcpy(hs->e_priv, priv, NOISE_KEY_LEN);
	noise_public_key(hs->e_pub, priv);
}

/*
 * Any failure ends the handshake. Everything but the role and the pattern
 * is wiped, which also drops a remote static key that was never
 * authenticated.
 */
static void handshake_fail(struct noise_handshake *hs)
{
	enum noise_role role = hs->role;
	bool psk2 = hs->psk2;

	sodium_memzero(hs, sizeof(*hs));
	hs->role = role;
	hs->psk2 = psk2;
	hs->state = NOISE_HS_FAILED;
}

static bool handshake_in(const struct noise_handshake *hs, enum noise_role role,
			 enum noise_handshake_state state)
{
	return hs->role == role && hs->state == state;
}

/*
 * Initialize(): InitializeSymmetric(protocol_name), MixHash(prologue) and
 * the pre-message "<- s", which both sides hash as the responder's static
 * public key. An initiator without remote_static, or a responder with one,
 * fails with NOISE_ERR_STATE.
 */
enum noise_result noise_ik_init(struct noise_handshake *hs, enum noise_role role,
				bool psk2,
				const uint8_t *prologue, size_t prologue_len,
				const uint8_t static_priv[NOISE_KEY_LEN],
				const uint8_t *remote_static,
				const uint8_t *psk)
{
	const char *name = psk2 ? PROTOCOL_NAME_IKPSK2 : PROTOCOL_NAME_IK;
	enum noise_result result = NOISE_OK;

	sodium_memzero(hs, sizeof(*hs));
	hs->role = role;
	hs->psk2 = psk2;

	if (role == NOISE_INITIATOR) {
		if (remote_static == NULL) {
			result = NOISE_ERR_STATE;
			goto out;
		}
		memcpy(hs->rs, remote_static, NOISE_KEY_LEN);
	} else if (role != NOISE_RESPONDER || remote_static != NULL) {
		result = NOISE_ERR_STATE;
		goto out;
	}
	if (prologue == NULL && prologue_len > 0) {
		result = NOISE_ERR_LENGTH;
		goto out;
	}

	memcpy(hs->s_priv, static_priv, NOISE_KEY_LEN);
	noise_public_key(hs->s_pub, static_priv);
	if (psk != NULL)
		memcpy(hs->psk, psk, NOISE_KEY_LEN);

	/* The name fits in HASHLEN, so h is the name padded with zeros. */
	memcpy(hs->h, name, strlen(name));
	memcpy(hs->ck, hs->h, NOISE_HASH_LEN);
	symmetric_mix_hash(hs, prologue, prologue_len);

	/* <- s */
	symmetric_mix_hash(hs, role == NOISE_INITIATOR ? hs->rs : hs->s_pub, NOISE_KEY_LEN);

	hs->state = NOISE_HS_START;
out:
	if (result != NOISE_OK)
		handshake_fail(hs);
	return result;
}

void noise_handshake_set_psk(struct noise_handshake *hs, const uint8_t psk[NOISE_KEY_LEN])
{
	memcpy(hs->psk, psk, NOISE_KEY_LEN);
}

/* Initiation: -> e, es, s, ss */

enum noise_result noise_ik_write_initiation(struct noise_handshake *hs,
					    const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					    const uint8_t *payload, size_t payload_len,
					    uint8_t *out)
{
	enum noise_result result;

	if (!handshake_in(hs, NOISE_INITIATOR, NOISE_HS_START)) {
		result = NOISE_ERR_STATE;
		goto out;
	}
	if (payload_len > NOISE_MAX_MESSAGE_LEN - NOISE_IK_INITIATION_LEN(0)) {
		result = NOISE_ERR_LENGTH;
		goto out;
	}

	/* e */
	handshake_set_ephemeral(hs, ephemeral_priv);
	memcpy(out, hs->e_pub, NOISE_KEY_LEN);
	token_mix_ephemeral(hs, hs->e_pub);

	/* es */
	result = token_mix_dh(hs, hs->e_priv, hs->rs);
	if (result != NOISE_OK)
		goto out;

	/* s */
	result = symmetric_encrypt_and_hash(hs, hs->s_pub, NOISE_KEY_LEN,
					    out + INITIATION_STATIC_OFFSET);
	if (result != NOISE_OK)
		goto out;

	/* ss */
	result = token_mix_dh(hs, hs->s_priv, hs->rs);
	if (result != NOISE_OK)
		goto out;

	/* payload */
	result = symmetric_encrypt_and_hash(hs, payload, payload_len,
					    out + INITIATION_PAYLOAD_OFFSET);
	if (result != NOISE_OK)
		goto out;

	hs->state = NOISE_HS_INITIATION_DONE;
out:
	if (result != NOISE_OK)
		handshake_fail(hs);
	return result;
}

enum noise_result noise_ik_read_initiation(struct noise_handshake *hs,
					   const uint8_t *message, size_t len,
					   uint8_t *payload)
{
	enum noise_result result;

	if (!handshake_in(hs, NOISE_RESPONDER, NOISE_HS_START)) {
		result = NOISE_ERR_STATE;
		goto out;
	}
	if (len < NOISE_IK_INITIATION_LEN(0) || len > NOISE_MAX_MESSAGE_LEN) {
		result = NOISE_ERR_LENGTH;
		goto out;
	}

	/* e */
	memcpy(hs->re, message, NOISE_KEY_LEN);
	token_mix_ephemeral(hs, hs->re);

	/* es */
	result = token_mix_dh(hs, hs->s_priv, hs->re);
	if (result != NOISE_OK)
		goto out;

	/* s */
	result = symmetric_decrypt_and_hash(hs, message + INITIATION_STATIC_OFFSET,
					    NOISE_KEY_LEN + NOISE_TAG_LEN, hs->rs);
	if (result != NOISE_OK)
		goto out;

	/* ss */
	result = token_mix_dh(hs, hs->s_priv, hs->rs);
	if (result != NOISE_OK)
		goto out;

	/* payload */
	result = symmetric_decrypt_and_hash(hs, message + INITIATION_PAYLOAD_OFFSET,
					    len - INITIATION_PAYLOAD_OFFSET, payload);
	if (result != NOISE_OK)
		goto out;

	hs->state = NOISE_HS_INITIATION_DONE;
out:
	if (result != NOISE_OK)
		handshake_fail(hs);
	return result;
}

/* Response: <- e, ee, se (and psk in IKpsk2) */

enum noise_result noise_ik_write_response(struct noise_handshake *hs,
					  const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					  const uint8_t *payload, size_t payload_len,
					  uint8_t *out)
{
	enum noise_result result;

	if (!handshake_in(hs, NOISE_RESPONDER, NOISE_HS_INITIATION_DONE)) {
		result = NOISE_ERR_STATE;
		goto out;
	}
	if (payload_len > NOISE_MAX_MESSAGE_LEN - NOISE_IK_RESPONSE_LEN(0)) {
		result = NOISE_ERR_LENGTH;
		goto out;
	}

	/* e */
	handshake_set_ephemeral(hs, ephemeral_priv);
	memcpy(out, hs->e_pub, NOISE_KEY_LEN);
	token_mix_ephemeral(hs, hs->e_pub);

	/* ee */
	result = token_mix_dh(hs, hs->e_priv, hs->re);
	if (result != NOISE_OK)
		goto out;

	/* se */
	result = token_mix_dh(hs, hs->e_priv, hs->rs);
	if (result != NOISE_OK)
		goto out;

	/* psk */
	if (hs->psk2)
		symmetric_mix_key_and_hash(hs, hs->psk, NOISE_KEY_LEN);

	/* payload */
	result = symmetric_encrypt_and_hash(hs, payload, payload_len,
					    out + RESPONSE_PAYLOAD_OFFSET);
	if (result != NOISE_OK)
		goto out;

	hs->state = NOISE_HS_RESPONSE_DONE;
out:
	if (result != NOISE_OK)
		handshake_fail(hs);
	return result;
}

enum noise_result noise_ik_read_response(struct noise_handshake *hs,
					 const uint8_t *message, size_t len,
					 uint8_t *payload)
{
	enum noise_result result;

	if (!handshake_in(hs, NOISE_INITIATOR, NOISE_HS_INITIATION_DONE)) {
		result = NOISE_ERR_STATE;
		goto out;
	}
	if (len < NOISE_IK_RESPONSE_LEN(0) || len > NOISE_MAX_MESSAGE_LEN) {
		result = NOISE_ERR_LENGTH;
		goto out;
	}

	/* e */
	memcpy(hs->re, message, NOISE_KEY_LEN);
	token_mix_ephemeral(hs, hs->re);

	/* ee */
	result = token_mix_dh(hs, hs->e_priv, hs->re);
	if (result != NOISE_OK)
		goto out;

	/* se */
	result = token_mix_dh(hs, hs->s_priv, hs->re);
	if (result != NOISE_OK)
		goto out;

	/* psk */
	if (hs->psk2)
		symmetric_mix_key_and_hash(hs, hs->psk, NOISE_KEY_LEN);

	/* payload */
	result = symmetric_decrypt_and_hash(hs, message + RESPONSE_PAYLOAD_OFFSET,
					    len - RESPONSE_PAYLOAD_OFFSET, payload);
	if (result != NOISE_OK)
		goto out;

	hs->state = NOISE_HS_RESPONSE_DONE;
out:
	if (result != NOISE_OK)
		handshake_fail(hs);
	return result;
}

/*
 * Split(): temp_k1, temp_k2 = HKDF(ck, empty, 2). The initiator sends with
 * temp_k1 and the responder with temp_k2. Afterwards only h and the public
 * keys are kept, and a second call fails, because it would hand out the
 * same keys with the nonces back at zero.
 */
enum noise_result noise_handshake_split(struct noise_handshake *hs,
					struct noise_cipher *send,
					struct noise_cipher *receive)
{
	uint8_t temp_k1[NOISE_HASH_LEN];
	uint8_t temp_k2[NOISE_HASH_LEN];

	if (hs->state != NOISE_HS_RESPONSE_DONE) {
		handshake_fail(hs);
		return NOISE_ERR_STATE;
	}

	hash_hkdf(temp_k1, temp_k2, NULL, hs->ck, NULL, 0);
	if (hs->role == NOISE_INITIATOR) {
		cipher_initialize_key(send, temp_k1);
		cipher_initialize_key(receive, temp_k2);
	} else {
		cipher_initialize_key(send, temp_k2);
		cipher_initialize_key(receive, temp_k1);
	}

	sodium_memzero(temp_k1, sizeof(temp_k1));
	sodium_memzero(temp_k2, sizeof(temp_k2));
	sodium_memzero(hs->ck, sizeof(hs->ck));
	sodium_memzero(&hs->cipher, sizeof(hs->cipher));
	sodium_memzero(hs->s_priv, sizeof(hs->s_priv));
	sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
	sodium_memzero(hs->psk, sizeof(hs->psk));
	hs->state = NOISE_HS_SPLIT;
	return NOISE_OK;
}

void noise_handshake_wipe(struct noise_handshake *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}

const char *noise_result_string(enum noise_result result)
{
	switch (result) {
	case NOISE_OK:
		return "success";
	case NOISE_ERR_LENGTH:
		return "invalid message length";
	case NOISE_ERR_DECRYPT:
		return "authentication failed";
	case NOISE_ERR_DH:
		return "Diffie-Hellman result is all zero (low-order public key)";
	case NOISE_ERR_STATE:
		return "called in the wrong handshake state";
	case NOISE_ERR_NONCE_EXHAUSTED:
		return "cipher nonce exhausted";
	}
	return "unknown noise error";
}
