/* bedrock.core binding for SigV4: the Signer object (request, presign and event
 * signing over one reusable br_sigv4_signer) and the small hashing/encoding helpers the
 * Lua layer needs. Argument conversion only; the rules live in br_sigv4.c.
 *
 * Hot path: s:sign(req) reads each request field once with lua_getfield and leaves the
 * values on the stack until the signature is made, so the C pointers into Lua strings
 * stay anchored without copying; no Lua table is built unless debug output is asked.
 * s:prepare{} + s:sign_prepared(method, path, query, headers, body, amz_date) is the
 * same signature with the credentials and scope given once (positional arguments, no
 * table to fill and read per request). */
#include <stdlib.h>
#include <string.h>
#include "lua_bedrock.h"
#include "br_sigv4.h"

#define SIGNER_MT "bedrock.Signer"
#define DEFAULT_EXPIRES 3600L

typedef struct {
	br_sigv4_signer *s;
	br_sigv4_header *h;  /* header array reused across calls */
	size_t hcap;
	/* s:prepare{}: the per-client signing parameters, copied into one block (wiped
	 * when replaced or freed) so that s:sign_prepared() takes only the request */
	char *prep;
	size_t prep_len;
	br_sigv4_params pp;
} l_signer;

static l_signer *check_signer(lua_State *L)
{
	l_signer *ls = (l_signer *)luaL_checkudata(L, 1, SIGNER_MT);

	if (!ls->s)
		luaL_error(L, "attempt to use a closed bedrock.Signer");
	return ls;
}

/* Pushes t[k] (left on the stack to anchor it) and returns it as a string, or NULL when
 * nil and optional. Raises an argument error naming the field otherwise. A string with
 * an embedded NUL is refused where the core wants a C string (cstr). */
static const char *field_str(lua_State *L, int arg, int t, const char *k, size_t *len,
			     int required, int cstr)
{
	const char *v;
	size_t n;

	lua_getfield(L, t, k);
	if (lua_type(L, -1) == LUA_TSTRING) {
		v = lua_tolstring(L, -1, &n);
		if (cstr && strlen(v) != n)
			luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' contains a NUL byte", k));
		if (len)
			*len = n;
		return v;
	}
	if (lua_isnil(L, -1) && !required) {
		if (len)
			*len = 0;
		return NULL;
	}
	luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be a string (got %s)", k,
					      luaL_typename(L, -1)));
	return NULL;
}

/* Boolean field with a default; pops it. */
static int field_bool(lua_State *L, int arg, int t, const char *k, int def)
{
	int v = def;

	lua_getfield(L, t, k);
	if (lua_type(L, -1) == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (!lua_isnil(L, -1))
		luaL_argerror(L, arg, lua_pushfstring(L, "field '%s' must be a boolean (got %s)",
						      k, luaL_typename(L, -1)));
	lua_pop(L, 1);
	return v;
}

/* Integral Lua number at idx into *out; 0 when it is not a whole number in int64 range.
 * LuaJIT has only doubles, so both paths exist. */
static int to_int64(lua_State *L, int idx, int64_t *out)
{
	lua_Number n;

#if LUA_VERSION_NUM >= 503
	if (lua_isinteger(L, idx)) {
		*out = (int64_t)lua_tointeger(L, idx);
		return 1;
	}
#endif
	if (lua_type(L, idx) != LUA_TNUMBER)
		return 0;
	n = lua_tonumber(L, idx);
	if (!(n >= -9223372036854775808.0 && n < 9223372036854775808.0))
		return 0;
	*out = (int64_t)n;
	return (lua_Number)*out == n;
}

/* Reads the credential/scope fields shared by sign, presign and sign_event; with_date
 * (request signing) also reads session_token and amz_date. */
static void read_params(lua_State *L, int arg, int t, br_sigv4_params *p, int with_date)
{
	p->access_key = field_str(L, arg, t, "access_key", NULL, 1, 1);
	p->secret_key = field_str(L, arg, t, "secret_key", NULL, 1, 1);
	if (with_date)  /* request signing; events never carry the token */
		p->session_token = field_str(L, arg, t, "session_token", NULL, 0, 1);
	p->region = field_str(L, arg, t, "region", NULL, 1, 1);
	p->service = field_str(L, arg, t, "service", NULL, 1, 1);
	if (with_date) {
		size_t n;
		p->amz_date = field_str(L, arg, t, "amz_date", &n, 1, 0);
		if (n != 16)
			p->amz_date = "";  /* the core reports BAD_DATE */
	}
}

/* Reads the {name, value} pairs of the list at ht into ls->h (r->headers); the strings
 * stay on the Lua stack (two slots a header, so LuaJIT's stack limit caps a request at
 * ~32k headers: raises beyond). arg names the argument in errors. */
static void read_headers(lua_State *L, l_signer *ls, int ht, int arg, br_sigv4_request *r)
{
	size_t i, n;

	n = (size_t)lua_rawlen(L, ht);
	luaL_checkstack(L, (int)(n < 100000 ? 2 * n + 4 : 200008), "too many headers");
	if (n > ls->hcap) {
		size_t cap = ls->hcap ? ls->hcap : 16;
		void *np;
		while (cap < n)
			cap *= 2;
		np = realloc(ls->h, cap * sizeof(br_sigv4_header));
		if (!np)
			luaL_error(L, "not enough memory");
		ls->h = (br_sigv4_header *)np;
		ls->hcap = cap;
	}
	for (i = 0; i < n; i++) {
		br_sigv4_header *h = &ls->h[i];
		lua_rawgeti(L, ht, (int)i + 1);
		if (!lua_istable(L, -1))
			luaL_argerror(L, arg, lua_pushfstring(L, "headers[%d] must be a {name, value} pair",
							      (int)i + 1));
		lua_rawgeti(L, -1, 1);
		lua_rawgeti(L, -2, 2);
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, arg, lua_pushfstring(L, "headers[%d] must be a {name, value} "
							      "pair of strings", (int)i + 1));
		h->name = lua_tolstring(L, -2, &h->name_len);
		h->value = lua_tolstring(L, -1, &h->value_len);
		lua_remove(L, -3);  /* drop the pair table; name and value stay anchored */
	}
	r->headers = ls->h;
	r->nheaders = n;
}

/* Reads req (at index 2) into p and r; the strings stay on the Lua stack. */
static void read_request(lua_State *L, l_signer *ls, br_sigv4_params *p,
			 br_sigv4_request *r, int presign)
{
	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checkstack(L, 24, "sign");
	memset(p, 0, sizeof *p);
	memset(r, 0, sizeof *r);
	read_params(L, 2, 2, p, 1);
	p->normalize_path = field_bool(L, 2, 2, "normalize", 1);
	p->sign_token = field_bool(L, 2, 2, "sign_token", 1);
	p->expires = DEFAULT_EXPIRES;
	if (presign) {
		int64_t e = 0;
		lua_getfield(L, 2, "expires");
		if (!lua_isnil(L, -1)) {
			if (!to_int64(L, -1, &e))
				luaL_argerror(L, 2, "field 'expires' must be an integer");
			p->expires = (e < 1 || e > BR_SIGV4_EXPIRES_MAX) ? -1 : (long)e;
		}
		lua_pop(L, 1);
	}
	r->method = field_str(L, 2, 2, "method", NULL, 1, 1);
	r->path = field_str(L, 2, 2, "path", &r->path_len, 1, 0);
	r->query = field_str(L, 2, 2, "query", &r->query_len, 0, 0);
	r->payload = (const uint8_t *)field_str(L, 2, 2, "body", &r->payload_len, 0, 0);
	r->payload_hash = field_str(L, 2, 2, "payload_hash", NULL, 0, 1);

	lua_getfield(L, 2, "headers");
	if (!lua_istable(L, -1))
		luaL_argerror(L, 2, lua_pushfstring(L, "field 'headers' must be a table (got %s)",
						    luaL_typename(L, -1)));
	read_headers(L, ls, lua_gettop(L), 2, r);
}

static void push_stages(lua_State *L, const br_sigv4_result *res)
{
	lua_createtable(L, 0, 6);
#define SET(f) if (res->f) { lua_pushstring(L, res->f); lua_setfield(L, -2, #f); }
	SET(canonical_request)
	SET(string_to_sign)
	SET(signature)
	SET(authorization)
	SET(signed_headers)
	SET(query)
#undef SET
}

/* s:sign(req [, debug]) -> authorization, signature, signed_headers | stage table */
static int l_signer_sign(lua_State *L)
{
	l_signer *ls = check_signer(L);
	int debug = lua_toboolean(L, 3);
	br_sigv4_params p;
	br_sigv4_request r;
	br_sigv4_result res;
	br_status st;

	read_request(L, ls, &p, &r, 0);
	st = br_sigv4_sign(ls->s, &p, &r, &res);
	if (st != BR_OK)
		return br_lua_fail(L, st);
	if (debug) {
		push_stages(L, &res);
		return 1;
	}
	lua_pushstring(L, res.authorization);
	lua_pushlstring(L, res.signature, 64);
	lua_pushstring(L, res.signed_headers);
	return 3;
}

/* Frees (and wipes) the prepared parameters. */
static void prep_free(l_signer *ls)
{
	if (ls->prep) {
		memset(ls->prep, 0, ls->prep_len);
		free(ls->prep);
	}
	ls->prep = NULL;
	ls->prep_len = 0;
	memset(&ls->pp, 0, sizeof ls->pp);
}

/* s:prepare{access_key=, secret_key=, region=, service= [, session_token=]
 *           [, normalize=] [, sign_token=]} -> s
 * Keeps a copy of the parameters for s:sign_prepared (replacing earlier ones). */
static int l_signer_prepare(lua_State *L)
{
	l_signer *ls = check_signer(L);
	br_sigv4_params p;
	const char *src[5];
	size_t len[5], total = 0;
	const char **dst[5];
	char *block, *at;
	int i;

	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checkstack(L, 16, "prepare");
	memset(&p, 0, sizeof p);
	src[0] = field_str(L, 2, 2, "access_key", NULL, 1, 1);
	src[1] = field_str(L, 2, 2, "secret_key", NULL, 1, 1);
	src[2] = field_str(L, 2, 2, "session_token", NULL, 0, 1);
	src[3] = field_str(L, 2, 2, "region", NULL, 1, 1);
	src[4] = field_str(L, 2, 2, "service", NULL, 1, 1);
	p.normalize_path = field_bool(L, 2, 2, "normalize", 1);
	p.sign_token = field_bool(L, 2, 2, "sign_token", 1);
	dst[0] = &p.access_key;
	dst[1] = &p.secret_key;
	dst[2] = &p.session_token;
	dst[3] = &p.region;
	dst[4] = &p.service;
	for (i = 0; i < 5; i++) {
		len[i] = src[i] ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	block = (char *)malloc(total ? total : 1);
	if (!block)
		return luaL_error(L, "not enough memory");
	at = block;
	for (i = 0; i < 5; i++) {
		if (src[i]) {
			memcpy(at, src[i], len[i]);
			*dst[i] = at;
			at += len[i];
		}
	}
	prep_free(ls);
	ls->prep = block;
	ls->prep_len = total;
	p.expires = DEFAULT_EXPIRES;
	ls->pp = p;
	lua_settop(L, 1);
	return 1;
}

/* Same bytes, compared without an early exit (a secret is compared here). */
static int same_secret(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a), i;
	unsigned char d = 0;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* s:is_prepared(access_key, secret_key) -> boolean: whether the last s:prepare{} was
 * given these credentials. Lets a caller keep no copy of the secret to know when to
 * prepare again. */
static int l_signer_is_prepared(lua_State *L)
{
	l_signer *ls = check_signer(L);
	size_t akl, skl;
	const char *ak = luaL_checklstring(L, 2, &akl);
	const char *sk = luaL_checklstring(L, 3, &skl);

	lua_pushboolean(L, ls->prep && ls->pp.access_key && ls->pp.secret_key &&
			strlen(ls->pp.access_key) == akl && memcmp(ls->pp.access_key, ak, akl) == 0 &&
			same_secret(ls->pp.secret_key, sk, skl));
	return 1;
}

/* A string argument the core wants as a C string (no embedded NUL); NULL when nil and
 * optional. */
static const char *arg_cstr(lua_State *L, int arg, int required)
{
	size_t n;
	const char *v;

	if (!required && lua_isnoneornil(L, arg))
		return NULL;
	v = luaL_checklstring(L, arg, &n);
	if (strlen(v) != n)
		luaL_argerror(L, arg, "contains a NUL byte");
	return v;
}

/* s:sign_prepared(method, path, query, headers, body, amz_date [, payload_hash])
 *   -> authorization, signature, signed_headers
 * s:sign{} with the parameters of the last s:prepare{}; query, body and payload_hash
 * may be nil. */
static int l_signer_sign_prepared(lua_State *L)
{
	l_signer *ls = check_signer(L);
	br_sigv4_params p;
	br_sigv4_request r;
	br_sigv4_result res;
	br_status st;
	size_t n;

	if (!ls->prep)
		return luaL_error(L, "bedrock.Signer: sign_prepared before prepare");
	memset(&r, 0, sizeof r);
	p = ls->pp;
	r.method = arg_cstr(L, 2, 1);
	r.path = luaL_checklstring(L, 3, &r.path_len);
	if (!lua_isnoneornil(L, 4))
		r.query = luaL_checklstring(L, 4, &r.query_len);
	luaL_checktype(L, 5, LUA_TTABLE);
	if (!lua_isnoneornil(L, 6))
		r.payload = (const uint8_t *)luaL_checklstring(L, 6, &r.payload_len);
	p.amz_date = luaL_checklstring(L, 7, &n);
	if (n != 16)
		p.amz_date = "";  /* the core reports BAD_DATE */
	r.payload_hash = arg_cstr(L, 8, 0);
	read_headers(L, ls, 5, 5, &r);
	st = br_sigv4_sign(ls->s, &p, &r, &res);
	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushstring(L, res.authorization);
	lua_pushlstring(L, res.signature, 64);
	lua_pushstring(L, res.signed_headers);
	return 3;
}

/* s:presign(req [, debug]) -> query | stage table */
static int l_signer_presign(lua_State *L)
{
	l_signer *ls = check_signer(L);
	int debug = lua_toboolean(L, 3);
	br_sigv4_params p;
	br_sigv4_request r;
	br_sigv4_result res;
	br_status st;

	read_request(L, ls, &p, &r, 1);
	st = br_sigv4_presign(ls->s, &p, &r, &res);
	if (st != BR_OK)
		return br_lua_fail(L, st);
	if (debug) {
		push_stages(L, &res);
		return 1;
	}
	lua_pushstring(L, res.query);
	return 1;
}

/* s:sign_event(params, prior_sig_hex, date_ms, payload [, amz_date [, debug]])
 *   -> raw 32-byte signature, hex [, stage table]
 * date_ms is the :date value in ms; or a string of raw header bytes to hash verbatim
 * (then amz_date is required). amz_date, when given, is the signing time. params nil:
 * the credentials and scope of the last s:prepare{} (so that no Lua table has to keep
 * the secret for a stream's lifetime). */
static int l_signer_sign_event(lua_State *L)
{
	l_signer *ls = check_signer(L);
	br_sigv4_params p;
	br_sigv4_result res;
	const char *prior, *payload, *amz = NULL;
	const uint8_t *hdr;
	size_t plen, hlen, alen = 0;
	uint8_t sig[32], dh[15];
	char hex[65];
	int64_t ms = 0;
	int debug = lua_toboolean(L, 7);
	br_status st;

	if (lua_isnil(L, 2)) {
		if (!ls->prep)
			return luaL_error(L, "bedrock.Signer: sign_event without params before prepare");
	} else {
		luaL_checktype(L, 2, LUA_TTABLE);
	}
	prior = luaL_optstring(L, 3, "");
	payload = luaL_optlstring(L, 5, "", &plen);
	if (!lua_isnoneornil(L, 6))
		amz = luaL_checklstring(L, 6, &alen);
	if (lua_type(L, 4) == LUA_TSTRING) {
		hdr = (const uint8_t *)lua_tolstring(L, 4, &hlen);
		if (!amz)
			return luaL_argerror(L, 6, "amz_date is required with raw header bytes");
	} else {
		if (!to_int64(L, 4, &ms))
			return luaL_argerror(L, 4, "date_ms must be an integer (ms) or header bytes");
		br_sigv4_event_date_header(ms, dh);
		hdr = dh;
		hlen = sizeof dh;
	}
	luaL_checkstack(L, 8, "sign_event");
	memset(&p, 0, sizeof p);
	if (lua_isnil(L, 2)) {
		p.access_key = ls->pp.access_key;
		p.secret_key = ls->pp.secret_key;
		p.region = ls->pp.region;
		p.service = ls->pp.service;
	} else {
		read_params(L, 2, 2, &p, 0);
	}
	if (amz)
		st = br_sigv4_sign_event_raw(ls->s, &p, prior, alen == 16 ? amz : "", hdr, hlen,
					     (const uint8_t *)payload, plen, sig, hex, &res);
	else
		st = br_sigv4_sign_event(ls->s, &p, prior, ms, (const uint8_t *)payload, plen,
					 sig, hex, &res);
	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushlstring(L, (const char *)sig, 32);
	lua_pushlstring(L, hex, 64);
	if (!debug)
		return 2;
	push_stages(L, &res);
	lua_pushlstring(L, (const char *)hdr, hlen);
	lua_setfield(L, -2, "date_header");
	return 3;
}

/* s:signing_key(secret, yyyymmdd, region, service) -> raw 32-byte key (tests). */
static int l_signer_signing_key(lua_State *L)
{
	l_signer *ls = check_signer(L);
	const char *secret = luaL_checkstring(L, 2);
	const char *date8 = luaL_checkstring(L, 3);
	const char *region = luaL_checkstring(L, 4);
	const char *service = luaL_checkstring(L, 5);
	uint8_t key[32];
	br_status st = br_sigv4_signing_key(ls->s, secret, date8, region, service, key);

	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushlstring(L, (const char *)key, 32);
	memset(key, 0, sizeof key);
	return 1;
}

/* One idempotent close for close(), __gc and __close: frees and wipes the signer. */
static int l_signer_close(lua_State *L)
{
	l_signer *ls = (l_signer *)luaL_checkudata(L, 1, SIGNER_MT);

	br_sigv4_free(ls->s);
	ls->s = NULL;
	prep_free(ls);
	free(ls->h);
	ls->h = NULL;
	ls->hcap = 0;
	return 0;
}

static int l_signer_tostring(lua_State *L)
{
	l_signer *ls = (l_signer *)luaL_checkudata(L, 1, SIGNER_MT);

	if (ls->s)
		lua_pushfstring(L, SIGNER_MT ": %p", (void *)ls);
	else
		lua_pushliteral(L, SIGNER_MT " (closed)");
	return 1;
}

/* core.signer() -> Signer */
static int l_signer_new(lua_State *L)
{
	l_signer *ls = (l_signer *)lua_newuserdatauv(L, sizeof(l_signer), 0);

	ls->s = NULL;
	ls->h = NULL;
	ls->hcap = 0;
	ls->prep = NULL;
	ls->prep_len = 0;
	memset(&ls->pp, 0, sizeof ls->pp);
	luaL_getmetatable(L, SIGNER_MT);
	lua_setmetatable(L, -2);
	ls->s = br_sigv4_new();
	if (!ls->s)
		return luaL_error(L, "not enough memory");
	return 1;
}

/* core.uri_encode(s [, keep_slash]) -> s with every byte outside A-Za-z0-9-._~ (and
 * '/' when keep_slash) as %XX. Returns s itself when nothing needs encoding. */
static int l_uri_encode(lua_State *L)
{
	size_t n, i;
	const char *s = luaL_checklstring(L, 1, &n);
	int keep = lua_toboolean(L, 2);
	uint8_t stackbuf[768];
	br_buf b;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' ||
		      (keep && c == '/')))
			break;
	}
	if (i == n) {
		lua_settop(L, 1);
		return 1;
	}
	if (n > ((size_t)-1) / 3 - 1)
		return luaL_error(L, "string too long");
	/* Exactly-sized scratch: br_buf never reallocates, and Lua owns the memory, so an
	 * error raised by lua_pushlstring cannot leak it. */
	b.len = 0;
	b.cap = 3 * n;
	b.data = 3 * n <= sizeof stackbuf ? stackbuf
		 : (uint8_t *)lua_newuserdatauv(L, 3 * n, 0);
	if (br_sigv4_uri_encode(&b, s, n, keep) != BR_OK)
		return luaL_error(L, "uri_encode failed");
	lua_pushlstring(L, (const char *)b.data, b.len);
	return 1;
}

/* core.amz_date(unix_seconds) -> "YYYYMMDDTHHMMSSZ" (fractions dropped, floor). */
static int l_amz_date(lua_State *L)
{
	lua_Number n;
	int64_t t;
	char buf[17];

#if LUA_VERSION_NUM >= 503
	if (lua_isinteger(L, 1)) {
		t = (int64_t)lua_tointeger(L, 1);
	} else
#endif
	{
		n = luaL_checknumber(L, 1);
		if (!(n >= (lua_Number)BR_SIGV4_TIME_MIN && n < (lua_Number)BR_SIGV4_TIME_MAX + 1))
			return br_lua_fail(L, BR_RANGE);
		t = (int64_t)n;
		if ((lua_Number)t > n)
			t--;
	}
	if (t < BR_SIGV4_TIME_MIN || t > BR_SIGV4_TIME_MAX)
		return br_lua_fail(L, BR_RANGE);
	br_sigv4_amz_date(t, buf);
	lua_pushlstring(L, buf, 16);
	return 1;
}

/* core.sha256_hex(s) -> 64 lowercase hex */
static int l_sha256_hex(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	char hex[65];

	br_sigv4_sha256_hex(s, n, hex);
	lua_pushlstring(L, hex, 64);
	return 1;
}

/* core.hmac_sha256(key, s) -> raw 32 bytes */
static int l_hmac_sha256(lua_State *L)
{
	size_t kn, n;
	const char *k = luaL_checklstring(L, 1, &kn);
	const char *s = luaL_checklstring(L, 2, &n);
	uint8_t out[32];

	br_sigv4_hmac_sha256(k, kn, s, n, out);
	lua_pushlstring(L, (const char *)out, 32);
	return 1;
}

void br_lua_open_sigv4(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"sign", l_signer_sign},
		{"prepare", l_signer_prepare},
		{"is_prepared", l_signer_is_prepared},
		{"sign_prepared", l_signer_sign_prepared},
		{"presign", l_signer_presign},
		{"sign_event", l_signer_sign_event},
		{"signing_key", l_signer_signing_key},
		{"close", l_signer_close},
		{NULL, NULL}
	};
	static const luaL_Reg meta[] = {
		{"__gc", l_signer_close},
		{"__close", l_signer_close},
		{"__tostring", l_signer_tostring},
		{NULL, NULL}
	};
	static const luaL_Reg funcs[] = {
		{"signer", l_signer_new},
		{"uri_encode", l_uri_encode},
		{"amz_date", l_amz_date},
		{"sha256_hex", l_sha256_hex},
		{"hmac_sha256", l_hmac_sha256},
		{NULL, NULL}
	};

	br_lua_newclass(L, SIGNER_MT, methods, meta);
	luaL_setfuncs(L, funcs, 0);
}
