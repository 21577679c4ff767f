#!/usr/bin/env bash
# Installs the Debian packages lua-intuned needs to build, run and test.
# Idempotent: apt is skipped when everything is already installed.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git curl ca-certificates openssl python3 procps locales
  libcurl4-openssl-dev libcjson-dev libmicrohttpd-dev
  lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev lua5.4 liblua5.4-dev
  luajit2 libluajit2-5.1-dev
  luarocks lua-busted lua-cjson lua-check lua-ldoc
  nginx libnginx-mod-http-lua wrk valgrind clang libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The tests start their own nginx on free loopback ports and never touch a
# process they did not start (a system nginx, if the package started one, is
# left alone).
