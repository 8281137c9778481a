-- The operations as data: one plan per operation, compiled once from the generated model
-- (lua/bedrock/model.lua) and used by the one generic request path in client.lua.
--
-- plan fields:
--   name, method_name (snake_case), http_method, uri
--   segments      list of literal strings and { label = member } parts of the URI
--   labels        members bound to the path        { member =, node = }
--   query         members bound to the query       { member =, name =, node = }
--   headers       members bound to request headers { member =, name (lower-case), node = }
--   input, output nodes; body (input node that writes only unbound members) for JSON ops
--   payload       name of the input payload member (InvokeModel* "body", bidi "body")
--   payload_kind  "blob" | "eventstream" | nil (JSON body)
--   output_payload, output_payload_kind ("blob" | "eventstream"), output_headers
--   output_stream the eventstream node of the response (streaming operations)
--   input_stream  the eventstream node of the request (bidirectional operation)
--   errors        exception name -> node, for the operation
--   idempotency_token member to fill with a UUIDv4 when absent
--   paginator     { input_token, output_token, limit_key, result_key } (ListAsyncInvokes)
--   has_body      false for GET
-- Small documented hooks (validation rules the model cannot express) are at the end.
local model = require "bedrock.model"
local shapes = require "bedrock.shapes"

local _M = { _VERSION = "0.1.0" }

local nodes = shapes.compile(model)
_M.nodes = nodes
_M.model = model

-- The paginator is in botocore's paginators-1.json, not in service-2.json.
local paginators = {
	ListAsyncInvokes = { input_token = "nextToken", output_token = "nextToken",
		limit_key = "maxResults", result_key = "asyncInvokeSummaries" },
}

local function snake(name)
	return (name:gsub("(%l)(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2"):lower())
end
_M.snake = snake

-- All exception shapes by name (any operation may see any of them in practice).
local exceptions = {}
for name, node in pairs(nodes) do
	if node.exception then exceptions[name] = node end
end
_M.exceptions = exceptions

local function compile(name, op)
	local input = nodes[op.input.shape]
	local output = op.output and nodes[op.output.shape]
	local plan = {
		name = name, method_name = snake(name),
		http_method = op.http.method, uri = op.http.requestUri,
		input = input, output = output,
		labels = {}, query = {}, headers = {}, output_headers = {},
		errors = {}, segments = {},
		paginator = paginators[name],
		has_body = op.http.method ~= "GET",
		readonly = op.readonly, idempotent = op.idempotent,
	}
	for _, e in ipairs(op.errors or {}) do plan.errors[e.shape] = nodes[e.shape] end

	-- URI template -> segments
	local uri = op.http.requestUri
	local pos = 1
	while true do
		local a, b, label = uri:find("{([%w_]+)%+?}", pos)
		if not a then break end
		if a > pos then plan.segments[#plan.segments + 1] = uri:sub(pos, a - 1) end
		plan.segments[#plan.segments + 1] = { label = label, cache = {}, cached = 0 }
		pos = b + 1
	end
	if pos <= #uri then plan.segments[#plan.segments + 1] = uri:sub(pos) end

	for _, mname in ipairs(input.member_names) do
		local m = input.members[mname]
		if m.location == "uri" then
			plan.labels[#plan.labels + 1] = { member = mname, node = m.node }
		elseif m.location == "querystring" then
			plan.query[#plan.query + 1] = { member = mname, name = m.location_name, node = m.node }
		elseif m.location == "header" then
			plan.headers[#plan.headers + 1] = { member = mname, name = m.location_name:lower(),
				wire_name = m.location_name, node = m.node }
		end
		if m.idempotency_token then plan.idempotency_token = mname end
	end
	local payload = input.payload
	if payload then
		plan.payload = payload
		local pk = input.members[payload].node.kind
		plan.payload_kind = pk
		if pk == "eventstream" then plan.input_stream = input.members[payload].node end
	elseif plan.has_body then
		plan.body = shapes.body_node(input)
	end

	if output then
		for _, mname in ipairs(output.member_names) do
			local m = output.members[mname]
			if m.location == "header" then
				plan.output_headers[#plan.output_headers + 1] = { member = mname,
					name = m.location_name:lower(), node = m.node }
			end
		end
		if output.payload then
			plan.output_payload = output.payload
			local pn = output.members[output.payload].node
			plan.output_payload_kind = pn.kind
			if pn.kind == "eventstream" then plan.output_stream = pn end
		end
	end
	return plan
end

local plans, by_method = {}, {}
for name, op in pairs(model.operations) do
	local plan = compile(name, op)
	plans[name] = plan
	by_method[plan.method_name] = plan
end
_M.plans = plans
_M.by_method = by_method

-- What each operation does, for the API reference (.ci/apidoc.lua checks that every
-- operation of the model has one line and no line names another).
--- @operation ApplyGuardrail Checks a text against a guardrail resource (by id and
-- version), without a model: the action taken and the assessments.
--- @operation Converse One conversation turn with any model in one request/response
-- shape (messages, system prompts, tools, inference parameters).
--- @operation ConverseStream Converse with the answer streamed as events
-- (`messageStart`, `contentBlockDelta`, …, `metadata`).
--- @operation CountTokens The number of input tokens a Converse or InvokeModel request
-- would use, without running the model.
--- @operation GetAsyncInvoke The status and output location of an asynchronous invocation.
--- @operation InvokeGuardrailChecks Scores messages against inline checks (prompt attack,
-- sensitive information, …) without a guardrail resource; detects, never blocks.
--- @operation InvokeModel One request in the model's own body format (`body`, a string of
-- bytes or a table sent as JSON); the answer's bytes in `result.body`.
--- @operation InvokeModelWithBidirectionalStream Input events sent while output events are
-- read, over HTTP/2 (speech models such as Nova Sonic).
--- @operation InvokeModelWithResponseStream InvokeModel with the answer streamed as
-- `{ chunk = { bytes = … } }` events in the model's own format.
--- @operation ListAsyncInvokes The asynchronous invocations, a page at a time
-- (`client:list_async_invokes_pages` follows `nextToken`).
--- @operation StartAsyncInvoke Starts an asynchronous invocation whose output goes to S3;
-- `clientRequestToken` is filled with a UUIDv4 when absent.

-- Operation names in a stable order.
local names = {}
for name in pairs(plans) do names[#names + 1] = name end
table.sort(names)
_M.names = names

---------------------------------------------------------------------------- hooks
-- Rules the service enforces that the model cannot state. Each runs after the
-- structure's own checks, only when validating; returns an error message or nil.

-- A message must have content (the service refuses an empty content list).
-- (hooks run after the members were checked: a list member is a table here, or NULL)
local NULL = require("bedrock.json").null
nodes.Message.hook = function(v, st)
	local c = v.content
	if c ~= nil and c ~= NULL and #c == 0 and next(c) == nil then
		st.n = st.n + 1; st[st.n] = "content"
		return "a message needs at least one content block"
	end
end

-- messages, when given, must not be empty (Converse, ConverseStream, CountTokens).
local function messages_not_empty(v, st)
	local m = v.messages
	if m ~= nil and m ~= NULL and #m == 0 and next(m) == nil then
		st.n = st.n + 1; st[st.n] = "messages"
		return "messages must not be empty"
	end
end
nodes.ConverseRequest.hook = messages_not_empty
nodes.ConverseStreamRequest.hook = messages_not_empty
nodes.ConverseTokensRequest.hook = messages_not_empty

-- CountTokens' invokeModel.body is InvokeModel's body inside JSON (a blob, so base64): it
-- takes what invoke_model takes, a string of bytes or a Lua table sent as JSON text.
do
	local json = require "bedrock.json"
	local member = nodes.InvokeModelTokensRequest.members.body
	local write_blob = member.write
	member.write = function(v, buf, n, st)
		if type(v) == "table" and v ~= NULL then
			local text, err = json.encode(v)
			if not text then return nil, err end
			v = text
		end
		return write_blob(v, buf, n, st)
	end
end

return _M
