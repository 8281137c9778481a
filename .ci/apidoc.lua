-- Writes docs/api.md, the API reference, from the sources (what `make apidoc` runs):
--
--   lua5.4 .ci/apidoc.lua [out]        (default out: docs/api.md; "-" for standard output)
--
-- with LUA_PATH/LUA_CPATH finding lua/ and the built bedrock.core. It reads doc comments
-- from the Lua sources (SOURCES below) and the live modules: the operation plans (method,
-- HTTP binding, request/response shapes), the default timeouts, the modeled exceptions.
--
-- Doc comments (a block starts with `---`, goes on with `--` lines, ends at the first
-- line that is not a comment):
--
--   --- client:close()                  an entry: the first line is the call as a user
--   -- Closes the connections.          writes it, the rest its description. The next
--   function Client:close()             code line must define that name (`close`).
--
--   --- @field err.code The AWS ...     a field of a returned table (owner.name)
--   --- @module bedrock.async ...       the introduction of a section
--   --- @operation Converse ...         one line on an operation of the model
--   --- @options client                 the table constructor that follows lists the
--   local known_options = {              options, one a line: `name = ..., -- text`
--     region = true, -- the region       (more `--` lines continue the text above)
--
-- In a description, an empty `--` line starts a new paragraph and a line starting with
-- `- ` a list item. Every public function of the modules in SURFACES must have an entry
-- (or be listed there as internal), and every option table must describe each of its
-- keys: the generator fails otherwise, naming what is missing, and spec/apidoc_spec.lua
-- fails when docs/api.md differs from what it writes.
local M = {}

local format, concat, sort = string.format, table.concat, table.sort

M.SOURCES = {
	"lua/bedrock/init.lua", "lua/bedrock/client.lua", "lua/bedrock/config.lua",
	"lua/bedrock/operations.lua", "lua/bedrock/stream.lua", "lua/bedrock/bidi.lua",
	"lua/bedrock/tools.lua", "lua/bedrock/async.lua", "lua/bedrock/errors.lua",
	"lua/bedrock/json.lua", "lua/bedrock/inspect.lua", "lua/bedrock/transport/curl.lua",
	"lua/bedrock/transport/ngx.lua",
}

local function read(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("*a")
	f:close()
	return s
end

local function lines_of(text)
	local out = {}
	for line in (text .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = line end
	return out
end

-- Does `code` (a line of Lua) define `member`?
local function defines(code, member)
	local m = member:gsub("%p", "%%%0")
	return code:find("^%s*function%s+[%w_]+[.:]" .. m .. "%s*%(") ~= nil
		or code:find("^%s*local%s+function%s+" .. m .. "%s*%(") ~= nil
		or code:find("^%s*[%w_]+%." .. m .. "%s*=") ~= nil
		or code:find("^%s*" .. m .. "%s*=") ~= nil
end

-- parse(text, file) -> { entries = {...}, fields = {...}, modules = {...}, operations = {...},
-- options = {...} } | nil, err. Entries keep their source order.
function M.parse(text, file)
	local doc = { entries = {}, fields = {}, modules = {}, operations = {}, options = {} }
	local lines = lines_of(text)
	local i = 1
	local function fail(n, msg) return nil, format("%s:%d: %s", file, n, msg) end
	while i <= #lines do
		local first = lines[i]:match("^%s*%-%-%-%s(.*)$") or lines[i]:match("^%s*%-%-%-$") and ""
		if not first then
			i = i + 1
		else
			local start = i
			local body = {}
			i = i + 1
			while i <= #lines and lines[i]:find("^%s*%-%-") and not lines[i]:find("^%s*%-%-%-") do
				local l = lines[i]:gsub("^%s*%-%-%s?", "")
				body[#body + 1] = l
				i = i + 1
			end
			local tag, rest = first:match("^@(%w+)%s*(.*)$")
			if tag == "field" or tag == "module" or tag == "operation" then
				local name, text1 = rest:match("^(%S+)%s*(.*)$")
				if not name then return fail(start, "@" .. tag .. " needs a name") end
				if text1 ~= "" then table.insert(body, 1, text1) end
				local e = { name = name, body = body, file = file, line = start }
				if tag == "field" then
					doc.fields[#doc.fields + 1] = e
				elseif tag == "module" then
					doc.modules[name] = e
				else
					doc.operations[name] = e
				end
			elseif tag == "options" then
				local id = rest:match("^(%S+)")
				if not id then return fail(start, "@options needs an id") end
				-- the table constructor that follows: one `key = value, -- text` a line
				if not (lines[i] or ""):find("{%s*$") then
					return fail(i, "@options " .. id .. " must be followed by a table constructor ending the line with {")
				end
				local opts, last = {}, nil
				i = i + 1
				while i <= #lines and not lines[i]:find("^%s*}") do
					local l = lines[i]
					local key, text1 = l:match("^%s*([%a_][%w_]*)%s*=%s*[^-]-,%s*%-%-%s?(.*)$")
					if key then
						last = { name = key, body = { text1 }, line = i }
						opts[#opts + 1] = last
					elseif l:find("^%s*%-%-") and last then
						last.body[#last.body + 1] = (l:gsub("^%s*%-%-%s?", ""))
					elseif l:find("^%s*[%a_][%w_]*%s*=") then
						return fail(i, "option without a description (`name = value, -- text`): " .. l)
					elseif not l:find("^%s*$") then
						return fail(i, "unexpected line in @options " .. id .. ": " .. l)
					end
					i = i + 1
				end
				doc.options[id] = { id = id, list = opts, file = file, line = start }
			elseif tag then
				return fail(start, "unknown doc tag @" .. tag)
			else
				local prefix, sep, member = first:match("^([%a_][%w_]*)([.:])([%a_][%w_]*)")
				if not prefix then
					return fail(start, "a doc entry starts with the call as written (name.f(...) or obj:m(...)): " .. first)
				end
				local code = lines[i] or ""
				while code:find("^%s*$") and i < #lines do i = i + 1; code = lines[i] end
				if not defines(code, member) then
					return fail(start, "the doc entry for " .. prefix .. sep .. member ..
						" is not followed by its definition (next line: " .. code .. ")")
				end
				doc.entries[#doc.entries + 1] = { key = prefix .. sep .. member, prefix = prefix .. sep,
					heading = first, body = body, file = file, line = start }
			end
		end
	end
	return doc
end

-- Merges the docs of every source: nil, err on a parse error or a name given twice.
function M.collect(sources)
	local all = { entries = {}, by_key = {}, fields = {}, modules = {}, operations = {}, options = {} }
	for _, file in ipairs(sources) do
		local d, err = M.parse(read(file), file)
		if not d then return nil, err end
		for _, e in ipairs(d.entries) do
			if all.by_key[e.key] then
				return nil, format("%s:%d: %s is documented twice (also %s:%d)", file, e.line, e.key,
					all.by_key[e.key].file, all.by_key[e.key].line)
			end
			all.by_key[e.key] = e
			all.entries[#all.entries + 1] = e
		end
		for _, f in ipairs(d.fields) do all.fields[#all.fields + 1] = f end
		for k, v in pairs(d.modules) do all.modules[k] = v end
		for k, v in pairs(d.operations) do all.operations[k] = v end
		for k, v in pairs(d.options) do all.options[k] = v end
	end
	return all
end

---------------------------------------------------------------------------- surfaces

-- The public surfaces: every function key (and, with values = true, every key) of each
-- table must have an entry `<prefix><key>`, unless listed as internal.
function M.surfaces()
	local bedrock = require "bedrock"
	local client = require "bedrock.client"
	local async = require "bedrock.async"
	local task = async.spawn(function() end)
	async.run(function() end)
	task:await()
	return {
		{ prefix = "bedrock.", t = bedrock, values = true, internal = { _VERSION = true } },
		{ prefix = "client:", t = client.Client, skip_operations = true,
			internal = { check_self = true } },
		{ prefix = "stream:", t = require("bedrock.stream").Stream },
		{ prefix = "bidi:", t = require("bedrock.bidi").Bidi },
		{ prefix = "async.", t = async, internal = { backend = true } },
		{ prefix = "task:", t = getmetatable(task) },
		{ prefix = "tools.", t = require "bedrock.tools" },
		{ prefix = "errors.", t = require "bedrock.errors",
			internal = { from_http = true, from_event = true, too_large = true, redact = true,
				clean_code = true, request_id = true } },
		{ prefix = "json.", t = require "bedrock.json", values = true,
			internal = { _VERSION = true, array_mt = true, is_marked = true, is_array = true,
				number = true, escape = true, quote = true, encode_into = true, SENTINEL = true,
				decode_raw = true, mark = true, decode_cjson = true } },
		{ prefix = "curl.", t = require "bedrock.transport.curl",
			internal = { bad_limit = true, transfer_error = true } },
		{ prefix = "transport:", t = require("bedrock.transport.curl").Transport },
		{ prefix = "tstream:", t = require("bedrock.transport.curl").Stream },
		{ prefix = "ngxt.", t = require "bedrock.transport.ngx",
			internal = { phase_error = true, parse_url = true, no_proxy_match = true } },
		{ prefix = "ngxtransport:", t = require("bedrock.transport.ngx").Transport },
		{ prefix = "nstream:", t = require("bedrock.transport.ngx").Stream },
	}
end

-- The names a surface exposes that have no entry: a sorted list.
function M.missing(docs, surfaces, operations)
	local miss = {}
	for _, s in ipairs(surfaces) do
		for k, v in pairs(s.t) do
			local public = type(k) == "string" and not k:find("^_") and not (s.internal or {})[k]
			if public and (type(v) == "function" or s.values) then
				local op = s.skip_operations and operations.by_method[k]
				if not op and not docs.by_key[s.prefix .. k] then miss[#miss + 1] = s.prefix .. k end
			end
		end
	end
	sort(miss)
	return miss
end

---------------------------------------------------------------------------- rendering

-- Outside code spans, `<` would start an HTML tag in Markdown: escape it.
local function escape_html(text)
	local out, in_code = {}, false
	for piece, tick in text:gmatch("([^`]*)(`?)") do
		out[#out + 1] = in_code and piece or (piece:gsub("<", "&lt;"))
		out[#out + 1] = tick
		if tick == "`" then in_code = not in_code end
	end
	return concat(out)
end

-- Comment lines -> Markdown: paragraphs joined, `- ` items kept as a list.
local function prose(body)
	local out, para = {}, {}
	local function flush()
		if #para > 0 then out[#out + 1] = concat(para, " ") end
		para = {}
	end
	for _, l in ipairs(body) do
		if l:find("^%s*$") then
			flush()
			if out[#out] ~= "" then out[#out + 1] = "" end
		elseif l:find("^%s*%- ") then
			flush()
			para[1] = l:gsub("^%s*", "")
		else
			para[#para + 1] = (l:gsub("^%s+", ""))
		end
	end
	flush()
	while out[#out] == "" do out[#out] = nil end
	return escape_html(concat(out, "\n"))
end

local function cell(body)
	return (prose(body):gsub("\n+", " "):gsub("|", "\\|"))
end

local function entries(docs, prefix)
	local out = {}
	for _, e in ipairs(docs.entries) do
		if e.prefix == prefix then out[#out + 1] = e end
	end
	return out
end

local function render_entries(w, docs, prefix)
	for _, e in ipairs(entries(docs, prefix)) do
		w("#### `" .. e.heading .. "`\n\n")
		local p = prose(e.body)
		if p ~= "" then w(p, "\n\n") end
	end
end

local function render_fields(w, docs, owner, title)
	local rows = {}
	for _, f in ipairs(docs.fields) do
		local o, name = f.name:match("^([%w_]+)%.(.+)$")
		if o == owner then rows[#rows + 1] = "| `" .. name .. "` | " .. cell(f.body) .. " |" end
	end
	if #rows == 0 then error("no @field " .. owner .. ".* found") end
	w(title, "\n\n| field | meaning |\n| --- | --- |\n", concat(rows, "\n"), "\n\n")
end

local function render_options(w, docs, id, head)
	local o = docs.options[id]
	if not o then error("no @options " .. id .. " found") end
	w("| ", head or "option", " | meaning |\n| --- | --- |\n")
	for _, e in ipairs(o.list) do w("| `", e.name, "` | ", cell(e.body), " |\n") end
	w("\n")
end

local function render_module(w, docs, name)
	local m = docs.modules[name]
	if not m then error("no @module " .. name .. " found") end
	w(prose(m.body), "\n\n")
end

-- The operations from the plans: method, HTTP binding, shapes, what the call returns.
local function render_operations(w, docs, operations)
	w("| method | operation | HTTP | request shape | response shape | returns |\n",
		"| --- | --- | --- | --- | --- | --- |\n")
	for _, name in ipairs(operations.names) do
		local p = operations.plans[name]
		local returns
		if p.input_stream then
			returns = "a bidirectional stream (`bidi:`) \\| `nil, err`"
		elseif p.output_stream then
			returns = "a stream (`stream:`) \\| `nil, err`"
		else
			returns = "`result, meta` \\| `nil, err`"
		end
		w(format("| `client:%s(req [, opts])` | %s | `%s %s` | `%s` | `%s` | %s |\n", p.method_name, name,
			p.http_method, p.uri, p.input.name or "?", p.output and p.output.name or "-", returns))
	end
	w("\n")
	for _, name in ipairs(operations.names) do
		local d = docs.operations[name]
		if not d then error("no @operation " .. name .. " in lua/bedrock/operations.lua") end
		w("- **", name, "** (`client:", operations.plans[name].method_name, "`): ", cell(d.body), "\n")
	end
	for name, d in pairs(docs.operations) do
		if not operations.plans[name] then
			error(format("%s:%d: @operation %s: the model has no such operation", d.file, d.line, name))
		end
	end
	w("\n")
end

local function render_exceptions(w, operations)
	local names = {}
	for name in pairs(operations.exceptions) do names[#names + 1] = name end
	sort(names)
	w("| code | HTTP status | retried | raised by |\n| --- | --- | --- | --- |\n")
	for _, name in ipairs(names) do
		local node = operations.exceptions[name]
		local by = {}
		for _, op in ipairs(operations.names) do
			if operations.plans[op].errors[name] then by[#by + 1] = op end
		end
		local status = node.error and node.error.httpStatusCode
		local retried = require("bedrock.retry").is_retryable(require("bedrock.errors").new{
			code = name, status = status })
		w(format("| `%s` | %s | %s | %s |\n", name, status and tostring(status) or "-",
			retried and "yes" or "no", #by == #operations.names and "every operation" or
			(#by == 0 and "event streams" or concat(by, ", "))))
	end
	w("\n")
end

local function ms(v)
	if v == false or v == nil then return "none" end
	if v % 3600000 == 0 then return format("%d ms (%d h)", v, v / 3600000) end
	if v % 60000 == 0 then return format("%d ms (%d min)", v, v / 60000) end
	if v % 1000 == 0 then return format("%d ms (%d s)", v, v / 1000) end
	return format("%d ms", v)
end

local function bytes(n)
	if n % 1048576 == 0 then return format("%d MiB", n / 1048576) end
	if n % 1024 == 0 then return format("%d KiB", n / 1024) end
	return format("%d bytes", n)
end

-- render(docs) -> the Markdown text of docs/api.md.
function M.render(docs)
	local operations = require "bedrock.operations"
	local config = require "bedrock.config"
	local buf = {}
	local function w(...)
		for j = 1, select("#", ...) do buf[#buf + 1] = select(j, ...) end
	end
	w("# API reference\n\n",
		"<!-- Generated by `make apidoc` (.ci/apidoc.lua) from the doc comments in lua/bedrock/\n",
		"     and the service model; edit the sources, not this file. -->\n\n",
		"Every public function, option, field and error code of `require \"bedrock\"`. The guide\n",
		"is [README.md](README.md); this page is the reference it links to. Notation: `x | nil, err`\n",
		"means the call returns `x`, or `nil` and an error object ([Errors](#errors)); \"raises\"\n",
		"means it throws that error object.\n\n",
		"- [`bedrock`](#bedrock)\n- [Client options](#client-options)\n",
		"- [Client methods](#client-methods)\n- [Streams](#streams)\n",
		"- [Bidirectional streams](#bidirectional-streams)\n- [Tool loop](#tool-loop)\n",
		"- [`bedrock.async`](#bedrockasync)\n- [`bedrock.json`](#bedrockjson)\n",
		"- [Errors](#errors)\n- [`bedrock.transport.curl`](#bedrocktransportcurl)\n",
		"- [`bedrock.transport.ngx`](#bedrocktransportngx)\n\n")

	w("## `bedrock`\n\n")
	render_module(w, docs, "bedrock")
	render_entries(w, docs, "bedrock.")

	w("## Client options\n\n")
	render_module(w, docs, "options")
	render_options(w, docs, "client")
	w("Default timeouts (`timeouts`), each replaced one by one by what you give:\n\n",
		"| timeout | default |\n| --- | --- |\n")
	for _, k in ipairs{ "connect", "first_byte", "idle", "total" } do
		w("| `", k, "` | ", ms(config.default_timeouts[k]), " |\n")
	end
	local curl = require "bedrock.transport.curl"
	w("\nDefault body limits: `max_body` ", bytes(curl.MAX_BODY), ", `max_error_body` ",
		bytes(curl.MAX_ERROR_BODY), ".\n")
	w("\n### Per-call options\n\n")
	render_module(w, docs, "call_options")
	render_options(w, docs, "call")

	w("## Client methods\n\n")
	render_module(w, docs, "client")
	w("### Operations\n\n")
	render_operations(w, docs, operations)
	render_fields(w, docs, "meta", "`meta`, the second result of a non-streaming operation:")
	w("### Other methods\n\n")
	render_entries(w, docs, "client:")
	render_fields(w, docs, "creds",
		"`creds`, what `client:credentials()` returns (`tostring(creds)` never shows a secret):")

	w("## Streams\n\n")
	render_module(w, docs, "stream")
	render_entries(w, docs, "stream:")
	render_fields(w, docs, "stream", "Fields of a stream:")

	w("## Bidirectional streams\n\n")
	render_module(w, docs, "bidi")
	render_entries(w, docs, "bidi:")

	w("## Tool loop\n\n")
	render_module(w, docs, "tools")
	render_options(w, docs, "converse_with_tools", "request member")
	render_fields(w, docs, "toolres", "The result, besides the final Converse response's members:")
	render_entries(w, docs, "tools.")

	w("## `bedrock.async`\n\n")
	render_module(w, docs, "bedrock.async")
	render_entries(w, docs, "async.")
	w("### Tasks\n\n")
	render_entries(w, docs, "task:")

	w("## `bedrock.json`\n\n")
	render_module(w, docs, "bedrock.json")
	render_entries(w, docs, "json.")

	w("## Errors\n\n")
	render_module(w, docs, "bedrock.errors")
	render_fields(w, docs, "err", "Fields of an error object (absent when they do not apply):")
	w("### Local codes\n\nErrors the library itself reports:\n\n")
	render_options(w, docs, "codes", "code")
	w("### Service codes\n\n",
		"The exceptions of the service model; `code` is the name. \"Retried\" is what the\n",
		"default retry policy does with it (throttling, transient and modeled-retryable errors).\n",
		"Any other name the service sends is kept as the code too.\n\n")
	render_exceptions(w, operations)
	render_entries(w, docs, "errors.")

	w("## `bedrock.transport.curl`\n\n")
	render_module(w, docs, "bedrock.transport.curl")
	render_entries(w, docs, "curl.")
	w("### Transport methods\n\n")
	render_entries(w, docs, "transport:")
	w("### Transport streams\n\n")
	render_entries(w, docs, "tstream:")

	w("## `bedrock.transport.ngx`\n\n")
	render_module(w, docs, "bedrock.transport.ngx")
	render_entries(w, docs, "ngxt.")
	w("### Transport methods\n\n")
	render_entries(w, docs, "ngxtransport:")
	w("### Transport streams\n\n")
	render_entries(w, docs, "nstream:")

	local text = concat(buf)
	return (text:gsub("\n\n\n+", "\n\n"):gsub("\n+$", "\n"))
end

-- generate() -> text | nil, err (a parse error or the undocumented names).
function M.generate(sources)
	local docs, err = M.collect(sources or M.SOURCES)
	if not docs then return nil, err end
	local operations = require "bedrock.operations"
	local miss = M.missing(docs, M.surfaces(), operations)
	if #miss > 0 then
		return nil, "undocumented public names (add a --- doc comment above each definition):\n  " ..
			concat(miss, "\n  ")
	end
	local ok, text = pcall(M.render, docs)
	if not ok then return nil, tostring(text) end
	return text
end

local function main(out)
	local text, err = M.generate()
	if not text then
		io.stderr:write("apidoc: ", err, "\n")
		os.exit(1)
	end
	if out == "-" then
		io.write(text)
	else
		local f = assert(io.open(out, "wb"))
		f:write(text)
		f:close()
	end
end

if arg and arg[0] and arg[0]:find("apidoc%.lua$") then
	main(arg[1] or "docs/api.md")
end
return M
