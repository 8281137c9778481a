-- EC2 instance metadata (IMDSv2): PUT /latest/api/token, then the role name at
-- /latest/meta-data/iam/security-credentials/, then its credentials. Botocore's rules:
-- AWS_EC2_METADATA_DISABLED=true turns it off; the endpoint is
-- AWS_EC2_METADATA_SERVICE_ENDPOINT or ec2_metadata_service_endpoint in the profile,
-- else http://169.254.169.254 (or http://[fd00:ec2::254] when
-- AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE / ec2_metadata_service_endpoint_mode is IPv6);
-- timeout AWS_METADATA_SERVICE_TIMEOUT (1 s) and AWS_METADATA_SERVICE_NUM_ATTEMPTS (1).
-- A token refused with 403/404/405 falls back to IMDSv1 unless ec2_metadata_v1_disabled.
-- No metadata service (nothing answers in time) means no credentials here, not an
-- error: the chain goes on. Botocore's method name: "iam-role".
local util = require "bedrock.credentials.util"
local ini = require "bedrock.ini"

local P = { name = "iam-role" }
P.__index = P

function P.new(opts)
	return setmetatable({ opts = opts or {} }, P)
end

local function var(ctx, env, key)
	local v = ctx.getenv(env)
	if v == nil or v == "" then
		v = ctx.profile and ctx.profile[key]
		if type(v) ~= "string" or v == "" then v = nil end
	end
	return v
end

-- base(ctx) -> url without trailing slash | nil, err
function P.base(ctx)
	local ep = var(ctx, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "ec2_metadata_service_endpoint")
	if ep then return (ep:gsub("/+$", "")) end
	local mode = var(ctx, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ec2_metadata_service_endpoint_mode")
	if mode and mode:lower() == "ipv6" then return "http://[fd00:ec2::254]" end
	if mode and mode:lower() ~= "ipv4" then
		return util.err("iam-role", "ec2_metadata_service_endpoint_mode must be IPv4 or IPv6 (got " .. mode .. ")")
	end
	return "http://169.254.169.254"
end

local PATH = "/latest/meta-data/iam/security-credentials/"

function P:get(ctx) -- luacheck: ignore 212
	local dis = ctx.getenv("AWS_EC2_METADATA_DISABLED")
	if dis and dis:lower() == "true" then return nil end
	local base, berr = P.base(ctx)
	if not base then return nil, berr end
	local timeout = tonumber(var(ctx, "AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout") or "") or 1
	local attempts = tonumber(var(ctx, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts") or "") or 1
	local v1_off = var(ctx, "AWS_EC2_METADATA_V1_DISABLED", "ec2_metadata_v1_disabled")
	v1_off = v1_off and v1_off:lower() == "true"
	local t = { connect = timeout, total = timeout }

	local function fetch(method, path, headers)
		local res, err
		for _ = 1, attempts do
			res, err = ctx.http{ method = method, url = base .. path, headers = headers, timeouts = t,
				body = method == "PUT" and "" or nil }
			if res and res.status < 500 then return res end
		end
		return res, err
	end

	local res, err = fetch("PUT", "/latest/api/token", { { "x-aws-ec2-metadata-token-ttl-seconds", "21600" } })
	if not res then
		-- no metadata service; but one that answers too much is an error
		if type(err) == "table" and err.code == "ResponseTooLarge" then
			return util.err("iam-role", "the token answer: " .. util.describe(err))
		end
		return nil
	end
	local headers = {}
	if res.status == 200 and res.body ~= "" then
		headers[1] = { "x-aws-ec2-metadata-token", res.body }
	elseif res.status == 403 or res.status == 404 or res.status == 405 then
		if v1_off then
			return util.err("iam-role", "the metadata service refused a token (HTTP " .. res.status ..
				") and IMDSv1 is disabled")
		end
	elseif res.status == 400 then
		return util.err("iam-role", "the metadata service refused the token request (HTTP 400)")
	else
		return nil
	end
	res, err = fetch("GET", PATH, headers)
	if not res then return util.err("iam-role", "no answer for the role name: " .. util.describe(err)) end
	if res.status == 404 then return nil end -- no role attached to the instance
	if res.status ~= 200 then
		return util.err("iam-role", "the role name request answered HTTP " .. res.status)
	end
	-- one line, blanks around it dropped (trimmed in linear time: the answer may be 1 MiB)
	local role = ini.strip(res.body or "")
	if role == "" or role:find("[\r\n]") then return nil end
	-- an IAM role name (1-64 of [A-Za-z0-9+=,.@_-]): anything else would go into the
	-- next request's path and into messages
	if #role > 64 or role:find("[^%w+=,.@_-]") then
		return util.err("iam-role", "the metadata service answered a role name that is not an IAM role name (" ..
			#role .. " bytes)")
	end
	res, err = fetch("GET", PATH .. role, headers)
	if not res then return util.err("iam-role", "no answer for role " .. role .. ": " .. util.describe(err)) end
	if res.status ~= 200 then
		return util.err("iam-role", "the credentials of role " .. role .. " answered HTTP " .. res.status)
	end
	local j, jerr = util.json_object(res.body)
	if not j then return util.err("iam-role", "the credentials of role " .. role .. " are " .. jerr) end
	local c, msg = util.from_json_names(j, "iam-role")
	if not c then return util.err("iam-role", msg) end
	return c
end

return P
