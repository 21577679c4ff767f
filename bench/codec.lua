-- bench/codec.lua: typed decode+validate (intuned) vs untyped decode (lua-cjson)
-- of the full Job example, and encode back; then memory over many cycles.
-- Not a test: it prints figures and ratios measured in this one run.
local intuned = require "intuned"
local cjson = require "cjson"

local f = assert(io.open("spec/fixtures/examples/job-webhook-paused.json", "rb"))
local src = f:read("*a")
f:close()

local N = tonumber(os.getenv("BENCH_N")) or 200000
local CYCLES = tonumber(os.getenv("BENCH_CYCLES")) or 1000000

local function rss_kib()
  local s = io.open("/proc/self/statm")
  if not s then return 0 end
  local _, res = s:read("*a"):match("(%d+)%s+(%d+)")
  s:close()
  return tonumber(res) * 4
end

-- best of 3 rounds, each N iterations; returns ns per operation
local function time(fn)
  local best = math.huge
  for _ = 1, 3 do
    collectgarbage()
    local t0 = os.clock()
    fn(N)
    local dt = os.clock() - t0
    if dt < best then best = dt end
  end
  return best / N * 1e9
end

local job = assert(intuned.Job.decode(src))
local tbl = cjson.decode(src)

local typed_dec = time(function(n) for _ = 1, n do local j = intuned.Job.decode(src); assert(j) end end)
local cjson_dec = time(function(n) for _ = 1, n do local t = cjson.decode(src); assert(t) end end)
local typed_enc = time(function(n) for _ = 1, n do local s = job:to_json(); assert(s) end end)
local cjson_enc = time(function(n) for _ = 1, n do local s = cjson.encode(tbl); assert(s) end end)

print(("%s, %d bytes of JSON, %d iterations x best of 3"):format(_VERSION, #src, N))
print(("decode  intuned.Job.decode (typed, validated): %8.0f ns/op"):format(typed_dec))
print(("decode  cjson.decode (plain tables):           %8.0f ns/op"):format(cjson_dec))
print(("decode  ratio intuned/cjson = %.3f (target <= 1.0)"):format(typed_dec / cjson_dec))
print(("encode  job:to_json():                          %8.0f ns/op"):format(typed_enc))
print(("encode  cjson.encode:                           %8.0f ns/op"):format(cjson_enc))
print(("encode  ratio intuned/cjson = %.3f"):format(typed_enc / cjson_enc))

-- memory: decode and drop CYCLES times; the Lua heap and the process RSS must stay flat
collectgarbage()
local warm = 20000
for _ = 1, warm do intuned.Job.decode(src) end
collectgarbage()
local heap0, rss0 = collectgarbage("count"), rss_kib()
for i = 1, CYCLES do
  intuned.Job.decode(src)
  if i % 100000 == 0 then collectgarbage("step", 0) end
end
collectgarbage()
collectgarbage()
local heap1, rss1 = collectgarbage("count"), rss_kib()
print(("memory  %d decode/free cycles: Lua heap %.0f -> %.0f KiB, RSS %d -> %d KiB (growth %d KiB)")
  :format(CYCLES, heap0, heap1, rss0, rss1, rss1 - rss0))
