-- luacheck: no max line length
-- The client's request building, signing and response/error parsing without a network:
-- the reference's worked examples (§6, §12, §13, §9.1) and the option plumbing.
local helper = require "spec.helper" -- luacheck: ignore 211
local bedrock = require "bedrock"
local client_mod = require "bedrock.client"
local errors = require "bedrock.errors"
local operations = require "bedrock.operations"
local json = bedrock.json

local TIME = 1440938160
local AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
local has_signer = client_mod.core and client_mod.core.signer

local function mk(extra)
	local o = { region = "us-east-1", credentials = { access_key_id = AKID, secret_access_key = SECRET },
		getenv = function() return nil end }
	for k, v in pairs(extra or {}) do o[k] = v end
	return assert(bedrock.client(o))
end

local function hmap(list)
	local t = {}
	for _, p in ipairs(list) do t[p[1]] = p[2] end
	return t
end

local function hex2bin(h)
	return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

describe("request building", function()
	if not has_signer then
		pending("bedrock.core is not built")
		return
	end

	it("§12.2: InvokeModel with an inference-profile ARN and Accept", function()
		local r = assert(mk():_build("invoke_model", { modelId =
			"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
			contentType = "application/json", accept = "application/json",
			body = '{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}' },
			{ time = TIME }))
		assert.equal("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0/invoke", r.path)
		assert.truthy(hmap(r.headers).authorization:find("SignedHeaders=accept;content-type;host;x-amz-date, " ..
			"Signature=470dc11ce1c590c1764f4b259e730970d5cb9f488fcde1179e930a16c505180c", 1, true))
	end)

	it("§12.3: ListAsyncInvokes query", function()
		local r = assert(mk():_build("list_async_invokes", { maxResults = 10, statusEquals = "Completed",
			nextToken = "tok/en+=", submitTimeAfter = "2024-01-02T03:04:05Z" }, { time = TIME }))
		assert.equal("https://bedrock-runtime.us-east-1.amazonaws.com/async-invoke?maxResults=10&nextToken=tok%2Fen%2B%3D&statusEquals=Completed&submitTimeAfter=2024-01-02T03%3A04%3A05Z", r.url)
		assert.is_nil(r.body)
		assert.is_nil(hmap(r.headers)["content-type"])
		assert.truthy(hmap(r.headers).authorization:find(
			"SignedHeaders=host;x-amz-date, Signature=45b15ab51fb90fe5f18131a5afc6e897ebeb2281e518ade2b5469ccd3fc4e3d0", 1, true))
	end)

	it("§12.4: GetAsyncInvoke in us-west-2 with a session token", function()
		local c = mk{ region = "us-west-2", credentials = { access_key_id = AKID, secret_access_key = SECRET,
			session_token = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN" } }
		local r = assert(c:_build("get_async_invoke", {
			invocationArn = "arn:aws:bedrock:us-west-2:123456789012:async-invoke/abcdef012345" }, { time = TIME }))
		assert.equal("/async-invoke/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Aasync-invoke%2Fabcdef012345", r.path)
		local h = hmap(r.headers)
		assert.equal("FQoGZXIvYXdzEXAMPLESESSIONTOKEN", h["x-amz-security-token"])
		assert.truthy(h.authorization:find("SignedHeaders=host;x-amz-date;x-amz-security-token, " ..
			"Signature=643e452389f6cd028a016167f30f39954903892dce482e6294b7d01934903610", 1, true))
	end)

	it("§6: encodes every byte outside the unreserved set in labels", function()
		local r = assert(mk():_build("invoke_model", {
			modelId = "a b/c?d#e%f+g=h~i_j.k-l:m@n!o$p&q'r(s)t*u,v;w", body = "{}" }, { time = TIME }))
		assert.equal("/model/a%20b%2Fc%3Fd%23e%25f%2Bg%3Dh~i_j.k-l%3Am%40n%21o%24p%26q%27r%28s%29t%2Au%2Cv%3Bw/invoke", r.path)
		r = assert(mk():_build("apply_guardrail", { guardrailIdentifier =
			"arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123def456", guardrailVersion = "1",
			source = "INPUT", content = { { text = { text = "hello" } } } }, { time = TIME }))
		assert.equal("/guardrail/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aguardrail%2Fabc123def456/version/1/apply", r.path)
		assert.same(json.decode('{"source":"INPUT","content":[{"text":{"text":"hello"}}]}'), json.decode(r.body))
	end)

	it("refuses '.', '..' and empty labels", function()
		for _, id in ipairs{ ".", "..", "" } do
			local r, err = mk():_build("converse", { modelId = id, messages = { { role = "user", content = { { text = "x" } } } } })
			assert.is_nil(r)
			assert.equal("ValidationError", err.code)
			assert.equal("modelId", err.field)
		end
	end)

	it("keeps a custom endpoint's base path and signs with the region", function()
		local c = mk{ region = "eu-west-1", endpoint = "http://localhost:9000/prefix" }
		local r = assert(c:_build("converse", { modelId = "m" }, { time = TIME }))
		assert.equal("http://localhost:9000/prefix/model/m/converse", r.url)
		assert.equal("{}", r.body)
		assert.matches("/eu%-west%-1/bedrock/aws4_request", hmap(r.headers).authorization)
		assert.equal("localhost:9000", r.host)
	end)

	it("sends only Authorization: Bearer with a token", function()
		local r = assert(mk{ credentials = { token = "tok123" } }:_build("converse", { modelId = "m" }))
		local h = hmap(r.headers)
		assert.equal("Bearer tok123", h.authorization)
		assert.is_nil(h["x-amz-date"])
	end)

	it("fills clientRequestToken with a UUIDv4 when absent, without touching the request", function()
		local req = { modelId = "amazon.nova-reel-v1:0", modelInput = { a = 1 },
			outputDataConfig = { s3OutputDataConfig = { s3Uri = "s3://b/p" } } }
		local r = assert(mk():_build("start_async_invoke", req))
		local body = json.decode(r.body)
		assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", body.clientRequestToken)
		assert.is_nil(req.clientRequestToken)
		assert.equal("amazon.nova-reel-v1:0", body.modelId)
	end)

	it("encodes a table InvokeModel body as JSON and adds no content type of its own", function()
		local r = assert(mk():_build("invoke_model", { modelId = "m", body = { prompt = "hi", n = 2 } }))
		assert.same({ prompt = "hi", n = 2 }, json.decode(r.body))
		assert.is_nil(hmap(r.headers)["content-type"])
		r = assert(mk():_build("invoke_model_with_response_stream", { modelId = "m", body = "raw",
			accept = "text/plain" }))
		assert.equal("text/plain", hmap(r.headers)["x-amzn-bedrock-accept"])
		assert.equal("raw", r.body)
	end)

	it("validates header and query members", function()
		local _, err = mk():_build("invoke_model", { modelId = "m", body = "{}", trace = "ON" })
		assert.equal("trace", err.field)
		_, err = mk():_build("list_async_invokes", { maxResults = 0 })
		assert.equal("maxResults", err.field)
		_, err = mk():_build("list_async_invokes", { submitTimeAfter = "last tuesday" })
		assert.equal("submitTimeAfter", err.field)
		_, err = mk():_build("invoke_model", { body = "{}" })
		assert.equal("modelId", err.field)
		_, err = mk():_build("invoke_model", { modelId = "m", body = "{}", contentType = "a/b\r\nX-Evil: 1" },
			{ validate = false })
		assert.equal("contentType", err.field)
	end)

	it("sends requestMetadata as the X-Amzn-Bedrock-Request-Metadata header, verbatim and signed", function()
		local md = '{"team": "orchestrator", "environment": "preview-test", "note": "é"}'
		for _, op in ipairs{ "invoke_model", "invoke_model_with_response_stream" } do
			local r = assert(mk():_build(op, { modelId = "m", body = "{}", requestMetadata = md }, { time = TIME }))
			local h = hmap(r.headers)
			assert.equal(md, h["x-amzn-bedrock-request-metadata"])
			assert.truthy(h.authorization:find("x-amzn-bedrock-request-metadata", 1, true), h.authorization)
		end
		local _, err = mk():_build("invoke_model", { modelId = "m", body = "{}", requestMetadata = { team = "x" } })
		assert.equal("requestMetadata", err.field)
		assert.matches("string", err.message)
		_, err = mk():_build("invoke_model", { modelId = "m", body = "{}", requestMetadata = ('"x"'):rep(2834) })
		assert.equal("requestMetadata", err.field)
		assert.matches("at most 8500", err.message)
		assert.truthy(mk():_build("invoke_model", { modelId = "m", body = "{}", requestMetadata = ("x"):rep(8500) }))
		_, err = mk():_build("invoke_model_with_response_stream", { modelId = "m", body = "{}",
			requestMetadata = '{"a":"b"}\r\nX-Evil: 1' }, { validate = false })
		assert.equal("requestMetadata", err.field)
		assert.matches("control characters", err.message)
	end)

	it("builds InvokeGuardrailChecks from its plan: POST /guardrail-checks/invoke, JSON body", function()
		local req = { messages = { { role = "user", content = { { text = "call 555-010-9999" } } } },
			checks = { sensitiveInformation = { entities = { { type = "PHONE" } } } } }
		local r = assert(mk():_build("invoke_guardrail_checks", req, { time = TIME }))
		assert.equal("POST", r.method)
		assert.equal("/guardrail-checks/invoke", r.path)
		assert.equal("application/json", hmap(r.headers)["content-type"])
		assert.same(req, json.decode(r.body))
		assert.equal("function", type(mk().invoke_guardrail_checks))
		local _, err = mk():_build("InvokeGuardrailChecks", { messages = req.messages })
		assert.equal("checks", err.field)
	end)

	it("never makes a request for bad input (fake transport)", function()
		local calls = 0
		local c = mk{ transport = { request = function() calls = calls + 1 end, open = function() calls = calls + 1 end } }
		local res, err = c:converse{ modelId = "m", messages = { { role = "user", content = { { text = "x", image = { format = "png", source = { bytes = "x" } } } } } } }
		assert.is_nil(res)
		assert.equal("ValidationError", err.code)
		assert.equal("messages[1].content[1]", err.field)
		assert.matches("^ValidationError: messages%[1%]%.content%[1%]: ", tostring(err))
		assert.equal(0, calls)
	end)

	it("retries through the policy with the injected clock (fake transport)", function()
		local n, slept = 0, {}
		local c = mk{ retry = { sleep = function(d) slept[#slept + 1] = d end, random = function() return 1 end },
			transport = { request = function()
				n = n + 1
				if n < 3 then
					return { status = 429, headers = { ["x-amzn-errortype"] = "ThrottlingException:http://x/" },
						body = '{"message":"slow down"}' }
				end
				return { status = 200, headers = { ["x-amzn-requestid"] = "rid" },
					body = '{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn",' ..
						'"usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1}}' }
			end } }
		local res, meta = c:converse{ modelId = "m", messages = { { role = "user", content = { { text = "x" } } } } }
		assert.equal("ok", res.output.message.content[1].text)
		assert.equal(3, meta.attempts)
		assert.equal("rid", meta.request_id)
		assert.same({ 1, 2 }, slept)
		assert.equal(490 + 5, c.policy.tokens) -- two retries cost 10, the success refunds the last cost
	end)
end)

describe("bidirectional stream framing (§11)", function()
	if not has_signer then
		pending("bedrock.core is not built")
		return
	end

	it("reproduces the reference's seed signature and the three signed frames byte for byte", function()
		local frames, opened = {}, nil
		local fake = { open = function(_, req)
			opened = req
			return { response = function() return 200, {} end,
				send = function(_, b) frames[#frames + 1] = b return true end,
				close_input = function() frames[#frames + 1] = "<END>" return true end,
				read = function() return nil end, close = function() end }
		end }
		local c = mk{ transport = fake }
		local s = assert(c:invoke_model_with_bidirectional_stream({ modelId = "amazon.nova-sonic-v1:0",
			body = { { chunk = { bytes = '{"event":{"sessionStart":{}}}' } } } },
			{ time = TIME, clock = function() return TIME end }))
		local h = hmap(opened.headers)
		assert.equal("application/vnd.amazon.eventstream", h["content-type"])
		assert.equal("STREAMING-AWS4-HMAC-SHA256-EVENTS", h["x-amz-content-sha256"])
		assert.truthy(h.authorization:find("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, " ..
			"Signature=21574fa4e60facbdf65f9248ff46d4fc0d675c0d74a00c2c234795fef364dbbb", 1, true))
		assert.is_true(opened.body_stream)
		assert.is_true(opened.http2)
		assert(s:send('{"event":{"sessionEnd":{}}}'))
		assert(s:close_input())
		local want = {
			"000000e200000043d8e35bfc053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e6174757265060020bf4aa7d1ba3a5257a83f8bacfe664810f490caecedb0d1e34e5849947c9771f90000008f0000004bb79a60320b3a6576656e742d747970650700056368756e6b0d3a6d6573736167652d747970650700056576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b226279746573223a2265794a6c646d56756443493665794a7a5a584e7a6157397555335268636e51694f6e74396658303d227d2e4b83b98758437a",
			"000000de00000043bc320e7b053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e6174757265060020b8e149adc35a2119422cc246b4981d3a27366e7a0eb3063743df6011e67f606c0000008b0000004b421ac6f20b3a6576656e742d747970650700056368756e6b0d3a6d6573736167652d747970650700056576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b226279746573223a2265794a6c646d56756443493665794a7a5a584e7a615739755257356b496a703766583139227d78d00e621eace75d",
			"0000005300000043f5447a58053a64617465080000014f7e9b6f80103a6368756e6b2d7369676e6174757265060020062ff5e2c2d44874865f70e7d371bd6e9e4cc63468f2e55c5ae46fb979983337a4b5edfa",
		}
		assert.equal(4, #frames)
		for i = 1, 3 do assert.equal(want[i], (frames[i]:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))) end
		assert.equal("<END>", frames[4])
		local _, err = s:send("late")
		assert.equal("StreamError", err.code)
	end)

	it("validates input events and refuses bearer auth", function()
		local fake = { open = function()
			return { response = function() return 200, {} end, send = function() return true end,
				close_input = function() return true end, read = function() return nil end, close = function() end }
		end }
		local s = assert(mk{ transport = fake }:invoke_model_with_bidirectional_stream{ modelId = "m" })
		local _, err = s:send{ chunk = { bytez = "x" } }
		assert.equal("ValidationError", err.code)
		assert.equal("chunk.bytez", err.field)
		_, err = s:send{ other = {} }
		assert.equal("ValidationError", err.code)
		_, err = mk{ transport = fake, credentials = { token = "t" } }:invoke_model_with_bidirectional_stream{ modelId = "m" }
		assert.equal("NotSupported", err.code)
	end)
end)

describe("response parsing", function()
	local plan = operations.plans.Converse

	it("§13: finds the error code and message like botocore", function()
		local rows = {
			{ 429, { ["x-amzn-errortype"] = "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/" },
				'{"message":"Too many requests"}', "ThrottlingException", "Too many requests" },
			{ 400, {}, '{"__type":"com.amazonaws.bedrockruntime#ValidationException","Message":"capital M message"}',
				"ValidationException", "capital M message" },
			{ 400, {}, '{"message":"no code anywhere"}', "400", "no code anywhere" },
			{ 418, { ["x-amzn-errortype"] = "SomethingNewException:foo" }, '{"message":"new"}', "SomethingNewException", "new" },
			{ 503, {}, "<html>Service Unavailable</html>", "503", "Service Unavailable" },
			{ 400, {}, '{"code":"ValidationException","message":"lower code"}', "ValidationException", "lower code" },
			{ 424, { ["x-amzn-errortype"] = "ModelErrorException" }, '{"message":"m","originalStatusCode":500,"resourceName":"r"}',
				"ModelErrorException", "m" },
		}
		for _, r in ipairs(rows) do
			local res, err = client_mod.parse(plan, r[1], r[2], r[3])
			assert.is_nil(res)
			assert.equal(r[4], err.code)
			assert.equal(r[5], err.message)
			assert.equal(r[1], err.status)
		end
		local _, err = client_mod.parse(plan, 424, { ["x-amzn-errortype"] = "ModelErrorException",
			["x-amzn-requestid"] = "abc" }, '{"message":"m","originalStatusCode":500,"resourceName":"r"}')
		assert.equal(500, err.originalStatusCode)
		assert.equal("r", err.resourceName)
		assert.equal("abc", err.request_id)
		assert.equal("ModelErrorException (424): m [request abc]", tostring(err))
		_, err = client_mod.parse(plan, 429, { ["x-amzn-errortype"] = "ThrottlingException" }, "{}")
		assert.is_true(err.retryable)
	end)

	it("reports a body that is not JSON as SerializationError", function()
		local res, err = client_mod.parse(plan, 200, {}, "<html>")
		assert.is_nil(res)
		assert.equal("SerializationError", err.code)
	end)

	it("§9.1: maps in-stream exception and error messages", function()
		if not (client_mod.core and client_mod.core.decoder) then return pending("no decoder") end
		local dec = client_mod.core.decoder()
		dec:feed(hex2bin("000000b0000000614f5086b30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e7920746f6b656e732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227df70ae57f"))
		local e = errors.from_event(dec:next())
		assert.equal("ThrottlingException", e.code)
		assert.equal("Too many tokens, please wait before trying again.", e.message)
		dec:feed(hex2bin("0000007000000060d1425efe0b3a6572726f722d636f646507000f496e7465726e616c4661696c7572650e3a6572726f722d6d65737361676507001a416e20696e7465726e616c206572726f72206f636375727265640d3a6d6573736167652d747970650700056572726f7275252eb6"))
		e = errors.from_event(dec:next())
		assert.equal("InternalFailure", e.code)
		assert.equal("An internal error occurred", e.message)
	end)

	it("§9.2/§10.2: a stream over the reference frames, with unknown events skipped", function()
		if not (client_mod.core and client_mod.core.decoder) then return pending("no decoder") end
		local core = client_mod.core
		local frames = {
			hex2bin("0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224869227d7d1f944657"),
			assert(core.encode({ { ":event-type", 7, "futureEvent" }, { ":message-type", 7, "event" } }, '{"x":1}')),
			assert(core.encode({ { ":event-type", 7, "messageStop" }, { ":message-type", 7, "event" } },
				'{"stopReason":"end_turn","p":"abc"}')),
		}
		local s = assert(client_mod.stream_from_body(operations.plans.ConverseStream, 200, {}, table.concat(frames), 5))
		local evs = {}
		for ev in s do evs[#evs + 1] = ev end
		assert.same({ { contentBlockDelta = { contentBlockIndex = 0, delta = { text = "Hi" } } },
			{ messageStop = { stopReason = "end_turn" } } }, evs)
		local chunk = hex2bin("000000d70000004bbff9e4380b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b226279746573223a2265794a306558426c496a6f695932397564475675644639696247396a6131396b5a57783059534973496d6c755a475634496a6f774c434a6b5a5778305953493665794a306558426c496a6f69644756346446396b5a57783059534973496e526c654851694f694a4961534a3966513d3d227d4b8e9495")
		local s2 = assert(client_mod.stream_from_body(operations.plans.InvokeModelWithResponseStream, 200,
			{ ["x-amzn-bedrock-content-type"] = "application/json" }, chunk))
		assert.equal("application/json", s2.contentType)
		local ev = s2()
		assert.equal('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}', ev.chunk.bytes)
		assert.is_nil(s2())
	end)

	it("collect() joins text and tool input deltas and decodes the input once", function()
		if not (client_mod.core and client_mod.core.decoder) then return pending("no decoder") end
		local core = client_mod.core
		local function ev(t, payload)
			return assert(core.encode({ { ":event-type", 7, t }, { ":content-type", 7, "application/json" },
				{ ":message-type", 7, "event" } }, payload))
		end
		local body = table.concat{
			ev("messageStart", '{"role":"assistant"}'),
			ev("contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"Let me "}}'),
			ev("contentBlockDelta", '{"contentBlockIndex":0,"delta":{"text":"check."}}'),
			ev("contentBlockStop", '{"contentBlockIndex":0}'),
			ev("contentBlockStart", '{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"weather"}}}'),
			ev("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"toolUse":{"input":""}}}'),
			ev("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\\"city\\":\\"Pa"}}}'),
			ev("contentBlockDelta", '{"contentBlockIndex":1,"delta":{"toolUse":{"input":"ris\\",\\"days\\":[]}"}}}'),
			ev("contentBlockStop", '{"contentBlockIndex":1}'),
			ev("messageStop", '{"stopReason":"tool_use"}'),
			ev("metadata", '{"usage":{"inputTokens":5,"outputTokens":7,"totalTokens":12},"metrics":{"latencyMs":9}}'),
		}
		local s = assert(client_mod.stream_from_body(operations.plans.ConverseStream, 200, {}, body))
		local res = s:collect()
		local content = res.output.message.content
		assert.equal("Let me check.", content[1].text)
		assert.equal("Paris", content[2].toolUse.input.city)
		assert.equal(json.array_mt, getmetatable(content[2].toolUse.input.days))
		assert.equal("t1", content[2].toolUse.toolUseId)
		assert.equal("tool_use", res.stopReason)
		assert.equal(12, res.usage.totalTokens)
		assert.equal(9, res.metrics.latencyMs)
		-- the collected message can be sent back as conversation history
		local ok, err = require("bedrock.shapes").serialize(operations.plans.Converse.body,
			{ modelId = "m", messages = { { role = "user", content = { { text = "hi" } } }, res.output.message } })
		assert(ok, err)
		assert.matches('"days":[]', ok, 1, true)
	end)
end)

describe("idempotency tokens", function()
	local request = require "bedrock.request"
	it("are UUIDv4 from the CSPRNG, independent of math.random's seed", function()
		math.randomseed(7)
		local a = request.uuid4()
		math.randomseed(7)
		local b = request.uuid4()
		assert.are_not.equal(a, b)
		for _, u in ipairs{ a, b } do
			assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u)
		end
	end)

	it("are all different, across many and with every version and variant digit", function()
		local seen, variants = {}, {}
		for _ = 1, 5000 do
			local u = request.uuid4()
			assert.is_nil(seen[u])
			seen[u] = true
			assert.equal("4", u:sub(15, 15))
			variants[u:sub(20, 20)] = true
		end
		for _, v in ipairs{ "8", "9", "a", "b" } do assert.is_true(variants[v], v) end
	end)

	it("differ between a process and its forked child (needs LuaJIT's FFI for fork)", function()
		local jit_ok, ffi = pcall(require, "ffi")
		if not jit_ok then
			pending("fork() is reached through LuaJIT's FFI")
			return
		end
		pcall(ffi.cdef, "int fork(void); int waitpid(int pid, int *status, int options); void _exit(int status);")
		request.uuid4() -- the pool holds bytes now: a child must not hand out the same ones
		local path = os.tmpname()
		local pid = ffi.C.fork()
		assert.is_true(pid >= 0)
		if pid == 0 then
			local f = io.open(path, "w")
			if f then f:write(request.uuid4()); f:close() end
			ffi.C._exit(0)
		end
		ffi.C.waitpid(pid, nil, 0)
		local parent = request.uuid4()
		local f = assert(io.open(path))
		local child = f:read("*a")
		f:close()
		os.remove(path)
		assert.matches("^%x+%-", child)
		assert.are_not.equal(parent, child)
	end)
end)
