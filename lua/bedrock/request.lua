-- Request building: a request table and an operation plan become an unsigned request
-- (method, path, query, header list, body), validated in the same walk; then signed for
-- one attempt. Pure functions of plain tables, apart from small per-client caches kept on
-- the client table passed as `self` (paths, the signing date, the prepared signer).
--
--   request.prepare(client, plan, req, check) -> prepared | nil, err
--   request.sign(client, prepared, creds, time) -> header list | nil, err
--   request.url(cfg, prepared) -> URL
local errors = require "bedrock.errors"
local json = require "bedrock.json"
local shapes = require "bedrock.shapes"

local _M = {}

local type, pairs, ipairs, tostring, setmetatable, error =
	type, pairs, ipairs, tostring, setmetatable, error
local format, gsub, byte, char, find, lower =
	string.format, string.gsub, string.byte, string.char, string.find, string.lower
local concat = table.concat
local os_time = os.time
local NULL = json.null

local has_core, core = pcall(require, "bedrock.core")
if not has_core or type(core) ~= "table" then core = nil end

_M.VERSION = "0.1.0"
local USER_AGENT = "lua-bedrock/" .. _M.VERSION .. " " .. (type(rawget(_G, "jit")) == "table"
	and (rawget(_G, "jit").version or "LuaJIT"):gsub(" ", "/") or _VERSION:gsub(" ", "/"))

-- Percent-encoding: every byte outside A-Z a-z 0-9 - . _ ~ as %XX (uppercase).
local pct = {}
for i = 0, 255 do pct[char(i)] = format("%%%02X", i) end
local function uri_encode(s)
	return (gsub(s, "[^A-Za-z0-9%-%._~]", pct))
end
_M.uri_encode = uri_encode

-- UUIDv4 (version 4, variant 10xx) from the C core's CSPRNG: an idempotency token must
-- not repeat across processes, which math.random cannot promise (Lua 5.4 seeds it from
-- the time and an address, which two processes started in the same second under a
-- sanitizer or without ASLR share; LuaJIT does not seed it; the program may seed it).
-- core.uuid4 takes the bytes from a per-state pool of the CSPRNG's output, which a
-- forked child (nginx workers) empties before its first use.
local random_bytes = core and core.random_bytes
local uuid4 = core and core.uuid4 or function()
	local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 =
		byte(random_bytes(16), 1, 16)
	return format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b1, b2, b3, b4, b5, b6, 64 + b7 % 16, b8, 128 + b9 % 64, b10, b11, b12, b13, b14, b15, b16)
end
_M.uuid4 = uuid4

local function verr(field, msg)
	return nil, errors.new{ code = "ValidationError", message = msg, field = field }
end

-- Scalar → text for a path label, query parameter or header.
local function scalar_text(node, v, check, field)
	local kind = node.kind
	if kind == "timestamp" then
		local s = shapes.query_time(v)
		if not s then
			if check then return verr(field, "expected an ISO-8601 timestamp string (or UNIX seconds)") end
			return tostring(v)
		end
		return s
	end
	if check then
		local st = { n = 0, check = true }
		local n, err = node.write(v, {}, 0, st)
		if not n then return verr(shapes.path(st) ~= "" and (field .. "." .. shapes.path(st)) or field, err) end
	end
	local tv = type(v)
	if tv == "string" then return v end
	if tv == "number" then return json.number(v) or tostring(v) end
	if tv == "boolean" then return v and "true" or "false" end
	return tostring(v)
end

-- Shared read-only {name, value} pairs (the signer and the transport only read them).
local CT_PAIRS = {
	["application/json"] = { "content-type", "application/json" },
	["application/vnd.amazon.eventstream"] = { "content-type", "application/vnd.amazon.eventstream" },
}
local ATTEMPT1 = { "amz-sdk-request", "attempt=1" }

-- Lower-case copy of headers with secrets redacted, for hooks and logs.
local REDACT = { authorization = true, ["x-amz-security-token"] = true }
local function redact_list(list)
	local out = {}
	for i, h in ipairs(list) do
		local n = lower(h[1])
		out[i] = { n, REDACT[n] and "<redacted>" or h[2] }
	end
	return out
end
_M.redact_list = redact_list
_M.USER_AGENT = USER_AGENT
_M.ATTEMPT1 = ATTEMPT1
_M.verr = verr

local build_path, prepare_rest

-- Builds the unsigned request for one operation: method, path, query, header list and
-- body, with validation (one walk). Returns prepared | nil, err.
function _M.prepare(self, plan, req, check)
	if not self.ready then
		local ok, lerr = self:_ready()
		if not ok then return nil, lerr end
	end
	if type(req) ~= "table" then
		if req == nil and not plan.input.required then req = {}
		else return verr(nil, "request must be a table") end
	end
	local cfg = self.config
	local ep = cfg.endpoint
	local input = plan.input
	local members = input.members

	-- path; for an operation with one label (the model id, mostly) the whole path of a
	-- label value seen before is kept per client
	local segs = plan.segments
	local label1 = plan.single_label
	if label1 == nil then
		label1 = false
		for i = 1, #segs do
			if type(segs[i]) ~= "string" then
				if label1 then label1 = false break end
				label1 = segs[i].label
			end
		end
		plan.single_label = label1
	end
	local pcache, path
	if label1 then
		local v = req[label1]
		local all = self.path_cache
		if not all then all = {}; self.path_cache = all end
		pcache = all[plan]
		if not pcache then pcache = { n = 0, paths = {} }; all[plan] = pcache end
		path = type(v) == "string" and pcache.paths[v]
	end
	if not path then
		local err
		path, err = build_path(plan, req, check, ep, members)
		if not path then return nil, err end
		local v = label1 and req[label1]
		if check and type(v) == "string" then
			if pcache.n >= 256 then pcache.paths, pcache.n = {}, 0 end
			pcache.paths[v] = path
			pcache.n = pcache.n + 1
		end
	end
	-- (the label values were checked when the path was built)
	return prepare_rest(plan, req, check, path, members, input)
end

-- The path of a request from its label members (validated, percent-encoded).
function build_path(plan, req, check, ep, members)
	local segs = plan.segments
	local parts = { ep.base_path }
	for i = 1, #segs do
		local s = segs[i]
		if type(s) == "string" then
			parts[#parts + 1] = s
		else
			local name = s.label
			local v = req[name]
			-- a label value seen before (valid, encoded) is reused: model ids repeat
			local cache = s.cache
			local enc = type(v) == "string" and cache[v]
			if enc then
				parts[#parts + 1] = enc
			else
				if v == nil or v == NULL then return verr(name, "required member is missing") end
				local text, err = scalar_text(members[name].node, v, check, name)
				if not text then return nil, err end
				if text == "" then return verr(name, "must not be empty (it is a path segment)") end
				if text == "." or text == ".." then
					return verr(name, "'" .. text .. "' cannot be used: it would be a dot segment in the path")
				end
				enc = uri_encode(text)
				if check and type(v) == "string" then
					if s.cached >= 256 then s.cache, s.cached = {}, 0 end
					s.cache[v] = enc
					s.cached = s.cached + 1
				end
				parts[#parts + 1] = enc
			end
		end
	end
	return concat(parts)
end

-- The rest of _prepare: query, header members and body.
local scratch_buf, scratch_st
local NO_HEADERS = setmetatable({}, { __newindex = function() error("read-only", 2) end })
function prepare_rest(plan, req, check, path, members, input)
	-- query
	local query
	local q = plan.query
	if #q > 0 then
		local qs = {}
		for i = 1, #q do
			local m = q[i]
			local v = req[m.member]
			if v ~= nil and v ~= NULL then
				local text, err = scalar_text(m.node, v, check, m.member)
				if not text then return nil, err end
				qs[#qs + 1] = uri_encode(m.name) .. "=" .. uri_encode(text)
			end
		end
		if #qs > 0 then query = concat(qs, "&") end
	end

	-- headers bound to members (none for most operations: a shared empty list then)
	local hs = plan.headers
	local headers = #hs > 0 and {} or NO_HEADERS
	for i = 1, #hs do
		local m = hs[i]
		local v = req[m.member]
		if v ~= nil and v ~= NULL then
			local text, err = scalar_text(m.node, v, check, m.member)
			if not text then return nil, err end
			-- never let a value split the header block (checked even with validate = false)
			if find(text, "[%z\1-\31\127]") then
				return verr(m.member, "control characters are not allowed in a header value")
			end
			headers[#headers + 1] = { m.name, text }
		end
	end

	-- body
	local body, content_type
	if plan.body then
		if plan.idempotency_token and req[plan.idempotency_token] == nil then
			local copy = {}
			for k, v in pairs(req) do copy[k] = v end
			copy[plan.idempotency_token] = uuid4()
			req = copy
		end
		-- one buffer and path stack reused call after call (taken while in use)
		local buf, st = scratch_buf or {}, scratch_st or {}
		scratch_buf, scratch_st = nil, nil
		st.n, st.check = 0, check
		local n, err = plan.body.write(req, buf, 0, st)
		if not n then
			return nil, errors.new{ code = "ValidationError", message = err, field = shapes.path(st) }
		end
		body = concat(buf, "", 1, n)
		if n <= 4096 then
			-- no references kept to the request's strings
			for i = 1, n do buf[i] = nil end
			scratch_buf = buf
		end
		scratch_st = st
		content_type = "application/json"
	else
		-- no JSON body: still refuse unknown members and check required ones
		if check then
			for k in pairs(req) do
				if not members[k] then
					local hint = input.member_hint(k)
					return verr(tostring(k), "unknown member" .. (hint and (" (did you mean '" .. hint .. "'?)") or ""))
				end
			end
			local reqd = input.required
			if reqd then
				for _, r in ipairs(reqd) do
					if r ~= plan.payload and (req[r] == nil or req[r] == NULL) then
						return verr(r, "required member is missing")
					end
				end
			end
		end
		if plan.payload_kind == "blob" then
			local v = req[plan.payload]
			if type(v) == "table" then
				local err
				body, err = json.encode(v)
				if not body then return verr(plan.payload, err) end
			elseif type(v) == "string" then
				body = v
			elseif v == nil then
				body = ""
			elseif check then
				return verr(plan.payload, "body must be a string of bytes or a table (sent as JSON)")
			else
				body = tostring(v)
			end
			if check then
				local node = members[plan.payload].node
				if node.max and #body > node.max then
					return verr(plan.payload, format("body must be at most %d bytes (got %d)", node.max, #body))
				end
			end
			-- no contentType member, no Content-Type (as botocore): the transport keeps
			-- libcurl from adding its form type to a POST body
		elseif plan.payload_kind == "eventstream" then
			content_type = "application/vnd.amazon.eventstream"
		end
	end
	return { plan = plan, method = plan.http_method, path = path, query = query,
		headers = headers, body = body, content_type = content_type }
end

-- Signs a prepared request for one attempt; returns the header list to send.
-- Signs a prepared request for one attempt; returns the header list to send.
-- opts.time overrides the signing time (UNIX seconds).
function _M.sign(self, p, creds, time)
	local cfg = self.config
	local ep = cfg.endpoint
	-- room for the usual eight headers from the start (no regrowth)
	local hdrs = { nil, nil, nil, nil, nil, nil, nil, nil }
	local ct = p.content_type
	if ct then hdrs[1] = CT_PAIRS[ct] or { "content-type", ct } end
	local ph = p.headers
	for i = 1, #ph do hdrs[#hdrs + 1] = ph[i] end
	local token = creds.token
	if token then
		if find(token, "[%z\r\n]") then
			return nil, errors.make("CredentialsError", "the bearer token contains a NUL, CR or LF byte")
		end
		hdrs[#hdrs + 1] = { "authorization", "Bearer " .. token }
		return hdrs
	end
	local signer, err = self:_signer()
	if not signer then return nil, err end
	local now = time or os_time()
	local amz_date = self.amz_date_for == now and self.amz_date
	local date_pair = self.amz_date_pair
	if not amz_date then
		amz_date = core.amz_date(now)
		date_pair = { "x-amz-date", amz_date }
		self.amz_date_for, self.amz_date, self.amz_date_pair = now, amz_date, date_pair
	end
	-- the list that is signed is the list that is sent (Host included, as curl would send it)
	local host = self.host_pair
	if not host then
		host = { "host", ep.authority }
		self.host_pair = host
	end
	hdrs[#hdrs + 1] = host
	hdrs[#hdrs + 1] = date_pair
	local st = creds.session_token
	if st then
		if find(st, "[%z\r\n]") then
			return nil, errors.make("CredentialsError", "the session token contains a NUL, CR or LF byte")
		end
		hdrs[#hdrs + 1] = { "x-amz-security-token", st }
	end
	-- the credentials and scope are given to the signer once (again when they change);
	-- each request then passes only its own parts. The signer (C) is asked whether they
	-- changed: no Lua table keeps a copy of the secret.
	local ak, sk = creds.access_key_id, creds.secret_access_key
	if self.prepared ~= signer or not signer:is_prepared(ak, sk) then
		self.prepared = nil
		if find(ak, "%z") then
			return nil, errors.make("CredentialsError", "the access key id contains a NUL byte")
		end
		if find(sk, "%z") then
			return nil, errors.make("CredentialsError", "the secret access key contains a NUL byte")
		end
		signer:prepare{ access_key = ak, secret_key = sk, region = cfg.region, service = "bedrock" }
		self.prepared = signer
	end
	local auth, sig, msg = signer:sign_prepared(p.method, p.path, p.query, hdrs, p.body, amz_date,
		p.payload_hash)
	if not auth then
		return nil, errors.make("ValidationError", "could not sign the request: " .. tostring(msg))
	end
	hdrs[#hdrs + 1] = { "authorization", auth }
	p.signature = sig
	return hdrs
end

-- The request URL. Paths repeat call after call (same operation, same model), so the
-- URLs of query-less paths are kept (bounded) per configuration.
local URL_CACHE_MAX = 256
local function url_of(cfg, p)
	local base = cfg.base_url
	if not base then
		base = cfg.endpoint.scheme .. "://" .. cfg.endpoint.authority
		cfg.base_url = base
		cfg.url_cache, cfg.url_cached = {}, 0
	end
	if p.query then return base .. p.path .. "?" .. p.query end
	local cache = cfg.url_cache
	local url = cache[p.path]
	if url then return url end
	url = base .. p.path
	if cfg.url_cached >= URL_CACHE_MAX then cache, cfg.url_cached = {}, 0; cfg.url_cache = cache end
	cache[p.path] = url
	cfg.url_cached = cfg.url_cached + 1
	return url
end

_M.url = url_of

return _M
