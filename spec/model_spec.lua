-- The model and its codec, through the Lua binding (issue 2).
local intuned = require "intuned"
local cjson = require "cjson"
local util = require "spec.helpers.util"

local function input(over)
  local t = { id = "job-0001", payload = { { apiName = "a" } }, configuration = { runMode = "Order-Irrelevant" } }
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

local function expect_error(ok, err, path, fragment)
  assert.is_nil(ok)
  assert.is_true(intuned.is_error(err), "expected an error object")
  assert.are.equal("validation", err.kind)
  assert.are.equal(path, err.path)
  assert.truthy(err.message:find(fragment, 1, true), ("message %q lacks %q"):format(err.message, fragment))
  assert.are.equal(path .. ": " .. err.message, tostring(err))
end

describe("example documents", function()
  local cases = {
    ["job-webhook-paused.json"] = "Job", ["job-s3-active.json"] = "Job", ["jobs-list.json"] = "JobList",
    ["jobinput-minimal.json"] = "JobInput", ["jobinput-rich.json"] = "JobInput", ["jobinput-s3.json"] = "JobInput",
    ["runs-list.json"] = "JobRunList", ["error-400.json"] = "ApiErrorInvalidInput",
    ["error-401.json"] = "ApiErrorUnauthorized", ["error-404.json"] = "ApiError",
    ["sink-result-completed.json"] = "JobSinkResultPayload", ["sink-result-failed.json"] = "JobSinkResultPayload",
    ["pause-response.json"] = "PauseJob", ["trigger-response.json"] = "TriggerJob",
    ["terminate-response.json"] = "TerminateJobRun", ["create-response.json"] = "CreateJob",
  }
  for file, tname in pairs(cases) do
    it(file .. " decodes as " .. tname .. ", re-encodes equal, and survives to_table/new", function()
      local src = util.example(file)
      local obj, err = intuned[tname].decode(src)
      assert.is_nil(err)
      assert.are.equal(tname, intuned.type(obj))
      assert.is_true(util.json_equal(src, obj:to_json()))
      -- (Lua tables have no key order: compare the rebuilt one as a JSON value)
      local again = assert(intuned[tname].new(obj:to_table()))
      assert.is_true(util.json_equal(obj:to_json(), again:to_json()))
    end)
  end
end)

describe("typed access", function()
  local job = assert(intuned.Job.decode(util.example("job-webhook-paused.json")))

  it("reads every field by its wire name and nested objects and arrays", function()
    assert.are.equal("harbor-price-watch", job.id)
    assert.are.equal("PAUSED", job.state.status)
    assert.are.equal("Paused by a workspace member during a catalogue migration", job.state.reason)
    assert.are.equal(2, #job.payload)
    assert.are.equal("catalog/item-detail", job.payload[2].apiName)
    assert.are.same({ "SKU-40417", "SKU-40418" }, job.payload[2].parameters)
    assert.are.equal(4, job.payload[1].parameters.maxPages)
    assert.are.equal(1500, job.configuration.retry.initialInterval)
    assert.are.equal(300000, job.configuration.retry.maximumInterval)
    assert.are.equal("6h", job.schedule.intervals[1].every)
    local cal = job.schedule.calendars[1]
    assert.are.equal(0, cal.second)
    assert.are.equal(15, cal.minute)
    assert.are.equal(2, cal.hour.step)
    assert.are.equal("MONDAY", cal.dayOfWeek.start)
    assert.are.equal("FRIDAY", cal.dayOfWeek["end"])
    assert.are.equal("as-3c9e0b7d-harbor", job.authSession.id)
    assert.are.equal("8d0f4b62-1e7a-4c35-9a2e-5b6c7d8e9f10", job.projectId)
  end)

  it("reads dates as the verbatim strings, under wire and SDK names, with a parser beside them", function()
    assert.are.equal("2025-06-02T10:15:00.000Z", job.next_run_time)
    assert.are.equal(job.next_run_time, job.nextRunTime)
    assert.are.equal("2025-03-04T09:12:45.318Z", job.createdAt)
    assert.are.equal(1748859300, intuned.parse_time(job.nextRunTime))
    local s3 = assert(intuned.Job.decode(util.example("job-s3-active.json")))
    assert.is_nil(s3.next_run_time)
    assert.is_nil(s3.lastRunTime)
    assert.are.equal(1746996003.005, intuned.parse_time(s3.created_at), 1e-6)
    local bad, msg = intuned.parse_time("2025-05-31 08:02:40Z")
    assert.is_nil(bad)
    assert.truthy(msg:find("ISO%-8601"))
  end)

  it("keeps integers as integers and free-form key order from JSON", function()
    local j = assert(intuned.JobInput.decode(util.example("jobinput-rich.json")))
    local p = j.payload[1].parameters
    assert.are.equal(50, p.limits.perPage)
    if math.type then assert.are.equal("integer", math.type(p.limits.perPage)) end
    assert.truthy(j:to_json():find('"depot":"east-yard","includeOffline":true,"limits":{"perPage":50}', 1, true))
    assert.are.equal(intuned.null, j.payload[2].parameters[3])
  end)

  it("is read-only and names unknown fields with a suggestion", function()
    assert.has_error(function() job.id = "x" end)
    local ok, err = pcall(function() return job.nextRuntime end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("did you mean 'nextRunTime'", 1, true))
  end)

  it("gives every run field under wire and SDK names", function()
    local runs = assert(intuned.JobRunList.decode(util.example("runs-list.json")))
    local r = runs.jobRuns[1]
    assert.are.equal("run-6b1f0c2e", r.id)
    assert.are.equal(r.start_time, r.startTime)
    assert.are.equal(12, r.summary.apis_count)
    assert.are.equal(11, r.summary.successCount)
    assert.is_nil(runs.jobRuns[3].summary)
    assert.are.equal("FAILED", runs.jobRuns[3].status)
  end)
end)

describe("unions", function()
  it("tells sinks apart by type", function()
    local w = assert(intuned.JobSink.new{ type = "webhook", url = "http://x" })
    assert.are.equal("WebhookSink", intuned.type(w))
    assert.is_false(w.skipOnFail) -- default
    local s = assert(intuned.JobSink.new{ type = "s3", region = "r", bucket = "b", accessKeyId = "k",
                                          secretAccessKey = "s", prefix = "p/" })
    assert.are.equal("AmazonS3Sink", intuned.type(s))
    assert.are.equal("p/", s.prefix)
    local ok, err = intuned.JobSink.new{ type = "ftp" }
    expect_error(ok, err, "type", '"webhook" or "s3"')
  end)

  it("takes every calendar value form", function()
    local j = assert(intuned.JobInput.new(input{ schedule = { calendars = { {
      second = 0, minute = { { start = 0, ["end"] = 10, step = 5 }, { start = 45 } },
      hour = { start = 6, ["end"] = 22, step = 4 }, dayOfMonth = "*", month = { start = "JANUARY", ["end"] = "MARCH" },
    } } } }))
    local c = j.schedule.calendars[1]
    assert.are.equal(0, c.second)
    assert.are.equal(2, #c.minute)
    assert.are.equal(1, c.minute[2].step) -- step defaults to 1, inside arrays too
    assert.are.equal(4, c.hour.step)
    assert.are.equal("*", c.dayOfMonth)
    assert.are.equal("JANUARY", c.month.start)
    local _, err = intuned.JobInput.new(input{ schedule = { calendars = { { hour = { 3 } } } } })
    expect_error(nil, err, "schedule.calendars[1].hour[1]", "range object")
    _, err = intuned.JobInput.new(input{ schedule = { calendars = { { hour = true } } } })
    expect_error(nil, err, "schedule.calendars[1].hour", "got boolean")
  end)

  it("takes `every` as milliseconds or a duration string", function()
    local j = assert(intuned.JobInput.new(input{ schedule = { intervals = { { every = "30m" }, { every = 86400000 } } } }))
    assert.are.equal("30m", j.schedule.intervals[1].every)
    assert.are.equal(86400000, j.schedule.intervals[2].every)
    local _, err = intuned.JobInput.new(input{ schedule = { intervals = { { every = "1h30m" } } } })
    expect_error(nil, err, "schedule.intervals[1].every", "invalid duration")
  end)

  it("decodes the job state as ACTIVE or PAUSED (object or the newest API's bare string) and refuses others", function()
    local base = '{"id":"x","payload":[],"configuration":{},"next_run_time":null,"last_run_time":null,"projectId":"p",'
    assert.are.equal("PAUSED", assert(intuned.Job.decode(base .. '"state":"PAUSED"}')).state.status)
    assert.are.equal("ACTIVE", assert(intuned.Job.decode(base .. '"state":{"status":"ACTIVE"}}')).state.status)
    local _, err = intuned.Job.decode(base .. '"state":{"status":"paused"}}')
    assert.are.equal("decode", err.kind)
    assert.are.equal("state.status", err.path)
  end)

  it("tells sink results completed from failed", function()
    local ok = assert(intuned.JobSinkResultPayload.decode(util.example("sink-result-completed.json")))
    assert.are.equal("ResultCompleted", intuned.type(ok.apiInfo.result))
    assert.are.equal(39.5, ok.apiInfo.result.result.price)
    local bad = assert(intuned.JobSinkResultPayload.decode(util.example("sink-result-failed.json")))
    assert.are.equal("ResultFailed", intuned.type(bad.apiInfo.result))
    assert.are.equal("DemoSelectorNotFound", bad.apiInfo.result.error)
  end)
end)

describe("validation", function()
  local required = {
    { "id", function(t) t.id = nil end },
    { "payload", function(t) t.payload = nil end },
    { "configuration", function(t) t.configuration = nil end },
    { "configuration.runMode", function(t) t.configuration = {} end },
    { "payload[1].apiName", function(t) t.payload = { { parameters = {} } } end },
    { "sink.type", function(t) t.sink = { url = "http://x" } end },
    { "sink.url", function(t) t.sink = { type = "webhook" } end },
    { "sink.region", function(t) t.sink = { type = "s3", bucket = "b", accessKeyId = "a", secretAccessKey = "s" } end },
    { "sink.bucket", function(t) t.sink = { type = "s3", region = "r", accessKeyId = "a", secretAccessKey = "s" } end },
    { "sink.accessKeyId", function(t) t.sink = { type = "s3", region = "r", bucket = "b", secretAccessKey = "s" } end },
    { "sink.secretAccessKey", function(t) t.sink = { type = "s3", region = "r", bucket = "b", accessKeyId = "a" } end },
    { "configuration.retry.maximumAttempts", function(t) t.configuration.retry = { initialInterval = "1s" } end },
    { "schedule.intervals[1].every", function(t) t.schedule = { intervals = { {} } } end },
    { "schedule.calendars[1].hour.start", function(t) t.schedule = { calendars = { { hour = { step = 1 } } } } end },
    { "authSession.id", function(t) t.authSession = {} end },
  }
  for _, case in ipairs(required) do
    it("names a missing " .. case[1], function()
      local t = input()
      case[2](t)
      local ok, err = intuned.JobInput.new(t)
      expect_error(ok, err, case[1], "required field is missing")
    end)
  end

  local mismatches = {
    { "id", 5, "expected string, got number" },
    { "payload", "x", "expected array, got string" },
    { "payload[1].apiName", { apiName = true }, "expected string, got boolean", "payload", true },
    { "payload[1].parameters", { apiName = "a", parameters = 3 }, "expected object or array, got number", "payload", true },
    { "sink", "webhook", "expected object, got string" },
    { "sink.skipOnFail", { type = "webhook", url = "u", skipOnFail = "yes" }, "expected boolean, got string", "sink" },
    { "sink.headers", { type = "webhook", url = "u", headers = { "a" } }, "expected object, got array", "sink" },
    { "configuration.maxConcurrentRequests", { runMode = "Order-Irrelevant", maxConcurrentRequests = "5" },
      "expected number, got string", "configuration" },
    { "configuration.runMode", { runMode = "Fast" }, 'expected "Order-Irrelevant"', "configuration" },
    { "configuration.retry.initialInterval", { runMode = "Order-Irrelevant", retry = { maximumAttempts = 1, initialInterval = 5 } },
      "duration string", "configuration" },
    { "configuration.retry.backoffCoefficient",
      { runMode = "Order-Irrelevant", retry = { maximumAttempts = 1, backoffCoefficient = {} } },
      "expected number, got object", "configuration" },
    { "schedule.intervals", { intervals = "1h" }, "expected array, got string", "schedule" },
    { "authSession.id", { id = 7 }, "expected string, got number", "authSession" },
  }
  for _, case in ipairs(mismatches) do
    it("names a wrong type at " .. case[1], function()
      local key = case[4] or case[1]
      local value = case[2]
      if case[5] then value = { value } end
      local ok, err = intuned.JobInput.new(input{ [key] = value })
      expect_error(ok, err, case[1], case[3])
    end)
  end

  it("refuses a misspelt field, naming the closest one", function()
    local ok, err = intuned.JobInput.new(input{ configuration = { runMode = "Order-Irrelevant", maxConcurentRequests = 2 } })
    expect_error(ok, err, "configuration.maxConcurentRequests", 'did you mean "maxConcurrentRequests"')
    ok, err = intuned.JobInput.new(input{ paylod = {} })
    expect_error(ok, err, "paylod", 'did you mean "payload"')
  end)

  it("refuses fields of the newest API in a v0.3.12 JobInput but decodes them in responses", function()
    local ok, err = intuned.JobInput.new(input{ configuration = { runMode = "Order-Irrelevant", requestTimeout = 5 } })
    expect_error(ok, err, "configuration.requestTimeout", 'only in the newest API (api_version = "newest")')
    local job = assert(intuned.Job.decode('{"id":"x","configuration":{"requestTimeout":600,"retry":{"maximumAttempts":3}},'
      .. '"state":"ACTIVE","project_id":"p","workspace_id":"w","auth_session":{"id":"a","checkAttempts":3,"createAttempts":3}}'))
    assert.are.equal(600, job.configuration.requestTimeout)
    assert.are.equal("p", job.projectId)
    assert.are.equal(3, job.authSession.createAttempts)
  end)

  it("keeps unknown fields of responses, readable and re-encoded", function()
    local src = util.example("error-400.json")
    local e = assert(intuned.ApiErrorInvalidInput.decode(src))
    assert.are.equal("req-51c0a9e7", e.requestId)
    assert.truthy(e:to_json():find('"requestId":"req-51c0a9e7"', 1, true))
    assert.are.equal("payload[1].apiName", e.details.field)
  end)

  it("warns (without failing) on short ids and cron-style calendar strings", function()
    local j = assert(intuned.JobInput.new(input{ id = "abc", schedule = { calendars = { { dayOfWeek = "MON-FRI" } } } }))
    local w = j:warnings()
    assert.are.equal(2, #w)
    assert.truthy(w[1]:find("^id: "))
    assert.truthy(w[2]:find("MON-FRI", 1, true))
    assert.are.equal(0, #assert(intuned.JobInput.new(input())):warnings())
  end)

  it("refuses a job id that is not a URL slug", function()
    local ok, err = intuned.JobInput.new(input{ id = "has space" })
    expect_error(ok, err, "id", "URL slug")
  end)

  it("refuses values no JSON can hold", function()
    local ok, err = intuned.JobInput.new(input{ payload = { { apiName = "a", parameters = { f = print } } } })
    expect_error(ok, err, "payload[1].parameters.f", "got function")
    ok, err = intuned.JobInput.new(input{ payload = { { apiName = "a", parameters = { x = 0 / 0 } } } })
    expect_error(ok, err, "payload[1].parameters.x", "finite")
    ok, err = intuned.JobInput.new(input{ payload = { { apiName = "a", parameters = { 1, nil, 3 } } } })
    expect_error(ok, err, "payload[1].parameters", "holes")
    ok, err = intuned.JobInput.new(input{ payload = { { apiName = "a", parameters = { 1, x = 2 } } } })
    expect_error(ok, err, "payload[1].parameters", "mixes")
  end)

  it("misuse raises: new() without a table", function()
    assert.has_error(function() intuned.JobInput.new("x") end)
    assert.has_error(function() intuned.Job.decode(nil) end)
  end)
end)

describe("defaults", function()
  it("fills the SDK's defaults on input", function()
    local j = assert(intuned.JobInput.new(input{
      sink = { type = "webhook", url = "http://x" },
      schedule = { calendars = { { hour = { start = 1 } } } },
      configuration = { runMode = "Order-Irrelevant", retry = { maximumAttempts = 2 } },
    }))
    local t = cjson.decode(j:to_json())
    assert.is_false(t.sink.skipOnFail)
    assert.are.equal(1, t.schedule.calendars[1].hour.step)
    assert.are.equal(1, t.configuration.retry.backoffCoefficient)
    assert.are.equal("1s", t.configuration.retry.initialInterval)
    assert.is_nil(t.configuration.retry.maximumInterval)
    assert.is_nil(t.configuration.maxConcurrentRequests)
  end)

  it("fills the response defaults (retry in ms)", function()
    local job = assert(intuned.Job.decode('{"id":"x","payload":[],"configuration":{"runMode":"Order-Irrelevant",'
      .. '"retry":{"maximumAttempts":1}},"next_run_time":null,"last_run_time":null,"state":{},"projectId":"p"}'))
    assert.are.equal(1000, job.configuration.retry.initialInterval)
    assert.are.equal(1, job.configuration.retry.backoffCoefficient)
  end)
end)

describe("free-form JSON", function()
  it("keeps {} and [] apart with intuned.object / intuned.array, and via to_table", function()
    local j = assert(intuned.JobInput.new(input{ payload = {
      { apiName = "a", parameters = intuned.object() },
      { apiName = "b", parameters = intuned.array() },
      { apiName = "c", parameters = { nested = intuned.array(), empty = {} } },
    } }))
    local s = j:to_json()
    assert.truthy(s:find('"apiName":"a","parameters":{}', 1, true))
    assert.truthy(s:find('"apiName":"b","parameters":[]', 1, true))
    assert.truthy(s:find('"parameters":{"empty":{},"nested":[]}', 1, true))
    local again = assert(intuned.JobInput.new(j:to_table()))
    assert.are.equal(s, again:to_json())
  end)

  it("accepts an empty plain table where the schema wants an array", function()
    -- (an empty payload is refused: a job without payloads has nothing to run)
    local _, err = intuned.JobInput.new(input{ payload = {} })
    expect_error(nil, err, "payload", "must not be empty")
    local j = assert(intuned.JobInput.new(input{ schedule = { intervals = {}, calendars = {} } }))
    assert.truthy(j:to_json():find('"schedule":{"intervals":[],"calendars":[]}', 1, true))
  end)

  it("takes null as intuned.null (the same value as cjson.null)", function()
    assert.are.equal(cjson.null, intuned.null)
    local j = assert(intuned.JobInput.new(input{ sink = intuned.null,
      payload = { { apiName = "a", parameters = { x = intuned.null } } } }))
    assert.truthy(j:to_json():find('"sink":null', 1, true))
    assert.truthy(j:to_json():find('"parameters":{"x":null}', 1, true))
  end)

  -- Lua 5.1/5.2 have no integer subtype: there, numbers are doubles already
  local refuses = math.type and it or function() end
  refuses("refuses integers JSON cannot hold exactly", function()
    local ok, err = intuned.JobInput.new(input{ payload = { { apiName = "a", parameters = { n = math.maxinteger } } } })
    expect_error(ok, err, "payload[1].parameters.n", "2^53")
  end)

  it("accepts typed objects inside tables", function()
    local sink = assert(intuned.JobSink.new{ type = "webhook", url = "http://x" })
    local j = assert(intuned.JobInput.new(input{ sink = sink }))
    assert.are.equal("http://x", j.sink.url)
  end)
end)

describe("secrets", function()
  it("never show in tostring, at any level", function()
    local job = assert(intuned.Job.decode(util.example("job-s3-active.json")))
    local secret = "exampleSecretKeyDoNotUse/0123456789abcd"
    assert.is_nil(tostring(job):find(secret, 1, true))
    assert.is_nil(tostring(job.sink):find(secret, 1, true))
    assert.truthy(tostring(job.sink):find('"secretAccessKey":"***"', 1, true))
    assert.are.equal(secret, job.sink.secretAccessKey) -- data access is not redacted
    local hooked = assert(intuned.JobInput.new(input{ sink = { type = "webhook", url = "http://x",
      headers = { Authorization = "Bearer t0k3n" } } }))
    assert.is_nil(tostring(hooked):find("t0k3n", 1, true))
    assert.truthy(tostring(hooked):find('"Authorization":"***"', 1, true))
  end)
end)

describe("hostile input", function()
  it("refuses malformed and truncated JSON", function()
    local src = util.example("job-webhook-paused.json")
    local ok, err = intuned.Job.decode(src:sub(1, 200))
    assert.is_nil(ok)
    assert.are.equal("decode", err.kind)
    assert.truthy(err.message:find("invalid JSON", 1, true))
    ok, err = intuned.Job.decode(src .. "garbage")
    assert.is_nil(ok)
    assert.truthy(err.message:find("after the document", 1, true))
    ok, err = intuned.JobInput.decode("")
    assert.is_nil(ok)
    assert.are.equal("validation", err.kind)
  end)

  it("refuses deep nesting without crashing", function()
    local deep = '{"id":"x","payload":[{"apiName":"a","parameters":' .. ("["):rep(100000) .. ("]"):rep(100000) .. "}]}"
    local ok, err = intuned.Job.decode(deep)
    assert.is_nil(ok)
    assert.truthy(err.message:find("invalid JSON", 1, true))
    local t = {}
    t.self = t
    ok, err = intuned.JobInput.new(input{ payload = { { apiName = "a", parameters = t } } })
    assert.is_nil(ok)
    assert.truthy(err.message:find("cyclic table", 1, true)) -- said at once (spec/conversions_spec.lua)
  end)

  it("refuses huge documents before parsing them", function()
    local huge = '{"id":"' .. ("x"):rep(17 * 1024 * 1024) .. '"}'
    local ok, err = intuned.Job.decode(huge)
    assert.is_nil(ok)
    assert.truthy(err.message:find("too large", 1, true))
  end)

  it("survives many decode/free cycles of every example", function()
    local src = util.example("jobinput-rich.json")
    for _ = 1, 2000 do
      local j = intuned.JobInput.decode(src)
      assert(j.payload[1].parameters.limits.perPage == 50)
    end
    collectgarbage()
  end)
end)

describe("value helpers", function()
  it("parses durations like the ms package", function()
    assert.are.equal(1500, intuned.duration_ms("1.5s"))
    assert.are.equal(7200000, intuned.duration_ms("2 hours"))
    assert.is_nil(intuned.duration_ms("1mo"))
  end)
  it("formats times in the SDK's UTC form", function()
    assert.are.equal("2025-06-01T12:00:00.000Z", intuned.format_time(1748779200))
  end)
end)

describe("field names never hidden by methods", function()
  it("reads `type` of sinks and runs as the field", function()
    local runs = assert(intuned.JobRunList.decode(util.example("runs-list.json")))
    assert.are.equal("SCHEDULED", runs.jobRuns[1].type)
    local job = assert(intuned.Job.decode(util.example("job-s3-active.json")))
    assert.are.equal("s3", job.sink.type)
  end)
end)
