#!/usr/bin/env bash
# CTest: the shape of the C core's headers.
#   1. each public header compiles alone, from a directory holding only the
#      public headers (so none needs a private one), and twice in a row;
#   2. the headers of src/ and src/emulator/ include each other without a cycle;
#   3. nothing below the Lua binding includes lua.h or lauxlib.h;
#   4. the libcurl transport calls no function of the codec (it moves bytes:
#      decoding is the call machine's and the protocol's business).
# usage: headers_standalone.sh SRC_DIR CC "CFLAGS" HEADER...
set -euo pipefail
src=$1 cc=$2 cflags=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

mkdir -p "$tmp/pub"
for h in "$@"; do cp "$src/$h" "$tmp/pub/"; done
for h in "$@"; do
  b=$(basename "$h")
  printf '#include "%s"\n#include "%s"\nint main(void) { return 0; }\n' "$b" "$b" >"$tmp/t.c"
  # shellcheck disable=SC2086
  if ! "$cc" -std=c99 -Wall -Wextra -Werror -pedantic $cflags -I"$tmp/pub" -c "$tmp/t.c" -o "$tmp/t.o" 2>"$tmp/err"; then
    echo "not standalone: $b"; cat "$tmp/err"; fail=1
  fi
done

# include graph: an edge "A B" when header or source A includes header B (quoted)
: >"$tmp/edges"
for f in "$src"/src/*.h "$src"/src/*.c "$src"/src/emulator/*.h "$src"/src/emulator/*.c; do
  b=$(basename "$f")
  echo "$b $b" >>"$tmp/edges"
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while read -r inc; do
    echo "$b $inc" >>"$tmp/edges"
  done
done
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/err"; then
  echo "include cycle:"; cat "$tmp/err"; fail=1
fi

for f in "$src"/src/*.c "$src"/src/*.h "$src"/src/emulator/*.c "$src"/src/emulator/*.h; do
  case "$(basename "$f")" in lua_*) continue ;; esac
  if grep -Eq '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib)\.h[>"]' "$f"; then
    echo "below the binding but includes Lua: $f"; fail=1
  fi
done

# the codec's functions, as codec.h declares them
grep -Eo '\bitd_[a-z0-9_]+[[:space:]]*\(' "$src/src/codec.h" | sed 's/[[:space:]]*($//' | sort -u >"$tmp/codec_fns"
# shellcheck disable=SC2086
"$cc" -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $cflags $(pkg-config --cflags libcurl 2>/dev/null || true) \
  -I"$src/src" -c "$src/src/transport_curl.c" -o "$tmp/transport.o"
nm -u "$tmp/transport.o" | awk '{print $NF}' | sort -u >"$tmp/undef"
[ -s "$tmp/codec_fns" ] || { echo "no function found in codec.h"; fail=1; }
grep -q '^itd_call_next$' "$tmp/undef" || { echo "transport_curl.c does not drive the call machine?"; fail=1; }
if comm -12 "$tmp/codec_fns" "$tmp/undef" | grep .; then
  echo "transport_curl.c calls the codec (above)"; fail=1
fi

[ "$fail" = 0 ] && echo "headers: $# public headers standalone, no include cycle, no Lua below the binding, no codec in the transport"
exit "$fail"
