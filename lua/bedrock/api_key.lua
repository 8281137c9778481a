-- Short-term Bedrock API keys made from AWS credentials, byte for byte the token AWS's
-- token generator libraries produce (@aws/bedrock-token-generator and its siblings):
--
--   "bedrock-api-key-" .. base64("bedrock.amazonaws.com/?" .. <presigned query> .. "&Version=1")
--
-- where the presigned query is a SigV4 presign (service "bedrock", the given region,
-- method POST, path "/", host bedrock.amazonaws.com) of Action=CallWithBearerToken, its
-- parameters in sorted order as the JS SDK's URL formatter writes them. Any client sends
-- the key as `Authorization: Bearer <key>` (AWS_BEARER_TOKEN_BEDROCK). It is valid for
-- expires_in seconds (at most 12 hours) and never beyond the credentials it was made
-- from.
local core = require "bedrock.core"
local errors = require "bedrock.errors"

local _M = { _VERSION = "0.1.0" }

local type, tostring, floor, concat, sort, getmetatable =
	type, tostring, math.floor, table.concat, table.sort, getmetatable

_M.PREFIX = "bedrock-api-key-"
_M.HOST = "bedrock.amazonaws.com"
_M.MAX_EXPIRES = 43200
_M.DEFAULT_EXPIRES = 43200

local function verr(field, msg)
	return nil, errors.make("ValidationError", msg, { field = field })
end

-- generate(creds, region, expires_in, now) -> key. creds: access_key_id,
-- secret_access_key, session_token (opt). No checks: `_M.new` checks its input.
function _M.generate(creds, region, expires_in, now)
	local signer = core.signer()
	local q, msg = signer:presign{
		method = "POST", path = "/", query = "Action=CallWithBearerToken",
		headers = { { "host", _M.HOST } },
		access_key = creds.access_key_id, secret_key = creds.secret_access_key,
		session_token = creds.session_token,
		region = region, service = "bedrock", amz_date = core.amz_date(now),
		expires = expires_in,
	}
	signer:close()
	if not q then return nil, errors.make("CredentialsError", "cannot presign the API key: " .. tostring(msg)) end
	local parts = {}
	for kv in q:gmatch("[^&]+") do parts[#parts + 1] = kv end
	sort(parts, function(a, b) return a:match("^[^=]*") < b:match("^[^=]*") end)
	return _M.PREFIX .. core.b64encode(_M.HOST .. "/?" .. concat(parts, "&") .. "&Version=1")
end

local function creds_from(opts)
	local client = opts.client
	if client ~= nil then
		local mt = getmetatable(client)
		if type(client) ~= "table" or not mt or mt.__name ~= "bedrock.Client" then
			return verr("client", "must be a bedrock.client")
		end
		if client.auth.scheme ~= "sigv4" then
			return nil, errors.make("CredentialsError", "the client authenticates with a bearer " ..
				"token: an API key is made from AWS credentials (access key, secret, session token)")
		end
		local c, err = client.auth.get()
		if not c then return nil, err end
		return c, client.config.region
	end
	local config = require "bedrock.config"
	local credentials = require "bedrock.credentials"
	local now = opts.now
	local cfg, err = config.resolve{ region = opts.region, profile = opts.profile, getenv = opts.getenv,
		auth_scheme_preference = "sigv4", clock = now and function() return now end }
	if not cfg then return nil, err end
	local auth
	auth, err = credentials.resolve(opts.credentials, cfg)
	if not auth then return nil, err end
	local c
	c, err = auth.get()
	if not c then return nil, err end
	return c, cfg.region
end

-- new{ region =, expires_in =, credentials =, client =, profile =, getenv =, now = }
--   -> key, expires_at | nil, err
-- Credentials come from `client` (a bedrock.client using SigV4), else `credentials`
-- (what bedrock.client accepts), else the default chain; region from `region`, else the
-- client's or the configured one. now (UNIX seconds) is for tests.
function _M.new(opts)
	opts = opts or {}
	if type(opts) ~= "table" then return verr("options", "must be a table") end
	local region = opts.region
	if region ~= nil and (type(region) ~= "string" or not region:find("^[%w%-]+$")) then
		return verr("region", "must be a region name such as \"us-east-1\"")
	end
	local expires_in = opts.expires_in
	if expires_in == nil then expires_in = _M.DEFAULT_EXPIRES end
	if type(expires_in) ~= "number" or expires_in ~= floor(expires_in) or expires_in <= 0 or
		expires_in > _M.MAX_EXPIRES then
		return verr("expires_in", "must be a whole number of seconds in (0, " .. _M.MAX_EXPIRES .. "]")
	end
	local now = opts.now
	if now ~= nil and (type(now) ~= "number" or now ~= floor(now)) then
		return verr("now", "must be UNIX seconds")
	end
	now = now or os.time()
	local creds, r = creds_from(opts)
	if not creds then return nil, r end
	if creds.token then
		return nil, errors.make("CredentialsError", "the credentials are a bearer token: an API key is " ..
			"made from AWS credentials (access key, secret, session token)")
	end
	region = region or r
	if type(region) ~= "string" or region == "" then
		return verr("region", "no region: pass region = or configure one")
	end
	local exp = creds.expiration
	if exp and exp <= now then
		return nil, errors.make("CredentialsError", "the credentials have expired")
	end
	local key, err = _M.generate(creds, region, floor(expires_in), now)
	if not key then return nil, err end
	local expires_at = now + floor(expires_in)
	if exp and exp < expires_at then expires_at = exp end
	return key, expires_at
end

return _M
