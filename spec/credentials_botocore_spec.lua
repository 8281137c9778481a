-- luacheck: no max line length
-- Differential: for the same files and environment, the client resolves the same access
-- key, session token, region and provider as botocore (python3, when installed). The
-- emulator issues keys derived from what was asked (--cred-seed), so keys that went
-- through STS, the container endpoint or IMDS compare exactly too.
local helper = require "spec.helper"
local bedrock = require "bedrock"
local json = require "bedrock.json"

local q = helper.shell_quote
local STATIC_ID, STATIC_SECRET = "AKIDSTATICEXAMPLE002", "staticSecretKeyExample0000000000000000002"

local ok_py = os.execute("python3 -c 'import botocore.session' >/dev/null 2>&1")
ok_py = ok_py == true or ok_py == 0

local PY = [[
import json, os, sys
import botocore.session
prof = os.environ.pop("DIFF_EXPLICIT_PROFILE", None)
out = {}
try:
    s = botocore.session.Session(profile=prof)
    out["region"] = s.get_config_variable("region")
    c = s.get_credentials()
    if c is not None:
        f = c.get_frozen_credentials()
        out.update(access_key=f.access_key, token=f.token, method=c.method)
except Exception as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
]]

local function mkdir(p) assert(os.execute("mkdir -p " .. q(p))) end
local function write(path, text, mode)
	mkdir(path:match("^(.*)/[^/]*$"))
	local f = assert(io.open(path, "wb"))
	f:write(text)
	f:close()
	if mode then os.execute("chmod " .. mode .. " " .. q(path)) end
end

local function botocore(env, explicit)
	local parts = { "env -i", "PATH=" .. q(os.getenv("PATH") or "/usr/bin:/bin") }
	for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. q(v) end
	if explicit then parts[#parts + 1] = "DIFF_EXPLICIT_PROFILE=" .. q(explicit) end
	parts[#parts + 1] = "python3 -c " .. q(PY)
	local p = assert(io.popen(table.concat(parts, " ") .. " 2>/dev/null"))
	local out = p:read("*a")
	p:close()
	local t = assert(json.decode_raw(out), out)
	for k, v in pairs(t) do if v == json.null then t[k] = nil end end
	return t
end

local function ours(env, explicit)
	local c = assert(bedrock.client{ getenv = function(k) return env[k] end, profile = explicit })
	local creds, err = c:credentials()
	local out = { region = c.config.region }
	if creds then
		out.access_key, out.token, out.method = creds.access_key_id, creds.session_token, creds.source
	elseif err and not err.message:match("^no credentials found") then
		out.error = tostring(err)
	end
	c:close()
	return out
end

local d = ok_py and describe or pending
d("credentials and region, differential against botocore", function()
	local em, home
	setup(function()
		em = helper.emulator({ "--key", STATIC_ID .. ":" .. STATIC_SECRET, "--cred-seed", "differential",
			"--container-token", "ctok", "--web-identity-token", "wtok" })
		home = os.tmpname()
		os.remove(home)
		mkdir(home)
	end)
	teardown(function()
		if em then em.stop() end
		if home then os.execute("rm -rf " .. q(home)) end
	end)

	local base_keys = "aws_access_key_id = " .. STATIC_ID .. "\naws_secret_access_key = " .. STATIC_SECRET .. "\n"

	local cases = {
		{ name = "environment keys and AWS_DEFAULT_REGION",
			env = { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "s", AWS_SESSION_TOKEN = "tok", AWS_DEFAULT_REGION = "eu-north-1" } },
		{ name = "[default] in both files",
			config = "[default]\nregion = us-west-2\n", credentials = "[default]\n" .. base_keys },
		{ name = "AWS_PROFILE; a named profile does not inherit [default]'s region",
			config = "[default]\nregion = us-west-2\n[profile dev]\noutput = json\n", credentials = "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = x\n",
			env = { AWS_PROFILE = "dev" } },
		{ name = "AWS_DEFAULT_PROFILE wins over AWS_PROFILE",
			config = "[profile a]\nregion = eu-west-1\n[profile b]\nregion = eu-west-2\n",
			credentials = "[a]\naws_access_key_id = AKIDA\naws_secret_access_key = x\n[b]\naws_access_key_id = AKIDB\naws_secret_access_key = x\n",
			env = { AWS_PROFILE = "a", AWS_DEFAULT_PROFILE = "b" } },
		{ name = "explicit profile turns the environment keys off",
			credentials = "[p]\naws_access_key_id = AKIDP\naws_secret_access_key = x\n", config = "[profile p]\nregion = ca-central-1\n",
			env = { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "s" }, profile = "p" },
		{ name = "AWS_PROFILE leaves the environment keys on",
			credentials = "[p]\naws_access_key_id = AKIDP\naws_secret_access_key = x\n", config = "[profile p]\nregion = ca-central-1\n",
			env = { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "s", AWS_PROFILE = "p" } },
		{ name = "credentials file over config file; region from the credentials file",
			config = "[default]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = c\nregion = us-east-2\n",
			credentials = "[default]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = k\naws_session_token = st\nregion = ap-south-1\n" },
		{ name = "static keys only in the config file",
			config = "[profile c]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = c\naws_session_token = ct\nregion = us-east-2\n",
			env = { AWS_PROFILE = "c" } },
		{ name = "[profile default] after [default]",
			config = "[default]\nregion = one-region-1\n[profile default]\nregion = two-region-2\n", credentials = "[default]\n" .. base_keys },
		{ name = "AWS_DEFAULT_REGION over the profile's region",
			config = "[default]\nregion = us-west-2\n", credentials = "[default]\n" .. base_keys, env = { AWS_DEFAULT_REGION = "eu-south-1" } },
		{ name = "role chain of three profiles through STS",
			config = "[profile a]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/A\nsource_profile = b\nrole_session_name = sa\n" ..
				"[profile b]\nrole_arn = arn:aws:iam::123456789012:role/B\nsource_profile = base\nrole_session_name = sb\nexternal_id = ext-1\nduration_seconds = 1800\n",
			credentials = "[base]\n" .. base_keys, env = { AWS_PROFILE = "a", STS = true } },
		{ name = "a profile that is its own source_profile with static keys",
			config = "[profile self]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/S\nsource_profile = self\nrole_session_name = ss\n" .. base_keys,
			env = { AWS_PROFILE = "self", STS = true } },
		{ name = "credential_source = Environment",
			config = "[profile e]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/E\ncredential_source = Environment\nrole_session_name = se\n",
			env = { AWS_ACCESS_KEY_ID = STATIC_ID, AWS_SECRET_ACCESS_KEY = STATIC_SECRET, STS = true }, profile = "e" },
		{ name = "the STS endpoint from a services section",
			config = "[profile a]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/A\nsource_profile = base\nrole_session_name = sv\nservices = loc\n" ..
				"[services loc]\nsts =\n  endpoint_url = EMULATOR\n",
			credentials = "[base]\n" .. base_keys, env = { AWS_PROFILE = "a" } },
		{ name = "web identity from the environment wins over [default]'s static keys",
			files = { token = "wtok" }, credentials = "[default]\n" .. base_keys, config = "[default]\nregion = us-west-2\n",
			env = { AWS_WEB_IDENTITY_TOKEN_FILE = "HOME/token", AWS_ROLE_ARN = "arn:aws:iam::123456789012:role/W", AWS_ROLE_SESSION_NAME = "pod", STS = true } },
		{ name = "web identity from the profile",
			files = { token = "wtok" },
			config = "[profile w]\nregion = eu-west-3\nrole_arn = arn:aws:iam::123456789012:role/W\nweb_identity_token_file = HOME/token\nrole_session_name = wp\n",
			env = { AWS_PROFILE = "w", STS = true } },
		{ name = "an explicit profile also turns the environment's web identity off",
			files = { token = "wtok" }, credentials = "[p]\naws_access_key_id = AKIDP\naws_secret_access_key = x\n",
			env = { AWS_WEB_IDENTITY_TOKEN_FILE = "HOME/token", AWS_ROLE_ARN = "arn:aws:iam::123456789012:role/W", AWS_ROLE_SESSION_NAME = "pod", STS = true },
			profile = "p" },
		{ name = "partial static keys in the profile fall through to the config file",
			credentials = "[default]\nregion = us-east-1\n", config = "[default]\naws_access_key_id = AKIDCFG\naws_secret_access_key = c\n" },
		{ name = "credential_process with quoted arguments",
			files = { ["bin/cp tool"] = { '#!/bin/sh\nprintf \'{"Version":1,"AccessKeyId":"AKIDPROC%s","SecretAccessKey":"s","SessionToken":"%s"}\' "$1" "$2"\n', "755" } },
			config = "[default]\nregion = us-east-1\ncredential_process = \"HOME/bin/cp tool\" X 'tok en'\n" },
		{ name = "container endpoint (full URI and token)",
			env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = "EMULATOR/container-credentials", AWS_CONTAINER_AUTHORIZATION_TOKEN = "ctok", AWS_DEFAULT_REGION = "us-east-1" } },
		{ name = "instance metadata (IMDSv2)",
			env = { AWS_EC2_METADATA_SERVICE_ENDPOINT = "EMULATOR/", AWS_EC2_METADATA_DISABLED = "false", AWS_DEFAULT_REGION = "us-east-1" } },
		{ name = "nothing configured", env = {} },
	}

	for i, c in ipairs(cases) do
		it(c.name, function()
			local h = home .. "/case" .. i
			mkdir(h .. "/.aws")
			local function fill(s) return (s:gsub("HOME", h):gsub("EMULATOR", em.url)) end
			if c.config then write(h .. "/.aws/config", fill(c.config)) end
			if c.credentials then write(h .. "/.aws/credentials", fill(c.credentials)) end
			for name, v in pairs(c.files or {}) do
				if type(v) == "table" then write(h .. "/" .. name, v[1], v[2]) else write(h .. "/" .. name, v) end
			end
			local env = { HOME = h, AWS_EC2_METADATA_DISABLED = "true" }
			for k, v in pairs(c.env or {}) do
				if k == "STS" then env.AWS_ENDPOINT_URL_STS = em.url else env[k] = fill(v) end
			end
			local want = botocore(env, c.profile)
			local got = ours(env, c.profile)
			assert.is_nil(want.error, want.error)
			assert.is_nil(got.error, got.error)
			assert.same(want, got)
		end)
	end
end)
