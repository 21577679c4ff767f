-- The fault storm's call mix, shared by spec/storm/storm.lua (plain Lua, the
-- libcurl transport) and the nginx worker it starts (the cosocket
-- transport), so both transports get the same calls and the same checks.
--
-- Every call is made under pcall and must end in a typed result or an error
-- object of a known kind within deadline + a margin; what each create and
-- trigger reported is kept per job id, and what the Run API starts
-- (runs:start) reported is counted, for storm.lua to compare with what the
-- emulator holds afterwards.
local intuned = require "intuned"

local M = {}

-- Error kinds a fault may legitimately end in (not_found: a get of a job
-- whose create failed; conflict: a create whose 409 could not be verified).
M.EXPECTED_KINDS = { rate_limited = true, server = true, connection = true, decode = true, timeout = true,
                     not_found = true, conflict = true }

-- Wall clock: ngx.now inside nginx, whole seconds elsewhere (enough to tell
-- a hang from a deadline).
local function clock()
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.now then ngx.update_time() return ngx.now() end
  return os.time()
end
M.clock = clock

--- VmRSS of this process in KiB (nil where /proc is missing).
function M.rss_kib(pid)
  local f = io.open("/proc/" .. (pid or "self") .. "/status", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- Park-Miller: exact in doubles, so the same on every Lua.
local function rng(seed)
  local x = seed % 2147483646 + 1
  return function()
    x = (x * 16807) % 2147483647
    return (x - 1) / 2147483646
  end
end

local function input(id)
  return { id = id, payload = { { apiName = "products/list", parameters = { page = 1 } } },
           configuration = { runMode = "Order-Irrelevant" } }
end

local State = {}
State.__index = State

--- opts: project, small (a project with a few jobs, for jobs:list), tag
-- (makes job ids unique per storm), seed, deadline (the client's, seconds),
-- batch_size, batch_every, max_in_flight.  st:client_opts() gives the hook
-- that counts attempts and retries: pass it to intuned.client.
function M.new(opts)
  local st = setmetatable({ o = opts, rand = rng(opts.seed or 1), jobs = {}, created = {}, ids = {},
                            seq = 0, since_batch = 0, starts = { calls = 0, ok = {} } }, State)
  st:reset()
  return st
end

function State:reset()
  self.c = { calls = 0, ok = 0, errors = 0, kinds = {}, ops = {}, raises = 0, untyped = 0, bad_results = 0,
             unexpected_kinds = 0, overruns = 0, max_elapsed = 0, max_batch_elapsed = 0, batches = 0, batch_calls = 0,
             attempts = 0, retries = 0, samples = {} }
end

function State:hook()
  return function(e)
    if e.event == "request" then self.c.attempts = self.c.attempts + 1
    elseif e.event == "retry" then self.c.retries = self.c.retries + 1 end
  end
end

-- A few messages of each defect, for the report.
function State:sample(what, msg)
  local s = self.c.samples
  s[what] = s[what] or {}
  if #s[what] < 5 then s[what][#s[what] + 1] = tostring(msg):sub(1, 300) end
end

local function pick(list, r)
  if #list == 0 then return nil end
  return list[math.floor(r * #list) + 1]
end

-- The steady mix (State:steady): the same operations on a fixed set of job
-- ids of another project, with nothing kept per call, so the Lua heap stays
-- flat and RSS measures the client alone.
local STEADY_IDS = 64
function State:next_steady_call()
  local r = self.rand()
  local P = self.o.project .. "-steady"
  local n = math.floor(self.rand() * STEADY_IDS)
  local id = ("st-%s-steady-%d"):format(self.o.tag, n)
  if r < 0.20 then return { op = "jobs:create", project = P, input = input(id), id = id } end
  -- triggers go to jobs whose runs are never listed: a list that grows
  -- would make the answers, and so the client's buffers, grow with it
  local tid = ("st-%s-steady-t%d"):format(self.o.tag, n)
  if r < 0.30 then return { op = "jobs:create", project = P, input = input(tid), id = tid } end
  if r < 0.45 then return { op = "jobs:trigger", project = P, job_id = tid } end
  if r < 0.70 then return { op = "jobs:get", project = P, job_id = id } end
  if r < 0.85 then return { op = "jobs.runs:list", project = P, job_id = id } end
  return { op = "jobs:list", project = self.o.small }
end

--- From now on, calls come from the steady mix and are counted, not kept.
function State:steady()
  self.is_steady = true
  self:reset()
end

-- The next call of the mix: { op = , project = , job_id = , run_id = , input = }.
function State:next_call()
  if self.is_steady then return self:next_steady_call() end
  local r = self.rand()
  local P = self.o.project
  local function fresh()
    self.seq = self.seq + 1
    local id = ("st-%s-%d"):format(self.o.tag, self.seq)
    self.ids[#self.ids + 1] = id
    self.jobs[id] = { create = "pending", triggers = 0, ok_runs = {} }
    return { op = "jobs:create", project = P, input = input(id), id = id }
  end
  if r < 0.20 or #self.created == 0 then return fresh() end
  local any = pick(self.ids, self.rand())
  local ok = pick(self.created, self.rand())
  if r < 0.45 then
    self.jobs[ok].triggers = self.jobs[ok].triggers + 1
    return { op = "jobs:trigger", project = P, job_id = ok }
  elseif r < 0.70 then
    return { op = "jobs:get", project = P, job_id = any }
  elseif r < 0.82 then
    return { op = "jobs.runs:list", project = P, job_id = any }
  elseif r < 0.92 then
    return { op = "jobs:list", project = self.o.small }
  elseif r < 0.96 then
    -- a Run API start: not idempotent, so never retried once it may have
    -- reached the server (storm.lua: no start made two runs)
    self.starts.calls = self.starts.calls + 1
    return { op = "runs:start", project = P, input = { api = "products/list", parameters = { n = self.starts.calls } } }
  end
  local runs = self.jobs[ok].ok_runs
  if #runs == 0 then return { op = "jobs:get", project = P, job_id = ok } end
  return { op = "jobs.runs:get", project = P, job_id = ok, run_id = pick(runs, self.rand()) }
end

-- Is `res` the typed result `call` asked for?
local function well_typed(call, res)
  local op = call.op
  if op == "jobs:create" then return intuned.CreateJob.is(res) and res.id == call.id end
  if op == "jobs:trigger" then
    return intuned.TriggerJob.is(res) and type(res.jobRunId) == "string" and res.jobRunId ~= ""
  end
  if op == "jobs:get" then return intuned.Job.is(res) and res.id == call.job_id end
  if op == "jobs.runs:get" then return intuned.JobRunDetail.is(res) end
  if op == "runs:start" then return intuned.RunStarted.is(res) and type(res.runId) == "string" and res.runId ~= "" end
  return type(res) == "table" -- the lists: arrays of typed objects
end

-- Book one finished call: res (result or error object), or raised = message.
function State:book(call, res, raised, elapsed)
  local c = self.c
  c.calls = c.calls + 1
  local o = c.ops[call.op] or { ok = 0, err = 0 }
  c.ops[call.op] = o
  if elapsed > c.max_elapsed then c.max_elapsed = elapsed end
  if elapsed > (self.o.deadline or 5) + 2 then
    c.overruns = c.overruns + 1
    self:sample("overrun", call.op .. " took " .. elapsed .. " s")
  end
  -- the steady mix keeps nothing per job (a stand-in absorbs the bookkeeping)
  local job = self.is_steady and {} or self.jobs[call.id or call.job_id]
  if raised then
    c.raises = c.raises + 1
    self:sample("raise", call.op .. ": " .. raised)
    if call.op == "jobs:create" then job.create = "raised" end
    return
  end
  if intuned.is_error(res) then
    c.errors = c.errors + 1
    o.err = o.err + 1
    local k = tostring(res.kind)
    c.kinds[k] = (c.kinds[k] or 0) + 1
    if not M.EXPECTED_KINDS[k] then
      c.unexpected_kinds = c.unexpected_kinds + 1
      self:sample("unexpected_kind", call.op .. ": " .. tostring(res))
    end
    if call.op == "jobs:create" then job.create = k end
    return
  end
  if res == nil or not well_typed(call, res) then
    if res == nil then c.untyped = c.untyped + 1 else c.bad_results = c.bad_results + 1 end
    self:sample(res == nil and "untyped" or "bad_result", call.op .. ": " .. tostring(res))
    if call.op == "jobs:create" then job.create = "bad" end
    return
  end
  c.ok = c.ok + 1
  o.ok = o.ok + 1
  if self.is_steady then return end
  if call.op == "jobs:create" then
    job.create = "ok"
    self.created[#self.created + 1] = call.id
  elseif call.op == "jobs:trigger" then
    job.ok_runs[#job.ok_runs + 1] = res.jobRunId
  elseif call.op == "runs:start" then
    self.starts.ok[#self.starts.ok + 1] = res.runId
  end
end

local function call_one(client, call)
  local j = client.jobs
  local op = call.op
  if op == "jobs:create" then return j:create(call.project, call.input) end
  if op == "jobs:trigger" then return j:trigger(call.project, call.job_id) end
  if op == "jobs:get" then return j:get(call.project, call.job_id) end
  if op == "jobs.runs:list" then return j.runs:list(call.project, call.job_id) end
  if op == "jobs:list" then return j:list(call.project) end
  if op == "runs:start" then return client.runs:start(call.project, call.input) end
  return j.runs:get(call.project, call.job_id, call.run_id)
end

--- Make n calls (batch calls count one each) through `client`.
function State:run(client, n)
  local o = self.o
  local bsize, every = o.batch_size or 50, o.batch_every or 200
  local done = 0
  while done < n do
    if self.since_batch >= every and n - done >= bsize then
      self.since_batch = 0
      local calls, wire = {}, {}
      for i = 1, bsize do
        local c = self:next_call()
        calls[i] = c
        -- the batch entry without the driver's own bookkeeping (id): batch
        -- refuses fields it does not know
        wire[i] = { op = c.op, project = c.project, job_id = c.job_id, run_id = c.run_id, input = c.input }
      end
      local t0 = clock()
      local ok, out = pcall(client.batch, client, wire, { max_in_flight = o.max_in_flight or 16 })
      local el = clock() - t0
      local c = self.c
      c.batches = c.batches + 1
      c.batch_calls = c.batch_calls + bsize
      if el > c.max_batch_elapsed then c.max_batch_elapsed = el end
      -- a batch is bounded by its calls' deadlines, max_in_flight at a time
      local rounds = math.ceil(bsize / (o.max_in_flight or 16))
      if el > rounds * (o.deadline or 5) + 2 then
        c.overruns = c.overruns + 1
        self:sample("overrun", ("batch of %d took %s s"):format(bsize, el))
      end
      for i = 1, bsize do
        if not ok then
          self:book(calls[i], nil, "batch raised: " .. tostring(out), 0)
        else
          self:book(calls[i], out[i], nil, 0)
        end
      end
      if ok and #out ~= bsize then
        self.c.untyped = self.c.untyped + 1
        self:sample("untyped", ("batch of %d answered %d entries"):format(bsize, #out))
      end
      done = done + bsize
    else
      local call = self:next_call()
      local t0 = clock()
      local ok, res, err = pcall(call_one, client, call)
      local el = clock() - t0
      if not ok then self:book(call, nil, tostring(res), el)
      else
        if res == nil then res = err end
        self:book(call, res, nil, el)
      end
      done = done + 1
      self.since_batch = self.since_batch + 1
    end
  end
end

--- What storm.lua compares with the emulator: per job id the create's
-- outcome, the number of trigger calls and the run ids of successful ones
-- (comma-joined: plain strings travel as JSON from nginx unambiguously);
-- the Run API starts made and the run ids of successful ones.
function State:report()
  local jobs = {}
  for id, j in pairs(self.jobs) do
    jobs[id] = { create = j.create, triggers = j.triggers, ok_runs = table.concat(j.ok_runs, ",") }
  end
  return { counts = self.c, jobs = jobs,
           starts = { calls = self.starts.calls, ok_runs = table.concat(self.starts.ok, ",") } }
end

-- ------------------------------------------------------------ inside nginx

local ngx_state -- the worker's storm (one worker: every request sees it)

--- The nginx side: GET /storm?cmd=init|run|report|rss&n=...  (see storm.lua).
function M.serve(args)
  local cmd = args.cmd
  if cmd == "init" then
    ngx_state = M.new{ project = args.project, small = args.small, tag = args.tag, seed = tonumber(args.seed),
                       deadline = tonumber(args.deadline) }
    ngx_state.client = intuned.client{ api_key = args.key, workspace_id = args.ws, server_url = args.url,
      timeout = tonumber(args.timeout), deadline = tonumber(args.deadline), connect_timeout = 1,
      retry = { max_attempts = 4, initial_delay = 0.001, max_delay = 0.01 }, hook = ngx_state:hook() }
    return { ok = true }
  end
  local st = assert(ngx_state, "storm: cmd=init first")
  if cmd == "run" then
    st:run(st.client, tonumber(args.n))
    return { calls = st.c.calls }
  elseif cmd == "reset" then
    st:reset()
    return { ok = true }
  elseif cmd == "steady" then
    st:steady()
    return { ok = true }
  elseif cmd == "rss" then
    collectgarbage("collect")
    collectgarbage("collect")
    return { rss = M.rss_kib(), heap = math.floor(collectgarbage("count")), pid = rawget(_G, "ngx").worker.pid() }
  elseif cmd == "report" then
    return st:report()
  end
  error("storm: unknown cmd " .. tostring(cmd))
end

return M
