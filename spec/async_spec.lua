-- bedrock.async against a real bedrock-emulator: many calls in one Lua state.
local helper = require "spec.helper"
local bedrock = require "bedrock"
local async = require "bedrock.async"
local core = require "bedrock.core"

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
local clock = core.monotonic

if not helper.exists(helper.emulator_bin) then
	describe("bedrock.async", function() pending("needs build/bin/bedrock-emulator (make all)") end)
	return
end

local T = require "bedrock.transport.curl"

local function user(text) return { { role = "user", content = { { text = text } } } } end

-- Drives the scheduler until no task is left, within a bound; returns the longest step.
local function pump(bound_s)
	local t0, longest = clock(), 0
	while async.count() > 0 do
		local a = clock()
		async.step(0)
		local d = clock() - a
		if d > longest then longest = d end
		assert(clock() - t0 < bound_s, "tasks did not finish within " .. bound_s .. " s")
	end
	return longest
end

describe("bedrock.async", function()
	local em, admin

	local function control(method, what)
		local res = assert(admin:request{ method = method, url = em.url .. "/_emulator/" .. what,
			headers = { { "x-emulator-admin", "1" } }, body = method == "POST" and "" or nil })
		assert.equal(200, res.status, res.body)
	end

	local function client(extra)
		local o = { region = "us-east-1", endpoint = em.url,
			credentials = { access_key_id = "AKID", secret_access_key = "secret" },
			getenv = function() return nil end }
		for k, v in pairs(extra or {}) do o[k] = v end
		return assert(bedrock.client(o))
	end

	setup(function()
		em = helper.emulator({ "--no-auth", "--async-ms", "0" })
		admin = T.new{}
	end)
	teardown(function()
		if admin then admin:close() end
		if em then em.stop() end
	end)
	after_each(function()
		control("POST", "reset")
		assert.equal(0, async.count(), "a spec left tasks behind")
	end)

	it("run returns the task's results and raises its error with the task's traceback", function()
		assert.same({ 1, "two" }, { async.run(function(a, b) return a, b end, 1, "two") })
		local ok, e = pcall(async.run, function() error("boom") end)
		assert.is_false(ok)
		assert.matches("boom", e)
		assert.matches("task traceback", e)
		local c = client()
		local r = async.run(function() return c:converse{ modelId = MODEL, messages = user("hi") } end)
		assert.equal("You said: hi", r.output.message.content[1].text)
	end)

	it("runs 100 ConverseStream calls at once: the time of the slowest, every event counted", function()
		control("POST", "pacing?ms=40")
		local c = client()
		local one = clock()
		async.run(function()
			for _ in assert(c:converse_stream{ modelId = MODEL, messages = user("a b c d e f") }) do end
		end)
		one = clock() - one
		local counts, t0 = {}, clock()
		local tasks = {}
		for i = 1, 100 do
			tasks[i] = async.spawn(function()
				local n = 0
				for _ in assert(c:converse_stream{ modelId = MODEL, messages = user("a b c d e f") }) do n = n + 1 end
				counts[i] = n
			end)
		end
		for _, t in ipairs(tasks) do t:await() end
		local all = clock() - t0
		for i = 1, 100 do assert.equal(12, counts[i], "events of stream " .. i) end
		-- the sum would be 100 x one (about 50 s); allow a loaded machine plenty
		assert.is_true(all < one * 10 + 3, ("100 streams took %.2f s, one %.2f s"):format(all, one))
	end)

	it("step(0) never blocks while transfers are in flight", function()
		control("POST", "pacing?ms=600")
		local c = client()
		local seen = 0
		for _ = 1, 5 do
			async.spawn(function()
				for _ in assert(c:converse_stream{ modelId = MODEL, messages = user("x y") }) do seen = seen + 1 end
			end)
		end
		async.step(0) -- starts the tasks (builds and signs the requests)
		local longest = pump(30)
		assert.equal(5 * 8, seen)
		-- a blocking step would take a whole pacing delay (600 ms); a loaded machine may
		-- deschedule the process for a while, hence the margin
		assert.is_true(longest < 0.4, ("longest step %.3f s"):format(longest))
	end)

	it("step(ms) waits at most ms and reports the live tasks", function()
		local t = async.spawn(function() async.sleep(0.5) return "slept" end)
		local a = clock()
		assert.equal(1, async.step(50))
		assert.is_true(clock() - a < 0.4)
		assert.equal("slept", t:await())
		assert.equal(0, async.step(0))
	end)

	it("exposes the sockets and the next timeout for a host loop", function()
		control("POST", "pacing?ms=200")
		local c = client()
		local t = async.spawn(function()
			for _ in assert(c:converse_stream{ modelId = MODEL, messages = user("x") }) do end
		end)
		local fds
		for _ = 1, 200 do
			async.step(5)
			fds = async.fds()
			if #fds > 0 then break end
		end
		assert.is_true(#fds > 0)
		for _, p in ipairs(fds) do
			assert.is_number(p[1])
			assert.is_true(p[2] == "r" or p[2] == "w" or p[2] == "rw")
		end
		local to = async.timeout()
		assert.is_true(to == nil or (type(to) == "number" and to >= 0))
		t:await()
		assert.same({}, async.fds())
	end)

	it("pollfd/events/timeout: one descriptor a host loop can wait on (cqueues' protocol)", function()
		local has_uv, uv = pcall(require, "luv")
		local fd = assert(async.pollfd())
		assert.is_number(fd)
		assert.equal("r", async.events())
		if not has_uv then return pending("the wait itself needs lua-luv") end
		control("POST", "pacing?ms=50")
		local c = client()
		local n, steps = 0, 0
		async.spawn(function()
			for _ in assert(c:converse_stream{ modelId = MODEL, messages = user("a b c") }) do n = n + 1 end
		end)
		local p, timer = uv.new_poll(fd), uv.new_timer()
		local function wake_up()
			steps = steps + 1
			if async.step(0) == 0 then p:close(); timer:close(); return end
			timer:stop()
			local t = async.timeout()
			if t then timer:start(math.ceil(t * 1000), 0, wake_up) end
		end
		p:start("r", wake_up)
		wake_up()
		uv.run()
		assert.equal(9, n)
		assert.is_true(steps < 100, "steps: " .. steps) -- woken by the fd, not spinning
	end)

	it("cancel closes the task's transfer and its await raises Cancelled; others go on", function()
		control("POST", "pacing?ms=150")
		local c = client()
		local got, cleaned = 0, false
		local victim = async.spawn(function()
			local _, e = pcall(function()
				for _ in assert(c:converse_stream{ modelId = MODEL, messages = user("a b c d e f g") }) do
					got = got + 1
				end
			end)
			cleaned = true
			error(e, 0)
		end)
		local other = async.spawn(function()
			local n = 0
			for _ in assert(c:converse_stream{ modelId = MODEL, messages = user("a b") }) do n = n + 1 end
			return n
		end)
		local t0 = clock()
		while got < 1 do async.step(10); assert(clock() - t0 < 20) end
		assert.is_true(victim:cancel())
		assert.is_true(cleaned)
		assert.equal("cancelled", victim:status())
		local ok, e = pcall(victim.await, victim)
		assert.is_false(ok)
		assert.equal("Cancelled", e.code)
		assert.equal(8, other:await())
		assert.is_true(got < 13)
		assert.is_false(victim:cancel())
	end)

	it("an error in one task never disturbs the others", function()
		local c = client()
		local bad = async.spawn(function()
			local _ = c:converse{ modelId = MODEL, messages = user("hi") }
			local x = nil
			return x.field -- a bug in the task
		end)
		local good = {}
		for i = 1, 5 do
			good[i] = async.spawn(function()
				return assert(c:converse{ modelId = MODEL, messages = user("n" .. i) }).output.message.content[1].text
			end)
		end
		for i = 1, 5 do assert.equal("You said: n" .. i, good[i]:await()) end
		local ok, e = pcall(bad.await, bad)
		assert.is_false(ok)
		assert.matches("attempt to index", e)
		assert.equal("failed", bad:status())
	end)

	it("retries with backoff yield: other tasks run during the backoff", function()
		control("POST", "faults?kind=throttle&count=2")
		local c = client{ retry = { random = function() return 1 end } }
		local ticks = 0
		local busy = async.spawn(function()
			while true do ticks = ticks + 1; async.sleep(0.01) end
		end)
		local r, meta = async.run(function() return c:converse{ modelId = MODEL, messages = user("hi") } end)
		assert.equal("You said: hi", r.output.message.content[1].text)
		assert.equal(3, meta.attempts)
		assert.is_true(ticks >= 3, "ticks during the backoff: " .. ticks)
		busy:cancel()
	end)

	it("pages inside tasks", function()
		local c = client()
		for i = 1, 3 do
			assert(c:start_async_invoke{ modelId = "amazon.nova-reel-v1:0", modelInput = { n = i },
				outputDataConfig = { s3OutputDataConfig = { s3Uri = "s3://bucket/p" } } })
		end
		local pages, items = async.run(function()
			local p, n = 0, 0
			for page in c:list_async_invokes_pages{ maxResults = 1 } do
				p = p + 1
				n = n + #page.asyncInvokeSummaries
			end
			return p, n
		end)
		assert.is_true(pages >= 3)
		assert.equal(pages, items)
	end)

	it("per-call timeouts and per-task await timeouts", function()
		control("POST", "pacing?ms=400")
		local c = client()
		local e = async.run(function()
			local st, err = c:converse_stream({ modelId = MODEL, messages = user("x y") },
				{ timeouts = { idle = 100 } })
			if not st then return err end -- the first event is awaited by the call
			local ok
			ok, err = pcall(function() for _ in st do end end)
			assert.is_false(ok)
			return err
		end)
		assert.equal("Timeout", e.code)
		local slow = async.spawn(function() async.sleep(0.3) return 1 end)
		local ok, te = pcall(slow.await, slow, 0.05)
		assert.is_false(ok)
		assert.equal("Timeout", te.code)
		assert.equal("task", te.which)
		assert.equal(1, slow:await())
	end)

	it("handles foreign yields: a task's own yield is an error; user coroutines still work", function()
		local t = async.spawn(function() coroutine.yield("mine") end)
		local ok, e = pcall(t.await, t)
		assert.is_false(ok)
		assert.equal("ValidationError", e.code)
		local c = client()
		local texts = async.run(function()
			-- a plain coroutine inside a task: the client blocks inside it (never yields into it)
			local gen = coroutine.wrap(function()
				coroutine.yield(assert(c:converse{ modelId = MODEL, messages = user("one") }).output.message.content[1].text)
				coroutine.yield("two")
			end)
			-- async.wrap: the client's waits go up to the scheduler
			local w = async.wrap(function()
				coroutine.yield(assert(c:converse{ modelId = MODEL, messages = user("three") }).output.message.content[1].text)
			end)
			return { gen(), gen(), w() }
		end)
		assert.same({ "You said: one", "two", "You said: three" }, texts)
	end)

	it("tasks of several clients share one scheduler", function()
		local c1, c2 = client(), client()
		local a = async.spawn(function() return c1:converse{ modelId = MODEL, messages = user("c1") } end)
		local b = async.spawn(function() return c2:converse{ modelId = MODEL, messages = user("c2") } end)
		assert.equal("You said: c1", a:await().output.message.content[1].text)
		assert.equal("You said: c2", b:await().output.message.content[1].text)
	end)

	it("bidirectional streams inside tasks, two at once", function()
		local c = client()
		local json = bedrock.json
		local function chat(word)
			local s = assert(c:invoke_model_with_bidirectional_stream{ modelId = "amazon.nova-sonic-v1:0",
				body = { { chunk = { bytes = '{"event":{"textInput":{"content":"' .. word .. '"}}}' } } } })
			local got = { json.decode(s().chunk.bytes).event.textOutput.content }
			assert(s:send('{"event":{"textInput":{"content":"' .. word .. '2"}}}'))
			got[2] = json.decode(s().chunk.bytes).event.textOutput.content
			assert(s:close_input())
			for _ in s do end
			return got
		end
		local a, b = async.spawn(chat, "alpha"), async.spawn(chat, "beta")
		assert.same({ "alpha", "alpha2" }, a:await())
		assert.same({ "beta", "beta2" }, b:await())
	end)

	it("cancelling a tool loop cancels its parallel handlers", function()
		local c = client()
		local json = bedrock.json
		local started, finished = 0, 0
		local slow = function() started = started + 1; async.sleep(5); finished = finished + 1; return "late" end
		local loop = async.spawn(function()
			return c:converse_with_tools{ modelId = MODEL, parallel = true,
				tools = { a = { handler = slow }, b = { handler = slow } },
				messages = user("__tool_plan " .. json.encode{ { { name = "a" }, { name = "b" } } }) }
		end)
		local t0 = clock()
		while started < 2 do async.step(10); assert(clock() - t0 < 20) end
		assert.is_true(loop:cancel())
		local ok, e = pcall(loop.await, loop)
		assert.is_false(ok)
		assert.equal("Cancelled", e.code)
		assert.equal(0, async.count())
		assert.equal(0, finished)
	end)

	it("refuses bad arguments", function()
		assert.has_error(function() async.spawn(42) end)
		assert.has_error(function() async.step(-1) end)
		assert.has_error(function() async.sleep("x") end)
		local ok, e = pcall(async.run, function() async.step(0) end)
		assert.is_false(ok)
		assert.equal("ValidationError", e.code)
	end)

	it("streams: collect after some events keeps them; break with close releases the transfer", function()
		local c = client()
		local st = assert(c:converse_stream{ modelId = MODEL, messages = user("one two three") })
		assert.is_table(st())
		assert.is_table(st())
		local res = st:collect()
		assert.equal("You said: one two three", res.output.message.content[1].text)
		assert.equal("end_turn", res.stopReason)
		local s2 = assert(c:converse_stream{ modelId = MODEL, messages = user("a b c d") })
		for _ in s2:events() do break end -- luacheck: ignore 512
		if _VERSION == "Lua 5.4" and not rawget(_G, "jit") then
			assert.is_true(s2.closed) -- the loop's closing value
		else
			s2:close()
			assert.is_true(s2.closed)
		end
	end)
end)
