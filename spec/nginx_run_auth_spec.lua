-- The Run API and Auth Sessions inside nginx (cosockets): every operation
-- as a method and in client:batch, client.runs:run and an auth-session
-- create with { wait = true } sleeping with ngx.sleep, and a start never
-- repeated after a 500, as through libcurl.  Against the emulator in the
-- newest API's mode.
local intuned = require "intuned"
local emulator = require("spec.helpers.emulator").pinned("newest")
local nginx = require "spec.helpers.nginx"

local KEY, WS, P = "test-key", "ws-local", "nginx-run-auth"

local HTTP = [[
  server {
    listen {{LISTEN}};
    location = /all {
      content_by_lua_block {
        local intuned = require "intuned"
        local client = intuned.client{ api_version = "newest", retry = { max_attempts = 3, initial_delay = 0.01 } }
        local P = "]] .. P .. [["
        local out = {}
        local function note(name, v, err)
          if not v then out[name] = "error " .. err.kind
          elseif type(v) == "boolean" then out[name] = v
          else out[name] = v.status or #v end
        end
        local started = client.runs:start(P, { api = "products/list", parameters = { page = 1 } })
        note("start", started)
        note("result", client.runs:result(P, started.runId))
        note("run", client.runs:run(P, { api = "products/list", parameters = {} }, { timeout = 20, poll = 0.05 }))
        note("run_failed", client.runs:run(P, { api = "fail-now", parameters = {} }, { timeout = 20, poll = 0.05 }))
        local op = client.auth_sessions:create(P, { id = "ngx-login", parameters = { password = "x" } },
          { wait = { timeout = 20, poll = 0.05 } })
        note("create_wait", op)
        out.create_id = op and op.authSessionId or false
        note("get", client.auth_sessions:get(P, "ngx-login"))
        note("list", client.auth_sessions:list(P))
        local up = client.auth_sessions:update(P, "ngx-login", { parameters = { password = "y" } })
        note("update", up)
        note("update_result", client.auth_sessions:update_result(P, "ngx-login", up.operationId))
        local v = client.auth_sessions:validate(P, "ngx-login", {})
        note("validate", v)
        note("validate_result", client.auth_sessions:validate_result(P, "ngx-login", v.operationId))
        note("validate_wait", client.auth_sessions:validate(P, "ngx-login", {}, { wait = { timeout = 20, poll = 0.05 } }))
        local c = client.auth_sessions:create(P, { parameters = {} })
        note("create_result", client.auth_sessions:create_result(P, c.operationId))
        local b = client:batch{
          { op = "runs:start", project = P, input = { api = "a", parameters = {} } },
          { op = "auth_sessions:get", project = P, auth_session_id = "ngx-login" },
          { op = "runs:result", project = P, run_id = "no-such-run-000000000" },
        }
        out.batch = { b[1].status, b[2].status, intuned.is_error(b[3]) and b[3].kind or "?" }
        note("delete", client.auth_sessions:delete(P, "ngx-login"))
        out.clock_loaded = package.loaded["intuned.clock"] ~= nil
        ngx.header["Content-Type"] = "application/json"
        ngx.say(intuned.encode_json(out))
      }
    }
    location = /start500 {
      content_by_lua_block {
        local intuned = require "intuned"
        local client = intuned.client{ retry = { max_attempts = 3, initial_delay = 0.01 } }
        local res, err = client.runs:start("]] .. P .. [[", { api = "a", parameters = {} })
        ngx.say(intuned.encode_json{ ok = res ~= nil, kind = err and err.kind or false,
          attempts = err and err.attempts or 0 })
      }
    }
  }
]]

describe("Run API and Auth Sessions inside nginx", function()
  local emu, srv

  local function http(path)
    local out = nginx.capture(("curl -s --max-time 60 -w '\\n%%{http_code}' '%s%s'"):format(srv.url, path))
    local text, code = out:match("^(.-)\n?\n(%d+)$")
    if tonumber(code) ~= 200 then print(srv:log():sub(-3000)) end
    return text, tonumber(code)
  end

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "100", "--time-scale", "0.001", "--auth-op-ms", "100000" }
    srv = nginx.start{
      main = "env INTUNED_API_KEY; env INTUNED_WORKSPACE_ID; env INTUNED_SERVER_URL;",
      http = HTTP,
      env = { INTUNED_API_KEY = KEY, INTUNED_WORKSPACE_ID = WS, INTUNED_SERVER_URL = emu.url },
    }
  end)
  teardown(function()
    if srv then srv:stop() end
    emulator.stop_all()
  end)

  it("serves every operation, the waits sleeping with ngx.sleep", function()
    local text, code = http("/all")
    assert.equals(200, code)
    local d = assert(intuned.decode_json(text), text)
    assert.equals("pending", d.start)
    assert.truthy(({ pending = true, started = true, completed = true })[d.result], d.result)
    assert.equals("completed", d.run)
    assert.equals("failed", d.run_failed)
    assert.equals("done", d.create_wait)
    assert.equals("ngx-login", d.create_id)
    assert.equals("READY", d.get)
    assert.truthy(d.list >= 1)
    assert.equals("started", d.update)
    assert.is_string(d.update_result)
    assert.equals("pending", d.validate)
    assert.is_string(d.validate_result)
    assert.equals("done", d.validate_wait)
    assert.is_string(d.create_result)
    assert.same({ "pending", "READY", "not_found" }, d.batch)
    assert.equals(true, d.delete)
    assert.is_false(d.clock_loaded) -- ngx.sleep, never intuned.clock
  end)

  it("never repeats a start after a 500", function()
    emu.fault{ status = 500, count = 1, match = "/run/start", method = "POST" }
    local text, code = http("/start500")
    assert.equals(200, code)
    local d = intuned.decode_json(text)
    assert.is_false(d.ok)
    assert.equals("server", d.kind)
    assert.equals(1, d.attempts)
  end)
end)
