-- Retry policy: the SDKs' "standard" mode, plus botocore's "legacy".
--
-- standard:
--   * max attempts 3 (AWS_MAX_ATTEMPTS / retry.max_attempts count attempts, not retries)
--   * retried: throttling codes, transient codes, status 500/502/503/504, connection
--     errors the transport marks retryable (not TLS trust or URL errors), timeouts,
--     and exceptions with the modeled `retryable` trait (ModelNotReadyException);
--     never ModelTimeoutException, ModelErrorException or other client errors
--   * backoff: random() * min(base * 2^(n-1), 20) seconds, n = the attempt that failed.
--     base is the "v2026" choice of botocore's new retries and the JS SDK: 1 s after a
--     throttling error, 0.05 s after any other. A `x-amz-retry-after` (ms) or
--     `retry-after` (s) hint raises the delay to min(hint, delay + 5 s).
--   * retry quota: a bucket of 500 per client; a retry costs 5 (10 after a timeout or
--     connection error); no tokens left means no retry; a success refunds the cost of its
--     last retry, or 1 when it needed none; capped at 500.
-- legacy (AWS_RETRY_MODE=legacy): 5 attempts, random() * 2^(n-1) s, no quota, retries
--   429/500/502/503/504/509, connection errors and the throttling codes.
-- adaptive is accepted and behaves as standard (no client-side rate limiter yet).
local _M = { _VERSION = "0.1.0" }

local random, min, max = math.random, math.min, math.max

local THROTTLING = {
	Throttling = true, ThrottlingException = true, ThrottledException = true,
	RequestThrottledException = true, TooManyRequestsException = true,
	ProvisionedThroughputExceededException = true, TransactionInProgressException = true,
	RequestLimitExceeded = true, BandwidthLimitExceeded = true, LimitExceededException = true,
	RequestThrottled = true, SlowDown = true, PriorRequestNotComplete = true,
	EC2ThrottledException = true,
}
local TRANSIENT = {
	RequestTimeout = true, RequestTimeoutException = true, PriorRequestNotComplete = true,
}
local TRANSIENT_STATUS = { [500] = true, [502] = true, [503] = true, [504] = true }
_M.THROTTLING, _M.TRANSIENT, _M.TRANSIENT_STATUS = THROTTLING, TRANSIENT, TRANSIENT_STATUS

-- Modeled `retryable` trait and HTTP status of each exception (filled by client.lua from
-- the model's exception shapes). An exception that arrives inside an event stream has no
-- HTTP status of its own (the response was a 200): it is classified by its modeled one,
-- so InternalServerException is transient whether it came as a 500 or as a stream message.
_M.modeled, _M.modeled_status = {}, {}

-- classify(err) -> "throttling" | "transient" | "timeout" | nil
function _M.classify(err)
	if type(err) ~= "table" then return nil end
	local code = err.code
	if code == "Timeout" then return "timeout" end
	-- the transport marks what no retry can fix (bad URL, TLS trust) as not retryable
	if code == "ConnectionError" then return err.retryable and "timeout" or nil end
	if code == "ValidationError" or code == "ConfigError" or code == "CredentialsError"
		or code == "SerializationError" or code == "ResponseTooLarge" then
		return nil
	end
	if THROTTLING[code] then return "throttling" end
	local trait = _M.modeled[code]
	if trait then return trait.throttling and "throttling" or "transient" end
	if TRANSIENT[code] then return "transient" end
	local status = err.status
	if status == nil and err.in_stream then status = _M.modeled_status[code] end
	if status and TRANSIENT_STATUS[status] then return "transient" end
	return nil
end

local LEGACY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true, [509] = true }

function _M.classify_legacy(err)
	if type(err) ~= "table" then return nil end
	if err.code == "Timeout" then return "timeout" end
	if err.code == "ConnectionError" then return err.retryable and "timeout" or nil end
	if err.status and LEGACY_STATUS[err.status] then return "transient" end
	if THROTTLING[err.code] then return "throttling" end
	return nil
end

local Policy = {}
Policy.__index = Policy

-- new{ mode =, max_attempts =, sleep = fn(seconds), random = fn() -> [0,1) }
function _M.new(o)
	o = o or {}
	local mode = o.mode or "standard"
	local p = setmetatable({
		mode = mode,
		max_attempts = o.max_attempts or (mode == "legacy" and 5 or 3),
		sleep = o.sleep,
		random = o.random or random,
		capacity = 500, tokens = 500,
		cost = 5, timeout_cost = 10,
		use_quota = mode ~= "legacy",
		classify = mode == "legacy" and _M.classify_legacy or _M.classify,
	}, Policy)
	return p
end

-- Backoff before retry n+1, after attempt n failed with an error of this kind.
function Policy:delay(n, kind, hint_ms)
	local d
	if self.mode == "legacy" then
		d = self.random() * 2 ^ (n - 1)
	else
		local base = kind == "throttling" and 1 or 0.05
		d = self.random() * min(base * 2 ^ (n - 1), 20)
	end
	if hint_ms then
		local h = hint_ms / 1000
		d = max(d, min(h, d + 5))
	end
	return d
end

-- decide(err, attempt) -> retry?, delay, cost. Takes tokens from the quota when retrying.
function Policy:decide(err, attempt, hint_ms)
	local kind = self.classify(err)
	if not kind then return false end
	if attempt >= self.max_attempts then return false end
	local cost = 0
	if self.use_quota then
		cost = kind == "timeout" and self.timeout_cost or self.cost
		if self.tokens < cost then return false end
		self.tokens = self.tokens - cost
	end
	return true, self:delay(attempt, kind, hint_ms), cost
end

-- A call succeeded; last_cost is what its last retry cost (nil/0 when none).
function Policy:success(last_cost)
	if not self.use_quota then return end
	local refund = (last_cost and last_cost > 0) and last_cost or 1
	self.tokens = min(self.capacity, self.tokens + refund)
end

-- Phases of nginx's Lua module where ngx.sleep works (it yields to the event loop).
local NGX_SLEEP_PHASES = { rewrite = true, access = true, content = true, timer = true,
	ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true }

-- Default sleep, decided per call: inside a bedrock.async task it yields to the
-- scheduler (other tasks run during the backoff); inside nginx (where ngx.sleep can
-- yield) ngx.sleep, so the worker serves other requests meanwhile; elsewhere it blocks
-- the thread (core.sleep, nanosleep).
function _M.default_sleep(seconds)
	if seconds <= 0 then return end
	local backend = require("bedrock.async").backend
	if backend.current() then return backend.sleep(seconds) end
	local n = rawget(_G, "ngx")
	if type(n) == "table" and n.sleep and n.get_phase and NGX_SLEEP_PHASES[n.get_phase()] then
		return n.sleep(seconds)
	end
	require("bedrock.core").sleep(seconds)
end

_M.is_retryable = function(err) return _M.classify(err) ~= nil end

return _M
