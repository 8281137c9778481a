-- The libcurl transport: what the client layer sends requests through.
--
--   local T = require "bedrock.transport.curl"
--   local t = T.new{ http2 = false, verify = true, cainfo = nil, capath = nil,
--                    timeouts = { connect = ms, first_byte = ms, idle = ms, total = ms },
--                    buffer_cap = bytes, max_body = bytes, max_error_body = bytes,
--                    wait = nil }
--   local res, err = t:request{ method =, url =, headers = { {name, value}, ... }, body =,
--                               timeouts = {...}, http2 = nil, max_body =, max_error_body = }
--   local s, err = t:open{ same fields, decoder = dec, body_stream = false }
--   s:read() ; s:send(bytes) ; s:close_input() ; s:close()
--   t:stats() ; t:step(ms) ; t:timeout() ; t:close()
--
-- One curl multi handle per transport (bedrock.core's HttpMulti): connections are kept
-- and reused across calls, HTTP/2 streams share a connection. The C side never calls Lua
-- and never blocks unless asked to: a wait either blocks in curl_multi_poll (one
-- m:step(), the default) or goes through T:_wait to the `wait` hook, which a coroutine
-- scheduler sets to yield (it then drives the multi with t:step()). Timeouts are
-- deadlines computed once per transfer in C and reported as Timeout errors naming `which`.
--
-- t:request() is every non-streaming call's path, so it is kept lean: no stream object,
-- the options table reused, URLs and methods checked once (memo), the header list handed
-- to C unchecked (C checks it; Lua looks only when C refuses), and when it blocks, the
-- start and the steps in one C call that hands back a response complete by then.
--- @module bedrock.transport.curl
-- `local curl = require "bedrock.transport.curl"`: the libcurl transport every client
-- creates for itself. Create one yourself to share connections between clients
-- (`bedrock.client{ transport = t }`) or to send HTTP requests of your own. Errors are
-- the same error objects: `Timeout` (`which`), `ConnectionError` (`curl_code`; not
-- retryable for TLS and URL problems), `StreamError`, `ValidationError` (`field`),
-- `ResponseTooLarge`. Request options: `method`, `url`, `headers` (`{ {name, value}, … }`,
-- sent in order), `body`, `timeouts`, `http2`, `max_body`, `max_error_body`; `open` also
-- takes `decoder` (a `bedrock.core` event-stream decoder) and `body_stream`.

local core = require "bedrock.core"
local errors = require "bedrock.errors"
local options = require "bedrock.transport.options"
local backend = require("bedrock.async").backend

local _M = { _VERSION = "0.1.0" }

local type, tostring, pairs, ipairs, setmetatable, getmetatable =
	type, tostring, pairs, ipairs, setmetatable, getmetatable
local concat = table.concat
local find = string.find

-- Longest single blocking wait in C; C shortens it to the nearest deadline anyway.
local WAIT_SLICE_MS = 1000

-- Largest whole response body t:request() collects (transport/options.lua): a success
-- (64 MiB: InvokeModel answers with generated images run to tens of MiB) and an error
-- answer (1 MiB: the service's are a few KiB). Past it the transfer is aborted with
-- ResponseTooLarge, so a body that never ends costs at most the limit plus one buffer cap.
local MAX_BODY, MAX_ERROR_BODY = options.MAX_BODY, options.MAX_ERROR_BODY
_M.MAX_BODY, _M.MAX_ERROR_BODY = MAX_BODY, MAX_ERROR_BODY

local Transport = {}
Transport.__index = Transport
Transport.__name = "bedrock.transport.curl"

local Stream = {}
Stream.__index = Stream
Stream.__name = "bedrock.transport.curl.Stream"

local verr, header_pair, headers_array = options.verr, options.header_pair, options.headers_array

-- curl codes that no retry can fix: bad URL, unsupported protocol, TLS trust/setup.
local NOT_RETRYABLE = { [1] = true, [3] = true, [35] = true, [51] = true, [53] = true,
	[58] = true, [59] = true, [60] = true, [77] = true, [80] = true, [83] = true, [90] = true,
	[91] = true, [98] = true }

-- The error object for a failed transfer, from x:read()'s nil, msg, CODE, kind, curl_code.
local function transfer_error(msg, code, kind, curl_code)
	if kind == "connect" or kind == "first_byte" or kind == "idle" or kind == "total" then
		return errors.new{ code = "Timeout", which = kind, retryable = true,
			message = kind .. " timeout: " .. tostring(msg) }
	end
	if kind == "nomem" then
		return errors.new{ code = "ConnectionError", message = tostring(msg), curl_code = curl_code }
	end
	if code == "HTTP_FAILED" then
		return errors.new{ code = "ConnectionError", message = tostring(msg),
			curl_code = curl_code, retryable = not NOT_RETRYABLE[curl_code or 0] }
	end
	-- HTTP_STATE (closed transfer), decoder errors, out of memory
	return errors.new{ code = code == "HTTP_STATE" and "ConnectionError" or "StreamError",
		message = tostring(msg), core_code = code }
end

local bad_limit, check_timeouts, per_request = options.bad_limit, options.check_timeouts,
	options.per_request

local too_large = errors.too_large

--- curl.new([opts]) -> transport
-- opts: `http2` (default false), `verify` (TLS verification, default true), `cainfo`,
-- `capath`, `timeouts` (`{ connect, first_byte, idle, total }`, ms; none by default),
-- `buffer_cap` (response buffer, default 1 MiB), `max_body` (default 64 MiB), `max_error_body`
-- (default 1 MiB), `wait` (`fn(t, timeout_ms)` called when a call must wait; may yield).
-- Raises a `ConfigError` naming `field` for a bad option.
function _M.new(opts)
	opts = opts or {}
	if type(opts) ~= "table" then error("bedrock.transport.curl.new expects an options table", 2) end
	local function bad(field, msg)
		error(errors.new{ code = "ConfigError", field = field, message = msg }, 3)
	end
	if opts.http2 ~= nil and type(opts.http2) ~= "boolean" then bad("http2", "must be a boolean") end
	if opts.verify ~= nil and type(opts.verify) ~= "boolean" then bad("verify", "must be a boolean") end
	if opts.cainfo ~= nil and type(opts.cainfo) ~= "string" then bad("cainfo", "must be a file name") end
	if opts.capath ~= nil and type(opts.capath) ~= "string" then bad("capath", "must be a directory name") end
	if opts.wait ~= nil and type(opts.wait) ~= "function" then bad("wait", "must be a function(t, timeout_ms)") end
	if opts.buffer_cap ~= nil and (type(opts.buffer_cap) ~= "number" or opts.buffer_cap < 0) then
		bad("buffer_cap", "must be a byte count")
	end
	for _, k in ipairs{ "max_body", "max_error_body" } do
		if bad_limit(opts[k]) then bad(k, "must be a byte count, or false for no limit") end
	end
	local ok, e = check_timeouts(opts.timeouts, "timeouts")
	if not ok then e.code = "ConfigError"; error(e, 2) end
	local multi, msg = core.http_multi()
	if not multi then error(errors.new{ code = "ConnectionError", message = msg }, 2) end
	local timeouts = {}
	for k, v in pairs(opts.timeouts or {}) do timeouts[k] = v end
	return setmetatable({
		multi = multi,
		http2 = opts.http2 or false,
		verify = opts.verify ~= false,
		cainfo = opts.cainfo,
		capath = opts.capath,
		timeouts = timeouts,
		buffer_cap = opts.buffer_cap,
		max_body = opts.max_body == nil and MAX_BODY or opts.max_body,
		max_error_body = opts.max_error_body == nil and MAX_ERROR_BODY or opts.max_error_body,
		wait = opts.wait,
		requests = 0,
		-- the C request options, refilled per call (Transport:_options)
		options = { verify = opts.verify ~= false, cainfo = opts.cainfo, capath = opts.capath,
			buffer_cap = opts.buffer_cap },
	}, Transport)
end

--- transport:step([timeout_ms]) -> running
-- Advances every transfer of this transport: waits up to timeout_ms (0 = not at all) for
-- activity. For schedulers; returns the number of running transfers.
function Transport:step(timeout_ms)
	if not self.multi then return 0 end
	local n, msg = self.multi:step(timeout_ms or 0)
	if not n then return nil, errors.new{ code = "ConnectionError", message = msg } end
	return n
end

--- transport:timeout() -> ms | nil
-- Milliseconds until a step is due without socket activity (nil: none pending).
function Transport:timeout()
	return self.multi and self.multi:timeout() or nil
end

-- One wait while `x` has nothing for us, decided per call. Inside a bedrock.async task:
-- yield to its scheduler, which steps this multi with every other and resumes the task
-- once progress() holds. With a wait hook: a non-blocking step, then the hook (which
-- may yield) if that brought nothing new. Otherwise: one blocking step in C.
function Transport:_wait(progress)
	local m = self.multi
	if not m then return nil, errors.new{ code = "ConnectionError", message = "transport is closed" } end
	if not self.wait and backend.current() then
		backend.wait_io(self, progress)
		if not self.multi then return nil, errors.new{ code = "ConnectionError", message = "transport is closed" } end
		return true
	end
	if not self.wait then
		local n, msg = m:step(WAIT_SLICE_MS)
		if not n then return nil, errors.new{ code = "ConnectionError", message = msg } end
		return true
	end
	local n, msg = m:step(0)
	if not n then return nil, errors.new{ code = "ConnectionError", message = msg } end
	if progress and progress() then return true end
	local t = m:timeout()
	if t == nil or t > WAIT_SLICE_MS then t = WAIT_SLICE_MS end
	self.wait(self, t)
	return true
end

-- Values already checked, so that a client sending the same URL and header names call
-- after call does not pay for the patterns again. Bounded: past the limit, new values are
-- checked every time.
local MEMO_MAX = 512
local url_ok, method_ok = {}, {}
local n_url, n_method = 0, 0

local function check_url(url)
	if type(url) ~= "string" or not (find(url, "^[Hh][Tt][Tt][Pp][Ss]?://[^/]")) then
		return nil, verr("url", "must be an http:// or https:// URL, got " .. tostring(url))
	end
	if find(url, "[%z\1-\32\127]") then
		return nil, verr("url", "must not contain spaces or control characters")
	end
	if n_url < MEMO_MAX then n_url = n_url + 1; url_ok[url] = true end
	return true
end

local function check_method(method)
	local ok, err = options.check_method(method)
	if not ok then return nil, err end
	if n_method < MEMO_MAX then n_method = n_method + 1; method_ok[method] = true end
	return true
end

-- The general header check: every pair validated here, numbers turned into strings;
-- returns a fresh list of pairs, or nil, err.
local function copy_headers(list)
	local headers = {}
	for i, h in ipairs(list) do
		local name, value = header_pair(h, i)
		if not name then return nil, value end
		headers[i] = { name, value }
	end
	local ok, err = headers_array(list, #headers)
	if not ok then return nil, err end
	return headers
end

-- Builds the C request options from a call's fields (validated), or nil, err. The table
-- is the transport's own, refilled per call: C only reads it during m:request, and the
-- caller clears the borrowed fields right after (see release_options).
function Transport:_options(req)
	if type(req) ~= "table" then return nil, verr("request", "must be a table") end
	local url = req.url
	if not url_ok[url] then
		local ok, e = check_url(url)
		if not ok then return nil, e end
	end
	local method = req.method
	local body, body_stream = req.body, req.body_stream
	if method == nil then method = (body ~= nil or body_stream) and "POST" or "GET" end
	if not method_ok[method] then
		local ok, e = check_method(method)
		if not ok then return nil, e end
	end
	if body ~= nil and type(body) ~= "string" then
		return nil, verr("body", "must be a string")
	end
	if body_stream ~= nil and type(body_stream) ~= "boolean" then
		return nil, verr("body_stream", "must be a boolean")
	end
	if body_stream and body ~= nil then
		return nil, verr("body", "cannot be combined with body_stream (use s:send)")
	end
	local http2 = req.http2
	if http2 ~= nil and type(http2) ~= "boolean" then
		return nil, verr("http2", "must be a boolean")
	end
	local timeouts, terr = per_request(req, self.timeouts)
	if not timeouts then return nil, terr end
	local headers = req.headers
	if headers ~= nil and type(headers) ~= "table" then
		return nil, verr("headers", "must be an array of {name, value} pairs")
	end
	if http2 == nil then http2 = self.http2 end
	local o = self.options
	o.url, o.method, o.headers, o.body = url, method, headers, body
	o.body_stream = body_stream or false
	o.http_version = http2 and 2 or 1
	o.timeouts = timeouts
	return o
end

local function is_decoder(v)
	local mt = type(v) == "userdata" and getmetatable(v)
	return mt and mt.__name == "bedrock.Decoder" or false
end

local function release_options(o)
	o.url, o.headers, o.body, o.timeouts = nil, nil, nil, nil
end

-- Starts the C transfer for validated options o; x or nil, err. The caller's header list
-- goes to C as it is: C checks every pair (raising on a wrong type or a list that is not
-- an array, answering BAD_HEADER with the index for a bad name or value), and only then
-- does copy_headers look at the list, for the precise ValidationError or to turn number
-- values into strings. The common case pays for no check in Lua.
--
-- With `fetch` (a caller that blocks on the transfer: no wait hook, no bedrock.async
-- task) the start and the blocking steps are one C call (m:fetch): a response complete
-- within one wait slice, within the body limits given, comes back whole as status,
-- headers, body, version, total, first_byte; anything else comes back as the transfer.
function Transport:_start(o, fetch, max_body, max_error_body)
	local m, headers = self.multi, o.headers
	local f = fetch and m.fetch or m.request
	local ok, x, msg, code, index, total, first_byte = pcall(f, m, o, max_body, max_error_body,
		WAIT_SLICE_MS)
	if not ok and headers == nil then
		release_options(o)
		error(x, 0)
	end
	if not ok or (not x and code == "BAD_HEADER") then
		local copy, e = copy_headers(headers)
		if not copy then
			release_options(o)
			return nil, e
		end
		if not ok then
			o.headers = copy
			-- a raise now is not about the headers
			x, msg, code, index, total, first_byte = f(m, o, max_body, max_error_body, WAIT_SLICE_MS)
			headers = copy
		end
	end
	release_options(o)
	if not x then
		if code == "BAD_HEADER" then
			local h = index and headers and headers[index]
			return nil, verr(h and ("headers[" .. index .. "]") or "headers", msg)
		end
		return nil, verr("request", msg)
	end
	self.requests = self.requests + 1
	if fetch and type(x) == "number" then
		-- status, headers, body, version, total, first_byte: the whole response
		return x, msg, code, index, total, first_byte
	end
	backend.track(x)
	return x
end

--- transport:open(req) -> tstream | nil, err
-- Starts a transfer and returns once its response headers arrived: a Stream with
-- status, headers (lower-case names), http_version; or nil, err. With body_stream = true
-- it returns at once, so that the caller can send before the server answers (a server
-- may wait for input before its headers); s:response() or the first s:read() then waits
-- for the headers and fills those fields.
function Transport:open(req)
	if not self.multi then return nil, errors.new{ code = "ConnectionError", message = "transport is closed" } end
	local o, err = self:_options(req)
	if not o then return nil, err end
	local dec = req.decoder
	if dec ~= nil and not is_decoder(dec) then
		release_options(o)
		return nil, verr("decoder", "must be a bedrock.Decoder (core.decoder())")
	end
	local body_stream = o.body_stream
	local x
	x, err = self:_start(o)
	if not x then return nil, err end
	local s = setmetatable({
		transport = self,
		x = x,
		decoder = dec,
		body_stream = body_stream,
	}, Stream)
	if not body_stream then
		local status, herr = s:response()
		if not status then
			s:close()
			return nil, herr
		end
	end
	return s
end

--- transport:request(req) -> res | nil, err
-- Sends a request and reads the whole response: { status, headers, body, http_version,
-- timing = { total, first_byte } (seconds) }, or nil, err. The common path of every
-- non-streaming call: one transfer driven to its end, no stream object. A body larger
-- than max_body (2xx) or max_error_body (any other status) aborts the transfer with
-- ResponseTooLarge as soon as the bytes read (or the Content-Length announced) pass it.
function Transport:request(req)
	local m = self.multi
	if not m then return nil, errors.new{ code = "ConnectionError", message = "transport is closed" } end
	local o, err = self:_options(req)
	if not o then return nil, err end
	if req.decoder ~= nil and not is_decoder(req.decoder) then
		release_options(o)
		return nil, verr("decoder", "must be a bedrock.Decoder (core.decoder())")
	end
	local x
	if not self.wait and not backend.current() then
		-- blocking: started and stepped in one C call, which hands back a response that
		-- completes within a wait slice and the limits (the loop below takes the rest)
		local max_body, max_error_body = req.max_body, req.max_error_body
		if max_body == nil then max_body = self.max_body end
		if max_error_body == nil then max_error_body = self.max_error_body end
		local headers, body, version, total, first_byte
		x, headers, body, version, total, first_byte = self:_start(o, true, max_body, max_error_body)
		if type(x) == "number" then
			return { status = x, headers = headers, body = body, http_version = version,
				timing = { total = total, first_byte = first_byte } }
		end
		err = headers
	else
		x, err = self:_start(o)
	end
	if not x then return nil, err end
	local body, parts, n = nil, nil, 0
	local progress, headers, version, limit, option
	local received = 0
	while true do
		local d, msg, code, kind, cc = x:read()
		if d == nil then
			if msg then
				x:close()
				return nil, transfer_error(msg, code, kind, cc)
			end
			break
		end
		if d ~= "" then
			if limit == nil then
				-- the first bytes: the status and headers are complete
				local st = x:status()
				headers, version = x:headers()
				if st and st >= 200 and st < 300 then
					option, limit = "max_body", req.max_body
					if limit == nil then limit = self.max_body end
				else
					option, limit = "max_error_body", req.max_error_body
					if limit == nil then limit = self.max_error_body end
				end
				local cl = headers and tonumber(headers["content-length"])
				if limit and cl and cl > limit then
					x:close()
					return nil, too_large(option, limit, st, headers, cl)
				end
			end
			received = received + #d
			if limit and received > limit then
				local st = x:status()
				x:close()
				return nil, too_large(option, limit, st, headers)
			end
			if body == nil then
				body = d
			else
				if not parts then parts, n = { body }, 1 end
				n = n + 1
				parts[n] = d
			end
		elseif not self.wait and not backend.current() then
			local r, smsg = m:step(WAIT_SLICE_MS)
			if not r then
				x:close()
				return nil, errors.new{ code = "ConnectionError", message = smsg }
			end
		else
			progress = progress or function()
				local st = x:state()
				return st ~= "pending" and st ~= "body" or x:buffered() > 0
			end
			local ok, e = self:_wait(progress)
			if not ok then
				x:close()
				return nil, e
			end
		end
	end
	if not headers then headers, version = x:headers() end
	local total, first_byte = x:timing()
	local res = {
		status = x:status(),
		headers = headers,
		body = parts and concat(parts) or body or "",
		http_version = version,
		timing = { total = total, first_byte = first_byte },
	}
	x:close()
	return res
end

--- transport:stats() -> { connections =, requests = }
-- Connections opened and transfers started so far.
function Transport:stats()
	local st = self.multi and self.multi:stats() or { connections = self.closed_connections or 0 }
	return { connections = st.connections, requests = self.requests }
end

--- transport:close()
-- Closes every connection and transfer of this transport. Idempotent.
function Transport:close()
	if self.multi then
		self.closed_connections = self.multi:stats().connections
		self.multi:close()
		self.multi = nil
	end
end

--- tstream:response() -> status, headers, http_version | nil, err
-- Waits for the response headers (if not there yet): status, headers, http_version, which
-- are also stored in the stream's fields; or nil, err.
function Stream:response()
	if self.status then return self.status, self.headers, self.http_version end
	local x = self.x
	if not x then return nil, errors.new{ code = "ConnectionError", message = "stream is closed" } end
	local t = self.transport
	local ready
	while x:state() == "pending" do
		if not ready and (t.wait or backend.current()) then
			ready = function() return x:state() ~= "pending" end
		end
		local ok, e = t:_wait(ready)
		if not ok then return nil, e end
	end
	local headers, version = x:headers()
	if not headers then
		-- failed (or was closed) before the response headers were complete
		local _, msg, code, kind, cc = x:read()
		return nil, transfer_error(msg, code, kind, cc)
	end
	self.status, self.headers, self.http_version = x:status(), headers, version
	return self.status, headers, version
end

--- tstream:read() -> bytes | true | false | nil [, err]
-- Next body bytes (waiting until some arrive), nil at a clean end, nil, err on failure.
-- With a decoder: feeds it and returns true, or false at the end.
function Stream:read()
	local x = self.x
	if not x then return nil, errors.new{ code = "ConnectionError", message = "stream is closed" } end
	if not self.status then
		local status, herr = self:response()
		if not status then return nil, herr end
	end
	local dec = self.decoder
	local t = self.transport
	while true do
		local d, msg, code, kind, cc
		if dec then
			d, msg, code, kind, cc = x:read_into(dec)
			if d and d > 0 then return true end
			if d == nil and msg == nil then return false end
		else
			d, msg, code, kind, cc = x:read()
			if d and d ~= "" then return d end
			if d == nil and msg == nil then return nil end
		end
		if d == nil then return nil, transfer_error(msg, code, kind, cc) end
		local progress
		if t.wait or backend.current() then
			progress = function()
				local st = x:state()
				return x:buffered() > 0 or (st ~= "pending" and st ~= "body")
			end
		end
		local ok, e = t:_wait(progress)
		if not ok then return nil, e end
	end
end

--- tstream:send(bytes) -> true | nil, err
-- Queues request body bytes (body_stream = true) and waits while more than one buffer
-- cap of input is queued (back-pressure). true, or nil, err.
function Stream:send(bytes)
	local x = self.x
	if not x then return nil, errors.new{ code = "ConnectionError", message = "stream is closed" } end
	if type(bytes) ~= "string" then return nil, verr("bytes", "must be a string") end
	if not self.body_stream then
		return nil, verr("body_stream", "this stream was opened without body_stream = true")
	end
	local ok, msg, code = x:send(bytes)
	if not ok then
		local st = x:state()
		if st == "failed" then
			local _, m2, c2, kind, cc = x:read()
			if m2 then return nil, transfer_error(m2, c2, kind, cc) end
		end
		return nil, errors.new{ code = "ConnectionError", message = msg, core_code = code }
	end
	local cap = self.transport.buffer_cap or core.http_buffer_cap
	local drained
	while x:pending() > cap do
		local st = x:state()
		if st ~= "pending" and st ~= "body" then break end
		drained = drained or function()
			local s2 = x:state()
			return x:pending() <= cap or (s2 ~= "pending" and s2 ~= "body")
		end
		local ok2, e = self.transport:_wait(drained)
		if not ok2 then return nil, e end
	end
	return true
end

--- tstream:close_input() -> true | nil, err
-- Ends the request body (HTTP/2 END_STREAM / last chunk). true, or nil, err.
function Stream:close_input()
	local x = self.x
	if not x then return nil, errors.new{ code = "ConnectionError", message = "stream is closed" } end
	if not self.body_stream then
		return nil, verr("body_stream", "this stream was opened without body_stream = true")
	end
	x:close_input()
	return true
end

--- tstream:info() -> table
-- Timing and buffer figures of the transfer (see HttpTransfer:info()).
function Stream:info()
	return self.x and self.x:info() or nil
end

--- tstream:close()
-- Aborts the transfer if still running (HTTP/1.1: the connection is closed; HTTP/2: the
-- stream is reset). Idempotent.
function Stream:close()
	if self.x then
		self.x:close()
		self.x = nil
	end
end

_M.Transport = Transport
_M.Stream = Stream
_M.transfer_error = transfer_error
return _M
