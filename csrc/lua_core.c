/* bedrock.core: the private C module behind require "bedrock". It only gathers what
 * the binding files register; each file owns one C object (signer, decoder/encoder,
 * transfer). */
#include <errno.h>
#include <time.h>
#include "lua_bedrock.h"

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

int luaopen_bedrock_core(lua_State *L)
{
	lua_newtable(L);
	lua_pushliteral(L, BR_CORE_VERSION);
	lua_setfield(L, -2, "_VERSION");
	lua_pushcfunction(L, l_sleep);
	lua_setfield(L, -2, "sleep");
	br_lua_open_sigv4(L);
	br_lua_open_eventstream(L);
	br_lua_open_http(L);
	return 1;
}
