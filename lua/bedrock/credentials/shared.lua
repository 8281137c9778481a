-- Static keys of a profile in one of the shared files: the credentials file
-- (botocore's "shared-credentials-file", `[name]` sections) or the config file
-- ("config-file", `[profile name]` / `[default]`).
--   P.new{ file = "credentials" | "config", profile_name = (default: ctx.profile_name) }
local util = require "bedrock.credentials.util"
local ini = require "bedrock.ini"

local P = {}
P.__index = P

function P.new(opts)
	opts = opts or {}
	local file = opts.file or "credentials"
	return setmetatable({ file = file, profile_name = opts.profile_name,
		name = file == "config" and "config-file" or "shared-credentials-file" }, P)
end

function P:get(ctx)
	local view = ctx.files and ctx.files[self.file]
	local name = self.profile_name or ctx.profile_name
	local prof = view and view.profiles[name]
	if not prof then return nil end
	local c, msg = util.profile_keys(prof, self.name)
	if c then return c end
	if msg then
		return util.err(self.name, "partial credentials in profile " .. name .. ": " .. msg,
			{ file = ini.where(view, name, "aws_access_key_id"), profile = name })
	end
	return nil
end

return P
