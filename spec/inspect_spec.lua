-- bedrock.inspect: readable text for results, events and errors in the REPL.
require "spec.helper"
local bedrock = require "bedrock"
local inspect = require "bedrock.inspect"
local cjson = require "cjson"

describe("bedrock.inspect", function()
	it("is the module's function, and the module is callable", function()
		assert.equal(inspect.inspect, bedrock.inspect)
		assert.equal(bedrock.inspect({ a = 1 }), inspect({ a = 1 }))
	end)

	it("prints JSON data as indented JSON that decodes back to the same value", function()
		local v = { output = { message = { role = "assistant", content = { { text = "Hi \"you\"\n\tok é ✓" } } } },
			stopReason = "end_turn", usage = { inputTokens = 3, outputTokens = 12, totalTokens = 15 },
			metrics = { latencyMs = 0.25 }, flags = { true, false }, deep = { { { {} } } } }
		local text = bedrock.inspect(v)
		assert.same(v, cjson.decode(text))
		assert.truthy(text:find('\n  "output": {\n    "message": {', 1, true))
		assert.truthy(text:find('"flags": [true, false]', 1, true))
	end)

	it("orders keys the same way every time: strings sorted, then numbers", function()
		local t = {}
		for _, k in ipairs{ "zeta", "alpha", "mid", "beta", "Upper" } do t[k] = k end
		t[10], t[2] = "ten", "two"
		local want = '{\n  "Upper": "Upper",\n  "alpha": "alpha",\n  "beta": "beta",\n  "mid": "mid",\n' ..
			'  "zeta": "zeta",\n  [2]: "two",\n  [10]: "ten"\n}'
		for _ = 1, 5 do assert.equal(want, bedrock.inspect(t)) end
	end)

	it("escapes bytes that are not text, keeps UTF-8 text as it is", function()
		assert.equal('"\\x89PNG\\r\\n\\x1A\\n\\x00\\xFF"', bedrock.inspect("\137PNG\r\n\26\n\0\255"))
		assert.equal('"héllo ✓ 😀"', bedrock.inspect("héllo ✓ 😀"))
		-- overlong, surrogate and truncated sequences are bytes, not text
		assert.equal('"\\xC0\\x80 \\xED\\xA0\\x80 \\xE2\\x9C"', bedrock.inspect("\192\128 \237\160\128 \226\156"))
	end)

	it("handles cycles, shared tables, null, marked arrays and non-data values", function()
		local shared = { 1 }
		local t = { a = shared, b = shared, n = bedrock.null, e = bedrock.array{}, o = {}, f = print,
			co = coroutine.create(print) }
		t.me = t
		local text = bedrock.inspect(t)
		assert.truthy(text:find('"me": <cycle>', 1, true))
		assert.truthy(text:find('"a": [1]', 1, true))
		assert.truthy(text:find('"b": [1]', 1, true))
		assert.truthy(text:find('"n": null', 1, true))
		assert.truthy(text:find('"e": []', 1, true))
		assert.truthy(text:find('"o": {}', 1, true))
		assert.truthy(text:find('"f": <function>', 1, true))
		assert.truthy(text:find('"co": <thread>', 1, true))
	end)

	it("prints error objects with their fields", function()
		local err = bedrock.errors.make("ValidationException", "bad model", { status = 400, request_id = "r-1" })
		local text = bedrock.inspect(err)
		assert.truthy(text:find('"code": "ValidationException"', 1, true))
		assert.truthy(text:find('"status": 400', 1, true))
	end)

	it("takes depth, max_string and indent, and refuses bad options", function()
		assert.equal('{\n  "a": {…}\n}', bedrock.inspect({ a = { b = 1 } }, { depth = 1 }))
		assert.equal('"abc" <10 bytes, cut>', bedrock.inspect("abcdefghij", { max_string = 3 }))
		assert.equal('{\n\t"a": 1\n}', bedrock.inspect({ a = 1 }, { indent = "\t" }))
		assert.has_error(function() bedrock.inspect(1, "x") end)
		assert.has_error(function() bedrock.inspect(1, { depth = "deep" }) end)
		assert.equal("null", bedrock.inspect(nil))
		assert.equal("0.1", bedrock.inspect(0.1))
		assert.equal("3", bedrock.inspect(3.0))
	end)
end)
