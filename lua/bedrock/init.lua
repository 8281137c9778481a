-- lua-bedrock: a Lua client for the Amazon Bedrock Runtime API.
--
--   local bedrock = require "bedrock"
--   local client = assert(bedrock.client{ region = "us-east-1" })
--   local res = assert(client:converse{ modelId = "...", messages = { ... } })
--
-- See docs/README.md (the guide) and docs/api.md (the reference).
local client = require "bedrock.client"
local errors = require "bedrock.errors"
local inspect = require "bedrock.inspect"
local json = require "bedrock.json"

local _M = { _VERSION = "0.1.0" }

--- @module bedrock
-- `local bedrock = require "bedrock"`: the entry point. Everything else is reached from a
-- client (`bedrock.client`) or from the modules named below (`bedrock.async`,
-- `bedrock.tools`, `bedrock.transport.curl`).

--- bedrock.client([opts]) -> client | nil, err
-- A client for one region and one set of credentials ([Client options](#client-options)).
-- Nothing is read from files or the network yet: the shared config files and the
-- credential chain are read on the first request (or `client:credentials()`). An unknown
-- option is a `ConfigError` naming it, and so is an option of the wrong type, at
-- creation.
function _M.client(opts)
	return client.new(opts)
end

--- bedrock.api_key([opts]) -> key, expires_at | nil, err
-- A short-term Bedrock API key (a bearer token for `AWS_BEARER_TOKEN_BEDROCK` or
-- `credentials = { token = key }`) made from AWS credentials. opts: `region`,
-- `expires_in` (seconds, 1..43200, default 43200), `client` (a SigV4 client whose
-- credentials and region are used), `credentials`, `profile`, `getenv`, `now` (UNIX
-- seconds to sign at). `expires_at` (UNIX seconds) is no later than the credentials'
-- own expiry. Bad options: `ValidationError`; a bearer client or expired credentials:
-- `CredentialsError`.
function _M.api_key(opts)
	return require("bedrock.api_key").new(opts)
end

-- JSON document helpers (tool input schemas, tool inputs, additionalModelRequestFields).
--- bedrock.array([t]) -> t
-- Marks `t` (default: a new table) as a JSON array, also when empty, for document
-- members (tool input schemas, tool inputs, `additionalModelRequestFields`).
_M.array = json.array
--- bedrock.empty_array
-- A shared, read-only empty JSON array (writing to it raises: use `bedrock.array{}`).
_M.empty_array = json.empty_array
--- bedrock.null
-- JSON `null` inside documents; in a modeled member it counts as absent.
_M.null = json.null
--- bedrock.json
-- The JSON and base64 helpers ([`bedrock.json`](#bedrockjson)).
_M.json = json

--- bedrock.inspect(value [, opts]) -> text
-- Readable, indented JSON-like text for any value (results, events, errors), keys in a
-- stable order, bytes that are not UTF-8 text as `\xNN`, `bedrock.null` as `null`, a
-- cycle as `<cycle>`. opts: `indent` (default two spaces), `depth` (default 20; deeper
-- tables print as `{…}`), `max_string` (longer strings are cut, marked with their length).
_M.inspect = inspect.inspect

--- bedrock.errors
-- The error module ([Errors](#errors)): `errors.is`, `errors.new`, `errors.make`, `errors.codes`.
_M.errors = errors
--- bedrock.is_error(v [, code]) -> boolean
-- `errors.is`: true when `v` is an error object of this library (and has `code`, when given).
_M.is_error = errors.is

return _M
