-- The README's two commands are a newcomer's way in: each must work on its own on a fresh
-- machine, so each runs the project's install step (.ci/install-deps) before building.
-- `make -n` with MAKE=true prints the recipes in order without building anything.
local function recipes(target)
	local p = assert(io.popen("make -n MAKE=true " .. target .. " 2>&1"))
	local out = p:read("*a")
	p:close()
	return out
end

describe("make targets a newcomer runs", function()
	for _, target in ipairs{ "demo", "test" } do
		it("`make " .. target .. "` installs the dependencies before it builds", function()
			local out = recipes(target)
			local deps = out:find(".ci/install-deps", 1, true)
			local build = out:find("LUA=lua5.4 all", 1, true)
			assert(deps, "make " .. target .. " does not run .ci/install-deps:\n" .. out)
			assert(build, "make " .. target .. " does not build:\n" .. out)
			assert.is_true(deps < build)
		end)
	end
end)
