-- The command line's Run API and Auth Sessions commands, driven as a
-- subprocess (bin/intuned under the interpreter running this spec) against
-- the emulator in the newest API's mode: `intuned runs start|result|run`
-- and `intuned auth-sessions list|get|delete|create|update|validate
-- [--wait]`, their output (text and --json), exit codes (0 ok, 1 API
-- error, 2 usage, 3 a run or operation that did not succeed) and --help.
local intuned = require "intuned"
local emulator = require("spec.helpers.emulator").pinned("newest")

local q = emulator.quote
local PASSWORD = "cli-password-2468"

local interpreter = require("spec.helpers.util").interpreter

local EXE = assert(interpreter())
local _ -- the values a test ignores

describe("the intuned command line: runs and auth sessions", function()
  local emu, dir

  setup(function()
    emu = emulator.start{ "--api-latency-ms", "50", "--time-scale", "0.001", "--auth-op-ms", "100000" }
    dir = emulator.tmpdir()
  end)
  teardown(function()
    emulator.stop_all()
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  local function cli(args)
    local vars = { INTUNED_API_KEY = emu.key, INTUNED_WORKSPACE_ID = "ws-local", INTUNED_SERVER_URL = emu.url,
                   INTUNED_PROJECT = "cli-ra", LUA_PATH = package.path, LUA_CPATH = package.cpath }
    local parts = { "env" }
    for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. q(v) end
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

  it("runs start prints the run id; runs result shows it; --json gives the objects", function()
    local out, err, code = cli("runs start products/list --parameters '{\"page\":2}'")
    assert.equals(0, code, err)
    local id = out:match("^started run (%S+) %(pending%)\n$")
    assert.is_string(id, out)
    -- run ids are nanoids, which may start with "-" or even "--": -- ends the options
    out, err, code = cli("runs result --json -- " .. id)
    assert.equals(0, code, err)
    local r = assert(intuned.decode_json(out))
    assert.equals(id, r.runId)
    assert.is_string(r.status)
    -- a word starting with one "-" is an argument (-h is the only short option)
    local _, err2, code2 = cli("runs result -no-such-run")
    assert.equals(1, code2, err2)
    assert.truthy(err2:find("not_found", 1, true) or err2:find("404", 1, true), err2)
    out, _, code = cli("runs start products/list --json")
    assert.equals(0, code)
    assert.equals("pending", intuned.decode_json(out).status)
  end)

  it("runs run waits: completed exits 0 with the result, failed exits 3 with the error", function()
    local out, err, code = cli("runs run products/list --quiet")
    assert.equals(0, code, err)
    assert.truthy(out:find("status:%s+completed"), out)
    assert.truthy(out:find("result:%s+{"), out)
    out, err, code = cli("runs run fail-now --poll 0.05")
    assert.equals(3, code)
    assert.truthy(out:find("error:%s+api%-attempts%-failed %(execution%)"), out)
    assert.truthy(err:find("waiting for run ", 1, true), err) -- the progress display
    assert.truthy(err:find("finished failed", 1, true), err)
    -- the body from a file; start --wait is the same wait
    local input = file("run.json", '{"api":"products/list","parameters":{"q":"x"},"retry":{"maximumAttempts":1}}')
    out, err, code = cli("runs start --input " .. q(input) .. " --wait --quiet --json")
    assert.equals(0, code, err)
    assert.equals("completed", intuned.decode_json(out).status)
  end)

  it("auth-sessions create --wait, list, get, validate, update (a failure exits 3), delete", function()
    local params = file("creds.json", ('{"username":"jane","password":%q}'):format(PASSWORD))
    local out, err, code = cli("auth-sessions create --id cli-login --parameters @" .. q(params) .. " --wait --quiet")
    assert.equals(0, code, err)
    assert.truthy(out:find("create:%s+done"), out)
    assert.truthy(out:find("session:%s+cli%-login"), out)
    assert.is_nil(out:find(PASSWORD, 1, true))
    out, err, code = cli("auth-sessions list")
    assert.equals(0, code, err)
    assert.truthy(out:find("^ID%s+TYPE%s+STATUS\n"), out)
    assert.truthy(out:find("cli%-login%s+CREDENTIALS%s+READY"), out)
    out, _, code = cli("auth-sessions get cli-login --json")
    assert.equals(0, code)
    assert.equals("READY", intuned.decode_json(out).status)
    out, _, code = cli("auth-sessions validate cli-login")
    assert.equals(0, code)
    assert.truthy(out:find("^started validate: operation %S+ %(pending%)\n$"), out)
    out, err, code = cli("auth-sessions validate cli-login --wait --quiet")
    assert.equals(0, code, err)
    assert.truthy(out:find("validate:%s+done"), out)
    out, err, code = cli("auth-sessions update cli-login --parameters '{\"fail\":true}' --wait --quiet")
    assert.equals(3, code, err)
    assert.truthy(out:find("update:%s+failed"), out)
    assert.truthy(out:find("error:"), out)
    out, _, code = cli("auth-sessions delete cli-login")
    assert.equals(0, code)
    assert.equals("deleted cli-login\n", out)
    _, err, code = cli("auth-sessions get cli-login")
    assert.equals(1, code)
    assert.truthy(err:find("not_found", 1, true), err)
  end)

  it("usage errors exit 2; --help on each command", function()
    local _, err, code = cli("runs start")
    assert.equals(2, code)
    assert.truthy(err:find("no API", 1, true), err)
    _, err, code = cli("runs start a --timeout 5")
    assert.equals(2, code)
    assert.truthy(err:find("--timeout needs --wait", 1, true), err)
    _, err, code = cli("auth-sessions create --parameters '[1]'")
    assert.equals(2, code)
    assert.truthy(err:find("JSON object", 1, true), err)
    _, err, code = cli("auth-sessions create --parameters '{}' --requestTimeout 2")
    assert.equals(2, code)
    assert.truthy(err:find("unknown option", 1, true), err)
    _, err, code = cli("runs run a --parameters '{}' --timeout 0.5 --poll x")
    assert.equals(2, code)
    assert.truthy(err:find("--poll", 1, true), err)
    -- a body the model refuses: a usage error naming the field
    _, err, code = cli("runs start a --input " .. q(file("bad.json", '{"parameters":{},"requestTimeout":1.5}')))
    assert.equals(2, code)
    assert.truthy(err:find("requestTimeout", 1, true), err)
    for _, c in ipairs{ "runs start", "runs result", "runs run", "auth-sessions list", "auth-sessions get",
                        "auth-sessions delete", "auth-sessions create", "auth-sessions update",
                        "auth-sessions validate" } do
      local out, herr, hcode = cli(c .. " --help")
      assert.equals(0, hcode, herr)
      assert.truthy(out:find("^Usage: intuned " .. c:gsub("%-", "%%-")), out)
    end
    local out = cli("--help")
    assert.truthy(out:find("runs run API", 1, true))
    assert.truthy(out:find("auth-sessions validate ID", 1, true))
    out = cli("auth-sessions --help")
    assert.truthy(out:find("auth-sessions create", 1, true))
  end)
end)
