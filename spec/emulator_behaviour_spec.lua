-- intuned-emulator behaviour around deliveries and shutdown:
--  * a run whose payloads have all finished reports its final status
--    (COMPLETED / FAILED) and end_time at once, while webhook deliveries of
--    its results are still retried; deliveries are reported on their own
--    (GET /_emulator/runs/{runId}: its delivery counters, each payload's delivery);
--  * SIGTERM and SIGINT stop the emulator at once while a delivery waits to
--    retry, a webhook POST waits for an answer and a simulated call runs;
--  * a delivery cut short by the shutdown stays pending on disk and is made
--    after a restart (--data-dir), its run still COMPLETED with its end_time.
-- Real emulator processes over HTTP (curl); the binary comes from
-- $INTUNED_EMULATOR (see spec/helpers/emulator.lua).
local cjson = require "cjson"
-- v0.3.12 shapes (the runs list as an array, summary, FAILED) whatever
-- $INTUNED_TEST_API_VERSION says: the behaviour is the same in both versions
local emulator = require("spec.helpers.emulator").pinned("v0.3.12")

local P = "/ws-local/projects/behaviour"

local function decode(s)
  local ok, v = pcall(cjson.decode, s)
  if ok then return v end
  return nil
end

local function job_input(id, payload, sink)
  return cjson.encode{ id = id, payload = payload, configuration = { runMode = "Order-Irrelevant" }, sink = sink }
end

local eventually = emulator.eventually

local function create(emu, id, payload, sink)
  local r = emu.api("POST", P .. "/jobs", { body = job_input(id, payload, sink) })
  assert.are.equal(201, r.status, r.body)
  local t = emu.api("POST", P .. "/jobs/" .. id .. "/trigger")
  assert.are.equal(200, t.status, t.body)
end

-- The job's newest run as the API and the emulator's own view tell it:
-- {id, status, end_time, summary (the API's run), deliveries, payloads
-- (GET /_emulator/runs/{runId}: each payload's state and delivery)}.
local function run_of(emu, id)
  local r = emu.api("GET", P .. "/jobs/" .. id .. "/runs")
  assert.are.equal(200, r.status, r.body)
  local run_id = decode(r.body)[1].id
  r = emu.api("GET", P .. "/jobs/" .. id .. "/runs/" .. run_id)
  assert.are.equal(200, r.status, r.body)
  local run = decode(r.body).jobRun
  local v = emu.run_view(run_id)
  return { id = run_id, status = run.status, end_time = run.end_time, summary = run.summary,
           deliveries = v.deliveries, payloads = v.payloads }
end

-- The receiver's records (reading them takes the API key).
local function records(emu, name)
  local res = emulator.http("GET", emu.base .. "/_receiver/" .. name, { headers = { ["x-api-key"] = emu.key } })
  assert.are.equal(200, res.status, res.body)
  return decode(res.body)
end

-- The next `count` answers of the receiver NAME get `status`.
local function receiver_answers(emu, name, status, count)
  local res = emu.control("POST", "/_emulator/receivers/" .. name, cjson.encode{ status = status, count = count })
  assert.are.equal(200, res.status, res.body)
end

local function still_delivering(run)
  for _, p in ipairs(run.payloads) do
    if p.delivery ~= "pending" and p.delivery ~= "delivering" then return false end
  end
  return true
end

-- Sends the signal and measures, in ms, until the process has exited (a
-- zombie counts as gone: its reaper, not it, may be slow); -1 if it had not
-- after 10 s.
local function signal_and_time(pid, sig)
  return tonumber(emulator.capture(
    "kill -" .. sig .. " " .. pid .. "; s=$(date +%s%N); i=0; " ..
    "while st=$(awk '/^State:/{print $2}' /proc/" .. pid .. "/status 2>/dev/null) && " ..
    "[ -n \"$st\" ] && [ \"$st\" != Z ] && [ $i -lt 2000 ]; do sleep 0.005; i=$((i+1)); done; " ..
    "e=$(date +%s%N); if [ $i -ge 2000 ]; then echo -1; else echo $(( (e - s) / 1000000 )); fi"))
end

-- A loopback server that takes connections and never answers (a webhook that hangs).
local function start_silent()
  local port_file = emulator.tmpname()
  os.remove(port_file)
  local pid = emulator.capture("python3 spec/helpers/silent_server.py " .. emulator.quote(port_file) ..
    " 60 >/dev/null 2>&1 & echo $!")
  local port = eventually(function() return tonumber((emulator.read_file(port_file) or ""):match("%d+")) end, 10)
  os.remove(port_file)
  assert(port, "silent_server.py did not start")
  return { port = port, stop = function() emulator.run("kill " .. pid .. " 2>/dev/null") end }
end

describe("intuned-emulator behaviour", function()
  teardown(function()
    emulator.stop_all()   -- also what a failed test started
  end)

  it("a finished run reports COMPLETED / FAILED and its end_time while deliveries are still retried", function()
    -- 4 attempts per result with back-offs of 1, 2 and 4 s: each result's
    -- delivery takes at least 7 s, and fails
    local emu = emulator.start{ "--time-scale", "1", "--api-latency-ms", "5", "--delivery-attempts", "4" }
    finally(function() emu.stop() end)
    receiver_answers(emu, "always500", 500, 1000)
    local sink = { type = "webhook", url = emu.base .. "/_receiver/always500" }
    create(emu, "beh-mixed", { { apiName = "beh/ok" }, { apiName = "fail-beh" } }, sink)
    create(emu, "beh-failed", { { apiName = "fail-all" } }, sink)

    local first = eventually(function()
      local m, f = run_of(emu, "beh-mixed"), run_of(emu, "beh-failed")
      if m.status ~= "PENDING" and f.status ~= "PENDING" then return { m, f } end
    end, 6)
    assert.is_table(first, "the runs stayed PENDING while their deliveries were retried")
    local mixed, failed = first[1], first[2]
    assert.are.equal("COMPLETED", mixed.status)
    assert.are.equal("FAILED", failed.status)
    for _, run in ipairs{ mixed, failed } do
      assert.is_string(run.end_time)
      assert.are.equal(0, run.summary.pending_count)
      -- the deliveries have not ended yet: the back-offs alone take 7 s
      assert.are.same({ delivered = 0, failed = 0, skipped = 0, attempts = 0 }, run.deliveries)
      assert.is_true(still_delivering(run), cjson.encode(run.payloads))
    end
    assert.are.same({ success_count = 1, failures_count = 1, apis_count = 2 },
      { success_count = mixed.summary.success_count, failures_count = mixed.summary.failures_count,
        apis_count = mixed.summary.apis_count })

    -- later the delivery counters show the failures; the runs' ends stay as they were
    local done = eventually(function()
      local m, f = run_of(emu, "beh-mixed"), run_of(emu, "beh-failed")
      if m.deliveries.failed == 2 and f.deliveries.failed == 1 then return { m, f } end
    end, 30)
    assert.is_table(done, "the deliveries did not fail in time")
    assert.are.same({ delivered = 0, failed = 2, skipped = 0, attempts = 8 }, done[1].deliveries)
    assert.are.same({ delivered = 0, failed = 1, skipped = 0, attempts = 4 }, done[2].deliveries)
    for i, run in ipairs(done) do
      local before = ({ mixed, failed })[i]
      assert.are.equal(before.status, run.status)
      assert.are.equal(before.end_time, run.end_time)
      for _, p in ipairs(run.payloads) do
        assert.are.equal("failed", p.delivery)
        assert.are.equal("no 2xx answer from the webhook", p.delivery_error)
      end
    end
    local recs = records(emu, "always500")
    assert.are.equal(12, #recs)
    for _, rec in ipairs(recs) do assert.are.equal(500, rec.status) end
  end)

  -- A delivery in back-off (its webhook answers 500, the wait is 5 s), a
  -- POST waiting for an answer that never comes and a simulated call of
  -- 2.5 s, all in progress when the signal comes.
  local function stops_at_once(sig)
    local silent = start_silent()
    local emu = emulator.start{ "--time-scale", "5", "--api-latency-ms", "2500", "--delivery-attempts", "3" }
    finally(function()
      emu.stop()
      silent.stop()
    end)
    receiver_answers(emu, "slow", 500, 100)
    create(emu, "bye-backoff", { { apiName = "bye/one" } }, { type = "webhook", url = emu.base .. "/_receiver/slow" })
    create(emu, "bye-hang", { { apiName = "bye/two" } },
      { type = "webhook", url = "http://127.0.0.1:" .. silent.port .. "/hook" })
    assert.is_truthy(eventually(function()
      local recs = records(emu, "slow")
      return #recs >= 1 and run_of(emu, "bye-hang").payloads[1].delivery == "delivering"
    end, 15), "the deliveries did not start")
    create(emu, "bye-call", { { apiName = "bye/three" } })
    assert.is_truthy(eventually(function() return run_of(emu, "bye-call").payloads[1].state == "running" end, 2),
      "the call did not start")
    assert.are.equal("delivering", run_of(emu, "bye-backoff").payloads[1].delivery)

    local ms = signal_and_time(emu.pid, sig)
    emu.stop()   -- gone already; reports sanitizer findings
    -- the aim is 0.5 s; the margin is for a loaded machine (the simulated call alone took 2.5 s)
    assert.is_true(ms >= 0 and ms < 1500, sig .. ": stopped after " .. tostring(ms) .. " ms")
  end

  it("SIGTERM stops the emulator at once while deliveries and calls are in progress", function()
    stops_at_once("TERM")
  end)

  it("SIGINT stops the emulator at once while deliveries and calls are in progress", function()
    stops_at_once("INT")
  end)

  it("a delivery cut short by SIGTERM is made after a restart; its run stays COMPLETED", function()
    local dir = emulator.tmpdir()
    local other = emulator.start{}   -- the user's webhook endpoint, up across the restart
    local e
    finally(function()
      if e then e.stop() end
      other.stop()
      emulator.run("rm -rf " .. emulator.quote(dir))
    end)
    receiver_answers(other, "later", 500, 1)   -- the first attempt fails, the next gets 200
    -- the first retry would come 5 s later
    local args = { "--data-dir", dir, "--time-scale", "5", "--api-latency-ms", "5", "--delivery-attempts", "3" }
    e = emulator.start(args)
    create(e, "resume-1", { { apiName = "resume/one" } }, { type = "webhook", url = other.base .. "/_receiver/later" })
    local run = eventually(function()
      local r = run_of(e, "resume-1")
      if r.status == "COMPLETED" and #records(other, "later") >= 1 then return r end
    end, 10)
    assert.is_table(run, "the run did not complete while its delivery waited to retry")
    assert.is_string(run.end_time)
    assert.are.equal("delivering", run.payloads[1].delivery)
    e.stop()

    e = emulator.start(args)
    local after = eventually(function()
      local r = run_of(e, "resume-1")
      if r.deliveries.delivered == 1 then return r end
    end, 15)
    assert.is_table(after, "the delivery was not resumed after the restart")
    assert.are.equal("COMPLETED", after.status)
    assert.are.equal(run.end_time, after.end_time)
    -- the POST before the shutdown counts, and the one after it
    assert.are.same({ delivered = 1, failed = 0, skipped = 0, attempts = 2 }, after.deliveries)
    assert.are.equal("delivered", after.payloads[1].delivery)
    local recs = records(other, "later")
    assert.are.same({ 500, 200 }, { recs[1].status, recs[2].status })
    assert.are.equal(2, #recs)
  end)
end)
