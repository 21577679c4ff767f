-- spec/helpers/call_cases.lua: the call machine's scripted cases, read from
-- the C table itself (tests/call_cases.h: tests/test_call.c runs it through
-- a fake transport, tests/test_transport.c through libcurl), so the nginx
-- transport replays the very same rules (spec/nginx_call_cases_spec.lua).
--
--   local cc = require "spec.helpers.call_cases"
--   local t = cc.load()   -- t.cases, t.secrets, t.inputs, t.client_headers, t.call_headers
--
-- The header is read with a small reader of C initialisers: string literals
-- (adjacent ones and string constants concatenated), numbers, NULL, enum
-- names, { } lists, designated `.field = value`, and the function-like
-- macros it defines (R(st, b), SLOW(ms), ...).  The three bodies cc_init
-- fills at run time are built here the same way.
local util = require "spec.helpers.util"

local M = {}

local STEP_FIELDS = { "action", "status", "ctype", "body", "retry_after", "header", "delay_ms" }

local function tokens(src)
  local out, i, n = {}, 1, #src
  while i <= n do
    local c = src:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "/*" then
      i = assert(src:find("*/", i + 2, true), "unterminated comment") + 2
    elseif src:sub(i, i + 1) == "//" then
      i = (src:find("\n", i, true) or n) + 1
    elseif c == '"' then
      local j, buf = i + 1, {}
      while true do
        local d = src:sub(j, j)
        assert(d ~= "", "unterminated string")
        if d == '"' then break end
        if d == "\\" then
          local e = src:sub(j + 1, j + 1)
          buf[#buf + 1] = ({ n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\" })[e] or e
          j = j + 2
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      out[#out + 1] = { t = "str", v = table.concat(buf) }
      i = j + 1
    elseif c:match("[%d]") or (c == "." and src:sub(i + 1, i + 1):match("%d")) then
      local num = src:match("^[%d%.eE]+", i)
      out[#out + 1] = { t = "num", v = assert(tonumber(num), num) }
      i = i + #num
    elseif c:match("[%a_]") then
      local id = src:match("^[%w_]+", i)
      out[#out + 1] = { t = "id", v = id }
      i = i + #id
    else
      out[#out + 1] = { t = "p", v = c }
      i = i + 1
    end
  end
  return out
end

-- ITD_OP_JOBS_RUNS_LIST -> "jobs.runs:list", ITD_OP_JOBS_GET -> "jobs:get"
local function op_name(id)
  local s = id:gsub("^ITD_OP_", ""):lower()
  local group, verb = s:match("^(.*)_([^_]+)$")
  return group:gsub("_", ".") .. ":" .. verb
end

function M.load(root)
  root = root or "."
  local src = assert(util.read(root .. "/tests/call_cases.h"), "no tests/call_cases.h")
  local consts = {} -- name -> string or number
  local macros = {} -- name -> { params = {...}, body = tokens }
  for name, val in src:gmatch('\n#define (CC_[%w_]+) ("[^\n]*")') do consts[name] = tokens(val)[1].v end
  for name, params, body in src:gmatch("\n#define ([%w_]+)(%b())%s*([^\n]*)") do
    local ps = {}
    for p in params:sub(2, -2):gmatch("[%w_]+") do ps[#ps + 1] = p end
    macros[name] = { params = ps, body = tokens(body) }
  end
  for name, body in src:gmatch("\n#define ([%w_]+) (%b{})") do macros[name] = { body = tokens(body) } end
  local call_h = assert(util.read(root .. "/src/call.h"))
  consts.ITD_EVENT_BODY_MAX = tonumber(call_h:match("#define ITD_EVENT_BODY_MAX (%d+)"))

  local value -- forward
  -- Expand macros in a token list.
  local function expand(toks)
    local out, i = {}, 1
    while i <= #toks do
      local t = toks[i]
      local m = t.t == "id" and macros[t.v]
      if m and m.params and toks[i + 1] and toks[i + 1].v == "(" then
        local args, cur, depth, j = {}, {}, 0, i + 2
        while true do
          local a = toks[j]
          if (a.v == "," or a.v == ")") and depth == 0 then
            args[#args + 1] = cur
            cur = {}
            if a.v == ")" then break end
          else
            if a.v == "(" or a.v == "{" then depth = depth + 1 end
            if a.v == ")" or a.v == "}" then depth = depth - 1 end
            cur[#cur + 1] = a
          end
          j = j + 1
        end
        for _, b in ipairs(m.body) do
          local k
          for pi, p in ipairs(m.params) do if b.t == "id" and b.v == p then k = pi end end
          if k then for _, a in ipairs(args[k]) do out[#out + 1] = a end else out[#out + 1] = b end
        end
        i = j + 1
      elseif m and not m.params then
        for _, b in ipairs(m.body) do out[#out + 1] = b end
        i = i + 1
      else
        out[#out + 1] = t
        i = i + 1
      end
    end
    return out
  end

  -- value(toks, i) -> v, next index
  function value(toks, i)
    local t = toks[i]
    if t.v == "{" then
      local list, fields, j = {}, nil, i + 1
      while toks[j].v ~= "}" do
        if toks[j].v == "." then
          fields = fields or {}
          local name = toks[j + 1].v
          assert(toks[j + 2].v == "=")
          fields[name], j = value(toks, j + 3)
        else
          local v
          v, j = value(toks, j)
          list[#list + 1] = v == nil and M.NULL or v
        end
        if toks[j].v == "," then j = j + 1 end
      end
      return fields or list, j + 1
    end
    if t.v == "-" then
      local v, j = value(toks, i + 1)
      return -v, j
    end
    if t.t == "num" then return t.v, i + 1 end
    if t.t == "str" or (t.t == "id" and type(consts[t.v]) == "string") then
      local parts, j = {}, i
      while toks[j] and (toks[j].t == "str" or (toks[j].t == "id" and type(consts[toks[j].v]) == "string")) do
        parts[#parts + 1] = toks[j].t == "str" and toks[j].v or consts[toks[j].v]
        j = j + 1
      end
      return table.concat(parts), j
    end
    assert(t.t == "id", "unexpected token " .. tostring(t.v))
    local id = t.v
    if id == "NULL" then return nil, i + 1 end
    if consts[id] ~= nil then return consts[id], i + 1 end
    if id:match("^ITD_OP_") then return op_name(id), i + 1 end
    if id:match("^ITD_ERR_") then return id:gsub("^ITD_ERR_", ""):lower(), i + 1 end
    if id:match("^CC_IN_") then return ({ CC_IN_PLAIN = 0, CC_IN_S3 = 1, CC_IN_WEBHOOK = 2 })[id], i + 1 end
    if id:match("^CC_[A-Z]+$") and ({ CC_REPLY = 1, CC_DROP = 1, CC_REFUSED = 1, CC_DELAY = 1 })[id] then
      return id:gsub("^CC_", ""):lower(), i + 1
    end
    error("call_cases.h: unknown name " .. id)
  end

  -- string constants: static const char NAME[] = "..." CC_X "...";
  for name, init in src:gmatch("static const char (CC_[%w_]+)%[%] =%s*(.-);") do
    consts[name] = value(tokens(init), 1)
  end
  -- what cc_init fills at run time
  local text = consts.CC_BIG_TEXT
  local big = text:rep(math.ceil(10000 / #text)):sub(1, 10000)
  consts.CC_BIG_BODY = big
  local fmt = assert(consts.CC_JOB_FMT)
  consts.CC_OTHER_JOB = (fmt:format("job-0001"):gsub("scrape", "scrapX", 1))
  local stored = src:match('snprintf%(CC_STORED_JOB, sizeof CC_STORED_JOB,%s*(.-)%);')
  consts.CC_STORED_JOB = value(tokens(stored), 1)

  local function array_of(name)
    local init = assert(src:match("static const char %*const " .. name .. "%[%] =%s*(%b{})"), name)
    return (value(tokens(init), 1))
  end
  local out = {
    client_headers = array_of("CC_CLIENT_HEADERS"),
    call_headers = array_of("CC_CALL_HEADERS"),
    inputs = array_of("CC_INPUTS"),
    secrets = { consts.CC_KEY, consts.CC_BEARER, consts.CC_CALL_TOKEN, consts.CC_S3, consts.CC_WH, consts.CC_STORED },
    key = consts.CC_KEY,
    job_fmt = fmt,
  }
  for _, l in ipairs{ out.client_headers, out.call_headers } do
    if l[#l] == M.NULL then l[#l] = nil end
  end
  local cases_src = assert(src:match("static const cc_case CC_CASES%[%] =%s*(%b{})"), "no CC_CASES")
  local cases = value(expand(tokens(cases_src)), 1)
  for _, k in ipairs(cases) do
    local script = {}
    for i, s in ipairs(k.script or {}) do
      local step = {}
      for f, name in ipairs(STEP_FIELDS) do
        local v = s[f]
        if v ~= M.NULL then step[name] = v end
      end
      script[i] = step
    end
    k.script = script
  end
  out.cases = cases
  return out
end

M.NULL = setmetatable({}, { __tostring = function() return "NULL" end })

return M
