-- luacheck: no max line length
local helper = require "spec.helper" -- luacheck: ignore 211
local json = require "bedrock.json"
local shapes = require "bedrock.shapes"
local operations = require "bedrock.operations"

local plans = operations.plans

local function ser(op, req, check)
	return shapes.serialize(plans[op].body, req, check)
end

describe("generated model", function()
	local gen = dofile(".ci/gen-model.lua")

	it("the model JSON is in the form `make model` writes", function()
		local text = helper.read(gen.MODEL)
		assert(gen.canonical(text) == text,
			gen.MODEL .. " is not canonical: refresh it with `make model MODEL=path/to/service-2.json`")
	end)

	it("every file generated from the model JSON is current", function()
		local outs = gen.outputs(helper.read(gen.MODEL))
		local n = 0
		for path, want in pairs(outs) do
			n = n + 1
			assert(want == helper.read(path),
				path .. " is stale: run `lua5.4 .ci/gen-model.lua` (or `make model MODEL=…`)")
		end
		assert.is_true(n >= 1)
	end)

	it("canonical() turns botocore's file (prose, any key order) into the checked-in form", function()
		local src = [[{"version":"2.0","shapes":{"S":{"type":"string","documentation":"<p>x</p>","max":1.0}},
			"operations":{},"metadata":{"endpointPrefix":"bedrock-runtime","serviceFullName":"Gr\u00fc\u00dfe \ud83c\udf89"}}]]
		assert.equal(table.concat({
			'{',
			'  "metadata": {',
			'    "endpointPrefix": "bedrock-runtime",',
			'    "serviceFullName": "Gr\\u00fc\\u00dfe \\ud83c\\udf89"',
			'  },',
			'  "operations": {},',
			'  "shapes": {',
			'    "S": {',
			'      "max": 1.0,',
			'      "type": "string"',
			'    }',
			'  },',
			'  "version": "2.0"',
			'}', '' }, "\n"), gen.canonical(src))
		local ok, err = pcall(gen.canonical, '{"metadata":{"endpointPrefix":"bedrock"},"operations":{},"shapes":{}}')
		assert.is_false(ok)
		assert.matches("not bedrock%-runtime", err)
		ok, err = pcall(gen.canonical, '{"metadata": [1,}')
		assert.is_false(ok)
		assert.matches("at character", err)
	end)

	it("has the eleven operations as plans with snake_case methods", function()
		local names = {}
		for _, n in ipairs(operations.names) do names[#names + 1] = plans[n].method_name end
		assert.same({ "apply_guardrail", "converse", "converse_stream", "count_tokens",
			"get_async_invoke", "invoke_guardrail_checks", "invoke_model", "invoke_model_with_bidirectional_stream",
			"invoke_model_with_response_stream", "list_async_invokes", "start_async_invoke" }, names)
	end)

	it("binds members to path, query and headers from the model", function()
		local im = plans.InvokeModelWithResponseStream
		local h = {}
		for _, m in ipairs(im.headers) do h[m.member] = m.name end
		assert.equal("x-amzn-bedrock-accept", h.accept)
		assert.equal("content-type", h.contentType)
		assert.equal("x-amzn-bedrock-guardrailidentifier", h.guardrailIdentifier)
		assert.equal("blob", im.payload_kind)
		assert.equal("eventstream", im.output_payload_kind)
		local oh = {}
		for _, m in ipairs(im.output_headers) do oh[m.member] = m.name end
		assert.equal("x-amzn-bedrock-content-type", oh.contentType)
		assert.equal(7, #plans.ListAsyncInvokes.query)
		assert.equal("clientRequestToken", plans.StartAsyncInvoke.idempotency_token)
		assert.equal(2, #plans.ApplyGuardrail.labels)
		assert.equal("GET", plans.GetAsyncInvoke.http_method)
		assert.is_nil(plans.GetAsyncInvoke.body)
	end)
end)

describe("serialization", function()
	it("writes the reference's Converse body", function()
		local body = assert(ser("Converse", { modelId = "m",
			messages = { { role = "user", content = { { text = "Hi" } } } },
			inferenceConfig = { maxTokens = 16 } }))
		assert.same(json.decode('{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"inferenceConfig":{"maxTokens":16}}'),
			json.decode(body))
		assert.not_matches("modelId", body)
	end)

	it("sends {} for a POST with no body members", function()
		assert.equal("{}", ser("Converse", { modelId = "m" }))
	end)

	it("sends an empty list member as []", function()
		local body = assert(ser("Converse", { modelId = "m", inferenceConfig = { stopSequences = {} } }))
		assert.equal('{"inferenceConfig":{"stopSequences":[]}}', body)
	end)

	it("writes empty structures in unions as {}", function()
		local body = assert(ser("Converse", { modelId = "m",
			toolConfig = { tools = { { toolSpec = { name = "t", inputSchema = { json = { type = "object" } } } } },
				toolChoice = { auto = {} } } }))
		assert.matches('"toolChoice":{"auto":{}}', body, 1, true)
	end)

	it("base64-encodes blobs", function()
		local body = assert(ser("Converse", { modelId = "m", messages = { { role = "user", content = {
			{ image = { format = "png", source = { bytes = "\137PNG\r\n\26\n\0\1" } } } } } } }))
		assert.matches('"bytes":"iVBORw0KGgoAAQ=="', body, 1, true)
		local ct = assert(shapes.serialize(plans.CountTokens.body, { modelId = "m",
			input = { invokeModel = { body = '{"x":1}' } } }))
		assert.equal('{"input":{"invokeModel":{"body":"eyJ4IjoxfQ=="}}}', ct)
	end)

	it("keeps integers integers and floats exact", function()
		local body = assert(ser("Converse", { modelId = "m",
			inferenceConfig = { maxTokens = 100, temperature = 0.30000000000000004, topP = 0.1 } }))
		local cfg = body:match('"inferenceConfig":(%b{})')
		assert.matches('"maxTokens":100[,}]', cfg)
		assert.matches('"temperature":0.30000000000000004', cfg, 1, true)
		assert.matches('"topP":0.1[,}]', cfg)
		assert.equal("0.30000000000000004", json.number(0.1 + 0.2))
		assert.equal("1e+300", json.number(1e300))
		assert.equal("5", json.number(5.0))
		assert.equal("-0.5", json.number(-0.5))
		assert.equal(1 / 3, tonumber(json.number(1 / 3)))
	end)

	it("keeps documents' JSON shape (arrays, empty arrays, null, nesting)", function()
		local schema = { type = "object", properties = { tags = { type = "array", items = { type = "string" } } },
			required = json.array{ "tags" }, enum = json.empty_array, default = json.null, empty = {} }
		local body = assert(ser("Converse", { modelId = "m", toolConfig = { tools = {
			{ toolSpec = { name = "t", inputSchema = { json = schema } } } } },
			additionalModelRequestFields = { top_k = 5, list = json.array{}, nested = { { a = 1 } } } }))
		local doc = json.decode(body)
		local s = doc.toolConfig.tools[1].toolSpec.inputSchema.json
		assert.matches('"enum":[]', body, 1, true)
		assert.matches('"default":null', body, 1, true)
		assert.matches('"empty":{}', body, 1, true)
		assert.same({ "tags" }, s.required)
		assert.matches('"list":[]', body, 1, true)
		assert.matches('"nested":[{"a":1}]', body, 1, true)
	end)

	it("round-trips decoded documents unchanged (arrays keep their marker)", function()
		local text = '{"a":[],"b":{},"c":[1,2.5,"x",null,true],"d":{"e":[[]]}}'
		local v = json.decode(text)
		assert.equal(json.array_mt, getmetatable(v.a))
		assert.is_nil(getmetatable(v.b))
		local again = json.decode(assert(json.encode(v)))
		assert.same(v, again)
		assert.matches('"a":[]', json.encode(v), 1, true)
		assert.matches('"e":[[]]', json.encode(v), 1, true)
		assert.matches('"b":{}', json.encode(v), 1, true)
		if math.type then assert.equal("integer", math.type(v.c[1])) end
	end)

	it("does not take [] inside strings for arrays", function()
		local v = json.decode('{"s":"a [] b \\" [ ] c","t":[ ]}')
		assert.equal('a [] b " [ ] c', v.s)
		assert.equal(0, #v.t)
		assert.equal(json.array_mt, getmetatable(v.t))
	end)

	it("escapes strings and keeps UTF-8 raw", function()
		local body = assert(ser("Converse", { modelId = "m", messages = { { role = "user",
			content = { { text = 'é "q" \\ \n\t\1 日本' } } } } }))
		assert.matches('"text":"é \\"q\\" \\\\ \\n\\t\\u0001 日本"', body, 1, true)
	end)

	it("writes timestamps as ISO-8601", function()
		assert.equal("2023-11-14T22:13:20Z", shapes.query_time(1700000000))
		assert.equal("2024-01-02T03:04:05Z", shapes.query_time("2024-01-02T03:04:05.123Z"))
		assert.equal("2024-01-02T01:04:05Z", shapes.query_time("2024-01-02T03:04:05+02:00"))
		assert.equal("1999-12-31T23:59:59Z", shapes.query_time("1999-12-31T23:59:59Z"))
		assert.equal("2000-02-29T00:00:00Z", shapes.query_time("2000-02-29T00:00:00Z"))
		assert.is_nil(shapes.query_time("yesterday"))
	end)
end)

describe("validation", function()
	local function bad(req, field, pattern, op)
		local s, err, path = ser(op or "Converse", req)
		assert.is_nil(s)
		assert.equal(field, path)
		if pattern then assert.matches(pattern, err) end
	end

	it("names the field path of a mistyped member", function()
		bad({ modelId = "m", messages = { { role = "user", content = { { text = 5 } } } } },
			"messages[1].content[1].text", "expected a string")
	end)

	it("refuses unknown members, suggesting the right one", function()
		bad({ modelId = "m", messages = { { role = "user", content = { { txt = "x" } } } } },
			"messages[1].content[1].txt", "unknown member.*text")
		bad({ modelId = "m", inferenceConfig = { max_tokens = 5 } }, "inferenceConfig.max_tokens",
			"unknown member")
		bad({ modelId = "m", foo = 1 }, "foo", "unknown member")
	end)

	it("refuses wrong enum values", function()
		bad({ modelId = "m", messages = { { role = "developer", content = { { text = "x" } } } } },
			"messages[1].role", "user, assistant, system")
	end)

	it("refuses missing required members", function()
		bad({ modelId = "m", messages = { { content = { { text = "x" } } } } }, "messages[1].role",
			"required")
		bad({ modelId = "m", messages = { { role = "user", content = { { image = { format = "png" } } } } } },
			"messages[1].content[1].image.source", "required")
	end)

	it("refuses empty messages and empty content", function()
		bad({ modelId = "m", messages = {} }, "messages", "must not be empty")
		bad({ modelId = "m", messages = { { role = "user", content = {} } } }, "messages[1].content",
			"at least one")
	end)

	it("refuses unions with zero or two members", function()
		bad({ modelId = "m", messages = { { role = "user", content = { {} } } } },
			"messages[1].content[1]", "exactly one")
		bad({ modelId = "m", messages = { { role = "user", content = { { text = "a", image = {
			format = "png", source = { bytes = "x" } } } } } } }, "messages[1].content[1]", "exactly one")
	end)

	it("checks ranges and lengths", function()
		bad({ modelId = "m", inferenceConfig = { temperature = 1.5 } }, "inferenceConfig.temperature", "at most 1")
		bad({ modelId = "m", inferenceConfig = { maxTokens = 0 } }, "inferenceConfig.maxTokens", "at least 1")
		bad({ modelId = "m", inferenceConfig = { maxTokens = 2.5 } }, "inferenceConfig.maxTokens", "integer")
		bad({ modelId = "m", messages = { { role = "user", content = { { image = { format = "png",
			source = { bytes = "" } } } } } } }, "messages[1].content[1].image.source.bytes", "empty")
		local long = string.rep("é", 65)
		bad({ modelId = "m", toolConfig = { tools = { { toolSpec = { name = long,
			inputSchema = { json = {} } } } } } }, "toolConfig.tools[1].toolSpec.name", "at most 64 characters")
		assert.truthy(ser("Converse", { modelId = "m", toolConfig = { tools = { { toolSpec = {
			name = string.rep("é", 64), inputSchema = { json = {} } } } } } }))
	end)

	it("refuses a map where a list is expected and a list where a structure is expected", function()
		bad({ modelId = "m", messages = { role = "user" } }, "messages", "list")
		bad({ modelId = "m", inferenceConfig = json.array{ 1 } }, "inferenceConfig", "structure")
	end)

	it("accepts the members the 1.43.67 model added, and checks them", function()
		-- the system role, toolAddition/toolRemoval blocks, outputConfig.effort
		local body = assert(ser("Converse", { modelId = "m", messages = {
			{ role = "system", content = { { toolAddition = { tool = { name = "search", type = "custom" } } },
				{ toolRemoval = { tool = { name = "calc", serverName = "mcp-1" } } } } },
			{ role = "user", content = { { text = "hi" } } } },
			outputConfig = { effort = "high" } }))
		local v = json.decode(body)
		assert.equal("system", v.messages[1].role)
		assert.same({ tool = { name = "search", type = "custom" } }, v.messages[1].content[1].toolAddition)
		assert.same({ tool = { name = "calc", serverName = "mcp-1" } }, v.messages[1].content[2].toolRemoval)
		assert.same({ effort = "high" }, v.outputConfig)
		assert.truthy(ser("ConverseStream", { modelId = "m", outputConfig = { effort = "" } }))
		bad({ modelId = "m", outputConfig = { effort = string.rep("x", 17) } }, "outputConfig.effort",
			"at most 16")
		bad({ modelId = "m", outputConfig = { effort = 3 } }, "outputConfig.effort", "string")
		bad({ modelId = "m", messages = { { role = "system", content = { { toolAddition = {} } } } } },
			"messages[1].content[1].toolAddition.tool", "required")
		bad({ modelId = "m", messages = { { role = "system", content = { { toolRemoval = { tool = {
			name = "" } } } } } } }, "messages[1].content[1].toolRemoval.tool.name", "must not be empty")
		bad({ modelId = "m", messages = { { role = "system", content = { { toolAddition = { tool = {
			type = string.rep("t", 65) } } } } } } }, "messages[1].content[1].toolAddition.tool.type", "at most 64")
		bad({ modelId = "m", messages = { { role = "system", content = { { toolAddition = { tool = {
			nme = "x" } } } } } } }, "messages[1].content[1].toolAddition.tool.nme", "unknown member.*name")
	end)

	it("InvokeGuardrailChecks: a JSON body, every constraint from the model", function()
		local req = { messages = { { role = "system", content = { { text = "policy" } } },
			{ role = "user", content = { { text = "mail me at a@b.co" } } } },
			checks = { contentFilter = { categories = { { category = "VIOLENCE" }, { category = "HATE" } } },
				promptAttack = { categories = { { category = "JAILBREAK" } } },
				sensitiveInformation = { entities = { { type = "EMAIL" }, { type = "PHONE" } } } } }
		local v = json.decode(assert(ser("InvokeGuardrailChecks", req)))
		assert.same(req, v)
		local plan = plans.InvokeGuardrailChecks
		assert.equal("POST", plan.http_method)
		assert.equal("/guardrail-checks/invoke", plan.uri)
		assert.same({}, plan.headers)
		assert.same({}, plan.labels)
		assert.is_nil(plan.payload)
		bad({ checks = {} }, "messages", "required", "InvokeGuardrailChecks")
		bad({ messages = req.messages }, "checks", "required", "InvokeGuardrailChecks")
		bad({ messages = {}, checks = {} }, "messages", "at least 1", "InvokeGuardrailChecks")
		bad({ messages = { { role = "user", content = { { text = "" } } } }, checks = {} },
			"messages[1].content[1].text", "must not be empty", "InvokeGuardrailChecks")
		bad({ messages = { { role = "user", content = { { image = {} } } } }, checks = {} },
			"messages[1].content[1].image", "unknown member", "InvokeGuardrailChecks")
		bad({ messages = req.messages, checks = { contentFilter = { categories = { { category = "GORE" } } } } },
			"checks.contentFilter.categories[1].category", "VIOLENCE", "InvokeGuardrailChecks")
		bad({ messages = req.messages, checks = { contentFilter = { categories = {
			{ category = "VIOLENCE" }, { category = "HATE" }, { category = "SEXUAL" }, { category = "MISCONDUCT" },
			{ category = "INSULTS" }, { category = "HATE" } } } } },
			"checks.contentFilter.categories", "at most 5", "InvokeGuardrailChecks")
		bad({ messages = req.messages, checks = { promptAttack = { categories = json.array{} } } },
			"checks.promptAttack.categories", "at least 1", "InvokeGuardrailChecks")
		bad({ messages = req.messages, checks = { sensitiveInformation = { entities = { { type = "SSN" } } } } },
			"checks.sensitiveInformation.entities[1].type", "US_SOCIAL_SECURITY_NUMBER", "InvokeGuardrailChecks")
		bad({ messages = { { role = "tool", content = { { text = "x" } } } }, checks = {} },
			"messages[1].role", "user, assistant, system", "InvokeGuardrailChecks")
	end)

	it("sends the request as given with validation off", function()
		local body = assert(ser("Converse", { modelId = "m", messages = {}, extra = { 1, 2 },
			inferenceConfig = { temperature = 7 } }, false))
		local v = json.decode(body)
		assert.same({ 1, 2 }, v.extra)
		assert.equal(7, v.inferenceConfig.temperature)
	end)
end)

describe("deserialization", function()
	local out = plans.Converse.output

	it("drops unknown keys and nulls, converts integers, marks lists", function()
		local v = out.read(assert(json.decode_raw(
			'{"output":{"message":{"role":"assistant","content":[{"text":"hi","p":"x"}]}},' ..
			'"stopReason":"end_turn","usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7,' ..
			'"serverToolUsage":{},"cacheReadInputTokenCount":null},"metrics":{"latencyMs":12},"p":"abc","trace":null}')))
		assert.is_nil(v.p)
		assert.is_nil(v.trace)
		assert.is_nil(v.usage.serverToolUsage)
		assert.equal("hi", v.output.message.content[1].text)
		assert.equal(json.array_mt, getmetatable(v.output.message.content))
		if math.type then assert.equal("integer", math.type(v.usage.inputTokens)) end
	end)

	it("reports an unknown union member like botocore", function()
		local v = out.read(assert(json.decode_raw(
			'{"output":{"message":{"role":"assistant","content":[{"futureBlock":{"x":1}}]}}}')))
		assert.same({ SDK_UNKNOWN_MEMBER = { name = "futureBlock" } }, v.output.message.content[1])
	end)

	it("keeps documents (tool input) as JSON with integers and empty arrays", function()
		local v = out.read(assert(json.decode_raw(
			'{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"a","name":"b",' ..
			'"input":{"n":3,"f":0.5,"l":[],"o":{},"z":null}}}]}}}')))
		local input = v.output.message.content[1].toolUse.input
		assert.equal(3, input.n)
		if math.type then assert.equal("integer", math.type(input.n)) end
		assert.equal(json.array_mt, getmetatable(input.l))
		assert.equal(json.null, input.z)
		assert.equal('{"f":0.5,"l":[],"n":3,"o":{},"z":null}', (function()
			local keys = {}
			for k in pairs(input) do keys[#keys + 1] = k end
			table.sort(keys)
			local parts = {}
			for _, k in ipairs(keys) do parts[#parts + 1] = '"' .. k .. '":' .. json.encode(input[k]) end
			return "{" .. table.concat(parts, ",") .. "}"
		end)())
	end)

	it("decodes blobs from base64", function()
		local node = operations.nodes.PayloadPart
		local v = node.read(assert(json.decode_raw('{"bytes":"eyJ4IjoxfQ==","p":"ab"}')))
		assert.same({ bytes = '{"x":1}' }, v)
	end)
end)

describe("base64", function()
	it("matches RFC 4648 vectors and round-trips binary", function()
		local vec = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
			fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
		for k, v in pairs(vec) do
			assert.equal(v, json.b64encode(k))
			assert.equal(k, json.b64decode(v))
		end
		local t = {}
		for i = 0, 255 do t[#t + 1] = string.char(i) end
		local all = string.rep(table.concat(t), 41)
		assert.equal(all, json.b64decode(json.b64encode(all)))
		assert.is_nil(json.b64decode("Zm9v!"))
		assert.is_nil(json.b64decode("Zm9vY"))
	end)
end)
