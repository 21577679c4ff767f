-- Limits of the C core seen from Lua: Retry-After is bounded (a server
-- asking for years does not block a call), what a broken server answers is
-- a `connection` or `decode` error that says the request may have been sent
-- (never `validation` or `nomem`), format_time / parse_time refuse times
-- outside the years 0001-9999, and the JSON parser refuses malformed UTF-8
-- with the offset of the bad byte.
local intuned = require "intuned"
local core = require "intuned.core"
local emulator = require "spec.helpers.emulator"

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*a"))
  p:close()
  return t
end

local function input(id, extra)
  local t = { id = id, payload = { { apiName = "a" } }, configuration = { runMode = "Order-Irrelevant" } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- A watchdog for calls that would block for years if a limit regressed:
-- after `seconds` it stops the emulator `emu` and ends this Lua process, so
-- the run fails instead of hanging (and leaves no emulator behind).
-- Returns a function that stops the watchdog (its process group).
local function watchdog(seconds, emu)
  local me = emulator.capture("echo $PPID")  -- the shell's parent: this process
  -- setsid forks when it is started as a group leader, so $! would name the
  -- wrong process: the watchdog's shell writes its own pid (= its group)
  local file = os.tmpname()
  os.remove(file)
  emulator.run(("setsid sh -c 'echo $$ > %s; sleep %d; kill -9 %s; kill -TERM %s' >/dev/null 2>&1 &")
    :format(file, seconds, emu.pid, me))
  local pid
  for _ = 1, 200 do
    pid = (emulator.read_file(file) or ""):match("%d+")
    if pid then break end
    emulator.sleep(0.01)
  end
  assert(pid, "watchdog did not start")
  return function()
    emulator.run("kill -TERM -" .. pid .. " 2>/dev/null") -- sh (dash) takes no "--"
    os.remove(file)
  end
end

describe("Retry-After is bounded", function()
  local emu
  local seq = 0
  local function fresh_id()
    seq = seq + 1
    return ("ra-%d-%d"):format(os.time() % 100000, seq)
  end

  setup(function() emu = emulator.start{} end)
  teardown(function() if emu then emu.stop() end end)
  after_each(function() emu.control("DELETE", "/_emulator/faults") end)

  local function client(opts)
    local o = { api_key = emu.key, workspace_id = "ws-local", server_url = emu.url, deadline = false,
                retry = { initial_delay = 0.01, max_delay = 0.2 } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return assert(intuned.client(o))
  end

  for _, ra in ipairs{ "99999999", ("1234567890"):rep(6), "Fri, 31 Dec 9999 23:59:59 GMT" } do
    it("a Retry-After of " .. ra:sub(1, 30) .. " with deadline = false ends the call at once", function()
      local c = client()
      local id = fresh_id()
      assert(c.jobs:create("p", input(id)))
      emu.fault{ status = 429, count = 1, retry_after = ra, match = "/jobs/" .. id, method = "GET" }
      local stop = watchdog(60, emu)
      local t0 = now()
      local job, err = c.jobs:get("p", id)
      local dt = now() - t0
      stop()
      assert.is_nil(job)
      assert.equals("rate_limited", err.kind)
      assert.equals(1, err.attempts)
      assert.is_true(err.retry_after >= 99999999 and err.retry_after <= 2147483647, tostring(err.retry_after))
      assert.is_true(dt < 5, "took " .. dt)
      -- the fault is used up: the next call goes through
      assert(c.jobs:get("p", id))
    end)
  end

  it("a create answered 503 with a huge Retry-After is not retried", function()
    local c = client()
    local id = fresh_id()
    emu.fault{ status = 503, count = 1, retry_after = "99999999", match = "/projects/p/jobs", method = "POST" }
    local stop = watchdog(60, emu)
    local t0 = now()
    local created, err = c.jobs:create("p", input(id))
    local dt = now() - t0
    stop()
    assert.is_nil(created)
    assert.equals("server", err.kind)
    assert.equals(1, err.attempts)
    assert.is_true(dt < 5, "took " .. dt)
  end)

  it("below the ceiling Retry-After is still a floor over max_delay", function()
    local c = client()
    local id = fresh_id()
    assert(c.jobs:create("p", input(id)))
    emu.fault{ status = 429, count = 1, retry_after = "0.5", match = "/jobs/" .. id, method = "GET" }
    local t0 = now()
    assert(c.jobs:get("p", id))
    local dt = now() - t0
    assert.is_true(dt >= 0.45, "waited " .. dt)
    assert.is_true(dt < 4, "waited " .. dt)
  end)

  it("core.parse_response and the call machine (the nginx transport's path) apply the same limits", function()
    local _, err = core.parse_response("jobs:get", 429, "application/json", ("9"):rep(60), "{}")
    assert.equals(2147483647, err.retry_after)
    _, err = core.parse_response("jobs:get", 429, "application/json", "Fri, 31 Dec 9999 23:59:59 GMT", "{}")
    assert.equals(2147483647, err.retry_after)
    _, err = core.parse_response("jobs:get", 429, "application/json", "1e400", "{}")
    assert.is_nil(err.retry_after)
    local decide = require("spec.helpers.machine").decide
    local pol = { max_delay = 0.2 }
    local function ra(v) return { status = 429, retry_after = v } end
    assert.is_nil(decide(pol, "jobs:get", 1, ra("99999999")))
    assert.is_nil(decide(pol, "jobs:get", 1, ra(("9"):rep(60))))
    assert.equals(1, decide(pol, "jobs:get", 1, ra("1")))
    assert.equals(120, decide(pol, "jobs:get", 1, ra("120")))
    assert.is_nil(decide(pol, "jobs:get", 1, ra("121")))
    -- a max_delay above 120 s raises the ceiling to itself
    assert.equals(500, decide({ max_delay = 600 }, "jobs:get", 1, ra("500")))
  end)
end)

describe("errors from a broken server", function()
  local log = os.tmpname()
  local servers = {}

  -- Start spec/helpers/bad_http.py in `mode`; returns its base URL.
  local function bad_server(mode)
    emulator.write_file(log, "")
    local out = os.tmpname()
    local pid = emulator.capture(("python3 spec/helpers/bad_http.py %s %s 8 20 >%s 2>&1 & echo $!")
      :format(mode, emulator.quote(log), emulator.quote(out)))
    servers[#servers + 1] = { pid = pid, out = out }
    local port
    for _ = 1, 250 do
      port = (emulator.read_file(out) or ""):match("listening (%d+)")
      if port then break end
      emulator.sleep(0.02)
    end
    assert(port, "bad_http.py did not start: " .. tostring(emulator.read_file(out)))
    return "http://127.0.0.1:" .. port .. "/api/v1/workspace"
  end

  local function requests()
    local n = 0
    for _ in (emulator.read_file(log) or ""):gmatch("[^\n]+") do n = n + 1 end
    return n
  end

  after_each(function()
    for _, s in ipairs(servers) do
      emulator.run("kill " .. s.pid .. " 2>/dev/null")
      os.remove(s.out)
    end
    servers = {}
  end)
  teardown(function() os.remove(log) end)

  local function client(url)
    return assert(intuned.client{ api_key = "k", workspace_id = "w", server_url = url,
                                  retry = { initial_delay = 0.01, max_delay = 0.05, max_attempts = 3 } })
  end

  for _, mode in ipairs{ "garbled", "badversion", "badstatus" } do
    it("a " .. mode .. " status line after a create is a connection error, and the create is not repeated", function()
      local c = client(bad_server(mode))
      local created, err = c.jobs:create("p", input("j"))
      assert.is_nil(created)
      assert.equals("connection", err.kind)
      assert.is_nil(err.path)
      assert.truthy(err.message:find("may have been sent", 1, true), err.message)
      assert.equals(1, err.attempts)
      assert.equals(1, requests())
      assert.truthy(tostring(err):find("^connection"))
    end)
  end

  it("a garbled status line on a get is retried (the operation is idempotent)", function()
    local c = client(bad_server("garbled"))
    local job, err = c.jobs:get("p", "j")
    assert.is_nil(job)
    assert.equals("connection", err.kind)
    assert.equals(3, err.attempts)
    assert.equals(3, requests())
  end)

  for _, mode in ipairs{ "bigheader", "manyheaders" } do
    it("an oversized response header (" .. mode .. ") is a decode error naming it, never nomem", function()
      local c = client(bad_server(mode))
      local created, err = c.jobs:create("p", input("j"))
      assert.is_nil(created)
      assert.equals("decode", err.kind)
      assert.truthy(err.message:find("header too large", 1, true), err.message)
      assert.truthy(err.message:find("may have been sent", 1, true), err.message)
      assert.equals(1, err.attempts)
      assert.equals(1, requests())
      local _, err2 = c.jobs:get("p", "j")
      assert.equals("decode", err2.kind)
    end)
  end
end)

describe("format_time and parse_time: the years 0001 to 9999", function()
  local bad = { 0 / 0, 1 / 0, -1 / 0, 1e300, -1e300, 1e17, -1e17, 253402300800, -62135596801 }
  for _, t in ipairs(bad) do
    it("format_time(" .. tostring(t) .. ") is nil, err", function()
      local s, err = intuned.format_time(t)
      assert.is_nil(s)
      assert.equals("validation", err.kind)
      assert.truthy(err.message:find("0001", 1, true) and err.message:find("9999", 1, true), err.message)
      assert.truthy(tostring(err):find("outside the years 0001 to 9999", 1, true))
    end)
  end

  it("formats the edges of the range", function()
    assert.equals("0001-01-01T00:00:00.000Z", intuned.format_time(-62135596800))
    assert.equals("9999-12-31T23:59:59.000Z", intuned.format_time(253402300799))
    assert.equals("9999-12-31T23:59:59.999Z", intuned.format_time(253402300799.9996))
    assert.equals("1969-12-31T23:59:58.500Z", intuned.format_time(-1.5))
    assert.equals("2025-06-01T12:00:00.250Z", intuned.format_time(1748779200.25))
  end)

  it("parse_time refuses UTC instants outside the range and round-trips the edges", function()
    for _, s in ipairs{ "0000-12-31T23:59:59Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
                        "9999-12-31T23:59:60Z" } do
      local t, msg = intuned.parse_time(s)
      assert.is_nil(t, s)
      assert.truthy(msg:find("0001 to 9999", 1, true), msg)
    end
    for _, s in ipairs{ "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z" } do
      assert.equals(s, intuned.format_time(assert(intuned.parse_time(s))))
    end
  end)

  it("the emulator never serves a garbage next_run_time (every = 1e300)", function()
    local emu = emulator.start{}
    local ok, e = pcall(function()
      local c = assert(intuned.client{ api_key = emu.key, workspace_id = "ws-local", server_url = emu.url })
      for i, every in ipairs{ 1e300, 1e17 } do
        local id = "far-" .. i
        local created, err = c.jobs:create("p", input(id, { schedule = { intervals = { { every = every } } } }))
        if created then
          local res = emu.api("GET", "/ws-local/projects/p/jobs/" .. id)
          assert.equals(200, res.status)
          local job = intuned.decode_json(res.body)
          local nrt = job.next_run_time
          -- null, or a date-time that parses (the emulator may also refuse the period)
          assert.is_true(nrt == intuned.null or nrt == nil or intuned.parse_time(nrt) ~= nil, tostring(nrt))
        else
          assert.equals("invalid_input", err.kind)
        end
      end
    end)
    emu.stop()
    assert(ok, e)
  end)
end)

describe("JSON strictness", function()
  it("a string cut after a backslash is reported at the end of the input, not past it", function()
    for _, doc in ipairs{ '"abc\\', '["\\', '{"k\\', '["a\\u00e9\\' } do
      local v, msg = intuned.decode_json(doc)
      assert.is_nil(v)
      assert.equals(("invalid JSON at byte %d: unterminated string"):format(#doc), msg)
    end
  end)

  it("malformed UTF-8 is refused with the offset of the bad byte", function()
    local cases = {
      { '["ab\192\128"]', 4, "overlong" },
      { '["ab\237\160\128"]', 4, "surrogate" },
      { '["ab\244\144\128\128"]', 4, "U+10FFFF" },
      { '["ab\226\130"]', 4, "truncated" },
      { '["ab\128"]', 4, "stray continuation" },
      { '{"\\n\255":1}', 4, "never valid" },
    }
    for _, c in ipairs(cases) do
      local v, msg = intuned.decode_json(c[1])
      assert.is_nil(v)
      assert.truthy(msg:find(("invalid JSON at byte %d: invalid UTF-8"):format(c[2]), 1, true), msg)
      assert.truthy(msg:find(c[3], 1, true), msg)
    end
    assert.equals("\195\169\226\130\172\240\159\152\128", intuned.decode_json('["\195\169\226\130\172\240\159\152\128"]')[1])
  end)

  it("typed decoders refuse it too, and lone \\u surrogates", function()
    local v, err = intuned.Job.decode('{"id":"j\237\160\128"}')
    assert.is_nil(v)
    assert.equals("decode", err.kind)
    assert.truthy(err.message:find("byte 8", 1, true), err.message)
    local s, msg = intuned.decode_json('["\\uD800"]')
    assert.is_nil(s)
    assert.truthy(msg:find("byte 2: lone UTF-16 surrogate", 1, true), msg)
  end)
end)
