-- What lua-bedrock is for, in under a minute, against bedrock-emulator (`make demo`):
-- a streaming chat, a tool answered by a Lua function, several streams at once in one
-- Lua state, and the figures that matter (time to first token, events per second).
--
--   make demo                                  (starts the emulator, runs this, stops)
--   lua5.4 examples/demo.lua                   (with the environment below)
--
-- Environment: AWS_ENDPOINT_URL_BEDROCK_RUNTIME (the emulator's URL), AWS_REGION, and
-- credentials the emulator accepts (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
-- BEDROCK_DEMO_STREAMS (default 4) and BEDROCK_DEMO_MANY (default 50) streams at once in
-- part 3, BEDROCK_DEMO_EVENTS (default 20000) events in part 4. The emulator's answers are
-- deterministic: it echoes the text ("You said: ...") word by word, calls a tool named in
-- the text, and `__stream_words N` makes it stream N words; with --event-delay it paces
-- events as a model would.
local bedrock = require "bedrock"
local core = require "bedrock.core"

local MODEL = os.getenv("BEDROCK_MODEL_ID") or "anthropic.claude-3-haiku-20240307-v1:0"
local N_STREAMS = tonumber(os.getenv("BEDROCK_DEMO_STREAMS") or "") or 4
local N_EVENTS = tonumber(os.getenv("BEDROCK_DEMO_EVENTS") or "") or 20000
local N_MANY = tonumber(os.getenv("BEDROCK_DEMO_MANY") or "") or 50

-- seconds of the C core's monotonic clock
local now = core.monotonic

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
heading("2. A tool answered by a Lua function (client:converse_with_tools)")
local question = "What is the weather in Lisbon? Use get_weather."
print("you> " .. question)
io.write("assistant> ")
local res = assert(client:converse_with_tools{
	modelId = MODEL,
	messages = { user(question) },
	tools = {
		get_weather = {
			description = "Current weather for a city",
			inputSchema = { type = "object", required = { "city" },
				properties = { city = { type = "string", enum = { "Lisbon", "Oslo" } } } },
			-- the Lua side of the tool: the loop calls it when the model asks
			handler = function(input)
				local w = ({ Lisbon = { celsius = 21, sky = "sunny" }, Oslo = { celsius = 4, sky = "snow" } })[input.city]
					or { celsius = 15, sky = "unknown" }
				local out = { city = input.city, celsius = w.celsius, sky = w.sky }
				io.write("\n   model asks: get_weather ", bedrock.json.encode(input),
					"\n   Lua answers: ", bedrock.json.encode(out), "\nassistant> ")
				return out
			end,
		},
	},
	-- every turn streams: the answer appears as it is generated
	on_event = function(ev)
		local d = ev.contentBlockDelta
		if d and d.delta.text then io.write(d.delta.text); io.flush() end
	end,
})
print(string.format("\n   [%d model calls, %d tokens in all]", res.turns, res.usage.totalTokens))

---------------------------------------------------------------- 3. several streams at once
heading(string.format("3. %d streams at once in one Lua state (bedrock.async)", N_STREAMS))
local async = require "bedrock.async"
local prompts = {}
for i = 1, N_STREAMS do
	prompts[i] = "Stream number " .. i .. " says: the quick brown fox jumps over the lazy dog"
end

-- one stream: its text, its event count and its time to first token
local function one(prompt)
	local t0 = now()
	local text, events, ttft = {}, 0, nil
	for ev in assert(client:converse_stream{ modelId = MODEL, messages = { user(prompt) } }) do
		events = events + 1
		local d = ev.contentBlockDelta
		if d and d.delta.text then
			ttft = ttft or now() - t0
			text[#text + 1] = d.delta.text
		end
	end
	return table.concat(text), events, ttft
end

-- one after the other, for comparison
local started = now()
local seq_events = 0
for i = 1, N_STREAMS do
	local _, n = one(prompts[i])
	seq_events = seq_events + n
end
local sequential = now() - started

-- at once: each stream is a task; while one waits for its next event the others run
started = now()
local results = async.run(function()
	local tasks = {}
	for i = 1, N_STREAMS do tasks[i] = async.spawn(one, prompts[i]) end
	local out = {}
	for i, t in ipairs(tasks) do out[i] = { t:await() } end
	return out
end)
local parallel = now() - started
local par_events = 0
for i, r in ipairs(results) do
	par_events = par_events + r[2]
	print(string.format("   stream %d (%d events, first token after %.3f s): %s", i, r[2], r[3] or 0, r[1]))
end
print(string.format("   [one after the other: %d events in %.3f s; at once: %d events in %.3f s, %.1fx faster]",
	seq_events, sequential, par_events, parallel, sequential / math.max(parallel, 1e-6)))

-- and many more: the same in one Lua state, no threads
started = now()
local many = async.run(function()
	local tasks = {}
	for i = 1, N_MANY do tasks[i] = async.spawn(one, "Chat " .. i .. " in a crowd of many") end
	local total = 0
	for _, t in ipairs(tasks) do
		local _, n = t:await()
		total = total + n
	end
	return total
end)
local took = now() - started
print(string.format("   [%d streams at once: %d events in %.3f s, %.0f events/s]", N_MANY, many, took,
	many / math.max(took, 1e-6)))

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
