/* Lua binding of the event-stream codec: core.decoder, core.encode, core.crc32.
 *
 *   dec = core.decoder([max_message])   userdata "bedrock.Decoder"
 *   dec:feed(s)       -> true | nil, msg, CODE   (keeps s alive in the user value)
 *   dec:next([blobs [, sentinel [, readers]]]) -> headers, payload | nil (needs more) | nil, msg, CODE
 *                        or, for an event (":message-type" "event" or absent, a string
 *                        ":event-type") whose payload it decodes itself, straight from the
 *                        frame: event_type, value, how (3 values; no headers table and no
 *                        payload string are made):
 *                        blobs: { [event type] = member key }: a payload that is a JSON
 *                        object of plain strings holding the key with valid base64 gives
 *                        the decoded bytes and the key (InvokeModelWithResponseStream chunks);
 *                        sentinel (a string): a payload the JSON fast path takes gives its
 *                        value (as core.json_decode(payload, sentinel) gives it) and true;
 *                        with readers, { [event type] = desc } (shapes.reader_desc), a
 *                        payload core.json_read(payload, sentinel, desc) takes gives that
 *                        value, already read by the event's shape, and 2.
 *                        Every other message comes as headers, payload.
 *   dec:take(readers, sentinel, qe, qv [, max]) -> n, state
 *                        the events the decoder holds, read by readers in one batch:
 *                        qe[1..n] their types, qv[1..n] their values (as dec:next gives
 *                        them with how 2); state 0: needs bytes, 1: may have more, -1: the
 *                        next message (or error) is dec:next()'s (see take_batch)
 *   dec:next_frame()  -> frame | nil | nil, msg, CODE: the same message with wire detail,
 *                        { headers = { {name, type, value}, ... } (wire order, type 0-9),
 *                          payload, total_length, headers_length, prelude_crc, message_crc }
 *   dec:pending()     -> bytes held that are not yet part of a returned message
 *   dec:memory()      -> bytes the decoder has allocated (bounded by one message)
 *   dec:finish()      -> true | nil, msg, "STREAM_TRUNCATED"   (end of stream)
 *   dec:error()       -> nil | msg, CODE   (the sticky first error)
 *   dec:reset()       -> dec   (clears everything, including the error)
 *   dec:close()       frees it (also __gc/__close); later calls raise
 *   core.encode(headers [, payload]) -> frame | nil, msg, CODE
 *       headers: an array of {name, type, value} triples (exact order; type 0-9 or a name:
 *       "true" "false" "bool" (by value) "byte" "short"/"int16" "integer"/"int32" "long"/
 *       "int64" "bytes" "string" "timestamp" "uuid" (16 bytes or 8-4-4-4-12 hex)), or a
 *       map name -> string (all type 7, sorted bytewise by name). 64-bit values may be
 *       given as decimal strings.
 *   core.crc32(s [, crc]) -> integer (zlib-compatible, chainable)
 *   core._crc32_portable(s [, crc]) -> integer, path   (test-only: the portable path,
 *       and the name of the path core.crc32 takes)
 *   core.EVENTSTREAM_MAX_MESSAGE   the protocol frame limit
 *
 * dec:next() gives headers as a table name -> value. Header values: bools for types 0/1;
 * integers for 2-5 and 8 (ms) under Lua 5.3+, numbers under LuaJIT/5.1 when |v| <= 2^53
 * and decimal strings beyond; strings for 6, 7 and 9 (the 16 raw UUID bytes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lua_bedrock.h"
#include "br_base64.h"
#include "br_eventstream.h"
#include "br_json.h"
#include "br_jtape.h"

#define DECODER_MT "bedrock.Decoder"

/* The decoder pointer must stay the first member: lua_http.c (x:read_into) reads a
 * bedrock.Decoder userdata as a br_es_decoder ** to feed it without a Lua string. */
typedef struct {
	br_es_decoder *d;   /* NULL once closed */
	uint8_t *scratch;   /* dec:next(blobs): base64 output, reused (malloc'd) */
	size_t scratch_cap;
	br_jtape tape;      /* event payloads read by their shape */
	int held;           /* HELD_MESSAGE: hm was taken by a batch and is the
			     * next dec:next's; HELD_ERROR: hst is (see take_batch) */
	br_status hst;
	br_es_message hm;
} l_decoder;

enum { HELD_NONE, HELD_MESSAGE, HELD_ERROR };

#if LUA_VERSION_NUM >= 503
#define HAVE_INT64 1
#endif

static br_es_decoder *check_decoder(lua_State *L)
{
	l_decoder *u = (l_decoder *)luaL_checkudata(L, 1, DECODER_MT);
	if (!u->d)
		luaL_error(L, "attempt to use a closed decoder");
	return u->d;
}

static int l_decoder_new(lua_State *L)
{
	lua_Number x = luaL_optnumber(L, 1, 0);
	size_t max;
	l_decoder *u;

	luaL_argcheck(L, x >= 0, 1, "max_message must not be negative");
	max = x >= (lua_Number)BR_ES_MAX_MESSAGE ? BR_ES_MAX_MESSAGE : (size_t)x;
	u = (l_decoder *)lua_newuserdatauv(L, sizeof *u, 1);
	u->d = NULL;
	u->scratch = NULL;
	u->scratch_cap = 0;
	br_jtape_init(&u->tape);
	u->held = HELD_NONE;
	luaL_getmetatable(L, DECODER_MT);
	lua_setmetatable(L, -2);
	u->d = br_es_decoder_new(max);
	if (!u->d)
		return luaL_error(L, "not enough memory");
	return 1;
}

static int l_decoder_close(lua_State *L)
{
	l_decoder *u = (l_decoder *)luaL_checkudata(L, 1, DECODER_MT);
	if (u->d) {
		br_es_decoder_free(u->d);
		u->d = NULL;
		free(u->scratch);
		u->scratch = NULL;
		u->scratch_cap = 0;
		br_jtape_free(&u->tape);
		u->held = HELD_NONE;
		lua_pushnil(L);
		lua_setiuservalue(L, 1, 1);
	}
	return 0;
}

/* nil, "<detail>", "<CODE>" for the decoder's error; DECODER_FAILED names the first one. */
static int push_error(lua_State *L, br_es_decoder *d, br_status s)
{
	const char *detail;
	br_status first = br_es_decoder_error(d, &detail);

	if (s == BR_DECODER_FAILED && first != BR_OK)
		return br_lua_failf(L, s, "%s (earlier error %s: %s)", br_status_message(s),
				    br_status_name(first), detail);
	if (first == s && detail[0])
		return br_lua_failf(L, s, "%s", detail);
	return br_lua_fail(L, s);
}

static int l_decoder_feed(lua_State *L)
{
	br_es_decoder *d = check_decoder(L);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);
	br_status st;

	if (((l_decoder *)lua_touserdata(L, 1))->held == HELD_MESSAGE)
		return luaL_error(L, "a message is waiting: call dec:next() before feeding");
	st = br_es_decoder_feed(d, (const uint8_t *)s, n);

	if (st != BR_OK)
		return push_error(L, d, st);
	/* The decoder borrows s: keep it reachable until the next feed. */
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, 1, 1);
	lua_pushboolean(L, 1);
	return 1;
}

static void push_int64(lua_State *L, int64_t v)
{
#ifdef HAVE_INT64
	lua_pushinteger(L, (lua_Integer)v);
#else
	if (v >= -9007199254740992LL && v <= 9007199254740992LL) {
		lua_pushnumber(L, (lua_Number)v);
	} else {
		char b[24];
		snprintf(b, sizeof b, "%lld", (long long)v);
		lua_pushstring(L, b);
	}
#endif
}

static void push_value(lua_State *L, const br_es_header *h);

/* Takes the next message into m: returns 0 when there is one, else the number of
 * values pushed (nil when more input is needed, or nil, msg, CODE). */
static int take_message(lua_State *L, br_es_message *m)
{
	br_es_decoder *d = check_decoder(L);
	l_decoder *u = (l_decoder *)lua_touserdata(L, 1);
	br_status st;

	if (u->held == HELD_MESSAGE) {
		u->held = HELD_NONE;
		*m = u->hm;
		return 0;
	}
	if (u->held == HELD_ERROR) {
		u->held = HELD_NONE;
		return push_error(L, d, u->hst);
	}
	st = br_es_decoder_next(d, m);
	if (st == BR_OK)
		return 0;
	if (st == BR_AGAIN) {
		/* Slice used up (its tail, if any, was copied): let it be collected. */
		lua_pushnil(L);
		lua_setiuservalue(L, 1, 1);
		lua_pushnil(L);
		return 1;
	}
	return push_error(L, d, st);
}

/* Does dec:next() give header h's value as a string? */
static int is_text(const br_es_header *h)
{
	return h->type == BR_ES_STRING || h->type == BR_ES_BYTES || h->type == BR_ES_UUID;
}

/* Is header h, when present, a text value "event"? */
static int is_event(const br_es_header *h)
{
	return is_text(h) && h->len == 5 && memcmp(h->str, "event", 5) == 0;
}

/* The :event-type header of m when m is an event (":message-type" "event" or absent)
 * with a text event type, else NULL. */
static const br_es_header *event_type(const br_es_message *m)
{
	const br_es_header *mt = NULL, *et = NULL;
	size_t i;

	for (i = 0; i < m->nheaders; i++) {
		const br_es_header *h = &m->headers[i];
		if (h->name_len == 13 && memcmp(h->name, ":message-type", 13) == 0)
			mt = h;
		else if (h->name_len == 11 && memcmp(h->name, ":event-type", 11) == 0)
			et = h;
	}
	return et && is_text(et) && (!mt || is_event(mt)) ? et : NULL;
}

/* dec:next(blobs, ...) for an event whose type (a string) is at the top of the stack:
 * when blobs (index 2) names a member key for that type and the payload is a JSON object
 * of plain strings holding that key with valid base64 (br_json_plain_member), pushes the
 * decoded bytes and the key and returns 1; otherwise pushes nothing, 0. */
static int push_blob(lua_State *L, const br_es_message *m)
{
	l_decoder *u = (l_decoder *)lua_touserdata(L, 1);
	const char *key, *val;
	size_t key_len, val_len, need, len = 0, bad = 0;

	lua_pushvalue(L, -1);
	lua_rawget(L, 2);
	key = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &key_len) : NULL;
	if (!key || !br_json_plain_member((const char *)m->payload, m->payload_len, key, key_len,
					   &val, &val_len)) {
		lua_pop(L, 1);
		return 0;
	}
	need = br_base64_decoded_max(val_len) + 1;
	if (need > u->scratch_cap) {
		uint8_t *p = realloc(u->scratch, need);
		if (!p) {
			lua_pop(L, 1);
			return 0; /* the general path will say what it can */
		}
		u->scratch = p;
		u->scratch_cap = need;
	}
	if (br_base64_decode(val, val_len, u->scratch, &len, &bad) != BR_OK) {
		lua_pop(L, 1);
		return 0;
	}
	lua_pushlstring(L, (const char *)u->scratch, len);
	lua_insert(L, -2);
	return 1;
}

static int l_decoder_next(lua_State *L)
{
	br_es_message m;
	size_t i;
	const br_es_header *et;
	int blobs = lua_type(L, 2) == LUA_TTABLE;
	int sentinel = lua_type(L, 3) == LUA_TSTRING;
	int readers = lua_type(L, 4) == LUA_TTABLE;
	int nret = take_message(L, &m);

	if (nret)
		return nret;
	et = event_type(&m);
	/* The fast forms, for an event: its type, its payload decoded straight from the
	 * frame (no headers table, no payload string), and what was done. */
	if ((blobs || sentinel) && et) {
		lua_pushlstring(L, (const char *)et->str, et->len);
		if (blobs && push_blob(L, &m))
			return 3;
		if (sentinel && readers && m.payload_len > 0 &&
		    br_lua_json_event(L, &((l_decoder *)lua_touserdata(L, 1))->tape, 4, (const char *)et->str,
				      et->len, (const char *)m.payload, m.payload_len, 3)) {
			lua_pushinteger(L, 2);
			return 3;
		}
		if (sentinel && m.payload_len > 0 &&
		    br_lua_json_push(L, (const char *)m.payload, m.payload_len, 3)) {
			lua_pushboolean(L, 1);
			return 3;
		}
		lua_pop(L, 1);
	}
	lua_createtable(L, 0, (int)m.nheaders);
	for (i = 0; i < m.nheaders; i++) {
		const br_es_header *h = &m.headers[i];
		lua_pushlstring(L, h->name, h->name_len);
		push_value(L, h);
		lua_rawset(L, -3);
	}
	lua_pushlstring(L, (const char *)m.payload, m.payload_len);
	return 2;
}

static void push_value(lua_State *L, const br_es_header *h)
{
	switch (h->type) {
	case BR_ES_TRUE:
	case BR_ES_FALSE:
		lua_pushboolean(L, h->type == BR_ES_TRUE);
		break;
	case BR_ES_BYTES:
	case BR_ES_STRING:
	case BR_ES_UUID:
		lua_pushlstring(L, (const char *)h->str, h->len);
		break;
	case BR_ES_INT64:
	case BR_ES_TIMESTAMP:
		push_int64(L, h->i);
		break;
	default:
		lua_pushinteger(L, (lua_Integer)h->i);
		break;
	}
}

/* ------------------------------------------------------------------ event batches
 *
 * A Stream takes its events in batches: take_batch takes the decoder's messages while it
 * has whole ones, and reads each event's payload by its type's rules onto the decoder's
 * tape (a BR_JT_EVT entry naming the root, then the value). dec:take builds the values
 * through the Lua C API; under LuaJIT, where calls through the C API run in the
 * interpreter and every value built through it costs more than in PUC Lua, Lua reads the
 * tape through the FFI and builds them itself in one loop (jit_events.lua). The first
 * message it does not take (an exception, an unknown event, a payload the reader
 * declines), and a decoder error, is held for the next dec:next(), which hands it out as
 * it always does: one decoder and one reader whichever way a message goes.
 *
 *   dec     the payload of a bedrock.Decoder userdata (LuaJIT converts a userdata to a
 *           pointer to its payload)
 *   reader  the payload of the bedrock.JsonReader of the stream's readers (core.json_reader)
 *   max     the most events to take
 * Returns the events taken (the tape, ents[0 .. n-1], is valid until the next call on
 * dec) and sets *state: 0 the decoder needs bytes, 1 more messages may be ready (call
 * again), -1 dec:next() must be called for the next message or error. */
typedef struct {
	const br_jt_ent *ents;
	uint32_t n;
	int32_t state;
} br_es_batch;

static int take_batch(void *dec, const void *reader, int max, br_es_batch *b)
{
	l_decoder *u = (l_decoder *)dec;
	br_jtape *t = &u->tape;
	int taken = 0;

	b->ents = NULL;
	b->n = 0;
	b->state = -1;
	if (!u->d || u->held != HELD_NONE)
		return 0;
	br_jtape_clear(t);
	while (taken < max) {
		br_es_message m;
		const br_es_header *et;
		const br_jr_set *set;
		br_status st;
		size_t n0;
		int k = 0, node, r = 0;

		st = br_es_decoder_next(u->d, &m);
		if (st == BR_AGAIN) {
			b->state = 0;
			break;
		}
		if (st != BR_OK) {
			u->held = HELD_ERROR;
			u->hst = st;
			break;
		}
		et = event_type(&m);
		n0 = t->n;
		if (et && m.payload_len > 0 &&
		    (k = br_json_reader_root(reader, (const char *)et->str, et->len)) > 0) {
			set = br_json_reader_set(reader, k, &node);
			if (br_jtape_mark(t, BR_JT_EVT, (uint32_t)k))
				r = br_jtape_append(t, set, node, (const char *)m.payload, m.payload_len);
		}
		if (r != 1) {
			t->n = n0;
			u->held = HELD_MESSAGE;
			u->hm = m;
			break;
		}
		taken++;
		if (m.buffered) {
			/* its bytes may move at the next call: the batch ends with it */
			b->state = 1;
			break;
		}
		b->state = 1;
	}
	br_jtape_finish(t);
	b->ents = t->ents;
	b->n = (uint32_t)t->n;
	return taken;
}

/* dec:take(readers, sentinel, qe, qv [, max]) -> n, state
 * The batch of take_batch, built through the Lua C API (PUC Lua's way to the same events):
 * qe[1..n] the event types, qv[1..n] the values; state as take_batch's. */
static int l_decoder_take(lua_State *L)
{
	l_decoder *u;
	br_es_batch b;
	int n, max;

	check_decoder(L);
	u = (l_decoder *)lua_touserdata(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TSTRING);
	luaL_checktype(L, 4, LUA_TTABLE);
	luaL_checktype(L, 5, LUA_TTABLE);
	max = (int)luaL_optinteger(L, 6, 128);
	lua_settop(L, 5);
	n = take_batch(u, br_lua_json_reader(L, 2), max, &b);
	lua_settop(L, 5);
	if (n > 0 && br_lua_json_batch(L, &u->tape, 2, 3, 4, 5) != n)
		return luaL_error(L, "not enough memory");
	lua_pushinteger(L, n);
	lua_pushinteger(L, b.state);
	return 2;
}

/* What jit_events.lua reaches through core._jit (a light userdata): the entry point and
 * the sizes it checks its declarations against. */
static const struct {
	int (*take)(void *, const void *, int, br_es_batch *);
	uint32_t ent_size, batch_size;
} jit_api = { take_batch, sizeof(br_jt_ent), sizeof(br_es_batch) };

static int l_decoder_next_frame(lua_State *L)
{
	br_es_message m;
	size_t i;
	int nret = take_message(L, &m);

	if (nret)
		return nret;
	lua_createtable(L, 0, 6);
	lua_createtable(L, (int)m.nheaders, 0);
	for (i = 0; i < m.nheaders; i++) {
		const br_es_header *h = &m.headers[i];
		lua_createtable(L, 3, 0);
		lua_pushlstring(L, h->name, h->name_len);
		lua_rawseti(L, -2, 1);
		lua_pushinteger(L, h->type);
		lua_rawseti(L, -2, 2);
		push_value(L, h);
		lua_rawseti(L, -2, 3);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "headers");
	lua_pushlstring(L, (const char *)m.payload, m.payload_len);
	lua_setfield(L, -2, "payload");
	lua_pushinteger(L, (lua_Integer)m.total_len);
	lua_setfield(L, -2, "total_length");
	lua_pushinteger(L, (lua_Integer)m.headers_len);
	lua_setfield(L, -2, "headers_length");
	lua_pushinteger(L, (lua_Integer)m.prelude_crc);
	lua_setfield(L, -2, "prelude_crc");
	lua_pushinteger(L, (lua_Integer)m.message_crc);
	lua_setfield(L, -2, "message_crc");
	return 1;
}

static int l_decoder_memory(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)br_es_decoder_memory(check_decoder(L)));
	return 1;
}

static int l_decoder_pending(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)br_es_decoder_pending(check_decoder(L)));
	return 1;
}

static int l_decoder_finish(lua_State *L)
{
	br_es_decoder *d = check_decoder(L);
	br_status st = br_es_decoder_finish(d);

	if (st != BR_OK)
		return push_error(L, d, st);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_decoder_error(lua_State *L)
{
	const char *detail;
	br_status s = br_es_decoder_error(check_decoder(L), &detail);

	if (s == BR_OK) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushstring(L, detail[0] ? detail : br_status_message(s));
	lua_pushstring(L, br_status_name(s));
	return 2;
}

static int l_decoder_reset(lua_State *L)
{
	br_es_decoder_reset(check_decoder(L));
	((l_decoder *)lua_touserdata(L, 1))->held = HELD_NONE;
	lua_pushnil(L);
	lua_setiuservalue(L, 1, 1);
	lua_settop(L, 1);
	return 1;
}

static int l_decoder_tostring(lua_State *L)
{
	l_decoder *u = (l_decoder *)luaL_checkudata(L, 1, DECODER_MT);
	if (u->d)
		lua_pushfstring(L, DECODER_MT " (%d bytes pending): %p",
				(int)br_es_decoder_pending(u->d), (void *)u);
	else
		lua_pushfstring(L, DECODER_MT " (closed): %p", (void *)u);
	return 1;
}

/* ---- encode ---- */

static const struct { const char *name; int type; } type_names[] = {
	{"true", BR_ES_TRUE}, {"bool_true", BR_ES_TRUE},
	{"false", BR_ES_FALSE}, {"bool_false", BR_ES_FALSE},
	{"byte", BR_ES_BYTE}, {"int8", BR_ES_BYTE},
	{"short", BR_ES_INT16}, {"int16", BR_ES_INT16},
	{"integer", BR_ES_INT32}, {"int", BR_ES_INT32}, {"int32", BR_ES_INT32},
	{"long", BR_ES_INT64}, {"int64", BR_ES_INT64},
	{"bytes", BR_ES_BYTES}, {"byte_array", BR_ES_BYTES}, {"binary", BR_ES_BYTES},
	{"string", BR_ES_STRING},
	{"timestamp", BR_ES_TIMESTAMP},
	{"uuid", BR_ES_UUID},
	{NULL, 0}
};

/* Header scratch for one encode call: on the C stack for up to SMALL_HEADERS headers,
 * else in a userdata (so a raised error cannot leak it). A UUID given in text form is
 * converted into uuid[k]. */
#define SMALL_HEADERS 16
#define SMALL_FRAME 4096

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Reads an integer header value at idx: a Lua integer (5.3+), a number with an integral
 * value, or a decimal string (for 64-bit values LuaJIT numbers cannot hold). */
static int get_int64(lua_State *L, int idx, int64_t *out)
{
#ifdef HAVE_INT64
	if (lua_isinteger(L, idx)) {
		*out = (int64_t)lua_tointeger(L, idx);
		return 1;
	}
#endif
	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Number x = lua_tonumber(L, idx);
		if (x != x || x < -9223372036854775808.0 || x >= 9223372036854775808.0 ||
		    (lua_Number)(int64_t)x != x)
			return 0;
		*out = (int64_t)x;
		return 1;
	}
	if (lua_type(L, idx) == LUA_TSTRING) {
		const char *s = lua_tostring(L, idx);
		char *end;
		long long v;
		if (!*s)
			return 0;
		errno = 0;
		v = strtoll(s, &end, 10);
		if (*end || errno)
			return 0;
		*out = (int64_t)v;
		return 1;
	}
	return 0;
}

/* Fills e from the triple {name, type, value} at table index t (absolute). On bad input
 * pushes nil, msg, CODE and returns 3; else 0. */
static int read_triple(lua_State *L, int t, size_t k, br_es_header *e, uint8_t *uuid)
{
	size_t nl, vl;
	const char *name;
	int type = -1, vi;

	if (!lua_istable(L, t))
		return br_lua_failf(L, BR_INVAL, "header %d: expected a {name, type, value} table",
				    (int)k);
	lua_rawgeti(L, t, 1);
	lua_rawgeti(L, t, 2);
	lua_rawgeti(L, t, 3);
	vi = lua_gettop(L);
	if (lua_type(L, vi - 2) != LUA_TSTRING)
		return br_lua_failf(L, BR_HEADER_NAME, "header %d: name must be a string", (int)k);
	name = lua_tolstring(L, vi - 2, &nl);
	if (nl == 0 || nl > 255)
		return br_lua_failf(L, nl ? BR_HEADER_TOO_LONG : BR_HEADER_NAME,
				    "header %d: name length %d is not 1..255", (int)k, (int)nl);
	if (lua_type(L, vi - 1) == LUA_TNUMBER) {
		lua_Number x = lua_tonumber(L, vi - 1);
		if (x >= 0 && x <= 9 && (lua_Number)(int)x == x)
			type = (int)x;
	} else if (lua_type(L, vi - 1) == LUA_TSTRING) {
		const char *tn = lua_tostring(L, vi - 1);
		int j;
		if (strcmp(tn, "bool") == 0 || strcmp(tn, "boolean") == 0) {
			if (lua_type(L, vi) != LUA_TBOOLEAN)
				return br_lua_failf(L, BR_INVAL, "header %d ('%s'): bool value must be "
						    "a boolean", (int)k, name);
			type = lua_toboolean(L, vi) ? BR_ES_TRUE : BR_ES_FALSE;
		}
		for (j = 0; type < 0 && type_names[j].name; j++)
			if (strcmp(tn, type_names[j].name) == 0)
				type = type_names[j].type;
	}
	if (type < 0)
		return br_lua_failf(L, BR_HEADER_TYPE, "header %d ('%s'): unknown type (%s %s)",
				    (int)k, name, luaL_typename(L, vi - 1),
				    lua_type(L, vi - 1) == LUA_TSTRING ? lua_tostring(L, vi - 1) : "");
	e->name = name;
	e->name_len = (uint8_t)nl;
	e->type = (uint8_t)type;
	e->str = NULL;
	e->len = 0;
	e->i = 0;
	switch (type) {
	case BR_ES_TRUE:
	case BR_ES_FALSE:
		break;
	case BR_ES_BYTES:
	case BR_ES_STRING:
		if (lua_type(L, vi) != LUA_TSTRING)
			return br_lua_failf(L, BR_INVAL, "header %d ('%s'): value must be a string",
					    (int)k, name);
		e->str = (const uint8_t *)lua_tolstring(L, vi, &vl);
		if (vl > 32767)
			return br_lua_failf(L, BR_HEADER_TOO_LONG, "header %d ('%s'): value of %d "
					    "bytes is above 32767", (int)k, name, (int)vl);
		e->len = (uint16_t)vl;
		break;
	case BR_ES_UUID: {
		const char *s = lua_type(L, vi) == LUA_TSTRING ? lua_tolstring(L, vi, &vl) : NULL;
		if (s && vl == 16) {
			memcpy(uuid, s, 16);
		} else if (s && vl == 36) {
			/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */
			size_t a, b = 0;
			for (a = 0; a < 36 && s; a++) {
				int hi, lo;
				if (a == 8 || a == 13 || a == 18 || a == 23) {
					if (s[a] != '-')
						s = NULL;
					continue;
				}
				hi = hexval((unsigned char)s[a]);
				lo = hexval((unsigned char)s[a + 1]);
				if (hi < 0 || lo < 0) {
					s = NULL;
					break;
				}
				uuid[b++] = (uint8_t)(hi << 4 | lo);
				a++;
			}
		} else {
			s = NULL;
		}
		if (!s)
			return br_lua_failf(L, BR_INVAL, "header %d ('%s'): uuid must be 16 bytes or "
					    "the 36-character text form", (int)k, name);
		e->str = uuid;
		e->len = 16;
		break;
	}
	default:
		if (!get_int64(L, vi, &e->i))
			return br_lua_failf(L, BR_INVAL, "header %d ('%s'): value must be an integer",
					    (int)k, name);
		if ((type == BR_ES_BYTE && (e->i < -128 || e->i > 127)) ||
		    (type == BR_ES_INT16 && (e->i < -32768 || e->i > 32767)) ||
		    (type == BR_ES_INT32 && (e->i < INT32_MIN || e->i > INT32_MAX)))
			return br_lua_failf(L, BR_RANGE, "header %d ('%s'): value out of range for "
					    "type %d", (int)k, name, type);
		break;
	}
	lua_pop(L, 3);   /* the name and value stay referenced by the triple */
	return 0;
}

static int cmp_header(const void *a, const void *b)
{
	const br_es_header *x = (const br_es_header *)a, *y = (const br_es_header *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (int)x->name_len - (int)y->name_len;
}

/* Counts the entries of the map at index 1 (for sizing the scratch). */
static size_t map_count(lua_State *L)
{
	size_t n = 0;

	lua_pushnil(L);
	while (lua_next(L, 1)) {
		n++;
		lua_pop(L, 1);
	}
	return n;
}

static int l_encode(lua_State *L)
{
	br_es_header small_h[SMALL_HEADERS], *hs = small_h;
	uint8_t small_u[SMALL_HEADERS][16], (*uuid)[16] = small_u;
	size_t nh = 0, n = 0, plen = 0, total, k;
	const char *payload;
	int is_array = 0, r;
	br_status st;

	if (!lua_isnoneornil(L, 1))
		luaL_checktype(L, 1, LUA_TTABLE);
	payload = luaL_optlstring(L, 2, "", &plen);
	lua_settop(L, 2);
	if (lua_istable(L, 1)) {
		lua_rawgeti(L, 1, 1);
		is_array = !lua_isnil(L, -1);
		lua_pop(L, 1);
		n = is_array ? (size_t)lua_rawlen(L, 1) : map_count(L);
		if (n > BR_ES_MAX_NHEADERS)
			return br_lua_failf(L, BR_TOO_MANY_HEADERS, "%d headers, at most %d", (int)n,
					    (int)BR_ES_MAX_NHEADERS);
	}
	if (n > SMALL_HEADERS) {
		hs = (br_es_header *)lua_newuserdatauv(L, n * (sizeof *hs + 16), 0);
		uuid = (uint8_t (*)[16])(void *)(hs + n);
	}
	lua_settop(L, 3);   /* index 3: the scratch userdata, or nil */
	if (is_array) {
		/* Array of {name, type, value}: exact order and types. */
		for (k = 0; k < n; k++) {
			lua_rawgeti(L, 1, (lua_Integer)k + 1);
			if ((r = read_triple(L, lua_gettop(L), k + 1, &hs[k], uuid[k])))
				return r;
			lua_pop(L, 1);
		}
		nh = n;
	} else if (n) {
		/* Map name -> string: all type 7, sorted by name (bytewise). The keys and values
		 * stay referenced by the table during this call. */
		lua_pushnil(L);
		while (lua_next(L, 1) && nh < n) {
			size_t nl, vl;
			const char *name, *v;
			br_es_header *e = &hs[nh];
			if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
				return br_lua_failf(L, BR_INVAL, "header map entries must be string = string");
			name = lua_tolstring(L, -2, &nl);
			v = lua_tolstring(L, -1, &vl);
			if (nl == 0 || nl > 255 || vl > 32767)
				return br_lua_failf(L, nl == 0 ? BR_HEADER_NAME : BR_HEADER_TOO_LONG,
						    "header '%s': name must be 1..255 bytes and value at "
						    "most 32767", name);
			e->name = name;
			e->name_len = (uint8_t)nl;
			e->type = BR_ES_STRING;
			e->str = (const uint8_t *)v;
			e->len = (uint16_t)vl;
			e->i = 0;
			nh++;
			lua_pop(L, 1);
		}
		lua_settop(L, 3);
		qsort(hs, nh, sizeof hs[0], cmp_header);
	}
	{
		st = br_es_encoded_size(hs, nh, plen, &total);
		if (st != BR_OK)
			return br_lua_fail(L, st);
		if (total <= SMALL_FRAME) {
			uint8_t out[SMALL_FRAME];
			br_es_encode_to(out, total, hs, nh, (const uint8_t *)payload, plen);
			lua_pushlstring(L, (const char *)out, total);
		} else {
#if LUA_VERSION_NUM >= 502
			luaL_Buffer b;
			uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &b, total);
			br_es_encode_to(out, total, hs, nh, (const uint8_t *)payload, plen);
			luaL_pushresultsize(&b, total);
#else
			uint8_t *out = (uint8_t *)lua_newuserdatauv(L, total, 0);
			br_es_encode_to(out, total, hs, nh, (const uint8_t *)payload, plen);
			lua_pushlstring(L, (const char *)out, total);
#endif
		}
	}
	return 1;
}

static int l_crc32(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	lua_Number c = luaL_optnumber(L, 2, 0);

	luaL_argcheck(L, c >= 0 && c <= 4294967295.0, 2, "crc must be 0..2^32-1");
	lua_pushinteger(L, (lua_Integer)br_crc32((uint32_t)c, s, n));
	return 1;
}

/* Test-only: the portable path and the name of the one br_crc32 uses. */
static int l_crc32_portable(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	lua_Number c = luaL_optnumber(L, 2, 0);

	luaL_argcheck(L, c >= 0 && c <= 4294967295.0, 2, "crc must be 0..2^32-1");
	lua_pushinteger(L, (lua_Integer)br_crc32_portable((uint32_t)c, s, n));
	lua_pushstring(L, br_crc32_impl());
	return 2;
}

void br_lua_open_eventstream(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"feed", l_decoder_feed},
		{"next", l_decoder_next},
		{"next_frame", l_decoder_next_frame},
		{"take", l_decoder_take},
		{"memory", l_decoder_memory},
		{"pending", l_decoder_pending},
		{"finish", l_decoder_finish},
		{"error", l_decoder_error},
		{"reset", l_decoder_reset},
		{"close", l_decoder_close},
		{NULL, NULL}
	};
	static const luaL_Reg meta[] = {
		{"__gc", l_decoder_close},
		{"__close", l_decoder_close},
		{"__tostring", l_decoder_tostring},
		{NULL, NULL}
	};
	static const luaL_Reg funcs[] = {
		{"decoder", l_decoder_new},
		{"encode", l_encode},
		{"crc32", l_crc32},
		{"_crc32_portable", l_crc32_portable},
		{NULL, NULL}
	};

	lua_pushlightuserdata(L, (void *)&jit_api);
	lua_setfield(L, -2, "_jit");
	br_lua_newclass(L, DECODER_MT, methods, meta);
	luaL_setfuncs(L, funcs, 0);
	lua_pushinteger(L, (lua_Integer)BR_ES_MAX_MESSAGE);
	lua_setfield(L, -2, "EVENTSTREAM_MAX_MESSAGE");
}
