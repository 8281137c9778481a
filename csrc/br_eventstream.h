/* application/vnd.amazon.eventstream: push decoder and encoder.
 *
 * Frame: total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload |
 * message_crc u32, big-endian, CRC-32 (IEEE/zlib). See the reference, section 9. */
#ifndef BR_EVENTSTREAM_H
#define BR_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include "br_buf.h"
#include "br_errors.h"

/* Protocol limits (botocore's): a frame above these is refused before it is buffered. */
#define BR_ES_MAX_MESSAGE   (24u * 1024u * 1024u + 128u * 1024u + 16u)
#define BR_ES_MAX_HEADERS   (128u * 1024u)   /* header block bytes */
#define BR_ES_MAX_NHEADERS  256u             /* headers in one message */
#define BR_ES_MIN_MESSAGE   16u

typedef enum {
	BR_ES_TRUE = 0, BR_ES_FALSE = 1, BR_ES_BYTE = 2, BR_ES_INT16 = 3, BR_ES_INT32 = 4,
	BR_ES_INT64 = 5, BR_ES_BYTES = 6, BR_ES_STRING = 7, BR_ES_TIMESTAMP = 8, BR_ES_UUID = 9
} br_es_type;

/* One header. name/str point into the message (borrowed, valid as long as the message).
 * For BYTES/STRING/UUID the value is (str, len); for TRUE/FALSE/BYTE/INT16/INT32/INT64/
 * TIMESTAMP it is i (bools as 1/0, timestamps in milliseconds since the epoch). */
typedef struct {
	const char *name;
	uint8_t name_len;
	uint8_t type;
	uint16_t len;
	const uint8_t *str;
	int64_t i;
} br_es_header;

typedef struct {
	const br_es_header *headers;   /* borrowed from the decoder */
	size_t nheaders;
	const uint8_t *payload;        /* borrowed: into the fed slice or the decoder's buffer */
	size_t payload_len;
	uint32_t total_len, headers_len, prelude_crc, message_crc;
} br_es_message;

typedef struct br_es_decoder br_es_decoder;

/* New decoder. max_message is the largest frame accepted (0 = BR_ES_MAX_MESSAGE; it is
 * capped there). NULL when out of memory. Free with br_es_decoder_free (NULL is fine). */
br_es_decoder *br_es_decoder_new(size_t max_message);
void br_es_decoder_free(br_es_decoder *d);

/* Hands the decoder a slice of the stream. The decoder borrows p: the caller keeps it
 * alive and unchanged until br_es_decoder_next returns BR_AGAIN (slice used up) or the
 * next feed. Feeding while messages of the previous slice are still pending is allowed:
 * the unread rest of the previous slice is copied first (bounded by one message).
 * Returns BR_OK, or the sticky error if the decoder already failed. */
br_status br_es_decoder_feed(br_es_decoder *d, const uint8_t *p, size_t n);

/* Takes out the next whole message: BR_OK (m filled; its pointers stay valid until the
 * next call on this decoder), BR_AGAIN (needs more bytes), or an error code, after
 * which every call returns BR_DECODER_FAILED... except that the first error is kept and
 * br_es_decoder_error() reports it. Memory: one message beyond what was fed. */
br_status br_es_decoder_next(br_es_decoder *d, br_es_message *m);

/* First error, or BR_OK; and a detail string naming where (e.g. "header 2 at byte 37"). */
br_status br_es_decoder_error(const br_es_decoder *d, const char **detail);

/* Bytes held that are not yet part of a returned message (0 at a clean message boundary).
 * At end of stream a non-zero value means the stream was truncated. */
size_t br_es_decoder_pending(const br_es_decoder *d);

/* Encodes one message and appends it to out. Header values are taken as in
 * br_es_header (str/len for BYTES/STRING/UUID, i otherwise; a UUID must be 16 bytes).
 * BR_HEADER_TOO_LONG for a name > 255 bytes or a value > 32767 bytes; BR_FRAME_TOO_LARGE
 * above the limits. out is left unchanged on error. */
br_status br_es_encode(br_buf *out, const br_es_header *headers, size_t nheaders,
		       const uint8_t *payload, size_t payload_len);

/* CRC-32 (IEEE, zlib-compatible): crc = br_crc32(crc, p, n), starting from 0. */
uint32_t br_crc32(uint32_t crc, const void *p, size_t n);

#endif
