"""jemalloc 5.3 heaps: every pointer the fixture knows, found where jemalloc has it.

The fixture cores come from cores/make-jemalloc-cores.sh: cores/jemalloc_heap.c
built four ways (static with je_ symbols, the same stripped, dynamic with Debian's
stripped libjemalloc.so.2, LD_PRELOAD), each with a gdb core and a kernel core,
and a fifth whose libjemalloc.so.2 claims version 5.2.1 (to be refused).
Each truth document lists every live pointer (address, malloc_usable_size), every
freed one with where it must be ("tcache", "extent", "slab|extent"), the leaked
objects, and jemalloc's own statistics (mallctl, malloc_stats_print).

The checks are exact: each live pointer is a used block at that address with its
size class; each freed pointer lies in a free block of an expected kind; jemalloc's
allocated bytes are our in-use bytes plus tcache-cached bytes plus jemalloc's own
internal allocations, to the byte; active bytes likewise; each of the three
symbol-less locators finds the same extent map; leak analysis finds exactly the
leaked objects.

Run alone:  BUILD=build python3 tests/integration/test_jemalloc.py
(last line "N passed, N failed"; exit status 1 on failure), or through run.py.
"""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402

VARIANTS = ("jemalloc_static", "jemalloc_stripped", "jemalloc_dynamic", "jemalloc_preload")
# How each variant's extent map must be found without help.
EXPECTED_LOCATOR = {
    "jemalloc_static": "symbol",
    "jemalloc_stripped": "disassembly",
    "jemalloc_dynamic": "disassembly",
    "jemalloc_preload": "disassembly",
}
LOCATORS = {1: "disassembly", 2: "TLS rtree_ctx", 3: "memory scan"}
USED = ("used", "large")


def missing_cores_hint(path):
    return ("%s is missing (run BUILD=%s cores/make-jemalloc-cores.sh)"
            % (path, os.path.relpath(hslib.BUILD, hslib.ROOT)))


def je_core(name, kind):
    try:
        return hslib.core(name, kind)
    except AssertionError:
        raise AssertionError(missing_cores_hint(os.path.join(hslib.CORES, "%s.%s.core" % (name, kind))))


def jemalloc_desc(doc):
    for a in doc.get("allocators", []):
        if a["name"] == "jemalloc":
            return a
    raise AssertionError("no jemalloc allocator in %s" % [a["name"] for a in doc.get("allocators", [])])


class Heap:
    """The chunks of one core, sorted, with a lookup for any address."""

    def __init__(self, core):
        doc = hslib.run_json(["--allocator", "jemalloc", core, "chunks"], timeout=60)
        self.blocks = sorted(doc["allocations"], key=lambda b: b["address"])
        self.starts = [b["address"] for b in self.blocks]
        self.by_address = {b["address"]: b for b in self.blocks}

    def containing(self, addr):
        import bisect
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.blocks[i]["address"] + self.blocks[i]["size"]:
            return self.blocks[i]
        return None

    def total(self, wheres):
        return sum(b["size"] for b in self.blocks if b["where"] in wheres)


_heaps = {}


def heap(core):
    if core not in _heaps:
        _heaps[core] = Heap(core)
    return _heaps[core]


class JemallocCore:
    """Checks of one fixture core (mixed into a TestCase per variant and kind)."""
    name = None
    kind = None

    def setUp(self):
        self.core = je_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)

    def summary(self, *extra):
        # --allocator auto (the default) must pick jemalloc by itself.
        return hslib.run_json(list(extra) + [self.core, "summary"], timeout=60)

    def test_found_as_jemalloc_530(self):
        doc = self.summary()
        je = jemalloc_desc(doc)
        self.assertTrue(je["version"].startswith("5.3.0-0-g54eaed1d"), je["version"])
        self.assertTrue(self.truth["version"].startswith(je["version"].split("-g")[0]))
        self.assertIn(EXPECTED_LOCATOR[self.name], je["layout_source"])
        f = je["facts"]
        self.assertEqual((f["LG_PAGE"], f["LG_QUANTUM"], f["LG_VADDR"]), (12, 4, 48))
        self.assertEqual(f["size tables checked"], 1, "the size class tables were not found in memory")
        self.assertEqual(f["tcaches"], len(self.truth["threads"]), "one tcache per thread")
        errors = [d for d in doc.get("diagnostics", []) if d.get("level") == "error"]
        self.assertEqual(errors, [], "a consistent heap gives no error diagnostics")

    def test_every_live_pointer_is_used_with_its_size_class(self):
        h = heap(self.core)
        bad = []
        for r in self.truth["live"]:
            b = h.by_address.get(r["address"])
            if not b or b["state"] != "used" or b["where"] not in USED or b["size"] != r["size"]:
                bad.append((hex(r["address"]), r["size"], b))
        self.assertEqual(bad, [], "%d of %d live pointers wrong" % (len(bad), len(self.truth["live"])))

    def test_every_freed_pointer_is_free_where_jemalloc_put_it(self):
        h = heap(self.core)
        bad = []
        kinds = {}
        for r in self.truth["freed"]:
            b = h.containing(r["address"])
            ok = b is not None and b["state"] == "free" and b["where"] in r["expect"].split("|")
            # A region or a cached object is the exact block; an extent holds it.
            if ok and b["where"] != "extent":
                ok = b["address"] == r["address"] and b["size"] == r["size"]
            if not ok:
                bad.append((hex(r["address"]), r["size"], r["expect"], b))
            elif b:
                kinds[b["where"]] = kinds.get(b["where"], 0) + 1
        self.assertEqual(bad, [], "%d of %d freed pointers wrong" % (len(bad), len(self.truth["freed"])))
        # The fixture makes frees of all three kinds.
        self.assertEqual(sorted(kinds), ["extent", "slab", "tcache"], kinds)

    def test_totals_agree_with_malloc_stats_print(self):
        h = heap(self.core)
        je = jemalloc_desc(self.summary())
        f = je["facts"]
        stats = self.truth["malloc_stats"]["jemalloc"]["stats"]
        merged = self.truth["malloc_stats"]["jemalloc"]["stats.arenas"]["merged"]
        buf = self.truth["stats_print_buffer"]
        # malloc_stats_print counts its own 64 KiB buffer (freed before the core
        # was taken): allocated by its usable size, active by its extent (+1 page).
        self.assertEqual(stats["allocated"] - buf, self.truth["mallctl"]["allocated"])
        self.assertEqual(stats["active"] - buf - 4096, self.truth["mallctl"]["active"])
        in_use = h.total(USED)
        tcache = h.total(("tcache",))
        self.assertEqual(tcache, merged["tcache_bytes"], "tcache-cached bytes")
        self.assertEqual(tcache, f["tcache_bytes"])
        # jemalloc's "allocated" = what the program holds + what tcaches hold +
        # jemalloc's own allocations in the heap (each thread's tcache stack).
        self.assertEqual(in_use + tcache + f["internal_bytes"], stats["allocated"] - buf)
        self.assertEqual(f["allocated_bytes"], stats["allocated"] - buf)
        self.assertEqual(f["active_bytes"], stats["active"] - buf - 4096)
        self.assertEqual(f["retained_bytes"], stats["retained"])

    def test_threads_tcaches_and_arenas(self):
        doc = hslib.run_json(["--allocator", "jemalloc", self.core, "bins"], timeout=60)
        tids = {l["thread"] for l in doc["lists"] if l["kind"] == "tcache"}
        self.assertEqual(tids, {t["tid"] for t in self.truth["threads"]})
        for l in doc["lists"]:
            if l["kind"] == "tcache":
                self.assertEqual(l["count"], l["declared"], l)
        arenas = hslib.run_json(["--allocator", "jemalloc", self.core, "arenas"], timeout=60)["arenas"]
        names = {a["name"] for a in arenas if a["allocator"] == "jemalloc"}
        want = {"je arena %d" % t["arena"] for t in self.truth["threads"]}
        self.assertTrue(want <= names, (want, names))
        # The huge arena (index 8 = narenas_auto on this 2-CPU build: 4 per CPU)
        # holds the >= 8 MiB allocations.
        big = [r for r in self.truth["live"] if r["size"] >= 8 << 20]
        self.assertTrue(big)
        self.assertEqual({r["arena"] for r in big} - {int(n.split()[-1]) for n in names}, set())

    def test_both_heaps_in_auto_mode(self):
        # The fixture also allocates through glibc's __libc_malloc: --allocator
        # auto must report both heaps, each pointer by its own allocator.
        doc = hslib.run_json([self.core, "chunks"], timeout=60)
        self.assertEqual(doc.get("allocator", "glibc+jemalloc"), "glibc+jemalloc")
        by_address = {b["address"]: b for b in doc["allocations"]}
        bad = []
        for r in self.truth["glibc_live"] + self.truth["live"]:
            b = by_address.get(r["address"])
            if not b or b["state"] != "used" or b["size"] != r["size"]:
                bad.append((hex(r["address"]), r["size"], b))
        for r in self.truth["glibc_freed"]:
            b = by_address.get(r["address"])
            if not b or b["state"] != "free":
                bad.append((hex(r["address"]), r["size"], b))
        self.assertEqual(bad, [])
        names = [a["name"] for a in self.summary()["allocators"]]
        self.assertEqual(names, ["glibc", "jemalloc"])

    def test_every_locator_finds_the_same_extent_map(self):
        emap = jemalloc_desc(self.summary())["facts"]["je_arena_emap_global"]
        for n, how in LOCATORS.items():
            doc = self.summary("--override", "je_locator=%d" % n)
            je = jemalloc_desc(doc)
            self.assertIn(how, je["layout_source"])
            self.assertEqual(je["facts"]["je_arena_emap_global"], emap, how)
            self.assertEqual(doc["in_use"], self.summary()["in_use"], how)

    def test_leaks_are_exactly_the_leaked_objects(self):
        doc = hslib.run_json(["--allocator", "jemalloc", self.core, "leaks", "--list"], timeout=60)
        got = {(o["address"], o["size"], o["unreferenced"]) for o in doc["objects"]}
        want = {(o["address"], o["size"], o["unreferenced"]) for o in self.truth["leaked"]}
        self.assertEqual(got, want)

    def test_show_tells_used_and_cached(self):
        live = self.truth["live"][0]
        cached = next(r for r in self.truth["freed"] if r["expect"] == "tcache")
        for r, state, where in ((live, "used", None), (cached, "free", "tcache")):
            doc = hslib.run_json(["--allocator", "jemalloc", self.core, "show", str(r["address"])], timeout=60)
            a = doc["allocation"]
            self.assertEqual((a["address"], a["size"], a["state"]), (r["address"], r["size"], state))
            if where:
                self.assertEqual(a["where"], where)


def make_cases():
    for name in VARIANTS:
        for kind in hslib.KINDS:
            cls_name = "Test_%s_%s" % (name, kind)
            attrs = {"name": name, "kind": kind}
            # To stay fast (three runs more each): the locators on the kernel
            # cores and the stripped executable's gdb core, show on gdb cores.
            if kind != "kernel" and name != "jemalloc_stripped":
                attrs["test_every_locator_finds_the_same_extent_map"] = None
            if kind != "gdb":
                attrs["test_show_tells_used_and_cached"] = None
            globals()[cls_name] = type(cls_name, (JemallocCore, unittest.TestCase), attrs)


make_cases()


class TestJemallocBadInput(unittest.TestCase):
    """A damaged jemalloc core: a clear message or partial results, never a crash."""

    def test_truncated_core(self):
        # The kernel core keeps its notes first: what is cut is memory.
        src = je_core("jemalloc_dynamic", "kernel")
        tmp = tempfile.mkdtemp()
        try:
            for frac in (0.3, 0.6, 0.9):
                path = os.path.join(tmp, "cut.core")
                size = os.path.getsize(src)
                with open(src, "rb") as f, open(path, "wb") as g:
                    left = int(size * frac)
                    while left > 0:
                        chunk = f.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        g.write(chunk)
                        left -= len(chunk)
                r = hslib.run(["--json", "--allocator", "jemalloc", path, "summary"], timeout=30)
                hslib.check_no_crash(r)
                self.assertIn(r.status, (0, 2, 3, 4), r.describe())
                if r.status:
                    self.assertTrue(r.stderr.strip(), "a failure says why")
        finally:
            shutil.rmtree(tmp)

    def test_wrong_override_is_refused(self):
        core = je_core("jemalloc_static", "gdb")
        r = hslib.run(["--allocator", "jemalloc", "--override", "je_arena_emap_global=0x1000", core, "summary"],
                      timeout=30)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("je_arena_emap_global", r.stderr)

    def test_unsupported_version_is_refused_by_name(self):
        # jemalloc_badversion: the preload fixture with a libjemalloc.so.2 whose
        # version string says 5.2.1 (its structures are 5.3's: only the name
        # tells).  Never a reading of a layout heapscope does not know.
        core = je_core("jemalloc_badversion", "gdb")
        r = hslib.run(["--allocator", "jemalloc", core, "summary"], timeout=30)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("jemalloc 5.2.1-0-g54eaed1d", r.stderr)
        self.assertIn("not supported", r.stderr)
        # --allocator auto still gives glibc's heap, says why jemalloc's is
        # missing, and exits 4 (the heap is not whole: tests/integration/test_mixed.py).
        doc = hslib.run_json([core, "summary"], timeout=30, expect_status=4)
        self.assertEqual([a["name"] for a in doc["allocators"]], ["glibc"])
        self.assertTrue(any("5.2.1" in d["message"] and "not supported" in d["message"]
                            for d in doc["diagnostics"]), doc["diagnostics"])

    def test_glibc_core_has_no_jemalloc(self):
        core = hslib.core("threads", "gdb")
        r = hslib.run(["--allocator", "jemalloc", core, "summary"], timeout=30)
        hslib.check_no_crash(r)
        self.assertNotEqual(r.status, 0)
        self.assertIn("jemalloc is not in this process", r.stderr)


def main():
    result = unittest.TextTestRunner(verbosity=1, stream=sys.stdout).run(
        unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
