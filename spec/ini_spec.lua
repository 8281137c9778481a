-- luacheck: no max line length
-- The shared config/credentials INI dialect, case by case and against botocore's own
-- configloader (python3) when it is on the machine.
local helper = require "spec.helper"
local ini = require "bedrock.ini"
local json = require "bedrock.json"

local cases = {
	{ name = "comments, both delimiters, case of keys, values kept verbatim",
		text = "# top comment\n[default]\n; another\nRegion = us-east-1 # not a comment\noutput: json\n  \n[profile dev]\nregion=eu-west-1\n" },
	{ name = "continuation lines and a nested sub-section",
		text = "[default]\ns3 =\n  max_concurrent_requests = 20\n  # a comment inside\n  addressing_style = path\nnote = first\n   second\n\n   third\nregion = us-west-2\n" },
	{ name = "sso-session, services, odd section names",
		text = "[sso-session my sso]\nsso_region = us-east-1\n[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\n" ..
			"[services local]\nbedrock_runtime =\n  endpoint_url = http://127.0.0.1:1\n[profile \"with space\"]\nregion = a\n" ..
			"[profile]\nregion = b\n[profile a b]\nregion = c\n[profilex y]\nregion = d\n[plain]\nregion = e\n[profile 'unclosed]\nregion = f\n" },
	{ name = "[profile default] and [default]", text = "[default]\nregion = one\n[profile default]\nregion = two\n" },
	{ name = "indented first option, blank values, CRLF", text = "[default]\r\n  region = us-east-1\r\n  output = \r\nempty =\r\n" },
	{ name = "[DEFAULT] applies to every section", text = "[DEFAULT]\nregion = d\n[default]\noutput = json\n[profile x]\nregion = x\n[DEFAULT]\nretry_mode = standard\n" },
	{ name = "tabs, spaces in keys and headers", text = "[ default ]\nregion = a\n[default]\naws access = k\n\tcont = inued\nb\t=\tv\n" },
	{ name = "value with '=' and ':'", text = "[default]\ncredential_process = /bin/tool --arg=a:b\nrole_arn: arn:aws:iam::1:role/x\n" },
	{ name = "sections named like the parser's own bookkeeping", text = "[DEFAULT]\n[_order] d\nx = 1\n[_lines]\ny = 2\n[profile _path]\nregion = r\n[default]\noutput = json\n" },
}

local broken = {
	{ name = "option before any section", text = "region = us-east-1\n[default]\n", line = 1 },
	{ name = "a line that is not an option", text = "[default]\nregion = x\njust words\n", line = 3 },
	{ name = "duplicate section", text = "[default]\na = 1\n[default]\nb = 2\n", line = 3 },
	{ name = "duplicate option", text = "[default]\na = 1\nA = 2\n", line = 3 },
	{ name = "sub-section line without '='", text = "[default]\ns3 =\n  nothing here\n", line = 2 },
	{ name = "empty key", text = "[default]\n= value\n", line = 2 },
}

local function tmpfile(text)
	local n = os.tmpname()
	local f = assert(io.open(n, "wb"))
	f:write(text)
	f:close()
	return n
end

local function strip_meta(t)
	local out = {}
	for k, v in pairs(t) do
		if type(v) == "table" then
			local s = {}
			for k2, v2 in pairs(v) do s[k2] = v2 end
			out[k] = s
		else
			out[k] = v
		end
	end
	return out
end

local has_botocore = os.execute("python3 -c 'import botocore.configloader' >/dev/null 2>&1")
has_botocore = has_botocore == true or has_botocore == 0

local function botocore_view(path)
	local py = [[
import json, sys
from botocore import configloader
try:
    raw = configloader.raw_config_parse(sys.argv[1])
except Exception as e:
    print(json.dumps({"error": type(e).__name__}))
    sys.exit(0)
full = configloader.build_profile_map(raw)
print(json.dumps({"raw": raw, "profiles": full["profiles"], "sso_sessions": full["sso_sessions"], "services": full["services"]}))
]]
	local p = assert(io.popen("python3 -c " .. helper.shell_quote(py) .. " " .. helper.shell_quote(path)))
	local out = p:read("*a")
	p:close()
	return assert(json.decode_raw(out))
end

describe("ini", function()
	it("parses botocore's dialect", function()
		local raw = assert(ini.parse(cases[1].text, "f"))
		assert.equal("us-east-1 # not a comment", raw.default.region)
		assert.equal("json", raw.default.output)
		local v = ini.config(raw)
		assert.equal("eu-west-1", v.profiles.dev.region)
		raw = assert(ini.parse(cases[2].text, "f"))
		assert.same({ max_concurrent_requests = "20", addressing_style = "path" }, raw.default.s3)
		assert.equal("first\nsecond\n\nthird", raw.default.note)
		v = ini.config(assert(ini.parse(cases[3].text, "f")))
		assert.is_nil(v.sso_sessions["my sso"]) -- three words: botocore skips the section
		assert.equal("https://x.awsapps.com/start", v.sso_sessions.corp.sso_start_url)
		assert.equal("http://127.0.0.1:1", v.services["local"].bedrock_runtime.endpoint_url)
		assert.equal("a", v.profiles["with space"].region)
		assert.equal("d", v.profiles.y.region)
		assert.is_nil(v.profiles.plain)
		local k = ini.credentials(assert(ini.parse(cases[3].text, "f")))
		assert.equal("e", k.profiles.plain.region)
	end)

	it("keeps sections named _order, _lines or _path as sections (found by fuzzing)", function()
		local raw = assert(ini.parse("[_order] d\nx = 1\n[_lines]\ny = 2\n[profile _path]\nregion = r\n", "f"))
		assert.same({ x = "1" }, raw._order)
		assert.same({ y = "2" }, raw._lines)
		assert.same({ "_order", "_lines", "profile _path" }, ini.meta(raw).order)
		local v = ini.config(raw)
		assert.equal("r", v.profiles._path.region)
		assert.equal("f:6", ini.where(v, "_path", "region"))
		local k = ini.credentials(raw)
		assert.equal("1", k.profiles._order.x)
		assert.equal("2", k.profiles._lines.y)
	end)

	it("reads long runs of blanks in linear time (they were quadratic)", function()
		local core = require "bedrock.core"
		local run = (" "):rep(64 * 1024)
		local t0 = core.monotonic()
		local raw = assert(ini.parse("[default]\nnote = a" .. run .. "b\n  more" .. run .. "\n", "f"))
		assert.equal("a" .. run .. "b\nmore", raw.default.note)
		local _, err = ini.parse("[default]\na" .. run .. "b\n", "f")
		assert.equal("ConfigError", err.code)
		assert.is_true(core.monotonic() - t0 < 2, "took " .. (core.monotonic() - t0) .. " s")
	end)

	it("refuses broken files naming the file and the line", function()
		for _, c in ipairs(broken) do
			local raw, err = ini.parse(c.text, "/x/config")
			assert.is_nil(raw, c.name)
			assert.equal("ConfigError", err.code)
			assert.equal(c.line, err.line, c.name)
			assert.matches("/x/config:" .. c.line .. ":", err.message, 1, true)
		end
	end)

	it("splits like shlex", function()
		assert.same({ "a", "b c", "d'e", "f g" }, ini.shlex_split([[a "b c" "d'e" f\ g]]))
		assert.same({ "$HOME;", "x" }, ini.shlex_split([['$HOME;' x]]))
		assert.is_nil(ini.shlex_split([[a "b]]))
	end)

	local d = has_botocore and it or pending
	d("reads every case exactly as botocore's configloader does", function()
		for _, c in ipairs(cases) do
			local path = tmpfile(c.text)
			local want = botocore_view(path)
			local raw = assert(ini.parse(c.text, path))
			local v = ini.config(raw)
			local got_raw = {}
			for _, name in ipairs(ini.meta(raw).order) do got_raw[name] = strip_meta(raw[name]) end
			assert.same(want.raw, got_raw, c.name)
			assert.same(want.profiles, strip_meta(v.profiles), c.name)
			assert.same(want.sso_sessions, strip_meta(v.sso_sessions), c.name)
			assert.same(want.services, strip_meta(v.services), c.name)
			os.remove(path)
		end
		for _, c in ipairs(broken) do
			local path = tmpfile(c.text)
			local want = botocore_view(path)
			assert.is_string(want.error, c.name)
			assert.is_nil(ini.parse(c.text, path), c.name)
			os.remove(path)
		end
	end)
end)
