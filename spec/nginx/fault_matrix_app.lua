-- luacheck: globals ngx
-- The OpenResty column of spec/fault_matrix_spec.lua and the nginx part of
-- spec/soak_spec.lua: locations of a test nginx that make one call through a client of
-- their own (the cosocket transport) and answer what happened as JSON:
-- { ok = bool, events = n, err = { code, retryable, which, detail_code, status } }.
local bedrock = require "bedrock"
local cjson = require "cjson.safe"

local M = {}

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
local TEXT = "one two three four five six seven"
local TOOL_PLAN = '__tool_plan [[{"name":"echo","input":{"say":"hi"}}]]'

local function err_table(e)
	if type(e) ~= "table" then return { code = "LuaError", message = tostring(e) } end
	return { code = e.code, message = e.message, which = e.which, retryable = e.retryable,
		status = e.status, detail_code = e.detail_code, is_error = bedrock.is_error(e) }
end

local function user(text) return { { role = "user", content = { { text = text } } } } end

local function drain(s, err)
	if not s then return { ok = false, err = err, events = 0 } end
	local n = 0
	local ok, e = pcall(function() for _ in s do n = n + 1 end end)
	s:close()
	return { ok = ok, err = not ok and e or nil, events = n }
end

local RUN = {}
function RUN.call(c, model)
	local res, err = c:converse{ modelId = model, messages = user(TEXT) }
	return { ok = res ~= nil, err = err }
end
function RUN.stream(c, model)
	return drain(c:converse_stream{ modelId = model, messages = user(TEXT) })
end
function RUN.invoke_stream(c, model)
	return drain(c:invoke_model_with_response_stream{ modelId = model,
		body = '{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}' })
end
function RUN.count(c, model)
	local res, err = c:count_tokens{ modelId = model, input = { converse = { messages = user(TEXT) } } }
	return { ok = res ~= nil, err = err }
end
function RUN.tools(c, model)
	local n = 0
	local res, err = c:converse_with_tools{ modelId = model, messages = user(TOOL_PLAN),
		tools = { echo = { description = "echo", handler = function(input) return input end } },
		on_event = function() n = n + 1 end }
	return { ok = res ~= nil, err = err, events = n }
end

-- One client per worker and per set of limits (so the pool is shared like a real
-- gateway's), made on first use.
local clients = {}
local function client(a)
	local key = table.concat({ a.first_byte or "", a.idle or "", a.total or "", a.max_body or "", a.ka or "" }, "/")
	local c = clients[key]
	if c then return c end
	local t = { connect = 5000, first_byte = 10000, idle = 10000, total = 30000 }
	for _, k in ipairs{ "first_byte", "idle", "total" } do
		if a[k] then t[k] = tonumber(a[k]) end
	end
	-- ka=<ms>: a transport of its own whose pooled connections close after ms idle
	local transport
	if a.ka then
		transport = require("bedrock.transport.ngx").new{ timeouts = t, keepalive_timeout = tonumber(a.ka) }
		t = nil
	end
	c = assert(bedrock.client{ region = "us-east-1", endpoint = os.getenv("BEDROCK_TEST_ENDPOINT"),
		credentials = { access_key_id = "AKIDMATRIX", secret_access_key = "matrix/secret/key/0123456789" },
		timeouts = t, transport = transport, max_body = tonumber(a.max_body), getenv = function() return nil end,
		retry = { max_attempts = 3, random = function() return 0 end } })
	clients[key] = c
	return c
end

-- GET /cell?style=call|stream|invoke_stream|count|tools[&model=][&first_byte=&idle=&total=&max_body=&ka=]
function M.cell()
	local a = ngx.req.get_uri_args()
	local run = RUN[a.style or "stream"]
	local out
	if not run then
		out = { ok = false, err = { code = "BadStyle", message = tostring(a.style) } }
	else
		local ok, o = pcall(run, client(a), a.model or MODEL)
		out = ok and o or { ok = false, err = o }
	end
	ngx.header["content-type"] = "application/json"
	ngx.print(cjson.encode{ ok = out.ok, events = out.events, err = out.err and err_table(out.err) })
end

-- GET /gc: collects garbage, answers the worker's Lua heap (KiB).
function M.gc()
	collectgarbage()
	collectgarbage()
	ngx.print(cjson.encode{ heap_kib = collectgarbage("count") })
end

return M
