-- examples/model.lua: build a job from a plain table, print it and its JSON,
-- and decode an API response into typed objects. No server needed.
local intuned = require "intuned"

local shared = os.getenv("ITD_SHARED_DIR") or "../shared"

local input, err = intuned.JobInput.new{
  id = "daily-contracts",
  payload = { { apiName = "get-contracts", parameters = { state = "CA", page = 1 } } },
  sink = { type = "webhook", url = "https://hooks.example.com/x", headers = { Authorization = "Bearer t" } },
  schedule = { intervals = { { every = "1h" } },
               calendars = { { hour = { start = 9, ["end"] = 17, step = 2 }, dayOfWeek = "MON-FRI" } } },
  configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 5,
                    retry = { maximumAttempts = 3, initialInterval = "5s" } },
}
if not input then error(tostring(err)) end

print("first payload:", input.payload[1].apiName, "calendar step:", input.schedule.calendars[1].hour.step)
print(input)               -- summary; the Authorization header shows as "***"
print(input:to_json())     -- exactly what is sent to the API (SDK defaults filled in)
for _, w in ipairs(input:warnings()) do print("warning: " .. w) end

-- A mistake names its field path:
local _, bad = intuned.JobInput.new{ id = "x-1234567", payload = { { apiName = 42 } },
                                     configuration = { runMode = "Order-Irrelevant" } }
print("invalid input ->", bad)

-- Decoding a response of the API (here: the reference's example document)
local f = assert(io.open(shared .. "/spec/examples/job-webhook-paused.json", "rb"))
local job = assert(intuned.Job.decode(f:read("*a")))
f:close()
print(job.state.status, job.state.reason)
print(("next run: %s = %.3f s since the epoch"):format(job.nextRunTime, intuned.parse_time(job.nextRunTime)))
print("retry starts after", job.configuration.retry.initialInterval, "ms")
print(job)
