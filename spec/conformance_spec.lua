-- Conformance replay (issue 4): every case recorded from the official SDK in
-- spec/fixtures/conformance (copied from the recordings of the official SDK) is rebuilt with core.build_request and compared with
-- what went over the wire, and its recorded response is fed to
-- core.parse_response and compared with the SDK's typed result.  No network.
local core = require "intuned.core"
local cjson = require "cjson"

local dir = "spec/fixtures/conformance"

local conf = require "spec.helpers.conformance"
local read, same_json, diff = conf.read, conf.same_json, conf.diff
local function list_cases() return conf.list_cases(dir) end

local cases = list_cases()

describe("conformance replay of " .. dir, function()
  it("finds the recorded cases", function()
    assert.is_true(#cases >= 6, "expected at least 6 cases in " .. dir)
  end)

  for _, file in ipairs(cases) do
    local case = cjson.decode(read(dir .. "/" .. file))
    local call, ex = case.call, case.expect_request

    describe(case.name, function()
      local base = "http://127.0.0.1:1" .. (case.server_base_path or "/api/v1/workspace")
      local cfg = { server_url = base .. "/", workspace_id = call.workspace_id, api_key = call.api_key }
      local args = { project = call.project, job_id = call.job_id, run_id = call.run_id }
      if call.input ~= nil and call.input ~= cjson.null then
        if call.op == "jobs:update" then args.update = call.input else args.input = call.input end
      end

      it("sends the request the SDK sent", function()
        local req, err = core.build_request(cfg, call.op, args)
        assert.is_nil(err)
        assert.are.equal(ex.method, req.method)
        assert.are.equal(ex.path, req.path)
        assert.are.equal(base .. ex.path, req.url)
        for name, value in pairs(ex.headers) do
          assert.are.equal(value, req.headers[name:lower()], "header " .. name)
        end
        if ex.content_type == cjson.null or ex.content_type == nil then
          assert.is_nil(req.headers["content-type"])
        else
          assert.are.equal(ex.content_type, req.headers["content-type"])
        end
        if ex.body_json == cjson.null or ex.body_json == nil then
          assert.is_nil(req.body)
        else
          assert.is_string(req.body)
          assert.is_true(same_json(ex.body_json, cjson.decode(req.body)),
            "body differs: " .. tostring(req.body))
          assert.is_nil(req.body:find("\n"), "body must be compact")
        end
      end)

      it("accepts the same input as a typed object", function()
        if not args.input then return end
        local intuned = require "intuned"
        local obj = assert(intuned.JobInput.new(args.input))
        local r1 = assert(core.build_request(cfg, call.op, args))
        local r2 = assert(core.build_request(cfg, call.op,
          { project = args.project, job_id = args.job_id, input = obj }))
        assert.are.equal(r1.body, r2.body)
      end)

      it("returns the result the SDK returned", function()
        local resp = case.response
        local body = resp.body
        local text = (body ~= nil and body ~= cjson.null) and cjson.encode(body) or nil
        local ct = resp.content_type ~= cjson.null and resp.content_type or nil
        local res, err = core.parse_response(call.op, resp.status, ct, nil, text)
        assert.is_nil(err and tostring(err))
        if case.expect_result == cjson.null then
          assert.are.equal(true, res)
          return
        end
        local d = diff(res, case.expect_result, "result")
        assert.is_nil(d)
        -- and every field the server sent is kept (wire names, as a JSON value)
        if type(res) == "table" then
          for i, item in ipairs(res) do
            assert.is_true(same_json(body[i], item:to_table()), "item " .. i .. " differs from the wire")
          end
        else
          assert.is_true(same_json(body, res:to_table()), "result differs from the wire")
        end
      end)
    end)
  end
end)

describe("request building refuses what the SDK would get wrong", function()
  local cfg = { workspace_id = "ws-1", api_key = "k" }

  it("needs a workspace id and a key", function()
    local r, err = core.build_request({ api_key = "k" }, "jobs:list", { project = "p" })
    assert.is_nil(r)
    assert.are.equal("validation", err.kind)
    assert.are.equal("workspace_id", err.path)
    r, err = core.build_request({ workspace_id = "" , api_key = "k" }, "jobs:list", { project = "p" })
    assert.is_nil(r)
    assert.are.equal("workspace_id", err.path)
    r, err = core.build_request({ workspace_id = "w", api_key = "" }, "jobs:list", { project = "p" })
    assert.is_nil(r)
    assert.are.equal("api_key", err.path)
  end)

  it("refuses empty and dot-segment parameters", function()
    for _, bad in ipairs({ "", ".", ".." }) do
      local r, err = core.build_request(cfg, "jobs:get", { project = "p", job_id = bad })
      assert.is_nil(r)
      assert.are.equal("job_id", err.path)
      r, err = core.build_request(cfg, "jobs:list", { project = bad })
      assert.is_nil(r)
      assert.are.equal("project", err.path)
    end
  end)

  it("refuses an invalid input before sending", function()
    local r, err = core.build_request(cfg, "jobs:create", { project = "p",
      input = { id = "job-0001", payload = { {} }, configuration = { runMode = "Order-Irrelevant" } } })
    assert.is_nil(r)
    assert.are.equal("validation", err.kind)
    assert.are.equal("payload[1].apiName", err.path)
  end)

  it("raises on misuse", function()
    assert.has_error(function() core.build_request(cfg, "jobs:nope", {}) end)
    assert.has_error(function() core.build_request(cfg, "jobs:get", { project = {} }) end)
  end)

  it("percent-encodes every path part like encodeURIComponent", function()
    local r = assert(core.build_request({ workspace_id = "ws/with space", api_key = "k", server_url = "https://h/b" },
      "jobs.runs:terminate", { project = "p q", job_id = "j/k", run_id = "r#1" }))
    assert.are.equal("/ws%2Fwith%20space/projects/p%20q/jobs/j%2Fk/runs/r%231/terminate", r.path)
    assert.are.equal("POST", r.method)
    assert.is_nil(r.body)
    assert.is_nil(r.headers["content-type"])
  end)
end)

describe("response classification", function()
  it("maps statuses to error kinds", function()
    local kinds = { [400] = "invalid_input", [401] = "unauthorized", [404] = "not_found", [409] = "conflict",
                    [429] = "rate_limited", [500] = "server", [503] = "server", [418] = "api" }
    for status, kind in pairs(kinds) do
      local r, err = core.parse_response("jobs:get", status, "application/json", nil, '{"message":"m"}')
      assert.is_nil(r)
      assert.are.equal(kind, err.kind)
      assert.are.equal(status, err.status)
      assert.are.equal("m", err.message)
    end
  end)

  it("formats errors on one line", function()
    local _, err = core.parse_response("jobs:create", 400, "application/json", nil,
      '{"message":"payload[1].apiName: Required","details":{"field":"payload[1].apiName"}}')
    assert.are.equal("invalid_input (400): payload[1].apiName: Required", tostring(err))
    assert.are.equal("payload[1].apiName", err.details.field)
    assert.is_false(err.retryable)
  end)

  it("needs the exact status and a JSON content type", function()
    local r, err = core.parse_response("jobs:create", 200, "application/json", nil, '{"id":"x","message":"created"}')
    assert.is_nil(r)
    assert.are.equal("api", err.kind)
    r, err = core.parse_response("jobs:get", 200, "text/html", nil, "<html/>")
    assert.is_nil(r)
    assert.are.equal("decode", err.kind)
    assert.are.equal("<html/>", err.body)
    assert.are.equal(true, core.parse_response("jobs:delete", 204, nil, nil, nil))
  end)

  it("keeps Retry-After and marks retryable statuses", function()
    local _, err = core.parse_response("jobs:get", 429, "application/json", "1.5", "{}")
    assert.are.equal(1.5, err.retry_after)
    assert.is_true(err.retryable)
  end)

  it("lists are Lua arrays of typed objects", function()
    local runs = assert(core.parse_response("jobs.runs:list", 200, "application/json", nil,
      '{"jobRuns":[{"id":"r","start_time":"2024-09-02T09:00:00Z","end_time":null,"workspace_id":"w",' ..
      '"project_id":"p","job_id":"j","created_at":"x","updated_at":"y","type":"MANUAL","status":"SUCCESS",' ..
      '"payloads":1,"successful_runs":1,"failed_runs":0,"job_configuration_snapshot":{"configuration":{}}}],' ..
      '"totalCount":1}'))
    assert.are.equal(1, #runs)
    assert.are.equal("JobRun", require("intuned").type(runs[1]))
    assert.are.equal("j", runs[1].jobId)
    assert.are.equal(1, runs.totalCount)
  end)
end)

-- The retry rules as the call machine applies them (spec/helpers/machine.lua
-- scripts its exchanges; tests/test_call.c has the full table).
local machine = require "spec.helpers.machine"

describe("retry decisions", function()
  local decide = machine.decide

  it("honours Retry-After as the minimum delay", function()
    assert.is_true(decide(nil, "jobs:get", 1, { status = 429, retry_after = "1.5" }) >= 1.5)
  end)

  it("never repeats a create or trigger that may have been processed", function()
    for _, op in ipairs({ "jobs:create", "jobs:trigger" }) do
      for _, st in ipairs({ 500, 502, 504 }) do
        assert.is_nil(decide(nil, op, 1, { status = st }), op .. " " .. st)
      end
      assert.is_nil(decide(nil, op, 1, { failure = "connection", sent = true }))
      assert.is_number(decide(nil, op, 1, { failure = "connection", sent = false }))
      assert.is_number(decide(nil, op, 1, { status = 429 }))
      assert.is_nil(decide(nil, op, 1, { status = 503 }))
      assert.are.equal(2, decide(nil, op, 1, { status = 503, retry_after = "2" }))
    end
  end)

  it("retries idempotent operations with backoff, and not when disabled", function()
    local p = { initial_delay = 1, multiplier = 2, jitter = 0, max_attempts = 5 }
    assert.are.equal(1, decide(p, "jobs:get", 1, { status = 503 }))
    assert.are.equal(4, decide(p, "jobs:get", 3, { failure = "timeout" }))
    assert.is_nil(decide(p, "jobs:get", 5, { failure = "timeout" }))
    assert.is_nil(decide(false, "jobs:get", 1, { failure = "timeout" }))
    assert.is_nil(decide(p, "jobs:get", 1, { status = 500 }))
  end)
end)

describe("reconciliation and redaction", function()
  local input = { id = "nightly-01", payload = { { apiName = "scrape", parameters = { a = 1 } } },
                  configuration = { runMode = "Order-Irrelevant", retry = { maximumAttempts = 2, initialInterval = "2s" } } }
  local function job(over)
    local t = { id = "nightly-01", payload = { { apiName = "scrape", parameters = { a = 1 } } },
                configuration = { runMode = "Order-Irrelevant", retry = { maximumAttempts = 2, initialInterval = 2000 } },
                state = { status = "ACTIVE" }, projectId = "p", next_run_time = cjson.null, last_run_time = cjson.null }
    for k, v in pairs(over or {}) do t[k] = v end
    return cjson.encode(t)
  end

  -- A create answered 429, retried, answered 409: the machine fetches the
  -- stored job and compares it with what it sent.
  local function reconcile(stored, sent)
    local m = assert(core.call_machine(machine.CFG, "jobs:create", { project = "p", input = sent or input },
      { retry = { initial_delay = 0, jitter = 0 }, deadline = false }, 1, 0))
    assert.equals("send", (m:next(0)))
    machine.feed(m, 0, { status = 429, retry_after = "0" })
    local what = m:next(0)
    if what == "wait" then what = m:next(0) end -- no wait at all for a delay of 0
    assert.equals("send", what)
    machine.feed(m, 0, { status = 409, body = '{"message":"exists"}' })
    local again, req = m:next(0)
    assert.equals("send", again)
    assert.equals("GET", req.method)
    assert.matches("/jobs/nightly%-01$", req.url)
    machine.feed(m, 0, { status = 200, body = stored })
    assert.equals("done", (m:next(0)))
    return m:result()
  end

  it("a retried create met by 409 is a success when the stored job is the one sent", function()
    assert.truthy(reconcile(job()))
    assert.truthy(reconcile(job(), require("intuned").JobInput.new(input)))
    local _, err = reconcile(job({ payload = { { apiName = "other" } } }))
    assert.equals("conflict", err.kind)
    _, err = reconcile(job({ configuration = { runMode = "Order-Irrelevant",
      retry = { maximumAttempts = 2, initialInterval = 3000 } } }))
    assert.equals("conflict", err.kind)
  end)

  it("hook events hide secret headers", function()
    local m = assert(core.call_machine(machine.CFG, "jobs:get", machine.args("jobs:get"),
      { headers = { Authorization = "Bearer t0ken-1234", Accept = "application/json" } }, 1, 0))
    local _, req = m:next(0)
    local sent = {}
    for _, h in ipairs(req.headers) do sent[h[1]:lower()] = h[2] end
    assert.equals("machine-key", sent["x-api-key"]) -- the wire has them
    local h = m:events()[1].headers
    assert.same({ "***", "***", "application/json" }, { h["x-api-key"], h.authorization, h.accept })
  end)
end)
