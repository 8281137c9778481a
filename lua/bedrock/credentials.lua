-- Credentials: the provider chain botocore uses, caching with botocore's refresh
-- windows, and the choice between SigV4 and bearer authentication.
--
-- A provider is a function `fn(ctx) -> creds | nil, err` or an object with
-- `obj:get(ctx)` returning the same; the built-in ones live in bedrock.credentials.*
-- (env, assume_role, web_identity, sso, shared, login, process, container, imds). creds is
--     { access_key_id =, secret_access_key =, session_token = (opt), expiration = (opt) }
--  or { token = "<bearer token>", expiration = (opt) }
-- expiration is UNIX seconds or an ISO-8601 string. A provider that has nothing to
-- offer returns nil (no error) so the chain moves on; an error ends the chain.
--
-- ctx, what every provider gets:
--   { getenv = fn(name), now = fn() -> UNIX seconds, http = fn(req) -> res | nil, err,
--     profile_name =, profile = {merged keys of the profile}, region = (resolved or nil),
--     files = { config = view, credentials = view } (bedrock.ini views), home =,
--     sleep = fn(seconds) (the client's retry sleep) }
--   req = { method =, url =, headers = { {name, value}, ... }, body =,
--           timeouts = { connect =, total = } (seconds) }
--   res = { status =, headers = { [lower-case name] = value }, body = }
local errors = require "bedrock.errors"
local shapes = require "bedrock.shapes"

local _M = { _VERSION = "0.1.0" }

local type, setmetatable, tostring, pcall, getmetatable, ipairs, pairs =
	type, setmetatable, tostring, pcall, getmetatable, ipairs, pairs

-- Credentials tables print without their secrets.
local util = require "bedrock.credentials.util"
local creds_mt = util.creds_mt
_M.creds_mt = creds_mt

local function cred_error(msg)
	return nil, errors.make("CredentialsError", msg)
end

-- Checks and normalises what a provider returned.
local function normalize(c, who)
	if type(c) ~= "table" then return cred_error(who .. " returned " .. type(c) .. ", expected a table") end
	local out = {}
	if c.token ~= nil then
		if type(c.token) ~= "string" then return cred_error(who .. ": token must be a string") end
		out.token = c.token
	else
		local id, secret = c.access_key_id, c.secret_access_key
		if type(id) ~= "string" or id == "" or type(secret) ~= "string" or secret == "" then
			return cred_error(who .. ": access_key_id and secret_access_key are both required")
		end
		if c.session_token ~= nil and type(c.session_token) ~= "string" then
			return cred_error(who .. ": session_token must be a string")
		end
		out.access_key_id, out.secret_access_key = id, secret
		if c.session_token ~= "" then out.session_token = c.session_token end
	end
	local exp = c.expiration
	if exp ~= nil then
		local t = shapes.parse_time(exp)
		if not t then return cred_error(who .. ": expiration must be UNIX seconds or ISO-8601") end
		out.expiration = t
	end
	out.source = c.source or who
	return setmetatable(out, creds_mt)
end

---------------------------------------------------------------------------- providers

-- Static credentials given in code.
function _M.static(c)
	local v, err = normalize(c, "credentials option")
	return function()
		if not v then return nil, err end
		return v
	end
end

-- AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (bedrock.credentials.env).
function _M.environment(getenv)
	getenv = getenv or os.getenv
	local p = require("bedrock.credentials.env").new()
	return function() return p:get{ getenv = getenv } end
end

-- Providers that need a module of their own only when the profile asks for them.
local function has_prefix_key(prof, prefix)
	for k in pairs(prof or {}) do
		if type(k) == "string" and k:sub(1, #prefix) == prefix then return true end
	end
	return false
end

local function optional(modname, what)
	local ok, M = pcall(require, modname)
	if ok then return M end
	return { new = function() return { get = function()
		return nil, errors.make("CredentialsError", what .. ": the profile needs " .. modname ..
			", which is not available (" .. tostring(M):match("^[^\n]*") .. ")", { provider = what })
	end } end }
end

-- The providers botocore builds for one profile (ProfileProviderBuilder): web identity,
-- SSO, the credentials file, login_session, credential_process, the config file.
-- use_env: whether web identity may read AWS_WEB_IDENTITY_TOKEN_FILE & co.
function _M.profile_providers(ctx, name, use_env)
	local config = require "bedrock.config"
	local prof = config.merged_profile(ctx.files, name) or {}
	local list = {}
	list[#list + 1] = require("bedrock.credentials.web_identity").new{ profile_name = name, use_env = use_env }
	if has_prefix_key(prof, "sso_") then
		list[#list + 1] = optional("bedrock.credentials.sso", "sso").new{ profile_name = name }
	end
	list[#list + 1] = require("bedrock.credentials.shared").new{ file = "credentials", profile_name = name }
	if prof.login_session ~= nil then
		list[#list + 1] = optional("bedrock.credentials.login", "login").new{ profile_name = name }
	end
	list[#list + 1] = require("bedrock.credentials.process").new{ profile_name = name }
	list[#list + 1] = require("bedrock.credentials.shared").new{ file = "config", profile_name = name }
	return list
end

-- Credentials of a profile through its own providers (the environment left out): what a
-- source_profile gives. creds | nil | nil, err
function _M.from_profile(ctx, name)
	for _, p in ipairs(_M.profile_providers(ctx, name, false)) do
		local c, err = p:get(ctx)
		if c or err then return c, err end
	end
	return nil
end

-- The default chain for ctx, in botocore's order: env, assume-role, web identity, SSO,
-- shared credentials file, login, credential_process, config file, container, IMDS.
-- An explicit profile (the `profile` option) leaves out the environment's keys and
-- web-identity variables, as the CLI's --profile does.
function _M.default_providers(ctx, explicit_profile)
	local list = {}
	if not explicit_profile then list[1] = require("bedrock.credentials.env").new() end
	list[#list + 1] = require("bedrock.credentials.assume_role").new()
	for _, p in ipairs(_M.profile_providers(ctx, ctx.profile_name, not explicit_profile)) do
		list[#list + 1] = p
	end
	list[#list + 1] = require("bedrock.credentials.container").new()
	list[#list + 1] = require("bedrock.credentials.imds").new()
	return list
end

-- Kept for callers that add their own constructors: each entry (getenv, cfg) -> provider
-- is tried before the built-in chain.
_M.default_chain = {}

local function call(p, ctx)
	if type(p) == "function" then return p(ctx) end
	if type(p) == "table" and type(p.get) == "function" then return p:get(ctx) end
	return cred_error("a credentials provider must be a function or an object with :get()")
end

local function pname(p, i)
	if type(p) == "table" and type(p.name) == "string" then return p.name end
	return "provider " .. i
end

-- The secret values a provider's request carries: the credential headers' values (and
-- the part after a scheme word, as in "Bearer <token>") and the form body's *Token values.
local SECRET_HEADERS = { authorization = true, ["x-amz-security-token"] = true,
	["x-amz-sso_bearer_token"] = true }
local function unform(v)
	return (v:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local function note_secrets(req, sent)
	for _, h in ipairs(type(req.headers) == "table" and req.headers or {}) do
		if type(h) == "table" and type(h[2]) == "string" and SECRET_HEADERS[string.lower(tostring(h[1]))] then
			sent[#sent + 1] = h[2]
			sent[#sent + 1] = h[2]:match("^%S+%s+(.+)$")
		end
	end
	if type(req.body) == "string" then
		for k, v in req.body:gmatch("([^&=]+)=([^&]*)") do
			if k:find("Token", 1, true) then sent[#sent + 1] = unform(v) end
		end
	end
end

-- A provider's error may carry what its endpoint echoed of the request (an SSO portal or
-- STS answer quoting the token it refused): each provider runs on a view of ctx whose
-- http notes the secrets it sends, and its error is redacted of them.
local function provider_ctx(ctx, sent)
	if type(ctx) ~= "table" or type(ctx.http) ~= "function" then return ctx end
	local http = ctx.http
	return setmetatable({ http = function(req)
		if type(req) == "table" then note_secrets(req, sent) end
		return http(req)
	end }, { __index = ctx, __newindex = ctx })
end

-- A chain of providers: the first that returns credentials wins.
-- ctx_fn: nil or a function returning ctx | nil, err (the default chain's context).
function _M.chain(list, ctx_fn, tried_hint)
	return function()
		local ctx, cerr
		if ctx_fn then
			ctx, cerr = ctx_fn()
			if not ctx then return nil, cerr end
		end
		local l = list
		if type(l) == "function" then l = l(ctx) end
		local tried = {}
		for i = 1, #l do
			local sent = {}
			local ok, c, err = pcall(call, l[i], provider_ctx(ctx, sent))
			if not ok then
				return nil, errors.redact(errors.make("CredentialsError", pname(l[i], i) ..
					": credentials provider failed: " .. tostring(c)), sent)
			end
			if c then return normalize(c, c.source or pname(l[i], i)) end
			if err then
				if not errors.is(err) then
					err = errors.make("CredentialsError", pname(l[i], i) .. ": " .. tostring(err))
				end
				return nil, errors.redact(err, sent)
			end
			tried[#tried + 1] = pname(l[i], i)
		end
		return nil, errors.make("CredentialsError", "no credentials found (tried: " ..
			table.concat(tried, ", ") .. "). " .. (tried_hint or "Pass credentials = { access_key_id =, " ..
			"secret_access_key = } or { token = }"), { tried = tried })
	end
end

-- Botocore's refresh windows (seconds before expiration).
_M.ADVISORY = 15 * 60
_M.MANDATORY = 10 * 60

-- Caching around a provider with botocore's windows. Credentials are reused until
-- 15 minutes before they expire (advisory): from then one caller refreshes and a
-- failed refresh keeps the old keys; from 10 minutes before (mandatory) the refresh
-- must succeed, its failure is the caller's error. Credentials that are expired are
-- never returned; a refresh that yields expired credentials is an error.
-- opts: clock (fn -> UNIX seconds), advisory, mandatory.
function _M.cached(provider, opts)
	opts = opts or {}
	local advisory = opts.advisory or opts.refresh or _M.ADVISORY
	local mandatory = opts.mandatory or math.min(_M.MANDATORY, advisory)
	local now = opts.clock or os.time
	local cur, busy, last_err, sema
	-- One refresh in flight: a caller that finds one running (another request of the
	-- same nginx worker, another bedrock.async task) waits for its outcome instead of
	-- starting its own. Without concurrency (plain blocking calls) busy is never seen.
	local function wait_for_fetch()
		local ngx_async = package.loaded["bedrock.async.ngx"]
		if ngx_async and ngx_async.active() then
			sema = sema or require("ngx.semaphore").new(0)
			sema:wait(60)
			if sema:count() < 0 then sema:post(-sema:count()) end
			return
		end
		local backend = require("bedrock.async").backend
		if not backend.current() then return end
		local waited = 0
		while busy and waited < 60 do
			backend.sleep(0.005)
			waited = waited + 0.005
		end
	end
	local function fetch()
		if busy then
			wait_for_fetch()
			if cur and (not cur.expiration or cur.expiration > now()) then return cur end
			if not busy then return nil, last_err end
		end
		busy = true
		local ok, c, err = pcall(provider)
		busy = false
		if sema and sema:count() < 0 then sema:post(-sema:count()) end
		if not ok then
			last_err = errors.make("CredentialsError", "credentials provider failed: " .. tostring(c))
			return nil, last_err
		end
		if c and c.expiration and c.expiration <= now() then
			last_err = errors.make("CredentialsError",
				(c.source or "provider") .. " returned credentials that are already expired")
			return nil, last_err
		end
		last_err = err
		return c, err
	end
	return function()
		if cur then
			if not cur.expiration then return cur end
			local left = cur.expiration - now()
			if left > advisory then return cur end
			if left > mandatory then
				if busy then return cur end
				local c = fetch()
				if c then cur = c end
				return cur
			end
			local c, err = fetch()
			if c then cur = c return c end
			if not err then
				err = errors.make("CredentialsError", "the credentials expire in " .. math.floor(left) ..
					" s and their provider found nothing to refresh them")
			end
			return nil, err
		end
		local c, err = fetch()
		if c then cur = c end
		return c, err
	end
end

-- Largest answer body a credential endpoint may give (IMDS, the container endpoint,
-- STS, the SSO portal and SSO-OIDC, the sign-in service): theirs are a few KiB. The
-- transport aborts a longer one (or one whose Content-Length says so) as soon as it
-- passes the limit, with a ResponseTooLarge error the provider names; the same limit
-- applies to a transport that would not enforce it itself.
_M.MAX_ANSWER = 1024 * 1024

-- An http function for the providers on top of a transport (t:request, timeouts in
-- ms): req.timeouts are seconds; every answer is bounded by MAX_ANSWER.
-- get_transport() -> transport | nil, err.
function _M.http_from(get_transport)
	return function(req)
		local t, err = get_transport()
		if not t then return nil, err end
		local to = req.timeouts or {}
		local total = (to.total or 5) * 1000
		local limit = _M.MAX_ANSWER
		local res, rerr = t:request{ method = req.method, url = req.url, headers = req.headers or {},
			body = req.body, max_body = limit, max_error_body = limit,
			timeouts = { connect = (to.connect or to.total or 5) * 1000, first_byte = total, idle = total,
				total = total } }
		if res and type(res.body) == "string" and #res.body > limit then
			return nil, errors.too_large("max_body", limit, res.status, res.headers)
		end
		return res, rerr
	end
end

-- The provider context for a client configuration (files read on first use), kept in a
-- closure on the configuration (it holds the parsed files, which may hold keys).
-- cfg.http: set by the client (its transport); without it a transport of our own.
function _M.context(cfg)
	local config = require "bedrock.config"
	local ok, err = config.load(cfg)
	if not ok then return nil, err end
	local ctx = cfg.creds_context and cfg.creds_context()
	if ctx then return ctx end
	local http = cfg.http
	if not http then
		local own
		local verify, cainfo, capath = cfg.verify, cfg.cainfo, cfg.capath
		http = _M.http_from(function()
			if own then return own end
			local T = require "bedrock.transport.curl"
			local t, terr = T.new{ verify = verify, cainfo = cainfo, capath = capath }
			if not t then return nil, terr end
			own = t
			return t
		end)
	end
	local files, profile = cfg.held_files()
	ctx = { getenv = cfg.getenv, now = cfg.clock or os.time, http = http, profile_name = cfg.profile,
		profile = profile, files = files, home = files.home, region = cfg.region,
		sleep = cfg.retry and cfg.retry.sleep or require("bedrock.retry").default_sleep }
	cfg.creds_context = function() return ctx end
	return ctx
end

---------------------------------------------------------------------------- resolve

-- resolve(opt, cfg) -> auth | nil, err where auth = { scheme = "sigv4" | "bearer", get = fn }
-- get() -> creds | nil, err (cached).
-- Bearer is chosen as botocore 1.43 chooses it: credentials = {token=},
-- or AWS_BEARER_TOKEN_BEDROCK present in the environment (even empty) unless the
-- in-code option auth_scheme_preference = "sigv4" says otherwise. Explicit access keys do
-- not prevent the environment token (botocore's rule); an empty env token is refused
-- locally with CredentialsError instead of sending "Bearer " (the JS SDK's behaviour).
function _M.resolve(opt, cfg)
	local getenv = cfg.getenv or os.getenv
	local pref = cfg.auth_scheme_preference
	local clock = cfg.clock

	if pref ~= "sigv4" then
		if type(opt) == "table" and getmetatable(opt) == nil and opt.token ~= nil and opt[1] == nil then
			local p = _M.static(opt)
			return { scheme = "bearer", get = p }
		end
		local env_token = getenv("AWS_BEARER_TOKEN_BEDROCK")
		if env_token ~= nil then
			return { scheme = "bearer", get = function()
				if env_token == "" then
					return cred_error("AWS_BEARER_TOKEN_BEDROCK is set but empty")
				end
				return setmetatable({ token = env_token, source = "environment" }, creds_mt)
			end }
		end
	end

	local provider
	if opt == nil then
		local extra = {}
		for i, mk in ipairs(_M.default_chain) do extra[i] = mk(getenv, cfg) end
		provider = _M.chain(function(ctx)
			local list = {}
			for i = 1, #extra do list[i] = extra[i] end
			for _, p in ipairs(_M.default_providers(ctx, cfg.explicit_profile)) do list[#list + 1] = p end
			return list
		end, function() return _M.context(cfg) end,
			"Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_BEARER_TOKEN_BEDROCK, or configure " ..
			"a profile in ~/.aws/config (aws configure), or pass credentials =")
	elseif type(opt) == "function" or (type(opt) == "table" and type(opt.get) == "function") then
		provider = _M.chain{ opt }
	elseif type(opt) == "table" and opt[1] ~= nil then
		provider = _M.chain(opt)
	elseif type(opt) == "table" then
		if opt.token ~= nil then
			-- {token=} with auth_scheme_preference = "sigv4": no SigV4 identity here
			return nil, errors.make("CredentialsError",
				"auth_scheme_preference is \"sigv4\" but only a bearer token was given")
		end
		local c, err = normalize(opt, "credentials option")
		if not c then return nil, err end
		provider = function() return c end
	else
		return nil, errors.make("ConfigError", "credentials must be a table, a function, an object " ..
			"with :get() or a list of providers", { field = "credentials" })
	end
	local cached = _M.cached(provider, { clock = clock })
	local last
	return { scheme = "sigv4", get = function()
		local c, err = cached()
		if c ~= last and c and cfg.logger and opt == nil then
			-- which provider of the default chain answered (never the keys themselves)
			cfg.logger("bedrock: credentials from " .. tostring(c.source) ..
				(c.expiration and (", expiring " .. os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(c.expiration))) or ""),
				{ credentials_source = c.source, expiration = c.expiration })
		end
		if c then last = c end
		if c and c.token then
			if pref == "sigv4" then
				return cred_error("a provider returned a bearer token but SigV4 is required")
			end
		end
		return c, err
	end, bearer_ok = pref ~= "sigv4" }
end

return _M
