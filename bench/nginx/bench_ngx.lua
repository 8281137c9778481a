-- Handlers for the nginx benchmark (bench/nginx/run.sh): the same Converse request as
-- proxy_pass forwards, made by the client inside the worker, through the cosocket
-- transport or (transport=curl) libcurl.
local bedrock = require "bedrock"
local cjson = require "cjson.safe"

local _M = {}
local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
local clients = {}

local function client(kind)
	local c = clients[kind]
	if not c then
		c = assert(bedrock.client{ region = "us-east-1", endpoint = os.getenv("BENCH_ENDPOINT"),
			credentials = { access_key_id = "AKIDBENCHEXAMPLE", secret_access_key = "benchSecret" },
			transport = kind })
		clients[kind] = c
	end
	return c
end

local function body()
	ngx.req.read_body()
	return cjson.decode(ngx.req.get_body_data() or "")
end

function _M.converse(kind)
	local b = body()
	local res, err = client(kind):converse{ modelId = MODEL, messages = b.messages }
	if not res then
		ngx.status = 502
		return ngx.print(tostring(err))
	end
	ngx.header["content-type"] = "application/json"
	ngx.print(cjson.encode(res))
end

-- mode "sse": every event re-encoded as an SSE line and flushed (a gateway); mode
-- "count": events decoded and counted, one line out at the end (the client's own cost).
-- The transport alone: the request body passed through as it came, to the same URL
-- with fixed headers (the emulator runs --no-auth): what the cosocket transport costs
-- without the client's validation, serialization, signing and parsing.
local raw_transport
function _M.raw()
	raw_transport = raw_transport or require("bedrock.transport.ngx").new{ proxy = false }
	ngx.req.read_body()
	local res, err = raw_transport:request{ method = "POST",
		url = os.getenv("BENCH_ENDPOINT") .. "/model/" .. MODEL .. "/converse",
		headers = { { "content-type", "application/json" } }, body = ngx.req.get_body_data() }
	if not res then
		ngx.status = 502
		return ngx.print(tostring(err))
	end
	ngx.header["content-type"] = "application/json"
	ngx.print(res.body)
end

function _M.stream(kind, mode)
	local b = body()
	local s, err = client(kind):converse_stream{ modelId = MODEL, messages = b.messages }
	if not s then
		ngx.status = 502
		return ngx.print(tostring(err))
	end
	ngx.header["content-type"] = "text/event-stream"
	if mode == "count" then
		local n = 0
		for _ in s do n = n + 1 end
		return ngx.print("data: {\"events\":", n, "}\n\n")
	end
	for ev in s do
		ngx.print("data: ", cjson.encode(ev), "\n\n")
		ngx.flush(false)
	end
end

return _M
