-- `make demo` is the first thing a newcomer runs: the tour must run, show each part with
-- its figures, and end by itself in well under a minute (under the Lua running the specs).
local helper = require "spec.helper"

describe("make demo (.ci/run-demo)", function()
	it("shows a streaming chat, a Lua tool, several streams at once and the figures, and ends", function()
		if os.getenv("BEDROCK_BUILD") then
			pending("the demo runs the ordinary build (not the sanitizer or valgrind runs)")
			return
		end
		if not helper.exists("build/bin/bedrock-emulator") then
			pending("needs build/bin/bedrock-emulator (make)")
			return
		end
		local p = assert(io.popen("env DEMO_LUA=" .. helper.lua_name ..
			" timeout 60 .ci/run-demo </dev/null 2>&1; echo \"rc=$?\""))
		local out = p:read("*a")
		p:close()
		assert.matches("rc=0%s*$", out)
		assert.matches("demo: done", out, 1, true)
		-- 1. the chat streams the answers, with time to first token and events/s
		assert.matches("assistant> You said: Hello there, who are you?", out, 1, true)
		local ttft, events, secs, rate = out:match("first token after (%d+%.%d+) s, (%d+) events in (%d+%.%d+) s %((%d+) events/s%)")
		assert(ttft, out)
		assert.is_true(tonumber(ttft) > 0 and tonumber(events) > 5 and tonumber(rate) > 0 and tonumber(secs) > 0)
		-- 2. the model asks for the tool, a Lua function answers, the model uses the answer
		assert.matches('model asks: get_weather {"city":"Lisbon"}', out, 1, true)
		assert.matches("Lua answers: ", out, 1, true)
		assert.matches("assistant> The tool get_weather returned: {", out, 1, true)
		assert.matches("%[2 model calls, %d+ tokens in all%]", out)
		-- 3. streams at once beat the same streams one after the other
		local n = 0
		for _ in out:gmatch("stream %d %(%d+ events, first token after %d+%.%d+ s%): You said: Stream number") do n = n + 1 end
		assert.equal(4, n)
		local seq, par = out:match("one after the other: %d+ events in (%d+%.%d+) s; at once: %d+ events in (%d+%.%d+) s")
		assert(seq, out)
		-- paced at 25 ms an event, 4 x 19 events: about 2 s one after the other, 0.5 s at once
		assert.is_true(tonumber(par) * 1.3 < tonumber(seq), out)
		local many, many_events = out:match("%[(%d+) streams at once: (%d+) events in")
		assert.equal("50", many)
		assert.is_true(tonumber(many_events) >= 50 * 5, out)
		-- 4. the long unpaced stream
		local big = out:match("%[first token after %d+%.%d+ s, (%d+) events in [%d.]+ s %(%d+ events/s%)%]\n\ndemo: done")
		assert.equal("20004", big)
	end)
end)
