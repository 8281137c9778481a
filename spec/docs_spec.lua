-- The documentation is read on its own (a rock, a checkout): it must not send readers to
-- files or tickets that are not in the repository.
local helper = require "spec.helper"

local function doc_files()
	local files = { "README.md", "bench/README.md", "CONTRIBUTING.md" }
	-- examples/ has folders of its own (examples/nginx): their files too
	for _, dir in ipairs{ "docs", "examples", "examples/nginx" } do
		for _, name in ipairs(helper.ls(dir)) do
			local path = dir .. "/" .. name
			local f = io.open(path, "rb")
			local is_file = f and f:read(0) ~= nil
			if f then f:close() end
			if is_file then files[#files + 1] = path end
		end
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

-- Relative links between the documents lead somewhere: the file exists, and an anchor
-- names a heading of it (GitHub's slugs: lower case, punctuation dropped, spaces as -).
describe("documentation links", function()
	local function slug(h)
		return (h:gsub("^%s+", ""):gsub("%s+$", ""):lower():gsub("[^%w%- _]", ""):gsub(" ", "-"))
	end
	local function headings(path)
		local set, code = {}, false
		for line in (helper.read(path) .. "\n"):gmatch("([^\n]*)\n") do
			if line:find("^```") then code = not code end
			local h = not code and line:match("^#+%s+(.*)$")
			if h then set[slug(h)] = true end
		end
		return set
	end
	local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end
	local function normalize(p)
		local parts = {}
		for seg in p:gmatch("[^/]+") do
			if seg == ".." and #parts > 0 and parts[#parts] ~= ".." then parts[#parts] = nil
			elseif seg ~= "." then parts[#parts + 1] = seg end
		end
		return table.concat(parts, "/")
	end

	it("point at files and headings that exist", function()
		local bad = {}
		for _, f in ipairs(doc_files()) do
			if f:find("%.md$") then
				for target in helper.read(f):gmatch("%]%(([^)%s]+)%)") do
					if not target:find("^%a+:") then
						local path, anchor = target:match("^([^#]*)#?(.*)$")
						local resolved = path == "" and f or normalize(dirname(f) .. "/" .. path)
						if not helper.exists(resolved) then
							bad[#bad + 1] = f .. ": " .. target .. " (no file " .. resolved .. ")"
						elseif anchor ~= "" and resolved:find("%.md$") and not headings(resolved)[anchor] then
							bad[#bad + 1] = f .. ": " .. target .. " (no heading #" .. anchor .. ")"
						end
					end
				end
			end
		end
		assert(#bad == 0, table.concat(bad, "\n"))
	end)
end)

-- Every ```lua block of README.md and docs/*.md runs as written, in a child lua5.4 or
-- luajit process, against a real emulator that the environment points the client at
-- (AWS_ENDPOINT_URL_BEDROCK_RUNTIME, access keys, region), unless the line right before
-- its fence is the marker <!-- fragment --> (an excerpt: API listings, placeholders).
local FRAGMENT = "<!-- fragment -->"

local function lua_blocks(file)
	local blocks, cur, prev = {}, nil, ""
	local n = 0
	for line in (helper.read(file) .. "\n"):gmatch("([^\n]*)\n") do
		n = n + 1
		if cur then
			if line:find("^%s*```%s*$") then
				blocks[#blocks + 1] = cur
				cur = nil
			else
				cur.lines[#cur.lines + 1] = line
			end
		elseif line:find("^%s*```%s*lua%s*$") then
			cur = { file = file, line = n, lines = {}, fragment = prev:find(FRAGMENT, 1, true) ~= nil }
		end
		if not cur or #cur.lines == 0 then prev = line end
	end
	return blocks
end

local function snippet_files()
	local files = { "README.md" }
	for _, name in ipairs(helper.ls("docs")) do
		if name:find("%.md$") then files[#files + 1] = "docs/" .. name end
	end
	return files
end

describe("documentation snippets", function()
	local blocks = {}
	for _, f in ipairs(snippet_files()) do
		for _, b in ipairs(lua_blocks(f)) do blocks[#blocks + 1] = b end
	end

	it("are found (the extractor sees the README's headline snippet)", function()
		assert.is_true(#blocks >= 5)
		assert.equal("README.md", blocks[1].file)
		assert.is_false(blocks[1].fragment)
		-- the README's streaming example is short enough to read at a glance
		assert.is_true(#blocks[1].lines <= 10, "README's first snippet has " .. #blocks[1].lines .. " lines")
	end)

	it("marks a block as a fragment only with the marker on the line before its fence", function()
		local tmp = os.tmpname()
		local f = assert(io.open(tmp, "wb"))
		f:write("text\n<!-- fragment -->\n```lua\nx = 1\n```\n\n```lua\ny = 2\n```\n<!-- fragment -->\n\n```lua\nz = 3\n```\n")
		f:close()
		local got = lua_blocks(tmp)
		os.remove(tmp)
		assert.equal(3, #got)
		assert.same({ true, false, false }, { got[1].fragment, got[2].fragment, got[3].fragment })
		assert.same({ "x = 1" }, got[1].lines)
	end)

	local have_emulator = helper.exists(helper.emulator_bin)
	local KEY, SECRET = "AKIDSNIPPETS", "snippets-secret"
	local em

	setup(function()
		if have_emulator then em = helper.emulator({ "--key", KEY .. ":" .. SECRET }) end
	end)
	teardown(function()
		if em then em.stop() end
	end)

	local function run(b)
		local file = os.tmpname()
		local f = assert(io.open(file, "wb"))
		f:write(table.concat(b.lines, "\n"), "\n")
		f:close()
		local env = {
			"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" .. em.url,
			"AWS_ACCESS_KEY_ID=" .. KEY, "AWS_SECRET_ACCESS_KEY=" .. SECRET,
			"AWS_REGION=us-east-1",
			-- nothing from this machine's ~/.aws or instance metadata
			"AWS_CONFIG_FILE=/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials",
			"AWS_EC2_METADATA_DISABLED=true",
			"LUA_PATH=" .. helper.shell_quote("./lua/?.lua;./lua/?/init.lua;;"),
			"LUA_CPATH=" .. helper.shell_quote("./" .. helper.build .. "/?.so;;"),
		}
		local cmd = "unset AWS_SESSION_TOKEN AWS_BEARER_TOKEN_BEDROCK AWS_PROFILE AWS_DEFAULT_REGION " ..
			"AWS_ENDPOINT_URL AWS_DEFAULT_PROFILE; " ..
			"env " .. table.concat(env, " ") .. " timeout 120 " .. helper.lua_cmd .. " " ..
			helper.shell_quote(file) .. " </dev/null 2>&1; echo \"rc=$?\""
		local p = assert(io.popen(cmd))
		local out = p:read("*a")
		p:close()
		os.remove(file)
		return out:match("rc=(%d+)%s*$"), out
	end

	it("the README's headline snippet shows the service's error for a bad model id", function()
		if not have_emulator then
			pending("needs build/bin/bedrock-emulator (make)")
			return
		end
		local b = blocks[1]
		local bad = { lines = {} }
		for i, l in ipairs(b.lines) do
			bad.lines[i] = l:gsub("anthropic%.claude%-3%-haiku%-20240307%-v1:0", "no-such-model")
		end
		assert.are_not.same(b.lines, bad.lines)
		local rc, out = run(bad)
		assert.are_not.equal("0", rc)
		assert.matches("ValidationException %(400%): The provided model identifier is invalid", out)
		assert.not_matches("attempt to call", out)
	end)

	for _, b in ipairs(blocks) do
		local name = b.file .. ":" .. b.line
		if b.fragment then
			it(name .. " is marked as a fragment", function()
				assert.is_true(b.fragment)
			end)
		else
			it(name .. " runs as written against the emulator", function()
				if not have_emulator then
					pending("needs build/bin/bedrock-emulator (make)")
					return
				end
				local rc, out = run(b)
				assert(rc == "0", name .. " failed (exit " .. tostring(rc) .. "):\n" .. out ..
					"\n(mark an excerpt with " .. FRAGMENT .. " on the line before its fence)")
			end)
		end
	end
end)
