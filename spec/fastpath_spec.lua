-- The hot paths that the C core takes for speed must give exactly what the general path
-- gives:
--   * JSON string escaping (core.json_escape / core.json_quote behind json.escape and
--     json.quote) against the escaping rule written out in Lua, over every byte value
--     and random strings;
--   * blob events (InvokeModelWithResponseStream chunks) that the decoder base64-decodes
--     itself (dec:next(blobs)) against the general path (payload string, cjson, the
--     shape's reader), over every capture in spec/fixtures/vectors/captures and over
--     crafted and random payloads, errors included.
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

-- All events of a stream over `body` (or the error it raises), with the decoder's blob
-- path on (the default) or off.
local function read_all(plan, body, blobs_on, slice)
	local s = assert(client.stream_from_body(plan, 200, {}, body, slice))
	if not blobs_on then s.blobs = nil end
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

-- How many messages of body the decoder hands out as decoded blobs.
local function blob_hits(plan, body)
	local blobs = stream.blob_events[plan.output_stream]
	local dec = core.decoder()
	assert(dec:feed(body))
	local hits = 0
	while true do
		local h, _, key = dec:next(blobs)
		if not h then break end
		if key then hits = hits + 1 end
	end
	return hits
end

describe("JSON escaping in the C core", function()
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

describe("blob events decoded by the decoder", function()
	it("knows InvokeModelWithResponseStream's chunk and nothing of ConverseStream", function()
		assert.are.same({ chunk = "bytes" }, stream.blob_events[INVOKE.output_stream])
		assert.are.same({}, stream.blob_events[CONVERSE.output_stream])
	end)

	it("every capture's stream gives the same events, or the same error, both ways", function()
		local files, streams, hits = helper.ls(DIR), 0, 0
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
					if plan == INVOKE then hits = hits + blob_hits(plan, body) end
				end
			end
		end
		assert.is_true(streams >= 60, "streams: " .. streams)
		assert.is_true(hits >= 31, "chunks decoded by the decoder: " .. hits)
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
		assert.is_nil(err) -- (the last value wins: valid)
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
