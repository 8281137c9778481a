/* Generic request validation driven by the service model (see model.h). Messages imitate
 * the service's Coral validator: "Value <v> at '<path>' failed to satisfy constraint:
 * <rule>", list items as "<list>.<n>.member" (1-based), map values as "<map>.<key>". */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTED 10

typedef struct {
	br_buf path;
	br_buf msgs;
	int n;
} vctx;

/* Renders a value the way the service quotes it: strings and numbers in single quotes
 * (long strings cut), null bare, containers as their compact JSON (cut). */
static void render(br_buf *b, const json *v)
{
	if (!v || v->type == JSON_NULL) { br_buf_append_str(b, "null"); return; }
	br_buf t = BR_BUF_INIT;
	if (v->type == JSON_STRING) br_buf_append(&t, v->str, v->len);
	else {
		json_writer w;
		jw_init(&w, &t);
		jw_value(&w, v);
	}
	br_buf_append_byte(b, '\'');
	if (t.len > 80) {
		size_t cut = 77;
		while (cut > 0 && (t.data[cut] & 0xc0) == 0x80) cut--;
		br_buf_append(b, t.data, cut);
		br_buf_append_str(b, "...");
	} else {
		br_buf_append(b, t.data, t.len);
	}
	br_buf_append_byte(b, '\'');
	br_buf_free(&t);
}

static void violation(vctx *c, const json *v, const char *fmt, ...)
{
	c->n++;
	if (c->n > MAX_LISTED) return;
	if (c->n > 1) br_buf_append_str(&c->msgs, "; ");
	br_buf_append_str(&c->msgs, "Value ");
	render(&c->msgs, v);
	br_buf_append_str(&c->msgs, " at '");
	br_buf_append(&c->msgs, c->path.data, c->path.len);
	br_buf_append_str(&c->msgs, "' failed to satisfy constraint: ");
	char t[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t, sizeof t, fmt, ap);
	va_end(ap);
	br_buf_append_str(&c->msgs, t);
}

static size_t push(vctx *c, const char *seg, size_t n)
{
	size_t old = c->path.len;
	if (old) br_buf_append_byte(&c->path, '.');
	br_buf_append(&c->path, seg, n);
	return old;
}

static void pop(vctx *c, size_t old) { c->path.len = old; }

static size_t utf8_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80) k++;
	return k;
}

static int get_num(const json *def, const char *k, double *out)
{
	return json_double(json_get(def, k), out);
}

static void check_length(vctx *c, const json *def, const json *v, double len)
{
	double mn, mx;
	if (get_num(def, "min", &mn) && len < mn)
		violation(c, v, "Member must have length greater than or equal to %s", json_get(def, "min")->str);
	if (get_num(def, "max", &mx) && len > mx)
		violation(c, v, "Member must have length less than or equal to %s", json_get(def, "max")->str);
}

/* ISO 8601 date-time as the service parses it: YYYY-MM-DDTHH:MM:SS[.fff](Z|±hh:mm). */
static int is_timestamp(const char *s)
{
	const char *f = "dddd-dd-ddTdd:dd:dd";
	for (size_t i = 0; f[i]; i++) {
		if (f[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != f[i]) {
			if (f[i] == 'T' && (s[i] == 't' || s[i] == ' ')) continue;
			return 0;
		}
	}
	s += 19;
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9')) return 0;
		while (*s >= '0' && *s <= '9') s++;
	}
	if (*s == 'Z' || *s == 'z') return s[1] == 0;
	if ((*s == '+' || *s == '-') && s[1] && s[2] && s[3] == ':' && s[4] && s[5] && !s[6]) return 1;
	return 0;
}

static void check_shape(vctx *c, const char *shape_name, const json *v);

static void check_struct(vctx *c, const json *def, const json *v)
{
	const json *members = json_get(def, "members");
	int is_union = json_get(def, "union") && json_get(def, "union")->type == JSON_TRUE;
	const json *req = json_get(def, "required");
	/* unknown members first, in the order they were sent */
	for (size_t i = 0; i < v->len; i++) {
		const json *m = json_get(members, v->keys[i]);
		if (!m || json_get(m, "location")) {
			size_t old = push(c, v->keys[i], v->key_lens[i]);
			violation(c, &v->items[i], "Member must be a known member of this structure (unknown field)");
			pop(c, old);
		}
	}
	for (size_t i = 0; req && i < req->len; i++) {
		const char *name = req->items[i].str;
		const json *m = json_get(members, name);
		if (m && json_get(m, "location")) continue;
		const json *val = json_get(v, name);
		if (!val || val->type == JSON_NULL) {
			size_t old = push(c, name, strlen(name));
			violation(c, NULL, "Member must not be null");
			pop(c, old);
		}
	}
	size_t set = 0;
	for (size_t i = 0; i < v->len; i++) {
		const json *m = json_get(members, v->keys[i]);
		if (!m || json_get(m, "location")) continue;
		if (v->items[i].type == JSON_NULL) continue;
		set++;
		size_t old = push(c, v->keys[i], v->key_lens[i]);
		check_shape(c, json_get_str(m, "shape"), &v->items[i]);
		pop(c, old);
	}
	if (is_union && set != 1)
		violation(c, v, "Member must have exactly one member set (it is a union), found %zu", set);
}

static void check_shape(vctx *c, const char *shape_name, const json *v)
{
	const json *def = shape_name ? emu_model_shape(shape_name) : NULL;
	if (!def) return;
	const char *type = json_get_str(def, "type");
	const json *doc = json_get(def, "document");
	if (doc && doc->type == JSON_TRUE) return;   /* any JSON value */
	if (!type) return;
	if (!strcmp(type, "structure")) {
		if (v->type != JSON_OBJECT) { violation(c, v, "Member must be an object"); return; }
		check_struct(c, def, v);
	} else if (!strcmp(type, "list")) {
		if (v->type != JSON_ARRAY) { violation(c, v, "Member must be a list"); return; }
		check_length(c, def, v, (double)v->len);
		const char *item = json_get_str(json_get(def, "member"), "shape");
		for (size_t i = 0; i < v->len; i++) {
			char seg[40];
			int n = snprintf(seg, sizeof seg, "%zu.member", i + 1);
			size_t old = push(c, seg, (size_t)n);
			if (v->items[i].type == JSON_NULL) violation(c, NULL, "Member must not be null");
			else check_shape(c, item, &v->items[i]);
			pop(c, old);
		}
	} else if (!strcmp(type, "map")) {
		if (v->type != JSON_OBJECT) { violation(c, v, "Member must be a map"); return; }
		check_length(c, def, v, (double)v->len);
		const char *ks = json_get_str(json_get(def, "key"), "shape");
		const char *vs = json_get_str(json_get(def, "value"), "shape");
		for (size_t i = 0; i < v->len; i++) {
			json key = {JSON_STRING, v->keys[i], v->key_lens[i], NULL, NULL, NULL, 0};
			size_t old = push(c, v->keys[i], v->key_lens[i]);
			check_shape(c, ks, &key);
			if (v->items[i].type == JSON_NULL) violation(c, NULL, "Member must not be null");
			else check_shape(c, vs, &v->items[i]);
			pop(c, old);
		}
	} else if (!strcmp(type, "string")) {
		if (v->type != JSON_STRING) { violation(c, v, "Member must be a string"); return; }
		const json *en = json_get(def, "enum");
		if (en) {
			int ok = 0;
			for (size_t i = 0; i < en->len && !ok; i++)
				ok = en->items[i].len == v->len && !memcmp(en->items[i].str, v->str, v->len);
			if (!ok) {
				br_buf set = BR_BUF_INIT;
				for (size_t i = 0; i < en->len; i++) {
					if (i) br_buf_append_str(&set, ", ");
					br_buf_append(&set, en->items[i].str, en->items[i].len);
				}
				br_buf_append_byte(&set, 0);
				violation(c, v, "Member must satisfy enum value set: [%s]", set.data ? (char *)set.data : "");
				br_buf_free(&set);
				return;
			}
		}
		check_length(c, def, v, (double)utf8_chars(v->str, v->len));
		const char *pat = json_get_str(def, "pattern");
		if (pat && emu_model_pattern_match(pat, v->str, v->len) == 0)
			violation(c, v, "Member must satisfy regular expression pattern: %s", pat);
	} else if (!strcmp(type, "integer") || !strcmp(type, "long")) {
		long long x;
		if (!json_int(v, &x)) { violation(c, v, "Member must be an integer"); return; }
		double mn, mx;
		if (!strcmp(type, "integer") && (x > 2147483647LL || x < -2147483648LL))
			violation(c, v, "Member must be a 32-bit integer");
		if (get_num(def, "min", &mn) && (double)x < mn)
			violation(c, v, "Member must have value greater than or equal to %s", json_get(def, "min")->str);
		if (get_num(def, "max", &mx) && (double)x > mx)
			violation(c, v, "Member must have value less than or equal to %s", json_get(def, "max")->str);
	} else if (!strcmp(type, "float") || !strcmp(type, "double")) {
		double x, mn, mx;
		if (!json_double(v, &x)) { violation(c, v, "Member must be a number"); return; }
		if (get_num(def, "min", &mn) && x < mn)
			violation(c, v, "Member must have value greater than or equal to %s", json_get(def, "min")->str);
		if (get_num(def, "max", &mx) && x > mx)
			violation(c, v, "Member must have value less than or equal to %s", json_get(def, "max")->str);
	} else if (!strcmp(type, "boolean")) {
		if (v->type != JSON_TRUE && v->type != JSON_FALSE) violation(c, v, "Member must be a boolean");
	} else if (!strcmp(type, "blob")) {
		if (v->type != JSON_STRING) { violation(c, v, "Member must be a base64-encoded string"); return; }
		br_buf raw = BR_BUF_INIT;
		if (emu_b64_decode(v->str, v->len, &raw)) violation(c, v, "Member must be valid base64");
		else check_length(c, def, v, (double)raw.len);
		br_buf_free(&raw);
	} else if (!strcmp(type, "timestamp")) {
		if (v->type == JSON_NUMBER) return;   /* epoch seconds are accepted too */
		if (v->type != JSON_STRING || !is_timestamp(v->str))
			violation(c, v, "Member must be an ISO 8601 timestamp");
	}
}

int emu_model_validate(const char *shape, const json *body, char **msg)
{
	vctx c = {BR_BUF_INIT, BR_BUF_INIT, 0};
	*msg = NULL;
	if (!emu_model_shape(shape)) return 0;
	check_shape(&c, shape, body);
	int n = c.n;
	if (n) {
		br_buf out = BR_BUF_INIT;
		char head[80];
		snprintf(head, sizeof head, "%d validation error%s detected: ", n, n == 1 ? "" : "s");
		br_buf_append_str(&out, head);
		/* a NUL from a value or key would end the C string early: U+FFFD stands in */
		for (size_t i = 0; i < c.msgs.len; i++) {
			if (c.msgs.data[i]) br_buf_append_byte(&out, c.msgs.data[i]);
			else br_buf_append(&out, "\xef\xbf\xbd", 3);
		}
		br_buf_append_byte(&out, 0);
		*msg = (char *)out.data;
	}
	br_buf_free(&c.path);
	br_buf_free(&c.msgs);
	return n;
}
