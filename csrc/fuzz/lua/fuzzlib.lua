-- Shared by the Lua fuzz entries (csrc/fuzz/lua/<target>.lua, run by csrc/fuzz/fuzz_lua.c):
-- contract checks that raise "contract: ..." (the harness turns any error into a crash).
local errors = require "bedrock.errors"

local M = {}

local function fail(fmt, ...)
	error("contract: " .. string.format(fmt, ...), 2)
end
M.fail = fail

function M.check(cond, fmt, ...)
	if not cond then error("contract: " .. string.format(fmt, ...), 2) end
	return cond
end

-- An error object from bedrock.errors with one of the codes given (a set), and a
-- non-empty message string.
function M.error_object(e, codes, what)
	if not errors.is(e) then fail("%s: the error is not an error object: %s (%s)", what, type(e), tostring(e)) end
	if codes and not codes[e.code] then
		fail("%s: unexpected error code %s (%s)", what, tostring(e.code), tostring(e.message))
	end
	if type(e.message) ~= "string" or e.message == "" then fail("%s: error without a message", what) end
	return e
end

-- A non-empty message string.
function M.message(m, what)
	if type(m) ~= "string" or m == "" then fail("%s: the error is not a message string: %s", what, tostring(m)) end
	return m
end

-- Splits the input: the first byte (a mode) and the rest.
function M.mode(data)
	if #data == 0 then return 0, "" end
	return data:byte(1), data:sub(2)
end

-- Credentials as the providers return them: the key pair non-empty strings, the session
-- token absent or a string, the expiration absent or a finite number.
function M.creds(c, what)
	if type(c) ~= "table" then fail("%s: credentials are not a table: %s", what, type(c)) end
	if type(c.access_key_id) ~= "string" or c.access_key_id == "" then fail("%s: no access key id", what) end
	if type(c.secret_access_key) ~= "string" or c.secret_access_key == "" then fail("%s: no secret", what) end
	if c.session_token ~= nil and type(c.session_token) ~= "string" then fail("%s: token not a string", what) end
	local x = c.expiration
	if x ~= nil and (type(x) ~= "number" or x ~= x or x == math.huge or x == -math.huge) then
		fail("%s: expiration is not a finite number: %s", what, tostring(x))
	end
	local s = tostring(c)
	if c.secret_access_key and #c.secret_access_key >= 8 and s:find(c.secret_access_key, 1, true) then
		fail("%s: tostring shows the secret", what)
	end
	return c
end

return M
