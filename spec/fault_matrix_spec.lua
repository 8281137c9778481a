-- The fault matrix: every fault the emulator injects (and, where it cannot, what
-- spec/hostile_server.py does) against every call style. Each cell must end in success
-- after retry or in the right error object (code, retryable, detail) within its time
-- bound, hand out every event that had arrived before the fault, and leave no connection
-- behind: the client holds at most one idle keep-alive connection afterwards and none
-- after close(), and the emulator saw no more connections than attempts.
--
-- The matrix is data: FAULTS (rows) x STYLES (columns) -> an expectation, one loop. A
-- cell that does not apply says why (pending, with the reason). The blocking part is
-- tagged #core, so `make valgrind` runs it under memcheck (timeouts are scaled there).
local helper = require "spec.helper"
local bedrock = require "bedrock"
local async = require "bedrock.async"
local core = require "bedrock.core"

local have_python = os.execute("python3 -c 'import socketserver' 2>/dev/null")
have_python = have_python == true or have_python == 0

-- Under valgrind the client runs some 20x slower (the emulator does not), under the
-- sanitizers 2-3x: every timeout and time bound is stretched.
local SCALE = (os.getenv("BEDROCK_VALGRIND") == "1" and 5) or (os.getenv("BEDROCK_SAN") == "1" and 2) or 1
local function ms(n) return n * SCALE end

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
local TEXT = "one two three four five six seven"
local TOOL_PLAN = '__tool_plan [[{"name":"echo","input":{"say":"hi"}}]]'
local MiB = 1024 * 1024

---------------------------------------------------------------------------- the table

-- An expectation: success(n) (the call succeeds; n operation requests reached the peer),
-- or the error: code, retryable, detail (err.detail_code), which (Timeout), status,
-- events (events handed out before it; `min_events` when the count is open-ended).
local function success(requests) return { ok = true, requests = requests } end
local function fail(t) return t end
local function na(reason) return { na = reason } end

local NO_EVENTS = "a Converse answer is one JSON body: no event-stream framing to break"
local H2_ONLY = "the emulator's HTTP/2 reset and GOAWAY strike after K events of a stream; a Converse " ..
	"answer has none (a connection lost under a plain call is the HTTP/1.1 reset row)"

-- Each fault: `fault` (emulator query strings, added in order), `pace` (pacing ms),
-- `http2`, `timeouts`, `hostile` (call style: what spec/hostile_server.py serves instead),
-- then one expectation per style. `stream` holds for the three stream styles (blocking,
-- bedrock.async, tool loop) unless a style has its own.
local FAULTS = {
	{ name = "throttle once", fault = { "kind=throttle" },
		call = success(2), stream = success(2) },
	{ name = "throttle on every attempt", fault = { "kind=throttle&count=0" },
		call = fail{ code = "ThrottlingException", status = 429, retryable = true, requests = 3 },
		stream = fail{ code = "ThrottlingException", status = 429, retryable = true, requests = 3, events = 0 } },
	{ name = "500 once", fault = { "kind=500" }, call = success(2), stream = success(2) },
	{ name = "500 on every attempt", fault = { "kind=500&count=0" },
		call = fail{ code = "InternalServerException", status = 500, retryable = true, requests = 3 },
		stream = fail{ code = "InternalServerException", status = 500, retryable = true, requests = 3, events = 0 } },
	{ name = "503 once", fault = { "kind=503" }, call = success(2), stream = success(2) },
	{ name = "stall before headers, longer than first_byte, once",
		fault = { "kind=stall&ms=" .. ms(1500) }, timeouts = { first_byte = ms(400) },
		call = success(2), stream = success(2) },
	{ name = "stall before headers on every attempt (never answers)", fault = { "kind=hang&count=0" },
		timeouts = { first_byte = ms(400) },
		call = fail{ code = "Timeout", which = "first_byte", retryable = true, requests = 3 },
		stream = fail{ code = "Timeout", which = "first_byte", retryable = true, requests = 3, events = 0 } },
	{ name = "stall mid-stream", fault = { "kind=stream-stall&after=2" }, timeouts = { idle = ms(500) },
		hostile = { head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"out",
			tail = "trickle:60000" },
		call = fail{ code = "Timeout", which = "idle", retryable = true, requests = 3 },
		stream = fail{ code = "Timeout", which = "idle", retryable = true, requests = 1, events = 2 } },
	{ name = "reset mid-stream (HTTP/1.1: TCP RST)", fault = { "kind=reset&after=2" },
		hostile = { head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"out" },
		call = fail{ code = "ConnectionError", retryable = true, requests = 3 },
		stream = fail{ code = "ConnectionError", retryable = true, requests = 1, events = 2 } },
	{ name = "reset mid-stream (HTTP/2: RST_STREAM)", fault = { "kind=reset&after=2" }, http2 = true, pace = 20,
		call = na(H2_ONLY),
		stream = fail{ code = "ConnectionError", retryable = true, requests = 1, events = 2 } },
	{ name = "GOAWAY mid-stream (HTTP/2)", fault = { "kind=goaway&after=2" }, http2 = true, pace = 20,
		call = na(H2_ONLY),
		stream = fail{ code = "ConnectionError", retryable = true, requests = 1, events = 2 } },
	{ name = "bad message CRC", fault = { "kind=crc&after=2" },
		call = na(NO_EVENTS),
		stream = fail{ code = "StreamError", detail = "MESSAGE_CRC", retryable = false, requests = 1, events = 2 } },
	{ name = "truncated frame", fault = { "kind=truncate&after=2" },
		call = na(NO_EVENTS),
		stream = fail{ code = "StreamError", detail = "STREAM_TRUNCATED", retryable = false, requests = 1, events = 2 } },
	{ name = "exception event mid-stream", fault = { "kind=exception&after=2" },
		call = na(NO_EVENTS),
		stream = fail{ code = "InternalServerException", retryable = true, requests = 1, events = 2 } },
	{ name = "the emulator runs out of memory mid-stream (test fault)", fault = { "kind=oom&after=2" },
		call = na(NO_EVENTS),
		stream = fail{ code = "InternalServerException", retryable = true, requests = 1, events = 2 } },
	{ name = "exception event as the first message", fault = { "kind=exception&after=0&exception=serviceUnavailableException" },
		call = na(NO_EVENTS), stream = success(2) },
	{ name = "oversized frame", fault = { "kind=oversize&after=2" },
		call = na(NO_EVENTS),
		stream = fail{ code = "StreamError", detail = "FRAME_TOO_LARGE", retryable = false, requests = 1, events = 2 } },
	-- every event of the answer comes before it: 13 for TEXT, 11 for the tool plan's first turn
	{ name = "oversized frame past the stream's last event (strikes at its end)", fault = { "kind=oversize&after=1000" },
		call = na(NO_EVENTS),
		stream = fail{ code = "StreamError", detail = "FRAME_TOO_LARGE", retryable = false, requests = 1, events = 13 },
		tools = fail{ code = "StreamError", detail = "FRAME_TOO_LARGE", retryable = false, requests = 1, events = 11 } },
	{ name = "a response that never ends", fault = { "kind=endless&after=2" }, timeouts = { total = ms(1500) },
		hostile = { head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", tail = "endless" },
		max_body = MiB,
		call = fail{ code = "ResponseTooLarge", retryable = false, requests = 1 },
		stream = fail{ code = "Timeout", which = "total", retryable = true, requests = 1, min_events = 3 } },
}

-- Columns, in order. `nginx` is the OpenResty location column (see the end of the file).
local STYLES = { "call", "stream", "async", "tools" }

---------------------------------------------------------------------------- call styles

local function request()
	return { modelId = MODEL, messages = { { role = "user", content = { { text = TEXT } } } } }
end

-- Each style runs one call on client c and returns an outcome:
-- { ok = bool, err = error object, events = events handed out }.
local RUN = {}

function RUN.call(c)
	local res, err = c:converse(request())
	return { ok = res ~= nil, err = err }
end

local function drain(c)
	local s, err = c:converse_stream(request())
	if not s then return { ok = false, err = err, events = 0 } end
	local n = 0
	local ok, e = pcall(function() for _ in s do n = n + 1 end end)
	return { ok = ok, err = not ok and e or nil, events = n }
end

RUN.stream = drain

function RUN.async(c)
	local out = async.run(function()
		return async.spawn(drain, c):await()
	end)
	assert.equal(0, async.count(), "a task is left behind")
	return out
end

function RUN.tools(c)
	local n = 0
	local res, err = c:converse_with_tools{
		modelId = MODEL,
		messages = { { role = "user", content = { { text = TOOL_PLAN } } } },
		tools = { echo = { description = "echo", handler = function(input) return input end } },
		on_event = function() n = n + 1 end,
	}
	if res then assert.equal(2, res.turns) end
	if not res then assert.is_table(err.messages, "the loop's error carries the history") end
	return { ok = res ~= nil, err = err, events = n }
end

---------------------------------------------------------------------------- the loop

local function expectation(row, style)
	local e = row[style] or row.stream
	if style == "tools" and e.ok then e = success(e.requests + 1) end -- the tool turn, then the answer
	return e
end

local function counters(emu)
	local s = helper.admin(emu, "GET", "/_emulator/requests")
	return tonumber(s:match('"api_connections":(%d+)')), tonumber(s:match('"requests":(%d+)'))
end

local function check(out, e, label)
	if e.ok then
		assert.is_true(out.ok, label .. ": " .. tostring(out.err))
		return
	end
	assert.is_false(out.ok, label .. ": succeeded")
	local err = out.err
	assert.is_true(bedrock.is_error(err), label .. ": not an error object: " .. tostring(err))
	assert.equal(e.code, err.code, label .. ": " .. tostring(err))
	assert.equal(e.retryable, err.retryable, label .. ": retryable of " .. tostring(err))
	if e.which then assert.equal(e.which, err.which, label) end
	if e.detail then assert.equal(e.detail, err.detail_code, label .. ": " .. tostring(err)) end
	if e.status then assert.equal(e.status, err.status, label) end
	if e.events and out.events then assert.equal(e.events, out.events, label .. ": events before the fault") end
	if e.min_events then
		assert.truthy(out.events >= e.min_events, label .. ": " .. out.events .. " events before the fault")
	end
end

local function new_client(url, row)
	local t = { connect = ms(5000), first_byte = ms(10000), idle = ms(10000), total = ms(30000) }
	for k, v in pairs(row.timeouts or {}) do t[k] = v end
	return assert(bedrock.client{ region = "us-east-1", endpoint = url, http2 = row.http2 or false,
		credentials = { access_key_id = "AKIDMATRIX", secret_access_key = "matrix/secret/key/0123456789" },
		timeouts = t, max_body = row.max_body, getenv = function() return nil end,
		retry = { max_attempts = 3, random = function() return 0 end } })
end

-- Runs one cell against the emulator (or the hostile server) and checks everything.
local function run_cell(emu, row, style)
	local e = expectation(row, style)
	local label = row.name .. " x " .. style
	local peer, stop = emu, nil
	if style == "call" and row.hostile then
		peer = helper.hostile(row.hostile)
		stop = peer.stop
	else
		helper.admin(emu, "POST", "/_emulator/reset")
		helper.admin(emu, "POST", "/_emulator/pacing?ms=" .. (row.pace or 0))
		for _, f in ipairs(row.fault) do
			local answer = helper.admin(emu, "POST", "/_emulator/faults?" .. f)
			assert.matches('"ok":true', answer, f)
		end
	end
	local c = new_client(peer.url, row)
	local t0 = core.monotonic()
	local ok, out = pcall(RUN[style], c)
	local took = core.monotonic() - t0
	local live = helper.tcp_connections(peer.port)
	c:close()
	local after = helper.tcp_connections(peer.port)
	if stop then stop() end
	if not ok then error(out, 0) end
	check(out, e, label)
	assert.truthy(took < ms(20), label .. ": took " .. took .. " s")
	assert.truthy(live <= 1, label .. ": " .. live .. " connections still open after the call")
	assert.equal(0, after, label .. ": connections open after close()")
	if peer == emu then
		local conns, requests = counters(emu)
		assert.equal(e.requests, requests, label .. ": operation requests at the emulator")
		assert.truthy(conns <= requests, label .. ": " .. conns .. " connections for " .. requests .. " requests")
	end
end

describe("fault matrix #core", function()
	local emu, sockets0
	local function sockets()
		collectgarbage()
		collectgarbage()
		local n = 0
		for _, target in pairs((helper.fds())) do
			if target:match("^socket:") then n = n + 1 end
		end
		return n
	end
	setup(function()
		emu = helper.emulator({ "--no-auth" })
		sockets0 = sockets()
	end)
	teardown(function() if emu then emu.stop() end end)

	for _, row in ipairs(FAULTS) do
		for _, style in ipairs(STYLES) do
			local e = expectation(row, style)
			local name = row.name .. " x " .. style
			if e.na then
				pending(name .. ": does not apply: " .. e.na)
			elseif style == "call" and row.hostile and not have_python then
				pending(name .. ": needs python3 for spec/hostile_server.py")
			else
				it(name, function() run_cell(emu, row, style) end)
			end
		end
	end

	it("leaves the process as it found it: no socket left open by the matrix", function()
		-- every cell closed its client; a socket left over would be a leaked connection
		assert.equal(sockets0, sockets())
	end)
end)

---------------------------------------------------------------------------- OpenResty

-- The OpenResty column: the same rows through a location of a test nginx (one worker,
-- the cosocket transport) that makes a ConverseStream call and answers what happened
-- (spec/nginx/fault_matrix_app.lua). The cosocket transport speaks HTTP/1.1 only, so
-- the HTTP/2 rows do not apply. Leaks are counted at the worker: its established
-- connections to the emulator (at most the one idle in its keep-alive pool).
local NGX_NO_H2 = "the cosocket transport speaks HTTP/1.1 only (no RST_STREAM or GOAWAY to receive)"
local is_jit = type(rawget(_G, "jit")) == "table"
local has_ngxh, ngxh = pcall(require, "spec.ngx_helper")
local ngx_ok, ngx_why = false, "needs the nginx cosocket transport and its test nginx (spec/ngx_helper.lua)"
if has_ngxh then ngx_ok, ngx_why = ngxh.available() end
if not is_jit then ngx_ok, ngx_why = false, "runs under LuaJIT (nginx's Lua module is LuaJIT)" end

describe("fault matrix: the OpenResty location column #ngx", function()
	if not ngx_ok then
		pending(ngx_why)
		return
	end
	local json = require "bedrock.json"
	local emu, ng, worker

	setup(function()
		emu = helper.emulator({ "--no-auth" })
		ng = ngxh.start{ env = { BEDROCK_TEST_ENDPOINT = emu.url },
			http = "  lua_socket_log_errors off;\n  server {\n    listen 127.0.0.1:$PORT;\n" ..
				"    location = / { return 200 'ok'; }\n" ..
				"    location = /cell { content_by_lua_block { require('fault_matrix_app').cell() } }\n  }\n" }
		local master = helper.read(ng.prefix .. "/logs/nginx.pid"):match("%d+")
		local p = assert(io.popen("ps -o pid= --ppid " .. master))
		worker = tonumber(p:read("*l"))
		p:close()
		assert.is_number(worker)
	end)
	teardown(function()
		if ng then
			local log = ng.log()
			ng.stop()
			assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
		end
		if emu then emu.stop() end
	end)

	for _, row in ipairs(FAULTS) do
		local name = row.name .. " x OpenResty location"
		if row.http2 then
			pending(name .. ": does not apply: " .. NGX_NO_H2)
		else
			it(name, function()
				local e = row.nginx or row.stream
				helper.admin(emu, "POST", "/_emulator/reset")
				helper.admin(emu, "POST", "/_emulator/pacing?ms=" .. (row.pace or 0))
				for _, f in ipairs(row.fault) do helper.admin(emu, "POST", "/_emulator/faults?" .. f) end
				local q = { "style=stream" }
				for k, v in pairs(row.timeouts or {}) do q[#q + 1] = k .. "=" .. v end
				local t0 = core.monotonic()
				local status, body = ngxh.get(ng.url .. "/cell?" .. table.concat(q, "&"), { max_time = 60 })
				local took = core.monotonic() - t0
				assert.equal(200, status, body)
				local out = assert(json.decode(body), body)
				local label = name
				if e.ok then
					assert.is_true(out.ok, label .. ": " .. body)
				else
					assert.is_false(out.ok, label .. ": succeeded")
					assert.is_true(out.err.is_error, label .. ": not an error object: " .. body)
					assert.equal(e.code, out.err.code, label .. ": " .. body)
					assert.equal(e.retryable, out.err.retryable, label .. ": " .. body)
					if e.which then assert.equal(e.which, out.err.which, label .. ": " .. body) end
					if e.detail then assert.equal(e.detail, out.err.detail_code, label .. ": " .. body) end
					if e.status then assert.equal(e.status, out.err.status, label) end
					if e.events then assert.equal(e.events, out.events, label .. ": events before the fault") end
					if e.min_events then assert.truthy(out.events >= e.min_events, label .. ": " .. out.events) end
				end
				assert.truthy(took < 20, label .. ": took " .. took .. " s")
				local live = helper.tcp_connections(emu.port, worker)
				assert.truthy(live <= 1, label .. ": the worker holds " .. live .. " connections to the emulator")
				local conns, requests = counters(emu)
				assert.equal(e.requests, requests, label .. ": operation requests at the emulator")
				assert.truthy(conns <= requests, label .. ": " .. conns .. " connections for " .. requests .. " requests")
			end)
		end
	end
end)
