-- docs/api.md is generated from the sources (`make apidoc`, .ci/apidoc.lua): it must be
-- what the generator writes now, and the generator must refuse what would make the
-- reference incomplete or wrong (an undocumented public function, a doc comment that does
-- not sit on its definition, an option without a description).
local helper = require "spec.helper"
local apidoc = dofile(".ci/apidoc.lua")

local function write_tmp(text)
	local path = os.tmpname()
	local f = assert(io.open(path, "wb"))
	f:write(text)
	f:close()
	return path
end

describe("docs/api.md", function()
	it("is what `make apidoc` writes from the current sources (run it after changing a doc comment)", function()
		local out = os.tmpname()
		local cmd = "LUA_PATH=" .. helper.shell_quote("./lua/?.lua;./lua/?/init.lua;;") ..
			" LUA_CPATH=" .. helper.shell_quote("./" .. helper.build .. "/?.so;;") .. " " ..
			helper.lua_cmd .. " .ci/apidoc.lua " .. out .. " 2>&1; echo \"rc=$?\""
		local p = assert(io.popen(cmd))
		local log = p:read("*a")
		p:close()
		local generated = helper.read(out)
		os.remove(out)
		assert.matches("rc=0%s*$", log)
		local committed = helper.read("docs/api.md")
		if generated ~= committed then
			-- name the first line that differs
			local gi, ci = generated:gmatch("([^\n]*)\n"), committed:gmatch("([^\n]*)\n")
			local n, a, b = 1, gi(), ci()
			while a == b do n, a, b = n + 1, gi(), ci() end
			error(("docs/api.md is stale (run make apidoc): line %d is\n  %s\nbut the sources give\n  %s")
				:format(n, tostring(b), tostring(a)))
		end
	end)

	it("lists every operation of the model, every client option, per-call option and local error code", function()
		local doc = helper.read("docs/api.md")
		local operations = require "bedrock.operations"
		for _, name in ipairs(operations.names) do
			assert.truthy(doc:find("`client:" .. operations.plans[name].method_name .. "(req [, opts])` | " .. name,
				1, true), name)
		end
		local config = require "bedrock.config"
		for k in pairs(config.known_options) do assert.truthy(doc:find("| `" .. k .. "` |", 1, true), k) end
		for k in pairs(config.known_call_options) do assert.truthy(doc:find("| `" .. k .. "` |", 1, true), k) end
		for k in pairs(require("bedrock.errors").codes) do
			assert.truthy(doc:find("| `" .. k .. "` |", 1, true), k)
		end
		for name in pairs(operations.exceptions) do assert.truthy(doc:find("| `" .. name .. "` |", 1, true), name) end
		for _, f in ipairs{ "async.run", "async.spawn", "task:await", "task:cancel", "task:status",
			"async.sleep", "async.step", "async.count", "async.current", "async.fds", "async.timeout",
			"async.pollfd", "async.events", "async.wrap", "stream:next", "stream:events", "stream:collect",
			"stream:close", "bidi:send", "bidi:close_input", "bedrock.client", "bedrock.api_key",
			"bedrock.inspect", "bedrock.array", "bedrock.empty_array", "bedrock.null", "bedrock.json",
			"errors.is" } do
			assert.truthy(doc:find("#### `" .. f, 1, true), f)
		end
	end)
end)

describe("the API doc generator", function()
	it("reads an entry, its description and checks it sits on its definition", function()
		local d = assert(apidoc.parse(table.concat({
			"--- @module m",
			"-- The module.",
			"",
			"--- m.f(x) -> y | nil, err",
			"-- Does f.",
			"--",
			"-- - a list item",
			"function _M.f(x) end",
			"--- obj:g()",
			"function Obj:g() end",
		}, "\n"), "x.lua"))
		assert.equal(2, #d.entries)
		assert.equal("m.f", d.entries[1].key)
		assert.equal("m.f(x) -> y | nil, err", d.entries[1].heading)
		assert.equal("obj:g", d.entries[2].key)
		assert.same({ "The module." }, d.modules.m.body)
	end)

	it("refuses a doc comment that is not followed by the function it names", function()
		local d, err = apidoc.parse("--- m.f(x)\n-- Does f.\nfunction _M.g(x) end\n", "x.lua")
		assert.is_nil(d)
		assert.matches("x.lua:1: the doc entry for m.f is not followed by its definition", err, 1, true)
		d, err = apidoc.parse("--- just words\nfunction _M.g(x) end\n", "y.lua")
		assert.is_nil(d)
		assert.matches("y.lua:1: a doc entry starts with the call", err, 1, true)
		d, err = apidoc.parse("--- @nonsense x\n", "z.lua")
		assert.is_nil(d)
		assert.matches("unknown doc tag @nonsense", err, 1, true)
	end)

	it("reads an option table and refuses an option without a description", function()
		local d = assert(apidoc.parse(table.concat({
			"--- @options o",
			"local t = {",
			"\ta = true, -- the a",
			"\t-- and more",
			"\tb = 1, -- the b",
			"}",
		}, "\n"), "o.lua"))
		assert.same({ "the a", "and more" }, d.options.o.list[1].body)
		assert.equal("b", d.options.o.list[2].name)
		local _, err = apidoc.parse("--- @options o\nlocal t = {\n\ta = true, -- the a\n\tb = true,\n}\n", "o.lua")
		assert.matches("o.lua:4: option without a description", err, 1, true)
	end)

	it("reports every public function of a surface that has no entry", function()
		local docs = assert(apidoc.collect{ write_tmp("--- x.documented()\nfunction M.documented() end\n") })
		local ops = { by_method = { converse = true } }
		local miss = apidoc.missing(docs, {
			{ prefix = "x.", t = { documented = print, forgotten = print, _private = print, value = 1,
				internal_one = print }, internal = { internal_one = true } },
			{ prefix = "c:", t = { converse = print, close = print }, skip_operations = true },
		}, ops)
		assert.same({ "c:close", "x.forgotten" }, miss)
	end)

	it("fails the whole run, naming the undocumented names, when a surface grows", function()
		local bedrock = require "bedrock"
		bedrock.undocumented_helper = function() end
		local text, err = apidoc.generate()
		bedrock.undocumented_helper = nil
		assert.is_nil(text)
		assert.matches("bedrock.undocumented_helper", err, 1, true)
		assert.truthy(apidoc.generate())
	end)
end)
