/* The guardrail policy: word list, denied topic, PII (see guardrail.h). */
#include "guardrail.h"
#include "emu.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

static const char *default_words[] = {"badword", "forbidden", NULL};
#define TOPIC_NAME "InvestmentAdvice"
#define TOPIC_STEM "invest"

void emu_guard_init(emu_guard *g) { memset(g, 0, sizeof *g); }

void emu_guard_free(emu_guard *g)
{
	for (size_t i = 0; i < g->nfinds; i++) free(g->finds[i].match);
	free(g->finds);
	emu_guard_init(g);
}

static void add(emu_guard *g, int policy, const char *type, const char *base, const char *s, size_t n,
		const char *action)
{
	if (g->nfinds == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 8;
		emu_guard_find *f = realloc(g->finds, cap * sizeof *f);
		if (!f) return;
		g->finds = f;
		g->cap = cap;
	}
	char *m = malloc(n + 1);
	if (!m) return;
	memcpy(m, s, n);
	m[n] = 0;
	g->finds[g->nfinds++] = (emu_guard_find){policy, type, m, action, (size_t)(s - base), (size_t)(s - base) + n};
}

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

/* Whole-word, case-insensitive occurrences of w in s. */
static void scan_word(emu_guard *g, const char *s, size_t n, const char *w)
{
	size_t wl = strlen(w);
	if (!wl) return;
	for (size_t i = 0; i + wl <= n; i++) {
		if (i && wordc((unsigned char)s[i - 1])) continue;
		if (!ieq(s + i, w, wl)) continue;
		if (i + wl < n && wordc((unsigned char)s[i + wl])) continue;
		add(g, EMU_GUARD_WORD, NULL, s, s + i, wl, "BLOCKED");
		g->blocked = 1;
		i += wl - 1;
	}
}

static int email_local(unsigned char c) { return wordc(c) || c == '.' || c == '%' || c == '+' || c == '-'; }
static int email_domain(unsigned char c) { return (wordc(c) && c != '_') || c == '.' || c == '-'; }

/* Length of an e-mail address starting at s[i] (i at a word start), or 0. */
static size_t email_at(const char *s, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && email_local((unsigned char)s[j])) j++;
	if (j == i || j >= n || s[j] != '@') return 0;
	size_t d = ++j;
	while (j < n && email_domain((unsigned char)s[j])) j++;
	while (j > d && (s[j - 1] == '.' || s[j - 1] == '-')) j--;
	const char *dot = memchr(s + d, '.', j - d);
	if (!dot || dot == s + d) return 0;
	return j - i;
}

/* Length of a phone number (10-15 digits with spaces, dashes, dots, parentheses, a
 * leading '+') starting at s[i], or 0. */
static size_t phone_at(const char *s, size_t n, size_t i)
{
	size_t j = i, digits = 0, end = i;
	if (s[j] == '+') j++;
	for (; j < n; j++) {
		char c = s[j];
		if (c >= '0' && c <= '9') { digits++; end = j + 1; }
		else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
			if (j + 1 < n && s[j + 1] == ' ' && c == ' ') break;
		} else break;
	}
	if (digits < 10 || digits > 15) return 0;
	if (end < n && wordc((unsigned char)s[end])) return 0;
	return end - i;
}

void emu_guard_scan(emu_guard *g, const char *s, size_t n, br_buf *masked)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80) g->chars++;
	for (size_t k = 0; k < emu_cfg.nguardrail_words; k++)
		if (emu_cfg.guardrail_words[k]) scan_word(g, s, n, emu_cfg.guardrail_words[k]);
	for (size_t k = 0; default_words[k]; k++) scan_word(g, s, n, default_words[k]);
	size_t tl = strlen(TOPIC_STEM);
	for (size_t i = 0; i + tl <= n; i++) {
		if ((i && wordc((unsigned char)s[i - 1])) || !ieq(s + i, TOPIC_STEM, tl)) continue;
		size_t e = i + tl;
		while (e < n && wordc((unsigned char)s[e])) e++;
		add(g, EMU_GUARD_TOPIC, TOPIC_NAME, s, s + i, e - i, "BLOCKED");
		g->blocked = 1;
		break;
	}
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		int start = !i || !wordc((unsigned char)s[i - 1]);
		if (!start) continue;
		size_t l;
		const char *type = NULL, *mask = NULL;
		if ((l = email_at(s, n, i))) { type = "EMAIL"; mask = "{EMAIL}"; }
		else if ((s[i] == '+' || s[i] == '(' || (s[i] >= '0' && s[i] <= '9')) && (l = phone_at(s, n, i))) {
			type = "PHONE"; mask = "{PHONE}";
		}
		if (!type) continue;
		add(g, EMU_GUARD_PII, type, s, s + i, l, "ANONYMIZED");
		g->anonymized = 1;
		if (masked) {
			br_buf_append(masked, s + run, i - run);
			br_buf_append_str(masked, mask);
		}
		run = i + l;
		i += l - 1;
	}
	if (masked) br_buf_append(masked, s + run, n - run);
}

const char *emu_guard_action(const emu_guard *g)
{
	return g->blocked || g->anonymized ? "GUARDRAIL_INTERVENED" : "NONE";
}

void emu_guard_write_usage(json_writer *w, const emu_guard *g)
{
	long long units = (long long)((g->chars + 999) / 1000);
	if (!units) units = 1;
	jw_obj(w);
	jw_kint(w, "automatedReasoningPolicies", 0);
	jw_kint(w, "automatedReasoningPolicyUnits", 0);
	jw_kint(w, "contentPolicyImageUnits", 0);
	jw_kint(w, "contentPolicyUnits", 0);
	jw_kint(w, "contextualGroundingPolicyUnits", 0);
	jw_kint(w, "sensitiveInformationPolicyFreeUnits", 0);
	jw_kint(w, "sensitiveInformationPolicyUnits", units);
	jw_kint(w, "topicPolicyUnits", units);
	jw_kint(w, "wordPolicyUnits", units);
	jw_obj_end(w);
}

static int has(const emu_guard *g, int policy)
{
	for (size_t i = 0; i < g->nfinds; i++)
		if (g->finds[i].policy == policy) return 1;
	return 0;
}

void emu_guard_write_assessment(json_writer *w, const emu_guard *g, const char *id,
				const char *version, const char *region)
{
	jw_obj(w);
	jw_key(w, "appliedGuardrailDetails");
	jw_obj(w);
	br_buf arn = BR_BUF_INIT;
	if (!strncmp(id, "arn:", 4)) {
		br_buf_append_str(&arn, id);
	} else {
		br_buf_append_str(&arn, "arn:aws:bedrock:");
		br_buf_append_str(&arn, region);
		br_buf_append_str(&arn, ":" OPS_ACCOUNT ":guardrail/");
		br_buf_append_str(&arn, id);
	}
	jw_key(w, "guardrailArn");
	jw_strn(w, (const char *)arn.data, arn.len);
	const char *slash = strrchr(id, '/');
	jw_kstr(w, "guardrailId", slash ? slash + 1 : id);
	jw_key(w, "guardrailOrigin");
	jw_arr(w);
	jw_str(w, "REQUEST");
	jw_arr_end(w);
	jw_kstr(w, "guardrailOwnership", "SELF");
	jw_kstr(w, "guardrailVersion", version);
	jw_obj_end(w);
	br_buf_free(&arn);

	jw_key(w, "invocationMetrics");
	jw_obj(w);
	jw_key(w, "guardrailCoverage");
	jw_obj(w);
	jw_key(w, "textCharacters");
	jw_obj(w);
	jw_kint(w, "guarded", (long long)g->chars);
	jw_kint(w, "total", (long long)g->chars);
	jw_obj_end(w);
	jw_obj_end(w);
	jw_kint(w, "guardrailProcessingLatency", 1);
	jw_key(w, "usage");
	emu_guard_write_usage(w, g);
	jw_obj_end(w);

	if (has(g, EMU_GUARD_PII)) {
		jw_key(w, "sensitiveInformationPolicy");
		jw_obj(w);
		jw_key(w, "piiEntities");
		jw_arr(w);
		for (size_t i = 0; i < g->nfinds; i++) {
			if (g->finds[i].policy != EMU_GUARD_PII) continue;
			jw_obj(w);
			jw_kstr(w, "action", g->finds[i].action);
			jw_key(w, "detected");
			jw_bool(w, 1);
			jw_kstr(w, "match", g->finds[i].match);
			jw_kstr(w, "type", g->finds[i].type);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_key(w, "regexes");
		jw_arr(w);
		jw_arr_end(w);
		jw_obj_end(w);
	}
	if (has(g, EMU_GUARD_TOPIC)) {
		jw_key(w, "topicPolicy");
		jw_obj(w);
		jw_key(w, "topics");
		jw_arr(w);
		for (size_t i = 0; i < g->nfinds; i++) {
			if (g->finds[i].policy != EMU_GUARD_TOPIC) continue;
			jw_obj(w);
			jw_kstr(w, "action", "BLOCKED");
			jw_key(w, "detected");
			jw_bool(w, 1);
			jw_kstr(w, "name", g->finds[i].type);
			jw_kstr(w, "type", "DENY");
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_obj_end(w);
	}
	if (has(g, EMU_GUARD_WORD)) {
		jw_key(w, "wordPolicy");
		jw_obj(w);
		jw_key(w, "customWords");
		jw_arr(w);
		for (size_t i = 0; i < g->nfinds; i++) {
			if (g->finds[i].policy != EMU_GUARD_WORD) continue;
			jw_obj(w);
			jw_kstr(w, "action", "BLOCKED");
			jw_key(w, "detected");
			jw_bool(w, 1);
			jw_kstr(w, "match", g->finds[i].match);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_key(w, "managedWordLists");
		jw_arr(w);
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_obj_end(w);
}
