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

function _M.stream(kind)
	local b = body()
	local s, err = client(kind):converse_stream{ modelId = MODEL, messages = b.messages }
	if not s then
		ngx.status = 502
		return ngx.print(tostring(err))
	end
	ngx.header["content-type"] = "text/event-stream"
	for ev in s do
		ngx.print("data: ", cjson.encode(ev), "\n\n")
		ngx.flush(false)
	end
end

return _M
