-- examples/jobs.lua: job definitions as code, for `intuned plan` / `intuned
-- apply` (and intuned.apply from Lua): a Lua file that returns an array of
-- job tables (a JSON file holding the same array works too).  Being Lua, it
-- can compute values: here the webhook goes to the server's own receiver
-- (the emulator's /_receiver/, started by examples/apply.sh), and the
-- sink's secret header comes from the environment, not from the file.
local server = os.getenv("INTUNED_SERVER_URL") or "http://127.0.0.1:8080/api/v1/workspace"
local origin = server:match("^(https?://[^/]+)")

return {
  {
    id = "nightly-products",
    payload = {
      { apiName = "products/list", parameters = { category = "kettles", page = 1 } },
      { apiName = "products/detail", parameters = { sku = "KTL-100" } },
    },
    configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2 },
    -- 02:30 UTC every day (`intuned schedule preview examples/jobs.lua` lists the next ones)
    schedule = { calendars = { { hour = 2, minute = 30 } } },
    sink = {
      type = "webhook",
      url = origin .. "/_receiver/jobs-example",
      headers = { Authorization = "Bearer " .. (os.getenv("RECEIVER_TOKEN") or "example-token") },
    },
  },
  {
    id = "on-demand-report",
    payload = { { apiName = "reports/build", parameters = { format = "csv" } } },
    configuration = { runMode = "Order-Irrelevant" },
  },
}
