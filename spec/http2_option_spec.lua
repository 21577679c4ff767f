-- The client option http2 (libcurl: HTTP/2 where TLS offers it, the
-- default; false keeps to HTTP/1.1) and the batch's collector step: checked
-- once like every option, and calls and batches work with it either way
-- against the emulator (plain HTTP, where both mean HTTP/1.1).
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"

describe("client option http2", function()
  local emu

  setup(function() emu = emulator.start{} end)
  teardown(function() if emu then emu.stop(emu) end end)

  local function new_client(opts)
    local o = { api_key = "test-key", workspace_id = "ws-local", server_url = emu.url,
                api_version = emu.api_version, retry = false }
    for k, v in pairs(opts or {}) do o[k] = v end
    return intuned.client(o)
  end

  local function job(id)
    return { id = id, payload = { { apiName = "products/list", parameters = { page = 1 } } },
             configuration = { runMode = "Order-Irrelevant" } }
  end

  it("takes true and false, refuses another type naming the option", function()
    assert.is_table(new_client{ http2 = true })
    assert.is_table(new_client{ http2 = false })
    local ok, err = pcall(new_client, { http2 = "no" })
    assert.is_false(ok)
    assert.matches("option 'http2' must be a boolean, got string", err, 1, true)
    ok, err = pcall(new_client, { htp2 = false })
    assert.is_false(ok)
    assert.matches("did you mean 'http2'", err, 1, true)
  end)

  for _, h2 in ipairs{ true, false } do
    it(("calls and a batch work with http2 = %s"):format(tostring(h2)), function()
      local c = new_client{ http2 = h2 }
      local id = ("h2-%s-%d"):format(tostring(h2), os.time() % 100000)
      assert(c.jobs:create("p", job(id)))
      assert.equals(id, assert(c.jobs:get("p", id)).id)
      local calls = {}
      for i = 1, 12 do calls[i] = { op = "jobs:get", project = "p", job_id = id } end
      calls[13] = { op = "jobs:get", project = "p", job_id = "no-such-job" }
      -- two batches: the second starts with the collector step for the first's results
      for _ = 1, 2 do
        local out = c:batch(calls, { max_in_flight = 4 })
        assert.equals(13, #out)
        for i = 1, 12 do assert.equals(id, out[i].id) end
        assert.is_true(intuned.is_error(out[13]))
        assert.equals("not_found", out[13].kind)
      end
      c:close()
    end)
  end
end)
