-- intuned.plan: jobs as code.  Compare the jobs a file declares with those
-- of a project (plan), then make the project match (apply).
--
--   local p, err = intuned.plan(client, project, jobs[, { prune = true }])
--   print(intuned.plan_text(p))
--   local report, err = intuned.apply(client, project, jobs[, { prune = true }])
--
-- Both sides are compared as create bodies (JobInput, through
-- intuned.convert: what the server owns -- state, times, ids of the project
-- -- drops out, and a job read back from the server compares equal to the
-- definition it was created from), field by field.  Secrets (webhook header
-- values, the S3 secretAccessKey) are compared but shown as "***".
-- apply creates, then updates (the newest API's update: the whole
-- definition), then deletes (only with prune), one call at a time, and stops
-- at the first failure: the report says what was done and what was not.

--- Jobs as code: @{plan} compares the jobs a file declares with those of a
-- project (which to create, which to update with a field-by-field diff,
-- which to delete with `prune`), @{apply} makes the project match, and
-- `plan_text` / `report_text` say it for people. `intuned.plan`,
-- `intuned.apply` are these functions. Declared jobs are tables shaped like
-- a `JobInput` (or either API version's `Job`, or `JobInput` objects): both
-- sides are compared as create bodies (through @{intuned.convert}), so what
-- the server owns (state, times, project ids) never counts as a change, and
-- a second apply of the same definitions reports no changes. Secrets
-- (webhook header values, the S3 `secretAccessKey`) are compared but shown
-- as `***`.
-- @module intuned.plan
local core = require "intuned.core"
local convert = require "intuned.convert"

local M = {}

local null = core.null

local is_array, sorted_keys = convert.is_array, convert.sorted_keys

local function join(path, key)
  if type(key) == "number" then return path .. "[" .. key .. "]" end
  return path == "" and key or path .. "." .. key
end

-- Paths whose values are secrets: shown as *** (the same fields tostring hides).
local function secret_path(path)
  return path:match("^sink%.headers%.") ~= nil or path:match("^sink%.headers$") ~= nil
    or path == "sink.secretAccessKey"
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- The differences of two plain values as { path =, old =, new = } (old or
-- new nil: the field is absent on that side).
local function diff(old, new, path, out)
  if deep_equal(old, new) then return out end
  if type(old) == "table" and type(new) == "table" and is_array(old) == is_array(new) then
    if is_array(old) then
      local n = math.max(#old, #new)
      for i = 1, n do diff(old[i], new[i], join(path, i), out) end
    else
      local keys = {}
      for k in pairs(old) do keys[k] = true end
      for k in pairs(new) do keys[k] = true end
      for _, k in ipairs(sorted_keys(keys)) do diff(old[k], new[k], join(path, k), out) end
    end
    return out
  end
  out[#out + 1] = { path = path, old = old, new = new, secret = secret_path(path) or nil }
  return out
end

-- Empty objects taken out (an absent `parameters` and `{}` say the same;
-- the update body requires them, so a job updated from a definition
-- without them comes back with `{}`).  Empty arrays stay.
local function prune_empty(t)
  if type(t) ~= "table" then return t end
  local arr = is_array(t) or getmetatable(t) == core.array_mt
  for k, v in pairs(t) do
    if type(v) == "table" then
      prune_empty(v)
      if not arr and next(v) == nil and getmetatable(v) ~= core.array_mt then t[k] = nil end
    end
  end
  return t
end

-- A job definition as a plain table of its create body; nil, err.
local function as_input(src)
  local input, err = convert.to_input(src)
  if not input then return nil, err end
  return input, prune_empty(input:to_table())
end

local function check_client(client, fname)
  if type(client) ~= "table" or type(client.jobs) ~= "table" or type(client.jobs.list) ~= "function" then
    error(("bad argument #1 to '%s' (an intuned client expected, got %s)"):format(fname, type(client)), 3)
  end
end

local function check_args(client, project, jobs, opts, fname)
  check_client(client, fname)
  if type(project) ~= "string" then
    error(("bad argument #2 to '%s' (string expected, got %s)"):format(fname, type(project)), 3)
  end
  if type(jobs) ~= "table" then
    error(("bad argument #3 to '%s' (an array of job definitions expected, got %s)"):format(fname, type(jobs)), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #4 to '%s' (table expected, got %s)"):format(fname, type(opts)), 3)
  end
  for k, v in pairs(opts or {}) do
    if k ~= "prune" and k ~= "call" then
      error(("bad argument #4 to '%s' (unknown option '%s' (options: call, prune))"):format(fname, tostring(k)), 3)
    end
    if (k == "prune" and type(v) ~= "boolean") or (k == "call" and type(v) ~= "table") then
      error(("bad argument #4 to '%s' (option '%s' must be a %s)")
        :format(fname, k, k == "prune" and "boolean" or "table"), 3)
    end
  end
end

local function make_plan(client, project, jobs, opts)
  opts = opts or {}
  local declared, order = {}, {}
  local n = 0
  for k in pairs(jobs) do
    if type(k) ~= "number" then
      return nil, core.new_error("validation", "the job definitions must be an array (a key '" .. tostring(k)
        .. "' found)", { path = tostring(k) })
    end
    n = n + 1
  end
  for i = 1, n do
    local src = jobs[i]
    local path = "jobs[" .. i .. "]"
    if type(src) ~= "table" and not core.type(src) then
      return nil, core.new_error("validation", "a job table expected, got " .. type(src), { path = path })
    end
    local input, t_or_err = as_input(src)
    if not input then
      local e = t_or_err
      local p = e.path and e.path ~= "" and (path .. "." .. e.path) or path
      return nil, core.new_error("validation", tostring(e.message), { path = p })
    end
    local id = t_or_err.id
    if type(id) ~= "string" or id == "" then
      return nil, core.new_error("validation", "every declared job needs an id", { path = path .. ".id" })
    end
    if declared[id] then
      return nil, core.new_error("validation", ("job %s is declared twice (also %s)")
        :format(id, declared[id].path), { path = path .. ".id" })
    end
    local warnings = input:warnings()
    declared[id] = { input = input, table = t_or_err, src = src, path = path, warnings = warnings }
    order[#order + 1] = id
  end

  local existing, err = client.jobs:list(project, opts.call)
  if not existing then return nil, err end
  local have, have_order = {}, {}
  for _, job in ipairs(existing) do
    local _, t = as_input(job)
    -- a job the server holds that does not convert (a shape of the newest API that v0.3.12 cannot carry)
    -- still counts as existing; its definition compares as unknown
    have[job.id] = { job = job, table = t or {} }
    have_order[#have_order + 1] = job.id
  end

  local plan = { project = project, prune = opts.prune or false, create = {}, update = {}, delete = {},
                 unchanged = {}, unmanaged = {}, warnings = {} }
  for _, id in ipairs(order) do
    local d = declared[id]
    for _, w in ipairs(d.warnings) do plan.warnings[#plan.warnings + 1] = d.path .. " (" .. id .. "): " .. w end
    local h = have[id]
    if not h then
      plan.create[#plan.create + 1] = { id = id, input = d.input }
    else
      local changes = diff(h.table, d.table, "", {})
      if #changes == 0 then
        plan.unchanged[#plan.unchanged + 1] = id
      else
        local upd, uerr = convert.to_update(d.src)
        if not upd then
          local up = uerr.path and uerr.path ~= "" and (d.path .. "." .. uerr.path) or d.path
          return nil, core.new_error("validation", tostring(uerr.message), { path = up })
        end
        plan.update[#plan.update + 1] = { id = id, changes = changes, update = upd }
      end
    end
  end
  table.sort(have_order)
  for _, id in ipairs(have_order) do
    if not declared[id] then
      if plan.prune then plan.delete[#plan.delete + 1] = { id = id }
      else plan.unmanaged[#plan.unmanaged + 1] = id end
    end
  end
  plan.changes = #plan.create + #plan.update + #plan.delete
  return plan
end

--- Compare declared jobs with a project's: what @{apply} would do. One
-- call (the jobs list); nothing is changed.
-- @tparam intuned.client.Client client the client
-- @tparam string project the project name
-- @tparam table jobs an array of job definitions (tables shaped like a
-- `JobInput`, or objects); each needs an `id`, no id twice
-- @tparam[opt] table opts `prune` (boolean: delete the project's jobs the
-- array does not declare), `call` (per-call options of every call)
-- @treturn table the plan: `project`, `prune`, `create` (`{ {id =, input =
-- JobInput}, ... }`), `update` (`{ {id =, changes = { {path =, old =, new
-- =, secret =}, ... }, update = JobUpdateInput}, ... }`: `old` or `new` nil
-- where the field is absent on that side, `secret` true where the values
-- must not be shown), `delete` (`{ {id =}, ... }`), `unchanged` and
-- `unmanaged` (ids: in the project, not declared, left alone without
-- `prune`), `warnings` (what the conversion of a definition dropped) and
-- `changes` (the number of creates, updates and deletes)
-- @return[2] nil
-- @treturn[2] intuned.Error kind `validation` (path `jobs[i]...`) for a
-- definition that is not a job, or the list call's failure
-- @raise on a bad argument or option
-- @usage local p = assert(intuned.plan(client, "my-project", dofile("jobs.lua")))
-- print(intuned.plan_text(p))
function M.plan(client, project, jobs, opts)
  check_args(client, project, jobs, opts, "plan")
  local p, err = make_plan(client, project, jobs, opts)
  return p, err
end

local function step_list(p)
  local steps = {}
  for _, c in ipairs(p.create) do steps[#steps + 1] = { action = "create", id = c.id, input = c.input } end
  for _, u in ipairs(p.update) do steps[#steps + 1] = { action = "update", id = u.id, update = u.update } end
  for _, d in ipairs(p.delete) do steps[#steps + 1] = { action = "delete", id = d.id } end
  return steps
end

--- Make a project match declared jobs: @{plan}, then its creates, updates
-- (the newest API's update: the whole definition) and deletes (only with
-- `prune`), one call at a time in that order. The first failure stops
-- it: the report says what was done and what was not. Applying the same
-- definitions again finds nothing to do.
-- @tparam intuned.client.Client client the client
-- @tparam string project the project name
-- @tparam table jobs an array of job definitions (as @{plan})
-- @tparam[opt] table opts as @{plan}, and `plan` (a plan made before, to
-- apply instead of making a new one)
-- @treturn table the report: `plan`, `done` (`{ {action =, id =}, ... }`
-- in the order done), `not_done` (the same for what was not attempted),
-- `failed` (`{action =, id =, error =}` or nil), `changes` (the number done)
-- @return[2] nil
-- @treturn[2] intuned.Error the failure that stopped it (or the plan's)
-- @treturn[2] table the report so far (nil when the plan failed)
-- @raise on a bad argument or option
-- @usage local report, err, partial = intuned.apply(client, "my-project", dofile("jobs.lua"), { prune = true })
-- if not report then print(intuned.report_text(partial or {})) error(tostring(err)) end
function M.apply(client, project, jobs, opts)
  local given
  if type(opts) == "table" and opts.plan ~= nil then
    given = opts.plan
    if type(given) ~= "table" or type(given.create) ~= "table" then
      error("bad argument #4 to 'apply' (option 'plan' must be a plan from intuned.plan)", 2)
    end
    local o = {}
    for k, v in pairs(opts) do if k ~= "plan" then o[k] = v end end
    opts = o
  end
  check_args(client, project, jobs, opts, "apply")
  local p = given
  if not p then
    local err
    p, err = make_plan(client, project, jobs, opts)
    if not p then return nil, err end
  end
  local call = opts and opts.call
  local steps = step_list(p)
  local report = { plan = p, done = {}, not_done = {}, changes = 0 }
  for i, s in ipairs(steps) do
    local ok, err
    if s.action == "create" then
      ok, err = client.jobs:create(project, s.input, call)
    elseif s.action == "update" then
      ok, err = client.jobs:update(project, s.id, s.update, call)
    else
      ok, err = client.jobs:delete(project, s.id, call)
    end
    if not ok then
      report.failed = { action = s.action, id = s.id, error = err }
      for j = i + 1, #steps do report.not_done[#report.not_done + 1] = { action = steps[j].action, id = steps[j].id } end
      return nil, err, report
    end
    report.done[#report.done + 1] = { action = s.action, id = s.id }
    report.changes = report.changes + 1
  end
  return report
end

-- A value for people: JSON (strings quoted), *** for secrets, "(absent)".
local function show(v, secret)
  if v == nil then return "(absent)" end
  if secret then return "***" end
  if v == null then return "null" end
  local ok, s = pcall(core.encode_json, v)
  if ok and s then return s end
  return tostring(v)
end

--- A plan for people: one line per job to create (`+`), update (`~`, then
-- a line per changed field: `path: old -> new`, secrets as `***`) and
-- delete (`-`), then the unchanged and unmanaged jobs.
-- @tparam table p a plan from @{plan}
-- @treturn string the text (lines ending in newlines)
function M.plan_text(p)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add(("Plan for project %s: %d to create, %d to update, %d to delete, %d unchanged")
    :format(p.project, #p.create, #p.update, #p.delete, #p.unchanged))
  for _, c in ipairs(p.create) do add("  + create " .. c.id) end
  for _, u in ipairs(p.update) do
    add("  ~ update " .. u.id)
    for _, ch in ipairs(u.changes) do
      add(("      %s: %s -> %s"):format(ch.path, show(ch.old, ch.secret), show(ch.new, ch.secret)))
    end
  end
  for _, d in ipairs(p.delete) do add("  - delete " .. d.id) end
  if #p.unmanaged > 0 then
    add(("  (not in the file, left alone without --prune: %s)"):format(table.concat(p.unmanaged, ", ")))
  end
  for _, w in ipairs(p.warnings) do add("  warning: " .. w) end
  if p.changes == 0 then add("No changes.") end
  return table.concat(out, "\n") .. "\n"
end

--- An apply report for people: what was done, what failed, what was not
-- attempted.
-- @tparam table r a report from @{apply}
-- @treturn string the text (lines ending in newlines)
function M.report_text(r)
  local out = {}
  local function add(s) out[#out + 1] = s end
  local sign = { create = "+", update = "~", delete = "-" }
  for _, d in ipairs(r.done or {}) do add(("  %s %sd %s"):format(sign[d.action], d.action, d.id)) end
  if r.failed then
    add(("  ! %s %s failed: %s"):format(r.failed.action, r.failed.id, tostring(r.failed.error)))
  end
  for _, d in ipairs(r.not_done or {}) do add(("  . %s %s not done"):format(d.action, d.id)) end
  if r.failed then
    add(("Stopped: %d done, 1 failed, %d not done."):format(#(r.done or {}), #(r.not_done or {})))
  elseif (r.changes or 0) == 0 then
    add("No changes.")
  else
    add(("Applied: %d change%s."):format(r.changes, r.changes == 1 and "" or "s"))
  end
  return table.concat(out, "\n") .. "\n"
end

return M
