-- HTTP/1.1 response framing in pure Lua (RFC 9112), for transports that move the bytes
-- themselves (the nginx cosocket transport). A push parser: feed it whatever arrived,
-- split anywhere, and take out the head, then body slices, then the end.
--
--   local http1 = require "bedrock.http1"
--   local p = http1.response{ method = "POST", max_line = 8192, max_header = 65536,
--                             max_headers = 100 }
--   p:feed(bytes)
--   local kind, a, b = p:next()
--     "more", want      -- needs more input; want = bytes worth reading at most (nil: any)
--     "head", status, headers   -- headers: lower-case names, repeats joined with ", "
--     "data", bytes     -- a slice of the body (chunked framing removed)
--     "done"            -- the response is complete
--     nil, message      -- malformed input; the parser stays failed
--   p:eof()             -- the peer closed: true when that ends the response cleanly
--                       -- (a body delimited by the close), else nil, message
--   p:keepalive()       -- after "done": may the connection carry another request?
--
-- Strict where leniency lets a peer smuggle or desynchronise: CRLF line ends only (no
-- bare LF), no obsolete line folding, Content-Length digits only and consistent,
-- Content-Length together with Transfer-Encoding refused, chunk sizes hex only (bounded),
-- the CRLF after each chunk's data checked, limits on line length, header block size and
-- header count. Interim 1xx responses (100 Continue) are skipped.
local _M = { _VERSION = "0.1.0" }

local find, sub, byte, lower, match = string.find, string.sub, string.byte, string.lower, string.match
local tonumber, setmetatable, type = tonumber, setmetatable, type

_M.MAX_LINE = 8192
_M.MAX_HEADER = 65536
_M.MAX_HEADERS = 100
-- Largest chunk size accepted (hex digits are bounded first, so no overflow in LuaJIT's
-- doubles or Lua 5.4's integers).
_M.MAX_CHUNK = 2 ^ 40
local MAX_HEX_DIGITS = 11

local Parser = {}
Parser.__index = Parser
Parser.__name = "bedrock.http1.Parser"

local S_STATUS, S_HEADER, S_BODY_LEN, S_BODY_CLOSE, S_CHUNK_SIZE, S_CHUNK_DATA,
	S_CHUNK_CRLF, S_TRAILER, S_DONE, S_FAILED = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10

local TOKEN = "^[%w!#$%%&'*+.^_`|~-]+$"

function _M.response(opts)
	opts = opts or {}
	if type(opts) ~= "table" then error("bedrock.http1.response expects an options table", 2) end
	return setmetatable({
		method = opts.method and opts.method:upper() or "GET",
		max_line = opts.max_line or _M.MAX_LINE,
		max_header = opts.max_header or _M.MAX_HEADER,
		max_headers = opts.max_headers or _M.MAX_HEADERS,
		buf = "", pos = 1,
		state = S_STATUS,
		head_bytes = 0, n_headers = 0,
		headers = nil, status = nil, version = nil,
		remaining = 0, -- body bytes left (Content-Length or current chunk)
		conn_close = false,
	}, Parser)
end

function Parser:feed(data)
	if data == nil or data == "" then return end
	local buf, pos = self.buf, self.pos
	if pos > #buf then
		self.buf, self.pos = data, 1
	else
		self.buf, self.pos = sub(buf, pos) .. data, 1
	end
end

-- Bytes fed but not yet parsed.
function Parser:buffered()
	return #self.buf - self.pos + 1
end

function Parser:fail(msg)
	self.state = S_FAILED
	self.err = msg
	self.buf, self.pos = "", 1
	return nil, msg
end

-- The next CRLF-terminated line (without CRLF), "" for an empty line, or false when
-- more input is needed; nil, err for a bare LF or a line over the limit.
function Parser:line(limit)
	local buf, pos = self.buf, self.pos
	local nl = find(buf, "\n", pos, true)
	if not nl then
		if #buf - pos + 1 > limit + 1 then return nil, "line longer than " .. limit .. " bytes" end
		return false
	end
	if nl == pos or byte(buf, nl - 1) ~= 13 then
		return nil, "line not ended by CRLF (bare LF)"
	end
	if nl - 1 - pos > limit then return nil, "line longer than " .. limit .. " bytes" end
	local l = sub(buf, pos, nl - 2)
	self.pos = nl + 1
	return l, nl - pos + 1
end

local function has_token(list, tok)
	for item in list:gmatch("[^,]+") do
		if lower((item:gsub("^[ \t]+", ""):gsub("[ \t]+$", ""))) == tok then return true end
	end
	return false
end

-- Decides how the body is framed once the head is complete.
function Parser:frame()
	local h, status = self.headers, self.status
	local conn = h["connection"]
	if self.version == "1.0" then
		self.conn_close = not (conn and has_token(conn, "keep-alive"))
	else
		self.conn_close = conn and has_token(conn, "close") or false
	end
	local te, cl = h["transfer-encoding"], h["content-length"]
	if self.method == "HEAD" or status == 204 or status == 304 or
		(self.method == "CONNECT" and status >= 200 and status < 300) then
		self.state = S_DONE
		return true
	end
	if te then
		if cl then return nil, "both Transfer-Encoding and Content-Length in a response" end
		-- only plain "chunked" (a coding before it would need decoding we do not do)
		if lower(te):gsub("[ \t]", "") ~= "chunked" then
			return nil, "unsupported Transfer-Encoding: " .. te
		end
		self.state = S_CHUNK_SIZE
		return true
	end
	if cl then
		-- repeats were joined with ", ": all must be the same digits
		local first
		for v in (cl .. ","):gmatch("([^,]*),") do
			v = v:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")
			if not find(v, "^%d+$") or #v > 15 then return nil, "bad Content-Length: " .. cl end
			if first and v ~= first then return nil, "conflicting Content-Length values: " .. cl end
			first = v
		end
		self.remaining = tonumber(first)
		self.state = self.remaining > 0 and S_BODY_LEN or S_DONE
		return true
	end
	self.state = S_BODY_CLOSE
	self.conn_close = true
	return true
end

-- Takes up to `remaining` body bytes from the buffer; nil when the buffer is empty.
function Parser:take()
	local buf, pos = self.buf, self.pos
	local avail = #buf - pos + 1
	if avail <= 0 then return nil end
	local n = self.remaining
	if n > avail then n = avail end
	local d
	if pos == 1 and n == #buf then
		d = buf
		self.buf, self.pos = "", 1
	else
		d = sub(buf, pos, pos + n - 1)
		self.pos = pos + n
	end
	self.remaining = self.remaining - n
	return d
end

function Parser:next()
	while true do
		local st = self.state
		if st == S_STATUS or st == S_HEADER then
			local l, n = self:line(self.max_line)
			if l == nil then return self:fail(n) end
			if l == false then return "more", nil end
			self.head_bytes = self.head_bytes + n
			if self.head_bytes > self.max_header then
				return self:fail("response header block larger than " .. self.max_header .. " bytes")
			end
			if st == S_STATUS then
				local v, code = match(l, "^HTTP/1%.([01]) (%d%d%d)")
				if not v or (#l > 12 and byte(l, 13) ~= 32) then
					return self:fail("bad status line: " .. sub(l, 1, 64))
				end
				self.version, self.status = "1." .. v, tonumber(code)
				if self.status < 100 then return self:fail("bad status code " .. code) end
				self.headers, self.n_headers = {}, 0
				self.state = S_HEADER
			elseif l == "" then
				if self.status < 200 then
					if self.status == 101 then return self:fail("unexpected 101 Switching Protocols") end
					-- interim response: the real one follows
					self.state, self.head_bytes = S_STATUS, 0
				else
					local ok, err = self:frame()
					if not ok then return self:fail(err) end
					return "head", self.status, self.headers
				end
			else
				local c = byte(l, 1)
				if c == 32 or c == 9 then return self:fail("obsolete header line folding") end
				local name, value = match(l, "^([^:]*):[ \t]*(.*)$")
				if not name or not find(name, TOKEN) then
					return self:fail("bad header line: " .. sub(l, 1, 64))
				end
				local last = byte(value, -1)
				if last == 32 or last == 9 then value = match(value, "^(.-)[ \t]*$") end
				if find(value, "[%z\r\n]") then return self:fail("header '" .. name .. "' value contains CR, LF or NUL") end
				self.n_headers = self.n_headers + 1
				if self.n_headers > self.max_headers then
					return self:fail("more than " .. self.max_headers .. " response headers")
				end
				name = lower(name)
				local h = self.headers
				local old = h[name]
				h[name] = old and (old .. ", " .. value) or value
			end
		elseif st == S_BODY_LEN or st == S_CHUNK_DATA then
			local d = self:take()
			if not d then return "more", self.remaining end
			if self.remaining == 0 then
				self.state = st == S_BODY_LEN and S_DONE or S_CHUNK_CRLF
			end
			return "data", d
		elseif st == S_BODY_CLOSE then
			local buf, pos = self.buf, self.pos
			if pos > #buf then return "more", nil end
			local d = pos == 1 and buf or sub(buf, pos)
			self.buf, self.pos = "", 1
			return "data", d
		elseif st == S_CHUNK_SIZE then
			local l, n = self:line(self.max_line)
			if l == nil then return self:fail(n) end
			if l == false then return "more", nil end
			local hex, rest = match(l, "^(%x+)(.*)$")
			if not hex then return self:fail("bad chunk size line: " .. sub(l, 1, 64)) end
			if rest ~= "" and not find(rest, "^[ \t]*;") then
				return self:fail("bad chunk size line: " .. sub(l, 1, 64))
			end
			local digits = hex:gsub("^0+", "")
			if #digits > MAX_HEX_DIGITS then return self:fail("chunk size too large: " .. sub(hex, 1, 32)) end
			local size = tonumber(hex, 16)
			if size > _M.MAX_CHUNK then return self:fail("chunk size too large: " .. hex) end
			if size == 0 then
				self.state, self.head_bytes = S_TRAILER, 0
			else
				self.remaining, self.state = size, S_CHUNK_DATA
			end
		elseif st == S_CHUNK_CRLF then
			local buf, pos = self.buf, self.pos
			if #buf - pos + 1 < 2 then
				if pos <= #buf and byte(buf, pos) ~= 13 then
					return self:fail("chunk data not followed by CRLF")
				end
				return "more", 2 - (#buf - pos + 1)
			end
			if byte(buf, pos) ~= 13 or byte(buf, pos + 1) ~= 10 then
				return self:fail("chunk data not followed by CRLF")
			end
			self.pos = pos + 2
			self.state = S_CHUNK_SIZE
		elseif st == S_TRAILER then
			local l, n = self:line(self.max_line)
			if l == nil then return self:fail(n) end
			if l == false then return "more", nil end
			self.head_bytes = self.head_bytes + n
			if self.head_bytes > self.max_header then
				return self:fail("trailer block larger than " .. self.max_header .. " bytes")
			end
			if l == "" then
				self.state = S_DONE
			elseif not find(l, "^[%w!#$%%&'*+.^_`|~-]+:") then
				return self:fail("bad trailer line: " .. sub(l, 1, 64))
			end
		elseif st == S_DONE then
			return "done"
		else
			return nil, self.err
		end
	end
end

-- The peer closed the connection: true when that ends the response (a body delimited by
-- the close, or one already complete), else nil, message saying what was cut.
function Parser:eof()
	local st = self.state
	if st == S_DONE then return true end
	if st == S_BODY_CLOSE then
		if self.pos > #self.buf then
			self.state = S_DONE
			return true
		end
		return nil, "unread body bytes at the end" -- next() must take them first
	end
	if st == S_FAILED then return nil, self.err end
	local what
	if st == S_STATUS and self.head_bytes == 0 and self:buffered() == 0 then
		what = "connection closed before any response byte"
	elseif st == S_STATUS or st == S_HEADER then
		what = "connection closed inside the response header"
	elseif st == S_BODY_LEN then
		what = "connection closed with " .. self.remaining .. " body bytes missing"
	else
		what = "connection closed inside the chunked body"
	end
	self:fail(what)
	return nil, what
end

function Parser:done()
	return self.state == S_DONE
end

-- Whether the connection can be reused: the response ended by its own framing, the peer
-- did not ask to close, and nothing beyond the response arrived.
function Parser:keepalive()
	return self.state == S_DONE and not self.conn_close and self.pos > #self.buf
end

return _M
