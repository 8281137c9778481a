/* Binding of the HTTP transport (br_http.h): core.http_multi() -> bedrock.HttpMulti,
 * m:request(opts) -> bedrock.HttpTransfer. Conversions only; the state machine is in
 * br_http.c and the waiting policy (deadlines, wait hooks) in transport/curl.lua.
 *
 * Nothing here calls Lua while libcurl runs: m:step() performs, callbacks copy bytes
 * into C buffers, and x:read()/x:read_into() hand them over afterwards.
 *
 * Lifetimes: a transfer keeps its multi alive through user value 1, and a request body
 * string through user value 2 (the body is borrowed, not copied). m:close() closes every
 * transfer of the multi; closing twice is harmless; __gc and __close are the same close. */
#include <stdlib.h>
#include <string.h>
#include "lua_bedrock.h"
#include "br_http.h"
#include "br_eventstream.h"

#define MULTI_MT "bedrock.HttpMulti"
#define XFER_MT  "bedrock.HttpTransfer"
#define DECODER_MT "bedrock.Decoder"

typedef struct {
	br_http_multi *m;
} l_multi;

typedef struct {
	br_http_xfer *x;
} l_xfer;

/* Counts become integers (exact up to 2^53 on LuaJIT, where lua_Integer is ptrdiff_t). */
static void push_count(lua_State *L, uint64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
}

static l_multi *check_multi(lua_State *L, int idx)
{
	l_multi *u = luaL_checkudata(L, idx, MULTI_MT);

	if (!u->m)
		luaL_argerror(L, idx, "HTTP multi is closed");
	return u;
}

static l_xfer *check_xfer(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, XFER_MT);
}

/* ---- options ------------------------------------------------------------------------ */

static const char *opt_string(lua_State *L, int t, const char *k, size_t *len)
{
	const char *s = NULL;

	lua_getfield(L, t, k);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "request option '%s' must be a string", k);
		s = lua_tolstring(L, -1, len);
	}
	lua_pop(L, 1); /* the string stays anchored in the options table */
	return s;
}

static int opt_bool(lua_State *L, int t, const char *k, int def)
{
	int v = def;

	lua_getfield(L, t, k);
	if (!lua_isnil(L, -1)) {
		if (!lua_isboolean(L, -1))
			luaL_error(L, "request option '%s' must be a boolean", k);
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* A non-negative millisecond count; nil and false give 0 (none). */
static long opt_ms(lua_State *L, int t, const char *k)
{
	lua_Number n = 0;

	lua_getfield(L, t, k);
	if (!lua_isnil(L, -1) && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
		if (lua_type(L, -1) != LUA_TNUMBER)
			luaL_error(L, "timeout '%s' must be a number of milliseconds", k);
		n = lua_tonumber(L, -1);
		if (!(n >= 0) || n > 1e12)
			luaL_error(L, "timeout '%s' must be between 0 and 1e12 ms", k);
	}
	lua_pop(L, 1);
	if (n > 0 && n < 1)
		n = 1;
	return (long)n;
}

/* Starts the transfer the options table at index 2 describes (the stack holds exactly
 * the multi and that table): on success pushes the new bedrock.HttpTransfer, sets *out
 * and returns 0; otherwise returns the number of failure values pushed (nil, msg, CODE
 * [, header index]). Raises on a wrongly typed option. See m:request. */
static int start_xfer(lua_State *L, l_multi *mu, l_xfer **out)
{
	br_http_opts o;
	br_http_header hstack[32], *hv = NULL;
	l_xfer *u;
	br_status st;
	size_t i, n = 0;

	luaL_checktype(L, 2, LUA_TTABLE);
	memset(&o, 0, sizeof o);
	o.url = opt_string(L, 2, "url", NULL);
	if (!o.url)
		return luaL_error(L, "request option 'url' is required");
	o.method = opt_string(L, 2, "method", NULL);
	o.body = (const uint8_t *)opt_string(L, 2, "body", &o.body_len);
	o.body_borrow = 1;
	o.body_stream = opt_bool(L, 2, "body_stream", 0);
	o.no_verify = !opt_bool(L, 2, "verify", 1);
	o.cainfo = opt_string(L, 2, "cainfo", NULL);
	o.capath = opt_string(L, 2, "capath", NULL);
	if (o.body_stream && o.body)
		return luaL_error(L, "request options 'body' and 'body_stream' exclude each other");

	lua_getfield(L, 2, "http_version");
	if (lua_isnil(L, -1)) {
		o.http_version = 1;
	} else if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == 2) {
		o.http_version = 2;
	} else if (lua_type(L, -1) == LUA_TNUMBER &&
		   (lua_tonumber(L, -1) == 1 || lua_tonumber(L, -1) == 1.1)) {
		o.http_version = 1;
	} else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "2") == 0) {
		o.http_version = 2;
	} else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "1.1") == 0) {
		o.http_version = 1;
	} else {
		return luaL_error(L, "request option 'http_version' must be 1.1 or 2");
	}
	lua_pop(L, 1);

	lua_getfield(L, 2, "buffer_cap");
	if (!lua_isnil(L, -1)) {
		lua_Number c = lua_tonumber(L, -1);

		if (lua_type(L, -1) != LUA_TNUMBER || !(c >= 0) || c > 1e12)
			return luaL_error(L, "request option 'buffer_cap' must be a byte count");
		o.buffer_cap = (size_t)c;
	}
	lua_pop(L, 1);

	lua_getfield(L, 2, "timeouts"); /* index 3 */
	if (!lua_isnil(L, 3)) {
		if (!lua_istable(L, 3))
			return luaL_error(L, "request option 'timeouts' must be a table");
		o.connect_timeout_ms = opt_ms(L, 3, "connect");
		o.first_byte_timeout_ms = opt_ms(L, 3, "first_byte");
		o.idle_timeout_ms = opt_ms(L, 3, "idle");
		o.total_timeout_ms = opt_ms(L, 3, "total");
	}

	lua_getfield(L, 2, "headers"); /* index 4 */
	if (!lua_isnil(L, 4)) {
		if (!lua_istable(L, 4))
			return luaL_error(L, "request option 'headers' must be an array of {name, value}");
		n = lua_rawlen(L, 4);
		if (n > 10000)
			return luaL_error(L, "too many request headers (%d)", (int)n);
		/* the usual few on the C stack; more in a scratch userdata, which is collected
		 * even if an error is raised below */
		if (n <= sizeof hstack / sizeof *hstack)
			hv = hstack;
		else
			hv = lua_newuserdatauv(L, n * sizeof *hv, 0); /* index 5 */
		for (i = 0; i < n; i++) {
			lua_rawgeti(L, 4, (lua_Integer)(i + 1));
			if (!lua_istable(L, -1))
				return luaL_error(L, "request header %d must be a {name, value} pair",
						  (int)(i + 1));
			lua_rawgeti(L, -1, 1);
			lua_rawgeti(L, -2, 2);
			if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
				return luaL_error(L, "request header %d must be a {name, value} pair "
						  "of strings", (int)(i + 1));
			/* strings stay anchored in the pair table, which the headers table holds */
			hv[i].name = lua_tolstring(L, -2, &hv[i].name_len);
			hv[i].value = lua_tolstring(L, -1, &hv[i].value_len);
			lua_pop(L, 3);
		}
		/* an array and nothing else: a hole or another key would be a header dropped
		 * without a word */
		lua_pushnil(L);
		for (i = 0; lua_next(L, 4) != 0; i++)
			lua_pop(L, 1);
		if (i != n)
			return luaL_error(L, "request option 'headers' must be an array of {name, value} "
					  "pairs (no holes, no other keys)");
		o.headers = hv;
		o.nheaders = n;
	}

	u = lua_newuserdatauv(L, sizeof *u, 2);
	u->x = NULL;
	luaL_setmetatable(L, XFER_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	if (o.body) {
		lua_getfield(L, 2, "body");
		lua_setiuservalue(L, -2, 2);
	}
	u->x = br_http_xfer_new(mu->m, &o, &st);
	if (!u->x) {
		if (st == BR_BAD_HEADER) {
			for (i = 0; i < n && br_http_header_valid(&hv[i]); i++)
				;
			(void)br_lua_failf(L, st, "request header %d has an invalid name or value "
				     "(CR, LF or NUL in the value; a name that is not a token)",
				     (int)(i + 1));
			lua_pushinteger(L, (lua_Integer)(i + 1));
			return 4;
		}
		if (st == BR_INVAL)
			return br_lua_failf(L, st, "invalid request: url must be http:// or https://"
					    " and method a token (got %s %s)",
					    o.method ? o.method : "-", o.url);
		return br_lua_fail(L, st);
	}
	*out = u;
	return 0;
}

/* m:request(opts) -> transfer | nil, msg, CODE[, header index for BAD_HEADER]. opts: url, method, headers (array of
 * {name, value}), body (string, borrowed) | body_stream (boolean), http_version (1, 2,
 * "1.1", "2"), verify (default true), cainfo, capath, timeouts = {connect, first_byte,
 * idle, total} (ms), buffer_cap (bytes). Raises on a wrongly typed option. */
static int l_multi_request(lua_State *L)
{
	l_multi *mu = check_multi(L, 1);
	l_xfer *u;
	int r;

	lua_settop(L, 2);
	r = start_xfer(L, mu, &u);
	return r ? r : 1;
}

static int push_headers(lua_State *L, br_http_xfer *x);
static void push_version(lua_State *L, int v);

/* A body limit argument: a byte count, or nil/false for none (-1). */
static double opt_limit(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx)))
		return -1;
	return luaL_checknumber(L, idx);
}

/* m:fetch(opts, max_body, max_error_body, wait_ms) -> status, headers, body, version,
 * total, first_byte | transfer | nil, msg, CODE[, header index]
 * m:request(opts) and m:step(wait_ms) in one call, for a caller that would block on the
 * transfer anyway: steps follow one another for as long as each brings the transfer on
 * (its state or the body bytes received) and the body stays within the limit for its
 * status (max_body for 2xx, max_error_body otherwise: a byte count, or nil/false for
 * none), Content-Length included. When the response is complete and within the limit,
 * the transfer is closed and the response comes back whole (status, headers as
 * x:headers(), body, version, total and first_byte as x:timing()). Otherwise (a step
 * that brought nothing, a failure, a body past the limit) the transfer is returned
 * untouched, to be driven and read as one from m:request. Control goes back to Lua
 * after a step that brought nothing, or once wait_ms have passed in all. */
static int l_multi_fetch(lua_State *L)
{
	l_multi *mu = check_multi(L, 1);
	double lim_ok = opt_limit(L, 3), lim_err = opt_limit(L, 4), limit;
	lua_Number wait = luaL_optnumber(L, 5, 0);
	const uint8_t *p;
	br_http_info in;
	l_xfer *u;
	size_t n;
	long status;
	int64_t t0;
	int r, running = 0;

	if (!(wait >= 0))
		wait = 0;
	if (wait > 86400000)
		wait = 86400000;
	lua_settop(L, 2);
	r = start_xfer(L, mu, &u);
	if (r)
		return r;
	lua_replace(L, 3); /* the transfer at 3, above it nothing */
	lua_settop(L, 3);
	t0 = br_http_now_ms();
	for (;;) {
		br_http_state s0 = br_http_xfer_state(u->x), s1;
		uint64_t r0, r1;

		br_http_xfer_info(u->x, &in);
		r0 = in.received;
		if (br_http_step(mu->m, (long)wait, &running) != BR_OK)
			return 1;
		s1 = br_http_xfer_state(u->x);
		if (s1 == BR_HTTP_S_DONE)
			break;
		if (s1 != BR_HTTP_S_PENDING && s1 != BR_HTTP_S_BODY)
			return 1;
		br_http_xfer_info(u->x, &in);
		r1 = in.received;
		if ((s1 == s0 && r1 == r0) || br_http_now_ms() - t0 >= (int64_t)wait)
			return 1; /* nothing came, or a slice has passed: Lua waits on (hooks, signals) */
		if (s1 == BR_HTTP_S_BODY) {
			int64_t cl = br_http_xfer_content_length(u->x);

			status = br_http_xfer_status(u->x);
			limit = status >= 200 && status < 300 ? lim_ok : lim_err;
			if (limit >= 0 && ((double)r1 > limit || (double)cl > limit))
				return 1;
		}
	}
	if ((status = br_http_xfer_status(u->x)) <= 0)
		return 1;
	n = br_http_xfer_body(u->x, &p);
	limit = status >= 200 && status < 300 ? lim_ok : lim_err;
	if (limit >= 0 && (double)n > limit)
		return 1;
	if (push_headers(L, u->x) != 2) { /* 4: headers, 5: version */
		lua_settop(L, 3);
		return 1;
	}
	if (limit >= 0 && n > 0) {
		lua_Number cl;
		int isnum = 0;

		lua_getfield(L, 4, "content-length");
		cl = lua_tonumberx(L, -1, &isnum);
		if (isnum && cl > limit) {
			lua_settop(L, 3);
			return 1;
		}
		lua_pop(L, 1);
	}
	br_http_xfer_info(u->x, &in);
	lua_pushinteger(L, (lua_Integer)status);
	lua_pushvalue(L, 4);
	lua_pushlstring(L, n ? (const char *)p : "", n);
	lua_pushvalue(L, 5);
	lua_pushnumber(L, in.total);
	if (in.first_byte >= 0)
		lua_pushnumber(L, in.first_byte);
	else
		lua_pushnil(L);
	br_http_xfer_free(u->x);
	u->x = NULL;
	return 6;
}

/* m:step(timeout_ms) -> running transfers | nil, msg, CODE */
static int l_multi_step(lua_State *L)
{
	l_multi *mu = check_multi(L, 1);
	lua_Number t = luaL_optnumber(L, 2, 0);
	int running = 0;
	br_status st;

	if (!(t >= 0))
		t = 0;
	if (t > 86400000)
		t = 86400000;
	st = br_http_step(mu->m, (long)t, &running);
	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushinteger(L, running);
	return 1;
}

/* m:timeout() -> ms until a step is due without socket activity, or nil (none) */
static int l_multi_timeout(lua_State *L)
{
	l_multi *mu = check_multi(L, 1);
	long t = br_http_multi_timeout(mu->m);

	if (t < 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, (lua_Integer)t);
	return 1;
}

/* m:fds() -> { {fd, "r"|"w"|"rw"}, ... }: the sockets the transfers wait on */
static int l_multi_fds(lua_State *L)
{
	l_multi *mu = check_multi(L, 1);
	const br_http_fd *fds;
	size_t n = br_http_multi_fds(mu->m, &fds), i;

	lua_createtable(L, (int)n, 0);
	for (i = 0; i < n; i++) {
		int ev = fds[i].events;

		lua_createtable(L, 2, 0);
		lua_pushinteger(L, fds[i].fd);
		lua_rawseti(L, -2, 1);
		lua_pushstring(L, ev == (BR_HTTP_IN | BR_HTTP_OUT) ? "rw" : ev == BR_HTTP_OUT ? "w" : "r");
		lua_rawseti(L, -2, 2);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* The sockets of the multis in the array at idx (closed multis skipped), in one malloc'd
 * array (*out, NULL when there are none); returns the count, or (size_t)-1 when memory
 * is short. Raises on an element that is not a multi. */
static size_t gather_fds(lua_State *L, int idx, br_http_fd **out)
{
	size_t nm, i, n = 0, cap = 0;
	br_http_fd *all = NULL;

	luaL_checktype(L, idx, LUA_TTABLE);
	nm = (size_t)lua_rawlen(L, idx);
	for (i = 1; i <= nm; i++) {
		l_multi *u;
		const br_http_fd *fds;
		size_t k;

		lua_rawgeti(L, idx, (lua_Integer)i);
		u = luaL_testudata(L, -1, MULTI_MT);
		lua_pop(L, 1);
		if (!u) {
			free(all);
			luaL_argerror(L, idx, "must be an array of bedrock.HttpMulti");
			return 0;
		}
		if (!u->m)
			continue;
		k = br_http_multi_fds(u->m, &fds);
		if (k == 0)
			continue;
		if (n + k > cap) {
			size_t nc = (n + k) * 2;
			br_http_fd *g = realloc(all, nc * sizeof *g);

			if (!g) {
				free(all);
				return (size_t)-1;
			}
			all = g;
			cap = nc;
		}
		memcpy(all + n, fds, k * sizeof *fds);
		n += k;
	}
	*out = all;
	return n;
}

/* core.http_poll({m1, m2, ...}, timeout_ms) -> number of ready sockets: one wait over
 * the sockets of several multis (closed ones are skipped); nil, msg, code on failure */
static int l_http_poll(lua_State *L)
{
	lua_Number t = luaL_optnumber(L, 2, 0);
	br_http_fd *all = NULL;
	size_t n;
	int r;

	if (!(t >= 0))
		t = 0;
	if (t > 86400000)
		t = 86400000;
	n = gather_fds(L, 1, &all);
	if (n == (size_t)-1)
		return br_lua_failf(L, BR_NOMEM, "out of memory");
	r = br_http_poll(all, n, (long)t);
	free(all);
	if (r < 0)
		return br_lua_failf(L, BR_NOMEM, "out of memory");
	lua_pushinteger(L, r);
	return 1;
}

/* ---- pollset: one fd for hosts that wait on one fd per source ----------------------- */

#define POLLSET_MT "bedrock.HttpPollset"

typedef struct {
	br_http_pollset *ps;
} l_pollset;

/* core.http_pollset() -> pollset | nil, msg, code (no epoll on this system) */
static int l_http_pollset(lua_State *L)
{
	l_pollset *u = lua_newuserdatauv(L, sizeof *u, 0);

	u->ps = NULL;
	luaL_setmetatable(L, POLLSET_MT);
	u->ps = br_http_pollset_new();
	if (!u->ps)
		return br_lua_failf(L, BR_HTTP_INIT, "no pollset on this system (epoll) or out of memory");
	return 1;
}

static l_pollset *check_pollset(lua_State *L)
{
	l_pollset *u = luaL_checkudata(L, 1, POLLSET_MT);

	if (!u->ps)
		luaL_argerror(L, 1, "pollset is closed");
	return u;
}

/* ps:fd() -> the descriptor that is readable when a socket of the set is ready */
static int l_pollset_fd(lua_State *L)
{
	lua_pushinteger(L, br_http_pollset_fd(check_pollset(L)->ps));
	return 1;
}

/* ps:sync({m1, m2, ...}) -> true | nil, msg, code: the set becomes those multis' sockets */
static int l_pollset_sync(lua_State *L)
{
	l_pollset *u = check_pollset(L);
	br_http_fd *all = NULL;
	size_t n = gather_fds(L, 2, &all);
	int r;

	if (n == (size_t)-1)
		return br_lua_failf(L, BR_NOMEM, "out of memory");
	r = br_http_pollset_sync(u->ps, all, n);
	free(all);
	if (r != 0)
		return br_lua_failf(L, BR_HTTP_FAILED, "could not register a socket with the pollset");
	lua_pushboolean(L, 1);
	return 1;
}

static int l_pollset_close(lua_State *L)
{
	l_pollset *u = luaL_checkudata(L, 1, POLLSET_MT);

	br_http_pollset_free(u->ps);
	u->ps = NULL;
	return 0;
}

static const luaL_Reg pollset_methods[] = {
	{"fd", l_pollset_fd},
	{"sync", l_pollset_sync},
	{"close", l_pollset_close},
	{NULL, NULL}
};

static const luaL_Reg pollset_meta[] = {
	{"__gc", l_pollset_close},
	{"__close", l_pollset_close},
	{NULL, NULL}
};

static int l_multi_stats(lua_State *L)
{
	l_multi *mu = check_multi(L, 1);
	uint64_t c, t;

	br_http_multi_stats(mu->m, &c, &t);
	lua_createtable(L, 0, 2);
	push_count(L, c);
	lua_setfield(L, -2, "connections");
	push_count(L, t);
	lua_setfield(L, -2, "transfers");
	return 1;
}

static int l_multi_close(lua_State *L)
{
	l_multi *u = luaL_checkudata(L, 1, MULTI_MT);

	br_http_multi_free(u->m);
	u->m = NULL;
	return 0;
}

static int l_multi_tostring(lua_State *L)
{
	l_multi *u = luaL_checkudata(L, 1, MULTI_MT);

	lua_pushfstring(L, MULTI_MT " (%s%p)", u->m ? "" : "closed ", (void *)u);
	return 1;
}

static int l_http_multi(lua_State *L)
{
	l_multi *u = lua_newuserdatauv(L, sizeof *u, 0);

	u->m = NULL;
	luaL_setmetatable(L, MULTI_MT);
	u->m = br_http_multi_new();
	if (!u->m)
		return br_lua_failf(L, BR_HTTP_INIT, "could not initialise libcurl's multi interface");
	return 1;
}

/* ---- transfers ---------------------------------------------------------------------- */

static const char *state_name(br_http_state s)
{
	switch (s) {
	case BR_HTTP_S_PENDING: return "pending";
	case BR_HTTP_S_BODY: return "body";
	case BR_HTTP_S_DONE: return "done";
	case BR_HTTP_S_FAILED: return "failed";
	default: return "closed";
	}
}

static const char *err_kind(br_http_err e)
{
	switch (e) {
	case BR_HTTP_ERR_TIMEOUT_CONNECT: return "connect";
	case BR_HTTP_ERR_TIMEOUT_FIRST_BYTE: return "first_byte";
	case BR_HTTP_ERR_TIMEOUT_IDLE: return "idle";
	case BR_HTTP_ERR_TIMEOUT_TOTAL: return "total";
	case BR_HTTP_ERR_NOMEM: return "nomem";
	default: return "connection";
	}
}

static int l_xfer_state(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);

	lua_pushstring(L, state_name(u->x ? br_http_xfer_state(u->x) : BR_HTTP_S_CLOSED));
	return 1;
}

static int l_xfer_status(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	long s = u->x ? br_http_xfer_status(u->x) : 0;

	if (s == 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, (lua_Integer)s);
	return 1;
}

static void push_version(lua_State *L, int v)
{
	if (v == 11)
		lua_pushliteral(L, "1.1");
	else if (v == 20)
		lua_pushliteral(L, "2");
	else if (v == 30)
		lua_pushliteral(L, "3");
	else
		lua_pushfstring(L, "%d.%d", v / 10, v % 10);
}

/* Pushes the headers table and the version of x (see x:headers) and returns 2, or pushes
 * nil and returns 1 while the headers are not complete. */
static int push_headers(lua_State *L, br_http_xfer *x)
{
	const char *p, *end, *name, *value;
	size_t len, nl, vl, i;
	luaL_Buffer b;

	if (!x || !(p = br_http_xfer_headers(x, &len))) {
		lua_pushnil(L);
		return 1;
	}
	end = p + len;
	lua_createtable(L, 0, 8);
	while (br_http_header_next(&p, end, &name, &nl, &value, &vl)) {
		char low[64];

		if (nl <= sizeof low) {
			for (i = 0; i < nl; i++) {
				char c = name[i];

				low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
			}
			lua_pushlstring(L, low, nl);       /* key */
		} else {
			luaL_buffinit(L, &b);
			for (i = 0; i < nl; i++) {
				char c = name[i];

				luaL_addchar(&b, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
			}
			luaL_pushresult(&b);               /* key */
		}
		lua_pushvalue(L, -1);
		lua_rawget(L, -3);                 /* previous value */
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lua_pushlstring(L, value, vl);
		} else {
			lua_pushliteral(L, ", ");
			lua_pushlstring(L, value, vl);
			lua_concat(L, 3);
		}
		lua_rawset(L, -3);
	}
	push_version(L, br_http_xfer_version(x));
	return 2;
}

/* x:headers() -> {lower-case name = value} (repeats joined with ", "), "1.1"|"2" |
 * nil while the headers are not complete. */
static int l_xfer_headers(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);

	return push_headers(L, u->x);
}

/* Shared tail of read/read_into when nothing is buffered: "" / 0 while running, nil at
 * a clean end, nil, msg, "HTTP_FAILED", kind, curl_code on failure. */
static int push_no_data(lua_State *L, br_http_xfer *x, int as_count)
{
	const char *msg;
	int code;
	br_http_err e;

	switch (br_http_xfer_state(x)) {
	case BR_HTTP_S_DONE:
		lua_pushnil(L);
		return 1;
	case BR_HTTP_S_FAILED:
		e = br_http_xfer_error(x, &code, &msg);
		lua_pushnil(L);
		lua_pushstring(L, msg);
		lua_pushstring(L, br_status_name(BR_HTTP_FAILED));
		lua_pushstring(L, err_kind(e));
		lua_pushinteger(L, code);
		return 5;
	case BR_HTTP_S_CLOSED:
		return br_lua_failf(L, BR_HTTP_STATE, "transfer is closed");
	default:
		if (as_count)
			lua_pushinteger(L, 0);
		else
			lua_pushliteral(L, "");
		return 1;
	}
}

/* x:read() -> bytes | "" (nothing yet) | nil (end) | nil, msg, CODE, kind, curl_code */
static int l_xfer_read(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	const uint8_t *p;
	size_t n;

	if (!u->x)
		return br_lua_failf(L, BR_HTTP_STATE, "transfer is closed");
	n = br_http_xfer_body(u->x, &p);
	if (n == 0)
		return push_no_data(L, u->x, 0);
	lua_pushlstring(L, (const char *)p, n);
	br_http_xfer_consume(u->x, n);
	return 1;
}

/* The C decoder inside a bedrock.Decoder userdata, whose first member is the
 * br_es_decoder pointer (lua_eventstream.c); NULL if it is closed. */
static br_es_decoder *check_decoder(lua_State *L, int idx)
{
	br_es_decoder **pd = luaL_testudata(L, idx, DECODER_MT);

	if (!pd)
		luaL_argerror(L, idx, "bedrock.Decoder expected");
	return *pd;
}

/* x:read_into(decoder) -> bytes fed (> 0) | 0 (nothing yet) | nil (end) | nil, msg,
 * CODE[, kind, curl_code]. The bytes go straight from the transfer's buffer into the
 * decoder, with no Lua string. The decoder borrows what it is fed until it has read it,
 * and this transfer's buffer is reused as soon as we return, so the slice is handed
 * over and then the decoder is told to keep the unread rest (an empty feed copies it):
 * the decoder never points into memory it does not own. */
static int l_xfer_read_into(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	br_es_decoder *d = check_decoder(L, 2);
	const uint8_t *p;
	const char *detail = NULL;
	size_t n;
	br_status st;

	if (!d)
		return luaL_argerror(L, 2, "decoder is closed");
	if (!u->x)
		return br_lua_failf(L, BR_HTTP_STATE, "transfer is closed");
	n = br_http_xfer_body(u->x, &p);
	if (n == 0)
		return push_no_data(L, u->x, 1);
	st = br_es_decoder_feed(d, p, n);
	if (st == BR_OK)
		st = br_es_decoder_feed(d, NULL, 0);
	if (st != BR_OK) {
		/* keep the bytes: nothing is lost if the caller wants to look at them */
		if (br_es_decoder_error(d, &detail) != BR_OK && detail)
			return br_lua_failf(L, st, "%s: %s", br_status_message(st), detail);
		return br_lua_fail(L, st);
	}
	br_http_xfer_consume(u->x, n);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* x:send(bytes) -> true | nil, msg, CODE */
static int l_xfer_send(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);
	br_status st;

	if (!u->x)
		return br_lua_failf(L, BR_HTTP_STATE, "transfer is closed");
	st = br_http_xfer_send(u->x, (const uint8_t *)s, n);
	if (st == BR_HTTP_STATE)
		return br_lua_failf(L, st, "cannot send: %s",
				    br_http_xfer_input_ended(u->x) ?
				    "the server has already answered the whole request" :
				    br_http_xfer_state(u->x) != BR_HTTP_S_PENDING &&
				    br_http_xfer_state(u->x) != BR_HTTP_S_BODY ?
				    "the transfer is no longer running" :
				    "the request body is not streamed or its input was closed");
	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_xfer_close_input(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	br_status st;

	if (!u->x)
		return br_lua_failf(L, BR_HTTP_STATE, "transfer is closed");
	st = br_http_xfer_close_input(u->x);
	if (st != BR_OK)
		return br_lua_failf(L, st, "the request body is not streamed");
	lua_pushboolean(L, 1);
	return 1;
}

/* x:buffered() -> response body bytes waiting to be read */
static int l_xfer_buffered(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	const uint8_t *p;

	lua_pushinteger(L, u->x ? (lua_Integer)br_http_xfer_body(u->x, &p) : 0);
	return 1;
}

static int l_xfer_pending(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);

	lua_pushinteger(L, u->x ? (lua_Integer)br_http_xfer_pending_input(u->x) : 0);
	return 1;
}

/* x:info() -> {total, connect, first_byte (seconds, nil if not reached), buffer_cap,
 * buffer_peak, num_connects, received, sent} */
static int l_xfer_info(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	br_http_info in;

	if (!u->x)
		return br_lua_failf(L, BR_HTTP_STATE, "transfer is closed");
	br_http_xfer_info(u->x, &in);
	lua_createtable(L, 0, 8);
	lua_pushnumber(L, in.total);
	lua_setfield(L, -2, "total");
	if (in.connect >= 0) {
		lua_pushnumber(L, in.connect);
		lua_setfield(L, -2, "connect");
	}
	if (in.first_byte >= 0) {
		lua_pushnumber(L, in.first_byte);
		lua_setfield(L, -2, "first_byte");
	}
	push_count(L, (uint64_t)in.buffer_cap);
	lua_setfield(L, -2, "buffer_cap");
	push_count(L, (uint64_t)in.buffer_peak);
	lua_setfield(L, -2, "buffer_peak");
	push_count(L, (uint64_t)in.num_connects);
	lua_setfield(L, -2, "num_connects");
	push_count(L, (uint64_t)in.received);
	lua_setfield(L, -2, "received");
	push_count(L, (uint64_t)in.sent_stream);
	lua_setfield(L, -2, "sent");
	return 1;
}

/* x:timing() -> total, first_byte (seconds; first_byte nil if not reached): the two
 * figures a response carries, without building the info() table. */
static int l_xfer_timing(lua_State *L)
{
	l_xfer *u = check_xfer(L, 1);
	br_http_info in;

	if (!u->x)
		return br_lua_failf(L, BR_HTTP_STATE, "transfer is closed");
	br_http_xfer_info(u->x, &in);
	lua_pushnumber(L, in.total);
	if (in.first_byte >= 0)
		lua_pushnumber(L, in.first_byte);
	else
		lua_pushnil(L);
	return 2;
}

static int l_xfer_close(lua_State *L)
{
	l_xfer *u = luaL_checkudata(L, 1, XFER_MT);

	br_http_xfer_free(u->x);
	u->x = NULL;
	return 0;
}

static int l_xfer_tostring(lua_State *L)
{
	l_xfer *u = luaL_checkudata(L, 1, XFER_MT);

	lua_pushfstring(L, XFER_MT " (%s, %p)",
			state_name(u->x ? br_http_xfer_state(u->x) : BR_HTTP_S_CLOSED), (void *)u);
	return 1;
}

static const luaL_Reg multi_methods[] = {
	{"request", l_multi_request},
	{"fetch", l_multi_fetch},
	{"step", l_multi_step},
	{"fds", l_multi_fds},
	{"stats", l_multi_stats},
	{"timeout", l_multi_timeout},
	{"close", l_multi_close},
	{NULL, NULL}
};

static const luaL_Reg multi_meta[] = {
	{"__gc", l_multi_close},
	{"__close", l_multi_close},
	{"__tostring", l_multi_tostring},
	{NULL, NULL}
};

static const luaL_Reg xfer_methods[] = {
	{"state", l_xfer_state},
	{"status", l_xfer_status},
	{"headers", l_xfer_headers},
	{"read", l_xfer_read},
	{"read_into", l_xfer_read_into},
	{"send", l_xfer_send},
	{"close_input", l_xfer_close_input},
	{"pending", l_xfer_pending},
	{"buffered", l_xfer_buffered},
	{"info", l_xfer_info},
	{"timing", l_xfer_timing},
	{"close", l_xfer_close},
	{NULL, NULL}
};

static const luaL_Reg xfer_meta[] = {
	{"__gc", l_xfer_close},
	{"__close", l_xfer_close},
	{"__tostring", l_xfer_tostring},
	{NULL, NULL}
};

void br_lua_open_http(lua_State *L)
{
	br_lua_newclass(L, MULTI_MT, multi_methods, multi_meta);
	br_lua_newclass(L, XFER_MT, xfer_methods, xfer_meta);
	br_lua_newclass(L, POLLSET_MT, pollset_methods, pollset_meta);
	lua_pushcfunction(L, l_http_multi);
	lua_setfield(L, -2, "http_multi");
	lua_pushcfunction(L, l_http_poll);
	lua_setfield(L, -2, "http_poll");
	lua_pushcfunction(L, l_http_pollset);
	lua_setfield(L, -2, "http_pollset");
	lua_pushinteger(L, (lua_Integer)BR_HTTP_BUFFER_CAP);
	lua_setfield(L, -2, "http_buffer_cap");
}
