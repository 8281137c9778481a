-- Shared by the credential-provider specs: a temporary HOME with real files, and the
-- provider context (ctx) built over the real curl transport.
local helper = require "spec.helper"

local M = {}

function M.tmpdir()
	local p = assert(io.popen("mktemp -d /tmp/bedrock-cred-XXXXXX"))
	local d = p:read("*l")
	p:close()
	return d
end

function M.rmdir(d)
	if d and d:match("^/tmp/bedrock%-cred%-") then os.execute("rm -rf " .. helper.shell_quote(d)) end
end

function M.mkdir(d)
	assert(os.execute("mkdir -p " .. helper.shell_quote(d)))
end

function M.write(path, s)
	M.mkdir(path:match("^(.*)/[^/]*$"))
	local f = assert(io.open(path, "wb"))
	f:write(s)
	f:close()
end

M.read = helper.read
M.exists = helper.exists

-- ctx{ home =, profile_name =, profile =, config = parsed, env = {}, now = fn } -> ctx
function M.ctx(o)
	local T = require "bedrock.transport.curl"
	local t = o.transport or T.new{}
	local env = o.env or {}
	return {
		getenv = function(k) return env[k] end,
		now = o.now or os.time,
		-- as the client builds it: timeouts in seconds, answers bounded
		http = require("bedrock.credentials").http_from(function() return t end),
		profile_name = o.profile_name or "default",
		profile = o.profile or {},
		files = { config = o.config or { profiles = {}, sso_sessions = {}, services = {} },
			credentials = { profiles = {} } },
		home = o.home,
	}
end

-- Runs python3 with env (a table) and arguments; returns its output and exit status.
function M.python(env, script, args)
	local parts = { "env" }
	for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. helper.shell_quote(v) end
	parts[#parts + 1] = "python3 " .. helper.shell_quote(script)
	for _, a in ipairs(args or {}) do parts[#parts + 1] = helper.shell_quote(a) end
	local p = assert(io.popen(table.concat(parts, " ") .. " 2>&1"))
	local out = p:read("*a")
	local ok, _, code = p:close()
	return out, ok and 0 or code
end

function M.has_botocore()
	local p = io.popen("python3 -c 'import botocore, boto3' 2>/dev/null && echo yes")
	local out = p and p:read("*a") or ""
	if p then p:close() end
	return out:find("yes", 1, true) ~= nil
end

return M
