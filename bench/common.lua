-- Shared by the Lua benchmarks: module paths for the running interpreter, a wall clock,
-- medians, the figures recorded earlier in the same run, and output helpers.
-- Runs unchanged on Lua 5.4 and LuaJIT.
local M = {}

local is_jit = type(rawget(_G, "jit")) == "table"
M.lua_name = is_jit and "luajit" or "lua5.4"
M.lua_label = is_jit and "luajit" or "lua54"

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
M.bench_dir = here
M.root = here .. "/.."
package.cpath = M.root .. "/build/" .. M.lua_name .. "/?.so;" ..
	here .. "/out/" .. M.lua_name .. "/?.so;" .. package.cpath
package.path = M.root .. "/lua/?.lua;" .. M.root .. "/lua/?/init.lua;" .. package.path

local util = require "benchutil"
M.now = util.now
M.zcrc32 = util.zcrc32

function M.median(t)
	local s = {}
	for i = 1, #t do s[i] = t[i] end
	table.sort(s)
	local n = #s
	if n == 0 then return 0 end
	if n % 2 == 1 then return s[(n + 1) / 2] end
	return (s[n / 2] + s[n / 2 + 1]) / 2
end

-- Runs f() `passes` times after one warm-up call; returns the median of the seconds each
-- call took and the last call's result.
function M.passes(passes, f)
	local t, r = {}, f()
	for i = 1, passes do
		local t0 = M.now()
		r = f()
		t[i] = M.now() - t0
	end
	return M.median(t), r
end

function M.read(path)
	local f = io.open(path, "rb")
	if not f then return nil end
	local s = f:read("*a")
	f:close()
	return s
end

-- Figures recorded by the C benchmarks of this run ($BENCH_FIGURES: "key value" lines).
function M.figures()
	local t = {}
	local path = os.getenv("BENCH_FIGURES")
	local s = path and M.read(path)
	if s then
		for k, v in s:gmatch("(%S+) (%S+)\n") do t[k] = tonumber(v) end
	end
	return t
end

function M.record(key, value)
	local path = os.getenv("BENCH_FIGURES")
	local f = path and io.open(path, "a")
	if f then
		f:write(key, " ", string.format("%.9g", value), "\n")
		f:close()
	end
end

function M.rss_kb(field)
	local s = M.read("/proc/self/status") or ""
	return tonumber(s:match((field or "VmRSS") .. ":%s*(%d+)")) or 0
end

function M.printf(fmt, ...)
	io.write(string.format(fmt, ...), "\n")
	io.stdout:flush()
end

function M.verdict(ok)
	return ok and "PASS" or "MISSED"
end

-- Loads bedrock.core; returns it, or nil and the reason.
function M.core()
	local ok, core = pcall(require, "bedrock.core")
	if not ok then return nil, tostring(core):match("^[^\n]*") end
	return core
end

return M
