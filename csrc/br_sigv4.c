/* AWS SigV4 signing over libcrypto's low-level SHA-256. Every stage writes into a
 * buffer the signer owns and reuses, so a steady stream of requests does no allocation
 * after warm-up. HMAC is done by hand on SHA256_CTX states: the signing key's inner and
 * outer pad states are cached, so a signature costs the string-to-sign blocks plus one
 * block, with no EVP lookups (SHA256() and HMAC() fetch the algorithm on every call
 * in OpenSSL 3). */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "br_sigv4.h"

/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 but remain the fastest path for
 * many small inputs; kept local to this file. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#define KEY_CACHE 4
#define ALGO "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
	char *id;              /* secret, region, service back to back; malloc'd, wiped */
	size_t cap;
	size_t secret_len, region_len, service_len;
	char date8[8];
	int used;
	uint8_t key[32];       /* kSigning, kept for br_sigv4_signing_key */
	SHA256_CTX ictx, octx; /* HMAC states after absorbing kSigning ^ ipad / ^ opad */
} key_entry;

typedef struct {
	size_t name_off;       /* lower-cased name in s->names */
	size_t name_len;
	const char *name;      /* resolved once s->names stops growing */
	const char *value;
	size_t value_len;
	size_t idx;            /* input order: keeps repeated headers in the order given */
} hdr_ent;

typedef struct {
	size_t koff, klen, voff, vlen;  /* encoded key and value in s->qenc */
	const char *k, *v;
} qpair;

typedef struct {
	size_t off, len;
} seg;

struct br_sigv4_signer {
	br_buf creq, sts, auth, hblk, sh, names, qenc, qout;
	hdr_ent *h;
	size_t hcap;
	qpair *q;
	size_t qcap;
	seg *sg;
	size_t sgcap;
	key_entry cache[KEY_CACHE];
	unsigned victim;
	char sig_hex[65];
};

static const char hex_up[] = "0123456789ABCDEF";

/* ---- small helpers ---------------------------------------------------------------- */

static const char hex_pairs[513] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		memcpy(out + 2 * i, hex_pairs + 2 * p[i], 2);
	out[2 * n] = '\0';
}

/* Byte classes: 1 = unreserved (A-Z a-z 0-9 - . _ ~), 2 = whitespace folded in header
 * values (space, \t, \n, \v, \f, \r). A table: this runs on every path and value byte. */
static const uint8_t cls[256] = {
	0,0,0,0,0,0,0,0,0,2,2,2,2,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	2,0,0,0,0,0,0,0,0,0,0,0,0,1,1,0,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0,
	0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,1,
	0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,1,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
};

#define is_unreserved(c) (cls[(unsigned char)(c)] & 1)
#define is_ws(c) (cls[(unsigned char)(c)] & 2)

static int hexval(unsigned c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

/* Writes the encoding of byte c at o; returns the bytes written (1 or 3). */
static size_t enc_byte(uint8_t *o, unsigned c, int keep_slash)
{
	if (is_unreserved(c) || (keep_slash && c == '/')) {
		o[0] = (uint8_t)c;
		return 1;
	}
	o[0] = '%';
	o[1] = (uint8_t)hex_up[c >> 4];
	o[2] = (uint8_t)hex_up[c & 15];
	return 3;
}

/* Append with the common case (room left) inline; br_buf_append only to grow. */
static inline br_status put(br_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len >= n) {
		if (n)
			memcpy(b->data + b->len, p, n);
		b->len += n;
		return BR_OK;
	}
	return br_buf_append(b, p, n);
}

static inline br_status puts_(br_buf *b, const char *str)
{
	return put(b, str, strlen(str));
}

/* NUL after the content without counting it, so data can be read as a C string. */
static br_status terminate(br_buf *b)
{
	if (br_buf_reserve(b, 1) != BR_OK)
		return BR_NOMEM;
	b->data[b->len] = 0;
	return BR_OK;
}

static int grow(void **p, size_t *cap, size_t need, size_t elsz)
{
	size_t n;
	void *np;

	if (need <= *cap)
		return 1;
	n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	if (n > SIZE_MAX / elsz)
		return 0;
	np = realloc(*p, n * elsz);
	if (!np)
		return 0;
	*p = np;
	*cap = n;
	return 1;
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int r = m ? memcmp(a, b, m) : 0;

	if (r)
		return r;
	return (al > bl) - (al < bl);
}

/* ---- hashing ---------------------------------------------------------------------- */

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	SHA256_CTX c;

	SHA256_Init(&c);
	SHA256_Update(&c, p, n);
	SHA256_Final(out, &c);
}

/* HMAC pad states for the key a||b (b may be NULL when blen is 0). */
static void hmac_init(SHA256_CTX *ictx, SHA256_CTX *octx, const void *a, size_t alen,
		      const void *b, size_t blen)
{
	uint8_t k[64], pad[64];
	size_t i;

	memset(k, 0, sizeof k);
	if (alen + blen > 64) {
		SHA256_CTX c;
		SHA256_Init(&c);
		SHA256_Update(&c, a, alen);
		if (blen)
			SHA256_Update(&c, b, blen);
		SHA256_Final(k, &c);
		OPENSSL_cleanse(&c, sizeof c);
	} else {
		if (alen)
			memcpy(k, a, alen);
		if (blen)
			memcpy(k + alen, b, blen);
	}
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	SHA256_Init(ictx);
	SHA256_Update(ictx, pad, 64);
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	SHA256_Init(octx);
	SHA256_Update(octx, pad, 64);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
}

static void hmac_finish(const SHA256_CTX *ictx, const SHA256_CTX *octx, const void *msg,
			size_t n, uint8_t out[32])
{
	SHA256_CTX c = *ictx;
	uint8_t inner[32];

	SHA256_Update(&c, msg, n);
	SHA256_Final(inner, &c);
	c = *octx;
	SHA256_Update(&c, inner, 32);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof c);
}

static void hmac(const void *key, size_t klen, const void *msg, size_t n, uint8_t out[32])
{
	SHA256_CTX i, o;

	hmac_init(&i, &o, key, klen, NULL, 0);
	hmac_finish(&i, &o, msg, n, out);
	OPENSSL_cleanse(&i, sizeof i);
	OPENSSL_cleanse(&o, sizeof o);
}

void br_sigv4_sha256_hex(const void *p, size_t n, char hex[65])
{
	uint8_t d[32];

	sha256(p, n, d);
	to_hex(d, 32, hex);
}

void br_sigv4_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
			  uint8_t out[32])
{
	hmac(key, key_len, msg, msg_len, out);
}

/* ---- dates ------------------------------------------------------------------------ */

/* Days since 1970-01-01 to civil date (H. Hinnant's algorithm); exact for any int64. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static void put_digits(char *o, unsigned v, int n)
{
	while (n-- > 0) {
		o[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void br_sigv4_amz_date(int64_t t, char buf[17])
{
	int64_t days, y;
	unsigned m, d, secs;

	if (t < BR_SIGV4_TIME_MIN)
		t = BR_SIGV4_TIME_MIN;
	if (t > BR_SIGV4_TIME_MAX)
		t = BR_SIGV4_TIME_MAX;
	days = t / 86400;
	if (t % 86400 < 0)
		days--;
	secs = (unsigned)(t - days * 86400);
	civil_from_days(days, &y, &m, &d);
	put_digits(buf, (unsigned)y, 4);
	put_digits(buf + 4, m, 2);
	put_digits(buf + 6, d, 2);
	buf[8] = 'T';
	put_digits(buf + 9, secs / 3600, 2);
	put_digits(buf + 11, secs / 60 % 60, 2);
	put_digits(buf + 13, secs % 60, 2);
	buf[15] = 'Z';
	buf[16] = '\0';
}

static int num2(const char *p)
{
	return (p[0] - '0') * 10 + (p[1] - '0');
}

/* "YYYYMMDDTHHMMSSZ" exactly (NUL right after); stops at the first mismatch, so it
 * never reads past a shorter string's terminator. */
static int valid_amz_date(const char *d)
{
	int i, v;

	if (!d)
		return 0;
	for (i = 0; i < 16; i++) {
		char c = d[i];
		if (i == 8) {
			if (c != 'T')
				return 0;
		} else if (i == 15) {
			if (c != 'Z')
				return 0;
		} else if (c < '0' || c > '9') {
			return 0;
		}
	}
	if (d[16] != '\0')
		return 0;
	v = num2(d + 4);
	if (v < 1 || v > 12)
		return 0;
	v = num2(d + 6);
	if (v < 1 || v > 31)
		return 0;
	return num2(d + 9) < 24 && num2(d + 11) < 60 && num2(d + 13) <= 60;
}

/* ---- signer lifetime and key cache ------------------------------------------------ */

br_sigv4_signer *br_sigv4_new(void)
{
	return calloc(1, sizeof(br_sigv4_signer));
}

static void wipe_buf(br_buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	br_buf_free(b);
}

void br_sigv4_free(br_sigv4_signer *s)
{
	int i;

	if (!s)
		return;
	wipe_buf(&s->creq);
	wipe_buf(&s->sts);
	wipe_buf(&s->auth);
	wipe_buf(&s->hblk);
	wipe_buf(&s->sh);
	wipe_buf(&s->names);
	wipe_buf(&s->qenc);
	wipe_buf(&s->qout);
	free(s->h);
	free(s->q);
	free(s->sg);
	for (i = 0; i < KEY_CACHE; i++) {
		key_entry *e = &s->cache[i];
		if (e->id) {
			OPENSSL_cleanse(e->id, e->cap);
			free(e->id);
		}
	}
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
}

/* Finds or derives the cached key for (secret, date8, region, service); NULL on NOMEM. */
static key_entry *key_get(br_sigv4_signer *s, const char *secret, size_t slen,
			  const char *date8, const char *region, size_t rlen,
			  const char *service, size_t svlen)
{
	key_entry *e;
	uint8_t k[32];
	size_t need;
	int i;

	for (i = 0; i < KEY_CACHE; i++) {
		e = &s->cache[i];
		if (e->used && memcmp(e->date8, date8, 8) == 0 && e->secret_len == slen &&
		    e->region_len == rlen && e->service_len == svlen &&
		    memcmp(e->id, secret, slen) == 0 &&
		    memcmp(e->id + slen, region, rlen) == 0 &&
		    memcmp(e->id + slen + rlen, service, svlen) == 0)
			return e;
	}
	e = NULL;
	for (i = 0; i < KEY_CACHE; i++)
		if (!s->cache[i].used) {
			e = &s->cache[i];
			break;
		}
	if (!e) {
		e = &s->cache[s->victim];
		s->victim = (s->victim + 1) % KEY_CACHE;
	}
	e->used = 0;
	need = slen + rlen + svlen + 1;
	if (need > e->cap) {
		char *id = malloc(need);
		if (!id)
			return NULL;
		if (e->id) {
			OPENSSL_cleanse(e->id, e->cap);
			free(e->id);
		}
		e->id = id;
		e->cap = need;
	}
	memcpy(e->id, secret, slen);
	memcpy(e->id + slen, region, rlen);
	memcpy(e->id + slen + rlen, service, svlen);
	e->secret_len = slen;
	e->region_len = rlen;
	e->service_len = svlen;
	memcpy(e->date8, date8, 8);

	/* kDate = HMAC("AWS4" + secret, date), then region, service, "aws4_request". */
	hmac_init(&e->ictx, &e->octx, "AWS4", 4, secret, slen);
	hmac_finish(&e->ictx, &e->octx, date8, 8, k);
	hmac(k, 32, region, rlen, k);
	hmac(k, 32, service, svlen, k);
	hmac(k, 32, "aws4_request", 12, e->key);
	hmac_init(&e->ictx, &e->octx, e->key, 32, NULL, 0);
	OPENSSL_cleanse(k, sizeof k);
	e->used = 1;
	return e;
}

br_status br_sigv4_signing_key(br_sigv4_signer *s, const char *secret, const char *date8,
			       const char *region, const char *service, uint8_t key[32])
{
	key_entry *e;
	int i;

	if (!s || !secret || !date8 || !region || !service)
		return BR_INVAL;
	for (i = 0; i < 8; i++)
		if (date8[i] < '0' || date8[i] > '9')
			return BR_INVAL;
	if (date8[8] != '\0')
		return BR_INVAL;
	e = key_get(s, secret, strlen(secret), date8, region, strlen(region), service,
		    strlen(service));
	if (!e)
		return BR_NOMEM;
	memcpy(key, e->key, 32);
	return BR_OK;
}

/* ---- canonical URI ---------------------------------------------------------------- */

static br_status encode_into(br_buf *b, const char *str, size_t n, int keep_slash)
{
	size_t i;
	uint8_t *o;

	if (n > (SIZE_MAX - 1) / 3)
		return BR_NOMEM;
	if (br_buf_reserve(b, 3 * n) != BR_OK)
		return BR_NOMEM;
	o = b->data + b->len;
	for (i = 0; i < n; i++)
		o += enc_byte(o, (unsigned char)str[i], keep_slash);
	b->len = (size_t)(o - b->data);
	return BR_OK;
}

br_status br_sigv4_uri_encode(br_buf *b, const char *str, size_t n, int keep_slash)
{
	if (!b || (!str && n))
		return BR_INVAL;
	return encode_into(b, str, n, keep_slash);
}

static br_status canon_uri(br_sigv4_signer *s, br_buf *b, const char *path, size_t n,
			   int normalize)
{
	size_t i, start, nseg = 0;

	if (n == 0 || !path)
		return put(b, "/", 1);
	if (path[0] != '/' || memchr(path, '?', n) || memchr(path, '#', n))
		return BR_BAD_PATH;
	if (!normalize)
		return encode_into(b, path, n, 1);

	if (!grow((void **)&s->sg, &s->sgcap, n / 2 + 1, sizeof(seg)))
		return BR_NOMEM;
	for (i = 1, start = 1; i <= n; i++) {
		if (i < n && path[i] != '/')
			continue;
		{
			size_t len = i - start;
			const char *p = path + start;
			if (len == 0 || (len == 1 && p[0] == '.')) {
				/* empty or "." segment: dropped */
			} else if (len == 2 && p[0] == '.' && p[1] == '.') {
				if (nseg)
					nseg--;
			} else {
				s->sg[nseg].off = start;
				s->sg[nseg].len = len;
				nseg++;
			}
		}
		start = i + 1;
	}
	if (put(b, "/", 1) != BR_OK)
		return BR_NOMEM;
	for (i = 0; i < nseg; i++) {
		if (i && put(b, "/", 1) != BR_OK)
			return BR_NOMEM;
		if (encode_into(b, path + s->sg[i].off, s->sg[i].len, 0) != BR_OK)
			return BR_NOMEM;
	}
	if (nseg && path[n - 1] == '/')
		return put(b, "/", 1);
	return BR_OK;
}

/* ---- canonical query -------------------------------------------------------------- */

/* Appends str decoded (%XX only; '+' is literal) and then encoded canonically. */
static br_status recode_into(br_buf *b, const char *str, size_t n)
{
	size_t i = 0;
	uint8_t *o;

	if (n > (SIZE_MAX - 1) / 3)
		return BR_NOMEM;
	if (br_buf_reserve(b, 3 * n) != BR_OK)
		return BR_NOMEM;
	o = b->data + b->len;
	while (i < n) {
		unsigned c = (unsigned char)str[i];
		int hi, lo;
		if (c == '%' && i + 2 < n && (hi = hexval((unsigned char)str[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)str[i + 2])) >= 0) {
			c = (unsigned)(hi << 4 | lo);
			i += 3;
		} else {
			i++;
		}
		o += enc_byte(o, c, 0);
	}
	b->len = (size_t)(o - b->data);
	return BR_OK;
}

static qpair *new_pair(br_sigv4_signer *s, size_t *np)
{
	if (!grow((void **)&s->q, &s->qcap, *np + 1, sizeof(qpair)))
		return NULL;
	return &s->q[(*np)++];
}

static br_status parse_query(br_sigv4_signer *s, const char *q, size_t n, size_t *np)
{
	size_t i = 0;

	while (i < n) {
		const char *amp = memchr(q + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - q) : n;
		if (end > i) {
			const char *eq = memchr(q + i, '=', end - i);
			size_t kend = eq ? (size_t)(eq - q) : end;
			qpair *p = new_pair(s, np);
			if (!p)
				return BR_NOMEM;
			p->koff = s->qenc.len;
			if (recode_into(&s->qenc, q + i, kend - i) != BR_OK)
				return BR_NOMEM;
			p->klen = s->qenc.len - p->koff;
			p->voff = s->qenc.len;
			if (eq && recode_into(&s->qenc, eq + 1, end - kend - 1) != BR_OK)
				return BR_NOMEM;
			p->vlen = s->qenc.len - p->voff;
		}
		i = end + 1;
	}
	return BR_OK;
}

/* A parameter whose key is already canonical and whose value is encoded (not decoded
 * first: our own values are raw). */
static br_status add_param(br_sigv4_signer *s, size_t *np, const char *k, const char *v,
			   size_t vlen)
{
	qpair *p = new_pair(s, np);

	if (!p)
		return BR_NOMEM;
	p->koff = s->qenc.len;
	if (puts_(&s->qenc, k) != BR_OK)
		return BR_NOMEM;
	p->klen = s->qenc.len - p->koff;
	p->voff = s->qenc.len;
	if (encode_into(&s->qenc, v, vlen, 0) != BR_OK)
		return BR_NOMEM;
	p->vlen = s->qenc.len - p->voff;
	return BR_OK;
}

static int qpair_cmp(const void *a, const void *b)
{
	const qpair *x = a, *y = b;
	int r = cmp_bytes(x->k, x->klen, y->k, y->klen);

	return r ? r : cmp_bytes(x->v, x->vlen, y->v, y->vlen);
}

static br_status emit_query(br_sigv4_signer *s, br_buf *b, size_t np)
{
	size_t i, j;
	const char *base = (const char *)s->qenc.data;

	for (i = 0; i < np; i++) {
		s->q[i].k = base + s->q[i].koff;
		s->q[i].v = base + s->q[i].voff;
	}
	if (np <= 16) {
		for (i = 1; i < np; i++) {
			qpair t = s->q[i];
			for (j = i; j > 0 && qpair_cmp(&s->q[j - 1], &t) > 0; j--)
				s->q[j] = s->q[j - 1];
			s->q[j] = t;
		}
	} else {
		qsort(s->q, np, sizeof(qpair), qpair_cmp);
	}
	for (i = 0; i < np; i++) {
		if ((i && put(b, "&", 1) != BR_OK) || put(b, s->q[i].k, s->q[i].klen) != BR_OK ||
		    put(b, "=", 1) != BR_OK || put(b, s->q[i].v, s->q[i].vlen) != BR_OK)
			return BR_NOMEM;
	}
	return BR_OK;
}

/* ---- canonical headers ------------------------------------------------------------ */

static int hdr_cmp(const void *a, const void *b)
{
	const hdr_ent *x = a, *y = b;
	int r = cmp_bytes(x->name, x->name_len, y->name, y->name_len);

	if (r)
		return r;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static int name_is(const hdr_ent *e, const char *lit, size_t n)
{
	return e->name_len == n && memcmp(e->name, lit, n) == 0;
}

/* Appends the value trimmed, with each whitespace run folded to one space. */
static br_status put_value(br_buf *b, const char *v, size_t n)
{
	size_t i = 0, end = n;
	uint8_t *o;
	int in_ws = 0;

	while (i < end && is_ws((unsigned char)v[i]))
		i++;
	while (end > i && is_ws((unsigned char)v[end - 1]))
		end--;
	if (br_buf_reserve(b, end - i) != BR_OK)
		return BR_NOMEM;
	o = b->data + b->len;
	for (; i < end; i++) {
		unsigned char c = (unsigned char)v[i];
		if (is_ws(c)) {
			if (!in_ws)
				*o++ = ' ';
			in_ws = 1;
		} else {
			*o++ = c;
			in_ws = 0;
		}
	}
	b->len = (size_t)(o - b->data);
	return BR_OK;
}

/* Builds s->hblk ("name:value\n" per signed header) and s->sh ("a;b;c"); reports the
 * x-amz-content-sha256 entry (or NULL) for the payload hash. */
static br_status canon_headers(br_sigv4_signer *s, const br_sigv4_request *req,
			       int sign_token, const hdr_ent **content_sha)
{
	size_t i, j, n = 0;
	int has_host = 0;
	const char *base;

	*content_sha = NULL;
	br_buf_reset(&s->names);
	br_buf_reset(&s->hblk);
	br_buf_reset(&s->sh);
	if (req->nheaders && !req->headers)
		return BR_INVAL;
	if (!grow((void **)&s->h, &s->hcap, req->nheaders + 1, sizeof(hdr_ent)))
		return BR_NOMEM;
	for (i = 0; i < req->nheaders; i++) {
		const br_sigv4_header *h = &req->headers[i];
		hdr_ent *e = &s->h[n];
		uint8_t *o;

		if (!h->name || h->name_len == 0 || (h->value_len && !h->value))
			return BR_BAD_HEADER;
		if (br_buf_reserve(&s->names, h->name_len) != BR_OK)
			return BR_NOMEM;
		o = s->names.data + s->names.len;
		for (j = 0; j < h->name_len; j++) {
			unsigned char c = (unsigned char)h->name[j];
			if (c <= 0x20 || c >= 0x7f || (c == ':' && j > 0))
				return BR_BAD_HEADER;
			o[j] = (uint8_t)((c >= 'A' && c <= 'Z') ? c + 32 : c);
		}
		e->name_off = s->names.len;
		e->name_len = h->name_len;
		e->name = (const char *)o;
		e->value = h->value ? h->value : "";
		e->value_len = h->value_len;
		e->idx = i;
		if (!sign_token && name_is(e, "x-amz-security-token", 20))
			continue;  /* sent, not signed: the bytes stay in names, harmlessly */
		s->names.len += h->name_len;
		n++;
	}
	base = (const char *)s->names.data;
	for (i = 0; i < n; i++)
		s->h[i].name = base + s->h[i].name_off;
	if (n <= 16) {
		for (i = 1; i < n; i++) {
			hdr_ent t = s->h[i];
			for (j = i; j > 0 && hdr_cmp(&s->h[j - 1], &t) > 0; j--)
				s->h[j] = s->h[j - 1];
			s->h[j] = t;
		}
	} else {
		qsort(s->h, n, sizeof(hdr_ent), hdr_cmp);
	}
	for (i = 0; i < n; i++) {
		const hdr_ent *e = &s->h[i];
		if (name_is(e, "host", 4) || name_is(e, ":authority", 10))
			has_host = 1;
		else if (name_is(e, "x-amz-content-sha256", 20))
			*content_sha = e;
	}
	if (!has_host)
		return BR_BAD_HEADER;
	for (i = 0; i < n; i = j) {
		const hdr_ent *e = &s->h[i];
		if ((i && put(&s->sh, ";", 1) != BR_OK) || put(&s->sh, e->name, e->name_len) ||
		    put(&s->hblk, e->name, e->name_len) || put(&s->hblk, ":", 1))
			return BR_NOMEM;
		for (j = i; j < n && s->h[j].name_len == e->name_len &&
			    memcmp(s->h[j].name, e->name, e->name_len) == 0; j++) {
			if ((j > i && put(&s->hblk, ",", 1)) ||
			    put_value(&s->hblk, s->h[j].value, s->h[j].value_len))
				return BR_NOMEM;
		}
		if (put(&s->hblk, "\n", 1))
			return BR_NOMEM;
	}
	return terminate(&s->sh);
}

/* ---- signing ---------------------------------------------------------------------- */

static br_status check_params(const br_sigv4_params *p)
{
	if (!p || !p->access_key || !p->secret_key || !p->region || !p->service ||
	    !*p->access_key || !*p->secret_key || !*p->region || !*p->service)
		return BR_INVAL;
	return BR_OK;
}

/* "AWS4-HMAC-SHA256\n<date>\n<scope>\n" into s->sts; scope offset/len out. */
static br_status sts_head(br_sigv4_signer *s, const char *algo, const char *amz_date,
			  const br_sigv4_params *p, size_t *scope_off, size_t *scope_len)
{
	br_buf *b = &s->sts;

	br_buf_reset(b);
	if (puts_(b, algo) || put(b, "\n", 1) || put(b, amz_date, 16) || put(b, "\n", 1))
		return BR_NOMEM;
	*scope_off = b->len;
	if (put(b, amz_date, 8) || put(b, "/", 1) || puts_(b, p->region) || put(b, "/", 1) ||
	    puts_(b, p->service) || puts_(b, "/aws4_request") )
		return BR_NOMEM;
	*scope_len = b->len - *scope_off;
	return put(b, "\n", 1);
}

static br_status sign_common(br_sigv4_signer *s, const br_sigv4_params *p,
			     const br_sigv4_request *req, br_sigv4_result *out, int presign)
{
	const hdr_ent *csha;
	size_t np = 0, scope_off, scope_len, qoff, qlen;
	char hash_hex[65];
	uint8_t d[32];
	key_entry *e;
	br_status st;
	int token = p && p->session_token && *p->session_token;

	if (!s || !req || !out)
		return BR_INVAL;
	if ((st = check_params(p)) != BR_OK)
		return st;
	if (!valid_amz_date(p->amz_date))
		return BR_BAD_DATE;
	if (!req->method || !*req->method || (req->query_len && !req->query) ||
	    (req->payload_len && !req->payload))
		return BR_INVAL;
	if (presign && (p->expires < 1 || p->expires > BR_SIGV4_EXPIRES_MAX))
		return BR_RANGE;
	memset(out, 0, sizeof *out);

	if ((st = canon_headers(s, req, presign || p->sign_token, &csha)) != BR_OK)
		return st;
	if ((st = sts_head(s, ALGO, p->amz_date, p, &scope_off, &scope_len)) != BR_OK)
		return st;

	/* Canonical request. */
	br_buf_reset(&s->creq);
	if (puts_(&s->creq, req->method) || put(&s->creq, "\n", 1))
		return BR_NOMEM;
	if ((st = canon_uri(s, &s->creq, req->path, req->path ? req->path_len : 0,
			    p->normalize_path)) != BR_OK)
		return st;
	if (put(&s->creq, "\n", 1))
		return BR_NOMEM;
	br_buf_reset(&s->qenc);
	if (req->query_len && (st = parse_query(s, req->query, req->query_len, &np)) != BR_OK)
		return st;
	if (presign) {
		size_t cred_len = strlen(p->access_key) + 1 + scope_len;
		char ebuf[24];
		size_t k;
		long v = p->expires;

		/* Credential value "AKID/scope": built in qout, which is free until the end. */
		br_buf_reset(&s->qout);
		if (puts_(&s->qout, p->access_key) || put(&s->qout, "/", 1) ||
		    put(&s->qout, s->sts.data + scope_off, scope_len))
			return BR_NOMEM;
		for (k = 0; v > 0 && k < sizeof ebuf; v /= 10)
			ebuf[sizeof ebuf - 1 - k++] = (char)('0' + v % 10);
		if (add_param(s, &np, "X-Amz-Algorithm", ALGO, sizeof ALGO - 1) ||
		    add_param(s, &np, "X-Amz-Credential", (const char *)s->qout.data, cred_len) ||
		    add_param(s, &np, "X-Amz-Date", p->amz_date, 16) ||
		    add_param(s, &np, "X-Amz-Expires", ebuf + sizeof ebuf - k, k) ||
		    add_param(s, &np, "X-Amz-SignedHeaders", (const char *)s->sh.data, s->sh.len))
			return BR_NOMEM;
		if (token && p->sign_token &&
		    add_param(s, &np, "X-Amz-Security-Token", p->session_token,
			      strlen(p->session_token)))
			return BR_NOMEM;
	}
	qoff = s->creq.len;
	if (np && (st = emit_query(s, &s->creq, np)) != BR_OK)
		return st;
	qlen = s->creq.len - qoff;
	if (put(&s->creq, "\n", 1) || put(&s->creq, s->hblk.data, s->hblk.len) ||
	    put(&s->creq, "\n", 1) || put(&s->creq, s->sh.data, s->sh.len) ||
	    put(&s->creq, "\n", 1))
		return BR_NOMEM;
	if (req->payload_hash) {
		if (puts_(&s->creq, req->payload_hash))
			return BR_NOMEM;
	} else if (csha) {
		if (put_value(&s->creq, csha->value, csha->value_len))
			return BR_NOMEM;
	} else if (req->payload_len == 0) {
		if (put(&s->creq, EMPTY_SHA256, 64))
			return BR_NOMEM;
	} else {
		br_sigv4_sha256_hex(req->payload, req->payload_len, hash_hex);
		if (put(&s->creq, hash_hex, 64))
			return BR_NOMEM;
	}
	if (terminate(&s->creq))
		return BR_NOMEM;

	/* String to sign, signature. */
	sha256(s->creq.data, s->creq.len, d);
	to_hex(d, 32, hash_hex);
	if (put(&s->sts, hash_hex, 64) || terminate(&s->sts))
		return BR_NOMEM;
	e = key_get(s, p->secret_key, strlen(p->secret_key), p->amz_date, p->region,
		    strlen(p->region), p->service, strlen(p->service));
	if (!e)
		return BR_NOMEM;
	hmac_finish(&e->ictx, &e->octx, s->sts.data, s->sts.len, d);
	to_hex(d, 32, s->sig_hex);

	out->canonical_request = (const char *)s->creq.data;
	out->string_to_sign = (const char *)s->sts.data;
	out->signed_headers = (const char *)s->sh.data;
	out->signature = s->sig_hex;
	if (!presign) {
		br_buf *a = &s->auth;
		br_buf_reset(a);
		if (puts_(a, ALGO " Credential=") || puts_(a, p->access_key) || put(a, "/", 1) ||
		    put(a, s->sts.data + scope_off, scope_len) || puts_(a, ", SignedHeaders=") ||
		    put(a, s->sh.data, s->sh.len) || puts_(a, ", Signature=") ||
		    put(a, s->sig_hex, 64) || terminate(a))
			return BR_NOMEM;
		out->authorization = (const char *)a->data;
	} else {
		br_buf *q = &s->qout;
		br_buf_reset(q);
		if (put(q, s->creq.data + qoff, qlen))
			return BR_NOMEM;
		if (token && !p->sign_token &&
		    (puts_(q, "&X-Amz-Security-Token=") ||
		     encode_into(q, p->session_token, strlen(p->session_token), 0)))
			return BR_NOMEM;
		if (puts_(q, "&X-Amz-Signature=") || put(q, s->sig_hex, 64) || terminate(q))
			return BR_NOMEM;
		out->query = (const char *)q->data;
	}
	return BR_OK;
}

br_status br_sigv4_sign(br_sigv4_signer *s, const br_sigv4_params *p,
			const br_sigv4_request *req, br_sigv4_result *out)
{
	return sign_common(s, p, req, out, 0);
}

br_status br_sigv4_presign(br_sigv4_signer *s, const br_sigv4_params *p,
			   const br_sigv4_request *req, br_sigv4_result *out)
{
	return sign_common(s, p, req, out, 1);
}

/* ---- event signing ---------------------------------------------------------------- */

void br_sigv4_event_date_header(int64_t date_ms, uint8_t out[15])
{
	uint64_t v = (uint64_t)date_ms;
	int i;

	out[0] = 5;
	memcpy(out + 1, ":date", 5);
	out[6] = 8;
	for (i = 0; i < 8; i++)
		out[7 + i] = (uint8_t)(v >> (56 - 8 * i));
}

br_status br_sigv4_sign_event_raw(br_sigv4_signer *s, const br_sigv4_params *p,
				  const char *prior_sig_hex, const char *amz_date,
				  const uint8_t *hdr, size_t hdr_len,
				  const uint8_t *payload, size_t payload_len,
				  uint8_t sig[32], char sig_hex[65], br_sigv4_result *out)
{
	size_t scope_off, scope_len;
	char hx[65];
	key_entry *e;
	br_status st;

	if (!s || !sig || (hdr_len && !hdr) || (payload_len && !payload))
		return BR_INVAL;
	if ((st = check_params(p)) != BR_OK)
		return st;
	if (!valid_amz_date(amz_date))
		return BR_BAD_DATE;
	if ((st = sts_head(s, "AWS4-HMAC-SHA256-PAYLOAD", amz_date, p, &scope_off,
			   &scope_len)) != BR_OK)
		return st;
	if ((prior_sig_hex && puts_(&s->sts, prior_sig_hex)) || put(&s->sts, "\n", 1))
		return BR_NOMEM;
	br_sigv4_sha256_hex(hdr_len ? (const void *)hdr : "", hdr_len, hx);
	if (put(&s->sts, hx, 64) || put(&s->sts, "\n", 1))
		return BR_NOMEM;
	if (payload_len)
		br_sigv4_sha256_hex(payload, payload_len, hx);
	else
		memcpy(hx, EMPTY_SHA256, 65);
	if (put(&s->sts, hx, 64) || terminate(&s->sts))
		return BR_NOMEM;
	e = key_get(s, p->secret_key, strlen(p->secret_key), amz_date, p->region,
		    strlen(p->region), p->service, strlen(p->service));
	if (!e)
		return BR_NOMEM;
	hmac_finish(&e->ictx, &e->octx, s->sts.data, s->sts.len, sig);
	to_hex(sig, 32, s->sig_hex);
	if (sig_hex)
		memcpy(sig_hex, s->sig_hex, 65);
	if (out) {
		memset(out, 0, sizeof *out);
		out->string_to_sign = (const char *)s->sts.data;
		out->signature = s->sig_hex;
	}
	return BR_OK;
}

br_status br_sigv4_sign_event(br_sigv4_signer *s, const br_sigv4_params *p,
			      const char *prior_sig_hex, int64_t date_ms,
			      const uint8_t *payload, size_t payload_len,
			      uint8_t sig[32], char sig_hex[65], br_sigv4_result *out)
{
	uint8_t hdr[15];
	char amz[17];
	int64_t secs = date_ms / 1000;

	if (date_ms % 1000 < 0)
		secs--;
	if (secs < BR_SIGV4_TIME_MIN || secs > BR_SIGV4_TIME_MAX)
		return BR_RANGE;
	br_sigv4_amz_date(secs, amz);
	br_sigv4_event_date_header(date_ms, hdr);
	return br_sigv4_sign_event_raw(s, p, prior_sig_hex, amz, hdr, sizeof hdr, payload,
				       payload_len, sig, sig_hex, out);
}
