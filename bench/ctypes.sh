#!/usr/bin/env bash
# Type inference's budget (issue 14): at most 20% over leaks.  On a C core of
# 1 M allocations (bench/bench_ctypes.c: a fifth typed for certain, the rest
# leaked clusters only inference types), prints leaks' wall and CPU seconds and
# the inference stage's own seconds (`--verbose` stage "infer") as a share of
# the run.  Run by bench/run.sh (make bench), or alone:
#   BUILD=build-release bench/ctypes.sh
set -euo pipefail
. bench/lib.sh
bench_needs
[ bench/bench_ctypes.c -nt "$D/bench_ctypes" ] && gcc -O1 -g -o "$D/bench_ctypes" bench/bench_ctypes.c
core=$D/c1.core
[ -s "$core" ] && [ "$core" -nt "$D/bench_ctypes" ] || echo "making $core (1000000 C allocations, 4/5 leaked clusters)..." >&2
gdb_core "$core" "$D/bench_ctypes" dump_here 1000000
best_wall="" best_cpu="" best_infer=""
for _ in 1 2 3; do
	tf=$(mktemp)
	/usr/bin/time -o "$tf" -f '%e %U %S' "$HS" --verbose "$core" leaks 2>"$tf.err" >/dev/null
	read -r w u s < <(tail -1 "$tf")
	inf=$(awk '$2 == "infer" {print $3}' "$tf.err")
	rm -f "$tf" "$tf.err"
	if [ -z "$best_wall" ] || awk "BEGIN{exit !($w < $best_wall)}"; then
		best_wall=$w best_cpu=$(awk "BEGIN{print $u + $s}") best_infer=${inf:-0}
	fi
done
printf '%-40s %7ss wall  %7ss cpu  infer %ss (%.0f%% of the run)\n' "leaks, 1 M C allocations (inference)" \
	"$best_wall" "$best_cpu" "$best_infer" "$(awk "BEGIN{print 100 * $best_infer / $best_wall}")"
