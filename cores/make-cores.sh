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

BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$BUILD/cores
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
CC=${FIXTURE_CC:-gcc}

# One run at a time per build directory (make check and make demo may overlap).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$OUT/.make-cores.lock"
	flock 9
fi

# The glibc fixtures are the programs that write their truth with truth.h
# (jemalloc_heap.c has its own script, make-jemalloc-cores.sh).
if [ $# -eq 0 ]; then
	set -- $(cd "$HERE" && grep -l -e '#include "truth.h"' -e '#include "corrupt_common.h"' *.c |
		sed 's/\.c$//')
elif [ "$1" = demo ]; then
	set -- threads
fi

say() { echo "make-cores: $*"; }
fail() { echo "make-cores: $*" >&2; exit 1; }

# newer A B: A exists and is newer than B (B missing counts as older).
newer() { [ -e "$1" ] && { [ ! -e "$2" ] || [ "$1" -nt "$2" ]; }; }
# stale OUT INPUT...: OUT is missing or older than one of the inputs.
stale() {
	t=$1; shift
	[ -s "$t" ] || return 0
	for i in "$@"; do newer "$i" "$t" && return 0; done
	return 1
}

# Kernel cores need core_pattern to name a file in the working directory and a
# core size limit we may raise.
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
if [ "$kernel_ok" = yes ]; then
	rm -f "$OUT/kernel-cores.skipped"
else
	say "no kernel cores: $kernel_ok; kernel-core tests will be skipped"
	echo "$kernel_ok" >"$OUT/kernel-cores.skipped"
fi

# gdb writes every untouched page (a thread arena reserves 64 MiB) as zeros:
# give them back to the file system where it can.
sparse() {
	command -v fallocate >/dev/null 2>&1 && fallocate -d "$1" 2>/dev/null || true
}

build() {
	name=$1
	if stale "$OUT/$name" "$HERE/$name.c" "$HERE"/*.h; then
		say "cc $name"
		$CC -g -O0 -pthread -Wall -Wextra -o "$OUT/$name" "$HERE/$name.c"
	fi
}

gdb_core() {
	name=$1 core=$OUT/$1.gdb.core truth=$OUT/$1.truth.json
	stale "$core" "$OUT/$name" || stale "$truth" "$OUT/$name" || return 0
	say "gdb core $name"
	rm -f "$core" "$core.tmp.$$" "$truth" "$OUT/$name.gdb.validation"
	log=$OUT/$name.gdb.log
	if ! gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex 'set pagination off' -ex 'set confirm off' \
		-ex 'break dump_here' -ex run \
		-ex "generate-core-file $core.tmp.$$" -ex kill \
		--args "$OUT/$name" "$truth" >"$log" 2>&1 ||
	   [ ! -s "$core.tmp.$$" ] || [ ! -s "$truth" ]; then
		cat "$log" >&2
		fail "gdb did not write a core for $name (log: $log)"
	fi
	sparse "$core.tmp.$$"
	mv "$core.tmp.$$" "$core"
}

kernel_core() {
	name=$1 core=$OUT/$1.kernel.core truth=$OUT/$1.kernel.truth.json
	[ "$kernel_ok" = yes ] || return 0
	stale "$core" "$OUT/$name" || stale "$truth" "$OUT/$name" || return 0
	say "kernel core $name"
	rm -f "$core" "$truth" "$OUT/$name.kernel.validation"
	scratch=$OUT/scratch.$name
	rm -rf "$scratch"
	mkdir -p "$scratch"
	# The fixture abort()s after dump_here().  No exec: this subshell reaps it,
	# so the shell's "Aborted (core dumped)" goes to /dev/null too.
	(set +e; cd "$scratch" && ulimit -c unlimited && "$OUT/$name" "$truth" abort; exit 0) \
		>/dev/null 2>&1 || true
	got=$(ls "$scratch" | grep '^core' | head -n 1 || true)
	if [ -z "$got" ] || [ ! -s "$truth" ]; then
		rm -rf "$scratch"
		fail "no kernel core for $name (core_pattern: $pattern)"
	fi
	mv "$scratch/$got" "$core"
	rm -rf "$scratch"
}

validate() {
	name=$1 kind=$2
	core=$OUT/$name.$kind.core
	truth=$OUT/$name.truth.json
	[ "$kind" = kernel ] && truth=$OUT/$name.kernel.truth.json
	v=$OUT/$name.$kind.validation
	[ -s "$core" ] || return 0
	stale "$v" "$core" "$HERE/validate.py" || return 0
	gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex "python FIXTURE_TRUTH = '$truth'" -x "$HERE/validate.py" \
		"$OUT/$name" "$core" >"$v" 2>&1 || true
	tail -n 1 "$v" | grep -q '^validation: OK' ||
		say "WARNING: $name.$kind truth does not match glibc's view (see $v)"
}

for name in "$@"; do
	[ -f "$HERE/$name.c" ] || fail "no fixture cores/$name.c"
	build "$name"
	gdb_core "$name"
	kernel_core "$name"
	validate "$name" gdb
	validate "$name" kernel
done
