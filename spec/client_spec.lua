-- intuned.client against a real intuned-emulator (libcurl transport):
-- every operation, every error kind, retries under injected faults with
-- nothing duplicated, timeouts and the deadline, batches, hooks, secrets.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"

local KEY = "test-key"
local WS = "ws-local"

local tmpname = os.tmpname()

-- Control endpoints of the emulator, through the curl command line (not
-- through the code under test).
local function http(method, url, body)
  local data = ""
  if body then
    local f = assert(io.open(tmpname, "wb"))
    f:write(type(body) == "string" and body or intuned.encode_json(body))
    f:close()
    data = "-H 'Content-Type: application/json' --data-binary @" .. tmpname
  end
  local p = assert(io.popen(("curl -s -X %s %s -w '\\n%%{http_code}' '%s'"):format(method, data, url)))
  local out = p:read("*a")
  p:close()
  local text, code = out:match("^(.*)\n(%d+)$")
  return text, tonumber(code)
end

local function now()
  -- wall clock with sub-second precision, without luasocket
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*a"))
  p:close()
  return t
end

local function input(id, extra)
  local t = {
    id = id,
    payload = { { apiName = "products/list", parameters = { page = 1 } } },
    configuration = { runMode = "Order-Irrelevant" },
  }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("intuned.client (libcurl) against the emulator", function()
  local emu, origin

  -- emulator statistics and faults: spec/helpers/emulator.lua
  local function stats() return emu.stats() end
  local function api_requests() return emu.api_requests() end
  local function fault(spec) emu.fault(spec) end

  local function new_client(opts)
    -- the emulator's API version ($INTUNED_TEST_API_VERSION): a newest one takes newest create bodies
    local o = { api_key = KEY, workspace_id = WS, server_url = emu.url, api_version = emu.api_version,
                retry = { initial_delay = 0.01, max_delay = 0.2 } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return intuned.client(o)
  end

  local seq = 0
  local function fresh_id(prefix)
    seq = seq + 1
    return ("%s-%d-%d"):format(prefix or "job", os.time() % 100000, seq)
  end

  setup(function()
    emu = emulator.start{}
    origin = emu.url:match("^(https?://[^/]+)")
  end)

  teardown(function()
    if emu then emu.stop(emu) end
    os.remove(tmpname)
  end)

  after_each(function()
    http("DELETE", origin .. "/_emulator/faults")
  end)

  describe("operations", function()
    local client, project = nil, "ops"
    before_each(function() client = new_client() end)

    it("create, get, list, pause, resume, trigger, runs, terminate, update, delete", function()
      local id = fresh_id("life")
      local created = assert(client.jobs:create(project, input(id)))
      assert.is_true(intuned.CreateJob.is(created))
      assert.equals(id, created.id)
      assert.equals("created", created.message)

      local job = assert(client.jobs:get(project, id))
      assert.is_true(intuned.Job.is(job))
      assert.equals(id, job.id)
      assert.equals("products/list", job.payload[1].apiName)

      local list = assert(client.jobs:list(project))
      local found = false
      for _, j in ipairs(list) do
        assert.is_true(intuned.Job.is(j))
        if j.id == id then found = true end
      end
      assert.is_true(found)

      local paused = assert(client.jobs:pause(project, id))
      assert.is_true(intuned.PauseJob.is(paused))
      assert.equals("PAUSED", assert(client.jobs:get(project, id)).state.status)
      local resumed = assert(client.jobs:resume(project, id))
      assert.is_true(intuned.ResumeJob.is(resumed))
      assert.equals("ACTIVE", assert(client.jobs:get(project, id)).state.status)

      local trig = assert(client.jobs:trigger(project, id))
      assert.is_true(intuned.TriggerJob.is(trig))
      local runs = assert(client.jobs.runs:list(project, id))
      assert.equals(1, #runs)
      assert.is_true(intuned.JobRun.is(runs[1]))
      assert.equals("MANUAL", runs[1].type)

      local detail = assert(client.jobs.runs:get(project, id, runs[1].id))
      assert.is_true(intuned.JobRunDetail.is(detail))
      assert.equals(runs[1].id, detail.jobRun.id)

      local term = assert(client.jobs.runs:terminate(project, id, runs[1].id))
      assert.is_true(intuned.TerminateJobRun.is(term))

      local upd = assert(client.jobs:update(project, id, {
        payload = { { apiName = "products/detail", parameters = { sku = "A" } } },
        configuration = { maxConcurrentRequests = 2 },
      }))
      assert.is_true(intuned.UpdateJob.is(upd))
      assert.equals("products/detail", assert(client.jobs:get(project, id)).payload[1].apiName)

      assert.is_true(client.jobs:delete(project, id))
      local gone, err = client.jobs:get(project, id)
      assert.is_nil(gone)
      assert.equals("not_found", err.kind)
    end)

    it("accepts a JobInput object as well as a table", function()
      local id = fresh_id("obj")
      -- a newest client sends JobInputNewest objects (the newest API's create body)
      local obj = emu.newest and assert(intuned.JobInputNewest.new(require("intuned.convert").create_body_newest(input(id))))
        or assert(intuned.JobInput.new(input(id)))
      assert.equals(id, assert(client.jobs:create(project, obj)).id)
      assert.equals(id, assert(client.jobs:get(project, id)).id)
    end)
  end)

  describe("errors", function()
    local client, project = nil, "errs"
    before_each(function() client = new_client() end)

    it("validation: nothing is sent", function()
      local before = api_requests()
      local res, err = client.jobs:create(project, { id = fresh_id(), payload = { { parameters = {} } },
                                                     configuration = { runMode = "Order-Irrelevant" } })
      assert.is_nil(res)
      assert.is_true(intuned.is_error(err))
      assert.equals("validation", err.kind)
      assert.equals("payload[1].apiName", err.path)
      assert.equals(before, api_requests())
    end)

    it("invalid_input (400) keeps the server's message and details", function()
      fault{ status = 400, count = 1, match = "/projects/errs/jobs", method = "POST" }
      local _, err = client.jobs:create(project, input(fresh_id()))
      assert.equals("invalid_input", err.kind)
      assert.equals(400, err.status)
      assert.is_false(err.retryable)
      assert.matches("^invalid_input %(400%)", tostring(err))
    end)

    it("unauthorized (401), without the key in the error", function()
      local bad = new_client{ api_key = "wrong-key-123456" }
      local _, err = bad.jobs:list(project)
      assert.equals("unauthorized", err.kind)
      assert.equals(401, err.status)
      assert.is_nil(tostring(err):find("wrong-key-123456", 1, true))
    end)

    it("not_found (404)", function()
      local _, err = client.jobs:get(project, "no-such-job")
      assert.equals("not_found", err.kind)
      assert.equals(404, err.status)
    end)

    it("conflict (409) on a second create", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      local _, err = client.jobs:create(project, input(id))
      assert.equals("conflict", err.kind)
      assert.equals(409, err.status)
      assert.equals(1, err.attempts)
    end)

    it("rate_limited (429) once retries are used up", function()
      fault{ status = 429, count = 10, match = "/projects/errs/jobs", method = "GET", retry_after = "0" }
      local _, err = new_client{ retry = { max_attempts = 2, initial_delay = 0.01 } }.jobs:list(project)
      assert.equals("rate_limited", err.kind)
      assert.equals(429, err.status)
      assert.equals(2, err.attempts)
    end)

    it("server (5xx): 500 is never retried", function()
      fault{ status = 500, count = 1, match = "/projects/errs/jobs", method = "GET" }
      local _, err = client.jobs:list(project)
      assert.equals("server", err.kind)
      assert.equals(500, err.status)
      assert.equals(1, err.attempts)
    end)

    it("api: any other status", function()
      fault{ status = 418, count = 1, match = "/projects/errs/jobs", method = "GET" }
      local _, err = client.jobs:list(project)
      assert.equals("api", err.kind)
      assert.equals(418, err.status)
    end)

    it("timeout: an answer slower than the per-attempt timeout", function()
      fault{ latency_ms = 1500, count = 1, match = "/projects/errs/jobs", method = "GET" }
      local c = new_client{ timeout = 0.3, retry = false }
      local t0 = now()
      local _, err = c.jobs:list(project)
      assert.equals("timeout", err.kind)
      assert.is_true(now() - t0 < 1.2)
    end)

    it("connection: nothing listening", function()
      local c = new_client{ server_url = "http://127.0.0.1:1/api/v1/workspace", retry = false }
      local _, err = c.jobs:list(project)
      assert.equals("connection", err.kind)
      assert.is_true(err.retryable)
    end)

    it("decode: a body that is not JSON", function()
      fault{ kind = "malformed", count = 1, match = "/projects/errs/jobs", method = "GET" }
      local _, err = client.jobs:list(project)
      assert.equals("decode", err.kind)
      assert.equals(200, err.status)
    end)

    it("connection: a body cut short (truncated), retried when idempotent", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ kind = "truncated", count = 1, match = "/projects/errs/jobs/" .. id, method = "GET" }
      local _, err = new_client{ retry = false }.jobs:get(project, id)
      assert.equals("connection", err.kind)
      fault{ kind = "truncated", count = 1, match = "/projects/errs/jobs/" .. id, method = "GET" }
      assert.equals(id, assert(client.jobs:get(project, id)).id)
    end)

    it("decode: a success with another content type", function()
      fault{ kind = "content_type", count = 1, match = "/projects/errs/jobs", method = "GET" }
      local _, err = client.jobs:list(project)
      assert.equals("decode", err.kind)
    end)

    it("usage: transport 'ngx' outside nginx", function()
      local _, err = new_client{ transport = "ngx" }.jobs:list(project)
      assert.equals("usage", err.kind)
      assert.matches("nginx", tostring(err))
    end)
  end)

  describe("retries", function()
    local client, project = nil, "retry"
    before_each(function() client = new_client() end)

    local function runs_of(id)
      return #assert(client.jobs.runs:list(project, id))
    end

    it("trigger under 429 is retried and runs once", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ status = 429, count = 2, match = "/jobs/" .. id .. "/trigger", retry_after = "0" }
      local events = {}
      local c = new_client{ hook = function(ev) events[#events + 1] = ev.event end }
      assert(c.jobs:trigger(project, id))
      local requests = 0
      for _, e in ipairs(events) do if e == "request" then requests = requests + 1 end end
      assert.equals(3, requests)
      assert.equals(1, runs_of(id))
    end)

    it("trigger under 503 without Retry-After is not retried (nothing duplicated)", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ status = 503, count = 1, match = "/jobs/" .. id .. "/trigger" }
      local _, err = client.jobs:trigger(project, id)
      assert.equals("server", err.kind)
      assert.equals(1, err.attempts)
      assert.equals(0, runs_of(id))
    end)

    it("trigger on a dropped connection is not re-sent", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ kind = "drop", count = 1, match = "/jobs/" .. id .. "/trigger" }
      local _, err = client.jobs:trigger(project, id)
      assert.equals("connection", err.kind)
      assert.equals(1, err.attempts)
      assert.is_true(runs_of(id) <= 1)
    end)

    it("get under dropped connections and 502/503/504 succeeds", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ kind = "drop", count = 1, match = "/jobs/" .. id, method = "GET" }
      assert.equals(id, assert(client.jobs:get(project, id)).id)
      for _, st in ipairs{ 502, 503, 504 } do
        fault{ status = st, count = 2, match = "/jobs/" .. id, method = "GET" }
        assert.equals(id, assert(client.jobs:get(project, id)).id)
      end
    end)

    it("create under 429 is retried and creates one job", function()
      local id = fresh_id()
      local creates = stats().creates
      fault{ status = 429, count = 2, match = "/projects/retry/jobs", method = "POST", retry_after = "0" }
      assert.equals(id, assert(client.jobs:create(project, input(id))).id)
      assert.equals(creates + 1, stats().creates)
      local n = 0
      for _, j in ipairs(assert(client.jobs:list(project))) do if j.id == id then n = n + 1 end end
      assert.equals(1, n)
    end)

    it("a retried create that meets 409 for the same job reports success (reconciled)", function()
      local id = fresh_id()
      -- the job exists as if an earlier attempt had created it ...
      assert(client.jobs:create(project, input(id)))
      -- ... and this call's first attempt reached the server (503 + Retry-After)
      fault{ status = 503, count = 1, retry_after = "0", match = "/projects/retry/jobs", method = "POST" }
      local creates = stats().creates
      local res, err = client.jobs:create(project, input(id))
      assert.is_nil(err)
      assert.equals(id, res.id)
      assert.equals("created", res.message)
      assert.equals(creates, stats().creates)
    end)

    it("a retried create that meets 409 for a different job is a conflict", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id, { payload = { { apiName = "other/api" } } })))
      fault{ status = 503, count = 1, retry_after = "0", match = "/projects/retry/jobs", method = "POST" }
      local _, err = client.jobs:create(project, input(id))
      assert.equals("conflict", err.kind)
    end)

    it("honours Retry-After", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ status = 429, count = 1, retry_after = "1", match = "/jobs/" .. id, method = "GET" }
      local t0 = now()
      assert(client.jobs:get(project, id))
      local dt = now() - t0
      assert.is_true(dt >= 0.95, "waited " .. dt)
      assert.is_true(dt < 3, "waited " .. dt)
    end)

    it("retry = false turns retries off (client-wide and per call)", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ status = 503, count = 1, match = "/jobs/" .. id, method = "GET" }
      local _, err = new_client{ retry = false }.jobs:get(project, id)
      assert.equals("server", err.kind)
      assert.equals(1, err.attempts)
      fault{ status = 503, count = 1, match = "/jobs/" .. id, method = "GET" }
      local _, err2 = client.jobs:get(project, id, { retry = false })
      assert.equals(503, err2.status)
      assert.equals(1, err2.attempts)
      assert(client.jobs:get(project, id)) -- the faults are used up
    end)

    it("the deadline bounds the whole call, retries included", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ latency_ms = 1000, count = 10, match = "/jobs/" .. id, method = "GET" }
      local c = new_client{ timeout = 0.3, deadline = 0.8 }
      local t0 = now()
      local _, err = c.jobs:get(project, id)
      local dt = now() - t0
      assert.equals("timeout", err.kind)
      assert.is_true(err.attempts >= 2, "attempts " .. tostring(err.attempts))
      assert.is_true(dt < 2, "took " .. dt)   -- without the deadline: 10 s
    end)

    it("a Retry-After beyond the deadline is not waited for", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      fault{ status = 429, count = 1, retry_after = "30", match = "/jobs/" .. id, method = "GET" }
      local t0 = now()
      local _, err = new_client{ deadline = 2 }.jobs:get(project, id)
      assert.equals("rate_limited", err.kind)
      assert.is_true(now() - t0 < 1.5)
    end)
  end)

  describe("batch", function()
    local client, project = nil, "batch"
    before_each(function() client = new_client() end)

    it("200 triggers with 32 in flight, results in order, each run once", function()
      local id = fresh_id()
      assert(client.jobs:create(project, input(id)))
      local calls = {}
      for i = 1, 200 do calls[i] = { op = "jobs:trigger", project = project, job_id = id } end
      local res = client:batch(calls, { max_in_flight = 32 })
      assert.equals(200, #res)
      for i = 1, 200 do
        assert.is_false(intuned.is_error(res[i]), tostring(res[i]))
        assert.is_true(intuned.TriggerJob.is(res[i]))
      end
      assert.equals(200, #assert(client.jobs.runs:list(project, id)))
    end)

    it("mixes results and errors, in the order of the calls", function()
      local ids = {}
      for i = 1, 3 do
        ids[i] = fresh_id("b" .. i)
        assert(client.jobs:create(project, input(ids[i])))
      end
      local calls = {}
      for i = 1, 60 do
        if i % 10 == 0 then
          calls[i] = { op = "jobs:get", project = project, job_id = "missing-" .. i }
        else
          calls[i] = { op = "jobs:get", args = { project = project, job_id = ids[i % 3 + 1] } }
        end
      end
      local res = client:batch(calls, { max_in_flight = 8 })
      for i = 1, 60 do
        if i % 10 == 0 then
          assert.is_true(intuned.is_error(res[i]))
          assert.equals("not_found", res[i].kind)
        else
          assert.equals(ids[i % 3 + 1], res[i].id)
        end
      end
    end)

    it("takes every entry shape in one batch and leaves the entries as they were", function()
      local id = fresh_id("shapes")
      assert(client.jobs:create(project, input(id)))
      local calls = {
        { op = "jobs:get", project = project, job_id = id },                -- its own arguments
        { op = "jobs:get", projectName = project, jobId = id },             -- by their aliases
        { op = "jobs:get", args = { project = project, job_id = id } },
        { op = "jobs:get", project = project, job_id = id, timeout = 5 },   -- with a call option
        { op = "jobs.runs:list", project = project, job_id = id, pageSize = 5, page_number = 1 },
        { op = "jobs:get", project = project, job_id = "missing-shape" },
      }
      local copies = {}
      for i, c in ipairs(calls) do
        copies[i] = {}
        for k, v in pairs(c) do copies[i][k] = type(v) == "table" and { project = v.project, job_id = v.job_id } or v end
      end
      local res = client:batch(calls)
      for i = 1, 4 do assert.equals(id, res[i].id, tostring(res[i])) end
      assert.is_false(intuned.is_error(res[5]), tostring(res[5]))
      assert.equals("not_found", res[6].kind)
      for i, c in ipairs(calls) do
        local n = 0
        for k, v in pairs(c) do
          n = n + 1
          if type(v) == "table" then assert.same(copies[i][k], v) else assert.equals(copies[i][k], v) end
        end
        local m = 0
        for _ in pairs(copies[i]) do m = m + 1 end
        assert.equals(m, n, "entry " .. i .. " changed")
      end
    end)

    it("validation errors stay in their slot; nothing sent for them", function()
      local res = client:batch({
        { op = "jobs:create", project = project, input = { id = fresh_id(), payload = {} } },
        { op = "jobs:list", project = project },
      })
      assert.is_true(intuned.is_error(res[1]))
      assert.equals("validation", res[1].kind)
      assert.is_false(intuned.is_error(res[2]))
    end)

    it("rejects misuse", function()
      assert.has_error(function() client:batch({ { op = "jobs:nope" } }) end,
        "bad argument #1 to 'batch' (calls[1].op: unknown operation 'jobs:nope')")
      assert.has_error(function() client:batch("x") end, "bad argument #1 to 'batch' (table expected, got string)")
      assert.has_error(function() client:batch({}, { max_in_flight = 0 }) end)
    end)
  end)

  describe("secrets and misuse", function()
    it("hooks see redacted headers and bodies", function()
      local events = {}
      local c = new_client{ hook = function(ev) events[#events + 1] = ev end, headers = { ["X-Trace"] = "t1" } }
      local id = fresh_id()
      assert(c.jobs:create("hooks", input(id, {
        sink = { type = "s3", region = "us-east-1", bucket = "b", accessKeyId = "AKIA1",
                 secretAccessKey = "very-secret-s3-key" },
      })))
      assert(c.jobs:get("hooks", id))
      assert.is_true(#events >= 4)
      local seen = {}
      for _, ev in ipairs(events) do
        seen[ev.event] = true
        assert.equals("***", ev.headers["x-api-key"])
        local blob = intuned.encode_json{ ev.method, ev.url, ev.path, ev.body or "", ev.headers }
        assert.is_nil(blob:find(KEY, 1, true))
        assert.is_nil(blob:find("very-secret-s3-key", 1, true))
      end
      assert.is_true(seen.request and seen.response)
      assert.equals(201, events[2].status)
    end)

    it("tostring(client) shows no key; the key is not a field", function()
      local c = new_client{ api_key = "sekrit-api-key-777" }
      local s = tostring(c)
      assert.matches("^intuned.Client", s)
      assert.is_nil(s:find("sekrit-api-key-777", 1, true))
      for k, v in pairs(c) do
        assert.is_nil(tostring(k):find("sekrit", 1, true))
        assert.is_nil(tostring(v):find("sekrit", 1, true))
      end
      assert.is_nil(c.api_key)
    end)

    it("raises on bad arguments with luaL-style messages", function()
      local c = new_client()
      assert.has_error(function() c.jobs:get(nil, "x") end, "bad argument #1 to 'get' (string expected, got nil)")
      assert.has_error(function() c.jobs:get("p", 42) end, "bad argument #2 to 'get' (string expected, got number)")
      assert.has_error(function() c.jobs:create("p", "x") end,
        "bad argument #2 to 'create' (table or intuned.JobInput expected, got string)")
      assert.has_error(function() c.jobs.runs:terminate("p", "j") end,
        "bad argument #3 to 'terminate' (string expected, got nil)")
      assert.has_error(function() c.jobs.get("p", "j") end)
    end)

    it("raises on a missing key or workspace and on bad options", function()
      local env = os.getenv("INTUNED_API_KEY")
      if not env then
        assert.has_error(function() intuned.client{ workspace_id = WS } end,
          "intuned.client: no API key: pass api_key or set INTUNED_API_KEY")
      end
      if not os.getenv("INTUNED_WORKSPACE_ID") then
        assert.has_error(function() intuned.client{ api_key = KEY } end,
          "intuned.client: no workspace id: pass workspace_id or set INTUNED_WORKSPACE_ID")
      end
      assert.has_error(function() intuned.client{ api_key = KEY, workspace_id = WS, transport = "x" } end)
      assert.has_error(function() intuned.client{ api_key = KEY, workspace_id = WS, timeout = -1 } end)
      assert.has_error(function() intuned.client{ api_key = KEY, workspace_id = WS, server_url = "ftp://x" } end)
      assert.has_error(function() intuned.client{ api_key = KEY, workspace_id = WS, retry = { max_attempts = 0 } } end)
      assert.has_error(function() intuned.client{ api_key = KEY, workspace_id = WS, hook = 1 } end)
    end)

    it("reads the key, workspace and server URL from the environment", function()
      local i = -1
      while arg and arg[i - 1] do i = i - 1 end
      local lua = arg and arg[i] or "lua"
      local cmd = ("INTUNED_API_KEY=%s INTUNED_WORKSPACE_ID=%s INTUNED_SERVER_URL='%s' %s -e "
        .. "'local c = require(\"intuned\").client(); local l, e = c.jobs:list(\"env\"); "
        .. "io.write(tostring(c), \" \", l and \"ok\" or tostring(e))'"):format(KEY, WS, emu.url, lua)
      local p = io.popen(cmd)
      local out = p:read("*a")
      p:close()
      assert.matches("workspace ws%-local", out)
      assert.matches(" ok$", out)
    end)
  end)
end)
