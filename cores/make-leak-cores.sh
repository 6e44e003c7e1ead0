#!/bin/sh
# Build the leak fixtures (issue 4) and dump their cores with ground truth.
#
#   BUILD=build cores/make-leak-cores.sh          leaks and leaks_cpp
#   BUILD=build cores/make-leak-cores.sh NAME...  the named ones
#
# For each cores/NAME.c (gcc) or cores/NAME.cc (g++), into $BUILD/cores/:
#   NAME                     the program (-g -O0 -pthread)
#   NAME.gdb.core            gdb's generate-core-file at the dump_here() breakpoint
#   NAME.truth.json          the truth the program wrote before dump_here()
#   NAME.kernel.core         a kernel core (run with "abort": abort() after dump_here())
#   NAME.kernel.truth.json   its truth (other addresses: ASLR)
#   NAME.KIND.validation     cores/validate.py: the truth against glibc's view
#   NAME.KIND.leakcheck      the leak facts checked with gdb on the core: main_arena,
#                            r12 of the register thread (and no other register or
#                            live stack word holds it), the stack local in its
#                            frame, TLS variables per thread, global root symbols,
#                            every chain hop's pointer word and member name, the
#                            stale words of the freed arrays, C++ vtable names
# Last line of each check: "validation: OK" / "leak validation: OK".
# Work is redone only for what is older than its inputs.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
init make-leak-cores
SIDEFILES="validation leakcheck"
[ $# -eq 0 ] && set -- leaks leaks_cpp

check_kernel_cores

source_of() {
	if [ -f "$HERE/$1.c" ]; then echo "$HERE/$1.c"
	elif [ -f "$HERE/$1.cc" ]; then echo "$HERE/$1.cc"
	else fail "no fixture cores/$1.c or cores/$1.cc"; fi
}

build() {
	name=$1 src=$(source_of "$1")
	if stale "$OUT/$name" "$src" "$HERE/truth.h" "$HERE/leak_truth.h"; then
		say "cc $name"
		case $src in
			*.cc) ${CXX:-g++} -g -O0 -pthread -Wall -Wextra -Wno-missing-field-initializers -Wno-invalid-offsetof -o "$OUT/$name" "$src" ;;
			*) ${FIXTURE_CC:-gcc} -g -O0 -pthread -Wall -Wextra -o "$OUT/$name" "$src" ;;
		esac
	fi
}

# The gdb side of the leak facts (run inside gdb on the core).
write_leakcheck() {
	cat >"$OUT/leakcheck.py.tmp" <<'PYEOF'
import json
import re
import struct

import gdb

problems = []


def problem(msg):
    problems.append(msg)
    print("PROBLEM: " + msg)


def fact(msg):
    print("fact: " + msg)


inf = gdb.selected_inferior()
truth = json.load(open(FIXTURE_TRUTH))  # noqa: F821 (set by the caller)
lk = truth["leaks"]
objs = {o["address"]: o for o in lk["objects"]}


def u64(addr):
    return struct.unpack("<Q", bytes(inf.read_memory(addr, 8)))[0]


def val(expr):
    return int(gdb.parse_and_eval(expr))


def inside(v, a):
    return a <= v < a + objs[a]["size"]


threads = {t.ptid[1]: t for t in inf.threads()}
GPRS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15"]


def regs_of(tid):
    threads[tid].switch()
    gdb.execute("frame 0", to_string=True)
    return {r: val("$" + r) & (2**64 - 1) for r in GPRS}


# main_arena
try:
    ma = val("&main_arena")
    if ma != lk["main_arena"]:
        problem("main_arena: gdb %#x, truth %#x" % (ma, lk["main_arena"]))
    else:
        fact("main_arena %#x" % ma)
except gdb.error as e:
    problem("cannot evaluate &main_arena: %s" % e)


def global_addr(sym):
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_:]*)(?:\+(\d+))?$", sym)
    return val("(unsigned long)&%s" % m.group(1)) + int(m.group(2) or 0)


def live_stack_words(tid, value_lo, value_hi):
    """Words in [sp, top of the stack mapping) of thread tid pointing into [lo, hi)."""
    r = regs_of(tid)
    sp = r["rsp"]
    top = None
    for t in truth["threads"]:
        if t["tid"] == tid:
            top = t["stack_mapping"][1]
    hits = []
    if top is None:
        return hits
    data = bytes(inf.read_memory(sp, top - sp))
    for i in range(0, len(data) - 7, 8):
        w = struct.unpack_from("<Q", data, i)[0]
        if value_lo <= w < value_hi:
            hits.append(sp + i)
    return hits


def check_root(label, root, target):
    kind = root["kind"]
    if kind == "global":
        a = global_addr(root["symbol"])
        if a != root["address"]:
            problem("%s: &%s is %#x, truth %#x" % (label, root["symbol"], a, root["address"]))
        elif u64(a) and not inside(u64(a), target):
            problem("%s: %s holds %#x, not into %#x" % (label, root["symbol"], u64(a), target))
        else:
            fact("%s: %s at %#x holds %#x" % (label, root["symbol"], a, u64(a)))
    elif kind == "register":
        regs = regs_of(root["thread"])
        v = regs[root["register"]]
        if not inside(v, target):
            problem("%s: thread %d %s = %#x, not into %#x" % (label, root["thread"], root["register"], v, target))
        else:
            fact("%s: thread %d %s = %#x" % (label, root["thread"], root["register"], v))
        hits = live_stack_words(root["thread"], target, target + objs[target]["size"])
        if hits:
            problem("%s: live stack words also hold it: %s" % (label, [hex(h) for h in hits]))
        else:
            fact("%s: no live stack word of thread %d holds it" % (label, root["thread"]))
        for tid in threads:
            for r, v in regs_of(tid).items():
                if (tid, r) != (root["thread"], root["register"]) and inside(v, target):
                    problem("%s: thread %d %s also holds %#x" % (label, tid, r, v))
    elif kind == "stack":
        threads[root["thread"]].switch()
        f = gdb.newest_frame()
        found = False
        while f is not None:
            if f.name() == root["function"]:
                found = True
                f.select()
                a = val("(unsigned long)&held")
                if a != root["address"]:
                    problem("%s: &held in %s is %#x, truth %#x" % (label, f.name(), a, root["address"]))
                elif not inside(u64(a), target):
                    problem("%s: held = %#x" % (label, u64(a)))
                else:
                    fact("%s: %s's local held at %#x" % (label, f.name(), a))
                break
            f = f.older()
        if not found:
            problem("%s: no frame of %s in thread %d" % (label, root["function"], root["thread"]))
        hits = live_stack_words(root["thread"], target, target + objs[target]["size"])
        if hits != [root["address"]]:
            problem("%s: live stack words holding it: %s" % (label, [hex(h) for h in hits]))
        for tid in threads:
            for r, v in regs_of(tid).items():
                if inside(v, target):
                    problem("%s: thread %d %s holds %#x" % (label, tid, r, v))
    elif kind == "tls":
        threads[root["thread"]].switch()
        a = val("(unsigned long)&tls_ptr")
        if a != root["address"]:
            problem("%s: thread %d &tls_ptr %#x, truth %#x" % (label, root["thread"], a, root["address"]))
        elif not inside(u64(a), target):
            problem("%s: tls_ptr = %#x" % (label, u64(a)))
        else:
            fact("%s: thread %d tls_ptr at %#x" % (label, root["thread"], a))


def field_at(type_name, offset):
    try:
        t = gdb.lookup_type("struct " + type_name)
    except gdb.error:
        t = gdb.lookup_type(type_name)
    for f in t.strip_typedefs().fields():
        if getattr(f, "bitpos", None) == offset * 8 and not f.artificial:
            return f.name
    return None


for c in lk["chains"]:
    hops = c["hops"]
    if c["root"]:
        check_root(c["label"], c["root"], hops[0]["address"])
    for i, h in enumerate(hops):
        if h["address"] not in objs:
            problem("%s: hop %#x is not a truth object" % (c["label"], h["address"]))
            continue
        if i + 1 < len(hops):
            w = u64(h["address"] + h["offset"])
            if not inside(w, hops[i + 1]["address"]):
                problem("%s: word at %#x+%d is %#x, not into the next hop %#x"
                        % (c["label"], h["address"], h["offset"], w, hops[i + 1]["address"]))
            t = objs[h["address"]]["type"]
            if h["field"] is not None or t is not None:
                got = field_at(t, h["offset"]) if t else None
                if got != h["field"]:
                    problem("%s: member of %s at offset %d is %s, truth %s"
                            % (c["label"], t, h["offset"], got, h["field"]))
    if hops and hops[-1]["address"] != c["target"]:
        problem("%s: last hop is not the target" % c["label"])
fact("%d chains checked" % len(lk["chains"]))

for r in lk["refs"]:
    for x in r["referrers"]:
        if x["kind"] != "allocation":
            check_root(r["label"], x, r["target"])
        elif not inside(u64(x["address"] + x["offset"]), r["target"]):
            problem("%s: referrer word %#x+%d does not point at it" % (r["label"], x["address"], x["offset"]))

freed = {f["address"]: f for f in truth["freed"]}
for s in lk["stale"]:
    if s["array"] not in freed or freed[s["array"]]["expect"] != s["expect"]:
        problem("%s: the array %#x is not a freed truth chunk on %s" % (s["label"], s["array"], s["expect"]))
    for w in s["words"]:
        got = u64(s["array"] + w["offset"])
        if got != w["value"]:
            problem("%s: stale word +%d is %#x, truth %#x" % (s["label"], w["offset"], got, w["value"]))
        elif w["value"] not in objs or not objs[w["value"]]["leaked"]:
            problem("%s: stale word +%d does not point at a leaked truth object" % (s["label"], w["offset"]))
    fact("%s: freed array %#x (%s) still holds %d stale pointers"
         % (s["label"], s["array"], s["expect"], len(s["words"])))

# C++ objects: the vtable symbol at offset 0 names the truth type.
for o in lk["objects"]:
    if o["type"] and ("::" in o["type"] or o["label"].startswith("c++")):
        vp = u64(o["address"])
        out = gdb.execute("info symbol %d" % vp, to_string=True)
        m = re.match(r"vtable for (.*) \+ 16 in section", out)
        if not m or m.group(1) != o["type"]:
            problem("%s at %#x: vptr %#x is %r, truth type %s" % (o["label"], o["address"], vp, out.strip(), o["type"]))
        else:
            fact("%s at %#x: vtable for %s" % (o["label"], o["address"], m.group(1)))

print("leak validation: %s" % ("OK" if not problems else "FAILED (%d problems)" % len(problems)))
PYEOF
	if ! cmp -s "$OUT/leakcheck.py.tmp" "$OUT/leakcheck.py" 2>/dev/null; then
		mv "$OUT/leakcheck.py.tmp" "$OUT/leakcheck.py"
	else
		rm -f "$OUT/leakcheck.py.tmp"
	fi
}

# validate.py's check, and leakcheck.py's: both warn on every run unless OK.
validate() {
	name=$1 kind=$2
	[ -s "$OUT/$name.$kind.core" ] || return 0
	validate_glibc "$name" "$kind" always
	l=$OUT/$name.$kind.leakcheck
	if stale "$l" "$OUT/$name.$kind.core" "$OUT/leakcheck.py"; then
		gdb_check "$name" "$kind" "$OUT/leakcheck.py" "$l"
	fi
	check_ok "$l" 'leak validation: OK' "$name.$kind leak facts do not hold on the core (see $l)"
}

write_leakcheck
for name in "$@"; do
	build "$name"
	gdb_core "$name"
	kernel_core "$name"
	validate "$name" gdb
	validate "$name" kernel
done
