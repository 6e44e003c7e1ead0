#!/bin/sh
# make demo: heapscope on a core of a fixture program that leaks (cores/leaks.c).
set -e
B=${BUILD:-build}
H=$B/heapscope
core=$B/cores/leaks.gdb.core
run() {
	echo
	echo "\$ heapscope $*"
	"$H" "$@"
}
run "$core" info
run "$core" summary
run "$core" leaks --limit 8
addr=$("$H" --json "$core" leaks --list | python3 -c 'import json,sys; o=json.load(sys.stdin)["objects"]; print(hex([x for x in o if not x["unreferenced"]][0]["address"]))')
run "$core" chain "$addr"
g=$("$H" --json "$core" top --limit 1 | python3 -c 'import json,sys; print(hex(json.load(sys.stdin)["objects"][0]["address"]))')
run "$core" top --limit 5
run "$core" chain "$g"
echo
echo "More: $H $core bins | arenas | chunks --limit 20 | histogram | refs ADDR | show ADDR,"
echo "      $H --json ..., and in GDB: gdb $B/cores/leaks $core -ex 'source gdb/heapscope.py' -ex 'hs leaks'"
