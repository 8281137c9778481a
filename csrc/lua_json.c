/* core.json_decode(s, sentinel) -> value, true | (nothing)
 *
 * The fast path of json.decode_raw: it builds exactly the Lua value that lua-cjson (the
 * general path) builds, with json.lua's empty-array rule, for the JSON texts it accepts:
 *   objects -> tables (members set in text order, the last of a duplicated key wins),
 *   arrays -> tables 1..n, an empty array -> { sentinel }, strings -> strings (escapes
 *   decoded, \uXXXX and surrogate pairs as UTF-8), numbers -> floats (strtod, as cjson:
 *   every number is a float), true/false, null -> the NULL light userdata (cjson.null).
 * It accepts strict JSON only, at most MAX_DEPTH levels deep, and answers nothing for
 * anything else (raw control bytes in strings, lone surrogates, leading zeros, numbers
 * longer than 64 characters, errors of every kind): the caller then runs lua-cjson on the
 * same text, which gives its own result or its own error. So there is one JSON behaviour,
 * cjson's, and this file only makes the common case faster (no copy through a buffer per
 * character, no pcall, no pre-scan for empty arrays). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lua_bedrock.h"

#define MAX_DEPTH 128

typedef struct {
	lua_State *L;
	const char *p, *end;
	int depth;
	int sentinel; /* stack index of the empty-array sentinel string */
} jp;

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* Length of the run of ordinary string bytes at p (no '"', '\\' nor byte below 0x20),
 * eight bytes at a time. */
static size_t plain_run(const char *p, const char *end)
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

/* The string whose opening quote is at j->p: pushed, 1; or 0 (not ours). */
static int parse_string(jp *j)
{
	const char *p = j->p + 1, *end = j->end;
	size_t run = plain_run(p, end);
	luaL_Buffer b;

	if (p + run < end && p[run] == '"') {
		lua_pushlstring(j->L, p, run);
		j->p = p + run + 1;
		return 1;
	}
	luaL_buffinit(j->L, &b);
	for (;;) {
		char c;
		luaL_addlstring(&b, p, run);
		p += run;
		if (p >= end)
			return 0;
		c = *p;
		if (c == '"')
			break;
		if (c != '\\' || end - p < 2)
			return 0; /* a raw control byte: cjson decides */
		switch (p[1]) {
		case '"': luaL_addchar(&b, '"'); p += 2; break;
		case '\\': luaL_addchar(&b, '\\'); p += 2; break;
		case '/': luaL_addchar(&b, '/'); p += 2; break;
		case 'b': luaL_addchar(&b, '\b'); p += 2; break;
		case 'f': luaL_addchar(&b, '\f'); p += 2; break;
		case 'n': luaL_addchar(&b, '\n'); p += 2; break;
		case 'r': luaL_addchar(&b, '\r'); p += 2; break;
		case 't': luaL_addchar(&b, '\t'); p += 2; break;
		case 'u': {
			unsigned cp, lo;
			char u[4];
			size_t n;
			if (!hex4(p + 2, end, &cp))
				return 0;
			p += 6;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return 0;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return 0;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
			if (cp < 0x80) {
				u[0] = (char)cp;
				n = 1;
			} else if (cp < 0x800) {
				u[0] = (char)(0xC0 | (cp >> 6));
				u[1] = (char)(0x80 | (cp & 0x3F));
				n = 2;
			} else if (cp < 0x10000) {
				u[0] = (char)(0xE0 | (cp >> 12));
				u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
				u[2] = (char)(0x80 | (cp & 0x3F));
				n = 3;
			} else {
				u[0] = (char)(0xF0 | (cp >> 18));
				u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
				u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
				u[3] = (char)(0x80 | (cp & 0x3F));
				n = 4;
			}
			luaL_addlstring(&b, u, n);
			break;
		}
		default:
			return 0;
		}
		run = plain_run(p, end);
	}
	luaL_pushresult(&b);
	j->p = p + 1;
	return 1;
}

/* A number in strict JSON syntax at j->p: pushed as a float, 1; or 0. */
static int parse_number(jp *j)
{
	const char *p = j->p, *s = p, *end = j->end;
	char tok[65];
	size_t n;

	const char *digits, *int_end;

	if (p < end && *p == '-')
		p++;
	digits = p;
	if (p < end && *p == '0') {
		p++;
	} else if (p < end && *p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9') p++;
	} else {
		return 0;
	}
	int_end = p;
	if (p < end && *p == '.') {
		const char *d = ++p;
		while (p < end && *p >= '0' && *p <= '9') p++;
		if (p == d) return 0;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		const char *d;
		p++;
		if (p < end && (*p == '+' || *p == '-')) p++;
		d = p;
		while (p < end && *p >= '0' && *p <= '9') p++;
		if (p == d) return 0;
	}
	n = (size_t)(p - s);
	if (p - digits <= 15 && int_end == p) {
		/* an integer below 10^15: exact as a double, the very value strtod gives */
		double v = 0;
		const char *d;
		for (d = digits; d < p; d++)
			v = v * 10 + (*d - '0');
		lua_pushnumber(j->L, (lua_Number)(*s == '-' ? -v : v));
		j->p = p;
		return 1;
	}
	if (n >= sizeof tok)
		return 0;
	memcpy(tok, s, n);
	tok[n] = '\0';
	lua_pushnumber(j->L, (lua_Number)strtod(tok, NULL));
	j->p = p;
	return 1;
}

static int parse_value(jp *j);

/* Members and elements are first pushed on the stack, then the table is made at its
 * final size and filled in text order: one allocation per table instead of a rehash at
 * every power of two. */
static int parse_object(jp *j)
{
	lua_State *L = j->L;
	int base = lua_gettop(L), n = 0, i;

	if (++j->depth > MAX_DEPTH)
		return 0;
	j->p = skip_ws(j->p + 1, j->end);
	if (j->p < j->end && *j->p == '}') {
		lua_newtable(L);
		j->p++;
		j->depth--;
		return 1;
	}
	for (;;) {
		if (!lua_checkstack(L, 4) || j->p >= j->end || *j->p != '"' || !parse_string(j))
			return 0;
		j->p = skip_ws(j->p, j->end);
		if (j->p >= j->end || *j->p != ':')
			return 0;
		j->p++;
		if (!parse_value(j))
			return 0;
		n++;
		j->p = skip_ws(j->p, j->end);
		if (j->p >= j->end)
			return 0;
		if (*j->p == '}')
			break;
		if (*j->p != ',')
			return 0;
		j->p = skip_ws(j->p + 1, j->end);
	}
	lua_createtable(L, 0, n);
	for (i = 0; i < n; i++) {
		lua_pushvalue(L, base + 2 * i + 1);
		lua_pushvalue(L, base + 2 * i + 2);
		lua_rawset(L, -3);
	}
	lua_replace(L, base + 1);
	lua_settop(L, base + 1);
	j->p++;
	j->depth--;
	return 1;
}

static int parse_array(jp *j)
{
	lua_State *L = j->L;
	int base = lua_gettop(L), n = 0, i;

	if (++j->depth > MAX_DEPTH)
		return 0;
	j->p = skip_ws(j->p + 1, j->end);
	if (j->p < j->end && *j->p == ']') {
		/* json.lua's mark for an empty array (cjson alone cannot tell [] from {}) */
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, j->sentinel);
		lua_rawseti(L, -2, 1);
		j->p++;
		j->depth--;
		return 1;
	}
	for (;;) {
		if (!lua_checkstack(L, 3) || !parse_value(j))
			return 0;
		n++;
		j->p = skip_ws(j->p, j->end);
		if (j->p >= j->end)
			return 0;
		if (*j->p == ']')
			break;
		if (*j->p != ',')
			return 0;
		j->p++;
	}
	lua_createtable(L, n, 0);
	for (i = 1; i <= n; i++) {
		lua_pushvalue(L, base + i);
		lua_rawseti(L, -2, i);
	}
	lua_replace(L, base + 1);
	lua_settop(L, base + 1);
	j->p++;
	j->depth--;
	return 1;
}

static int literal(jp *j, const char *word, size_t n)
{
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return 0;
	j->p += n;
	return 1;
}

static int parse_value(jp *j)
{
	j->p = skip_ws(j->p, j->end);
	if (j->p >= j->end)
		return 0;
	switch (*j->p) {
	case '{': return parse_object(j);
	case '[': return parse_array(j);
	case '"': return parse_string(j);
	case 't':
		if (!literal(j, "true", 4)) return 0;
		lua_pushboolean(j->L, 1);
		return 1;
	case 'f':
		if (!literal(j, "false", 5)) return 0;
		lua_pushboolean(j->L, 0);
		return 1;
	case 'n':
		if (!literal(j, "null", 4)) return 0;
		lua_pushlightuserdata(j->L, NULL);
		return 1;
	default:
		return parse_number(j);
	}
}

int br_lua_json_push(lua_State *L, const char *s, size_t n, int sentinel)
{
	int top = lua_gettop(L);
	jp j;

	j.L = L;
	j.p = s;
	j.end = s + n;
	j.depth = 0;
	j.sentinel = lua_absindex(L, sentinel);
	if (!parse_value(&j) || skip_ws(j.p, j.end) != j.end) {
		lua_settop(L, top);
		return 0;
	}
	return 1;
}

static int l_json_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);

	luaL_checktype(L, 2, LUA_TSTRING);
	lua_settop(L, 2);
	if (!br_lua_json_push(L, s, n, 2))
		return 0;
	lua_pushboolean(L, 1);
	return 2;
}

void br_lua_open_json(lua_State *L)
{
	lua_pushcfunction(L, l_json_decode);
	lua_setfield(L, -2, "json_decode");
}
