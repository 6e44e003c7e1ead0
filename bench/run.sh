#!/usr/bin/env bash
# make bench: timings on real cores, release build.  Cores are made once into
# $BUILD/bench/ (they are large: ~1 GB and ~0.5 GB).  Prints one line a case:
# NAME  best-of-N wall seconds  max RSS.
set -euo pipefail
. bench/lib.sh
# Rebuilt only when their source changed: a new program means new cores.
[ bench/bench_heap.c -nt "$D/bench_heap" ] && gcc -O1 -g -o "$D/bench_heap" bench/bench_heap.c
[ bench/bench_graph.c -nt "$D/bench_graph" ] && gcc -O2 -g -pthread -o "$D/bench_graph" bench/bench_graph.c

make_core() {   # name count size [LD_PRELOAD library]
	[ -s "$D/$1.core" ] && [ "$D/$1.core" -nt "$D/bench_heap" ] ||
		echo "making $D/$1.core ($2 allocations of ~$3 bytes${4:+ with $4})..." >&2
	gdb_core "$D/$1.core" "$D/bench_heap" dump_here "$2 $3" ${4:+"set environment LD_PRELOAD=$4"}
}

# graph_core N: the realistic heap of N allocations (bench_graph.c) and its truth.
graph_core() {
	local core="$D/graph$1.core" truth="$D/graph$1.truth.json"
	if [ ! -s "$core" ] || [ ! -s "$truth" ] || [ "$D/bench_graph" -nt "$core" ]; then
		echo "making $core (the realistic heap of $1 allocations)..." >&2
		rm -f "$core" "$truth"
		gdb_core "$core" "$D/bench_graph" dump_here "$1 $truth"
	fi
}

time_case() {   # name runs command...
	local name=$1 runs=$2; shift 2
	local best="" rss=0
	for _ in $(seq "$runs"); do
		local out tf
		tf=$(mktemp)
		/usr/bin/time -o "$tf" -f '%e %M' "$@" >/dev/null 2>&1 || true
		out=$(tail -1 "$tf")
		rm -f "$tf"
		local t=${out% *} m=${out#* }
		if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
		[ "$m" -gt "$rss" ] && rss=$m
	done
	printf '%-44s %8ss  max RSS %7d KiB\n' "$name" "$best" "$rss"
	LAST=$best
}

command -v /usr/bin/time >/dev/null || { echo "bench needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
# Extra memory per allocation beyond the mapped core: RSS minus the core's
# pages that were touched is not separable with /usr/bin/time, so measure the
# heap growth directly: peak anonymous memory (VmHWM - RssFile) per allocation.
peak_anon() {
	"$@" >/dev/null 2>&1 &
	local pid=$! max=0
	while kill -0 $pid 2>/dev/null; do
		local a
		a=$(awk '/^RssAnon/{print $2}' /proc/$pid/status 2>/dev/null || echo 0)
		[ -n "$a" ] && [ "$a" -gt "$max" ] && max=$a
		sleep 0.02
	done
	echo "$max"
}
HS=$B/heapscope
if [ -z "${BENCH_GRAPH_ONLY:-}" ]; then
make_core big1g 1000000 1000
make_core m1 1000000 400
make_core m10 10000000 100
make_core je1 1000000 400 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
ls -l "$D"/*.core | awk '{printf "core %s: %.2f GB\n", $9, $5/1e9}'
time_case "info (1 GB core)" 5 "$HS" "$D/big1g.core" info
time_case "info --json (1 GB core)" 5 "$HS" --json "$D/big1g.core" info
time_case "summary (1 M chunks)" 5 "$HS" "$D/m1.core" summary
time_case "summary --no-debuginfo (1 M chunks)" 5 "$HS" --no-debuginfo "$D/m1.core" summary
time_case "summary --leaks (1 M chunks)" 5 "$HS" "$D/m1.core" summary --leaks
time_case "leaks (1 M chunks)" 5 "$HS" "$D/m1.core" leaks
time_case "leaks --no-debuginfo (1 M chunks)" 5 "$HS" --no-debuginfo "$D/m1.core" leaks
time_case "top (1 M chunks)" 3 "$HS" "$D/m1.core" top
time_case "chunks --json > /dev/null (1 M chunks)" 3 "$HS" --json "$D/m1.core" chunks
time_case "summary (1 M jemalloc regions)" 5 "$HS" "$D/je1.core" summary
time_case "leaks (1 M jemalloc regions)" 3 "$HS" "$D/je1.core" leaks
time_case "summary (10 M chunks)" 3 "$HS" "$D/m10.core" summary
time_case "leaks --jobs 2 (10 M chunks)" 3 "$HS" --jobs 2 "$D/m10.core" leaks
# m10 is one list of 10 M nodes: top folds it into one row, chain collapses
# its hops into one line (issue 14: each within 2x of leaks).
time_case "top --depth 2 (one 10 M-node list)" 3 "$HS" "$D/m10.core" top --depth 2
tail=$("$HS" --json "$D/m10.core" chunks --used --limit 1 | python3 -c 'import json,sys; print(hex(json.load(sys.stdin)["allocations"][0]["address"]))')
time_case "chain to its last node (10 M hops)" 3 "$HS" "$D/m10.core" chain "$tail"
if [ -f gdb/heapscope.py ]; then
	time_case "gdb: core-file + hs leaks (1 M chunks)" 3 gdb -batch -nx -ex "core-file $D/m1.core" \
		-ex "source gdb/heapscope.py" -ex "hs leaks" "$D/bench_heap"
	time_case "gdb: core-file only (1 M chunks)" 3 gdb -batch -nx -ex "core-file $D/m1.core" "$D/bench_heap"
fi
anon=$(peak_anon "$HS" --jobs 2 "$D/m10.core" leaks)
n=$("$HS" --json "$D/m10.core" summary | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["in_use"]["count"]+d["free"]["count"]+d["metadata"]["count"])')
echo "leaks (10 M chunks): peak anonymous memory ${anon} KiB for $n blocks = $(( anon * 1024 / n )) bytes per allocation"
fi

if [ -z "${BENCH_GRAPH_ONLY:-}" ]; then
BUILD=$B "$(dirname "$0")/gdb_timing.sh"
BUILD="$B" bench/export.sh
BUILD=$B bench/maps.sh
BUILD=$B bench/capture.sh
BUILD=$B bench/ctypes.sh
BUILD=$B bench/mappings.sh
BUILD=$B bench/redis.sh || echo "bench/redis.sh failed (see above)" >&2
fi
# The realistic heap (bench_graph.c): 1 M, 3 M, 10 M allocations (30 M with
# BENCH_30M=1; its core is ~4 GB).  Each figure with its ratio to summary and
# to a plain read of the core file (the physical floor); the leaked and
# unreferenced counts must equal the truth exactly (exit 1 if not).
# BENCH_SIZES="1000000" runs only the sizes given; BENCH_GRAPH_ONLY=1 skips
# every other case.
sizes=${BENCH_SIZES:-"1000000 3000000 10000000"}
[ -n "${BENCH_30M:-}" ] && sizes="$sizes 30000000"
bad=0
gcase() {   # label opts-and-command...: a timed case with its ratios
	local label=$1; shift
	time_case "$label ($m)" "$runs" "$HS" "$@"
	awk -v t="$LAST" -v s="$sum" -v f="$floor" 'BEGIN {
		printf "%44s %7.2fx summary  %7.2fx read\n", "", (s > 0 ? t / s : 0), (f > 0 ? t / f : 0) }'
}
for n in $sizes; do
	graph_core "$n"
	core=$D/graph$n.core truth=$D/graph$n.truth.json m=$((n / 1000000))M
	awk -v f="$(stat -c %s "$core")" -v m="$m" 'BEGIN { printf "core graph%s: %.2f GB\n", m, f / 1e9 }'
	runs=3; [ "$n" -ge 10000000 ] && runs=2
	recache "$core"
	time_case "read the core ($m)" "$runs" sh -c "cat '$core' >/dev/null"; floor=$LAST
	time_case "summary ($m)" "$runs" "$HS" "$core" summary; sum=$LAST
	sample=$(python3 -c 'import json,sys; print(hex(json.load(open(sys.argv[1]))["sample"]))' "$truth")
	gcase "leaks" "$core" leaks
	gcase "leaks --jobs 1" --jobs 1 "$core" leaks
	gcase "leaks --no-debuginfo" --no-debuginfo "$core" leaks
	gcase "top" "$core" top
	gcase "histogram" "$core" histogram
	gcase "chain" "$core" chain "$sample"
	"$HS" --json "$core" leaks | python3 -c '
import json, sys
got, want = json.load(sys.stdin), json.load(open(sys.argv[1]))
ok = True
for k in ("leaked", "unreferenced"):
    g, w = got[k], want[k]
    same = (g["count"], g["bytes"]) == (w["count"], w["bytes"])
    ok &= same
    print("%-12s %s: heapscope %d (%d bytes), truth %d (%d bytes)" % (
        k, "exact" if same else "WRONG", g["count"], g["bytes"], w["count"], w["bytes"]))
sys.exit(0 if ok else 1)' "$truth" || bad=1
	if [ "$n" = 10000000 ]; then
		anon=$(peak_anon "$HS" "$core" leaks)
		echo "leaks ($m): peak anonymous memory ${anon} KiB = $(( anon * 1024 / n )) bytes per allocation"
	fi
done
# The tcmalloc walker against glibc on 1 M allocations (issue 18's budget).
[ -n "${BENCH_GRAPH_ONLY:-}" ] || BUILD=$B bench/tcmalloc.sh || bad=1
# The mimalloc walker against glibc on 1 M allocations (issue 18's budget).
[ -n "${BENCH_GRAPH_ONLY:-}" ] || BUILD=$B bench/mimalloc.sh || bad=1
# The Go walker on a Go core of 1 M live objects (issue 15's budget).
[ -n "${BENCH_GRAPH_ONLY:-}" ] || BUILD=$B bench/go.sh || bad=1
exit $bad
