-- The C reader's member matching (core.json_read, csrc/br_jtape.c): a key names a member
-- of the shape's structure when it is that name byte for byte, and never else, whatever
-- the name's length (the reader compares lengths and words of the names before any byte)
-- and however the key is written (escaped keys are decoded first). The reference is the
-- rule itself: the decoded object with the members the shape does not know left out.
local helper = require "spec.helper" -- luacheck: ignore 211
local json = require "bedrock.json"
local core = require "bedrock.core"

-- Names of every length from 0 to 40, each with near misses: one byte changed at the
-- places where the reader's words of a name begin and end, and the name one byte longer
-- or shorter. Half of the near misses are members too, the others are not.
local ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO"
local names, members = {}, {}
local function add(name, member)
	if names[name] == nil then
		names[#names + 1] = name
		names[name] = member
		if member then members[#members + 1] = name end
	end
end
for len = 0, 40 do
	local base = ALPHA:sub(1, len)
	add(base, true)
	local flip = true
	for _, at in ipairs{ 1, 2, 4, 5, 8, 9, 16, 17, math.floor(len / 2) + 1, len - 8, len - 7, len - 3, len } do
		if at >= 1 and at <= len then
			add(base:sub(1, at - 1) .. "_" .. base:sub(at + 1), flip)
			flip = not flip
		end
	end
	add(base .. "\0", len % 2 == 0)
end
add("caf\195\169", true)
add("k\"ey\\", true)

-- A key as JSON: plain (escaped where it must be), or every ASCII byte as \u00XX.
local function key_json(name, escape_all)
	if escape_all then
		return '"' .. name:gsub("[%z\1-\127]", function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
	end
	return json.quote(name)
end

describe("json_read member names", function()
	local desc = { 1 }
	for _, name in ipairs(members) do desc[name] = 1 end

	it("a key takes its own member only, at every length", function()
		assert.is_true(#names > 400)
		for i, name in ipairs(names) do
			for _, escape_all in ipairs{ false, true } do
				local text = "{" .. key_json(name, escape_all) .. ":" .. i .. "}"
				local v, ok = core.json_read(text, json.SENTINEL, desc)
				assert(ok, "not taken: " .. text)
				local want = {}
				if names[name] then want[name] = i end
				assert.are.same(want, v, text)
			end
		end
	end)

	it("many keys in one object: each to its member, the others left out", function()
		math.randomseed(11)
		for _ = 1, 200 do
			local parts, want = {}, {}
			for j = 1, math.random(1, 12) do
				local name = names[math.random(#names)]
				parts[#parts + 1] = key_json(name, math.random(4) == 1) .. ":" .. j
				if names[name] then want[name] = j end
			end
			local text = "{" .. table.concat(parts, ",") .. "}"
			local v, ok = core.json_read(text, json.SENTINEL, desc)
			assert(ok, "not taken: " .. text)
			assert.are.same(want, v, text)
		end
	end)
end)
