-- Issue 14, point 6: jobs as code.  intuned.plan compares declared jobs with
-- a project's (create / update with a field-by-field diff, secrets as *** /
-- delete with prune); intuned.apply makes the project match, stops at the
-- first failure and says what was and was not done; a second apply of the
-- same definitions changes nothing.  Against the emulator, on a project
-- with existing, changed and missing jobs.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"
local planmod = require "intuned.plan"

local SECRET_OLD, SECRET_NEW = "Bearer old-secret-9f8e", "Bearer new-secret-1a2b"

local function job(id, extra)
  local t = { id = id, payload = { { apiName = "scrape", parameters = { url = "https://example.com/" .. id } } },
              configuration = { runMode = "Order-Irrelevant" } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function declared()
  return {
    job("unchanged-job"),
    job("changed-job", { configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 4 },
                         schedule = { intervals = { { every = "1h" } } },
                         sink = { type = "webhook", url = "http://127.0.0.1:9/_receiver/a",
                                  headers = { Authorization = SECRET_NEW } } }),
    job("missing-job"),
  }
end

describe("plan and apply", function()
  local emu, client
  local n = 0

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "1", "--no-scheduler" }
    client = intuned.client{ api_key = emu.key, workspace_id = "ws-local", server_url = emu.url, retry = false }
  end)
  teardown(function()
    if client then client:close() end
    emulator.stop_all()
  end)
  after_each(function() emu.control("DELETE", "/_emulator/faults") end)

  -- A fresh project holding: unchanged-job as declared, changed-job with
  -- other values, extra-job (not declared); missing-job is not there.
  local function project()
    n = n + 1
    local p = "plan-spec-" .. n
    assert(client.jobs:create(p, job("unchanged-job")))
    assert(client.jobs:create(p, job("changed-job", {
      configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2 },
      sink = { type = "webhook", url = "http://127.0.0.1:9/_receiver/a", headers = { Authorization = SECRET_OLD } },
    })))
    assert(client.jobs:create(p, job("extra-job")))
    return p
  end

  local function ids(list)
    local out = {}
    for i, x in ipairs(list) do out[i] = type(x) ~= "string" and x.id or x end
    table.sort(out)
    return out
  end

  it("plans the creates, the updates field by field (secrets as ***) and, with prune, the deletes", function()
    local p = project()
    local plan = assert(intuned.plan(client, p, declared()))
    assert.same({ "missing-job" }, ids(plan.create))
    assert.same({ "changed-job" }, ids(plan.update))
    assert.same({ "unchanged-job" }, plan.unchanged)
    assert.same({}, plan.delete)
    assert.same({ "extra-job" }, plan.unmanaged)
    assert.equals(2, plan.changes)
    local changes = {}
    for _, c in ipairs(plan.update[1].changes) do changes[c.path] = c end
    assert.same({ old = 2, new = 4, path = "configuration.maxConcurrentRequests" },
                changes["configuration.maxConcurrentRequests"])
    assert.is_nil(changes["schedule"].old)
    assert.same({ intervals = { { every = "1h" } } }, changes["schedule"].new)
    assert.is_true(changes["sink.headers.Authorization"].secret)
    local text = planmod.plan_text(plan)
    assert.truthy(text:find("+ create missing-job", 1, true), text)
    assert.truthy(text:find("~ update changed-job", 1, true), text)
    assert.truthy(text:find("configuration.maxConcurrentRequests: 2 -> 4", 1, true), text)
    assert.truthy(text:find("sink.headers.Authorization: *** -> ***", 1, true), text)
    assert.falsy(text:find("secret-", 1, true), "a secret in the plan text:\n" .. text)
    assert.falsy(text:find("- delete", 1, true))
    assert.truthy(text:find("extra-job", 1, true))
    -- nothing changed yet
    assert.equals(3, #assert(client.jobs:list(p)))
    local pruned = assert(intuned.plan(client, p, declared(), { prune = true }))
    assert.same({ "extra-job" }, ids(pruned.delete))
    assert.equals(3, pruned.changes)
    assert.truthy(planmod.plan_text(pruned):find("- delete extra-job", 1, true))
  end)

  it("applies the plan; a second apply of the same file reports no changes", function()
    local p = project()
    local report = assert(intuned.apply(client, p, declared(), { prune = true }))
    assert.equals(3, report.changes)
    assert.same({ { action = "create", id = "missing-job" }, { action = "update", id = "changed-job" },
                  { action = "delete", id = "extra-job" } }, report.done)
    assert.same({}, report.not_done)
    assert.is_nil(report.failed)
    local jobs = {}
    for _, j in ipairs(assert(client.jobs:list(p))) do jobs[j.id] = j end
    assert.same({ "changed-job", "missing-job", "unchanged-job" }, ids(assert(client.jobs:list(p))))
    assert.equals(4, jobs["changed-job"].configuration.maxConcurrentRequests)
    assert.equals(SECRET_NEW, jobs["changed-job"].sink.headers.Authorization)
    assert.equals("1h", jobs["changed-job"].schedule.intervals[1].every)
    local again = assert(intuned.apply(client, p, declared(), { prune = true }))
    assert.equals(0, again.changes)
    assert.same({}, again.done)
    assert.equals(0, again.plan.changes)
    assert.same({ "changed-job", "missing-job", "unchanged-job" }, ids(again.plan.unchanged))
    assert.truthy(planmod.report_text(again):find("No changes.", 1, true))
    assert.truthy(planmod.plan_text(again.plan):find("No changes.", 1, true))
  end)

  it("stops at a failure and reports what was done and what was not", function()
    local p = project()
    -- the update (PUT) fails: the create before it is done, the delete after it is not
    emu.fault{ status = 500, match = "/jobs/changed-job", method = "PUT" }
    local report, err, partial = intuned.apply(client, p, declared(), { prune = true })
    assert.is_nil(report)
    assert.equals("server", err.kind)
    assert.same({ { action = "create", id = "missing-job" } }, partial.done)
    assert.same({ action = "update", id = "changed-job" }, { action = partial.failed.action, id = partial.failed.id })
    assert.equals(err, partial.failed.error)
    assert.same({ { action = "delete", id = "extra-job" } }, partial.not_done)
    local text = planmod.report_text(partial)
    assert.truthy(text:find("+ created missing-job", 1, true), text)
    assert.truthy(text:find("! update changed-job failed", 1, true), text)
    assert.truthy(text:find(". delete extra-job not done", 1, true), text)
    assert.truthy(text:find("Stopped: 1 done, 1 failed, 1 not done.", 1, true), text)
    assert.truthy(client.jobs:get(p, "extra-job"))
    -- once the server is back, apply finishes the job
    emu.control("DELETE", "/_emulator/faults")
    local done = assert(intuned.apply(client, p, declared(), { prune = true }))
    assert.same({ { action = "update", id = "changed-job" }, { action = "delete", id = "extra-job" } }, done.done)
  end)

  it("accepts JobInput objects and either API version's Job shape", function()
    local p = project()
    local list = declared()
    list[1] = assert(intuned.JobInput.new(list[1]))
    -- the job as a newest-API server returns it (string state, server-owned fields)
    list[3] = { id = "missing-job", payload = { { apiName = "scrape",
                parameters = { url = "https://example.com/missing-job" } } },
                configuration = {}, state = "ACTIVE", created_at = "2025-01-01T00:00:00Z", project_id = "x" }
    local plan = assert(intuned.plan(client, p, list))
    assert.same({ "missing-job" }, ids(plan.create))
    assert.same({ "unchanged-job" }, plan.unchanged)
    assert(intuned.apply(client, p, list))
    assert.equals(0, assert(intuned.plan(client, p, list)).changes)
  end)

  it("refuses definitions that are not jobs, naming where, and sends nothing", function()
    local before = emu.api_requests()
    local _, e1 = intuned.plan(client, "plan-spec-bad", { job("a-good-job"), { payload = {} } })
    assert.equals("validation", e1.kind)
    assert.equals("jobs[2].id", e1.path)
    local _, e2 = intuned.plan(client, "plan-spec-bad", { job("same-id-job"), job("same-id-job") })
    assert.equals("validation", e2.kind)
    assert.truthy(e2.message:find("declared twice", 1, true))
    local _, e3 = intuned.plan(client, "plan-spec-bad", { job("a-good-job", { payload = { { parameters = {} } } }) })
    assert.equals("validation", e3.kind)
    assert.equals("jobs[1].payload[1].apiName", e3.path)
    local _, e4 = intuned.plan(client, "plan-spec-bad", { "not a job" })
    assert.equals("jobs[1]", e4.path)
    assert.equals(before, emu.api_requests())
    assert.has_error(function() intuned.plan(client, 42, {}) end)
    assert.has_error(function() intuned.apply(client, "p", {}, { prnue = true }) end)
    assert.has_error(function() intuned.plan({}, "p", {}) end)
  end)

  it("returns the list call's failure", function()
    local bad = intuned.client{ api_key = "wrong", workspace_id = "ws-local", server_url = emu.url, retry = false }
    local plan, err = intuned.plan(bad, "p", declared())
    assert.is_nil(plan)
    assert.equals("unauthorized", err.kind)
    bad:close()
  end)
end)
