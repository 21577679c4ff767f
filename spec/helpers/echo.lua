-- spec/helpers/echo.lua: a tiny HTTP server (python3, loopback) that answers
-- every request with 400 -- 503 with Retry-After: 0 for paths containing
-- /retry-echo -- and a JSON body echoing the whole request, for the specs
-- that check no secret comes back out of the library; and leak(), which
-- looks for secrets in a value.
--
--   local echo = require "spec.helpers.echo"
--   local e = echo.start()      -- e.url: an API base URL; e.pid
--   echo.stop(e)
--   echo.leak(value, { "secret", ... }) -> the first secret found, or nil
local emulator = require "spec.helpers.emulator"

local M = {}

-- A server that answers every request with 400 (503 with Retry-After: 0
-- under /retry-echo) and a JSON body echoing the whole request: the key in
-- the message and as a JSON key, every header, the raw and parsed body.
local ECHO_SERVER = [[
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        try: parsed = json.loads(raw) if raw else None
        except Exception: parsed = raw
        hdrs = {k: v for k, v in self.headers.items()}
        key = self.headers.get("x-api-key", "")
        status = 503 if "/retry-echo" in self.path else 400
        doc = {"message": "rejected key %s: %s" % (key, raw),
               "details": {"headers": hdrs, "body": parsed, "raw": raw, key: "the key as a key"},
               "echo": list(hdrs.values())}
        b = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        if status == 503: self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(b)
    do_GET = do_POST = do_PUT = do_DELETE = answer
import os, threading
threading.Timer(600, lambda: os._exit(0)).start()  # never outlives a stuck spec for long
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("listening %d" % s.server_address[1], flush=True)
s.serve_forever()
]]

-- Start the echo server; returns { url = API base, pid = }.
function M.start()
  local dir = emulator.tmpdir()
  emulator.write_file(dir .. "/echo.py", ECHO_SERVER)
  local pid = emulator.capture(("python3 %s >%s 2>%s & echo $!"):format(emulator.quote(dir .. "/echo.py"),
    emulator.quote(dir .. "/out"), emulator.quote(dir .. "/err")))
  local port
  for _ = 1, 250 do
    port = (emulator.read_file(dir .. "/out") or ""):match("listening (%d+)")
    if port then break end
    emulator.sleep(0.02)
  end
  if not port then
    emulator.run("kill " .. pid .. " 2>/dev/null")
    error("echo server did not start: " .. tostring(emulator.read_file(dir .. "/err")))
  end
  return { url = "http://127.0.0.1:" .. port .. "/api/v1/workspace", pid = pid, dir = dir }
end

function M.stop(e)
  if not e then return end
  emulator.run("kill " .. e.pid .. " 2>/dev/null")
  emulator.run("rm -rf " .. emulator.quote(e.dir))
end

-- Every string of a value (keys included), for searching.
local function flatten(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "table" then
    if seen[v] then return out end
    seen[v] = true
    for k, x in pairs(v) do
      flatten(k, out, seen)
      flatten(x, out, seen)
    end
  elseif v ~= nil then
    out[#out + 1] = tostring(v)
  end
  return out
end

-- The first of `secrets` found in v (its strings, keys included, and its
-- tostring), or nil.  The first 8 characters of a secret count: a summary
-- cut at 600 characters may show a secret's beginning only.
function M.leak(v, secrets)
  local all = table.concat(flatten(v), "\n")
  if type(v) == "table" then all = all .. "\n" .. tostring(v) end
  for _, s in ipairs(secrets) do
    if all:find(s:sub(1, 8), 1, true) then return s end
  end
  return nil
end

M.flatten = flatten

return M
