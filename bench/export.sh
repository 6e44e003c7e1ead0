#!/usr/bin/env bash
# Timings of export and diff (issue 16) against leaks, on the 1 M-allocation
# bench core ($BUILD/bench/m1.core, made by bench/run.sh; made here when
# missing).  Budget: export and diff each <= 1 s beyond leaks.  diff analyses
# two cores (here m1 against itself) at the same time, on two threads.
set -euo pipefail
. bench/lib.sh
bench_needs
[ bench/bench_heap.c -nt "$D/bench_heap" ] && gcc -O1 -g -o "$D/bench_heap" bench/bench_heap.c
[ -s "$D/m1.core" ] && [ "$D/m1.core" -nt "$D/bench_heap" ] || echo "making $D/m1.core (1000000 allocations of ~400 bytes)..." >&2
gdb_core "$D/m1.core" "$D/bench_heap" dump_here "1000000 400"
best() {   # runs command...: "WALL CPU" of the run with the best wall time, in seconds
	local runs=$1 b="" c=""; shift
	for _ in $(seq "$runs"); do
		local tf w u s
		tf=$(mktemp)
		/usr/bin/time -o "$tf" -f '%e %U %S' "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
		read -r w u s < <(tail -1 "$tf")
		rm -f "$tf"
		if [ -z "$b" ] || awk "BEGIN{exit !($w < $b)}"; then b=$w; c=$(awk "BEGIN{print $u + $s}"); fi
	done
	echo "$b $c"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
leaks=$(best 3 "$HS" "$D/m1.core" leaks)
pprof=$(best 3 "$HS" "$D/m1.core" export --format pprof -o "$tmp/m1.pb.gz")
fold=$(best 3 "$HS" "$D/m1.core" export --format folded -o "$tmp/m1.folded")
diff=$(best 3 "$HS" "$D/m1.core" diff "$D/m1.core")
report=$(best 3 "$HS" "$D/m1.core" report --html -o "$tmp/m1.html")
# Wall seconds, and CPU seconds (user + system: what a busy machine does
# not inflate); each with its difference to leaks.
line() {
	set -- "$1" $2
	printf '%-40s %7ss wall (%+.2f)  %7ss cpu (%+.2f) beyond leaks\n' "$1" "$2" "$(awk "BEGIN{print $2 - ${leaks% *}}")" \
		"$3" "$(awk "BEGIN{print $3 - ${leaks#* }}")"
}
printf '%-40s %7ss wall           %7ss cpu\n' "leaks (1 M chunks)" ${leaks% *} ${leaks#* }
line "export --format pprof (1 M chunks)" "$pprof"
line "export --format folded (1 M chunks)" "$fold"
line "diff, two 1 M-chunk cores" "$diff"
line "report --html (1 M chunks)" "$report"
