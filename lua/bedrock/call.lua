-- Sending: one attempt (sign, transmit, parse) and the call around it (retries with
-- backoff, the request/response hooks). `self` is the client.
--
--   call.run(client, plan, req, opts) -> result, meta | stream | nil, err
local errors = require "bedrock.errors"
local request = require "bedrock.request"
local response = require "bedrock.response"
local retry = require "bedrock.retry"
local stream = require "bedrock.stream"

local _M = {}

local type, tostring, tonumber, error, getmetatable, setmetatable =
	type, tostring, tonumber, error, getmetatable, setmetatable
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

local function emit_response(self, info)
	local f = self.on_response
	if f then f(info) end
	if self.logger then
		self.logger(format("bedrock: <- %s %s %s in %.3fs (attempt %d)%s", info.method, info.url,
			tostring(info.status or "-"), info.timing and info.timing.total or 0, info.attempt,
			info.error and (" " .. tostring(info.error)) or ""), info)
	end
end
_M.emit_response = emit_response

local DECODE = { decode = true }

-- One attempt. Returns result | nil, err, response headers.
local function attempt_once(self, p, attempt, max, invocation_id, opts, decode)
	local creds, err = self.auth.get()
	if not creds then return nil, err end
	local hdrs
	hdrs, err = request.sign(self, p, creds, opts.time)
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
	if plan.output_stream then
		local s
		s, err = t:open{ method = p.method, url = url, headers = hdrs, body = p.body,
			timeouts = timeouts }
		if not s then
			if info then info.error = err; emit_response(self, info) end
			return nil, err
		end
		local status, rh = s.status, s.headers or {}
		if info then
			info.status, info.response_headers = status, rh
			emit_response(self, info)
		end
		if status < 200 or status >= 300 then
			local body = response.drain(s)
			s:close()
			local _, perr = response.parse(plan, status, rh, body)
			return nil, perr, rh
		end
		local st = response.stream(plan, s, status, rh)
		local ok
		ok, err = st:_prime()
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
		res, err = t:request(tr)
		tr.headers, tr.body, tr.timeouts = nil, nil, nil
	else
		res, err = t:request{ method = p.method, url = url, headers = hdrs, body = p.body,
			timeouts = timeouts }
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

-- The generic call: validate + build once, then attempts with retries.
function _M.run(self, plan, req, opts)
	opts = opts or EMPTY
	if type(opts) ~= "table" then error("options must be a table", 3) end
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
			return out
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
