/* Growable byte buffer. The buffer owns its memory; br_buf_free releases it and leaves
 * an empty, reusable buffer. Growth doubles, so appends are amortised O(1). No limit is
 * imposed here: callers that take untrusted sizes check their own limits first. */
#ifndef BR_BUF_H
#define BR_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "br_errors.h"

typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
} br_buf;

#define BR_BUF_INIT {NULL, 0, 0}

/* Ensures room for `extra` more bytes beyond len (extra may be 0) and a non-NULL data
 * pointer. BR_NOMEM on failure (buffer unchanged). */
br_status br_buf_reserve(br_buf *b, size_t extra);
br_status br_buf_append(br_buf *b, const void *p, size_t n);
br_status br_buf_append_str(br_buf *b, const char *s);
br_status br_buf_append_byte(br_buf *b, uint8_t c);
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void br_buf_consume(br_buf *b, size_t n);
static inline void br_buf_reset(br_buf *b) { b->len = 0; }
void br_buf_free(br_buf *b);

#endif
