#!/bin/sh
# Build the fixture programs and dump their cores with ground truth.
#
#   BUILD=build cores/make-cores.sh          every fixture (make check)
#   BUILD=build cores/make-cores.sh demo     only the demo fixture (make demo)
#   BUILD=build cores/make-cores.sh NAME...  the named fixtures
#
# For each glibc fixture cores/NAME.c (one that includes truth.h), into $BUILD/cores/:
#   NAME                   the program (gcc -g -O0 -pthread)
#   NAME.gdb.core          gdb's generate-core-file at the dump_here() breakpoint
#   NAME.truth.json        the truth the program wrote before dump_here()
#   NAME.kernel.core       a kernel core (the program abort()s after dump_here())
#   NAME.kernel.truth.json its truth (other addresses: ASLR)
#   NAME.*.validation      cores/validate.py's check of the truth against glibc's
#                          own view of the core, through gdb and libc6-dbg
# kernel-cores.skipped says why there are no kernel cores, when there are none.
# Work is redone only for what is older than its inputs.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-cores -P
CC=${FIXTURE_CC:-gcc}
SIDEFILES=validation
TMP=tmp.$$

# One run at a time per build directory (make check and make demo may overlap).
lock make-cores

# The glibc fixtures are the programs that write their truth with truth.h
# (jemalloc_heap.c has its own script, make-jemalloc-cores.sh).
if [ $# -eq 0 ]; then
	set -- $(cd "$HERE" && grep -l -e '#include "truth.h"' -e '#include "corrupt_common.h"' *.c |
		sed 's/\.c$//')
elif [ "$1" = demo ]; then
	set -- threads
fi

check_kernel_cores
[ "$kernel_ok" = yes ] && rm -f "$OUT/kernel-cores.skipped"

build() {
	name=$1
	if stale "$OUT/$name" "$HERE/$name.c" "$HERE"/*.h; then
		say "cc $name"
		$CC -g -O0 -pthread -Wall -Wextra -o "$OUT/$name" "$HERE/$name.c"
	fi
}

for name in "$@"; do
	[ -f "$HERE/$name.c" ] || fail "no fixture cores/$name.c"
	build "$name"
	gdb_core "$name"
	kernel_core "$name"
	validate_glibc "$name" gdb
	validate_glibc "$name" kernel
done
