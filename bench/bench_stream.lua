-- The client's event-stream path without the network: the corpus bytes, cut once into
-- 64 KiB slices (as the transport hands them out), go through bedrock.response.stream
-- (the Stream of a live response: core.decoder, JSON payloads, the output shape's
-- readers), and every event reaches the caller's `for` loop in the API's shape.
-- Baseline, interleaved pass by pass in the same process: the same slices through
-- core.decoder alone (each event's headers[":event-type"] and #payload read).
--   small.es as ConverseStream: events/s (goal >= 0.5 M on Lua 5.4, >= 1 M on LuaJIT)
--   large.es as InvokeModelWithResponseStream (64 KB..1 MB chunks): MB/s of decoded chunk
--     bytes delivered (goal >= 1 GB/s)
-- Usage: lua5.4|luajit bench/bench_stream.lua CORPUS_DIR [passes]
local B = require "common"
local dir = arg[1] or (B.bench_dir .. "/corpus")
local npasses = tonumber(arg[2]) or 5
local L = B.lua_label
local printf = B.printf

local core, why = B.core()
if not core then
	printf("%s.client_stream NOT MEASURED: bedrock.core does not load (%s)", L, why)
	return
end
local okc, response = pcall(require, "bedrock.response")
local okp, operations = pcall(require, "bedrock.operations")
if not (okc and okp and response.stream) then
	printf("%s.client_stream NOT MEASURED: bedrock.response.stream is missing", L)
	return
end

local SLICE = 65536

local function slices_of(s)
	local t = {}
	for i = 1, #s, SLICE do t[#t + 1] = s:sub(i, i + SLICE - 1) end
	return t
end

local function stream_of(plan, slices)
	local i = 0
	local src = { read = function()
		i = i + 1
		return slices[i]
	end }
	return response.stream(plan, src, 200, {})
end

local function decoder_only(slices)
	local dec = core.decoder()
	local n, bytes = 0, 0
	for i = 1, #slices do
		local _, ferr = dec:feed(slices[i])
		if ferr then error("feed: " .. tostring(ferr)) end
		while true do
			local h, p = dec:next()
			if not h then break end
			if h[":event-type"] then n = n + 1; bytes = bytes + #p end
		end
	end
	return n, bytes
end

local function converse_events(slices)
	local s = stream_of(operations.plans.ConverseStream, slices)
	-- the corpus is a run of text deltas, no messageStop: not a truncated answer here
	s.final_event = nil
	local n, chars = 0, 0
	for ev in s do
		n = n + 1
		local d = ev.contentBlockDelta
		chars = chars + #d.delta.text + d.contentBlockIndex
	end
	return n, chars
end

local function invoke_chunks(slices)
	local s = stream_of(operations.plans.InvokeModelWithResponseStream, slices)
	local n, bytes = 0, 0
	for ev in s do
		n = n + 1
		bytes = bytes + #ev.chunk.bytes
	end
	return n, bytes
end

-- Interleaved passes (after one warm-up of each); medians. A pass goes reps times over
-- the corpus: with one time (100,000 small events) a LuaJIT pass did or did not hold a
-- whole garbage-collector cycle, and the pass rates alternated between two values
-- (0.82 and 1.35 M events/s in one run); four times over, every pass holds whole cycles
-- and the median is the rate with the collector's share in it.
local function interleaved(f, g, body, reps)
	reps = reps or 1
	local function run(h)
		local n, b = 0, 0
		for _ = 1, reps do
			local n1, b1 = h(body)
			n, b = n + n1, b + b1
		end
		return n, b
	end
	run(f); run(g)
	local tf, tg, nf, bf, ng, bg = {}, {}
	for i = 1, npasses do
		local t0 = B.now()
		nf, bf = run(f)
		tf[i] = B.now() - t0
		t0 = B.now()
		ng, bg = run(g)
		tg[i] = B.now() - t0
	end
	return B.median(tf), nf, bf, B.median(tg), ng, bg
end

local small = B.read(dir .. "/small.es")
if not small then
	printf("%s.client_stream.small NOT MEASURED: corpus %s/small.es missing", L, dir)
else
	local t, n, _, tb, nb = interleaved(converse_events, decoder_only, slices_of(small), 4)
	local goal = L == "luajit" and 1e6 or 5e5
	printf("%s.client_stream.small %7.3f M events/s (%d ConverseStream events a pass: 4 x %.1f MB, in 64 KiB slices)"
		.. " reaching the caller's for loop through the client's Stream | core.decoder alone %.3f M events/s"
		.. " (same run, interleaved) | client/decoder time %.2fx | goal >= %.1f M: %s",
		L, n / t / 1e6, n, #small / 1e6, nb / tb / 1e6, t / tb, goal / 1e6, B.verdict(n / t >= goal))
	B.record(L .. ".client_stream.small.events_per_s", n / t)
end

local large = B.read(dir .. "/large.es")
if not large then
	printf("%s.client_stream.large NOT MEASURED: corpus %s/large.es missing", L, dir)
else
	local t, n, bytes, tb, _, wire = interleaved(invoke_chunks, decoder_only, slices_of(large))
	printf("%s.client_stream.large %7.0f MB/s of chunk bytes (%d InvokeModelWithResponseStream chunks of 64 KB..1 MB,"
		.. " %.1f MB decoded from %.1f MB of base64 payloads) reaching the caller's for loop | core.decoder alone"
		.. " %.0f MB/s of payload (same run, interleaved) | client/decoder time %.2fx | goal >= 1000 MB/s: %s",
		L, bytes / t / 1e6, n, bytes / 1e6, wire / 1e6, wire / tb / 1e6, t / tb, B.verdict(bytes / t >= 1e9))
	B.record(L .. ".client_stream.large.bytes_per_s", bytes / t)
end
