/* Small hashing and signing helpers over OpenSSL's libcrypto, for the credential
 * providers: SHA-1 (the SSO token cache names its files by it) and ES256, ECDSA over
 * P-256 with SHA-256 in the JWS form (r || s, 32 bytes each), which DPoP proofs use.
 * Plain C; no Lua. Key material is never copied into error text. */
#ifndef BR_CRYPTO_H
#define BR_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "br_errors.h"

/* hex gets the 40 lowercase hex digits of SHA-1(data) and a NUL. */
void br_crypto_sha1_hex(const void *data, size_t n, char hex[41]);

/* Fills out[0..n) with bytes from OpenSSL's CSPRNG (RAND_bytes): idempotency tokens,
 * DPoP proof ids. BR_CRYPTO when the generator cannot be seeded. */
br_status br_crypto_random(uint8_t *out, size_t n);

/* A buffer of CSPRNG bytes handed out in small pieces, so that a UUID does not pay for a
 * whole RAND_bytes call (locking, reseed checks: about 20 k instructions each). Owned
 * by the caller (one per Lua state: no locking); zero-initialise it. A fork empties
 * every pool in the child (pthread_atfork), so parent and child never hand out the
 * same bytes. */
typedef struct {
	uint8_t bytes[1024];
	size_t left;          /* unused bytes at the end of `bytes` */
	unsigned generation;  /* the fork generation the bytes were drawn in */
} br_random_pool;

/* out gets a random (version 4, variant 10xx) UUID in lowercase hex with dashes and a
 * NUL, 16 bytes taken from pool. BR_CRYPTO when the generator cannot be seeded. */
br_status br_crypto_uuid4(br_random_pool *pool, char out[37]);

/* Reads a P-256 private key in DER (SEC1 "EC PRIVATE KEY" or PKCS#8) and gives the
 * public point's coordinates. BR_BAD_KEY when it is not such a key. */
br_status br_es256_public(const uint8_t *der, size_t der_len, uint8_t x[32], uint8_t y[32]);

/* Signs msg with that key: sig = r || s (JWS ES256), x/y as br_es256_public (either may
 * be NULL). BR_BAD_KEY, or BR_CRYPTO when libcrypto fails. */
br_status br_es256_sign(const uint8_t *der, size_t der_len, const uint8_t *msg, size_t n,
			uint8_t sig[64], uint8_t x[32], uint8_t y[32]);

/* Verifies a JWS ES256 signature of msg for the public point (x, y): BR_OK,
 * BR_BAD_SIGNATURE, BR_BAD_KEY (not a point on P-256) or BR_CRYPTO. */
br_status br_es256_verify(const uint8_t x[32], const uint8_t y[32], const uint8_t *msg,
			  size_t n, const uint8_t sig[64]);

#endif
