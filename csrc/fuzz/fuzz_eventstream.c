/* libFuzzer target for the event-stream decoder (built by .ci/run-fuzz).
 *
 * Input: one mode byte, then stream bytes. The mode picks where the stream is split
 * (two or three slices, each in its own heap block so ASan sees any read past a slice),
 * whether the decoder is drained between feeds (otherwise the unread-rest copy runs),
 * and a small max_message sometimes. Invariants checked on every input:
 *   - every returned message's payload and header pointers lie inside that message, and
 *     total = 16 + headers_len + payload_len; a message handed out in place lies inside
 *     the slice it came from;
 *   - pending() == bytes fed - bytes of returned messages (until an error);
 *   - memory() stays within one message (max_message) plus the unread bytes fed, plus
 *     the header array;
 *   - an error is sticky: feed/next then return BR_DECODER_FAILED and error() the first;
 *   - re-encoding a decoded message gives back exactly its bytes, and decoding that
 *     again gives the same message.
 * Mode bit 0x40 first rewrites every frame's CRCs so that mutations reach the length and
 * header checks behind the message CRC (the decoder itself is not changed for fuzzing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "br_eventstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void same_message(const br_es_message *a, const br_es_message *b)
{
	size_t i;

	CHECK(a->nheaders == b->nheaders && a->payload_len == b->payload_len);
	CHECK(a->total_len == b->total_len && a->headers_len == b->headers_len);
	CHECK(a->prelude_crc == b->prelude_crc && a->message_crc == b->message_crc);
	CHECK(a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
	for (i = 0; i < a->nheaders; i++) {
		const br_es_header *x = &a->headers[i], *y = &b->headers[i];
		CHECK(x->name_len == y->name_len && memcmp(x->name, y->name, x->name_len) == 0);
		CHECK(x->type == y->type && x->i == y->i && x->len == y->len);
		CHECK(x->len == 0 || memcmp(x->str, y->str, x->len) == 0);
	}
}

/* Checks one returned message; lo/hi bound the slice it may lie in (or NULL). */
static void check_message(const br_es_message *m, const uint8_t *lo, const uint8_t *hi)
{
	const uint8_t *start = m->payload - m->headers_len - 12;
	const uint8_t *hb = start + 12, *he = hb + m->headers_len;
	br_buf out = BR_BUF_INIT;
	br_status s;
	size_t i;

	CHECK(m->total_len == 16u + m->headers_len + m->payload_len);
	CHECK(m->nheaders <= BR_ES_MAX_NHEADERS && m->headers_len <= BR_ES_MAX_HEADERS);
	if (lo && start >= lo && start < hi)
		CHECK(start + m->total_len <= hi);
	for (i = 0; i < m->nheaders; i++) {
		const br_es_header *h = &m->headers[i];
		const uint8_t *n = (const uint8_t *)h->name;
		CHECK(h->name_len > 0 && n >= hb && n + h->name_len <= he);
		CHECK(h->type <= 9);
		if (h->type == BR_ES_BYTES || h->type == BR_ES_STRING || h->type == BR_ES_UUID)
			CHECK(h->str >= hb && h->str + h->len <= he);
	}
	/* Touch every byte so ASan checks the ranges. */
	{
		volatile uint8_t acc = 0;
		for (i = 0; i < m->total_len; i++)
			acc ^= start[i];
		(void)acc;
	}
	/* Re-encode: must give back the same bytes; decode that again. */
	s = br_es_encode(&out, m->headers, m->nheaders, m->payload, m->payload_len);
	if (s == BR_OK) {
		br_es_decoder *d2 = br_es_decoder_new(0);
		br_es_message m2;
		CHECK(d2);
		CHECK(out.len == m->total_len && memcmp(out.data, start, out.len) == 0);
		CHECK(br_es_decoder_feed(d2, out.data, out.len) == BR_OK);
		CHECK(br_es_decoder_next(d2, &m2) == BR_OK);
		same_message(m, &m2);
		CHECK(br_es_decoder_next(d2, &m2) == BR_AGAIN);
		CHECK(br_es_decoder_pending(d2) == 0 && br_es_decoder_finish(d2) == BR_OK);
		br_es_decoder_free(d2);
	} else {
		/* Only the encoder's stricter value limit may refuse what the decoder took. */
		CHECK(s == BR_HEADER_TOO_LONG);
	}
	br_buf_free(&out);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Writes valid prelude and message CRCs into each frame the lengths delimit. */
static void fix_crcs(uint8_t *b, size_t n)
{
	size_t o = 0;

	while (n - o >= 12) {
		uint32_t t = rd32(b + o);
		wr32(b + o + 8, br_crc32(0, b + o, 8));
		if (t < 16 || t > n - o)
			break;
		wr32(b + o + t - 4, br_crc32(0, b + o, t - 4));
		o += t;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data_in, size_t size)
{
	uint8_t *data;
	uint8_t mode;
	size_t cut[3], npieces, p, fed = 0, taken = 0, max_message, mem_cap;
	int drain, failed = 0;
	br_status first = BR_OK, s;
	br_es_decoder *d;
	uint8_t *slice[3] = {NULL, NULL, NULL};

	if (size < 1)
		return 0;
	mode = data_in[0];
	size--;
	data = malloc(size ? size : 1);
	if (!data)
		return 0;
	memcpy(data, data_in + 1, size);
	if (mode & 0x40)
		fix_crcs(data, size);
	/* Split points from the mode byte: two or three pieces. */
	cut[0] = size ? ((size_t)mode * 2654435761u) % (size + 1) : 0;
	cut[1] = size ? ((size_t)(mode ^ 0x5a) * 40503u) % (size + 1) : 0;
	if (cut[1] < cut[0]) {
		size_t t = cut[0];
		cut[0] = cut[1];
		cut[1] = t;
	}
	npieces = (mode & 1) ? 3 : 2;
	if (npieces == 2)
		cut[1] = size;
	cut[2] = size;
	drain = !(mode & 2);
	max_message = (mode & 4) ? 16 + (size_t)(mode >> 3) * 7 : 0;
	d = br_es_decoder_new(max_message);
	if (!d) {
		free(data);
		return 0;
	}
	mem_cap = (max_message ? max_message : BR_ES_MAX_MESSAGE) + size + 12 +
		  BR_ES_MAX_NHEADERS * sizeof(br_es_header);

	for (p = 0; p < npieces; p++) {
		size_t from = p ? cut[p - 1] : 0, len = cut[p] - from;
		const uint8_t *lo, *hi;

		slice[p] = malloc(len ? len : 1);
		if (!slice[p])
			break;
		if (len)
			memcpy(slice[p], data + from, len);
		lo = slice[p];
		hi = slice[p] + len;
		s = br_es_decoder_feed(d, slice[p], len);
		if (failed) {
			CHECK(s == BR_DECODER_FAILED);
			continue;
		}
		CHECK(s == BR_OK);
		fed += len;
		/* Drain now, or only after the last piece (exercises the unread-rest copy). */
		if (!drain && p + 1 < npieces) {
			br_es_message m;
			/* Take at most one message so that some of the slice stays unread. */
			s = br_es_decoder_next(d, &m);
			if (s == BR_OK) {
				check_message(&m, lo, hi);
				taken += m.total_len;
			} else if (s != BR_AGAIN) {
				failed = 1;
				first = s;
			}
		} else {
			for (;;) {
				br_es_message m;
				s = br_es_decoder_next(d, &m);
				if (s == BR_AGAIN)
					break;
				if (s != BR_OK) {
					failed = 1;
					first = s;
					break;
				}
				check_message(&m, lo, hi);
				taken += m.total_len;
				CHECK(br_es_decoder_pending(d) == fed - taken);
			}
		}
		if (!failed)
			CHECK(br_es_decoder_pending(d) == fed - taken);
		CHECK(br_es_decoder_memory(d) <= mem_cap);
		/* The slice stays alive until the next feed (the contract). */
		if (p > 0) {
			free(slice[p - 1]);
			slice[p - 1] = NULL;
		}
	}
	if (failed) {
		br_es_message m;
		const char *detail;
		CHECK(first != BR_DECODER_FAILED && first != BR_OK && first != BR_AGAIN);
		CHECK(br_es_decoder_next(d, &m) == BR_DECODER_FAILED);
		CHECK(br_es_decoder_feed(d, data, size) == BR_DECODER_FAILED);
		CHECK(br_es_decoder_error(d, &detail) == first && detail && detail[0]);
		br_es_decoder_reset(d);
		CHECK(br_es_decoder_error(d, NULL) == BR_OK && br_es_decoder_pending(d) == 0);
	} else {
		s = br_es_decoder_finish(d);
		CHECK((s == BR_OK) == (fed == taken));
	}
	for (p = 0; p < 3; p++)
		free(slice[p]);
	br_es_decoder_free(d);
	free(data);
	return 0;
}
