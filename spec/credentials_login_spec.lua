-- The `aws login` provider (lua/bedrock/credentials/login.lua): cached credentials in a
-- temporary HOME, refresh through the emulator's sign-in CreateOAuth2Token, which checks
-- the DPoP proof (ES256 signature and claims); botocore's own LoginProvider refreshes
-- the same files where python3 has botocore and the `cryptography` package.
local helper = require "spec.helper"
local F = require "spec.cred_fixture"
local core = require "bedrock.core"
local json = require "bedrock.json"
local errors = require "bedrock.errors"
local shapes = require "bedrock.shapes"
local Login = require "bedrock.credentials.login"

local REFRESH = "login-refresh-SECRET-0001"
local FAR = "2099-01-01T00:00:00Z"

local function sh(cmd)
	local p = assert(io.popen(cmd))
	local out = p:read("*a")
	p:close()
	return out
end

-- A fresh P-256 key as `aws login` stores it (SEC1 PEM), and its DER.
local function new_key(pkcs8)
	local pem = pkcs8 and sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null")
		or sh("openssl ecparam -genkey -name prime256v1 -noout 2>/dev/null")
	assert(pem:find("PRIVATE KEY", 1, true), "openssl did not make a key")
	local b64 = pem:gsub("%-%-%-%-%-[^\n]*\n?", ""):gsub("%s", "")
	return pem, assert(core.b64decode(b64))
end

local function b64url_decode(s)
	s = s:gsub("-", "+"):gsub("_", "/")
	while #s % 4 ~= 0 do s = s .. "=" end
	return assert(core.b64decode(s))
end

local function no_secret(err)
	local s = tostring(err)
	assert.is_nil(s:find("SECRET", 1, true), "secret leaked: " .. s)
	assert.is_nil(s:find("PRIVATE KEY", 1, true), "key leaked: " .. s)
end

describe("credentials.login", function()
	local em, home, pem, der
	setup(function()
		em = helper.emulator({ "--key", "AKIDLOGIN:unused-secret", "--login-refresh-token", REFRESH })
		pem, der = new_key()
	end)
	teardown(function() if em then em.stop() end end)
	before_each(function() home = F.tmpdir() end)
	after_each(function() F.rmdir(home) end)

	local function ctx(o)
		o.home = home
		o.env = o.env or { AWS_ENDPOINT_URL_SIGNIN = em.url, AWS_REGION = "us-east-1" }
		o.profile_name = o.profile_name or "dev"
		o.profile = o.profile or { login_session = "arn:aws:iam::111122223333:user/alice" }
		return F.ctx(o)
	end

	local function cache_file(session)
		return home .. "/.aws/login/cache/" .. core.sha256_hex(session or "arn:aws:iam::111122223333:user/alice") .. ".json"
	end

	local function write_session(o)
		o = o or {}
		local t = {
			accessToken = { accessKeyId = "ASIACACHED", secretAccessKey = "cached-SECRET-key",
				sessionToken = "cached-SECRET-session", accountId = "111122223333",
				expiresAt = o.expiresAt or FAR },
			refreshToken = o.refreshToken or REFRESH, clientId = "arn:aws:signin:::devtools/same-device",
			dpopKey = o.dpopKey or pem, idToken = "id-token-kept",
		}
		for _, k in ipairs(o.drop or {}) do t[k] = nil end
		F.write(o.file or cache_file(), json.encode(t))
		return t
	end

	it("returns nil for a profile without login_session", function()
		local c, err = Login.new():get(ctx{ profile = { region = "us-east-1" } })
		assert.is_nil(c)
		assert.is_nil(err)
	end)

	it("names the cache file as botocore does (SHA-256 hex of the session)", function()
		assert.equal("/d/" .. core.sha256_hex("s") .. ".json", Login.cache_file("/d", "s"))
		assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.sha256_hex("abc"))
	end)

	it("uses cached credentials with more than 5 minutes left, without a call", function()
		write_session()
		local c, err = Login.new():get(ctx{ env = { AWS_ENDPOINT_URL_SIGNIN = "http://127.0.0.1:1",
			AWS_REGION = "us-east-1" } })
		assert.is_nil(err)
		assert.equal("ASIACACHED", c.access_key_id)
		assert.equal("cached-SECRET-session", c.session_token)
		assert.equal(shapes.parse_time(FAR), c.expiration)
		assert.equal("111122223333", c.account_id)
		assert.equal("login", c.source)
		assert.equal("bedrock.Credentials(login, ASIA…, secret <redacted>, session token <redacted>)", tostring(c))
	end)

	it("honours AWS_LOGIN_CACHE_DIRECTORY with ~ and $VAR", function()
		write_session{ file = home .. "/elsewhere/" .. core.sha256_hex("arn:aws:iam::111122223333:user/alice") .. ".json" }
		local c, err = Login.new():get(ctx{ env = { AWS_LOGIN_CACHE_DIRECTORY = "~/$SUB", SUB = "elsewhere" } })
		assert.is_nil(err)
		assert.equal("ASIACACHED", c.access_key_id)
		c, err = Login.new():get(ctx{ env = { AWS_LOGIN_CACHE_DIRECTORY = home .. "/${SUB}", SUB = "elsewhere" } })
		assert.is_nil(err)
		assert.equal("ASIACACHED", c.access_key_id)
	end)

	it("refreshes near expiry with a DPoP proof the emulator verifies, and writes the cache back", function()
		local now = os.time()
		local before = write_session{ expiresAt = os.date("!%Y-%m-%dT%H:%M:%SZ", now + 120) }
		local c, err = Login.new():get(ctx{})
		assert.is_nil(err)
		assert.matches("^ASIA", c.access_key_id)
		assert.are_not.equal("ASIACACHED", c.access_key_id)
		assert.is_true(c.expiration >= now + 880 and c.expiration <= now + 920)
		local saved = json.decode(F.read(cache_file()))
		assert.equal(c.access_key_id, saved.accessToken.accessKeyId)
		assert.equal(c.secret_access_key, saved.accessToken.secretAccessKey)
		assert.equal(c.session_token, saved.accessToken.sessionToken)
		assert.equal("111122223333", saved.accessToken.accountId)
		assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", saved.accessToken.expiresAt)
		assert.equal("emu-login-refresh-" .. core.sha1_hex(REFRESH), saved.refreshToken)
		assert.equal(before.dpopKey, saved.dpopKey)
		assert.equal(before.clientId, saved.clientId)
		assert.equal("id-token-kept", saved.idToken)
		assert.equal("-rw-------", sh("ls -l " .. helper.shell_quote(cache_file())):sub(1, 10))
		-- the refreshed keys sign a real call
		local bedrock = require "bedrock"
		local client = assert(bedrock.client{ region = "us-east-1", endpoint = em.url, credentials = c })
		local res = assert(client:converse{ modelId = "anthropic.claude-3-haiku-20240307-v1:0",
			messages = { { role = "user", content = { { text = "hi" } } } } })
		assert.is_table(res.output)
		-- the rotated refresh token refreshes again
		local c2, err2 = Login.new():get(ctx{ now = function() return c.expiration - 60 end })
		assert.is_nil(err2)
		assert.are_not.equal(c.access_key_id, c2.access_key_id)
	end)

	it("accepts a PKCS#8 key too", function()
		local pem8 = new_key(true)
		write_session{ expiresAt = "2020-01-01T00:00:00Z", dpopKey = pem8 }
		local c, err = Login.new():get(ctx{})
		assert.is_nil(err)
		assert.matches("^ASIA", c.access_key_id)
	end)

	it("builds the proof botocore's _build_dpop_header builds", function()
		local url = "https://us-east-1.signin.aws.amazon.com/v1/token"
		local proof = assert(Login.dpop_proof(der, url, 1767000000, "5f0c7e1a-0000-4000-8000-000000000001"))
		local h, p, s = proof:match("^([^.]+)%.([^.]+)%.([^.]+)$")
		local header = json.decode(b64url_decode(h))
		local payload = json.decode(b64url_decode(p))
		assert.equal("dpop+jwt", header.typ)
		assert.equal("ES256", header.alg)
		assert.equal("EC", header.jwk.kty)
		assert.equal("P-256", header.jwk.crv)
		assert.same({ htm = "POST", htu = url, iat = 1767000000, jti = "5f0c7e1a-0000-4000-8000-000000000001" }, payload)
		local x, y = b64url_decode(header.jwk.x), b64url_decode(header.jwk.y)
		assert.is_true(core.es256_verify(x, y, h .. "." .. p, b64url_decode(s)))
		-- a fresh jti each time when none is given
		local a = Login.dpop_proof(der, url, 1)
		local b = Login.dpop_proof(der, url, 1)
		assert.are_not.equal(json.decode(b64url_decode(a:match("%.([^.]+)%."))).jti,
			json.decode(b64url_decode(b:match("%.([^.]+)%."))).jti)
		-- from the CSPRNG: a v4 UUID, and the program's math.random is left alone
		assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", json.decode(b64url_decode(a:match("%.([^.]+)%."))).jti)
		math.randomseed(7)
		local r1 = math.random()
		math.randomseed(7)
		Login.dpop_proof(der, url, 1)
		assert.are.equal(r1, math.random())
		if not F.has_botocore() then return end
		local hex = der:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)
		local out = F.python({}, "spec/login_botocore.py", { "proof", hex, url, "1767000000",
			"5f0c7e1a-0000-4000-8000-000000000001" })
		local bh, bp, bs = out:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)%s*$")
		if not bh then pending("botocore could not build a proof here: " .. out) return end
		assert.equal(bh .. "." .. bp, h .. "." .. p) -- the same signing input, byte for byte
		assert.is_true(core.es256_verify(x, y, bh .. "." .. bp, b64url_decode(bs)))
	end)

	describe("the emulator's DPoP check", function()
		local T = require "bedrock.transport.curl"
		local t = T.new{}
		local body = json.encode{ clientId = "c", grantType = "refresh_token", refreshToken = REFRESH }
		local function post(proof)
			local headers = { { "content-type", "application/json" } }
			if proof then headers[2] = { "DPoP", proof } end
			local res = assert(t:request{ method = "POST", url = em.url .. "/v1/token", headers = headers, body = body })
			return res, json.decode(res.body)
		end
		local function forge(hdr, pl, sign_with)
			local input = Login.b64url(hdr) .. "." .. Login.b64url(pl)
			local sig = core.es256_sign(sign_with or der, input)
			return input .. "." .. Login.b64url(sig)
		end
		local function jwk()
			local x, y = core.es256_public(der)
			return '{"kty":"EC","x":"' .. Login.b64url(x) .. '","y":"' .. Login.b64url(y) .. '","crv":"P-256"}'
		end
		local function claims(o)
			o = o or {}
			return string.format('{"htm":"%s","htu":"%s","iat":%d,"jti":"j1"}', o.htm or "POST",
				o.htu or (em.url .. "/v1/token"), o.iat or os.time())
		end
		local HDR = function() return '{"typ":"dpop+jwt","alg":"ES256","jwk":' .. jwk() .. '}' end

		it("accepts a good proof", function()
			local res, doc = post(forge(HDR(), claims()))
			assert.equal(200, res.status)
			assert.equal("aws_sigv4", doc.tokenType)
			assert.equal(900, doc.expiresIn)
			assert.matches("^ASIA", doc.accessToken.accessKeyId)
		end)

		it("refuses a missing, malformed, forged or mismatched proof", function()
			local cases = {
				{ nil, "not a compact JWS" },
				{ "a.b", "not a compact JWS" },
				{ "!!.??.##", "not base64url JSON" },
				{ forge('{"typ":"JWT","alg":"ES256","jwk":' .. jwk() .. '}', claims()), "typ dpop%+jwt" },
				{ forge('{"typ":"dpop+jwt","alg":"RS256","jwk":' .. jwk() .. '}', claims()), "alg ES256" },
				{ forge('{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}', claims()), "32%-byte x and y" },
				{ forge(HDR(), claims{ htm = "GET" }), "htm must be POST" },
				{ forge(HDR(), claims{ htu = "https://elsewhere.example/v1/token" }), "htu must be" },
				{ forge(HDR(), claims{ iat = os.time() - 3600 }), "iat" },
				{ forge(HDR(), claims{ iat = os.time() + 3600 }), "iat" },
				{ forge(HDR(), claims(), select(2, new_key())), "does not verify" },
			}
			-- a proof whose payload was changed after signing
			local good = forge(HDR(), claims())
			local h, _, s = good:match("^([^.]+)%.([^.]+)%.([^.]+)$")
			cases[#cases + 1] = { h .. "." .. Login.b64url(claims{ iat = os.time() - 1 }) .. "." .. s, "does not verify" }
			for i, case in ipairs(cases) do
				local res, doc = post(case[1])
				assert.equal(400, res.status, "case " .. i)
				assert.equal("ValidationException", res.headers["x-amzn-errortype"], "case " .. i)
				assert.matches(case[2], doc.message, nil, false)
			end
		end)
	end)

	it("says to run aws login when the refresh token is refused, without secrets", function()
		write_session{ expiresAt = "2020-01-01T00:00:00Z", refreshToken = "stale-SECRET-refresh" }
		local c, err = Login.new():get(ctx{})
		assert.is_nil(c)
		assert.is_true(errors.is(err, "CredentialsError"))
		assert.matches("TOKEN_EXPIRED", err.message)
		assert.matches("run `aws login` again", err.message)
		assert.matches('^login credentials %(profile "dev"%)', err.message)
		no_secret(err)
	end)

	it("reports a missing session, missing fields, a bad key and no region", function()
		local _, c, err
		c, err = Login.new():get(ctx{})
		assert.is_nil(c)
		assert.matches('no login session "arn:aws:iam::111122223333:user/alice" in the cache: run `aws login`', err.message)
		assert.matches(cache_file(), err.message, 1, true)

		write_session{ drop = { "dpopKey", "clientId" } }
		_, err = Login.new():get(ctx{})
		assert.matches("lacks dpopKey, clientId", err.message)

		F.write(cache_file(), "[]")
		_, err = Login.new():get(ctx{})
		assert.matches("lacks accessToken, refreshToken, dpopKey, clientId", err.message)

		F.write(cache_file(), "not json")
		_, err = Login.new():get(ctx{})
		assert.matches("not a JSON object", err.message)

		write_session{ expiresAt = "2020-01-01T00:00:00Z",
			dpopKey = "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0IGJ1dCBub3QgYSBrZXk=\n-----END EC PRIVATE KEY-----\n" }
		_, err = Login.new():get(ctx{})
		assert.matches("not an EC P%-256 private key", err.message)
		no_secret(err)

		write_session{ expiresAt = "2020-01-01T00:00:00Z" }
		_, err = Login.new():get(ctx{ env = { AWS_ENDPOINT_URL_SIGNIN = em.url } })
		assert.matches("no region for the sign%-in service", err.message)
	end)

	it("reports an unreachable sign-in service naming the provider", function()
		write_session{ expiresAt = "2020-01-01T00:00:00Z" }
		local _, err = Login.new():get(ctx{ env = { AWS_ENDPOINT_URL_SIGNIN = "http://127.0.0.1:1", AWS_REGION = "us-east-1" } })
		assert.matches("CreateOAuth2Token request failed", err.message)
		no_secret(err)
	end)

	it("takes the sign-in endpoint from the services section", function()
		write_session{ expiresAt = "2020-01-01T00:00:00Z" }
		local cfg = { profiles = {}, sso_sessions = {}, services = { loc = { signin = { endpoint_url = em.url } } } }
		local c, err = Login.new():get(ctx{ env = {}, config = cfg,
			profile = { login_session = "arn:aws:iam::111122223333:user/alice", services = "loc", region = "eu-west-1" } })
		assert.is_nil(err)
		assert.matches("^ASIA", c.access_key_id)
	end)

	it("botocore's LoginProvider refreshes the file Lua wrote, and Lua the file botocore wrote", function()
		if not F.has_botocore() then pending("python3 botocore is not installed") return end
		local probe = F.python({}, "spec/login_botocore.py", { "proof", "00", "u", "1", "j" })
		if probe:find("ModuleNotFoundError", 1, true) then pending("python3 lacks cryptography") return end
		local session = "arn:aws:iam::111122223333:user/alice"
		F.write(home .. "/.aws/config", "[profile dev]\nlogin_session = " .. session .. "\nregion = us-east-1\n")
		write_session{ expiresAt = "2020-01-01T00:00:00Z" }
		local env = { HOME = home, AWS_PROFILE = "dev", AWS_ENDPOINT_URL_SIGNIN = em.url,
			AWS_CONFIG_FILE = home .. "/.aws/config", AWS_SHARED_CREDENTIALS_FILE = home .. "/.aws/credentials",
			AWS_EC2_METADATA_DISABLED = "true", NO_PROXY = "127.0.0.1", no_proxy = "127.0.0.1" }
		local out = F.python(env, "spec/login_botocore.py", { "creds" })
		assert.matches("^creds ASIA", out)
		local saved = json.decode(F.read(cache_file()))
		assert.equal("emu-login-refresh-" .. core.sha1_hex(REFRESH), saved.refreshToken)
		assert.equal(out:match("^creds (%S+)"), saved.accessToken.accessKeyId)
		-- Lua refreshes botocore's file (forced: expiry moved into the past)
		saved.accessToken.expiresAt = "2020-01-01T00:00:00Z"
		F.write(cache_file(), json.encode(saved))
		local c, err = Login.new():get(ctx{})
		assert.is_nil(err)
		local lua_saved = json.decode(F.read(cache_file()))
		assert.equal(c.access_key_id, lua_saved.accessToken.accessKeyId)
		assert.equal("emu-login-refresh-" .. core.sha1_hex(saved.refreshToken), lua_saved.refreshToken)
		-- and botocore refreshes Lua's file again
		lua_saved.accessToken.expiresAt = "2020-01-01T00:00:00Z"
		F.write(cache_file(), json.encode(lua_saved))
		out = F.python(env, "spec/login_botocore.py", { "creds" })
		assert.matches("^creds ASIA", out)
		assert.equal("emu-login-refresh-" .. core.sha1_hex(lua_saved.refreshToken),
			json.decode(F.read(cache_file())).refreshToken)
	end)
end)
