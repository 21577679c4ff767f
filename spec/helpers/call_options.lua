-- spec/helpers/call_options.lua: the per-call options scenarios, written
-- once and run through both transports: spec/call_options_spec.lua runs each
-- chunk in the busted process (libcurl), spec/nginx_call_options_spec.lua
-- inside nginx (cosockets).  A scenario is
--   { name, setup = function(emu) (faults) end, chunk = "Lua code", check = function(r) (asserts) end }
-- The chunk returns a JSON-able table; before it runs, the locals KEY, WS,
-- EMU (the emulator's API URL), ECHO (the echo server's) and intuned are
-- set, and kinds(events) lists the events' names.
local assert = require "luassert"

local M = {}

M.KEY = "call-opts-key-31337"
M.WS = "ws-local"
M.SECRET = "per-call-bearer-secret-2718"

-- The code before each chunk.
function M.prelude(emu_url, echo_url)
  return ([[
    local intuned = require "intuned"
    local KEY, WS, EMU, ECHO = %q, %q, %q, %q
    local function kinds(events)
      local out = {}
      for i, ev in ipairs(events) do out[i] = ev.event end
      return out
    end
    local function recorder()
      local list = {}
      return list, function(ev) list[#list + 1] = ev end
    end
  ]]):format(M.KEY, M.WS, emu_url, echo_url)
end

local function get_faults(emu, project, spec)
  spec.match = "/projects/" .. project .. "/jobs"
  spec.method = "GET"
  emu.fault(spec)
end

M.scenarios = {
  {
    name = "timeout: a call's own replaces the client's, both ways",
    setup = function(emu) get_faults(emu, "co-t", { latency_ms = 900, count = 2 }) end,
    chunk = [[
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU, timeout = 0.3, retry = false }
      local l1, e1 = c.jobs:list("co-t", { timeout = 8 })       -- waits out the latency
      local l2, e2 = c.jobs:list("co-t")                         -- the client's 0.3 s
      local c2 = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU, timeout = 8, retry = false }
      local l3 = c2.jobs:list("co-t", { timeout = false })       -- no limit: no fault left either
      return { ok1 = l1 ~= nil, err1 = e1 and e1.text, kind2 = e2 and e2.kind, ok3 = l3 ~= nil }
    ]],
    check = function(r)
      assert.is_true(r.ok1, r.err1)
      assert.equals("timeout", r.kind2)
      assert.is_true(r.ok3)
    end,
  },
  {
    name = "deadline: a call's own ends its retries early",
    setup = function(emu) get_faults(emu, "co-d", { status = 503, count = 100 }) end,
    chunk = [[
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU, deadline = 60,
        retry = { max_attempts = 6, initial_delay = 0.15, multiplier = 1, jitter = 0 } }
      local _, e1 = c.jobs:list("co-d", { deadline = 0.2 })
      local _, e2 = c.jobs:list("co-d")
      return { a1 = e1.attempts, a2 = e2.attempts, k2 = e2.kind }
    ]],
    check = function(r)
      assert.is_true(r.a1 >= 1 and r.a1 <= 2, "attempts within a 0.2 s deadline: " .. tostring(r.a1))
      assert.equals(6, r.a2)
      assert.equals("server", r.k2)
    end,
  },
  {
    name = "retry: false for one call, a policy for one call of a client without retries",
    setup = function(emu) get_faults(emu, "co-r", { status = 503, count = 3 }) end,
    chunk = [[
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU,
        retry = { max_attempts = 3, initial_delay = 0.01, jitter = 0 } }
      local _, e1 = c.jobs:list("co-r", { retry = false })    -- 503 #1, not retried
      local l2, e2 = c.jobs:list("co-r")                      -- 503 #2, retried
      local c2 = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU, retry = false }
      local l3, e3 = c2.jobs:list("co-r", { retry = { max_attempts = 2, initial_delay = 0.01 } }) -- 503 #3, retried
      return { k1 = e1 and e1.kind, a1 = e1 and e1.attempts, ok2 = l2 ~= nil, e2 = e2 and e2.text,
               ok3 = l3 ~= nil, e3 = e3 and e3.text }
    ]],
    check = function(r)
      assert.same({ "server", 1 }, { r.k1, r.a1 })
      assert.is_true(r.ok2, r.e2)
      assert.is_true(r.ok3, r.e3)
    end,
  },
  {
    name = "headers: a call's own merge over the client's, for that call only",
    chunk = [[
      local events, hook = recorder()
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = ECHO, retry = false, hook = hook,
        headers = { ["X-Client"] = "c1", ["X-Both"] = "from-client" } }
      local function seen(err)
        local out = {}
        for k, v in pairs(err.details.headers) do out[k:lower()] = v end
        return out
      end
      local _, e1 = c.jobs:get("p", "j", { headers = { ["X-Call"] = "k1", ["x-both"] = "from-call" } })
      local _, e2 = c.jobs:get("p", "j")
      return { h1 = seen(e1), h2 = seen(e2), ev1 = events[1].headers, ev3 = events[3].headers }
    ]],
    check = function(r)
      assert.same({ "k1", "from-call", "c1" }, { r.h1["x-call"], r.h1["x-both"], r.h1["x-client"] })
      assert.same({ "from-client", "c1" }, { r.h2["x-both"], r.h2["x-client"] })
      assert.is_nil(r.h2["x-call"])
      assert.same({ "k1", "from-call" }, { r.ev1["x-call"], r.ev1["x-both"] })
      assert.is_nil(r.ev3["x-call"])
    end,
  },
  {
    name = "hook: a call's own replaces the client's; false silences it; events carry the response",
    setup = function(emu) get_faults(emu, "co-h", { status = 503, count = 1, retry_after = "0" }) end,
    chunk = [[
      local a, hook_a = recorder()
      local b, hook_b = recorder()
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU, hook = hook_a,
        retry = { max_attempts = 2, initial_delay = 0.01 } }
      local l1 = c.jobs:list("co-h", { hook = hook_b })
      local na1 = #a
      local l2 = c.jobs:list("co-h", { hook = false })
      local na2 = #a
      assert(c.jobs:list("co-h"))
      local r = b[2].response
      local key_seen = false
      for _, ev in ipairs(b) do
        if ev.headers["x-api-key"] ~= "***" then key_seen = true end
      end
      return { ok = l1 ~= nil and l2 ~= nil, na1 = na1, na2 = na2, na3 = #a, b = kinds(b),
               s = b[2].status, rs = r and r.status, ct = r and r.headers["content-type"],
               ra = r and r.headers["retry-after"], body = r and r.body, key_seen = key_seen,
               last = b[5].response and b[5].response.status, attempt = b[4].attempt }
    ]],
    check = function(r)
      assert.is_true(r.ok)
      assert.same({ 0, 0 }, { r.na1, r.na2 })
      assert.equals(2, r.na3) -- the client's hook again: request, response
      assert.same({ "request", "response", "retry", "request", "response" }, r.b)
      assert.same({ 503, 503, "0" }, { r.s, r.rs, r.ra })
      assert.matches("^application/json", r.ct)
      assert.is_string(r.body)
      assert.equals(200, r.last)
      assert.equals(2, r.attempt)
      assert.is_false(r.key_seen)
    end,
  },
  {
    name = "hook: a call's events are redacted, its own secret headers included (request and response)",
    chunk = ([[
      local b, hook_b = recorder()
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = ECHO, retry = false }
      local _, err = c.jobs:get("p", "j", { hook = hook_b, headers = { Authorization = "Bearer %s" } })
      local text = intuned.encode_json(b) .. tostring(err) .. intuned.encode_json(err.details or {})
      return { b = kinds(b), auth = b[1].headers.authorization, status = b[2].response.status,
               echoed = b[2].response.body:find("***", 1, true) ~= nil,
               leaks = { key = text:find(KEY, 1, true) ~= nil, bearer = text:find(%q, 1, true) ~= nil } }
    ]]):format(M.SECRET, M.SECRET),
    check = function(r)
      assert.same({ "request", "response" }, r.b)
      assert.equals("***", r.auth)
      assert.equals(400, r.status)
      assert.is_true(r.echoed) -- the echo came back, scrubbed
      assert.same({ key = false, bearer = false }, r.leaks)
    end,
  },
  {
    name = "batch: each entry's timeout, retry, headers and hook apply to that call only",
    setup = function(emu)
      get_faults(emu, "co-b1", { latency_ms = 900, count = 2 })
      get_faults(emu, "co-b2", { status = 503, count = 1 })
    end,
    chunk = [[
      local a, hook_a = recorder()
      local b, hook_b = recorder()
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU, timeout = 8, hook = hook_a,
        retry = { max_attempts = 2, initial_delay = 0.01, jitter = 0 } }
      local out = c:batch{
        { op = "jobs:list", project = "co-b1", timeout = 0.3 },
        { op = "jobs:list", project = "co-b2", retry = false },
        { op = "jobs:list", project = "co-b3", hook = hook_b, headers = { ["X-Entry"] = "e3" } },
        { op = "jobs:list", args = { project = "co-b4" }, deadline = 30 },
      }
      local function projects(evs)
        local seen = {}
        for _, ev in ipairs(evs) do seen[ev.path:match("/projects/([^/]+)/")] = true end
        return seen
      end
      local hdr = true
      for _, ev in ipairs(b) do hdr = hdr and ev.headers["x-entry"] == "e3" end
      return { k1 = out[1].kind, k2 = out[2].kind, a2 = out[2].attempts,
               ok3 = not intuned.is_error(out[3]), ok4 = not intuned.is_error(out[4]),
               pa = projects(a), pb = projects(b), nb = #b, hdr = hdr }
    ]],
    check = function(r)
      assert.equals("timeout", r.k1)
      assert.same({ "server", 1 }, { r.k2, r.a2 })
      assert.is_true(r.ok3)
      assert.is_true(r.ok4)
      assert.same({ ["co-b3"] = true }, r.pb)
      assert.same({ ["co-b1"] = true, ["co-b2"] = true, ["co-b4"] = true }, r.pa)
      assert.equals(2, r.nb)
      assert.is_true(r.hdr)
    end,
  },
  {
    name = "typos are refused with the closest valid name: client, method, retry, batch",
    chunk = [[
      local function msg(f, ...)
        local ok, e = pcall(f, ...)
        return ok and "no error" or tostring(e)
      end
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = EMU }
      return {
        client = msg(intuned.client, { api_key = KEY, workspace_id = WS, timout = 1 }),
        retry = msg(intuned.client, { api_key = KEY, workspace_id = WS, retry = { max_atempts = 2 } }),
        method = msg(c.jobs.get, c.jobs, "p", "j", { dealine = 1 }),
        query = msg(c.jobs.runs.list, c.jobs.runs, "p", "j", { page_sise = 2 }),
        value = msg(c.jobs.get, c.jobs, "p", "j", { timeout = "1" }),
        hook = msg(c.jobs.get, c.jobs, "p", "j", { hook = 1 }),
        batch = msg(c.batch, c, { { op = "jobs:get", project = "p", job_id = "j", hedaers = {} } }),
        far = msg(c.jobs.get, c.jobs, "p", "j", { zzzzzz = 1 }),
      }
    ]],
    check = function(r)
      assert.matches("intuned.client: unknown option 'timout' (did you mean 'timeout'?)", r.client, 1, true)
      assert.matches("unknown retry field 'max_atempts' (did you mean 'max_attempts'?)", r.retry, 1, true)
      assert.matches("bad argument #3 to 'get' (unknown option 'dealine' (did you mean 'deadline'?))", r.method, 1, true)
      assert.matches("unknown option 'page_sise' (did you mean 'page_size'?)", r.query, 1, true)
      assert.matches("bad argument #3 to 'get' (option 'timeout' must be a number of seconds", r.value, 1, true)
      assert.matches("option 'hook' must be a function, got number", r.hook, 1, true)
      assert.matches("bad argument #1 to 'batch' (calls[1]: unknown field 'hedaers' (did you mean 'headers'?))",
        r.batch, 1, true)
      assert.matches("unknown option 'zzzzzz' (options: deadline, headers, hook, retry, timeout)", r.far, 1, true)
    end,
  },
}

return M
