/* Writes the benchmark corpora, deterministically (fixed PRNG seed), with the project's
 * encoder (br_es_encode), then re-reads every frame and checks both CRCs with zlib.
 *
 *   small.es  100,000 ConverseStream contentBlockDelta events, ~300 bytes a frame
 *   chunk.es   10,000 InvokeModelWithResponseStream chunk events, ~1.6 KB a frame
 *   large.es      200 chunk events with 64 KB .. 1 MB payloads (log-uniform)
 *
 * Usage: gen_corpus DIR   (writes DIR/small.es, DIR/chunk.es, DIR/large.es) */
#include "bench.h"
#include "br_eventstream.h"

#include <math.h>
#include <zlib.h>

#define SEED 0x6c75612d62656472ull  /* "lua-bedr" */

static uint64_t rng_state = SEED;

/* splitmix64: small, fast, and the same sequence on every platform. */
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t rng_range(size_t lo, size_t hi)  /* inclusive */
{
	return lo + (size_t)(rng() % (uint64_t)(hi - lo + 1));
}

static const char *const words[] = {
	"the", "model", "stream", "token", "answer", "Lua", "event", "delta", "frame", "quick",
	"brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world", "bedrock", "runtime",
	"signal", "byte", "header", "payload", "check", "sum", "of", "and", "to", "in",
};
#define NWORDS (sizeof words / sizeof words[0])

static void die(const char *what, br_status s)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, br_status_name(s));
	exit(1);
}

static void put(br_buf *b, const char *s, size_t n)
{
	br_status st = br_buf_append(b, s, n);
	if (st != BR_OK) die("append", st);
}
#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static void put_words(br_buf *b, size_t nbytes)
{
	size_t start = b->len;
	while (b->len - start < nbytes) {
		const char *w = words[rng() % NWORDS];
		if (b->len > start) PUTS(b, " ");
		put(b, w, strlen(w));
	}
}

static void put_base64(br_buf *b, const uint8_t *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	size_t i;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		q[0] = tab[v >> 18]; q[1] = tab[(v >> 12) & 63]; q[2] = tab[(v >> 6) & 63]; q[3] = tab[v & 63];
		put(b, q, 4);
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		q[0] = tab[v >> 18]; q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		q[3] = '=';
		put(b, q, 4);
	}
}

static br_es_header str_header(const char *name, const char *value)
{
	br_es_header h;
	memset(&h, 0, sizeof h);
	h.name = name;
	h.name_len = (uint8_t)strlen(name);
	h.type = BR_ES_STRING;
	h.str = (const uint8_t *)value;
	h.len = (uint16_t)strlen(value);
	return h;
}

static void encode(br_buf *out, const char *event_type, const br_buf *payload)
{
	br_es_header h[3];
	br_status st;
	h[0] = str_header(":event-type", event_type);
	h[1] = str_header(":content-type", "application/json");
	h[2] = str_header(":message-type", "event");
	st = br_es_encode(out, h, 3, payload->data, payload->len);
	if (st != BR_OK) die("br_es_encode", st);
}

/* 87 header bytes + 16 framing bytes: the payload is the rest of the target size. */
#define DELTA_OVERHEAD 103u
#define CHUNK_OVERHEAD 91u

static void gen_small(br_buf *out, size_t nevents)
{
	br_buf pl = BR_BUF_INIT;
	for (size_t i = 0; i < nevents; i++) {
		size_t target = rng_range(280, 320) - DELTA_OVERHEAD, pad, k;
		br_buf_reset(&pl);
		PUTS(&pl, "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"");
		put_words(&pl, rng_range(2, 24));
		PUTS(&pl, "\"},\"p\":\"");
		pad = pl.len + 2 < target ? target - pl.len - 2 : 0;
		for (k = 0; k < pad; k++) put(&pl, &"abcdefghijklmnopqrstuvwxyz"[k % 26], 1);
		PUTS(&pl, "\"}");
		encode(out, "contentBlockDelta", &pl);
	}
	br_buf_free(&pl);
}

/* A chunk event whose payload is {"bytes":"<base64 of inner>"} and about pl_bytes long.
 * text=1: inner is model-native JSON with words; text=0: inner is pseudo-random bytes. */
static void gen_chunk(br_buf *out, br_buf *inner, br_buf *pl, size_t pl_bytes, int text)
{
	size_t raw = (pl_bytes > 12 ? pl_bytes - 12 : 0) / 4 * 3;
	br_buf_reset(inner);
	br_buf_reset(pl);
	if (text) {
		PUTS(inner, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
			    "{\"type\":\"text_delta\",\"text\":\"");
		put_words(inner, raw > inner->len + 4 ? raw - inner->len - 4 : 1);
		PUTS(inner, "\"}}");
	} else {
		br_status st = br_buf_reserve(inner, raw + 8);
		if (st != BR_OK) die("reserve", st);
		for (size_t k = 0; k < raw; k += 8) {
			uint64_t v = rng();
			memcpy(inner->data + k, &v, 8);
		}
		inner->len = raw;
	}
	PUTS(pl, "{\"bytes\":\"");
	put_base64(pl, inner->data, inner->len);
	PUTS(pl, "\"}");
	encode(out, "chunk", pl);
}

static void write_file(const char *dir, const char *name, const br_buf *b)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
		fprintf(stderr, "gen_corpus: cannot write %s\n", path);
		exit(1);
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the frames and checks lengths and both CRCs with zlib; returns the count. */
static size_t verify(const char *name, const br_buf *b, size_t *min_len, size_t *max_len)
{
	size_t off = 0, n = 0;
	*min_len = SIZE_MAX;
	*max_len = 0;
	while (off < b->len) {
		const uint8_t *m = b->data + off;
		uint32_t total, hlen;
		if (b->len - off < 16) goto bad;
		total = be32(m);
		hlen = be32(m + 4);
		if (total < 16 || total > b->len - off || hlen > total - 16) goto bad;
		if (crc32(0, m, 8) != be32(m + 8)) goto bad;
		if (crc32(0, m, total - 4) != be32(m + total - 4)) goto bad;
		if (total < *min_len) *min_len = total;
		if (total > *max_len) *max_len = total;
		off += total;
		n++;
	}
	return n;
bad:
	fprintf(stderr, "gen_corpus: %s: frame %zu at byte %zu fails the zlib check\n", name, n, off);
	exit(1);
}

int main(int argc, char **argv)
{
	br_buf out = BR_BUF_INIT, inner = BR_BUF_INIT, pl = BR_BUF_INIT;
	size_t n, lo, hi;
	const char *dir = argc > 1 ? argv[1] : "corpus";

	gen_small(&out, 100000);
	n = verify("small.es", &out, &lo, &hi);
	write_file(dir, "small.es", &out);
	printf("corpus small.es  %6zu events  %9zu bytes  frames %zu..%zu bytes  zlib CRCs ok\n",
	       n, out.len, lo, hi);

	br_buf_reset(&out);
	for (size_t i = 0; i < 10000; i++)
		gen_chunk(&out, &inner, &pl, rng_range(1500, 1700) - CHUNK_OVERHEAD, 1);
	n = verify("chunk.es", &out, &lo, &hi);
	write_file(dir, "chunk.es", &out);
	printf("corpus chunk.es  %6zu events  %9zu bytes  frames %zu..%zu bytes  zlib CRCs ok\n",
	       n, out.len, lo, hi);

	br_buf_reset(&out);
	for (size_t i = 0; i < 200; i++) {
		/* log-uniform in [64 KiB, 1 MiB]: 2^(16 + 4u) */
		double u = (double)(rng() >> 11) / 9007199254740992.0;
		size_t sz = (size_t)(65536.0 * exp2(4.0 * u));
		if (sz > 1048576) sz = 1048576;
		gen_chunk(&out, &inner, &pl, sz, 0);
	}
	n = verify("large.es", &out, &lo, &hi);
	write_file(dir, "large.es", &out);
	printf("corpus large.es  %6zu events  %9zu bytes  frames %zu..%zu bytes  zlib CRCs ok\n",
	       n, out.len, lo, hi);

	br_buf_free(&out);
	br_buf_free(&inner);
	br_buf_free(&pl);
	return 0;
}
