-- The libcurl transport (csrc/br_http.c, csrc/lua_http.c, lua/bedrock/transport/curl.lua)
-- against the real bedrock-emulator over loopback sockets: HTTP/1.1, h2c prior knowledge,
-- TLS with a CA made here by the openssl CLI, faults for timeouts and resets, and the
-- bidirectional operation over HTTP/2.
local helper = require "spec.helper"
local core = require "bedrock.core"
local errors = require "bedrock.errors"
local T = require "bedrock.transport.curl"

local MODEL = "amazon.nova-lite-v1%3A0"
local JSON = { { "content-type", "application/json" } }
local ADMIN = { { "x-emulator-admin", "1" } }

local function converse_body(text)
	return '{"messages":[{"role":"user","content":[{"text":"' .. text .. '"}]}]}'
end

local function tmpdir()
	local p = assert(io.popen("mktemp -d 2>/dev/null"))
	local d = p:read("*l")
	p:close()
	assert(d and d ~= "", "mktemp -d failed")
	return d
end

local make_pki, make_other_cert = helper.make_pki, helper.make_other_cert

-- Base64 without bit operators (runs on 5.4 and LuaJIT alike).
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = s:byte(i, i + 2)
		local n = a * 65536 + (b or 0) * 256 + (c or 0)
		local c1 = math.floor(n / 262144) % 64
		local c2 = math.floor(n / 4096) % 64
		local c3 = math.floor(n / 64) % 64
		local c4 = n % 64
		out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1) ..
			(b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
	end
	return table.concat(out)
end

local function frame(inner)
	local ms = os.time() * 1000
	return assert(core.encode({
		{ ":date", "timestamp", ms },
		{ ":chunk-signature", "bytes", string.rep("\0", 32) },
	}, inner))
end
local function event(json)
	return frame(assert(core.encode({
		{ ":event-type", "string", "chunk" },
		{ ":message-type", "string", "event" },
		{ ":content-type", "string", "application/json" },
	}, '{"bytes":"' .. b64(json) .. '"}')))
end
local function next_event(s, dec)
	while true do
		local h, payload = dec:next()
		if h then return h, payload end
		local more, err = s:read()
		assert(more ~= nil, tostring(err))
		if not more then return nil end
	end
end
local function decode_chunk(payload)
	local b = payload:match('"bytes":"([^"]*)"')
	local map = {}
	for i = 1, 64 do map[B64:sub(i, i)] = i - 1 end
	local out = {}
	for i = 1, #b, 4 do
		local q = { b:byte(i, i + 3) }
		local n, pad = 0, 0
		for j = 1, 4 do
			local ch = string.char(q[j])
			if ch == "=" then pad = pad + 1; n = n * 64 else n = n * 64 + map[ch] end
		end
		local bytes = string.char(math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
		out[#out + 1] = bytes:sub(1, 3 - pad)
	end
	return table.concat(out)
end

describe("transport.curl #core", function()
	local em, admin

	local function control(method, path)
		local r, err = admin:request{ method = method, url = em.url .. path, headers = ADMIN }
		assert(r, tostring(err))
		assert.are.equal(200, r.status, r.body)
		return r.body
	end
	local function counter(body, name)
		return tonumber(body:match('"' .. name .. '":(%d+)'))
	end
	local function converse(t, text, extra)
		local req = { method = "POST", url = em.url .. "/model/" .. MODEL .. "/converse",
			headers = JSON, body = converse_body(text or "hello") }
		for k, v in pairs(extra or {}) do req[k] = v end
		return t:request(req)
	end
	local function stream_req(text, extra)
		local req = { method = "POST", url = em.url .. "/model/" .. MODEL .. "/converse-stream",
			headers = JSON, body = converse_body(text or "one two three four five six") }
		for k, v in pairs(extra or {}) do req[k] = v end
		return req
	end

	setup(function()
		em = helper.emulator({ "--no-auth" })
		admin = T.new{}
	end)
	teardown(function()
		if admin then admin:close() end
		if em then em.stop() end
	end)
	before_each(function()
		control("POST", "/_emulator/reset")
	end)

	describe("HTTP/1.1", function()
		it("sends a request and reads the whole response", function()
			local t = T.new{}
			local r, err = converse(t, "hello there")
			assert.is_nil(err)
			assert.are.equal(200, r.status)
			assert.are.equal("1.1", r.http_version)
			assert.are.equal("application/json", r.headers["content-type"])
			assert.truthy(r.body:find("You said: hello there", 1, true))
			assert.is_number(r.timing.total)
			assert.is_number(r.timing.first_byte)
			assert.is_true(r.timing.first_byte <= r.timing.total)
			local log = control("GET", "/_emulator/requests")
			assert.truthy(log:find('"http2":false', 1, true))
			t:close()
		end)

		it("holds a whole small answer to the body limits exactly, and says the same either way", function()
			local t = T.new{}
			local r = assert(converse(t, "limits"))
			local n = #r.body
			assert.is_true(n > 20)
			-- at the limit: taken; one byte under it: ResponseTooLarge, from the Content-Length
			r = assert(converse(t, "limits", { max_body = n }))
			assert.are.equal(n, #r.body)
			assert.is_number(r.timing.total)
			local _, err = converse(t, "limits", { max_body = n - 1 })
			local blocking = err
			assert.are.equal("ResponseTooLarge", err.code)
			assert.are.equal("max_body", err.option)
			assert.are.equal(n - 1, err.limit)
			assert.are.equal(200, err.status)
			assert.matches(n .. " bytes (Content-Length) is larger than max_body", err.message, 1, true)
			-- no limit at all, and the transport's own limit
			r = assert(converse(t, "limits", { max_body = false }))
			assert.are.equal(n, #r.body)
			local t2 = T.new{ max_body = 10 }
			_, err = converse(t2, "limits")
			assert.are.equal("max_body", err.option)
			assert.are.equal(10, err.limit)
			-- an error answer is held to max_error_body, not max_body
			local bad = { method = "POST", url = em.url .. "/model/" .. MODEL .. "/converse",
				headers = JSON, body = "{" }
			r = assert(t2:request(bad))
			assert.are.equal(400, r.status)
			bad.max_error_body = 5
			_, err = t:request(bad)
			assert.are.equal("ResponseTooLarge", err.code)
			assert.are.equal("max_error_body", err.option)
			assert.are.equal(400, err.status)
			-- the same limits inside a bedrock.async task (the transfer driven step by step)
			local async = require "bedrock.async"
			async.run(function()
				local r2 = assert(converse(t, "limits", { max_body = n }))
				assert.are.equal(n, #r2.body)
				local _, e2 = converse(t, "limits", { max_body = n - 1 })
				assert.are.equal("ResponseTooLarge", e2.code)
				assert.are.equal(blocking.message, e2.message)
				assert.are.equal(blocking.limit, e2.limit)
				assert.are.equal(blocking.status, e2.status)
			end)
			assert.are.equal(1, t:stats().connections)
			t:close()
			t2:close()
		end)

		it("sends headers in order with the names as given, and no curl defaults", function()
			local t = T.new{}
			-- a 4xx response is a response, not a transport error
			local r = assert(t:request{ method = "POST", url = em.url .. "/model/" .. MODEL .. "/converse",
				headers = { { "Content-Type", "application/json" }, { "X-Amz-Target", "x" } },
				body = "{" })
			assert.are.equal(400, r.status)
			assert.truthy(r.headers["x-amzn-errortype"] or r.body)
			t:close()
		end)

		it("reuses one connection for ten sequential requests (keep-alive)", function()
			local t = T.new{}
			for i = 1, 10 do
				local r, err = converse(t, "request " .. i)
				assert(r, tostring(err))
				assert.are.equal(200, r.status)
			end
			local st = t:stats()
			assert.are.equal(1, st.connections)
			assert.are.equal(10, st.requests)
			local body = control("GET", "/_emulator/requests")
			assert.are.equal(1, counter(body, "api_connections"))
			assert.are.equal(10, counter(body, "requests"))
			t:close()
		end)

		it("streams a large event stream into a decoder with a bounded buffer", function()
			local cap = 64 * 1024
			local t = T.new{ buffer_cap = cap }
			local dec = core.decoder()
			local words = string.rep("lorem ipsum dolor sit amet ", 20000) -- ~540 KB echoed
			local s, err = t:open(stream_req(words, { decoder = dec }))
			assert(s, tostring(err))
			assert.are.equal(200, s.status)
			assert.are.equal("application/vnd.amazon.eventstream", s.headers["content-type"])
			-- let the response pile up without reading: the transfer must pause at the cap
			for _ = 1, 20 do t:step(10) end
			assert.is_true(s:info().buffer_peak <= cap)
			local events, text, types = 0, {}, {}
			while true do
				local more, rerr = s:read()
				assert(more ~= nil, tostring(rerr))
				while true do
					local h, payload = dec:next()
					if not h then
						assert.is_nil(payload)
						break
					end
					events = events + 1
					types[h[":event-type"]] = true
					local delta = payload:match('"text":"([^"]*)"')
					if delta and h[":event-type"] == "contentBlockDelta" then text[#text + 1] = delta end
				end
				if not more then break end
			end
			assert.is_true(dec:finish())
			local info = s:info()
			assert.is_true(info.received > 10 * cap)
			assert.is_true(info.buffer_peak <= cap, "peak " .. info.buffer_peak)
			assert.is_true(dec:memory() <= 2 * cap + 4096)
			assert.is_true(events > 1000)
			assert.is_true(types.messageStart and types.messageStop and types.metadata)
			local got = table.concat(text)
			assert.are.equal(#("You said: " .. words), #got)
			assert.is_true(got == "You said: " .. words, "echoed text differs")
			s:close()
			t:close()
		end)

		it("does not count time paused on a full buffer as idle time", function()
			local t = T.new{ buffer_cap = 16 * 1024, timeouts = { idle = 200 } }
			local s = assert(t:open(stream_req(string.rep("slow reader ", 20000))))
			-- not reading: the buffer fills, the transfer pauses, and stays paused for
			-- 1 to 2 s, at least five times `idle`
			local stop = os.time() + 2
			while os.time() < stop do t:step(50) end
			local peak = s:info().buffer_peak
			assert.is_true(peak > 0 and peak <= 16 * 1024)
			local n = 0
			while true do
				local d, err = s:read()
				assert(d ~= nil or err == nil, tostring(err))
				if not d then break end
				n = n + #d
			end
			assert.are.equal(s:info().received, n)
			assert.is_true(n > 200000)
			s:close()
			t:close()
		end)

		it("hands a corrupt event stream (bad CRC) to the decoder, which reports it", function()
			control("POST", "/_emulator/faults?kind=crc&after=2")
			local t = T.new{}
			local dec = core.decoder()
			local s = assert(t:open(stream_req("a b c d e f g h", { decoder = dec })))
			local err
			for _ = 1, 100 do
				local more, e = s:read()
				local h, _, code = dec:next()
				while h do h, _, code = dec:next() end
				if code then err = code break end
				if more == nil then err = e break end
				if more == false then break end
			end
			assert.are.equal("MESSAGE_CRC", err)
			local _, _, again = dec:next()
			assert.are.equal("DECODER_FAILED", again)
			s:close()
			t:close()
		end)

		it("sends a large body and runs many requests at once", function()
			local t = T.new{}
			local big = string.rep("x", 3 * 1024 * 1024)
			local r, err = converse(t, big)
			assert(r, tostring(err))
			assert.are.equal(200, r.status)
			local ss = {}
			for i = 1, 8 do ss[i] = assert(t:open(stream_req("parallel " .. i))) end
			for i = 1, 8 do
				local parts = {}
				while true do
					local d, e = ss[i]:read()
					assert.is_nil(e)
					if not d then break end
					parts[#parts + 1] = d
				end
				assert.truthy(table.concat(parts):find("parallel", 1, true))
				ss[i]:close()
			end
			assert.is_true(t:stats().connections <= 9)
			t:close()
		end)

		it("ends open streams with a ConnectionError when the transport is closed", function()
			local t = T.new{}
			local s = assert(t:open(stream_req(string.rep("z ", 50000))))
			t:close()
			t:close()
			local d, err = s:read()
			assert.is_nil(d)
			assert.is_true(errors.is(err, "ConnectionError"), tostring(err))
			local r, err2 = converse(t, "after close")
			assert.is_nil(r)
			assert.is_true(errors.is(err2, "ConnectionError"))
			assert.are.equal(1, t:stats().connections)
			s:close()
		end)

		it("streams a request body with chunked encoding (body_stream)", function()
			-- the emulator answers HTTP/1.1 only after the whole body: open() must not wait
			local t = T.new{ timeouts = { total = 5000 } }
			local s = assert(t:open{ method = "POST", body_stream = true, headers = JSON,
				url = em.url .. "/model/" .. MODEL .. "/converse" })
			local body = converse_body("streamed upload")
			for i = 1, #body, 7 do assert(s:send(body:sub(i, i + 6))) end
			assert(s:close_input())
			assert(s:close_input()) -- idempotent
			local parts = {}
			while true do
				local d, err = s:read()
				assert.is_nil(err)
				if not d then break end
				parts[#parts + 1] = d
			end
			assert.are.equal(200, s.status)
			assert.truthy(table.concat(parts):find("You said: streamed upload", 1, true))
			assert.are.equal(#body, s:info().sent)
			s:close()
			t:close()
		end)

		it("streams raw bytes with s:read() and ends with nil", function()
			local t = T.new{ buffer_cap = 16 * 1024 }
			local s = assert(t:open(stream_req(string.rep("abc ", 30000))))
			local n = 0
			while true do
				local d, err = s:read()
				if d == nil then
					assert.is_nil(err)
					break
				end
				assert.is_true(#d > 0)
				n = n + #d
			end
			assert.are.equal(s:info().received, n)
			assert.is_true(s:info().buffer_peak <= 16 * 1024)
			-- reading after the end stays at the end
			assert.is_nil(s:read())
			s:close()
			s:close()
			t:close()
		end)
	end)

	describe("HTTP/2", function()
		it("speaks h2c with prior knowledge", function()
			local t = T.new{ http2 = true }
			for i = 1, 3 do
				local r, err = converse(t, "h2 " .. i)
				assert(r, tostring(err))
				assert.are.equal(200, r.status)
				assert.are.equal("2", r.http_version)
				assert.truthy(r.body:find("You said: h2 " .. i, 1, true))
			end
			local body = control("GET", "/_emulator/requests")
			assert.is_true(counter(body, "h2_connections") >= 1)
			assert.truthy(body:find('"http2":true', 1, true))
			t:close()
		end)

		it("can be chosen per call", function()
			local t = T.new{}
			assert.are.equal("2", assert(converse(t, "x", { http2 = true })).http_version)
			assert.are.equal("1.1", assert(converse(t, "x")).http_version)
			t:close()
		end)

		it("runs several streams at once", function()
			local t = T.new{ http2 = true }
			local ss = {}
			for i = 1, 4 do
				ss[i] = assert(t:open(stream_req(string.rep("w" .. i .. " ", 5000))))
			end
			local got, open = { 0, 0, 0, 0 }, 4
			while open > 0 do
				for i = 1, 4 do
					if ss[i].x then
						local d, err = ss[i]:read()
						assert.is_nil(err)
						if d then got[i] = got[i] + #d else ss[i]:close(); open = open - 1 end
					end
				end
			end
			for i = 1, 4 do assert.is_true(got[i] > 5000) end
			t:close()
		end)
	end)

	describe("TLS", function()
		local tls, pki, dir
		setup(function()
			dir = tmpdir()
			pki = make_pki(dir)
			tls = helper.emulator({ "--no-auth", "--tls", pki.cert, pki.key })
		end)
		teardown(function()
			if tls then tls.stop() end
			if dir then os.execute("rm -rf " .. helper.shell_quote(dir)) end
		end)
		local function turl(host)
			return "https://" .. (host or "127.0.0.1") .. ":" .. tls.port .. "/model/" .. MODEL .. "/converse"
		end

		it("verifies the server with the test CA (HTTP/1.1 and h2 via ALPN)", function()
			local t = T.new{ cainfo = pki.ca }
			local r = assert(t:request{ method = "POST", url = turl(), headers = JSON, body = converse_body("tls") })
			assert.are.equal(200, r.status)
			assert.are.equal("1.1", r.http_version)
			local t2 = T.new{ cainfo = pki.ca, http2 = true }
			for _ = 1, 5 do
				r = assert(t2:request{ method = "POST", url = turl("localhost"), headers = JSON,
					body = converse_body("tls h2") })
				assert.are.equal(200, r.status)
				assert.are.equal("2", r.http_version)
			end
			-- h2 over TLS keeps one connection, and runs concurrent streams on it
			local ss = {}
			for i = 1, 3 do
				ss[i] = assert(t2:open{ method = "POST", headers = JSON, body = converse_body(string.rep("m ", 3000)),
					url = "https://localhost:" .. tls.port .. "/model/" .. MODEL .. "/converse-stream" })
			end
			for i = 1, 3 do
				while true do
					local d, err = ss[i]:read()
					assert.is_nil(err)
					if not d then break end
				end
				ss[i]:close()
			end
			assert.are.equal(1, t2:stats().connections)
			assert.are.equal(8, t2:stats().requests)
			t:close()
			t2:close()
		end)

		it("fails with a ConnectionError naming the certificate problem without the CA", function()
			local t = T.new{ capath = dir } -- a directory without hashed CA links: trusts nothing
			local r, err = t:request{ method = "POST", url = turl(), headers = JSON, body = converse_body("x") }
			assert.is_nil(r)
			assert.is_true(errors.is(err, "ConnectionError"))
			assert.truthy(err.message:lower():find("certificate", 1, true), err.message)
			assert.is_false(err.retryable)
			local t2 = T.new{}
			r, err = t2:request{ method = "POST", url = turl(), headers = JSON, body = converse_body("x") }
			assert.is_nil(r)
			assert.is_true(errors.is(err, "ConnectionError"))
			-- verification can be turned off explicitly
			local t3 = T.new{ verify = false }
			assert.are.equal(200, assert(t3:request{ method = "POST", url = turl(), headers = JSON,
				body = converse_body("x") }).status)
			t:close()
			t2:close()
			t3:close()
		end)

		it("refuses a certificate for another host name from a trusted CA, by default and with the CA", function()
			local other = make_other_cert(dir, "not-this-host.example")
			local wrong = helper.emulator({ "--no-auth", "--tls", other.cert, other.key })
			local url = "https://localhost:" .. wrong.port .. "/model/" .. MODEL .. "/converse"
			local ok, failure = pcall(function()
				for _, o in ipairs({ {}, { cainfo = pki.ca }, { cainfo = pki.ca, http2 = true } }) do
					local t = T.new(o)
					local r, err = t:request{ method = "POST", url = url, headers = JSON, body = converse_body("x") }
					t:close()
					assert.is_nil(r)
					assert.is_true(errors.is(err, "ConnectionError"))
					assert.is_false(err.retryable)
					if o.cainfo then
						-- the chain is trusted: what is refused is the name
						local m = err.message:lower()
						assert.truthy(m:find("name", 1, true) or m:find("subject", 1, true), err.message)
					end
				end
				-- the refusal is verification's: the server answers a client that skips it
				local nv = T.new{ verify = false }
				assert.are.equal(200, assert(nv:request{ method = "POST", url = url, headers = JSON,
					body = converse_body("x") }).status)
				nv:close()
				-- the same trust store accepts the sibling server whose certificate names localhost
				local t = T.new{ cainfo = pki.ca }
				assert.are.equal(200, assert(t:request{ method = "POST", url = turl("localhost"), headers = JSON,
					body = converse_body("x") }).status)
				t:close()
			end)
			wrong.stop()
			assert(ok, failure)
		end)

		it("runs the bidirectional operation over h2 with TLS", function()
			local t = T.new{ cainfo = pki.ca, http2 = true, timeouts = { total = 10000 } }
			local dec = core.decoder()
			local s = assert(t:open{ method = "POST", body_stream = true, decoder = dec,
				url = "https://localhost:" .. tls.port .. "/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream",
				headers = { { "content-type", "application/vnd.amazon.eventstream" } } })
			assert(s:send(event('{"event":{"textInput":{"content":"over tls"}}}')))
			local h, payload = next_event(s, dec)
			assert(h, "no answer")
			assert.are.equal("2", s.http_version) -- filled in by the first read
			assert.truthy(decode_chunk(payload):find("over tls", 1, true))
			assert(s:send(frame("")))
			assert(s:close_input())
			while next_event(s, dec) do end
			s:close()
			t:close()
		end)
	end)

	describe("timeouts and failures", function()
		it("reports a refused connection as a ConnectionError", function()
			local t = T.new{}
			-- the emulator's port right after it stopped is closed
			local gone = helper.emulator({ "--no-auth" })
			local url = gone.url .. "/model/" .. MODEL .. "/converse"
			gone.stop()
			local r, err = t:request{ method = "POST", url = url, headers = JSON, body = "{}" }
			assert.is_nil(r)
			assert.is_true(errors.is(err, "ConnectionError"))
			assert.truthy(err.message:find("onnect", 1, true), err.message)
			assert.is_true(err.retryable)
			t:close()
		end)

		it("times out the connect phase (a TLS peer that never answers)", function()
			-- perl listens and never accepts: TCP completes in the kernel, TLS never does
			local dir = tmpdir()
			local f = assert(io.open(dir .. "/blackhole.pl", "w"))
			f:write('use IO::Socket::INET; $| = 1;\n',
				'my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0") or die "listen: $!";\n',
				'print $s->sockport, "\\n"; sleep 30;\n')
			f:close()
			local p = assert(io.popen("echo $$; exec env -u LD_PRELOAD perl " ..
				helper.shell_quote(dir .. "/blackhole.pl"), "r"))
			local pid = tonumber(p:read("*l"))
			local port = p:read("*l")
			assert(pid and tonumber(port), "perl listener did not start")
			local t = T.new{ timeouts = { connect = 300 } }
			local t0 = os.time()
			local r, err = t:request{ url = "https://127.0.0.1:" .. port .. "/" }
			assert.is_nil(r)
			assert.is_true(errors.is(err, "Timeout"), tostring(err))
			assert.are.equal("connect", err.which)
			assert.is_true(os.time() - t0 < 5)
			t:close()
			os.execute("kill " .. pid .. " 2>/dev/null")
			p:close()
			os.execute("rm -rf " .. helper.shell_quote(dir))
		end)

		it("times out waiting for the first byte (emulator stall)", function()
			control("POST", "/_emulator/faults?kind=stall&ms=1500")
			local t = T.new{ timeouts = { first_byte = 300 } }
			local r, err = converse(t, "stall")
			assert.is_nil(r)
			assert.is_true(errors.is(err, "Timeout"), tostring(err))
			assert.are.equal("first_byte", err.which)
			assert.is_true(err.retryable)
			-- the transport stays usable
			assert.are.equal(200, assert(converse(t, "after")).status)
			t:close()
		end)

		it("times out an idle stream (stall mid-stream) and keeps the bytes that came", function()
			control("POST", "/_emulator/faults?kind=stream-stall&after=2&ms=2000")
			local t = T.new{ timeouts = { idle = 300 } }
			local dec = core.decoder()
			local s = assert(t:open(stream_req("a b c d e f g h i j", { decoder = dec })))
			local events, err = 0
			while true do
				local more, e = s:read()
				while dec:next() do events = events + 1 end
				if more == nil then err = e break end
				assert.is_true(more)
			end
			assert.is_true(errors.is(err, "Timeout"), tostring(err))
			assert.are.equal("idle", err.which)
			assert.are.equal(2, events)
			s:close()
			t:close()
		end)

		it("times out the whole transfer (total)", function()
			control("POST", "/_emulator/faults?kind=stream-stall&after=1&ms=2000")
			local t = T.new{ timeouts = { total = 500 } }
			local r, err = t:request(stream_req("x y z"))
			assert.is_nil(r)
			assert.is_true(errors.is(err, "Timeout"), tostring(err))
			assert.are.equal("total", err.which)
			-- a per-call override wins over the transport's default
			control("POST", "/_emulator/faults?kind=stall&ms=600")
			r, err = converse(t, "slow", { timeouts = { total = 3000 } })
			assert(r, tostring(err))
			t:close()
		end)

		it("reports a connection reset mid-stream as a ConnectionError", function()
			for _, h2 in ipairs({ false, true }) do
				control("POST", "/_emulator/faults?kind=reset&after=2")
				local t = T.new{ http2 = h2 }
				local dec = core.decoder()
				-- over h2 the RST_STREAM can come in the same read as the headers, and
				-- then the failure is reported by open() itself
				local s, err = t:open(stream_req("a b c d e f g h i j", { decoder = dec }))
				while s do
					local more, e = s:read()
					while dec:next() do end
					if more == nil then err = e break end
					assert.is_true(more, "stream ended cleanly despite the reset")
				end
				assert.is_true(errors.is(err, "ConnectionError"), tostring(err))
				assert.is_number(err.curl_code)
				if s then s:close() end
				t:close()
			end
		end)
	end)

	describe("bidirectional stream over HTTP/2", function()
		it("sends input while reading output (full duplex), then ends the input", function()
			local t = T.new{ http2 = true, timeouts = { total = 10000 } }
			local dec = core.decoder()
			local s, err = t:open{ method = "POST", body_stream = true, decoder = dec,
				url = em.url .. "/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream",
				headers = { { "content-type", "application/vnd.amazon.eventstream" } } }
			assert(s, tostring(err))
			assert.is_nil(s.status) -- body_stream: open() returns before the headers
			assert.are.equal(200, (s:response()))
			assert.are.equal(200, s.status)
			assert.are.equal("2", s.http_version)
			for i = 1, 3 do
				assert(s:send(event('{"event":{"textInput":{"content":"ping ' .. i .. '"}}}')))
				-- the answer to input i arrives before input i+1 is written
				local h, payload = next_event(s, dec)
				assert(h, "stream ended early")
				assert.are.equal("chunk", h[":event-type"])
				local inner = decode_chunk(payload)
				assert.truthy(inner:find("ping " .. i, 1, true), inner)
			end
			assert(s:send(frame("")))
			assert(s:close_input())
			local rest = {}
			while true do
				local h, payload = next_event(s, dec)
				if not h then break end
				rest[#rest + 1] = decode_chunk(payload)
			end
			assert.truthy(table.concat(rest):find("completionEnd", 1, true))
			assert.is_true(s:info().sent > 0)
			-- no more input once closed
			local ok, e2 = s:send("x")
			assert.is_nil(ok)
			assert.is_true(errors.is(e2))
			s:close()
			t:close()
		end)
	end)

	describe("a response that ends while the streamed input is still open", function()
		-- The server answers before it has read the whole request body (an error,
		-- typically): the transfer must end with the response, although s:close_input()
		-- was never called; curl alone would wait for the rest of the body.
		local function read_all(s)
			local parts = {}
			while true do
				local d, err = s:read()
				assert(err == nil, tostring(err))
				if not d then break end
				parts[#parts + 1] = d
			end
			return table.concat(parts)
		end

		it("completes over HTTP/2 (an error answer to a bidirectional stream)", function()
			local t = T.new{ http2 = true, timeouts = { total = 3000 } }
			local s = assert(t:open{ method = "POST", body_stream = true,
				url = em.url .. "/model/no.such-model/invoke-with-bidirectional-stream",
				headers = { { "content-type", "application/vnd.amazon.eventstream" } } })
			assert(s:send(event('{"event":{"textInput":{"content":"hello"}}}')))
			assert.are.equal(400, (s:response()))
			assert.truthy(read_all(s):find("model identifier is invalid", 1, true))
			assert.is_nil(s:read()) -- still the clean end
			-- the input was ended for us: more input is refused, closing it is harmless
			local ok, err = s:send("late")
			assert.is_nil(ok)
			assert.is_true(errors.is(err, "ConnectionError"))
			assert(s:close_input())
			s:close()
			-- and the connection is still usable
			local r = assert(converse(t, "after the early answer"))
			assert.are.equal(200, r.status)
			t:close()
		end)

		it("completes over HTTP/1.1 (a server answering before the body), 2xx and 4xx", function()
			-- perl answers each request as soon as its head arrived, then reads the rest
			-- of the chunked body up to its last chunk, and serves the next request
			local dir = tmpdir()
			local f = assert(io.open(dir .. "/early.pl", "w"))
			f:write([[
use IO::Socket::INET; $| = 1;
my $s = IO::Socket::INET->new(Listen => 5, LocalAddr => "127.0.0.1:0", ReuseAddr => 1) or die "listen: $!";
print $s->sockport, "\n";
while (my $c = $s->accept) {
	my $buf = "";
	while (1) {
		while ($buf !~ /\r\n\r\n/) { sysread($c, $buf, 4096, length $buf) or last; }
		last unless $buf =~ s/^(.*?\r\n\r\n)//s;
		my ($status) = $1 =~ m{^\w+ /(\d+)};
		my $body = "early " . ($status ||= 200);
		syswrite($c, "HTTP/1.1 $status Early\r\nContent-Length: " . length($body) . "\r\n\r\n$body");
		while ($buf !~ /(^|\r\n)0\r\n\r\n/) { sysread($c, $buf, 4096, length $buf) or last; }
		$buf =~ s/^.*?(^|\r\n)0\r\n\r\n//s;
	}
	close $c;
}
]])
			f:close()
			local p = assert(io.popen("echo $$; exec env -u LD_PRELOAD perl " ..
				helper.shell_quote(dir .. "/early.pl"), "r"))
			local pid = tonumber(p:read("*l"))
			local port = p:read("*l")
			assert(pid and tonumber(port), "perl server did not start")
			local ok, perr = pcall(function()
				local t = T.new{ timeouts = { total = 3000 } }
				for _, status in ipairs{ 200, 403, 200 } do
					local s = assert(t:open{ method = "POST", body_stream = true,
						url = "http://127.0.0.1:" .. port .. "/" .. status })
					assert(s:send("the first part of a body that is never finished"))
					assert.are.equal(status, (s:response()))
					assert.are.equal("early " .. status, read_all(s))
					assert.is_nil(s:send("late"))
					s:close()
				end
				t:close()
			end)
			os.execute("kill " .. pid .. " 2>/dev/null")
			p:close()
			os.execute("rm -rf " .. helper.shell_quote(dir))
			assert(ok, perr)
		end)
	end)

	describe("coroutines", function()
		it("lets a scheduler run several requests through the wait hook", function()
			local waits = 0
			local t
			t = T.new{ wait = function(tr, ms)
				assert.are.equal(t, tr)
				assert.is_number(ms)
				waits = waits + 1
				coroutine.yield()
			end }
			control("POST", "/_emulator/pacing?ms=20")
			local results = {}
			local tasks = {}
			for i = 1, 3 do
				tasks[i] = coroutine.create(function()
					local dec = core.decoder()
					local s = assert(t:open(stream_req("co " .. i .. " a b c d e f g h i j k l m n o p",
						{ decoder = dec })))
					local n = 0
					while true do
						local more, err = s:read()
						assert(more ~= nil, tostring(err))
						while dec:next() do n = n + 1 end
						if not more then break end
					end
					s:close()
					results[i] = n
				end)
			end
			local live = #tasks
			while live > 0 do
				live = 0
				for i = 1, #tasks do
					if coroutine.status(tasks[i]) ~= "dead" then
						local ok, e = coroutine.resume(tasks[i])
						assert(ok, tostring(e))
						if coroutine.status(tasks[i]) ~= "dead" then live = live + 1 end
					end
				end
				if live > 0 then t:step(50) end
			end
			for i = 1, 3 do assert.is_true(results[i] > 3) end
			assert.is_true(waits > 0)
			t:close()
		end)
	end)

	describe("bad input", function()
		local t
		before_each(function() t = T.new{} end)
		after_each(function() t:close() end)

		local function refused(req, field)
			local r, err = t:request(req)
			assert.is_nil(r)
			assert.is_true(errors.is(err, "ValidationError"), tostring(err))
			if field then assert.are.equal(field, err.field) end
			return err
		end

		it("is refused before any traffic, naming the field, and loses nothing", function()
			refused(nil, "request")
			refused({ url = "ftp://x/" }, "url")
			refused({ url = 42 }, "url")
			refused({ url = em.url .. "/ x" }, "url")
			refused({ url = em.url, method = "GE T" }, "method")
			refused({ url = em.url, body = 5 }, "body")
			refused({ url = em.url, body = "x", body_stream = true }, "body")
			refused({ url = em.url, headers = "x" }, "headers")
			refused({ url = em.url, headers = { { "bad name", "v" } } }, "headers[1]")
			refused({ url = em.url, headers = { { "x", "a\r\nb" } } }, "headers[1]")
			refused({ url = em.url, headers = { { "x", {} } } }, "headers[1]")
			refused({ url = em.url, headers = { x = "y" } }, "headers")
			refused({ url = em.url, timeouts = { conect = 5 } }, "timeouts.conect")
			refused({ url = em.url, timeouts = { total = -1 } }, "timeouts.total")
			refused({ url = em.url, http2 = "yes" }, "http2")
			local _, err = t:open{ url = em.url, decoder = "x" }
			assert.are.equal("decoder", err.field)
			local body = control("GET", "/_emulator/requests")
			assert.are.equal(0, counter(body, "requests"))
			-- the transport still works afterwards
			assert.are.equal(200, assert(converse(t, "still fine")).status)
		end)

		it("raises a ConfigError for bad transport options", function()
			local ok, err = pcall(T.new, { timeouts = { idle = "soon" } })
			assert.is_false(ok)
			assert.is_true(errors.is(err, "ConfigError"))
			ok, err = pcall(T.new, { http2 = 1 })
			assert.is_false(ok)
			assert.are.equal("http2", err.field)
		end)

		it("refuses send on a stream without body_stream", function()
			local s = assert(t:open(stream_req("x")))
			local ok, err = s:send("x")
			assert.is_nil(ok)
			assert.are.equal("body_stream", err.field)
			s:close()
			ok, err = s:read()
			assert.is_nil(ok)
			assert.is_true(errors.is(err, "ConnectionError"))
		end)
	end)

	describe("core.http_multi", function()
		it("closes idempotently, also with live transfers", function()
			local m = core.http_multi()
			local x = assert(m:request{ url = em.url .. "/_emulator/health", headers = ADMIN })
			m:step(0)
			x:close()
			x:close()
			assert.are.equal("closed", x:state())
			local y = assert(m:request{ url = em.url .. "/_emulator/health", headers = ADMIN })
			m:close()
			m:close()
			assert.are.equal("closed", y:state())
			local d, msg, code = y:read()
			assert.is_nil(d)
			assert.are.equal("HTTP_STATE", code, msg)
			assert.has_error(function() m:step(0) end)
		end)

		it("hands out headers, status and body as they arrive", function()
			local m = core.http_multi()
			local x = assert(m:request{ url = em.url .. "/_emulator/health", headers = ADMIN,
				http_version = "1.1", timeouts = { total = 5000 } })
			assert.are.equal("pending", x:state())
			assert.is_nil(x:headers())
			local chunks = {}
			while true do
				local d, msg = x:read()
				if d == nil then assert.is_nil(msg) break end
				if d == "" then m:step(100) else chunks[#chunks + 1] = d end
			end
			assert.are.equal("done", x:state())
			assert.are.equal(200, x:status())
			local h, v = x:headers()
			assert.are.equal("application/json", h["content-type"])
			assert.are.equal("1.1", v)
			assert.are.equal('{"ok":true}', table.concat(chunks))
			assert.are.equal(1, m:stats().transfers)
			x:close()
			m:close()
		end)

		it("survives garbage collection in any order", function()
			for _ = 1, 3 do
				local m = core.http_multi()
				for _ = 1, 5 do
					m:request{ url = em.url .. "/_emulator/health", headers = ADMIN }
				end
				m:step(10)
				-- a transfer alone keeps its multi alive: still readable after a full GC
				local x = m:request{ url = em.url .. "/_emulator/health", headers = ADMIN }
				m = nil -- luacheck: ignore
				collectgarbage()
				collectgarbage()
				assert.truthy(x:state())
				assert.are.equal("", x:read() or "")
				x = nil -- luacheck: ignore
				collectgarbage()
			end
		end)

		it("raises on misuse of the binding", function()
			local m = core.http_multi()
			assert.has_error(function() m:request("x") end)
			assert.has_error(function() m:request{} end)
			assert.has_error(function() m:request{ url = em.url, http_version = 3 } end)
			assert.has_error(function() m:request{ url = em.url, headers = { { "a", 1 } } } end)
			local x = assert(m:request{ url = em.url .. "/_emulator/health", headers = ADMIN })
			assert.has_error(function() x:read_into("not a decoder") end)
			local d, msg, code = m:request{ url = "gopher://x" }
			assert.is_nil(d)
			assert.are.equal("INVAL", code, msg)
			d, msg, code = m:request{ url = em.url, headers = { { "a:b", "1" } } }
			assert.is_nil(d)
			assert.are.equal("BAD_HEADER", code, msg)
			x:close()
			m:close()
		end)
	end)
end)
