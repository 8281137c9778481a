/* A small strict JSON DOM parser and a streaming writer (RFC 8259).
 *
 * Parser: objects keep their key order (duplicates are kept too; json_get returns the
 * first), numbers keep their source text so integers stay integers, strings are decoded
 * to UTF-8 (all escapes, \u surrogate pairs; a lone surrogate is an error) and are
 * NUL-terminated (they may also contain NUL: use len). Depth is limited to
 * JSON_MAX_DEPTH. Errors carry the byte offset ("... at offset 17").
 *
 * Writer: appends compact JSON to a br_buf, inserting commas itself. Nesting deeper than
 * JSON_MAX_DEPTH is not tracked (commas may then be wrong); out of memory drops appends
 * (br_buf leaves its content unchanged), so output is then truncated, never corrupt
 * memory. */
#ifndef EMU_JSON_H
#define EMU_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "../br_buf.h"

#define JSON_MAX_DEPTH 128

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
	       JSON_OBJECT } json_type;

typedef struct json json;
struct json {
	json_type type;
	char *str;        /* STRING: decoded value; NUMBER: the source text; NUL-terminated */
	size_t len;       /* STRING/NUMBER: bytes in str; ARRAY/OBJECT: number of items */
	json *items;      /* ARRAY/OBJECT: the values, in source order */
	char **keys;      /* OBJECT: decoded keys, keys[i] belongs to items[i] */
	size_t *key_lens;
	size_t cap;
};

/* Parses exactly one JSON text from p[0..n) (surrounding whitespace allowed). Returns a
 * tree owned by the caller (free with json_free), or NULL with a message in err (always
 * NUL-terminated when errlen > 0), e.g. "unexpected character 'x' at offset 12". */
json *json_parse(const char *p, size_t n, char *err, size_t errlen);
/* Frees a tree returned by json_parse (NULL is fine). */
void json_free(json *v);

/* First member named key of an object; NULL if v is not an object or has no such key. */
const json *json_get(const json *v, const char *key);
/* Member string value, or NULL when absent or not a string. */
const char *json_get_str(const json *v, const char *key);
/* Item i of an array (or value i of an object); NULL when out of range. */
const json *json_at(const json *v, size_t i);
/* Number as an integer: 1 when v is a NUMBER whose text is an integer that fits in
 * long long (also 1.0e2-style exact integers are refused: only plain integer text). */
int json_int(const json *v, long long *out);
/* Number as a double (any NUMBER); 0 when v is not a number. */
int json_double(const json *v, double *out);
/* "null", "boolean", "number", "string", "array" or "object". */
const char *json_type_name(json_type t);

/* Writer. */
typedef struct {
	br_buf *b;
	int depth;
	int after_key;            /* a key was written; the value follows without a comma */
	unsigned char count[JSON_MAX_DEPTH + 1]; /* 0: no item yet at this depth */
} json_writer;

void jw_init(json_writer *w, br_buf *b);
void jw_obj(json_writer *w);          /* { */
void jw_obj_end(json_writer *w);      /* } */
void jw_arr(json_writer *w);          /* [ */
void jw_arr_end(json_writer *w);      /* ] */
void jw_key(json_writer *w, const char *k);
void jw_str(json_writer *w, const char *s);
void jw_strn(json_writer *w, const char *s, size_t n);
void jw_int(json_writer *w, long long v);
void jw_double(json_writer *w, double v);
void jw_bool(json_writer *w, int v);
void jw_null(json_writer *w);
/* Raw, already valid JSON text (e.g. a number's source text) as one value. */
void jw_raw(json_writer *w, const char *s, size_t n);
/* A parsed tree, written compactly in its original order. */
void jw_value(json_writer *w, const json *v);
/* Shorthands for "key": value. */
void jw_kstr(json_writer *w, const char *k, const char *s);
void jw_kint(json_writer *w, const char *k, long long v);

/* Appends s[0..n) as a JSON string literal with quotes (raw UTF-8 is kept as is). */
void json_quote(br_buf *b, const char *s, size_t n);

#endif
