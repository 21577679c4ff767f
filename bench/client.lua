-- bench/client.lua URL MODE N [C]: the whole typed client stack against URL
-- (a server answering every GET with a full Job).  Prints requests per second.
--   seq    N sequential client.jobs:get (request building, HTTP, decode, validate)
--   batch  N jobs:get over client:batch with C in flight
--   memory N sequential calls; prints RSS before/after (KiB)
local intuned = require "intuned"

local base, mode, n, c = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4] or 32)
local client = intuned.client{ api_key = "bench-key", workspace_id = "ws", server_url = base, retry = false }

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*a"))
  p:close()
  return t
end

local function rss()
  local f = io.open("/proc/self/statm")
  local _, res = f:read("*a"):match("(%d+)%s+(%d+)")
  f:close()
  return tonumber(res) * 4
end

local function get()
  local job, err = client.jobs:get("p", "j")
  if not job then error(tostring(err)) end
  assert(job.state.status == "PAUSED")
end

get() -- warm the connection
if mode == "seq" then
  local t0 = now()
  for _ = 1, n do get() end
  print(("%.1f"):format(n / (now() - t0)))
elseif mode == "batch" then
  local calls = {}
  for i = 1, n do calls[i] = { op = "jobs:get", project = "p", job_id = "j" } end
  local t0 = now()
  local results = client:batch(calls, { max_in_flight = c })
  local dt = now() - t0
  for i = 1, n do
    if intuned.is_error(results[i]) then error("call " .. i .. ": " .. tostring(results[i])) end
    assert(results[i].id == "harbor-price-watch")
  end
  print(("%.1f"):format(n / dt))
elseif mode == "memory" then
  for _ = 1, 2000 do get() end
  collectgarbage()
  local r0 = rss()
  for i = 1, n do
    get()
    if i % 10000 == 0 then collectgarbage("step", 0) end
  end
  collectgarbage()
  print(("%d %d"):format(r0, rss()))
end
