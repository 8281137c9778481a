-- bedrock.core's hashing, ES256 and cache-file helpers (csrc/br_crypto.c, csrc/br_file.c),
-- checked against known vectors and the openssl command line. #core
local helper = require "spec.helper"
local core = require "bedrock.core"

local function sh(cmd)
	local p = assert(io.popen(cmd))
	local out = p:read("*a")
	p:close()
	return out
end

local function tmpdir()
	return (sh("mktemp -d /tmp/bedrock-crypto-XXXXXX"):gsub("%s+$", ""))
end

-- DER ECDSA-Sig-Value -> r || s (32 bytes each).
local function der_to_raw(d)
	assert(d:byte(1) == 0x30)
	local i = 3
	if d:byte(2) == 0x81 then i = 4 end
	local function int()
		assert(d:byte(i) == 0x02)
		local n = d:byte(i + 1)
		local v = d:sub(i + 2, i + 1 + n)
		i = i + 2 + n
		v = v:gsub("^%z+", "")
		return string.rep("\0", 32 - #v) .. v
	end
	return int() .. int()
end

describe("core crypto #core", function()
	local dir, der, pem
	setup(function()
		dir = tmpdir()
		sh("openssl ecparam -genkey -name prime256v1 -noout -out " .. dir .. "/k.pem 2>/dev/null")
		pem = helper.read(dir .. "/k.pem")
		der = assert(core.b64decode((pem:gsub("%-%-%-%-%-[^\n]*\n?", ""):gsub("%s", ""))))
	end)
	teardown(function() os.execute("rm -rf " .. helper.shell_quote(dir)) end)

	it("sha1_hex matches the FIPS 180 vectors", function()
		assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", core.sha1_hex("abc"))
		assert.equal("84983e441c3bd26ebaae4aa1f95129e5e54670f1",
			core.sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
		assert.equal("da39a3ee5e6b4b0d3255bfef95601890afd80709", core.sha1_hex(""))
		assert.equal(40, #core.sha1_hex(string.rep("\0", 100000)))
	end)

	it("es256 signatures verify, also with openssl's own tools", function()
		local sig, x, y = core.es256_sign(der, "message")
		assert.equal(64, #sig)
		local px, py = core.es256_public(der)
		assert.equal(x, px)
		assert.equal(y, py)
		assert.is_true(core.es256_verify(x, y, "message", sig))
		local ok, msg, code = core.es256_verify(x, y, "messagE", sig)
		assert.is_nil(ok)
		assert.equal("BAD_SIGNATURE", code)
		assert.is_string(msg)
		-- the public point equals what openssl prints (04 || x || y)
		local pub = sh("openssl ec -in " .. dir .. "/k.pem -pubout -outform DER 2>/dev/null | tail -c 65 | od -An -v -tx1")
		local hex = (x .. y):gsub(".", function(c) return string.format("%02x", c:byte()) end)
		assert.equal("04" .. hex, (pub:gsub("%s", "")))
		-- a signature made by openssl verifies here
		local f = assert(io.open(dir .. "/m", "wb"))
		f:write("signed by openssl")
		f:close()
		sh("openssl dgst -sha256 -sign " .. dir .. "/k.pem -out " .. dir .. "/s " .. dir .. "/m")
		assert.is_true(core.es256_verify(x, y, "signed by openssl", der_to_raw(helper.read(dir .. "/s"))))
	end)

	it("refuses what is not a P-256 key, and a point off the curve", function()
		local ok, _, code = core.es256_sign("not a key", "m")
		assert.is_nil(ok)
		assert.equal("BAD_KEY", code)
		local other = dir .. "/k384.pem"
		sh("openssl ecparam -genkey -name secp384r1 -noout -out " .. other .. " 2>/dev/null")
		local der384 = core.b64decode((helper.read(other):gsub("%-%-%-%-%-[^\n]*\n?", ""):gsub("%s", "")))
		ok, _, code = core.es256_public(der384)
		assert.is_nil(ok)
		assert.equal("BAD_KEY", code)
		ok, _, code = core.es256_verify(string.rep("\1", 32), string.rep("\2", 32), "m", string.rep("\3", 64))
		assert.is_nil(ok)
		assert.equal("BAD_KEY", code)
		assert.has_error(function() core.es256_verify("short", string.rep("\2", 32), "m", string.rep("\3", 64)) end)
		assert.has_error(function() core.es256_verify(string.rep("\1", 32), string.rep("\2", 32), "m", "sig") end)
	end)

	it("replace_file writes a private file whole; mkdir_p makes parents", function()
		local d = dir .. "/a/b/c"
		assert.is_true(core.mkdir_p(d))
		assert.is_true(core.mkdir_p(d)) -- already there
		assert.is_true(core.replace_file(d .. "/f.json", "one"))
		assert.is_true(core.replace_file(d .. "/f.json", "two"))
		assert.equal("two", helper.read(d .. "/f.json"))
		assert.equal("-rw-------", sh("ls -l " .. d .. "/f.json"):sub(1, 10))
		assert.same({ "f.json" }, helper.ls(d)) -- no temporary file left behind
		local ok, msg, code = core.replace_file(dir .. "/missing/f", "x")
		assert.is_nil(ok)
		assert.equal("IO", code)
		assert.matches("cannot write .*/missing/f: No such file", msg)
		ok, msg, code = core.mkdir_p(d .. "/f.json/sub")
		assert.is_nil(ok)
		assert.equal("IO", code)
		assert.matches("cannot create", msg)
	end)
end)
