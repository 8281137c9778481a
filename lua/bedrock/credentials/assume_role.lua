-- AssumeRole from a profile: role_arn with source_profile (chains of any length; a
-- cycle is an error naming the profiles; a profile may name itself only when it has
-- static keys) or credential_source (Environment, Ec2InstanceMetadata, EcsContainer);
-- external_id, role_session_name, duration_seconds. mfa_serial needs a code typed by a
-- person: a library cannot prompt, so it is a clear error. Botocore's method name:
-- "assume-role".
--   P.new{ profile_name = (default ctx.profile_name) }
local util = require "bedrock.credentials.util"
local sts = require "bedrock.credentials.sts"
local config = require "bedrock.config"
local ini = require "bedrock.ini"

local P = { name = "assume-role" }
P.__index = P

function P.new(opts)
	opts = opts or {}
	return setmetatable({ profile_name = opts.profile_name }, P)
end

local function has_static(prof)
	return type(prof) == "table" and prof.aws_access_key_id ~= nil
end

local function is_assume_role(prof)
	return type(prof) == "table" and prof.role_arn ~= nil and prof.web_identity_token_file == nil
end

local sources = { Environment = "env", Ec2InstanceMetadata = "imds", EcsContainer = "container" }

local function where(ctx, name, key)
	local files = ctx.files or {}
	return ini.where(files.config, name, key) or ini.where(files.credentials, name, key)
end

local assume

-- Credentials of the source of profile `name` (whose keys are `prof`).
local function source_creds(ctx, name, prof, visited)
	local cs, sp = prof.credential_source, prof.source_profile
	if cs and sp then
		return util.err(P.name, "profile " .. name .. " has both source_profile and credential_source",
			{ file = where(ctx, name, "role_arn"), profile = name })
	end
	if not cs and not sp then
		return util.err(P.name, "profile " .. name .. " has role_arn but neither source_profile nor " ..
			"credential_source", { file = where(ctx, name, "role_arn"), profile = name })
	end
	if cs then
		local mod = sources[cs]
		if not mod then
			return util.err(P.name, "credential_source " .. tostring(cs) .. " in profile " .. name ..
				" is not one of Environment, Ec2InstanceMetadata, EcsContainer",
				{ file = where(ctx, name, "credential_source"), profile = name })
		end
		local p = require("bedrock.credentials." .. mod).new{}
		local c, err = p:get(ctx)
		if err then return nil, err end
		if not c then
			return util.err(P.name, "no credentials found in credential_source " .. cs ..
				" referenced in profile " .. name, { profile = name })
		end
		return c
	end
	local files = ctx.files
	local src = config.merged_profile(files, sp)
	if not src then
		return util.err(P.name, "the source_profile \"" .. sp .. "\" referenced in the profile \"" ..
			name .. "\" does not exist", { file = where(ctx, name, "source_profile"), profile = name })
	end
	for _, v in ipairs(visited) do
		if v == sp and (sp ~= name or not has_static(src)) then
			local chain = {}
			for i, x in ipairs(visited) do chain[i] = x end
			chain[#chain + 1] = sp
			return util.err(P.name, "infinite loop in the source_profile chain: " ..
				table.concat(chain, " -> "), { profile = name })
		end
	end
	if has_static(src) or not is_assume_role(src) then
		-- the source profile's own credentials (not the environment's)
		local creds = require "bedrock.credentials"
		local c, err = creds.from_profile(ctx, sp)
		if err then return nil, err end
		if not c then
			return util.err(P.name, "the source profile \"" .. sp .. "\" must have credentials",
				{ profile = sp })
		end
		return c
	end
	visited[#visited + 1] = sp
	return assume(ctx, sp, src, visited)
end

assume = function(ctx, name, prof, visited)
	if prof.mfa_serial then
		return util.err(P.name, "profile " .. name .. " needs an MFA code (mfa_serial): a library " ..
			"cannot prompt for it; get session credentials first (e.g. aws sts get-session-token) " ..
			"or use a profile without mfa_serial", { file = where(ctx, name, "mfa_serial"), profile = name })
	end
	local src, err = source_creds(ctx, name, prof, visited)
	if not src then return nil, err end
	local params = { RoleArn = prof.role_arn }
	params.RoleSessionName = prof.role_session_name or ("botocore-session-" .. math.floor(ctx.now()))
	if prof.external_id then params.ExternalId = prof.external_id end
	if prof.duration_seconds then
		local d = tonumber(prof.duration_seconds)
		if not d or d ~= math.floor(d) then
			return util.err(P.name, "duration_seconds in profile " .. name .. " must be an integer",
				{ file = where(ctx, name, "duration_seconds"), profile = name })
		end
		params.DurationSeconds = string.format("%d", d)
	end
	local c, msg = sts.call(ctx, "AssumeRole", params, src, ctx.region)
	if not c then
		return util.err(P.name, msg .. " (role " .. tostring(prof.role_arn) .. " of profile " .. name .. ")",
			{ profile = name })
	end
	c.source = P.name
	return c
end

function P:get(ctx)
	local name = self.profile_name or ctx.profile_name
	local prof = self.profile_name and config.merged_profile(ctx.files, name) or ctx.profile
	if not is_assume_role(prof) then return nil end
	return assume(ctx, name, prof, { name })
end

P.is_assume_role = is_assume_role

return P
