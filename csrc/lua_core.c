/* bedrock.core: the private C module behind require "bedrock". It only gathers what
 * the binding files register; each file owns one C object (signer, decoder/encoder,
 * transfer). */
#include <errno.h>
#include <time.h>
#include "lua_bedrock.h"
#include "br_base64.h"

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

/* core.b64decode(s) -> bytes | nil, "invalid base64 at offset N", "BAD_BASE64". */
static int l_b64decode(lua_State *L)
{
	size_t n, len = 0, bad = 0;
	const char *s = luaL_checklstring(L, 1, &n);
	uint8_t *out = lua_newuserdata(L, br_base64_decoded_max(n) + 1);
	br_status st = br_base64_decode(s, n, out, &len, &bad);

	if (st != BR_OK)
		return br_lua_failf(L, st, "%s at offset %d", br_status_message(st), (int)bad);
	lua_pushlstring(L, (const char *)out, len);
	return 1;
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
	lua_pushcfunction(L, l_b64decode);
	lua_setfield(L, -2, "b64decode");
	br_lua_open_sigv4(L);
	br_lua_open_eventstream(L);
	br_lua_open_http(L);
	br_lua_open_crypto(L);
	return 1;
}
