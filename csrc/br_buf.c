#include <stdlib.h>
#include <string.h>
#include "br_buf.h"

br_status br_buf_reserve(br_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return BR_NOMEM;
	need = b->len + extra;
	/* Even a zero-byte reserve leaves data non-NULL, so callers may always write at
	 * b->data + b->len after a successful reserve. */
	if (b->data && need <= b->cap)
		return BR_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return BR_NOMEM;
	b->data = p;
	b->cap = cap;
	return BR_OK;
}

br_status br_buf_append(br_buf *b, const void *p, size_t n)
{
	br_status s;

	if (n == 0)
		return BR_OK;
	if ((s = br_buf_reserve(b, n)) != BR_OK)
		return s;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return BR_OK;
}

br_status br_buf_append_str(br_buf *b, const char *s)
{
	return br_buf_append(b, s, strlen(s));
}

br_status br_buf_append_byte(br_buf *b, uint8_t c)
{
	return br_buf_append(b, &c, 1);
}

void br_buf_consume(br_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void br_buf_free(br_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
