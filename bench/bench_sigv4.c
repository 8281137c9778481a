/* SigV4 signatures per second for a 2 KB Converse request, against the bare OpenSSL
 * floor measured in the same run: SHA-256 of the payload, SHA-256 of a canonical request
 * of the same size as ours, and the one HMAC-SHA256 of the string to sign with the
 * signing key cached (the minimum crypto any SigV4 signer with a key cache must do).
 * The floor is taken as the faster of two ways of calling OpenSSL (one-shot functions,
 * and EVP contexts fetched once and reused); both are printed.
 *
 * Usage: bench_sigv4 [passes]     Built without br_sigv4.o (-DNO_SIGNER), prints the
 * floor only. */
#include "bench.h"
#ifndef NO_SIGNER
#include "br_sigv4.h"
#endif

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define ITER 50000

#define PATH_WIRE "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
#define PATH_CANON "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse"
#define HOST "bedrock-runtime.us-east-1.amazonaws.com"
#define AMZ_DATE "20150830T123600Z"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static uint8_t payload[2048];
static char canon[1024], sts[512];
static size_t canon_len, sts_len;
static uint8_t signing_key[32];

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* The 2 KB body: a Converse request whose text pads it to exactly 2048 bytes. */
static void make_payload(void)
{
	static const char head[] = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"";
	static const char tail[] = "\"}]}],\"inferenceConfig\":{\"maxTokens\":512}}";
	size_t h = sizeof head - 1, t = sizeof tail - 1;
	memcpy(payload, head, h);
	for (size_t i = h; i < sizeof payload - t; i++)
		payload[i] = (uint8_t)"lorem ipsum dolor sit amet "[i % 27];
	memcpy(payload + sizeof payload - t, tail, t);
}

/* Builds the canonical request and string to sign the way the spec defines them, and
 * the signing key once (it is cached in every signer measured). */
static void make_floor_inputs(void)
{
	uint8_t d[32], k[32];
	char ph[65], ch[65], key0[64];
	unsigned int kl = 32;
	SHA256(payload, sizeof payload, d);
	hex(d, 32, ph);
	canon_len = (size_t)snprintf(canon, sizeof canon,
		"POST\n%s\n\ncontent-type:application/json\nhost:" HOST
		"\nx-amz-date:" AMZ_DATE "\n\ncontent-type;host;x-amz-date\n%s", PATH_CANON, ph);
	SHA256((const uint8_t *)canon, canon_len, d);
	hex(d, 32, ch);
	sts_len = (size_t)snprintf(sts, sizeof sts,
		"AWS4-HMAC-SHA256\n" AMZ_DATE "\n20150830/us-east-1/bedrock/aws4_request\n%s", ch);
	snprintf(key0, sizeof key0, "AWS4%s", SECRET);
	HMAC(EVP_sha256(), key0, (int)strlen(key0), (const uint8_t *)"20150830", 8, k, &kl);
	HMAC(EVP_sha256(), k, 32, (const uint8_t *)"us-east-1", 9, k, &kl);
	HMAC(EVP_sha256(), k, 32, (const uint8_t *)"bedrock", 7, k, &kl);
	HMAC(EVP_sha256(), k, 32, (const uint8_t *)"aws4_request", 12, signing_key, &kl);
}

static double floor_oneshot(int n)
{
	uint8_t d[32], s[32];
	unsigned int sl = 32;
	double t0 = bench_now();
	for (int i = 0; i < n; i++) {
		SHA256(payload, sizeof payload, d);
		SHA256((const uint8_t *)canon, canon_len, d);
		HMAC(EVP_sha256(), signing_key, 32, (const uint8_t *)sts, sts_len, s, &sl);
		bench_sink += d[0] + s[0];
	}
	return (bench_now() - t0) / n;
}

static EVP_MD *md;
static EVP_MD_CTX *mdctx;
static EVP_MAC *mac;
static EVP_MAC_CTX *macctx;

static double floor_evp(int n)
{
	uint8_t d[32], s[32];
	unsigned int dl;
	size_t sl;
	double t0 = bench_now();
	for (int i = 0; i < n; i++) {
		EVP_DigestInit_ex(mdctx, md, NULL);
		EVP_DigestUpdate(mdctx, payload, sizeof payload);
		EVP_DigestFinal_ex(mdctx, d, &dl);
		EVP_DigestInit_ex(mdctx, md, NULL);
		EVP_DigestUpdate(mdctx, canon, canon_len);
		EVP_DigestFinal_ex(mdctx, d, &dl);
		EVP_MAC_init(macctx, signing_key, 32, NULL);
		EVP_MAC_update(macctx, (const uint8_t *)sts, sts_len);
		EVP_MAC_final(macctx, s, &sl, sizeof s);
		bench_sink += d[0] + s[0];
	}
	return (bench_now() - t0) / n;
}

static void evp_setup(void)
{
	OSSL_PARAM params[2];
	md = EVP_MD_fetch(NULL, "SHA256", NULL);
	mdctx = EVP_MD_CTX_new();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	macctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	if (!md || !mdctx || !macctx) {
		fprintf(stderr, "bench_sigv4: OpenSSL fetch failed\n");
		exit(1);
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	EVP_MAC_CTX_set_params(macctx, params);
}

#ifndef NO_SIGNER
static br_sigv4_signer *signer;
static br_sigv4_params sp;
static br_sigv4_request rq;
static br_sigv4_header hdrs[3];

static void signer_setup(void)
{
	br_sigv4_result r;
	br_status st;
	signer = br_sigv4_new();
	if (!signer) { fprintf(stderr, "bench_sigv4: br_sigv4_new failed\n"); exit(1); }
	memset(&sp, 0, sizeof sp);
	sp.access_key = "AKIDEXAMPLE";
	sp.secret_key = SECRET;
	sp.region = "us-east-1";
	sp.service = "bedrock";
	sp.amz_date = AMZ_DATE;
	sp.normalize_path = 1;
	sp.sign_token = 1;
	hdrs[0] = (br_sigv4_header){"content-type", 12, "application/json", 16};
	hdrs[1] = (br_sigv4_header){"host", 4, HOST, sizeof HOST - 1};
	hdrs[2] = (br_sigv4_header){"x-amz-date", 10, AMZ_DATE, 16};
	memset(&rq, 0, sizeof rq);
	rq.method = "POST";
	rq.path = PATH_WIRE;
	rq.path_len = sizeof PATH_WIRE - 1;
	rq.headers = hdrs;
	rq.nheaders = 3;
	rq.payload = payload;
	rq.payload_len = sizeof payload;
	st = br_sigv4_sign(signer, &sp, &rq, &r);
	if (st != BR_OK) {
		fprintf(stderr, "bench_sigv4: br_sigv4_sign: %s\n", br_status_name(st));
		exit(1);
	}
	if (!r.canonical_request || strcmp(r.canonical_request, canon) != 0 ||
	    !r.string_to_sign || strcmp(r.string_to_sign, sts) != 0)
		printf("c.sigv4 note: the signer's canonical request/string to sign differ from the "
		       "floor's (%zu vs %zu bytes); the floor keeps the spec's sizes\n",
		       r.canonical_request ? strlen(r.canonical_request) : 0, canon_len);
}

static double sign_loop(int n)
{
	br_sigv4_result r;
	double t0 = bench_now();
	for (int i = 0; i < n; i++) {
		if (br_sigv4_sign(signer, &sp, &rq, &r) != BR_OK) exit(1);
		bench_sink += (uint8_t)r.signature[0];
	}
	return (bench_now() - t0) / n;
}
#endif

int main(int argc, char **argv)
{
	int passes = argc > 1 ? atoi(argv[1]) : 7;
	double t1[BENCH_MAX_PASSES], t2[BENCH_MAX_PASSES], fl, one, evp;
	if (passes < 1) passes = 1;
	if (passes > BENCH_MAX_PASSES) passes = BENCH_MAX_PASSES;
	make_payload();
	make_floor_inputs();
	evp_setup();
#ifndef NO_SIGNER
	double t3[BENCH_MAX_PASSES], sig;
	signer_setup();
	sign_loop(ITER / 4);
#endif
	floor_oneshot(ITER / 4);
	floor_evp(ITER / 4);
	for (int i = 0; i < passes; i++) {
		t1[i] = floor_oneshot(ITER);
		t2[i] = floor_evp(ITER);
#ifndef NO_SIGNER
		t3[i] = sign_loop(ITER);
#endif
	}
	one = bench_median(t1, passes);
	evp = bench_median(t2, passes);
	fl = one < evp ? one : evp;
	printf("c.sigv4.floor   %8.0f k/s (%.2f us) OpenSSL floor, 2 KB body, canonical request "
	       "%zu B, string to sign %zu B [one-shot SHA256()/HMAC() %.0f k/s, reused EVP "
	       "contexts %.0f k/s]\n",
	       1e-3 / fl, fl * 1e6, canon_len, sts_len, 1e-3 / one, 1e-3 / evp);
	bench_record("c.sigv4.floor.s_per_sig", fl);
#ifndef NO_SIGNER
	sig = bench_median(t3, passes);
	printf("c.sigv4.sign    %8.0f k/s (%.2f us) br_sigv4_sign, 2 KB Converse request | floor "
	       "%.0f k/s | time/floor %.2fx | target <= 1.5x: %s\n",
	       1e-3 / sig, sig * 1e6, 1e-3 / fl, sig / fl, sig / fl <= 1.5 ? "MET" : "MISSED");
	bench_record("c.sigv4.sign.s_per_sig", sig);
	br_sigv4_free(signer);
#else
	printf("c.sigv4.sign    NOT MEASURED: br_sigv4.o not built yet\n");
#endif
	EVP_MAC_CTX_free(macctx);
	EVP_MAC_free(mac);
	EVP_MD_CTX_free(mdctx);
	EVP_MD_free(md);
	return 0;
}
