-- intuned.convert: one job definition into the body of another operation.
--
--   intuned.JobInput.from(src[, changes])        job:to_input([changes])   create body (v0.3.12)
--   intuned.JobUpdateInput.from(src[, changes])  job:to_update([changes])  update body (newest API)
--
-- src is a Job, JobInput or JobUpdateInput object, or a plain table shaped
-- like one (job:to_table(), a decoded JSON document of either API version).
-- changes (optional) is a table whose keys replace top-level fields of the
-- result, e.g. { id = "copy-of-x" }.  The result is built with T.new, so it is
-- checked like any other input: nil, err when it does not fit.
--
-- What the target shape has no place for:
-- * fields the server owns (created_at, updated_at, next_run_time,
--   last_run_time, state, projectId / project_id, workspace_id, reason,
--   schedule_id; the id for an update, which the URL names) go silently;
-- * fields that only the other API version has go with a warning
--   (obj:warnings()), or silently when nothing is lost: runMode has a single
--   value, and a value equal to the target server's own default (request
--   timeout 600 s, 3 attempts, backoff 1, first retry after 1 s) changes
--   nothing;
-- * unknown fields go with a warning.
-- Shapes are mapped: retry intervals in ms <-> duration strings, authSession
-- <-> auth_session, bare calendar values in arrays <-> {start = v}, the list
-- item's proxy object -> its URL, webhook header values -> strings.
-- Secrets (S3 secretAccessKey, webhook headers) are data and are carried
-- over; tostring of the result still hides them.  Warnings never quote values.

--- Conversions between job definitions: the functions behind
-- @{intuned.T}.from (`intuned.JobInput.from`, `intuned.JobUpdateInput.from`)
-- and `job:to_input()` / `job:to_update()`, where they are documented.
-- @module intuned.convert
local core = require "intuned.core"

local null = core.null

local M = {}

local SOURCES = { Job = true, JobInput = true, JobUpdateInput = true }

-- Server-owned keys of a Job in either version, by wire and SDK name.
local SERVER = {}
for _, k in ipairs{ "created_at", "createdAt", "updated_at", "updatedAt", "next_run_time", "nextRunTime",
                    "last_run_time", "lastRunTime", "state", "projectId", "project_id", "workspace_id",
                    "workspaceId", "reason", "schedule_id", "scheduleId" } do
  SERVER[k] = "server"
end

local CALENDAR_FIELDS = { "second", "minute", "hour", "dayOfWeek", "dayOfMonth", "month", "year" }

local function present(v) return v ~= nil and v ~= null end

local function join(path, key)
  return path == "" and key or path .. "." .. key
end

--- Whether a plain table stands for a JSON array: marked with
-- `intuned.array_mt` (or `intuned.object_mt` for an object), else by having
-- a first element.  Shared with `intuned.plan`.
-- @tparam table t
-- @treturn boolean
function M.is_array(t)
  if getmetatable(t) == core.array_mt then return true end
  if getmetatable(t) == core.object_mt then return false end
  return t[1] ~= nil
end
local is_array = M.is_array

--- The keys of a table, sorted as strings (stable warnings and diffs).
-- @tparam table t
-- @treturn {string,...}
function M.sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end
local sorted_keys = M.sorted_keys

-- Apply rules to the keys of t (in sorted order, so warnings are stable):
-- rules[k] is true (kept), "server" (dropped silently), or a function
-- (ctx, value, path, out) that writes what it maps to into out.
local function map(ctx, t, path, rules, out)
  for _, k in ipairs(sorted_keys(t)) do
    local rule, p = rules[k], join(path, tostring(k))
    if rule == true then
      out[k] = t[k]
    elseif type(rule) == "function" then
      rule(ctx, t[k], p, out)
    elseif rule == nil then
      ctx:note(p, "unknown field; dropped")
    end
  end
  return out
end

-- A field of the other API version: dropped, with a warning unless it holds
-- `default` (the target server's behaviour without it).
local function other(default)
  return function(ctx, v, p)
    if present(v) and v ~= default then ctx:note(p, ctx.other) end
  end
end

-- A mapper that applies `fn` only to tables; anything else is kept for T.new
-- to refuse with its path.
local function tables(fn, key)
  return function(ctx, v, p, out)
    if type(v) == "table" then out[key] = fn(ctx, v, p) else out[key] = v end
  end
end

local function ms_of(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then return core.duration_ms(v) end
  return nil
end

-- Milliseconds as a duration string of the largest exact unit.
local function duration_of(ms)
  if type(ms) ~= "number" then return ms end
  if ms ~= math.floor(ms) or ms <= 0 or ms >= 2 ^ 53 then return ("%.17gms"):format(ms) end
  for _, u in ipairs{ { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } } do
    if ms % u[1] == 0 then return ("%d%s"):format(ms / u[1], u[2]) end
  end
  return ("%dms"):format(ms)
end

local function header_value(v)
  if type(v) == "number" then
    if v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  if type(v) == "boolean" then return tostring(v) end
  return v
end

-- ------------------------------------------------------------ to JobInput

local to_input = {}

function to_input.retry(ctx, r, p)
  local out = map(ctx, r, p, {
    maximumAttempts = true,
    backoffCoefficient = true,
    initialInterval = function(_, v, _, o) o.initialInterval = duration_of(v) end,
    maximumInterval = function(_, v, _, o) o.maximumInterval = duration_of(v) end,
  }, {})
  -- required at v0.3.12; 3 is what the newest API assumes when it is absent
  if out.maximumAttempts == nil then out.maximumAttempts = 3 end
  return out
end

function to_input.configuration(ctx, c, p)
  local out = map(ctx, c, p, {
    runMode = true,
    maxConcurrentRequests = true,
    retry = tables(to_input.retry, "retry"),
    requestTimeout = other(600),
  }, {})
  if out.runMode == nil then out.runMode = "Order-Irrelevant" end -- the one mode, required at v0.3.12
  return out
end

-- Each payload item mapped with `rules` (what is not a table is kept, for the
-- model to refuse with its path); `finish(o)` completes a mapped item.
local function map_payloads(ctx, list, p, rules, finish)
  local out = core.array()
  for i, item in ipairs(list) do
    if type(item) == "table" then
      local o = map(ctx, item, p .. "[" .. i .. "]", rules, {})
      if finish then finish(o) end
      out[i] = o
    else
      out[i] = item
    end
  end
  return out
end

function to_input.payload(ctx, list, p)
  return map_payloads(ctx, list, p, { apiName = true, parameters = true, requestTimeout = other(600),
                                      retry = other(nil) })
end

local SINK_INPUT = {
  webhook = { type = true, url = true, headers = true, skipOnFail = true, apisToSend = other(nil) },
  s3 = { type = true, region = true, bucket = true, accessKeyId = true, secretAccessKey = true, prefix = true,
         skipOnFail = true, apisToSend = other(nil), endpoint = other(nil), forcePathStyle = other(nil) },
}

function to_input.sink(ctx, v, p, out)
  if not present(v) then return end -- no sink: nothing to send
  local rules = type(v) == "table" and SINK_INPUT[v.type]
  out.sink = rules and map(ctx, v, p, rules, {}) or v
end

-- A copy of calendar c with each array item of its fields mapped by
-- `item`, and each lone range object by `range` (when given).
local function map_calendar(c, item, range)
  local out = {}
  for k, v in pairs(c) do out[k] = v end
  for _, f in ipairs(CALENDAR_FIELDS) do
    local v = c[f]
    if type(v) == "table" and is_array(v) then
      local list = core.array()
      for i, x in ipairs(v) do list[i] = item(x) end
      out[f] = list
    elseif range and type(v) == "table" then
      out[f] = range(v)
    end
  end
  return out
end

-- v0.3.12 calendar arrays hold range objects only: a bare value v is the
-- range {start = v}.
local function calendar_input(c)
  return map_calendar(c, function(x)
    if type(x) == "number" or type(x) == "string" then return { start = x } end
    return x
  end)
end

function to_input.schedule(ctx, v, p, out)
  if not present(v) then return end -- v0.3.12 has no null schedule: absent says the same
  if type(v) ~= "table" then out.schedule = v return end
  out.schedule = map(ctx, v, p, {
    intervals = true,
    jitter = other(nil),
    calendars = function(_, cals, _, o)
      if type(cals) ~= "table" then o.calendars = cals return end
      o.calendars = core.array()
      for i, c in ipairs(cals) do o.calendars[i] = type(c) == "table" and calendar_input(c) or c end
    end,
  }, {})
end

function to_input.auth(ctx, v, p, out)
  if not present(v) then return end
  if type(v) ~= "table" then out.authSession = v return end
  out.authSession = map(ctx, v, p, { id = true, checkAttempts = other(3), createAttempts = other(3) }, {})
end

local INPUT_RULES = {
  id = true,
  sink = to_input.sink,
  payload = tables(to_input.payload, "payload"),
  schedule = to_input.schedule,
  authSession = to_input.auth,
  auth_session = to_input.auth,
  configuration = tables(to_input.configuration, "configuration"),
  proxy = other(nil),
}
for k, v in pairs(SERVER) do INPUT_RULES[k] = v end

-- ------------------------------------------------------- to JobUpdateInput

local to_update = {}

function to_update.retry(ctx, r, p)
  local out = map(ctx, r, p, {
    maximumAttempts = true,
    backoffCoefficient = other(1),
    initialInterval = function(c, v, ip)
      if present(v) and ms_of(v) ~= 1000 then c:note(ip, c.other) end
    end,
    maximumInterval = other(nil),
  }, {})
  if next(out) == nil then return nil end -- nothing left: the server's default
  return out
end

function to_update.configuration(ctx, c, p)
  return map(ctx, c, p, {
    runMode = other("Order-Irrelevant"),
    maxConcurrentRequests = true,
    requestTimeout = true,
    retry = tables(to_update.retry, "retry"),
  }, {})
end

-- The newest API takes parameters as an object only, and requires them.
local function parameters_update(ctx, v, p, out)
  if not present(v) then
    out.parameters = core.object()
  elseif type(v) == "table" and is_array(v) then
    if #v > 0 then ctx:note(p, "an array of parameters exists only in v0.3.12; sent as {}") end
    out.parameters = core.object()
  else
    out.parameters = v
  end
end

function to_update.payload(ctx, list, p)
  return map_payloads(ctx, list, p, { apiName = true, parameters = parameters_update, requestTimeout = true,
                                      retry = true },
    function(o) if o.parameters == nil then o.parameters = core.object() end end)
end

local function headers_update(_, v, _, out)
  if type(v) ~= "table" then out.headers = v return end
  local h = core.object()
  for k, x in pairs(v) do h[k] = header_value(x) end -- header values are strings in the newest API
  out.headers = h
end

local SINK_UPDATE = {
  webhook = { type = true, url = true, headers = headers_update, skipOnFail = true, apisToSend = true },
  s3 = { type = true, region = true, bucket = true, accessKeyId = true, secretAccessKey = true, prefix = true,
         skipOnFail = true, apisToSend = true, endpoint = true, forcePathStyle = true },
}

function to_update.sink(ctx, v, p, out)
  local rules = type(v) == "table" and SINK_UPDATE[v.type]
  out.sink = rules and map(ctx, v, p, rules, {}) or v
end

function to_update.auth(ctx, v, p, out)
  if type(v) ~= "table" then out.auth_session = v return end
  out.auth_session = map(ctx, v, p, { id = true, checkAttempts = true, createAttempts = true }, {})
end

-- A job's proxy is a URL string (get job) or {version = "v1", url = ...}
-- (list item); the update body takes the URL.
function to_update.proxy(_, v, _, out)
  if type(v) == "table" and type(v.url) == "string" then out.proxy = v.url else out.proxy = v end
end

-- The newest API's ranges carry `step` only with `end`, and add no default
-- step.  A range without `end` is the single value `start` (v0.3.12's
-- server reads it so): its step says nothing.  Step 1 is the default that
-- v0.3.12's SDK adds to every range.  Both go; nothing is lost.
local function range_update(r)
  if type(r) ~= "table" or is_array(r) or r.step == nil or (r["end"] ~= nil and r.step ~= 1) then return r end
  local out = {}
  for k, v in pairs(r) do out[k] = v end
  out.step = nil
  return out
end

local function calendar_update(c)
  return map_calendar(c, range_update, range_update)
end

function to_update.schedule(_, v, _, out)
  if type(v) ~= "table" or type(v.calendars) ~= "table" then out.schedule = v return end
  local s = {}
  for k, x in pairs(v) do s[k] = x end
  s.calendars = core.array()
  for i, c in ipairs(v.calendars) do s.calendars[i] = type(c) == "table" and calendar_update(c) or c end
  out.schedule = s
end

local UPDATE_RULES = {
  id = "server", -- the URL names the job
  sink = to_update.sink,
  payload = tables(to_update.payload, "payload"),
  schedule = to_update.schedule,
  authSession = to_update.auth,
  auth_session = to_update.auth,
  configuration = tables(to_update.configuration, "configuration"),
  proxy = to_update.proxy,
}
for k, v in pairs(SERVER) do UPDATE_RULES[k] = v end

-- ------------------------------------------------- create body, newest API

local function shallow(t, into)
  local out = into or {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

--- The create body a client with `api_version = "newest"` sends for the
-- plain table `t`, which may be shaped for either API version: where the
-- two mean the same thing it becomes the newest form (`authSession` ->
-- `auth_session`; `configuration.runMode = "Order-Irrelevant"`, the one run
-- mode, left out; a payload without `parameters` gets `{}`, which the
-- newest API requires). Everything else is left for the JobInputNewest
-- model to check, so a field only v0.3.12 has is refused there with its
-- path and version. Only the tables it changes are copied; `t` is not
-- modified.
-- @tparam table t
-- @treturn table
function M.create_body_newest(t)
  if type(t) ~= "table" then return t end
  local out = shallow(t, setmetatable({}, getmetatable(t)))
  if out.authSession ~= nil and out.auth_session == nil then
    out.auth_session, out.authSession = out.authSession, nil
  end
  local c = out.configuration
  if type(c) == "table" and c.runMode == "Order-Irrelevant" then
    out.configuration = shallow(c)
    out.configuration.runMode = nil
  end
  local list = out.payload
  if type(list) == "table" and is_array(list) then
    local copy
    for i, item in ipairs(list) do
      if type(item) == "table" and item.parameters == nil then
        copy = copy or shallow(list, core.array())
        copy[i] = shallow(item)
        copy[i].parameters = core.object()
      end
    end
    out.payload = copy or list
  end
  return out
end

-- ------------------------------------------------------------------ entry

local TARGETS = {
  to_input = { rules = INPUT_RULES, type = core.JobInput, other = "exists only in the newest API; dropped",
               from = "intuned.JobInput.from" },
  to_update = { rules = UPDATE_RULES, type = core.JobUpdateInput, other = "exists only in v0.3.12; dropped",
                from = "intuned.JobUpdateInput.from" },
}

local function note(ctx, path, text)
  ctx.notes[#ctx.notes + 1] = path .. ": " .. text
end

local function convert(target, src, changes)
  local t = TARGETS[target]
  local tn = core.type(src)
  if tn and not SOURCES[tn] then
    error(("%s: expected a Job, JobInput or JobUpdateInput, got an intuned.%s"):format(t.from, tn), 3)
  end
  if not tn and type(src) ~= "table" then
    error(("%s: expected a Job object or a table shaped like one, got %s"):format(t.from, type(src)), 3)
  end
  if changes ~= nil and type(changes) ~= "table" then
    error(("%s: changes must be a table, got %s"):format(t.from, type(changes)), 3)
  end
  local ctx = { notes = {}, other = t.other, note = note }
  local out = map(ctx, tn and src:to_table() or src, "", t.rules, {})
  if out.payload == nil then out.payload = core.array() end -- required in both bodies; a job may omit it
  for k, v in pairs(changes or {}) do out[k] = v end
  local obj, err = t.type.new(out)
  if not obj then return nil, err end
  if #ctx.notes > 0 then core._add_warnings(obj, ctx.notes) end
  return obj
end

--- JobInput (create body, v0.3.12 shape) from a job definition.
-- As @{intuned.T}.from.
-- @tparam intuned.Object|table src a Job, JobInput or JobUpdateInput, or a table shaped like one
-- @tparam[opt] table changes top-level fields to replace
-- @treturn intuned.Object a JobInput, or nil, err
function M.to_input(src, changes)
  local obj, err = convert("to_input", src, changes) -- not a tail call: error levels count this frame
  return obj, err
end

--- JobUpdateInput (update body, newest API shape) from a job definition.
-- As @{intuned.T}.from.
-- @tparam intuned.Object|table src a Job, JobInput or JobUpdateInput, or a table shaped like one
-- @tparam[opt] table changes top-level fields to replace
-- @treturn intuned.Object a JobUpdateInput, or nil, err
function M.to_update(src, changes)
  local obj, err = convert("to_update", src, changes)
  return obj, err
end

return M
