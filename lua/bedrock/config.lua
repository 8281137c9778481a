-- Client configuration: options, environment and the shared config/credentials files,
-- resolved the way botocore resolves them, and the endpoint rule set of bedrock-runtime.
--
-- resolve(opts, getenv) -> cfg | nil, err (ConfigError): options and environment only, at
-- client creation (no file is read). load(cfg) -> cfg | nil, err: on the first request,
-- reads ~/.aws/config and ~/.aws/credentials (or AWS_CONFIG_FILE /
-- AWS_SHARED_CREDENTIALS_FILE) once and fills in what options and environment left open.
-- Precedence for each setting: option > environment > the selected profile. getenv
-- defaults to os.getenv; specs pass a table-backed function.
local errors = require "bedrock.errors"

local _M = { _VERSION = "0.1.0" }

local type, tonumber, tostring, pairs, ipairs, next = type, tonumber, tostring, pairs, ipairs, next
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

-- Endpoint rules (botocore's endpoint rule set for bedrock-runtime). Returns url | nil, err.
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

--- @module options
-- `bedrock.client(opts)`: every option is optional; an unknown one is a `ConfigError`
-- naming it (a typo is never silently ignored). Environment variables and the shared
-- config files fill in what the options leave open (option > environment > profile).

--- @options client
local known_options = {
	region = true, -- signing and endpoint region. Default: `AWS_REGION`, `AWS_DEFAULT_REGION`, the
	-- profile's `region`; none is a `ConfigError` from the first request
	endpoint = true, -- a custom endpoint `http(s)://host[:port][/base]` (a base path is kept).
	-- Default: `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL`, the profile's
	-- `services` section or `endpoint_url`, else `https://bedrock-runtime.<region>.<partition suffix>`
	credentials = true, -- `{ access_key_id =, secret_access_key = [, session_token =] }`,
	-- `{ token = }` (a Bedrock API key), a provider (a function or an object with `:get()`)
	-- or a list of them. Default: the AWS CLI's chain (environment, profiles, roles, SSO,
	-- container, EC2 instance metadata)
	profile = true, -- the shared-files profile, like the CLI's `--profile` (wins over
	-- `AWS_DEFAULT_PROFILE` and `AWS_PROFILE`, and turns the environment's keys off)
	timeouts = true, -- `{ connect =, first_byte =, idle =, total = }` in milliseconds, `false` to
	-- turn one off; merged over the defaults below
	retry = true, -- `{ mode =, max_attempts =, sleep = fn(seconds), random = fn() }`; mode
	-- `"standard"` (default), `"legacy"` or `"adaptive"` (as standard); max_attempts 1..100
	-- (default 3). Default: `AWS_RETRY_MODE`, `AWS_MAX_ATTEMPTS`, the profile's `retry_mode`,
	-- `max_attempts`
	http2 = true, -- `true`: HTTP/2 (ALPN over TLS, prior knowledge on `http://`). Default `false`
	-- (the bidirectional stream always uses HTTP/2)
	validate = true, -- check requests against the service model before sending. Default `true`
	use_fips_endpoint = true, -- the FIPS endpoint variant (boolean). Default: `AWS_USE_FIPS_ENDPOINT`,
	-- the profile's `use_fips_endpoint`
	use_dualstack_endpoint = true, -- the dual-stack endpoint variant (boolean). Default:
	-- `AWS_USE_DUALSTACK_ENDPOINT`, the profile's `use_dualstack_endpoint`
	cainfo = true, -- a CA bundle file for TLS. Default: `AWS_CA_BUNDLE`, the profile's `ca_bundle`,
	-- else the system's
	capath = true, -- a directory of CA certificates for TLS
	verify = true, -- TLS peer and host name verification. Default `true`
	on_request = true, -- `fn(info)` before each attempt: `{ operation, method, url, attempt,
	-- headers, body_length }` (secret headers `<redacted>`)
	on_response = true, -- `fn(info)` once a response is in: the same fields plus `status`,
	-- `response_headers`, `http_version`, `timing`, or `error`
	logger = true, -- `fn(line, info)`: one readable line per request, response and credential refresh
	auth_scheme_preference = true, -- `"sigv4"` forces SigV4 even when `AWS_BEARER_TOKEN_BEDROCK` is
	-- set; `"bearer"` (also `"httpBearerAuth"`) keeps the default choice
	transport = true, -- `"curl"` or `"ngx"` by name (default: `"ngx"` inside nginx's Lua module,
	-- `"curl"` elsewhere), or an object with `request`/`open` like
	-- `bedrock.transport.curl.new{}` (shared connections, tests); an object keeps its own
	-- settings, so `timeouts`, `http2`, `verify`, `cainfo` and `capath` given with it are a
	-- `ConfigError`
	getenv = true, -- `fn(name)` used instead of `os.getenv` (tests)
	clock = true, -- `fn() -> UNIX seconds` for credential expiry checks (tests). Default `os.time`
	user_agent = true, -- the User-Agent header. Default `lua-bedrock/<version> <Lua version>`
	decode = true, -- `invoke_model` also decodes a JSON answer into `result.json`. Default `false`
	max_body = true, -- the largest response body read for a 2xx answer, in bytes (`false`: no
	-- limit; default below); past it the call ends with `ResponseTooLarge`
	max_error_body = true, -- the same for any other status (default below)
}
_M.known_options = known_options

--- @module call_options
-- `client:<operation>(req, opts)`: an optional table; an unknown key is refused like an
-- unknown client option (`nil, err`, a `ConfigError` whose `field` names it).

--- @options call
local known_call_options = {
	validate = true, -- check this request against the model (overrides the client's `validate`)
	timeouts = true, -- `{ connect =, first_byte =, idle =, total = }`, merged over the client's
	decode = true, -- `invoke_model`: also decode a JSON answer into `result.json`
	time = true, -- the signing time, UNIX seconds (tests, reproducible signatures)
	dry_run = true, -- validate, build and sign, send nothing: returns the prepared request
	-- `{ method, url, path, query, headers, body, host }`
	clock = true, -- the bidirectional stream: `fn() -> UNIX seconds` for the frames' `:date`
	max_body = true, -- overrides the client's `max_body` for this call
	max_error_body = true, -- overrides the client's `max_error_body` for this call
}
_M.known_call_options = known_call_options

-- check_call_options(opts) -> true | nil, ConfigError naming the first unknown option.
function _M.check_call_options(opts)
	if type(opts) ~= "table" then return cfg_error("per-call options must be a table") end
	for k in pairs(opts) do
		if not known_call_options[k] then
			local names = {}
			for n in pairs(known_call_options) do names[#names + 1] = n end
			table.sort(names)
			return cfg_error("unknown per-call option '" .. tostring(k) .. "' (known: " ..
				table.concat(names, ", ") .. ")", { field = tostring(k) })
		end
	end
	return true
end

---------------------------------------------------------------------------- files

-- botocore's os.path.expandvars + expanduser on a file name.
local function expand_path(path, getenv)
	path = path:gsub("%$(%b{})", function(b)
		return getenv(b:sub(2, -2)) or nil
	end):gsub("%$([%a_][%w_]*)", function(n) return getenv(n) or nil end)
	if path:sub(1, 1) == "~" and (path:sub(2, 2) == "/" or #path == 1) then
		local home = getenv("HOME")
		if home and home ~= "" then path = home .. path:sub(2) end
	end
	return path
end
_M.expand_path = expand_path

local function env(getenv, name)
	local v = getenv(name)
	if v == "" then return nil end
	return v
end

-- The profile the options and environment select: the `profile` option (the CLI's
-- --profile), else AWS_DEFAULT_PROFILE, else AWS_PROFILE (botocore's order), else
-- "default". The second result says whether it was named (a named profile must exist).
function _M.profile_name(opts, getenv)
	local p = opts and opts.profile
	if p ~= nil then return p, true, "option" end
	p = env(getenv, "AWS_DEFAULT_PROFILE")
	if p then return p, true, "AWS_DEFAULT_PROFILE" end
	p = env(getenv, "AWS_PROFILE")
	if p then return p, true, "AWS_PROFILE" end
	return "default", false
end

-- Reads both shared files: { config = view | nil, credentials = view | nil,
-- config_path =, credentials_path =, home = } | nil, err (a broken file names its line).
function _M.read_files(getenv)
	local ini = require "bedrock.ini"
	local home = env(getenv, "HOME")
	local cpath = expand_path(env(getenv, "AWS_CONFIG_FILE") or "~/.aws/config", getenv)
	local kpath = expand_path(env(getenv, "AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", getenv)
	local files = { home = home, config_path = cpath, credentials_path = kpath }
	local err
	if cpath:sub(1, 1) ~= "~" then
		files.config, err = ini.read(cpath, "config")
		if err then return nil, err end
	end
	if kpath:sub(1, 1) ~= "~" then
		files.credentials, err = ini.read(kpath, "credentials")
		if err then return nil, err end
	end
	files.config = files.config or { profiles = {}, sso_sessions = {}, services = {} }
	files.credentials = files.credentials or { profiles = {}, sso_sessions = {}, services = {} }
	return files
end

-- A profile's keys as botocore's full_config has them: the config file's section,
-- updated with the credentials file's section of the same name. nil when neither has it.
function _M.merged_profile(files, name)
	local a = files.config.profiles[name]
	local b = files.credentials.profiles[name]
	if not a and not b then return nil end
	local t = {}
	for k, v in pairs(a or {}) do t[k] = v end
	for k, v in pairs(b or {}) do t[k] = v end
	return t
end

-- The endpoint a service is configured to use, botocore's order: AWS_ENDPOINT_URL_<ID>,
-- AWS_ENDPOINT_URL, the profile's `services` section (`<id> = endpoint_url = …`), the
-- profile's endpoint_url; none of them when ignore_configured_endpoint_urls is true
-- (environment, then profile). service_id is botocore's snake-case id: "bedrock_runtime",
-- "sts", "sso", "signin". ctx: { getenv =, profile = {…}, files = {…} }.
-- Returns url | nil (nothing configured) | nil, err.
function _M.configured_endpoint(service_id, ctx)
	local getenv = ctx.getenv or os.getenv
	local prof = ctx.profile or {}
	local ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
	if ign == nil then ign = prof.ignore_configured_endpoint_urls end
	if type(ign) == "string" and ign:lower() == "true" then return nil end
	local v = env(getenv, "AWS_ENDPOINT_URL_" .. service_id:upper())
	if v then return v end
	v = env(getenv, "AWS_ENDPOINT_URL")
	if v then return v end
	if prof.services ~= nil then
		local name = prof.services
		local sec = type(name) == "string" and ctx.files and ctx.files.config and
			ctx.files.config.services[name]
		if not sec or next(sec) == nil then
			return nil, errors.make("ConfigError", "the profile is configured to use the services " ..
				"section but the \"" .. tostring(name) .. "\" services configuration does not exist")
		end
		local s = sec[service_id:lower()]
		if type(s) == "table" and s.endpoint_url and s.endpoint_url ~= "" then return s.endpoint_url end
	end
	v = prof.endpoint_url
	if type(v) == "string" and v ~= "" then return v end
	return nil
end

-- STS regions that keep the global endpoint under sts_regional_endpoints = legacy.
local sts_legacy_global = {}
for r in ("ap-northeast-1 ap-south-1 ap-southeast-1 ap-southeast-2 aws-global ca-central-1 " ..
	"eu-central-1 eu-north-1 eu-west-1 eu-west-2 eu-west-3 sa-east-1 us-east-1 us-east-2 " ..
	"us-west-1 us-west-2"):gmatch("%S+") do sts_legacy_global[r] = true end

-- endpoint_for(service_id, ctx [, region]) -> url | nil, err: the configured endpoint
-- (configured_endpoint), else the service's public endpoint in `region` (default: the
-- profile's resolved region, ctx.region). Known ids: "sts" (sts_regional_endpoints:
-- "regional", the default, or "legacy"), "sso" (portal.sso), "signin", "bedrock_runtime".
function _M.endpoint_for(service_id, ctx, region)
	local url, err = _M.configured_endpoint(service_id, ctx)
	if err then return nil, err end
	if not url then
		region = region or ctx.region
		local getenv = ctx.getenv or os.getenv
		if service_id == "sts" then
			local mode = env(getenv, "AWS_STS_REGIONAL_ENDPOINTS") or
				(ctx.profile and ctx.profile.sts_regional_endpoints) or "regional"
			if not region or region == "aws-global" or
				(mode == "legacy" and sts_legacy_global[region]) then
				url = "https://sts.amazonaws.com"
			else
				url = "https://sts." .. region .. "." .. _M.partition(region).dns
			end
		elseif not region then
			return nil, errors.make("ConfigError", "no region for the " .. service_id ..
				" endpoint: set region in the profile or AWS_REGION")
		elseif service_id == "sso" then
			url = "https://portal.sso." .. region .. "." .. _M.partition(region).dns
		elseif service_id == "sso_oidc" then
			url = "https://oidc." .. region .. "." .. _M.partition(region).dns
		elseif service_id == "signin" then
			-- botocore's signin endpoint rules, per partition
			local pid = _M.partition(region).id
			if pid == "aws" then url = "https://" .. region .. ".signin.aws.amazon.com"
			elseif pid == "aws-cn" then url = "https://" .. region .. ".signin.amazonaws.cn"
			elseif pid == "aws-us-gov" then url = "https://" .. region .. ".signin.amazonaws-us-gov.com"
			else url = "https://signin." .. region .. "." .. _M.partition(region).dns end
		elseif service_id == "bedrock_runtime" then
			url = "https://bedrock-runtime." .. region .. "." .. _M.partition(region).dns
		else
			url = "https://" .. service_id:gsub("_", "-") .. "." .. region .. "." .. _M.partition(region).dns
		end
	end
	if not _M.parse_url(url) then
		return nil, errors.make("ConfigError", "invalid " .. service_id .. " endpoint URL " .. tostring(url))
	end
	return url
end

---------------------------------------------------------------------------- resolve

local function str_bool(v, name)
	if v == nil or v == "" then return nil end
	if type(v) ~= "string" then return nil end
	local l = v:lower()
	if l == "true" then return true end
	if l == "false" then return false end
	return nil, errors.make("ConfigError", name .. " must be true or false (got " .. v .. ")")
end

-- One pass over options, environment and (when `prof` is given) the selected profile.
-- Without `prof` (at client creation: no file is read then) a missing region or an
-- endpoint that the files could still change is left for load().
local function compute(opts, getenv, prof, files, where)
	local cfg = {}
	local from_file = prof ~= nil
	prof = prof or {}
	local function fileval(k)
		local v = prof[k]
		if type(v) == "string" and v ~= "" then return v end
		return nil
	end

	-- region
	local region = opts.region
	if region == nil then
		region = env(getenv, "AWS_REGION") or env(getenv, "AWS_DEFAULT_REGION") or fileval("region")
	end
	if region == nil then
		if from_file then
			-- credentials resolve without a region (as botocore's do); a request cannot
			cfg.no_region = errors.make("ConfigError", "no region: pass region=, set AWS_REGION " ..
				"(or AWS_DEFAULT_REGION) or region in the profile" .. (where or ""), { field = "region" })
		end
	elseif type(region) ~= "string" or not region:match("^[%w][%w%-]*$") or #region > 63 then
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
	if fips == nil then
		fips, err = str_bool(fileval("use_fips_endpoint"), "use_fips_endpoint in the profile")
		if err then return nil, err end
	end
	dual, err = opt_bool(opts.use_dualstack_endpoint, "use_dualstack_endpoint")
	if err then return nil, err end
	if dual == nil then
		dual, err = env_bool(getenv, "AWS_USE_DUALSTACK_ENDPOINT")
		if err then return nil, err end
	end
	if dual == nil then
		dual, err = str_bool(fileval("use_dualstack_endpoint"), "use_dualstack_endpoint in the profile")
		if err then return nil, err end
	end
	cfg.use_fips, cfg.use_dualstack = fips or false, dual or false

	-- endpoint: the option, else what is configured (environment, then files)
	local endpoint = opts.endpoint
	if endpoint == nil then
		endpoint, err = _M.configured_endpoint("bedrock_runtime",
			{ getenv = getenv, profile = prof, files = files })
		if err then return nil, err end
	end
	if endpoint ~= nil or region ~= nil then
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
	end

	-- retries
	local r = opts.retry or {}
	if type(r) ~= "table" then return cfg_error("retry must be a table", { field = "retry" }) end
	local mode = r.mode
	if mode == nil then mode = env(getenv, "AWS_RETRY_MODE") or fileval("retry_mode") end
	mode = mode or "standard"
	if not retry_modes[mode] then
		return cfg_error("retry mode must be standard, legacy or adaptive (got " .. tostring(mode) .. ")",
			{ field = "retry.mode" })
	end
	local max = r.max_attempts
	if max == nil then
		local e, name = env(getenv, "AWS_MAX_ATTEMPTS"), "AWS_MAX_ATTEMPTS"
		if not e then e, name = fileval("max_attempts"), "max_attempts in the profile" end
		if e then
			max = tonumber(e)
			if not max then return cfg_error(name .. " must be an integer (got " .. e .. ")") end
		end
	end
	-- bounded: an infinite or absurd count would retry a throttled call for ever
	if max ~= nil and (type(max) ~= "number" or max < 1 or max > _M.MAX_ATTEMPTS or max ~= floor(max)) then
		return cfg_error("max_attempts must be an integer from 1 to " .. _M.MAX_ATTEMPTS ..
			" (got " .. tostring(max) .. ")", { field = "retry.max_attempts" })
	end
	cfg.retry = { mode = mode, max_attempts = max, sleep = r.sleep, random = r.random,
		clock = r.clock }

	cfg.cainfo = opts.cainfo
	if cfg.cainfo == nil then
		local ca = env(getenv, "AWS_CA_BUNDLE") or fileval("ca_bundle")
		if ca then cfg.cainfo = expand_path(ca, getenv) end
	end
	return cfg
end

local OPTION_TYPES = { getenv = "function", user_agent = "string", decode = "boolean",
	http2 = "boolean", verify = "boolean", cainfo = "string", capath = "string" }

function _M.resolve(opts, getenv)
	opts = opts or {}
	if type(opts) ~= "table" then return cfg_error("client options must be a table") end
	getenv = getenv or opts.getenv or os.getenv
	for k in pairs(opts) do
		if not known_options[k] then
			return cfg_error("unknown client option '" .. tostring(k) .. "'", { field = tostring(k) })
		end
	end
	if opts.profile ~= nil and (type(opts.profile) ~= "string" or opts.profile == "") then
		return cfg_error("profile must be a non-empty string", { field = "profile" })
	end
	-- plain-valued options have their type checked here, at creation, like the others
	for k, ty in pairs(OPTION_TYPES) do
		local v = opts[k]
		if v ~= nil and type(v) ~= ty then
			return cfg_error(k .. " must be a " .. ty .. " (got " .. type(v) .. ")", { field = k })
		end
	end
	if type(getenv) ~= "function" then
		return cfg_error("getenv must be a function", { field = "getenv" })
	end
	local cfg, err = compute(opts, getenv)
	if not cfg then return nil, err end
	cfg.getenv = getenv
	-- kept for load(), which completes the configuration from the files; without the
	-- credentials, so that no table reachable from a client holds a secret
	local kept = {}
	for k, v in pairs(opts) do if k ~= "credentials" then kept[k] = v end end
	cfg.opts = kept
	cfg.loaded = false

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
	cfg.capath = opts.capath
	cfg.profile, cfg.profile_named = _M.profile_name(opts, getenv)
	cfg.explicit_profile = opts.profile ~= nil
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

-- load(cfg) -> cfg | nil, err: reads the shared files once (on the first request) and
-- completes cfg with what the selected profile says where options and environment are
-- silent. Cached: later calls return at once (an error is returned again each time,
-- so that fixing the file needs a new client, as with botocore's session).
function _M.load(cfg)
	if cfg.loaded then return cfg end
	if cfg.load_error then return nil, cfg.load_error end
	local files, err = _M.read_files(cfg.getenv)
	if not files then cfg.load_error = err return nil, err end
	local name = cfg.profile
	local prof = _M.merged_profile(files, name)
	if not prof then
		if cfg.profile_named then
			err = errors.make("ConfigError", "the config profile (" .. name .. ") could not be found in " ..
				files.config_path .. " or " .. files.credentials_path, { field = "profile" })
			cfg.load_error = err
			return nil, err
		end
		prof = {}
	end
	local where = ""
	if next(prof) ~= nil then where = " [" .. name .. "]" end
	local c
	c, err = compute(cfg.opts, cfg.getenv, prof, files, where)
	if not c then cfg.load_error = err return nil, err end
	for k, v in pairs(c) do cfg[k] = v end
	-- the files and the merged profile may hold static keys: kept in a closure, so that
	-- no table reachable from a client holds them
	cfg.held_files = function() return files, prof end
	cfg.loaded = true
	return cfg
end

-- resolve + load at once (what a client has after its first request; a region is
-- required, unless an endpoint is given).
function _M.resolve_all(opts, getenv)
	local cfg, err = _M.resolve(opts, getenv)
	if not cfg then return nil, err end
	cfg, err = _M.load(cfg)
	if not cfg then return nil, err end
	if not cfg.endpoint then return nil, cfg.no_region end
	return cfg
end

return _M
