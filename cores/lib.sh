# What cores/make-cores.sh, make-leak-cores.sh and make-jemalloc-cores.sh share.
# Sourced (POSIX sh) with HERE set to cores/; the script then calls init, and
# may set:
#   SIDEFILES   the per-core check files (NAME.KIND.EXT) a new core makes stale:
#               "validation", "validation leakcheck"; none by default
#   TMP         the suffix of the core gdb writes before it is renamed
# All functions share the scripts' globals (name, core, truth, log, ...).
SIDEFILES=
TMP=tmp

# init ME [-P]: messages start with "ME:"; OUT is $BUILD/cores, made and
# absolute (-P: with symbolic links resolved).
init() {
	ME=$1
	BUILD=${BUILD:-build}
	OUT=$BUILD/cores
	mkdir -p "$OUT"
	OUT=$(cd "$OUT" && pwd ${2-})
}

say() { echo "$ME: $*"; }
fail() { echo "$ME: $*" >&2; exit 1; }

# newer A B: A exists and is newer than B (B missing counts as older).
newer() { [ -e "$1" ] && { [ ! -e "$2" ] || [ "$1" -nt "$2" ]; }; }
# stale OUT INPUT...: OUT is missing or older than one of the inputs.
stale() {
	t=$1; shift
	[ -s "$t" ] || return 0
	for i in "$@"; do newer "$i" "$t" && return 0; done
	return 1
}

# lock NAME: one run at a time per build directory, on $OUT/.NAME.lock.
lock() {
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$OUT/.$1.lock"
		flock 9
	fi
}

# Kernel cores need core_pattern to name a file in the working directory and a
# core size limit we may raise.  Sets kernel_ok and pattern; when there can be
# none the machine is misconfigured for the tests: fail, saying how to fix it
# (kernel cores are half of every fixture's tests; they are never skipped).
check_kernel_cores() {
	kernel_ok=yes
	pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo '?')
	case $pattern in
		'|'*) kernel_ok="core_pattern is a pipe ($pattern)" ;;
		*/*) kernel_ok="core_pattern writes elsewhere ($pattern)" ;;
		'?') kernel_ok="cannot read /proc/sys/kernel/core_pattern" ;;
	esac
	if [ "$kernel_ok" = yes ] && ! (ulimit -c unlimited) 2>/dev/null; then
		kernel_ok="ulimit -c unlimited was refused (hard limit $(ulimit -Hc))"
	fi
	if [ "$kernel_ok" != yes ]; then
		fail "no kernel cores can be made here: $kernel_ok. The tests need them: as root, " \
		     "sysctl -w kernel.core_pattern=core (a plain file name; a pipe such as systemd-coredump " \
		     "or apport takes the core away), and allow ulimit -c unlimited"
	fi
}

# gdb writes every untouched page (a thread arena reserves 64 MiB) as zeros:
# give them back to the file system where it can.
sparse() {
	command -v fallocate >/dev/null 2>&1 && fallocate -d "$1" 2>/dev/null || true
}

# forget NAME KIND: remove the check files of NAME's KIND core.
forget() {
	for ext in $SIDEFILES; do rm -f "$OUT/$1.$2.$ext"; done
}

# gdb_core NAME [GDB-ARG...]: NAME.gdb.core and NAME.truth.json, gdb's
# generate-core-file at the dump_here() breakpoint, when older than the
# program.  The GDB-ARGs (-ex "set environment ...") come before the run.
gdb_core() {
	name=$1 core=$OUT/$1.gdb.core truth=$OUT/$1.truth.json
	shift
	stale "$core" "$OUT/$name" || stale "$truth" "$OUT/$name" || return 0
	say "gdb core $name"
	rm -f "$core" "$core.$TMP" "$truth"
	forget "$name" gdb
	log=$OUT/$name.gdb.log
	if ! gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex 'set pagination off' -ex 'set confirm off' "$@" \
		-ex 'break dump_here' -ex run \
		-ex "generate-core-file $core.$TMP" -ex kill \
		--args "$OUT/$name" "$truth" >"$log" 2>&1 ||
	   [ ! -s "$core.$TMP" ] || [ ! -s "$truth" ]; then
		cat "$log" >&2
		fail "gdb did not write a core for $name (log: $log)"
	fi
	sparse "$core.$TMP"
	mv "$core.$TMP" "$core"
}

# kernel_core NAME [PRELOAD]: NAME.kernel.core and NAME.kernel.truth.json, the
# program run with "abort" (it abort()s after dump_here()) in a scratch
# directory with LD_PRELOAD=PRELOAD if given, when older than the program.
kernel_core() {
	name=$1 core=$OUT/$1.kernel.core truth=$OUT/$1.kernel.truth.json
	pre=${2-}
	[ "$kernel_ok" = yes ] || return 0
	stale "$core" "$OUT/$name" || stale "$truth" "$OUT/$name" || return 0
	say "kernel core $name"
	rm -f "$core" "$truth"
	forget "$name" kernel
	scratch=$OUT/scratch.$name
	rm -rf "$scratch"
	mkdir -p "$scratch"
	# No exec: this subshell reaps the program, so the shell's
	# "Aborted (core dumped)" goes to /dev/null too.
	(set +e; cd "$scratch" && ulimit -c unlimited &&
		if [ -n "$pre" ]; then LD_PRELOAD=$pre "$OUT/$name" "$truth" abort
		else "$OUT/$name" "$truth" abort; fi; exit 0) >/dev/null 2>&1 || true
	got=$(ls "$scratch" | grep '^core' | head -n 1 || true)
	if [ -z "$got" ] || [ ! -s "$truth" ]; then
		rm -rf "$scratch"
		fail "no kernel core for $name (core_pattern: $pattern)"
	fi
	mv "$scratch/$got" "$core"
	rm -rf "$scratch"
}

# gdb_check NAME KIND SCRIPT RESULT: run the gdb Python SCRIPT on NAME's KIND
# core, with FIXTURE_TRUTH naming the truth of that run, into RESULT.
gdb_check() {
	truth=$OUT/$1.truth.json
	[ "$2" = kernel ] && truth=$OUT/$1.kernel.truth.json
	gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex "python FIXTURE_TRUTH = '$truth'" -x "$3" \
		"$OUT/$1" "$OUT/$1.$2.core" >"$4" 2>&1 || true
}

# check_ok RESULT LAST WARNING: say WARNING unless RESULT's last line starts with LAST.
check_ok() {
	tail -n 1 "$1" | grep -q "^$2" || say "WARNING: $3"
}

# validate_glibc NAME KIND [always]: NAME.KIND.validation, cores/validate.py's
# check of the truth against glibc's view of the core, when older than the core
# or the script.  Warns unless it is OK: when it was made, or each time (always).
validate_glibc() {
	v=$OUT/$1.$2.validation
	[ -s "$OUT/$1.$2.core" ] || return 0
	if stale "$v" "$OUT/$1.$2.core" "$HERE/validate.py"; then
		gdb_check "$1" "$2" "$HERE/validate.py" "$v"
	elif [ "${3-}" != always ]; then
		return 0
	fi
	check_ok "$v" 'validation: OK' "$1.$2 truth does not match glibc's view (see $v)"
}
