-- bedrock.async: many calls in one Lua state. Tasks are coroutines; a task that waits
-- for a transfer, a sleep or another task yields to this scheduler, which drives the
-- curl multi handles of every client that a task used, in one wait over all of them.
--
--   local async = require "bedrock.async"
--   async.run(fn, ...)          -- runs fn as a task until it ends: its results, or raises
--   local t = async.spawn(fn, ...)
--   t:await([seconds])          -- results, or raises (Cancelled, Timeout, the task's error)
--   t:cancel()                  -- closes the task's transfers; its await raises Cancelled
--   t:status()                  -- "ready" | "waiting" | "done" | "failed" | "cancelled"
--   async.sleep(seconds)        -- inside a task
--   async.step(timeout_ms)      -- one pass; waits at most timeout_ms (0: never blocks);
--                               -- returns the number of live tasks (a frame loop's pump)
--   async.current()             -- the running task, or nil
--   async.fds()                 -- { {fd, "r"|"w"|"rw"}, ... } that the scheduler waits on
--   async.timeout()             -- seconds until a step is due without fd activity, or nil
--   async.wrap(fn)              -- coroutine.wrap that lets library waits inside it yield
--   async.pollfd(), async.events() -- cqueues' pollable protocol: one fd (an epoll set of
--                               -- the sockets) readable when a step is due, "r"
--
-- Every wait decides per call (the transport's wait, the retry backoff's sleep): inside
-- a task it yields to the scheduler, outside it blocks as before. Nothing yields across
-- a C call: the C transport is a state machine that this module steps.
--
-- Yields of the scheduler carry a private tag (POLL): a task whose body yields anything
-- else fails with a clear error, and a library wait that runs in a coroutine of the
-- caller's own (not a task, not made by async.wrap) blocks instead of yielding into it.
--
-- The waiting is behind `backend` (current, wait_io, sleep, track, spawn): another
-- environment (OpenResty's ngx.thread) can provide those five and keep the transports,
-- the retry backoff and the tool loop unchanged.
local core = require "bedrock.core"
local errors = require "bedrock.errors"

local M = { _VERSION = "0.1.0" }

local type, error, pairs, ipairs, select, setmetatable, tostring, getmetatable =
	type, error, pairs, ipairs, select, setmetatable, tostring, getmetatable
local co_create, co_resume, co_status, co_running, co_yield =
	coroutine.create, coroutine.resume, coroutine.status, coroutine.running, coroutine.yield
local traceback = debug.traceback
local unpack = table.unpack or unpack -- luacheck: ignore
local monotonic, http_poll = core.monotonic, core.http_poll
local huge = math.huge

local POLL = setmetatable({}, { __tostring = function() return "bedrock.async.POLL" end })
local CANCEL = setmetatable({}, { __tostring = function() return "bedrock.async.CANCEL" end })

-- Longest single wait when a caller asked to wait "until done" (a bound, not a poll:
-- the wait ends as soon as a socket or a timer is due).
local SLICE_MS = 1000

local Task = {}
Task.__index = Task
Task.__name = "bedrock.async.Task"

local by_co = setmetatable({}, { __mode = "k" })   -- coroutine -> task (tasks and wraps)
local drivers = setmetatable({}, { __mode = "k" }) -- transports that tasks waited on
local live = {}                                      -- tasks not finished, in spawn order
local nlive = 0
local ready = {}                                     -- tasks to resume this pass, FIFO
local running_step = false

local function pack(...) return { n = select("#", ...), ... } end

local function cancelled_error()
	return errors.new{ code = "Cancelled", message = "the task was cancelled" }
end

--- @module bedrock.async
-- `local async = require "bedrock.async"`: many calls in one Lua state. Tasks are
-- coroutines; inside a task every client call (operations, stream iteration, paging,
-- retry backoff, credential fetches) yields to one scheduler instead of blocking, and the
-- scheduler drives the transfers of every client at once. Outside a task everything
-- blocks as usual. An error in a task is kept and raised by its `await`.

--- async.current() -> task | nil
-- The running task (inside its coroutine or a coroutine made by `async.wrap`), or `nil`.
local function current()
	local co = co_running()
	local t = co and by_co[co]
	if t and not t.finished then return t end
	return nil
end
M.current = current

local function make_ready(t, ...)
	if t.queued or t.finished then return end
	t.queued = true
	t.wait = nil
	t.resume_args = select("#", ...) > 0 and pack(...) or nil
	ready[#ready + 1] = t
end

local function finish(t, status)
	t.finished = true
	t.state = status
	t.wait = nil
	-- LuaJIT's weak keys are not ephemerons: the task (the value) refers to its coroutine
	-- (the key), so the entry would keep both alive for ever
	by_co[t.co] = nil
	for i = 1, nlive do
		if live[i] == t then
			table.remove(live, i)
			nlive = nlive - 1
			break
		end
	end
	local waiters = t.waiters
	t.waiters = nil
	for _, w in ipairs(waiters or {}) do make_ready(w) end
end

-- Raises a task's error the way await promises: the error object itself (with the
-- task's traceback in err.traceback), or the message followed by the traceback.
local function raise_task_error(t)
	local e = t.err
	if type(e) == "table" then error(e, 0) end
	error(tostring(e) .. "\n" .. (t.tb or ""), 0)
end

local function on_error(t, e)
	t.err = e
	local tb = traceback(t.co, "task traceback:", 0)
	t.tb = tb
	if type(e) == "table" and getmetatable(e) == errors.Error and e.traceback == nil then
		e.traceback = tb
	end
	finish(t, "failed")
end

-- Handles what one resume of t returned.
local function after_resume(t, ok, tag, op, a, b)
	if not ok then
		if t.cancelled then return finish(t, "cancelled") end
		return on_error(t, tag)
	end
	if co_status(t.co) == "dead" then
		if t.cancelled then return finish(t, "cancelled") end
		t.results = t.pending_results
		return finish(t, "done")
	end
	if tag ~= POLL then
		-- a yield that is not ours: the task's own code yielded to the scheduler
		t.cancel_on_resume = nil
		return on_error(t, errors.new{ code = "ValidationError", field = "coroutine.yield",
			message = "a task yielded " .. tostring(tag) .. " to the bedrock.async scheduler;"
				.. " yield only inside your own coroutines (or use async.wrap, async.sleep)" })
	end
	if t.cancelled then return make_ready(t, CANCEL) end
	if op == "io" then
		t.wait = { io = true, progress = b }
		if a then drivers[a] = true end
	elseif op == "sleep" then
		t.wait = { deadline = a }
	elseif op == "join" then
		t.wait = { join = a, deadline = b }
		a.waiters = a.waiters or {}
		local ws = a.waiters
		ws[#ws + 1] = t
	else -- "pass": run again in the next pass
		t.wait = { pass = true }
	end
end

local function resume(t)
	t.queued = false
	local args = t.resume_args
	t.resume_args = nil
	local co = t.co
	if not t.started then
		t.started = true
		local fn_args = t.args
		t.args = nil
		return after_resume(t, co_resume(co, unpack(fn_args, 1, fn_args.n)))
	end
	if args then return after_resume(t, co_resume(co, unpack(args, 1, args.n))) end
	return after_resume(t, co_resume(co))
end

-- Yields the running task to the scheduler; raises Cancelled when it was cancelled.
local function suspend(op, a, b)
	local r = co_yield(POLL, op, a, b)
	if r == CANCEL then error(cancelled_error(), 0) end
	return r
end

------------------------------------------------------------------------------ tasks

--- async.spawn(fn, ...) -> task
-- A new task running `fn(...)`; it starts at the next step (or `await`/`run`).
function M.spawn(fn, ...)
	if type(fn) ~= "function" then
		error(errors.new{ code = "ValidationError", field = "fn", message = "async.spawn expects a function" }, 2)
	end
	local t = setmetatable({ args = pack(...), state = "ready" }, Task)
	t.co = co_create(function(...)
		t.pending_results = pack(fn(...))
	end)
	by_co[t.co] = t
	nlive = nlive + 1
	live[nlive] = t
	make_ready(t)
	return t
end

--- task:status() -> state
-- `"ready"`, `"waiting"`, `"done"`, `"failed"` or `"cancelled"`.
function Task:status()
	if self.finished then return self.state end
	if self.wait then return "waiting" end
	return "ready"
end

function Task:__tostring()
	return "bedrock.async.Task (" .. self:status() .. ")"
end

local tick -- forward

local function results_of(t)
	if t.state == "done" then return unpack(t.results, 1, t.results.n) end
	if t.state == "cancelled" then error(cancelled_error(), 0) end
	raise_task_error(t)
end

--- task:await([seconds]) -> ...
-- The task's results, or raises its error (an error object gets `err.traceback`; a string
-- error is followed by the task's traceback): `Cancelled` when it was cancelled, a
-- `Timeout` with `which = "task"` when `seconds` passed first (the task runs on). Inside a
-- task it yields; outside it drives the scheduler until the task ends.
function Task:await(seconds)
	if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds < 0) then
		error(errors.new{ code = "ValidationError", field = "seconds", message = "must be a number >= 0" }, 2)
	end
	local deadline = seconds and monotonic() + seconds or nil
	local me = current()
	if me == self then
		error(errors.new{ code = "ValidationError", field = "task", message = "a task cannot await itself" }, 2)
	end
	while not self.finished do
		if deadline and monotonic() >= deadline then
			error(errors.new{ code = "Timeout", which = "task", retryable = false,
				message = "task did not finish within " .. tostring(seconds) .. " s" }, 2)
		end
		if me then
			suspend("join", self, deadline)
		else
			local left = deadline and (deadline - monotonic()) * 1000 or SLICE_MS
			if left > SLICE_MS then left = SLICE_MS end
			if left < 0 then left = 0 end
			if tick(left, self) == "stuck" and not self.finished then
				error(errors.new{ code = "ValidationError", field = "task",
					message = "deadlock: the awaited task waits for something no task or transfer will bring" }, 2)
			end
		end
	end
	return results_of(self)
end

--- task:cancel() -> boolean
-- `true` when the task was still running. Its transfers are closed, then it is
-- resumed with a Cancelled error raised at its wait (so its cleanup runs); its await
-- raises Cancelled. Cancelling the running task raises Cancelled at once.
function Task:cancel()
	if self.finished then return false end
	self.cancelled = true
	for x in pairs(self.transfers or {}) do x:close() end
	self.transfers = nil
	if current() == self then error(cancelled_error(), 2) end
	if not self.started then
		finish(self, "cancelled")
		return true
	end
	-- resume it (a few times at most) so that its wait raises and its code unwinds
	for _ = 1, 8 do
		if self.finished then break end
		self.queued = false
		self.wait = nil
		after_resume(self, co_resume(self.co, CANCEL))
		if self.queued then
			for i = #ready, 1, -1 do if ready[i] == self then table.remove(ready, i) end end
			self.queued = false
		end
	end
	if not self.finished then finish(self, "cancelled") end
	self.state = "cancelled"
	return true
end

--- async.run(fn, ...) -> ...
-- Runs `fn(...)` as a task and drives every task and transfer until it ends (other tasks
-- keep their state for later steps); returns its results or raises its error. Inside a
-- task it is `spawn` + `await`.
function M.run(fn, ...)
	local t = M.spawn(fn, ...)
	return t:await()
end

--- async.sleep(seconds)
-- Inside a task: yields for that long (`0`: lets the others run). Outside: blocks.
function M.sleep(seconds)
	if type(seconds) ~= "number" or seconds ~= seconds then
		error(errors.new{ code = "ValidationError", field = "seconds", message = "must be a number" }, 2)
	end
	if current() then
		if seconds <= 0 then return suspend("pass") end
		return suspend("sleep", monotonic() + seconds)
	end
	if seconds > 0 then core.sleep(seconds) end
end

--- async.wrap(fn) -> function
-- Like `coroutine.wrap`, but waits of the library inside it (when called from a
-- task) go up to the scheduler instead of to the caller of the wrapped function.
function M.wrap(fn)
	local co = co_create(fn)
	local function pass(ok, ...)
		if not ok then error((...), 0) end
		if co_status(co) == "suspended" and (...) == POLL then
			return pass(co_resume(co, co_yield(...)))
		end
		return ...
	end
	return function(...)
		by_co[co] = current()
		return pass(co_resume(co, ...))
	end
end

------------------------------------------------------------------------------ backend

-- Waits of the library. `current()`: the running task or nil (nil: block as usual).
-- `wait_io(transport, progress)`: the running task waits until `progress()` is true
-- (checked after each step of the transports), or for the next pass when progress is
-- nil. `sleep(seconds)`. `track(x)`: x (with :close()) belongs to the running task and is
-- closed when it is cancelled. `spawn(fn, ...)`: a task with :await() and :cancel().
M.backend = {
	current = current,
	spawn = M.spawn,
	wait_io = function(transport, progress) return suspend("io", transport, progress) end,
	sleep = M.sleep,
	-- (the task through backend.current: inside nginx, that is the light thread's task)
	track = function(x)
		local t = M.backend.current()
		if not t then return end
		local tr = t.transfers
		if not tr then
			tr = setmetatable({}, { __mode = "k" })
			t.transfers = tr
		end
		tr[x] = true
	end,
}

-- Inside nginx's Lua module, tasks are nginx light threads where nginx can run them
-- (bedrock.async.ngx), the scheduler here everywhere else.
do
	local n = rawget(_G, "ngx")
	if type(n) == "table" and type(n.thread) == "table" and type(n.get_phase) == "function" then
		require("bedrock.async.ngx").install(M)
	end
end

------------------------------------------------------------------------------ the pump

local function multis()
	local list, n = {}, 0
	for tr in pairs(drivers) do
		local m = tr.multi
		if m then n = n + 1; list[n] = m else drivers[tr] = nil end
	end
	return list, n
end

local pollset -- core.http_pollset(), made by the first async.pollfd()

local function sync_pollset()
	if pollset then pollset:sync((multis())) end
end

local function drive()
	for tr in pairs(drivers) do
		local m = tr.multi
		if m then m:step(0) else drivers[tr] = nil end
	end
end

-- Moves waiting tasks whose condition holds to the ready queue.
local function wake(now)
	for i = 1, nlive do
		local t = live[i]
		local w = t and t.wait
		if w and not t.queued then
			if w.pass then
				make_ready(t)
			elseif w.io then
				local p = w.progress
				if not p or p() then make_ready(t) end
			elseif w.deadline and now >= w.deadline then
				make_ready(t)
			end
		end
	end
end

-- Milliseconds until something is due without fd activity (nil: nothing timed).
local function next_due_ms(now)
	local best = huge
	for i = 1, nlive do
		local w = live[i].wait
		if w then
			if w.pass or (w.io and not w.progress) then return 0 end
			if w.deadline then
				local d = (w.deadline - now) * 1000
				if d < best then best = d end
			end
		end
	end
	for tr in pairs(drivers) do
		local m = tr.multi
		local d = m and m:timeout()
		if d and d < best then best = d end
	end
	if best == huge then return nil end
	return best < 0 and 0 or best
end

local function run_ready()
	local i = 1
	while i <= #ready do
		local t = ready[i]
		i = i + 1
		if t.queued and not t.finished then resume(t) end
	end
	for k = #ready, 1, -1 do ready[k] = nil end
end

-- One pass: run what is ready, step the transports, wake and run; then, if nothing is
-- ready, wait up to wait_ms on the sockets and timers, and step again. Returns "stuck"
-- when there was nothing at all to wait for while `watch` (a task) was unfinished.
tick = function(wait_ms, watch)
	if running_step then
		error(errors.new{ code = "ValidationError", field = "step",
			message = "bedrock.async is already stepping (step/await/run outside a task, from inside one)" }, 3)
	end
	running_step = true
	local ok, res = pcall(function()
		run_ready()
		drive()
		wake(monotonic())
		if #ready > 0 then run_ready(); return end
		if wait_ms <= 0 then return end
		local due = next_due_ms(monotonic())
		local ms, n = multis()
		local fds = 0
		for i = 1, n do fds = fds + #ms[i]:fds() end
		if due == nil and fds == 0 then
			if watch and not watch.finished then return "stuck" end
			return
		end
		if due and due < wait_ms then wait_ms = due end
		if wait_ms > 0 then http_poll(ms, wait_ms) end
		drive()
		wake(monotonic())
		run_ready()
	end)
	running_step = false
	if not ok then error(res, 0) end
	if pollset then sync_pollset() end
	return res
end

--- async.step([timeout_ms]) -> live
-- One pass: runs the ready tasks, advances every transfer, wakes the tasks whose data
-- arrived; returns the number of live tasks (a frame loop's pump). Waits at most timeout_ms (default 0: never
-- blocks) for the sockets and timers of the tasks' transfers, sleeps and awaits.
function M.step(timeout_ms)
	if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or timeout_ms ~= timeout_ms or timeout_ms < 0) then
		error(errors.new{ code = "ValidationError", field = "timeout_ms", message = "must be a number >= 0" }, 2)
	end
	if current() then
		error(errors.new{ code = "ValidationError", field = "step",
			message = "async.step is for the host loop; inside a task, await or sleep" }, 2)
	end
	tick(timeout_ms or 0)
	return nlive
end

--- async.count() -> live
-- The number of live (unfinished) tasks.
function M.count() return nlive end

--- async.fds() -> list
-- What the scheduler waits on, for a host event loop: `{ { fd, "r" | "w" | "rw" }, … }`, the
-- sockets with curl's interest, exact after each `step` (curl may reuse a number for a
-- new socket: watch the list as a whole).
function M.fds()
	local out, n = {}, 0
	local ms, nm = multis()
	for i = 1, nm do
		for _, p in ipairs(ms[i]:fds()) do n = n + 1; out[n] = p end
	end
	return out
end

--- async.pollfd() -> fd | nil, err
-- cqueues' pollable protocol (`cqueues.poll(async)`, or any loop that takes one fd per
-- source): pollfd() is a descriptor that is readable when one of the scheduler's sockets
-- is ready (Linux epoll; it follows the sockets after every step), events() is "r", and
-- timeout() below is the third method. nil, err where the system has no epoll.
function M.pollfd()
	if not pollset then
		local ps, msg = core.http_pollset()
		if not ps then return nil, errors.new{ code = "NotSupported", message = msg } end
		pollset = ps
	end
	sync_pollset()
	return pollset:fd()
end

--- async.events() -> "r"
-- The pollable protocol's second method.
function M.events() return "r" end

--- async.timeout() -> seconds | nil
-- Seconds until async.step should run even without socket activity (0: now; nil: no
-- timer pending, wait for the sockets alone).
function M.timeout()
	if #ready > 0 then return 0 end
	local d = next_due_ms(monotonic())
	return d and d / 1000 or nil
end

M.POLL = POLL
M.Task = Task
return M
