-- The client: one generic path that builds, validates, signs, sends and parses every
-- operation from its plan (lua/bedrock/operations.lua), with retries.
--
--   local client, err = Client.new(opts)
--   client:<operation>(req [, opts]) -> result, meta | nil, err     (JSON / blob operations)
--   client:<stream operation>(req [, opts]) -> stream | nil, err
--   client:_build(name_or_method, req [, opts]) -> prepared request | nil, err  (no traffic)
--   client:parse(name, status, headers, body) -> result | nil, err  (the response parser)
local config = require "bedrock.config"
local credentials = require "bedrock.credentials"
local errors = require "bedrock.errors"
local json = require "bedrock.json"
local operations = require "bedrock.operations"
local retry = require "bedrock.retry"
local shapes = require "bedrock.shapes"
local stream = require "bedrock.stream"

local _M = { _VERSION = "0.1.0" }

local type, pairs, ipairs, tostring, tonumber, setmetatable, pcall, error, getmetatable =
	type, pairs, ipairs, tostring, tonumber, setmetatable, pcall, error, getmetatable
local format, gsub, byte, char, sub, find, lower =
	string.format, string.gsub, string.byte, string.char, string.sub, string.find, string.lower
local concat, floor = table.concat, math.floor
local random, os_time = math.random, os.time
local tointeger = math.tointeger
local plans, by_method = operations.plans, operations.by_method
local NULL = json.null

local has_core, core = pcall(require, "bedrock.core")
if not has_core or type(core) ~= "table" then core = nil end
_M.core = core

-- modeled `retryable` traits for the retry policy
for name, node in pairs(operations.exceptions) do
	if node.retryable then retry.modeled[name] = node.retryable end
end

---------------------------------------------------------------------------- helpers

local USER_AGENT = "lua-bedrock/" .. _M._VERSION .. " " .. (type(rawget(_G, "jit")) == "table"
	and (rawget(_G, "jit").version or "LuaJIT"):gsub(" ", "/") or _VERSION:gsub(" ", "/"))

-- Percent-encoding: every byte outside A-Z a-z 0-9 - . _ ~ as %XX (uppercase).
local pct = {}
for i = 0, 255 do pct[char(i)] = format("%%%02X", i) end
local function uri_encode(s)
	return (gsub(s, "[^A-Za-z0-9%-%._~]", pct))
end
_M.uri_encode = uri_encode

-- LuaJIT does not seed math.random; 5.4 does.
if type(rawget(_G, "jit")) == "table" then
	local seed = os_time()
	local f = io.open("/dev/urandom", "rb")
	if f then
		local b = f:read(4)
		f:close()
		if b and #b == 4 then
			local b1, b2, b3, b4 = byte(b, 1, 4)
			seed = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
		end
	end
	math.randomseed(seed)
end

-- UUIDv4 (random; version 4, variant 10xx). Five draws (the widest 48 bits, exact in a
-- double on LuaJIT too): one per call, so it is kept short.
local function uuid4()
	return format("%08x-%04x-4%03x-%04x-%012x", random(0, 4294967295), random(0, 65535),
		random(0, 4095), 32768 + random(0, 16383), random(0, 281474976710655))
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
local EMPTY = setmetatable({}, { __newindex = function() error("read-only", 2) end })

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

---------------------------------------------------------------------------- client

local Client = {}
Client.__index = Client
Client.__name = "bedrock.Client"
Client.__tostring = function(c)
	return format("bedrock.Client(%s, %s, %s)", c.config.region, c.config.endpoint.url, c.auth.scheme)
end
_M.Client = Client

function _M.new(opts)
	local cfg, err = config.resolve(opts)
	if not cfg then return nil, err end
	local auth
	auth, err = credentials.resolve(opts and opts.credentials, cfg)
	if not auth then return nil, err end
	local self = setmetatable({
		config = cfg, auth = auth,
		policy = retry.new(cfg.retry),
		on_request = cfg.on_request, on_response = cfg.on_response, logger = cfg.logger,
		transport = opts and opts.transport,
		decode = opts and opts.decode,
	}, Client)
	return self
end

function Client:_transport()
	local t = self.transport
	if t then return t end
	local ok, T = pcall(require, "bedrock.transport.curl")
	if not ok then
		return nil, errors.make("ConfigError", "HTTP transport bedrock.transport.curl is not available: " .. tostring(T))
	end
	local cfg = self.config
	local terr
	ok, t, terr = pcall(T.new, { http2 = cfg.http2 or false, verify = cfg.verify,
		cainfo = cfg.cainfo, capath = cfg.capath, timeouts = cfg.timeouts })
	if not ok then
		if not errors.is(t) then t = errors.make("ConfigError", tostring(t)) end
		return nil, t
	end
	if not t then return nil, terr end
	self.transport = t
	self.own_transport, self.treq = t, {}
	return t
end

function Client:_signer()
	local s = self.signer
	if s then return s end
	if not core or not core.signer then
		return nil, errors.make("ConfigError", "bedrock.core (the C module) is not available for signing")
	end
	s = core.signer()
	self.signer = s
	return s
end

-- Closes the transport (connections) and the signer.
function Client:close()
	if self.transport and self.transport.close then self.transport:close() end
	self.transport = nil
	if self.signer then self.signer:close() end
	self.signer = nil
end

local function resolve_plan(op)
	local plan = plans[op] or by_method[op]
	if not plan then error("unknown operation " .. tostring(op), 3) end
	return plan
end

local build_path, prepare_rest

-- Builds the unsigned request for one operation: method, path, query, header list and
-- body, with validation (one walk). Returns prepared | nil, err.
function Client:_prepare(plan, req, check)
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
			local has_ct = false
			for i = 1, #headers do if headers[i][1] == "content-type" then has_ct = true break end end
			-- curl would otherwise send application/x-www-form-urlencoded for a POST body
			if not has_ct then content_type = "application/json" end
		elseif plan.payload_kind == "eventstream" then
			content_type = "application/vnd.amazon.eventstream"
		end
	end
	return { plan = plan, method = plan.http_method, path = path, query = query,
		headers = headers, body = body, content_type = content_type }
end

-- Signs a prepared request for one attempt; returns the header list to send.
-- opts.time overrides the signing time (UNIX seconds).
function Client:_sign(p, creds, time)
	local cfg = self.config
	local ep = cfg.endpoint
	-- room for the usual eight headers from the start (no regrowth)
	local hdrs = { nil, nil, nil, nil, nil, nil, nil, nil }
	local ct = p.content_type
	if ct then hdrs[1] = CT_PAIRS[ct] or { "content-type", ct } end
	local ph = p.headers
	for i = 1, #ph do hdrs[#hdrs + 1] = ph[i] end
	if creds.token then
		hdrs[#hdrs + 1] = { "authorization", "Bearer " .. creds.token }
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
	if creds.session_token then
		hdrs[#hdrs + 1] = { "x-amz-security-token", creds.session_token }
	end
	-- the credentials and scope are given to the signer once (again when they change);
	-- each request then passes only its own parts
	local ak, sk = creds.access_key_id, creds.secret_access_key
	if self.prepared ~= signer or self.signed_ak ~= ak or self.signed_sk ~= sk then
		self.prepared = nil
		signer:prepare{ access_key = ak, secret_key = sk, region = cfg.region, service = "bedrock" }
		self.prepared, self.signed_ak, self.signed_sk = signer, ak, sk
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

-- Build and sign without sending (tests, debugging, the botocore differential).
-- opts: validate, time (UNIX seconds for the signature), credentials override.
function Client:_build(op, req, opts)
	opts = opts or {}
	local plan = resolve_plan(op)
	local check = opts.validate
	if check == nil then check = self.config.validate end
	local p, err = self:_prepare(plan, req, check)
	if not p then return nil, err end
	local creds
	creds, err = self.auth.get()
	if not creds then return nil, err end
	local hdrs
	hdrs, err = self:_sign(p, creds, opts.time)
	if not hdrs then return nil, err end
	return { method = p.method, url = url_of(self.config, p), path = p.path, query = p.query,
		headers = hdrs, body = p.body, host = self.config.endpoint.authority }
end

---------------------------------------------------------------------------- responses

local function header_value(node, v)
	if v == nil then return nil end
	local k = node.kind
	if k == "integer" or k == "long" then
		local n = tonumber(v)
		return n and (tointeger and tointeger(n) or n) or v
	elseif k == "boolean" then
		return v == "true"
	end
	return v
end

-- Parses a complete non-streaming response: the same function the client uses on a
-- live response. headers have lower-case names. Returns result | nil, err.
function _M.parse(plan, status, headers, body, opts)
	headers = headers or {}
	if status < 200 or status >= 300 then
		local err = errors.from_http(status, headers, body)
		err.retryable = retry.classify(err) ~= nil
		return nil, err
	end
	local out
	if plan.output_payload_kind == "blob" then
		out = { [plan.output_payload] = body or "" }
		if opts and opts.decode then
			local ct = headers["content-type"] or ""
			if ct == "" or find(ct, "json", 1, true) then
				local v, err = json.decode(body or "")
				if v == nil then
					return nil, errors.new{ code = "SerializationError", status = status,
						message = "response body is not valid JSON: " .. tostring(err),
						request_id = errors.request_id(headers) }
				end
				out.json = v
			end
		end
	else
		if body == nil or body == "" or find(body, "^%s*$") then
			out = {}
		else
			local v, err = json.decode_raw(body)
			if type(v) ~= "table" then
				return nil, errors.new{ code = "SerializationError", status = status,
					message = "response body is not a JSON object: " .. tostring(err or type(v)),
					request_id = errors.request_id(headers) }
			end
			out = plan.output.read(v)
		end
	end
	local oh = plan.output_headers
	for i = 1, #oh do
		local m = oh[i]
		local v = headers[m.name]
		if v ~= nil then out[m.member] = header_value(m.node, v) end
	end
	return out
end

function Client.parse(_, op, status, headers, body, opts)
	return _M.parse(resolve_plan(op), status, headers, body, opts)
end

-- A Stream over recorded/complete bytes (captures, tests): the same stream code as a
-- live response. `slices` optionally splits the body (a size, or a list of sizes).
function _M.stream_from_body(plan, status, headers, body, slice)
	headers = headers or {}
	if status < 200 or status >= 300 then
		return nil, errors.from_http(status, headers, body)
	end
	if not core or not core.decoder then
		return nil, errors.make("ConfigError", "bedrock.core (decoder) is not available")
	end
	local pos = 1
	local src = { read = function()
		if pos > #body then return nil end
		local n = slice or #body
		local chunk = sub(body, pos, pos + n - 1)
		pos = pos + n
		return chunk
	end }
	local meta = {}
	for _, m in ipairs(plan.output_headers) do
		local v = headers[m.name]
		if v ~= nil then meta[m.member] = header_value(m.node, v) end
	end
	local s = stream.new{ plan = plan, node = plan.output_stream, source = src,
		decoder = core.decoder(), request_id = errors.request_id(headers), status = status,
		headers = headers, meta = meta }
	s.meta_fields = meta
	return s
end

---------------------------------------------------------------------------- sending

local function hint_ms(headers)
	if not headers then return nil end
	local h = tonumber(headers["x-amz-retry-after"])
	if h then return h end
	h = tonumber(headers["retry-after"])
	if h then return h * 1000 end
	return nil
end

function Client:_emit_request(info)
	local f = self.on_request
	if f then f(info) end
	if self.logger then
		self.logger(format("bedrock: -> %s %s (attempt %d)", info.method, info.url, info.attempt), info)
	end
end

function Client:_emit_response(info)
	local f = self.on_response
	if f then f(info) end
	if self.logger then
		self.logger(format("bedrock: <- %s %s %s in %.3fs (attempt %d)%s", info.method, info.url,
			tostring(info.status or "-"), info.timing and info.timing.total or 0, info.attempt,
			info.error and (" " .. tostring(info.error)) or ""), info)
	end
end

-- Reads a whole (error) response body from an opened transfer.
local function drain(s)
	local parts = {}
	while true do
		local data, err = s:read()
		if data == nil or data == false then
			if err then return concat(parts), err end
			break
		end
		if data ~= true then parts[#parts + 1] = data end
	end
	return concat(parts)
end

local DECODE = { decode = true }

-- One attempt. Returns result | nil, err, response headers.
function Client:_attempt(p, attempt, max, invocation_id, opts, decode)
	local creds, err = self.auth.get()
	if not creds then return nil, err end
	local hdrs
	hdrs, err = self:_sign(p, creds, opts.time)
	if not hdrs then return nil, err end
	hdrs[#hdrs + 1] = { "amz-sdk-invocation-id", invocation_id }
	hdrs[#hdrs + 1] = attempt == 1 and ATTEMPT1 or
		{ "amz-sdk-request", "attempt=" .. attempt .. "; max=" .. max }
	local ua = self.ua_pair
	if not ua then
		ua = { "user-agent", self.config.user_agent or USER_AGENT }
		self.ua_pair = ua
	end
	hdrs[#hdrs + 1] = ua
	local t
	t, err = self:_transport()
	if not t then return nil, err end
	local cfg = self.config
	local url = url_of(cfg, p)
	local plan = p.plan
	local hooks = self.on_request or self.on_response or self.logger
	local info
	if hooks then
		info = { operation = plan.name, method = p.method, url = url, attempt = attempt,
			headers = redact_list(hdrs), body_length = p.body and #p.body or 0 }
		self:_emit_request(info)
	end
	local timeouts = opts.timeouts
	if plan.output_stream then
		local s
		s, err = t:open{ method = p.method, url = url, headers = hdrs, body = p.body,
			timeouts = timeouts }
		if not s then
			if info then info.error = err; self:_emit_response(info) end
			return nil, err
		end
		local status, rh = s.status, s.headers or {}
		if info then
			info.status, info.response_headers = status, rh
			self:_emit_response(info)
		end
		if status < 200 or status >= 300 then
			local body = drain(s)
			s:close()
			local _, perr = _M.parse(plan, status, rh, body)
			return nil, perr, rh
		end
		local meta = {}
		for _, m in ipairs(plan.output_headers) do
			local v = rh[m.name]
			if v ~= nil then meta[m.member] = header_value(m.node, v) end
		end
		local st = stream.new{ plan = plan, node = plan.output_stream, source = s,
			decoder = core.decoder(), request_id = errors.request_id(rh), status = status,
			headers = rh, meta = meta }
		st.meta_fields = meta
		local ok
		ok, err = st:_prime()
		if not ok then
			err.retryable = self.policy.classify(err) ~= nil
			return nil, err, rh
		end
		return st
	end
	local res
	if t == self.own_transport then
		-- one request table per client, refilled per call: the curl transport only
		-- reads it (a caller's transport gets a table of its own, it may keep it)
		local tr = self.treq
		tr.method, tr.url, tr.headers, tr.body, tr.timeouts = p.method, url, hdrs, p.body, timeouts
		res, err = t:request(tr)
		tr.headers, tr.body, tr.timeouts = nil, nil, nil
	else
		res, err = t:request{ method = p.method, url = url, headers = hdrs, body = p.body,
			timeouts = timeouts }
	end
	if not res then
		if info then info.error = err; self:_emit_response(info) end
		return nil, err
	end
	if info then
		info.status, info.response_headers, info.timing = res.status, res.headers, res.timing
		info.http_version = res.http_version
		self:_emit_response(info)
	end
	local out
	out, err = _M.parse(plan, res.status, res.headers, res.body, decode and DECODE or nil)
	if not out then return nil, err, res.headers end
	return out, nil, res.headers, res.status
end

-- The generic call: validate + build once, then attempts with retries.
function Client:_call(plan, req, opts)
	opts = opts or EMPTY
	if type(opts) ~= "table" then error("options must be a table", 3) end
	if opts.dry_run then return self:_build(plan.name, req, opts) end
	local check = opts.validate
	if check == nil then check = self.config.validate end
	local p, err = self:_prepare(plan, req, check)
	if not p then return nil, err end
	local decode = opts.decode
	if decode == nil then decode = self.decode end
	local policy = self.policy
	local max = policy.max_attempts
	local invocation_id = uuid4()
	local attempt, last_cost = 0, 0
	local sleep = self.config.retry.sleep or retry.default_sleep
	while true do
		attempt = attempt + 1
		local out, e, rh, status = self:_attempt(p, attempt, max, invocation_id, opts, decode)
		if out then
			policy:success(last_cost)
			if type(out) == "table" and getmetatable(out) ~= stream.Stream then
				return out, { status = status or 200, request_id = errors.request_id(rh),
					headers = rh, attempts = attempt }
			end
			out.attempts = attempt
			return out
		end
		if type(e) ~= "table" then e = errors.make("ConnectionError", tostring(e)) end
		local again, delay, cost = policy:decide(e, attempt, hint_ms(rh))
		e.retryable = policy.classify(e) ~= nil
		if not again then
			e.attempts = attempt
			return nil, e
		end
		last_cost = cost
		if delay > 0 then sleep(delay) end
	end
end

---------------------------------------------------------------------------- bidirectional

-- InvokeModelWithBidirectionalStream over HTTP/2 with a streamed request body (reference
-- §11): each input event is framed as an inner event-stream message ({"bytes": base64})
-- wrapped in an outer frame with :date and :chunk-signature, the signature chained from
-- the request's seed signature. Never retried (the JS SDK never retries a streaming body).
local Bidi = setmetatable({}, { __index = stream.Stream })
Bidi.__index = Bidi
Bidi.__name = "bedrock.BidiStream"
_M.Bidi = Bidi

local STREAMING = "STREAMING-AWS4-HMAC-SHA256-EVENTS"

-- Frames and sends one input event: { chunk = { bytes = "<raw bytes>" } } or a string
-- (the chunk bytes). Returns true | nil, err.
function Bidi:send(ev)
	if self.input_closed then return nil, errors.make("StreamError", "input already closed") end
	if type(ev) == "string" then ev = { chunk = { bytes = ev } } end
	if type(ev) ~= "table" then return verr("event", "expected { chunk = { bytes = ... } } or a string") end
	local plan = self.plan
	local et, v = next(ev)
	local m = plan.input_stream.members[et]
	if not m or next(ev, et) ~= nil then
		return verr("event", "an input event has exactly one member: " .. plan.input_stream.member_text)
	end
	local st = { n = 1, check = true, [1] = et }
	local buf = {}
	local n, err = m.node.write(v, buf, 0, st)
	if not n then return nil, errors.new{ code = "ValidationError", message = err, field = shapes.path(st) } end
	local inner, ierr = core.encode({ { ":event-type", 7, et }, { ":message-type", 7, "event" },
		{ ":content-type", 7, "application/json" } }, concat(buf, "", 1, n))
	if not inner then return nil, errors.make("StreamError", "could not encode the event: " .. tostring(ierr)) end
	return self:_frame(inner)
end

function Bidi:_frame(payload)
	local ms = (self.clock and self.clock() or os_time()) * 1000
	if tointeger then ms = tointeger(floor(ms)) or ms end
	local sig, hex = self.signer:sign_event(self.sign_params, self.prior, ms, payload)
	if not sig then return nil, errors.make("StreamError", "could not sign the event: " .. tostring(hex)) end
	self.prior = hex
	local frame, ferr = core.encode({ { ":date", 8, ms }, { ":chunk-signature", 6, sig } }, payload)
	if not frame then return nil, errors.make("StreamError", "could not frame the event: " .. tostring(ferr)) end
	local ok, err = self.source:send(frame)
	if not ok then return nil, err end
	return true
end

-- Ends the input: sends the signed empty frame, then ends the request body.
function Bidi:close_input()
	if self.input_closed then return true end
	self.input_closed = true
	local ok, err = self:_frame("")
	if not ok then return nil, err end
	return self.source:close_input()
end

function Client:_bidi(plan, req, opts)
	opts = opts or {}
	local check = opts.validate
	if check == nil then check = self.config.validate end
	if type(req) ~= "table" then return verr(nil, "request must be a table") end
	local initial = req.body
	local r = {}
	for k, v in pairs(req) do r[k] = v end
	r.body = nil
	local p, err = self:_prepare(plan, r, check)
	if not p then return nil, err end
	if initial ~= nil and (type(initial) ~= "table" or (#initial == 0 and next(initial) ~= nil)) then
		return verr("body", "a list of input events ({ chunk = { bytes = ... } })")
	end
	p.content_type = "application/vnd.amazon.eventstream"
	p.payload_hash = STREAMING
	p.body = nil
	local ph = {}
	for i = 1, #p.headers do ph[i] = p.headers[i] end
	ph[#ph + 1] = { "x-amz-content-sha256", STREAMING }
	p.headers = ph
	local creds
	creds, err = self.auth.get()
	if not creds then return nil, err end
	if creds.token then
		return nil, errors.make("NotSupported", "invoke_model_with_bidirectional_stream signs every " ..
			"input event with SigV4: it needs access keys, not a bearer token")
	end
	local hdrs
	hdrs, err = self:_sign(p, creds, opts.time)
	if not hdrs then return nil, err end
	hdrs[#hdrs + 1] = { "amz-sdk-invocation-id", uuid4() }
	hdrs[#hdrs + 1] = { "amz-sdk-request", "attempt=1; max=1" }
	hdrs[#hdrs + 1] = { "user-agent", self.config.user_agent or USER_AGENT }
	local t
	t, err = self:_transport()
	if not t then return nil, err end
	local url = url_of(self.config, p)
	local info
	if self.on_request or self.on_response or self.logger then
		info = { operation = plan.name, method = p.method, url = url, attempt = 1,
			headers = redact_list(hdrs), body_length = 0 }
		self:_emit_request(info)
	end
	local s
	s, err = t:open{ method = p.method, url = url, headers = hdrs, body_stream = true, http2 = true,
		timeouts = opts.timeouts }
	if not s then
		if info then info.error = err; self:_emit_response(info) end
		return nil, err
	end
	local b = stream.new{ plan = plan, node = plan.output_stream, source = s,
		decoder = core.decoder() }
	setmetatable(b, Bidi)
	b.signer = self:_signer()
	b.prior = p.signature
	b.clock = opts.clock
	b.sign_params = { access_key = creds.access_key_id, secret_key = creds.secret_access_key,
		session_token = creds.session_token, region = self.config.region, service = "bedrock" }
	b.attempts = 1
	b.client, b.info = self, info
	-- The body is written before the response headers are awaited (a server may answer
	-- only after the first input): the initial events go out first, then the headers are
	-- awaited so that an HTTP error is still `nil, err`. Without initial events the
	-- headers are awaited on the first read, and an HTTP error is raised there.
	for i = 1, #(initial or {}) do
		local ok, serr = b:send(initial[i])
		if not ok then b:close() return nil, serr end
	end
	if #(initial or {}) > 0 then
		local ok, rerr = b:_response()
		if not ok then return nil, rerr end
	end
	return b
end

-- Waits for the response headers once; true | nil, err (the transfer closed on error).
function Bidi:_response()
	if self.responded then return true end
	local s = self.source
	local status, rh = s:response()
	if not status then
		self:close()
		return nil, rh
	end
	self.responded = true
	rh = rh or {}
	self.status, self.headers, self.request_id = status, rh, errors.request_id(rh)
	local info = self.info
	if info then
		info.status, info.response_headers = status, rh
		self.client:_emit_response(info)
	end
	if status < 200 or status >= 300 then
		-- end our side first: the transport ends it by itself when the error body has a
		-- Content-Length, but a chunked one only completes once the request body ended
		self.input_closed = true
		s:close_input()
		local body = drain(s)
		self:close()
		local _, perr = _M.parse(self.plan, status, rh, body)
		self.failed = perr
		return nil, perr
	end
	return true
end

function Bidi:next()
	if not self.responded then
		local ok, err = self:_response()
		if not ok then error(err, 0) end
	end
	return stream.Stream.next(self)
end
Bidi.__call = function(self) return self:next() end

-- One method per operation, from the plans.
for name, plan in pairs(plans) do
	if name == "InvokeModelWithBidirectionalStream" then
		Client[plan.method_name] = function(self, req, opts)
			return self:_bidi(plan, req, opts)
		end
	else
		Client[plan.method_name] = function(self, req, opts)
			return self:_call(plan, req, opts)
		end
	end
end

-- for page in client:list_async_invokes_pages(req) do ... end
-- Each page is a ListAsyncInvokes response; the iterator follows nextToken until it is
-- absent. A failure is raised (like stream iterators), never a silent end.
function Client:list_async_invokes_pages(req, opts)
	local plan = plans.ListAsyncInvokes
	local pg = plan.paginator
	local r = {}
	for k, v in pairs(req or {}) do r[k] = v end
	local done, seen = false, {}
	return function()
		if done then return nil end
		local page, err = self:_call(plan, r, opts)
		if not page then done = true; error(err, 0) end
		local tok = page[pg.output_token]
		if tok == nil or tok == "" then
			done = true
		else
			if seen[tok] then
				done = true
				error(errors.make("SerializationError", "the service returned the same nextToken twice"), 0)
			end
			seen[tok] = true
			r[pg.input_token] = tok
		end
		return page
	end
end

return _M
