-- One error type for every failure the library reports.
-- Fields: code (AWS exception name or a local code), message, status, request_id,
-- retryable, field (validation path), and for timeouts `which`. Functions return
-- nil, err; stream iterators raise err itself.
local _M = { _VERSION = "0.1.0" }

local setmetatable, getmetatable, tostring, type, pairs = setmetatable, getmetatable, tostring, type, pairs
local concat = table.concat
local find, sub, gsub, format = string.find, string.sub, string.gsub, string.format

local Error = { __name = "bedrock.Error" }
Error.__index = Error

--- @module bedrock.errors
-- Every failure is one error type (`__name = "bedrock.Error"`). Functions return
-- `nil, err`; stream iterators and `task:await` raise `err` itself. `tostring(err)` is one
-- readable line, `ThrottlingException (429): Too many requests [request 6f1e…]`, and an error
-- concatenates with strings (`"failed: " .. err`). Secrets of the call's credentials are
-- replaced by `<redacted>` in every text field.

--- @field err.code The AWS exception name (from `x-amzn-ErrorType`, else the body) or a local code below.
--- @field err.message The service's message, else the HTTP reason; for local codes, what went wrong.
--- @field err.status The HTTP status, when there was a response.
--- @field err.request_id `x-amzn-RequestId`, when there was a response.
--- @field err.retryable Whether the retry policy retries this error.
--- @field err.attempts How many attempts the call made.
--- @field err.field `ValidationError`, `ConfigError`: the request path or option at fault
-- (`messages[1].content[1].text`, 1-based like Lua).
--- @field err.which `Timeout`: `"connect"`, `"first_byte"`, `"idle"`, `"total"`, or `"task"` (`task:await(seconds)`).
--- @field err.detail_code `StreamError`: `"TRUNCATED"` (a ConverseStream body that ended before
-- `messageStop`), `"CLOSED"` (read after `stream:close()`), `"BAD_HEADER"`, or the decoder's code.
--- @field err.option `ResponseTooLarge`: `"max_body"` or `"max_error_body"`; `err.limit` is the limit in bytes.
--- @field err.originalStatusCode ModelErrorException, ModelStreamErrorException: the modeled
-- extras `originalStatusCode`, `originalMessage`, `resourceName`.
--- @field err.messages `MaxTurnsExceeded` and failed tool loops: the history; also `err.usage`, `err.turns`.
--- @field err.traceback An error raised by `task:await`: the task's traceback.

-- Local codes (those not from the service).
--- @options codes
_M.codes = {
	ValidationError = true,  -- refused before sending: bad input, names `field`
	Timeout = true,          -- `which` = "connect" | "first_byte" | "idle" | "total"
	ConnectionError = true,  -- could not connect, reset, TLS failure
	StreamError = true,      -- event-stream framing or an in-stream error message
	SerializationError = true, -- a response we could not parse
	CredentialsError = true, -- no credentials, or a provider failed
	ConfigError = true,      -- bad client options or environment
	NotSupported = true,     -- a feature this client/transport does not offer (yet)
	Cancelled = true,        -- a bedrock.async task was cancelled (task:cancel())
	MaxTurnsExceeded = true, -- converse_with_tools: the model still asked for tools
	ResponseTooLarge = true, -- a response body passed max_body / max_error_body
}

function Error.__tostring(e)
	local parts = { tostring(e.code or "Error") }
	if e.status then parts[#parts + 1] = " (" .. tostring(e.status) .. ")" end
	parts[#parts + 1] = ": "
	if e.field then parts[#parts + 1] = tostring(e.field) .. ": " end
	parts[#parts + 1] = tostring(e.message or "")
	if e.request_id then parts[#parts + 1] = " [request " .. tostring(e.request_id) .. "]" end
	-- one line, whatever a service put in its message (some echo a canonical request)
	return (gsub(concat(parts), "[\r\n]+", " "))
end

-- "failed: " .. err and err .. "!" work as with the string errors of lua-resty code.
function Error.__concat(a, b)
	return tostring(a) .. tostring(b)
end

--- errors.new(fields) -> err
-- An error object from a table (`{ code =, message =, … }`, kept and returned); `retryable`
-- defaults to `false`. For providers, transports and tests of your own.
function _M.new(t)
	if type(t) ~= "table" then error("errors.new expects a table", 2) end
	if t.retryable == nil then t.retryable = false end
	return setmetatable(t, Error)
end

--- errors.make(code, message [, fields]) -> err
-- Shorthand for `errors.new` with `code` and `message` set in `fields`.
function _M.make(code, message, extra)
	local t = extra or {}
	t.code, t.message = code, message
	return _M.new(t)
end

--- errors.is(v [, code]) -> boolean
-- True when `v` is an error object of this library (with that `code`, when given).
function _M.is(v, code)
	if getmetatable(v) ~= Error then return false end
	return code == nil or v.code == code
end

---------------------------------------------------------------------------- parsing
-- Response and event-stream errors. These need JSON, loaded lazily
-- so that errors.lua stays usable on its own.

local reasons = {
	[400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
	[408] = "Request Timeout", [409] = "Conflict", [413] = "Payload Too Large",
	[424] = "Failed Dependency", [429] = "Too Many Requests",
	[500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
	[504] = "Gateway Timeout",
}
_M.reasons = reasons

-- "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/" -> ThrottlingException;
-- "com.amazonaws.bedrockruntime#ValidationException" -> ValidationException.
local function clean_code(v)
	if type(v) ~= "string" then return nil end
	v = v:match("^[^:]*")
	v = v:match("[^#]*$")
	if v == "" then return nil end
	return v
end
_M.clean_code = clean_code

-- Request id from lower-cased response headers (botocore's name, then the JS SDK's).
function _M.request_id(headers)
	if not headers then return nil end
	return headers["x-amzn-requestid"] or headers["x-amzn-request-id"] or headers["x-amz-request-id"]
end

local cjson_decode
local function decode_json(body)
	if type(body) ~= "string" or not body:find("^%s*{") then return nil end
	if not cjson_decode then cjson_decode = require("cjson").decode end
	local ok, v = pcall(cjson_decode, body)
	if ok and type(v) == "table" then return v end
	return nil
end

-- Extra members of modeled exceptions that the error object carries (API spelling).
local extra_members = { "originalStatusCode", "originalMessage", "resourceName" }

-- from_http(status, headers, body) -> error object, for a non-2xx response. headers has
-- lower-case names. Code: x-amzn-errortype, else body code/Code, else __type, else the
-- status as a string (botocore); each cut at ':' then after the last '#'. Message:
-- message, else Message, else the HTTP reason phrase.
function _M.from_http(status, headers, body)
	headers = headers or {}
	local doc = decode_json(body)
	local code = clean_code(headers["x-amzn-errortype"])
	if not code and doc then
		code = clean_code(doc.code) or clean_code(doc.Code) or clean_code(doc.__type)
	end
	code = code or tostring(status)
	local msg
	if doc then
		msg = doc.message
		if type(msg) ~= "string" then msg = doc.Message end
		if type(msg) ~= "string" then msg = nil end
	end
	local e = { code = code, message = msg or reasons[status] or ("HTTP " .. tostring(status)),
		status = status, request_id = _M.request_id(headers) }
	if doc then
		for _, k in ipairs(extra_members) do
			local v = doc[k]
			if v ~= nil and type(v) ~= "userdata" then
				if type(v) == "number" and math.tointeger then v = math.tointeger(v) or v end
				e[k] = v
			end
		end
	end
	return _M.new(e)
end

-- An error from a stream message is retryable as the same exception in an HTTP answer
-- would be (the retry policy decides; it is loaded here, not at the top: it is optional
-- for the rest of this module).
local function classified(err)
	local ok, retry = pcall(require, "bedrock.retry")
	if ok then err.retryable = retry.classify(err) ~= nil end
	return err
end

-- from_event(headers, payload) -> error object for an `exception` or `error` message.
-- exception: code = :exception-type with its first letter upper-cased; the message from
-- the payload. error: code = :error-code, message = :error-message. Header values of
-- another type than string (a hostile or broken peer) give a StreamError saying so.
function _M.from_event(h, payload)
	local mt = h[":message-type"]
	if mt == "exception" then
		local t = h[":exception-type"]
		if t == nil then t = "UnknownException" end
		if type(t) ~= "string" or t == "" then
			return _M.new{ code = "StreamError", in_stream = true, detail_code = "BAD_HEADER",
				message = "exception message whose :exception-type is not a non-empty string (" ..
					type(t) .. ")" }
		end
		local code = t:sub(1, 1):upper() .. t:sub(2)
		local doc = decode_json(payload) or {}
		local msg = doc.message
		if type(msg) ~= "string" then msg = doc.Message end
		if type(msg) ~= "string" then msg = code end
		local e = { code = code, message = msg, event_type = t, in_stream = true }
		for _, k in ipairs(extra_members) do
			local v = doc[k]
			if v ~= nil and type(v) ~= "userdata" then
				if type(v) == "number" and math.tointeger then v = math.tointeger(v) or v end
				e[k] = v
			end
		end
		return classified(_M.new(e))
	end
	local code, msg = h[":error-code"], h[":error-message"]
	if code ~= nil and (type(code) ~= "string" or code == "") then
		return _M.new{ code = "StreamError", in_stream = true, detail_code = "BAD_HEADER",
			message = "error message whose :error-code is not a non-empty string (" .. type(code) .. ")" }
	end
	if type(msg) ~= "string" then msg = nil end
	return classified(_M.new{ code = code or "StreamError", message = msg or "unmodeled stream error", in_stream = true })
end

-- too_large(option, limit, status, headers [, announced]) -> the ResponseTooLarge error of
-- a response body that passed `option` ("max_body" or "max_error_body") = `limit` bytes;
-- `announced` is the Content-Length when that alone passed it.
function _M.too_large(option, limit, status, headers, announced)
	local what = status and (status < 200 or status >= 300) and headers
		and clean_code(headers["x-amzn-errortype"])
	return _M.new{ code = "ResponseTooLarge", status = status, limit = limit, option = option,
		request_id = _M.request_id(headers),
		message = (announced and ("response body of " .. tostring(announced) ..
			" bytes (Content-Length) is larger than ") or "response body is larger than ") ..
			option .. " (" .. tostring(limit) .. " bytes)" .. (what and (" in a " .. what ..
			" answer") or "") }
end

-- Replaces every occurrence of the secret values (and their percent-encoded forms, as a
-- canonical query string would carry them) with "<redacted>" in every string field of
-- an error, nested tables included; the error is changed in place and returned. Values
-- shorter than 8 bytes are not searched (they would match ordinary words).
local REDACTED = "<redacted>"
local function replace_plain(s, needle)
	local i = find(s, needle, 1, true)
	if not i then return s end
	local out, pos, n = {}, 1, #needle
	while i do
		out[#out + 1] = sub(s, pos, i - 1)
		out[#out + 1] = REDACTED
		pos = i + n
		i = find(s, needle, pos, true)
	end
	out[#out + 1] = sub(s, pos)
	return concat(out)
end

local function pct(c) return format("%%%02X", c:byte()) end

local function redact_value(v, list, seen)
	if type(v) == "string" then
		for i = 1, #list do v = replace_plain(v, list[i]) end
		return v
	end
	if type(v) == "table" and not seen[v] then
		seen[v] = true
		for k, x in pairs(v) do
			if type(x) == "string" or type(x) == "table" then v[k] = redact_value(x, list, seen) end
		end
	end
	return v
end

-- redact(err, secrets) -> err; secrets is a list of strings (nil entries allowed up to n).
function _M.redact(err, secrets, n)
	local list = {}
	for i = 1, n or #secrets do
		local v = secrets[i]
		if type(v) == "string" and #v >= 8 then
			list[#list + 1] = v
			local enc = gsub(v, "[^A-Za-z0-9%-%._~]", pct)
			if enc ~= v then list[#list + 1] = enc end
		end
	end
	if #list == 0 or type(err) ~= "table" then return err end
	-- the longest first, so that a value containing another is replaced whole
	table.sort(list, function(a, b) return #a > #b end)
	return redact_value(err, list, {})
end

_M.Error = Error
return _M
