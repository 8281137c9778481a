rockspec_format = "3.0"
package = "lua-bedrock"
version = "scm-1"
source = {
   url = "git+https://github.com/lua-bedrock/lua-bedrock.git",
}
description = {
   summary = "Amazon Bedrock Runtime for Lua: SigV4, event streams and all eleven operations",
   detailed = [[
A C core signs requests (SigV4), moves them (libcurl, OpenSSL) and decodes binary event
streams; a thin Lua layer gives an idiomatic client with streaming iterators, retries,
timeouts and validation. Supports Lua 5.4 and LuaJIT 2.1 (not PUC Lua 5.1, 5.2 or 5.3).]],
   license = "Apache-2.0",
   labels = { "aws", "bedrock", "llm", "sigv4", "eventstream" },
}
dependencies = {
   -- Lua 5.4 or LuaJIT 2.1. LuaRocks reports LuaJIT as Lua 5.1, so "5.1" must be admitted
   -- here; the C sources refuse PUC Lua 5.1's headers at build time with an #error that
   -- says what is supported (csrc/lua_bedrock.h).
   "lua >= 5.1, ~= 5.2, ~= 5.3",
   "lua-cjson",
}
external_dependencies = {
   -- Only the library is probed: Debian keeps curl.h under a multiarch include
   -- directory that the compiler searches by itself but LuaRocks does not.
   CURL = { library = "curl" },
   OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
build = {
   type = "builtin",
   modules = {
      ["bedrock.core"] = {
         sources = {
            -- @core-sources (kept in step with csrc/ by spec/rockspec_spec.lua)
            "csrc/br_base64.c",
            "csrc/br_buf.c",
            "csrc/br_crc32.c",
            "csrc/br_crypto.c",
            "csrc/br_errors.c",
            "csrc/br_eventstream.c",
            "csrc/br_file.c",
            "csrc/br_http.c",
            "csrc/br_json.c",
            "csrc/br_jtape.c",
            "csrc/br_sigv4.c",
            "csrc/lua_buffer.c",
            "csrc/lua_core.c",
            "csrc/lua_crypto.c",
            "csrc/lua_eventstream.c",
            "csrc/lua_http.c",
            "csrc/lua_json.c",
            "csrc/lua_sigv4.c",
         },
         defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
         incdirs = { "csrc", "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
         libraries = { "curl", "crypto" },
      },
      -- @lua-modules (kept in step with lua/ by spec/rockspec_spec.lua)
      ["bedrock"] = "lua/bedrock/init.lua",
      ["bedrock.api_key"] = "lua/bedrock/api_key.lua",
      ["bedrock.async"] = "lua/bedrock/async.lua",
      ["bedrock.async.ngx"] = "lua/bedrock/async/ngx.lua",
      ["bedrock.bidi"] = "lua/bedrock/bidi.lua",
      ["bedrock.call"] = "lua/bedrock/call.lua",
      ["bedrock.client"] = "lua/bedrock/client.lua",
      ["bedrock.config"] = "lua/bedrock/config.lua",
      ["bedrock.credentials"] = "lua/bedrock/credentials.lua",
      ["bedrock.credentials.assume_role"] = "lua/bedrock/credentials/assume_role.lua",
      ["bedrock.credentials.container"] = "lua/bedrock/credentials/container.lua",
      ["bedrock.credentials.env"] = "lua/bedrock/credentials/env.lua",
      ["bedrock.credentials.imds"] = "lua/bedrock/credentials/imds.lua",
      ["bedrock.credentials.login"] = "lua/bedrock/credentials/login.lua",
      ["bedrock.credentials.process"] = "lua/bedrock/credentials/process.lua",
      ["bedrock.credentials.shared"] = "lua/bedrock/credentials/shared.lua",
      ["bedrock.credentials.sso"] = "lua/bedrock/credentials/sso.lua",
      ["bedrock.credentials.sts"] = "lua/bedrock/credentials/sts.lua",
      ["bedrock.credentials.support"] = "lua/bedrock/credentials/support.lua",
      ["bedrock.credentials.util"] = "lua/bedrock/credentials/util.lua",
      ["bedrock.credentials.web_identity"] = "lua/bedrock/credentials/web_identity.lua",
      ["bedrock.errors"] = "lua/bedrock/errors.lua",
      ["bedrock.ini"] = "lua/bedrock/ini.lua",
      ["bedrock.inspect"] = "lua/bedrock/inspect.lua",
      ["bedrock.json"] = "lua/bedrock/json.lua",
      ["bedrock.http1"] = "lua/bedrock/http1.lua",
      ["bedrock.model"] = "lua/bedrock/model.lua",
      ["bedrock.operations"] = "lua/bedrock/operations.lua",
      ["bedrock.request"] = "lua/bedrock/request.lua",
      ["bedrock.response"] = "lua/bedrock/response.lua",
      ["bedrock.retry"] = "lua/bedrock/retry.lua",
      ["bedrock.shapes"] = "lua/bedrock/shapes.lua",
      ["bedrock.stream"] = "lua/bedrock/stream.lua",
      ["bedrock.jit_events"] = "lua/bedrock/jit_events.lua",
      ["bedrock.tools"] = "lua/bedrock/tools.lua",
      ["bedrock.transport.curl"] = "lua/bedrock/transport/curl.lua",
      ["bedrock.transport.ngx"] = "lua/bedrock/transport/ngx.lua",
      ["bedrock.transport.options"] = "lua/bedrock/transport/options.lua",
   },
}
