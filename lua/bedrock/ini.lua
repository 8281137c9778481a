-- The INI dialect of the AWS shared config and credentials files, read exactly as
-- botocore reads them (Python's RawConfigParser + botocore's configloader):
--
--   * full-line comments start with `#` or `;` (after leading blanks); there are no
--     inline comments: `region = us-east-1 # x` has the value "us-east-1 # x";
--   * `key = value` or `key: value`, split at the first `=` or `:`; keys are lower-cased,
--     section names are kept as written; values are stripped;
--   * a line indented deeper than the option line before it continues that value
--     (comment lines inside do not end it); a value that starts on the line after
--     its key (`s3 =` then indented `key = value` lines) is a nested sub-section;
--   * a section or an option given twice in one file is an error, as is a line before
--     the first section or a line that is neither a section, an option nor a comment;
--   * the options of a `[DEFAULT]` section appear in every other section (configparser).
--
-- parse(text, path) -> sections | nil, err, where sections is the raw file:
--   { [section name] = { [key] = "value" | { [subkey] = "value" } } }, every key a section
--   name (any name: `[_order]` is a section like another);
-- meta(sections) -> { order = {names in file order}, lines = { [name] = { [key] = line } },
--   path = } (kept beside the table, not in it)
-- config(raw) -> { profiles =, sso_sessions =, services = } (the config file's view:
--   `[profile x]`, `[default]`, `[sso-session x]`, `[services x]`)
-- credentials(raw) -> { profiles = } (the credentials file's view: `[x]` is profile x)
-- read(path, kind) -> view | nil (no such file) | nil, err (unreadable or broken)
local errors = require "bedrock.errors"

local _M = { _VERSION = "0.1.0" }

-- sections table -> its metadata (weak keys: it goes with the table)
local meta_of = setmetatable({}, { __mode = "k" })
function _M.meta(raw)
	return meta_of[raw]
end

local type, tostring, ipairs = type, tostring, ipairs
local concat = table.concat
local byte, sub, find = string.byte, string.sub, string.find

local function parse_error(path, lineno, msg)
	return nil, errors.make("ConfigError", tostring(path or "<string>") .. ":" .. lineno .. ": " .. msg,
		{ file = path, line = lineno })
end

-- Blanks (Lua's %s) trimmed in linear time: a pattern such as "%s+$" retries at every
-- blank of a long run inside the text, which is quadratic in the length of the run.
local function rstrip(s)
	local j = #s
	while j > 0 do
		local b = byte(s, j)
		if b ~= 32 and (b < 9 or b > 13) then break end
		j = j - 1
	end
	return sub(s, 1, j)
end

local function strip(s)
	local i = find(s, "[^%s]")
	if not i then return "" end
	return rstrip(sub(s, i))
end
_M.strip = strip

-- botocore's _parse_nested: each non-blank line is `key = value`.
local function parse_nested(value)
	local t = {}
	for line in (value .. "\n"):gmatch("([^\n]*)\n") do
		line = strip(line)
		if line ~= "" then
			local k, v = line:match("^([^=]*)=(.*)$")
			if not k then return nil, "sub-section line without '=': " .. line end
			t[strip(k)] = strip(v)
		end
	end
	return t
end

function _M.parse(text, path)
	if type(text) ~= "string" then return parse_error(path, 0, "not a string") end
	if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end
	local sections, order = {}, {}
	local cur, curname, optname, optline
	local raw = {}       -- [section] = { [opt] = { lines } }
	local indent_level = 0
	local lineno = 0
	text = text:gsub("\r\n", "\n"):gsub("\r", "\n")
	if text:sub(-1) ~= "\n" then text = text .. "\n" end
	local optlines = {}  -- [section][opt] = line number of the option
	local defaults = {}
	for line in text:gmatch("([^\n]*)\n") do
		lineno = lineno + 1
		local value = strip(line)
		local is_comment = value:sub(1, 1) == "#" or value:sub(1, 1) == ";"
		if is_comment then value = "" end
		if value == "" then
			-- a blank line inside a value is kept (trailing ones are dropped at the end)
			if not is_comment and cur and optname then
				local l = raw[curname][optname]
				l[#l + 1] = ""
			end
		else
			local indent = #line:match("^%s*")
			if cur and optname and indent > indent_level then
				local l = raw[curname][optname]
				l[#l + 1] = value
			else
				indent_level = indent
				local header = value:match("^%[(.+)%]")
				if header == "DEFAULT" then
					-- Python's configparser: [DEFAULT] holds defaults for every section
					cur, curname, optname = defaults, header, nil
					raw[header] = raw[header] or {}
					optlines[header] = optlines[header] or {}
				elseif header then
					if sections[header] then
						return parse_error(path, lineno, "section [" .. header .. "] appears twice")
					end
					cur, curname, optname = {}, header, nil
					sections[header] = cur
					raw[header], optlines[header] = {}, {}
					order[#order + 1] = header
				elseif not cur then
					return parse_error(path, lineno, "a line before the first [section]")
				else
					-- split at the first '=' or ':' (a plain find: linear in the line)
					local eq = find(value, "[=:]")
					local k, v
					if eq then k, v = strip(sub(value, 1, eq - 1)), strip(sub(value, eq + 1)) end
					if not k or k == "" then
						return parse_error(path, lineno, "expected 'key = value', a [section] or a comment")
					end
					k = strip(k):lower()
					if raw[curname][k] then
						return parse_error(path, lineno, "option '" .. k .. "' appears twice in [" ..
							curname .. "] (first on line " .. optlines[curname][k] .. ")")
					end
					raw[curname][k] = { strip(v) }
					optlines[curname][k] = lineno
					optname, optline = k, lineno
				end
			end
		end
	end
	local _ = optline
	local names = { "DEFAULT" }
	for i = 1, #order do names[i + 1] = order[i] end
	for _, name in ipairs(names) do
		local s = name == "DEFAULT" and defaults or sections[name]
		for k, lines in pairs(raw[name] or {}) do
			local v = rstrip(concat(lines, "\n"))
			if v:sub(1, 1) == "\n" then
				local t, err = parse_nested(v)
				if not t then return parse_error(path, optlines[name][k], err) end
				s[k] = t
			else
				s[k] = v
			end
		end
	end
	for _, name in ipairs(order) do
		local s = sections[name]
		for k, v in pairs(defaults) do
			if s[k] == nil then s[k] = v; optlines[name][k] = optlines.DEFAULT[k] end
		end
	end
	meta_of[sections] = { order = order, lines = optlines, path = path }
	return sections
end

-- shlex.split for section names: whitespace-separated words, '…' and "…" quoting,
-- backslash escapes outside single quotes. nil when a quote is not closed.
local function shlex_split(s)
	local words, cur, i, n, inword = {}, {}, 1, #s, false
	while i <= n do
		local c = s:sub(i, i)
		if c:match("%s") then
			if inword then words[#words + 1] = concat(cur); cur = {}; inword = false end
		elseif c == "'" then
			local j = s:find("'", i + 1, true)
			if not j then return nil end
			cur[#cur + 1] = s:sub(i + 1, j - 1); inword = true; i = j
		elseif c == '"' then
			local j = i + 1
			inword = true
			while true do
				if j > n then return nil end
				local d = s:sub(j, j)
				if d == '"' then break end
				if d == "\\" and j < n and s:sub(j + 1, j + 1):match('["\\$`\n]') then
					j = j + 1; d = s:sub(j, j)
				end
				cur[#cur + 1] = d
				j = j + 1
			end
			i = j
		elseif c == "\\" then
			if i == n then return nil end
			cur[#cur + 1] = s:sub(i + 1, i + 1); inword = true; i = i + 1
		else
			cur[#cur + 1] = c; inword = true
		end
		i = i + 1
	end
	if inword then words[#words + 1] = concat(cur) end
	return words
end
_M.shlex_split = shlex_split

-- botocore's _parse_section: "profile x" -> "x" (exactly two words), else nothing.
local function second_word(key)
	local parts = shlex_split(key)
	if parts and #parts == 2 then return parts[2] end
	return nil
end

local function attach_lines(view, raw, kind)
	local m = meta_of[raw]
	view.path = m.path
	view.lines = {}
	for _, name in ipairs(m.order) do view.lines[name] = m.lines[name] end
	view.kind = kind
	return view
end

function _M.config(raw)
	local profiles, sso_sessions, services = {}, {}, {}
	local where = {}
	for _, key in ipairs(meta_of[raw].order) do
		local values = raw[key]
		if key:sub(1, 7) == "profile" then
			local name = second_word(key)
			if name then profiles[name] = values; where[name] = key end
		elseif key:sub(1, 11) == "sso-session" then
			local name = second_word(key)
			if name then sso_sessions[name] = values end
		elseif key:sub(1, 8) == "services" then
			local name = second_word(key)
			if name then services[name] = values end
		elseif key == "default" then
			profiles.default = values; where.default = key
		end
	end
	local view = attach_lines({ profiles = profiles, sso_sessions = sso_sessions, services = services,
		section_of = where }, raw, "config")
	return view
end

function _M.credentials(raw)
	local profiles, where = {}, {}
	for _, key in ipairs(meta_of[raw].order) do profiles[key] = raw[key]; where[key] = key end
	return attach_lines({ profiles = profiles, sso_sessions = {}, services = {}, section_of = where },
		raw, "credentials")
end

-- The line where `key` of profile `name` is written, for error messages: "path:line".
function _M.where(view, name, key)
	if not view or not view.path then return nil end
	local sec = view.section_of and view.section_of[name]
	local line = sec and view.lines[sec] and view.lines[sec][key]
	if line then return view.path .. ":" .. line end
	return view.path
end

function _M.read(path, kind)
	local f = io.open(path, "rb")
	if not f then return nil end
	local text, rerr = f:read("*a")
	f:close()
	if not text then
		-- a directory opens but does not read: botocore ignores what is not a file
		local _ = rerr
		return nil
	end
	local raw, err = _M.parse(text, path)
	if not raw then return nil, err end
	meta_of[raw].path = path
	if kind == "credentials" then return _M.credentials(raw) end
	return _M.config(raw)
end

return _M
