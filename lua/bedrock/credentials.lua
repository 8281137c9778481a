-- Credentials: providers, the provider chain, caching with refresh before expiry, and the
-- choice between SigV4 and bearer authentication.
--
-- A provider is a function `fn() -> creds | nil, err` or an object with `obj:get()`
-- returning the same. creds is
--     { access_key_id =, secret_access_key =, session_token = (opt), expiration = (opt) }
--  or { token = "<bearer token>", expiration = (opt) }
-- expiration is UNIX seconds or an ISO-8601 string. A provider that has nothing to
-- offer returns nil (no error) so the chain moves on; an error ends the chain.
--
-- This issue ships the explicit and environment providers; the shared-file, web
-- identity, container and IMDS providers plug into `_M.default_chain` later.
local errors = require "bedrock.errors"
local shapes = require "bedrock.shapes"

local _M = { _VERSION = "0.1.0" }

local type, setmetatable, tostring, pcall, getmetatable, rawget, ipairs =
	type, setmetatable, tostring, pcall, getmetatable, rawget, ipairs

-- Credentials tables print without their secrets.
local creds_mt = {
	__name = "bedrock.Credentials",
	__tostring = function(c)
		if rawget(c, "token") then return "bedrock.Credentials(bearer <redacted>)" end
		local id = rawget(c, "access_key_id") or "?"
		return "bedrock.Credentials(" .. id:sub(1, 4) .. "…" ..
			(rawget(c, "session_token") and ", session token <redacted>" or "") .. ")"
	end,
}
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

-- AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
function _M.environment(getenv)
	getenv = getenv or os.getenv
	return function()
		local id, secret = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" then id = nil end
		if secret == "" then secret = nil end
		if not id and not secret then return nil end
		if not id or not secret then
			return cred_error("partial credentials in the environment: " ..
				(id and "AWS_SECRET_ACCESS_KEY" or "AWS_ACCESS_KEY_ID") .. " is not set")
		end
		local tok = getenv("AWS_SESSION_TOKEN")
		if tok == "" then tok = nil end
		return setmetatable({ access_key_id = id, secret_access_key = secret,
			session_token = tok, source = "environment" }, creds_mt)
	end
end

-- The default chain, in the AWS CLI's order. Later issues insert the shared-file,
-- web-identity, container and IMDS providers here: each entry is a function
-- (getenv, cfg) -> provider.
_M.default_chain = {
	function(getenv) return _M.environment(getenv) end,
}

local function call(p)
	if type(p) == "function" then return p() end
	if type(p) == "table" and type(p.get) == "function" then return p:get() end
	return cred_error("a credentials provider must be a function or an object with :get()")
end

-- A chain of providers: the first that returns credentials wins.
function _M.chain(list)
	return function()
		for i = 1, #list do
			local ok, c, err = pcall(call, list[i])
			if not ok then return cred_error("credentials provider failed: " .. tostring(c)) end
			if c then return normalize(c, c.source or ("provider " .. i)) end
			if err then
				if errors.is(err) then return nil, err end
				return cred_error(tostring(err))
			end
		end
		return cred_error("no credentials found: pass credentials = { access_key_id =, " ..
			"secret_access_key = } or { token = }, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY " ..
			"(or AWS_BEARER_TOKEN_BEDROCK)")
	end
end

-- Caching around a provider: credentials are reused until `refresh` seconds before their
-- expiration (default 300, like the JS SDK); a failed refresh keeps the old credentials
-- while they are still valid.
function _M.cached(provider, opts)
	opts = opts or {}
	local refresh = opts.refresh or 300
	local now = opts.clock or os.time
	local cur
	return function()
		if cur then
			if not cur.expiration then return cur end
			local t = now()
			if t < cur.expiration - refresh then return cur end
			local c, err = provider()
			if c then cur = c return c end
			if t < cur.expiration then return cur end
			return nil, err
		end
		local c, err = provider()
		if c then cur = c end
		return c, err
	end
end

---------------------------------------------------------------------------- resolve

-- resolve(opt, cfg) -> auth | nil, err where auth = { scheme = "sigv4" | "bearer", get = fn }
-- get() -> creds | nil, err (cached).
-- Bearer is chosen as botocore 1.43 chooses it (reference §3.2): credentials = {token=},
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
		local list = {}
		for i, mk in ipairs(_M.default_chain) do list[i] = mk(getenv, cfg) end
		provider = _M.chain(list)
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
	return { scheme = "sigv4", get = function()
		local c, err = cached()
		if c and c.token then
			if pref == "sigv4" then
				return cred_error("a provider returned a bearer token but SigV4 is required")
			end
		end
		return c, err
	end, bearer_ok = pref ~= "sigv4" }
end

return _M
