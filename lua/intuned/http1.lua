-- intuned.http1: the HTTP/1.1 wire code of the nginx transport, on
-- ngx_http_lua_module's cosockets.  It moves the bytes of one exchange and
-- nothing else: what to send, whether to retry, how long the whole call may
-- take and what a response means are the call machine's (intuned.core's
-- call_machine, src/call.c); intuned.ngx drives the two.
--
-- lua-resty-http is not packaged in Debian, so this is a small client: it
-- writes the request's bytes as the core made them and hands the response
-- head to the core to parse (src/http1.c), and reads Content-Length,
-- chunked and read-until-close bodies, keeps connections alive through the
-- cosocket pool, and does TLS with sslhandshake (certificates checked
-- against nginx's lua_ssl_trusted_certificate).
--
--  * `timeout` bounds the exchange, not the silence between two bytes: every
--    read is armed with the time left (see new_reader), and a response head
--    is capped as libcurl caps it (100 KiB a line, 300 KiB in all), a body
--    at 32 MiB;
--  * "sent" (the request may have reached the server) is false only when
--    connecting, the TLS handshake or writing the request failed (a failed
--    write means the server never got the whole request);
--  * a malformed or hostile response is a failure, never a raise.
--  * Kept-alive connections serve every request, create and trigger too.
--    libcurl may re-send a request by itself on a dead kept-alive
--    connection, which is why the machine asks for a `fresh` one for them;
--    this code never re-sends on its own (a failure after the request was
--    written is "sent", and the machine does not retry those), and pooled
--    connections are dropped before servers usually close them
--    (keepalive_timeout below), so reusing them is both safe and much
--    cheaper (no new TCP/TLS handshake per trigger): `fresh` is ignored.
--  * ca_file does not apply: cosockets check certificates against nginx's
--    lua_ssl_trusted_certificate.  insecure = true turns the check off.
local ngx = ngx
local http1_head = require("intuned.core").http1_head

local M = {}

local DEFAULTS = {
  connect_timeout = 10,
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
-- Caps of chunk size lines and trailers, as the response head's (src/http1.h).
local MAX_HEADER_LINE = 100 * 1024
local MAX_HEAD = 300 * 1024
local PIECE = 65536 -- bytes asked of the socket per read
local MAX_TIMEOUT_MS = 2147483647 -- cosocket timeouts are 32-bit

-- The exchange's start reads the clock anew; the reads after a socket
-- operation take nginx's cached time, which its event loop refreshes every
-- time it wakes (every wait of a cosocket is one): ngx.update_time formats
-- nginx's cached date strings each time, a cost worth sparing per read.
local function now()
  ngx.update_time()
  return ngx.now()
end
local function cached_now() return ngx.now() end

local function opt(o, k)
  local v = o[k]
  if v == nil then return DEFAULTS[k] end
  return v
end

-- ------------------------------------------------------------------ URLs

-- What an origin ("scheme://authority") gives the exchange: scheme, host,
-- port, Host header, TLS, the connection pool names; false when it is not
-- one the transport can use.
local function parse_origin(scheme, authority)
  scheme = scheme:lower()
  if authority:find("@", 1, true) then return false end -- no credentials in URLs
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  local ipv6 = host ~= nil
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host or (scheme ~= "http" and scheme ~= "https") then return false end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  local hosthdr = ipv6 and ("[" .. host .. "]") or host
  if not default_port then hosthdr = hosthdr .. ":" .. port end
  local tls = scheme == "https"
  local pool = ("intuned:%s:%s:%d"):format(scheme, host, port)
  return { scheme = scheme, host = host, port = port, host_header = hosthdr, tls = tls,
           pool_verify = tls and pool .. ":v" or pool, pool_noverify = tls and pool .. ":nv" or pool }
end

-- Origins seen, parsed once each (a client talks to one or two): bounded,
-- emptied when full.
local origins, norigins = {}, 0
local MAX_ORIGINS = 64

-- The parsed origin of an absolute http(s) URL and the rest of it, or nil.
local function split_url(url)
  local scheme, authority, rest = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil end
  local key = scheme .. "://" .. authority
  local o = origins[key]
  if o == nil then
    o = parse_origin(scheme, authority)
    if norigins >= MAX_ORIGINS then origins, norigins = {}, 0 end
    origins[key], norigins = o, norigins + 1
  end
  if not o then return nil end
  return o, rest
end

-- The origin of a request's URL, by the whole URL: a client asks for the
-- same few (a job polled, a list paged) again and again, and matching a
-- URL costs more than looking it up.  Bounded like origins.
local url_origins, nurls = {}, 0
local MAX_URLS = 256
local function origin_of(url)
  local o = url_origins[url]
  if o == nil then
    o = split_url(url) or false
    if nurls >= MAX_URLS then url_origins, nurls = {}, 0 end
    url_origins[url], nurls = o, nurls + 1
  end
  return o
end

--- scheme, host, port, request target of an absolute http(s) URL, or nil.
-- @tparam string url
-- @treturn table `{ scheme, host, port, target, host_header, tls }`
function M.parse_url(url)
  local o, target = split_url(url)
  if not o then return nil end
  if target:find("#", 1, true) then target = target:gsub("#.*$", "") end
  if target == "" then target = "/" end
  return { scheme = o.scheme, host = o.host, port = o.port, target = target, host_header = o.host_header,
           tls = o.tls }
end

-- ------------------------------------------------------------ exchange

-- sock:connect's options per client options and pool, made once (they do
-- not change; connect only reads them).
local connect_opts = setmetatable({}, { __mode = "k" })
local function connect_options(o, pool)
  local by_pool = connect_opts[o]
  if not by_pool then
    by_pool = {}
    connect_opts[o] = by_pool
  end
  local c = by_pool[pool]
  if not c then
    c = { pool = pool, pool_size = opt(o, "pool_size"), backlog = opt(o, "backlog") }
    by_pool[pool] = c
  end
  return c
end

-- Set the socket's timeouts from what is left of the exchange.
local function arm(sock, until_t, connect_cap)
  local left = until_t - cached_now()
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
  return { sock = sock, until_t = until_t, buf = "", pos = 1, reads = 0 }
end

-- Fill the buffer, which the caller has used up.  true or nil, err.
local function refill(r, max)
  -- reads that need no wait do not refresh nginx's clock: a long body read
  -- that way reads it anew
  r.reads = r.reads + 1
  if r.reads > 2 then ngx.update_time() end
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
  local pos = r.pos
  if #r.buf - pos + 1 >= n then -- all buffered (a small answer is, mostly)
    r.pos = pos + n
    return (pos == 1 and n == #r.buf) and r.buf or r.buf:sub(pos, pos + n - 1)
  end
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

-- Read the status line and headers.  status, headers (lower-case names;
-- repeated ones joined with ", " but for retry-after and content-type,
-- where the last wins), version; or nil, err.  The head is parsed by the
-- core (core.http1_head, src/http1.c), within libcurl's caps: 100 KiB a
-- line, 300 KiB in all (1xx answers included), 200 header lines.  The
-- pieces read are kept apart and parsed only when a head may be complete
-- (a blank line in the new bytes), when the status line is (an answer that
-- is not HTTP fails at once) or when they pass what the caps allow: a head
-- dripped a byte at a time costs what it weighs, not its square.  No more
-- than the caps and one read are ever buffered.
local HEAD_BYTES = MAX_HEAD + MAX_HEADER_LINE + 2
local function blank_line(s)
  return s:find("\n\r\n", 1, true) ~= nil or s:find("\n\n", 1, true) ~= nil
end
local function read_head(r)
  local counted, first, tail = 0, true, ""
  local parts, size = {}, 0
  local piece = r.pos == 1 and r.buf or r.buf:sub(r.pos)
  while true do
    if piece ~= "" then
      parts[#parts + 1] = piece
      size = size + #piece
      -- a blank line in the piece, or begun in the last one (plain finds:
      -- a pattern would be tried at every byte of the head)
      local ready = size > HEAD_BYTES or blank_line(piece)
        or (tail ~= "" and blank_line(tail .. piece:sub(1, 2)))
        or (first and piece:find("\n", 1, true) ~= nil)
      tail = #piece >= 2 and piece:sub(-2) or (tail .. piece):sub(-2)
      if ready then
        first = false
        local buf = #parts == 1 and parts[1] or table.concat(parts)
        local next_pos, a, b, version = http1_head(buf, 1, counted)
        if next_pos then
          r.buf, r.pos = buf, next_pos
          return a, b, version
        end
        if next_pos == nil then return nil, a end
        -- more to come: the complete 1xx heads are dropped, still counted
        if a > 1 then buf = buf:sub(a) end
        counted, parts, size = b, { buf }, #buf
      end
    end
    local ok, err = refill(r)
    if not ok then return nil, err end
    piece = r.buf
  end
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

-- Read the body as the headers describe it.  body, keepalive_ok[, i, j]
-- (then the body is body:sub(i, j): the read buffer, not copied) or nil, err.
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
    local pos = r.pos
    if #r.buf - pos + 1 >= n then -- all buffered (a small answer is, mostly): its place in the buffer
      r.pos = pos + n
      return r.buf, true, pos, pos + n - 1
    end
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

-- What went wrong with the socket, as the machine takes it.
local function net_failure(what, err, sent)
  if err == "timeout" then
    return { kind = "timeout", message = what .. " timed out", sent = sent, retryable = true }
  end
  if err == "closed" then err = "connection closed by the server" end
  return { kind = "connection", message = what .. ": " .. tostring(err), sent = sent, retryable = true }
end

--- One HTTP exchange on a cosocket.
-- @tparam table o `connect_timeout`, `keepalive_timeout`, `pool_size`,
-- `backlog`, `insecure` (the client's options; nil fields take the defaults)
-- @tparam table req `{ method, url, wire }`: the request's bytes as the
-- call machine writes them (`m:next(now, true)`, src/http1.c: the one
-- place that knows the request's wire form)
-- @tparam number timeout seconds the exchange may take (0 or nil: no limit)
-- @param fresh ignored: see the top of this file
-- @treturn number status
-- @treturn table headers (lower-case names)
-- @treturn string body, or the bytes read holding it at `i`..`j`
-- @treturn ?number i where the body starts in it (nil: all of it)
-- @treturn ?number j where it ends
-- @return[2] nil
-- @treturn[2] table failure `{ kind, message, sent, retryable, status, path }`
function M.exchange(o, req, timeout, fresh) -- luacheck: no unused args
  if type(req.wire) ~= "string" then
    error("intuned.http1.exchange: req.wire (the request's bytes, m:next(now, true)) is required", 2)
  end
  local u = origin_of(req.url)
  if not u then
    return nil, { kind = "validation", path = "server_url", message = "not an http(s) URL the nginx transport can use",
                  sent = false, retryable = false }
  end
  local until_t = (timeout and timeout > 0) and now() + timeout or math.huge
  local sock, serr = ngx.socket.tcp()
  if not sock then
    return nil, { kind = "connection", message = "no socket: " .. tostring(serr), sent = false, retryable = false }
  end
  local verify = not o.insecure
  local pool = verify and u.pool_verify or u.pool_noverify
  if not arm(sock, until_t, opt(o, "connect_timeout")) then return nil, net_failure("connect", "timeout", false) end
  local ok, err = sock:connect(u.host, u.port, connect_options(o, pool))
  if not ok then return nil, net_failure("connect to " .. u.host_header, err, false) end
  local reused = (sock:getreusedtimes() or 0) > 0
  if u.tls and not reused then
    if not arm(sock, until_t) then
      sock:close()
      return nil, net_failure("TLS handshake", "timeout", false)
    end
    -- lua-resty-core 0.1.25 (Debian 12) mishandles a handshake that ends
    -- without yielding: asked for no session it can report success for a
    -- certificate that failed verification; asked for one (nil here) it
    -- raises "assertion failed!" instead.  So ask for one, and read that
    -- raise as the failure it stands for.
    local okh, sess, herr = pcall(sock.sslhandshake, sock, nil, u.host, verify)
    if not okh then
      sock:close()
      return nil, { kind = "connection", sent = false, retryable = false,
                    message = "TLS: handshake failed (certificate not verified, or refused by the server)" }
    end
    if not sess then
      sock:close()
      -- ngx_lua reports a failed certificate check as "<X509 code>: <reason>":
      -- it will not verify on a retry either
      herr = tostring(herr)
      if herr:match("^%d+: ") then
        return nil, { kind = "connection", message = "TLS: certificate verify failed (" .. herr .. ")", sent = false,
                      retryable = false }
      end
      return nil, { kind = "connection", message = "TLS: " .. herr, sent = false, retryable = true }
    end
  end
  if not arm(sock, until_t) then
    sock:close()
    return nil, net_failure("send", "timeout", false)
  end
  local what = reused and " (kept-alive connection)" or ""
  local bytes, werr = sock:send(req.wire)
  if not bytes then
    sock:close()
    -- the server did not get the whole request, so it cannot have acted on it
    return nil, net_failure("send" .. what, werr, false)
  end
  local r = new_reader(sock, until_t)
  local status, headers, version = read_head(r)
  if not status then
    sock:close()
    return nil, net_failure("receive" .. what, headers, true)
  end
  local body, keep, bi, bj = read_body(r, req.method, status, headers)
  if not body then
    sock:close()
    if keep == "too big" then
      return nil, { kind = "decode", message = ("response body larger than %d bytes"):format(MAX_BODY), sent = true,
                    retryable = false, status = status }
    end
    return nil, net_failure("receive", keep, true)
  end
  local conn = headers["connection"] and headers["connection"]:lower() or ""
  if version == "1.0" and not conn:find("keep-alive", 1, true) then keep = false end
  if r.pos <= #r.buf then keep = false end -- bytes past the body: not a clean connection
  if keep and not conn:find("close", 1, true) then
    sock:setkeepalive(math.floor(opt(o, "keepalive_timeout") * 1000), opt(o, "pool_size"))
  else
    sock:close()
  end
  return status, headers, body, bi, bj
end

return M
