-- One error type for every failure the library reports (DESIGN.md "Errors and retries").
-- Fields: code (AWS exception name or a local code), message, status, request_id,
-- retryable, field (validation path), and for timeouts `which`. Functions return
-- nil, err; stream iterators raise err itself.
local _M = { _VERSION = "0.1.0" }

local setmetatable, getmetatable, tostring, type = setmetatable, getmetatable, tostring, type
local concat = table.concat

local Error = { __name = "bedrock.Error" }
Error.__index = Error

-- Local codes (those not from the service).
_M.codes = {
	ValidationError = true,  -- refused before sending: bad input, names `field`
	Timeout = true,          -- `which` = "connect" | "first_byte" | "idle" | "total"
	ConnectionError = true,  -- could not connect, reset, TLS failure
	StreamError = true,      -- event-stream framing or an in-stream error message
	SerializationError = true, -- a response we could not parse
	CredentialsError = true, -- no credentials, or a provider failed
	ConfigError = true,      -- bad client options or environment
}

function Error.__tostring(e)
	local parts = { e.code or "Error" }
	if e.status then parts[#parts + 1] = " (" .. tostring(e.status) .. ")" end
	parts[#parts + 1] = ": "
	if e.field then parts[#parts + 1] = e.field .. ": " end
	parts[#parts + 1] = tostring(e.message or "")
	if e.request_id then parts[#parts + 1] = " [request " .. e.request_id .. "]" end
	return concat(parts)
end

-- new{code=, message=, status=, request_id=, retryable=, field=, ...} -> error object.
function _M.new(t)
	if type(t) ~= "table" then error("errors.new expects a table", 2) end
	if t.retryable == nil then t.retryable = false end
	return setmetatable(t, Error)
end

-- Shorthand: errors.make(code, message, extra_fields)
function _M.make(code, message, extra)
	local t = extra or {}
	t.code, t.message = code, message
	return _M.new(t)
end

function _M.is(v, code)
	if getmetatable(v) ~= Error then return false end
	return code == nil or v.code == code
end

_M.Error = Error
return _M
