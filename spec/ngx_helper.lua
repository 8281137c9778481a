-- Starts and stops a real nginx (Debian's nginx with libnginx-mod-http-lua) for the
-- specs: a test nginx.conf written into a temp dir, one worker, a free loopback port,
-- Lua paths pointing at ./lua, ./spec/nginx and the LuaJIT build of bedrock.core.
local helper = require "spec.helper"

local M = {}
local q = helper.shell_quote

local function sh(cmd)
	local ok = os.execute(cmd)
	return ok == true or ok == 0
end
M.sh = sh

local function capture(cmd)
	local p = assert(io.popen(cmd))
	local s = p:read("*a")
	p:close()
	return s
end
M.capture = capture

function M.tmpdir()
	local d = capture("mktemp -d 2>/dev/null"):gsub("%s+$", "")
	assert(d ~= "", "mktemp -d failed")
	return d
end

local function cwd()
	return (os.getenv("PWD") or capture("pwd")):gsub("%s+$", "")
end

-- Where Debian's nginx keeps its dynamic modules (nginx -V --modules-path), and the two
-- the Lua module needs (the NDK first).
function M.modules()
	local v = capture("nginx -V 2>&1")
	local dir = v:match("%-%-modules%-path=(%S+)") or "/usr/lib/nginx/modules"
	local ndk, lua = dir .. "/ndk_http_module.so", dir .. "/ngx_http_lua_module.so"
	if not helper.exists(lua) then return nil, "nginx's Lua module not found at " .. lua end
	return { helper.exists(ndk) and ndk or nil, lua }
end

-- Whether nginx with the Lua module is here and bedrock.core is built for LuaJIT.
function M.available()
	if not sh("command -v nginx >/dev/null 2>&1") then return false, "nginx is not installed" end
	local mods, err = M.modules()
	if not mods then return false, err end
	if not helper.exists("build/luajit/bedrock/core.so") then
		return false, "bedrock.core is not built for LuaJIT (make LUA=luajit module)"
	end
	return true
end

local function free_port()
	-- a port the kernel just handed out and released is free for the moment
	local p = capture("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); " ..
		"print(s.getsockname()[1])' 2>/dev/null"):gsub("%s+$", "")
	if tonumber(p) then return tonumber(p) end
	math.randomseed(os.time())
	return math.random(20000, 60000)
end

-- M.start{ http = "server/location config (use $PORT)", env = { NAME = value }, ... }
-- -> { port, url, prefix, stop(), log() }. `http` may contain `$PORT` (the listen port)
-- and is placed inside the http block after the Lua settings; `main` goes to the main
-- context. Raises if nginx does not start.
function M.start(o)
	local ok, why = M.available()
	assert(ok, why)
	local dir = o.prefix or M.tmpdir()
	local root = cwd()
	sh("mkdir -p " .. q(dir .. "/logs") .. " " .. q(dir .. "/conf") .. " " .. q(dir .. "/tmp"))
	local mods = assert(M.modules())
	for attempt = 1, 5 do
		local port = o.port or free_port()
		local lines = { "# written by spec/ngx_helper.lua" }
		for _, m in ipairs(mods) do lines[#lines + 1] = "load_module " .. m .. ";" end
		lines[#lines + 1] = "daemon on;\nmaster_process on;\nworker_processes 1;"
		lines[#lines + 1] = "pid " .. dir .. "/logs/nginx.pid;"
		lines[#lines + 1] = "error_log " .. dir .. "/logs/error.log " .. (o.log_level or "warn") .. ";"
		lines[#lines + 1] = "events { worker_connections " .. (o.connections or 1024) .. "; }"
		local env = o.env or {}
		local names = {}
		for k in pairs(env) do names[#names + 1] = k end
		table.sort(names)
		for _, k in ipairs(names) do lines[#lines + 1] = "env " .. k .. "=" .. env[k] .. ";" end
		for _, k in ipairs(o.pass_env or {}) do lines[#lines + 1] = "env " .. k .. ";" end
		if o.main then lines[#lines + 1] = o.main end
		lines[#lines + 1] = "http {"
		lines[#lines + 1] = "  access_log off;"
		lines[#lines + 1] = "  client_body_temp_path " .. dir .. "/tmp/body;"
		lines[#lines + 1] = "  proxy_temp_path " .. dir .. "/tmp/proxy;"
		lines[#lines + 1] = "  fastcgi_temp_path " .. dir .. "/tmp/fcgi;"
		lines[#lines + 1] = "  uwsgi_temp_path " .. dir .. "/tmp/uwsgi;"
		lines[#lines + 1] = "  scgi_temp_path " .. dir .. "/tmp/scgi;"
		lines[#lines + 1] = string.format('  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/nginx/?.lua;%s/?.lua;;";',
			root, root, root, root)
		lines[#lines + 1] = string.format('  lua_package_cpath "%s/build/luajit/?.so;;";', root)
		lines[#lines + 1] = ((o.http or ""):gsub("%$PORT", tostring(port)))
		lines[#lines + 1] = "}"
		local conf = dir .. "/conf/nginx.conf"
		local f = assert(io.open(conf, "w"))
		f:write(table.concat(lines, "\n"), "\n")
		f:close()
		os.remove(dir .. "/logs/error.log")
		local started = sh("nginx -p " .. q(dir) .. " -c " .. q(conf) .. " >" .. q(dir .. "/logs/start.log") .. " 2>&1")
		if started then
			local ng = { port = port, url = "http://127.0.0.1:" .. port, prefix = dir, conf = conf }
			function ng.log()
				local lf = io.open(dir .. "/logs/error.log", "rb")
				if not lf then return "" end
				local s = lf:read("*a")
				lf:close()
				return s
			end
			function ng.stop()
				if ng.stopped then return end
				ng.stopped = true
				sh("nginx -p " .. q(dir) .. " -c " .. q(conf) .. " -s stop >/dev/null 2>&1")
				-- wait for the master to go away (its pid file is removed on exit)
				for _ = 1, 100 do
					if not helper.exists(dir .. "/logs/nginx.pid") then break end
					sh("sleep 0.05")
				end
				if not o.prefix and not os.getenv("BEDROCK_KEEP_NGINX") then sh("rm -rf " .. q(dir)) end
			end
			-- wait until it answers
			for _ = 1, 100 do
				if sh("curl -s -o /dev/null --max-time 1 " .. ng.url .. "/ 2>/dev/null") then return ng end
				sh("sleep 0.05")
			end
			ng.stop()
			error("nginx did not answer on port " .. port .. ":\n" .. ng.log())
		end
		local why2 = helper.read(dir .. "/logs/start.log")
		if not why2:find("Address already in use", 1, true) or o.port then
			error("nginx did not start:\n" .. why2 .. (helper.exists(dir .. "/logs/error.log") and helper.read(dir .. "/logs/error.log") or ""))
		end
		assert(attempt < 5, "no free port for nginx")
	end
end

-- An HTTP request with the curl CLI: status, body, total seconds.
function M.get(url, opts)
	opts = opts or {}
	local cmd = "curl -s --max-time " .. (opts.max_time or 30) .. " -w '\\n%{http_code} %{time_total}'"
	if opts.data then cmd = cmd .. " --data-binary " .. q(opts.data) end
	for _, h in ipairs(opts.headers or {}) do cmd = cmd .. " -H " .. q(h) end
	local out = capture(cmd .. " " .. q(url) .. " 2>&1")
	local body, status, t = out:match("^(.*)\n(%d+) ([%d.]+)$")
	return tonumber(status), body, tonumber(t)
end

-- The test PKI (spec/helper.lua): nginx checks a certificate against the host name only,
-- which is why helper.make_pki lists 127.0.0.1 as a DNS name too.
M.make_pki, M.make_other_cert = helper.make_pki, helper.make_other_cert

return M
