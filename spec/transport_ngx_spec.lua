-- The parts of the nginx cosocket transport that need no nginx: URL and proxy parsing,
-- no_proxy matching, option checks, and the clear error outside nginx. The transport
-- itself is exercised inside a real nginx by spec/ngx_spec.lua.
local helper = require "spec.helper" -- luacheck: ignore 211
local T = require "bedrock.transport.ngx"
local errors = require "bedrock.errors"

describe("bedrock.transport.ngx outside nginx", function()
	it("parses URLs: default ports, IPv6, query-only targets", function()
		local u = T.parse_url("https://Bedrock-Runtime.us-east-1.amazonaws.com/model/x/converse")
		assert.same({ scheme = "https", host = "bedrock-runtime.us-east-1.amazonaws.com", port = 443,
			target = "/model/x/converse", authority = "Bedrock-Runtime.us-east-1.amazonaws.com" }, u)
		u = T.parse_url("http://127.0.0.1:8080?x=1#frag")
		assert.same({ "http", "127.0.0.1", 8080, "/?x=1" }, { u.scheme, u.host, u.port, u.target })
		u = T.parse_url("http://[::1]:9/a")
		assert.same({ "::1", 9, "[::1]:9" }, { u.host, u.port, u.authority })
		for _, bad in ipairs{ "ftp://x/", "http://", "http://a b/", "http://u:p@host/", "http://h:99999/", 42 } do
			local v, msg = T.parse_url(bad)
			assert.is_nil(v, tostring(bad))
			assert.is_string(msg)
		end
	end)

	it("matches no_proxy as libcurl does", function()
		assert.is_true(T.no_proxy_match("*", "anything"))
		assert.is_true(T.no_proxy_match("example.com", "example.com"))
		assert.is_true(T.no_proxy_match("example.com", "api.example.com"))
		assert.is_true(T.no_proxy_match(".example.com", "api.example.com"))
		assert.is_false(T.no_proxy_match("example.com", "badexample.com"))
		assert.is_true(T.no_proxy_match("a.b, 127.0.0.1 ,c", "127.0.0.1"))
		assert.is_true(T.no_proxy_match("[::1]", "::1"))
		assert.is_false(T.no_proxy_match("", "x"))
		assert.is_false(T.no_proxy_match(nil, "x"))
	end)

	it("reads proxies from the environment as libcurl does", function()
		local env = { https_proxy = "http://u%3Ax:pw@proxy.local:3128", http_proxy = "proxy2:8080",
			HTTP_PROXY = "http://ignored:1", no_proxy = "internal" }
		local t = T.new{ getenv = function(k) return env[k] end }
		assert.same({ "proxy.local", 3128, "proxy.local:3128" },
			{ t.proxies.https.host, t.proxies.https.port, t.proxies.https.name })
		assert.equal("Basic " .. require("bedrock.core").b64encode("u:x:pw"), t.proxies.https.auth)
		assert.same({ "proxy2", 8080 }, { t.proxies.http.host, t.proxies.http.port })
		assert.is_nil(t:_proxy_for(T.parse_url("https://internal/")))
		assert.equal(t.proxies.https, t:_proxy_for(T.parse_url("https://bedrock/")))
		-- upper-case HTTP_PROXY alone is not used (as in curl)
		env = { HTTP_PROXY = "http://ignored:1", ALL_PROXY = "http://all:2" }
		t = T.new{ getenv = function(k) return env[k] end }
		assert.equal("all", t.proxies.http.host)
		assert.equal("all", t.proxies.https.host)
		t = T.new{ proxy = false, getenv = function() return "http://x:1" end }
		assert.is_nil(t:_proxy_for(T.parse_url("https://bedrock/")))
	end)

	it("refuses options it cannot honour, naming the field", function()
		local function refused(o, field, pat)
			local ok, e = pcall(T.new, o)
			assert.is_false(ok)
			assert.is_true(errors.is(e, "ConfigError"), tostring(e))
			assert.equal(field, e.field)
			if pat then assert.matches(pat, e.message) end
		end
		refused({ http2 = true }, "http2", "HTTP/2")
		refused({ cainfo = "/etc/ca.pem" }, "cainfo", "lua_ssl_trusted_certificate")
		refused({ capath = "/etc/ssl" }, "capath")
		refused({ verify = "yes" }, "verify")
		refused({ pool_size = 0 }, "pool_size")
		refused({ timeouts = { idle = -1 } }, "timeouts.idle")
		refused({ timeouts = { soon = 1 } }, "timeouts.soon")
		refused({ proxy = { https = "socks5://p:1" } }, "proxy.https", "only http://")
		refused({ proxy = "http://p:1" }, "proxy")
		assert.has_error(function() T.new("x") end)
	end)

	it("a call outside nginx answers NotSupported", function()
		assert.is_false(T.available())
		local t = T.new{ proxy = false }
		local res, err = t:request{ url = "http://127.0.0.1:1/" }
		assert.is_nil(res)
		assert.is_true(errors.is(err, "NotSupported"))
		assert.matches("inside nginx", err.message)
		local s
		s, err = t:open{ url = "http://127.0.0.1:1/" }
		assert.is_nil(s)
		assert.equal("NotSupported", err.code)
	end)

	it("a bedrock.client outside nginx keeps libcurl; transport = \"ngx\" there fails clearly", function()
		local bedrock = require "bedrock"
		local o = { region = "us-east-1", endpoint = "http://127.0.0.1:1",
			credentials = { access_key_id = "A", secret_access_key = "S" }, getenv = function() return nil end,
			retry = { max_attempts = 1 } }
		o.transport = "ngx"
		local c = assert(bedrock.client(o))
		local res, err = c:converse{ modelId = "m", messages = { { role = "user", content = { { text = "x" } } } } }
		assert.is_nil(res)
		assert.equal("NotSupported", err.code)
		o.transport = "gopher"
		local c2, e2 = bedrock.client(o)
		assert.is_nil(c2)
		assert.equal("ConfigError", e2.code)
		assert.equal("transport", e2.field)
		o.transport = nil
		c = assert(bedrock.client(o))
		assert(c:_transport())
		assert.equal("bedrock.transport.curl", getmetatable(c.transport).__name)
	end)
end)
