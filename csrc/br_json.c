#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "br_json.h"

/* 0: written raw; 1: a two-byte escape (short[] holds the letter); 2: \u00XX. */
static const unsigned char kind[256] = {
	2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 1, 1, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	/* 0x80..0xff: raw */
};

#if defined(__SSE2__)
/* The bits of the 16 bytes at u that need an escape: '"', '\\', DEL and bytes below 0x20. */
static unsigned escape_mask(const unsigned char *u)
{
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
		      del = _mm_set1_epi8(0x7f), ctl = _mm_set1_epi8(0x1f);
	__m128i w = _mm_loadu_si128((const __m128i *)(const void *)u);
	/* a byte below 0x20 (unsigned) is its own minimum with 0x1f */
	__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bslash)),
				   _mm_or_si128(_mm_cmpeq_epi8(w, del), _mm_cmpeq_epi8(_mm_min_epu8(w, ctl), w)));

	return (unsigned)_mm_movemask_epi8(hit);
}
#endif

/* The index of the first byte at or after i that needs an escape (kind != 0), or n;
 * sixteen bytes at a time with SSE2 (every x86-64), then byte by byte. */
static size_t clean_run(const unsigned char *u, size_t i, size_t n)
{
#if defined(__SSE2__)
	while (n - i >= 16) {
		unsigned mask = escape_mask(u + i);
		if (mask)
			return i + (size_t)__builtin_ctz(mask);
		i += 16;
	}
#endif
	while (i < n && !kind[u[i]])
		i++;
	return i;
}

size_t br_json_escaped_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len = n;

	for (;;) {
		i = clean_run(u, i, n);
		if (i >= n)
			break;
		len += kind[u[i]] == 1 ? 1 : 5;
		i++;
	}
	return len;
}

void br_json_escape(const char *s, size_t n, char *dst)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t run = clean_run(u, i, n);
		memcpy(dst, s + i, run - i);
		dst += run - i;
		if (run == n)
			break;
		i = run;
		*dst++ = '\\';
		switch (u[i]) {
		case '"': *dst++ = '"'; break;
		case '\\': *dst++ = '\\'; break;
		case '\b': *dst++ = 'b'; break;
		case '\f': *dst++ = 'f'; break;
		case '\n': *dst++ = 'n'; break;
		case '\r': *dst++ = 'r'; break;
		case '\t': *dst++ = 't'; break;
		default:
			*dst++ = 'u';
			*dst++ = '0';
			*dst++ = '0';
			*dst++ = hex[u[i] >> 4];
			*dst++ = hex[u[i] & 15];
		}
		i++;
	}
}

/* The letter of the two-byte escapes (kind 1), by byte. */
static const char short_letter[128] = {
	['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

/* Writes the escape of c (kind[c] != 0) at dst; returns its length (2 or 6). */
static inline size_t put_escape(char *dst, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	dst[0] = '\\';
	if (kind[c] == 1) {
		dst[1] = short_letter[c];
		return 2;
	}
	dst[1] = 'u';
	dst[2] = '0';
	dst[3] = '0';
	dst[4] = hex[c >> 4];
	dst[5] = hex[c & 15];
	return 6;
}

size_t br_json_escape_into(const char *s, size_t n, char *dst)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

#if defined(__SSE2__)
	/* each block is stored whole, then the output advances to its first byte that
	 * needs an escape (if any), whose escape overwrites what follows it */
	while (n - i >= 16) {
		__m128i w = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		unsigned mask = escape_mask(u + i);
		size_t k;

		_mm_storeu_si128((__m128i *)(void *)(dst + o), w);
		if (!mask) {
			i += 16;
			o += 16;
			continue;
		}
		k = (size_t)__builtin_ctz(mask);
		o += k;
		i += k;
		o += put_escape(dst + o, u[i]);
		i++;
	}
#endif
	while (i < n) {
		unsigned char c = u[i++];

		if (kind[c])
			o += put_escape(dst + o, c);
		else
			dst[o++] = (char)c;
	}
	return o;
}

static size_t skip_blanks(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* Any byte below 0x20 or a backslash in s[0..n)? Eight bytes at a time (the classic
 * "has a zero byte" / "has a byte below n" tests: exact as yes/no answers). */
static int has_special(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w, b;
		memcpy(&w, s + i, 8);
		b = w ^ (ones * '\\');
		if (((w - ones * 0x20) & ~w & highs) | ((b - ones) & ~b & highs))
			return 1;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '\\')
			return 1;
	}
	return 0;
}

/* A string starting at p[i] == '"' and ending at the next '"': its text is
 * [*s, *s + *len); returns the index after the closing quote, or 0 when it is not closed
 * or, when `check`, holds a backslash or a byte below 0x20. */
static size_t plain_string(const char *p, size_t i, size_t n, int check, const char **s,
			   size_t *len)
{
	const char *q = memchr(p + i + 1, '"', n - i - 1);

	if (!q || (check && has_special(p + i + 1, (size_t)(q - p) - i - 1)))
		return 0; /* backslashes and control bytes: left to the general decoder */
	*s = p + i + 1;
	*len = (size_t)(q - p) - i - 1;
	return (size_t)(q - p) + 1;
}

int br_json_plain_member(const char *p, size_t n, const char *key, size_t key_len,
			 const char **val, size_t *val_len)
{
	size_t i = skip_blanks(p, 0, n);
	int found = 0;

	if (i >= n || p[i] != '{')
		return 0;
	i = skip_blanks(p, i + 1, n);
	if (i < n && p[i] == '}')
		return 0; /* {} : no key */
	for (;;) {
		const char *k, *v;
		size_t kl, vl;
		int is_key;
		if (i >= n || p[i] != '"')
			return 0;
		i = plain_string(p, i, n, 1, &k, &kl);
		if (!i)
			return 0;
		i = skip_blanks(p, i, n);
		if (i >= n || p[i] != ':')
			return 0;
		i = skip_blanks(p, i + 1, n);
		if (i >= n || p[i] != '"')
			return 0;
		is_key = kl == key_len && memcmp(k, key, kl) == 0;
		/* the value of `key` is left unchecked (see br_json.h); a second one is refused,
		 * so an unchecked value can never have been mis-split before the one returned */
		if (is_key && found)
			return 0;
		i = plain_string(p, i, n, !is_key, &v, &vl);
		if (!i)
			return 0;
		if (is_key) {
			*val = v;
			*val_len = vl;
			found = 1;
		}
		i = skip_blanks(p, i, n);
		if (i >= n)
			return 0;
		if (p[i] == '}')
			break;
		if (p[i] != ',')
			return 0;
		i = skip_blanks(p, i + 1, n);
	}
	return found && skip_blanks(p, i + 1, n) == n;
}
