-- bedrock.core from Lua: event-stream decode throughput, signatures per second, and RSS
-- growth while 1 GiB of event-stream bytes goes through the decoder.
-- Usage: lua5.4|luajit bench/bench_core.lua CORPUS_DIR [passes [all|decode|sign|rss]]
-- Every event reaches Lua code: headers[":event-type"] and #payload are read for each.
-- Baselines, same process, same 64 KiB slices: core.crc32 (the library's CRC through the
-- binding) and zlib's crc32 (through bench/benchutil.c); plus the C figures recorded
-- earlier in the same run (bench_decode, bench_sigv4) when present.
local B = require "common"   -- found through LUA_PATH set by run.sh
local dir = arg[1] or (B.bench_dir .. "/corpus")
local npasses = tonumber(arg[2]) or 5
local L = B.lua_label
local C = B.figures()
local printf = B.printf

local core, why = B.core()
if not core then
	printf("%s.core NOT MEASURED: bedrock.core does not load (%s)", L, why)
	return
end

local SLICE = 65536

local function frames_in(s)
	local off, n, byte = 1, 0, string.byte
	while off + 3 <= #s do
		local a, b, c, d = byte(s, off, off + 3)
		local t = ((a * 256 + b) * 256 + c) * 256 + d
		if t < 16 then break end
		off = off + t
		n = n + 1
	end
	return n
end

local function slices_of(s)
	local t = {}
	for i = 1, #s, SLICE do t[#t + 1] = s:sub(i, i + SLICE - 1) end
	return t
end

-- One whole stream through a fresh decoder; returns events and payload bytes seen.
local function decode_all(slices)
	local dec = core.decoder()
	local n, bytes = 0, 0
	for i = 1, #slices do
		local _, ferr = dec:feed(slices[i])
		if ferr then error("feed: " .. tostring(ferr)) end
		while true do
			local h, p = dec:next()
			if not h then
				if p then error("decoder: " .. tostring(p)) end
				break
			end
			local et = h[":event-type"]
			if not et then error("event without :event-type") end
			n = n + 1
			bytes = bytes + #p
		end
	end
	return n, bytes
end

local function crc_core(slices)
	local c, crc32 = 0, core.crc32
	for i = 1, #slices do c = c + crc32(slices[i]) end
	return c
end

local function crc_zlib(slices)
	local c, z = 0, B.zcrc32
	for i = 1, #slices do c = c + z(slices[i]) end
	return c
end

local TARGET = { luajit = 1e6, lua54 = 5e5 }

local function bench_decode(name, label)
	local s = B.read(dir .. "/" .. name)
	if not s then
		printf("%s.decode.%s NOT MEASURED: corpus %s/%s missing", L, label, dir, name)
		return
	end
	local frames, slices = frames_in(s), slices_of(s)
	local n = decode_all(slices)
	if n ~= frames then error(string.format("%s: decoded %d events, corpus has %d", name, n, frames)) end
	-- A pass goes through the corpus `reps` times (about 50..80 MB): with shorter passes
	-- the GC cycle (one every few hundred thousand small events) lands in some passes and
	-- not others, and the median swings by 2x under LuaJIT.
	local reps = math.max(1, math.floor(50e6 / #s + 0.5))
	local td, tc, tz = {}, {}, {}
	for i = 1, npasses do   -- interleaved, as in the C benchmark
		local t0 = B.now()
		for _ = 1, reps do crc_core(slices) end
		tc[i] = (B.now() - t0) / reps
		t0 = B.now()
		for _ = 1, reps do crc_zlib(slices) end
		tz[i] = (B.now() - t0) / reps
		t0 = B.now()
		for _ = 1, reps do decode_all(slices) end
		td[i] = (B.now() - t0) / reps
	end
	local d, c, z = B.median(td), B.median(tc), B.median(tz)
	local mb = #s / 1e6
	local evs = frames / d
	local cz = C["c.zlib_crc32." .. label .. ".mb_per_s"]
	local line = string.format("%s.decode.%-6s %7.3f M events/s %8.1f MB/s | core.crc32 same slices %7.1f MB/s"
		.. " (decode = %5.1f%% of it) | zlib crc32 in-process %7.1f MB/s (decode = %5.1f%%)",
		L, label, evs / 1e6, mb / d, mb / c, 100 * c / d, mb / z, 100 * z / d)
	if cz then line = line .. string.format(" | C zlib this run %.1f MB/s", cz) end
	local cd = C["c.decode." .. label .. ".events_per_s"]
	if cd then line = line .. string.format(" | C decoder %.2fx faster", cd / evs) end
	if label == "small" then
		line = line .. string.format(" | target >= %g k events/s: %s", TARGET[L] / 1e3, B.verdict(evs >= TARGET[L]))
	end
	printf("%s", line)
	B.record(L .. ".decode." .. label .. ".events_per_s", evs)
end

-- RSS while 1 GiB of small-event stream (the small corpus, repeated) is decoded in Lua.
local function bench_rss(slices)
	local per = 0
	for i = 1, #slices do per = per + #slices[i] end
	local reps = math.ceil(1073741824 / per)
	decode_all(slices)   -- warm-up: the decoder's buffers and the interned strings exist
	collectgarbage("collect")
	local before = B.rss_kb()
	local t0, events = B.now(), 0
	for _ = 1, reps do events = events + decode_all(slices) end
	local t = B.now() - t0
	local after = B.rss_kb()
	collectgarbage("collect")
	local after_gc = B.rss_kb()
	printf("%s.rss.decode1g   %+7.1f MB RSS growth over %.2f GB (%d events, %.3f M events/s) through"
		.. " core.decoder in Lua: VmRSS %.1f -> %.1f MB (%.1f after full GC), VmHWM %.1f MB",
		L, (after - before) / 1024, per * reps / 1e9, events, events / t / 1e6, before / 1024,
		after / 1024, after_gc / 1024, B.rss_kb("VmHWM") / 1024)
end

local function bench_sign()
	if type(core.signer) ~= "function" then
		printf("%s.sigv4.sign NOT MEASURED: core.signer missing", L)
		return
	end
	local parts = { '{"messages":[{"role":"user","content":[{"text":"' }
	local tail = '"}]}],"inferenceConfig":{"maxTokens":512}}'
	local fill = 2048 - #parts[1] - #tail
	parts[2] = string.rep("lorem ipsum dolor sit amet ", math.ceil(fill / 27)):sub(1, fill)
	parts[3] = tail
	local body = table.concat(parts)
	assert(#body == 2048)
	local amz = "20150830T123600Z"
	local req = {
		method = "POST",
		path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
		query = "",
		headers = {
			{ "content-type", "application/json" },
			{ "host", "bedrock-runtime.us-east-1.amazonaws.com" },
			{ "x-amz-date", amz },
		},
		body = body,
		access_key = "AKIDEXAMPLE",
		secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		region = "us-east-1",
		service = "bedrock",
		amz_date = amz,
	}
	local s = core.signer()
	local auth = s:sign(req)
	if type(auth) ~= "string" or not auth:find("Signature=", 1, true) then
		printf("%s.sigv4.sign NOT MEASURED: sign returned %s", L, tostring(auth))
		return
	end
	local N = 20000
	local t = B.passes(npasses, function()
		for _ = 1, N do s:sign(req) end
	end) / N
	local line = string.format("%s.sigv4.sign    %8.0f k/s (%.2f us) signer:sign{...} from Lua, 2 KB Converse request"
		.. " (one request table reused)", L, 1e-3 / t, t * 1e6)
	local fl, cs = C["c.sigv4.floor.s_per_sig"], C["c.sigv4.sign.s_per_sig"]
	if fl then
		line = line .. string.format(" | C OpenSSL floor this run %.0f k/s, time/floor %.2fx", 1e-3 / fl, t / fl)
	end
	if cs then line = line .. string.format(" | C signer %.0f k/s, Lua/C time %.2fx", 1e-3 / cs, t / cs) end
	line = line .. " | target > 100 k/s: " .. B.verdict(1 / t > 1e5)
	printf("%s", line)
	B.record(L .. ".sigv4.sign.s_per_sig", t)
end

local mode = arg[3] or "all"
if mode == "all" or mode == "decode" then
	if type(core.decoder) == "function" and type(core.crc32) == "function" then
		bench_decode("small.es", "small")
		bench_decode("chunk.es", "chunk")
		bench_decode("large.es", "large")
	else
		printf("%s.decode NOT MEASURED: core.decoder or core.crc32 missing", L)
	end
end
if mode == "all" or mode == "sign" then bench_sign() end
-- in a process of its own, so that the other corpora do not sit in the figures
if mode == "all" or mode == "rss" then
	if type(core.decoder) == "function" then
		local slices = (function()
			local s = B.read(dir .. "/small.es")
			return s and slices_of(s)
		end)()
		if slices then
			bench_rss(slices)
		else
			printf("%s.rss.decode1g NOT MEASURED: corpus missing", L)
		end
	else
		printf("%s.rss.decode1g NOT MEASURED: core.decoder missing", L)
	end
end
