-- Readable text for any Lua value, for the REPL and for logs: results, stream events and
-- error objects as indented JSON-like text.
--
--   local inspect = require "bedrock.inspect"      (also bedrock.inspect)
--   print(inspect(value [, opts]))
--
-- Tables print as JSON objects and arrays, keys in a stable order (string keys sorted,
-- then numbers, then the rest); strings as JSON strings, with bytes that are not UTF-8
-- text escaped as \xNN (blobs stay one line); bedrock.null and cjson.null as null; a
-- table met again inside itself as <cycle>; functions, userdata and threads as
-- <function>, <userdata>, <thread>. Short arrays of scalars stay on one line.
-- opts: indent (string, default two spaces), depth (tables deeper than this print as
-- {…}, default 20), max_string (longer strings are cut and marked with their length,
-- default none). No dependency.
local _M = { _VERSION = "0.1.0" }

local type, ipairs, tostring, tonumber, getmetatable, setmetatable, rawget, next, error =
	type, ipairs, tostring, tonumber, getmetatable, setmetatable, rawget, next, error
local format, byte, find, sub, rep = string.format, string.byte, string.find, string.sub, string.rep
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
	["\b"] = "\\b", ["\f"] = "\\f" }

-- Length of the UTF-8 sequence at i (2-4), or nil when the bytes there are not one.
local function utf8_len(s, i, c)
	local n, min
	if c >= 0xC2 and c <= 0xDF then n, min = 2, 0x80
	elseif c >= 0xE0 and c <= 0xEF then n, min = 3, 0x800
	elseif c >= 0xF0 and c <= 0xF4 then n, min = 4, 0x10000
	else return nil end
	local cp = c - (n == 2 and 0xC0 or n == 3 and 0xE0 or 0xF0)
	for k = 1, n - 1 do
		local b = byte(s, i + k)
		if not b or b < 0x80 or b > 0xBF then return nil end
		cp = cp * 64 + (b - 0x80)
	end
	if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
	return n
end

local function quote(s, max)
	local cut
	if max and #s > max then
		cut = #s
		s = sub(s, 1, max)
	end
	if not find(s, '[%z\1-\31"\\\127-\255]') then
		s = '"' .. s .. '"'
	else
		local out, n, i, len = { '"' }, 1, 1, #s
		while i <= len do
			local c = byte(s, i)
			local step = 1
			local piece
			if c >= 0x80 then
				local l = utf8_len(s, i, c)
				if l then
					piece, step = sub(s, i, i + l - 1), l
				else
					piece = format("\\x%02X", c)
				end
			elseif c < 32 or c == 127 then
				piece = ESC[sub(s, i, i)] or format("\\x%02X", c)
			else
				local ch = sub(s, i, i)
				piece = ESC[ch] or ch
			end
			n = n + 1
			out[n] = piece
			i = i + step
		end
		out[n + 1] = '"'
		s = concat(out)
	end
	if cut then s = s .. format(" <%d bytes, cut>", cut) end
	return s
end

local function is_null(v)
	if v == nil then return false end
	local cj = rawget(package.loaded, "cjson")
	return type(cj) == "table" and v == cj.null
end

local function number_text(v)
	if v ~= v then return "nan" end
	if v == huge then return "inf" end
	if v == -huge then return "-inf" end
	-- integral values without a decimal point, as JSON writes them
	if v == floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
	local s = format("%.14g", v)
	if tonumber(s) ~= v then s = format("%.17g", v) end
	return s
end

local function scalar(v, max)
	local t = type(v)
	if t == "string" then return quote(v, max) end
	if t == "number" then return number_text(v) end
	if t == "boolean" then return v and "true" or "false" end
	if t == "nil" then return "null" end
	if is_null(v) then return "null" end
	return nil
end

-- Order: string keys sorted, then numbers ascending, then any other key by its text.
local function key_less(a, b)
	local ta, tb = type(a), type(b)
	if ta ~= tb then
		if ta == "string" then return true end
		if tb == "string" then return false end
		if ta == "number" then return true end
		if tb == "number" then return false end
		return ta < tb
	end
	if ta == "string" or ta == "number" then return a < b end
	return tostring(a) < tostring(b)
end

local function is_marked_array(t)
	local mt = getmetatable(t)
	return type(mt) == "table" and rawget(mt, "__name") == "bedrock.array"
end

-- An array: keys exactly 1..n (n >= 1), or a table marked as a JSON array.
local function array_len(t)
	local n = 0
	for _ in next, t do n = n + 1 end
	if n == 0 then return is_marked_array(t) and 0 or nil end
	for i = 1, n do
		if rawget(t, i) == nil then return nil end
	end
	return n
end

local function write(v, out, indent, level, seen, opts)
	local s = scalar(v, opts.max_string)
	if s then
		out[#out + 1] = s
		return
	end
	local t = type(v)
	if t ~= "table" then
		out[#out + 1] = "<" .. t .. ">"
		return
	end
	if seen[v] then
		out[#out + 1] = "<cycle>"
		return
	end
	if level >= opts.depth then
		out[#out + 1] = next(v) == nil and "{}" or "{…}"
		return
	end
	local n = array_len(v)
	if n == 0 then
		out[#out + 1] = "[]"
		return
	end
	if n == nil and next(v) == nil then
		out[#out + 1] = "{}"
		return
	end
	seen[v] = true
	local pad = rep(indent, level + 1)
	local close = rep(indent, level)
	if n then
		-- a short array of scalars on one line
		local parts, width, flat = {}, 0, true
		for i = 1, n do
			local p = scalar(rawget(v, i), opts.max_string)
			if not p then flat = false break end
			parts[i] = p
			width = width + #p + 2
			if width > 72 then flat = false break end
		end
		if flat then
			out[#out + 1] = "[" .. concat(parts, ", ") .. "]"
		else
			out[#out + 1] = "[\n"
			for i = 1, n do
				out[#out + 1] = pad
				write(rawget(v, i), out, indent, level + 1, seen, opts)
				out[#out + 1] = i < n and ",\n" or "\n"
			end
			out[#out + 1] = close .. "]"
		end
	else
		local keys = {}
		for k in next, v do keys[#keys + 1] = k end
		sort(keys, key_less)
		out[#out + 1] = "{\n"
		for i, k in ipairs(keys) do
			out[#out + 1] = pad
			if type(k) == "string" then
				out[#out + 1] = quote(k)
			else
				out[#out + 1] = "[" .. (scalar(k) or ("<" .. type(k) .. ">")) .. "]"
			end
			out[#out + 1] = ": "
			write(rawget(v, k), out, indent, level + 1, seen, opts)
			out[#out + 1] = i < #keys and ",\n" or "\n"
		end
		out[#out + 1] = close .. "}"
	end
	seen[v] = nil
end

-- inspect(value [, opts]) -> text
function _M.inspect(value, opts)
	opts = opts or {}
	if type(opts) ~= "table" then error("inspect options must be a table", 2) end
	local o = { depth = opts.depth or 20, max_string = opts.max_string }
	local indent = opts.indent or "  "
	if type(indent) ~= "string" then error("inspect: indent must be a string", 2) end
	if type(o.depth) ~= "number" or o.depth < 0 then error("inspect: depth must be a number >= 0", 2) end
	if o.max_string ~= nil and (type(o.max_string) ~= "number" or o.max_string < 0) then
		error("inspect: max_string must be a number >= 0", 2)
	end
	local out = {}
	write(value, out, indent, 0, {}, o)
	return concat(out)
end

return setmetatable(_M, { __call = function(_, value, opts) return _M.inspect(value, opts) end })
