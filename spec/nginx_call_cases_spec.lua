-- The call machine's table of scripted cases (tests/call_cases.h, the one
-- tests/test_call.c plays against the machine with a fake clock and
-- tests/test_transport.c through libcurl) replayed through the nginx
-- transport: intuned.ngx and intuned.http1 inside a real nginx, against a
-- scripted server on loopback (spec/helpers/scripted_server.py) that answers
-- each case's steps over real sockets.  The checks are those of the C
-- table's cc_check, but one: the C side also counts that create and trigger
-- went out on fresh connections, which the cosocket transport does not ask
-- for (it never re-sends a request by itself; see lua/intuned/http1.lua).
-- Times are wall-clock here, so upper bounds get a margin.
local intuned = require "intuned"
local nginx = require "spec.helpers.nginx"
local call_cases = require "spec.helpers.call_cases"

local sh_out, write, read = nginx.capture, nginx.write, nginx.read
local SLACK = 0.75 -- seconds added to a case's upper time bound (a loaded 2-core box)

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1
  return ok == true and how == "exit" and code == 0
end

local HTTP = [[
  server {
    listen {{LISTEN}};
    location = /eval {
      content_by_lua_block {
        ngx.req.read_body()
        local chunk = assert(loadstring(ngx.req.get_body_data(), "=eval"))
        local ok, res = pcall(chunk)
        ngx.header["Content-Type"] = "application/json"
        ngx.say(require("intuned").encode_json(ok and res or { raised = tostring(res) }))
      }
    }
  }
]]

-- Run inside nginx: every case in its own light thread, through
-- intuned.ngx.call with the options the C runners give the machine.
-- D (the cases and their data) comes in as JSON, in place of @DATA@.
local CHUNK = [[
  local intuned = require "intuned"
  local transport = require "intuned.ngx"
  local D = intuned.decode_json(@DATA@)
  local function leaks(s)
    if type(s) ~= "string" then return 0 end
    local n = 0
    for _, x in ipairs(D.secrets) do if s:find(x, 1, true) then n = n + 1 end end
    return n
  end
  local function headers_of(lines, into)
    for _, l in ipairs(lines) do
      local name, value = l:match("^([^:]+):%s*(.*)$")
      into[name] = value
    end
    return into
  end
  local function run(i, k)
    local o = { events = "", delays = {}, leaks = 0, nresp = 0 }
    local function record(ev)
      local c = ev.event == "request" and "q" or ev.event == "response" and "r" or "w"
      o.events = o.events .. c .. tostring(ev.attempt)
      o.leaks = o.leaks + leaks(ev.url) + leaks(ev.path) + leaks(ev.body)
      for _, v in pairs(ev.headers or {}) do o.leaks = o.leaks + leaks(v) end
      if ev.error then o.leaks = o.leaks + leaks(ev.error.message) + leaks(tostring(ev.error)) end
      if ev.event == "retry" then o.delays[#o.delays + 1] = ev.delay end
      local r = ev.response
      if r then
        for _, v in pairs(r.headers) do o.leaks = o.leaks + leaks(v) end
        o.leaks = o.leaks + leaks(r.body)
        if #r.body > 4096 then o.leaks = o.leaks + 1000 end
        o.nresp = o.nresp + 1
        if o.nresp == 1 then
          o.ev_status, o.ev_body_len = r.status, #r.body
          o.ev_has_header = k.ev_header ~= nil and r.headers[k.ev_header:lower()] ~= nil
        end
      end
    end
    local retry = { max_attempts = k.attempts or 4, initial_delay = 0.01, max_delay = 0.05, multiplier = 2,
                    jitter = 0.5 }
    if k.custom_delays then retry.initial_delay, retry.max_delay, retry.jitter = k.initial, k.maxd, k.jitter end
    if k.retry_off then retry.enabled = false end
    -- the client's headers, then the call's (a later one replaces an earlier one)
    local hdr = headers_of(D.client_headers, {})
    if k.call_headers then headers_of(D.call_headers, hdr) end
    local cfg = {
      api_key = D.key, workspace_id = "ws-1", user_agent = "lua-intuned/cases",
      server_url = (k.closed_port and D.closed or (D.base .. "/c/" .. i)) .. "/api/v1/workspace",
      timeout = (k.timeout_ms or 5000) / 1000, deadline = k.deadline_ms and math.abs(k.deadline_ms) / 1000 or false,
      retry = retry, headers = hdr, hook = record,
    }
    local args = { project = "p", job_id = k.job_id or "job-1", run_id = "r1" }
    if k.op == "jobs:create" then args.input = assert(intuned.JobInput.decode(D.inputs[(k.input or 0) + 1])) end
    ngx.update_time()
    local t0 = ngx.now()
    local res, err = transport.call(cfg, k.op, args)
    ngx.update_time()
    o.elapsed = ngx.now() - t0
    if res then
      o.ok = true
      o.id = res.id
      if not intuned.Job.is(res) then o.message = res.message end -- a Job has no message field
    else
      o.kind, o.status, o.message, o.attempts = err.kind, err.status, err.message, err.attempts
      o.retry_after = err.retry_after
      o.leaks = o.leaks + leaks(err.message) + leaks(tostring(err)) + leaks(err.path) + leaks(err.body)
        + leaks(err.details and intuned.encode_json(err.details)) + leaks(err.data and intuned.encode_json(err.data))
    end
    return o
  end
  local th, out = {}, {}
  for i, k in ipairs(D.cases) do th[i] = ngx.thread.spawn(run, i, k) end
  for i = 1, #th do
    local ok, r = ngx.thread.wait(th[i])
    out[i] = ok and r or { raised = tostring(r) }
  end
  return out
]]

-- A request's raw header lines carry `line` (a "Name: value" prefix, any case).
local function has_line(head, line)
  for l in (head .. "\r\n"):gmatch("(.-)\r\n") do
    if l:sub(1, #line):lower() == line:lower() then return true end
  end
  return false
end

describe("the call machine's cases through the nginx transport", function()
  local tmpdir, srv, sp, data
  local results = {}

  local function start_scripted(dir, cases_file)
    local port_file = dir .. "/scripted.port"
    local pid = sh_out(("env -u LD_PRELOAD python3 '%s/spec/helpers/scripted_server.py' --port-file '%s' --cases '%s' "
      .. "--lifetime 300 >'%s/scripted.log' 2>&1 & echo $!"):format(nginx.root(), port_file, cases_file, dir)):match("%d+")
    assert(pid, "scripted server: no pid")
    local port
    for _ = 1, 200 do
      port = tonumber((read(port_file) or ""):match("%d+"))
      if port then break end
      sh("sleep 0.05")
    end
    local s = { pid = pid, port = port, url = "http://127.0.0.1:" .. tostring(port) }
    function s.stop()
      sh("kill -TERM " .. pid .. " 2>/dev/null")
      for _ = 1, 100 do
        if not sh("kill -0 " .. pid .. " 2>/dev/null") then break end
        sh("sleep 0.05")
      end
      sh("kill -KILL " .. pid .. " 2>/dev/null")
    end
    if not port then
      s.stop()
      error("scripted server did not start: " .. tostring(read(dir .. "/scripted.log")))
    end
    return s
  end

  local function free_port()
    return tonumber(sh_out("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
      .. "print(s.getsockname()[1]); s.close()'"):match("%d+"))
  end

  setup(function()
    tmpdir = sh_out("mktemp -d /tmp/itd-nginx-cases.XXXXXX"):gsub("%s+$", "")
    data = call_cases.load(nginx.root())
    local scripts = {}
    for i, k in ipairs(data.cases) do scripts[i] = { script = k.script } end
    write(tmpdir .. "/cases.json", intuned.encode_json{ cases = scripts, job_fmt = data.job_fmt })
    sp = start_scripted(tmpdir, tmpdir .. "/cases.json")
    srv = nginx.start{ http = HTTP }
    -- every case at once, each in its own light thread
    local cases = {}
    for i, k in ipairs(data.cases) do
      cases[i] = { op = k.op, job_id = k.job_id, input = k.input, attempts = k.attempts, retry_off = k.retry_off,
                   custom_delays = k.custom_delays, initial = k.initial, maxd = k.maxd, jitter = k.jitter,
                   timeout_ms = k.timeout_ms, deadline_ms = k.deadline_ms, call_headers = k.call_headers,
                   closed_port = k.closed_port, ev_header = k.ev_header }
    end
    local D = intuned.encode_json{ cases = cases, secrets = data.secrets, key = data.key, inputs = data.inputs,
      client_headers = data.client_headers, call_headers = data.call_headers, base = sp.url,
      closed = "http://127.0.0.1:" .. free_port() }
    local f = tmpdir .. "/chunk.lua"
    write(f, (CHUNK:gsub("@DATA@", function() return ("%q"):format(D) end)))
    local out = sh_out(("curl -s --max-time 60 -X POST --data-binary @'%s' -w '\\n%%{http_code}' '%s/eval'")
      :format(f, srv.url))
    local text, status = out:match("^(.*)\n(%d+)$")
    assert(status == "200", out)
    results = assert(intuned.decode_json(text), text)
    assert(results.raised == nil, "raised in nginx: " .. tostring(results.raised))
  end)

  teardown(function()
    if srv then srv:stop() end
    if sp then sp.stop() end
    if tmpdir then sh("rm -rf '" .. tmpdir .. "'") end
  end)

  it("reads the whole table from tests/call_cases.h", function()
    assert.is_true(#data.cases >= 30, "cases read: " .. #data.cases)
    assert.equals(#data.cases, #results)
    for _, k in ipairs(data.cases) do
      assert.is_string(k.name)
      assert.is_string(k.op)
    end
  end)

  -- cc_check of tests/call_cases.h, over what nginx and the server saw.
  local function check(i)
    local k, o = data.cases[i], results[i]
    assert.is_nil(o.raised, o.raised)
    local log = intuned.decode_json((sh_out(("curl -s '%s/_log/%d'"):format(sp.url, i))))
    local why = ("%s: %s (%s): %s; attempts %s, requests %d, events %s"):format(k.name, tostring(o.kind),
      tostring(o.status), tostring(o.message), tostring(o.attempts), #log, o.events)
    if k.ok then
      assert.is_true(o.ok, why)
      if k.result_id then assert.equals(k.result_id, o.id, why) end
      if k.result_msg then assert.equals(k.result_msg, o.message, why) end
    else
      assert.is_nil(o.ok, why)
      assert.equals(k.kind, o.kind, why)
      if k.status then assert.equals(k.status, o.status, why) end
      if k.msg_has then assert.truthy(o.message:find(k.msg_has, 1, true), why) end
      if k.retry_after_min then
        assert.is_true(o.retry_after >= k.retry_after_min and o.retry_after <= 2147483647, why)
      end
      assert.equals(k.attempts_made or 0, o.attempts or 0, why)
    end
    assert.equals(k.requests or 0, #log, why)
    if k.last_method then assert.equals(k.last_method, log[#log].method, why) end
    for _, r in ipairs(log) do
      if k.req_header then assert.is_true(has_line(r.head, k.req_header), why .. ": no " .. k.req_header) end
      if k.no_req_header then assert.is_false(has_line(r.head, k.no_req_header), why) end
    end
    if k.min_s then assert.is_true(o.elapsed >= k.min_s - 0.005, why .. ": took " .. o.elapsed) end
    if k.max_s then assert.is_true(o.elapsed <= k.max_s + SLACK, why .. ": took " .. o.elapsed) end
    if k.events then assert.equals(k.events, o.events, why) end
    for j = 1, 3 do
      local hi = k.delay_hi and k.delay_hi[j]
      if hi and hi > 0 then
        local d = o.delays[j]
        assert.is_number(d, why)
        assert.is_true(d >= k.delay_lo[j] - 1e-9 and d <= hi + 1e-9, why .. ": delay " .. tostring(d))
      end
    end
    if k.ev_status then assert.equals(k.ev_status, o.ev_status, why) end
    if k.ev_body_len then assert.equals(k.ev_body_len, o.ev_body_len, why) end
    if k.ev_header then assert.is_true(o.ev_has_header, why .. ": no response header " .. k.ev_header) end
    assert.equals(0, o.leaks, why .. ": secrets seen")
  end

  -- one `it` per case, named as in the C table (the table is read when
  -- the file loads, so busted lists them)
  local ok_load, loaded = pcall(call_cases.load, nginx.root())
  assert(ok_load, loaded)
  for i, k in ipairs(loaded.cases) do
    it(k.name, function() check(i) end)
  end

  it("left nothing alarming in nginx's error log", function()
    local log = srv:log()
    assert.is_nil(log:find("[alert]", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
    for _, s in ipairs(data.secrets) do assert.is_nil(log:find(s, 1, true), s) end
  end)
end)
