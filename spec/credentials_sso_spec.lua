-- The SSO provider (lua/bedrock/credentials/sso.lua) against the emulator's SSO portal
-- and SSO-OIDC endpoints, with real token-cache files in a temporary HOME; botocore reads
-- and refreshes the same files where python3 has it.
local helper = require "spec.helper"
local F = require "spec.cred_fixture"
local core = require "bedrock.core"
local json = require "bedrock.json"
local errors = require "bedrock.errors"
local SSO = require "bedrock.credentials.sso"

local TOKEN = "sso-access-token-SECRET-1234567890"
local REFRESH = "sso-refresh-token-SECRET-abcdef"
local CLIENT_SECRET = "client-secret-SECRET-xyz"
local FAR = "2099-01-01T00:00:00Z"

local function session_config(url_key)
	local cfg = {
		profiles = { dev = { sso_session = "corp", sso_account_id = "111122223333",
			sso_role_name = "Admin", region = "eu-west-1" } },
		sso_sessions = { corp = { sso_start_url = "https://corp.awsapps.com/start",
			sso_region = "us-east-1", sso_registration_scopes = "sso:account:access" } },
		services = {},
	}
	if url_key then cfg.profiles.dev.services = url_key end
	return cfg
end

local function cache_path(home, key)
	return home .. "/.aws/sso/cache/" .. core.sha1_hex(key) .. ".json"
end

local function no_secret(err)
	local s = tostring(err)
	assert.is_nil(s:find("SECRET", 1, true), "secret leaked: " .. s)
end

describe("credentials.sso", function()
	local em, home
	setup(function()
		em = helper.emulator({ "--key", "AKIDSSO:unused-secret", "--sso-token", TOKEN,
			"--sso-refresh-token", REFRESH })
	end)
	teardown(function() if em then em.stop() end end)
	before_each(function() home = F.tmpdir() end)
	after_each(function() F.rmdir(home) end)

	local function ctx(o)
		o.home = home
		o.env = o.env or { AWS_ENDPOINT_URL_SSO = em.url, AWS_ENDPOINT_URL_SSO_OIDC = em.url }
		return F.ctx(o)
	end

	it("names the token cache file as botocore does (SHA-1 hex)", function()
		assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", core.sha1_hex("abc"))
		assert.equal("da39a3ee5e6b4b0d3255bfef95601890afd80709", core.sha1_hex(""))
		assert.equal(home .. "/c/" .. core.sha1_hex("corp") .. ".json",
			SSO.cache_file(home .. "/c", { sso_session = "corp", sso_start_url = "x" }))
		assert.equal(home .. "/c/" .. core.sha1_hex("https://x/start") .. ".json",
			SSO.cache_file(home .. "/c", { sso_start_url = "https://x/start" }))
	end)

	it("returns nil for a profile without SSO keys", function()
		local c, err = SSO.new():get(ctx{ profile_name = "plain", profile = { region = "us-east-1" } })
		assert.is_nil(c)
		assert.is_nil(err)
	end)

	it("gets role credentials for an sso_session profile, usable against the service", function()
		local cfg = session_config()
		F.write(cache_path(home, "corp"), json.encode{ startUrl = "https://corp.awsapps.com/start",
			region = "us-east-1", accessToken = TOKEN, expiresAt = FAR })
		local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.is_nil(err)
		assert.equal("sso", c.source)
		assert.is_nil(tostring(c):find(c.secret_access_key, 1, true))
		assert.is_nil(tostring(c):find(c.session_token, 1, true))
		assert.matches("^ASIA", c.access_key_id)
		assert.equal(40, #c.secret_access_key)
		assert.is_string(c.session_token)
		assert.is_true(c.expiration > os.time() + 3000 and c.expiration <= os.time() + 3700)
		-- the emulator accepts the issued keys for a signed call
		local bedrock = require "bedrock"
		local client = assert(bedrock.client{ region = "us-east-1", endpoint = em.url, credentials = c })
		local res = assert(client:converse{ modelId = "anthropic.claude-3-haiku-20240307-v1:0",
			messages = { { role = "user", content = { { text = "hi" } } } } })
		assert.is_table(res.output)
	end)

	it("gets role credentials for a legacy profile (cache named by the start URL)", function()
		local prof = { sso_start_url = "https://legacy.awsapps.com/start", sso_region = "us-west-2",
			sso_account_id = "111122223333", sso_role_name = "Dev" }
		F.write(cache_path(home, prof.sso_start_url), json.encode{ startUrl = prof.sso_start_url,
			region = "us-west-2", accessToken = TOKEN, expiresAt = FAR })
		local c, err = SSO.new():get(ctx{ profile_name = "legacy", profile = prof })
		assert.is_nil(err)
		assert.matches("^ASIA", c.access_key_id)
	end)

	it("takes the portal endpoint from the profile's services section", function()
		local cfg = session_config("local")
		cfg.services["local"] = { sso = { endpoint_url = em.url } }
		F.write(cache_path(home, "corp"), json.encode{ accessToken = TOKEN, expiresAt = FAR })
		local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg, env = {} })
		assert.is_nil(err)
		assert.matches("^ASIA", c.access_key_id)
	end)

	it("refuses an expired token, telling which aws sso login to run", function()
		local cfg = session_config()
		F.write(cache_path(home, "corp"), json.encode{ accessToken = TOKEN,
			expiresAt = "2020-01-01T00:00:00Z" })
		local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.is_nil(c)
		assert.is_true(errors.is(err, "CredentialsError"))
		assert.matches("aws sso login %-%-sso%-session corp", err.message)
		assert.matches("has expired", err.message)
		assert.matches('profile "dev"', err.message)
		assert.matches(core.sha1_hex("corp"), err.message, 1, true)
		no_secret(err)

		local prof = { sso_start_url = "https://l/start", sso_region = "us-east-1",
			sso_account_id = "1", sso_role_name = "R" }
		F.write(cache_path(home, prof.sso_start_url), json.encode{ accessToken = TOKEN,
			expiresAt = "2020-01-01T00:00:00Z" })
		c, err = SSO.new():get(ctx{ profile_name = "old", profile = prof })
		assert.is_nil(c)
		assert.matches("aws sso login %-%-profile old", err.message)
		no_secret(err)
	end)

	it("says which login to run when there is no cached token", function()
		local cfg = session_config()
		local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.is_nil(c)
		assert.matches('no cached SSO token for sso%-session "corp"', err.message)
		assert.matches("aws sso login", err.message)
	end)

	it("names the file when the cache is not JSON or lacks the token", function()
		local cfg = session_config()
		local path = cache_path(home, "corp")
		F.write(path, "{not json")
		local _, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.matches("not a JSON object", err.message)
		assert.matches(path, err.message, 1, true)
		F.write(path, json.encode{ expiresAt = FAR })
		_, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.matches("lacks accessToken or expiresAt", err.message)
		F.write(path, json.encode{ accessToken = TOKEN, expiresAt = "tomorrow" })
		_, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.matches("expiresAt is not a timestamp", err.message)
		no_secret(err)
	end)

	it("refuses incomplete or inconsistent configuration like botocore", function()
		local _, err = SSO.new():get(ctx{ profile_name = "p", profile = { sso_role_name = "R" } })
		assert.matches("missing required configuration: sso_account_id, sso_start_url, sso_region", err.message)
		local cfg = session_config()
		cfg.profiles.dev.sso_session = "nope"
		_, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.matches('sso%-session does not exist: "nope"', err.message)
		cfg = session_config()
		cfg.profiles.dev.sso_region = "ap-south-1"
		_, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.matches("sso_region is inconsistent", err.message)
	end)

	it("reports a token the portal refuses as a login problem", function()
		local cfg = session_config()
		F.write(cache_path(home, "corp"), json.encode{ accessToken = "other-SECRET-token", expiresAt = FAR })
		local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
		assert.is_nil(c)
		assert.matches("UnauthorizedException", err.message)
		assert.matches("aws sso login %-%-sso%-session corp", err.message)
		no_secret(err)
	end)

	it("reports an unreachable portal naming the provider", function()
		local cfg = session_config()
		F.write(cache_path(home, "corp"), json.encode{ accessToken = TOKEN, expiresAt = FAR })
		local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg,
			env = { AWS_ENDPOINT_URL_SSO = "http://127.0.0.1:1" } })
		assert.is_nil(c)
		assert.matches("^sso credentials", err.message)
		assert.matches("GetRoleCredentials request failed", err.message)
	end)

	describe("token refresh (SSO-OIDC CreateToken)", function()
		local function write_refreshable(expires_at, reg)
			F.write(cache_path(home, "corp"), json.encode{ startUrl = "https://corp.awsapps.com/start",
				region = "us-east-1", accessToken = "stale-SECRET-token", expiresAt = expires_at,
				refreshToken = REFRESH, clientId = "client-id-1", clientSecret = CLIENT_SECRET,
				registrationExpiresAt = reg or FAR })
		end

		it("refreshes a token that expires within 15 minutes and rewrites the cache", function()
			local now = os.time()
			local cfg = session_config()
			local exp = os.date("!%Y-%m-%dT%H:%M:%SZ", now + 600)
			write_refreshable(exp)
			local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
			assert.is_nil(err)
			assert.matches("^ASIA", c.access_key_id)
			local saved = json.decode(F.read(cache_path(home, "corp")))
			assert.matches("^aoaEMU", saved.accessToken)
			assert.matches("^aorEMU", saved.refreshToken)
			assert.equal("client-id-1", saved.clientId)
			assert.equal(CLIENT_SECRET, saved.clientSecret)
			assert.equal(FAR, saved.registrationExpiresAt)
			assert.equal("https://corp.awsapps.com/start", saved.startUrl)
			assert.equal("us-east-1", saved.region)
			local t = require("bedrock.shapes").parse_time(saved.expiresAt)
			assert.is_true(t >= now + 3500 and t <= now + 3700)
			-- the rotated refresh token works again, with an injected clock near expiry
			local c2, err2 = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg,
				now = function() return t - 60 end })
			assert.is_nil(err2)
			assert.is_string(c2.access_key_id)
			assert.are_not.equal(saved.accessToken, json.decode(F.read(cache_path(home, "corp"))).accessToken)
		end)

		it("keeps a still-valid token when the refresh fails", function()
			local cfg = session_config()
			F.write(cache_path(home, "corp"), json.encode{ accessToken = TOKEN,
				expiresAt = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 300), refreshToken = "wrong-SECRET",
				clientId = "c", clientSecret = CLIENT_SECRET, registrationExpiresAt = FAR })
			local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
			assert.is_nil(err)
			assert.matches("^ASIA", c.access_key_id)
			assert.equal(TOKEN, json.decode(F.read(cache_path(home, "corp"))).accessToken)
		end)

		it("says why an expired token could not be refreshed", function()
			local cfg = session_config()
			write_refreshable("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z")
			local _, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
			assert.matches("has expired and the client registration expired", err.message)
			F.write(cache_path(home, "corp"), json.encode{ accessToken = TOKEN, expiresAt = "2020-01-01T00:00:00Z",
				refreshToken = "wrong-SECRET", clientId = "c", clientSecret = CLIENT_SECRET, registrationExpiresAt = FAR })
			_, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
			assert.matches("the refresh failed: CreateToken answered InvalidGrantException", err.message)
			assert.matches("aws sso login %-%-sso%-session corp", err.message)
			no_secret(err)
		end)

		it("does not refresh legacy tokens (botocore does not either)", function()
			local prof = { sso_start_url = "https://l/start", sso_region = "us-east-1",
				sso_account_id = "1", sso_role_name = "R" }
			F.write(cache_path(home, prof.sso_start_url), json.encode{ accessToken = TOKEN,
				expiresAt = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 300), refreshToken = REFRESH,
				clientId = "c", clientSecret = CLIENT_SECRET, registrationExpiresAt = FAR })
			local c, err = SSO.new():get(ctx{ profile_name = "old", profile = prof })
			assert.is_nil(err)
			assert.is_string(c.access_key_id)
			assert.equal(TOKEN, json.decode(F.read(cache_path(home, prof.sso_start_url))).accessToken)
		end)
	end)

	describe("against botocore", function()
		local has = F.has_botocore()
		local config_text = table.concat({
			"[profile dev]", "sso_session = corp", "sso_account_id = 111122223333",
			"sso_role_name = Admin", "region = eu-west-1", "",
			"[sso-session corp]", "sso_start_url = https://corp.awsapps.com/start",
			"sso_region = us-east-1", "", }, "\n")

		local function boto(extra)
			local env = { HOME = home, AWS_PROFILE = "dev", AWS_ENDPOINT_URL_SSO = em.url,
				AWS_ENDPOINT_URL_SSO_OIDC = em.url, AWS_CONFIG_FILE = home .. "/.aws/config",
				AWS_SHARED_CREDENTIALS_FILE = home .. "/.aws/credentials", AWS_EC2_METADATA_DISABLED = "true",
				NO_PROXY = "127.0.0.1", no_proxy = "127.0.0.1" }
			for k, v in pairs(extra or {}) do env[k] = v end
			return F.python(env, "spec/sso_botocore.py")
		end

		it("reads the cache file Lua reads, and Lua reads the file botocore refreshed", function()
			if not has then pending("python3 botocore is not installed") return end
			F.write(home .. "/.aws/config", config_text)
			local cfg = session_config()
			-- a token near expiry: botocore refreshes it through the emulator and rewrites the cache
			F.write(cache_path(home, "corp"), json.encode{ startUrl = "https://corp.awsapps.com/start",
				region = "us-east-1", accessToken = "stale-SECRET-token",
				expiresAt = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 120), refreshToken = REFRESH,
				clientId = "client-id-1", clientSecret = CLIENT_SECRET, registrationExpiresAt = FAR })
			local out = boto()
			assert.matches("^creds ASIA", out)
			local saved = json.decode(F.read(cache_path(home, "corp")))
			assert.matches("^aoaEMU", saved.accessToken)
			-- Lua uses botocore's refreshed file as it is
			local c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
			assert.is_nil(err)
			assert.matches("^ASIA", c.access_key_id)
			-- and botocore uses the file Lua refreshed
			F.write(cache_path(home, "corp"), json.encode{ accessToken = "stale-SECRET-token",
				expiresAt = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 120), refreshToken = saved.refreshToken,
				clientId = "client-id-1", clientSecret = CLIENT_SECRET, registrationExpiresAt = FAR,
				startUrl = "https://corp.awsapps.com/start", region = "us-east-1" })
			c, err = SSO.new():get(ctx{ profile_name = "dev", profile = cfg.profiles.dev, config = cfg })
			assert.is_nil(err)
			assert.matches("^ASIA", c.access_key_id)
			local lua_saved = json.decode(F.read(cache_path(home, "corp")))
			assert.matches("^aoaEMU", lua_saved.accessToken)
			out = boto()
			assert.matches("^creds ASIA", out)
			assert.equal(lua_saved.accessToken, json.decode(F.read(cache_path(home, "corp"))).accessToken)
		end)

		it("fails where botocore fails: an expired legacy token", function()
			if not has then pending("python3 botocore is not installed") return end
			F.write(home .. "/.aws/config", table.concat({ "[profile dev]",
				"sso_start_url = https://l/start", "sso_region = us-east-1", "sso_account_id = 1",
				"sso_role_name = R", "" }, "\n"))
			F.write(cache_path(home, "https://l/start"), json.encode{ accessToken = TOKEN,
				expiresAt = "2020-01-01T00:00:00Z" })
			local out = boto()
			assert.matches("^error UnauthorizedSSOTokenError", out)
			local _, err = SSO.new():get(ctx{ profile_name = "dev", profile = { sso_start_url = "https://l/start",
				sso_region = "us-east-1", sso_account_id = "1", sso_role_name = "R" } })
			assert.matches("has expired", err.message)
		end)
	end)
end)
