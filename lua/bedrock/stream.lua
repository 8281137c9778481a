-- Event-stream responses: a Stream object that is an iterator (callable, and :events()),
-- collects into the non-streaming shape (:collect()), and closes (:close()).
--
-- Messages come from a `source` (an object with read() -> bytes | true (fed the decoder
-- itself) | nil/false at the end | nil, err) through core.decoder. Events keep the AWS
-- shape: { contentBlockDelta = { contentBlockIndex = 0, delta = { text = "Hi" } } }.
-- Unknown event types are skipped, as both SDKs do. `exception` and `error` messages
-- and framing errors are RAISED as bedrock.errors objects, so a failure can never end a
-- for loop silently.
local errors = require "bedrock.errors"
local json = require "bedrock.json"

local _M = { _VERSION = "0.1.0" }

local type, setmetatable, error, pairs, tostring, next, pcall, ipairs =
	type, setmetatable, error, pairs, tostring, next, pcall, ipairs
local concat, sort = table.concat, table.sort
local decode_raw, decode_doc = json.decode_raw, json.decode
local SENTINEL = json.SENTINEL

-- Event types whose shape is one blob member (InvokeModelWithResponseStream's chunk:
-- PayloadPart.bytes), per eventstream node: { [event type] = member name }. The decoder
-- base64-decodes such a payload itself when it is plain ({"bytes":"<base64>"}, members
-- the model does not know being dropped as the reader drops them): dec:next(blobs) then
-- gives the bytes and the member name, and no payload string is made.
local blob_events = setmetatable({}, { __mode = "k", __index = function(t, node)
	local blobs = {}
	for et, m in pairs(node.members or {}) do
		local n, key, count = m.node, nil, 0
		for name, mm in pairs(n.members or {}) do
			count = count + 1
			if mm.node.kind == "blob" then key = name end
		end
		if n.kind == "structure" and not n.exception and count == 1 and key then blobs[et] = key end
	end
	t[node] = blobs
	return blobs
end })
_M.blob_events = blob_events

local Stream = {}
Stream.__index = Stream
Stream.__name = "bedrock.Stream"
_M.Stream = Stream

local function stream_error(msg, code, extra)
	local e = extra or {}
	e.code, e.message, e.detail_code = "StreamError", msg, code
	return errors.new(e)
end
_M.stream_error = stream_error

-- new{ plan =, node = (eventstream node), source =, decoder =, meta = {...},
--      on_close = fn(stream, clean) }
function _M.new(o)
	local s = setmetatable({
		node = o.node, source = o.source, decoder = o.decoder, on_close = o.on_close,
		plan = o.plan, eof = false, done = false, events_seen = 0, messages_seen = 0,
		request_id = o.request_id, status = o.status, headers = o.headers,
	}, Stream)
	local blobs = o.node and blob_events[o.node]
	if blobs and next(blobs) ~= nil then s.blobs = blobs end
	if o.meta then for k, v in pairs(o.meta) do s[k] = v end end
	return s
end

-- Fails the stream: closes the source and raises err.
local function raise(self, err)
	self.failed = err
	self:close()
	if self.request_id and err.request_id == nil then err.request_id = self.request_id end
	error(err, 0)
end

-- Next raw message: headers, payload | nil at the clean end; or, for an event whose
-- payload the decoder decoded itself, event type, value, how: how is a member name when
-- the value is a blob event's decoded bytes (see blob_events), true when it is the JSON
-- payload decoded (as json.decode_raw decodes it). Raises on framing errors and
-- transport failures.
function Stream:_message()
	if self.pending_h then
		local h, p, k = self.pending_h, self.pending_p, self.pending_k
		self.pending_h, self.pending_p, self.pending_k = nil, nil, nil
		return h, p, k
	end
	local dec, blobs = self.decoder, self.blobs
	while true do
		local h, p, code = dec:next(blobs, SENTINEL)
		if h then
			self.messages_seen = self.messages_seen + 1
			return h, p, code
		end
		if p ~= nil then
			return raise(self, stream_error("event stream: " .. tostring(p), code))
		end
		if self.eof then
			local ok, msg, c = dec:finish()
			if not ok then
				return raise(self, stream_error("event stream: " .. tostring(msg), c))
			end
			self.done = true
			self:close(true)
			return nil
		end
		local data, err = self.source:read()
		if data == nil or data == false then
			if err then
				if type(err) ~= "table" then err = errors.make("ConnectionError", tostring(err)) end
				err.in_stream = true
				return raise(self, err)
			end
			self.eof = true
		elseif data ~= true then
			local ok, msg, c = dec:feed(data)
			if not ok then return raise(self, stream_error("event stream: " .. tostring(msg), c)) end
		end
	end
end

-- Pulls messages until the first one; keeps it for next(). Returns an error object (not
-- raised) when the first message is an exception/error, so the caller may retry.
function Stream:_prime()
	local ok, h, p, k = pcall(self._message, self)
	if not ok then return nil, h end
	if h == nil then return true end
	local mt = k == nil and h[":message-type"]
	if mt == "exception" or mt == "error" then
		local err = errors.from_event(h, p)
		err.request_id = self.request_id
		self.failed = err
		self:close()
		return nil, err
	end
	self.pending_h, self.pending_p, self.pending_k = h, p, k
	return true
end

-- Next event table, or nil at the end. Raises a bedrock.errors object on failure.
function Stream:next()
	if self.failed then error(self.failed, 0) end
	local members = self.node.members
	while true do
		if self.done and not self.pending_h then return nil end
		local h, p, kind = self:_message() -- kind: what the decoder did with p (see _message)
		if h == nil then return nil end
		local mt, et
		if kind == nil then mt, et = h[":message-type"], h[":event-type"] else mt, et = "event", h end
		if mt == "event" or mt == nil then
			local m = et and members[et]
			if m and not m.node.exception then
				local v
				if kind == true then
					v = m.node.read(p)
				elseif kind then
					v = { [kind] = p }
				elseif p == "" then
					v = m.node.read({})
				else
					local err
					v, err = decode_raw(p)
					if v == nil then
						return raise(self, errors.make("SerializationError",
							"event " .. et .. ": invalid JSON payload: " .. tostring(err)))
					end
					v = m.node.read(v)
				end
				self.events_seen = self.events_seen + 1
				return { [et] = v }
			end
			-- unknown event type: skipped
		elseif mt == "exception" or mt == "error" then
			local err = errors.from_event(h, p)
			return raise(self, err)
		end
		-- other message types (none defined) are skipped
	end
end

Stream.__call = function(self) return self:next() end

function Stream:events()
	return function() return self:next() end
end

-- Closes the underlying transfer (idempotent). `clean` is true at the normal end.
function Stream:close(clean)
	if self.closed then return end
	self.closed = true
	local src = self.source
	if src and src.close then src:close(clean) end
	if self.on_close then self.on_close(self, clean) end
end

---------------------------------------------------------------------------- collect

local function finish_block(b)
	if b.text_parts then
		local text = concat(b.text_parts)
		b.text_parts = nil
		if b.citations then
			b.block = { citationsContent = { content = json.array{ { text = text } },
				citations = json.array(b.citations) } }
		else
			b.block.text = text
		end
	elseif b.citations then
		b.block = { citationsContent = { content = json.array{}, citations = json.array(b.citations) } }
	end
	if b.input_parts then
		local raw = concat(b.input_parts)
		b.input_parts = nil
		local tu = b.block.toolUse
		if raw == "" then
			tu.input = {}
		else
			local v = decode_doc(raw)
			if v == nil then tu.input = raw else tu.input = v end
		end
	end
	if b.reasoning_parts then
		local rc = b.block.reasoningContent
		rc.reasoningText = rc.reasoningText or {}
		rc.reasoningText.text = concat(b.reasoning_parts)
		b.reasoning_parts = nil
	end
	b.finished = true
end

-- Collects the rest of a ConverseStream into Converse's response shape:
-- { output = { message = { role, content = {...} } }, stopReason, usage, metrics,
--   additionalModelResponseFields, trace, performanceConfig, serviceTier }
-- For InvokeModelWithResponseStream: { body = <all chunk bytes joined>, contentType, ... }.
-- Raises like next() on failure.
function Stream:collect()
	local plan = self.plan
	if plan and plan.name ~= "ConverseStream" then
		local parts, n = {}, 0
		for ev in self:events() do
			if ev.chunk then n = n + 1; parts[n] = ev.chunk.bytes or "" end
		end
		local out = { body = concat(parts, "", 1, n) }
		for k, v in pairs(self.meta_fields or {}) do out[k] = v end
		return out
	end
	local blocks = {}
	local out = { output = { message = { role = "assistant", content = json.array{} } } }
	local function block(i)
		local b = blocks[i]
		if not b then
			b = { block = {}, index = i }
			blocks[i] = b
		end
		return b
	end
	for ev in self:events() do
		local k, v = next(ev)
		if k == "messageStart" then
			out.output.message.role = v.role or "assistant"
		elseif k == "contentBlockStart" then
			local b = block(v.contentBlockIndex or 0)
			local st = v.start or {}
			if st.toolUse then
				b.block.toolUse = { toolUseId = st.toolUse.toolUseId, name = st.toolUse.name,
					type = st.toolUse.type }
				b.input_parts = {}
			elseif st.toolResult then
				b.block.toolResult = { toolUseId = st.toolResult.toolUseId, status = st.toolResult.status,
					type = st.toolResult.type, content = json.array{} }
			elseif st.image then
				b.block.image = { format = st.image.format }
			end
		elseif k == "contentBlockDelta" then
			local b = block(v.contentBlockIndex or 0)
			local d = v.delta or {}
			if d.text then
				b.text_parts = b.text_parts or {}
				b.text_parts[#b.text_parts + 1] = d.text
			elseif d.toolUse then
				b.input_parts = b.input_parts or {}
				if not b.block.toolUse then b.block.toolUse = {} end
				b.input_parts[#b.input_parts + 1] = d.toolUse.input or ""
			elseif d.reasoningContent then
				local r = d.reasoningContent
				b.block.reasoningContent = b.block.reasoningContent or {}
				local rc = b.block.reasoningContent
				if r.text then
					b.reasoning_parts = b.reasoning_parts or {}
					b.reasoning_parts[#b.reasoning_parts + 1] = r.text
				end
				if r.signature then
					rc.reasoningText = rc.reasoningText or {}
					rc.reasoningText.signature = (rc.reasoningText.signature or "") .. r.signature
				end
				if r.redactedContent then
					rc.redactedContent = (rc.redactedContent or "") .. r.redactedContent
				end
			elseif d.citation then
				b.citations = b.citations or {}
				b.citations[#b.citations + 1] = d.citation
				b.text_parts = b.text_parts or {}
			elseif d.toolResult then
				b.block.toolResult = b.block.toolResult or { content = json.array{} }
				local c = b.block.toolResult.content
				for _, part in ipairs(d.toolResult) do c[#c + 1] = part end
			elseif d.image then
				b.block.image = b.block.image or {}
				if d.image.source then b.block.image.source = d.image.source end
				if d.image.error then b.block.image.error = d.image.error end
			end
		elseif k == "contentBlockStop" then
			local b = blocks[v.contentBlockIndex or 0]
			if b then finish_block(b) end
		elseif k == "messageStop" then
			out.stopReason = v.stopReason
			out.additionalModelResponseFields = v.additionalModelResponseFields
		elseif k == "metadata" then
			out.usage, out.metrics, out.trace = v.usage, v.metrics, v.trace
			out.performanceConfig, out.serviceTier = v.performanceConfig, v.serviceTier
		end
	end
	local idx = {}
	for i, b in pairs(blocks) do
		if not b.finished then finish_block(b) end
		idx[#idx + 1] = i
	end
	sort(idx)
	local content = out.output.message.content
	for _, i in ipairs(idx) do content[#content + 1] = blocks[i].block end
	return out
end

return _M
