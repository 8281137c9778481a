/* bedrock.core: the private C module behind require "bedrock". It only gathers what
 * the binding files register; each file owns one C object (signer, decoder/encoder,
 * transfer). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lua_bedrock.h"
#include "br_base64.h"
#include "br_json.h"

#define BR_CORE_VERSION "0.1.0"

int luaopen_bedrock_core(lua_State *L);

/* core.sleep(seconds): blocks the calling thread (retry backoff in scripts; a coroutine
 * scheduler or OpenResty passes its own sleep instead). Restarts after signals. */
static int l_sleep(lua_State *L)
{
	lua_Number sec = luaL_checknumber(L, 1);
	struct timespec ts;

	luaL_argcheck(L, sec >= 0 && sec <= 86400, 1, "seconds out of range");
	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = (long)((sec - (lua_Number)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return 0;
}

/* core.monotonic() -> seconds of a monotonic clock (for schedulers' deadlines). */
static int l_monotonic(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
	return 1;
}

/* core.b64encode(s) -> base64 text (padded). */
static int l_b64encode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	size_t m;
	char *out;

	luaL_argcheck(L, n < ((size_t)-1) / 4 * 3 - 3, 1, "string too long");
	m = br_base64_encoded_len(n);
	/* Scratch as a userdata: a memory error in lua_pushlstring cannot leak it. */
	out = lua_newuserdata(L, m ? m : 1);
	br_base64_encode((const uint8_t *)s, n, out);
	lua_pushlstring(L, out, m);
	return 1;
}

/* Scratch: one malloc'd buffer per module instance (an upvalue of core.b64decode,
 * core.json_escape and core.json_quote), reused call after call up to SCRATCH_MAX bytes. LuaJIT maps every large
 * block it allocates straight from the kernel and unmaps it when freed, so a fresh
 * scratch userdata per megabyte-sized chunk costs page faults; larger needs still get
 * a userdata of their own. */
#define SCRATCH_MAX (8u << 20)
typedef struct { size_t cap; unsigned char *p; } l_scratch;

static int l_scratch_gc(lua_State *L)
{
	l_scratch *sc = lua_touserdata(L, 1);
	free(sc->p);
	sc->p = NULL;
	sc->cap = 0;
	return 0;
}

/* n bytes of scratch; raises on memory exhaustion. */
static unsigned char *scratch(lua_State *L, size_t n)
{
	l_scratch *sc = lua_touserdata(L, lua_upvalueindex(1));

	if (n <= sc->cap)
		return sc->p;
	if (n <= SCRATCH_MAX) {
		size_t cap = n < 65536 ? 65536 : n + n / 2;
		unsigned char *p;
		if (cap > SCRATCH_MAX)
			cap = SCRATCH_MAX;
		p = realloc(sc->p, cap);
		if (p) {
			sc->p = p;
			sc->cap = cap;
			return p;
		}
	}
	return lua_newuserdata(L, n);
}

/* core.b64decode(s) -> bytes | nil, "invalid base64 at offset N", "BAD_BASE64". */
static int l_b64decode(lua_State *L)
{
	size_t n, len = 0, bad = 0;
	const char *s = luaL_checklstring(L, 1, &n);
	uint8_t *out = scratch(L, br_base64_decoded_max(n) + 1);
	br_status st = br_base64_decode(s, n, out, &len, &bad);

	if (st != BR_OK)
		return br_lua_failf(L, st, "%s at offset %d", br_status_message(st), (int)bad);
	lua_pushlstring(L, (const char *)out, len);
	return 1;
}

/* Strings up to this size are escaped in one pass into the module's scratch (which
 * then needs six times their size); longer ones are measured first and written once. */
#define ESCAPE_ONE_PASS_MAX (256u << 10)

/* Pushes the JSON escaping of s[0..n), between quotes when `quoted`; returns 1. The
 * string itself when nothing needs escaping and no quotes are asked for. */
static int push_escaped(lua_State *L, const char *s, size_t n, int quoted)
{
	size_t len, q = quoted ? 1 : 0;
	char *out;

	if (n <= ESCAPE_ONE_PASS_MAX) {
		out = (char *)scratch(L, BR_JSON_ESCAPE_ROOM(n) + 2);
		len = br_json_escape_into(s, n, out + q);
	} else {
		len = br_json_escaped_len(s, n);
		luaL_argcheck(L, len < ((size_t)-1) - 2, 1, "string too long");
		out = lua_newuserdata(L, len + 2);
		br_json_escape(s, n, out + q);
	}
	if (len == n && !quoted) {
		lua_settop(L, 1); /* nothing to escape: the string itself */
		return 1;
	}
	if (quoted) {
		out[0] = '"';
		out[len + 1] = '"';
	}
	lua_pushlstring(L, out, len + 2 * q);
	return 1;
}

/* core.json_escape(s) -> the JSON string body of s (no quotes); s itself when nothing
 * needs escaping. core.json_quote(s) -> '"' .. json_escape(s) .. '"'. */
static int l_json_escape(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	return push_escaped(L, s, n, 0);
}

static int l_json_quote(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	return push_escaped(L, s, n, 1);
}

int luaopen_bedrock_core(lua_State *L)
{
	lua_newtable(L);
	lua_pushliteral(L, BR_CORE_VERSION);
	lua_setfield(L, -2, "_VERSION");
	lua_pushcfunction(L, l_sleep);
	lua_setfield(L, -2, "sleep");
	lua_pushcfunction(L, l_monotonic);
	lua_setfield(L, -2, "monotonic");
	lua_pushcfunction(L, l_b64encode);
	lua_setfield(L, -2, "b64encode");
	lua_newuserdata(L, sizeof(l_scratch));
	memset(lua_touserdata(L, -1), 0, sizeof(l_scratch));
	lua_newtable(L);
	lua_pushcfunction(L, l_scratch_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, l_b64decode, 1);
	lua_setfield(L, -4, "b64decode");
	lua_pushcclosure(L, l_json_escape, 1);
	lua_setfield(L, -3, "json_escape");
	lua_pushcclosure(L, l_json_quote, 1);
	lua_setfield(L, -2, "json_quote");
	br_lua_open_sigv4(L);
	br_lua_open_eventstream(L);
	br_lua_open_http(L);
	br_lua_open_crypto(L);
	br_lua_open_json(L);
	br_lua_open_buffer(L);
	return 1;
}
