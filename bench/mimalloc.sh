#!/usr/bin/env bash
# The mimalloc walker's budget (issue 18): on a 1 M-allocation core, summary and
# leaks within 1.5x of the same program's glibc core.  Run by bench/run.sh
# (make bench), or alone:  BUILD=build-release bench/mimalloc.sh
# Cores (made once into $BUILD/bench/): bench_heap 1000000 400 with glibc
# (m1.core, shared with bench/run.sh) and the same source linked with
# -lmimalloc (mi1.core: the budget).
# Prints one line a case (best-of-N wall seconds) and the mimalloc/glibc ratio.
set -euo pipefail
B=${BUILD:-build-release}
D=$B/bench
HS=$B/heapscope
MI=${MI_SO:-/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}
mkdir -p "$D"
[ -x "$HS" ] || { echo "build $HS first (make BUILD=$B OPT=-O3)" >&2; exit 1; }
[ -f "$MI" ] || { echo "$MI is missing: apt-get install libmimalloc-dev" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
[ bench/bench_heap.c -nt "$D/bench_heap" ] && gcc -O1 -g -o "$D/bench_heap" bench/bench_heap.c
[ bench/bench_heap.c -nt "$D/bench_heap_mi" ] && gcc -O1 -g -o "$D/bench_heap_mi" bench/bench_heap.c -lmimalloc

make_core() {   # name program count size
	local core="$D/$1.core"
	if [ ! -s "$core" ] || [ "$D/$2" -nt "$core" ]; then
		echo "making $core ($3 allocations of ~$4 bytes)..." >&2
		gdb -batch -nx -ex 'set pagination off' -ex 'set startup-with-shell off' \
			-ex 'break dump_here' -ex "run $3 $4" \
			-ex "generate-core-file $core" -ex kill "$D/$2" >/dev/null 2>&1
	fi
}

best_of() {   # runs command...: the best wall time
	local runs=$1 best=""; shift
	for _ in $(seq "$runs"); do
		local tf t
		tf=$(mktemp)
		/usr/bin/time -o "$tf" -f '%e' "$@" >/dev/null 2>&1 || true
		t=$(tail -1 "$tf")
		rm -f "$tf"
		if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
	done
	echo "$best"
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
