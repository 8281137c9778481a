/* Smithy `pattern` constraints: Java-style regular expressions from the model,
 * translated once to POSIX extended syntax and matched against the whole value (the
 * service's validator matches whole values: "my tool" fails [a-zA-Z0-9_-]+).
 * Translation covers what the model uses: bracket expressions with escapes, ranges and
 * literal '-', \s \S \. escapes, (?: groups, {m,n}, anchors. A pattern that does not
 * translate or compile is not enforced (reported as -1). */
#include "model.h"

#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CACHED 64

typedef struct {
	const char *pattern;   /* the model's string (lives as long as the model) */
	regex_t re;
	int ok;
} cached;

static cached g_cache[MAX_CACHED];
static size_t g_n;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* Emits a bracket expression from a set of ASCII bytes in POSIX order: ']' first,
 * '-' last, '^' not first. */
static void emit_set(br_buf *o, const unsigned char set[128], int negate)
{
	br_buf_append_byte(o, '[');
	if (negate) br_buf_append_byte(o, '^');
	if (set[']']) br_buf_append_byte(o, ']');
	for (int c = 1; c < 128; c++)
		if (set[c] && c != ']' && c != '-' && c != '^') br_buf_append_byte(o, (uint8_t)c);
	if (set['^']) br_buf_append_byte(o, '^');
	if (set['-']) br_buf_append_byte(o, '-');
	/* a set holding only '^' would read as negation: "[^]" is invalid anyway; add a
	 * harmless duplicate so the expression stays well formed */
	if (!negate && set['^'] && !set[']']) {
		size_t k = 0;
		for (int c = 1; c < 128; c++) k += set[c] ? 1 : 0;
		if (k == 1) br_buf_append_byte(o, '^');
	}
	br_buf_append_byte(o, ']');
}

static void add_space(unsigned char set[128])
{
	set[' '] = set['\t'] = set['\n'] = set['\r'] = set['\f'] = set['\v'] = 1;
}

/* Parses a Java bracket expression at p (on '['); returns the position after ']' or
 * NULL when unsupported. */
static const char *bracket(const char *p, br_buf *o)
{
	if (!strncmp(p, "[\\s\\S]", 6) || !strncmp(p, "[\\S\\s]", 6)) {   /* any character */
		br_buf_append_byte(o, '.');
		return p + 6;
	}
	unsigned char set[128];
	memset(set, 0, sizeof set);
	p++;
	int negate = 0;
	if (*p == '^') { negate = 1; p++; }
	int prev = -1;          /* last literal char, usable as a range start */
	int first = 1;
	while (*p && (*p != ']' || first)) {
		int c, escaped = 0;
		first = 0;
		if (*p == '\\') {
			escaped = 1;
			p++;
			if (*p == 's') { add_space(set); p++; prev = -1; continue; }
			if (!*p || (unsigned char)*p >= 128 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
				return NULL;   /* other class escapes are not used by the model */
			c = (unsigned char)*p++;
		} else if (*p == '[') {
			return NULL;
		} else {
			c = (unsigned char)*p++;
		}
		if (c == '-' && !escaped && prev >= 0 && *p && *p != ']') {
			int hi;
			if (*p == '\\') {
				p++;
				if (!*p || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) return NULL;
				hi = (unsigned char)*p++;
			} else {
				hi = (unsigned char)*p++;
			}
			if (hi < prev || hi >= 128) return NULL;
			for (int k = prev; k <= hi; k++) set[k] = 1;
			prev = -1;      /* a '-' right after a range is a literal, as in Java */
			continue;
		}
		if (c >= 128) return NULL;
		set[c] = 1;
		prev = c;
	}
	if (*p != ']') return NULL;
	emit_set(o, set, negate);
	return p + 1;
}

/* Java regex → anchored POSIX ERE; 0, or -1 when unsupported. */
static int translate(const char *p, br_buf *o)
{
	br_buf_append_str(o, "^(");
	while (*p) {
		if (*p == '[') {
			p = bracket(p, o);
			if (!p) return -1;
		} else if (*p == '\\') {
			p++;
			if (*p == 's' || *p == 'S') {
				unsigned char set[128];
				memset(set, 0, sizeof set);
				add_space(set);
				emit_set(o, set, *p == 'S');
				p++;
			} else if (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) {
				br_buf_append_byte(o, '\\');
				br_buf_append_byte(o, (uint8_t)*p++);
			} else {
				return -1;
			}
		} else if (p[0] == '(' && p[1] == '?' && p[2] == ':') {
			br_buf_append_byte(o, '(');
			p += 3;
		} else if (p[0] == '(' && p[1] == '?') {
			return -1;
		} else {
			br_buf_append_byte(o, (uint8_t)*p++);
		}
	}
	br_buf_append_str(o, ")$");
	br_buf_append_byte(o, 0);
	return 0;
}

int emu_model_pattern_match(const char *pattern, const char *s, size_t n)
{
	if (strlen(s) != n) return 0;   /* an embedded NUL never matches the model's patterns */
	pthread_mutex_lock(&g_lock);
	cached *c = NULL;
	for (size_t i = 0; i < g_n; i++)
		if (g_cache[i].pattern == pattern) { c = &g_cache[i]; break; }
	if (!c && g_n < MAX_CACHED) {
		c = &g_cache[g_n++];
		c->pattern = pattern;
		br_buf ere = BR_BUF_INIT;
		c->ok = translate(pattern, &ere) == 0 && ere.data &&
			regcomp(&c->re, (const char *)ere.data, REG_EXTENDED | REG_NOSUB) == 0;
		br_buf_free(&ere);
	}
	pthread_mutex_unlock(&g_lock);
	if (!c || !c->ok) return -1;
	/* a compiled regex_t may be used by several threads at once (POSIX) */
	return regexec(&c->re, s, 0, NULL, 0) == 0;
}
