-- bedrock.async inside nginx's Lua module: tasks are nginx light threads (ngx.thread),
-- sleeps are ngx.sleep, and an await is an ngx.semaphore wait, so that any thread (not
-- only the one that spawned the task, which is all ngx.thread.wait allows) can await a
-- task. Installed by bedrock.async when it is loaded inside nginx; in the phases where
-- cosockets work (rewrite, access, content, timers) async.spawn/run/sleep/current and
-- the library's own waits (the retry backoff, the tool loop's parallel handlers) go
-- through nginx; elsewhere they keep bedrock.async's own scheduler.
--
-- Differences from the scheduler outside nginx: a task starts at once (ngx.thread.spawn
-- runs it until its first wait) instead of at the next step; async.step/fds/pollfd do
-- not see these tasks (nginx's event loop drives them); cancelling a task from a thread
-- other than its parent closes its transfers and makes its awaiters raise Cancelled,
-- but the thread runs on until its next wait ends (nginx kills only a parent's own
-- children).
local errors = require "bedrock.errors"

local M = {}

local COSOCKET_PHASES = { rewrite = true, access = true, content = true, timer = true,
	ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true }

local select, type, pcall, setmetatable, pairs, tostring = select, type, pcall, setmetatable, pairs, tostring
local co_running = coroutine.running
local unpack = table.unpack or unpack -- luacheck: ignore
local traceback = debug.traceback

local function ngx_api()
	local n = rawget(_G, "ngx")
	if type(n) == "table" and type(n.thread) == "table" and type(n.get_phase) == "function" then return n end
	return nil
end

-- Whether the calling code runs inside nginx where light threads and ngx.sleep work.
function M.active()
	local n = ngx_api()
	return n ~= nil and COSOCKET_PHASES[n.get_phase()] == true
end

local function pack(...) return { n = select("#", ...), ... } end

local Task = {}
Task.__index = Task
Task.__name = "bedrock.async.Task"

local by_co = setmetatable({}, { __mode = "k" }) -- thread coroutine -> task

local function cancelled_error()
	return errors.new{ code = "Cancelled", message = "the task was cancelled" }
end

-- The task whose light thread is running, or nil.
function M.current()
	local co = co_running()
	local t = co and by_co[co]
	if t and not t.finished then return t end
	return nil
end

local function finish(t, state)
	if t.finished then return end
	t.finished = true
	t.state = state
	-- LuaJIT's weak keys are not ephemerons: the task (the value) refers to its thread
	-- (the key), so the entry would keep both alive for ever
	if t.co then by_co[t.co] = nil end
	t.sema:post(1) -- each awaiter passes the wake-up on (see await)
end

function M.spawn(fn, ...)
	if type(fn) ~= "function" then
		error(errors.new{ code = "ValidationError", field = "fn", message = "async.spawn expects a function" }, 2)
	end
	local n = ngx_api()
	local sema = require("ngx.semaphore").new(0)
	local t = setmetatable({ state = "running", sema = sema }, Task)
	local args = pack(...)
	local function body()
		local co = co_running()
		t.co = co
		by_co[co] = t
		local r = pack(xpcall(function() return fn(unpack(args, 1, args.n)) end, function(e)
			t.trace = traceback(tostring(e), 2)
			return e
		end))
		if t.finished then return end -- cancelled meanwhile
		if r[1] then
			t.results = pack(unpack(r, 2, r.n))
			finish(t, "done")
		else
			t.err = r[2]
			finish(t, "failed")
		end
	end
	local th, err = n.thread.spawn(body)
	if not th then error(errors.new{ code = "ConfigError", message = "ngx.thread.spawn: " .. tostring(err) }, 2) end
	t.thread = th
	return t
end

function Task:status()
	return self.state == "running" and "waiting" or self.state
end

function Task:__tostring()
	return "bedrock.async.Task (" .. self:status() .. ", ngx.thread)"
end

-- await([seconds]): the task's results, or raises its error, Cancelled, or a Timeout
-- (which = "task") when `seconds` passed first (the task runs on).
function Task:await(seconds)
	if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds < 0) then
		error(errors.new{ code = "ValidationError", field = "seconds", message = "must be a number >= 0" }, 2)
	end
	if M.current() == self then
		error(errors.new{ code = "ValidationError", field = "task", message = "a task cannot await itself" }, 2)
	end
	if not self.finished then
		-- (a wait is bounded by nginx's timer range: "for ever" is a loop of hours)
		local ok, err
		repeat
			ok, err = self.sema:wait(seconds or 3600)
		until ok or seconds or err ~= "timeout" or self.finished
		if ok then
			self.sema:post(1) -- the next awaiter, if any
		elseif err == "timeout" then
			error(errors.new{ code = "Timeout", which = "task", retryable = false,
				message = "task did not finish within " .. tostring(seconds) .. " s" }, 2)
		else
			error(errors.new{ code = "ConfigError", message = "ngx.semaphore wait: " .. tostring(err) }, 2)
		end
	end
	if self.state == "done" then return unpack(self.results, 1, self.results.n) end
	if self.state == "cancelled" then error(cancelled_error(), 2) end
	local e = self.err
	if type(e) == "table" then
		if e.traceback == nil and getmetatable(e) then pcall(function() e.traceback = self.trace end) end
		error(e, 0)
	end
	error(self.trace or tostring(e), 0)
end

-- cancel() -> true when the task was still running: its transfers are closed, its light
-- thread killed when the caller is its parent, its awaiters raise Cancelled.
function Task:cancel()
	if self.finished then return false end
	for x in pairs(self.transfers or {}) do pcall(x.close, x) end
	self.transfers = nil
	if M.current() == self then
		finish(self, "cancelled")
		error(cancelled_error(), 2)
	end
	pcall(ngx_api().thread.kill, self.thread)
	finish(self, "cancelled")
	return true
end

-- Installs the nginx versions into bedrock.async's table `A`: each public function and
-- each backend wait uses nginx when M.active(), else A's own.
function M.install(A)
	if A.ngx_installed then return end
	A.ngx_installed = true
	local own = { spawn = A.spawn, run = A.run, sleep = A.sleep, current = A.current }
	local b = A.backend
	local own_b = { current = b.current, spawn = b.spawn, wait_io = b.wait_io, sleep = b.sleep }
	local active = M.active
	A.spawn = function(...)
		if active() then return M.spawn(...) end
		return own.spawn(...)
	end
	A.run = function(fn, ...)
		if active() then return M.spawn(fn, ...):await() end
		return own.run(fn, ...)
	end
	A.sleep = function(seconds)
		if active() then
			if type(seconds) ~= "number" or seconds ~= seconds then
				error(errors.new{ code = "ValidationError", field = "seconds", message = "must be a number" }, 2)
			end
			return ngx_api().sleep(seconds > 0 and seconds or 0)
		end
		return own.sleep(seconds)
	end
	A.current = function()
		if active() then return M.current() end
		return own.current()
	end
	b.current = function()
		if active() then return M.current() end
		return own_b.current()
	end
	b.spawn = function(...)
		if active() then return M.spawn(...) end
		return own_b.spawn(...)
	end
	b.sleep = function(seconds)
		if active() then return ngx_api().sleep(seconds > 0 and seconds or 0) end
		return own_b.sleep(seconds)
	end
	-- The curl transport waiting inside an nginx task: step its multi without blocking
	-- and let nginx run for a millisecond between steps (a poll: the cosocket transport
	-- needs none of this).
	b.wait_io = function(transport, progress)
		if not active() then return own_b.wait_io(transport, progress) end
		local m = transport.multi
		if m then m:step(0) end
		if progress and progress() then return end
		ngx_api().sleep(0.001)
	end
end

return M
