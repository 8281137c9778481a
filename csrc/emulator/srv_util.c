/* Small helpers of the emulator's server half: ids, dates, percent-decoding, query
 * lookup, escaping. No state. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>

void srv_uuid(char out[37])
{
	uint8_t b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)rand();
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
}

void srv_random_alnum(char *out, size_t n, const char *prefix)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz";
	size_t np = prefix ? strlen(prefix) : 0;
	/* Access key ids are upper-case alphanumerics; everything else may mix cases. */
	size_t setlen = (prefix && prefix[0] == 'A') ? 36 : sizeof set - 1;
	if (np > n) np = n;
	memcpy(out, prefix ? prefix : "", np);
	for (size_t i = np; i < n; i++) {
		uint8_t r;
		if (RAND_bytes(&r, 1) != 1) r = (uint8_t)rand();
		out[i] = set[r % setlen];
	}
	out[n] = '\0';
}

void srv_http_date(char out[40])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void srv_iso8601(long long unix_seconds, char out[32])
{
	time_t t = (time_t)unix_seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

long long srv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int srv_sleep_ms(long ms)
{
	while (ms > 0) {
		if (srv_stopping()) return -1;
		long step = ms > 50 ? 50 : ms;
		struct timespec ts = { step / 1000, (step % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
		ms -= step;
	}
	return srv_stopping() ? -1 : 0;
}

int srv_hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

char *srv_pct_decode(const char *src, size_t n, int form)
{
	char *out = malloc(n + 1);
	if (!out) return NULL;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (src[i] == '%' && i + 2 < n &&
		    (h = srv_hexval((unsigned char)src[i + 1])) >= 0 &&
		    (l = srv_hexval((unsigned char)src[i + 2])) >= 0) {
			out[j++] = (char)(h * 16 + l);
			i += 2;
		} else if (form && src[i] == '+') {
			out[j++] = ' ';
		} else {
			out[j++] = src[i];
		}
	}
	out[j] = '\0';
	return out;
}

char *srv_query_get(const char *query, const char *key, int form)
{
	size_t klen = strlen(key);
	const char *p = query ? query : "";
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;
		char *name = srv_pct_decode(p, nlen, form);
		int match = name && strlen(name) == klen && memcmp(name, key, klen) == 0;
		free(name);
		if (match) {
			if (!eq) return srv_pct_decode("", 0, form);
			return srv_pct_decode(eq + 1, len - nlen - 1, form);
		}
		p += len;
		if (*p == '&') p++;
	}
	return NULL;
}

void srv_json_escape(br_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"': br_buf_append_str(b, "\\\""); break;
		case '\\': br_buf_append_str(b, "\\\\"); break;
		case '\n': br_buf_append_str(b, "\\n"); break;
		case '\r': br_buf_append_str(b, "\\r"); break;
		case '\t': br_buf_append_str(b, "\\t"); break;
		default:
			if (*c < 0x20) {
				char e[7] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15], 0};
				br_buf_append_str(b, e);
			} else {
				br_buf_append_byte(b, *c);
			}
		}
	}
}

void srv_xml_escape(br_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': br_buf_append_str(b, "&lt;"); break;
		case '>': br_buf_append_str(b, "&gt;"); break;
		case '&': br_buf_append_str(b, "&amp;"); break;
		case '"': br_buf_append_str(b, "&quot;"); break;
		case '\'': br_buf_append_str(b, "&apos;"); break;
		default: br_buf_append_byte(b, (uint8_t)*s);
		}
	}
}

int srv_secure_eq(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned diff = (unsigned)(na ^ nb);
	for (size_t i = 0; i < na; i++) diff |= (unsigned)(a[i] ^ b[nb ? i % nb : 0]);
	return diff == 0 && na == nb;
}

const char *srv_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 418: return "I'm a teapot";
	case 424: return "Failed Dependency";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

void srv_model_of(const char *path, char *out, size_t cap)
{
	out[0] = '\0';
	if (strncmp(path, "/model/", 7) != 0 || cap == 0) return;
	const char *s = path + 7;
	const char *e = strchr(s, '/');
	size_t n = e ? (size_t)(e - s) : strlen(s);
	char *d = srv_pct_decode(s, n, 0);
	if (!d) return;
	snprintf(out, cap, "%s", d);
	free(d);
}
