-- intuned.webhook from plain Lua: token check (constant time), decoding and
-- validation into a JobSinkResultPayload, duplicate detection with the
-- default bounded store or a custom one, answers for any HTTP server, no
-- secret in errors or tostring, and examples/webhook_server.lua behind a pipe.
local intuned = require "intuned"
local webhook = require "intuned.webhook"
local util = require "spec.helpers.util"
local emulator = require "spec.helpers.emulator"

local TOKEN = "tok-3f9a1c77e2b04d5e"
local AUTH = { Authorization = "Bearer " .. TOKEN }

local COMPLETED = util.example("sink-result-completed.json")
local FAILED = util.example("sink-result-failed.json")

-- A result document (a table) with the given ids.
local function result(run_id, api_run_id, base)
  local doc = intuned.decode_json(base or COMPLETED)
  if run_id == false then doc.projectJobRun = nil elseif run_id then doc.projectJobRun.id = run_id end
  if api_run_id then doc.apiInfo.runId = api_run_id end
  return intuned.encode_json(doc)
end

local function new(opts)
  local o = { token = TOKEN }
  for k, v in pairs(opts or {}) do o[k] = v end
  return webhook.new(o)
end

-- Every text an error offers.
local function texts(err)
  return table.concat({ tostring(err), tostring(err.message), tostring(err.text), tostring(err.path),
                        intuned.encode_json(err.details or {}), tostring(err.body) }, "\n")
end

describe("intuned.webhook", function()
  it("is intuned.webhook", function()
    assert.equals(webhook, intuned.webhook)
    assert.is_function(intuned.webhook.new)
  end)

  describe("a good delivery", function()
    it("decodes and validates it into a JobSinkResultPayload with its key", function()
      local wh = new()
      local r, err = wh:receive(AUTH, COMPLETED)
      assert.is_nil(err)
      assert.is_true(intuned.JobSinkResultPayload.is(r.payload))
      assert.equals("JobSinkResultPayload", intuned.type(r.payload))
      assert.equals("catalog/item-detail", r.payload.apiInfo.name)
      assert.equals("completed", r.payload.apiInfo.result.status)
      assert.is_false(r.duplicate)
      assert.equals("run-6b1f0c2e/apirun-0d8e2f44c1", r.key)
      assert.is_true(util.json_equal(r.payload:to_json(), COMPLETED))
      local f = assert(wh:receive(AUTH, FAILED))
      assert.equals("DemoSelectorNotFound", f.payload.apiInfo.result.error)
      assert.equals("run-demo-0003/apirun-demo-7f3c2b", f.key)
    end)

    it("keeps unknown keys, as the reference asks", function()
      local doc = intuned.decode_json(COMPLETED)
      doc.newerField = { x = 1 }
      local r = assert(new():receive(AUTH, intuned.encode_json(doc)))
      assert.same({ x = 1 }, r.payload.newerField)
    end)

    it("finds the token header in any case, bare or as Bearer, or from a function", function()
      local bodies = {}
      for i = 1, 6 do bodies[i] = result("run-h" .. i) end
      local wh = new()
      assert.truthy(wh:receive({ authorization = "Bearer " .. TOKEN }, bodies[1]))
      assert.truthy(wh:receive({ AUTHORIZATION = "bearer   " .. TOKEN .. " " }, bodies[2]))
      assert.truthy(wh:receive({ Authorization = TOKEN }, bodies[3]))
      assert.truthy(wh:receive({ authorization = { "Bearer " .. TOKEN } }, bodies[4])) -- ngx.req.get_headers() list
      assert.truthy(wh:receive(function(name) return name == "authorization" and TOKEN or nil end, bodies[5]))
      local custom = new{ header = "X-Intuned-Webhook-Token" }
      assert.truthy(custom:receive({ ["x-intuned-webhook-token"] = TOKEN }, bodies[6]))
      assert.is_nil(custom:receive(AUTH, bodies[6]))
    end)

    it("takes any delivery when the token check is turned off (token = false)", function()
      local wh = webhook.new{ token = false }
      assert.truthy(wh:receive({}, COMPLETED))
      assert.matches("token off", tostring(wh))
    end)
  end)

  describe("a bad token", function()
    local function refused(headers, why)
      local wh = new()
      local r, err = wh:receive(headers, COMPLETED)
      assert.is_nil(r)
      assert.truthy(intuned.is_error(err))
      assert.equals("unauthorized", err.kind)
      assert.equals(401, err.status)
      assert.matches(why, err.message)
      assert.is_nil(texts(err):find(TOKEN, 1, true))
      assert.is_nil(texts(err):find(TOKEN:sub(2, 9), 1, true))
      return err
    end

    it("missing", function()
      refused({}, "missing authorization header")
      refused({ ["X-Token"] = TOKEN }, "missing")
      refused({ authorization = {} }, "missing")
    end)

    it("wrong, of the same length", function()
      refused({ Authorization = "Bearer " .. TOKEN:sub(1, -2) .. "X" }, "bad token")
      refused({ Authorization = "Bearer X" .. TOKEN:sub(2) }, "bad token")
      refused({ Authorization = "Basic " .. TOKEN:sub(7) }, "bad token")
    end)

    it("of the wrong length: shorter, longer, a prefix, empty, huge", function()
      refused({ Authorization = "Bearer " .. TOKEN:sub(1, -2) }, "bad token")
      refused({ Authorization = "Bearer " .. TOKEN .. TOKEN }, "bad token")
      refused({ Authorization = "Bearer " .. TOKEN .. "0" }, "bad token")
      refused({ Authorization = "Bearer " }, "bad token")
      refused({ Authorization = "" }, "bad token")
      refused({ Authorization = TOKEN .. ("x"):rep(10000) }, "bad token")
    end)

    it("repeated (two headers, or two names differing in case)", function()
      refused({ authorization = { "Bearer " .. TOKEN, "Bearer " .. TOKEN } }, "repeated")
      refused({ authorization = "Bearer " .. TOKEN, Authorization = "Bearer " .. TOKEN }, "repeated")
    end)

    it("is checked before the body is looked at", function()
      local err = refused({}, "missing")
      assert.is_nil(err.path)
      local _, e2 = new():receive({}, "not json at all")
      assert.equals("unauthorized", e2.kind)
    end)

    it("compares in constant time: the same work wherever the first difference lies", function()
      assert.is_true(webhook.constant_time_equal("abc", "abc"))
      assert.is_false(webhook.constant_time_equal("abd", "abc"))
      assert.is_false(webhook.constant_time_equal("ab", "abc"))
      assert.is_false(webhook.constant_time_equal("abcd", "abc"))
      assert.is_false(webhook.constant_time_equal("", "abc"))
      assert.is_false(webhook.constant_time_equal("abcabc", "abc")) -- the wrap-around is no match
      assert.has_error(function() webhook.constant_time_equal("a", "") end)
      -- count VM instructions (LuaJIT's compiled code skips hooks: interpret it)
      local jit_mod = rawget(_G, "jit")
      if jit_mod then jit_mod.off() jit_mod.flush() end
      local function cost(given)
        local n = 0
        debug.sethook(function() n = n + 1 end, "", 1)
        webhook.constant_time_equal(given, TOKEN)
        debug.sethook()
        return n
      end
      local first = "X" .. TOKEN:sub(2)
      local last = TOKEN:sub(1, -2) .. "X"
      local costs = { cost(TOKEN), cost(first), cost(last), cost(("\255"):rep(#TOKEN)), cost(TOKEN .. TOKEN) }
      if jit_mod then jit_mod.on() end
      assert.truthy(costs[1] > #TOKEN, "the hook counted " .. costs[1])
      -- mismatches anywhere cost the same; a match differs only in how the
      -- final answer is returned (a branch of LuaJIT's bytecode)
      assert.same({ costs[2], costs[2] }, { costs[3], costs[4] })
      assert.truthy(math.abs(costs[1] - costs[2]) <= 2, ("match %d, mismatch %d"):format(costs[1], costs[2]))
      -- the work follows the length of the value given, not the secret
      assert.truthy(costs[5] > costs[1] + #TOKEN)
    end)
  end)

  describe("a bad body", function()
    local function bad(body, status, path, wh)
      local r, err = (wh or new()):receive(AUTH, body)
      assert.is_nil(r)
      assert.equals("invalid_input", err.kind)
      assert.equals(status, err.status)
      assert.equals(path, err.path)
      assert.is_nil(texts(err):find(TOKEN, 1, true))
      return err
    end

    it("answers invalid_input with the path of the field at fault", function()
      bad('{"workspaceId":"w"}', 400, "apiInfo")
      local doc = intuned.decode_json(FAILED)
      doc.apiInfo.result.statusCode = "500"
      bad(intuned.encode_json(doc), 400, "apiInfo.result.statusCode")
      doc = intuned.decode_json(COMPLETED)
      doc.apiInfo.result.status = "maybe"
      bad(intuned.encode_json(doc), 400, "apiInfo.result.status")
      doc = intuned.decode_json(COMPLETED)
      doc.apiInfo.runId = nil
      bad(intuned.encode_json(doc), 400, "apiInfo.runId")
      doc = intuned.decode_json(COMPLETED)
      doc.project.name = 7
      bad(intuned.encode_json(doc), 400, "project.name")
    end)

    it("not JSON, not an object, empty: invalid_input without a path", function()
      assert.matches("JSON", bad("{", 400, nil).message)
      bad("[]", 400, nil)
      bad("", 400, nil)
    end)

    it("over max_body: 413, before decoding", function()
      local wh = new{ max_body = 100 }
      local err = bad(COMPLETED, 413, nil, wh)
      assert.matches("larger than 100 bytes", err.message)
      assert.truthy(new{ max_body = #COMPLETED }:receive(AUTH, COMPLETED))
    end)

    it("does not remember a refused delivery", function()
      local wh = new()
      assert.is_nil(wh:receive({}, COMPLETED))
      assert.is_false(assert(wh:receive(AUTH, COMPLETED)).duplicate)
    end)
  end)

  describe("duplicates", function()
    it("the same run and API run again is a duplicate, not an error", function()
      local wh = new()
      local a = assert(wh:receive(AUTH, COMPLETED))
      local b, err = wh:receive(AUTH, COMPLETED)
      assert.is_nil(err)
      assert.is_false(a.duplicate)
      assert.is_true(b.duplicate)
      assert.equals(a.key, b.key)
      assert.is_true(intuned.JobSinkResultPayload.is(b.payload))
      -- told apart by the ids, not the bytes: the same result re-encoded
      local again = intuned.encode_json(intuned.decode_json(COMPLETED))
      assert.is_true(assert(wh:receive(AUTH, again)).duplicate)
    end)

    it("another API run of the same run, or the same API run id in another run, is new", function()
      local wh = new()
      assert.is_false(assert(wh:receive(AUTH, result("run-1", "api-1"))).duplicate)
      assert.is_false(assert(wh:receive(AUTH, result("run-1", "api-2"))).duplicate)
      assert.is_false(assert(wh:receive(AUTH, result("run-2", "api-1"))).duplicate)
      assert.is_true(assert(wh:receive(AUTH, result("run-2", "api-1", FAILED))).duplicate)
    end)

    it("keys cannot collide through a '/' in an id; a one-off run has an empty run part", function()
      local wh = new()
      local a = assert(wh:receive(AUTH, result("a/b", "c")))
      local b = assert(wh:receive(AUTH, result("a", "b/c")))
      assert.are_not.equal(a.key, b.key)
      assert.is_false(b.duplicate)
      assert.equals("a%2Fb/c", a.key)
      local one_off = assert(wh:receive(AUTH, result(false, "solo-1")))
      assert.equals("/solo-1", one_off.key)
      assert.is_true(assert(wh:receive(AUTH, result(false, "solo-1"))).duplicate)
      assert.equals(a.key, webhook.key(a.payload))
    end)

    it("a key is forgotten after ttl seconds, or by forget", function()
      local now = 1000
      local wh = new{ ttl = 60, clock = function() return now end }
      assert.is_false(assert(wh:receive(AUTH, COMPLETED)).duplicate)
      now = now + 59
      assert.is_true(assert(wh:receive(AUTH, COMPLETED)).duplicate)
      now = now + 2
      local r = assert(wh:receive(AUTH, COMPLETED))
      assert.is_false(r.duplicate)
      assert.is_true(wh:forget(r))
      assert.is_false(assert(wh:receive(AUTH, COMPLETED)).duplicate)
      assert.is_true(wh:forget(r.key))
      assert.is_false(assert(wh:receive(AUTH, COMPLETED)).duplicate)
    end)
  end)

  describe("the default store", function()
    it("is bounded: a flood of unique keys keeps at most max_keys, the oldest dropped first", function()
      local store = webhook.memory_store{ max_keys = 1000 }
      local function flood(from, to)
        for i = from, to do assert(store:add("run-" .. i .. "/api", 3600)) end
      end
      -- Growth over the second half of the flood; the first half lets the
      -- interpreter's own tables settle.  Lua's string table shrinks by half
      -- per collection, so where it stands after a few collections differs
      -- by a power of two (256 KiB seen under 5.3): the bound sits well
      -- above that noise and far below what a store keeping its keys would
      -- take (7.5 MiB or more for 100,000 keys, checked below).
      local function settle()
        for _ = 1, 8 do collectgarbage() end
        return collectgarbage("count")
      end
      flood(1, 100000)
      local base = settle()
      flood(100001, 200000)
      local grown = settle() - base
      assert.equals(1000, store:count())
      assert.truthy(grown < 2048, ("memory grew by %.0f KiB over 100,000 keys"):format(grown))
      -- the bound would catch a store that keeps keys
      local leaky, before = {}, settle()
      for i = 1, 100000 do leaky["run-" .. i .. "/api"] = 3600 end
      local kept = settle() - before
      assert.equals(3600, leaky["run-1/api"])  -- still alive while measured
      assert.truthy(kept > 2 * 2048, ("a table of 100,000 keys took only %.0f KiB"):format(kept))
      -- the newest are remembered, the oldest forgotten
      assert.is_false(store:add("run-200000/api", 3600))
      assert.is_false(store:add("run-199001/api", 3600))
      assert.is_true(store:add("run-1/api", 3600))
      assert.equals(1000, store:count())
      assert.matches("1000 of 1000", tostring(store))
    end)

    it("bounds a receiver's memory too (max_keys)", function()
      local wh = new{ max_keys = 20 }
      for i = 1, 300 do
        assert.is_false(assert(wh:receive(AUTH, result("flood-" .. i))).duplicate)
      end
      assert.is_true(assert(wh:receive(AUTH, result("flood-300"))).duplicate)
      assert.is_true(assert(wh:receive(AUTH, result("flood-281"))).duplicate)
      assert.is_false(assert(wh:receive(AUTH, result("flood-1"))).duplicate) -- dropped long ago
    end)

    it("drops expired keys first and reuses deleted slots", function()
      local now = 0
      local store = webhook.memory_store{ max_keys = 3, clock = function() return now end }
      assert.is_true(store:add("a", 10))
      assert.is_true(store:add("b", 10))
      now = 11
      assert.is_true(store:add("c", 10)) -- a and b expired: gone
      assert.equals(1, store:count())
      store:delete("c")
      assert.equals(0, store:count())
      for _, k in ipairs{ "d", "e", "f" } do assert.is_true(store:add(k, 10)) end
      assert.is_false(store:add("f", 10))
      assert.is_true(store:add("g", 10)) -- d dropped for it
      assert.is_true(store:add("d", 10))
      assert.equals(3, store:count())
    end)
  end)

  describe("a custom store", function()
    it("any object with add(key, ttl): true new, false seen, nil + message failed", function()
      local calls, seen = {}, {}
      local store = {
        add = function(self, key, ttl)
          calls[#calls + 1] = { self = self, key = key, ttl = ttl }
          if key:find("down", 1, true) then return nil, "connection refused" end
          if key:find("boom", 1, true) then error("store exploded") end
          if seen[key] then return false end
          seen[key] = true
          return true
        end,
      }
      local wh = new{ store = store, ttl = 120 }
      assert.matches("custom store", tostring(wh))
      assert.is_false(assert(wh:receive(AUTH, COMPLETED)).duplicate)
      assert.is_true(assert(wh:receive(AUTH, COMPLETED)).duplicate)
      assert.same({ self = store, key = "run-6b1f0c2e/apirun-0d8e2f44c1", ttl = 120 }, calls[1])
      local r, err = wh:receive(AUTH, result("down-1"))
      assert.is_nil(r)
      assert.same({ "server", 500, true }, { err.kind, err.status, err.retryable })
      assert.matches("connection refused", err.message)
      local _, e2 = wh:receive(AUTH, result("boom-1"))
      assert.same({ "server", 500 }, { e2.kind, e2.status })
      assert.matches("store exploded", e2.message)
      -- no delete: forget cannot work, and says so
      assert.has_error(function() wh:forget("x/y") end, "intuned.webhook: forget: the store has no delete(key)")
      assert.has_error(function() new{ store = store, max_keys = 5 } end)
      assert.has_error(function() new{ store = {} } end)
      assert.has_error(function() new{ store = "redis" } end)
    end)

    it("an ngx.shared.DICT is used as dict:add(key, true, ttl)", function()
      -- the methods that tell a shared dict from any store, and add's answers
      local data, calls = {}, {}
      local dict = {
        get_stale = function() end, flush_expired = function() end,
        add = function(_, key, value, exptime)
          calls[#calls + 1] = { key, value, exptime }
          if key:find("full", 1, true) then return false, "no memory" end
          if data[key] then return false, "exists" end
          data[key] = value
          return true, nil, false
        end,
        delete = function(_, key) data[key] = nil end,
      }
      local wh = new{ store = dict, ttl = 30 }
      assert.matches("ngx.shared store", tostring(wh))
      local r = assert(wh:receive(AUTH, COMPLETED))
      assert.is_false(r.duplicate)
      assert.same({ r.key, true, 30 }, calls[1])
      assert.is_true(assert(wh:receive(AUTH, COMPLETED)).duplicate)
      wh:forget(r)
      assert.is_false(assert(wh:receive(AUTH, COMPLETED)).duplicate)
      local _, err = wh:receive(AUTH, result("full-1"))
      assert.same({ "server", 500 }, { err.kind, err.status })
      assert.matches("no memory", err.message)
    end)
  end)

  describe("respond (for any HTTP server)", function()
    it("answers 200 for new and duplicate results, running the handler once", function()
      local wh, got = new(), {}
      local function handler(payload, receipt)
        got[#got + 1] = { payload.apiInfo.runId, receipt.key }
      end
      local s1, t1, r1 = wh:respond(AUTH, COMPLETED, handler)
      local s2, t2, r2 = wh:respond(AUTH, COMPLETED, handler)
      assert.same({ 200, 200 }, { s1, s2 })
      assert.same({ ok = true, duplicate = false, key = r1.key }, intuned.decode_json(t1))
      assert.same({ ok = true, duplicate = true, key = r1.key }, intuned.decode_json(t2))
      assert.is_true(r2.duplicate)
      assert.same({ { "apirun-0d8e2f44c1", "run-6b1f0c2e/apirun-0d8e2f44c1" } }, got)
    end)

    it("answers 401, 400 with the path, 413 as JSON, without running the handler", function()
      local wh = new{ max_body = 4096 }
      local ran = false
      local function handler() ran = true end
      local s, t, e = wh:respond({}, COMPLETED, handler)
      assert.same({ 401, "unauthorized" }, { s, intuned.decode_json(t).error })
      assert.is_true(intuned.is_error(e))
      s, t = wh:respond(AUTH, '{"workspaceId":"w"}', handler)
      assert.same({ 400, "invalid_input", "apiInfo" }, { s, intuned.decode_json(t).error, intuned.decode_json(t).path })
      s = wh:respond(AUTH, ("x"):rep(5000), handler)
      assert.equals(413, s)
      assert.is_false(ran)
    end)

    it("a handler that fails gets 500 and its result forgotten, so the retry is processed", function()
      local wh, n = new(), 0
      local fails = { "raise", "false", "nil, msg" }
      local function handler()
        n = n + 1
        local how = fails[n]
        if how == "raise" then error("disk full") end
        if how == "false" then return false end
        if how == "nil, msg" then return nil, "db down" end
        return true
      end
      for i = 1, 3 do
        local s, t, e = wh:respond(AUTH, COMPLETED, handler)
        assert.equals(500, s, "attempt " .. i)
        assert.equals("server", intuned.decode_json(t).error)
        assert.is_nil(t:find("disk full", 1, true)) -- internal reasons stay in the log
        assert.same({ "server", true }, { e.kind, e.retryable })
      end
      local s, t = wh:respond(AUTH, COMPLETED, handler)
      assert.equals(200, s)
      assert.is_false(intuned.decode_json(t).duplicate)
      assert.equals(4, n)
      assert.is_true(intuned.decode_json(select(2, wh:respond(AUTH, COMPLETED, handler))).duplicate)
      assert.equals(4, n)
    end)

    it("handle_ngx raises outside nginx", function()
      assert.has_error(function() new():handle_ngx() end, "intuned.webhook: handle_ngx needs nginx (ngx_http_lua_module)")
    end)
  end)

  describe("secrets and misuse", function()
    it("never shows the token: tostring, errors, raises", function()
      local wh = new()
      assert.is_nil(tostring(wh):find(TOKEN, 1, true))
      assert.matches("header authorization, token set", tostring(wh))
      for k, v in pairs(wh) do
        assert.is_nil(tostring(k):find(TOKEN, 1, true))
        assert.is_nil(tostring(v):find(TOKEN, 1, true))
      end
      local _, e = wh:receive({ Authorization = "Bearer " .. TOKEN .. "x" }, COMPLETED)
      assert.is_nil(texts(e):find(TOKEN, 1, true))
      local ok, msg = pcall(webhook.new, { token = " " .. TOKEN })
      assert.is_false(ok)
      assert.is_nil(tostring(msg):find(TOKEN, 1, true))
    end)

    it("raises on bad options and arguments", function()
      assert.has_error(function() webhook.new() end)
      assert.has_error(function() webhook.new{} end, "intuned.webhook: token is required (false turns the check off)")
      assert.has_error(function() webhook.new{ token = "" } end)
      assert.has_error(function() webhook.new{ token = 5 } end)
      assert.has_error(function() webhook.new{ token = "a\nb" } end)
      assert.has_error(function() new{ header = "bad header" } end)
      assert.has_error(function() new{ ttl = 0 } end)
      assert.has_error(function() new{ ttl = 0 / 0 } end)
      assert.has_error(function() new{ max_body = -1 } end)
      assert.has_error(function() new{ max_keys = 0 } end)
      assert.has_error(function() new{ tokne = "x" } end)
      local wh = new()
      assert.has_error(function() wh:receive(nil, COMPLETED) end)
      assert.has_error(function() wh:receive(AUTH, nil) end)
      assert.has_error(function() wh.receive({}, AUTH, COMPLETED) end)
      assert.has_error(function() wh:respond(AUTH, COMPLETED, "handler") end)
      assert.has_error(function() webhook.key({}) end)
    end)
  end)
end)

describe("examples/webhook_server.lua", function()
  local function http_request(body, headers, extra)
    local lines = { "POST /webhooks/intuned HTTP/1.1", "Host: 127.0.0.1" }
    for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
    lines[#lines + 1] = "Content-Type: application/json"
    lines[#lines + 1] = "Content-Length: " .. #body
    for _, l in ipairs(extra or {}) do lines[#lines + 1] = l end
    return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
  end

  local interpreter = require("spec.helpers.util").interpreter

  it("answers requests piped to it: new, duplicate, bad token, bad body", function()
    local input = table.concat{
      http_request(COMPLETED, AUTH),
      http_request(COMPLETED, { Authorization = TOKEN }),
      http_request(FAILED, { Authorization = "Bearer nope" }),
      http_request('{"workspaceId":"w"}', AUTH, { "Connection: close" }),
      http_request(FAILED, AUTH), -- after Connection: close: never read
    }
    local dir = emulator.tmpdir()
    local inf, outf, errf = dir .. "/in", dir .. "/out", dir .. "/err"
    emulator.write_file(inf, input)
    local cmd = ("WEBHOOK_TOKEN=%s LUA_PATH=%s LUA_CPATH=%s %s examples/webhook_server.lua <%s >%s 2>%s; echo $?")
      :format(emulator.quote(TOKEN), emulator.quote(package.path), emulator.quote(package.cpath),
              emulator.quote(interpreter()), emulator.quote(inf), emulator.quote(outf), emulator.quote(errf))
    local rc = emulator.capture(cmd)
    local out, err = emulator.read_file(outf) or "", emulator.read_file(errf) or ""
    os.execute("rm -rf " .. emulator.quote(dir))
    assert.equals("0", rc, err)
    local answers = {}
    local at = 1
    for _ = 1, 10 do
      local s, e = out:find("\r\n\r\n", at, true)
      if not s then break end
      local head = out:sub(at, e)
      local status = head:match("^HTTP/1%.1 (%d+) ")
      local len = head:match("\r\nContent%-Length: (%d+)\r\n")
      if not (status and len) then break end
      answers[#answers + 1] = { status = tonumber(status), body = intuned.decode_json(out:sub(e + 1, e + tonumber(len))) }
      at = e + tonumber(len) + 1
    end
    assert.equals(#out + 1, at, out)
    assert.equals(4, #answers, out)
    assert.same({ 200, false }, { answers[1].status, answers[1].body.duplicate })
    assert.same({ 200, true }, { answers[2].status, answers[2].body.duplicate })
    assert.same({ 401, "unauthorized" }, { answers[3].status, answers[3].body.error })
    assert.same({ 400, "apiInfo" }, { answers[4].status, answers[4].body.path })
    -- the handler ran once; the log names what was refused, never the token
    local _, n = err:gsub("result harbor%-price%-watch/apirun%-0d8e2f44c1: catalog/item%-detail %-> completed %(200%)", "")
    assert.equals(1, n, err)
    assert.truthy(err:find("duplicate run-6b1f0c2e/apirun-0d8e2f44c1", 1, true), err)
    assert.truthy(err:find("refused: unauthorized (401)", 1, true), err)
    assert.is_nil(err:find(TOKEN, 1, true))
  end)

  it("refuses to start without WEBHOOK_TOKEN", function()
    local cmd = ("env -u WEBHOOK_TOKEN LUA_PATH=%s LUA_CPATH=%s %s examples/webhook_server.lua </dev/null 2>&1; echo \"rc=$?\"")
      :format(emulator.quote(package.path), emulator.quote(package.cpath), emulator.quote(interpreter()))
    local out = emulator.capture(cmd)
    assert.matches("set WEBHOOK_TOKEN", out)
    assert.matches("rc=2", out)
  end)
end)
