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
end)
