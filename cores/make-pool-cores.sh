#!/bin/sh
# Build the pool fixture (issue 10) and dump its cores with ground truth.
#
#   BUILD=build cores/make-pool-cores.sh
#
# Into $BUILD/cores/, for NAME in pools (-g) and pools_nodebug (the same
# program, strip --strip-debug: ELF symbols, no DWARF):
#   NAME                     the program
#   NAME.gdb.core            gdb's generate-core-file at dump_here()
#   NAME.truth.json          the truth the program wrote before dump_here()
#   NAME.kernel.core         a kernel core (run with "abort")
#   NAME.kernel.truth.json   its truth
# Work is redone only for what is older than its inputs.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-pool-cores
check_kernel_cores
lock pools

src=$HERE/pools.c
if stale "$OUT/pools" "$src" "$HERE/truth.h" "$HERE/leak_truth.h"; then
	say "cc pools"
	${FIXTURE_CC:-gcc} -g -O0 -pthread -Wall -Wextra -o "$OUT/pools" "$src"
fi
if stale "$OUT/pools_nodebug" "$OUT/pools"; then
	say "strip pools_nodebug"
	strip --strip-debug -o "$OUT/pools_nodebug" "$OUT/pools"
fi
for name in pools pools_nodebug; do
	gdb_core "$name"
	kernel_core "$name"
done
