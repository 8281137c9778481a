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
#define BR_ES_MAX_NHEADERS  256u             /* headers in one message: ours, not botocore's
						(it has no count limit); real frames carry 3 */
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
	int buffered;                  /* 1: the message was assembled in the decoder's buffer
					  (it did not lie in one fed slice): its bytes may be
					  moved by the next call; 0: they point into the slice,
					  valid until BR_AGAIN or the next feed */
} br_es_message;

typedef struct br_es_decoder br_es_decoder;

/* New decoder. max_message is the largest frame accepted (0 = BR_ES_MAX_MESSAGE; it is
 * capped there, and raised to BR_ES_MIN_MESSAGE). NULL when out of memory. The decoder
 * owns its buffers; free it with br_es_decoder_free (NULL is fine). Not thread-safe: one
 * decoder belongs to one thread at a time. */
br_es_decoder *br_es_decoder_new(size_t max_message);

/* Frees the decoder and its buffers; messages taken from it become invalid. NULL is fine.
 * Borrowed slices are not touched (the caller owns them). */
void br_es_decoder_free(br_es_decoder *d);

/* Hands the decoder a slice of the stream (any length, split anywhere). The decoder
 * borrows p: the caller keeps it alive and unchanged until br_es_decoder_next returns
 * BR_AGAIN (slice used up) or the next feed/reset. Feeding while messages of the previous
 * slice are still unread is allowed: the unread rest of that slice is copied first, so
 * memory stays bounded by the unread bytes fed plus one message. Returns BR_OK,
 * BR_INVAL (p NULL with n > 0), BR_NOMEM, or BR_DECODER_FAILED once the decoder failed. */
br_status br_es_decoder_feed(br_es_decoder *d, const uint8_t *p, size_t n);

/* Takes out the next whole message: BR_OK (m filled; its pointers stay valid until the
 * next call on this decoder and, for a message that lay in one fed slice, point into that
 * slice: no copy), BR_AGAIN (needs more bytes), or an error code. The prelude CRC is
 * checked as soon as 12 bytes are there, then the lengths and limits, then the message
 * CRC, then the headers (names non-empty, valid UTF-8 and unique; STRING values are
 * handed out as bytes without a UTF-8 check). The first error is sticky: it is kept (br_es_decoder_error
 * gives it with a detail naming where) and every later feed/next returns
 * BR_DECODER_FAILED until br_es_decoder_reset. Never allocates per message: a message
 * split across slices is copied into a buffer sized to exactly its total_length. */
br_status br_es_decoder_next(br_es_decoder *d, br_es_message *m);

/* First error, or BR_OK; *detail (if detail is not NULL) gets a string owned by the
 * decoder, valid until the next reset/free, e.g. "header 2 ('x') at byte 37 of the
 * message at stream offset 0: string length 900 runs past the header block". */
br_status br_es_decoder_error(const br_es_decoder *d, const char **detail);

/* Bytes held that are not yet part of a returned message (0 at a clean message boundary),
 * counting both the copied bytes and the unread rest of the current slice. */
size_t br_es_decoder_pending(const br_es_decoder *d);

/* Bytes the decoder has allocated (its message buffer and header array, not the struct):
 * at most one message (or the unread rest of a slice, when fed before it was drained)
 * plus the header array. For tests and accounting. */
size_t br_es_decoder_memory(const br_es_decoder *d);

/* End of stream: BR_OK when no bytes are pending, else BR_STREAM_TRUNCATED (sticky, with
 * a detail saying how far into which message the stream stopped). Call it after next()
 * returned BR_AGAIN on the last slice. */
br_status br_es_decoder_finish(br_es_decoder *d);

/* Back to the initial state: drops pending bytes, the borrowed slice and the error; keeps
 * the allocated buffers for reuse (large ones are released). */
void br_es_decoder_reset(br_es_decoder *d);

/* Checks a message for encoding and gives its frame length in *total: names 1..255 bytes
 * and unique, known types, a UUID of 16 bytes, STRING/BYTES values up to 32767 bytes
 * (BR_HEADER_TOO_LONG), at most BR_ES_MAX_NHEADERS headers, a header block up to
 * BR_ES_MAX_HEADERS (BR_HEADERS_TOO_LARGE) and a frame up to BR_ES_MAX_MESSAGE
 * (BR_FRAME_TOO_LARGE). Other codes: BR_HEADER_NAME, BR_HEADER_TYPE, BR_HEADER_DUPLICATE,
 * BR_TOO_MANY_HEADERS, BR_RANGE (an int8/16/32 value out of range), BR_INVAL (NULL
 * pointer with a non-zero length, a UUID not 16 bytes). */
br_status br_es_encoded_size(const br_es_header *headers, size_t nheaders,
			     size_t payload_len, size_t *total);

/* Writes a message that br_es_encoded_size accepted into dst, which must hold exactly
 * `total` bytes (the value it gave). No allocation, no checks beyond those. */
void br_es_encode_to(uint8_t *dst, size_t total, const br_es_header *headers,
		     size_t nheaders, const uint8_t *payload, size_t payload_len);

/* Encodes one message and appends it to out (br_es_encoded_size + br_es_encode_to).
 * Header values are taken as in br_es_header (str/len for BYTES/STRING/UUID, i
 * otherwise; bools by type, i ignored). out is left unchanged on error; BR_NOMEM if it
 * cannot grow. The caller owns out. */
br_status br_es_encode(br_buf *out, const br_es_header *headers, size_t nheaders,
		       const uint8_t *payload, size_t payload_len);

/* CRC-32 (IEEE, zlib-compatible): crc = br_crc32(crc, p, n), starting from 0; chains
 * like zlib's crc32 (br_crc32(br_crc32(0, a, n), b, m) is the CRC of a then b). Reads
 * exactly n bytes of p, any alignment; no allocation, thread-safe. Uses PCLMULQDQ folding
 * on x86-64 CPUs that have it (decided once at load time), slicing-by-16 otherwise. */
uint32_t br_crc32(uint32_t crc, const void *p, size_t n);

/* The same CRC, always by the portable slicing-by-16 path (for tests and comparison). */
uint32_t br_crc32_portable(uint32_t crc, const void *p, size_t n);

/* Which path br_crc32 takes on this machine: "pclmul" or "slicing-by-16" (static string). */
const char *br_crc32_impl(void);

#endif
