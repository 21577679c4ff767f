-- Per-call options through the libcurl transport: every option that makes
-- sense for one call (timeout, deadline, retry, headers, hook) given to a
-- method or a batch entry takes effect for that call only, typos are
-- refused naming the closest valid option, and the hook events of a call
-- carry its response, redacted.  The scenarios (spec/helpers/call_options.lua)
-- run inside nginx too (spec/nginx_call_options_spec.lua).
local emulator = require "spec.helpers.emulator"
local echo_server = require "spec.helpers.echo"
local cases = require "spec.helpers.call_options"

local load_chunk = loadstring or load -- luacheck: ignore 113 (loadstring: Lua 5.1)

describe("per-call options (libcurl transport)", function()
  local emu, echo, pre

  setup(function()
    emu = emulator.start{ "--api-key", cases.KEY }
    echo = echo_server.start()
    pre = cases.prelude(emu.url, echo.url)
  end)

  teardown(function()
    echo_server.stop(echo)
    emulator.stop_all()
  end)

  for _, sc in ipairs(cases.scenarios) do
    it(sc.name, function()
      if sc.setup then sc.setup(emu) end
      local f = assert(load_chunk(pre .. sc.chunk, "=" .. sc.name))
      -- through JSON, as the nginx spec gets it
      local intuned = require "intuned"
      local r = intuned.decode_json(assert(intuned.encode_json(f())))
      sc.check(r)
    end)
  end
end)
