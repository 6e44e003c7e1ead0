#!/usr/bin/env bash
# make bench: timings on real cores, release build.  Cores are made once into
# $BUILD/bench/ (they are large: ~1 GB and ~0.5 GB).  Prints one line a case:
# NAME  best-of-N wall seconds  max RSS.
set -euo pipefail
B=${BUILD:-build-release}
D=$B/bench
mkdir -p "$D"
gcc -O1 -g -o "$D/bench_heap" bench/bench_heap.c

make_core() {   # name count size [LD_PRELOAD library]
	local core="$D/$1.core" preload=()
	[ -n "${4:-}" ] && preload=(-ex "set environment LD_PRELOAD=$4")
	if [ ! -s "$core" ] || [ "$D/bench_heap" -nt "$core" ]; then
		echo "making $core ($2 allocations of ~$3 bytes${4:+ with $4})..." >&2
		gdb -batch -nx -ex 'set pagination off' "${preload[@]}" -ex 'set startup-with-shell off' \
			-ex 'break dump_here' -ex "run $2 $3" \
			-ex "generate-core-file $core" -ex kill "$D/bench_heap" >/dev/null 2>&1
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
}

command -v /usr/bin/time >/dev/null || { echo "bench needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
make_core big1g 1000000 1000
make_core m1 1000000 400
make_core m10 10000000 100
make_core je1 1000000 400 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
ls -l "$D"/*.core | awk '{printf "core %s: %.2f GB\n", $9, $5/1e9}'
HS=$B/heapscope
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
if [ -f gdb/heapscope.py ]; then
	time_case "gdb: core-file + hs leaks (1 M chunks)" 3 gdb -batch -nx -ex "core-file $D/m1.core" \
		-ex "source gdb/heapscope.py" -ex "hs leaks" "$D/bench_heap"
	time_case "gdb: core-file only (1 M chunks)" 3 gdb -batch -nx -ex "core-file $D/m1.core" "$D/bench_heap"
fi
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
anon=$(peak_anon "$HS" --jobs 2 "$D/m10.core" leaks)
n=$("$HS" --json "$D/m10.core" summary | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["in_use"]["count"]+d["free"]["count"]+d["metadata"]["count"])')
echo "leaks (10 M chunks): peak anonymous memory ${anon} KiB for $n blocks = $(( anon * 1024 / n )) bytes per allocation"

BUILD=$B bench/capture.sh
