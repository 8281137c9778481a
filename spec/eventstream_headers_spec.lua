-- Event-stream decoder, header block (csrc/br_eventstream.c): which error wins when a
-- block holds more than one, how far the header array grows before an error, and name
-- comparison at every name length. The decoder checks names for repeats once the block
-- is read; these pin that the outcome is that of a check at each header in order.
require "spec.helper"   -- finds the build of bedrock.core for this Lua
local core = require "bedrock.core"

local floor = math.floor
local char = string.char
local concat = table.concat

local function u32(n)
	return char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

-- A frame with correct CRCs around the given header bytes.
local function frame(hbytes, payload)
	payload = payload or ""
	local pre = u32(16 + #hbytes + #payload) .. u32(#hbytes)
	local body = pre .. u32(core.crc32(pre)) .. hbytes .. payload
	return body .. u32(core.crc32(body))
end

local function hdr(name, type_byte, value_bytes)
	return char(#name) .. name .. char(type_byte) .. (value_bytes or "")
end

-- Decodes one frame; returns the number of headers, or nil, message, code.
local function decode(bytes, dec)
	dec = dec or core.decoder()
	assert.is_true(dec:feed(bytes))
	local f, msg, code = dec:next_frame()
	if not f then return nil, msg, code end
	local n = 0
	for _ in pairs(f.headers) do n = n + 1 end
	return n
end

local function names(n, fmt)
	local t = {}
	for i = 1, n do t[i] = hdr(string.format(fmt or "h%03d", i), 0) end
	return t
end

describe("event-stream decoder: header errors in header order #core", function()
	it("reports a repeated name before an error in a later header", function()
		local rep = hdr("a", 0) .. hdr("b", 1) .. hdr("a", 1)
		local later = {
			hdr("c", 4, "\0\0"),          -- a truncated value
			hdr("c", 12),                 -- an unknown type
			hdr("", 0),                   -- an empty name
			hdr("\255", 0),               -- a name that is not UTF-8
			char(9) .. "c",               -- a name running past the block
			hdr("c", 7, "\0\9"),          -- a string running past the block
		}
		for i, tail in ipairs(later) do
			local n, msg, code = decode(frame(rep .. hdr("x", 0) .. tail))
			assert.is_nil(n, i)
			assert.are.equal("HEADER_DUPLICATE", code, i)
			assert.is_truthy(msg:find("header 3 %('a'%) at byte 18 .*duplicate of header 1"), msg)
		end
	end)

	it("reports an error before a repeat that comes after it", function()
		local n, msg, code = decode(frame(hdr("a", 0) .. hdr("b", 12) .. hdr("a", 0)))
		assert.is_nil(n)
		assert.are.equal("HEADER_TYPE", code)
		assert.is_truthy(msg:find("header 2 %('b'%)"), msg)
		n, msg, code = decode(frame(hdr("a", 0) .. hdr("b", 0) .. hdr("b", 0) .. hdr("a", 0)))
		assert.is_nil(n)
		assert.are.equal("HEADER_DUPLICATE", code)
		assert.is_truthy(msg:find("header 3 %('b'%) .*duplicate of header 2"), msg)
	end)

	it("reports the first repeat, against the first earlier name", function()
		local _, msg = decode(frame(hdr("a", 0) .. hdr("a", 1) .. hdr("a", 0) .. hdr("b", 0) .. hdr("b", 0)))
		assert.is_truthy(msg:find("header 2 %('a'%) .*duplicate of header 1$"), msg)
		_, msg = decode(frame(hdr("x", 0) .. hdr("y", 0) .. hdr("z", 0) .. hdr("y", 0) .. hdr("x", 0)))
		assert.is_truthy(msg:find("header 4 %('y'%) .*duplicate of header 2$"), msg)
	end)

	it("reports a repeat among 256 headers before a 257th", function()
		local t = names(256)
		t[200] = hdr("h003", 0)
		local n, msg, code = decode(frame(concat(t) .. hdr("h999", 0)))
		assert.is_nil(n)
		assert.are.equal("HEADER_DUPLICATE", code)
		assert.is_truthy(msg:find("header 200 %('h003'%) .*duplicate of header 3"), msg)
		t[200] = hdr("h200", 0)
		n, msg, code = decode(frame(concat(t) .. hdr("h999", 0)))
		assert.is_nil(n)
		assert.are.equal("TOO_MANY_HEADERS", code)
		assert.is_truthy(msg:find("header 257 %(''%) .*more than 256 headers"), msg)
		assert.are.equal(256, decode(frame(concat(t))))
	end)

	it("grows the header array no further than the first repeat", function()
		-- The array holds 8 headers at first; a repeat in the first 8 stops the message
		-- there, whatever follows.
		local one = core.decoder()
		assert.are.equal(1, decode(frame(hdr("a", 0)), one))
		local base = one:memory()
		local t = names(40)
		t[5] = hdr("h002", 0)
		local dec = core.decoder()
		local _, _, code = decode(frame(concat(t)), dec)
		assert.are.equal("HEADER_DUPLICATE", code)
		assert.are.equal(base, dec:memory())
		-- A repeat after the 8th header: the array grew to 16 for it, and no further.
		t = names(40)
		t[12] = hdr("h001", 0)
		local dec2 = core.decoder()
		_, _, code = decode(frame(concat(t)), dec2)
		assert.are.equal("HEADER_DUPLICATE", code)
		assert.are.equal(2 * base, dec2:memory())
		-- Without a repeat, 40 headers take an array of 64.
		local dec3 = core.decoder()
		assert.are.equal(40, decode(frame(concat(names(40))), dec3))
		assert.are.equal(8 * base, dec3:memory())
	end)

	it("tells names apart at every length, whichever byte differs", function()
		for len = 1, 40 do
			local a = ("n"):rep(len)
			for pos = 1, len do
				local b = a:sub(1, pos - 1) .. "m" .. a:sub(pos + 1)
				assert.are.equal(2, decode(frame(hdr(a, 0) .. hdr(b, 0))), len .. "/" .. pos)
			end
			local _, _, code = decode(frame(hdr(a, 0) .. hdr(a .. "x", 0) .. hdr(a, 1)))
			assert.are.equal("HEADER_DUPLICATE", code, len)
		end
	end)

	it("checks names of every length for UTF-8 with the high bit anywhere", function()
		for len = 1, 20 do
			for pos = 1, len do
				local name = ("n"):rep(pos - 1) .. "\128" .. ("n"):rep(len - pos)
				local _, _, code = decode(frame(hdr(name, 0)))
				assert.are.equal("HEADER_NAME", code, len .. "/" .. pos)
			end
			if len >= 3 then
				local name = ("n"):rep(len - 3) .. "\226\130\172"   -- U+20AC at the end
				assert.are.equal(1, decode(frame(hdr(name, 0))), len)
			end
		end
	end)
end)
