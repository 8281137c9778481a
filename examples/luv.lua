-- bedrock.async inside a libuv loop (luv, as in Neovim): no polling. The loop watches
-- the sockets the scheduler waits on (async.fds(), with uv.new_socket_poll) and its
-- next timeout (async.timeout(), with a uv timer); whenever one fires it calls
-- async.step(0) and re-arms the watchers from the new state.
--
--   lua5.4 examples/luv.lua     (Debian: apt-get install lua-luv; credentials, region,
--                                endpoint from the environment as examples/chat.lua)
local uv = require "luv"
local bedrock = require "bedrock"
local async = require "bedrock.async"

local model = os.getenv("BEDROCK_MODEL_ID") or "anthropic.claude-3-haiku-20240307-v1:0"
local client = assert(bedrock.client{})

local polls = {}            -- fd -> { handle, mode }
local timer = uv.new_timer()
local steps = 0

-- a libuv timer of the application's own, running alongside the chats
local ticks = 0
local app = uv.new_timer()
app:start(0, 20, function() ticks = ticks + 1 end)

local function pump()
	steps = steps + 1
	local live = async.step(0)
	-- watch exactly the sockets curl waits on now, with the interest it asked for
	local want = {}
	for _, p in ipairs(async.fds()) do want[p[1]] = p[2] end
	for fd, w in pairs(polls) do
		if want[fd] ~= w.mode then
			w.handle:stop()
			w.handle:close()
			polls[fd] = nil
		end
	end
	for fd, mode in pairs(want) do
		if not polls[fd] then
			local h = uv.new_socket_poll(fd)
			h:start(mode, function() pump() end)
			polls[fd] = { handle = h, mode = mode }
		end
	end
	timer:stop()
	local t = async.timeout()
	if live > 0 and t then timer:start(math.ceil(t * 1000), 0, function() pump() end) end
	if live == 0 then
		for fd, w in pairs(polls) do w.handle:stop(); w.handle:close(); polls[fd] = nil end
		if not timer:is_closing() then timer:close() end
		if not app:is_closing() then app:close() end -- nothing left: uv.run() returns
	end
end

local answers = {}
for i = 1, 3 do
	async.spawn(function()
		local n = 0
		for ev in assert(client:converse_stream{ modelId = model,
			messages = { { role = "user", content = { { text = "chat number " .. i } } } } }) do
			n = n + 1
			local d = ev.contentBlockDelta
			if d and d.delta.text then answers[i] = (answers[i] or "") .. d.delta.text end
		end
	end)
end

pump()
uv.run()

for i = 1, 3 do print(("chat %d: %s"):format(i, answers[i])) end
print(("%d scheduler steps, %d application ticks"):format(steps, ticks))
if async.count() > 0 then os.exit(1) end
