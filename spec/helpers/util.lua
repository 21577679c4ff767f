-- Shared helpers for the specs: paths, file reading, JSON value equality.
local cjson = require "cjson"

local M = {}

M.shared = os.getenv("ITD_SHARED_DIR") or "../shared"

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function M.example(name)
  return M.read(M.shared .. "/spec/examples/" .. name)
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

return M
