#!/usr/bin/env bash
# Jobs as code from the shell: installs what it needs, builds and installs the
# rock into build/tree-5.4 (as examples/run.sh does), starts a local
# intuned-emulator, then
#   intuned apply examples/jobs.lua --prune     creates the jobs the file declares
#   intuned apply examples/jobs.lua --prune     again: "No changes."
#   intuned jobs trigger nightly-products --wait
# and lists the runs.  Set INTUNED_SERVER_URL, INTUNED_API_KEY and
# INTUNED_WORKSPACE_ID to run it against a real Intuned workspace instead
# (--prune deletes the project's jobs that examples/jobs.lua does not declare).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash tools/setup.sh
TREE=$ROOT/build/tree-5.4
mkdir -p "$ROOT/build"
luarocks --lua-version 5.4 make --tree "$TREE" lua-intuned-scm-1.rockspec >"$ROOT/build/rock-example.log" 2>&1 \
  || { tail -30 "$ROOT/build/rock-example.log"; exit 1; }
INTUNED=$TREE/bin/intuned
export INTUNED_PROJECT=${INTUNED_PROJECT:-jobs-as-code}

EMU_PID=""
cleanup() { [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
if [ -z "${INTUNED_SERVER_URL:-}" ]; then
  out=$ROOT/build/emulator-apply.out
  # runs take 1.5 s here, so the wait below has something to show
  "$TREE/bin/intuned-emulator" --port 0 --api-key test-key --workspace ws-local --api-latency-ms 1500 >"$out" 2>&1 &
  EMU_PID=$!
  first=""
  for _ in $(seq 100); do first=$(head -n1 "$out" 2>/dev/null); [ -n "$first" ] && break; sleep 0.05; done
  case "$first" in listening*) ;; *) echo "emulator did not start: $first"; exit 1 ;; esac
  export INTUNED_SERVER_URL=${first#listening }
  export INTUNED_API_KEY=test-key INTUNED_WORKSPACE_ID=ws-local
  echo "emulator: $INTUNED_SERVER_URL"
fi

echo "== intuned apply examples/jobs.lua --prune"
"$INTUNED" apply examples/jobs.lua --prune
echo "== the same again"
"$INTUNED" apply examples/jobs.lua --prune
echo "== intuned jobs list"
"$INTUNED" jobs list
echo "== intuned jobs trigger nightly-products --wait"
status=0
"$INTUNED" jobs trigger nightly-products --wait --poll 0.2 || status=$?
echo "(exit status $status: 0 completed, 1 API error or timeout, 3 the run did not succeed)"
echo "== intuned runs list nightly-products"
"$INTUNED" runs list nightly-products
exit "$status"
