-- Secrets never leave the library (libcurl transport): tostring of runs
-- whose configuration snapshot carries the job's sink, errors and hook
-- events when a server echoes what it got (API key, auth headers, S3
-- secretAccessKey, webhook header values), and a hook that closes the
-- client in the middle of a call.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"

local WS = "ws-local"
local KEY = "echo-api-key-4242"
local BEARER = "bearer-credential-9876"
local S3 = "s3-secret-AbCdEf0123"
local WH = "wh-header-secret-777"
local SECRETS = { KEY, BEARER, S3, WH }

local echo_server = require "spec.helpers.echo"
local start_echo, stop_echo = echo_server.start, echo_server.stop
local function leak(v) return echo_server.leak(v, SECRETS) end

local function input(id, sink)
  return { id = id, payload = { { apiName = "products/list", parameters = { page = 1 } } },
           configuration = { runMode = "Order-Irrelevant" }, sink = sink }
end

local S3_SINK = { type = "s3", region = "us-east-1", bucket = "bkt", accessKeyId = "AKIA1", secretAccessKey = S3 }

describe("secrets (libcurl transport)", function()
  local emu, echo
  local seq = 0
  local function fresh_id(prefix)
    seq = seq + 1
    return ("%s-%d-%d"):format(prefix or "sec", os.time() % 100000, seq)
  end

  setup(function()
    emu = emulator.start{}
    echo = start_echo()
  end)

  teardown(function()
    stop_echo(echo)
    if emu then emu.stop() end
  end)

  local function webhook_sink()
    return { type = "webhook", url = emu.base .. "/_receiver/secrets", headers = { ["X-Hook"] = WH } }
  end

  describe("tostring of runs with a configuration snapshot", function()
    it("JobRun, JobRunDetail, JobRunList of the newest API: the snapshot's sink secrets are *** (to_json exact)", function()
      local run = ([[{"id":"r1","job_id":"j","project_id":"p","workspace_id":"w","start_time":"t","status":"PENDING",
        "type":"MANUAL","job_configuration_snapshot":{"configuration":{},"sink":%s}}]])
      for _, sink in ipairs{ S3_SINK, { type = "webhook", url = "u", headers = { ["X-Hook"] = WH, Other = BEARER } } } do
        local doc = run:format(intuned.encode_json(sink))
        local r = assert(intuned.JobRun.decode(doc))
        local d = assert(intuned.JobRunDetail.decode('{"jobRun":' .. doc .. '}'))
        local l = assert(intuned.JobRunList.decode('{"jobRuns":[' .. doc .. '],"totalCount":1}'))
        for _, o in ipairs{ r, d, l } do
          local s = tostring(o)
          assert.is_nil(leak(s), s)
          if sink.type == "s3" then
            assert.truthy(s:find('"secretAccessKey":"***"', 1, true), s)
          else
            assert.truthy(s:find('"X-Hook":"***"', 1, true) and s:find('"Other":"***"', 1, true), s)
          end
          assert.truthy(o:to_json():find(sink.type == "s3" and S3 or WH, 1, true))
        end
        assert.equals(sink.type == "s3" and S3 or WH, sink.type == "s3" and r.job_configuration_snapshot.sink.secretAccessKey
          or r.job_configuration_snapshot.sink.headers["X-Hook"])
      end
    end)

    it("runs:list (paged) and runs:get of the emulator: tostring shows no sink secret", function()
      local c = intuned.client{ api_key = "test-key", workspace_id = WS, server_url = emu.url }
      for i, sink in ipairs{ S3_SINK, webhook_sink() } do
        -- short ids: the secret then falls inside the 600 characters a summary shows
        local id = "k" .. i
        assert(c.jobs:create("secrets", input(id, sink)))
        assert(c.jobs:trigger("secrets", id))
        local runs = assert(c.jobs.runs:list("secrets", id, { page_size = 10 }))
        assert.equals(1, #runs)
        local run = runs[1]
        assert.is_table(run.job_configuration_snapshot.sink) -- the shape this is about
        assert.is_nil(leak(tostring(run)), tostring(run))
        local exact = run:to_json()
        assert.truthy(exact:find(sink.type == "s3" and S3 or WH, 1, true))
        local detail = assert(c.jobs.runs:get("secrets", id, run.id))
        assert.is_nil(leak(tostring(detail)), tostring(detail))
        assert.is_nil(leak(tostring(detail.jobRun)))
        local raw = emu.api("GET", "/" .. WS .. "/projects/secrets/jobs/" .. id .. "/runs?pageSize=10")
        assert.equals(200, raw.status)
        local list = assert(intuned.JobRunList.decode(raw.body))
        assert.is_nil(leak(tostring(list)), tostring(list))
        assert.truthy(list:to_json():find(sink.type == "s3" and S3 or WH, 1, true))
      end
    end)
  end)

  describe("a server echoing the request", function()
    local function echo_client(hook, extra)
      local o = { api_key = KEY, workspace_id = WS, server_url = echo.url, hook = hook,
                  headers = { Authorization = "Bearer " .. BEARER, ["X-Trace"] = "trace-1" },
                  retry = { max_attempts = 2, initial_delay = 0.01, max_delay = 0.05 } }
      for k, v in pairs(extra or {}) do o[k] = v end
      return intuned.client(o)
    end

    it("API key and auth header: not in message, text, body, details, data, nor any hook event", function()
      local events = {}
      local c = echo_client(function(ev) events[#events + 1] = ev end)
      local res, err = c.jobs:get("p", "retry-echo")
      assert.is_nil(res)
      assert.equals("server", err.kind)
      assert.equals(2, err.attempts)
      assert.is_nil(leak(err))
      assert.is_string(err.body)
      assert.is_table(err.details)
      assert.is_table(err.data)
      -- the echo was there: the key came back as a key, now "***"
      assert.equals("the key as a key", err.details["***"])
      assert.equals("***", err.details.headers["X-Api-Key"] or err.details.headers["x-api-key"])
      local kinds = {}
      for _, ev in ipairs(events) do
        kinds[#kinds + 1] = ev.event
        assert.is_nil(leak(ev), ev.event)
      end
      assert.same({ "request", "response", "retry", "request", "response" }, kinds)
      assert.truthy(events[2].error.message:find("rejected key ***", 1, true))
      -- a response event carries what came back: status, headers and the
      -- (bounded) body, redacted like the request (leak() above saw them)
      for _, i in ipairs{ 2, 5 } do
        local r = events[i].response
        assert.is_table(r)
        assert.equals(503, r.status)
        assert.equals("application/json", r.headers["content-type"])
        assert.equals("0", r.headers["retry-after"])
        assert.truthy(r.body:find("***", 1, true))
        assert.truthy(#r.body > 0 and #r.body <= 4096)
      end
      assert.is_nil(events[1].response)
      assert.is_nil(events[3].response)
    end)

    it("S3 secretAccessKey and webhook header values echoed by a 400: scrubbed in errors and events", function()
      local events = {}
      local c = echo_client(function(ev) events[#events + 1] = ev end)
      for _, sink in ipairs{ S3_SINK, { type = "webhook", url = "https://h.example/x", headers = { ["X-Hook"] = WH } } } do
        local _, err = c.jobs:create("p", input(fresh_id(), sink))
        assert.equals("invalid_input", err.kind)
        assert.is_nil(leak(err))
        assert.truthy(err.message:find("rejected key ***", 1, true))
        local _, uerr = c.jobs:update("p", "j1", { payload = { { apiName = "a", parameters = {} } },
          configuration = { maxConcurrentRequests = 1 }, sink = sink })
        assert.equals("invalid_input", uerr.kind)
        assert.is_nil(leak(uerr))
      end
      local out = c:batch{
        { op = "jobs:create", project = "p", input = input(fresh_id(), S3_SINK) },
        { op = "jobs:create", project = "p", input = input(fresh_id(), { type = "webhook", url = "https://h.example/x",
                                                                         headers = { ["X-Hook"] = WH } }) },
      }
      for i = 1, 2 do
        assert.is_true(intuned.is_error(out[i]))
        assert.is_nil(leak(out[i]))
      end
      assert.is_true(#events >= 12)
      for _, ev in ipairs(events) do assert.is_nil(leak(ev), ev.event) end
    end)
  end)

  describe("a hook that closes the client", function()
    it("lets the call finish: its result comes back and the remaining events still reach the hook", function()
      local c
      local seen = {}
      c = intuned.client{ api_key = "test-key", workspace_id = WS, server_url = emu.url, hook = function(ev)
        seen[#seen + 1] = ev.event
        c:close()
      end }
      local id = fresh_id("close")
      local ok, res = pcall(c.jobs.create, c.jobs, "secrets", input(id))
      assert.is_true(ok, tostring(res))
      assert.equals(id, res.id)
      assert.same({ "request", "response" }, seen)
      assert.has_error(function() c.jobs:get("secrets", id) end, "intuned: the client is closed")
    end)

    it("lets a batch finish", function()
      local c
      local n = 0
      c = intuned.client{ api_key = "test-key", workspace_id = WS, server_url = emu.url, hook = function()
        n = n + 1
        c:close()
      end }
      local ok, out = pcall(c.batch, c, {
        { op = "jobs:list", project = "secrets" },
        { op = "jobs:get", project = "secrets", job_id = "no-such-job" },
      })
      assert.is_true(ok, tostring(out))
      assert.is_table(out[1])
      assert.is_false(intuned.is_error(out[1]))
      assert.equals("not_found", out[2].kind)
      assert.equals(4, n)
    end)
  end)
end)
