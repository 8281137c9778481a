-- AssumeRoleWithWebIdentity (EKS IRSA and other OIDC federations): the token file and
-- role from AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN / AWS_ROLE_SESSION_NAME (each
-- variable wins over the profile's web_identity_token_file / role_arn /
-- role_session_name, as in botocore), exchanged at STS without a signature. The token
-- file is read again at each refresh. Botocore's method name:
-- "assume-role-with-web-identity".
--   P.new{ profile_name = (default ctx.profile_name), use_env = true }
local util = require "bedrock.credentials.util"
local sts = require "bedrock.credentials.sts"

local P = { name = "assume-role-with-web-identity" }
P.__index = P

function P.new(opts)
	opts = opts or {}
	return setmetatable({ profile_name = opts.profile_name, use_env = opts.use_env ~= false }, P)
end

local env_of = { web_identity_token_file = "AWS_WEB_IDENTITY_TOKEN_FILE", role_arn = "AWS_ROLE_ARN",
	role_session_name = "AWS_ROLE_SESSION_NAME" }

function P:get(ctx)
	local name = self.profile_name or ctx.profile_name
	local prof = ctx.profile
	if self.profile_name then prof = require("bedrock.config").merged_profile(ctx.files, name) end
	prof = prof or {}
	local function get(key)
		if self.use_env then
			local v = ctx.getenv(env_of[key])
			if v ~= nil then return v end
		end
		local v = prof[key]
		if type(v) == "string" then return v end
		return nil
	end
	local path = get("web_identity_token_file")
	if not path or path == "" then return nil end
	local role = get("role_arn")
	if not role or role == "" then
		return util.err(P.name, "a web identity token file is configured but no role ARN: set role_arn " ..
			"in profile " .. name .. " or AWS_ROLE_ARN", { profile = name })
	end
	local token, ferr = util.read_file(path)
	if not token then return util.err(P.name, "web identity token: " .. ferr, { profile = name }) end
	local session = get("role_session_name")
	if not session or session == "" then session = "botocore-session-" .. math.floor(ctx.now()) end
	local c, msg = sts.call(ctx, "AssumeRoleWithWebIdentity", { RoleArn = role, RoleSessionName = session,
		WebIdentityToken = token }, nil, ctx.region)
	if not c then return util.err(P.name, msg .. " (role " .. role .. ")", { profile = name }) end
	c.source = P.name
	return c
end

return P
