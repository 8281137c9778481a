/* InvokeModelWithBidirectionalStream: a Nova-Sonic-like echo (docs/emulator.md).
 * Each input inner message is an event-stream message (:event-type chunk) whose payload
 * is {"bytes":"<base64>"}; every one is answered by one output chunk whose bytes are
 * {"event":{"textOutput":{"content":<echo>,"role":"ASSISTANT","index":<n>}}}, where the
 * echo is event.textInput.content when the input is such JSON, else the received text.
 * The client's end of input is answered by {"event":{"completionEnd":{"stopReason":
 * "END_TURN","inputs":<n>}}}. A malformed input ends the stream with a
 * validationException event. */
#include "ops.h"
#include "model.h"
#include "../br_eventstream.h"

#include <stdlib.h>
#include <string.h>

struct emu_bidi {
	br_es_decoder *dec;
	br_buf scratch, payload;
	long inputs;
	int failed;
};

emu_bidi *emu_ops_bidi_open(const emu_request *rq, emu_response *rs)
{
	const char *p = rq->path;
	const char *suffix = "/invoke-with-bidirectional-stream";
	size_t n = strlen(p), sl = strlen(suffix);
	if (strncmp(p, "/model/", 7) || n <= 7 + sl || strcmp(p + n - sl, suffix)) {
		emu_response_error(rs, 404, "UnknownOperationException", "Unknown operation.");
		return NULL;
	}
	char *id = ops_pct_decode(p + 7, n - 7 - sl);
	if (!id || strchr(id, '/') != NULL ? (id && strncmp(id, "arn:", 4)) : 0) {
		free(id);
		emu_response_error(rs, 400, "ValidationException", "The modelId in the request path is not validly percent-encoded.");
		return NULL;
	}
	int known = ops_model_known(id);
	free(id);
	if (!known) {
		emu_response_error(rs, 400, "ValidationException", "The provided model identifier is invalid.");
		return NULL;
	}
	emu_bidi *b = calloc(1, sizeof *b);
	if (!b || !(b->dec = br_es_decoder_new(0))) {
		free(b);
		emu_response_error(rs, 500, "InternalServerException", "out of memory");
		return NULL;
	}
	rs->status = 200;
	emu_response_add_header(rs, "Content-Type", "application/vnd.amazon.eventstream");
	return b;
}

static void exception(emu_bidi *b, emu_response *out, const char *msg)
{
	br_es_header h[3];
	memset(h, 0, sizeof h);
	const char *names[3] = {":exception-type", ":content-type", ":message-type"};
	const char *vals[3] = {"validationException", "application/json", "exception"};
	for (int i = 0; i < 3; i++) {
		h[i].name = names[i];
		h[i].name_len = (uint8_t)strlen(names[i]);
		h[i].type = BR_ES_STRING;
		h[i].str = (const uint8_t *)vals[i];
		h[i].len = (uint16_t)strlen(vals[i]);
	}
	br_buf_reset(&b->payload);
	json_writer w;
	jw_init(&w, &b->payload);
	jw_obj(&w);
	jw_kstr(&w, "message", msg);
	jw_obj_end(&w);
	br_buf_reset(&b->scratch);
	if (br_es_encode(&b->scratch, h, 3, b->payload.data, b->payload.len) == BR_OK)
		emu_response_add_frame(out, b->scratch.data, b->scratch.len);
	b->failed = 1;
}

/* Sends {"bytes": base64(inner)} as a chunk event. */
static void send_chunk(emu_bidi *b, emu_response *out, const br_buf *inner)
{
	br_buf outer = BR_BUF_INIT;
	br_buf_append_str(&outer, "{\"bytes\":\"");
	emu_b64_encode(inner->data, inner->len, &outer);
	br_buf_append_str(&outer, "\"}");
	ops_add_event(out, &b->scratch, "chunk", outer.data, outer.len);
	br_buf_free(&outer);
}

static int utf8_valid(const uint8_t *p, size_t n)
{
	char err[8];
	/* reuse the JSON parser's UTF-8 check by quoting: cheap enough for an echo */
	br_buf q = BR_BUF_INIT;
	json_quote(&q, (const char *)p, n);
	json *v = json_parse((const char *)q.data, q.len, err, sizeof err);
	br_buf_free(&q);
	json_free(v);
	return v != NULL;
}

void emu_ops_bidi_input(emu_bidi *b, const uint8_t *msg, size_t len, emu_response *out)
{
	if (b->failed) return;
	br_es_message m;
	if (br_es_decoder_feed(b->dec, msg, len) != BR_OK || br_es_decoder_next(b->dec, &m) != BR_OK ||
	    br_es_decoder_pending(b->dec) != 0) {
		exception(b, out, "Each input event must be one whole event-stream message.");
		return;
	}
	int chunk = 0;
	for (size_t i = 0; i < m.nheaders; i++) {
		const br_es_header *h = &m.headers[i];
		if (h->name_len == 11 && !memcmp(h->name, ":event-type", 11) && h->type == BR_ES_STRING &&
		    h->len == 5 && !memcmp(h->str, "chunk", 5))
			chunk = 1;
	}
	if (!chunk) {
		exception(b, out, "Input events must have :event-type chunk.");
		return;
	}
	char err[160];
	json *p = json_parse((const char *)m.payload, m.payload_len, err, sizeof err);
	const char *b64 = json_get_str(p, "bytes");
	br_buf raw = BR_BUF_INIT;
	if (!b64 || emu_b64_decode(b64, strlen(b64), &raw)) {
		json_free(p);
		br_buf_free(&raw);
		exception(b, out, "The chunk payload must be {\"bytes\":\"<base64>\"}.");
		return;
	}
	json_free(p);
	b->inputs++;
	json *in = raw.len ? json_parse((const char *)raw.data, raw.len, err, sizeof err) : NULL;
	const json *tc = json_get(json_get(json_get(in, "event"), "textInput"), "content");
	br_buf inner = BR_BUF_INIT;
	json_writer w;
	jw_init(&w, &inner);
	jw_obj(&w);
	jw_key(&w, "event");
	jw_obj(&w);
	jw_key(&w, "textOutput");
	jw_obj(&w);
	jw_key(&w, "content");
	if (tc && tc->type == JSON_STRING) jw_strn(&w, tc->str, tc->len);
	else if (utf8_valid(raw.data, raw.len)) jw_strn(&w, raw.data ? (const char *)raw.data : "", raw.len);
	else {
		br_buf e = BR_BUF_INIT;
		emu_b64_encode(raw.data, raw.len, &e);
		jw_strn(&w, (const char *)e.data, e.len);
		br_buf_free(&e);
	}
	jw_kstr(&w, "role", "ASSISTANT");
	jw_kint(&w, "index", b->inputs);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_obj_end(&w);
	send_chunk(b, out, &inner);
	br_buf_free(&inner);
	br_buf_free(&raw);
	json_free(in);
}

void emu_ops_bidi_end(emu_bidi *b, emu_response *out)
{
	if (b->failed) return;
	br_buf inner = BR_BUF_INIT;
	json_writer w;
	jw_init(&w, &inner);
	jw_obj(&w);
	jw_key(&w, "event");
	jw_obj(&w);
	jw_key(&w, "completionEnd");
	jw_obj(&w);
	jw_kstr(&w, "stopReason", "END_TURN");
	jw_kint(&w, "inputs", b->inputs);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_obj_end(&w);
	send_chunk(b, out, &inner);
	br_buf_free(&inner);
}

void emu_ops_bidi_free(emu_bidi *b)
{
	if (!b) return;
	br_es_decoder_free(b->dec);
	br_buf_free(&b->scratch);
	br_buf_free(&b->payload);
	free(b);
}
