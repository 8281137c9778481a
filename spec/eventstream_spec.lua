-- Event-stream codec (csrc/br_eventstream.c, br_crc32.c, lua_eventstream.c): the
-- conformance vectors, split at every position, the reference's worked examples, limits,
-- error reporting, memory bounds, and random round trips through encoder and decoder.
local helper = require "spec.helper"
local core = require "bedrock.core"
local cjson = require "cjson"

local IS_JIT = type(rawget(_G, "jit")) == "table"
local floor = math.floor
local char, byte = string.char, string.byte
local concat = table.concat

local V = helper.vectors

---------------------------------------------------------------------------- helpers

local function unhex(h)
	return (h:gsub("%s", ""):gsub("%x%x", function(x) return char(tonumber(x, 16)) end))
end

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", byte(c)) end))
end

local unb64 = core.b64decode

local function u32(n)
	return char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

local function rd32(s, i)
	local a, b, c, d = byte(s, i, i + 3)
	return ((a * 256 + b) * 256 + c) * 256 + d
end

-- A frame with correct CRCs around whatever prelude lengths and header bytes are given.
local function frame(hbytes, payload, total, hlen)
	payload = payload or ""
	total = total or (16 + #hbytes + #payload)
	hlen = hlen or #hbytes
	local pre = u32(total) .. u32(hlen)
	local body = pre .. u32(core.crc32(pre)) .. hbytes .. payload
	return body .. u32(core.crc32(body))
end

-- Rewrites the prelude and message CRCs of the frame at the start of s to valid ones.
local function fix_crcs(s)
	local total = rd32(s, 1)
	local pre = s:sub(1, 8)
	s = pre .. u32(core.crc32(pre)) .. s:sub(13)
	if total >= 16 and total <= #s then
		s = s:sub(1, total - 4) .. u32(core.crc32(s:sub(1, total - 4))) .. s:sub(total + 1)
	end
	return s
end

local function hdr(name, type_byte, value_bytes)
	return char(#name) .. name .. char(type_byte) .. (value_bytes or "")
end

local function str_hdr(name, v)
	return hdr(name, 7, char(floor(#v / 256), #v % 256) .. v)
end

-- Park-Miller minimal standard generator: exact in doubles (LuaJIT) and integers (5.4).
local function prng(seed)
	local x = seed
	return function(n)
		x = (16807 * x) % 2147483647
		if n then return x % n end
		return x
	end
end

local function random_bytes(r, n)
	if n > 4096 then
		local block = {}
		for i = 1, 256 do block[i] = char(r(256)) end
		block = concat(block)
		return (block:rep(floor(n / 256) + 1)):sub(1, n - 7) .. random_bytes(r, 7)
	end
	local t = {}
	for i = 1, n do t[i] = char(r(256)) end
	return concat(t)
end

-- Decodes all of `chunks` (a list of strings fed in order) with next_frame; returns the
-- frames, and the error (msg, code) if one came.
local function decode_chunks(chunks, dec)
	dec = dec or core.decoder()
	local frames = {}
	for _, c in ipairs(chunks) do
		local ok, msg, code = dec:feed(c)
		if not ok then return frames, msg, code end
		while true do
			local f, m2, c2 = dec:next_frame()
			if not f then
				if m2 then return frames, m2, c2 end
				break
			end
			frames[#frames + 1] = f
		end
	end
	return frames, nil, nil, dec
end

local function split_every(s, n)
	local t = {}
	for i = 1, #s, n do t[#t + 1] = s:sub(i, i + n - 1) end
	return t
end

local function same_frames(got, want)
	assert.are.equal(#want, #got)
	for i = 1, #want do
		local g, w = got[i], want[i]
		assert.are.equal(w.total_length, g.total_length)
		assert.are.equal(w.headers_length, g.headers_length)
		assert.are.equal(w.prelude_crc, g.prelude_crc)
		assert.are.equal(w.message_crc, g.message_crc)
		assert.are.equal(#w.headers, #g.headers)
		for j = 1, #w.headers do
			assert.are.same(w.headers[j], g.headers[j])
		end
		assert.are.equal(w.payload, g.payload)
	end
end

-- Reference CRC-32 in Lua (bytewise table), independent of the C code.
local bxor
if IS_JIT then
	local bit = require "bit"
	bxor = function(a, b) return bit.bxor(a, b) % 4294967296 end
else
	bxor = load("return function(a, b) return a ~ b end")()
end
local CRC_T = {}
for i = 0, 255 do
	local c = i
	for _ = 1, 8 do
		if c % 2 == 1 then c = bxor(floor(c / 2), 0xEDB88320) else c = floor(c / 2) end
	end
	CRC_T[i] = c
end
local function lua_crc32(s, crc)
	local c = bxor(crc or 0, 0xFFFFFFFF)
	for i = 1, #s do
		c = bxor(CRC_T[bxor(c, byte(s, i)) % 256], floor(c / 256))
	end
	return bxor(c, 0xFFFFFFFF)
end

---------------------------------------------------------------------------- vectors

-- aws-sdk-go positives: decoded JSON -> the frame table next_frame gives.
local function go_expected(name)
	local d = cjson.decode(helper.read(V .. "/eventstream/decoded/positive/" .. name))
	local hs = {}
	for i, h in ipairs(d.headers) do
		local v = h.value
		if h.type == 6 or h.type == 7 or h.type == 9 then v = unb64(v) end
		hs[i] = { h.name, h.type, v }
	end
	return {
		total_length = d.total_length, headers_length = d.headers_length,
		prelude_crc = d.prelude_crc % 4294967296, message_crc = d.message_crc % 4294967296,
		headers = hs, payload = unb64(d.payload or ""),
	}
end

-- smithy-rs valid frames: expectations.json -> frame table (CRCs only where given).
local function smithy_expected(name)
	local e = cjson.decode(helper.read(V .. "/eventstream-smithy-rs/expectations.json")).cases[name]
	local hs = {}
	for i, h in ipairs(e.headers) do
		local v = h.value
		if h.value_utf8 then v = h.value_utf8 end
		if h.value_hex then v = unhex(h.value_hex) end
		hs[i] = { h.name, h.type, v }
	end
	return {
		total_length = e.total_length, headers_length = e.headers_length,
		prelude_crc = e.prelude_crc_hex and tonumber(e.prelude_crc_hex, 16),
		message_crc = e.message_crc_hex and tonumber(e.message_crc_hex, 16),
		headers = hs, payload = e.payload_utf8,
	}
end

local positives = {}   -- { name, bytes, expected frame }
for _, name in ipairs(helper.ls(V .. "/eventstream/encoded/positive")) do
	positives[#positives + 1] = { "go/" .. name,
		helper.read(V .. "/eventstream/encoded/positive/" .. name), go_expected(name) }
end
for _, name in ipairs({ "valid_with_all_headers_and_payload", "valid_empty_payload", "valid_no_headers" }) do
	local bytes = helper.read(V .. "/eventstream-smithy-rs/" .. name)
	local want = smithy_expected(name)
	-- expectations.json omits some CRCs: take them from the bytes.
	want.prelude_crc = want.prelude_crc or rd32(bytes, 9)
	want.message_crc = want.message_crc or rd32(bytes, #bytes - 3)
	positives[#positives + 1] = { "smithy/" .. name, bytes, want }
end

-- Reference section 9: the all-types vector, 9.2 and its siblings, 10.2, 11.1 frames.
local REF = {
	all_types = "0000006500000053c692271a017400016601016202fe017303fed401690400011170016c05fffffffed5fa0e00017906"
		.. "0004deadbeef017a07000668c3a96c6c6f0164080000014f7e9b6ffb0175090f1e2d3c4b5a69788796a5b4c3d2e1f07b"
		.. "7dfc4a1c39",
	delta = "0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f"
		.. "6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576"
		.. "656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224869227d7d"
		.. "1f944657",
	exception = "000000b0000000614f5086b30f3a657863657074696f6e2d747970650700137468726f74746c696e6745786365707469"
		.. "6f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970"
		.. "65070009657863657074696f6e7b226d657373616765223a22546f6f206d616e7920746f6b656e732c20706c65617365"
		.. "2077616974206265666f726520747279696e6720616761696e2e227df70ae57f",
	error = "0000007000000060d1425efe0b3a6572726f722d636f646507000f496e7465726e616c4661696c7572650e3a6572726f"
		.. "722d6d65737361676507001a416e20696e7465726e616c206572726f72206f636375727265640d3a6d6573736167652d"
		.. "747970650700056572726f7275252eb6",
	chunk = "000000d70000004bbff9e4380b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d747970650700"
		.. "106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b226279746573223a"
		.. "2265794a306558426c496a6f695932397564475675644639696247396a6131396b5a57783059534973496d6c755a4756"
		.. "34496a6f774c434a6b5a5778305953493665794a306558426c496a6f69644756346446396b5a57783059534973496e52"
		.. "6c654851694f694a4961534a3966513d3d227d4b8e9495",
	bidi0 = "000000e200000043d8e35bfc053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e6174757265060020bf"
		.. "4aa7d1ba3a5257a83f8bacfe664810f490caecedb0d1e34e5849947c9771f90000008f0000004bb79a60320b3a657665"
		.. "6e742d747970650700056368756e6b0d3a6d6573736167652d747970650700056576656e740d3a636f6e74656e742d74"
		.. "7970650700106170706c69636174696f6e2f6a736f6e7b226279746573223a2265794a6c646d56756443493665794a7a"
		.. "5a584e7a6157397555335268636e51694f6e74396658303d227d2e4b83b98758437a",
	bidi2 = "0000005300000043f5447a58053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e617475726506002006"
		.. "2ff5e2c2d44874865f70e7d371bd6e9e4cc63468f2e55c5ae46fb979983337a4b5edfa",
}

-- Re-encodes a decoded frame table with the triple form.
local function reencode(f)
	return core.encode(f.headers, f.payload)
end

---------------------------------------------------------------------------- specs

describe("event-stream CRC-32 #core", function()
	it("matches the check value and zlib's chaining", function()
		assert.are.equal(0xCBF43926, core.crc32("123456789"))
		assert.are.equal(0xCBF43926, (core._crc32_portable("123456789")))
		assert.are.equal(0, core.crc32(""))
		assert.are.equal(0xCBF43926, core.crc32("6789", core.crc32("12345")))
		assert.are.equal(0x414FA339, core.crc32("The quick brown fox jumps over the lazy dog"))
	end)

	it("agrees across the fast path, the portable path and a Lua reference (all lengths 0..300, unaligned)", function()
		local r = prng(12345)
		local big = random_bytes(r, 2048)
		local impl = select(2, core._crc32_portable(""))
		assert.is_true(impl == "pclmul" or impl == "slicing-by-16")
		for len = 0, 300 do
			for off = 0, 15, 5 do
				local s = big:sub(off + 1, off + len)
				local want = lua_crc32(s)
				assert.are.equal(want, core.crc32(s))
				assert.are.equal(want, (core._crc32_portable(s)))
				local cut = r(len + 1)
				assert.are.equal(want, core.crc32(s:sub(cut + 1), core.crc32(s:sub(1, cut))))
			end
		end
	end)

	it("agrees on large buffers (1 MB and odd sizes)", function()
		local r = prng(777)
		local big = random_bytes(r, 1048576 + 13)
		for _, n in ipairs({ 1048576, 1048576 + 13, 65536 + 7, 4095 }) do
			local s = big:sub(1, n)
			assert.are.equal((core._crc32_portable(s)), core.crc32(s))
		end
		local s = big:sub(3, 3 + 70000)
		assert.are.equal(lua_crc32(s), core.crc32(s))
	end)
end)

describe("event-stream decoder: conformance vectors #core", function()
	for _, p in ipairs(positives) do
		local name, bytes, want = p[1], p[2], p[3]

		it(name .. " decodes whole, at every two-piece split and byte by byte", function()
			same_frames((decode_chunks({ bytes })), { want })
			for cut = 0, #bytes do
				local frames, msg = decode_chunks({ bytes:sub(1, cut), bytes:sub(cut + 1) })
				assert.is_nil(msg)
				same_frames(frames, { want })
			end
			local frames, msg, _, dec = decode_chunks(split_every(bytes, 1))
			assert.is_nil(msg)
			same_frames(frames, { want })
			assert.are.equal(0, dec:pending())
			assert.is_true(dec:finish())
		end)

		it(name .. " re-encodes to the same bytes", function()
			assert.are.equal(hex(bytes), hex(reencode(want)))
		end)
	end

	it("decodes all positives concatenated, fed in 5-byte slices", function()
		local all, want = {}, {}
		for i, p in ipairs(positives) do all[i] = p[2]; want[i] = p[3] end
		all = concat(all)
		for _, n in ipairs({ 5, 1, 7, 64, #all }) do
			local frames, msg, _, dec = decode_chunks(split_every(all, n))
			assert.is_nil(msg)
			same_frames(frames, want)
			assert.are.equal(0, dec:pending())
		end
	end)

	it("decodes the all_headers vector to typed Lua values with next()", function()
		local dec = core.decoder()
		assert.is_true(dec:feed(helper.read(V .. "/eventstream/encoded/positive/all_headers")))
		local h, payload = dec:next()
		assert.are.equal("{'foo':'bar'}", payload)
		assert.are.equal(40972, h["event-type"])
		assert.are.equal("application/json", h["content-type"])
		assert.are.equal(false, h["bool false"])
		assert.are.equal(true, h["bool true"])
		assert.are.equal(-49, h["byte"])
		assert.are.equal("I'm a little teapot!", h["byte buf"])
		assert.are.equal(8675309, h["timestamp"])
		assert.are.equal(42, h["int16"])
		assert.are.equal(42424242, h["int64"])
		assert.are.equal(unhex("0102030405060708090a0b0c0d0e0f10"), h["uuid"])
		if not IS_JIT then assert.are.equal("integer", math.type(h["int64"])) end
		assert.is_nil(dec:next())
	end)

	local go_neg = {
		corrupted_header_len = "PRELUDE_CRC", corrupted_length = "PRELUDE_CRC",
		corrupted_headers = "MESSAGE_CRC", corrupted_payload = "MESSAGE_CRC",
	}
	local smithy_neg = {
		invalid_prelude_checksum = "PRELUDE_CRC",
		invalid_message_checksum = "MESSAGE_CRC",
		-- The message CRC is checked before the headers (botocore's order), so header
		-- corruption reports the CRC; the fixed-CRC case below reaches the header parser.
		invalid_header_value_type = "MESSAGE_CRC",
		invalid_header_name_length = "MESSAGE_CRC",
		invalid_header_string_value_length = "MESSAGE_CRC",
		invalid_header_string_length_cut_off = "MESSAGE_CRC",
		invalid_header_name_length_too_long = "MESSAGE_CRC",
		invalid_headers_length = "HEADERS_LENGTH",
	}
	local negatives = {}
	for name, code in pairs(go_neg) do
		negatives[#negatives + 1] = { "go/" .. name, V .. "/eventstream/encoded/negative/" .. name, code }
		-- The text expected by the vectors names the same checksum.
		local text = helper.read(V .. "/eventstream/decoded/negative/" .. name)
		assert(text:lower():find(code == "PRELUDE_CRC" and "prelude" or "message", 1, true))
	end
	for name, code in pairs(smithy_neg) do
		negatives[#negatives + 1] = { "smithy/" .. name, V .. "/eventstream-smithy-rs/" .. name, code }
	end
	table.sort(negatives, function(a, b) return a[1] < b[1] end)

	for _, n in ipairs(negatives) do
		local name, path, code = n[1], n[2], n[3]
		it(name .. " is refused with " .. code .. " whole, split, and byte by byte", function()
			local bytes = helper.read(path)
			for _, size in ipairs({ #bytes, 1, 2, 7, 12, 13 }) do
				local frames, msg, c, _ = decode_chunks(split_every(bytes, size))
				assert.are.equal(0, #frames)
				assert.are.equal(code, c)
				assert.is_string(msg)
			end
			for cut = 0, #bytes do
				local frames, _, c = decode_chunks({ bytes:sub(1, cut), bytes:sub(cut + 1) })
				assert.are.equal(0, #frames)
				assert.are.equal(code, c)
			end
		end)
	end

	it("smithy header-corruption frames with repaired CRCs fail in the header parser, naming the header", function()
		local cases = {
			invalid_header_value_type = { "HEADER_TYPE", "header 3 %('byte'%) at byte 25 .*unknown value type 96" },
			invalid_header_name_length = { "HEADER_TRUNCATED",
				"header 3 .* at byte 25 .*name length 255 runs past the header block" },
			invalid_header_string_value_length = { "HEADER_TRUNCATED",
				"header 8 %('str'%) at byte 83 .*string length 65535 runs past the header block" },
			-- Its length field starts at the block's last byte: the 0xFF00 is cut in half.
			invalid_header_string_length_cut_off = { "HEADER_TRUNCATED",
				"header 8 %('str'%) at byte 83 .*string length runs past the header block" },
			invalid_header_name_length_too_long = { "HEADER_TRUNCATED", "name length 102 runs past the header block" },
		}
		for name, c in pairs(cases) do
			local bytes = fix_crcs(helper.read(V .. "/eventstream-smithy-rs/" .. name))
			local frames, msg, code = decode_chunks({ bytes })
			assert.are.equal(0, #frames)
			assert.are.equal(c[1], code, name)
			assert.is_truthy(msg:find(c[2]), name .. ": " .. msg)
		end
	end)
end)

describe("event-stream decoder: reference examples #core", function()
	it("decodes the section 9 all-types vector and re-encodes it byte for byte", function()
		local bytes = unhex(REF.all_types)
		local dec = core.decoder()
		dec:feed(bytes)
		local f = dec:next_frame()
		assert.are.equal(101, f.total_length)
		assert.are.equal(83, f.headers_length)
		assert.are.equal(0xfc4a1c39, f.message_crc)
		assert.are.equal("{}", f.payload)
		local want = {
			{ "t", 0, true }, { "f", 1, false }, { "b", 2, -2 }, { "s", 3, -300 }, { "i", 4, 70000 },
			{ "l", 5, -5000000000 }, { "y", 6, unhex("deadbeef") }, { "z", 7, "h\195\169llo" },
			{ "d", 8, 1440938160123 }, { "u", 9, unhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0") },
		}
		assert.are.same(want, f.headers)
		-- Type names and the 36-character UUID form give the same bytes.
		local named = core.encode({
			{ "t", "true" }, { "f", "false" }, { "b", "byte", -2 }, { "s", "short", -300 },
			{ "i", "integer", 70000 }, { "l", "long", -5000000000 }, { "y", "bytes", unhex("deadbeef") },
			{ "z", "string", "h\195\169llo" }, { "d", "timestamp", 1440938160123 },
			{ "u", "uuid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" },
		}, "{}")
		assert.are.equal(REF.all_types, hex(named))
		assert.are.equal(REF.all_types, hex(core.encode(want, "{}")))
		dec:feed(bytes)
		local h, payload = dec:next()
		assert.are.same({ t = true, f = false, b = -2, s = -300, i = 70000, l = -5000000000,
			y = unhex("deadbeef"), z = "h\195\169llo", d = 1440938160123,
			u = unhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0") }, h)
		assert.are.equal("{}", payload)
	end)

	it("decodes the section 9.2 worked example field by field", function()
		local bytes = unhex(REF.delta)
		assert.are.equal(148, #bytes)
		local dec = core.decoder()
		dec:feed(bytes)
		local f = dec:next_frame()
		assert.are.equal(148, f.total_length)
		assert.are.equal(87, f.headers_length)
		assert.are.equal(0xb4ab9aee, f.prelude_crc)
		assert.are.equal(0x1f944657, f.message_crc)
		assert.are.same({ { ":event-type", 7, "contentBlockDelta" },
			{ ":content-type", 7, "application/json" }, { ":message-type", 7, "event" } }, f.headers)
		assert.are.equal('{"contentBlockIndex":0,"delta":{"text":"Hi"}}', f.payload)
		assert.are.equal(45, #f.payload)
		assert.are.equal(REF.delta, hex(reencode(f)))
		-- The map form sorts names: a different frame, the same message.
		local m = core.encode({ [":event-type"] = "contentBlockDelta",
			[":content-type"] = "application/json", [":message-type"] = "event" }, f.payload)
		assert.are.equal(148, #m)
		dec:feed(m)
		local g = dec:next_frame()
		assert.are.same({ { ":content-type", 7, "application/json" },
			{ ":event-type", 7, "contentBlockDelta" }, { ":message-type", 7, "event" } }, g.headers)
	end)

	it("decodes the exception, error, chunk and bidirectional frames and re-encodes them", function()
		local expect = {
			exception = { [":exception-type"] = "throttlingException", [":message-type"] = "exception",
				[":content-type"] = "application/json" },
			error = { [":error-code"] = "InternalFailure", [":error-message"] = "An internal error occurred",
				[":message-type"] = "error" },
			chunk = { [":event-type"] = "chunk", [":content-type"] = "application/json", [":message-type"] = "event" },
		}
		for name, want in pairs(expect) do
			local dec = core.decoder()
			dec:feed(unhex(REF[name]))
			local h = dec:next()
			assert.are.same(want, h)
			dec:feed(unhex(REF[name]))
			assert.are.equal(REF[name], hex(reencode(dec:next_frame())))
		end
		local dec = core.decoder()
		dec:feed(unhex(REF.bidi0 .. REF.bidi2))
		local f0, f2 = dec:next_frame(), dec:next_frame()
		assert.are.same({ ":date", 8, 1440938160000 }, f0.headers[1])
		local sig = unhex("bf4aa7d1ba3a5257a83f8bacfe664810f490caecedb0d1e34e5849947c9771f9")
		assert.are.same({ ":chunk-signature", 6, sig }, f0.headers[2])
		assert.are.equal(143, #f0.payload)
		assert.are.equal(0, #f2.payload)
		assert.are.equal(83, f2.total_length)
		assert.are.equal(REF.bidi0, hex(reencode(f0)))
		assert.are.equal(REF.bidi2, hex(reencode(f2)))
		-- The inner message of frame 0 is itself a frame.
		dec:feed(f0.payload)
		local inner = dec:next_frame()
		assert.are.equal('{"bytes":"eyJldmVudCI6eyJzZXNzaW9uU3RhcnQiOnt9fX0="}', inner.payload)
		assert.are.equal(0x2e4b83b9, inner.message_crc)
	end)
end)

describe("event-stream decoder: limits and errors #core", function()
	local function first_error(bytes, dec)
		local frames, msg, code = decode_chunks({ bytes }, dec)
		assert.are.equal(0, #frames)
		return code, msg
	end

	it("checks the prelude CRC before it trusts the lengths", function()
		-- A prelude claiming 4 GB with a bad CRC: refused at 12 bytes, nothing reserved.
		local bad = u32(0xFFFFFFF0) .. u32(0) .. u32(0)
		local dec = core.decoder()
		dec:feed(bad:sub(1, 11))
		assert.is_nil(dec:next())
		assert.are.equal(11, dec:pending())
		dec:feed(bad:sub(12))
		local _, msg, code = dec:next()
		assert.are.equal("PRELUDE_CRC", code)
		assert.is_truthy(msg:find("stream offset 0", 1, true))
		assert.is_true(dec:memory() <= 64)
	end)

	it("refuses frames below 16 bytes and above the limit", function()
		local pre = u32(15) .. u32(0)
		assert.are.equal("FRAME_TOO_SHORT", first_error(pre .. u32(core.crc32(pre)) .. "abcd"))
		pre = u32(core.EVENTSTREAM_MAX_MESSAGE + 1) .. u32(0)
		local code, msg = first_error(pre .. u32(core.crc32(pre)))
		assert.are.equal("FRAME_TOO_LARGE", code)
		assert.is_truthy(msg:find(tostring(core.EVENTSTREAM_MAX_MESSAGE), 1, true))
		-- A smaller per-decoder limit.
		local f = frame("", ("x"):rep(100))
		assert.are.equal("FRAME_TOO_LARGE", first_error(f, core.decoder(115)))
		assert.are.equal(1, #decode_chunks({ f }, core.decoder(116)))
		assert.are.equal(24 * 1048576 + 128 * 1024 + 16, core.EVENTSTREAM_MAX_MESSAGE)
	end)

	it("refuses headers_length > total_length - 16 and header blocks above 128 KiB", function()
		local pre = u32(40) .. u32(25)
		assert.are.equal("HEADERS_LENGTH", first_error(pre .. u32(core.crc32(pre)) .. ("\0"):rep(28)))
		pre = u32(200000) .. u32(131073)
		assert.are.equal("HEADERS_TOO_LARGE", first_error(pre .. u32(core.crc32(pre))))
	end)

	it("refuses empty names, invalid UTF-8 names, unknown types, duplicates and runaway headers", function()
		local cases = {
			{ hdr("", 0), "HEADER_NAME", "header 1 %(''%) at byte 12 .*empty name" },
			{ hdr("a", 0) .. hdr("\255x", 0), "HEADER_NAME", "header 2 %('\\xffx'%) at byte 15 .*not valid UTF%-8" },
			{ hdr("a", 10), "HEADER_TYPE", "unknown value type 10" },
			{ str_hdr("x", "1") .. str_hdr("y", "2") .. str_hdr("x", "3"), "HEADER_DUPLICATE",
				"header 3 %('x'%) at byte 24 .*duplicate of header 1" },
			{ hdr("abc", 4, "\0\0"), "HEADER_TRUNCATED", "header 1 %('abc'%) .*4%-byte value of type 4 runs past" },
			{ hdr("abc", 7, "\0"), "HEADER_TRUNCATED", "string length runs past" },
			{ hdr("abc", 6, "\3\132xyz"), "HEADER_TRUNCATED", "bytes length 900 runs past the header block" },
			{ hdr("abc", 9, ("u"):rep(15)), "HEADER_TRUNCATED", "16%-byte value of type 9 runs past" },
			{ char(5) .. "ab", "HEADER_TRUNCATED", "name length 5 runs past" },
			{ char(2) .. "ab", "HEADER_TRUNCATED", "name length 2 runs past" },
		}
		for _, c in ipairs(cases) do
			local code, msg = first_error(frame(c[1], "payload"))
			assert.are.equal(c[2], code)
			assert.is_truthy(msg:find(c[3]), msg)
		end
		-- 256 headers are fine, 257 are not.
		local t = {}
		for i = 1, 257 do t[i] = hdr(string.format("h%03d", i), 0) end
		assert.are.equal(1, #decode_chunks({ frame(concat(t, "", 1, 256)) }))
		assert.are.equal("TOO_MANY_HEADERS", first_error(frame(concat(t))))
		-- A duplicate is found wherever it sits and whatever its type.
		assert.are.equal("HEADER_DUPLICATE", first_error(frame(hdr("dup", 0) .. hdr("dup", 1))))
	end)

	it("checks header names as UTF-8 wherever a bad byte sits, at every name length", function()
		for len = 1, 24 do
			local ascii = ("n"):rep(len)
			assert.are.equal(1, #decode_chunks({ frame(hdr(ascii, 0)) }), "ascii name of " .. len)
			for pos = 1, len do
				local bad = ascii:sub(1, pos - 1) .. "\255" .. ascii:sub(pos + 1)
				assert.are.equal("HEADER_NAME", first_error(frame(hdr(bad, 0))), len .. "/" .. pos)
			end
			if len >= 2 then -- a valid two-byte character ending the name
				local ok = ascii:sub(1, len - 2) .. "\195\169"
				assert.are.equal(1, #decode_chunks({ frame(hdr(ok, 0)) }), "utf-8 name of " .. len)
			end
		end
	end)

	it("keeps the first error (sticky) until reset", function()
		local dec = core.decoder()
		local good = unhex(REF.delta)
		local bad = good:sub(1, 20) .. "X" .. good:sub(22)
		dec:feed(good .. bad .. good)
		assert.is_table(dec:next())
		local _, msg, code = dec:next()
		assert.are.equal("MESSAGE_CRC", code)
		assert.is_truthy(msg:find("message checksum mismatch in the 148%-byte message at stream offset 148"))
		local _, msg2, code2 = dec:next()
		assert.are.equal("DECODER_FAILED", code2)
		assert.is_truthy(msg2:find("MESSAGE_CRC", 1, true))
		local ok, _, code3 = dec:feed(good)
		assert.is_nil(ok)
		assert.are.equal("DECODER_FAILED", code3)
		local emsg, ecode = dec:error()
		assert.are.equal("MESSAGE_CRC", ecode)
		assert.are.equal(msg, emsg)
		assert.are.equal(dec, dec:reset())
		assert.is_nil(dec:error())
		assert.are.equal(0, dec:pending())
		dec:feed(good)
		assert.is_table(dec:next())
	end)

	it("reports a truncated stream at finish", function()
		local dec = core.decoder()
		local good = unhex(REF.delta)
		dec:feed(good .. good:sub(1, 100))
		assert.is_table(dec:next())
		assert.is_nil(dec:next())
		assert.are.equal(100, dec:pending())
		local ok, msg, code = dec:finish()
		assert.is_nil(ok)
		assert.are.equal("STREAM_TRUNCATED", code)
		assert.is_truthy(msg:find("100 bytes into the 148-byte message at stream offset 148", 1, true))
		dec:reset()
		dec:feed(good:sub(1, 5))
		assert.is_nil(dec:next())
		assert.are.equal("STREAM_TRUNCATED", select(3, dec:finish()))
		dec:reset()
		assert.is_true(dec:finish())
	end)

	it("raises on misuse and after close", function()
		assert.has_error(function() core.decoder(-1) end)
		local dec = core.decoder()
		assert.has_error(function() dec:feed({}) end)
		dec:close()
		dec:close()
		assert.has_error(function() dec:next() end)
		assert.has_error(function() dec:feed("x") end)
		assert.is_truthy(tostring(dec):find("closed", 1, true))
		local mt = getmetatable(core.decoder())
		assert.are.equal("bedrock.Decoder", mt.__name)
		assert.is_function(mt.__gc)
		assert.is_function(mt.__close)
		local d2 = core.decoder()
		mt.__close(d2)
		mt.__gc(d2)
		assert.has_error(function() d2:pending() end)
	end)
end)

describe("event-stream decoder: buffering and memory #core", function()
	it("hands out messages fed in one slice and copies only split ones", function()
		local good = unhex(REF.delta)
		local dec = core.decoder()
		dec:feed(good .. good .. good)
		for _ = 1, 3 do assert.is_table(dec:next()) end
		assert.is_true(dec:memory() <= 8 * 64)   -- the header array only: nothing copied
		assert.is_nil(dec:next())
		-- Split inside a header: the buffer is exactly one message.
		dec:feed(good:sub(1, 30))
		assert.is_nil(dec:next())
		local mem = dec:memory()
		dec:feed(good:sub(31))
		assert.is_table(dec:next())
		assert.is_true(mem >= 148 and mem < 148 + 8 * 64)
	end)

	it("reserves exactly one message for a large split frame", function()
		local payload = ("p"):rep(3 * 1048576)
		local f = core.encode({ { "a", 7, "b" } }, payload)
		local dec = core.decoder()
		dec:feed(f:sub(1, 1000))
		assert.is_nil(dec:next())
		assert.is_true(dec:memory() - #f < 4096)
		assert.are.equal(1000, dec:pending())
		for i = 1001, #f, 65536 do
			dec:feed(f:sub(i, i + 65535))
			local h, p = dec:next()
			if h then
				assert.are.equal(payload, p)
				assert.are.equal("b", h.a)
			end
			assert.is_true(dec:memory() - #f < 4096)
		end
		assert.are.equal(0, dec:pending())
		-- Released once it empties.
		dec:feed(unhex(REF.delta))
		assert.is_table(dec:next())
		assert.is_true(dec:memory() < 4096)
	end)

	it("keeps the fed string alive and accepts a feed before the last slice is drained", function()
		local dec = core.decoder()
		local parts = {}
		for i = 1, 4 do parts[i] = core.encode({ [":event-type"] = "x" }, '{"text":"H' .. i .. '"}') end
		dec:feed(parts[1] .. parts[2] .. parts[3]:sub(1, 20))
		parts[1] = nil
		collectgarbage()
		collectgarbage()
		local _, p = dec:next()
		assert.is_truthy(p:find("H1", 1, true))
		-- Feed again with one whole message and a partial one unread.
		dec:feed(parts[3]:sub(21) .. parts[4])
		collectgarbage()
		for i = 2, 4 do
			local _, q = dec:next()
			assert.is_truthy(q:find("H" .. i, 1, true))
		end
		assert.is_nil(dec:next())
		assert.are.equal(0, dec:pending())
	end)
end)

describe("event-stream encoder #core", function()
	it("refuses what the decoder would refuse", function()
		local function code(headers, payload)
			local s, msg, c = core.encode(headers, payload)
			assert.is_nil(s)
			assert.is_string(msg)
			return c
		end
		assert.are.equal("HEADER_TOO_LONG", code({ { ("n"):rep(256), 7, "v" } }))
		assert.are.equal("HEADER_NAME", code({ { "", 7, "v" } }))
		assert.are.equal("HEADER_NAME", code({ { "\255", 7, "v" } }))
		assert.are.equal("HEADER_TOO_LONG", code({ { "n", 7, ("v"):rep(32768) } }))
		assert.are.equal("HEADER_TOO_LONG", code({ n = ("v"):rep(32768) }))
		assert.are.equal("RANGE", code({ { "n", "byte", 128 } }))
		assert.are.equal("RANGE", code({ { "n", "short", -32769 } }))
		assert.are.equal("RANGE", code({ { "n", "int32", 2147483648 } }))
		assert.are.equal("INVAL", code({ { "n", "int64", 1.5 } }))
		assert.are.equal("INVAL", code({ { "n", "int64", "12x" } }))
		assert.are.equal("HEADER_TYPE", code({ { "n", "float", 1 } }))
		assert.are.equal("HEADER_TYPE", code({ { "n", 10, 1 } }))
		assert.are.equal("HEADER_DUPLICATE", code({ { "n", 7, "a" }, { "n", 0 } }))
		assert.are.equal("INVAL", code({ { "n", "uuid", "short" } }))
		assert.are.equal("INVAL", code({ { "n", "uuid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fZ" } }))
		assert.are.equal("INVAL", code({ { "n", "string", 5 } }))
		assert.are.equal("INVAL", code({ n = 5 }))
		assert.are.equal("INVAL", code({ "not a triple" }))
		local many = {}
		for i = 1, 257 do many[i] = { "h" .. i, 0 } end
		assert.are.equal("TOO_MANY_HEADERS", code(many))
		assert.are.equal("HEADERS_TOO_LARGE", code((function()
			local t = {}
			for i = 1, 5 do t[i] = { "h" .. i, 6, ("x"):rep(30000) } end
			return t
		end)()))
		assert.are.equal("FRAME_TOO_LARGE", code({}, ("x"):rep(core.EVENTSTREAM_MAX_MESSAGE - 15)))
		assert.is_string(core.encode({}, ("x"):rep(core.EVENTSTREAM_MAX_MESSAGE - 16)))
		assert.has_error(function() core.encode("x") end)
	end)

	it("encodes many headers (text UUIDs, maps) beyond the small-call scratch", function()
		local t, map, want = {}, {}, {}
		for i = 1, 40 do
			local u = string.format("%08x-0000-4000-8000-%012x", i, i * 7)
			t[i] = { string.format("u%02d", i), "uuid", u }
			want[i] = { t[i][1], 9, unhex(u:gsub("-", "")) }
			map[string.format("k%02d", 41 - i)] = "v" .. i
		end
		local dec = core.decoder()
		dec:feed(assert(core.encode(t, "x")))
		assert.are.same(want, dec:next_frame().headers)
		dec:feed(assert(core.encode(map, "")))
		local f = dec:next_frame()
		assert.are.equal(40, #f.headers)
		for i = 1, 40 do
			assert.are.same({ string.format("k%02d", i), 7, "v" .. (41 - i) }, f.headers[i])
		end
		assert.are.equal(0.0, (core.decoder(1e30):pending()))
	end)

	it("encodes an empty message as the 16-byte minimum", function()
		local e = core.encode({}, "")
		assert.are.equal(hex(helper.read(V .. "/eventstream/encoded/positive/empty_message")), hex(e))
		assert.are.equal(hex(e), hex(core.encode(nil)))
		assert.are.equal(hex(e), hex(core.encode()))
	end)

	it("takes bools by value with the 'bool' type name and 64-bit values as decimal strings", function()
		local f = core.encode({ { "a", "bool", true }, { "b", "bool", false },
			{ "c", "int64", "-9223372036854775808" }, { "d", "timestamp", "9223372036854775807" } })
		local dec = core.decoder()
		dec:feed(f)
		local fr = dec:next_frame()
		assert.are.same({ "a", 0, true }, fr.headers[1])
		assert.are.same({ "b", 1, false }, fr.headers[2])
		if IS_JIT then
			assert.are.same({ "c", 5, "-9223372036854775808" }, fr.headers[3])
			assert.are.same({ "d", 8, "9223372036854775807" }, fr.headers[4])
		else
			assert.are.same({ "c", 5, math.mininteger }, fr.headers[3])
			assert.are.same({ "d", 8, math.maxinteger }, fr.headers[4])
		end
	end)
end)

describe("event-stream codec: random round trips #core", function()
	local function random_value(r, t)
		if t == 0 then return true end
		if t == 1 then return false end
		if t == 2 then return r(256) - 128 end
		if t == 3 then return r(65536) - 32768 end
		if t == 4 then return r() - 1073741823 end
		if t == 5 or t == 8 then
			local k = r(10)
			if IS_JIT then
				if k == 0 then return "9223372036854775807" end
				if k == 1 then return "-9223372036854775808" end
				if k == 2 then return "9007199254740993" end
				return (r(2097152) - 1048576) * 2147483648 + r()
			end
			if k == 0 then return math.maxinteger end
			if k == 1 then return math.mininteger end
			return (r() - 1073741823) * 4294967296 + r()
		end
		if t == 6 or t == 7 then
			local n = r(8) == 0 and 0 or r(300)
			if r(200) == 0 then n = 32767 end
			return random_bytes(r, n)
		end
		return random_bytes(r, 16)
	end

	local function random_message(r, i)
		local hs, names = {}, {}
		for j = 1, r(13) do
			local name = "h" .. j .. random_bytes(r, r(4)):gsub("[^%w]", "_")
			if not names[name] then
				names[name] = true
				local t = r(10)
				hs[#hs + 1] = { name, t, random_value(r, t) }
			end
		end
		local n
		local k = r(20)
		if k == 0 then n = 0 elseif k == 1 then n = r(70000) else n = r(600) end
		if i % 97 == 0 then n = 1048576 + r(1000) end
		return hs, random_bytes(r, n)
	end

	it("survives encode -> decode in random slices (300 messages, all types, payloads 0..1 MB)", function()
		local r = prng(20240601)
		local frames, want = {}, {}
		for i = 1, 300 do
			local hs, payload = random_message(r, i)
			local f, msg = core.encode(hs, payload)
			assert.is_string(f, msg)
			frames[i] = f
			want[i] = { headers = hs, payload = payload, total_length = #f,
				headers_length = rd32(f, 5), prelude_crc = rd32(f, 9), message_crc = rd32(f, #f - 3) }
			assert.are.equal(lua_crc32(f:sub(1, 8)), want[i].prelude_crc)
		end
		local stream = concat(frames)
		-- Random slices, including empty ones.
		for round = 1, 3 do
			local chunks, pos = {}, 1
			while pos <= #stream do
				local n = r(round == 1 and 40 or 5000)
				if r(5) == 0 then n = r(200000) end
				chunks[#chunks + 1] = stream:sub(pos, pos + n - 1)
				pos = pos + n
			end
			local got, msg, _, dec = decode_chunks(chunks)
			assert.is_nil(msg)
			same_frames(got, want)
			assert.are.equal(0, dec:pending())
		end
		-- The map form of next() agrees, and decoded frames re-encode identically.
		local dec = core.decoder()
		dec:feed(stream)
		for i = 1, #want do
			local h, p = dec:next()
			assert.are.equal(want[i].payload, p)
			local n = 0
			for _, t in ipairs(want[i].headers) do
				n = n + 1
				assert.are.equal(t[3], h[t[1]])
			end
			local m = 0
			for _ in pairs(h) do m = m + 1 end
			assert.are.equal(n, m)
		end
		dec:feed(stream)
		for i = 1, #want do
			assert.are.equal(frames[i], reencode(dec:next_frame()))
		end
	end)

	it("refuses every single-byte corruption of a frame by the CRC that covers it", function()
		local good = unhex(REF.all_types)
		for i = 1, #good do
			for _, x in ipairs({ 1, 128, 255 }) do
				local b = (byte(good, i) + x) % 256
				local bad = good:sub(1, i - 1) .. char(b) .. good:sub(i + 1)
				local frames, _, code = decode_chunks({ bad })
				assert.are.equal(0, #frames)
				assert.is_truthy(code == (i <= 12 and "PRELUDE_CRC" or "MESSAGE_CRC"), code)
			end
		end
	end)
end)
