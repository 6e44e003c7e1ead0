"""gperftools tcmalloc 2.10 heaps: every pointer the fixture knows, found where tcmalloc has it.

The fixture cores come from cores/make-tcmalloc-cores.sh: cores/tcmalloc_heap.c
linked with Debian's stripped libtcmalloc_minimal.so.4 and libtcmalloc.so.4, with
libtcmalloc_minimal.a (static, symbols), the static one stripped, each with a gdb
core and a kernel core, and a fifth whose library claims "gperftools 2.11" (to be
refused).  Each truth document lists every live pointer (address,
malloc_usable_size), every freed one, the leaked objects, and tcmalloc's own
statistics (MallocExtension numeric properties).

The checks are exact: each live pointer is a used block at that address with its
usable size; each freed pointer is a free block at that address with its size, or
lies in a free span; tcmalloc's own byte counts (allocated, page heap free,
central, transfer and thread caches, heap size) equal ours to the byte; leak
analysis finds exactly the leaked objects; --pid on the running fixture gives the
same; a damaged free list gives an error diagnostic and otherwise true results.

Run alone:  BUILD=build python3 tests/integration/test_tcmalloc.py
(last line "N passed, N failed"; exit status 1 on failure), or through run.py.
"""
import bisect
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402

VARIANTS = ("tcmalloc_minimal", "tcmalloc_full", "tcmalloc_static", "tcmalloc_stripped", "tcmalloc_sampled")
# How each variant's roots must be found without help.
EXPECTED_HOW = {
    "tcmalloc_minimal": "heaps symbol",      # Debian's .so exports thread_heaps_ only
    "tcmalloc_full": "heaps symbol",
    "tcmalloc_static": "roots by symbol",
    "tcmalloc_stripped": "roots by memory scan",
    "tcmalloc_sampled": "heaps symbol",
}
USED = ("used", "large")
FREE_STATES = ["central", "page-free", "thread-cache", "transfer-cache"]


def tc_core(name, kind):
    try:
        return hslib.core(name, kind)
    except AssertionError:
        raise AssertionError("%s.%s.core is missing (run BUILD=%s cores/make-tcmalloc-cores.sh)"
                             % (name, kind, os.path.relpath(hslib.BUILD, hslib.ROOT)))


def tc_desc(doc):
    for a in doc.get("allocators", []):
        if a["name"] == "tcmalloc":
            return a
    raise AssertionError("no tcmalloc allocator in %s" % [a["name"] for a in doc.get("allocators", [])])


class Heap:
    """The chunks of one target, sorted, with a lookup for any address."""

    def __init__(self, target_args):
        doc = hslib.run_json(["--allocator", "tcmalloc"] + target_args + ["chunks"], timeout=60)
        self.blocks = sorted(doc["allocations"], key=lambda b: b["address"])
        self.starts = [b["address"] for b in self.blocks]
        self.by_address = {b["address"]: b for b in self.blocks}

    def containing(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.blocks[i]["address"] + self.blocks[i]["size"]:
            return self.blocks[i]
        return None

    def total(self, wheres):
        return sum(b["size"] for b in self.blocks if b["where"] in wheres)


def check_live(tc, h, truth):
    bad = []
    for r in truth["live"]:
        b = h.by_address.get(r["address"])
        if not b or b["state"] != "used" or b["where"] not in USED or b["size"] != r["size"]:
            bad.append((hex(r["address"]), r["size"], b))
    tc.assertEqual(bad, [], "%d of %d live pointers wrong" % (len(bad), len(truth["live"])))


def freed_kinds(h, truth):
    """(wrong freed records, {where: count})."""
    bad, kinds = [], {}
    for r in truth["freed"]:
        b = h.containing(r["address"])
        ok = b is not None and b["state"] == "free"
        # An object is the exact block; a free span holds it.
        if ok and not b["where"].startswith("page-"):
            ok = b["address"] == r["address"] and b["size"] == r["size"]
        if not ok:
            bad.append((hex(r["address"]), r["size"], b))
        else:
            kinds[b["where"]] = kinds.get(b["where"], 0) + 1
    return bad, kinds


def check_leaks(tc, objects, truth):
    """The leaked objects are the fixture's, plus tcmalloc's own: the default
    MallocExtension that MallocExtension::Register() replaces and never frees
    (malloc_extension.cc, 2.10): one 8-byte object whose type its vtable names."""
    got = {(o["address"], o["size"], o["unreferenced"]) for o in objects}
    want = {(o["address"], o["size"], bool(o["unreferenced"])) for o in truth["leaked"]}
    extra = [o for o in objects if (o["address"], o["size"], o["unreferenced"]) in got - want]
    tc.assertEqual(want - got, set(), "leaked objects not found")
    tc.assertEqual([(o["size"], o["unreferenced"], o.get("type")) for o in extra], [(8, True, "MallocExtension")])


def check_totals(tc, h, desc, stats):
    f = desc["facts"]
    # A sampled allocation has a span of its own; tcmalloc counts all of it.
    slack = f["sampled_slack_bytes"]
    tc.assertEqual(h.total(USED) + slack, stats["allocated"], "in-use bytes (generic.current_allocated_bytes)")
    tc.assertEqual(h.total(("thread-cache",)), stats["thread_free"], "tcmalloc.thread_cache_free_bytes")
    tc.assertEqual(h.total(("transfer-cache",)), stats["transfer_free"], "tcmalloc.transfer_cache_free_bytes")
    # tcmalloc counts each small span's unusable tail as central cache bytes.
    tc.assertEqual(h.total(("central",)) + f["span_tail_bytes"], stats["central_free"],
                   "tcmalloc.central_cache_free_bytes")
    tc.assertEqual(h.total(("page-free",)), stats["pageheap_free"], "tcmalloc.pageheap_free_bytes")
    tc.assertEqual(h.total(("page-returned",)), stats["pageheap_unmapped"], "tcmalloc.pageheap_unmapped_bytes")
    every = sum(b["size"] for b in h.blocks)
    tc.assertEqual(every + f["span_tail_bytes"] + slack, stats["heap_size"],
                   "generic.heap_size: every page of the page heap")
    tc.assertEqual(f["allocated_bytes"], stats["allocated"])
    tc.assertEqual(f["central_cache_bytes"], stats["central_free"])


class TcmallocCore:
    """Checks of one fixture core (mixed into a TestCase per variant and kind)."""
    name = None
    kind = None

    def setUp(self):
        self.core = tc_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)

    def heap(self):
        return Heap([self.core])

    def summary(self, *extra):
        # --allocator auto (the default) must pick tcmalloc by itself.
        return hslib.run_json(list(extra) + [self.core, "summary"], timeout=60)

    def test_found_as_gperftools_2_10(self):
        doc = self.summary()
        tc = tc_desc(doc)
        self.assertEqual(tc["version"], "2.10")
        self.assertIn(EXPECTED_HOW[self.name], tc["layout_source"])
        f = tc["facts"]
        self.assertEqual(f["kPageShift"], 13)
        # main, workers 1 and 2 (worker 3 exited: its cache was deleted); the
        # main thread may also have an empty cache made while tcmalloc started.
        self.assertIn(f["thread caches"], (3, 4))
        # Only the sampled fixture has sampled allocations (minimal builds cannot).
        self.assertEqual(f["sampled allocations"] > 0, self.name == "tcmalloc_sampled", f["sampled allocations"])
        errors = [d for d in doc.get("diagnostics", []) if d.get("level") in ("error", "warning")
                  and d.get("stage") == "tcmalloc"]
        self.assertEqual(errors, [], "a consistent heap gives no tcmalloc findings")

    def test_every_live_pointer_is_used_with_its_size(self):
        check_live(self, self.heap(), self.truth)

    def test_every_freed_pointer_is_free(self):
        bad, kinds = freed_kinds(self.heap(), self.truth)
        self.assertEqual(bad, [], "%d of %d freed pointers wrong" % (len(bad), len(self.truth["freed"])))
        # The fixture frees into every kind of place tcmalloc has.
        self.assertEqual(sorted(kinds), FREE_STATES, kinds)

    def test_totals_agree_with_tcmalloc_statistics(self):
        check_totals(self, self.heap(), tc_desc(self.summary()), self.truth["stats"])

    def test_thread_caches_belong_to_the_threads(self):
        doc = hslib.run_json(["--allocator", "tcmalloc", self.core, "bins"], timeout=60)
        tids = {l["thread"] for l in doc["lists"] if l["kind"] == "thread-cache"}
        self.assertEqual(tids, set(self.truth["threads"][:3]))
        for l in doc["lists"]:
            self.assertFalse(l["broken"], l)
            if l["kind"] in ("thread-cache", "transfer-cache", "central"):
                self.assertEqual(l["count"], l["declared"], l)
        arenas = hslib.run_json(["--allocator", "tcmalloc", self.core, "arenas"], timeout=60)["arenas"]
        self.assertEqual([a["name"] for a in arenas], ["tcmalloc pageheap"])

    def test_leaks_are_exactly_the_leaked_objects(self):
        doc = hslib.run_json(["--allocator", "tcmalloc", self.core, "leaks", "--list"], timeout=60)
        check_leaks(self, doc["objects"], self.truth)


def make_cases():
    for name in VARIANTS:
        for kind in hslib.KINDS:
            cls_name = "Test_%s_%s" % (name, kind)
            globals()[cls_name] = type(cls_name, (TcmallocCore, unittest.TestCase), {"name": name, "kind": kind})


make_cases()


class TestTcmallocScan(unittest.TestCase):
    """The memory scan finds exactly what the symbols say: tcmalloc_stripped is
    tcmalloc_static without its symbol table, and gdb runs both without ASLR."""

    def test_scan_equals_symbols(self):
        roots = ("Static::pageheap_", "Static::sizemap_", "Static::central_cache_", "ThreadCache::thread_heaps_")
        sym = tc_desc(hslib.run_json([tc_core("tcmalloc_static", "gdb"), "summary"], timeout=60))
        scan = tc_desc(hslib.run_json([tc_core("tcmalloc_stripped", "gdb"), "summary"], timeout=60))
        self.assertIn("roots by symbol", sym["layout_source"])
        self.assertIn("roots by memory scan", scan["layout_source"])
        self.assertEqual([scan["facts"][r] for r in roots], [sym["facts"][r] for r in roots])


def normalize(text):
    """Output with every number (sizes, counts, addresses) made N, spaces collapsed."""
    import re
    lines = []
    for line in text.strip().splitlines():
        line = re.sub(r"\b(0x[0-9a-fA-F]+|[0-9][0-9.]*)\b", "N", line)
        lines.append(" ".join(line.split()))
    return lines


class TestTcmallocDocs(unittest.TestCase):
    """docs/tcmalloc.md's examples are what heapscope prints (numbers aside)."""

    def test_doc_examples(self):
        with open(os.path.join(hslib.ROOT, "docs", "tcmalloc.md")) as f:
            text = f.read()
        blocks = [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith("\n$ heapscope ")]
        self.assertEqual(len(blocks), 3)
        for b in blocks:
            cmd, want = b.split("\n", 1)
            args = [a.replace("build/cores/", hslib.CORES + "/") for a in cmd.split()[2:]]
            r = hslib.run(args, timeout=60)
            hslib.check_no_crash(r)
            self.assertEqual(normalize(r.stdout + r.stderr), normalize(want), cmd)


class TestTcmallocOverride(unittest.TestCase):
    """--override NAME=ADDR for each root gives the same heap as the symbols."""

    def test_overrides(self):
        core = tc_core("tcmalloc_stripped", "kernel")
        base = hslib.run_json([core, "summary"], timeout=60)
        f = tc_desc(base)["facts"]
        args = []
        for name, fact in (("sizemap", "Static::sizemap_"), ("pageheap", "Static::pageheap_"),
                           ("central_cache", "Static::central_cache_"),
                           ("thread_heaps", "ThreadCache::thread_heaps_")):
            args += ["--override", "%s=0x%x" % (name, f[fact])]
        doc = hslib.run_json(args + [core, "summary"], timeout=60)
        self.assertIn("roots by override", tc_desc(doc)["layout_source"])
        self.assertEqual((doc["in_use"], doc["free"]), (base["in_use"], base["free"]))


class TestTcmallocBadInput(unittest.TestCase):
    """A damaged or foreign tcmalloc core: a clear message, true partial results, never a crash."""

    def test_corrupt_thread_cache_list(self):
        src = tc_core("tcmalloc_minimal", "gdb")
        truth = hslib.truth("tcmalloc_minimal", "gdb")
        h = Heap([src])
        # A thread-cached object whose link leads to another object: point
        # the link into nowhere.
        freed = {r["address"] for r in truth["freed"]}
        victim = None
        segs = hslib.load_segments(src)
        with open(src, "rb") as f:
            for r in truth["freed"]:
                b = h.by_address.get(r["address"])
                if not b or b["where"] != "thread-cache":
                    continue
                f.seek(hslib.file_offset(segs, r["address"]))
                link, = struct.unpack("<Q", f.read(8))
                if link in freed:
                    victim = r["address"]
                    break
        self.assertIsNotNone(victim, "no thread-cached object links to another")
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "corrupt.core")
            shutil.copyfile(src, path)
            with open(path, "r+b") as f:
                f.seek(hslib.file_offset(segs, victim))
                f.write(struct.pack("<Q", 0x4141414141414140))
            doc = hslib.run_json(["--allocator", "tcmalloc", path, "chunks"], timeout=60)
            errors = [d for d in doc["diagnostics"] if d["level"] == "error" and d.get("stage") == "tcmalloc"]
            self.assertTrue(any("0x4141414141414140" in d["message"] and "thread cache" in d["message"]
                                for d in errors), doc["diagnostics"])
            bad = Heap([path])
            # Everything live is still exactly right; freed objects are right
            # except those behind the break (now counted as in use), and the
            # victim itself is still free.
            check_live(self, bad, truth)
            wrong, _ = freed_kinds(bad, truth)
            self.assertNotIn(hex(victim), [w[0] for w in wrong])
            for addr, _size, b in wrong:
                self.assertTrue(b and b["state"] == "used" and h.by_address[int(addr, 16)]["where"] == "thread-cache",
                                (addr, b))
            self.assertLess(len(wrong), 256)
        finally:
            shutil.rmtree(tmp)

    def test_corrupt_span(self):
        # A large live allocation whose Span record says length 0: the span is
        # reported and skipped; everything else stays exactly right.
        src = tc_core("tcmalloc_static", "kernel")
        truth = hslib.truth("tcmalloc_static", "kernel")
        ph = tc_desc(hslib.run_json([src, "summary"], timeout=60))["facts"]["Static::pageheap_"]
        victim = next(r for r in truth["live"] if r["size"] >= 1 << 20)
        segs = hslib.load_segments(src)

        def word(f, addr):
            f.seek(hslib.file_offset(segs, addr))
            return struct.unpack("<Q", f.read(8))[0]
        page = victim["address"] >> 13
        with open(src, "rb") as f:
            leaf = word(f, ph + 524288 + (page >> 18) * 8)
            span = word(f, leaf + (page & ((1 << 18) - 1)) * 8)
            self.assertEqual(word(f, span), page, "the page map leads to the victim's span")
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "corrupt.core")
            shutil.copyfile(src, path)
            with open(path, "r+b") as f:
                f.seek(hslib.file_offset(segs, span + 8))
                f.write(struct.pack("<Q", 0))
            doc = hslib.run_json(["--allocator", "tcmalloc", path, "chunks"], timeout=60)
            errors = [d["message"] for d in doc["diagnostics"] if d["level"] == "error"]
            self.assertTrue(any(("span 0x%x" % span) in m and "does not decode" in m for m in errors), errors)
            bad = Heap([path])
            self.assertIsNone(bad.containing(victim["address"]))
            rest = dict(truth, live=[r for r in truth["live"] if r is not victim])
            check_live(self, bad, rest)
            wrong, _ = freed_kinds(bad, truth)
            self.assertEqual(wrong, [])
        finally:
            shutil.rmtree(tmp)

    def test_truncated_core(self):
        src = tc_core("tcmalloc_minimal", "kernel")
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
                r = hslib.run(["--json", "--allocator", "tcmalloc", path, "summary"], timeout=30)
                hslib.check_no_crash(r)
                self.assertIn(r.status, (0, 2, 3, 4), r.describe())
                if r.status:
                    self.assertTrue(r.stderr.strip(), "a failure says why")
        finally:
            shutil.rmtree(tmp)

    def test_wrong_override_is_refused(self):
        core = tc_core("tcmalloc_static", "gdb")
        r = hslib.run(["--allocator", "tcmalloc", "--override", "pageheap=0x1000", core, "summary"], timeout=30)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("Static::pageheap_", r.stderr)

    def test_unsupported_version_is_refused_by_name(self):
        # The minimal fixture run with a libtcmalloc_minimal.so.4 whose version
        # string says 2.11 (its structures are 2.10's: only the name tells).
        core = tc_core("tcmalloc_badversion", "gdb")
        r = hslib.run(["--allocator", "tcmalloc", core, "summary"], timeout=30)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("gperftools tcmalloc 2.11", r.stderr)
        self.assertIn("not supported", r.stderr)

    def test_glibc_core_has_no_tcmalloc(self):
        core = hslib.core("threads", "gdb")
        r = hslib.run(["--allocator", "tcmalloc", core, "summary"], timeout=30)
        hslib.check_no_crash(r)
        self.assertNotEqual(r.status, 0)
        self.assertIn("tcmalloc is not in this process", r.stderr)


class TestTcmallocPid(unittest.TestCase):
    """--pid on the running fixture: the same exact checks as on its cores."""

    def test_pid_minimal(self):
        self.check_pid("tcmalloc_minimal")

    def test_pid_stripped(self):
        # No symbols at all: the roots come from the scan of live memory.
        self.check_pid("tcmalloc_stripped")

    def check_pid(self, name):
        exe = os.path.join(hslib.CORES, name)
        if not os.access(exe, os.X_OK):
            raise AssertionError("%s is missing (run cores/make-tcmalloc-cores.sh)" % exe)
        tmp = tempfile.mkdtemp()
        p = subprocess.Popen([exe, os.path.join(tmp, "truth.json"), "wait"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            path = os.path.join(tmp, "truth.json")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and p.poll() is None:
                if os.path.exists(path):
                    with open(path) as f:
                        if f.read().endswith("}\n"):
                            break
                time.sleep(0.1)
            self.assertIsNone(p.poll(), "the fixture exited")
            import json
            with open(path) as f:
                truth = json.load(f)
            target = ["--pid", str(p.pid)]
            h = Heap(target)
            check_live(self, h, truth)
            bad, kinds = freed_kinds(h, truth)
            self.assertEqual(bad, [])
            self.assertEqual(sorted(kinds), FREE_STATES, kinds)
            doc = hslib.run_json(["--allocator", "tcmalloc"] + target + ["summary"], timeout=60)
            self.assertIn(EXPECTED_HOW[name], tc_desc(doc)["layout_source"])
            check_totals(self, h, tc_desc(doc), truth["stats"])
            doc = hslib.run_json(["--allocator", "tcmalloc"] + target + ["leaks", "--list"], timeout=60)
            check_leaks(self, doc["objects"], truth)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
            shutil.rmtree(tmp)


def main():
    result = unittest.TextTestRunner(verbosity=1, stream=sys.stdout).run(
        unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
