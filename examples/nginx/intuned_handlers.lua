-- examples/nginx/intuned_handlers.lua: the handlers of examples/nginx/nginx.conf.
-- The same intuned.client API as in plain Lua: inside nginx its calls go
-- through cosockets and yield, so other requests keep being served.
local intuned = require "intuned"
-- luacheck: globals ngx (handlers set ngx.status and ngx.header)

local M = {}

-- One client per worker, made on first use (the API key, workspace id and
-- server URL come from the environment kept by nginx's `env` directives).
local client
local function get_client()
  if not client then
    client = intuned.client{
      timeout = 10,  -- per attempt
      deadline = 20, -- whole call, retries included
    }
  end
  return client
end

local function reply(status, doc, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  ngx.print(type(doc) == "string" and doc or intuned.encode_json(doc), "\n")
end

-- How a failed call to the Jobs API is answered to our own caller.
local STATUS = {
  validation = 400, invalid_input = 400, not_found = 404, conflict = 409, rate_limited = 429,
  timeout = 504, -- the API did not answer in time
  -- the others (unauthorized: our key is wrong; server, connection, decode,
  -- api: the API misbehaved) are our upstream's fault, not the caller's
}

local function fail(err, extra)
  local doc = extra or {}
  doc.error, doc.message, doc.path = err.kind, err.message, err.path
  if err.status then doc.api_status = err.status end
  local headers
  if err.kind == "rate_limited" and err.retry_after then
    headers = { ["Retry-After"] = tostring(math.ceil(err.retry_after)) }
  end
  return reply(STATUS[err.kind] or 502, doc, headers)
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file() -- bigger than client_body_buffer_size
  if not file then return nil end
  local f = io.open(file, "rb")
  if not f then return nil end
  body = f:read("*a")
  f:close()
  return body
end

local function with_client()
  local ok, c = pcall(get_client)
  if not ok then
    -- e.g. INTUNED_API_KEY missing: say so in the log, not to the caller
    ngx.log(ngx.ERR, tostring(c))
    reply(500, { error = "server", message = "the Intuned client is not configured" })
    return nil
  end
  return c
end

--- POST /jobs: body = a JobInput (JSON); creates the job in project
-- $intuned_project, then triggers it.  201 {job, created, run, triggered}.
function M.create_and_trigger()
  if ngx.req.get_method() ~= "POST" then
    return reply(405, { error = "method", message = "use POST" }, { Allow = "POST" })
  end
  local body = read_body()
  if not body or body == "" then
    return reply(400, { error = "validation", message = "a JSON JobInput body is required" })
  end
  -- Validate before anything is sent: a bad body gets the field path.
  local input, err = intuned.JobInput.decode(body)
  if not input then return fail(err) end
  local c = with_client()
  if not c then return end
  local project = ngx.var.intuned_project
  local created
  created, err = c.jobs:create(project, input)
  if not created then return fail(err) end
  local run
  run, err = c.jobs:trigger(project, input.id)
  if not run then return fail(err, { job = created.id, created = true }) end
  return reply(201, { project = project, job = created.id, created = created.message,
                      run = run.jobRunId or intuned.null, triggered = run.message })
end

--- GET /jobs/<id>: a summary of the job (not the whole document: a sink
-- may hold secrets, an S3 key or webhook header values).
function M.get_job(job_id)
  local c = with_client()
  if not c then return end
  local job, err = c.jobs:get(ngx.var.intuned_project, job_id)
  if not job then return fail(err) end
  local apis = {}
  for i, p in ipairs(job.payload or {}) do apis[i] = p.apiName end
  return reply(200, {
    id = job.id,
    state = job.state and job.state.status or "ACTIVE",
    created_at = job.created_at or intuned.null,
    next_run_time = job.next_run_time or intuned.null,
    last_run_time = job.last_run_time or intuned.null,
    apis = intuned.array(apis),
    sink = job.sink and job.sink.type or intuned.null,
  })
end

-- The receiver of webhook sink results (intuned.webhook), one per worker.
-- The job's sink sends the token as a header: sink.headers =
-- { Authorization = "Bearer <INTUNED_WEBHOOK_TOKEN>" }; without the variable
-- the endpoint takes any delivery.  Deliveries already received are kept
-- in the shared dict intuned_webhook_seen, which every worker sees, so a
-- result redelivered (the sender missed our answer and retries) is answered
-- 200 but not processed twice, whichever worker gets it.
local receiver
local function get_receiver()
  if not receiver then
    local token = os.getenv("INTUNED_WEBHOOK_TOKEN")
    receiver = intuned.webhook.new{
      token = token ~= nil and token ~= "" and token or false,
      store = ngx.shared.intuned_webhook_seen,
      ttl = 86400, -- a day: far longer than a sender keeps retrying
    }
  end
  return receiver
end

-- What is done once per result: here, keep the last one and count them.
local function record(result)
  local dict = ngx.shared.intuned_webhooks
  local ok, err = dict:set("last", result:to_json())
  if not ok then return nil, "could not record the result: " .. tostring(err) end -- 500: the sender retries
  dict:set("last_at", ngx.now())
  local n = dict:incr("count", 1, 0)
  local api = result.apiInfo
  ngx.log(ngx.INFO, "intuned result #", n, ": job ", result.projectJob and result.projectJob.id or "-",
          " run ", result.projectJobRun and result.projectJobRun.id or "-", " api ", api.name, " -> ",
          api.result.status, " (", api.result.statusCode, ")")
  return true
end

--- POST /webhooks/intuned: a JobSinkResultPayload from the webhook sink.
-- 200 {ok, duplicate, key} once validated and recorded (a duplicate is not
-- recorded again); 400 with the failing field's path for a body that is not
-- one, so the sender does not retry it; 401 for a bad or missing token; 413
-- for a body over 1 MiB; 500 when it could not be recorded (retried).
function M.webhook()
  local res = get_receiver():handle_ngx(record)
  if res and not intuned.is_error(res) and res.duplicate then
    ngx.shared.intuned_webhooks:incr("duplicates", 1, 0)
  end
end

--- GET /webhooks/intuned/last: the last result received, with the count of
-- results and of duplicates answered.
function M.webhook_last()
  local dict = ngx.shared.intuned_webhooks
  local last = dict:get("last")
  if not last then return reply(404, { error = "not_found", message = "no result received yet" }) end
  return reply(200, ('{"count":%d,"duplicates":%d,"received_at":%s,"result":%s}')
    :format(dict:get("count") or 0, dict:get("duplicates") or 0, intuned.encode_json(dict:get("last_at") or 0), last))
end

return M
