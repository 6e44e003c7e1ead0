#!/usr/bin/env python3
"""Leak analysis against the leak fixtures' truth (issue 4, "Done when").

    BUILD=build python3 tests/integration/test_leaks.py [-v] [SUBSTRING...]

Fixtures (cores/make-leak-cores.sh, run first if anything is stale):
leaks (C: clusters, cycles, a self loop, stale bucket arrays in the tcache and
the unsorted bin, objects held only by a stack frame, r12, TLS, a global chain
of struct node, typed config structs, a tree with a shared node, allocator
traps) and leaks_cpp (classes with vtables, and the same shapes: a tree, an
interior-pointed buffer, a headless cycle; every check applies to both).  Each check runs on the gdb core
and the kernel core, with and without --no-debuginfo (which ignores libc's
separate debug info only: the fixture's own DWARF still names its structs, and
C++ classes are named from their vtable symbols).

Two kinds of tests:
* Fixture_*: the truth itself, checked without heapscope: the gdb checks that
  make-leak-cores.sh ran (validate.py, leakcheck) and an independent
  conservative scan of the core in Python (Oracle below), which must find
  exactly the truth's leaked and unreferenced sets, unique shortest chains
  equal to the truth's, the truth's referrers and the truth's retained sizes.
* Leaks_*: heapscope's JSON output compared EXACTLY with the truth.

Type names are as heapscope prints them: DWARF names without "struct "
("node", "config", "entry", "tnode", "tls_obj", "Plain") and C++ classes as
c++filt prints them ("Derived", "app::Widget", "Holder<int>", "TreeNode").
The last line is "N passed, N failed"; the exit status is nonzero on failure.
"""
import bisect
import mmap
import os
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402

FIXTURES = ("leaks", "leaks_cpp")
TIMEOUT = 120
BIG = 1000000                   # --limit that lists everything
MAIN_ARENA_SIZE = 2200          # sizeof(struct malloc_state), glibc 2.36 x86-64
GPRS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
        "rdx", "rsi", "rdi")    # user_regs_struct order (then orig_rax, rip, ..., rsp at 19)
RSP = 19


def listing(problems, limit=25):
    more = "" if len(problems) <= limit else "\n... and %d more" % (len(problems) - limit)
    return "\n".join(problems[:limit]) + more


# --- the core, read without heapscope ------------------------------------------------------

class Core:
    """PT_LOAD segments and NT_PRSTATUS registers of an x86-64 ELF core."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2:
            raise AssertionError("%s is not a 64-bit ELF file" % path)
        phoff, = struct.unpack_from("<Q", d, 32)
        phentsize, phnum = struct.unpack_from("<HH", d, 54)
        self.segments = []      # (vaddr, filesz, offset, flags)
        self.threads = {}       # tid -> {reg: value}
        for i in range(phnum):
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from(
                "<IIQQQQQQ", d, phoff + i * phentsize)
            if p_type == 1 and p_filesz:
                self.segments.append((p_vaddr, p_filesz, p_offset, p_flags))
            elif p_type == 4:
                self._notes(p_offset, p_filesz)
        self.segments.sort()

    def _notes(self, off, size):
        d, end = self.data, off + size
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", d, off)
            desc = off + 12 + ((namesz + 3) & ~3)
            if ntype == 1 and descsz >= 112 + 27 * 8:          # NT_PRSTATUS
                pid, = struct.unpack_from("<i", d, desc + 32)
                regs = struct.unpack_from("<27Q", d, desc + 112)
                r = {name: regs[i] for i, name in enumerate(GPRS)}
                r["rsp"] = regs[RSP]
                self.threads[pid] = r
            off = desc + ((descsz + 3) & ~3)

    def words(self, lo, hi):
        """(address, value) of the aligned words of [lo, hi) that are in the core."""
        lo = (lo + 7) & ~7
        for vaddr, filesz, off, _ in self.segments:
            a, b = max(lo, vaddr), min(hi, vaddr + filesz)
            if a + 8 > b:
                continue
            n = (b - a) // 8
            vals = struct.unpack_from("<%dQ" % n, self.data, off + (a - vaddr))
            yield a, vals

    def u64(self, addr):
        for a, vals in self.words(addr, addr + 8):
            return vals[0]
        return None


def subtract(ranges, holes):
    """ranges minus holes (lists of [lo, hi))."""
    out = []
    for lo, hi in ranges:
        cur = [(lo, hi)]
        for hlo, hhi in holes:
            nxt = []
            for a, b in cur:
                if hhi <= a or hlo >= b:
                    nxt.append((a, b))
                    continue
                if a < hlo:
                    nxt.append((a, hlo))
                if hhi < b:
                    nxt.append((hhi, b))
            cur = nxt
        out.extend(cur)
    return out


class Oracle:
    """A conservative pointer scan of the core from the truth's list of used chunks.

    Nodes: every used chunk the truth lists (live + internal; the tcache structs
    are allocator metadata, neither nodes nor scanned).  Roots: every writable
    segment except the heaps, the mmapped chunks, main_arena and the threads'
    stacks, plus each thread's stack from its sp to the top of its mapping,
    plus each thread's general registers.  Edges: aligned words pointing into
    a node (exact=True: at its start only).
    """

    def __init__(self, core, truth, exact=False):
        lk = truth["leaks"]
        self.truth = truth
        nodes = sorted((r["address"], r["size"]) for r in truth["live"] + truth["internal"])
        self.addr = [a for a, _ in nodes]
        self.size = [s for _, s in nodes]
        self.index = {a: i for i, a in enumerate(self.addr)}
        self.exact = exact
        self.lo, self.hi = self.addr[0], max(a + s for a, s in nodes)
        n = len(nodes)
        self.out = [[] for _ in range(n)]       # (offset, j)
        self.inn = [[] for _ in range(n)]       # (i, offset)
        self.roots = [[] for _ in range(n)]     # ("mem", word address) or ("reg", tid, name)

        holes = [tuple(h) for h in lk["heaps"]]
        holes += [(a - 16, a + s) for a, s in nodes if a in set(truth["mmapped"])]
        holes.append((lk["main_arena"], lk["main_arena"] + MAIN_ARENA_SIZE))
        stacks = []
        for t in truth["threads"]:
            lo, hi = t["stack_mapping"]
            holes.append((lo, hi))
            regs = core.threads.get(t["tid"])
            if regs is None:
                raise AssertionError("thread %d of the truth is not in the core" % t["tid"])
            stacks.append((max(regs["rsp"], lo), hi))
            for name in GPRS:
                j = self.find(regs[name])
                if j is not None:
                    self.roots[j].append(("reg", t["tid"], name))
        writable = [(v, v + fs) for v, fs, _, flags in core.segments if flags & 2]
        for lo, hi in subtract(writable, holes) + stacks:
            for base, vals in core.words(lo, hi):
                for k, v in enumerate(vals):
                    if self.lo <= v < self.hi:
                        j = self.find(v)
                        if j is not None:
                            self.roots[j].append(("mem", base + 8 * k))
        for i, (a, s) in enumerate(nodes):
            for base, vals in core.words(a, a + s):
                for k, v in enumerate(vals):
                    if self.lo <= v < self.hi:
                        j = self.find(v)
                        if j is not None:
                            off = base + 8 * k - a
                            self.out[i].append((off, j))
                            self.inn[j].append((i, off))
        self._reach()

    def find(self, v):
        i = bisect.bisect_right(self.addr, v) - 1
        if i < 0:
            return None
        if self.exact:
            return i if v == self.addr[i] else None
        return i if v < self.addr[i] + self.size[i] else None

    def _reach(self):
        n = len(self.addr)
        self.dist = [None] * n
        frontier = [j for j in range(n) if self.roots[j]]
        for j in frontier:
            self.dist[j] = 1
        while frontier:
            nxt = []
            for i in frontier:
                for _, j in self.out[i]:
                    if self.dist[j] is None:
                        self.dist[j] = self.dist[i] + 1
                        nxt.append(j)
            frontier = nxt
        self.leaked = {self.addr[j] for j in range(n) if self.dist[j] is None}
        self.unreferenced = {self.addr[j] for j in range(n) if self.dist[j] is None and
                             not any(i != j for i, _ in self.inn[j])}

    def chain(self, target):
        """(root, [(address, offset)...], npaths): a shortest chain to the node
        containing target and the number of distinct shortest chains (words)."""
        j = self.find(target)
        if j is None:
            raise AssertionError("%#x is not a node" % target)
        if self.dist[j] is not None:
            dist, heads = self.dist, None
        else:
            dist, heads = self._leaked_dist(), True
        if dist[j] is None:
            return None, [], 0
        count = {}

        def paths(k):
            if k not in count:
                first = 0 if heads else 1
                if dist[k] == first:
                    count[k] = 1 if heads else len(self.roots[k])
                else:
                    count[k] = sum(paths(i) for i, _ in self.inn[k] if dist[i] == dist[k] - 1)
            return count[k]

        npaths = paths(j)
        hops = [(self.addr[j], None)]
        k = j
        first = 0 if heads else 1
        while dist[k] != first:
            i, off = next((i, off) for i, off in sorted(self.inn[k]) if dist[i] == dist[k] - 1)
            hops.insert(0, (self.addr[i], off))
            k = i
        root = None if heads else sorted(self.roots[k])[0]
        return root, hops, npaths

    def _leaked_dist(self):
        if not hasattr(self, "_ldist"):
            n = len(self.addr)
            d = [None] * n
            frontier = [self.index[a] for a in self.unreferenced]
            for j in frontier:
                d[j] = 0
            while frontier:
                nxt = []
                for i in frontier:
                    for _, j in self.out[i]:
                        if d[j] is None and self.dist[j] is None:
                            d[j] = d[i] + 1
                            nxt.append(j)
                frontier = nxt
            self._ldist = d
        return self._ldist

    def referrers(self, target):
        j = self.find(target)
        refs = [("mem", r[1]) if r[0] == "mem" else r for r in self.roots[j]]
        refs += [("alloc", self.addr[i], off) for i, off in self.inn[j]]
        return sorted(refs, key=repr)

    def retained(self):
        """Retained sizes from the dominator tree of the anchored graph."""
        n = len(self.addr)
        R = n
        succ = {R: sorted({j for j in range(n) if self.roots[j] and self.dist[j] is not None})}
        for i in range(n):
            if self.dist[i] is not None:
                succ[i] = sorted({j for _, j in self.out[i]})
        order, seen, stack = [], {R}, [(R, iter(succ[R]))]
        while stack:
            v, it = stack[-1]
            w = next(it, None)
            if w is None:
                order.append(v)
                stack.pop()
            elif w not in seen:
                seen.add(w)
                stack.append((w, iter(succ[w])))
        rpo = order[::-1]
        num = {v: k for k, v in enumerate(rpo)}
        preds = {v: [] for v in rpo}
        for v in rpo:
            for w in succ[v]:
                preds[w].append(v)
        idom = {R: R}

        def intersect(a, b):
            while a != b:
                while num[a] > num[b]:
                    a = idom[a]
                while num[b] > num[a]:
                    b = idom[b]
            return a

        changed = True
        while changed:
            changed = False
            for v in rpo[1:]:
                ps = [p for p in preds[v] if p in idom]
                new = ps[0]
                for p in ps[1:]:
                    new = intersect(p, new)
                if idom.get(v) != new:
                    idom[v] = new
                    changed = True
        ret = {v: self.size[v] for v in rpo if v != R}
        cnt = {v: 1 for v in rpo if v != R}
        for v in order:                 # postorder: children before parents
            if v != R and idom[v] != R:
                ret[idom[v]] += ret[v]
                cnt[idom[v]] += cnt[v]
        # The dominator parent (None: a child of the roots) and the subtree's count.
        self.idom = {self.addr[v]: (None if idom[v] == R else self.addr[idom[v]]) for v in rpo if v != R}
        self.subtree_count = {self.addr[v]: c for v, c in cnt.items()}
        return {self.addr[v]: r for v, r in ret.items()}


# --- fixtures and truth ------------------------------------------------------------------------

_oracles = {}
_cores = {}


def core_path(fixture, kind):
    try:
        return hslib.core(fixture, kind)
    except AssertionError:
        raise AssertionError("%s.%s.core is missing (run BUILD=%s cores/make-leak-cores.sh)"
                             % (fixture, kind, os.path.relpath(hslib.BUILD, hslib.ROOT)))


def oracle(fixture, kind, exact=False):
    key = (fixture, kind, exact)
    if key not in _oracles:
        if (fixture, kind) not in _cores:
            _cores[(fixture, kind)] = Core(core_path(fixture, kind))
        _oracles[key] = Oracle(_cores[(fixture, kind)], hslib.truth(fixture, kind), exact)
    return _oracles[key]


def hex_symbol(name):
    """The truth's "g_registry+8" as heapscope writes every offset: "g_registry+0x8"."""
    if name is None:
        return None
    base, plus, off = name.rpartition("+")
    return "%s+%#x" % (base, int(off)) if plus and off.isdigit() else name


def root_key(r):
    """A root as (kind, where): the word's address, or the register and thread."""
    if r["kind"] == "register":
        return ("register", r.get("thread"), r.get("register"))
    return (r["kind"], r.get("address"))


class Base:
    fixture = kind = None
    opts = ()

    def setUp(self):
        self.core = core_path(self.fixture, self.kind)
        self.truth = hslib.truth(self.fixture, self.kind)
        self.lk = self.truth["leaks"]
        self.objs = {o["address"]: o for o in self.lk["objects"]}
        self.leaked = {a for a, o in self.objs.items() if o["leaked"]}
        self.heads = {a for a, o in self.objs.items() if o["unreferenced"]}

    def label(self, addr):
        o = self.objs.get(addr)
        if o:
            return "%#x (%s, %d bytes)" % (addr, o["label"], o["size"])
        for f in self.truth["freed"]:
            if f["address"] == addr:
                return "%#x (free chunk on %s, %d bytes)" % (addr, f["expect"], f["size"])
        for r in self.truth["internal"]:
            if r["address"] == addr:
                return "%#x (libc-internal: %s, %d bytes)" % (addr, r["what"], r["size"])
        return "%#x (not a truth object)" % addr


# --- the fixture's truth, checked without heapscope ---------------------------------------------

class FixtureCase(Base):
    def test_glibc_view_matches_truth(self):
        path = os.path.join(hslib.CORES, "%s.%s.validation" % (self.fixture, self.kind))
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines and lines[-1] == "validation: OK",
                        "%s:\n%s" % (path, "\n".join(l for l in lines if l.startswith("PROBLEM"))))

    def test_gdb_leak_facts(self):
        path = os.path.join(hslib.CORES, "%s.%s.leakcheck" % (self.fixture, self.kind))
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines and lines[-1] == "leak validation: OK",
                        "%s:\n%s" % (path, "\n".join(l for l in lines if l.startswith("PROBLEM"))))

    def test_oracle_leaked_set(self):
        o = oracle(self.fixture, self.kind)
        bad = ["oracle finds leaked, truth anchored: " + self.label(a) for a in sorted(o.leaked - self.leaked)]
        bad += ["truth leaked, oracle finds anchored: " + self.label(a) for a in sorted(self.leaked - o.leaked)]
        self.assertFalse(bad, listing(bad))

    def test_oracle_unreferenced_set(self):
        o = oracle(self.fixture, self.kind)
        bad = ["oracle: head, truth: not " + self.label(a) for a in sorted(o.unreferenced - self.heads)]
        bad += ["truth: head, oracle: not " + self.label(a) for a in sorted(self.heads - o.unreferenced)]
        self.assertFalse(bad, listing(bad))

    def test_oracle_chains_unique_and_equal(self):
        o = oracle(self.fixture, self.kind)
        bad = []
        for c in self.lk["chains"]:
            root, hops, npaths = o.chain(c["target"])
            want = [(h["address"], h["offset"]) for h in c["hops"]]
            if npaths > 1:
                bad.append("%s: %d shortest chains" % (c["label"], npaths))
            if hops != want:
                bad.append("%s: oracle hops %s, truth %s" % (c["label"], hops, want))
            if c["root"] is None:
                if root is not None:
                    bad.append("%s: oracle root %s, truth none" % (c["label"], root))
            else:
                want_root = (("reg", c["root"]["thread"], c["root"]["register"])
                             if c["root"]["kind"] == "register" else ("mem", c["root"]["address"]))
                if root != want_root:
                    bad.append("%s: oracle root %s, truth %s" % (c["label"], root, want_root))
        self.assertFalse(bad, listing(bad))

    def test_oracle_referrers(self):
        o = oracle(self.fixture, self.kind)
        bad = []
        for r in self.lk["refs"]:
            want = sorted([("alloc", x["address"], x["offset"]) if x["kind"] == "allocation" else
                           ("reg", x["thread"], x["register"]) if x["kind"] == "register" else
                           ("mem", x["address"]) for x in r["referrers"]], key=repr)
            got = o.referrers(r["target"])
            if got != want:
                bad.append("%s: oracle %s, truth %s" % (r["label"], got, want))
        self.assertFalse(bad, listing(bad))

    def test_oracle_retained(self):
        self.assertTrue(self.lk["tree"], "every leak fixture has a tree")
        ret = oracle(self.fixture, self.kind).retained()
        bad = ["tree node %d %#x: oracle %s, truth %d" % (t["id"], t["address"], ret.get(t["address"]),
                                                         t["retained"])
               for t in self.lk["tree"] if ret.get(t["address"]) != t["retained"]]
        self.assertFalse(bad, listing(bad))


# --- heapscope against the truth ----------------------------------------------------------------

class LeakCase(Base):
    def run_json(self, *args, opts=None):
        o = list(self.opts) if opts is None else list(opts)
        doc = hslib.run_json(o + [self.core] + list(args), TIMEOUT)
        self.assertEqual(doc.get("command"), args[0], "the document's \"command\"")
        return doc

    def listed(self, *extra, opts=None):
        doc = self.run_json("leaks", "--list", "--limit", str(BIG), *extra, opts=opts)
        self.assertIn("objects", doc, "leaks --list has no \"objects\"")
        return doc, {x["address"]: x for x in doc["objects"]}

    def truth_totals(self, addrs):
        return {"count": len(addrs), "bytes": sum(self.objs[a]["size"] for a in addrs)}

    def set_problems(self, got, want, what):
        bad = ["%s by heapscope, not in the truth: %s" % (what, self.label(a)) for a in sorted(got - want)]
        bad += ["%s in the truth, not by heapscope: %s" % (what, self.label(a)) for a in sorted(want - got)]
        return bad

    def test_jobs_agree(self):
        """One thread and two print the same: the stages split over threads
        (walk, scan, reachability, types, inference, containers) apply what
        the threads found in one order."""
        for cmd in (("leaks", "--list", "--limit", str(BIG)), ("histogram",), ("top",), ("owners",)):
            one = self.run_json(*cmd, opts=list(self.opts) + ["--jobs", "1"])
            two = self.run_json(*cmd, opts=list(self.opts) + ["--jobs", "2"])
            self.assertEqual(one, two, "%s: --jobs 1 and --jobs 2 differ" % " ".join(cmd))

    def test_jobs_agree_when_no_thread_starts(self):
        """--jobs 2 where no second thread can start (the test hook makes
        every split stage run its parts on one thread, as when
        pthread_create fails) prints what --jobs 1 prints."""
        cmd = ("leaks", "--list", "--limit", str(BIG))
        one = self.run_json(*cmd, opts=list(self.opts) + ["--jobs", "1"])
        os.environ["HEAPSCOPE_TEST_NO_THREADS"] = "1"
        try:
            for c in (cmd, ("histogram",)):
                two = self.run_json(*c, opts=list(self.opts) + ["--jobs", "2"])
                want = one if c == cmd else self.run_json(*c, opts=list(self.opts) + ["--jobs", "1"])
                self.assertEqual(want, two, "%s: --jobs 2 without threads differs" % " ".join(c))
        finally:
            del os.environ["HEAPSCOPE_TEST_NO_THREADS"]

    def test_jobs_agree_in_small_splits(self):
        """--jobs 2 with the type stages' work cut into pieces of a few
        entries (the test hook), so that a small fixture goes through many
        rounds of their pipelines (one thread types a stretch of the queue
        while the other reads the next), prints what --jobs 1 prints."""
        for c in (("leaks", "--list", "--limit", str(BIG)), ("histogram",)):
            one = self.run_json(*c, opts=list(self.opts) + ["--jobs", "1"])
            os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"] = "1"
            try:
                two = self.run_json(*c, opts=list(self.opts) + ["--jobs", "2"])
            finally:
                del os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"]
            self.assertEqual(one, two, "%s: --jobs 2 in small splits differs" % " ".join(c))

    # summary

    def test_summary_leaked_and_unreferenced(self):
        s = self.run_json("summary", "--leaks")
        self.assertEqual((s.get("leaked"), s.get("unreferenced")),
                         (self.truth_totals(self.leaked), self.truth_totals(self.heads)),
                         "summary (leaked, unreferenced) vs truth")

    # leaks

    def test_leaked_set_exact(self):
        _, objs = self.listed()
        self.assertFalse(self.set_problems(set(objs), self.leaked, "leaked"),
                         listing(self.set_problems(set(objs), self.leaked, "leaked")))

    def test_unreferenced_set_exact(self):
        _, objs = self.listed()
        got = {a for a, x in objs.items() if x.get("unreferenced")}
        bad = self.set_problems(got, self.heads, "unreferenced")
        self.assertFalse(bad, listing(bad))

    def test_no_free_chunk_reported_leaked(self):
        _, objs = self.listed()
        bad = [self.label(f["address"]) for f in self.truth["freed"] if f["address"] in objs]
        self.assertFalse(bad, "free chunks reported leaked:\n" + listing(bad))

    def test_stale_pointers_in_free_chunks_anchor_nothing(self):
        _, objs = self.listed()
        bad = []
        for s in self.lk["stale"]:
            for w in s["words"]:
                x = objs.get(w["value"])
                if x is None:
                    bad.append("%s: %s (stale word +%d of the freed %s array) is not reported leaked"
                               % (s["label"], self.label(w["value"]), w["offset"], s["expect"]))
                elif not x.get("unreferenced"):
                    bad.append("%s: %s is leaked but not unreferenced: the stale word counted as a referrer"
                               % (s["label"], self.label(w["value"])))
        self.assertFalse(bad, listing(bad))

    def test_allocator_metadata_anchors_nothing(self):
        _, objs = self.listed()
        bad = ["%s is not reported leaked" % self.label(a) for a, o in self.objs.items()
               if o["label"].startswith(("trap", "c++ trap")) and a not in objs]
        self.assertFalse(bad, "main_arena / malloc_state words (top, bins, fastbinsY) point at the last "
                         "word of these chunks and must not anchor them:\n" + listing(bad))

    def test_leaks_totals(self):
        doc, _ = self.listed()
        self.assertEqual((doc.get("leaked"), doc.get("unreferenced")),
                         (self.truth_totals(self.leaked), self.truth_totals(self.heads)))

    def test_leaks_object_fields(self):
        _, objs = self.listed()
        bad = []
        for a in sorted(self.leaked & set(objs)):
            o, x = self.objs[a], objs[a]
            want = {"address": a, "size": o["size"], "unreferenced": o["unreferenced"], "type": o["type"]}
            got = {k: x.get(k) for k in want}
            if got != want:
                bad.append("%s: heapscope %s, truth %s" % (o["label"], got, want))
        self.assertFalse(bad, listing(bad))

    def test_leaks_groups(self):
        doc, _ = self.listed()
        want = {}
        for a in self.leaked:
            o = self.objs[a]
            g = want.setdefault((o["type"], o["size"]), {"count": 0, "bytes": 0, "unreferenced": 0})
            g["count"] += 1
            g["bytes"] += o["size"]
            g["unreferenced"] += o["unreferenced"]
        got = {}
        for g in doc.get("groups", []):
            k = (g.get("type"), g.get("size"))
            self.assertNotIn(k, got, "group (type, size) %s listed twice" % (k,))
            got[k] = {"count": g.get("count"), "bytes": g.get("bytes"), "unreferenced": g.get("unreferenced")}
        bad = ["group %s: heapscope %s, truth %s" % (k, got.get(k), want.get(k))
               for k in sorted(set(got) | set(want), key=repr) if got.get(k) != want.get(k)]
        self.assertFalse(bad, listing(bad))

    def test_leaks_min_size(self):
        n = 100
        _, objs = self.listed("--min-size", str(n))
        want = {a for a in self.leaked if self.objs[a]["size"] >= n}
        bad = self.set_problems(set(objs), want, "leaked with --min-size %d" % n)
        self.assertFalse(bad, listing(bad))

    def test_leaks_limit(self):
        # --limit bounds the objects listed; the totals stay those of every leak.
        doc = self.run_json("leaks", "--list", "--limit", "3")
        self.assertEqual(len(doc.get("objects", [])), min(3, len(self.leaked)),
                         "--list --limit 3 lists %d objects" % len(doc.get("objects", [])))
        self.assertTrue(set(x["address"] for x in doc["objects"]) <= self.leaked)
        self.assertEqual(doc.get("leaked"), self.truth_totals(self.leaked), "totals with --limit 3")

    # histogram

    def histogram(self, *args):
        doc = self.run_json("histogram", *args)
        self.assertIn("groups", doc)
        return doc["groups"]

    def aggregate(self, groups, key):
        out = {}
        for g in groups:
            k = key(g)
            c = out.setdefault(k, {"count": 0, "bytes": 0})
            c["count"] += g.get("count", 0)
            c["bytes"] += g.get("bytes", 0)
        return out

    def truth_aggregate(self, addrs, key):
        out = {}
        for a in addrs:
            c = out.setdefault(key(self.objs[a]), {"count": 0, "bytes": 0})
            c["count"] += 1
            c["bytes"] += self.objs[a]["size"]
        return out

    def compare(self, got, want, what):
        bad = ["%s %r: heapscope %s, truth %s" % (what, k, got.get(k), want.get(k))
               for k in sorted(set(got) | set(want), key=repr) if got.get(k) != want.get(k)]
        self.assertFalse(bad, listing(bad))

    def test_histogram_leaked_by_type(self):
        groups = self.histogram("--leaked", "--by", "type")
        self.compare(self.aggregate(groups, lambda g: g.get("type")),
                     self.truth_aggregate(self.leaked, lambda o: o["type"]), "type")

    def test_histogram_leaked_by_size(self):
        groups = self.histogram("--leaked", "--by", "size")
        self.compare(self.aggregate(groups, lambda g: g.get("size")),
                     self.truth_aggregate(self.leaked, lambda o: o["size"]), "size")

    def test_histogram_leaked_default(self):
        groups = self.histogram("--leaked")
        self.compare(self.aggregate(groups, lambda g: g.get("type")),
                     self.truth_aggregate(self.leaked, lambda o: o["type"]), "type")

    def test_histogram_used_names_truth_types(self):
        groups = self.aggregate(self.histogram("--used", "--by", "type"), lambda g: g.get("type"))
        used = set(self.objs)
        want = self.truth_aggregate(used, lambda o: o["type"])
        bad = ["type %r: heapscope %s, truth %s" % (t, groups.get(t), w)
               for t, w in sorted(want.items(), key=repr) if t is not None and groups.get(t) != w]
        self.assertFalse(bad, listing(bad))

    def test_histogram_free_matches_chunks(self):
        chunks = hslib.run_json(list(self.opts) + [self.core, "chunks"], TIMEOUT)["allocations"]
        want = {}
        for a in chunks:
            if a["state"] == "free":
                c = want.setdefault(a["size"], {"count": 0, "bytes": 0})
                c["count"] += 1
                c["bytes"] += a["size"]
        self.compare(self.aggregate(self.histogram("--free", "--by", "size"), lambda g: g.get("size")),
                     want, "free size")

    # chain

    def expect_chain(self, c):
        chain = []
        if c["root"] is not None:
            r = c["root"]
            want = {"kind": r["kind"], "address": r["address"] if r["kind"] != "register" else None,
                    "thread": r["thread"] if r["kind"] != "global" else None}
            if r["kind"] == "global":
                want["symbol"] = hex_symbol(r["symbol"])
            if r["kind"] == "stack":
                want["function"] = r["function"]
            if r["kind"] == "register":
                want["register"] = r["register"]
            chain.append(want)
        for h in c["hops"]:
            o = self.objs[h["address"]]
            chain.append({"kind": "allocation", "address": h["address"], "size": o["size"],
                          "offset": h["offset"], "type": o["type"], "field": h["field"]})
        return chain

    def chain_problems(self, c, doc):
        bad = []
        if doc.get("anchored") != c["anchored"]:
            bad.append("anchored %s, truth %s" % (doc.get("anchored"), c["anchored"]))
        alloc = doc.get("allocation") or {}
        tgt = self.objs[c["hops"][-1]["address"]] if c["hops"] else self.objs[c["target"]]
        if (alloc.get("address"), alloc.get("size"), alloc.get("state")) != (tgt["address"], tgt["size"], "used"):
            bad.append("allocation %s, truth address %#x size %d used" % (alloc, tgt["address"], tgt["size"]))
        got, want = doc.get("chain", []), self.expect_chain(c)
        if len(got) != len(want):
            bad.append("%d elements, truth %d:\n      heapscope %s\n      truth     %s" % (len(got), len(want), got, want))
            return bad
        for i, (g, w) in enumerate(zip(got, want)):
            diff = {k: (g.get(k), v) for k, v in w.items() if g.get(k) != v}
            if diff:
                bad.append("element %d (%s): %s" % (i, w["kind"], ", ".join(
                    "%s heapscope %r truth %r" % (k, a, b) for k, (a, b) in sorted(diff.items()))))
        return bad

    def test_chains(self):
        bad = []
        for c in self.lk["chains"]:
            doc = self.run_json("chain", "%#x" % c["target"])
            if doc.get("target") != c["target"]:
                bad.append("%s: target %s, truth %#x" % (c["label"], doc.get("target"), c["target"]))
            bad += ["%s: %s" % (c["label"], p) for p in self.chain_problems(c, doc)]
        self.assertFalse(bad, listing(bad, 40))

    def test_chain_to_interior_address(self):
        c = next((c for c in self.lk["chains"] if self.objs[c["target"]]["interior_only"]), None)
        self.assertIsNotNone(c, "every leak fixture has an interior-pointed object")
        addr = c["target"] + 50
        doc = self.run_json("chain", "%#x" % addr)
        self.assertEqual(doc.get("target"), addr, "\"target\" is the ADDR asked for")
        bad = self.chain_problems(c, doc)
        self.assertFalse(bad, listing(bad))

    def test_chain_of_a_cycle_is_empty(self):
        cs = [c for c in self.lk["chains"] if not c["anchored"] and not c["hops"]]
        self.assertTrue(cs, "every leak fixture has a headless cycle")
        for c in cs:
            doc = self.run_json("chain", "%#x" % c["target"])
            self.assertEqual((doc.get("anchored"), doc.get("chain")), (False, []), c["label"])

    # refs

    def test_refs(self):
        bad = []
        for r in self.lk["refs"]:
            doc = self.run_json("refs", "%#x" % r["target"])
            alloc = doc.get("allocation") or {}
            if alloc.get("address") != r["target"]:
                bad.append("%s: allocation %s" % (r["label"], alloc))
            want, got = {}, {}
            for x in r["referrers"]:
                if x["kind"] == "allocation":
                    want[("allocation", x["address"], x["offset"])] = {}
                else:
                    w = {"thread": x["thread"] if x["kind"] != "global" else None}
                    if x["kind"] == "global":
                        w["symbol"] = hex_symbol(x["symbol"])
                    if x["kind"] == "stack":
                        w["function"] = x["function"]
                    want[root_key(x)] = w
            for x in doc.get("referrers", []):
                k = (("allocation", x.get("address"), x.get("offset")) if x.get("kind") == "allocation"
                     else root_key(x))
                got[k] = x
            for k in sorted(set(got) | set(want), key=repr):
                if k not in got:
                    bad.append("%s: referrer %s missing" % (r["label"], k))
                elif k not in want:
                    bad.append("%s: referrer %s is not in the truth: %s" % (r["label"], k, got[k]))
                else:
                    diff = {f: (got[k].get(f), v) for f, v in want[k].items() if got[k].get(f) != v}
                    if diff:
                        bad.append("%s: referrer %s: %s" % (r["label"], k, diff))
        self.assertFalse(bad, listing(bad, 40))

    # top

    def test_top_retained(self):
        self.assertTrue(self.lk["tree"], "every leak fixture has a tree")
        doc, rows = self.top_rows("--limit", str(BIG), "--depth", "100")
        rets = [x.get("retained") for x in doc.get("objects", [])]
        self.assertEqual(rets, sorted(rets, reverse=True), "top is not sorted by retained, descending")
        by = {x["address"]: x for x, _, _ in rows}
        bad = []
        for t in self.lk["tree"]:
            x = by.get(t["address"])
            want = {"size": t["size"], "retained": t["retained"], "type": self.objs[t["address"]]["type"]}
            got = {k: x.get(k) for k in want} if x else None
            if got != want:
                bad.append("tree node %d %#x (parent %d): heapscope %s, truth %s"
                           % (t["id"], t["address"], t["parent"], got, want))
        self.assertFalse(bad, listing(bad))

    def test_top_limit(self):
        doc = self.run_json("top", "--limit", "5")
        self.assertEqual(len(doc.get("objects", [])), 5)
        self.assertEqual(doc.get("truncated"), True)
        self.assertGreater(doc.get("total", 0), 5)

    def top_rows(self, *args):
        """top's tree as [(row, parent row or None, top-level row)] in output order."""
        doc = self.run_json("top", *args)
        rows, stack = [], [(x, None, x) for x in reversed(doc.get("objects", []))]
        while stack:
            x, parent, top = stack.pop()
            rows.append((x, parent, top))
            stack.extend((k, x, top) for k in reversed(x.get("children", [])))
        return doc, rows

    def test_top_is_the_dominator_tree(self):
        """Every allocation once, under its immediate dominator (the oracle's, on the
        anchored graph), with the retained bytes and count of its subtree; every
        level sorted by retained."""
        o = oracle(self.fixture, self.kind)
        ret = o.retained()
        doc, rows = self.top_rows("--limit", str(BIG), "--depth", "100")
        bad = []
        seen = {}
        for x, parent, _ in rows:
            if x["address"] in seen:
                bad.append("%s listed twice" % self.label(x["address"]))
            seen[x["address"]] = parent["address"] if parent else None
            kids = [k["retained"] for k in x.get("children", [])]
            if kids != sorted(kids, reverse=True) or x.get("children_more") != 0:
                bad.append("%s: children not sorted or not all listed" % self.label(x["address"]))
        for a, obj in self.objs.items():
            if a not in seen:
                bad.append("%s is in no row" % self.label(a))
            elif not obj["leaked"] and a in o.idom and seen[a] != o.idom[a]:
                bad.append("%s: under %s, its immediate dominator is %s" % (
                    self.label(a), self.label(seen[a]) if seen[a] else "the roots",
                    self.label(o.idom[a]) if o.idom[a] else "the roots"))
        for x, _, _ in rows:
            a = x["address"]
            if a in ret and (x["retained"], x["retained_count"]) != (ret[a], o.subtree_count[a]):
                bad.append("%s: retained %d in %d, oracle %d in %d" % (
                    self.label(a), x["retained"], x["retained_count"], ret[a], o.subtree_count[a]))
        tops = [x["retained"] for x in doc["objects"]]
        if tops != sorted(tops, reverse=True):
            bad.append("top-level rows not sorted by retained")
        if (doc.get("total"), doc.get("truncated")) != (len(doc["objects"]), False):
            bad.append("total %s truncated %s with every row listed" % (doc.get("total"), doc.get("truncated")))
        self.assertFalse(bad, listing(bad))

    def test_top_folds_a_list_into_one_row(self):
        """A list from a global (leaks: g_chain -> a -> b -> target) is one row
        retaining its nodes: the truth's longest chain where each hop dominates the next."""
        o = oracle(self.fixture, self.kind)
        o.retained()
        lists = [c for c in self.lk["chains"] if c["root"] and len(c["hops"]) >= 2 and
                 o.idom.get(c["hops"][0]["address"], 0) is None and
                 all(o.idom.get(h["address"]) == p["address"] for p, h in zip(c["hops"], c["hops"][1:]))]
        self.assertTrue(lists, "every leak fixture has a list held by a global")
        c = max(lists, key=lambda c: len(c["hops"]))
        head = c["hops"][0]["address"]
        doc = self.run_json("top", "--limit", str(BIG))
        rows = {x["address"]: x for x in doc["objects"]}
        self.assertIn(head, rows)
        self.assertEqual(rows[head]["retained_count"], o.subtree_count[head])
        self.assertGreaterEqual(rows[head]["retained_count"], len(c["hops"]))
        for h in c["hops"][1:]:
            self.assertNotIn(h["address"], rows, "%s is folded under its head" % self.label(h["address"]))
        self.assertNotIn("children", rows[head], "without --depth nothing is unfolded")

    def test_top_owners(self):
        """OWNER on every row: the root of its top-level row, as the truth's chains
        name it (when that root is the block's only one); leaked rows are owned by none."""
        o = oracle(self.fixture, self.kind)
        _, rows = self.top_rows("--limit", str(BIG), "--depth", "100")
        by = {x["address"]: x for x, _, _ in rows}
        bad = []
        for x, _, top in rows:
            if x["owner"] != top["owner"]:
                bad.append("%s: owner %s, its top-level row's %s" % (self.label(x["address"]), x["owner"], top["owner"]))
            if x["leaked"] != (top["owner"]["kind"] == "leaked"):
                bad.append("%s: leaked %s, owner %s" % (self.label(x["address"]), x["leaked"], top["owner"]))
        checked = 0
        for c in self.lk["chains"]:
            if not c["root"] or not c["hops"]:
                continue
            first = c["hops"][0]["address"]
            j = o.find(first)
            if len(o.roots[j]) != 1 or first not in by:
                continue
            r, got = c["root"], by[first]["owner"]
            want = {"kind": r["kind"], "address": r["address"] if r["kind"] != "register" else None,
                    "thread": r["thread"] if r["kind"] != "global" else None,
                    "symbol": hex_symbol(r["symbol"]) if r["kind"] == "global" else None,
                    "function": r["function"] if r["kind"] == "stack" else None,
                    "register": r["register"] if r["kind"] == "register" else None}
            name = {"global": hex_symbol(r["symbol"]), "tls": "thread %s TLS" % r["thread"],
                    "stack": "thread %s %s()" % (r["thread"], r["function"]),
                    "register": "thread %s register %s" % (r["thread"], r["register"])}[r["kind"]]
            want["name"] = name
            diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
            if diff:
                bad.append("%s: owner %s" % (c["label"], diff))
            checked += 1
        self.assertGreaterEqual(checked, 5, "chains whose first hop has one root")
        self.assertFalse(bad, listing(bad))

    def test_top_shared_owners(self):
        """A top-level row that several roots reach is owned by 'shared: A, B, C
        [and more]': the roots of rooted rows that reach it, through shared rows
        too (leaks_cpp.cc: s3's referrers s1 and s2 are shared), each once."""
        o = oracle(self.fixture, self.kind)
        o.retained()
        _, rows = self.top_rows("--limit", str(BIG))
        tops = [x for x, _, top in rows if x is top]
        rooted = {x["address"]: x["owner"]["name"] for x in tops if x["owner"]["kind"] not in ("shared", "leaked")}
        reach = {}
        for a in rooted:
            seen, todo = {o.index[a]}, [o.index[a]]
            while todo:
                for _, j in o.out[todo.pop()]:
                    if j not in seen:
                        seen.add(j)
                        todo.append(j)
            reach[a] = {o.addr[j] for j in seen}
        bad, shared = [], 0
        for x in tops:
            if x["owner"]["kind"] != "shared":
                continue
            shared += 1
            name = x["owner"]["name"]
            valid = {rooted[a] for a in rooted if x["address"] in reach[a]}
            got = name[len("shared: "):].replace(" and more", "").split(", ") if name.startswith("shared: ") else []
            more = name.endswith(" and more")
            if (not got or len(got) != len(set(got)) or not set(got) <= valid or
                    len(got) != min(3, len(valid)) or more != (len(valid) > 3)):
                bad.append("%s: owner %r, the roots reaching it %s" % (self.label(x["address"]), name, sorted(valid)))
        if self.fixture == "leaks_cpp":
            self.assertGreaterEqual(shared, 3, "leaks_cpp.cc's s1, s2 and s3")
            s3 = next(a for a, ob in self.objs.items() if ob["label"] == "shared s3")
            self.assertEqual([x["owner"]["name"] for x in tops if x["address"] == s3],
                             ["shared: g_share, g_share+0x8, g_share+0x10 and more"])
            # The text's OWNER column (at most 40 wide): the roots that fit
            # whole, the columns after it still aligned.
            text = hslib.run(list(self.opts) + [self.core, "top", "--limit", str(BIG)]).stdout
            lines = text.splitlines()
            head = next(k for k, ln in enumerate(lines) if ln.lstrip().startswith("ADDRESS"))
            col, typed = lines[head].index("OWNER"), lines[head].index("TYPE")
            self.assertLessEqual(typed - col - 1, 40, lines[head])
            row = next(ln for ln in lines if ("%016x" % s3) in ln)
            self.assertEqual(row[col:typed].rstrip(), "shared: g_share, g_share+0x8 and more", row)
            for ln in lines[head + 1:]:
                if ln.lstrip().startswith("0x"):
                    self.assertEqual(ln[typed - 1], " ", "the column before TYPE: %r" % ln)
                    self.assertNotEqual(ln[typed], " ", "TYPE where the header has it: %r" % ln)
        self.assertFalse(bad, listing(bad))

    # show

    def test_show(self):
        bad = []
        for a, o in sorted(self.objs.items()):
            doc = self.run_json("show", "%#x" % a)
            want = {"anchored": not o["leaked"], "leaked": o["leaked"], "type": o["type"]}
            got = {k: doc.get(k) for k in want}
            if got != want:
                bad.append("%s: heapscope %s, truth %s" % (o["label"], got, want))
        for f in self.truth["freed"][:6]:
            doc = self.run_json("show", "%#x" % f["address"])
            if doc.get("leaked") is not False:
                bad.append("%s: leaked %s" % (self.label(f["address"]), doc.get("leaked")))
        self.assertFalse(bad, listing(bad, 40))

    # show decodes (issue 14, item 4) and leak samples (item 5)

    # The members of the C fixture's structs (cores/leaks.c), in offset order.
    C_MEMBERS = {"node": ["id", "next"], "tnode": ["id", "left", "right", "weight"],
                 "entry": ["id", "key", "next", "opaque"], "config": ["version", "entries", "nentries", "name"],
                 "tls_obj": ["tag", "data"]}

    def core_mem(self):
        if (self.fixture, self.kind) not in _cores:
            _cores[(self.fixture, self.kind)] = Core(self.core)
        return _cores[(self.fixture, self.kind)]

    def field_problems(self, where, obj, fields):
        """Members of a typed truth object: the fixture's names, pointers and ints as the core holds them."""
        mem = self.core_mem()
        bad = []
        names = [f["name"] for f in fields]
        want = self.C_MEMBERS.get(obj["type"])
        if want is not None and names != want[:len(names)]:
            bad.append("%s: members %s, the fixture's %s" % (where, names, want))
        for f in fields:
            if f["value"] is None:
                continue
            word = mem.u64(obj["address"] + f["offset"] - f["offset"] % 8)
            v = (word >> (8 * (f["offset"] % 8))) & ((1 << (8 * f["size"])) - 1)
            if f["value"] != v:
                bad.append("%s: .%s = %#x, the core holds %#x" % (where, f["name"], f["value"], v))
            if f["size"] == 8 and f["name"] in ("next", "left", "right", "entries"):
                text = "NULL" if not v else "%#x -> " % v
                if not f["text"].startswith(text):
                    bad.append("%s: .%s text %r" % (where, f["name"], f["text"]))
            elif f["size"] == 4 and str(v if v < 1 << 31 else v - (1 << 32)) != f["text"]:
                bad.append("%s: .%s text %r, value %d" % (where, f["name"], f["text"], v))
        return bad

    def test_show_typed_fields(self):
        if self.fixture != "leaks":
            return   # C structs: the C++ fixture's classes are checked by test_leak_group_samples
        bad, checked = [], 0
        for a, o in sorted(self.objs.items()):
            if o["type"] not in self.C_MEMBERS:
                continue
            doc = self.run_json("show", "%#x" % a)
            fields = doc.get("fields") or []
            if not fields:
                bad.append("%s: no fields" % o["label"])
                continue
            checked += 1
            bad += self.field_problems(o["label"], o, fields)
        self.assertGreater(checked, 20)
        self.assertFalse(bad, listing(bad))

    def test_show_decodes_safe_links(self):
        mem = self.core_mem()
        bad, linked = [], 0
        freed = {f["address"]: f for f in self.truth["freed"]}
        for f in self.truth["freed"]:
            if f["expect"] not in ("tcache", "fastbin"):
                continue
            w = self.run_json("show", "%#x" % f["address"], "--bytes", "8")["words"][0]
            d = mem.u64(f["address"]) ^ (f["address"] >> 12)
            if w.get("decoded") != d:
                bad.append("%s: decoded %s, the core's link decodes to %#x" % (self.label(f["address"]), w.get("decoded"), d))
                continue
            if f["expect"] == "fastbin" and d:
                d += 16     # a fastbin links chunk headers, 16 bytes before the blocks
            if d and (d not in freed or freed[d]["expect"] != f["expect"] or freed[d]["size"] != f["size"]):
                bad.append("%s: decodes to %s, not the next entry of its list" % (self.label(f["address"]), self.label(d)))
            linked += d != 0
        self.assertGreater(linked, 3, "tcache entries linked to others")
        self.assertFalse(bad, listing(bad))

    def test_show_squeezes_equal_words(self):
        """The text dump of every truth object: one line per word, a run of 3 or
        more equal words as the first and one '*' line, exactly as the core's words say."""
        mem = self.core_mem()
        bad, squeezed = [], 0
        for a, o in sorted(self.objs.items())[:40]:
            n = min(o["size"], 256) // 8
            words = [mem.u64(a + 8 * k) for k in range(n)]
            want, k = [], 0
            while k < n:
                j = k
                while j + 1 < n and words[j + 1] == words[k]:
                    j += 1
                want.append("+0x%04x %016x" % (8 * k, words[k]))
                if j - k == 1:
                    want.append("+0x%04x %016x" % (8 * j, words[j]))
                elif j - k > 1:
                    want.append("* %d +0x%04x" % (j - k, 8 * j))
                    squeezed += 1
                k = j + 1
            text = hslib.run(list(self.opts) + [self.core, "show", "%#x" % a]).stdout
            got = []
            for line in text.splitlines():
                p = line.split()
                if line.startswith("  +0x") and len(p) > 1 and len(p[1]) == 16 and not p[1].startswith("."):
                    got.append("%s %s" % (p[0], p[1]))
                elif line.startswith("  *"):
                    got.append("* %s %s" % (p[1].strip("("), p[-1].rstrip(")")))
            if got != want:
                bad.append("%s:\n  got  %s\n  want %s" % (o["label"], got, want))
        self.assertGreater(squeezed, 3)
        self.assertFalse(bad, listing(bad))

    def test_show_names_places_outside_the_heap(self):
        mem = self.core_mem()
        bad, kinds = [], set()
        for c in self.lk["chains"]:
            r = c["root"]
            if not r or r["kind"] == "register":
                continue
            place = self.run_json("show", "%#x" % r["address"]).get("place") or {}
            v = mem.u64(r["address"])
            first = c["hops"][0]["address"]
            want = {"kind": r["kind"], "thread": r["thread"] if r["kind"] != "global" else None, "value": v}
            got = {k: place.get(k) for k in want}
            if got != want:
                bad.append("%s: place %s, truth %s" % (c["label"], got, want))
            what = place.get("what") or ""
            sym = r["symbol"] or ""
            if "+" in sym:      # the truth says g_registry+8; show, +0x8
                sym = "%s+%#x" % (sym.split("+")[0], int(sym.split("+")[1]))
            expect = {"global": sym, "stack": r["function"], "tls": "TLS tls_ptr"}[r["kind"]]
            if expect not in what:
                bad.append("%s: %r does not say %r" % (c["label"], what, expect))
            pt = place.get("points_to") or ""
            if not pt.startswith("-> ") or ("%#x" % first) not in pt:
                bad.append("%s: points_to %r, the word holds %#x (block %#x)" % (c["label"], pt, v, first))
            kinds.add(r["kind"])
        self.assertEqual(kinds, {"global", "stack", "tls"} if self.fixture == "leaks" else {"global"})
        self.assertFalse(bad, listing(bad))

    def test_leak_group_samples(self):
        """Each leak group names one of its members (a head when it has heads) with
        its first words as the core holds them (and members, typed)."""
        mem = self.core_mem()
        doc = self.run_json("leaks")
        bad = []
        for g in doc["groups"]:
            sm = g.get("sample") or {}
            o = self.objs.get(sm.get("address"))
            if not o or not o["leaked"] or o["size"] != g["size"] or o["type"] != g["type"]:
                bad.append("group %s/%d: sample %s" % (g["type"], g["size"], self.label(sm.get("address") or 0)))
                continue
            if sm["unreferenced"] != o["unreferenced"] or (g["unreferenced"] and not o["unreferenced"]):
                bad.append("group %s/%d: sample %s is not a head" % (g["type"], g["size"], o["label"]))
            words = [mem.u64(o["address"] + 8 * k) for k in range(min(4, o["size"] // 8))]
            if sm["words"] != words:
                bad.append("%s: words %s, the core's %s" % (o["label"], sm["words"], words))
            if g["type"] and self.fixture == "leaks":
                bad += self.field_problems(o["label"], o, sm["fields"])
            elif g["type"] and not sm["fields"]:
                bad.append("%s: typed %s without fields" % (o["label"], g["type"]))
        self.assertFalse(bad, listing(bad))
        text = hslib.run(list(self.opts) + [self.core, "leaks"]).stdout
        self.assertEqual(text.count(" e.g. 0x"), len(doc["groups"]))

    # --exact-pointers

    def test_exact_pointers_leaked_set(self):
        want = oracle(self.fixture, self.kind, exact=True).leaked
        extra = want - self.leaked
        self.assertTrue(all(self.objs[a]["interior_only"] for a in extra if a in self.objs),
                        "the oracle's exact-pointer leaks: %s" % [self.label(a) for a in extra])
        _, objs = self.listed(opts=list(self.opts) + ["--exact-pointers"])
        bad = self.set_problems(set(objs), want, "leaked with --exact-pointers")
        self.assertFalse(bad, listing(bad))


def make_cases():
    for fixture in FIXTURES:
        for kind in hslib.KINDS:
            name = "Fixture_%s_%s" % (fixture, kind)
            globals()[name] = type(name, (FixtureCase, unittest.TestCase), {"fixture": fixture, "kind": kind})
            for debug, opts in (("Debuginfo", ()), ("NoDebuginfo", ("--no-debuginfo",))):
                name = "Leaks_%s_%s_%s" % (fixture, kind, debug)
                globals()[name] = type(name, (LeakCase, unittest.TestCase),
                                       {"fixture": fixture, "kind": kind, "opts": opts})


make_cases()


def setUpModule():
    """Make the leak cores (a no-op when they are newer than their sources)."""
    if os.environ.get("HS_NO_MAKE_CORES"):
        return
    script = os.path.join(hslib.ROOT, "cores", "make-leak-cores.sh")
    env = dict(os.environ, BUILD=hslib.BUILD)
    r = subprocess.run([script], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("cores/make-leak-cores.sh failed:\n%s%s" % (r.stdout, r.stderr))


def main(argv):
    if os.environ.get("HS_SNAPSHOT"):
        # Test a copy: a concurrent `make` relinking build/heapscope mid-run
        # would otherwise fail tests at random.
        import shutil
        import tempfile
        snap = os.path.join(tempfile.mkdtemp(prefix="hs-leaks-"), "heapscope")
        shutil.copy2(hslib.HEAPSCOPE, snap)
        hslib.HEAPSCOPE = snap
    verbose = "-v" in argv
    patterns = [a for a in argv if not a.startswith("-")]
    suite = unittest.TestSuite()
    for test in unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]):
        for t in test:
            if not patterns or any(p in t.id() for p in patterns):
                suite.addTest(t)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if verbose else 1)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
