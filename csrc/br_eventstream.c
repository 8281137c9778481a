/* application/vnd.amazon.eventstream: push decoder state machine and encoder.
 *
 * The stream, as the decoder sees it, is the unread bytes of its buffer followed by the
 * unread bytes of the slice last fed: buf[buf_pos, buf_len) then in[in_pos, in_len).
 * A message that lies whole in the slice is handed out in place (no copy). Only a message
 * that straddles slices is copied, into a buffer sized to exactly its total_length; the
 * copy is compacted to the buffer's front first, and it is never more than one message.
 * The one other copy is the unread rest of a slice when a new slice is fed before the
 * old one was drained; that is bounded by what the caller fed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "br_load.h"
#include "br_eventstream.h"

#define PRELUDE_LEN 12u
#define KEEP_BUF (64u * 1024u)   /* a buffer above this is released when it empties */

struct br_es_decoder {
	size_t max_message;
	const uint8_t *in;          /* borrowed slice */
	size_t in_len, in_pos;
	uint8_t *buf;               /* owned */
	size_t buf_cap, buf_pos, buf_len;
	br_es_header *hdr;          /* owned, reused for every message */
	size_t hdr_cap;
	uint64_t offset;            /* stream offset of the next message's first byte */
	br_status err;
	char detail[256];
};

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline int64_t be64(const uint8_t *p)
{
	uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
	/* Two's complement without implementation-defined conversion. */
	return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	put32(p, (uint32_t)(u >> 32));
	put32(p + 4, (uint32_t)u);
}

#if defined(__GNUC__)
#define BR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define BR_COLD __attribute__((cold, noinline))
#define BR_NOINLINE __attribute__((noinline))
#else
#define BR_PRINTF(a, b)
#define BR_COLD
#define BR_NOINLINE
#endif

/* Records the first error; the detail is printf-formatted. Returns the code. */
static BR_PRINTF(3, 4) br_status fail(br_es_decoder *d, br_status s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->detail, sizeof d->detail, fmt, ap);
	va_end(ap);
	d->err = s;
	return s;
}

/* Writes a header name for an error message: printable ASCII kept, the rest as \xNN,
 * cut after 40 bytes. out must hold 40 * 4 + 4 bytes. */
static void quote_name(char *out, const uint8_t *name, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, k = 0, lim = n > 40 ? 40 : n;

	for (i = 0; i < lim; i++) {
		uint8_t c = name[i];
		if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
			out[k++] = (char)c;
		} else {
			out[k++] = '\\';
			out[k++] = 'x';
			out[k++] = hex[c >> 4];
			out[k++] = hex[c & 15];
		}
	}
	if (lim < n) {
		out[k++] = '.';
		out[k++] = '.';
		out[k++] = '.';
	}
	out[k] = '\0';
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF), as Python's decoder. */
static int utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	/* Header names are nearly always ASCII: check 8 bytes at a time first, the tail as
	 * the (overlapping) last 8 bytes. */
	if (n >= 8) {
		uint64_t w;
		while (n - i >= 8) {
			memcpy(&w, s + i, 8);
			if (w & UINT64_C(0x8080808080808080))
				break;
			i += 8;
		}
		memcpy(&w, s + n - 8, 8);
		if (i + 8 > n && !(w & UINT64_C(0x8080808080808080)))
			return 1;
	}
	while (i < n) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
		} else if (c >= 0xc2 && c <= 0xdf) {
			if (n - i < 2 || (s[i + 1] & 0xc0) != 0x80)
				return 0;
			i += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
			if (n - i < 3 || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xc0) != 0x80)
				return 0;
			i += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
			if (n - i < 4 || s[i + 1] < lo || s[i + 1] > hi ||
			    (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
				return 0;
			i += 4;
		} else {
			return 0;
		}
	}
	return 1;
}

br_es_decoder *br_es_decoder_new(size_t max_message)
{
	br_es_decoder *d = calloc(1, sizeof *d);

	if (!d)
		return NULL;
	if (max_message == 0 || max_message > BR_ES_MAX_MESSAGE)
		max_message = BR_ES_MAX_MESSAGE;
	if (max_message < BR_ES_MIN_MESSAGE)
		max_message = BR_ES_MIN_MESSAGE;
	d->max_message = max_message;
	return d;
}

void br_es_decoder_free(br_es_decoder *d)
{
	if (!d)
		return;
	free(d->buf);
	free(d->hdr);
	free(d);
}

void br_es_decoder_reset(br_es_decoder *d)
{
	d->in = NULL;
	d->in_len = d->in_pos = 0;
	d->buf_pos = d->buf_len = 0;
	if (d->buf_cap > KEEP_BUF) {
		free(d->buf);
		d->buf = NULL;
		d->buf_cap = 0;
	}
	d->offset = 0;
	d->err = BR_OK;
	d->detail[0] = '\0';
}

br_status br_es_decoder_error(const br_es_decoder *d, const char **detail)
{
	if (detail)
		*detail = d->err ? d->detail : "";
	return d->err;
}

size_t br_es_decoder_pending(const br_es_decoder *d)
{
	return (d->buf_len - d->buf_pos) + (d->in_len - d->in_pos);
}

size_t br_es_decoder_memory(const br_es_decoder *d)
{
	return d->buf_cap + d->hdr_cap * sizeof(br_es_header);
}

/* Makes room for `need` unread bytes at the front of buf: compacts, then grows to exactly
 * `need` when the buffer is smaller. */
static br_status buf_room(br_es_decoder *d, size_t need)
{
	size_t unread = d->buf_len - d->buf_pos;

	if (d->buf_pos > 0) {
		if (unread)
			memmove(d->buf, d->buf + d->buf_pos, unread);
		d->buf_pos = 0;
		d->buf_len = unread;
	}
	if (need > d->buf_cap) {
		uint8_t *p = realloc(d->buf, need);
		if (!p)
			return fail(d, BR_NOMEM, "out of memory buffering %zu bytes", need);
		d->buf = p;
		d->buf_cap = need;
	}
	return BR_OK;
}

/* Moves up to `want` bytes from the slice to the buffer's end (room already made). */
static void pull(br_es_decoder *d, size_t want)
{
	size_t rem = d->in_len - d->in_pos;
	size_t n = want < rem ? want : rem;

	if (n) {
		memcpy(d->buf + d->buf_len, d->in + d->in_pos, n);
		d->buf_len += n;
		d->in_pos += n;
	}
}

br_status br_es_decoder_feed(br_es_decoder *d, const uint8_t *p, size_t n)
{
	size_t rest;

	if (d->err)
		return BR_DECODER_FAILED;
	if (!p && n)
		return BR_INVAL;
	rest = d->in_len - d->in_pos;
	if (rest) {
		/* The caller may drop the old slice now: keep its unread bytes. */
		size_t unread = d->buf_len - d->buf_pos;
		if (rest > SIZE_MAX - unread)
			return fail(d, BR_NOMEM, "out of memory buffering the unread input");
		if (buf_room(d, unread + rest) != BR_OK)
			return d->err;
		pull(d, rest);
	}
	d->in = p;
	d->in_len = n;
	d->in_pos = 0;
	return BR_OK;
}

/* The error for a prelude check_prelude refused (calc: the CRC it computed), found by
 * the checks in their order: CRC, then the lengths. */
static BR_COLD br_status prelude_fail(br_es_decoder *d, const uint8_t *p, uint32_t calc)
{
	uint32_t t = be32(p), h = be32(p + 4), crc = be32(p + 8);
	unsigned long long off = (unsigned long long)d->offset;

	if (calc != crc)
		return fail(d, BR_PRELUDE_CRC, "prelude checksum mismatch at stream offset %llu: "
			    "computed 0x%08x, frame says 0x%08x", off, (unsigned)calc, (unsigned)crc);
	if (t < BR_ES_MIN_MESSAGE)
		return fail(d, BR_FRAME_TOO_SHORT, "total length %u at stream offset %llu is "
			    "below the 16-byte minimum", (unsigned)t, off);
	if (t > d->max_message)
		return fail(d, BR_FRAME_TOO_LARGE, "total length %u at stream offset %llu exceeds "
			    "the limit of %zu bytes", (unsigned)t, off, d->max_message);
	if (h > t - BR_ES_MIN_MESSAGE)
		return fail(d, BR_HEADERS_LENGTH, "headers length %u does not fit in the %u-byte "
			    "message at stream offset %llu", (unsigned)h, (unsigned)t, off);
	return fail(d, BR_HEADERS_TOO_LARGE, "headers length %u at stream offset %llu exceeds "
		    "the %u-byte header block limit", (unsigned)h, off, (unsigned)BR_ES_MAX_HEADERS);
}

/* Validates a 12-byte prelude: CRC first, then the lengths it declares. 1 when it
 * passes (*total, *hlen set), else 0 with the error recorded. */
static inline int check_prelude(br_es_decoder *d, const uint8_t *p, uint32_t *total,
				uint32_t *hlen)
{
	uint32_t t = be32(p), h = be32(p + 4), calc = br_crc32(0, p, 8);

	if (calc != be32(p + 8) || t < BR_ES_MIN_MESSAGE || t > d->max_message ||
	    h > t - BR_ES_MIN_MESSAGE || h > BR_ES_MAX_HEADERS) {
		prelude_fail(d, p, calc);
		return 0;
	}
	*total = t;
	*hlen = h;
	return 1;
}

/* 1 when the n bytes at s (1 <= n <= 16) are all ASCII, read as two overlapping words
 * (or, below 4 bytes, all of them); 0 when not, or when n > 16: the caller then runs
 * utf8_valid. Header names are short ASCII nearly always. */
static inline int short_ascii(const uint8_t *s, size_t n)
{
	if (n >= 8)
		return n <= 16 && !((br_load64(s) | br_load64(s + n - 8)) & UINT64_C(0x8080808080808080));
	if (n >= 4)
		return !((br_load32(s) | br_load32(s + n - 4)) & 0x80808080u);
	return !((s[0] | s[n >> 1] | s[n - 1]) & 0x80);
}

/* a[0..n) == b[0..n) for n >= 1: two overlapping words for 4..16 bytes, else memcmp.
 * Out of line: called only for names of the same length, it keeps the duplicate scan's
 * loop free of its registers. */
static BR_NOINLINE int same_bytes(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	if (n >= 8 && n <= 16)
		return br_load64(x) == br_load64(y) && br_load64(x + n - 8) == br_load64(y + n - 8);
	if (n >= 4 && n < 8)
		return br_load32(x) == br_load32(y) && br_load32(x + n - 4) == br_load32(y + n - 4);
	return memcmp(x, y, n) == 0;
}

/* The first header (k >= 1, in order) whose name repeats an earlier one's, that earlier
 * one (the first such) in *first; 0 when the n names are unique. */
static inline size_t find_duplicate(const br_es_header *hdr, size_t n, size_t *first)
{
	const br_es_header *k, *j, *end = hdr + n;

	for (k = hdr + 1; k < end; k++)
		for (j = hdr; j < k; j++)
			if (j->name_len == k->name_len && same_bytes(j->name, k->name, k->name_len)) {
				*first = (size_t)(j - hdr);
				return (size_t)(k - hdr);
			}
	return 0;
}

/* A header error: "header <i> ('<name>') at byte <at> of the message at ...: <what>",
 * i counting from 1, at the header's first byte counted from the message's start, the
 * name's first nl bytes quoted. Out of line: the header loop keeps no buffer for it. */
static BR_PRINTF(7, 8) BR_COLD br_status hfail(br_es_decoder *d, br_status s, size_t idx,
					       const uint8_t *name, size_t nl, size_t at,
					       const char *fmt, ...)
{
	char q[40 * 4 + 4], what[128];
	va_list ap;

	quote_name(q, name, nl);
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return fail(d, s, "header %zu ('%s') at byte %zu of the message at stream offset %llu: %s",
		    idx, q, at, (unsigned long long)d->offset, what);
}

/* Header k's name repeats header j's (both counted from 0 in d->hdr). */
static BR_COLD br_status dup_fail(br_es_decoder *d, const uint8_t *msg, size_t k, size_t j)
{
	const uint8_t *name = (const uint8_t *)d->hdr[k].name;

	return hfail(d, BR_HEADER_DUPLICATE, k + 1, name, d->hdr[k].name_len,
		     (size_t)(name - 1 - msg), "duplicate of header %zu", j + 1);
}

/* The header loop checks names for repeats only after the block, so an error it finds
 * in header n+1 stands only if none of the first n headers repeats an earlier name
 * (that error comes first in header order): 1 when one does, and was reported. */
static BR_COLD int dup_before(br_es_decoder *d, const uint8_t *msg, size_t n)
{
	size_t j, k;

	if (n < 2 || !(k = find_duplicate(d->hdr, n, &j)))
		return 0;
	dup_fail(d, msg, k, j);
	return 1;
}

/* In parse_headers: the error for header n+1. */
#define HFAIL(code, ...) do { \
		if (!dup_before(d, msg, n)) \
			hfail(d, code, n + 1, name, nl, (size_t)(h - msg), __VA_ARGS__); \
		return 0; \
	} while (0)

/* Doubles the header array (8 at first, at most BR_ES_MAX_NHEADERS) for header n+1 of
 * the message at msg. A repeated name among the first n is reported first, as it would
 * have been before this header was reached (and the array keeps its size). */
static br_status grow_headers(br_es_decoder *d, const uint8_t *msg, size_t n)
{
	size_t cap = d->hdr_cap ? d->hdr_cap * 2 : 8;
	br_es_header *p;

	if (dup_before(d, msg, n))
		return d->err;
	if (cap > BR_ES_MAX_NHEADERS)
		cap = BR_ES_MAX_NHEADERS;
	p = realloc(d->hdr, cap * sizeof *p);
	if (!p)
		return fail(d, BR_NOMEM, "out of memory for %zu headers", cap);
	d->hdr = p;
	d->hdr_cap = cap;
	return BR_OK;
}

/* Parses the header block [msg+12, msg+12+hlen) into d->hdr. Every read is bounded by
 * the block's end; names must be non-empty UTF-8 and unique (checked once the block is
 * read; the errors stay those of a check at each header). 1 when the block is good
 * (*count set), else 0 with the error recorded. */
static int parse_headers(br_es_decoder *d, const uint8_t *msg, uint32_t hlen, size_t *count)
{
	const uint8_t *h = msg + PRELUDE_LEN, *end = h + hlen;
	br_es_header *hdr = d->hdr;
	size_t n = 0, cap = d->hdr_cap;

	while (h < end) {
		const uint8_t *name = h + 1, *v;
		size_t nl = h[0], left, need;
		br_es_header *e;
		uint8_t type;

		/* The array holds at most BR_ES_MAX_NHEADERS, so only a full one can be at it. */
		if (n == cap && n == BR_ES_MAX_NHEADERS) {
			nl = 0;
			HFAIL(BR_TOO_MANY_HEADERS, "more than %u headers", (unsigned)BR_ES_MAX_NHEADERS);
		}
		if (nl == 0)
			HFAIL(BR_HEADER_NAME, "empty name");
		if ((size_t)(end - name) < nl + 1) {
			nl = (size_t)(end - name) < nl ? (size_t)(end - name) : nl;
			HFAIL(BR_HEADER_TRUNCATED, "name length %u runs past the header block",
			      (unsigned)h[0]);
		}
		if (!short_ascii(name, nl) && !utf8_valid(name, nl))
			HFAIL(BR_HEADER_NAME, "name is not valid UTF-8");
		type = name[nl];
		v = name + nl + 1;
		left = (size_t)(end - v);
		if (n == cap) {
			if (grow_headers(d, msg, n) != BR_OK)
				return 0;
			hdr = d->hdr;
			cap = d->hdr_cap;
		}
		e = &hdr[n];
		e->name = (const char *)name;
		e->name_len = (uint8_t)nl;
		if (type == BR_ES_STRING || type == BR_ES_BYTES) {
			uint16_t len;
			if (left < 2)
				HFAIL(BR_HEADER_TRUNCATED, "%s length runs past the header block",
				      type == BR_ES_STRING ? "string" : "bytes");
			len = be16(v);
			need = 2 + (size_t)len;
			if (left < need)
				HFAIL(BR_HEADER_TRUNCATED, "%s length %u runs past the header block",
				      type == BR_ES_STRING ? "string" : "bytes", (unsigned)len);
			e->type = type;
			e->len = len;
			e->str = v + 2;
			e->i = 0;
		} else {
			/* value bytes by type (the variable-length ones are handled above) */
			static const uint8_t fixed_len[10] = {0, 0, 1, 2, 4, 8, 0, 0, 8, 16};
			if (type > BR_ES_UUID)
				HFAIL(BR_HEADER_TYPE, "unknown value type %u", (unsigned)type);
			need = fixed_len[type];
			if (left < need)
				HFAIL(BR_HEADER_TRUNCATED, "%zu-byte value of type %u runs past the "
				      "header block", need, (unsigned)type);
			e->type = type;
			e->len = 0;
			e->str = NULL;
			switch (type) {
			case BR_ES_TRUE: e->i = 1; break;
			case BR_ES_BYTE: e->i = (int8_t)v[0]; break;
			case BR_ES_INT16: e->i = (int16_t)be16(v); break;
			case BR_ES_INT32: e->i = (int32_t)be32(v); break;
			case BR_ES_INT64:
			case BR_ES_TIMESTAMP: e->i = be64(v); break;
			case BR_ES_UUID: e->str = v; e->len = 16; e->i = 0; break;
			default: e->i = 0; break;   /* BR_ES_FALSE */
			}
		}
		h = v + need;
		n++;
	}
	if (n > 1) {
		size_t j, k = find_duplicate(hdr, n, &j);
		if (k) {
			dup_fail(d, msg, k, j);
			return 0;
		}
	}
	*count = n;
	return 1;
}

#undef HFAIL

/* The message CRC computed (calc) is not the frame's (mcrc). */
static BR_COLD br_status crc_fail(br_es_decoder *d, uint32_t total, uint32_t calc,
				  uint32_t mcrc)
{
	return fail(d, BR_MESSAGE_CRC, "message checksum mismatch in the %u-byte message at "
		    "stream offset %llu: computed 0x%08x, frame says 0x%08x", (unsigned)total,
		    (unsigned long long)d->offset, (unsigned)calc, (unsigned)mcrc);
}

/* A whole message of `total` bytes at msg (prelude already checked): message CRC, then
 * headers, then fills m. */
static br_status finish(br_es_decoder *d, const uint8_t *msg, uint32_t total, uint32_t hlen,
			br_es_message *m)
{
	uint32_t pcrc = be32(msg + 8), mcrc = be32(msg + total - 4);
	uint32_t calc = br_crc32(pcrc, msg + 8, total - PRELUDE_LEN);
	size_t n;

	if (calc != mcrc)
		return crc_fail(d, total, calc, mcrc);
	if (!parse_headers(d, msg, hlen, &n))
		return d->err;
	m->headers = d->hdr;
	m->nheaders = n;
	m->payload = msg + PRELUDE_LEN + hlen;
	m->payload_len = total - hlen - BR_ES_MIN_MESSAGE;
	m->total_len = total;
	m->headers_len = hlen;
	m->prelude_crc = pcrc;
	m->message_crc = mcrc;
	d->offset += total;
	return BR_OK;
}

br_status br_es_decoder_next(br_es_decoder *d, br_es_message *m)
{
	size_t unread, rem;
	uint32_t total, hlen;
	const uint8_t *msg;

	if (d->err)
		return BR_DECODER_FAILED;
	unread = d->buf_len - d->buf_pos;
	rem = d->in_len - d->in_pos;

	if (unread == 0) {
		/* Fast path: the message lies in the slice; hand it out in place. */
		if (rem == 0)
			return BR_AGAIN;
		if (d->buf_cap > KEEP_BUF) {
			free(d->buf);
			d->buf = NULL;
			d->buf_cap = 0;
		}
		d->buf_pos = d->buf_len = 0;
		if (rem >= PRELUDE_LEN) {
			msg = d->in + d->in_pos;
			if (!check_prelude(d, msg, &total, &hlen))
				return d->err;
			if (rem >= total) {
				d->in_pos += total;
				m->buffered = 0;
				goto whole;
			}
			if (buf_room(d, total) != BR_OK)
				return d->err;
		} else if (buf_room(d, PRELUDE_LEN) != BR_OK) {
			return d->err;
		}
		pull(d, rem);
		return BR_AGAIN;
	}

	/* Buffered path: complete the prelude, then the message, from the slice. */
	if (unread < PRELUDE_LEN) {
		if (rem == 0)
			return BR_AGAIN;
		if (buf_room(d, PRELUDE_LEN) != BR_OK)
			return d->err;
		pull(d, PRELUDE_LEN - unread);
		unread = d->buf_len - d->buf_pos;
		if (unread < PRELUDE_LEN)
			return BR_AGAIN;
	}
	if (!check_prelude(d, d->buf + d->buf_pos, &total, &hlen))
		return d->err;
	if (unread < total) {
		if (d->in_len - d->in_pos == 0)
			return BR_AGAIN;
		if (buf_room(d, total) != BR_OK)
			return d->err;
		pull(d, total - unread);
		if (d->buf_len - d->buf_pos < total)
			return BR_AGAIN;
	}
	msg = d->buf + d->buf_pos;
	d->buf_pos += total;
	/* The bytes stay in place until the next call, which may compact over them. */
	m->buffered = 1;
whole:
	return finish(d, msg, total, hlen, m);
}

br_status br_es_decoder_finish(br_es_decoder *d)
{
	size_t held;

	if (d->err)
		return BR_DECODER_FAILED;
	held = br_es_decoder_pending(d);
	if (held == 0)
		return BR_OK;
	if (d->buf_len - d->buf_pos >= PRELUDE_LEN)
		return fail(d, BR_STREAM_TRUNCATED, "stream ended %zu bytes into the %u-byte "
			    "message at stream offset %llu", held, (unsigned)be32(d->buf + d->buf_pos),
			    (unsigned long long)d->offset);
	return fail(d, BR_STREAM_TRUNCATED, "stream ended %zu bytes into a message at stream "
		    "offset %llu", held, (unsigned long long)d->offset);
}

/* ---- encoder ---- */

br_status br_es_encoded_size(const br_es_header *headers, size_t nheaders,
			     size_t payload_len, size_t *total)
{
	size_t i, j, hlen = 0;

	if (nheaders && !headers)
		return BR_INVAL;
	if (nheaders > BR_ES_MAX_NHEADERS)
		return BR_TOO_MANY_HEADERS;
	for (i = 0; i < nheaders; i++) {
		const br_es_header *e = &headers[i];
		size_t vl;

		if (e->name_len == 0 || !e->name || !utf8_valid((const uint8_t *)e->name, e->name_len))
			return BR_HEADER_NAME;
		switch (e->type) {
		case BR_ES_TRUE: case BR_ES_FALSE: vl = 0; break;
		case BR_ES_BYTE: vl = 1; break;
		case BR_ES_INT16: vl = 2; break;
		case BR_ES_INT32: vl = 4; break;
		case BR_ES_INT64: case BR_ES_TIMESTAMP: vl = 8; break;
		case BR_ES_BYTES:
		case BR_ES_STRING:
			if (e->len > 32767)
				return BR_HEADER_TOO_LONG;
			if (e->len && !e->str)
				return BR_INVAL;
			vl = 2 + (size_t)e->len;
			break;
		case BR_ES_UUID:
			if (e->len != 16 || !e->str)
				return BR_INVAL;
			vl = 16;
			break;
		default:
			return BR_HEADER_TYPE;
		}
		if ((e->type == BR_ES_BYTE && (e->i < INT8_MIN || e->i > INT8_MAX)) ||
		    (e->type == BR_ES_INT16 && (e->i < INT16_MIN || e->i > INT16_MAX)) ||
		    (e->type == BR_ES_INT32 && (e->i < INT32_MIN || e->i > INT32_MAX)))
			return BR_RANGE;
		for (j = 0; j < i; j++)
			if (headers[j].name_len == e->name_len &&
			    memcmp(headers[j].name, e->name, e->name_len) == 0)
				return BR_HEADER_DUPLICATE;
		hlen += 2 + (size_t)e->name_len + vl;
		if (hlen > BR_ES_MAX_HEADERS)
			return BR_HEADERS_TOO_LARGE;
	}
	if (payload_len > BR_ES_MAX_MESSAGE - BR_ES_MIN_MESSAGE - hlen)
		return BR_FRAME_TOO_LARGE;
	*total = BR_ES_MIN_MESSAGE + hlen + payload_len;
	return BR_OK;
}

void br_es_encode_to(uint8_t *dst, size_t total, const br_es_header *headers,
		     size_t nheaders, const uint8_t *payload, size_t payload_len)
{
	uint8_t *p = dst + PRELUDE_LEN;
	uint32_t pcrc;
	size_t i;

	for (i = 0; i < nheaders; i++) {
		const br_es_header *e = &headers[i];
		*p++ = e->name_len;
		memcpy(p, e->name, e->name_len);
		p += e->name_len;
		*p++ = e->type;
		switch (e->type) {
		case BR_ES_BYTE: *p++ = (uint8_t)(int8_t)e->i; break;
		case BR_ES_INT16: put16(p, (uint16_t)(int16_t)e->i); p += 2; break;
		case BR_ES_INT32: put32(p, (uint32_t)(int32_t)e->i); p += 4; break;
		case BR_ES_INT64:
		case BR_ES_TIMESTAMP: put64(p, e->i); p += 8; break;
		case BR_ES_BYTES:
		case BR_ES_STRING:
			put16(p, e->len);
			if (e->len)
				memcpy(p + 2, e->str, e->len);
			p += 2 + (size_t)e->len;
			break;
		case BR_ES_UUID: memcpy(p, e->str, 16); p += 16; break;
		default: break;
		}
	}
	put32(dst, (uint32_t)total);
	put32(dst + 4, (uint32_t)(p - dst - PRELUDE_LEN));
	pcrc = br_crc32(0, dst, 8);
	put32(dst + 8, pcrc);
	if (payload_len)
		memcpy(p, payload, payload_len);
	p += payload_len;
	put32(p, br_crc32(pcrc, dst + 8, total - PRELUDE_LEN));
}

br_status br_es_encode(br_buf *out, const br_es_header *headers, size_t nheaders,
		       const uint8_t *payload, size_t payload_len)
{
	size_t total;
	br_status s;

	if (payload_len && !payload)
		return BR_INVAL;
	if ((s = br_es_encoded_size(headers, nheaders, payload_len, &total)) != BR_OK)
		return s;
	if ((s = br_buf_reserve(out, total)) != BR_OK)
		return s;
	br_es_encode_to(out->data + out->len, total, headers, nheaders, payload, payload_len);
	out->len += total;
	return BR_OK;
}
