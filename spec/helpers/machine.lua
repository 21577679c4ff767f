-- spec/helpers/machine.lua: scripted exchanges with the call machine
-- (core.call_machine), no sockets: what the retry rules decide, as the
-- transports see it.
--
--   local machine = require "spec.helpers.machine"
--   machine.decide(policy, op, attempt, outcome) -> the delay before attempt
--     `attempt` + 1 when every attempt up to `attempt` met `outcome`, or nil
--     when the machine is done (not retried)
--   outcome: { status = 503, retry_after = "2" } (a response) or
--            { failure = "connection" | "timeout", sent = true | false }
local core = require "intuned.core"

local M = {}

M.CFG = { api_key = "machine-key", workspace_id = "w", server_url = "http://127.0.0.1:9/api" }

local INPUT = { id = "j", payload = { { apiName = "a" } }, configuration = { runMode = "Order-Irrelevant" } }

function M.args(op)
  return { project = "p", job_id = "j", run_id = "r", input = op == "jobs:create" and INPUT or nil }
end

function M.feed(m, now, outcome)
  if outcome.failure then
    m:feed_failure(now, outcome.failure, "scripted", outcome.sent ~= false, true)
  else
    local h = { ["Content-Type"] = "application/json" }
    if outcome.retry_after then h["Retry-After"] = tostring(outcome.retry_after) end
    m:feed_response(now, outcome.status, h, outcome.body or "{}")
  end
end

function M.decide(policy, op, attempt, outcome)
  local m = assert(core.call_machine(M.CFG, op, M.args(op), { retry = policy, deadline = false }, 1, 0))
  local now = 0
  for i = 1, attempt do
    local what = m:next(now)
    assert(what == "send", "attempt " .. i .. ": " .. tostring(what))
    M.feed(m, now, outcome)
    local step, delay = m:next(now)
    if step == "done" then return nil end
    assert(step == "wait", step)
    if i == attempt then return delay end
    now = now + delay
  end
end

return M
