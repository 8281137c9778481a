-- The hot paths that the C core takes for speed must give exactly what the general path
-- gives:
--   * JSON decoding (core.json_decode, tried first by json.decode_raw) against lua-cjson
--     with json.lua's empty-array rule (json.decode_cjson): the same value, number types
--     and table shapes included, for every text it accepts, over every capture (the files,
--     their bodies and every event payload) and random documents; it must accept the
--     captures' texts (else the fast path would be dead code) and refuse what is not
--     strict JSON;
--   * JSON string escaping (core.json_escape / core.json_quote behind json.escape and
--     json.quote) against the escaping rule written out in Lua, over every byte value
--     and random strings;
--   * events whose payload the decoder decodes itself (dec:next(blobs, sentinel)): blob
--     events (InvokeModelWithResponseStream chunks) base64-decoded, JSON payloads decoded
--     by the fast path straight from the frame, against the general path (payload
--     string, json.decode_raw, the shape's reader), over every capture in
--     spec/fixtures/vectors/captures and over crafted and random payloads, errors included.
local helper = require "spec.helper"
local json = require "bedrock.json"
local client = require "bedrock.client"
local operations = require "bedrock.operations"
local stream = require "bedrock.stream"
local core = require "bedrock.core"

local DIR = helper.vectors .. "/captures"
local INVOKE = operations.plans.InvokeModelWithResponseStream
local CONVERSE = operations.plans.ConverseStream

-- The escaping rule, as json.lua states it, in plain Lua.
local ref_escapes = {
	['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
	['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\127'] = '\\u007f',
}
for i = 0, 31 do
	local c = string.char(i)
	if not ref_escapes[c] then ref_escapes[c] = string.format("\\u%04x", i) end
end
local function ref_escape(s)
	return (s:gsub('[%z\1-\31"\\\127]', ref_escapes))
end

local function deep_equal(a, b)
	if type(a) ~= type(b) then return false end
	if type(a) ~= "table" then return a == b end
	if getmetatable(a) ~= getmetatable(b) then return false end
	for k, x in pairs(a) do if not deep_equal(x, b[k]) then return false end end
	for k in pairs(b) do if a[k] == nil then return false end end
	return true
end

-- A decoder that only ever hands out payload strings (dec:next() without arguments): the
-- general path, for comparison.
local function plain_decoder(real)
	return {
		feed = function(_, data) return real:feed(data) end,
		next = function() return real:next() end,
		finish = function() return real:finish() end,
	}
end

-- All events of a stream over `body` (or the error it raises), with the decoder's fast
-- paths (blob events, JSON payloads decoded from the frame) on (the default) or off.
local function read_all(plan, body, fast_on, slice)
	local s = assert(client.stream_from_body(plan, 200, {}, body, slice))
	if not fast_on then s.decoder = plain_decoder(s.decoder) end
	local events = {}
	local ok, err = pcall(function()
		for ev in s do events[#events + 1] = ev end
	end)
	if not ok then return nil, tostring(type(err) == "table" and (err.code .. ": " .. err.message) or err) end
	return events
end

local function same_both_ways(plan, body, slice)
	local a, ea = read_all(plan, body, true, slice)
	local b, eb = read_all(plan, body, false, slice)
	assert.are.equal(eb, ea)
	assert.is_true(deep_equal(a, b))
	return a, ea
end

local function chunk_frame(payload, headers)
	return assert(core.encode(headers or { [":message-type"] = "event", [":event-type"] = "chunk",
		[":content-type"] = "application/json" }, payload))
end

-- How many messages of body the decoder hands out as decoded blobs, and how many as
-- decoded JSON values.
local function blob_hits(plan, body)
	local blobs = stream.blob_events[plan.output_stream]
	local dec = core.decoder()
	assert(dec:feed(body))
	local hits, json_hits = 0, 0
	while true do
		local h, _, key = dec:next(blobs, json.SENTINEL)
		if not h then break end
		if key == true then json_hits = json_hits + 1 elseif key then hits = hits + 1 end
	end
	return hits, json_hits
end

local math_type = math.type
-- Same value, number types (Lua 5.4) and signs of zero included.
local function same_value(a, b)
	if type(a) ~= type(b) then return false end
	if type(a) == "number" then
		if math_type and math_type(a) ~= math_type(b) then return false end
		return a == b and (a ~= 0 or 1 / a == 1 / b)
	end
	if type(a) ~= "table" then return a == b end
	if getmetatable(a) ~= getmetatable(b) then return false end
	for k, x in pairs(a) do if not same_value(x, b[k]) then return false end end
	for k in pairs(b) do if a[k] == nil then return false end end
	return true
end

-- Decodes s both ways; the fast path may decline (then decode_raw is cjson's). Returns
-- whether the fast path took it.
local function check_decode(s)
	local fast, ok = core.json_decode(s, json.SENTINEL)
	local slow, err = json.decode_cjson(s)
	if ok then
		assert(slow ~= nil, "fast path accepted what cjson refuses: " .. s:sub(1, 200) .. " (" .. tostring(err) .. ")")
		assert(same_value(fast, slow), "different values for " .. s:sub(1, 200))
	end
	local v, e = json.decode_raw(s)
	assert(same_value(v, slow) and e == err)
	return ok == true
end

describe("JSON decoding in the C core #core", function()
	it("gives cjson's value for every JSON text of the captures, and takes nearly all of them", function()
		local texts, taken = 0, 0
		local function try(s)
			if type(s) ~= "string" or s == "" then return end
			texts = texts + 1
			if check_decode(s) then taken = taken + 1 end
		end
		for _, f in ipairs(helper.ls(DIR)) do
			if f:match("%.json$") then
				local text = helper.read(DIR .. "/" .. f)
				try(text)
				local cap = json.decode(text)
				local resp = type(cap) == "table" and cap.response
				if resp and resp.body_text then try(resp.body_text) end
				local body = resp and resp.body_b64 and json.b64decode(resp.body_b64)
				if body and f:match("stream") then
					local dec = core.decoder()
					assert(dec:feed(body))
					while true do
						local h, p = dec:next()
						if not h then break end
						try(p)
					end
				elseif body then
					try(body)
				end
				if resp and type(resp.body) == "table" then try(json.encode(resp.body)) end
			end
		end
		assert.is_true(texts > 1500, "texts: " .. texts)
		assert.is_true(taken >= texts * 0.95, string.format("fast path took %d of %d", taken, texts))
	end)

	it("crafted texts: cjson's value, or declined", function()
		local cases = {
			'{}', '[]', '[[]]', '[ ]', '{"a":[]}', '{"a":[ \n ]}', '"[]"', '{"[]":"[ ]"}', '0', '-0', '-0.0',
			'1e400', '1E+2', '1e-2', '0.1', '123456789012345678901234567890', '12345678901234567', '-12.5e-3',
			'true', 'false', 'null', '[null,true,false]', '{"a":null}',
			[=["\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\"]=], [=["\u0000"]=], [=["\u0001bedrock.empty-array\u0001"]=],
			[=[["\u0001bedrock.empty-array\u0001"]]=], [=[{"\u0061":1,"a":2}]=],
			'{"a":1,"a":2}', ' \n\t{ "a" : [ 1 , 2 ] } \r\n', '{"a":{"b":{"c":[1,[2,[3,{}]]]}}}',
			'"é 💡 raw utf-8"', '"\255\254 invalid utf-8"',
			-- not strict JSON, or errors: declined, cjson decides
			'', ' ', '[01]', '[1.]', '[.5]', '[+1]', '[1e]', '["a\1b"]', '["a\tb"]', [=[["\ud800"]]=], [=[["\udc00"]]=],
			[=[["\ud800\u0041"]]=], [=[["\x"]]=], [=[["\u12"]]=], '[1,]', '{"a":1,}', '{"a" 1}', '{a:1}', '[1 2]', '[1]x',
			'NaN', 'Infinity', '-Infinity', '[0x10]', 'tru', 'nul', '"abc', '[', '{', '{"a":', '\0[]', '[]\0',
			string.rep("[", 129) .. string.rep("]", 129), string.rep("[", 128) .. string.rep("]", 128),
			'[' .. string.rep("1,", 5000) .. '1]', '"' .. string.rep([[\n]], 3000) .. '"',
			'[1' .. string.rep("0", 70) .. ']',
		}
		for _, s in ipairs(cases) do check_decode(s) end
		local fast, ok = core.json_decode('{"a":[],"b":null,"c":1}', json.SENTINEL)
		assert.is_true(ok)
		assert.are.equal(json.SENTINEL, fast.a[1])
		assert.are.equal(json.null, fast.b)
		assert.is_nil(select(2, core.json_decode('[01]', json.SENTINEL)))
		assert.is_nil(select(2, core.json_decode([=[["\ud800"]]=], json.SENTINEL)))
		assert.is_true(select(2, core.json_decode(string.rep("[", 128) .. string.rep("]", 128), json.SENTINEL)))
		assert.is_nil(select(2, core.json_decode(string.rep("[", 129) .. string.rep("]", 129), json.SENTINEL)))
	end)

	it("random documents: cjson's value every time", function()
		math.randomseed(56)
		local function str()
			local t = {}
			for i = 1, math.random(0, 12) do
				local r = math.random(1, 12)
				if r == 1 then t[i] = [[\"]]
				elseif r == 2 then t[i] = [[\n]]
				elseif r == 3 then t[i] = string.format([[\u%04x]], math.random(0, 0xd7ff))
				elseif r == 4 then t[i] = [[\ud83d\ude00]]
				elseif r == 5 then t[i] = "é"
				else t[i] = string.char(math.random(32, 126)):gsub('[\\"]', "x") end
			end
			return '"' .. table.concat(t) .. '"'
		end
		local function num()
			local r = math.random(1, 5)
			if r == 1 then return tostring(math.random(-1000, 1000)) end
			if r == 2 then return string.format("%.17g", (math.random() - 0.5) * 10 ^ math.random(-30, 30)) end
			if r == 3 then return math.random(0, 9) .. "e" .. math.random(-5, 5) end
			if r == 4 then return "-0." .. math.random(0, 999) end
			return "9007199254740993"
		end
		local ws = { "", " ", "\n", "\t ", "\r\n" }
		local function value(depth)
			local r = math.random(1, depth > 4 and 6 or 9)
			local w = ws[math.random(#ws)]
			if r <= 2 then return w .. str() end
			if r == 3 then return w .. num() end
			if r == 4 then return ({ "true", "false", "null" })[math.random(3)] end
			if r <= 6 then return w .. num() .. w end
			if r <= 7 then
				local t = {}
				for i = 1, math.random(0, 4) do t[i] = value(depth + 1) end
				return "[" .. w .. table.concat(t, "," .. w) .. "]"
			end
			local t = {}
			for i = 1, math.random(0, 4) do t[i] = str() .. w .. ":" .. value(depth + 1) end
			return "{" .. table.concat(t, ",") .. w .. "}"
		end
		local taken = 0
		for _ = 1, 2000 do
			if check_decode(value(0)) then taken = taken + 1 end
		end
		assert.is_true(taken > 1900, "taken: " .. taken)
	end)
end)

describe("JSON escaping in the C core #core", function()
	it("escapes every single byte as the rule says", function()
		for i = 0, 255 do
			local c = string.char(i)
			assert.are.equal(ref_escape(c), json.escape(c))
			assert.are.equal('"' .. ref_escape(c) .. '"', json.quote(c))
		end
	end)

	it("matches the rule on random strings, short and long, and returns the string itself when clean", function()
		math.randomseed(12)
		for _ = 1, 3000 do
			local t = {}
			for j = 1, math.random(0, 700) do t[j] = string.char(math.random(0, 255)) end
			local s = table.concat(t)
			assert.are.equal(ref_escape(s), json.escape(s))
			assert.are.equal('"' .. ref_escape(s) .. '"', json.quote(s))
		end
		local clean = string.rep("héllo wörld ", 100)
		assert.are.equal(clean, json.escape(clean))
		assert.are.equal('"a\\"b\\\\c\\n\\t\\u0000\\u001f\\u007fé"', json.quote('a"b\\c\n\t\0\31\127é'))
	end)

	it("round-trips through the decoder", function()
		local s = 'q"\\/\b\f\n\r\t\0\1\31\127 é 💡'
		assert.are.equal(s, json.decode(json.quote(s)))
	end)
end)

describe("blob events decoded by the decoder #core", function()
	it("knows InvokeModelWithResponseStream's chunk and nothing of ConverseStream", function()
		assert.are.same({ chunk = "bytes" }, stream.blob_events[INVOKE.output_stream])
		assert.are.same({}, stream.blob_events[CONVERSE.output_stream])
	end)

	it("every capture's stream gives the same events, or the same error, both ways", function()
		local files, streams, hits, json_hits = helper.ls(DIR), 0, 0, 0
		for _, f in ipairs(files) do
			local name = f:match("^(invoke%-model%-stream)%-%-") or f:match("^(converse%-stream)%-%-")
			if name then
				local cap = assert(json.decode(helper.read(DIR .. "/" .. f)))
				local resp = cap.response
				if resp.status < 300 then
					local body = resp.body_b64 and assert(json.b64decode(resp.body_b64)) or resp.body_text or resp.body
					local plan = name == "converse-stream" and CONVERSE or INVOKE
					for _, slice in ipairs{ false, 7 } do same_both_ways(plan, body, slice or nil) end
					streams = streams + 1
					local b, j = blob_hits(plan, body)
					hits, json_hits = hits + b, json_hits + j
				end
			end
		end
		assert.is_true(streams >= 60, "streams: " .. streams)
		assert.is_true(hits >= 31, "chunks decoded by the decoder: " .. hits)
		assert.is_true(json_hits >= 500, "JSON payloads decoded by the decoder: " .. json_hits)
	end)

	it("crafted payloads: the same result or the same error both ways", function()
		local b64 = json.b64encode("hello, world\0\255")
		local cases = {
			'{"bytes":"' .. b64 .. '"}',
			'{"bytes":"' .. b64 .. '","p":"abcdefgh"}',
			'{"p":"x","bytes":"' .. b64 .. '"}',
			' \t\r\n{ "bytes" : "' .. b64 .. '" , "p" : "" } \n',
			'{"bytes":""}',
			'{"bytes":"QUJD"}', '{"bytes":"QUI="}', '{"bytes":"QUI"}', '{"bytes":"Q"}',
			'{"bytes":"QU\\/J"}', '{"bytes":"QU\\u004aD"}', '{"byt\\u0065s":"QUJD"}',
			'{"bytes":"QUJD","bytes":"REVG"}', '{"bytes":"QUJD","bytes":"not base64!"}',
			'{"bytes":"not base64!","bytes":"QUJD"}',
			'{"bytes":"QUJD","p":"a\\"b"}', '{"bytes":"QUJD","p":"a\tb"}', '{"bytes":"QUJD","p":"é"}',
			'{"bytes":"QUJD","p":1}', '{"bytes":"QUJD","p":null}', '{"bytes":null}', '{"bytes":1}',
			'{"bytes":["QUJD"]}', '{"bytes":"QUJD"', '{"bytes":"QUJD"}x', '{"bytes":"QUJD",}',
			'{"bytes" "QUJD"}', '{}', '[]', '', 'null', '"QUJD"', '{"bytes":"QU JD"}',
			'{"bytes":"QUJD\n"}', '{"p":"only padding"}', '{"bytes":"QUJD","p":"\\"}',
			'{"bytes":"\\",\\"bytes\\":\\"QUJD"}', '{"bytes":"QUJD\\"}',
		}
		for _, p in ipairs(cases) do
			same_both_ways(INVOKE, chunk_frame(p))
		end
		-- the blob path is taken where it should be, and only there
		assert.are.equal(1, blob_hits(INVOKE, chunk_frame(cases[4])))
		assert.are.equal(0, blob_hits(INVOKE, chunk_frame('{"bytes":"QU\\/J"}')))
		assert.are.equal(0, blob_hits(INVOKE, chunk_frame('{"bytes":"QUJD","bytes":"REVG"}')))
		assert.are.equal(0, blob_hits(INVOKE, chunk_frame('{"bytes":"QUJD"}',
			{ [":message-type"] = "exception", [":exception-type"] = "chunk" })))
		assert.are.equal(0, blob_hits(INVOKE, chunk_frame('{"bytes":"QUJD"}',
			{ [":message-type"] = "event", [":event-type"] = "other" })))
		assert.are.equal(1, blob_hits(INVOKE, chunk_frame('{"bytes":"QUJD"}', { [":event-type"] = "chunk" })))
		-- an invalid base64 value still fails as the general path fails
		local _, err = same_both_ways(INVOKE, chunk_frame('{"bytes":"QUJD","bytes":"not base64!"}'))
		local _, err2 = read_all(INVOKE, chunk_frame('{"bytes":"not base64!"}'), true)
		assert.are.equal(select(2, read_all(INVOKE, chunk_frame('{"bytes":"not base64!"}'), false)), err2)
		-- (the last value wins, and it is not base64: an error both ways, never the text)
		assert.matches("not valid base64", tostring(err))
	end)

	it("random payloads built from JSON pieces: the same result or error both ways", function()
		math.randomseed(34)
		local keys = { '"bytes"', '"p"', '"byt\\u0065s"', '"b"', '"bytes\\n"' }
		local function value()
			local r = math.random(1, 9)
			if r <= 4 then return '"' .. json.b64encode(string.rep("x", math.random(0, 40))) .. '"' end
			if r == 5 then return '"' .. json.b64encode("abc"):gsub("=", "") .. '"' end
			if r == 6 then return '"a\\"b"' end
			if r == 7 then return tostring(math.random(0, 9)) end
			if r == 8 then return 'null' end
			return '"Q' .. string.char(math.random(0, 127)):gsub('[%z"\\]', "") .. 'UJD"'
		end
		local blanks = { "", " ", "\n", "\t", "\r\n " }
		for _ = 1, 400 do
			local parts = {}
			for i = 1, math.random(0, 3) do
				parts[i] = blanks[math.random(#blanks)] .. keys[math.random(#keys)] .. blanks[math.random(#blanks)]
					.. ":" .. blanks[math.random(#blanks)] .. value() .. blanks[math.random(#blanks)]
			end
			local p = blanks[math.random(#blanks)] .. "{" .. table.concat(parts, ",") .. "}"
			if math.random(1, 10) == 1 then p = p .. "," end
			same_both_ways(INVOKE, chunk_frame(p))
		end
	end)

	it("a 1 MB chunk arrives whole, in any slicing", function()
		local bytes = {}
		for i = 1, 4096 do bytes[i] = string.char(i % 256) end
		local raw = string.rep(table.concat(bytes), 256)
		local frame = chunk_frame('{"bytes":"' .. json.b64encode(raw) .. '","p":"abc"}')
		for _, slice in ipairs{ false, 65536, 1000 } do
			local events = same_both_ways(INVOKE, frame .. frame, slice or nil)
			assert.are.equal(2, #events)
			assert.are.equal(raw, events[1].chunk.bytes)
			assert.are.equal(raw, events[2].chunk.bytes)
		end
	end)
end)
