-- The tool-calling loop: tools.config/results offline, converse_with_tools against the
-- emulator's __tool_plan (a deterministic model that asks for named tools over turns).
local helper = require "spec.helper"
local bedrock = require "bedrock"
local tools = require "bedrock.tools"
local async = require "bedrock.async"
local json = bedrock.json

local MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

local function plan(turns) return "__tool_plan " .. json.encode(turns) end
local function user(text) return { { role = "user", content = { { text = text } } } } end

describe("bedrock.tools offline", function()
	local T = {
		weather = { description = "weather", inputSchema = { type = "object" },
			handler = function(i) return { temp = 21, city = i.city } end },
		echo = { handler = function(i) return i.s end },
		fail = { handler = function() error("no luck", 0) end },
		pic = { handler = function() return tools.content{ { text = "a cat" }, { image = { format = "png",
			source = { bytes = "\137PNG" } } } } end },
	}

	it("config sorts tools by name, wraps the schema and keeps toolChoice", function()
		local cfg = assert(tools.config(T, { auto = {} }))
		local names = {}
		for i, t in ipairs(cfg.tools) do names[i] = t.toolSpec.name end
		assert.same({ "echo", "fail", "pic", "weather" }, names)
		assert.same({ json = { type = "object" } }, cfg.tools[4].toolSpec.inputSchema)
		assert.same({ json = { type = "object", properties = {} } }, cfg.tools[1].toolSpec.inputSchema)
		assert.same({ auto = {} }, cfg.toolChoice)
		assert.equal(json.encode(cfg), json.encode(assert(tools.config(T, { auto = {} }))))
	end)

	it("config refuses bad tools naming the field", function()
		local _, e = tools.config({ x = { handler = 1 } })
		assert.equal("tools.x.handler", e.field)
		_, e = tools.config({})
		assert.equal("tools", e.field)
		_, e = tools.config({ x = { handler = print, inputSchema = "{}" } })
		assert.equal("tools.x.inputSchema", e.field)
	end)

	it("results: one toolResult per toolUse, in order, errors and unknown tools as error results", function()
		local msg = { role = "assistant", content = {
			{ text = "Calling." },
			{ toolUse = { toolUseId = "t1", name = "weather", input = { city = "Oslo" } } },
			{ toolUse = { toolUseId = "t2", name = "fail", input = {} } },
			{ toolUse = { toolUseId = "t3", name = "nope", input = {} } },
			{ toolUse = { toolUseId = "t4", name = "echo", input = { s = "hi" } } },
			{ toolUse = { toolUseId = "t5", name = "pic", input = {} } },
		} }
		for _, parallel in ipairs{ false, true } do
			local r = tools.results("client", T, msg, { turn = 1, messages = {} }, { parallel = parallel })
			assert.equal("user", r.role)
			assert.equal(5, #r.content)
			local tr = {}
			for i, b in ipairs(r.content) do tr[i] = b.toolResult end
			assert.same({ toolUseId = "t1", content = { { json = { temp = 21, city = "Oslo" } } } }, tr[1])
			assert.same({ toolUseId = "t2", status = "error", content = { { text = "no luck" } } }, tr[2])
			assert.equal("error", tr[3].status)
			assert.matches("Unknown tool: nope", tr[3].content[1].text)
			assert.same({ { text = "hi" } }, tr[4].content)
			assert.equal("a cat", tr[5].content[1].text)
			assert.equal("png", tr[5].content[2].image.format)
		end
	end)

	it("approve may refuse a call with a reason; ctx carries the call's context", function()
		local seen
		local t = { echo = { handler = function(i, ctx) seen = ctx; return i.s end } }
		local msg = { role = "assistant", content = {
			{ toolUse = { toolUseId = "a", name = "echo", input = { s = "yes" } } },
			{ toolUse = { toolUseId = "b", name = "echo", input = { s = "no" } } } } }
		local hist = { msg }
		local r = tools.results("C", t, msg, { turn = 3, messages = hist }, {
			approve = function(tu) if tu.input.s == "no" then return false, "not allowed" end return true end })
		assert.same({ { text = "yes" } }, r.content[1].toolResult.content)
		assert.same({ toolUseId = "b", status = "error", content = { { text = "not allowed" } } }, r.content[2].toolResult)
		assert.equal("C", seen.client)
		assert.equal("a", seen.toolUseId)
		assert.equal(3, seen.turn)
		assert.equal(hist, seen.messages)
	end)
end)

if not helper.exists(helper.emulator_bin) then
	describe("converse_with_tools", function() pending("needs build/bin/bedrock-emulator (make all)") end)
	return
end

describe("converse_with_tools against the emulator", function()
	local em, c

	setup(function()
		em = helper.emulator({ "--no-auth" })
		c = assert(bedrock.client{ region = "us-east-1", endpoint = em.url,
			credentials = { access_key_id = "AKID", secret_access_key = "secret" }, getenv = function() return nil end })
	end)
	teardown(function() if em then em.stop() end end)

	local calc = {
		add = { description = "adds a and b", inputSchema = { type = "object",
			properties = { a = { type = "number" }, b = { type = "number" } } },
			handler = function(i) return { sum = i.a + i.b } end },
		shout = { description = "upper-cases s", handler = function(i) return i.s:upper() end },
	}

	it("one tool: runs it and returns the final answer with history, usage and turns", function()
		local res = assert(c:converse_with_tools{ modelId = MODEL, tools = calc,
			messages = user(plan{ { { name = "add", input = { a = 2, b = 3 } } } }) })
		assert.equal("end_turn", res.stopReason)
		assert.equal('The tool add returned: {"sum":5}', res.output.message.content[1].text)
		assert.equal(2, res.turns)
		assert.equal(4, #res.messages)
		assert.equal("assistant", res.messages[2].role)
		assert.equal("tooluse_1", res.messages[3].content[1].toolResult.toolUseId)
		assert.equal(res.output.message, res.messages[4])
		assert.is_true(res.usage.inputTokens > 0)
		assert.equal(res.usage.inputTokens + res.usage.outputTokens, res.usage.totalTokens)
	end)

	it("two tools in one turn, in order, sequential and parallel", function()
		for _, parallel in ipairs{ false, true } do
			local order = {}
			local t = {
				slow = { handler = function() if parallel then async.sleep(0.05) end; order[#order + 1] = "slow"; return "S" end },
				fast = { handler = function() order[#order + 1] = "fast"; return "F" end },
			}
			local res = assert(c:converse_with_tools{ modelId = MODEL, tools = t, parallel = parallel,
				messages = user(plan{ { { name = "slow" }, { name = "fast" } } }) })
			assert.equal("The tool slow returned: S The tool fast returned: F", res.output.message.content[1].text)
			local results = res.messages[3].content
			assert.equal("tooluse_1", results[1].toolResult.toolUseId)
			assert.equal("tooluse_2", results[2].toolResult.toolUseId)
			if parallel then assert.same({ "fast", "slow" }, order) else assert.same({ "slow", "fast" }, order) end
		end
	end)

	it("a failing handler and an unknown tool become error results, never a crash", function()
		local res = assert(c:converse_with_tools{ modelId = MODEL, tools = {
				bad = { handler = function() error({ message = "disk full" }) end } },
			messages = user(plan{ { { name = "bad" }, { name = "ghost" } } }) })
		assert.equal("The tool bad failed: disk full The tool ghost failed: Unknown tool: ghost",
			res.output.message.content[1].text)
	end)

	it("approve refusing", function()
		local ran = false
		local res = assert(c:converse_with_tools{ modelId = MODEL,
			tools = { rm = { handler = function() ran = true end } },
			approve = function(tu, ctx)
				assert.equal("rm", tu.name)
				assert.equal(1, ctx.turn)
				return false, "refused by policy"
			end,
			messages = user(plan{ { { name = "rm", input = { path = "/" } } } }) })
		assert.is_false(ran)
		assert.equal("The tool rm failed: refused by policy", res.output.message.content[1].text)
	end)

	it("three turns, ctx.turn and the history grow", function()
		local turns = {}
		local res = assert(c:converse_with_tools{ modelId = MODEL, tools = {
				add = { handler = function(i, ctx) turns[#turns + 1] = ctx.turn; return { sum = i.a + i.b } end } },
			messages = user(plan{ { { name = "add", input = { a = 1, b = 1 } } },
				{ { name = "add", input = { a = 2, b = 2 } } }, { { name = "add", input = { a = 3, b = 3 } } } }) })
		assert.same({ 1, 2, 3 }, turns)
		assert.equal(4, res.turns)
		assert.equal(8, #res.messages)
		assert.equal("tooluse_3", res.messages[7].content[1].toolResult.toolUseId)
		assert.equal('The tool add returned: {"sum":6}', res.output.message.content[1].text)
	end)

	it("max_turns: stops without running the last turn's handlers; err.messages holds the history", function()
		local runs = 0
		local res, err = c:converse_with_tools{ modelId = MODEL, max_turns = 2, tools = {
				add = { handler = function() runs = runs + 1; return 1 end } },
			messages = user(plan{ { { name = "add" } }, { { name = "add" } }, { { name = "add" } } }) }
		assert.is_nil(res)
		assert.equal("MaxTurnsExceeded", err.code)
		assert.equal(1, runs)
		assert.equal(4, #err.messages)
		assert.equal("assistant", err.messages[4].role)
		assert.equal("add", err.messages[4].content[2].toolUse.name)
	end)

	it("streams each turn to on_event; toolUse input split over many deltas is assembled once", function()
		local long = string.rep("abcdefghij", 10)
		local events, got = 0, nil
		local res = assert(c:converse_with_tools{ modelId = MODEL,
			tools = { shout = { handler = function(i) got = i.s; return i.s:upper() end } },
			on_event = function(_, ctx)
				events = events + 1
				assert.is_number(ctx.turn)
			end,
			messages = user(plan{ { { name = "shout", input = { s = long } } } }) })
		assert.equal(long, got)
		assert.is_true(events > 20)
		assert.equal("The tool shout returned: " .. long:upper(), res.output.message.content[1].text)
		assert.same({ s = long }, res.messages[2].content[2].toolUse.input)
		assert.is_true(res.usage.totalTokens > 0)
	end)

	it("usage is summed over all turns", function()
		local msgs = user(plan{ { { name = "add", input = { a = 1, b = 2 } } } })
		local res = assert(c:converse_with_tools{ modelId = MODEL, tools = calc, messages = msgs })
		-- the same two model calls made by hand
		local cfg = assert(tools.config(calc))
		local one = assert(c:converse{ modelId = MODEL, messages = msgs, toolConfig = cfg })
		local two = assert(c:converse{ modelId = MODEL, toolConfig = cfg,
			messages = { res.messages[1], res.messages[2], res.messages[3] } })
		assert.equal(one.usage.inputTokens + two.usage.inputTokens, res.usage.inputTokens)
		assert.equal(one.usage.outputTokens + two.usage.outputTokens, res.usage.outputTokens)
		assert.equal(one.usage.totalTokens + two.usage.totalTokens, res.usage.totalTokens)
	end)

	it("handlers may call the client, and the loop runs inside bedrock.async", function()
		local t = { ask = { handler = function(i, ctx)
			return ctx.client:converse{ modelId = MODEL, messages = user(i.q) }.output.message.content[1].text
		end } }
		local answers = {}
		local tasks = {}
		for k = 1, 3 do
			tasks[k] = async.spawn(function()
				return assert(c:converse_with_tools{ modelId = MODEL, tools = t, parallel = true,
					messages = user(plan{ { { name = "ask", input = { q = "q" .. k } }, { name = "ask", input = { q = "r" .. k } } } }) })
			end)
		end
		for k = 1, 3 do answers[k] = tasks[k]:await().output.message.content[1].text end
		assert.equal("The tool ask returned: You said: q2 The tool ask returned: You said: r2", answers[2])
	end)

	it("refuses bad requests before any traffic", function()
		local _, e = c:converse_with_tools{ modelId = MODEL, messages = user("x"), tools = calc, max_turns = 0 }
		assert.equal("max_turns", e.field)
		_, e = c:converse_with_tools{ modelId = MODEL, messages = user("x"), tools = calc,
			toolConfig = { tools = {} } }
		assert.equal("toolConfig", e.field)
		_, e = c:converse_with_tools{ modelId = MODEL, messages = user("x"), tools = calc, on_event = 1 }
		assert.equal("on_event", e.field)
		_, e = c:converse_with_tools{ modelId = MODEL, messages = user("x") }
		assert.equal("tools", e.field)
	end)
end)
