/* The Bedrock Runtime service model (botocore service-2.json without prose), embedded in
 * the binary, and a generic request validator driven by it. */
#ifndef EMU_MODEL_H
#define EMU_MODEL_H

#include <stddef.h>
#include "json.h"

/* The model's bytes (generated at build time from csrc/model/bedrock-runtime.model.json;
 * NUL-ended). */
extern const unsigned char emu_model_json[];
extern const size_t emu_model_json_len;

/* The parsed model, built once on first use (thread-safe); NULL only if the embedded
 * text failed to parse (a build error) or memory ran out. Owned by the module, lives for
 * the process. */
const json *emu_model(void);
/* A shape definition by name ("ConverseRequest"); NULL when unknown. Borrowed. */
const json *emu_model_shape(const char *name);

/* Validates a request body (a parsed JSON value) against a structure shape the way the
 * service does: required members, member types, enums, length/range constraints, unions
 * with exactly one member, blobs as base64, timestamps, documents as any JSON, unknown
 * members refused. Members bound to the URI, query or headers are skipped (the
 * operation checks them). Returns 0 when valid; otherwise the number of violations and
 * *msg receives a malloc'd message in the service's style, e.g. "1 validation error
 * detected: Value null at 'messages.1.member.content' failed to satisfy constraint:
 * Member must not be null" (the caller frees it). At most 10 violations are listed. */
int emu_model_validate(const char *shape, const json *body, char **msg);

/* Matches s[0..n) against a Smithy pattern string taken from the model (the pointer
 * identifies the compiled form, which is cached for the process): 1 when the whole
 * value matches, 0 when not, -1 when the pattern uses syntax the translator does not
 * support (then the constraint is not enforced). Thread-safe. */
int emu_model_pattern_match(const char *pattern, const char *s, size_t n);

/* Decodes standard base64 (padding required, whitespace refused) into out (appended).
 * Returns 0, or -1 when s is not valid base64. */
int emu_b64_decode(const char *s, size_t n, br_buf *out);
/* Appends the standard base64 (with padding) of p[0..n) to out. */
void emu_b64_encode(const uint8_t *p, size_t n, br_buf *out);

#endif
