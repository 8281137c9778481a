-- lua-bedrock: a Lua client for the Amazon Bedrock Runtime API.
--
--   local bedrock = require "bedrock"
--   local client = assert(bedrock.client{ region = "us-east-1" })
--   local res = assert(client:converse{ modelId = "...", messages = { ... } })
--
-- See docs/client.md.
local client = require "bedrock.client"
local errors = require "bedrock.errors"
local inspect = require "bedrock.inspect"
local json = require "bedrock.json"

local _M = { _VERSION = "0.1.0" }

-- bedrock.client(opts) -> client | nil, err
function _M.client(opts)
	return client.new(opts)
end

-- bedrock.api_key{ region =, expires_in = } -> key, expires_at | nil, err: a short-term
-- Bedrock API key (bearer token) made from the current AWS credentials. See
-- docs/credentials.md.
function _M.api_key(opts)
	return require("bedrock.api_key").new(opts)
end

-- JSON document helpers (tool input schemas, tool inputs, additionalModelRequestFields).
_M.array = json.array             -- mark a table as a JSON array (also when empty)
_M.empty_array = json.empty_array -- a shared, read-only empty JSON array
_M.null = json.null               -- JSON null inside documents
_M.json = json                    -- encode/decode/b64encode/b64decode helpers

-- Readable text for results, events and errors (the REPL): print(bedrock.inspect(res)).
_M.inspect = inspect.inspect

_M.errors = errors
_M.is_error = errors.is

return _M
