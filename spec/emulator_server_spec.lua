-- The server half of bedrock-emulator: startup, HTTP/1.1, h2c, TLS with ALPN,
-- authentication (SigV4, session tokens, bearer), the control channel, every fault kind,
-- pacing, the bidirectional stream, and the credential endpoints. Driven over real
-- sockets with the curl CLI; signed requests, credential providers and the
-- bidirectional client use python3 + botocore (spec/emulator_*.py) and are pending with
-- a message when botocore is missing. Streams are split into frames here in plain Lua so
-- these specs do not depend on the C core.
local helper = require "spec.helper"

local MODEL = "amazon.titan-text-express-v1%3A0"
local STREAM_PATH = "/model/" .. MODEL .. "/converse-stream"
local CONVERSE_PATH = "/model/" .. MODEL .. "/converse"
local STREAM_BODY = '{"messages":[{"role":"user","content":[{"text":"one two three four five"}]}]}'
local AKID, SECRET = "AKIDSERVERSPEC", "serverSpecSecretKey0123456789abcdefghijkl"
local TOKEN_AKID, TOKEN_SECRET, SESSION = "AKIDWITHTOKEN", "tokenSecret", "session-token-123"
local BEARER = "bedrock-api-key-spec"

local em, tmp, asan_dir
local N_EVENTS -- events in the STREAM_BODY answer, measured once without faults
local is_asan = helper.emulator_bin:find("asan", 1, true) ~= nil

-- Runs a shell command; returns its standard output and exit code. Under `make asan`
-- the interpreter runs with the sanitizer runtime preloaded; curl and python must not
-- inherit that (curl deadlocks in its resolver thread), so it is dropped here.
local function run(cmd)
	local p = assert(io.popen("(unset LD_PRELOAD; " .. cmd .. ') 2>/dev/null; echo "__rc=$?"'))
	local out = p:read("*a")
	p:close()
	local rc = tonumber(out:match("__rc=(%d+)%s*$"))
	return (out:gsub("__rc=%d+%s*$", "")), rc
end

local has_python = select(2, run('python3 -c "import botocore, boto3"')) == 0
local has_openssl = select(2, run("openssl version")) == 0
local pit = has_python and it or function(name)
	pending(name .. " (needs python3 with botocore and boto3)")
end

local function write(path, data)
	local f = assert(io.open(path, "wb"))
	f:write(data)
	f:close()
end

-- One exchange through curl. opts: method, body, headers (list of "Name: value"),
-- h2, auth (false: no Authorization; default a valid bearer token), timeout, base,
-- extra (list of curl arguments). Returns { status, version, time, body, headers, rc }.
local function curl(path, opts)
	opts = opts or {}
	local q = helper.shell_quote
	local args = { "curl", "-s", "-m", tostring(opts.timeout or 10), "-D", q(tmp .. "/hdr"),
		"-o", q(tmp .. "/out"), "-w", q("%{http_code} %{http_version} %{time_total}") }
	if opts.h2 then args[#args + 1] = "--http2-prior-knowledge" end
	if opts.method then args[#args + 1] = "-X " .. opts.method end
	if opts.body then
		write(tmp .. "/body", opts.body)
		args[#args + 1] = "--data-binary @" .. q(tmp .. "/body")
		args[#args + 1] = "-H 'Content-Type: application/json'"
	end
	if opts.auth ~= false then args[#args + 1] = "-H " .. q("Authorization: Bearer " .. (opts.bearer or BEARER)) end
	for _, h in ipairs(opts.headers or {}) do args[#args + 1] = "-H " .. q(h) end
	for _, a in ipairs(opts.extra or {}) do args[#args + 1] = a end
	args[#args + 1] = q((opts.base or em.url) .. path)
	write(tmp .. "/hdr", "")
	write(tmp .. "/out", "")
	local out, rc = run(table.concat(args, " "))
	local status, version, time = out:match("(%d+) (%S+) (%S+)")
	local r = { status = tonumber(status), version = version, time = tonumber(time), rc = rc,
		body = helper.read(tmp .. "/out"), headers = {} }
	for line in helper.read(tmp .. "/hdr"):gmatch("[^\r\n]+") do
		local k, v = line:match("^([^:]+):%s*(.*)$")
		if k then r.headers[k:lower()] = v end
	end
	return r
end

local function admin(method, path, base, extra)
	return curl("/_emulator/" .. path, { method = method, auth = false, base = base, extra = extra,
		headers = { "x-emulator-admin: 1" } })
end

local function fault(query)
	local r = admin("POST", "faults?" .. query)
	assert.are.equal(200, r.status, r.body)
end

local function stats(base, extra)
	local body = admin("GET", "requests", base, extra).body
	return { connections = tonumber(body:match('"connections":(%d+)')),
		api_connections = tonumber(body:match('"api_connections":(%d+)')),
		requests = tonumber(body:match('"requests":(%d+)')), body = body }
end

-- Splits an event stream into frames: raw bytes, string headers, payload; `partial` is
-- the number of trailing bytes that do not form a whole frame.
local function u32(s, i)
	local a, b, c, d = s:byte(i, i + 3)
	return ((a * 256 + b) * 256 + c) * 256 + d
end

local function frames(s)
	local out, i = { partial = 0 }, 1
	while i + 11 <= #s do
		local total, hlen = u32(s, i), u32(s, i + 4)
		if i + total - 1 > #s then break end
		local raw = s:sub(i, i + total - 1)
		local headers, j = {}, 13
		while j < 13 + hlen do
			local nl = raw:byte(j)
			local name, t = raw:sub(j + 1, j + nl), raw:byte(j + nl + 1)
			j = j + nl + 2
			if t == 6 or t == 7 then
				local vl = raw:byte(j) * 256 + raw:byte(j + 1)
				headers[name] = raw:sub(j + 2, j + 1 + vl)
				j = j + 2 + vl
			else
				j = j + (({ [2] = 1, [3] = 2, [4] = 4, [5] = 8, [8] = 8, [9] = 16 })[t] or 0)
			end
		end
		out[#out + 1] = { raw = raw, headers = headers, payload = raw:sub(13 + hlen, total - 4) }
		i = i + total
	end
	out.partial = #s - i + 1
	return out
end

-- helper.emulator, with sanitizer reports (ASan build) written where teardown looks.
local function start(args, env)
	env = env or {}
	if is_asan then env.ASAN_OPTIONS = "detect_leaks=1:log_path=" .. asan_dir .. "/report" end
	return helper.emulator(args, env)
end

local function python(script, args)
	return run("python3 spec/" .. script .. " " .. args)
end

setup(function()
	assert(helper.exists(helper.emulator_bin), "build the emulator first: make emulator")
	tmp = run("mktemp -d"):gsub("%s+$", "")
	asan_dir = tmp .. "/asan"
	run("mkdir -p " .. asan_dir)
	em = start({ "--key", AKID .. ":" .. SECRET,
		"--key", TOKEN_AKID .. ":" .. TOKEN_SECRET .. ":" .. SESSION, "--bearer", BEARER,
		"--container-token", "container-secret", "--sso-token", "sso-secret" },
		{ AWS_ACCESS_KEY_ID = "", AWS_BEARER_TOKEN_BEDROCK = "" })
end)

teardown(function()
	if em then em.stop() end
	local reports = run("cat " .. asan_dir .. "/report* 2>/dev/null")
	run("rm -rf " .. helper.shell_quote(tmp))
	assert.are.equal("", reports, "sanitizer reports from the emulator")
end)

before_each(function()
	admin("POST", "reset")
	if not N_EVENTS then
		N_EVENTS = #frames(curl(STREAM_PATH, { body = STREAM_BODY }).body)
		assert.is_true(N_EVENTS >= 6, "a converse stream of at least 6 events")
	end
end)

describe("bedrock-emulator startup", function()
	it("prints the port alone on the first line, so several start in parallel", function()
		assert.is_true(em.port > 0)
		local a = start({ "--no-auth" })
		local b = start({ "--no-auth" })
		assert.are_not.equal(a.port, b.port)
		assert.are.equal(200, admin("GET", "health", a.url).status)
		assert.are.equal(200, admin("GET", "health", b.url).status)
		a.stop()
		b.stop()
	end)

	it("exits with status 0 on SIGTERM and on SIGINT", function()
		for _, sig in ipairs({ "TERM", "INT" }) do
			local out = run("sh -c " .. helper.shell_quote(helper.shell_quote(helper.emulator_bin) ..
				" --port 0 --no-auth >/dev/null & pid=$!; sleep 0.3; kill -" .. sig ..
				" $pid; wait $pid; echo rc=$?"))
			assert.matches("rc=0", out)
		end
	end)

	it("--async-ms sets how long an async job runs; it beats BEDROCK_EMULATOR_ASYNC_MS", function()
		local function enc(arn) return (arn:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end)) end
		local function job(base)
			local r = curl("/async-invoke", { base = base, auth = false, body =
				'{"modelId":"amazon.nova-reel-v1:0","modelInput":{"taskType":"TEXT_VIDEO"},' ..
				'"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://bucket/out"}}}' })
			assert.are.equal(200, r.status, r.body)
			return assert(r.body:match('"invocationArn":"([^"]+)"'))
		end
		local function status(base, arn)
			local r = curl("/async-invoke/" .. enc(arn), { base = base, auth = false })
			assert.are.equal(200, r.status, r.body)
			return r.body:match('"status":"(%a+)"'), r.body
		end
		local e = start({ "--no-auth", "--async-ms", "400" }, { BEDROCK_EMULATOR_ASYNC_MS = "60000" })
		local z = start({ "--no-auth", "--async-ms", "0" }, { BEDROCK_EMULATOR_ASYNC_MS = "60000" })
		local v = start({ "--no-auth" }, { BEDROCK_EMULATOR_ASYNC_MS = "0" })
		local ok, err = pcall(function()
			local arn = job(e.url)
			assert.are.equal("InProgress", (status(e.url, arn)))
			run("sleep 0.5")
			local st, body = status(e.url, arn)
			assert.are.equal("Completed", st)
			assert.matches('"endTime":"', body, 1, true)
			assert.are.equal("Completed", (status(z.url, job(z.url))))
			-- without the flag, the environment variable still sets it
			assert.are.equal("Completed", (status(v.url, job(v.url))))
		end)
		e.stop()
		z.stop()
		v.stop()
		assert(ok, err)
		for _, bad in ipairs({ "-1", "soon", "" }) do
			local _, rc = run(helper.shell_quote(helper.emulator_bin) .. " --port 0 --async-ms " .. helper.shell_quote(bad))
			assert.are_not.equal(0, rc)
		end
	end)

	it("refuses unknown options", function()
		local _, rc = run(helper.shell_quote(helper.emulator_bin) .. " --bogus")
		assert.are_not.equal(0, rc)
	end)
end)

describe("bedrock-emulator HTTP", function()
	it("serves HTTP/1.1 with keep-alive: two requests, one connection", function()
		local q = helper.shell_quote
		local url = q(em.url .. CONVERSE_PATH)
		write(tmp .. "/body", STREAM_BODY)
		local out = run("curl -s -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\\n'" ..
			" -H 'Content-Type: application/json' -H " ..
			q("Authorization: Bearer " .. BEARER) .. " --data-binary @" .. q(tmp .. "/body") .. " " .. url .. " " .. url)
		assert.matches("200 1\n200 0", out)
		local s = stats()
		assert.are.equal(2, s.requests)
		assert.are.equal(1, s.api_connections)
	end)

	it("serves HTTP/2 cleartext with prior knowledge on the same port", function()
		local r = curl(CONVERSE_PATH, { h2 = true, body = STREAM_BODY })
		assert.are.equal(200, r.status)
		assert.are.equal("2", r.version)
		assert.matches('"text":"You said: one two three four five"', r.body, 1, true)
	end)

	it("reads chunked request bodies and answers Expect: 100-continue", function()
		local r = curl(CONVERSE_PATH, { body = STREAM_BODY,
			headers = { "Transfer-Encoding: chunked", "Expect: 100-continue" } })
		assert.are.equal(200, r.status)
		assert.matches("You said: one two", r.body, 1, true)
	end)

	it("streams events with chunked transfer on HTTP/1.1 and as DATA on HTTP/2", function()
		for _, h2 in ipairs({ false, true }) do
			local r = curl(STREAM_PATH, { body = STREAM_BODY, h2 = h2 })
			assert.are.equal(200, r.status)
			if not h2 then assert.are.equal("chunked", r.headers["transfer-encoding"]) end
			assert.are.equal("application/vnd.amazon.eventstream", r.headers["content-type"])
			local f = frames(r.body)
			assert.are.equal(N_EVENTS, #f)
			assert.are.equal(0, f.partial)
			assert.are.equal("messageStart", f[1].headers[":event-type"])
		end
	end)

	it("sends a long stream as it encodes it: first events at once, memory bounded", function()
		-- 2,000,004 events, 386 MB. Encoded whole before the first byte, the first events
		-- would come after nearly all of the time the whole stream takes (and the emulator
		-- would hold all of it, over 1 GB); pulled as the connection drains, they come
		-- after a small part of it and the emulator's peak RSS stays far below.
		local q = helper.shell_quote
		write(tmp .. "/long", '{"messages":[{"role":"user","content":[{"text":"__stream_words 2000000"}]}]}')
		local sizes = {}
		for _, h2 in ipairs({ false, true }) do
			local cmd = "curl -s" .. (h2 and " --http2-prior-knowledge" or "") ..
				" -H 'Content-Type: application/json' -H " .. q("Authorization: Bearer " .. BEARER) ..
				" --data-binary @" .. q(tmp .. "/long") .. " " .. q(em.url .. STREAM_PATH)
			local out = run(cmd .. " -o /dev/null -w '%{http_code} %{size_download} %{time_total}'")
			local status, size, total = out:match("^(%d+) (%d+) (%S+)$")
			assert.are.equal("200", status, out)
			sizes[#sizes + 1] = tonumber(size)
			-- the first 1000 bytes of the body (a few events), then curl goes away
			out = run("t0=$(date +%s%N); " .. cmd .. " -N | head -c 1000 | wc -c; t1=$(date +%s%N);" ..
				" echo $(((t1 - t0) / 1000000))")
			local got, ms = out:match("^%s*(%d+)%s+(%d+)%s*$")
			assert.are.equal("1000", got, out)
			assert.is_true(tonumber(ms) < tonumber(total) * 1000 / 3,
				("first 1000 bytes after %d ms, the whole stream took %.0f ms (%s)"):format(
					tonumber(ms), tonumber(total) * 1000, h2 and "h2" or "HTTP/1.1"))
		end
		assert.is_true(sizes[1] > 380e6, tostring(sizes[1]))
		assert.are.equal(sizes[1], sizes[2])
		local status = helper.read("/proc/" .. em.pid .. "/status")
		local hwm = tonumber(status:match("VmHWM:%s*(%d+)"))
		-- the ASan build keeps freed memory in quarantine (256 MiB) and adds shadow memory
		local limit = is_asan and 768 * 1024 or 160 * 1024
		assert.is_true(hwm < limit, ("emulator peak RSS %d KiB"):format(hwm))
	end)

	it("puts x-amzn-RequestId (a UUID) and Date on every response, errors included", function()
		for _, r in ipairs({ curl(CONVERSE_PATH, { body = STREAM_BODY }), curl("/nowhere"),
			curl(CONVERSE_PATH, { auth = false, body = "{}" }) }) do
			assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", r.headers["x-amzn-requestid"])
			assert.matches("GMT$", r.headers["date"])
		end
	end)

	it("answers 404 UnknownOperationException for a path no operation serves", function()
		local r = curl("/no/such/operation", { method = "POST", body = "{}" })
		assert.are.equal(404, r.status)
		assert.matches("^UnknownOperationException", r.headers["x-amzn-errortype"])
	end)

	it("serves many connections at once", function()
		local q = helper.shell_quote
		local cmd = {}
		write(tmp .. "/body", STREAM_BODY)
		for i = 1, 20 do
			cmd[#cmd + 1] = "curl -s -o /dev/null -w '%{http_code}\\n' " .. (i % 2 == 0 and "--http2-prior-knowledge " or "") ..
				"-H 'Content-Type: application/json' -H " .. q("Authorization: Bearer " .. BEARER) ..
				" --data-binary @" .. q(tmp .. "/body") .. " " .. q(em.url .. STREAM_PATH) .. " > " .. q(tmp .. "/par" .. i) .. " &"
		end
		run("sh -c " .. q(table.concat(cmd, " ") .. " wait"))
		for i = 1, 20 do assert.are.equal("200\n", helper.read(tmp .. "/par" .. i)) end
		assert.are.equal(20, stats().api_connections)
	end)

	it("refuses InvokeModelWithBidirectionalStream over HTTP/1.1", function()
		local r = curl("/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream",
			{ method = "POST", body = "" })
		assert.are.equal(400, r.status)
		assert.matches("^ValidationException", r.headers["x-amzn-errortype"])
	end)

	local tls_it = has_openssl and it or function(name) pending(name .. " (needs the openssl CLI)") end
	local cert_made = false
	-- A throwaway CA and a server certificate for 127.0.0.1, made once in tmp.
	local function make_cert()
		if cert_made then return end
		local d = helper.shell_quote(tmp)
		local _, rc = run("cd " .. d ..
			" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=spec-ca" ..
			" && openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost" ..
			" && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf" ..
			" && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile ext.cnf")
		assert.are.equal(0, rc)
		cert_made = true
	end

	tls_it("serves HTTPS with ALPN h2 and http/1.1 (throwaway CA made here)", function()
		make_cert()
		local t = start({ "--tls", tmp .. "/srv.pem", tmp .. "/srv.key", "--bearer", BEARER })
		local base = "https://127.0.0.1:" .. t.port
		local ca = "--cacert " .. helper.shell_quote(tmp .. "/ca.pem")
		local r1 = curl(CONVERSE_PATH, { base = base, body = STREAM_BODY, extra = { ca, "--http1.1" } })
		local r2 = curl(STREAM_PATH, { base = base, body = STREAM_BODY, extra = { ca, "--http2" } })
		t.stop()
		assert.are.equal(200, r1.status)
		assert.are.equal("1.1", r1.version)
		assert.are.equal(200, r2.status)
		assert.are.equal("2", r2.version)
		assert.are.equal(N_EVENTS, #frames(r2.body))
	end)

	tls_it("multiplexes HTTP/2 streams: a stalled one does not delay the others", function()
		make_cert()
		local t = start({ "--tls", tmp .. "/srv.pem", tmp .. "/srv.key", "--bearer", BEARER })
		local base = "https://127.0.0.1:" .. t.port
		local q = helper.shell_quote
		local ca = { "--cacert " .. q(tmp .. "/ca.pem") }
		assert.are.equal(200, admin("POST", "faults?kind=stall&ms=700&model=anthropic.", base, ca).status)
		write(tmp .. "/body", STREAM_BODY)
		local urls = {}
		for _, p in ipairs({ "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", STREAM_PATH, CONVERSE_PATH }) do
			urls[#urls + 1] = "-o /dev/null " .. q(base .. p)
		end
		local out = run("curl -s --http2 --parallel --cacert " .. q(tmp .. "/ca.pem") ..
			" -H 'Content-Type: application/json' -H " .. q("Authorization: Bearer " .. BEARER) ..
			" --data-binary @" .. q(tmp .. "/body") ..
			" -w '%{http_code} %{time_total} %{num_connects} %{url_effective}\\n' " .. table.concat(urls, " "))
		local s = stats(base, ca)
		t.stop()
		local connects, slow, fast = 0, 0, 0
		for code, time, nc, url in out:gmatch("(%d+) (%S+) (%d+) (%S+)") do
			assert.are.equal("200", code)
			connects = connects + tonumber(nc)
			if url:find("anthropic", 1, true) then slow = tonumber(time) else fast = math.max(fast, tonumber(time)) end
		end
		assert.are.equal(1, connects)
		assert.are.equal(1, s.api_connections)
		assert.are.equal(3, s.requests)
		assert.is_true(slow >= 0.65, "stalled stream took " .. slow)
		assert.is_true(fast < 0.5, "other streams took up to " .. fast)
	end)
end)

describe("bedrock-emulator authentication", function()
	local function signed(extra)
		local out = python("emulator_client.py", em.url .. " POST " .. CONVERSE_PATH .. " --body " ..
			helper.shell_quote(STREAM_BODY) .. " --header 'content-type:application/json' " .. extra)
		local status, etype, body = out:match("^(%d+)\n([^\n]*)\n(.*)$")
		return tonumber(status), etype, body
	end

	it("answers 403 with 'Authorization header is missing' when there is none", function()
		local r = curl(CONVERSE_PATH, { auth = false, body = STREAM_BODY })
		assert.are.equal(403, r.status)
		assert.matches("^AccessDeniedException", r.headers["x-amzn-errortype"])
		assert.matches("Authorization header is missing", r.body, 1, true)
	end)

	it("accepts a configured bearer token and refuses any other", function()
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
		local r = curl(CONVERSE_PATH, { body = STREAM_BODY, bearer = "not-a-key" })
		assert.are.equal(403, r.status)
		assert.matches("^AccessDeniedException", r.headers["x-amzn-errortype"])
		assert.matches("Authentication failed", r.body, 1, true)
		assert.are.equal(403, curl(CONVERSE_PATH, { body = STREAM_BODY, bearer = "" }).status)
	end)

	pit("accepts a botocore SigV4 signature, on HTTP/1.1", function()
		local status, _, body = signed("--akid " .. AKID .. " --secret " .. SECRET)
		assert.are.equal(200, status, body)
	end)

	pit("accepts the JS SDK's form (signed x-amz-content-sha256) and a signed query", function()
		assert.are.equal(200, (signed("--akid " .. AKID .. " --secret " .. SECRET .. " --content-sha256")))
		local out = python("emulator_client.py", em.url ..
			" GET '/async-invoke?maxResults=5&statusEquals=Completed' --akid " .. AKID .. " --secret " .. SECRET)
		assert.matches("^200\n", out)
	end)

	pit("refuses a wrong signature with InvalidSignatureException and the canonical request", function()
		local status, etype, body = signed("--akid " .. AKID .. " --secret " .. SECRET .. " --bad-sig")
		assert.are.equal(403, status)
		assert.matches("^InvalidSignatureException", etype)
		assert.matches("The request signature we calculated does not match", body, 1, true)
		assert.matches("converse", body, 1, true)
		status, etype = signed("--akid " .. AKID .. " --secret wrongsecret")
		assert.are.equal(403, status)
		assert.matches("^InvalidSignatureException", etype)
	end)

	pit("refuses an unknown access key with UnrecognizedClientException", function()
		local status, etype, body = signed("--akid AKIDUNKNOWN --secret " .. SECRET)
		assert.are.equal(403, status)
		assert.matches("^UnrecognizedClientException", etype)
		assert.matches("security token included in the request is invalid", body, 1, true)
	end)

	pit("refuses a date outside the 5-minute window: 'Signature expired'", function()
		local status, etype, body = signed("--akid " .. AKID .. " --secret " .. SECRET .. " --skew -400")
		assert.are.equal(403, status)
		assert.matches("^InvalidSignatureException", etype)
		assert.matches("Signature expired", body, 1, true)
		status, etype, body = signed("--akid " .. AKID .. " --secret " .. SECRET .. " --skew 400")
		assert.matches("^InvalidSignatureException", etype)
		assert.are.equal(403, status)
		assert.matches("Signature not yet current", body, 1, true)
		assert.are.equal(200, (signed("--akid " .. AKID .. " --secret " .. SECRET .. " --skew -200")))
	end)

	pit("refuses a scope for another service than 'bedrock'", function()
		local status, etype, body = signed("--akid " .. AKID .. " --secret " .. SECRET .. " --service bedrock-runtime")
		assert.are.equal(403, status)
		assert.matches("^InvalidSignatureException", etype)
		assert.matches("correct service: 'bedrock'", body, 1, true)
	end)

	pit("binds a session token to its key", function()
		assert.are.equal(200, (signed("--akid " .. TOKEN_AKID .. " --secret " .. TOKEN_SECRET .. " --token " .. SESSION)))
		local status, etype = signed("--akid " .. TOKEN_AKID .. " --secret " .. TOKEN_SECRET)
		assert.are.equal(403, status)
		assert.matches("^UnrecognizedClientException", etype)
		status = signed("--akid " .. TOKEN_AKID .. " --secret " .. TOKEN_SECRET .. " --token other")
		assert.are.equal(403, status)
		status = signed("--akid " .. AKID .. " --secret " .. SECRET .. " --token unexpected")
		assert.are.equal(403, status)
	end)

	pit("takes keys from its own environment when none are given on the command line", function()
		local e = start({}, { AWS_ACCESS_KEY_ID = "AKIDFROMENV", AWS_SECRET_ACCESS_KEY = "envsecret",
			AWS_SESSION_TOKEN = "", AWS_BEARER_TOKEN_BEDROCK = "env-bearer" })
		local out = python("emulator_client.py", e.url .. " POST " .. CONVERSE_PATH .. " --body " ..
			helper.shell_quote(STREAM_BODY) .. " --header 'content-type:application/json' --akid AKIDFROMENV --secret envsecret")
		local r = curl(CONVERSE_PATH, { base = e.url, body = STREAM_BODY, bearer = "env-bearer" })
		e.stop()
		assert.matches("^200\n", out)
		assert.are.equal(200, r.status)
	end)

	it("--no-auth accepts requests without credentials", function()
		local e = start({ "--no-auth" })
		local r = curl(CONVERSE_PATH, { base = e.url, auth = false, body = STREAM_BODY })
		e.stop()
		assert.are.equal(200, r.status)
	end)
end)

describe("bedrock-emulator control channel", function()
	it("refuses requests without x-emulator-admin: 1 and never authenticates them", function()
		local r = curl("/_emulator/faults?kind=throttle", { method = "POST", auth = false })
		assert.are.equal(403, r.status)
		r = curl("/_emulator/requests", { headers = { "x-emulator-admin: yes" } })
		assert.are.equal(403, r.status)
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
	end)

	it("lists, adds and clears faults, and rejects bad parameters", function()
		assert.are.equal(400, admin("POST", "faults?kind=nonsense").status)
		assert.are.equal(400, admin("POST", "faults?kind=throttle&count=x").status)
		assert.are.equal(400, admin("POST", "faults").status)
		fault("kind=throttle&count=3&model=amazon.titan")
		local body = admin("GET", "faults").body
		assert.matches('"kind":"throttle","count":3', body, 1, true)
		assert.matches('"model":"amazon.titan"', body, 1, true)
		admin("DELETE", "faults")
		assert.matches('"faults":[]', admin("GET", "faults").body, 1, true)
		assert.are.equal(404, admin("GET", "nothing-here").status)
	end)

	it("counts connections and requests, and resets the counters", function()
		curl(CONVERSE_PATH, { body = STREAM_BODY })
		curl(CONVERSE_PATH, { body = STREAM_BODY, h2 = true })
		local s = stats()
		assert.are.equal(2, s.requests)
		assert.are.equal(2, s.api_connections)
		assert.matches('"http2":true', s.body, 1, true)
		admin("DELETE", "requests")
		assert.are.equal(0, stats().requests)
	end)
end)

describe("bedrock-emulator faults", function()
	local function stream(h2, timeout)
		return curl(STREAM_PATH, { body = STREAM_BODY, h2 = h2, timeout = timeout })
	end

	it("throttles the next N requests with 429 ThrottlingException", function()
		fault("kind=throttle&count=2")
		for _ = 1, 2 do
			local r = curl(CONVERSE_PATH, { body = STREAM_BODY })
			assert.are.equal(429, r.status)
			assert.matches("^ThrottlingException", r.headers["x-amzn-errortype"])
			assert.matches('"message":"Too many requests', r.body, 1, true)
		end
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
	end)

	it("limits a fault to one model id (prefix match)", function()
		fault("kind=internal&model=anthropic.")
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
		local r = curl("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", { body = STREAM_BODY })
		assert.are.equal(500, r.status)
		assert.matches("^InternalServerException", r.headers["x-amzn-errortype"])
	end)

	it("answers 500 InternalServerException and 503 ServiceUnavailableException", function()
		fault("kind=internal")
		fault("kind=unavailable")
		local a = curl(CONVERSE_PATH, { body = STREAM_BODY })
		local b = curl(STREAM_PATH, { body = STREAM_BODY, h2 = true })
		assert.are.equal(500, a.status)
		assert.matches("^InternalServerException", a.headers["x-amzn-errortype"])
		assert.are.equal(503, b.status)
		assert.matches("^ServiceUnavailableException", b.headers["x-amzn-errortype"])
	end)

	it("answers any service exception with kind=error (status from the error table)", function()
		local suffix = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
		local table13 = { AccessDeniedException = 403, ResourceNotFoundException = 404,
			ValidationException = 400, ConflictException = 400, ServiceQuotaExceededException = 400,
			ThrottlingException = 429, ModelNotReadyException = 429, ModelTimeoutException = 408,
			ModelErrorException = 424, ModelStreamErrorException = 424, InternalServerException = 500,
			ServiceUnavailableException = 503 }
		local i = 0
		for name, status in pairs(table13) do
			i = i + 1
			fault("kind=error&exception=" .. name .. "&message=injected%20" .. i)
			local r = curl(i % 2 == 0 and STREAM_PATH or CONVERSE_PATH, { body = STREAM_BODY, h2 = i % 2 == 0 })
			assert.are.equal(status, r.status, name)
			assert.are.equal(name .. suffix, r.headers["x-amzn-errortype"])
			assert.matches("^application/json", r.headers["content-type"])
			assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", r.headers["x-amzn-requestid"])
			if name == "ModelErrorException" then
				assert.are.equal('{"message":"injected ' .. i .. '","originalStatusCode":500,' ..
					'"resourceName":"amazon.titan-text-express-v1:0"}', r.body)
			elseif name == "ModelStreamErrorException" then
				assert.are.equal('{"message":"injected ' .. i .. '","originalStatusCode":500,' ..
					'"originalMessage":"injected ' .. i .. '"}', r.body)
			else
				assert.are.equal('{"message":"injected ' .. i .. '"}', r.body)
			end
		end
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
		-- the modeled members, status override, default message, unknown names, count
		fault("kind=error&exception=ModelErrorException&originalStatusCode=503&resourceName=my%20model")
		local r = curl(CONVERSE_PATH, { body = STREAM_BODY })
		assert.matches('"originalStatusCode":503,"resourceName":"my model"}$', r.body)
		assert.matches('^{"message":"[^"]+",', r.body)
		fault("kind=error&exception=ModelStreamErrorException&originalStatusCode=529&originalMessage=a%22b")
		r = curl(STREAM_PATH, { body = STREAM_BODY })
		assert.are.equal(424, r.status)
		assert.matches('"originalStatusCode":529,"originalMessage":"a\\"b"}$', r.body)
		fault("kind=error&exception=ThrottlingException&status=400")
		r = curl(CONVERSE_PATH, { body = STREAM_BODY })
		assert.are.equal(400, r.status)
		assert.are.equal("ThrottlingException" .. suffix, r.headers["x-amzn-errortype"])
		fault("kind=error&exception=SomethingNewException&status=418&message=new&count=2")
		for _ = 1, 2 do
			r = curl(CONVERSE_PATH, { body = STREAM_BODY })
			assert.are.equal(418, r.status)
			assert.are.equal("SomethingNewException" .. suffix, r.headers["x-amzn-errortype"])
			assert.are.equal('{"message":"new"}', r.body)
		end
		fault("kind=error&exception=com.example%23OtherException")
		r = curl(CONVERSE_PATH, { body = STREAM_BODY })
		assert.are.equal(400, r.status)
		assert.are.equal("com.example#OtherException" .. suffix, r.headers["x-amzn-errortype"])
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
		-- refused: no name, a name unfit for a header, a status that is no error
		for _, q in ipairs({ "kind=error", "kind=error&exception=", "kind=error&exception=Bad%20Name",
			"kind=error&exception=" .. string.rep("X", 64), "kind=error&exception=X&status=200",
			"kind=error&exception=X&status=600", "kind=error&exception=X&originalStatusCode=99",
			"kind=error&exception=X&originalStatusCode=abc" }) do
			assert.are.equal(400, admin("POST", "faults?" .. q).status, q)
		end
		assert.matches('"faults":[]', admin("GET", "faults").body, 1, true)
	end)

	it("stalls before the headers, then answers normally", function()
		fault("kind=stall&ms=400")
		local r = curl(CONVERSE_PATH, { body = STREAM_BODY })
		assert.are.equal(200, r.status)
		assert.is_true(r.time >= 0.38, "took " .. r.time)
	end)

	it("hangs until the client gives up, on both protocols", function()
		fault("kind=hang&count=2")
		local a = curl(CONVERSE_PATH, { body = STREAM_BODY, timeout = 1 })
		local b = curl(CONVERSE_PATH, { body = STREAM_BODY, timeout = 1, h2 = true })
		assert.are.equal(28, a.rc)
		assert.are.equal(28, b.rc)
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
	end)

	it("stalls mid-stream after K events", function()
		for _, h2 in ipairs({ false, true }) do
			fault("kind=stream-stall&after=3&ms=400")
			local r = stream(h2)
			assert.are.equal(200, r.status)
			assert.are.equal(N_EVENTS, #frames(r.body))
			assert.is_true(r.time >= 0.38, "took " .. r.time)
		end
	end)

	it("resets the connection mid-stream after K events (TCP RST; RST_STREAM on h2)", function()
		fault("kind=reset&after=3")
		local a = stream(false)
		assert.are.equal(56, a.rc) -- curl: failure receiving data
		assert.is_true(#frames(a.body) <= 3)
		fault("kind=reset&after=3")
		local b = stream(true)
		assert.are.equal(92, b.rc) -- curl: HTTP/2 stream error
	end)

	it("sends GOAWAY and drops an HTTP/2 connection mid-stream", function()
		fault("kind=goaway&after=2")
		local r = stream(true)
		assert.are_not.equal(0, r.rc)
		assert.is_true(#frames(r.body) <= 2)
	end)

	it("corrupts event K's message CRC and nothing else", function()
		local good = stream(false).body
		fault("kind=crc&after=4")
		local bad = stream(false).body
		assert.are.equal(#good, #bad)
		local fg, fb = frames(good), frames(bad)
		for i = 1, #fg do
			if i == 5 then
				local n = #fg[i].raw
				assert.are.equal(fg[i].raw:sub(1, n - 1), fb[i].raw:sub(1, n - 1))
				assert.are_not.equal(fg[i].raw:byte(n), fb[i].raw:byte(n))
			else
				assert.are.equal(fg[i].raw, fb[i].raw)
			end
		end
	end)

	it("truncates event K: half a frame, then the stream ends", function()
		for _, h2 in ipairs({ false, true }) do
			local good = frames(stream(h2).body)
			fault("kind=truncate&after=3")
			local r = stream(h2)
			local f = frames(r.body)
			assert.are.equal(3, #f)
			assert.are.equal(math.floor(#good[4].raw / 2), f.partial)
		end
	end)

	it("sends an exception event after K events and ends the stream", function()
		local kinds = { "throttlingException", "internalServerException", "validationException",
			"serviceUnavailableException", "modelTimeoutException", "modelStreamErrorException" }
		for i, kind in ipairs(kinds) do
			fault("kind=exception&after=2&exception=" .. kind .. "&message=injected%20" .. i .. "&status=529")
			local r = stream(i % 2 == 0)
			assert.are.equal(200, r.status)
			local f = frames(r.body)
			assert.are.equal(3, #f)
			assert.are.equal(0, f.partial)
			assert.are.equal("exception", f[3].headers[":message-type"])
			assert.are.equal(kind, f[3].headers[":exception-type"])
			assert.matches('"message":"injected ' .. i .. '"', f[3].payload, 1, true)
			if kind == "modelStreamErrorException" then
				assert.matches('"originalStatusCode":529', f[3].payload, 1, true)
				assert.matches('"originalMessage":', f[3].payload, 1, true)
			end
		end
	end)

	it("sends an oversize prelude after K events; at or past the last event, at the stream's end", function()
		for _, h2 in ipairs({ false, true }) do
			for _, k in ipairs({ 2, N_EVENTS, N_EVENTS + 5 }) do
				fault("kind=oversize&after=" .. k)
				local r = stream(h2)
				assert.are.equal(200, r.status)
				local f = frames(r.body)
				local sent = math.min(k, N_EVENTS)
				assert.are.equal(sent, #f, "after=" .. k)
				-- the 12-byte prelude announcing 32 MiB, then 64 KiB of the frame's body
				assert.are.equal(12 + 64 * 1024, f.partial, "after=" .. k)
				assert.are.equal(32 * 1024 * 1024, u32(r.body, #r.body - f.partial + 1))
			end
		end
	end)

	it("ends the stream with internalServerException when encoding event K runs out of memory", function()
		for _, h2 in ipairs({ false, true }) do
			fault("kind=oom&after=2")
			local r = stream(h2)
			assert.are.equal(200, r.status)
			local f = frames(r.body)
			assert.are.equal(3, #f)
			assert.are.equal(0, f.partial)
			assert.are.equal("exception", f[3].headers[":message-type"])
			assert.are.equal("internalServerException", f[3].headers[":exception-type"])
			assert.are.equal('{"message":"The emulator ran out of memory encoding the stream."}', f[3].payload)
			-- past the last event there is nothing left to encode: the stream is whole
			fault("kind=oom&after=" .. N_EVENTS)
			f = frames(stream(h2).body)
			assert.are.equal(N_EVENTS, #f)
			assert.are.equal("event", f[N_EVENTS].headers[":message-type"])
		end
	end)

	it("applies a mid-stream fault only to event-stream responses", function()
		fault("kind=reset&after=1")
		assert.are.equal(200, curl(CONVERSE_PATH, { body = STREAM_BODY }).status)
		assert.are.equal(56, stream(false).rc)
	end)

	it("paces events through the control channel and with --event-delay", function()
		admin("POST", "pacing?ms=100")
		local a = stream(false)
		local b = stream(true)
		assert.is_true(a.time >= 0.85, "h1 took " .. a.time)
		assert.is_true(b.time >= 0.85, "h2 took " .. b.time)
		assert.are.equal(N_EVENTS, #frames(a.body))
		admin("POST", "pacing?ms=0")
		assert.is_true(stream(false).time < 0.5)
		local e = start({ "--no-auth", "--event-delay", "60" })
		local r = curl(STREAM_PATH, { base = e.url, body = STREAM_BODY, auth = false })
		e.stop()
		assert.is_true(r.time >= 0.5, "took " .. r.time)
	end)
end)

describe("bedrock-emulator bidirectional stream", function()
	local BIDI_MODEL = "amazon.nova-sonic-v1:0"

	pit("verifies chained frame signatures and answers while input is still open (h2)", function()
		local out = python("emulator_bidi.py", em.url .. " " .. BIDI_MODEL .. " " .. AKID .. " " .. SECRET .. " --count 3")
		assert.matches("status 200", out, 1, true)
		assert.matches("duplex yes", out, 1, true)
		assert.matches('"content":"turn 0"', out, 1, true)
		assert.matches('"content":"turn 2"', out, 1, true)
		assert.matches("completionEnd", out, 1, true)
	end)

	pit("ends the stream with an error message on a bad chunk signature", function()
		local out = python("emulator_bidi.py", em.url .. " " .. BIDI_MODEL .. " " .. AKID .. " " .. SECRET ..
			" --count 3 --bad-frame 1")
		assert.matches('"content":"turn 0"', out, 1, true)
		assert.matches("error InvalidSignatureException", out, 1, true)
		assert.is_nil(out:find('"content":"turn 1"', 1, true))
	end)

	pit("refuses an opening request with a wrong signature", function()
		local out = python("emulator_bidi.py", em.url .. " " .. BIDI_MODEL .. " " .. AKID .. " wrongsecret --count 1")
		assert.matches("status other", out, 1, true)
		assert.is_nil(out:find("event chunk", 1, true))
	end)
end)

describe("bedrock-emulator credential endpoints", function()
	it("IMDSv2: token, then role name, then credentials; 401 without the token", function()
		local t = curl("/latest/api/token", { method = "PUT", auth = false,
			headers = { "X-aws-ec2-metadata-token-ttl-seconds: 21600" } })
		assert.are.equal(200, t.status)
		local token = t.body
		assert.are.equal(400, curl("/latest/api/token", { method = "PUT", auth = false }).status)
		assert.are.equal(401, curl("/latest/meta-data/iam/security-credentials/", { auth = false }).status)
		local role = curl("/latest/meta-data/iam/security-credentials/", { auth = false,
			headers = { "X-aws-ec2-metadata-token: " .. token } })
		assert.are.equal(200, role.status)
		assert.are.equal("bedrock-emulator-role", role.body)
		local c = curl("/latest/meta-data/iam/security-credentials/" .. role.body, { auth = false,
			headers = { "X-aws-ec2-metadata-token: " .. token } })
		assert.are.equal(200, c.status)
		for _, k in ipairs({ '"Code" : "Success"', '"Type" : "AWS-HMAC"', '"AccessKeyId" : "ASIA',
			'"SecretAccessKey"', '"Token"', '"Expiration"', '"LastUpdated"' }) do
			assert.matches(k, c.body, 1, true)
		end
	end)

	it("container endpoint: needs the configured Authorization token", function()
		assert.are.equal(401, curl("/v2/credentials/abc", { auth = false }).status)
		local c = curl("/v2/credentials/abc", { auth = false, headers = { "Authorization: container-secret" } })
		assert.are.equal(200, c.status)
		assert.matches('"AccessKeyId":"ASIA', c.body, 1, true)
		assert.matches('"Expiration":"%d%d%d%d%-%d%d%-%d%dT', c.body)
	end)

	it("STS: XML answers and XML errors", function()
		local r = curl("/", { method = "POST", auth = false, headers = { "Content-Type: application/x-www-form-urlencoded" },
			extra = { "--data 'Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr" ..
				"&RoleSessionName=s&WebIdentityToken=tok&Version=2011-06-15'" } })
		assert.are.equal(200, r.status)
		assert.matches('^<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011%-06%-15/">', r.body)
		assert.matches("<AccessKeyId>ASIA", r.body, 1, true)
		assert.matches("<Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>", r.body, 1, true)
		local e = curl("/", { method = "POST", auth = false,
			extra = { "--data 'Action=AssumeRole&RoleArn=x&RoleSessionName=s&Version=2011-06-15'" } })
		assert.are.equal(403, e.status)
		assert.matches("<ErrorResponse", e.body, 1, true)
		assert.matches("<Code>MissingAuthenticationToken</Code>", e.body, 1, true)
	end)

	it("SSO GetRoleCredentials: needs the bearer token, answers expiration in ms", function()
		local path = "/federation/credentials?role_name=r&account_id=123456789012"
		assert.are.equal(401, curl(path, { auth = false }).status)
		local r = curl(path, { auth = false, headers = { "x-amz-sso_bearer_token: sso-secret" } })
		assert.are.equal(200, r.status)
		assert.matches('{"roleCredentials":{"accessKeyId":"ASIA', r.body, 1, true)
		assert.matches('"expiration":%d%d%d%d%d%d%d%d%d%d%d%d%d}}', r.body)
	end)

	for _, p in ipairs({ { "imds", "" }, { "container", "--container-token container-secret" },
		{ "assume-role", "--akid " .. AKID .. " --secret " .. SECRET }, { "web-identity", "" },
		{ "sso", "--sso-token sso-secret" } }) do
		pit("issues credentials through botocore's " .. p[1] .. " provider that then sign an accepted call", function()
			local out = python("emulator_creds.py", em.url .. " " .. p[1] .. " " .. p[2])
			assert.matches("creds ASIA%w+ 1 ", out)
			assert.matches("converse 200", out, 1, true)
		end)
	end

	pit("refuses AssumeRole signed with a wrong secret (SignatureDoesNotMatch)", function()
		local out = python("emulator_creds.py", em.url .. " assume-role --akid " .. AKID .. " --secret nope")
		assert.matches("error SignatureDoesNotMatch", out, 1, true)
	end)

	pit("honours --cred-ttl: expired issued keys answer ExpiredTokenException", function()
		local e = start({ "--cred-ttl", "1", "--bearer", "unused" })
		local c = curl("/container-credentials", { base = e.url, auth = false })
		local akid = c.body:match('"AccessKeyId":"([^"]+)"')
		local secret = c.body:match('"SecretAccessKey":"([^"]+)"')
		local token = c.body:match('"Token":"([^"]+)"')
		run("sleep 1.2")
		local out = python("emulator_client.py", e.url .. " POST " .. CONVERSE_PATH .. " --body " ..
			helper.shell_quote(STREAM_BODY) .. " --header 'content-type:application/json' --akid " ..
			akid .. " --secret " .. secret .. " --token " .. token)
		e.stop()
		assert.matches("^403\nExpiredTokenException", out)
	end)
end)

describe("bedrock-emulator with boto3", function()
	pit("raises the modeled exception classes for kind=error faults, members included", function()
		local script = [[
import sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
c = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=sys.argv[1],
    aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
    config=Config(retries={"total_max_attempts": 1}))
m = [{"role": "user", "content": [{"text": "x"}]}]
for name in sys.argv[4:]:
    try:
        c.converse(modelId="amazon.titan-text-express-v1:0", messages=m)
        print(name, "no error")
    except ClientError as e:
        modeled = getattr(c.exceptions, name, None)
        r = e.response
        print(name, "modeled" if modeled and isinstance(e, modeled) else "generic", r["Error"]["Code"],
              r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"],
              r.get("originalStatusCode"), r.get("resourceName"), r.get("originalMessage"))
]]
		write(tmp .. "/boto_err.py", script)
		local names = { "AccessDeniedException", "ResourceNotFoundException", "ValidationException",
			"ConflictException", "ServiceQuotaExceededException", "ThrottlingException", "ModelNotReadyException",
			"ModelTimeoutException", "ModelErrorException", "ModelStreamErrorException", "InternalServerException",
			"ServiceUnavailableException" }
		for _, name in ipairs(names) do
			local extra = ""
			if name == "ModelErrorException" then extra = "&originalStatusCode=502&resourceName=res1" end
			if name == "ModelStreamErrorException" then extra = "&originalStatusCode=529&originalMessage=orig" end
			fault("kind=error&exception=" .. name .. "&message=m-" .. name .. extra)
		end
		fault("kind=error&exception=SomethingNewException&status=418&message=new")
		names[#names + 1] = "SomethingNewException"
		local out = run("python3 " .. helper.shell_quote(tmp .. "/boto_err.py") .. " " .. em.url .. " " .. AKID ..
			" " .. SECRET .. " " .. table.concat(names, " "))
		local status = { AccessDeniedException = 403, ResourceNotFoundException = 404, ThrottlingException = 429,
			ModelNotReadyException = 429, ModelTimeoutException = 408, ModelErrorException = 424,
			ModelStreamErrorException = 424, InternalServerException = 500, ServiceUnavailableException = 503 }
		for i = 1, #names - 1 do
			local name = names[i]
			local tail = "None None None"
			if name == "ModelErrorException" then tail = "502 res1 None" end
			if name == "ModelStreamErrorException" then tail = "529 None orig" end
			assert.matches(name .. " modeled " .. name .. " " .. (status[name] or 400) .. " m-" .. name .. " " .. tail,
				out, 1, true)
		end
		assert.matches("SomethingNewException generic SomethingNewException 418 new None None None", out, 1, true)
	end)

	pit("converse and converse_stream through the official SDK", function()
		local script = [[
import sys, boto3
from botocore.config import Config
c = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=sys.argv[1],
    aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
    config=Config(retries={"max_attempts": 0}))
m = [{"role": "user", "content": [{"text": "one two three"}]}]
r = c.converse(modelId="amazon.titan-text-express-v1:0", messages=m)
print("converse", r["output"]["message"]["content"][0]["text"], r["ResponseMetadata"]["RequestId"])
s = c.converse_stream(modelId="amazon.titan-text-express-v1:0", messages=m)
print("events", sum(1 for _ in s["stream"]), s["ResponseMetadata"]["HTTPHeaders"]["content-type"])
]]
		write(tmp .. "/boto.py", script)
		local out = run("python3 " .. helper.shell_quote(tmp .. "/boto.py") .. " " .. em.url .. " " .. AKID .. " " .. SECRET)
		assert.matches("converse You said: one two three %x+%-", out)
		assert.matches("events %d+ application/vnd.amazon.eventstream", out)
	end)
end)

-- The emulator's HTTP/1.1 parser is strict like a real server's (users point their own
-- clients at it): a framing a lenient parser would guess at is refused, not served.
describe("bedrock-emulator HTTP/1.1 request parsing", function()
	-- Sends raw bytes on a fresh connection (bash's /dev/tcp); returns the status code of
	-- the first response, or nil when the server answered nothing.
	local function raw(bytes)
		write(tmp .. "/raw", bytes)
		local port = em.url:match(":(%d+)$")
		local out = run("bash -c " .. helper.shell_quote("exec 3<>/dev/tcp/127.0.0.1/" .. port ..
			"; cat " .. tmp .. "/raw >&3; timeout 3 head -c 12 <&3"))
		return tonumber(out:match("^HTTP/1%.1 (%d%d%d)"))
	end
	local ADMIN = "GET /_emulator/requests HTTP/1.1\r\nHost: x\r\nx-emulator-admin: 1\r\n"
	local POST = "POST /_emulator/requests HTTP/1.1\r\nHost: x\r\nx-emulator-admin: 1\r\n"

	it("serves well-formed requests, with a body framed either way", function()
		assert.are.equal(200, raw(ADMIN .. "\r\n"))
		assert.are.equal(200, raw("\r\n" .. ADMIN .. "\r\n")) -- an empty line first is ignored
		assert.are.equal(200, raw(ADMIN .. "Content-Length: 5\r\n\r\nhello"))
		assert.are.equal(200, raw(ADMIN .. "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
		assert.are.equal(200, raw(ADMIN .. "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"))
	end)

	it("refuses a Content-Length that is not 1*DIGIT, or given twice", function()
		for _, v in ipairs({ "+5", "-1", " 5x", "0x5", "5 5", "", "99999999999999999999" }) do
			assert.are.equal(400, raw(POST .. "Content-Length: " .. v .. "\r\n\r\nhello"), v)
		end
		assert.are.equal(400, raw(POST .. "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"))
		assert.are.equal(413, raw(POST .. "Content-Length: 999999999999\r\n\r\n"))
	end)

	it("refuses Transfer-Encoding that is not exactly chunked, or with Content-Length", function()
		local body = "5\r\nhello\r\n0\r\n\r\n"
		assert.are.equal(501, raw(POST .. "Transfer-Encoding: gzip, chunked\r\n\r\n" .. body))
		assert.are.equal(501, raw(POST .. "Transfer-Encoding: chunkedx\r\n\r\n" .. body))
		assert.are.equal(400, raw(POST .. "Transfer-Encoding: chunked, chunked\r\n\r\n" .. body))
		assert.are.equal(400, raw(POST .. "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" .. body))
		assert.are.equal(400, raw((POST:gsub("HTTP/1.1", "HTTP/1.0")) .. "Transfer-Encoding: chunked\r\n\r\n" .. body))
	end)

	it("refuses a chunk not followed by CRLF and a bad chunk size", function()
		assert.are.equal(400, raw(POST .. "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"))
		assert.are.equal(400, raw(POST .. "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"))
		assert.are.equal(400, raw(POST .. "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"))
	end)

	it("refuses bare LF, obs-fold, space before the colon, control characters, missing or double Host", function()
		assert.are.equal(400, raw("GET /_emulator/requests HTTP/1.1\nHost: x\r\nx-emulator-admin: 1\r\n\r\n"))
		assert.are.equal(400, raw(ADMIN .. "X-A: 1\r\n folded\r\n\r\n"))
		assert.are.equal(400, raw(ADMIN .. "Content-Length : 0\r\n\r\n"))
		assert.are.equal(400, raw(ADMIN .. "X-A: a\1b\r\n\r\n"))
		assert.are.equal(400, raw(ADMIN .. "X-A: a\0b\r\n\r\n"))
		assert.are.equal(400, raw("GET /_emulator/requests HTTP/1.1\r\nx-emulator-admin: 1\r\n\r\n"))
		assert.are.equal(400, raw(ADMIN .. "Host: y\r\n\r\n"))
		assert.are.equal(400, raw("GET  /_emulator/requests HTTP/1.1\r\nHost: x\r\n\r\n"))
		assert.are.equal(400, raw("GET /_emulator/requests HTTP/2.0\r\nHost: x\r\n\r\n"))
		assert.are.equal(400, raw("G(T /_emulator/requests HTTP/1.1\r\nHost: x\r\n\r\n"))
	end)
end)
