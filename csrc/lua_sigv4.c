/* Placeholder while the sigv4 binding is written; replaced by the real file. */
#include "lua_bedrock.h"

void br_lua_open_sigv4(lua_State *L)
{
	(void)L;
}
