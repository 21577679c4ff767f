-- The operation table (src/ops.c) as the Lua side sees it: core.operations
-- rows, the client methods made from them, the requests the core builds
-- for them, and the emulator routing each of those requests back to the
-- same row (its statistics count requests by the operation it routed to).
local intuned = require "intuned"
local core = require "intuned.core"
local emulator = require "spec.helpers.emulator"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local KEY, WS = "test-key", "ws-local"
local CFG = { api_key = KEY, workspace_id = "ws 1/ä", server_url = "http://127.0.0.1:9/api/v1/workspace" }

local function rows()
  local out = {}
  for i, name in ipairs(core.operations) do
    out[i] = core.operations[name]
    assert(type(out[i]) == "table", "no row for " .. tostring(name))
  end
  assert(#out > 0, "no operations")
  return out
end

-- client.jobs.runs for the group "jobs.runs"
local function group_table(client, group)
  local t = client
  for part in group:gmatch("[^.]+") do t = t[part] end
  return t
end

local function job_input(id)
  return { id = id, payload = { { apiName = "a", parameters = {} } }, configuration = { runMode = "Order-Irrelevant" } }
end

-- A body for a row of the Run API or Auth Sessions, by its body type; nil
-- for the job rows.
local function other_body(row)
  local t = row.body_type
  if t == "RunStartInput" then return { api = "a", parameters = {} } end
  if t == "AuthSessionCreateInput" or t == "AuthSessionUpdateInput" then return { parameters = {} } end
  if t == "AuthSessionValidateInput" then return {} end
  return nil
end

-- The job rows (the routing test that calls each row in turn needs a job
-- and its run; the Run API's and auth sessions' rows are called in turn by
-- spec/run_auth_spec.lua, and all rows at once by the batch test below).
local JOB_GROUPS = { jobs = true, ["jobs.runs"] = true }
local function job_rows()
  local out = {}
  for _, row in ipairs(rows()) do if JOB_GROUPS[row.group] then out[#out + 1] = row end end
  return out
end

local function update_input()
  return { payload = { { apiName = "b", parameters = {} } }, configuration = { maxConcurrentRequests = 2 } }
end

-- encodeURIComponent, to expand a template by hand
local function encode(s)
  return (s:gsub("[^%w%-_%.!~%*'%(%)]", function(c) return ("%%%02X"):format(c:byte()) end))
end

describe("core.operations", function()
  it("lists the operation names, and holds a row for each", function()
    assert.equals(22, #core.operations)
    assert.same(core.operations, intuned.operations)
    local newest = {}
    for i, name in ipairs(core.operations) do
      assert.equals("string", type(name))
      local row = core.operations[name]
      assert.equals("table", type(row), name)
      assert.equals(name, row.name)
      assert.equals(row.group .. ":" .. row.method_name, name)
      assert.truthy(({ GET = 1, POST = 1, PUT = 1, DELETE = 1 })[row.method], name)
      assert.truthy(row.path:match("^/{workspace}/projects/{project}/"), name)
      assert.truthy(math.type == nil or math.type(row.status) == "integer")
      assert.truthy(row.status >= 200 and row.status < 300)
      assert.equals("boolean", type(row.idempotent))
      assert.truthy(row.api == "both" or row.api == "newest", name)
      if row.api == "newest" then newest[#newest + 1] = name end
      assert.equals("project", row.args[1])
      assert.equals(row.body ~= nil, row.body_type ~= nil)
      if row.body_type then assert.equals(row.body_type, intuned[row.body_type].name) end
      assert.equals("table", type(row.query))
      -- the path arguments are the template's placeholders, in order
      local ph = {}
      for p in row.path:gmatch("{([%w_]+)}") do if p ~= "workspace" then ph[#ph + 1] = p end end
      assert.same(ph, row.args)
      assert.truthy(i >= 1)
    end
    assert.same({ "jobs:update", "jobs.runs:get", "auth_sessions:update", "auth_sessions:update_result",
      "auth_sessions:validate", "auth_sessions:validate_result" }, newest)
    assert.is_false(core.operations["jobs:create"].idempotent)
    assert.is_false(core.operations["jobs:trigger"].idempotent)
    assert.equals(201, core.operations["jobs:create"].status)
    assert.equals(204, core.operations["jobs:delete"].status)
    assert.is_nil(core.operations["jobs:delete"].response_type)
    assert.equals("Job", core.operations["jobs:list"].list_of)
    assert.same({ "page_number", "page_size", "sort_by" }, core.operations["jobs.runs:list"].query)
  end)

  it("describes the arguments with the names the binding accepts", function()
    local seen = {}
    for _, name in ipairs(core.arguments) do
      local a = core.arguments[name]
      assert.equals(name, a.name)
      assert.truthy(a.where == "path" or a.where == "query" or a.where == "body")
      seen[#seen + 1] = name
    end
    assert.same({ "project", "job_id", "run_id", "page_number", "page_size", "sort_by", "input", "update",
      "auth_session_id", "operation_id" }, seen)
    assert.same({ "runId", "jobRunId", "job_run_id" }, core.arguments.run_id.aliases)
    assert.equals("pageNumber", core.arguments.page_number.wire)
    -- every row's arguments are in the list
    for _, row in ipairs(rows()) do
      for _, a in ipairs(row.args) do assert.equals("path", core.arguments[a].where) end
      for _, a in ipairs(row.query) do assert.equals("query", core.arguments[a].where) end
      if row.body then assert.equals("body", core.arguments[row.body].where) end
    end
  end)

  it("builds, for every row, the request the row describes", function()
    local sample = { project = "my project/ä+&?#%", job_id = "job id:1;=@,$", run_id = "r#1/2",
      auth_session_id = "login#2", operation_id = "op 3+4" }
    for _, row in ipairs(rows()) do
      local args = {}
      for _, a in ipairs(row.args) do args[a] = sample[a] end
      if row.body == "input" then args.input = other_body(row) or job_input("abcdef1") end
      if row.body == "update" then args.update = update_input() end
      local req = assert(core.build_request(CFG, row.name, args))
      assert.equals(row.method, req.method)
      assert.equals(row.status, req.expect_status)
      assert.equals(row.name, req.op)
      assert.equals(row.body ~= nil, req.body ~= nil)
      local want = row.path:gsub("{([%w_]+)}", function(p)
        return encode(p == "workspace" and CFG.workspace_id or sample[p])
      end)
      assert.equals(want, req.path)
      -- each path argument by each of its other names
      for _, a in ipairs(row.args) do
        for _, alias in ipairs(core.arguments[a].aliases) do
          local args2 = {}
          for k, v in pairs(args) do args2[k] = v end
          args2[a] = nil
          args2[alias] = "by-" .. alias
          local r2 = assert(core.build_request(CFG, row.name, args2))
          assert.truthy(r2.path:find("/by-" .. alias, 1, true), row.name .. " " .. alias)
        end
      end
      -- each path argument missing: refused naming it
      for _, a in ipairs(row.args) do
        local args2 = {}
        for k, v in pairs(args) do args2[k] = v end
        args2[a] = nil
        local r2, err = core.build_request(CFG, row.name, args2)
        assert.is_nil(r2)
        assert.equals("validation", err.kind)
        assert.equals(a, err.path)
      end
    end
  end)
end)

describe("the client's methods, made from core.operations", function()
  local emu

  setup(function() emu = emulator.start{ "--time-scale", "0.001" } end)
  teardown(function()
    if emu then emu.stop() end
    emulator.stop_all()
  end)

  local function new_client()
    return intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url, retry = false, timeout = 10 }
  end

  it("has a method for every row at client[group][method_name], checking its arguments", function()
    local c = new_client()
    for _, row in ipairs(rows()) do
      local t = group_table(c, row.group)
      local m = t[row.method_name]
      assert.equals("function", type(m), row.name)
      local fname = row.method_name
      -- each positional string argument
      for i = 1, #row.args do
        local argv = {}
        for k = 1, #row.args do argv[k] = "x" end
        argv[i] = 42
        assert.has_error(function() m(t, unpack(argv, 1, #row.args)) end,
          ("bad argument #%d to '%s' (string expected, got number)"):format(i, fname))
      end
      local n = #row.args
      local argv = {}
      for k = 1, n do argv[k] = "x" end
      if row.body then
        argv[n + 1] = "nope"
        assert.has_error(function() m(t, unpack(argv, 1, n + 1)) end,
          ("bad argument #%d to '%s' (table or intuned.%s expected, got string)"):format(n + 1, fname, row.body_type))
        argv[n + 1] = {}
        n = n + 1
      end
      argv[n + 1] = "opts"
      assert.has_error(function() m(t, unpack(argv, 1, n + 1)) end,
        ("bad argument #%d to '%s' (table expected, got string)"):format(n + 1, fname))
      -- called with "." instead of ":"
      assert.has_error(function() m("x") end,
        ("bad self to '%s' (call it as client.%s:%s(...))"):format(fname, row.group, fname))
    end
    c:close()
  end)

  -- Arguments for each row against the emulator: a job made here, and the
  -- run its trigger starts.
  local function call_args(row, ids)
    local argv = {}
    for _, a in ipairs(row.args) do argv[#argv + 1] = ids[a] end
    if row.body == "input" then argv[#argv + 1] = job_input(ids.job_id) end
    if row.body == "update" then argv[#argv + 1] = update_input() end
    return argv
  end

  it("sends each row's request, and the emulator routes it to the same row", function()
    local c = new_client()
    local ids = { project = "ops-spec", job_id = "ops-spec-job" }
    -- in the table's order, delete last so the others find the job
    local all, delete = {}, nil
    for _, row in ipairs(job_rows()) do
      if row.name == "jobs:delete" then delete = row else all[#all + 1] = row end
    end
    all[#all + 1] = assert(delete)
    local before = emu.stats().by_route
    for _, row in ipairs(all) do
      local t = group_table(c, row.group)
      local argv = call_args(row, ids)
      local res, err = t[row.method_name](t, unpack(argv, 1, #argv))
      if row.name == "jobs:trigger" then ids.run_id = assert(res, tostring(err)).jobRunId end
      if not ids.run_id then ids.run_id = "no-run-yet" end
      assert.truthy(res ~= nil or intuned.is_error(err), row.name)
      if row.name ~= "jobs.runs:terminate" then
        -- terminate may meet a run already finished (409); the rest succeed
        assert.truthy(res, row.name .. ": " .. tostring(err))
      end
    end
    local after = emu.stats().by_route
    for _, row in ipairs(all) do
      local k = row.method .. " " .. row.name
      assert.equals((before[k] or 0) + 1, after[k], k)
    end
    c:close()
  end)

  it("batch accepts every operation name, and each call reaches its row", function()
    local c = new_client()
    local ids = { project = "ops-spec-batch", job_id = "ops-spec-batch-job", run_id = "no-such-run",
                  auth_session_id = "no-such-session", operation_id = "no-such-operation" }
    assert(c.jobs:create(ids.project, job_input(ids.job_id)))
    local calls = {}
    for i, row in ipairs(rows()) do
      local call = { op = row.name }
      for k, v in pairs(ids) do call[k] = v end
      if row.body == "input" then call.input = other_body(row) or job_input("ops-spec-batch-2") end
      if row.body == "update" then call.update = update_input() end
      calls[i] = call
    end
    local before = emu.stats().by_route
    local out = c:batch(calls)
    assert.equals(#calls, #out)
    for i, r in ipairs(out) do
      if intuned.is_error(r) then
        -- a missing run (404) or the job deleted by a concurrent call, never a refusal here
        assert.truthy(r.kind ~= "usage" and r.kind ~= "validation", calls[i].op .. ": " .. tostring(r))
      end
    end
    local after = emu.stats().by_route
    for _, row in ipairs(rows()) do
      local k = row.method .. " " .. row.name
      assert.equals((before[k] or 0) + 1, after[k], k)
    end
    -- an unknown name is refused before anything is sent
    assert.has_error(function() c:batch{ { op = "jobs:nope", project = "p" } } end,
      "bad argument #1 to 'batch' (calls[1].op: unknown operation 'jobs:nope')")
    assert.has_error(function() c:batch{ { op = 1, project = "p" } } end,
      "bad argument #1 to 'batch' (calls[1].op: unknown operation '1')")
    c:close()
  end)
end)
