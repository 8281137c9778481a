rockspec_format = "3.0"
package = "lua-bedrock"
version = "scm-1"
source = {
   url = "git+https://example.invalid/lua-bedrock.git",
}
description = {
   summary = "Amazon Bedrock Runtime for Lua: SigV4, event streams and all ten operations",
   detailed = [[
A C core signs requests (SigV4), moves them (libcurl, OpenSSL) and decodes binary event
streams; a thin Lua layer gives an idiomatic client with streaming iterators, retries,
timeouts and validation. Runs in Lua 5.4 and LuaJIT.]],
   license = "Apache-2.0",
   labels = { "aws", "bedrock", "llm", "sigv4", "eventstream" },
}
dependencies = {
   "lua >= 5.1",
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
            "csrc/br_errors.c",
            "csrc/br_eventstream.c",
            "csrc/br_http.c",
            "csrc/br_sigv4.c",
            "csrc/lua_core.c",
            "csrc/lua_eventstream.c",
            "csrc/lua_http.c",
            "csrc/lua_sigv4.c",
         },
         defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
         incdirs = { "csrc", "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
         libraries = { "curl", "crypto" },
      },
      -- @lua-modules (kept in step with lua/ by spec/rockspec_spec.lua)
      ["bedrock.bidi"] = "lua/bedrock/bidi.lua",
      ["bedrock.call"] = "lua/bedrock/call.lua",
      ["bedrock.client"] = "lua/bedrock/client.lua",
      ["bedrock.config"] = "lua/bedrock/config.lua",
      ["bedrock.credentials"] = "lua/bedrock/credentials.lua",
      ["bedrock.errors"] = "lua/bedrock/errors.lua",
      ["bedrock"] = "lua/bedrock/init.lua",
      ["bedrock.json"] = "lua/bedrock/json.lua",
      ["bedrock.http1"] = "lua/bedrock/http1.lua",
      ["bedrock.model"] = "lua/bedrock/model.lua",
      ["bedrock.operations"] = "lua/bedrock/operations.lua",
      ["bedrock.request"] = "lua/bedrock/request.lua",
      ["bedrock.response"] = "lua/bedrock/response.lua",
      ["bedrock.retry"] = "lua/bedrock/retry.lua",
      ["bedrock.shapes"] = "lua/bedrock/shapes.lua",
      ["bedrock.stream"] = "lua/bedrock/stream.lua",
      ["bedrock.transport.curl"] = "lua/bedrock/transport/curl.lua",
      ["bedrock.transport.ngx"] = "lua/bedrock/transport/ngx.lua",
   },
}
