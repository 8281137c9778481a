-- The Lua side of spec/ngx_spec.lua: locations of a test nginx that call Bedrock (the
-- emulator) through bedrock.client{} and answer JSON, or Server-Sent Events for streams.
-- One client per worker and per variant, shared by every request the worker serves.
local bedrock = require "bedrock"
local cjson = require "cjson.safe"

local M = {}

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
local clients = {}

local function args()
	return ngx.req.get_uri_args()
end

-- Client variants, by the name a request gives in ?transport= (default: auto).
local function ngx_transport(o)
	return require("bedrock.transport.ngx").new(o)
end
local variants = {
	auto = function() return {} end,
	ngx = function() return { transport = "ngx" } end,
	curl = function() return { transport = "curl" } end,
	tls = function() return { endpoint = os.getenv("BEDROCK_TEST_TLS_ENDPOINT") } end,
	tls_noverify = function() return { endpoint = os.getenv("BEDROCK_TEST_TLS_ENDPOINT"), verify = false } end,
	http_proxy = function()
		return { transport = ngx_transport{ proxy = { http = os.getenv("BEDROCK_TEST_HTTP_PROXY") } } }
	end,
	no_proxy = function()
		return { transport = ngx_transport{ proxy = { http = os.getenv("BEDROCK_TEST_HTTP_PROXY"),
			no_proxy = "example.com, 127.0.0.1" } } }
	end,
	https_proxy = function()
		return { endpoint = os.getenv("BEDROCK_TEST_TLS_ENDPOINT"),
			transport = ngx_transport{ proxy = { https = os.getenv("BEDROCK_TEST_CONNECT_PROXY") } } }
	end,
	env_proxy = function()
		-- https_proxy and no_proxy from the worker's environment (nginx `env` directives)
		return { endpoint = os.getenv("BEDROCK_TEST_TLS_ENDPOINT"), transport = ngx_transport{} }
	end,
}

-- The client for this worker (per variant), made on first use.
local function client(kind)
	kind = kind or "auto"
	local c = clients[kind]
	if c then return c end
	local o = variants[kind]()
	o.region = "us-east-1"
	o.endpoint = o.endpoint or os.getenv("BEDROCK_TEST_ENDPOINT")
	o.retry = { max_attempts = 3, random = function() return 0.01 end }
	c = assert(bedrock.client(o))
	clients[kind] = c
	return c
end
M.client = client

local function err_table(e)
	if type(e) ~= "table" then return { code = "LuaError", message = tostring(e) } end
	return { code = e.code, message = e.message, which = e.which, retryable = e.retryable,
		status = e.status, attempts = e.attempts, phase = e.phase }
end
M.err_table = err_table

local function reply(t, status)
	ngx.status = status or 200
	ngx.header["content-type"] = "application/json"
	ngx.print(cjson.encode(t))
end

local function user(text)
	return { { role = "user", content = { { text = text } } } }
end

local function call_opts(a)
	local t
	for _, k in ipairs{ "connect", "first_byte", "idle", "total" } do
		if a[k] then t = t or {}; t[k] = tonumber(a[k]) end
	end
	return t and { timeouts = t } or nil
end

function M.converse()
	local a = args()
	local c = client(a.transport)
	local res, meta_or_err = c:converse({ modelId = a.model or MODEL, messages = user(a.text or "hello") },
		call_opts(a))
	if not res then return reply({ error = err_table(meta_or_err) }, 502) end
	reply({ text = res.output.message.content[1].text, attempts = meta_or_err.attempts,
		transport = getmetatable(c.transport).__name, stop = res.stopReason,
		via = meta_or_err.headers and meta_or_err.headers["x-via"] })
end

-- ConverseStream out as Server-Sent Events, each event flushed as it arrives.
function M.stream()
	local a = args()
	local c = client(a.transport)
	ngx.header["content-type"] = "text/event-stream"
	ngx.header["cache-control"] = "no-cache"
	local s, err = c:converse_stream({ modelId = a.model or MODEL, messages = user(a.text or "hello") },
		call_opts(a))
	if not s then
		ngx.print("event: error\ndata: ", cjson.encode(err_table(err)), "\n\n")
		return
	end
	local ok, e = pcall(function()
		for ev in s do
			ngx.print("data: ", cjson.encode(ev), "\n\n")
			ngx.flush(true)
		end
	end)
	if not ok then
		ngx.print("event: error\ndata: ", cjson.encode(err_table(e)), "\n\n")
	else
		ngx.print("event: done\ndata: {}\n\n")
	end
end

function M.invoke()
	local c = client(args().transport)
	local body = { anthropic_version = "bedrock-2023-05-31", max_tokens = 16,
		messages = { { role = "user", content = "Hi" } } }
	local res, err = c:invoke_model({ modelId = MODEL, body = body, accept = "application/json" }, { decode = true })
	if not res then return reply({ error = err_table(err) }, 502) end
	local s
	s, err = c:invoke_model_with_response_stream{ modelId = MODEL, body = body }
	if not s then return reply({ error = err_table(err) }, 502) end
	local n = 0
	for _ in s do n = n + 1 end
	reply({ json = res.json, content_type = res.contentType, chunks = n })
end

function M.others()
	local c = client()
	local out = {}
	local res, err = c:count_tokens{ modelId = MODEL, input = { converse = { messages = user("count these") } } }
	if not res then return reply({ error = err_table(err) }, 502) end
	out.tokens = res.inputTokens
	res, err = c:apply_guardrail{ guardrailIdentifier = "gr1", guardrailVersion = "DRAFT", source = "INPUT",
		content = { { text = { text = "a badword here" } } } }
	if not res then return reply({ error = err_table(err) }, 502) end
	out.guardrail = res.action
	res, err = c:start_async_invoke{ modelId = "amazon.nova-reel-v1:0", modelInput = { taskType = "TEXT_VIDEO" },
		outputDataConfig = { s3OutputDataConfig = { s3Uri = "s3://bucket/p" } } }
	if not res then return reply({ error = err_table(err) }, 502) end
	local arn = res.invocationArn
	res, err = c:get_async_invoke{ invocationArn = arn }
	if not res then return reply({ error = err_table(err) }, 502) end
	out.async_status = res.status
	out.async_same = res.invocationArn == arn
	res, err = c:list_async_invokes{ maxResults = 10 }
	if not res then return reply({ error = err_table(err) }, 502) end
	out.async_listed = #res.asyncInvokeSummaries
	res, err = c:invoke_model_with_bidirectional_stream{ modelId = "amazon.nova-sonic-v1:0",
		body = { { chunk = { bytes = '{"event":{"textInput":{"content":"first"}}}' } } } }
	out.bidi = err_table(err)
	out.bidi_ok = res ~= nil
	reply(out)
end

-- A call to a port where nothing listens, through the transport named in the query.
function M.refused()
	local kind = args().transport
	local c = assert(bedrock.client{ region = "us-east-1", endpoint = "http://127.0.0.1:1",
		transport = kind, retry = { max_attempts = 3, random = function() return 0.01 end } })
	local _, err = c:converse{ modelId = MODEL, messages = user("nobody there") }
	c:close()
	reply({ error = err_table(err) }, 502)
end

-- The transport's counters (connections opened, calls on pooled connections).
function M.stats()
	local c = client(args().transport)
	local st = c.transport and c.transport:stats() or {}
	local p = c.transport and c.transport.proxies
	st.https_proxy = p and p.https and p.https.name or nil
	st.http_proxy = p and p.http and p.http.name or nil
	reply(st)
end

-- A call from a phase named in the query (header_filter here): the error it gives.
function M.call_here()
	local c = client()
	local res, err = c:converse{ modelId = MODEL, messages = user("from " .. ngx.get_phase()) }
	return res, err
end

return M
