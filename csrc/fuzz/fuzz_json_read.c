/* libFuzzer target: core.json_read (csrc/lua_json.c), event payloads read by their shape
 * while the tables are built, against the general path it stands in for: whatever
 * json_read takes, core.json_decode must take too, and the event node's reader
 * (lua/bedrock/shapes.lua, node.read) over that value must give the same value (number
 * types, signs of zero and metatables included). The rules come from the real compiled
 * model (bedrock.operations, stream.event_readers), in a real Lua 5.4 state with the
 * whole bedrock.core linked in and lua-cjson loaded as bedrock.json needs it. The first
 * input byte picks the shape (an event type of ConverseStream or
 * InvokeModelWithResponseStream, or an operation's output: Converse's and the others'),
 * the rest is the payload or body. Run from the repository root (package.path ./lua/). Built by
 * .ci/run-fuzz against liblua5.4. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_bedrock_core(lua_State *L);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const char CHECKER[] =
	"package.path = './lua/?.lua;./lua/?/init.lua;' .. package.path\n"
	"local core = require 'bedrock.core'\n"
	"local json = require 'bedrock.json'\n"
	"local ops = require 'bedrock.operations'\n"
	"local stream = require 'bedrock.stream'\n"
	"local cases = {}\n"
	"for _, op in ipairs{ 'ConverseStream', 'InvokeModelWithResponseStream' } do\n"
	"  local node = ops.plans[op].output_stream\n"
	"  local names = {}\n"
	"  for et in pairs(stream.event_readers[node]) do names[#names + 1] = et end\n"
	"  table.sort(names)\n"
	"  for _, et in ipairs(names) do\n"
	"    cases[#cases + 1] = { stream.event_readers[node][et], node.members[et].node.read, et }\n"
	"  end\n"
	"end\n"
	"local shapes = require 'bedrock.shapes'\n"
	"local outs = {}\n"
	"for name, plan in pairs(ops.plans) do\n"
	"  if plan.output and plan.output.kind == 'structure' and not plan.output_stream then outs[#outs + 1] = name end\n"
	"end\n"
	"table.sort(outs)\n"
	"for _, name in ipairs(outs) do\n"
	"  local out = ops.plans[name].output\n"
	"  cases[#cases + 1] = { shapes.reader_desc(out), out.read, name }\n"
	"end\n"
	"assert(#cases >= 10)\n"
	"local mt = math.type\n"
	"local function same(a, b)\n"
	"  if type(a) ~= type(b) then return false end\n"
	"  if type(a) == 'number' then\n"
	"    if mt(a) ~= mt(b) then return false end\n"
	"    return a == b and (a ~= 0 or 1 / a == 1 / b) or (a ~= a and b ~= b)\n"
	"  end\n"
	"  if type(a) ~= 'table' then return a == b end\n"
	"  if getmetatable(a) ~= getmetatable(b) then return false end\n"
	"  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
	"  for k in pairs(b) do if a[k] == nil then return false end end\n"
	"  return true\n"
	"end\n"
	"local S = json.SENTINEL\n"
	"return function(sel, p)\n"
	"  local c = cases[sel % #cases + 1]\n"
	"  local v, ok = core.json_read(p, S, c[1])\n"
	"  if not ok then assert(v == nil) return end\n"
	"  local d, dok = core.json_decode(p, S)\n"
	"  assert(dok and type(d) == 'table', 'json_read took what json_decode declines')\n"
	"  local rok, r = pcall(c[2], d)\n"
	"  assert(rok, 'json_read took what the reader refuses')\n"
	"  assert(same(v, r), 'a different value for ' .. c[3])\n"
	"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static lua_State *L;
	static int calls;
	int top;

	if (!L) {
		L = luaL_newstate();
		luaL_openlibs(L);
		luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
		lua_pushcfunction(L, luaopen_bedrock_core);
		lua_setfield(L, -2, "bedrock.core");
		lua_pop(L, 1);
		CHECK(luaL_loadstring(L, CHECKER) == LUA_OK);
		if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
			fprintf(stderr, "fuzz_json_read: %s\n", lua_tostring(L, -1));
			abort();
		}
		lua_setglobal(L, "check");
	}
	if (size < 1)
		return 0;
	top = lua_gettop(L);
	lua_getglobal(L, "check");
	lua_pushinteger(L, data[0]);
	lua_pushlstring(L, (const char *)data + 1, size - 1);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		fprintf(stderr, "fuzz_json_read: %s\n", lua_tostring(L, -1));
		abort();
	}
	lua_settop(L, top);
	if (++calls % 64 == 0)
		lua_gc(L, LUA_GCCOLLECT, 0);
	return 0;
}
