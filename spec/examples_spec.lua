-- The async and tool examples run as real processes against the emulator, under the Lua
-- running the specs.
local helper = require "spec.helper"

-- Every program in examples/ runs in `make test`, so that none can rot: each file is run
-- by a spec (its path appears in one) or by the demo script a spec runs (.ci/run-demo);
-- each directory by a spec naming it. (This file names no example outside its tests.)
describe("examples/", function()
	it("are each run by a spec", function()
		local runners = { ".ci/run-demo" }
		for _, name in ipairs(helper.ls("spec")) do
			if name:find("%.lua$") then runners[#runners + 1] = "spec/" .. name end
		end
		local text = {}
		for _, f in ipairs(runners) do text[#text + 1] = helper.read(f) end
		text = table.concat(text, "\n")
		local missing = {}
		for _, name in ipairs(helper.ls("examples")) do
			local path = "examples/" .. name
			if not name:find("^%.") and not text:find(path, 1, true) then missing[#missing + 1] = path end
		end
		assert(#missing == 0, "not run by any spec: " .. table.concat(missing, ", "))
	end)
end)

if not helper.exists(helper.emulator_bin) then
	describe("examples", function() pending("needs build/bin/bedrock-emulator (make all)") end)
	return
end

local has_luv = pcall(require, "luv")

describe("examples against the emulator", function()
	local em

	setup(function() em = helper.emulator({ "--no-auth", "--event-delay", "20" }) end)
	teardown(function() if em then em.stop() end end)

	local function run(file, extra_env)
		local env = {
			"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" .. em.url, "AWS_ACCESS_KEY_ID=AKID",
			"AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1",
			"LUA_PATH=" .. helper.shell_quote("./lua/?.lua;./lua/?/init.lua;;"),
			"LUA_CPATH=" .. helper.shell_quote("./" .. helper.build .. "/?.so;;"),
		}
		for _, e in ipairs(extra_env or {}) do env[#env + 1] = e end
		local cmd = "env -u AWS_PROFILE -u AWS_BEARER_TOKEN_BEDROCK " .. table.concat(env, " ") .. " timeout 60 "
			.. helper.lua_cmd .. " " .. file .. " 2>&1; echo \"exit=$?\""
		local p = assert(io.popen(cmd))
		local out = p:read("*a")
		p:close()
		return out
	end

	it("game_loop.lua streams three chats while the frame loop runs", function()
		local out = run("examples/game_loop.lua")
		assert.matches("exit=0", out)
		assert.matches("chat 1: You said: Tell me about dragons", out, 1, true)
		assert.matches("chat 3: You said: What is a frame loop", out, 1, true)
		local frames = tonumber(out:match("(%d+) frames, longest step"))
		assert.is_true(frames and frames > 3, out)
	end)

	it("tools.lua runs a loop with two tools", function()
		local out = run("examples/tools.lua")
		assert.matches("exit=0", out)
		assert.matches("answer after 2 model calls", out, 1, true)
		assert.matches('The tool convert returned: 39.2 F', out, 1, true)
	end)

	if has_luv then
		it("luv.lua waits in libuv on the scheduler's sockets and timeout", function()
			local out = run("examples/luv.lua")
			assert.matches("exit=0", out)
			assert.matches("chat 2: You said: chat number 2", out, 1, true)
			local steps = tonumber(out:match("(%d+) scheduler steps"))
			-- event driven: a few steps per event (3 streams x 8 events), not a busy loop
			assert.is_true(steps and steps < 200, out)
		end)
	else
		pending("luv.lua needs lua-luv (.ci/install-deps)")
	end
end)
