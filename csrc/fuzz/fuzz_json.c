/* libFuzzer target: the C core's JSON byte work (br_json.c) and base64 decoding.
 *   - br_json_plain_member against a byte-at-a-time reference written here from its
 *     contract (no memchr, no eight-bytes-at-a-time tests): same answer, same value span;
 *     the value handed back is then base64-decoded into a buffer of exactly
 *     br_base64_decoded_max bytes (what the binding allocates), as dec:next(blobs) does;
 *   - br_json_escape: the length br_json_escaped_len announced is the length written,
 *     the output holds no raw byte below 0x20 nor 0x7f, and unescaping it gives the input;
 *   - br_json_escape_into (one pass, 16 bytes at a time) writes exactly those bytes and
 *     nothing past BR_JSON_ESCAPE_ROOM (a guard after it must stay intact).
 * Input: one byte k, then the key (k % 8 bytes), then the payload (the seeds use "bytes").
 * Built by .ci/run-fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "br_base64.h"
#include "br_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The contract of br_json_plain_member, one byte at a time. */
static int ref_member(const char *p, size_t n, const char *key, size_t kl, size_t *vo, size_t *vl)
{
	size_t i = 0, found = 0;

	while (i < n && blank(p[i])) i++;
	if (i >= n || p[i] != '{') return 0;
	i++;
	while (i < n && blank(p[i])) i++;
	if (i < n && p[i] == '}') return 0;
	for (;;) {
		size_t ks, ke, vs, ve;
		int is_key;
		if (i >= n || p[i] != '"') return 0;
		ks = ++i;
		while (i < n && p[i] != '"') {
			if ((unsigned char)p[i] < 0x20 || p[i] == '\\') return 0;
			i++;
		}
		if (i >= n) return 0;
		ke = i++;
		while (i < n && blank(p[i])) i++;
		if (i >= n || p[i] != ':') return 0;
		i++;
		while (i < n && blank(p[i])) i++;
		if (i >= n || p[i] != '"') return 0;
		is_key = ke - ks == kl && memcmp(p + ks, key, kl) == 0;
		if (is_key && found) return 0;
		vs = ++i;
		while (i < n && p[i] != '"') {
			if (!is_key && ((unsigned char)p[i] < 0x20 || p[i] == '\\')) return 0;
			i++;
		}
		if (i >= n) return 0;
		ve = i++;
		if (is_key) { *vo = vs; *vl = ve - vs; found = 1; }
		while (i < n && blank(p[i])) i++;
		if (i >= n) return 0;
		if (p[i] == '}') break;
		if (p[i] != ',') return 0;
		i++;
		while (i < n && blank(p[i])) i++;
	}
	i++;
	while (i < n && blank(p[i])) i++;
	return found && i == n;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *key, *val = NULL;
	size_t n, kl, vl = 0, rvo = 0, rvl = 0, i, j, len;
	int got, want;
	char *copy, *esc, *back;

	if (size < 1)
		return 0;
	kl = data[0] % 8;
	data++;
	size--;
	if (kl > size)
		kl = size;
	/* an exact-size heap copy, so that any read past the end trips ASan */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	key = copy;
	p = copy + kl;
	n = size - kl;

	got = br_json_plain_member(p, n, key, kl, &val, &vl);
	want = ref_member(p, n, key, kl, &rvo, &rvl);
	CHECK(got == want);
	if (got) {
		uint8_t *out;
		size_t olen = 0, bad = 0;
		CHECK(val == p + rvo && vl == rvl);
		out = malloc(br_base64_decoded_max(vl) + 1);
		CHECK(out != NULL);
		if (br_base64_decode(val, vl, out, &olen, &bad) == BR_OK)
			CHECK(olen <= br_base64_decoded_max(vl));
		else
			CHECK(bad < vl || vl == 0 || bad == vl - 1);
		free(out);
	}

	len = br_json_escaped_len(p, n);
	esc = malloc(len ? len : 1);
	back = malloc(n ? n : 1);
	CHECK(esc && back);
	br_json_escape(p, n, esc);
	for (i = 0, j = 0; i < len; j++) {
		unsigned char c = (unsigned char)esc[i];
		CHECK(c >= 0x20 && c != 0x7f && c != '"');
		CHECK(j < n);
		if (c != '\\') {
			back[j] = (char)c;
			i++;
			continue;
		}
		CHECK(i + 1 < len);
		switch (esc[i + 1]) {
		case '"': back[j] = '"'; i += 2; break;
		case '\\': back[j] = '\\'; i += 2; break;
		case 'b': back[j] = '\b'; i += 2; break;
		case 'f': back[j] = '\f'; i += 2; break;
		case 'n': back[j] = '\n'; i += 2; break;
		case 'r': back[j] = '\r'; i += 2; break;
		case 't': back[j] = '\t'; i += 2; break;
		case 'u':
			CHECK(i + 5 < len && esc[i + 2] == '0' && esc[i + 3] == '0');
			CHECK(hexval(esc[i + 4]) >= 0 && hexval(esc[i + 5]) >= 0);
			back[j] = (char)(hexval(esc[i + 4]) * 16 + hexval(esc[i + 5]));
			i += 6;
			break;
		default:
			CHECK(0);
		}
	}
	CHECK(j == n && (n == 0 || memcmp(back, p, n) == 0));
	{
		size_t room = BR_JSON_ESCAPE_ROOM(n), got;
		char *one = malloc(room + 8);

		CHECK(one != NULL);
		memset(one + room, 0x5a, 8);
		got = br_json_escape_into(p, n, one);
		CHECK(got == len && (len == 0 || memcmp(one, esc, len) == 0));
		for (i = 0; i < 8; i++)
			CHECK(one[room + i] == 0x5a);
		free(one);
	}
	free(esc);
	free(back);
	free(copy);
	return 0;
}
