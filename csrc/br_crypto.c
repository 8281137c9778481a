/* SHA-1 and ES256 over OpenSSL 3's EVP interface (see br_crypto.h). */
#include "br_crypto.h"

#include <pthread.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

br_status br_crypto_random(uint8_t *out, size_t n)
{
	while (n > 0) {
		int k = n > 1 << 20 ? 1 << 20 : (int)n;
		if (RAND_bytes(out, k) != 1) return BR_CRYPTO;
		out += k;
		n -= (size_t)k;
	}
	return BR_OK;
}

/* Bumped in the child of every fork: a pool filled under another generation is
 * refilled before use. */
static volatile unsigned fork_generation = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	fork_generation++;
}

static void register_atfork(void)
{
	/* registered for this shared object: glibc drops it when the module is unloaded */
	(void)pthread_atfork(NULL, NULL, on_fork_child);
}

br_status br_crypto_uuid4(br_random_pool *pool, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *b;
	uint8_t u[16];
	int i, o = 0;

	pthread_once(&atfork_once, register_atfork);
	if (pool->generation != fork_generation || pool->left < 16) {
		unsigned gen = fork_generation;

		pool->left = 0;
		if (br_crypto_random(pool->bytes, sizeof pool->bytes) != BR_OK)
			return BR_CRYPTO;
		pool->left = sizeof pool->bytes;
		pool->generation = gen;
	}
	b = pool->bytes + sizeof pool->bytes - pool->left;
	memcpy(u, b, 16);
	memset((uint8_t *)b, 0, 16); /* handed out once */
	pool->left -= 16;
	u[6] = (uint8_t)(0x40 | (u[6] & 0x0f));
	u[8] = (uint8_t)(0x80 | (u[8] & 0x3f));
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = '\0';
	return BR_OK;
}

void br_crypto_sha1_hex(const void *data, size_t n, char hex[41])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[20];
	unsigned int len = 0;

	if (!EVP_Digest(data, n, md, &len, EVP_sha1(), NULL) || len != 20)
		memset(md, 0, sizeof md);
	for (int i = 0; i < 20; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[40] = '\0';
}

/* The key in der when it is an EC key on P-256; NULL otherwise. */
static EVP_PKEY *load_p256(const uint8_t *der, size_t der_len)
{
	const unsigned char *p = der;
	EVP_PKEY *k;
	char group[64];
	size_t glen = 0;

	if (!der || der_len == 0 || der_len > 4096) return NULL;
	k = d2i_AutoPrivateKey(NULL, &p, (long)der_len);
	if (!k) return NULL;
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen) ||
	    strcmp(group, "prime256v1") != 0) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static br_status coords(EVP_PKEY *k, uint8_t x[32], uint8_t y[32])
{
	BIGNUM *bx = NULL, *by = NULL;
	br_status st = BR_CRYPTO;

	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx) &&
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by) &&
	    BN_bn2binpad(bx, x, 32) == 32 && BN_bn2binpad(by, y, 32) == 32)
		st = BR_OK;
	BN_free(bx);
	BN_free(by);
	return st;
}

br_status br_es256_public(const uint8_t *der, size_t der_len, uint8_t x[32], uint8_t y[32])
{
	EVP_PKEY *k = load_p256(der, der_len);
	br_status st;

	if (!k) return BR_BAD_KEY;
	st = coords(k, x, y);
	EVP_PKEY_free(k);
	return st;
}

br_status br_es256_sign(const uint8_t *der, size_t der_len, const uint8_t *msg, size_t n,
			uint8_t sig[64], uint8_t x[32], uint8_t y[32])
{
	EVP_PKEY *k = load_p256(der, der_len);
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	unsigned char dsig[80];
	size_t dlen = sizeof dsig;
	br_status st = BR_CRYPTO;

	if (!k) return BR_BAD_KEY;
	if (x && y && coords(k, x, y) != BR_OK) goto done;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(ctx, dsig, &dlen, msg, n) != 1)
		goto done;
	{
		const unsigned char *p = dsig;
		const BIGNUM *r, *s;
		es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
		if (!es) goto done;
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32) goto done;
	}
	st = BR_OK;
done:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return st;
}

br_status br_es256_verify(const uint8_t x[32], const uint8_t y[32], const uint8_t *msg,
			  size_t n, const uint8_t sig[64])
{
	unsigned char point[65];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *dsig = NULL;
	int dlen, rc;
	br_status st = BR_CRYPTO;

	point[0] = 0x04;
	memcpy(point + 1, x, 32);
	memcpy(point + 33, y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto done;
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!pctx || EVP_PKEY_fromdata_init(pctx) != 1) goto done;
	if (EVP_PKEY_fromdata(pctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1 || !k) {
		st = BR_BAD_KEY;
		goto done;
	}
	/* fromdata does not check that the point is on the curve; the check does. */
	EVP_PKEY_CTX_free(pctx);
	pctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (!pctx || EVP_PKEY_public_check(pctx) != 1) {
		st = BR_BAD_KEY;
		goto done;
	}
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	es = ECDSA_SIG_new();
	if (!r || !s || !es || ECDSA_SIG_set0(es, r, s) != 1) goto done;
	r = s = NULL;  /* owned by es now */
	dlen = i2d_ECDSA_SIG(es, &dsig);
	if (dlen <= 0) goto done;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) != 1) goto done;
	rc = EVP_DigestVerify(ctx, dsig, (size_t)dlen, msg, n);
	st = rc == 1 ? BR_OK : BR_BAD_SIGNATURE;
done:
	OPENSSL_free(dsig);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return st;
}
