-- s:prepare{} + s:sign_prepared(...) (the client's per-request form) gives exactly what
-- s:sign{} gives for the same request, and refuses what s:sign{} refuses.
require "spec.helper"
local core = require "bedrock.core"

local AKID = "AKIDEXAMPLE"
local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
local AMZ = "20150830T123600Z"

local function headers(extra)
	local h = { { "content-type", "application/json" }, { "host", "bedrock-runtime.us-east-1.amazonaws.com" },
		{ "x-amz-date", AMZ } }
	for _, p in ipairs(extra or {}) do h[#h + 1] = p end
	return h
end

local function table_sign(s, r, params)
	local t = { method = r.method, path = r.path, query = r.query, headers = r.headers, body = r.body,
		payload_hash = r.payload_hash, amz_date = r.amz_date }
	for k, v in pairs(params) do t[k] = v end
	return s:sign(t)
end

describe("signer:sign_prepared", function()
	local params = { access_key = AKID, secret_key = SECRET, region = "us-east-1", service = "bedrock" }
	local requests = {
		{ method = "POST", path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
			headers = headers(), body = '{"messages":[]}', amz_date = AMZ },
		{ method = "GET", path = "/async-invoke", query = "maxResults=10&nextToken=a%2Fb",
			headers = headers(), amz_date = AMZ },
		{ method = "POST", path = "/model/m/invoke-with-bidirectional-stream", headers = headers{
			{ "x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS" } },
			payload_hash = "STREAMING-AWS4-HMAC-SHA256-EVENTS", amz_date = AMZ },
		{ method = "POST", path = "/a/./b/../c//d", headers = headers{ { "X-Custom", "  a   b  " } },
			body = "", amz_date = AMZ },
	}

	it("gives the three strings of sign{} for each request", function()
		local s = core.signer()
		assert.are.equal(s, s:prepare(params))
		for _, r in ipairs(requests) do
			local a1, s1, h1 = table_sign(s, r, params)
			local a2, s2, h2 = s:sign_prepared(r.method, r.path, r.query, r.headers, r.body, r.amz_date,
				r.payload_hash)
			assert.is_string(a1)
			assert.are.equal(a1, a2)
			assert.are.equal(s1, s2)
			assert.are.equal(h1, h2)
		end
		s:close()
	end)

	it("uses the parameters of the last prepare (session token, sign_token, scope)", function()
		local s = core.signer()
		local r = requests[1]
		local p2 = { access_key = "AKID2", secret_key = "other", region = "eu-west-1", service = "bedrock",
			session_token = "TOKEN", sign_token = false }
		local tok = headers{ { "x-amz-security-token", "TOKEN" } }
		s:prepare(params)
		s:prepare(p2)
		local a1 = table_sign(s, { method = r.method, path = r.path, headers = tok, body = r.body,
			amz_date = AMZ }, p2)
		local a2 = s:sign_prepared(r.method, r.path, nil, tok, r.body, AMZ)
		assert.are.equal(a1, a2)
		assert.matches("Credential=AKID2/20150830/eu%-west%-1/bedrock/aws4_request", a2)
		assert.not_matches("x%-amz%-security%-token", a2)
		s:close()
	end)

	it("refuses what sign{} refuses", function()
		local s = core.signer()
		assert.has_error(function() s:sign_prepared("POST", "/", nil, headers(), "", AMZ) end)
		s:prepare(params)
		local ok, err = s:sign_prepared("POST", "/", nil, headers(), "", "2015")
		local ok2, err2 = s:sign{ method = "POST", path = "/", headers = headers(), body = "", amz_date = "2015",
			access_key = AKID, secret_key = SECRET, region = "us-east-1", service = "bedrock" }
		assert.is_nil(ok)
		assert.is_nil(ok2)
		assert.are.equal(tostring(err2), tostring(err))
		ok, err = s:sign_prepared("POST", "/", nil, { { "content-type", "x" } }, "", AMZ)
		assert.is_nil(ok)
		assert.is_not_nil(err)
		assert.has_error(function() s:sign_prepared("PO\0ST", "/", nil, headers(), "", AMZ) end)
		assert.has_error(function() s:sign_prepared("POST", "/", nil, { "x" }, "", AMZ) end)
		assert.has_error(function() s:prepare{ access_key = AKID, region = "r", service = "s" } end)
		s:close()
		assert.has_error(function() s:sign_prepared("POST", "/", nil, headers(), "", AMZ) end)
	end)
end)
