/* bedrock.core: the private C module behind require "bedrock". It only gathers what
 * the binding files register; each file owns one C object (signer, decoder/encoder,
 * transfer). */
#include "lua_bedrock.h"

#define BR_CORE_VERSION "0.1.0"

int luaopen_bedrock_core(lua_State *L);

int luaopen_bedrock_core(lua_State *L)
{
	lua_newtable(L);
	lua_pushliteral(L, BR_CORE_VERSION);
	lua_setfield(L, -2, "_VERSION");
	br_lua_open_sigv4(L);
	br_lua_open_eventstream(L);
	br_lua_open_http(L);
	return 1;
}
