-- intuned.client: the Jobs API client object.
--
--   local client = intuned.client{ api_key = ..., workspace_id = ... }
--   client.jobs:list(project)                      -> { Job, ... }       | nil, err
--   client.jobs:create(project, input[, callopts]) -> CreateJob          | nil, err
--   client.jobs:get(project, job_id)               -> Job                | nil, err
--   client.jobs:update(project, job_id, update)    -> UpdateJob (newest API)
--   client.jobs:delete(project, job_id)            -> true               | nil, err
--   client.jobs:pause / :resume / :trigger(project, job_id)
--   client.jobs.runs:list(project, job_id[, callopts]) -> { JobRun, ... } (+ totalCount)
--   client.jobs.runs:get(project, job_id, run_id)      -> JobRunDetail (newest API)
--   client.jobs.runs:terminate(project, job_id, run_id) -> TerminateJobRun
--   client.runs:start(project, input) / :result(project, run_id) / :run(project, input[, wait])  (Run API)
--   client.auth_sessions:list / :get / :delete / :create / :create_result / :update / :update_result
--     / :validate / :validate_result  (the starts take { wait = true })
--   client:batch(calls[, { max_in_flight = 32 }])  -> { result-or-error, ... } in order
--   client.jobs.runs:wait / :each, client.jobs:each, trigger{wait = true}: intuned.workflow
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
-- value), user_agent, ca_file, insecure, http2 (libcurl: false keeps to
-- HTTP/1.1; by default HTTP/2 where the TLS handshake offers it, a batch
-- multiplexing over one connection), hook (function(event): redacted
-- request/response/retry events), transport ("auto" | "curl" | "ngx"),
-- api_version ("v0.3.12", the default, or "newest": the create body sent), and
-- for nginx keepalive_timeout, pool_size, backlog (see intuned/ngx.lua).
-- Every option is checked here, once (an unknown one is refused, naming the
-- closest valid one); both transports take the normalized table as it is.
-- Per-call options (a method's last argument, a batch entry's fields):
-- timeout, deadline, retry, headers (over the client's), hook (replaces the
-- client's; false: none).

--- The Jobs API client object, made by @{intuned.client}
-- (`require("intuned").client(opts)`; this module's @{new} is the same).
-- Every method returns its result or `nil, err` (an @{intuned.Error}), and
-- takes an optional last argument (`opts` here) of per-call options:
-- `timeout`, `deadline`, `retry` (each replaces the client's option of that
-- name for the call), `headers` (merged over the client's: a name given
-- again replaces the client's value) and `hook` (replaces the client's hook
-- for the call; false: none), as the options of @{intuned.client}
-- describe them. Misuse (a wrong argument type, an unknown option, calling
-- a method with `.` instead of `:`, a closed client) raises. The transport is picked at each
-- call, so one client works in plain Lua and inside nginx.
-- @module intuned.client
local core = require "intuned.core"
local convert = require "intuned.convert"
local debugout = require "intuned.debug"

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

-- (level: 3 unless called through one more helper)
local function check_string(n, fname, v, level)
  if type(v) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname, tname(v)), level or 3)
  end
end

local function check_opt_table(n, fname, v)
  if v ~= nil and type(v) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(n, fname, tname(v)), 3)
  end
end

-- T2: the body model of the newest API where it differs (create), or nil:
-- an object of it is taken too (the core refuses it unless the client's
-- api_version is "newest").
local function check_input(n, fname, v, T, T2, level)
  if type(v) ~= "table" and not T.is(v) and not (T2 and T2.is(v)) then
    error(("bad argument #%d to '%s' (table or intuned.%s expected, got %s)"):format(n, fname, T.name, tname(v)),
      level or 3)
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

-- The libcurl client takes the normalized options as they are (the nginx
-- pool options and `transport` mean nothing to it).
local function curl_client(st)
  if st.curl then return st.curl end
  local cc, err = core.curl_client(st.opts)
  if not cc then return nil, err end
  st.curl = cc
  return cc
end

-- loaded on first use (it needs nginx), then kept: this runs for every call
local ngx_mod
local function ngx_transport()
  if not ngx_mod then ngx_mod = require "intuned.ngx" end
  return ngx_mod
end

-- One operation: args = { project=, job_id=, run_id=, input=, update=, page_number=, ... }.
-- With debug output on, a call's own hook (or none: false) still prints.
local function with_debug(st, callopts)
  if not st.debug or not callopts or callopts.hook == nil then return callopts end
  local co = {}
  for k, v in pairs(callopts) do co[k] = v end
  co.hook = debugout.wrap(callopts.hook or nil, st.debug)
  return co
end

-- A JobInput object (v0.3.12's create body, e.g. from intuned.plan) as the
-- newest API's: through the update conversion, the id put back.  What the
-- newest API has no place for is refused (not dropped): the first such
-- field, with its path.  nil, err.
local function newest_of_input(input)
  local up, err = convert.to_update(input)
  if not up then return nil, err end
  local notes = up:warnings()
  if #notes > 0 then
    local path = notes[1]:match("^(.-): ") or ""
    return nil, new_error("validation", path .. ": only in API v0.3.12 (the client's api_version is \"newest\")",
      { path = path })
  end
  local t = up:to_table()
  t.id = input.id
  return core.JobInputNewest.new(t)
end

-- The arguments as the client's API version sends them: with api_version
-- "newest" a create body given as a plain table is mapped where both
-- versions mean the same thing (intuned.convert.create_body_newest), a
-- JobInput object converted; the core then checks the body as a
-- JobInputNewest (ops.c picks the model).  nil, err when a JobInput does
-- not convert.
local function versioned(st, op, args)
  if st.opts.api_version ~= "newest" or op ~= "jobs:create" or type(args) ~= "table" then return args end
  local input = args.input
  local mapped, err
  if type(input) == "table" then
    mapped = convert.create_body_newest(input)
  elseif core.type(input) == "JobInput" then
    mapped, err = newest_of_input(input)
    if not mapped then return nil, err end
  else
    return args
  end
  local out = {}
  for k, v in pairs(args) do out[k] = v end
  out.input = mapped
  return out
end

local function call(client, op, args, callopts)
  local st = state_of[client]
  if st.closed then error("intuned: the client is closed", 3) end
  local verr
  if st.opts.api_version == "newest" then
    args, verr = versioned(st, op, args)
    if not args then return nil, verr end
  end
  if st.debug and callopts then callopts = with_debug(st, callopts) end
  -- outside nginx with the libcurl client made: what pick_transport and
  -- curl_client decide, without their calls (this runs for every call)
  local cc0 = st.curl
  if cc0 and rawget(_G, "ngx") == nil and st.transport ~= "ngx" then return cc0:call(op, args, callopts) end
  local t, err = pick_transport(st)
  if not t then return nil, err end
  if t == "ngx" then return ngx_transport().call(st.opts, op, args, callopts) end
  local cc, cerr = curl_client(st)
  if not cc then return nil, cerr end
  return cc:call(op, args, callopts)
end

-- ---------------------------------------------------------------- options
-- Every option of the client and of a call is checked here, once; the
-- transports (core.curl_client, intuned.ngx) take the normalized values as
-- they are: seconds as numbers (0: no limit), retry as nil (the default),
-- true, false or a table of checked fields, headers as a name -> string map.

-- The edit distance of a and b (for "did you mean"): short option names only.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- "unknown option 'timout' (did you mean 'timeout'?)": the closest of the
-- valid names (a set) when it is close enough to be a typo.
local function unknown(what, k, valid)
  if type(k) ~= "string" then return ("%s keys must be strings, got %s"):format(what, type(k)) end
  local best, bd = nil, math.huge
  local names = {}
  for name in pairs(valid) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local d = distance(k:lower(), name)
    if d < bd then best, bd = name, d end
  end
  if best and bd <= math.max(2, math.floor(#best / 3)) then
    return ("unknown %s '%s' (did you mean '%s'?)"):format(what, k, best)
  end
  return ("unknown %s '%s' (%ss: %s)"):format(what, k, what, table.concat(names, ", "))
end

-- Checkers: (value, name) -> true, normalized value | false, message.
local function typed(want)
  return function(v, k)
    if type(v) ~= want then return false, ("option '%s' must be a %s, got %s"):format(k, want, type(v)) end
    return true, v
  end
end
local string_opt, boolean_opt, hook_opt = typed("string"), typed("boolean"), typed("function")

local function seconds_opt(v, k)
  if v == false then return true, 0 end -- no limit
  if type(v) ~= "number" or v ~= v or v < 0 or v >= 1e9 then
    return false, ("option '%s' must be a number of seconds >= 0 or false"):format(k)
  end
  return true, v
end

local function count_opt(v, k)
  if type(v) ~= "number" or v < 1 or v % 1 ~= 0 or v >= 2 ^ 31 then
    return false, ("option '%s' must be an integer >= 1"):format(k)
  end
  return true, v
end

-- api_version: the API form create sends; spellings -> the name kept.
local API_VERSIONS = { ["v0.3.12"] = "v0.3.12", ["0.3.12"] = "v0.3.12", newest = "newest", ["v0.5.2"] = "newest" }
local function api_version_opt(v, k)
  local name = API_VERSIONS[v]
  if not name then
    return false, ("option '%s' must be \"v0.3.12\" (the default; also \"0.3.12\") or \"newest\" "
      .. "(also \"v0.5.2\"), got %s"):format(k, type(v) == "string" and ("%q"):format(v) or type(v))
  end
  return true, name
end

local function debug_opt(v, k)
  if type(v) ~= "boolean" and type(v) ~= "function" then
    return false, ("option '%s' must be a boolean or a function(line), got %s"):format(k, type(v))
  end
  return true, v
end

local function call_hook_opt(v, k)
  if v == false then return true, false end -- no hook for this call
  return hook_opt(v, k)
end

local RETRY_FIELDS = {
  max_attempts = function(v) return type(v) == "number" and v >= 1 and v <= 1000 and v % 1 == 0,
    "an integer from 1 to 1000" end,
  initial_delay = function(v) return type(v) == "number" and v >= 0 and v < 1e9, "a number of seconds >= 0" end,
  max_delay = function(v) return type(v) == "number" and v >= 0 and v < 1e9, "a number of seconds >= 0" end,
  multiplier = function(v) return type(v) == "number" and v >= 1 and v < 1e9, "a number >= 1" end,
  jitter = function(v) return type(v) == "number" and v >= 0 and v <= 1, "a number from 0 to 1" end,
  enabled = function(v) return type(v) == "boolean", "a boolean" end,
}

local function retry_opt(v, k)
  if type(v) == "boolean" then return true, v end
  if type(v) ~= "table" then return false, ("option '%s' must be a table, true or false"):format(k) end
  local out = {}
  for f, x in pairs(v) do
    local check = RETRY_FIELDS[f]
    if not check then return false, unknown(k .. " field", f, RETRY_FIELDS) end
    local ok, want = check(x)
    if not ok then return false, ("option '%s.%s' must be %s"):format(k, f, want) end
    out[f] = x
  end
  return true, out
end

local function headers_opt(v, k)
  if type(v) ~= "table" then return false, ("option '%s' must be a table, got %s"):format(k, type(v)) end
  local out = {}
  for name, x in pairs(v) do
    if type(name) ~= "string" or not name:match("^[!#$%%&'*+.^_`|~%w-]+$") then
      return false, ("option '%s' must map header names to values"):format(k)
    end
    if type(x) ~= "string" and type(x) ~= "number" then
      return false, ("header '%s' must have a string value"):format(name)
    end
    x = tostring(x)
    if x:find("[\r\n%z]") then return false, ("header '%s' contains a line break"):format(name) end
    out[name] = x
  end
  return true, out
end

-- The options of intuned.client{...} and their checkers.
local CLIENT_OPTIONS = {
  api_key = string_opt,
  workspace_id = string_opt,
  server_url = string_opt,
  user_agent = string_opt,
  connect_timeout = seconds_opt,
  timeout = seconds_opt,
  deadline = seconds_opt,
  retry = retry_opt,
  headers = headers_opt,
  ca_file = string_opt,
  insecure = boolean_opt,
  http2 = boolean_opt,
  hook = hook_opt,
  debug = debug_opt,
  transport = string_opt,
  api_version = api_version_opt,
  keepalive_timeout = seconds_opt,
  pool_size = count_opt,
  backlog = count_opt,
}

-- The options one call may carry, replacing (headers: merged over) the
-- client's for that call.
local CALL_OPTIONS = {
  timeout = seconds_opt,
  deadline = seconds_opt,
  retry = retry_opt,
  headers = headers_opt,
  hook = call_hook_opt,
}

-- Options of one operation beyond the call options (trigger's `wait`:
-- intuned.workflow triggers, then waits for the run).
local workflow = require "intuned.workflow"
local RESULT_WAIT = { wait = workflow.result_wait_option }
local OP_OPTIONS = { ["jobs:trigger"] = { wait = workflow.wait_option }, ["runs:start"] = RESULT_WAIT,
  ["auth_sessions:create"] = RESULT_WAIT, ["auth_sessions:update"] = RESULT_WAIT,
  ["auth_sessions:validate"] = RESULT_WAIT }

-- The wait of each operation with a `wait` option: (method table, start,
-- args, the wait's options, the call's other options) -> the finished
-- object | nil, err.
local WAITERS = {
  ["jobs:trigger"] = function(self, start, args, wait, pollopts)
    return workflow.trigger_wait(self, start, args.project, args.job_id, wait, pollopts)
  end,
  ["runs:start"] = function(self, start, args, wait, pollopts)
    return workflow.start_wait(self, start, args.project, wait, pollopts)
  end,
}
for _, kind in ipairs{ "create", "update", "validate" } do
  WAITERS["auth_sessions:" .. kind] = function(self, start, args, wait, pollopts)
    return workflow.operation_wait(self, kind, start, args.project, args.auth_session_id, wait, pollopts)
  end
end

-- A method's options table: the row's query arguments (into `args`), the
-- call options and the operation's own (`extra`, into the third result).
-- The normalized call options (nil when none), or nil, msg.
-- (Not a table of valid names made once: the query differs by method.)
local function call_options(opts, query, args, extra)
  local co, own
  for k, v in pairs(opts) do
    if extra and extra[k] then
      local ok, x = extra[k](v, k)
      if not ok then return nil, x end
      own = own or {}
      own[k] = x
    elseif query[k] then
      if type(v) ~= "string" and type(v) ~= "number" then
        return nil, ("'%s' must be a string or number, got %s"):format(k, type(v))
      end
      args[k] = v
    else
      local check = CALL_OPTIONS[k]
      if not check then
        local valid = {}
        for name in pairs(CALL_OPTIONS) do valid[name] = true end
        for name in pairs(query) do valid[name] = true end
        for name in pairs(extra or {}) do valid[name] = true end
        return nil, unknown("option", k, valid)
      end
      local ok, x = check(v, k)
      if not ok then return nil, x end
      co = co or {}
      co[k] = x
    end
  end
  return co, nil, own
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


--- `client.jobs`: the job operations. Each method's last argument, `opts`,
-- takes the per-call options: `timeout` and `deadline` (seconds; false:
-- none), `retry` (a policy, true or false), each replacing the client's
-- option of that name for the call; `headers` (name to value, sent after
-- the client's: a name given again replaces the client's value); `hook`
-- (called instead of the client's hook for the call's events; false:
-- none). An unknown key raises, naming the closest valid one.
-- @type Jobs

--- `client.jobs.runs`, the run operations (@{Runs}).
-- @field runs

-- The methods of client.jobs and client.jobs.runs are made from the
-- operation table: method(self, <row.args...>[, <row.body>][, opts]), the
-- row's query arguments read from opts.  The doc blocks below describe
-- what each one makes.
local RunApi = {} -- client.runs: the Run API (one run of a project API)
RunApi.__index = RunApi
local AuthSessions = {} -- client.auth_sessions
AuthSessions.__index = AuthSessions
local GROUPS = { jobs = Jobs, ["jobs.runs"] = Runs, runs = RunApi, auth_sessions = AuthSessions }

local function make_method(row)
  local fname, what, op = row.method_name, row.group, row.name
  local names, nargs, body = row.args, #row.args, row.body
  local query = {}
  for _, k in ipairs(row.query) do query[k] = true end
  local T = row.body_type and assert(core[row.body_type], row.body_type)
  local T2 = row.body_type_newest and row.body_type_newest ~= row.body_type
    and assert(core[row.body_type_newest], row.body_type_newest)
  local iopts = nargs + (body and 2 or 1) -- the position of opts
  local extra = OP_OPTIONS[op]
  local n1, n2, n3 = names[1], names[2], names[3]
  -- The arguments table of a call, sized by its constructor (the checks
  -- first, in argument order).  Fixed parameters rather than `...` and
  -- select(): this runs for every call.
  local function arguments(a1, a2, a3, a4)
    check_string(1, fname, a1, 4)
    if nargs == 1 then
      if not body then return { [n1] = a1 } end
      check_input(2, fname, a2, T, T2, 4)
      return { [n1] = a1, [body] = a2 }
    end
    check_string(2, fname, a2, 4)
    if nargs == 2 then
      if not body then return { [n1] = a1, [n2] = a2 } end
      check_input(3, fname, a3, T, T2, 4)
      return { [n1] = a1, [n2] = a2, [body] = a3 }
    end
    check_string(3, fname, a3, 4)
    if not body then return { [n1] = a1, [n2] = a2, [n3] = a3 } end
    check_input(4, fname, a4, T, T2, 4)
    return { [n1] = a1, [n2] = a2, [n3] = a3, [body] = a4 }
  end
  -- start (trigger), then wait; the polls take the other options.  Apart
  -- from finish: a closure made in a function makes LuaJIT close its
  -- upvalues on every return (bytecode UCLO, which it cannot compile), so
  -- every call's trace would end there.
  local function start_and_wait(self, c, args, callopts, opts, wait)
    local pollopts = {}
    for k, v in pairs(opts) do if k ~= "wait" then pollopts[k] = v end end
    return WAITERS[op](self, function() return call(c, op, args, callopts) end, args, wait, pollopts)
  end
  local function finish(self, c, args, opts)
    check_opt_table(iopts, fname, opts)
    local callopts, msg, own
    if opts then
      callopts, msg, own = call_options(opts, query, args, extra)
      if msg then argerror(iopts, fname, msg) end
    end
    if own and own.wait then return start_and_wait(self, c, args, callopts, opts, own.wait) end
    return call(c, op, args, callopts)
  end
  if nargs >= 1 and nargs <= 3 then
    -- the options' position: iopts (2 to 5)
    if iopts == 2 then
      return function(self, a1, o) return finish(self, owner(self, fname, what), arguments(a1), o) end
    elseif iopts == 3 then
      return function(self, a1, a2, o) return finish(self, owner(self, fname, what), arguments(a1, a2), o) end
    elseif iopts == 4 then
      return function(self, a1, a2, a3, o)
        return finish(self, owner(self, fname, what), arguments(a1, a2, a3), o)
      end
    end
    return function(self, a1, a2, a3, a4, o)
      return finish(self, owner(self, fname, what), arguments(a1, a2, a3, a4), o)
    end
  end
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
      check_input(nargs + 1, fname, v, T, T2)
      args[body] = v
    end
    return finish(self, c, args, (select(iopts, ...)))
  end
end

for _, name in ipairs(core.operations) do
  local row = OPS[name]
  local t = assert(GROUPS[row.group], "intuned.client: no client table for the operations of " .. row.group)
  t[row.method_name] = make_method(row)
end
-- runs:wait, runs:each, jobs:each (documented below)
workflow.install(Jobs, Runs, RunApi)

--- List the jobs of a project.
-- @tparam string project the project name
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
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
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
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
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
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
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
-- @treturn intuned.UpdateJob
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @usage assert(client.jobs:update("p", "nightly", job:to_update{ configuration = { maxConcurrentRequests = 2 } }))
-- @function Jobs:update

--- Delete a job.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
-- @treturn boolean true
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Jobs:delete

--- Pause a job (its schedule stops starting runs).
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
-- @treturn intuned.PauseJob
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Jobs:pause

--- Resume a paused job.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
-- @treturn intuned.ResumeJob
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Jobs:resume

--- Start a run of a job now. Retried like @{Jobs:create}: never when the
-- request may have started a run. With `wait` it then waits for the run to
-- finish and returns the finished run (@{intuned.workflow.trigger_wait}).
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs}), and `wait`: `true` or a table of the
-- options of @{Runs:wait} (`timeout`, `poll`, ...) to wait for the run
-- @treturn intuned.TriggerJob its `jobRunId` names the run (newest API);
-- with `wait`, the finished `JobRun`
-- @return[2] nil
-- @treturn[2] intuned.Error (with `wait`, also kind `timeout`, whose
-- `run_id` names the run)
-- @usage local run = assert(client.jobs:trigger("my-project", "nightly", { wait = { timeout = 300 } }))
-- print(run.status)  --> COMPLETED
-- @function Jobs:trigger

--- Every job of a project, for a generic `for`
-- (@{intuned.workflow.each_job}). On a failure the iterator returns
-- `nil, err` (again when called after the loop).
-- @tparam string project the project name
-- @tparam[opt] table opts per-call options of the list call
-- @treturn function the iterator
-- @usage for job in client.jobs:each("my-project") do print(job.id) end
-- @function Jobs:each

--- `client.jobs.runs`: the run operations.
-- @type Runs

--- List the runs of a job.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `page_number`, `page_size`, `sort_by` (the newest
-- API's query; strings or numbers) and the per-call options (see @{Jobs})
-- @treturn {intuned.JobRun,...} an array of `JobRun`, plus `totalCount` (an
-- integer) when the newest API sends one
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Runs:list

--- Get a run and where its results are (newest API).
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam string run_id the run id
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
-- @treturn intuned.JobRunDetail
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Runs:get

--- Stop a run.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam string run_id the run id
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs})
-- @treturn intuned.TerminateJobRun
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function Runs:terminate

--- Wait for a run to finish (@{intuned.workflow.wait}): polls it with a
-- growing interval (`ngx.sleep` inside nginx, never blocking the worker)
-- until its status is finished, within `timeout` seconds as a whole.
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam string run_id the run id
-- @tparam[opt] table opts `timeout` (600), `poll` (1), `max_poll` (15),
-- `backoff` (1.5), `on_poll`, `call` (per-call options of each poll), `via`
-- @treturn intuned.JobRun the finished run (`COMPLETED`, `FAILED`, ...)
-- @return[2] nil
-- @treturn[2] intuned.Error kind `timeout` (with `run_id`, `run`), or a
-- poll's failure
-- @usage local run, err = client.jobs.runs:wait("my-project", "nightly", run_id, { timeout = 60 })
-- @function Runs:wait

--- Every run of a job, following the pages (@{intuned.workflow.each_run}).
-- On a failure the iterator returns `nil, err` (again when called after
-- the loop).
-- @tparam string project the project name
-- @tparam string job_id the job id
-- @tparam[opt] table opts `page_size` (100; false: the v0.3.12 single
-- list), `page_number` (first page, 0), `sort_by`, per-call options
-- @treturn function the iterator
-- @usage for run in client.jobs.runs:each("my-project", "nightly") do print(run.id, run.status) end
-- @function Runs:each

--- `client.runs`: the Run API, one run of a project API at a time (the
-- newest API; not the job runs of @{Runs}). The start is never retried
-- once it may have reached the server (except on 429 and on 503 with
-- `Retry-After`, as @{Jobs:create}); the result is.
-- @type RunApi

--- Start a run of a project API. With `wait` it then polls the run's
-- result until it has finished and returns that
-- (@{intuned.workflow.start_wait}).
-- @tparam string project the project name
-- @tparam table|intuned.RunStartInput input `api`, `parameters` and the
-- optional settings (a table is checked as a `RunStartInput`; nothing is
-- sent when it does not validate)
-- @tparam[opt] table opts per-call options (`timeout`, `deadline`, `retry`,
-- `headers`, `hook`; see @{Jobs}), and `wait`: `true` or a table of wait
-- options (`timeout`, `poll`, `max_poll` (10), `backoff`, `on_poll`, `call`)
-- @treturn intuned.RunStarted its `runId` names the run; with `wait`, the
-- finished `RunResult`
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @usage local started = assert(client.runs:start("my-project", { api = "products/list",
--   parameters = { category = "shoes" } }))
-- @function RunApi:start

--- A run's status and, once it has finished, its result (`completed`),
-- `error` (`failed`) or `reason` (`canceled`). Answers in every state.
-- @tparam string project the project name
-- @tparam string run_id the `runId` of the start
-- @tparam[opt] table opts per-call options (see @{Jobs})
-- @treturn intuned.RunResult
-- @return[2] nil
-- @treturn[2] intuned.Error such as kind `not_found`
-- @function RunApi:result

--- Start a run and wait for its result (@{intuned.workflow.run}): polls
-- `result` (after 1 s, backing off to 10 s) until the status is
-- `completed`, `failed` or `canceled`.
-- @tparam string project the project name
-- @tparam table|intuned.RunStartInput input as for @{RunApi:start}
-- @tparam[opt] table opts `timeout` (the whole wait, default 600 s),
-- `poll`, `max_poll`, `backoff`, `on_poll`, `call` (per-call options of
-- the start and the polls)
-- @treturn intuned.RunResult the finished run's result
-- @return[2] nil
-- @treturn[2] intuned.Error (kind `timeout` carries `run_id` and the last `result`)
-- @usage local res = assert(client.runs:run("my-project", { api = "products/list", parameters = {} },
--   { timeout = 120 }))
-- print(res.status, res.result)
-- @function RunApi:run

--- `client.auth_sessions`: a project's auth sessions. `create`, `update`
-- and `validate` start an operation (never retried once they may have
-- reached the server); its `*_result` method reads how it is going, and
-- their `wait` option polls it until it has finished
-- (@{intuned.workflow.operation_wait}).
-- @type AuthSessions

--- List a project's auth sessions.
-- @tparam string project the project name
-- @tparam[opt] table opts per-call options (see @{Jobs})
-- @treturn {intuned.AuthSessionInfo,...} an array
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function AuthSessions:list

--- Get an auth session.
-- @tparam string project the project name
-- @tparam string auth_session_id the session's id
-- @tparam[opt] table opts per-call options (see @{Jobs})
-- @treturn intuned.AuthSessionInfo
-- @return[2] nil
-- @treturn[2] intuned.Error such as kind `not_found`
-- @function AuthSessions:get

--- Delete an auth session.
-- @tparam string project the project name
-- @tparam string auth_session_id the session's id
-- @tparam[opt] table opts per-call options (see @{Jobs})
-- @treturn boolean true
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function AuthSessions:delete

--- Start creating an auth session from credentials.
-- @tparam string project the project name
-- @tparam table|intuned.AuthSessionCreateInput input `parameters` (the
-- credentials: hidden in `tostring`, scrubbed from errors and events) and
-- the optional `id`, `proxy`, attempts, `saveTrace`
-- @tparam[opt] table opts per-call options (see @{Jobs}), and `wait`
-- (`true` or a table of wait options, as for @{RunApi:start})
-- @treturn intuned.OperationStarted its `operationId` is for
-- @{AuthSessions:create_result}; with `wait`, the finished `OperationResult`
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @usage local op = assert(client.auth_sessions:create("my-project",
--   { parameters = { username = "jane", password = os.getenv("PASSWORD") } }, { wait = { timeout = 120 } }))
-- print(op.status, op.authSessionId)
-- @function AuthSessions:create

--- How a create goes.
-- @tparam string project the project name
-- @tparam string operation_id the `operationId` of the create
-- @tparam[opt] table opts per-call options (see @{Jobs})
-- @treturn intuned.OperationResult
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function AuthSessions:create_result

--- Start re-creating an auth session with new credentials.
-- @tparam string project the project name
-- @tparam string auth_session_id the session's id
-- @tparam table|intuned.AuthSessionUpdateInput input `parameters` (secret) and the optional settings
-- @tparam[opt] table opts per-call options (see @{Jobs}), and `wait`
-- @treturn intuned.OperationStarted; with `wait`, the finished `OperationResult`
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function AuthSessions:update

--- How an update goes.
-- @tparam string project the project name
-- @tparam string auth_session_id the session's id
-- @tparam string operation_id the `operationId` of the update
-- @tparam[opt] table opts per-call options (see @{Jobs})
-- @treturn intuned.OperationResult
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function AuthSessions:update_result

--- Start checking an auth session (and, with `autoRecreate`, re-creating
-- it when the check fails).
-- @tparam string project the project name
-- @tparam string auth_session_id the session's id
-- @tparam table|intuned.AuthSessionValidateInput input the settings (`{}`: the defaults)
-- @tparam[opt] table opts per-call options (see @{Jobs}), and `wait`
-- @treturn intuned.OperationStarted; with `wait`, the finished `OperationResult`
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function AuthSessions:validate

--- How a validate goes.
-- @tparam string project the project name
-- @tparam string auth_session_id the session's id
-- @tparam string operation_id the `operationId` of the validate
-- @tparam[opt] table opts per-call options (see @{Jobs})
-- @treturn intuned.OperationResult
-- @return[2] nil
-- @treturn[2] intuned.Error
-- @function AuthSessions:validate_result

-- --------------------------------------------------------------- client

--- The client object that @{intuned.client} returns. `tostring(client)`
-- shows the server, workspace and transport, never the key.
-- @type Client

--- `client.jobs`, the job operations (@{Jobs}).
-- @field jobs

--- `client.runs`, the Run API (@{RunApi}).
-- @field runs

--- `client.auth_sessions`, the auth sessions (@{AuthSessions}).
-- @field auth_sessions

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

-- What a batch entry may hold: `op`, `args`, every argument of the
-- operation table by any of its names (ARG_NAMES: name -> its row) and the
-- call options.
local ARG_NAMES = {}
for _, name in ipairs(core.arguments) do
  local a = core.arguments[name]
  ARG_NAMES[name] = a
  for _, alias in ipairs(a.aliases) do ARG_NAMES[alias] = a end
end
local ENTRY_FIELDS = { op = true, args = true }
for k in pairs(ARG_NAMES) do ENTRY_FIELDS[k] = true end
for k in pairs(CALL_OPTIONS) do ENTRY_FIELDS[k] = true end

-- The arguments and normalized call options of batch entry c; nil, msg for
-- a field that is not one.
local function entry_of(c)
  local co
  for k, v in pairs(c) do
    local a = ARG_NAMES[k]
    if a and a.where ~= "body" and type(v) ~= "string" and not (type(v) == "number" and a.numbers) then
      return nil, nil, (".%s: string expected, got %s"):format(k, type(v))
    elseif CALL_OPTIONS[k] then
      local ok, x = CALL_OPTIONS[k](v, k)
      if not ok then return nil, nil, ": " .. x end
      co = co or {}
      co[k] = x
    elseif not ENTRY_FIELDS[k] then
      return nil, nil, ": " .. unknown("field", k, ENTRY_FIELDS)
    end
  end
  local args = c
  if c.args ~= nil then
    if type(c.args) ~= "table" then return nil, nil, ".args: table expected, got " .. type(c.args) end
    args = c.args
    for k, v in pairs(args) do
      local a = ARG_NAMES[k]
      if not a then return nil, nil, ".args: " .. unknown("argument", k, ARG_NAMES) end
      if a.where ~= "body" and type(v) ~= "string" and not (type(v) == "number" and a.numbers) then
        return nil, nil, (".args.%s: string expected, got %s"):format(k, type(v))
      end
    end
  end
  return args, co
end

--- Many calls at once; results in the order of `calls`.
-- calls[i] = { op = "jobs:trigger", project = ..., job_id = ..., run_id = ...,
--              input = ..., update = ..., timeout = ..., deadline = ..., retry = ...,
--              headers = ..., hook = ... }  (or { op = , args = {...}, timeout = ..., ... }):
-- the arguments of the operation and the per-call options of the methods
-- (see @{Jobs}); any other field raises.
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
  local newest, dbg = st.opts.api_version == "newest", st.debug
  local t, err = pick_transport(st)
  for i = 1, #calls do
    local c = calls[i]
    if type(c) ~= "table" then
      error(("bad argument #1 to 'batch' (calls[%d] must be a table, got %s)"):format(i, tname(c)), 2)
    end
    if not OPS[c.op] then
      error(("bad argument #1 to 'batch' (calls[%d].op: unknown operation '%s')"):format(i, tostring(c.op)), 2)
    end
    local args, co, msg = entry_of(c)
    if msg then error(("bad argument #1 to 'batch' (calls[%d]%s)"):format(i, msg), 2) end
    -- a JobInput that does not convert goes as it is: the core refuses it in its slot
    if newest then args = versioned(st, c.op, args) or args end
    if dbg and co then co = with_debug(st, co) end
    -- to libcurl, an entry that is its own arguments and has no call
    -- options goes as it is (the core reads its `op` and arguments): no
    -- table per call
    if args == c and not co and t == "curl" then list[i] = c else list[i] = { c.op, args, co } end
  end
  local n = #list
  if n == 0 then return {} end
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

-- --------------------------------------------------------------- making

local function nonempty(v)
  if v == "" then return nil end
  return v
end

-- The client's normalized options; nil, msg for a bad one.
local function normalize(opts)
  local o = {}
  for k, v in pairs(opts) do
    local check = CLIENT_OPTIONS[k]
    if not check then return nil, unknown("option", k, CLIENT_OPTIONS) end
    local ok, x = check(v, k)
    if not ok then return nil, x end
    o[k] = x
  end
  -- the environment fills in what the options leave out (here only: the
  -- transports read none of it)
  o.api_key = nonempty(o.api_key) or nonempty(os.getenv("INTUNED_API_KEY"))
  if not o.api_key then return nil, "no API key: pass api_key or set INTUNED_API_KEY" end
  o.workspace_id = nonempty(o.workspace_id) or nonempty(os.getenv("INTUNED_WORKSPACE_ID"))
  if not o.workspace_id then return nil, "no workspace id: pass workspace_id or set INTUNED_WORKSPACE_ID" end
  o.server_url = nonempty(o.server_url) or nonempty(os.getenv("INTUNED_SERVER_URL")) or DEFAULT_SERVER_URL
  if not o.server_url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") then
    return nil, "server_url must be an http:// or https:// URL"
  end
  o.user_agent = o.user_agent or ("lua-intuned/" .. core._VERSION)
  if o.user_agent:find("[\r\n]") then return nil, "user_agent contains a line break" end
  o.transport = o.transport or "auto"
  if o.transport ~= "auto" and o.transport ~= "curl" and o.transport ~= "ngx" then
    return nil, "option 'transport' must be \"auto\", \"curl\" or \"ngx\""
  end
  o.insecure = o.insecure or false
  o.api_version = o.api_version or "v0.3.12"
  -- debug output: the option, else INTUNED_DEBUG; a hook that prints a line
  -- per event, around the user's (the events are redacted already)
  if o.debug == nil then o.debug = debugout.from_env() end
  local printer = debugout.printer(o.debug)
  o.debug = nil
  if printer then o.hook = debugout.wrap(o.hook, printer) end
  return o, printer
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
  local o, printer = normalize(opts)
  if not o then error("intuned.client: " .. printer, 2) end
  local self = setmetatable({}, Client)
  local jobs = setmetatable({}, Jobs)
  local runs = setmetatable({}, Runs)
  jobs.runs = runs
  self.jobs = jobs
  local run_api, auth_sessions = setmetatable({}, RunApi), setmetatable({}, AuthSessions)
  self.runs = run_api
  self.auth_sessions = auth_sessions
  client_of[run_api] = self
  client_of[auth_sessions] = self
  self.server_url = o.server_url
  self.workspace_id = o.workspace_id
  client_of[jobs] = self
  client_of[runs] = self
  state_of[self] = { opts = o, transport = o.transport, debug = printer }
  return self
end

return M
