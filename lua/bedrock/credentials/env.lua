-- Credentials from the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
-- AWS_SESSION_TOKEN (or the older AWS_SECURITY_TOKEN), AWS_CREDENTIAL_EXPIRATION.
-- Botocore's method name: "env".
local util = require "bedrock.credentials.util"

local P = { name = "env" }
P.__index = P

function P.new(opts)
	return setmetatable({ opts = opts or {} }, P)
end

local function var(getenv, name)
	local v = getenv(name)
	if v == "" then return nil end
	return v
end

function P:get(ctx) -- luacheck: ignore 212
	local getenv = ctx.getenv
	local id, secret = var(getenv, "AWS_ACCESS_KEY_ID"), var(getenv, "AWS_SECRET_ACCESS_KEY")
	if not id and not secret then return nil end
	if not id or not secret then
		return util.err("env", "partial credentials in the environment: " ..
			(id and "AWS_SECRET_ACCESS_KEY" or "AWS_ACCESS_KEY_ID") .. " is not set")
	end
	local tok = var(getenv, "AWS_SESSION_TOKEN") or var(getenv, "AWS_SECURITY_TOKEN")
	local exp = var(getenv, "AWS_CREDENTIAL_EXPIRATION")
	if exp then
		local t = util.time(exp)
		if not t then return util.err("env", "AWS_CREDENTIAL_EXPIRATION is not an ISO-8601 time") end
		exp = t
	end
	return util.creds{ access_key_id = id, secret_access_key = secret, session_token = tok,
		expiration = exp, source = "env" }
end

return P
