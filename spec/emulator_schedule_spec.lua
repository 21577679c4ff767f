-- The emulator's scheduler (issue 13): scheduled runs fire when they fall
-- due, on the schedule engine's times (src/schedule.c, the same engine as
-- intuned.schedule and job.schedule:next_runs), pausing stops them, resuming
-- goes on from now, last_run_time is the time a run was due, and a
-- scheduled run's type is SCHEDULED (a triggered one MANUAL), as the
-- reference says.  --schedule-scale makes the schedule clock run fast, so
-- interval schedules of a minute fire within a second.
local cjson = require "cjson"
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"

local P = "/ws-local/projects/sched-project"
local MINUTE = { intervals = { { every = "1m" } } }
local SCALE = "0.01"   -- 1 minute of the schedule clock is 0.6 s

local function decode(s)
  local ok, v = pcall(cjson.decode, s)
  if ok then return v end
  return nil
end

local function T(s) return assert(intuned.parse_time(s)) end

local eventually = emulator.eventually

local function create(emu, id, schedule)
  local body = cjson.encode{ id = id, payload = { { apiName = "health/ping" } },
                             configuration = { runMode = "Order-Irrelevant" }, schedule = schedule }
  local r = emu.api("POST", P .. "/jobs", { body = body })
  assert.are.equal(201, r.status, r.body)
end

local function get_job(emu, id)
  local r = emu.api("GET", P .. "/jobs/" .. id)
  assert.are.equal(200, r.status, r.body)
  return r.body
end

local function runs(emu, id)
  local r = emu.api("GET", P .. "/jobs/" .. id .. "/runs")
  assert.are.equal(200, r.status, r.body)
  return decode(r.body)
end

-- 1 when list holds v
local function holds(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

describe("emulator scheduler on a fast schedule clock", function()
  local emu

  setup(function()
    emu = emulator.start{ "--schedule-scale", SCALE, "--api-latency-ms", "0" }
  end)
  teardown(function()
    emulator.stop_all()
  end)

  it("fires an interval job when it falls due, a few times; the runs are SCHEDULED", function()
    create(emu, "every-minute-1", MINUTE)
    local list = eventually(function()
      local l = runs(emu, "every-minute-1")
      return #l >= 3 and l
    end, 15)
    assert.is_truthy(list, "three scheduled runs within 15 s")
    for _, run in ipairs(list) do assert.are.equal("SCHEDULED", run.type) end
    -- last_run_time is a time the engine gives for this schedule (a whole
    -- minute since the epoch), and next_run_time is a later one of them
    local body = get_job(emu, "every-minute-1")
    local job = assert(intuned.Job.decode(body))
    local doc = decode(body)
    assert.is_string(doc.last_run_time)
    local last = T(doc.last_run_time)
    assert.are.equal(0, last % 60)
    assert.is_true(T(doc.next_run_time) > last)
    assert.is_true(holds(job.schedule:next_runs(5, last), doc.next_run_time),
                   doc.next_run_time .. " is one of the engine's next runs after " .. doc.last_run_time)
  end)

  it("pausing stops the scheduled runs; resuming goes on from now, with no burst of the missed ones", function()
    create(emu, "pause-me-1", MINUTE)
    assert.is_truthy(eventually(function() return #runs(emu, "pause-me-1") >= 1 end, 10))
    assert.are.equal(200, emu.api("POST", P .. "/jobs/pause-me-1/pause").status)
    local paused_at = #runs(emu, "pause-me-1")
    local last = T(decode(get_job(emu, "pause-me-1")).last_run_time)
    emulator.sleep(2.5)   -- about four minutes of the schedule clock
    assert.are.equal(paused_at, #runs(emu, "pause-me-1"), "no run starts while the job is paused")
    local doc = decode(get_job(emu, "pause-me-1"))
    assert.are.equal("PAUSED", doc.state.status)
    assert.are.equal(last, T(doc.last_run_time))

    assert.are.equal(200, emu.api("POST", P .. "/jobs/pause-me-1/resume").status)
    doc = decode(get_job(emu, "pause-me-1"))
    -- from now: the runs missed while paused lie behind next_run_time
    assert.is_true(T(doc.next_run_time) >= last + 3 * 60, doc.next_run_time .. " after " .. doc.last_run_time)
    local n = #runs(emu, "pause-me-1")
    assert.is_true(n <= paused_at + 1, "at most the run now due started, not the missed ones: " .. n)
    assert.is_truthy(eventually(function() return #runs(emu, "pause-me-1") >= paused_at + 2 end, 10),
                     "runs go on after resuming")
    local l = runs(emu, "pause-me-1")
    assert.are.equal("SCHEDULED", l[1].type)
    assert.is_true(T(decode(get_job(emu, "pause-me-1")).last_run_time) >= last + 3 * 60)
  end)

  it("a triggered run is MANUAL beside the scheduled ones, and counts as the job's last run", function()
    create(emu, "mixed-1", MINUTE)
    assert.is_truthy(eventually(function() return #runs(emu, "mixed-1") >= 1 end, 10))
    local before = T(decode(get_job(emu, "mixed-1")).last_run_time)
    local r = emu.api("POST", P .. "/jobs/mixed-1/trigger")
    assert.are.equal(200, r.status, r.body)
    local run_id = decode(r.body).jobRunId
    local found
    for _, run in ipairs(runs(emu, "mixed-1")) do
      if run.id == run_id then found = run end
    end
    assert.is_truthy(found)
    assert.are.equal("MANUAL", found.type)
    assert.is_true(T(decode(get_job(emu, "mixed-1")).last_run_time) >= before)
  end)
end)

describe("emulator scheduler on the wall clock", function()
  local emu

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "0" }
  end)
  teardown(function()
    emulator.stop_all()
  end)

  it("a calendar fires at the second the engine computes; last_run_time is that second", function()
    local second = (os.time() + 4) % 60
    local cal = { calendars = { { second = second, minute = "*", hour = "*" } } }
    local want = intuned.schedule.next_runs(cal, 1, os.time())[1]
    create(emu, "at-second-1", cal)
    assert.are.equal(want, decode(get_job(emu, "at-second-1")).next_run_time)
    local list = eventually(function()
      local l = runs(emu, "at-second-1")
      return #l >= 1 and l
    end, 12)
    assert.is_truthy(list, "the run due at " .. want)
    assert.are.equal(1, #list)
    assert.are.equal("SCHEDULED", list[1].type)
    local started = T(list[1].start_time)
    assert.is_true(started >= T(want) and started < T(want) + 5, list[1].start_time .. " for " .. want)
    local body = get_job(emu, "at-second-1")
    local doc = decode(body)
    assert.are.equal(want, doc.last_run_time)
    -- the next one is the engine's answer after it: the same second, a minute on
    local job = assert(intuned.Job.decode(body))
    assert.are.equal(job.schedule:next_runs(1, want)[1], doc.next_run_time)
    assert.are.equal(T(want) + 60, T(doc.next_run_time))
  end)

  it("--schedule-scale is documented and checked", function()
    local help = emulator.capture(emulator.quote(emulator.binary()) .. " --help")
    assert.matches("--schedule-scale F", help, 1, true)
    for _, bad in ipairs{ "0", "-1", "fast", "1e9" } do
      local ok = pcall(emulator.start, { "--schedule-scale", bad })
      assert.is_false(ok, "--schedule-scale " .. bad .. " refused")
    end
  end)
end)
