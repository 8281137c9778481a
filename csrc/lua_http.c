/* Placeholder while the http binding is written; replaced by the real file. */
#include "lua_bedrock.h"

void br_lua_open_http(lua_State *L)
{
	(void)L;
}
