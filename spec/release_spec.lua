-- The release files agree with the version the code reports (one place:
-- ITD_VERSION in src/protocol.h).
local intuned = require "intuned"
local util = require "spec.helpers.util"

describe("release", function()
  local version = intuned._VERSION

  it("has a release rockspec for the version, pointing at its tag", function()
    local spec = util.read("lua-intuned-" .. version .. "-1.rockspec")
    assert.truthy(spec:find('version = "' .. version .. '%-1"'))
    assert.truthy(spec:find('tag = "v' .. version .. '"', 1, true))
    for _, field in ipairs{ "homepage", "maintainer", "license" } do
      assert.truthy(spec:find(field .. ' = "[^"]+"'), field)
    end
  end)

  it("ships the license the rockspecs name", function()
    assert.truthy(util.read("LICENSE"):find("MIT License", 1, true))
    for _, name in ipairs{ "lua-intuned-scm-1.rockspec", "lua-intuned-" .. version .. "-1.rockspec" } do
      assert.truthy(util.read(name):find('license = "MIT"', 1, true), name)
    end
  end)

  it("has a changelog entry for the version", function()
    assert.truthy(util.read("CHANGELOG.md"):find("\n## " .. version:gsub("%.", "%%.") .. "\n"))
  end)

  it("takes _VERSION from the C header", function()
    local h = util.read("src/protocol.h")
    assert.equals(version, h:match('#define ITD_VERSION "([^"]+)"'))
    assert.truthy(h:find('#define ITD_USER_AGENT "lua%-intuned/" ITD_VERSION'))
  end)
end)
