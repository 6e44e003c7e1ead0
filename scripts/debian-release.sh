#!/bin/sh
# Fetch another Debian release's C library and jemalloc into the build tree,
# for the version matrix (cores/make-matrix-cores.sh); or, with a second
# argument, one of its Go toolchains (cores/make-go-cores.sh).
#
#   scripts/debian-release.sh RELEASE      (bullseye = 11, trixie = 13)
#   scripts/debian-release.sh trixie golang-1.24
#                                          golang-1.24-go and -src, unpacked
#                                          into build/debian/trixie/golang-1.24
#   scripts/debian-release.sh bookworm-backports golang-1.21   (1.21-1.23)
#
# prints the directory the packages are unpacked into, build/debian/RELEASE/root
# in the repository (whatever $BUILD is: make asan's build-asan shares it; or
# $HS_DEBIAN_DIR/RELEASE/root)
# (a sysroot: lib/, usr/lib/, usr/include/, usr/lib/debug/).  The packages come
# from this machine's own configured Debian source
# (/etc/apt/sources.list.d/debian.sources: its URIs and Signed-By keyring) with
# another Suites: value, through a PRIVATE sources list, state and cache under
# build/debian/RELEASE/apt: the machine's apt configuration is never changed.
# They are downloaded once and reused (root/.complete lists them); a failed
# download fails loudly (exit 1), never a silent skip.
set -eu
REL=${1:?usage: scripts/debian-release.sh bullseye|trixie [golang-1.NN]}
GO=${2-}
TOPDIR=$(cd "$(dirname "$0")/.." && pwd)
DIR=${HS_DEBIAN_DIR:-$TOPDIR/build/debian}
# The first line of root/.complete: what was fetched, and how it was unpacked
# (a change here unpacks again).
STAMP="v2"
PKGS="libc6 libc6-dev libc6-dbg linux-libc-dev libjemalloc2 libjemalloc-dev libgcc-s1 libstdc++6"
ROOTNAME=root
case $GO in
'') ;;
golang-1.[0-9][0-9]) PKGS="$GO-go $GO-src" ROOTNAME=$GO ;;
*) echo "debian-release: unknown package set $GO (use golang-1.NN)" >&2; exit 1 ;;
esac
ME="debian-release $REL${GO:+ $GO}"
fail() { echo "$ME: $*" >&2; exit 1; }

case $REL in
bullseye|trixie) ;;
bookworm-backports) [ -n "$GO" ] || fail "bookworm-backports is only for Go toolchains (golang-1.2N)" ;;
*) fail "unknown release (use bullseye, trixie, or bookworm-backports with golang-1.2N)" ;;
esac
mkdir -p "$DIR/$REL"
TOP=$(cd "$DIR/$REL" && pwd)
ROOT=$TOP/$ROOTNAME
if [ -f "$ROOT/.complete" ] && [ "$(head -n 1 "$ROOT/.complete")" = "$STAMP $PKGS" ]; then
	echo "$ROOT"
	exit 0
fi

# One download at a time per release.
if command -v flock >/dev/null 2>&1; then
	exec 8>"$TOP/.lock"
	flock 8
	if [ -f "$ROOT/.complete" ] && [ "$(head -n 1 "$ROOT/.complete")" = "$STAMP $PKGS" ]; then
		echo "$ROOT"
		exit 0
	fi
fi

# The machine's Debian source: the first stanza whose URIs is .../debian.
SRC=/etc/apt/sources.list.d/debian.sources
[ -r "$SRC" ] || fail "no $SRC: cannot tell which Debian mirror this machine uses"
URI=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$SRC")
KEY=$(awk '/^Signed-By:/ { print $2; exit }' "$SRC")
[ -n "$URI" ] || fail "no .../debian URI in $SRC"
[ -n "$KEY" ] && [ -r "$KEY" ] || fail "no readable Signed-By keyring in $SRC"

APT=$TOP/apt
DEBS=$TOP/debs${GO:+-$GO}
mkdir -p "$APT/sources.list.d" "$APT/lists/partial" "$APT/cache/archives/partial" "$DEBS"
cat >"$APT/sources.list.d/$REL.sources" <<SOURCES
Types: deb
URIs: $URI
Suites: $REL
Components: main
Signed-By: $KEY
SOURCES
set -- -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$APT/sources.list.d" \
	-o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" \
	-o Dir::State::status=/dev/null -o APT::Architecture=amd64 -o Debug::NoLocking=1 -qq
echo "$ME: apt-get update ($URI $REL)" >&2
apt-get "$@" update >"$TOP/apt.log" 2>&1 ||
	{ cat "$TOP/apt.log" >&2; fail "apt-get update of $URI $REL failed (network?): the version matrix needs it"; }
echo "$ME: apt-get download $PKGS" >&2
(cd "$DEBS" && rm -f ./*.deb && apt-get "$@" download $PKGS) >>"$TOP/apt.log" 2>&1 ||
	{ cat "$TOP/apt.log" >&2; fail "apt-get download $PKGS from $URI $REL failed: the version matrix needs them"; }
rm -rf "$ROOT"
mkdir -p "$ROOT"
for deb in "$DEBS"/*.deb; do
	dpkg-deb -x "$deb" "$ROOT" || fail "dpkg-deb -x $deb failed"
done
# Absolute symbolic links (Debian 11's /lib64/ld-linux-x86-64.so.2 ->
# /lib/x86_64-linux-gnu/ld-2.31.so) must stay inside ROOT: made relative.
find "$ROOT" -type l | while read -r l; do
	t=$(readlink "$l")
	case $t in /*) ln -sfr "$ROOT$t" "$l" ;; esac
done
# Debian 11 keeps the C library in /lib, 12 and 13 in /usr/lib (merged /usr):
# both paths must exist for -rpath and the loader.
for d in lib lib64; do
	if [ -d "$ROOT/usr/$d" ] && [ ! -e "$ROOT/$d" ]; then ln -s "usr/$d" "$ROOT/$d"; fi
done
{ echo "$STAMP $PKGS"; (cd "$DEBS" && ls); } >"$ROOT/.complete"
echo "$ROOT"
