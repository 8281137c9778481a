-- The container credentials endpoint (ECS task roles, EKS Pod Identity):
-- AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on http://169.254.170.2) or
-- AWS_CONTAINER_CREDENTIALS_FULL_URI, with the Authorization header from
-- AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read at each fetch) or
-- AWS_CONTAINER_AUTHORIZATION_TOKEN. A full URI must be https, or name a loopback
-- address or one of 169.254.170.2, 169.254.170.23, fd00:ec2::23, localhost
-- (botocore's rule). 2 s timeout, 3 attempts a second apart, as botocore.
-- Botocore's method name: "container-role".
--   P.new{ timeout = s, attempts = n, sleep = fn(s) }
local util = require "bedrock.credentials.util"
local config = require "bedrock.config"

local P = { name = "container-role", timeout = 2, attempts = 3 }
P.__index = P

function P.new(opts)
	opts = opts or {}
	return setmetatable({ timeout = opts.timeout, attempts = opts.attempts, sleep = opts.sleep }, P)
end

local allowed = { ["169.254.170.2"] = true, ["169.254.170.23"] = true, ["[fd00:ec2::23]"] = true,
	["localhost"] = true }

local function loopback(host)
	if host == "[::1]" or host == "[0:0:0:0:0:0:0:1]" then return true end
	local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
	if not a then return false end
	a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
	return a == 127 and b < 256 and c < 256 and d < 256
end

-- allowed_full_uri(url) -> true | nil, message
function P.allowed_full_uri(url)
	local u = config.parse_url(url)
	if not u then return nil, "is not an http(s) URL" end
	if u.scheme == "https" then return true end
	if loopback(u.host) or allowed[u.host] then return true end
	return nil, "names host " .. u.host .. ": only https, a loopback address or 169.254.170.2, " ..
		"169.254.170.23, fd00:ec2::23, localhost are allowed"
end

local function var(getenv, name)
	local v = getenv(name)
	if v == "" then return nil end
	return v
end

function P:get(ctx)
	local getenv = ctx.getenv
	local rel, full = var(getenv, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
		var(getenv, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
	local url
	if rel then
		url = "http://169.254.170.2" .. rel
	elseif full then
		local ok, msg = P.allowed_full_uri(full)
		if not ok then return util.err("container-role", "AWS_CONTAINER_CREDENTIALS_FULL_URI " .. msg) end
		url = full
	else
		return nil
	end
	local headers = { { "accept", "application/json" } }
	if full and not rel then
		local tok
		local tf = var(getenv, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
		if tf then
			local s, e = util.read_file(tf)
			if not s then return util.err("container-role", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: " .. e) end
			tok = s:gsub("%s+$", "")
		else
			tok = var(getenv, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
		end
		if tok then
			if tok:find("[\r\n]") then
				return util.err("container-role", "the authorization token contains a line break")
			end
			headers[#headers + 1] = { "authorization", tok }
		end
	end
	local attempts = self.attempts or P.attempts
	local timeout = self.timeout or P.timeout
	local last
	for i = 1, attempts do
		if i > 1 then
			local sleep = self.sleep or ctx.sleep
			if sleep then sleep(1) end
		end
		local res, err = ctx.http{ method = "GET", url = url, headers = headers,
			timeouts = { connect = timeout, total = timeout } }
		if not res and type(err) == "table" and err.code == "ResponseTooLarge" then
			last = url .. " answered too much (" .. util.describe(err) .. ")"
			break
		elseif not res then
			last = "no answer from " .. url .. " (" .. util.describe(err) .. ")"
		elseif res.status ~= 200 then
			last = url .. " answered HTTP " .. tostring(res.status)
			if res.status >= 400 and res.status < 500 then break end
		else
			local t, jerr = util.json_object(res.body)
			if not t then
				last = url .. " answered a body that is " .. jerr
			else
				local c, msg = util.from_json_names(t, "container-role")
				if c then return c end
				last = url .. ": " .. msg
			end
		end
	end
	return util.err("container-role", last)
end

return P
