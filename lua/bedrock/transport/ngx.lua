-- The nginx cosocket transport: HTTP/1.1 over ngx.socket.tcp, for code running inside
-- nginx's Lua module (OpenResty, or Debian's nginx with libnginx-mod-http-lua). Every
-- wait is a cosocket operation, which yields to nginx's event loop: no call here blocks
-- the worker, so one worker serves many calls at once.
--
--   local T = require "bedrock.transport.ngx"
--   local t = T.new{ verify = true, timeouts = { connect =, first_byte =, idle =, total = },
--                    pool_size = 32, keepalive_timeout = 60000, proxy = nil | false | {...},
--                    recv_size = 65536, max_body = 64 MiB, max_error_body = 1 MiB }
--   local res, err = t:request{ method =, url =, headers = { {name, value}, ... }, body =,
--                               timeouts = {...} }
--   local s, err = t:open{ same fields, decoder = dec }
--   s:read() ; s:response() ; s:close()
--   t:stats() ; t:close()
--
-- The same surface and error objects as bedrock.transport.curl: Timeout naming which
-- deadline passed, ConnectionError with `retryable`, StreamError from the decoder,
-- ValidationError before any traffic. What cosockets cannot do is refused clearly: HTTP/2
-- and a streamed request body (the bidirectional operation) answer NotSupported, and a
-- call from a phase without cosockets (init_by_lua, header/body filters, log) answers
-- NotSupported naming the phase.
--
-- TLS: sslhandshake with verification on, SNI = the URL's host; trust anchors come from
-- nginx's `lua_ssl_trusted_certificate` (lua-nginx-module has no per-connection CA file,
-- so `cainfo`/`capath` are refused rather than ignored). Keep-alive: connections go back
-- to nginx's cosocket pool (setkeepalive) only when the response allows it; the pool name
-- holds host, port, SNI, verification and proxy, so a verified connection is never handed
-- to an unverified caller or the other way round. Proxies as libcurl reads them from the
-- environment (http_proxy, https_proxy/HTTPS_PROXY, all_proxy, no_proxy/NO_PROXY; in nginx
-- a worker sees only variables named by `env` directives): absolute-form requests for
-- http://, a CONNECT tunnel for https://.
--- @module bedrock.transport.ngx
-- `local ngxt = require "bedrock.transport.ngx"`: HTTP/1.1 over nginx cosockets, which a
-- client inside nginx's Lua module uses by itself (or with `transport = "ngx"`). The same
-- surface and error objects as `bedrock.transport.curl`; HTTP/2 and a streamed request
-- body (the bidirectional operation) are `NotSupported`, and so is a call from an nginx
-- phase without cosockets. See [openresty.md](openresty.md).

local errors = require "bedrock.errors"
local http1 = require "bedrock.http1"
local options = require "bedrock.transport.options"

local _M = { _VERSION = "0.1.0" }

local type, tostring, tonumber, pairs, ipairs, setmetatable, getmetatable =
	type, tostring, tonumber, pairs, ipairs, setmetatable, getmetatable
local find, sub, lower, match, format = string.find, string.sub, string.lower, string.match, string.format
local concat = table.concat

-- Largest response bodies read whole (request()), as in the curl transport: 2xx, other.
local MAX_BODY, MAX_ERROR_BODY = options.MAX_BODY, options.MAX_ERROR_BODY
local bad_limit, check_timeouts, per_request = options.bad_limit, options.check_timeouts,
	options.per_request

-- "No deadline": a week, in ms (cosocket timeouts are milliseconds, must be finite).
local FOREVER = 7 * 86400 * 1000
local DEFAULT_RECV = 65536

-- Phases where cosockets (and ngx.sleep) work (lua-nginx-module README, ngx.socket.tcp).
local COSOCKET_PHASES = {
	rewrite = true, access = true, content = true, timer = true,
	ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}
_M.COSOCKET_PHASES = COSOCKET_PHASES

local function ngx_api()
	local n = rawget(_G, "ngx")
	if type(n) == "table" and type(n.socket) == "table" and type(n.get_phase) == "function" then
		return n
	end
	return nil
end

--- ngxt.available() -> boolean
-- Whether this code runs inside nginx in a phase where cosockets work.
function _M.available()
	local n = ngx_api()
	return n ~= nil and COSOCKET_PHASES[n.get_phase()] == true
end

local function phase_error()
	local n = ngx_api()
	if not n then
		return errors.new{ code = "NotSupported",
			message = "the ngx transport runs only inside nginx's Lua module (no ngx.socket here)" }
	end
	local phase = n.get_phase()
	if COSOCKET_PHASES[phase] then return nil end
	return errors.new{ code = "NotSupported", phase = phase,
		message = "cosockets are not available in nginx's '" .. tostring(phase) ..
			"' phase; call Bedrock from rewrite/access/content_by_lua or from an ngx.timer" }
end
_M.phase_error = phase_error

local verr, header_pair, headers_array = options.verr, options.header_pair, options.headers_array

local Transport = {}
Transport.__index = Transport
Transport.__name = "bedrock.transport.ngx"

local Stream = {}
Stream.__index = Stream
Stream.__name = "bedrock.transport.ngx.Stream"

---------------------------------------------------------------------------- URLs, proxies

-- "https://host:port/path?q" -> scheme, host (no brackets), port, target ("/path?q"),
-- authority as written (for Host). nil, message when malformed.
local function parse_url_uncached(url)
	if type(url) ~= "string" then return nil, "must be an http:// or https:// URL, got " .. tostring(url) end
	if find(url, "[%z\1-\32\127]") then return nil, "must not contain spaces or control characters" end
	local scheme, rest = match(url, "^([Hh][Tt][Tt][Pp][Ss]?)://(.*)$")
	if not scheme then return nil, "must be an http:// or https:// URL, got " .. url end
	scheme = lower(scheme)
	local authority, target = match(rest, "^([^/?#]*)(.*)$")
	target = target:gsub("#.*$", "")
	if target == "" then target = "/" elseif sub(target, 1, 1) == "?" then target = "/" .. target end
	if find(authority, "@", 1, true) then return nil, "must not carry user information" end
	local host, port
	if sub(authority, 1, 1) == "[" then
		host, port = match(authority, "^%[([%x:.]+)%]:?(%d*)$")
	else
		host, port = match(authority, "^([^:]+):?(%d*)$")
	end
	if not host or host == "" then return nil, "has no valid host: " .. url end
	port = tonumber(port ~= "" and port or (scheme == "https" and 443 or 80))
	if port < 1 or port > 65535 then return nil, "has a bad port: " .. url end
	return { scheme = scheme, host = lower(host), port = port, target = target, authority = authority }
end

-- Parsed URLs, by URL: a client sends the same few URLs call after call. Bounded: past
-- the limit URLs are parsed every time. The tables are shared: never modified.
local url_memo, n_url_memo = {}, 0
local function parse_url(url)
	local u = url_memo[url]
	if u then return u end
	local msg
	u, msg = parse_url_uncached(url)
	if u and n_url_memo < 256 then
		n_url_memo = n_url_memo + 1
		url_memo[url] = u
	end
	return u, msg
end
_M.parse_url = parse_url

-- no_proxy matching as libcurl does it: "*" matches every host; an entry matches the host
-- itself or any subdomain (a leading dot is optional); IP literals match exactly.
local function no_proxy_match(list, host)
	if not list or list == "" then return false end
	for entry in list:gmatch("[^,%s]+") do
		entry = lower(entry)
		if entry == "*" then return true end
		entry = entry:gsub("^%.", ""):gsub("^%[(.*)%]$", "%1")
		if host == entry then return true end
		if #host > #entry and sub(host, -#entry - 1) == "." .. entry then return true end
	end
	return false
end
_M.no_proxy_match = no_proxy_match

local function b64(s)
	local n = rawget(_G, "ngx")
	if n and n.encode_base64 then return n.encode_base64(s) end
	return require("bedrock.core").b64encode(s)
end

-- A proxy URL -> { host, port, auth = "Basic ..." | nil, name = "host:port" } or nil, err.
local function parse_proxy(url, field)
	if type(url) ~= "string" or url == "" then return nil end
	if not find(url, "://", 1, true) then url = "http://" .. url end
	local scheme, userinfo, rest = match(url, "^(%a[%w+.-]*)://([^@/]*@)(.*)$")
	if not scheme then
		userinfo = ""
		scheme, rest = match(url, "^(%a[%w+.-]*)://(.*)$")
	end
	if not scheme or lower(scheme) ~= "http" then
		return nil, errors.new{ code = "ConfigError", field = field,
			message = "only http:// proxies are supported by the ngx transport, got " .. url:gsub("//[^@/]*@", "//") }
	end
	local u = parse_url("http://" .. rest)
	if not u then
		return nil, errors.new{ code = "ConfigError", field = field, message = "bad proxy URL" }
	end
	local auth
	if userinfo ~= "" then
		userinfo = sub(userinfo, 1, -2):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
		auth = "Basic " .. b64(userinfo)
	end
	return { host = u.host, port = u.port, auth = auth, name = u.host .. ":" .. u.port }
end

---------------------------------------------------------------------------- transport

--- ngxt.new([opts]) -> transport
-- opts: `verify` (default true), `timeouts`, `pool_size`, `keepalive_timeout` (ms),
-- `proxy` (`nil`: from the environment, `false`: none), `recv_size`, `max_body`,
-- `max_error_body`. `http2`, `cainfo` and `capath` are refused (nginx's
-- `lua_ssl_trusted_certificate` is the trust store). Raises a `ConfigError` naming
-- `field` for a bad option.
function _M.new(opts)
	opts = opts or {}
	if type(opts) ~= "table" then error("bedrock.transport.ngx.new expects an options table", 2) end
	local function bad(field, msg)
		error(errors.new{ code = "ConfigError", field = field, message = msg }, 3)
	end
	if opts.http2 then
		bad("http2", "HTTP/2 is not available over nginx cosockets (HTTP/1.1 only)")
	end
	if opts.verify ~= nil and type(opts.verify) ~= "boolean" then bad("verify", "must be a boolean") end
	if opts.cainfo ~= nil or opts.capath ~= nil then
		bad(opts.cainfo ~= nil and "cainfo" or "capath",
			"nginx's Lua module verifies against lua_ssl_trusted_certificate; set the CA there " ..
			"(there is no per-connection CA file for cosockets)")
	end
	for _, f in ipairs{ "max_body", "max_error_body" } do
		if bad_limit(opts[f]) then bad(f, "must be a byte count, or false") end
	end
	for _, f in ipairs{ "pool_size", "keepalive_timeout", "recv_size" } do
		local v = opts[f]
		if v ~= nil and (type(v) ~= "number" or v < 1 or v ~= v) then bad(f, "must be a positive number") end
	end
	local ok, e = check_timeouts(opts.timeouts, "timeouts")
	if not ok then e.code = "ConfigError"; error(e, 2) end
	local timeouts = {}
	for k, v in pairs(opts.timeouts or {}) do timeouts[k] = v end
	local proxy = opts.proxy
	local proxies
	if proxy == false then
		proxies = false
	elseif proxy ~= nil then
		if type(proxy) ~= "table" then bad("proxy", "must be false or a table { http =, https =, no_proxy = }") end
		proxies = { no_proxy = proxy.no_proxy }
		local err
		proxies.http, err = parse_proxy(proxy.http, "proxy.http")
		if err then error(err, 2) end
		proxies.https, err = parse_proxy(proxy.https, "proxy.https")
		if err then error(err, 2) end
	else
		-- the environment, as libcurl reads it (upper-case HTTP_PROXY is ignored, as in curl)
		local getenv = opts.getenv or os.getenv
		local all = getenv("all_proxy") or getenv("ALL_PROXY")
		local err
		proxies = { no_proxy = getenv("no_proxy") or getenv("NO_PROXY") }
		proxies.http, err = parse_proxy(getenv("http_proxy") or all, "http_proxy")
		if err then error(err, 2) end
		proxies.https, err = parse_proxy(getenv("https_proxy") or getenv("HTTPS_PROXY") or all, "https_proxy")
		if err then error(err, 2) end
	end
	return setmetatable({
		verify = opts.verify ~= false,
		timeouts = timeouts,
		pool_size = opts.pool_size or 32,
		keepalive_timeout = opts.keepalive_timeout or 60000,
		recv_size = opts.recv_size or DEFAULT_RECV,
		max_body = opts.max_body == nil and MAX_BODY or opts.max_body,
		max_error_body = opts.max_error_body == nil and MAX_ERROR_BODY or opts.max_error_body,
		proxies = proxies,
		requests = 0, connections = 0, reused = 0,
		-- pool names by parsed URL (the proxy choice is fixed per transport and URL)
		pools = setmetatable({}, { __mode = "k" }),
		closed = false,
	}, Transport)
end

-- The proxy for a target (nil: direct).
function Transport:_proxy_for(u)
	local p = self.proxies
	if not p then return nil end
	local proxy = u.scheme == "https" and p.https or p.http
	if not proxy then return nil end
	if no_proxy_match(p.no_proxy, u.host) then return nil end
	return proxy
end

local name_ok = {}
local n_names = 0

-- The request head as a list of strings (sent with one writev), or nil, err.
local function build_head(method, target, u, headers, body, proxy)
	local out = { method, " ", target, " HTTP/1.1\r\n" }
	local n = 4
	local has_host, has_len = false, false
	if headers ~= nil then
		if type(headers) ~= "table" then return nil, verr("headers", "must be an array of {name, value} pairs") end
		local count = 0
		for i, h in ipairs(headers) do
			count = i
			local name, value = header_pair(h, i, name_ok)
			if not name then return nil, value end
			if not name_ok[name] and n_names < 512 then n_names = n_names + 1; name_ok[name] = lower(name) end
			local l = name_ok[name] or lower(name)
			if l == "host" then has_host = true
			elseif l == "content-length" then has_len = true
			elseif l == "transfer-encoding" or l == "connection" then
				return nil, verr("headers[" .. i .. "]", "header '" .. name .. "' is set by the transport")
			end
			out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, ": ", value, "\r\n"
			n = n + 4
		end
		local ok, err = headers_array(headers, count)
		if not ok then return nil, err end
	end
	if not has_host then
		out[n + 1], out[n + 2], out[n + 3] = "Host: ", u.authority, "\r\n"
		n = n + 3
	end
	if not has_len and (body ~= nil or method == "POST" or method == "PUT") then
		out[n + 1], out[n + 2], out[n + 3] = "Content-Length: ", tostring(body and #body or 0), "\r\n"
		n = n + 3
	end
	if proxy and proxy.auth and u.scheme == "http" then
		out[n + 1], out[n + 2], out[n + 3] = "Proxy-Authorization: ", proxy.auth, "\r\n"
		n = n + 3
	end
	out[n + 1] = "\r\n"
	n = n + 1
	if body ~= nil and body ~= "" then out[n + 1] = body end
	return out
end

-- Validates a call's fields: u (parsed URL), method, body, timeouts (merged) or nil, err.
function Transport:_check(req)
	if type(req) ~= "table" then return nil, verr("request", "must be a table") end
	if req.body_stream then
		return nil, errors.new{ code = "NotSupported", field = "body_stream",
			message = "a streamed request body (the bidirectional operation) needs HTTP/2, " ..
				"which nginx cosockets cannot speak; use the curl transport outside nginx" }
	end
	if req.http2 then
		return nil, errors.new{ code = "NotSupported", field = "http2",
			message = "HTTP/2 is not available over nginx cosockets" }
	end
	local u, msg = parse_url(req.url)
	if not u then return nil, verr("url", msg) end
	local body = req.body
	if body ~= nil and type(body) ~= "string" then return nil, verr("body", "must be a string") end
	local method = req.method
	if method == nil then method = body ~= nil and "POST" or "GET" end
	local mok, merr = options.check_method(method)
	if not mok then return nil, merr end
	local timeouts, terr = per_request(req, self.timeouts)
	if not timeouts then return nil, terr end
	local dec = req.decoder
	if dec ~= nil then
		local mt = type(dec) == "userdata" and getmetatable(dec)
		if not (mt and mt.__name == "bedrock.Decoder") then
			return nil, verr("decoder", "must be a bedrock.Decoder (core.decoder())")
		end
	end
	return u, method, body, timeouts
end

local function timeout_error(which)
	return errors.new{ code = "Timeout", which = which, retryable = true,
		message = which .. " timeout" }
end

local function conn_error(msg, retryable, extra)
	local e = extra or {}
	e.code, e.message = "ConnectionError", msg
	e.retryable = retryable ~= false
	return errors.new(e)
end

-- Milliseconds left before the phase deadline and before the total deadline, the
-- smaller one, and which of them that is.
local function budget(s, phase_deadline, phase)
	local now = s.ngx.now()
	local left, which = FOREVER, phase
	if phase_deadline then left = (phase_deadline - now) * 1000 end
	if s.total_deadline then
		local t = (s.total_deadline - now) * 1000
		if t < left then left, which = t, "total" end
	end
	if left > FOREVER then left = FOREVER end
	if left < 1 then left = 1 end
	return left, which
end

-- Connects (pool, proxy tunnel, TLS) for stream s. true or nil, err.
function Transport:_connect(s, u, fresh)
	local n = s.ngx
	local proxy = s.proxy
	local pools = self.pools
	local pool = pools[u]
	if not pool then
		local sni = u.scheme == "https" and u.host or ""
		pool = format("bedrock:%s:%d:%s:%s:%s", u.host, u.port, sni,
			(u.scheme == "https" and (self.verify and "v" or "nv")) or "plain",
			proxy and proxy.name or "")
		if proxy and proxy.auth then pool = pool .. ":" .. n.md5(proxy.auth) end
		pools[u] = pool
	end
	local sock, err = n.socket.tcp()
	if not sock then return nil, conn_error("cannot create a cosocket: " .. tostring(err)) end
	s.sock = sock
	local left, which = budget(s, s.connect_deadline, "connect")
	sock:settimeouts(left, left, left)
	local host, port = u.host, u.port
	if proxy then host, port = proxy.host, proxy.port end
	local ok
	if fresh then
		-- a pooled connection turned out stale: open a new one outside the pool
		ok, err = sock:connect(host, port)
	else
		ok, err = sock:connect(host, port, { pool = pool, pool_size = self.pool_size })
	end
	if not ok then
		s.sock = nil
		if err == "timeout" then return nil, timeout_error(which) end
		local why = tostring(err)
		if find(why, "no resolver", 1, true) then
			return nil, conn_error(format("cannot connect to %s:%d: %s (add a `resolver` directive " ..
				"to nginx.conf: cosockets resolve names with nginx's resolver)", host, port, why), false)
		end
		return nil, conn_error(format("cannot connect to %s:%d: %s", host, port, why), true)
	end
	local reused = sock:getreusedtimes() or 0
	s.reused = reused
	if reused > 0 then
		self.reused = self.reused + 1
		return true
	end
	self.connections = self.connections + 1
	if u.scheme == "https" then
		if proxy then
			-- a tunnel through the proxy first
			local authority = (find(u.host, ":", 1, true) and "[" .. u.host .. "]" or u.host) .. ":" .. u.port
			local q = { "CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n" }
			if proxy.auth then q[#q + 1] = "Proxy-Authorization: " .. proxy.auth .. "\r\n" end
			q[#q + 1] = "\r\n"
			local sent, serr = sock:send(q)
			if not sent then
				return nil, serr == "timeout" and timeout_error(which) or
					conn_error("proxy " .. proxy.name .. ": " .. tostring(serr))
			end
			local p = http1.response{ method = "CONNECT" }
			while true do
				local kind, a = p:next()
				if kind == nil then return nil, conn_error("proxy " .. proxy.name .. ": " .. a) end
				if kind == "head" then
					if a < 200 or a >= 300 then
						return nil, conn_error(format("proxy %s refused CONNECT %s with status %d",
							proxy.name, authority, a), a >= 500, { status = a })
					end
					break
				end
				if kind == "more" then
					local d, rerr = sock:receiveany(4096)
					if not d then
						return nil, rerr == "timeout" and timeout_error(which) or
							conn_error("proxy " .. proxy.name .. ": " .. tostring(rerr))
					end
					p:feed(d)
				end
			end
			if p:buffered() > 0 then return nil, conn_error("proxy sent bytes after its CONNECT answer") end
		end
		local session
		session, err = sock:sslhandshake(false, u.host, self.verify)
		if not session then
			if err == "timeout" then return nil, timeout_error(which) end
			return nil, conn_error("TLS handshake with " .. u.host .. " failed: " .. tostring(err), false)
		end
	end
	return true
end

-- Releases a stream's socket: into the pool when the response allows it, else closed.
function Stream:_release(keep)
	local sock = self.sock
	if not sock then return end
	self.sock = nil
	local t = self.transport
	if keep and not t.closed then
		local ok = sock:setkeepalive(t.keepalive_timeout, t.pool_size)
		if ok then return end
	end
	sock:close()
end

-- Reads from the socket until the parser has something: kind, a, b (see bedrock.http1)
-- or nil, err.
function Stream:_next()
	local p, sock = self.parser, self.sock
	while true do
		local kind, a, b = p:next()
		if kind == nil then
			self:_release(false)
			return nil, conn_error("malformed HTTP response: " .. tostring(a), true)
		end
		if kind ~= "more" then return kind, a, b end
		if not sock then return nil, conn_error("stream is closed", false) end
		-- a peer that never stops sending never lets a read time out: the total deadline
		-- is checked before each read, against the current time (ngx.now() is the time
		-- of the last event-loop turn, and reads served from the buffer take none)
		if self.total_deadline then
			local update = self.ngx.update_time
			if update then update() end
			if self.ngx.now() >= self.total_deadline then
				self:_release(false)
				return nil, timeout_error("total")
			end
		end
		local want = self.transport.recv_size
		if a and a < want then want = a end
		local left, which
		if self.got_byte then
			left, which = budget(self, self.idle_ms and (self.ngx.now() + self.idle_ms / 1000), "idle")
		else
			left, which = budget(self, self.first_byte_deadline, "first_byte")
		end
		sock:settimeouts(left, left, left)
		local d, err = sock:receiveany(want)
		if d then
			if not self.got_byte then
				self.got_byte = true
				self.first_byte_at = self.ngx.now()
			end
			self.received = self.received + #d
			p:feed(d)
		elseif err == "closed" then
			local ok, perr = p:eof()
			if not ok then
				self:_release(false)
				return nil, conn_error(perr, true)
			end
		else
			self:_release(false)
			if err == "timeout" then return nil, timeout_error(which) end
			return nil, conn_error("receive failed: " .. tostring(err), true)
		end
	end
end

local function start(self, req)
	local perr = phase_error()
	if perr then return nil, perr end
	if self.closed then return nil, conn_error("transport is closed", false) end
	local u, method, body, timeouts = self:_check(req)
	if not u then return nil, method end
	local proxy = self:_proxy_for(u)
	local target = u.target
	if proxy and u.scheme == "http" then target = "http://" .. u.authority .. target end
	local head, herr = build_head(method, target, u, req.headers, body, proxy)
	if not head then return nil, herr end
	local n = ngx_api()
	local now = n.now()
	local s = setmetatable({
		transport = self, ngx = n, proxy = proxy, method = method,
		decoder = req.decoder,
		parser = http1.response{ method = method },
		started = now, received = 0, reused = 0, got_byte = false,
		connect_deadline = timeouts.connect and now + timeouts.connect / 1000 or nil,
		first_byte_deadline = nil,
		idle_ms = timeouts.idle or nil,
		total_deadline = timeouts.total and now + timeouts.total / 1000 or nil,
		first_byte_ms = timeouts.first_byte or nil,
		http_version = "1.1",
	}, Stream)
	self.requests = self.requests + 1
	local ok, err = s:_begin(u, head)
	if not ok then return nil, err end
	return s
end

-- Connects, sends the request and reads up to the response head. true or nil, err.
function Stream:_begin(u, head)
	local t = self.transport
	for try = 1, 2 do
		local ok, err = t:_connect(self, u, try == 2)
		if not ok then
			self:_release(false)
			return nil, err
		end
		-- the first-byte deadline starts once the connection is ready (as curl's does)
		local fb = self.first_byte_ms
		if fb then self.first_byte_deadline = self.ngx.now() + fb / 1000 end
		local sock = self.sock
		local left, which = budget(self, self.first_byte_deadline, "first_byte")
		sock:settimeouts(left, left, left)
		local sent, serr = sock:send(head)
		local got_head
		if sent then
			got_head, serr = self:response()
			if got_head then return true end
		end
		local e = serr
		if type(e) ~= "table" then
			e = (e == "timeout") and timeout_error(which) or conn_error("send failed: " .. tostring(e))
		end
		-- a connection from the pool that the server had closed: once more, on a new one
		local stale = self.reused > 0 and not self.got_byte and e.code == "ConnectionError"
		self:_release(false)
		if not stale or try == 2 then return nil, e end
		self.parser = http1.response{ method = self.method }
		self.status, self.headers = nil, nil
	end
end

--- nstream:response() -> status, headers, http_version | nil, err
-- Waits for the response head (if not there yet): status, headers, http_version, also
-- stored in the stream's fields; or nil, err.
function Stream:response()
	if self.status then return self.status, self.headers, self.http_version end
	local kind, a, b = self:_next()
	if not kind then return nil, a end
	if kind ~= "head" then return nil, conn_error("response ended before its head", true) end
	self.status, self.headers = a, b
	if self.parser:done() then self:_finish() end
	return a, b, self.http_version
end

function Stream:_finish()
	if self.finished then return end
	self.finished = true
	self.ended_at = self.ngx.now()
	self:_release(self.parser:keepalive())
end

--- nstream:read() -> bytes | true | false | nil [, err]
-- Next body bytes (waiting until some arrive), nil at a clean end, nil, err on failure.
-- With a decoder: feeds it and returns true, or false at the end.
function Stream:read()
	if self.finished then
		if self.decoder then return false end
		return nil
	end
	if not self.sock then return nil, conn_error("stream is closed", false) end
	if not self.status then
		local st, err = self:response()
		if not st then return nil, err end
		if self.finished then return self:read() end
	end
	local kind, a = self:_next()
	if not kind then return nil, a end
	if kind == "done" then
		self:_finish()
		if self.decoder then return false end
		return nil
	end
	-- "data"
	local dec = self.decoder
	if dec then
		local ok, msg, code = dec:feed(a)
		if not ok then
			self:_release(false)
			return nil, errors.new{ code = "StreamError", message = tostring(msg), core_code = code }
		end
		return true
	end
	return a
end

--- nstream:send() -> nil, err
-- `NotSupported`: a streamed request body needs HTTP/2 (also `close_input`).
function Stream.send()
	return nil, errors.new{ code = "NotSupported",
		message = "a streamed request body needs HTTP/2, which nginx cosockets cannot speak" }
end
--- nstream:close_input() -> nil, err
-- `NotSupported`, as `send`.
Stream.close_input = Stream.send

--- nstream:info() -> table
-- `{ total, first_byte, received, reused }` (seconds, bytes).
function Stream:info()
	local now = self.ended_at or self.ngx.now()
	return { total = now - self.started,
		first_byte = self.first_byte_at and (self.first_byte_at - self.started) or nil,
		received = self.received, reused = self.reused }
end

--- nstream:close()
-- Aborts the transfer if still running (the connection is closed, never pooled).
-- Idempotent.
function Stream:close()
	if not self.finished then self.finished = true end
	self:_release(false)
end

--- ngxtransport:open(req) -> nstream | nil, err
-- Opens a request and returns once the response head arrived: a Stream with status,
-- headers (lower-case names), http_version; or nil, err.
function Transport:open(req)
	return start(self, req)
end

--- ngxtransport:request(req) -> res | nil, err
-- Sends a request and reads the whole response: { status, headers, body, http_version,
-- timing = { total, first_byte } (seconds) }, or nil, err.
function Transport:request(req)
	if type(req) == "table" and req.decoder ~= nil then
		local _, e = self:_check(req)
		if e and type(e) == "table" then return nil, e end
	end
	local s, err = start(self, req)
	if not s then return nil, err end
	local option, limit
	local st = s.status
	if st >= 200 and st < 300 then
		option, limit = "max_body", req.max_body
		if limit == nil then limit = self.max_body end
	else
		option, limit = "max_error_body", req.max_error_body
		if limit == nil then limit = self.max_error_body end
	end
	local cl = tonumber(s.headers["content-length"])
	if limit and cl and cl > limit then
		s:close()
		return nil, errors.too_large(option, limit, st, s.headers, cl)
	end
	local parts, n, received = {}, 0, 0
	while not s.finished do
		local kind, a = s:_next()
		if not kind then return nil, a end
		if kind == "done" then s:_finish() break end
		received = received + #a
		if limit and received > limit then
			s:close()
			return nil, errors.too_large(option, limit, st, s.headers)
		end
		n = n + 1
		parts[n] = a
	end
	local info = s:info()
	return {
		status = s.status, headers = s.headers,
		body = n == 1 and parts[1] or concat(parts),
		http_version = "1.1",
		timing = { total = info.total, first_byte = info.first_byte },
	}
end

--- ngxtransport:stats() -> { connections =, reused =, requests = }
-- { connections = new connections opened, reused = calls on a pooled connection,
--   requests = calls started }
function Transport:stats()
	return { connections = self.connections, requests = self.requests, reused = self.reused }
end

--- ngxtransport:close()
-- Stops using the transport: later calls fail; streams still open close their sockets
-- instead of pooling them. Pooled connections belong to nginx's pool and time out there.
function Transport:close()
	self.closed = true
end

_M.Transport = Transport
_M.Stream = Stream
return _M
