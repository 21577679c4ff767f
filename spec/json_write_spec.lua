-- JSON text is written so that numbers read back exactly (src/json_write.c):
-- cJSON's printer wrote 0.30000000000000004 as 0.3 and 9007199254740991 as
-- 9.00719925474099e+15 (9007199254740990), in bodies sent to the API too.
local intuned = require "intuned"
local emulator = require "spec.helpers.emulator"

local function job_input(params)
  return { id = "job-numbers", payload = { { apiName = "a", parameters = params } },
           configuration = { runMode = "Order-Irrelevant" } }
end

describe("JSON numbers are written exactly", function()
  it("encode_json{ x = 0.30000000000000004 } decodes back to exactly that value", function()
    local x = 0.1 + 0.2
    assert.is_true(x ~= 0.3)
    local text = intuned.encode_json{ x = x }
    assert.are.equal('{"x":0.30000000000000004}', text)
    local back = assert(intuned.decode_json(text))
    assert.is_true(back.x == x, text)
    assert.is_true(back.x ~= 0.3)
  end)

  it("a JobInput with parameters { n = 9007199254740991 } sends 9007199254740991", function()
    local job = assert(intuned.JobInput.new(job_input{ n = 9007199254740991, x = 0.1 + 0.2 }))
    local text = job:to_json()
    assert.truthy(text:find('"n":9007199254740991', 1, true), text)
    assert.truthy(text:find('"x":0.30000000000000004', 1, true), text)
    assert.is_nil(text:find("e+15", 1, true), text)
    local again = assert(intuned.JobInput.decode(text))
    assert.is_true(again.payload[1].parameters.n == 9007199254740991)
    assert.are.equal(text, again:to_json())
  end)

  it("decode_json then encode_json gives 17-digit numbers back as they were", function()
    for _, text in ipairs{ "[0.30000000000000004]", "[0.30000000000000004,1.2345678901234568e+17]",
                           "[9007199254740991,-9007199254740991]", "[2.2250738585072014e-308]",
                           "[1.7976931348623157e+308]", "[0.1,100,-7,1e+300,1e+15,123.456]",
                           '{"a":{"b":[0.6666666666666666,0.3333333333333333]}}' } do
      local v = assert(intuned.decode_json(text))
      assert.are.equal(text, intuned.encode_json(v))
    end
  end)

  it("strings keep cJSON's escapes", function()
    assert.are.equal('["q\\"\\\\/\\n\\t\\u0001","h\195\169"]', intuned.encode_json{ 'q"\\/\n\t\1', "h\195\169" })
  end)
end)

describe("JSON numbers on the wire (emulator)", function()
  local emu
  setup(function() emu = emulator.start{} end)
  teardown(function() emulator.stop_all() end)

  it("the client sends and the emulator stores payload numbers exactly", function()
    local client = intuned.client{ api_key = "test-key", workspace_id = "ws-local", server_url = emu.url,
                                   retry = { initial_delay = 0.01, max_delay = 0.2 } }
    local input = job_input{ n = 9007199254740991, x = 0.1 + 0.2, big = 1.2345678901234568e17 }
    assert(client.jobs:create("numbers", input))
    local r = emu.api("GET", "/ws-local/projects/numbers/jobs/job-numbers")
    assert.are.equal(200, r.status, r.body)
    assert.truthy(r.body:find('"n":9007199254740991', 1, true), r.body)
    assert.truthy(r.body:find('"x":0.30000000000000004', 1, true), r.body)
    assert.truthy(r.body:find('"big":1.2345678901234568e+17', 1, true), r.body)
    local job = assert(client.jobs:get("numbers", "job-numbers"))
    assert.is_true(job.payload[1].parameters.n == 9007199254740991)
    assert.is_true(job.payload[1].parameters.x == 0.1 + 0.2)
    client:close()
  end)
end)
