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
# For each NAME, like cores/make-cores.sh does for the glibc fixtures:
#   NAME.gdb.core          gdb's generate-core-file at the dump_here() breakpoint
#   NAME.truth.json        the truth the program wrote before dump_here()
#   NAME.kernel.core       a kernel core (the program abort()s after dump_here())
#   NAME.kernel.truth.json its truth (other addresses: ASLR)
# kernel-cores.skipped says why there are no kernel cores, when there are none.
# Work is redone only for what is older than its inputs.
set -eu

BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$BUILD/cores
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CC=${FIXTURE_CC:-gcc}
JE_LIBDIR=${JE_LIBDIR:-/usr/lib/x86_64-linux-gnu}
JE_SO=$JE_LIBDIR/libjemalloc.so.2
JE_A=$JE_LIBDIR/libjemalloc.a
VARIANTS="jemalloc_static jemalloc_stripped jemalloc_dynamic jemalloc_preload jemalloc_badversion"
BADVER_SO=$OUT/badversion/libjemalloc.so.2

[ $# -eq 0 ] && set -- $VARIANTS

# One run at a time per build directory.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$OUT/.make-jemalloc-cores.lock"
	flock 9
fi

say() { echo "make-jemalloc-cores: $*"; }
fail() { echo "make-jemalloc-cores: $*" >&2; exit 1; }

[ -f "$JE_SO" ] && [ -f "$JE_A" ] ||
	fail "jemalloc is not installed ($JE_SO, $JE_A): apt-get install libjemalloc-dev"

newer() { [ -e "$1" ] && { [ ! -e "$2" ] || [ "$1" -nt "$2" ]; }; }
stale() {
	t=$1; shift
	[ -s "$t" ] || return 0
	for i in "$@"; do newer "$i" "$t" && return 0; done
	return 1
}

kernel_ok=yes
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo '?')
case $pattern in
	'|'*) kernel_ok="core_pattern is a pipe ($pattern)" ;;
	*/*) kernel_ok="core_pattern writes elsewhere ($pattern)" ;;
	'?') kernel_ok="cannot read /proc/sys/kernel/core_pattern" ;;
esac
if [ "$kernel_ok" = yes ] && ! (ulimit -c unlimited) 2>/dev/null; then
	kernel_ok="ulimit -c unlimited was refused (hard limit $(ulimit -Hc))"
fi
if [ "$kernel_ok" != yes ]; then
	say "no kernel cores: $kernel_ok; kernel-core tests will be skipped"
	echo "$kernel_ok" >"$OUT/kernel-cores.skipped"
fi

sparse() {
	command -v fallocate >/dev/null 2>&1 && fallocate -d "$1" 2>/dev/null || true
}

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
	stale "$exe" "$SRC" "$HERE/make-jemalloc-cores.sh" || return 0
	say "cc $name"
	case $name in
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

gdb_core() {
	name=$1 core=$OUT/$1.gdb.core truth=$OUT/$1.truth.json
	stale "$core" "$OUT/$name" || stale "$truth" "$OUT/$name" || return 0
	say "gdb core $name"
	rm -f "$core" "$core.tmp" "$truth"
	log=$OUT/$name.gdb.log
	pre=$(preload_of "$name")
	envcmd="set environment HS_FIXTURE=1"
	[ -n "$pre" ] && envcmd="set environment LD_PRELOAD=$pre"
	if ! gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex 'set pagination off' -ex 'set confirm off' -ex "$envcmd" \
		-ex 'break dump_here' -ex run \
		-ex "generate-core-file $core.tmp" -ex kill \
		--args "$OUT/$name" "$truth" >"$log" 2>&1 ||
	   [ ! -s "$core.tmp" ] || [ ! -s "$truth" ]; then
		cat "$log" >&2
		fail "gdb did not write a core for $name (log: $log)"
	fi
	sparse "$core.tmp"
	mv "$core.tmp" "$core"
}

kernel_core() {
	name=$1 core=$OUT/$1.kernel.core truth=$OUT/$1.kernel.truth.json
	[ "$kernel_ok" = yes ] && [ "$name" != jemalloc_badversion ] || return 0
	stale "$core" "$OUT/$name" || stale "$truth" "$OUT/$name" || return 0
	say "kernel core $name"
	rm -f "$core" "$truth"
	scratch=$OUT/scratch.$name
	rm -rf "$scratch"
	mkdir -p "$scratch"
	pre=$(preload_of "$name")
	(set +e; cd "$scratch" && ulimit -c unlimited &&
		if [ -n "$pre" ]; then LD_PRELOAD=$pre "$OUT/$name" "$truth" abort
		else "$OUT/$name" "$truth" abort; fi; exit 0) >/dev/null 2>&1 || true
	got=$(ls "$scratch" | grep '^core' | head -n 1 || true)
	if [ -z "$got" ] || [ ! -s "$truth" ]; then
		rm -rf "$scratch"
		fail "no kernel core for $name (core_pattern: $pattern)"
	fi
	mv "$scratch/$got" "$core"
	rm -rf "$scratch"
}

for n in "$@"; do
	name=$n
	case " $VARIANTS " in *" $name "*) ;; *) fail "unknown jemalloc fixture $name (known: $VARIANTS)" ;; esac
	build "$name"
	name=$n
	gdb_core "$name"
	kernel_core "$name"
done
