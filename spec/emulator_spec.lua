-- intuned-emulator (issue 3), driven over real HTTP with the curl command
-- line: every operation, error statuses, fault kinds, the run lifecycle,
-- sinks, persistence across SIGKILL and concurrency.
-- The binary comes from $INTUNED_EMULATOR (see spec/helpers/emulator.lua).
-- The API version is $INTUNED_TEST_API_VERSION's (v0.3.12 by default;
-- tools/test.sh runs this file in both): bodies are written in it and the
-- answers read in it where the versions differ (the shapes of each are
-- checked in detail by emulator_newest_spec.lua and the v0.3.12 cases here).
local cjson = require "cjson"
local emulator = require "spec.helpers.emulator"

local NEWEST = emulator.api_version() == "newest"
local FAILED = NEWEST and "FAILURE" or "FAILED"   -- the newest API renamed it

local function example(name) return emulator.read_file("spec/fixtures/examples/" .. name) end

local function decode(s)
  local ok, v = pcall(cjson.decode, s)
  if ok then return v end
  return nil
end

-- A v0.3.12 JobInput table in the newest API's form (JobInputV2): no
-- runMode, retry {maximumAttempts} only, auth_session, object parameters,
-- string header values.
local function to_newest(t)
  local n = { id = t.id, payload = {}, configuration = {}, schedule = t.schedule, sink = t.sink }
  for i, p in ipairs(t.payload or {}) do
    local params = p.parameters or {}
    if params[1] ~= nil then params = { values = params } end
    n.payload[i] = { apiName = p.apiName, parameters = params }
  end
  for k, v in pairs(t.configuration or {}) do
    if k == "retry" then n.configuration.retry = { maximumAttempts = v.maximumAttempts }
    elseif k ~= "runMode" then n.configuration[k] = v end
  end
  if t.authSession then n.auth_session = t.authSession end
  if t.sink and t.sink.headers then
    local h = {}
    for k, v in pairs(t.sink.headers) do h[k] = tostring(v) end
    n.sink = {}
    for k, v in pairs(t.sink) do n.sink[k] = v end
    n.sink.headers = h
  end
  return n
end

local function job_input(id, payload, extra)
  local t = { id = id, payload = payload or { { apiName = "health/ping" } },
              configuration = { runMode = "Order-Irrelevant" } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return cjson.encode(NEWEST and to_newest(t) or t)
end

-- Read the answers of either version.
local function state_of(job)   -- "ACTIVE" | "PAUSED"
  if type(job.state) == "string" then return job.state end
  return job.state.status
end

local function counts(run)     -- payloads that finished well / badly
  if NEWEST then
    assert.is_nil(run.summary)
    return { ok = run.successful_runs, failed = run.failed_runs }
  end
  return { ok = run.summary.success_count, failed = run.summary.failures_count }
end

local eventually = emulator.eventually

describe("intuned-emulator", function()
  local emu
  local P = "/ws-local/projects/spec-project"

  setup(function()
    emu = emulator.start{ "--time-scale", "0.001", "--api-latency-ms", "30", "--seed", "7" }
  end)
  teardown(function()
    emulator.stop_all()   -- also what a failed test started
  end)

  local function create(id, payload, extra, project)
    local r = emu.api("POST", (project or P) .. "/jobs", { body = job_input(id, payload, extra) })
    assert.are.equal(201, r.status, r.body)
    return r
  end

  local function runs(id)   -- the runs of a job (newest: the jobRuns of {jobRuns, totalCount})
    local r = emu.api("GET", P .. "/jobs/" .. id .. "/runs")
    assert.are.equal(200, r.status, r.body)
    local list = decode(r.body)
    if NEWEST then
      assert.are.equal(#list.jobRuns, list.totalCount)
      return list.jobRuns
    end
    return list
  end

  -- 1 when no finished payload's result is still to be delivered (a run
  -- ends before the webhook deliveries of its results do).
  local function deliveries_over(run)
    for _, p in ipairs(emu.run_view(run).payloads) do
      if (p.state == "completed" or p.state == "failed") and (p.delivery == "pending" or p.delivery == "delivering") then
        return false
      end
    end
    return true
  end

  local function wait_run(id, want)
    return eventually(function()
      local list = runs(id)
      local run = list[1]
      if run and run.status ~= "PENDING" and (not want or run.status == want) and deliveries_over(run) then return run end
    end, 15)
  end

  describe("startup", function()
    it("prints the machine-readable first line and documents its options", function()
      assert.matches("^http://127%.0%.0%.1:%d+/api/v1/workspace$", emu.url)
      local help = emulator.capture(emulator.quote(emulator.binary()) .. " --help")
      for _, opt in ipairs{ "--api-key", "--workspace", "--port", "--host", "--data-dir", "--seed", "--fault-status",
                            "--fault-kind", "--fault-rate", "--fault-latency-ms", "--time-scale", "--fail-api", "--api-version" } do
        assert.truthy(help:find(opt, 1, true), opt)
      end
    end)

    it("refuses unknown options", function()
      local bin = emulator.quote(emulator.binary())
      local out = emulator.capture(bin .. " --nope 1 2>&1; echo \"rc=$?\"")
      assert.matches("rc=2", out)
    end)
  end)

  describe("operations", function()
    it("create answers 201 {id, message=created} and get answers the Job", function()
      local r = emu.api("POST", P .. "/jobs", { body = example("jobinput-rich.json") })
      if NEWEST then
        -- a v0.3.12 body: refused, saying how to get an emulator that takes it
        assert.are.equal(400, r.status, r.body)
        assert.matches("--api-version v0.3.12", decode(r.body).details.issue, 1, true)
        create("fleet-telemetry-sweep", { { apiName = "a/b" }, { apiName = "c/d" }, { apiName = "e/f" } },
          { configuration = { retry = { maximumAttempts = 5 } }, schedule = { intervals = { { every = "1h" } } },
            sink = { type = "webhook", url = emu.base .. "/_receiver/rich" } })
        local job = decode(emu.api("GET", P .. "/jobs/fleet-telemetry-sweep").body)
        assert.are.equal("ACTIVE", job.state)
        assert.are.same({ retry = { maximumAttempts = 5 }, requestTimeout = 600 }, job.configuration)
        assert.are.equal(cjson.null, job.last_run_time)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", job.created_at)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT", job.next_run_time)
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", job.projectId)
        assert.are.equal(3, #job.payload)
        assert.are.equal("webhook", job.sink.type)
        return
      end
      assert.are.equal(201, r.status, r.body)
      assert.matches("^application/json", r.headers["content-type"])
      assert.are.same({ id = "fleet-telemetry-sweep", message = "created" }, decode(r.body))

      r = emu.api("GET", P .. "/jobs/fleet-telemetry-sweep")
      assert.are.equal(200, r.status)
      local job = decode(r.body)
      assert.are.equal("fleet-telemetry-sweep", job.id)
      assert.are.same({ status = "ACTIVE" }, job.state)
      -- retry durations come back in milliseconds (reference §4.8)
      assert.are.same({ maximumAttempts = 5, backoffCoefficient = 1.5, initialInterval = 2000, maximumInterval = 600000 },
        job.configuration.retry)
      assert.are.equal(cjson.null, job.last_run_time)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", job.created_at)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", job.next_run_time)
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", job.projectId)
      assert.are.equal(3, #job.payload)
      assert.are.equal("webhook", job.sink.type)
    end)

    it("a job without a schedule has next_run_time null; defaults are filled", function()
      create("no-schedule-1", nil, { configuration = { runMode = "Order-Irrelevant",
                                                       retry = { maximumAttempts = 2 } } })
      local job = decode(emu.api("GET", P .. "/jobs/no-schedule-1").body)
      assert.are.equal(cjson.null, job.next_run_time)
      if NEWEST then
        assert.are.same({ maximumAttempts = 2 }, job.configuration.retry)
        assert.are.equal(600, job.configuration.requestTimeout)
        assert.are.equal(600, job.payload[1].requestTimeout)
      else
        assert.are.same({ maximumAttempts = 2, backoffCoefficient = 1, initialInterval = 1000 }, job.configuration.retry)
      end
    end)

    it("next_run_time of an interval is the next multiple of `every` since the epoch", function()
      create("interval-job-1", nil, { schedule = { intervals = { { every = "1h" } } } })
      local job = decode(emu.api("GET", P .. "/jobs/interval-job-1").body)
      assert.matches("T%d%d:00:00%.000Z$", job.next_run_time)
    end)

    it("list answers the project's jobs as a bare array in creation order", function()
      create("list-a-0001", nil, nil, "/ws-local/projects/list-project")
      create("list-b-0002", nil, nil, "/ws-local/projects/list-project")
      local r = emu.api("GET", "/ws-local/projects/list-project/jobs")
      assert.are.equal(200, r.status)
      local list = decode(r.body)
      assert.are.equal(2, #list)
      assert.are.equal("list-a-0001", list[1].id)
      assert.are.equal("list-b-0002", list[2].id)
      -- an unknown project is just empty
      assert.are.same("[]", emu.api("GET", "/ws-local/projects/nobody-here/jobs").body)
    end)

    it("update (PUT) replaces the definition and answers {id, message}", function()
      create("update-me-1")
      local body = cjson.encode{ payload = { { apiName = "new/api", parameters = { a = 1 } } },
                                 configuration = { maxConcurrentRequests = 3, retry = { maximumAttempts = 4 } } }
      local r = emu.api("PUT", P .. "/jobs/update-me-1", { body = body })
      assert.are.equal(200, r.status, r.body)
      assert.are.same({ id = "update-me-1", message = "updated job successfully" }, decode(r.body))
      local job = decode(emu.api("GET", P .. "/jobs/update-me-1").body)
      assert.are.equal("new/api", job.payload[1].apiName)
      assert.are.equal(3, job.configuration.maxConcurrentRequests)
      assert.are.equal(4, job.configuration.retry.maximumAttempts)
      assert.are.equal("ACTIVE", state_of(job))
      r = emu.api("PUT", P .. "/jobs/update-me-1", { body = '{"payload":[{"apiName":"a","parameters":{}}]}' })
      assert.are.equal(400, r.status)
      assert.are.equal("configuration", decode(r.body).details.field)
      assert.are.equal(404, emu.api("PUT", P .. "/jobs/nope-nope-1", { body = body }).status)
    end)

    it("delete answers 204 and the job is gone", function()
      create("delete-me-1")
      local r = emu.api("DELETE", P .. "/jobs/delete-me-1")
      assert.are.equal(204, r.status)
      assert.are.equal("", r.body)
      assert.are.equal(404, emu.api("GET", P .. "/jobs/delete-me-1").status)
      assert.are.equal(404, emu.api("DELETE", P .. "/jobs/delete-me-1").status)
    end)

    it("pause / resume change the state and answer {id, message} (newest: {message})", function()
      create("pause-me-1")
      local r = emu.api("POST", P .. "/jobs/pause-me-1/pause")
      assert.are.equal(200, r.status)
      local id = not NEWEST and "pause-me-1" or nil
      assert.are.same({ id = id, message = "Paused" }, decode(r.body))
      local job = decode(emu.api("GET", P .. "/jobs/pause-me-1").body)
      if NEWEST then assert.are.equal("PAUSED", job.state)
      else assert.are.same({ status = "PAUSED", reason = "Paused via API" }, job.state) end
      -- trigger of a paused job: 409
      r = emu.api("POST", P .. "/jobs/pause-me-1/trigger")
      assert.are.equal(409, r.status)
      assert.matches("paused", decode(r.body).message)
      r = emu.api("POST", P .. "/jobs/pause-me-1/resume")
      assert.are.same({ id = id, message = "Resumed" }, decode(r.body))
      assert.are.equal("ACTIVE", state_of(decode(emu.api("GET", P .. "/jobs/pause-me-1").body)))
      assert.are.equal(200, emu.api("POST", P .. "/jobs/pause-me-1/trigger").status)
    end)

    it("percent-encoded path segments address the right project", function()
      local project = "/ws-local/projects/my%20project%2F%C3%A4%2B%26%3F%23%25"
      create("encoded-job-1", nil, nil, project)
      local r = emu.api("GET", project .. "/jobs/encoded-job-1")
      assert.are.equal(200, r.status, r.body)
      assert.are.equal(0, #decode(emu.api("GET", "/ws-local/projects/my%20project/jobs").body))
      assert.are.equal(1, #decode(emu.api("GET", project .. "/jobs").body))
      assert.are.equal(400, emu.api("GET", "/ws-local/projects/bad%zzenc/jobs").status)
    end)
  end)

  describe("errors", function()
    it("401 without or with a wrong x-api-key, with a message", function()
      for _, key in ipairs{ false, "wrong-key" } do
        local r = emu.api("GET", P .. "/jobs", { key = key })
        assert.are.equal(401, r.status)
        assert.is_string(decode(r.body).message)
      end
    end)

    it("400 names the bad field path in details.field", function()
      local body = '{"id":"bad-input-1","payload":[{"apiName":"a","parameters":{}},{"parameters":{}}],' ..
                   (NEWEST and '"configuration":{}}' or '"configuration":{"runMode":"Order-Irrelevant"}}')
      local r = emu.api("POST", P .. "/jobs", { body = body })
      assert.are.equal(400, r.status)
      local e = decode(r.body)
      -- the core's paths count array items from 1 (as Lua)
      assert.are.equal("payload[2].apiName", e.details.field)
      assert.matches("^Invalid job input: payload%[2%]%.apiName: ", e.message)
      assert.is_string(e.details.issue)
      -- wrong type, unknown run mode, not a slug, malformed JSON, empty body
      local pl = '"payload":[{"apiName":"a","parameters":{}}]'
      local cases = NEWEST and {
        { '{"id":5,' .. pl .. ',"configuration":{}}', "id" },
        { '{"id":"abc-def-1",' .. pl .. ',"configuration":{"runMode":"Order-Irrelevant"}}', "configuration.runMode" },
        { '{"id":"abc-def-1",' .. pl .. ',"configuration":{"retry":{"maximumAttempts":2,"initialInterval":"1s"}}}',
          "configuration.retry.initialInterval" },
        { '{"id":"abc-def-1","payload":[{"apiName":"a","parameters":[1]}],"configuration":{}}', "payload[1].parameters" },
        { '{"id":"a b c d e",' .. pl .. ',"configuration":{}}', "id" },
        { '{"id":"abc-def-1",', "" },
        { "", "" },
      } or {
        { '{"id":5,' .. pl .. ',"configuration":{"runMode":"Order-Irrelevant"}}', "id" },
        { '{"id":"abc-def-1",' .. pl .. ',"configuration":{"runMode":"fast"}}', "configuration.runMode" },
        { '{"id":"a b c d e",' .. pl .. ',"configuration":{"runMode":"Order-Irrelevant"}}', "id" },
        { '{"id":"abc-def-1",', "" },
        { "", "" },
      }
      for _, c in ipairs(cases) do
        r = emu.api("POST", P .. "/jobs", { body = c[1] })
        assert.are.equal(400, r.status, c[1])
        assert.are.equal(c[2], decode(r.body).details.field, c[1])
      end
      assert.are.equal(404, emu.api("GET", P .. "/jobs/abc-def-1").status)
    end)

    it("404 for unknown workspace, job, run and path, in the typed shape", function()
      create("known-job-1")
      local paths = { "/other-ws/projects/x/jobs", P .. "/jobs/unknown-1", P .. "/jobs/unknown-1/runs",
                      P .. "/jobs/known-job-1/runs/run-nope", P .. "/jobs/known-job-1/whatever" }
      for _, p in ipairs(paths) do
        local r = emu.api("GET", p)
        assert.are.equal(404, r.status, p)
        local e = decode(r.body)
        assert.are.equal("not-found", e.code)
        assert.are.equal("user", e.category)
        assert.are.equal(false, e.retirable)
        assert.is_string(e.correlationId)
        assert.is_string(e.message)
      end
      assert.are.equal(404, emu.api("POST", P .. "/jobs/known-job-1/runs/run-nope/terminate").status)
      assert.are.equal(404, emu.api("POST", P .. "/jobs/unknown-1/trigger").status)
      assert.are.equal(404, emu.api("POST", P .. "/jobs/unknown-1/pause").status)
    end)

    it("405 with Allow for a wrong method", function()
      local r = emu.api("PATCH", P .. "/jobs")
      assert.are.equal(405, r.status)
      assert.are.equal("GET, POST", r.headers["allow"])
    end)

    it("409 for a duplicate job id", function()
      create("dup-job-1")
      local r = emu.api("POST", P .. "/jobs", { body = job_input("dup-job-1") })
      assert.are.equal(409, r.status)
      assert.matches("already exists", decode(r.body).message)
    end)

    it("413 for a body over the limit (announced or chunked)", function()
      local big = '{"id":"big-job-1","payload":[{"apiName":"' .. string.rep("x", 1100000) .. '"}]}'
      local r = emu.api("POST", P .. "/jobs", { body = big })
      assert.are.equal(413, r.status)
      r = emu.api("POST", P .. "/jobs", { body = big, headers = { ["Transfer-Encoding"] = "chunked" } })
      assert.are.equal(413, r.status)
      assert.are.equal(404, emu.api("GET", P .. "/jobs/big-job-1").status)
    end)
  end)

  describe("runs", function()
    it("trigger creates a MANUAL run that goes PENDING -> COMPLETED", function()
      create("run-ok-1", { { apiName = "a/one" }, { apiName = "a/two", parameters = { 1, 2 } } },
        { configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 1 } })
      local r = emu.api("POST", P .. "/jobs/run-ok-1/trigger")
      assert.are.equal(200, r.status)
      local t = decode(r.body)
      assert.are.equal(not NEWEST and "run-ok-1" or nil, t.id)   -- the newest API's answer has no id
      assert.are.equal("Triggered", t.message)
      local first = runs("run-ok-1")[1]
      assert.are.equal("PENDING", first.status)   -- two 30 ms calls one at a time
      assert.are.equal("MANUAL", first.type)
      local run = wait_run("run-ok-1")
      assert.are.equal("COMPLETED", run.status)
      assert.are.same({ ok = 2, failed = 0 }, counts(run))
      if not NEWEST then
        assert.are.same({ apis_count = 2, success_count = 2, failures_count = 0, pending_count = 0 }, run.summary)
      end
      assert.are.equal(t.jobRunId, run.id)
      assert.are.equal("run-ok-1", NEWEST and run.job_id or run.jobId)
      assert.are.equal("ws-local", run.workspace_id)
      assert.is_string(decode(emu.api("GET", P .. "/jobs/run-ok-1").body).last_run_time)
    end)

    it("honours the retry policy: fail*, flaky:N and maximumAttempts", function()
      create("run-retry-1", { { apiName = "ok/api" }, { apiName = "fail/always" }, { apiName = "flaky:2/api" } },
        { configuration = { runMode = "Order-Irrelevant",
                            retry = { maximumAttempts = 3, initialInterval = "1s", backoffCoefficient = 2 } } })
      emu.api("POST", P .. "/jobs/run-retry-1/trigger")
      local run = wait_run("run-retry-1")
      assert.are.equal("COMPLETED", run.status)
      assert.are.same({ ok = 2, failed = 1 }, counts(run))
      local attempts = {}
      for _, p in ipairs(emu.run_view(run).payloads) do attempts[p.apiName] = p.attempts end
      assert.are.same({ ["ok/api"] = 1, ["fail/always"] = 3, ["flaky:2/api"] = 3 }, attempts)
    end)

    it("a run whose payloads all fail is FAILED", function()
      create("run-fail-1", { { apiName = "fail-one" }, { apiName = "fail-two" } })
      emu.api("POST", P .. "/jobs/run-fail-1/trigger")
      local run = wait_run("run-fail-1")
      assert.are.equal(FAILED, run.status)
      assert.are.equal(2, counts(run).failed)
    end)

    it("keeps at most maxConcurrentRequests payloads in flight", function()
      local payload = {}
      for i = 1, 10 do payload[i] = { apiName = "conc/" .. i } end
      create("run-conc-2", payload, { configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2 } })
      create("run-conc-0", payload)
      emu.api("POST", P .. "/jobs/run-conc-2/trigger")
      emu.api("POST", P .. "/jobs/run-conc-0/trigger")
      local limited, free = wait_run("run-conc-2"), wait_run("run-conc-0")
      assert.are.equal(2, emu.run_view(limited).max_in_flight)
      assert.is_true(emu.run_view(free).max_in_flight > 2)
    end)

    it("terminate stops a run: pending payloads are not run", function()
      local payload = {}
      for i = 1, 30 do payload[i] = { apiName = "slow/" .. i } end
      create("run-term-1", payload, { configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 1 } })
      local id = decode(emu.api("POST", P .. "/jobs/run-term-1/trigger").body).jobRunId
      emulator.sleep(0.1)
      local r = emu.api("POST", P .. "/jobs/run-term-1/runs/" .. id .. "/terminate")
      assert.are.equal(200, r.status)
      assert.are.same({ message = "Job run terminated" }, decode(r.body))
      emulator.sleep(0.2)
      local run = runs("run-term-1")[1]
      assert.are.equal("TERMINATED", run.status)
      local c = counts(run)
      assert.is_true(c.ok + c.failed < 30)
      if NEWEST then
        assert.are.same({ type = "terminated", message = "Job run terminated on request" }, run.reason)
        assert.is_string(run.end_time)
      else
        assert.are.equal(0, run.summary.pending_count)
      end
      -- again: 409, as for any finished run
      r = emu.api("POST", P .. "/jobs/run-term-1/runs/" .. id .. "/terminate")
      assert.are.equal(409, r.status)
      assert.matches("already finished %(TERMINATED%)", decode(r.body).message)
      create("run-term-2")
      local id2 = decode(emu.api("POST", P .. "/jobs/run-term-2/trigger").body).jobRunId
      wait_run("run-term-2")
      assert.are.equal(409, emu.api("POST", P .. "/jobs/run-term-2/runs/" .. id2 .. "/terminate").status)
    end)

    it("pausing the job pauses its running run; resuming finishes it", function()
      local payload = {}
      for i = 1, 8 do payload[i] = { apiName = "p/" .. i } end
      create("run-pause-1", payload, { configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 1 } })
      emu.api("POST", P .. "/jobs/run-pause-1/trigger")
      emulator.sleep(0.05)
      emu.api("POST", P .. "/jobs/run-pause-1/pause")
      emulator.sleep(0.1)
      local run = runs("run-pause-1")[1]
      assert.are.equal("PAUSED", run.status)
      local c = counts(run)
      local done = c.ok + c.failed
      emulator.sleep(0.15)
      c = counts(runs("run-pause-1")[1])
      assert.are.equal(done, c.ok + c.failed)
      emu.api("POST", P .. "/jobs/run-pause-1/resume")
      run = wait_run("run-pause-1")
      assert.are.equal("COMPLETED", run.status)
      assert.are.equal(8, counts(run).ok)
    end)

    it("GET one run answers {jobRun, results}; ?pageSize answers the newest API's paged list", function()
      create("run-get-1")
      local id = decode(emu.api("POST", P .. "/jobs/run-get-1/trigger").body).jobRunId
      wait_run("run-get-1")
      emu.api("POST", P .. "/jobs/run-get-1/trigger")
      wait_run("run-get-1")
      local r = emu.api("GET", P .. "/jobs/run-get-1/runs/" .. id)
      assert.are.equal(200, r.status, r.body)
      local d = decode(r.body)
      assert.are.equal(id, d.jobRun.id)
      assert.are.equal(1, d.jobRun.payloads)
      assert.are.equal(1, d.jobRun.successful_runs)
      assert.is_string(d.jobRun.end_time)
      assert.is_table(d.jobRun.job_configuration_snapshot.configuration)
      assert.are.equal("json", d.results.format)
      local res = emulator.http("GET", d.results.signed_url)
      assert.are.equal(200, res.status)
      assert.are.equal("health/ping", decode(res.body)[1].apiInfo.name)
      r = emu.api("GET", P .. "/jobs/run-get-1/runs?pageNumber=0&pageSize=1")
      local page = decode(r.body)
      assert.are.equal(2, page.totalCount)
      assert.are.equal(1, #page.jobRuns)
      assert.are.equal(2, #runs("run-get-1"))   -- without a query: the bare array (newest: one page of all)
      if not NEWEST then assert.is_nil(decode(emu.api("GET", P .. "/jobs/run-get-1/runs").body).totalCount) end
    end)
  end)

  describe("sinks", function()
    -- reading or clearing the receiver takes the API key
    local function receiver_http(e, method, name)
      return emulator.http(method, e.base .. "/_receiver/" .. name, { headers = { ["x-api-key"] = e.key } })
    end
    local function receiver(name)
      return decode(receiver_http(emu, "GET", name).body)
    end

    it("webhook: one POST per API run with the sink's headers", function()
      create("hook-job-1", { { apiName = "h/one", parameters = { q = 1 } }, { apiName = "h/two" } },
        { sink = { type = "webhook", url = emu.base .. "/_receiver/hook1",
                   headers = { ["X-Token"] = "s3cr3t", ["X-Num"] = 5 } } })
      local runid = decode(emu.api("POST", P .. "/jobs/hook-job-1/trigger").body).jobRunId
      local run = wait_run("hook-job-1")
      assert.are.equal(2, emu.run_view(run).deliveries.delivered)
      local recs = receiver("hook1")
      assert.are.equal(2, #recs)
      local names = {}
      for _, rec in ipairs(recs) do
        assert.are.equal("POST", rec.method)
        assert.are.equal("s3cr3t", rec.headers["x-token"])
        assert.are.equal("5", rec.headers["x-num"])
        assert.matches("^application/json", rec.headers["content-type"])
        local b = decode(rec.body)
        names[b.apiInfo.name] = b
        assert.are.equal("ws-local", b.workspaceId)
        assert.are.equal("spec-project", b.project.name)
        assert.are.equal("hook-job-1", b.projectJob.id)
        assert.are.equal(runid, b.projectJobRun.id)
        assert.are.equal("completed", b.apiInfo.result.status)
        assert.are.equal(200, b.apiInfo.result.statusCode)
        assert.is_string(b.apiInfo.runId)
      end
      assert.are.same({ q = 1 }, names["h/one"].apiInfo.parameters)
      -- the key does not leak into logs or answers: DELETE clears the receiver
      assert.are.equal(204, receiver_http(emu, "DELETE", "hook1").status)
      assert.are.equal(0, #receiver("hook1"))
    end)

    it("webhook: delivers to a receiver in another process", function()
      -- a second server stands for the user's webhook endpoint
      local other = emulator.start{}
      create("hook-ext-1", { { apiName = "ext/one" } },
        { sink = { type = "webhook", url = other.base .. "/_receiver/ext", headers = { ["X-Token"] = "t0k" } } })
      emu.api("POST", P .. "/jobs/hook-ext-1/trigger")
      local run = wait_run("hook-ext-1")
      assert.are.equal(1, emu.run_view(run).deliveries.delivered)
      local recs = decode(receiver_http(other, "GET", "ext").body)
      other.stop()
      assert.are.equal(1, #recs)
      assert.are.equal("t0k", recs[1].headers["x-token"])
      assert.are.equal("ext/one", decode(recs[1].body).apiInfo.name)
      assert.are.equal(0, #receiver("ext")) -- nothing went to the emulator's own receiver
    end)

    it("webhook: skipOnFail drops failed results; failed deliveries are retried", function()
      create("hook-skip-1", { { apiName = "fine" }, { apiName = "fail-here" } },
        { sink = { type = "webhook", url = emu.base .. "/_receiver/hook2", skipOnFail = true } })
      emu.api("POST", P .. "/jobs/hook-skip-1/trigger")
      local run = wait_run("hook-skip-1")
      assert.are.same({ delivered = 1, failed = 0, skipped = 1, attempts = 1 }, emu.run_view(run).deliveries)
      assert.are.equal(1, #receiver("hook2"))

      assert.are.equal(200, emu.control("POST", "/_emulator/receivers/hook3", '{"status":500,"count":2}').status)
      create("hook-retry-1", { { apiName = "fail-too" } },
        { sink = { type = "webhook", url = emu.base .. "/_receiver/hook3" } })
      emu.api("POST", P .. "/jobs/hook-retry-1/trigger")
      run = wait_run("hook-retry-1")
      assert.are.same({ delivered = 1, failed = 0, skipped = 0, attempts = 3 }, emu.run_view(run).deliveries)
      local recs = receiver("hook3")
      assert.are.same({ 500, 500, 200 }, { recs[1].status, recs[2].status, recs[3].status })
      assert.are.equal("failed", decode(recs[3].body).apiInfo.result.status)
    end)

    it("webhook: targets off loopback are refused and reported", function()
      create("hook-far-1", nil, { sink = { type = "webhook", url = "https://hooks.example.test/x" } })
      emu.api("POST", P .. "/jobs/hook-far-1/trigger")
      local run = wait_run("hook-far-1")
      assert.are.equal(1, emu.run_view(run).deliveries.failed)
      assert.are.equal("COMPLETED", run.status)
    end)

    it("S3: one file per API run at <bucket>/<prefix><jobId>/<runId>/<apiRunId>.json", function()
      create("s3-job-1", { { apiName = "s/one" }, { apiName = "s/two" } },
        { sink = { type = "s3", region = "eu-central-1", bucket = "bkt", accessKeyId = "AKIA",
                   secretAccessKey = "secret/key", prefix = "pre/fix-" } })
      local runid = decode(emu.api("POST", P .. "/jobs/s3-job-1/trigger").body).jobRunId
      local run = wait_run("s3-job-1")
      assert.are.equal(2, emu.run_view(run).deliveries.delivered)
      local s3 = decode(emu.control("GET", "/_emulator/stats").body).s3_dir
      local dir = s3 .. "/bkt/pre/fix-s3-job-1/" .. runid
      local files = emulator.capture("ls " .. emulator.quote(dir))
      local n = 0
      for f in files:gmatch("[^\n]+") do
        n = n + 1
        assert.matches("^apirun%-.+%.json$", f)
        local b = decode(emulator.read_file(dir .. "/" .. f))
        assert.are.equal("s3-job-1", b.projectJob.id)
        assert.are.equal(f, b.apiInfo.runId .. ".json")
      end
      assert.are.equal(2, n)
      emulator.run("rm -rf " .. emulator.quote(s3 .. "/bkt"))
    end)
  end)

  describe("faults", function()
    after_each(function() emu.control("DELETE", "/_emulator/faults") end)

    local function fault(rule)
      local r = emu.control("POST", "/_emulator/faults", cjson.encode(rule))
      assert.are.equal(200, r.status, r.body)
    end

    it("429 carries Retry-After; 500, 502, 503 as asked", function()
      fault{ status = 429, count = 1, retry_after = "2" }
      local r = emu.api("GET", P .. "/jobs")
      assert.are.equal(429, r.status)
      assert.are.equal("2", r.headers["retry-after"])
      for _, st in ipairs{ 500, 502, 503 } do
        fault{ status = st, count = 1 }
        assert.are.equal(st, emu.api("GET", P .. "/jobs").status)
      end
      assert.are.equal(200, emu.api("GET", P .. "/jobs").status)   -- counts used up
    end)

    it("a faulted POST changes no state", function()
      local before = decode(emu.control("GET", "/_emulator/stats").body)
      fault{ status = 503, count = 1, method = "POST", match = "/jobs" }
      assert.are.equal(503, emu.api("POST", P .. "/jobs", { body = job_input("faulted-job-1") }).status)
      assert.are.equal(404, emu.api("GET", P .. "/jobs/faulted-job-1").status)
      for _, kind in ipairs{ "drop", "malformed", "truncated", "content_type" } do
        fault{ kind = kind, count = 1, method = "POST" }
        emu.api("POST", P .. "/jobs", { body = job_input("faulted-job-1") })
        assert.are.equal(404, emu.api("GET", P .. "/jobs/faulted-job-1").status, kind)
      end
      local after = decode(emu.control("GET", "/_emulator/stats").body)
      assert.are.equal(before.creates, after.creates)
      assert.are.equal(before.faults + 5, after.faults)
    end)

    it("drop closes the connection without an answer", function()
      fault{ kind = "drop", count = 1 }
      local r = emu.api("GET", P .. "/jobs")
      assert.are.equal(0, r.status)
      assert.are.equal(52, r.curl_exit)   -- curl: empty reply from server
    end)

    it("malformed, truncated and content_type bodies", function()
      create("fault-body-1")
      fault{ kind = "malformed", count = 1 }
      local r = emu.api("GET", P .. "/jobs/fault-body-1")
      assert.are.equal(200, r.status)
      assert.is_nil(decode(r.body))
      fault{ kind = "truncated", count = 1 }
      r = emu.api("GET", P .. "/jobs/fault-body-1")
      assert.are.equal(18, r.curl_exit)   -- curl: transfer closed with bytes remaining
      fault{ kind = "content_type", count = 1 }
      r = emu.api("GET", P .. "/jobs/fault-body-1")
      assert.are.equal(200, r.status)
      assert.matches("^text/html", r.headers["content-type"])
      fault{ kind = "malformed", count = 1, method = "POST" }
      r = emu.api("POST", P .. "/jobs/fault-body-1/pause")
      assert.are.equal(200, r.status)
      assert.are.equal("ACTIVE", state_of(decode(emu.api("GET", P .. "/jobs/fault-body-1").body)))
    end)

    it("latency holds only the matching request", function()
      create("slow-job-1")
      create("fast-job-1")
      fault{ latency_ms = 1200, match = "slow-job-1" }
      local out = emulator.tmpname()
      emulator.run(emulator.curl .. " -s -o /dev/null -w '%{http_code} %{time_total}' -H 'x-api-key: test-key' " ..
                 emulator.quote(emu.url .. P .. "/jobs/slow-job-1") .. " >" .. emulator.quote(out) .. " &")
      emulator.sleep(0.2)
      local fast = emu.api("GET", P .. "/jobs/fast-job-1")
      assert.are.equal(200, fast.status)
      assert.is_true(fast.time < 0.5, "fast request took " .. fast.time)
      local slow = eventually(function()
        local s = emulator.read_file(out) or ""
        return s:match("^200 ([%d%.]+)$")
      end, 5)
      os.remove(out)
      assert.is_true(tonumber(slow) >= 1.1, "slow request took " .. tostring(slow))
    end)

    it("rates are reproducible with a seed", function()
      local function sequence()
        local e = emulator.start{ "--seed", "42", "--fault-status", "503", "--fault-rate", "0.5" }
        local s = {}
        for i = 1, 16 do s[i] = e.api("GET", "/ws-local/projects/x/jobs").status end
        e.stop()
        return table.concat(s, ",")
      end
      local a, b = sequence(), sequence()
      assert.are.equal(a, b)
      assert.matches("503", a)
      assert.matches("200", a)
    end)

    it("command-line fault options", function()
      local e = emulator.start{ "--fault-status", "429", "--fault-count", "2", "--fault-retry-after", "3" }
      local r = e.api("GET", "/ws-local/projects/x/jobs")
      assert.are.equal(429, r.status)
      assert.are.equal("3", r.headers["retry-after"])
      assert.are.equal(429, e.api("GET", "/ws-local/projects/x/jobs").status)
      assert.are.equal(200, e.api("GET", "/ws-local/projects/x/jobs").status)
      e.stop()
    end)

    it("refuses bad rules", function()
      assert.are.equal(400, emu.control("POST", "/_emulator/faults", '{"status":7}').status)
      assert.are.equal(400, emu.control("POST", "/_emulator/faults", '{"kind":"explode"}').status)
      assert.are.equal(400, emu.control("POST", "/_emulator/faults", '{"rate":0.5}').status)
      assert.are.equal(400, emu.control("POST", "/_emulator/faults", "not json").status)
    end)
  end)

  describe("connections", function()
    it("keeps connections alive", function()
      local before = decode(emu.control("GET", "/_emulator/stats").body).connections
      local u = emulator.quote(emu.url .. P .. "/jobs")
      local out = emulator.capture(emulator.curl .. " -s -o /dev/null -o /dev/null -w '%{http_code}\\n' -H 'x-api-key: test-key' " ..
                                   u .. " " .. u)
      assert.are.equal("200\n200", out)
      local after = decode(emu.control("GET", "/_emulator/stats").body)
      assert.are.equal(before + 2, after.connections)   -- one for the two GETs, one for this stats call
      assert.is_true(after.requests > 0)
      assert.is_true(after.by_route["GET jobs:list"] > 0)
    end)

    it("serves 64 concurrent connections", function()
      create("conc-64-job")
      emu.control("POST", "/_emulator/faults", '{"latency_ms":500,"match":"conc-64-job"}')
      local cfg = emulator.tmpname()
      local lines = {}
      for i = 1, 64 do
        lines[#lines + 1] = ('url = "%s"\noutput = "/dev/null"\n'):format(emu.url .. P .. "/jobs/conc-64-job?i=" .. i)
      end
      emulator.write_file(cfg, table.concat(lines))
      local out = emulator.capture("s=$(date +%s%N); " .. emulator.curl ..
        " -s --no-progress-meter --parallel --parallel-immediate --parallel-max 64 " ..
        "-H 'x-api-key: test-key' -w '%{http_code}\\n' -K " .. emulator.quote(cfg) ..
        " 2>/dev/null; e=$(date +%s%N); echo \"ms=$(( (e - s) / 1000000 ))\"")
      os.remove(cfg)
      emu.control("DELETE", "/_emulator/faults")
      local ok = select(2, out:gsub("200", ""))
      assert.are.equal(64, ok, out)
      local ms = tonumber(out:match("ms=(%d+)"))
      assert.is_true(ms < 8000, "64 requests delayed 500 ms each took " .. ms .. " ms")
    end)
  end)

  describe("slow clients", function()
    it("are cut off after --conn-timeout and hold up no one else", function()
      local e = emulator.start{ "--conn-timeout", "1" }
      finally(function() e.stop() end)
      local out = emulator.tmpname()
      -- half a request, then silence
      emulator.run("timeout 8 bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. e.port ..
        "; printf \"GET /x HTTP/1.1\\r\\nHost: a\\r\\n\" >&3; s=$(date +%s%N); cat <&3 >/dev/null;" ..
        " echo $(( ($(date +%s%N) - s) / 1000000 ))' >" .. emulator.quote(out) .. " 2>&1 &")
      emulator.sleep(0.2)
      local r = e.api("GET", "/ws-local/projects/x/jobs")
      assert.are.equal(200, r.status)
      assert.is_true(r.time < 0.5)
      local ms = eventually(function() return tonumber((emulator.read_file(out) or ""):match("^(%d+)")) end, 8)
      os.remove(out)
      assert.is_number(ms)
      assert.is_true(ms >= 500 and ms < 4000, "closed after " .. tostring(ms) .. " ms")
    end)
  end)

  describe("persistence", function()
    it("restarts after SIGKILL with nothing lost", function()
      local dir = emulator.tmpdir()
      local e
      finally(function()
        if e then e.stop() end   -- stop/kill of a stopped one is a no-op
        emulator.run("rm -rf " .. emulator.quote(dir))
      end)
      local args = { "--data-dir", dir, "--time-scale", "0.001", "--api-latency-ms", "5" }
      e = emulator.start(args)
      local pp = "/ws-local/projects/persist"
      local function mk(id, extra)
        assert.are.equal(201, e.api("POST", pp .. "/jobs", { body = job_input(id, nil, extra) }).status)
      end
      mk("persist-a-1", { schedule = { intervals = { { every = "1h" } } } })
      mk("persist-b-1")
      e.api("POST", pp .. "/jobs/persist-b-1/pause")
      mk("persist-c-1", { sink = { type = "webhook", url = e.base .. "/_receiver/p" } })
      e.api("POST", pp .. "/jobs/persist-c-1/trigger")
      assert.is_true(eventually(function()
        local l = decode(e.api("GET", pp .. "/jobs/persist-c-1/runs").body)
        if NEWEST then l = l.jobRuns end
        return l[1] and l[1].status == "COMPLETED"
      end))
      local jobs_before = e.api("GET", pp .. "/jobs").body
      local runs_before = decode(e.api("GET", pp .. "/jobs/persist-c-1/runs").body)
      e.api("DELETE", pp .. "/jobs/persist-a-1")
      e.kill()

      -- while creating jobs as fast as possible, SIGKILL at a random moment
      e = emulator.start(args)
      local log = emulator.tmpname()
      local body = job_input("kill-IDX"):gsub('"', '\\"'):gsub("kill%-IDX", "kill-$i")
      emulator.run("for i in $(seq 1 200); do curl -s -o /dev/null -w \"kill-$i %{http_code}\\n\" " ..
        "-H 'x-api-key: test-key' -H 'Content-Type: application/json' " ..
        "--data-binary \"" .. body .. "\" " ..
        emulator.quote(e.url .. pp .. "/jobs") .. "; done >" .. emulator.quote(log) .. " 2>&1 &")
      emulator.sleep(0.4)
      e.kill()
      emulator.sleep(0.3)

      e = emulator.start(args)
      local created = {}
      for line in (emulator.read_file(log) or ""):gmatch("[^\n]+") do
        local id, st = line:match("^(kill%-%d+) (%d+)$")
        if st == "201" then created[#created + 1] = id end
      end
      os.remove(log)
      assert.is_true(#created > 0)
      for _, id in ipairs(created) do
        assert.are.equal(200, e.api("GET", pp .. "/jobs/" .. id).status, id)
      end
      local list = decode(e.api("GET", pp .. "/jobs").body)
      local before = decode(jobs_before)
      assert.are.equal("persist-b-1", list[1].id)   -- creation order kept; persist-a-1 was deleted
      assert.are.same(before[2], list[1])
      assert.are.equal("PAUSED", state_of(list[1]))
      assert.are.same(before[3].id, list[2].id)
      assert.are.same(runs_before, decode(e.api("GET", pp .. "/jobs/persist-c-1/runs").body))
      assert.are.equal(404, e.api("GET", pp .. "/jobs/persist-a-1").status)
      assert.are.equal("", emulator.capture("ls " .. emulator.quote(dir .. "/jobs") .. " | grep tmp"))
      e.stop()
    end)
  end)
end)
