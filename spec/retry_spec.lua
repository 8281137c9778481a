local helper = require "spec.helper" -- luacheck: ignore 211
local retry = require "bedrock.retry"
local errors = require "bedrock.errors"
require "bedrock.client" -- registers the modeled retryable traits

local function E(code, status) return errors.new{ code = code, status = status } end

describe("retry policy (standard)", function()
	it("classifies like the SDKs (§14.1)", function()
		assert.equal("throttling", retry.classify(E("ThrottlingException", 429)))
		assert.equal("transient", retry.classify(E("ModelNotReadyException", 429)))
		assert.equal("transient", retry.classify(E("ServiceUnavailableException", 503)))
		assert.equal("transient", retry.classify(E("InternalServerException", 500)))
		assert.equal("transient", retry.classify(E("502", 502)))
		assert.equal("transient", retry.classify(E("SomethingNew", 504)))
		assert.equal("timeout", retry.classify(E("Timeout")))
		assert.equal("timeout", retry.classify(errors.new{ code = "ConnectionError", retryable = true }))
		assert.is_nil(retry.classify(errors.new{ code = "ConnectionError", retryable = false })) -- e.g. TLS trust
		for _, c in ipairs{ "ModelTimeoutException", "ModelErrorException", "ValidationException",
			"AccessDeniedException", "ResourceNotFoundException", "ServiceQuotaExceededException",
			"ConflictException", "ValidationError", "StreamError" } do
			assert.is_nil(retry.classify(E(c, 400)), c)
		end
		assert.is_nil(retry.classify(E("ModelTimeoutException", 408)))
		assert.is_nil(retry.classify(E("ModelErrorException", 424)))
	end)

	it("backs off random() * min(base * 2^(n-1), 20) with base 1 s (throttling) / 0.05 s", function()
		local p = retry.new{ random = function() return 0.5 end }
		assert.equal(0.5, p:delay(1, "throttling"))
		assert.equal(1, p:delay(2, "throttling"))
		assert.equal(10, p:delay(6, "throttling"))
		assert.equal(10, p:delay(10, "throttling")) -- capped at 20 * 0.5
		assert.equal(0.025, p:delay(1, "transient"))
		assert.equal(0.05, p:delay(2, "transient"))
		assert.equal(10, p:delay(20, "transient"))
		-- a retry-after hint raises the delay, at most 5 s above the computed one
		assert.equal(2, p:delay(1, "throttling", 2000))
		assert.equal(5.5, p:delay(1, "throttling", 60000))
	end)

	it("stops at max attempts (3 by default)", function()
		local p = retry.new{ random = function() return 0 end }
		assert.equal(3, p.max_attempts)
		assert.is_true((p:decide(E("ThrottlingException", 429), 1)))
		assert.is_true((p:decide(E("ThrottlingException", 429), 2)))
		assert.is_false((p:decide(E("ThrottlingException", 429), 3)))
		assert.is_false((p:decide(E("ValidationException", 400), 1)))
	end)

	it("spends and refunds the retry quota (500, cost 5, 10 for timeouts)", function()
		local p = retry.new{ random = function() return 0 end, max_attempts = 1000 }
		local ok, _, cost = p:decide(E("ThrottlingException", 429), 1)
		assert.is_true(ok)
		assert.equal(5, cost)
		assert.equal(495, p.tokens)
		_, _, cost = p:decide(E("Timeout"), 1)
		assert.equal(10, cost)
		assert.equal(485, p.tokens)
		p:success(10)
		assert.equal(495, p.tokens)
		p:success(0)
		p:success(nil)
		assert.equal(497, p.tokens)
		for _ = 1, 10 do p:success() end
		assert.equal(500, p.tokens)
		-- drain: 100 throttling retries empty the bucket, then no retry
		for _ = 1, 100 do assert.is_true((p:decide(E("ThrottlingException", 429), 1))) end
		assert.equal(0, p.tokens)
		assert.is_false((p:decide(E("ThrottlingException", 429), 1)))
	end)
end)

describe("retry policy (legacy)", function()
	it("has 5 attempts, 2^(n-1) backoff, no quota", function()
		local p = retry.new{ mode = "legacy", random = function() return 1 end }
		assert.equal(5, p.max_attempts)
		assert.equal(8, p:delay(4, "throttling"))
		for i = 1, 4 do assert.is_true((p:decide(E("X", 509), i))) end
		assert.is_false((p:decide(E("X", 509), 5)))
		assert.equal(500, p.tokens)
	end)
end)
