-- spec/helpers/emulator.lua: start and stop intuned-emulator for specs, and
-- talk HTTP to it with the curl command line.  Plain Lua (5.1 to 5.4, LuaJIT):
-- io.popen and os.execute only.
--
--   local emulator = require "spec.helpers.emulator"
--   local emu = emulator.start{ "--time-scale", "0.001" }   -- extra CLI args
--   emu.url     -- "http://127.0.0.1:PORT/api/v1/workspace" (the API base)
--   emu.base    -- "http://127.0.0.1:PORT" (control endpoints, receiver)
--   emu.port, emu.pid, emu.stderr (path of its stderr log)
--   emu.api(method, "/ws-local/projects/p/jobs", {body = "...", key = "test-key"})
--   emu.stop()  -- SIGTERM, waits; emu.kill() sends SIGKILL
--   emulator.stop_all()  -- in teardown: stops whatever is still running
--   emu.run_view(run_id)  -- the emulator's own view of a run (GET /_emulator/runs/ID)
--   emu.api_version  -- "v0.3.12" or "newest": the API version it answers
--   emu.call(method, path, tbl)  -- emu.api with a JSON body; res.json decoded
--   emu.poll(path, pred)  -- GET until pred(decoded body); the answer and statuses seen
--   emu.api_run_view(run_id)  -- the emulator's view of a Run API run
--
-- The API version: --api-version from the args, else $INTUNED_TEST_API_VERSION,
-- else v0.3.12 (the mode matrix of tools/test.sh runs some specs with newest;
-- a spec that relies on one version's shapes passes --api-version itself).
--
-- The binary: $INTUNED_EMULATOR, else the first existing of
-- build/src/emulator/intuned-emulator, build/plain/src/emulator/intuned-emulator,
-- then `intuned-emulator` on PATH.
local M = {}

-- Child processes run without LD_PRELOAD: a sanitizer run preloads libasan
-- into Lua, and curl, sleep, ... (or a plain emulator) should not inherit it.
M.curl = "curl"
local function clean(cmd) return "unset LD_PRELOAD; " .. cmd end

-- os.execute without LD_PRELOAD.
function M.run(cmd)
  return os.execute(clean(cmd))
end

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = sh_quote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
M.write_file = write_file

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Run a shell command, return its stdout (trailing newline removed).
local function capture(cmd)
  local p = assert(io.popen(clean(cmd), "r"))
  local out = p:read("*a")
  p:close()
  return (out:gsub("\n$", ""))
end
M.capture = capture

function M.sleep(seconds)
  M.run("sleep " .. tostring(seconds))
end

--- Poll fn() every `step` seconds (0.05) until it returns a truthy value or
-- `seconds` (10) have passed; gives fn()'s last value.
function M.eventually(fn, seconds, step)
  local v
  step = step or 0.05
  for _ = 1, math.floor((seconds or 10) / step) do
    v = fn()
    if v then return v end
    M.sleep(step)
  end
  return v
end

function M.binary()
  local env = os.getenv("INTUNED_EMULATOR")
  if env and env ~= "" then return env end
  for _, p in ipairs{ "build/src/emulator/intuned-emulator", "build/plain/src/emulator/intuned-emulator" } do
    if exists(p) then return p end
  end
  local found = capture("command -v intuned-emulator 2>/dev/null")
  if found ~= "" then return found end
  error("intuned-emulator not found: set INTUNED_EMULATOR or build it (cmake -S . -B build && cmake --build build)")
end

-- Fresh temporary path (a file name; the caller creates what it needs).
function M.tmpname()
  return os.tmpname()
end

function M.tmpdir()
  return capture("mktemp -d")
end

-- A zombie (exited, not yet reaped: the emulator is started in the
-- background, so init reaps it, sometimes a second late) counts as gone.
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then return not stat:match("^%d+ %b() Z") end
  return capture("kill -0 " .. pid .. " 2>/dev/null && echo yes") == "yes"
end

-- HTTP with the curl command line.  opts: method, headers (table name ->
-- value), body (string; written to a temp file), timeout (seconds).
-- Returns {status = number (0 when no answer), body = string, headers =
-- {lower-case name -> value}, curl_exit = number, time = seconds}.
function M.http(method, url, opts)
  opts = opts or {}
  local bodyf, headf = os.tmpname(), os.tmpname()
  local args = { M.curl .. " -s -o", sh_quote(bodyf), "-D", sh_quote(headf), "-X", sh_quote(method),
                 "-w", sh_quote("%{http_code} %{time_total}"), "--max-time", tostring(opts.timeout or 20) }
  for name, value in pairs(opts.headers or {}) do
    args[#args + 1] = "-H " .. sh_quote(name .. ": " .. value)
  end
  local reqf
  if opts.body then
    reqf = os.tmpname()
    write_file(reqf, opts.body)
    args[#args + 1] = "--data-binary @" .. sh_quote(reqf)
    if not (opts.headers and (opts.headers["Content-Type"] or opts.headers["content-type"])) then
      args[#args + 1] = "-H 'Content-Type: application/json'"
    end
  end
  args[#args + 1] = sh_quote(url)
  local out = capture(table.concat(args, " ") .. "; echo \" $?\"")
  local code, t, exit = out:match("^(%d+) ([%d%.]+)%s+(%d+)$")
  local res = { status = tonumber(code) or 0, time = tonumber(t) or 0, curl_exit = tonumber(exit) or -1,
                body = read_file(bodyf) or "", headers = {} }
  for line in (read_file(headf) or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then res.headers[k:lower()] = v end
  end
  os.remove(bodyf)
  os.remove(headf)
  if reqf then os.remove(reqf) end
  return res
end

local version_names = { ["v0.3.12"] = "v0.3.12", ["0.3.12"] = "v0.3.12", newest = "newest", ["v0.5.2"] = "newest" }

-- This module with start() pinned to an API version, for a spec file that
-- relies on one version's shapes whatever $INTUNED_TEST_API_VERSION says:
--   local emulator = require("spec.helpers.emulator").pinned("v0.3.12")
-- (a table of its own: nothing changes for other spec files; args that
-- carry --api-version still win).
function M.pinned(version)
  assert(version_names[version], "pinned: v0.3.12 or newest")
  local p = setmetatable({}, { __index = M })
  function p.start(args)
    local a = { "--api-version", version }
    for _, x in ipairs(args or {}) do a[#a + 1] = x end
    return M.start(a)
  end
  return p
end

local running = {}   -- started and not yet stopped, for stop_all

-- Stop every emulator this module started that is still running (for a
-- spec's teardown, so a failed test leaves no process behind).
function M.stop_all()
  for emu in pairs(running) do emu.stop() end
end

-- The API version specs run against by default: "v0.3.12" or "newest".
function M.api_version()
  local env = os.getenv("INTUNED_TEST_API_VERSION")
  if env == nil or env == "" then return "v0.3.12" end
  return assert(version_names[env], "INTUNED_TEST_API_VERSION: v0.3.12 or newest, got " .. env)
end

-- Start an emulator; `args` is a list of extra command-line arguments.
-- --port 0 is added unless args carry --port, --api-version (M.api_version())
-- unless they carry it.
function M.start(args)
  args = args or {}
  local bin = M.binary()
  local cmd = { sh_quote(bin) }
  local has_port, version = false, nil
  for i, a in ipairs(args) do
    if a == "--port" then has_port = true end
    if a == "--api-version" then version = version_names[args[i + 1]] or args[i + 1] end
    cmd[#cmd + 1] = sh_quote(a)
  end
  if not has_port then cmd[#cmd + 1] = "--port 0" end
  if not version then
    version = M.api_version()
    cmd[#cmd + 1] = "--api-version " .. sh_quote(version)
  end
  local out, err = os.tmpname(), os.tmpname()
  local pid = capture(table.concat(cmd, " ") .. " >" .. sh_quote(out) .. " 2>" .. sh_quote(err) .. " & echo $!")
  local line
  for _ = 1, 250 do
    local s = read_file(out) or ""
    line = s:match("^([^\n]*)\n")
    if line or not alive(pid) then break end
    M.sleep(0.02)
  end
  if not line or not line:match("^listening ") then
    M.run("kill -9 " .. pid .. " 2>/dev/null")
    error("intuned-emulator did not start: " .. tostring(line) .. " " .. (read_file(err) or ""))
  end
  local url = line:match("^listening (%S+)$")
  local base, port = url:match("^(http://[^/]+:(%d+))")
  local emu = { url = url, base = base, port = tonumber(port), pid = pid, stdout = out, stderr = err,
                key = "test-key", api_version = version, newest = version == "newest" }
  for i, a in ipairs(args) do
    if a == "--api-key" then emu.key = args[i + 1] end
  end

  -- Wait for the process to end (up to `seconds`); true when it did.
  local function wait_gone(seconds)
    for _ = 1, math.floor(seconds / 0.02) do
      if not alive(pid) then return true end
      M.sleep(0.02)
    end
    return not alive(pid)
  end

  function emu.stop()
    if emu.stopped then return end
    emu.stopped = true
    running[emu] = nil
    M.run("kill -TERM " .. pid .. " 2>/dev/null")
    if not wait_gone(10) then M.run("kill -9 " .. pid .. " 2>/dev/null") wait_gone(2) end
    os.remove(out)
    -- a sanitizer build reports at exit: make that a failure of the spec
    local log = read_file(err) or ""
    os.remove(err)
    if log:find("Sanitizer", 1, true) or log:find("runtime error:", 1, true) then
      error("intuned-emulator reported:\n" .. log:sub(1, 4000))
    end
  end

  function emu.kill()
    emu.stopped = true
    running[emu] = nil
    M.run("kill -9 " .. pid .. " 2>/dev/null")
    wait_gone(5)
    os.remove(out)
  end

  -- An API call: path below the API base; opts.key overrides the API key
  -- (false sends none); other opts as M.http.
  function emu.api(method, path, opts)
    opts = opts or {}
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k] = v end
    local key = opts.key
    if key == nil then key = emu.key end
    if key then headers["x-api-key"] = key end
    return M.http(method, emu.url .. path, { headers = headers, body = opts.body, timeout = opts.timeout })
  end

  -- Control endpoints and the receiver (no key).
  function emu.control(method, path, body)
    return M.http(method, emu.base .. path, { body = body })
  end

  -- GET /_emulator/stats, decoded.
  function emu.stats()
    local res = emu.control("GET", "/_emulator/stats")
    assert(res.status == 200, "stats: HTTP " .. res.status)
    return require("cjson").decode(res.body)
  end

  -- Jobs API requests served so far (the control and receiver endpoints,
  -- which specs call themselves, left out).
  function emu.api_requests()
    local n = 0
    for route, c in pairs(emu.stats().by_route) do
      if not route:find("control", 1, true) and not route:find("receiver", 1, true) then n = n + c end
    end
    return n
  end

  -- The emulator's own view of a run, decoded: {id, job_id, status,
  -- maxConcurrentRequests, max_in_flight, attempts, end_time, deliveries =
  -- {delivered, failed, skipped, attempts}, payloads = {{apiName, state,
  -- attempts, delivery, delivery_error?}, ...}}.  `run` is a run id or a run
  -- (a table or object with an id).
  function emu.run_view(run)
    local id = type(run) == "string" and run or run.id
    local res = emu.control("GET", "/_emulator/runs/" .. id:gsub("[^%w%-_.~]", function(c)
      return string.format("%%%02X", c:byte())
    end))
    assert(res.status == 200, "run view of " .. id .. ": HTTP " .. res.status .. " " .. res.body)
    return require("cjson").decode(res.body)
  end

  -- An API call with a Lua table body (JSON-encoded; a string is sent as
  -- is): the answer of emu.api with `json`, the body decoded (nil when it
  -- is not JSON).
  function emu.call(method, path, body, opts)
    local cjson = require("cjson")
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    if body ~= nil then o.body = type(body) == "string" and body or cjson.encode(body) end
    local res = emu.api(method, path, o)
    local ok, v = pcall(cjson.decode, res.body)
    res.json = ok and v or nil
    return res
  end

  -- Poll GET `path` (below the API base) until pred(decoded body) is true,
  -- up to `seconds` (default 10); returns the last answer (emu.call's form)
  -- and the statuses seen, in order, without repeats.
  function emu.poll(path, pred, seconds)
    local seen, res = {}, nil
    for _ = 1, math.floor((seconds or 10) / 0.03) do
      res = emu.call("GET", path)
      local st = res.json and res.json.status
      if st and seen[#seen] ~= st then seen[#seen + 1] = st end
      if res.json and pred(res.json) then break end
      M.sleep(0.03)
    end
    return res, seen
  end

  -- The emulator's own view of a Run API run (GET /_emulator/api-runs/ID),
  -- decoded: {id, project, status, attempts, deliveries = {...}, sink_result?}.
  function emu.api_run_view(id)
    local res = emu.control("GET", "/_emulator/api-runs/" .. id)
    assert(res.status == 200, "api-run view of " .. id .. ": HTTP " .. res.status .. " " .. res.body)
    return require("cjson").decode(res.body)
  end

  -- Add a fault rule (a table or JSON text) and check it was taken.
  function emu.fault(spec)
    local body = type(spec) == "string" and spec or require("cjson").encode(spec)
    local res = emu.control("POST", "/_emulator/faults", body)
    assert(res.status == 200 or res.status == 201 or res.status == 204, "fault not accepted: HTTP " .. res.status)
  end

  running[emu] = true
  return emu
end

return M
