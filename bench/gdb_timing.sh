#!/bin/sh
# make bench: the GDB extension's and the CLI's timing bounds (bench/gdb_timing.py),
# on the build bench/run.sh made ($BUILD, default build-release).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build-release} exec python3 "$HERE/gdb_timing.py"
