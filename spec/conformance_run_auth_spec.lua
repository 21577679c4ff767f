-- Conformance replay of the Run API and Auth Sessions: every case recorded
-- from the newest official SDK in spec/fixtures/conformance-run-auth is
-- rebuilt with core.build_request and compared with what went over the wire
-- (method, path, headers, body), and its recorded response is fed to
-- core.parse_response and compared with the SDK's typed result, or, for a
-- case recorded with `expect_error`, with the SDK's error.  No network.
local core = require "intuned.core"
local intuned = require "intuned"
local cjson = require "cjson"

local dir = "spec/fixtures/conformance-run-auth"

local conf = require "spec.helpers.conformance"
local read, same_json, diff = conf.read, conf.same_json, conf.diff
local function list_cases() return conf.list_cases(dir) end

-- The SDK's operation names (call.op) -> this library's.
local OPS = {
  ["run:start"] = "runs:start",
  ["run:result"] = "runs:result",
  ["authSessions:list"] = "auth_sessions:list",
  ["authSessions:get"] = "auth_sessions:get",
  ["authSessions:delete"] = "auth_sessions:delete",
  ["authSessions.create:start"] = "auth_sessions:create",
  ["authSessions.create:result"] = "auth_sessions:create_result",
  ["authSessions.update:start"] = "auth_sessions:update",
  ["authSessions.update:result"] = "auth_sessions:update_result",
  ["authSessions.validate:start"] = "auth_sessions:validate",
  ["authSessions.validate:result"] = "auth_sessions:validate_result",
}

-- Every key of the wire value `w` is in `t` with the same value (t may
-- hold more: the defaults the SDK fills in on decode, e.g. retirable).
local function kept(w, t, path)
  if type(w) ~= "table" or w == cjson.null then
    if same_json(w, t) then return nil end
    return ("%s: wire %s, kept %s"):format(path, tostring(w), tostring(t))
  end
  if type(t) ~= "table" then return path .. ": not kept" end
  for k, v in pairs(w) do
    local d = kept(v, t[k], path .. "." .. tostring(k))
    if d then return d end
  end
  return nil
end

local cases = list_cases()

-- cjson decodes [] and {} alike: whether the recorded body is an empty array.
local function raw_empty_array(file)
  return read(dir .. "/" .. file):find('"body":%s*%[%s*%]') ~= nil
end

local function case_args(call)
  local args = { project = call.project, run_id = call.run_id, auth_session_id = call.auth_session_id,
                 operation_id = call.operation_id }
  if call.input ~= nil and call.input ~= cjson.null then args.input = call.input end
  return args
end

describe("conformance replay of " .. dir, function()
  it("finds the recorded cases, each of a known operation", function()
    assert.is_true(#cases >= 25, "expected at least 25 cases in " .. dir)
    local seen = {}
    for _, file in ipairs(cases) do
      local case = cjson.decode(read(dir .. "/" .. file))
      assert.is_string(OPS[case.call.op], file .. ": " .. tostring(case.call.op))
      seen[OPS[case.call.op]] = true
    end
    -- every operation of the Run API and Auth Sessions has a recorded case
    for _, name in pairs(OPS) do assert.is_true(seen[name], name) end
  end)

  for _, file in ipairs(cases) do
    local case = cjson.decode(read(dir .. "/" .. file))
    local call, ex = case.call, case.expect_request
    local op = OPS[call.op]
    local xerr = case.expect_error ~= cjson.null and case.expect_error or nil

    describe(case.name, function()
      local base = "http://127.0.0.1:1" .. (case.server_base_path or "/api/v1/workspace")
      local cfg = { server_url = base .. "/", workspace_id = call.workspace_id, api_key = call.api_key }
      local args = case_args(call)

      if ex == cjson.null or ex == nil then
        it("refuses the input before sending, as the SDK did", function()
          local req, err = core.build_request(cfg, op, args)
          assert.is_nil(req)
          assert.are.equal("validation", err.kind)
        end)
        return
      end

      it("sends the request the SDK sent", function()
        local req, err = core.build_request(cfg, op, args)
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
          assert.is_true(same_json(ex.body_json, cjson.decode(req.body)), "body differs: " .. tostring(req.body))
          assert.is_nil(req.body:find("\n"), "body must be compact")
          -- and in the SDK's key order (schema order)
          local order, last = {}, 0
          for k in pairs(ex.body_json) do order[#order + 1] = k end
          table.sort(order, function(a, b) return req.body:find('"' .. a .. '":', 1, true)
            < req.body:find('"' .. b .. '":', 1, true) end)
          for _, k in ipairs(order) do
            local at = req.body:find('"' .. k .. '":', 1, true)
            assert.truthy(at > last)
            last = at
          end
        end
      end)

      if args.input then
        it("accepts the same input as a typed object", function()
          local T = intuned[core.operations[op].body_type]
          local obj = assert(T.new(args.input))
          local r1 = assert(core.build_request(cfg, op, args))
          local a2 = case_args(call)
          a2.input = obj
          local r2 = assert(core.build_request(cfg, op, a2))
          assert.are.equal(r1.body, r2.body)
        end)
      end

      it(xerr and "returns the error the SDK raised" or "returns the result the SDK returned", function()
        local resp = case.response
        local body = resp.body
        local text
        if type(body) == "string" then text = body
        elseif type(body) == "table" and next(body) == nil and raw_empty_array(file) then text = "[]"
        elseif body ~= nil and body ~= cjson.null then text = cjson.encode(body) end
        local ct = resp.content_type ~= cjson.null and resp.content_type or nil
        local res, err = core.parse_response(op, resp.status, ct, nil, text)
        if xerr then
          if xerr.class == "ResponseValidationError" and res then
            -- decisions of this library (open enums, optional member keys):
            -- what the SDK refuses is kept, its status as sent
            assert.are.equal(body.status, res.status)
            return
          end
          assert.is_nil(res)
          assert.truthy(intuned.is_error(err))
          if xerr.status_code ~= nil and xerr.status_code ~= cjson.null then
            assert.are.equal(xerr.status_code, err.status)
          end
          if xerr.class == "ResponseValidationError" then assert.are.equal("decode", err.kind) end
          return
        end
        assert.is_nil(err and tostring(err))
        if case.expect_result == cjson.null then
          assert.are.equal(true, res)
          return
        end
        assert.is_nil(diff(res, case.expect_result, "result"))
        -- every field the server sent is kept (wire names)
        if type(res) == "table" then
          assert.are.equal(#body, #res)
          for i, item in ipairs(res) do assert.is_nil(kept(body[i], item:to_table(), "[" .. i .. "]")) end
        else
          assert.is_nil(kept(body, res:to_table(), "result"))
        end
      end)
    end)
  end
end)

describe("Run API and Auth Sessions requests", function()
  local cfg = { workspace_id = "team a/b", api_key = "k", server_url = "https://h/api/v1/workspace" }

  it("percent-encodes every path part like encodeURIComponent (the reference's example)", function()
    local r = assert(core.build_request(cfg, "auth_sessions:validate_result",
      { project = "shop/EU & UK", auth_session_id = "login#2", operation_id = "op 3+4" }))
    assert.are.equal("/team%20a%2Fb/projects/shop%2FEU%20%26%20UK/auth-sessions/login%232/validate/op%203%2B4/result",
      r.path)
  end)

  it("refuses empty and dot-segment path parameters, naming them", function()
    for _, bad in ipairs{ "", ".", ".." } do
      local r, err = core.build_request(cfg, "runs:result", { project = "p", run_id = bad })
      assert.is_nil(r)
      assert.are.equal("run_id", err.path)
      r, err = core.build_request(cfg, "auth_sessions:update_result", { project = "p", auth_session_id = "a",
        operation_id = bad })
      assert.is_nil(r)
      assert.are.equal("operation_id", err.path)
      r, err = core.build_request(cfg, "auth_sessions:get", { project = "p", authSessionId = bad })
      assert.is_nil(r)
      assert.are.equal("auth_session_id", err.path)
    end
  end)

  it("fills the SDK's defaults in schema order (run with an auth session, a retry and a sink)", function()
    local r = assert(core.build_request(cfg, "runs:start", { project = "p", input = {
      api = "a/b", parameters = {}, retry = {}, sink = { type = "webhook", url = "https://example.com/h" },
      authSession = { id = "auth-session-123", autoRecreate = false }, proxy = core.null } }))
    assert.are.equal('{"parameters":{},"proxy":null,"saveTrace":true,"requestTimeout":600,'
      .. '"retry":{"maximumAttempts":3},"authSession":{"id":"auth-session-123","autoRecreate":false,'
      .. '"checkAttempts":3,"createAttempts":3,"requestTimeout":600},'
      .. '"sink":{"type":"webhook","url":"https://example.com/h","skipOnFail":false},"api":"a/b"}', r.body)
  end)

  it("refuses what the SDK refuses, and the traps it lets through, naming the field", function()
    local function refused(input, path, op)
      local r, err = core.build_request(cfg, op or "runs:start", { project = "p", auth_session_id = "a", input = input })
      assert.is_nil(r, path)
      assert.are.equal("validation", err.kind)
      assert.are.equal(path, err.path)
      return err
    end
    refused({ parameters = {} }, "api")
    refused({ api = "a" }, "parameters")
    refused({ api = "a", parameters = { 1, 2 } }, "parameters")
    refused({ api = "a", parameters = {}, requestTimeout = 1.5 }, "requestTimeout")
    refused({ api = "a", parameters = {}, requestTimeout = -1 }, "requestTimeout")
    refused({ api = "a", parameters = {}, sink = { type = "ftp" } }, "sink.type")
    refused({ api = "a", parameters = {}, sink = { type = "webhook", url = "https://e.com", headers = { x = 1 } } },
      "sink.headers.x")
    refused({ api = "a", parameters = {}, authSession = {} }, "authSession.id")
    -- the SDK would silently take these as the credentials member, dropping runtimeInput
    refused({ api = "a", parameters = {}, authSession = { id = "x", runtimeInput = "text" } },
      "authSession.runtimeInput")
    refused({ api = "a", parameters = {}, authSession = { id = "x", runtimeInput = core.null } },
      "authSession.runtimeInput")
    refused({ api = "a", parameters = {}, authSession = { runtimeInput = {}, checkAttempts = 2.5 } },
      "authSession.checkAttempts")
    refused({ api = "a", parameters = {}, colour = "red" }, "colour")
    refused({ id = "x" }, "parameters", "auth_sessions:create")
    refused({ parameters = {}, id = "x" }, "id", "auth_sessions:update")
    refused({ parameters = {} }, "parameters", "auth_sessions:validate")
    refused({ createAttempts = 1.5 }, "createAttempts", "auth_sessions:validate")
  end)

  it("takes a runtime auth session without an id, and the credentials member by id", function()
    local run = assert(intuned.RunStartInput.new{ api = "a", parameters = {},
      authSession = { runtimeInput = { username = "u" } } })
    assert.are.equal("RuntimeAuthSessionInput", intuned.type(run.authSession))
    run = assert(intuned.RunStartInput.new{ api = "a", parameters = {}, authSession = { id = "s" } })
    assert.are.equal("CredentialsAuthSessionInput", intuned.type(run.authSession))
  end)

  it("warns on a count or timeout below 1, and sends it", function()
    local run = assert(intuned.RunStartInput.new{ api = "a", parameters = {}, requestTimeout = 0 })
    local w = run:warnings()
    assert.are.equal(1, #w)
    assert.truthy(tostring(w[1]):find("requestTimeout", 1, true))
    local r = assert(core.build_request(cfg, "runs:start", { project = "p", input = run }))
    assert.truthy(r.body:find('"requestTimeout":0', 1, true))
  end)

  it("sends Accept: */* on delete only, and no body on the GETs and the DELETE", function()
    for _, name in ipairs(core.operations) do
      local row = core.operations[name]
      if row.group == "runs" or row.group == "auth_sessions" then
        local args = { project = "p", run_id = "r", auth_session_id = "a", operation_id = "o" }
        if row.body_type == "RunStartInput" then args.input = { api = "a", parameters = {} }
        elseif row.body_type == "AuthSessionValidateInput" then args.input = {}
        elseif row.body_type then args.input = { parameters = {} } end
        local r = assert(core.build_request(cfg, name, args))
        assert.are.equal(name == "auth_sessions:delete" and "*/*" or "application/json", r.headers.accept)
        assert.are.equal(r.headers.accept, row.accept)
        assert.are.equal(row.method == "POST", r.body ~= nil, name)
        assert.are.equal(row.method ~= "POST", row.idempotent, name)
      end
    end
  end)
end)

describe("Run API and Auth Sessions responses", function()
  local function parse(op, status, body, ct)
    return core.parse_response(op, status, ct or "application/json", nil, body)
  end

  it("keeps unknown statuses, codes, categories and types (open enums)", function()
    local r = assert(parse("runs:result", 200, '{"runId":"r","status":"running","error":{"message":"m",'
      .. '"category":"cosmic","code":"new-code"},"reason":{"type":"new-reason","message":"x"}}'))
    assert.are.equal("running", r.status)
    assert.are.equal("cosmic", r.error.category)
    assert.are.equal("new-code", r.error.code)
    assert.are.equal("new-reason", r.reason.type)
    local s = assert(parse("auth_sessions:get", 200, '{"id":"a","type":"PASSKEY","status":"LOCKED"}'))
    assert.are.equal("PASSKEY", s.type)
    assert.are.equal("LOCKED", s.status)
  end)

  it("takes started and pending from every start", function()
    for _, op in ipairs{ "auth_sessions:create", "auth_sessions:update", "auth_sessions:validate" } do
      for _, st in ipairs{ "started", "pending" } do
        local r = assert(parse(op, 201, '{"status":"' .. st .. '","operationId":"o"}'))
        assert.are.equal(st, r.status)
        assert.are.equal("o", r.operationId)
      end
    end
  end)

  it("reads correlationId as well as correlation_id, and doc_url as docUrl", function()
    local r = assert(parse("runs:result", 200, '{"runId":"r","status":"failed","error":{"message":"m",'
      .. '"category":"user","correlationId":"c1","doc_url":"https://d"}}'))
    assert.are.equal("c1", r.error.correlation_id)
    assert.are.equal("c1", r.error.correlationId)
    assert.are.equal("https://d", r.error.docUrl)
    assert.is_false(r.error.retirable) -- the SDK's decode default
    r = assert(parse("auth_sessions:create_result", 200, '{"status":"failed","message":"m","error":{"message":"e",'
      .. '"category":"auth","correlation_id":"c2"}}'))
    assert.are.equal("c2", r.error.correlationId)
  end)

  it("decodes the v0.3.12 shapes too", function()
    local r = assert(parse("runs:result", 200,
      '{"error":"SOME_CODE","message":"boom","status":"failed","statusCode":500,"runId":"r"}'))
    assert.are.equal("SOME_CODE", r.error.code)
    assert.are.equal(500, r.statusCode)
    assert.are.equal("boom", r.message)
    r = assert(parse("runs:result", 200, '{"result":null,"status":"completed","statusCode":200,"runId":"r"}'))
    assert.is_nil(r.result)
    assert.truthy(r:to_json():find('"result":null', 1, true)) -- a null result stays null
    local s = assert(parse("auth_sessions:list", 200, '[{"id":"a","status":"READY"}]'))
    assert.are.equal(1, #s)
    assert.is_nil(s[1].type)
    local op = assert(parse("auth_sessions:create_result", 200,
      '{"status":"requested_more_info","id":"i1","details":{"requestType":"otp","action":"request_more_info",'
      .. '"messageToUser":"Code?"}}'))
    assert.are.equal("requested_more_info", op.status)
    assert.are.equal("i1", op.id)
    assert.are.equal("otp", op.details.requestType)
    op = assert(parse("auth_sessions:create_result", 200, '{"status":"failed","error":"BAD_LOGIN","message":"no"}'))
    assert.are.equal("BAD_LOGIN", op.error.code)
  end)

  it("reports a malformed or empty success body as a decode error", function()
    for _, body in ipairs{ "", "{", "[]", '{"status":"pending"}' } do
      local r, err = parse("runs:result", 200, body)
      assert.is_nil(r, body)
      assert.are.equal("decode", err.kind, body)
    end
    local r, err = parse("auth_sessions:get", 200, "{}", "text/plain")
    assert.is_nil(r)
    assert.are.equal("decode", err.kind)
  end)

  it("gives every 4xx and 5xx as an error with its status and body, any other 2xx too", function()
    local r, err = parse("runs:result", 404, '{"code":"not-found","message":"Run not found"}')
    assert.is_nil(r)
    assert.are.equal("not_found", err.kind)
    assert.are.equal(404, err.status)
    assert.are.equal("Run not found", err.message)
    r, err = parse("auth_sessions:delete", 500, "oops", "text/plain")
    assert.is_nil(r)
    assert.are.equal("server", err.kind)
    assert.are.equal("oops", err.body)
    r, err = parse("runs:start", 200, '{"runId":"r","status":"pending"}')
    assert.is_nil(r)
    assert.are.equal("api", err.kind)
    assert.are.equal(true, parse("auth_sessions:delete", 204, nil, "text/html"))
  end)
end)
