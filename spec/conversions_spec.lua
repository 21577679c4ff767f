-- Conversions between job definitions (job:to_input(), job:to_update(),
-- intuned.JobInput.from, intuned.JobUpdateInput.from), lenient
-- maxConcurrentRequests, and small things: parse_time's error, an integer
-- totalCount, short errors for cyclic tables, encode_json of objects.
-- Offline where no server is needed, against intuned-emulator elsewhere.
local intuned = require "intuned"
local cjson = require "cjson"
local emulator = require "spec.helpers.emulator"
local util = require "spec.helpers.util"

local WS = "ws-local"

-- A job as the newest API returns it (JobV2 of get job, §8.3 of the
-- reference): no runMode, retry {maximumAttempts} only, requestTimeout,
-- payload requestTimeout / retry, string state, auth_session, project_id,
-- proxy, jitter, bare values in calendar arrays.
local NEWEST_JOB = [[{
  "id": "harbor-watch-v2", "workspace_id": "ws-1", "project_id": "p-1",
  "configuration": { "retry": { "maximumAttempts": 4 }, "maxConcurrentRequests": 5, "requestTimeout": 900 },
  "payload": [ { "parameters": { "a": 1 }, "requestTimeout": 120, "retry": { "maximumAttempts": 2 },
                 "apiName": "catalog/list-items" } ],
  "sink": { "type": "webhook", "url": "https://hooks.example.test/v2",
            "headers": { "X-Hook-Token": "tok-v2-secret" }, "skipOnFail": true, "apisToSend": [ "catalog/list-items" ] },
  "schedule": { "jitter": "5m", "intervals": [ { "every": 3600000 } ],
                "calendars": [ { "minute": [ 0, 30 ], "hour": { "start": 8, "end": 18 }, "dayOfWeek": "MONDAY" } ] },
  "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-02T00:00:00Z", "next_run_time": null,
  "state": "PAUSED", "auth_session": { "id": "as-v2", "checkAttempts": 3, "createAttempts": 5 },
  "proxy": "http://proxy.example.test:8080", "schedule_id": "sched-1"
}]]

local SERVER_ONLY = { "created_at", "updated_at", "next_run_time", "last_run_time", "state", "projectId",
                      "project_id", "workspace_id", "reason", "schedule_id" }

local function job_of(name)
  return assert(intuned.Job.decode(util.example(name)))
end

local function has(list, text)
  for _, s in ipairs(list) do
    if s:find(text, 1, true) then return true end
  end
  return false
end

local function sorted(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c
end

describe("job conversions", function()
  describe("to_input (create body, v0.3.12 shape)", function()
    it("from a v0.3.12 job document: drops server-only fields, retry ms become durations", function()
      local job = job_of("job-webhook-paused.json")
      local input, err = job:to_input()
      assert.is_nil(err)
      assert.is_true(intuned.JobInput.is(input))
      local t = input:to_table()
      for _, k in ipairs(SERVER_ONLY) do assert.is_nil(t[k], k) end
      assert.are.equal("harbor-price-watch", t.id)
      assert.are.equal("Order-Irrelevant", t.configuration.runMode)
      assert.are.equal(5, t.configuration.maxConcurrentRequests)
      assert.are.same({ maximumAttempts = 4, backoffCoefficient = 2, initialInterval = "1500ms",
                        maximumInterval = "5m" }, t.configuration.retry)
      assert.are.equal(1500, intuned.duration_ms(t.configuration.retry.initialInterval))
      assert.are.equal("as-3c9e0b7d-harbor", t.authSession.id)
      assert.are.equal("SKU-40418", t.payload[2].parameters[2])
      assert.are.same({}, input:warnings())
    end)

    it("carries secrets over as data, and tostring still hides them", function()
      local input = assert(job_of("job-webhook-paused.json"):to_input())
      assert.are.equal("tok_7f3a91c2", input.sink.headers["X-Hook-Token"])
      assert.truthy(input:to_json():find("tok_7f3a91c2", 1, true))
      assert.falsy(tostring(input):find("tok_7f3a91c2", 1, true))
      local s3 = assert(job_of("job-s3-active.json"):to_input())
      assert.are.equal("exampleSecretKeyDoNotUse/0123456789abcd", s3.sink.secretAccessKey)
      assert.falsy(tostring(s3):find("exampleSecretKeyDoNotUse", 1, true))
    end)

    it("takes a new id (and other top-level changes)", function()
      local input = assert(job_of("job-s3-active.json"):to_input{ id = "ledger-export-copy" })
      assert.are.equal("ledger-export-copy", input.id)
      assert.are.equal("1s", input.configuration.retry.initialInterval)
      assert.are.same({}, input:warnings())
    end)

    it("from a newest-shaped job: maps the shapes, warns for what v0.3.12 cannot carry", function()
      local job = assert(intuned.Job.decode(NEWEST_JOB))
      local input = assert(job:to_input{ id = "harbor-watch-copy" })
      local t = input:to_table()
      assert.are.equal("Order-Irrelevant", t.configuration.runMode) -- required at v0.3.12
      assert.are.equal(4, t.configuration.retry.maximumAttempts)
      assert.is_nil(t.configuration.requestTimeout)
      assert.are.same({ id = "as-v2" }, t.authSession)
      assert.is_nil(t.auth_session)
      assert.is_nil(t.proxy)
      assert.is_nil(t.schedule.jitter)
      assert.are.same({ { start = 0, step = 1 }, { start = 30, step = 1 } }, t.schedule.calendars[1].minute)
      assert.are.same({ apiName = "catalog/list-items", parameters = { a = 1 } }, t.payload[1])
      assert.are.equal("tok-v2-secret", t.sink.headers["X-Hook-Token"])
      assert.are.same({
        "authSession.createAttempts: exists only in the newest API; dropped",
        "configuration.requestTimeout: exists only in the newest API; dropped",
        "payload[1].requestTimeout: exists only in the newest API; dropped",
        "payload[1].retry: exists only in the newest API; dropped",
        "proxy: exists only in the newest API; dropped",
        "schedule.jitter: exists only in the newest API; dropped",
        "sink.apisToSend: exists only in the newest API; dropped",
      }, sorted(input:warnings()))
      for _, w in ipairs(input:warnings()) do assert.falsy(w:find("tok-v2-secret", 1, true)) end
    end)

    it("drops newest-API defaults without a warning (nothing is lost)", function()
      local job = assert(intuned.Job.decode([[{"id":"defaults-v2","project_id":"p","state":"ACTIVE",
        "configuration":{"retry":{"maximumAttempts":3},"requestTimeout":600},
        "payload":[{"parameters":{},"requestTimeout":600,"apiName":"a"}],
        "auth_session":{"id":"as","checkAttempts":3,"createAttempts":3}}]]))
      local input = assert(job:to_input())
      assert.are.same({}, input:warnings())
      assert.are.same({ id = "as" }, input:to_table().authSession)
    end)

    it("refuses a newest-API job that leaves out its payload (an empty payload has nothing to run)", function()
      local job = assert(intuned.Job.decode('{"id":"no-payload","project_id":"p","state":"ACTIVE","configuration":{}}'))
      local input, err = job:to_input()
      assert.is_nil(input)
      assert.are.equal("payload", err.path)
      assert.truthy(err.message:find("must not be empty", 1, true), err.message)
    end)
  end)

  describe("to_update (update body, newest shape)", function()
    it("from a v0.3.12 job document: runMode and the backoff fields go, auth_session is mapped", function()
      local job = job_of("job-webhook-paused.json")
      local up = assert(job:to_update())
      assert.is_true(intuned.JobUpdateInput.is(up))
      local t = up:to_table()
      assert.is_nil(t.id)
      for _, k in ipairs(SERVER_ONLY) do assert.is_nil(t[k], k) end
      assert.is_nil(t.configuration.runMode)
      assert.are.same({ maximumAttempts = 4 }, t.configuration.retry)
      assert.are.equal(5, t.configuration.maxConcurrentRequests)
      assert.are.equal("as-3c9e0b7d-harbor", t.auth_session.id)
      assert.is_nil(t.authSession)
      assert.are.same({ category = "kitchen", maxPages = 4 }, t.payload[1].parameters)
      assert.are.same({}, t.payload[2].parameters) -- the newest API takes objects only
      assert.are.same({
        "configuration.retry.backoffCoefficient: exists only in v0.3.12; dropped",
        "configuration.retry.initialInterval: exists only in v0.3.12; dropped",
        "configuration.retry.maximumInterval: exists only in v0.3.12; dropped",
        "payload[2].parameters: an array of parameters exists only in v0.3.12; sent as {}",
      }, sorted(up:warnings()))
    end)

    it("drops v0.3.12 values equal to the newest API's behaviour silently; keeps S3 secrets", function()
      local up = assert(job_of("job-s3-active.json"):to_update())
      assert.are.same({}, up:warnings()) -- runMode, backoff 1, initialInterval 1 s: nothing lost
      assert.are.equal("exampleSecretKeyDoNotUse/0123456789abcd", up.sink.secretAccessKey)
      assert.truthy(up:to_json():find("exampleSecretKeyDoNotUse", 1, true))
      assert.falsy(tostring(up):find("exampleSecretKeyDoNotUse", 1, true))
    end)

    it("from a newest-shaped job keeps every field of the newest API", function()
      local up = assert(intuned.Job.decode(NEWEST_JOB):to_update())
      local t = up:to_table()
      assert.are.same({}, up:warnings())
      assert.are.equal(900, t.configuration.requestTimeout)
      assert.are.same({ maximumAttempts = 4 }, t.configuration.retry)
      assert.are.equal(120, t.payload[1].requestTimeout)
      assert.are.same({ maximumAttempts = 2 }, t.payload[1].retry)
      assert.are.equal("5m", t.schedule.jitter)
      assert.are.same({ 0, 30 }, t.schedule.calendars[1].minute)
      assert.are.same({ "catalog/list-items" }, t.sink.apisToSend)
      assert.are.equal("http://proxy.example.test:8080", t.proxy)
      assert.are.same({ id = "as-v2", checkAttempts = 3, createAttempts = 5 }, t.auth_session)
    end)

    it("takes a list item's proxy object as its URL and sends header values as strings", function()
      local t = cjson.decode(NEWEST_JOB)
      t.proxy = { version = "v1", url = "http://p.example.test:3128" }
      t.sink.headers["X-Budget"] = 3
      local up = assert(intuned.JobUpdateInput.from(t))
      assert.are.equal("http://p.example.test:3128", up.proxy)
      assert.are.equal("3", up.sink.headers["X-Budget"])
    end)
  end)

  describe("JobInput.from / JobUpdateInput.from", function()
    it("give what the methods give, from an object or a plain table of either version", function()
      for _, doc in ipairs{ util.example("job-webhook-paused.json"), util.example("job-s3-active.json"), NEWEST_JOB } do
        local job = assert(intuned.Job.decode(doc))
        assert.are.equal(job:to_input():to_json(), intuned.JobInput.from(job):to_json())
        assert.are.equal(job:to_update():to_json(), intuned.JobUpdateInput.from(job):to_json())
        assert.is_true(util.json_equal(job:to_input():to_json(), intuned.JobInput.from(cjson.decode(doc)):to_json()))
        assert.is_true(util.json_equal(job:to_update():to_json(),
                                       intuned.JobUpdateInput.from(cjson.decode(doc)):to_json()))
        assert.is_true(util.json_equal(job:to_update():to_json(),
                                       intuned.JobUpdateInput.from(job:to_table()):to_json()))
      end
    end)

    it("convert between the two input shapes too", function()
      local input = assert(intuned.JobInput.decode(util.example("jobinput-rich.json")))
      local up = assert(input:to_update())
      assert.are.equal("3", up.sink.headers["X-Retry-Budget"])
      local back = assert(up:to_input{ id = input.id })
      assert.are.equal(input.id, back.id)
      assert.are.equal(#input.payload, #back.payload)
      -- no id in an update body: an error (data), not a raise
      local none, err = intuned.JobInput.from(up)
      assert.is_nil(none)
      assert.are.equal("validation", err.kind)
      assert.are.equal("id", err.path)
    end)

    it("leave the caller's table alone", function()
      local t = cjson.decode(util.example("job-webhook-paused.json"))
      local before = cjson.encode(t)
      assert(intuned.JobUpdateInput.from(t))
      assert(intuned.JobInput.from(t, { id = "other-id" }))
      assert.are.equal(before, cjson.encode(t))
    end)

    it("warn for unknown fields instead of refusing them", function()
      local t = cjson.decode(util.example("job-s3-active.json"))
      t.colour = "blue"
      local input = assert(intuned.JobInput.from(t))
      assert.are.same({ "colour: unknown field; dropped" }, input:warnings())
    end)

    it("raise on misuse", function()
      assert.error_matches(function() intuned.JobInput.from(5) end, "expected a Job object", 1, true)
      assert.error_matches(function() intuned.JobUpdateInput.from(job_of("job-s3-active.json"), "x") end,
                           "changes must be a table", 1, true)
      local run = assert(intuned.JobRun.new{ id = "r", projectId = "p", jobId = "j", start_time = "2025-01-01T00:00:00Z",
                                            status = "COMPLETED", type = "MANUAL", workspace_id = "w" })
      assert.error_matches(function() intuned.JobInput.from(run) end, "got an intuned.JobRun", 1, true)
      assert.error_matches(function() return run.to_input end, "has no field 'to_input'", 1, true)
      assert.are.equal("function", type(job_of("job-s3-active.json").to_update)) -- job definitions have them
    end)
  end)

  describe("against the emulator", function()
    local emu, client

    setup(function()
      emu = emulator.start{}
      client = intuned.client{ api_key = emu.key, workspace_id = WS, server_url = emu.url, retry = false }
    end)

    teardown(function()
      emulator.stop_all()
    end)

    local function seed(project, doc, id)
      -- put a job defined by `doc` (a Job document) on the server under `id`
      local created, err = client.jobs:create(project, assert(intuned.Job.decode(doc):to_input{ id = id }))
      assert(created, tostring(err))
    end

    for _, case in ipairs{ { "a v0.3.12", util.example("job-webhook-paused.json") }, { "a newest-shaped", NEWEST_JOB } } do
      local label, doc = case[1], case[2]
      local project = label:gsub("[^%w]", "")

      it("get -> to_update -> change -> update -> get shows the change (" .. label .. " job)", function()
        seed(project, doc, "round-trip")
        -- the update body made from the document itself first
        local ok0, err0 = client.jobs:update(project, "round-trip", assert(intuned.Job.decode(doc):to_update()))
        assert(ok0, tostring(err0))
        local job = assert(client.jobs:get(project, "round-trip"))
        assert.are.equal(intuned.Job.decode(doc).configuration.requestTimeout or 600, job.configuration.requestTimeout)
        local t = assert(job:to_update()):to_table()
        t.payload[1].apiName = "catalog/changed"
        local ok, err = client.jobs:update(project, "round-trip", t)
        assert(ok, tostring(err))
        local changed = assert(client.jobs:get(project, "round-trip"))
        ok, err = client.jobs:update(project, "round-trip", changed:to_update{ configuration = { maxConcurrentRequests = 2 } })
        assert(ok, tostring(err))
        local after = assert(client.jobs:get(project, "round-trip"))
        assert.are.equal("catalog/changed", after.payload[1].apiName)
        assert.are.equal(2, after.configuration.maxConcurrentRequests)
        assert.are.equal(job.sink.url, after.sink.url)
        assert.are.same(job.sink.headers, after.sink.headers) -- the secret survived the trip
      end)

      it("get -> to_input with a new id -> create makes a copy (" .. label .. " job)", function()
        seed(project, doc, "original")
        local job = assert(client.jobs:get(project, "original"))
        local created, err = client.jobs:create(project, assert(job:to_input{ id = "copy" }))
        assert(created, tostring(err))
        assert.are.equal("copy", created.id)
        local copy = assert(client.jobs:get(project, "copy"))
        assert.are.equal(job.payload[1].apiName, copy.payload[1].apiName)
        assert.are.same(job.sink.headers, copy.sink.headers)
        assert.are.equal(job.authSession.id, copy.authSession.id)
        assert.are.equal(job.configuration.maxConcurrentRequests, copy.configuration.maxConcurrentRequests)
        assert.are.equal(#job.schedule.intervals, #copy.schedule.intervals)
      end)
    end

    it("lets the server decide on maxConcurrentRequests = 0: the emulator refuses it and says why", function()
      local input = assert(intuned.JobInput.new{ id = "zero-concurrency", payload = { { apiName = "a" } },
                                                 configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 0 } })
      local ok, err = client.jobs:create("lenient", input)
      assert.is_nil(ok)
      assert.are.equal("invalid_input", err.kind)
      assert.are.equal(400, err.status)
      assert.truthy(err.message:find("configuration.maxConcurrentRequests: the emulator requires at least 1 "
                                     .. "(the reference gives no bound)", 1, true), err.message)
      assert(client.jobs:create("lenient", { id = "one-concurrency", payload = { { apiName = "a" } },
                                             configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 1 } }))
      ok, err = client.jobs:update("lenient", "one-concurrency",
                                   { payload = { { apiName = "a", parameters = {} } }, configuration = { maxConcurrentRequests = 0 } })
      assert.is_nil(ok)
      assert.are.equal(400, err.status)
      assert.truthy(err.message:find("the emulator requires at least 1", 1, true), err.message)
    end)

    it("gives totalCount as an integer, as JobRunList.decode does", function()
      assert(client.jobs:create("counts", { id = "counted", payload = { { apiName = "a" } },
                                            configuration = { runMode = "Order-Irrelevant" } }))
      assert(client.jobs:trigger("counts", "counted"))
      local runs, err = client.jobs.runs:list("counts", "counted", { page_size = 5 })
      assert(runs, tostring(err))
      assert.are.equal(1, runs.totalCount)
      local decoded = assert(intuned.JobRunList.decode('{"jobRuns":[],"totalCount":4}'))
      if math.type then
        assert.are.equal("integer", math.type(runs.totalCount))
        assert.are.equal("integer", math.type(decoded.totalCount))
      end
      assert.are.equal(tostring(4), tostring(decoded.totalCount))
      assert.are.equal("1", tostring(runs.totalCount))
    end)

    it("refuses a cyclic table before sending, with a short path", function()
      local params = { a = {} }
      params.a.a = params.a
      local before = emu.api_requests()
      local ok, err = client.jobs:create("cycles", { id = "cyclic-job", payload = { { apiName = "a", parameters = params } },
                                                     configuration = { runMode = "Order-Irrelevant" } })
      assert.is_nil(ok)
      assert.are.equal("validation", err.kind)
      assert.are.equal("payload[1].parameters.a.a", err.path)
      assert.truthy(tostring(err):find("cycl", 1, true))
      assert.is_true(#tostring(err) < 200, #tostring(err))
      assert.are.equal(before, emu.api_requests())
    end)
  end)
end)

describe("maxConcurrentRequests without a client-side bound", function()
  for _, n in ipairs{ 0, -3 } do
    it("passes " .. n .. " with a warning, in both input shapes", function()
      local input, err = intuned.JobInput.new{ id = "lenient-job", payload = { { apiName = "a" } },
                                               configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = n } }
      assert(input, tostring(err))
      assert.are.equal(n, input.configuration.maxConcurrentRequests)
      assert.truthy(input:to_json():find('"maxConcurrentRequests":' .. n, 1, true))
      assert.is_true(has(input:warnings(), "configuration.maxConcurrentRequests: "))
      local up = assert(intuned.JobUpdateInput.new{ payload = { { apiName = "a", parameters = {} } },
                                                     configuration = { maxConcurrentRequests = n } })
      assert.are.equal(n, up.configuration.maxConcurrentRequests)
      assert.is_true(has(up:warnings(), "configuration.maxConcurrentRequests: "))
    end)
  end

  it("gives no warning for a positive value", function()
    local input = assert(intuned.JobInput.new{ id = "lenient-job", payload = { { apiName = "a" } },
                                               configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2 } })
    assert.are.same({}, input:warnings())
  end)
end)

describe("small things", function()
  it("parse_time gives nil and a message for garbage, like duration_ms", function()
    for _, s in ipairs{ "garbage", "", "2025-01-01" } do
      assert.are.equal(2, select("#", intuned.parse_time(s)))
      local t, err = intuned.parse_time(s)
      assert.is_nil(t)
      assert.are.equal("string", type(err))
      assert.truthy(err:find(s, 1, true))
    end
  end)

  it("says 'cycle' at once for a table that contains itself, with a short path", function()
    local params = { a = {} }
    params.a.a = params.a
    local ok, err = intuned.JobInput.new{ id = "cyclic-job", payload = { { apiName = "x", parameters = params } },
                                          configuration = { runMode = "Order-Irrelevant" } }
    assert.is_nil(ok)
    assert.are.equal("payload[1].parameters.a.a", err.path)
    assert.truthy(err.message:find("cyclic table (cycle", 1, true))
    assert.is_true(#tostring(err) < 200, #tostring(err))
    local list = {}
    list[1] = list
    local s, e2 = intuned.encode_json({ x = list })
    assert.is_nil(s)
    assert.are.equal("x[1]", e2.path)
    -- a table met twice but not inside itself is no cycle
    local shared = { 1, 2 }
    assert.are.equal('{"a":[1,2],"b":[1,2]}', intuned.encode_json({ a = shared, b = shared }))
  end)

  it("encode_json takes typed objects; cjson needs obj:to_table()", function()
    local job = job_of("job-s3-active.json")
    assert.is_true(util.json_equal(job:to_json(), intuned.encode_json(job)))
    assert.is_true(util.json_equal("[" .. job:to_json() .. "]", intuned.encode_json({ job })))
    assert.has_error(function() cjson.encode(job) end)
    assert.is_true(util.json_equal(job:to_json(), cjson.encode(job:to_table())))
  end)
end)
