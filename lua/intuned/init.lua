-- intuned: Lua client for the Intuned Jobs API.
-- The typed model, codec and protocol live in C (intuned.core); this module
-- re-exports them and adds the client, whose transport is picked at call time
-- (libcurl from plain Lua, cosockets inside nginx).
local core = require "intuned.core"

local M = {}
for k, v in pairs(core) do M[k] = v end

--- Create a client: see README "Client".
function M.client(opts)
  return require("intuned.client").new(opts)
end

return M
