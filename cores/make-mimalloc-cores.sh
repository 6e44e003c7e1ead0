#!/bin/sh
# Build the mimalloc fixtures and dump their cores with ground truth.
#
#   BUILD=build cores/make-mimalloc-cores.sh           every variant
#   BUILD=build cores/make-mimalloc-cores.sh NAME...   the named variants
#
# cores/mimalloc_heap.c is built into $BUILD/cores/:
#   mimalloc_dynamic     linked with Debian's stripped libmimalloc.so.2
#                        (mimalloc 2.0.9; it replaces malloc process-wide)
#   mimalloc_stripped    the same executable, strip --strip-all (keeping only
#                        the dump_here symbol gdb stops at)
#   mimalloc_badversion  mimalloc_dynamic run with a copy of libmimalloc.so.2
#                        whose mi_version() returns 210 (gdb core only):
#                        refused by name
# Debian ships no libmimalloc.a, so there is no static variant.
# For each NAME: NAME.gdb.core and NAME.truth.json (gdb at dump_here()),
# NAME.kernel.core and NAME.kernel.truth.json (the program abort()s), as
# cores/lib.sh does for every fixture.  Work is redone only when stale.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-mimalloc-cores
CC=${FIXTURE_CC:-gcc}
MI_LIB=${MI_LIB:-/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}
VARIANTS="mimalloc_dynamic mimalloc_stripped mimalloc_badversion"
BADVER_DIR=$OUT/mi-badversion

[ $# -eq 0 ] && set -- $VARIANTS

lock make-mimalloc-cores

[ -f "$MI_LIB" ] && [ -f /usr/include/mimalloc.h ] ||
	fail "mimalloc is not installed ($MI_LIB): apt-get install libmimalloc-dev"

check_kernel_cores

SRC=$HERE/mimalloc_heap.c
CFLAGS="-g -O0 -pthread -Wall -Wextra"

build() {
	name=$1 exe=$OUT/$1
	case $name in
	mimalloc_badversion)
		build mimalloc_dynamic
		exe=$OUT/mimalloc_badversion
		stale "$exe" "$OUT/mimalloc_dynamic" "$MI_LIB" || return 0
		say "copy mimalloc_badversion, libmimalloc.so.2's mi_version() says 210"
		mkdir -p "$BADVER_DIR"
		# mi_version() is "mov $209, %eax; ret".
		python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
old, new = bytes.fromhex("b8d1000000c3"), bytes.fromhex("b8d2000000c3")
assert d.count(old) == 1, "mi_version() is not mov $209,%eax; ret in " + sys.argv[1]
open(sys.argv[2], "wb").write(d.replace(old, new))' "$MI_LIB" "$BADVER_DIR/libmimalloc.so.2"
		cp "$OUT/mimalloc_dynamic" "$exe"
		return 0 ;;
	mimalloc_stripped)
		build mimalloc_dynamic
		exe=$OUT/mimalloc_stripped
		stale "$exe" "$OUT/mimalloc_dynamic" || return 0
		say "strip mimalloc_stripped"
		strip --strip-all --keep-symbol=dump_here -o "$exe" "$OUT/mimalloc_dynamic"
		return 0 ;;
	mimalloc_dynamic)
		stale "$exe" "$SRC" "$HERE/make-mimalloc-cores.sh" || return 0
		say "cc $name"
		$CC $CFLAGS -DMI_VARIANT='"dynamic"' -o "$exe" "$SRC" -lmimalloc ;;
	*) fail "unknown mimalloc fixture $name (known: $VARIANTS)" ;;
	esac
}

for n in "$@"; do
	case " $VARIANTS " in *" $n "*) ;; *) fail "unknown mimalloc fixture $n (known: $VARIANTS)" ;; esac
	build "$n"
	if [ "$n" = mimalloc_badversion ]; then
		gdb_core "$n" -ex "set environment LD_LIBRARY_PATH=$BADVER_DIR"
	else
		gdb_core "$n"
		kernel_core "$n"
	fi
done
