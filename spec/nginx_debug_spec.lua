-- Debug output inside nginx: the lines go to ngx.log (NOTICE), redacted.
local emulator = require "spec.helpers.emulator"
local nginx = require "spec.helpers.nginx"

local KEY = "nginx-debug-key-0123456789"


local HTTP = [[
  server {
    listen {{LISTEN}};
    location = /list {
      content_by_lua_block {
        local intuned = require "intuned"
        local c = intuned.client{ api_key = "%s", workspace_id = "ws-local", server_url = "%s", debug = true }
        local jobs, err = c.jobs:list("dbg")
        ngx.say(jobs and ("jobs " .. #jobs) or tostring(err))
      }
    }
  }
]]

describe("debug output inside nginx", function()
  local emu, srv
  setup(function()
    emu = emulator.start{ "--api-key", KEY }
    -- the key sits in the configuration, not in the URL: nginx writes the
    -- request line beside every line a handler logs
    srv = nginx.start{ http = HTTP:format(KEY, emu.url) }
  end)
  teardown(function()
    if srv then srv:stop() end
    emulator.stop_all()
  end)

  it("logs one line per request and response to error.log, without the key", function()
    local r = emulator.http("GET", srv.url .. "/list")
    assert.equals(200, r.status, r.body)
    assert.equals("jobs 0\n", r.body)
    local log = srv:log()
    assert.truthy(log:find("[notice]", 1, true), log)
    assert.truthy(log:find("intuned: request GET /ws-local/projects/dbg/jobs (jobs:list, attempt 1)", 1, true), log)
    assert.truthy(log:find("intuned: response 200 GET /ws-local/projects/dbg/jobs in", 1, true), log)
    assert.falsy(log:find(KEY, 1, true))
  end)
end)
