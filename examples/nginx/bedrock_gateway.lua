-- An SSE chat gateway in front of Amazon Bedrock, for nginx's Lua module.
--
--   POST /chat   {"model": "...", "messages": [{"role": "user", "content": "Hi"}] | "prompt": "Hi",
--                 "system": "...", "max_tokens": 512}
--   -> text/event-stream:
--        event: text     data: {"text": "Hel"}           (as the model writes)
--        event: done     data: {"stopReason": "end_turn", "usage": {...}}
--        event: error    data: {"code": "...", "message": "...", "retryable": false}
--   GET /healthz -> ok
--
-- One client per worker, made on first use: credentials from the standard chain
-- (environment, profile files, container or instance roles: whatever the worker can
-- see through nginx's `env` directives), region from AWS_REGION, endpoint from
-- AWS_ENDPOINT_URL_BEDROCK_RUNTIME (the emulator, in the demo). Inside nginx the client
-- talks through cosockets, so a worker serves many chats at once and never blocks.
local bedrock = require "bedrock"
local cjson = require "cjson.safe"

local _M = {}

local MAX_BODY = 1024 * 1024
local client

local function get_client()
	if client then return client end
	local c, err = bedrock.client{
		timeouts = { connect = 5000, first_byte = 60000, idle = 30000 },
	}
	if not c then return nil, err end
	client = c
	return c
end

local function sse(event, data)
	ngx.print("event: ", event, "\ndata: ", cjson.encode(data), "\n\n")
	return ngx.flush(true)
end

local function sse_error(code, message, retryable)
	return sse("error", { code = code, message = message, retryable = retryable or false })
end

-- The Converse request for a chat body, or nil, message.
local function converse_request(body)
	local model = body.model or os.getenv("BEDROCK_MODEL")
	if type(model) ~= "string" or model == "" then
		return nil, "\"model\" is required (or set BEDROCK_MODEL)"
	end
	local messages = {}
	if type(body.messages) == "table" then
		for i, m in ipairs(body.messages) do
			if type(m) ~= "table" or (m.role ~= "user" and m.role ~= "assistant") or type(m.content) ~= "string" then
				return nil, "messages[" .. i .. "] must be {role = \"user\"|\"assistant\", content = string}"
			end
			messages[i] = { role = m.role, content = { { text = m.content } } }
		end
	elseif type(body.prompt) == "string" then
		messages[1] = { role = "user", content = { { text = body.prompt } } }
	end
	if #messages == 0 then return nil, "\"messages\" or \"prompt\" is required" end
	local req = { modelId = model, messages = messages }
	if type(body.system) == "string" then req.system = { { text = body.system } } end
	if body.max_tokens ~= nil then
		if type(body.max_tokens) ~= "number" then return nil, "\"max_tokens\" must be a number" end
		req.inferenceConfig = { maxTokens = math.floor(body.max_tokens) }
	end
	return req
end

-- content_by_lua handler for POST /chat.
function _M.chat()
	ngx.header["content-type"] = "text/event-stream"
	ngx.header["cache-control"] = "no-cache"
	ngx.header["x-accel-buffering"] = "no"
	if ngx.req.get_method() ~= "POST" then
		ngx.status = 405
		return sse_error("MethodNotAllowed", "use POST")
	end
	ngx.req.read_body()
	local raw = ngx.req.get_body_data()
	if not raw then
		local file = ngx.req.get_body_file()
		if file then return sse_error("RequestTooLarge", "request bodies over " .. MAX_BODY .. " bytes are refused") end
	end
	local body = raw and cjson.decode(raw)
	if type(body) ~= "table" then return sse_error("BadRequest", "the body must be a JSON object") end
	local req, why = converse_request(body)
	if not req then return sse_error("BadRequest", why) end
	local c, err = get_client()
	if not c then return sse_error(err.code, err.message) end
	local stream
	stream, err = c:converse_stream(req)
	if not stream then return sse_error(err.code, err.message, err.retryable) end
	local stop, usage
	local ok, e = pcall(function()
		for ev in stream do
			if ev.contentBlockDelta and ev.contentBlockDelta.delta.text then
				local _, ferr = sse("text", { text = ev.contentBlockDelta.delta.text })
				if ferr then error({ client_gone = ferr }) end
			elseif ev.messageStop then
				stop = ev.messageStop.stopReason
			elseif ev.metadata then
				usage = ev.metadata.usage
			end
		end
	end)
	if not ok then
		stream:close()
		if type(e) == "table" and e.client_gone then return end -- the browser left
		if type(e) == "table" then return sse_error(e.code, e.message, e.retryable) end
		ngx.log(ngx.ERR, "chat: ", tostring(e))
		return sse_error("InternalError", "the gateway failed")
	end
	sse("done", { stopReason = stop, usage = usage })
end

return _M
