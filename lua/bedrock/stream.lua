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
local shapes = require "bedrock.shapes"
local jit_events = require "bedrock.jit_events"
local core = require "bedrock.core"

local _M = { _VERSION = "0.1.0" }

local type, setmetatable, error, pairs, tostring, next, pcall, ipairs =
	type, setmetatable, error, pairs, tostring, next, pcall, ipairs
local concat, sort = table.concat, table.sort
local decode_raw, decode_doc = json.decode_raw, json.decode
local jit_take = jit_events.take
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

-- The readers of the event types the C decoder may read itself, per eventstream node:
-- { [event type] = shapes.reader_desc(event node) }: dec:next then gives the event's
-- value already read (as pcall(node.read, json) gives it) and 2.
local event_readers = setmetatable({}, { __mode = "k", __index = function(t, node)
	local readers = {}
	for et, m in pairs(node.members or {}) do
		if not m.node.exception then readers[et] = shapes.reader_desc(m.node) end
	end
	t[node] = readers
	return readers
end })
_M.event_readers = event_readers

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

local new_assembler -- forward (collect)

-- The text of a block (and its tool input, reasoning) kept for collect(): the deltas'
-- bytes appended to one growing buffer, with no string per delta kept (which would hold
-- tens of bytes of overhead per delta for the whole stream, over 200 MB for two million
-- deltas). LuaJIT's string.buffer where there is one (the JIT compiles its put), else
-- core.buffer: the same methods, put and tostring.
local ok_buf, strbuf = pcall(require, "string.buffer")
local new_parts = ok_buf and type(strbuf) == "table" and strbuf.new or core.buffer

-- ConverseStream's answer is complete once messageStop has arrived (metadata follows it).
-- InvokeModelWithResponseStream has no such event (its chunks are the model's own
-- format): a clean end of the HTTP body at a message boundary is all there is.
local FINAL_EVENT = { ConverseStream = "messageStop" }

-- the most events a batch takes (at most the whole ones the decoder holds)
local BATCH = 128

-- new{ plan =, node = (eventstream node), source =, decoder =, meta = {...},
--      on_close = fn(stream, clean) }
function _M.new(o)
	local s = setmetatable({
		acc = new_assembler(o.plan),
		node = o.node, source = o.source, decoder = o.decoder, on_close = o.on_close,
		plan = o.plan, eof = false, done = false,
		request_id = o.request_id, status = o.status, headers = o.headers,
		-- the event that marks a complete answer: a stream that ends before it was cut
		final_event = o.plan and FINAL_EVENT[o.plan.name] or nil,
		-- the queue of a batch's events (see next()): types qe[i], values qv[i], i = qi..qn
		qi = 1, qn = 0,
	}, Stream)
	local blobs = o.node and blob_events[o.node]
	if blobs and next(blobs) ~= nil then s.blobs = blobs end
	if o.node and o.node.members then
		s.readers = event_readers[o.node]
		-- events in batches: the decoder reads every whole event it holds at once (not
		-- for blob events, which dec:next base64-decodes itself); under LuaJIT they are
		-- built through the FFI (jit_events), else through the Lua C API (dec:take)
		if not s.blobs and type(o.decoder) == "userdata" then
			s.batch = true
			s.jit = jit_events.reader(s.readers)
			s.qe, s.qv, s.batched = {}, {}, 0
		end
	end
	if o.meta then for k, v in pairs(o.meta) do s[k] = v end end
	return s
end

-- Fails the stream: closes the source and raises err.
local function raise(self, err)
	if self.redact then self.redact(err) end
	self.failed = err
	self.qn = 0
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
		local h, p, code = dec:next(blobs, SENTINEL, self.readers)
		if h then
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
			if self.final_event and not self.final_seen then
				return raise(self, stream_error("event stream ended before " .. self.final_event ..
					": the answer is incomplete", "TRUNCATED"))
			end
			self.done = true
			self:close(true)
			return nil
		end
		self:_feed()
	end
end

-- Reads the source's next slice into the decoder: true; false at the end of the body.
-- Raises on transport failures and framing errors.
function Stream:_feed()
	local data, err = self.source:read()
	if data == nil or data == false then
		if err then
			if type(err) ~= "table" then err = errors.make("ConnectionError", tostring(err)) end
			err.in_stream = true
			return raise(self, err)
		end
		self.eof = true
		return false
	elseif data ~= true then
		local ok, msg, c = self.decoder:feed(data)
		if not ok then return raise(self, stream_error("event stream: " .. tostring(msg), c)) end
	end
	return true
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

--- @module stream
-- `client:converse_stream(req)` and `client:invoke_model_with_response_stream(req)` return
-- a stream once the response headers and the first event have arrived (failures before
-- that are `nil, err`, and retried). Events keep the AWS shape, a table with one key:
-- `{ contentBlockDelta = { contentBlockIndex = 0, delta = { text = "Hi" } } }`; unknown
-- event types are skipped. Failures after that are raised by the iterator: in-stream
-- exceptions (`code` = the exception name, e.g. `ModelStreamErrorException`), framing
-- errors and a ConverseStream body that ends before `messageStop` (`StreamError`),
-- `Timeout`, `ConnectionError`.

--- @field stream.status The HTTP status (200).
--- @field stream.headers The response headers (lower-case names).
--- @field stream.request_id `x-amzn-RequestId`.
--- @field stream.attempts How many attempts it took to start the stream.
--- @field stream.partial After a failed `collect()`: what was collected until then, in the same shape.
--- @field stream.contentType InvokeModelWithResponseStream: the response-header members
-- (`contentType`, `performanceConfigLatency`, `serviceTier`) are fields too.

-- An event read (type et, value v) handed to the caller: given to the assembler for
-- collect(), and wrapped in the API's shape.
local function deliver(self, et, v)
	if et == self.final_event then self.final_seen = true end
	-- (an event the assembler cannot take fails collect(), not the iteration)
	if not self.acc_err then
		local acc = self.acc
		-- the common event, a text delta to a block that already has text,
		-- appended here as acc:add would (no call, no pcall); all else goes
		-- through acc:add
		local tp, d, t
		if et == "contentBlockDelta" and acc.blocks then
			-- (blocks has number keys only: any other index finds nothing)
			local b = acc.blocks[v.contentBlockIndex]
			tp = b and b.text_parts
			d = tp and v.delta
			t = type(d) == "table" and d.text
		end
		if type(t) == "string" then
			tp:put(t)
		else
			local aok, aerr = pcall(acc.add, acc, et, v)
			if not aok then self.acc_err = aerr end
		end
	end
	return { [et] = v }
end

--- stream:next() -> event | nil
-- The next event, or `nil` at the end. Raises the error object on failure (a `StreamError`
-- with `detail_code = "CLOSED"` after `stream:close()`). `stream()` is the same call, so
-- `for ev in stream do … end` works.
function Stream:next()
	-- an event of the batch taken below, handed out without a loop here (so that
	-- LuaJIT compiles the caller's loop with this in it); the queue is emptied (qn = 0)
	-- when the stream fails or is closed
	local qi = self.qi
	if qi <= self.qn then
		local v = self.qv[qi]
		self.qv[qi] = nil
		self.qi = qi + 1
		return deliver(self, self.qe[qi], v)
	end
	if self.failed then error(self.failed, 0) end
	if self.closed then
		-- closed by its user: nothing more is handed out, buffered events included
		if self.done and not self.pending_h then return nil end
		error(stream_error("the stream was closed", "CLOSED"), 0)
	end
	local members = self.node.members
	local dec = self.decoder
	while true do
		-- kind: what the decoder did with p (see _message)
		local h, p, kind
		if self.pending_h or self.done then
			if self.done and not self.pending_h then return nil end
			h, p, kind = self:_message()
		else
			-- a message already in the decoder is taken here (_message's first step,
			-- without the call); for anything else _message reads and feeds
			local n, k = 0, -1
			if self.batch then
				-- a batch of events, handed out from the queue qe/qv (the top of
				-- next()); with none, the state: 0 the decoder needs bytes, -1 a message
				-- or error is held for dec:next
				if self.jit then
					n, k = jit_take(self.jit, dec, self.qe, self.qv, BATCH)
				elseif dec.take then
					n, k = dec:take(self.readers, SENTINEL, self.qe, self.qv, BATCH)
				end
				self.qn, self.qi = n, 1
				self.batched = self.batched + n
			end
			if n > 0 then
				h, p, kind = self.qe[1], self.qv[1], 2
				self.qv[1] = nil
				self.qi = 2
			elseif k == 0 then
				-- the batch needs bytes: fed here, so that the next batch takes the
				-- next message too (_message would hand it out itself)
				if not self.eof and self:_feed() then goto continue end
				h, p, kind = self:_message()
			else
				h, p, kind = dec:next(self.blobs, SENTINEL, self.readers)
				if h == nil then
					if p ~= nil then
						return raise(self, stream_error("event stream: " .. tostring(p), kind))
					end
					h, p, kind = self:_message()
				end
			end
		end
		if h == nil then return nil end
		local mt, et
		if kind == nil then mt, et = h[":message-type"], h[":event-type"] else mt, et = "event", h end
		if mt == "event" or mt == nil then
			local m = et and members[et]
			if m and not m.node.exception then
				local v
				if kind == 2 then
					v = p -- the decoder decoded and read it (event_readers)
				elseif kind and kind ~= true then
					v = { [kind] = p } -- a one-blob event the decoder decoded itself
				else
					local d = p -- kind == true: the decoder already decoded the JSON
					if kind == nil then
						if p == "" then
							d = {}
						else
							local err
							d, err = decode_raw(p)
							if d == nil then
								return raise(self, errors.make("SerializationError",
									"event " .. et .. ": invalid JSON payload: " .. tostring(err)))
							end
						end
					end
					if type(d) ~= "table" then
						return raise(self, errors.make("SerializationError",
							"event " .. et .. ": the payload is not a JSON object"))
					end
					local ok
					ok, v = pcall(m.node.read, d)
					if not ok then
						if not errors.is(v) then v = errors.make("SerializationError", tostring(v)) end
						v.message = "event " .. et .. ": " .. tostring(v.message)
						return raise(self, v)
					end
				end
				return deliver(self, et, v)
			end
			-- unknown event type: skipped
		elseif mt == "exception" or mt == "error" then
			local err = errors.from_event(h, p)
			return raise(self, err)
		end
		-- other message types (none defined) are skipped
		::continue::
	end
end

-- (the generic for calls it with the stream and the control value: next ignores them)
Stream.__call = Stream.next

--- stream:events() -> iterator
-- `for ev in stream:events() do … end`. Under Lua 5.4 the loop closes the stream when it
-- is left early (break, error): the fourth value is the stream, a to-be-closed value.
function Stream:events()
	return function() return self:next() end, nil, nil, self
end

-- Lua 5.4 `local s <close> = ...` and the generic for's closing value: releases the
-- connection at once. (LuaJIT: call s:close() after a break.)
Stream.__close = function(self) self:close() end

--- stream:close()
-- Closes the underlying transfer (idempotent; done for you at the end of the stream).
-- Nothing more is handed out after it, not even events already received.
function Stream:close(clean)
	if self.closed then return end
	self.closed = true
	self.qn = 0 -- (nothing more from the queue either)
	local src = self.source
	if src and src.close then src:close(clean) end
	if self.on_close then self.on_close(self, clean) end
end

---------------------------------------------------------------------------- collect

local function finish_block(b)
	if b.text_parts then
		local text = b.text_parts:tostring()
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
		local raw = b.input_parts:tostring()
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
		rc.reasoningText.text = b.reasoning_parts:tostring()
		b.reasoning_parts = nil
	end
	b.finished = true
end

-- A member the assembler uses must have the type it is used as: else a
-- SerializationError naming the event and the member (a broken or hostile peer), never
-- a raw Lua error.
local TYPE_NAMES = { table = "JSON object", string = "string", number = "number" }
local function expect(v, ty, et, field)
	if v ~= nil and type(v) ~= ty then
		error(errors.make("SerializationError", "event " .. et .. ": " .. field .. " must be a " ..
			TYPE_NAMES[ty] .. " (got " .. type(v) .. ")"), 0)
	end
	return v
end

-- The assembler: every event that next() hands out is added here, so that collect()
-- returns the whole message even when some events were taken before it was called. One
-- assembler per stream; the tool loop's streamed turns go through the same code.
-- add() raises a SerializationError on a member of the wrong type.
local Acc = {}
Acc.__index = Acc

local ChunkAcc = {}
ChunkAcc.__index = ChunkAcc

function ChunkAcc:add(k, v)
	if k == "chunk" then
		local n = self.n + 1
		self.parts[n] = expect(v.bytes, "string", "chunk", "bytes") or ""
		self.n = n
	end
end

function ChunkAcc:result(meta)
	local out = { body = concat(self.parts, "", 1, self.n) }
	for k, v in pairs(meta or {}) do out[k] = v end
	return out
end
ChunkAcc.partial = ChunkAcc.result

new_assembler = function(plan)
	if plan and plan.name ~= "ConverseStream" then
		return setmetatable({ parts = {}, n = 0 }, ChunkAcc)
	end
	return setmetatable({ blocks = {},
		out = { output = { message = { role = "assistant", content = json.array{} } } } }, Acc)
end
_M.assembler = new_assembler

function Acc:block(i, et)
	expect(i, "number", et, "contentBlockIndex")
	i = i or 0
	local b = self.blocks[i]
	if not b then
		b = { block = {}, index = i }
		self.blocks[i] = b
	end
	return b
end

-- Adds one ConverseStream event (type k, value v).
function Acc:add(k, v)
	local out = self.out
	if k == "contentBlockDelta" then
		local b = self:block(v.contentBlockIndex, k)
		local d = expect(v.delta, "table", k, "delta") or {}
		if d.text ~= nil then
			local tp = b.text_parts
			if not tp then tp = new_parts(); b.text_parts = tp end
			tp:put(expect(d.text, "string", k, "delta.text"))
		elseif d.toolUse ~= nil then
			expect(d.toolUse, "table", k, "delta.toolUse")
			b.input_parts = b.input_parts or new_parts()
			if not b.block.toolUse then b.block.toolUse = {} end
			b.input_parts:put(expect(d.toolUse.input, "string", k, "delta.toolUse.input") or "")
		elseif d.reasoningContent ~= nil then
			local r = expect(d.reasoningContent, "table", k, "delta.reasoningContent")
			b.block.reasoningContent = b.block.reasoningContent or {}
			local rc = b.block.reasoningContent
			if expect(r.text, "string", k, "delta.reasoningContent.text") then
				b.reasoning_parts = b.reasoning_parts or new_parts()
				b.reasoning_parts:put(r.text)
			end
			if expect(r.signature, "string", k, "delta.reasoningContent.signature") then
				rc.reasoningText = rc.reasoningText or {}
				rc.reasoningText.signature = (rc.reasoningText.signature or "") .. r.signature
			end
			if expect(r.redactedContent, "string", k, "delta.reasoningContent.redactedContent") then
				rc.redactedContent = (rc.redactedContent or "") .. r.redactedContent
			end
		elseif d.citation ~= nil then
			b.citations = b.citations or {}
			b.citations[#b.citations + 1] = expect(d.citation, "table", k, "delta.citation")
			b.text_parts = b.text_parts or new_parts()
		elseif d.toolResult ~= nil then
			expect(d.toolResult, "table", k, "delta.toolResult")
			b.block.toolResult = b.block.toolResult or { content = json.array{} }
			local c = b.block.toolResult.content
			for _, part in ipairs(d.toolResult) do c[#c + 1] = part end
		elseif d.image ~= nil then
			expect(d.image, "table", k, "delta.image")
			b.block.image = b.block.image or {}
			if d.image.source then b.block.image.source = d.image.source end
			if d.image.error then b.block.image.error = d.image.error end
		end
	elseif k == "messageStart" then
		out.output.message.role = expect(v.role, "string", k, "role") or "assistant"
	elseif k == "contentBlockStart" then
		local b = self:block(v.contentBlockIndex, k)
		local st = expect(v.start, "table", k, "start") or {}
		if expect(st.toolUse, "table", k, "start.toolUse") then
			b.block.toolUse = { toolUseId = st.toolUse.toolUseId, name = st.toolUse.name,
				type = st.toolUse.type }
			b.input_parts = new_parts()
		elseif expect(st.toolResult, "table", k, "start.toolResult") then
			b.block.toolResult = { toolUseId = st.toolResult.toolUseId, status = st.toolResult.status,
				type = st.toolResult.type, content = json.array{} }
		elseif expect(st.image, "table", k, "start.image") then
			b.block.image = { format = st.image.format }
		end
	elseif k == "contentBlockStop" then
		expect(v.contentBlockIndex, "number", k, "contentBlockIndex")
		local b = self.blocks[v.contentBlockIndex or 0]
		if b then finish_block(b) end
	elseif k == "messageStop" then
		out.stopReason = expect(v.stopReason, "string", k, "stopReason")
		out.additionalModelResponseFields = v.additionalModelResponseFields
	elseif k == "metadata" then
		out.usage, out.metrics, out.trace = v.usage, v.metrics, v.trace
		out.performanceConfig, out.serviceTier = v.performanceConfig, v.serviceTier
	end
end

-- The content blocks gathered so far, in index order, into out.
local function assemble(out, blocks)
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

-- Converse's response shape from what was added (idempotent).
function Acc:result()
	if self.done then return self.out end
	self.done = true
	return assemble(self.out, self.blocks)
end

-- What was gathered before a failure, in the same shape: the blocks that finish cleanly.
function Acc:partial()
	local src = self.out
	local out = { output = { message = { role = src.output.message.role, content = json.array{} } },
		stopReason = src.stopReason, usage = src.usage, metrics = src.metrics }
	local blocks = {}
	for i, b in pairs(self.blocks) do
		if b.finished or pcall(finish_block, b) then blocks[i] = b end
	end
	return assemble(out, blocks)
end

-- A failed collect(): what was collected stays on the stream (s.partial, same shape),
-- and the error object is raised.
local function collect_failed(self, err)
	if not errors.is(err) then
		err = errors.make("SerializationError", "an event has an unexpected shape: " .. tostring(err))
	end
	self.partial = self.acc:partial(self.meta_fields)
	if self.failed then error(self.failed, 0) end
	return raise(self, err)
end

--- stream:collect() -> result
-- Collects the stream into Converse's response shape, the events already taken
-- included: { output = { message = { role, content = {...} } }, stopReason, usage,
-- metrics, additionalModelResponseFields, trace, performanceConfig, serviceTier }.
-- For InvokeModelWithResponseStream: { body = <all chunk bytes joined>, contentType, ... }.
-- Raises like next() on failure (and on an event of the wrong shape, a
-- SerializationError), keeping what was collected until then in `s.partial`.
function Stream:collect()
	local ok, err = pcall(function()
		local nxt = self.next
		while nxt(self) do end
	end)
	if not ok then return collect_failed(self, err) end
	if self.acc_err then return collect_failed(self, self.acc_err) end
	local out
	ok, out = pcall(self.acc.result, self.acc, self.meta_fields)
	if not ok then return collect_failed(self, out) end
	return out
end

return _M
