-- The nginx transport (intuned.ngx) inside a real nginx against a hostile
-- HTTP server (spec/helpers/hostile_server.py): a header line of many MiB,
-- headers that never end, bytes trickled one at a time into the head, a
-- Content-Length body and a chunked body, a malformed chunk size, a
-- Retry-After of 60 digits.  Each call must return nil, err (never raise,
-- never hang past its timeout / deadline, never buffer without bound), and
-- one bad call in a batch must leave every other result in place.
local intuned = require "intuned"
local nginx = require "spec.helpers.nginx"

local sh_out, write, read = nginx.capture, nginx.write, nginx.read

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1
  return ok == true and how == "exit" and code == 0
end

-- The hostile server: a python3 process on a free loopback port.
local function start_hostile(dir)
  local port_file = dir .. "/hostile.port"
  local script = nginx.root() .. "/spec/helpers/hostile_server.py"
  local pid = sh_out(("env -u LD_PRELOAD python3 '%s' --port-file '%s' --lifetime 300 >'%s/hostile.log' 2>&1 & echo $!")
    :format(script, port_file, dir)):match("%d+")
  assert(pid, "hostile server: no pid")
  local port
  for _ = 1, 200 do
    port = tonumber((read(port_file) or ""):match("%d+"))
    if port then break end
    sh("sleep 0.05")
  end
  if not port then
    sh("kill -TERM " .. pid .. " 2>/dev/null")
    error("hostile server did not start: " .. tostring(read(dir .. "/hostile.log")))
  end
  local h = { pid = pid, port = port, url = "http://127.0.0.1:" .. port }
  function h.stop()
    if h.stopped then return end
    h.stopped = true
    sh("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not sh("kill -0 " .. pid .. " 2>/dev/null") then break end
      sh("sleep 0.05")
    end
    sh("kill -KILL " .. pid .. " 2>/dev/null")
  end
  return h
end

-- /eval runs the Lua chunk sent as the body in the content phase and answers
-- what it returns (or what it raised) as JSON.
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
    location / { return 200 "ok"; }
  }
]]

describe("the nginx transport against a hostile server", function()
  local tmpdir, hostile, srv
  local nbody = 0

  setup(function()
    tmpdir = sh_out("mktemp -d /tmp/itd-nginx-hostile.XXXXXX"):gsub("%s+$", "")
    hostile = start_hostile(tmpdir)
    srv = nginx.start{ http = HTTP }
  end)

  teardown(function()
    if srv then srv:stop() end
    if hostile then hostile.stop() end
    if tmpdir then sh("rm -rf '" .. tmpdir .. "'") end
  end)

  -- Common code of every chunk: `call(mode, opts)` runs jobs:list on a
  -- client whose server_url names the hostile mode, and returns a table of
  -- the outcome: ok (the result came back), err (kind, message, ...), t
  -- (seconds taken); `parallel(fns)` runs functions in light threads.
  local PRE = ([[
    local intuned = require "intuned"
    local H = %q
    local function client(url, o)
      local opts = { api_key = "hostile-key-1234", workspace_id = "ws", server_url = url,
                     retry = { initial_delay = 0.05, max_delay = 0.2 } }
      for k, v in pairs(o or {}) do opts[k] = v end
      return intuned.client(opts)
    end
    local function err_doc(e) return { kind = e.kind, message = e.message, text = tostring(e),
      attempts = e.attempts, status = e.status, is_error = intuned.is_error(e) } end
    local function call(mode, o)
      ngx.update_time()
      local t0 = ngx.now()
      local res, e = client(H .. "/" .. mode, o).jobs:list("p")
      ngx.update_time()
      return { ok = res ~= nil and not intuned.is_error(res), n = type(res) == "table" and #res or nil,
               err = e and err_doc(e), t = ngx.now() - t0 }
    end
    local function parallel(fns)
      local th, out = {}, {}
      for i, f in ipairs(fns) do th[i] = ngx.thread.spawn(f) end
      for i = 1, #th do
        local ok, r = ngx.thread.wait(th[i])
        out[i] = ok and r or { raised = tostring(r) }
      end
      return out
    end
  ]]):gsub("\n%s*", " ")

  local function run(code, max_time)
    nbody = nbody + 1
    local f = tmpdir .. "/body" .. nbody
    write(f, PRE:format(hostile.url) .. code)
    local out = sh_out(("curl -s --max-time %d -X POST --data-binary @'%s' -w '\\n%%{http_code}' '%s/eval'")
      :format(max_time or 40, f, srv.url))
    local text, status = out:match("^(.*)\n(%d+)$")
    assert.equals("200", status, out)
    local v = intuned.decode_json(text)
    assert(type(v) == "table", "not JSON: " .. tostring(text))
    assert(v.raised == nil, "raised in nginx: " .. tostring(v.raised))
    return v
  end

  describe("response head caps", function()
    it("a 48 MiB header line fails fast as a connection error; the worker's peak memory stays bounded", function()
      local r = run([[
        local function mem()
          local f = assert(io.open("/proc/self/status"))
          local s = f:read("*a")
          f:close()
          return tonumber(s:match("VmHWM:%s*(%d+)")), tonumber(s:match("VmRSS:%s*(%d+)"))
        end
        collectgarbage()
        local hwm0, rss0 = mem()
        local out = call("bighead/48", { retry = false, timeout = 20, deadline = 30 })
        local hwm1, rss1 = mem()
        out.hwm_kb, out.rss_kb = hwm1 - hwm0, rss1 - rss0
        return out
      ]])
      io.stderr:write(("\n[nginx hostile] 48 MiB header line: %.2f s, peak RSS +%d KiB\n"):format(r.t, r.hwm_kb))
      -- reading the whole line would take the 48 MiB line (and copies of it)
      assert.is_true(r.hwm_kb < 50 * 1024, ("peak RSS grew by %d KiB"):format(r.hwm_kb))
      assert.is_false(r.ok)
      assert.equals("connection", r.err.kind, r.err.text)
      assert.matches("response header line longer than 102400 bytes", r.err.message, 1, true)
      assert.is_true(r.t < 5, "took " .. r.t .. " s")
    end)

    it("headers adding up to 1 MiB (4 KiB lines) fail at the total cap", function()
      local r = run([[ return call("manyheads/1024", { retry = false, timeout = 10 }) ]])
      assert.is_false(r.ok)
      assert.equals("connection", r.err.kind)
      assert.matches("response headers larger than 307200 bytes", r.err.message, 1, true)
    end)

    it("a 150 KiB head written 7 bytes at a time arrives whole, in about the time it takes to send", function()
      -- reads bring a few hundred bytes each, the blank line that ends the
      -- head split across two of them at some point: the pieces are joined
      -- right, and the worker's CPU stays far below the wall time
      local r = run([[
        local c0 = os.clock()
        local out = call("crumbhead/150", { retry = false, timeout = 20 })
        out.cpu = os.clock() - c0
        return out
      ]])
      io.stderr:write(("\n[nginx hostile] 150 KiB head in 7-byte writes: %.2f s, worker CPU %.3f s\n")
        :format(r.t, r.cpu))
      assert.is_true(r.ok, r.err and r.err.text)
      assert.equals(0, r.n)
      assert.is_true(r.t < 10, "took " .. r.t .. " s")
      assert.is_true(r.cpu < 1, "the worker spent " .. r.cpu .. " s of CPU on it")
    end)

    it("a 90 KiB header line is still accepted (the cap is libcurl's 100 KiB)", function()
      local r = run([[ return call("longhead/90", { retry = false, timeout = 10 }) ]])
      assert.is_true(r.ok, r.err and r.err.text)
      assert.equals(0, r.n)
    end)
  end)

  describe("timeout and deadline bound a server that trickles bytes", function()
    -- The server sends one byte every 50 ms for 8 s: each receive() sees
    -- data well within its timeout, so only reading against the time left
    -- of the attempt stops it.
    local function trickle(mode)
      local r = run(([[
        local m = %q
        return parallel{
          function() return call(m, { timeout = 1, deadline = 2, retry = false }) end,
          function() return call(m, { timeout = 1, deadline = 2, retry = { max_attempts = 4, initial_delay = 0.05 } }) end,
          function() return call(m, { timeout = 1, deadline = false, retry = false }) end,
        }
      ]]):format(mode))
      local names = { "retry = false", "with retries", "deadline = false" }
      io.stderr:write(("\n[nginx hostile] %s, timeout 1 s: %.2f s, deadline 2 s with retries: %.2f s, "
        .. "no deadline: %.2f s\n"):format(mode, r[1].t or -1, r[2].t or -1, r[3].t or -1))
      for i, limit in ipairs{ 1, 2, 1 } do
        local o = r[i]
        assert.is_nil(o.raised, o.raised)
        assert.is_false(o.ok, names[i] .. ": the call succeeded after " .. tostring(o.t) .. " s")
        assert.equals("timeout", o.err.kind, names[i] .. ": " .. o.err.text)
        assert.is_true(o.t >= limit - 0.5, names[i] .. ": gave up early, " .. o.t .. " s")
        assert.is_true(o.t < limit + 1.2, names[i] .. ": took " .. o.t .. " s")
      end
      assert.is_true(r[2].err.attempts >= 2, r[2].err.text)
      assert.matches("deadline", r[2].err.message)
      return r
    end

    it("in the header", function() trickle("driphead/8") end)
    it("in a Content-Length body", function() trickle("dripbody/8") end)
    it("in a chunked body", function() trickle("dripchunk/8") end)

    it("a slow but timely body still arrives whole", function()
      local r = run([[
        return parallel{
          function() return call("dripbody/0.5", { timeout = 5, retry = false }) end,
          function() return call("dripchunk/0.5", { timeout = 5, retry = false }) end,
        }
      ]])
      for i = 1, 2 do
        assert.is_true(r[i].ok, r[i].err and r[i].err.text)
        assert.equals(0, r[i].n)
      end
    end)
  end)

  describe("returns nil, err instead of raising", function()
    it("a malformed chunk size is a connection error naming the chunk line", function()
      local r = run([[ return call("badchunk", { retry = false }) ]])
      assert.is_false(r.ok)
      assert.is_true(r.err.is_error)
      assert.equals("connection", r.err.kind)
      assert.matches('malformed chunk size line "zz"', r.err.message, 1, true)
    end)

    it("a 60-digit Retry-After on a 503 with deadline = false gives the 503 back", function()
      local r = run([[ return call("retryafter/60", { deadline = false, retry = { max_attempts = 2 } }) ]], 30)
      assert.is_false(r.ok)
      assert.equals("server", r.err.kind, r.err.text)
      assert.equals(503, r.err.status)
      assert.is_true(r.t < 10, "took " .. r.t .. " s")
    end)

    it("a retry delay that is not a sane number of seconds is not slept on", function()
      -- whatever the call machine asks for (it caps Retry-After itself),
      -- the transport never hands ngx.sleep NaN, inf, < 0 or years: a
      -- machine whose waits are `bad` ends the call with the error it would
      -- have retried (the hook's retry event carries it), or, with no hook
      -- (no events are made then), with an error saying so
      local r = run([[
        local core = require "intuned.core"
        local orig = core.call_machine
        local out = {}
        local bads = { 0 / 0, math.huge, -1, 1e59, "5", 0 / 0 }
        for i, bad in ipairs(bads) do
          core.call_machine = function(...)
            local m, e = orig(...)
            if not m then return m, e end
            return setmetatable({}, { __index = function(_, k)
              return function(_, ...)
                if k ~= "next" then return m[k](m, ...) end
                local what, a, b, c = m:next(...)
                if what == "wait" then a = bad end
                return what, a, b, c
              end
            end })
          end
          local o = { deadline = false }
          if i < #bads then o.hook = function() end end
          local ok, res = pcall(call, "retryafter/1", o)
          out[i] = ok and res or { raised = tostring(res) }
        end
        core.call_machine = orig
        return out
      ]], 30)
      for i = 1, 6 do
        assert.is_nil(r[i].raised, r[i].raised)
        assert.is_true(r[i].err.is_error, "case " .. i)
        if i < 6 then
          assert.same({ "server", 503, 1 }, { r[i].err.kind, r[i].err.status, r[i].err.attempts }, "case " .. i)
        else
          assert.equals("connection", r[i].err.kind)
          assert.matches("the call machine asked for a wait of .* s: not retried", r[i].err.message)
        end
        assert.is_true(r[i].t < 5, "case " .. i .. " took " .. r[i].t .. " s")
      end
    end)
  end)

  describe("batch", function()
    it("a call that used to raise leaves every other call's result in place", function()
      local r = run([[
        local c = client(H .. "/api/v1/workspace", { deadline = false, retry = { max_attempts = 2, initial_delay = 0.01 } })
        local calls = {}
        for i = 1, 8 do calls[i] = { op = "jobs:list", project = "ok" } end
        calls[3] = { op = "jobs:list", project = "badchunk" }
        calls[6] = { op = "jobs:list", project = "retryafter" }
        local res = c:batch(calls, { max_in_flight = 4 })
        local out = {}
        for i = 1, 8 do
          out[i] = intuned.is_error(res[i]) and err_doc(res[i]) or { list = #res[i] }
        end
        return { n = #res, items = out }
      ]], 30)
      assert.equals(8, r.n)
      r = r.items
      for i = 1, 8 do
        if i == 3 then
          assert.same({ "connection", true }, { r[i].kind, r[i].is_error })
          assert.matches("malformed chunk size", r[i].message, 1, true)
        elseif i == 6 then
          assert.same({ "server", 503 }, { r[i].kind, r[i].status })
        else
          assert.same({ list = 0 }, r[i], "call " .. i)
        end
      end
    end)

    it("a raise inside one call becomes that call's error (API key hidden), the others complete", function()
      local r = run([[
        -- the second call's machine raises when fed its response
        local core = require "intuned.core"
        local orig, n = core.call_machine, 0
        core.call_machine = function(...)
          local m, e = orig(...)
          n = n + 1
          if not m or n ~= 2 then return m, e end
          return setmetatable({}, { __index = function(_, k)
            return function(_, ...)
              if k == "feed_response" then error("boom with hostile-key-1234 inside") end
              return m[k](m, ...)
            end
          end })
        end
        local ok, res = pcall(function()
          return client(H .. "/api/v1/workspace", { retry = false }):batch({
            { op = "jobs:list", project = "ok" }, { op = "jobs:list", project = "ok" },
            { op = "jobs:list", project = "ok" } }, { max_in_flight = 1 })
        end)
        core.call_machine = orig
        if not ok then return { raised = tostring(res) } end
        local out = {}
        for i = 1, 3 do out[i] = intuned.is_error(res[i]) and err_doc(res[i]) or { list = #res[i] } end
        return out
      ]])
      assert.same({ list = 0 }, r[1])
      assert.same({ list = 0 }, r[3])
      assert.is_true(r[2].is_error)
      assert.equals("connection", r[2].kind)
      assert.matches("boom with *** inside", r[2].message, 1, true)
      assert.is_nil(r[2].text:find("hostile-key-1234", 1, true))
    end)
  end)

  it("left nothing alarming in nginx's error log", function()
    local log = srv:log()
    assert.is_nil(log:find("[alert]", 1, true), log)
    assert.is_nil(log:find("hostile-key-1234", 1, true))
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
