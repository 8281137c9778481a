-- The nginx cosocket transport inside a real nginx (Debian's nginx with its Lua module):
-- a test nginx on a free loopback port, the emulator as the upstream, and every request
-- driven over HTTP with the curl CLI. Runs under the LuaJIT build (nginx's Lua module is
-- LuaJIT); under Lua 5.4 the spec is pending.
local helper = require "spec.helper"
local ngxh = require "spec.ngx_helper"
local json = require "bedrock.json"

local KEY, SECRET = "AKIDEMULATOR", "emulator/secret+key"

local is_jit = type(rawget(_G, "jit")) == "table"
local ok_ngx, why = ngxh.available()
if not is_jit or not ok_ngx or not helper.exists(helper.emulator_bin) then
	describe("nginx cosocket transport", function()
		pending(not is_jit and "runs under LuaJIT (nginx's Lua module is LuaJIT)" or
			(why or "needs build/bin/bedrock-emulator"))
	end)
	return
end

local APP = "bedrock_ngx_app"

local function loc(path, code)
	return "    location = " .. path .. " { content_by_lua_block { " .. code .. " } }\n"
end

local function server_conf(extra)
	return table.concat{
		"  lua_socket_log_errors off;\n",
		"  init_by_lua_block {\n",
		"    local app = require '", APP, "'\n",
		"    local c = app.client()\n",
		"    local ok, res, err = pcall(c.converse, c, { modelId = 'm', messages = { { role = 'user', content = { { text = 'x' } } } } })\n",
		"    INIT_RESULT = require('cjson').encode(app.err_table(err or res))\n",
		"  }\n",
		extra or "",
		"  server {\n",
		"    listen 127.0.0.1:$PORT;\n",
		"    location = / { return 200 'ok'; }\n",
		"    location = /ping { return 200 'pong'; }\n",
		"    location = /lua-ping { content_by_lua_block { ngx.print('pong') } }\n",
		loc("/converse", "require('" .. APP .. "').converse()"),
		loc("/stream", "require('" .. APP .. "').stream()"),
		loc("/invoke", "require('" .. APP .. "').invoke()"),
		loc("/others", "require('" .. APP .. "').others()"),
		loc("/refused", "require('" .. APP .. "').refused()"),
		loc("/tools", "require('" .. APP .. "').tools()"),
		loc("/curl-task", "require('" .. APP .. "').curl_task()"),
		loc("/async", "require('" .. APP .. "').async()"),
		loc("/container", "require('" .. APP .. "').container()"),
		loc("/stats", "require('" .. APP .. "').stats()"),
		loc("/init-result", "ngx.print(INIT_RESULT)"),
		"    location = /filter {\n",
		"      content_by_lua_block { ngx.print('body') }\n",
		"      header_filter_by_lua_block {\n",
		"        local _, err = require('" .. APP .. "').call_here()\n",
		"        ngx.header['x-phase-error'] = err and (err.code .. ': ' .. err.message) or 'none'\n",
		"      }\n",
		"    }\n",
		"  }\n",
	}
end

local function get_json(url, opts)
	local status, body, t = ngxh.get(url, opts)
	local v = body and json.decode(body)
	return status, v, t, body
end

-- Lines of an SSE response, each with the time it reached the client (seconds).
local function sse_timed(url)
	local cmd = "curl -sN --max-time 60 " .. helper.shell_quote(url) ..
		" | while IFS= read -r l; do [ -n \"$l\" ] && echo \"$(date +%s.%N) $l\"; done"
	local p = assert(io.popen(cmd))
	local out = {}
	for line in p:lines() do
		local t, rest = line:match("^([%d.]+) (.*)$")
		out[#out + 1] = { t = tonumber(t), line = rest }
	end
	p:close()
	return out
end

describe("nginx cosocket transport #ngx", function()
	local em, ng, ng_creds

	local function control(method, what)
		local cmd = "curl -s -X " .. method .. " -H 'x-emulator-admin: 1' " ..
			helper.shell_quote(em.url .. "/_emulator/" .. what)
		return json.decode(ngxh.capture(cmd))
	end

	setup(function()
		em = helper.emulator({ "--key", KEY .. ":" .. SECRET })
		ng = ngxh.start{
			env = { BEDROCK_TEST_ENDPOINT = em.url, AWS_ACCESS_KEY_ID = KEY,
				AWS_SECRET_ACCESS_KEY = SECRET, AWS_REGION = "us-east-1" },
			http = server_conf(),
		}
		-- a second nginx whose workers find credentials only at the container endpoint
		ng_creds = ngxh.start{
			env = { BEDROCK_TEST_ENDPOINT = em.url, AWS_REGION = "us-east-1", HOME = "/nonexistent",
				AWS_CONTAINER_CREDENTIALS_FULL_URI = em.url .. "/container-credentials" },
			http = server_conf(),
		}
	end)

	teardown(function()
		if ng_creds then ng_creds.stop() end
		if ng then
			local log = ng.log()
			ng.stop()
			-- no Lua error escaped into nginx's log
			assert.is_nil(log:find("[error]", 1, true) and log:find("lua entry thread aborted", 1, true), log)
		end
		if em then em.stop() end
	end)

	before_each(function()
		control("POST", "reset")
	end)

	it("converse through the cosocket transport, chosen automatically", function()
		local status, v, _, raw = get_json(ng.url .. "/converse?text=hi%20there")
		assert.equal(200, status, raw)
		assert.equal("bedrock.transport.ngx", v.transport)
		assert.matches("hi there", v.text)
		assert.equal(1, v.attempts)
	end)

	it("keeps connections alive across calls through the cosocket pool", function()
		for _ = 1, 5 do assert.equal(200, (get_json(ng.url .. "/converse"))) end
		local _, st = get_json(ng.url .. "/stats")
		assert.is_true(st.reused >= 4, json.encode(st))
		local req = control("GET", "requests")
		-- every call on the same connection or nearly so (the first calls of this worker
		-- may predate the ones counted here)
		assert.is_true(req.api_connections <= 1, json.encode(req))
	end)

	it("streams ConverseStream out as Server-Sent Events as events arrive", function()
		control("POST", "pacing?ms=150")
		local lines = sse_timed(ng.url .. "/stream?text=one%20two%20three%20four%20five%20six")
		assert.is_true(#lines >= 6, #lines .. " lines")
		local first, last = lines[1], lines[#lines]
		assert.matches('^data: {"messageStart"', first.line)
		assert.equal("data: {}", last.line)
		assert.equal("event: done", lines[#lines - 1].line)
		-- the first event reached the client well before the model had finished
		local n_events = 0
		for _, l in ipairs(lines) do if l.line:find("^data: {\"") then n_events = n_events + 1 end end
		local span = last.t - first.t
		assert.is_true(span >= (n_events - 2) * 0.15 * 0.8,
			string.format("first event %.3f s before the end, %d events paced at 150 ms", span, n_events))
		local text = {}
		for _, l in ipairs(lines) do
			local ev = l.line:match("^data: (.*)$")
			ev = ev and json.decode(ev)
			if ev and ev.contentBlockDelta then text[#text + 1] = ev.contentBlockDelta.delta.text end
		end
		assert.matches("one two three", table.concat(text))
	end)

	it("InvokeModel and its stream", function()
		local status, v, _, raw = get_json(ng.url .. "/invoke")
		assert.equal(200, status, raw)
		assert.is_table(v.json)
		assert.matches("json", v.content_type)
		assert.is_true(v.chunks > 0)
	end)

	it("CountTokens, ApplyGuardrail, the async operations; the bidirectional stream is refused", function()
		local status, v, _, raw = get_json(ng.url .. "/others")
		assert.equal(200, status, raw)
		assert.is_number(v.tokens)
		assert.equal("GUARDRAIL_INTERVENED", v.guardrail)
		assert.is_string(v.async_status)
		assert.is_true(v.async_same)
		assert.is_true(v.async_listed >= 1)
		assert.is_false(v.bidi_ok)
		assert.equal("NotSupported", v.bidi.code)
		assert.matches("HTTP/2", v.bidi.message)
	end)

	it("a throttled call is retried (ngx.sleep) and succeeds", function()
		control("POST", "faults?kind=throttle&count=2")
		local status, v, _, raw = get_json(ng.url .. "/converse")
		assert.equal(200, status, raw)
		assert.equal(3, v.attempts)
	end)

	it("throttling past the attempts gives the service error", function()
		control("POST", "faults?kind=throttle&count=5")
		local status, v = get_json(ng.url .. "/converse")
		assert.equal(502, status)
		assert.equal("ThrottlingException", v.error.code)
		assert.equal(429, v.error.status)
		assert.equal(3, v.error.attempts)
		control("DELETE", "faults")
	end)

	it("a reset mid-stream is a ConnectionError raised by the iterator", function()
		control("POST", "faults?kind=reset&after=3")
		local lines = sse_timed(ng.url .. "/stream")
		assert.equal("event: error", lines[#lines - 1].line)
		local e = json.decode(lines[#lines].line:match("^data: (.*)$"))
		assert.equal("ConnectionError", e.code)
		assert.is_true(e.retryable)
		local n = 0
		for _, l in ipairs(lines) do if l.line:find("^data: {\"") then n = n + 1 end end
		assert.is_true(n >= 3 and n <= 4, n .. " events before the reset")
	end)

	it("a stalled stream ends with an idle Timeout", function()
		control("POST", "faults?kind=stream-stall&after=2&ms=3000")
		local lines = sse_timed(ng.url .. "/stream?idle=400")
		assert.equal("event: error", lines[#lines - 1].line)
		local e = json.decode(lines[#lines].line:match("^data: (.*)$"))
		assert.equal("Timeout", e.code)
		assert.equal("idle", e.which)
	end)

	it("a stalled answer ends with a first_byte Timeout; a total deadline is named total", function()
		control("POST", "faults?kind=stall&ms=2000&count=3")
		local status, v = get_json(ng.url .. "/converse?first_byte=300")
		assert.equal(502, status)
		assert.equal("Timeout", v.error.code)
		assert.equal("first_byte", v.error.which)
		control("POST", "reset")
		control("POST", "faults?kind=stall&ms=2000&count=3")
		status, v = get_json(ng.url .. "/converse?total=300")
		assert.equal(502, status)
		assert.equal("total", v.error.which)
	end)

	it("a refused connection is a retryable ConnectionError, as from the curl transport", function()
		local _, v = get_json(ng.url .. "/refused?transport=ngx")
		local _, c = get_json(ng.url .. "/refused?transport=curl")
		assert.equal("ConnectionError", v.error.code)
		assert.is_true(v.error.retryable)
		assert.equal(3, v.error.attempts)
		assert.equal(c.error.code, v.error.code)
		assert.equal(c.error.retryable, v.error.retryable)
		assert.equal(c.error.attempts, v.error.attempts)
	end)

	it("timeouts and resets give the same error objects as the curl transport", function()
		for _, case in ipairs{
			{ "faults?kind=stall&ms=2000&count=6", "/converse?first_byte=300", "first_byte" },
			{ "faults?kind=stall&ms=2000&count=6", "/converse?total=300", "total" },
		} do
			local got = {}
			for _, tr in ipairs{ "ngx", "curl" } do
				control("POST", "reset")
				control("POST", case[1])
				local _, v = get_json(ng.url .. case[2] .. "&transport=" .. tr)
				got[tr] = v.error
			end
			assert.equal("Timeout", got.ngx.code)
			assert.equal(case[3], got.ngx.which)
			assert.same({ got.curl.code, got.curl.which, got.curl.retryable, got.curl.attempts },
				{ got.ngx.code, got.ngx.which, got.ngx.retryable, got.ngx.attempts })
		end
		for _, tr in ipairs{ "ngx", "curl" } do
			control("POST", "reset")
			control("POST", "faults?kind=reset&after=3")
			local lines = sse_timed(ng.url .. "/stream?transport=" .. tr)
			local e = json.decode(lines[#lines].line:match("^data: (.*)$"))
			assert.equal("ConnectionError", e.code, tr)
			assert.is_true(e.retryable, tr)
		end
	end)

	it("calls from phases without cosockets answer NotSupported naming the phase", function()
		local out = ngxh.capture("curl -s -D - -o /dev/null " .. ng.url .. "/filter")
		assert.matches("x%-phase%-error: NotSupported: cosockets are not available in nginx's 'header_filter' phase", out)
		local _, body = ngxh.get(ng.url .. "/init-result")
		local v = json.decode(body)
		assert.equal("NotSupported", v.code)
		assert.matches("'init' phase", v.message)
	end)

	it("the tool loop runs handlers concurrently with parallel = true", function()
		local status, v, _, raw = get_json(ng.url .. "/tools")
		assert.equal(200, status, raw)
		assert.equal(2, v.turns)
		assert.matches("returned", v.text)
		assert.equal(3, #v.finished)
		assert.is_true(v.seconds < 1.0, "three 0.4 s handlers took " .. v.seconds .. " s")
		status, v, _, raw = get_json(ng.url .. "/tools?parallel=0")
		assert.equal(200, status, raw)
		assert.is_true(v.seconds >= 1.15, "one after the other: " .. v.seconds .. " s")
		assert.same({ "a", "b", "c" }, v.finished)
	end)

	it("bedrock.async's API works inside a request (tasks are ngx light threads)", function()
		local status, v, _, raw = get_json(ng.url .. "/async")
		assert.equal(200, status, raw)
		assert.equal(5, #v.texts)
		assert.matches("task 3", v.texts[3])
		-- five tasks that each sleep 0.3 s before their call ran at the same time
		assert.is_true(v.seconds < 1.2, v.seconds .. " s")
		assert.equal("saw: " .. v.texts[1], v.waiter)
		assert.is_true(v.current_outside)
		assert.equal("Boom", v.failed)
		assert.equal("task", v.timeout)
		assert.equal("Cancelled", v.cancelled)
		assert.equal("cancelled", v.status)
		assert.equal(42, v.run)
	end)

	it("a curl-transport call inside a task does not block the worker", function()
		control("POST", "faults?kind=stall&ms=600")
		local status, v, _, raw = get_json(ng.url .. "/curl-task")
		assert.equal(200, status, raw)
		assert.matches("curl in a task", v.text)
		-- 600 ms of stall: a blocked worker would have ticked once or twice
		assert.is_true(v.ticks >= 6, v.ticks .. " ticks")
	end)

	it("credentials from the container endpoint, fetched over the cosocket transport, once per worker", function()
		control("DELETE", "requests")
		local dir = ngxh.tmpdir()
		local cmd = {}
		for i = 1, 10 do
			cmd[#cmd + 1] = "curl -s --max-time 30 " .. ng_creds.url .. "/container > " .. dir .. "/c" .. i .. " &"
		end
		ngxh.sh(table.concat(cmd, " ") .. " wait")
		for i = 1, 10 do
			local v = json.decode(helper.read(dir .. "/c" .. i))
			assert.is_table(v, helper.read(dir .. "/c" .. i))
			assert.matches("with role credentials", v.text or json.encode(v))
			assert.equal("container-role", v.source)
		end
		ngxh.sh("rm -rf " .. helper.shell_quote(dir))
		local req = control("GET", "requests")
		local fetches = 0
		for _, l in ipairs(req.log or {}) do
			if tostring(l.path):find("container%-credentials") then fetches = fetches + 1 end
		end
		-- ten concurrent first calls, one refresh (the log lists credential requests)
		assert.equal(1, fetches, json.encode(req.log))
	end)

	it("50 concurrent streams through one worker while another location answers in milliseconds", function()
		control("POST", "pacing?ms=200")
		local dir = ngxh.tmpdir()
		local cmd = {}
		for i = 1, 50 do
			cmd[#cmd + 1] = "curl -sN --max-time 60 " .. helper.shell_quote(ng.url .. "/stream?text=load%20" .. i) ..
				" > " .. dir .. "/s" .. i .. " &"
		end
		ngxh.sh("(" .. table.concat(cmd, " ") .. " wait) >/dev/null 2>&1 & echo $! > " .. dir .. "/pid")
		ngxh.sh("sleep 0.2")
		local worst = 0
		local samples = 0
		for _ = 1, 10 do
			local status, body, t = ngxh.get(ng.url .. "/lua-ping")
			assert.equal(200, status)
			assert.equal("pong", body)
			if t > worst then worst = t end
			samples = samples + 1
			ngxh.sh("sleep 0.05")
		end
		-- the streams were still running while the pings were answered
		local finished = 0
		for i = 1, 50 do
			local f = io.open(dir .. "/s" .. i)
			if f then
				if (f:read("*a") or ""):find("event: done", 1, true) then finished = finished + 1 end
				f:close()
			end
		end
		assert.is_true(finished < 50, "every stream had ended before the pings")
		-- wait for the streams
		ngxh.sh("while kill -0 $(cat " .. dir .. "/pid) 2>/dev/null; do sleep 0.1; done")
		local done = 0
		for i = 1, 50 do
			local out = helper.read(dir .. "/s" .. i)
			if out:find("event: done", 1, true) and out:find('{"text":" ' .. i .. '"}', 1, true) then done = done + 1 end
		end
		ngxh.sh("rm -rf " .. helper.shell_quote(dir))
		assert.equal(50, done)
		-- generous for a loaded machine: the blocking libcurl path held the worker for a
		-- whole stream (seconds)
		assert.is_true(worst < 0.25, string.format("slowest ping %.3f s", worst))
	end)
end)

describe("nginx cosocket transport: TLS and proxies #ngx", function()
	local em, tls, wrong, ng, proxy_nginx, cproxy, dir, pki

	local function control(base, method, what)
		local cmd = "curl -s -k -X " .. method .. " -H 'x-emulator-admin: 1' " ..
			helper.shell_quote(base .. "/_emulator/" .. what)
		return json.decode(ngxh.capture(cmd))
	end

	setup(function()
		dir = ngxh.tmpdir()
		pki = ngxh.make_pki(dir)
		em = helper.emulator({ "--key", KEY .. ":" .. SECRET })
		tls = helper.emulator({ "--key", KEY .. ":" .. SECRET, "--tls", pki.cert, pki.key })
		tls.url = "https://127.0.0.1:" .. tls.port
		-- a certificate from the same trusted CA, for a name other than the one dialled
		local other = ngxh.make_other_cert(dir, "not-this-host.example")
		wrong = helper.emulator({ "--key", KEY .. ":" .. SECRET, "--tls", other.cert, other.key })
		-- nginx's own proxy for absolute-form requests: it marks what it forwarded
		proxy_nginx = ngxh.start{ http = "  server {\n    listen 127.0.0.1:$PORT;\n" ..
			"    location / { proxy_pass http://127.0.0.1:" .. em.port .. "; proxy_http_version 1.1;\n" ..
			"      proxy_set_header Connection ''; add_header x-via test-proxy always; }\n  }\n" }
		local p = assert(io.popen("python3 spec/connect_proxy.py " .. dir .. "/connect.log & echo $!"))
		local pid = p:read("*l")
		local port = p:read("*l")
		cproxy = { pid = pid, port = tonumber(port), pipe = p }
		assert(cproxy.port, "connect proxy did not start")
		ng = ngxh.start{
			env = { BEDROCK_TEST_ENDPOINT = em.url, BEDROCK_TEST_TLS_ENDPOINT = tls.url,
				BEDROCK_TEST_WRONG_NAME_ENDPOINT = "https://127.0.0.1:" .. wrong.port,
				BEDROCK_TEST_HTTP_PROXY = proxy_nginx.url,
				BEDROCK_TEST_CONNECT_PROXY = "http://user:p%40ss@127.0.0.1:" .. cproxy.port,
				https_proxy = "http://127.0.0.1:" .. cproxy.port, no_proxy = "localhost",
				AWS_ACCESS_KEY_ID = KEY, AWS_SECRET_ACCESS_KEY = SECRET, AWS_REGION = "us-east-1" },
			http = "  lua_ssl_verify_depth 2;\n  server {\n    listen 127.0.0.1:$PORT;\n" ..
				"    location = / { return 200 'ok'; }\n" ..
				"    location = /converse { lua_ssl_trusted_certificate " .. pki.ca .. ";\n" ..
				"      content_by_lua_block { require('" .. APP .. "').converse() } }\n" ..
				"    location = /wrong_name { lua_ssl_trusted_certificate " .. pki.ca .. ";\n" ..
				"      content_by_lua_block { require('" .. APP .. "').converse() } }\n" ..
				"    location = /untrusted { content_by_lua_block { require('" .. APP .. "').converse() } }\n" ..
				"    location = /stats { content_by_lua_block { require('" .. APP .. "').stats() } }\n" ..
				"  }\n",
		}
	end)

	teardown(function()
		if ng then ng.stop() end
		if proxy_nginx then proxy_nginx.stop() end
		if cproxy then os.execute("kill " .. cproxy.pid .. " 2>/dev/null"); cproxy.pipe:close() end
		if em then em.stop() end
		if tls then tls.stop() end
		if wrong then wrong.stop() end
		if dir then ngxh.sh("rm -rf " .. helper.shell_quote(dir)) end
	end)

	it("refuses a server its trust store does not vouch for, naming the certificate problem", function()
		local status, v = get_json(ng.url .. "/untrusted?transport=tls")
		assert.equal(502, status)
		assert.equal("ConnectionError", v.error.code, v.error.message)
		assert.matches("TLS handshake with 127.0.0.1 failed", v.error.message)
		assert.is_false(v.error.retryable, v.error.message)
		assert.matches("certificate", v.error.message)
	end)

	it("verifies against lua_ssl_trusted_certificate and reuses the TLS connection", function()
		control(tls.url, "DELETE", "requests")
		for _ = 1, 4 do
			local status, v, _, raw = get_json(ng.url .. "/converse?transport=tls&text=secure")
			assert.equal(200, status, raw)
			assert.matches("secure", v.text)
		end
		local req = control(tls.url, "GET", "requests")
		assert.equal(1, req.api_connections)
		assert.equal(4, req.requests)
	end)

	it("refuses a certificate for another host name even from the trusted CA", function()
		local status, v, _, raw = get_json(ng.url .. "/wrong_name?transport=wrong_name")
		assert.equal(502, status, raw)
		assert.equal("ConnectionError", v.error.code, v.error.message)
		assert.matches("TLS handshake with 127.0.0.1 failed", v.error.message)
		assert.is_false(v.error.retryable, v.error.message)
		-- the chain is trusted here: what is refused is the name
		assert.matches("certificate", v.error.message)
		-- the refusal is verification's: the server answers a client that skips it
		status, v, _, raw = get_json(ng.url .. "/wrong_name?transport=wrong_name_noverify")
		assert.equal(200, status, raw)
		assert.matches("said", v.text)
	end)

	it("verify = false connects without the trust store, on a pool of its own", function()
		-- a verified connection to the same host and port is idle in the pool by now
		local status, v, _, raw = get_json(ng.url .. "/untrusted?transport=tls_noverify")
		assert.equal(200, status, raw)
		assert.matches("said", v.text)
		local _, st = get_json(ng.url .. "/stats?transport=tls_noverify")
		assert.same({ 1, 0 }, { st.connections, st.reused })
		status = get_json(ng.url .. "/untrusted?transport=tls_noverify")
		assert.equal(200, status)
		_, st = get_json(ng.url .. "/stats?transport=tls_noverify")
		assert.same({ 1, 1 }, { st.connections, st.reused })
	end)

	it("sends absolute-form requests through an http proxy; no_proxy bypasses it", function()
		local status, v, _, raw = get_json(ng.url .. "/converse?transport=http_proxy")
		assert.equal(200, status, raw)
		assert.equal("test-proxy", v.via)
		status, v, _, raw = get_json(ng.url .. "/converse?transport=no_proxy")
		assert.equal(200, status, raw)
		assert.is_nil(v.via)
	end)

	it("tunnels https through CONNECT with proxy credentials, then verifies TLS", function()
		local status, v, _, raw = get_json(ng.url .. "/converse?transport=https_proxy&text=tunnel")
		assert.equal(200, status, raw)
		assert.matches("tunnel", v.text)
		status = get_json(ng.url .. "/converse?transport=https_proxy&text=again")
		assert.equal(200, status)
		local log = helper.read(dir .. "/connect.log")
		-- one tunnel for both calls (kept alive), with Basic user:p@ss
		local _, n = log:gsub("CONNECT 127.0.0.1:" .. tls.port .. " Basic dXNlcjpwQHNz\n", "")
		assert.equal(1, n, log)
	end)

	it("takes https_proxy from the worker's environment", function()
		local status, _, _, raw = get_json(ng.url .. "/converse?transport=env_proxy")
		assert.equal(200, status, raw)
		local _, st = get_json(ng.url .. "/stats?transport=env_proxy")
		assert.equal("127.0.0.1:" .. cproxy.port, st.https_proxy, json.encode(st))
		-- every https client of this nginx without proxy options of its own (the TLS
		-- specs above too) tunnelled through it, without credentials
		assert.matches("CONNECT 127.0.0.1:" .. tls.port .. " -\n", helper.read(dir .. "/connect.log"), 1, true)
	end)
end)

describe("examples/nginx SSE chat gateway #ngx", function()
	local em, ng

	local function chat(body)
		local out = ngxh.capture("curl -sN --max-time 30 --data-binary " .. helper.shell_quote(body) ..
			" " .. ng.url .. "/chat")
		local events = {}
		for ev, data in out:gmatch("event: (%a+)\ndata: ([^\n]*)\n\n") do
			events[#events + 1] = { event = ev, data = json.decode(data) }
		end
		return events, out
	end

	setup(function()
		em = helper.emulator({ "--key", KEY .. ":" .. SECRET })
		ng = ngxh.start{
			env = { AWS_ENDPOINT_URL_BEDROCK_RUNTIME = em.url, AWS_ACCESS_KEY_ID = KEY,
				AWS_SECRET_ACCESS_KEY = SECRET, AWS_REGION = "us-east-1" },
			http = "  server {\n    listen 127.0.0.1:$PORT;\n    location = / { return 200 'ok'; }\n" ..
				"    location = /chat { content_by_lua_block { require('examples.nginx.bedrock_gateway').chat() } }\n" ..
				"  }\n",
		}
	end)

	teardown(function()
		if ng then ng.stop() end
		if em then em.stop() end
	end)

	it("streams the model's text as SSE events, the model taken from the request", function()
		local events, raw = chat('{"model":"anthropic.claude-3-haiku-20240307-v1:0","prompt":"gateway test"}')
		assert.equal("done", events[#events].event, raw)
		assert.equal("end_turn", events[#events].data.stopReason)
		local text = {}
		for _, e in ipairs(events) do if e.event == "text" then text[#text + 1] = e.data.text end end
		assert.matches("gateway test", table.concat(text))
	end)

	it("bad requests and service errors are SSE error events", function()
		local events = chat("not json")
		assert.same({ "error", "BadRequest" }, { events[1].event, events[1].data.code })
		events = chat('{"prompt":"no model"}')
		assert.matches("model", events[1].data.message)
		events = chat('{"model":"m","messages":[{"role":"user"}]}')
		assert.matches("messages%[1%]", events[1].data.message)
		ngxh.capture("curl -s -X POST -H 'x-emulator-admin: 1' '" .. em.url .. "/_emulator/faults?kind=throttle&count=5'")
		events = chat('{"model":"anthropic.claude-3-haiku-20240307-v1:0","prompt":"x"}')
		assert.same({ "error", "ThrottlingException", true },
			{ events[1].event, events[1].data.code, events[1].data.retryable })
		ngxh.capture("curl -s -X DELETE -H 'x-emulator-admin: 1' '" .. em.url .. "/_emulator/faults'")
		ngxh.capture("curl -s -X POST -H 'x-emulator-admin: 1' '" .. em.url .. "/_emulator/faults?kind=reset&after=2'")
		events = chat('{"model":"anthropic.claude-3-haiku-20240307-v1:0","prompt":"one two three"}')
		assert.equal("text", events[1].event)
		assert.same({ "error", "ConnectionError" }, { events[#events].event, events[#events].data.code })
	end)

	it("runs against the emulator with one command (examples/nginx/run.sh --once)", function()
		local port = ngxh.capture("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); " ..
			"print(s.getsockname()[1])'"):gsub("%s+$", "")
		local out = ngxh.capture("PORT=" .. port .. " timeout 60 examples/nginx/run.sh --once 2>&1")
		assert.matches("event: text\ndata: {\"text\":\" Hello\"}", out, 1, true)
		assert.matches("event: done", out, 1, true)
	end)
end)
