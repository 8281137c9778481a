/* InvokeModel and InvokeModelWithResponseStream: model-native bodies of the families in
 * docs/emulator.md (Anthropic messages, Amazon Titan text and embeddings, Amazon Nova,
 * Meta Llama, Mistral, Cohere command and embed), answered in each family's format. */
#include "ops.h"
#include "guardrail.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LATENCY_MS 100
#define FIRST_BYTE_MS 50

typedef enum { F_ANTHROPIC, F_TITAN_TEXT, F_TITAN_EMBED, F_NOVA, F_META, F_MISTRAL,
	       F_COHERE_CMD, F_COHERE_EMBED, F_NONE } family;

typedef struct {
	family fam;
	json *body;
	br_buf all;        /* every prompt text, for input tokens */
	br_buf last;       /* the text the reply echoes */
	long long max;     /* max output tokens, -1 when not given */
	const json *stops; /* array of stop strings, or NULL */
	long long dims;    /* embeddings */
	int normalize;
} native;

static family family_of(const char *model_id)
{
	const char *b = ops_model_base(model_id);
	if (!strncmp(b, "anthropic.", 10)) return F_ANTHROPIC;
	if (!strncmp(b, "amazon.titan-text", 17)) return F_TITAN_TEXT;
	if (!strncmp(b, "amazon.titan-embed", 18)) return F_TITAN_EMBED;
	if (!strncmp(b, "amazon.nova", 11)) return F_NOVA;
	if (!strncmp(b, "meta.", 5)) return F_META;
	if (!strncmp(b, "mistral.", 8)) return F_MISTRAL;
	if (!strncmp(b, "cohere.embed", 12)) return F_COHERE_EMBED;
	if (!strncmp(b, "cohere.", 7)) return F_COHERE_CMD;
	/* ARNs of profiles/provisioned models without a family in their name: Anthropic */
	return F_ANTHROPIC;
}

static void add_text(native *nt, const char *s, size_t n, int is_last)
{
	if (nt->all.len) br_buf_append_byte(&nt->all, ' ');
	br_buf_append(&nt->all, s, n);
	if (is_last) {
		if (nt->last.len) br_buf_append_byte(&nt->last, ' ');
		br_buf_append(&nt->last, s, n);
	}
}

/* Text of an Anthropic/Nova content value: a string, or blocks with "text". */
static void content_text(native *nt, const json *c, int is_last)
{
	if (!c) return;
	if (c->type == JSON_STRING) { add_text(nt, c->str, c->len, is_last); return; }
	for (size_t i = 0; c->type == JSON_ARRAY && i < c->len; i++) {
		const json *t = json_get(&c->items[i], "text");
		if (t && t->type == JSON_STRING) add_text(nt, t->str, t->len, is_last);
		const json *inner = json_get(&c->items[i], "content");   /* tool_result */
		if (inner) content_text(nt, inner, 0);
	}
}

static void messages_text(native *nt, const json *msgs)
{
	size_t last_user = (size_t)-1;
	for (size_t i = 0; i < msgs->len; i++) {
		const char *role = json_get_str(&msgs->items[i], "role");
		if (role && !strcmp(role, "user")) last_user = i;
	}
	for (size_t i = 0; i < msgs->len; i++) content_text(nt, json_get(&msgs->items[i], "content"), i == last_user);
}

/* Fills err with the service's "Malformed input request" message; returns -1. */
static int malformed(char *err, size_t errlen, const char *fmt, const char *arg)
{
	char t[300];
	snprintf(t, sizeof t, fmt, arg);
	snprintf(err, errlen, "Malformed input request: %s, please reformat your input and try again.", t);
	return -1;
}

static int check_keys(const json *b, const char *const *allowed, const char *const *required, char *err, size_t errlen)
{
	for (size_t i = 0; required && required[i]; i++)
		if (!json_get(b, required[i])) return malformed(err, errlen, "#: required key [%s] not found", required[i]);
	for (size_t i = 0; allowed && i < b->len; i++) {
		int ok = 0;
		for (size_t k = 0; allowed[k] && !ok; k++) ok = !strcmp(allowed[k], b->keys[i]);
		if (!ok) return malformed(err, errlen, "#: extraneous key [%s] is not permitted", b->keys[i]);
	}
	return 0;
}

static int get_int(const json *v, long long *out, const char *name, char *err, size_t errlen)
{
	if (!v) return 0;
	if (!json_int(v, out)) return malformed(err, errlen, "#/%s: expected type: Integer", name);
	return 0;
}

static int need_array(const json *v, const char *name, char *err, size_t errlen)
{
	if (!v || v->type != JSON_ARRAY) return malformed(err, errlen, "#/%s: expected type: JSONArray", name);
	return 0;
}

static int need_string(const json *v, const char *name, char *err, size_t errlen)
{
	if (!v || v->type != JSON_STRING) return malformed(err, errlen, "#/%s: expected type: String", name);
	return 0;
}

/* Parses and checks a body for the family; 0, or -1 with err filled. */
static int native_parse(native *nt, const char *model_id, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	memset(nt, 0, sizeof *nt);
	nt->max = -1;
	nt->normalize = 1;
	nt->fam = family_of(model_id);
	char jerr[200];
	nt->body = json_parse((const char *)p, n, jerr, sizeof jerr);
	if (!nt->body) return malformed(err, errlen, "%s", jerr);
	const json *b = nt->body;
	if (b->type != JSON_OBJECT) return malformed(err, errlen, "%s", "#: expected type: JSONObject");
	switch (nt->fam) {
	case F_ANTHROPIC: {
		static const char *const allowed[] = {"anthropic_version", "max_tokens", "messages", "system",
			"stop_sequences", "temperature", "top_p", "top_k", "tools", "tool_choice", "metadata",
			"thinking", "anthropic_beta", NULL};
		static const char *const req[] = {"anthropic_version", "max_tokens", "messages", NULL};
		if (check_keys(b, allowed, req, err, errlen)) return -1;
		if (need_array(json_get(b, "messages"), "messages", err, errlen)) return -1;
		if (get_int(json_get(b, "max_tokens"), &nt->max, "max_tokens", err, errlen)) return -1;
		const json *sys = json_get(b, "system");
		if (sys) content_text(nt, sys, 0);
		messages_text(nt, json_get(b, "messages"));
		nt->stops = json_get(b, "stop_sequences");
		break;
	}
	case F_TITAN_TEXT: {
		static const char *const allowed[] = {"inputText", "textGenerationConfig", NULL};
		static const char *const req[] = {"inputText", NULL};
		if (check_keys(b, allowed, req, err, errlen)) return -1;
		if (need_string(json_get(b, "inputText"), "inputText", err, errlen)) return -1;
		const json *t = json_get(b, "inputText");
		add_text(nt, t->str, t->len, 1);
		const json *cfg = json_get(b, "textGenerationConfig");
		if (get_int(json_get(cfg, "maxTokenCount"), &nt->max, "textGenerationConfig/maxTokenCount", err, errlen)) return -1;
		nt->stops = json_get(cfg, "stopSequences");
		break;
	}
	case F_TITAN_EMBED: {
		static const char *const allowed[] = {"inputText", "dimensions", "normalize", "embeddingTypes", "inputImage", "embeddingConfig", NULL};
		static const char *const req[] = {"inputText", NULL};
		if (check_keys(b, allowed, req, err, errlen)) return -1;
		if (need_string(json_get(b, "inputText"), "inputText", err, errlen)) return -1;
		const json *t = json_get(b, "inputText");
		add_text(nt, t->str, t->len, 1);
		nt->dims = 1024;
		if (get_int(json_get(b, "dimensions"), &nt->dims, "dimensions", err, errlen)) return -1;
		if (nt->dims != 256 && nt->dims != 384 && nt->dims != 512 && nt->dims != 1024 && nt->dims != 1536)
			return malformed(err, errlen, "%s", "#/dimensions: must be one of 256, 512, 1024");
		const json *nm = json_get(b, "normalize");
		if (nm) nt->normalize = nm->type == JSON_TRUE;
		break;
	}
	case F_NOVA: {
		static const char *const allowed[] = {"schemaVersion", "messages", "system", "inferenceConfig", "toolConfig", NULL};
		static const char *const req[] = {"messages", NULL};
		if (check_keys(b, allowed, req, err, errlen)) return -1;
		if (need_array(json_get(b, "messages"), "messages", err, errlen)) return -1;
		const json *sys = json_get(b, "system");
		if (sys) content_text(nt, sys, 0);
		messages_text(nt, json_get(b, "messages"));
		const json *ic = json_get(b, "inferenceConfig");
		const json *mx = json_get(ic, "max_new_tokens") ? json_get(ic, "max_new_tokens") : json_get(ic, "maxTokens");
		if (get_int(mx, &nt->max, "inferenceConfig/max_new_tokens", err, errlen)) return -1;
		nt->stops = json_get(ic, "stopSequences");
		break;
	}
	case F_META: {
		static const char *const allowed[] = {"prompt", "max_gen_len", "temperature", "top_p", "images", NULL};
		static const char *const req[] = {"prompt", NULL};
		if (check_keys(b, allowed, req, err, errlen)) return -1;
		if (need_string(json_get(b, "prompt"), "prompt", err, errlen)) return -1;
		const json *t = json_get(b, "prompt");
		add_text(nt, t->str, t->len, 1);
		if (get_int(json_get(b, "max_gen_len"), &nt->max, "max_gen_len", err, errlen)) return -1;
		break;
	}
	case F_MISTRAL: {
		static const char *const allowed[] = {"prompt", "messages", "max_tokens", "stop", "temperature", "top_p", "top_k", "tools", "tool_choice", NULL};
		if (check_keys(b, allowed, NULL, err, errlen)) return -1;
		const json *t = json_get(b, "prompt");
		if (t) {
			if (need_string(t, "prompt", err, errlen)) return -1;
			add_text(nt, t->str, t->len, 1);
		} else if (json_get(b, "messages")) {
			if (need_array(json_get(b, "messages"), "messages", err, errlen)) return -1;
			messages_text(nt, json_get(b, "messages"));
		} else {
			return malformed(err, errlen, "%s", "#: required key [prompt] not found");
		}
		if (get_int(json_get(b, "max_tokens"), &nt->max, "max_tokens", err, errlen)) return -1;
		nt->stops = json_get(b, "stop");
		break;
	}
	case F_COHERE_CMD: {
		static const char *const req[] = {"message", NULL};
		if (check_keys(b, NULL, req, err, errlen)) return -1;
		if (need_string(json_get(b, "message"), "message", err, errlen)) return -1;
		const json *t = json_get(b, "message");
		add_text(nt, t->str, t->len, 1);
		if (get_int(json_get(b, "max_tokens"), &nt->max, "max_tokens", err, errlen)) return -1;
		nt->stops = json_get(b, "stop_sequences");
		break;
	}
	case F_COHERE_EMBED: {
		static const char *const allowed[] = {"texts", "input_type", "truncate", "embedding_types", "images", NULL};
		static const char *const req[] = {"input_type", NULL};
		if (check_keys(b, allowed, req, err, errlen)) return -1;
		const json *ts = json_get(b, "texts");
		if (need_array(ts, "texts", err, errlen)) return -1;
		for (size_t i = 0; i < ts->len; i++) {
			if (need_string(&ts->items[i], "texts", err, errlen)) return -1;
			add_text(nt, ts->items[i].str, ts->items[i].len, i == 0);
		}
		nt->dims = 1024;
		break;
	}
	case F_NONE:
		break;
	}
	if (nt->stops && nt->stops->type != JSON_ARRAY) nt->stops = NULL;
	br_buf_append_byte(&nt->last, 0);
	nt->last.len--;
	return 0;
}

static void native_free(native *nt)
{
	json_free(nt->body);
	br_buf_free(&nt->all);
	br_buf_free(&nt->last);
}

long ops_invoke_input_tokens(const char *model_id, const uint8_t *body, size_t n)
{
	native nt;
	char err[400];
	long t = -1;
	if (!native_parse(&nt, model_id, body, n, err, sizeof err)) t = (long)ops_tokens((const char *)nt.all.data, nt.all.len);
	native_free(&nt);
	return t;
}

/* ---- the reply ---- */

typedef struct {
	br_buf text;
	const char *stop;         /* "end", "length" or "stop" (mapped per family) */
	const char *stop_seq;     /* the stop sequence that matched, or NULL */
	size_t in_tok, out_tok;
	int guard_blocked;
	int guarded;
	emu_guard g;
} answer;

static void make_answer(answer *a, native *nt, const emu_request *rq)
{
	memset(a, 0, sizeof *a);
	emu_guard_init(&a->g);
	a->stop = "end";
	a->in_tok = ops_tokens((const char *)nt->all.data, nt->all.len);
	const char *gid = emu_request_header(rq, "x-amzn-bedrock-guardrailidentifier");
	if (gid && *gid) {
		a->guarded = 1;
		emu_guard_scan(&a->g, (const char *)nt->last.data, nt->last.len, NULL);
		if (a->g.blocked) {
			a->guard_blocked = 1;
			br_buf_append_str(&a->text, EMU_GUARD_BLOCKED_MESSAGE);
			a->out_tok = ops_tokens((const char *)a->text.data, a->text.len);
			return;
		}
	}
	br_buf_append_str(&a->text, "You said: ");
	br_buf_append(&a->text, nt->last.data, nt->last.len);
	size_t cut = a->text.len;
	for (size_t i = 0; nt->stops && i < nt->stops->len; i++) {
		const json *s = &nt->stops->items[i];
		if (s->type != JSON_STRING || !s->len) continue;
		for (size_t k = 0; k + s->len <= cut; k++)
			if (!memcmp(a->text.data + k, s->str, s->len)) { cut = k; a->stop = "stop"; a->stop_seq = s->str; break; }
	}
	a->text.len = cut;
	if (nt->max > 0 && ops_tokens((const char *)a->text.data, a->text.len) > (size_t)nt->max) {
		a->text.len = ops_token_prefix((const char *)a->text.data, a->text.len, (size_t)nt->max);
		while (a->text.len && a->text.data[a->text.len - 1] == ' ') a->text.len--;
		a->stop = "length";
		a->stop_seq = NULL;
	}
	a->out_tok = ops_tokens((const char *)a->text.data, a->text.len);
}

static const char *stop_name(family f, const answer *a)
{
	int end = !strcmp(a->stop, "end"), len = !strcmp(a->stop, "length");
	switch (f) {
	case F_ANTHROPIC: return end ? "end_turn" : len ? "max_tokens" : "stop_sequence";
	case F_TITAN_TEXT: return end ? "FINISH" : len ? "LENGTH" : "STOP_CRITERIA_MET";
	case F_NOVA: return end ? "end_turn" : len ? "max_tokens" : "stop_sequence";
	case F_META: case F_MISTRAL: return len ? "length" : "stop";
	case F_COHERE_CMD: return len ? "MAX_TOKENS" : "COMPLETE";
	default: return "end";
	}
}

/* Deterministic id from the text (FNV-1a). */
static void hex_id(char *out, size_t n, const char *prefix, const void *p, size_t len)
{
	unsigned long long h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ULL;
	snprintf(out, n, "%s%016llx%08llx", prefix, h, (h >> 17) & 0xffffffffULL);
}

static void anthropic_model_name(char *out, size_t n, const char *model_id)
{
	const char *b = ops_model_base(model_id);
	if (!strncmp(b, "anthropic.", 10)) b += 10;
	snprintf(out, n, "%s", b);
	char *v = strstr(out, "-v");
	while (v) {   /* drop a "-v1:0" style suffix */
		char *c = v + 2;
		while (*c >= '0' && *c <= '9') c++;
		if (c > v + 2 && (*c == ':' || !*c)) { *v = 0; break; }
		v = strstr(v + 2, "-v");
	}
}

static void guard_fields(json_writer *w, const answer *a, const emu_request *rq)
{
	if (!a->guarded) return;
	jw_kstr(w, "amazon-bedrock-guardrailAction", a->g.blocked || a->g.anonymized ? "INTERVENED" : "NONE");
	const char *tr = emu_request_header(rq, "x-amzn-bedrock-trace");
	if (tr && (!strcmp(tr, "ENABLED") || !strcmp(tr, "ENABLED_FULL"))) {
		const char *gid = emu_request_header(rq, "x-amzn-bedrock-guardrailidentifier");
		const char *ver = emu_request_header(rq, "x-amzn-bedrock-guardrailversion");
		jw_key(w, "amazon-bedrock-trace");
		jw_obj(w);
		jw_key(w, "guardrail");
		jw_obj(w);
		jw_key(w, "input");
		jw_obj(w);
		jw_key(w, gid);
		emu_guard_write_assessment(w, &a->g, gid, ver ? ver : "DRAFT", ops_region(rq));
		jw_obj_end(w);
		jw_obj_end(w);
		jw_obj_end(w);
	}
}

static void metrics(json_writer *w, const answer *a)
{
	jw_key(w, "amazon-bedrock-invocationMetrics");
	jw_obj(w);
	jw_kint(w, "inputTokenCount", (long long)a->in_tok);
	jw_kint(w, "outputTokenCount", (long long)a->out_tok);
	jw_kint(w, "invocationLatency", LATENCY_MS);
	jw_kint(w, "firstByteLatency", FIRST_BYTE_MS);
	jw_obj_end(w);
}

/* Deterministic embedding: an LCG seeded by the text, unit length when normalize. */
static void embedding(json_writer *w, const br_buf *text, long long dims, int normalize)
{
	unsigned long long h = 1469598103934665603ULL;
	for (size_t i = 0; i < text->len; i++) h = (h ^ text->data[i]) * 1099511628211ULL;
	double *v = malloc((size_t)dims * sizeof *v), sum = 0;
	if (!v) { jw_arr(w); jw_arr_end(w); return; }
	for (long long i = 0; i < dims; i++) {
		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (double)(h >> 11) / 9007199254740992.0 * 2.0 - 1.0;
		sum += v[i] * v[i];
	}
	double k = normalize && sum > 0 ? 1.0 / sqrt(sum) : 1.0;
	jw_arr(w);
	for (long long i = 0; i < dims; i++) {
		char t[32];
		int n = snprintf(t, sizeof t, "%.6f", v[i] * k);
		jw_raw(w, t, (size_t)n);
	}
	jw_arr_end(w);
	free(v);
}

static void write_body(json_writer *w, native *nt, answer *a, const char *model_id, const emu_request *rq)
{
	const char *txt = a->text.data ? (const char *)a->text.data : "";
	char id[64];
	switch (nt->fam) {
	case F_ANTHROPIC: {
		char model[128];
		anthropic_model_name(model, sizeof model, model_id);
		hex_id(id, sizeof id, "msg_bdrk_", nt->all.data, nt->all.len);
		jw_obj(w);
		jw_kstr(w, "id", id);
		jw_kstr(w, "type", "message");
		jw_kstr(w, "role", "assistant");
		jw_kstr(w, "model", model);
		jw_key(w, "content");
		jw_arr(w); jw_obj(w); jw_kstr(w, "type", "text"); jw_key(w, "text"); jw_strn(w, txt, a->text.len); jw_obj_end(w); jw_arr_end(w);
		jw_kstr(w, "stop_reason", stop_name(nt->fam, a));
		jw_key(w, "stop_sequence");
		if (a->stop_seq) jw_str(w, a->stop_seq); else jw_null(w);
		jw_key(w, "usage");
		jw_obj(w);
		jw_kint(w, "input_tokens", (long long)a->in_tok);
		jw_kint(w, "output_tokens", (long long)a->out_tok);
		jw_obj_end(w);
		guard_fields(w, a, rq);
		jw_obj_end(w);
		break;
	}
	case F_TITAN_TEXT:
		jw_obj(w);
		jw_kint(w, "inputTextTokenCount", (long long)a->in_tok);
		jw_key(w, "results");
		jw_arr(w);
		jw_obj(w);
		jw_kint(w, "tokenCount", (long long)a->out_tok);
		jw_key(w, "outputText"); jw_strn(w, txt, a->text.len);
		jw_kstr(w, "completionReason", stop_name(nt->fam, a));
		jw_obj_end(w);
		jw_arr_end(w);
		guard_fields(w, a, rq);
		jw_obj_end(w);
		break;
	case F_TITAN_EMBED:
		jw_obj(w);
		jw_key(w, "embedding");
		embedding(w, &nt->last, nt->dims, nt->normalize);
		jw_kint(w, "inputTextTokenCount", (long long)a->in_tok);
		jw_obj_end(w);
		break;
	case F_COHERE_EMBED: {
		const json *ts = json_get(nt->body, "texts");
		hex_id(id, sizeof id, "", nt->all.data, nt->all.len);
		jw_obj(w);
		jw_key(w, "embeddings");
		jw_arr(w);
		for (size_t i = 0; i < ts->len; i++) {
			br_buf one = BR_BUF_INIT;
			br_buf_append(&one, ts->items[i].str, ts->items[i].len);
			embedding(w, &one, nt->dims, 1);
			br_buf_free(&one);
		}
		jw_arr_end(w);
		jw_kstr(w, "id", id);
		jw_kstr(w, "response_type", "embeddings_floats");
		jw_key(w, "texts");
		jw_value(w, ts);
		jw_obj_end(w);
		break;
	}
	case F_NOVA:
		jw_obj(w);
		jw_key(w, "output"); jw_obj(w); jw_key(w, "message"); jw_obj(w);
		jw_key(w, "content"); jw_arr(w); jw_obj(w); jw_key(w, "text"); jw_strn(w, txt, a->text.len); jw_obj_end(w); jw_arr_end(w);
		jw_kstr(w, "role", "assistant");
		jw_obj_end(w); jw_obj_end(w);
		jw_kstr(w, "stopReason", stop_name(nt->fam, a));
		jw_key(w, "usage");
		jw_obj(w);
		jw_kint(w, "inputTokens", (long long)a->in_tok);
		jw_kint(w, "outputTokens", (long long)a->out_tok);
		jw_kint(w, "totalTokens", (long long)(a->in_tok + a->out_tok));
		jw_kint(w, "cacheReadInputTokenCount", 0);
		jw_kint(w, "cacheWriteInputTokenCount", 0);
		jw_obj_end(w);
		guard_fields(w, a, rq);
		jw_obj_end(w);
		break;
	case F_META:
		jw_obj(w);
		jw_key(w, "generation"); jw_strn(w, txt, a->text.len);
		jw_kint(w, "prompt_token_count", (long long)a->in_tok);
		jw_kint(w, "generation_token_count", (long long)a->out_tok);
		jw_kstr(w, "stop_reason", stop_name(nt->fam, a));
		guard_fields(w, a, rq);
		jw_obj_end(w);
		break;
	case F_MISTRAL:
		jw_obj(w);
		jw_key(w, "outputs"); jw_arr(w); jw_obj(w);
		jw_key(w, "text"); jw_strn(w, txt, a->text.len);
		jw_kstr(w, "stop_reason", stop_name(nt->fam, a));
		jw_obj_end(w); jw_arr_end(w);
		guard_fields(w, a, rq);
		jw_obj_end(w);
		break;
	case F_COHERE_CMD:
		hex_id(id, sizeof id, "", nt->all.data, nt->all.len);
		jw_obj(w);
		jw_kstr(w, "response_id", id);
		jw_key(w, "text"); jw_strn(w, txt, a->text.len);
		jw_kstr(w, "generation_id", id);
		jw_key(w, "chat_history"); jw_arr(w); jw_arr_end(w);
		jw_kstr(w, "finish_reason", stop_name(nt->fam, a));
		guard_fields(w, a, rq);
		jw_obj_end(w);
		break;
	case F_NONE:
		jw_obj(w); jw_obj_end(w);
		break;
	}
}

/* ---- streaming: each model chunk becomes {"bytes": base64, "p": padding} ----
 *
 * The chunks are encoded a few at a time as the server asks for them (a producer, see
 * emu.h). Every family's stream is the same shape: a fixed number of head chunks, one
 * chunk per piece of the text (a `while` loop, or a `do … while` that sends one chunk even
 * for an empty text), a fixed number of tail chunks. */

typedef struct {
	native nt;
	answer a;
	char *model_id;
	emu_request *rq;          /* ops_request_copy */
	br_buf chunk, outer, frame;
	unsigned seq;
	int phase;                /* 0 head, 1 text, 2 tail, 3 done */
	int k;                    /* head/tail: chunks sent of the phase */
	size_t i;                 /* text: offset of the next piece */
	size_t tok;               /* text: tokens of the text before offset i */
	int started;              /* text: a chunk was sent */
} invoke_stream;

static void invoke_stream_free(void *p)
{
	invoke_stream *s = p;
	br_buf_free(&s->a.text);
	emu_guard_free(&s->a.g);
	native_free(&s->nt);
	free(s->model_id);
	free(s->rq);
	br_buf_free(&s->chunk);
	br_buf_free(&s->outer);
	br_buf_free(&s->frame);
	free(s);
}

/* Wraps s->chunk into a "chunk" event appended to rs: 0, or -1 out of memory. */
static int send_chunk(invoke_stream *s, emu_response *rs)
{
	br_buf_reset(&s->outer);
	br_buf_append_str(&s->outer, "{\"bytes\":\"");
	emu_b64_encode(s->chunk.data, s->chunk.len, &s->outer);
	br_buf_append_str(&s->outer, "\"");
	json_writer w;
	jw_init(&w, &s->outer);
	w.depth = 1;
	w.count[1] = 1;
	ops_padding(&w, s->seq++);
	br_buf_append_byte(&s->outer, '}');
	int rc = ops_add_event(rs, &s->frame, "chunk", s->outer.data, s->outer.len);
	br_buf_reset(&s->chunk);
	return rc ? -1 : 0;
}

static size_t piece_end(const uint8_t *t, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && t[j] == ' ') j++;
	while (j < n && t[j] != ' ') j++;
	return j;
}

/* Head chunk k of the family into w; 0 when it has no such chunk. */
static int head_chunk(invoke_stream *s, json_writer *w, int k)
{
	const answer *a = &s->a;
	if (s->nt.fam == F_ANTHROPIC && k == 0) {
		char model[128], id[64];
		anthropic_model_name(model, sizeof model, s->model_id);
		hex_id(id, sizeof id, "msg_bdrk_", s->nt.all.data, s->nt.all.len);
		jw_obj(w); jw_kstr(w, "type", "message_start"); jw_key(w, "message"); jw_obj(w);
		jw_kstr(w, "id", id); jw_kstr(w, "type", "message"); jw_kstr(w, "role", "assistant");
		jw_kstr(w, "model", model); jw_key(w, "content"); jw_arr(w); jw_arr_end(w);
		jw_key(w, "stop_reason"); jw_null(w); jw_key(w, "stop_sequence"); jw_null(w);
		jw_key(w, "usage"); jw_obj(w); jw_kint(w, "input_tokens", (long long)a->in_tok); jw_kint(w, "output_tokens", 1); jw_obj_end(w);
		jw_obj_end(w); jw_obj_end(w);
		return 1;
	}
	if (s->nt.fam == F_ANTHROPIC && k == 1) {
		jw_obj(w); jw_kstr(w, "type", "content_block_start"); jw_kint(w, "index", 0);
		jw_key(w, "content_block"); jw_obj(w); jw_kstr(w, "type", "text"); jw_kstr(w, "text", ""); jw_obj_end(w);
		jw_obj_end(w);
		return 1;
	}
	if (s->nt.fam == F_NOVA && k == 0) {
		jw_obj(w); jw_key(w, "messageStart"); jw_obj(w); jw_kstr(w, "role", "assistant"); jw_obj_end(w); jw_obj_end(w);
		return 1;
	}
	return 0;
}

/* The chunk of the text's next piece into w (advancing s->i); 0 when the text is done. */
static int text_chunk(invoke_stream *s, json_writer *w)
{
	const answer *a = &s->a;
	family fam = s->nt.fam;
	const char *txt = a->text.data ? (const char *)a->text.data : "";
	size_t n = a->text.len, i = s->i, j;
	int at_least_once = fam == F_TITAN_TEXT || fam == F_META || fam == F_MISTRAL || fam == F_COHERE_CMD;
	if (i >= n && !(at_least_once && !s->started)) return 0;
	int first = !s->started;
	s->started = 1;
	switch (fam) {
	case F_ANTHROPIC:
		j = piece_end(a->text.data, n, i);
		jw_obj(w); jw_kstr(w, "type", "content_block_delta"); jw_kint(w, "index", 0);
		jw_key(w, "delta"); jw_obj(w); jw_kstr(w, "type", "text_delta"); jw_key(w, "text"); jw_strn(w, txt + i, j - i); jw_obj_end(w);
		jw_obj_end(w);
		break;
	case F_TITAN_TEXT: {
		/* chunks of up to 8 words; the last carries the totals and the metrics */
		j = i;
		for (int k = 0; k < 8 && j < n; k++) j = piece_end(a->text.data, n, j);
		int last = j >= n;
		jw_obj(w);
		jw_key(w, "outputText"); jw_strn(w, txt + i, j - i);
		jw_kint(w, "index", 0);
		jw_key(w, "totalOutputTextTokenCount"); if (last) jw_int(w, (long long)a->out_tok); else jw_null(w);
		jw_key(w, "completionReason"); if (last) jw_str(w, stop_name(fam, a)); else jw_null(w);
		jw_key(w, "inputTextTokenCount"); if (first) jw_int(w, (long long)a->in_tok); else jw_null(w);
		if (last) { metrics(w, a); guard_fields(w, a, s->rq); }
		jw_obj_end(w);
		break;
	}
	case F_NOVA:
		j = piece_end(a->text.data, n, i);
		jw_obj(w); jw_key(w, "contentBlockDelta"); jw_obj(w);
		jw_key(w, "delta"); jw_obj(w); jw_key(w, "text"); jw_strn(w, txt + i, j - i); jw_obj_end(w);
		jw_kint(w, "contentBlockIndex", 0);
		jw_obj_end(w); jw_obj_end(w);
		break;
	default: { /* F_META, F_MISTRAL, F_COHERE_CMD */
		j = piece_end(a->text.data, n, i);
		int last = j >= n;
		jw_obj(w);
		if (fam == F_META) {
			jw_key(w, "generation"); jw_strn(w, txt + i, j - i);
			jw_kint(w, "prompt_token_count", i == 0 ? (long long)a->in_tok : 0);
			/* the tokens of txt[0, j): a piece ends at a space or at the end, where
			 * no token crosses, so counting the piece alone adds up to the same */
			s->tok += ops_tokens(txt + i, j - i);
			jw_kint(w, "generation_token_count", (long long)s->tok);
			jw_key(w, "stop_reason"); if (last) jw_str(w, stop_name(fam, a)); else jw_null(w);
		} else if (fam == F_MISTRAL) {
			jw_key(w, "outputs"); jw_arr(w); jw_obj(w);
			jw_key(w, "text"); jw_strn(w, txt + i, j - i);
			jw_key(w, "stop_reason"); if (last) jw_str(w, stop_name(fam, a)); else jw_null(w);
			jw_obj_end(w); jw_arr_end(w);
		} else {
			jw_key(w, "is_finished"); jw_bool(w, 0);
			jw_kstr(w, "event_type", "text-generation");
			jw_key(w, "text"); jw_strn(w, txt + i, j - i);
		}
		if (last && fam != F_COHERE_CMD) { metrics(w, a); guard_fields(w, a, s->rq); }
		jw_obj_end(w);
		break;
	}
	}
	s->i = j;
	return 1;
}

/* Tail chunk k of the family into w; 0 when it has no such chunk. */
static int tail_chunk(invoke_stream *s, json_writer *w, int k)
{
	answer *a = &s->a;
	family fam = s->nt.fam;
	if (fam == F_ANTHROPIC && k == 0) {
		jw_obj(w); jw_kstr(w, "type", "content_block_stop"); jw_kint(w, "index", 0); jw_obj_end(w);
	} else if (fam == F_ANTHROPIC && k == 1) {
		jw_obj(w); jw_kstr(w, "type", "message_delta");
		jw_key(w, "delta"); jw_obj(w); jw_kstr(w, "stop_reason", stop_name(fam, a));
		jw_key(w, "stop_sequence"); if (a->stop_seq) jw_str(w, a->stop_seq); else jw_null(w); jw_obj_end(w);
		jw_key(w, "usage"); jw_obj(w); jw_kint(w, "output_tokens", (long long)a->out_tok); jw_obj_end(w);
		jw_obj_end(w);
	} else if (fam == F_ANTHROPIC && k == 2) {
		jw_obj(w); jw_kstr(w, "type", "message_stop"); metrics(w, a); guard_fields(w, a, s->rq); jw_obj_end(w);
	} else if (fam == F_NOVA && k == 0) {
		jw_obj(w); jw_key(w, "contentBlockStop"); jw_obj(w); jw_kint(w, "contentBlockIndex", 0); jw_obj_end(w); jw_obj_end(w);
	} else if (fam == F_NOVA && k == 1) {
		jw_obj(w); jw_key(w, "messageStop"); jw_obj(w); jw_kstr(w, "stopReason", stop_name(fam, a)); jw_obj_end(w); jw_obj_end(w);
	} else if (fam == F_NOVA && k == 2) {
		jw_obj(w); jw_key(w, "metadata"); jw_obj(w); jw_key(w, "usage"); jw_obj(w);
		jw_kint(w, "inputTokens", (long long)a->in_tok); jw_kint(w, "outputTokens", (long long)a->out_tok);
		jw_obj_end(w); jw_obj_end(w);
		metrics(w, a); guard_fields(w, a, s->rq);
		jw_obj_end(w);
	} else if (fam == F_COHERE_CMD && k == 0) {
		jw_obj(w);
		jw_key(w, "is_finished"); jw_bool(w, 1);
		jw_kstr(w, "event_type", "stream-end");
		jw_kstr(w, "finish_reason", stop_name(fam, a));
		jw_key(w, "response");
		write_body(w, &s->nt, a, s->model_id, s->rq);
		metrics(w, a);
		jw_obj_end(w);
	} else {
		return 0;
	}
	return 1;
}

static int invoke_produce(void *p, emu_response *rs)
{
	invoke_stream *s = p;
	for (int sent = 0; sent < OPS_PRODUCE_EVENTS;) {
		json_writer w;
		int got;
		jw_init(&w, &s->chunk);
		switch (s->phase) {
		case 0: got = head_chunk(s, &w, s->k); break;
		case 1: got = text_chunk(s, &w); break;
		case 2: got = tail_chunk(s, &w, s->k); break;
		default: return 0;
		}
		if (!got) {
			s->phase++;
			s->k = 0;
			continue;
		}
		if (s->phase != 1) s->k++;
		if (send_chunk(s, rs) != 0) return -1;
		sent++;
	}
	return 1;
}

/* Makes rs the stream of the answer: takes nt and a over (emptied on return) on success;
 * on failure (out of memory) leaves them to the caller and fills rs with the error. */
static void write_stream(native *nt, answer *a, const char *model_id, const emu_request *rq, emu_response *rs)
{
	invoke_stream *s = calloc(1, sizeof *s);
	char *mid = s ? strdup(model_id) : NULL;
	emu_request *copy = mid ? ops_request_copy(rq) : NULL;
	if (!copy) {
		free(mid);
		free(s);
		emu_response_error(rs, 500, "InternalServerException", "The emulator ran out of memory encoding the stream.");
		return;
	}
	s->nt = *nt;
	memset(nt, 0, sizeof *nt);
	s->a = *a;
	memset(a, 0, sizeof *a);
	s->model_id = mid;
	s->rq = copy;
	emu_response_set_producer(rs, invoke_produce, s, invoke_stream_free);
	emu_response_add_header(rs, "Content-Type", "application/vnd.amazon.eventstream");
	emu_response_add_header(rs, "X-Amzn-Bedrock-Content-Type", "application/json");
}

/* Checks an enum-valued header; 0 when absent or valid. */
static int header_enum(const emu_request *rq, emu_response *rs, const char *name, const char *member,
		       const char *const *values, const char **out)
{
	const char *v = emu_request_header(rq, name);
	*out = v;
	if (!v) return 0;
	for (size_t i = 0; values[i]; i++)
		if (!strcmp(v, values[i])) return 0;
	br_buf set = BR_BUF_INIT;
	for (size_t i = 0; values[i]; i++) {
		if (i) br_buf_append_str(&set, ", ");
		br_buf_append_str(&set, values[i]);
	}
	br_buf_append_byte(&set, 0);
	emu_response_error(rs, 400, "ValidationException",
		"1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
		v, member, (char *)set.data);
	br_buf_free(&set);
	return -1;
}

/* X-Amzn-Bedrock-Request-Metadata (requestMetadata): at most 8500 characters (the
 * model), and a JSON object whose values are strings (what the service documents).
 * 0 when absent or valid. */
static int check_request_metadata(const emu_request *rq, emu_response *rs)
{
	const char *v = emu_request_header(rq, "x-amzn-bedrock-request-metadata");
	if (!v) return 0;
	size_t n = strlen(v), chars = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)v[i] & 0xc0) != 0x80) chars++;
	if (chars > 8500) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value at 'requestMetadata' failed to satisfy constraint: Member must have length less than or equal to 8500");
		return -1;
	}
	char err[120];
	json *md = json_parse(v, n, err, sizeof err);
	int ok = md && md->type == JSON_OBJECT;
	for (size_t i = 0; ok && i < md->len; i++) ok = md->items[i].type == JSON_STRING;
	json_free(md);
	if (!ok) {
		emu_response_error(rs, 400, "ValidationException",
			"The X-Amzn-Bedrock-Request-Metadata header must be a JSON object whose values are strings.");
		return -1;
	}
	return 0;
}

void ops_invoke(const emu_request *rq, emu_response *rs, const char *model_id, int stream)
{
	static const char *const trace_v[] = {"ENABLED", "DISABLED", "ENABLED_FULL", NULL};
	static const char *const lat_v[] = {"standard", "optimized", NULL};
	static const char *const tier_v[] = {"priority", "default", "flex", "reserved", NULL};
	const char *trace, *lat, *tier;
	if (header_enum(rq, rs, "x-amzn-bedrock-trace", "trace", trace_v, &trace) ||
	    header_enum(rq, rs, "x-amzn-bedrock-performanceconfig-latency", "performanceConfigLatency", lat_v, &lat) ||
	    header_enum(rq, rs, "x-amzn-bedrock-service-tier", "serviceTier", tier_v, &tier) ||
	    check_request_metadata(rq, rs))
		return;
	const char *gid = emu_request_header(rq, "x-amzn-bedrock-guardrailidentifier");
	const char *gver = emu_request_header(rq, "x-amzn-bedrock-guardrailversion");
	if ((gid && *gid) != (gver && *gver)) {
		emu_response_error(rs, 400, "ValidationException",
			"Guardrail identifier and guardrail version must both be provided, or neither.");
		return;
	}
	if (rq->body_len > 25000000) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length less than or equal to 25000000");
		return;
	}
	native nt;
	char err[400];
	if (native_parse(&nt, model_id, rq->body, rq->body_len, err, sizeof err)) {
		native_free(&nt);
		emu_response_error(rs, 400, "ValidationException", "%s", err);
		return;
	}
	if (stream && (nt.fam == F_TITAN_EMBED || nt.fam == F_COHERE_EMBED)) {
		native_free(&nt);
		emu_response_error(rs, 400, "ValidationException", "The model is unsupported for streaming.");
		return;
	}
	answer a;
	make_answer(&a, &nt, rq);
	if (stream) {
		write_stream(&nt, &a, model_id, rq, rs);
	} else {
		json_writer w;
		jw_init(&w, &rs->body);
		write_body(&w, &nt, &a, model_id, rq);
		const char *accept = emu_request_header(rq, "accept");
		emu_response_add_header(rs, "Content-Type", accept && *accept && strcmp(accept, "*/*") ? accept : "application/json");
	}
	if (rs->status == 200) {
		if (lat) emu_response_add_header(rs, "X-Amzn-Bedrock-PerformanceConfig-Latency", lat);
		if (tier) emu_response_add_header(rs, "X-Amzn-Bedrock-Service-Tier", tier);
	}
	br_buf_free(&a.text);
	emu_guard_free(&a.g);
	native_free(&nt);
}
