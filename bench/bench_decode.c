/* Event-stream decode throughput in C: the push decoder fed 64 KiB slices, every message
 * taken out and its headers touched (":event-type" looked up by name, every header's
 * value length read) and its payload touched. Baseline, timed in the same run over the
 * same bytes in the same 64 KiB slices: zlib's crc32. Also prints br_crc32 against zlib.
 *
 * Usage: bench_decode CORPUS_DIR [passes]   (median of `passes`, after one warm-up) */
#include "bench.h"
#include "br_eventstream.h"

#include <zlib.h>

#define SLICE 65536u

typedef struct {
	size_t events;
	uint64_t touch;
} decode_result;

static decode_result decode_all(const uint8_t *p, size_t n)
{
	decode_result r = {0, 0};
	br_es_decoder *d = br_es_decoder_new(0);
	br_es_message m;
	br_status st;
	if (!d) {
		fprintf(stderr, "bench_decode: br_es_decoder_new failed\n");
		exit(1);
	}
	for (size_t off = 0; off < n; off += SLICE) {
		size_t len = n - off < SLICE ? n - off : SLICE;
		st = br_es_decoder_feed(d, p + off, len);
		if (st != BR_OK) goto fail;
		while ((st = br_es_decoder_next(d, &m)) == BR_OK) {
			r.events++;
			for (size_t i = 0; i < m.nheaders; i++) {
				const br_es_header *h = &m.headers[i];
				r.touch += h->len;
				if (h->name_len == 11 && memcmp(h->name, ":event-type", 11) == 0)
					r.touch += h->str[0];
			}
			r.touch += m.payload_len + (m.payload_len ? m.payload[0] : 0);
		}
		if (st != BR_AGAIN) goto fail;
	}
	if (br_es_decoder_pending(d) != 0) {
		fprintf(stderr, "bench_decode: stream ends inside a message\n");
		exit(1);
	}
	br_es_decoder_free(d);
	return r;
fail: {
	const char *detail = NULL;
	br_es_decoder_error(d, &detail);
	fprintf(stderr, "bench_decode: decoder error %s (%s)\n", br_status_name(st),
		detail ? detail : "");
	exit(1);
	}
}

static uint32_t crc_zlib(const uint8_t *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);
	for (size_t off = 0; off < n; off += SLICE) {
		size_t len = n - off < SLICE ? n - off : SLICE;
		c = crc32(c, p + off, (uInt)len);
	}
	return (uint32_t)c;
}

static uint32_t crc_br(const uint8_t *p, size_t n)
{
	uint32_t c = 0;
	for (size_t off = 0; off < n; off += SLICE) {
		size_t len = n - off < SLICE ? n - off : SLICE;
		c = br_crc32(c, p + off, len);
	}
	return c;
}

/* Counts frames by walking total_length, to check the decoder saw every one. */
static size_t count_frames(const uint8_t *p, size_t n)
{
	size_t off = 0, k = 0;
	while (off + 4 <= n) {
		uint32_t t = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
			     (uint32_t)p[off + 2] << 8 | p[off + 3];
		if (t < 16) break;
		off += t;
		k++;
	}
	return k;
}

static void run(const char *dir, const char *name, const char *label, int passes)
{
	char path[4096];
	size_t n, frames;
	uint8_t *buf;
	double t_dec[BENCH_MAX_PASSES], t_z[BENCH_MAX_PASSES], t_br[BENCH_MAX_PASSES];
	double dec, z, br, t0;
	decode_result r;
	uint32_t cz, cb;
	int reps;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	buf = bench_read_file(path, &n);
	frames = count_frames(buf, n);

	/* warm-up, and correctness: the decoder must return every frame */
	r = decode_all(buf, n);
	if (r.events != frames) {
		fprintf(stderr, "bench_decode: %s: decoder returned %zu events, corpus has %zu\n",
			name, r.events, frames);
		exit(1);
	}
	cz = crc_zlib(buf, n);
	cb = crc_br(buf, n);
	if (cz != cb) {
		fprintf(stderr, "bench_decode: br_crc32 %08x != zlib crc32 %08x over %s\n",
			(unsigned)cb, (unsigned)cz, name);
		exit(1);
	}

	/* Interleaved so that drift (frequency, neighbours) hits both sides alike; a pass goes
	 * through the corpus `reps` times (about 200 MB), so that one preemption on a shared
	 * machine cannot decide a pass. */
	reps = (int)(200e6 / (double)n + 0.5);
	if (reps < 1) reps = 1;
	for (int i = 0; i < passes; i++) {
		t0 = bench_now();
		for (int k = 0; k < reps; k++) bench_sink += crc_zlib(buf, n);
		t_z[i] = (bench_now() - t0) / reps;
		t0 = bench_now();
		for (int k = 0; k < reps; k++) {
			r = decode_all(buf, n);
			bench_sink += r.touch;
		}
		t_dec[i] = (bench_now() - t0) / reps;
		t0 = bench_now();
		for (int k = 0; k < reps; k++) bench_sink += crc_br(buf, n);
		t_br[i] = (bench_now() - t0) / reps;
	}
	dec = bench_median(t_dec, passes);
	z = bench_median(t_z, passes);
	br = bench_median(t_br, passes);

	printf("c.decode.%-6s %7.3f M events/s %8.1f MB/s  (%zu events, %.1f MB) | zlib crc32 "
	       "same bytes %8.1f MB/s | decode speed = %5.1f%% of zlib crc32",
	       label, (double)frames / dec / 1e6, (double)n / dec / 1e6, frames, (double)n / 1e6,
	       (double)n / z / 1e6, 100.0 * z / dec);
	if (strcmp(label, "small") == 0)
		printf(" | target >= 4 M events/s: %s", frames / dec >= 4e6 ? "MET" : "MISSED");
	else if (strcmp(label, "large") == 0)
		printf(" | target >= 75%% of zlib: %s", z / dec >= 0.75 ? "MET" : "MISSED");
	printf("\n");
	{
		char key[64];
		snprintf(key, sizeof key, "c.decode.%s.events_per_s", label);
		bench_record(key, (double)frames / dec);
		snprintf(key, sizeof key, "c.decode.%s.mb_per_s", label);
		bench_record(key, (double)n / dec / 1e6);
		snprintf(key, sizeof key, "c.zlib_crc32.%s.mb_per_s", label);
		bench_record(key, (double)n / z / 1e6);
	}
	printf("c.crc32.%-6s  br_crc32 %8.1f MB/s | zlib crc32 %8.1f MB/s | br/zlib speed %.2fx\n",
	       label, (double)n / br / 1e6, (double)n / z / 1e6, z / br);
	free(buf);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "corpus";
	int passes = argc > 2 ? atoi(argv[2]) : 7;
	if (passes < 1) passes = 1;
	if (passes > BENCH_MAX_PASSES) passes = BENCH_MAX_PASSES;
	run(dir, "small.es", "small", passes);
	run(dir, "chunk.es", "chunk", passes);
	run(dir, "large.es", "large", passes);
	return 0;
}
