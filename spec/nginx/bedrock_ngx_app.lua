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
	wrong_name = function() return { endpoint = os.getenv("BEDROCK_TEST_WRONG_NAME_ENDPOINT") } end,
	wrong_name_noverify = function()
		return { endpoint = os.getenv("BEDROCK_TEST_WRONG_NAME_ENDPOINT"), verify = false }
	end,
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

-- The tool loop with parallel handlers: three tools that each sleep 0.4 s (ngx.sleep);
-- run concurrently the turn takes about 0.4 s, one after the other 1.2 s.
function M.tools()
	local c = client()
	local plan = '__tool_plan [[{"name":"a","input":{"n":1}},{"name":"b","input":{"n":2}},' ..
		'{"name":"c","input":{"n":3}}]]'
	local order = {}
	local function handler(name)
		return function(input)
			ngx.sleep(0.4)
			order[#order + 1] = name
			return { got = input.n, name = name }
		end
	end
	local schema = { type = "object", properties = { n = { type = "number" } } }
	ngx.update_time()
	local t0 = ngx.now()
	local res, err = c:converse_with_tools{ modelId = MODEL, messages = user(plan),
		parallel = args().parallel ~= "0",
		tools = { a = { inputSchema = schema, handler = handler("a") },
			b = { inputSchema = schema, handler = handler("b") },
			c = { inputSchema = schema, handler = handler("c") } } }
	ngx.update_time()
	if not res then return reply({ error = err_table(err) }, 502) end
	reply({ seconds = ngx.now() - t0, turns = res.turns, text = res.output.message.content[1].text,
		finished = order })
end

-- bedrock.async's own API inside a request: spawn, await (also from another task), sleep,
-- cancel, errors re-raised.
function M.async()
	local async = require "bedrock.async"
	local c = client()
	ngx.update_time()
	local t0 = ngx.now()
	local tasks = {}
	for i = 1, 5 do
		tasks[i] = async.spawn(function()
			async.sleep(0.3)
			local res = assert(c:converse{ modelId = MODEL, messages = user("task " .. i) })
			return res.output.message.content[1].text
		end)
	end
	-- a task awaiting another task (not its child thread)
	local waiter = async.spawn(function() return "saw: " .. tasks[1]:await() end)
	local out = {}
	for i = 1, 5 do
		local aok, r = pcall(tasks[i].await, tasks[i])
		if not aok then return reply({ error = err_table(r), task = i }, 500) end
		out[i] = r
	end
	local failing = async.spawn(function() async.sleep(0.01); error({ code = "Boom", message = "x" }) end)
	local ok, e = pcall(failing.await, failing)
	local slow = async.spawn(function() async.sleep(5) end)
	local tok, terr = pcall(slow.await, slow, 0.05)
	slow:cancel()
	local cok, cerr = pcall(slow.await, slow)
	ngx.update_time()
	reply({ seconds = ngx.now() - t0, texts = out, waiter = waiter:await(), current_outside = async.current() == nil,
		failed = not ok and e.code, timeout = not tok and terr.which, cancelled = not cok and cerr.code,
		status = slow:status(), run = async.run(function(x) return x * 2 end, 21) })
end

-- A curl-transport call inside a bedrock.async task (the emulator stalls it 0.6 s) while
-- another task ticks every 50 ms: the ticks show whether the worker was blocked.
function M.curl_task()
	local async = require "bedrock.async"
	local c = client("curl")
	local done = false
	local call = async.spawn(function()
		local res, err = c:converse{ modelId = MODEL, messages = user("curl in a task") }
		done = true
		return res and res.output.message.content[1].text or err_table(err)
	end)
	local ticks = 0
	local ticker = async.spawn(function()
		while not done do
			ngx.sleep(0.05)
			ticks = ticks + 1
		end
	end)
	local text = call:await()
	ticker:await()
	reply({ text = text, ticks = ticks })
end

-- Credentials from the container endpoint: the chain runs on the first call.
local creds_client
function M.container()
	if not creds_client then
		creds_client = assert(bedrock.client{ region = "us-east-1", endpoint = os.getenv("BEDROCK_TEST_ENDPOINT"),
			transport = "ngx" })
	end
	local res, err = creds_client:converse{ modelId = MODEL, messages = user("with role credentials") }
	if not res then return reply({ error = err_table(err) }, 502) end
	local cr = creds_client:credentials()
	reply({ text = res.output.message.content[1].text, source = cr and cr.source })
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
