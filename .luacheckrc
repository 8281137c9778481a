std = "max"
max_line_length = 120
files["spec"] = { std = "+busted", max_line_length = false } -- vectors are long hex lines
files["bench"] = { std = "max" }
exclude_files = { "build", "lua/bedrock/model.lua" }
