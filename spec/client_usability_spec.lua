-- What a newcomer meets first, against the real emulator where traffic is involved: the
-- headers a call really sends, mistakes in how the client is called, and error objects
-- used the way Lua code uses strings.
local helper = require "spec.helper"
local bedrock = require "bedrock"
local json = bedrock.json

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
local KEY, SECRET = "AKIDUSABILITY", "usability-secret"

local have_emulator = helper.exists(helper.emulator_bin)
local have_transport = pcall(require, "bedrock.transport.curl")

local function user(text)
	return { { role = "user", content = { { text = text } } } }
end

local anthropic_body = { anthropic_version = "bedrock-2023-05-31", max_tokens = 16,
	messages = { { role = "user", content = "Hi" } } }

if not (have_emulator and have_transport) then
	describe("client usability against the emulator", function()
		pending("needs build/bin/bedrock-emulator and bedrock.transport.curl (make all)")
	end)
	return
end

local T = require "bedrock.transport.curl"

describe("client usability against the emulator", function()
	local em, admin

	local function client(extra)
		local o = { region = "us-east-1", endpoint = em.url,
			credentials = { access_key_id = KEY, secret_access_key = SECRET },
			getenv = function() return nil end }
		for k, v in pairs(extra or {}) do o[k] = v end
		return assert(bedrock.client(o))
	end

	local function control(method, what)
		local res = assert(admin:request{ method = method, url = em.url .. "/_emulator/" .. what,
			headers = { { "x-emulator-admin", "1" } }, body = method == "POST" and "" or nil })
		assert.equal(200, res.status, res.body)
		return json.decode(res.body)
	end

	-- the emulator's record of the last request it served
	local function last_request()
		local log = control("GET", "requests").log
		return log[#log]
	end

	setup(function()
		em = helper.emulator({ "--key", KEY .. ":" .. SECRET })
		admin = T.new{}
	end)
	teardown(function()
		if admin then admin:close() end
		if em then em.stop() end
	end)
	before_each(function() control("POST", "reset") end)

	it("count_tokens counts a table body as it counts the same body as JSON text", function()
		local c = client()
		local a, err = c:count_tokens{ modelId = MODEL, input = { invokeModel = { body = anthropic_body } } }
		assert(a, tostring(err))
		local b = assert(c:count_tokens{ modelId = MODEL,
			input = { invokeModel = { body = json.encode(anthropic_body) } } })
		assert.is_true(a.inputTokens > 0)
		assert.equal(b.inputTokens, a.inputTokens)
		c:close()
	end)

	it("the hooks and the logger get real timing and the HTTP version for streams", function()
		control("POST", "pacing?ms=150")
		local resps, lines = {}, {}
		local c = client{ on_response = function(i) resps[#resps + 1] = i end,
			logger = function(line) lines[#lines + 1] = line end }
		local s = assert(c:converse_stream{ modelId = MODEL, messages = user("timing") })
		-- reported once the first event is in (time to first token), before the rest
		assert.equal(1, #resps)
		local i = resps[1]
		assert.equal(200, i.status)
		assert.is_true(i.stream)
		assert.equal("1.1", i.http_version)
		local tm = i.timing
		assert.is_number(tm.first_byte)
		assert.is_number(tm.headers)
		assert.is_number(tm.first_event)
		assert.is_true(tm.first_byte <= tm.headers)
		-- pacing holds every event back, the first included, not the headers
		assert.is_true(tm.first_event >= 0.14, "first_event " .. tm.first_event)
		assert.is_true(tm.first_event >= tm.headers)
		for _ in s do end
		assert.equal(2, #lines)
		assert.matches("<%- POST .* 200 HTTP/1%.1 headers in %d+%.%d%d%ds, first event in %d+%.%d%d%ds %(stream%)", lines[2])
		assert.not_matches("first event in 0%.0", lines[2])
		-- a non-streaming call still logs its total time and version
		assert(c:converse{ modelId = MODEL, messages = user("timing") })
		assert.matches("<%- POST .* 200 HTTP/1%.1 in %d+%.%d%d%ds %(attempt 1%)", lines[4])
		c:close()
	end)

	describe("Content-Type", function()
		it("InvokeModel without contentType sends none (as botocore), with it sends it", function()
			local c = client()
			local res, err = c:invoke_model{ modelId = MODEL, body = anthropic_body }
			assert(res, tostring(err))
			local r = last_request()
			assert.matches("/invoke$", r.path)
			assert.equal(json.null, r.content_type)
			res, err = c:invoke_model{ modelId = MODEL, body = json.encode(anthropic_body),
				contentType = "application/json" }
			assert(res, tostring(err))
			assert.equal("application/json", last_request().content_type)
			c:close()
		end)

		it("InvokeModelWithResponseStream without contentType sends none", function()
			local c = client()
			local s = assert(c:invoke_model_with_response_stream{ modelId = MODEL, body = anthropic_body })
			for _ in s do end
			local r = last_request()
			assert.matches("/invoke%-with%-response%-stream$", r.path)
			assert.equal(json.null, r.content_type)
			c:close()
		end)

		it("Converse still sends application/json", function()
			local c = client()
			assert(c:converse{ modelId = MODEL, messages = user("hi") })
			assert.equal("application/json", last_request().content_type)
			c:close()
		end)
	end)
end)

describe("per-call options", function()
	local function offline()
		return assert(bedrock.client{ region = "us-east-1", endpoint = "http://127.0.0.1:9",
			credentials = { access_key_id = "AKID", secret_access_key = "secret" },
			getenv = function() return nil end })
	end
	local req = { modelId = MODEL, messages = user("hi") }

	it("a typo is the same ConfigError as the same typo as a client option", function()
		local _, cerr = bedrock.client{ region = "us-east-1", timeout = 10 }
		assert.is_true(bedrock.is_error(cerr, "ConfigError"))
		assert.equal("timeout", cerr.field)
		local c = offline()
		local res, err = c:converse(req, { timeout = 10 })
		assert.is_nil(res)
		assert.is_true(bedrock.is_error(err, "ConfigError"), tostring(err))
		assert.equal("timeout", err.field)
		assert.matches("unknown per%-call option 'timeout'", err.message)
		assert.matches("timeouts", err.message)
	end)

	it("is checked for every kind of operation, before any traffic", function()
		local c = offline()
		local calls = {
			function() return c:converse_stream(req, { retries = 1 }) end,
			function() return c:invoke_model({ modelId = MODEL, body = "{}" }, { retries = 1 }) end,
			function() return c:invoke_model_with_bidirectional_stream({ modelId = "amazon.nova-sonic-v1:0" }, { retries = 1 }) end,
			function() return c:list_async_invokes({}, { retries = 1 }) end,
			function() return c:_build("converse", req, { retries = 1 }) end,
		}
		for i, f in ipairs(calls) do
			local res, err = f()
			assert.is_nil(res, "call " .. i)
			assert.is_true(bedrock.is_error(err, "ConfigError"), "call " .. i .. ": " .. tostring(err))
			assert.equal("retries", err.field)
		end
	end)

	it("the known ones still pass", function()
		local c = offline()
		local r = assert(c:converse(req, { dry_run = true, validate = true, time = 1440938160,
			decode = false, timeouts = { total = 1000 } }))
		assert.equal("POST", r.method)
	end)
end)

describe("mistakes in calling the client", function()
	local function offline()
		return assert(bedrock.client{ region = "us-east-1", endpoint = "http://127.0.0.1:9",
			credentials = { access_key_id = "AKID", secret_access_key = "secret" },
			getenv = function() return nil end })
	end

	it("client.method{...} (a dot for a colon) says to use a colon, for every method", function()
		local c = offline()
		local names = {}
		for name, f in pairs(require("bedrock.client").Client) do
			-- public methods (parse takes no client state: client.parse is fine)
			if type(f) == "function" and not name:find("^_") and name ~= "parse" then
				names[#names + 1] = name
			end
		end
		table.sort(names)
		assert.is_true(#names >= 12)
		for _, name in ipairs(names) do
			local ok, err = pcall(function() local r = c[name]({ modelId = MODEL, messages = user("hi") }); return r end)
			assert.is_false(ok, name)
			assert.matches(name .. " must be called as a method: use client:" .. name:gsub("%p", "%%%0") ..
				"%(...%) %(with a colon", tostring(err), 1)
			-- reported at the caller's line, not inside the library
			assert.matches("client_usability_spec%.lua", tostring(err))
		end
		-- and a method still works with a colon
		assert(c:converse({ modelId = MODEL, messages = user("hi") }, { dry_run = true }))
	end)

	it("a client option of the wrong type is a ConfigError naming it, at creation", function()
		for k, v in pairs{ getenv = 5, user_agent = 5, decode = 3, http2 = "yes", verify = 1,
			cainfo = true, capath = 2 } do
			local c, err = bedrock.client{ region = "us-east-1", [k] = v }
			assert.is_nil(c, k)
			assert.equal("ConfigError", err.code, k)
			assert.equal(k, err.field)
			assert.matches("^" .. k .. " must be a ", err.message)
		end
	end)

	it("error objects concatenate with strings on either side", function()
		local err = bedrock.errors.make("ValidationError", "bad thing", { field = "modelId" })
		assert.equal("failed: ValidationError: modelId: bad thing", "failed: " .. err)
		assert.equal("ValidationError: modelId: bad thing (giving up)", err .. " (giving up)")
		assert.equal("a " .. tostring(err) .. " b", "a " .. err .. " b")
		assert.equal(tostring(err) .. tostring(err), err .. err)
	end)
end)

describe("count_tokens' invokeModel.body", function()
	local function offline()
		return assert(bedrock.client{ region = "us-east-1", endpoint = "http://127.0.0.1:9",
			credentials = { access_key_id = "AKID", secret_access_key = "secret" },
			getenv = function() return nil end })
	end

	it("takes a Lua table exactly as invoke_model does (the JSON text, base64 on the wire)", function()
		local c = offline()
		local im = assert(c:_build("invoke_model", { modelId = MODEL, body = anthropic_body }))
		local ct = assert(c:_build("count_tokens", { modelId = MODEL,
			input = { invokeModel = { body = anthropic_body } } }))
		local sent = json.decode(ct.body).input.invokeModel.body
		assert.equal(im.body, json.b64decode(sent))
		-- a string is still sent as its bytes
		ct = assert(c:_build("count_tokens", { modelId = MODEL,
			input = { invokeModel = { body = im.body } } }))
		assert.equal(im.body, json.b64decode(json.decode(ct.body).input.invokeModel.body))
		-- anything else is still refused
		local _, err = c:_build("count_tokens", { modelId = MODEL, input = { invokeModel = { body = 42 } } })
		assert.is_true(bedrock.is_error(err, "ValidationError"))
		assert.equal("input.invokeModel.body", err.field)
	end)
end)

describe("a transport passed in", function()
	local base = { region = "us-east-1", endpoint = "http://127.0.0.1:9",
		credentials = { access_key_id = "AKID", secret_access_key = "secret" },
		getenv = function() return nil end }
	local function with(extra)
		local o = {}
		for k, v in pairs(base) do o[k] = v end
		for k, v in pairs(extra) do o[k] = v end
		return o
	end

	it("refuses the client's transport options instead of silently losing them", function()
		local t = T.new{}
		for _, k in ipairs{ "timeouts", "http2", "verify", "cainfo", "capath" } do
			local v = ({ timeouts = { connect = 1000 }, http2 = true, verify = false,
				cainfo = "/etc/ssl/certs/ca-certificates.crt", capath = "/etc/ssl/certs" })[k]
			local c, err = bedrock.client(with{ transport = t, [k] = v })
			assert.is_nil(c, k)
			assert.is_true(bedrock.is_error(err, "ConfigError"), tostring(err))
			assert.equal(k, err.field)
			assert.matches("transport passed in keeps its own settings", err.message)
		end
		local _, err = bedrock.client(with{ transport = t, http2 = true, timeouts = {} })
		assert.same({ "timeouts", "http2" }, err.fields)
		assert.matches("timeouts, http2", err.message)
		t:close()
	end)

	it("refuses something that is not a transport", function()
		-- "curl" and "ngx" name the client's own transports; other strings are refused
		local _, err = bedrock.client(with{ transport = "gopher" })
		assert.is_true(bedrock.is_error(err, "ConfigError"))
		assert.equal("transport", err.field)
		_, err = bedrock.client(with{ transport = {} })
		assert.is_true(bedrock.is_error(err, "ConfigError"))
	end)

	it("keeps its own settings (its timeouts apply)", function()
		if not have_emulator then pending("needs the emulator") return end
		local em = helper.emulator({ "--key", KEY .. ":" .. SECRET })
		local admin = T.new{}
		local res = assert(admin:request{ method = "POST", url = em.url .. "/_emulator/faults?kind=stall&ms=3000",
			headers = { { "x-emulator-admin", "1" } }, body = "" })
		assert.equal(200, res.status)
		local t = T.new{ timeouts = { first_byte = 300 } }
		local c = assert(bedrock.client(with{ transport = t, endpoint = em.url,
			credentials = { access_key_id = KEY, secret_access_key = SECRET },
			retry = { max_attempts = 1 } }))
		local out, err = c:converse{ modelId = MODEL, messages = user("hi") }
		c:close()
		admin:close()
		em.stop()
		assert.is_nil(out)
		assert.is_true(bedrock.is_error(err, "Timeout"), tostring(err))
		assert.equal("first_byte", err.which)
	end)
end)
