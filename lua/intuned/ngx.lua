-- intuned.ngx: the transport used inside nginx (ngx_http_lua_module).
--
-- Why cosockets (ngx.socket.tcp) rather than subrequests
-- (ngx.location.capture + proxy_pass): cosockets need no extra location,
-- upstream or proxy settings in the user's nginx.conf, work in timers
-- (subrequests do not), and give this module the status, headers and exact
-- body bytes it needs to classify a response; they still yield to nginx's
-- event loop, so a slow Intuned call never blocks other requests of the
-- worker.  lua-resty-http is not packaged in Debian, so this file carries a
-- small HTTP/1.1 client: request line and headers, Content-Length, chunked
-- and read-until-close bodies, keepalive through the cosocket pool, TLS with
-- sslhandshake (certificates checked against lua_ssl_trusted_certificate).
--
-- Lua drives C here, never the reverse: the request is built, the response
-- classified, retries decided and a 409 on create reconciled by the pure,
-- non-yielding functions of intuned.core; only this file does I/O.
--
-- Semantics match the libcurl transport (transport_curl.c):
--  * per-attempt `timeout`, `connect_timeout`, an overall `deadline`
--    (defaults 30 s, 10 s, 120 s), retries as core.retry_decide says;
--  * "sent" (the request may have reached the server) is false only when
--    connecting, the TLS handshake or writing the request failed (a failed
--    write means the server never got the whole request);
--  * a create retried after an attempt that may have reached the server and
--    then answered 409 is reconciled: the job is fetched and compared with
--    the input; the same job means the first attempt created it.
--  * hooks see redacted headers (x-api-key "***") and a redacted body; they
--    are called as the call goes (request, response, retry), not after it.
--  * `timeout` bounds the attempt, not the silence between two bytes: every
--    read is armed with the time left (see new_reader), and a response head
--    is capped as libcurl caps it (100 KiB a line, 300 KiB in all), a body
--    at 32 MiB;
--  * a malformed or hostile response is nil, err, never a raise; a call of
--    a batch that raises anyway becomes that call's error.
-- Differences, on purpose:
--  * create and trigger use kept-alive connections too.  libcurl may re-send
--    a request by itself on a dead kept-alive connection, so the libcurl
--    transport gives them fresh ones; this code never re-sends on its own
--    (a failure after the request was written is "sent", so create and
--    trigger are not retried), and pooled connections are dropped before
--    servers usually close them (keepalive_timeout below), so reusing them
--    is both safe and much cheaper (no new TCP/TLS handshake per trigger).
--  * ca_file does not apply: cosockets check certificates against nginx's
--    lua_ssl_trusted_certificate.  insecure = true turns the check off.

--- The nginx transport: what @{intuned.client} uses inside nginx
-- (ngx_http_lua_module), an HTTP/1.1 client on cosockets that yields to
-- nginx's event loop, so a slow call never blocks the worker's other
-- requests. Programs do not call it: `client.jobs:...` and `client:batch`
-- pick it by themselves in the rewrite, access, content and timer phases
-- (in other phases a call returns an error of kind `usage`: call from
-- `ngx.timer.at(0, fn)`).
--
-- What to configure in nginx.conf: `lua_package_path` and
-- `lua_package_cpath` reaching the rock (installed for LuaJIT with
-- `--lua-version 5.1`); an `env` line for each variable the client reads
-- (`INTUNED_API_KEY`, `INTUNED_WORKSPACE_ID`, `INTUNED_SERVER_URL`: nginx
-- clears its workers' environment); `lua_ssl_trusted_certificate` (the CA
-- bundle; the client's `ca_file` does not apply here) and
-- `lua_ssl_verify_depth`; and a `resolver` (cosockets do not read
-- /etc/resolv.conf). examples/nginx/nginx.conf is a complete configuration.
--
-- Client options that apply here: `keepalive_timeout` (4 s), `pool_size`
-- (64 connections per worker and server) and `backlog` (4096), besides the
-- timeouts, deadline, retry, headers, user_agent, insecure and hook of
-- @{intuned.client}. Semantics match the libcurl transport: the same
-- request building, response classification, retry decisions and secret
-- scrubbing, by the functions of the "Low-level / protocol" section of
-- @{intuned}; responses over libcurl's header limits or 32 MiB fail with an
-- error, never a raise.
-- @module intuned.ngx
local core = require "intuned.core"
local ngx = ngx

local M = {}

local DEFAULTS = {
  connect_timeout = 10, timeout = 30, deadline = 120,
  -- Pooled connections are dropped after 4 s idle: shorter than common
  -- server keep-alive timeouts (Node's 5 s), so a request is never written
  -- into a connection the server is closing at that moment (which would
  -- make a create or trigger fail, as it must not be re-sent).
  keepalive_timeout = 4,
  -- At most pool_size connections per worker and server (more calls wait
  -- in a queue of `backlog`, bounded by connect_timeout): concurrent
  -- requests then share a few warm connections instead of opening one each.
  pool_size = 64, backlog = 4096,
}
local MAX_BODY = 32 * 1024 * 1024 -- as the libcurl transport
local MAX_HEADERS = 200
-- Response head caps, as libcurl's: one line (CURL_MAX_HTTP_HEADER) and all
-- header lines of a response.
local MAX_HEADER_LINE = 100 * 1024
local MAX_HEAD = 300 * 1024
local PIECE = 65536 -- bytes asked of the socket per read
local MAX_RETRY_SLEEP = 86400 -- longest wait before a retry (seconds): a day
local MAX_TIMEOUT_MS = 2147483647 -- cosocket timeouts are 32-bit

local new_error = core.new_error

local function now()
  ngx.update_time()
  return ngx.now()
end

local function opt(o, k)
  local v = o[k]
  if v == nil then return DEFAULTS[k] end
  return v
end

-- ------------------------------------------------------------------ URLs

-- scheme, host, port, request target of an absolute http(s) URL
local function parse_url(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  local authority, target = rest:match("^([^/?#]*)(.*)$")
  if target == "" then target = "/" end
  target = target:gsub("#.*$", "")
  if authority:find("@", 1, true) then return nil end -- no credentials in URLs
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  local ipv6 = host ~= nil
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host or (scheme ~= "http" and scheme ~= "https") then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  local hosthdr = ipv6 and ("[" .. host .. "]") or host
  if not default_port then hosthdr = hosthdr .. ":" .. port end
  return { scheme = scheme, host = host, port = port, target = target, host_header = hosthdr,
           tls = scheme == "https" }
end

-- ------------------------------------------------------------- requests

-- Header lines of the request: the core's headers, then the user's extra
-- headers (which replace a core header of the same name, except x-api-key).
local function request_headers(cfg, req, u)
  local lines = {}
  local extra = cfg.headers or {}
  local extra_lc = {}
  for k in pairs(extra) do extra_lc[k:lower()] = true end
  for name, value in pairs(req.headers) do
    if name == "x-api-key" or not extra_lc[name] then
      lines[#lines + 1] = name .. ": " .. value
    end
  end
  for k, v in pairs(extra) do
    local lk = k:lower()
    if lk ~= "x-api-key" and lk ~= "host" and lk ~= "content-length" and lk ~= "transfer-encoding" then
      lines[#lines + 1] = k .. ": " .. v
    end
  end
  lines[#lines + 1] = "host: " .. u.host_header
  if req.method ~= "GET" and req.method ~= "DELETE" then
    -- body-less POSTs send Content-Length: 0 (reference §1.4)
    lines[#lines + 1] = "content-length: " .. (req.body and #req.body or 0)
  end
  table.sort(lines) -- stable order on the wire (pairs order is not)
  return lines
end

-- ------------------------------------------------------------ exchange

-- Set the socket's timeouts from what is left of the attempt.
local function arm(sock, until_t, connect_cap)
  local left = until_t - now()
  if left <= 0 then return false end
  local ms = math.max(1, math.min(MAX_TIMEOUT_MS, math.floor(left * 1000)))
  local cms = ms
  if connect_cap and connect_cap > 0 then cms = math.min(ms, math.max(1, math.floor(connect_cap * 1000))) end
  sock:settimeouts(cms, ms, ms)
  return true
end

-- The response is read through a small buffer in pieces of at most PIECE
-- bytes.  receiveany returns as soon as any data is there, and the timeout
-- is re-armed with the time left before every read: a cosocket's receive()
-- restarts its timeout with every byte that arrives, so a server that
-- trickles bytes would otherwise keep an attempt alive past its timeout and
-- the deadline.  Lines are capped (receive("*l") buffers a line of any
-- length), so a hostile server cannot make the worker buffer gigabytes.
local function new_reader(sock, until_t)
  return { sock = sock, until_t = until_t, buf = "", pos = 1 }
end

-- Fill the buffer, which the caller has used up.  true or nil, err.
local function refill(r, max)
  if not arm(r.sock, r.until_t) then return nil, "timeout" end
  local data, err = r.sock:receiveany(max or PIECE)
  if not data then return nil, err end
  r.buf, r.pos = data, 1
  return true
end

-- Up to max bytes (at least one), buffered ones first.  data or nil, err.
local function take(r, max)
  local avail = #r.buf - r.pos + 1
  if avail <= 0 then
    local ok, err = refill(r, math.min(max, PIECE))
    if not ok then return nil, err end
    avail = #r.buf
  end
  local n = math.min(avail, max)
  local s = (r.pos == 1 and n == #r.buf) and r.buf or r.buf:sub(r.pos, r.pos + n - 1)
  r.pos = r.pos + n
  return s
end

-- Exactly n bytes.  data or nil, err.
local function read_exact(r, n)
  local parts, got = {}, 0
  while got < n do
    local data, err = take(r, n - got)
    if not data then return nil, err end
    parts[#parts + 1] = data
    got = got + #data
  end
  return table.concat(parts)
end

-- One line without its CRLF (a bare LF ends one too) of at most max bytes:
-- line, or nil, "too long" (having buffered at most max + PIECE bytes) or
-- nil, a socket error.
local function read_line(r, max)
  local parts, len = nil, 0
  while true do
    local buf, pos = r.buf, r.pos
    local nl = buf:find("\n", pos, true)
    local stop = nl and nl - 1 or #buf
    if len + (stop - pos + 1) > max + 1 then return nil, "too long" end -- + 1: the CR
    if nl then
      r.pos = nl + 1
      local line = buf:sub(pos, stop)
      if parts then
        parts[#parts + 1] = line
        line = table.concat(parts)
      end
      if line:sub(-1) == "\r" then line = line:sub(1, -2) end
      if #line > max then return nil, "too long" end
      return line
    end
    if stop >= pos then
      parts = parts or {}
      parts[#parts + 1] = pos == 1 and buf or buf:sub(pos)
      len = len + (stop - pos + 1)
    end
    local ok, err = refill(r)
    if not ok then return nil, err end
  end
end

-- Read the status line and headers.  status, headers (lower-case names,
-- last value wins; retry-after kept), or nil, err.  At most MAX_HEADER_LINE
-- bytes per line and MAX_HEAD bytes in all (1xx answers included).
local function read_head(r)
  local total = 0
  local function line()
    local l, err = read_line(r, MAX_HEADER_LINE)
    if not l then
      if err == "too long" then return nil, ("response header line longer than %d bytes"):format(MAX_HEADER_LINE) end
      return nil, err
    end
    total = total + #l + 2
    if total > MAX_HEAD then return nil, ("response headers larger than %d bytes"):format(MAX_HEAD) end
    return l
  end
  local status, version
  repeat
    local l, err = line()
    if not l then return nil, err end
    version, status = l:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not status then return nil, "malformed status line" end
    status = tonumber(status)
    local headers, n = {}, 0
    while true do
      local h, herr = line()
      if not h then return nil, herr end
      if h == "" then break end
      n = n + 1
      if n > MAX_HEADERS then return nil, "too many response headers" end
      local name, value = h:match("^([^:%s]+)%s*:%s*(.-)%s*$")
      if name then
        name = name:lower()
        if headers[name] and name ~= "retry-after" and name ~= "content-type" then
          headers[name] = headers[name] .. ", " .. value
        else
          headers[name] = value
        end
      end
    end
    if status >= 200 or status == 101 then return status, headers, version end
    -- 1xx informational answers precede the real one
  until false
end

-- A protocol line quoted in an error: short, printable.
local function quote_line(s)
  return '"' .. s:sub(1, 32):gsub("[^%w%p ]", "?") .. (#s > 32 and '..."' or '"')
end

-- The chunks of a chunked body.  body or nil, err ("too big" when larger
-- than MAX_BODY).
local function read_chunked(r)
  local parts, total, trailer = {}, 0, 0
  while true do
    local line, err = read_line(r, MAX_HEADER_LINE)
    if not line then
      if err == "too long" then return nil, ("chunk size line longer than %d bytes"):format(MAX_HEADER_LINE) end
      return nil, err
    end
    local hex, ext = line:match("^%s*(%x+)%s*(.-)$")
    if not hex or (ext ~= "" and ext:sub(1, 1) ~= ";") then
      return nil, "malformed chunk size line " .. quote_line(line)
    end
    local size = tonumber(hex, 16)
    if size == 0 then
      repeat -- trailers, counted like headers
        local t, terr = read_line(r, MAX_HEADER_LINE)
        if not t then
          if terr == "too long" then return nil, ("trailer line longer than %d bytes"):format(MAX_HEADER_LINE) end
          return nil, terr
        end
        trailer = trailer + #t + 2
        if trailer > MAX_HEAD then return nil, ("trailers larger than %d bytes"):format(MAX_HEAD) end
      until t == ""
      return table.concat(parts)
    end
    total = total + size
    if total > MAX_BODY then return nil, "too big" end
    local data, derr = read_exact(r, size)
    if not data then return nil, derr end
    parts[#parts + 1] = data
    local crlf, cerr = read_line(r, 0)
    if not crlf then
      if cerr == "too long" then return nil, "chunk data longer than its size line says" end
      return nil, cerr
    end
  end
end

-- Read the body as the headers describe it.  body, keepalive_ok or nil, err.
local function read_body(r, method, status, headers)
  if method == "HEAD" or status == 204 or status == 304 then return "", true end
  local te = headers["transfer-encoding"]
  if te and te:lower():find("chunked", 1, true) then
    local body, err = read_chunked(r)
    if not body then return nil, err end
    return body, true
  end
  local cl = headers["content-length"]
  if cl then
    local n = tonumber(cl:match("^%d+$"))
    if not n then return nil, "malformed Content-Length" end
    if n > MAX_BODY then return nil, "too big" end
    if n == 0 then return "", true end
    local data, err = read_exact(r, n)
    if not data then return nil, err end
    return data, true
  end
  -- no length: the body ends when the server closes the connection
  local parts, total = {}, 0
  while true do
    local chunk, err = take(r, PIECE)
    if not chunk then
      if err == "closed" then break end
      return nil, err
    end
    total = total + #chunk
    if total > MAX_BODY then return nil, "too big" end
    parts[#parts + 1] = chunk
  end
  return table.concat(parts), false
end

local function net_error(what, err, sent, deadline_hit, cfg)
  if err == "timeout" then
    if deadline_hit then
      return new_error("timeout", ("deadline of %d ms exceeded (%s)")
        :format(math.floor(opt(cfg, "deadline") * 1000 + 0.5), what)), sent
    end
    return new_error("timeout", what .. " timed out", { retryable = true }), sent
  end
  if err == "closed" then err = "connection closed by the server" end
  return new_error("connection", what .. ": " .. tostring(err), { retryable = true }), sent
end

-- One HTTP exchange.  Returns status, content_type, retry_after, body,
-- reused; or nil, err, sent.
local function exchange(cfg, req, u, until_t, deadline)
  local deadline_hit = function() return deadline and now() >= deadline - 0.002 end
  local sock, serr = ngx.socket.tcp()
  if not sock then return nil, new_error("connection", "no socket: " .. tostring(serr)), false end
  local verify = not cfg.insecure
  local pool = ("intuned:%s:%s:%d%s"):format(u.scheme, u.host, u.port, u.tls and (verify and ":v" or ":nv") or "")
  if not arm(sock, until_t, opt(cfg, "connect_timeout")) then
    local e, s = net_error("connect", "timeout", false, deadline_hit(), cfg)
    return nil, e, s
  end
  local ok, err = sock:connect(u.host, u.port,
    { pool = pool, pool_size = opt(cfg, "pool_size"), backlog = opt(cfg, "backlog") })
  if not ok then
    local e, s = net_error("connect to " .. u.host_header, err, false, deadline_hit(), cfg)
    return nil, e, s
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if u.tls and not reused then
    if not arm(sock, until_t) then
      sock:close()
      local e, s = net_error("TLS handshake", "timeout", false, deadline_hit(), cfg)
      return nil, e, s
    end
    -- lua-resty-core 0.1.25 (Debian 12) mishandles a handshake that ends
    -- without yielding: asked for no session it can report success for a
    -- certificate that failed verification; asked for one (nil here) it
    -- raises "assertion failed!" instead.  So ask for one, and read that
    -- raise as the failure it stands for.
    local okh, sess, herr = pcall(sock.sslhandshake, sock, nil, u.host, verify)
    if not okh then
      sock:close()
      return nil, new_error("connection", "TLS: handshake failed (certificate not verified, or refused by the "
        .. "server)"), false
    end
    if not sess then
      sock:close()
      -- ngx_lua reports a failed certificate check as "<X509 code>: <reason>":
      -- it will not verify on a retry either
      herr = tostring(herr)
      if herr:match("^%d+: ") then
        return nil, new_error("connection", "TLS: certificate verify failed (" .. herr .. ")"), false
      end
      return nil, new_error("connection", "TLS: " .. herr, { retryable = true }), false
    end
  end
  local lines = request_headers(cfg, req, u)
  local out = { req.method, " ", u.target, " HTTP/1.1\r\n", table.concat(lines, "\r\n"), "\r\n\r\n" }
  if req.body then out[#out + 1] = req.body end
  if not arm(sock, until_t) then
    sock:close()
    local e, s = net_error("send", "timeout", false, deadline_hit(), cfg)
    return nil, e, s
  end
  local what = reused and " (kept-alive connection)" or ""
  local bytes, werr = sock:send(out)
  if not bytes then
    sock:close()
    -- the server did not get the whole request, so it cannot have acted on it
    local e, s = net_error("send" .. what, werr, false, deadline_hit(), cfg)
    return nil, e, s
  end
  local r = new_reader(sock, until_t)
  local status, headers, version = read_head(r)
  if not status then
    sock:close()
    local e, s = net_error("receive" .. what, headers, true, deadline_hit(), cfg)
    return nil, e, s
  end
  local body, keep = read_body(r, req.method, status, headers)
  if not body then
    sock:close()
    if keep == "too big" then
      return nil, new_error("decode", ("response body larger than %d bytes"):format(MAX_BODY),
        { status = status }), true
    end
    local e, s = net_error("receive", keep, true, deadline_hit(), cfg)
    return nil, e, s
  end
  local conn = headers["connection"] and headers["connection"]:lower() or ""
  if version == "1.0" and not conn:find("keep-alive", 1, true) then keep = false end
  if r.pos <= #r.buf then keep = false end -- bytes past the body: not a clean connection
  if keep and not conn:find("close", 1, true) then
    sock:setkeepalive(math.floor(opt(cfg, "keepalive_timeout") * 1000), opt(cfg, "pool_size"))
  else
    sock:close()
  end
  return status, headers["content-type"], headers["retry-after"], body, reused
end

-- ----------------------------------------------------------------- hooks

-- The request as hooks may see it: secret headers "***", for create /
-- update a body without the S3 secret key and sink header values (the
-- core's by-key rule), and none of the call's secrets anywhere (`secrets`:
-- core.call_secrets; the same C code as the libcurl transport's).
local function redacted_event(cfg, req, u, secrets)
  local h = {}
  for _, line in ipairs(request_headers(cfg, req, u)) do
    local k, v = line:match("^([^:]+): (.*)$")
    h[k:lower()] = v
  end
  local ev = { method = req.method, url = req.url, path = req.path, headers = core.redact_headers(h) }
  if req.body then ev.body = core.redact_json(req.body) end
  return core.scrub(secrets, ev)
end

local function fire(cfg, base, event, fields)
  if not cfg.hook then return end
  local e = {}
  for k, v in pairs(base) do e[k] = v end
  for k, v in pairs(fields) do e[k] = v end
  e.event = event
  cfg.hook(e)
end

-- Defence in depth: no secret of the call appears in an error (a server
-- echoing request headers or the body into its answer, say): message,
-- text, body, details and data, keys and values (core.scrub, scrub.c).
local function scrub(err, secrets)
  return core.scrub(secrets, err)
end

-- -------------------------------------------------------------- one call

local function policy(cfg, callopts)
  if callopts and callopts.retry ~= nil then return callopts.retry end
  if cfg.retry == nil then return nil end
  return cfg.retry
end

-- A retry delay ngx.sleep can take: a finite number of seconds within
-- [0, MAX_RETRY_SLEEP], else nil (no retry: the call returns its error).  A
-- Retry-After far in the future (or a bad value from anywhere) then ends
-- the call instead of raising in ngx.sleep or holding the request for days
-- when there is no deadline to give up at.
local function sane_delay(d)
  if type(d) ~= "number" or not (d >= 0 and d <= MAX_RETRY_SLEEP) then return nil end
  return d
end

--- One operation with retries.  cfg: the client's normalized options.
-- Internal (exported for intuned.client): what a client method runs inside
-- nginx.
-- @tparam table cfg the client's normalized options
-- @tparam string op an operation name (@{intuned.operations})
-- @tparam table args `project`, `job_id`, `run_id`, `input`, `update`, ...
-- @tparam[opt] table callopts `{ retry = policy }`
-- @return the result (as @{intuned.parse_response})
-- @return[2] nil
-- @treturn[2] intuned.Error
function M.call(cfg, op, args, callopts)
  local t0 = now()
  local dl = opt(cfg, "deadline")
  local deadline = dl and dl > 0 and t0 + dl or nil
  local pol = policy(cfg, callopts)
  local wire_op = op
  local req, err = core.build_request(cfg, op, args)
  if not req then return nil, err end
  local secrets = core.call_secrets(cfg, op, args)
  local input = args.input
  local reconciling, conflict = false, nil
  local attempt, total, sent_before = 0, 0, false
  local u = parse_url(req.url)
  if not u then
    return nil, new_error("validation", "server_url: not an http(s) URL the nginx transport can use",
      { path = "server_url" })
  end
  while true do
    local start = now()
    if deadline and start >= deadline then
      err = new_error("timeout", ("deadline of %d ms exceeded"):format(math.floor(dl * 1000 + 0.5)))
      err.attempts = total
      return nil, err
    end
    local per = opt(cfg, "timeout")
    local until_t = (per and per > 0) and start + per or math.huge
    if deadline and deadline < until_t then until_t = deadline end
    attempt, total = attempt + 1, total + 1
    local base = cfg.hook and redacted_event(cfg, req, u, secrets)
    if base then fire(cfg, base, "request", {}) end
    local status, ct, ra, body = exchange(cfg, req, u, until_t, deadline)
    local res, sent
    if status then
      sent = true
      res, err = core.parse_response(wire_op, status, ct, ra, body)
    else
      err, sent = ct, ra
    end
    -- scrubbed before anyone sees it, the hook's response event included
    if not res then err = scrub(err, secrets) end
    if base then
      fire(cfg, base, "response", { status = status, elapsed = now() - start, error = not res and err or nil })
    end
    if res then
      if not reconciling then return res end
      if core.job_matches_input(res, input) then
        return core.CreateJob.new{ id = input.id, message = "created" }
      end
      conflict.attempts = total
      return nil, scrub(conflict, secrets)
    end
    if op == "jobs:create" and not reconciling and err.kind == "conflict" and sent_before then
      -- did our earlier attempt create it?  Fetch and compare.
      conflict = err
      local greq = core.build_request(cfg, "jobs:get", { project = args.project, job_id = input.id })
      if not greq then
        err.attempts = total
        return nil, scrub(err, secrets)
      end
      req, wire_op, reconciling, attempt = greq, "jobs:get", true, 0
      u = parse_url(req.url)
    else
      if sent then sent_before = true end
      local delay = sane_delay(core.retry_decide(pol, wire_op, attempt, err, sent))
      local t = now()
      if delay and (not deadline or t + delay < deadline) then
        if base then fire(cfg, base, "retry", { status = status, delay = delay, error = err }) end
        ngx.sleep(delay)
      else
        if reconciling then
          conflict.message = conflict.message .. " (could not verify the existing job: " .. tostring(err) .. ")"
          conflict.text = conflict.text .. " (could not verify the existing job: " .. tostring(err) .. ")"
          err = conflict
        end
        err.attempts = total
        return nil, scrub(err, secrets)
      end
    end
  end
end

--- Many calls concurrently: at most max_in_flight light threads, each
-- taking the next call; results in order (result or error object).
-- calls[i] = { op, args, callopts }.
-- Internal (exported for intuned.client): what `client:batch` runs inside
-- nginx.
-- @tparam table cfg the client's normalized options
-- @tparam table calls `{ {op, args, callopts}, ... }`
-- @tparam number max_in_flight light threads at most
-- @treturn table one entry per call, in order: the result or an
-- @{intuned.Error}
function M.batch(cfg, calls, max_in_flight)
  local n = #calls
  local results = {}
  local next_i = 0
  local function worker()
    while true do
      next_i = next_i + 1
      local i = next_i
      if i > n then return end
      local c = calls[i]
      -- A call that raises (a bug, a hook that throws) becomes that call's
      -- error instead of taking every other call's result with it.
      local ok, res, err = pcall(M.call, cfg, c[1], c[2], c[3])
      if not ok then
        local what = "the call raised inside the nginx transport"
        local e = new_error("connection", what .. ": " .. tostring(res))
        -- what it raised may quote a secret of the call: scrubbed as M.call's errors are
        local sok, secrets = pcall(core.call_secrets, cfg, c[1], c[2])
        if sok then sok, e = pcall(core.scrub, secrets, e) end
        if not (sok and e) then e = new_error("connection", what) end -- cannot scrub it: leave it out
        res = e
      elseif res == nil then
        res = err
      end
      results[i] = res
    end
  end
  local threads = {}
  for t = 1, math.min(max_in_flight, n) do
    threads[t] = ngx.thread.spawn(worker)
  end
  local failure
  for t = 1, #threads do
    local ok, e = ngx.thread.wait(threads[t])
    if not ok and not failure then failure = e end
  end
  if failure then error(failure, 0) end
  return results
end

M._parse_url = parse_url -- for tests

return M
