-- The tool-calling loop behind client:converse_with_tools(req).
--
--   tools.config(tools, choice) -> toolConfig | nil, err   (tools sorted by name)
--   tools.results(client, tools, msg, ctx, opts) -> user message of toolResult blocks
--   tools.loop(client, req) -> response (+ messages, usage, turns) | nil, err
--   tools.content(blocks)  -- a handler's return value that is sent as these blocks
--
-- A handler is function(input, ctx) -> result. The result becomes the toolResult's
-- content: a table as { json = result }, a string as { text = result }, nil as
-- { text = "" }, a number or boolean as its text, and tools.content{ ... } as the given
-- content blocks (images, documents, several texts). A handler that raises becomes a
-- toolResult with status "error" and the message as text (raise tools.content{...} to
-- send an error result with blocks of your own). ctx = { client, toolUseId, name, turn,
-- messages } (messages: the history so far, ending with the assistant message that
-- asked for the tool).
local backend = require("bedrock.async").backend
local errors = require "bedrock.errors"
local json = require "bedrock.json"

local _M = { _VERSION = "0.1.0" }

local type, pairs, ipairs, tostring, pcall, setmetatable, getmetatable, error =
	type, pairs, ipairs, tostring, pcall, setmetatable, getmetatable, error
local sort = table.sort

--- @module tools
-- `client:converse_with_tools(req)` takes every Converse member (`modelId`, `messages`,
-- `system`, `inferenceConfig`, …) plus the members below, which are not sent. One user
-- message of `toolResult` blocks goes back per turn, one per `toolUse` in the order of the
-- toolUse blocks. A handler's result becomes the content: a table `{ json = result }`, a
-- string `{ text = result }`, `nil` `{ text = "" }`, a number or boolean its text,
-- `tools.content{…}` those blocks. A handler that raises, an unknown tool name or a refusal
-- by `approve` becomes a toolResult with `status = "error"`: the model sees it and the
-- loop goes on. `ctx` is `{ client, toolUseId, name, turn, messages }` for handlers and
-- `approve`, `{ client, turn, messages }` for `on_event`. Past `max_turns` model calls it
-- returns `nil, err` with `err.code == "MaxTurnsExceeded"` and `err.messages`,
-- `err.usage`, `err.turns`; a failed model call returns its error with `err.messages`.

-- The loop's own members of the request (the rest is sent to Converse).
--- @options converse_with_tools
local LOOP_KEYS = {
	tools = true, -- `{ <name> = { description =, inputSchema = <JSON schema table>, handler =
	-- function(input, ctx) } }`; sent as `toolConfig.tools` sorted by name (stable request
	-- bytes for prompt caching). `inputSchema` defaults to an empty object schema
	max_turns = true, -- model calls at most (default 10)
	parallel = true, -- run one turn's handlers concurrently, each as a `bedrock.async` task
	-- (results still in toolUse order)
	on_event = true, -- `function(event, ctx)`: each turn uses ConverseStream and every event is
	-- passed as it arrives
	approve = true, -- `function(tool_use, ctx) -> true | false, reason`, called before each
	-- handler; a refusal becomes an error result with the reason
}
--- @field toolres.messages The whole history: your messages, every assistant and toolResult
-- message, ending with the final assistant message.
--- @field toolres.usage `inputTokens`, `outputTokens`, `totalTokens` summed over every turn.
--- @field toolres.turns The number of model calls made.

local function verr(field, message)
	return errors.new{ code = "ValidationError", field = field, message = message }
end

local Content = { __name = "bedrock.tools.Content" }

--- tools.content(blocks) -> content
-- A handler's result (or raised value) sent as these content blocks, e.g.
-- `tools.content{ { text = "chart" }, { image = { format = "png", source = { bytes = png } } } }`.
function _M.content(blocks)
	if type(blocks) ~= "table" then error(verr("content", "expects a list of content blocks"), 2) end
	return setmetatable({ blocks = blocks }, Content)
end

--- tools.config(tools [, choice]) -> toolConfig | nil, err
-- The `toolConfig` for a tools table (`{ tools = { { toolSpec = … }, … }, toolChoice = choice }`,
-- sorted by name); a bad table is a `ValidationError` naming the tool.
function _M.config(tools, choice)
	if type(tools) ~= "table" then
		return nil, verr("tools", "must be a table of name = { description, inputSchema, handler }")
	end
	local names = {}
	for name, spec in pairs(tools) do
		if type(name) ~= "string" then return nil, verr("tools", "keys must be tool names (strings)") end
		if type(spec) ~= "table" then return nil, verr("tools." .. name, "must be a table") end
		if type(spec.handler) ~= "function" then
			return nil, verr("tools." .. name .. ".handler", "must be a function(input, ctx)")
		end
		if spec.description ~= nil and type(spec.description) ~= "string" then
			return nil, verr("tools." .. name .. ".description", "must be a string")
		end
		if spec.inputSchema ~= nil and type(spec.inputSchema) ~= "table" then
			return nil, verr("tools." .. name .. ".inputSchema", "must be a table (a JSON schema)")
		end
		names[#names + 1] = name
	end
	if #names == 0 then return nil, verr("tools", "needs at least one tool") end
	sort(names)
	local list = json.array{}
	for i, name in ipairs(names) do
		local spec = tools[name]
		local schema = spec.inputSchema or { type = "object", properties = {} }
		local n = 0
		for _ in pairs(schema) do n = n + 1 end
		if not (n == 1 and schema.json ~= nil) then schema = { json = schema } end
		list[i] = { toolSpec = { name = name, description = spec.description, inputSchema = schema } }
	end
	return { tools = list, toolChoice = choice }
end

-- The toolResult content of a handler's outcome.
local function result_content(v)
	local tv = type(v)
	if tv == "table" and getmetatable(v) == Content then return v.blocks end
	if tv == "table" then return { { json = v } } end
	if tv == "string" then return { { text = v } } end
	if v == nil then return { { text = "" } } end
	return { { text = tostring(v) } }
end

local function error_text(e)
	if type(e) == "table" and e.message ~= nil then return tostring(e.message) end
	return tostring(e)
end

-- Runs one toolUse: approve, then the handler under pcall. -> toolResult block
local function run_one(client, tools, tu, ctx, approve)
	local id = tu.toolUseId
	local spec = tools[tu.name]
	local function fail(content)
		return { toolResult = { toolUseId = id, status = "error", content = json.array(content) } }
	end
	if type(spec) ~= "table" or type(spec.handler) ~= "function" then
		return fail{ { text = "Unknown tool: " .. tostring(tu.name) } }
	end
	local c = { client = client, toolUseId = id, name = tu.name, turn = ctx.turn, messages = ctx.messages }
	if approve then
		local ok, yes, reason = pcall(approve, tu, c)
		if not ok then return fail{ { text = "approval failed: " .. error_text(yes) } } end
		if not yes then return fail{ { text = reason and tostring(reason) or "The call was not approved." } } end
	end
	local ok, v = pcall(spec.handler, tu.input, c)
	if not ok and errors.is(v, "Cancelled") then error(v, 0) end -- the loop's task was cancelled
	if not ok then
		if type(v) == "table" and getmetatable(v) == Content then return fail(v.blocks) end
		return fail{ { text = error_text(v) } }
	end
	return { toolResult = { toolUseId = id, content = json.array(result_content(v)) } }
end

--- tools.results(client, tools, msg [, ctx [, opts]]) -> message
-- The user message `{ role = "user", content = { toolResult… } }` answering the assistant
-- message `msg`, without a model call (for loops of your own): one toolResult per toolUse
-- block of `msg`, in that order, with the same toolUseId. ctx = `{ turn, messages }`;
-- opts = `{ parallel, approve }`. With parallel, each handler runs as a bedrock.async
-- task; results still come in order.
function _M.results(client, tools, msg, ctx, opts)
	opts = opts or {}
	ctx = ctx or {}
	local uses = {}
	for _, b in ipairs(msg and msg.content or {}) do
		if type(b) == "table" and b.toolUse then uses[#uses + 1] = b.toolUse end
	end
	local content = json.array{}
	if opts.parallel and #uses > 1 then
		local tasks = {}
		for i, tu in ipairs(uses) do
			tasks[i] = backend.spawn(run_one, client, tools, tu, ctx, opts.approve)
		end
		for i, t in ipairs(tasks) do
			local ok, r = pcall(t.await, t)
			if not ok and errors.is(r, "Cancelled") then
				-- the loop itself was cancelled: so are the handlers still running
				for k = i, #tasks do tasks[k]:cancel() end
				error(r, 0)
			end
			if not ok then
				r = { toolResult = { toolUseId = uses[i].toolUseId, status = "error",
					content = json.array{ { text = error_text(r) } } } }
			end
			content[i] = r
		end
	else
		for i, tu in ipairs(uses) do content[i] = run_one(client, tools, tu, ctx, opts.approve) end
	end
	return { role = "user", content = content }
end

local function add_usage(sum, u)
	if type(u) ~= "table" then return end
	for _, k in ipairs{ "inputTokens", "outputTokens", "totalTokens" } do
		if type(u[k]) == "number" then sum[k] = (sum[k] or 0) + u[k] end
	end
end

-- One model call: Converse, or ConverseStream with every event passed to on_event and
-- the turn assembled by the stream's own collect().
local function model_turn(client, creq, on_event, ctx)
	if not on_event then return client:converse(creq) end
	local st, err = client:converse_stream(creq)
	if not st then return nil, err end
	local ok, e = pcall(function()
		for ev in st.next, st do on_event(ev, ctx) end
	end)
	if not ok then
		st:close()
		if type(e) == "table" then return nil, e end
		return nil, errors.new{ code = "StreamError", message = tostring(e) }
	end
	return st:collect()
end

--- tools.loop(client, req) -> result | nil, err
-- `client:converse_with_tools(req)`.
function _M.loop(client, req)
	if type(req) ~= "table" then return nil, verr("request", "must be a table") end
	local max_turns = req.max_turns
	if max_turns == nil then max_turns = 10 end
	if type(max_turns) ~= "number" or max_turns < 1 or max_turns % 1 ~= 0 then
		return nil, verr("max_turns", "must be an integer >= 1")
	end
	if req.on_event ~= nil and type(req.on_event) ~= "function" then
		return nil, verr("on_event", "must be a function(event, ctx)")
	end
	if req.approve ~= nil and type(req.approve) ~= "function" then
		return nil, verr("approve", "must be a function(tool_use, ctx) -> true | false, reason")
	end
	if type(req.messages) ~= "table" then return nil, verr("messages", "must be a list of messages") end
	local tc = req.toolConfig
	if tc ~= nil and (type(tc) ~= "table" or tc.tools ~= nil) then
		return nil, verr("toolConfig", "give tools in req.tools (toolConfig may only carry toolChoice)")
	end
	local cfg, err = _M.config(req.tools, tc and tc.toolChoice)
	if not cfg then return nil, err end
	local history = {}
	for i, m in ipairs(req.messages) do history[i] = m end
	local creq = {}
	for k, v in pairs(req) do if not LOOP_KEYS[k] then creq[k] = v end end
	creq.toolConfig = cfg
	local usage = {}
	local opts = { parallel = req.parallel, approve = req.approve }
	for turn = 1, max_turns do
		creq.messages = json.array(history)
		local ctx = { client = client, turn = turn, messages = history }
		local res
		res, err = model_turn(client, creq, req.on_event, ctx)
		if not res then
			if type(err) == "table" then err.messages = history end
			return nil, err
		end
		add_usage(usage, res.usage)
		local msg = res.output and res.output.message
		if msg then history[#history + 1] = msg end
		if res.stopReason ~= "tool_use" then
			res.messages, res.usage, res.turns = history, usage, turn
			return res
		end
		if turn == max_turns then
			local e = errors.new{ code = "MaxTurnsExceeded", messages = history, usage = usage, turns = turn,
				message = "the model still asked for tools after " .. turn .. " model calls (max_turns)" }
			return nil, e
		end
		history[#history + 1] = _M.results(client, req.tools, msg, ctx, opts)
	end
end

return _M
