# bench/lib.sh - what every bench script shares; sourced, not run.
#   B, D, HS      the release build, its bench folder (cores, programs), heapscope
#   bench_needs   heapscope built and /usr/bin/time present, or a message and exit 1
#   gdb_core CORE PROGRAM BREAK ARGS [GDB -ex COMMAND...]
#                 runs PROGRAM ARGS under gdb to the function BREAK and writes
#                 CORE there; only when CORE is missing or older than PROGRAM
#   best_of N COMMAND...
#                 the best wall seconds of N runs (output thrown away)
#   recache FILE  FILE's cached pages dropped and read again in order, so that
#                 every run maps it alike (see below)
B=${BUILD:-build-release}
D=$B/bench
HS=$B/heapscope
mkdir -p "$D"

bench_needs() {
	[ -x "$HS" ] || { echo "build $HS first (make BUILD=$B OPT=-O3)" >&2; exit 1; }
	command -v /usr/bin/time >/dev/null || { echo "bench needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
}

gdb_core() {
	local core=$1 prog=$2 brk=$3 args=$4 extra=()
	shift 4
	for x in "$@"; do extra+=(-ex "$x"); done
	if [ ! -s "$core" ] || [ "$prog" -nt "$core" ]; then
		rm -f "$core"
		gdb -batch -nx -iex 'set debuginfod enabled off' -ex 'set pagination off' \
			-ex 'set startup-with-shell off' "${extra[@]}" -ex "break $brk" -ex "run $args" \
			-ex "generate-core-file $core" -ex kill "$prog" >/dev/null 2>&1
		# A sparse file: the core's holes take no disk.
		command -v fallocate >/dev/null && fallocate -d "$core" 2>/dev/null || true
	fi
}

best_of() {
	local runs=$1 best="" tf t; shift
	for _ in $(seq "$runs"); do
		tf=$(mktemp)
		/usr/bin/time -o "$tf" -f '%e' "$@" >/dev/null 2>&1 || true
		t=$(tail -1 "$tf")
		rm -f "$tf"
		if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
	done
	echo "$best"
}

# How a core sits in the page cache changes every figure: read in order, it
# is cached in 2 MiB folios that heapscope maps by PMD; just written (gdb)
# or read in pieces, much of it is in small ones, and the same `leaks` at
# 10 M took 3.9 s instead of 3.3 s (docs/architecture.md).  So each core's
# pages are dropped (only its own: posix_fadvise, no root needed) and read
# again in order before it is timed.
recache() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)' "$1" && cat "$1" >/dev/null
}
