-- bench/client.lua URL MODE N [C]: the whole typed client stack against URL
-- (a server answering every GET with a full Job).  Prints
-- "<requests per second> <CPU microseconds per call>" (this process's user +
-- system time over the measured calls, getrusage, as bench/curl_baseline.c).
--   seq    N sequential client.jobs:get (request building, HTTP, decode, validate)
--   batch  N jobs:get over client:batch with C in flight
--   memory N sequential calls; prints RSS before/after (KiB), then the malloc'd
--          bytes in use before/after (KiB)
--   bmemory B N  B batches of N calls (32 in flight) after two; prints RSS before, after
--                the first tenth of them, and after all (KiB): where it rises; then
--                the malloc'd bytes in use before and after (KiB)
-- Environment: BENCH_CA_FILE (option ca_file), BENCH_HTTP=1.1 (option http2 = false),
-- BENCH_TURN (seq: take turns with bench/curl_baseline.c, which says how).
local intuned = require "intuned"
local rusage = require "rusage"

local base, mode, n, c = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4] or 32)
local opts = { api_key = "bench-key", workspace_id = "ws", server_url = base, retry = false }
if (os.getenv("BENCH_CA_FILE") or "") ~= "" then opts.ca_file = os.getenv("BENCH_CA_FILE") end
if os.getenv("BENCH_HTTP") == "1.1" then opts.http2 = false end
local client = intuned.client(opts)

local function get()
  local job, err = client.jobs:get("p", "j")
  if not job then error(tostring(err)) end
  assert(job.state.status == "PAUSED")
end

local function batch(k, inflight)
  local calls = {}
  for i = 1, k do calls[i] = { op = "jobs:get", project = "p", job_id = "j" } end
  local results = client:batch(calls, { max_in_flight = inflight })
  for i = 1, k do
    if intuned.is_error(results[i]) then error("call " .. i .. ": " .. tostring(results[i])) end
    assert(results[i].id == "harbor-price-watch")
  end
end

-- warm the connection of sequential calls (a batch's multi handle has its
-- own connections: a batch is measured from cold, as the bare multi loop)
if mode == "seq" or mode == "memory" then get() end
if mode == "seq" then
  -- BENCH_TURN="IN OUT READY K": take turns of K calls with the bare loop
  -- (bench/curl_baseline.c says how); only the turns are measured
  local fin, fout, k
  local turn = os.getenv("BENCH_TURN") or ""
  if turn ~= "" then
    local pin, pout, pready, pk = turn:match("^(%S+) (%S+) (%S+) (%d+)$")
    k = assert(tonumber(pk), "BENCH_TURN: IN OUT READY K")
    local ready = assert(io.open(pready, "r+"))
    fin, fout = assert(io.open(pin, "r+")), assert(io.open(pout, "r+"))
    fout:setvbuf("no")
    assert(ready:write("r")); ready:close()
  end
  local dt, dc, i = 0, 0, 0
  while i < n do
    if fin then assert(fin:read(1), "BENCH_TURN: lost the other process") end
    local t0, c0 = rusage.now(), rusage.cpu()
    local m = math.min(n - i, k or n)
    for _ = 1, m do get() end
    dt, dc = dt + rusage.now() - t0, dc + rusage.cpu() - c0
    i = i + m
    if fout then assert(fout:write("t")) end
  end
  print(("%.1f %.2f"):format(n / dt, dc * 1e6 / n))
elseif mode == "batch" then
  -- the calls' tables are built inside the measure: a user of batch builds them too
  local t0, c0 = rusage.now(), rusage.cpu()
  batch(n, c)
  local dt, dc = rusage.now() - t0, rusage.cpu() - c0
  print(("%.1f %.2f"):format(n / dt, dc * 1e6 / n))
elseif mode == "memory" then
  for _ = 1, 2000 do get() end
  collectgarbage()
  local r0, h0 = rusage.rss(), rusage.heap()
  for _ = 1, n do get() end
  collectgarbage()
  print(("%d %d %d %d"):format(r0, rusage.rss(), h0, rusage.heap()))
elseif mode == "bmemory" then
  local k = tonumber(arg[4])
  -- two batches first: the steady state holds one batch's results while
  -- the next one's arrive
  batch(k, 32)
  batch(k, 32)
  collectgarbage()
  local r0, h0, r10 = rusage.rss(), rusage.heap(), nil
  local tenth = math.max(1, math.floor(n / 10))
  for i = 1, n do
    batch(k, 32)
    if i == tenth then collectgarbage(); r10 = rusage.rss() end
  end
  collectgarbage()
  print(("%d %d %d %d %d"):format(r0, r10, rusage.rss(), h0, rusage.heap()))
end
