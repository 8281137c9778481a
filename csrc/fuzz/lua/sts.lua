-- Fuzz entry: the STS XML extraction (bedrock.credentials.sts): xml_fields on the raw
-- input and sts.call with a fake ctx.http answering the input (AssumeRoleWithWebIdentity,
-- unsigned, so no signing per input). Input: a mode byte, then the answer.
-- mode % 4: 0 xml_fields(Credentials), 1 xml_fields(Error), 2 call with HTTP 200,
-- 3 call with HTTP 403.
-- Contract: xml_fields returns a table of strings or nil and a message; a value is never
-- longer than the input, never holds an unescaped '<' (markup: the raw content of the
-- element has none, so a '<' in a value comes from an entity); call returns credentials
-- (finite expiration) or nil and a message string (and an error code string).
local F = require "fuzzlib"
local sts = require "bedrock.credentials.sts"
local check = F.check

local CRED = { "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration" }

local function fields(doc, parent, names)
	local t, err = sts.xml_fields(doc, parent, names)
	if t == nil then
		F.message(err, "xml_fields")
		return
	end
	check(type(t) == "table", "xml_fields returned a %s", type(t))
	local lt = select(2, doc:gsub("&lt;", "")) + select(2, doc:gsub("&#", ""))
	for k, v in pairs(t) do
		check(type(k) == "string" and type(v) == "string", "xml_fields: a non-string field")
		check(#v <= #doc, "<%s> is longer than the document", k)
		local n = select(2, v:gsub("<", ""))
		check(n <= lt, "<%s> holds %d '<' but the document has %d escapes", k, n, lt)
		local raw = sts.xml_element(sts.xml_element(doc, parent), k)
		check(type(raw) == "string" and not raw:find("<", 1, true), "<%s>: raw content has markup", k)
	end
end

local env = {}
local ctx = {
	getenv = function(k) return env[k] end, now = os.time, region = "us-east-1", profile = {},
}

return function(data)
	local mode, body = F.mode(data)
	mode = mode % 4
	if mode == 0 then
		fields(body, "Credentials", CRED)
		check(sts.xml_text(body) == nil or not body:find("<", 1, true), "xml_text accepted markup")
	elseif mode == 1 then
		fields(body, "Error", { "Code", "Message" })
	else
		ctx.http = function() return { status = mode == 2 and 200 or 403, headers = {}, body = body } end
		local c, msg, code = sts.call(ctx, "AssumeRoleWithWebIdentity", { RoleArn = "arn:aws:iam::1:role/r",
			RoleSessionName = "s", WebIdentityToken = "t" }, nil, "us-east-1")
		if c ~= nil then
			F.creds(c, "sts.call")
		else
			F.message(msg, "sts.call")
			check(code == nil or type(code) == "string", "sts.call: code is a %s", type(code))
		end
	end
end
