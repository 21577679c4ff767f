-- intuned.webhook inside nginx: the example's POST /webhooks/intuned (its
-- handlers, examples/nginx/intuned_handlers.lua) with a token, two workers
-- sharing the duplicate store (ngx.shared.DICT), and real deliveries from
-- the emulator, including ones it retries because our answer got lost.
local intuned = require "intuned"
local util = require "spec.helpers.util"
-- pinned: these checks read v0.3.12 run documents (summary, status names)
local emulator = require("spec.helpers.emulator").pinned("v0.3.12")
local nginx = require "spec.helpers.nginx"

local KEY, WS = "test-key", "ws-local"
local TOKEN = "wh-token-7f0c2a9e51d4"

-- /webhooks/lossy stands for a proxy in front of the example that loses the
-- answer of each result's first processing: the example records the result
-- (a subrequest to /webhooks/intuned), the sender sees a 502 and retries.
local LOSSY = [[
        location = /webhooks/lossy {
            content_by_lua_block {
                ngx.req.read_body()
                local res = ngx.location.capture("/webhooks/intuned",
                  { method = ngx.HTTP_POST, body = ngx.req.get_body_data() or "" })
                local doc = require("intuned").decode_json(res.body)
                if res.status == 200 and doc.duplicate == false and ngx.shared.itd_test:add("lost:" .. doc.key, true) then
                    return ngx.exit(502)
                end
                ngx.status = res.status
                ngx.print(res.body)
            }
        }
        location = /webhooks/small {
            client_body_buffer_size 1k; # bigger bodies go to a temporary file
            content_by_lua_block {
                local wh = require("intuned").webhook.new{ token = os.getenv("INTUNED_WEBHOOK_TOKEN"), max_body = 4096,
                                                           store = ngx.shared.itd_test, header = "x-hook-token" }
                wh:handle_ngx(function() ngx.shared.itd_test:incr("small", 1, 0) end)
            }
        }
        location = /webhooks/small/count {
            content_by_lua_block {
                -- the handler's count, and what the store holds for a key
                -- (true: added as a shared dict, add(key, true, ttl))
                ngx.print(ngx.shared.itd_test:get("small") or 0, " ", tostring(ngx.shared.itd_test:get(ngx.var.arg_key)))
            }
        }
]]

describe("intuned.webhook in nginx (examples/nginx, two workers)", function()
  local emu, srv, direct, tmpdir

  local nbody = 0
  -- One request with the curl command line: body text, status.
  local function post(path, body, headers)
    nbody = nbody + 1
    local f = tmpdir .. "/body" .. nbody
    emulator.write_file(f, body)
    local args = { "curl -s -X POST --data-binary @" .. emulator.quote(f), "-H 'Content-Type: application/json'" }
    for k, v in pairs(headers or {}) do args[#args + 1] = "-H " .. emulator.quote(k .. ": " .. v) end
    args[#args + 1] = "-w '\\n%{http_code}' " .. emulator.quote(srv.url .. path)
    local out = emulator.capture(table.concat(args, " "))
    local text, code = out:match("^(.*)\n(%d+)$")
    return text, tonumber(code)
  end

  local function json(text)
    local v = intuned.decode_json(text)
    assert(type(v) == "table", "not JSON: " .. tostring(text))
    return v
  end

  local function last()
    local text, code = emulator.capture("curl -s -w '\\n%{http_code}' " .. emulator.quote(srv.url .. "/webhooks/intuned/last"))
      :match("^(.*)\n(%d+)$")
    if code == "404" then return { count = 0, duplicates = 0 } end
    return json(text)
  end

  local AUTH = { Authorization = "Bearer " .. TOKEN }

  -- a result nobody sent yet
  local seq = 0
  local function fresh_result()
    seq = seq + 1
    local doc = intuned.decode_json(util.example("sink-result-completed.json"))
    doc.projectJobRun.id = ("run-ngxwh-%d-%d"):format(os.time() % 100000, seq)
    return intuned.encode_json(doc), doc.projectJobRun.id .. "/" .. doc.apiInfo.runId
  end

  setup(function()
    tmpdir = emulator.tmpdir()
    emu = emulator.start{ "--time-scale", "0.01" }
    srv = nginx.start{
      conf = nginx.example_conf{ workers = 2, locations = LOSSY, http = " lua_shared_dict itd_test 1m;" },
      env = { INTUNED_API_KEY = KEY, INTUNED_WORKSPACE_ID = WS, INTUNED_SERVER_URL = emu.url,
              INTUNED_WEBHOOK_TOKEN = TOKEN },
    }
    direct = intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url }
  end)

  teardown(function()
    if srv then srv:stop() end
    emulator.stop_all()
    if tmpdir then os.execute("rm -rf " .. emulator.quote(tmpdir)) end
  end)

  it("takes a delivery with the token once; the same result again is a duplicate, answered 200", function()
    local body, key = fresh_result()
    local before = last()
    local t1, c1 = post("/webhooks/intuned", body, AUTH)
    assert.equals(200, c1, t1)
    assert.same({ ok = true, duplicate = false, key = key }, json(t1))
    local t2, c2 = post("/webhooks/intuned", body, { Authorization = TOKEN }) -- the bare token works too
    assert.equals(200, c2, t2)
    assert.same({ ok = true, duplicate = true, key = key }, json(t2))
    local after = last()
    assert.equals(before.count + 1, after.count)
    assert.equals(before.duplicates + 1, after.duplicates)
    assert.equals(key, after.result.projectJobRun.id .. "/" .. after.result.apiInfo.runId)
  end)

  it("answers 401 for a missing, wrong or wrong-length token, and records nothing", function()
    local body = fresh_result()
    local before = last()
    for _, h in ipairs{ {}, { Authorization = "Bearer " .. TOKEN:sub(1, -2) .. "x" },
                        { Authorization = "Bearer " .. TOKEN:sub(1, -2) }, { Authorization = "Bearer " .. TOKEN .. "0" },
                        { ["X-Other"] = TOKEN } } do
      local text, code = post("/webhooks/intuned", body, h)
      assert.equals(401, code, text)
      local doc = json(text)
      assert.equals("unauthorized", doc.error)
      assert.is_nil(text:find(TOKEN:sub(1, 8), 1, true))
    end
    local after = last()
    assert.same({ before.count, before.duplicates }, { after.count, after.duplicates })
    -- the bad token counts before the body: a bad body with a bad token is a 401
    assert.equals(401, select(2, post("/webhooks/intuned", "not json", {})))
    local log = srv:log()
    assert.truthy(log:find("intuned.webhook: unauthorized", 1, true))
    assert.is_nil(log:find(TOKEN, 1, true))
  end)

  it("answers 400 with the field path for a bad body", function()
    local doc = intuned.decode_json(util.example("sink-result-failed.json"))
    doc.apiInfo.result.statusCode = "500"
    local text, code = post("/webhooks/intuned", intuned.encode_json(doc), AUTH)
    assert.equals(400, code, text)
    assert.same({ "invalid_input", "apiInfo.result.statusCode" }, { json(text).error, json(text).path })
    local t2, c2 = post("/webhooks/intuned", "{", AUTH)
    assert.equals(400, c2)
    assert.is_nil(json(t2).path)
  end)

  it("handle_ngx: bodies from nginx's temporary file, 413 by Content-Length after the token, 405", function()
    local doc = intuned.decode_json(util.example("sink-result-completed.json"))
    doc.projectJobRun.id = "run-small-" .. os.time()
    doc.apiInfo.parameters = { pad = ("p"):rep(2500) } -- over client_body_buffer_size 1k
    local body = intuned.encode_json(doc)
    local hdr = { ["X-Hook-Token"] = TOKEN }
    local t1, c1 = post("/webhooks/small", body, hdr)
    assert.equals(200, c1, t1)
    assert.is_false(json(t1).duplicate)
    assert.is_true(json((post("/webhooks/small", body, hdr))).duplicate)
    doc.apiInfo.parameters = { pad = ("p"):rep(5000) }
    local big = intuned.encode_json(doc)
    local t2, c2 = post("/webhooks/small", big, hdr)
    assert.equals(413, c2, t2)
    assert.equals("invalid_input", json(t2).error)
    assert.equals(401, select(2, post("/webhooks/small", big, AUTH))) -- the token first
    local t3 = emulator.capture("curl -s -w '\\n%{http_code}' " .. emulator.quote(srv.url .. "/webhooks/small"))
    assert.matches("\n405$", t3)
    -- the handler ran once, for the first delivery only
    local key = json(t1).key
    assert.equals("1 true", emulator.capture("curl -s " .. emulator.quote(srv.url .. "/webhooks/small/count?key=" .. key)))
  end)

  it("40 concurrent deliveries of one result over two workers: processed once", function()
    local body, key = fresh_result()
    local f = tmpdir .. "/same.json"
    emulator.write_file(f, body)
    local entries = {}
    for i = 1, 40 do
      entries[i] = ("url = \"%s/webhooks/intuned\"\nrequest = \"POST\"\nheader = \"Authorization: Bearer %s\"\n"
        .. "header = \"Content-Type: application/json\"\ndata-binary = \"@%s\"\nsilent\nno-keepalive\n"
        .. "write-out = \"\\n%%{http_code}\\n\""):format(srv.url, TOKEN, f)
    end
    local cfg = tmpdir .. "/burst.curl"
    emulator.write_file(cfg, table.concat(entries, "\nnext\n") .. "\n")
    local before = last()
    local out = emulator.capture(("curl -s --parallel --parallel-max 40 -K %s 2>/dev/null"):format(emulator.quote(cfg)))
    local new, dup, codes = 0, 0, 0
    for line in out:gmatch("[^\n]+") do
      if line:match("^%d%d%d$") then
        codes = codes + 1
        assert.equals("200", line)
      elseif line:find('"duplicate":false', 1, true) then new = new + 1
      elseif line:find('"duplicate":true', 1, true) then dup = dup + 1 end
      if line:find("key", 1, true) then assert.truthy(line:find(key, 1, true), line) end
    end
    assert.same({ 40, 1, 39 }, { codes, new, dup })
    local after = last()
    assert.equals(before.count + 1, after.count)
    assert.equals(before.duplicates + 39, after.duplicates)
  end)

  -- The job's runs as the emulator reports them (with its delivery counts).
  local function wait_run(project, id, n_payloads)
    for _ = 1, 300 do
      local res = emu.api("GET", ("/%s/projects/%s/jobs/%s/runs"):format(WS, project, id))
      local list = res.status == 200 and intuned.decode_json(res.body) or {}
      local run = list[1]
      if run and run.status ~= "PENDING" then
        local d = emu.run_view(run).deliveries
        if d.delivered + d.failed + d.skipped >= n_payloads then return run end
      end
      emulator.sleep(0.05)
    end
    error("the run of " .. id .. " did not finish its deliveries")
  end

  local function job(id, url, headers)
    return {
      id = id,
      payload = { { apiName = "products/list", parameters = { page = 1 } }, { apiName = "products/detail" },
                  { apiName = "fail/always" } },
      configuration = { runMode = "Order-Irrelevant", retry = { maximumAttempts = 1 } },
      sink = { type = "webhook", url = url, headers = headers },
    }
  end

  it("real deliveries from the emulator, retried after a lost answer, are processed once each", function()
    local id = ("ngxwh-lossy-%d"):format(os.time() % 100000)
    assert(direct.jobs:create("demo", job(id, srv.url .. "/webhooks/lossy", AUTH)))
    local before = last()
    assert(direct.jobs:trigger("demo", id))
    local run = wait_run("demo", id, 3)
    -- each result: a first attempt processed (answer lost: 502), a retry
    -- answered 200 as a duplicate
    assert.same({ delivered = 3, failed = 0, skipped = 0, attempts = 6 }, emu.run_view(run).deliveries)
    local after = last()
    assert.equals(before.count + 3, after.count)
    assert.equals(before.duplicates + 3, after.duplicates)
  end)

  it("real deliveries with a wrong token are refused at every attempt", function()
    local id = ("ngxwh-badtok-%d"):format(os.time() % 100000)
    assert(direct.jobs:create("demo", job(id, srv.url .. "/webhooks/intuned", { Authorization = "Bearer wrong" })))
    local before = last()
    assert(direct.jobs:trigger("demo", id))
    local run = wait_run("demo", id, 3)
    local d = emu.run_view(run).deliveries
    assert.equals(3, d.failed)
    assert.equals(0, d.delivered)
    local after = last()
    assert.same({ before.count, before.duplicates }, { after.count, after.duplicates })
  end)

  it("left nothing alarming in the error log", function()
    local log = srv:log()
    assert.is_nil(log:find("[alert]", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
    assert.is_nil(log:find(TOKEN, 1, true))
  end)
end)
