-- Per-call options through the nginx transport (intuned.ngx on cosockets):
-- the scenarios of spec/call_options_spec.lua (spec/helpers/call_options.lua),
-- each chunk run in nginx's content phase, so the same options give the same
-- outcomes with both transports.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"
local nginx = require "spec.helpers.nginx"
local echo_server = require "spec.helpers.echo"
local cases = require "spec.helpers.call_options"

-- /eval runs the Lua chunk sent as the body in the content phase and
-- answers what it returns, as JSON.
local HTTP = [[
  server {
    listen {{LISTEN}};
    location = /eval {
      content_by_lua_block {
        ngx.req.read_body()
        local chunk = assert(loadstring(ngx.req.get_body_data(), "=eval"))
        local ok, res = pcall(chunk)
        ngx.header["Content-Type"] = "application/json"
        ngx.say(require("intuned").encode_json(ok and res or { raised = tostring(res) }))
      }
    }
  }
]]

describe("per-call options (nginx transport)", function()
  local emu, echo, srv, tmpdir, pre

  local function eval(code)
    local f = tmpdir .. "/chunk.lua"
    nginx.write(f, code)
    local out = nginx.capture("curl -s --max-time 60 -H 'Content-Type: text/plain' --data-binary @" .. f
      .. " -w '\\n%{http_code}' " .. srv.url .. "/eval")
    local body, status = out:match("^(.*)\n(%d+)$")
    assert.equals("200", status, out)
    local v = intuned.decode_json(body)
    assert(type(v) == "table", "not JSON: " .. tostring(body))
    assert(v.raised == nil, "raised in nginx: " .. tostring(v.raised))
    return v
  end

  setup(function()
    tmpdir = nginx.capture("mktemp -d /tmp/itd-nginx-callopts.XXXXXX"):gsub("%s+$", "")
    emu = emulator.start{ "--api-key", cases.KEY }
    echo = echo_server.start()
    srv = nginx.start{ http = HTTP }
    pre = cases.prelude(emu.url, echo.url)
  end)

  teardown(function()
    if srv then srv:stop() end
    echo_server.stop(echo)
    if emu then emu.stop() end
    if tmpdir then os.execute("rm -rf '" .. tmpdir .. "'") end
  end)

  for _, sc in ipairs(cases.scenarios) do
    it(sc.name, function()
      if sc.setup then sc.setup(emu) end
      sc.check(eval(pre .. sc.chunk))
    end)
  end
end)
