#!/usr/bin/env bash
# Renders the API reference (LDoc, config.ld) into docs/ and fails on any
# warning: --fatalwarnings covers most, but LDoc prints some (such as "contains
# no items") without changing its exit status, so anything on stderr fails too.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v ldoc >/dev/null || { echo "docs: ldoc not found (Debian package lua-ldoc)" >&2; exit 1; }
err=$(mktemp)
trap 'rm -f "$err"' EXIT
ldoc --fatalwarnings . >/dev/null 2>"$err"
rc=$?
if [ "$rc" -ne 0 ] || [ -s "$err" ]; then
  cat "$err" >&2
  echo "docs: ldoc failed (exit $rc) or warned" >&2
  exit 1
fi
echo "docs: API reference written to docs/ with no warnings"
