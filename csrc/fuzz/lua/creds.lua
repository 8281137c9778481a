-- Fuzz entry: the credential providers' answers from outside the process, fed to the
-- real providers through their public get(ctx) with a fake ctx.http (no network): the
-- credential_process output (P.run replaced: no process per input), the container
-- endpoint's JSON, IMDS's role-name list and credentials, SSO's GetRoleCredentials and
-- CreateToken answers, the sign-in service's CreateOAuth2Token answer, and the SSO and
-- login token cache files (written to a private temporary directory).
--
-- Input: a mode byte, then the bytes. mode % 8 picks the parser; (mode / 8) % 4 the HTTP
-- status of the fuzzed answer (200, 400, 500, 404) where there is one.
-- Contract: get() returns credentials (key pair non-empty strings, finite expiration,
-- tostring without the secret), nil (no credentials from this source: only where the
-- provider documents it) or nil and a CredentialsError / ConfigError object; it never
-- raises.
local F = require "fuzzlib"
local core = require "bedrock.core"
local json = require "bedrock.json"
local Process = require "bedrock.credentials.process"
local Container = require "bedrock.credentials.container"
local Imds = require "bedrock.credentials.imds"
local Sso = require "bedrock.credentials.sso"
local Login = require "bedrock.credentials.login"

local CODES = { CredentialsError = true, ConfigError = true }
local STATUS = { 200, 400, 500, 404 }
local FAR = "2099-01-01T00:00:00Z"
local NOW = 1767225600 -- 2026-01-01

-- the caches live in memory when /dev/shm is there (the providers fsync what they write)
local dir = os.tmpname()
os.remove(dir)
local shm = io.open("/dev/shm/.", "r")
if shm then shm:close(); dir = "/dev/shm/" .. dir:match("[^/]+$") end
assert(core.mkdir_p(dir .. "/sso") and core.mkdir_p(dir .. "/login"), "cannot make " .. dir)
-- removed when the harness closes the Lua state at exit
local cleanup = setmetatable({}, { __gc = function()
	for _, sub in ipairs{ "/sso", "/login" } do
		local p = io.popen("ls -A '" .. dir .. sub .. "' 2>/dev/null")
		for f in p:lines() do os.remove(dir .. sub .. "/" .. f) end
		p:close()
		os.remove(dir .. sub)
	end
	os.remove(dir)
end })

local function sh(cmd)
	local p = io.popen(cmd)
	local s = p:read("*a")
	p:close()
	return s
end
local pem = sh("openssl ecparam -genkey -name prime256v1 -noout 2>/dev/null")
assert(pem:find("PRIVATE KEY", 1, true), "openssl did not make a key")

local function write(path, s)
	local f = assert(io.open(path, "wb"))
	f:write(s)
	f:close()
end

local START = "https://corp.awsapps.com/start"
local sso_file = Sso.cache_file(dir .. "/sso", { sso_session = "corp" })
local login_file = Login.cache_file(dir .. "/login", "sess")
local sso_token = function(exp)
	return json.encode{ startUrl = START, region = "us-east-1", accessToken = "tok", expiresAt = exp,
		refreshToken = "r", clientId = "c", clientSecret = "s", registrationExpiresAt = FAR }
end
local login_token = function(exp)
	return json.encode{ accessToken = { accessKeyId = "AKID", secretAccessKey = "secret-value",
		sessionToken = "st", accountId = "1", expiresAt = exp }, refreshToken = "r", clientId = "c",
		dpopKey = pem, tokenType = "aws_sigv4" }
end

local env = {
	AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1/creds",
	AWS_CONTAINER_AUTHORIZATION_TOKEN = "auth",
	AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:1",
	AWS_ENDPOINT_URL_SSO = "http://127.0.0.1:2",
	AWS_ENDPOINT_URL_SSO_OIDC = "http://127.0.0.1:3",
	AWS_ENDPOINT_URL_SIGNIN = "http://127.0.0.1:4",
}
local function ctx(http, profile)
	return {
		getenv = function(k) return env[k] end, now = function() return NOW end, http = http,
		profile_name = "p", profile = profile or {}, region = "us-east-1", home = dir,
		sleep = function() end,
		files = { config = { profiles = {}, sso_sessions = { corp = { sso_start_url = START,
			sso_region = "us-east-1" } }, services = {} } },
	}
end

local function answer(status, body) return { status = status, headers = {}, body = body } end
local VALID = '{"AccessKeyId":"AKID","SecretAccessKey":"secret-value","Token":"t","Expiration":"' .. FAR .. '"}'

local function outcome(what, c, err)
	if c ~= nil then return F.creds(c, what) end
	if err ~= nil then F.error_object(err, CODES, what) end
end

local sso_profile = { sso_session = "corp", sso_account_id = "111122223333", sso_role_name = "Admin" }
local login_profile = { login_session = "sess" }

local cases = {
	-- 0: credential_process output (exit status from the high bits)
	function(status_i, body)
		local run = Process.run
		Process.run = function() return body, ({ 0, 0, 1, 124 })[status_i], "err" end
		local ok, c, err = pcall(Process.get, Process.new(), ctx(nil, { credential_process = "x" }))
		Process.run = run
		if not ok then error(c, 0) end
		F.check(c ~= nil or err ~= nil, "process: nil without an error")
		outcome("process", c, err)
	end,
	-- 1: the container endpoint
	function(status_i, body)
		local c, err = Container.new{ attempts = 2 }:get(ctx(function()
			return answer(STATUS[status_i], body)
		end))
		F.check(c ~= nil or err ~= nil, "container: nil without an error")
		outcome("container", c, err)
	end,
	-- 2: IMDS credentials document
	function(status_i, body)
		local c, err = Imds.new():get(ctx(function(req)
			if req.method == "PUT" then return answer(200, "token") end
			if req.url:sub(-1) == "/" then return answer(200, "role\n") end
			return answer(STATUS[status_i], body)
		end))
		outcome("imds", c, err)
	end,
	-- 3: IMDS role-name list (and the token)
	function(status_i, body)
		local c, err = Imds.new():get(ctx(function(req)
			if req.method == "PUT" then return answer(status_i == 2 and 200 or 405, "tok" .. body:sub(1, 8)) end
			if req.url:sub(-1) == "/" then return answer(STATUS[status_i], body) end
			return answer(200, VALID)
		end))
		outcome("imds", c, err)
	end,
	-- 4: SSO GetRoleCredentials
	function(status_i, body)
		write(sso_file, sso_token(FAR))
		local c, err = Sso.new{ cache_dir = dir .. "/sso" }:get(ctx(function()
			return answer(STATUS[status_i], body)
		end, sso_profile))
		F.check(c ~= nil or err ~= nil, "sso: nil without an error")
		outcome("sso", c, err)
	end,
	-- 5: SSO-OIDC CreateToken (refresh of a token about to expire)
	function(status_i, body)
		write(sso_file, sso_token("2026-01-01T00:05:00Z"))
		local c, err = Sso.new{ cache_dir = dir .. "/sso" }:get(ctx(function(req)
			if req.url:find("/token", 1, true) then return answer(STATUS[status_i], body) end
			return answer(200, '{"roleCredentials":{"accessKeyId":"A","secretAccessKey":"secret-value",' ..
				'"sessionToken":"t","expiration":4070908800000}}')
		end, sso_profile))
		F.check(c ~= nil or err ~= nil, "sso refresh: nil without an error")
		outcome("sso refresh", c, err)
	end,
	-- 6: sign-in CreateOAuth2Token (refresh of a login session about to expire)
	function(status_i, body)
		write(login_file, login_token("2026-01-01T00:01:00Z"))
		env.AWS_LOGIN_CACHE_DIRECTORY = dir .. "/login"
		local c, err = Login.new():get(ctx(function() return answer(STATUS[status_i], body) end, login_profile))
		F.check(c ~= nil or err ~= nil, "login: nil without an error")
		outcome("login", c, err)
	end,
	-- 7: the token cache files themselves (SSO for even statuses, login for odd)
	function(status_i, body)
		local http = function(req)
			if req.url:find("/federation/", 1, true) then
				return answer(200, '{"roleCredentials":{"accessKeyId":"A","secretAccessKey":"secret-value",' ..
					'"sessionToken":"t","expiration":4070908800000}}')
			end
			return answer(400, '{"error":"invalid_grant"}')
		end
		local c, err
		if status_i % 2 == 1 then
			write(sso_file, body)
			c, err = Sso.new{ cache_dir = dir .. "/sso" }:get(ctx(http, sso_profile))
		else
			write(login_file, body)
			env.AWS_LOGIN_CACHE_DIRECTORY = dir .. "/login"
			c, err = Login.new():get(ctx(http, login_profile))
		end
		outcome("cache", c, err)
	end,
}

return function(data)
	local _ = cleanup -- kept alive as long as the entry
	local mode, body = F.mode(data)
	cases[mode % 8 + 1](math.floor(mode / 8) % 4 + 1, body)
end
