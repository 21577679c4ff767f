-- Shared by the conformance replays (spec/conformance_spec.lua for the Jobs
-- API, spec/conformance_run_auth_spec.lua for the Run API and Auth
-- Sessions): reading the recorded cases and comparing typed results with
-- what the official SDK returned.
local cjson = require "cjson"
local util = require "spec.helpers.util"

local M = {}

M.read = util.read

-- The .json files of a directory of recorded cases, sorted.
function M.list_cases(dir)
  local files = {}
  local p = assert(io.popen('ls "' .. dir .. '"'))
  for name in p:lines() do
    if name:match("%.json$") then files[#files + 1] = name end
  end
  p:close()
  table.sort(files)
  return files
end

-- JSON value equality (cjson.null == intuned.null: both the NULL light userdata).
local function same_json(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same_json(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.same_json = same_json

-- Compare a typed value (object, array of objects, free-form JSON) with the
-- SDK's result, reading every expected key through the object (wire or SDK
-- name).  Returns nil or a description of the first difference.
local function diff(got, want, path)
  if want == cjson.null then
    if got == nil or got == cjson.null then return nil end
    return path .. ": expected null, got " .. tostring(got)
  end
  if type(want) ~= "table" then
    if got == want then return nil end
    return ("%s: expected %s, got %s"):format(path, tostring(want), tostring(got))
  end
  if got == nil then return path .. ": missing" end
  if #want > 0 or next(want) == nil then -- array (or empty)
    local n = #got
    if n ~= #want then return ("%s: expected %d items, got %d"):format(path, #want, n) end
    for i = 1, #want do
      local d = diff(got[i], want[i], ("%s[%d]"):format(path, i))
      if d then return d end
    end
    return nil
  end
  for k, v in pairs(want) do
    local ok, val = pcall(function() return got[k] end)
    if not ok then return ("%s.%s: %s"):format(path, k, tostring(val)) end
    local d = diff(val, v, path .. "." .. k)
    if d then return d end
  end
  return nil
end
M.diff = diff

return M
