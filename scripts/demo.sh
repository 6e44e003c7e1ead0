#!/bin/sh
# make demo: show heapscope on a core of a fixture program.
set -e
B=${BUILD:-build}
core=$B/cores/threads.gdb.core
echo
echo "== heapscope $core info"
"$B/heapscope" "$core" info
echo
echo "== heapscope $core summary"
"$B/heapscope" "$core" summary
echo
echo "== heapscope $core bins"
"$B/heapscope" "$core" bins
echo
echo "Try also: $B/heapscope $core chunks --limit 20, ... --json summary, ... show ADDR"
