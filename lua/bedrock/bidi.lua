-- InvokeModelWithBidirectionalStream: a stream whose request body is written while the
-- response is read.
--
--   bidi.open(client, plan, req, opts) -> BidiStream | nil, err
--   s:send(event), s:close_input(), for ev in s do ... end
local call = require "bedrock.call"
local config = require "bedrock.config"
local errors = require "bedrock.errors"
local request = require "bedrock.request"
local response = require "bedrock.response"
local shapes = require "bedrock.shapes"
local stream = require "bedrock.stream"

local _M = {}

local type, pairs, next, setmetatable, error = type, pairs, next, setmetatable, error
local concat, floor = table.concat, math.floor
local os_time = os.time
local tointeger = math.tointeger
local verr = request.verr

local has_core, core = pcall(require, "bedrock.core")
if not has_core or type(core) ~= "table" then core = nil end

-- InvokeModelWithBidirectionalStream over HTTP/2 with a streamed request body:
-- each input event is framed as an inner event-stream message ({"bytes": base64})
-- wrapped in an outer frame with :date and :chunk-signature, the signature chained from
-- the request's seed signature. Never retried (the JS SDK never retries a streaming body).
local Bidi = setmetatable({}, { __index = stream.Stream })
Bidi.__index = Bidi
Bidi.__name = "bedrock.BidiStream"

local STREAMING = "STREAMING-AWS4-HMAC-SHA256-EVENTS"

--- @module bidi
-- `client:invoke_model_with_bidirectional_stream(req [, opts])` opens an HTTP/2 request
-- whose body is written while the response is read, and returns once the request has
-- started (initial events in `req.body` are sent first and the response headers awaited,
-- so an HTTP error is `nil, err`). It is a stream (`next`, `events`, `collect`, `close`
-- as above; output events are `{ chunk = { bytes = … } }`) with two more methods. Each
-- input event is signed, chained from the request's signature; bearer tokens are refused
-- (`NotSupported`). Never retried.

--- bidi:send(event) -> true | nil, err
-- Frames, signs and sends one input event: `{ chunk = { bytes = "<raw bytes>" } }` or a
-- string (the chunk bytes). Waits while more than one buffer of input is queued.
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
	if self.closed then return nil, errors.make("ConnectionError", "stream is closed") end
	local ms = (self.clock and self.clock() or os_time()) * 1000
	if tointeger then ms = tointeger(floor(ms)) or ms end
	-- nil params: the credentials the stream's own signer was prepared with (in C)
	local sig, hex = self.signer:sign_event(nil, self.prior, ms, payload)
	if not sig then return nil, errors.make("StreamError", "could not sign the event: " .. tostring(hex)) end
	self.prior = hex
	local frame, ferr = core.encode({ { ":date", 8, ms }, { ":chunk-signature", 6, sig } }, payload)
	if not frame then return nil, errors.make("StreamError", "could not frame the event: " .. tostring(ferr)) end
	local ok, err = self.source:send(frame)
	if not ok then return nil, err end
	return true
end

--- bidi:close_input() -> true | nil, err
-- Ends the input: sends the signed empty frame, then ends the request body (idempotent).
function Bidi:close_input()
	if self.input_closed then return true end
	self.input_closed = true
	local ok, err = self:_frame("")
	if not ok then return nil, err end
	return self.source:close_input()
end

function _M.open(self, plan, req, opts)
	if opts ~= nil and type(opts) ~= "table" then error("options must be a table", 3) end
	opts = opts or {}
	local opts_ok, oerr = config.check_call_options(opts)
	if not opts_ok then return nil, oerr end
	local check = opts.validate
	if check == nil then check = self.config.validate end
	if type(req) ~= "table" then return verr(nil, "request must be a table") end
	local initial = req.body
	local r = {}
	for k, v in pairs(req) do r[k] = v end
	r.body = nil
	local p, err = request.prepare(self, plan, r, check)
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
	hdrs, err = request.sign(self, p, creds, opts.time)
	if not hdrs then return nil, err end
	hdrs[#hdrs + 1] = { "amz-sdk-invocation-id", request.uuid4() }
	hdrs[#hdrs + 1] = { "amz-sdk-request", "attempt=1; max=1" }
	hdrs[#hdrs + 1] = { "user-agent", self.config.user_agent or request.USER_AGENT }
	local t
	t, err = self:_transport()
	if not t then return nil, err end
	local url = request.url(self.config, p)
	local info
	if self.on_request or self.on_response or self.logger then
		info = { operation = plan.name, method = p.method, url = url, attempt = 1,
			headers = request.redact_list(hdrs), body_length = 0 }
		call.emit_request(self, info)
	end
	local s
	local max_error_body = opts.max_error_body
	if max_error_body == nil then max_error_body = self.config.max_error_body end
	s, err = t:open{ method = p.method, url = url, headers = hdrs, body_stream = true, http2 = true,
		timeouts = opts.timeouts, max_error_body = max_error_body }
	if not s then
		if info then info.error = err; call.emit_response(self, info) end
		return nil, err
	end
	-- the frames are signed with the opening request's credentials for the stream's whole
	-- life: a signer of its own holds them (in C), closed with the stream
	local es = core.signer()
	es:prepare{ access_key = creds.access_key_id, secret_key = creds.secret_access_key,
		region = self.config.region, service = "bedrock" }
	local b = stream.new{ plan = plan, node = plan.output_stream, source = s,
		decoder = core.decoder(), on_close = function(st) st.signer:close() end }
	setmetatable(b, Bidi)
	b.signer = es
	b.prior = p.signature
	b.clock = opts.clock
	b.redact = call.redactor(creds)
	b.attempts = 1
	b.max_error_body = max_error_body
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
		call.stream_timing(info, s)
		call.emit_response(self.client, info)
	end
	if status < 200 or status >= 300 then
		-- end our side first: the transport ends it by itself when the error body has a
		-- Content-Length, but a chunked one only completes once the request body ended
		self.input_closed = true
		s:close_input()
		local body, derr = response.drain(s, self.max_error_body, status, rh)
		self:close()
		local perr = derr
		if body ~= nil then perr = select(2, response.parse(self.plan, status, rh, body)) end
		if self.redact then self.redact(perr) end
		self.failed = perr
		return nil, perr
	end
	return true
end

--- bidi:next() -> event | nil
-- The next output event; the first call waits for the response headers when no initial
-- event was sent, and raises an HTTP error then. Raises like `stream:next()`.
function Bidi:next()
	if not self.responded then
		local ok, err = self:_response()
		if not ok then error(err, 0) end
	end
	return stream.Stream.next(self)
end
Bidi.__call = function(self) return self:next() end

_M.Bidi = Bidi

return _M
