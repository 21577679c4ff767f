#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (+ ASan and UBSan) into
# build/fuzz and runs each one for a while on a scratch copy of its corpus.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]      (SECONDS: default $FUZZ_SECONDS or 30)
#
# Before the timed run, every saved reproducer in fuzz/regressions/TARGET/ is
# run once.  One line per target:
#   fuzz: json          execs=123456 cov=512 ft=2048 corpus=97 result=ok
# and the exit status is non-zero when any target found something (its
# reproducer is then under build/fuzz/work/TARGET/artifacts/) or failed to build.
# Without clang's libFuzzer the script says so and exits 0 ("skipped"),
# except under CI=true, where that is a failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ="$ROOT/fuzz"
OUT="${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then SECONDS_PER_TARGET=$1; shift; fi
ALL_TARGETS=(json schema response datetime request emulator)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
CC="${FUZZ_CC:-clang}"

skip_or_fail() {
  if [ "${CI:-}" = "true" ]; then
    echo "fuzz: FAILED: $1 (CI=true: setup installs clang and libclang-rt-14-dev)"
    exit 1
  fi
  echo "fuzz: skipped: $1"
  exit 0
}

command -v "$CC" >/dev/null 2>&1 || skip_or_fail "$CC not found"
mkdir -p "$OUT/obj" "$OUT/work"
probe="$OUT/probe"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe.c"
"$CC" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" >"$probe.log" 2>&1 ||
  skip_or_fail "$CC cannot build with -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing?): $(head -c 300 "$probe.log")"

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
CFLAGS=(-g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter
        -I"$ROOT/src" -I"$ROOT/src/emulator" -I"$FUZZ")
HEADERS=("$ROOT"/src/*.h "$ROOT"/src/emulator/*.h "$FUZZ"/fuzz.h)
# the C core: every src/*.c but the Lua binding (as the root CMakeLists' intuned_core)
CORE=()
for f in "$ROOT"/src/*.c; do
  b=$(basename "$f" .c)
  case "$b" in lua_*) ;; *) CORE+=("$b") ;; esac
done
EMU=(main util http reply control receiver stats faults store render persist runner deliver scheduler sched runs_api auth_sessions)

# compile SRC OBJ [extra flags]: only when the source or a header is newer
compile() {
  local src=$1 obj=$2
  shift 2
  local stale=0 h
  [ -f "$obj" ] && [ "$obj" -nt "$src" ] || stale=1
  if [ $stale = 0 ]; then
    for h in "${HEADERS[@]}"; do [ "$h" -nt "$obj" ] && { stale=1; break; }; done
  fi
  [ $stale = 1 ] || return 0
  "$CC" "${CFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link "$@" -c "$src" -o "$obj"
}

build_failed=()
build() {
  local t=$1 objs=() s
  for s in "${CORE[@]}"; do compile "$ROOT/src/$s.c" "$OUT/obj/$s.o" || return 1; objs+=("$OUT/obj/$s.o"); done
  local libs=(-lcurl -lcjson -lm)
  if [ "$t" = emulator ]; then
    for s in "${EMU[@]}"; do
      # main.c's main() is renamed so that libFuzzer's main is the program's
      compile "$ROOT/src/emulator/$s.c" "$OUT/obj/emu_$s.o" -Dmain=emulator_main || return 1
      objs+=("$OUT/obj/emu_$s.o")
    done
    libs=(-lmicrohttpd -lcurl -lcjson -lpthread -lm)
  fi
  compile "$FUZZ/fuzz_$t.c" "$OUT/obj/fuzz_$t.o" || return 1
  "$CC" "${SAN[@]}" -fsanitize=fuzzer "$OUT/obj/fuzz_$t.o" "${objs[@]}" "${libs[@]}" -o "$OUT/fuzz_$t"
}

status=0
# Every target is built first (they share the core's objects), then run two
# at a time (FUZZ_JOBS, default nproc): each run is one process on one core,
# so a pair takes the wall time of one.
RUN=()
for t in "${TARGETS[@]}"; do
  if [ ! -f "$FUZZ/fuzz_$t.c" ]; then echo "fuzz: $t: no such target (${ALL_TARGETS[*]})"; status=1; continue; fi
  if ! build "$t" >"$OUT/build_$t.log" 2>&1; then
    cat "$OUT/build_$t.log" >&2
    printf 'fuzz: %-10s execs=0 cov=0 ft=0 corpus=0 result=BUILD-FAILED (%s)\n' "$t" "$OUT/build_$t.log"
    status=1
    build_failed+=("$t")
    continue
  fi
  RUN+=("$t")
done

# run_target T: its regressions, then the timed run; writes the target's
# line to $OUT/work/T/result and what went wrong to $OUT/work/T/errors
run_target() {
  local t=$1 work="$OUT/work/$1"
  # the corpus is a fresh scratch copy each time; earlier findings stay in artifacts/
  rm -rf "$work/corpus"
  mkdir -p "$work/corpus" "$work/artifacts"
  : >"$work/errors"
  touch "$work/.start"
  # a scratch copy: libFuzzer adds to the corpus it is given
  [ -d "$FUZZ/corpus/$t" ] && cp -R "$FUZZ/corpus/$t/." "$work/corpus/"
  local dict=()
  [ -f "$FUZZ/$t.dict" ] && dict=(-dict="$FUZZ/$t.dict")
  # scratch files of a target (the emulator's S3 directory) stay in its work dir, even after a crash
  mkdir -p "$work/tmp"
  export TMPDIR="$work/tmp"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

  local result=ok
  # every saved reproducer, once
  if [ -d "$FUZZ/regressions/$t" ] && [ -n "$(ls -A "$FUZZ/regressions/$t" 2>/dev/null)" ]; then
    if ! "$OUT/fuzz_$t" -timeout=25 -rss_limit_mb=2048 "$FUZZ/regressions/$t"/* >"$work/regressions.log" 2>&1; then
      result="REGRESSION (see $work/regressions.log)"
      tail -n 40 "$work/regressions.log" >>"$work/errors"
    fi
  fi

  "$OUT/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "${dict[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1
  local rc=$?
  local last execs cov ft corp
  last=$(grep -E '^#[0-9]+.*cov: ' "$work/fuzz.log" | tail -n 1)
  execs=$(grep -E '^stat::number_of_executed_units:' "$work/fuzz.log" | tail -n 1 | awk '{print $2}')
  [ -n "$execs" ] || execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  if [ $rc -ne 0 ]; then
    local art found
    art=$(find "$work/artifacts" -type f -newer "$work/.start" 2>/dev/null | head -n 1)
    found="FOUND (exit $rc; ${art:+reproducer $art; }log $work/fuzz.log)"
    if [ "$result" = ok ]; then result=$found; else result="$result; $found"; fi
    grep -E 'ERROR: |fuzz check failed|runtime error|SUMMARY' "$work/fuzz.log" | head -n 5 >>"$work/errors"
  fi
  printf 'fuzz: %-10s execs=%s cov=%s ft=%s corpus=%s result=%s\n' "$t" "${execs:-0}" "${cov:-0}" "${ft:-0}" \
    "${corp:-0}" "$result" >"$work/result"
}

JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$JOBS" -ge 1 ] 2>/dev/null || JOBS=1
i=0
while [ $i -lt ${#RUN[@]} ]; do
  batch=("${RUN[@]:$i:$JOBS}")
  for t in "${batch[@]}"; do rm -f "$OUT/work/$t/result"; run_target "$t" & done
  wait
  for t in "${batch[@]}"; do
    cat "$OUT/work/$t/errors" >&2 2>/dev/null
    if [ -s "$OUT/work/$t/result" ]; then
      cat "$OUT/work/$t/result"
      grep -q ' result=ok$' "$OUT/work/$t/result" || status=1
    else
      printf 'fuzz: %-10s execs=0 cov=0 ft=0 corpus=0 result=NO-RESULT (the run ended early)\n' "$t"
      status=1
    fi
  done
  i=$((i + JOBS))
done
exit $status
