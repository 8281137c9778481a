-- Response parsing: a complete non-streaming response becomes the operation's result
-- table (or the error object); a streaming response becomes a Stream over its body.
--
--   response.parse(plan, status, headers, body [, opts]) -> result | nil, err
--   response.stream(plan, source, status, headers) -> Stream
--   response.stream_from_body(plan, status, headers, body [, slice]) -> Stream | nil, err
--   response.drain(source [, limit, status, headers]) -> body [, err] | nil, err
local errors = require "bedrock.errors"
local json = require "bedrock.json"
local retry = require "bedrock.retry"
local stream = require "bedrock.stream"

local _M = {}

local type, ipairs, tonumber, tostring, pcall = type, ipairs, tonumber, tostring, pcall
local find, sub = string.find, string.sub
local concat = table.concat
local tointeger = math.tointeger

local has_core, core = pcall(require, "bedrock.core")
if not has_core or type(core) ~= "table" then core = nil end

local function header_value(node, v)
	if v == nil then return nil end
	local k = node.kind
	if k == "integer" or k == "long" then
		local n = tonumber(v)
		return n and (tointeger and tointeger(n) or n) or v
	elseif k == "boolean" then
		return v == "true"
	end
	return v
end

-- Parses a complete non-streaming response: the same function the client uses on a
-- live response. headers have lower-case names. Returns result | nil, err.
function _M.parse(plan, status, headers, body, opts)
	headers = headers or {}
	if status < 200 or status >= 300 then
		local err = errors.from_http(status, headers, body)
		err.retryable = retry.classify(err) ~= nil
		return nil, err
	end
	local out
	if plan.output_payload_kind == "blob" then
		out = { [plan.output_payload] = body or "" }
		if opts and opts.decode then
			local ct = headers["content-type"] or ""
			if ct == "" or find(ct, "json", 1, true) then
				local v, err = json.decode(body or "")
				if v == nil then
					return nil, errors.new{ code = "SerializationError", status = status,
						message = "response body is not valid JSON: " .. tostring(err),
						request_id = errors.request_id(headers) }
				end
				out.json = v
			end
		end
	else
		if body == nil or body == "" or find(body, "^%s*$") then
			out = {}
		else
			local v, err = json.decode_raw(body)
			if type(v) ~= "table" then
				return nil, errors.new{ code = "SerializationError", status = status,
					message = "response body is not a JSON object: " .. tostring(err or type(v)),
					request_id = errors.request_id(headers) }
			end
			local ok
			ok, out = pcall(plan.output.read, v)
			if not ok then
				if not errors.is(out) then out = errors.make("SerializationError", tostring(out)) end
				out.status, out.request_id = status, errors.request_id(headers)
				return nil, out
			end
		end
	end
	local oh = plan.output_headers
	for i = 1, #oh do
		local m = oh[i]
		local v = headers[m.name]
		if v ~= nil then out[m.member] = header_value(m.node, v) end
	end
	return out
end

-- The Stream of a successful streaming response: `source` hands out body slices
-- (`source:read()`), the header members become the stream's meta fields.
function _M.stream(plan, source, status, headers)
	local meta = {}
	for _, m in ipairs(plan.output_headers) do
		local v = headers[m.name]
		if v ~= nil then meta[m.member] = header_value(m.node, v) end
	end
	local s = stream.new{ plan = plan, node = plan.output_stream, source = source,
		decoder = core.decoder(), request_id = errors.request_id(headers), status = status,
		headers = headers, meta = meta }
	s.meta_fields = meta
	return s
end

-- A Stream over recorded/complete bytes (captures, tests): the same stream code as a
-- live response. `slices` optionally splits the body (a size, or a list of sizes).
function _M.stream_from_body(plan, status, headers, body, slice)
	headers = headers or {}
	if status < 200 or status >= 300 then
		return nil, errors.from_http(status, headers, body)
	end
	if not core or not core.decoder then
		return nil, errors.make("ConfigError", "bedrock.core (decoder) is not available")
	end
	local pos = 1
	local src = { read = function()
		if pos > #body then return nil end
		local n = slice or #body
		local chunk = sub(body, pos, pos + n - 1)
		pos = pos + n
		return chunk
	end }
	return _M.stream(plan, src, status, headers)
end

-- Reads a whole (error) response body from an opened transfer: body [, err]. With a
-- limit (bytes; max_error_body) a body that passes it stops the reading: nil,
-- ResponseTooLarge (the caller closes the transfer), so a body that never ends costs at
-- most the limit plus one transport buffer of memory.
local DRAIN_LIMIT = 1024 * 1024
_M.DRAIN_LIMIT = DRAIN_LIMIT
local function drain(s, limit, status, headers)
	local parts, n = {}, 0
	if limit == nil then limit = DRAIN_LIMIT end
	while true do
		local data, err = s:read()
		if data == nil or data == false then
			if err then return concat(parts), err end
			break
		end
		if data ~= true then
			parts[#parts + 1] = data
			n = n + #data
			if limit and n > limit then
				return nil, errors.too_large("max_error_body", limit, status, headers)
			end
		end
	end
	return concat(parts)
end
_M.drain = drain

return _M
