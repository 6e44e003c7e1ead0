#!/usr/bin/env bash
# The mimalloc walker's budget (issue 18): on a 1 M-allocation core, summary and
# leaks within 1.5x of the same program's glibc core.  Run by bench/run.sh
# (make bench), or alone:  BUILD=build-release bench/mimalloc.sh
# Cores (made once into $BUILD/bench/): bench_heap 1000000 400 with glibc
# (m1.core, shared with bench/run.sh) and the same source linked with
# -lmimalloc (mi1.core: the budget).
# Prints one line a case (best-of-N wall seconds) and the mimalloc/glibc ratio.
set -euo pipefail
. bench/lib.sh
MI=${MI_SO:-/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}
bench_needs
[ -f "$MI" ] || { echo "$MI is missing: apt-get install libmimalloc-dev" >&2; exit 1; }
[ bench/bench_heap.c -nt "$D/bench_heap" ] && gcc -O1 -g -o "$D/bench_heap" bench/bench_heap.c
[ bench/bench_heap.c -nt "$D/bench_heap_mi" ] && gcc -O1 -g -o "$D/bench_heap_mi" bench/bench_heap.c -lmimalloc

make_core() {   # name program count size
	[ -s "$D/$1.core" ] && [ "$D/$1.core" -nt "$D/$2" ] || echo "making $D/$1.core ($3 allocations of ~$4 bytes)..." >&2
	gdb_core "$D/$1.core" "$D/$2" dump_here "$3 $4"
}

make_core m1 bench_heap 1000000 400
make_core mi1 bench_heap_mi 1000000 400
for cmd in summary leaks; do
	g=$(best_of 3 "$HS" "$D/m1.core" $cmd)
	m=$(best_of 3 "$HS" "$D/mi1.core" $cmd)
	r=$(awk "BEGIN{printf \"%.2f\", ($g > 0 ? $m / $g : 0)}")
	ok=$(awk "BEGIN{print ($m <= 1.5 * $g) ? \"within\" : \"OVER\"}")
	printf '%-44s %8ss  glibc %ss  ratio %s (%s the 1.5x budget)\n' \
		"$cmd (1 M mimalloc objects)" "$m" "$g" "$r" "$ok"
done
