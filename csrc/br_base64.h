/* Base64, standard alphabet (RFC 4648 §4): blobs inside JSON and chunk payloads. */
#ifndef BR_BASE64_H
#define BR_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include "br_errors.h"

/* Length of the padded encoding of n bytes (n must be below SIZE_MAX / 4 * 3). */
static inline size_t br_base64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

/* Largest decoded length of a text of n characters: room to give br_base64_decode. */
static inline size_t br_base64_decoded_max(size_t n) { return n / 4 * 3 + 2; }

/* Encodes src[0..n) into dst, which has br_base64_encoded_len(n) bytes (no NUL). */
void br_base64_encode(const uint8_t *src, size_t n, char *dst);

/* Decodes src[0..n) into dst (br_base64_decoded_max(n) bytes), *out_len gets the length.
 * Padding is optional but, when present, must be right; whitespace and characters
 * outside the alphabet are refused (BR_BAD_BASE64, *bad_at = the offending offset). */
br_status br_base64_decode(const char *src, size_t n, uint8_t *dst, size_t *out_len,
			   size_t *bad_at);

#endif
