-- The event-stream decoder against real service traffic: every binary stream in
-- spec/fixtures/vectors/captures/ (ConverseStream and InvokeModelWithResponseStream) must
-- decode exactly as botocore did. The capture files record botocore's frame walk
-- (`frames`: offset, lengths, CRCs, typed headers) and its parse (`decoded`).
local helper = require "spec.helper"
local core = require "bedrock.core"
local cjson = require "cjson"

local DIR = helper.vectors .. "/captures"
local SLOW = os.getenv("BEDROCK_VALGRIND") == "1"

local unb64 = core.b64decode

-- botocore's header type names in `frames` (only "string" occurs in these captures).
local TYPES = { bool_true = 0, bool_false = 1, byte = 2, short = 3, integer = 4, long = 5,
	byte_array = 6, string = 7, timestamp = 8, uuid = 9 }

-- Park-Miller generator for the random slicing (deterministic on 5.4 and LuaJIT).
local function prng(seed)
	local x = seed
	return function(n)
		x = (16807 * x) % 2147483647
		return x % n
	end
end

-- Feeds `chunks` in order and returns every frame (next_frame), failing on any error.
local function decode(chunks)
	local dec, frames = core.decoder(), {}
	for _, c in ipairs(chunks) do
		assert(dec:feed(c))
		while true do
			local f, msg, code = dec:next_frame()
			if not f then
				assert(msg == nil, tostring(code) .. ": " .. tostring(msg))
				break
			end
			frames[#frames + 1] = f
		end
	end
	assert.are.equal(0, dec:pending())
	assert.is_true(dec:finish())
	return frames
end

local function slices(s, sizer)
	local t, pos = {}, 1
	while pos <= #s do
		local n = sizer()
		t[#t + 1] = s:sub(pos, pos + n - 1)
		pos = pos + n
	end
	return t
end

-- botocore drops members the model does not know (e.g. "p"), so everything it kept must
-- be in our payload with the same value; lists must have the same length.
local function contains(actual, expected, path)
	if type(expected) ~= "table" then
		assert(actual == expected, path .. ": expected " .. tostring(expected) .. ", got " .. tostring(actual))
		return
	end
	assert(type(actual) == "table", path .. ": expected a table, got " .. type(actual))
	if #expected > 0 then
		assert(#actual == #expected, path .. ": list length " .. #actual .. " ~= " .. #expected)
	end
	for k, v in pairs(expected) do
		contains(actual[k], v, path .. "." .. tostring(k))
	end
end

local captures = {}
for _, name in ipairs(helper.ls(DIR)) do
	if name:match("%.json$") and name ~= "index.json" then
		local text = helper.read(DIR .. "/" .. name)
		if text:find('"body_b64"', 1, true) then captures[#captures + 1] = name end
	end
end

describe("captured service streams #core", function()
	it("finds the 62 binary streams", function()
		assert.are.equal(62, #captures)
	end)

	for ci, name in ipairs(captures) do
		it(name, function()
			local doc = cjson.decode(helper.read(DIR .. "/" .. name))
			local body = unb64(doc.response.body_b64)
			assert.are.equal(doc.response.body_length, #body)

			local whole = decode({ body })
			assert.are.equal(#doc.frames, #whole)
			local offset = 0
			for i, want in ipairs(doc.frames) do
				local f = whole[i]
				assert.are.equal(want[1], offset)
				assert.are.equal(want[2], f.total_length)
				assert.are.equal(want[3], f.headers_length)
				assert.are.equal(want[4], f.prelude_crc)
				assert.are.equal(want[5], f.message_crc)
				assert.are.equal(#want[6], #f.headers)
				for j, h in ipairs(want[6]) do
					assert.are.same({ h[1], assert(TYPES[h[2]], h[2]), h[3] }, f.headers[j])
				end
				local o = want[1]
				assert.are.equal(body:sub(o + 12 + want[3] + 1, o + want[2] - 4), f.payload)
				offset = offset + f.total_length
			end
			assert.are.equal(#body, offset)

			-- Split anywhere: byte by byte, in 7- and 13-byte pieces, in random slices.
			-- Under valgrind (make valgrind) the tiny-slice passes run for every 8th file.
			local r = prng(1000 + ci)
			local sizers = { function() return 1 + r(600) end }
			if not SLOW or ci % 8 == 1 then
				sizers[#sizers + 1] = function() return 1 end
				sizers[#sizers + 1] = function() return 7 end
				sizers[#sizers + 1] = function() return 13 end
				sizers[#sizers + 1] = function() return 1 + r(5) end
			end
			for _, sizer in ipairs(sizers) do
				local got = decode(slices(body, sizer))
				assert.are.equal(#whole, #got)
				for i = 1, #whole do assert.are.same(whole[i], got[i]) end
			end

			-- The events botocore yielded, from our frames.
			local events = doc.operation == "ConverseStream" and doc.decoded.stream or doc.decoded.body
			assert.is_table(events)
			assert.are.equal(#whole, #events)
			local dec = core.decoder()
			dec:feed(body)
			for i, ev in ipairs(events) do
				local h, payload = dec:next()
				assert.are.equal("event", h[":message-type"])
				assert.are.equal("application/json", h[":content-type"])
				local etype = h[":event-type"]
				local k = next(ev)
				assert.are.equal(k, etype)
				local data = cjson.decode(payload)
				if doc.operation == "ConverseStream" then
					contains(data, ev[k], name .. " event " .. i .. " " .. etype)
				else
					assert.are.equal("chunk", etype)
					assert.are.equal(ev.chunk.bytes, data.bytes)
					assert.is_string(unb64(data.bytes))
				end
			end
			assert.is_nil(dec:next())
		end)
	end
end)
