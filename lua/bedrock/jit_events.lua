-- LuaJIT's way to a stream's event batches: the values built in Lua through the FFI.
--
-- Under LuaJIT, a call through the Lua C API runs in the interpreter, and every table and
-- string a C function builds through it costs more than in PUC Lua: for ConverseStream's
-- small events that was most of the time. The C side (core._jit, the batch dec:take
-- builds through the C API elsewhere) takes the messages the decoder holds and reads
-- their payloads by the events' shapes onto a tape (csrc/br_jtape.h: the one JSON reader,
-- with the rules compiled from the model); this file builds the Lua values from the tape
-- in one loop the JIT compiles. A message the C side does not take (an exception, an
-- unknown or blob event, a payload the reader declines) and every decoder error are held
-- by the decoder for the next dec:next(), so they go the usual way.
--
--   jit_events.reader(readers) -> r | nil   (nil: not LuaJIT, no FFI, or a core without it)
--   jit_events.take(r, dec, qe, qv, max) -> n, state   (see below)
local ok_ffi, ffi = pcall(require, "ffi")
local okc, core = pcall(require, "bedrock.core")
local json = require "bedrock.json"

local _M = {}

if not (ok_ffi and okc and type(core) == "table" and core._jit and core.json_reader) then
	_M.reader = function() return nil end
	return _M
end

-- (pcall: a second copy of this module in the same state finds them declared)
pcall(ffi.cdef, [[
typedef struct { uint32_t op, n, len, off; const char *s; double num; } bedrock_jt_ent;
typedef struct { const bedrock_jt_ent *ents; uint32_t n; int32_t state; } bedrock_jit_batch;
typedef struct {
	int (*take)(void *, const void *, int, bedrock_jit_batch *);
	uint32_t ent_size, batch_size;
} bedrock_jit_api;
]])

local api = ffi.cast("const bedrock_jit_api *", core._jit)
if api.ent_size ~= ffi.sizeof("bedrock_jt_ent") or api.batch_size ~= ffi.sizeof("bedrock_jit_batch") then
	-- (a core built with other declarations: the C API path still works)
	_M.reader = function() return nil end
	return _M
end

local take = api.take
local batch = ffi.new("bedrock_jit_batch")
local voidp = ffi.typeof("void *")
local cast, str = ffi.cast, ffi.string
local setmetatable, getmetatable = setmetatable, getmetatable
local ok_tnew, tnew = pcall(require, "table.new")
if not ok_tnew then tnew = function() return {} end end

local SENTINEL, NULL = json.SENTINEL, json.null

-- br_jtape.h's entry kinds
local OBJ, ARR, LIST, END, KEY, KEYS, STR, NUM, INT, TRUE, FALSE, NIL, EVT =
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14

-- The events on the tape ents[0 .. n-1] (each an EVT entry, then an object) into qe[i]
-- (its type) and qv[i] (its value), i = 1 .. events; keys: key id -> member name; names:
-- root number -> event type. One loop for the whole batch, which the JIT compiles.
local stk_t, stk_k, stk_i = {}, {}, {}
local function build(ents, n, keys, amt, names, qe, qv)
	local cur, key, idx, depth, et, ne = nil, nil, 0, 0, nil, 0
	for i = 0, n - 1 do
		local e = ents[i]
		local op = e.op
		if op == KEY then
			key = keys[e.n]
		elseif op == STR then
			local v = str(e.s, e.len)
			if key ~= nil then cur[key] = v else idx = idx + 1; cur[idx] = v end
		elseif op == END then
			local v = cur
			if depth == 1 then
				ne = ne + 1
				qe[ne], qv[ne] = et, v
				depth, cur = 0, nil
			else
				cur, key, idx = stk_t[depth], stk_k[depth], stk_i[depth]
				stk_t[depth] = nil
				depth = depth - 1
				if key ~= nil then cur[key] = v else idx = idx + 1; cur[idx] = v end
			end
		elseif op == OBJ or op == ARR or op == LIST then
			depth = depth + 1
			stk_t[depth], stk_k[depth], stk_i[depth] = cur, key, idx
			local c = e.n
			if op == OBJ then
				cur = tnew(0, c)
			else
				cur = tnew(c, 0)
				if op == LIST then
					setmetatable(cur, amt)
				elseif c == 0 then
					cur[1] = SENTINEL -- json.lua's mark for an empty array
				end
			end
			key, idx = nil, 0
		elseif op == EVT then
			et = names[e.n]
		elseif op == KEYS then
			key = str(e.s, e.len)
		elseif op == NIL then
			cur[key] = nil
		else
			local v
			if op == NUM or op == INT then
				v = e.num
			elseif op == TRUE then
				v = true
			elseif op == FALSE then
				v = false
			else
				v = NULL
			end
			if key ~= nil then cur[key] = v else idx = idx + 1; cur[idx] = v end
		end
	end
	return ne
end

local readers_of = setmetatable({}, { __mode = "k" })
_M.taken = 0 -- events taken this way (for the specs)

function _M.reader(readers)
	local r = readers_of[readers]
	if r then return r end
	local rd, keys, roots, amt = core.json_reader(readers)
	local names = {}
	for name, k in pairs(roots) do names[k] = name end
	r = { rd = rd, ptr = cast(voidp, rd), keys = keys, names = names, amt = amt }
	readers_of[readers] = r
	return r
end

-- Takes the events the decoder has (up to max) into qe/qv: returns how many, and
-- the state after them: 0 the decoder needs bytes, 1 it may have more, -1 dec:next()
-- must be called for the next message or error.
local DECODER_MT = getmetatable(core.decoder())
function _M.take(r, dec, qe, qv, max)
	if getmetatable(dec) ~= DECODER_MT then return 0, -1 end -- (not a core decoder)
	local n = take(cast(voidp, dec), r.ptr, max, batch)
	if n > 0 then
		build(batch.ents, batch.n, r.keys, r.amt, r.names, qe, qv)
		_M.taken = _M.taken + n
	end
	return n, batch.state
end

return _M
