/* emu_response: the value an operation fills and the server writes. Headers and frames
 * are owned copies; emu_response_free releases everything and leaves an empty response
 * that can be reused. */
#include "emu.h"
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n + 1);
	if (p) memcpy(p, s, n + 1);
	return p;
}

void emu_response_init(emu_response *rs)
{
	memset(rs, 0, sizeof *rs);
	rs->status = 200;
}

void emu_response_free(emu_response *rs)
{
	for (size_t i = 0; i < rs->nheaders; i++) {
		free(rs->headers[i].name);
		free(rs->headers[i].value);
	}
	br_buf_free(&rs->body);
	for (size_t i = 0; i < rs->nframes; i++) br_buf_free(&rs->frames[i]);
	free(rs->frames);
	emu_response_init(rs);
}

int emu_response_add_header(emu_response *rs, const char *name, const char *value)
{
	if (rs->nheaders >= sizeof rs->headers / sizeof rs->headers[0]) return -1;
	char *n = dup_str(name), *v = dup_str(value);
	if (!n || !v) {
		free(n);
		free(v);
		return -1;
	}
	for (char *c = n; *c; c++)
		if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
	rs->headers[rs->nheaders].name = n;
	rs->headers[rs->nheaders].value = v;
	rs->nheaders++;
	return 0;
}

int emu_response_add_frame(emu_response *rs, const uint8_t *p, size_t n)
{
	if (rs->nframes == rs->frames_cap) {
		size_t cap = rs->frames_cap ? rs->frames_cap * 2 : 16;
		br_buf *f = realloc(rs->frames, cap * sizeof *f);
		if (!f) return -1;
		rs->frames = f;
		rs->frames_cap = cap;
	}
	br_buf b = BR_BUF_INIT;
	if (br_buf_append(&b, p, n) != BR_OK) return -1;
	rs->frames[rs->nframes++] = b;
	rs->is_stream = 1;
	return 0;
}

void emu_response_error(emu_response *rs, int status, const char *type, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	/* An error replaces whatever the operation had started to fill. */
	emu_response_free(rs);
	rs->status = status;
	char et[256];
	snprintf(et, sizeof et, "%s:http://internal.amazon.com/coral/com.amazon.bedrock/", type);
	emu_response_add_header(rs, "x-amzn-ErrorType", et);
	emu_response_add_header(rs, "Content-Type", "application/json");
	br_buf_append_str(&rs->body, "{\"message\":");
	json_quote(&rs->body, msg, strlen(msg));
	br_buf_append_byte(&rs->body, '}');
}
