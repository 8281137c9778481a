/* Embedded service model: lazy parse and shape lookup. */
#include "model.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static json *g_model;
static const json *g_shapes;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	char err[200];
	g_model = json_parse((const char *)emu_model_json, emu_model_json_len, err, sizeof err);
	if (!g_model) {
		fprintf(stderr, "bedrock-emulator: embedded model does not parse: %s\n", err);
		return;
	}
	g_shapes = json_get(g_model, "shapes");
}

const json *emu_model(void)
{
	pthread_once(&g_once, load);
	return g_model;
}

const json *emu_model_shape(const char *name)
{
	if (!emu_model()) return NULL;
	return json_get(g_shapes, name);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void emu_b64_encode(const uint8_t *p, size_t n, br_buf *out)
{
	if (br_buf_reserve(out, (n + 2) / 3 * 4) != BR_OK) return;
	uint8_t *o = out->data + out->len;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		*o++ = (uint8_t)b64[v >> 18]; *o++ = (uint8_t)b64[(v >> 12) & 63];
		*o++ = (uint8_t)b64[(v >> 6) & 63]; *o++ = (uint8_t)b64[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		*o++ = (uint8_t)b64[v >> 18]; *o++ = (uint8_t)b64[(v >> 12) & 63]; *o++ = '='; *o++ = '=';
	} else if (n - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		*o++ = (uint8_t)b64[v >> 18]; *o++ = (uint8_t)b64[(v >> 12) & 63];
		*o++ = (uint8_t)b64[(v >> 6) & 63]; *o++ = '=';
	}
	out->len = (size_t)(o - out->data);
}

int emu_b64_decode(const char *s, size_t n, br_buf *out)
{
	if (n % 4) return -1;
	if (br_buf_reserve(out, n / 4 * 3) != BR_OK) return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			const char *f = c ? strchr(b64, c) : NULL;
			if (f) v[k] = (int)(f - b64);
			else if (c == '=' && i + 4 == n && k >= 2) v[k] = -1;
			else return -1;
		}
		if (v[2] < 0 && v[3] >= 0) return -1;
		unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
			(unsigned)(v[2] < 0 ? 0 : v[2]) << 6 | (unsigned)(v[3] < 0 ? 0 : v[3]);
		out->data[out->len++] = (uint8_t)(x >> 16);
		if (v[2] >= 0) out->data[out->len++] = (uint8_t)(x >> 8);
		if (v[3] >= 0) out->data[out->len++] = (uint8_t)x;
	}
	return 0;
}
