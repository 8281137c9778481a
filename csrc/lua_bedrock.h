/* Shared by the binding files (lua_*.c), the only C files that include Lua headers.
 * Holds the Lua 5.1/LuaJIT <-> 5.4 compat block and the small helpers every binding
 * file uses. Write against the 5.4 API; this maps what LuaJIT lacks. */
#ifndef LUA_BEDROCK_H
#define LUA_BEDROCK_H

#include <lua.h>
#include <lauxlib.h>
#include "br_errors.h"

/* Supported: Lua 5.4 (and later) and LuaJIT 2.1. LuaJIT reports 5.1 like PUC Lua 5.1, so
 * LuaRocks cannot tell them apart; LuaJIT 2.1's lua.h is the one that defines LUA_OK.
 * PUC 5.1 and LuaJIT 2.0 lack luaL_setmetatable/luaL_testudata, 5.2 and 5.3 user values. */
#if LUA_VERSION_NUM == 501 && !defined(LUA_OK)
#error "lua-bedrock supports Lua 5.4 and LuaJIT 2.1; these are the headers of PUC Lua 5.1 (or LuaJIT 2.0). With LuaRocks and LuaJIT 2.1 pass LUA_INCDIR=<LuaJIT 2.1 include dir> (Debian: /usr/include/luajit-2.1)"
#elif LUA_VERSION_NUM == 502 || LUA_VERSION_NUM == 503
#error "lua-bedrock supports Lua 5.4 and LuaJIT 2.1, not Lua 5.2 or 5.3"
#endif

#if LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen(L, (i))
#define lua_absindex(L, i) \
	(((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs(L, (l), 0))
#endif
/* One user value per userdata: 5.1 keeps it in the environment table. */
static inline void *lua_newuserdatauv(lua_State *L, size_t sz, int nuv)
{
	void *p = lua_newuserdata(L, sz);
	if (nuv > 0) {
		lua_createtable(L, nuv, 0);
		lua_setfenv(L, -2);
	}
	return p;
}
/* Reads user value n (1-based) into the stack top; returns its type. */
static inline int lua_getiuservalue(lua_State *L, int idx, int n)
{
	idx = lua_absindex(L, idx);
	lua_getfenv(L, idx);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return LUA_TNIL;
	}
	lua_rawgeti(L, -1, n);
	lua_remove(L, -2);
	return lua_type(L, -1);
}
/* Pops the stack top into user value n. */
static inline int lua_setiuservalue(lua_State *L, int idx, int n)
{
	idx = lua_absindex(L, idx);
	lua_getfenv(L, idx);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 2);
		return 0;
	}
	lua_pushvalue(L, -2);
	lua_rawseti(L, -2, n);
	lua_pop(L, 2);
	return 1;
}
#endif

/* Pushes nil, "<message>", "<CODE>" and returns 3: the `nil, err` convention for input
 * that fails at run time. The third value lets Lua map codes without parsing text. */
static inline int br_lua_fail(lua_State *L, br_status s)
{
	lua_pushnil(L);
	lua_pushstring(L, br_status_message(s));
	lua_pushstring(L, br_status_name(s));
	return 3;
}

/* Same with a formatted message (e.g. naming the offset of a bad header). */
#define br_lua_failf(L, s, ...) \
	(lua_pushnil(L), lua_pushfstring(L, __VA_ARGS__), lua_pushstring(L, br_status_name(s)), 3)

/* Creates metatable `tname` with __name, __index = methods, and the given metamethods
 * (each binding passes __gc and __close pointing at one idempotent close). Leaves
 * nothing on the stack. */
static inline void br_lua_newclass(lua_State *L, const char *tname,
				   const luaL_Reg *methods, const luaL_Reg *meta)
{
	luaL_newmetatable(L, tname);
	lua_pushstring(L, tname);
	lua_setfield(L, -2, "__name");
	luaL_setfuncs(L, meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

/* Each binding file registers its functions into the module table at the stack top. */
void br_lua_open_sigv4(lua_State *L);
void br_lua_open_eventstream(lua_State *L);
void br_lua_open_http(lua_State *L);
void br_lua_open_crypto(lua_State *L);
void br_lua_open_json(lua_State *L);
void br_lua_open_buffer(lua_State *L);

/* The JSON fast path (lua_json.c): pushes the value of the strict JSON text s[0..n) as
 * core.json_decode builds it (empty arrays as { <the string at index sentinel> }) and
 * returns 1, or pushes nothing and returns 0 when the text is not one it takes. */
int br_lua_json_push(lua_State *L, const char *s, size_t n, int sentinel);
/* The same with the output shape's reader applied (lua_json.c, core.json_read): pushes
 * the value of the JSON object s[0..n) read by the rules at stack index desc
 * (shapes.reader_desc), 1; or pushes nothing, 0, for anything it does not take. */
int br_lua_json_read(lua_State *L, const char *s, size_t n, int sentinel, int desc);
/* An event's payload read by the rules for its type et in the readers table at index
 * readers ({ [event type] = desc }), on tape t: pushes the value, 1; or nothing, 0. */
struct br_jtape_s;
int br_lua_json_event(lua_State *L, struct br_jtape_s *t, int readers, const char *et, size_t et_len,
		      const char *s, size_t n, int sentinel);
/* Pushes the compiled reader (a bedrock.JsonReader) of the readers or desc table at index
 * readers and returns its payload (what a batch of lua_eventstream.c takes). */
void *br_lua_json_reader(lua_State *L, int readers);
/* An event batch on tape t (BR_JT_EVT entries, each followed by its value, read by the
 * readers table at index readers) into qe[1..n] (event types) and qv[1..n] (values):
 * returns n (-1 when the Lua stack could not grow; qe/qv then hold what was built). */
int br_lua_json_batch(lua_State *L, struct br_jtape_s *t, int readers, int sentinel, int qe, int qv);
/* For the LuaJIT event path (lua_eventstream.c): a compiled reader (the payload of a
 * bedrock.JsonReader userdata), the root number (from 1) of an event type in it or 0, and
 * the rules and node of a root. */
int br_json_reader_root(const void *reader, const char *et, size_t len);
const struct br_jr_set_s *br_json_reader_set(const void *reader, int k, int *node);

#endif
