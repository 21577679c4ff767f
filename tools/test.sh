#!/usr/bin/env bash
# The whole test suite: C tests (CTest), the busted specs under every Lua
# (5.1, 5.2, 5.3, 5.4, LuaJIT) against rocks installed with luarocks, the
# same under AddressSanitizer+UBSan and under valgrind, and luacheck.
# Ends with one line "N passed, M failed" adding up every suite.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGS=$ROOT/build/logs
mkdir -p "$LOGS"
JOBS=$(nproc 2>/dev/null || echo 2)
SRC_LPATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua"

bash tools/setup.sh

PASSED=0
FAILED=0
SUITES=()

note() { printf '\n== %s  (at %d s)\n' "$*" "$SECONDS"; }
record() { # name passed failed
  PASSED=$((PASSED + $2)); FAILED=$((FAILED + $3))
  SUITES+=("$(printf '%-34s %5d passed, %d failed' "$1" "$2" "$3")")
}
fail_suite() { record "$1" 0 1; echo "!! $1: $2"; }

# ---- C tests (plain build)
run_ctest() { # name builddir [wrapper]
  local name=$1 dir=$2 log=$LOGS/$1.log
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure -j"$JOBS" ${CTEST_ARGS:-}) >"$log" 2>&1
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of" "$log" | tail -1)
  if [ -z "$line" ]; then fail_suite "$name" "no CTest summary (see $log)"; tail -20 "$log"; return; fi
  local total failed; total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); failed=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
  # The same rule as run_busted's: a crash of LeakSanitizer's tracer is not
  # a leak report, so the failed tests run once more (and only those).
  if [ "$failed" != 0 ] && grep -q "LeakSanitizer has encountered a fatal error" "$log" \
     && ! grep -q "detected memory leaks" "$log"; then
    mv "$log" "$log.tracer-failed"
    echo "   $name: LeakSanitizer's tracer failed (see $log.tracer-failed); running the failed tests again"
    (cd "$dir" && ctest --output-on-failure --rerun-failed) >"$log" 2>&1
    line=$(grep -E "tests passed, [0-9]+ tests failed out of" "$log" | tail -1)
    failed=$([ -n "$line" ] && sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line" || echo "$failed")
  fi
  record "$name" $((total - failed)) "$failed"
  # what failed, and why: CTest's list, failed checks, sanitizer reports
  [ "$failed" = 0 ] || grep -E "\*\*\*|Failed  |CHECK failed|ERROR: |SUMMARY: |runtime error" "$log" | head -30
}

# ---- busted specs
run_busted() { # name lua-command cpath lpath [extra env...]; $SPECS selects the spec files
  local name=$1 lua=$2 cpath=$3 lpath=$4; shift 4
  local log=$LOGS/$name.log
  # LeakSanitizer's tracer has crashed at exit on this kind of VM ("Tracer
  # caught signal 11" ... "LeakSanitizer has encountered a fatal error"): a
  # failure of the tool, not a leak report ("detected memory leaks"), but
  # the leak check did not finish, so the suite runs once more.
  local try
  for try in 1 2; do
    # shellcheck disable=SC2086
    env "$@" LUA_PATH="$lpath;$ROOT/?.lua;;" LUA_CPATH="$cpath;;" \
      $lua /usr/bin/busted -o plainTerminal ${SPECS:-spec} >"$log" 2>&1
    if ! grep -q "LeakSanitizer has encountered a fatal error" "$log" || grep -q "detected memory leaks" "$log"; then break; fi
    if [ "$try" = 1 ]; then
      mv "$log" "$log.tracer-failed"
      echo "   $name: LeakSanitizer's tracer failed (see $log.tracer-failed); running the suite again"
    else
      fail_suite "$name-leak-check" "LeakSanitizer's tracer failed twice: no leak check (see $log)"
    fi
  done
  local line; line=$(grep -E "[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors?" "$log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')
  if [ -z "$line" ]; then fail_suite "$name" "busted gave no summary (see $log)"; tail -30 "$log"; return; fi
  local ok bad err
  ok=$(sed -E 's/^([0-9]+) success.*/\1/' <<<"$line")
  bad=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$line")
  err=$(sed -E 's/.* ([0-9]+) errors?.*/\1/' <<<"$line")
  record "$name" "$ok" $((bad + err))
  [ $((bad + err)) = 0 ] || grep -A12 -E "^(Failure|Error) ->" "$log" | head -80
}

note "build (CMake, C tests)"
cmake -S . -B build/plain -DITD_WERROR=ON -DLUA_INCDIR=/usr/include/lua5.4 >"$LOGS/cmake-plain.log" 2>&1 \
  && cmake --build build/plain -j"$JOBS" >>"$LOGS/cmake-plain.log" 2>&1 \
  || { cat "$LOGS/cmake-plain.log" | tail -40; fail_suite "build" "cmake build failed"; }
[ -d build/plain ] && run_ctest ctest build/plain

note "portable string scan: the JSON and decode tests with the 8-byte scan that machines without SSE2 run"
cmake -S . -B build/portable -DITD_WERROR=ON -DLUA_INCDIR=/usr/include/lua5.4 -DITD_BUILD_EMULATOR=OFF \
  -DCMAKE_C_FLAGS=-DITD_NO_SSE2 >"$LOGS/cmake-portable.log" 2>&1 \
  && cmake --build build/portable -j"$JOBS" >>"$LOGS/cmake-portable.log" 2>&1 \
  || { tail -40 "$LOGS/cmake-portable.log"; fail_suite "portable-build" "cmake build failed"; }
[ -d build/portable ] && CTEST_ARGS="-R test_codec|test_fuzz|test_protocol|test_call" run_ctest ctest-portable build/portable

note "client-only build (no libmicrohttpd): the client installs, the emulator is left out"
CO=$ROOT/build/client-only
rm -rf "$CO"
if PKG_CONFIG_LIBDIR=/nonexistent cmake -S . -B "$CO/build" -DITD_WERROR=ON -DLUA_INCDIR=/usr/include/lua5.4 -DITD_BUILD_TESTS=OFF >"$LOGS/client-only.log" 2>&1 \
  && grep -q "libmicrohttpd not found" "$LOGS/client-only.log" \
  && cmake --build "$CO/build" -j"$JOBS" >>"$LOGS/client-only.log" 2>&1 \
  && cmake --install "$CO/build" --prefix "$CO/prefix" >>"$LOGS/client-only.log" 2>&1 \
  && [ ! -e "$CO/prefix/bin/intuned-emulator" ] \
  && LUA_CPATH="$CO/prefix/lib/lua/?.so" LUA_PATH="$CO/prefix/share/lua/?.lua;$CO/prefix/share/lua/?/init.lua" \
     lua5.4 -e 'local i = require "intuned"; assert(i.client{ api_key = "k", workspace_id = "w" })' >>"$LOGS/client-only.log" 2>&1; then
  record client-only-build 1 0
else
  tail -20 "$LOGS/client-only.log"; record client-only-build 0 1
fi

note "luarocks make for each Lua, busted under each interpreter"
for v in 5.1 5.2 5.3 5.4; do
  tree=$ROOT/build/tree-$v
  if luarocks --lua-version "$v" make --tree "$tree" lua-intuned-scm-1.rockspec >"$LOGS/rock-$v.log" 2>&1; then
    echo "rock built for Lua $v"
  else
    tail -30 "$LOGS/rock-$v.log"; fail_suite "luarocks-$v" "luarocks make failed"
  fi
done
EMU=$ROOT/build/tree-5.4/bin/intuned-emulator
[ -x "$EMU" ] || EMU=$ROOT/build/plain/src/emulator/intuned-emulator
export INTUNED_EMULATOR=$EMU
# The specs that only drive the emulator (a C program) over HTTP test nothing
# that depends on the Lua version: they run under 5.4 (and ASan below), the
# library's specs under every interpreter (CI time).
# The nginx specs run the library inside nginx, whose Lua is always LuaJIT;
# the interpreter running busted only sends them requests and reads the
# answers, so they run under LuaJIT and 5.4 and not again under 5.1-5.3.
EMU_ONLY="emulator emulator_guard emulator_limits emulator_schedule emulator_newest emulator_behaviour emulator_run_auth api_versions"
LIB_SPECS=""; LIB_SPECS_NO_NGINX=""
for f in spec/*_spec.lua; do
  b=$(basename "$f" _spec.lua)
  case " $EMU_ONLY " in *" $b "*) continue ;; esac
  LIB_SPECS="$LIB_SPECS $f"
  case "$b" in nginx*) ;; *) LIB_SPECS_NO_NGINX="$LIB_SPECS_NO_NGINX $f" ;; esac
done
for pair in "lua5.1:5.1" "luajit:5.1" "lua5.2:5.2" "lua5.3:5.3" "lua5.4:5.4"; do
  lua=${pair%%:*}; v=${pair##*:}
  specs=$LIB_SPECS_NO_NGINX
  [ "$lua" = luajit ] && specs=$LIB_SPECS
  [ "$lua" = lua5.4 ] && specs=spec
  SPECS=$specs run_busted "busted-$lua" "$lua" "$ROOT/build/tree-$v/lib/lua/$v/?.so" \
    "$ROOT/build/tree-$v/share/lua/$v/?.lua;$ROOT/build/tree-$v/share/lua/$v/?/init.lua"
done

note "mode matrix: the emulator, client and conformance specs against an emulator speaking the newest API"
# The other suites run the emulator in its default v0.3.12 mode; these specs
# follow INTUNED_TEST_API_VERSION (spec/helpers/emulator.lua). Once, under 5.4.
SPECS="spec/emulator_spec.lua spec/client_spec.lua spec/conformance_spec.lua" \
  run_busted "busted-newest-lua5.4" lua5.4 "$ROOT/build/tree-5.4/lib/lua/5.4/?.so" \
  "$ROOT/build/tree-5.4/share/lua/5.4/?.lua;$ROOT/build/tree-5.4/share/lua/5.4/?/init.lua" INTUNED_TEST_API_VERSION=newest

note "fault storm: 10,000 calls with 30% injected faults through each transport"
# Not in spec/'s default pattern (it would run under every interpreter): once,
# with the 5.4 rock for libcurl and the LuaJIT build for nginx.
SPECS="--pattern=storm spec/storm" run_busted "storm" lua5.4 "$ROOT/build/tree-5.4/lib/lua/5.4/?.so" \
  "$ROOT/build/tree-5.4/share/lua/5.4/?.lua;$ROOT/build/tree-5.4/share/lua/5.4/?/init.lua"
grep -E "^(== storm|calls |errors by kind|attempts |emulator: |state: |RSS |steady )" "$LOGS/storm.log" || true

note "fuzzing: every target of fuzz/ (libFuzzer + ASan + UBSan), ${FUZZ_SECONDS:-30} s each, after its saved regressions"
bash fuzz/run.sh >"$LOGS/fuzz.log" 2>&1
fuzz_rc=$?
grep -E "^fuzz: " "$LOGS/fuzz.log" || true
fuzz_ok=$(grep -cE "^fuzz: .* result=ok$" "$LOGS/fuzz.log")
fuzz_all=$(grep -cE "^fuzz: [a-z]+ .* result=" "$LOGS/fuzz.log")
if [ "$fuzz_rc" -ne 0 ] || [ "$fuzz_all" -eq 0 ]; then
  [ "$fuzz_all" -gt "$fuzz_ok" ] || fuzz_all=$((fuzz_ok + 1))
  tail -20 "$LOGS/fuzz.log"
fi
record fuzz "$fuzz_ok" $((fuzz_all - fuzz_ok))

note "AddressSanitizer + UBSan"
cmake -S . -B build/asan -DITD_WERROR=ON -DITD_SANITIZE=ON -DLUA_INCDIR=/usr/include/lua5.4 >"$LOGS/cmake-asan.log" 2>&1 \
  && cmake --build build/asan -j"$JOBS" >>"$LOGS/cmake-asan.log" 2>&1 \
  || { tail -40 "$LOGS/cmake-asan.log"; fail_suite "asan-build" "sanitizer build failed"; }
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tools/lsan.supp:print_suppressions=0"
if [ -d build/asan ]; then
  run_ctest ctest-asan build/asan
  # A sanitized Lua interpreter rather than LD_PRELOAD, which would reach every
  # curl, nginx and compiler the specs start.
  gcc -std=c99 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -I/usr/include/lua5.4 \
    -o build/asan/lua_runner tools/lua_runner.c -llua5.4 >>"$LOGS/cmake-asan.log" 2>&1
  run_busted "busted-asan-lua5.4" "$ROOT/build/asan/lua_runner" "$ROOT/build/asan/lib/?.so" "$SRC_LPATH" \
    INTUNED_EMULATOR="$ROOT/build/asan/src/emulator/intuned-emulator"
fi
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

note "valgrind"
VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect"
vg_ok=0; vg_bad=0
for t in build/plain/test_*; do
  [ -x "$t" ] || continue
  if $VG "$t" >"$LOGS/valgrind-$(basename "$t").log" 2>&1; then vg_ok=$((vg_ok + 1)); else vg_bad=$((vg_bad + 1)); tail -30 "$LOGS/valgrind-$(basename "$t").log"; fi
done
record "valgrind-ctest" "$vg_ok" "$vg_bad"
# The specs that need no timing-sensitive servers: valgrind slows Lua ~30x.
SPECS="spec/model_spec.lua spec/conformance_spec.lua" \
  run_busted "busted-valgrind-lua5.4" "$VG lua5.4" "$ROOT/build/plain/lib/?.so" "$SRC_LPATH" ITD_UNDER_VALGRIND=1

note "luacheck"
if luacheck -q lua spec examples bench tools >"$LOGS/luacheck.log" 2>&1; then record luacheck 1 0; else cat "$LOGS/luacheck.log" | tail -30; record luacheck 0 1; fi

note "API reference (LDoc, fails on any warning)"
if bash tools/docs.sh >"$LOGS/docs.log" 2>&1; then record ldoc 1 0; else tail -30 "$LOGS/docs.log"; record ldoc 0 1; fi

note "summary"
printf '%s\n' "${SUITES[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
