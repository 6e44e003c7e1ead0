#!/bin/sh
# Build the jemalloc fixtures and dump their cores with ground truth.
#
#   BUILD=build cores/make-jemalloc-cores.sh           every variant
#   BUILD=build cores/make-jemalloc-cores.sh NAME...   the named variants
#
# cores/jemalloc_heap.c is built four ways (the build lines are in
# cores/jemalloc.mk, which this script follows), into $BUILD/cores/:
#   jemalloc_static     linked with libjemalloc.a: jemalloc inside the executable,
#                       with its je_ symbols in .symtab
#   jemalloc_stripped   the same executable, strip --strip-all (keeping only the
#                       dump_here symbol gdb stops at): no jemalloc symbols
#   jemalloc_dynamic    linked with Debian's stripped libjemalloc.so.2
#   jemalloc_preload    a plain program run with LD_PRELOAD=libjemalloc.so.2
#   jemalloc_badversion the preload program, run with a copy of libjemalloc.so.2
#                       whose version string says 5.2.1 (gdb core only): the
#                       walker must refuse it by name
#   jemalloc_burst      cores/jemalloc_burst.c linked with libjemalloc.so.2: a
#                       healthy heap just after a burst of 40,000 frees
# For each NAME, like cores/make-cores.sh does for the glibc fixtures:
#   NAME.gdb.core          gdb's generate-core-file at the dump_here() breakpoint
#   NAME.truth.json        the truth the program wrote before dump_here()
#   NAME.kernel.core       a kernel core (the program abort()s after dump_here())
#   NAME.kernel.truth.json its truth (other addresses: ASLR)
# kernel-cores.skipped says why there are no kernel cores, when there are none.
# Work is redone only for what is older than its inputs.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-jemalloc-cores
CC=${FIXTURE_CC:-gcc}
JE_LIBDIR=${JE_LIBDIR:-/usr/lib/x86_64-linux-gnu}
JE_SO=$JE_LIBDIR/libjemalloc.so.2
JE_A=$JE_LIBDIR/libjemalloc.a
VARIANTS="jemalloc_static jemalloc_stripped jemalloc_dynamic jemalloc_preload jemalloc_badversion jemalloc_burst"
BADVER_SO=$OUT/badversion/libjemalloc.so.2

[ $# -eq 0 ] && set -- $VARIANTS

# One run at a time per build directory.
lock make-jemalloc-cores

[ -f "$JE_SO" ] && [ -f "$JE_A" ] ||
	fail "jemalloc is not installed ($JE_SO, $JE_A): apt-get install libjemalloc-dev"

check_kernel_cores

SRC=$HERE/jemalloc_heap.c
CFLAGS="-g -O0 -pthread -Wall -Wextra"

# The build lines (kept in step with cores/jemalloc.mk).
build() {
	name=$1 exe=$OUT/$1
	if [ "$name" = jemalloc_badversion ]; then
		build jemalloc_preload
		exe=$OUT/jemalloc_badversion
		stale "$exe" "$OUT/jemalloc_preload" "$JE_SO" || return 0
		say "copy jemalloc_badversion, libjemalloc.so.2 says 5.2.1"
		cp "$OUT/jemalloc_preload" "$exe"
		mkdir -p "$OUT/badversion"
		python3 -c 'import re, sys
d = open(sys.argv[1], "rb").read()
d, n = re.subn(rb"(?<=\x00)5\.3\.0-(?=[0-9]+-g[0-9a-f]{40}\x00)", b"5.2.1-", d)
assert n == 1, "no jemalloc 5.3.0 version string in " + sys.argv[1]
open(sys.argv[2], "wb").write(d)' "$JE_SO" "$BADVER_SO"
		return 0
	fi
	if [ "$name" = jemalloc_stripped ]; then
		build jemalloc_static
		exe=$OUT/jemalloc_stripped   # build() set exe for jemalloc_static
		stale "$exe" "$OUT/jemalloc_static" || return 0
		say "strip jemalloc_stripped"
		strip --strip-all --keep-symbol=dump_here -o "$exe" "$OUT/jemalloc_static"
		return 0
	fi
	src=$SRC
	[ "$name" = jemalloc_burst ] && src=$HERE/jemalloc_burst.c
	stale "$exe" "$src" "$HERE/make-jemalloc-cores.sh" || return 0
	say "cc $name"
	case $name in
	jemalloc_burst)
		$CC $CFLAGS -o "$exe" "$src" -L"$JE_LIBDIR" -ljemalloc ;;
	jemalloc_static)
		$CC $CFLAGS -DJE_VARIANT='"static"' -o "$exe" "$SRC" "$JE_A" -lm -ldl ;;
	jemalloc_dynamic)
		$CC $CFLAGS -DJE_VARIANT='"dynamic"' -o "$exe" "$SRC" -L"$JE_LIBDIR" -ljemalloc ;;
	jemalloc_preload)
		$CC $CFLAGS -DJE_VARIANT='"preload"' -o "$exe" "$SRC" ;;
	*) fail "unknown jemalloc fixture $name (known: $VARIANTS)" ;;
	esac
}

# The environment a variant runs in.
preload_of() {
	case $1 in
	jemalloc_preload) echo "$JE_SO" ;;
	jemalloc_badversion) echo "$BADVER_SO" ;;
	esac
}

# gdb runs a variant with its preload, or marked as a fixture.
je_gdb_core() {
	pre=$(preload_of "$1")
	envcmd="set environment HS_FIXTURE=1"
	[ -n "$pre" ] && envcmd="set environment LD_PRELOAD=$pre"
	gdb_core "$1" -ex "$envcmd"
}

# jemalloc_badversion has a gdb core only.
je_kernel_core() {
	[ "$1" != jemalloc_badversion ] || return 0
	kernel_core "$1" "$(preload_of "$1")"
}

for n in "$@"; do
	name=$n
	case " $VARIANTS " in *" $name "*) ;; *) fail "unknown jemalloc fixture $name (known: $VARIANTS)" ;; esac
	build "$name"
	name=$n
	je_gdb_core "$name"
	je_kernel_core "$name"
done
