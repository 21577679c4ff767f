-- The libcurl binding keeps one scratch for single calls and resets it
-- between them: a hook's own call during another, a call that raised
-- midway, a hook that closes the client, and results kept across later
-- calls must all still see their own data.
local intuned = require "intuned"
local core = require "intuned.core"
local emulator = require "spec.helpers.emulator"

describe("libcurl client: per-call memory reused", function()
  local emu

  setup(function() emu = emulator.start{} end)
  teardown(function() if emu then emu.stop(emu) end end)

  local function opts(extra)
    local o = { api_key = "test-key", workspace_id = "ws-local", server_url = emu.url,
                api_version = emu.api_version, retry = false }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  local function job(id)
    return { id = id, payload = { { apiName = "products/list", parameters = { page = 1 } } },
             configuration = { runMode = "Order-Irrelevant" } }
  end

  local seq = 0
  local function make_jobs(c, n)
    local ids = {}
    for i = 1, n do
      seq = seq + 1
      ids[i] = ("reuse-%d-%d"):format(os.time() % 100000, seq)
      assert(c.jobs:create("p", job(ids[i])))
    end
    return ids
  end

  it("keeps each result its own across later calls", function()
    local c = intuned.client(opts())
    local ids = make_jobs(c, 3)
    local got = {}
    for i = 1, 3 do got[i] = assert(c.jobs:get("p", ids[i])) end
    collectgarbage()
    for i = 1, 3 do assert.equals(ids[i], got[i].id) end
    local err = select(2, c.jobs:get("p", "no-such-job"))
    assert.equals("not_found", err.kind)
    assert.equals(ids[2], assert(c.jobs:get("p", ids[2])).id)
    c:close()
  end)

  it("lets a hook call the same client during a call", function()
    local c
    local inner = {}
    local ids
    c = intuned.client(opts{ hook = function(ev)
      if ev.event == "response" and #inner < 2 then
        inner[#inner + 1] = false -- (no recursion from the inner calls' own events)
        local j = assert(c.jobs:get("p", ids[2], { hook = false }))
        inner[#inner] = j.id
      end
    end })
    ids = make_jobs(intuned.client(opts()), 2)
    local j = assert(c.jobs:get("p", ids[1]))
    assert.equals(ids[1], j.id)
    assert.same({ ids[2] }, { inner[1] })
    -- and the kept scratch is free again afterwards
    assert.equals(ids[1], assert(c.jobs:get("p", ids[1], { hook = false })).id)
    c:close()
  end)

  it("works on after a call raised midway (core client, bad call options)", function()
    local cc = assert(core.curl_client(opts()))
    local ids = make_jobs(intuned.client(opts()), 1)
    assert.has_error(function() cc:call("jobs:get", { project = "p", job_id = ids[1] }, { timeout = "soon" }) end)
    for _ = 1, 3 do
      assert.equals(ids[1], assert(cc:call("jobs:get", { project = "p", job_id = ids[1] })).id)
    end
    local r, err = cc:call("jobs:get", { project = "p", job_id = "no-such-job" })
    assert.is_nil(r)
    assert.equals("not_found", err.kind)
    cc:close()
  end)

  it("delivers a call's events to a hook that closes the client", function()
    local c
    local seen = {}
    c = intuned.client(opts{ hook = function(ev)
      seen[#seen + 1] = ev.event
      c:close()
    end })
    local ids = make_jobs(intuned.client(opts()), 1)
    assert.equals(ids[1], assert(c.jobs:get("p", ids[1])).id)
    assert.same({ "request", "response" }, seen)
    assert.has_error(function() c.jobs:get("p", ids[1]) end)
  end)
end)
