-- luacheck: no max line length
local helper = require "spec.helper" -- luacheck: ignore 211
local config = require "bedrock.config"
local credentials = require "bedrock.credentials"
local bedrock = require "bedrock"

local function env(t)
	return function(k) return t[k] end
end

-- what a client has after its first request (options, environment, then the files;
-- a table-backed environment has no HOME, so no file is read)
local function resolve(opts, e)
	return config.resolve_all(opts, env(e or {}))
end

describe("config", function()
	it("takes the region from options, AWS_REGION, then AWS_DEFAULT_REGION", function()
		assert.equal("eu-west-1", resolve({ region = "eu-west-1" }, { AWS_REGION = "us-east-1" }).region)
		assert.equal("us-east-2", resolve({}, { AWS_REGION = "us-east-2", AWS_DEFAULT_REGION = "x-y-1" }).region)
		assert.equal("ap-south-1", resolve({}, { AWS_DEFAULT_REGION = "ap-south-1" }).region)
		assert.equal("ap-south-1", resolve({}, { AWS_REGION = "", AWS_DEFAULT_REGION = "ap-south-1" }).region)
	end)

	it("refuses a missing or malformed region with ConfigError", function()
		local cfg, err = resolve({}, {})
		assert.is_nil(cfg)
		assert.equal("ConfigError", err.code)
		assert.equal("region", err.field)
		assert.matches("AWS_REGION", err.message)
		cfg, err = resolve({ region = "us-east-1.evil.com/x" })
		assert.is_nil(cfg)
		assert.equal("ConfigError", err.code)
		-- the region may still come from the shared files: a client is created, and the
		-- missing region is the first call's error
		local c = assert(bedrock.client{ getenv = env{} })
		assert.matches("region not resolved yet", tostring(c))
		local r, e2 = c:converse{ modelId = "m", messages = {} }
		assert.is_nil(r)
		assert.equal("ConfigError", e2.code)
		assert.matches("no region", e2.message)
	end)

	it("resolves the endpoints the reference lists (partitions, FIPS, dual-stack)", function()
		local rows = {
			{ "us-east-1", false, false, "https://bedrock-runtime.us-east-1.amazonaws.com" },
			{ "us-east-1", true, true, "https://bedrock-runtime-fips.us-east-1.api.aws" },
			{ "us-gov-west-1", true, true, "https://bedrock-runtime-fips.us-gov-west-1.api.aws" },
			{ "cn-north-1", false, true, "https://bedrock-runtime.cn-north-1.api.amazonwebservices.com.cn" },
			{ "cn-north-1", false, false, "https://bedrock-runtime.cn-north-1.amazonaws.com.cn" },
			{ "eusc-de-east-1", false, false, "https://bedrock-runtime.eusc-de-east-1.amazonaws.eu" },
			{ "us-iso-east-1", true, false, "https://bedrock-runtime-fips.us-iso-east-1.c2s.ic.gov" },
			{ "us-isob-east-1", false, true, "https://bedrock-runtime.us-isob-east-1.api.aws.scloud" },
			{ "eu-isoe-west-1", false, true, "https://bedrock-runtime.eu-isoe-west-1.api.cloud-aws.adc-e.uk" },
			{ "us-isof-south-1", false, false, "https://bedrock-runtime.us-isof-south-1.csp.hci.ic.gov" },
			{ "xx-unknown-9", false, false, "https://bedrock-runtime.xx-unknown-9.amazonaws.com" },
			{ "eu-central-1", true, false, "https://bedrock-runtime-fips.eu-central-1.amazonaws.com" },
		}
		for _, r in ipairs(rows) do
			local cfg = assert(resolve({ region = r[1], use_fips_endpoint = r[2], use_dualstack_endpoint = r[3] }))
			assert.equal(r[4], cfg.endpoint.url)
		end
	end)

	it("reads AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT", function()
		local cfg = assert(resolve({ region = "us-east-1" },
			{ AWS_USE_FIPS_ENDPOINT = "true", AWS_USE_DUALSTACK_ENDPOINT = "TRUE" }))
		assert.equal("https://bedrock-runtime-fips.us-east-1.api.aws", cfg.endpoint.url)
		cfg = assert(resolve({ region = "us-east-1", use_fips_endpoint = false },
			{ AWS_USE_FIPS_ENDPOINT = "true" }))
		assert.equal("https://bedrock-runtime.us-east-1.amazonaws.com", cfg.endpoint.url)
		local _, err = resolve({ region = "us-east-1" }, { AWS_USE_FIPS_ENDPOINT = "yes" })
		assert.equal("ConfigError", err.code)
	end)

	it("uses a custom endpoint verbatim, keeping its base path", function()
		local cfg = assert(resolve({ region = "eu-west-1", endpoint = "http://localhost:9000/prefix/" }))
		assert.equal("http://localhost:9000/prefix", cfg.endpoint.url)
		assert.equal("/prefix", cfg.endpoint.base_path)
		assert.equal("localhost:9000", cfg.endpoint.authority)
		assert.equal("eu-west-1", cfg.region)
		cfg = assert(resolve({ region = "eu-west-1" }, { AWS_ENDPOINT_URL = "http://a:1",
			AWS_ENDPOINT_URL_BEDROCK_RUNTIME = "https://b.example" }))
		assert.equal("https://b.example", cfg.endpoint.url)
		assert.equal("b.example", cfg.endpoint.authority)
		cfg = assert(resolve({ region = "eu-west-1" }, { AWS_ENDPOINT_URL = "http://a:1" }))
		assert.equal("http://a:1", cfg.endpoint.url)
		cfg = assert(resolve({ region = "eu-west-1", endpoint = "https://h:443" }))
		assert.equal("h", cfg.endpoint.authority)
	end)

	it("gives the rule set's errors for FIPS/dual-stack with a custom endpoint", function()
		local _, err = resolve({ region = "us-east-1", endpoint = "http://x", use_fips_endpoint = true })
		assert.equal("ConfigError", err.code)
		assert.equal("Invalid Configuration: FIPS and custom endpoint are not supported", err.message)
		_, err = resolve({ region = "us-east-1" }, { AWS_ENDPOINT_URL = "http://x", AWS_USE_DUALSTACK_ENDPOINT = "true" })
		assert.equal("Invalid Configuration: Dualstack and custom endpoint are not supported", err.message)
	end)

	it("refuses malformed endpoints and unknown options", function()
		for _, u in ipairs{ "localhost:9000", "ftp://x", "http://", "http://x?y", "http://u@x", "http://x:99999" } do
			local _, err = resolve({ region = "us-east-1", endpoint = u })
			assert.equal("ConfigError", err.code, u)
		end
		local _, err = resolve({ region = "us-east-1", regoin = "x" })
		assert.equal("ConfigError", err.code)
		assert.matches("regoin", err.message)
	end)

	it("reads retry settings from options and environment", function()
		local cfg = assert(resolve({ region = "r-x-1" }, { AWS_MAX_ATTEMPTS = "5", AWS_RETRY_MODE = "legacy" }))
		assert.equal(5, cfg.retry.max_attempts)
		assert.equal("legacy", cfg.retry.mode)
		cfg = assert(resolve({ region = "r-x-1", retry = { max_attempts = 2, mode = "standard" } },
			{ AWS_MAX_ATTEMPTS = "5" }))
		assert.equal(2, cfg.retry.max_attempts)
		local _, err = resolve({ region = "r-x-1" }, { AWS_MAX_ATTEMPTS = "many" })
		assert.equal("ConfigError", err.code)
		_, err = resolve({ region = "r-x-1" }, { AWS_RETRY_MODE = "fast" })
		assert.equal("ConfigError", err.code)
		_, err = resolve({ region = "r-x-1", retry = { max_attempts = 0 } })
		assert.equal("ConfigError", err.code)
	end)

	it("merges timeouts over the defaults and refuses unknown ones", function()
		local cfg = assert(resolve({ region = "r-x-1", timeouts = { connect = 50, idle = false } }))
		assert.equal(50, cfg.timeouts.connect)
		assert.is_nil(cfg.timeouts.idle)
		assert.equal(config.default_timeouts.first_byte, cfg.timeouts.first_byte)
		local _, err = resolve({ region = "r-x-1", timeouts = { read = 5 } })
		assert.equal("timeouts.read", err.field)
	end)
end)

describe("credentials", function()
	local function auth(opt, e, extra)
		local o = { region = "us-east-1", credentials = opt }
		for k, v in pairs(extra or {}) do o[k] = v end
		local cfg = assert(config.resolve(o, env(e or {})))
		return credentials.resolve(opt, cfg)
	end

	it("uses explicit keys, with a session token", function()
		local a = assert(auth({ access_key_id = "AKID", secret_access_key = "S", session_token = "T" }))
		assert.equal("sigv4", a.scheme)
		local c = assert(a.get())
		assert.equal("AKID", c.access_key_id)
		assert.equal("T", c.session_token)
	end)

	it("reads the environment", function()
		local a = assert(auth(nil, { AWS_ACCESS_KEY_ID = "AKID", AWS_SECRET_ACCESS_KEY = "S",
			AWS_SESSION_TOKEN = "TOK" }))
		local c = assert(a.get())
		assert.same({ "AKID", "S", "TOK" }, { c.access_key_id, c.secret_access_key, c.session_token })
		local _, err = assert(auth(nil, { AWS_ACCESS_KEY_ID = "AKID" })).get()
		assert.equal("CredentialsError", err.code)
		assert.matches("AWS_SECRET_ACCESS_KEY", err.message)
		_, err = assert(auth(nil, {})).get()
		assert.equal("CredentialsError", err.code)
	end)

	it("chooses bearer as botocore does (§3.2)", function()
		local a = assert(auth({ token = "abc" }))
		assert.equal("bearer", a.scheme)
		assert.equal("abc", a.get().token)
		-- env token present: bearer even with explicit keys
		a = assert(auth({ access_key_id = "A", secret_access_key = "S" }, { AWS_BEARER_TOKEN_BEDROCK = "envtok" }))
		assert.equal("bearer", a.scheme)
		assert.equal("envtok", a.get().token)
		-- present but empty: still bearer, refused locally
		a = assert(auth(nil, { AWS_BEARER_TOKEN_BEDROCK = "" }))
		assert.equal("bearer", a.scheme)
		local c, err = a.get()
		assert.is_nil(c)
		assert.equal("CredentialsError", err.code)
		-- the in-code preference wins
		a = assert(auth({ access_key_id = "A", secret_access_key = "S" }, { AWS_BEARER_TOKEN_BEDROCK = "envtok" },
			{ auth_scheme_preference = "sigv4" }))
		assert.equal("sigv4", a.scheme)
		assert.equal("A", a.get().access_key_id)
		-- AWS_AUTH_SCHEME_PREFERENCE in the environment does not override (botocore)
		a = assert(auth(nil, { AWS_BEARER_TOKEN_BEDROCK = "t", AWS_AUTH_SCHEME_PREFERENCE = "sigv4" }))
		assert.equal("bearer", a.scheme)
	end)

	it("accepts providers (function, object, list) and caches until near expiry", function()
		local now = 1000
		local calls = 0
		local provider = function()
			calls = calls + 1
			return { access_key_id = "K" .. calls, secret_access_key = "S", expiration = now + 1200 }
		end
		local cfg = assert(config.resolve({ region = "us-east-1" }, env{}))
		cfg.clock = function() return now end
		local a = assert(credentials.resolve(provider, cfg))
		assert.equal("K1", a.get().access_key_id)
		assert.equal("K1", a.get().access_key_id)
		now = now + 400 -- within 15 min of expiry (botocore's advisory window): refresh
		assert.equal("K2", a.get().access_key_id)
		assert.equal(2, calls)
		local obj = { get = function() return { access_key_id = "OBJ", secret_access_key = "S" } end }
		a = assert(credentials.resolve({ function() return nil end, obj }, cfg))
		assert.equal("OBJ", a.get().access_key_id)
		a = assert(credentials.resolve(function() return nil, "boom" end, cfg))
		local c, err = a.get()
		assert.is_nil(c)
		assert.equal("CredentialsError", err.code)
	end)

	it("keeps the old credentials when a refresh fails before they expire", function()
		local now, n = 0, 0
		local cfg = assert(config.resolve({ region = "us-east-1" }, env{}))
		cfg.clock = function() return now end
		local a = assert(credentials.resolve(function()
			n = n + 1
			if n > 1 then return nil, "down" end
			return { access_key_id = "A", secret_access_key = "S", expiration = "1970-01-01T00:20:00Z" }
		end, cfg))
		assert.equal("A", a.get().access_key_id)
		now = 400 -- advisory window (15 min before): a failed refresh keeps the old keys
		assert.equal("A", a.get().access_key_id)
		now = 700 -- mandatory window (10 min before): the refresh must succeed
		local c, err = a.get()
		assert.is_nil(c)
		assert.matches("down", tostring(err))
	end)

	it("never shows secrets in tostring", function()
		local a = assert(auth({ access_key_id = "AKIDEXAMPLE", secret_access_key = "SECRETKEY", session_token = "SESSIONTOK" }))
		local s = tostring(a.get())
		assert.not_matches("SECRETKEY", s)
		assert.not_matches("SESSIONTOK", s)
		a = assert(auth({ token = "BEARERTOK" }))
		assert.not_matches("BEARERTOK", tostring(a.get()))
	end)
end)
