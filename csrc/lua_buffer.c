/* core.buffer(): a growable byte buffer for Lua, with the part of LuaJIT's string.buffer
 * the stream assembler needs (put, tostring, reset, #), so that both Lua versions join
 * a long answer's deltas the same way: appended bytes, no string per delta kept.
 *
 * Memory comes from the Lua state's allocator (lua_getallocf), so a host that limits
 * or counts its state's memory sees the buffer too; it doubles as it grows and is
 * returned at reset, close or collection. A failed growth raises a memory error and
 * leaves the buffer as it was. */
#include <string.h>
#include "lua_bedrock.h"

#define BUFFER_MT "bedrock.buffer"

typedef struct {
	char *p;
	size_t len, cap;
} l_buffer;

static l_buffer *check_buffer(lua_State *L)
{
	return luaL_checkudata(L, 1, BUFFER_MT);
}

static void release(lua_State *L, l_buffer *b)
{
	void *ud;
	lua_Alloc f = lua_getallocf(L, &ud);

	if (b->p)
		f(ud, b->p, b->cap, 0);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* buf:put(s, ...) -> buf: appends the strings (numbers as by tostring). */
static int l_buffer_put(lua_State *L)
{
	l_buffer *b = check_buffer(L);
	int i, top = lua_gettop(L);

	for (i = 2; i <= top; i++) {
		size_t n;
		const char *s = luaL_checklstring(L, i, &n);
		if (n == 0)
			continue; /* (an empty buffer has no memory to copy into) */
		if (n > b->cap - b->len) {
			void *ud;
			lua_Alloc f = lua_getallocf(L, &ud);
			size_t cap = b->cap ? b->cap : 256;
			char *q;
			while (cap - b->len < n) {
				if (cap > ((size_t)-1) / 2)
					return luaL_error(L, "buffer too large");
				cap *= 2;
			}
			q = f(ud, b->p, b->cap, cap);
			if (!q)
				return luaL_error(L, "not enough memory");
			b->p = q;
			b->cap = cap;
		}
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
	lua_settop(L, 1);
	return 1;
}

/* buf:tostring() -> the bytes as one string (the buffer keeps them). */
static int l_buffer_tostring(lua_State *L)
{
	l_buffer *b = check_buffer(L);
	lua_pushlstring(L, b->p ? b->p : "", b->len);
	return 1;
}

/* buf:reset() -> buf: empty, its memory returned. */
static int l_buffer_reset(lua_State *L)
{
	release(L, check_buffer(L));
	lua_settop(L, 1);
	return 1;
}

static int l_buffer_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)check_buffer(L)->len);
	return 1;
}

static int l_buffer_gc(lua_State *L)
{
	release(L, check_buffer(L));
	return 0;
}

/* core.buffer() -> an empty buffer. */
static int l_buffer_new(lua_State *L)
{
	l_buffer *b = lua_newuserdatauv(L, sizeof *b, 0);
	b->p = NULL;
	b->len = b->cap = 0;
	luaL_setmetatable(L, BUFFER_MT);
	return 1;
}

void br_lua_open_buffer(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"put", l_buffer_put},
		{"tostring", l_buffer_tostring},
		{"reset", l_buffer_reset},
		{NULL, NULL},
	};
	static const luaL_Reg meta[] = {
		{"__gc", l_buffer_gc},
		{"__len", l_buffer_len},
		{"__tostring", l_buffer_tostring},
		{NULL, NULL},
	};

	luaL_newmetatable(L, BUFFER_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_buffer_new);
	lua_setfield(L, -2, "buffer");
}
