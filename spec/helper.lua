-- Shared by every spec: finds the build of bedrock.core that matches the running Lua,
-- reads fixtures, and starts/stops bedrock-emulator processes on loopback.
local M = {}

local is_jit = type(rawget(_G, "jit")) == "table"
M.lua_name = is_jit and "luajit" or "lua5.4"
M.build = os.getenv("BEDROCK_BUILD") or ("build/" .. M.lua_name)
M.emulator_bin = os.getenv("BEDROCK_EMULATOR") or "build/bin/bedrock-emulator"

if not package.cpath:find(M.build, 1, true) then
	package.cpath = "./" .. M.build .. "/?.so;" .. package.cpath
end
if not package.path:find("./lua/?.lua", 1, true) then
	package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
end

-- Under `make asan` the interpreter runs with the sanitizer runtimes preloaded; child
-- processes (curl, openssl, python3) must not inherit them: some deadlock at start-up.
-- The sanitized emulator links its runtimes itself, so it needs no preload either.
if os.getenv("LD_PRELOAD") and os.getenv("BEDROCK_BUILD") and os.getenv("BEDROCK_BUILD"):find("asan", 1, true) then
	local popen, execute = io.popen, os.execute
	M.lua_cmd = "env LD_PRELOAD=" .. os.getenv("LD_PRELOAD") .. " " .. M.lua_name
	local prefix = "unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; "
	io.popen = function(cmd, mode) return popen(prefix .. cmd, mode) end -- luacheck: ignore
	os.execute = function(cmd) -- luacheck: ignore
		if cmd == nil then return execute() end
		return execute(prefix .. cmd)
	end
end

-- The command that runs a Lua child process against this build (with the sanitizer
-- runtimes preloaded when the build needs them).
M.lua_cmd = M.lua_cmd or M.lua_name

M.fixtures = "spec/fixtures"
M.vectors = "spec/fixtures/vectors"

function M.read(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("*a")
	f:close()
	return s
end

function M.exists(path)
	local f = io.open(path, "rb")
	if f then f:close() return true end
	return false
end

-- Lists a directory's entries (names only), sorted.
function M.ls(dir)
	local p = assert(io.popen('ls -1 "' .. dir .. '" 2>/dev/null'))
	local t = {}
	for name in p:lines() do t[#t + 1] = name end
	p:close()
	table.sort(t)
	return t
end

local function shell_quote(s)
	return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

-- Starts a loopback server whose command (`exec` appended to `sh -c`) prints its port as
-- the first line of standard output. Returns { pid, port, url, stop() }.
local function start_server(what, exec_cmd, env)
	local parts = { "echo $$;" }
	for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
	parts[#parts + 1] = "exec " .. exec_cmd
	local cmd = "sh -c " .. shell_quote(table.concat(parts, " "))
	local p = assert(io.popen(cmd, "r"))
	local pid = p:read("*l")
	local port = p:read("*l")
	if not port or not tonumber(port) then
		p:close()
		error(what .. " did not start (" .. tostring(port) .. ")", 3)
	end
	local srv = { pid = tonumber(pid), port = tonumber(port), pipe = p }
	srv.url = "http://127.0.0.1:" .. srv.port
	function srv.stop()
		if srv.pipe then
			os.execute("kill " .. srv.pid .. " 2>/dev/null")
			srv.pipe:close()
			srv.pipe = nil
			if srv.tmp then os.remove(srv.tmp) end
		end
	end
	return srv
end

-- Starts bedrock-emulator on a free loopback port. `args` is a list of extra command-line
-- arguments; `env` a table of environment variables for it. Returns an object with
-- port, url ("http://127.0.0.1:<port>") and stop(). The emulator prints its port as the
-- first line of standard output.
function M.emulator(args, env)
	local parts = { shell_quote(M.emulator_bin), "--port 0" }
	for _, a in ipairs(args or {}) do parts[#parts + 1] = shell_quote(a) end
	return start_server("bedrock-emulator", table.concat(parts, " "), env)
end

-- Starts spec/hostile_server.py (a broken HTTP/1.1 server, see the script): every
-- connection gets `head` (bytes, verbatim: a status line and headers, or only part of
-- them) followed by `tail` ("close", "endless", "endless-chunked", "trickle:MS"); or, with
-- `echo = status`, an error answer whose message is the request head the client sent
-- (plus `message`). Returns the same object as M.emulator.
function M.hostile(o)
	local parts = { "python3 spec/hostile_server.py" }
	local tmp
	if o.head then
		tmp = os.tmpname()
		local f = assert(io.open(tmp, "wb"))
		f:write(o.head)
		f:close()
		parts[#parts + 1] = "--head " .. shell_quote(tmp)
	end
	if o.echo then parts[#parts + 1] = "--echo " .. tonumber(o.echo) end
	if o.echo_body then parts[#parts + 1] = "--echo-body" end
	if o.echo_xml then parts[#parts + 1] = "--echo-xml" end
	if o.message then parts[#parts + 1] = "--message " .. shell_quote(o.message) end
	if o.tail then parts[#parts + 1] = "--tail " .. shell_quote(o.tail) end
	local srv = start_server("hostile_server.py", table.concat(parts, " "))
	srv.tmp = tmp
	return srv
end

-- Resident memory of this process (or of process `pid`) in KiB (Linux /proc), or nil.
function M.rss_kib(pid)
	local f = io.open("/proc/" .. (pid or "self") .. "/status", "r")
	if not f then return nil end
	local s = f:read("*a")
	f:close()
	return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- This process's id (from /proc/self/stat: a shell started by io.popen has its own).
function M.pid()
	local f = assert(io.open("/proc/self/stat", "r"))
	local s = f:read("*l")
	f:close()
	return tonumber(s:match("^(%d+)"))
end

-- The open file descriptors of process `pid` (default: this one) as { [fd] = target },
-- and their count.
function M.fds(pid)
	local p = assert(io.popen("ls -l /proc/" .. (pid or M.pid()) .. "/fd 2>/dev/null"))
	local t, n = {}, 0
	for line in p:lines() do
		local fd, target = line:match("%s(%d+) %-> (.*)$")
		if fd then t[tonumber(fd)] = target; n = n + 1 end
	end
	p:close()
	return t, n
end

-- Established TCP connections of process `pid` (default: this one) to 127.0.0.1:port,
-- found by matching its socket descriptors with /proc/net/tcp.
function M.tcp_connections(port, pid)
	pid = pid or M.pid()
	local inodes = {}
	for _, target in pairs((M.fds(pid))) do
		local ino = target:match("^socket:%[(%d+)%]")
		if ino then inodes[ino] = true end
	end
	local n = 0
	local f = io.open("/proc/" .. pid .. "/net/tcp", "r")
	if not f then return nil end
	for line in f:lines() do
		local rport, st, ino = line:match("^%s*%d+: %x+:%x+ %x+:(%x+) (%x+) %S+ %S+ %S+%s+%d+%s+%d+%s+(%d+)")
		if rport and tonumber(rport, 16) == port and st == "01" and inodes[ino] then n = n + 1 end
	end
	f:close()
	return n
end

-- Sends a control request to a running emulator (`emu` from M.emulator): method, path
-- with query ("/_emulator/faults?kind=throttle"). Returns the answer's body.
function M.admin(emu, method, path)
	local p = assert(io.popen("curl -s --noproxy '*' -X " .. method .. " -H x-emulator-admin:1 " ..
		shell_quote(emu.url .. path)))
	local s = p:read("*a")
	p:close()
	return s
end

local function sh_ok(cmd)
	local ok = os.execute(cmd)
	return ok == true or ok == 0
end

-- A test CA and a server certificate for localhost/127.0.0.1 signed by it (EC P-256), in
-- dir: { ca =, cert =, key = } paths. nginx checks a certificate against the host name
-- only (X509_check_host, never an IP address entry), so 127.0.0.1 is also a DNS name.
function M.make_pki(dir)
	local D = function(f) return shell_quote(dir .. "/" .. f) end
	local ext = assert(io.open(dir .. "/ext.cnf", "w"))
	ext:write("subjectAltName=DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
		"keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
	ext:close()
	local quiet = " >/dev/null 2>&1"
	assert(sh_ok("env -u LD_PRELOAD openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes" ..
		" -keyout " .. D("ca.key") .. " -out " .. D("ca.pem") .. " -days 2" ..
		" -subj '/CN=lua-bedrock test CA' -addext 'basicConstraints=critical,CA:TRUE'" ..
		" -addext 'keyUsage=critical,keyCertSign,cRLSign'" .. quiet), "openssl: CA")
	assert(sh_ok("env -u LD_PRELOAD openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes" ..
		" -keyout " .. D("server.key") .. " -out " .. D("server.csr") ..
		" -subj /CN=localhost" .. quiet), "openssl: server key")
	assert(sh_ok("env -u LD_PRELOAD openssl x509 -req -in " .. D("server.csr") .. " -CA " .. D("ca.pem") ..
		" -CAkey " .. D("ca.key") .. " -CAcreateserial -out " .. D("server.pem") ..
		" -days 2 -extfile " .. D("ext.cnf") .. quiet), "openssl: server certificate")
	return { ca = dir .. "/ca.pem", cert = dir .. "/server.pem", key = dir .. "/server.key" }
end

-- A second server certificate from the same test CA (made by M.make_pki(dir)), valid only
-- for the DNS name `name`.
function M.make_other_cert(dir, name)
	local D = function(f) return shell_quote(dir .. "/" .. f) end
	local ext = assert(io.open(dir .. "/other.cnf", "w"))
	ext:write("subjectAltName=DNS:" .. name .. "\nbasicConstraints=CA:FALSE\n",
		"keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
	ext:close()
	local quiet = " >/dev/null 2>&1"
	assert(sh_ok("env -u LD_PRELOAD openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes" ..
		" -keyout " .. D("other.key") .. " -out " .. D("other.csr") ..
		" -subj /CN=" .. name .. quiet), "openssl: other key")
	assert(sh_ok("env -u LD_PRELOAD openssl x509 -req -in " .. D("other.csr") .. " -CA " .. D("ca.pem") ..
		" -CAkey " .. D("ca.key") .. " -CAcreateserial -out " .. D("other.pem") ..
		" -days 2 -extfile " .. D("other.cnf") .. quiet), "openssl: other certificate")
	return { cert = dir .. "/other.pem", key = dir .. "/other.key" }
end

return M
