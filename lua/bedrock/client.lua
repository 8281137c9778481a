-- The client: every operation as a method, built from its plan (lua/bedrock/operations.lua)
-- and sent through one generic path: request.lua builds and signs, call.lua sends with
-- retries, response.lua parses, bidi.lua runs the bidirectional stream.
--
--   local client, err = Client.new(opts)
--   client:<operation>(req [, opts]) -> result, meta | nil, err     (JSON / blob operations)
--   client:<stream operation>(req [, opts]) -> stream | nil, err
--   client:_build(name_or_method, req [, opts]) -> prepared request | nil, err  (no traffic)
--   client:parse(name, status, headers, body) -> result | nil, err  (the response parser)
local bidi = require "bedrock.bidi"
local call = require "bedrock.call"
local config = require "bedrock.config"
local credentials = require "bedrock.credentials"
local errors = require "bedrock.errors"
local operations = require "bedrock.operations"
local request = require "bedrock.request"
local response = require "bedrock.response"
local retry = require "bedrock.retry"

local _M = { _VERSION = request.VERSION }

local type, pairs, ipairs, tostring, setmetatable, getmetatable, pcall, error =
	type, pairs, ipairs, tostring, setmetatable, getmetatable, pcall, error
local format = string.format
local plans, by_method = operations.plans, operations.by_method

local has_core, core = pcall(require, "bedrock.core")
if not has_core or type(core) ~= "table" then core = nil end
_M.core = core

-- modeled `retryable` traits for the retry policy
for name, node in pairs(operations.exceptions) do
	if node.retryable then retry.modeled[name] = node.retryable end
	if node.error and node.error.httpStatusCode then retry.modeled_status[name] = node.error.httpStatusCode end
end

-- the building blocks, for specs and tools
_M.uri_encode, _M.uuid4, _M.redact_list = request.uri_encode, request.uuid4, request.redact_list
_M.parse, _M.stream_from_body = response.parse, response.stream_from_body
_M.Bidi = bidi.Bidi

---------------------------------------------------------------------------- client

local Client = {}
Client.__index = Client
Client.__name = "bedrock.Client"
Client.__tostring = function(c)
	local cfg = c.config
	return format("bedrock.Client(%s, %s, %s)", tostring(cfg.region or "region not resolved yet"),
		cfg.endpoint and cfg.endpoint.url or "endpoint not resolved yet", c.auth.scheme)
end
_M.Client = Client

-- `client.converse{...}` (a dot for a colon) passes the request as `self`: say so, naming
-- the method, at the caller's line. Every public method starts with this check.
local function check_self(self, method, level)
	if getmetatable(self) ~= Client then
		error(format("%s must be called as a method: use client:%s(...) (with a colon, not a dot)",
			method, method), level + 1)
	end
end
_M.check_self = check_self

-- Options that configure the client's own transport. A transport passed in keeps its own
-- settings: giving these as well would silently lose them, so it is refused.
local TRANSPORT_OPTIONS = { "timeouts", "http2", "verify", "cainfo", "capath" }

-- Which transport a client uses: `transport = "curl"` or `"ngx"` by name, a transport
-- object as it is, or (nil) chosen at the first call: the nginx cosocket transport when
-- running inside nginx's Lua module (so that no call blocks the worker), libcurl
-- elsewhere. Deciding at the first call, not in new(), lets a client made in init_by_lua
-- serve requests later.
local TRANSPORTS = { curl = "bedrock.transport.curl", ngx = "bedrock.transport.ngx" }

local function in_nginx()
	local n = rawget(_G, "ngx")
	return type(n) == "table" and type(n.socket) == "table" and type(n.get_phase) == "function"
end

local function check_transport(opts)
	local t = opts.transport
	local tt = type(t)
	if tt == "string" then
		if TRANSPORTS[t] then return true end
		return nil, errors.make("ConfigError", "transport must be \"curl\", \"ngx\" or an object with " ..
			"request/open methods, got \"" .. t .. "\"", { field = "transport" })
	end
	if tt ~= "userdata" and (tt ~= "table" or
		(type(t.request) ~= "function" and type(t.open) ~= "function")) then
		return nil, errors.make("ConfigError", "transport must be an object with request/open " ..
			"methods (e.g. bedrock.transport.curl.new{...}), or \"curl\" or \"ngx\"", { field = "transport" })
	end
	local clash = {}
	for _, k in ipairs(TRANSPORT_OPTIONS) do
		if opts[k] ~= nil then clash[#clash + 1] = k end
	end
	if #clash > 0 then
		return nil, errors.make("ConfigError", "the client options " .. table.concat(clash, ", ") ..
			" configure the client's own transport; a transport passed in keeps its own " ..
			"settings: give them to it instead (T.new{ " .. table.concat(clash, " = ..., ") ..
			" = ... })", { field = clash[1], fields = clash })
	end
	return true
end

function _M.new(opts)
	if type(opts) == "table" and opts.transport ~= nil then
		local ok, terr = check_transport(opts)
		if not ok then return nil, terr end
	end
	local cfg, err = config.resolve(opts)
	if not cfg then return nil, err end
	local auth
	auth, err = credentials.resolve(opts and opts.credentials, cfg)
	if not auth then return nil, err end
	local self = setmetatable({
		config = cfg, auth = auth,
		policy = retry.new(cfg.retry),
		on_request = cfg.on_request, on_response = cfg.on_response, logger = cfg.logger,
		transport = opts and type(opts.transport) ~= "string" and opts.transport or nil,
		transport_kind = opts and type(opts.transport) == "string" and opts.transport or nil,
		decode = opts and opts.decode,
	}, Client)
	-- the credential providers' HTTP goes through this client's transport
	cfg.http = credentials.http_from(function() return self:_transport() end)
	return self
end

-- Completes the configuration from the shared files (once, on the first request).
function Client:_ready()
	local cfg = self.config
	local ok, err = config.load(cfg)
	if not ok then return nil, err end
	if not cfg.endpoint then return nil, cfg.no_region end
	self.policy = retry.new(cfg.retry)
	self.ready = true
	return true
end

--- @module client
-- Every operation of the service model is a method of the client, called with a colon:
-- `client:converse(req [, opts])`. `req` uses the API's member names (`modelId`,
-- `inferenceConfig`, …); members bound to the path, query or headers go in the same
-- table. A request is validated against the model before any traffic: the first problem
-- is a `ValidationError` whose `field` names the path (`messages[1].content[1].text`).
-- Every failure is `nil, err`; stream iterators raise the error instead.

--- @field meta.status The HTTP status.
--- @field meta.request_id `x-amzn-RequestId`.
--- @field meta.headers The response headers (lower-case names).
--- @field meta.attempts How many attempts the call made (retries + 1).

--- @field creds.access_key_id SigV4: the access key id (`secret_access_key`, `session_token` beside it).
--- @field creds.token A Bedrock API key (bearer), instead of the keys.
--- @field creds.expiration When temporary credentials expire (UNIX seconds), absent for long-term ones.
--- @field creds.source The provider that answered: `"env"`, `"shared-credentials-file"`, `"assume-role"`,
-- `"sso"`, `"container-role"`, `"iam-role"`, … (the chain's names).

--- client:credentials() -> creds | nil, err
-- Resolves the credentials now (the chain runs on the first request otherwise; the shared
-- files are read then too). `creds.source` names the provider that answered (`"env"`,
-- `"shared-credentials-file"`, `"assume-role"`, …); `tostring(creds)` never shows a secret.
function Client:credentials()
	check_self(self, "credentials", 2)
	local ok, err = config.load(self.config)
	if not ok then return nil, err end
	return self.auth.get()
end

function Client:_transport()
	local t = self.transport
	if t then return t end
	local kind = self.transport_kind or (in_nginx() and "ngx" or "curl")
	local ok, T = pcall(require, TRANSPORTS[kind])
	if not ok then
		return nil, errors.make("ConfigError", "HTTP transport " .. TRANSPORTS[kind] .. " is not available: " .. tostring(T))
	end
	local cfg = self.config
	local terr
	-- inside nginx the trust store is nginx's (lua_ssl_trusted_certificate): a CA file
	-- from AWS_CA_BUNDLE or a profile cannot be applied per connection there
	local ngx_kind = kind == "ngx"
	ok, t, terr = pcall(T.new, { http2 = cfg.http2 or false, verify = cfg.verify,
		cainfo = not ngx_kind and cfg.cainfo or nil, capath = not ngx_kind and cfg.capath or nil,
		timeouts = cfg.timeouts, max_body = cfg.max_body, max_error_body = cfg.max_error_body })
	if not ok then
		if not errors.is(t) then t = errors.make("ConfigError", tostring(t)) end
		return nil, t
	end
	if not t then return nil, terr end
	self.transport = t
	-- the reused request table only for curl, whose request() never yields
	self.own_transport, self.treq = t, kind == "curl" and {} or nil
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

--- client:close()
-- Closes the connections and the signer; idempotent. A closed client opens a new
-- connection if it is used again.
function Client:close()
	check_self(self, "close", 2)
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

Client._prepare = request.prepare
Client._sign = request.sign

-- Build and sign without sending (tests, debugging, the botocore differential).
-- opts: validate, time (UNIX seconds for the signature), credentials override.
function Client:_build(op, req, opts)
	check_self(self, "_build", 2)
	opts = opts or {}
	local ok, oerr = config.check_call_options(opts)
	if not ok then return nil, oerr end
	local plan = resolve_plan(op)
	local check = opts.validate
	if check == nil then check = self.config.validate end
	local p, err = request.prepare(self, plan, req, check)
	if not p then return nil, err end
	local creds
	creds, err = self.auth.get()
	if not creds then return nil, err end
	local hdrs
	hdrs, err = request.sign(self, p, creds, opts.time)
	if not hdrs then return nil, err end
	return { method = p.method, url = request.url(self.config, p), path = p.path, query = p.query,
		headers = hdrs, body = p.body, host = self.config.endpoint.authority }
end

--- client:parse(op, status, headers, body) -> result | nil, err
-- The response parser the client uses, for an operation name (`"Converse"`) or method
-- name (`"converse"`); headers with lower-case names. For tests and recorded traffic.
function Client.parse(_, op, status, headers, body, opts)
	return response.parse(resolve_plan(op), status, headers, body, opts)
end

-- One method per operation, from the plans.
for name, plan in pairs(plans) do
	local mname = plan.method_name
	if name == "InvokeModelWithBidirectionalStream" then
		Client[mname] = function(self, req, opts)
			if getmetatable(self) ~= Client then check_self(self, mname, 2) end
			return bidi.open(self, plan, req, opts)
		end
	else
		Client[mname] = function(self, req, opts)
			if getmetatable(self) ~= Client then check_self(self, mname, 2) end
			return call.run(self, plan, req, opts)
		end
	end
end

--- client:converse_with_tools(req) -> result | nil, err
-- The tool-calling loop ([Tool loop](#tool-loop)): calls the model, runs the handlers it
-- asks for, sends the results back, until the model answers without asking for tools.
function Client:converse_with_tools(req)
	check_self(self, "converse_with_tools", 2)
	return require("bedrock.tools").loop(self, req)
end

--- client:list_async_invokes_pages([req [, opts]]) -> iterator
-- `for page in client:list_async_invokes_pages{ maxResults = 50 } do … end`: each page is a
-- ListAsyncInvokes response; the iterator follows `nextToken` until it is absent. A
-- failure is raised (like stream iterators), never a silent end; a `req` that is not a
-- table raises a `ValidationError` at once.
function Client:list_async_invokes_pages(req, opts)
	check_self(self, "list_async_invokes_pages", 2)
	if req ~= nil and type(req) ~= "table" then
		error(errors.new{ code = "ValidationError", message = "request must be a table (got " ..
			type(req) .. ")" }, 2)
	end
	if opts ~= nil and type(opts) ~= "table" then error("options must be a table", 2) end
	local plan = plans.ListAsyncInvokes
	local pg = plan.paginator
	local r = {}
	for k, v in pairs(req or {}) do r[k] = v end
	local done, seen = false, {}
	return function()
		if done then return nil end
		local page, err = call.run(self, plan, r, opts)
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
