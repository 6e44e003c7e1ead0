#!/bin/sh
# Build the gperftools tcmalloc fixtures and dump their cores with ground truth.
#
#   BUILD=build cores/make-tcmalloc-cores.sh           every variant
#   BUILD=build cores/make-tcmalloc-cores.sh NAME...   the named variants
#
# cores/tcmalloc_heap.c is built several ways into $BUILD/cores/:
#   tcmalloc_minimal    linked with Debian's stripped libtcmalloc_minimal.so.4
#   tcmalloc_full       linked with Debian's stripped libtcmalloc.so.4 (the
#                       heap profiler and checker are in, not enabled)
#   tcmalloc_static     linked with libtcmalloc_minimal.a: tcmalloc inside the
#                       executable, with its symbols in .symtab
#   tcmalloc_stripped   the same executable, strip --strip-all (keeping only
#                       the dump_here symbol gdb stops at)
#   tcmalloc_sampled    tcmalloc_full with heap sampling on (it runs itself
#                       again with TCMALLOC_SAMPLE_PARAMETER=65536)
#   tcmalloc_badversion tcmalloc_minimal run with a copy of
#                       libtcmalloc_minimal.so.4 whose version string says
#                       "gperftools 2.11" (gdb core only): refused by name
# For each NAME: NAME.gdb.core and NAME.truth.json (gdb at dump_here()),
# NAME.kernel.core and NAME.kernel.truth.json (the program abort()s), as
# cores/lib.sh does for every fixture.  Work is redone only when stale.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-tcmalloc-cores
CC=${FIXTURE_CC:-gcc}
TC_LIBDIR=${TC_LIBDIR:-/usr/lib/x86_64-linux-gnu}
VARIANTS="tcmalloc_minimal tcmalloc_full tcmalloc_static tcmalloc_stripped tcmalloc_sampled tcmalloc_badversion"
BADVER_DIR=$OUT/tc-badversion

[ $# -eq 0 ] && set -- $VARIANTS

lock make-tcmalloc-cores

for f in libtcmalloc_minimal.so.4 libtcmalloc.so.4 libtcmalloc_minimal.a; do
	[ -f "$TC_LIBDIR/$f" ] ||
		fail "gperftools is not installed ($TC_LIBDIR/$f): apt-get install libgoogle-perftools-dev"
done

check_kernel_cores

SRC=$HERE/tcmalloc_heap.c
CFLAGS="-g -O0 -pthread -Wall -Wextra"

build() {
	name=$1 exe=$OUT/$1
	case $name in
	tcmalloc_badversion)
		build tcmalloc_minimal
		exe=$OUT/tcmalloc_badversion
		stale "$exe" "$OUT/tcmalloc_minimal" "$TC_LIBDIR/libtcmalloc_minimal.so.4" || return 0
		say "copy tcmalloc_badversion, libtcmalloc_minimal.so.4 says gperftools 2.11"
		mkdir -p "$BADVER_DIR"
		python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
assert d.count(b"\x00gperftools 2.10\x00") == 1, "no gperftools 2.10 version string in " + sys.argv[1]
open(sys.argv[2], "wb").write(d.replace(b"\x00gperftools 2.10\x00", b"\x00gperftools 2.11\x00"))' \
			"$TC_LIBDIR/libtcmalloc_minimal.so.4" "$BADVER_DIR/libtcmalloc_minimal.so.4"
		cp "$OUT/tcmalloc_minimal" "$exe"
		return 0 ;;
	tcmalloc_stripped)
		build tcmalloc_static
		exe=$OUT/tcmalloc_stripped
		stale "$exe" "$OUT/tcmalloc_static" || return 0
		say "strip tcmalloc_stripped"
		strip --strip-all --keep-symbol=dump_here -o "$exe" "$OUT/tcmalloc_static"
		return 0 ;;
	esac
	stale "$exe" "$SRC" "$HERE/make-tcmalloc-cores.sh" || return 0
	say "cc $name"
	case $name in
	tcmalloc_minimal)
		$CC $CFLAGS -DTC_VARIANT='"minimal"' -o "$exe" "$SRC" -L"$TC_LIBDIR" -ltcmalloc_minimal ;;
	tcmalloc_full)
		$CC $CFLAGS -DTC_VARIANT='"full"' -o "$exe" "$SRC" -L"$TC_LIBDIR" -ltcmalloc ;;
	tcmalloc_sampled)
		# tcmalloc_minimal is built without sampling (NO_TCMALLOC_SAMPLES).
		$CC $CFLAGS -DTC_VARIANT='"sampled"' -DTC_SAMPLED='"65536"' -o "$exe" "$SRC" \
			-L"$TC_LIBDIR" -ltcmalloc ;;
	tcmalloc_static)
		# tcmalloc is C++: the C object is linked by g++ (libstdc++).
		$CC $CFLAGS -DTC_VARIANT='"static"' -c -o "$exe.o" "$SRC"
		g++ -pthread -o "$exe" "$exe.o" "$TC_LIBDIR/libtcmalloc_minimal.a" -lm
		rm -f "$exe.o" ;;
	*) fail "unknown tcmalloc fixture $name (known: $VARIANTS)" ;;
	esac
}

tc_gdb_core() {
	envcmd="set environment HS_FIXTURE=1"
	[ "$1" = tcmalloc_badversion ] && envcmd="set environment LD_LIBRARY_PATH=$BADVER_DIR"
	[ "$1" = tcmalloc_sampled ] && envcmd="set environment TCMALLOC_SAMPLE_PARAMETER=65536"
	gdb_core "$1" -ex "$envcmd"
}

for n in "$@"; do
	case " $VARIANTS " in *" $n "*) ;; *) fail "unknown tcmalloc fixture $n (known: $VARIANTS)" ;; esac
	build "$n"
	tc_gdb_core "$n"
	[ "$n" = tcmalloc_badversion ] || kernel_core "$n"
done
