-- What lua-bedrock is for, in under a minute, against bedrock-emulator (`make demo`):
-- a streaming chat, a tool answered by a Lua function, several streams at once in one
-- Lua state, and the figures that matter (time to first token, events per second).
--
--   make demo                                  (starts the emulator, runs this, stops)
--   lua5.4 examples/demo.lua                   (with the environment below)
--
-- Environment: AWS_ENDPOINT_URL_BEDROCK_RUNTIME (the emulator's URL), AWS_REGION, and
-- credentials the emulator accepts (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
-- BEDROCK_DEMO_STREAMS (default 4) streams at once in part 3, BEDROCK_DEMO_EVENTS (default
-- 20000) events in part 4. The emulator's answers are deterministic: it echoes the text
-- ("You said: ...") word by word, calls a tool named in the text, and `__stream_words N`
-- makes it stream N words; with --event-delay it paces events as a model would.
local bedrock = require "bedrock"
local core = require "bedrock.core"

local MODEL = os.getenv("BEDROCK_MODEL_ID") or "anthropic.claude-3-haiku-20240307-v1:0"
local N_STREAMS = tonumber(os.getenv("BEDROCK_DEMO_STREAMS") or "") or 4
local N_EVENTS = tonumber(os.getenv("BEDROCK_DEMO_EVENTS") or "") or 20000

-- A wall clock in seconds: the C core's monotonic clock when it has one, else Linux's
-- /proc/uptime (10 ms steps), else os.time.
local now = core.monotonic
if not now then
	now = function()
		local f = io.open("/proc/uptime", "r")
		if not f then return os.time() end
		local t = f:read("*n")
		f:close()
		return t
	end
end

-- Time to first event of the last stream, from the client's on_response hook.
local last_timing
local client = assert(bedrock.client{
	on_response = function(info) if info.stream then last_timing = info.timing end end,
})

local function user(text)
	return { role = "user", content = { { text = text } } }
end

local function heading(s)
	io.write("\n== ", s, " ", string.rep("=", 70 - #s), "\n")
end

local function figures(events, started, ttft)
	local took = now() - started
	return string.format("first token after %.3f s, %d events in %.3f s (%.0f events/s)",
		ttft or 0, events, took, events / math.max(took, 1e-6))
end

---------------------------------------------------------------- 1. a streaming chat
heading("1. A streaming chat (ConverseStream, token by token)")
local history = {}
for _, line in ipairs{ "Hello there, who are you?", "Tell me a short story about a lighthouse keeper." } do
	io.write("you> ", line, "\nassistant> ")
	history[#history + 1] = user(line)
	local started = now()
	local stream = assert(client:converse_stream{ modelId = MODEL, messages = history,
		inferenceConfig = { maxTokens = 200 } })
	local ttft = last_timing and last_timing.first_event
	local parts, events = {}, 0
	for ev in stream do
		events = events + 1
		local d = ev.contentBlockDelta
		if d and d.delta.text then
			io.write(d.delta.text)
			io.flush()
			parts[#parts + 1] = d.delta.text
		end
	end
	io.write("\n   [", figures(events, started, ttft), "]\n")
	history[#history + 1] = { role = "assistant", content = { { text = table.concat(parts) } } }
end

---------------------------------------------------------------- 2. a tool call
heading("2. A tool answered by a Lua function (Converse + toolUse/toolResult)")
-- the Lua side of the tool
local function get_weather(input)
	local table_of = { Lisbon = { celsius = 21, sky = "sunny" }, Oslo = { celsius = 4, sky = "snow" } }
	local w = table_of[input.city] or { celsius = 15, sky = "unknown" }
	return { city = input.city, celsius = w.celsius, sky = w.sky }
end
local tool_config = { tools = { { toolSpec = {
	name = "get_weather",
	description = "Current weather for a city",
	inputSchema = { json = { type = "object", required = { "city" },
		properties = { city = { type = "string", enum = { "Lisbon", "Oslo" } } } } },
} } } }
local question = "What is the weather in Lisbon? Use get_weather."
print("you> " .. question)
local messages = { user(question) }
local turns = 0
while true do
	turns = turns + 1
	local res = assert(client:converse{ modelId = MODEL, messages = messages, toolConfig = tool_config })
	local msg = res.output.message
	messages[#messages + 1] = msg
	if res.stopReason ~= "tool_use" then
		print("assistant> " .. msg.content[1].text)
		break
	end
	local results = {}
	for _, block in ipairs(msg.content) do
		local use = block.toolUse
		if use then
			io.write("   model asks: ", use.name, " ", bedrock.json.encode(use.input), "\n")
			local out = get_weather(use.input)
			io.write("   Lua answers: ", bedrock.json.encode(out), "\n")
			results[#results + 1] = { toolResult = { toolUseId = use.toolUseId,
				content = { { json = out } } } }
		end
	end
	messages[#messages + 1] = { role = "user", content = results }
end
print(string.format("   [%d model calls]", turns))

---------------------------------------------------------------- 3. several streams at once
heading(string.format("3. %d streams at once in one Lua state", N_STREAMS))
local prompts = {}
for i = 1, N_STREAMS do
	prompts[i] = "Stream number " .. i .. " says: the quick brown fox jumps over the lazy dog"
end

-- one after the other, for comparison
local started = now()
local seq_events = 0
for i = 1, N_STREAMS do
	for _ in assert(client:converse_stream{ modelId = MODEL, messages = { user(prompts[i]) } }) do
		seq_events = seq_events + 1
	end
end
local sequential = now() - started

-- at once: every stream's transfer shares the client's connection pool and progresses
-- whenever any of them waits, so reading them in turn takes about as long as the slowest
started = now()
local streams, counts, texts = {}, {}, {}
for i = 1, N_STREAMS do
	streams[i] = assert(client:converse_stream{ modelId = MODEL, messages = { user(prompts[i]) } })
	counts[i], texts[i] = 0, {}
end
local live, par_events = N_STREAMS, 0
while live > 0 do
	for i = 1, N_STREAMS do
		local s = streams[i]
		if s then
			local ev = s()
			if ev == nil then
				streams[i] = false
				live = live - 1
			else
				counts[i] = counts[i] + 1
				par_events = par_events + 1
				local d = ev.contentBlockDelta
				if d and d.delta.text then texts[i][#texts[i] + 1] = d.delta.text end
			end
		end
	end
end
local parallel = now() - started
for i = 1, N_STREAMS do
	print(string.format("   stream %d (%d events): %s", i, counts[i], table.concat(texts[i])))
end
print(string.format("   [one after the other: %d events in %.3f s; at once: %d events in %.3f s, %.1fx faster]",
	seq_events, sequential, par_events, parallel, sequential / math.max(parallel, 1e-6)))

---------------------------------------------------------------- 4. throughput
heading("4. Raw throughput: one long stream, as fast as the emulator sends it")
-- the emulator's pacing (a model's speed) is switched off for this part
local T = require "bedrock.transport.curl"
local admin = T.new{}
local endpoint = client.config.endpoint.url
local ok = admin:request{ method = "POST", url = endpoint .. "/_emulator/pacing?ms=0",
	headers = { { "x-emulator-admin", "1" } }, body = "" }
admin:close()
if not (ok and ok.status == 200) then
	print("   (skipped: the endpoint is not bedrock-emulator)")
else
	started = now()
	local events, bytes = 0, 0
	local s = assert(client:converse_stream{ modelId = MODEL,
		messages = { user("__stream_words " .. N_EVENTS) } })
	local ttft = last_timing and last_timing.first_event
	for ev in s do
		events = events + 1
		local d = ev.contentBlockDelta
		if d and d.delta.text then bytes = bytes + #d.delta.text end
	end
	print(string.format("   %d text bytes decoded and checked (CRC, UTF-8) from the event stream", bytes))
	print("   [" .. figures(events, started, ttft) .. "]")
end

client:close()
print("\ndemo: done")
