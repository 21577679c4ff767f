-- intuned.client: the Jobs API client object.
--
--   local client = intuned.client{ api_key = ..., workspace_id = ... }
--   client.jobs:list(project)                      -> { Job, ... }       | nil, err
--   client.jobs:create(project, input[, callopts]) -> CreateJob          | nil, err
--   client.jobs:get(project, job_id)               -> Job                | nil, err
--   client.jobs:update(project, job_id, update)    -> UpdateJob (newer API)
--   client.jobs:delete(project, job_id)            -> true               | nil, err
--   client.jobs:pause / :resume / :trigger(project, job_id)
--   client.jobs.runs:list(project, job_id[, callopts]) -> { JobRun, ... } (+ totalCount)
--   client.jobs.runs:get(project, job_id, run_id)      -> JobRunDetail (newer API)
--   client.jobs.runs:terminate(project, job_id, run_id) -> TerminateJobRun
--   client:batch(calls[, { max_in_flight = 32 }])  -> { result-or-error, ... } in order
--
-- Failures of data, server or network return nil plus an error object
-- (intuned.is_error(err) is true; err.kind, err.status, err.message, ...).
-- Misuse (a wrong argument type, a missing API key) raises.
--
-- The transport is picked at each call, so one client object works both in
-- plain Lua and inside nginx: in an nginx phase where cosockets work the call
-- goes through intuned.ngx (yields to the event loop); elsewhere through
-- libcurl (intuned.core.curl_client, created on first use and reused so its
-- connections stay alive).  libcurl is never used inside nginx: it would
-- block every request of the worker.  In nginx phases without cosockets
-- (init, init_worker, set, header_filter, body_filter, log) a call returns
-- an error of kind "usage" at once: run it from a timer instead
-- (ngx.timer.at(0, fn)).  It is not done behind the caller's back because
-- the caller expects the result now.
--
-- Options (all optional but the key and workspace, which fall back to the
-- environment): api_key (INTUNED_API_KEY), workspace_id
-- (INTUNED_WORKSPACE_ID), server_url (INTUNED_SERVER_URL, then production:
-- the variable lets one program run against an emulator or a proxy without
-- code changes), connect_timeout / timeout (per attempt) / deadline (whole
-- call) in seconds (false = none), retry (table {max_attempts,
-- initial_delay, max_delay, multiplier, jitter} or false), headers (name ->
-- value), user_agent, ca_file, insecure, hook (function(event): redacted
-- request/response/retry events), transport ("auto" | "curl" | "ngx"), and
-- for nginx keepalive_timeout, pool_size, backlog (see intuned/ngx.lua).
-- callopts of a call: { retry = ... } replaces the client's policy.

--- The Jobs API client object, made by @{intuned.client}
-- (`require("intuned").client(opts)`; this module's @{new} is the same).
-- Every method returns its result or `nil, err` (an @{intuned.Error}), and
-- takes an optional last argument (`opts` here), `{ retry = policy }`, that
-- replaces the client's retry policy (see `opts.retry` of @{intuned.client})
-- for that call. Misuse (a wrong argument type, calling a method with `.`
-- instead of `:`, a closed client) raises. The transport is picked at each
-- call, so one client works in plain Lua and inside nginx.
-- @module intuned.client
local core = require "intuned.core"

local M = {}

local DEFAULT_SERVER_URL = "https://app.intuned.io/api/v1/workspace"

-- nginx phases where cosockets (and ngx.sleep) are available.
local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- The operation table (src/ops.c): core.operations lists the names and
-- holds each name's row; core.arguments the same for the arguments.
local OPS = {}
for _, name in ipairs(core.operations) do OPS[name] = core.operations[name] end

-- Per-client private state (the API key lives here, never on the object,
-- so neither tostring nor pairs can show it).
local state_of = setmetatable({}, { __mode = "k" })
local client_of = setmetatable({}, { __mode = "k" }) -- jobs / runs tables -> client

local tname = type

-- luaL-style argument errors, raised at the caller of the API method
-- (level 3: this helper, the method, the user's code).
local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local function check_string(n, fname, v)
  if type(v) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname, tname(v)), 3)
  end
end

local function check_opt_table(n, fname, v)
  if v ~= nil and type(v) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(n, fname, tname(v)), 3)
  end
end

local function check_input(n, fname, v, T)
  if type(v) ~= "table" and not T.is(v) then
    error(("bad argument #%d to '%s' (table or intuned.%s expected, got %s)")
      :format(n, fname, T.name, tname(v)), 3)
  end
end

-- Error objects for failures decided here (not by the C core): same
-- metatable as the core's, so intuned.is_error and tostring work on them.
local new_error = core.new_error
--- The same function as @{intuned.new_error}.
-- @tparam string kind
-- @tparam string message
-- @tparam[opt] table fields
-- @treturn intuned.Error
-- @function new_error
M.new_error = new_error

local function in_nginx()
  local ngx = rawget(_G, "ngx")
  return type(ngx) == "table" and type(ngx.get_phase) == "function" and ngx
end

-- The transport for a call made now: "ngx", "curl", or nil, err (kind usage).
local function pick_transport(st)
  local ngx = in_nginx()
  if ngx then
    if st.transport == "curl" then
      return nil, new_error("usage", "transport 'curl' inside nginx would block the worker; use 'auto' or 'ngx'")
    end
    local phase = ngx.get_phase()
    if not COSOCKET_PHASES[phase] then
      return nil, new_error("usage", ("no cosockets in nginx's '%s' phase: call the Jobs API from rewrite, access, "
        .. "content or timer code (e.g. ngx.timer.at(0, fn) from %s)"):format(phase, phase))
    end
    return "ngx"
  end
  if st.transport == "ngx" then
    return nil, new_error("usage", "transport 'ngx' needs nginx (ngx_http_lua_module)")
  end
  return "curl"
end

local function curl_client(st)
  if st.curl then return st.curl end
  local o = st.opts
  local cc, err = core.curl_client{
    api_key = o.api_key, workspace_id = o.workspace_id, server_url = o.server_url,
    user_agent = o.user_agent, connect_timeout = o.connect_timeout, timeout = o.timeout,
    deadline = o.deadline, retry = o.retry, headers = o.headers, ca_file = o.ca_file,
    insecure = o.insecure, hook = o.hook,
  }
  if not cc then return nil, err end
  st.curl = cc
  return cc
end

local function ngx_transport()
  return require "intuned.ngx"
end

-- One operation: args = { project=, job_id=, run_id=, input=, update=, page_number=, ... }.
local function call(client, op, args, callopts)
  local st = state_of[client]
  if st.closed then error("intuned: the client is closed", 3) end
  local t, err = pick_transport(st)
  if not t then return nil, err end
  if t == "ngx" then return ngx_transport().call(st.opts, op, args, callopts) end
  local cc, cerr = curl_client(st)
  if not cc then return nil, cerr end
  return cc:call(op, args, callopts)
end

-- ----------------------------------------------------------------- jobs

local Jobs = {}
Jobs.__index = Jobs
local Runs = {}
Runs.__index = Runs

local function owner(self, fname, what)
  local c = type(self) == "table" and client_of[self]
  if not c then
    error(("bad self to '%s' (call it as client.%s:%s(...))"):format(fname, what, fname), 3)
  end
  return c
end

-- Call options: { retry = table|false } (+ page_number/page_size/sort_by
-- for runs:list).
local function callopts_of(o)
  if o == nil then return nil end
  return { retry = o.retry }
end

--- `client.jobs`: the job operations.
-- @type Jobs

--- `client.jobs.runs`, the run operations (@{Runs}).
-- @field runs

-- The methods of client.jobs and client.jobs.runs are made from the
-- operation table: method(self, <row.args...>[, <row.body>][, opts]), the
-- row's query arguments read from opts.  The doc blocks below describe
-- what each one makes.
local GROUPS = { jobs = Jobs, ["jobs.runs"] = Runs }

local function make_method(row)
  local fname, what, op = row.method_name, row.group, row.name
  local names, nargs, body, query = row.args, #row.args, row.body, row.query
  local T = row.body_type and assert(core[row.body_type], row.body_type)
  local iopts = nargs + (body and 2 or 1) -- the position of opts
  return function(self, ...)
    local c = owner(self, fname, what)
    local args = {}
    for i = 1, nargs do
      local v = (select(i, ...))
      check_string(i, fname, v)
      args[names[i]] = v
    end
    if body then
      local v = (select(nargs + 1, ...))
      check_input(nargs + 1, fname, v, T)
      args[body] = v
    end
    local opts = (select(iopts, ...))
    check_opt_table(iopts, fname, opts)
    if opts then
      for _, k in ipairs(query) do
        local v = opts[k]
        if v ~= nil and type(v) ~= "string" and type(v) ~= "number" then
          argerror(iopts, fname, ("'%s' must be a string or number, got %s"):format(k, type(v)))
        end
        args[k] = v
      end
    end
    return call(c, op, args, callopts_of(opts))
  end
end

for _, name in ipairs(core.operations) do
  local row = OPS[name]
  local t = assert(GROUPS[row.group], "intuned.client: no client table for the operations of " .. row.group)
  t[row.method_name] = make_method(row)
end

--- List the jobs of a project.
-- @tparam string project the project name
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn {intuned.Job,...} an array of `Job`
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @usage for _, j in ipairs(assert(client.jobs:list("my-project"))) do print(j.id, j.state.status) end
-- @function Jobs:list

--- Create a job. Not retried when the request may have reached the server
-- (except on 429 and on 503 with `Retry-After`); a retried create answered
-- 409 is reported as a success when the stored job is the one sent.
-- @tparam string project the project name
-- @tparam table|intuned.JobInput input the job (a table is checked as a
-- `JobInput`; nothing is sent when it does not validate)
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.CreateJob
-- @return[2] nil
-- @treturn[2] intuned.Error kind `validation` for a bad input, or the
-- server's
-- @usage local created, err = client.jobs:create("my-project", { id = "nightly",
--   payload = { { apiName = "scrape" } }, configuration = { runMode = "Order-Irrelevant" } })
-- @function Jobs:create

--- Get a job.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.Job
-- @return[2] nil
-- @treturn[2] intuned.Error such as kind `not_found` (404)
-- @function Jobs:get

--- Replace a job's definition (newest API: the whole definition, without
-- id). `job:to_update()` gives one from a `Job`.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam table|intuned.JobUpdateInput update the new definition (a table
-- is checked as a `JobUpdateInput`)
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.UpdateJob
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @usage assert(client.jobs:update("p", "nightly", job:to_update{ configuration = { maxConcurrentRequests = 2 } }))
-- @function Jobs:update

--- Delete a job.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn boolean true
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Jobs:delete

--- Pause a job (its schedule stops starting runs).
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.PauseJob
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Jobs:pause

--- Resume a paused job.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.ResumeJob
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Jobs:resume

--- Start a run of a job now. Retried like @{Jobs:create}: never when the
-- request may have started a run.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.TriggerJob its `jobRunId` names the run (newest API)
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Jobs:trigger

--- `client.jobs.runs`: the run operations.
-- @type Runs

--- List the runs of a job.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `page_number`, `page_size`, `sort_by` (the newest
-- API's query; strings or numbers) and `retry`
-- @treturn {intuned.JobRun,...} an array of `JobRun`, plus `totalCount` (an
-- integer) when the newest API sends one
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Runs:list

--- Get a run and where its results are (newest API).
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam string run_id the run id
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.JobRunDetail
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Runs:get

--- Stop a run.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam string run_id the run id
-- @tparam[opt] table opts `{ retry = policy }`
-- @treturn intuned.TerminateJobRun
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Runs:terminate

-- --------------------------------------------------------------- client

--- The client object that @{intuned.client} returns. `tostring(client)`
-- shows the server, workspace and transport, never the key.
-- @type Client

--- `client.jobs`, the job operations (@{Jobs}).
-- @field jobs

--- The server URL in use.
-- @field server_url

--- The workspace in use.
-- @field workspace_id
local Client = {}
Client.__index = Client
Client.__name = "intuned.Client"

function Client.__tostring(self)
  local st = state_of[self]
  return ("intuned.Client (%s, workspace %s, transport %s%s)")
    :format(st.opts.server_url, st.opts.workspace_id, st.transport, st.closed and ", closed" or "")
end

-- The arguments a batch call's table may carry besides the body: the path
-- and query arguments of the operation table.
local ARG_FIELDS = {}
for _, name in ipairs(core.arguments) do
  local a = core.arguments[name]
  if a.where ~= "body" then ARG_FIELDS[#ARG_FIELDS + 1] = a end
end

--- Many calls at once; results in the order of `calls`.
-- calls[i] = { op = "jobs:trigger", project = ..., job_id = ..., run_id = ...,
--              input = ..., update = ..., retry = ... }  (or { op = , args = {...} }).
-- Each entry of the result is the call's result (a typed object, an array
-- for lists, true for delete) or an error object: tell them apart with
-- intuned.is_error(entry).
-- Concurrent: libcurl's multi interface outside nginx, light threads on
-- cosockets inside it. A call that fails (or, inside nginx, raises) gives
-- its own error entry; the others keep their results.
-- @tparam table calls an array of calls; `op` is one of
-- @{intuned.operations}, and the arguments are those of the method
-- @tparam[opt] table opts `{ max_in_flight = 32 }`, calls in flight at once
-- @treturn table one entry per call, in order: its result or an
-- @{intuned.Error}
-- @raise on a malformed call (an unknown `op`, an argument of the wrong type)
-- @usage local out = client:batch{ { op = "jobs:trigger", project = "p", job_id = "a" },
--                        { op = "jobs:get", project = "p", job_id = "b" } }
-- for i, r in ipairs(out) do if intuned.is_error(r) then print(i, r) end end
function Client:batch(calls, opts)
  local st = type(self) == "table" and state_of[self]
  if not st then error("bad self to 'batch' (call it as client:batch(...))", 2) end
  if st.closed then error("intuned: the client is closed", 2) end
  if type(calls) ~= "table" then
    error(("bad argument #1 to 'batch' (table expected, got %s)"):format(tname(calls)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to 'batch' (table expected, got %s)"):format(tname(opts)), 2)
  end
  local mif = opts and opts.max_in_flight or 32
  if type(mif) ~= "number" or mif < 1 or mif % 1 ~= 0 then
    error("bad argument #2 to 'batch' (max_in_flight must be an integer >= 1)", 2)
  end
  local list = {}
  for i = 1, #calls do
    local c = calls[i]
    if type(c) ~= "table" then
      error(("bad argument #1 to 'batch' (calls[%d] must be a table, got %s)"):format(i, tname(c)), 2)
    end
    if not OPS[c.op] then
      error(("bad argument #1 to 'batch' (calls[%d].op: unknown operation '%s')"):format(i, tostring(c.op)), 2)
    end
    local args = c.args or c
    for _, a in ipairs(ARG_FIELDS) do
      local v = args[a.name]
      if v ~= nil and type(v) ~= "string" and not (type(v) == "number" and a.numbers) then
        error(("bad argument #1 to 'batch' (calls[%d].%s: string expected, got %s)"):format(i, a.name, type(v)), 2)
      end
    end
    list[i] = { c.op, args, c.retry ~= nil and { retry = c.retry } or nil }
  end
  local n = #list
  if n == 0 then return {} end
  local t, err = pick_transport(st)
  if not t then
    local out = {}
    for i = 1, n do out[i] = err end
    return out
  end
  if t == "ngx" then return ngx_transport().batch(st.opts, list, mif) end
  local cc, cerr = curl_client(st)
  if not cc then
    local out = {}
    for i = 1, n do out[i] = cerr end
    return out
  end
  return cc:batch(list, mif)
end

--- Release the libcurl handles (the client is unusable afterwards).
-- Further calls raise. A hook may call it: the call in progress still
-- returns its result and delivers its remaining events.
function Client:close()
  local st = state_of[self]
  if st.curl then st.curl:close() end
  st.curl = nil
  st.closed = true
end

-- ---------------------------------------------------------------- options

-- Raised without a position; M.new re-raises it at the user's call.
local function opt_error(msg)
  error("intuned.client: " .. msg, 0)
end

local function nonempty(v)
  if v == "" then return nil end
  return v
end

local function check_opt(o, k, want)
  local v = o[k]
  if v ~= nil and type(v) ~= want then
    opt_error(("option '%s' must be a %s, got %s"):format(k, want, type(v)))
  end
  return v
end

local function seconds(o, k)
  local v = o[k]
  if v == nil then return nil end
  if v == false then return 0 end -- no limit
  if type(v) ~= "number" or v ~= v or v < 0 or v >= 1e9 then
    opt_error(("option '%s' must be a number of seconds >= 0"):format(k))
  end
  return v
end

local function normalize(opts)
  local o = {}
  o.api_key = nonempty(check_opt(opts, "api_key", "string")) or nonempty(os.getenv("INTUNED_API_KEY"))
  if not o.api_key then
    opt_error("no API key: pass api_key or set INTUNED_API_KEY")
  end
  o.workspace_id = nonempty(check_opt(opts, "workspace_id", "string")) or nonempty(os.getenv("INTUNED_WORKSPACE_ID"))
  if not o.workspace_id then
    opt_error("no workspace id: pass workspace_id or set INTUNED_WORKSPACE_ID")
  end
  o.server_url = nonempty(check_opt(opts, "server_url", "string")) or nonempty(os.getenv("INTUNED_SERVER_URL"))
    or DEFAULT_SERVER_URL
  if not o.server_url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") then
    opt_error("server_url must be an http:// or https:// URL")
  end
  o.user_agent = check_opt(opts, "user_agent", "string") or ("lua-intuned/" .. core._VERSION)
  if o.user_agent:find("[\r\n]") then opt_error("user_agent contains a line break") end
  o.connect_timeout = seconds(opts, "connect_timeout")
  o.timeout = seconds(opts, "timeout")
  o.deadline = seconds(opts, "deadline")
  local retry = opts.retry
  if retry ~= nil and type(retry) ~= "table" and type(retry) ~= "boolean" then
    opt_error("option 'retry' must be a table, true or false")
  end
  if type(retry) == "table" then
    -- the core checks the fields (and raises on bad ones) the same way for both transports
    local ok, msg = pcall(core.retry_decide, retry, "jobs:get", 1, { kind = "api" }, false, 0)
    if not ok then opt_error(tostring(msg):gsub("^intuned: ", "")) end
  end
  o.retry = retry
  local headers = check_opt(opts, "headers", "table")
  if headers then
    o.headers = {}
    for k, v in pairs(headers) do
      if type(k) ~= "string" or not k:match("^[!#$%%&'*+.^_`|~%w-]+$") then
        opt_error("option 'headers' must map header names to values")
      end
      if type(v) ~= "string" and type(v) ~= "number" then
        opt_error(("header '%s' must have a string value"):format(k))
      end
      v = tostring(v)
      if v:find("[\r\n%z]") then opt_error(("header '%s' contains a line break"):format(k)) end
      o.headers[k] = v
    end
  end
  o.ca_file = check_opt(opts, "ca_file", "string")
  o.insecure = check_opt(opts, "insecure", "boolean") or false
  o.hook = check_opt(opts, "hook", "function")
  -- nginx transport only: keepalive pool of connections to the server
  o.keepalive_timeout = seconds(opts, "keepalive_timeout")
  o.pool_size = check_opt(opts, "pool_size", "number")
  o.backlog = check_opt(opts, "backlog", "number")
  for _, k in ipairs{ "pool_size", "backlog" } do
    if o[k] and (o[k] < 1 or o[k] % 1 ~= 0) then opt_error(("option '%s' must be an integer >= 1"):format(k)) end
  end
  return o
end

--- Making a client.
-- @section new

--- intuned.client(opts): see the README's "Client" section for every option.
-- The options are those of @{intuned.client}, which calls this.
-- @tparam[opt] table opts
-- @treturn Client
-- @raise on a bad option, or no API key or workspace id
function M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(("bad argument #1 to 'client' (table expected, got %s)"):format(tname(opts)), 2)
  end
  local transport = opts.transport or "auto"
  if transport ~= "auto" and transport ~= "curl" and transport ~= "ngx" then
    error("intuned.client: option 'transport' must be \"auto\", \"curl\" or \"ngx\"", 2)
  end
  local ok, o = pcall(normalize, opts)
  if not ok then error(o, 2) end
  local self = setmetatable({}, Client)
  local jobs = setmetatable({}, Jobs)
  local runs = setmetatable({}, Runs)
  jobs.runs = runs
  self.jobs = jobs
  self.server_url = o.server_url
  self.workspace_id = o.workspace_id
  client_of[jobs] = self
  client_of[runs] = self
  state_of[self] = { opts = o, transport = transport }
  return self
end

return M
