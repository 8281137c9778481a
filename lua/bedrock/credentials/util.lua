-- What the credential providers share: the credentials object (prints without its
-- secrets), provider errors, JSON and time parsing, reading small files.
local errors = require "bedrock.errors"

local _M = { _VERSION = "0.1.0" }

local type, tostring, setmetatable, rawget = type, tostring, setmetatable, rawget

-- Credentials tables print without their secrets.
local creds_mt = {
	__name = "bedrock.Credentials",
	__tostring = function(c)
		local src = rawget(c, "source")
		src = src and (", " .. tostring(src)) or ""
		if rawget(c, "token") then return "bedrock.Credentials(bearer <redacted>" .. src .. ")" end
		local id = rawget(c, "access_key_id") or "?"
		return "bedrock.Credentials(" .. id:sub(1, 4) .. "…" ..
			(rawget(c, "session_token") and ", session token <redacted>" or "") .. src .. ")"
	end,
}
_M.creds_mt = creds_mt

-- err(provider, message [, extra]) -> nil, CredentialsError naming the provider.
-- extra: { file =, line =, profile =, cause = }.
function _M.err(provider, msg, extra)
	extra = extra or {}
	extra.provider = provider
	local where = ""
	if extra.file then where = " (" .. extra.file .. (extra.line and (":" .. extra.line) or "") .. ")" end
	return nil, errors.make("CredentialsError", provider .. ": " .. msg .. where, extra)
end

-- A transport or HTTP failure as a short phrase without secrets.
function _M.describe(e)
	if errors.is(e) then return (e.code or "Error") .. ": " .. tostring(e.message) end
	return tostring(e)
end

-- creds{access_key_id=, secret_access_key=, session_token=, expiration=, source=}
function _M.creds(t)
	return setmetatable(t, creds_mt)
end

local shapes
-- ISO-8601 or UNIX seconds -> UNIX seconds | nil
function _M.time(v)
	shapes = shapes or require "bedrock.shapes"
	if v == nil then return nil end
	return shapes.parse_time(v)
end

-- decode a JSON object: table | nil, message
function _M.json_object(s)
	local json = require "bedrock.json"
	if type(s) ~= "string" then return nil, "no body" end
	local ok, v, e = pcall(json.decode_raw, s)
	if not ok then return nil, "not JSON" end
	if type(v) ~= "table" then return nil, e and "not JSON" or "not a JSON object" end
	return v
end

-- read(path) -> text | nil, message (the message names the file, never its content)
function _M.read_file(path)
	local f, e = io.open(path, "rb")
	if not f then return nil, "cannot open " .. tostring(path) .. ": " .. tostring(e):gsub("^[^:]*: ", "") end
	local s = f:read("*a")
	f:close()
	if not s then return nil, "cannot read " .. tostring(path) end
	return s
end

-- The access-key triple from a table with botocore's JSON names (container, IMDS,
-- credential_process): creds | nil, message.
function _M.from_json_names(t, source)
	local id, secret = t.AccessKeyId, t.SecretAccessKey
	if type(id) ~= "string" or id == "" or type(secret) ~= "string" or secret == "" then
		return nil, "the answer has no AccessKeyId and SecretAccessKey"
	end
	local tok = t.Token or t.SessionToken
	if tok ~= nil and type(tok) ~= "string" then return nil, "the session token is not a string" end
	local exp
	if t.Expiration ~= nil then
		exp = _M.time(t.Expiration)
		if not exp then return nil, "Expiration is not an ISO-8601 time" end
	end
	return _M.creds{ access_key_id = id, secret_access_key = secret,
		session_token = tok ~= "" and tok or nil, expiration = exp, source = source }
end

-- Header value lookup in a {name, value} list (case-insensitive).
function _M.header(list, name)
	for i = 1, #list do
		if list[i][1]:lower() == name then return list[i][2] end
	end
	return nil
end

-- A profile's static keys (aws_access_key_id, aws_secret_access_key, aws_session_token
-- or aws_security_token): creds | nil (no key id) | nil, message (partial).
function _M.profile_keys(prof, source)
	if type(prof) ~= "table" then return nil end
	local id, secret = prof.aws_access_key_id, prof.aws_secret_access_key
	if type(id) ~= "string" then id = nil end
	if type(secret) ~= "string" then secret = nil end
	if not id then return nil end
	if not secret or secret == "" then return nil, "aws_secret_access_key is missing" end
	local tok = prof.aws_session_token or prof.aws_security_token
	if type(tok) ~= "string" or tok == "" then tok = nil end
	return _M.creds{ access_key_id = id, secret_access_key = secret, session_token = tok,
		source = source }
end

return _M
