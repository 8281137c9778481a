-- Fuzz entry: the HTTP/1.1 response parser (bedrock.http1), a push parser fed the way the
-- cosocket transport feeds it: the response in pieces. Input: two mode bytes, then the
-- bytes the peer sends. Mode byte 1: the request method (GET, POST, HEAD, CONNECT) and
-- whether the peer closes at the end; mode byte 2: the piece size (1..255; 0: all at
-- once).
-- Contract: next() never raises and gives "more" (want nil or a positive count), "head"
-- once (status 200..999, lower-case token names, values without CR, LF, NUL) before any
-- "data", "data" slices that never add up to more than the bytes fed, "done" only after
-- the head, and once it failed (nil, message) it stays failed with the same message; eof()
-- returns true or nil and a message; keepalive() is a boolean after "done".
local F = require "fuzzlib"
local http1 = require "bedrock.http1"
local check = F.check

local METHODS = { "GET", "POST", "HEAD", "CONNECT" }
local TOKEN = "^[%w!#$%%&'*+.^_`|~-]+$"

return function(data)
	local m1, m2 = data:byte(1) or 0, data:byte(2) or 0
	local bytes = data:sub(3)
	local p = http1.response{ method = METHODS[m1 % 4 + 1] }
	local step = m2 == 0 and math.max(#bytes, 1) or m2
	local fed, body, head, done, failed = 0, 0, false, false, nil

	local function drain()
		for _ = 1, 100000 do
			local kind, a, b = p:next()
			if kind == nil then
				F.message(a, "next")
				if failed then check(a == failed, "failed twice with different messages") end
				failed = a
				local k2, a2 = p:next()
				check(k2 == nil and a2 == a, "a failed parser did not stay failed")
				return false
			end
			check(not failed, "next() went on after failing")
			if kind == "more" then
				check(a == nil or (math.type and math.type(a) == "integer" or a == math.floor(a)) and a > 0,
					"more with want %s", tostring(a))
				return true
			elseif kind == "head" then
				check(not head, "a second head")
				head = true
				check(type(a) == "number" and a >= 200 and a <= 999, "head status %s", tostring(a))
				check(type(b) == "table", "head without headers")
				for k, v in pairs(b) do
					check(type(k) == "string" and k:find(TOKEN) and k == k:lower(), "header name %q", tostring(k))
					check(type(v) == "string" and not v:find("[%z\r\n]"), "header %s: bad value", k)
				end
			elseif kind == "data" then
				check(head, "data before the head")
				check(type(a) == "string" and #a > 0, "empty data slice")
				body = body + #a
				check(body <= fed, "%d body bytes out of %d fed", body, fed)
			elseif kind == "done" then
				check(head, "done before the head")
				done = true
				check(type(p:keepalive()) == "boolean", "keepalive() is not a boolean")
				return false
			else
				F.fail("next() returned %s", tostring(kind))
			end
		end
		F.fail("next() looped 100000 times without asking for input")
	end

	local i = 1
	while i <= #bytes do
		local piece = bytes:sub(i, i + step - 1)
		i = i + step
		p:feed(piece)
		fed = fed + #piece
		if not drain() then break end
	end
	if not done and not failed and m1 >= 128 then
		local ok, msg = p:eof()
		if ok then
			check(ok == true, "eof returned %s", tostring(ok))
		else
			F.message(msg, "eof")
		end
		drain()
	end
end
