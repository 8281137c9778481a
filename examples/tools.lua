-- A tool loop with two tools: the model asks for tools, the handlers run, and the loop
-- goes on until the model answers. With the emulator, a prompt starting with
-- "__tool_plan" makes the model ask for the tools named there (see docs/emulator.md).
--
--   lua5.4 examples/tools.lua ["question"]   (credentials, region, endpoint from the environment)
local bedrock = require "bedrock"

local model = os.getenv("BEDROCK_MODEL_ID") or "anthropic.claude-3-haiku-20240307-v1:0"
local question = arg[1] or ('__tool_plan [[{"name":"get_weather","input":{"city":"Oslo"}},'
	.. '{"name":"convert","input":{"celsius":4}}]]')

local client = assert(bedrock.client{})

local res, err = client:converse_with_tools{
	modelId = model,
	messages = { { role = "user", content = { { text = question } } } },
	tools = {
		get_weather = {
			description = "Current weather for a city",
			inputSchema = { type = "object", properties = { city = { type = "string" } }, required = { "city" } },
			handler = function(input) return { city = input.city, celsius = 4, sky = "overcast" } end,
		},
		convert = {
			description = "Celsius to Fahrenheit",
			inputSchema = { type = "object", properties = { celsius = { type = "number" } }, required = { "celsius" } },
			handler = function(input) return ("%.1f F"):format(input.celsius * 9 / 5 + 32) end,
		},
	},
	parallel = true,
	on_event = function(ev)
		local d = ev.contentBlockDelta
		if d and d.delta.text then io.write(d.delta.text); io.flush() end
	end,
}
io.write("\n")
if not res then
	io.stderr:write("tools: ", tostring(err), "\n")
	os.exit(1)
end
for _, m in ipairs(res.messages) do
	for _, b in ipairs(m.content) do
		if b.toolUse then print(("  %s asked for %s"):format(m.role, b.toolUse.name)) end
		local tr = b.toolResult
		if tr then print(("  result for %s: %s"):format(tr.toolUseId, tr.status or "success")) end
	end
end
print(("answer after %d model calls, %d tokens: %s"):format(res.turns, res.usage.totalTokens,
	res.output.message.content[1].text))
