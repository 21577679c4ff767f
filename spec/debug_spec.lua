-- Debug output (issue 14 point 4): one redacted line per request, response
-- and retry, from the client option `debug` or INTUNED_DEBUG=1.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"

local KEY = "debug-spec-key-0123456789"

local interpreter = require("spec.helpers.util").interpreter

local function input(id)
  return { id = id, payload = { { apiName = "debug/ping" } }, configuration = { runMode = "Order-Irrelevant" },
           sink = { type = "webhook", url = "http://127.0.0.1:9/hook", headers = { Authorization = "Bearer webhook-secret-42" } } }
end

describe("debug output", function()
  local emu
  setup(function() emu = emulator.start{ "--api-key", KEY } end)
  teardown(function() emulator.stop_all() end)
  after_each(function() emu.control("DELETE", "/_emulator/faults") end)

  local function client(extra)
    local o = { api_key = KEY, workspace_id = "ws-local", server_url = emu.url,
                retry = { initial_delay = 0.001, max_delay = 0.01 } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return intuned.client(o)
  end

  it("writes one line per request, response and retry, with no secret in them", function()
    local lines = {}
    local c = client{ debug = function(l) lines[#lines + 1] = l end }
    assert(c.jobs:create("dbg", input("dbg-one")))
    emu.fault{ status = 503, count = 1, match = "/jobs/dbg-one", method = "GET" }
    assert(c.jobs:get("dbg", "dbg-one"))
    local all = table.concat(lines, "\n")
    assert.truthy(lines[1]:match("^intuned: request POST /ws%-local/projects/dbg/jobs %(jobs:create, attempt 1%)$"),
      lines[1])
    assert.truthy(lines[2]:match("^intuned: response 201 POST "), lines[2])
    -- the get: 503, retry, then 200
    assert.truthy(all:find("intuned: response 503 GET /ws-local/projects/dbg/jobs/dbg-one", 1, true), all)
    assert.truthy(all:find("\nintuned: retry GET /ws-local/projects/dbg/jobs/dbg-one in ", 1, true), all)
    assert.truthy(all:find("intuned: response 200 GET /ws%-local/projects/dbg/jobs/dbg%-one in %d+ ms %(jobs:get, attempt 2%)"),
      all)
    assert.equals(7, #lines) -- request+response for the create, request+response+retry+request+response for the get
    assert.falsy(all:find(KEY, 1, true))
    assert.falsy(all:find("webhook-secret-42", 1, true))
  end)

  it("keeps printing when a call brings its own hook, or none (hook = false)", function()
    local lines, events = {}, {}
    local c = client{ debug = function(l) lines[#lines + 1] = l end, hook = function() error("not this one") end }
    assert(c.jobs:list("dbg", { hook = function(ev) events[#events + 1] = ev.event end }))
    assert.same({ "request", "response" }, events)
    assert.equals(2, #lines)
    assert(c.jobs:list("dbg", { hook = false }))
    assert.equals(4, #lines)
    local out = c:batch{ { op = "jobs:list", project = "dbg", hook = false } }
    assert.is_false(intuned.is_error(out[1]))
    assert.equals(6, #lines)
  end)

  it("is off by default, on with INTUNED_DEBUG=1 (to stderr), and debug = false wins", function()
    local script = os.tmpname()
    emulator.write_file(script, ([[
      local intuned = require "intuned"
      local o = { api_key = %q, workspace_id = "ws-local", server_url = %q }
      if arg[1] == "off" then o.debug = false end
      local c = intuned.client(o)
      assert(c.jobs:list("dbg"))
      io.stdout:write("done\n")
    ]]):format(KEY, emu.url))
    local function run(env, a)
      local cmd = ("%s LUA_PATH=%s LUA_CPATH=%s %s %s %s 2>&1"):format(env, emulator.quote(package.path),
        emulator.quote(package.cpath), emulator.quote(interpreter()), emulator.quote(script), a or "")
      local p = assert(io.popen(cmd))
      local out = p:read("*a")
      p:close()
      return out
    end
    local quiet = run("env -u INTUNED_DEBUG")
    assert.equals("done\n", quiet)
    local loud = run("env INTUNED_DEBUG=1")
    assert.truthy(loud:find("intuned: request GET /ws-local/projects/dbg/jobs (jobs:list, attempt 1)", 1, true), loud)
    assert.truthy(loud:find("intuned: response 200 GET /ws-local/projects/dbg/jobs in", 1, true), loud)
    assert.falsy(loud:find(KEY, 1, true))
    assert.equals("done\n", run("env INTUNED_DEBUG=1", "off"))
    os.remove(script)
  end)

  it("refuses a debug option that is neither a boolean nor a function", function()
    assert.has_error(function() client{ debug = "yes" } end,
      "intuned.client: option 'debug' must be a boolean or a function(line), got string")
  end)
end)
