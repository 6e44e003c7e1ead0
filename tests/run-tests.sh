#!/bin/sh
# Run every test: the cmocka unit test binaries $BUILD/tests/test_*, then the
# integration suite (tests/integration/run.py).  The last line is the total:
#   N passed, N failed, N skipped
# Exit status 0 only if nothing failed and nothing was skipped (a skip is a
# test that did not run: a missing fixture, a misconfigured machine), except
# under make asan (HS_ASAN=1), where gdb cannot load the library and the GDB
# tests skip.  A unit binary that dies before its summary counts as one failed test.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
export BUILD
# Copies of compressed debug files (debug_cache.c) go under the build, not ~/.cache.
HEAPSCOPE_CACHE_DIR=${HEAPSCOPE_CACHE_DIR-$(cd "$BUILD" && pwd)/cache}
export HEAPSCOPE_CACHE_DIR

passed=0 failed=0 skipped=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

# count PATTERN FILE: N from the first line matching "PATTERN N test(s)".
count() {
	sed -n "s/^$1 *\([0-9][0-9]*\) test.*/\1/p" "$2" | head -n 1
}

for t in "$BUILD"/tests/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	echo "== $(basename "$t")"
	"$t" >"$out" 2>&1
	status=$?
	cat "$out"
	p=$(count '\[  PASSED  \]' "$out")
	f=$(count '\[  FAILED  \]' "$out")
	s=$(count '\[  SKIPPED \]' "$out")
	p=${p:-0} f=${f:-0} s=${s:-0}
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $(basename "$t"): exit status $status without a cmocka failure summary"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done

echo "== integration"
python3 "$HERE/integration/run.py" "$@" 2>&1 | tee "$out"
line=$(grep '^integration: ' "$out" | tail -n 1)
if [ -z "$line" ]; then
	echo "FAIL integration: the suite did not finish"
	failed=$((failed + 1))
else
	p=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
	f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
	s=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) skipped.*/\1/p')
	passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) skipped=$((skipped + ${s:-0}))
fi

echo "$passed passed, $failed failed, $skipped skipped"
if [ "$skipped" -gt 0 ] && [ -z "${HS_ASAN:-}" ]; then
	echo "FAIL: $skipped tests were skipped (see SKIP lines above): every test must run"
	exit 1
fi
[ "$failed" -eq 0 ]
