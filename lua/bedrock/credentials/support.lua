-- Helpers shared by the token-cache providers (sso.lua, login.lua): errors that name
-- the provider, the profile and the file; JSON cache files read and written the way
-- botocore's JSONFileCache does (whole-file replace through a temporary file); the
-- endpoint of a provider's own service, configured as botocore configures it; and one
-- HTTP call with a JSON answer.
local errors = require "bedrock.errors"
local json = require "bedrock.json"
local core = require "bedrock.core"

local _M = { _VERSION = "0.1.0" }

local type, tostring, pairs, format, rawget, setmetatable =
	type, tostring, pairs, string.format, rawget, setmetatable

-- err(provider, profile_name, message [, file]) -> error object (code CredentialsError).
-- The message never carries a secret: callers pass only names, paths and reasons.
function _M.err(provider, profile, message, file)
	local where = provider .. " credentials (profile \"" .. tostring(profile) .. "\"" ..
		(file and (", file " .. file) or "") .. ")"
	return errors.make("CredentialsError", where .. ": " .. message,
		{ provider = provider, profile = profile, file = file })
end

-- Credentials as a provider returns them, printing without their secrets.
local creds_mt = {
	__name = "bedrock.Credentials",
	__tostring = function(c)
		local id = rawget(c, "access_key_id") or "?"
		return "bedrock.Credentials(" .. tostring(rawget(c, "source")) .. ", " .. id:sub(1, 4) ..
			"…, secret <redacted>" .. (rawget(c, "session_token") and ", session token <redacted>" or "") .. ")"
	end,
}

function _M.creds(t)
	return setmetatable(t, creds_mt)
end

-- read_json(path) -> table | nil, reason, missing (true when the file does not exist)
function _M.read_json(path)
	local f, oerr = io.open(path, "rb")
	if not f then
		local missing = oerr and oerr:find("No such file", 1, true) ~= nil
		return nil, missing and "file not found" or "cannot read the file", missing
	end
	local s = f:read("*a")
	f:close()
	if not s then return nil, "cannot read the file" end
	local v = json.decode_raw(s)
	if type(v) ~= "table" then return nil, "the file is not a JSON object" end
	return v
end

-- write_json(path, value) -> true | nil, reason. Replaces the file whole through a
-- private (0600) temporary file beside it, as botocore's JSONFileCache does; creates the
-- directory when it is missing.
function _M.write_json(path, value)
	local body, jerr = json.encode(value)
	if not body then return nil, "cannot encode the cache: " .. tostring(jerr) end
	local ok, werr = core.replace_file(path, body)
	if not ok and _M.mkdir_p(_M.dirname(path)) then ok, werr = core.replace_file(path, body) end
	if not ok then return nil, werr end
	return true
end

-- Creates a directory and its parents (mode 0700 for the new ones), without a shell.
function _M.mkdir_p(dir)
	return core.mkdir_p(dir)
end

-- endpoint(ctx, service_id, region) -> base URL without a trailing '/' | nil, err: the
-- provider's own service endpoint, configured as botocore configures it
-- (config.endpoint_for: AWS_ENDPOINT_URL_<ID>, AWS_ENDPOINT_URL, the profile's services
-- section, its endpoint_url, then the service's default host for the region).
function _M.endpoint(ctx, service_id, region)
	local url, err = require("bedrock.config").endpoint_for(service_id, ctx, region)
	if not url then return nil, err end
	return (url:gsub("/+$", ""))
end

-- Percent-encodes a query value (RFC 3986 unreserved characters kept).
function _M.qs(v)
	return (tostring(v):gsub("[^%w%-%._~]", function(c) return format("%%%02X", c:byte()) end))
end

-- The directory part of a path.
function _M.dirname(path)
	return path:match("^(.*)/[^/]*$") or "."
end

-- Sorted keys of a table (stable messages).
function _M.keys(t)
	local out = {}
	for k in pairs(t) do out[#out + 1] = k end
	table.sort(out)
	return out
end

-- A count of seconds or milliseconds from a JSON answer: a number that is finite and
-- within [0, max] (cjson also decodes 1e400, -1, NaN and Infinity).
function _M.bounded_number(v, max)
	return type(v) == "number" and v == v and v >= 0 and v <= max
end
-- Lifetimes up to ten years (seconds); instants up to the year 9999 (milliseconds).
_M.MAX_LIFETIME = 10 * 366 * 86400
_M.MAX_EPOCH_MS = 253402300799000

-- Seconds, as ctx.http takes them.
_M.TIMEOUTS = { connect = 2, total = 10 }

return _M
