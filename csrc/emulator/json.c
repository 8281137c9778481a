/* Strict JSON parser (recursive descent, depth-limited) and compact writer. */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *p, *end, *start;
	char *err;
	size_t errlen;
	int failed;
} parser;

static void fail(parser *ps, const char *fmt, ...)
{
	if (ps->failed) return;
	ps->failed = 1;
	if (!ps->errlen) return;
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "%s at offset %zu", msg, (size_t)(ps->p - ps->start));
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static void unexpected(parser *ps)
{
	if (ps->p >= ps->end) fail(ps, "unexpected end of input");
	else if ((unsigned char)*ps->p >= 0x20 && (unsigned char)*ps->p < 0x7f) fail(ps, "unexpected character '%c'", *ps->p);
	else fail(ps, "unexpected byte 0x%02x", (unsigned char)*ps->p);
}

static void free_items(json *v)
{
	if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
		for (size_t i = 0; i < v->len; i++) {
			free_items(&v->items[i]);
			if (v->keys) free(v->keys[i]);
		}
		free(v->items);
		free(v->keys);
		free(v->key_lens);
	} else {
		free(v->str);
	}
}

void json_free(json *v)
{
	if (!v) return;
	free_items(v);
	free(v);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static int read_hex4(parser *ps, unsigned *out)
{
	if (ps->end - ps->p < 4) { ps->p = ps->end; fail(ps, "truncated \\u escape"); return -1; }
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval((unsigned char)ps->p[i]);
		if (h < 0) { ps->p += i; fail(ps, "invalid hex digit in \\u escape"); return -1; }
		v = v * 16 + (unsigned)h;
	}
	ps->p += 4;
	*out = v;
	return 0;
}

static void put_utf8(br_buf *b, unsigned cp)
{
	uint8_t u[4];
	size_t n;
	if (cp < 0x80) { u[0] = (uint8_t)cp; n = 1; }
	else if (cp < 0x800) { u[0] = (uint8_t)(0xc0 | cp >> 6); u[1] = (uint8_t)(0x80 | (cp & 63)); n = 2; }
	else if (cp < 0x10000) { u[0] = (uint8_t)(0xe0 | cp >> 12); u[1] = (uint8_t)(0x80 | ((cp >> 6) & 63)); u[2] = (uint8_t)(0x80 | (cp & 63)); n = 3; }
	else { u[0] = (uint8_t)(0xf0 | cp >> 18); u[1] = (uint8_t)(0x80 | ((cp >> 12) & 63)); u[2] = (uint8_t)(0x80 | ((cp >> 6) & 63)); u[3] = (uint8_t)(0x80 | (cp & 63)); n = 4; }
	br_buf_append(b, u, n);
}

/* Length of the valid UTF-8 sequence at p, or 0 when invalid (overlong, surrogate,
 * > U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	unsigned cp;
	if (c < 0x80) return 1;
	if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
	else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
	else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
	else return 0;
	if ((size_t)(end - p) < n) return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
	return n;
}

/* Parses a string literal at ps->p (on the opening quote) into a malloc'd buffer. */
static char *parse_string(parser *ps, size_t *lenp)
{
	br_buf b = BR_BUF_INIT;
	ps->p++;
	for (;;) {
		if (ps->p >= ps->end) { fail(ps, "unterminated string"); goto bad; }
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') { ps->p++; break; }
		if (c < 0x20) { fail(ps, "control character 0x%02x in string", c); goto bad; }
		if (c == '\\') {
			ps->p++;
			if (ps->p >= ps->end) { fail(ps, "unterminated string"); goto bad; }
			char e = *ps->p++;
			switch (e) {
			case '"': br_buf_append_byte(&b, '"'); break;
			case '\\': br_buf_append_byte(&b, '\\'); break;
			case '/': br_buf_append_byte(&b, '/'); break;
			case 'b': br_buf_append_byte(&b, '\b'); break;
			case 'f': br_buf_append_byte(&b, '\f'); break;
			case 'n': br_buf_append_byte(&b, '\n'); break;
			case 'r': br_buf_append_byte(&b, '\r'); break;
			case 't': br_buf_append_byte(&b, '\t'); break;
			case 'u': {
				unsigned cp, lo;
				if (read_hex4(ps, &cp)) goto bad;
				if (cp >= 0xdc00 && cp <= 0xdfff) { fail(ps, "lone low surrogate \\u%04x", cp); goto bad; }
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') { fail(ps, "high surrogate \\u%04x not followed by a low surrogate", cp); goto bad; }
					ps->p += 2;
					if (read_hex4(ps, &lo)) goto bad;
					if (lo < 0xdc00 || lo > 0xdfff) { fail(ps, "high surrogate \\u%04x not followed by a low surrogate", cp); goto bad; }
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				put_utf8(&b, cp);
				break;
			}
			default:
				ps->p--;
				fail(ps, "invalid escape '\\%c'", e);
				goto bad;
			}
			continue;
		}
		size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
		if (!n) { fail(ps, "invalid UTF-8 in string"); goto bad; }
		br_buf_append(&b, ps->p, n);
		ps->p += n;
	}
	if (br_buf_append_byte(&b, 0) != BR_OK) { fail(ps, "out of memory"); goto bad; }
	*lenp = b.len - 1;
	return (char *)b.data;
bad:
	br_buf_free(&b);
	return NULL;
}

static int parse_number(parser *ps, json *v)
{
	const char *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-') ps->p++;
	if (ps->p >= ps->end) { unexpected(ps); return -1; }
	if (*ps->p == '0') ps->p++;
	else if (*ps->p >= '1' && *ps->p <= '9') while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
	else { fail(ps, "invalid number"); return -1; }
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') { fail(ps, "digit expected after '.'"); return -1; }
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') { fail(ps, "digit expected in exponent"); return -1; }
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
	}
	size_t n = (size_t)(ps->p - s);
	v->type = JSON_NUMBER;
	v->str = malloc(n + 1);
	if (!v->str) { fail(ps, "out of memory"); return -1; }
	memcpy(v->str, s, n);
	v->str[n] = 0;
	v->len = n;
	return 0;
}

static int parse_value(parser *ps, json *v, int depth);

static json *grow(parser *ps, json *v, int with_keys)
{
	if (v->len == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		json *it = realloc(v->items, cap * sizeof *it);
		if (!it) { fail(ps, "out of memory"); return NULL; }
		v->items = it;
		if (with_keys) {
			char **k = realloc(v->keys, cap * sizeof *k);
			if (!k) { fail(ps, "out of memory"); return NULL; }
			v->keys = k;
			size_t *kl = realloc(v->key_lens, cap * sizeof *kl);
			if (!kl) { fail(ps, "out of memory"); return NULL; }
			v->key_lens = kl;
		}
		v->cap = cap;
	}
	json *it = &v->items[v->len];
	memset(it, 0, sizeof *it);
	return it;
}

static int parse_value(parser *ps, json *v, int depth)
{
	skip_ws(ps);
	if (ps->p >= ps->end) { unexpected(ps); return -1; }
	char c = *ps->p;
	if (c == '{' || c == '[') {
		if (depth >= JSON_MAX_DEPTH) { fail(ps, "nesting deeper than %d", JSON_MAX_DEPTH); return -1; }
		int obj = c == '{';
		v->type = obj ? JSON_OBJECT : JSON_ARRAY;
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) { ps->p++; return 0; }
		for (;;) {
			char *key = NULL;
			size_t klen = 0;
			skip_ws(ps);
			if (obj) {
				if (ps->p >= ps->end || *ps->p != '"') {
					if (ps->p < ps->end) fail(ps, "object key (a string) expected");
					else unexpected(ps);
					return -1;
				}
				key = parse_string(ps, &klen);
				if (!key) return -1;
				skip_ws(ps);
				if (ps->p >= ps->end || *ps->p != ':') { free(key); if (ps->p < ps->end) fail(ps, "':' expected"); else unexpected(ps); return -1; }
				ps->p++;
			}
			json *it = grow(ps, v, obj);
			if (!it) { free(key); return -1; }
			if (obj) { v->keys[v->len] = key; v->key_lens[v->len] = klen; }
			v->len++;   /* counted now so that json_free releases it on failure */
			if (parse_value(ps, it, depth + 1)) return -1;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
			if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) { ps->p++; return 0; }
			if (ps->p < ps->end) fail(ps, obj ? "',' or '}' expected" : "',' or ']' expected");
			else unexpected(ps);
			return -1;
		}
	}
	if (c == '"') {
		v->str = parse_string(ps, &v->len);
		if (!v->str) return -1;
		v->type = JSON_STRING;
		return 0;
	}
	if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps, v);
	static const struct { const char *w; json_type t; } lits[] = {
		{"true", JSON_TRUE}, {"false", JSON_FALSE}, {"null", JSON_NULL}};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(lits[i].w);
		if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, lits[i].w, n)) {
			ps->p += n;
			v->type = lits[i].t;
			return 0;
		}
	}
	unexpected(ps);
	return -1;
}

json *json_parse(const char *p, size_t n, char *err, size_t errlen)
{
	parser ps = {p, p + n, p, err, errlen, 0};
	if (errlen) err[0] = 0;
	json *v = calloc(1, sizeof *v);
	if (!v) {
		if (errlen) snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_value(&ps, v, 0) == 0) {
		skip_ws(&ps);
		if (ps.p == ps.end) return v;
		fail(&ps, "trailing data after the JSON value");
	}
	json_free(v);
	return NULL;
}

const json *json_get(const json *v, const char *key)
{
	if (!v || v->type != JSON_OBJECT) return NULL;
	size_t kl = strlen(key);
	for (size_t i = 0; i < v->len; i++)
		if (v->key_lens[i] == kl && !memcmp(v->keys[i], key, kl)) return &v->items[i];
	return NULL;
}

const char *json_get_str(const json *v, const char *key)
{
	const json *m = json_get(v, key);
	return m && m->type == JSON_STRING ? m->str : NULL;
}

const json *json_at(const json *v, size_t i)
{
	if (!v || (v->type != JSON_ARRAY && v->type != JSON_OBJECT) || i >= v->len) return NULL;
	return &v->items[i];
}

int json_int(const json *v, long long *out)
{
	if (!v || v->type != JSON_NUMBER) return 0;
	for (size_t i = 0; i < v->len; i++)
		if (v->str[i] == '.' || v->str[i] == 'e' || v->str[i] == 'E') return 0;
	errno = 0;
	char *e;
	long long x = strtoll(v->str, &e, 10);
	if (errno || *e) return 0;
	*out = x;
	return 1;
}

int json_double(const json *v, double *out)
{
	if (!v || v->type != JSON_NUMBER) return 0;
	*out = strtod(v->str, NULL);
	return 1;
}

const char *json_type_name(json_type t)
{
	static const char *n[] = {"null", "boolean", "boolean", "number", "string", "array", "object"};
	return t <= JSON_OBJECT ? n[t] : "?";
}

/* ---- writer ---- */

void json_quote(br_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	br_buf_reserve(b, n + 2);
	br_buf_append_byte(b, '"');
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\') continue;
		br_buf_append(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': br_buf_append(b, "\\\"", 2); break;
		case '\\': br_buf_append(b, "\\\\", 2); break;
		case '\n': br_buf_append(b, "\\n", 2); break;
		case '\r': br_buf_append(b, "\\r", 2); break;
		case '\t': br_buf_append(b, "\\t", 2); break;
		case '\b': br_buf_append(b, "\\b", 2); break;
		case '\f': br_buf_append(b, "\\f", 2); break;
		default: {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			br_buf_append(b, e, 6);
		}
		}
	}
	if (run < n) br_buf_append(b, s + run, n - run);   /* s may be NULL when n == 0 */
	br_buf_append_byte(b, '"');
}

void jw_init(json_writer *w, br_buf *b)
{
	memset(w, 0, sizeof *w);
	w->b = b;
}

static void sep(json_writer *w)
{
	if (w->after_key) { w->after_key = 0; return; }
	if (w->count[w->depth]) br_buf_append_byte(w->b, ',');
	w->count[w->depth] = 1;
}

static void open_(json_writer *w, char c)
{
	sep(w);
	br_buf_append_byte(w->b, (uint8_t)c);
	if (w->depth < JSON_MAX_DEPTH) w->depth++;
	w->count[w->depth] = 0;
}

static void close_(json_writer *w, char c)
{
	br_buf_append_byte(w->b, (uint8_t)c);
	if (w->depth > 0) w->depth--;
}

void jw_obj(json_writer *w) { open_(w, '{'); }
void jw_obj_end(json_writer *w) { close_(w, '}'); }
void jw_arr(json_writer *w) { open_(w, '['); }
void jw_arr_end(json_writer *w) { close_(w, ']'); }

void jw_key(json_writer *w, const char *k)
{
	sep(w);
	json_quote(w->b, k, strlen(k));
	br_buf_append_byte(w->b, ':');
	w->after_key = 1;
}

void jw_strn(json_writer *w, const char *s, size_t n)
{
	sep(w);
	json_quote(w->b, s, n);
}

void jw_str(json_writer *w, const char *s) { jw_strn(w, s, strlen(s)); }

void jw_int(json_writer *w, long long v)
{
	char t[32];
	int n = snprintf(t, sizeof t, "%lld", v);
	jw_raw(w, t, (size_t)n);
}

void jw_double(json_writer *w, double v)
{
	char t[40];
	int n = snprintf(t, sizeof t, "%.17g", v);
	/* keep a JSON number even for integral doubles, and never emit inf/nan */
	if (v != v || v > 1e308 || v < -1e308) n = snprintf(t, sizeof t, "0");
	jw_raw(w, t, (size_t)n);
}

void jw_bool(json_writer *w, int v) { jw_raw(w, v ? "true" : "false", v ? 4 : 5); }
void jw_null(json_writer *w) { jw_raw(w, "null", 4); }

void jw_raw(json_writer *w, const char *s, size_t n)
{
	sep(w);
	br_buf_append(w->b, s, n);
}

void jw_value(json_writer *w, const json *v)
{
	switch (v->type) {
	case JSON_NULL: jw_null(w); break;
	case JSON_TRUE: jw_bool(w, 1); break;
	case JSON_FALSE: jw_bool(w, 0); break;
	case JSON_NUMBER: jw_raw(w, v->str, v->len); break;
	case JSON_STRING: jw_strn(w, v->str, v->len); break;
	case JSON_ARRAY:
		jw_arr(w);
		for (size_t i = 0; i < v->len; i++) jw_value(w, &v->items[i]);
		jw_arr_end(w);
		break;
	case JSON_OBJECT:
		jw_obj(w);
		for (size_t i = 0; i < v->len; i++) {
			sep(w);
			json_quote(w->b, v->keys[i], v->key_lens[i]);
			br_buf_append_byte(w->b, ':');
			w->after_key = 1;
			jw_value(w, &v->items[i]);
		}
		jw_obj_end(w);
		break;
	}
}

void jw_kstr(json_writer *w, const char *k, const char *s) { jw_key(w, k); jw_str(w, s); }
void jw_kint(json_writer *w, const char *k, long long v) { jw_key(w, k); jw_int(w, v); }
