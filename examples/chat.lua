-- A streaming chat in the terminal: reads lines from standard input, prints the model's
-- answer token by token as it streams, and keeps the conversation history.
--
--   lua5.4 examples/chat.lua            (credentials and region from the environment)
--
-- Environment: AWS_REGION (or AWS_DEFAULT_REGION), credentials as the AWS CLI takes them
-- from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN] or
-- AWS_BEARER_TOKEN_BEDROCK), AWS_ENDPOINT_URL_BEDROCK_RUNTIME to talk to the emulator,
-- BEDROCK_MODEL_ID to pick the model, BEDROCK_SYSTEM for a system prompt,
-- BEDROCK_CHAT_ECHO=1 to echo input lines (when they come from a pipe).
-- `DEMO_INTERACTIVE=1 make demo` runs it against the emulator.
-- Commands: /reset forgets the conversation, /quit (or end of input) leaves.
local bedrock = require "bedrock"

local model = os.getenv("BEDROCK_MODEL_ID") or "anthropic.claude-3-haiku-20240307-v1:0"
local system = os.getenv("BEDROCK_SYSTEM")
local echo = os.getenv("BEDROCK_CHAT_ECHO") == "1"

local client, err = bedrock.client{}
if not client then
	io.stderr:write("chat: ", tostring(err), "\n")
	os.exit(1)
end

local history = {}

local function prompt()
	io.write("you> ")
	io.flush()
end

local function ask(line)
	history[#history + 1] = { role = "user", content = { { text = line } } }
	local req = { modelId = model, messages = history, inferenceConfig = { maxTokens = 512 } }
	if system then req.system = { { text = system } } end
	local stream, e = client:converse_stream(req)
	if not stream then
		history[#history] = nil
		return nil, e
	end
	io.write("assistant> ")
	local parts = {}
	-- the iterator raises on a failure mid-stream; catch it to keep the chat going
	local ok, perr = pcall(function()
		for ev in stream do
			local d = ev.contentBlockDelta
			if d and d.delta.text then
				io.write(d.delta.text)
				io.flush()
				parts[#parts + 1] = d.delta.text
			end
		end
	end)
	io.write("\n")
	if not ok then
		history[#history] = nil
		return nil, perr
	end
	history[#history + 1] = { role = "assistant", content = { { text = table.concat(parts) } } }
	return true
end

prompt()
for line in io.lines() do
	if echo then print(line) end
	if line == "/quit" then break end
	if line == "/reset" then
		history = {}
		print("(conversation cleared)")
	elseif line:match("%S") then
		local ok, e = ask(line)
		if not ok then io.stderr:write("chat: ", tostring(e), "\n") end
	end
	prompt()
end
io.write("\n")
client:close()
