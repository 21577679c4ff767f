-- The client option api_version: which create body jobs:create sends
-- ("v0.3.12": JobInput, the default; "newest": JobInputNewest), the one Lua
-- table that serves both, the refusals that name a field's version, and the
-- value ranges both input forms check.  The bytes are read where each path
-- builds them: core.build_request, the call machine the nginx transport
-- drives (core.call_machine), the hook's request event, and over libcurl from
-- a loopback server that echoes the body it received.
local intuned = require "intuned"
local core = require "intuned.core"
local echo_server = require "spec.helpers.echo"

local CFG = { server_url = "http://127.0.0.1:1/api/v1/workspace", workspace_id = "ws-1", api_key = "key-apiv-1" }

local function cfg(version)
  local t = {}
  for k, v in pairs(CFG) do t[k] = v end
  t.api_version = version
  return t
end

-- One table shaped as a v0.3.12 user writes it; both modes take it.
local function common_input()
  return {
    id = "job-apiv-1",
    payload = { { apiName = "catalog/list", parameters = { page = 1 } }, { apiName = "catalog/ping" } },
    authSession = { id = "as-1" },
    schedule = { calendars = { { hour = { start = 8, ["end"] = 18, step = 2 }, minute = 30 } } },
    sink = { type = "webhook", url = "https://hooks.example.test/in" },
    configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2 },
  }
end

local V0312_BODY = '{"id":"job-apiv-1","sink":{"type":"webhook","url":"https://hooks.example.test/in","skipOnFail":false},'
  .. '"payload":[{"apiName":"catalog/list","parameters":{"page":1}},{"apiName":"catalog/ping"}],'
  .. '"schedule":{"calendars":[{"minute":30,"hour":{"start":8,"end":18,"step":2}}]},"authSession":{"id":"as-1"},'
  .. '"configuration":{"runMode":"Order-Irrelevant","maxConcurrentRequests":2}}'

local NEWEST_BODY = '{"id":"job-apiv-1","payload":[{"parameters":{"page":1},"requestTimeout":600,"apiName":"catalog/list"},'
  .. '{"parameters":{},"requestTimeout":600,"apiName":"catalog/ping"}],'
  .. '"configuration":{"maxConcurrentRequests":2,"requestTimeout":600},'
  .. '"schedule":{"calendars":[{"minute":30,"hour":{"start":8,"end":18,"step":2}}]},'
  .. '"sink":{"type":"webhook","url":"https://hooks.example.test/in","skipOnFail":false},'
  .. '"auth_session":{"id":"as-1","checkAttempts":3,"createAttempts":3}}'

-- A client whose every call fails at once (nothing listens on port 1) and
-- whose hook keeps the request events.
local function offline_client(version, events)
  return intuned.client{ server_url = CFG.server_url, workspace_id = CFG.workspace_id, api_key = CFG.api_key,
                         api_version = version, retry = false, transport = "curl",
                         hook = function(ev) if ev.event == "request" then events[#events + 1] = ev end end }
end

local function expect_refused(res, err, path, fragment)
  assert.is_nil(res)
  assert.truthy(intuned.is_error(err), tostring(err))
  assert.are.equal("validation", err.kind, tostring(err))
  assert.are.equal(path, err.path, tostring(err))
  assert.truthy(err.message:find(fragment, 1, true), err.message)
end

describe("client option api_version", function()
  it("takes the two versions under either spelling, and defaults to v0.3.12", function()
    for _, v in ipairs{ "v0.3.12", "0.3.12", "newest", "v0.5.2" } do
      assert.truthy(intuned.client{ workspace_id = "w", api_key = "k", api_version = v })
    end
    assert.truthy(intuned.client{ workspace_id = "w", api_key = "k" })
  end)

  it("raises for another value, naming the allowed ones, and suggests the name when misspelt", function()
    for _, v in ipairs{ "0.4", "v0.5", 5, true } do
      local ok, msg = pcall(intuned.client, { workspace_id = "w", api_key = "k", api_version = v })
      assert.is_false(ok)
      assert.truthy(msg:find([[option 'api_version' must be "v0.3.12" (the default; also "0.3.12") or "newest" (also "v0.5.2")]],
        1, true), msg)
    end
    local ok, msg = pcall(intuned.client, { workspace_id = "w", api_key = "k", api_versoin = "newest" })
    assert.is_false(ok)
    assert.truthy(msg:find("did you mean 'api_version'", 1, true), msg)
  end)

  it("is one row of the operation table: create names both body models", function()
    local row = core.operations["jobs:create"]
    assert.are.equal("JobInput", row.body_type)
    assert.are.equal("JobInputNewest", row.body_type_newest)
    assert.are.equal("JobUpdateInput", core.operations["jobs:update"].body_type_newest)
    assert.is_nil(core.operations["jobs:get"].body_type_newest)
  end)
end)

describe("create bodies by api_version", function()
  it("v0.3.12 (the default) sends the JobInput bytes", function()
    for _, v in ipairs{ nil, "v0.3.12", "0.3.12" } do
      local r = assert(core.build_request(cfg(v), "jobs:create", { project = "p", input = common_input() }))
      assert.are.equal(V0312_BODY, r.body)
    end
  end)

  it("newest sends the JobInputNewest bytes, keys in the SDK's order, from the same table via the client", function()
    local events = {}
    local c = offline_client("newest", events)
    local _, err = c.jobs:create("p", common_input())
    assert.are.equal("connection", err.kind) -- it was sent (nothing listens)
    assert.are.equal(1, #events)
    assert.are.equal(NEWEST_BODY, events[1].body)
    events = {}
    _, err = offline_client("v0.3.12", events).jobs:create("p", common_input())
    assert.are.equal("connection", err.kind)
    assert.are.equal(V0312_BODY, events[1].body)
  end)

  it("the core picks the model by the version: the machine of the nginx transport sends the same bytes", function()
    local conv = require "intuned.convert"
    local input = conv.create_body_newest(common_input())
    local m = assert(core.call_machine(cfg("newest"), "jobs:create", { project = "p", input = input },
                                       { retry = false, deadline = false }, 1, 0))
    local what, req = m:next(0)
    assert.are.equal("send", what)
    assert.are.equal(NEWEST_BODY, req.body)
    local r = assert(core.build_request(cfg("v0.5.2"), "jobs:create", { project = "p", input = input }))
    assert.are.equal(NEWEST_BODY, r.body)
  end)

  it("the wire over libcurl carries those bytes (a loopback server echoes the body it got)", function()
    local e = echo_server.start()
    finally(function() echo_server.stop(e) end)
    for version, want in pairs{ ["v0.3.12"] = V0312_BODY, newest = NEWEST_BODY } do
      local c = intuned.client{ server_url = e.url, workspace_id = "ws-1", api_key = "key-apiv-echo",
                                api_version = version, retry = false, transport = "curl" }
      local _, err = c.jobs:create("p", common_input())
      assert.are.equal("invalid_input", err.kind, tostring(err))
      assert.are.equal(want, err.details.raw)
      c:close()
    end
  end)

  it("batch entries are mapped like method calls", function()
    local events = {}
    local c = offline_client("newest", events)
    local out = c:batch{ { op = "jobs:create", project = "p", input = common_input() } }
    assert.are.equal("connection", out[1].kind)
    assert.are.equal(NEWEST_BODY, events[1].body)
  end)

  it("newest takes the newest-only fields; the caller's table is left as it was", function()
    local t = common_input()
    t.authSession = nil
    t.auth_session = { id = "as-2", checkAttempts = 5 }
    t.proxy = "http://proxy.example.test:3128"
    t.payload[1].requestTimeout = 30
    t.payload[1].retry = { maximumAttempts = 2 }
    t.configuration.retry = { maximumAttempts = 4 }
    t.schedule.jitter = "5m"
    t.sink.apisToSend = { "catalog/list" }
    local before = t.configuration.runMode
    local r = assert(core.build_request(cfg("newest"), "jobs:create",
      { project = "p", input = require("intuned.convert").create_body_newest(t) }))
    assert.are.equal("Order-Irrelevant", before)
    assert.are.equal("Order-Irrelevant", t.configuration.runMode)
    assert.is_nil(t.payload[2].parameters)
    assert.truthy(r.body:find('"payload":[{"parameters":{"page":1},"requestTimeout":30,"retry":{"maximumAttempts":2},'
      .. '"apiName":"catalog/list"}', 1, true), r.body)
    assert.truthy(r.body:find('"configuration":{"retry":{"maximumAttempts":4},"maxConcurrentRequests":2,"requestTimeout":600}',
      1, true), r.body)
    assert.truthy(r.body:find('"schedule":{"jitter":"5m",', 1, true), r.body)
    assert.truthy(r.body:find('"apisToSend":["catalog/list"]', 1, true), r.body)
    local tail = '"proxy":"http://proxy.example.test:3128","auth_session":{"id":"as-2","checkAttempts":5,"createAttempts":3}}'
    assert.are.equal(tail, r.body:sub(-#tail))
  end)

  it("an intuned.JobInputNewest object is sent as it is by a newest client, refused by a v0.3.12 one", function()
    local obj = assert(intuned.JobInputNewest.new(require("intuned.convert").create_body_newest(common_input())))
    local events = {}
    local _, err = offline_client("newest", events).jobs:create("p", obj)
    assert.are.equal("connection", err.kind)
    assert.are.equal(NEWEST_BODY, events[1].body)
    events = {}
    local res
    res, err = offline_client("v0.3.12", events).jobs:create("p", obj)
    assert.is_nil(res)
    assert.are.equal("validation", err.kind)
    assert.truthy(err.message:find("intuned.JobInput", 1, true), err.message)
    assert.are.equal(0, #events)
  end)

  it("a newest client converts an intuned.JobInput object (intuned.apply passes them), refusing what it cannot carry", function()
    local events = {}
    local _, err = offline_client("newest", events).jobs:create("p", assert(intuned.JobInput.new(common_input())))
    assert.are.equal("connection", err.kind, tostring(err))
    assert.are.equal(NEWEST_BODY, events[1].body)
    local t = common_input()
    t.configuration.retry = { maximumAttempts = 2, backoffCoefficient = 3 }
    events = {}
    local res
    res, err = offline_client("newest", events).jobs:create("p", assert(intuned.JobInput.new(t)))
    expect_refused(res, err, "configuration.retry.backoffCoefficient", "only in API v0.3.12")
    assert.are.equal(0, #events)
  end)
end)

describe("fields of one version refused by the other, with path and version", function()
  local cases_v0312 = {
    { "configuration.requestTimeout", function(t) t.configuration.requestTimeout = 60 end },
    { "payload[1].requestTimeout", function(t) t.payload[1].requestTimeout = 60 end },
    { "payload[2].retry", function(t) t.payload[2].retry = { maximumAttempts = 2 } end },
    { "proxy", function(t) t.proxy = "http://p.example.test" end },
    { "auth_session", function(t) t.authSession = nil; t.auth_session = { id = "a" } end },
    { "authSession.checkAttempts", function(t) t.authSession.checkAttempts = 3 end },
    { "schedule.jitter", function(t) t.schedule.jitter = "1m" end },
    { "sink.apisToSend", function(t) t.sink.apisToSend = { "a" } end },
  }
  for _, case in ipairs(cases_v0312) do
    it("v0.3.12 refuses " .. case[1] .. " as a newest-API field (no hint naming the same field)", function()
      local t = common_input()
      case[2](t)
      local events = {}
      local res, err = offline_client("v0.3.12", events).jobs:create("p", t)
      expect_refused(res, err, case[1], 'only in the newest API (api_version = "newest")')
      assert.is_nil(err.message:find("did you mean", 1, true))
      assert.are.equal(0, #events) -- nothing sent
    end)
  end

  local cases_newest = {
    { "configuration.retry.initialInterval", function(t) t.configuration.retry = { maximumAttempts = 2, initialInterval = "1s" } end },
    { "configuration.retry.backoffCoefficient", function(t) t.configuration.retry = { maximumAttempts = 2, backoffCoefficient = 2 } end },
    { "configuration.retry.maximumInterval", function(t) t.configuration.retry = { maximumAttempts = 2, maximumInterval = "1m" } end },
    { "configuration.runMode", function(t) t.configuration.runMode = "Sequential" end },
  }
  for _, case in ipairs(cases_newest) do
    it("newest refuses " .. case[1] .. " as a v0.3.12 field", function()
      local t = common_input()
      case[2](t)
      local events = {}
      local res, err = offline_client("newest", events).jobs:create("p", t)
      expect_refused(res, err, case[1], "only in API v0.3.12")
      assert.are.equal(0, #events)
    end)
  end

  it("newest refuses an array of parameters and both spellings of the auth session, saying why", function()
    local t = common_input()
    t.payload[1].parameters = { "a", "b" }
    local res, err = offline_client("newest", {}).jobs:create("p", t)
    expect_refused(res, err, "payload[1].parameters", "only in API v0.3.12")
    t = common_input()
    t.auth_session = { id = "as-2" }
    res, err = offline_client("newest", {}).jobs:create("p", t)
    expect_refused(res, err, "authSession", "only in API v0.3.12")
  end)
end)

describe("value ranges of the input forms", function()
  local both = {
    { "schedule.calendars[1].hour", function(t) t.schedule.calendars[1].hour = 24 end, "from 0 to 23, got 24" },
    { "schedule.calendars[1].minute", function(t) t.schedule.calendars[1].minute = -1 end, "from 0 to 59" },
    { "schedule.calendars[1].second", function(t) t.schedule.calendars[1].second = 1.5 end, "whole number from 0 to 59" },
    { "schedule.calendars[1].dayOfMonth", function(t) t.schedule.calendars[1].dayOfMonth = 0 end, "from 1 to 31" },
    -- the newest API takes names only there (its own message)
    { "schedule.calendars[1].dayOfWeek", function(t) t.schedule.calendars[1].dayOfWeek = 7 end, "from 0 to 6",
      "day name (SUNDAY ... SATURDAY) in the newest API, got 7" },
    { "schedule.calendars[1].month", function(t) t.schedule.calendars[1].month = 13 end, "from 1 to 12",
      "month name (JANUARY ... DECEMBER) in the newest API, got 13" },
    { "schedule.calendars[1].hour.end", function(t) t.schedule.calendars[1].hour["end"] = 25 end, "from 0 to 23, got 25" },
    { "schedule.calendars[1].hour.start", function(t) t.schedule.calendars[1].hour.start = -2 end, "from 0 to 23" },
    { "schedule.calendars[1].hour.step", function(t) t.schedule.calendars[1].hour.step = 0 end, "whole number >= 1, got 0" },
    { "schedule.calendars[1].month[2].start",
      function(t) t.schedule.calendars[1].month = { { start = 1 }, { start = 14 } } end, "from 1 to 12, got 14",
      "got 1", "schedule.calendars[1].month[1].start" },
    { "configuration.retry.maximumAttempts",
      function(t) t.configuration.retry = { maximumAttempts = 0 } end, "whole number >= 1, got 0" },
    { "sink.url", function(t) t.sink.url = "ftp://hooks.example.test/x" end, "absolute http:// or https:// URL" },
    { "sink.url", function(t) t.sink.url = "https://" end, "with a host" },
    { "sink.url", function(t) t.sink.url = "/relative/hook" end, "absolute" },
    { "payload", function(t) t.payload = {} end, "must not be empty" },
  }
  for _, version in ipairs{ "v0.3.12", "newest" } do
    for _, case in ipairs(both) do
      local path, msg = case[1], case[3]
      if version == "newest" then path, msg = case[5] or path, case[4] or msg end
      it(version .. " refuses " .. path .. " (" .. msg .. ")", function()
        local t = common_input()
        case[2](t)
        local events = {}
        local res, err = offline_client(version, events).jobs:create("p", t)
        expect_refused(res, err, path, msg)
        assert.are.equal(0, #events)
      end)
    end
  end

  local newest_only = {
    { "payload[1].requestTimeout", function(t) t.payload[1].requestTimeout = 0 end, "whole number >= 1, got 0" },
    { "configuration.requestTimeout", function(t) t.configuration.requestTimeout = 2.5 end, "integer" },
    { "payload[2].retry.maximumAttempts", function(t) t.payload[2].retry = { maximumAttempts = -1 } end, ">= 1" },
    { "auth_session.checkAttempts", function(t) t.authSession.checkAttempts = 0 end, "whole number >= 1" },
    { "auth_session.createAttempts", function(t) t.authSession.createAttempts = 0 end, "whole number >= 1" },
    { "schedule.calendars[1].minute.step",
      function(t) t.schedule.calendars[1].minute = { start = 0, step = 15 } end, 'a range with "step" must also have "end"' },
    -- the closed unions of the newest API's calendar fields; v0.3.12 passes these strings with a warning
    { "schedule.calendars[1].dayOfWeek", function(t) t.schedule.calendars[1].dayOfWeek = "MON-FRI" end,
      'expected "*" or a day name (SUNDAY ... SATURDAY) in the newest API, got "MON-FRI"' },
    { "schedule.calendars[1].minute", function(t) t.schedule.calendars[1].minute = "*/5" end,
      'expected "*" or a whole number in the newest API' },
    { "schedule.calendars[1].month.end", function(t) t.schedule.calendars[1].month = { start = "MARCH", ["end"] = 6 } end,
      "expected a month name" },
  }
  for _, case in ipairs(newest_only) do
    it("newest refuses " .. case[1] .. " (" .. case[3] .. ")", function()
      local t = common_input()
      case[2](t)
      local res, err = offline_client("newest", {}).jobs:create("p", t)
      expect_refused(res, err, case[1], case[3])
    end)
  end

  it("v0.3.12 passes cron-style strings and numbers as strings (with a warning), as its SDK does", function()
    local t = common_input()
    t.schedule.calendars[1].dayOfWeek = "MON-FRI"
    t.schedule.calendars[1].minute = "*/5"
    local r = assert(core.build_request(cfg("v0.3.12"), "jobs:create", { project = "p", input = t }))
    assert.truthy(r.body:find('"dayOfWeek":"MON-FRI"', 1, true), r.body)
  end)

  it("names and a whole array of in-range values pass; weekday and month names stay allowed", function()
    for _, version in ipairs{ "v0.3.12", "newest" } do
      local t = common_input()
      t.schedule.calendars[1].dayOfWeek = { start = "MONDAY", ["end"] = "FRIDAY" }
      t.schedule.calendars[1].month = "DECEMBER"
      t.schedule.calendars[1].second = { { start = 0, ["end"] = 59, step = 10 } }
      t.sink.url = "http://user@[::1]:8080/hook?x=1"
      local events = {}
      local _, err = offline_client(version, events).jobs:create("p", t)
      assert.are.equal("connection", err.kind, tostring(err))
      assert.are.equal(1, #events)
    end
  end)

  it("adds step 1 to ranges at v0.3.12 only", function()
    local t = common_input()
    t.schedule.calendars[1].hour = { start = 9 }
    local old = assert(core.build_request(cfg("v0.3.12"), "jobs:create", { project = "p", input = t }))
    assert.truthy(old.body:find('"hour":{"start":9,"step":1}', 1, true), old.body)
    local new = assert(core.build_request(cfg("newest"), "jobs:create",
      { project = "p", input = require("intuned.convert").create_body_newest(t) }))
    assert.truthy(new.body:find('"hour":{"start":9}', 1, true), new.body)
  end)

  it("never refuses a server's answer for these rules", function()
    local job = assert(intuned.Job.decode('{"id":"x","payload":[],"configuration":{"retry":{"maximumAttempts":0}},'
      .. '"schedule":{"calendars":[{"hour":99,"minute":{"start":0,"step":0}}]},'
      .. '"sink":{"type":"webhook","url":"not a url"},"state":"ACTIVE","projectId":"p"}'))
    assert.are.equal(99, job.schedule.calendars[1].hour)
    assert.are.equal(0, job.configuration.retry.maximumAttempts)
    assert.are.equal("not a url", job.sink.url)
  end)
end)
