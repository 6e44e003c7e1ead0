#!/usr/bin/env bash
# A core of many mappings and many stack roots (bench/bench_mappings.c: 30 k
# mappings, 100 k heap pointers on one thread's stack): what a JVM or a
# database with many mmapped files looks like to libdwfl, and a report that
# names every stack root's frame.  Prints summary (libdwfl listing the
# modules: quadratic in the segments when it was given the mapped core, 3 s
# here and 13 s at 60 k; see symbols.c core_for_listing) and report (each
# thread unwound once).
# Run by bench/run.sh (make bench), or alone:
#   BUILD=build-release bench/mappings.sh
set -euo pipefail
. bench/lib.sh
bench_needs
[ bench/bench_mappings.c -nt "$D/bench_mappings" ] && gcc -O1 -g -o "$D/bench_mappings" bench/bench_mappings.c
core=$D/mappings.core
[ -s "$core" ] && [ "$core" -nt "$D/bench_mappings" ] || echo "making $core (30 k mappings, 100 k stack roots)..." >&2
gdb_core "$core" "$D/bench_mappings" dump_here ""
recache "$core"
segs=$(readelf -lW "$core" 2>/dev/null | grep -c ' LOAD ' || true)
for cmd in summary leaks report; do
	printf '%-44s %8ss  (%s segments)\n' "$cmd (30 k mappings, 100 k stack roots)" \
		"$(best_of 3 "$HS" "$core" $cmd)" "$segs"
done
