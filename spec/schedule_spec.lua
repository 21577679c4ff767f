-- The schedule engine from Lua: schedule:next_runs / prev_runs /
-- runs_between on JobSchedule objects (and job.schedule), the functions of
-- intuned.schedule, describe and warnings; and the emulator's next_run_time,
-- which is the same engine's answer.
local intuned = require "intuned"
local cjson = require "cjson"
local emulator = require "spec.helpers.emulator"

local function T(s) return assert(intuned.parse_time(s)) end

local WEEKDAYS = { intervals = { { every = "1h" } },
                   calendars = { { hour = { start = 9, ["end"] = 17, step = 2 },
                                   dayOfWeek = { start = "MONDAY", ["end"] = "FRIDAY" } } } }

local JOB = [[{"id":"nightly-1","payload":[],"configuration":{"runMode":"Order-Irrelevant",
  "retry":{"maximumAttempts":1}},"next_run_time":null,"last_run_time":null,"state":{"status":"ACTIVE"},
  "projectId":"p","schedule":{"calendars":[{"month":2,"dayOfMonth":29,"comment":"leap day"},{"hour":25}]}}]]

describe("schedule engine from Lua", function()
  it("schedule:next_runs gives the API's date strings and Unix seconds", function()
    local s = intuned.JobSchedule.new(WEEKDAYS)
    local dates, secs = s:next_runs(4, "2025-06-06T16:30:00Z") -- a Friday
    assert.same({ "2025-06-06T17:00:00.000Z", "2025-06-06T18:00:00.000Z", "2025-06-06T19:00:00.000Z",
                  "2025-06-06T20:00:00.000Z" }, dates)
    assert.are.equal(4, #secs)
    for i = 1, 4 do assert.are.equal(T(dates[i]), secs[i]) end
    -- from as Unix seconds gives the same; the answer is strictly after it
    local d2 = s:next_runs(1, T("2025-06-06T17:00:00Z"))
    assert.same({ "2025-06-06T18:00:00.000Z" }, d2)
    -- without `from`: after now
    local _, now_secs = s:next_runs(1)
    assert.is_true(now_secs[1] > os.time() - 2 and now_secs[1] <= os.time() + 3601)
  end)

  it("works through job.schedule, and never is an empty answer", function()
    local job = assert(intuned.Job.decode(JOB))
    local dates = job.schedule:next_runs(3, "2025-03-01T00:00:00Z")
    assert.same({ "2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z", "2036-02-29T00:00:00.000Z" }, dates)
    local before = job.schedule:prev_runs(2, "2025-03-01T00:00:00Z")
    assert.same({ "2024-02-29T00:00:00.000Z", "2020-02-29T00:00:00.000Z" }, before)
    local never, never_secs = intuned.schedule.next_runs({ calendars = { { month = 2, dayOfMonth = 31 } } }, 5)
    assert.same({}, never)
    assert.same({}, never_secs)
    -- rare and never calendars are answered at once, not after a search of years
    local t0 = os.clock()
    for _ = 1, 200 do
      intuned.schedule.next_runs({ calendars = { { month = 2, dayOfMonth = 29, dayOfWeek = "MONDAY" },
                                                 { month = 2, dayOfMonth = 30 } } }, 1, 0)
    end
    assert.is_true(os.clock() - t0 < 2, "200 calls took " .. (os.clock() - t0) .. " s")
    assert.same({ "2044-02-29T00:00:00.000Z" },
      (intuned.schedule.next_runs({ calendars = { { month = 2, dayOfMonth = 29, dayOfWeek = "MONDAY" } } }, 1,
                                  "2016-03-01T00:00:00Z")))
  end)

  it("runs_between is inclusive at both ends and says when it stopped at its limit", function()
    local hourly = { intervals = { { every = "1h" } } }
    local dates, secs, more = intuned.schedule.runs_between(hourly, "2025-01-01T00:00:00Z", "2025-01-01T03:00:00Z")
    assert.same({ "2025-01-01T00:00:00.000Z", "2025-01-01T01:00:00.000Z", "2025-01-01T02:00:00.000Z",
                  "2025-01-01T03:00:00.000Z" }, dates)
    assert.are.equal(4, #secs)
    assert.is_false(more)
    local d2, _, more2 = intuned.JobSchedule.new(hourly):runs_between(T("2025-01-01T00:00:00Z"), T("2025-01-02T00:00:00Z"), 10)
    assert.are.equal(10, #d2)
    assert.is_true(more2)
    -- a year of a weekday calendar: 5 runs a day, 261 weekdays in 2025
    local year = intuned.schedule.runs_between({ calendars = WEEKDAYS.calendars }, "2025-01-01T00:00:00Z",
                                                "2025-12-31T23:59:59Z")
    assert.are.equal(261 * 5, #year)
  end)

  it("describes a schedule in plain English", function()
    assert.are.equal("every hour; and at 09:00, 11:00, ... 17:00 UTC Monday to Friday",
                     (intuned.schedule.describe(WEEKDAYS)))
    local job = assert(intuned.Job.decode(JOB))
    local text, warnings = intuned.schedule.describe(job.schedule)
    assert.are.equal('at 00:00 UTC on 29 February ("leap day"); and never (its hour matches no value 0-23)', text)
    assert.same({ "schedule.calendars[2].hour: 25 is out of range 0-23",
                  "schedule.calendars[2]: this calendar never fires (its hour matches no value 0-23)" }, warnings)
    assert.are.equal("every 15 minutes of hours 9 to 17 UTC on Sunday and Saturday; each run starts up to 30 seconds "
                     .. "late (jitter)",
                     (intuned.schedule.describe{ jitter = "30s",
                       calendars = { { minute = "*/15", hour = "9-17", dayOfWeek = { 0, 6 } } } }))
  end)

  it("warns about calendars that can never fire", function()
    assert.same({ "schedule.calendars[1]: this calendar never fires (no date from 1970 to 9999 matches its "
                  .. "dayOfMonth, month, dayOfWeek and year together)" },
                intuned.schedule.warnings{ calendars = { { dayOfMonth = 31, month = { start = 4, ["end"] = 4 } } } })
    assert.same({}, intuned.schedule.warnings(WEEKDAYS))
  end)

  it("misuse raises; a table that is no schedule returns nil, err", function()
    assert.has_error(function() intuned.schedule.next_runs(WEEKDAYS, -1) end)
    assert.has_error(function() intuned.schedule.next_runs(WEEKDAYS, 1.5) end)
    assert.has_error(function() intuned.schedule.next_runs(WEEKDAYS, 1, "yesterday") end)
    assert.has_error(function() intuned.schedule.next_runs(42, 1) end)
    assert.has_error(function() intuned.schedule.runs_between(WEEKDAYS, 0) end)
    local r, err = intuned.schedule.next_runs({ calendars = { { hours = 3 } } }, 1)
    assert.is_nil(r)
    assert.is_true(intuned.is_error(err))
    assert.are.equal("calendars[1].hours", err.path)
    -- the methods do not hide fields, and other objects do not have them
    local s = intuned.JobSchedule.new(WEEKDAYS)
    assert.are.equal("1h", s.intervals[1].every)
    assert.has_error(function() return intuned.Interval.new{ every = "1h" }.next_runs end)
  end)
end)

describe("the emulator's next_run_time is the engine's", function()
  local emu
  local P = "/ws-local/projects/sched"
  setup(function()
    emu = emulator.start{ "--no-scheduler", "--api-latency-ms", "0" }
  end)
  teardown(function()
    emulator.stop_all()
  end)

  local function create(id, schedule)
    local body = cjson.encode{ id = id, payload = { { apiName = "health/ping" } },
                               configuration = { runMode = "Order-Irrelevant" }, schedule = schedule }
    local r = emu.api("POST", P .. "/jobs", { body = body })
    assert.are.equal(201, r.status, r.body)
    return assert(intuned.Job.decode(emu.api("GET", P .. "/jobs/" .. id).body))
  end

  it("finds a run decades ahead (29 February on a Monday) and says null for never", function()
    local t0 = os.time()
    local job = create("rare-cal-1", { calendars = { { month = "FEBRUARY", dayOfMonth = 29, dayOfWeek = "MONDAY" } } })
    local want = job.schedule:next_runs(1, t0 - 1)
    assert.are.equal(want[1], job.next_run_time)
    assert.is_truthy(job.next_run_time:match("^%d%d%d%d%-02%-29T00:00:00%.000Z$"))
    local never = create("never-cal-1", { calendars = { { month = 2, dayOfMonth = 30 } } })
    assert.are.equal(nil, never.next_run_time)
    -- the next run after the create: of the hourly interval and the weekday calendar together
    local mixed = create("mixed-1", WEEKDAYS)
    local created = T(mixed.created_at)
    local a, b = mixed.schedule:next_runs(1, created - 1), mixed.schedule:next_runs(1, created + 1)
    assert.is_truthy(mixed.next_run_time == a[1] or mixed.next_run_time == b[1], mixed.next_run_time)
    assert.is_truthy(mixed.next_run_time:match("T%d%d:00:00%.000Z$"))
  end)
end)
