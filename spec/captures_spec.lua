-- Every recorded live exchange in spec/fixtures/vectors/captures/ goes through the
-- client's own response path (client.parse for JSON/blob answers, the Stream object over
-- core.decoder for event streams) and must equal botocore 1.43.11's parse of it, after
-- the README's normalisation: blobs compared as base64, numbers by value, keys botocore
-- drops (not in the model, JSON null) absent from both.
local helper = require "spec.helper" -- luacheck: ignore 211
local json = require "bedrock.json"
local client = require "bedrock.client"
local operations = require "bedrock.operations"

local DIR = helper.vectors .. "/captures"

local op_by_prefix = {
	["converse"] = "Converse", ["converse-stream"] = "ConverseStream",
	["invoke-model"] = "InvokeModel", ["invoke-model-stream"] = "InvokeModelWithResponseStream",
	["count-tokens"] = "CountTokens", ["apply-guardrail"] = "ApplyGuardrail",
}

-- Captures we do not expect to match, with the reason. (Empty: every capture matches.)
local known_mismatch = {}

local function is_marked(t) return json.is_marked(t) end

-- Converts our parsed value to botocore's decoded form using the output shapes: blobs
-- as base64 strings. Returns a new value.
local function to_boto(node, v)
	if v == nil then return nil end
	local k = node and node.kind
	if k == "blob" then return json.b64encode(v) end
	if type(v) ~= "table" or v == json.null then return v end
	if k == "list" then
		local out = {}
		for i = 1, #v do out[i] = to_boto(node.member, v[i]) end
		return json.array(out)
	elseif k == "map" then
		local out = {}
		for key, x in pairs(v) do out[key] = to_boto(node.value, x) end
		return out
	elseif k == "structure" or k == "union" or k == "eventstream" then
		local out = {}
		for key, x in pairs(v) do
			local m = node.members[key]
			out[key] = to_boto(m and m.node, x)
		end
		return out
	end
	return v -- documents and scalars unchanged
end

local function show(v)
	if type(v) == "string" then return string.format("%q", #v > 80 and v:sub(1, 80) .. "…" or v) end
	return tostring(v)
end

-- deep equality; returns true or false, path, ours, theirs
local function equal(a, b, path)
	path = path or "$"
	if type(a) == "number" and type(b) == "number" then
		if a == b then return true end
		return false, path, a, b
	end
	if type(a) ~= type(b) then return false, path, a, b end
	if type(a) ~= "table" then
		if a == b then return true end
		return false, path, a, b
	end
	if is_marked(a) ~= is_marked(b) and (next(a) ~= nil or next(b) ~= nil) then
		return false, path .. " (array vs object)", a, b
	end
	for k, x in pairs(a) do
		local ok, p, o, t = equal(x, b[k], path .. "." .. tostring(k))
		if not ok then return false, p, o, t end
	end
	for k, y in pairs(b) do
		if a[k] == nil then return false, path .. "." .. tostring(k) .. " (missing in ours)", nil, y end
	end
	return true
end

local function headers_of(resp)
	local h = {}
	for _, pair in ipairs(resp.headers or {}) do
		local n = pair[1]:lower()
		if h[n] then h[n] = h[n] .. "," .. pair[2] else h[n] = pair[2] end
	end
	return h
end

local function wire_body(resp, op, decoded)
	if resp.body_b64 then return assert(json.b64decode(resp.body_b64)) end
	if resp.body_text then return resp.body_text end
	if op == "InvokeModel" and resp.status < 300 and type(decoded.body) == "string" then
		-- botocore's body IS the wire bytes (the compact form of the recorded JSON)
		return assert(json.b64decode(decoded.body))
	end
	if resp.body == nil then return "" end
	if type(resp.body) == "string" then return resp.body end
	return assert(json.encode(resp.body))
end

local function strip_meta(decoded)
	local out = {}
	for k, v in pairs(decoded) do if k ~= "ResponseMetadata" then out[k] = v end end
	return out
end

local function check_capture(name, cap)
	local prefix = name:match("^(.-)%-%-")
	local opname = op_by_prefix[prefix]
	assert(opname, "unknown operation prefix " .. tostring(prefix))
	assert.are.equal(opname, cap.operation)
	local plan = operations.plans[opname]
	local resp = cap.response
	local headers = headers_of(resp)
	local body = wire_body(resp, opname, cap.decoded)
	local decoded = strip_meta(cap.decoded)

	if resp.status >= 300 then
		local res, err = client.parse(plan, resp.status, headers, body)
		assert.is_nil(res)
		assert.are.equal(decoded.Error.Code, err.code)
		assert.are.equal(decoded.Error.Message, err.message)
		assert.are.equal(resp.status, err.status)
		assert.are.equal(cap.decoded.ResponseMetadata.RequestId, err.request_id)
		assert.matches("^" .. err.code, tostring(err))
		return
	end

	if plan.output_stream then
		local key = opname == "ConverseStream" and "stream" or "body"
		local expect = decoded[key]
		for _, slice in ipairs{ false, 7, 1 } do
			local s = assert(client.stream_from_body(plan, resp.status, headers, body, slice or nil))
			local events = json.array{}
			for ev in s do events[#events + 1] = to_boto(plan.output_stream, ev) end
			local ok, p, o, t = equal(events, expect, "events")
			assert(ok, string.format("%s (slices %s): %s: ours %s, botocore %s", name,
				tostring(slice), p, show(o), show(t)))
			if opname == "InvokeModelWithResponseStream" then
				assert.are.equal(decoded.contentType, s.contentType)
			end
		end
		-- collect() gives the same text/tool input the events carry
		local s = assert(client.stream_from_body(plan, resp.status, headers, body))
		local res = s:collect()
		if opname == "ConverseStream" then
			local text = {}
			for _, ev in ipairs(expect) do
				local d = ev.contentBlockDelta
				if d and d.delta.text then text[#text + 1] = d.delta.text end
			end
			local got = {}
			for _, b in ipairs(res.output.message.content) do
				if b.text then got[#got + 1] = b.text end
				if b.citationsContent then
					for _, c in ipairs(b.citationsContent.content) do got[#got + 1] = c.text end
				end
			end
			assert.are.equal(table.concat(text), table.concat(got))
			for _, ev in ipairs(expect) do
				if ev.messageStop then assert.are.equal(ev.messageStop.stopReason, res.stopReason) end
				if ev.metadata then assert.are.equal(ev.metadata.usage.totalTokens, res.usage.totalTokens) end
			end
		else
			local all = {}
			for _, ev in ipairs(expect) do all[#all + 1] = json.b64decode(ev.chunk.bytes) end
			assert.are.equal(table.concat(all), res.body)
		end
		return
	end

	local res, err = client.parse(plan, resp.status, headers, body)
	assert(res, tostring(err))
	local ok, p, o, t = equal(to_boto(plan.output, res), decoded, "result")
	assert(ok, string.format("%s: %s: ours %s, botocore %s", name, p, show(o), show(t)))
	if opname == "InvokeModel" and (res.contentType or ""):find("json") then
		local r2 = assert(client.parse(plan, resp.status, headers, body, { decode = true }))
		assert.is_table(r2.json)
	end
end

describe("captures of live traffic", function()
	local files = {}
	for _, f in ipairs(helper.ls(DIR)) do
		if f:match("%.json$") and f ~= "index.json" then files[#files + 1] = f end
	end

	it("has all 334 captures", function()
		assert.are.equal(334, #files)
	end)

	it("the comparison itself notices differences", function()
		local a = json.decode('{"x":[1,{"y":"z"}],"e":[]}')
		assert.is_true(equal(a, json.decode('{"x":[1,{"y":"z"}],"e":[]}')))
		assert.is_false(equal(a, json.decode('{"x":[1,{"y":"Z"}],"e":[]}')))
		assert.is_false(equal(a, json.decode('{"x":[1,{"y":"z"}],"e":[],"extra":1}')))
		assert.is_false(equal(a, json.decode('{"x":[1,{"y":"z"}]}')))
		assert.is_false(equal(a, json.decode('{"x":[1,{"y":"z"}],"e":{"k":1}}')))
	end)

	local has_decoder = client.core and client.core.decoder
	for _, f in ipairs(files) do
		local name = f:gsub("%.json$", "")
		local is_stream = name:match("^converse%-stream%-%-") or name:match("^invoke%-model%-stream%-%-")
		if is_stream and not has_decoder then
			pending(name .. ": bedrock.core decoder not built")
		elseif known_mismatch[name] then
			pending(name .. ": " .. known_mismatch[name])
		else
			it(name, function()
				local cap = assert(json.decode(helper.read(DIR .. "/" .. f)))
				check_capture(name, cap)
			end)
		end
	end
end)
