-- Client configuration: options + environment, resolved once per client the way the
-- AWS SDKs resolve them, and the endpoint rule set of bedrock-runtime (reference §2).
--
-- resolve(opts, getenv) -> cfg | nil, err (ConfigError). getenv defaults to os.getenv;
-- specs pass a table-backed function.
local errors = require "bedrock.errors"

local _M = { _VERSION = "0.1.0" }

local type, tonumber, tostring, pairs = type, tonumber, tostring, pairs
local floor = math.floor

local function cfg_error(msg, extra)
	return nil, errors.make("ConfigError", msg, extra)
end

-- botocore partitions.json, in botocore's order of regex matching.
local partitions = {
	{ id = "aws", regex = { "^us%-%w+%-%d+$", "^eu%-%w+%-%d+$", "^ap%-%w+%-%d+$",
		"^sa%-%w+%-%d+$", "^ca%-%w+%-%d+$", "^me%-%w+%-%d+$", "^af%-%w+%-%d+$",
		"^il%-%w+%-%d+$", "^mx%-%w+%-%d+$" },
		dns = "amazonaws.com", dualstack = "api.aws" },
	{ id = "aws-cn", regex = { "^cn%-%w+%-%d+$" },
		dns = "amazonaws.com.cn", dualstack = "api.amazonwebservices.com.cn" },
	{ id = "aws-us-gov", regex = { "^us%-gov%-%w+%-%d+$" },
		dns = "amazonaws.com", dualstack = "api.aws" },
	{ id = "aws-eusc", regex = { "^eusc%-de%-%w+%-%d+$" },
		dns = "amazonaws.eu", dualstack = "api.amazonwebservices.eu" },
	{ id = "aws-iso", regex = { "^us%-iso%-%w+%-%d+$" },
		dns = "c2s.ic.gov", dualstack = "api.aws.ic.gov" },
	{ id = "aws-iso-b", regex = { "^us%-isob%-%w+%-%d+$" },
		dns = "sc2s.sgov.gov", dualstack = "api.aws.scloud" },
	{ id = "aws-iso-e", regex = { "^eu%-isoe%-%w+%-%d+$" },
		dns = "cloud.adc-e.uk", dualstack = "api.cloud-aws.adc-e.uk" },
	{ id = "aws-iso-f", regex = { "^us%-isof%-%w+%-%d+$" },
		dns = "csp.hci.ic.gov", dualstack = "api.aws.hci.ic.gov" },
}
_M.partitions = partitions

-- Regions named explicitly in partitions.json whose names the regexes do not match
-- (botocore checks the exact names first).
local exact = { ["aws-global"] = "aws", ["aws-cn-global"] = "aws-cn",
	["aws-us-gov-global"] = "aws-us-gov", ["aws-iso-global"] = "aws-iso",
	["aws-iso-b-global"] = "aws-iso-b", ["aws-iso-e-global"] = "aws-iso-e",
	["aws-iso-f-global"] = "aws-iso-f" }

-- aws.partition(region): an exact name, else the first regex that matches (a more
-- specific partition wins over "aws", e.g. us-gov-west-1 is aws-us-gov even though
-- "^us-\w+-\d+$" does not match it), else the default "aws".
function _M.partition(region)
	local id = exact[region]
	if id then
		for _, p in ipairs(partitions) do if p.id == id then return p end end
	end
	for i = 2, #partitions do
		for _, re in ipairs(partitions[i].regex) do
			if region:match(re) then return partitions[i] end
		end
	end
	return partitions[1]
end

-- Endpoint rules (reference §2). Returns url | nil, err.
function _M.endpoint(p)
	if p.endpoint then
		if p.use_fips then return cfg_error("Invalid Configuration: FIPS and custom endpoint are not supported") end
		if p.use_dualstack then return cfg_error("Invalid Configuration: Dualstack and custom endpoint are not supported") end
		return p.endpoint
	end
	if not p.region then return cfg_error("Invalid Configuration: Missing Region") end
	local part = _M.partition(p.region)
	local host = p.use_fips and "bedrock-runtime-fips." or "bedrock-runtime."
	local suffix = p.use_dualstack and part.dualstack or part.dns
	return "https://" .. host .. p.region .. "." .. suffix
end

-- "http(s)://host[:port][/base]" -> { scheme, host, port, authority, base_path, url }
function _M.parse_url(url)
	if type(url) ~= "string" then return nil end
	local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
	if not scheme then return nil end
	scheme = scheme:lower()
	if scheme ~= "http" and scheme ~= "https" then return nil end
	if rest:find("[?#]") then return nil end
	local authority, path = rest:match("^([^/]*)(.*)$")
	if authority == "" or authority:find("@", 1, true) then return nil end
	local host, port
	if authority:sub(1, 1) == "[" then
		host, port = authority:match("^(%[[%x:.]+%])(.*)$")
		if not host then return nil end
	else
		host, port = authority:match("^([^:]+)(.*)$")
	end
	if not host then return nil end
	if port ~= "" then
		port = port:match("^:(%d+)$")
		if not port then return nil end
		port = tonumber(port)
		if port < 1 or port > 65535 then return nil end
	else
		port = nil
	end
	path = path:gsub("/+$", "")
	local default = scheme == "https" and 443 or 80
	local auth = host:lower()
	if port and port ~= default then auth = auth .. ":" .. port end
	return {
		scheme = scheme, host = host:lower(), port = port or default, authority = auth,
		base_path = path, url = scheme .. "://" .. auth .. path,
	}
end

local function env_bool(getenv, name)
	local v = getenv(name)
	if v == nil or v == "" then return nil end
	local l = v:lower()
	if l == "true" then return true end
	if l == "false" then return false end
	return nil, errors.make("ConfigError", name .. " must be true or false (got " .. v .. ")")
end

local function opt_bool(v, name)
	if v == nil then return nil end
	if type(v) ~= "boolean" then
		return nil, errors.make("ConfigError", name .. " must be a boolean", { field = name })
	end
	return v
end

local retry_modes = { standard = true, legacy = true, adaptive = true }

-- The largest retry.max_attempts / AWS_MAX_ATTEMPTS accepted.
_M.MAX_ATTEMPTS = 100

-- Default timeouts in milliseconds. first_byte is long because a non-streaming call's
-- first byte only comes when the model has finished generating; idle is the SDKs' 60 s
-- read timeout; total (one hour, the longest inference the service runs) ends a body
-- that trickles a byte now and then, which no idle timeout catches.
_M.default_timeouts = { connect = 10000, first_byte = 300000, idle = 60000, total = 3600000 }

local known_options = {
	region = true, endpoint = true, credentials = true, profile = true, timeouts = true,
	retry = true, http2 = true, validate = true, use_fips_endpoint = true,
	use_dualstack_endpoint = true, cainfo = true, capath = true, verify = true,
	on_request = true, on_response = true, logger = true, auth_scheme_preference = true,
	transport = true, getenv = true, clock = true, user_agent = true, decode = true,
	max_body = true, max_error_body = true,
}
_M.known_options = known_options

function _M.resolve(opts, getenv)
	opts = opts or {}
	if type(opts) ~= "table" then return cfg_error("client options must be a table") end
	getenv = getenv or opts.getenv or os.getenv
	for k in pairs(opts) do
		if not known_options[k] then
			return cfg_error("unknown client option '" .. tostring(k) .. "'", { field = tostring(k) })
		end
	end
	local cfg = { getenv = getenv }

	-- region
	local region = opts.region
	if region == nil then
		region = getenv("AWS_REGION")
		if region == "" then region = nil end
		if region == nil then
			region = getenv("AWS_DEFAULT_REGION")
			if region == "" then region = nil end
		end
	end
	if region == nil then
		return cfg_error("no region: pass region= or set AWS_REGION (or AWS_DEFAULT_REGION)",
			{ field = "region" })
	end
	if type(region) ~= "string" or not region:match("^[%w][%w%-]*$") or #region > 63 then
		return cfg_error("invalid region " .. tostring(region), { field = "region" })
	end
	cfg.region = region

	-- flags
	local fips, dual, err
	fips, err = opt_bool(opts.use_fips_endpoint, "use_fips_endpoint")
	if err then return nil, err end
	if fips == nil then
		fips, err = env_bool(getenv, "AWS_USE_FIPS_ENDPOINT")
		if err then return nil, err end
	end
	dual, err = opt_bool(opts.use_dualstack_endpoint, "use_dualstack_endpoint")
	if err then return nil, err end
	if dual == nil then
		dual, err = env_bool(getenv, "AWS_USE_DUALSTACK_ENDPOINT")
		if err then return nil, err end
	end
	cfg.use_fips, cfg.use_dualstack = fips or false, dual or false

	-- endpoint
	local endpoint = opts.endpoint
	if endpoint == nil then
		endpoint = getenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
		if endpoint == "" then endpoint = nil end
		if endpoint == nil then
			endpoint = getenv("AWS_ENDPOINT_URL")
			if endpoint == "" then endpoint = nil end
		end
	end
	local url
	url, err = _M.endpoint{ endpoint = endpoint, region = region,
		use_fips = cfg.use_fips, use_dualstack = cfg.use_dualstack }
	if not url then return nil, err end
	local parsed = _M.parse_url(url)
	if not parsed then
		return cfg_error("invalid endpoint URL " .. tostring(url) ..
			" (expected http(s)://host[:port][/path])", { field = "endpoint" })
	end
	cfg.endpoint = parsed
	cfg.custom_endpoint = endpoint ~= nil

	-- retries
	local r = opts.retry or {}
	if type(r) ~= "table" then return cfg_error("retry must be a table", { field = "retry" }) end
	local mode = r.mode
	if mode == nil then
		mode = getenv("AWS_RETRY_MODE")
		if mode == "" then mode = nil end
	end
	mode = mode or "standard"
	if not retry_modes[mode] then
		return cfg_error("retry mode must be standard, legacy or adaptive (got " .. tostring(mode) .. ")",
			{ field = "retry.mode" })
	end
	local max = r.max_attempts
	if max == nil then
		local e = getenv("AWS_MAX_ATTEMPTS")
		if e and e ~= "" then
			max = tonumber(e)
			if not max then return cfg_error("AWS_MAX_ATTEMPTS must be an integer (got " .. e .. ")") end
		end
	end
	-- bounded: an infinite or absurd count would retry a throttled call for ever
	if max ~= nil and (type(max) ~= "number" or max < 1 or max > _M.MAX_ATTEMPTS or max ~= floor(max)) then
		return cfg_error("max_attempts must be an integer from 1 to " .. _M.MAX_ATTEMPTS ..
			" (got " .. tostring(max) .. ")", { field = "retry.max_attempts" })
	end
	cfg.retry = { mode = mode, max_attempts = max, sleep = r.sleep, random = r.random,
		clock = r.clock }

	-- timeouts (ms)
	local t = opts.timeouts or {}
	if type(t) ~= "table" then return cfg_error("timeouts must be a table", { field = "timeouts" }) end
	local timeouts = {}
	for k, v in pairs(_M.default_timeouts) do timeouts[k] = v end
	for k, v in pairs(t) do
		if _M.default_timeouts[k] == nil and k ~= "total" then
			return cfg_error("unknown timeout '" .. tostring(k) .. "' (connect, first_byte, idle, total)",
				{ field = "timeouts." .. tostring(k) })
		end
		if v ~= false and (type(v) ~= "number" or v <= 0) then
			return cfg_error("timeouts." .. k .. " must be a positive number of milliseconds or false",
				{ field = "timeouts." .. k })
		end
		timeouts[k] = v or nil
	end
	cfg.timeouts = timeouts

	-- auth scheme preference (only the in-code option overrides the env token, as in botocore)
	local pref = opts.auth_scheme_preference
	if pref ~= nil then
		if pref == "httpBearerAuth" then pref = "bearer" end
		if pref ~= "sigv4" and pref ~= "bearer" then
			return cfg_error("auth_scheme_preference must be \"sigv4\" or \"bearer\"",
				{ field = "auth_scheme_preference" })
		end
	end
	cfg.auth_scheme_preference = pref

	if opts.validate ~= nil and type(opts.validate) ~= "boolean" then
		return cfg_error("validate must be a boolean", { field = "validate" })
	end
	cfg.validate = opts.validate ~= false
	cfg.http2 = opts.http2
	cfg.verify = opts.verify
	if cfg.verify == nil then cfg.verify = true end
	cfg.cainfo, cfg.capath = opts.cainfo, opts.capath
	cfg.profile = opts.profile
	if cfg.profile == nil then
		local p = getenv("AWS_PROFILE")
		if p and p ~= "" then cfg.profile = p end
	end
	for _, k in ipairs{ "on_request", "on_response", "logger", "clock" } do
		if opts[k] ~= nil and type(opts[k]) ~= "function" then
			return cfg_error(k .. " must be a function", { field = k })
		end
		cfg[k] = opts[k]
	end
	cfg.user_agent = opts.user_agent
	-- response body limits (bytes, or false for none); nil: the transport's defaults
	for _, k in ipairs{ "max_body", "max_error_body" } do
		local v = opts[k]
		if v ~= nil and v ~= false and (type(v) ~= "number" or v ~= v or v < 0 or v == math.huge) then
			return cfg_error(k .. " must be a number of bytes, or false for no limit", { field = k })
		end
		cfg[k] = v
	end
	return cfg
end

return _M
