-- IAM Identity Center (SSO) credentials, as botocore's SSOProvider finds them.
--
-- A profile uses SSO when it has `sso_role_name` or `sso_account_id`. With
-- `sso_session = NAME` the start URL and region come from `[sso-session NAME]` (a key in
-- both places must agree); without it (the legacy form) the profile holds
-- `sso_start_url` and `sso_region` itself. `aws sso login` leaves an access token in
-- ~/.aws/sso/cache/<sha1>.json, the SHA-1 hex of the session name (or, legacy, of the
-- start URL). The token buys role credentials from the portal's GetRoleCredentials.
--
-- A session token (sso_session form) that expires within 15 minutes is refreshed first
-- through SSO-OIDC CreateToken when the cache holds a refresh token and an unexpired
-- client registration, and the cache file is rewritten, as botocore's SSOTokenProvider
-- does; a failed refresh keeps the old token while it lasts. An expired token is an
-- error that says which `aws sso login` to run.
--
-- Endpoints: https://portal.sso.<region>.amazonaws.com and https://oidc.<region>.amazonaws.com,
-- configurable like botocore's (AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL_SSO_OIDC, the
-- services section, AWS_ENDPOINT_URL).
local core = require "bedrock.core"
local json = require "bedrock.json"
local shapes = require "bedrock.shapes"
local S = require "bedrock.credentials.support"

local P = { _VERSION = "0.1.0" }
P.__index = P

local type, tostring, setmetatable, floor, concat = type, tostring, setmetatable, math.floor, table.concat

local NAME = "sso"
local REFRESH_WINDOW = 15 * 60

-- P.new{ cache_dir = (opt) } -> provider. Without cache_dir the token cache is
-- <ctx.home>/.aws/sso/cache, where botocore looks.
function P.new(opts)
	opts = opts or {}
	if type(opts) ~= "table" then error("sso.new expects a table", 2) end
	return setmetatable({ cache_dir = opts.cache_dir }, P)
end

P.REFRESH_WINDOW = REFRESH_WINDOW

-- The profile's SSO configuration, or nil when the profile does not use SSO.
local function load_config(ctx, pname)
	local profile = ctx.profile or {}
	if profile.sso_role_name == nil and profile.sso_account_id == nil then return nil end
	local cfg = {}
	for k, v in pairs(profile) do cfg[k] = v end
	local required = { "sso_role_name", "sso_account_id", "sso_start_url", "sso_region" }
	local sname = profile.sso_session
	if sname ~= nil then
		local sessions = ctx.files and ctx.files.config and ctx.files.config.sso_sessions or {}
		local session = sessions[sname]
		if type(session) ~= "table" then
			return nil, S.err(NAME, pname, "the specified sso-session does not exist: \"" ..
				tostring(sname) .. "\" (add a [sso-session " .. tostring(sname) .. "] section to the config file)")
		end
		for _, k in ipairs(S.keys(session)) do
			local v = session[k]
			if cfg[k] ~= nil and cfg[k] ~= v then
				return nil, S.err(NAME, pname, "the value for " .. k ..
					" is inconsistent between the profile (" .. tostring(cfg[k]) ..
					") and sso-session \"" .. tostring(sname) .. "\" (" .. tostring(v) .. ")")
			end
			cfg[k] = v
		end
		required[#required + 1] = "sso_session"
	end
	local missing = {}
	for _, k in ipairs(required) do
		if type(cfg[k]) ~= "string" or cfg[k] == "" then missing[#missing + 1] = k end
	end
	if #missing > 0 then
		return nil, S.err(NAME, pname, "the profile is configured to use SSO but is missing " ..
			"required configuration: " .. concat(missing, ", "))
	end
	return cfg
end

local function login_hint(cfg, pname)
	if cfg.sso_session then return "run `aws sso login --sso-session " .. cfg.sso_session .. "`" end
	return "run `aws sso login --profile " .. tostring(pname) .. "`"
end

local function cache_dir(self, ctx)
	if self.cache_dir then return self.cache_dir end
	local home = ctx.home or (ctx.getenv or os.getenv)("HOME") or ""
	return home .. "/.aws/sso/cache"
end

-- The token cache file for cfg (botocore's SSOTokenLoader key).
function P.cache_file(dir, cfg)
	return dir .. "/" .. core.sha1_hex(cfg.sso_session or cfg.sso_start_url) .. ".json"
end

local function http_json(ctx, req)
	local res, herr = ctx.http(req)
	if not res then return nil, "request failed: " .. tostring(herr and (herr.message or herr) or "no answer") end
	local body = type(res.body) == "string" and res.body or ""
	local doc = body ~= "" and json.decode_raw(body) or nil
	return res, doc
end

local function error_type(res, doc)
	local t = res.headers and (res.headers["x-amzn-errortype"] or res.headers["x-amzn-error-type"])
	t = t or (type(doc) == "table" and (doc.__type or doc.error or doc.code)) or nil
	if type(t) ~= "string" then return "HTTP " .. tostring(res.status) end
	return (t:match("^[^:]*"):match("[^#]*$"))
end

-- SSO-OIDC CreateToken with the cached refresh token. Returns the new cache table or
-- nil, reason.
local function refresh_token(ctx, cfg, token)
	local base, eerr = S.endpoint(ctx, "sso_oidc", cfg.sso_region)
	if not base then return nil, eerr end
	local url = base .. "/token"
	local body = json.encode{ clientId = token.clientId, clientSecret = token.clientSecret,
		grantType = "refresh_token", refreshToken = token.refreshToken }
	local res, doc = http_json(ctx, { method = "POST", url = url,
		headers = { { "content-type", "application/json" } }, body = body, timeouts = S.TIMEOUTS })
	if not res then return nil, doc end
	if res.status ~= 200 then return nil, "CreateToken answered " .. error_type(res, doc) end
	if type(doc) ~= "table" or type(doc.accessToken) ~= "string" or
		not S.bounded_number(doc.expiresIn, S.MAX_LIFETIME) then
		return nil, "CreateToken gave an answer without accessToken and a valid expiresIn"
	end
	local new = {
		startUrl = cfg.sso_start_url, region = cfg.sso_region,
		accessToken = doc.accessToken,
		expiresAt = shapes.format_time(floor(ctx.now() + doc.expiresIn)),
		clientId = token.clientId, clientSecret = token.clientSecret,
		registrationExpiresAt = token.registrationExpiresAt,
	}
	if type(doc.refreshToken) == "string" then new.refreshToken = doc.refreshToken end
	return new
end

-- Loads the cached token, refreshing it when botocore would. Returns the access token.
local function access_token(self, ctx, cfg, pname)
	local file = P.cache_file(cache_dir(self, ctx), cfg)
	local token, reason, missing = S.read_json(file)
	local label = cfg.sso_session and ("sso-session \"" .. cfg.sso_session .. "\"")
		or ("start URL " .. cfg.sso_start_url)
	if not token then
		if missing then
			return nil, S.err(NAME, pname, "no cached SSO token for " .. label ..
				" (" .. login_hint(cfg, pname) .. ")", file)
		end
		return nil, S.err(NAME, pname, reason .. " (" .. login_hint(cfg, pname) .. ")", file)
	end
	if type(token.accessToken) ~= "string" or token.accessToken == "" or token.expiresAt == nil then
		return nil, S.err(NAME, pname, "the cached SSO token for " .. label ..
			" is invalid: it lacks accessToken or expiresAt (" .. login_hint(cfg, pname) .. ")", file)
	end
	local expires = shapes.parse_time(token.expiresAt)
	if not expires then
		return nil, S.err(NAME, pname, "the cached SSO token's expiresAt is not a timestamp (" ..
			login_hint(cfg, pname) .. ")", file)
	end
	local now = ctx.now()
	local why
	if cfg.sso_session and expires - now < REFRESH_WINDOW then
		local reg = token.registrationExpiresAt and shapes.parse_time(token.registrationExpiresAt)
		if type(token.refreshToken) ~= "string" or type(token.clientId) ~= "string" or
			type(token.clientSecret) ~= "string" or not reg then
			why = "the cache holds no refresh token and client registration"
		elseif reg <= now then
			why = "the client registration expired"
		else
			local new, rerr = refresh_token(ctx, cfg, token)
			if new then
				local ok, werr = S.write_json(file, new)
				if not ok then
					return nil, S.err(NAME, pname, "refreshed the SSO token but " .. werr, file)
				end
				token, expires = new, shapes.parse_time(new.expiresAt)
			else
				why = "the refresh failed: " .. tostring(type(rerr) == "table" and rerr.message or rerr)
			end
		end
	end
	if expires <= now then
		return nil, S.err(NAME, pname, "the SSO token for " .. label .. " has expired" ..
			(why and (" and " .. why) or "") .. ": " .. login_hint(cfg, pname), file)
	end
	return token.accessToken
end

-- p:get(ctx) -> creds | nil | nil, err
function P:get(ctx)
	local pname = ctx.profile_name or "default"
	local cfg, err = load_config(ctx, pname)
	if not cfg then return nil, err end
	local tok
	tok, err = access_token(self, ctx, cfg, pname)
	if not tok then return nil, err end

	local base, eerr = S.endpoint(ctx, "sso", cfg.sso_region)
	if not base then return nil, eerr end
	local url = base ..
		"/federation/credentials?role_name=" .. S.qs(cfg.sso_role_name) ..
		"&account_id=" .. S.qs(cfg.sso_account_id)
	local res, doc = http_json(ctx, { method = "GET", url = url,
		headers = { { "x-amz-sso_bearer_token", tok } }, timeouts = S.TIMEOUTS })
	if not res then return nil, S.err(NAME, pname, "GetRoleCredentials " .. doc) end
	if res.status ~= 200 then
		local t = error_type(res, doc)
		if t == "UnauthorizedException" then
			return nil, S.err(NAME, pname, "the SSO token was refused (UnauthorizedException): " ..
				login_hint(cfg, pname))
		end
		local msg = type(doc) == "table" and (doc.message or doc.Message) or nil
		return nil, S.err(NAME, pname, "GetRoleCredentials failed: " .. t ..
			(type(msg) == "string" and (": " .. msg) or ""))
	end
	local rc = type(doc) == "table" and doc.roleCredentials
	if type(rc) ~= "table" or type(rc.accessKeyId) ~= "string" or type(rc.secretAccessKey) ~= "string" or
		type(rc.sessionToken) ~= "string" or not S.bounded_number(rc.expiration, S.MAX_EPOCH_MS) then
		return nil, S.err(NAME, pname, "GetRoleCredentials gave an answer without roleCredentials " ..
			"(accessKeyId, secretAccessKey, sessionToken, expiration)")
	end
	return S.creds{
		access_key_id = rc.accessKeyId, secret_access_key = rc.secretAccessKey,
		session_token = rc.sessionToken, expiration = floor(rc.expiration / 1000),
		account_id = cfg.sso_account_id, source = NAME,
	}
end

return P
