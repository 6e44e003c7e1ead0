#!/bin/sh
# Build the Go fixture and dump its cores with ground truth.
#
#   BUILD=build cores/make-go-cores.sh           every variant
#   BUILD=build cores/make-go-cores.sh NAME...   the named variants
#
# cores/go_heap/*.go, built with Debian 12's Go 1.19 (/usr/lib/go-1.19,
# GOROOT's standard library only, no network: GOPROXY=off, GO111MODULE=off;
# CGO_ENABLED=0, a static executable, but for go_heap_cgo), into $BUILD/cores/:
#   go_heap            the default build (DWARF and .symtab)
#   go_heap_nodwarf    -ldflags=-w: no DWARF, .symtab kept
#   go_heap_stripped   -ldflags='-s -w': neither
#   go_heap_cgo        CGO_ENABLED=1 with cores/go_heap/cgo.go: C blocks from
#                      glibc's malloc beside the Go heap (dynamically linked)
#   go121_heap, go122_heap, go123_heap, go124_heap
#                      the default build with Go 1.21-1.23 (Debian 12
#                      bookworm-backports) and 1.24 (Debian 13): golang-1.2N-go
#                      fetched into build/debian/SUITE/golang-1.2N by
#                      scripts/debian-release.sh (a private apt sources list,
#                      dpkg-deb -x; nothing installed)
#   go_goroutines, go_goroutines_nodwarf, go_goroutines_stripped,
#   go121_goroutines ... go124_goroutines
#                      cores/go_goroutines/*.go (leaked goroutines) the same
#                      ways
#   go_maps, go_maps_nodwarf, go121_maps ... go124_maps
#                      cores/go_maps/*.go (maps of known shape: hmap up to
#                      go1.23, Swiss tables in go1.24) the same ways
#   go_pools, go121_pools ... go124_pools
#                      cores/go_pools/main.go (sync.Pools, owners with known
#                      retained bytes) with Go 1.19 and 1.21-1.24
# For go_heap, go12N_heap, go_goroutines, go12N_goroutines, go_pools, go12N_pools, go_maps and go12N_maps: NAME.gdb.core and NAME.truth.json (gdb at
# main.dump_here); for each variant NAME.kernel.core and NAME.kernel.truth.json
# (the program raises SIGABRT; it set GOTRACEBACK=crash itself, so the runtime
# dumps core).  Work is redone only when stale.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-go-cores
GOROOT=${GO_ROOT:-/usr/lib/go-1.19}
VARIANTS="go_heap go_heap_nodwarf go_heap_stripped go_heap_cgo go121_heap go122_heap go123_heap go124_heap"
VARIANTS="$VARIANTS go_goroutines go_goroutines_nodwarf go_goroutines_stripped go121_goroutines go122_goroutines"
VARIANTS="$VARIANTS go123_goroutines go124_goroutines"
VARIANTS="$VARIANTS go_maps go_maps_nodwarf go121_maps go122_maps go123_maps go124_maps"
VARIANTS="$VARIANTS go_pools go121_pools go122_pools go123_pools go124_pools"
TOP=$(cd "$HERE/.." && pwd)

[ $# -eq 0 ] && set -- $VARIANTS

lock make-go-cores

[ -x "$GOROOT/bin/go" ] || fail "Go 1.19 is not installed ($GOROOT): apt-get install golang-1.19-go"

check_kernel_cores

build() {
	name=$1 exe=$OUT/$1 root=$GOROOT cgo=0 src=go_heap
	case $name in *goroutines*) src=go_goroutines ;; *pools*) src=go_pools ;; *maps*) src=go_maps ;; esac
	case $name in
	go_heap|go_goroutines|go_pools|go_maps) flags= ;;
	go_heap_nodwarf|go_goroutines_nodwarf|go_maps_nodwarf) flags=-w ;;
	go_heap_stripped|go_goroutines_stripped) flags='-s -w' ;;
	go_heap_cgo) flags= cgo=1 ;;
	go12[1-4]_heap|go12[1-4]_goroutines|go12[1-4]_pools|go12[1-4]_maps) flags=
		v=1.${name#go1}; v=${v%_*}
		suite=bookworm-backports
		[ "$v" = 1.24 ] && suite=trixie
		root=$("$TOP/scripts/debian-release.sh" $suite golang-$v)/usr/lib/go-$v ||
			fail "Go $v (Debian $suite's golang-$v-go) could not be fetched" ;;
	*) fail "unknown Go fixture $name (known: $VARIANTS)" ;;
	esac
	stale "$exe" "$HERE/$src"/*.go "$HERE/make-go-cores.sh" || return 0
	say "go build $name ($("$root/bin/go" env GOVERSION 2>/dev/null || echo "$root"))"
	mkdir -p "$OUT/go-cache/$name"
	(cd "$HERE/$src" && env GOROOT="$root" GOCACHE="$OUT/go-cache/$name" GOPATH="$OUT/go-cache/path" \
		GOPROXY=off GOFLAGS= GO111MODULE=off CGO_ENABLED=$cgo GOTOOLCHAIN=local \
		"$root/bin/go" build -trimpath -ldflags="$flags" -o "$exe" .)
}

# The gdb core: lib.sh's gdb_core stops at a C dump_here(); Go's is
# main.dump_here, and the runtime's preemption signal must pass silently.
go_gdb_core() {
	name=$1 core=$OUT/$1.gdb.core truth=$OUT/$1.truth.json
	stale "$core" "$OUT/$name" || stale "$truth" "$OUT/$name" || return 0
	say "gdb core $name"
	rm -f "$core" "$core.$TMP" "$truth"
	log=$OUT/$name.gdb.log
	if ! gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex 'set pagination off' -ex 'set confirm off' \
		-ex 'handle SIGURG nostop noprint pass' \
		-ex 'break main.dump_here' -ex run \
		-ex "generate-core-file $core.$TMP" -ex kill \
		--args "$OUT/$name" "$truth" >"$log" 2>&1 ||
	   [ ! -s "$core.$TMP" ] || [ ! -s "$truth" ]; then
		cat "$log" >&2
		fail "gdb did not write a core for $name (log: $log)"
	fi
	sparse "$core.$TMP"
	mv "$core.$TMP" "$core"
}

for n in "$@"; do
	case " $VARIANTS " in *" $n "*) ;; *) fail "unknown Go fixture $n (known: $VARIANTS)" ;; esac
	build "$n"
	# go_pools' owners and go_maps' retained bytes are exact only if no
	# goroutine is stopped by an asynchronous preemption: its frame then
	# holds every register, and a register may still hold what the goroutine
	# that ran before had in it (the runtime, scanning such a frame
	# conservatively, keeps that alive).  go_heap's figures are exact only if
	# main is not preempted between them and the core: another goroutine
	# (the runtime's) could allocate there.
	case $n in *_pools|*_maps|*_heap|*_heap_*) export GODEBUG=asyncpreemptoff=1 ;; *) unset GODEBUG ;; esac
	case $n in go_heap|go_heap_cgo|go12[1-4]_heap|go_goroutines|go12[1-4]_goroutines) go_gdb_core "$n" ;; esac
	case $n in go_pools|go12[1-4]_pools) go_gdb_core "$n" ;; esac
	case $n in go_maps|go12[1-4]_maps) go_gdb_core "$n" ;; esac
	kernel_core "$n"
done
