/* ApplyGuardrail: POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply */
#include "ops.h"
#include "guardrail.h"

#include <stdlib.h>
#include <string.h>

/* DRAFT or 1..99999999, as the service accepts. */
static int version_ok(const char *v)
{
	if (!strcmp(v, "DRAFT")) return 1;
	size_t n = strlen(v);
	if (!n || n > 8 || v[0] == '0') return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9') return 0;
	return 1;
}

static int id_ok(const char *id)
{
	if (!strncmp(id, "arn:", 4)) return strstr(id, ":guardrail/") != NULL;
	size_t n = strlen(id);
	if (!n || n > 2048) return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9'))) return 0;
	return 1;
}

void ops_apply_guardrail(const emu_request *rq, emu_response *rs, const char *id, const char *version)
{
	if (!version_ok(version)) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value '%s' at 'guardrailVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (([1-9][0-9]{0,7})|(DRAFT))", version);
		return;
	}
	if (!id_ok(id)) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value '%s' at 'guardrailIdentifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (([a-z0-9]+)|(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+))", id);
		return;
	}
	if (strstr(id, "does-not-exist") || strstr(id, "notfound")) {
		emu_response_error(rs, 404, "ResourceNotFoundException", "The guardrail %s with version %s was not found.", id, version);
		return;
	}
	json *body = ops_parse_body(rq, rs);
	if (!body) return;
	if (ops_validate("ApplyGuardrailRequest", body, rs)) { json_free(body); return; }

	const json *content = json_get(body, "content");
	emu_guard g;
	emu_guard_init(&g);
	/* one masked text per text block */
	br_buf *masked = calloc(content->len ? content->len : 1, sizeof *masked);
	for (size_t i = 0; masked && i < content->len; i++) {
		const json *t = json_get(json_get(&content->items[i], "text"), "text");
		if (t && t->type == JSON_STRING) emu_guard_scan(&g, t->str, t->len, &masked[i]);
	}

	json_writer w;
	jw_init(&w, &rs->body);
	jw_obj(&w);
	jw_kstr(&w, "action", emu_guard_action(&g));
	jw_kstr(&w, "actionReason", g.blocked ? "Guardrail blocked." : g.anonymized ? "Guardrail masked." : "No action.");
	jw_key(&w, "assessments");
	jw_arr(&w);
	emu_guard_write_assessment(&w, &g, id, version, ops_region(rq));
	jw_arr_end(&w);
	jw_key(&w, "guardrailCoverage");
	jw_obj(&w);
	jw_key(&w, "textCharacters");
	jw_obj(&w);
	jw_kint(&w, "guarded", (long long)g.chars);
	jw_kint(&w, "total", (long long)g.chars);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_key(&w, "outputs");
	jw_arr(&w);
	if (g.blocked) {
		jw_obj(&w);
		jw_kstr(&w, "text", EMU_GUARD_BLOCKED_MESSAGE);
		jw_obj_end(&w);
	} else if (g.anonymized) {
		for (size_t i = 0; masked && i < content->len; i++) {
			if (!json_get(&content->items[i], "text")) continue;
			jw_obj(&w);
			jw_key(&w, "text");
			jw_strn(&w, masked[i].data ? (const char *)masked[i].data : "", masked[i].len);
			jw_obj_end(&w);
		}
	}
	jw_arr_end(&w);
	jw_key(&w, "usage");
	emu_guard_write_usage(&w, &g);
	jw_obj_end(&w);
	emu_response_add_header(rs, "Content-Type", "application/json");

	for (size_t i = 0; masked && i < content->len; i++) br_buf_free(&masked[i]);
	free(masked);
	emu_guard_free(&g);
	json_free(body);
}
