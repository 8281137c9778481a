-- bedrock.api_key: short-term Bedrock API keys. The fixed cases are what
-- @aws/bedrock-token-generator 1.1.0 (npm) printed for the same keys, region, expiry and
-- clock (its getToken with Date frozen at 2026-01-02T03:04:05Z); the emulator verifies
-- the keys' signatures and a real call goes through with one.
local helper = require "spec.helper"
local bedrock = require "bedrock"
local core = require "bedrock.core"
local errors = require "bedrock.errors"
local T = require "bedrock.transport.curl"

local NOW = 1767323045 -- 2026-01-02T03:04:05Z
local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

-- getToken({ credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: SECRET },
--            region: "us-west-2", expiresInSeconds: 900 })
local NPM_1 = "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbiZYLUFtei1BbGdvcml0aG09QVdTNC1ITUFDLVNIQTI1NiZYLUFtei1DcmVkZW50aWFsPUFLSURFWEFNUExFJTJGMjAyNjAxMDIlMkZ1cy13ZXN0LTIlMkZiZWRyb2NrJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjAxMDJUMDMwNDA1WiZYLUFtei1FeHBpcmVzPTkwMCZYLUFtei1TaWduYXR1cmU9M2U3OTI0MDI2M2Q0YjRiNmY5MTdjZmRjOWJjYTMxZmJjZmNiMjI3NmVjZGIyZWM5YjEyN2Y1MDhlMmMxZWZmNSZYLUFtei1TaWduZWRIZWFkZXJzPWhvc3QmVmVyc2lvbj0x"
-- getToken({ credentials: { accessKeyId: "ASIAEXAMPLE", secretAccessKey: SECRET,
--            sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE/token+with=chars" }, region: "eu-central-1" })
local NPM_2 = "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbiZYLUFtei1BbGdvcml0aG09QVdTNC1ITUFDLVNIQTI1NiZYLUFtei1DcmVkZW50aWFsPUFTSUFFWEFNUExFJTJGMjAyNjAxMDIlMkZldS1jZW50cmFsLTElMkZiZWRyb2NrJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjAxMDJUMDMwNDA1WiZYLUFtei1FeHBpcmVzPTQzMjAwJlgtQW16LVNlY3VyaXR5LVRva2VuPUlRb0piM0pwWjJsdVgyVmpFWEFNUExFJTJGdG9rZW4lMkJ3aXRoJTNEY2hhcnMmWC1BbXotU2lnbmF0dXJlPWMzYmRmYjYxZTQzOTMyMDc1ZjcxODVhZGNjNDg1YTQ2ZGRkYTE2YmJiZjg3YWU2OWY1OWE0YTYyZDQxMjM3ZDYmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0JlZlcnNpb249MQ=="

local function env(t) return function(k) return t[k] end end

describe("bedrock.api_key", function()
	it("equals @aws/bedrock-token-generator's token for fixed inputs", function()
		local key, exp = bedrock.api_key{ region = "us-west-2", expires_in = 900, now = NOW, getenv = env{},
			credentials = { access_key_id = "AKIDEXAMPLE", secret_access_key = SECRET } }
		assert.equal(NPM_1, key)
		assert.equal(NOW + 900, exp)
		key = bedrock.api_key{ region = "eu-central-1", now = NOW, getenv = env{},
			credentials = { access_key_id = "ASIAEXAMPLE", secret_access_key = SECRET,
				session_token = "IQoJb3JpZ2luX2VjEXAMPLE/token+with=chars" } }
		assert.equal(NPM_2, key)
		assert.equal("bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256" ..
			"&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Fus-west-2%2Fbedrock%2Faws4_request" ..
			"&X-Amz-Date=20260102T030405Z&X-Amz-Expires=900" ..
			"&X-Amz-Signature=3e79240263d4b4b6f917cfdc9bca31fbcfcb2276ecdb2ec9b127f508e2c1eff5" ..
			"&X-Amz-SignedHeaders=host&Version=1", core.b64decode(NPM_1:sub(17)))
	end)

	it("takes the region and credentials from the environment like a client", function()
		local key = bedrock.api_key{ now = NOW, expires_in = 900, getenv = env{ AWS_REGION = "us-west-2",
			AWS_ACCESS_KEY_ID = "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY = SECRET,
			AWS_BEARER_TOKEN_BEDROCK = "ignored: a key is made from SigV4 credentials" } }
		assert.equal(NPM_1, key)
	end)

	it("ends no later than the credentials it was made from", function()
		local _, exp = bedrock.api_key{ region = "us-west-2", now = NOW, getenv = env{},
			credentials = { access_key_id = "A", secret_access_key = "s", session_token = "t", expiration = NOW + 600 } }
		assert.equal(NOW + 600, exp)
		local key, err = bedrock.api_key{ region = "us-west-2", now = NOW, getenv = env{},
			credentials = { access_key_id = "A", secret_access_key = "s", expiration = NOW - 1 } }
		assert.is_nil(key)
		assert.is_true(errors.is(err, "CredentialsError"))
		assert.matches("expired", err.message)
	end)

	it("refuses bad input naming the field", function()
		local creds = { access_key_id = "A", secret_access_key = "s" }
		for _, case in ipairs{
			{ { expires_in = 0 }, "expires_in" }, { { expires_in = 43201 }, "expires_in" },
			{ { expires_in = 1.5 }, "expires_in" }, { { expires_in = "60" }, "expires_in" },
			{ { region = "us east" }, "region" }, { { region = 5 }, "region" }, { { now = "x" }, "now" },
		} do
			local o = case[1]
			o.credentials, o.getenv = creds, env{}
			o.region = o.region or "us-east-1"
			local key, err = bedrock.api_key(o)
			assert.is_nil(key)
			assert.is_true(errors.is(err, "ValidationError"), tostring(err))
			assert.equal(case[2], err.field)
		end
		local key, err = bedrock.api_key{ region = "us-east-1", getenv = env{}, credentials = { token = "bearer" } }
		assert.is_nil(key)
		assert.is_true(errors.is(err, "CredentialsError"))
		key, err = bedrock.api_key{ getenv = env{}, credentials = creds }
		assert.is_nil(key)
		assert.is_true(errors.is(err, "ConfigError") or errors.is(err, "ValidationError"))
		key, err = bedrock.api_key{ client = {} }
		assert.is_nil(key)
		assert.equal("client", err.field)
	end)

	describe("with the emulator", function()
		local em
		local AK, SK = "AKIDAPIKEY", "apikey-secret-0123456789"
		local TK, TS, TT = "ASIAAPIKEY", "apikey-temp-secret-0123", "apikey-session-token/+="
		setup(function()
			em = helper.emulator({ "--key", AK .. ":" .. SK, "--key", TK .. ":" .. TS .. ":" .. TT })
		end)
		teardown(function() if em then em.stop() end end)

		local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
		local function converse_with(key)
			local client = assert(bedrock.client{ region = "us-east-1", endpoint = em.url,
				credentials = { token = key }, getenv = env{} })
			return client:converse{ modelId = MODEL, messages = { { role = "user", content = { { text = "hi" } } } } }
		end
		local function raw(key)
			local t = T.new{}
			local res = assert(t:request{ method = "POST", url = em.url .. "/model/" .. MODEL .. "/converse",
				headers = { { "content-type", "application/json" }, { "authorization", "Bearer " .. key } },
				body = '{"messages":[{"role":"user","content":[{"text":"hi"}]}]}' })
			t:close()
			return res
		end

		it("accepts a key as a bearer token for a real call", function()
			local key = assert(bedrock.api_key{ region = "us-east-1", expires_in = 300, getenv = env{},
				credentials = { access_key_id = AK, secret_access_key = SK } })
			local res = assert(converse_with(key))
			assert.is_table(res.output)
			-- one with a session token, made from a client's credentials
			local client = assert(bedrock.client{ region = "us-west-2", endpoint = em.url, getenv = env{},
				credentials = { access_key_id = TK, secret_access_key = TS, session_token = TT } })
			key = assert(bedrock.api_key{ client = client })
			assert.matches("us%-west%-2", core.b64decode(key:sub(17)))
			assert.equal(200, raw(key).status)
		end)

		it("refuses forged, foreign, stale and expired keys", function()
			local function make(o)
				o.getenv = env{}
				o.region = o.region or "us-east-1"
				return assert(bedrock.api_key(o))
			end
			local good = make{ credentials = { access_key_id = AK, secret_access_key = SK } }
			local url = core.b64decode(good:sub(17))
			local function rekey(u) return "bedrock-api-key-" .. core.b64encode(u) end
			local sig = url:match("X%-Amz%-Signature=(%x+)")
			local flipped = sig:sub(1, 63) .. (sig:sub(64) == "0" and "1" or "0")
			local cases = {
				{ rekey((url:gsub(sig, flipped))), "valid" },
				{ rekey((url:gsub("&Version=1$", ""))), "valid" },
				{ rekey((url:gsub("X%-Amz%-Expires=43200", "X-Amz-Expires=43199"))), "valid" },
				{ rekey((url:gsub("CallWithBearerToken", "Other"))), "valid" },
				{ make{ credentials = { access_key_id = AK, secret_access_key = "wrong" } }, "valid" },
				{ make{ credentials = { access_key_id = "AKIDUNKNOWN", secret_access_key = SK } }, "valid" },
				{ make{ credentials = { access_key_id = TK, secret_access_key = TS } }, "valid" }, -- token missing
				{ make{ credentials = { access_key_id = TK, secret_access_key = TS, session_token = "other" } }, "valid" },
				{ make{ credentials = { access_key_id = AK, secret_access_key = SK }, now = os.time() - 1000,
					expires_in = 900 }, "expired" },
				{ "bedrock-api-key-!!!", "valid" },
				{ "bedrock-api-key-" .. core.b64encode("bedrock.amazonaws.com/?&Version=1"), "valid" },
			}
			for i, case in ipairs(cases) do
				local res, err = converse_with(case[1])
				assert.is_nil(res, "case " .. i)
				assert.equal(403, err.status, "case " .. i)
				assert.equal("AccessDeniedException", err.code, "case " .. i)
				assert.matches(case[2], err.message, nil, true)
			end
			assert.equal(200, raw(good).status)
		end)
	end)
end)
