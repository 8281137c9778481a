std = "max"
max_line_length = 120
files["spec"] = { std = "+busted", max_line_length = false } -- vectors are long hex lines
files["bench"] = { std = "max" }
exclude_files = { "build", "lua/bedrock/model.lua" }
-- Lua that runs inside nginx's Lua module (OpenResty's ngx API)
files["spec/nginx"] = { std = "max", globals = { "ngx", "INIT_RESULT" } }
files["examples/nginx"] = { std = "max", globals = { "ngx" } }
files["bench/nginx"] = { std = "max", globals = { "ngx" } }
