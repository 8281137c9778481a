-- What every transport checks the same way: the four timeouts, the body limits, the
-- method and the headers, so that the curl and nginx transports accept and refuse exactly
-- the same values.
local errors = require "bedrock.errors"

local _M = {}

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local find = string.find

-- A ValidationError naming the request field.
local function verr(field, message)
	return errors.new{ code = "ValidationError", field = field, message = message }
end
_M.verr = verr

-- An HTTP token (RFC 9110): methods and header names.
local TOKEN = "^[%w!#$%%&'*+.^_`|~-]+$"

-- check_method(m) -> true | nil, err
function _M.check_method(method)
	if type(method) ~= "string" or not find(method, TOKEN) then
		return nil, verr("method", "must be an HTTP method token, got " .. tostring(method))
	end
	return true
end

-- header_pair(h, i [, names_ok]) -> name, value (a number as a string) | nil, err: the
-- i-th pair of a request's headers; names_ok[name] marks names already found tokens.
function _M.header_pair(h, i, names_ok)
	if type(h) ~= "table" then return nil, verr("headers[" .. i .. "]", "must be a {name, value} pair") end
	local name, value = h[1], h[2]
	if not (names_ok and names_ok[name]) and (type(name) ~= "string" or not find(name, TOKEN)) then
		return nil, verr("headers[" .. i .. "]", "header name must be a token, got " .. tostring(name))
	end
	if type(value) == "number" then value = tostring(value) end
	if type(value) ~= "string" then
		return nil, verr("headers[" .. i .. "]", "header '" .. name .. "' value must be a string")
	end
	if find(value, "[%z\r\n]") then
		return nil, verr("headers[" .. i .. "]", "header '" .. name .. "' value contains CR, LF or NUL")
	end
	return name, value
end

-- headers_array(list, n) -> true | nil, err: list (whose pairs 1..n were taken) has no
-- other keys.
function _M.headers_array(list, n)
	local keys = 0
	for _ in pairs(list) do keys = keys + 1 end
	if keys ~= n then return nil, verr("headers", "must be an array (no holes, no keys)") end
	return true
end

-- Largest response bodies a whole-body read takes by default: a success, an error answer.
_M.MAX_BODY, _M.MAX_ERROR_BODY = 64 * 1024 * 1024, 1024 * 1024

-- The timeout names, in the order the transports report them.
_M.TIMEOUT_NAMES = { "connect", "first_byte", "idle", "total" }
local known = {}
for _, n in pairs(_M.TIMEOUT_NAMES) do known[n] = true end

-- bad_limit(v) -> true when v is not a body limit: nil (the default), false (none) or a
-- byte count.
function _M.bad_limit(v)
	return v ~= nil and v ~= false and (type(v) ~= "number" or v ~= v or v < 0 or v == math.huge)
end

-- check_timeouts(t, field) -> true | nil, ValidationError naming field.name: t is nil or
-- a table of known timeouts, each milliseconds >= 0 or false (none).
function _M.check_timeouts(t, field)
	if t == nil then return true end
	if type(t) ~= "table" then
		return nil, errors.new{ code = "ValidationError", field = field, message = "must be a table of milliseconds" }
	end
	for k, v in pairs(t) do
		if not known[k] then
			return nil, errors.new{ code = "ValidationError", field = field .. "." .. tostring(k),
				message = "unknown timeout (known: connect, first_byte, idle, total)" }
		end
		if v ~= false and (type(v) ~= "number" or v ~= v or v < 0 or v > 1e12) then
			return nil, errors.new{ code = "ValidationError", field = field .. "." .. k,
				message = "must be a number of milliseconds >= 0" }
		end
	end
	return true
end

-- per_request(req, timeouts) -> the timeouts of one request (req.timeouts over the
-- transport's) | nil, ValidationError: req's timeouts and body limits checked.
local LIMITS = { "max_body", "max_error_body" }
function _M.per_request(req, timeouts)
	local mb, meb = req.max_body, req.max_error_body
	if (mb ~= nil or meb ~= nil) and (_M.bad_limit(mb) or _M.bad_limit(meb)) then
		for _, k in ipairs(LIMITS) do
			if _M.bad_limit(req[k]) then
				return nil, errors.new{ code = "ValidationError", field = k, message = "must be a byte count, or false" }
			end
		end
	end
	if req.timeouts == nil then return timeouts end
	local ok, e = _M.check_timeouts(req.timeouts, "timeouts")
	if not ok then return nil, e end
	local t = {}
	for k, v in pairs(timeouts) do t[k] = v end
	for k, v in pairs(req.timeouts) do t[k] = v end
	return t
end

return _M
