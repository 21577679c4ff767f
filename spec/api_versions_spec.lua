-- The emulator's two API versions (--api-version newest | v0.3.12), checked
-- over raw HTTP against the shapes of the reference: the newest API's (SDK
-- v0.5.2: JobV2, JobListItemV2, JobRunV2, {jobRuns, totalCount}, action
-- responses, typed errors) and v0.3.12's (Job with a state object, JobRun with
-- summary, bare arrays).  Shapes are strict: a key the version does not have
-- is a failure, as is a missing required key or a null where none is allowed.
-- The binary comes from $INTUNED_EMULATOR (see spec/helpers/emulator.lua).
local emulator = require "spec.helpers.emulator"

---------------------------------------------------------------- JSON
-- A small decoder that keeps what cjson loses here: [] against {} and a null
-- against an absent key.  Arrays and objects carry a metatable saying which
-- they are; JSON null is the NULL sentinel.
local NULL = setmetatable({}, { __tostring = function() return "null" end })
local ARRAY = { __name = "array" }
local OBJECT = { __name = "object" }

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                     0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local function json_decode(s)
  local pos = 1
  local function err(what) error(("JSON: %s at byte %d"):format(what, pos), 0) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local a, b = s:find('^[^"\\]+', pos)
      if a then out[#out + 1] = s:sub(a, b); pos = b + 1 end
      local c = s:sub(pos, pos)
      if c == '"' then pos = pos + 1; return table.concat(out) end
      if c ~= "\\" then err("unterminated string") end
      local e = s:sub(pos + 1, pos + 1)
      local simple = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
      if simple[e] then out[#out + 1] = simple[e]; pos = pos + 2
      elseif e == "u" then
        local cp = tonumber(s:sub(pos + 2, pos + 5), 16) or err("bad \\u escape")
        pos = pos + 6
        if cp >= 0xD800 and cp < 0xDC00 and s:sub(pos, pos + 1) == "\\u" then
          local lo = tonumber(s:sub(pos + 2, pos + 5), 16) or err("bad \\u escape")
          cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
          pos = pos + 6
        end
        out[#out + 1] = utf8_char(cp)
      else err("bad escape") end
    end
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local o = setmetatable({}, OBJECT)
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return o end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then err("expected a key") end
        local k = str()
        if o[k] ~= nil then err("duplicate key " .. k) end
        ws()
        if s:sub(pos, pos) ~= ":" then err("expected ':'") end
        pos = pos + 1
        o[k] = value()
        ws()
        c = s:sub(pos, pos)
        pos = pos + 1
        if c == "}" then return o end
        if c ~= "," then err("expected ',' or '}'") end
      end
    elseif c == "[" then
      local a = setmetatable({}, ARRAY)
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return a end
      while true do
        a[#a + 1] = value()
        ws()
        c = s:sub(pos, pos)
        pos = pos + 1
        if c == "]" then return a end
        if c ~= "," then err("expected ',' or ']'") end
      end
    elseif c == '"' then return str()
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4; return NULL
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    end
    local a, b = s:find("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not a then err("unexpected character") end
    pos = b + 1
    return tonumber(s:sub(a, b)) or err("bad number")
  end
  local v = value()
  ws()
  if pos <= #s then err("trailing text") end
  return v
end

---------------------------------------------------------------- shapes
-- A shape is a function(value, path) returning nil or a message.
local S = {}

local function kind(v)
  if v == NULL then return "null" end
  local t = type(v)
  if t == "table" then return getmetatable(v) == ARRAY and "array" or "object" end
  return t
end

function S.string(v, p) if type(v) ~= "string" then return p .. ": expected a string, got " .. kind(v) end end
function S.number(v, p) if type(v) ~= "number" then return p .. ": expected a number, got " .. kind(v) end end
function S.int(v, p)
  if type(v) ~= "number" or v ~= math.floor(v) then return p .. ": expected an integer, got " .. tostring(v) end
end
function S.bool(v, p) if type(v) ~= "boolean" then return p .. ": expected a boolean, got " .. kind(v) end end
function S.any() end

function S.const(want)
  return function(v, p)
    if v ~= want then return ("%s: expected %q, got %s"):format(p, tostring(want), tostring(v)) end
  end
end

function S.enum(list)
  local set = {}
  for _, x in ipairs(list) do set[x] = true end
  return function(v, p)
    if not set[v] then return ("%s: %s is not one of %s"):format(p, tostring(v), table.concat(list, "|")) end
  end
end

function S.nullable(shape) return function(v, p) if v ~= NULL then return shape(v, p) end end end

function S.array(item)
  return function(v, p)
    if kind(v) ~= "array" then return p .. ": expected an array, got " .. kind(v) end
    for i, x in ipairs(v) do
      local e = item(x, ("%s[%d]"):format(p, i - 1))
      if e then return e end
    end
  end
end

-- A free-form object (string -> values of `shape`).
function S.map(shape)
  return function(v, p)
    if kind(v) ~= "object" then return p .. ": expected an object, got " .. kind(v) end
    for k, x in pairs(v) do
      local e = shape(x, p .. "." .. k)
      if e then return e end
    end
  end
end

-- An object with required keys `req`, optional keys `opt` and no others
-- (extra = true: other keys allowed, as the v0.3.12 error models do).
function S.object(req, opt, extra)
  req, opt = req or {}, opt or {}
  return function(v, p)
    if kind(v) ~= "object" then return p .. ": expected an object, got " .. kind(v) end
    local keys = {}
    for k in pairs(req) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      if v[k] == nil then return ("%s: required key %q is missing"):format(p, k) end
      local e = req[k](v[k], p .. "." .. k)
      if e then return e end
    end
    local names = {}
    for k in pairs(v) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      if opt[k] then
        local e = opt[k](v[k], p .. "." .. k)
        if e then return e end
      elseif not req[k] and not extra then
        return ("%s: key %q does not belong here"):format(p, k)
      end
    end
  end
end

-- The first member that fits; else the messages of all.
function S.one_of(...)
  local members = { ... }
  return function(v, p)
    local why = {}
    for _, m in ipairs(members) do
      local e = m(v, p)
      if not e then return nil end
      why[#why + 1] = e:sub(1, #p) == p and e:sub(#p + 1):gsub("^[:%s]+", "") or e
    end
    return p .. ": fits no member (" .. table.concat(why, "; ") .. ")"
  end
end

-- §5.3: YYYY-MM-DDTHH:MM:SS[.fraction] then Z, +HH:MM or +HHMM (either sign).
function S.datetime(v, p)
  if type(v) ~= "string" then return p .. ": expected a date-time string, got " .. kind(v) end
  local rest = v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d(.*)$")
  if rest then rest = rest:gsub("^%.%d+", "") end
  if not rest or not (rest == "Z" or rest:match("^[-+]%d%d:?%d%d$")) then
    return p .. ": not a date-time: " .. v
  end
end

---------------------------------------------------------------- the newest API (reference §8)
local N = {}
N.retry = S.object({}, { maximumAttempts = S.int })
N.configuration = S.object({}, { retry = N.retry, maxConcurrentRequests = S.number, requestTimeout = S.int })
N.payload = S.object({ apiName = S.string, parameters = S.map(S.any) }, { requestTimeout = S.int, retry = N.retry })
N.webhook = S.object({ type = S.const("webhook"), url = S.string },
                     { headers = S.map(S.string), skipOnFail = S.bool, apisToSend = S.array(S.string) })
N.s3 = S.object({ type = S.const("s3"), bucket = S.string, accessKeyId = S.string, secretAccessKey = S.string,
                  region = S.string },
                { prefix = S.string, skipOnFail = S.bool, apisToSend = S.array(S.string), endpoint = S.string,
                  forcePathStyle = S.bool })
N.sink = S.one_of(N.webhook, N.s3)

-- One calendar field: the five forms of §8.3 over `value` (ints or names).
local function cal_field(value)
  local step_range = S.object({ start = value, step = S.int, ["end"] = value })
  local range = S.object({ start = value }, { ["end"] = value })
  return S.one_of(step_range, range, value, S.array(S.one_of(step_range, range, value)), S.const("*"))
end
local DAYS = { "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY" }
local MONTHS = { "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
                 "NOVEMBER", "DECEMBER" }
N.calendar = S.object({}, { second = cal_field(S.int), minute = cal_field(S.int), hour = cal_field(S.int),
                            dayOfWeek = cal_field(S.enum(DAYS)), dayOfMonth = cal_field(S.int),
                            month = cal_field(S.enum(MONTHS)), year = cal_field(S.int), comment = S.string })
N.schedule = S.object({}, { jitter = S.one_of(S.int, S.string),
                            intervals = S.array(S.object({ every = S.one_of(S.int, S.string) })),
                            calendars = S.array(N.calendar) })
N.auth = S.object({ id = S.string }, { checkAttempts = S.int, createAttempts = S.int })
N.proxy_object = S.object({ version = S.const("v1"), url = S.string })
N.state = S.enum{ "ACTIVE", "PAUSED" }

N.job = S.object(
  { id = S.string, projectId = S.string, configuration = N.configuration, created_at = S.string, state = N.state },
  { payload = S.array(N.payload), sink = S.nullable(N.sink), schedule = S.nullable(N.schedule),
    next_run_time = S.nullable(S.string), last_run_time = S.nullable(S.string), auth_session = S.nullable(N.auth),
    proxy = S.string })
N.list_item = S.object(
  { id = S.string, workspace_id = S.string, project_id = S.string, configuration = N.configuration,
    payload = S.array(N.payload), created_at = S.string, state = N.state },
  { sink = S.nullable(N.sink), schedule = S.nullable(N.schedule), next_run_time = S.nullable(S.string),
    last_run_time = S.nullable(S.string), auth_session = S.nullable(N.auth), proxy = S.nullable(N.proxy_object),
    reason = S.nullable(S.object({ type = S.enum{ "paused", "terminated" }, message = S.string },
                                 { details = S.any, timestamp = S.datetime })),
    schedule_id = S.nullable(S.string) })

N.run_status = S.enum{ "CANCELED", "PENDING", "PAUSED", "PAUSING", "RESUMING", "SUCCESS", "FAILURE", "TERMINATED",
                       "COMPLETED" }
N.run = S.object(
  { id = S.string, start_time = S.string, end_time = S.nullable(S.string), workspace_id = S.string,
    project_id = S.string, job_id = S.string, created_at = S.string, updated_at = S.string,
    type = S.enum{ "MANUAL", "SCHEDULED" }, status = N.run_status, payloads = S.nullable(S.int),
    successful_runs = S.nullable(S.int), failed_runs = S.nullable(S.int),
    job_configuration_snapshot = S.object({ configuration = N.configuration },
      { sink = S.nullable(N.sink), auth_session = S.nullable(N.auth), proxy = S.nullable(N.proxy_object) }) },
  { error = S.nullable(S.object(
      { message = S.string, code = S.enum{ "internal-server-error", "insufficient-resource-credits" },
        category = S.enum{ "billing", "infrastructure" } },
      { details = S.any, correlationId = S.string, retirable = S.bool, doc_url = S.string })),
    reason = S.nullable(S.object(
      { type = S.enum{ "terminated", "user-request", "auth-session-not-found", "auth-session-invalid-mid-job",
                       "auth-session-validate-dependency-failed", "auth-session-locked", "another-job-run-active",
                       "insufficient-resource-credits", "s3-sink-error" },
        message = S.string },
      { details = S.any, doc_url = S.string })) })
N.runs = S.object({ jobRuns = S.array(N.run), totalCount = S.int })
N.run_detail = S.object({ jobRun = N.run }, { results = S.object({ signed_url = S.string, format = S.string },
  { signed_url_expiration = S.string, size = S.number, key = S.string }) })

N.created = S.object({ id = S.string, message = S.const("created") })
N.updated = S.object({ id = S.string, message = S.const("updated job successfully") })
N.paused = S.object({ message = S.const("Paused") })
N.resumed = S.object({ message = S.const("Resumed") })
N.triggered = S.object({ jobRunId = S.string, message = S.string })
N.terminated = S.object({ message = S.string })
function N.error(code)
  return S.object({ code = S.const(code), category = S.const("user"), message = S.string, retirable = S.bool,
                    correlationId = S.string }, { details = S.any })
end

---------------------------------------------------------------- v0.3.12 (reference §3, §4)
local V = {}
V.configuration = S.object({ runMode = S.const("Order-Irrelevant") }, {
  maxConcurrentRequests = S.number,
  retry = S.object({ maximumAttempts = S.number },
                   { backoffCoefficient = S.number, initialInterval = S.number, maximumInterval = S.number }) })
V.payload = S.object({ apiName = S.string }, { parameters = S.one_of(S.map(S.any), S.array(S.any)) })
V.webhook = S.object({ type = S.const("webhook"), url = S.string }, { headers = S.map(S.any), skipOnFail = S.bool })
V.s3 = S.object({ type = S.const("s3"), region = S.string, bucket = S.string, accessKeyId = S.string,
                  secretAccessKey = S.string }, { prefix = S.string, skipOnFail = S.bool })
local num_or_str = S.one_of(S.number, S.string)
V.range = S.object({ start = num_or_str }, { ["end"] = num_or_str, step = S.number })
V.calvalue = S.one_of(V.range, S.string, S.number, S.array(V.range))
V.schedule = S.object({}, {
  intervals = S.array(S.object({ every = num_or_str })),
  calendars = S.array(S.object({}, { second = V.calvalue, minute = V.calvalue, hour = V.calvalue,
                                     dayOfMonth = V.calvalue, dayOfWeek = V.calvalue, month = V.calvalue,
                                     year = V.calvalue, comment = S.string })) })
V.state = S.one_of(S.object({}, { status = S.const("ACTIVE") }),
                   S.object({}, { status = S.const("PAUSED"), reason = S.string }))
V.job = S.object(
  { id = S.string, payload = S.array(V.payload), configuration = V.configuration,
    next_run_time = S.nullable(S.datetime), last_run_time = S.nullable(S.datetime), state = V.state,
    projectId = S.string },
  { sink = S.nullable(S.one_of(V.webhook, V.s3)), schedule = V.schedule, authSession = S.object({ id = S.string }),
    created_at = S.datetime })
V.run = S.object(
  { id = S.string, projectId = S.string, jobId = S.string, start_time = S.datetime,
    status = S.enum{ "FAILED", "COMPLETED", "PENDING", "TERMINATED", "PAUSED" },
    type = S.enum{ "MANUAL", "SCHEDULED" }, workspace_id = S.string },
  { summary = S.nullable(S.object({ apis_count = S.number, success_count = S.number, failures_count = S.number },
                                  { pending_count = S.number })) })
V.created = S.object({}, { id = S.string, message = S.const("created") })
V.paused = S.object({}, { id = S.string, message = S.const("Paused") })
V.resumed = S.object({}, { id = S.string, message = S.const("Resumed") })
-- jobRunId is not in v0.3.12's TriggerJob (§4.9): the emulator adds it in
-- both modes, so that a client can follow the run it started (an SDK drops
-- keys it does not know).  Allowed here, and nothing else.
V.triggered = S.object({}, { id = S.string, message = S.const("Triggered"), jobRunId = S.string })
V.terminated = S.object({}, { message = S.const("Job run terminated") })
V.error400 = S.object({}, { message = S.string, details = S.any }, true)
V.error401 = S.object({}, { message = S.string }, true)

---------------------------------------------------------------- helpers
local function fits(shape, doc, what)
  local e = shape(doc, what or "body")
  assert(e == nil, e)
end

local function misfits(shape, doc)
  return shape(doc, "body") ~= nil
end

local function example(name)
  return json_decode(assert(emulator.read_file("spec/fixtures/examples/" .. name), name))
end

local function eventually(fn, seconds) return emulator.eventually(fn, seconds or 20) end

local P = "/ws-local/projects/versions"

-- A call; returns the status, the decoded body (nil when empty) and the response.
local function call(emu, method, path, opts)
  local r = emu.api(method, P .. path, opts)
  local doc
  if r.body ~= "" then
    local ok, v = pcall(json_decode, r.body)
    assert(ok, ("%s %s: HTTP %d, not JSON: %s"):format(method, path, r.status, r.body))
    doc = v
    assert.matches("^application/json", r.headers["content-type"] or "", 1, false)
  end
  return r.status, doc, r
end

-- A call that must answer `status`; returns the body.
local function expect(emu, status, method, path, opts)
  local got, doc, r = call(emu, method, path, opts)
  assert(got == status, ("%s %s: expected HTTP %d, got %d: %s"):format(method, path, status, got, r.body))
  return doc
end

---------------------------------------------------------------- the shape checker itself
describe("api_versions spec's shapes", function()
  it("take the reference's own examples", function()
    fits(V.job, example("job-webhook-paused.json"))
    fits(V.job, example("job-s3-active.json"))
    fits(S.array(V.job), example("jobs-list.json"))
    fits(S.array(V.run), example("runs-list.json"))
    fits(V.created, example("create-response.json"))
    fits(V.paused, example("pause-response.json"))
    fits(V.triggered, example("trigger-response.json"))
    fits(V.terminated, example("terminate-response.json"))
    fits(V.error400, example("error-400.json"))
    fits(V.error401, example("error-401.json"))
    fits(N.error("not-found"), example("error-404.json"))
  end)

  it("refuse extra keys, missing keys, nulls, [] for {} and the other version's forms", function()
    assert.is_true(misfits(N.paused, json_decode('{"id":"j","message":"Paused"}')))
    assert.is_true(misfits(N.triggered, json_decode('{"message":"Triggered"}')))
    assert.is_true(misfits(N.payload, json_decode('{"apiName":"a","parameters":[]}')))
    assert.is_true(misfits(N.runs, json_decode("[]")))
    assert.is_true(misfits(N.runs, json_decode('{"jobRuns":{},"totalCount":0}')))
    assert.is_true(misfits(N.runs, json_decode('{"jobRuns":[],"totalCount":0.5}')))
    assert.is_true(misfits(N.configuration, json_decode('{"runMode":"Order-Irrelevant"}')))
    -- next_run_time is required (nullable) at v0.3.12
    local s3 = emulator.read_file("spec/fixtures/examples/job-s3-active.json")
    local without = s3:gsub('"next_run_time":%s*null,%s*', "")
    assert.are_not.equal(s3, without)
    assert.is_true(misfits(V.job, json_decode(without)))
    assert.is_true(misfits(N.state, json_decode('{"status":"ACTIVE"}')))
    assert.is_true(misfits(V.state, json_decode('"ACTIVE"')))
    assert.is_true(misfits(S.nullable(S.string), json_decode("1")))
    assert.is_true(misfits(S.string, NULL))
    assert.is_nil(N.runs(json_decode('{"jobRuns":[],"totalCount":0}'), "body"))
    assert.is_true(misfits(S.datetime, "2025-06-01T12:00:00+05"))
    assert.is_nil(S.datetime("2025-06-01T12:00:00.5-0130", "x"))
  end)

  it("decode JSON escapes, nesting and numbers", function()
    local v = json_decode('{"a":"x\\u00e4\\ud83d\\ude00\\n","b":[1,-2.5e1,true,false,null,{}],"c":{}}')
    assert.are.equal("x\195\164\240\159\152\128\n", v.a)
    assert.are.equal(-25, v.b[2])
    assert.are.equal(NULL, v.b[5])
    assert.are.equal("object", kind(v.b[6]))
    assert.are.equal("object", kind(v.c))
    assert.has_error(function() json_decode('{"a":1,"a":2}') end)
    assert.has_error(function() json_decode("[1,]") end)
  end)
end)

---------------------------------------------------------------- newest
describe("intuned-emulator --api-version newest", function()
  local emu
  setup(function()
    -- 500 ms API calls: a six-payload run done one at a time lasts 3 s,
    -- long enough to terminate it; "fail..." APIs always fail
    emu = emulator.start{ "--api-version", "newest", "--api-latency-ms", "500", "--time-scale", "0.001" }
    -- newest mode: a job's auth_session must name an existing session
    expect(emu, 201, "POST", "/auth-sessions/create", { body = '{"id":"sess-1","parameters":{}}' })
  end)
  teardown(function() emulator.stop_all() end)

  -- The bodies as the newest SDK sends them (its defaults filled in).
  local minimal = '{"id":"v-min","payload":[{"parameters":{},"requestTimeout":600,"apiName":"ok/a"}],' ..
                  '"configuration":{"requestTimeout":600}}'
  local rich = '{"id":"v-rich","payload":[{"parameters":{"q":"x"},"requestTimeout":120,' ..
    '"retry":{"maximumAttempts":2},"apiName":"ok/b"}],' ..
    '"configuration":{"retry":{"maximumAttempts":3},"maxConcurrentRequests":2,"requestTimeout":300},' ..
    '"schedule":{"jitter":"1m","intervals":[{"every":3600000}],"calendars":[{"minute":{"start":0,"step":15,"end":30},' ..
    '"hour":3,"dayOfWeek":{"start":"MONDAY","end":"FRIDAY"},"month":"*","comment":"weekdays"}]},' ..
    '"sink":{"type":"webhook","url":"http://127.0.0.1:9/hook","headers":{"x-a":"1"},"skipOnFail":false,' ..
    '"apisToSend":["ok/b"]},"proxy":"http://proxy.invalid:8080",' ..
    '"auth_session":{"id":"sess-1","checkAttempts":3,"createAttempts":3}}'
  local payloads = {}
  for n = 1, 6 do
    payloads[n] = ('{"parameters":{"n":%d},"requestTimeout":600,"apiName":"ok/%d"}'):format(n, n)
  end
  local six = '{"payload":[' .. table.concat(payloads, ",") .. '],' ..
    '"configuration":{"maxConcurrentRequests":1,"requestTimeout":600}}'

  it("creates (201 {id, message}) and answers get job with a JobV2", function()
    fits(N.created, expect(emu, 201, "POST", "/jobs", { body = minimal }))
    fits(N.created, expect(emu, 201, "POST", "/jobs", { body = rich }))

    local job = expect(emu, 200, "GET", "/jobs/v-min")
    fits(N.job, job, "job")
    assert.are.equal("v-min", job.id)
    assert.are.equal("ACTIVE", job.state)
    assert.are.equal(600, job.configuration.requestTimeout)
    assert.is_nil(job.configuration.runMode)
    assert.are.equal("object", kind(job.payload[1].parameters))

    job = expect(emu, 200, "GET", "/jobs/v-rich")
    fits(N.job, job, "job")
    assert.are.equal("http://proxy.invalid:8080", job.proxy)   -- JobV2: proxy is a string
    assert.are.same({ id = "sess-1", checkAttempts = 3, createAttempts = 3 },
                    { id = job.auth_session.id, checkAttempts = job.auth_session.checkAttempts,
                      createAttempts = job.auth_session.createAttempts })
    assert.is_nil(job.authSession)
    assert.are.equal(120, job.payload[1].requestTimeout)
    assert.are.equal(2, job.payload[1].retry.maximumAttempts)
    assert.are.equal(300, job.configuration.requestTimeout)
    assert.are.same({ "ok/b" }, { job.sink.apisToSend[1] })
    assert.are.equal("1m", job.schedule.jitter)
    assert.are.equal(30, job.schedule.calendars[1].minute["end"])
    assert.is_string(job.next_run_time)

    -- an S3 sink with the newest keys; schedule, proxy, auth_session sent as null
    fits(N.created, expect(emu, 201, "POST", "/jobs", { body = '{"id":"v-s3","payload":[{"parameters":{},' ..
      '"requestTimeout":600,"apiName":"ok/c"}],"configuration":{"requestTimeout":600},"schedule":null,' ..
      '"sink":{"type":"s3","bucket":"b","accessKeyId":"AKIAEXAMPLE","secretAccessKey":"example-secret",' ..
      '"region":"us-east-1","prefix":"p/","skipOnFail":true,"apisToSend":["ok/c"],"endpoint":"http://127.0.0.1:9",' ..
      '"forcePathStyle":true},"proxy":null,"auth_session":null}' }))
    job = expect(emu, 200, "GET", "/jobs/v-s3")
    fits(N.job, job, "job")
    assert.are.equal("s3", job.sink.type)
    assert.are.equal("http://127.0.0.1:9", job.sink.endpoint)
    assert.is_true(job.sink.forcePathStyle)
    assert.is_true(job.schedule == nil or job.schedule == NULL)
    assert.is_true(job.auth_session == nil or job.auth_session == NULL)
    assert.is_nil(job.proxy)
    expect(emu, 204, "DELETE", "/jobs/v-s3")
  end)

  it("lists jobs as an array of JobListItemV2", function()
    local list = expect(emu, 200, "GET", "/jobs")
    fits(S.array(N.list_item), list, "jobs")
    local by = {}
    for _, j in ipairs(list) do by[j.id] = j end
    assert.is_table(by["v-min"])
    assert.are.equal("ws-local", by["v-rich"].workspace_id)
    assert.is_nil(by["v-rich"].projectId)
    -- the list item's proxy is an object
    assert.are.equal("v1", by["v-rich"].proxy.version)
    assert.are.equal("http://proxy.invalid:8080", by["v-rich"].proxy.url)
  end)

  it("updates (PUT, 200 {id, message}) with the whole definition", function()
    fits(N.updated, expect(emu, 200, "PUT", "/jobs/v-min", { body = six }))
    local job = expect(emu, 200, "GET", "/jobs/v-min")
    fits(N.job, job, "job")
    assert.are.equal(6, #job.payload)
    assert.are.equal(1, job.configuration.maxConcurrentRequests)
  end)

  it("pauses ({message: Paused} only), refuses a trigger, resumes ({message: Resumed})", function()
    fits(N.paused, expect(emu, 200, "POST", "/jobs/v-min/pause"))
    local job = expect(emu, 200, "GET", "/jobs/v-min")
    fits(N.job, job, "job")
    assert.are.equal("PAUSED", job.state)
    assert.is_nil(job.reason)   -- JobV2 has no reason; the list item has it
    local item
    for _, j in ipairs(expect(emu, 200, "GET", "/jobs")) do if j.id == "v-min" then item = j end end
    fits(N.list_item, item, "item")
    assert.are.equal("PAUSED", item.state)
    if item.reason ~= nil and item.reason ~= NULL then assert.are.equal("paused", item.reason.type) end

    local status = call(emu, "POST", "/jobs/v-min/trigger")
    assert.is_true(status >= 400 and status < 500 and status ~= 404 and status ~= 401, "trigger while paused: " .. status)

    fits(N.resumed, expect(emu, 200, "POST", "/jobs/v-min/resume"))
    assert.are.equal("ACTIVE", expect(emu, 200, "GET", "/jobs/v-min").state)
  end)

  describe("runs", function()
    local first, second
    it("trigger answers {jobRunId, message} without id", function()
      local t = expect(emu, 200, "POST", "/jobs/v-min/trigger")
      fits(N.triggered, t)
      first = t.jobRunId
      -- terminate at once: six 500 ms calls one at a time are still going
      fits(N.terminated, expect(emu, 200, "POST", "/jobs/v-min/runs/" .. first .. "/terminate"))
      t = expect(emu, 200, "POST", "/jobs/v-min/trigger")
      fits(N.triggered, t)
      second = t.jobRunId
      assert.are_not.equal(first, second)
    end)

    it("list runs is {jobRuns, totalCount} with and without paging; JobRunV2 items", function()
      local page = expect(emu, 200, "GET", "/jobs/v-min/runs")
      fits(N.runs, page, "runs")
      assert.are.equal(2, page.totalCount)
      assert.are.equal(2, #page.jobRuns)
      for _, r in ipairs(page.jobRuns) do
        assert.are.equal("v-min", r.job_id)
        assert.are.equal("ws-local", r.workspace_id)
        assert.are.equal(6, r.payloads)
        assert.is_nil(r.summary)
        assert.is_nil(r.jobId)
        assert.is_nil(r.projectId)
      end

      page = expect(emu, 200, "GET", "/jobs/v-min/runs?pageNumber=0&pageSize=1&sortBy=start_time,desc")
      fits(N.runs, page, "runs page")
      assert.are.equal(2, page.totalCount)
      assert.are.equal(1, #page.jobRuns)
      local other = expect(emu, 200, "GET", "/jobs/v-min/runs?pageNumber=1&pageSize=1&sortBy=start_time,desc")
      fits(N.runs, other, "runs page 1")
      assert.are.equal(1, #other.jobRuns)
      assert.are_not.equal(page.jobRuns[1].id, other.jobRuns[1].id)
      local beyond = expect(emu, 200, "GET", "/jobs/v-min/runs?pageNumber=5&pageSize=1")
      fits(N.runs, beyond, "runs page 5")
      assert.are.equal(0, #beyond.jobRuns)
      assert.are.equal(2, beyond.totalCount)
    end)

    it("get one run is {jobRun, results?}; a terminated run says TERMINATED", function()
      assert.is_string(first, "no run id from the trigger test")
      local d = expect(emu, 200, "GET", "/jobs/v-min/runs/" .. first)
      fits(N.run_detail, d, "run")
      assert.are.equal(first, d.jobRun.id)
      assert.are.equal("TERMINATED", d.jobRun.status)
      assert.are.equal("MANUAL", d.jobRun.type)
      assert.are.equal(1, d.jobRun.job_configuration_snapshot.configuration.maxConcurrentRequests)
      local done = eventually(function()
        local x = expect(emu, 200, "GET", "/jobs/v-min/runs/" .. second)
        fits(N.run_detail, x, "run")
        return x.jobRun.end_time ~= NULL and x
      end)
      assert.is_table(done, "the second run did not end")
      assert.is_string(done.jobRun.end_time)
      assert.are.equal(6, done.jobRun.successful_runs)
      assert.are.equal(0, done.jobRun.failed_runs)
      assert.is_true(done.jobRun.status == "COMPLETED" or done.jobRun.status == "SUCCESS", done.jobRun.status)
    end)

    it("a failed run has a newest status (FAILED is gone) and counts its failures", function()
      fits(N.created, expect(emu, 201, "POST", "/jobs", { body =
        '{"id":"v-fail","payload":[{"parameters":{},"requestTimeout":600,"retry":{"maximumAttempts":1},' ..
        '"apiName":"fail/x"}],"configuration":{"retry":{"maximumAttempts":1},"requestTimeout":600}}' }))
      local id = expect(emu, 200, "POST", "/jobs/v-fail/trigger").jobRunId
      local run = eventually(function()
        local page = expect(emu, 200, "GET", "/jobs/v-fail/runs")
        fits(N.runs, page, "runs")
        local r = page.jobRuns[1]
        return r and r.end_time ~= NULL and r
      end)
      assert.is_table(run, "the failing run did not end")
      assert.are.equal(id, run.id)
      assert.are_not.equal("FAILED", run.status)
      assert.are.equal(1, run.failed_runs)
      assert.are.equal(0, run.successful_runs)
    end)
  end)

  describe("typed errors", function()
    it("400 {code: bad-request, ...} where an operation declares 400", function()
      local e = expect(emu, 400, "POST", "/jobs", { body =
        '{"id":"bad id!","payload":[],"configuration":{"requestTimeout":600}}' })
      fits(N.error("bad-request"), e, "400")
      e = expect(emu, 400, "GET", "/jobs/v-min/runs?pageSize=0")
      fits(N.error("bad-request"), e, "400")
      e = expect(emu, 400, "PUT", "/jobs/v-min", { body = '{"payload":[{"apiName":"a"}],"configuration":{}}' })
      fits(N.error("bad-request"), e, "400")
    end)

    local ops = {
      { "GET", "/jobs" },
      { "POST", "/jobs", '{"id":"v-x","payload":[{"parameters":{},"apiName":"ok/a"}],"configuration":{}}' },
      { "GET", "/jobs/%s" }, { "PUT", "/jobs/%s", '{"payload":[{"parameters":{},"apiName":"ok/a"}],"configuration":{}}' },
      { "DELETE", "/jobs/%s" },
      { "POST", "/jobs/%s/pause" }, { "POST", "/jobs/%s/resume" }, { "POST", "/jobs/%s/trigger" },
      { "GET", "/jobs/%s/runs" }, { "GET", "/jobs/%s/runs/run-none" }, { "POST", "/jobs/%s/runs/run-none/terminate" },
    }

    it("401 {code: unauthorized, ...} on every operation", function()
      for _, op in ipairs(ops) do
        local e = expect(emu, 401, op[1], op[2]:format("v-min"), { body = op[3], key = "wrong-key" })
        fits(N.error("unauthorized"), e, op[1] .. " " .. op[2])
      end
    end)

    it("404 {code: not-found, ...} on every operation of a job or run that does not exist", function()
      for _, op in ipairs(ops) do
        if op[2]:find("%s", 1, true) then
          fits(N.error("not-found"), expect(emu, 404, op[1], op[2]:format("v-none"), { body = op[3] }),
               op[1] .. " " .. op[2])
        end
      end
      fits(N.error("not-found"), expect(emu, 404, "GET", "/jobs/v-min/runs/run-none"), "run")
      fits(N.error("not-found"), expect(emu, 404, "POST", "/jobs/v-min/runs/run-none/terminate"), "run")
    end)
  end)

  -- v0.3.12-only calendar forms (free strings, numbers as strings, numbers
  -- for names, "*" inside an array): ScheduleV2 has no form for them, so a
  -- newest answer could not carry them.  Refusing them is one way, answering
  -- them converted is another; keeping them verbatim breaks get and list.
  it("refuses calendar values outside ScheduleV2 (400), or answers them in its forms", function()
    local cases = {
      '{"dayOfWeek":"MON-FRI"}', '{"month":"JAN"}', '{"minute":"0"}', '{"hour":"*/5"}', '{"dayOfWeek":1}',
      '{"month":12}', '{"minute":{"start":"5"}}', '{"minute":["*"]}', '{"dayOfWeek":{"start":"MONDAY","end":5}}',
    }
    local valid = { '{"minute":[0,{"start":30}]}', '{"dayOfWeek":["MONDAY",{"start":"FRIDAY","end":"SATURDAY"}]}',
                    '{"month":"*","second":{"start":0,"step":10,"end":50}}' }
    for i, cal in ipairs(cases) do cases[i] = { cal, false } end
    for _, cal in ipairs(valid) do cases[#cases + 1] = { cal, true } end
    for i, c in ipairs(cases) do
      local id = "v-cal-" .. i
      local status, doc, r = call(emu, "POST", "/jobs", { body = ('{"id":"%s","payload":[{"parameters":{},"apiName":"ok/a"}],' ..
        '"configuration":{},"schedule":{"calendars":[%s]}}'):format(id, c[1]) })
      if status == 400 and not c[2] then
        fits(N.error("bad-request"), doc, c[1])
      else
        assert(status == 201, c[1] .. ": HTTP " .. status .. " " .. r.body)
        fits(N.job, expect(emu, 200, "GET", "/jobs/" .. id), c[1])
        fits(S.array(N.list_item), expect(emu, 200, "GET", "/jobs"), c[1])
        expect(emu, 204, "DELETE", "/jobs/" .. id)
      end
    end
  end)

  it("deletes with 204 and no body; the job is gone", function()
    local status, doc = call(emu, "DELETE", "/jobs/v-rich")
    assert.are.equal(204, status)
    assert.is_nil(doc)
    fits(N.error("not-found"), expect(emu, 404, "GET", "/jobs/v-rich"))
  end)
end)

---------------------------------------------------------------- v0.3.12
describe("intuned-emulator --api-version v0.3.12", function()
  local emu
  setup(function()
    emu = emulator.start{ "--api-version", "v0.3.12", "--api-latency-ms", "500", "--time-scale", "0.001" }
  end)
  teardown(function() emulator.stop_all() end)

  local input = '{"id":"o-job","payload":[{"apiName":"ok/1","parameters":{"n":1}},{"apiName":"ok/2",' ..
    '"parameters":["a",1]},{"apiName":"ok/3"},{"apiName":"ok/4"},{"apiName":"ok/5"},{"apiName":"ok/6"}],' ..
    '"schedule":{"intervals":[{"every":"1h"}]},"authSession":{"id":"sess-1"},' ..
    '"configuration":{"runMode":"Order-Irrelevant","maxConcurrentRequests":1,' ..
    '"retry":{"maximumAttempts":2,"backoffCoefficient":1,"initialInterval":"1s","maximumInterval":"10m"}}}'

  it("gives the v0.3.12 Job: state object, projectId, authSession, retry in ms", function()
    fits(V.created, expect(emu, 201, "POST", "/jobs", { body = input }))
    local job = expect(emu, 200, "GET", "/jobs/o-job")
    fits(V.job, job, "job")
    assert.are.same({ status = "ACTIVE" }, { status = job.state.status, reason = job.state.reason })
    assert.are.equal("sess-1", job.authSession.id)
    assert.is_nil(job.auth_session)
    assert.are.equal(1000, job.configuration.retry.initialInterval)
    assert.are.equal(600000, job.configuration.retry.maximumInterval)
    assert.are.equal("array", kind(job.payload[2].parameters))
    assert.is_nil(job.payload[1].requestTimeout)
    assert.is_nil(job.configuration.requestTimeout)

    local list = expect(emu, 200, "GET", "/jobs")
    fits(S.array(V.job), list, "jobs")
    assert.are.equal(1, #list)
  end)

  it("pause, resume: {id?, message}; paused state is {status: PAUSED, reason?}", function()
    fits(V.paused, expect(emu, 200, "POST", "/jobs/o-job/pause"))
    local job = expect(emu, 200, "GET", "/jobs/o-job")
    fits(V.job, job, "job")
    assert.are.equal("PAUSED", job.state.status)
    fits(V.resumed, expect(emu, 200, "POST", "/jobs/o-job/resume"))
    assert.are.equal("ACTIVE", expect(emu, 200, "GET", "/jobs/o-job").state.status)
  end)

  it("trigger {id?, message: Triggered}; runs are a bare array of JobRun with summary", function()
    fits(V.triggered, expect(emu, 200, "POST", "/jobs/o-job/trigger"))
    local runs = expect(emu, 200, "GET", "/jobs/o-job/runs")
    fits(S.array(V.run), runs, "runs")
    assert.are.equal(1, #runs)
    local run = runs[1]
    assert.are.equal("o-job", run.jobId)
    assert.are.equal("MANUAL", run.type)
    assert.are.equal("PENDING", run.status)
    assert.is_table(run.summary)
    fits(V.terminated, expect(emu, 200, "POST", "/jobs/o-job/runs/" .. run.id .. "/terminate"))
    runs = expect(emu, 200, "GET", "/jobs/o-job/runs")
    fits(S.array(V.run), runs, "runs")
    assert.are.equal("TERMINATED", runs[1].status)
  end)

  it("a failed run says FAILED", function()
    fits(V.created, expect(emu, 201, "POST", "/jobs", { body = '{"id":"o-fail","payload":[{"apiName":"fail/x"}],' ..
      '"configuration":{"runMode":"Order-Irrelevant","retry":{"maximumAttempts":1}}}' }))
    fits(V.triggered, expect(emu, 200, "POST", "/jobs/o-fail/trigger"))
    local run = eventually(function()
      local runs = expect(emu, 200, "GET", "/jobs/o-fail/runs")
      fits(S.array(V.run), runs, "runs")
      return runs[1] and runs[1].status ~= "PENDING" and runs[1]
    end)
    assert.is_table(run, "the failing run did not end")
    assert.are.equal("FAILED", run.status)
    assert.are.equal(1, run.summary.failures_count)
  end)

  it("400 and 401 bodies fit ApiErrorInvalidInput and ApiErrorUnauthorized; 404 is an error status", function()
    fits(V.error400, expect(emu, 400, "POST", "/jobs", { body =
      '{"id":"bad id!","payload":[],"configuration":{"runMode":"Order-Irrelevant"}}' }))
    fits(V.error401, expect(emu, 401, "GET", "/jobs/o-job", { key = "wrong-key" }))
    fits(V.error401, expect(emu, 401, "POST", "/jobs/o-job/trigger", { key = "wrong-key" }))
    -- 404 is untyped at v0.3.12: any JSON body will do
    assert.is_table(expect(emu, 404, "GET", "/jobs/o-none"))
    local status, doc = call(emu, "DELETE", "/jobs/o-job")
    assert.are.equal(204, status)
    assert.is_nil(doc)
  end)
end)
