-- The Run API and Auth Sessions through the client (libcurl transport),
-- against the emulator in the newest API's mode: every operation as a
-- method and in client:batch, the waits (client.runs:run, runs:start and
-- the auth-session starts with { wait = ... }: canceled and failed are
-- results, a run that does not finish in time a timeout error), the starts
-- never duplicated by the retries, and the credentials and sink secrets of
-- these bodies kept out of tostring, errors and hook events.
local intuned = require "intuned"
local cjson = require "cjson"
local emulator = require("spec.helpers.emulator").pinned("newest")
local echo_server = require "spec.helpers.echo"
local workflow = require "intuned.workflow"
local clock = require "intuned.clock"

local KEY, WS = "test-key", "ws-local"

local PASSWORD = "pw-credential-31337"
local RUNTIME = "runtime-secret-8080"
local PROXY_PW = "proxy-pass-5150"
local S3 = "s3-secret-QwErTy0987"
local WH = "wh-header-secret-4321"
local SECRETS = { PASSWORD, RUNTIME, PROXY_PW, S3, WH }
local function leak(v) return echo_server.leak(v, SECRETS) end

local function run_input(api, extra)
  local t = { api = api or "products/list", parameters = { page = 1 } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("Run API and Auth Sessions through the client", function()
  local emu, client
  local P = "run-auth-spec"

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "200", "--time-scale", "0.001", "--auth-op-ms", "300000" }
    client = intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url, api_version = "newest",
                             timeout = 10 }
  end)
  teardown(function()
    if client then client:close() end
    if emu then emu.stop() end
    emulator.stop_all()
  end)

  local function api_runs() return cjson.decode(emu.control("GET", "/_emulator/api-runs").body) end

  describe("runs", function()
    it("start answers the run id, result reads the run until it has finished", function()
      local started = assert(client.runs:start(P, run_input()))
      assert.are.equal("RunStarted", intuned.type(started))
      assert.are.equal("pending", started.status)
      assert.are.equal(21, #started.runId)
      local res = assert(client.runs:result(P, started.runId))
      assert.are.equal("RunResult", intuned.type(res))
      assert.are.equal(started.runId, res.runId)
      assert.truthy(({ pending = true, started = true, completed = true })[res.status], res.status)
    end)

    it("run starts and waits: completed with the API's result", function()
      local polls = 0
      local res = assert(client.runs:run(P, run_input("products/list"), { timeout = 30, poll = 0.05,
        on_poll = function(last) polls = polls + 1; assert.is_true(last == nil or last.status ~= "completed") end }))
      assert.are.equal("completed", res.status)
      assert.are.equal("table", type(res.result))
      assert.is_true(polls >= 1)
    end)

    it("a failed run is a result with its error", function()
      local res = assert(client.runs:run(P, run_input("fail-always"), { timeout = 30, poll = 0.05 }))
      assert.are.equal("failed", res.status)
      assert.are.equal("RunError", intuned.type(res.error))
      assert.are.equal("api-attempts-failed", res.error.code)
      assert.are.equal("execution", res.error.category)
      assert.is_string(res.message)
    end)

    it("start with { wait = ... } is the same wait; a canceled run ends it (canceled is final)", function()
      local started = assert(client.runs:start(P, run_input("slow")))
      local cancel = emu.control("POST", "/_emulator/api-runs/" .. started.runId .. "/cancel")
      assert.are.equal(200, cancel.status, cancel.body)
      local res = assert(client.runs:result(P, started.runId))
      assert.are.equal("canceled", res.status)
      assert.are.equal("cancelled-user-action", res.reason.type)
      local waited = assert(client.runs:start(P, run_input(), { wait = { timeout = 30, poll = 0.05 } }))
      assert.are.equal("RunResult", intuned.type(waited))
      assert.are.equal("completed", waited.status)
    end)

    it("a run that does not finish in time: a timeout error naming it, with the last result", function()
      local slow = emulator.start{ "--api-latency-ms", "60000", "--time-scale", "1" }
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = slow.url, timeout = 5 }
      local res, err = c.runs:run(P, run_input(), { timeout = 0.3, poll = 0.05 })
      c:close()
      slow.stop()
      assert.is_nil(res)
      assert.are.equal("timeout", err.kind)
      assert.is_string(err.run_id)
      assert.truthy(err.message:find(err.run_id, 1, true))
      assert.truthy(err.result == nil or ({ pending = true, started = true })[err.result.status])
    end)

    it("a poll's transient failure is polled again; any other failure ends the wait", function()
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url, retry = false, timeout = 10 }
      emu.fault{ status = 502, count = 2, match = "/result", method = "GET" }
      local errs = 0
      local res = assert(c.runs:run(P, run_input(), { timeout = 30, poll = 0.02,
        on_poll = function(_, _, err) if err then errs = errs + 1 end end }))
      assert.are.equal("completed", res.status)
      assert.are.equal(2, errs)
      local none, err = workflow.start_wait(c.runs, function() return { runId = "no-such-run-000000000" } end, P,
        select(2, workflow.result_wait_option(true, "wait")))
      assert.is_nil(none)
      assert.are.equal("not_found", err.kind)
      c:close()
    end)

    it("refuses bad input before sending, and misuse raises", function()
      local before = api_runs().started
      local res, err = client.runs:start(P, { parameters = {} })
      assert.is_nil(res)
      assert.are.equal("validation", err.kind)
      assert.are.equal("api", err.path)
      res, err = client.runs:run(P, { api = "a", parameters = {}, requestTimeout = 2.5 })
      assert.is_nil(res)
      assert.are.equal("requestTimeout", err.path)
      assert.are.equal(before, api_runs().started)
      assert.has_error(function() client.runs:start(P, "x") end,
        "bad argument #2 to 'start' (table or intuned.RunStartInput expected, got string)")
      assert.has_error(function() client.runs:run(P, run_input(), { via = "list" }) end)
      assert.has_error(function() client.runs:run(P, run_input(), { nope = 1 }) end)
      assert.has_error(function() client.runs.run("x") end)
    end)

    it("an unknown run is not_found", function()
      local res, err = client.runs:result(P, "no-such-run-000000000")
      assert.is_nil(res)
      assert.are.equal("not_found", err.kind)
      assert.are.equal(404, err.status)
    end)
  end)

  describe("auth sessions", function()
    it("create with wait: the session exists, READY, and is listed, got and deleted", function()
      local op = assert(client.auth_sessions:create(P, { id = "login-1", parameters = { username = "jane",
        password = PASSWORD } }, { wait = { timeout = 30, poll = 0.05 } }))
      assert.are.equal("OperationResult", intuned.type(op))
      assert.are.equal("done", op.status)
      assert.are.equal("login-1", op.authSessionId)
      local s = assert(client.auth_sessions:get(P, "login-1"))
      assert.are.equal("AuthSessionInfo", intuned.type(s))
      assert.are.equal("READY", s.status)
      assert.are.equal("CREDENTIALS", s.type)
      local list = assert(client.auth_sessions:list(P))
      local found = false
      for _, it in ipairs(list) do
        assert.are.equal("AuthSessionInfo", intuned.type(it))
        if it.id == "login-1" then found = true end
      end
      assert.is_true(found)
      assert.is_true(assert(client.auth_sessions:delete(P, "login-1")))
      local gone, err = client.auth_sessions:get(P, "login-1")
      assert.is_nil(gone)
      assert.are.equal("not_found", err.kind)
    end)

    it("create, then its result by hand: pending or in_progress, then done", function()
      local started = assert(client.auth_sessions:create(P, { parameters = { username = "u", password = PASSWORD } }))
      assert.are.equal("OperationStarted", intuned.type(started))
      assert.are.equal("started", started.status)
      local seen = {}
      local res
      for _ = 1, 400 do
        res = assert(client.auth_sessions:create_result(P, started.operationId))
        seen[res.status] = true
        if res.status == "in_progress" then assert.is_string(res.runId) end
        if workflow.OPERATION_FINISHED[res.status] then break end
        clock.sleep(0.01)
      end
      assert.are.equal("done", res.status)
      assert.is_string(res.authSessionId)
      assert.is_true(seen.pending or seen.in_progress or false)
    end)

    it("update and validate, by hand and with wait; a failed one is a result", function()
      assert(client.auth_sessions:create(P, { id = "login-2", parameters = { u = "x" } }, { wait = true }))
      local up = assert(client.auth_sessions:update(P, "login-2", { parameters = { u = "y", password = PASSWORD } }))
      assert.are.equal("started", up.status)
      local r = assert(client.auth_sessions:update_result(P, "login-2", up.operationId))
      assert.are.equal("OperationResult", intuned.type(r))
      local v = assert(client.auth_sessions:validate(P, "login-2", {}))
      assert.are.equal("pending", v.status)
      r = assert(client.auth_sessions:validate_result(P, "login-2", v.operationId))
      assert.are.equal("OperationResult", intuned.type(r))
      local done = assert(client.auth_sessions:validate(P, "login-2", { checkAttempts = 1 },
        { wait = { timeout = 30, poll = 0.05 } }))
      assert.are.equal("done", done.status)
      done = assert(client.auth_sessions:update(P, "login-2", { parameters = { u = "z" } }, { wait = true }))
      assert.are.equal("done", done.status)
      -- a failing update: failed, with its error, not an error
      local failed = assert(client.auth_sessions:update(P, "login-2", { parameters = { fail = true } },
        { wait = { timeout = 30, poll = 0.05 } }))
      assert.are.equal("failed", failed.status)
      assert.are.equal("RunError", intuned.type(failed.error))
      assert.is_string(failed.message)
      assert.are.equal("EXPIRED", assert(client.auth_sessions:get(P, "login-2")).status)
      -- a good update makes it READY again
      local again = assert(client.auth_sessions:update(P, "login-2", { parameters = { u = "ok" } }, { wait = true }))
      assert.are.equal("done", again.status)
      assert.are.equal("READY", assert(client.auth_sessions:get(P, "login-2")).status)
    end)

    it("a delete cancels a running create: the wait ends with canceled", function()
      local started = assert(client.auth_sessions:create(P, { id = "login-3", parameters = {} }))
      assert(client.auth_sessions:delete(P, "login-3"))
      local res = assert(workflow.operation_wait(client.auth_sessions, "create",
        function() return started end, P, nil, select(2, workflow.result_wait_option(
          { timeout = 30, poll = 0.05 }, "wait"))))
      assert.are.equal("canceled", res.status)
      assert.are.equal("RunReason", intuned.type(res.reason))
    end)

    it("a run with a credentials session needs an existing one; a runtime session is made", function()
      local res, err = client.runs:start(P, run_input(nil, { authSession = { id = "no-such-session" } }))
      assert.is_nil(res)
      assert.are.equal("invalid_input", err.kind)
      local done = assert(client.runs:run(P, run_input(nil, { authSession = { id = "rt-1",
        runtimeInput = { token = RUNTIME } } }), { timeout = 30, poll = 0.05 }))
      assert.are.equal("completed", done.status)
      assert.are.equal("RUNTIME", assert(client.auth_sessions:get(P, "rt-1")).type)
    end)
  end)

  describe("batch", function()
    it("takes every operation name; the starts and the reads reach the emulator", function()
      assert(client.auth_sessions:create(P, { id = "batch-1", parameters = {} }, { wait = true }))
      local out = client:batch{
        { op = "runs:start", project = P, input = run_input() },
        { op = "auth_sessions:get", project = P, auth_session_id = "batch-1" },
        { op = "auth_sessions:list", project = P },
        { op = "auth_sessions:validate", project = P, authSessionId = "batch-1", input = {} },
        { op = "runs:result", project = P, run_id = "no-such-run-000000000" },
        { op = "auth_sessions:create_result", project = P, operationId = "no-such-op" },
      }
      assert.are.equal(6, #out)
      assert.are.equal("RunStarted", intuned.type(out[1]))
      assert.are.equal("AuthSessionInfo", intuned.type(out[2]))
      assert.are.equal("AuthSessionInfo", intuned.type(out[3][1]))
      assert.are.equal("OperationStarted", intuned.type(out[4]))
      assert.is_true(intuned.is_error(out[5]))
      assert.are.equal("not_found", out[5].kind)
      assert.is_true(intuned.is_error(out[6]))
      assert.are.equal("not_found", out[6].kind)
    end)
  end)

  describe("retries", function()
    it("never repeat a start that may have reached the server, and repeat the reads", function()
      local events = {}
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url, timeout = 10,
        retry = { max_attempts = 3, initial_delay = 0.01, max_delay = 0.02 },
        hook = function(ev) events[#events + 1] = ev end }
      local rows = intuned.operations
      for _, name in ipairs{ "runs:start", "auth_sessions:create", "auth_sessions:update", "auth_sessions:validate" } do
        assert.is_false(rows[name].idempotent, name)
      end
      for _, name in ipairs{ "runs:result", "auth_sessions:list", "auth_sessions:get", "auth_sessions:delete",
                             "auth_sessions:create_result", "auth_sessions:update_result",
                             "auth_sessions:validate_result" } do
        assert.is_true(rows[name].idempotent, name)
      end
      local function count(op, kind)
        local n = 0
        for _, ev in ipairs(events) do if ev.op == op and ev.event == kind then n = n + 1 end end
        return n
      end
      -- a 500 or a dropped connection answering a start: it may have reached
      -- the server, so one attempt only
      for _, fault in ipairs{ { status = 500, count = 1, match = "/run/start", method = "POST" },
                              { kind = "drop", count = 1, match = "/auth-sessions/create", method = "POST" } } do
        emu.fault(fault)
        local op = fault.status and "runs:start" or "auth_sessions:create"
        local before = count(op, "request")
        local res, err
        if op == "runs:start" then res, err = c.runs:start(P, run_input())
        else res, err = c.auth_sessions:create(P, { parameters = {} }) end
        assert.is_nil(res, op)
        assert.are.equal(1, err.attempts, op)
        assert.are.equal(before + 1, count(op, "request"), op)
      end
      -- a 429 is safe to repeat (the request was refused before anything
      -- started): retried, and the run started once
      local before = api_runs().started
      emu.fault{ status = 429, count = 1, retry_after = "0", match = "/run/start", method = "POST" }
      assert(c.runs:start(P, run_input()))
      assert.are.equal(before + 1, api_runs().started)
      -- the reads are retried after a 503 (a start is, too, only with Retry-After)
      emu.fault{ status = 503, count = 1, match = "/auth-sessions", method = "GET" }
      local list = assert(c.auth_sessions:list(P))
      assert.are.equal("table", type(list))
      assert.are.equal(1, count("auth_sessions:list", "retry"))
      c:close()
    end)
  end)

  describe("secrets", function()
    local echo
    setup(function() echo = echo_server.start() end)
    teardown(function() echo_server.stop(echo) end)

    local S3_SINK = { type = "s3", region = "us-east-1", bucket = "b", accessKeyId = "AKIA1", secretAccessKey = S3 }
    local WH_SINK = { type = "webhook", url = "https://h.example/x", headers = { ["X-Hook"] = WH } }
    local PROXY = "http://user:" .. PROXY_PW .. "@proxy.example:8080"

    it("tostring of the inputs shows no credential, proxy or sink secret; to_json keeps them", function()
      local objs = {
        assert(intuned.RunStartInput.new(run_input(nil, { sink = S3_SINK, proxy = PROXY,
          authSession = { id = "x", runtimeInput = { password = RUNTIME }, proxy = PROXY } }))),
        assert(intuned.RunStartInput.new(run_input(nil, { sink = WH_SINK, authSession = { id = "x", proxy = PROXY } }))),
        assert(intuned.AuthSessionCreateInput.new{ parameters = { username = "j", password = PASSWORD }, proxy = PROXY }),
        assert(intuned.AuthSessionUpdateInput.new{ parameters = { nested = { password = PASSWORD } } }),
        assert(intuned.AuthSessionValidateInput.new{ proxy = PROXY }),
      }
      for _, o in ipairs(objs) do
        local s = tostring(o)
        assert.is_nil(leak(s), s)
        assert.truthy(s:find("***", 1, true), s)
        assert.is_not_nil(leak(o:to_json()))
      end
    end)

    it("a server echoing the body: no secret in errors nor hook events (methods and batch)", function()
      local events, lines = {}, {}
      local c = intuned.client{ api_key = KEY, workspace_id = WS, server_url = echo.url, retry = false,
                                hook = function(ev) events[#events + 1] = ev end,
                                debug = function(line) lines[#lines + 1] = line end }
      local calls = {
        function() return c.runs:start("p", run_input(nil, { sink = S3_SINK, proxy = PROXY })) end,
        function() return c.runs:start("p", run_input(nil, { sink = WH_SINK,
          authSession = { runtimeInput = { password = RUNTIME } } })) end,
        function() return c.auth_sessions:create("p", { parameters = { password = PASSWORD }, proxy = PROXY }) end,
        function() return c.auth_sessions:update("p", "a", { parameters = { password = PASSWORD } }) end,
        function() return c.auth_sessions:validate("p", "a", { proxy = PROXY }) end,
        function() return c.runs:run("p", run_input(nil, { sink = WH_SINK }), { timeout = 5 }) end,
      }
      for i, f in ipairs(calls) do
        local res, err = f()
        assert.is_nil(res, i)
        assert.are.equal("invalid_input", err.kind)
        assert.is_nil(leak(err), i)
        assert.truthy(err.message:find("***", 1, true), err.message)
      end
      local out = c:batch{
        { op = "runs:start", project = "p", input = run_input(nil, { sink = S3_SINK }) },
        { op = "auth_sessions:create", project = "p", input = { parameters = { password = PASSWORD } } },
      }
      for i = 1, 2 do
        assert.is_true(intuned.is_error(out[i]))
        assert.is_nil(leak(out[i]))
      end
      assert.is_true(#events >= 16)
      for _, ev in ipairs(events) do assert.is_nil(leak(ev), ev.event) end
      assert.is_true(#lines >= 16) -- the debug output, made from the same events
      for _, line in ipairs(lines) do assert.is_nil(leak(line), line) end
      -- the request events show the body with the secrets as ***
      assert.truthy(events[1].body:find('"secretAccessKey":"***"', 1, true), events[1].body)
      c:close()
    end)
  end)
end)
