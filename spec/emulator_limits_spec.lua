-- intuned-emulator under hostile or heavy input: paging arguments, schedule
-- values that could stall the scheduler, interval floors, and the cost of
-- persisting big runs (and their crash safety).  Driven over real HTTP like
-- spec/emulator_spec.lua; the binary comes from $INTUNED_EMULATOR.
local cjson = require "cjson"
-- pinned: these checks read v0.3.12 run documents (summary, status names)
local emulator = require("spec.helpers.emulator").pinned("v0.3.12")

local function decode(s)
  local ok, v = pcall(cjson.decode, s)
  if ok then return v end
  return nil
end

-- NONE as the payload: one payload (an empty array is refused: such a job has nothing to run)
local NONE = {}
local function job_input(id, payload, extra)
  local t = { id = id, payload = payload or { { apiName = "health/ping" } },
              configuration = { runMode = "Order-Irrelevant" } }
  if payload == NONE then t.payload = { { apiName = "health/ping" } } end
  for k, v in pairs(extra or {}) do t[k] = v end
  return (cjson.encode(t):gsub('"@none@"', "[]"))
end

local eventually = emulator.eventually

local function now()
  return tonumber(emulator.capture("date +%s.%N"))
end

-- The lines of a file (without their newlines) and whether it ends with one.
local function lines_of(path)
  local text = emulator.read_file(path) or ""
  local out, pos = {}, 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    out[#out + 1] = text:sub(pos, (nl or #text + 1) - 1)
    pos = (nl or #text) + 1
  end
  return out, text:sub(-1) == "\n"
end

-- bytes the process has passed to write(2) so far (/proc/PID/io wchar)
local function wchar(pid)
  local io_text = emulator.read_file("/proc/" .. pid .. "/io")
  assert(io_text, "cannot read /proc/" .. pid .. "/io")
  return tonumber(io_text:match("wchar:%s*(%d+)"))
end

describe("intuned-emulator limits", function()
  local emu
  local P = "/ws-local/projects/limits"

  setup(function()
    emu = emulator.start{ "--time-scale", "0.001", "--api-latency-ms", "1", "--seed", "3" }
  end)
  teardown(function()
    emulator.stop_all()
  end)

  local function create(id, payload, extra)
    local r = emu.api("POST", P .. "/jobs", { body = job_input(id, payload, extra) })
    assert.are.equal(201, r.status, r.body)
    return r
  end

  local function expect_400(r, field, what)
    assert.are.equal(400, r.status, (what or "") .. ": " .. r.body)
    local e = decode(r.body)
    assert.is_table(e, r.body)
    assert.are.equal(field, e.details.field, what)
    assert.truthy(e.message:find(field, 1, true), e.message)
    assert.are.equal("bad-request", e.code)
  end

  it("answers 400 in valid JSON to a path that decodes to invalid UTF-8 (found by fuzz/)", function()
    -- the 404 used to echo the raw byte 0x9B in its JSON message
    for _, bad in ipairs{ "%9B", "%C0%AF", "%ED%A0%80", "ok%FF" } do
      local r = emu.api("GET", P .. "/jobs/" .. bad)
      assert.are.equal(400, r.status, bad .. ": " .. r.body)
      local e = decode(r.body)
      assert.is_table(e, r.body)
      assert.truthy(e.message:find("UTF-8", 1, true), e.message)
    end
    -- well-formed UTF-8 is fine, and echoed in a valid 404
    local r = emu.api("GET", P .. "/jobs/caf%C3%A9")
    assert.are.equal(404, r.status, r.body)
    assert.is_table(decode(r.body), r.body)
  end)

  it("keeps /_emulator/stats valid JSON when a method is cut inside a UTF-8 sequence (found by fuzz/)", function()
    -- 14 ASCII bytes and a two-byte character: a 15-byte cut used to split it
    emulator.capture("curl -s -o /dev/null -X \"$(printf 'ABCDEFGHIJKLMN\\303\\251')\" '" .. emu.url .. P .. "/jobs'")
    emulator.capture("curl -s -o /dev/null -X \"$(printf 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')\" '" .. emu.url .. P .. "/jobs'")
    local r = emu.control("GET", "/_emulator/stats")
    -- lua-cjson passes invalid UTF-8 through; the core's parser is strict
    local strict, why = require("intuned").decode_json(r.body)
    assert.is_table(strict, why)
    local st = decode(r.body)
    assert.truthy(st.by_method.OTHER and st.by_method.OTHER >= 2, r.body)
  end)

  describe("paging of the runs list", function()
    local runs_path = P .. "/jobs/paging-job-1/runs"

    setup(function()
      create("paging-job-1")
      for _ = 1, 5 do
        assert.are.equal(200, emu.api("POST", P .. "/jobs/paging-job-1/trigger").status)
        emulator.sleep(0.01)   -- distinct start times
      end
    end)

    it("answers 400 naming the argument for overflowing, negative, zero or garbled values", function()
      local cases = {
        { "pageNumber=2&pageSize=4611686018427387904", "pageSize" },   -- page * size overflowed, and spun
        { "pageNumber=4611686018427387904&pageSize=2", "pageNumber" },
        { "pageNumber=9223372036854775807", "pageNumber" },
        { "pageSize=0", "pageSize" },
        { "pageSize=-1", "pageSize" },
        { "pageNumber=-1", "pageNumber" },
        { "pageSize=1001", "pageSize" },
        { "pageSize=10x", "pageSize" },
        { "pageSize=x10", "pageSize" },
        { "pageSize=+5", "pageSize" },
        { "pageSize=%205", "pageSize" },
        { "pageSize=1.5", "pageSize" },
        { "pageSize=1e3", "pageSize" },
        { "pageSize=", "pageSize" },
        { "pageNumber=zero", "pageNumber" },
        { "pageNumber=1%00", "pageNumber" },
        { "sortBy=", "sortBy" },
        { "sortBy=password,asc", "sortBy" },
        { "sortBy=start_time,sideways", "sortBy" },
        { "sortBy=start_time,asc/a/b/c/d", "sortBy" },
      }
      for _, c in ipairs(cases) do
        local r = emu.api("GET", runs_path .. "?" .. c[1], { timeout = 5 })
        expect_400(r, c[2], c[1])
      end
      -- the server is still free (nothing spins)
      local r = emu.api("GET", runs_path .. "?pageNumber=0&pageSize=2", { timeout = 5 })
      assert.are.equal(200, r.status)
      assert.is_true(r.time < 1, "took " .. r.time .. " s")
    end)

    it("pages from 0 within bounds, and sortBy orders the runs", function()
      local r = emu.api("GET", runs_path .. "?pageNumber=0&pageSize=1000")
      assert.are.equal(200, r.status, r.body)
      local all = decode(r.body)
      assert.are.equal(5, all.totalCount)
      assert.are.equal(5, #all.jobRuns)
      for i = 2, 5 do assert.is_true(all.jobRuns[i - 1].start_time >= all.jobRuns[i].start_time) end
      local p1 = decode(emu.api("GET", runs_path .. "?pageNumber=1&pageSize=2").body)
      assert.are.equal(5, p1.totalCount)
      assert.are.same({ all.jobRuns[3].id, all.jobRuns[4].id }, { p1.jobRuns[1].id, p1.jobRuns[2].id })
      local far = decode(emu.api("GET", runs_path .. "?pageNumber=1000000&pageSize=1000").body)
      assert.are.same({}, far.jobRuns)
      assert.are.equal(5, far.totalCount)
      local asc = decode(emu.api("GET", runs_path .. "?sortBy=start_time%2Casc").body)
      assert.are.equal(all.jobRuns[5].id, asc.jobRuns[1].id)
      assert.are.equal(all.jobRuns[1].id, asc.jobRuns[5].id)
      -- the SDK's example form, and "status asc" with a space
      local two = emu.api("GET", runs_path .. "?pageNumber=0&pageSize=10&sortBy=status%2Casc%2Fstart_time%2Cdesc")
      assert.are.equal(200, two.status, two.body)
      assert.are.equal(5, #decode(two.body).jobRuns)
      assert.are.equal(200, emu.api("GET", runs_path .. "?sortBy=status+asc").status)
    end)
  end)

  describe("schedule checks", function()
    local function cal_job(id, calendars)
      return emu.api("POST", P .. "/jobs", { body = job_input(id, NONE, { schedule = { calendars = calendars } }) })
    end

    it("refuses calendar values out of range with the field's path", function()
      local cases = {
        { { { second = 61 } }, "schedule.calendars[1].second" },
        { { { hour = 2 }, { second = 60 } }, "schedule.calendars[2].second" },
        { { { minute = -1 } }, "schedule.calendars[1].minute" },
        { { { hour = 24 } }, "schedule.calendars[1].hour" },
        { { { hour = 1.5 } }, "schedule.calendars[1].hour" },
        { { { dayOfMonth = 0 } }, "schedule.calendars[1].dayOfMonth" },
        { { { dayOfMonth = 32 } }, "schedule.calendars[1].dayOfMonth" },
        { { { month = 13 } }, "schedule.calendars[1].month" },
        { { { month = "SMARCH" } }, "schedule.calendars[1].month" },
        { { { dayOfWeek = 7 } }, "schedule.calendars[1].dayOfWeek" },
        { { { dayOfWeek = "FUNDAY" } }, "schedule.calendars[1].dayOfWeek" },
        { { { year = 1969 } }, "schedule.calendars[1].year" },
        { { { hour = { start = 3, ["end"] = 25 } } }, "schedule.calendars[1].hour.end" },
        { { { hour = { start = 30 } } }, "schedule.calendars[1].hour.start" },
        { { { hour = { start = 5, ["end"] = 3 } } }, "schedule.calendars[1].hour" },
        { { { hour = { start = 1, step = 0 } } }, "schedule.calendars[1].hour.step" },
        { { { minute = { { start = 0 }, { start = 75 } } } }, "schedule.calendars[1].minute[2].start" },
        { { { second = "*/0" } }, "schedule.calendars[1].second" },
        { { { second = "0-61" } }, "schedule.calendars[1].second" },
        { { { dayOfWeek = "MON-XYZ" } }, "schedule.calendars[1].dayOfWeek" },
        { { { hour = "" } }, "schedule.calendars[1].hour" },
      }
      for i, c in ipairs(cases) do
        expect_400(cal_job("bad-cal-" .. i, c[1]), c[2], cjson.encode(c[1]))
        assert.are.equal(404, emu.api("GET", P .. "/jobs/bad-cal-" .. i).status)
      end
      -- too many calendars for one schedule
      local many = {}
      for i = 1, 101 do many[i] = { hour = 1 } end
      expect_400(cal_job("bad-cal-many", many), "schedule.calendars")
      -- an update is checked the same way
      create("cal-update-1")
      local body = cjson.encode{ payload = { { apiName = "x/y", parameters = { a = 1 } } }, configuration = { maxConcurrentRequests = 1 },
                                 schedule = { calendars = { { minute = 0 }, { second = 99 } } } }
      expect_400(emu.api("PUT", P .. "/jobs/cal-update-1", { body = body }), "schedule.calendars[2].second")
    end)

    it("takes the reference's calendar forms and computes their next run", function()
      local r = cal_job("good-cal-1", {
        { second = 0, minute = { { start = 0, ["end"] = 10, step = 5 }, { start = 45 } },
          hour = { start = 6, ["end"] = 22, step = 4 }, dayOfMonth = "*",
          dayOfWeek = { start = "MONDAY", ["end"] = "FRIDAY" }, month = "*" },
        { hour = 3, dayOfWeek = "SUNDAY", month = { start = "JANUARY", ["end"] = "MARCH" } },
        { dayOfWeek = "MON-FRI", minute = "*/15", hour = "9,17", month = "JAN" },
        { second = "0", minute = 30 },
      })
      assert.are.equal(201, r.status, r.body)
      local job = decode(emu.api("GET", P .. "/jobs/good-cal-1").body)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:00%.000Z$", job.next_run_time)
    end)

    it("a create with never-matching calendars does not hold up other requests", function()
      create("bystander-1")
      -- six calendars that no second of any day matches (the attack: about
      -- 2 s each of searching second by second, under the store's lock)
      local bad = {}
      for i = 1, 6 do bad[i] = { second = 61, minute = "*", hour = "*" } end
      -- and a hundred valid ones that can never match (31 February)
      local never = {}
      for i = 1, 100 do never[i] = { dayOfMonth = 31, month = 2, second = "*", minute = "*", hour = "*" } end
      local out1, out2 = emulator.tmpname(), emulator.tmpname()
      local function bg(id, cals, out)
        local f = emulator.tmpname()
        emulator.write_file(f, job_input(id, NONE, { schedule = { calendars = cals } }))
        emulator.run("(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 -H 'x-api-key: test-key' " ..
          "-H 'Content-Type: application/json' --data-binary @" .. emulator.quote(f) .. " " ..
          emulator.quote(emu.url .. P .. "/jobs") .. " >" .. emulator.quote(out) .. " 2>&1; rm -f " ..
          emulator.quote(f) .. ") &")
      end
      bg("never-bad-1", bad, out1)
      bg("never-valid-1", never, out2)
      emulator.sleep(0.2)
      for _ = 1, 5 do
        local r = emu.api("GET", P .. "/jobs/bystander-1", { timeout = 15 })
        assert.are.equal(200, r.status)
        assert.is_true(r.time < 1, "a GET beside the create took " .. r.time .. " s")
      end
      local function result(out)
        return eventually(function()
          local code, t = (emulator.read_file(out) or ""):match("^(%d+) ([%d%.]+)$")
          if code then return { tonumber(code), tonumber(t) } end
        end, 30, 0.1)
      end
      local r1, r2 = result(out1), result(out2)
      os.remove(out1)
      os.remove(out2)
      assert.are.equal(400, r1[1])
      assert.is_true(r1[2] < 2, "the refused create took " .. r1[2] .. " s")
      assert.are.equal(201, r2[1])
      assert.is_true(r2[2] < 2, "the never-matching create took " .. r2[2] .. " s")
      local job = decode(emu.api("GET", P .. "/jobs/never-valid-1").body)
      assert.are.equal(cjson.null, job.next_run_time)
    end)

    it("refuses interval periods below 1 s", function()
      for _, every in ipairs{ "1ms", 1, 999, "0.5s", "999 ms" } do
        local r = emu.api("POST", P .. "/jobs", { body = job_input("fast-interval-1", NONE,
                                                                   { schedule = { intervals = { { every = every } } } }) })
        expect_400(r, "schedule.intervals[1].every", tostring(every))
        assert.truthy(decode(r.body).details.issue:find("1s", 1, true))
      end
      local two = { intervals = { { every = "1h" }, { every = "1ms" } } }
      expect_400(emu.api("POST", P .. "/jobs", { body = job_input("fast-interval-2", NONE, { schedule = two }) }),
                 "schedule.intervals[2].every")
      create("ok-interval-1", NONE, { schedule = { intervals = { { every = "1s" } } } })
      create("ok-interval-2", NONE, { schedule = { intervals = { { every = 1000 } } } })
      local body = cjson.encode{ payload = { { apiName = "x/y", parameters = { a = 1 } } }, configuration = { maxConcurrentRequests = 1 },
                                 schedule = { intervals = { { every = "10ms" } } } }
      expect_400(emu.api("PUT", P .. "/jobs/ok-interval-1", { body = body }), "schedule.intervals[1].every")
      -- --help says so
      local help = emulator.capture(emulator.quote(emulator.binary()) .. " --help")
      assert.truthy(help:find("below 1s", 1, true), help)
    end)
  end)

  describe("persistence of big runs", function()
    local function start_in(dir, extra)
      local args = { "--data-dir", dir, "--time-scale", "0.001" }
      for _, a in ipairs(extra or {}) do args[#args + 1] = a end
      return emulator.start(args)
    end

    local function payloads(n, api)
      local t = {}
      for i = 1, n do t[i] = { apiName = api or "bulk/item", parameters = { n = i } } end
      return t
    end

    local function run_of(e, pp, job)
      local r = e.api("GET", pp .. "/jobs/" .. job .. "/runs")
      assert.are.equal(200, r.status, r.body)
      return decode(r.body)[1]
    end

    local function completed(e, run)
      local n = 0
      for _, p in ipairs(e.run_view(run).payloads) do
        if p.state == "completed" then n = n + 1 end
      end
      return n
    end

    it("a run of 2000 payloads finishes in seconds and writes bytes linear in its size", function()
      local dir = emulator.tmpdir()
      local e
      finally(function()
        if e then e.stop() end
        emulator.run("rm -rf " .. emulator.quote(dir))
      end)
      e = start_in(dir, { "--api-latency-ms", "0" })
      local pp = "/ws-local/projects/bulk"
      local n = 2000
      assert.are.equal(201, e.api("POST", pp .. "/jobs", { body = job_input("bulk-job-1", payloads(n)) }).status)
      local w0, t0 = wchar(e.pid), now()
      local tr = decode(e.api("POST", pp .. "/jobs/bulk-job-1/trigger").body)
      local run = eventually(function()
        local x = run_of(e, pp, "bulk-job-1")
        return x and x.status == "COMPLETED" and x
      end, 40, 0.2)
      local elapsed, written = now() - t0, wchar(e.pid) - w0
      assert.is_table(run, "the run did not complete within 40 s")
      assert.are.equal(n, run.summary.success_count)
      assert.is_true(elapsed < 20, "2000 payloads took " .. elapsed .. " s")
      local path = dir .. "/runs/" .. tr.jobRunId .. ".json"
      local size = #(emulator.read_file(path) or "")
      assert.is_true(size > 100000, "run file of " .. size .. " bytes")
      -- rewriting the whole run per payload wrote ~500 times the file's size
      assert.is_true(written < 10 * size, written .. " bytes written for a file of " .. size)
      -- and what was written is the run, after a restart
      e.stop()
      e = start_in(dir)
      local again = run_of(e, pp, "bulk-job-1")
      assert.are.equal("COMPLETED", again.status)
      assert.are.equal(n, completed(e, again))
      local res = decode(e.control("GET", "/_emulator/runs/" .. tr.jobRunId .. "/results").body)
      assert.are.equal(n, #res)
    end)

    it("after SIGKILL mid-run the run goes on from where it was, and finishes", function()
      local dir = emulator.tmpdir()
      local e
      finally(function()
        if e then e.stop() end
        emulator.run("rm -rf " .. emulator.quote(dir))
      end)
      local pp = "/ws-local/projects/crash"
      local n = 300
      e = start_in(dir, { "--api-latency-ms", "10" })
      local extra = { configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2 } }
      assert.are.equal(201, e.api("POST", pp .. "/jobs", { body = job_input("crash-job-1", payloads(n), extra) }).status)
      assert.are.equal(200, e.api("POST", pp .. "/jobs/crash-job-1/trigger").status)
      local seen = eventually(function()
        local run = run_of(e, pp, "crash-job-1")
        local k = completed(e, run)
        return k >= 20 and k
      end, 20)
      assert.is_number(seen)
      emulator.sleep(0.2)   -- what that answer showed is on disk by now
      e.kill()
      -- slow calls after the restart: what is completed at once was loaded
      e = start_in(dir, { "--api-latency-ms", "3000" })
      local run = run_of(e, pp, "crash-job-1")
      assert.are.equal("PENDING", run.status)
      local loaded = completed(e, run)
      assert.is_true(loaded >= seen and loaded < n, "loaded " .. loaded .. ", seen " .. seen .. " of " .. n)
      -- the loaded journal was folded into one record
      local files = emulator.capture("ls " .. emulator.quote(dir .. "/runs"))
      local lines, nl = lines_of(dir .. "/runs/" .. files)
      assert.are.equal(1, #lines)
      assert.is_true(nl)
      e.kill()
      e = start_in(dir, { "--api-latency-ms", "0" })
      run = eventually(function()
        local x = run_of(e, pp, "crash-job-1")
        return x.status == "COMPLETED" and x
      end, 30)
      assert.is_table(run, "the run did not complete after the restart")
      assert.are.equal(n, run.summary.success_count)
      assert.are.equal(n, completed(e, run))
      local attempts = 0
      for _, p in ipairs(e.run_view(run).payloads) do
        assert.is_true(p.attempts >= 1)
        attempts = attempts + p.attempts
      end
      -- calls in flight at the kills are redone, completed ones are not
      assert.is_true(attempts <= n + 8, attempts .. " attempts for " .. n .. " payloads")
      local res = decode(e.control("GET", "/_emulator/runs/" .. run.id .. "/results").body)
      assert.are.equal(n, #res)
    end)

    it("ignores a torn last record and takes the newest record of each part", function()
      local dir = emulator.tmpdir()
      local e
      finally(function()
        if e then e.stop() end
        emulator.run("rm -rf " .. emulator.quote(dir))
      end)
      local pp = "/ws-local/projects/torn"
      e = start_in(dir, { "--api-latency-ms", "0" })
      assert.are.equal(201, e.api("POST", pp .. "/jobs", { body = job_input("torn-job-1", payloads(5)) }).status)
      local id = decode(e.api("POST", pp .. "/jobs/torn-job-1/trigger").body).jobRunId
      local done = eventually(function()
        local x = run_of(e, pp, "torn-job-1")
        return x.status == "COMPLETED" and x
      end)
      assert.is_table(done)
      local before = e.api("GET", pp .. "/jobs/torn-job-1/runs").body
      e.stop()
      local path = dir .. "/runs/" .. id .. ".json"
      local lines = lines_of(path)
      local snap, vmax
      for _, l in ipairs(lines) do
        local rec = decode(l)
        assert.is_table(rec, l)
        assert.is_number(rec.v)
        if rec.payloads then snap = rec end
        if not vmax or rec.v > vmax then vmax = rec.v end
      end
      assert.is_table(snap)
      -- an old record (lower version) after the newest ones changes nothing;
      -- a record cut short by a crash is ignored
      local stale = { v = 1, id = id, status = "PENDING", end_time = cjson.null, updated = snap.updated,
                      max_in_flight = 0, deliveries_ok = 0, deliveries_failed = 0, deliveries_skipped = 0,
                      delivery_attempts = 0,
                      changed = { { i = 0, state = 0, attempts = 0, delivery = 0, result = cjson.null } } }
      local f = assert(io.open(path, "ab"))
      f:write(cjson.encode(stale), "\n", '{"v":', tostring(vmax + 1000), ',"id":"', id, '","status":"FAI')
      f:close()
      e = start_in(dir)
      assert.are.equal(before, e.api("GET", pp .. "/jobs/torn-job-1/runs").body)
      local folded, nl = lines_of(path)
      assert.are.equal(1, #folded)
      assert.is_true(nl)
      e.stop()
      -- a newer record wins even when it comes first in the file
      local newer = { v = vmax + 5000, id = id, status = "COMPLETED", end_time = snap.end_time, updated = snap.updated,
                      max_in_flight = 77, deliveries_ok = 0, deliveries_failed = 0, deliveries_skipped = 0,
                      delivery_attempts = 0 }
      emulator.write_file(path, cjson.encode(newer) .. "\n" .. folded[1] .. "\n")
      e = start_in(dir)
      local run = run_of(e, pp, "torn-job-1")
      assert.are.equal(77, e.run_view(run).max_in_flight)
      assert.are.equal(5, completed(e, run))
      assert.are.equal("COMPLETED", run.status)
    end)
  end)
end)
