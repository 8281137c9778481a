-- STS for the assume-role providers: AssumeRole (SigV4-signed Query-protocol POST) and
-- AssumeRoleWithWebIdentity (unsigned), and the strict XML extraction of the few
-- elements their answers need.
--
--   call(ctx, action, params, creds | nil, region) -> creds | nil, message, code
-- The endpoint comes from config.endpoint_for("sts", ctx, region): AWS_ENDPOINT_URL_STS,
-- AWS_ENDPOINT_URL, the profile's services section, sts_regional_endpoints.
local util = require "bedrock.credentials.util"
local config = require "bedrock.config"

local _M = { _VERSION = "0.1.0", timeout = 10, connect_timeout = 3 }

local type, tostring, tonumber, pairs = type, tostring, tonumber, pairs
local concat, sort = table.concat, table.sort
local char = string.char

---------------------------------------------------------------------------- XML

local MAX_XML = 1024 * 1024

local entities = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

local function utf8char(n)
	if n < 0 or n > 0x10FFFF or (n >= 0xD800 and n <= 0xDFFF) then return nil end
	if n < 0x80 then return char(n) end
	if n < 0x800 then return char(0xC0 + math.floor(n / 64), 0x80 + n % 64) end
	if n < 0x10000 then
		return char(0xE0 + math.floor(n / 4096), 0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
	end
	return char(0xF0 + math.floor(n / 262144), 0x80 + math.floor(n / 4096) % 64,
		0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
end

-- Character data -> text | nil (markup inside, or an unknown entity).
local function text(s)
	if s:find("<", 1, true) then return nil end
	local bad = false
	local out = s:gsub("&([^;]*);?", function(e)
		local v = entities[e]
		if v then return v end
		local n
		if e:match("^#x%x+$") then n = tonumber(e:sub(3), 16)
		elseif e:match("^#%d+$") then n = tonumber(e:sub(2)) end
		v = n and n < 0x110000 and utf8char(n)
		if not v then bad = true return "" end
		return v
	end)
	if bad then return nil end
	-- the ';' must be there: "&amp" without it was accepted by the pattern above
	for amp in s:gmatch("&[^;]*;?") do
		if amp:sub(-1) ~= ";" then return nil end
	end
	return out
end
_M.xml_text = text

-- The content of the one element `name` inside `doc` (its start tag may carry
-- attributes): content | nil (absent) | nil, message (twice, unclosed).
local function element(doc, name)
	local open = "<" .. name
	local i = 1
	local found
	while true do
		local s, e = doc:find(open, i, true)
		if not s then break end
		local nextc = doc:sub(e + 1, e + 1)
		if nextc == ">" or nextc == " " or nextc == "/" or nextc == "\t" or nextc == "\n" or nextc == "\r" then
			if found then return nil, "<" .. name .. "> appears twice" end
			local gt = doc:find(">", e + 1, true)
			if not gt then return nil, "<" .. name .. "> is not closed" end
			if doc:sub(gt - 1, gt - 1) == "/" then
				found = ""
				i = gt + 1
			else
				local content_start = gt + 1
				local cs, ce = doc:find("</" .. name .. ">", content_start, true)
				if not cs then return nil, "<" .. name .. "> is not closed" end
				found = doc:sub(content_start, cs - 1)
				i = ce + 1
			end
		else
			i = e + 1
		end
	end
	return found
end
_M.xml_element = element

-- fields(doc, parent, names) -> { [name] = text } | nil, message. Every name must be in
-- the parent element at most once; missing ones are absent from the result.
function _M.xml_fields(doc, parent, names)
	if type(doc) ~= "string" then return nil, "no body" end
	if #doc > MAX_XML then return nil, "the answer is larger than 1 MiB" end
	local inner, err = element(doc, parent)
	if not inner then return nil, err or ("no <" .. parent .. "> element") end
	local out = {}
	for _, n in ipairs(names) do
		local v, e = element(inner, n)
		if e then return nil, e end
		if v then
			local t = text(v)
			if not t then return nil, "<" .. n .. "> holds markup or an unknown entity" end
			out[n] = t
		end
	end
	return out
end

---------------------------------------------------------------------------- call

local function form(params)
	local core = require "bedrock.core"
	local keys = {}
	for k in pairs(params) do keys[#keys + 1] = k end
	sort(keys)
	local parts = {}
	for i, k in ipairs(keys) do
		parts[i] = core.uri_encode(k) .. "=" .. core.uri_encode(tostring(params[k]))
	end
	return concat(parts, "&")
end
_M.form = form

function _M.call(ctx, action, params, creds, region)
	local url, uerr = config.endpoint_for("sts", ctx, region)
	if not url then return nil, util.describe(uerr) end
	local ep = config.parse_url(url)
	params.Action, params.Version = action, "2011-06-15"
	local body = form(params)
	local headers = {
		{ "content-type", "application/x-www-form-urlencoded; charset=utf-8" },
		{ "accept", "text/xml" },
	}
	if creds then
		local core = require "bedrock.core"
		local amz_date = core.amz_date(os.time())
		headers[#headers + 1] = { "host", ep.authority }
		headers[#headers + 1] = { "x-amz-date", amz_date }
		if creds.session_token then
			headers[#headers + 1] = { "x-amz-security-token", creds.session_token }
		end
		local signer = core.signer()
		local sign_region = region
		if not sign_region or ep.host == "sts.amazonaws.com" then sign_region = "us-east-1" end
		local auth, msg = signer:sign{ method = "POST", path = ep.base_path .. "/", headers = headers,
			body = body, access_key = creds.access_key_id, secret_key = creds.secret_access_key,
			region = sign_region, service = "sts", amz_date = amz_date }
		if not auth then return nil, "could not sign the STS request: " .. tostring(msg) end
		headers[#headers + 1] = { "authorization", auth }
	end
	local res, err = ctx.http{ method = "POST", url = ep.url .. "/", headers = headers, body = body,
		timeouts = { connect = _M.connect_timeout, total = _M.timeout } }
	if not res then return nil, "STS at " .. url .. " failed: " .. util.describe(err) end
	if res.status ~= 200 then
		local e = _M.xml_fields(res.body or "", "Error", { "Code", "Message" })
		if e and e.Code then
			return nil, "STS " .. action .. " failed: " .. e.Code .. ": " .. tostring(e.Message or ""), e.Code
		end
		return nil, "STS " .. action .. " answered HTTP " .. tostring(res.status)
	end
	local f, ferr = _M.xml_fields(res.body, "Credentials",
		{ "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration" })
	if not f then return nil, "STS " .. action .. " answer: " .. ferr end
	if not f.AccessKeyId or f.AccessKeyId == "" or not f.SecretAccessKey or f.SecretAccessKey == "" then
		return nil, "STS " .. action .. " answer has no AccessKeyId and SecretAccessKey"
	end
	local exp = f.Expiration and util.time(f.Expiration)
	if f.Expiration and not exp then return nil, "STS " .. action .. " answer: Expiration is not ISO-8601" end
	return util.creds{ access_key_id = f.AccessKeyId, secret_access_key = f.SecretAccessKey,
		session_token = f.SessionToken ~= "" and f.SessionToken or nil, expiration = exp }
end

return _M
