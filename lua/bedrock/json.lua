-- JSON and base64 helpers around lua-cjson.
--
--- @module bedrock.json
-- `bedrock.json` (`require "bedrock.json"`): JSON and base64 with the rules the client uses
-- for document members.

-- Decoding is cjson's (C, fast) plus two fixes done here:
--   * an empty JSON array `[]` is told apart from `{}` (cjson 2.1.0 decodes both to an
--     empty table and has no array_mt): the text is pre-scanned, only when it contains
--     `[` + optional blanks + `]` outside strings, and such arrays are replaced by a
--     one-element sentinel array that `mark` turns back into an empty marked array;
--   * decoded arrays carry `array_mt` (see `mark`) so a document can be sent back
--     unchanged, and integral numbers become integers on Lua 5.4 (cjson decodes every
--     number as a float; `1.0` in the JSON text therefore also comes back as 1).
-- Encoding is ours: Debian's lua-cjson formats numbers with 14 significant digits, which
-- does not round-trip doubles; we write the shortest of %.14g..%.17g that reads back
-- equal, and integers with %d.
local cjson = require "cjson"

local _M = { _VERSION = "0.1.0" }

local type, pairs, next, tostring, tonumber = type, pairs, next, tostring, tonumber
local setmetatable, getmetatable, pcall, error = setmetatable, getmetatable, pcall, error
local byte, find, format, match, sub =
	string.byte, string.find, string.format, string.match, string.sub
local concat, floor, huge = table.concat, math.floor, math.huge
local math_type, tointeger = math.type, math.tointeger

local cj = cjson.new and cjson.new() or cjson
if cj.decode_invalid_numbers then cj.decode_invalid_numbers(false) end

-- Marks: a table whose metatable is array_mt is a JSON array, also when empty.
local array_mt = { __name = "bedrock.array" }
_M.array_mt = array_mt
--- json.null
-- JSON `null` (`bedrock.null`).
_M.null = cjson.null

--- json.array([t]) -> t
-- `bedrock.array`: marks `t` as a JSON array.
function _M.array(t)
	t = t or {}
	if type(t) ~= "table" then error("bedrock.array expects a table", 2) end
	return setmetatable(t, array_mt)
end

--- json.empty_array
-- `bedrock.empty_array`.
_M.empty_array = setmetatable({}, { __name = "bedrock.array", __newindex = function()
	error("bedrock.empty_array is read-only; use bedrock.array{}", 2)
end })
local empty_array_mt = getmetatable(_M.empty_array)

local function is_marked(t)
	local mt = getmetatable(t)
	return mt == array_mt or mt == empty_array_mt
end
_M.is_marked = is_marked

-- Is `t` to be written as a JSON array? Marked tables are; an unmarked table is an array
-- when it is a non-empty sequence 1..n with no other keys (cjson's rule).
local function is_array(t)
	if is_marked(t) then return true end
	local n = #t
	if n == 0 then return false end
	local count = 0
	for k in pairs(t) do
		if type(k) ~= "number" then return false end
		count = count + 1
	end
	return count == n
end
_M.is_array = is_array

---------------------------------------------------------------------------- numbers

local fmts = { "%.14g", "%.15g", "%.16g", "%.17g" }

-- Number → JSON text, or nil for NaN/inf (JSON cannot carry them).
local function number(v)
	if math_type and math_type(v) == "integer" then return format("%d", v) end
	if v ~= v or v == huge or v == -huge then return nil end
	if v == floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
	for i = 1, 4 do
		local s = format(fmts[i], v)
		if tonumber(s) == v then return s end
	end
	return format("%.17g", v)
end
_M.number = number

---------------------------------------------------------------------------- strings

-- The JSON string body (without quotes) for s: `"`, `\`, \b \f \n \r \t, other bytes
-- below 0x20 and 0x7f as \u00xx; every other byte (UTF-8 included) raw. The byte work is
-- the C core's (core.json_escape: s itself when nothing needs escaping).
local core = require "bedrock.core"
local escape, cquote = core.json_escape, core.json_quote
_M.escape = escape

-- '"' .. escape(s) .. '"', kept for short strings (member values repeat call after
-- call: roles, enum values, model ids, short texts); a bounded cache.
local qcache, qcached = {}, 0
local function quote(s)
	local q = qcache[s]
	if q then return q end
	q = cquote(s)
	if #s <= 40 then
		if qcached >= 2048 then qcache, qcached = {}, 0 end
		qcache[s] = q
		qcached = qcached + 1
	end
	return q
end
_M.quote = quote

---------------------------------------------------------------------------- encode

-- Appends the JSON text of a free-form value (a document) to buf[n+1..]; returns the new
-- n, or nil + message (with the path below `path`) when the value cannot be written.
local encode_into
encode_into = function(v, buf, n, path, depth)
	local tv = type(v)
	if tv == "string" then
		buf[n + 1] = quote(v)
		return n + 1
	elseif tv == "number" then
		local s = number(v)
		if not s then return nil, "number " .. tostring(v) .. " cannot be written as JSON", path end
		buf[n + 1] = s
		return n + 1
	elseif tv == "boolean" then
		buf[n + 1] = v and "true" or "false"
		return n + 1
	elseif v == cjson.null then
		buf[n + 1] = "null"
		return n + 1
	elseif tv == "table" then
		if depth > 200 then return nil, "nested too deeply (cycle?)", path end
		if is_array(v) then
			local len = #v
			if len == 0 then buf[n + 1] = "[]" return n + 1 end
			buf[n + 1] = "["
			n = n + 1
			for i = 1, len do
				if i > 1 then n = n + 1; buf[n] = "," end
				local err, p
				n, err, p = encode_into(v[i], buf, n, path, depth + 1)
				if not n then return nil, err, p or (path .. "[" .. i .. "]") end
			end
			buf[n + 1] = "]"
			return n + 1
		end
		if next(v) == nil then buf[n + 1] = "{}" return n + 1 end
		buf[n + 1] = "{"
		n = n + 1
		local first = true
		for k, x in pairs(v) do
			local tk = type(k)
			if tk == "number" then k = number(k) or tostring(k)
			elseif tk ~= "string" then
				return nil, "object key of type " .. tk .. " cannot be written as JSON", path
			end
			if not first then n = n + 1; buf[n] = "," end
			first = false
			buf[n + 1] = '"'; buf[n + 2] = escape(k); buf[n + 3] = '":'
			local err, p
			n, err, p = encode_into(x, buf, n + 3, path, depth + 1)
			if not n then return nil, err, p or (path .. "." .. k) end
		end
		buf[n + 1] = "}"
		return n + 1
	end
	return nil, "a " .. tv .. " cannot be written as JSON", path
end
_M.encode_into = encode_into

--- json.encode(v) -> text | nil, message
-- JSON text with the document rules: a table marked by `bedrock.array` (or a non-empty
-- sequence `1..n`) is an array, any other table an object (an unmarked empty table is
-- `{}`); integers with `%d`, floats with the shortest of `%.14g`…`%.17g` that reads back equal.
function _M.encode(v)
	local buf = {}
	local n, err, path = encode_into(v, buf, 0, "", 0)
	if not n then
		if path and path ~= "" then err = path:gsub("^%.", "") .. ": " .. err end
		return nil, err
	end
	return concat(buf, "", 1, n)
end

---------------------------------------------------------------------------- decode

local SENTINEL = "\1bedrock.empty-array\1"
local SENTINEL_JSON = '"\\u0001bedrock.empty-array\\u0001"'
_M.SENTINEL = SENTINEL

-- Replaces every `[ ]` outside strings with `[<sentinel>]`.
local function mark_empty_arrays(s)
	local out, n, pos, i = {}, 0, 1, 1
	while true do
		local a = find(s, '["%[]', i)
		if not a then break end
		if byte(s, a) == 34 then
			local j = a + 1
			while true do
				local q = find(s, '["\\]', j)
				if not q then return s end -- unterminated: cjson will report it
				if byte(s, q) == 92 then j = q + 2 else i = q + 1 break end
			end
		else
			local e = match(s, "^[ \t\r\n]*()%]", a + 1)
			if e then
				out[n + 1] = sub(s, pos, a); out[n + 2] = SENTINEL_JSON
				n = n + 2
				pos = e
				i = e + 1
			else
				i = a + 1
			end
		end
	end
	if n == 0 then return s end
	out[n + 1] = sub(s, pos)
	return concat(out)
end

-- Is there a `[` followed by optional blanks and `]` (maybe inside a string: the exact
-- scan is mark_empty_arrays)? Plain finds: a pattern scan costs more than the decode.
local function has_empty_array(s)
	local i = find(s, "[", 1, true)
	while i do
		local c = byte(s, i + 1)
		while c == 32 or c == 9 or c == 10 or c == 13 do
			i = i + 1
			c = byte(s, i + 1)
		end
		if c == 93 then return true end
		i = find(s, "[", i + 1, true)
	end
	return false
end

-- Raw decode: cjson's result with empty arrays as sentinel arrays (shapes.lua and `mark`
-- know them). Returns value | nil, message. The C core's core.json_decode builds the same
-- value for the strict JSON it accepts (most texts) and gives up on anything else, which
-- then takes cjson's path here: one JSON behaviour, cjson's.
local decode_fn = cj.decode
local fast_decode = core.json_decode
local function decode_cjson(s)
	if has_empty_array(s) then s = mark_empty_arrays(s) end
	local ok, v = pcall(decode_fn, s)
	if not ok then return nil, tostring(v) end
	return v
end
_M.decode_cjson = decode_cjson -- the general path alone (specs compare the two)

local function decode_raw(s)
	local v, ok = fast_decode(s, SENTINEL)
	if ok then return v end
	return decode_cjson(s)
end
_M.decode_raw = decode_raw

-- Turns a raw-decoded free-form value into a document: arrays marked, sentinel arrays
-- emptied, integral numbers as integers (Lua 5.4), null kept as bedrock.null.
local mark
mark = function(v)
	local tv = type(v)
	if tv == "number" then
		if tointeger and v == floor(v) then return tointeger(v) or v end
		return v
	end
	if tv ~= "table" then return v end
	local first = v[1]
	if first ~= nil then
		if first == SENTINEL and v[2] == nil then v[1] = nil
		else
			for i = 1, #v do v[i] = mark(v[i]) end
		end
		return setmetatable(v, array_mt)
	end
	for k, x in pairs(v) do
		local tx = type(x)
		if tx == "table" or tx == "number" then v[k] = mark(x) end
	end
	return v
end
_M.mark = mark

--- json.decode(text) -> value | nil, message
-- A document: arrays carry the array mark (empty ones too, so they encode back as `[]`),
-- integral numbers are integers on Lua 5.4, `null` is `bedrock.null`.
function _M.decode(s)
	local v, err = decode_raw(s)
	if v == nil then return nil, err end
	return mark(v)
end

---------------------------------------------------------------------------- base64

-- Blobs travel as base64 (standard alphabet, padded); the C core does the byte work.
--- json.b64encode(bytes) -> text
-- Standard base64 with padding.
_M.b64encode = core.b64encode
--- json.b64decode(text) -> bytes | nil, message
-- Padding is optional, whitespace is refused.
_M.b64decode = core.b64decode

return _M
