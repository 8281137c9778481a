/* benchutil: the two things the Lua benchmarks cannot do portably in plain Lua 5.4 and
 * LuaJIT alike: a monotonic wall clock (os.clock is CPU time of this process only, which
 * would hide the emulator's and the kernel's share of a network round trip), and zlib's
 * crc32 as an in-process baseline. Bench-only; not part of the library. */
#include <lua.h>
#include <lauxlib.h>
#include <time.h>
#include <zlib.h>

int luaopen_benchutil(lua_State *L);

/* now() -> seconds (CLOCK_MONOTONIC), as a float */
static int l_now(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
	return 1;
}

/* zcrc32(s [, crc]) -> crc: zlib's crc32 over s, chained from crc (default 0) */
static int l_zcrc32(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	uLong c = (uLong)luaL_optnumber(L, 2, 0);
	c = crc32(c, (const Bytef *)s, (uInt)n);
	lua_pushnumber(L, (lua_Number)c);
	return 1;
}

int luaopen_benchutil(lua_State *L)
{
	lua_newtable(L);
	lua_pushcfunction(L, l_now);
	lua_setfield(L, -2, "now");
	lua_pushcfunction(L, l_zcrc32);
	lua_setfield(L, -2, "zcrc32");
	return 1;
}
