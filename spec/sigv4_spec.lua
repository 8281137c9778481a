-- SigV4 request signing, presigning and event signing (csrc/br_sigv4.c through
-- bedrock.core): every conformance vector in spec/fixtures/vectors that applies to a
-- non-S3 service, compared stage by stage, plus the reference's worked examples.
local helper = require "spec.helper"
local core = require "bedrock.core"
local cjson = require "cjson"

local V = helper.vectors
local unpack = table.unpack or unpack

local AKID = "AKIDEXAMPLE"
local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
local AMZ = "20150830T123600Z"

---------------------------------------------------------------------------------------
-- helpers

local function tohex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function fromhex(h)
	return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local base64 = core.b64encode

local function trim(s)
	return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function iso_to_amz(ts)
	return (ts:gsub("[-:]", ""))
end

local function split_lines(text)
	local lines, pos = {}, 1
	while true do
		local nl = text:find("\n", pos, true)
		if not nl then
			lines[#lines + 1] = text:sub(pos)
			return lines
		end
		lines[#lines + 1] = text:sub(pos, nl - 1)
		pos = nl + 1
	end
end

-- Reads a request the way the aws-c-auth harness does (see the vectors README): the
-- request line without " HTTP/1.1", "Name:value" headers in order (a line starting with
-- whitespace continues the previous value, newline included), a blank line, the body.
local function parse_request(text)
	local lines = split_lines(text)
	local method, target = lines[1]:match("^(%S+) (.*)$")
	target = target:gsub(" HTTP/1%.1$", "")
	local path, query = target, nil
	local q = target:find("?", 1, true)
	if q then
		path, query = target:sub(1, q - 1), target:sub(q + 1)
	end
	local headers, i = {}, 2
	while i <= #lines and lines[i] ~= "" do
		local l = lines[i]
		if l:match("^%s") and #headers > 0 then
			headers[#headers][2] = headers[#headers][2] .. "\n" .. l
		else
			local name, value = l:match("^([^:]+):(.*)$")
			assert(name, "bad header line: " .. l)
			headers[#headers + 1] = { name, value }
		end
		i = i + 1
	end
	local body
	if i < #lines then
		body = table.concat(lines, "\n", i + 1)
	end
	return { method = method, path = path, query = query, headers = headers, body = body }
end

local function copy_headers(h, drop)
	local t = {}
	for _, p in ipairs(h) do
		if not (drop and p[1]:lower() == drop) then t[#t + 1] = { p[1], p[2] } end
	end
	return t
end

local function find_header(h, name)
	for _, p in ipairs(h) do
		if p[1]:lower() == name then return p[2] end
	end
end

-- Header multiset as sorted "name:trimmed value" lines.
local function header_set(h)
	local t = {}
	for _, p in ipairs(h) do t[#t + 1] = p[1]:lower() .. ":" .. trim(p[2]) end
	table.sort(t)
	return t
end

local function pct_decode(s)
	return (s:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

-- Query parameter multiset (decoded) as sorted "k=v" strings.
local function query_set(q)
	local t = {}
	for part in q:gmatch("[^&]+") do
		local k, v = part:match("^([^=]*)=?(.*)$")
		t[#t + 1] = pct_decode(k) .. "=" .. pct_decode(v)
	end
	table.sort(t)
	return t
end

local function decode_json(path)
	return cjson.decode(helper.read(path))
end

local function base_req(r, ctx)
	return {
		method = r.method, path = r.path, query = r.query, body = r.body,
		access_key = ctx.access_key, secret_key = ctx.secret_key,
		session_token = ctx.token, region = ctx.region, service = ctx.service,
		amz_date = ctx.amz_date, normalize = ctx.normalize, sign_token = ctx.sign_token,
		expires = ctx.expires,
	}
end

---------------------------------------------------------------------------------------

describe("sigv4 #core", function()
	local s

	setup(function() s = core.signer() end)
	teardown(function() s:close() end)

	-- Every case in the three suites applies to a non-S3 service, so none is pending:
	-- the 6 *-unnormalized cases carry normalize=false in their context.json and run with
	-- normalize_path=0 (the path is still encoded once more); post-sts-header-after runs
	-- with sign_token=false. Paths are passed raw, as the aws-c-auth harness does (raw
	-- spaces and UTF-8 are encoded by the signer, as in the expected canonical requests).
	describe("aws-c-auth suite (sigv4/)", function()
		local cases = helper.ls(V .. "/sigv4")

		it("has the 38 cases", function()
			assert.are.equal(38, #cases)
		end)

		for _, name in ipairs(cases) do
			local dir = V .. "/sigv4/" .. name
			local function context()
				local c = decode_json(dir .. "/context.json")
				return {
					access_key = c.credentials.access_key_id,
					secret_key = c.credentials.secret_access_key,
					token = c.credentials.token,
					region = c.region, service = c.service,
					amz_date = iso_to_amz(c.timestamp),
					-- *-unnormalized cases carry normalize=false: run them that way
					normalize = c.normalize ~= false,
					sign_token = not c.omit_session_token,
					sign_body = c.sign_body,
					expires = c.expiration_in_seconds,
				}
			end

			it(name .. " (header)", function()
				local ctx = context()
				local r = parse_request(helper.read(dir .. "/request.txt"))
				local req = base_req(r, ctx)
				local h = copy_headers(r.headers, "x-amz-date")
				h[#h + 1] = { "X-Amz-Date", ctx.amz_date }
				if ctx.token then h[#h + 1] = { "X-Amz-Security-Token", ctx.token } end
				if ctx.sign_body then
					h[#h + 1] = { "x-amz-content-sha256", core.sha256_hex(r.body or "") }
				end
				req.headers = h
				local st = assert(s:sign(req, true))
				assert.are.equal(helper.read(dir .. "/header-canonical-request.txt"),
					st.canonical_request)
				assert.are.equal(helper.read(dir .. "/header-string-to-sign.txt"), st.string_to_sign)
				assert.are.equal(helper.read(dir .. "/header-signature.txt"), st.signature)
				local sreq = parse_request(helper.read(dir .. "/header-signed-request.txt"))
				assert.are.equal(trim(find_header(sreq.headers, "authorization")), st.authorization)
				-- the signed request: our headers plus Authorization, as a set
				local ours = copy_headers(h)
				ours[#ours + 1] = { "Authorization", st.authorization }
				assert.are.same(header_set(sreq.headers), header_set(ours))
				-- the fast form gives the same three strings
				local auth, sig, sh = s:sign(req)
				assert.are.equal(st.authorization, auth)
				assert.are.equal(st.signature, sig)
				assert.are.equal(st.signed_headers, sh)
			end)

			it(name .. " (query)", function()
				local ctx = context()
				local r = parse_request(helper.read(dir .. "/request.txt"))
				local req = base_req(r, ctx)
				req.headers = copy_headers(r.headers)
				local st = assert(s:presign(req, true))
				assert.are.equal(helper.read(dir .. "/query-canonical-request.txt"),
					st.canonical_request)
				assert.are.equal(helper.read(dir .. "/query-string-to-sign.txt"), st.string_to_sign)
				assert.are.equal(helper.read(dir .. "/query-signature.txt"), st.signature)
				local sreq = parse_request(helper.read(dir .. "/query-signed-request.txt"))
				assert.are.same(query_set(sreq.query), query_set(st.query))
				assert.are.equal(st.query, s:presign(req))
			end)
		end
	end)

	describe("classic suite (sigv4-classic/)", function()
		local cases = {}
		for _, n in ipairs(helper.ls(V .. "/sigv4-classic")) do
			if n == "normalize-path" or n == "post-sts-token" then
				for _, m in ipairs(helper.ls(V .. "/sigv4-classic/" .. n)) do
					if not m:find("%.txt$") then cases[#cases + 1] = n .. "/" .. m end
				end
			elseif n ~= "LICENSE" and n ~= "NOTICE" then
				cases[#cases + 1] = n
			end
		end

		it("has the 34 cases", function()
			assert.are.equal(34, #cases)
		end)

		local TOKEN = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

		for _, case in ipairs(cases) do
			local base = case:match("([^/]+)$")
			local p = V .. "/sigv4-classic/" .. case .. "/" .. base
			it(case, function()
				local r = parse_request(helper.read(p .. ".req"))
				local creq = helper.read(p .. ".creq")
				local req = base_req(r, { access_key = AKID, secret_key = SECRET,
					region = "us-east-1", service = "service", amz_date = AMZ })
				req.headers = copy_headers(r.headers)
				if base == "get-vanilla-with-session-token" then
					local tok = creq:match("x%-amz%-security%-token:([^\n]+)")
					req.session_token = tok
					req.headers[#req.headers + 1] = { "X-Amz-Security-Token", tok }
				elseif base == "post-sts-header-after" then
					-- sent, but left out of the signature
					req.session_token = TOKEN
					req.sign_token = false
					req.headers[#req.headers + 1] = { "X-Amz-Security-Token", TOKEN }
				end
				local st = assert(s:sign(req, true))
				assert.are.equal(creq, st.canonical_request)
				assert.are.equal(helper.read(p .. ".sts"), st.string_to_sign)
				assert.are.equal(helper.read(p .. ".authz"), st.authorization)
				if base == "post-sts-header-after" then
					local sreq = parse_request(helper.read(p .. ".sreq"))
					assert.are.equal(TOKEN, find_header(sreq.headers, "x-amz-security-token"))
				end
			end)
		end
	end)

	describe("smithy-rs double-encoding cases (sigv4-smithy-rs/)", function()
		local ctxs = decode_json(V .. "/sigv4-smithy-rs/contexts.json").cases

		local function run(name, ts)
			local c = ctxs[name]
			local dir = V .. "/sigv4-smithy-rs/" .. name
			local r = parse_request(helper.read(dir .. "/request.txt"))
			local req = base_req(r, { access_key = c.credentials.access_key_id,
				secret_key = c.credentials.secret_access_key, region = c.region,
				service = c.service, amz_date = iso_to_amz(ts), normalize = c.normalize })
			req.headers = copy_headers(r.headers, "x-amz-date")
			req.headers[#req.headers + 1] = { "X-Amz-Date", req.amz_date }
			return assert(s:sign(req, true)), dir, c, req
		end

		it("double-url-encode", function()
			local st, dir, c = run("double-url-encode", ctxs["double-url-encode"].timestamp)
			assert.are.equal(helper.read(dir .. "/header-canonical-request.txt"), st.canonical_request)
			-- the upstream file ends with a newline; the real string to sign does not
			assert.are.equal((helper.read(dir .. "/header-string-to-sign.txt"):gsub("\n$", "")),
				st.string_to_sign)
			assert.are.equal(c.expected_signature, st.signature)
			local sreq = parse_request(helper.read(dir .. "/header-signed-request.txt"))
			assert.are.equal(trim(find_header(sreq.headers, "authorization")), st.authorization)
		end)

		it("double-encode-path, canonical request (2021 timestamp)", function()
			local name = "double-encode-path"
			local st, dir = run(name, ctxs[name]["timestamp_for_header-canonical-request.txt"])
			assert.are.equal(helper.read(dir .. "/header-canonical-request.txt"), st.canonical_request)
		end)

		it("double-encode-path, signed request (2015 timestamp)", function()
			local name = "double-encode-path"
			local st, dir, c, req = run(name, ctxs[name]["timestamp_for_header-signed-request.txt"])
			assert.are.equal(c.expected_signature, st.signature)
			local sreq = parse_request(helper.read(dir .. "/header-signed-request.txt"))
			assert.are.equal(trim(find_header(sreq.headers, "authorization")), st.authorization)
			local ours = copy_headers(req.headers)
			ours[#ours + 1] = { "Authorization", st.authorization }
			assert.are.same(header_set(sreq.headers), header_set(ours))
		end)
	end)

	describe("reference worked examples (bedrock-runtime.md)", function()
		local HOST = "bedrock-runtime.us-east-1.amazonaws.com"

		it("§3.1 signing-key chain", function()
			local kdate = core.hmac_sha256("AWS4" .. SECRET, "20150830")
			local kregion = core.hmac_sha256(kdate, "us-east-1")
			local kservice = core.hmac_sha256(kregion, "bedrock")
			local ksigning = core.hmac_sha256(kservice, "aws4_request")
			assert.are.equal("0138c7a6cbd60aa727b2f653a522567439dfb9f3e72b21f9b25941a42f04a7cd", tohex(kdate))
			assert.are.equal("f33d5808504bf34812e5fade63308b424b244c59189be2a591dd2282c7cb563f", tohex(kregion))
			assert.are.equal("54b62ecea46508249c6937cf2a57d49c8a194476d2b3a89f4bef8fc54cc4d62b", tohex(kservice))
			assert.are.equal("90e694a0eeb93605dc6a1e798b98fe0e790776a911d2494317b06246c599ba53", tohex(ksigning))
			assert.are.equal(tohex(ksigning),
				tohex(s:signing_key(SECRET, "20150830", "us-east-1", "bedrock")))
		end)

		local function breq(t)
			t.access_key, t.secret_key, t.service = AKID, SECRET, "bedrock"
			t.region = t.region or "us-east-1"
			t.amz_date = AMZ
			return t
		end

		local converse_body = '{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}'
		local invoke_body = '{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}'
		local profile = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
		local job = "arn:aws:bedrock:us-west-2:123456789012:async-invoke/abcdef012345"

		local examples = {
			{
				name = "§12.1 Converse, plain model id",
				req = function() return breq {
					method = "POST",
					path = "/model/" .. core.uri_encode("anthropic.claude-3-haiku-20240307-v1:0") .. "/converse",
					headers = { { "content-type", "application/json" }, { "host", HOST },
						{ "x-amz-date", AMZ } },
					body = converse_body } end,
				creq = "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\ncontent-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54",
				sts_hash = "9f2732f2bdf9f81c6c9d30d5698d3e9b881190fe9135b95df0c5aef4e77e39be",
				sig = "19f9ff5f31b96d4983cc87f7191e49e8c39475e434ea6b9d581028226bdc060c",
				sh = "content-type;host;x-amz-date",
				js = { "content-type;host;x-amz-content-sha256;x-amz-date",
					"69434268ef95d72ba43d31e0047e54844e603abf760c16fb7f60c29a3506cdd6",
					"b198e4befe1c937987b35a9fb1366502b48853d1da53142f867e0be785ec1d8f" },
			},
			{
				name = "§12.2 InvokeModel, inference-profile ARN, with Accept",
				req = function() return breq {
					method = "POST",
					path = "/model/" .. core.uri_encode(profile) .. "/invoke",
					headers = { { "accept", "application/json" }, { "content-type", "application/json" },
						{ "host", HOST }, { "x-amz-date", AMZ } },
					body = invoke_body } end,
				creq = "POST\n/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus.anthropic.claude-3-haiku-20240307-v1%253A0/invoke\n\naccept:application/json\ncontent-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20150830T123600Z\n\naccept;content-type;host;x-amz-date\n4ce463b5c3d9ec921b15bafe17cf28cc4d188c93bf720c68e1dee3905c9fd0f8",
				sts_hash = "be486674c119a64b1f23523358c15f2ea6d45e1c231d746b3f8760bff4275fe9",
				sig = "470dc11ce1c590c1764f4b259e730970d5cb9f488fcde1179e930a16c505180c",
				sh = "accept;content-type;host;x-amz-date",
				js = { "accept;content-type;host;x-amz-content-sha256;x-amz-date",
					"9851215d15718a74ae293f8c9cd1375a829507560e8cca5340e2f2a4cfec82da",
					"3b83428c6ca47d02492780b85fc5a7b8cd4150cdd9962b7c5719e2d24158b514" },
			},
			{
				name = "§12.3 ListAsyncInvokes, query string",
				req = function() return breq {
					method = "GET", path = "/async-invoke",
					query = "maxResults=10&statusEquals=Completed&nextToken=tok%2Fen%2B%3D&submitTimeAfter=2024-01-02T03%3A04%3A05Z",
					headers = { { "host", HOST }, { "x-amz-date", AMZ } } } end,
				creq = "GET\n/async-invoke\nmaxResults=10&nextToken=tok%2Fen%2B%3D&statusEquals=Completed&submitTimeAfter=2024-01-02T03%3A04%3A05Z\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				sts_hash = "547183463a4903f27865a95929a8e310b7a3e3b0a606638f22900954787af352",
				sig = "45b15ab51fb90fe5f18131a5afc6e897ebeb2281e518ade2b5469ccd3fc4e3d0",
				sh = "host;x-amz-date",
				js = { "host;x-amz-content-sha256;x-amz-date",
					"cac6deef5664a3747032143d51b1ccc263512fe6b6bacc5c3d4dc56c447b7504",
					"40d337bb75163e361312009312608c7ee104d69414008dc0722ecc7b85060865" },
			},
			{
				name = "§12.4 GetAsyncInvoke, us-west-2, session token",
				req = function() return breq {
					method = "GET", region = "us-west-2",
					path = "/async-invoke/" .. core.uri_encode(job),
					session_token = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN",
					headers = { { "host", "bedrock-runtime.us-west-2.amazonaws.com" }, { "x-amz-date", AMZ },
						{ "x-amz-security-token", "FQoGZXIvYXdzEXAMPLESESSIONTOKEN" } } } end,
				creq = "GET\n/async-invoke/arn%253Aaws%253Abedrock%253Aus-west-2%253A123456789012%253Aasync-invoke%252Fabcdef012345\n\nhost:bedrock-runtime.us-west-2.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:FQoGZXIvYXdzEXAMPLESESSIONTOKEN\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				sts_hash = "6ecdffff32bc14d96f2121cac697002d263621fc52674cc497d8111dd77e2f95",
				sig = "643e452389f6cd028a016167f30f39954903892dce482e6294b7d01934903610",
				sh = "host;x-amz-date;x-amz-security-token",
				js = { "host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
					"003b28e6e19ed1389827aaeae2a3624e1905f76d5509295e36298941507a66f2",
					"eec2c1dc4d115448cfe1ef738c36f2580e65d0196c6e807e3ff02d82094a9bdf" },
			},
		}

		for _, ex in ipairs(examples) do
			it(ex.name, function()
				local req = ex.req()
				local st = assert(s:sign(req, true))
				assert.are.equal(ex.creq, st.canonical_request)
				local scope = "20150830/" .. req.region .. "/bedrock/aws4_request"
				assert.are.equal("AWS4-HMAC-SHA256\n" .. AMZ .. "\n" .. scope .. "\n" .. ex.sts_hash,
					st.string_to_sign)
				assert.are.equal(ex.sig, st.signature)
				assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" .. scope ..
					", SignedHeaders=" .. ex.sh .. ", Signature=" .. ex.sig, st.authorization)
			end)

			it(ex.name .. ", JS SDK form (§12.5, x-amz-content-sha256)", function()
				local req = ex.req()
				req.headers[#req.headers + 1] = { "x-amz-content-sha256", core.sha256_hex(req.body or "") }
				local st = assert(s:sign(req, true))
				local sh, sts_hash, sig = unpack(ex.js)
				assert.are.equal(sh, st.signed_headers)
				assert.are.equal(sts_hash, st.string_to_sign:match("([0-9a-f]+)$"))
				assert.are.equal(sig, st.signature)
			end)
		end

		it("§6 path-label encoding table", function()
			assert.are.equal("anthropic.claude-3-haiku-20240307-v1%3A0",
				core.uri_encode("anthropic.claude-3-haiku-20240307-v1:0"))
			assert.are.equal("arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0",
				core.uri_encode(profile))
			assert.are.equal("a%20b%2Fc%3Fd%23e%25f%2Bg%3Dh~i_j.k-l%3Am%40n%21o%24p%26q%27r%28s%29t%2Au%2Cv%3Bw",
				core.uri_encode("a b/c?d#e%f+g=h~i_j.k-l:m@n!o$p&q'r(s)t*u,v;w"))
			assert.are.equal("/a%20b/c", core.uri_encode("/a b/c", true))
			assert.are.equal("%2Fa%20b%2Fc", core.uri_encode("/a b/c"))
			assert.are.equal("", core.uri_encode(""))
			assert.are.equal("%E1%88%B4%00", core.uri_encode("\225\136\180\0"))
			local long = string.rep(":", 1000)
			assert.are.equal(string.rep("%3A", 1000), core.uri_encode(long))
		end)

		it("§11.1 bidirectional stream: seed request and three chained frames", function()
			local req = breq {
				method = "POST",
				path = "/model/" .. core.uri_encode("amazon.nova-sonic-v1:0") .. "/invoke-with-bidirectional-stream",
				headers = { { "content-type", "application/vnd.amazon.eventstream" }, { "host", HOST },
					{ "x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS" }, { "x-amz-date", AMZ } },
			}
			local st = assert(s:sign(req, true))
			assert.are.equal("POST\n/model/amazon.nova-sonic-v1%253A0/invoke-with-bidirectional-stream\n\ncontent-type:application/vnd.amazon.eventstream\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-EVENTS\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-content-sha256;x-amz-date\nSTREAMING-AWS4-HMAC-SHA256-EVENTS",
				st.canonical_request)
			assert.are.equal("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/bedrock/aws4_request\n8760a81d985322d9aabfbccc87746d05093f1849dbc5ee378ba939d3a329008b",
				st.string_to_sign)
			assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=21574fa4e60facbdf65f9248ff46d4fc0d675c0d74a00c2c234795fef364dbbb",
				st.authorization)
			-- payload_hash given explicitly gives the same signature
			req.payload_hash = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
			local _, sig2 = s:sign(req)
			assert.are.equal(st.signature, sig2)

			local frames = {
				"000000e200000043d8e35bfc053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e6174757265060020bf4aa7d1ba3a5257a83f8bacfe664810f490caecedb0d1e34e5849947c9771f90000008f0000004bb79a60320b3a6576656e742d747970650700056368756e6b0d3a6d6573736167652d747970650700056576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b226279746573223a2265794a6c646d56756443493665794a7a5a584e7a6157397555335268636e51694f6e74396658303d227d2e4b83b98758437a",
				"000000de00000043bc320e7b053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e6174757265060020b8e149adc35a2119422cc246b4981d3a27366e7a0eb3063743df6011e67f606c0000008b0000004b421ac6f20b3a6576656e742d747970650700056368756e6b0d3a6d6573736167652d747970650700056576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b226279746573223a2265794a6c646d56756443493665794a7a5a584e7a615739755257356b496a703766583139227d78d00e621eace75d",
				"0000005300000043f5447a58053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e6174757265060020062ff5e2c2d44874865f70e7d371bd6e9e4cc63468f2e55c5ae46fb979983337a4b5edfa",
			}
			local expected = {
				"bf4aa7d1ba3a5257a83f8bacfe664810f490caecedb0d1e34e5849947c9771f9",
				"b8e149adc35a2119422cc246b4981d3a27366e7a0eb3063743df6011e67f606c",
				"062ff5e2c2d44874865f70e7d371bd6e9e4cc63468f2e55c5ae46fb979983337",
			}
			local params = { access_key = AKID, secret_key = SECRET, region = "us-east-1", service = "bedrock" }
			local prior = st.signature
			for i, fh in ipairs(frames) do
				local f = fromhex(fh)
				local payload = f:sub(12 + 67 + 1, #f - 4)
				local raw, hex, dbg = s:sign_event(params, prior, 1440938160000, payload, nil, true)
				assert.are.equal(expected[i], hex)
				assert.are.equal(f:sub(48, 79), raw)              -- the :chunk-signature bytes
				assert.are.equal(f:sub(13, 27), dbg.date_header)  -- the :date header bytes
				assert.are.equal("af2109ab9d123626ffc779633a3ac6979dbf0077638d8c5269df6034c583c4e4",
					core.sha256_hex(dbg.date_header))
				prior = hex
			end
		end)
	end)

	describe("event signing vectors (eventstream-signing.json)", function()
		local doc = decode_json(V .. "/eventstream-signing.json")
		local byid = {}
		for _, v in ipairs(doc.vectors) do byid[v.id] = v end

		local function params(v)
			return { access_key = v.credentials.access_key_id, secret_key = v.credentials.secret_access_key,
				region = v.region, service = v.service }
		end

		it("has the 5 vector sets", function()
			assert.are.equal(5, #doc.vectors)
		end)

		it("aws-c-auth chain: seed request, A, B, C and the final empty frame", function()
			local v = byid["aws-c-auth-sigv4-event-signing-chain"]
			local ir = v.initial_request
			local p = params(v)
			local req = { method = ir.method, path = ir.path, access_key = p.access_key,
				secret_key = p.secret_key, region = v.region, service = v.service,
				amz_date = iso_to_amz(ir.timestamp), normalize = ir.normalize_path, headers = {} }
			local names = {}
			for k in pairs(ir.headers) do names[#names + 1] = k end
			table.sort(names)
			for _, k in ipairs(names) do req.headers[#req.headers + 1] = { k, ir.headers[k] } end
			req.headers[#req.headers + 1] = { "X-Amz-Date", req.amz_date }
			local auth, sig = s:sign(req)
			assert.are.equal(ir.expected.authorization, auth)
			assert.are.equal(ir.expected.signature, sig)
			local prior = sig
			assert.are.equal(4, #v.events)
			for _, ev in ipairs(v.events) do
				local raw, hex, dbg = s:sign_event(p, prior, ev.date_header_ms, fromhex(ev.payload_hex), nil, true)
				assert.are.equal(ev.expected.signature, hex)
				assert.are.equal(fromhex(ev.expected.signature), raw)
				assert.are.equal(ev.derived.string_to_sign, dbg.string_to_sign)
				assert.are.equal(ev.derived.date_header_hex, tohex(dbg.date_header))
				prior = hex
			end
		end)

		it("aws-sdk-go chunk signer: raw header bytes", function()
			local v = byid["aws-sdk-go-stream-chunk-signer"]
			local prior = v.seed_signature
			for _, ev in ipairs(v.events) do
				local _, hex, dbg = s:sign_event(params(v), prior, fromhex(ev.headers_bytes_hex),
					fromhex(ev.payload_hex), iso_to_amz(ev.timestamp), true)
				assert.are.equal(ev.expected.signature, hex)
				assert.are.equal(ev.derived.string_to_sign, dbg.string_to_sign)
				prior = hex
			end
		end)

		it("ruby/js: empty prior signature, :date that differs from the signing time", function()
			local v = byid["ruby-js-sign-event-empty-prior-signature"]
			local ev = v.events[1]
			-- signing time and :date value given separately
			local raw, hex, dbg = s:sign_event(params(v), "", ev.expected.date_header_value_ms,
				fromhex(ev.payload_hex), iso_to_amz(ev.timestamp), true)
			assert.are.equal(ev.expected.signature, hex)
			assert.are.equal(ev.expected.chunk_signature_header_base64, base64(raw))
			assert.are.equal(ev.derived.string_to_sign, dbg.string_to_sign)
			assert.are.equal(ev.headers_bytes_hex, tohex(dbg.date_header))
			-- or the raw :date header bytes
			local _, hex2 = s:sign_event(params(v), nil, fromhex(ev.headers_bytes_hex),
				fromhex(ev.payload_hex), iso_to_amz(ev.timestamp))
			assert.are.equal(ev.expected.signature, hex2)
		end)

		it("smithy-rs string to sign", function()
			local v = byid["smithy-rs-event-string-to-sign"]
			local ev = v.events[1]
			local _, hex, dbg = s:sign_event(params(v), ev.prior_signature, ev.date_header_ms,
				fromhex(ev.derived.inner_message_hex), nil, true)
			assert.are.equal(ev.expected.string_to_sign, dbg.string_to_sign)
			assert.are.equal(ev.derived.date_header_hex, tohex(dbg.date_header))
			assert.are.equal(ev.derived.signature, hex)
		end)

		it("java day rollover: each event signs with its own date", function()
			local v = byid["java-event-signature-day-rollover"]
			local ir = v.initial_request
			local p = params(v)
			local amz = iso_to_amz(ir.timestamp)
			local st = assert(s:sign({ method = ir.method, path = "/", access_key = p.access_key,
				secret_key = p.secret_key, region = v.region, service = v.service, amz_date = amz,
				headers = { { "host", "localhost:8080" },
					{ "x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS" },
					{ "x-amz-date", amz } } }, true))
			assert.are.equal(ir.derived.canonical_request, st.canonical_request)
			assert.are.equal(ir.derived.signature, st.signature)
			local prior = st.signature
			for _, ev in ipairs(v.events) do
				local raw, hex, dbg = s:sign_event(p, prior, ev.date_header_ms, fromhex(ev.payload_hex), nil, true)
				assert.are.equal(ev.derived.signature, hex)
				if ev.expected.chunk_signature_header_base64 then
					assert.are.equal(ev.expected.chunk_signature_header_base64, base64(raw))
				end
				local day = iso_to_amz(ev.timestamp):sub(1, 8)
				assert.truthy(dbg.string_to_sign:find("\n" .. day .. "/us-west-2/name/aws4_request\n", 1, true))
				prior = hex
			end
		end)
	end)

	describe("API and errors", function()
		local function good()
			return {
				method = "GET", path = "/", access_key = AKID, secret_key = SECRET,
				region = "us-east-1", service = "service", amz_date = AMZ,
				headers = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", AMZ } },
			}
		end

		it("signs get-vanilla through the fast path", function()
			local auth, sig, sh = s:sign(good())
			assert.are.equal("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", sig)
			assert.are.equal("host;x-amz-date", sh)
			assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=" .. sig, auth)
		end)

		it("bad amz_date -> nil, err, BAD_DATE", function()
			for _, d in ipairs({ "2015-08-30T12:36:00Z", "20150830T123600", "20151330T123600Z",
				"20150830T253600Z", "20150830T123600Z ", "", "20150830x123600Z" }) do
				local r = good()
				r.amz_date = d
				local ok, err, code = s:sign(r)
				assert.is_nil(ok)
				assert.are.equal("string", type(err))
				assert.are.equal("BAD_DATE", code)
				ok, err, code = s:presign(r)
				assert.is_nil(ok)
				assert.are.equal("string", type(err))
				assert.are.equal("BAD_DATE", code)
			end
			local ok, _, code = s:sign_event({ access_key = AKID, secret_key = SECRET, region = "r",
				service = "s" }, "", "hdr", "", "2015")
			assert.is_nil(ok)
			assert.are.equal("BAD_DATE", code)
		end)

		it("input errors -> nil, err, CODE", function()
			local r = good()
			r.headers = { { "X-Amz-Date", AMZ } }
			local ok, _, code = s:sign(r)
			assert.is_nil(ok); assert.are.equal("BAD_HEADER", code)
			r = good(); r.headers[3] = { "", "x" }
			ok, _, code = s:sign(r)
			assert.is_nil(ok); assert.are.equal("BAD_HEADER", code)
			r = good(); r.headers[3] = { "bad name", "x" }
			ok, _, code = s:sign(r)
			assert.is_nil(ok); assert.are.equal("BAD_HEADER", code)
			r = good(); r.path = "relative"
			ok, _, code = s:sign(r)
			assert.is_nil(ok); assert.are.equal("BAD_PATH", code)
			r = good(); r.path = "/a?b=c"
			ok, _, code = s:sign(r)
			assert.is_nil(ok); assert.are.equal("BAD_PATH", code)
			r = good(); r.region = ""
			ok, _, code = s:sign(r)
			assert.is_nil(ok); assert.are.equal("INVAL", code)
			r = good(); r.expires = 0
			ok, _, code = s:presign(r)
			assert.is_nil(ok); assert.are.equal("RANGE", code)
			r.expires = 604801
			ok, _, code = s:presign(r)
			assert.is_nil(ok); assert.are.equal("RANGE", code)
			r.expires = 604800
			assert.truthy(s:presign(r))
		end)

		it("missing or mistyped fields raise argument errors", function()
			for _, f in ipairs({ "method", "path", "access_key", "secret_key", "region", "service",
				"amz_date", "headers" }) do
				local r = good()
				r[f] = nil
				local ok, err = pcall(s.sign, s, r)
				assert.is_false(ok)
				assert.truthy(tostring(err):find(f, 1, true), err)
			end
			local bad = {
				{ "method", 1 }, { "body", {} }, { "query", true }, { "normalize", "yes" },
				{ "sign_token", 0 }, { "headers", "host" }, { "payload_hash", 5 },
			}
			for _, b in ipairs(bad) do
				local r = good()
				r[b[1]] = b[2]
				local ok, err = pcall(s.sign, s, r)
				assert.is_false(ok)
				assert.truthy(tostring(err):find(b[1], 1, true), err)
			end
			local r = good(); r.headers[3] = "x"
			assert.has_error(function() s:sign(r) end)
			r = good(); r.headers[3] = { "x", 1 }
			assert.has_error(function() s:sign(r) end)
			r = good(); r.expires = 1.5
			assert.has_error(function() s:presign(r) end)
			r = good(); r.access_key = "AK\0ID"
			assert.has_error(function() s:sign(r) end)
			assert.has_error(function() s:sign() end)
			assert.has_error(function() s.sign({}, good()) end)
			local p = { access_key = AKID, secret_key = SECRET, region = "r", service = "s" }
			assert.has_error(function() s:sign_event(p, "", {}, "") end)
			assert.has_error(function() s:sign_event(p, "", 1.5, "") end)
			assert.has_error(function() s:sign_event(p, "", "rawhdr", "") end)  -- needs amz_date
			assert.has_error(function() s:sign_event(nil, "", 0, "") end)
			assert.has_error(function() s:sign_event({ access_key = AKID }, "", 0, "") end)
		end)

		it("key cache: same key on repeat, new key when region/date/service/secret change", function()
			local k1 = s:signing_key(SECRET, "20150830", "us-east-1", "bedrock")
			assert.are.equal(32, #k1)
			for _ = 1, 3 do
				assert.are.equal(k1, s:signing_key(SECRET, "20150830", "us-east-1", "bedrock"))
			end
			local others = {
				s:signing_key(SECRET, "20150830", "us-west-2", "bedrock"),
				s:signing_key(SECRET, "20150831", "us-east-1", "bedrock"),
				s:signing_key(SECRET, "20150830", "us-east-1", "service"),
				s:signing_key(SECRET .. "x", "20150830", "us-east-1", "bedrock"),
				s:signing_key(SECRET, "20150830", "us-east-", "1bedrock"),  -- same bytes, other split
			}
			for _, k in ipairs(others) do assert.are_not.equal(k1, k) end
			-- more keys than cache slots, then back: still right
			for i = 1, 10 do s:signing_key(SECRET, "2015083" .. (i % 10), "r" .. i, "bedrock") end
			assert.are.equal(k1, s:signing_key(SECRET, "20150830", "us-east-1", "bedrock"))
			-- a secret longer than the HMAC block (hashed first); checked with Python's hmac
			assert.are.equal("4329211a0dd4ad415a5e61b8f8ffc0b50694d42178e98ffaed9a91c72f8442fb",
				tohex(s:signing_key(string.rep("x", 70), "20150830", "us-east-1", "bedrock")))
			-- a fresh signer (cold cache) agrees
			local s2 = core.signer()
			assert.are.equal(k1, s2:signing_key(SECRET, "20150830", "us-east-1", "bedrock"))
			s2:close()
			local _, _, code = s:signing_key(SECRET, "2015083", "us-east-1", "bedrock")
			assert.are.equal("INVAL", code)
		end)

		it("signatures agree across cache hits, misses and interleaved keys", function()
			local r = good()
			local _, sig = s:sign(r)
			local r2 = good(); r2.region = "us-west-2"
			local _, sig2 = s:sign(r2)
			assert.are_not.equal(sig, sig2)
			local r3 = good(); r3.amz_date = "20150831T000000Z"; r3.headers[2][2] = r3.amz_date
			local _, sig3 = s:sign(r3)
			assert.are_not.equal(sig, sig3)
			for _ = 1, 3 do
				assert.are.equal(sig, select(2, s:sign(r)))
				assert.are.equal(sig2, select(2, s:sign(r2)))
				assert.are.equal(sig3, select(2, s:sign(r3)))
			end
			local s2 = core.signer()
			assert.are.equal(sig2, select(2, s2:sign(r2)))
			s2:close()
		end)

		it("sign_token=false leaves a sent token out of the signature", function()
			local r = good()
			local _, plain = s:sign(r)
			r.session_token = "TOKEN"
			r.headers[3] = { "X-Amz-Security-Token", "TOKEN" }
			local _, signed, sh = s:sign(r)
			assert.are.equal("host;x-amz-date;x-amz-security-token", sh)
			r.sign_token = false
			local _, unsigned, sh2 = s:sign(r)
			assert.are.equal("host;x-amz-date", sh2)
			assert.are.equal(plain, unsigned)
			assert.are_not.equal(signed, unsigned)
		end)

		it("presign with a token: signed, or appended unsigned", function()
			local r = good()
			r.headers = { { "Host", "example.amazonaws.com" } }
			r.session_token = "a/b+c="
			local q = s:presign(r)
			assert.truthy(q:find("X-Amz-Security-Token=a%2Fb%2Bc%3D&X-Amz-SignedHeaders=host&X-Amz-Signature=", 1, true))
			r.sign_token = false
			local st = s:presign(r, true)
			assert.falsy(st.canonical_request:find("Security-Token", 1, true))
			assert.truthy(st.query:find("&X-Amz-Security-Token=a%2Fb%2Bc%3D&X-Amz-Signature=" .. st.signature, 1, true))
			assert.are.equal(3600, tonumber(st.query:match("X%-Amz%-Expires=(%d+)")))
		end)

		it("canonical query: decode then encode, sort by key then value", function()
			local r = good()
			r.query = "b=2&a=%7e+x&a=1&c&&%41=%zz&d=x=y"
			local st = s:sign(r, true)
			assert.are.equal("A=%25zz&a=1&a=~%2Bx&b=2&c=&d=x%3Dy", split_lines(st.canonical_request)[3])
		end)

		it("path normalisation on and off", function()
			local cases = {
				{ "/a/./b/../c//d/", true, "/a/c/d/" },
				{ "/a/./b/../c//d/", false, "/a/./b/../c//d/" },
				{ "/../..", true, "/" },
				{ "", true, "/" },
				{ "/a%2Fb", true, "/a%252Fb" },
				{ "/a b", false, "/a%20b" },
			}
			for _, c in ipairs(cases) do
				local r = good()
				r.path, r.normalize = c[1], c[2]
				local st = assert(s:sign(r, true))
				assert.are.equal(c[3], split_lines(st.canonical_request)[2])
			end
		end)

		it("header canonicalisation: case, trim, folding, repeats, many headers", function()
			local r = good()
			for i = 1, 40 do r.headers[#r.headers + 1] = { string.format("X-H%02d", 41 - i), " v \t " .. i .. "  " } end
			r.headers[#r.headers + 1] = { "x-h01", "again" }
			local st = assert(s:sign(r, true))
			local lines = split_lines(st.canonical_request)
			assert.are.equal("x-h01:v 40,again", lines[6])
			assert.are.equal("x-h40:v 1", lines[45])
		end)

		it("amz_date, sha256_hex, hmac_sha256 helpers", function()
			assert.are.equal("20150830T123600Z", core.amz_date(1440938160))
			assert.are.equal("20150830T123600Z", core.amz_date(1440938160.9))
			assert.are.equal("19700101T000000Z", core.amz_date(0))
			assert.are.equal("19691231T235959Z", core.amz_date(-1))
			assert.are.equal("20000229T000000Z", core.amz_date(951782400))
			assert.are.equal("99991231T235959Z", core.amz_date(253402300799))
			local ok, _, code = core.amz_date(253402300800)
			assert.is_nil(ok); assert.are.equal("RANGE", code)
			assert.has_error(function() core.amz_date("x") end)
			assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.sha256_hex(""))
			-- RFC 4231 test cases 2 and 6 (short key; key longer than the block)
			assert.are.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
				tohex(core.hmac_sha256("Jefe", "what do ya want for nothing?")))
			assert.are.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
				tohex(core.hmac_sha256(string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First")))
		end)

		it("close is idempotent; a closed signer refuses work", function()
			local s2 = core.signer()
			assert.truthy(tostring(s2):find("bedrock.Signer", 1, true))
			s2:close()
			s2:close()
			assert.truthy(tostring(s2):find("closed", 1, true))
			assert.has_error(function() s2:sign(good()) end)
			local mt = getmetatable(s2)
			assert.are.equal("function", type(mt.__gc))
			assert.are.equal("function", type(mt.__close))
			local s3 = core.signer()
			mt.__close(s3)
			mt.__gc(s3)          -- one idempotent close behind both
			s3:close()
			assert.has_error(function() s3:presign(good()) end)
			assert.are.equal("bedrock.Signer", mt.__name)
		end)

		it("reuses its buffers: a big request after small ones, then small again", function()
			local r = good()
			r.body = string.rep("x", 100000)
			r.path = "/" .. string.rep("seg/", 2000)
			r.query = string.rep("k=v&", 3000)
			local st = assert(s:sign(r, true))
			assert.are.equal(core.sha256_hex(r.body), st.canonical_request:match("([0-9a-f]+)$"))
			assert.are.equal("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
				select(2, s:sign(good())))
		end)
	end)
end)
