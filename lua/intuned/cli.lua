-- intuned.cli: the `intuned` command line (bin/intuned is its launcher).
--
--   intuned [--project NAME] [--json] COMMAND ...     intuned --help
--
-- Credentials and the server come from the environment, as for the library
-- (INTUNED_API_KEY, INTUNED_WORKSPACE_ID, INTUNED_SERVER_URL); the project
-- from --project or INTUNED_PROJECT.  Output is a table for people, or JSON
-- with --json (secrets shown as "***" in both).  Exit codes: 0 ok, 1 an API,
-- network or timeout error, 2 a usage error (bad arguments, a file that is
-- not job definitions), 3 an awaited run that finished unsuccessfully.

--- The `intuned` command line: jobs, runs, the Run API and auth sessions,
-- schedule previews, plan/apply and the local emulator from a shell. `bin/intuned` calls @{main}; run
-- `intuned --help` for the commands. Exit codes: 0 ok, 1 an API, network
-- or timeout error, 2 a usage error, 3 an awaited run that finished
-- unsuccessfully (FAILED, TERMINATED, ...; a Run API run that did not
-- complete, an auth-session operation that is not done).
-- @module intuned.cli
local M = {}

local EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_RUN_FAILED = 0, 1, 2, 3

--- The exit codes: `ok` 0, `api` 1, `usage` 2, `run_failed` 3.
-- @table EXIT
M.EXIT = { ok = EXIT_OK, api = EXIT_API, usage = EXIT_USAGE, run_failed = EXIT_RUN_FAILED }

-- ------------------------------------------------------------ commands

local GLOBAL_HELP = [[
Usage: intuned [--project NAME] [--json] COMMAND [ARGS]

Commands:
  jobs list                         the project's jobs
  jobs get JOB                      one job
  jobs create FILE [JOB...]         create the jobs FILE declares (or only JOB...)
  jobs update FILE [JOB...]         replace their definitions (newest API)
  jobs delete JOB...                delete jobs
  jobs pause JOB / jobs resume JOB  pause or resume a job
  jobs trigger JOB [--wait]         start a run now (--wait: until it finishes)
  runs list JOB                     every run of a job (all pages)
  runs get JOB RUN                  one run
  runs terminate JOB RUN            stop a run
  runs wait JOB RUN                 wait until a run finishes
  runs start API                    start one run of a project API (Run API)
  runs result RUN                   a Run API run's status and result
  runs run API                      start one run and wait for its result
  auth-sessions list                the project's auth sessions
  auth-sessions get ID              one auth session
  auth-sessions delete ID...        delete auth sessions
  auth-sessions create [--wait]     create one from credentials (--parameters)
  auth-sessions update ID [--wait]  re-create one with new credentials
  auth-sessions validate ID [--wait]  check one (and re-create it if needed)
  schedule preview FILE             when the jobs FILE declares will run
  plan FILE [--prune]               what apply would change
  apply FILE [--prune]              make the project match FILE
  emulator [ARGS]                   start the local server (intuned-emulator)

Options:
  --project NAME   the project (default $INTUNED_PROJECT)
  --json           JSON output instead of tables
  --help, -h       help (also after any command)
  --version        the library's version

FILE is a Lua file returning an array of job tables, or a JSON file (.json)
holding an array.  INTUNED_API_KEY, INTUNED_WORKSPACE_ID and
INTUNED_SERVER_URL set the credentials and the server, as for the library.
Exit codes: 0 ok, 1 API/network/timeout error, 2 usage error, 3 the awaited
run (or auth-session operation) finished unsuccessfully.
]]

local BODY_HELP = [[
  --parameters JSON  the parameters, a JSON object (or @FILE: read from FILE;
                     prefer it for credentials: a command line is visible to
                     other users of the machine)
  --input FILE       the whole body, a JSON file (.json) or a Lua file
                     returning a table; --parameters replaces its parameters
]]

local RESULT_WAIT_HELP = [[
  --timeout S      give up after S seconds (default 600; exit 1)
  --poll S         first interval between polls (default 1; grows to --max-poll)
  --max-poll S     longest interval between polls (default 10)
  --quiet          no progress display (on stderr)
]]

local WAIT_HELP = [[
  --timeout S      give up after S seconds (default 600; exit 1)
  --poll S         first interval between polls (default 1; grows to --max-poll)
  --max-poll S     longest interval between polls (default 15)
  --quiet          no progress display (on stderr)
]]

-- name -> { usage =, options = {name = "flag" | "value"}, min =, max = (positional counts) }
local COMMANDS = {
  ["jobs list"] = { usage = "intuned jobs list", about = "List the project's jobs.", min = 0, max = 0 },
  ["jobs get"] = { usage = "intuned jobs get JOB", about = "Show one job (secrets as ***).", min = 1, max = 1 },
  ["jobs create"] = { usage = "intuned jobs create FILE [JOB...]",
    about = "Create the jobs FILE declares, or only those named.", min = 1, max = math.huge },
  ["jobs update"] = { usage = "intuned jobs update FILE [JOB...]",
    about = "Replace the definitions of the jobs FILE declares (or those named): the newest API's update.",
    min = 1, max = math.huge },
  ["jobs delete"] = { usage = "intuned jobs delete JOB...", about = "Delete jobs.", min = 1, max = math.huge },
  ["jobs pause"] = { usage = "intuned jobs pause JOB", about = "Pause a job (no scheduled runs).", min = 1, max = 1 },
  ["jobs resume"] = { usage = "intuned jobs resume JOB", about = "Resume a paused job.", min = 1, max = 1 },
  ["jobs trigger"] = { usage = "intuned jobs trigger JOB [--wait [--timeout S] [--poll S]]",
    about = "Start a run now; with --wait, wait until it finishes (exit 3 when it did not succeed).",
    min = 1, max = 1, options = { wait = "flag", timeout = "value", poll = "value", ["max-poll"] = "value",
                                  quiet = "flag" }, extra = WAIT_HELP },
  ["runs list"] = { usage = "intuned runs list JOB [--page-size N]",
    about = "List every run of a job, following the pages.", min = 1, max = 1,
    options = { ["page-size"] = "value" } },
  ["runs get"] = { usage = "intuned runs get JOB RUN", about = "Show one run.", min = 2, max = 2 },
  ["runs terminate"] = { usage = "intuned runs terminate JOB RUN", about = "Stop a run.", min = 2, max = 2 },
  ["runs wait"] = { usage = "intuned runs wait JOB RUN [--timeout S] [--poll S]",
    about = "Wait until a run finishes (exit 3 when it did not succeed).", min = 2, max = 2,
    options = { timeout = "value", poll = "value", ["max-poll"] = "value", quiet = "flag" }, extra = WAIT_HELP },
  ["schedule preview"] = { usage = "intuned schedule preview FILE [--count N] [--from DATE]",
    about = "Describe the schedules FILE declares and list their next runs (no project needed).",
    min = 1, max = 1, options = { count = "value", from = "value" }, no_project = true },
  ["plan"] = { usage = "intuned plan FILE [--prune]",
    about = "Compare the jobs FILE declares with the project's: what apply would create, update "
      .. "(field by field, secrets as ***) and, with --prune, delete.", min = 1, max = 1,
    options = { prune = "flag" } },
  ["apply"] = { usage = "intuned apply FILE [--prune]",
    about = "Make the project match FILE: create, update and (with --prune) delete jobs. "
      .. "Stops at the first failure and says what was done and what was not.", min = 1, max = 1,
    options = { prune = "flag" } },
}

local WAIT_OPTS = { timeout = "value", poll = "value", ["max-poll"] = "value", quiet = "flag" }
local function with(t, more)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  for k, v in pairs(more or {}) do o[k] = v end
  return o
end
local BODY_OPTS = { parameters = "value", input = "value" }
COMMANDS["runs start"] = { usage = "intuned runs start API [--parameters JSON] [--input FILE] [--wait]",
  about = "Start one run of a project API (the Run API); prints its run id. With --wait, wait for its result "
    .. "(exit 3 when it did not complete).", min = 0, max = 1,
  options = with(BODY_OPTS, with(WAIT_OPTS, { wait = "flag" })), extra = BODY_HELP .. RESULT_WAIT_HELP }
COMMANDS["runs result"] = { usage = "intuned runs result RUN",
  about = "Show a Run API run's status and, once it has finished, its result, error or reason.", min = 1, max = 1 }
COMMANDS["runs run"] = { usage = "intuned runs run API [--parameters JSON] [--input FILE] [--timeout S]",
  about = "Start one run of a project API and wait for its result (exit 3 when it did not complete).",
  min = 0, max = 1, options = with(BODY_OPTS, WAIT_OPTS), extra = BODY_HELP .. RESULT_WAIT_HELP }
COMMANDS["auth-sessions list"] = { usage = "intuned auth-sessions list", about = "List the project's auth sessions.",
  min = 0, max = 0 }
COMMANDS["auth-sessions get"] = { usage = "intuned auth-sessions get ID", about = "Show one auth session.",
  min = 1, max = 1 }
COMMANDS["auth-sessions delete"] = { usage = "intuned auth-sessions delete ID...", about = "Delete auth sessions.",
  min = 1, max = math.huge }
COMMANDS["auth-sessions create"] = { usage = "intuned auth-sessions create [--id ID] --parameters JSON [--wait]",
  about = "Start creating an auth session from credentials; with --wait, wait until it is done (exit 3 when "
    .. "it failed or was canceled).", min = 0, max = 0,
  options = with(BODY_OPTS, with(WAIT_OPTS, { wait = "flag", id = "value" })),
  extra = "  --id ID          the new session's id (default: the server picks one)\n" .. BODY_HELP .. RESULT_WAIT_HELP }
COMMANDS["auth-sessions update"] = { usage = "intuned auth-sessions update ID --parameters JSON [--wait]",
  about = "Start re-creating an auth session with new credentials; with --wait, wait until it is done.",
  min = 1, max = 1, options = with(BODY_OPTS, with(WAIT_OPTS, { wait = "flag" })),
  extra = BODY_HELP .. RESULT_WAIT_HELP }
COMMANDS["auth-sessions validate"] = { usage = "intuned auth-sessions validate ID [--input FILE] [--wait]",
  about = "Start checking an auth session (re-created when the check fails, unless the input's autoRecreate "
    .. "is false); with --wait, wait until it is done.", min = 1, max = 1,
  options = with({ input = "value" }, with(WAIT_OPTS, { wait = "flag" })), extra = BODY_HELP .. RESULT_WAIT_HELP }

local GROUPS = {
  jobs = { "list", "get", "create", "update", "delete", "pause", "resume", "trigger" },
  runs = { "list", "get", "terminate", "wait", "start", "result", "run" },
  ["auth-sessions"] = { "list", "get", "delete", "create", "update", "validate" },
  schedule = { "preview" },
}

-- ------------------------------------------------------------ output

local function out(s) io.stdout:write(s) end
local function say(s) io.stderr:write(s) end

local function usage_error(msg, cmd)
  say("intuned: " .. msg .. "\n")
  if cmd and COMMANDS[cmd] then say("Usage: " .. COMMANDS[cmd].usage .. "\n") end
  say("Run 'intuned --help' for the commands.\n")
  return EXIT_USAGE
end

local function str(v)
  if v == nil then return "-" end
  local ok, core = pcall(require, "intuned.core")
  if ok and v == core.null then return "-" end
  return tostring(v)
end

-- Columns padded to their widest cell.
local function table_text(header, rows)
  local w = {}
  for i, h in ipairs(header) do w[i] = #h end
  for _, r in ipairs(rows) do
    for i = 1, #header do
      r[i] = str(r[i])
      if #r[i] > w[i] then w[i] = #r[i] end
    end
  end
  local lines = {}
  local function line(cells)
    local parts = {}
    for i = 1, #header do
      parts[i] = i == #header and cells[i] or (cells[i] .. (" "):rep(w[i] - #cells[i]))
    end
    lines[#lines + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  line(header)
  for _, r in ipairs(rows) do line(r) end
  return table.concat(lines, "\n") .. "\n"
end

-- A plain copy of v (an object's to_table(), or a table) with the
-- secrets a job or run carries replaced by "***": webhook header values
-- and the S3 secretAccessKey, wherever a sink appears.
local function redact(v, in_sink)
  if type(v) ~= "table" then return v end
  local copy = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    if in_sink and k == "secretAccessKey" and x ~= nil then
      copy[k] = "***"
    elseif in_sink and k == "headers" and type(x) == "table" then
      local h = setmetatable({}, getmetatable(x))
      for name in pairs(x) do h[name] = "***" end
      copy[k] = h
    else
      copy[k] = redact(x, in_sink or k == "sink")
    end
  end
  return copy
end

local function plain(obj)
  local core = require "intuned.core"
  if core.type(obj) then return redact(obj:to_table()) end
  return redact(obj)
end

local function json(v)
  local core = require "intuned.core"
  return core.encode_json(v) .. "\n"
end

local function json_list(list)
  local core = require "intuned.core"
  local arr = core.array()
  for i, x in ipairs(list) do arr[i] = plain(x) end
  return json(arr)
end

local function state_of(job)
  local s = job.state
  if type(s) == "string" then return s end
  if s ~= nil then
    local ok, st = pcall(function() return s.status end)
    if ok and st then return st end
  end
  return "-"
end

local function schedule_text(job)
  local sched = job.schedule
  if sched == nil then return "-" end
  local intuned = require "intuned"
  if sched == intuned.null then return "-" end
  local ok, d = pcall(intuned.schedule.describe, sched)
  if ok and d then return d end
  return "?"
end

-- ------------------------------------------------------------ arguments

-- argv -> { words = {...}, opts = {name = value|true} } or nil, msg.
local VALUE_OPTS = { project = true, timeout = true, poll = true, ["max-poll"] = true, count = true,
                     from = true, ["page-size"] = true, parameters = true, input = true, id = true }
local FLAG_OPTS = { json = true, wait = true, prune = true, quiet = true, help = true, version = true }

local function parse_args(argv)
  local words, opts = {}, {}
  local i, n = 1, #argv
  local rest = false
  while i <= n do
    local a = argv[i]
    if rest then
      words[#words + 1] = a
    elseif a == "--" then
      rest = true
    elseif a == "-h" then
      opts.help = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      if VALUE_OPTS[name] then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, "option --" .. name .. " needs a value" end
        end
        opts[name] = value
      elseif FLAG_OPTS[name] then
        if value ~= nil then return nil, "option --" .. name .. " takes no value" end
        opts[name] = true
      else
        return nil, "unknown option --" .. name .. " (an argument that starts with - goes after --)"
      end
    else
      -- -h is the only short option: any other word starting with one "-"
      -- is an argument (the API's run and operation ids may start with it)
      words[#words + 1] = a
    end
    i = i + 1
  end
  return { words = words, opts = opts }
end

local function number_opt(opts, name, lo, integer)
  local v = opts[name]
  if v == nil then return nil end
  local x = tonumber(v)
  if not x or x ~= x or x < lo or x >= 1e9 or (integer and x % 1 ~= 0) then
    return nil, ("--%s must be a number%s >= %s, got '%s'"):format(name, integer and " (whole)" or "", lo, v)
  end
  return x
end

-- ------------------------------------------------------------ job files

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- A job definitions file: an array of job tables; nil, msg.
local function load_jobs(path)
  local intuned = require "intuned"
  local list
  if path:lower():match("%.json$") then
    local text, err = read_file(path)
    if not text then return nil, "cannot read " .. path .. ": " .. tostring(err) end
    local v, derr = intuned.decode_json(text)
    if v == nil then return nil, path .. ": not JSON: " .. tostring(derr) end
    list = v
  else
    local chunk, err = loadfile(path)
    if not chunk then return nil, "cannot load " .. path .. ": " .. tostring(err) end
    local ok, v = pcall(chunk)
    if not ok then return nil, path .. ": " .. tostring(v) end
    list = v
  end
  if type(list) ~= "table" or getmetatable(list) == intuned.object_mt then
    return nil, path .. ": expected an array of job definitions, got " .. type(list)
  end
  for k in pairs(list) do
    if type(k) ~= "number" then return nil, path .. ": expected an array of job definitions (key '" .. tostring(k)
      .. "' found)" end
  end
  return list
end

-- The jobs of `list` named in ids (all when ids is empty); nil, msg for an
-- id the file does not declare.
local function select_jobs(list, ids, path)
  if #ids == 0 then return list end
  local by = {}
  for _, j in ipairs(list) do if type(j) == "table" and j.id then by[j.id] = j end end
  local out_list = {}
  for _, id in ipairs(ids) do
    if not by[id] then return nil, ("%s declares no job '%s'"):format(path, id) end
    out_list[#out_list + 1] = by[id]
  end
  return out_list
end

-- ------------------------------------------------------------ context

local function api_failure(ctx, err, what)
  say(("intuned: %s%s\n"):format(what and (what .. ": ") or "", tostring(err)))
  if ctx.opts.json then out(json{ error = { kind = err.kind, status = err.status, message = err.message,
                                            path = err.path } }) end
  local kind = type(err) == "table" and err.kind
  if kind == "validation" or kind == "usage" then return EXIT_USAGE end
  return EXIT_API
end

local function make_client()
  local intuned = require "intuned"
  local ok, c = pcall(intuned.client, {})
  if not ok then
    return nil, (tostring(c):gsub("^[^:]*:%d+: ", ""))
  end
  return c
end

-- ------------------------------------------------------------ handlers

local H = {}

H["jobs list"] = function(ctx)
  local jobs, err = ctx.client.jobs:list(ctx.project)
  if not jobs then return api_failure(ctx, err) end
  if ctx.opts.json then out(json_list(jobs)) return EXIT_OK end
  local rows = {}
  for _, j in ipairs(jobs) do
    rows[#rows + 1] = { j.id, state_of(j), j.next_run_time, j.last_run_time, schedule_text(j) }
  end
  out(table_text({ "ID", "STATE", "NEXT RUN", "LAST RUN", "SCHEDULE" }, rows))
  return EXIT_OK
end

local function job_text(j)
  local lines = {}
  local function add(k, v) lines[#lines + 1] = ("%-10s %s"):format(k .. ":", str(v)) end
  add("id", j.id)
  add("state", state_of(j))
  add("schedule", schedule_text(j))
  add("next run", j.next_run_time)
  add("last run", j.last_run_time)
  add("created", j.created_at)
  local apis = {}
  for i, p in ipairs(j.payload or {}) do apis[i] = str(p.apiName) end
  add("payload", #apis > 0 and table.concat(apis, ", ") or "-")
  local sink = j.sink
  if sink ~= nil and sink ~= require("intuned").null then
    add("sink", str(sink.type) .. " " .. str(sink.url or sink.bucket))
  end
  return table.concat(lines, "\n") .. "\n"
end

H["jobs get"] = function(ctx)
  local j, err = ctx.client.jobs:get(ctx.project, ctx.args[1])
  if not j then return api_failure(ctx, err) end
  if ctx.opts.json then out(json(plain(j))) return EXIT_OK end
  out(job_text(j))
  return EXIT_OK
end

local function file_jobs(ctx)
  local path = ctx.args[1]
  local list, msg = load_jobs(path)
  if not list then return nil, msg end
  local ids = {}
  for i = 2, #ctx.args do ids[#ids + 1] = ctx.args[i] end
  return select_jobs(list, ids, path)
end

local function each_job_call(ctx, verb, call)
  local list, msg = file_jobs(ctx)
  if not list then return usage_error(msg) end
  local intuned = require "intuned"
  local results = {}
  for i, src in ipairs(list) do
    local res, err = call(src, i)
    if not res then
      local code = api_failure(ctx, err, ("%s %s"):format(verb, str(type(src) == "table" and src.id or i)))
      return code
    end
    results[#results + 1] = res
    if not ctx.opts.json then out(("%sd %s\n"):format(verb, str(res.id or (type(src) == "table" and src.id)))) end
  end
  if ctx.opts.json then out(json_list(results)) end
  local _ = intuned
  return EXIT_OK
end

-- The i-th job definition as a T (JobInput or JobUpdateInput), or nil and
-- a validation error whose path starts at jobs[i].
local function definition_as(T, src, i)
  local v, err = T.from(src)
  if v then return v end
  local intuned = require "intuned"
  return nil, intuned.new_error("validation", tostring(err.message),
    { path = "jobs[" .. i .. "]" .. (err.path and err.path ~= "" and ("." .. err.path) or "") })
end

H["jobs create"] = function(ctx)
  local intuned = require "intuned"
  return each_job_call(ctx, "create", function(src, i)
    local input, err = definition_as(intuned.JobInput, src, i)
    if not input then return nil, err end
    return ctx.client.jobs:create(ctx.project, input)
  end)
end

H["jobs update"] = function(ctx)
  local intuned = require "intuned"
  return each_job_call(ctx, "update", function(src, i)
    local upd, err = definition_as(intuned.JobUpdateInput, src, i)
    if not upd then return nil, err end
    if type(src.id) ~= "string" then
      return nil, intuned.new_error("validation", "a job to update needs an id", { path = "jobs[" .. i .. "].id" })
    end
    return ctx.client.jobs:update(ctx.project, src.id, upd)
  end)
end

H["jobs delete"] = function(ctx)
  for _, id in ipairs(ctx.args) do
    local ok, err = ctx.client.jobs:delete(ctx.project, id)
    if not ok then return api_failure(ctx, err, "delete " .. id) end
    if not ctx.opts.json then out("deleted " .. id .. "\n") end
  end
  if ctx.opts.json then
    local core = require "intuned.core"
    local arr = core.array()
    for i, id in ipairs(ctx.args) do arr[i] = id end
    out(json{ deleted = arr })
  end
  return EXIT_OK
end

local function simple_action(method, verb)
  return function(ctx)
    local res, err = ctx.client.jobs[method](ctx.client.jobs, ctx.project, ctx.args[1])
    if not res then return api_failure(ctx, err) end
    if ctx.opts.json then out(json(plain(res))) return EXIT_OK end
    out(("%s %s\n"):format(verb, ctx.args[1]))
    return EXIT_OK
  end
end
H["jobs pause"] = simple_action("pause", "paused")
H["jobs resume"] = simple_action("resume", "resumed")

local function run_rows(runs)
  local rows = {}
  for _, r in ipairs(runs) do
    rows[#rows + 1] = { r.id, r.status, r.type, r.start_time, r.end_time }
  end
  return table_text({ "ID", "STATUS", "TYPE", "STARTED", "ENDED" }, rows)
end

local function run_text(r, detail)
  local lines = {}
  local function add(k, v) lines[#lines + 1] = ("%-10s %s"):format(k .. ":", str(v)) end
  add("id", r.id)
  add("job", r.jobId or r.job_id)
  add("status", r.status)
  add("type", r.type)
  add("started", r.start_time)
  add("ended", r.end_time)
  local s = r.summary
  if s ~= nil and s ~= require("intuned").null then
    add("apis", ("%s (%s succeeded, %s failed, %s pending)"):format(str(s.apis_count), str(s.success_count),
      str(s.failures_count), str(s.pending_count)))
  end
  local res = detail and detail.results
  if res ~= nil and res ~= require("intuned").null then add("results", res.signed_url) end
  return table.concat(lines, "\n") .. "\n"
end

-- The wait options from --timeout/--poll/--max-poll, and a progress display
-- ("waiting for <what(obj)>: <status> (<elapsed>s)").  job_id: a job run's
-- wait; else what is a function of the last object seen.
local function wait_opts(ctx, job_id, what_of)
  local o = {}
  local v, msg = number_opt(ctx.opts, "timeout", 0.001)
  if msg then return nil, msg end
  o.timeout = v
  v, msg = number_opt(ctx.opts, "poll", 0.001)
  if msg then return nil, msg end
  o.poll = v
  v, msg = number_opt(ctx.opts, "max-poll", 0.001)
  if msg then return nil, msg end
  o.max_poll = v
  if not ctx.opts.quiet then
    local tty = ctx.stderr_tty()
    local spin, k, last = { "|", "/", "-", "\\" }, 0, nil
    o.on_poll = function(run, elapsed, err)
      local status = run and run.status or "?"
      local subject = what_of and what_of(run)
        or ("run %s of job %s"):format(run and run.id or ctx.run_id or "?", job_id)
      local what = ("waiting for %s: %s (%ds)%s"):format(subject, status, math.floor(elapsed),
        err and (" -- poll failed: " .. tostring(err.kind)) or "")
      if tty then
        k = k % #spin + 1
        say("\r" .. spin[k] .. " " .. what .. "\27[K")
        ctx.progress_line = true
      elseif status ~= last then
        say(what .. "\n")
      end
      last = status
    end
  end
  return o
end

local function end_progress(ctx)
  if ctx.progress_line then say("\n") ctx.progress_line = false end
end

local function finished(ctx, run, err)
  end_progress(ctx)
  if not run then return api_failure(ctx, err) end
  local wf = require "intuned.workflow"
  if ctx.opts.json then out(json(plain(run))) else out(run_text(run)) end
  if wf.SUCCEEDED[run.status] then return EXIT_OK end
  say(("intuned: run %s finished %s\n"):format(str(run.id), str(run.status)))
  return EXIT_RUN_FAILED
end

H["jobs trigger"] = function(ctx)
  local job_id = ctx.args[1]
  if not ctx.opts.wait then
    for _, k in ipairs{ "timeout", "poll", "max-poll" } do
      if ctx.opts[k] then return usage_error("--" .. k .. " needs --wait", "jobs trigger") end
    end
    local t, err = ctx.client.jobs:trigger(ctx.project, job_id)
    if not t then return api_failure(ctx, err) end
    if ctx.opts.json then out(json(plain(t))) return EXIT_OK end
    out(("triggered %s: run %s\n"):format(job_id, str(t.jobRunId)))
    return EXIT_OK
  end
  local o, msg = wait_opts(ctx, job_id)
  if not o then return usage_error(msg, "jobs trigger") end
  local run, err = ctx.client.jobs:trigger(ctx.project, job_id, { wait = o })
  return finished(ctx, run, err)
end

H["runs list"] = function(ctx)
  local size, msg = number_opt(ctx.opts, "page-size", 1, true)
  if msg then return usage_error(msg, "runs list") end
  if size and size > 1000 then return usage_error("--page-size must be at most 1000", "runs list") end
  local it = ctx.client.jobs.runs:each(ctx.project, ctx.args[1], { page_size = size })
  local runs = {}
  for r in it do runs[#runs + 1] = r end
  local _, err = it()
  if err then return api_failure(ctx, err) end
  if ctx.opts.json then out(json_list(runs)) return EXIT_OK end
  out(run_rows(runs))
  return EXIT_OK
end

H["runs get"] = function(ctx)
  local d, err = ctx.client.jobs.runs:get(ctx.project, ctx.args[1], ctx.args[2])
  if not d then return api_failure(ctx, err) end
  if ctx.opts.json then out(json(plain(d))) return EXIT_OK end
  out(run_text(d.jobRun, d))
  return EXIT_OK
end

H["runs terminate"] = function(ctx)
  local t, err = ctx.client.jobs.runs:terminate(ctx.project, ctx.args[1], ctx.args[2])
  if not t then return api_failure(ctx, err) end
  if ctx.opts.json then out(json(plain(t))) return EXIT_OK end
  out(("terminated run %s of job %s\n"):format(ctx.args[2], ctx.args[1]))
  return EXIT_OK
end

H["runs wait"] = function(ctx)
  ctx.run_id = ctx.args[2]
  local o, msg = wait_opts(ctx, ctx.args[1])
  if not o then return usage_error(msg, "runs wait") end
  local run, err = ctx.client.jobs.runs:wait(ctx.project, ctx.args[1], ctx.args[2], o)
  return finished(ctx, run, err)
end

-- ------------------------------------------------ Run API, auth sessions

-- A table from a JSON file (.json) or a Lua file returning one; nil, msg.
local function load_table(path, what)
  local intuned = require "intuned"
  local v
  if path:lower():match("%.json$") then
    local text, err = read_file(path)
    if not text then return nil, "cannot read " .. path .. ": " .. tostring(err) end
    local derr
    v, derr = intuned.decode_json(text)
    if v == nil then return nil, path .. ": not JSON: " .. tostring(derr) end
  else
    local chunk, err = loadfile(path)
    if not chunk then return nil, "cannot load " .. path .. ": " .. tostring(err) end
    local ok, x = pcall(chunk)
    if not ok then return nil, path .. ": " .. tostring(x) end
    v = x
  end
  if type(v) ~= "table" then return nil, ("%s: expected %s (a table), got %s"):format(path, what, type(v)) end
  return v
end

-- The body of a start: --input FILE, with --parameters (JSON text or
-- @FILE) over its parameters; nil, msg.
local function start_body(ctx, what)
  local body = {}
  if ctx.opts.input then
    local v, msg = load_table(ctx.opts.input, what)
    if not v then return nil, msg end
    body = v
  end
  local p = ctx.opts.parameters
  if p then
    local text = p
    if p:sub(1, 1) == "@" then
      local t, err = read_file(p:sub(2))
      if not t then return nil, "cannot read " .. p:sub(2) .. ": " .. tostring(err) end
      text = t
    end
    local v = require("intuned").decode_json(text)
    if type(v) ~= "table" or (#v > 0) then return nil, "--parameters must be a JSON object" end
    body.parameters = v
  end
  return body
end

local function json_text(v)
  if v == nil then return "-" end
  if type(v) == "table" or type(v) == "userdata" then
    local ok, s = pcall(require("intuned.core").encode_json, v)
    if ok then return s end
  end
  return str(v)
end

-- error / reason of a run result or operation result, as lines
local function outcome_lines(add, r)
  local e = r.error
  if e ~= nil then
    add("error", ("%s%s%s"):format(str(e.code), e.category and (" (" .. str(e.category) .. ")") or "",
      e.message and (": " .. str(e.message)) or ""))
  end
  local why = r.reason
  if why ~= nil then add("reason", ("%s: %s"):format(str(why.type), str(why.message))) end
  if r.message ~= nil then add("message", r.message) end
end

local function run_result_text(r)
  local lines = {}
  local function add(k, v) lines[#lines + 1] = ("%-10s %s"):format(k .. ":", str(v)) end
  add("run", r.runId)
  add("status", r.status)
  outcome_lines(add, r)
  if r.status == "completed" or r.result ~= nil then add("result", json_text(r.result)) end
  local ext = r.extendedPayloads
  if ext ~= nil and #ext > 0 then
    local apis = {}
    for i, x in ipairs(ext) do apis[i] = str(x.api) end
    add("extended", table.concat(apis, ", "))
  end
  return table.concat(lines, "\n") .. "\n"
end

local function operation_text(kind, r)
  local lines = {}
  local function add(k, v) lines[#lines + 1] = ("%-10s %s"):format(k .. ":", str(v)) end
  add(kind, r.status)
  if r.authSessionId ~= nil then add("session", r.authSessionId) end
  if r.runId ~= nil then add("run", r.runId) end
  outcome_lines(add, r)
  return table.concat(lines, "\n") .. "\n"
end

-- The end of a result wait: print the result; exit 3 unless it succeeded.
local function result_finished(ctx, res, err, ok_status, text)
  end_progress(ctx)
  if not res then return api_failure(ctx, err) end
  if ctx.opts.json then out(json(plain(res))) else out(text(res)) end
  if res.status == ok_status then return EXIT_OK end
  say(("intuned: finished %s\n"):format(str(res.status)))
  return EXIT_RUN_FAILED
end

local function run_body(ctx, name)
  local body, msg = start_body(ctx, "a run (RunStartInput)")
  if not body then return nil, usage_error(msg, name) end
  if ctx.args[1] then body.api = ctx.args[1] end
  if body.api == nil then return nil, usage_error("no API: name it (API) or give it in --input", name) end
  if body.parameters == nil then body.parameters = {} end
  return body
end

local function no_wait_options(ctx, name)
  for _, k in ipairs{ "timeout", "poll", "max-poll", "quiet" } do
    if ctx.opts[k] then return usage_error("--" .. k .. " needs --wait", name) end
  end
end

H["runs start"] = function(ctx)
  local body, code = run_body(ctx, "runs start")
  if not body then return code end
  if not ctx.opts.wait then
    local bad = no_wait_options(ctx, "runs start")
    if bad then return bad end
    local started, err = ctx.client.runs:start(ctx.project, body)
    if not started then return api_failure(ctx, err) end
    if ctx.opts.json then out(json(plain(started))) return EXIT_OK end
    out(("started run %s (%s)\n"):format(str(started.runId), str(started.status)))
    return EXIT_OK
  end
  local o, msg = wait_opts(ctx, nil, function(r) return "run " .. str(r and r.runId) end)
  if not o then return usage_error(msg, "runs start") end
  local res, err = ctx.client.runs:start(ctx.project, body, { wait = o })
  return result_finished(ctx, res, err, "completed", run_result_text)
end

H["runs result"] = function(ctx)
  local r, err = ctx.client.runs:result(ctx.project, ctx.args[1])
  if not r then return api_failure(ctx, err) end
  if ctx.opts.json then out(json(plain(r))) return EXIT_OK end
  out(run_result_text(r))
  return EXIT_OK
end

H["runs run"] = function(ctx)
  local body, code = run_body(ctx, "runs run")
  if not body then return code end
  local o, msg = wait_opts(ctx, nil, function(r) return "run " .. str(r and r.runId) end)
  if not o then return usage_error(msg, "runs run") end
  local res, err = ctx.client.runs:run(ctx.project, body, o)
  return result_finished(ctx, res, err, "completed", run_result_text)
end

H["auth-sessions list"] = function(ctx)
  local list, err = ctx.client.auth_sessions:list(ctx.project)
  if not list then return api_failure(ctx, err) end
  if ctx.opts.json then out(json_list(list)) return EXIT_OK end
  local rows = {}
  for _, a in ipairs(list) do rows[#rows + 1] = { a.id, a.type, a.status } end
  out(table_text({ "ID", "TYPE", "STATUS" }, rows))
  return EXIT_OK
end

H["auth-sessions get"] = function(ctx)
  local a, err = ctx.client.auth_sessions:get(ctx.project, ctx.args[1])
  if not a then return api_failure(ctx, err) end
  if ctx.opts.json then out(json(plain(a))) return EXIT_OK end
  out(("%-10s %s\n%-10s %s\n%-10s %s\n"):format("id:", str(a.id), "type:", str(a.type), "status:", str(a.status)))
  return EXIT_OK
end

H["auth-sessions delete"] = function(ctx)
  for _, id in ipairs(ctx.args) do
    local ok, err = ctx.client.auth_sessions:delete(ctx.project, id)
    if not ok then return api_failure(ctx, err, "delete " .. id) end
    if not ctx.opts.json then out("deleted " .. id .. "\n") end
  end
  if ctx.opts.json then
    local arr = require("intuned.core").array()
    for i, id in ipairs(ctx.args) do arr[i] = id end
    out(json{ deleted = arr })
  end
  return EXIT_OK
end

-- create / update / validate: start, or start and wait.
local function operation(kind)
  local name = "auth-sessions " .. kind
  return function(ctx)
    local body, msg = start_body(ctx, "an auth-session " .. kind .. " input")
    if not body then return usage_error(msg, name) end
    if ctx.opts.id then body.id = ctx.opts.id end
    local id = ctx.args[1]
    local as = ctx.client.auth_sessions
    local function start(opts)
      if kind == "create" then return as:create(ctx.project, body, opts) end
      return as[kind](as, ctx.project, id, body, opts)
    end
    if not ctx.opts.wait then
      local bad = no_wait_options(ctx, name)
      if bad then return bad end
      local started, err = start()
      if not started then return api_failure(ctx, err) end
      if ctx.opts.json then out(json(plain(started))) return EXIT_OK end
      out(("started %s: operation %s (%s)\n"):format(kind, str(started.operationId), str(started.status)))
      return EXIT_OK
    end
    local o, werr = wait_opts(ctx, nil, function() return ("auth session %s"):format(kind) end)
    if not o then return usage_error(werr, name) end
    local res, err = start{ wait = o }
    return result_finished(ctx, res, err, "done", function(r) return operation_text(kind, r) end)
  end
end
H["auth-sessions create"] = operation("create")
H["auth-sessions update"] = operation("update")
H["auth-sessions validate"] = operation("validate")

H["schedule preview"] = function(ctx)
  local intuned = require "intuned"
  local count, msg = number_opt(ctx.opts, "count", 1, true)
  if msg then return usage_error(msg, "schedule preview") end
  count = math.min(count or 5, 1000)
  local from = ctx.opts.from
  if from and tonumber(from) then from = tonumber(from) end
  local list, lmsg = load_jobs(ctx.args[1])
  if not list then return usage_error(lmsg) end
  local report = intuned.array()
  local text = {}
  for i, j in ipairs(list) do
    local id = type(j) == "table" and j.id or ("jobs[" .. i .. "]")
    local sched = type(j) == "table" and j.schedule or nil
    local entry = { id = id }
    if sched == nil or sched == intuned.null then
      entry.description = "no schedule (runs only when triggered)"
      entry.next = intuned.array()
      text[#text + 1] = ("%s: %s\n"):format(id, entry.description)
    else
      local ok, d, warns = pcall(intuned.schedule.describe, sched)
      if not ok then return usage_error(("%s (%s): schedule: %s"):format(ctx.args[1], id, tostring(d))) end
      local ok2, dates = pcall(intuned.schedule.next_runs, sched, count, from)
      if not ok2 then return usage_error(("%s (%s): %s"):format(ctx.args[1], id, tostring(dates))) end
      entry.description, entry.next, entry.warnings = d, intuned.array(), intuned.array()
      for k, s in ipairs(dates or {}) do entry.next[k] = s end
      for k, w in ipairs(warns or {}) do entry.warnings[k] = w end
      text[#text + 1] = ("%s: %s\n"):format(id, d)
      for _, w in ipairs(warns or {}) do text[#text + 1] = "  warning: " .. w .. "\n" end
      for _, s in ipairs(dates or {}) do text[#text + 1] = "  " .. s .. "\n" end
      if #(dates or {}) == 0 then text[#text + 1] = "  (never fires)\n" end
    end
    report[#report + 1] = entry
  end
  if ctx.opts.json then out(json(report)) else out(table.concat(text)) end
  return EXIT_OK
end

-- A plan as plain JSON-able data (secret values as ***).
local function plan_data(p)
  local intuned = require "intuned"
  local function ids(list, key)
    local a = intuned.array()
    for i, x in ipairs(list) do a[i] = key and x[key] or x end
    return a
  end
  local upd = intuned.array()
  for i, u in ipairs(p.update) do
    local ch = intuned.array()
    for k, c in ipairs(u.changes) do
      ch[k] = { path = c.path, old = c.secret and c.old ~= nil and "***" or c.old,
                new = c.secret and c.new ~= nil and "***" or c.new }
    end
    upd[i] = { id = u.id, changes = ch }
  end
  return { project = p.project, prune = p.prune, create = ids(p.create, "id"), update = upd,
           delete = ids(p.delete, "id"), unchanged = ids(p.unchanged), unmanaged = ids(p.unmanaged),
           warnings = ids(p.warnings), changes = p.changes }
end

local function steps_data(list)
  local intuned = require "intuned"
  local a = intuned.array()
  for i, s in ipairs(list or {}) do a[i] = { action = s.action, id = s.id } end
  return a
end

-- The jobs of the file named by the first argument and their plan; or nil
-- and the exit code (usage for a bad file, API error for a failed plan).
local function file_plan(ctx)
  local plan = require "intuned.plan"
  local list, msg = load_jobs(ctx.args[1])
  if not list then return nil, usage_error(msg) end
  local p, err = plan.plan(ctx.client, ctx.project, list, { prune = ctx.opts.prune or false })
  if not p then return nil, api_failure(ctx, err) end
  return list, p
end

H["plan"] = function(ctx)
  local plan = require "intuned.plan"
  local list, p = file_plan(ctx)
  if not list then return p end
  if ctx.opts.json then out(json(plan_data(p))) else out(plan.plan_text(p)) end
  return EXIT_OK
end

H["apply"] = function(ctx)
  local plan = require "intuned.plan"
  local list, p = file_plan(ctx)
  if not list then return p end
  if not ctx.opts.json then out(plan.plan_text(p)) end
  local report, err, partial = plan.apply(ctx.client, ctx.project, list, { plan = p })
  local r = report or partial or { done = {}, not_done = {} }
  if ctx.opts.json then
    local data = { plan = plan_data(p), done = steps_data(r.done), not_done = steps_data(r.not_done),
                   changes = r.changes or 0 }
    if r.failed then data.failed = { action = r.failed.action, id = r.failed.id, error = tostring(r.failed.error) } end
    out(json(data))
  elseif p.changes > 0 or r.failed then
    out(plan.report_text(r))
  end
  if not report then
    say(("intuned: apply stopped: %s\n"):format(tostring(err)))
    return EXIT_API
  end
  return EXIT_OK
end

-- ------------------------------------------------------------ emulator

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function exit_code(a, b, c)
  if type(a) == "number" then -- Lua 5.1: the wait status
    if a >= 256 then return math.floor(a / 256) end
    return a
  end
  if b == "signal" then return 128 + (c or 0) end
  return c or (a and 0 or 1)
end

-- The emulator binary: $INTUNED_EMULATOR, else next to this program (the
-- rock installs both into one bin directory), else on PATH.
local function emulator_binary(argv0)
  local env = os.getenv("INTUNED_EMULATOR")
  if env and env ~= "" then return env end
  local dir = argv0 and argv0:match("^(.*)/[^/]*$")
  if dir then
    local p = dir .. "/intuned-emulator"
    local f = io.open(p, "rb")
    if f then f:close() return p end
  end
  return "intuned-emulator"
end

local function run_emulator(argv, first, argv0)
  local bin = emulator_binary(argv0)
  local parts = { "exec", sh_quote(bin) }
  for i = first, #argv do parts[#parts + 1] = sh_quote(argv[i]) end
  if argv[first] == "--help" or argv[first] == "-h" then
    out("Usage: intuned emulator [ARGS]: runs intuned-emulator ARGS (" .. bin .. "); its options:\n\n")
    io.stdout:flush()
  end
  local code = exit_code(os.execute(table.concat(parts, " ")))
  if code == 127 then
    say("intuned: cannot run the emulator '" .. bin .. "' (set INTUNED_EMULATOR or put intuned-emulator on PATH)\n")
    return EXIT_USAGE
  end
  return code
end

-- ------------------------------------------------------------ main

local function command_help(name)
  local c = COMMANDS[name]
  local s = "Usage: " .. c.usage .. "\n\n" .. c.about .. "\n"
  if c.extra then s = s .. "\nOptions:\n" .. c.extra end
  s = s .. "\nGlobal options: --project NAME (default $INTUNED_PROJECT), --json, --help.\n"
  return s
end

local function group_help(group)
  local lines = { "Usage: intuned " .. group .. " COMMAND", "", "Commands:" }
  for _, sub in ipairs(GROUPS[group]) do
    local c = COMMANDS[group .. " " .. sub]
    lines[#lines + 1] = "  " .. (c.usage:gsub("^intuned ", ""))
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run 'intuned " .. group .. " COMMAND --help' for one command."
  return (table.concat(lines, "\n"):gsub(" +\n", "\n")) .. "\n"
end

local function stderr_tty()
  local code = exit_code(os.execute("test -t 2"))
  return code == 0
end

--- Run the command line: parse `argv` (the words after the program name,
-- as in `arg`), do the command, write to stdout and stderr.
-- @tparam table argv the arguments (`arg`: argv[1] is the first word; arg[0]
-- is the program, used to find `intuned-emulator` beside it)
-- @treturn number the exit code (0 ok, 1 API error, 2 usage, 3 an awaited
-- run that did not succeed)
-- @usage os.exit(require("intuned.cli").main(arg))
function M.main(argv)
  argv = argv or {}
  -- `intuned emulator ARGS`: everything after it goes to the emulator as it is
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "emulator" then return run_emulator(argv, i + 1, argv[0]) end
    if a == "--project" then i = i + 1 elseif a:sub(1, 1) ~= "-" then break end
    i = i + 1
  end
  local parsed, perr = parse_args(argv)
  if not parsed then return usage_error(perr) end
  local words, opts = parsed.words, parsed.opts
  if opts.version then
    out("intuned (lua-intuned) " .. require("intuned.core")._VERSION .. "\n")
    return EXIT_OK
  end
  local w1, w2 = words[1], words[2]
  if not w1 then
    if opts.help then out(GLOBAL_HELP) return EXIT_OK end
    return usage_error("no command")
  end
  if w1 == "help" then out(GLOBAL_HELP) return EXIT_OK end
  local name, nargs
  if GROUPS[w1] then
    if not w2 then
      if opts.help then out(group_help(w1)) return EXIT_OK end
      return usage_error(("'%s' needs a command: %s"):format(w1, table.concat(GROUPS[w1], ", ")))
    end
    name, nargs = w1 .. " " .. w2, 3
    if not COMMANDS[name] then
      return usage_error(("unknown command '%s %s' (%s commands: %s)"):format(w1, w2, w1,
        table.concat(GROUPS[w1], ", ")))
    end
  elseif COMMANDS[w1] then
    name, nargs = w1, 2
  else
    return usage_error(("unknown command '%s'"):format(w1))
  end
  local cmd = COMMANDS[name]
  if opts.help then out(command_help(name)) return EXIT_OK end
  local allowed = cmd.options or {}
  for k in pairs(opts) do
    if k ~= "project" and k ~= "json" and not allowed[k] then
      return usage_error(("option --%s does not apply to '%s'"):format(k, name), name)
    end
  end
  local args = {}
  for k = nargs, #words do args[#args + 1] = words[k] end
  if #args < cmd.min or #args > cmd.max then
    return usage_error(("'%s' takes %s"):format(name, cmd.usage:gsub("^intuned ", "")), name)
  end
  local ctx = { opts = opts, args = args, stderr_tty = stderr_tty }
  if not cmd.no_project then
    local project = opts.project or os.getenv("INTUNED_PROJECT")
    if not project or project == "" then
      return usage_error("no project: pass --project NAME or set INTUNED_PROJECT", name)
    end
    ctx.project = project
    local client, cerr = make_client()
    if not client then return usage_error(cerr) end
    ctx.client = client
  end
  local ok, code = pcall(H[name], ctx)
  if ctx.client then ctx.client:close() end
  if not ok then
    end_progress(ctx)
    -- a raise here is misuse the checks above did not catch (a bad value
    -- in a job file, say): a usage error with the message
    say("intuned: " .. tostring(code):gsub("^[^:]*:%d+: ", "") .. "\n")
    return EXIT_USAGE
  end
  return code
end

return M
