-- HTTP/1.1 response framing (bedrock.http1): the parser the cosocket transport reads
-- responses with. Pure Lua, so every case runs here, outside nginx; each well-formed
-- case is replayed split at every byte and fed one byte at a time.
local http1 = require "bedrock.http1"

-- Runs the parser over `parts` (a list of strings fed in order, draining after each).
-- Returns { status, headers, body, done, err, keepalive, wants }.
local function run(parts, opts, at_eof)
	local p = http1.response(opts)
	local r = { body = {}, wants = {} }
	local function drain()
		while true do
			local kind, a, b = p:next()
			if kind == nil then r.err = a; return false end
			if kind == "more" then r.wants[#r.wants + 1] = a or "any"; return true end
			if kind == "head" then
				assert(r.status == nil, "two heads")
				r.status, r.headers = a, b
			elseif kind == "data" then
				assert(#a > 0, "empty data slice")
				assert(p:done() or true)
				r.body[#r.body + 1] = a
			elseif kind == "done" then
				r.done = true
				return false
			end
		end
	end
	for _, s in ipairs(parts) do
		p:feed(s)
		if not drain() then break end
	end
	if at_eof and not r.done and not r.err then
		local ok, e = p:eof()
		if ok then
			drain()
			r.done = p:done()
		else
			r.err = e
		end
	end
	r.body = table.concat(r.body)
	r.keepalive = p:keepalive()
	r.parser = p
	return r
end

local function every_split(s, opts, at_eof)
	local whole = run({ s }, opts, at_eof)
	for i = 1, #s - 1 do
		local r = run({ s:sub(1, i), s:sub(i + 1) }, opts, at_eof)
		assert.same({ whole.status, whole.headers, whole.body, whole.done, whole.err, whole.keepalive },
			{ r.status, r.headers, r.body, r.done, r.err, r.keepalive }, "split at " .. i)
	end
	local bytes = {}
	for i = 1, #s do bytes[i] = s:sub(i, i) end
	local r = run(bytes, opts, at_eof)
	assert.same({ whole.status, whole.headers, whole.body, whole.done, whole.err, whole.keepalive },
		{ r.status, r.headers, r.body, r.done, r.err, r.keepalive }, "byte by byte")
	return whole
end

describe("bedrock.http1", function()
	it("parses a Content-Length response at every split and one byte at a time", function()
		local s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n" ..
			"X-Amzn-RequestId: abc\r\n\r\n{\"a\":\"b c\"}"
		local r = every_split(s)
		assert.equal(200, r.status)
		assert.same({ ["content-type"] = "application/json", ["content-length"] = "11",
			["x-amzn-requestid"] = "abc" }, r.headers)
		assert.equal('{"a":"b c"}', r.body)
		assert.is_true(r.done)
		assert.is_true(r.keepalive)
	end)

	it("parses a chunked response with extensions and trailers at every split", function()
		local s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" ..
			"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
		local r = every_split(s)
		assert.equal("hello 0123456789", r.body)
		assert.is_true(r.done)
		assert.is_true(r.keepalive)
	end)

	it("asks for no more than the body bytes left", function()
		local r = run({ "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789" })
		assert.same({ 90 }, r.wants)
		r = run({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123456789" })
		assert.same({ 22 }, r.wants)
	end)

	it("repeats of a header are joined; names are lower-cased; values trimmed", function()
		local r = every_split("HTTP/1.1 404 Not Found\r\nX-A: 1\r\nx-a:2  \r\nContent-Length: 0\r\n\r\n")
		assert.equal(404, r.status)
		assert.equal("1, 2", r.headers["x-a"])
		assert.equal("", r.body)
		assert.is_true(r.done)
	end)

	it("a status line without a reason phrase is accepted", function()
		local r = run({ "HTTP/1.1 204\r\n\r\n" })
		assert.equal(204, r.status)
		assert.is_true(r.done)
	end)

	it("skips interim 100 Continue responses", function()
		local r = every_split("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		assert.equal(200, r.status)
		assert.equal("ok", r.body)
	end)

	it("a body without framing ends at the close and keeps no connection", function()
		local r = every_split("HTTP/1.1 200 OK\r\n\r\nuntil the end", nil, true)
		assert.equal("until the end", r.body)
		assert.is_true(r.done)
		assert.is_false(r.keepalive)
	end)

	it("HEAD, 204 and 304 have no body; a 2xx to CONNECT starts the tunnel", function()
		local r = run({ "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" }, { method = "HEAD" })
		assert.is_true(r.done)
		assert.equal("", r.body)
		r = run({ "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" })
		assert.is_true(r.done)
		r = run({ "HTTP/1.1 200 Connection established\r\n\r\n" }, { method = "CONNECT" })
		assert.is_true(r.done)
		assert.equal(0, r.parser:buffered())
	end)

	it("keep-alive follows Connection and the version", function()
		assert.is_false(run({ "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" }).keepalive)
		assert.is_false(run({ "HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 0\r\n\r\n" }).keepalive)
		assert.is_false(run({ "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n" }).keepalive)
		assert.is_true(run({ "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n" }).keepalive)
		-- bytes past the end of the response: the connection is out of step
		local r = run({ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA" })
		assert.is_true(r.done)
		assert.is_false(r.keepalive)
	end)

	describe("refuses hostile input", function()
		local function refused(s, pattern, opts)
			local r = every_split(s, opts, true)
			assert.is_nil(r.done)
			assert.is_string(r.err)
			assert.matches(pattern, r.err)
			assert.is_false(r.keepalive)
			-- the parser stays failed
			local kind, msg = r.parser:next()
			assert.is_nil(kind)
			assert.equal(r.err, msg)
			return r
		end

		it("bad status lines", function()
			refused("HTTP/2 200 OK\r\n\r\n", "bad status line")
			refused("HTTP/1.1 20 OK\r\n\r\n", "bad status line")
			refused("HTTP/1.1 2000 OK\r\n\r\n", "bad status line")
			refused("ICY 200 OK\r\n\r\n", "bad status line")
			refused("HTTP/1.1 099 X\r\n\r\n", "bad status code")
			refused("HTTP/1.1 101 Switching Protocols\r\n\r\n", "unexpected 101")
		end)

		it("bare LF and missing CRLF", function()
			refused("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF")
			refused("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", "bare LF")
			refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", "bare LF")
		end)

		it("bad header lines and folding", function()
			refused("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "bad header line")
			refused("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "bad header line")
			refused("HTTP/1.1 200 OK\r\n: x\r\n\r\n", "bad header line")
			refused("HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n", "folding")
			refused("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", "NUL")
		end)

		it("oversized lines, header blocks and header counts", function()
			refused("HTTP/1.1 200 OK\r\nX-A: " .. ("a"):rep(200) .. "\r\n\r\n", "line longer than 100",
				{ max_line = 100 })
			-- caught before the line ends
			local p = http1.response{ max_line = 100 }
			p:feed("HTTP/1.1 200 OK\r\nX-A: " .. ("a"):rep(200))
			local kind, msg = p:next()
			assert.is_nil(kind)
			assert.matches("line longer", msg)
			local hs = {}
			for i = 1, 30 do hs[#hs + 1] = "X-" .. i .. ": " .. ("v"):rep(50) .. "\r\n" end
			refused("HTTP/1.1 200 OK\r\n" .. table.concat(hs) .. "\r\n", "header block larger than 1000",
				{ max_header = 1000 })
			refused("HTTP/1.1 200 OK\r\n" .. table.concat(hs) .. "\r\n", "more than 10 response headers",
				{ max_headers = 10 })
		end)

		it("bad and conflicting Content-Length", function()
			refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content%-Length")
			refused("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nab", "bad Content%-Length")
			refused("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "bad Content%-Length")
			refused("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "bad Content%-Length")
			refused("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting")
			-- the same value twice is the same length
			local r = run({ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab" })
			assert.equal("ab", r.body)
		end)

		it("Transfer-Encoding with Content-Length, or other than chunked", function()
			refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
				"both Transfer%-Encoding and Content%-Length")
			refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "unsupported")
			refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "unsupported")
		end)

		it("bad chunk sizes", function()
			local h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			refused(h .. "g\r\nxxx\r\n0\r\n\r\n", "bad chunk size")
			refused(h .. "\r\n", "bad chunk size")
			refused(h .. "-1\r\n", "bad chunk size")
			refused(h .. "0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size")
			refused(h .. "5 junk\r\nhello\r\n0\r\n\r\n", "bad chunk size")
			refused(h .. "fffffffffffffffff\r\n", "chunk size too large")
			refused(h .. "ffffffffffff\r\n", "chunk size too large")
			-- leading zeros are only zeros
			local r = run({ h .. "00000000000000000005\r\nhello\r\n0\r\n\r\n" })
			assert.equal("hello", r.body)
		end)

		it("chunk data not followed by CRLF", function()
			local h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			refused(h .. "5\r\nhelloX\r\n0\r\n\r\n", "not followed by CRLF")
			refused(h .. "5\r\nhello\rX0\r\n\r\n", "not followed by CRLF")
			refused(h .. "5\r\nhello\n0\r\n\r\n", "not followed by CRLF")
			refused(h .. "3\r\nhello\r\n0\r\n\r\n", "not followed by CRLF")
		end)

		it("bad trailers", function()
			local h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			refused(h .. "0\r\nnot a trailer\r\n\r\n", "bad trailer")
		end)

		it("truncation at the close, naming where", function()
			refused("", "before any response byte")
			refused("HTTP/1.1 200 OK\r\nContent-Le", "inside the response header")
			refused("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "7 body bytes missing")
			refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "inside the chunked body")
			refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "inside the chunked body")
		end)
	end)

	it("checks its options", function()
		assert.has_error(function() http1.response("x") end)
	end)
end)
