-- luacheck: no max line length
-- The strict XML extraction of STS answers, with hostile inputs.
require "spec.helper"
local sts = require "bedrock.credentials.sts"

local NAMES = { "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration" }

local good = [[<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>a&amp;b&lt;c&#x41;&#66;</SecretAccessKey>
      <SessionToken>tok</SessionToken>
      <Expiration>2026-12-02T06:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>]]

describe("STS XML", function()
	it("extracts the credentials and decodes entities", function()
		local f = assert(sts.xml_fields(good, "Credentials", NAMES))
		assert.equal("ASIAEXAMPLE", f.AccessKeyId)
		assert.equal("a&b<cAB", f.SecretAccessKey)
		assert.equal("tok", f.SessionToken)
		assert.equal("2026-12-02T06:00:00Z", f.Expiration)
		local e = assert(sts.xml_fields([[<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error></ErrorResponse>]],
			"Error", { "Code", "Message" }))
		assert.equal("ExpiredToken", e.Code)
	end)

	it("refuses hostile or malformed answers without raising", function()
		local bad = {
			"",
			"not xml at all",
			"<Credentials>",                                                          -- unclosed
			"<Credentials><AccessKeyId>A</AccessKeyId>",                             -- unclosed parent
			"<Credentials><AccessKeyId>A</AccessKeyId></Credentials><Credentials></Credentials>", -- twice
			"<Credentials><AccessKeyId>A</AccessKeyId><AccessKeyId>B</AccessKeyId></Credentials>",
			"<Credentials><AccessKeyId>A<b/></AccessKeyId></Credentials>",           -- markup in text
			"<Credentials><AccessKeyId>&xxe;</AccessKeyId></Credentials>",           -- unknown entity
			"<Credentials><AccessKeyId>&amp</AccessKeyId></Credentials>",            -- entity without ;
			"<Credentials><AccessKeyId>&#x110000;</AccessKeyId></Credentials>",      -- beyond Unicode
			"<Credentials><AccessKeyId>&#xD800;</AccessKeyId></Credentials>",        -- surrogate
			"<Credentials><AccessKeyId>a & b</AccessKeyId></Credentials>",
			"<Credentials><AccessKeyId>A</AccessKeyId",                              -- truncated
			"<Credentials " .. string.rep("a", 100) .. "<AccessKeyId>",
			"<Credentials>" .. string.rep("x", 1024 * 1024 + 1) .. "</Credentials>",  -- too large
		}
		for i, doc in ipairs(bad) do
			local ok, f, err = pcall(sts.xml_fields, doc, "Credentials", NAMES)
			assert.is_true(ok, "case " .. i)
			if f then
				-- accepted only when nothing of substance could be read
				assert.is_nil(f.AccessKeyId, "case " .. i)
			else
				assert.is_string(err, "case " .. i)
			end
		end
		local ok, f = pcall(sts.xml_fields, nil, "Credentials", NAMES)
		assert.is_true(ok)
		assert.is_nil(f)
	end)

	it("survives random mutations of a good answer", function()
		math.randomseed(12345)
		for _ = 1, 3000 do
			local s = good
			for _ = 1, math.random(1, 4) do
				local pos = math.random(1, #s)
				local r = math.random(1, 3)
				if r == 1 then
					s = s:sub(1, pos - 1) .. s:sub(pos + 1)
				elseif r == 2 then
					s = s:sub(1, pos - 1) .. string.char(math.random(0, 255)) .. s:sub(pos + 1)
				else
					local ins = ({ "<", ">", "&", ";", "</Credentials>", "<Credentials>", "&#", "/" })[math.random(1, 8)]
					s = s:sub(1, pos - 1) .. ins .. s:sub(pos)
				end
			end
			local ok, f, err = pcall(sts.xml_fields, s, "Credentials", NAMES)
			assert.is_true(ok, tostring(f))
			assert.is_true(f ~= nil or type(err) == "string")
			if f then
				for _, v in pairs(f) do assert.is_string(v) end
			end
		end
	end)

	it("encodes the Query form as STS expects", function()
		assert.equal("Action=AssumeRole&ExternalId=a%20b%2Bc%3D&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx",
			sts.form{ Action = "AssumeRole", RoleArn = "arn:aws:iam::1:role/x", ExternalId = "a b+c=" })
	end)
end)
