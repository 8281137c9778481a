/* emu_response: the value an operation fills and the server writes. Headers and frames
 * are owned copies; emu_response_free releases everything and leaves an empty response
 * that can be reused. A stream's frames may come from a producer, pulled as the server
 * writes: the frames array then only ever holds the frames between the last one sent and
 * the last one produced. */
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
	for (size_t i = rs->frames_released; i < rs->nframes; i++) br_buf_free(&rs->frames[i]);
	free(rs->frames);
	if (rs->produce_free) rs->produce_free(rs->produce_state);
	emu_response_init(rs);
}

void emu_response_set_producer(emu_response *rs, emu_produce_fn fn, void *state,
			       void (*free_state)(void *state))
{
	if (rs->produce_free) rs->produce_free(rs->produce_state);
	rs->produce = fn;
	rs->produce_state = state;
	rs->produce_free = free_state;
	rs->is_stream = 1;
}

static void drop_producer(emu_response *rs)
{
	if (rs->produce_free) rs->produce_free(rs->produce_state);
	rs->produce = NULL;
	rs->produce_free = NULL;
	rs->produce_state = NULL;
}

int emu_response_produce(emu_response *rs)
{
	if (!rs->produce) return rs->produce_failed ? -1 : 0;
	size_t before = rs->nframes;
	int r = rs->produce(rs->produce_state, rs);
	int added = rs->nframes > before;
	if (r > 0 && added) return 1;
	drop_producer(rs);
	if (r < 0 || (r > 0 && !added)) {
		rs->produce_failed = 1;
		return -1;
	}
	return added ? 1 : 0;
}

size_t emu_response_frames_total(const emu_response *rs)
{
	return rs->frames_base + rs->nframes;
}

br_buf *emu_response_frame(emu_response *rs, size_t i)
{
	return &rs->frames[i - rs->frames_base];
}

void emu_response_release_frames(emu_response *rs, size_t upto)
{
	size_t k = upto > rs->frames_base ? upto - rs->frames_base : 0;
	if (k > rs->nframes) k = rs->nframes;
	while (rs->frames_released < k) br_buf_free(&rs->frames[rs->frames_released++]);
	/* Moving the rest down costs what is left; doing it only once the released part is
	 * at least as long keeps it linear over the whole stream. */
	size_t d = rs->frames_released, left = rs->nframes - d;
	if (d == 0 || (left > 0 && (d < 64 || d < left))) return;
	if (left) memmove(rs->frames, rs->frames + d, left * sizeof *rs->frames);
	rs->nframes = left;
	rs->frames_base += d;
	rs->frames_released = 0;
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
	if (rs->fail_set && emu_response_frames_total(rs) >= rs->fail_from) return -1;
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
