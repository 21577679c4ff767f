-- Issue 14, point 5: the `intuned` command line, driven as a subprocess
-- (bin/intuned under the interpreter running this spec, with its LUA_PATH
-- and LUA_CPATH) against the emulator: output (tables, --json), exit codes
-- (0 ok, 1 API error, 2 usage, 3 a run that did not succeed), --help on
-- every command, the progress display of a wait, plan/apply, schedule
-- preview and `intuned emulator`.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"

local q = emulator.quote
local SECRET = "Bearer cli-secret-5e6f7a"

local interpreter = require("spec.helpers.util").interpreter

local EXE = assert(interpreter())
local _ -- the values a test ignores

describe("the intuned command line", function()
  local emu, client, dir
  local n = 0

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "600", "--time-scale", "0.001", "--no-scheduler" }
    client = intuned.client{ api_key = emu.key, workspace_id = "ws-local", server_url = emu.url }
    dir = emulator.tmpdir()
  end)
  teardown(function()
    if client then client:close() end
    emulator.stop_all()
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  -- Run `intuned ARGS`: stdout, stderr, exit code.  env: extra variables
  -- (false: unset); the project defaults to INTUNED_PROJECT=cli.
  local function intuned_cli(args, env)
    local vars = { INTUNED_API_KEY = emu.key, INTUNED_WORKSPACE_ID = "ws-local", INTUNED_SERVER_URL = emu.url,
                   INTUNED_PROJECT = "cli", INTUNED_EMULATOR = emulator.binary(), LUA_PATH = package.path,
                   LUA_CPATH = package.cpath }
    for k, v in pairs(env or {}) do vars[k] = v end
    local parts, sets = { "env" }, {}
    for k, v in pairs(vars) do
      if v == false then parts[#parts + 1] = "-u " .. k else sets[#sets + 1] = k .. "=" .. q(v) end
    end
    for _, a in ipairs(sets) do parts[#parts + 1] = a end
    parts[#parts + 1] = q(EXE) .. " bin/intuned " .. args
    local o, e = dir .. "/out", dir .. "/err"
    local code = emulator.capture(table.concat(parts, " ") .. " >" .. q(o) .. " 2>" .. q(e) .. "; echo $?")
    return emulator.read_file(o) or "", emulator.read_file(e) or "", tonumber(code)
  end

  local function file(name, text)
    local path = dir .. "/" .. name
    emulator.write_file(path, text)
    return path
  end

  local JOBS_LUA = ([[
return {
  { id = "scrape-daily", payload = { { apiName = "scrape", parameters = { url = "https://example.com" } } },
    configuration = { runMode = "Order-Irrelevant" },
    schedule = { calendars = { { hour = 6 } } },
    sink = { type = "webhook", url = "http://127.0.0.1:9/_receiver/cli", headers = { Authorization = %q } } },
  { id = "always-fails", payload = { { apiName = "fail-here" } }, configuration = { runMode = "Order-Irrelevant" } },
}
]]):format(SECRET)

  local function fresh_project()
    n = n + 1
    return "cli-" .. n
  end

  it("prints help for itself and every command, exit 0", function()
    local out, _, code = intuned_cli("--help")
    assert.equals(0, code)
    for _, c in ipairs{ "jobs list", "jobs trigger JOB [--wait]", "runs wait JOB RUN", "schedule preview FILE",
                        "plan FILE [--prune]", "apply FILE [--prune]", "emulator" } do
      assert.truthy(out:find(c, 1, true), c)
    end
    for _, cmd in ipairs{ "jobs list", "jobs get", "jobs create", "jobs update", "jobs delete", "jobs pause",
                          "jobs resume", "jobs trigger", "runs list", "runs get", "runs terminate", "runs wait",
                          "schedule preview", "plan", "apply", "jobs", "runs", "schedule" } do
      local text, err, c = intuned_cli(cmd .. " --help", { INTUNED_PROJECT = false })
      assert.equals(0, c, cmd .. ": " .. err)
      assert.truthy(text:find("Usage: intuned " .. cmd, 1, true), cmd .. ":\n" .. text)
    end
    local text, _, c = intuned_cli("emulator --help")
    assert.equals(0, c)
    assert.truthy(text:find("--schedule-scale", 1, true), text)
  end)

  it("exits 2 on usage errors, saying what is wrong", function()
    local cases = {
      { "", "no command" },
      { "bogus", "unknown command 'bogus'" },
      { "jobs frobnicate", "unknown command 'jobs frobnicate'" },
      { "jobs get", "'jobs get' takes" },
      { "jobs get a b", "'jobs get' takes" },
      { "jobs list --bogus", "unknown option --bogus" },
      { "jobs list --wait", "option --wait does not apply to 'jobs list'" },
      { "jobs trigger x --timeout 5", "--timeout needs --wait" },
      { "jobs trigger x --wait --timeout soon", "--timeout must be a number" },
      { "runs list j --page-size 0", "--page-size must be" },
      { "plan /nonexistent/jobs.lua", "cannot load /nonexistent/jobs.lua" },
    }
    for _, case in ipairs(cases) do
      local _, err, code = intuned_cli(case[1])
      assert.equals(2, code, case[1] .. ": " .. err)
      assert.truthy(err:find(case[2], 1, true), case[1] .. ": " .. err)
    end
    local _, err, code = intuned_cli("jobs list", { INTUNED_PROJECT = false })
    assert.equals(2, code)
    assert.truthy(err:find("no project: pass --project NAME or set INTUNED_PROJECT", 1, true), err)
    _, err, code = intuned_cli("jobs list", { INTUNED_API_KEY = false })
    assert.equals(2, code)
    assert.truthy(err:find("no API key", 1, true), err)
    local bad = file("bad.json", '{"id": "not-an-array"}')
    _, err, code = intuned_cli("jobs create " .. q(bad))
    assert.equals(2, code)
    assert.truthy(err:find("expected an array of job definitions", 1, true), err)
    local invalid = file("invalid.lua", 'return { { id = "no-payload-api", payload = { { parameters = {} } } } }')
    _, err, code = intuned_cli("jobs create " .. q(invalid))
    assert.equals(2, code)
    assert.truthy(err:find("jobs[1].payload[1].apiName", 1, true), err)
  end)

  it("creates, lists, gets, pauses, resumes and deletes jobs; API errors exit 1", function()
    local p = fresh_project()
    local jobs = file("jobs.lua", JOBS_LUA)
    local out, err, code = intuned_cli("--project " .. p .. " jobs create " .. q(jobs))
    assert.equals(0, code, err)
    assert.equals("created scrape-daily\ncreated always-fails\n", out)
    out, err, code = intuned_cli("jobs list --project " .. p)
    assert.equals(0, code, err)
    assert.truthy(out:find("^ID%s+STATE%s+NEXT RUN%s+LAST RUN%s+SCHEDULE\n"), out)
    assert.truthy(out:find("\nscrape%-daily%s+ACTIVE%s+%d%d%d%d%-%d%d%-%d%dT06:00:00.000Z%s+%-%s+at 06:00"), out)
    assert.truthy(out:find("\nalways%-fails%s+ACTIVE"), out)
    out, _, code = intuned_cli("jobs list --json", { INTUNED_PROJECT = p })
    assert.equals(0, code)
    local list = intuned.decode_json(out)
    assert.equals(2, #list)
    assert.equals("scrape-daily", list[1].id)
    assert.equals("***", list[1].sink.headers.Authorization)
    out, _, code = intuned_cli("jobs get scrape-daily", { INTUNED_PROJECT = p })
    assert.equals(0, code)
    assert.truthy(out:find("id:%s+scrape%-daily\n"), out)
    assert.truthy(out:find("sink:%s+webhook http://127.0.0.1:9/_receiver/cli"), out)
    out = intuned_cli("jobs get scrape-daily --json", { INTUNED_PROJECT = p })
    assert.falsy(out:find(SECRET, 1, true), out)
    assert.equals("***", intuned.decode_json(out).sink.headers.Authorization)
    out, _, code = intuned_cli("jobs pause always-fails", { INTUNED_PROJECT = p })
    assert.equals(0, code)
    assert.equals("paused always-fails\n", out)
    assert.equals("PAUSED", assert(client.jobs:get(p, "always-fails")).state.status)
    local _, terr, tcode = intuned_cli("jobs trigger always-fails", { INTUNED_PROJECT = p })
    assert.equals(1, tcode)
    assert.truthy(terr:find("conflict (409)", 1, true), terr)
    out, _, code = intuned_cli("jobs resume always-fails --json", { INTUNED_PROJECT = p })
    assert.equals(0, code)
    assert.equals("always-fails", intuned.decode_json(out).id)
    -- update from the file: the definition is replaced
    local changed = file("changed.json", intuned.encode_json{ { id = "always-fails",
      payload = { { apiName = "fail-here", parameters = {} } }, configuration = { maxConcurrentRequests = 3 } } })
    out, err, code = intuned_cli("jobs update " .. q(changed), { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.equals("updated always-fails\n", out)
    assert.equals(3, assert(client.jobs:get(p, "always-fails")).configuration.maxConcurrentRequests)
    local _, gerr, gcode = intuned_cli("jobs get no-such-job", { INTUNED_PROJECT = p })
    assert.equals(1, gcode)
    assert.truthy(gerr:find("not_found (404)", 1, true), gerr)
    out, err, code = intuned_cli("jobs delete scrape-daily always-fails", { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.equals("deleted scrape-daily\ndeleted always-fails\n", out)
    assert.equals(0, #assert(client.jobs:list(p)))
    local _, cerr, ccode = intuned_cli("jobs list", { INTUNED_PROJECT = p, INTUNED_API_KEY = "wrong-key" })
    assert.equals(1, ccode)
    assert.truthy(cerr:find("unauthorized", 1, true), cerr)
  end)

  it("triggers and waits: 0 for a run that completes, 3 for one that fails, 1 on a timeout", function()
    local p = fresh_project()
    assert(intuned_cli("jobs create " .. q(file("jobs.lua", JOBS_LUA)), { INTUNED_PROJECT = p }))
    local out, err, code = intuned_cli("jobs trigger scrape-daily --wait --poll 0.05", { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.truthy(out:find("status:%s+COMPLETED\n"), out)
    assert.truthy(err:find("waiting for run run%-[%w]+ of job scrape%-daily: PENDING"), err) -- the progress display
    out, err, code = intuned_cli("jobs trigger always-fails --wait --poll 0.05 --json", { INTUNED_PROJECT = p })
    assert.equals(3, code, err)
    assert.equals("FAILED", intuned.decode_json(out).status)
    assert.truthy(err:find("finished FAILED", 1, true), err)
    out, err, code = intuned_cli("jobs trigger scrape-daily --wait --poll 0.05 --timeout 0.2 --quiet",
      { INTUNED_PROJECT = p })
    assert.equals(1, code, err)
    assert.truthy(err:find("timeout: run run-", 1, true), err)
    assert.falsy(err:find("waiting for", 1, true), err) -- --quiet
    assert.equals("", out)
    -- a trigger without --wait names the run
    out, err, code = intuned_cli("jobs trigger scrape-daily", { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    local run_id = out:match("^triggered scrape%-daily: run (run%-%w+)\n$")
    assert.is_string(run_id, out)
    -- runs wait / get / list / terminate
    out, err, code = intuned_cli("runs wait scrape-daily " .. run_id .. " --poll 0.05", { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.truthy(out:find("id:%s+" .. run_id:gsub("%-", "%%-") .. "\n"), out)
    out, _, code = intuned_cli("runs get scrape-daily " .. run_id .. " --json", { INTUNED_PROJECT = p })
    assert.equals(0, code)
    assert.equals("COMPLETED", intuned.decode_json(out).jobRun.status)
    out, _, code = intuned_cli("runs list scrape-daily --page-size 2", { INTUNED_PROJECT = p })
    assert.equals(0, code)
    assert.truthy(out:find("^ID%s+STATUS%s+TYPE%s+STARTED%s+ENDED\n"), out)
    local rows = select(2, out:gsub("\nrun%-", ""))
    assert.equals(3, rows, out) -- three runs of scrape-daily, over two pages
    out, _, code = intuned_cli("runs list scrape-daily --json", { INTUNED_PROJECT = p })
    assert.equals(0, code)
    assert.equals(3, #intuned.decode_json(out))
    local t = assert(client.jobs:trigger(p, "scrape-daily"))
    out, err, code = intuned_cli("runs terminate scrape-daily " .. t.jobRunId, { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.equals("terminated run " .. t.jobRunId .. " of job scrape-daily\n", out)
    out, _, code = intuned_cli("runs wait scrape-daily " .. t.jobRunId .. " --poll 0.05", { INTUNED_PROJECT = p })
    assert.equals(3, code)
    assert.truthy(out:find("status:%s+TERMINATED"), out)
  end)

  it("previews the schedules of a file without a project", function()
    local out, err, code = intuned_cli("schedule preview " .. q(file("jobs.lua", JOBS_LUA))
      .. " --count 2 --from 2025-06-06T16:30:00Z", { INTUNED_PROJECT = false, INTUNED_API_KEY = false })
    assert.equals(0, code, err)
    assert.equals("scrape-daily: at 06:00 UTC\n  2025-06-07T06:00:00.000Z\n  2025-06-08T06:00:00.000Z\n"
      .. "always-fails: no schedule (runs only when triggered)\n", out)
    out, _, code = intuned_cli("schedule preview " .. q(file("jobs.lua", JOBS_LUA))
      .. " --count 1 --from 2025-06-06T16:30:00Z --json", { INTUNED_PROJECT = false })
    assert.equals(0, code)
    local doc = intuned.decode_json(out)
    assert.equals("2025-06-07T06:00:00.000Z", doc[1].next[1])
    assert.equals(0, #doc[2].next)
  end)

  it("plans and applies a file; a second apply reports no changes; --prune deletes", function()
    local p = fresh_project()
    assert(client.jobs:create(p, { id = "always-fails", payload = { { apiName = "other-api" } },
                                   configuration = { runMode = "Order-Irrelevant" } }))
    assert(client.jobs:create(p, { id = "left-over-job", payload = { { apiName = "x" } },
                                   configuration = { runMode = "Order-Irrelevant" } }))
    local jobs = file("jobs.lua", JOBS_LUA)
    local out, err, code = intuned_cli("plan " .. q(jobs), { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.truthy(out:find("1 to create, 1 to update, 0 to delete, 0 unchanged", 1, true), out)
    assert.truthy(out:find("+ create scrape-daily", 1, true), out)
    assert.truthy(out:find('payload[1].apiName: "other-api" -> "fail-here"', 1, true), out)
    assert.truthy(out:find("left-over-job", 1, true), out)
    assert.falsy(out:find(SECRET, 1, true))
    out, _, code = intuned_cli("plan --prune --json " .. q(jobs), { INTUNED_PROJECT = p })
    assert.equals(0, code)
    local plan = intuned.decode_json(out)
    assert.same({ "scrape-daily" }, plan.create)
    assert.same({ "left-over-job" }, plan.delete)
    assert.equals("payload[1].apiName", plan.update[1].changes[1].path)
    assert.equals(3, plan.changes)
    out, err, code = intuned_cli("apply --prune " .. q(jobs), { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.truthy(out:find("+ created scrape-daily", 1, true), out)
    assert.truthy(out:find("~ updated always-fails", 1, true), out)
    assert.truthy(out:find("- deleted left-over-job", 1, true), out)
    assert.truthy(out:find("Applied: 3 changes.", 1, true), out)
    out, err, code = intuned_cli("apply --prune " .. q(jobs), { INTUNED_PROJECT = p })
    assert.equals(0, code, err)
    assert.truthy(out:find("0 to create, 0 to update, 0 to delete, 2 unchanged", 1, true), out)
    assert.truthy(out:find("No changes.", 1, true), out)
    out, _, code = intuned_cli("apply --json " .. q(jobs), { INTUNED_PROJECT = p })
    assert.equals(0, code)
    assert.equals(0, intuned.decode_json(out).changes)
    -- a failure part way: exit 1, what was done and what was not
    local more = file("more.lua", JOBS_LUA:gsub('"scrape%-daily"', '"new-job-one"'))
    emu.fault{ status = 500, match = "/jobs/scrape-daily", method = "DELETE", count = 1 }
    out, err, code = intuned_cli("apply --prune " .. q(more), { INTUNED_PROJECT = p })
    emu.control("DELETE", "/_emulator/faults")
    assert.equals(1, code, err)
    assert.truthy(out:find("+ created new-job-one", 1, true), out)
    assert.truthy(out:find("! delete scrape-daily failed: server (500)", 1, true), out)
    assert.truthy(out:find("Stopped: 1 done, 1 failed, 0 not done.", 1, true), out)
    assert.truthy(err:find("apply stopped", 1, true), err)
  end)

  it("is installed by the rock (build.install.bin: luarocks wraps it for the rock's Lua)", function()
    local env = {}
    local chunk = assert(loadfile("lua-intuned-scm-1.rockspec", "t", env))
    if setfenv then setfenv(chunk, env) end
    chunk()
    assert.equals("bin/intuned", env.build.install.bin.intuned)
    local text = assert(emulator.read_file("bin/intuned"))
    assert.truthy(text:find("^#!/usr/bin/env lua\n"), "bin/intuned needs a Lua shebang (luarocks wraps Lua scripts)")
    assert.truthy(text:find('require, "intuned.cli"', 1, true))
  end)

  it("starts the emulator (intuned emulator ARGS)", function()
    local o = dir .. "/emu.out"
    local pid = emulator.capture(("env INTUNED_EMULATOR=%s LUA_PATH=%s LUA_CPATH=%s %s bin/intuned emulator --port 0 "
      .. ">%s 2>/dev/null & echo $!"):format(q(emulator.binary()), q(package.path), q(package.cpath), q(EXE), q(o)))
    local line
    for _ = 1, 200 do
      line = (emulator.read_file(o) or ""):match("^(listening [^\n]+)\n")
      if line then break end
      emulator.sleep(0.05)
    end
    -- the emulator is the child of the CLI process (started with exec)
    local child = emulator.capture("cat /proc/" .. pid .. "/task/" .. pid .. "/children 2>/dev/null"):match("%d+")
      or emulator.capture("ps -o pid= --ppid " .. pid .. " 2>/dev/null"):match("%d+")
    if child then os.execute("kill -TERM " .. child) end
    for _ = 1, 100 do
      if not emulator.read_file("/proc/" .. pid .. "/stat") or
        emulator.read_file("/proc/" .. pid .. "/stat"):match("^%d+ %b() Z") then break end
      emulator.sleep(0.05)
    end
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    assert.is_string(line, emulator.read_file(o))
    assert.truthy(line:match("^listening http://127%.0%.0%.1:%d+/api/v1/workspace$"), line)
    assert.is_string(child)
  end)
end)
