/* The JSON fast path: Lua values built from br_jtape's tape.
 *
 * core.json_decode(s, sentinel) -> value, true | (nothing)
 *   The fast path of json.decode_raw: it builds exactly the Lua value that lua-cjson (the
 *   general path) builds, with json.lua's empty-array rule, for the JSON texts it accepts:
 *   objects -> tables (members set in text order, the last of a duplicated key wins),
 *   arrays -> tables 1..n, an empty array -> { sentinel }, strings -> strings (escapes
 *   decoded, \uXXXX and surrogate pairs as UTF-8), numbers -> floats (strtod, as cjson:
 *   every number is a float), true/false, null -> the NULL light userdata (cjson.null).
 *   It accepts strict JSON only (br_jtape.h) and answers nothing for anything else: the
 *   caller then runs lua-cjson on the same text, which gives its own result or its own
 *   error. So there is one JSON behaviour, cjson's, and this file only makes the common
 *   case faster.
 *
 * core.json_read(s, sentinel, desc) -> value, true | (nothing)
 *   The same parse with the output shape's reader (shapes.lua, node.read) applied while the
 *   tables are built, for a JSON object read as a structure. desc is the reader's rules for
 *   that structure as shapes.reader_desc(node) makes them from the compiled model nodes
 *   (there is no other copy of them here): desc[1] is 1 (structure) or 2 (union), and
 *   desc[member] says what the reader does with a member's value:
 *     1  keeps it as decoded (read_identity),
 *     2  an integer member: a number with an integral value becomes an integer (as the
 *        reader's math.tointeger(x) == x), anything else is kept,
 *     a table  a structure, union or list member: the desc of that shape (a list's is
 *        { 3, rule of its elements, the array metatable }),
 *     0  any other reader (maps, documents, blobs): not read here.
 *   As the reader does, members the model does not know and null members are dropped
 *   (unknown values are still parsed, so the text accepted is the same). It answers
 *   nothing, and the caller then decodes and reads as before, for every case it does not
 *   take: a member with rule 0 and a value, an unknown member of a union, a structure given
 *   as an array or a list given an object, and everything core.json_decode declines.
 *
 * core.json_reader(desc | { [name] = desc, ... }) -> reader, keys, roots, array_mt
 *   The rules compiled for the C reader (cached per rules table, so this is what json_read
 *   and dec:next's readers use too; the rules are read once, when first used): keys[id]
 *   (from 0) is the member name of key id id, roots[name] the root number (from 1) of each
 *   named desc ("" for a single desc), array_mt the lists' metatable. For the LuaJIT event
 *   path (jit_events.lua), which builds the values from the tape itself. */
#include <stdlib.h>
#include <string.h>
#include "lua_bedrock.h"
#include "br_jtape.h"

#define READER_MT "bedrock.JsonReader"
#define TAPE_MT "bedrock.JsonTape"

static const char CACHE_KEY = 'c'; /* registry: weak desc -> reader */
static const char TAPE_KEY = 't';  /* registry: the state's shared tape */

/* ------------------------------------------------------------------ values from a tape */

typedef struct {
	lua_State *L;
	int keys, sentinel, array_mt; /* stack indexes (keys/array_mt 0 without a shape) */
} mat;

/* Pushes the value that starts at e; returns the entry after it, or NULL (stack full). */
static const br_jt_ent *build(mat *m, const br_jt_ent *e)
{
	lua_State *L = m->L;
	lua_Integer i;

	switch (e->op) {
	case BR_JT_OBJ:
		if (!lua_checkstack(L, 4))
			return NULL;
		lua_createtable(L, 0, (int)e->n);
		for (e++; e->op != BR_JT_END;) {
			if (e->op == BR_JT_KEY)
				lua_rawgeti(L, m->keys, (lua_Integer)e->n);
			else
				lua_pushlstring(L, e->s, e->len);
			e++;
			if (e->op == BR_JT_NIL) {
				lua_pushnil(L);
				e++;
			} else if (!(e = build(m, e))) {
				return NULL;
			}
			lua_rawset(L, -3);
		}
		return e + 1;
	case BR_JT_ARR:
	case BR_JT_LIST:
		if (!lua_checkstack(L, 4))
			return NULL;
		lua_createtable(L, (int)e->n, 0);
		if (e->op == BR_JT_LIST) {
			lua_pushvalue(L, m->array_mt);
			lua_setmetatable(L, -2);
		} else if (e->n == 0) {
			/* json.lua's mark for an empty array (cjson alone cannot tell [] from {}) */
			lua_pushvalue(L, m->sentinel);
			lua_rawseti(L, -2, 1);
		}
		for (e++, i = 1; e->op != BR_JT_END; i++) {
			if (!(e = build(m, e)))
				return NULL;
			lua_rawseti(L, -2, i);
		}
		return e + 1;
	case BR_JT_STR:
		lua_pushlstring(L, e->s, e->len);
		break;
	case BR_JT_NUM:
		lua_pushnumber(L, (lua_Number)e->num);
		break;
	case BR_JT_INT:
#if LUA_VERSION_NUM >= 503
		lua_pushinteger(L, (lua_Integer)e->num);
#else
		lua_pushnumber(L, (lua_Number)e->num);
#endif
		break;
	case BR_JT_TRUE:
	case BR_JT_FALSE:
		lua_pushboolean(L, e->op == BR_JT_TRUE);
		break;
	default: /* BR_JT_NULL */
		lua_pushlightuserdata(L, NULL);
		break;
	}
	return e + 1;
}

/* Pushes the value on t, 1; or pushes nothing, 0. */
static int push_tape(mat *m, const br_jtape *t)
{
	int top = lua_gettop(m->L);

	if (t->n == 0 || !build(m, t->ents)) {
		lua_settop(m->L, top);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ compiled readers */

typedef struct {
	char *name;
	size_t len;
	int node;
} root;

typedef struct {
	br_jr_set set;
	root *roots;
	size_t nroots;
} l_reader;

static int l_reader_gc(lua_State *L)
{
	l_reader *r = (l_reader *)luaL_checkudata(L, 1, READER_MT);
	size_t i;

	br_jr_set_free(&r->set);
	for (i = 0; i < r->nroots; i++)
		free(r->roots[i].name);
	free(r->roots);
	r->roots = NULL;
	r->nroots = 0;
	return 0;
}

/* Phase one: gives every desc table reachable from the one at index d an index in
 * `order` (stack index) and `seen` (desc -> index). */
static void number_descs(lua_State *L, int d, int order, int seen)
{
	lua_Integer kind;

	d = lua_absindex(L, d);
	lua_pushvalue(L, d);
	lua_rawget(L, seen);
	if (!lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	lua_pop(L, 1);
	luaL_checkstack(L, 6, "JSON reader rules too deep");
	lua_pushvalue(L, d);
	lua_pushinteger(L, (lua_Integer)lua_rawlen(L, order));
	lua_rawset(L, seen);
	lua_pushvalue(L, d);
	lua_rawseti(L, order, (lua_Integer)lua_rawlen(L, order) + 1);
	lua_rawgeti(L, d, 1);
	kind = lua_tointeger(L, -1);
	lua_pop(L, 1);
	if (kind == BR_JR_LISTK) {
		lua_rawgeti(L, d, 2);
		if (lua_istable(L, -1))
			number_descs(L, -1, order, seen);
		lua_pop(L, 1);
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, d)) {
		if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE)
			number_descs(L, -1, order, seen);
		lua_pop(L, 1);
	}
}

/* The rule of the value at the top of the stack (a desc rule). */
static int32_t rule_of(lua_State *L, int seen)
{
	int32_t r = BR_JR_NONE;

	if (lua_type(L, -1) == LUA_TTABLE) {
		lua_pushvalue(L, -1);
		lua_rawget(L, seen);
		r = BR_JR_NODE + (int32_t)lua_tointeger(L, -1);
		lua_pop(L, 1);
	} else if (lua_type(L, -1) == LUA_TNUMBER) {
		lua_Number x = lua_tonumber(L, -1);
		if (x == 1) r = BR_JR_KEEP;
		else if (x == 2) r = BR_JR_INT;
	}
	return r;
}

/* Compiles the rules at index src (a desc, or { [name] = desc }) into a new reader:
 * pushes reader, keys, roots. The reader's user value is { keys, array metatable }. */
static void compile(lua_State *L, int src)
{
	int order, seen, keys, roots, amt, single;
	lua_Integer i, n;
	l_reader *r;

	src = lua_absindex(L, src);
	lua_rawgeti(L, src, 1);
	single = lua_type(L, -1) == LUA_TNUMBER;
	lua_pop(L, 1);
	r = (l_reader *)lua_newuserdatauv(L, sizeof *r, 1);
	memset(r, 0, sizeof *r);
	br_jr_set_init(&r->set);
	luaL_setmetatable(L, READER_MT);
	lua_newtable(L);
	keys = lua_gettop(L);
	lua_newtable(L);
	roots = lua_gettop(L);
	lua_pushnil(L);
	amt = lua_gettop(L);
	lua_newtable(L);
	order = lua_gettop(L);
	lua_newtable(L);
	seen = lua_gettop(L);
	if (single) {
		number_descs(L, src, order, seen);
	} else {
		lua_pushnil(L);
		while (lua_next(L, src)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE)
				number_descs(L, -1, order, seen);
			lua_pop(L, 1);
		}
	}
	/* Phase two: the nodes, then each node's members together. */
	n = (lua_Integer)lua_rawlen(L, order);
	for (i = 1; i <= n; i++) {
		lua_Integer kind;
		lua_rawgeti(L, order, i);
		lua_rawgeti(L, -1, 1);
		kind = lua_tointeger(L, -1);
		lua_pop(L, 2);
		if (kind != BR_JR_STRUCT && kind != BR_JR_UNION && kind != BR_JR_LISTK)
			kind = BR_JR_STRUCT; /* (not made by reader_desc) */
		if (br_jr_set_node(&r->set, (int)kind, BR_JR_NONE) < 0)
			luaL_error(L, "not enough memory");
	}
	for (i = 1; i <= n; i++) {
		br_jr_node *nd = &r->set.nodes[i - 1];
		lua_rawgeti(L, order, i);
		if (nd->kind == BR_JR_LISTK) {
			lua_rawgeti(L, -1, 2);
			nd->elem = rule_of(L, seen);
			lua_pop(L, 1);
			/* the array metatable (shapes.lua has one for every list) */
			lua_rawgeti(L, -1, 3);
			if (lua_istable(L, -1))
				lua_replace(L, amt);
			else
				lua_pop(L, 1);
		} else {
			lua_pushnil(L);
			while (lua_next(L, -2)) {
				if (lua_type(L, -2) == LUA_TSTRING) {
					size_t len;
					const char *name = lua_tolstring(L, -2, &len);
					int id = br_jr_set_member(&r->set, (int)(i - 1), name, len, rule_of(L, seen));
					if (id < 0)
						luaL_error(L, "not enough memory");
					lua_pushvalue(L, -2);
					lua_rawseti(L, keys, id);
				}
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
	}
	if (single) {
		lua_pushliteral(L, "");
		lua_pushvalue(L, src);
		lua_rawset(L, roots); /* a placeholder, replaced below */
	} else {
		lua_pushnil(L);
		while (lua_next(L, src)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, roots);
			} else {
				lua_pop(L, 1);
			}
		}
	}
	/* roots: name -> root number, and r->roots by number */
	lua_pushnil(L);
	while (lua_next(L, roots)) {
		size_t len;
		const char *name = lua_tolstring(L, -2, &len);
		root *rt, *q = realloc(r->roots, (r->nroots + 1) * sizeof *q);
		if (!q)
			luaL_error(L, "not enough memory");
		r->roots = q;
		rt = &q[r->nroots];
		if (!(rt->name = malloc(len + 1)))
			luaL_error(L, "not enough memory");
		r->nroots++;
		memcpy(rt->name, name, len + 1);
		rt->len = len;
		lua_rawget(L, seen);
		rt->node = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	lua_newtable(L); /* (new keys while traversing roots are not allowed: rebuilt) */
	for (i = 0; i < (lua_Integer)r->nroots; i++) {
		lua_pushlstring(L, r->roots[i].name, r->roots[i].len);
		lua_pushinteger(L, i + 1);
		lua_rawset(L, -3);
	}
	lua_replace(L, roots);
	lua_createtable(L, 3, 0);
	lua_pushvalue(L, keys);
	lua_rawseti(L, -2, 1);
	lua_pushvalue(L, amt);
	lua_rawseti(L, -2, 2);
	/* the roots' names as Lua strings by root number (an event batch names every event) */
	lua_createtable(L, (int)r->nroots, 0);
	for (i = 0; i < (lua_Integer)r->nroots; i++) {
		lua_pushlstring(L, r->roots[i].name, r->roots[i].len);
		lua_rawseti(L, -2, i + 1);
	}
	lua_rawseti(L, -2, 3);
	lua_setiuservalue(L, keys - 1, 1);
	lua_settop(L, roots);
}

/* The compiled reader of the rules at index src (cached per rules table): pushes it and
 * returns it; with push_info also pushes its keys and roots tables. */
static l_reader *reader_of(lua_State *L, int src)
{
	l_reader *r;

	src = lua_absindex(L, src);
	lua_pushlightuserdata(L, (void *)&CACHE_KEY);
	lua_rawget(L, LUA_REGISTRYINDEX);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		lua_pushlightuserdata(L, (void *)&CACHE_KEY);
		lua_pushvalue(L, -2);
		lua_rawset(L, LUA_REGISTRYINDEX);
	}
	lua_pushvalue(L, src);
	lua_rawget(L, -2);
	r = (l_reader *)luaL_testudata(L, -1, READER_MT);
	if (r) {
		lua_remove(L, -2);
		return r;
	}
	lua_pop(L, 1);
	compile(L, src);
	lua_pop(L, 2); /* keys, roots */
	lua_pushvalue(L, src);
	lua_pushvalue(L, -2);
	lua_rawset(L, -4);
	lua_remove(L, -2);
	return (l_reader *)lua_touserdata(L, -1);
}

/* The root number (from 1) of event type et in reader r, or 0. */
int br_json_reader_root(const void *reader, const char *et, size_t len)
{
	const l_reader *r = (const l_reader *)reader;
	size_t i;

	for (i = 0; i < r->nroots; i++)
		if (r->roots[i].len == len && memcmp(r->roots[i].name, et, len) == 0)
			return (int)i + 1;
	return 0;
}

/* The state's shared tape (json_decode, json_read), or NULL when it is in use. */
typedef struct {
	br_jtape t;
} l_tape;

static int l_tape_gc(lua_State *L)
{
	br_jtape_free(&((l_tape *)luaL_checkudata(L, 1, TAPE_MT))->t);
	return 0;
}

static br_jtape *shared_tape(lua_State *L)
{
	l_tape *u;

	lua_pushlightuserdata(L, (void *)&TAPE_KEY);
	lua_rawget(L, LUA_REGISTRYINDEX);
	u = (l_tape *)luaL_testudata(L, -1, TAPE_MT);
	lua_pop(L, 1);
	if (!u) {
		u = (l_tape *)lua_newuserdatauv(L, sizeof *u, 0);
		br_jtape_init(&u->t);
		luaL_setmetatable(L, TAPE_MT);
		lua_pushlightuserdata(L, (void *)&TAPE_KEY);
		lua_insert(L, -2);
		lua_rawset(L, LUA_REGISTRYINDEX);
	}
	return u->t.busy ? NULL : &u->t;
}

/* Reads s by the root node of the reader at stack index rd (node < 0: no shape) on tape t
 * and pushes the value: 1, or 0 with nothing pushed. */
static int read_push(lua_State *L, br_jtape *t, int rd, int node, const char *s, size_t n, int sentinel)
{
	mat m;
	int ok, top = lua_gettop(L);

	if (!t || t->busy)
		return 0;
	if (node >= 0) {
		const l_reader *r = (const l_reader *)lua_touserdata(L, rd);
		if (!br_jtape_read(t, &r->set, node, s, n))
			return 0;
		lua_getiuservalue(L, rd, 1);
		lua_rawgeti(L, -1, 1);
		lua_rawgeti(L, -2, 2);
		m.keys = top + 2;
		m.array_mt = top + 3;
	} else {
		if (!br_jtape_read(t, NULL, -1, s, n))
			return 0;
		m.keys = m.array_mt = 0;
	}
	m.L = L;
	m.sentinel = lua_absindex(L, sentinel);
	t->busy = 1; /* (a finalizer run while building may decode JSON: not on this tape) */
	ok = push_tape(&m, t);
	t->busy = 0;
	if (!ok) {
		lua_settop(L, top);
		return 0;
	}
	if (node >= 0) {
		lua_replace(L, top + 1);
		lua_settop(L, top + 1);
	}
	return 1;
}

int br_lua_json_push(lua_State *L, const char *s, size_t n, int sentinel)
{
	sentinel = lua_absindex(L, sentinel);
	return read_push(L, shared_tape(L), 0, -1, s, n, sentinel);
}

int br_lua_json_read(lua_State *L, const char *s, size_t n, int sentinel, int desc)
{
	int ok, rd;
	l_reader *r;

	sentinel = lua_absindex(L, sentinel);
	r = reader_of(L, desc);
	rd = lua_gettop(L);
	ok = r->nroots == 1 && read_push(L, shared_tape(L), rd, r->roots[0].node, s, n, sentinel);
	lua_remove(L, rd);
	return ok;
}

void *br_lua_json_reader(lua_State *L, int readers)
{
	return reader_of(L, readers);
}

int br_lua_json_batch(lua_State *L, br_jtape *t, int readers, int sentinel, int qe, int qv)
{
	int rd, n = 0, top;
	const br_jt_ent *e, *end;
	mat m;

	sentinel = lua_absindex(L, sentinel);
	qe = lua_absindex(L, qe);
	qv = lua_absindex(L, qv);
	reader_of(L, readers); /* (pushed: its user value holds the names, keys and array_mt) */
	rd = lua_gettop(L);
	lua_getiuservalue(L, rd, 1);
	lua_rawgeti(L, -1, 3);
	lua_rawgeti(L, -2, 1);
	lua_rawgeti(L, -3, 2);
	top = lua_gettop(L);
	m.L = L;
	m.keys = top - 1;
	m.array_mt = top;
	m.sentinel = sentinel;
	t->busy = 1;
	for (e = t->ents, end = t->ents + t->n; e < end && e->op == BR_JT_EVT;) {
		lua_rawgeti(L, top - 2, (lua_Integer)e->n); /* (the root's name) */
		lua_rawseti(L, qe, ++n);
		if (!(e = build(&m, e + 1)))
			break;
		lua_rawseti(L, qv, n);
	}
	t->busy = 0;
	lua_settop(L, rd - 1);
	return e ? n : -1;
}

int br_lua_json_event(lua_State *L, br_jtape *t, int readers, const char *et, size_t et_len,
		      const char *s, size_t n, int sentinel)
{
	int ok, rd, node;
	l_reader *r;

	sentinel = lua_absindex(L, sentinel);
	r = reader_of(L, readers);
	rd = lua_gettop(L);
	node = br_json_reader_root(r, et, et_len);
	ok = node > 0 && read_push(L, t, rd, r->roots[node - 1].node, s, n, sentinel);
	lua_remove(L, rd);
	return ok;
}

static int l_json_read(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);

	luaL_checktype(L, 2, LUA_TSTRING);
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_settop(L, 3);
	if (!br_lua_json_read(L, s, n, 2, 3))
		return 0;
	lua_pushboolean(L, 1);
	return 2;
}

static int l_json_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);

	luaL_checktype(L, 2, LUA_TSTRING);
	lua_settop(L, 2);
	if (!br_lua_json_push(L, s, n, 2))
		return 0;
	lua_pushboolean(L, 1);
	return 2;
}

static int l_json_reader(lua_State *L)
{
	const l_reader *r;
	size_t i;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	r = reader_of(L, 1);
	lua_getiuservalue(L, 2, 1);
	lua_rawgeti(L, 3, 1);
	lua_createtable(L, 0, (int)r->nroots);
	for (i = 0; i < r->nroots; i++) {
		lua_pushlstring(L, r->roots[i].name, r->roots[i].len);
		lua_pushinteger(L, (lua_Integer)i + 1);
		lua_rawset(L, -3);
	}
	lua_rawgeti(L, 3, 2);
	lua_remove(L, 3);
	return 4;
}

/* The compiled rules of reader r and the node of its root number k (from 1). */
const br_jr_set *br_json_reader_set(const void *reader, int k, int *node)
{
	const l_reader *r = (const l_reader *)reader;

	*node = r->roots[k - 1].node;
	return &r->set;
}

void br_lua_open_json(lua_State *L)
{
	static const luaL_Reg none[] = {{NULL, NULL}};
	static const luaL_Reg reader_meta[] = {{"__gc", l_reader_gc}, {NULL, NULL}};
	static const luaL_Reg tape_meta[] = {{"__gc", l_tape_gc}, {NULL, NULL}};

	br_lua_newclass(L, READER_MT, none, reader_meta);
	br_lua_newclass(L, TAPE_MT, none, tape_meta);
	lua_pushcfunction(L, l_json_decode);
	lua_setfield(L, -2, "json_decode");
	lua_pushcfunction(L, l_json_read);
	lua_setfield(L, -2, "json_read");
	lua_pushcfunction(L, l_json_reader);
	lua_setfield(L, -2, "json_reader");
}
