/* libFuzzer target: core.json_decode (csrc/lua_json.c), the JSON fast path, driven through
 * a real Lua 5.4 state. Any input must leave the state sane (stack balanced, no sanitizer
 * report); whatever it accepts must be strict JSON by the small validator below, written
 * from RFC 8259 independently of the decoder, and whatever it returns is walked
 * (every string and number read). Built by .ci/run-fuzz against liblua5.4. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void br_lua_open_json(lua_State *L);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const uint8_t *vp, *ve;

static void ws(void) { while (vp < ve && (*vp == ' ' || *vp == '\t' || *vp == '\n' || *vp == '\r')) vp++; }
static int lit(const char *w) { size_t n = strlen(w); if ((size_t)(ve - vp) < n || memcmp(vp, w, n)) return 0; vp += n; return 1; }
static int digits(void) { const uint8_t *s = vp; while (vp < ve && *vp >= '0' && *vp <= '9') vp++; return vp > s; }
static int ishex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int vstring(void)
{
	vp++;
	while (vp < ve && *vp != '"') {
		if (*vp < 0x20) return 0;
		if (*vp == '\\') {
			vp++;
			if (vp >= ve) return 0;
			if (*vp == 'u') {
				int i;
				for (i = 1; i <= 4; i++) if (vp + i >= ve || !ishex(vp[i])) return 0;
				vp += 4;
			} else if (!strchr("\"\\/bfnrt", *vp) || !*vp) {
				return 0;
			}
		}
		vp++;
	}
	if (vp >= ve) return 0;
	vp++;
	return 1;
}

static int vvalue(int depth)
{
	if (depth > 200) return 0;
	ws();
	if (vp >= ve) return 0;
	if (*vp == '{') {
		vp++; ws();
		if (vp < ve && *vp == '}') { vp++; return 1; }
		for (;;) {
			ws();
			if (vp >= ve || *vp != '"' || !vstring()) return 0;
			ws();
			if (vp >= ve || *vp != ':') return 0;
			vp++;
			if (!vvalue(depth + 1)) return 0;
			ws();
			if (vp < ve && *vp == ',') { vp++; continue; }
			if (vp < ve && *vp == '}') { vp++; return 1; }
			return 0;
		}
	}
	if (*vp == '[') {
		vp++; ws();
		if (vp < ve && *vp == ']') { vp++; return 1; }
		for (;;) {
			if (!vvalue(depth + 1)) return 0;
			ws();
			if (vp < ve && *vp == ',') { vp++; continue; }
			if (vp < ve && *vp == ']') { vp++; return 1; }
			return 0;
		}
	}
	if (*vp == '"') return vstring();
	if (*vp == 't') return lit("true");
	if (*vp == 'f') return lit("false");
	if (*vp == 'n') return lit("null");
	if (*vp == '-') vp++;
	if (vp < ve && *vp == '0') vp++;
	else if (vp < ve && *vp >= '1' && *vp <= '9') digits();
	else return 0;
	if (vp < ve && *vp == '.') { vp++; if (!digits()) return 0; }
	if (vp < ve && (*vp == 'e' || *vp == 'E')) {
		vp++;
		if (vp < ve && (*vp == '+' || *vp == '-')) vp++;
		if (!digits()) return 0;
	}
	return 1;
}

static int strict_json(const uint8_t *p, size_t n)
{
	vp = p;
	ve = p + n;
	if (!vvalue(0)) return 0;
	ws();
	return vp == ve;
}

static void walk(lua_State *L, int depth)
{
	CHECK(depth < 200);
	switch (lua_type(L, -1)) {
	case LUA_TTABLE:
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			CHECK(lua_type(L, -2) == LUA_TSTRING || lua_isinteger(L, -2));
			walk(L, depth + 1);
			lua_pop(L, 1);
		}
		break;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, -1, &n);
		volatile char sink = n ? s[n - 1] : 0;
		(void)sink;
		break;
	}
	case LUA_TNUMBER:
		CHECK(!lua_isinteger(L, -1)); /* every number a float, as cjson */
		break;
	case LUA_TBOOLEAN:
		break;
	case LUA_TLIGHTUSERDATA:
		CHECK(lua_touserdata(L, -1) == NULL);
		break;
	default:
		CHECK(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static lua_State *L;
	int top, nret;

	if (!L) {
		L = luaL_newstate();
		lua_newtable(L);
		br_lua_open_json(L);
		lua_getfield(L, -1, "json_decode");
		lua_setglobal(L, "json_decode");
		lua_pop(L, 1);
	}
	top = lua_gettop(L);
	lua_getglobal(L, "json_decode");
	lua_pushlstring(L, (const char *)data, size);
	lua_pushliteral(L, "\1sentinel\1");
	CHECK(lua_pcall(L, 2, LUA_MULTRET, 0) == LUA_OK);
	nret = lua_gettop(L) - top;
	CHECK(nret == 0 || nret == 2);
	if (nret == 2) {
		CHECK(lua_toboolean(L, -1));
		CHECK(strict_json(data, size));
		lua_pop(L, 1);
		walk(L, 0);
	}
	lua_settop(L, top);
	if (size % 64 == 0)
		lua_gc(L, LUA_GCCOLLECT, 0);
	return 0;
}
