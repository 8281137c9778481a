-- Soak: 200 calls in flight at once through bedrock.async against the emulator, for about
-- a minute, each call of a random kind (Converse, ConverseStream, the tool loop over
-- streamed turns, InvokeModelWithResponseStream, CountTokens) with a random fault (or
-- none) aimed at it alone. Every call must complete, or fail with an error object whose
-- code is the one its fault calls for; afterwards the Lua heap, the resident memory and
-- the open descriptors must be back at their level after a warm-up round.
--
-- Tagged #soak: `busted --tags=soak spec/soak_spec.lua` (or `make soak`) runs it alone;
-- BEDROCK_SOAK_SEED=<n> replays a run (the seed is printed), BEDROCK_SOAK_SECONDS changes
-- its length (default 50).
local helper = require "spec.helper"
local bedrock = require "bedrock"
local async = require "bedrock.async"
local core = require "bedrock.core"
local T = require "bedrock.transport.curl"

local IN_FLIGHT = 200
local SECONDS = tonumber(os.getenv("BEDROCK_SOAK_SECONDS") or "") or 50
local SEED = tonumber(os.getenv("BEDROCK_SOAK_SEED") or "") or os.time()
-- What "back at the starting level" allows, against the level after a warm-up of WARMUP
-- seconds at full load: the Lua heap within 1 MiB; resident memory within 48 MiB of it,
-- and within 32 MiB from the end of the first of PHASES parts to the end of the last (the
-- allocator keeps freed pages in amounts that vary with the mix: these catch a leak of
-- a few KiB per call over the 10,000-30,000 calls of a run; valgrind and LeakSanitizer
-- catch the small ones); descriptors exactly (every client and the control transport
-- are closed before each count).
local HEAP_MARGIN_KIB, RSS_MARGIN_KIB, RSS_PHASE_MARGIN_KIB = 1024, 48 * 1024, 32 * 1024
local WARMUP, PHASES = 8, 5

local TEXT = "one two three four five six seven eight"
local ANTHROPIC_BODY = '{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,' ..
	'"messages":[{"role":"user","content":"Hi there"}]}'

-- The faults, with their weight and what a call under them must end in: true (success),
-- or the error code. `stream` faults only strike event streams, so they go to stream calls.
local FAULTS = {
	{ w = 40, q = nil, want = true },
	{ w = 8, q = "kind=throttle", want = true },
	{ w = 4, q = "kind=throttle&count=3", want = "ThrottlingException" },
	{ w = 6, q = "kind=500", want = true },
	{ w = 6, q = "kind=503", want = true },
	{ w = 4, q = "kind=stall&ms=200", want = true },
	{ w = 3, q = "kind=hang", want = true },        -- first_byte timeout, then a retry
	{ w = 5, q = "kind=stream-stall&after=1&ms=200", stream = true, want = true },
	{ w = 5, q = "kind=stream-stall&after=1", stream = true, want = "Timeout" },
	{ w = 5, q = "kind=reset&after=1", stream = true, want = "ConnectionError" },
	{ w = 5, q = "kind=crc&after=1", stream = true, want = "StreamError" },
	{ w = 5, q = "kind=truncate&after=1", stream = true, want = "StreamError" },
	{ w = 5, q = "kind=exception&after=1", stream = true, want = "InternalServerException" },
	{ w = 3, q = "kind=exception&after=0&exception=throttlingException", stream = true, want = true },
	{ w = 4, q = "kind=oversize&after=1", stream = true, want = "StreamError" },
	{ w = 2, q = "kind=endless&after=1", stream = true, want = "Timeout" },
}

local function user(text) return { { role = "user", content = { { text = text } } } } end

local function drain(s, err)
	if not s then return nil, err end
	local ok, e = pcall(function() for _ in s do end end)
	if not ok then return nil, e end
	return true
end

-- The call kinds: run(client, model) -> true | nil, err. `stream`: the answer is an event
-- stream (mid-stream faults may be aimed at it).
local CALLS = {
	{ name = "converse", run = function(c, m)
		local r, e = c:converse{ modelId = m, messages = user(TEXT) }
		return r and true, e
	end },
	{ name = "count_tokens", run = function(c, m)
		local r, e = c:count_tokens{ modelId = m, input = { converse = { messages = user(TEXT) } } }
		return r and true, e
	end },
	{ name = "converse_stream", stream = true, run = function(c, m)
		return drain(c:converse_stream{ modelId = m, messages = user(TEXT) })
	end },
	{ name = "invoke_model_with_response_stream", stream = true, run = function(c, m)
		return drain(c:invoke_model_with_response_stream{ modelId = m, body = ANTHROPIC_BODY })
	end },
	{ name = "converse_with_tools", stream = true, run = function(c, m)
		local r, e = c:converse_with_tools{ modelId = m,
			messages = user('__tool_plan [[{"name":"echo","input":{"n":1}}]]'),
			tools = { echo = { description = "echo", handler = function(input) return input end } },
			on_event = function() end }
		return r and true, e
	end },
}

local function pick(list)
	local total = 0
	for _, x in ipairs(list) do total = total + (x.w or 1) end
	local r = math.random() * total
	for _, x in ipairs(list) do
		r = r - (x.w or 1)
		if r <= 0 then return x end
	end
	return list[#list]
end

local function heap_kib()
	collectgarbage()
	collectgarbage()
	return collectgarbage("count")
end

describe("soak #soak", function()
	local emu, admin
	setup(function()
		emu = helper.emulator({ "--no-auth" })
	end)
	teardown(function()
		if admin then admin:close() end
		if emu then emu.stop() end
	end)

	local function add_fault(q, model)
		local res = assert(admin:request{ method = "POST",
			url = emu.url .. "/_emulator/faults?" .. q .. "&model=" .. model,
			headers = { { "x-emulator-admin", "1" } }, body = "" })
		assert(res.status == 200, res.body)
	end

	local function clients(n)
		local t = {}
		for i = 1, n do
			-- a 64 KiB receive buffer per transfer instead of 1 MiB: a stream that never
			-- ends fills its buffer while 200 tasks share the CPU, and 200 full 1 MiB
			-- buffers would make the allocator's high-water mark, not leaks, decide RSS
			t[i] = assert(bedrock.client{ region = "us-east-1", endpoint = emu.url,
				credentials = { access_key_id = "AKIDSOAK", secret_access_key = "soak/secret/key/0123456789" },
				getenv = function() return nil end,
				transport = T.new{ buffer_cap = 64 * 1024, timeouts = { first_byte = 1500, idle = 1500, total = 3000 } } })
		end
		return t
	end

	-- Runs IN_FLIGHT workers, each making calls one after another until `seconds` have
	-- passed (at least `min_calls` calls each). Returns the tallies.
	local function soak(seconds, min_calls)
		local cs = clients(4)
		admin = T.new{}
		local tally = { calls = 0, ok = 0, failed = 0, codes = {}, bad = {} }
		local serial = 0
		local deadline = core.monotonic() + seconds
		async.run(function()
			local workers = {}
			for w = 1, IN_FLIGHT do
				workers[w] = async.spawn(function()
					local n = 0
					while n < min_calls or core.monotonic() < deadline do
						n = n + 1
						serial = serial + 1
						local call = pick(CALLS)
						local fault
						repeat fault = pick(FAULTS) until call.stream or not fault.stream
						-- a model id of its own, so the fault strikes this call alone
						local model = "anthropic.soak-" .. serial .. "-v1"
						if fault.q then add_fault(fault.q, model) end
						local ok, err = call.run(cs[1 + w % #cs], model)
						tally.calls = tally.calls + 1
						local label = call.name .. " with " .. tostring(fault.q)
						if ok then
							tally.ok = tally.ok + 1
							if fault.want ~= true then tally.bad[#tally.bad + 1] = label .. ": succeeded" end
						else
							tally.failed = tally.failed + 1
							local code = bedrock.is_error(err) and err.code or ("not an error object: " .. tostring(err))
							tally.codes[code] = (tally.codes[code] or 0) + 1
							if code ~= fault.want then
								tally.bad[#tally.bad + 1] = label .. ": " .. tostring(err)
							end
						end
					end
				end)
			end
			for _, t in ipairs(workers) do t:await() end
		end)
		for _, c in ipairs(cs) do c:close() end
		admin:close()
		return tally
	end

	it("200 calls in flight with random faults: all end cleanly, memory and descriptors come back", function()
		math.randomseed(SEED)
		print(("\nsoak: seed %d (BEDROCK_SOAK_SEED=%d replays it), %d in flight, %d s"):format(
			SEED, SEED, IN_FLIGHT, SECONDS))
		-- warm-up at full load: what the code paths load and cache, and the peak the
		-- allocator keeps from 200 transfers at once, are in the baseline; a leak shows as
		-- growth beyond it while the same work goes on
		local warm = soak(WARMUP, 1)
		assert.equal(0, #warm.bad, table.concat(warm.bad, "\n"))
		print(("soak: warm-up %d calls, RSS %d KiB"):format(warm.calls, helper.rss_kib()))
		local heap0, rss0 = heap_kib(), helper.rss_kib()
		local fdl0, fds0 = helper.fds()
		local t0 = core.monotonic()
		-- in PHASES parts, the resident memory read after each: a leak grows with the
		-- calls made, what the allocator keeps after a peak of load does not
		local tally = { calls = 0, ok = 0, failed = 0, codes = {}, bad = {} }
		local rss_after = {}
		for phase = 1, PHASES do
			local t = soak(SECONDS / PHASES, 1)
			tally.calls, tally.ok, tally.failed = tally.calls + t.calls, tally.ok + t.ok, tally.failed + t.failed
			for k, v in pairs(t.codes) do tally.codes[k] = (tally.codes[k] or 0) + v end
			for _, b in ipairs(t.bad) do tally.bad[#tally.bad + 1] = b end
			heap_kib()
			rss_after[phase] = helper.rss_kib()
		end
		print("soak: RSS after each phase (KiB): " .. table.concat(rss_after, ", "))
		local took = core.monotonic() - t0
		assert.equal(0, async.count())
		local heap1, rss1 = heap_kib(), helper.rss_kib()
		local fdl1, fds1 = helper.fds()
		local codes = {}
		for k, v in pairs(tally.codes) do codes[#codes + 1] = k .. " " .. v end
		table.sort(codes)
		print(("soak: %d calls in %.1f s (%d ok, %d failed: %s); Lua heap %.0f -> %.0f KiB, RSS %d -> %d KiB, " ..
			"fds %d -> %d"):format(tally.calls, took, tally.ok, tally.failed, table.concat(codes, ", "),
			heap0, heap1, rss0, rss1, fds0, fds1))
		assert.equal(0, #tally.bad, #tally.bad .. " calls ended wrongly:\n" ..
			table.concat(tally.bad, "\n", 1, math.min(#tally.bad, 20)))
		assert.truthy(tally.calls >= IN_FLIGHT * 2, tally.calls .. " calls")
		assert.truthy(took < SECONDS + 30, "took " .. took .. " s")
		assert.truthy(heap1 - heap0 < HEAP_MARGIN_KIB, ("Lua heap grew by %.0f KiB"):format(heap1 - heap0))
		-- under the sanitizers freed memory sits in ASan's quarantine (LeakSanitizer checks
		-- for leaks there instead)
		if os.getenv("BEDROCK_SAN") ~= "1" then
			assert.truthy(rss1 - rss0 < RSS_MARGIN_KIB, ("RSS grew by %d KiB"):format(rss1 - rss0))
			assert.truthy(rss_after[PHASES] - rss_after[1] < RSS_PHASE_MARGIN_KIB,
				("RSS grew by %d KiB from the first phase to the last"):format(rss_after[PHASES] - rss_after[1]))
		end
		local function list(t)
			local o = {}
			for fd, target in pairs(t) do o[#o + 1] = fd .. "=" .. target end
			table.sort(o)
			return table.concat(o, " ")
		end
		assert.equal(fds0, fds1, "open descriptors: before " .. list(fdl0) .. "; after " .. list(fdl1))
	end)
end)

---------------------------------------------------------------------------- nginx

-- The same through one nginx worker: rounds of 400 requests, 200 at a time (the curl
-- CLI's --parallel), to a location that makes one call of the given kind through the
-- cosocket transport (spec/nginx/fault_matrix_app.lua), each with its own fault. The
-- worker's RSS, Lua heap and descriptors are read before and after (its pooled
-- connections close after 300 ms idle, so descriptors come back exactly).
local NGX_SECONDS = tonumber(os.getenv("BEDROCK_SOAK_NGX_SECONDS") or "") or 30
local is_jit = type(rawget(_G, "jit")) == "table"
local has_ngxh, ngxh = pcall(require, "spec.ngx_helper")
local ngx_ok, ngx_why = false, "needs the nginx cosocket transport and its test nginx (spec/ngx_helper.lua)"
if has_ngxh then ngx_ok, ngx_why = ngxh.available() end
if not is_jit then ngx_ok, ngx_why = false, "runs under LuaJIT (nginx's Lua module is LuaJIT)" end

local NGX_STYLES = {
	{ name = "call" }, { name = "count" }, { name = "stream", stream = true },
	{ name = "invoke_stream", stream = true }, { name = "tools", stream = true },
}

describe("soak through one nginx worker #soak #ngx", function()
	if not ngx_ok then
		pending(ngx_why)
		return
	end
	local json = require "bedrock.json"
	local emu, ng, worker, dir, admin

	setup(function()
		emu = helper.emulator({ "--no-auth" })
		ng = ngxh.start{ env = { BEDROCK_TEST_ENDPOINT = emu.url }, connections = 2048,
			http = "  lua_socket_log_errors off;\n  server {\n    listen 127.0.0.1:$PORT;\n" ..
				"    location = / { return 200 'ok'; }\n" ..
				"    location = /cell { content_by_lua_block { require('fault_matrix_app').cell() } }\n" ..
				"    location = /gc { content_by_lua_block { require('fault_matrix_app').gc() } }\n  }\n" }
		local master = helper.read(ng.prefix .. "/logs/nginx.pid"):match("%d+")
		local p = assert(io.popen("ps -o pid= --ppid " .. master))
		worker = tonumber(p:read("*l"))
		p:close()
		dir = ngxh.tmpdir()
		admin = T.new{}
	end)
	teardown(function()
		if admin then admin:close() end
		if ng then
			local log = ng.log()
			ng.stop()
			assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
		end
		if emu then emu.stop() end
		if dir then os.execute("rm -rf " .. helper.shell_quote(dir)) end
	end)

	local serial = 0
	-- One round of n requests, IN_FLIGHT at a time; returns the tally.
	local function round(n, tally)
		local cfg = assert(io.open(dir .. "/urls", "w"))
		local plan = {}
		for i = 1, n do
			serial = serial + 1
			local style = pick(NGX_STYLES)
			local fault
			repeat fault = pick(FAULTS) until style.stream or not fault.stream
			local model = "anthropic.ngxsoak-" .. serial .. "-v1"
			if fault.q then
				local res = assert(admin:request{ method = "POST",
					url = emu.url .. "/_emulator/faults?" .. fault.q .. "&model=" .. model,
					headers = { { "x-emulator-admin", "1" } }, body = "" })
				assert(res.status == 200, res.body)
			end
			plan[i] = { label = style.name .. " with " .. tostring(fault.q), want = fault.want }
			cfg:write(('url = "%s/cell?style=%s&model=%s&first_byte=1500&idle=1500&total=3000&ka=300"\n' ..
				'output = "%s/out.%d"\n'):format(ng.url, style.name, model, dir, i))
		end
		cfg:close()
		assert(ngxh.sh("curl -s --no-progress-meter --max-time 60 --parallel --parallel-max " .. IN_FLIGHT ..
			" -K " .. helper.shell_quote(dir .. "/urls") .. " >/dev/null 2>&1"))
		for i = 1, n do
			local body = helper.exists(dir .. "/out." .. i) and helper.read(dir .. "/out." .. i) or ""
			os.remove(dir .. "/out." .. i)
			local out = json.decode(body)
			tally.calls = tally.calls + 1
			if type(out) ~= "table" then
				tally.bad[#tally.bad + 1] = plan[i].label .. ": no answer: " .. body
			elseif out.ok then
				tally.ok = tally.ok + 1
				if plan[i].want ~= true then tally.bad[#tally.bad + 1] = plan[i].label .. ": succeeded" end
			else
				tally.failed = tally.failed + 1
				local code = out.err and out.err.is_error and out.err.code or ("not an error object: " .. body)
				tally.codes[code] = (tally.codes[code] or 0) + 1
				if code ~= plan[i].want then tally.bad[#tally.bad + 1] = plan[i].label .. ": " .. body end
			end
		end
	end

	local function measure()
		ngxh.sh("sleep 1") -- pooled connections idle past their 300 ms
		local _, body = ngxh.get(ng.url .. "/gc")
		local _, nfds = helper.fds(worker)
		return { rss = helper.rss_kib(worker), fds = nfds, heap = json.decode(body).heap_kib }
	end

	it("200 requests in flight with random faults: all end cleanly, the worker's memory and descriptors come back",
		function()
			math.randomseed(SEED)
			print(("\nnginx soak: seed %d, %d in flight, %d s"):format(SEED, IN_FLIGHT, NGX_SECONDS))
			local warm = { calls = 0, ok = 0, failed = 0, codes = {}, bad = {} }
			round(400, warm)
			assert.equal(0, #warm.bad, table.concat(warm.bad, "\n", 1, math.min(#warm.bad, 20)))
			local m0 = measure()
			local tally = { calls = 0, ok = 0, failed = 0, codes = {}, bad = {} }
			local t0 = core.monotonic()
			repeat round(400, tally) until core.monotonic() - t0 >= NGX_SECONDS
			local took = core.monotonic() - t0
			local m1 = measure()
			local codes = {}
			for k, v in pairs(tally.codes) do codes[#codes + 1] = k .. " " .. v end
			table.sort(codes)
			print(("nginx soak: %d requests in %.1f s (%d ok, %d failed: %s); worker Lua heap %.0f -> %.0f KiB, " ..
				"RSS %d -> %d KiB, fds %d -> %d"):format(tally.calls, took, tally.ok, tally.failed,
				table.concat(codes, ", "), m0.heap, m1.heap, m0.rss, m1.rss, m0.fds, m1.fds))
			assert.equal(0, #tally.bad, #tally.bad .. " requests ended wrongly:\n" ..
				table.concat(tally.bad, "\n", 1, math.min(#tally.bad, 20)))
			assert.truthy(m1.heap - m0.heap < HEAP_MARGIN_KIB * 2, "worker Lua heap grew by " .. (m1.heap - m0.heap) .. " KiB")
			assert.truthy(m1.rss - m0.rss < RSS_MARGIN_KIB, "worker RSS grew by " .. (m1.rss - m0.rss) .. " KiB")
			assert.equal(m0.fds, m1.fds, "worker descriptors")
		end)
end)
