#include "br_base64.h"

static const char alphabet[64] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for anything else. */
static const uint8_t value[256] = {
#define X64 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
	X64, X64,
	64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
	64, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64,
	64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
	X64, X64, X64, X64, X64, X64, X64, X64
#undef X64
};

void br_base64_encode(const uint8_t *src, size_t n, char *dst)
{
	size_t i = 0;

	for (; i + 3 <= n; i += 3, dst += 4) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
		dst[0] = alphabet[v >> 18];
		dst[1] = alphabet[(v >> 12) & 63];
		dst[2] = alphabet[(v >> 6) & 63];
		dst[3] = alphabet[v & 63];
	}
	if (n - i == 1) {
		dst[0] = alphabet[src[i] >> 2];
		dst[1] = alphabet[(src[i] & 3) << 4];
		dst[2] = dst[3] = '=';
	} else if (n - i == 2) {
		dst[0] = alphabet[src[i] >> 2];
		dst[1] = alphabet[(src[i] & 3) << 4 | src[i + 1] >> 4];
		dst[2] = alphabet[(src[i + 1] & 15) << 2];
		dst[3] = '=';
	}
}

br_status br_base64_decode(const char *src, size_t n, uint8_t *dst, size_t *out_len,
			   size_t *bad_at)
{
	const uint8_t *s = (const uint8_t *)src;
	size_t body = n, i, o = 0, rest;

	if (n >= 1 && s[n - 1] == '=') {
		if (n % 4 != 0) {
			*bad_at = n - 1;
			return BR_BAD_BASE64;
		}
		body = s[n - 2] == '=' ? n - 2 : n - 1;
	}
	for (i = 0; i + 4 <= body; i += 4) {
		uint32_t a = value[s[i]], b = value[s[i + 1]], c = value[s[i + 2]], d = value[s[i + 3]];
		if ((a | b | c | d) & 64)
			goto bad;
		a = a << 18 | b << 12 | c << 6 | d;
		dst[o++] = (uint8_t)(a >> 16);
		dst[o++] = (uint8_t)(a >> 8);
		dst[o++] = (uint8_t)a;
	}
	rest = body - i;
	if (rest == 1) {
		*bad_at = i;
		return BR_BAD_BASE64;
	}
	if (rest >= 2) {
		uint32_t a = value[s[i]], b = value[s[i + 1]], c = rest == 3 ? value[s[i + 2]] : 0;
		if ((a | b | c) & 64)
			goto bad;
		dst[o++] = (uint8_t)(a << 2 | b >> 4);
		if (rest == 3)
			dst[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
	}
	*out_len = o;
	return BR_OK;
bad:
	while (i < body && value[s[i]] != 64)
		i++;
	*bad_at = i;
	return BR_BAD_BASE64;
}
