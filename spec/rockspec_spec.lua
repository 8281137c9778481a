-- The rockspec is the users' way in (luarocks), so it must list exactly what the tree
-- holds, and a local `luarocks make` must give a working install.
local helper = require "spec.helper"

local ROCKSPEC = "rockspec/lua-bedrock-scm-1.rockspec"

local function load_rockspec()
	local env = {}
	local chunk = assert((loadstring or load)(helper.read(ROCKSPEC), "=rockspec", "t", env))
	if setfenv then setfenv(chunk, env) end
	chunk()
	return env
end

local function find(pattern_cmd)
	local p = assert(io.popen(pattern_cmd))
	local t = {}
	for l in p:lines() do t[#t + 1] = l end
	p:close()
	table.sort(t)
	return t
end

describe("rockspec", function()
	local spec = load_rockspec()

	it("builds bedrock.core from every core and binding source", function()
		local got = {}
		for _, s in ipairs(spec.build.modules["bedrock.core"].sources) do got[#got + 1] = s end
		table.sort(got)
		assert.same(find("ls csrc/br_*.c csrc/lua_*.c"), got)
	end)

	it("installs every Lua module under lua/", function()
		local want = {}
		for _, f in ipairs(find("cd lua && find bedrock -name '*.lua'")) do
			local mod = f:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
			want[#want + 1] = mod .. "=lua/" .. f
		end
		table.sort(want)
		local got = {}
		for mod, file in pairs(spec.build.modules) do
			if type(file) == "string" then got[#got + 1] = mod .. "=" .. file end
		end
		table.sort(got)
		assert.same(want, got)
	end)

	it("installs with `luarocks make` into a local tree and loads there", function()
		if os.execute("command -v luarocks >/dev/null 2>&1") ~= true
			and os.execute("command -v luarocks >/dev/null 2>&1") ~= 0 then
			pending("luarocks is not installed")
			return
		end
		local tree = os.tmpname()
		os.remove(tree)
		local luaver = helper.lua_name == "luajit" and "5.1" or "5.4"
		local ok = os.execute(("luarocks --lua-version=%s make %s --tree=%s --deps-mode=none >%s.log 2>&1")
			:format(luaver, ROCKSPEC, tree, tree))
		assert(ok == true or ok == 0, "luarocks make failed:\n" .. (helper.exists(tree .. ".log") and helper.read(tree .. ".log") or ""))
		local lua = helper.lua_name
		local probe = ([[%s -e 'package.path="%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua;"..package.path; package.cpath="%s/lib/lua/%s/?.so;"..package.cpath; local b=require"bedrock"; local c=require"bedrock.core"; assert(package.searchpath("bedrock.core", package.cpath):find("%s",1,true)); io.write(type(b), " ", c._VERSION)']])
			:format(lua, tree, luaver, tree, luaver, tree, luaver, tree)
		local p = assert(io.popen(probe .. " 2>&1"))
		local out = p:read("*a")
		p:close()
		os.execute("rm -rf " .. helper.shell_quote(tree) .. " " .. helper.shell_quote(tree .. ".log"))
		assert.matches("^table %d+%.%d+%.%d+$", out)
	end)
end)
