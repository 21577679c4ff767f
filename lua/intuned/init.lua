-- intuned: Lua client for the Intuned Jobs API.
-- The typed model, codec and protocol live in C (intuned.core); this module
-- re-exports them and adds the client, whose transport is picked at call time
-- (libcurl from plain Lua, cosockets inside nginx).

--- Lua client for the Intuned Jobs API.
-- `local intuned = require "intuned"` gives the typed model (a type table
-- for every model of the API reference, see "Model types"), JSON and time
-- helpers, error objects, and @{client}, which makes the Jobs API client
-- (module @{intuned.client}; it also speaks the Run API, `client.runs`,
-- and Auth Sessions, `client.auth_sessions`). The C module `intuned.core` implements all but
-- `client`; this module re-exports every name of it. Failures of data,
-- server or network return `nil, err` (an @{Error}); misuse raises.
-- README.md describes the behaviour in full.
-- @module intuned
local core = require "intuned.core"

local M = {}
for k, v in pairs(core) do M[k] = v end

-- Conversions between job definitions (Job -> create or update body); the
-- objects' job:to_input() / job:to_update() call the same functions.
local convert = require "intuned.convert"
M.JobInput.from = convert.to_input
M.JobUpdateInput.from = convert.to_update

--- The client.
-- @section client

--- Create a Jobs API client (an @{intuned.client.Client}). The transport
-- is picked at each call: cosockets (module @{intuned.ngx}) inside nginx,
-- libcurl elsewhere. The API key lives in the client's private state, never
-- on the object, in `tostring`, a hook event or an error.
-- @tparam[opt] table opts options (all optional but the key and the
-- workspace, which fall back to the environment)
-- @tparam[opt] string opts.api_key the API key (default `INTUNED_API_KEY`;
-- none raises)
-- @tparam[opt] string opts.workspace_id the workspace (default
-- `INTUNED_WORKSPACE_ID`; none raises)
-- @tparam[opt] string opts.server_url an http(s) URL (default
-- `INTUNED_SERVER_URL`, then `https://app.intuned.io/api/v1/workspace`)
-- @tparam[opt=10] number|false opts.connect_timeout seconds (false: none)
-- @tparam[opt=30] number|false opts.timeout seconds per attempt (false: none)
-- @tparam[opt=120] number|false opts.deadline seconds for the whole call,
-- retries included (false: none)
-- @tparam[opt] table|boolean opts.retry the retry policy `{ max_attempts = 4,
-- initial_delay = 0.5, max_delay = 30, multiplier = 2, jitter = 0.5 }` (the
-- defaults); false turns retries off
-- @tparam[opt] table opts.headers extra request headers, name to value (they
-- may not override `x-api-key` or `Content-Type`)
-- @tparam[opt] string opts.user_agent default `lua-intuned/VERSION`
-- @tparam[opt] string opts.ca_file CA bundle for TLS (default the system
-- store; libcurl only: nginx uses `lua_ssl_trusted_certificate`)
-- @tparam[opt=false] boolean opts.insecure turn TLS verification off
-- @tparam[opt=true] boolean opts.http2 libcurl: HTTP/2 where the server's TLS
-- handshake offers it (a batch multiplexes over one connection); false:
-- HTTP/1.1 only
-- @tparam[opt] function opts.hook called with each @{HookEvent} (request,
-- response, retry; secrets already redacted); it may call `client:close()`
-- @tparam[opt] boolean|function opts.debug one redacted line per request,
-- response and retry (@{intuned.debug}): `true` writes them to stderr (to
-- `ngx.log` at NOTICE inside nginx), a function gets each line; default:
-- on when `INTUNED_DEBUG=1`
-- @tparam[opt="auto"] string opts.transport `"auto"`, `"curl"` or `"ngx"`
-- @tparam[opt="v0.3.12"] string opts.api_version the create body sent:
-- `"v0.3.12"` (also `"0.3.12"`) a `JobInput`, or `"newest"` (also
-- `"v0.5.2"`) a `JobInputNewest` (see the README's "API versions")
-- @tparam[opt=4] number opts.keepalive_timeout nginx: seconds a pooled
-- connection may stay idle
-- @tparam[opt=64] number opts.pool_size nginx: connections per worker and
-- server (further calls queue)
-- @tparam[opt=4096] number opts.backlog nginx: calls that may queue for a
-- pooled connection
-- @treturn intuned.client.Client
-- @raise on a bad option, or no API key or workspace id
-- @usage local intuned = require "intuned"
-- local client = assert(intuned.client{ api_key = os.getenv("INTUNED_API_KEY") })
-- local job, err = client.jobs:get("my-project", "nightly")
-- if not job then error(tostring(err)) end
function M.client(opts)
  return require("intuned.client").new(opts)
end

--- Receiving sink results.
-- @section webhook

--- The webhook receiver (module @{intuned.webhook}): token check, decoding
-- into a @{JobSinkResultPayload} and duplicate detection for the results a
-- webhook sink delivers. `intuned.webhook.new{ token = ... }` makes one.
-- @field webhook
M.webhook = require "intuned.webhook"

--- Jobs as code.
-- @section plan

--- Compare declared jobs with a project's: which to create, which to
-- update (field by field, secrets as `***`), which to delete with `prune`
-- (@{intuned.plan.plan}; `require("intuned.plan").plan_text(p)` says it
-- for people).
-- @tparam intuned.client.Client client the client
-- @tparam string project the project name
-- @tparam table jobs an array of job definitions
-- @tparam[opt] table opts `prune`, `call`
-- @treturn table the plan, or nil, err
function M.plan(client, project, jobs, opts)
  local p, err = require("intuned.plan").plan(client, project, jobs, opts)
  return p, err
end

--- Make a project match declared jobs (@{intuned.plan.apply}): creates,
-- updates and (with `prune`) deletes, stopping at the first failure.
-- @tparam intuned.client.Client client the client
-- @tparam string project the project name
-- @tparam table jobs an array of job definitions
-- @tparam[opt] table opts `prune`, `call`, `plan`
-- @treturn table the report, or nil, err, the report so far
function M.apply(client, project, jobs, opts)
  local r, err, partial = require("intuned.plan").apply(client, project, jobs, opts)
  return r, err, partial
end

--- Old names.
-- @section old_names

-- The parts of an update body were named by a version number in 0.1.0; they
-- are named after the update body now.  The old names stay for one release.
local OLD_NAMES = {
  JobPayloadV2 = "JobUpdatePayload", ConfigurationV2 = "JobUpdateConfiguration",
  RetryV2 = "JobUpdateRetry", AuthSessionV2 = "JobUpdateAuthSession",
}
for old, new in pairs(OLD_NAMES) do M[old] = M[new] end

--- Deprecated: @{JobUpdatePayload} (its 0.1.0 name; removed in the next release).
-- @field JobPayloadV2

--- Deprecated: @{JobUpdateConfiguration} (its 0.1.0 name; removed in the next release).
-- @field ConfigurationV2

--- Deprecated: @{JobUpdateRetry} (its 0.1.0 name; removed in the next release).
-- @field RetryV2

--- Deprecated: @{JobUpdateAuthSession} (its 0.1.0 name; removed in the next release).
-- @field AuthSessionV2

return M
