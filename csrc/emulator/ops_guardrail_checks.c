/* InvokeGuardrailChecks: POST /guardrail-checks/invoke. A detect-only check: scores from
 * the word and phrase rules below, PII offsets from the guardrail's masking rules
 * (guardrail.c). The rules are documented in docs/emulator.md ("InvokeGuardrailChecks"). */
#include "ops.h"
#include "guardrail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Results beyond this many PII findings are dropped and "truncated" is true. */
#define PII_MAX 100

/* Content filter: a word that starts with one of the stems (case-insensitive) adds 0.2
 * to its category's score. */
static const struct { const char *category; const char *stems[5]; } filters[] = {
	{"VIOLENCE", {"kill", "attack", "weapon", "bomb", NULL}},
	{"HATE", {"hate", "despise", NULL}},
	{"SEXUAL", {"sexual", "explicit", "nsfw", NULL}},
	{"MISCONDUCT", {"steal", "fraud", "hack", NULL}},
	{"INSULTS", {"idiot", "stupid", "moron", NULL}},
};

/* Prompt attack: each occurrence of a phrase (case-insensitive) in a user message adds
 * 0.4 to its category's score. */
static const struct { const char *category; const char *phrases[5]; } attacks[] = {
	{"JAILBREAK", {"ignore previous instructions", "developer mode", "jailbreak", "no restrictions", NULL}},
	{"PROMPT_INJECTION", {"ignore previous instructions", "disregard", "new instructions", NULL}},
	{"PROMPT_LEAKAGE", {"system prompt", "reveal your instructions", "repeat your instructions", NULL}},
};

#define NFILTERS (sizeof filters / sizeof *filters)
#define NATTACKS (sizeof attacks / sizeof *attacks)

static int wordc(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
	return 1;
}

/* Words of s that start with one of the stems. */
static unsigned count_stems(const char *s, size_t n, const char *const *stems)
{
	unsigned k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!wordc((unsigned char)s[i]) || (i && wordc((unsigned char)s[i - 1]))) continue;
		for (size_t j = 0; stems[j]; j++) {
			size_t l = strlen(stems[j]);
			if (i + l <= n && ieq(s + i, stems[j], l)) { k++; break; }
		}
	}
	return k;
}

static unsigned count_phrases(const char *s, size_t n, const char *const *phrases)
{
	unsigned k = 0;
	for (size_t j = 0; phrases[j]; j++) {
		size_t l = strlen(phrases[j]);
		for (size_t i = 0; i + l <= n; i++)
			if (ieq(s + i, phrases[j], l)) { k++; i += l - 1; }
	}
	return k;
}

/* Characters (UTF-8 code points) in s[0..n). */
static size_t chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80) k++;
	return k;
}

/* A score in tenths as the exact decimal (0.0 .. 1.0). */
static void write_tenths(json_writer *w, unsigned tenths)
{
	char t[8];
	if (tenths > 10) tenths = 10;
	int k = snprintf(t, sizeof t, "%u.%u", tenths / 10, tenths % 10);
	jw_raw(w, t, (size_t)k);
}

static int requested(const json *list, const char *key, const char *value)
{
	for (size_t i = 0; list && i < list->len; i++) {
		const char *v = json_get_str(&list->items[i], key);
		if (v && !strcmp(v, value)) return 1;
	}
	return 0;
}

static void write_usage(json_writer *w, const char *key, size_t nchars)
{
	jw_key(w, key);
	jw_obj(w);
	jw_kint(w, "textUnits", (long long)(nchars ? (nchars + 999) / 1000 : 1));
	jw_obj_end(w);
}

void ops_guardrail_checks(const emu_request *rq, emu_response *rs)
{
	json *body = ops_parse_body(rq, rs);
	if (!body) return;
	if (ops_validate("InvokeGuardrailChecksRequest", body, rs)) { json_free(body); return; }
	const json *msgs = json_get(body, "messages");
	const json *checks = json_get(body, "checks");
	const json *cf = json_get(json_get(checks, "contentFilter"), "categories");
	const json *pa = json_get(json_get(checks, "promptAttack"), "categories");
	const json *si = json_get(json_get(checks, "sensitiveInformation"), "entities");
	if (!cf && !pa && !si) {
		emu_response_error(rs, 400, "ValidationException",
			"At least one check (contentFilter, promptAttack or sensitiveInformation) must be configured in checks.");
		json_free(body);
		return;
	}

	unsigned cf_hits[NFILTERS] = {0}, pa_hits[NATTACKS] = {0};
	size_t nchars = 0;
	for (size_t m = 0; m < msgs->len; m++) {
		const char *role = json_get_str(&msgs->items[m], "role");
		const json *content = json_get(&msgs->items[m], "content");
		for (size_t c = 0; content && c < content->len; c++) {
			const json *t = json_get(&content->items[c], "text");
			if (!t || t->type != JSON_STRING) continue;
			nchars += chars(t->str, t->len);
			for (size_t k = 0; k < NFILTERS; k++) cf_hits[k] += count_stems(t->str, t->len, filters[k].stems);
			if (role && !strcmp(role, "user"))
				for (size_t k = 0; k < NATTACKS; k++) pa_hits[k] += count_phrases(t->str, t->len, attacks[k].phrases);
		}
	}

	json_writer w;
	jw_init(&w, &rs->body);
	jw_obj(&w);
	jw_key(&w, "results");
	jw_obj(&w);
	if (cf) {
		jw_key(&w, "contentFilter");
		jw_obj(&w);
		jw_key(&w, "results");
		jw_arr(&w);
		for (size_t i = 0; i < cf->len; i++) {
			const char *cat = json_get_str(&cf->items[i], "category");
			for (size_t k = 0; cat && k < NFILTERS; k++) {
				if (strcmp(cat, filters[k].category)) continue;
				jw_obj(&w);
				jw_kstr(&w, "category", cat);
				jw_key(&w, "severityScore");
				write_tenths(&w, cf_hits[k] * 2);
				jw_obj_end(&w);
			}
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
	}
	if (pa) {
		jw_key(&w, "promptAttack");
		jw_obj(&w);
		jw_key(&w, "results");
		jw_arr(&w);
		for (size_t i = 0; i < pa->len; i++) {
			const char *cat = json_get_str(&pa->items[i], "category");
			for (size_t k = 0; cat && k < NATTACKS; k++) {
				if (strcmp(cat, attacks[k].category)) continue;
				jw_obj(&w);
				jw_kstr(&w, "category", cat);
				jw_key(&w, "severityScore");
				write_tenths(&w, pa_hits[k] * 4);
				jw_obj_end(&w);
			}
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
	}
	if (si) {
		size_t found = 0;
		jw_key(&w, "sensitiveInformation");
		jw_obj(&w);
		jw_key(&w, "results");
		jw_arr(&w);
		for (size_t m = 0; m < msgs->len; m++) {
			const json *content = json_get(&msgs->items[m], "content");
			for (size_t c = 0; content && c < content->len; c++) {
				const json *t = json_get(&content->items[c], "text");
				if (!t || t->type != JSON_STRING) continue;
				emu_guard g;
				emu_guard_init(&g);
				emu_guard_scan(&g, t->str, t->len, NULL);
				for (size_t i = 0; i < g.nfinds; i++) {
					const emu_guard_find *f = &g.finds[i];
					if (f->policy != EMU_GUARD_PII || !requested(si, "type", f->type)) continue;
					if (++found > PII_MAX) continue;
					size_t b = chars(t->str, f->begin);
					jw_obj(&w);
					jw_kint(&w, "beginOffset", (long long)b);
					jw_key(&w, "confidenceScore");
					jw_raw(&w, "0.99", 4);
					jw_kint(&w, "contentIndex", (long long)c);
					jw_kint(&w, "endOffset", (long long)(b + chars(t->str + f->begin, f->end - f->begin)));
					jw_kint(&w, "messageIndex", (long long)m);
					jw_kstr(&w, "type", f->type);
					jw_obj_end(&w);
				}
				emu_guard_free(&g);
			}
		}
		jw_arr_end(&w);
		jw_key(&w, "truncated");
		jw_bool(&w, found > PII_MAX);
		jw_obj_end(&w);
	}
	jw_obj_end(&w);
	jw_key(&w, "usage");
	jw_obj(&w);
	if (cf) write_usage(&w, "contentFilter", nchars);
	if (pa) write_usage(&w, "promptAttack", nchars);
	if (si) write_usage(&w, "sensitiveInformation", nchars);
	jw_obj_end(&w);
	jw_obj_end(&w);
	emu_response_add_header(rs, "Content-Type", "application/json");
	json_free(body);
}
