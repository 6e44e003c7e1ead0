#!/bin/sh
# The version matrix: the fixture programs built against other Debian
# releases' C library and jemalloc, run with that release's own loader, and
# their cores with ground truth.
#
#   BUILD=build cores/make-matrix-cores.sh             every release
#   BUILD=build cores/make-matrix-cores.sh bullseye    one release
#
# Releases (scripts/debian-release.sh fetches and caches their packages under
# $BUILD/debian/RELEASE/root; a failed download fails here, loudly):
#   bullseye  Debian 11: glibc 2.31, jemalloc 5.2.1 (libjemalloc2 5.2.1-3)
#   trixie    Debian 13: glibc 2.41, jemalloc 5.3.0 (libjemalloc2 5.3.0-3,
#             built with LG_VADDR 57: a 3-level rtree)
# For each release R (prefix P: m11 or m13), into $BUILD/cores/:
#   P_glibc_heap        cores/glibc_heap.c    (glibc's arenas, bins, tcache, mmapped)
#   P_leaks             cores/leaks.c         (leak classes)
#   P_jemalloc_dynamic  cores/jemalloc_heap.c -ljemalloc (R's stripped .so)
#   P_jemalloc_static   cores/jemalloc_heap.c + R's libjemalloc.a, then
#                       strip --strip-all: no jemalloc symbols at all
#   P_jemalloc_burst    cores/jemalloc_burst.c -ljemalloc (a burst of frees)
#   P_jemalloc_symbols  P_jemalloc_static before strip (je_ symbols; gdb core only)
#   P_jemalloc_pic      cores/jemalloc_heap.c linked with P_libjepic.so: R's
#                       libjemalloc_pic.a linked whole into a shared library
#                       of another name, stripped
# each compiled with --sysroot=ROOT (R's headers, crt files and libc.so),
# -Wl,--dynamic-linker=R's ld.so and an RPATH to R's library directories,
# so that it runs with R's loader, libc, libstdc++ and jemalloc; then
#   NAME.gdb.core + NAME.truth.json, NAME.kernel.core + NAME.kernel.truth.json
# as cores/make-cores.sh makes them.  NAME.root names ROOT (the tests give
# heapscope --debug-dir ROOT/usr/lib/debug for R's libc6-dbg).
# Work is redone only for what is older than its inputs.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
init make-matrix-cores
CC=${FIXTURE_CC:-gcc}
TMP=tmp.$$
RELEASES=${*:-bullseye trixie}

lock make-matrix-cores
check_kernel_cores

prefix_of() {
	case $1 in
	bullseye) echo m11 ;;
	trixie) echo m13 ;;
	*) fail "unknown release $1 (bullseye or trixie)" ;;
	esac
}

# The release's dynamic loader: ROOT/lib64/ld-linux-x86-64.so.2 is a link,
# absolute (Debian 11) or relative (13), to be followed inside ROOT.
loader_of() {
	l=$1/lib64/ld-linux-x86-64.so.2
	while [ -L "$l" ]; do
		t=$(readlink "$l")
		case $t in
		/*) l=$1$t ;;
		*) l=$(dirname "$l")/$t ;;
		esac
	done
	[ -f "$l" ] || fail "no dynamic loader in $1 ($1/lib64/ld-linux-x86-64.so.2)"
	echo "$l"
}

build() {
	name=$1 src=$2 root=$3
	shift 3
	exe=$OUT/$name
	stale "$exe" "$src" "$HERE/make-matrix-cores.sh" "$root/.complete" || return 0
	say "cc $name"
	ld=$(loader_of "$root")
	# -B and -L: gcc searches its own directories before the sysroot's.
	$CC -g -O0 -pthread -Wall -Wextra -Wno-unused-parameter --sysroot="$root" \
		-B"$root/usr/lib/x86_64-linux-gnu" -L"$root/usr/lib/x86_64-linux-gnu" -L"$root/lib/x86_64-linux-gnu" \
		-Wl,--dynamic-linker="$ld" -Wl,--disable-new-dtags \
		-Wl,-rpath="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu" \
		-o "$exe.$TMP" "$src" "$@" || fail "cannot build $name against $root"
	mv "$exe.$TMP" "$exe"
	echo "$root" >"$OUT/$name.root"
}

for rel in $RELEASES; do
	p=$(prefix_of "$rel")
	root=$("$TOP/scripts/debian-release.sh" "$rel") ||
		fail "the $rel packages could not be fetched (see above): the version matrix cannot run"
	lib=$root/usr/lib/x86_64-linux-gnu
	build "${p}_glibc_heap" "$HERE/glibc_heap.c" "$root"
	build "${p}_leaks" "$HERE/leaks.c" "$root"
	build "${p}_jemalloc_dynamic" "$HERE/jemalloc_heap.c" "$root" -DJE_VARIANT='"dynamic"' -ljemalloc
	build "${p}_jemalloc_burst" "$HERE/jemalloc_burst.c" "$root" -ljemalloc
	if stale "$OUT/${p}_jemalloc_static" "$HERE/jemalloc_heap.c" "$HERE/make-matrix-cores.sh" "$root/.complete"; then
		build "${p}_jemalloc_static" "$HERE/jemalloc_heap.c" "$root" -DJE_VARIANT='"static"' \
			"$lib/libjemalloc.a" -lm -ldl
		cp "$OUT/${p}_jemalloc_static" "$OUT/${p}_jemalloc_symbols"
		cp "$OUT/${p}_jemalloc_static.root" "$OUT/${p}_jemalloc_symbols.root"
		strip --strip-all --keep-symbol=dump_here "$OUT/${p}_jemalloc_static"
	fi
	gdb_core "${p}_jemalloc_symbols" -ex "set environment HS_FIXTURE=1"
	if stale "$OUT/${p}_libjepic.so" "$HERE/make-matrix-cores.sh" "$root/.complete"; then
		say "cc ${p}_libjepic.so"
		$CC -shared -o "$OUT/${p}_libjepic.so" -Wl,-soname,${p}_libjepic.so --sysroot="$root" \
			-B"$lib" -L"$lib" -L"$root/lib/x86_64-linux-gnu" \
			-Wl,--whole-archive "$lib/libjemalloc_pic.a" -Wl,--no-whole-archive "$lib/libstdc++.so.6" -lm -ldl -pthread ||
			fail "cannot link $lib/libjemalloc_pic.a into a shared library"
		strip --strip-all "$OUT/${p}_libjepic.so"
		rm -f "$OUT/${p}_jemalloc_pic"
	fi
	build "${p}_jemalloc_pic" "$HERE/jemalloc_heap.c" "$root" -DJE_VARIANT='"pic"' \
		"$OUT/${p}_libjepic.so" -Wl,-rpath="$OUT"
	for name in "${p}_glibc_heap" "${p}_leaks" "${p}_jemalloc_dynamic" "${p}_jemalloc_burst" \
		"${p}_jemalloc_static" "${p}_jemalloc_pic"; do
		# gdb reads the release's libthread_db next to its libc.
		gdb_core "$name" -ex "set auto-load safe-path /" -ex "set libthread-db-search-path $root/lib/x86_64-linux-gnu:$lib" \
			-ex "set environment HS_FIXTURE=1"
		kernel_core "$name"
	done
done
