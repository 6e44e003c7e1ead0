# validate.py - check a fixture's truth against glibc's own view of the core.
#
# Run inside gdb (with libc6-dbg installed) by cores/make-cores.sh:
#   gdb -batch -nx -ex "python FIXTURE_TRUTH = 'x.truth.json'" -x cores/validate.py PROG CORE
# It walks the heap the way glibc 2.36 lays it out, from glibc's own symbols and
# types (main_arena, mp_, each thread's tcache, heap_info, malloc_state), and
# compares with the truth the fixture wrote: thread ids, every live pointer
# in use with its usable size, every freed pointer on the list the fixture
# expects, every other used chunk listed as internal or meta, the mmapped chunk
# count, the arena count, and mallinfo2 recomputed from the lists.  It is an
# independent oracle for the fixtures, not a part of heapscope.  The last line
# is "validation: OK" or "validation: FAILED (N problems)".
import json
import struct

import gdb

MINSIZE = 0x20
MAX_WALK = 1 << 20          # bound on every list and chunk walk

problems = []
facts = []


def problem(msg):
    problems.append(msg)
    print("PROBLEM: " + msg)


def fact(msg):
    facts.append(msg)
    print("fact: " + msg)


inf = gdb.selected_inferior()


def u64(addr):
    return struct.unpack("<Q", bytes(inf.read_memory(addr, 8)))[0]


def u16(addr):
    return struct.unpack("<H", bytes(inf.read_memory(addr, 2)))[0]


def val(expr):
    return int(gdb.parse_and_eval(expr))


def chunksize(c):
    return u64(c + 8) & ~7


truth = json.load(open(FIXTURE_TRUTH))  # noqa: F821 (set by the caller)
corrupt = truth.get("corrupt", [])
involved = {a for c in corrupt for a in c.get("involves", [])}
corrupt_chunks = {c["address"] for c in corrupt}

# --- threads ---------------------------------------------------------------
tids = sorted(t.ptid[1] for t in inf.threads())
want = sorted(t["tid"] for t in truth["threads"])
if tids != want:
    problem("threads: core has %s, truth has %s" % (tids, want))
else:
    fact("threads: %d, tids match" % len(tids))

# --- arenas ----------------------------------------------------------------
main_arena = val("&main_arena")
sizeof_state = gdb.lookup_type("struct malloc_state").sizeof
sizeof_heap_info = gdb.lookup_type("heap_info").sizeof
NBINS = 128
arenas = []
a = main_arena
while len(arenas) < 1000:
    arenas.append(a)
    a = val("((struct malloc_state *)%d)->next" % a)
    if a == main_arena:
        break
fact("arenas: %d (sizeof malloc_state %d, heap_info %d)" % (len(arenas), sizeof_state, sizeof_heap_info))
if len(arenas) != truth["arenas"]:
    problem("arena count %d, truth says %d" % (len(arenas), truth["arenas"]))


def arena_key(a):
    return 0 if a == main_arena else a


# --- free lists --------------------------------------------------------------
where = {}          # chunk address -> list name
fast_bytes = fast_count = bin_bytes = bin_count = 0


def put(c, name):
    if c in where:
        problem("chunk %#x on two lists (%s, %s)" % (c, where[c], name))
    where[c] = name


def walk_singly(head, field_off, name, limit):
    """Safe-linked list of user pointers (tcache) or chunks (fastbins)."""
    seen = set()
    n = 0
    p = head
    while p and n < limit:
        if p in seen:
            fact("%s: cycle at %#x" % (name, p))
            return n, p
        seen.add(p)
        n += 1
        yield_p = p
        stored = u64(p + field_off)
        p = ((p + field_off) >> 12) ^ stored
        walk_singly.out.append(yield_p)
    return n, None


for ai, a in enumerate(arenas):
    sa = "((struct malloc_state *)%d)" % a
    for i in range(10):
        head = val("%s->fastbinsY[%d]" % (sa, i))
        walk_singly.out = []
        n, cyc = walk_singly(head, 16, "fastbin %d of arena %d" % (i, ai), 1000)
        for c in walk_singly.out:
            put(c, "fastbin")
            fast_bytes += chunksize(c)
            fast_count += 1
        if cyc:
            fact("fastbin cycle at chunk %#x" % cyc)
            where.setdefault(("cycle", cyc), "fastbin-cycle")
    bins_addr = val("&%s->bins[0]" % sa)
    for i in range(1, NBINS):
        b = bins_addr + (i - 1) * 16 - 16
        p = u64(b + 24)   # bk
        n = 0
        while p != b and n < MAX_WALK:
            name = "unsorted" if i == 1 else "smallbin" if i < 64 else "largebin"
            put(p, name)
            bin_bytes += chunksize(p)
            bin_count += 1
            p = u64(p + 24)
            n += 1

tcache_of = {}
for t in inf.threads():
    t.switch()
    try:
        tc = val("tcache")
    except gdb.error as e:
        problem("thread %d: cannot read tcache: %s" % (t.ptid[1], e))
        continue
    if tc == 0:
        continue
    tcache_of[t.ptid[1]] = tc
    for i in range(64):
        count = u16(tc + 2 * i)
        head = u64(tc + 128 + 8 * i)
        walk_singly.out = []
        n, cyc = walk_singly(head, 0, "tcache bin %d of thread %d" % (i, t.ptid[1]), 100)
        for m in walk_singly.out:
            put(m - 16, "tcache")
        if n != count:
            fact("tcache of thread %d bin %d: counts[] says %d, list holds %d"
                 % (t.ptid[1], i, count, n))
            where.setdefault(("count", tc + 2 * i), "tcache-count")

# --- chunks ----------------------------------------------------------------
chunks = {}         # chunk address -> (size, in_use, arena key)
tops = {}
system_mem = 0
stopped_at = []


def walk_range(start, end, top, ak):
    c = start
    n = 0
    while c < end and n < MAX_WALK:
        if c == top:
            return
        size = chunksize(c)
        if size == 0:
            return          # fencepost at the end of an old heap
        if size < MINSIZE or c + size > end or size & 15:
            stopped_at.append(c)
            fact("chunk walk stopped at %#x: size %#x" % (c, u64(c + 8)))
            return
        nxt = c + size
        in_use = bool(u64(nxt + 8) & 1) if nxt < end else True
        chunks[c] = (size, in_use, ak)
        c = nxt
        n += 1


for a in arenas:
    sa = "((struct malloc_state *)%d)" % a
    top = val("%s->top" % sa)
    tops[arena_key(a)] = top
    system_mem += val("%s->system_mem" % sa)
    if a == main_arena:
        walk_range(val("mp_.sbrk_base"), top + chunksize(top), top, 0)
        continue
    h = top & ~((64 << 20) - 1)
    heaps = 0
    while h and heaps < 1000:
        heaps += 1
        hsize = val("((heap_info *)%d)->size" % h)
        if h + sizeof_heap_info == a:
            first = a + sizeof_state
            first += (16 - (first + 16) % 16) % 16
        else:
            first = h + sizeof_heap_info
        walk_range(first, h + hsize, top, a)
        h = val("((heap_info *)%d)->prev" % h)
    fact("arena %#x: %d heap(s)" % (a, heaps))

n_mmaps = val("mp_.n_mmaps")
fact("mp_.n_mmaps %d, mmapped_mem %d" % (n_mmaps, val("mp_.mmapped_mem")))

# --- compare with the truth --------------------------------------------------
def check_used(rec, label):
    p = rec["address"]
    c = p - 16
    word = u64(c + 8)
    if word & 2:
        usable = (word & ~7) - 16
        if usable != rec["size"]:
            problem("%s %#x: mmapped usable %d, truth %d" % (label, p, usable, rec["size"]))
        return
    if c in where:
        problem("%s %#x is on the %s list" % (label, p, where[c]))
    if c not in chunks:
        if not stopped_at or c < min(stopped_at):
            problem("%s %#x: not a chunk of the walk" % (label, p))
        return
    size, in_use, ak = chunks[c]
    if not in_use:
        problem("%s %#x: not in use by its header" % (label, p))
    if size - 8 != rec["size"]:
        problem("%s %#x: usable %d, truth %d" % (label, p, size - 8, rec["size"]))
    if rec.get("arena", ak) != ak:
        problem("%s %#x: arena %#x, truth %#x" % (label, p, ak, rec["arena"]))


for rec in truth["live"]:
    check_used(rec, "live")
for rec in truth["internal"]:
    check_used(rec, "internal")
for rec in truth["meta"]:
    check_used(rec, "meta")
meta_set = {r["address"] for r in truth["meta"]}
if set(tcache_of.values()) - meta_set:
    problem("tcache structs %s not all in truth meta %s"
            % (sorted(map(hex, tcache_of.values())), sorted(map(hex, meta_set))))
else:
    fact("every thread's tcache (%d) is a truth meta chunk" % len(tcache_of))

for rec in truth["freed"]:
    p = rec["address"]
    c = p - 16
    got = where.get(c)
    if p in involved:
        fact("freed %#x (involved in corruption): %s" % (p, got))
        continue
    if got != rec["expect"]:
        problem("freed %#x: on %s, truth expects %s" % (p, got, rec["expect"]))
    if chunksize(c) - 8 != rec["size"]:
        problem("freed %#x: usable %d, truth %d" % (p, chunksize(c) - 8, rec["size"]))

by_list = {}
for rec in truth["freed"]:
    by_list[rec["expect"]] = by_list.get(rec["expect"], 0) + 1
fact("freed pointers checked: %d %s; live %d, internal %d, meta %d"
     % (len(truth["freed"]), sorted(by_list.items()), len(truth["live"]),
        len(truth["internal"]), len(truth["meta"])))

explained = {r["address"] - 16 for r in truth["live"] + truth["internal"] + truth["meta"]}
for c, (size, in_use, ak) in sorted(chunks.items()):
    if in_use and c not in where and c not in explained:
        problem("used chunk %#x (size %#x) is not in the truth" % (c, size))
    if not in_use and c not in where and c not in tops.values():
        problem("free chunk %#x (size %#x) is on no list" % (c, size))

mmapped_truth = len(truth["mmapped"])
if mmapped_truth != n_mmaps:
    problem("mmapped: truth %d, mp_.n_mmaps %d" % (mmapped_truth, n_mmaps))

for c in corrupt:
    fact("corruption %s at %#x" % (c["what"], c["address"]))

# mallinfo2 recomputed from glibc's lists (int_mallinfo): fordblks = tops + fastbin
# chunks + binned chunks; uordblks = system_mem - fordblks; ordblks = tops + binned.
if not corrupt:
    top_bytes = sum(chunksize(t) for t in tops.values())
    mine = {
        "arena": system_mem,
        "ordblks": len(tops) + bin_count,
        "smblks": fast_count,
        "fsmblks": fast_bytes,
        "fordblks": top_bytes + fast_bytes + bin_bytes,
        "uordblks": system_mem - (top_bytes + fast_bytes + bin_bytes),
        "hblks": n_mmaps,
        "hblkhd": val("mp_.mmapped_mem"),
        "keepcost": chunksize(tops[0]),
    }
    mi = truth["mallinfo2"]
    for k, v in mine.items():
        if mi[k] != v:
            problem("mallinfo2.%s: truth %d, recomputed %d" % (k, mi[k], v))
    used_chunk_bytes = sum(s for c, (s, u, ak) in chunks.items() if u and c not in where or
                           where.get(c) == "tcache")
    fact("mallinfo2 recomputed from the lists: all fields equal")
    fact("uordblks %d = used+tcache chunk bytes %d + overhead %d"
         % (mi["uordblks"], used_chunk_bytes, mi["uordblks"] - used_chunk_bytes))

print("validation: %s" % ("OK" if not problems else "FAILED (%d problems)" % len(problems)))
