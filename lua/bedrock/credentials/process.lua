-- credential_process: runs the profile's command and reads credentials from its
-- standard output (JSON, Version 1: AccessKeyId, SecretAccessKey, SessionToken,
-- Expiration). Botocore's method name: "custom-process".
--
-- The command line is split like botocore splits it (POSIX shlex rules: quotes and
-- backslashes, no variables, no globbing, no pipes) and the program is executed
-- directly with those arguments, never interpreted by a shell. A command that exits
-- non-zero, runs longer than `timeout` seconds (default 60) or prints anything else
-- than that JSON is an error naming the profile, as is one that prints more than
-- P.MAX_OUTPUT bytes (1 MiB: it is stopped there). Of its standard error the first
-- P.MAX_STDERR bytes (4 KiB) are kept for messages, the rest read and dropped.
--   P.new{ profile_name = (default ctx.profile_name), timeout = seconds }
local util = require "bedrock.credentials.util"
local ini = require "bedrock.ini"

local P = { name = "custom-process", timeout = 60 }
P.__index = P

function P.new(opts)
	opts = opts or {}
	return setmetatable({ profile_name = opts.profile_name, timeout = opts.timeout }, P)
end

local function q(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function tmpname()
	local ok, n = pcall(os.tmpname)
	if ok and n then return n end
	return nil
end

-- Most bytes taken from the program: its standard output (credentials JSON is a few
-- hundred bytes) and the part of its standard error kept for messages (the rest is read
-- and dropped, so a chatty program is neither stopped nor stored).
P.MAX_OUTPUT = 1024 * 1024
P.MAX_STDERR = 4096

-- run(argv, timeout) -> stdout, exit_code, stderr | nil, message [, "too large"]
function P.run(argv, timeout)
	local errf = tmpname()
	local parts = {}
	for i = 1, #argv do parts[i] = q(argv[i]) end
	-- `exec` replaces the helper shell, so the arguments reach the program unchanged;
	-- timeout(1) ends it (and KILLs it 1 s later if it ignores TERM). Its standard output
	-- goes to fd 3 (our pipe), its standard error through head(1) to errf.
	local inner = "exec " .. table.concat(parts, " ")
	local keep = errf and ("{ head -c " .. P.MAX_STDERR .. " >" .. q(errf) .. "; cat >/dev/null; }")
		or "cat >/dev/null"
	local cmd = "{ { timeout -k 1 " .. string.format("%d", timeout) .. " sh -c " .. q(inner) ..
		" _ </dev/null 2>&1 >&3 3>&-; echo \"\n#exit=$?\" >&3; } | " .. keep .. "; } 3>&1"
	local p, e = io.popen(cmd, "r")
	if not p then
		if errf then os.remove(errf) end
		return nil, "cannot start: " .. tostring(e)
	end
	-- read at most MAX_OUTPUT (+ the exit line); past it the pipe is closed, and the
	-- program ends on its next write (SIGPIPE)
	local chunks, n, over = {}, 0, false
	while true do
		local c = p:read(65536)
		if not c then break end
		chunks[#chunks + 1] = c
		n = n + #c
		if n > P.MAX_OUTPUT + 64 then over = true break end
	end
	p:close()
	local stderr = ""
	if errf then
		local f = io.open(errf, "rb")
		if f then stderr = f:read(P.MAX_STDERR) or ""; f:close() end
		os.remove(errf)
	end
	if over then return nil, "printed more than " .. P.MAX_OUTPUT .. " bytes", "too large" end
	local out = table.concat(chunks)
	local body, code = out:match("^(.*)\n#exit=(%d+)\n?$")
	if not body then return nil, "could not read its exit status" end
	if #body > P.MAX_OUTPUT then return nil, "printed more than " .. P.MAX_OUTPUT .. " bytes", "too large" end
	return body, tonumber(code), stderr
end

function P:get(ctx)
	local name = self.profile_name or ctx.profile_name
	local prof = self.profile_name and require("bedrock.config").merged_profile(ctx.files, name) or ctx.profile
	local cmdline = prof and prof.credential_process
	if type(cmdline) ~= "string" then return nil end
	local where = ini.where(ctx.files and ctx.files.config, name, "credential_process")
	local function fail(msg)
		return util.err("custom-process", "credential_process of profile " .. name .. " " .. msg,
			{ file = where, profile = name })
	end
	local argv = ini.shlex_split(cmdline)
	if not argv then return fail("has an unclosed quote") end
	if #argv == 0 then return fail("is empty") end
	local timeout = self.timeout or P.timeout
	local out, code, stderr = P.run(argv, timeout)
	if not out then return fail(code) end
	if code == 124 or code == 137 then
		return fail("did not finish within " .. timeout .. " s")
	end
	if code == 126 or code == 127 then
		return fail("could not run " .. argv[1] .. " (" .. (code == 127 and "not found" or "not executable") .. ")")
	end
	if code ~= 0 then
		local msg = stderr:gsub("%s+$", ""):sub(1, 300)
		return fail("exited with status " .. code .. (msg ~= "" and (": " .. msg) or ""))
	end
	local t, jerr = util.json_object(out)
	if not t then return fail("printed output that is " .. jerr .. " (expected a JSON object)") end
	if t.Version ~= 1 then
		return fail("printed Version " .. tostring(t.Version) .. "; only Version 1 is supported")
	end
	if type(t.AccessKeyId) ~= "string" or t.AccessKeyId == "" then return fail("printed no AccessKeyId") end
	if type(t.SecretAccessKey) ~= "string" or t.SecretAccessKey == "" then
		return fail("printed no SecretAccessKey")
	end
	local c, msg = util.from_json_names(t, "custom-process")
	if not c then return fail("printed an invalid answer: " .. msg) end
	return c
end

return P
