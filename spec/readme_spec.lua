-- The README's nginx configuration is the example's (examples/nginx/nginx.conf,
-- which spec/nginx_spec.lua runs): every line of the README block stands in
-- the example, in the same order, so the two cannot drift apart.
local util = require "spec.helpers.util"

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

describe("README", function()
  it("shows nginx configuration lines that are the example's own, in order", function()
    local readme = util.read("README.md")
    local block = assert(readme:match("```nginx\n(.-)```"), "README has an nginx block")
    local example = {}
    for line in util.read("examples/nginx/nginx.conf"):gmatch("[^\n]+") do
      example[#example + 1] = trim(line)
    end
    local at, checked = 1, 0
    for line in block:gmatch("[^\n]+") do
      local l = trim(line)
      if l ~= "..." and l ~= "}" and l ~= "" then
        local found
        for i = at, #example do
          if example[i] == l then found = i break end
        end
        assert(found, "README nginx line not in examples/nginx/nginx.conf (in order): " .. l)
        at, checked = found + 1, checked + 1
      end
    end
    assert.truthy(checked >= 8)
    -- what a worker needs to reach an emulator or Intuned
    assert.truthy(block:find("env INTUNED_SERVER_URL;", 1, true))
    assert.truthy(block:find("resolver ", 1, true))
    assert.falsy(block:find("127.0.0.53", 1, true))
  end)
end)

-- Every ```lua block of the README runs, as a user would paste it, in a
-- separate interpreter (the one running this spec) against an emulator, with
-- INTUNED_API_KEY, INTUNED_WORKSPACE_ID and INTUNED_SERVER_URL set as
-- examples/run.sh sets them.  A line `... --> text` says what its print
-- writes: those lines must appear in the output in that order ("..." in a
-- text stands for anything, runs of blanks match any blanks).  Each block
-- runs twice, so one that leaves state behind fails.
local emulator = require "spec.helpers.emulator"

local function expected_lines(code)
  local out = {}
  for line in code:gmatch("[^\n]+") do
    local e = line:match("%-%->%s*(.-)%s*$")
    if e and not line:match("^%s*%-%-") then
      local parts = {}
      for piece in (e .. "..."):gmatch("(.-)%.%.%.") do
        parts[#parts + 1] = piece:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("%s+", "%%s+")
      end
      out[#out + 1] = { text = e, pattern = "^" .. table.concat(parts, ".-") .. "$" }
    end
  end
  return out
end

local interpreter = require("spec.helpers.util").interpreter

describe("README Lua snippets", function()
  local emu
  setup(function() emu = emulator.start{} end)
  teardown(function() emulator.stop_all() end)

  local readme = util.read("README.md")
  local n = 0
  for code in readme:gmatch("```lua\n(.-)```") do
    n = n + 1
    local i = n
    it("block " .. i .. " runs and prints what the README says", function()
      local file = os.tmpname()
      emulator.write_file(file, code)
      local exe = assert(interpreter())
      local cmd = ("INTUNED_API_KEY=%s INTUNED_WORKSPACE_ID=ws-local INTUNED_SERVER_URL=%s "
        .. "LUA_PATH=%s LUA_CPATH=%s %s %s 2>&1; echo \"exit=$?\"")
        :format(emulator.quote(emu.key), emulator.quote(emu.url), emulator.quote(package.path),
                emulator.quote(package.cpath), emulator.quote(exe), emulator.quote(file))
      for round = 1, 2 do
        local out
        -- Under AddressSanitizer, LeakSanitizer's own tracer has crashed at
        -- exit once in CI ("Tracer caught signal 11" ... "LeakSanitizer has
        -- encountered a fatal error"): a failure of the tool, not a leak
        -- (a leak says "detected memory leaks").  That case alone is run
        -- again once, with the leak check off (ASan's other checks stay); a
        -- block runs twice by design, so a third run of it changes nothing.
        local run = cmd
        for _ = 1, 2 do
          local p = assert(io.popen(run))
          out = p:read("*a")
          p:close()
          if not (out:find("LeakSanitizer has encountered a fatal error", 1, true)
                  and not out:find("detected memory leaks", 1, true)) then break end
          -- again, with ASan's checks but without the leak check that crashed
          io.stderr:write(("readme_spec: block %d: LeakSanitizer's tracer failed; running it again without it\n"):format(i))
          run = "ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" " .. cmd
        end
        assert(out:find("\nexit=0\n$") or out:find("^exit=0\n$"), ("block %d, run %d failed:\n%s"):format(i, round, out))
        local lines = {}
        for l in out:gmatch("[^\n]*") do lines[#lines + 1] = l end
        local at = 1
        for _, e in ipairs(expected_lines(code)) do
          local found
          for k = at, #lines do
            if lines[k]:find(e.pattern) then found = k break end
          end
          assert(found, ("block %d, run %d: no output line like %q after line %d of:\n%s"):format(i, round, e.text, at, out))
          at = found + 1
        end
      end
      os.remove(file)
    end)
  end
  it("found the README's Lua blocks", function() assert.truthy(n >= 2) end)
end)
