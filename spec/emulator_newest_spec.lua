-- intuned-emulator --api-version newest: every answer in the newest API's
-- shape (JobV2, JobListItemV2, JobRunV2, the action answers, typed errors),
-- JobInputV2 bodies only, and what both modes share: the run view under
-- /_emulator/runs/ID (no `emulator` key in API documents), 409 for a second
-- terminate, one truth per job across modes (a data dir).
-- Pinned to its modes: it does not follow $INTUNED_TEST_API_VERSION.
local cjson = require "cjson"
local emulator = require "spec.helpers.emulator"

local function decode(s)
  local ok, v = pcall(cjson.decode, s)
  if ok then return v end
  return nil
end

-- The keys of an object, sorted, as one string (exact key sets).
local function keys(t)
  local k = {}
  for name in pairs(t) do k[#k + 1] = name end
  table.sort(k)
  return table.concat(k, ",")
end

local eventually = emulator.eventually

local P = "/ws-local/projects/newest-project"

-- A JobInputV2 table.
local function input(id, extra)
  local t = { id = id, payload = { { apiName = "health/ping", parameters = { a = 1 } } }, configuration = {} }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("intuned-emulator --api-version", function()
  teardown(function() emulator.stop_all() end)

  it("takes v0.3.12, 0.3.12, newest and v0.5.2, says which in /_emulator/health, refuses others", function()
    for v, want in pairs{ ["v0.3.12"] = "v0.3.12", ["0.3.12"] = "v0.3.12", newest = "newest", ["v0.5.2"] = "newest" } do
      local e = emulator.start{ "--api-version", v }
      local h = decode(e.control("GET", "/_emulator/health").body)
      e.stop()
      assert.are.equal(want, h.api_version, v)
      assert.are.equal(want, e.api_version, v)
    end
    local bin = emulator.quote(emulator.binary())
    local out = emulator.capture(bin .. " --api-version v0.4 2>&1; echo \"rc=$?\"")
    assert.matches("rc=2", out)
    assert.matches("--api-version expects", out, 1, true)
    local help = emulator.capture(bin .. " --help")
    assert.matches("--api-version V", help, 1, true)
    assert.matches("a real account speaks the newest API today", help, 1, true)
    assert.matches("GET    /_emulator/runs/RUNID ", help, 1, true)
  end)
end)

describe("intuned-emulator in newest mode", function()
  local emu
  setup(function()
    emu = emulator.start{ "--api-version", "newest", "--time-scale", "0.001", "--api-latency-ms", "20" }
    -- newest mode: a job's auth_session must name an existing session
    for _, id in ipairs{ "as-1", "as-2" } do
      local r = emu.api("POST", P .. "/auth-sessions/create", { body = '{"id":"' .. id .. '","parameters":{}}' })
      assert(r.status == 201, r.body)
    end
  end)
  teardown(function() emulator.stop_all() end)

  local function create(id, extra)
    local r = emu.api("POST", P .. "/jobs", { body = cjson.encode(input(id, extra)) })
    assert.are.equal(201, r.status, r.body)
    assert.are.same({ id = id, message = "created" }, decode(r.body))
    return r
  end

  local function get(id)
    local r = emu.api("GET", P .. "/jobs/" .. id)
    assert.are.equal(200, r.status, r.body)
    return decode(r.body)
  end

  local function runs_of(id, query)
    local r = emu.api("GET", P .. "/jobs/" .. id .. "/runs" .. (query or ""))
    assert.are.equal(200, r.status, r.body)
    local list = decode(r.body)
    assert.are.equal("jobRuns,totalCount", keys(list))   -- always the object, with or without paging
    return list
  end

  local function finished(id)
    return eventually(function()
      local run = runs_of(id).jobRuns[1]
      return run and run.status ~= "PENDING" and run
    end, 15)
  end

  it("get job answers a JobV2", function()
    create("v2-rich-1", {
      payload = { { apiName = "a/b", parameters = { q = "x" }, requestTimeout = 30, retry = { maximumAttempts = 2 } } },
      configuration = { retry = { maximumAttempts = 4 }, maxConcurrentRequests = 3, requestTimeout = 120 },
      schedule = { intervals = { { every = "1h" } } },
      sink = { type = "webhook", url = emu.base .. "/_receiver/v2", headers = { ["X-T"] = "t" } },
      proxy = "http://proxy.example.test:8080",
      auth_session = { id = "as-1", checkAttempts = 2 },
    })
    local job = get("v2-rich-1")
    assert.are.equal("auth_session,configuration,created_at,id,last_run_time,next_run_time,payload,projectId,"
                     .. "proxy,schedule,sink,state", keys(job))
    assert.are.equal("ACTIVE", job.state)
    assert.are.same({ retry = { maximumAttempts = 4 }, maxConcurrentRequests = 3, requestTimeout = 120 }, job.configuration)
    assert.are.same({ { parameters = { q = "x" }, requestTimeout = 30, retry = { maximumAttempts = 2 }, apiName = "a/b" } },
      job.payload)
    assert.are.same({ id = "as-1", checkAttempts = 2, createAttempts = 3 }, job.auth_session)
    assert.are.equal("http://proxy.example.test:8080", job.proxy)
    assert.are.same({ type = "webhook", url = emu.base .. "/_receiver/v2", headers = { ["X-T"] = "t" }, skipOnFail = false },
      job.sink)
    assert.are.same({ intervals = { { every = "1h" } } }, job.schedule)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", job.created_at)
    assert.is_string(job.next_run_time)
    assert.are.equal(cjson.null, job.last_run_time)
    -- the smallest job: nullable parts are null, proxy (not nullable in JobV2) absent
    create("v2-small-1")
    local small = get("v2-small-1")
    assert.are.equal(cjson.null, small.schedule)
    assert.are.equal(cjson.null, small.sink)
    assert.are.equal(cjson.null, small.auth_session)
    assert.are.equal(cjson.null, small.next_run_time)
    assert.is_nil(small.proxy)
    assert.are.same({ requestTimeout = 600 }, small.configuration)
    assert.are.same({ { parameters = { a = 1 }, requestTimeout = 600, apiName = "health/ping" } }, small.payload)
  end)

  it("keeps calendar ranges as given: no step is added", function()
    create("v2-cal-1", { schedule = { calendars = { { hour = { start = 9, ["end"] = 17 }, minute = 30 } } } })
    assert.are.same({ calendars = { { hour = { start = 9, ["end"] = 17 }, minute = 30 } } }, get("v2-cal-1").schedule)
  end)

  it("refuses calendar values ScheduleV2 has no form for, on create and update", function()
    for _, cal in ipairs{ { dayOfWeek = "MON-FRI" }, { minute = "0" }, { month = 12 }, { hour = { "*" } },
                          { dayOfWeek = { start = "MONDAY", ["end"] = 5 } } } do
      local r = emu.api("POST", P .. "/jobs", { body = cjson.encode(input("v2-badcal-1", { schedule = { calendars = { cal } } })) })
      assert.are.equal(400, r.status, r.body)
      local e = decode(r.body)
      -- refused by the core's newest input model or by the emulator's ScheduleV2 check
      assert.matches("^schedule%.calendars%[1%]%.%a+", e.details.field)
      assert.matches("newest API", e.details.issue, 1, true)
    end
    create("v2-okcal-1", { schedule = { calendars = { { dayOfWeek = { "MONDAY", { start = "FRIDAY", ["end"] = "SATURDAY" } },
                                                      second = { start = 0, step = 10, ["end"] = 50 }, month = "*" } } } })
    local r = emu.api("PUT", P .. "/jobs/v2-okcal-1", { body = cjson.encode{
      payload = { { apiName = "a", parameters = {} } }, configuration = {}, schedule = { calendars = { { month = "JAN" } } } } })
    assert.are.equal(400, r.status, r.body)
    assert.are.equal("schedule.calendars[1].month", decode(r.body).details.field)
    assert.are.equal("MONDAY", get("v2-okcal-1").schedule.calendars[1].dayOfWeek[1])
  end)

  it("list jobs answers JobListItemV2 items", function()
    create("v2-list-1", { proxy = "http://p.example.test", schedule = { intervals = { { every = "1d" } } } })
    create("v2-list-2")
    assert.are.same({ message = "Paused" }, decode(emu.api("POST", P .. "/jobs/v2-list-2/pause").body))
    local list = decode(emu.api("GET", P .. "/jobs").body)
    local by = {}
    for _, j in ipairs(list) do by[j.id] = j end
    local a, b = by["v2-list-1"], by["v2-list-2"]
    assert.are.equal("auth_session,configuration,created_at,id,last_run_time,next_run_time,payload,project_id,"
                     .. "proxy,reason,schedule,schedule_id,sink,state,workspace_id", keys(a))
    assert.are.equal("ws-local", a.workspace_id)
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", a.project_id)
    assert.are.same({ version = "v1", url = "http://p.example.test" }, a.proxy)
    assert.are.equal(cjson.null, a.reason)
    assert.is_string(a.schedule_id)
    assert.are.equal("ACTIVE", a.state)
    assert.are.equal("PAUSED", b.state)
    assert.are.same({ type = "paused", message = "Paused via API" }, b.reason)
    assert.are.equal(cjson.null, b.proxy)
    assert.are.equal(cjson.null, b.schedule_id)
    assert.are.same({ message = "Resumed" }, decode(emu.api("POST", P .. "/jobs/v2-list-2/resume").body))
    assert.are.equal("ACTIVE", get("v2-list-2").state)
  end)

  it("update answers {id, message} and takes a JobUpdateInput", function()
    create("v2-upd-1")
    local r = emu.api("PUT", P .. "/jobs/v2-upd-1", { body = cjson.encode{
      payload = { { apiName = "new/api", parameters = {} } }, configuration = { maxConcurrentRequests = 2 },
      proxy = "http://u.example.test" } })
    assert.are.equal(200, r.status, r.body)
    assert.are.same({ id = "v2-upd-1", message = "updated job successfully" }, decode(r.body))
    local job = get("v2-upd-1")
    assert.are.equal("new/api", job.payload[1].apiName)
    assert.are.equal("http://u.example.test", job.proxy)
    assert.is_nil(job.configuration.runMode)
  end)

  it("runs are JobRunV2, the list always {jobRuns, totalCount}, get one {jobRun, results}", function()
    create("v2-run-1", { payload = { { apiName = "ok/one", parameters = {} }, { apiName = "fail/two", parameters = {} } },
                         configuration = { retry = { maximumAttempts = 1 }, maxConcurrentRequests = 1 },
                         auth_session = { id = "as-2" }, proxy = "http://r.example.test" })
    local r = emu.api("POST", P .. "/jobs/v2-run-1/trigger")
    assert.are.equal(200, r.status)
    local t = decode(r.body)
    assert.are.equal("jobRunId,message", keys(t))   -- no id
    local running = runs_of("v2-run-1").jobRuns[1]
    assert.are.equal(t.jobRunId, running.id)
    if running.status == "PENDING" then assert.are.equal(cjson.null, running.end_time) end
    local run = finished("v2-run-1")
    assert.are.equal("created_at,end_time,error,failed_runs,id,job_configuration_snapshot,job_id,payloads,project_id,"
                     .. "reason,start_time,status,successful_runs,type,updated_at,workspace_id", keys(run))
    assert.are.equal("COMPLETED", run.status)
    assert.are.equal("MANUAL", run.type)
    assert.are.equal("v2-run-1", run.job_id)
    assert.are.equal("ws-local", run.workspace_id)
    assert.are.equal(2, run.payloads)
    assert.are.equal(1, run.successful_runs)
    assert.are.equal(1, run.failed_runs)
    assert.is_string(run.end_time)
    assert.are.equal(cjson.null, run.error)
    assert.are.equal(cjson.null, run.reason)
    assert.are.same({ configuration = { retry = { maximumAttempts = 1 }, maxConcurrentRequests = 1, requestTimeout = 600 },
                      sink = cjson.null, auth_session = { id = "as-2", checkAttempts = 3, createAttempts = 3 },
                      proxy = { version = "v1", url = "http://r.example.test" } }, run.job_configuration_snapshot)
    -- paged, and get one
    local page = runs_of("v2-run-1", "?pageNumber=0&pageSize=1&sortBy=start_time,desc")
    assert.are.equal(1, page.totalCount)
    assert.are.equal(run.id, page.jobRuns[1].id)
    local d = decode(emu.api("GET", P .. "/jobs/v2-run-1/runs/" .. run.id).body)
    assert.are.equal("jobRun,results", keys(d))
    assert.are.same(run, d.jobRun)
    assert.are.equal("json", d.results.format)
    assert.is_string(d.results.signed_url)
    -- the emulator's own view is a control endpoint
    local view = emu.run_view(run.id)
    assert.are.equal(2, #view.payloads)
    assert.are.equal("failed", view.payloads[2].state)
  end)

  it("a run whose payloads all fail is FAILURE; terminate answers {message}, then 409", function()
    create("v2-fail-1", { payload = { { apiName = "fail-a", parameters = {} } }, configuration = { retry = { maximumAttempts = 1 } } })
    emu.api("POST", P .. "/jobs/v2-fail-1/trigger")
    assert.are.equal("FAILURE", finished("v2-fail-1").status)

    local payload = {}
    for i = 1, 20 do payload[i] = { apiName = "slow/" .. i, parameters = {} } end
    create("v2-term-1", { payload = payload, configuration = { maxConcurrentRequests = 1 } })
    local id = decode(emu.api("POST", P .. "/jobs/v2-term-1/trigger").body).jobRunId
    local r = emu.api("POST", P .. "/jobs/v2-term-1/runs/" .. id .. "/terminate")
    assert.are.equal(200, r.status, r.body)
    assert.are.equal("message", keys(decode(r.body)))
    local run = runs_of("v2-term-1").jobRuns[1]
    assert.are.equal("TERMINATED", run.status)
    assert.are.equal("terminated", run.reason.type)
    assert.is_string(run.reason.message)
    r = emu.api("POST", P .. "/jobs/v2-term-1/runs/" .. id .. "/terminate")
    assert.are.equal(409, r.status)
    assert.matches("already finished", decode(r.body).message)
  end)

  it("errors 400, 401 and 404 are typed", function()
    local want = { [400] = "bad-request", [401] = "unauthorized", [404] = "not-found" }
    local got = {
      [400] = emu.api("POST", P .. "/jobs", { body = '{"id":"x-bad-1","payload":[],"configuration":{}}' }),
      [401] = emu.api("GET", P .. "/jobs", { key = "wrong" }),
      [404] = emu.api("GET", P .. "/jobs/no-such-job"),
    }
    for status, r in pairs(got) do
      assert.are.equal(status, r.status, r.body)
      local e = decode(r.body)
      assert.are.equal(want[status], e.code)
      assert.are.equal("user", e.category)
      assert.are.equal(false, e.retirable)
      assert.is_string(e.message)
      assert.matches("^emu%-", e.correlationId)
      assert.are.equal(status == 400 and "category,code,correlationId,details,message,retirable"
                       or "category,code,correlationId,message,retirable", keys(e))
    end
    -- the keys in the newest API's table order
    assert.matches('^{"code":"not%-found","category":"user","message":', got[404].body)
  end)

  it("refuses v0.3.12 bodies, naming the field and --api-version v0.3.12", function()
    local cases = {
      { { id = "old-1", payload = { { apiName = "a", parameters = {} } }, configuration = { runMode = "Order-Irrelevant" } },
        "configuration.runMode" },
      { { id = "old-2", payload = { { apiName = "a", parameters = {} } },
          configuration = { retry = { maximumAttempts = 2, initialInterval = "1s" } } }, "configuration.retry.initialInterval" },
      { { id = "old-3", payload = { { apiName = "a", parameters = {} } }, configuration = {}, authSession = { id = "s" } },
        "authSession" },
      { { id = "old-4", payload = { { apiName = "a" } }, configuration = {} }, "payload[1].parameters" },
    }
    for _, c in ipairs(cases) do
      local r = emu.api("POST", P .. "/jobs", { body = cjson.encode(c[1]) })
      assert.are.equal(400, r.status, r.body)
      local e = decode(r.body)
      assert.are.equal(c[2], e.details.field, r.body)
      assert.matches("start it with --api-version v0.3.12", e.details.issue, 1, true)
      assert.are.equal(404, emu.api("GET", P .. "/jobs/" .. c[1].id).status)
    end
    -- a body valid in neither version gets no such hint
    local r = emu.api("POST", P .. "/jobs", { body = '{"id":"old-5","payload":[{"parameters":{}}],"configuration":{}}' })
    assert.are.equal(400, r.status)
    assert.is_nil(decode(r.body).details.issue:find("--api-version", 1, true))
  end)
end)

describe("intuned-emulator in v0.3.12 mode", function()
  teardown(function() emulator.stop_all() end)

  local function v0312_input(id)
    return cjson.encode{ id = id, payload = { { apiName = "a/b", parameters = { 1, 2 } }, { apiName = "fail-c" } },
                         configuration = { runMode = "Order-Irrelevant",
                                           retry = { maximumAttempts = 1, initialInterval = "2s" } },
                         authSession = { id = "as-old" } }
  end

  it("API run documents carry no emulator key; terminate twice answers 409", function()
    local e = emulator.start{ "--api-version", "v0.3.12", "--time-scale", "0.001", "--api-latency-ms", "100" }
    local pp = "/ws-local/projects/old"
    assert.are.equal(201, e.api("POST", pp .. "/jobs", { body = v0312_input("old-run-1") }).status)
    local id = decode(e.api("POST", pp .. "/jobs/old-run-1/trigger").body).jobRunId
    local r = e.api("POST", pp .. "/jobs/old-run-1/runs/" .. id .. "/terminate")
    assert.are.same({ message = "Job run terminated" }, decode(r.body))
    r = e.api("POST", pp .. "/jobs/old-run-1/runs/" .. id .. "/terminate")
    assert.are.equal(409, r.status)
    local list = decode(e.api("GET", pp .. "/jobs/old-run-1/runs").body)
    local page = decode(e.api("GET", pp .. "/jobs/old-run-1/runs?pageSize=5").body)
    local one = decode(e.api("GET", pp .. "/jobs/old-run-1/runs/" .. id).body)
    local view = e.run_view(id)
    local missing = e.control("GET", "/_emulator/runs/run-nope").status
    e.stop()
    assert.are.equal("TERMINATED", list[1].status)
    for _, doc in ipairs{ list[1], page.jobRuns[1], one.jobRun } do
      assert.is_nil(doc.emulator)
      assert.is_table(doc.summary)
      assert.are.equal("old-run-1", doc.jobId)
    end
    assert.are.equal(id, view.id)
    assert.are.equal("TERMINATED", view.status)
    assert.are.equal(2, #view.payloads)
    assert.are.same({ delivered = 0, failed = 0, skipped = 0, attempts = 0 }, view.deliveries)
    assert.are.equal(404, missing)
  end)

  it("one truth per job: a data dir written in v0.3.12 mode is served in the newest shapes", function()
    local dir = emulator.tmpdir()
    finally(function() emulator.run("rm -rf " .. emulator.quote(dir)) end)
    local pp = "/ws-local/projects/both"
    local e = emulator.start{ "--api-version", "v0.3.12", "--data-dir", dir }
    assert.are.equal(201, e.api("POST", pp .. "/jobs", { body = v0312_input("both-1") }).status)
    local old = decode(e.api("GET", pp .. "/jobs/both-1").body)
    e.stop()
    e = emulator.start{ "--api-version", "newest", "--data-dir", dir }
    local job = decode(e.api("GET", pp .. "/jobs/both-1").body)
    local list = decode(e.api("GET", pp .. "/jobs").body)
    e.stop()
    e = emulator.start{ "--api-version", "v0.3.12", "--data-dir", dir }
    local again = e.api("GET", pp .. "/jobs/both-1").body
    e.stop()
    assert.are.same(old, decode(again))
    assert.are.same({ status = "ACTIVE" }, old.state)
    assert.are.equal(2000, old.configuration.retry.initialInterval)
    assert.are.equal("ACTIVE", job.state)
    assert.are.same({ retry = { maximumAttempts = 1 }, requestTimeout = 600 }, job.configuration)
    assert.are.same({ id = "as-old", checkAttempts = 3, createAttempts = 3 }, job.auth_session)
    assert.is_nil(job.authSession)
    -- array parameters have no newest form: an object keyed by position
    assert.are.same({ ["0"] = 1, ["1"] = 2 }, job.payload[1].parameters)
    assert.are.same({}, job.payload[2].parameters)
    assert.are.equal(old.projectId, list[1].project_id)
  end)
end)
