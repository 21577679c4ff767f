-- What `luarocks test` runs, with the interpreter luarocks uses: build the
-- rock for that Lua into build/luarocks-test-<version> (no root, nothing
-- outside the repository), then run the busted specs against it.  The full
-- matrix (every Lua, sanitizers, valgrind, fuzzing) is tools/test.sh.
-- The nginx specs run only where nginx with its Lua module is installed.
local interp = arg and arg[-1] or "lua"
local version = _VERSION:match("%d+%.%d+")

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1
  return ok == true and how == "exit" and code == 0
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local root = assert(io.popen("pwd")):read("*l")
local tree = root .. "/build/luarocks-test-" .. version
local log = tree .. ".log"
assert(sh("mkdir -p " .. q(root .. "/build")))
io.write("luarocks test: building the rock for Lua ", version, " into ", tree, "\n")
if not sh(("luarocks --lua-version %s make --tree %s lua-intuned-scm-1.rockspec >%s 2>&1")
    :format(version, q(tree), q(log))) then
  io.write("luarocks make failed; see ", log, "\n")
  os.exit(1)
end

-- The specs that only drive the emulator (a C program) over HTTP do not
-- depend on the Lua version; tools/test.sh runs them (under 5.4), and
-- leaving them out here keeps `luarocks test` quick.
local EMU_ONLY = { emulator = true, emulator_guard = true, emulator_limits = true, emulator_schedule = true,
                   emulator_newest = true, emulator_behaviour = true, emulator_run_auth = true, api_versions = true }
local specs = {}
local list = assert(io.popen("ls spec/*_spec.lua"))
local have_nginx = sh("test -x /usr/sbin/nginx && test -e /usr/lib/nginx/modules/ngx_http_lua_module.so")
for f in list:lines() do
  local name = f:match("([^/]+)_spec%.lua$")
  if not EMU_ONLY[name] and (have_nginx or not f:find("nginx", 1, true)) then specs[#specs + 1] = q(f) end
end
list:close()
if not have_nginx then io.write("luarocks test: nginx with ngx_http_lua_module not installed: nginx specs left out\n") end

local env = ("LUA_PATH=%s LUA_CPATH=%s INTUNED_EMULATOR=%s"):format(
  q(tree .. "/share/lua/" .. version .. "/?.lua;" .. tree .. "/share/lua/" .. version .. "/?/init.lua;;"),
  q(tree .. "/lib/lua/" .. version .. "/?.so;;"),
  q(tree .. "/bin/intuned-emulator"))
local busted = assert(io.popen("command -v busted")):read("*l")
if not busted then io.write("busted is not installed (Debian: lua-busted)\n") os.exit(1) end
local ok = sh(("env %s %s %s -o utfTerminal %s"):format(env, q(interp), q(busted), table.concat(specs, " ")))
os.exit(ok and 0 or 1)
