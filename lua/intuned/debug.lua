--- Debug output: one line per request, response and retry of a call.
--
-- Turned on by the client option `debug` (true, or a function that takes
-- each line) or by `INTUNED_DEBUG=1` in the environment.  The lines are
-- made from the hook events, which the call machine has already redacted
-- (secret headers, bodies and errors scrubbed of every secret of the call),
-- so they are safe to log.  Outside nginx they go to stderr; inside nginx to
-- `ngx.log` at the NOTICE level (set `error_log ... notice;` to see them).
-- @module intuned.debug
local M = {}

--- Whether the environment asks for debug output (`INTUNED_DEBUG` set to
-- 1, true, yes or on).
-- @treturn boolean
function M.from_env()
  local v = os.getenv("INTUNED_DEBUG")
  v = v and v:lower()
  return v == "1" or v == "true" or v == "yes" or v == "on"
end

--- The one line for a hook event (without a newline).
-- @tparam table ev a hook event (see HookEvent in the reference)
-- @treturn string e.g. `intuned: response 200 GET /ws/projects/p/jobs/j in 12 ms (jobs:get, attempt 1)`
function M.line(ev)
  local what = ("(%s, attempt %s)"):format(tostring(ev.op or "?"), tostring(ev.attempt or "?"))
  local target = ("%s %s"):format(tostring(ev.method or "?"), tostring(ev.path or ev.url or "?"))
  if ev.event == "request" then
    return ("intuned: request %s %s"):format(target, what)
  elseif ev.event == "response" then
    local ms = math.floor((tonumber(ev.elapsed) or 0) * 1000 + 0.5)
    if ev.error and not ev.status then
      return ("intuned: response none %s after %d ms: %s %s"):format(target, ms, tostring(ev.error), what)
    end
    local tail = ev.error and (": " .. tostring(ev.error)) or ""
    return ("intuned: response %s %s in %d ms%s %s"):format(tostring(ev.status), target, ms, tail, what)
  elseif ev.event == "retry" then
    return ("intuned: retry %s in %.3f s after %s %s"):format(target, tonumber(ev.delay) or 0,
      tostring(ev.error or ev.status or "?"), what)
  end
  return ("intuned: %s %s %s"):format(tostring(ev.event), target, what)
end

-- Where lines go by default: ngx.log inside nginx, stderr elsewhere.
local function default_sink(line)
  local ngx = rawget(_G, "ngx")
  if ngx and type(ngx.log) == "function" and ngx.NOTICE then
    ngx.log(ngx.NOTICE, line)
  else
    io.stderr:write(line, "\n")
  end
end

--- The line printer for a `debug` option value: the function itself, or the
-- default sink for `true`.
-- @tparam boolean|function debug
-- @treturn function|nil function(line), nil when debug output is off
function M.printer(debug)
  if type(debug) == "function" then return debug end
  if debug then return default_sink end
  return nil
end

--- A hook that prints each event's line, then calls `hook` (if any).
-- @tparam function|nil hook the user's hook
-- @tparam function printer from @{printer}
-- @treturn function the hook to give the transports
function M.wrap(hook, printer)
  return function(ev)
    printer(M.line(ev))
    if hook then return hook(ev) end
  end
end

return M
