#!/usr/bin/env bash
# CTest: install the build into a scratch prefix, compile the README's C
# snippet against the installed header, library and pkg-config file only, run
# it on a fixture and check what it prints.
set -euo pipefail
build=$1 src=$2 extra=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
# the first ```c block of the README
awk '/^```c$/{f=1;next} f&&/^```$/{exit} f' "$src/README.md" >"$tmp/job.c"
grep -q itd_job_decode "$tmp/job.c"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
# shellcheck disable=SC2086
cc -std=c99 -Wall -Wextra -Werror $extra "$tmp/job.c" $(pkg-config --cflags --libs intuned) -o "$tmp/job"
out=$("$tmp/job" "$src/spec/fixtures/examples/job-webhook-paused.json")
echo "$out"
[ "$out" = "harbor-price-watch PAUSED" ]
if "$tmp/job" "$src/spec/fixtures/examples/error-400.json" 2>"$tmp/err"; then echo "decoded an error body as a Job"; exit 1; fi
cat "$tmp/err"
grep -q . "$tmp/err"
echo "c_install: ok"
