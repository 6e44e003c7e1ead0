#!/usr/bin/env python3
"""Application pools against the pool fixture's truth (issue 10, "Done when").

    BUILD=build python3 tests/integration/test_pools.py [-v] [SUBSTRING...]

Fixture (cores/make-pool-cores.sh): cores/pools.c, built with DWARF (pools)
and stripped of it (pools_nodebug: ELF symbols only), each with a gdb core and
a kernel core.  It holds an intrusive free list with polluted requests, a pool
in a global struct with its link at +8, per-thread (TLS) lists in three
threads, a slab's free slots, and lists that are pools only when declared (a
list whose objects are also in a table, a doubly linked list, a cyclic list)
and one that never is (a live job queue).  Its truth has every pooled address
in list order, the polluted objects and the bytes only each pool keeps alive.

Every check compares heapscope's JSON EXACTLY with the truth, in detected mode
(no --pool) and in declared mode (--pool for every list, --no-pool-detection);
without DWARF the declared specs use byte offsets and addresses.  GDB twins:
`hs --json pools ...` in GDB equals the CLI's document.
The last line is "N passed, N failed"; the exit status is nonzero on failure.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402
import gdbutil  # noqa: E402

FIXTURES = ("pools", "pools_nodebug")
CASES = [(name, kind) for name in FIXTURES for kind in hslib.KINDS]


def key(pool):
    return (pool["anchor_address"], pool["thread"] or 0)


def declared_specs(name, truth):
    """One --pool per truth pool (a TLS spec once): the fixture's own specs with
    DWARF; without it, names and byte offsets, and addresses for members."""
    specs = []
    for p in truth["pools"]:
        if name == "pools":
            spec = p["spec"]
        elif "." in p["anchor"]:
            spec = "0x%x:%d" % (p["anchor_address"], p["link"])
        else:
            spec = "%s:%d" % (p["anchor"], p["link"])
        if spec not in specs:
            specs.append(spec)
    args = ["--no-pool-detection"]
    for spec in specs:
        args += ["--pool", spec]
    return args


class PoolsBase:
    name = kind = None

    def core(self):
        return hslib.core(self.name, self.kind)

    def truth(self):
        return hslib.truth(self.name, self.kind)

    def doc(self, opts, *cmd):
        return hslib.run_json(list(opts) + [self.core()] + list(cmd))

    def expected(self, detected):
        t = self.truth()
        return [p for p in t["pools"] if p["detect"]] if detected else t["pools"]

    def check_pools(self, detected):
        opts = [] if detected else declared_specs(self.name, self.truth())
        doc = self.doc(opts, "pools", "--list")
        want = {key(p): p for p in self.expected(detected)}
        got = {(p["anchor_address"], p["thread"] or 0): p for p in doc["pools"]}
        self.assertEqual(sorted(got), sorted(want), "pools found (anchor address, thread)")
        for k, w in want.items():
            g = got[k]
            label = "%s thread %s" % (w["anchor"], w["thread"])
            self.assertEqual([o["address"] for o in g["objects"]], w["objects"], label + ": objects in list order")
            self.assertEqual(g["count"], len(w["objects"]), label)
            self.assertEqual(g["object_size"], w["object_size"], label + ": object_size")
            self.assertEqual(g["bytes"], w["object_size"] * len(w["objects"]), label + ": bytes")
            self.assertEqual(g["link"], w["link"], label + ": link")
            self.assertEqual(g["kind"], w["kind"], label + ": kind")
            self.assertEqual(g["declared"], not detected, label)
            self.assertEqual(g["broken"], w["broken"], label + ": broken")
            self.assertEqual(sorted(o["address"] for o in g["objects"] if o["polluted"]), sorted(w["polluted"]),
                             label + ": polluted objects")
            self.assertEqual(g["polluted"], len(w["polluted"]), label)
            self.assertEqual(g["polluted_retained"], w["polluted_retained"], label + ": polluted_retained")
            self.assertEqual(g["head"], w["objects"][0] if w["objects"] else 0, label + ": head")
            # Without DWARF a member is an address (declared) or symbol+offset (detected).
            if self.name == "pools" or "." not in w["anchor"]:
                self.assertEqual(g["anchor"], w["anchor"], label + ": anchor")
        self.assertEqual(doc["pooled"], {"count": sum(len(p["objects"]) for p in want.values()),
                                         "bytes": sum(p["object_size"] * len(p["objects"]) for p in want.values())})
        self.assertEqual(doc["polluted_retained"], sum(p["polluted_retained"] for p in want.values()))
        broken = [d for d in doc["diagnostics"] if d["stage"] == "pools"]
        self.assertEqual(len(broken), sum(1 for p in want.values() if p["broken"]), broken)

    def test_detected(self):
        self.check_pools(True)

    def test_declared(self):
        self.check_pools(False)

    def test_summary(self):
        for detected in (True, False):
            opts = [] if detected else declared_specs(self.name, self.truth())
            want = self.expected(detected)
            doc = self.doc(opts, "summary")
            count = sum(len(p["objects"]) for p in want)
            nbytes = sum(p["object_size"] * len(p["objects"]) for p in want)
            self.assertEqual(doc["pooled"], {"count": count, "bytes": nbytes})
            self.assertEqual(doc["pools"], len(want))
            whole = sum(len(p["objects"]) for p in want if p["kind"] == "allocations")
            self.assertEqual(doc["live"], {"count": doc["in_use"]["count"] - whole,
                                           "bytes": doc["in_use"]["bytes"] - nbytes})

    def test_summary_leaks_pollution(self):
        want = self.expected(True)
        doc = self.doc([], "summary", "--leaks")
        self.assertEqual(doc["polluted"], sum(len(p["polluted"]) for p in want))
        self.assertEqual(doc["polluted_retained"], sum(p["polluted_retained"] for p in want))
        self.assertNotIn("polluted", self.doc([], "summary"))

    def test_chunks_where_pool(self):
        doc = self.doc([], "chunks", "--where", "pool")
        want = sorted(a for p in self.expected(True) if p["kind"] == "allocations" for a in p["objects"])
        self.assertEqual(sorted(b["address"] for b in doc["allocations"]), want)
        self.assertTrue(all(b["state"] == "used" and b["where"] == "pool" for b in doc["allocations"]))
        used = self.doc([], "chunks", "--used")["allocations"]
        self.assertEqual(sorted(b["address"] for b in used if b["where"] == "pool"), want)

    def test_show_marks_pooled(self):
        pools = {p["anchor"]: p for p in self.expected(True)}
        req = pools["g_free_requests"]["objects"][2]
        doc = self.doc([], "show", "0x%x" % (req + 8))
        self.assertEqual((doc["allocation"]["where"], doc["allocation"]["state"]), ("pool", "used"))
        self.assertEqual((doc["pool"]["anchor"], doc["pool"]["object"], doc["pool"]["slot"]),
                         ("g_free_requests", req, False))
        slot = pools["g_slab_free"]["objects"][1]
        doc = self.doc([], "show", "0x%x" % slot)
        self.assertEqual(doc["allocation"]["where"], "used")
        self.assertEqual((doc["pool"]["anchor"], doc["pool"]["object"], doc["pool"]["object_size"], doc["pool"]["slot"]),
                         ("g_slab_free", slot, 32, True))
        other = self.doc([], "chunks", "--where", "used", "--limit", "1")["allocations"][0]["address"]
        self.assertIsNone(self.doc([], "show", "0x%x" % other)["pool"])

    def test_chain_labels_pooled_hops(self):
        pool = [p for p in self.expected(True) if p["anchor"] == "g_free_requests"][0]
        target = pool["objects"][3]
        doc = self.doc([], "chain", "0x%x" % target)
        hops = [h for h in doc["chain"] if h["kind"] == "allocation"]
        self.assertEqual([h["address"] for h in hops], pool["objects"][:4])
        self.assertTrue(all(h["pooled"] and h["pool"] == "g_free_requests" for h in hops), hops)
        # A pointer word inside a free slot is a pooled hop of the slab.
        slab = [p for p in self.expected(True) if p["anchor"] == "g_slab_free"][0]
        doc = self.doc([], "chain", "0x%x" % slab["objects"][2])
        hops = [h for h in doc["chain"] if h["kind"] == "allocation"]
        self.assertTrue(hops and all(h["pool"] in (None, "g_slab_free") for h in hops), hops)

    def test_top_marks_pooled(self):
        # top folds what a listed row keeps alive under it: unfold it all.
        doc = self.doc([], "top", "--limit", "1000000", "--depth", "100")
        want = sorted(a for p in self.expected(True) if p["kind"] == "allocations" for a in p["objects"])
        rows = []

        def walk(objects):
            for o in objects:
                rows.append(o)
                walk(o.get("children", []))
        walk(doc["objects"])
        self.assertEqual(sorted(o["address"] for o in rows if o["pooled"]), want)

    def test_leaks_unchanged(self):
        a = self.doc([], "leaks", "--list")
        b = self.doc(["--no-pool-detection"], "leaks", "--list")
        self.assertEqual(a, b)

    def test_jobs_agree(self):
        """One thread and two type the pooled heap alike (the type
        propagation gathers stretches of its queue on two threads)."""
        for cmd in (("histogram",), ("leaks", "--list"), ("top",)):
            self.assertEqual(self.doc(["--jobs", "1"], *cmd), self.doc(["--jobs", "2"], *cmd),
                             "%s: --jobs 1 and --jobs 2 differ" % " ".join(cmd))

    def test_bad_specs(self):
        core = self.core()
        for spec, words in (("g_no_such_pool", "no variable 'g_no_such_pool'"),
                            ("g_free_requests[", "bad expression"),
                            ("g_free_requests:7", "multiple of 8"),
                            ("g_free_requests:", "LINK is empty")):
            r = hslib.run(["--pool", spec, core, "pools"])
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn(words, r.stderr, r.describe())
            self.assertTrue(hslib.one_line(r.stderr), r.describe())
            self.assertEqual(r.stdout, "", r.describe())
        if self.name == "pools":
            for spec, words in (("g_conn_pool.nope", "conn_pool has no member 'nope'"),
                                ("g_conn_pool.free_head:nope", "conn has no member 'nope'"),
                                ("g_conn_pool", "is not a pointer"),
                                ("g_live_requests[5]", "out of bounds")):
                r = hslib.run(["--pool", spec, core, "summary"])
                self.assertEqual(r.status, 2, r.describe())
                self.assertIn(words, r.stderr, r.describe())
        else:
            r = hslib.run(["--pool", "g_free_requests:next", core, "pools"])
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn("give a byte offset", r.stderr, r.describe())

    def test_link_outside_the_heap(self):
        # The conns' first word is fd | state << 32: not a heap address.
        conn = [p for p in self.truth()["pools"] if p["anchor"] == "g_conn_pool.free_head"][0]
        doc = hslib.run_json(["--no-pool-detection", "--pool", "0x%x:0" % conn["anchor_address"], self.core(),
                              "pools", "--list"])
        (p,) = doc["pools"]
        self.assertEqual((p["count"], p["broken"], [o["address"] for o in p["objects"]]),
                         (1, True, conn["objects"][:1]))
        diags = [d for d in doc["diagnostics"] if d["stage"] == "pools"]
        self.assertEqual(len(diags), 1, doc["diagnostics"])
        self.assertIn("links outside the heap", diags[0]["message"])

    def test_text(self):
        r = hslib.run([self.core(), "pools"])
        self.assertEqual(r.status, 0, r.describe())
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].split()[:3] == ["ANCHOR", "THREAD", "FOUND"], r.stdout)
        n = len(self.expected(True))
        self.assertTrue(lines[n + 1].startswith("%d pools, %d pooled objects" % (
            n, sum(len(p["objects"]) for p in self.expected(True)))), r.stdout)
        self.assertIn("retaining 432 B (432 bytes)", lines[n + 1])


for _name, _kind in CASES:
    _cls = type("Pools_%s_%s" % (_name, _kind), (PoolsBase, unittest.TestCase), {"name": _name, "kind": _kind})
    globals()[_cls.__name__] = _cls
del _cls


class PoolsGdbTwins(unittest.TestCase):
    """hs --json pools/summary/chunks in GDB equal the CLI's, with the pools
    declared by `set heapscope pools` and by --pool."""

    def test_twins(self):
        gdbutil.need_build()
        core = hslib.core("pools", "gdb")
        exe = os.path.join(hslib.CORES, "pools")
        specs = declared_specs("pools", hslib.truth("pools", "gdb"))[1:][1::2]
        scratch = gdbutil.Scratch("hs-pools-")
        try:
            args = gdbutil.batch_args(scratch()) + ["-ex", "file " + exe, "-ex", "core-file " + core]
            cases = [
                ("detected", "hs --json pools --list"),
                ("summary", "hs --json summary"),
                ("chunks", "hs --json chunks --where pool"),
                ("one", "hs --json pools --no-pool-detection --pool g_free_lru:next"),
                ("bad", "hs pools --pool g_nope"),
                ("set", "set heapscope pools " + " ".join(specs)),
                ("nodetect", "set heapscope pool-detection off"),
                ("declared", "hs --json pools --list"),
            ]
            for tag, cmd in cases:
                args += ["-ex", "python _hs_case(%r, %r)" % (tag, cmd)]
            s = gdbutil.run_batch(args, 600, gdbutil.Session)
        finally:
            scratch.remove()
        s.check_alive(self)
        cli = gdbutil.cli_json
        self.assertEqual(s.json("detected"), cli(core, "pools", "--list"))
        self.assertEqual(s.json("summary"), cli(core, "summary"))
        self.assertEqual(s.json("chunks"), cli(core, "chunks", "--where", "pool"))
        self.assertEqual(s.json("one"), cli("--no-pool-detection", "--pool", "g_free_lru:next", core, "pools"))
        self.assertIn("no variable 'g_nope'", s.error("bad"))
        want = cli(*(declared_specs("pools", hslib.truth("pools", "gdb")) + [core, "pools", "--list"]))
        self.assertEqual(s.json("declared"), want)


if __name__ == "__main__":
    sys.exit(gdbutil.main(sys.modules[__name__], gdbutil.Scratch("unused")))
