#!/bin/bash
# capture vs gcore on a process with a 1 GiB heap: wall time, the time the
# process is stopped, file size (apparent and on disk); and watch's CPU per
# second of polling.  Run by bench/run.sh (make bench), or alone:
#   BUILD=build-release bench/capture.sh [HEAP_MB]
set -eu
BUILD=${BUILD:-build-release}
HS=$BUILD/heapscope
MB=${1:-1024}
D=$(mktemp -d "${TMPDIR:-/var/tmp}/hs-bench-capture.XXXXXX")
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$D"' EXIT
[ -x "$HS" ] || { echo "bench/capture.sh: $HS is not built" >&2; exit 1; }

# The process: MB MiB of 64 KiB malloc blocks (heap chunks, not mmapped), each
# filled, plus 4 threads; it says ready and waits.
cat >"$D/big.c" <<'EOF'
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static void *idle(void *a) { (void)a; for (;;) pause(); return NULL; }
int main(int argc, char **argv)
{
	long n = atol(argv[1]) * 16;
	uint64_t x = 88172645463325252ull;
	// Pointers and pseudo-random words: little for zstd to squeeze (a worst case).
	for (long i = 0; i < n; i++) {
		uint64_t *p = malloc(64 << 10);
		for (int k = 0; k < 8192; k++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			p[k] = (k & 3) ? x : (uint64_t)(uintptr_t)p;
		}
	}
	pthread_t t;
	for (int i = 0; i < 4; i++)
		pthread_create(&t, NULL, idle, NULL);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
EOF
gcc -O2 -pthread -o "$D/big" "$D/big.c"
mkfifo "$D/fifo"
"$D/big" "$MB" >"$D/fifo" &
PID=$!
read -r _ <"$D/fifo"
sleep 0.5

size() {   # apparent, on disk
	echo "$(du -m --apparent-size "$1" | cut -f1) MiB ($(du -m "$1" | cut -f1) MiB on disk)"
}
sync
t0=$(date +%s.%N)
gcore -o "$D/gcore" $PID >/dev/null 2>&1
t1=$(date +%s.%N)
gtime=$(echo "$t1 - $t0" | bc)
gsize=$(size "$D/gcore.$PID")
rm -f "$D/gcore.$PID"
sync

one() {   # label, capture args...
	local label=$1
	shift
	local t0 t1 j
	t0=$(date +%s.%N)
	j=$("$HS" --json --pid $PID capture "$@")
	t1=$(date +%s.%N)
	local stop
	stop=$(echo "$j" | python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["stopped_us"] / 1e6))')
	printf "  %-28s %6.2f s, process stopped %s s, %s\n" "$label" "$(echo "$t1 - $t0" | bc)" "$stop" \
		"$(size "$2")"
	rm -f "$2"
	sync
}
echo "capture vs gcore, a process with a $MB MiB heap (4 threads):"
printf "  %-28s %6.2f s, process stopped all along,  %s\n" "gcore" "$gtime" "$gsize"
one "heapscope capture" -o "$D/c.core"
one "heapscope capture --sync" -o "$D/s.core" --sync
one "heapscope capture (zstd)" -o "$D/c.core.zst" --compress zstd

# watch: CPU per second of polling (no threshold reached), from the kernel's
# accounting of the finished child (getrusage, microseconds): a run of 12 s
# minus a run of 2 s, over 10 s, leaves out heapscope's start-up.
for iv in 1s 100ms; do
	python3 - "$HS" $PID "$D" $iv <<'PYEOF2'
import resource, signal, subprocess, sys, time
hs, pid, d, iv = sys.argv[1:]
def cpu(seconds):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen([hs, "--pid", pid, "watch", "--rss-above", "1000G", "-o", d, "--interval", iv],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    p.send_signal(signal.SIGINT)
    p.wait()
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime - r0.ru_utime) + (r.ru_stime - r0.ru_stime)
short, long = cpu(2), cpu(12)
print("  watch --interval %s: %.3f ms CPU per second of polling (start-up %.1f ms)"
      % (iv, max(long - short, 0) * 1000 / 10, short * 1000))
PYEOF2
done
