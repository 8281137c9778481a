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
			local c = client(srv.url, { timeouts = { total = 20000 } })
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
			assert.is_nil(res)
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
			assert.is_nil(res)
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
			res, err = c:converse(CONVERSE, { max_error_body = "1k" })
			assert.is_nil(res)
			assert.equal("max_error_body", err.field)
			-- both bad: the first is named
			res, err = c:converse(CONVERSE, { max_body = 0 / 0, max_error_body = -5 })
			assert.is_nil(res)
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

	it("a body that arrives in pieces over many steps comes back whole, and is held to max_body", function()
		local T = require "bedrock.transport.curl"
		against({ head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n",
			tail = "trickle:30" }, function(srv)
			local t = T.new{}
			local res = assert(t:request{ method = "GET", url = srv.url .. "/x" })
			assert.equal(200, res.status)
			assert.equal("aaaaaa", res.body)
			assert.equal("6", res.headers["content-length"])
			assert.is_true(res.timing.total >= 0.1)
			t:close() -- the filler goes on after the body: no second request on that connection
			t = T.new{}
			local _, err = t:request{ method = "GET", url = srv.url .. "/x", max_body = 5 }
			assert.equal("ResponseTooLarge", err.code, tostring(err))
			assert.equal(5, err.limit)
			t:close()
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

---------------------------------------------------------------------------- event streams

local core = require "bedrock.core"

local function message(headers, payload)
	return assert(core.encode(headers, payload))
end
local function event(et, payload)
	return message({ { ":event-type", "string", et }, { ":message-type", "string", "event" },
		{ ":content-type", "string", "application/json" } }, payload)
end
local function stream_answer(body)
	return "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n" ..
		"x-amzn-RequestId: hostile-stream\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end
local START = event("messageStart", '{"role":"assistant"}')
local function text(t, i)
	return event("contentBlockDelta", '{"contentBlockIndex":' .. (i or 0) .. ',"delta":{"text":"' .. t .. '"}}')
end
local STOP = event("messageStop", '{"stopReason":"end_turn"}')
local METADATA = event("metadata", '{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3},"metrics":{"latencyMs":1}}')

describe("hostile servers: a stream cut at an event boundary", function()
	it("ConverseStream without messageStop raises after the events it had", function()
		against({ head = stream_answer(START .. text("Hel") .. text("lo")) }, function(srv)
			local c = client(srv.url)
			local s = assert(c:converse_stream(CONVERSE))
			local got = {}
			local ok, err = pcall(function() for ev in s do got[#got + 1] = ev end end)
			assert.is_false(ok)
			assert.is_true(bedrock.is_error(err), tostring(err))
			assert.equal("StreamError", err.code)
			assert.equal("TRUNCATED", err.detail_code)
			assert.matches("messageStop", err.message)
			assert.equal(3, #got)
			assert.equal("lo", got[3].contentBlockDelta.delta.text)
			-- collect(): raises, what was collected stays on the stream
			s = assert(c:converse_stream(CONVERSE))
			ok, err = pcall(s.collect, s)
			assert.is_false(ok)
			assert.equal("TRUNCATED", err.detail_code)
			assert.equal("Hello", s.partial.output.message.content[1].text)
			assert.is_nil(s.partial.stopReason)
			c:close()
		end)
	end)

	it("ConverseStream with messageStop is complete", function()
		against({ head = stream_answer(START .. text("Hi") .. STOP .. METADATA) }, function(srv)
			local c = client(srv.url)
			local res = assert(c:converse_stream(CONVERSE)):collect()
			assert.equal("end_turn", res.stopReason)
			assert.equal("Hi", res.output.message.content[1].text)
			assert.equal(3, res.usage.totalTokens)
			c:close()
		end)
	end)

	it("InvokeModelWithResponseStream: a clean end of the body is its end", function()
		local chunk = event("chunk", '{"bytes":"' .. core.b64encode('{"type":"message_stop"}') .. '"}')
		against({ head = stream_answer(chunk) }, function(srv)
			local c = client(srv.url)
			local res = assert(c:invoke_model_with_response_stream{ modelId = MODEL, body = "{}" }):collect()
			assert.equal('{"type":"message_stop"}', res.body)
			c:close()
		end)
	end)
end)

describe("hostile servers: odd header types in stream messages", function()
	local cases = {
		{ "an integer :exception-type", { { ":message-type", "string", "exception" }, { ":exception-type", "integer", 5 } } },
		{ "a boolean :exception-type", { { ":message-type", "string", "exception" }, { ":exception-type", "true", true } } },
		{ "an empty :exception-type", { { ":message-type", "string", "exception" }, { ":exception-type", "string", "" } } },
		{ "a timestamp :exception-type", { { ":message-type", "string", "exception" }, { ":exception-type", "timestamp", 5 } } },
		{ "a boolean :error-code", { { ":message-type", "string", "error" }, { ":error-code", "true", true },
			{ ":error-message", "string", "m" } } },
		{ "an integer :error-message", { { ":message-type", "string", "error" }, { ":error-code", "string", "XError" },
			{ ":error-message", "long", 7 } }, "XError" },
	}
	local function check(err, code)
		assert.is_true(bedrock.is_error(err), tostring(err))
		assert.is_string(tostring(err))
		assert.equal(code, err.code)
		assert.is_string(err.message)
	end
	for _, case in ipairs(cases) do
		it(case[1] .. " is the error object, first message or later", function()
			local bad = message(case[2], '{"message":"boom"}')
			against({ head = stream_answer(bad) }, function(srv)
				local c = client(srv.url)
				local s, err = c:converse_stream(CONVERSE)
				assert.is_nil(s)
				check(err, case[3] or "StreamError")
				c:close()
			end)
			against({ head = stream_answer(START .. bad) }, function(srv)
				local c = client(srv.url)
				local s = assert(c:converse_stream(CONVERSE))
				assert.truthy(s().messageStart)
				local ok, err = pcall(s)
				assert.is_false(ok)
				check(err, case[3] or "StreamError")
				c:close()
			end)
		end)
	end
end)

describe("hostile servers: collect() on wrongly typed payloads", function()
	local cases = {
		{ "a null payload", event("contentBlockDelta", "null") },
		{ "a number payload", event("contentBlockDelta", "42") },
		{ "text as an object", event("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"text":{"a":1}}}') },
		{ "toolUse input as an object", event("contentBlockStart",
			'{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"n"}}}') ..
			event("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"toolUse":{"input":{"x":1}}}}') },
		{ "signature as an object", event("contentBlockDelta",
			'{"contentBlockIndex":1,"delta":{"reasoningContent":{"signature":{"x":1}}}}') },
		{ "a string contentBlockIndex", event("contentBlockDelta", '{"contentBlockIndex":"1","delta":{"text":"a"}}') },
		{ "toolResult as a number", event("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"toolResult":5}}') },
		-- after text in the same block (a block with text takes further text without acc:add)
		{ "text as an object after text", event("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"text":"a"}}') ..
			event("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"text":{"a":1}}}') },
		{ "delta as a string after text", event("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"text":"a"}}') ..
			event("contentBlockDelta", '{"contentBlockIndex":1,"delta":"text"}') },
		{ "delta as a number after text", event("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"text":"a"}}') ..
			event("contentBlockDelta", '{"contentBlockIndex":1,"delta":5}') },
	}
	for _, case in ipairs(cases) do
		it(case[1] .. ": the error object, the events kept", function()
			against({ head = stream_answer(START .. text("Hi") .. event("contentBlockStop", '{"contentBlockIndex":0}') ..
				case[2] .. STOP .. METADATA) }, function(srv)
				local c = client(srv.url)
				local s = assert(c:converse_stream(CONVERSE))
				local ok, err = pcall(s.collect, s)
				assert.is_false(ok)
				assert.is_true(bedrock.is_error(err), tostring(err))
				assert.equal("SerializationError", err.code)
				assert.equal("hostile-stream", err.request_id)
				assert.equal("Hi", s.partial.output.message.content[1].text)
				-- the stream is over: the same error again
				local ok2, err2 = pcall(s)
				assert.is_false(ok2)
				assert.equal(err, err2)
				c:close()
			end)
		end)
	end
end)

describe("hostile servers: invalid base64 in a blob member", function()
	it("a stream chunk whose bytes are not base64 is an error", function()
		against({ head = stream_answer(event("chunk", '{"bytes":"not base64!"}')) }, function(srv)
			local c = client(srv.url)
			local s, err = c:invoke_model_with_response_stream{ modelId = MODEL, body = "{}" }
			assert.truthy(s, tostring(err))
			local ok
			ok, err = pcall(s)
			assert.is_false(ok)
			assert.equal("SerializationError", err.code, tostring(err))
			assert.matches("base64", err.message)
			c:close()
		end)
	end)

	it("a Converse image whose bytes are not base64 is an error", function()
		local body = '{"output":{"message":{"role":"assistant","content":[{"image":{"format":"png",' ..
			'"source":{"bytes":"%%%not-base64%%%"}}}]}},"stopReason":"end_turn"}'
		against({ head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body ..
			"\r\n\r\n" .. body }, function(srv)
			local c = client(srv.url)
			local res, err = c:converse(CONVERSE)
			assert.is_nil(res)
			assert.equal("SerializationError", err.code, tostring(err))
			assert.matches("base64", err.message)
			assert.equal(200, err.status)
			c:close()
		end)
	end)
end)

---------------------------------------------------------------------------- secrets

local function contains_secret(s, secrets)
	for _, v in ipairs(secrets) do
		if s:find(v, 1, true) then return v end
	end
	return nil
end

local function assert_redacted(err, secrets)
	assert.is_true(bedrock.is_error(err), tostring(err))
	local line = tostring(err)
	assert.is_nil(line:find("[\r\n]"), "tostring(err) is not one line: " .. line)
	assert.is_nil(contains_secret(line, secrets), line)
	for k, v in pairs(err) do
		if type(v) == "string" then
			assert.is_nil(contains_secret(v, secrets), "err." .. tostring(k) .. " = " .. v)
		end
	end
end

describe("hostile servers: credentials in error texts", function()
	it("a server echoing the request head and the secret key gets them redacted", function()
		against({ echo = 403, message = "your secret is " .. SECRET }, function(srv)
			local c = client(srv.url, { credentials = { access_key_id = KEY, secret_access_key = SECRET,
				session_token = TOKEN } })
			local res, err = c:converse(CONVERSE)
			assert.is_nil(res)
			assert.equal("InvalidSignatureException", err.code)
			assert.matches("<redacted>", err.message, 1, true)
			assert_redacted(err, { SECRET, TOKEN })
			-- the error body of a stream call
			local s
			s, err = c:converse_stream(CONVERSE)
			assert.is_nil(s)
			assert.equal("InvalidSignatureException", err.code)
			assert_redacted(err, { SECRET, TOKEN })
			c:close()
		end)
	end)

	it("a bearer token echoed back is redacted", function()
		local BEARER = "bedrock-api-key-hostile-0123456789"
		against({ echo = 403 }, function(srv)
			local c = client(srv.url, { credentials = { token = BEARER } })
			local res, err = c:converse(CONVERSE)
			assert.is_nil(res)
			assert.matches("Bearer <redacted>", err.message, 1, true)
			assert_redacted(err, { BEARER })
			c:close()
		end)
	end)
end)

describe("errors.redact", function()
	it("replaces raw and percent-encoded values, in nested fields, longest first", function()
		local errors = bedrock.errors
		local enc = core.uri_encode(TOKEN)
		assert.are_not.equal(TOKEN, enc)
		local e = errors.make("X", "a " .. TOKEN .. " b " .. enc .. "\nc", { detail = { deep = SECRET } })
		errors.redact(e, { SECRET, TOKEN, nil }, 3)
		assert.equal("a <redacted> b <redacted>\nc", e.message)
		assert.equal("<redacted>", e.detail.deep)
		assert.equal("X: a <redacted> b <redacted> c", tostring(e))
		-- short values would match ordinary words: not searched
		e = errors.make("X", "the key")
		errors.redact(e, { "key" })
		assert.equal("the key", e.message)
	end)
end)

local have_emulator = helper.exists(helper.emulator_bin)

describe("hostile servers: secrets against the emulator", function()
	if not have_emulator then
		pending("needs build/bin/bedrock-emulator (make all)")
		return
	end
	local T = require "bedrock.transport.curl"
	local em, admin
	setup(function()
		em = helper.emulator({ "--key", KEY .. ":" .. SECRET .. ":" .. TOKEN })
		admin = T.new{}
	end)
	teardown(function()
		if admin then admin:close() end
		if em then em.stop() end
	end)
	local function fault(q)
		local res = assert(admin:request{ method = "POST", url = em.url .. "/_emulator/faults?" .. q,
			headers = { { "x-emulator-admin", "1" } }, body = "" })
		assert.equal(200, res.status, res.body)
	end
	local function good(extra)
		local o = { credentials = { access_key_id = KEY, secret_access_key = SECRET, session_token = TOKEN } }
		for k, v in pairs(extra or {}) do o[k] = v end
		return client(em.url, o)
	end

	it("InvalidSignatureException echoing the canonical request: the session token is redacted", function()
		local wrong = SECRET:upper()
		local c = client(em.url, { credentials = { access_key_id = KEY, secret_access_key = wrong,
			session_token = TOKEN } })
		local res, err = c:converse(CONVERSE)
		assert.is_nil(res)
		assert.equal("InvalidSignatureException", err.code)
		assert.matches("x-amz-security-token:<redacted>", err.message, 1, true)
		assert_redacted(err, { wrong, TOKEN })
		c:close()
	end)

	it("an in-stream exception echoing the token is redacted, first message or later", function()
		local c = good()
		fault("kind=exception&after=0&exception=validationException&message=" .. core.uri_encode("bad " .. TOKEN))
		local s, err = c:converse_stream(CONVERSE)
		assert.is_nil(s)
		assert.equal("ValidationException", err.code)
		assert_redacted(err, { SECRET, TOKEN })
		fault("kind=exception&after=2&exception=validationException&message=" .. core.uri_encode("bad " .. TOKEN))
		s = assert(c:converse_stream(CONVERSE))
		local ok
		ok, err = pcall(function() for _ in s do end end)
		assert.is_false(ok)
		assert.equal("ValidationException", err.code)
		assert.matches("<redacted>", err.message, 1, true)
		assert_redacted(err, { SECRET, TOKEN })
		c:close()
	end)

	-- Every table reachable from root through keys, values, metatables and user values
	-- (functions are not entered: a closure is where the credentials cache keeps them).
	local function find_secret(root, secrets)
		local seen = {}
		-- (LuaJIT: a userdata's environment table plays the user value)
		local getuv = debug.getuservalue or function(u, i)
			if i == 1 then return debug.getfenv(u) end
		end
		local function walk(v, path)
			local t = type(v)
			if t == "string" then
				return contains_secret(v, secrets) and path or nil
			end
			if (t ~= "table" and t ~= "userdata") or seen[v] then return nil end
			seen[v] = true
			if t == "table" then
				for k, x in next, v do
					local p = walk(k, path .. "[key]") or walk(x, path .. "." .. tostring(k))
					if p then return p end
				end
			else
				for i = 1, 4 do
					local uv = getuv(v, i)
					if uv == nil then break end
					local p = walk(uv, path .. ".<uservalue " .. i .. ">")
					if p then return p end
				end
			end
			local mt = debug.getmetatable(v)
			return mt and walk(mt, path .. ".<metatable>") or nil
		end
		return walk(root, "root")
	end

	it("no table reachable from a client, its signer, a stream or a bidirectional stream holds a secret", function()
		local c = good()
		assert(c:converse(CONVERSE))
		local s = assert(c:converse_stream(CONVERSE))
		assert(s())
		local b = assert(c:invoke_model_with_bidirectional_stream{ modelId = "amazon.nova-sonic-v1:0",
			body = { { chunk = { bytes = '{"event":{"textInput":{"content":"first"}}}' } } } })
		assert(b())
		assert(b:send('{"event":{"textInput":{"content":"second"}}}'))
		assert(b())
		for name, root in pairs{ client = c, signer = c.signer, stream = s, bidi = b } do
			local where = find_secret(root, { SECRET, TOKEN })
			assert.is_nil(where, name .. ": a secret at " .. tostring(where))
		end
		assert(b:close_input())
		for _ in b do end
		for _ in s do end
		c:close()
	end)

	it("keys read from the shared credentials file are not reachable from the client either", function()
		local home = os.tmpname()
		os.remove(home)
		assert(os.execute("mkdir -p " .. home .. "/.aws"))
		local f = assert(io.open(home .. "/.aws/credentials", "w"))
		f:write("[default]\naws_access_key_id = " .. KEY .. "\naws_secret_access_key = " .. SECRET ..
			"\naws_session_token = " .. TOKEN .. "\n")
		f:close()
		local env = { HOME = home, AWS_REGION = "us-east-1", AWS_ENDPOINT_URL_BEDROCK_RUNTIME = em.url }
		local c = assert(bedrock.client{ getenv = function(k) return env[k] end })
		local creds = assert(c:credentials())
		assert.equal("shared-credentials-file", creds.source)
		assert(c:converse(CONVERSE))
		local where = find_secret(c, { SECRET, TOKEN })
		assert.is_nil(where, "a secret at " .. tostring(where))
		c:close()
		os.execute("rm -rf " .. home)
	end)

	it("after s:close() the iterator hands out nothing, buffered events included: it raises", function()
		local c = good()
		local s = assert(c:converse_stream(CONVERSE))
		assert(s().messageStart)
		s:close()
		local ok, err = pcall(s)
		assert.is_false(ok)
		assert.equal("StreamError", err.code, tostring(err))
		assert.equal("CLOSED", err.detail_code)
		ok, err = pcall(s.collect, s)
		assert.is_false(ok)
		assert.equal("CLOSED", err.detail_code)
		-- a stream that ended by itself still just ends
		s = assert(c:converse_stream(CONVERSE))
		for _ in s do end
		s:close()
		assert.is_nil(s())
		c:close()
	end)
end)

describe("hostile input: credentials and options", function()
	it("a NUL byte in a key is a CredentialsError without the key", function()
		for _, creds in ipairs{
			{ access_key_id = "AKID\0HIDDENKEYPART", secret_access_key = SECRET },
			{ access_key_id = KEY, secret_access_key = SECRET .. "\0tail" },
			{ access_key_id = KEY, secret_access_key = SECRET, session_token = TOKEN .. "\0x" },
			{ access_key_id = KEY, secret_access_key = SECRET, session_token = TOKEN .. "\r\nx-evil: 1" },
			{ token = "bedrock-api-key\0hidden" },
		} do
			local c = client("http://127.0.0.1:9", { credentials = creds })
			local res, err = c:converse(CONVERSE)
			assert.is_nil(res)
			assert.equal("CredentialsError", err.code, tostring(err))
			assert_redacted(err, { SECRET, TOKEN, "HIDDENKEYPART", "hidden" })
			c:close()
		end
	end)

	it("retry.max_attempts must be finite and sane", function()
		local config = require "bedrock.config"
		for _, v in ipairs{ math.huge, 1e300, config.MAX_ATTEMPTS + 1, 0 / 0 } do
			local _, err = bedrock.client{ region = "us-east-1", retry = { max_attempts = v },
				credentials = { access_key_id = KEY, secret_access_key = SECRET } }
			assert.equal("ConfigError", err and err.code, tostring(v))
			assert.equal("retry.max_attempts", err.field)
		end
		for _, e in ipairs{ "1e999", "inf", "1000000" } do
			local _, err = bedrock.client{ region = "us-east-1",
				getenv = function(n) if n == "AWS_MAX_ATTEMPTS" then return e end end,
				credentials = { access_key_id = KEY, secret_access_key = SECRET } }
			assert.equal("ConfigError", err and err.code, e)
		end
		assert(bedrock.client{ region = "us-east-1", retry = { max_attempts = config.MAX_ATTEMPTS },
			credentials = { access_key_id = KEY, secret_access_key = SECRET } })
	end)

	it("list_async_invokes_pages and the bidirectional stream refuse wrongly typed arguments", function()
		local c = client("http://127.0.0.1:9")
		local ok, err = pcall(c.list_async_invokes_pages, c, 42)
		assert.is_false(ok)
		assert.is_true(bedrock.is_error(err), tostring(err))
		assert.equal("ValidationError", err.code)
		ok, err = pcall(c.list_async_invokes_pages, c, {}, "x")
		assert.is_false(ok)
		assert.matches("options must be a table", err)
		ok, err = pcall(c.invoke_model_with_bidirectional_stream, c, { modelId = "m" }, "x")
		assert.is_false(ok)
		assert.matches("options must be a table", err)
		c:close()
	end)
end)
