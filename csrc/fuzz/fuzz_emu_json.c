/* libFuzzer target for the emulator's JSON parser and writer (csrc/emulator/json.c),
 * which parse request bodies straight from the network. Built by .ci/run-fuzz.
 *
 * Input: the bytes to parse, as they are (libFuzzer's buffer is exactly `size` bytes on
 * the heap, so ASan sees any read past the end). Checked on every input:
 *   - json_parse either returns a tree or NULL with a non-empty "... at offset N"
 *     message whose offset lies within the input;
 *   - a parsed tree is sane: every string and number is NUL-terminated at len, strings
 *     are valid UTF-8 (so the writer's output is valid JSON), numbers match the JSON
 *     number grammar, containers hold len items (and keys for objects), nesting stays
 *     within JSON_MAX_DEPTH; the accessors (json_get, json_at, json_int, json_double,
 *     json_get_str) agree with the tree;
 *   - round trip: the writer's compact text s1 re-parses, gives the same tree, and
 *     writing that tree again gives exactly s1;
 *   - truncation: proper prefixes of s1 (all when short, else 16 spread out plus the
 *     last 8) are refused when s1 is a container or a string (each prefix in its own
 *     exact-size heap block); a handful of prefixes of the
 *     original input are parsed too, again from exact-size copies;
 *   - depth: wrapping the value in arrays/objects up to JSON_MAX_DEPTH levels in total
 *     parses, one level more is refused with the nesting message (checked once at start
 *     for bare values, and on inputs whose depth is close to the limit). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emulator/json.h"
#include "fuzz_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

static json *parse_copy(const void *p, size_t n, char *err, size_t errlen)
{
	/* An exact-size heap copy (malloc(0) may return NULL: use 1 byte then, unread). */
	char *c = malloc(n ? n : 1);
	json *v;
	CHECK(c);
	if (n) memcpy(c, p, n);
	v = json_parse(c, n, err, errlen);
	free(c);
	return v;
}

static void check_error(const char *err, size_t n)
{
	const char *at = strstr(err, " at offset ");
	CHECK(err[0]);
	CHECK(strlen(err) < 200);
	if (strcmp(err, "out of memory") == 0) return;
	CHECK(at);
	CHECK((size_t)strtoull(at + 11, NULL, 10) <= n);
}


static int number_ok(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && s[i] == '-') i++;
	if (i >= n) return 0;
	if (s[i] == '0') i++;
	else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
	else return 0;
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || s[i] < '0' || s[i] > '9') return 0;
		while (i < n && s[i] >= '0' && s[i] <= '9') i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-')) i++;
		if (i >= n || s[i] < '0' || s[i] > '9') return 0;
		while (i < n && s[i] >= '0' && s[i] <= '9') i++;
	}
	return i == n;
}

/* Walks the tree; returns its depth (containers counted, a scalar is 0). */
static int check_tree(const json *v, int depth)
{
	int max = 0;
	CHECK(depth <= JSON_MAX_DEPTH);
	switch (v->type) {
	case JSON_NULL: case JSON_TRUE: case JSON_FALSE:
		return 0;
	case JSON_NUMBER: {
		long long x;
		double d;
		CHECK(v->str && v->str[v->len] == 0 && strlen(v->str) == v->len);
		CHECK(number_ok(v->str, v->len));
		CHECK(json_double(v, &d) == 1);
		if (json_int(v, &x)) {
			char t[32];
			/* plain integer text: no '.', no exponent; "-0" reads as 0 */
			CHECK(!strpbrk(v->str, ".eE"));
			snprintf(t, sizeof t, "%lld", x);
			CHECK(strcmp(t, v->str) == 0 || (x == 0 && strcmp(v->str, "-0") == 0));
		}
		return 0;
	}
	case JSON_STRING:
		CHECK(v->str && v->str[v->len] == 0);
		CHECK(fuzz_utf8_valid((const unsigned char *)v->str, v->len));
		return 0;
	case JSON_ARRAY:
	case JSON_OBJECT:
		CHECK(v->len == 0 || v->items);
		CHECK(v->len <= v->cap || (v->len == 0 && v->cap == 0));
		for (size_t i = 0; i < v->len; i++) {
			int d;
			CHECK(json_at(v, i) == &v->items[i]);
			if (v->type == JSON_OBJECT) {
				const json *first;
				CHECK(v->keys && v->key_lens && v->keys[i]);
				CHECK(v->keys[i][v->key_lens[i]] == 0);
				CHECK(fuzz_utf8_valid((const unsigned char *)v->keys[i], v->key_lens[i]));
				/* json_get finds the first member with that key (keys without NUL) */
				if (strlen(v->keys[i]) == v->key_lens[i]) {
					first = json_get(v, v->keys[i]);
					CHECK(first && first <= &v->items[i]);
					if (first == &v->items[i] && v->items[i].type == JSON_STRING)
						CHECK(json_get_str(v, v->keys[i]) == v->items[i].str);
				}
			}
			d = check_tree(&v->items[i], depth + 1);
			if (d > max) max = d;
		}
		CHECK(json_at(v, v->len) == NULL);
		return max + 1;
	}
	CHECK(0);
	return 0;
}

static void same_tree(const json *a, const json *b)
{
	CHECK(a->type == b->type && a->len == b->len);
	switch (a->type) {
	case JSON_NUMBER:
	case JSON_STRING:
		CHECK(memcmp(a->str, b->str, a->len) == 0);
		break;
	case JSON_ARRAY:
	case JSON_OBJECT:
		for (size_t i = 0; i < a->len; i++) {
			if (a->type == JSON_OBJECT)
				CHECK(a->key_lens[i] == b->key_lens[i] &&
				      memcmp(a->keys[i], b->keys[i], a->key_lens[i]) == 0);
			same_tree(&a->items[i], &b->items[i]);
		}
		break;
	default:
		break;
	}
}

static void write_tree(const json *v, br_buf *out)
{
	json_writer w;
	jw_init(&w, out);
	jw_value(&w, v);
	CHECK(w.depth == 0 && w.after_key == 0);
}

/* Wraps text in `levels` containers (alternating [ and {"k": ) and parses it. */
static json *wrapped(const char *text, size_t n, int levels, char *err, size_t errlen)
{
	br_buf b = BR_BUF_INIT;
	json *v;
	for (int i = 0; i < levels; i++)
		br_buf_append_str(&b, i & 1 ? "{\"k\":" : "[");
	br_buf_append(&b, text, n);
	for (int i = levels - 1; i >= 0; i--)
		br_buf_append_byte(&b, i & 1 ? '}' : ']');
	v = parse_copy(b.data, b.len, err, errlen);
	br_buf_free(&b);
	return v;
}

static void check_depth_limit(const char *text, size_t n, int depth)
{
	char err[200];
	int room = JSON_MAX_DEPTH - depth;
	json *v;
	if (room < 0) return;
	v = wrapped(text, n, room, err, sizeof err);
	CHECK(v);
	CHECK(check_tree(v, 0) == JSON_MAX_DEPTH);
	{
		/* the writer keeps its comma state right up to the limit */
		br_buf o1 = BR_BUF_INIT;
		json *again;
		write_tree(v, &o1);
		again = parse_copy(o1.data, o1.len, err, sizeof err);
		CHECK(again);
		same_tree(v, again);
		json_free(again);
		br_buf_free(&o1);
	}
	json_free(v);
	v = wrapped(text, n, room + 1, err, sizeof err);
	CHECK(!v);
	CHECK(strstr(err, "nesting deeper than"));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *vals[] = {"1", "\"s\"", "[]", "{}", "[1,[2]]", "{\"a\":[{}]}"};
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
		char err[200];
		json *v = parse_copy(vals[i], strlen(vals[i]), err, sizeof err);
		int d;
		CHECK(v);
		d = check_tree(v, 0);
		json_free(v);
		check_depth_limit(vals[i], strlen(vals[i]), d);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[200];
	br_buf s1 = BR_BUF_INIT, s2 = BR_BUF_INIT;
	json *v, *w;
	int depth;

	/* errlen 0 and a tiny errlen must be safe too */
	v = json_parse((const char *)data, size, NULL, 0);
	{
		char small[8];
		json *x = json_parse((const char *)data, size, small, sizeof small);
		CHECK((x == NULL) == (v == NULL));
		if (!x) CHECK(strlen(small) < sizeof small);
		json_free(x);
	}
	json_free(v);

	v = json_parse((const char *)data, size, err, sizeof err);
	/* a few prefixes of the input, each in an exact-size block */
	for (size_t k = 1; k <= 3 && size > 0; k++) {
		size_t cut = (size * k) / 4;
		char e2[200];
		json *p = parse_copy(data, cut, e2, sizeof e2);
		if (p) check_tree(p, 0);
		else check_error(e2, cut);
		json_free(p);
	}
	if (!v) {
		check_error(err, size);
		return 0;
	}
	CHECK(err[0] == 0);
	depth = check_tree(v, 0);

	write_tree(v, &s1);
	CHECK(s1.len > 0 && s1.data);
	w = parse_copy(s1.data, s1.len, err, sizeof err);
	if (!w) {
		fprintf(stderr, "writer output does not re-parse: %s\n", err);
		CHECK(0);
	}
	same_tree(v, w);
	write_tree(w, &s2);
	CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);

	/* Proper prefixes of a container or string literal are never complete values. */
	if (s1.data[0] == '[' || s1.data[0] == '{' || s1.data[0] == '"') {
		/* 16 cuts spread over the text plus the last 8 (all cuts when short) */
		size_t step = s1.len > 24 ? s1.len / 16 : 1;
		for (size_t cut = 0; cut < s1.len; cut += cut + 8 >= s1.len ? 1 : step) {
			json *p = parse_copy(s1.data, cut, err, sizeof err);
			CHECK(!p);
			check_error(err, cut);
		}
	}
	if (depth >= JSON_MAX_DEPTH - 4)
		check_depth_limit((const char *)s1.data, s1.len, depth);

	json_free(w);
	json_free(v);
	br_buf_free(&s1);
	br_buf_free(&s2);
	return 0;
}
