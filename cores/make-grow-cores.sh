#!/bin/sh
# Build the diff fixture (issue 16) and dump two cores of it, at dump_one()
# and dump_two(), with the truth of what grew in between.  Into $BUILD/cores/:
#   grow                      the program (-g -O0)
#   grow.one.gdb.core         gdb's generate-core-file at dump_one()
#   grow.two.gdb.core         ... at dump_two() (same process)
#   grow.truth.json           what grew between them, exactly
#   grow.one.kernel.core      kernel cores: a forked child aborts at dump_one(),
#   grow.two.kernel.core      the program itself at dump_two()
#   grow.kernel.truth.json    their truth
#   grow.stripped             the program without DWARF (.symtab kept), and
#   grow.debug                its DWARF (objcopy --only-keep-debug): the
#   grow.stripped.gdb.core    debuginfod test serves grow.debug
# Work is redone only for what is older than the source.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-grow-cores
check_kernel_cores
name=grow

if stale "$OUT/grow" "$HERE/grow.c"; then
	say "cc grow"
	${FIXTURE_CC:-gcc} -g -O0 -Wall -Wextra -o "$OUT/grow" "$HERE/grow.c"
fi

# gdb_two PROGRAM PREFIX TRUTH: PREFIX.one.gdb.core and PREFIX.two.gdb.core.
gdb_two() {
	prog=$1 prefix=$2 truthf=$3
	stale "$prefix.two.gdb.core" "$prog" || stale "$prefix.one.gdb.core" "$prog" || return 0
	say "gdb cores $(basename "$prefix")"
	rm -f "$prefix.one.gdb.core" "$prefix.two.gdb.core" "$truthf"
	log=$prefix.gdb.log
	if ! gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex 'set pagination off' -ex 'set confirm off' \
		-ex 'break dump_one' -ex 'break dump_two' -ex run \
		-ex "generate-core-file $prefix.one.gdb.core.tmp" -ex continue \
		-ex "generate-core-file $prefix.two.gdb.core.tmp" -ex continue \
		--args "$prog" "$truthf" >"$log" 2>&1 ||
	   [ ! -s "$prefix.one.gdb.core.tmp" ] || [ ! -s "$prefix.two.gdb.core.tmp" ] || [ ! -s "$truthf" ]; then
		cat "$log" >&2
		fail "gdb did not write the two cores of $prog (log: $log)"
	fi
	for k in one two; do
		sparse "$prefix.$k.gdb.core.tmp"
		mv "$prefix.$k.gdb.core.tmp" "$prefix.$k.gdb.core"
	done
}

gdb_two "$OUT/grow" "$OUT/grow" "$OUT/grow.truth.json"

if [ "$kernel_ok" = yes ] && { stale "$OUT/grow.two.kernel.core" "$OUT/grow" ||
			       stale "$OUT/grow.one.kernel.core" "$OUT/grow"; }; then
	say "kernel cores grow"
	scratch=$OUT/scratch.grow
	rm -rf "$scratch" "$OUT/grow.kernel.truth.json"
	mkdir -p "$scratch/one"
	(set +e; cd "$scratch" && ulimit -c unlimited &&
		"$OUT/grow" "$OUT/grow.kernel.truth.json" abort; exit 0) >/dev/null 2>&1 || true
	one=$(ls "$scratch/one" | grep '^core' | head -n 1 || true)
	two=$(ls "$scratch" | grep '^core' | head -n 1 || true)
	if [ -z "$one" ] || [ -z "$two" ] || [ ! -s "$OUT/grow.kernel.truth.json" ]; then
		rm -rf "$scratch"
		fail "no kernel cores for grow (core_pattern: $pattern)"
	fi
	mv "$scratch/one/$one" "$OUT/grow.one.kernel.core"
	mv "$scratch/$two" "$OUT/grow.two.kernel.core"
	rm -rf "$scratch"
fi

# Separate debug info, for the debuginfod test.
if stale "$OUT/grow.debug" "$OUT/grow" || stale "$OUT/grow.stripped" "$OUT/grow"; then
	say "split debug info of grow"
	objcopy --only-keep-debug "$OUT/grow" "$OUT/grow.debug"
	objcopy --strip-debug "$OUT/grow" "$OUT/grow.stripped"
fi
if stale "$OUT/grow.stripped.two.gdb.core" "$OUT/grow.stripped"; then
	gdb_two "$OUT/grow.stripped" "$OUT/grow.stripped" "$OUT/grow.stripped.truth.json"
fi
