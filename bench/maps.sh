#!/usr/bin/env bash
# make bench, containers (issue 9): a C++ core of ~1 M allocations in hash
# maps and trees (bench/maps_heap.cc); leaks, maps and owners on it.  The
# budget: maps and owners at most 0.5 s beyond leaks.  Called by bench/run.sh
# with BUILD set; prints lines like run.sh's.
set -euo pipefail
B=${BUILD:-build-release}
D=$B/bench
mkdir -p "$D"
if [ ! -x "$D/maps_heap" ] || [ bench/maps_heap.cc -nt "$D/maps_heap" ]; then
	g++ -O1 -g -o "$D/maps_heap" bench/maps_heap.cc
fi
core=$D/maps1.core
if [ ! -s "$core" ] || [ "$D/maps_heap" -nt "$core" ]; then
	echo "making $core (a C++ heap of ~1 M allocations in containers)..." >&2
	gdb -batch -nx -ex 'set pagination off' -ex 'set startup-with-shell off' -ex 'break dump_here' \
		-ex 'run 300000' -ex "generate-core-file $core" -ex kill "$D/maps_heap" >/dev/null 2>&1
fi
HS=$B/heapscope
best() {   # runs command...: the best wall time of N runs, in seconds
	local runs=$1 b=""; shift
	for _ in $(seq "$runs"); do
		local tf t
		tf=$(mktemp)
		/usr/bin/time -o "$tf" -f '%e' "$@" >/dev/null 2>&1 || true
		t=$(tail -1 "$tf")
		rm -f "$tf"
		if [ -z "$b" ] || awk "BEGIN{exit !($t < $b)}"; then b=$t; fi
	done
	echo "$b"
}
n=$("$HS" --json "$core" summary | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_use"]["count"])')
leaks=$(best 5 "$HS" "$core" leaks)
maps=$(best 5 "$HS" "$core" maps)
owners=$(best 5 "$HS" "$core" owners)
printf '%-44s %8ss\n' "leaks (C++, $n allocations)" "$leaks"
printf '%-44s %8ss  (%+.2f s beyond leaks)\n' "maps (C++, $n allocations)" "$maps" "$(awk "BEGIN{print $maps - $leaks}")"
printf '%-44s %8ss  (%+.2f s beyond leaks)\n' "owners (C++, $n allocations)" "$owners" "$(awk "BEGIN{print $owners - $leaks}")"
