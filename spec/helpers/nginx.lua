-- Start and stop a real nginx (Debian's, with ngx_http_lua_module) for the
-- specs: one worker, a generated configuration in a temporary prefix, a free
-- loopback port, error_log in the prefix.
--
--   local nginx = require("spec.helpers.nginx")
--   local srv = nginx.start{ http = "server { listen {{LISTEN}}; ... }", env = { NAME = "value" } }
--   srv.url, srv.port, srv.prefix, srv.error_log, srv:stop(), srv:log()
--
-- The configuration text may use {{LISTEN}} (127.0.0.1:port), {{PORT}},
-- {{PREFIX}}, {{ROOT}} (the repository), {{LUA_PATH}} and {{LUA_CPATH}}.
-- nginx runs LuaJIT, so intuned.core must be built for the Lua 5.1 ABI: the
-- helper builds it with CMake into build/nginx-51 (incremental) unless
-- ITD_NGINX_CPATH names an existing one ("/dir/?.so").  The Lua modules come
-- from the source tree (lua/), so a spec always runs the current ones.
local M = {}

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1
  return ok == true and how == "exit" and code == 0
end

-- read (nil when missing) and write: the emulator helper's
local files = require "spec.helpers.emulator"
local read, write = files.read_file, files.write_file

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return s
end

-- File and shell helpers, shared with the nginx spec.
M.read, M.write, M.capture = read, write, capture

function M.root()
  local src = debug.getinfo(1, "S").source:sub(2)
  local dir = src:match("^(.*)/spec/helpers/[^/]*$")
  if not dir or dir == "" then dir = "." end
  return (capture("cd '" .. dir .. "' && pwd"):gsub("%s+$", ""))
end

local built
-- The 5.1 cpath entry for intuned/core.so ("/dir/?.so").
function M.lua51_cpath()
  local env = os.getenv("ITD_NGINX_CPATH")
  if env and env ~= "" then return env end
  if built then return built end
  local root = M.root()
  local dir = root .. "/build/nginx-51"
  sh("mkdir -p '" .. dir .. "'")
  local log = dir .. "/build.log"
  -- LD_PRELOAD (sanitizer runs) must not reach the compiler or nginx
  local cmd = ("env -u LD_PRELOAD cmake -S '%s' -B '%s' -DLUA_INCDIR=/usr/include/luajit-2.1 -DITD_BUILD_EMULATOR=OFF "
    .. "-DITD_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >'%s' 2>&1 && env -u LD_PRELOAD cmake --build '%s' -j4 "
    .. ">>'%s' 2>&1"):format(root, dir, log, dir, log)
  if not sh(cmd) then error("building intuned.core for LuaJIT failed; see " .. log) end
  built = dir .. "/lib/?.so"
  return built
end

local function free_port()
  -- Ask the kernel for a free port by binding port 0 (python3 is part of the
  -- Debian base images we target; fall back to a random high port).
  local out = capture("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
    .. "print(s.getsockname()[1]); s.close()' 2>/dev/null")
  local p = tonumber(out:match("%d+"))
  if p then return p end
  math.randomseed(os.time())
  return math.random(20000, 60000)
end

local function fill(text, vars)
  return (text:gsub("{{([%w_]+)}}", function(k)
    local v = vars[k]
    if v == nil then error("nginx helper: no value for {{" .. k .. "}}") end
    return tostring(v)
  end))
end

local function wait_ready(port, tries)
  for _ = 1, tries do
    if sh(("curl -s -o /dev/null --max-time 1 http://127.0.0.1:%d/ 2>/dev/null"):format(port)) then return true end
    sh("sleep 0.05")
  end
  return false
end

local Server = {}
Server.__index = Server

function Server:log()
  return read(self.error_log) or ""
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  local pid = read(self.prefix .. "/nginx.pid")
  pid = pid and pid:match("%d+")
  if pid then
    sh("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      -- a zombie counts as gone: PID 1 of a container may reap it late
      if not sh("ps -o stat= -p " .. pid .. " 2>/dev/null | grep -qv '^Z'") then break end
      sh("sleep 0.05")
    end
  end
  if not os.getenv("ITD_KEEP_NGINX") then sh("rm -rf '" .. self.prefix .. "'") end
end

--- The configuration of examples/nginx/nginx.conf with test paths, for
-- M.start{ conf = ... }: prefix-local logs, pid and temp paths, the source
-- tree's Lua modules, {{LISTEN}}.  opts.locations: text added to the
-- server block; opts.http: to the http block; opts.workers (default 1).
-- Each substitution must apply, so a change to the example that breaks a
-- spec's assumptions fails here.
function M.example_conf(opts)
  opts = opts or {}
  local conf = assert(read(M.root() .. "/examples/nginx/nginx.conf"))
  local function sub(pat, repl)
    local n
    conf, n = conf:gsub(pat, function() return repl end)
    assert(n == 1, "examples/nginx/nginx.conf: no match for " .. pat)
  end
  sub("worker_processes auto;", "worker_processes " .. (opts.workers or 1) .. ";")
  sub("error_log [^;]*;", "error_log {{PREFIX}}/logs/error.log info;")
  sub("pid [^;]*;", "pid {{PREFIX}}/nginx.pid;")
  sub("worker_connections %d+;", "worker_connections 4096;")
  sub("access_log [^;]*;", "access_log off; client_body_temp_path {{PREFIX}}/tmp/body; "
    .. "proxy_temp_path {{PREFIX}}/tmp/proxy; fastcgi_temp_path {{PREFIX}}/tmp/fcgi; "
    .. "uwsgi_temp_path {{PREFIX}}/tmp/uwsgi; scgi_temp_path {{PREFIX}}/tmp/scgi;" .. (opts.http or ""))
  sub('lua_package_path "[^"]*";', 'lua_package_path "{{LUA_PATH}}{{ROOT}}/examples/nginx/?.lua;;";')
  sub('lua_package_cpath "[^"]*";', 'lua_package_cpath "{{LUA_CPATH}}";')
  sub("listen 8080;", "listen {{LISTEN}};\n" .. (opts.locations or ""))
  return conf
end

--- Start nginx.  opts.http: the inside of the http block (servers, lua_*
-- directives), or opts.conf: a whole configuration (its own events/http).
-- opts.env: variables for nginx's environment (declare them with `env` in
-- the configuration, as nginx clears the rest for its workers).
function M.start(opts)
  local root = M.root()
  local prefix = capture("mktemp -d /tmp/itd-nginx.XXXXXX"):gsub("%s+$", "")
  sh("chmod 755 '" .. prefix .. "'")
  for _, d in ipairs{ "logs", "tmp" } do sh("mkdir -p '" .. prefix .. "/" .. d .. "'") end
  local lpath = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. (opts.lua_path or "") .. ";"
  local cpath = M.lua51_cpath() .. ";;"
  local last_err
  for _ = 1, 5 do
    local port = opts.port or free_port()
    local vars = { LISTEN = "127.0.0.1:" .. port, PORT = port, PREFIX = prefix, ROOT = root,
                   LUA_PATH = lpath, LUA_CPATH = cpath }
    for k, v in pairs(opts.vars or {}) do vars[k] = v end
    local conf
    if opts.conf then
      conf = fill(opts.conf, vars)
    else
      conf = fill(table.concat({
        "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
        "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
        "worker_processes 1;",
        "error_log {{PREFIX}}/logs/error.log info;",
        "pid {{PREFIX}}/nginx.pid;",
        opts.main or "",
        "events { worker_connections 4096; }",
        "http {",
        "  access_log off;",
        "  client_body_temp_path {{PREFIX}}/tmp/body;",
        "  proxy_temp_path {{PREFIX}}/tmp/proxy;",
        "  fastcgi_temp_path {{PREFIX}}/tmp/fastcgi;",
        "  uwsgi_temp_path {{PREFIX}}/tmp/uwsgi;",
        "  scgi_temp_path {{PREFIX}}/tmp/scgi;",
        '  lua_package_path "{{LUA_PATH}}";',
        '  lua_package_cpath "{{LUA_CPATH}}";',
        opts.http or "",
        "}",
      }, "\n"), vars)
    end
    -- root runs workers as "nobody" otherwise, who cannot read a private work tree
    if sh("test \"$(id -u)\" = 0") and not conf:find("\nuser ", 1, true) then conf = "user root;\n" .. conf end
    write(prefix .. "/nginx.conf", conf)
    local envs = {}
    for k, v in pairs(opts.env or {}) do envs[#envs + 1] = k .. "='" .. tostring(v):gsub("'", "'\\''") .. "'" end
    local cmd = ("cd '%s' && env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS %s nginx -p '%s/' -e '%s/logs/error.log' -c '%s/nginx.conf' "
      .. ">'%s/logs/start.log' 2>&1"):format(prefix, table.concat(envs, " "), prefix, prefix, prefix, prefix)
    if sh(cmd) and wait_ready(port, 100) then
      return setmetatable({ port = port, url = "http://127.0.0.1:" .. port, prefix = prefix,
                            error_log = prefix .. "/logs/error.log", conf = conf }, Server)
    end
    last_err = (read(prefix .. "/logs/start.log") or "") .. (read(prefix .. "/logs/error.log") or "")
    local pid = read(prefix .. "/nginx.pid")
    if pid and pid:match("%d+") then sh("kill -TERM " .. pid:match("%d+") .. " 2>/dev/null") end
    if opts.port or not last_err:find("in use", 1, true) then break end
  end
  error("nginx did not start:\n" .. tostring(last_err))
end

return M
