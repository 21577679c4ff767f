-- Issue 14, point 1 inside nginx: client.jobs.runs:wait and
-- trigger{wait = true} sleep with ngx.sleep between polls, so the worker
-- (one, here) keeps serving other requests while a wait is in progress, and
-- two waits overlap instead of queueing; in a phase without ngx.sleep a wait
-- returns a usage error.  Against the emulator, whose runs take 1 s.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"
local nginx = require "spec.helpers.nginx"

local KEY, WS, P = "test-key", "ws-local", "nginx-wait"

local HTTP = [[
  lua_shared_dict itd_wait 1m;
  server {
    listen {{LISTEN}};
    location = /ping { content_by_lua_block { ngx.say("pong") } }
    location = /wait {
      content_by_lua_block {
        local intuned = require "intuned"
        local client = intuned.client{}
        local args = ngx.req.get_uri_args()
        local polls = 0
        local t0 = ngx.now()
        local run, err
        if args.run then
          run, err = client.jobs.runs:wait("]] .. P .. [[", args.job, args.run, {
            timeout = tonumber(args.timeout) or 20, poll = 0.05, on_poll = function() polls = polls + 1 end })
        else
          run, err = client.jobs:trigger("]] .. P .. [[", args.job, { wait = { timeout = 20, poll = 0.05 } })
        end
        ngx.update_time()
        ngx.header["Content-Type"] = "application/json"
        ngx.say(intuned.encode_json{ status = run and run.status or false, kind = err and err.kind or false,
          polls = polls, elapsed = ngx.now() - t0,
          clock_loaded = package.loaded["intuned.clock"] ~= nil })
      }
    }
    location = /timer {
      content_by_lua_block {
        local job, run_id = ngx.var.arg_job, ngx.var.arg_run
        ngx.shared.itd_wait:delete("result")
        assert(ngx.timer.at(0, function()
          local client = require("intuned").client{}
          local run, err = client.jobs.runs:wait("]] .. P .. [[", job, run_id, { timeout = 20, poll = 0.05 })
          ngx.shared.itd_wait:set("result", run and run.status or ("error " .. err.kind))
        end))
        ngx.say("started")
      }
    }
    location = /timer/result { content_by_lua_block { ngx.say(ngx.shared.itd_wait:get("result") or "none") } }
    location = /phase/set {
      set_by_lua_block $itd_wait_kind {
        local client = require("intuned").client{}
        local run, err = client.jobs.runs:wait("]] .. P .. [[", "j", "r")
        return run and "waited" or (err.kind .. ": " .. err.message)
      }
      return 200 "$itd_wait_kind";
    }
  }
]]

describe("waiting inside nginx", function()
  local emu, srv, client, tmpdir

  local function http(path)
    local out = nginx.capture(("curl -s --max-time 30 -w '\\n%%{http_code} %%{time_total}' '%s%s'"):format(srv.url, path))
    local text, code, t = out:match("^(.-)\n?\n(%d+) ([%d.]+)$")
    if tonumber(code) == 500 then print(srv:log():sub(-3000)) end
    return text, tonumber(code), tonumber(t)
  end

  setup(function()
    tmpdir = nginx.capture("mktemp -d /tmp/itd-nginx-wait.XXXXXX"):gsub("%s+$", "")
    emu = emulator.start{ "--api-latency-ms", "1000", "--time-scale", "0.001", "--no-scheduler" }
    srv = nginx.start{
      main = "env INTUNED_API_KEY; env INTUNED_WORKSPACE_ID; env INTUNED_SERVER_URL;",
      http = HTTP,
      env = { INTUNED_API_KEY = KEY, INTUNED_WORKSPACE_ID = WS, INTUNED_SERVER_URL = emu.url },
    }
    client = intuned.client{ api_key = KEY, workspace_id = WS, server_url = emu.url }
    for _, id in ipairs{ "ngx-finishes", "ngx-fails-job" } do
      assert(client.jobs:create(P, { id = id, payload = { { apiName = id == "ngx-finishes" and "scrape" or "fail-x" } },
                                     configuration = { runMode = "Order-Irrelevant" } }))
    end
  end)
  teardown(function()
    if srv then srv:stop() end
    if client then client:close() end
    emulator.stop_all()
    if tmpdir then os.execute("rm -rf '" .. tmpdir .. "'") end
  end)

  local function trigger(job)
    return assert(client.jobs:trigger(P, job)).jobRunId
  end

  it("waits for a run with ngx.sleep while the worker serves other requests", function()
    local r1, r2 = trigger("ngx-finishes"), trigger("ngx-finishes")
    local o1, o2 = tmpdir .. "/w1", tmpdir .. "/w2"
    for i, r in ipairs{ r1, r2 } do
      os.execute(("curl -s --max-time 30 -w '\\n%%{time_total}' '%s/wait?job=ngx-finishes&run=%s' > '%s' 2>&1 &")
        :format(srv.url, r, i == 1 and o1 or o2))
    end
    os.execute("sleep 0.3") -- both waits are now polling
    for _ = 1, 3 do
      local text, code, t = http("/ping")
      assert.equals(200, code)
      assert.equals("pong", text)
      assert.is_true(t < 0.25, ("a request during the waits took %.3f s"):format(t))
    end
    local docs = {}
    for i, o in ipairs{ o1, o2 } do
      local res
      for _ = 1, 200 do
        res = nginx.read(o)
        if res and res:match("\n[%d.]+$") then break end
        os.execute("sleep 0.05")
      end
      local body = assert(res and res:match("^(.*)\n[%d.]+$"), "no answer: " .. tostring(res))
      docs[i] = assert(intuned.decode_json(body), body)
    end
    for _, d in ipairs(docs) do
      assert.equals("COMPLETED", d.status)
      assert.truthy(d.polls >= 2, "polls: " .. d.polls)
      assert.truthy(d.elapsed >= 0.4, "elapsed " .. d.elapsed)
      assert.is_false(d.clock_loaded) -- ngx.sleep, never intuned.clock (which would block the worker)
    end
    -- the two waits overlapped: together about one run's time, not two
    assert.truthy(docs[1].elapsed + docs[2].elapsed < 2 * 2.2)
  end)

  it("returns a failed run, a timeout error, and trigger{wait = true}'s finished run", function()
    local text, code = http("/wait?job=ngx-fails-job&run=" .. trigger("ngx-fails-job"))
    assert.equals(200, code)
    assert.equals("FAILED", intuned.decode_json(text).status)
    text = http("/wait?job=ngx-finishes&timeout=0.2&run=" .. trigger("ngx-finishes"))
    local d = intuned.decode_json(text)
    assert.is_false(d.status)
    assert.equals("timeout", d.kind)
    text = http("/wait?job=ngx-finishes")
    d = intuned.decode_json(text)
    assert.equals("COMPLETED", d.status)
  end)

  it("waits in a timer", function()
    local text = http("/timer?job=ngx-finishes&run=" .. trigger("ngx-finishes"))
    assert.equals("started", text)
    local got
    for _ = 1, 200 do
      got = http("/timer/result")
      if got ~= "none" then break end
      os.execute("sleep 0.05")
    end
    assert.equals("COMPLETED", got)
  end)

  it("returns a usage error in a phase without ngx.sleep", function()
    local text, code = http("/phase/set")
    assert.equals(200, code)
    assert.truthy(text:find("^usage: no ngx.sleep in nginx's 'set' phase"), text)
  end)
end)
