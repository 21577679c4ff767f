-- Secrets never leave the library, nginx transport (intuned.ngx on
-- cosockets): errors and hook events when a server echoes what it got (API
-- key, auth headers, S3 secretAccessKey, webhook header values), tostring
-- of runs whose configuration snapshot carries the job's sink, and a hook
-- that closes the client in the middle of a call.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"
local nginx = require "spec.helpers.nginx"
local echo_server = require "spec.helpers.echo"

local WS = "ws-local"
local KEY = "echo-api-key-4242"
local BEARER = "bearer-credential-9876"
local S3 = "s3-secret-AbCdEf0123"
local WH = "wh-header-secret-777"
local SECRETS = { KEY, BEARER, S3, WH }

local function leak(v) return echo_server.leak(v, SECRETS) end

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

-- Code run before each chunk: flat(v) is every string of v (keys too) and
-- its tostring, so the spec can look for secrets outside nginx.
local PRE = ([[
  local intuned = require "intuned"
  local function flat(v, out, seen)
    out, seen = out or {}, seen or {}
    if type(v) == "table" then
      if seen[v] then return out end
      seen[v] = true
      out[#out + 1] = tostring(v)
      for k, x in pairs(v) do flat(k, out, seen) flat(x, out, seen) end
    elseif v ~= nil then out[#out + 1] = tostring(v) end
    return out
  end
  local function text(v) return table.concat(flat(v), "\n") end
]]):gsub("\n%s*", " ")

describe("secrets (nginx transport)", function()
  local emu, echo, srv, tmpdir

  local function eval(code)
    local f = tmpdir .. "/chunk.lua"
    nginx.write(f, PRE .. code)
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
    tmpdir = nginx.capture("mktemp -d /tmp/itd-nginx-secrets.XXXXXX"):gsub("%s+$", "")
    emu = emulator.start{}
    echo = echo_server.start()
    srv = nginx.start{ http = HTTP }
  end)

  teardown(function()
    if srv then srv:stop() end
    echo_server.stop(echo)
    if emu then emu.stop() end
    if tmpdir then os.execute("rm -rf '" .. tmpdir .. "'") end
  end)

  local CLIENT = ([[
    local events = {}
    local c = intuned.client{ api_key = %q, workspace_id = %q, server_url = %q,
      headers = { Authorization = "Bearer " .. %q, ["X-Trace"] = "trace-1" },
      retry = { max_attempts = 2, initial_delay = 0.01, max_delay = 0.05 },
      hook = function(ev) events[#events + 1] = ev end }
    local s3 = { type = "s3", region = "us-east-1", bucket = "bkt", accessKeyId = "AKIA1", secretAccessKey = %q }
    local wh = { type = "webhook", url = "https://h.example/x", headers = { ["X-Hook"] = %q } }
    local function input(id, sink)
      return { id = id, payload = { { apiName = "a" } }, configuration = { runMode = "Order-Irrelevant" }, sink = sink }
    end
  ]])

  it("an echoed API key and auth header: not in the error's fields nor in any hook event", function()
    local r = eval(CLIENT:format(KEY, WS, echo.url, BEARER, S3, WH) .. [[
      local res, err = c.jobs:get("p", "retry-echo")
      local kinds = {}
      for i, ev in ipairs(events) do kinds[i] = ev.event end
      return { res = res ~= nil, kind = err.kind, attempts = err.attempts, err = text(err), events = text(events),
               kinds = kinds, keyed = err.details and err.details["***"], has = { body = type(err.body),
               details = type(err.details), data = type(err.data) },
               echoed = events[2] and events[2].error and events[2].error.message:find("rejected key ***", 1, true) ~= nil }
    ]])
    assert.is_false(r.res)
    assert.equals("server", r.kind)
    assert.equals(2, r.attempts)
    assert.same({ body = "string", details = "table", data = "table" }, r.has)
    assert.equals("the key as a key", r.keyed) -- the echo came back, the key as a key
    assert.is_true(r.echoed)
    assert.same({ "request", "response", "retry", "request", "response" }, r.kinds)
    assert.is_nil(leak(r.err), r.err)
    assert.is_nil(leak(r.events), r.events)
  end)

  it("S3 secretAccessKey and webhook header values echoed by a 400: scrubbed in errors and events", function()
    local r = eval(CLIENT:format(KEY, WS, echo.url, BEARER, S3, WH) .. [[
      local out = { kinds = {}, errs = {} }
      for i, sink in ipairs{ s3, wh } do
        local _, e1 = c.jobs:create("p", input("sec-job-" .. i, sink))
        local _, e2 = c.jobs:update("p", "j1", { payload = { { apiName = "a", parameters = {} } },
          configuration = { maxConcurrentRequests = 1 }, sink = sink })
        out.kinds[#out.kinds + 1] = e1.kind
        out.kinds[#out.kinds + 1] = e2.kind
        out.errs[#out.errs + 1] = text(e1)
        out.errs[#out.errs + 1] = text(e2)
      end
      local b = c:batch{ { op = "jobs:create", project = "p", input = input("sec-b1", s3) },
                         { op = "jobs:create", project = "p", input = input("sec-b2", wh) } }
      out.kinds[#out.kinds + 1] = b[1].kind
      out.kinds[#out.kinds + 1] = b[2].kind
      out.errs[#out.errs + 1] = text(b)
      out.events = text(events)
      out.nevents = #events
      return out
    ]])
    assert.same({ "invalid_input", "invalid_input", "invalid_input", "invalid_input", "invalid_input",
                  "invalid_input" }, r.kinds)
    for _, e in ipairs(r.errs) do
      assert.is_nil(leak(e), e)
      assert.truthy(e:find("rejected key ***", 1, true))
    end
    assert.equals(12, r.nevents)
    assert.is_nil(leak(r.events), r.events)
  end)

  it("runs:list (paged) and runs:get: tostring shows no secret of the snapshot's sink", function()
    local r = eval(([[
      local c = intuned.client{ api_key = "test-key", workspace_id = %q, server_url = %q }
      local out = {}
      local sinks = { { type = "s3", region = "r", bucket = "b", accessKeyId = "A", secretAccessKey = %q },
                      { type = "webhook", url = %q, headers = { ["X-Hook"] = %q } } }
      for i, sink in ipairs(sinks) do
        local id = "n" .. i
        assert(c.jobs:create("p", { id = id, payload = { { apiName = "a" } },
          configuration = { runMode = "Order-Irrelevant" }, sink = sink }))
        assert(c.jobs:trigger("p", id))
        local runs = assert(c.jobs.runs:list("p", id, { page_size = 10 }))
        local d = assert(c.jobs.runs:get("p", id, runs[1].id))
        out[#out + 1] = { shown = tostring(runs[1]) .. "\n" .. tostring(d) .. "\n" .. tostring(d.jobRun),
                          exact = runs[1]:to_json(), snap = type(runs[1].job_configuration_snapshot.sink) }
      end
      return out
    ]]):format(WS, emu.url, S3, emu.base .. "/_receiver/s", WH))
    assert.equals(2, #r)
    for i, o in ipairs(r) do
      assert.equals("table", o.snap)
      assert.is_nil(leak(o.shown), o.shown)
      assert.truthy(o.exact:find(i == 1 and S3 or WH, 1, true))
    end
  end)

  it("a hook that closes the client: the call returns its result, the other events still come", function()
    local r = eval(([[
      local c
      local seen = {}
      c = intuned.client{ api_key = "test-key", workspace_id = %q, server_url = %q, hook = function(ev)
        seen[#seen + 1] = ev.event
        c:close()
      end }
      local res, err = c.jobs:create("p", { id = "closing-1", payload = { { apiName = "a" } },
        configuration = { runMode = "Order-Irrelevant" } })
      local ok, again = pcall(c.jobs.get, c.jobs, "p", "closing-1")
      return { id = res and res.id, err = err and tostring(err), seen = seen, again_ok = ok, again = tostring(again) }
    ]]):format(WS, emu.url))
    assert.equals("closing-1", r.id, r.err)
    assert.same({ "request", "response" }, r.seen)
    assert.is_false(r.again_ok)
    assert.truthy(r.again:find("the client is closed", 1, true))
  end)

  it("left no secret in nginx's error log", function()
    local log = srv:log()
    for _, s in ipairs(SECRETS) do assert.is_nil(log:find(s, 1, true)) end
    assert.is_nil(log:find("[alert]", 1, true), log)
  end)
end)
