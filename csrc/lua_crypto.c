/* bedrock.core binding for br_crypto: SHA-1 (SSO token cache names) and ES256 (DPoP
 * proofs for the sign-in service), and br_file's private whole-file replace for the
 * credential caches, and UUIDs from a per-state pool of CSPRNG bytes (core.uuid4). */
#include <string.h>
#include "lua_bedrock.h"
#include "br_crypto.h"
#include "br_file.h"

/* core.sha1_hex(s) -> 40 lowercase hex */
static int l_sha1_hex(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	char hex[41];

	br_crypto_sha1_hex(s, n, hex);
	lua_pushlstring(L, hex, 40);
	return 1;
}

/* core.es256_public(der_key) -> x, y (32 raw bytes each) | nil, msg, CODE */
static int l_es256_public(lua_State *L)
{
	size_t kn;
	const char *k = luaL_checklstring(L, 1, &kn);
	uint8_t x[32], y[32];
	br_status st = br_es256_public((const uint8_t *)k, kn, x, y);

	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushlstring(L, (const char *)x, 32);
	lua_pushlstring(L, (const char *)y, 32);
	return 2;
}

/* core.es256_sign(der_key, msg) -> sig (64 raw bytes, r || s), x, y | nil, msg, CODE */
static int l_es256_sign(lua_State *L)
{
	size_t kn, n;
	const char *k = luaL_checklstring(L, 1, &kn);
	const char *m = luaL_checklstring(L, 2, &n);
	uint8_t sig[64], x[32], y[32];
	br_status st = br_es256_sign((const uint8_t *)k, kn, (const uint8_t *)m, n, sig, x, y);

	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushlstring(L, (const char *)sig, 64);
	lua_pushlstring(L, (const char *)x, 32);
	lua_pushlstring(L, (const char *)y, 32);
	return 3;
}

/* core.es256_verify(x, y, msg, sig) -> true | nil, msg, CODE */
static int l_es256_verify(lua_State *L)
{
	size_t xn, yn, n, sn;
	const char *x = luaL_checklstring(L, 1, &xn);
	const char *y = luaL_checklstring(L, 2, &yn);
	const char *m = luaL_checklstring(L, 3, &n);
	const char *s = luaL_checklstring(L, 4, &sn);
	br_status st;

	luaL_argcheck(L, xn == 32, 1, "x must be 32 bytes");
	luaL_argcheck(L, yn == 32, 2, "y must be 32 bytes");
	luaL_argcheck(L, sn == 64, 4, "signature must be 64 bytes");
	st = br_es256_verify((const uint8_t *)x, (const uint8_t *)y, (const uint8_t *)m, n,
			     (const uint8_t *)s);
	if (st != BR_OK)
		return br_lua_fail(L, st);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.replace_file(path, data) -> true | nil, "cannot write <path>: <reason>", "IO" */
static int l_replace_file(lua_State *L)
{
	size_t n;
	const char *path = luaL_checkstring(L, 1);
	const char *d = luaL_checklstring(L, 2, &n);
	int e = 0;
	br_status st = br_file_replace(path, d, n, &e);

	if (st != BR_OK)
		return br_lua_failf(L, st, "cannot write %s: %s", path,
				    e ? strerror(e) : br_status_message(st));
	lua_pushboolean(L, 1);
	return 1;
}

/* core.mkdir_p(dir) -> true | nil, "cannot create <dir>: <reason>", "IO" */
static int l_mkdir_p(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	int e = 0;
	br_status st = br_file_mkdir_p(dir, 0700, &e);

	if (st != BR_OK)
		return br_lua_failf(L, st, "cannot create %s: %s", dir,
				    e ? strerror(e) : br_status_message(st));
	lua_pushboolean(L, 1);
	return 1;
}

/* core.random_bytes(n) -> n bytes from the CSPRNG (n <= 4096). */
static int l_random_bytes(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	uint8_t buf[4096];
	luaL_argcheck(L, n >= 0 && n <= (lua_Integer)sizeof buf, 1, "0..4096 bytes");
	if (br_crypto_random(buf, (size_t)n) != BR_OK) return luaL_error(L, "the random generator failed");
	lua_pushlstring(L, (const char *)buf, (size_t)n);
	return 1;
}

/* core.uuid4() -> "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx" from the CSPRNG, through the
 * per-state byte pool that is this function's upvalue (br_crypto_uuid4). */
static int l_uuid4(lua_State *L)
{
	br_random_pool *pool = lua_touserdata(L, lua_upvalueindex(1));
	char u[37];

	if (br_crypto_uuid4(pool, u) != BR_OK)
		return luaL_error(L, "the random generator failed");
	lua_pushlstring(L, u, 36);
	return 1;
}

void br_lua_open_crypto(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"sha1_hex", l_sha1_hex},
		{"random_bytes", l_random_bytes},
		{"es256_public", l_es256_public},
		{"es256_sign", l_es256_sign},
		{"es256_verify", l_es256_verify},
		{"replace_file", l_replace_file},
		{"mkdir_p", l_mkdir_p},
		{NULL, NULL}
	};
	luaL_setfuncs(L, funcs, 0);
	memset(lua_newuserdatauv(L, sizeof(br_random_pool), 0), 0, sizeof(br_random_pool));
	lua_pushcclosure(L, l_uuid4, 1);
	lua_setfield(L, -2, "uuid4");
}
