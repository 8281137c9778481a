-- Sending: one attempt (sign, transmit, parse) and the call around it (retries with
-- backoff, the request/response hooks). `self` is the client.
--
--   call.run(client, plan, req, opts) -> result, meta | stream | nil, err
local config = require "bedrock.config"
local errors = require "bedrock.errors"
local request = require "bedrock.request"
local response = require "bedrock.response"
local retry = require "bedrock.retry"
local stream = require "bedrock.stream"

local _M = {}

local type, tostring, tonumber, error, getmetatable, setmetatable, next =
	type, tostring, tonumber, error, getmetatable, setmetatable, next
local check_call_options = config.check_call_options
local format = string.format
local ATTEMPT1, USER_AGENT, uuid4 = request.ATTEMPT1, request.USER_AGENT, request.uuid4
local EMPTY = setmetatable({}, { __newindex = function() error("read-only", 2) end })

local function hint_ms(headers)
	if not headers then return nil end
	local h = tonumber(headers["x-amz-retry-after"])
	if h then return h end
	h = tonumber(headers["retry-after"])
	if h then return h * 1000 end
	return nil
end

local function emit_request(self, info)
	local f = self.on_request
	if f then f(info) end
	if self.logger then
		self.logger(format("bedrock: -> %s %s (attempt %d)", info.method, info.url, info.attempt), info)
	end
end
_M.emit_request = emit_request

local function secs(v)
	return v and format("%.3fs", v) or "-"
end

local function emit_response(self, info)
	local f = self.on_response
	if f then f(info) end
	if self.logger then
		local tm = info.timing
		local when
		if not tm then
			when = ""
		elseif info.stream then
			when = format(" headers in %s, first event in %s (stream)", secs(tm.headers),
				secs(tm.first_event))
		else
			when = " in " .. secs(tm.total)
		end
		self.logger(format("bedrock: <- %s %s %s%s%s (attempt %d)%s", info.method, info.url,
			tostring(info.status or "-"), info.http_version and (" HTTP/" .. info.http_version) or "",
			when, info.attempt, info.error and (" " .. tostring(info.error)) or ""), info)
	end
end
_M.emit_response = emit_response

-- Timing of a streaming response for the hooks, from the transport stream's info() (a
-- transport without it gives none): connect and first_byte (seconds from the start of
-- the transfer to the connection and to the first response byte), headers (to when the
-- client had the response headers); stream_first_event adds first_event (to when the
-- first event, or the end of the stream, was read).
local function stream_timing(info, s)
	local inf = s.info and s:info()
	info.stream = true
	info.http_version = s.http_version
	if type(inf) == "table" then
		info.timing = { connect = inf.connect, first_byte = inf.first_byte, headers = inf.total }
	end
end
_M.stream_timing = stream_timing

local function stream_first_event(info, s)
	local inf = s.info and s:info()
	if type(inf) == "table" and info.timing then info.timing.first_event = inf.total end
end

local DECODE = { decode = true }

-- A function that redacts the credential values of creds from an error (in place): every
-- error a call returns or a stream raises goes through it, since a service may echo what
-- it received (an InvalidSignatureException carries the canonical request, session token
-- included). The values stay in the closure, in no table.
local function redactor(creds)
	local sk, st, tok = creds.secret_access_key, creds.session_token, creds.token
	return function(e)
		if type(e) == "table" then errors.redact(e, { sk, st, tok }, 3) end
		return e
	end
end
_M.redactor = redactor

-- One attempt with these credentials. Returns result | nil, err, response headers.
local function attempt_signed(self, p, creds, attempt, max, invocation_id, opts, decode)
	local hdrs, err = request.sign(self, p, creds, opts.time)
	if not hdrs then return nil, err end
	hdrs[#hdrs + 1] = { "amz-sdk-invocation-id", invocation_id }
	hdrs[#hdrs + 1] = attempt == 1 and ATTEMPT1 or
		{ "amz-sdk-request", "attempt=" .. attempt .. "; max=" .. max }
	local ua = self.ua_pair
	if not ua then
		ua = { "user-agent", self.config.user_agent or USER_AGENT }
		self.ua_pair = ua
	end
	hdrs[#hdrs + 1] = ua
	local t
	t, err = self:_transport()
	if not t then return nil, err end
	local cfg = self.config
	local url = request.url(cfg, p)
	local plan = p.plan
	local hooks = self.on_request or self.on_response or self.logger
	local info
	if hooks then
		info = { operation = plan.name, method = p.method, url = url, attempt = attempt,
			headers = request.redact_list(hdrs), body_length = p.body and #p.body or 0 }
		emit_request(self, info)
	end
	local timeouts = opts.timeouts
	local max_body, max_error_body = opts.max_body, opts.max_error_body
	if max_body == nil then max_body = cfg.max_body end
	if max_error_body == nil then max_error_body = cfg.max_error_body end
	if plan.output_stream then
		local s
		s, err = t:open{ method = p.method, url = url, headers = hdrs, body = p.body,
			timeouts = timeouts, max_body = max_body, max_error_body = max_error_body }
		if not s then
			if info then info.error = err; emit_response(self, info) end
			return nil, err
		end
		local status, rh = s.status, s.headers or {}
		if info then
			info.status, info.response_headers = status, rh
			stream_timing(info, s)
		end
		if status < 200 or status >= 300 then
			if info then emit_response(self, info) end
			local body, derr = response.drain(s, max_error_body, status, rh)
			s:close()
			if body == nil then return nil, derr, rh end
			local _, perr = response.parse(plan, status, rh, body)
			return nil, perr, rh
		end
		local st = response.stream(plan, s, status, rh)
		local ok
		ok, err = st:_prime()
		if info then
			-- after the first event: the hooks see the time to the first token
			stream_first_event(info, s)
			if not ok then info.error = err end
			emit_response(self, info)
		end
		if not ok then
			err.retryable = self.policy.classify(err) ~= nil
			return nil, err, rh
		end
		return st
	end
	local res
	if t == self.own_transport and self.treq then
		-- one request table per client, refilled per call: the curl transport only
		-- reads it and never yields inside (a caller's transport, or one that yields
		-- such as the nginx one, gets a table of its own per call)
		local tr = self.treq
		tr.method, tr.url, tr.headers, tr.body, tr.timeouts = p.method, url, hdrs, p.body, timeouts
		tr.max_body, tr.max_error_body = max_body, max_error_body
		res, err = t:request(tr)
		tr.headers, tr.body, tr.timeouts = nil, nil, nil
	else
		res, err = t:request{ method = p.method, url = url, headers = hdrs, body = p.body,
			timeouts = timeouts, max_body = max_body, max_error_body = max_error_body }
	end
	if not res then
		if info then info.error = err; emit_response(self, info) end
		return nil, err
	end
	if info then
		info.status, info.response_headers, info.timing = res.status, res.headers, res.timing
		info.http_version = res.http_version
		emit_response(self, info)
	end
	local out
	out, err = response.parse(plan, res.status, res.headers, res.body, decode and DECODE or nil)
	if not out then return nil, err, res.headers end
	return out, nil, res.headers, res.status
end

-- One attempt. Returns result | nil, err, response headers; the error redacted, and a
-- stream made to redact the errors it raises later.
local function attempt_once(self, p, attempt, max, invocation_id, opts, decode)
	local creds, err = self.auth.get()
	if not creds then return nil, err end
	local out, e, rh, status = attempt_signed(self, p, creds, attempt, max, invocation_id, opts, decode)
	if out == nil then
		redactor(creds)(e)
	elseif getmetatable(out) == stream.Stream then
		out.redact = redactor(creds)
	end
	return out, e, rh, status
end

-- The generic call: validate + build once, then attempts with retries.
function _M.run(self, plan, req, opts)
	opts = opts or EMPTY
	if type(opts) ~= "table" then error("options must be a table", 3) end
	if opts ~= EMPTY and next(opts) ~= nil then
		local ok, oerr = check_call_options(opts)
		if not ok then return nil, oerr end
	end
	if opts.dry_run then return self:_build(plan.name, req, opts) end
	local check = opts.validate
	if check == nil then check = self.config.validate end
	local p, err = request.prepare(self, plan, req, check)
	if not p then return nil, err end
	local decode = opts.decode
	if decode == nil then decode = self.decode end
	local policy = self.policy
	local max = policy.max_attempts
	local invocation_id = uuid4()
	local attempt, last_cost = 0, 0
	local sleep = self.config.retry.sleep or retry.default_sleep
	while true do
		attempt = attempt + 1
		local out, e, rh, status = attempt_once(self, p, attempt, max, invocation_id, opts, decode)
		if out then
			policy:success(last_cost)
			if type(out) == "table" and getmetatable(out) ~= stream.Stream then
				return out, { status = status or 200, request_id = errors.request_id(rh),
					headers = rh, attempts = attempt }
			end
			out.attempts = attempt
			-- `for ev in client:converse_stream(req) do` gets the stream as the loop's
			-- fourth (to-be-closed) value too: under Lua 5.4 a break releases it at once
			return out, nil, nil, out
		end
		if type(e) ~= "table" then e = errors.make("ConnectionError", tostring(e)) end
		local again, delay, cost = policy:decide(e, attempt, hint_ms(rh))
		e.retryable = policy.classify(e) ~= nil
		if not again then
			e.attempts = attempt
			return nil, e
		end
		last_cost = cost
		if delay > 0 then sleep(delay) end
	end
end

return _M
