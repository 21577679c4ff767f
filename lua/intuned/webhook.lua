-- intuned.webhook: the receiving end of a webhook sink.
--
--   local webhook = require "intuned.webhook"
--   local wh = webhook.new{ token = os.getenv("WEBHOOK_TOKEN") }
--   local receipt, err = wh:receive(headers, body)
--   -- receipt.payload (a JobSinkResultPayload), receipt.duplicate, receipt.key
--   local status, text = wh:respond(headers, body, handler)  -- any HTTP server
--   wh:handle_ngx(handler)                                    -- inside nginx
--
-- Order of the checks: the token first (an unauthenticated body is never
-- parsed), then the size, then the document, then the duplicate store.  The
-- store's add is the one atomic step, so of two deliveries of one result
-- racing each other exactly one is new.
--
-- No C here: the binding needs nothing new, and the constant-time compare is
-- plain arithmetic (no bit operators, which Lua 5.1 lacks).

--- Receive webhook sink results: check the token a sink sends in a header,
-- decode and validate the body into a @{intuned.JobSinkResultPayload}, and
-- tell a repeated delivery of the same result (same job run, same API run)
-- from a new one, with a small pluggable store. Works from plain Lua behind
-- any HTTP server (@{Webhook:receive}, @{Webhook:respond}) and inside nginx
-- (@{Webhook:handle_ngx}, with an `ngx.shared.DICT` as the store, which
-- every worker shares). Misuse (a bad option, a wrong argument type) raises;
-- a bad delivery returns `nil, err` (an @{intuned.Error}). The token never
-- appears in an error, `tostring` or a log line.
-- @module intuned.webhook
local core = require "intuned.core"

local M = {}

local byte, type, tostring, pairs = string.byte, type, tostring, pairs

local DEFAULT_HEADER = "authorization"
local DEFAULT_TTL = 86400
local DEFAULT_MAX_BODY = 1024 * 1024
local DEFAULT_MAX_KEYS = 10000
-- A header value longer than this is refused before any comparison, so the
-- compare loop is bounded whatever a sender puts there.
local MAX_HEADER_VALUE = 4096

local function usage(msg) error("intuned.webhook: " .. msg, 3) end

-- ------------------------------------------------------------- helpers

--- Compare two strings in time that depends on the length of `given` only,
-- never on where the first difference lies or on the content of `secret`:
-- every byte is compared and the differences are summed. Use it for tokens.
-- @tparam string given the value received (its length may differ)
-- @tparam string secret the expected value (not empty)
-- @treturn boolean whether they are equal
-- @usage assert(webhook.constant_time_equal("abc", "abc"))
function M.constant_time_equal(given, secret)
  if type(given) ~= "string" or type(secret) ~= "string" then
    error("intuned.webhook.constant_time_equal: two strings expected", 2)
  end
  local n, m = #secret, #given
  if n == 0 then error("intuned.webhook.constant_time_equal: empty secret", 2) end
  local diff = (m == n) and 0 or 1
  for i = 1, m do
    -- wrap around the secret so a longer value costs the same per byte
    local d = byte(given, i) - byte(secret, (i - 1) % n + 1)
    diff = diff + d * d
  end
  return diff == 0
end

-- The header's value(s), by case-insensitive name: a table (name -> string
-- or list of strings, as ngx.req.get_headers() gives for repeats) or a
-- function(lower_name) -> value.  Returns the single value, or nil and why.
local function header_value(headers, name)
  local found, count = nil, 0
  local function take(v)
    if type(v) == "table" then
      for _, x in ipairs(v) do found, count = x, count + 1 end
    elseif v ~= nil then
      found, count = v, count + 1
    end
  end
  if type(headers) == "function" then
    take(headers(name))
  else
    for k, v in pairs(headers) do
      if type(k) == "string" and k:lower() == name then take(v) end
    end
  end
  if count == 0 then return nil, "missing" end
  if count > 1 or type(found) ~= "string" then return nil, "repeated" end
  return found
end

local function escape_id(s)
  return (s:gsub("[%%/]", function(c) return ("%%%02X"):format(byte(c)) end))
end

--- The duplicate key of a result: `"<job run id>/<API run id>"`
-- (`projectJobRun.id` and `apiInfo.runId`; `%` and `/` inside an id are
-- written `%25` and `%2F`, so two different pairs never share a key). A
-- one-off run (no `projectJobRun`) has an empty first part.
-- @tparam intuned.JobSinkResultPayload payload a decoded result
-- @treturn string the key
function M.key(payload)
  if not core.JobSinkResultPayload.is(payload) then
    error("intuned.webhook.key: a JobSinkResultPayload expected", 2)
  end
  local run = payload.projectJobRun
  return escape_id(run and run.id or "") .. "/" .. escape_id(payload.apiInfo.runId)
end

-- The two object types (documented below, with their methods).
local MemoryStore = {}
MemoryStore.__index = MemoryStore
local Webhook = {}
Webhook.__index = Webhook

-- Private state per receiver (the token lives here, not on the object).
local state_of = setmetatable({}, { __mode = "k" })

local function method_of(obj, name)
  local ok, v = pcall(function() return obj[name] end)
  return ok and type(v) == "function" and v or nil
end

-- The store as two functions: add(key, ttl) -> true | false | nil, msg, and
-- delete(key) or nil.
local function wrap_store(store, max_keys, clock)
  if store == nil then
    local s = M.memory_store{ max_keys = max_keys, clock = clock }
    return function(k, ttl) return s:add(k, ttl) end, function(k) return s:delete(k) end, "memory", s
  end
  if max_keys ~= nil then usage("max_keys is an option of the default store only") end
  local t = type(store)
  if t ~= "table" and t ~= "userdata" then usage("store must be an object with add(key, ttl)") end
  local add, delete = method_of(store, "add"), method_of(store, "delete")
  if not add then usage("store must be an object with add(key, ttl)") end
  if method_of(store, "get_stale") and method_of(store, "flush_expired") then
    -- an ngx.shared.DICT: add(key, value, exptime) is atomic across workers,
    -- and fails with "exists" for a live key
    return function(k, ttl)
      local ok, err = add(store, k, true, ttl)
      if ok then return true end
      if err == "exists" then return false end
      return nil, "shared dict: " .. tostring(err)
    end, function(k) store:delete(k) return true end, "ngx.shared"
  end
  return function(k, ttl) return add(store, k, ttl) end,
         delete and function(k) return delete(store, k) end, "custom"
end

--- Make a @{MemoryStore}.
-- @tparam[opt] table opts
-- @tparam[opt=10000] number opts.max_keys the most keys kept
-- @tparam[opt=os.time] function opts.clock the current time in seconds
-- @treturn MemoryStore
function M.memory_store(opts)
  opts = opts or {}
  if type(opts) ~= "table" then usage("memory_store options must be a table") end
  local max = opts.max_keys == nil and DEFAULT_MAX_KEYS or opts.max_keys
  if type(max) ~= "number" or max < 1 or max ~= math.floor(max) then usage("max_keys must be a whole number >= 1") end
  local clock = opts.clock or os.time
  if type(clock) ~= "function" then usage("clock must be a function") end
  -- A ring of `max` slots in insertion order (slot -> key, expiry); slot_of
  -- maps a live key to its slot.  A deleted key leaves its slot as `false`
  -- until the ring moves past it.
  return setmetatable({ max = max, clock = clock, keys = {}, expiry = {}, slot_of = {}, head = 1, used = 0, live = 0 },
                      MemoryStore)
end

--- Make a receiver.
-- @tparam table opts
-- @tparam string|boolean opts.token the token a delivery must carry in
-- `opts.header` (the job's sink `headers` send it); `false` turns the check
-- off. Required: leaving it out raises, so an open endpoint is a choice.
-- @tparam[opt="authorization"] string opts.header the header carrying the
-- token (any case). Its value is the token, or `Bearer <token>`.
-- @tparam[opt] table|userdata opts.store where keys of results already
-- received are kept: nil for a @{MemoryStore} (per process), an
-- `ngx.shared.DICT` (shared by nginx's workers; keys are added with
-- `dict:add(key, true, ttl)`), or any object with `add(key, ttl)` returning
-- true (new), false (there already) or `nil, message` (failed), and
-- optionally `delete(key)` (used by @{Webhook:forget})
-- @tparam[opt=86400] number opts.ttl seconds a key is remembered
-- @tparam[opt=1048576] number opts.max_body the largest body taken, in bytes
-- @tparam[opt=10000] number opts.max_keys the default store's capacity
-- @tparam[opt=os.time] function opts.clock the default store's clock
-- @treturn Webhook
-- @raise on a bad option
-- @usage local wh = webhook.new{ token = os.getenv("WEBHOOK_TOKEN"), header = "x-webhook-token" }
function M.new(opts)
  if type(opts) ~= "table" then usage("new expects an options table") end
  local known = { token = true, header = true, store = true, ttl = true, max_body = true, max_keys = true,
                  clock = true }
  for k in pairs(opts) do
    if not known[k] then usage("unknown option " .. tostring(k)) end
  end
  local token = opts.token
  if token == nil then usage("token is required (false turns the check off)") end
  if token ~= false then
    if type(token) ~= "string" or token == "" then usage("token must be a non-empty string or false") end
    -- HTTP trims a header value and cannot carry control characters: such a
    -- token could never match
    if token:find("^%s") or token:find("%s$") or token:find("[%z\1-\31\127]") then
      usage("token must not start or end with blanks or hold control characters")
    end
    if #token > MAX_HEADER_VALUE - 7 then usage("token too long") end
  end
  local header = opts.header == nil and DEFAULT_HEADER or opts.header
  if type(header) ~= "string" or not header:find("^[%w!#$%%&'*+.^_`|~-]+$") then
    usage("header must be a header name")
  end
  local ttl = opts.ttl == nil and DEFAULT_TTL or opts.ttl
  if type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0 or ttl == math.huge then usage("ttl must be a positive number") end
  local max_body = opts.max_body == nil and DEFAULT_MAX_BODY or opts.max_body
  if type(max_body) ~= "number" or max_body ~= max_body or max_body < 1 or max_body == math.huge then
    usage("max_body must be a positive number")
  end
  if opts.store ~= nil and opts.clock ~= nil then usage("clock is an option of the default store only") end
  local add, delete, kind, mem = wrap_store(opts.store, opts.max_keys, opts.clock)
  local self = setmetatable({}, Webhook)
  state_of[self] = { token = token, header = header:lower(), ttl = ttl, max_body = max_body, add = add,
                     delete = delete, store_kind = kind, memory = mem }
  return self
end

--- What @{Webhook:receive} returns for an accepted delivery.
-- @table Receipt
-- @tfield intuned.JobSinkResultPayload payload the result, decoded and
-- validated (unknown keys kept)
-- @tfield boolean duplicate true when this result was received before (within
-- `ttl`): answer 2xx so the sender stops, but do not process it again
-- @tfield string key the duplicate key (@{key})

-- ---------------------------------------------------------- memory store

--- The default duplicate store: an in-process table of keys, each kept
-- `ttl` seconds, holding at most `max_keys` (the oldest key is dropped
-- first), so a flood of unique deliveries cannot grow memory without bound.
-- It lives as long as the Lua state: inside nginx each worker has its own,
-- so give @{new} an `ngx.shared.DICT` there.
-- @type MemoryStore

-- Drop the oldest slot of the ring.
local function pop(self)
  local h = self.head
  local k = self.keys[h]
  if k then
    self.slot_of[k] = nil
    self.live = self.live - 1
  end
  self.keys[h], self.expiry[h] = nil, nil
  self.head = h % self.max + 1
  self.used = self.used - 1
end

--- Remember `key` for `ttl` seconds unless it is remembered already.
-- @tparam string key
-- @tparam number ttl seconds
-- @treturn boolean true when the key is new, false when it was there
function MemoryStore:add(key, ttl)
  local now = self.clock()
  -- expired and deleted keys at the old end go first
  while self.used > 0 and (not self.keys[self.head] or self.expiry[self.head] <= now) do pop(self) end
  local s = self.slot_of[key]
  if s then
    if self.expiry[s] > now then return false end
    self.keys[s], self.slot_of[key], self.live = false, nil, self.live - 1
  end
  if self.used == self.max then pop(self) end
  s = (self.head + self.used - 1) % self.max + 1
  self.keys[s], self.expiry[s] = key, now + ttl
  self.slot_of[key] = s
  self.used, self.live = self.used + 1, self.live + 1
  return true
end

--- Forget `key` (a later add of it is new again).
-- @tparam string key
-- @treturn boolean true
function MemoryStore:delete(key)
  local s = self.slot_of[key]
  if s then
    self.keys[s], self.slot_of[key], self.live = false, nil, self.live - 1
  end
  return true
end

--- How many keys are remembered (expired ones not yet dropped included).
-- @treturn number
function MemoryStore:count()
  return self.live
end

function MemoryStore.__tostring(self)
  return ("intuned.webhook.MemoryStore (%d of %d keys)"):format(self.live, self.max)
end

-- ---------------------------------------------------------- the receiver

--- A webhook receiver, made by @{new}. Its token is kept out of the
-- object: `tostring` shows the header name and the store, never the token.
-- @type Webhook

-- The private state of a receiver; misuse (wh.receive(...)) raises.
local function st(self, name)
  local s = type(self) == "table" and state_of[self]
  if not s then error("intuned.webhook: call " .. name .. " as wh:" .. name .. "(...)", 3) end
  return s
end

local function fail(kind, status, message, extra)
  local f = { status = status }
  for k, v in pairs(extra or {}) do f[k] = v end
  return nil, core.new_error(kind, message, f)
end

local function check_token(s, headers)
  if s.token == false then return true end
  local v, why = header_value(headers, s.header)
  if not v then
    return fail("unauthorized", 401, (why == "missing" and "missing %s header" or "repeated %s header")
      :format(s.header))
  end
  if #v > MAX_HEADER_VALUE then return fail("unauthorized", 401, "bad token in the " .. s.header .. " header") end
  v = v:gsub("^%s+", ""):gsub("%s+$", "")
  local bearer = v:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +(.*)$")
  if bearer then v = bearer end
  if not M.constant_time_equal(v, s.token) then
    return fail("unauthorized", 401, "bad token in the " .. s.header .. " header")
  end
  return true
end

--- Check and decode one delivery.
-- @tparam table|function headers the request headers: name (any case) to
-- value (a list of values for a repeated header, as `ngx.req.get_headers()`
-- gives), or a function(lower_case_name) returning the value
-- @tparam string body the request body
-- @treturn Receipt the delivery, new or a duplicate
-- @return[2] nil
-- @treturn[2] intuned.Error kind `unauthorized` (status 401: the token
-- missing, wrong or repeated), `invalid_input` (status 400 for a body that
-- is not a JobSinkResultPayload, with the field `path` when a field is at
-- fault; 413 for a body over `max_body`), or `server` (status 500,
-- retryable: the store failed)
-- @raise when `headers` or `body` has the wrong type
-- @usage local receipt, err = wh:receive(headers, body)
-- if not receipt then return err.status, tostring(err) end
-- if not receipt.duplicate then process(receipt.payload) end
function Webhook:receive(headers, body)
  local s = st(self, "receive")
  local ht = type(headers)
  if ht ~= "table" and ht ~= "function" then error("intuned.webhook: receive: headers must be a table", 2) end
  if type(body) ~= "string" then error("intuned.webhook: receive: body must be a string", 2) end
  local ok, err = check_token(s, headers)
  if not ok then return nil, err end
  if #body > s.max_body then
    return fail("invalid_input", 413, ("body larger than %d bytes"):format(s.max_body))
  end
  if body == "" then return fail("invalid_input", 400, "empty body: a JobSinkResultPayload is expected") end
  local payload
  payload, err = core.JobSinkResultPayload.decode(body)
  if not payload then
    return fail("invalid_input", 400, "not a JobSinkResultPayload: " .. tostring(err.message), { path = err.path })
  end
  local key = M.key(payload)
  -- a store that raises (a lost connection to it) is a failed store: 500,
  -- and the sender retries
  local ok_call, new, serr = pcall(s.add, key, s.ttl)
  if not ok_call then new, serr = nil, new end
  if new == nil then
    return fail("server", 500, "duplicate store failed: " .. tostring(serr), { retryable = true })
  end
  return { payload = payload, duplicate = not new, key = key }
end

--- Forget a received result, so that its next delivery is new again: for
-- a delivery whose processing failed and that the sender should retry.
-- @tparam Receipt|string receipt a @{Receipt} or its key
-- @treturn boolean true
-- @raise when the store has no `delete`
function Webhook:forget(receipt)
  local s = st(self, "forget")
  local key = type(receipt) == "table" and receipt.key or receipt
  if type(key) ~= "string" then error("intuned.webhook: forget: a receipt or key expected", 2) end
  if not s.delete then error("intuned.webhook: forget: the store has no delete(key)", 2) end
  s.delete(key)
  return true
end

local function json_answer(status, doc) return status, core.encode_json(doc) end

local function error_doc(err)
  local doc = { error = err.kind, message = err.message }
  if err.path then doc.path = err.path end
  return doc
end

-- Run the handler: true, or false and a message.
local function run_handler(handler, receipt)
  local ok, a, b = pcall(handler, receipt.payload, receipt)
  if not ok then return false, tostring(a) end
  if a == false or (a == nil and b ~= nil) then return false, tostring(b or "the handler returned false") end
  return true
end

--- Answer one delivery, for any HTTP server: @{Webhook:receive}, then
-- `handler` for a new result, then the status and JSON body to send.
-- 200 `{"ok":true,"duplicate":false,"key":...}` (a duplicate says
-- `"duplicate":true` and does not run the handler); 400, 401 or 413
-- `{"error":kind,"message":...,"path":...}`, which a sender should not
-- retry; 500 when the store or the handler failed, which it should. A
-- handler that raises or returns `false` (or `nil, message`) has its result
-- forgotten (when the store can delete) so that the retry is processed.
-- @tparam table|function headers as for @{Webhook:receive}
-- @tparam string body as for @{Webhook:receive}
-- @tparam[opt] function handler called as `handler(payload, receipt)` once
-- per new result
-- @treturn number the HTTP status
-- @treturn string the JSON body (`Content-Type: application/json`)
-- @treturn Receipt|intuned.Error what happened, for a log line (the
-- handler's failure is an Error of kind `server`)
-- @usage local status, text = wh:respond(request.headers, request.body, function(result)
--   save(result:to_json())
-- end)
function Webhook:respond(headers, body, handler)
  st(self, "respond")
  if handler ~= nil and type(handler) ~= "function" then error("intuned.webhook: respond: handler must be a function", 2) end
  local receipt, err = self:receive(headers, body)
  if not receipt then
    local status, text = json_answer(err.status or 400, error_doc(err))
    return status, text, err
  end
  if handler and not receipt.duplicate then
    local ok, why = run_handler(handler, receipt)
    if not ok then
      local s = state_of[self]
      if s.delete then pcall(s.delete, receipt.key) end
      local e = core.new_error("server", "the handler failed for " .. receipt.key .. ": " .. why,
                               { status = 500, retryable = true })
      local status, text = json_answer(500, { error = "server", message = "the result could not be processed" })
      return status, text, e
    end
  end
  local status, text = json_answer(200, { ok = true, duplicate = receipt.duplicate, key = receipt.key })
  return status, text, receipt
end

-- The request body inside nginx, at most `max` + 1 bytes (so that "too
-- large" can be told), from memory or nginx's temporary file.
local function ngx_body(ngx, max)
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if not file then return "" end
  local f = io.open(file, "rb")
  if not f then return nil end
  body = f:read(max + 1) or ""
  f:close()
  return body
end

--- Answer the current request inside nginx (content phase) as
-- @{Webhook:respond} does: reads the headers and body from `ngx.req`, sets
-- the status and `Content-Type`, prints the JSON body. Other methods than
-- POST get 405. Failures are logged (5xx at `ngx.ERR`, a bad token at
-- `ngx.WARN`), without the token.
-- @tparam[opt] function handler as for @{Webhook:respond} (it may use
-- cosockets)
-- @treturn Receipt|intuned.Error|nil what happened (nil for a 405)
-- @raise outside nginx
-- @usage location = /webhooks/intuned {
--     content_by_lua_block { require("my_webhook").wh:handle_ngx(function(result) ... end) }
-- }
function Webhook:handle_ngx(handler)
  local s = st(self, "handle_ngx")
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or not ngx.req then error("intuned.webhook: handle_ngx needs nginx (ngx_http_lua_module)", 2) end
  local status, text, what
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    status, text = json_answer(405, { error = "method", message = "use POST" })
  else
    local headers = ngx.req.get_headers(200)
    local clen = tonumber(headers["content-length"])
    if clen and clen > s.max_body then
      -- too large by its Content-Length: not read at all (the token first,
      -- as in receive)
      local ok, err = check_token(s, headers)
      what = ok and select(2, fail("invalid_input", 413, ("body larger than %d bytes"):format(s.max_body))) or err
      status, text = json_answer(what.status, error_doc(what))
    else
      local body = ngx_body(ngx, s.max_body)
      if body then
        status, text, what = self:respond(headers, body, handler)
      else
        what = core.new_error("server", "could not read the request body", { status = 500, retryable = true })
        status, text = json_answer(500, error_doc(what))
      end
    end
  end
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(text, "\n")
  if status >= 500 then
    ngx.log(ngx.ERR, "intuned.webhook: ", tostring(what))
  elseif status == 401 then
    ngx.log(ngx.WARN, "intuned.webhook: ", tostring(what), " (from ", tostring(ngx.var.remote_addr), ")")
  end
  return what
end

function Webhook.__tostring(self)
  local s = state_of[self]
  if not s then return "intuned.webhook.Webhook (invalid)" end
  return ("intuned.webhook.Webhook (header %s, token %s, %s store, ttl %gs)")
    :format(s.header, s.token and "set" or "off", s.store_kind, s.ttl)
end

return M
