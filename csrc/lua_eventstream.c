/* Placeholder while the eventstream binding is written; replaced by the real file. */
#include "lua_bedrock.h"

void br_lua_open_eventstream(lua_State *L)
{
	(void)L;
}
