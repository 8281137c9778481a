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

	it("says what it supports and where it comes from", function()
		assert.same({ "lua >= 5.1, ~= 5.2, ~= 5.3", "lua-cjson" }, spec.dependencies)
		assert.equal("git+https://github.com/lua-bedrock/lua-bedrock.git", spec.source.url)
		assert.is_nil(spec.source.tag)
		assert.equal("Apache-2.0", spec.description.license)
		local license = helper.read("LICENSE")
		assert.truthy(license:find("Apache License\n%s*Version 2.0, January 2004"))
		assert.truthy(license:find("END OF TERMS AND CONDITIONS", 1, true))
		assert.truthy(spec.description.detailed:find("Lua 5.4 and LuaJIT 2.1", 1, true))
	end)

	-- The command the install guide (docs/install.md) gives for an offline install (with
	-- Debian's lua-cjson), for the running Lua; installed into a temporary tree.
	local function readme_command()
		local want = helper.lua_name == "luajit" and "%-%-lua%-version=5%.1" or "%-%-lua%-version=5%.4"
		for line in helper.read("docs/install.md"):gmatch("[^\n]+") do
			if line:find("^luarocks ") and line:find(want) and line:find("--deps-mode=none", 1, true) then
				return line
			end
		end
		error("docs/install.md has no offline luarocks line for " .. helper.lua_name)
	end

	local function has_luarocks()
		local ok = os.execute("command -v luarocks >/dev/null 2>&1")
		return ok == true or ok == 0
	end

	it("installs with the install guide's `luarocks make` line into a local tree and loads there", function()
		if not has_luarocks() then
			pending("luarocks is not installed")
			return
		end
		local tree = os.tmpname()
		os.remove(tree)
		local luaver = helper.lua_name == "luajit" and "5.1" or "5.4"
		local ok = os.execute(("%s --tree=%s >%s.log 2>&1"):format(readme_command(), tree, tree))
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

	it("refuses PUC Lua 5.1 at build time, saying what is supported", function()
		if not has_luarocks() or not helper.exists("/usr/include/lua5.1/lua.h") then
			pending("needs luarocks and PUC Lua 5.1's headers (liblua5.1-0-dev)")
			return
		end
		local tree = os.tmpname()
		os.remove(tree)
		local p = assert(io.popen(("luarocks --lua-version=5.1 make --deps-mode=none %s --tree=%s LUA_INCDIR=/usr/include/lua5.1 2>&1; echo \"rc=$?\"")
			:format(ROCKSPEC, tree)))
		local out = p:read("*a")
		p:close()
		os.execute("rm -rf " .. helper.shell_quote(tree))
		assert.matches("rc=[1-9]", out)
		assert.truthy(out:find("lua-bedrock supports Lua 5.4 and LuaJIT 2.1", 1, true), out)
	end)
end)
