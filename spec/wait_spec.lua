-- Issue 14, point 1: waiting for runs.  client.jobs.runs:wait polls a run
-- (runs:get, or the runs list of v0.3.12) with a growing interval until it
-- finishes, within a timeout as a whole; client.jobs:trigger(p, j, {wait =
-- true}) triggers and waits.  Against the emulator, whose runs take 1 s
-- (--api-latency-ms 1000) so a wait sees them pending first.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"
local clock = require "intuned.clock"

local P = "wait-spec"

describe("waiting for runs", function()
  local emu, client

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "1000", "--time-scale", "0.001" }
    client = intuned.client{ api_key = emu.key, workspace_id = "ws-local", server_url = emu.url }
    assert(client.jobs:create(P, { id = "finishes", payload = { { apiName = "scrape" } },
                                   configuration = { runMode = "Order-Irrelevant" } }))
    assert(client.jobs:create(P, { id = "fails-always", payload = { { apiName = "fail-this" } },
                                   configuration = { runMode = "Order-Irrelevant" } }))
  end)
  teardown(function()
    if client then client:close() end
    emulator.stop_all()
  end)
  after_each(function() emu.control("DELETE", "/_emulator/faults") end)

  local function trigger(job)
    local t = assert(client.jobs:trigger(P, job))
    assert.is_string(t.jobRunId)
    return t.jobRunId
  end

  it("returns the finished run, after polls that saw it pending", function()
    local run_id = trigger("finishes")
    local seen = {}
    local t0 = clock.now()
    local run, err, extra = client.jobs.runs:wait(P, "finishes", run_id, {
      timeout = 20, poll = 0.05, on_poll = function(r, elapsed) seen[#seen + 1] = { r.status, elapsed } end })
    local took = clock.now() - t0
    assert.is_not_nil(run, tostring(err))
    assert.equals("JobRun", intuned.type(run))
    assert.equals(run_id, run.id)
    assert.equals("COMPLETED", run.status)
    assert.is_nil(err) -- only the run: `if err then` reads a success right
    assert.is_nil(extra)
    assert.truthy(#seen >= 1, "no poll saw the run pending")
    assert.equals("PENDING", seen[1][1])
    assert.truthy(took >= 0.5 and took < 15, ("the wait took %.2f s"):format(took))
  end)

  it("returns a failed run as a finished run (status FAILED), not an error", function()
    local run_id = trigger("fails-always")
    local run, err = client.jobs.runs:wait(P, "fails-always", run_id, { timeout = 20, poll = 0.05 })
    assert.is_not_nil(run, tostring(err))
    assert.equals("FAILED", run.status)
    assert.is_nil(require("intuned.workflow").SUCCEEDED[run.status])
    assert.is_true(require("intuned.workflow").FINISHED[run.status])
  end)

  it("gives up after the timeout with an error of kind timeout naming the run", function()
    local run_id = trigger("finishes")
    local t0 = clock.now()
    local run, err = client.jobs.runs:wait(P, "finishes", run_id, { timeout = 0.3, poll = 0.05 })
    local took = clock.now() - t0
    assert.is_nil(run)
    assert.is_true(intuned.is_error(err))
    assert.equals("timeout", err.kind)
    assert.equals(run_id, err.run_id)
    assert.equals("PENDING", err.run.status)
    assert.truthy(err.message:find(run_id, 1, true))
    assert.truthy(took >= 0.29 and took < 2.5, ("the wait took %.2f s"):format(took))
  end)

  it("polls with a growing interval, capped by max_poll", function()
    local run_id = trigger("finishes")
    local times = {}
    local run = client.jobs.runs:wait(P, "finishes", run_id, {
      timeout = 0.9, poll = 0.04, backoff = 2, max_poll = 0.16,
      on_poll = function(_, elapsed) times[#times + 1] = elapsed end })
    assert.is_nil(run) -- the run takes 1 s
    -- sleeps of 0.04, 0.08, 0.16, 0.16, ...: the gaps grow, then stay
    assert.truthy(#times >= 4 and #times <= 9, "polls: " .. #times)
    for i = 2, #times do
      local gap = times[i] - times[i - 1]
      -- (the last sleep ends at the deadline)
      local want = math.min(0.04 * 2 ^ (i - 2), 0.16, 0.9 - times[i - 1])
      assert.truthy(gap >= want * 0.95, ("gap %d was %.3f s, at least %.3f s expected"):format(i, gap, want))
    end
  end)

  it("keeps polling through transient failures of a poll", function()
    local run_id = trigger("finishes")
    emu.fault{ status = 500, count = 2, match = "/runs/" .. run_id, method = "GET" }
    local errors = 0
    local run, err = client.jobs.runs:wait(P, "finishes", run_id, {
      timeout = 20, poll = 0.05, call = { retry = false },
      on_poll = function(_, _, e) if e then errors = errors + 1 end end })
    assert.is_not_nil(run, tostring(err))
    assert.equals("COMPLETED", run.status)
    assert.equals(2, errors)
  end)

  it("ends at once on a failure that another poll would not change", function()
    local t0 = clock.now()
    local run, err = client.jobs.runs:wait(P, "no-such-job", "run-x", { timeout = 20, poll = 0.05 })
    assert.is_nil(run)
    assert.equals("not_found", err.kind)
    assert.truthy(clock.now() - t0 < 5)
  end)

  it("reads the run from the runs list where the server has no get-run (v0.3.12)", function()
    local run_id = trigger("finishes")
    -- a 404 for GET .../runs/RUN only: as a v0.3.12 server answers
    emu.fault{ status = 404, match = "/runs/" .. run_id, method = "GET" }
    local run, err = client.jobs.runs:wait(P, "finishes", run_id, { timeout = 20, poll = 0.05 })
    assert.is_not_nil(run, tostring(err))
    assert.equals("COMPLETED", run.status)
    assert.equals(run_id, run.id)
    local via_list = client.jobs.runs:wait(P, "finishes", run_id, { via = "list" })
    assert.equals(run_id, via_list.id)
  end)

  it("trigger with wait = true returns the finished run", function()
    local run, err = client.jobs:trigger(P, "finishes", { wait = true })
    assert.is_not_nil(run, tostring(err))
    assert.equals("COMPLETED", run.status)
    local failed = assert(client.jobs:trigger(P, "fails-always", { wait = { timeout = 20, poll = 0.05 },
                                                                     timeout = 10 }))
    assert.equals("FAILED", failed.status)
    local none, terr = client.jobs:trigger(P, "finishes", { wait = { timeout = 0.2, poll = 0.05 } })
    assert.is_nil(none)
    assert.equals("timeout", terr.kind)
    assert.is_string(terr.run_id)
    -- wait = false: the plain trigger
    local t = assert(client.jobs:trigger(P, "finishes", { wait = false }))
    assert.equals("TriggerJob", intuned.type(t))
  end)

  it("refuses bad arguments and options (misuse raises)", function()
    assert.has_error(function() client.jobs.runs:wait(P, "finishes", 42) end,
      "bad argument #3 to 'wait' (string expected, got number)")
    assert.has_error(function() client.jobs.runs:wait(P, "finishes", "r", { timout = 1 }) end)
    assert.has_error(function() client.jobs.runs:wait(P, "finishes", "r", { timeout = -1 }) end)
    assert.has_error(function() client.jobs:trigger(P, "finishes", { wait = "yes" }) end)
    assert.has_error(function() client.jobs:trigger(P, "finishes", { wait = { polll = 1 } }) end)
    assert.has_error(function() client.jobs.runs.wait({}, P, "finishes", "r") end)
  end)

  it("sleeps with intuned.clock outside nginx (monotonic, fractions of a second)", function()
    local t0 = clock.now()
    clock.sleep(0.05)
    local d = clock.now() - t0
    assert.truthy(d >= 0.049 and d < 1, ("slept %.3f s"):format(d))
    assert.has_error(function() clock.sleep(-1) end)
  end)
end)
