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

	it("matches the rule with an escape at every offset of a 16-byte block, and past 256 KiB", function()
		for len = 1, 40 do
			for at = 1, len do
				for _, e in ipairs{ '"', "\\", "\n", "\0", "\127" } do
					local s = string.rep("a", at - 1) .. e .. string.rep("é", len - at)
					assert.are.equal(ref_escape(s), json.escape(s))
					assert.are.equal('"' .. ref_escape(s) .. '"', json.quote(s))
				end
			end
		end
		-- the long ones are measured first, then written in one go
		local para = 'She said "hi" —\n\tthen: "C:\\notes" (東京).\r\n'
		for _, n in ipairs{ 262143, 262144, 262145, 300001 } do
			local s = string.rep(para, math.ceil(n / #para)):sub(1, n)
			assert.are.equal(ref_escape(s), json.escape(s))
			assert.are.equal('"' .. ref_escape(s) .. '"', json.quote(s))
			local clean = string.rep("x", n)
			assert.are.equal(clean, json.escape(clean))
		end
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

-- Events read by their shape in the C decoder (core.json_read, dec:next's readers): the
-- reader's rules come from the compiled nodes (shapes.reader_desc); the value must be
-- what the general path gives (json.decode_raw, then the event node's reader), number
-- types and metatables included, or the C decoder must decline.
describe("events read by their shape in the C decoder #core", function()
	local readers = stream.event_readers[CONVERSE.output_stream]
	local members = CONVERSE.output_stream.members

	-- json_read against decode_raw + the reader; true when json_read took p.
	local function check_read(et, p)
		local v, ok = core.json_read(p, json.SENTINEL, readers[et])
		if ok then
			local d = json.decode_raw(p)
			assert(type(d) == "table", "json_read took what is not a JSON object: " .. p:sub(1, 200))
			local rok, r = pcall(members[et].node.read, d)
			assert(rok, "json_read took what the reader refuses: " .. p:sub(1, 200))
			assert(same_value(v, r), "different values for " .. et .. " " .. p:sub(1, 200))
		else
			assert.is_nil(v)
		end
		return ok == true
	end

	local function event_frame(et, payload)
		return assert(core.encode({ [":message-type"] = "event", [":event-type"] = et,
			[":content-type"] = "application/json" }, payload))
	end

	it("has the rules of the compiled nodes", function()
		local d = readers.contentBlockDelta
		assert.are.equal(1, d[1])
		assert.are.equal(math.type and 2 or 1, d.contentBlockIndex)
		assert.are.equal(2, d.delta[1]) -- a union
		assert.are.equal(1, d.delta.text)
		assert.are.equal(3, d.delta.toolResult[1]) -- a list
		assert.are.equal(json.array_mt, d.delta.toolResult[3])
		assert.are.equal(2, d.delta.toolResult[2][1]) -- of unions
		assert.are.equal(0, d.delta.toolResult[2].json) -- a document: not read in C
		assert.are.equal(0, readers.messageStop.additionalModelResponseFields) -- a document
		assert.is_nil(readers.internalServerException) -- exceptions are not events
		local s = assert(client.stream_from_body(CONVERSE, 200, {}, ""))
		assert.are.equal(readers, s.readers)
	end)

	it("every event payload of the captures: the reader's value, and most are taken", function()
		local payloads, taken = 0, 0
		for _, f in ipairs(helper.ls(DIR)) do
			if f:match("^converse%-stream%-%-") then
				local cap = assert(json.decode(helper.read(DIR .. "/" .. f)))
				local body = cap.response.body_b64 and json.b64decode(cap.response.body_b64)
				if body and cap.response.status < 300 then
					local dec = core.decoder()
					assert(dec:feed(body))
					while true do
						local h, p = dec:next()
						if not h then break end
						local et = h[":event-type"]
						if readers[et] and p ~= "" then
							payloads = payloads + 1
							if check_read(et, p) then taken = taken + 1 end
						end
					end
				end
			end
		end
		assert.is_true(payloads >= 500, "payloads: " .. payloads)
		assert.is_true(taken >= payloads * 0.9, string.format("json_read took %d of %d", taken, payloads))
	end)

	it("crafted payloads: the reader's value or declined, and the same stream both ways", function()
		local cases = {
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcdef"}' },
			{ "contentBlockDelta", ' {"contentBlockIndex" : 3 , "delta" : { "text" : "a\\"b\\u00e9" } } ' },
			{ "contentBlockDelta", '{"contentBlockIndex":1.5,"delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":-0.0,"delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":1e300,"delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":1e999,"delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":9007199254740993,"delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":-9223372036854775808,"delta":{}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":9223372036854775808,"delta":{}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":"1","delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":{"a":1},"delta":[]}' },
			{ "contentBlockDelta", '{"contentBlockIndex":[],"delta":{"text":null}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":"text"}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":5}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":[{"text":"x"}]}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":{"a":[]}}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"a","zzz":1}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"zzz":1}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"zzz":null}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\\"a\\":"}}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[{"text":"x"}]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":null}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[ ]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":{}}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":{"text":"x"}}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[{"text":"x"},null,{}]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[[],["x"],"x",1,true]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[{"json":{"a":[]}}]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[{"zz":1}]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[{"text":"x"},]}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"reasoningContent":{"redactedContent":"QUJD"}}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"reasoningContent":{"redactedContent":"!!"}}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":0,"contentBlockIndex":null,"delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"contentBlockIndex":null,"contentBlockIndex":2,"delta":{"text":"x"}}' },
			{ "contentBlockDelta", '{"delta":{"text":"x"},"delta":{"text":"y","text":"z"}}' },
			{ "contentBlockDelta", '{"p":{"deep":[1,{"x":[]}]},"q":"a\\nb","contentBlockIndex":0}' },
			{ "contentBlockDelta", '{"c\\u006fntentBlockIndex":4}' },
			{ "contentBlockDelta", '{}' }, { "contentBlockDelta", '[]' }, { "contentBlockDelta", 'null' },
			{ "contentBlockDelta", '"x"' }, { "contentBlockDelta", '{"contentBlockIndex":0' },
			{ "contentBlockDelta", '{"contentBlockIndex":0}x' }, { "contentBlockDelta", '{"contentBlockIndex":01}' },
			{ "contentBlockDelta", '{"p":"a\tb"}' }, { "contentBlockDelta", '{"p":"\\ud800"}' },
			{ "contentBlockDelta", '{"p":nul}' }, { "contentBlockDelta", '{"contentBlockIndex":nul}' },
			{ "contentBlockDelta", '{"p":"x",}' }, { "contentBlockDelta", '{,}' },
			{ "contentBlockDelta", '{"delta":' .. string.rep('{"toolUse":', 130) .. '1' .. string.rep("}", 131) },
			{ "messageStart", '{"role":"assistant"}' }, { "messageStart", '{"role":null}' },
			{ "messageStop", '{"stopReason":"end_turn"}' },
			{ "messageStop", '{"stopReason":"end_turn","additionalModelResponseFields":{"a":[1]}}' },
			{ "messageStop", '{"stopReason":"end_turn","additionalModelResponseFields":null}' },
			{ "contentBlockStart", '{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"n"}}}' },
			{ "contentBlockStart", '{"contentBlockIndex":1,"start":{"other":{}}}' },
			{ "contentBlockStop", '{"contentBlockIndex":1}' },
			{ "metadata", '{"usage":{"inputTokens":10,"outputTokens":2.0,"totalTokens":12},"metrics":{"latencyMs":345}}' },
			{ "metadata", '{"usage":{"inputTokens":10.25,"outputTokens":-0,"totalTokens":1e2},"metrics":{"latencyMs":null}}' },
			{ "metadata", '{"usage":{"inputTokens":1},"trace":{"guardrail":{"modelOutput":["a"]}}}' },
		}
		local taken = 0
		for _, c in ipairs(cases) do
			if check_read(c[1], c[2]) then taken = taken + 1 end
			same_both_ways(CONVERSE, event_frame(c[1], c[2]))
			same_both_ways(CONVERSE, event_frame(c[1], c[2]) .. event_frame("messageStop", '{"stopReason":"x"}'))
		end
		assert.is_true(taken >= 25, "taken: " .. taken)
		-- integers as integers (Lua 5.4), unknown and null members dropped, last key wins
		local v = core.json_read('{"contentBlockIndex":2,"delta":{"text":"z","text":"y"},"p":"x"}', json.SENTINEL,
			readers.contentBlockDelta)
		assert.are.same({ contentBlockIndex = 2, delta = { text = "y" } }, v)
		if math.type then assert.are.equal("integer", math.type(v.contentBlockIndex)) end
		-- not a structure, or a union with an unknown member: declined
		assert.is_nil(core.json_read('[]', json.SENTINEL, readers.contentBlockDelta))
		assert.is_nil(core.json_read('{"delta":{"zzz":1}}', json.SENTINEL, readers.contentBlockDelta))
		assert.is_nil(core.json_read('{"delta":{"toolResult":{}}}', json.SENTINEL, readers.contentBlockDelta))
		assert.is_nil(core.json_read('{"delta":{"toolResult":[{"json":{}}]}}', json.SENTINEL,
			readers.contentBlockDelta))
		-- lists as the list reader makes them: the array metatable, nulls kept
		v = core.json_read('{"delta":{"toolResult":[{"text":"a"},null]}}', json.SENTINEL, readers.contentBlockDelta)
		assert.are.equal(json.array_mt, getmetatable(v.delta.toolResult))
		assert.are.equal(json.null, v.delta.toolResult[2])
	end)

	it("random payloads from the shapes' members: the reader's value every time", function()
		math.randomseed(78)
		local keys = { "contentBlockIndex", "delta", "text", "toolUse", "input", "p", "usage", "inputTokens",
			"outputTokens", "totalTokens", "metrics", "latencyMs", "role", "stopReason", "start", "toolUseId",
			"name", "reasoningContent", "signature", "redactedContent", "toolResult", "zz", "c\\u006fntentBlockIndex",
			"toolResult", "json", "image", "format", "citation", "location" }
		local ets = { "contentBlockDelta", "contentBlockDelta", "contentBlockDelta", "metadata", "messageStart",
			"messageStop", "contentBlockStart", "contentBlockStop" }
		local nums = { "0", "-0", "7", "-3", "1.5", "2.0", "1e2", "1e300", "-0.0", "9007199254740993", "1E-3" }
		local ws = { "", " ", "\n\t" }
		local function value(depth)
			local r = math.random(1, depth > 3 and 6 or 9)
			if r == 1 then return nums[math.random(#nums)] end
			if r == 2 then return ({ '"x"', '"a\\"b"', '"QUJD"', '""', '"é\\u00e9"' })[math.random(5)] end
			if r == 3 then return ({ "null", "true", "false" })[math.random(3)] end
			if r <= 6 then return nums[math.random(#nums)] end
			if r == 7 then
				local t = {}
				for i = 1, math.random(0, 3) do t[i] = value(depth + 1) end
				return "[" .. table.concat(t, ",") .. "]"
			end
			local t = {}
			for i = 1, math.random(0, 4) do
				t[i] = ws[math.random(#ws)] .. '"' .. keys[math.random(#keys)] .. '"' .. ws[math.random(#ws)] .. ":" ..
					value(depth + 1)
			end
			return "{" .. table.concat(t, ",") .. "}"
		end
		local taken = 0
		for _ = 1, 3000 do
			local t = {}
			for i = 1, math.random(0, 4) do t[i] = '"' .. keys[math.random(#keys)] .. '":' .. value(0) end
			local p = "{" .. table.concat(t, ",") .. "}"
			if check_read(ets[math.random(#ets)], p) then taken = taken + 1 end
		end
		assert.is_true(taken >= 300, "taken: " .. taken)
	end)
end)

-- Whole response bodies read by the output's shape in C (response.parse): the value
-- output.read gives over json.decode_raw's, or declined.
describe("response bodies read by their shape in the C decoder #core", function()
	local shapes = require "bedrock.shapes"

	local function check_body(plan, body)
		local desc = shapes.reader_desc(plan.output)
		local v, ok = core.json_read(body, json.SENTINEL, desc)
		if not ok then return false end
		local d = json.decode_raw(body)
		assert(type(d) == "table", "json_read took what is not a JSON object")
		local rok, r = pcall(plan.output.read, d)
		assert(rok, "json_read took what the reader refuses: " .. body:sub(1, 200))
		assert(same_value(v, r), "different values for " .. plan.name .. " " .. body:sub(1, 200))
		return true
	end

	it("every capture's response body, read as every operation's output: the reader's value", function()
		local bodies, converse, taken = 0, 0, 0
		for _, f in ipairs(helper.ls(DIR)) do
			local op = f:match("^(.-)%-%-")
			if op and not f:match("stream") and f:match("%.json$") then
				local cap = assert(json.decode(helper.read(DIR .. "/" .. f)))
				local resp = cap.response
				local body = resp.body_text or (type(resp.body) == "table" and json.encode(resp.body)) or
					(resp.body_b64 and json.b64decode(resp.body_b64))
				if type(body) == "string" and body:match("^%s*{") then
					bodies = bodies + 1
					for _, plan in pairs(operations.plans) do
						if plan.output and plan.output.kind == "structure" and not plan.output_stream then
							local ok = check_body(plan, body)
							if plan.name == "Converse" and op == "converse" and resp.status < 300 then
								converse = converse + 1
								if ok then taken = taken + 1 end
							end
						end
					end
				end
			end
		end
		assert.is_true(bodies >= 200, "bodies: " .. bodies)
		assert.is_true(converse >= 100, "Converse answers: " .. converse)
		assert.is_true(taken >= converse * 0.5, string.format("json_read took %d of %d Converse answers", taken, converse))
	end)

	it("a client's Converse answer is the same with and without it", function()
		local body = '{"output":{"message":{"role":"assistant","content":[{"text":"Hi"},null,{"text":"x"}]}},' ..
			'"stopReason":"end_turn","usage":{"inputTokens":3,"outputTokens":1.0,"totalTokens":4},' ..
			'"metrics":{"latencyMs":12},"p":"pad"}'
		local plan = operations.plans.Converse
		assert.is_true(check_body(plan, body))
		local response = require "bedrock.response"
		local a = assert(response.parse(plan, 200, {}, body))
		local saved = plan.output_desc
		plan.output_desc = false -- the general path
		local b = assert(response.parse(plan, 200, {}, body))
		plan.output_desc = saved
		assert.is_true(same_value(a, b))
		if math.type then assert.are.equal("integer", math.type(a.usage.outputTokens)) end
	end)
end)

-- Long streams: the text kept for collect() is appended to one buffer as it comes, and
-- collect() still gives every delta, in order, after any amount of iteration.
describe("collect over long streams", function()
	local function event_frame(et, payload)
		return assert(core.encode({ [":message-type"] = "event", [":event-type"] = et,
			[":content-type"] = "application/json" }, payload))
	end

	local function long_stream(n)
		local frames, want = { event_frame("messageStart", '{"role":"assistant"}') }, {}
		for i = 1, n do
			local t = (i % 7 == 0) and ("é\\n" .. i) or ("w" .. i .. " ")
			want[#want + 1] = (i % 7 == 0) and ("é\n" .. i) or ("w" .. i .. " ")
			frames[#frames + 1] = event_frame("contentBlockDelta",
				'{"contentBlockIndex":0,"delta":{"text":"' .. t .. '"},"p":"pad"}')
		end
		frames[#frames + 1] = event_frame("contentBlockStop", '{"contentBlockIndex":0}')
		frames[#frames + 1] = event_frame("messageStop", '{"stopReason":"end_turn"}')
		return table.concat(frames), table.concat(want)
	end

	it("every delta, in order, whatever was taken before collect()", function()
		local body, want = long_stream(5000)
		for _, taken in ipairs{ 0, 1, 2, 256, 257, 258, 1000, 4999, 5001, 5003 } do
			local s = assert(client.stream_from_body(CONVERSE, 200, {}, body, 4096))
			for _ = 1, taken do assert(s()) end
			local out = s:collect()
			assert.are.equal(want, out.output.message.content[1].text, "taken " .. taken)
			assert.are.equal("end_turn", out.stopReason)
		end
	end)

	it("keeps a block's text in one buffer while the stream runs, no string per delta", function()
		local body, want = long_stream(20000)
		local s = assert(client.stream_from_body(CONVERSE, 200, {}, body, 65536))
		local last = 0
		for _ = 1, 20001 do
			assert(s())
			local tp = s.acc.blocks[0] and s.acc.blocks[0].text_parts
			if tp then
				assert.are_not.equal("table", type(tp))
				assert.is_true(#tp >= last)
				last = #tp
			end
		end
		assert.are.equal(#want, last)
		assert.are.equal(want, s:collect().output.message.content[1].text)
	end)
end)

-- Stream events are taken in batches: the decoder reads every whole event it holds onto
-- its tape at once, and the values are built from it, under LuaJIT through the FFI
-- (jit_events.lua), else through the Lua C API (dec:take). The same streams must give the
-- same events and the same errors both ways, as the Lua C API one message at a time
-- (dec:next with readers) and as the general path (a decoder that only hands out payload
-- strings), however the bytes are sliced: messages that straddle slices, messages a batch
-- declines (held for dec:next), exceptions and framing errors after events of the same
-- batch.
describe("stream events in batches #core", function()
	local jit_events = require "bedrock.jit_events"
	local has_jit = jit_events.reader({}) ~= nil

	local function frame(et, payload, mt)
		return assert(core.encode({ [":message-type"] = mt or "event", [":event-type"] = et,
			[":content-type"] = "application/json" }, payload))
	end

	-- how: "batch" (the default: the FFI under LuaJIT), "take" (dec:take), "next"
	-- (dec:next, one message at a time), "plain" (payload strings only)
	local function read_with(body, slice, how)
		local s = assert(client.stream_from_body(CONVERSE, 200, {}, body, slice))
		if how == "take" then
			s.jit = nil
		elseif how == "next" then
			s.batch = nil
		elseif how == "plain" then
			s.batch = nil
			s.decoder = plain_decoder(s.decoder)
		end
		s.final_event = nil
		local events = {}
		local ok, err = pcall(function()
			for ev in s do events[#events + 1] = ev end
		end)
		if not ok then err = type(err) == "table" and (err.code .. ": " .. err.message) or tostring(err) end
		return events, not ok and err or nil, s
	end

	-- Reads body every way with each slice size; returns the events the batches took,
	-- the default way and through dec:take.
	local function all_ways(body, slices)
		local batched, took = 0, 0
		for _, slice in ipairs(slices) do
			local a, ea, sa = read_with(body, slice, "batch")
			local t, et, st = read_with(body, slice, "take")
			local b, eb = read_with(body, slice, "next")
			local c, ec = read_with(body, slice, "plain")
			batched, took = batched + (sa.batched or 0), took + (st.batched or 0)
			for _, other in ipairs{ { t, et, "dec:take" }, { b, eb, "dec:next" }, { c, ec, "the general path" } } do
				assert.are.equal(other[2], ea, other[3])
				assert.are.equal(#other[1], #a, other[3])
				for i = 1, #a do
					assert(same_value(a[i], other[1][i]), "event " .. i .. " differs from " .. other[3] ..
						", slice " .. slice)
				end
			end
		end
		return batched, took
	end

	local PAYLOADS = {
		{ "messageStart", '{"role":"assistant"}' },
		{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcdef"}' },
		{ "contentBlockDelta", ' {"contentBlockIndex" : 3 , "delta" : { "text" : "a\\"b\\u00e9\\ud83d\\ude00\\n" } } ' },
		{ "contentBlockDelta", '{"c\\u006fntentBlockIndex":4,"delta":{"text":"\\\\x"}}' },
		{ "contentBlockDelta", '{"contentBlockIndex":1.5,"delta":{"text":"x"},"zz":[[],{},null,"\\t"]}' },
		{ "contentBlockDelta", '{"contentBlockIndex":0,"contentBlockIndex":null,"delta":{"text":"x"}}' },
		{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[{"text":"x"},null,{}]}}' },
		{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[]}}' },
		{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolResult":[{"json":{"a":[]}}]}}' }, -- declined
		{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"zzz":1}}' }, -- declined (union)
		{ "contentBlockDelta", '{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\\"a\\":"}}}' },
		{ "unknownEvent", '{"x":1}' }, -- skipped
		{ "contentBlockStart", '{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"n"}}}' },
		{ "contentBlockStop", '{"contentBlockIndex":1}' },
		{ "messageStop", '{"stopReason":"end_turn","additionalModelResponseFields":{"a":[1]}}' }, -- declined
		{ "metadata", '{"usage":{"inputTokens":10,"outputTokens":2.0,"totalTokens":12},"metrics":{"latencyMs":345}}' },
	}

	it("give what the other paths give, sliced every way, and take most events", function()
		local parts = {}
		for r = 1, 20 do
			for i, c in ipairs(PAYLOADS) do
				parts[#parts + 1] = frame(c[1], (c[2]:gsub('"Hi"', '"Hi ' .. r .. "." .. i .. '"')))
			end
		end
		local body = table.concat(parts)
		local batched, took = all_ways(body, { 1, 7, 64, 333, 4096, 65536, #body })
		-- 320 events a way, 13 of every 16 taken by the batches (fewer when one slice
		-- holds less than a message)
		assert.is_true(batched >= 5 * 200, "events taken by the batches: " .. batched)
		assert.is_true(took >= 5 * 200, "events taken by dec:take: " .. took)
		assert.are.equal(has_jit, (jit_events.taken or 0) > 0)
	end)

	it("an exception, a framing error or a truncated message after events of the same batch", function()
		local ok1 = frame("contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"a"}}')
		local ok2 = frame("contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"b"}}')
		local exc = assert(core.encode({ [":message-type"] = "exception",
			[":exception-type"] = "modelStreamErrorException", [":content-type"] = "application/json" },
			'{"message":"boom"}'))
		local bad = ok2:sub(1, -2) .. string.char((ok2:byte(-1) + 1) % 256) -- message CRC
		for _, body in ipairs{
			ok1 .. ok2 .. exc .. ok1,
			ok1 .. ok2 .. bad .. ok1,
			ok1 .. ok2 .. ok1:sub(1, 20),
			ok1 .. ok2 .. "\0\0\0\5" .. ok1,
		} do
			all_ways(body, { 1, 5, 100, #body })
			local events, err = read_with(body, #body, "jit")
			assert.are.equal(2, #events)
			assert.is_string(err)
		end
	end)

	it("every ConverseStream capture, sliced three ways", function()
		local n = 0
		for _, f in ipairs(helper.ls(DIR)) do
			if f:match("^converse%-stream%-%-") then
				local cap = assert(json.decode(helper.read(DIR .. "/" .. f)))
				local body = cap.response.body_b64 and json.b64decode(cap.response.body_b64)
				if body and cap.response.status < 300 then
					all_ways(body, { 3, 200, #body })
					n = n + 1
				end
			end
		end
		assert.is_true(n >= 20, "captures: " .. n)
	end)
end)
