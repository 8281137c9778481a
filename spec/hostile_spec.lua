-- The client attacked by broken and hostile servers on loopback: bodies that never end,
-- bodies that trickle, headers cut mid-way, servers that echo what they were sent.
-- The peers are real processes: spec/hostile_server.py (through helper.hostile) and
-- bedrock-emulator.
local helper = require "spec.helper"
local bedrock = require "bedrock"

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
local KEY, SECRET = "AKIDHOSTILE", "hostile/Secret+Key/0123456789abcdefghijklmn"
local TOKEN = "FwoGZXIvYXdzEHostileSessionToken/with+slashes=="

local have_python = os.execute("python3 -c 'import socketserver' 2>/dev/null")
have_python = have_python == true or have_python == 0
local have_transport = pcall(require, "bedrock.transport.curl")

if not (have_python and have_transport) then
	describe("hostile servers", function()
		pending("needs python3 and bedrock.transport.curl (make all)")
	end)
	return
end

local function user(text)
	return { { role = "user", content = { { text = text } } } }
end

local function client(url, extra)
	local o = { region = "us-east-1", endpoint = url,
		credentials = { access_key_id = KEY, secret_access_key = SECRET },
		retry = { max_attempts = 1 }, getenv = function() return nil end }
	for k, v in pairs(extra or {}) do o[k] = v end
	return assert(bedrock.client(o))
end

local CONVERSE = { modelId = MODEL, messages = user("hi") }

-- Runs fn against a hostile server started with opts, always stopping it.
local function against(opts, fn)
	local srv = helper.hostile(opts)
	local ok, err = pcall(fn, srv)
	srv.stop()
	if not ok then error(err, 0) end
end

local now = os.time

local JSON_200 = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
local CHUNKED_500 = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n" ..
	"x-amzn-ErrorType: InternalServerException\r\nTransfer-Encoding: chunked\r\n\r\n"
local MiB = 1024 * 1024

describe("hostile servers: response body limits", function()
	it("stops a 200 body that never ends at max_body, with bounded memory", function()
		against({ head = JSON_200, tail = "endless" }, function(srv)
			local c = client(srv.url, { max_body = 4 * MiB, timeouts = { total = 20000 } })
			collectgarbage()
			local before = helper.rss_kib()
			local res, err = c:converse(CONVERSE)
			local grown = helper.rss_kib() - before
			c:close()
			assert.is_nil(res)
			assert.equal("ResponseTooLarge", err.code, tostring(err))
			assert.equal("max_body", err.option)
			assert.equal(4 * MiB, err.limit)
			assert.equal(200, err.status)
			assert.is_false(err.retryable)
			assert.truthy(grown < 64 * 1024, "RSS grew by " .. grown .. " KiB")
		end)
	end)

	it("has a 64 MiB default for results", function()
		local T = require "bedrock.transport.curl"
		assert.equal(64 * MiB, T.MAX_BODY)
		assert.equal(MiB, T.MAX_ERROR_BODY)
		against({ head = JSON_200, tail = "endless" }, function(srv)
			local c = client(srv.url, { timeouts = { total = 30000 } })
			local res, err = c:converse(CONVERSE)
			c:close()
			assert.is_nil(res)
			assert.equal("ResponseTooLarge", err.code, tostring(err))
			assert.equal(64 * MiB, err.limit)
		end)
	end)

	it("refuses a Content-Length past the limit before reading the body", function()
		against({ head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900000000\r\n\r\n{",
			tail = "trickle:1000" }, function(srv)
			local c = client(srv.url)
			local t0 = now()
			local res, err = c:converse(CONVERSE)
			c:close()
			assert.is_nil(res)
			assert.equal("ResponseTooLarge", err.code, tostring(err))
			assert.matches("900000000 bytes %(Content%-Length%)", err.message)
			assert.truthy(now() - t0 < 10)
		end)
	end)

	it("takes an InvokeModel body up to the limit, per client and per call", function()
		local size = 3 * MiB
		local body = string.rep("x", size)
		against({ head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " ..
			size .. "\r\n\r\n" .. body }, function(srv)
			local c = client(srv.url)
			local res, err = c:invoke_model{ modelId = MODEL, body = "{}" }
			assert.truthy(res, tostring(err))
			assert.equal(size, #res.body)
			res, err = c:invoke_model({ modelId = MODEL, body = "{}" }, { max_body = MiB })
			assert.is_nil(res)
			assert.equal("ResponseTooLarge", err.code)
			assert.equal(MiB, err.limit)
			-- false: no limit
			res, err = c:invoke_model({ modelId = MODEL, body = "{}" }, { max_body = false })
			assert.truthy(res, tostring(err))
			assert.equal(size, #res.body)
			c:close()
			c = client(srv.url, { max_body = 2 * MiB })
			res, err = c:invoke_model{ modelId = MODEL, body = "{}" }
			assert.equal("ResponseTooLarge", err and err.code)
			c:close()
		end)
	end)

	it("stops an error body that never ends (non-streaming) at max_error_body", function()
		against({ head = CHUNKED_500, tail = "endless-chunked" }, function(srv)
			local c = client(srv.url, { timeouts = { total = 20000 } })
			local res, err = c:converse(CONVERSE)
			assert.is_nil(res)
			assert.equal("ResponseTooLarge", err.code, tostring(err))
			assert.equal("max_error_body", err.option)
			assert.equal(MiB, err.limit)
			assert.equal(500, err.status)
			assert.matches("InternalServerException", err.message)
			res, err = c:converse(CONVERSE, { max_error_body = 65536 })
			assert.equal(65536, err.limit)
			c:close()
		end)
	end)

	it("stops the error body of a stream call that never ends, quickly and with bounded memory", function()
		against({ head = CHUNKED_500, tail = "endless-chunked" }, function(srv)
			local c = client(srv.url, { timeouts = { total = 20000 } })
			collectgarbage()
			local before = helper.rss_kib()
			local t0 = now()
			local s, err = c:converse_stream(CONVERSE)
			local grown = helper.rss_kib() - before
			assert.is_nil(s)
			assert.equal("ResponseTooLarge", err.code, tostring(err))
			assert.equal("max_error_body", err.option)
			assert.equal(500, err.status)
			assert.truthy(now() - t0 < 10)
			assert.truthy(grown < 64 * 1024, "RSS grew by " .. grown .. " KiB")
			s, err = c:converse_stream(CONVERSE, { max_error_body = 10000 })
			assert.is_nil(s)
			assert.equal(10000, err.limit)
			c:close()
		end)
	end)

	it("refuses bad limits", function()
		local _, err = bedrock.client{ region = "us-east-1", max_body = "big",
			credentials = { access_key_id = KEY, secret_access_key = SECRET } }
		assert.equal("ConfigError", err.code)
		assert.equal("max_body", err.field)
		_, err = bedrock.client{ region = "us-east-1", max_error_body = math.huge,
			credentials = { access_key_id = KEY, secret_access_key = SECRET } }
		assert.equal("max_error_body", err.field)
		against({ head = JSON_200 }, function(srv)
			local c = client(srv.url)
			local res
			res, err = c:converse(CONVERSE, { max_body = -1 })
			assert.is_nil(res)
			assert.equal("ValidationError", err.code)
			assert.equal("max_body", err.field)
			c:close()
		end)
	end)
end)

describe("hostile servers: slow trickle", function()
	it("a body trickling one byte at a time ends at the total timeout", function()
		against({ head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
			tail = "trickle:50" }, function(srv)
			local c = client(srv.url)
			local t0 = now()
			local res, err = c:converse(CONVERSE, { timeouts = { total = 1500 } })
			c:close()
			assert.is_nil(res)
			assert.equal("Timeout", err.code, tostring(err))
			assert.equal("total", err.which)
			assert.truthy(now() - t0 < 15)
		end)
	end)

	it("the default timeouts bound every call: idle 60 s, total 60 min", function()
		local config = require "bedrock.config"
		assert.equal(60000, config.default_timeouts.idle)
		assert.equal(3600000, config.default_timeouts.total)
		local cfg = assert(config.resolve({ region = "us-east-1" }, function() return nil end))
		assert.equal(3600000, cfg.timeouts.total)
		cfg = assert(config.resolve({ region = "us-east-1", timeouts = { total = false } }, function() return nil end))
		assert.is_nil(cfg.timeouts.total)
	end)
end)

describe("hostile servers: cut headers", function()
	for _, head in ipairs{ "HTTP/1.1 200 OK\r\nContent-Type: appl", "HTTP/1.1 200 OK\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nx-amzn-Req" } do
		it("a connection closed inside the headers is an error: " .. head:gsub("\r\n", "|"), function()
			against({ head = head }, function(srv)
				local c = client(srv.url)
				local res, err = c:converse(CONVERSE)
				assert.is_nil(res)
				assert.equal("ConnectionError", err.code, tostring(err))
				assert.matches("response headers", err.message)
				local s
				s, err = c:converse_stream(CONVERSE)
				assert.is_nil(s)
				assert.equal("ConnectionError", err.code, tostring(err))
				c:close()
			end)
		end)
	end
end)
