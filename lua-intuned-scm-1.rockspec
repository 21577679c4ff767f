rockspec_format = "3.0"
package = "lua-intuned"
version = "scm-1"
source = {
   url = "git+https://github.com/lua-intuned/lua-intuned.git",
}
description = {
   summary = "Intuned Jobs API client: typed models, JSON codec, libcurl and nginx transports, local emulator",
   detailed = [[
A C core (model, JSON codec with field-path validation, protocol, libcurl
transport with retries) with Lua bindings, an nginx/OpenResty cosocket
transport, and intuned-emulator, a local server of the Jobs API.
]],
   homepage = "https://github.com/lua-intuned/lua-intuned",
   maintainer = "The lua-intuned developers",
   license = "MIT",
   labels = { "intuned", "api", "http", "openresty" },
}
dependencies = {
   "lua >= 5.1",
}
external_dependencies = {
   CURL = { library = "curl" },
   CJSON = { library = "cjson" },
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "RelWithDebInfo",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      LUA_CMOD_DIR = "$(LIBDIR)",
      LUA_LMOD_DIR = "$(LUADIR)",
      CMAKE_INSTALL_BINDIR = "$(BINDIR)",
      -- the C header, libintuned_core.a and intuned.pc stay in the rock's own
      -- directory (luarocks would deploy a "lib" folder as Lua modules)
      CMAKE_INSTALL_LIBDIR = "clib",
      ITD_BUILD_TESTS = "OFF",
   },
   -- the `intuned` command: luarocks installs it with a wrapper that runs it
   -- with this rock's Lua and module paths (CMake installs intuned-emulator)
   install = {
      bin = { intuned = "bin/intuned" },
   },
}
-- `luarocks test`: the busted specs for the Lua luarocks uses, without root.
-- The whole matrix (every Lua, sanitizers, valgrind, fuzzing) is tools/test.sh.
test = {
   type = "command",
   script = "tools/luarocks_test.lua",
}
