-- Issue 14, point 2: iterators over every run and every job.  Against the
-- emulator (the newest API's pages: pageNumber, pageSize, totalCount; and
-- the v0.3.12 bare list without a query), and against scripted run tables
-- for what the emulator does not do (a server that ignores pageNumber, runs
-- that move between pages, an error on a later page).
local intuned = require "intuned"
local workflow = require "intuned.workflow"
local emulator = require "spec.helpers.emulator"

local P = "paging-spec"

describe("paging", function()
  local emu, client
  local run_ids = {}

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "1", "--time-scale", "0.001" }
    client = intuned.client{ api_key = emu.key, workspace_id = "ws-local", server_url = emu.url }
    for _, id in ipairs{ "paged-job", "other-job" } do
      assert(client.jobs:create(P, { id = id, payload = { { apiName = "scrape" } },
                                     configuration = { runMode = "Order-Irrelevant" } }))
    end
    for _ = 1, 23 do
      local t = assert(client.jobs:trigger(P, "paged-job"))
      run_ids[#run_ids + 1] = t.jobRunId
    end
  end)
  teardown(function()
    if client then client:close() end
    emulator.stop_all()
  end)

  -- the request URLs of the calls an iterator makes (through the hook)
  local function recorder()
    local urls = {}
    return urls, function(ev) if ev.event == "request" then urls[#urls + 1] = ev.url end end
  end

  it("follows the newest API's pages to the last run, each run once", function()
    local urls, hook = recorder()
    local seen, n = {}, 0
    for run in client.jobs.runs:each(P, "paged-job", { page_size = 5, hook = hook }) do
      assert.equals("JobRun", intuned.type(run))
      assert.is_nil(seen[run.id], "twice: " .. tostring(run.id))
      seen[run.id] = true
      n = n + 1
    end
    assert.equals(23, n)
    for _, id in ipairs(run_ids) do assert.is_true(seen[id], id) end
    -- pages 0..4 of 5 (the last one short), then the end: no sixth call
    assert.equals(5, #urls)
    for i, u in ipairs(urls) do
      assert.truthy(u:find("pageNumber=" .. (i - 1), 1, true), u)
      assert.truthy(u:find("pageSize=5", 1, true), u)
    end
  end)

  it("stops at totalCount: an exact multiple of the page size takes no extra call", function()
    local urls, hook = recorder()
    local n = 0
    for _ in client.jobs.runs:each(P, "paged-job", { page_size = 23, hook = hook }) do n = n + 1 end
    assert.equals(23, n)
    assert.equals(1, #urls)
  end)

  it("reads the v0.3.12 single list (no paging query) with page_size = false", function()
    local urls, hook = recorder()
    local n = 0
    for _ in client.jobs.runs:each(P, "paged-job", { page_size = false, hook = hook }) do n = n + 1 end
    assert.equals(23, n)
    assert.equals(1, #urls)
    assert.falsy(urls[1]:find("?", 1, true), urls[1])
  end)

  it("uses 100 runs a page by default and starts at page_number", function()
    local urls, hook = recorder()
    local n = 0
    for _ in client.jobs.runs:each(P, "paged-job", { hook = hook }) do n = n + 1 end
    assert.equals(23, n)
    assert.truthy(urls[1]:find("pageSize=100", 1, true))
    n = 0
    for _ in client.jobs.runs:each(P, "paged-job", { page_size = 10, page_number = 2 }) do n = n + 1 end
    assert.equals(3, n) -- the third page of ten: runs 21..23
  end)

  it("stops cleanly on an error: nil, err, and the same again after the loop", function()
    local it = client.jobs.runs:each(P, "no-such-job")
    local n = 0
    for _ in it do n = n + 1 end
    assert.equals(0, n)
    local r, err = it()
    assert.is_nil(r)
    assert.equals("not_found", err.kind)
    local r2, err2 = it()
    assert.is_nil(r2)
    assert.equals(err, err2)
  end)

  it("iterates every job of a project (a single list)", function()
    local ids = {}
    local it = client.jobs:each(P)
    for job in it do
      assert.equals("Job", intuned.type(job))
      ids[#ids + 1] = job.id
    end
    table.sort(ids)
    assert.same({ "other-job", "paged-job" }, ids)
    assert.is_nil((it()))
    assert.is_nil(select(2, it()))
    local bad = intuned.client{ api_key = "wrong-key", workspace_id = "ws-local", server_url = emu.url,
                                retry = false }
    local bit = bad.jobs:each(P)
    local first, err = bit()
    assert.is_nil(first)
    assert.equals("unauthorized", err.kind)
    bad:close()
  end)

  it("refuses a bad page size (misuse raises)", function()
    assert.has_error(function() client.jobs.runs:each(P, "paged-job", { page_size = 0 }) end)
    assert.has_error(function() client.jobs.runs:each(P, "paged-job", { page_size = 5000 }) end)
    assert.has_error(function() client.jobs.runs:each(P, 42) end)
    assert.has_error(function() client.jobs.runs:each(P, "paged-job", { bogus_option = 1 })() end)
  end)
end)

describe("paging against scripted servers", function()
  -- A runs table whose list answers from `pages(opts)`; calls are counted.
  local function fake(pages)
    local t = { calls = 0 }
    function t.list(self, _, _, opts)
      self.calls = self.calls + 1
      assert(self.calls < 50, "the iterator did not stop")
      return pages(opts, self.calls)
    end
    function t.get() error("not used") end
    return t
  end
  local function runs(from, to, total)
    local list = {}
    for i = from, to do list[#list + 1] = { id = "r" .. i } end
    list.totalCount = total
    return list
  end
  local function collect(it)
    local ids = {}
    for r in it do ids[#ids + 1] = r.id end
    return ids, select(2, it())
  end

  it("stops when a server ignores pageNumber (a page with nothing new)", function()
    local f = fake(function() return runs(1, 3, 10) end)
    local ids, err = collect(workflow.each_run(f, "p", "j", { page_size = 3 }))
    assert.same({ "r1", "r2", "r3" }, ids)
    assert.is_nil(err)
    assert.equals(2, f.calls)
  end)

  it("gives a run once when newer runs push it to the next page", function()
    -- page 0: r5 r4; a new run arrives; page 1 now starts with r4 again
    local f = fake(function(opts)
      if opts.page_number == 0 then return { { id = "r5" }, { id = "r4" }, totalCount = 5 } end
      if opts.page_number == 1 then return { { id = "r4" }, { id = "r3" }, totalCount = 6 } end
      if opts.page_number == 2 then return { { id = "r2" }, { id = "r1" }, totalCount = 6 } end
      return { totalCount = 6 }
    end)
    local ids = collect(workflow.each_run(f, "p", "j", { page_size = 2 }))
    assert.same({ "r5", "r4", "r3", "r2", "r1" }, ids)
  end)

  it("hands over the runs read before a failure, then nil, err", function()
    local boom = intuned.new_error("server", "boom", { status = 500 })
    local f = fake(function(opts)
      if opts.page_number == 0 then return runs(1, 2, 6) end
      return nil, boom
    end)
    local ids, err = collect(workflow.each_run(f, "p", "j", { page_size = 2 }))
    assert.same({ "r1", "r2" }, ids)
    assert.equals(boom, err)
    assert.equals(2, f.calls)
  end)

  it("treats a list without totalCount as the whole list (v0.3.12)", function()
    local f = fake(function() return runs(1, 4, nil) end)
    local ids = collect(workflow.each_run(f, "p", "j", { page_size = 2 }))
    assert.same({ "r1", "r2", "r3", "r4" }, ids)
    assert.equals(1, f.calls)
  end)

  it("stops at an empty page even when totalCount says more", function()
    local f = fake(function(opts)
      if opts.page_number == 0 then return runs(1, 2, 99) end
      return runs(1, 0, 99)
    end)
    local ids = collect(workflow.each_run(f, "p", "j", { page_size = 2 }))
    assert.same({ "r1", "r2" }, ids)
    assert.equals(2, f.calls)
  end)
end)
