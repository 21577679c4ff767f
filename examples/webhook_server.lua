-- examples/webhook_server.lua: intuned.webhook behind any HTTP server.
--
-- The part that matters is on_request: given a request's headers and body,
-- wh:respond checks the token, validates the JobSinkResultPayload, runs the
-- handler once per result (a redelivery is answered 200 and skipped) and
-- says what to answer.  Any server can call it; plain Lua has no sockets,
-- so this example speaks HTTP/1.1 on stdin/stdout, one request after the
-- other until the end of input (a kept-alive connection):
--
--   WEBHOOK_TOKEN=s3cr3t socat TCP-LISTEN:8081,bind=127.0.0.1,reuseaddr,fork \
--     EXEC:"lua5.4 examples/webhook_server.lua"
--
-- (inetd or a systemd socket unit with Accept=yes work the same way) and the
-- job's sink: { type = "webhook", url = "http://host:8081/webhooks/intuned",
-- headers = { Authorization = "Bearer s3cr3t" } }.
--
-- Behind a fork per connection each process has its own memory, so the
-- default in-memory store only catches repeats within one connection: give
-- webhook.new a store every process shares, any object with add(key, ttl),
-- e.g. Redis's SET NX EX:
--   store = { add = function(_, key, ttl) return red:set("wh:" .. key, 1, "EX", ttl, "NX") == "OK" end }
local intuned = require "intuned"

local token = os.getenv("WEBHOOK_TOKEN")
if not token or token == "" then
  io.stderr:write("webhook_server: set WEBHOOK_TOKEN (the token the sink sends as Authorization: Bearer ...)\n")
  os.exit(2)
end

local wh = intuned.webhook.new{ token = token }

-- Once per result: here a log line; a real service would store it.  Return
-- nil, why (or raise) when it cannot be kept: the answer is then 500 and
-- the sender retries.
local function process(result)
  local api = result.apiInfo
  io.stderr:write(("result %s/%s: %s -> %s (%d)\n"):format(
    result.projectJob and result.projectJob.id or "-", api.runId, api.name, api.result.status,
    api.result.statusCode))
  return true
end

local REASON = { [200] = "OK", [400] = "Bad Request", [401] = "Unauthorized", [405] = "Method Not Allowed",
                 [411] = "Length Required", [413] = "Payload Too Large", [500] = "Internal Server Error" }

-- One request's answer: status and JSON text.
local function on_request(method, headers, body)
  if method ~= "POST" then return 405, '{"error":"method","message":"use POST"}' end
  local status, text, what = wh:respond(headers, body, process)
  if intuned.is_error(what) then
    io.stderr:write("refused: ", tostring(what), "\n") -- never holds the token
  elseif what.duplicate then
    io.stderr:write("duplicate ", what.key, "\n")
  end
  return status, text
end

local MAX_HEADERS, MAX_BODY = 100, 1024 * 1024

-- The HTTP/1.1 side, kept small: Content-Length bodies only.
local function serve(input, output)
  for _ = 1, 10000 do -- requests on one connection
    local line = input:read("*l")
    while line == "\r" or line == "" do line = input:read("*l") end -- blank lines between requests
    if not line then return end
    local method, version = line:match("^(%u+) %S+ HTTP/(1%.%d)\r?$")
    if not method then return end
    local headers, n = {}, 0
    for h in input:lines() do
      h = h:gsub("\r$", "")
      if h == "" then break end
      n = n + 1
      if n > MAX_HEADERS then return end
      local k, v = h:match("^([^:%s]+):%s*(.-)%s*$")
      if k then
        k = k:lower()
        if headers[k] then -- repeated: keep them all (a repeated token is refused)
          if type(headers[k]) ~= "table" then headers[k] = { headers[k] } end
          table.insert(headers[k], v)
        else
          headers[k] = v
        end
      end
    end
    local status, text
    local len = tonumber(headers["content-length"] or "0")
    if headers["transfer-encoding"] or not len then
      status, text = 411, '{"error":"length","message":"a Content-Length is required"}'
    elseif len > MAX_BODY then
      status, text = 413, '{"error":"invalid_input","message":"body too large"}'
    else
      local body = len > 0 and input:read(len) or ""
      if #body < len then return end -- cut short
      status, text = on_request(method, headers, body)
    end
    local close = version == "1.0" or (headers.connection or ""):lower() == "close" or status == 411
      or status == 413
    output:write(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s")
      :format(status, REASON[status] or "", #text, close and "Connection: close\r\n" or "", text))
    output:flush()
    if close then return end
  end
end

serve(io.stdin, io.stdout)
