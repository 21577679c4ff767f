std = "max"
max_line_length = 140
files["spec"] = { std = "+busted" }
files["lua/intuned/ngx.lua"] = { read_globals = { "ngx" } }
files["lua/intuned/http1.lua"] = { read_globals = { "ngx" } }
files["examples/nginx"] = { read_globals = { "ngx" } }
files["bench"] = { read_globals = { "ngx" } }
exclude_files = { "build*/**", ".tree*/**" }
