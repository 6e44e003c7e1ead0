#!/bin/sh
# Build the container fixture (issue 9) three ways and dump its cores.
#
#   BUILD=build cores/make-maps-cores.sh
#
# Into $BUILD/cores/, from cores/maps_cpp.cc (g++ -O0, glib, uthash):
#   maps_cpp            with debug info (-g)
#   maps_cpp_nodebug    without debug info (symbols only)
#   maps_cpp_stripped   strip --strip-all: no DWARF, no symbols but dump_here
#                       (where gdb stops to dump)
# and for each NAME: NAME.gdb.core + NAME.truth.json, NAME.kernel.core +
# NAME.kernel.truth.json (see cores/lib.sh).  Work is redone only for what is
# older than its inputs.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-maps-cores
lock maps

check_kernel_cores

SRC=$HERE/maps_cpp.cc
CXXFLAGS="-O0 -pthread -Wall -Wextra -Wno-missing-field-initializers"
GLIB=$(pkg-config --cflags --libs glib-2.0) || fail "pkg-config does not know glib-2.0 (apt-get install libglib2.0-dev)"

if stale "$OUT/maps_cpp" "$SRC" "$HERE/truth.h"; then
	say "c++ maps_cpp"
	# shellcheck disable=SC2086
	${CXX:-g++} -g $CXXFLAGS -o "$OUT/maps_cpp" "$SRC" $GLIB
fi
if stale "$OUT/maps_cpp_nodebug" "$SRC" "$HERE/truth.h"; then
	say "c++ maps_cpp_nodebug"
	# shellcheck disable=SC2086
	${CXX:-g++} $CXXFLAGS -o "$OUT/maps_cpp_nodebug" "$SRC" $GLIB
fi
if stale "$OUT/maps_cpp_stripped" "$OUT/maps_cpp_nodebug"; then
	say "strip maps_cpp_stripped"
	strip --strip-all --keep-symbol=dump_here -o "$OUT/maps_cpp_stripped" "$OUT/maps_cpp_nodebug"
fi

for name in maps_cpp maps_cpp_nodebug maps_cpp_stripped; do
	gdb_core "$name"
	kernel_core "$name"
done
