#!/usr/bin/env bash
# A core of many mappings and many stack roots (bench/bench_mappings.c: 30 k
# mappings, 100 k heap pointers on one thread's stack): what a JVM or a
# database with many mmapped files looks like to libdwfl, and a report that
# names every stack root's frame.  Prints summary (libdwfl listing the
# modules: quadratic in the segments when it was given the mapped core, 3 s
# here and 13 s at 60 k; see symbols.c core_for_listing) and report (each
# thread unwound once), then report on 300 threads of 20 frames each
# (bench_threads.c: libdwfl's own core attach read each stack word through a
# list of every word read before, quadratic; see src/symbols/unwind.h).
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
[ bench/bench_threads.c -nt "$D/bench_threads" ] && gcc -O1 -g -pthread -o "$D/bench_threads" bench/bench_threads.c
core=$D/threads.core
[ -s "$core" ] && [ "$core" -nt "$D/bench_threads" ] || echo "making $core (300 threads)..." >&2
gdb_core "$core" "$D/bench_threads" dump_here "300"
recache "$core"
printf '%-44s %8ss\n' "report (300 threads, 20 frames each)" "$(best_of 3 "$HS" "$core" report)"
