-- Shared helpers for the specs: paths, file reading, JSON value equality.
local cjson = require "cjson"

local M = {}

-- The fixtures live in the repository (specs run from its root): copies of the
-- reference's example documents and of the calls recorded from the official SDK.
M.fixtures = "spec/fixtures"

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function M.example(name)
  return M.read(M.fixtures .. "/examples/" .. name)
end

-- Deep equality of decoded JSON values (numbers by value, tables by content).
local function equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.json_equal = function(x, y)
  return equal(cjson.decode(x), cjson.decode(y))
end
M.deep_equal = equal

-- The path of the interpreter running the specs (the parent of the shell
-- io.popen starts), to run bin/intuned and the examples under the same Lua.
function M.interpreter()
  local p = assert(io.popen("readlink /proc/$PPID/exe"))
  local exe = p:read("*l")
  p:close()
  return exe
end

return M
