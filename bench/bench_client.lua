-- The Lua client (require "bedrock") against bedrock-emulator on loopback:
--   Converse calls per second over one kept-alive connection, with the ratio to the bare
--   C loop (bare_converse.c) measured earlier in the same run;
--   ConverseStream events per second reaching Lua code through the client's iterator;
--   RSS growth while a long stream goes through the client.
-- Usage: lua5.4|luajit bench/bench_client.lua URL KEY_ID SECRET [calls [passes [words [rss_words]]]]
local B = require "common"
local url, key, secret = arg[1], arg[2], arg[3]
local calls = tonumber(arg[4]) or 2000
local npasses = tonumber(arg[5]) or 5
local words = tonumber(arg[6]) or 100000
local rss_words = tonumber(arg[7]) or 0
local L = B.lua_label
local C = B.figures()
local printf = B.printf

local ok, bedrock = pcall(require, "bedrock")
if not ok or type(bedrock) ~= "table" or type(bedrock.client) ~= "function" then
	printf("%s.client NOT MEASURED: require \"bedrock\" has no client yet (%s)", L,
		tostring(ok and "no bedrock.client" or bedrock):match("^[^\n]*"))
	return
end

local client, cerr = bedrock.client {
	region = "us-east-1",
	endpoint = url,
	credentials = { access_key_id = key, secret_access_key = secret },
}
if not client then
	printf("%s.client NOT MEASURED: bedrock.client failed: %s", L, tostring(cerr))
	return
end

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

-- Request texts: the benchmark's historical "hi", and realistic ones with quotes,
-- newlines, tabs and non-ASCII text (small, and about 2 KB).
local PARA = 'She said "let\'s meet at the café at 10:00" —\n\tthen added: "bring the\\path\\to\\notes"'
	.. " (naïve résumé, 東京, 💡).\n"
local TEXTS = {
	{ label = "hi", text = "hi" },
	{ label = "small", text = PARA },
	{ label = "2k", text = string.rep(PARA, math.ceil(2048 / #PARA)):sub(1, 2048):gsub("[\128-\255]+$", "") },
}

-- The exact JSON body the client sends for req (its own serializer), for the bare loop.
local function body_of(req)
	local shapes = require "bedrock.shapes"
	local plan = require("bedrock.operations").plans.Converse
	return assert(shapes.serialize(plan.body, req, false))
end

local function converse_bench(t)
	local req = { modelId = MODEL, messages = { { role = "user", content = { { text = t.text } } } } }
	local r, err = client:converse(req)
	if not r then
		printf("%s.converse.%s NOT MEASURED: converse failed: %s", L, t.label, tostring(err))
		return
	end
	local function pass()
		for _ = 1, calls do
			local res, e = client:converse(req)
			if not res then error(tostring(e)) end
		end
	end
	-- The bare C loop (BARE_CONVERSE, a path) runs between the client's passes, one pass
	-- of the same number of calls each time with the same body bytes, so that both see
	-- the same machine load.
	local bare_bin = os.getenv("BARE_CONVERSE")
	local body = body_of(req)
	local body_file = os.tmpname()
	local f = assert(io.open(body_file, "wb"))
	f:write(body)
	f:close()
	local function bare_pass()
		local p = io.popen("BENCH_FIGURES= " .. bare_bin .. " " .. url .. " " .. key .. " " .. secret .. " "
			.. calls .. " 1 " .. body_file .. " 2>&1")
		local out = p:read("*a")
		p:close()
		local us, cpu = out:match("%(([%d.]+) us/call, CPU ([%d.]+) us/call%)")
		if not us then error("bare_converse: " .. out) end
		return tonumber(us) * 1e-6, tonumber(cpu) * 1e-6
	end
	pass()
	local tc, cc, tb, cb = {}, {}, {}, {}
	for i = 1, npasses do
		if bare_bin then tb[i], cb[i] = bare_pass() end
		local t0, c0 = B.now(), os.clock()
		pass()
		tc[i] = (B.now() - t0) / calls
		cc[i] = (os.clock() - c0) / calls
	end
	os.remove(body_file)
	local tm, cpu = B.median(tc), B.median(cc)
	local line = string.format("%s.converse.%-5s %8.0f calls/s (%.1f us/call, CPU %.1f us/call) client:converse"
		.. " over one kept-alive connection, %d B request body", L, t.label, 1 / tm, tm * 1e6, cpu * 1e6, #body)
	local bare, bcpu
	if t.label == "hi" then bare, bcpu = C["c.converse.bare.s_per_call"], C["c.converse.bare.cpu_s_per_call"] end
	if bare_bin then bare, bcpu = B.median(tb), B.median(cb) end
	if bare then
		line = line .. string.format(" | bare C loop %s %.1f us/call (CPU %.1f) | client/bare time %.2fx (CPU %.2fx)"
			.. " | goal <= 1.2x: %s", bare_bin and "interleaved" or "this run", bare * 1e6, bcpu * 1e6,
			tm / bare, cpu / bcpu, B.verdict(tm / bare <= 1.2))
	else
		line = line .. " | bare C loop NOT MEASURED this run"
	end
	printf("%s", line)
	B.record(L .. ".converse." .. t.label .. ".s_per_call", tm)
	B.record(L .. ".converse." .. t.label .. ".cpu_s_per_call", cpu)
end

-- One ConverseStream read to its end; returns events, text deltas, text bytes, and the
-- seconds from the call to the first event (the emulator encodes every frame of a
-- stream before it sends the first one, so that part is the emulator's, not ours).
local function stream_once(text)
	local req = { modelId = MODEL, messages = { { role = "user", content = { { text = text } } } } }
	local n, deltas, chars = 0, 0, 0
	local t0, first = B.now(), nil
	for ev in client:converse_stream(req) do
		if n == 0 then first = B.now() - t0 end
		n = n + 1
		local d = ev.contentBlockDelta
		if d then
			deltas = deltas + 1
			chars = chars + #d.delta.text
		end
	end
	return n, deltas, chars, first or 0
end

local function stream_bench()
	local okw, n, deltas, _ = pcall(stream_once, "__stream_words 10")
	if not okw then
		printf("%s.stream NOT MEASURED: converse_stream failed: %s", L, tostring(n))
		return
	end
	if deltas < 10 then
		printf("%s.stream NOT MEASURED: \"__stream_words 10\" gave %d deltas", L, deltas)
		return
	end
	local text = "__stream_words " .. words
	stream_once(text)   -- warm-up
	local tt, tf = {}, {}
	for i = 1, math.max(3, npasses - 2) do
		local t0 = B.now()
		local first
		n, _, _, first = stream_once(text)
		tt[i] = B.now() - t0
		tf[i] = tt[i] - first
	end
	local t, tafter = B.median(tt), B.median(tf)
	local line = string.format("%s.stream        %7.3f M events/s (%d events a stream, %.3f s from the call) reaching"
		.. " Lua through client:converse_stream; %.3f M events/s after the first event", L, n / t / 1e6, n, t,
		(n - 1) / tafter / 1e6)
	local emu = C["emulator.stream." .. words .. ".events_per_s"]
	if emu then line = line .. string.format(" | emulator alone (curl to /dev/null) %.3f M events/s", emu / 1e6) end
	local goal = L == "luajit" and 1e6 or 5e5
	line = line .. string.format(" | goal >= %.1f M: %s (through loopback HTTP from the emulator, which shares the"
		.. " cores; the client's Stream without the network: client_stream.small)", goal / 1e6, B.verdict(n / t >= goal))
	printf("%s", line)
	B.record(L .. ".stream.events_per_s", n / t)
	B.record(L .. ".stream.events_per_s_after_first", (n - 1) / tafter)
end

local function rss_bench()
	if rss_words <= 0 then return end
	collectgarbage("collect")
	local before = B.rss_kb()
	local t0 = B.now()
	local okr, n, _, chars = pcall(stream_once, "__stream_words " .. rss_words)
	local t = B.now() - t0
	if not okr then
		printf("%s.rss.stream NOT MEASURED: long stream failed: %s", L, tostring(n))
		return
	end
	local after = B.rss_kb()
	collectgarbage("collect")
	local wire = C["emulator.stream." .. rss_words .. ".bytes"]
	printf("%s.rss.stream     %+7.1f MB RSS growth over one ConverseStream of %d events (%s, %.1f MB of"
		.. " text) through the client in %.1f s (%.3f M events/s): VmRSS %.1f -> %.1f MB (%.1f after full GC),"
		.. " VmHWM %.1f MB", L, (after - before) / 1024, n,
		wire and string.format("%.0f MB on the wire", wire / 1e6) or "size on the wire not measured",
		chars / 1e6, t, n / t / 1e6, before / 1024, after / 1024, B.rss_kb() / 1024, B.rss_kb("VmHWM") / 1024)
end

for _, t in ipairs(TEXTS) do converse_bench(t) end
stream_bench()
rss_bench()
