-- luacheck: no max line length
-- The credential chain and the configuration from the shared files, against the
-- emulator's credential endpoints over real sockets, with real files in a temporary HOME.
local helper = require "spec.helper"
local bedrock = require "bedrock"
local config = require "bedrock.config"
local credentials = require "bedrock.credentials"

local q = helper.shell_quote
local STATIC_ID, STATIC_SECRET = "AKIDSTATICEXAMPLE001", "staticSecretKeyExample0000000000000000000"

local function mkdir(p) assert(os.execute("mkdir -p " .. q(p))) end

local function write(path, text, mode)
	mkdir(path:match("^(.*)/[^/]*$"))
	local f = assert(io.open(path, "wb"))
	f:write(text)
	f:close()
	if mode then os.execute("chmod " .. mode .. " " .. q(path)) end
end

local homes = {}
local function new_home()
	local n = os.tmpname()
	os.remove(n)
	mkdir(n .. "/.aws")
	homes[#homes + 1] = n
	return n
end

local function getenv_of(t) return function(k) return t[k] end end

-- a client over env table `e` (HOME and the metadata switch preset)
local function client(e, opts)
	opts = opts or {}
	e.AWS_EC2_METADATA_DISABLED = e.AWS_EC2_METADATA_DISABLED or "true"
	opts.getenv = getenv_of(e)
	return assert(bedrock.client(opts))
end

local function elapsed(fn)
	local t0 = os.time()
	local a, b = fn()
	return os.time() - t0, a, b
end

describe("credentials chain", function()
	local em
	setup(function()
		em = helper.emulator({ "--key", STATIC_ID .. ":" .. STATIC_SECRET, "--container-token", "ctok-123",
			"--web-identity-token", "wit-abc" })
	end)
	teardown(function()
		if em then em.stop() end
		for _, h in ipairs(homes) do os.execute("rm -rf " .. q(h)) end
	end)

	local function converse(c)
		return c:converse{ modelId = "anthropic.claude-3-haiku-20240307-v1:0",
			messages = { { role = "user", content = { { text = "hi" } } } } }
	end

	describe("shared files", function()
		it("reads static keys from the credentials file and the region and endpoint from the config file", function()
			local home = new_home()
			write(home .. "/.aws/credentials", "[default]\naws_access_key_id = " .. STATIC_ID ..
				"\naws_secret_access_key = " .. STATIC_SECRET .. "\n")
			write(home .. "/.aws/config", "[default]\nregion = eu-west-1\nservices = local\n\n" ..
				"[services local]\nbedrock_runtime =\n  endpoint_url = " .. em.url .. "\n")
			local c = client{ HOME = home }
			local creds = assert(c:credentials())
			assert.equal("shared-credentials-file", creds.source)
			assert.equal(STATIC_ID, creds.access_key_id)
			assert.equal("eu-west-1", c.config.region)
			assert.equal(em.url, c.config.endpoint.url)
			local r, err = converse(c)
			assert(r, tostring(err))
			assert.is_table(r.output)
		end)

		it("takes nothing from the files at creation; a broken file is the first call's error, naming file and line", function()
			local home = new_home()
			write(home .. "/.aws/config", "[default]\nregion = us-east-1\nthis line is not an option\n")
			local c = client{ HOME = home, AWS_ACCESS_KEY_ID = STATIC_ID, AWS_SECRET_ACCESS_KEY = STATIC_SECRET }
			local r, err = converse(c)
			assert.is_nil(r)
			assert.equal("ConfigError", err.code)
			assert.matches(home .. "/.aws/config:3", err.message, 1, true)
			local _, e2 = c:credentials()
			assert.equal(err, e2)
		end)

		it("selects profiles as botocore does: option > AWS_DEFAULT_PROFILE > AWS_PROFILE; a named profile does not inherit [default]'s region", function()
			local home = new_home()
			write(home .. "/.aws/config", "[default]\nregion = us-west-2\n[profile a]\nregion = eu-central-1\n" ..
				"[profile b]\nregion = ap-south-1\n[profile noregion]\noutput = json\n")
			local function region(e, o)
				e.HOME = home
				local cfg, err = config.resolve_all(o or {}, getenv_of(e))
				return cfg and cfg.region, err
			end
			assert.equal("us-west-2", region{})
			assert.equal("eu-central-1", region{ AWS_PROFILE = "a" })
			assert.equal("ap-south-1", region{ AWS_PROFILE = "a", AWS_DEFAULT_PROFILE = "b" })
			assert.equal("eu-central-1", region({ AWS_DEFAULT_PROFILE = "b" }, { profile = "a" }))
			assert.equal("us-east-2", region({ AWS_PROFILE = "a", AWS_REGION = "us-east-2" }))
			local r, err = region{ AWS_PROFILE = "noregion" }
			assert.is_nil(r)
			assert.matches("no region", err.message)
			r, err = region{ AWS_PROFILE = "missing" }
			assert.is_nil(r)
			assert.matches("profile %(missing%) could not be found", err.message)
		end)

		it("reads retry_mode, max_attempts, ca_bundle, FIPS and endpoint settings from the profile, under the environment", function()
			local home = new_home()
			write(home .. "/.aws/config", "[default]\nregion = us-east-1\nretry_mode = legacy\nmax_attempts = 7\nca_bundle = ~/ca.pem\n" ..
				"use_fips_endpoint = true\n[profile e]\nregion = us-east-1\nendpoint_url = http://from-profile:1\n" ..
				"[profile i]\nregion = us-east-1\nendpoint_url = http://from-profile:1\nignore_configured_endpoint_urls = true\n" ..
				"[profile bad]\nregion = us-east-1\nmax_attempts = many\n")
			local cfg = assert(config.resolve_all({}, getenv_of{ HOME = home }))
			assert.equal("legacy", cfg.retry.mode)
			assert.equal(7, cfg.retry.max_attempts)
			assert.equal(home .. "/ca.pem", cfg.cainfo)
			assert.equal("https://bedrock-runtime-fips.us-east-1.amazonaws.com", cfg.endpoint.url)
			cfg = assert(config.resolve_all({ retry = { max_attempts = 2 } }, getenv_of{ HOME = home, AWS_RETRY_MODE = "standard", AWS_CA_BUNDLE = "/x.pem" }))
			assert.equal("standard", cfg.retry.mode)
			assert.equal(2, cfg.retry.max_attempts)
			assert.equal("/x.pem", cfg.cainfo)
			cfg = assert(config.resolve_all({}, getenv_of{ HOME = home, AWS_PROFILE = "e" }))
			assert.equal("http://from-profile:1", cfg.endpoint.url)
			cfg = assert(config.resolve_all({}, getenv_of{ HOME = home, AWS_PROFILE = "e", AWS_ENDPOINT_URL = "http://env:2" }))
			assert.equal("http://env:2", cfg.endpoint.url)
			cfg = assert(config.resolve_all({}, getenv_of{ HOME = home, AWS_PROFILE = "i", AWS_ENDPOINT_URL = "http://env:2" }))
			assert.equal("https://bedrock-runtime.us-east-1.amazonaws.com", cfg.endpoint.url)
			cfg = assert(config.resolve_all({ endpoint = "http://opt:3" }, getenv_of{ HOME = home, AWS_PROFILE = "i" }))
			assert.equal("http://opt:3", cfg.endpoint.url)
			local _, err = config.resolve_all({}, getenv_of{ HOME = home, AWS_PROFILE = "bad" })
			assert.matches("max_attempts in the profile must be an integer", err.message)
			-- the retry policy of a client follows the file
			local c = client({ HOME = home }, { endpoint = em.url, use_fips_endpoint = false })
			assert(c:_ready())
			assert.equal(7, c.policy.max_attempts)
		end)

		it("lets the credentials file win over the config file, and reads static keys from the config file", function()
			local home = new_home()
			write(home .. "/.aws/config", "[profile p]\nregion = us-east-1\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = s1\n" ..
				"[profile q]\nregion = us-east-1\naws_access_key_id = AKIDCONFIGQ\naws_secret_access_key = s2\n")
			write(home .. "/.aws/credentials", "[p]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = s3\n")
			local c = assert(client({ HOME = home }, { profile = "p" }):credentials())
			assert.equal("AKIDCREDS", c.access_key_id)
			assert.equal("shared-credentials-file", c.source)
			c = assert(client({ HOME = home }, { profile = "q" }):credentials())
			assert.equal("AKIDCONFIGQ", c.access_key_id)
			assert.equal("config-file", c.source)
		end)

		it("uses AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE", function()
			local home = new_home()
			write(home .. "/elsewhere/cfg", "[default]\nregion = sa-east-1\n")
			write(home .. "/elsewhere/creds", "[default]\naws_access_key_id = AKIDELSE\naws_secret_access_key = x\n")
			local c = client{ HOME = home, AWS_CONFIG_FILE = home .. "/elsewhere/cfg",
				AWS_SHARED_CREDENTIALS_FILE = "~/elsewhere/creds" }
			assert.equal("AKIDELSE", assert(c:credentials()).access_key_id)
			assert.equal("sa-east-1", c.config.region)
		end)

		it("reports partial keys in a file with the file and line", function()
			local home = new_home()
			write(home .. "/.aws/credentials", "[default]\n# comment\naws_access_key_id = AKIDPARTIAL\n")
			local c, err = client({ HOME = home }, { region = "us-east-1" }):credentials()
			assert.is_nil(c)
			assert.equal("shared-credentials-file", err.provider)
			assert.matches(home .. "/.aws/credentials:3", err.message, 1, true)
		end)

		it("an explicit profile option turns the environment keys off; AWS_PROFILE does not", function()
			local home = new_home()
			write(home .. "/.aws/credentials", "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = x\n")
			local e = { HOME = home, AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "y", AWS_REGION = "us-east-1" }
			assert.equal("AKIDENV", assert(client(e):credentials()).access_key_id)
			e.AWS_PROFILE = "dev"
			assert.equal("AKIDENV", assert(client(e):credentials()).access_key_id)
			local c = assert(client(e, { profile = "dev" }):credentials())
			assert.equal("AKIDDEV", c.access_key_id)
		end)

		it("says what was tried when nothing is found", function()
			local home = new_home()
			local c, err = client({ HOME = home }, { region = "us-east-1" }):credentials()
			assert.is_nil(c)
			assert.equal("CredentialsError", err.code)
			for _, n in ipairs{ "env", "assume-role", "shared-credentials-file", "custom-process", "config-file",
				"container-role", "iam-role" } do
				assert.matches(n, err.message, 1, true)
			end
		end)

		it("keeps AWS_BEARER_TOKEN_BEDROCK and { token = } working", function()
			local home = new_home()
			local c = client({ HOME = home, AWS_BEARER_TOKEN_BEDROCK = "bt" }, { region = "us-east-1" })
			assert.equal("bearer", c.auth.scheme)
			assert.equal("bt", assert(c:credentials()).token)
			c = client({ HOME = home }, { region = "us-east-1", credentials = { token = "t2" } })
			assert.equal("t2", assert(c:credentials()).token)
		end)
	end)

	describe("assume role", function()
		local function files(home, cfgtext)
			write(home .. "/.aws/config", cfgtext)
			write(home .. "/.aws/credentials", "[base]\naws_access_key_id = " .. STATIC_ID ..
				"\naws_secret_access_key = " .. STATIC_SECRET .. "\n")
		end

		it("follows a source_profile chain through STS and signs a call with the result", function()
			local home = new_home()
			files(home, "[profile a]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/A\nsource_profile = b\n" ..
				"role_session_name = sess-a\n" ..
				"[profile b]\nrole_arn = arn:aws:iam::123456789012:role/B\nsource_profile = base\nexternal_id = ext\nduration_seconds = 1800\n")
			local c = client({ HOME = home, AWS_PROFILE = "a", AWS_ENDPOINT_URL_STS = em.url, AWS_ENDPOINT_URL_BEDROCK_RUNTIME = em.url })
			local creds = assert(c:credentials())
			assert.equal("assume-role", creds.source)
			assert.matches("^ASIA", creds.access_key_id)
			assert.is_string(creds.session_token)
			assert.is_number(creds.expiration)
			local r, err = converse(c)
			assert(r, tostring(err))
		end)

		it("detects a cycle and names the profiles", function()
			local home = new_home()
			files(home, "[profile a]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = b\n" ..
				"[profile b]\nrole_arn = arn:aws:iam::1:role/B\nsource_profile = a\n")
			local _, err = client({ HOME = home, AWS_PROFILE = "a", AWS_REGION = "us-east-1", AWS_ENDPOINT_URL_STS = em.url }):credentials()
			assert.equal("assume-role", err.provider)
			assert.matches("a -> b -> a", err.message, 1, true)
		end)

		it("lets a profile be its own source only with static keys", function()
			local home = new_home()
			write(home .. "/.aws/config", "[profile self]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/S\nsource_profile = self\n" ..
				"aws_access_key_id = " .. STATIC_ID .. "\naws_secret_access_key = " .. STATIC_SECRET .. "\n" ..
				"[profile loop]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/S\nsource_profile = loop\n")
			local creds = assert(client({ HOME = home, AWS_PROFILE = "self", AWS_ENDPOINT_URL_STS = em.url }):credentials())
			assert.equal("assume-role", creds.source)
			local _, err = client({ HOME = home, AWS_PROFILE = "loop", AWS_ENDPOINT_URL_STS = em.url }):credentials()
			assert.matches("loop -> loop", err.message, 1, true)
		end)

		it("refuses mfa_serial, a missing source profile and a bad credential_source clearly", function()
			local home = new_home()
			files(home, "[profile m]\nrole_arn = arn:aws:iam::1:role/M\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/u\n" ..
				"[profile n]\nrole_arn = arn:aws:iam::1:role/N\nsource_profile = nowhere\n" ..
				"[profile o]\nrole_arn = arn:aws:iam::1:role/O\ncredential_source = Laptop\n" ..
				"[profile p]\nrole_arn = arn:aws:iam::1:role/P\n")
			local function err_of(p)
				local _, err = client({ HOME = home, AWS_PROFILE = p, AWS_REGION = "us-east-1", AWS_ENDPOINT_URL_STS = em.url }):credentials()
				return err.message
			end
			assert.matches("MFA", err_of("m"))
			assert.matches("config:4", err_of("m"))
			assert.matches("source_profile \"nowhere\"", err_of("n"))
			assert.matches("Laptop", err_of("o"))
			assert.matches("neither source_profile nor credential_source", err_of("p"))
		end)

		it("takes credential_source Environment and EcsContainer", function()
			local home = new_home()
			write(home .. "/.aws/config", "[profile e]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/E\ncredential_source = Environment\n" ..
				"[profile k]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/K\ncredential_source = EcsContainer\n")
			local c = assert(client({ HOME = home, AWS_PROFILE = "e", AWS_ENDPOINT_URL_STS = em.url,
				AWS_ACCESS_KEY_ID = STATIC_ID, AWS_SECRET_ACCESS_KEY = STATIC_SECRET }, { profile = "e" }):credentials())
			assert.equal("assume-role", c.source)
			c = assert(client({ HOME = home, AWS_ENDPOINT_URL_STS = em.url,
				AWS_CONTAINER_CREDENTIALS_FULL_URI = em.url .. "/container-credentials",
				AWS_CONTAINER_AUTHORIZATION_TOKEN = "ctok-123" }, { profile = "k" }):credentials())
			assert.equal("assume-role", c.source)
			local _, err = client({ HOME = home, AWS_ENDPOINT_URL_STS = em.url }, { profile = "e" }):credentials()
			assert.matches("no credentials found in credential_source Environment", err.message)
		end)

		it("reports STS's refusal", function()
			local home = new_home()
			write(home .. "/.aws/config", "[profile a]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = bad\n" ..
				"[profile bad]\naws_access_key_id = AKIDUNKNOWN\naws_secret_access_key = nope\n")
			local _, err = client({ HOME = home, AWS_ENDPOINT_URL_STS = em.url }, { profile = "a" }):credentials()
			assert.equal("assume-role", err.provider)
			assert.matches("InvalidClientTokenId", err.message)
			assert.not_matches("nope", err.message)
		end)
	end)

	describe("web identity", function()
		it("wins from the environment over static keys in [default]", function()
			local home = new_home()
			write(home .. "/token", "wit-abc")
			write(home .. "/.aws/credentials", "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = x\n")
			local c = assert(client({ HOME = home, AWS_REGION = "us-east-1", AWS_ENDPOINT_URL_STS = em.url,
				AWS_WEB_IDENTITY_TOKEN_FILE = home .. "/token", AWS_ROLE_ARN = "arn:aws:iam::1:role/W",
				AWS_ROLE_SESSION_NAME = "pod" }):credentials())
			assert.equal("assume-role-with-web-identity", c.source)
			assert.matches("^ASIA", c.access_key_id)
		end)

		it("reads web_identity_token_file from the profile; a wrong token is STS's error", function()
			local home = new_home()
			write(home .. "/good", "wit-abc")
			write(home .. "/bad", "not-it")
			write(home .. "/.aws/config", "[profile w]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/W\nweb_identity_token_file = " .. home .. "/good\n" ..
				"[profile x]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/W\nweb_identity_token_file = " .. home .. "/bad\n" ..
				"[profile y]\nregion = us-east-1\nweb_identity_token_file = " .. home .. "/good\n")
			local c = assert(client({ HOME = home, AWS_ENDPOINT_URL_STS = em.url }, { profile = "w" }):credentials())
			assert.equal("assume-role-with-web-identity", c.source)
			local _, err = client({ HOME = home, AWS_ENDPOINT_URL_STS = em.url }, { profile = "x" }):credentials()
			assert.matches("InvalidIdentityToken", err.message)
			assert.not_matches("not%-it", err.message)
			_, err = client({ HOME = home, AWS_ENDPOINT_URL_STS = em.url }, { profile = "y" }):credentials()
			assert.matches("no role ARN", err.message)
		end)
	end)

	describe("credential_process", function()
		local function script(home, name, body)
			local p = home .. "/" .. name
			write(p, "#!/bin/sh\n" .. body, "755")
			return p
		end

		it("runs the command without a shell and reads Version 1 JSON", function()
			local home = new_home()
			local p = script(home, "cp ok.sh", 'printf \'{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "s", "SessionToken": "t", ' ..
				'"Expiration": "2099-01-01T00:00:00Z", "Arg": "%s"}\' "$1"\n')
			write(home .. "/.aws/config", "[default]\nregion = us-east-1\ncredential_process = \"" .. p .. "\" '$HOME; echo x'\n")
			local c = assert(client{ HOME = home }:credentials())
			assert.equal("custom-process", c.source)
			assert.equal("AKIDPROC", c.access_key_id)
			assert.equal("t", c.session_token)
			assert.equal(4070908800, c.expiration)
		end)

		it("names the profile when the command fails, prints garbage or a wrong version", function()
			local home = new_home()
			local fail = script(home, "fail.sh", "echo 'no session, run login' >&2\nexit 3\n")
			local garbage = script(home, "garbage.sh", "echo 'hello'\n")
			local v2 = script(home, "v2.sh", "echo '{\"Version\": 2, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"S\"}'\n")
			local nosecret = script(home, "nosecret.sh", "echo '{\"Version\": 1, \"AccessKeyId\": \"A\"}'\n")
			write(home .. "/.aws/config", "[profile f]\ncredential_process = " .. fail .. "\n[profile g]\ncredential_process = " .. garbage ..
				"\n[profile v]\ncredential_process = " .. v2 .. "\n[profile n]\ncredential_process = " .. nosecret ..
				"\n[profile m]\ncredential_process = " .. home .. "/missing-program\n")
			local function err_of(p)
				local _, err = client({ HOME = home }, { region = "us-east-1", profile = p }):credentials()
				assert.equal("custom-process", err.provider)
				assert.matches("profile " .. p, err.message)
				return err.message
			end
			assert.matches("status 3: no session, run login", err_of("f"))
			assert.matches("JSON", err_of("g"))
			assert.matches("Version 2", err_of("v"))
			assert.matches("SecretAccessKey", err_of("n"))
			assert.matches("not found", err_of("m"))
		end)

		it("ends a command that runs too long", function()
			local home = new_home()
			local slow = script(home, "slow.sh", "sleep 30\n")
			write(home .. "/.aws/config", "[default]\ncredential_process = " .. slow .. "\n")
			local P = require "bedrock.credentials.process"
			local cfg = assert(config.resolve_all({ region = "us-east-1" }, getenv_of{ HOME = home }))
			local ctx = assert(credentials.context(cfg))
			local secs, c, err = elapsed(function() return P.new{ timeout = 1 }:get(ctx) end)
			assert.is_nil(c)
			assert.matches("did not finish within 1 s", err.message)
			assert.is_true(secs < 10)
		end)
	end)

	describe("container endpoint", function()
		it("fetches with the token or the token file", function()
			local home = new_home()
			write(home .. "/tok", "ctok-123\n")
			local c = assert(client({ HOME = home, AWS_CONTAINER_CREDENTIALS_FULL_URI = em.url .. "/v2/credentials/x",
				AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = home .. "/tok", AWS_CONTAINER_AUTHORIZATION_TOKEN = "wrong" },
				{ region = "us-east-1", endpoint = em.url }):credentials())
			assert.equal("container-role", c.source)
			local r, err = converse(client({ HOME = home, AWS_CONTAINER_CREDENTIALS_FULL_URI = em.url .. "/container-credentials",
				AWS_CONTAINER_AUTHORIZATION_TOKEN = "ctok-123" }, { region = "us-east-1", endpoint = em.url }))
			assert(r, tostring(err))
			local _
			_, err = client({ HOME = home, AWS_CONTAINER_CREDENTIALS_FULL_URI = em.url .. "/container-credentials",
				AWS_CONTAINER_AUTHORIZATION_TOKEN = "wrong" }, { region = "us-east-1" }):credentials()
			assert.equal("container-role", err.provider)
			assert.matches("401", err.message)
			assert.not_matches("wrong", err.message)
		end)

		it("allows only botocore's hosts for a full URI", function()
			local P = require "bedrock.credentials.container"
			for _, u in ipairs{ "http://127.0.0.1:80/x", "http://127.1.2.3/x", "http://localhost:9/x", "http://169.254.170.2/x",
				"http://169.254.170.23/x", "http://[fd00:ec2::23]/x", "http://[::1]:8/x", "https://example.com/x" } do
				assert.is_true(P.allowed_full_uri(u), u)
			end
			for _, u in ipairs{ "http://example.com/x", "http://169.254.169.254/x", "http://10.0.0.1/x", "ftp://127.0.0.1/" } do
				assert.is_nil(P.allowed_full_uri(u), u)
			end
			local _, err = client({ HOME = new_home(), AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://example.com/creds" },
				{ region = "us-east-1" }):credentials()
			assert.matches("example.com", err.message)
		end)
	end)

	describe("instance metadata", function()
		it("walks IMDSv2: token, role, credentials", function()
			local c = client({ HOME = new_home(), AWS_EC2_METADATA_DISABLED = "false",
				AWS_EC2_METADATA_SERVICE_ENDPOINT = em.url .. "/" }, { region = "us-east-1", endpoint = em.url })
			local creds = assert(c:credentials())
			assert.equal("iam-role", creds.source)
			local r, err = converse(c)
			assert(r, tostring(err))
		end)

		it("does not hang without a metadata service, and AWS_EC2_METADATA_DISABLED skips it", function()
			-- a port nobody listens on, then an address that never answers
			for _, ep in ipairs{ "http://127.0.0.1:9", "http://10.255.255.1" } do
				local c = client({ HOME = new_home(), AWS_EC2_METADATA_DISABLED = "false",
					AWS_EC2_METADATA_SERVICE_ENDPOINT = ep }, { region = "us-east-1" })
				local secs, creds, err = elapsed(function() return c:credentials() end)
				assert.is_nil(creds)
				assert.matches("no credentials found", err.message)
				assert.is_true(secs <= 4, ep .. " took " .. secs .. " s")
			end
		end)
	end)

	describe("refresh", function()
		it("never signs with expired credentials: short-lived ones are fetched again", function()
			local em2 = helper.emulator({ "--cred-ttl", "3" })
			local ok, e = pcall(function()
				local c = client({ HOME = new_home(), AWS_EC2_METADATA_DISABLED = "false",
					AWS_EC2_METADATA_SERVICE_ENDPOINT = em2.url }, { region = "us-east-1", endpoint = em2.url })
				local a = assert(c:credentials())
				local b = assert(c:credentials())
				assert.are_not.equal(a.access_key_id, b.access_key_id) -- inside the mandatory window
				local r, err = converse(c)
				assert(r, tostring(err))
			end)
			em2.stop()
			assert(ok, e)
		end)

		it("advisory window: one refresh, a failure keeps the keys; mandatory: the failure is returned; injectable clock", function()
			local now, n, fail = 0, 0, false
			local p = credentials.cached(function()
				n = n + 1
				if fail then return nil, "refresh failed" end
				return { access_key_id = "K" .. n, secret_access_key = "s", expiration = 3600 }
			end, { clock = function() return now end })
			assert.equal("K1", p().access_key_id)
			now = 3600 - 901
			assert.equal("K1", p().access_key_id)
			assert.equal(1, n)
			now = 3600 - 899
			fail = true
			assert.equal("K1", p().access_key_id) -- advisory: old keys kept
			now = 3600 - 599
			local c, err = p()
			assert.is_nil(c)
			assert.matches("refresh failed", tostring(err))
			now = 3600
			fail = false
			-- a provider that answers with keys that are already expired is an error
			c, err = p()
			assert.is_nil(c)
			assert.matches("already expired", tostring(err))
		end)
	end)

	describe("hand-off to the SSO and login providers", function()
		local saved = {}
		local names = { "bedrock.credentials.sso", "bedrock.credentials.login" }
		before_each(function()
			for _, n in ipairs(names) do saved[n] = { package.loaded[n], package.preload[n] } end
		end)
		after_each(function()
			for _, n in ipairs(names) do package.loaded[n], package.preload[n] = saved[n][1], saved[n][2] end
		end)

		it("requires bedrock.credentials.sso only for a profile with sso keys, and gives it the context", function()
			local home = new_home()
			write(home .. "/.aws/config", "[profile s]\nregion = eu-west-1\nsso_session = corp\nsso_account_id = 1\nsso_role_name = r\n" ..
				"[sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://x.awsapps.com/start\n" ..
				"[profile plain]\nregion = eu-west-1\naws_access_key_id = AKIDPLAIN\naws_secret_access_key = x\n")
			local required = 0
			package.loaded["bedrock.credentials.sso"] = nil
			package.preload["bedrock.credentials.sso"] = function()
				required = required + 1
				return { new = function(o)
					return { name = "sso", get = function(_, ctx)
						assert.equal("s", o.profile_name)
						assert.equal("corp", ctx.profile.sso_session)
						assert.equal("https://x.awsapps.com/start", ctx.files.config.sso_sessions.corp.sso_start_url)
						assert.equal("function", type(ctx.http))
						assert.equal("eu-west-1", ctx.region)
						assert.equal(em.url, assert(config.endpoint_for("sso", ctx)))
						-- the http function reaches a real endpoint through the client's transport
						local res = assert(ctx.http{ method = "GET", url = em.url .. "/federation/credentials?role_name=r&account_id=1",
							headers = { { "x-amz-sso_bearer_token", "t" } }, timeouts = { connect = 2, total = 5 } })
						assert.equal(200, res.status)
						return { access_key_id = "AKIDSSO", secret_access_key = "x", source = "sso" }
					end }
				end }
			end
			local c = assert(client({ HOME = home, AWS_ENDPOINT_URL_SSO = em.url }, { profile = "plain" }):credentials())
			assert.equal("AKIDPLAIN", c.access_key_id)
			assert.equal(0, required)
			c = assert(client({ HOME = home, AWS_ENDPOINT_URL_SSO = em.url }, { profile = "s" }):credentials())
			assert.equal("sso", c.source)
			assert.equal(1, required)
		end)

		it("a login_session profile without the login module is a clear error", function()
			local home = new_home()
			write(home .. "/.aws/config", "[profile l]\nregion = us-east-1\nlogin_session = arn:aws:iam::1:user/u\n")
			package.loaded["bedrock.credentials.login"] = nil
			package.preload["bedrock.credentials.login"] = function() error("module not installed") end
			local _, err = client({ HOME = home }, { profile = "l" }):credentials()
			assert.equal("login", err.provider)
			assert.matches("bedrock.credentials.login", err.message, 1, true)
		end)
	end)

	describe("endpoints of the providers", function()
		it("follow botocore: service variable, global variable, services section, sts_regional_endpoints", function()
			local ctx = { getenv = getenv_of{}, profile = {}, files = { config = { services = {} } } }
			assert.equal("https://sts.eu-west-1.amazonaws.com", config.endpoint_for("sts", ctx, "eu-west-1"))
			assert.equal("https://sts.amazonaws.com", config.endpoint_for("sts", ctx))
			assert.equal("https://sts.cn-north-1.amazonaws.com.cn", config.endpoint_for("sts", ctx, "cn-north-1"))
			ctx.profile.sts_regional_endpoints = "legacy"
			assert.equal("https://sts.amazonaws.com", config.endpoint_for("sts", ctx, "eu-west-1"))
			assert.equal("https://sts.ap-east-1.amazonaws.com", config.endpoint_for("sts", ctx, "ap-east-1"))
			assert.equal("https://portal.sso.eu-west-1.amazonaws.com", config.endpoint_for("sso", ctx, "eu-west-1"))
			assert.equal("https://eu-west-1.signin.aws.amazon.com", config.endpoint_for("signin", ctx, "eu-west-1"))
			assert.equal("https://cn-north-1.signin.amazonaws.cn", config.endpoint_for("signin", ctx, "cn-north-1"))
			ctx.profile = { services = "s", endpoint_url = "http://global:1" }
			ctx.files.config.services.s = { sts = { endpoint_url = "http://svc:2" } }
			assert.equal("http://svc:2", config.endpoint_for("sts", ctx, "eu-west-1"))
			assert.equal("http://global:1", config.endpoint_for("sso", ctx, "eu-west-1"))
			ctx.getenv = getenv_of{ AWS_ENDPOINT_URL = "http://env:3" }
			assert.equal("http://env:3", config.endpoint_for("sts", ctx, "eu-west-1"))
			ctx.getenv = getenv_of{ AWS_ENDPOINT_URL = "http://env:3", AWS_ENDPOINT_URL_STS = "http://envsts:4" }
			assert.equal("http://envsts:4", config.endpoint_for("sts", ctx, "eu-west-1"))
			ctx.getenv = getenv_of{ AWS_ENDPOINT_URL = "http://env:3", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "true" }
			assert.equal("https://sts.eu-west-1.amazonaws.com", config.endpoint_for("sts", ctx, "eu-west-1"))
			ctx.getenv = getenv_of{}
			ctx.profile = { services = "missing" }
			local u, err = config.endpoint_for("sts", ctx, "eu-west-1")
			assert.is_nil(u)
			assert.matches("\"missing\" services configuration does not exist", err.message)
		end)
	end)

	describe("logging", function()
		it("names the provider that answered, never the keys", function()
			local home = new_home()
			write(home .. "/.aws/credentials", "[default]\naws_access_key_id = " .. STATIC_ID .. "\naws_secret_access_key = " .. STATIC_SECRET .. "\n")
			local lines = {}
			local c = client({ HOME = home }, { region = "us-east-1", endpoint = em.url, logger = function(l) lines[#lines + 1] = l end })
			local r, err = converse(c)
			assert(r, tostring(err))
			local all = table.concat(lines, "\n")
			assert.matches("bedrock: credentials from shared-credentials-file", all, 1, true)
			assert.not_matches(STATIC_SECRET, all, 1, true)
		end)
	end)

	describe("secrets", function()
		it("never appear in tostring(client), tostring(credentials) or errors", function()
			local home = new_home()
			write(home .. "/.aws/credentials", "[default]\naws_access_key_id = " .. STATIC_ID ..
				"\naws_secret_access_key = " .. STATIC_SECRET .. "\naws_session_token = SESSIONSECRET\n")
			local c = client({ HOME = home }, { region = "us-east-1", endpoint = em.url })
			local creds = assert(c:credentials())
			for _, s in ipairs{ tostring(c), tostring(creds) } do
				assert.not_matches(STATIC_SECRET, s, 1, true)
				assert.not_matches("SESSIONSECRET", s, 1, true)
			end
			assert.matches("shared-credentials-file", tostring(creds), 1, true)
			local r, err = converse(c) -- the emulator refuses the unknown session token
			assert.is_nil(r)
			assert.not_matches(STATIC_SECRET, tostring(err), 1, true)
			assert.not_matches("SESSIONSECRET", tostring(err), 1, true)
		end)
	end)
end)
