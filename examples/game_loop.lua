-- A frame loop that renders a spinner while three chats stream, all in one Lua state:
-- each chat is a bedrock.async task, and the loop calls async.step(0) once a frame
-- (never blocks), then "renders" and sleeps until the next frame.
--
--   lua5.4 examples/game_loop.lua      (credentials, region, endpoint from the environment)
--
-- Environment: as examples/chat.lua (AWS_REGION, credentials, AWS_ENDPOINT_URL_BEDROCK_RUNTIME
-- for the emulator, BEDROCK_MODEL_ID). GAME_FRAMES_MAX bounds the frames (default 3000).
local bedrock = require "bedrock"
local async = require "bedrock.async"
local core = require "bedrock.core"

local model = os.getenv("BEDROCK_MODEL_ID") or "anthropic.claude-3-haiku-20240307-v1:0"
local max_frames = tonumber(os.getenv("GAME_FRAMES_MAX") or "3000")
local FRAME = 1 / 60

local client = assert(bedrock.client{})

local prompts = { "Tell me about dragons", "Name three rivers", "What is a frame loop" }
local text = { "", "", "" }

for i, p in ipairs(prompts) do
	async.spawn(function()
		local stream = assert(client:converse_stream{ modelId = model,
			messages = { { role = "user", content = { { text = p } } } } })
		for ev in stream do
			local d = ev.contentBlockDelta
			if d and d.delta.text then text[i] = text[i] .. d.delta.text end
		end
	end)
end

local spinner = { "|", "/", "-", "\\" }
local frames, longest = 0, 0
while frames < max_frames do
	local t0 = core.monotonic()
	local live = async.step(0)            -- advance every chat without blocking
	local spent = core.monotonic() - t0
	if spent > longest then longest = spent end
	frames = frames + 1
	io.write(("\r%s frame %d  chats streaming: %d "):format(spinner[frames % 4 + 1], frames, live))
	io.flush()
	if live == 0 then break end
	core.sleep(FRAME)                     -- the rest of the frame: render, physics, ...
end
io.write("\n")
for i = 1, #prompts do print(("chat %d: %s"):format(i, text[i])) end
print(("%d frames, longest step %.1f ms"):format(frames, longest * 1000))
if async.count() > 0 then
	io.stderr:write("game_loop: chats still streaming after ", frames, " frames\n")
	os.exit(1)
end
