-- The fault storm: 10,000 mixed calls (create, trigger, get, lists, run
-- get, batches of 50) through each transport -- libcurl from plain Lua, and
-- cosockets inside a real nginx -- against intuned-emulator injecting faults
-- on 30% of requests (429 and 5xx with and without Retry-After, dropped
-- connections, truncated bodies, slow drips; a few creates and triggers held
-- past the client's timeout but then performed).  Asserted: every call ends
-- in a typed result or an error object of an expected kind, nothing raises
-- or overruns its deadline, each logical create made at most one job and
-- each logical trigger at most one run, each Run API start (runs:start)
-- at most one run on the emulator's own count (and every success is in the
-- emulator's state), and RSS stays flat after a warm-up (but for the Lua
-- heap's growth with the storm's own records of every job).
--
-- Not named *_spec.lua, so the suite's `busted spec` leaves it out (it takes
-- a few minutes).  Run it alone (from the repository):
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/X/lib/?.so;;" \
--   INTUNED_EMULATOR=build/X/src/emulator/intuned-emulator ITD_NGINX_CPATH="build/X-51/lib/?.so" \
--   lua5.4 /usr/bin/busted -o plainTerminal --pattern=storm spec/storm
-- ITD_STORM_CALLS (default 10000) and ITD_STORM_SEED change the size and seed.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"
local nginx = require "spec.helpers.nginx"
local driver = require "spec.storm.driver"

local KEY, WS = "test-key", "ws-local"
local N = tonumber(os.getenv("ITD_STORM_CALLS") or "") or 10000
-- a warm-up before the storm (its RSS is only checked for a gross leak:
-- steady_check below is the flatness test)
local WARM = math.max(200, math.floor(N / 5))
local SEED = tonumber(os.getenv("ITD_STORM_SEED") or "") or 20261201
local TIMEOUT, DEADLINE = 2, 5
-- RSS over the storm itself is only checked for a gross leak: its answers
-- grow as it goes (runs lists get longer with every trigger) and the
-- driver's Lua heap keeps a record of every job and run, so glibc's arenas
-- grow and fragment with them (measured: +2 to +6.5 MiB over 10,000 calls
-- with malloc's in-use bytes flat).  Flatness is checked by steady_check
-- below, on a mix whose answers do not grow and which keeps nothing.
local RSS_GROWTH_KIB = 16384

local function wall()
  return tonumber(emulator.capture("date +%s.%N")) or os.time()
end

-- The faults, as shares of all requests (30% in all); a rule fires only
-- when the ones before it did not, so its rate is its share of what is left.
local SHARES = {
  { share = 0.04, status = 429, retry_after = "0" },
  { share = 0.02, status = 429, retry_after = "0.002" },
  { share = 0.03, status = 500 },
  { share = 0.03, status = 502 },
  { share = 0.01, status = 502, retry_after = "0" },
  { share = 0.03, status = 503 },
  { share = 0.03, status = 503, retry_after = "0" },
  { share = 0.01, status = 503, retry_after = "0.001" },
  { share = 0.03, kind = "drop" },
  { share = 0.03, kind = "truncated" },
  { share = 0.025, kind = "drip", drip_ms = 2, drip_bytes = 16 },
  { share = 0.015, kind = "drip", drip_ms = 2, drip_bytes = 16, chunked = true },
}
local FAULT_SHARE = 0.30

local function storm_rules()
  -- first: the next two triggers and creates are held past the client's
  -- timeout and then performed (the client sees a timeout, the server acts)
  local rules = {
    { method = "POST", match = "/trigger", latency_ms = (TIMEOUT + 0.3) * 1000, count = 2 },
    { method = "POST", match = "/jobs", latency_ms = (TIMEOUT + 0.3) * 1000, count = 2 },
  }
  local left = 1
  for _, s in ipairs(SHARES) do
    local r = {}
    for k, v in pairs(s) do if k ~= "share" then r[k] = v end end
    r.rate = s.share / left
    left = left - s.share
    rules[#rules + 1] = r
  end
  return rules
end

local function sum(t)
  local n = 0
  for _, v in pairs(t) do n = n + v end
  return n
end

local function fmt_map(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. tostring(t[k]) end
  return table.concat(out, " ")
end

-- A fault-free client to read the emulator's state afterwards.
local function checker(emu)
  return intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url, retry = false, timeout = 20 }
end

-- Three jobs in a small project, for the storm's jobs:list calls.
local function small_project(emu, name)
  local c = checker(emu)
  for i = 1, 3 do
    assert(c.jobs:create(name, { id = "small-" .. i, payload = { { apiName = "products/list", parameters = {} } },
                                 configuration = { runMode = "Order-Irrelevant" } }))
  end
  c:close()
  return 3
end

-- Compare what the client saw with what the emulator holds.  Returns the
-- verification counts and a list of defects (strings).
local function verify(emu, report, project, small)
  local c = checker(emu)
  local v = { jobs = 0, runs = 0, ok_creates = 0, failed_creates = 0, failed_but_created = 0, trigger_calls = 0,
              ok_triggers = 0, runs_without_success = 0 }
  local defects = {}
  local function defect(msg) if #defects < 40 then defects[#defects + 1] = msg end end
  for id, j in pairs(report.jobs) do
    local runs, err = c.jobs.runs:list(project, id)
    local exists = runs ~= nil
    if not runs and err.kind ~= "not_found" then defect("verify: runs:list " .. id .. ": " .. tostring(err)) end
    if exists then v.jobs = v.jobs + 1 end
    if j.create == "ok" then
      v.ok_creates = v.ok_creates + 1
      if not exists then defect(("create of %s reported success, but no such job"):format(id)) end
    else
      v.failed_creates = v.failed_creates + 1
      if exists then v.failed_but_created = v.failed_but_created + 1 end
    end
    v.trigger_calls = v.trigger_calls + j.triggers
    local have = {}
    local nruns = 0
    for _, r in ipairs(runs or {}) do
      have[r.id] = true
      nruns = nruns + 1
    end
    v.runs = v.runs + nruns
    if nruns > j.triggers then
      defect(("job %s: %d runs for %d trigger calls"):format(id, nruns, j.triggers))
    end
    local seen, nok = {}, 0
    for rid in j.ok_runs:gmatch("[^,]+") do
      nok = nok + 1
      if seen[rid] then defect(("job %s: two successful triggers answered run %s"):format(id, rid)) end
      seen[rid] = true
      if not have[rid] then defect(("job %s: trigger reported run %s, which does not exist"):format(id, rid)) end
    end
    v.ok_triggers = v.ok_triggers + nok
    v.runs_without_success = v.runs_without_success + (nruns - nok)
  end
  -- the Run API: the emulator counts every start it made; none duplicated
  -- means no more than the logical starts, and at least the successful ones
  local sv = report.starts or { calls = 0, ok_runs = "" }
  local srv = intuned.decode_json(emu.control("GET", "/_emulator/api-runs").body)
  local ok_ids, nok = {}, 0
  for rid in sv.ok_runs:gmatch("[^,]+") do
    nok = nok + 1
    if ok_ids[rid] then defect("two successful runs:start answered run " .. rid) end
    ok_ids[rid] = true
    local r, err = c.runs:result(project, rid)
    if not r then defect(("runs:start reported run %s: %s"):format(rid, tostring(err))) end
  end
  v.start_calls, v.ok_starts, v.server_starts = sv.calls, nok, srv.started
  if srv.started > sv.calls then
    defect(("emulator made %d Run API runs for %d runs:start calls"):format(srv.started, sv.calls))
  end
  if srv.started < nok then defect(("emulator made %d Run API runs, %d starts succeeded"):format(srv.started, nok)) end
  -- the emulator's own count of jobs it created: no create made two
  local st = emu.stats()
  v.server_creates = st.creates
  if st.creates ~= v.jobs + small then
    defect(("emulator created %d jobs, %d exist (+%d set up)"):format(st.creates, v.jobs, small))
  end
  c:close()
  return v, defects
end

local function print_report(title, counts, v, stats, rss0, rss1, heap0, heap1, elapsed)
  local c = counts
  print(("\n== storm: %s"):format(title))
  print(("calls %d (%d in %d batches), ok %d, errors %d, raises %d, untyped %d, bad results %d, "
    .. "unexpected kinds %d, overruns %d, max call %.3f s, max batch %.3f s")
    :format(c.calls, c.batch_calls, c.batches, c.ok, c.errors, c.raises, c.untyped, c.bad_results,
            c.unexpected_kinds, c.overruns, c.max_elapsed, c.max_batch_elapsed))
  print("errors by kind: " .. fmt_map(c.kinds))
  local ops = {}
  for op, o in pairs(c.ops) do ops[op] = o.ok .. "/" .. (o.ok + o.err) end
  print("ok/calls by op: " .. fmt_map(ops))
  print(("attempts %d, retries %d"):format(c.attempts, c.retries))
  print(("emulator: requests %d, faults injected %d (plus latency holds), creates %d, connections %d")
    :format(stats.requests, stats.faults, stats.creates, stats.connections))
  print(("state: jobs %d (ok creates %d, failed %d of which performed %d), runs %d for %d trigger calls "
    .. "(%d ok, %d runs whose trigger reported failure)")
    :format(v.jobs, v.ok_creates, v.failed_creates, v.failed_but_created, v.runs, v.trigger_calls,
            v.ok_triggers, v.runs_without_success))
  print(("Run API: %d runs:start calls, %d ok, %d runs made by the emulator"):format(v.start_calls, v.ok_starts,
    v.server_starts))
  print(("RSS before %d KiB, after %d KiB, growth %d KiB (Lua heap %d -> %d KiB); elapsed %.1f s")
    :format(rss0, rss1, rss1 - rss0, heap0, heap1, elapsed))
  for what, list in pairs(c.samples) do
    for _, m in ipairs(list) do print(("  %s: %s"):format(what, m)) end
  end
end

-- The common assertions on one transport's storm.
local function check(counts, defects, stats, rss0, rss1, heap0, heap1, v)
  assert.equals(N, counts.calls)
  assert.is_true(v.start_calls > 0 and v.ok_starts > 0, "no Run API starts in the mix")
  assert.is_true(counts.batches >= 1)
  assert.equals(0, counts.raises, "calls raised")
  assert.equals(0, counts.untyped, "calls ended in neither a result nor an error object")
  assert.equals(0, counts.bad_results, "results of the wrong type")
  assert.equals(0, counts.unexpected_kinds, "errors of unexpected kinds")
  assert.equals(0, counts.overruns, "calls past their deadline")
  assert.same({}, defects)
  -- the faults really happened, and most calls still succeeded
  assert.is_true(stats.faults >= 0.5 * FAULT_SHARE * counts.attempts, "faults injected: " .. stats.faults)
  assert.is_true(counts.retries > 0, "no retries")
  assert.is_true(counts.ok > counts.calls / 2, "ok " .. counts.ok)
  assert.is_true(sum(counts.kinds) == counts.errors)
  assert.is_true(rss1 - rss0 < RSS_GROWTH_KIB, ("RSS grew %d KiB (the Lua heap %d KiB)"):format(rss1 - rss0, heap1 - heap0))
end

-- RSS over the steady mix (the same faults, nothing kept, answers of
-- constant size): STEADY_ROUNDS rounds of STEADY_CALLS after one round of
-- warm-up; growth from the end of the warm-up to the end, beyond the Lua
-- heap's, under STEADY_GROWTH_KIB.  A leak of 128 bytes a call would add
-- 1 MiB; measured with the libcurl transport: RSS 15508 -> 15976 KiB over
-- 24,000 calls, malloc's in-use bytes flat at 1450 KiB.
local STEADY_CALLS, STEADY_ROUNDS, STEADY_GROWTH_KIB = 2000, 4, 1024
local function steady_check(title, run, measure, counts)
  run(STEADY_CALLS)
  local r0, h0 = measure()
  local seen = { r0 }
  for _ = 1, STEADY_ROUNDS do
    run(STEADY_CALLS)
    seen[#seen + 1] = (measure())
  end
  local r1, h1 = measure()
  local c = counts()
  print(("steady (%s): %d calls (ok %d, errors %d, raises %d), RSS after each round %s KiB: growth %d KiB, "
    .. "Lua heap %d -> %d KiB"):format(title, c.calls, c.ok, c.errors, c.raises, table.concat(seen, " "),
    r1 - r0, h0, h1))
  assert.equals(0, c.raises + c.untyped + c.bad_results + c.unexpected_kinds + c.overruns)
  assert.is_true((r1 - r0) - (h1 - h0) < STEADY_GROWTH_KIB,
    ("%s: RSS grew %d KiB over %d steady calls"):format(title, r1 - r0, STEADY_CALLS * STEADY_ROUNDS))
end

describe("fault storm", function()
  local t_all = wall()
  teardown(function()
    emulator.stop_all()
    print(("\nstorm: all done in %.1f s"):format(wall() - t_all))
  end)

  it("the drip fault sends the real answer a few bytes at a time, chunked or not", function()
    local emu = emulator.start{}
    local c = checker(emu)
    -- drip alone: the operation is performed and its answer dripped
    emu.fault{ kind = "drip", count = 1, drip_ms = 5, drip_bytes = 4 }
    local t0 = wall()
    local res = assert(c.jobs:create("drip", { id = "d1", payload = { { apiName = "a", parameters = {} } },
                                               configuration = { runMode = "Order-Irrelevant" } }))
    assert.equals("d1", res.id)
    emu.fault{ kind = "drip", count = 1, drip_ms = 5, drip_bytes = 4, chunked = true }
    local job = assert(c.jobs:get("drip", "d1"))
    local dt = wall() - t0
    assert.equals("d1", job.id)
    -- ~8 pieces of the create's answer, and the get's capped at 200 ms of pauses
    assert.is_true(dt > 0.2, "not dripped: " .. dt)
    assert.is_true(dt < 2, "dripped too slowly: " .. dt)
    -- with the command line's curl: chunked, the whole body, slowly
    emu.fault{ kind = "drip", count = 1, drip_ms = 10, drip_bytes = 50, chunked = true }
    local r = emu.api("GET", "/ws-local/projects/drip/jobs/d1")
    assert.equals(200, r.status)
    assert.equals("chunked", (r.headers["transfer-encoding"] or ""):lower())
    assert.equals("d1", intuned.decode_json(r.body).id)
    assert.is_true(r.time > 0.03, "time " .. r.time)
    -- with a status: the error answer, dripped, Retry-After kept
    emu.fault{ kind = "drip", count = 1, status = 503, retry_after = "0" }
    r = emu.api("GET", "/ws-local/projects/drip/jobs/d1")
    assert.equals(503, r.status)
    assert.equals("0", r.headers["retry-after"])
    assert.equals("service-unavailable", intuned.decode_json(r.body).code)
    -- the listing shows the parameters; bad ones are refused
    local list = intuned.decode_json(emu.control("GET", "/_emulator/faults").body)
    assert.equals(0, #list)
    emu.fault{ kind = "drip", rate = 0.5 }
    list = intuned.decode_json(emu.control("GET", "/_emulator/faults").body)
    assert.equals("drip", list[1].kind)
    assert.equals(2, list[1].drip_ms)
    assert.equals(8, list[1].drip_bytes)
    assert.equals(false, list[1].chunked)
    for _, bad in ipairs{ '{"kind":"drip","drip_ms":500}', '{"kind":"drip","drip_bytes":0}',
                          '{"kind":"drip","chunked":1}', '{"kind":"trickle"}' } do
      local b = emu.control("POST", "/_emulator/faults", bad)
      assert.equals(400, b.status, bad)
    end
    assert.matches("drip", intuned.decode_json(emu.control("POST", "/_emulator/faults", '{"kind":"x"}').body).message)
    assert.is_true(emu.stats().faults >= 4)
    c:close()
    emu.stop()
  end)

  it("libcurl transport: 10,000 calls under 30% faults", function()
    local t0 = wall()
    local emu = emulator.start{ "--seed", tostring(SEED), "--api-latency-ms", "1" }
    local small = small_project(emu, "storm-small")
    emu.fault(storm_rules())
    local st = driver.new{ project = "storm", small = "storm-small", tag = "curl", seed = SEED, deadline = DEADLINE }
    local client = intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url, timeout = TIMEOUT,
      deadline = DEADLINE, connect_timeout = 1, retry = { max_attempts = 4, initial_delay = 0.001, max_delay = 0.01 },
      hook = st:hook() }
    st:run(client, WARM)
    collectgarbage("collect")
    collectgarbage("collect")
    local rss0, heap0 = driver.rss_kib(), math.floor(collectgarbage("count"))
    st:reset()
    st:run(client, N)
    collectgarbage("collect")
    collectgarbage("collect")
    local rss1, heap1 = driver.rss_kib(), math.floor(collectgarbage("count"))
    emu.control("DELETE", "/_emulator/faults")
    local stats = emu.stats()
    client:close()
    local v, defects = verify(emu, st:report(), "storm", small)
    print_report("libcurl (" .. _VERSION .. ")", st.c, v, stats, rss0, rss1, heap0, heap1, wall() - t0)
    for _, d in ipairs(defects) do print("  DEFECT: " .. d) end
    check(st.c, defects, stats, rss0, rss1, heap0, heap1, v)
    -- then the steady mix, which keeps nothing: RSS must stay flat
    emu.fault(storm_rules())
    st:steady()
    local client2 = intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url, timeout = TIMEOUT,
      deadline = DEADLINE, connect_timeout = 1, retry = { max_attempts = 4, initial_delay = 0.001, max_delay = 0.01 },
      hook = st:hook() }
    steady_check("libcurl", function(n) st:run(client2, n) end, function()
      collectgarbage("collect")
      collectgarbage("collect")
      return driver.rss_kib(), math.floor(collectgarbage("count"))
    end, function() return st.c end)
    client2:close()
    emu.stop()
  end)

  it("nginx cosocket transport: 10,000 calls under 30% faults", function()
    local t0 = wall()
    local emu = emulator.start{ "--seed", tostring(SEED + 1), "--api-latency-ms", "1" }
    local small = small_project(emu, "storm-small")
    local srv = nginx.start{
      lua_path = nginx.root() .. "/?.lua;", -- the driver; ";;" after it: the default path
      http = [[
        server {
          listen {{LISTEN}};
          location = / { return 200 "ok"; }
          location = /storm {
            content_by_lua_block {
              local driver = require "spec.storm.driver"
              local ok, res = pcall(driver.serve, ngx.req.get_uri_args())
              ngx.header["Content-Type"] = "application/json"
              ngx.say(require("intuned").encode_json(ok and res or { raised = tostring(res) }))
            }
          }
        }
      ]],
    }
    local ok, err = pcall(function()
      local function cmd(args, timeout)
        local q = {}
        for k, val in pairs(args) do q[#q + 1] = k .. "=" .. tostring(val) end
        local r = emulator.http("GET", srv.url .. "/storm?" .. table.concat(q, "&"), { timeout = timeout or 60 })
        assert(r.status == 200, "nginx /storm " .. tostring(args.cmd) .. ": HTTP " .. r.status .. " " .. r.body)
        local doc = intuned.decode_json(r.body)
        assert(type(doc) == "table" and doc.raised == nil, "raised in nginx: " .. tostring(doc and doc.raised))
        return doc
      end
      cmd{ cmd = "init", project = "storm", small = "storm-small", tag = "ngx", seed = SEED, key = KEY, ws = WS,
           url = emu.url, timeout = TIMEOUT, deadline = DEADLINE }
      emu.fault(storm_rules())
      cmd({ cmd = "run", n = WARM }, 300)
      local r0 = cmd{ cmd = "rss" }
      cmd{ cmd = "reset" }
      -- in slices, so no single request to nginx runs for minutes
      local slice = 1000
      local done = 0
      while done < N do
        local n = math.min(slice, N - done)
        cmd({ cmd = "run", n = n }, 300)
        done = done + n
      end
      local r1 = cmd{ cmd = "rss" }
      assert.equals(r0.pid, r1.pid) -- the same worker all along
      emu.control("DELETE", "/_emulator/faults")
      local stats = emu.stats()
      local report = cmd({ cmd = "report" }, 60)
      local v, defects = verify(emu, report, "storm", small)
      print_report("nginx (cosockets, LuaJIT)", report.counts, v, stats, r0.rss, r1.rss, r0.heap, r1.heap,
        wall() - t0)
      for _, d in ipairs(defects) do print("  DEFECT: " .. d) end
      local log = srv:log()
      assert.is_nil(log:find("[alert]", 1, true), "nginx alert in error.log")
      assert.is_nil(log:find("lua entry thread aborted", 1, true), "nginx: a Lua thread aborted")
      check(report.counts, defects, stats, r0.rss, r1.rss, r0.heap, r1.heap, v)
      emu.fault(storm_rules())
      cmd{ cmd = "steady" }
      local last
      steady_check("nginx", function(n) cmd({ cmd = "run", n = n }, 300) end, function()
        local r = cmd{ cmd = "rss" }
        return r.rss, r.heap
      end, function()
        last = cmd({ cmd = "report" }, 60)
        return last.counts
      end)
    end)
    srv:stop()
    emu.stop()
    if not ok then error(err, 0) end
  end)
end)
