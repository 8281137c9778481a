-- `aws login` credentials (profiles with `login_session`), as botocore's LoginProvider
-- finds them.
--
-- `aws login` leaves a session in <cache dir>/<sha256 hex of the session name>.json, the
-- cache dir being AWS_LOGIN_CACHE_DIRECTORY or ~/.aws/login/cache. The file holds
-- short-lived credentials (accessToken: accessKeyId, secretAccessKey, sessionToken,
-- accountId, expiresAt), a refreshToken, the clientId and the DPoP private key (dpopKey,
-- PEM EC P-256). While more than 5 minutes remain the cached credentials are used as
-- they are; otherwise they are refreshed through the sign-in service's
-- CreateOAuth2Token (POST /v1/token, grantType refresh_token, unsigned) with a DPoP
-- proof: an ES256 JWT over {htm, htu, iat, jti} carrying the public key, signed with
-- the cached key. The refreshed credentials and the rotated refresh token are written
-- back to the same file, the rest of it kept, as botocore writes it.
--
-- Endpoint: https://<region>.signin.aws.amazon.com (amazonaws.cn and amazonaws-us-gov
-- partitions by region prefix), configurable like botocore's (AWS_ENDPOINT_URL_SIGNIN,
-- the services section's `signin`, AWS_ENDPOINT_URL). The region is the client's
-- (ctx.region), else AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`.
local core = require "bedrock.core"
local json = require "bedrock.json"
local shapes = require "bedrock.shapes"
local S = require "bedrock.credentials.support"

local P = { _VERSION = "0.1.0" }
P.__index = P

local type, tostring, setmetatable, floor, concat, format =
	type, tostring, setmetatable, math.floor, table.concat, string.format

local NAME = "login"
P.REFRESH_THRESHOLD = 5 * 60
local RELOGIN = "run `aws login` again"

-- P.new{ cache_dir = (opt) } -> provider
function P.new(opts)
	opts = opts or {}
	if type(opts) ~= "table" then error("login.new expects a table", 2) end
	return setmetatable({ cache_dir = opts.cache_dir }, P)
end

-- base64url without padding (JWS).
local function b64url(s)
	return (core.b64encode(s):gsub("%+", "-"):gsub("/", "_"):gsub("=+$", ""))
end
P.b64url = b64url

-- ~ and $VAR / ${VAR} expanded as os.path.expandvars + expanduser do.
local function expand(path, ctx)
	local getenv = ctx.getenv or os.getenv
	path = path:gsub("%${([%w_]+)}", function(k) return getenv(k) end)
	path = path:gsub("%$([%a_][%w_]*)", function(k) return getenv(k) end)
	if path:sub(1, 1) == "~" and (path:sub(2, 2) == "/" or #path == 1) then
		path = (ctx.home or getenv("HOME") or "") .. path:sub(2)
	end
	return path
end

local function cache_dir(self, ctx)
	if self.cache_dir then return self.cache_dir end
	local getenv = ctx.getenv or os.getenv
	local d = getenv("AWS_LOGIN_CACHE_DIRECTORY")
	if d ~= nil then return expand(d, ctx) end
	return (ctx.home or getenv("HOME") or "") .. "/.aws/login/cache"
end

-- The cache file of a login session (botocore's generate_login_cache_key).
function P.cache_file(dir, session)
	return dir .. "/" .. core.sha256_hex(session) .. ".json"
end

-- PEM (any label) -> DER bytes | nil. botocore drops the -----BEGIN/-----END lines and
-- decodes the rest.
local function pem_der(pem)
	if type(pem) ~= "string" then return nil end
	local body = {}
	for line in (pem .. "\n"):gmatch("([^\r\n]*)\r?\n") do
		if not line:find("^%-%-%-%-%-BEGIN") and not line:find("^%-%-%-%-%-END") then
			body[#body + 1] = line
		end
	end
	local b64 = concat(body):gsub("%s", "")
	if b64 == "" then return nil end
	return core.b64decode(b64)
end

-- DPoP proof ids: random UUIDs from OpenSSL's CSPRNG (core.uuid4), never math.random
-- (the same seed in two processes would repeat them).
local uuid4 = core.uuid4

-- dpop_proof(der_key, url, iat [, jti]) -> compact JWS | nil, reason. The header and
-- payload are the JSON botocore's _build_dpop_header writes (same members, same order,
-- no spaces), so the same key, URL, time and jti give the same signing input.
function P.dpop_proof(der, url, iat, jti)
	local x, y = core.es256_public(der)
	if not x then return nil, "the cached dpopKey is not an EC P-256 private key" end
	local header = '{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","x":' ..
		json.quote(b64url(x)) .. ',"y":' .. json.quote(b64url(y)) .. ',"crv":"P-256"}}'
	local payload = '{"htm":"POST","htu":' .. json.quote(url) .. ',"iat":' .. format("%d", iat) ..
		',"jti":' .. json.quote(jti or uuid4()) .. '}'
	local input = b64url(header) .. "." .. b64url(payload)
	local sig = core.es256_sign(der, input)
	if not sig then return nil, "the cached dpopKey cannot sign" end
	return input .. "." .. b64url(sig)
end

local function signin_url(ctx, region)
	local base, err = S.endpoint(ctx, "signin", region)
	if not base then return nil, err end
	return base .. "/v1/token"
end

local function region_of(ctx)
	local getenv = ctx.getenv or os.getenv
	local r = ctx.region
	if type(r) ~= "string" or r == "" then r = getenv("AWS_REGION") end
	if type(r) ~= "string" or r == "" then r = getenv("AWS_DEFAULT_REGION") end
	if type(r) ~= "string" or r == "" then r = ctx.profile and ctx.profile.region end
	if type(r) ~= "string" or r == "" then return nil end
	return r
end

local function to_creds(token)
	local a = token.accessToken
	return S.creds{
		access_key_id = a.accessKeyId, secret_access_key = a.secretAccessKey,
		session_token = a.sessionToken, expiration = shapes.parse_time(a.expiresAt),
		account_id = a.accountId, source = NAME,
	}
end

local function refresh(ctx, token, pname, file)
	local der = pem_der(token.dpopKey)
	if not der then
		return nil, S.err(NAME, pname, "unable to load the private key from the cached token (" .. RELOGIN .. ")", file)
	end
	local region = region_of(ctx)
	if not region then
		return nil, S.err(NAME, pname, "no region for the sign-in service: set `region` in the profile " ..
			"or AWS_REGION", file)
	end
	local url, uerr = signin_url(ctx, region)
	if not url then return nil, uerr end
	-- iat is the wall clock, as botocore's (the server checks it against its own clock);
	-- ctx.now only decides when to refresh.
	local proof, perr = P.dpop_proof(der, url, os.time())
	if not proof then return nil, S.err(NAME, pname, perr .. " (" .. RELOGIN .. ")", file) end
	local body = json.encode{ clientId = token.clientId, refreshToken = token.refreshToken,
		grantType = "refresh_token" }
	local res, herr = ctx.http{ method = "POST", url = url, body = body, timeouts = S.TIMEOUTS,
		headers = { { "content-type", "application/json" }, { "DPoP", proof } } }
	if not res then
		return nil, S.err(NAME, pname, "CreateOAuth2Token request failed: " ..
			tostring(herr and (herr.message or herr) or "no answer"))
	end
	local doc = json.decode_raw(res.body or "")
	if res.status ~= 200 then
		local t = res.headers and res.headers["x-amzn-errortype"]
		t = type(t) == "string" and t:match("^[^:]*") or ("HTTP " .. tostring(res.status))
		local code = type(doc) == "table" and doc.error or nil
		local msg
		if t == "AccessDeniedException" and (code == "TOKEN_EXPIRED" or code == "USER_CREDENTIALS_CHANGED") then
			msg = "the login session has expired or its credentials changed (" .. code .. "): " .. RELOGIN
		elseif t == "AccessDeniedException" and code == "INSUFFICIENT_PERMISSIONS" then
			msg = "insufficient permissions to refresh the login session: the signin:CreateOAuth2Token " ..
				"action may be missing"
		else
			local m = type(doc) == "table" and (doc.message or doc.Message) or nil
			msg = "CreateOAuth2Token failed: " .. t .. (type(code) == "string" and (" " .. code) or "") ..
				(type(m) == "string" and (": " .. m) or "")
		end
		return nil, S.err(NAME, pname, msg)
	end
	local out = type(doc) == "table" and doc or nil
	local at = out and out.accessToken
	if type(at) ~= "table" or type(at.accessKeyId) ~= "string" or type(at.secretAccessKey) ~= "string" or
		type(at.sessionToken) ~= "string" or not S.bounded_number(out.expiresIn, S.MAX_LIFETIME) or
		type(out.refreshToken) ~= "string" then
		return nil, S.err(NAME, pname, "unable to refresh the login session: invalid answer from the " ..
			"sign-in service (" .. RELOGIN .. " if this persists)")
	end
	token.accessToken = {
		accessKeyId = at.accessKeyId, secretAccessKey = at.secretAccessKey, sessionToken = at.sessionToken,
		accountId = token.accessToken.accountId,
		expiresAt = shapes.format_time(floor(ctx.now()) + floor(out.expiresIn)),
	}
	token.refreshToken = out.refreshToken
	local ok, werr = S.write_json(file, token)
	if not ok then
		return nil, S.err(NAME, pname, "refreshed the login session but could not save it: " .. werr, file)
	end
	return to_creds(token)
end

local REQUIRED = { "accessToken", "refreshToken", "dpopKey", "clientId" }

-- p:get(ctx) -> creds | nil | nil, err
function P:get(ctx)
	local profile = ctx.profile or {}
	local session = profile.login_session
	if session == nil then return nil end
	local pname = ctx.profile_name or "default"
	if type(session) ~= "string" or session == "" then
		return nil, S.err(NAME, pname, "login_session must name a session")
	end
	local file = P.cache_file(cache_dir(self, ctx), session)
	local token, reason, missing = S.read_json(file)
	if not token then
		if missing then
			return nil, S.err(NAME, pname, "no login session \"" .. session .. "\" in the cache: " ..
				"run `aws login`", file)
		end
		return nil, S.err(NAME, pname, reason .. " (" .. RELOGIN .. ")", file)
	end
	local lacking = {}
	for _, k in ipairs(REQUIRED) do
		if token[k] == nil then lacking[#lacking + 1] = k end
	end
	if #lacking > 0 then
		return nil, S.err(NAME, pname, "the cached login session lacks " .. concat(lacking, ", ") ..
			" (" .. RELOGIN .. ")", file)
	end
	local a = token.accessToken
	if type(a) ~= "table" or type(a.accessKeyId) ~= "string" or type(a.secretAccessKey) ~= "string" or
		type(a.sessionToken) ~= "string" or not shapes.parse_time(a.expiresAt) then
		return nil, S.err(NAME, pname, "the cached login session's accessToken lacks accessKeyId, " ..
			"secretAccessKey, sessionToken or a valid expiresAt (" .. RELOGIN .. ")", file)
	end
	if type(token.refreshToken) ~= "string" or type(token.clientId) ~= "string" then
		return nil, S.err(NAME, pname, "the cached login session's refreshToken and clientId must be strings", file)
	end
	local exp = shapes.parse_time(a.expiresAt)
	if exp - ctx.now() > P.REFRESH_THRESHOLD then return to_creds(token) end
	return refresh(ctx, token, pname, file)
end

return P
