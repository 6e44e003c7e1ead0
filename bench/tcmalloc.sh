#!/usr/bin/env bash
# The tcmalloc walker's budget (issue 18): on a 1 M-allocation core, summary and
# leaks within 1.5x of the same program's glibc core.  Run by bench/run.sh
# (make bench), or alone:  BUILD=build-release bench/tcmalloc.sh
# Cores (made once into $BUILD/bench/): bench_heap 1000000 400 with glibc
# (m1.core, shared with bench/run.sh), the same source linked with
# -ltcmalloc_minimal (tc1.core: the budget), and bench_heap run with
# LD_PRELOAD=libtcmalloc_minimal.so.4 (tcp1.core: for information; libdwfl's
# module report costs ~1.3 s more on such a core, before any walker runs).
# Prints one line a case (best-of-N wall seconds) and the tcmalloc/glibc ratio.
set -euo pipefail
. bench/lib.sh
TC=${TC_SO:-/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4}
bench_needs
[ -f "$TC" ] || { echo "$TC is missing: apt-get install libgoogle-perftools-dev" >&2; exit 1; }
[ bench/bench_heap.c -nt "$D/bench_heap" ] && gcc -O1 -g -o "$D/bench_heap" bench/bench_heap.c
[ bench/bench_heap.c -nt "$D/bench_heap_tc" ] &&
	gcc -O1 -g -o "$D/bench_heap_tc" bench/bench_heap.c -L"$(dirname "$TC")" -ltcmalloc_minimal

make_core() {   # name program count size [LD_PRELOAD library]
	[ -s "$D/$1.core" ] && [ "$D/$1.core" -nt "$D/$2" ] ||
		echo "making $D/$1.core ($3 allocations of ~$4 bytes${5:+ with $5})..." >&2
	gdb_core "$D/$1.core" "$D/$2" dump_here "$3 $4" ${5:+"set environment LD_PRELOAD=$5"}
}

make_core m1 bench_heap 1000000 400
make_core tc1 bench_heap_tc 1000000 400
make_core tcp1 bench_heap 1000000 400 "$TC"
for cmd in summary leaks; do
	g=$(best_of 3 "$HS" "$D/m1.core" $cmd)
	t=$(best_of 3 "$HS" "$D/tc1.core" $cmd)
	p=$(best_of 3 "$HS" "$D/tcp1.core" $cmd)
	r=$(awk "BEGIN{printf \"%.2f\", ($g > 0 ? $t / $g : 0)}")
	ok=$(awk "BEGIN{print ($t <= 1.5 * $g) ? \"within\" : \"OVER\"}")
	printf '%-44s %8ss  glibc %ss  ratio %s (%s the 1.5x budget)\n' \
		"$cmd (1 M tcmalloc objects)" "$t" "$g" "$r" "$ok"
	printf '%-44s %8ss\n' "$cmd (1 M tcmalloc objects, LD_PRELOAD)" "$p"
done
