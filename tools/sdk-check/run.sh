#!/usr/bin/env bash
# tools/sdk-check/run.sh: an independent check of the emulator with the
# official TypeScript SDK (@intuned/client), outside CI.  For each API version
# it starts intuned-emulator with --api-version, drives every Jobs operation
# through that version's SDK (check.js) and prints one line per operation:
# "ok" or the SDK's own validation error.
#
# Needs:
#   node (18 or newer: check.js uses the global fetch);
#   built checkouts of the SDK, which this repository neither ships nor builds:
#     SDK_NEWEST  @intuned/client 0.5.2 (commit 9c55302), default /tmp/sdk-new
#     SDK_V0312   @intuned/client 0.3.12 (commit bdecfa3), default /tmp/sdk-old
#   each one built already: its node_modules present and its compiled
#   index.js beside package.json;
#   the emulator: EMULATOR, default build/src/emulator/intuned-emulator.
#
# Usage: tools/sdk-check/run.sh [newest|v0.3.12 ...]   (default: both)
# Exit status: 0 when every operation passed, 1 when one failed, 2 when
# something it needs is missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SDK_NEWEST=${SDK_NEWEST:-/tmp/sdk-new}
SDK_V0312=${SDK_V0312:-/tmp/sdk-old}
EMULATOR=${EMULATOR:-$root/build/src/emulator/intuned-emulator}
# long enough API calls that a run is still going when it is terminated
LATENCY_MS=${LATENCY_MS:-2000}

need() { echo "sdk-check: $*" >&2; exit 2; }

command -v node >/dev/null 2>&1 || need "node is required (18 or newer) and is not on PATH"
node -e 'process.exit(typeof fetch === "function" ? 0 : 1)' ||
  need "node $(node --version) has no global fetch; node 18 or newer is required"
[ -x "$EMULATOR" ] || need "no emulator at $EMULATOR: build it (cmake) or set EMULATOR"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(newest v0.3.12)

sdk_for() {
  case "$1" in
    newest) echo "$SDK_NEWEST" ;;
    v0.3.12) echo "$SDK_V0312" ;;
    *) need "unknown API version '$1' (newest or v0.3.12)" ;;
  esac
}

# Check every prerequisite before starting anything.
for v in "${versions[@]}"; do
  dir=$(sdk_for "$v") || exit 2
  var=SDK_NEWEST; [ "$v" = v0.3.12 ] && var=SDK_V0312
  [ -f "$dir/package.json" ] ||
    need "$var=$dir is not a checkout of @intuned/client (no package.json); set $var to one"
  [ -d "$dir/node_modules" ] ||
    need "$dir has no node_modules: $var must be a built checkout of the SDK"
  [ -f "$dir/index.js" ] ||
    need "$dir has no index.js (the compiled SDK): $var must be a built checkout of the SDK"
done

emu_pid=
out=
cleanup() {
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null; wait "$emu_pid" 2>/dev/null; fi
  [ -n "$out" ] && rm -f "$out" "$out.err"
  emu_pid=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
for v in "${versions[@]}"; do
  dir=$(sdk_for "$v")
  out=$(mktemp)
  # --host is loopback already; said anyway, since the SDK calls it
  "$EMULATOR" --api-version "$v" --host 127.0.0.1 --port 0 --api-latency-ms "$LATENCY_MS" >"$out" 2>"$out.err" &
  emu_pid=$!
  url=
  for _ in $(seq 1 250); do
    line=$(head -n 1 "$out")
    case "$line" in listening\ *) url=${line#listening }; break ;; esac
    kill -0 "$emu_pid" 2>/dev/null || break
    sleep 0.02
  done
  if [ -z "$url" ]; then
    echo "sdk-check $v: FAIL the emulator did not start: $(cat "$out" "$out.err" | head -c 600)"
    status=1
    cleanup
    continue
  fi
  env -u INTUNED_API_KEY -u INTUNED_DEBUG node "$here/check.js" --sdk "$dir" --api "$v" --url "$url"
  rc=$?
  [ $rc -gt $status ] && status=$rc
  cleanup
done
exit $status
