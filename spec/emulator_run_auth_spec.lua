-- intuned-emulator: the Run API and Auth Sessions, raw HTTP, in both API
-- versions' shapes.  Runs execute like job payloads (latency, failure
-- names, retries, sink delivery); auth-session operations move through
-- their states after --auth-op-ms; a newest-mode job's auth_session must
-- name a session; everything kept is bounded.
-- Pinned to its modes: it does not follow $INTUNED_TEST_API_VERSION.
local cjson = require "cjson"
local emulator = require "spec.helpers.emulator"

local P = "/ws-local/projects/ra"

local function keys(t)
  local k = {}
  for name in pairs(t) do k[#k + 1] = name end
  table.sort(k)
  return table.concat(k, ",")
end

local function final_run(st) return st == "completed" or st == "failed" or st == "canceled" end
local function final_op(st) return st == "done" or st == "failed" or st == "canceled" end

-- start a run; its id
local function start(emu, body, project)
  local res = emu.call("POST", (project or P) .. "/run/start", body)
  assert(res.status == 201, "run start: HTTP " .. res.status .. " " .. res.body)
  return res.json.runId, res
end

local function wait_run(emu, id, project)
  local res, seen = emu.poll((project or P) .. "/run/" .. id .. "/result", function(j) return final_run(j.status) end)
  assert(res.status == 200, res.body)
  assert(final_run(res.json.status), "run not finished: " .. res.body)
  return res.json, seen
end

local function wait_op(emu, path)
  local res, seen = emu.poll(path, function(j) return final_op(j.status) end)
  assert(res.status == 200, res.body)
  assert(final_op(res.json.status), "operation not finished: " .. res.body)
  return res.json, seen
end

-- create a session (waits for its create to end); the create's result
local function create_session(emu, body)
  local res = emu.call("POST", P .. "/auth-sessions/create", body)
  assert(res.status == 201, "create: HTTP " .. res.status .. " " .. res.body)
  return wait_op(emu, P .. "/auth-sessions/create/" .. res.json.operationId .. "/result"), res.json
end

local function receiver(emu, name)
  local res = emulator.http("GET", emu.base .. "/_receiver/" .. name, { headers = { ["x-api-key"] = emu.key } })
  return cjson.decode(res.body)
end

local function count_starts(emu) return cjson.decode(emu.control("GET", "/_emulator/api-runs").body) end

describe("intuned-emulator Run API and Auth Sessions", function()
  local s3dir
  teardown(function()
    emulator.stop_all()
    if s3dir then emulator.run("rm -rf " .. emulator.quote(s3dir)) end
  end)

  it("--help documents the options, the failure markers and the bounds", function()
    local help = emulator.capture(emulator.quote(emulator.binary()) .. " --help")
    for _, s in ipairs{ "--auth-op-ms MS", "--max-api-runs N", "--max-auth-sessions N", "\"fail\"", "\"stale\"",
                        "/_emulator/api-runs/RUNID/cancel", "in memory only", "auth_session.id" } do
      assert.matches(s, help, 1, true)
    end
  end)

  describe("newest mode", function()
    local emu
    setup(function()
      s3dir = emulator.tmpdir()
      emu = emulator.pinned("newest").start{ "--api-latency-ms", "20", "--time-scale", "0.01", "--auth-op-ms", "4000",
                                             "--s3-dir", s3dir, "--fail-api", "broken/api" }
    end)
    teardown(function() emu.stop() end)

    it("start answers 201 {runId, status: pending}; the result completes with the API's output", function()
      local id, res = start(emu, { api = "products/list", parameters = { category = "shoes", page = 1 } })
      assert.are.equal("runId,status", keys(res.json))
      assert.are.equal("pending", res.json.status)
      assert.matches("^[%w_%-]+$", id)
      assert.are.equal(21, #id)
      local r, seen = wait_run(emu, id)
      assert.are.equal("completed", r.status)
      assert.are.equal(id, r.runId)
      assert.are.equal("products/list", r.result.apiName)
      assert.are.equal("shoes", r.result.parameters.category)
      assert.is_nil(r.error)
      for _, st in ipairs(seen) do
        assert.is_truthy(st == "pending" or st == "started" or st == "completed", st)
      end
      assert.are.equal(1, emu.api_run_view(id).attempts)
    end)

    it("a completed run lists the payloads its parameters' extendedPayloads name", function()
      local id = start(emu, { api = "ext", parameters = { extendedPayloads = {
        { api = "details/a", parameters = { n = 1 } }, { api = "details/b" }, { nope = true } } } })
      local r = wait_run(emu, id)
      assert.are.equal(2, #r.extendedPayloads)
      assert.are.equal("details/a", r.extendedPayloads[1].api)
      assert.are.same({ n = 1 }, r.extendedPayloads[1].parameters)
      assert.are.equal(21, #r.extendedPayloads[1].runId)
      assert.are_not.equal(r.extendedPayloads[1].runId, r.extendedPayloads[2].runId)
      assert.are.equal("api,runId", keys(r.extendedPayloads[2]))
      assert.is_nil(wait_run(emu, (start(emu, { api = "plain", parameters = {} }))).extendedPayloads)
    end)

    it("failure names fail every attempt of retry.maximumAttempts; flaky:N recovers within them", function()
      local id = start(emu, { api = "fail/x", parameters = {}, retry = { maximumAttempts = 3 } })
      local r = wait_run(emu, id)
      assert.are.equal("failed", r.status)
      assert.are.equal("api-attempts-failed", r.error.code)
      assert.are.equal("execution", r.error.category)
      assert.is_false(r.error.retirable)
      assert.is_string(r.message)
      assert.are.equal(3, emu.api_run_view(id).attempts)

      id = start(emu, { api = "broken/api", parameters = {} })   -- --fail-api; no retry: one attempt
      assert.are.equal("failed", wait_run(emu, id).status)
      assert.are.equal(1, emu.api_run_view(id).attempts)

      id = start(emu, { api = "flaky:2/x", parameters = {}, retry = { maximumAttempts = 3 } })
      assert.are.equal("completed", wait_run(emu, id).status)
      assert.are.equal(3, emu.api_run_view(id).attempts)

      id = start(emu, { api = "flaky:2/y", parameters = {}, retry = {} })   -- {}: the SDK's default, 3
      assert.are.equal("completed", wait_run(emu, id).status)
      id = start(emu, { api = "flaky:1/z", parameters = {} })
      assert.are.equal("failed", wait_run(emu, id).status)
    end)

    it("delivers to a webhook sink once, with the run's id and no job; skipOnFail skips a failed run", function()
      local id = start(emu, { api = "hook/one", parameters = { q = 1 },
                              sink = { type = "webhook", url = emu.base .. "/_receiver/ra-hook",
                                       headers = { ["X-Token"] = "t0k" } } })
      wait_run(emu, id)
      local recs
      for _ = 1, 200 do
        recs = receiver(emu, "ra-hook")
        if #recs > 0 and emu.api_run_view(id).deliveries.delivered == 1 then break end
        emulator.sleep(0.03)
      end
      assert.are.equal(1, #recs)
      assert.are.equal("t0k", recs[1].headers["x-token"])
      local b = cjson.decode(recs[1].body)
      assert.are.equal(id, b.apiInfo.runId)
      assert.are.equal("hook/one", b.apiInfo.name)
      assert.are.equal("completed", b.apiInfo.result.status)
      assert.is_nil(b.projectJob)
      assert.are.equal("ra", b.project.name)

      id = start(emu, { api = "fail/hook", parameters = {},
                        sink = { type = "webhook", url = emu.base .. "/_receiver/ra-skip", skipOnFail = true } })
      wait_run(emu, id)
      local v
      for _ = 1, 200 do
        v = emu.api_run_view(id)
        if v.deliveries.skipped == 1 then break end
        emulator.sleep(0.03)
      end
      assert.are.equal(1, v.deliveries.skipped)
      assert.are.equal(0, #receiver(emu, "ra-skip"))
    end)

    it("writes an S3 sink's result under <bucket>/<prefix>runs/<runId>/", function()
      local id = start(emu, { api = "s3/one", parameters = {},
                              sink = { type = "s3", bucket = "bk", region = "eu-west-1", accessKeyId = "AK",
                                       secretAccessKey = "SK", prefix = "pre/" } })
      wait_run(emu, id)
      local files = ""
      for _ = 1, 200 do
        files = emulator.capture("ls " .. emulator.quote(s3dir .. "/bk/pre/runs/" .. id) .. " 2>/dev/null")
        if files ~= "" then break end
        emulator.sleep(0.03)
      end
      assert.matches("%.json", files)
    end)

    it("refuses bodies the newest schema refuses, and self-targeting sinks, with details.field", function()
      local cases = {
        { { api = "x", parameters = { 1, 2 } }, "parameters" },
        { { parameters = {} }, "api" },
        { { api = "x", parameters = {}, requestTimeout = 1.5 }, "requestTimeout" },
        { { api = "x", parameters = {}, sink = { type = "ftp" } }, "sink" },
        { { api = "x", parameters = {}, sink = { type = "webhook", url = emu.url .. "/ws-local/projects/ra/run/start" } },
          "sink.url" },
      }
      local before = count_starts(emu).started
      for _, c in ipairs(cases) do
        local res = emu.call("POST", P .. "/run/start", c[1])
        assert.are.equal(400, res.status, res.body)
        assert.matches("^" .. c[2]:gsub("%.", "%%."), res.json.details.field, nil)
      end
      assert.are.equal(400, emu.call("POST", P .. "/run/start", "[1]").status)
      assert.are.equal(before, count_starts(emu).started)
    end)

    it("answers 404 for an unknown run id, and for a run of another project", function()
      local id = start(emu, { api = "a", parameters = {} })
      assert.are.equal(404, emu.call("GET", P .. "/run/nope/result").status)
      assert.are.equal(404, emu.call("GET", "/ws-local/projects/other/run/" .. id .. "/result").status)
      assert.are.equal(200, emu.call("GET", P .. "/run/" .. id .. "/result").status)
    end)

    it("a run canceled through /_emulator/api-runs/ID/cancel ends canceled with cancelled-user-action", function()
      -- fails and retries for a long time: still going when the cancel comes
      local id = start(emu, { api = "flaky:100000/slow", parameters = {}, retry = { maximumAttempts = 1000 } })
      local res = emu.control("POST", "/_emulator/api-runs/" .. id .. "/cancel")
      assert.are.equal(200, res.status, res.body)
      local r = wait_run(emu, id)
      assert.are.equal("canceled", r.status)
      assert.are.equal("cancelled-user-action", r.reason.type)
      assert.is_string(r.reason.message)
      assert.is_string(r.message)
      assert.is_nil(r.error)
      assert.are.equal(409, emu.control("POST", "/_emulator/api-runs/" .. id .. "/cancel").status)
      assert.are.equal(404, emu.control("POST", "/_emulator/api-runs/nope/cancel").status)
    end)

    it("a run's credentials session must exist; an EXPIRED one is re-created or the run is canceled", function()
      local res = emu.call("POST", P .. "/run/start", { api = "a", parameters = {}, authSession = { id = "ghost" } })
      assert.are.equal(400, res.status)
      assert.are.equal("authSession.id", res.json.details.field)

      create_session(emu, { id = "stale-run", parameters = { u = "x" } })
      local v = emu.call("POST", P .. "/auth-sessions/stale-run/validate/start", { autoRecreate = false })
      wait_op(emu, P .. "/auth-sessions/stale-run/validate/" .. v.json.operationId .. "/result")
      assert.are.equal("EXPIRED", emu.call("GET", P .. "/auth-sessions/stale-run").json.status)

      local id = start(emu, { api = "a", parameters = {}, authSession = { id = "stale-run", autoRecreate = false } })
      local r = wait_run(emu, id)
      assert.are.equal("canceled", r.status)
      assert.are.equal("auth-session-validate-dependency-failed", r.reason.type)
      assert.are.equal(0, emu.api_run_view(id).attempts)

      id = start(emu, { api = "a", parameters = {}, authSession = { id = "stale-run" } })   -- autoRecreate: true
      assert.are.equal("completed", wait_run(emu, id).status)
      assert.are.equal("READY", emu.call("GET", P .. "/auth-sessions/stale-run").json.status)
    end)

    it("a runtime auth session names (or makes) a RUNTIME session", function()
      local id = start(emu, { api = "a", parameters = {}, authSession = { id = "rt-1", runtimeInput = { user = "u" } } })
      assert.are.equal("completed", wait_run(emu, id).status)
      local s = emu.call("GET", P .. "/auth-sessions/rt-1").json
      assert.are.same({ id = "rt-1", type = "RUNTIME", status = "READY" }, s)
      -- ids are kept only up to 200 characters
      local res = emu.call("POST", P .. "/run/start", { api = "a", parameters = {},
                                                         authSession = { id = ("x"):rep(201), runtimeInput = {} } })
      assert.are.equal(400, res.status)
      assert.are.equal("authSession.id", res.json.details.field)
      res = emu.call("POST", P .. "/auth-sessions/create", { id = ("x"):rep(201), parameters = {} })
      assert.are.equal(400, res.status)
      assert.are.equal("id", res.json.details.field)
    end)

    it("a start is made once: N starts, N runs, one attempt each; a faulted start starts nothing", function()
      local before = count_starts(emu).started
      local ids = {}
      for i = 1, 5 do ids[start(emu, { api = "once/" .. i, parameters = {} })] = true end
      local n = 0
      for id in pairs(ids) do
        n = n + 1
        wait_run(emu, id)
        assert.are.equal(1, emu.api_run_view(id).attempts)
      end
      assert.are.equal(5, n)
      emu.fault{ status = 503, count = 1, match = "/run/start" }
      assert.are.equal(503, emu.call("POST", P .. "/run/start", { api = "x", parameters = {} }).status)
      emu.fault{ kind = "drop", count = 1, match = "/run/start" }
      assert.are_not.equal(201, emu.call("POST", P .. "/run/start", { api = "x", parameters = {} }).status)
      assert.are.equal(before + 5, count_starts(emu).started)
    end)

    it("create: started, the session PENDING, then done and READY; a server-picked id; 409 on a taken id", function()
      local res = emu.call("POST", P .. "/auth-sessions/create", { id = "s-one", parameters = { u = "a", p = "b" } })
      assert.are.equal(201, res.status)
      assert.are.equal("operationId,status", keys(res.json))
      assert.are.equal("started", res.json.status)
      local r, seen = wait_op(emu, P .. "/auth-sessions/create/" .. res.json.operationId .. "/result")
      assert.are.same({ status = "done", authSessionId = "s-one" }, r)
      for _, st in ipairs(seen) do
        assert.is_truthy(st == "pending" or st == "in_progress" or st == "done", st)
      end
      assert.are.same({ id = "s-one", type = "CREDENTIALS", status = "READY" }, emu.call("GET", P .. "/auth-sessions/s-one").json)

      r = create_session(emu, { parameters = {} })
      assert.are.equal("done", r.status)
      assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", r.authSessionId)
      assert.are.equal("READY", emu.call("GET", P .. "/auth-sessions/" .. r.authSessionId).json.status)

      assert.are.equal(409, emu.call("POST", P .. "/auth-sessions/create", { id = "s-one", parameters = {} }).status)
      local list = emu.call("GET", P .. "/auth-sessions").json
      local found = false
      for _, s in ipairs(list) do
        assert.are.equal("id,status,type", keys(s))
        if s.id == "s-one" then found = true end
      end
      assert.is_true(found)
      assert.are.same({}, emu.call("GET", "/ws-local/projects/empty-project/auth-sessions").json)
      assert.are.equal("[]", emu.call("GET", "/ws-local/projects/empty-project/auth-sessions").body)
    end)

    it("refuses create, update and validate bodies the schemas refuse", function()
      local res = emu.call("POST", P .. "/auth-sessions/create", { id = "bad" })
      assert.are.equal(400, res.status)
      assert.are.equal("parameters", res.json.details.field)
      res = emu.call("POST", P .. "/auth-sessions/create", { parameters = {}, checkAttempts = 1.5 })
      assert.are.equal(400, res.status)
      assert.are.equal("checkAttempts", res.json.details.field)
      create_session(emu, { id = "s-val", parameters = {} })
      res = emu.call("POST", P .. "/auth-sessions/s-val/validate/start", { requestTimeout = "x" })
      assert.are.equal(400, res.status)
      assert.are.equal("requestTimeout", res.json.details.field)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/bad").status)
    end)

    it("update and validate: started / pending, results under the session's path, 404s", function()
      create_session(emu, { id = "s-up", parameters = { p = "old" } })
      local res = emu.call("POST", P .. "/auth-sessions/s-up/update", { parameters = { p = "new" } })
      assert.are.equal(201, res.status)
      assert.are.equal("started", res.json.status)
      local op = res.json.operationId
      assert.are.same({ status = "done", authSessionId = "s-up" },
                      (wait_op(emu, P .. "/auth-sessions/s-up/update/" .. op .. "/result")))
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/other/update/" .. op .. "/result").status)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/s-up/validate/" .. op .. "/result").status)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/create/" .. op .. "/result").status)

      res = emu.call("POST", P .. "/auth-sessions/s-up/validate/start", {})
      assert.are.equal(201, res.status)
      assert.are.equal("pending", res.json.status)
      assert.are.same({ status = "done", authSessionId = "s-up" },
                      (wait_op(emu, P .. "/auth-sessions/s-up/validate/" .. res.json.operationId .. "/result")))

      assert.are.equal(404, emu.call("POST", P .. "/auth-sessions/nope/update", { parameters = {} }).status)
      assert.are.equal(404, emu.call("POST", P .. "/auth-sessions/nope/validate/start", {}).status)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/create/nope/result").status)
    end)

    it("validate of a stale session: EXPIRED without autoRecreate, re-created with it", function()
      create_session(emu, { id = "stale-v", parameters = {} })
      local res = emu.call("POST", P .. "/auth-sessions/stale-v/validate/start", { autoRecreate = false })
      local r = wait_op(emu, P .. "/auth-sessions/stale-v/validate/" .. res.json.operationId .. "/result")
      assert.are.equal("failed", r.status)
      assert.are.equal("check-attempts-failed", r.error.code)
      assert.are.equal("auth", r.error.category)
      assert.is_string(r.message)
      assert.are.equal("EXPIRED", emu.call("GET", P .. "/auth-sessions/stale-v").json.status)
      res = emu.call("POST", P .. "/auth-sessions/stale-v/validate/start", { autoRecreate = true })
      r = wait_op(emu, P .. "/auth-sessions/stale-v/validate/" .. res.json.operationId .. "/result")
      assert.are.same({ status = "done", authSessionId = "stale-v" }, r)
      assert.are.equal("READY", emu.call("GET", P .. "/auth-sessions/stale-v").json.status)
    end)

    it("fail markers: a fail... id or parameters.fail = true fails create (no session) and update (EXPIRED)", function()
      local r = create_session(emu, { id = "fail-1", parameters = {} })
      assert.are.equal("failed", r.status)
      assert.are.equal("create-attempts-failed", r.error.code)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/fail-1").status)
      r = create_session(emu, { id = "marked", parameters = { fail = true } })
      assert.are.equal("failed", r.status)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/marked").status)

      create_session(emu, { id = "s-uf", parameters = {} })
      local res = emu.call("POST", P .. "/auth-sessions/s-uf/update", { parameters = { fail = true } })
      r = wait_op(emu, P .. "/auth-sessions/s-uf/update/" .. res.json.operationId .. "/result")
      assert.are.equal("failed", r.status)
      assert.are.equal("EXPIRED", emu.call("GET", P .. "/auth-sessions/s-uf").json.status)
      -- a run with it cannot re-create it: canceled
      local id = start(emu, { api = "a", parameters = {}, authSession = { id = "s-uf" } })
      assert.are.equal("canceled", wait_run(emu, id).status)
      -- an update without the marker repairs it
      res = emu.call("POST", P .. "/auth-sessions/s-uf/update", { parameters = {} })
      assert.are.equal("done", wait_op(emu, P .. "/auth-sessions/s-uf/update/" .. res.json.operationId .. "/result").status)
      assert.are.equal("READY", emu.call("GET", P .. "/auth-sessions/s-uf").json.status)
    end)

    it("delete answers 204, then 404", function()
      create_session(emu, { id = "s-del", parameters = {} })
      local res = emu.call("DELETE", P .. "/auth-sessions/s-del")
      assert.are.equal(204, res.status)
      assert.are.equal("", res.body)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/s-del").status)
      assert.are.equal(404, emu.call("DELETE", P .. "/auth-sessions/s-del").status)
    end)

    it("a job's auth_session.id must name a session of its project (create and update)", function()
      local job = { id = "j-as", payload = { { apiName = "a", parameters = {} } }, configuration = {},
                    auth_session = { id = "ghost" } }
      local res = emu.call("POST", P .. "/jobs", job)
      assert.are.equal(400, res.status)
      assert.are.equal("auth_session.id", res.json.details.field)
      create_session(emu, { id = "s-job", parameters = {} })
      job.auth_session.id = "s-job"
      assert.are.equal(201, emu.call("POST", P .. "/jobs", job).status)
      -- another project's session does not count
      assert.are.equal(400, emu.call("POST", "/ws-local/projects/other/jobs", job).status)
      local up = { payload = job.payload, configuration = {}, auth_session = { id = "ghost" } }
      res = emu.call("PUT", P .. "/jobs/j-as", up)
      assert.are.equal(400, res.status)
      assert.are.equal("auth_session.id", res.json.details.field)
      up.auth_session.id = "s-job"
      assert.are.equal(200, emu.call("PUT", P .. "/jobs/j-as", up).status)
    end)

    it("v0.3.12's own paths are not served, and its otp marker is an ordinary parameter", function()
      assert.are.equal(405, emu.call("POST", P .. "/auth-sessions/update", { id = "s-one" }).status)
      assert.are.equal(404, emu.call("POST", P .. "/run", { api = "a", parameters = {} }).status)
      assert.are.equal(404, emu.call("POST", P .. "/auth-sessions/create/x/resume", { input = "1", info_request_id = "i" }).status)
      assert.are.equal(404, emu.call("POST", P .. "/auth-sessions/recorder/start", {}).status)
      assert.are.equal("done", create_session(emu, { id = "n-otp", parameters = { otp = true } }).status)
    end)
  end)

  describe("newest mode, slow operations", function()
    local emu
    setup(function()
      emu = emulator.pinned("newest").start{ "--api-latency-ms", "600", "--auth-op-ms", "1600", "--time-scale", "1" }
    end)
    teardown(function() emu.stop() end)

    it("an operation is pending, then in_progress with a runId, then done", function()
      local res = emu.call("POST", P .. "/auth-sessions/create", { id = "slow", parameters = {} })
      local path = P .. "/auth-sessions/create/" .. res.json.operationId .. "/result"
      local first = emu.call("GET", path).json
      assert.are.same({ status = "pending" }, first)
      local mid = emu.poll(path, function(j) return j.status ~= "pending" end).json
      assert.are.equal("in_progress", mid.status)
      assert.are.equal(21, #mid.runId)
      assert.are.equal("PENDING", emu.call("GET", P .. "/auth-sessions/slow").json.status)
      assert.are.same({ status = "done", authSessionId = "slow" }, (wait_op(emu, path)))
      assert.are.equal("READY", emu.call("GET", P .. "/auth-sessions/slow").json.status)
    end)

    it("deleting a session cancels its running operation (cancelled-user-action)", function()
      local res = emu.call("POST", P .. "/auth-sessions/create", { id = "doomed", parameters = {} })
      local path = P .. "/auth-sessions/create/" .. res.json.operationId .. "/result"
      assert.are.equal(204, emu.call("DELETE", P .. "/auth-sessions/doomed").status)
      local r = emu.call("GET", path).json
      assert.are.equal("canceled", r.status)
      assert.are.equal("cancelled-user-action", r.reason.type)
      assert.is_string(r.message)
    end)

    it("a run is started while its attempt runs", function()
      local id = start(emu, { api = "slow/one", parameters = {} })
      local r, seen = wait_run(emu, id)
      assert.are.equal("completed", r.status)
      local started = false
      for _, st in ipairs(seen) do started = started or st == "started" end
      assert.is_true(started, table.concat(seen, ","))
    end)
  end)

  describe("v0.3.12 mode", function()
    local emu
    setup(function()
      emu = emulator.pinned("v0.3.12").start{ "--api-latency-ms", "20", "--time-scale", "0.01", "--auth-op-ms", "4000" }
    end)
    teardown(function() emu.stop() end)

    it("start takes v0.3.12 bodies (array parameters) and answers {status, runId}", function()
      local id, res = start(emu, { api = "list/v", parameters = { 1, 2 } })
      assert.matches('^{"status":"pending","runId":', res.body)
      local r = wait_run(emu, id)
      assert.are.equal("result,runId,status,statusCode", keys(r))
      assert.are.equal(200, r.statusCode)
      assert.are.same({ 1, 2 }, r.result.parameters)

      id = start(emu, { api = "fail/v", parameters = {}, retry = { maximumAttempts = 2 } })
      r = wait_run(emu, id)
      assert.are.equal("error,message,runId,status,statusCode", keys(r))
      assert.are.equal("failed", r.status)
      assert.are.equal("string", type(r.error))
      assert.are.equal(2, emu.api_run_view(id).attempts)

      local bad = emu.call("POST", P .. "/run/start", { api = "x", parameters = "text" })
      assert.are.equal(400, bad.status)
      assert.are.equal("parameters", bad.json.details.field)
      assert.are.equal(400, emu.call("POST", P .. "/run/start", { parameters = {} }).status)
    end)

    it("has no started or canceled status: a canceled run reads as failed", function()
      local id = start(emu, { api = "flaky:100000/v", parameters = {}, retry = { maximumAttempts = 1000 } })
      local r = emu.call("GET", P .. "/run/" .. id .. "/result").json
      assert.are.same({ status = "pending", runId = id }, r)
      assert.are.equal(200, emu.control("POST", "/_emulator/api-runs/" .. id .. "/cancel").status)
      r = wait_run(emu, id)
      assert.are.equal("failed", r.status)
      assert.are.equal("cancelled-user-action", r.error)
    end)

    it("the synchronous run answers 200 when the run has finished", function()
      local res = emu.call("POST", P .. "/run", { api = "sync/one", parameters = { a = 1 } })
      assert.are.equal(200, res.status, res.body)
      assert.are.equal("completed", res.json.status)
      assert.are.equal(200, res.json.statusCode)
      assert.are.equal(1, res.json.result.parameters.a)
      res = emu.call("POST", P .. "/run", { api = "fail/sync", parameters = {} })
      assert.are.equal(200, res.status)
      assert.are.equal("failed", res.json.status)
    end)

    it("sessions have no type; create and update (id in the body) end done; no in_progress", function()
      local res = emu.call("POST", P .. "/auth-sessions/create", { id = "v-one", parameters = { 1 } })
      assert.are.equal(201, res.status)
      assert.are.equal("started", res.json.status)
      local r, seen = wait_op(emu, P .. "/auth-sessions/create/" .. res.json.operationId .. "/result")
      assert.are.same({ status = "done", authSessionId = "v-one" }, r)
      for _, st in ipairs(seen) do assert.is_truthy(st == "pending" or st == "done", st) end
      assert.are.same({ id = "v-one", status = "READY" }, emu.call("GET", P .. "/auth-sessions/v-one").json)
      assert.are.equal("id,status", keys(emu.call("GET", P .. "/auth-sessions").json[1]))

      res = emu.call("POST", P .. "/auth-sessions/update", { id = "v-one", parameters = {} })
      assert.are.equal(201, res.status)
      assert.are.same({ status = "done", authSessionId = "v-one" },
                      (wait_op(emu, P .. "/auth-sessions/update/" .. res.json.operationId .. "/result")))
      res = emu.call("POST", P .. "/auth-sessions/update", { parameters = {} })
      assert.are.equal(400, res.status)
      assert.are.equal("id", res.json.details.field)
      assert.are.equal(404, emu.call("POST", P .. "/auth-sessions/update", { id = "nope" }).status)

      r = create_session(emu, { id = "fail-v" })
      assert.are.same({ status = "failed", error = "create-attempts-failed", message = r.message }, r)
    end)

    it("requested_more_info (otp, multiple choice) and resume; a wrong answer fails", function()
      local res = emu.call("POST", P .. "/auth-sessions/create", { id = "v-otp", parameters = { otp = true } })
      local op = res.json.operationId
      local path = P .. "/auth-sessions/create/" .. op .. "/result"
      local r = emu.poll(path, function(j) return j.status ~= "pending" end).json
      assert.are.equal("requested_more_info", r.status)
      assert.are.same({ requestType = "otp", action = "request_more_info", messageToUser = r.details.messageToUser },
                      r.details)
      assert.is_string(r.details.messageToUser)
      assert.are.equal("PENDING", emu.call("GET", P .. "/auth-sessions/v-otp").json.status)
      local resume = P .. "/auth-sessions/create/" .. op .. "/resume"
      local bad = emu.call("POST", resume, { input = "123456", info_request_id = "other" })
      assert.are.equal(400, bad.status)
      assert.are.equal("info_request_id", bad.json.details.field)
      assert.are.equal(400, emu.call("POST", resume, { info_request_id = r.id }).status)
      assert.are.equal(404, emu.call("POST", P .. "/auth-sessions/update/" .. op .. "/resume",
                                     { input = "1", info_request_id = r.id }).status)
      res = emu.call("POST", resume, { input = "123456", info_request_id = r.id })
      assert.are.equal(202, res.status)
      assert.are.same({ status = "resumed" }, res.json)
      assert.are.equal(409, emu.call("POST", resume, { input = "123456", info_request_id = r.id }).status)
      assert.are.same({ status = "done", authSessionId = "v-otp" }, (wait_op(emu, path)))

      res = emu.call("POST", P .. "/auth-sessions/update", { id = "v-otp", parameters = { choice = true } })
      op = res.json.operationId
      path = P .. "/auth-sessions/update/" .. op .. "/result"
      r = emu.poll(path, function(j) return j.status ~= "pending" end).json
      assert.are.equal("requested_more_info", r.status)
      assert.are.equal("multiple_choice", r.details.requestType)
      assert.are.same({ "email", "sms" }, r.details.choices)
      res = emu.call("POST", P .. "/auth-sessions/update/" .. op .. "/resume", { input = "wrong", info_request_id = r.id })
      assert.are.equal(202, res.status)
      r = wait_op(emu, path)
      assert.are.equal("failed", r.status)
      assert.are.equal("EXPIRED", emu.call("GET", P .. "/auth-sessions/v-otp").json.status)
    end)

    it("the recorder start makes a session that is READY after the recording", function()
      local res = emu.call("POST", P .. "/auth-sessions/recorder/start", { authSessionId = "v-rec" })
      assert.are.equal(201, res.status, res.body)
      assert.are.equal("recorder_url", keys(res.json))
      assert.matches("^http://127%.0%.0%.1:%d+/", res.json.recorder_url)
      local s
      for _ = 1, 300 do
        s = emu.call("GET", P .. "/auth-sessions/v-rec").json
        if s.status == "READY" then break end
        emulator.sleep(0.02)
      end
      assert.are.same({ id = "v-rec", status = "READY" }, s)
      res = emu.call("POST", P .. "/auth-sessions/recorder/start", {})
      assert.are.equal(201, res.status)
      assert.are.equal(400, emu.call("POST", P .. "/auth-sessions/recorder/start", { authSessionId = 5 }).status)
    end)

    it("does not check a job's or a run's auth session", function()
      local job = { id = "j-v", payload = { { apiName = "a", parameters = {} } },
                    configuration = { runMode = "Order-Irrelevant" }, authSession = { id = "ghost" } }
      assert.are.equal(201, emu.call("POST", P .. "/jobs", job).status)
      local id = start(emu, { api = "a", parameters = {}, authSession = { id = "ghost" } })
      assert.are.equal("completed", wait_run(emu, id).status)
    end)
  end)

  describe("bounds", function()
    local emu
    setup(function()
      emu = emulator.pinned("newest").start{ "--api-latency-ms", "10", "--time-scale", "0.01", "--auth-op-ms", "2000",
                                             "--max-api-runs", "3", "--max-auth-sessions", "3" }
    end)
    teardown(function() emu.stop() end)

    it("runs: 429 while every kept run is going; then the oldest finished run goes", function()
      local slow = {}
      for i = 1, 3 do
        slow[i] = start(emu, { api = "flaky:100000/b" .. i, parameters = {}, retry = { maximumAttempts = 1000 } })
      end
      local res = emu.call("POST", P .. "/run/start", { api = "x", parameters = {} })
      assert.are.equal(429, res.status)
      assert.are.equal("1", res.headers["retry-after"])
      for i = 1, 3 do emu.control("POST", "/_emulator/api-runs/" .. slow[i] .. "/cancel") end
      for i = 1, 3 do wait_run(emu, slow[i]) end
      -- a canceled run's attempt in flight ends first: until then it is kept
      local id
      for _ = 1, 100 do
        res = emu.call("POST", P .. "/run/start", { api = "x", parameters = {} })
        if res.status ~= 429 then break end
        emulator.sleep(0.02)
      end
      assert.are.equal(201, res.status, res.body)
      id = res.json.runId
      assert.are.equal(404, emu.call("GET", P .. "/run/" .. slow[1] .. "/result").status)
      assert.are.equal(200, emu.call("GET", P .. "/run/" .. slow[3] .. "/result").status)
      assert.are.equal(200, emu.call("GET", P .. "/run/" .. id .. "/result").status)
      assert.are.equal(3, count_starts(emu).runs)
    end)

    it("sessions: a create beyond the bound gets 507; operations drop the oldest finished one", function()
      local ops = {}
      for i = 1, 3 do
        local _, started = create_session(emu, { id = "b" .. i, parameters = {} })
        ops[i] = started.operationId
      end
      assert.are.equal(507, emu.call("POST", P .. "/auth-sessions/create", { id = "b4", parameters = {} }).status)
      assert.are.equal(204, emu.call("DELETE", P .. "/auth-sessions/b3").status)
      local r = create_session(emu, { id = "b5", parameters = {} })   -- a fourth operation
      assert.are.equal("done", r.status)
      assert.are.equal(404, emu.call("GET", P .. "/auth-sessions/create/" .. ops[1] .. "/result").status)
      assert.are.equal(200, emu.call("GET", P .. "/auth-sessions/create/" .. ops[3] .. "/result").status)
      local view = cjson.decode(emu.control("GET", "/_emulator/auth-sessions").body)
      assert.are.equal(3, view.sessions)
      assert.are.equal(3, view.operations)
    end)

    it("operations: 429 with Retry-After while every kept operation is running", function()
      local e = emulator.pinned("newest").start{ "--auth-op-ms", "600000", "--max-auth-sessions", "2" }
      for i = 1, 2 do
        assert.are.equal(201, e.call("POST", P .. "/auth-sessions/create", { id = "h" .. i, parameters = {} }).status)
      end
      local res = e.call("POST", P .. "/auth-sessions/h1/validate/start", {})
      assert.are.equal(429, res.status)
      assert.are.equal("1", res.headers["retry-after"])
      assert.are.equal(507, e.call("POST", P .. "/auth-sessions/create", { id = "h3", parameters = {} }).status)
      -- deleting cancels an operation, which then may go
      assert.are.equal(204, e.call("DELETE", P .. "/auth-sessions/h2").status)
      assert.are.equal(201, e.call("POST", P .. "/auth-sessions/h1/validate/start", {}).status)
      e.stop()
    end)
  end)
end)
