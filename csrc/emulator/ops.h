/* Internal interface of the operations half (ops*.c, guardrail*.c, async*.c). Not part
 * of the server contract (emu.h). */
#ifndef EMU_OPS_H
#define EMU_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "emu.h"
#include "json.h"

#define OPS_ACCOUNT "123456789012"

/* Percent-decodes one path label or query value into a malloc'd NUL-terminated string;
 * NULL for a bad escape, an encoded NUL, or out of memory. */
char *ops_pct_decode(const char *s, size_t n);

/* The documented model-id rule (docs/emulator.md, "Deterministic behaviour"): 1 when
 * the id names a known foundation model family or an ARN of a kind the service takes. */
int ops_model_known(const char *id);
/* The bare model id behind an id or ARN: the part after the last '/', without a
 * cross-region inference prefix ("us.", "eu.", "apac.", "global."...). Borrowed pointer
 * into id (or a static string). */
const char *ops_model_base(const char *id);

/* The emulator's tokenizer: a token is a maximal run of letters/digits/non-ASCII bytes,
 * or one punctuation character; whitespace separates. */
size_t ops_tokens(const char *s, size_t n);
/* Byte length of the prefix of s that holds at most max tokens. */
size_t ops_token_prefix(const char *s, size_t n, size_t max);

/* Parses the request body as a JSON object; on failure fills rs with a 400
 * ValidationException (or SerializationException style message) and returns NULL. */
json *ops_parse_body(const emu_request *rq, emu_response *rs);
/* Validates a body against an input shape; on failure fills rs and returns -1. */
int ops_validate(const char *shape, const json *body, emu_response *rs);

/* Appends one event-stream message (three string headers: :event-type, :content-type
 * application/json, :message-type event) with the given payload to rs->frames. */
int ops_add_event(emu_response *rs, br_buf *scratch, const char *event_type,
		  const uint8_t *payload, size_t n);
/* A copy of rq without its body (body NULL, body_len 0) in one malloc'd block (free()
 * releases it), for a stream producer that runs after the request's own storage is gone.
 * NULL when out of memory. */
emu_request *ops_request_copy(const emu_request *rq);
/* Events a stream producer encodes per call: small enough that the first bytes leave at
 * once and little sits queued, large enough that the calls cost nothing. */
#define OPS_PRODUCE_EVENTS 64

/* Writes the "p" padding member (deterministic length from seed, 2..61 characters of
 * [a-zA-Z0-9], like the service's). */
void ops_padding(json_writer *w, unsigned seed);

/* The operations. */
void ops_converse(const emu_request *rq, emu_response *rs, const char *model_id, int stream);
void ops_count_tokens(const emu_request *rq, emu_response *rs, const char *model_id);
void ops_invoke(const emu_request *rq, emu_response *rs, const char *model_id, int stream);
void ops_apply_guardrail(const emu_request *rq, emu_response *rs, const char *id, const char *version);
void ops_guardrail_checks(const emu_request *rq, emu_response *rs);
void ops_async_start(const emu_request *rq, emu_response *rs);
void ops_async_get(const emu_request *rq, emu_response *rs, const char *arn);
void ops_async_list(const emu_request *rq, emu_response *rs);

/* Counts the input tokens of a Converse-shaped request (system, messages, toolConfig);
 * images/documents/video/audio count fixed amounts (see the docs). */
size_t ops_converse_input_tokens(const json *req);
/* Input tokens of a model-native InvokeModel body (all string values under the prompt
 * keys); -1 when the body is not JSON. */
long ops_invoke_input_tokens(const char *model_id, const uint8_t *body, size_t n);

/* The region in effect for ARNs. */
const char *ops_region(const emu_request *rq);

#endif
