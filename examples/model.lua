-- examples/model.lua: build a job from a plain table, print it and its JSON,
-- and decode an API response into typed objects. No server needed.
local intuned = require "intuned"

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

-- Decoding a response of the API (a get-job answer, as in the reference)
local response = [[
{"id":"harbor-price-watch",
 "sink":{"type":"webhook","url":"https://hooks.example.test/intuned/price-watch",
         "headers":{"X-Hook-Token":"tok_7f3a91c2"},"skipOnFail":true},
 "payload":[{"apiName":"catalog/list-items","parameters":{"category":"kitchen","maxPages":4}}],
 "schedule":{"intervals":[{"every":"6h"}]},
 "configuration":{"runMode":"Order-Irrelevant","maxConcurrentRequests":5,
                  "retry":{"maximumAttempts":4,"backoffCoefficient":2,"initialInterval":1500,"maximumInterval":300000}},
 "created_at":"2025-03-04T09:12:45.318Z","next_run_time":"2025-06-02T10:15:00.000Z","last_run_time":null,
 "state":{"status":"PAUSED","reason":"Paused during a catalogue migration"},
 "projectId":"8d0f4b62-1e7a-4c35-9a2e-5b6c7d8e9f10"}
]]
local job = assert(intuned.Job.decode(response))
print(job.state.status, job.state.reason)
print(("next run: %s = %.3f s since the epoch"):format(job.nextRunTime, intuned.parse_time(job.nextRunTime)))
print("retry starts after", job.configuration.retry.initialInterval, "ms")
print(job)
