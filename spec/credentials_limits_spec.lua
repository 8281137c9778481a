-- Every size a credential provider reads from outside the process is bounded: hostile
-- endpoints on loopback (spec/creds_hostile_server.py) that answer for ever, announce
-- 10 GB, never close an XML element or a JSON string, or list roles without end; and a
-- credential_process that prints for ever. Each ends in a CredentialsError that says
-- what was too large, quickly, without the process growing by the amount sent. Also the
-- values the fuzz targets found: numbers out of range in SSO and sign-in answers.
local helper = require "spec.helper"
local F = require "spec.cred_fixture"
local core = require "bedrock.core"
local json = require "bedrock.json"
local errors = require "bedrock.errors"
local credentials = require "bedrock.credentials"
local Container = require "bedrock.credentials.container"
local Imds = require "bedrock.credentials.imds"
local Process = require "bedrock.credentials.process"
local Sso = require "bedrock.credentials.sso"
local Login = require "bedrock.credentials.login"
local sts = require "bedrock.credentials.sts"

local FAR = "2099-01-01T00:00:00Z"

local function serve(mode)
	local cmd = "sh -c " .. helper.shell_quote("echo $$; exec python3 spec/creds_hostile_server.py --mode " .. mode)
	local p = assert(io.popen(cmd, "r"))
	local pid, port = p:read("*l"), p:read("*l")
	assert(tonumber(port), "the hostile server did not start")
	local srv = { url = "http://127.0.0.1:" .. port }
	function srv.stop()
		os.execute("kill " .. pid .. " 2>/dev/null")
		p:close()
	end
	return srv
end

-- runs fn(srv) against a server in `mode`; returns what fn returned, checking the time
-- taken and the growth of this process
local function against(mode, fn)
	local srv = serve(mode)
	collectgarbage()
	local rss0 = helper.rss_kib()
	local t0 = core.monotonic()
	local ok, a, b = pcall(fn, srv)
	local took = core.monotonic() - t0
	srv.stop()
	assert(ok, a)
	assert.is_true(took < 20, mode .. " took " .. took .. " s")
	collectgarbage()
	local rss1 = helper.rss_kib()
	if rss0 and rss1 then
		assert.is_true(rss1 - rss0 < 64 * 1024, mode .. ": grew by " .. (rss1 - rss0) .. " KiB")
	end
	return a, b
end

local function is_too_large(err, provider)
	assert.is_nil(err == nil and "no error" or nil)
	assert.is_true(errors.is(err))
	assert.equal("CredentialsError", err.code)
	if provider then assert.matches(provider, err.message, 1, true) end
	assert.matches("larger than max_body (1048576 bytes)", err.message, 1, true)
end

describe("credential limits", function()
	it("are one constant for every HTTP answer (1 MiB)", function()
		assert.equal(1024 * 1024, credentials.MAX_ANSWER)
		assert.equal(1024 * 1024, Process.MAX_OUTPUT)
	end)

	it("hold for a transport that does not enforce max_body itself", function()
		-- the nginx transport reads whole bodies its own way; http_from checks what it got
		local seen
		local t = { request = function(_, req)
			seen = req
			return { status = 200, headers = {}, body = ("a"):rep(credentials.MAX_ANSWER + 1) }
		end }
		local res, err = credentials.http_from(function() return t end){ method = "GET", url = "http://x/" }
		assert.is_nil(res)
		assert.equal("ResponseTooLarge", err.code)
		assert.equal(credentials.MAX_ANSWER, seen.max_body)
		assert.equal(credentials.MAX_ANSWER, seen.max_error_body)
	end)

	it("stop a container endpoint that answers for ever, without retrying it", function()
		local calls = 0
		local _, err = against("endless", function(srv)
			local ctx = F.ctx{ env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = srv.url .. "/creds" } }
			local http = ctx.http
			ctx.http = function(req) calls = calls + 1 return http(req) end
			ctx.sleep = function() end
			return Container.new():get(ctx)
		end)
		is_too_large(err, "container-role")
		assert.equal(1, calls)
	end)

	it("refuse a container answer that announces 10 GB before reading it", function()
		local _, err = against("announced", function(srv)
			local ctx = F.ctx{ env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = srv.url .. "/creds" } }
			return Container.new{ sleep = function() end }:get(ctx)
		end)
		assert.matches("10737418240 bytes (Content-Length) is larger than max_body", err.message, 1, true)
	end)

	it("bound an error answer that never ends", function()
		local _, err = against("error-endless", function(srv)
			local ctx = F.ctx{ env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = srv.url .. "/creds" } }
			return Container.new{ sleep = function() end }:get(ctx)
		end)
		assert.equal("CredentialsError", err.code)
		assert.matches("larger than max_error_body (1048576 bytes)", err.message, 1, true)
	end)

	it("stop an IMDS role list that never ends", function()
		local _, err = against("roles", function(srv)
			return Imds.new():get(F.ctx{ env = { AWS_EC2_METADATA_SERVICE_ENDPOINT = srv.url } })
		end)
		is_too_large(err, "iam-role")
	end)

	it("read a 1 MB IMDS role line in linear time and refuse it as a role name", function()
		local _, err = against("roles-blanks", function(srv)
			return Imds.new():get(F.ctx{ env = { AWS_EC2_METADATA_SERVICE_ENDPOINT = srv.url } })
		end)
		assert.equal("CredentialsError", err.code)
		assert.matches("not an IAM role name (1000002 bytes)", err.message, 1, true)
		assert.is_true(#err.message < 200)
	end)

	it("stop IMDS credentials that never end", function()
		local _, err = against("endless", function(srv)
			return Imds.new():get(F.ctx{ env = { AWS_EC2_METADATA_SERVICE_ENDPOINT = srv.url } })
		end)
		is_too_large(err, "iam-role")
	end)

	it("stop an STS answer whose element never ends", function()
		local c, msg = against("xml", function(srv)
			local ctx = F.ctx{ env = { AWS_ENDPOINT_URL_STS = srv.url } }
			return sts.call(ctx, "AssumeRoleWithWebIdentity", { RoleArn = "arn:aws:iam::1:role/r",
				RoleSessionName = "s", WebIdentityToken = "t" }, nil, "us-east-1")
		end)
		assert.is_nil(c)
		assert.matches("larger than max_body (1048576 bytes)", msg, 1, true)
		-- the XML extraction has its own bound, for answers that come another way
		local _, e = sts.xml_fields("<Credentials>" .. ("x"):rep(1024 * 1024) .. "</Credentials>",
			"Credentials", { "AccessKeyId" })
		assert.matches("larger than 1 MiB", e, 1, true)
	end)

	it("stop an SSO portal answer whose string never ends", function()
		local home = F.tmpdir()
		local _, err = against("json-string", function(srv)
			F.write(home .. "/.aws/sso/cache/" .. core.sha1_hex("https://x.awsapps.com/start") .. ".json",
				json.encode{ accessToken = "tok", expiresAt = FAR })
			return Sso.new():get(F.ctx{ home = home, env = { AWS_ENDPOINT_URL_SSO = srv.url },
				profile = { sso_start_url = "https://x.awsapps.com/start", sso_region = "us-east-1",
					sso_account_id = "1", sso_role_name = "r" } })
		end)
		F.rmdir(home)
		is_too_large(err, "sso")
	end)

	it("stop a credential_process that prints for ever", function()
		local t0 = core.monotonic()
		local c, err = Process.new{ timeout = 30 }:get(F.ctx{ profile_name = "p",
			profile = { credential_process = "yes" } })
		assert.is_nil(c)
		assert.equal("CredentialsError", err.code)
		assert.matches("credential_process of profile p printed more than 1048576 bytes", err.message, 1, true)
		assert.is_true(core.monotonic() - t0 < 15)
	end)

	it("keep 4 KiB of a credential_process's standard error, and let it finish", function()
		local script = "head -c 3000000 /dev/zero | tr '\\0' e >&2; " ..
			"echo '{\"Version\":1,\"AccessKeyId\":\"AKID\",\"SecretAccessKey\":\"secret-value\"}'"
		local out, code, stderr = Process.run({ "sh", "-c", script }, 30)
		assert.equal(0, code)
		assert.equal(4096, #stderr)
		assert.matches('"AccessKeyId":"AKID"', out, 1, true)
		local c = assert(Process.new{ timeout = 30 }:get(F.ctx{ profile_name = "p",
			profile = { credential_process = "sh -c " .. helper.shell_quote(script) } }))
		assert.equal("AKID", c.access_key_id)
	end)

	describe("numbers in answers (found by fuzzing)", function()
		local em, home
		setup(function()
			em = helper.emulator({ "--sso-refresh-token", "R", "--login-refresh-token", "R" })
		end)
		teardown(function() if em then em.stop() end end)
		before_each(function() home = F.tmpdir() end)
		after_each(function() F.rmdir(home) end)

		-- a loopback server that answers `body` with status 200 to every request
		local function answering(body)
			local head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body ..
				"\r\nConnection: close\r\n\r\n" .. body
			return helper.hostile{ head = head }
		end

		it("refuse an SSO-OIDC expiresIn of 1e400 instead of raising", function()
			local srv = answering('{"accessToken":"new","expiresIn":1e400}')
			local now = os.time()
			F.write(home .. "/.aws/sso/cache/" .. core.sha1_hex("corp") .. ".json", json.encode{
				accessToken = "tok", expiresAt = os.date("!%Y-%m-%dT%H:%M:%SZ", now + 60), refreshToken = "R",
				clientId = "c", clientSecret = "s", registrationExpiresAt = FAR })
			local cfg = { profiles = {}, services = {}, sso_sessions = { corp = {
				sso_start_url = "https://corp.awsapps.com/start", sso_region = "us-east-1" } } }
			local ok, c, err = pcall(Sso.new().get, Sso.new(), F.ctx{ home = home, config = cfg,
				env = { AWS_ENDPOINT_URL_SSO_OIDC = srv.url, AWS_ENDPOINT_URL_SSO = em.url },
				profile = { sso_session = "corp", sso_account_id = "1", sso_role_name = "r" } })
			srv.stop()
			assert.is_true(ok, tostring(c))
			-- the refresh fails cleanly; the old token is still used while it lasts
			assert.is_true(c ~= nil or errors.is(err))
		end)

		it("refuse an SSO expiration of 1e400 (an infinite lifetime)", function()
			local srv = answering('{"roleCredentials":{"accessKeyId":"A","secretAccessKey":"s",' ..
				'"sessionToken":"t","expiration":1e400}}')
			F.write(home .. "/.aws/sso/cache/" .. core.sha1_hex("https://x.awsapps.com/start") .. ".json",
				json.encode{ accessToken = "tok", expiresAt = FAR })
			local c, err = Sso.new():get(F.ctx{ home = home, env = { AWS_ENDPOINT_URL_SSO = srv.url },
				profile = { sso_start_url = "https://x.awsapps.com/start", sso_region = "us-east-1",
					sso_account_id = "1", sso_role_name = "r" } })
			srv.stop()
			assert.is_nil(c)
			assert.matches("without roleCredentials", err.message, 1, true)
		end)

		it("refuse a sign-in expiresIn of 1e300 instead of raising", function()
			local pem = io.popen("openssl ecparam -genkey -name prime256v1 -noout 2>/dev/null"):read("*a")
			local srv = answering('{"accessToken":{"accessKeyId":"A","secretAccessKey":"s","sessionToken":"t"},' ..
				'"expiresIn":1e300,"refreshToken":"n","tokenType":"aws_sigv4"}')
			local dir = home .. "/login"
			F.write(Login.cache_file(dir, "sess"), json.encode{ accessToken = { accessKeyId = "A",
				secretAccessKey = "s", sessionToken = "t", accountId = "1", expiresAt = "2020-01-01T00:00:00Z" },
				refreshToken = "R", clientId = "c", dpopKey = pem })
			local ok, c, err = pcall(Login.get, Login.new{ cache_dir = dir }, F.ctx{ home = home,
				env = { AWS_ENDPOINT_URL_SIGNIN = srv.url, AWS_REGION = "us-east-1" },
				profile = { login_session = "sess" } })
			srv.stop()
			assert.is_true(ok, tostring(c))
			assert.is_nil(c)
			assert.matches("invalid answer from the sign-in service", err.message, 1, true)
		end)
	end)
end)
