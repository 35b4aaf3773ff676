/*
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b (and plain Noise_IK_...), following
 * revision 34 of the Noise Protocol Framework specification.
 *
 *   IK:
 *     <- s
 *     ...
 *     -> e, es, s, ss
 *     <- e, ee, se       (IKpsk2 appends the token psk to this line)
 *
 * Pure code: no I/O, no clock, no randomness. Ephemeral private keys come in
 * as arguments so that the published test vectors can be replayed exactly.
 * All cryptography is libsodium's: X25519 (crypto_scalarmult), ChaCha20-
 * Poly1305 IETF (crypto_aead_chacha20poly1305_ietf) and BLAKE2b-512
 * (crypto_generichash) with HMAC and HKDF built from it as the
 * specification defines them.
 *
 * Structs here hold key material. Allocate them with sodium_malloc() and
 * call the matching *_wipe() before freeing.
 */
#ifndef WALGUARD_NOISE_H
#define WALGUARD_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOISE_KEY_LEN 32
#define NOISE_HASH_LEN 64
#define NOISE_TAG_LEN 16
#define NOISE_MAX_MESSAGE_LEN 65535

/* Sizes of the two IK handshake messages for a payload of n bytes. */
#define NOISE_IK_INITIATION_LEN(n) (NOISE_KEY_LEN + NOISE_KEY_LEN + NOISE_TAG_LEN + (n) + NOISE_TAG_LEN)
#define NOISE_IK_RESPONSE_LEN(n) (NOISE_KEY_LEN + (n) + NOISE_TAG_LEN)

/*
 * Highest nonce a cipher uses for a message. 2^64-1 is reserved by the
 * specification (it is the rekey nonce), so a cipher refuses to encrypt or
 * decrypt once its counter has passed this value.
 */
#define NOISE_NONCE_MAX UINT64_C(0xfffffffffffffffe)

enum noise_result {
	NOISE_OK = 0,
	NOISE_ERR_LENGTH,	    /* a message or buffer has the wrong size */
	NOISE_ERR_DECRYPT,	    /* authentication failed */
	NOISE_ERR_DH,		    /* a DH result was all zero (low-order point) */
	NOISE_ERR_STATE,	    /* called in the wrong handshake state */
	NOISE_ERR_NONCE_EXHAUSTED,  /* the cipher reached NOISE_NONCE_MAX */
};

/* A CipherState: a key and the nonce of the next message. */
struct noise_cipher {
	uint8_t key[NOISE_KEY_LEN];
	uint64_t nonce;
	bool has_key;
};

/*
 * Encrypt len bytes of plaintext into out, which must have room for
 * len + NOISE_TAG_LEN bytes; out may equal plaintext. Without a key the
 * plaintext is copied unchanged, as the specification requires.
 */
enum noise_result noise_cipher_encrypt(struct noise_cipher *cipher,
				       const uint8_t *ad, size_t ad_len,
				       const uint8_t *plaintext, size_t len,
				       uint8_t *out);

/*
 * Decrypt len bytes of ciphertext (tag included) into out, which receives
 * len - NOISE_TAG_LEN bytes; out may equal ciphertext. The nonce advances
 * only on success.
 */
enum noise_result noise_cipher_decrypt(struct noise_cipher *cipher,
				       const uint8_t *ad, size_t ad_len,
				       const uint8_t *ciphertext, size_t len,
				       uint8_t *out);

/* Replace the key with REKEY(k) from the specification; the nonce is kept. */
void noise_cipher_rekey(struct noise_cipher *cipher);

void noise_cipher_wipe(struct noise_cipher *cipher);

enum noise_role {
	NOISE_INITIATOR,
	NOISE_RESPONDER,
};

enum noise_handshake_state {
	NOISE_HS_START,		/* after noise_ik_init() */
	NOISE_HS_INITIATION_DONE, /* initiation written or read */
	NOISE_HS_RESPONSE_DONE,	/* response written or read: ready to split */
	NOISE_HS_SPLIT,		/* split done: only h and the public keys are kept */
	NOISE_HS_FAILED,	/* any error: the handshake cannot go on */
};

struct noise_handshake {
	enum noise_role role;
	enum noise_handshake_state state;
	bool psk2;			/* IKpsk2 rather than IK */
	uint8_t ck[NOISE_HASH_LEN];	/* chaining key */
	uint8_t h[NOISE_HASH_LEN];	/* handshake hash */
	struct noise_cipher cipher;
	uint8_t s_priv[NOISE_KEY_LEN];
	uint8_t s_pub[NOISE_KEY_LEN];
	uint8_t e_priv[NOISE_KEY_LEN];
	uint8_t e_pub[NOISE_KEY_LEN];
	uint8_t rs[NOISE_KEY_LEN];	/* remote static public key */
	uint8_t re[NOISE_KEY_LEN];	/* remote ephemeral public key */
	uint8_t psk[NOISE_KEY_LEN];
};

/* Compute the X25519 public key of a private key. */
void noise_public_key(uint8_t pub[NOISE_KEY_LEN], const uint8_t priv[NOISE_KEY_LEN]);

/*
 * Start an IK or IKpsk2 handshake. The initiator passes the responder's
 * static public key as remote_static; the responder passes NULL and learns
 * the initiator's key from the initiation. psk may be NULL (all zero bytes
 * are used), and the responder usually sets it later with
 * noise_handshake_set_psk() once it has identified the initiator.
 */
enum noise_result noise_ik_init(struct noise_handshake *hs, enum noise_role role,
				bool psk2,
				const uint8_t *prologue, size_t prologue_len,
				const uint8_t static_priv[NOISE_KEY_LEN],
				const uint8_t *remote_static,
				const uint8_t *psk);

void noise_handshake_set_psk(struct noise_handshake *hs, const uint8_t psk[NOISE_KEY_LEN]);

/* -> e, es, s, ss. out receives NOISE_IK_INITIATION_LEN(payload_len) bytes. */
enum noise_result noise_ik_write_initiation(struct noise_handshake *hs,
					    const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					    const uint8_t *payload, size_t payload_len,
					    uint8_t *out);

/*
 * Read an initiation of exactly len bytes. payload receives
 * len - NOISE_IK_INITIATION_LEN(0) bytes; hs->rs then contains the initiator's
 * static public key, which the caller must check against its known peers.
 */
enum noise_result noise_ik_read_initiation(struct noise_handshake *hs,
					   const uint8_t *message, size_t len,
					   uint8_t *payload);

/* <- e, ee, se[, psk]. out receives NOISE_IK_RESPONSE_LEN(payload_len) bytes. */
enum noise_result noise_ik_write_response(struct noise_handshake *hs,
					  const uint8_t ephemeral_priv[NOISE_KEY_LEN],
					  const uint8_t *payload, size_t payload_len,
					  uint8_t *out);

/* Read a response of exactly len bytes; payload receives len - NOISE_IK_RESPONSE_LEN(0) bytes. */
enum noise_result noise_ik_read_response(struct noise_handshake *hs,
					 const uint8_t *message, size_t len,
					 uint8_t *payload);

/*
 * Split() once the response is done: send encrypts this side's messages,
 * receive decrypts the other side's. The handshake hash stays in hs->h, the
 * secrets are wiped and the state becomes NOISE_HS_SPLIT, so a second call
 * fails with NOISE_ERR_STATE instead of handing out the same keys again.
 */
enum noise_result noise_handshake_split(struct noise_handshake *hs,
					struct noise_cipher *send,
					struct noise_cipher *receive);

void noise_handshake_wipe(struct noise_handshake *hs);

const char *noise_result_string(enum noise_result result);

#endif
