/* Converse and ConverseStream: POST /model/{modelId}/converse[-stream]. The reply is
 * derived from the input by the rules in docs/emulator.md ("Deterministic behaviour"). */
#include "ops.h"
#include "guardrail.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_WORDS_MAX 2000000L
#define PLAN_CALLS_MAX 16      /* toolUse blocks in one planned turn */
#define TOOL_PLAN "__tool_plan "
#define LATENCY_MS 100

/* Fixed token costs of non-text blocks. */
#define TOK_IMAGE 100
#define TOK_DOCUMENT 100
#define TOK_VIDEO 200
#define TOK_AUDIO 100

typedef struct {
	const char *name;        /* borrowed from the request (or its tool plan) */
	char id[32];
	br_buf input;            /* JSON text of the tool input */
} tool_call;

typedef struct {
	br_buf text;             /* text block 0 ("" when none) */
	int tool;                /* number of toolUse blocks that follow the text */
	tool_call calls[PLAN_CALLS_MAX];
	json *plan;              /* the parsed __tool_plan, owning the planned names */
	const char *stop;
	size_t in_tok, out_tok;
	const json *gcfg;        /* guardrailConfig, or NULL */
	int trace;               /* guardrail trace requested */
	emu_guard g;
} reply;

static size_t json_tokens(const json *v)
{
	br_buf t = BR_BUF_INIT;
	json_writer w;
	jw_init(&w, &t);
	jw_value(&w, v);
	size_t n = ops_tokens((const char *)t.data, t.len);
	br_buf_free(&t);
	return n;
}

static size_t block_tokens(const json *b)
{
	const json *x;
	size_t n = 0;
	if ((x = json_get(b, "text")) && x->type == JSON_STRING) n += ops_tokens(x->str, x->len);
	if (json_get(b, "image")) n += TOK_IMAGE;
	if (json_get(b, "document")) n += TOK_DOCUMENT;
	if (json_get(b, "video")) n += TOK_VIDEO;
	if (json_get(b, "audio")) n += TOK_AUDIO;
	if ((x = json_get(b, "json"))) n += json_tokens(x);
	if ((x = json_get(b, "toolUse"))) {
		const json *in = json_get(x, "input");
		if (in) n += json_tokens(in);
		const char *name = json_get_str(x, "name");
		if (name) n += ops_tokens(name, strlen(name));
	}
	if ((x = json_get(b, "toolResult"))) {
		const json *c = json_get(x, "content");
		for (size_t i = 0; c && i < c->len; i++) n += block_tokens(&c->items[i]);
	}
	if ((x = json_get(b, "guardContent"))) {
		const json *t = json_get(json_get(x, "text"), "text");
		if (t && t->type == JSON_STRING) n += ops_tokens(t->str, t->len);
		if (json_get(x, "image")) n += TOK_IMAGE;
	}
	if ((x = json_get(b, "reasoningContent"))) {
		const json *t = json_get(json_get(x, "reasoningText"), "text");
		if (t && t->type == JSON_STRING) n += ops_tokens(t->str, t->len);
	}
	if ((x = json_get(b, "toolAddition")) || (x = json_get(b, "toolRemoval"))) {
		const char *name = json_get_str(json_get(x, "tool"), "name");
		if (name) n += ops_tokens(name, strlen(name));
	}
	return n;
}

size_t ops_converse_input_tokens(const json *req)
{
	size_t n = 0;
	const json *sys = json_get(req, "system");
	for (size_t i = 0; sys && sys->type == JSON_ARRAY && i < sys->len; i++) n += block_tokens(&sys->items[i]);
	const json *msgs = json_get(req, "messages");
	for (size_t i = 0; msgs && msgs->type == JSON_ARRAY && i < msgs->len; i++) {
		const json *c = json_get(&msgs->items[i], "content");
		for (size_t k = 0; c && c->type == JSON_ARRAY && k < c->len; k++) n += block_tokens(&c->items[k]);
	}
	const json *tools = json_get(json_get(req, "toolConfig"), "tools");
	for (size_t i = 0; tools && tools->type == JSON_ARRAY && i < tools->len; i++) {
		const json *spec = json_get(&tools->items[i], "toolSpec");
		if (spec) n += json_tokens(spec);
	}
	return n;
}

/* The documented values of outputConfig.effort (the model only bounds its length). */
static const char *const effort_values[] = {"low", "medium", "high", "xhigh", "max", NULL};

/* The message-structure rules the service applies after shape validation. Messages with
 * the role "system" stand outside the user/assistant alternation: they may come anywhere
 * and are skipped when the order of the others is checked. */
static int check_messages(const json *body, emu_response *rs)
{
	const json *msgs = json_get(body, "messages");
	if (!msgs) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null");
		return -1;
	}
	if (!msgs->len) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value '[]' at 'messages' failed to satisfy constraint: Member must have length greater than or equal to 1");
		return -1;
	}
	const char *effort = json_get_str(json_get(body, "outputConfig"), "effort");
	if (effort) {
		size_t k = 0;
		while (effort_values[k] && strcmp(effort, effort_values[k])) k++;
		if (!effort_values[k]) {
			emu_response_error(rs, 400, "ValidationException",
				"1 validation error detected: Value '%s' at 'outputConfig.effort' failed to satisfy constraint: Member must satisfy enum value set: [low, medium, high, xhigh, max]", effort);
			return -1;
		}
	}
	int have_tools = json_get(body, "toolConfig") != NULL;
	for (size_t i = 0; i < msgs->len && !have_tools; i++) {
		const json *content = json_get(&msgs->items[i], "content");
		for (size_t k = 0; content && k < content->len; k++)
			if (json_get(&content->items[k], "toolAddition")) have_tools = 1;
	}
	const json *prev = NULL; /* the previous user or assistant message */
	for (size_t i = 0; i < msgs->len; i++) {
		const json *m = &msgs->items[i];
		const char *role = json_get_str(m, "role");
		const json *content = json_get(m, "content");
		int is_system = !strcmp(role, "system");
		if (!is_system && !prev && strcmp(role, "user")) {
			emu_response_error(rs, 400, "ValidationException",
				"A conversation must start with a user message. Try again with a conversation that starts with a user message.");
			return -1;
		}
		if (!is_system && prev && !strcmp(role, json_get_str(prev, "role"))) {
			emu_response_error(rs, 400, "ValidationException",
				"A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.");
			return -1;
		}
		if (!content->len) {
			emu_response_error(rs, 400, "ValidationException",
				"The content field in the Message object at messages.%zu is empty. Add a ContentBlock object to the content field and try again.", i);
			return -1;
		}
		for (size_t k = 0; k < content->len; k++) {
			const json *b = &content->items[k];
			const json *tu = json_get(b, "toolUse"), *tr = json_get(b, "toolResult");
			if (!is_system && (json_get(b, "toolAddition") || json_get(b, "toolRemoval"))) {
				emu_response_error(rs, 400, "ValidationException",
					"messages.%zu.content.%zu: toolAddition and toolRemoval blocks may only appear in system messages.", i, k);
				return -1;
			}
			if ((tu || tr) && !have_tools) {
				emu_response_error(rs, 400, "ValidationException",
					"The toolConfig field must be defined when using toolUse and toolResult content blocks.");
				return -1;
			}
			if (tu && strcmp(role, "assistant")) {
				emu_response_error(rs, 400, "ValidationException",
					"messages.%zu.content.%zu: toolUse blocks may only appear in assistant messages.", i, k);
				return -1;
			}
			if (!tr) continue;
			const char *id = json_get_str(tr, "toolUseId");
			int found = 0;
			const json *pc = prev ? json_get(prev, "content") : NULL;
			for (size_t j = 0; pc && j < pc->len && !found; j++) {
				const char *pid = json_get_str(json_get(&pc->items[j], "toolUse"), "toolUseId");
				found = pid && !strcmp(pid, id);
			}
			if (!found || strcmp(role, "user")) {
				emu_response_error(rs, 400, "ValidationException",
					"messages.%zu.content.%zu: the toolResult block's toolUseId '%s' does not match any toolUse block in the previous assistant message.", i, k, id);
				return -1;
			}
		}
		if (!is_system) prev = m;
	}
	if (!prev) {
		emu_response_error(rs, 400, "ValidationException",
			"A conversation must start with a user message. Try again with a conversation that starts with a user message.");
		return -1;
	}
	return 0;
}

/* Fills a JSON value for a JSON-schema node: strings from the text (or the first enum
 * value), numbers 42, booleans true, arrays empty, objects recursively (required
 * properties, or all when no "required" list). */
static void fill_schema(json_writer *w, const json *schema, const char *text, int depth)
{
	const char *type = json_get_str(schema, "type");
	const json *en = json_get(schema, "enum");
	if (en && en->type == JSON_ARRAY && en->len) { jw_value(w, &en->items[0]); return; }
	if (!type && json_get(schema, "type") && json_get(schema, "type")->type == JSON_ARRAY) {
		const json *t0 = json_at(json_get(schema, "type"), 0);
		type = t0 && t0->type == JSON_STRING ? t0->str : NULL;
	}
	if (!type && json_get(schema, "properties")) type = "object";
	if (!type) type = "string";
	if (!strcmp(type, "object") && depth < 16) {
		const json *props = json_get(schema, "properties");
		const json *req = json_get(schema, "required");
		jw_obj(w);
		for (size_t i = 0; props && props->type == JSON_OBJECT && i < props->len; i++) {
			int want = !req || req->type != JSON_ARRAY;
			for (size_t k = 0; !want && k < req->len; k++)
				want = req->items[k].type == JSON_STRING && !strcmp(req->items[k].str, props->keys[i]);
			if (!want) continue;
			jw_key(w, props->keys[i]);
			fill_schema(w, &props->items[i], text, depth + 1);
		}
		jw_obj_end(w);
	} else if (!strcmp(type, "integer") || !strcmp(type, "number")) {
		jw_int(w, 42);
	} else if (!strcmp(type, "boolean")) {
		jw_bool(w, 1);
	} else if (!strcmp(type, "array")) {
		jw_arr(w);
		jw_arr_end(w);
	} else if (!strcmp(type, "null")) {
		jw_null(w);
	} else {
		jw_str(w, text);
	}
}

static const json *find_tool(const json *tools, const char *name)
{
	for (size_t i = 0; tools && i < tools->len; i++) {
		const json *spec = json_get(&tools->items[i], "toolSpec");
		const char *n = json_get_str(spec, "name");
		if (n && !strcmp(n, name)) return spec;
	}
	return NULL;
}

/* The tools the reply may call: toolConfig's tools, then, message by message, each
 * system message's toolRemoval (drops the named tool) and toolAddition (adds it back
 * with its toolConfig spec, or, when toolConfig does not define it, as a tool whose
 * input is {}: spec NULL). Returns the count; *out is malloc'd (the caller frees it). */
typedef struct { const char *name; const json *spec; } avail_tool;

static size_t tool_set(const json *tools, const json *msgs, avail_tool **out)
{
	size_t cap = (tools ? tools->len : 0) + 1, n = 0;
	for (size_t i = 0; i < msgs->len; i++) {
		const json *c = json_get(&msgs->items[i], "content");
		cap += c ? c->len : 0;
	}
	avail_tool *a = malloc(cap * sizeof *a);
	*out = a;
	if (!a) return 0;
	for (size_t i = 0; tools && i < tools->len; i++) {
		const json *spec = json_get(&tools->items[i], "toolSpec");
		const char *name = json_get_str(spec, "name");
		if (name) a[n++] = (avail_tool){name, spec};
	}
	for (size_t i = 0; i < msgs->len; i++) {
		if (strcmp(json_get_str(&msgs->items[i], "role"), "system")) continue;
		const json *c = json_get(&msgs->items[i], "content");
		for (size_t k = 0; c && k < c->len; k++) {
			const json *add = json_get(&c->items[k], "toolAddition");
			const json *rem = json_get(&c->items[k], "toolRemoval");
			const char *name = json_get_str(json_get(add ? add : rem, "tool"), "name");
			if (!name) continue;
			size_t at = 0;
			while (at < n && strcmp(a[at].name, name)) at++;
			if (rem && at < n) {
				memmove(a + at, a + at + 1, (n - at - 1) * sizeof *a);
				n--;
			} else if (add && at == n) {
				a[n++] = (avail_tool){name, find_tool(tools, name)};
			}
		}
	}
	return n;
}

static size_t count_tool_uses(const json *msgs)
{
	size_t n = 0;
	for (size_t i = 0; i < msgs->len; i++) {
		const json *c = json_get(&msgs->items[i], "content");
		for (size_t k = 0; c && k < c->len; k++)
			if (json_get(&c->items[k], "toolUse")) n++;
	}
	return n;
}

/* Text of a toolResult's content blocks. */
static void result_text(br_buf *b, const json *tr)
{
	const json *c = json_get(tr, "content");
	for (size_t i = 0; c && i < c->len; i++) {
		const json *it = &c->items[i], *x;
		if (i) br_buf_append_str(b, " ");
		if ((x = json_get(it, "text")) && x->type == JSON_STRING) br_buf_append(b, x->str, x->len);
		else if ((x = json_get(it, "json"))) {
			json_writer w;
			jw_init(&w, b);
			jw_value(&w, x);
		} else if (json_get(it, "image")) br_buf_append_str(b, "[image]");
		else if (json_get(it, "document")) br_buf_append_str(b, "[document]");
		else if (json_get(it, "video")) br_buf_append_str(b, "[video]");
		else br_buf_append_str(b, "[content]");
	}
}

/* Truncates r->text at the earliest stop sequence and then at maxTokens. */
static void apply_limits(reply *r, const json *body)
{
	const json *ic = json_get(body, "inferenceConfig");
	const json *ss = json_get(ic, "stopSequences");
	size_t cut = r->text.len;
	for (size_t i = 0; ss && i < ss->len; i++) {
		const json *s = &ss->items[i];
		if (s->type != JSON_STRING || !s->len || s->len > r->text.len) continue;
		for (size_t k = 0; k + s->len <= cut; k++)
			if (!memcmp(r->text.data + k, s->str, s->len)) { cut = k; r->stop = "stop_sequence"; break; }
	}
	r->text.len = cut;
	long long max;
	if (json_int(json_get(ic, "maxTokens"), &max) && max > 0 &&
	    ops_tokens((const char *)r->text.data, r->text.len) > (size_t)max) {
		r->text.len = ops_token_prefix((const char *)r->text.data, r->text.len, (size_t)max);
		while (r->text.len && (r->text.data[r->text.len - 1] == ' ')) r->text.len--;
		r->stop = "max_tokens";
	}
}

/* The tool plan: the first user message's first text block starts with
 * "__tool_plan " and a JSON array of turns, each an array of {"name", "input"} calls.
 * Turn k (k = assistant messages so far) asks for its calls; after the last turn the
 * plan is done and the ordinary rules answer (the toolResult echo). Returns 1 when r got
 * the calls of a turn, 0 when no plan applies, -1 after writing a ValidationException. */
static int plan_turn(reply *r, const json *msgs, emu_response *rs)
{
	const json *first = &msgs->items[0];
	const json *c = json_get(first, "content");
	const json *t = c && c->len ? json_get(&c->items[0], "text") : NULL;
	size_t turn = 0, n = strlen(TOOL_PLAN);
	char err[120];

	if (!t || t->type != JSON_STRING || t->len < n || memcmp(t->str, TOOL_PLAN, n))
		return 0;
	r->plan = json_parse(t->str + n, t->len - n, err, sizeof err);
	if (!r->plan || r->plan->type != JSON_ARRAY) {
		emu_response_error(rs, 400, "ValidationException",
			"__tool_plan: expected a JSON array of turns: %s", r->plan ? "not an array" : err);
		return -1;
	}
	for (size_t i = 0; i < msgs->len; i++)
		if (!strcmp(json_get_str(&msgs->items[i], "role"), "assistant")) turn++;
	if (turn >= r->plan->len) return 0;
	const json *calls = &r->plan->items[turn];
	if (calls->type != JSON_ARRAY || calls->len == 0 || calls->len > PLAN_CALLS_MAX) {
		emu_response_error(rs, 400, "ValidationException",
			"__tool_plan: turn %zu must be an array of 1 to %d calls", turn + 1, PLAN_CALLS_MAX);
		return -1;
	}
	size_t base = count_tool_uses(msgs);
	br_buf_append_str(&r->text, "Calling");
	for (size_t i = 0; i < calls->len; i++) {
		const json *call = &calls->items[i];
		const char *name = json_get_str(call, "name");
		const json *input = json_get(call, "input");
		if (!name || (input && input->type != JSON_OBJECT)) {
			emu_response_error(rs, 400, "ValidationException",
				"__tool_plan: turn %zu call %zu needs a string name and an object input", turn + 1, i + 1);
			return -1;
		}
		tool_call *tc = &r->calls[r->tool++];
		tc->name = name;
		snprintf(tc->id, sizeof tc->id, "tooluse_%zu", base + i + 1);
		json_writer w;
		jw_init(&w, &tc->input);
		if (input) jw_value(&w, input);
		else br_buf_append_str(&tc->input, "{}");
		br_buf_append_str(&r->text, i ? ", " : " ");
		br_buf_append_str(&r->text, name);
	}
	br_buf_append_str(&r->text, ".");
	r->stop = "tool_use";
	return 1;
}

static int build_reply(reply *r, const json *body, emu_response *rs)
{
	const json *msgs = json_get(body, "messages");
	const json *last = NULL;
	for (size_t i = msgs->len; i-- > 0;)
		if (!strcmp(json_get_str(&msgs->items[i], "role"), "user")) { last = &msgs->items[i]; break; }
	const json *content = json_get(last, "content");
	br_buf utext = BR_BUF_INIT;
	const json *tresult = NULL;
	for (size_t i = 0; content && i < content->len; i++) {
		const json *b = &content->items[i], *x;
		if ((x = json_get(b, "text")) && x->type == JSON_STRING) {
			if (utext.len) br_buf_append_byte(&utext, ' ');
			br_buf_append(&utext, x->str, x->len);
		} else if ((x = json_get(json_get(json_get(b, "guardContent"), "text"), "text")) && x->type == JSON_STRING) {
			if (utext.len) br_buf_append_byte(&utext, ' ');
			br_buf_append(&utext, x->str, x->len);
		}
		if (json_get(b, "toolResult") && !tresult) tresult = json_get(b, "toolResult");
	}
	br_buf_append_byte(&utext, 0);
	utext.len--;
	const char *text = (const char *)utext.data;
	r->stop = "end_turn";

	r->gcfg = json_get(body, "guardrailConfig");
	if (r->gcfg) {
		const char *tr = json_get_str(r->gcfg, "trace");
		r->trace = tr && strcmp(tr, "disabled");
		br_buf masked = BR_BUF_INIT;
		emu_guard_scan(&r->g, text, utext.len, &masked);
		if (r->g.blocked) {
			br_buf_append_str(&r->text, EMU_GUARD_BLOCKED_MESSAGE);
			r->stop = "guardrail_intervened";
			br_buf_free(&masked);
			br_buf_free(&utext);
			return 0;
		}
		if (r->g.anonymized) {
			br_buf_free(&utext);
			utext = masked;
			br_buf_append_byte(&utext, 0);
			utext.len--;
			text = (const char *)utext.data;
		} else {
			br_buf_free(&masked);
		}
	}

	const json *tc = json_get(body, "toolConfig");
	const json *tools = json_get(tc, "tools");
	const json *oc = json_get(json_get(json_get(json_get(body, "outputConfig"), "textFormat"), "structure"), "jsonSchema");
	int planned = plan_turn(r, msgs, rs);
	if (planned < 0) {
		br_buf_free(&utext);
		return -1;
	}
	if (planned) {
		/* r->tool calls of the plan's current turn */
	} else if (tresult) {
		for (size_t ci = 0; content && ci < content->len; ci++) {
		tresult = json_get(&content->items[ci], "toolResult");
		if (!tresult) continue;
		if (r->text.len) br_buf_append_str(&r->text, " ");
		const char *id = json_get_str(tresult, "toolUseId"), *name = "unknown";
		for (size_t i = 0; i < msgs->len; i++) {
			const json *c = json_get(&msgs->items[i], "content");
			for (size_t k = 0; c && k < c->len; k++) {
				const json *tu = json_get(&c->items[k], "toolUse");
				const char *tid = json_get_str(tu, "toolUseId");
				if (tid && !strcmp(tid, id)) name = json_get_str(tu, "name");
			}
		}
		const char *st = json_get_str(tresult, "status");
		br_buf_append_str(&r->text, "The tool ");
		br_buf_append_str(&r->text, name);
		br_buf_append_str(&r->text, st && !strcmp(st, "error") ? " failed: " : " returned: ");
		result_text(&r->text, tresult);
		}
	} else if (!strncmp(text, "__stream_words ", 15)) {
		long n = strtol(text + 15, NULL, 10);
		if (n < 1) n = 1;
		if (n > STREAM_WORDS_MAX) n = STREAM_WORDS_MAX;
		br_buf_reserve(&r->text, (size_t)n * 9);
		/* " w<i>" with i counted up in decimal in place (snprintf per word would be most
		 * of the time before a long stream's first event) */
		char t[24] = " w0";
		size_t len = 3;
		for (long i = 1; i <= n; i++) {
			size_t d = len - 1;
			while (t[d] == '9') t[d--] = '0';
			if (t[d] == 'w') {
				memmove(t + d + 2, t + d + 1, len - d - 1);
				t[d + 1] = '1';
				len++;
			} else {
				t[d]++;
			}
			br_buf_append(&r->text, i == 1 ? t + 1 : t, i == 1 ? len - 1 : len);
		}
	} else {
		const json *spec = NULL;
		const json *choice = json_get(tc, "toolChoice");
		const char *forced = json_get_str(json_get(choice, "tool"), "name");
		if (forced) {
			spec = find_tool(tools, forced);
			if (!spec) {
				br_buf_free(&utext);
				emu_response_error(rs, 400, "ValidationException",
					"The tool '%s' named in toolChoice is not defined in toolConfig.tools.", forced);
				return -1;
			}
		}
		const char *call = forced;
		avail_tool *avail = NULL;
		size_t navail = tool_set(tools, msgs, &avail);
		for (size_t i = 0; !call && i < navail; i++)
			if (strstr(text, avail[i].name)) { call = avail[i].name; spec = avail[i].spec; }
		if (!call && navail && json_get(choice, "any")) { call = avail[0].name; spec = avail[0].spec; }
		free(avail);
		if (call) {
			r->tool = 1;
			r->calls[0].name = call;
			snprintf(r->calls[0].id, sizeof r->calls[0].id, "tooluse_%zu", count_tool_uses(msgs) + 1);
			json_writer w;
			jw_init(&w, &r->calls[0].input);
			if (spec) {
				fill_schema(&w, json_get(json_get(spec, "inputSchema"), "json"), text, 0);
			} else {
				jw_obj(&w);
				jw_obj_end(&w);
			}
			br_buf_append_str(&r->text, "Calling tool ");
			br_buf_append_str(&r->text, r->calls[0].name);
			br_buf_append_str(&r->text, ".");
			r->stop = "tool_use";
		} else if (oc) {
			const char *sch = json_get_str(oc, "schema");
			char err[120];
			json *schema = sch ? json_parse(sch, strlen(sch), err, sizeof err) : NULL;
			if (!schema) {
				br_buf_free(&utext);
				emu_response_error(rs, 400, "ValidationException",
					"outputConfig.textFormat.structure.jsonSchema.schema is not valid JSON: %s", sch ? err : "missing");
				return -1;
			}
			json_writer w;
			jw_init(&w, &r->text);
			fill_schema(&w, schema, text, 0);
			json_free(schema);
		} else {
			br_buf_append_str(&r->text, "You said: ");
			br_buf_append_str(&r->text, utext.len ? text : "(no text)");
		}
	}
	if (!r->tool) apply_limits(r, body);
	if (r->g.anonymized && !strcmp(r->stop, "end_turn")) r->stop = "guardrail_intervened";
	br_buf_free(&utext);
	return 0;
}

static void write_usage(json_writer *w, const reply *r)
{
	jw_key(w, "usage");
	jw_obj(w);
	jw_kint(w, "inputTokens", (long long)r->in_tok);
	jw_kint(w, "outputTokens", (long long)r->out_tok);
	jw_kint(w, "totalTokens", (long long)(r->in_tok + r->out_tok));
	jw_obj_end(w);
}

static void write_trace(json_writer *w, const reply *r, const emu_request *rq)
{
	if (!r->gcfg || !r->trace) return;
	const char *id = json_get_str(r->gcfg, "guardrailIdentifier");
	const char *ver = json_get_str(r->gcfg, "guardrailVersion");
	jw_key(w, "trace");
	jw_obj(w);
	jw_key(w, "guardrail");
	jw_obj(w);
	jw_kstr(w, "actionReason", r->g.blocked ? "Guardrail blocked." : r->g.anonymized ? "Guardrail masked." : "No action.");
	jw_key(w, "inputAssessment");
	jw_obj(w);
	jw_key(w, id ? id : "");
	emu_guard_write_assessment(w, &r->g, id ? id : "", ver ? ver : "DRAFT", ops_region(rq));
	jw_obj_end(w);
	jw_obj_end(w);
	jw_obj_end(w);
}

static void write_extras(json_writer *w, const json *body, const char *key)
{
	const json *v = json_get(body, key);
	if (v) { jw_key(w, key); jw_value(w, v); }
}

static void write_json(const reply *r, const json *body, const emu_request *rq, emu_response *rs)
{
	json_writer w;
	jw_init(&w, &rs->body);
	jw_obj(&w);
	jw_key(&w, "metrics");
	jw_obj(&w);
	jw_kint(&w, "latencyMs", LATENCY_MS);
	jw_obj_end(&w);
	jw_key(&w, "output");
	jw_obj(&w);
	jw_key(&w, "message");
	jw_obj(&w);
	jw_key(&w, "content");
	jw_arr(&w);
	if (r->text.len || !r->tool) {
		jw_obj(&w);
		jw_key(&w, "text");
		jw_strn(&w, r->text.data ? (const char *)r->text.data : "", r->text.len);
		jw_obj_end(&w);
	}
	for (int t = 0; t < r->tool; t++) {
		const tool_call *tc = &r->calls[t];
		jw_obj(&w);
		jw_key(&w, "toolUse");
		jw_obj(&w);
		jw_key(&w, "input");
		jw_raw(&w, (const char *)tc->input.data, tc->input.len);
		jw_kstr(&w, "name", tc->name);
		jw_kstr(&w, "toolUseId", tc->id);
		jw_obj_end(&w);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_kstr(&w, "role", "assistant");
	jw_obj_end(&w);
	jw_obj_end(&w);
	write_extras(&w, body, "performanceConfig");
	write_extras(&w, body, "serviceTier");
	jw_kstr(&w, "stopReason", r->stop);
	write_trace(&w, r, rq);
	write_usage(&w, r);
	jw_obj_end(&w);
	emu_response_add_header(rs, "Content-Type", "application/json");
}

/* ConverseStream's events, encoded a few at a time as the server asks for them (a
 * producer, see emu.h): the state owns the reply, the request body it borrows from and
 * a copy of the request. Phases in stream order: */
enum { CS_START, CS_TEXT, CS_TEXT_STOP, CS_TOOL_START, CS_TOOL_DELTA, CS_TOOL_STOP,
       CS_MESSAGE_STOP, CS_METADATA, CS_DONE };

typedef struct {
	reply r;
	json *body;
	emu_request *rq;         /* ops_request_copy */
	br_buf payload, frame;
	unsigned seq;            /* events so far: the padding seed */
	int phase;
	size_t pos;              /* CS_TEXT: offset in the text; CS_TOOL_DELTA: in the input */
	int tool;                /* the tool call in progress */
	int idx;                 /* its contentBlockIndex */
	int first;               /* CS_TOOL_DELTA: the first (empty) input piece is next */
} conv_stream;

static void reply_free(reply *r)
{
	br_buf_free(&r->text);
	for (int t = 0; t < r->tool; t++) br_buf_free(&r->calls[t].input);
	json_free(r->plan);
	emu_guard_free(&r->g);
}

static void conv_stream_free(void *p)
{
	conv_stream *cs = p;
	reply_free(&cs->r);
	json_free(cs->body);
	free(cs->rq);
	br_buf_free(&cs->payload);
	br_buf_free(&cs->frame);
	free(cs);
}

/* Pieces of text for deltas: leading whitespace stays with the word that follows. */
static size_t next_piece(const uint8_t *t, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && (t[j] == ' ' || t[j] == '\n' || t[j] == '\t' || t[j] == '\r')) j++;
	while (j < n && !(t[j] == ' ' || t[j] == '\n' || t[j] == '\t' || t[j] == '\r')) j++;
	return j;
}

/* Encodes the stream's next event into rs: 1, 0 when the stream is complete, -1 out of
 * memory. */
static int conv_next(conv_stream *cs, emu_response *rs)
{
	const reply *r = &cs->r;
	json_writer w;
	const char *type = NULL;
	jw_init(&w, &cs->payload);
	while (!type) {
		switch (cs->phase) {
		case CS_START:
			jw_obj(&w); ops_padding(&w, cs->seq); jw_kstr(&w, "role", "assistant"); jw_obj_end(&w);
			type = "messageStart";
			cs->phase = r->text.len || !r->tool ? CS_TEXT : CS_TOOL_START;
			break;
		case CS_TEXT: {
			if (cs->pos >= r->text.len) {
				cs->phase = CS_TEXT_STOP;
				break;
			}
			size_t j = next_piece(r->text.data, r->text.len, cs->pos);
			jw_obj(&w);
			jw_kint(&w, "contentBlockIndex", 0);
			jw_key(&w, "delta"); jw_obj(&w); jw_key(&w, "text");
			jw_strn(&w, (const char *)r->text.data + cs->pos, j - cs->pos);
			jw_obj_end(&w);
			ops_padding(&w, cs->seq);
			jw_obj_end(&w);
			type = "contentBlockDelta";
			cs->pos = j;
			break;
		}
		case CS_TEXT_STOP:
			jw_obj(&w); jw_kint(&w, "contentBlockIndex", 0); ops_padding(&w, cs->seq); jw_obj_end(&w);
			type = "contentBlockStop";
			cs->idx = 1;
			cs->phase = CS_TOOL_START;
			break;
		case CS_TOOL_START: {
			if (cs->tool >= r->tool) {
				cs->phase = CS_MESSAGE_STOP;
				break;
			}
			const tool_call *tc = &r->calls[cs->tool];
			jw_obj(&w);
			jw_kint(&w, "contentBlockIndex", cs->idx);
			ops_padding(&w, cs->seq);
			jw_key(&w, "start"); jw_obj(&w); jw_key(&w, "toolUse"); jw_obj(&w);
			jw_kstr(&w, "name", tc->name);
			jw_kstr(&w, "toolUseId", tc->id);
			jw_obj_end(&w); jw_obj_end(&w);
			jw_obj_end(&w);
			type = "contentBlockStart";
			cs->pos = 0;
			cs->first = 1;
			cs->phase = CS_TOOL_DELTA;
			break;
		}
		case CS_TOOL_DELTA: {
			/* the input JSON in pieces of about 8 bytes, the first one empty as the
			 * service does */
			const tool_call *tc = &r->calls[cs->tool];
			size_t i = cs->pos, n = tc->input.len;
			if (!cs->first && i >= n) {
				cs->phase = CS_TOOL_STOP;
				break;
			}
			size_t j = cs->first ? 0 : (i + 8 < n ? i + 8 : n);
			while (j < n && (tc->input.data[j] & 0xc0) == 0x80) j++;
			if (cs->first) j = i;
			jw_obj(&w);
			jw_kint(&w, "contentBlockIndex", cs->idx);
			jw_key(&w, "delta"); jw_obj(&w); jw_key(&w, "toolUse"); jw_obj(&w); jw_key(&w, "input");
			jw_strn(&w, (const char *)tc->input.data + i, j - i);
			jw_obj_end(&w); jw_obj_end(&w);
			ops_padding(&w, cs->seq);
			jw_obj_end(&w);
			type = "contentBlockDelta";
			cs->pos = j;
			cs->first = 0;
			break;
		}
		case CS_TOOL_STOP:
			jw_obj(&w); jw_kint(&w, "contentBlockIndex", cs->idx); ops_padding(&w, cs->seq); jw_obj_end(&w);
			type = "contentBlockStop";
			cs->tool++;
			cs->idx++;
			cs->phase = CS_TOOL_START;
			break;
		case CS_MESSAGE_STOP:
			jw_obj(&w); ops_padding(&w, cs->seq); jw_kstr(&w, "stopReason", r->stop); jw_obj_end(&w);
			type = "messageStop";
			cs->phase = CS_METADATA;
			break;
		case CS_METADATA:
			jw_obj(&w);
			jw_key(&w, "metrics"); jw_obj(&w); jw_kint(&w, "latencyMs", LATENCY_MS); jw_obj_end(&w);
			ops_padding(&w, cs->seq);
			write_extras(&w, cs->body, "performanceConfig");
			write_extras(&w, cs->body, "serviceTier");
			write_trace(&w, r, cs->rq);
			write_usage(&w, r);
			jw_obj_end(&w);
			type = "metadata";
			cs->phase = CS_DONE;
			break;
		default:
			return 0;
		}
	}
	int rc = ops_add_event(rs, &cs->frame, type, cs->payload.data, cs->payload.len);
	br_buf_reset(&cs->payload);
	cs->seq++;
	return rc ? -1 : 1;
}

static int conv_produce(void *p, emu_response *rs)
{
	for (int k = 0; k < OPS_PRODUCE_EVENTS; k++) {
		int rc = conv_next(p, rs);
		if (rc <= 0) return rc;
	}
	return 1;
}

/* Makes rs the stream of r: takes r and body over (zeroed/NULL on return) on success;
 * on failure (out of memory) leaves them to the caller and fills rs with the error. */
static void write_stream(reply *r, json **body, const emu_request *rq, emu_response *rs)
{
	conv_stream *cs = calloc(1, sizeof *cs);
	emu_request *copy = cs ? ops_request_copy(rq) : NULL;
	if (!copy || br_buf_reserve(&cs->payload, 256) != BR_OK || br_buf_reserve(&cs->frame, 512) != BR_OK) {
		if (cs) {
			br_buf_free(&cs->payload);
			br_buf_free(&cs->frame);
		}
		free(copy);
		free(cs);
		emu_response_error(rs, 500, "InternalServerException", "The emulator ran out of memory encoding the stream.");
		return;
	}
	cs->r = *r;
	memset(r, 0, sizeof *r);
	cs->body = *body;
	*body = NULL;
	cs->rq = copy;
	emu_response_set_producer(rs, conv_produce, cs, conv_stream_free);
	emu_response_add_header(rs, "Content-Type", "application/vnd.amazon.eventstream");
}

void ops_converse(const emu_request *rq, emu_response *rs, const char *model_id, int stream)
{
	(void)model_id;
	json *body = ops_parse_body(rq, rs);
	if (!body) return;
	if (ops_validate(stream ? "ConverseStreamRequest" : "ConverseRequest", body, rs) ||
	    check_messages(body, rs)) {
		json_free(body);
		return;
	}
	reply r;
	memset(&r, 0, sizeof r);
	emu_guard_init(&r.g);
	if (build_reply(&r, body, rs) == 0) {
		r.in_tok = ops_converse_input_tokens(body);
		r.out_tok = ops_tokens((const char *)r.text.data, r.text.len);
		for (int t = 0; t < r.tool; t++)
			r.out_tok += ops_tokens((const char *)r.calls[t].input.data, r.calls[t].input.len);
		if (stream) write_stream(&r, &body, rq, rs);
		else write_json(&r, body, rq, rs);
	}
	reply_free(&r);
	json_free(body);
}
