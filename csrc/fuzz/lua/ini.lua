-- Fuzz entry: the shared config/credentials INI reader (bedrock.ini). The input is the
-- file's text. Contract: parse returns the sections table or nil and a ConfigError
-- naming a line within the text; sections map names to tables whose keys are
-- lower-case strings and whose values are strings (stripped, no leading blank) or
-- tables of string -> string (nested sub-sections); ini.meta(sections).order lists every section
-- name once; the config and credentials views and shlex_split hold their shapes too.
local ini = require "bedrock.ini"
local F = require "fuzzlib"
local check = F.check

local CODES = { ConfigError = true }

local function check_section(name, s)
	check(type(s) == "table", "section %q is not a table", name)
	for k, v in pairs(s) do
		check(type(k) == "string" and k ~= "", "section %q: a key that is not a string", name)
		check(k == k:lower(), "section %q: key %q is not lower-case", name, k)
		if type(v) == "string" then
			check(not v:find("^%s"), "section %q: value of %q starts with a blank", name, k)
			check(not v:find("%s$"), "section %q: value of %q ends with a blank", name, k)
		elseif type(v) == "table" then
			for sk, sv in pairs(v) do
				check(type(sk) == "string" and type(sv) == "string",
					"section %q: sub-section %q holds a non-string", name, k)
				check(not sk:find("[\n=]"), "section %q: sub-key %q holds a line break or '='", name, sk)
			end
		else
			F.fail("section %q: value of %q is a %s", name, k, type(v))
		end
	end
end

local function check_view(view, kind)
	check(type(view) == "table" and view.kind == kind, "%s view malformed", kind)
	for _, set in ipairs{ "profiles", "sso_sessions", "services" } do
		check(type(view[set]) == "table", "%s view: %s missing", kind, set)
		for name, s in pairs(view[set]) do
			check(type(name) == "string", "%s view: %s name not a string", kind, set)
			check_section(name, s)
		end
	end
	for name in pairs(view.profiles) do
		local w = ini.where(view, name, "region")
		check(w == nil or type(w) == "string", "where() returned a %s", type(w))
	end
end

return function(data)
	local nlines = select(2, data:gsub("\n", "")) + select(2, data:gsub("\r", "")) + 1
	local raw, err = ini.parse(data, "fuzz.ini")
	if raw == nil then
		F.error_object(err, CODES, "ini.parse")
		check(type(err.line) == "number" and err.line >= 0 and err.line <= nlines,
			"error line %s outside the text (%d lines)", tostring(err.line), nlines)
	else
		local meta = ini.meta(raw)
		check(type(raw) == "table" and type(meta) == "table" and type(meta.order) == "table",
			"parse returned no metadata")
		local seen = {}
		for _, name in ipairs(meta.order) do
			check(type(name) == "string" and name ~= "", "a section name that is not a string")
			check(not seen[name], "section %q listed twice in _order", name)
			seen[name] = true
			check_section(name, raw[name])
		end
		for k in pairs(raw) do
			check(seen[k], "section %q missing from the order", tostring(k))
		end
		meta.path = "fuzz.ini"
		check_view(ini.config(raw), "config")
		check_view(ini.credentials(raw), "credentials")
	end
	-- a first line as a credential_process command line
	local words = ini.shlex_split(data:match("^[^\n]*"))
	if words ~= nil then
		check(type(words) == "table", "shlex_split returned a %s", type(words))
		for _, w in ipairs(words) do check(type(w) == "string", "shlex_split: a word that is not a string") end
	end
end
