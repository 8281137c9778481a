-- Shapes: validation, serialization and deserialization driven by the service model.
--
-- compile(model) turns every shape of lua/bedrock/model.lua into a node once:
--   node.kind     structure | union | list | map | string | integer | long | float |
--                 double | boolean | blob | timestamp | document | eventstream
--   node.write(v, buf, n, st) -> n | nil, message
--       appends the JSON text of v to buf (one walk: checks and writes together; the
--       checks are skipped when st.check is false); st is the path stack used only to
--       name the field in an error ("messages[1].content[1].text").
--   node.read(v) -> value
--       converts a value decoded by json.decode_raw to the Lua form, in place where it
--       can: unknown keys and JSON nulls dropped, integers as integers, blobs
--       base64-decoded, documents marked (json.mark), lists marked as arrays, an unknown
--       union member reported as { SDK_UNKNOWN_MEMBER = { name = key } } (botocore's form).
-- Patterns in the model are not checked (neither SDK checks them on the client side);
-- lengths, ranges, enums, required and unknown members are.
local errors = require "bedrock.errors"
local json = require "bedrock.json"

local _M = { _VERSION = "0.1.0" }

local type, pairs, next, tostring, setmetatable, getmetatable =
	type, pairs, next, tostring, setmetatable, getmetatable
local format, gsub, sub, byte, match = string.format, string.gsub,
	string.sub, string.byte, string.match
local floor, huge = math.floor, math.huge
local math_type, tointeger = math.type, math.tointeger
local concat, sort = table.concat, table.sort
local escape, quote, number, encode_into = json.escape, json.quote, json.number, json.encode_into
local b64encode, b64decode = json.b64encode, json.b64decode
local NULL, SENTINEL, array_mt = json.null, json.SENTINEL, json.array_mt
local is_marked, mark = json.is_marked, json.mark

---------------------------------------------------------------------------- paths

-- The path stack: st[1..st.n] are member names (strings) and list indexes (numbers).
function _M.path(st, extra)
	local parts = {}
	local n = st.n or #st
	for i = 1, n do
		local seg = st[i]
		if type(seg) == "number" then
			parts[#parts + 1] = "[" .. seg .. "]"
		elseif seg ~= "" then
			if #parts > 0 then parts[#parts + 1] = "." end
			parts[#parts + 1] = seg
		end
	end
	if extra then
		if #parts > 0 then parts[#parts + 1] = "." end
		parts[#parts + 1] = extra
	end
	return concat(parts)
end

---------------------------------------------------------------------------- utf-8

-- Number of characters (code points) in s, as botocore counts string lengths.
local function ulen(s)
	local _, count = gsub(s, "[^\128-\191]", "")
	return count
end
_M.ulen = ulen

---------------------------------------------------------------------------- timestamps

-- Days from 1970-01-01 to y-m-d (proleptic Gregorian).
local function days_from_civil(y, m, d)
	if m <= 2 then y = y - 1 end
	local era = floor(y / 400)
	local yoe = y - era * 400
	local mp = (m + 9) % 12
	local doy = floor((153 * mp + 2) / 5) + d - 1
	local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
	return era * 146097 + doe - 719468
end

-- ISO-8601 "YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm]" (or a number of seconds) -> UNIX
-- seconds (integer part), fraction string ("" or ".123") | nil.
local function parse_time(v)
	if type(v) == "number" then
		if v ~= v or v == huge or v == -huge then return nil end
		local i = floor(v)
		local frac = v - i
		return i, frac > 0 and (format("%.6f", frac):gsub("^0", ""):gsub("0+$", "")) or ""
	end
	if type(v) ~= "string" then return nil end
	local y, mo, d, h, mi, s, rest = match(v, "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
	if not y then return nil end
	local frac = match(rest, "^(%.%d+)")
	if frac then rest = sub(rest, #frac + 1) else frac = "" end
	local off = 0
	if rest ~= "Z" and rest ~= "z" and rest ~= "" then
		local sign, oh, om = match(rest, "^([+-])(%d%d):?(%d%d)$")
		if not sign then return nil end
		off = (oh * 3600 + om * 60) * (sign == "+" and 1 or -1)
	end
	y, mo, d, h, mi, s = y + 0, mo + 0, d + 0, h + 0, mi + 0, s + 0
	if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or s > 60 then return nil end
	local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off
	if tointeger then t = tointeger(t) or t end
	return t, frac
end
_M.parse_time = parse_time

local function civil_from_days(z)
	z = z + 719468
	local era = floor(z / 146097)
	local doe = z - era * 146097
	local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
	local y = yoe + era * 400
	local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
	local mp = floor((5 * doy + 2) / 153)
	local d = doy - floor((153 * mp + 2) / 5) + 1
	local m = mp < 10 and mp + 3 or mp - 9
	if m <= 2 then y = y + 1 end
	return y, m, d
end

-- UNIX seconds -> "YYYY-MM-DDTHH:MM:SS" .. frac .. "Z"
local function format_time(t, frac)
	local days = floor(t / 86400)
	local secs = t - days * 86400
	local y, m, d = civil_from_days(days)
	return format("%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, m, d, floor(secs / 3600),
		floor(secs / 60) % 60, secs % 60, frac or "")
end
_M.format_time = format_time

-- The query form: UTC, no fractional seconds.
function _M.query_time(v)
	local t = parse_time(v)
	if not t then return nil end
	return format_time(t, "")
end

---------------------------------------------------------------------------- checks

local function is_integral(v)
	if math_type then
		local mt = math_type(v)
		if mt == "integer" then return true end
		if mt ~= "float" then return false end
	end
	return v == floor(v) and v > -huge and v < huge
end

-- Failure of a check; the field is where the path stack `st` stands.
local function fail(_, msg)
	return nil, msg
end

local function type_name(v)
	local tv = type(v)
	if tv == "table" and is_marked(v) then return "array" end
	if v == NULL then return "null" end
	return tv
end

-- Length checks shared by string/blob/list/map.
local function check_len(node, len, what, count_chars, v)
	local min, max = node.min, node.max
	if max and len > max then
		if count_chars then len = ulen(v) end
		if len > max then
			return format("%s must be at most %d %s (got %d)", what, max,
				count_chars and "characters" or (what == "blob" and "bytes" or "items"), len)
		end
	end
	if min and len < min then
		if min == 1 and what ~= "list" and what ~= "map" then return what .. " must not be empty" end
		return format("%s must have at least %d %s (got %d)", what, min,
			count_chars and "characters" or (what == "blob" and "bytes" or "items"), len)
	end
	return nil
end

---------------------------------------------------------------------------- compile

local kinds = {
	string = "string", integer = "integer", long = "long", float = "float", double = "double",
	boolean = "boolean", blob = "blob", timestamp = "timestamp", list = "list", map = "map",
}

local function build_writer(node)
	local kind = node.kind
	if kind == "string" then
		local enum = node.enum
		local has_len = node.min or node.max
		-- short strings that passed this node's checks -> their JSON text (roles, enum
		-- values and short texts repeat call after call); bounded
		local ok, oks = {}, 0
		return function(v, buf, n, st)
			local q = ok[v]
			if q then
				buf[n + 1] = q
				return n + 1
			end
			if st.check then
				if type(v) ~= "string" then return fail(st, "expected a string, got " .. type_name(v)) end
				if enum and not enum[v] then
					return fail(st, format("invalid value %q (expected one of: %s)", v, node.enum_text))
				end
				if has_len then
					local e = check_len(node, #v, "string", true, v)
					if e then return fail(st, e) end
				end
				q = quote(v)
				if #v <= 40 then
					if oks >= 256 then ok, oks = {}, 0 end
					ok[v] = q
					oks = oks + 1
				end
			elseif type(v) ~= "string" then
				return encode_into(v, buf, n, "", 0)
			else
				q = quote(v)
			end
			buf[n + 1] = q
			return n + 1
		end
	elseif kind == "integer" or kind == "long" then
		local min, max = node.min, node.max
		return function(v, buf, n, st)
			if st.check then
				if type(v) ~= "number" then return fail(st, "expected an integer, got " .. type_name(v)) end
				if not is_integral(v) then return fail(st, "expected an integer, got " .. tostring(v)) end
				if min and v < min then return fail(st, format("must be at least %d (got %s)", min, number(v))) end
				if max and v > max then return fail(st, format("must be at most %d (got %s)", max, number(v))) end
			elseif type(v) ~= "number" then
				return encode_into(v, buf, n, "", 0)
			end
			local s = number(v)
			if not s then return fail(st, "number cannot be written as JSON") end
			buf[n + 1] = s
			return n + 1
		end
	elseif kind == "float" or kind == "double" then
		local min, max = node.min, node.max
		return function(v, buf, n, st)
			if st.check then
				if type(v) ~= "number" then return fail(st, "expected a number, got " .. type_name(v)) end
				if v ~= v or v == huge or v == -huge then return fail(st, "number must be finite") end
				if min and v < min then return fail(st, format("must be at least %s (got %s)", number(min), number(v))) end
				if max and v > max then return fail(st, format("must be at most %s (got %s)", number(max), number(v))) end
			elseif type(v) ~= "number" then
				return encode_into(v, buf, n, "", 0)
			end
			local s = number(v)
			if not s then return fail(st, "number cannot be written as JSON") end
			buf[n + 1] = s
			return n + 1
		end
	elseif kind == "boolean" then
		return function(v, buf, n, st)
			if type(v) ~= "boolean" then
				if st.check then return fail(st, "expected a boolean, got " .. type_name(v)) end
				return encode_into(v, buf, n, "", 0)
			end
			buf[n + 1] = v and "true" or "false"
			return n + 1
		end
	elseif kind == "blob" then
		local has_len = node.min or node.max
		return function(v, buf, n, st)
			if type(v) ~= "string" then
				if st.check then return fail(st, "expected a string of bytes, got " .. type_name(v)) end
				return encode_into(v, buf, n, "", 0)
			end
			if has_len and st.check then
				local e = check_len(node, #v, "blob", false, v)
				if e then return fail(st, e) end
			end
			buf[n + 1] = '"'; buf[n + 2] = b64encode(v); buf[n + 3] = '"'
			return n + 3
		end
	elseif kind == "timestamp" then
		return function(v, buf, n, st)
			local t, frac = parse_time(v)
			if not t then
				if st.check then
					return fail(st, "expected an ISO-8601 timestamp string (or UNIX seconds), got " ..
						(type(v) == "string" and format("%q", v) or type_name(v)))
				end
				return encode_into(v, buf, n, "", 0)
			end
			buf[n + 1] = '"'; buf[n + 2] = format_time(t, frac); buf[n + 3] = '"'
			return n + 3
		end
	elseif kind == "document" then
		return function(v, buf, n, st)
			local n2, err, p = encode_into(v, buf, n, "", 0)
			if not n2 then
				p = p and gsub(p, "^%.", "") or ""
				if p ~= "" then st.n = st.n + 1; st[st.n] = p end
				return fail(st, err)
			end
			return n2
		end
	elseif kind == "list" then
		local has_len = node.min or node.max
		return function(v, buf, n, st)
			if type(v) ~= "table" then
				if st.check then return fail(st, "expected a list (array table), got " .. type_name(v)) end
				return encode_into(v, buf, n, "", 0)
			end
			local len = #v
			if st.check then
				if len == 0 and next(v) ~= nil and not is_marked(v) then
					return fail(st, "expected a list (array table), got a table with keys")
				end
				if has_len then
					local e = check_len(node, len, "list", false, v)
					if e then return fail(st, e) end
				end
			end
			if len == 0 then buf[n + 1] = "[]" return n + 1 end
			local write = node.member.write
			buf[n + 1] = "["
			n = n + 1
			local depth = st.n + 1
			st.n = depth
			for i = 1, len do
				if i > 1 then n = n + 1; buf[n] = "," end
				st[depth] = i
				local err
				n, err = write(v[i], buf, n, st)
				if not n then return nil, err end
			end
			st.n = depth - 1
			buf[n + 1] = "]"
			return n + 1
		end
	elseif kind == "map" then
		local has_len = node.min or node.max
		return function(v, buf, n, st)
			if type(v) ~= "table" or is_marked(v) then
				if st.check then return fail(st, "expected a map (table with string keys), got " .. type_name(v)) end
				return encode_into(v, buf, n, "", 0)
			end
			local kwrite, vwrite = node.key.write, node.value.write
			local first = true
			local count = 0
			local depth = st.n + 1
			st.n = depth
			buf[n + 1] = "{"
			n = n + 1
			for k, x in pairs(v) do
				st[depth] = tostring(k)
				if st.check then
					if type(k) ~= "string" then return fail(st, "map keys must be strings") end
					local _, err = kwrite(k, {}, 0, st)
					if err then return nil, "key: " .. err end
				end
				if not first then n = n + 1; buf[n] = "," end
				first = false
				buf[n + 1] = '"'; buf[n + 2] = escape(tostring(k)); buf[n + 3] = '":'
				local err
				n, err = vwrite(x, buf, n + 3, st)
				if not n then return nil, err end
				count = count + 1
			end
			st.n = depth - 1
			if has_len and st.check then
				local e = check_len(node, count, "map", false, v)
				if e then return fail(st, e) end
			end
			buf[n + 1] = "}"
			return n + 1
		end
	elseif kind == "structure" or kind == "union" then
		local members, required = node.members, node.required
		local union = kind == "union"
		local body_only = node.body_only -- skip members bound to path/query/header
		local empty_mt = getmetatable(json.empty_array)
		return function(v, buf, n, st)
			local check = st.check
			local mt = type(v) == "table" and getmetatable(v)
			if mt == false or (mt and (mt == array_mt or mt == empty_mt)) then
				if check then return fail(st, "expected a table (structure), got " .. type_name(v)) end
				return encode_into(v, buf, n, "", 0)
			end
			local depth = st.n + 1
			local count = 0
			-- "{" and "," travel with the member keys (m.open_key, m.next_key): fewer pieces
			for k, x in next, v do
				local m = members[k]
				if m and m.location and body_only then -- luacheck: ignore 542
					-- bound to the path, query or a header: not part of the JSON body
				elseif m then
					if x ~= nil and x ~= NULL then
						n = n + 1
						buf[n] = count == 0 and m.open_key or m.next_key
						count = count + 1
						st.n = depth; st[depth] = k
						local err
						n, err = m.write(x, buf, n, st)
						if not n then return nil, err end
					end
				elseif check then
					st.n = depth; st[depth] = tostring(k)
					local hint = node.member_hint and node.member_hint(k)
					return fail(st, "unknown member" .. (hint and (" (did you mean '" .. hint .. "'?)") or ""))
				else
					if type(k) == "string" then
						n = n + 1
						buf[n] = (count == 0 and '{"' or ',"') .. escape(k) .. '":'
						count = count + 1
						local err
						n, err = encode_into(x, buf, n, "", 0)
						if not n then
							st.n = depth; st[depth] = k
							return nil, err
						end
					end
				end
			end
			st.n = depth - 1
			if check then
				if union then
					if count ~= 1 then
						return fail(st, count == 0 and
							("exactly one member must be set (one of: " .. node.member_text .. ")") or
							("exactly one member must be set, got " .. count))
					end
				elseif required then
					for i = 1, #required do
						local r = required[i]
						local x = v[r]
						if x == nil or x == NULL then
							st.n = depth; st[depth] = r
							return fail(st, "required member is missing")
						end
					end
				end
				if node.hook then
					local err = node.hook(v, st)
					if err then return nil, err end
				end
			end
			buf[n + 1] = count == 0 and "{}" or "}"
			return n + 1
		end
	end
	return function(v, buf, n)
		return encode_into(v, buf, n, "", 0)
	end
end

local read_identity = function(v) return v end

local function build_reader(node)
	local kind = node.kind
	if kind == "integer" or kind == "long" then
		if not tointeger then return read_identity end
		-- (no type() call: a string that reads as a number is not equal to it)
		return function(v)
			local i = tointeger(v)
			if i and i == v then return i end
			return v
		end
	elseif kind == "blob" then
		-- text that is not base64 is an error, raised as the error object (the callers of
		-- a reader catch it), never handed back as if it were the bytes
		return function(v)
			if type(v) == "string" then
				local b, err = b64decode(v)
				if b == nil then
					error(errors.make("SerializationError", "a blob member is not valid base64: " ..
						tostring(err)), 0)
				end
				return b
			end
			return v
		end
	elseif kind == "document" then
		return mark
	elseif kind == "list" then
		return function(v)
			if type(v) ~= "table" then return v end
			if v[1] == SENTINEL and v[2] == nil then v[1] = nil return setmetatable(v, array_mt) end
			local read = node.member.read
			if read ~= read_identity then
				for i = 1, #v do
					local x = v[i]
					if x ~= NULL then v[i] = read(x) end
				end
			end
			return setmetatable(v, array_mt)
		end
	elseif kind == "map" then
		return function(v)
			if type(v) ~= "table" then return v end
			if v[1] == SENTINEL then v[1] = nil return v end
			local read = node.value.read
			for k, x in pairs(v) do
				if x == NULL then v[k] = nil
				elseif read ~= read_identity then v[k] = read(x) end
			end
			return v
		end
	elseif kind == "structure" or kind == "union" then
		local members = node.members
		local union = kind == "union"
		return function(v)
			if type(v) ~= "table" then return v end
			if v[1] == SENTINEL then v[1] = nil end
			local unknown
			for k, x in next, v do
				local m = members[k]
				if not m or x == NULL then
					if m == nil and union and x ~= NULL then unknown = k end
					v[k] = nil
				elseif not m.plain then
					if m.int then
						-- the integer reader, inline (one call less per number)
						local i = tointeger(x)
						if i and i == x then v[k] = i end
					else
						v[k] = m.read(x)
					end
				end
			end
			if unknown and next(v) == nil then
				v.SDK_UNKNOWN_MEMBER = { name = unknown }
			end
			return v
		end
	end
	return read_identity
end

-- Closest member name to k (edit distance <= 2), for "did you mean" hints.
local function closest(names, k)
	if type(k) ~= "string" then return nil end
	local best, bestd = nil, 3
	local lk = k:lower()
	for i = 1, #names do
		local a, b = lk, names[i]:lower()
		if a == b then return names[i] end
		local la, lb = #a, #b
		if math.abs(la - lb) < bestd then
			local prev = {}
			for j = 0, lb do prev[j] = j end
			for x = 1, la do
				local cur = { [0] = x }
				local ca = byte(a, x)
				for y = 1, lb do
					local cost = (ca == byte(b, y)) and 0 or 1
					local d = prev[y - 1] + cost
					if prev[y] + 1 < d then d = prev[y] + 1 end
					if cur[y - 1] + 1 < d then d = cur[y - 1] + 1 end
					cur[y] = d
				end
				prev = cur
			end
			if prev[lb] < bestd then best, bestd = names[i], prev[lb] end
		end
	end
	return best
end

-- compile(model) -> nodes (shape name -> node)
function _M.compile(model)
	local nodes = {}
	for name, s in pairs(model.shapes) do
		local kind = kinds[s.type]
		if s.type == "structure" then
			if s.document then kind = "document"
			elseif s.eventstream then kind = "eventstream"
			elseif s.union then kind = "union"
			else kind = "structure" end
		end
		nodes[name] = {
			name = name, kind = kind or s.type, min = s.min, max = s.max,
			event = s.event, exception = s.exception, error = s.error,
			retryable = s.retryable, sensitive = s.sensitive, payload = s.payload,
		}
	end
	for name, s in pairs(model.shapes) do
		local node = nodes[name]
		if s.enum then
			node.enum = {}
			for _, e in ipairs(s.enum) do node.enum[e] = true end
			node.enum_list = s.enum
			node.enum_text = concat(s.enum, ", ")
		end
		if s.members then
			node.members = {}
			local names = {}
			for mname, m in pairs(s.members) do
				node.members[mname] = {
					name = mname, node = nodes[m.shape], shape = m.shape,
					location = m.location, location_name = m.locationName,
					idempotency_token = m.idempotencyToken,
					json_key = '"' .. escape(mname) .. '":',
					open_key = '{"' .. escape(mname) .. '":',
					next_key = ',"' .. escape(mname) .. '":',
				}
				names[#names + 1] = mname
			end
			sort(names)
			node.member_names = names
			node.member_text = concat(names, ", ")
			node.member_hint = function(k) return closest(names, k) end
			if s.required and #s.required > 0 then node.required = s.required end
		end
		if s.member then node.member = nodes[s.member.shape] end
		if s.key then node.key = nodes[s.key.shape] end
		if s.value then node.value = nodes[s.value.shape] end
	end
	for _, node in pairs(nodes) do
		node.write = build_writer(node)
	end
	-- readers look their children's readers up at call time, so order does not matter
	for _, node in pairs(nodes) do node.read = build_reader(node) end
	-- members keep direct references to their node's functions (one lookup less per value)
	for _, node in pairs(nodes) do
		for _, m in pairs(node.members or {}) do
			m.write, m.read = m.node.write, m.node.read
			m.plain = m.read == read_identity
			m.int = not m.plain and tointeger ~= nil and (m.node.kind == "integer" or m.node.kind == "long")
		end
	end
	return nodes
end

-- A variant of a structure node that writes only the members without a location (the
-- JSON body of an operation's input), while still accepting the located members.
function _M.body_node(node)
	local b = setmetatable({ body_only = true }, { __index = node })
	b.write = build_writer(b)
	return b
end

-- Runs node.write over v with a fresh path stack. Returns the JSON text | nil, message,
-- field path.
function _M.serialize(node, v, check)
	local st = { n = 0, check = check ~= false }
	local buf = {}
	local n, err = node.write(v, buf, 0, st)
	if not n then return nil, err, _M.path(st) end
	return concat(buf, "", 1, n)
end

_M.read_identity = read_identity
_M.getmetatable = getmetatable
return _M
