#!/usr/bin/env bash
# The main example: installs what it needs, builds and installs the rock into
# build/tree-5.4, starts a local intuned-emulator, and runs
# examples/quickstart.lua against it (then examples/model.lua, which needs no
# server).  Set INTUNED_SERVER_URL, INTUNED_API_KEY and INTUNED_WORKSPACE_ID to
# run the quickstart against a real Intuned workspace instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash tools/setup.sh
TREE=$ROOT/build/tree-5.4
mkdir -p "$ROOT/build"
luarocks --lua-version 5.4 make --tree "$TREE" lua-intuned-scm-1.rockspec >"$ROOT/build/rock-example.log" 2>&1 \
  || { tail -30 "$ROOT/build/rock-example.log"; exit 1; }
eval "$(luarocks --lua-version 5.4 --tree "$TREE" path)"

EMU_PID=""
cleanup() { [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
if [ -z "${INTUNED_SERVER_URL:-}" ]; then
  out=$ROOT/build/emulator-example.out
  "$TREE/bin/intuned-emulator" --port 0 --api-key test-key --workspace ws-local >"$out" 2>&1 &
  EMU_PID=$!
  first=""
  for _ in $(seq 100); do first=$(head -n1 "$out" 2>/dev/null); [ -n "$first" ] && break; sleep 0.05; done
  case "$first" in listening*) ;; *) echo "emulator did not start: $first"; exit 1 ;; esac
  export INTUNED_SERVER_URL=${first#listening }
  export INTUNED_API_KEY=test-key INTUNED_WORKSPACE_ID=ws-local
  echo "emulator: $INTUNED_SERVER_URL"
fi
lua5.4 examples/quickstart.lua
echo
lua5.4 examples/model.lua
