-- examples/quickstart.lua: a job's whole lifecycle through intuned.client.
-- Runs against INTUNED_SERVER_URL (examples/run.sh starts a local emulator).
local intuned = require "intuned"

local server = os.getenv("INTUNED_SERVER_URL")
local client = intuned.client{
  api_key = os.getenv("INTUNED_API_KEY"),
  workspace_id = os.getenv("INTUNED_WORKSPACE_ID"),
  server_url = server,
}
print(client) -- no API key in here

local project = "quickstart"
local job_id = "quickstart-demo"
-- Results go to the emulator's built-in webhook receiver (a real job would
-- point at your service).
local receiver = server and server:match("^(https?://[^/]+)") .. "/_receiver/quickstart"

local function check(v, err)
  if v == nil then error(tostring(err), 2) end
  return v
end

-- Start clean if a previous run left the job behind.
client.jobs:delete(project, job_id)

local created = check(client.jobs:create(project, {
  id = job_id,
  payload = {
    { apiName = "products/list", parameters = { category = "kettles", page = 1 } },
    { apiName = "products/detail", parameters = { "SKU-1", "SKU-2" } },
  },
  sink = { type = "webhook", url = receiver, headers = { ["X-Token"] = "s3cr3t" } },
  configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2,
                    retry = { maximumAttempts = 3, initialInterval = "1s" } },
}))
print(("created %s (%s)"):format(created.id, created.message))

local job = check(client.jobs:get(project, job_id))
print(("job %s: %s, %d payloads, retry after %d ms, created %s")
  :format(job.id, job.state.status, #job.payload, job.configuration.retry.initialInterval, job.createdAt))
print(job)

for _, j in ipairs(check(client.jobs:list(project))) do print("listed:", j.id, j.state.status) end

print("triggering; waiting for the run to finish")
-- trigger, then poll the run (growing intervals from 0.1 s) until it ends
local run = check(client.jobs:trigger(project, job_id, { wait = { timeout = 60, poll = 0.1 } }))
print(("run %s: %s (%s), %d/%d payloads succeeded")
  :format(run.id, run.status, run.type, run.summary.success_count, run.summary.apis_count))

-- What the webhook received (read back from the emulator's receiver)
if receiver then
  -- reading the receiver takes the API key (its records hold the sink's secret headers)
  local key = (os.getenv("INTUNED_API_KEY") or ""):gsub("'", "'\\''")
  local function received()
    local p = io.popen("curl -s -H 'x-api-key: " .. key .. "' '" .. receiver .. "'")
    local got = p:read("*a")
    p:close()
    return intuned.decode_json(got) or {}
  end
  -- a run ends when its payloads do; each result's delivery is its own
  -- request, and may land a moment later (wait up to 5 s for all of them)
  local clock = require "intuned.clock"
  local records, t0 = received(), clock.now()
  while #records < run.summary.apis_count and clock.now() - t0 < 5 do
    clock.sleep(0.05)
    records = received()
  end
  print(("webhook received %d result(s)"):format(#records))
  for _, rec in ipairs(records) do
    local body = rec.body and intuned.JobSinkResultPayload.decode(rec.body)
    if body then
      print(("  %s -> %s (%d)"):format(body.apiInfo.name, body.apiInfo.result.status, body.apiInfo.result.statusCode))
    end
  end
end

print("pause:", check(client.jobs:pause(project, job_id)).message,
      "->", check(client.jobs:get(project, job_id)).state.status)
print("resume:", check(client.jobs:resume(project, job_id)).message,
      "->", check(client.jobs:get(project, job_id)).state.status)
print("delete:", check(client.jobs:delete(project, job_id)))
local gone, err = client.jobs:get(project, job_id)
print("get after delete:", gone, err)
