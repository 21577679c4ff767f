-- intuned.ngx: the transport used inside nginx (ngx_http_lua_module).
--
-- Why cosockets (ngx.socket.tcp) rather than subrequests
-- (ngx.location.capture + proxy_pass): cosockets need no extra location,
-- upstream or proxy settings in the user's nginx.conf, work in timers
-- (subrequests do not), and give this module the status, headers and exact
-- body bytes it needs; they still yield to nginx's event loop, so a slow
-- Intuned call never blocks other requests of the worker.
--
-- Two parts, and no rule of a call in either: intuned.http1 moves the bytes
-- of one exchange (connect, TLS, send, bounded reads within the time left),
-- and this file is the glue that drives the call machine of the C core
-- (core.call_machine, src/call.c) -- the same machine the libcurl transport
-- drives, which owns attempts, the overall deadline, backoff and
-- Retry-After, the create/trigger rules, the reconciliation of a 409, the
-- scrubbing of secrets and the hook events.  The machine never yields and
-- never does I/O; this file sends what it asks for, sleeps the waits it asks
-- for (ngx.sleep) and hands its events to the hook as the call goes.

--- The nginx transport: what @{intuned.client} uses inside nginx
-- (ngx_http_lua_module), an HTTP/1.1 client on cosockets that yields to
-- nginx's event loop, so a slow call never blocks the worker's other
-- requests. Programs do not call it: `client.jobs:...` and `client:batch`
-- pick it by themselves in the rewrite, access, content and timer phases
-- (in other phases a call returns an error of kind `usage`: call from
-- `ngx.timer.at(0, fn)`).
--
-- What to configure in nginx.conf: `lua_package_path` and
-- `lua_package_cpath` reaching the rock (installed for LuaJIT with
-- `--lua-version 5.1`); an `env` line for each variable the client reads
-- (`INTUNED_API_KEY`, `INTUNED_WORKSPACE_ID`, `INTUNED_SERVER_URL`: nginx
-- clears its workers' environment); `lua_ssl_trusted_certificate` (the CA
-- bundle; the client's `ca_file` does not apply here) and
-- `lua_ssl_verify_depth`; and a `resolver` (cosockets do not read
-- /etc/resolv.conf). examples/nginx/nginx.conf is a complete configuration.
--
-- Client options that apply here: `keepalive_timeout` (4 s), `pool_size`
-- (64 connections per worker and server) and `backlog` (4096), besides the
-- timeouts, deadline, retry, headers, user_agent, insecure and hook of
-- @{intuned.client}. Semantics match the libcurl transport: both drive the
-- same call machine of the C core (request building, response
-- classification, retries, deadline, reconciliation, secret scrubbing, hook
-- events); responses over libcurl's header limits or 32 MiB fail with an
-- error, never a raise.
-- @module intuned.ngx
local core = require "intuned.core"
local http1 = require "intuned.http1"
local ngx = ngx

local M = {}

-- The longest wait handed to ngx.sleep (seconds): the machine asks for far
-- less (it caps Retry-After), this only keeps a bad value from raising in
-- ngx.sleep or holding a request for days.
local MAX_SLEEP = 86400
-- Steps of one call at most: the machine makes at most 1000 attempts (and
-- as many reconciling), each a send and a wait.
local MAX_STEPS = 4100

local new_error = core.new_error

local function now()
  ngx.update_time()
  return ngx.now()
end

-- Hand the machine's queued events to the hook (when there is one), oldest
-- first; returns the error of the last "retry" event among them, or `last`.
local function deliver(m, hook, last)
  local evs = m:events()
  for i = 1, #evs do
    local ev = evs[i]
    if ev.event == "retry" then last = ev.error end
    if hook then hook(ev) end
  end
  return last
end

-- "Name: value" lines of a headers table (name -> value, or lines), after `into`.
local function header_lines(h, into)
  for k, v in pairs(h or {}) do
    into[#into + 1] = type(k) == "string" and (k .. ": " .. tostring(v)) or v
  end
  return into
end

-- The call's extra headers: the client's, then the call's (the machine
-- lets a later one replace an earlier one of the same name).
local function call_headers(cfg, co)
  if not (co and co.headers) then return cfg.headers end
  return header_lines(co.headers, header_lines(cfg.headers, {}))
end

-- The machine's policy of a call without options of its own, per client
-- (the client's normalized options do not change once made).
local policies = setmetatable({}, { __mode = "k" })

-- A per-call option, else the client's.
local function pick(cfg, co, k)
  if co and co[k] ~= nil then return co[k] end
  return cfg[k]
end

--- One operation, with retries. Internal (exported for intuned.client):
-- what a client method runs inside nginx.
-- @tparam table cfg the client's normalized options
-- @tparam string op an operation name (@{intuned.operations})
-- @tparam table args `project`, `job_id`, `run_id`, `input`, `update`, ...
-- @tparam[opt] table callopts the call's normalized options (`timeout`,
-- `deadline`, `retry`, `headers`, `hook`), over the client's
-- @return the result (as @{intuned.parse_response})
-- @return[2] nil
-- @treturn[2] intuned.Error
function M.call(cfg, op, args, callopts)
  local hook = pick(cfg, callopts, "hook") or nil -- false: none for this call
  local policy = callopts == nil and policies[cfg]
  if not policy then
    policy = {
      timeout = pick(cfg, callopts, "timeout"), deadline = pick(cfg, callopts, "deadline"),
      retry = pick(cfg, callopts, "retry"), headers = call_headers(cfg, callopts), quiet = not hook,
    }
    if callopts == nil then policies[cfg] = policy end
  end
  -- looked up at each call (not kept in a local), so a spec can wrap it
  local m, err = core.call_machine(cfg, op, args, policy, nil, now())
  if not m then return nil, err end
  local last_retry_err
  for _ = 1, MAX_STEPS do
    -- "send", request, timeout, fresh | "wait", delay | "done"
    -- the request as the bytes to write (src/http1.c), not a table to join
    local what, arg, timeout, fresh = m:next(now(), true)
    -- A hook that raises ends the call with that raise (as with libcurl);
    -- one that closes the client does not stop it (it holds cfg.hook).
    if hook then last_retry_err = deliver(m, hook, last_retry_err) end
    if what == "send" then
      local status, headers, body, bi, bj = http1.exchange(cfg, arg, timeout, fresh)
      if status then
        m:feed_response(now(), status, headers, body, bi, bj)
      else
        local f = headers
        m:feed_failure(now(), f.kind, f.message, f.sent, f.retryable, f.status, f.path)
      end
      if hook then last_retry_err = deliver(m, hook, last_retry_err) end
    elseif what == "wait" then
      -- ngx.sleep gets a finite number of seconds in [0, MAX_SLEEP] only;
      -- anything else ends the call with the error the machine would retry
      if type(arg) ~= "number" or not (arg >= 0 and arg <= MAX_SLEEP) then
        if not hook then last_retry_err = deliver(m, nil, last_retry_err) end
        err = last_retry_err or new_error("connection", "the call machine asked for a wait of " .. tostring(arg)
          .. " s: not retried")
        err.attempts = m:attempts()
        return nil, err
      end
      ngx.sleep(arg)
    else
      return m:result()
    end
  end
  return nil, new_error("connection", ("the call did not end within %d steps"):format(MAX_STEPS))
end

--- Many calls concurrently: at most max_in_flight light threads, each
-- taking the next call; results in order (result or error object).
-- calls[i] = { op, args, callopts } (callopts as for @{call}).
-- Internal (exported for intuned.client): what `client:batch` runs inside
-- nginx.
-- @tparam table cfg the client's normalized options
-- @tparam table calls `{ {op, args, callopts}, ... }`
-- @tparam number max_in_flight light threads at most
-- @treturn table one entry per call, in order: the result or an
-- @{intuned.Error}
function M.batch(cfg, calls, max_in_flight)
  local n = #calls
  local results = {}
  local next_i = 0
  local function worker()
    while true do
      next_i = next_i + 1
      local i = next_i
      if i > n then return end
      local c = calls[i]
      -- A call that raises (a bug, a hook that throws) becomes that call's
      -- error instead of taking every other call's result with it.
      local ok, res, err = pcall(M.call, cfg, c[1], c[2], c[3])
      if not ok then
        local what = "the call raised inside the nginx transport"
        local e = new_error("connection", what .. ": " .. tostring(res))
        -- The raise came from outside the machine (which scrubs what it
        -- makes), so what it says may quote a secret of the call: the
        -- core's scrubber takes them out, or the message is left out.
        local sok, secrets = pcall(core.call_secrets,
          { api_key = cfg.api_key, headers = call_headers(cfg, c[3]) }, c[1], c[2])
        if sok then sok, e = pcall(core.scrub, secrets, e) end
        if not (sok and e) then e = new_error("connection", what) end
        res = e
      elseif res == nil then
        res = err
      end
      results[i] = res
    end
  end
  local threads = {}
  for t = 1, math.min(max_in_flight, n) do
    threads[t] = ngx.thread.spawn(worker)
  end
  local failure
  for t = 1, #threads do
    local ok, e = ngx.thread.wait(threads[t])
    if not ok and not failure then failure = e end
  end
  if failure then error(failure, 0) end
  return results
end

M._parse_url = http1.parse_url -- for tests

return M
