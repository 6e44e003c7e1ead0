#!/bin/sh
# Make sure the Debian packages heapscope needs are installed.  As root, install
# what is missing; otherwise print the exact apt-get line and fail.
# Usage: scripts/deps.sh build|check|demo|bench|fuzz
set -e
need="make gcc libelf-dev libdw-dev zlib1g-dev libzstd-dev liblzma-dev liblz4-dev pkg-config"
case "$1" in
  check|demo) need="$need g++ libcmocka-dev gdb libc6-dbg libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev python3 elfutils binutils util-linux libglib2.0-dev uthash-dev zstd xz-utils lz4" ;;
  bench) need="$need gdb libc6-dbg python3 time bc libgoogle-perftools-dev libmimalloc-dev golang-1.19-go" ;;
  fuzz) need="$need clang-14 libclang-rt-14-dev" ;;
esac
# export/report/debuginfod tests: go tool pprof reads the profiles back,
# headless Chromium renders the report, a local debuginfod serves debug info
# (libdebuginfod1 is the client libdw loads); Go 1.19 builds the Go heap
# fixture (cores/make-go-cores.sh).
case "$1" in
  check) need="$need golang-go golang-1.19-go chromium debuginfod libdebuginfod1" ;;
esac
missing=""
for p in $need; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "heapscope: installing missing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  apt-get install -y -qq $missing >&2
else
  echo "heapscope: missing Debian packages. Run:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
