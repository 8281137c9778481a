/* Strict JSON to a tape (see br_jtape.h). */
#include "br_jtape.h"

#include <stdlib.h>
#include <string.h>
#include "br_load.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct {
	br_jtape *t;
	const br_jr_set *set;
	const char *begin, *end; /* the text */
} jr;

/* The first byte at or after p that is not a JSON blank (or end). */
static const char *skip_ws_run(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* skip_ws_run, with the common case in line: no blank at p (any byte above ' '). */
static inline const char *skip_ws(const char *p, const char *end)
{
	if (p < end && (unsigned char)*p > ' ')
		return p;
	return skip_ws_run(p, end);
}

#if defined(__SSE2__)
/* The sixteen bytes of w, each with its high bit set when it is a plain string byte (not
 * '"', '\\' nor below 0x20). w ^ 2 turns '"' into 0x20 and keeps the bytes below 0x20 below
 * it (every other byte stays above 0x20); adding 0x5f with unsigned saturation then sets
 * the high bit of exactly the bytes above 0x20; a '\\' then has it cleared. */
static inline __m128i plain_bytes(__m128i w)
{
	__m128i above = _mm_adds_epu8(_mm_xor_si128(w, _mm_set1_epi8(2)), _mm_set1_epi8(0x5f));
	return _mm_andnot_si128(_mm_cmpeq_epi8(w, _mm_set1_epi8('\\')), above);
}

/* The same as sixteen bits (0xffff: all plain). */
static inline unsigned plain_bits(__m128i w)
{
	return (unsigned)_mm_movemask_epi8(plain_bytes(w));
}

static inline __m128i load16(const char *s)
{
	return _mm_loadu_si128((const __m128i *)(const void *)s);
}
#endif

/* Length of the run of plain string bytes at p (no '"', '\\' nor byte below 0x20) before
 * end, eight bytes at a time, then byte by byte. */
static size_t plain_run_small(const char *p, const char *end)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	const char *s = p;

	while (end - s >= 8) {
		uint64_t w, q, b;
		memcpy(&w, s, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		if (((w - ones * 0x20) & ~w & highs) | ((q - ones) & ~q & highs) | ((b - ones) & ~b & highs))
			break;
		s += 8;
	}
	while (s < end && *s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
		s++;
	return (size_t)(s - p);
}

/* The same in the text [begin, end) (p within it): with SSE2 (every x86-64), thirty-two
 * then sixteen bytes at a time, and fewer than sixteen left read as the text's last
 * sixteen bytes (from end - 16, within the text) with the bytes before them dropped from
 * the mask; plain_run_small without SSE2 or in a text shorter than sixteen bytes. */
static size_t plain_run_long(const char *p, const char *end, const char *begin)
{
#if defined(__SSE2__)
	const char *s = p;
	unsigned a;

	while (end - s >= 32) {
		__m128i w = plain_bytes(load16(s)), w2 = plain_bytes(load16(s + 16));
		if (_mm_movemask_epi8(_mm_and_si128(w, w2)) != 0xffff) {
			if ((a = (unsigned)_mm_movemask_epi8(w)) != 0xffff)
				return (size_t)(s - p) + (size_t)__builtin_ctz(~a);
			a = (unsigned)_mm_movemask_epi8(w2);
			return (size_t)(s - p) + 16 + (size_t)__builtin_ctz(~a);
		}
		s += 32;
	}
	if (end - s >= 16) {
		if ((a = plain_bits(load16(s))) != 0xffff)
			return (size_t)(s - p) + (size_t)__builtin_ctz(~a);
		s += 16;
	}
	if (s == end)
		return (size_t)(s - p);
	if (end - begin >= 16) {
		a = (~plain_bits(load16(end - 16)) & 0xffff) >> (16 - (end - s));
		return a ? (size_t)(s - p) + (size_t)__builtin_ctz(a) : (size_t)(end - p);
	}
	return (size_t)(s - p) + plain_run_small(s, end);
#else
	(void)begin;
	return plain_run_small(p, end);
#endif
}

/* plain_run_long with its first sixteen bytes tested in line (most strings end there). */
static inline size_t plain_run(const char *p, const char *end, const char *begin)
{
#if defined(__SSE2__)
	if (end - p >= 16) {
		unsigned a = plain_bits(load16(p));
		if (a != 0xffff)
			return (size_t)__builtin_ctz(~a);
		return 16 + plain_run_long(p + 16, end, begin);
	}
#endif
	return plain_run_long(p, end, begin);
}

static int hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (end - p < 4)
		return 0;
	for (i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
		else return 0;
	}
	*out = v;
	return 1;
}

/* Doubles the tape's room for entries: 1, or 0 when out of memory. */
static int grow_tape(br_jtape *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	br_jt_ent *q = realloc(t->ents, cap * sizeof *q);

	if (!q)
		return 0;
	t->ents = q;
	t->cap = cap;
	return 1;
}

/* A new entry at the end of the tape, or NULL when out of memory. */
static inline br_jt_ent *push(br_jtape *t, uint32_t op)
{
	br_jt_ent *e;

	if (t->n == t->cap && !grow_tape(t))
		return NULL;
	e = &t->ents[t->n++];
	e->op = op;
	e->n = 0;
	return e;
}

/* parse_string's string when it has escapes: p its first byte (after the quote), with run
 * plain bytes there. Decoded into the scratch, with room for the rest of the text (a decoded
 * string is never longer than its JSON form). Entries name their scratch bytes by offset
 * until br_jtape_finish, as the scratch may move while it grows. */
static const char *parse_escaped(jr *r, const char *p, size_t run, uint32_t op, int emit,
				 const char **out, size_t *out_len)
{
	const char *end = r->end;
	br_jtape *t = r->t;
	char *dst, *d;
	br_jt_ent *e;

	if (!t->scratch || t->scratch_cap - t->scratch_len < (size_t)(end - p)) {
		size_t cap = t->scratch_cap ? t->scratch_cap * 2 : 256;
		char *q;
		if (cap < t->scratch_len + (size_t)(end - p))
			cap = t->scratch_len + (size_t)(end - p);
		if (!(q = realloc(t->scratch, cap)))
			return NULL;
		t->scratch = q;
		t->scratch_cap = cap;
	}
	dst = d = t->scratch + t->scratch_len;
	for (;;) {
		char c;
		memcpy(d, p, run);
		d += run;
		p += run;
		if (p >= end)
			return NULL;
		c = *p;
		if (c == '"')
			break;
		if (c != '\\' || end - p < 2)
			return NULL; /* a raw control byte: cjson decides */
		switch (p[1]) {
		case '"': *d++ = '"'; p += 2; break;
		case '\\': *d++ = '\\'; p += 2; break;
		case '/': *d++ = '/'; p += 2; break;
		case 'b': *d++ = '\b'; p += 2; break;
		case 'f': *d++ = '\f'; p += 2; break;
		case 'n': *d++ = '\n'; p += 2; break;
		case 'r': *d++ = '\r'; p += 2; break;
		case 't': *d++ = '\t'; p += 2; break;
		case 'u': {
			unsigned cp, lo;
			if (!hex4(p + 2, end, &cp))
				return NULL;
			p += 6;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return NULL;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return NULL;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
			if (cp < 0x80) {
				*d++ = (char)cp;
			} else if (cp < 0x800) {
				*d++ = (char)(0xC0 | (cp >> 6));
				*d++ = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				*d++ = (char)(0xE0 | (cp >> 12));
				*d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
				*d++ = (char)(0x80 | (cp & 0x3F));
			} else {
				*d++ = (char)(0xF0 | (cp >> 18));
				*d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
				*d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
				*d++ = (char)(0x80 | (cp & 0x3F));
			}
			break;
		}
		default:
			return NULL;
		}
		run = plain_run(p, end, r->begin);
	}
	if (out) {
		*out = dst;
		*out_len = (size_t)(d - dst);
	}
	if ((size_t)(d - dst) > UINT32_MAX || t->scratch_len > UINT32_MAX)
		return NULL;
	if (emit) {
		if (!(e = push(t, op)))
			return NULL;
		e->s = NULL;
		e->off = (uint32_t)t->scratch_len;
		e->len = (uint32_t)(d - dst);
		t->scratch_len += (size_t)(d - dst);
	}
	return p + 1;
}

/* The string whose opening quote is at p, as op (STR or KEYS) when emit, or only checked:
 * the byte after it, or NULL (not ours). */
static inline const char *parse_string(jr *r, const char *p, uint32_t op, int emit)
{
	size_t run;
	br_jt_ent *e;

	p++;
	run = plain_run(p, r->end, r->begin);
	if (p + run >= r->end || p[run] != '"')
		return parse_escaped(r, p, run, op, emit, NULL, NULL);
	if (emit) {
		if (run > UINT32_MAX || !(e = push(r->t, op)))
			return NULL;
		e->s = p;
		e->len = (uint32_t)run;
	}
	return p + run + 1;
}

/* A number in strict JSON syntax at p: *v gets its value (as strtod gives it) and *integral
 * whether it is an integer below 10^15 (so an integral value in range); the byte after it,
 * or NULL. */
static const char *parse_number(const char *p, const char *end, double *v, int *integral)
{
	const char *s = p, *digits, *int_end;
	uint64_t u = 0;
	char tok[65];
	size_t n;

	if (p < end && *p == '-')
		p++;
	digits = p;
	if (p < end && *p == '0') {
		p++;
	} else if (p < end && *p >= '1' && *p <= '9') {
		/* (the digits' value: used for at most 15 of them) */
		do {
			u = u * 10 + (uint64_t)(*p - '0');
			p++;
		} while (p < end && *p >= '0' && *p <= '9');
	} else {
		return NULL;
	}
	int_end = p;
	if (p < end && *p == '.') {
		const char *d = ++p;
		while (p < end && *p >= '0' && *p <= '9') p++;
		if (p == d) return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		const char *d;
		p++;
		if (p < end && (*p == '+' || *p == '-')) p++;
		d = p;
		while (p < end && *p >= '0' && *p <= '9') p++;
		if (p == d) return NULL;
	}
	if (int_end == p && p - digits <= 15) {
		/* an integer below 10^15: exact as a double, the very value strtod gives */
		double x = (double)u;
		*v = *s == '-' ? -x : x;
		*integral = 1;
		return p;
	}
	n = (size_t)(p - s);
	if (n >= sizeof tok)
		return NULL;
	memcpy(tok, s, n);
	tok[n] = '\0';
	*v = strtod(tok, NULL);
	*integral = 0;
	return p;
}

static inline const char *literal(const char *p, const char *end, const char *word, size_t n)
{
	if ((size_t)(end - p) < n || memcmp(p, word, n) != 0)
		return NULL;
	return p + n;
}

static const char *read_value(jr *r, const char *p, int32_t rule, int emit);

/* The number at p, as INT when int_rule (an integer member) and its value is integral and
 * in range (as the reader's math.tointeger(x) == x), else as NUM: the byte after it, or NULL. */
static const char *read_number(jr *r, const char *p, int int_rule, int emit)
{
	br_jt_ent *e;
	double v;
	int integral;

	if (!(p = parse_number(p, r->end, &v, &integral)))
		return NULL;
	if (!emit)
		return p;
	if (int_rule && !integral)
		int_rule = v >= -9223372036854775808.0 && v < 9223372036854775808.0 && (double)(long long)v == v;
	if (!(e = push(r->t, int_rule ? BR_JT_INT : BR_JT_NUM)))
		return NULL;
	e->num = v;
	return p;
}

/* The start of an object or array (op OBJ, ARR or LIST): one level deeper and its entry
 * when emit; 0 past the depth limit or out of memory. */
static inline int open_container(br_jtape *t, uint32_t op, int emit)
{
	return ++t->depth <= BR_JT_MAX_DEPTH && (!emit || push(t, op));
}

/* The end of the object or array whose entry is at open, with count members or elements:
 * its n set and an END entry when emit. */
static int close_container(br_jtape *t, size_t open, uint32_t count, int emit)
{
	if (emit) {
		t->ents[open].n = count;
		if (!push(t, BR_JT_END))
			return 0;
	}
	t->depth--;
	return 1;
}

/* Two words that, for names of one length up to 16, are equal only for the same bytes
 * (overlapping loads within the name: bytes 0..7 and the last eight; or 0..3 and the last
 * four; or the first, middle and last byte); a longer name's middle bytes are compared
 * apart (same_middle). */
static inline void name_words(const char *s, size_t len, uint64_t *w0, uint64_t *w1)
{
	if (len >= 8) {
		*w0 = br_load64(s);
		*w1 = br_load64(s + len - 8);
	} else if (len >= 4) {
		*w0 = br_load32(s) | (uint64_t)br_load32(s + len - 4) << 32;
		*w1 = 0;
	} else if (len > 0) {
		*w0 = (unsigned char)s[0] | (uint64_t)(unsigned char)s[len / 2] << 8 |
		      (uint64_t)(unsigned char)s[len - 1] << 16;
		*w1 = 0;
	} else {
		*w0 = *w1 = 0;
	}
}

/* Bytes 8 .. len - 8 of two names of length len (above 16). */
static int same_middle(const char *a, const char *b, size_t len)
{
	return memcmp(a + 8, b + 8, len - 16) == 0;
}

/* The member named key[0..len) among c[0] .. last[-1], or NULL. */
static inline const br_jr_member *find_member(const br_jr_set *set, const br_jr_member *c,
					      const br_jr_member *last, const char *key, size_t len)
{
	uint64_t w0, w1;

	name_words(key, len, &w0, &w1);
	for (; c < last; c++)
		if (c->name_len == len && c->w0 == w0 && c->w1 == w1 &&
		    (len <= 16 || same_middle(set->names + c->name_off, key, len)))
			return c;
	return NULL;
}

/* After an object's member at p: the first byte of the next member (after a ','), or the
 * byte after the '}' with *closed set; NULL on anything else. */
static inline const char *after_member(const char *p, const char *end, int *closed)
{
	p = skip_ws(p, end);
	if (p >= end)
		return NULL;
	if (*p == '}') {
		*closed = 1;
		return p + 1;
	}
	return *p == ',' ? skip_ws(p + 1, end) : NULL;
}

/* The object at p ('{') without a shape: the byte after it, or NULL. */
static const char *read_plain_object(jr *r, const char *p, int emit)
{
	br_jtape *t = r->t;
	const char *end = r->end;
	size_t open = t->n;
	uint32_t count = 0;
	int closed = 0;

	if (!open_container(t, BR_JT_OBJ, emit))
		return NULL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}') {
		p++;
	} else {
		for (;;) {
			if (p >= end || *p != '"')
				return NULL;
			if (!(p = parse_string(r, p, BR_JT_KEYS, emit)))
				return NULL;
			p = skip_ws(p, end);
			if (p >= end || *p != ':')
				return NULL;
			p = skip_ws(p + 1, end);
			if (p >= end || !(p = read_value(r, p, BR_JR_KEEP, emit)))
				return NULL;
			count++;
			if (!(p = after_member(p, end, &closed)))
				return NULL;
			if (closed)
				break;
		}
	}
	return close_container(t, open, count, emit) ? p : NULL;
}

/* The object at p ('{') by the structure or union node `node`: the byte after it, or NULL. */
static const char *read_object(jr *r, const char *p, int node, int emit)
{
	br_jtape *t = r->t;
	const br_jr_set *set = r->set;
	const br_jr_node *nd = &set->nodes[node];
	/* (read once: the compiler cannot tell the tape's writes leave them alone) */
	const br_jr_member *members = set->members + nd->first, *last = members + nd->count;
	const int is_union = nd->kind == BR_JR_UNION;
	const char *end = r->end, *begin = r->begin;
	size_t open = t->n;
	uint32_t count = 0;
	int closed = 0;

	if (!open_container(t, BR_JT_OBJ, emit))
		return NULL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}') {
		p++;
	} else {
		for (;;) {
			const char *key;
			size_t key_len;
			const br_jr_member *m;

			if (p >= end || *p != '"')
				return NULL;
			key = p + 1;
			key_len = plain_run(key, end, begin);
			if (key + key_len < end && key[key_len] == '"') {
				p = key + key_len + 1;
			} else {
				/* an escaped key: decoded into the scratch, its bytes not kept */
				size_t mark = t->scratch_len;
				if (!(p = parse_escaped(r, key, key_len, 0, 0, &key, &key_len)))
					return NULL;
				t->scratch_len = mark;
			}
			m = find_member(set, members, last, key, key_len);
			p = skip_ws(p, end);
			if (p >= end || *p != ':')
				return NULL;
			p = skip_ws(p + 1, end);
			if (p >= end)
				return NULL;
			if (!m) {
				/* a member the model does not know: dropped (a union's: not ours) */
				if (is_union && *p != 'n')
					return NULL;
				if (*p == '"')
					p = parse_string(r, p, 0, 0);
				else
					p = read_value(r, p, BR_JR_KEEP, 0);
				if (!p)
					return NULL;
			} else {
				br_jt_ent *k;
				if (emit) {
					if (!(k = push(t, BR_JT_KEY)))
						return NULL;
					k->n = (uint32_t)(m - set->members);
				}
				if (*p == 'n') {
					/* null: the member is removed (in text order: a later null of
					 * a duplicated key removes the earlier value) */
					if (!(p = literal(p, end, "null", 4)) || (emit && !push(t, BR_JT_NIL)))
						return NULL;
				} else if (*p == '"' && m->rule >= BR_JR_KEEP) {
					/* a string is kept as decoded, whatever shape the rule gives */
					if (!(p = parse_string(r, p, BR_JT_STR, emit)))
						return NULL;
				} else if (*p == '{' && m->rule >= BR_JR_NODE &&
					   set->nodes[m->rule - BR_JR_NODE].kind != BR_JR_LISTK) {
					/* (read_value's first case, without its dispatch) */
					if (!(p = read_object(r, p, m->rule - BR_JR_NODE, emit)))
						return NULL;
				} else if (((*p >= '0' && *p <= '9') || *p == '-') && m->rule >= BR_JR_KEEP) {
					/* a number: INT by an integer member's rule, else NUM */
					if (!(p = read_number(r, p, m->rule == BR_JR_INT, emit)))
						return NULL;
				} else if (!(p = read_value(r, p, m->rule, emit))) {
					return NULL;
				}
				count++;
			}
			if (!(p = after_member(p, end, &closed)))
				return NULL;
			if (closed)
				break;
		}
	}
	return close_container(t, open, count, emit) ? p : NULL;
}

/* The array at p ('['): elements by rule elem (nulls kept); a list when list. The byte
 * after it, or NULL. */
static const char *read_array(jr *r, const char *p, int list, int32_t elem, int emit)
{
	br_jtape *t = r->t;
	const char *end = r->end;
	size_t open = t->n;
	uint32_t count = 0;

	if (!open_container(t, list ? BR_JT_LIST : BR_JT_ARR, emit))
		return NULL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == ']') {
		p++;
	} else {
		for (;;) {
			p = skip_ws(p, end);
			if (p >= end)
				return NULL;
			if (!(p = read_value(r, p, *p == 'n' ? BR_JR_KEEP : elem, emit)))
				return NULL;
			count++;
			p = skip_ws(p, end);
			if (p >= end)
				return NULL;
			if (*p == ']')
				break;
			if (*p != ',')
				return NULL;
			p++;
		}
		p++;
	}
	return close_container(t, open, count, emit) ? p : NULL;
}

/* The value at p (not a blank, before the end) by rule (KEEP: as decoded, no shape): the
 * byte after it, or NULL. */
static const char *read_value(jr *r, const char *p, int32_t rule, int emit)
{
	if (rule >= BR_JR_NODE) {
		const br_jr_node *nd = &r->set->nodes[rule - BR_JR_NODE];
		int list = nd->kind == BR_JR_LISTK;
		if (*p == (list ? '{' : '['))
			return NULL; /* a list given an object, a structure given an array */
		if (*p == '{')
			return read_object(r, p, rule - BR_JR_NODE, emit);
		if (*p == '[')
			return read_array(r, p, 1, nd->elem, emit);
		rule = BR_JR_KEEP; /* a scalar where a shape was expected: kept as decoded */
	} else if (rule != BR_JR_KEEP && rule != BR_JR_INT) {
		return NULL;
	}
	switch (*p) {
	case '{':
		return read_plain_object(r, p, emit);
	case '[':
		return read_array(r, p, 0, BR_JR_KEEP, emit);
	case '"':
		return parse_string(r, p, BR_JT_STR, emit);
	case 't':
		if (!(p = literal(p, r->end, "true", 4)) || (emit && !push(r->t, BR_JT_TRUE)))
			return NULL;
		return p;
	case 'f':
		if (!(p = literal(p, r->end, "false", 5)) || (emit && !push(r->t, BR_JT_FALSE)))
			return NULL;
		return p;
	case 'n':
		if (!(p = literal(p, r->end, "null", 4)) || (emit && !push(r->t, BR_JT_NULL)))
			return NULL;
		return p;
	default:
		return read_number(r, p, rule == BR_JR_INT, emit);
	}
}

void br_jtape_init(br_jtape *t)
{
	memset(t, 0, sizeof *t);
}

void br_jtape_free(br_jtape *t)
{
	free(t->ents);
	free(t->scratch);
	memset(t, 0, sizeof *t);
}

int br_jtape_append(br_jtape *t, const br_jr_set *set, int node, const char *s, size_t n)
{
	size_t n0 = t->n, s0 = t->scratch_len;
	const char *p, *end = s + n;
	jr r;

	t->depth = 0;
	r.t = t;
	r.set = set;
	r.begin = s;
	r.end = end;
	p = skip_ws(s, end);
	if (node >= 0) {
		if (!set || (size_t)node >= set->nnodes || set->nodes[node].kind == BR_JR_LISTK ||
		    p >= end || *p != '{' || !(p = read_object(&r, p, node, 1)))
			goto fail;
	} else if (p >= end || !(p = read_value(&r, p, BR_JR_KEEP, 1))) {
		goto fail;
	}
	if (skip_ws(p, end) != end)
		goto fail;
	return 1;
fail:
	t->n = n0;
	t->scratch_len = s0;
	return 0;
}

int br_jtape_mark(br_jtape *t, uint32_t op, uint32_t n)
{
	br_jt_ent *e = push(t, op);

	if (!e)
		return 0;
	e->n = n;
	return 1;
}

int br_jtape_read(br_jtape *t, const br_jr_set *set, int node, const char *s, size_t n)
{
	br_jtape_clear(t);
	if (!br_jtape_append(t, set, node, s, n))
		return 0;
	br_jtape_finish(t);
	return 1;
}

void br_jtape_finish(br_jtape *t)
{
	size_t i;

	if (!t->scratch_len)
		return; /* (no string was unescaped: every entry points into the text) */
	for (i = 0; i < t->n; i++) {
		br_jt_ent *e = &t->ents[i];
		if ((e->op == BR_JT_STR || e->op == BR_JT_KEYS) && !e->s)
			e->s = t->scratch + e->off;
	}
}

void br_jtape_clear(br_jtape *t)
{
	t->n = 0;
	t->scratch_len = 0;
}

void br_jr_set_init(br_jr_set *set)
{
	memset(set, 0, sizeof *set);
}

void br_jr_set_free(br_jr_set *set)
{
	free(set->nodes);
	free(set->members);
	free(set->names);
	memset(set, 0, sizeof *set);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 8;
	void *q;

	if (need <= *cap)
		return 1;
	while (c < need)
		c *= 2;
	if (!(q = realloc(*p, c * size)))
		return 0;
	*p = q;
	*cap = c;
	return 1;
}

int br_jr_set_node(br_jr_set *set, int kind, int32_t elem)
{
	br_jr_node *nd;

	if (set->nnodes >= INT32_MAX - BR_JR_NODE ||
	    !grow((void **)&set->nodes, &set->nodes_cap, set->nnodes + 1, sizeof *set->nodes))
		return -1;
	nd = &set->nodes[set->nnodes];
	nd->kind = kind;
	nd->first = (uint32_t)set->nmembers;
	nd->count = 0;
	nd->elem = elem;
	return (int)set->nnodes++;
}

int br_jr_set_member(br_jr_set *set, int node, const char *name, size_t len, int32_t rule)
{
	br_jr_node *nd = &set->nodes[node];
	br_jr_member *m;

	if (nd->count == 0)
		nd->first = (uint32_t)set->nmembers;
	else if (nd->first + nd->count != set->nmembers)
		return -1; /* a node's members are added together */
	if (len > UINT32_MAX || set->nmembers >= UINT32_MAX ||
	    !grow((void **)&set->members, &set->members_cap, set->nmembers + 1, sizeof *set->members) ||
	    !grow((void **)&set->names, &set->names_cap, set->names_len + len + 1, 1))
		return -1;
	memcpy(set->names + set->names_len, name, len);
	set->names[set->names_len + len] = '\0';
	m = &set->members[set->nmembers];
	m->name_off = (uint32_t)set->names_len;
	m->name_len = (uint32_t)len;
	m->rule = rule;
	name_words(set->names + set->names_len, len, &m->w0, &m->w1);
	set->names_len += len + 1;
	nd->count++;
	return (int)set->nmembers++;
}
