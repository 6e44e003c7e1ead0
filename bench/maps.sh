#!/usr/bin/env bash
# make bench, containers (issue 9): a C++ core of ~1 M allocations in hash
# maps and trees (bench/maps_heap.cc); leaks, maps and owners on it.  The
# budget: maps and owners at most 0.5 s beyond leaks.  Called by bench/run.sh
# with BUILD set; prints lines like run.sh's.
set -euo pipefail
. bench/lib.sh
bench_needs
if [ ! -x "$D/maps_heap" ] || [ bench/maps_heap.cc -nt "$D/maps_heap" ]; then
	g++ -O1 -g -o "$D/maps_heap" bench/maps_heap.cc
fi
core=$D/maps1.core
[ -s "$core" ] && [ "$core" -nt "$D/maps_heap" ] || echo "making $core (a C++ heap of ~1 M allocations in containers)..." >&2
gdb_core "$core" "$D/maps_heap" dump_here 300000
n=$("$HS" --json "$core" summary | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_use"]["count"])')
leaks=$(best_of 5 "$HS" "$core" leaks)
maps=$(best_of 5 "$HS" "$core" maps)
owners=$(best_of 5 "$HS" "$core" owners)
printf '%-44s %8ss\n' "leaks (C++, $n allocations)" "$leaks"
printf '%-44s %8ss  (%+.2f s beyond leaks)\n' "maps (C++, $n allocations)" "$maps" "$(awk "BEGIN{print $maps - $leaks}")"
printf '%-44s %8ss  (%+.2f s beyond leaks)\n' "owners (C++, $n allocations)" "$owners" "$(awk "BEGIN{print $owners - $leaks}")"
