-- The HTTP/1.x wire text of the nginx transport, from the core (src/http1.c)
-- without nginx: core.http1_head (the response head from the bytes so far)
-- and the call machine's request as bytes (m:next(now, true)), which must
-- be what intuned.http1 used to join from the request table.
local core = require "intuned.core"

local CFG = { api_key = "key-wire-1", workspace_id = "ws", server_url = "http://127.0.0.1:8080/api/v1/workspace",
              user_agent = "wire-spec" }

-- What intuned.http1 wrote from the table form (its old request_bytes).
local function joined(req, host)
  local target = req.url:match("^%a[%w+.-]*://[^/?#]*(.*)$")
  if target == "" then target = "/" end
  local out = { req.method, " ", target, " HTTP/1.1\r\n" }
  for _, h in ipairs(req.headers) do out[#out + 1] = h[1] .. ": " .. h[2] .. "\r\n" end
  out[#out + 1] = "host: " .. host .. "\r\n"
  if req.method ~= "GET" and req.method ~= "DELETE" then
    out[#out + 1] = "content-length: " .. (req.body and #req.body or 0) .. "\r\n"
  end
  out[#out + 1] = "\r\n"
  if req.body then out[#out + 1] = req.body end
  return table.concat(out)
end

describe("core.http1_head", function()
  it("gives where the body starts, the status, lower-case headers and the version", function()
    local text = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-A: 1\r\n"
      .. "x-a: 2\r\nRetry-After: 5\r\nretry-after: 7\r\nContent-Type: text/plain\r\nbroken line\r\n\r\n{}"
    local nxt, status, headers, version = core.http1_head(text)
    assert.are.equal(#text - 1, nxt)
    assert.are.equal("{}", text:sub(nxt))
    assert.are.equal(200, status)
    assert.are.equal("1.1", version)
    assert.are.same({ ["content-type"] = "text/plain", ["content-length"] = "2", ["x-a"] = "1, 2",
                      ["retry-after"] = "7" }, headers)
  end)

  it("starts at init, skips 1xx answers (101 is final) and reads bare LF lines", function()
    local text = "junkHTTP/1.1 100 Continue\r\nX: early\r\n\r\nHTTP/1.0 204 No Content\nA:  b \n\nrest"
    local nxt, status, headers, version = core.http1_head(text, 5)
    assert.are.equal("rest", text:sub(nxt))
    assert.are.equal(204, status)
    assert.are.equal("1.0", version)
    assert.are.same({ a = "b" }, headers)
    local _, st101 = core.http1_head("HTTP/1.1 101 Switching Protocols\r\n\r\n")
    assert.are.equal(101, st101)
  end)

  it("asks for more (false) for every part of a head", function()
    local text = "HTTP/1.1 503 Busy\r\nRetry-After: 1\r\n\r\n"
    for k = 0, #text - 1 do assert.is_false(core.http1_head(text:sub(1, k)), k) end
    assert.are.equal(503, select(2, core.http1_head(text)))
  end)

  it("says where the next head starts after complete 1xx heads, and counts them against the cap", function()
    local early = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"
    local more, nxt, counted = core.http1_head(early)
    assert.is_false(more)
    assert.are.equal(26, nxt)
    assert.are.equal(25, counted)
    local rest = early:sub(nxt) .. "00 OK\r\n\r\n"
    local e, status = core.http1_head(rest, 1, counted)
    assert.are.equal(#rest + 1, e)
    assert.are.equal(200, status)
    local n, err = core.http1_head(rest, 1, 307200)
    assert.is_nil(n)
    assert.are.equal("response headers larger than 307200 bytes", err)
    assert.has_error(function() core.http1_head(rest, 1, -1) end)
  end)

  it("says what is wrong: the status line, libcurl's caps", function()
    local n, err = core.http1_head("HTTP/1.1 20x OK\r\n\r\n")
    assert.is_nil(n)
    assert.are.equal("malformed status line", err)
    n, err = core.http1_head("HTTP/1.1 200 OK\r\nX: " .. ("a"):rep(100 * 1024))
    assert.is_nil(n)
    assert.are.equal("response header line longer than 102400 bytes", err)
    local lines = {}
    for i = 1, 201 do lines[i] = "h" .. i .. ": v" end
    n, err = core.http1_head("HTTP/1.1 200 OK\r\n" .. table.concat(lines, "\r\n") .. "\r\n\r\n")
    assert.is_nil(n)
    assert.are.equal("too many response headers", err)
    local big = {}
    for i = 1, 80 do big[i] = "h" .. i .. ": " .. ("v"):rep(4000) end
    n, err = core.http1_head("HTTP/1.1 200 OK\r\n" .. table.concat(big, "\r\n") .. "\r\n\r\n")
    assert.is_nil(n)
    assert.are.equal("response headers larger than 307200 bytes", err)
  end)

  it("refuses a position outside the bytes", function()
    assert.has_error(function() core.http1_head("abc", 5) end)
    assert.has_error(function() core.http1_head("abc", 0) end)
    assert.is_false(core.http1_head("abc", 4))
  end)
end)

describe("the call machine's request as HTTP/1.1 bytes (m:next(now, true))", function()
  local cases = {
    { "jobs:get", { project = "p", job_id = "j" }, "127.0.0.1:8080" },
    { "jobs:list", { project = "p", page_number = 2 }, "127.0.0.1:8080" },
    { "jobs:trigger", { project = "p", job_id = "j" }, "127.0.0.1:8080" },
    { "jobs:delete", { project = "p", job_id = "j" }, "127.0.0.1:8080" },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": the bytes intuned.http1 wrote from the table form", function()
      local a = assert(core.call_machine(CFG, c[1], c[2], { retry = false, quiet = true }, 1, 0))
      local b = assert(core.call_machine(CFG, c[1], c[2], { retry = false, quiet = true }, 1, 0))
      local what, req = a:next(0)
      local what2, wire = b:next(0, true)
      assert.are.equal("send", what)
      assert.are.equal("send", what2)
      assert.are.equal(req.method, wire.method)
      assert.are.equal(req.url, wire.url)
      assert.is_nil(wire.headers)
      assert.are.equal(joined(req, c[3]), wire.wire)
      assert.truthy(wire.wire:find("x-api-key: key-wire-1\r\n", 1, true))
    end)
  end

  it("a create carries its body and Content-Length; a default port is left out of Host", function()
    local cfg = { api_key = "k", workspace_id = "ws", server_url = "https://api.example.test:443/api/v1/workspace" }
    local input = { id = "j", payload = { { apiName = "a", parameters = {} } },
                    sink = { type = "webhook", url = "https://hooks.example.test/x" },
                    configuration = { runMode = "Order-Irrelevant", maxConcurrentRequests = 2 } }
    local a = assert(core.call_machine(cfg, "jobs:create", { project = "p", input = input }, { retry = false }, 1, 0))
    local b = assert(core.call_machine(cfg, "jobs:create", { project = "p", input = input }, { retry = false }, 1, 0))
    local _, req = a:next(0)
    local _, wire = b:next(0, true)
    assert.are.equal(joined(req, "api.example.test"), wire.wire)
    assert.truthy(wire.wire:find("\r\ncontent-length: " .. #req.body .. "\r\n\r\n" .. req.body, 1, true))
  end)
end)

describe("CallMachine:feed_response with the body's place in a buffer", function()
  local f = assert(io.open("spec/fixtures/examples/job-webhook-paused.json", "rb"))
  local body = f:read("*a")
  f:close()
  local function fed(...)
    local m = assert(core.call_machine(CFG, "jobs:get", { project = "p", job_id = "j" }, { retry = false, quiet = true },
                                       1, 0))
    assert.are.equal("send", (m:next(0, true)))
    m:feed_response(0, 200, { ["content-type"] = "application/json" }, ...)
    assert.are.equal("done", (m:next(0)))
    return m:result()
  end
  it("takes body:sub(i, j) as string.sub does", function()
    local whole = assert(fed(body))
    local buf = "HTTP/1.1 200 OK\r\n\r\n" .. body .. "trailing bytes"
    local i = 20
    local part = assert(fed(buf, i, i + #body - 1))
    assert.are.equal(whole.id, part.id)
    assert.are.equal(whole:to_json(), part:to_json())
    local tail = assert(fed("xx" .. body, 3, -1))
    assert.are.equal(whole:to_json(), tail:to_json())
  end)
  it("an empty range is an empty body (a decode error for an operation with an answer)", function()
    local r, err = fed(body, 10, 9)
    assert.is_nil(r)
    assert.are.equal("decode", err.kind)
  end)
end)

describe("intuned.http1.exchange", function()
  it("takes the request as the core's bytes only: without them it raises, before any I/O", function()
    local http1 = require "intuned.http1"
    local ok, err = pcall(http1.exchange, {}, { method = "GET", url = "http://127.0.0.1:1/x",
                                                headers = { { "x-api-key", "k" } } }, 1)
    assert.is_false(ok)
    assert.matches("req.wire", err, 1, true)
  end)
end)
