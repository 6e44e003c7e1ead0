#!/usr/bin/env bash
# make bench, a real program (issue 12): Debian's redis-server (jemalloc 5.3,
# no debug info) holding ~880 K keys: 800 K strings (DEBUG POPULATE) and 20 K
# each of hashes, lists, sets and sorted sets, ~3.9 M allocations.  Its core is
# taken by gdb from the running server.  Prints each command with its ratio to
# summary and to a plain read of the core, as run.sh does for the synthetic
# heaps, and the leaked count (redis frees what it drops: 0 is expected).
#
# The server is not installed: redis-tools (whose redis-check-rdb is the
# server) and liblzf1 are fetched with apt-get download and unpacked into
# $D/redis, so no service is set up or started on the machine.  Run by
# bench/run.sh (make bench), or alone:  BUILD=build-release bench/redis.sh
set -euo pipefail
. bench/lib.sh
bench_needs
R=$D/redis
server=$R/usr/bin/redis-server cli=$R/usr/bin/redis-cli
if [ ! -x "$R/usr/bin/redis-check-rdb" ] || [ ! -x "$cli" ]; then
	echo "fetching Debian's redis-tools and liblzf1 into $R..." >&2
	tmp=$(mktemp -d)
	(cd "$tmp" && { apt-get download redis-tools liblzf1 >/dev/null 2>&1 ||
		{ [ "$(id -u)" = 0 ] && apt-get update -qq >&2 && apt-get download redis-tools liblzf1 >/dev/null; }; }) ||
		{ echo "bench/redis.sh: cannot download redis-tools (apt-get download); skipped" >&2; rm -rf "$tmp"; exit 1; }
	mkdir -p "$R"
	for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$R"; done
	rm -rf "$tmp"
fi
# The server is redis-check-rdb run under this name (Debian's redis-server
# package is only that link).
ln -sf redis-check-rdb "$server"
export LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
core=$D/redis.core
if [ ! -s "$core" ] || [ "$R/usr/bin/redis-check-rdb" -nt "$core" ]; then
	echo "making $core (redis-server with ~880 K keys)..." >&2
	run=$(mktemp -d)
	"$server" --port 0 --unixsocket "$run/s" --save "" --appendonly no --enable-debug-command yes \
		--dir "$run" >/dev/null 2>&1 &
	pid=$!
	trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$run"' EXIT
	for _ in $(seq 100); do [ -S "$run/s" ] && break; sleep 0.1; done
	"$cli" -s "$run/s" DEBUG POPULATE 800000 key 64 >/dev/null
	"$cli" -s "$run/s" EVAL "for i = 1, 20000 do
		for j = 1, 16 do redis.call('HSET', 'h:'..i, 'f'..j, 'value-'..i..'-'..j) end
		for j = 1, 16 do redis.call('RPUSH', 'l:'..i, 'item-'..j..'-'..i) end
		for j = 1, 8 do redis.call('SADD', 's:'..i, 'm'..j..'x'..i) end
		for j = 1, 8 do redis.call('ZADD', 'z:'..i, j * i, 'zm'..j) end
	end return 1" 0 >/dev/null
	rm -f "$core"
	gdb -batch -nx -iex 'set debuginfod enabled off' -p "$pid" -ex "generate-core-file $core" >/dev/null 2>&1
	command -v fallocate >/dev/null && fallocate -d "$core" 2>/dev/null || true
	kill -9 $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	trap - EXIT
	rm -rf "$run"
	[ -s "$core" ] || { echo "bench/redis.sh: gdb wrote no core" >&2; exit 1; }
fi
n=$("$HS" --json "$core" summary | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_use"]["count"])')
awk -v f="$(stat -c %s "$core")" -v n="$n" 'BEGIN { printf "core redis: %.2f GB, %d allocations in use\n", f / 1e9, n }'
recache "$core"
floor=$(best_of 3 sh -c "cat '$core' >/dev/null")
sum=$(best_of 3 "$HS" "$core" summary)
printf '%-44s %8ss\n' "read the core (redis)" "$floor" "summary (redis)" "$sum"
for cmd in leaks histogram top; do
	t=$(best_of 3 "$HS" "$core" $cmd)
	printf '%-44s %8ss' "$cmd (redis)" "$t"
	awk -v t="$t" -v s="$sum" -v f="$floor" 'BEGIN { printf "  %6.2fx summary  %6.2fx read\n", t / s, (f > 0 ? t / f : 0) }'
done
"$HS" --json "$core" leaks | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("%-44s %d (%d bytes)" % ("leaked (redis)", d["leaked"]["count"], d["leaked"]["bytes"]))'
