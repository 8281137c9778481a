-- bedrock.async against the emulator: N ConverseStream calls at once in one Lua state
-- versus one alone (the emulator paces every event, so a stream takes a known time), and
-- the memory each stream in flight costs (Lua heap and process RSS, measured when every
-- stream has its first event and before any has ended).
--
--   lua5.4 bench/bench_async.lua URL KEY_ID SECRET [STREAMS=100] [PASSES=3] [PACE_MS=20] [WORDS=20]
--
-- Sets the emulator's pacing through its control channel and resets it at the end.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local is_jit = type(rawget(_G, "jit")) == "table"
package.cpath = here .. "/../build/" .. (is_jit and "luajit" or "lua5.4") .. "/?.so;" .. package.cpath
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path

local bedrock = require "bedrock"
local async = require "bedrock.async"
local core = require "bedrock.core"
local T = require "bedrock.transport.curl"

local url, key, secret = arg[1], arg[2], arg[3]
local N = tonumber(arg[4] or "100")
local PASSES = tonumber(arg[5] or "3")
local PACE = tonumber(arg[6] or "20")
local WORDS = tonumber(arg[7] or "20")
local label = is_jit and "luajit" or "lua54"
local now = core.monotonic

local admin = T.new{}
local function control(what)
	local r = assert(admin:request{ method = "POST", url = url .. "/_emulator/" .. what,
		headers = { { "x-emulator-admin", "1" } }, body = "" })
	assert(r.status == 200, r.body)
end

local function rss_kb()
	local f = io.open("/proc/self/status")
	if not f then return 0 end
	local s = f:read("*a")
	f:close()
	return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

local client = assert(bedrock.client{ region = "us-east-1", endpoint = url,
	credentials = { access_key_id = key, secret_access_key = secret }, getenv = function() end })
local words = {}
for i = 1, WORDS do words[i] = "w" .. i end
local req = { modelId = "anthropic.claude-3-haiku-20240307-v1:0",
	messages = { { role = "user", content = { { text = table.concat(words, " ") } } } } }
local EVENTS = WORDS + 2 + 4 -- "You said:" adds two words; messageStart, stop, messageStop, metadata

local function median(t)
	local s = {}
	for i = 1, #t do s[i] = t[i] end
	table.sort(s)
	return s[math.floor((#s + 1) / 2)]
end

-- One pass of n streams; returns wall time, and (for the memory pass) heap and RSS deltas.
local function pass(n, measure)
	collectgarbage("collect")
	local heap0, rss0 = collectgarbage("count"), rss_kb()
	local started, heap1, rss1 = 0, nil, nil
	local t0 = now()
	local tasks = {}
	for i = 1, n do
		tasks[i] = async.spawn(function()
			local c = 0
			for _ in assert(client:converse_stream(req)) do
				c = c + 1
				if c == 1 then started = started + 1 end
			end
			return c
		end)
	end
	while async.count() > 0 do
		async.step(50)
		if measure and not heap1 and started == n then
			heap1 = collectgarbage("count")
			rss1 = rss_kb()
		end
	end
	local dt = now() - t0
	for i = 1, n do
		local c = tasks[i]:await()
		assert(c == EVENTS, ("stream %d got %d events, expected %d"):format(i, c, EVENTS))
	end
	return dt, heap1 and (heap1 - heap0) or nil, rss1 and (rss1 - rss0) or nil
end

control("pacing?ms=" .. PACE)
-- the memory pass first, in a cold process: the RSS then includes what curl allocates per
-- transfer and per connection (easy handles, connection cache, TLS-free sockets)
local _, heap, rss = pass(N, true)
local one, many = {}, {}
for p = 1, PASSES do
	one[p] = pass(1)
	many[p] = pass(N)
end
control("reset")
admin:close()

local t1, tn = median(one), median(many)
print(("async.%s.one %8.3f s one ConverseStream of %d events, emulator pacing %d ms/event (median of %d)")
	:format(label, t1, EVENTS, PACE, PASSES))
print(("async.%s.%d %8.3f s %d ConverseStreams at once in one Lua state: %.2fx one alone"
	.. " (the sum would be %.1f s; median of %d)"):format(label, N, tn, N, tn / t1, t1 * N, PASSES))
if heap then
	print(("async.%s.memory %8.1f KiB Lua heap + %.1f KiB RSS per stream in flight"
		.. " (%d streams, all past their first event; cold process, new connections)")
		:format(label, heap / N, rss / N, N))
end
