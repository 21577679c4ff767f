-- intuned.workflow: what users of the Jobs API do beyond single calls --
-- wait for a run to finish, walk every page of a list, trigger and wait.
--
--   client.jobs.runs:wait(project, job_id, run_id[, { timeout =, poll = }]) -> JobRun | nil, err
--   client.jobs:trigger(project, job_id, { wait = true })                    -> the finished JobRun
--   for run in client.jobs.runs:each(project, job_id) do ... end
--   for job in client.jobs:each(project) do ... end
--
-- Every poll and every page is an ordinary client call (the call machine of
-- the core: retries, deadline, scrubbing, hooks); this module only decides
-- when to call again.  The waits between polls sleep with ngx.sleep inside
-- nginx (the worker keeps serving other requests) and with intuned.clock
-- (nanosleep) elsewhere.  intuned.client installs these methods with
-- install(); the functions here take the `client.jobs` / `client.jobs.runs`
-- table as their first argument.

--- Waiting for runs and walking lists: the functions behind
-- `client.jobs.runs:wait`, `client.jobs.runs:each`, `client.jobs:each` and
-- `client.jobs:trigger(project, job_id, { wait = true })`. Each poll or page
-- is an ordinary call of the client (retries, deadline, hooks, secrets
-- scrubbed); between polls the wait sleeps with `ngx.sleep` inside nginx
-- (never blocking the worker) and with `intuned.clock.sleep` elsewhere.
-- Misuse (a wrong argument, an unknown option) raises; failures return
-- `nil, err`.
-- @module intuned.workflow
local core = require "intuned.core"

local M = {}

local new_error = core.new_error

--- Run statuses that end a wait (both API versions; the status is an open
-- enum, so any other value counts as still going).
-- @table FINISHED
M.FINISHED = { COMPLETED = true, FAILED = true, TERMINATED = true, SUCCESS = true, FAILURE = true,
               CANCELED = true }

--- The finished statuses that mean success (`COMPLETED`, `SUCCESS`).
-- @table SUCCEEDED
M.SUCCEEDED = { COMPLETED = true, SUCCESS = true }

--- Statuses of a Run API run (`client.runs:result`) that end a wait:
-- `completed`, `failed` and `canceled`. Any other value (`pending`,
-- `started`, or one the server adds) counts as still going.
-- @table RUN_FINISHED
M.RUN_FINISHED = { completed = true, failed = true, canceled = true }

--- Statuses of an auth-session create, update or validate operation that
-- end a wait: `done`, `failed` and `canceled`.
-- @table OPERATION_FINISHED
M.OPERATION_FINISHED = { done = true, failed = true, canceled = true }

-- nginx phases where ngx.sleep (and cosockets) work.
local SLEEP_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- Bounds of every loop here, besides the wait's timeout.
local MAX_POLLS = 1000000
local MAX_PAGES = 100000

local DEFAULT_TIMEOUT = 600  -- seconds a wait may take
local DEFAULT_POLL = 1       -- first interval between polls
local DEFAULT_MAX_POLL = 15  -- the interval grows to this
local DEFAULT_BACKOFF = 1.5  -- by this factor each poll
-- The Run API's and auth-session operations' waits: the reference's
-- recommendation (first poll after about 1 s, backing off to about 10 s).
local RESULT_MAX_POLL = 10
local DEFAULT_PAGE_SIZE = 100

-- The clock of this call: { now = fn, sleep = fn }, or nil, err (kind usage)
-- in an nginx phase where ngx.sleep cannot run.
local function pick_clock()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" then
    local phase = ngx.get_phase()
    if not SLEEP_PHASES[phase] then
      return nil, new_error("usage", ("no ngx.sleep in nginx's '%s' phase: wait from rewrite, access, content "
        .. "or timer code (e.g. ngx.timer.at(0, fn))"):format(phase))
    end
    return { now = function() ngx.update_time() return ngx.now() end, sleep = ngx.sleep }
  end
  return require "intuned.clock"
end

local function check_self(self, fname, what)
  if type(self) ~= "table" or type(self[what == "jobs.runs" and "get" or "list"]) ~= "function" then
    error(("bad self to '%s' (call it as client.%s:%s(...))"):format(fname, what, fname), 3)
  end
end

local function check_string(n, fname, v)
  if type(v) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname, type(v)), 3)
  end
end

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

local function positive(v) return type(v) == "number" and v > 0 and v < 1e9 end

-- The options of a wait: checked, with the defaults filled in; raises
-- (level 4: this, the function, the method, the user) on a bad one.
local WAIT_OPTIONS = {
  timeout = positive, poll = positive, max_poll = positive,
  backoff = function(v) return type(v) == "number" and v >= 1 and v < 1e9 end,
  on_poll = function(v) return type(v) == "function" end,
  call = function(v) return type(v) == "table" end,
  via = function(v) return v == "get" or v == "list" end,
}
local WAIT_WANT = {
  timeout = "a number of seconds > 0", poll = "a number of seconds > 0", max_poll = "a number of seconds > 0",
  backoff = "a number >= 1", on_poll = "a function", call = "a table of per-call options",
  via = '"get" or "list"',
}

-- The options of a wait, checked, with the defaults filled in; nil, msg
-- for a bad one.
local function check_wait(opts, max_poll)
  local o = { timeout = DEFAULT_TIMEOUT, poll = DEFAULT_POLL, max_poll = max_poll or DEFAULT_MAX_POLL,
              backoff = DEFAULT_BACKOFF, call = {} }
  for k, v in pairs(opts or {}) do
    local check = WAIT_OPTIONS[k]
    if not check then
      local names = {}
      for name in pairs(WAIT_OPTIONS) do names[#names + 1] = name end
      table.sort(names)
      return nil, ("unknown wait option '%s' (wait options: %s)"):format(tostring(k), table.concat(names, ", "))
    end
    if not check(v) then return nil, ("wait option '%s' must be %s"):format(k, WAIT_WANT[k]) end
    o[k] = v
  end
  if o.max_poll < o.poll then o.max_poll = o.poll end
  return o
end

-- The same, raising a bad-argument error at `level` on a bad one.
local function wait_options(opts, fname, n, level, max_poll)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(n, fname, type(opts)), level)
  end
  local o, msg = check_wait(opts, max_poll)
  if not o then error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), level) end
  return o
end

--- The checker of trigger's per-call option `wait`, for intuned.client's
-- option validation: `true` (wait with the defaults of @{wait}), `false`
-- (do not wait) or a table of the options of @{wait}.
-- @param v the value given
-- @tparam string k the option's name (`"wait"`)
-- @treturn boolean true when `v` is valid
-- @return the normalized value (false, or the wait's options with the
-- defaults filled in), or the message saying what is wrong
function M.wait_option(v, k)
  if v == false then return true, false end
  if v == true then return true, (check_wait(nil)) end
  if type(v) ~= "table" then
    return false, ("option '%s' must be true, false or a table of wait options, got %s"):format(k, type(v))
  end
  local o, msg = check_wait(v)
  if not o then return false, msg end
  o.given_call = v.call ~= nil
  return true, o
end

--- The checker of the `wait` option of `client.runs:start` and of the
-- auth-session `create`, `update` and `validate`: as @{wait_option}, but
-- the interval grows to 10 s by default (`max_poll`) and `via` is not
-- one of its options.
-- @param v the value given
-- @tparam string k the option's name (`"wait"`)
-- @treturn boolean true when `v` is valid
-- @return the normalized value, or the message saying what is wrong
function M.result_wait_option(v, k)
  if v == false then return true, false end
  if type(v) == "table" and v.via ~= nil then
    return false, ("wait option 'via' is only for job runs (option '%s')"):format(k)
  end
  if v == true then return true, (check_wait(nil, RESULT_MAX_POLL)) end
  if type(v) ~= "table" then
    return false, ("option '%s' must be true, false or a table of wait options, got %s"):format(k, type(v))
  end
  local o, msg = check_wait(v, RESULT_MAX_POLL)
  if not o then return false, msg end
  o.given_call = v.call ~= nil
  return true, o
end

-- Not found, or the endpoint missing (a v0.3.12 server has no get-run).
local function no_get_endpoint(err)
  return err.kind == "not_found" or (err.kind == "api" and (err.status == 404 or err.status == 405))
end

-- Failures worth another poll (the call's own retries already ran).
local function transient(err)
  return err.retryable or err.kind == "timeout" or err.kind == "connection" or err.kind == "server"
    or err.kind == "rate_limited"
end

-- ---------------------------------------------------------------- paging

local function page_options(opts, fname, n, level)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(n, fname, type(opts)), level)
  end
  local o = copy(opts)
  local size = o.page_size
  if size == nil then size = DEFAULT_PAGE_SIZE end
  if size ~= false and (type(size) ~= "number" or size < 1 or size > 1000 or size % 1 ~= 0) then
    error(("bad argument #%d to '%s' (page_size must be an integer from 1 to 1000, or false)"):format(n, fname), level)
  end
  local first = o.page_number
  if first == nil then first = 0 end
  if type(first) ~= "number" or first < 0 or first % 1 ~= 0 then
    error(("bad argument #%d to '%s' (page_number must be an integer >= 0)"):format(n, fname), level)
  end
  o.page_size, o.page_number = nil, nil
  return size, first, o
end

-- The iterator over a job's runs (see M.each_run); list(callopts) makes one call.
local function run_iterator(list, size, first, callopts)
  local buf, bi = {}, 0
  local seen = {}
  local page, pages = first, 0
  local done, failure = false, nil

  local function fetch()
    local co = copy(callopts)
    if size then co.page_number, co.page_size = page, size end
    local items, err = list(co)
    if not items then return nil, err end
    pages = pages + 1
    local fresh = {}
    for _, r in ipairs(items) do
      local id = r.id
      -- a run seen on an earlier page (newer runs push older ones down
      -- while we read): given once
      if id == nil or not seen[id] then
        if id ~= nil then seen[id] = true end
        fresh[#fresh + 1] = r
      end
    end
    local total = items.totalCount
    if not size or total == nil then
      done = true -- the v0.3.12 single list (or a server that does not page): all of it at once
    elseif #items < size or (page - first + 1) * size >= total or #fresh == 0 then
      -- a short page, the count reached, or a page with nothing new (a server
      -- that ignores pageNumber): the end
      done = true
    end
    page = page + 1
    if pages >= MAX_PAGES then done = true end
    buf, bi = fresh, 0
    return true
  end

  return function()
    for _ = 1, MAX_PAGES + 1 do
      if bi < #buf then
        bi = bi + 1
        return buf[bi]
      end
      if failure then return nil, failure end
      if done then return nil end
      local ok, err = fetch()
      if not ok then
        failure = err
        return nil, err
      end
    end
    return nil
  end
end

--- Every run of a job, page after page: an iterator for a generic `for`.
-- With the newest API it asks for pages (`pageNumber`, `pageSize`) and
-- follows them until `totalCount` runs were seen, a short or empty page, or
-- a page with nothing new; a server that answers the v0.3.12 bare list
-- (no `totalCount`) gives all its runs at once. A run that moves to a later
-- page while the pages are read (newer runs come first) is given once.
-- On a failure the iterator returns `nil, err`, which ends the loop; one
-- more call after the loop returns the same `nil, err` (or plain `nil`
-- when the list ended), so the caller can tell the end from an error.
-- `client.jobs.runs:each(project, job_id[, opts])` calls this.
-- @tparam table runs `client.jobs.runs`
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `page_size` (default 100; false: no paging
-- query, the v0.3.12 single list), `page_number` (the first page, default
-- 0), `sort_by`, and the per-call options of the list calls (`timeout`,
-- `deadline`, `retry`, `headers`, `hook`)
-- @treturn function the iterator: each call returns the next `JobRun`, then
-- `nil` (the end) or `nil, err`
-- @raise on a bad argument or option
-- @usage local it = client.jobs.runs:each("my-project", "nightly")
-- for run in it do print(run.id, run.status) end
-- local _, err = it()   -- nil at the end, or why the list stopped
-- if err then error(tostring(err)) end
function M.each_run(runs, project, job_id, opts)
  check_self(runs, "each", "jobs.runs")
  check_string(1, "each", project)
  check_string(2, "each", job_id)
  local size, first, callopts = page_options(opts, "each", 3, 3)
  return run_iterator(function(co) return runs:list(project, job_id, co) end, size, first, callopts)
end

--- Every job of a project: an iterator for a generic `for` (the jobs list
-- is a single list in both API versions: one call). On a failure the
-- iterator returns `nil, err`, and does so again when called after the loop.
-- `client.jobs:each(project[, opts])` calls this.
-- @tparam table jobs `client.jobs`
-- @tparam string project the project name
-- @tparam[opt] table opts per-call options of the list call
-- @treturn function the iterator: each call returns the next `Job`, then
-- `nil` or `nil, err`
-- @raise on a bad argument or option
-- @usage for job in client.jobs:each("my-project") do print(job.id) end
function M.each_job(jobs, project, opts)
  check_self(jobs, "each", "jobs")
  check_string(1, "each", project)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to 'each' (table expected, got %s)"):format(type(opts)), 2)
  end
  local list, err, i = nil, nil, 0
  local fetched = false
  return function()
    if not fetched then
      fetched = true
      list, err = jobs:list(project, opts)
    end
    if not list then return nil, err end
    i = i + 1
    return list[i]
  end
end

-- ---------------------------------------------------------------- waiting

-- The run with id run_id from the list of the job's runs: run, nil | nil,
-- nil (not there) | nil, err.
local function find_in_list(runs, project, job_id, run_id, callopts)
  local it = run_iterator(function(co) return runs:list(project, job_id, co) end, DEFAULT_PAGE_SIZE, 0, callopts)
  for _ = 1, MAX_PAGES * DEFAULT_PAGE_SIZE do
    local r, err = it()
    if not r then return nil, err end
    if r.id == run_id then return r end
  end
  return nil
end

-- One poll: run, detail | nil, err; state.via switches to "list" when the
-- server has no get-run endpoint.
local function poll_once(runs, project, job_id, run_id, state, callopts)
  if state.via == "get" then
    local detail, err = runs:get(project, job_id, run_id, callopts)
    if detail then
      local run = detail.jobRun
      if run ~= nil and run ~= core.null then return run, detail end
      return nil, new_error("decode", ("the answer for run %s of job %s holds no jobRun"):format(run_id, job_id))
    end
    if not (state.may_switch and no_get_endpoint(err)) then return nil, err end
    state.via = "list" -- try the v0.3.12 way once: the run may be in the list
  end
  state.may_switch = false
  local run, lerr = find_in_list(runs, project, job_id, run_id, callopts)
  if run then return run end
  if lerr then return nil, lerr end
  return nil, new_error("not_found", ("run %s of job %s is not in the job's runs"):format(run_id, job_id),
    { status = 404, run_id = run_id })
end

-- The waiting machinery of every wait here: poll(callopts) -> obj | nil,
-- err, until finished(obj), within o.timeout (the options of a wait).
-- Returns obj (finished) | nil, err (a poll's failure that is not
-- transient, or no clock) | nil, nil, last, last_err (the time was up:
-- the last object seen and the last poll's transient error).
local function poll_until(o, poll, finished)
  local clock, cerr = pick_clock()
  if not clock then return nil, cerr end
  local start = clock.now()
  local deadline = start + o.timeout
  local interval = o.poll
  local last, last_err
  for _ = 1, MAX_POLLS do
    local left = deadline - clock.now()
    -- a poll ends with the wait (give or take a second for the last one,
    -- made at the deadline); a smaller per-call deadline stays
    local co = copy(o.call)
    if not (co.deadline and co.deadline ~= false and co.deadline <= left) then co.deadline = math.max(left, 1) end
    local obj, err = poll(co)
    if obj then
      last, last_err = obj, nil
      if finished(obj) then return obj end
    else
      if not transient(err) then return nil, err end
      last_err = err
    end
    local now = clock.now()
    if o.on_poll then o.on_poll(last, now - start, last_err) end
    if now >= deadline then break end
    local delay = math.min(interval, deadline - now)
    clock.sleep(delay) -- then one more poll, also when that reached the deadline
    interval = math.min(interval * o.backoff, o.max_poll)
  end
  return nil, nil, last, last_err
end

local function wait_run(runs, project, job_id, run_id, o)
  local state = { via = o.via or "get", may_switch = o.via == nil }
  local run, err, last, last_err = poll_until(o, function(co)
    local r, detail = poll_once(runs, project, job_id, run_id, state, co)
    if r then return r end
    return nil, detail
  end, function(r) return M.FINISHED[r.status] end)
  if run then return run end
  if err then return nil, err end
  local status = last and last.status or "unknown"
  local msg = ("run %s of job %s did not finish within %g s (last status %s)"):format(run_id, job_id, o.timeout,
    tostring(status))
  if last_err then msg = msg .. "; last poll: " .. tostring(last_err.message) end
  return nil, new_error("timeout", msg, { run_id = run_id, run = last, last_error = last_err })
end

--- Wait for a run to finish: poll it (`runs:get`, the newest API; a
-- server without that endpoint, such as one of v0.3.12, is read through
-- the runs list instead) until its status is one of @{FINISHED}, sleeping
-- between polls: `poll` seconds first, then `backoff` times longer each
-- time up to `max_poll`. A poll that fails with a transient error
-- (connection, timeout, 5xx, 429, after the call's own retries) is
-- repeated at the next interval; any other failure ends the wait.
-- Inside nginx the sleeps are `ngx.sleep` (the worker keeps serving);
-- elsewhere `intuned.clock.sleep`.
-- `client.jobs.runs:wait(project, job_id, run_id[, opts])` calls this.
-- @tparam table runs `client.jobs.runs`
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam string run_id the run id
-- @tparam[opt] table opts `timeout` (seconds for the whole wait, default
-- 600), `poll` (the first interval, default 1), `max_poll` (the longest
-- interval, default 15), `backoff` (growth factor, default 1.5),
-- `on_poll` (`function(run, elapsed, err)`, called after each poll that did
-- not end the wait: `run` is the last run seen or nil, `err` the poll's
-- transient error), `call` (per-call options of each poll; its `deadline`
-- is capped to the time left), `via` (`"get"` or `"list"`: how to poll;
-- default get, falling back to the list)
-- @treturn intuned.JobRun the finished run (`run.status` says how it
-- ended; `runs:get` gives where its results are)
-- @return[2] nil
-- @treturn[2] intuned.Error kind `timeout` when the run did not finish in
-- time (fields `run_id`, `run`: the last run seen, `last_error`), or the
-- failure of a poll
-- @raise on a bad argument or option
-- @usage local run, err = client.jobs.runs:wait("my-project", "nightly", run_id, { timeout = 60, poll = 0.5 })
-- if not run then error(tostring(err)) end
-- print(run.status)  --> COMPLETED
function M.wait(runs, project, job_id, run_id, opts)
  check_self(runs, "wait", "jobs.runs")
  check_string(1, "wait", project)
  check_string(2, "wait", job_id)
  check_string(3, "wait", run_id)
  local o = wait_options(opts, "wait", 4, 3)
  local run, err = wait_run(runs, project, job_id, run_id, o)
  if not run then return nil, err end
  return run -- only the run: a second value would read as an error
end

-- The newest MANUAL run of the job (a v0.3.12 trigger answer names no run).
local function newest_manual(runs, project, job_id, callopts)
  local best
  local it = run_iterator(function(co) return runs:list(project, job_id, co) end, DEFAULT_PAGE_SIZE, 0, callopts)
  for _ = 1, MAX_PAGES * DEFAULT_PAGE_SIZE do
    local r, err = it()
    if not r then
      if err then return nil, err end
      break
    end
    local t = r.start_time or r.created_at
    if r.type == "MANUAL" and (not best or (t or "") > (best.start_time or best.created_at or "")) then best = r end
  end
  if not best then return nil, new_error("api", ("the trigger of job %s named no run and the job has no manual "
    .. "run to wait for"):format(job_id)) end
  return best.id
end

--- Trigger a run and wait for it to finish: what
-- `client.jobs:trigger(project, job_id, { wait = true })` (or `wait = {
-- timeout =, poll =, ... }`, the options of @{wait}) does. The trigger
-- itself is the ordinary call (never repeated when it may have started a
-- run); the run it names (`jobRunId`) is then awaited. A v0.3.12 server
-- names no run: the newest manual run of the job is awaited then (best
-- effort: another trigger of the same job at the same moment could be the
-- one found).
-- @tparam table jobs `client.jobs`
-- @tparam function trigger makes the trigger call: `trigger()` returns a
-- `TriggerJob` or `nil, err`
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam table wait the wait's options as @{wait_option} normalizes them
-- @tparam[opt] table callopts per-call options for the polls (unless
-- `wait.call` gives them)
-- @treturn intuned.JobRun the finished run
-- @return[2] nil
-- @treturn[2] intuned.Error the trigger's failure or the wait's (a
-- `timeout` error carries `run_id`)
function M.trigger_wait(jobs, trigger, project, job_id, wait, callopts)
  local o = copy(wait)
  if not o.given_call then o.call = copy(callopts) end
  o.given_call = nil
  local t, err = trigger()
  if not t then return nil, err end
  local run_id = t.jobRunId
  if run_id == nil or run_id == core.null then
    local found, ferr = newest_manual(jobs.runs, project, job_id, o.call)
    if not found then return nil, ferr end
    run_id = found
  end
  local run, werr = wait_run(jobs.runs, project, job_id, run_id, o)
  if not run then return nil, werr end
  return run
end

-- ------------------------------------------------- Run API, auth sessions

-- The timeout error of a result wait: what (e.g. "run X"), the last
-- result seen, the last poll's transient error, and extra fields.
local function result_timeout(what, o, last, last_err, fields)
  local msg = ("%s did not finish within %g s (last status %s)"):format(what, o.timeout,
    tostring(last and last.status or "unknown"))
  if last_err then msg = msg .. "; last poll: " .. tostring(last_err.message) end
  fields.result, fields.last_error = last, last_err
  return new_error("timeout", msg, fields)
end

-- The opts of a wait given with a start: its polls take the start's other
-- per-call options unless the wait gives its own `call`.
local function wait_of(wait, callopts)
  local o = copy(wait)
  if not o.given_call then o.call = copy(callopts) end
  o.given_call = nil
  return o
end

-- Poll run_id until its status is final: the RunResult | nil, err.
local function wait_result(run_api, project, run_id, o)
  local res, err, last, last_err = poll_until(o, function(co) return run_api:result(project, run_id, co) end,
    function(r) return M.RUN_FINISHED[r.status] end)
  if res then return res end
  if err then return nil, err end
  return nil, result_timeout("run " .. run_id, o, last, last_err, { run_id = run_id })
end

--- Start a run of a project API and wait for it to finish: what
-- `client.runs:start(project, input, { wait = true })` and
-- `client.runs:run(project, input[, opts])` do. The start is the ordinary
-- call (never repeated when it may have started a run); the run it names
-- (`runId`) is then polled with `client.runs:result` until its status is
-- one of @{RUN_FINISHED}. A failed or canceled run is a result (its
-- `error` / `reason` say why), not an error.
-- @tparam table run_api `client.runs`
-- @tparam function start makes the start call: `start()` returns a
-- `RunStarted` or `nil, err`
-- @tparam string project the project name
-- @tparam table wait the wait's options as @{result_wait_option} normalizes them
-- @tparam[opt] table callopts per-call options for the polls (unless
-- `wait.call` gives them)
-- @treturn intuned.RunResult the finished run's result
-- @return[2] nil
-- @treturn[2] intuned.Error the start's failure, a poll's, or kind
-- `timeout` (fields `run_id`, `result`: the last result seen, `last_error`)
function M.start_wait(run_api, start, project, wait, callopts)
  local o = wait_of(wait, callopts)
  local started, err = start()
  if not started then return nil, err end
  local run_id = started.runId
  if type(run_id) ~= "string" then
    return nil, new_error("decode", "the run start's answer names no runId")
  end
  return wait_result(run_api, project, run_id, o)
end

--- Start a run and wait for its result: `client.runs:run(project, input[, opts])`.
-- @tparam table run_api `client.runs`
-- @tparam string project the project name
-- @tparam table|intuned.RunStartInput input the run (as for `client.runs:start`)
-- @tparam[opt] table opts the options of @{wait} but `via`: `timeout` (the
-- whole wait, default 600 s), `poll` (1 s), `max_poll` (10 s), `backoff`
-- (1.5), `on_poll` (`function(result, elapsed, err)`), `call` (per-call
-- options of the start and of each poll)
-- @treturn intuned.RunResult the finished run's result (`status` is
-- `completed`, `failed` or `canceled`)
-- @return[2] nil
-- @treturn[2] intuned.Error as @{start_wait}
-- @raise on a bad argument or option
-- @usage local res = assert(client.runs:run("my-project", { api = "products/list",
--   parameters = { page = 1 } }, { timeout = 300 }))
-- if res.status == "completed" then print(res.result) end
function M.run(run_api, project, input, opts)
  if type(run_api) ~= "table" or type(run_api.result) ~= "function" or type(run_api.start) ~= "function" then
    error("bad self to 'run' (call it as client.runs:run(...))", 2)
  end
  check_string(1, "run", project)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #3 to 'run' (table expected, got %s)"):format(type(opts)), 2)
  end
  local ok, o = M.result_wait_option(opts or true, "opts")
  if not ok then error(("bad argument #3 to 'run' (%s)"):format(o), 2) end
  local callopts = copy(o.call)
  o.given_call = true
  return M.start_wait(run_api, function() return run_api:start(project, input, callopts) end, project, o)
end

-- The result method and arguments of each auth-session operation.
local OPERATION_RESULT = { create = "create_result", update = "update_result", validate = "validate_result" }

--- Start an auth-session create, update or validate and wait for the
-- operation to finish: what `client.auth_sessions:create(project, input,
-- { wait = true })` (and `update`, `validate`) do. The start is the
-- ordinary call (never repeated when it may have reached the server); the
-- operation it names (`operationId`) is then polled with the matching
-- result method until its status is one of @{OPERATION_FINISHED}. A
-- failed or canceled operation is a result, not an error.
-- @tparam table auth_sessions `client.auth_sessions`
-- @tparam string kind `"create"`, `"update"` or `"validate"`
-- @tparam function start makes the start call: `start()` returns an
-- `OperationStarted` or `nil, err`
-- @tparam string project the project name
-- @tparam ?string auth_session_id the session (update, validate; nil for create)
-- @tparam table wait the wait's options as @{result_wait_option} normalizes them
-- @tparam[opt] table callopts per-call options for the polls (unless
-- `wait.call` gives them)
-- @treturn intuned.OperationResult the finished operation (`done`: its
-- `authSessionId` names the session)
-- @return[2] nil
-- @treturn[2] intuned.Error the start's failure, a poll's, or kind
-- `timeout` (fields `operation_id`, `result`, `last_error`)
function M.operation_wait(auth_sessions, kind, start, project, auth_session_id, wait, callopts)
  local method = assert(OPERATION_RESULT[kind], "unknown auth-session operation")
  local o = wait_of(wait, callopts)
  local started, err = start()
  if not started then return nil, err end
  local op_id = started.operationId
  if type(op_id) ~= "string" then
    return nil, new_error("decode", ("the %s start's answer names no operationId"):format(kind))
  end
  local res, perr, last, last_err = poll_until(o, function(co)
    if kind == "create" then return auth_sessions[method](auth_sessions, project, op_id, co) end
    return auth_sessions[method](auth_sessions, project, auth_session_id, op_id, co)
  end, function(r) return M.OPERATION_FINISHED[r.status] end)
  if res then return res end
  if perr then return nil, perr end
  return nil, result_timeout(("auth session %s operation %s"):format(kind, op_id), o, last, last_err,
    { operation_id = op_id, auth_session_id = auth_session_id })
end

--- Add `wait` and `each` to the client's run table and `each` to its job
-- table. intuned.client calls this once on its method tables (and takes
-- trigger's `wait` option with @{wait_option} and @{trigger_wait});
-- programs do not.
-- @tparam table Jobs the method table of `client.jobs`
-- @tparam table Runs the method table of `client.jobs.runs`
-- @tparam[opt] table RunApi the method table of `client.runs` (gets `run`)
function M.install(Jobs, Runs, RunApi)
  -- the same functions: runs:wait(...) is M.wait(runs, ...)
  Runs.wait = M.wait
  Runs.each = M.each_run
  Jobs.each = M.each_job
  if RunApi then RunApi.run = M.run end
end

return M
