-- The documentation is read on its own (a rock, a checkout): it must not send readers to
-- files or tickets that are not in the repository.
local helper = require "spec.helper"

local function doc_files()
	local files = { "README.md", "bench/README.md" }
	for _, dir in ipairs{ "docs", "examples" } do
		for _, name in ipairs(helper.ls(dir)) do files[#files + 1] = dir .. "/" .. name end
	end
	return files
end

-- Citations of material that only exists outside the repository.
local FORBIDDEN = {
	{ "DESIGN%.md", "DESIGN.md" },
	{ "STYLE%.md", "STYLE.md" },
	{ "[Rr]eference%s*%(?§", "the reference §N" },
	{ "%f[%w][Rr]eference'?s? §", "the reference §N" },
	{ "%(§%d", "a bare §N" },
	{ "[Ii]ssues? #%d", "issue #N" },
	{ "[Ll]ater issue", "a later issue" },
	{ "[Ee]arlier issue", "an earlier issue" },
}

describe("documentation", function()
	it("stands on its own: no citation of files or tickets outside the repository", function()
		local found = {}
		for _, f in ipairs(doc_files()) do
			local n = 0
			for line in (helper.read(f) .. "\n"):gmatch("([^\n]*)\n") do
				n = n + 1
				for _, pat in ipairs(FORBIDDEN) do
					-- curl's own tracker is public: citing it is fine
					if line:find(pat[1]) and not line:find("curl issue #", 1, true) then
						found[#found + 1] = f .. ":" .. n .. ": " .. pat[2] .. ": " .. line
					end
				end
			end
		end
		assert(#found == 0, table.concat(found, "\n"))
	end)
end)
