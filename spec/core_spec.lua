-- bedrock.core's own small functions (the signer, codec and transport have their specs).
local helper = require "spec.helper"
local core = require "bedrock.core"

local function now_ns()
	local p = assert(io.popen("date +%s%N"))
	local s = p:read("*l")
	p:close()
	return tonumber(s)
end

describe("core #core", function()
	it("has a version", function()
		assert.matches("^%d+%.%d+%.%d+$", core._VERSION)
		assert.is_string(helper.build)
	end)

	it("sleep blocks for at least the time asked", function()
		local t0 = now_ns()
		core.sleep(0.12)
		local dt = (now_ns() - t0) / 1e9
		assert.is_true(dt >= 0.12, "slept only " .. dt .. " s")
		core.sleep(0)
	end)

	it("sleep refuses bad arguments", function()
		assert.has_error(function() core.sleep(-1) end)
		assert.has_error(function() core.sleep("x") end)
		assert.has_error(function() core.sleep(1e9) end)
	end)

	it("the retry policy's default sleep uses it", function()
		local retry = require "bedrock.retry"
		local t0 = now_ns()
		retry.default_sleep(0.05)
		assert.is_true((now_ns() - t0) / 1e9 >= 0.05)
	end)

	describe("buffer", function()
		it("appends strings and numbers, and gives them back as one string", function()
			local b = core.buffer()
			assert.are.equal("", b:tostring())
			assert.are.equal("", b:put(""):tostring()) -- (nothing to copy, no memory yet)
			assert.are.equal(0, #b)
			assert.are.equal(b, b:put("ab", "", "c"))
			b:put(12):put("\0z")
			assert.are.equal("abc12\0z", b:tostring())
			assert.are.equal(7, #b)
			assert.are.equal("abc12\0z", tostring(b))
			assert.are.equal(b, b:reset())
			assert.are.equal("", b:tostring())
			b:put("again")
			assert.are.equal("again", b:tostring())
		end)

		it("grows past many doublings without losing a byte", function()
			local b, parts = core.buffer(), {}
			for i = 1, 20000 do
				local piece = string.rep(string.char(65 + i % 26), i % 97)
				parts[i] = piece
				b:put(piece)
			end
			local want = table.concat(parts)
			assert.are.equal(#want, #b)
			assert.are.equal(want, b:tostring())
		end)

		it("refuses what is not a string, keeping what it had", function()
			local b = core.buffer():put("kept")
			local ok, err = pcall(b.put, b, "x", {})
			assert.is_false(ok)
			assert.matches("string expected", tostring(err))
			-- (the arguments before the bad one were appended, as string.buffer does)
			assert.are.equal("keptx", b:tostring())
			assert.is_false((pcall(b.put, "not a buffer", "x")))
			assert.is_false((pcall(b.tostring, {})))
		end)
	end)

	describe("base64", function()
		it("encodes the RFC 4648 vectors and decodes them back", function()
			local v = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
				fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
			for plain, coded in pairs(v) do
				assert.equal(coded, core.b64encode(plain))
				assert.equal(plain, core.b64decode(coded))
			end
		end)

		it("round-trips every byte value and every length up to 300", function()
			local bytes = {}
			for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
			local all = table.concat(bytes)
			for n = 0, 300 do
				local s = (all .. all):sub(1, n)
				assert.equal(s, core.b64decode(core.b64encode(s)))
			end
		end)

		it("accepts missing padding, as the service's JSON sometimes has", function()
			assert.equal("foob", core.b64decode("Zm9vYg"))
			assert.equal("fo", core.b64decode("Zm8"))
		end)

		it("refuses bad text, naming where, and never returns partial bytes", function()
			for _, bad in ipairs{ "Zm9v!mFy", "Zm9vY", "Zg=", "Zm9v Zg==", "Z===", "Zm9v\n" } do
				local out, msg, code = core.b64decode(bad)
				assert.is_nil(out, bad)
				assert.matches("invalid base64 at offset %d+", msg)
				assert.equal("BAD_BASE64", code)
			end
			local _, msg = core.b64decode("Zm9v!mFy")
			assert.matches("offset 4$", msg)
			assert.has_error(function() core.b64encode({}) end)
		end)
	end)
end)
