"""mimalloc 2.0.9 heaps: every pointer the fixture knows, found where mimalloc has it.

The fixture cores come from cores/make-mimalloc-cores.sh: cores/mimalloc_heap.c
linked with Debian's stripped libmimalloc.so.2 (mimalloc 2.0.9, which replaces
malloc for the whole process), the same executable stripped, each with a gdb
core and a kernel core, and a third whose library's mi_version() says 2.1.0
(to be refused).  Each truth document lists every live pointer (address,
mi_usable_size), every freed one and the leaked objects.  Four threads
allocate blocks of small, medium, large and huge pages, free every other one,
free blocks of another thread (thread_free and delayed-free lists), and one
thread exits (its segments are abandoned).

The checks are exact: each live pointer is a used block at that address with
its usable size; each freed pointer is a free block at that address with its
size; the fixture frees into every kind of list mimalloc has; each page's used
count agrees with its lists (no findings); leak analysis finds exactly the
leaked objects; --pid on the running fixture gives the same; a damaged free
list gives an error diagnostic and otherwise true results; a library of
another version is refused by name.

Run alone:  BUILD=build python3 tests/integration/test_mimalloc.py
(last line "N passed, N failed"; exit status 1 on failure), or through run.py.
"""
import bisect
import json
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

VARIANTS = ("mimalloc_dynamic", "mimalloc_stripped")
FREE_STATES = ["delayed-free", "free-list", "local-free", "returned", "span-free", "thread-free"]


def mi_core(name, kind):
    try:
        return hslib.core(name, kind)
    except AssertionError:
        raise AssertionError("%s.%s.core is missing (run BUILD=%s cores/make-mimalloc-cores.sh)"
                             % (name, kind, os.path.relpath(hslib.BUILD, hslib.ROOT)))


def mi_desc(doc):
    for a in doc.get("allocators", []):
        if a["name"] == "mimalloc":
            return a
    raise AssertionError("no mimalloc allocator in %s" % [a["name"] for a in doc.get("allocators", [])])


class Heap:
    """The blocks of one target, sorted, with a lookup for any address."""

    def __init__(self, target_args):
        doc = hslib.run_json(["--allocator", "mimalloc"] + target_args + ["chunks"], timeout=60)
        self.doc = doc
        self.blocks = sorted(doc["allocations"], key=lambda b: b["address"])
        self.starts = [b["address"] for b in self.blocks]
        self.by_address = {b["address"]: b for b in self.blocks}

    def containing(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.blocks[i]["address"] + self.blocks[i]["size"]:
            return self.blocks[i]
        return None


def check_live(tc, h, truth):
    bad = []
    for r in truth["live"] + truth["leaked"]:
        b = h.by_address.get(r["address"])
        if not b or b["state"] != "used" or b["size"] != r["size"]:
            bad.append((hex(r["address"]), r["size"], b))
    tc.assertEqual(bad, [], "%d of %d live pointers wrong" % (len(bad), len(truth["live"]) + len(truth["leaked"])))


def freed_kinds(h, truth):
    """(wrong freed records, {where: count}).  A freed block is a free block
    of its own; or, when its page emptied and went back to its segment, it
    lies in a free span; or, a huge block (a segment of its own), its segment
    went back to the system: no segment of the heap holds it any more."""
    segments = {b["address"] for b in h.blocks if b["where"] == "segment"}
    bad, kinds = [], {}
    for r in truth["freed"]:
        b = h.by_address.get(r["address"])
        if b is not None and b["state"] == "free" and b["size"] == r["size"]:
            kinds[b["where"]] = kinds.get(b["where"], 0) + 1
            continue
        b = h.containing(r["address"])
        if b is not None and b["where"] == "span-free":
            kinds["span-free"] = kinds.get("span-free", 0) + 1
        elif b is None and r["size"] > 16 << 20 and r["address"] & ~((32 << 20) - 1) not in segments:
            kinds["returned"] = kinds.get("returned", 0) + 1
        else:
            bad.append((hex(r["address"]), r["size"], b))
    return bad, kinds


def check_leaks(tc, objects, truth):
    got = {(o["address"], o["size"], o["unreferenced"]) for o in objects}
    want = {(o["address"], o["size"], bool(o["unreferenced"])) for o in truth["leaked"]}
    tc.assertEqual(got, want)


def check_no_findings(tc, doc):
    errors = [d for d in doc.get("diagnostics", []) if d.get("level") in ("error", "warning")
              and d.get("stage") == "mimalloc"]
    tc.assertEqual(errors, [], "a consistent heap gives no mimalloc findings")


class MimallocCore:
    """Checks of one fixture core (mixed into a TestCase per variant and kind)."""
    name = None
    kind = None

    def setUp(self):
        self.core = mi_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)

    def test_found_as_mimalloc_2_0_9(self):
        # --allocator auto (the default) must pick mimalloc by itself.
        doc = hslib.run_json([self.core, "summary"], timeout=60)
        self.assertEqual(self.truth["version"], 209)
        mi = mi_desc(doc)
        self.assertEqual(mi["version"], "2.0.9")
        self.assertIn("mi_version() in libmimalloc.so.2", mi["layout_source"])
        self.assertEqual(mi["facts"]["mi_version"], 209)
        check_no_findings(self, doc)

    def test_every_live_pointer_is_used_with_its_size(self):
        check_live(self, Heap([self.core]), self.truth)

    def test_every_freed_pointer_is_free(self):
        h = Heap([self.core])
        bad, kinds = freed_kinds(h, self.truth)
        self.assertEqual(bad, [], "%d of %d freed pointers wrong" % (len(bad), len(self.truth["freed"])))
        # The fixture frees into every kind of list mimalloc has.
        self.assertEqual(sorted(kinds), FREE_STATES, kinds)
        check_no_findings(self, h.doc)

    def test_blocks_tile_the_segments(self):
        # Blocks never overlap, and every segment is covered from end to end
        # by its header, free spans, pages' blocks and their uncarved rest.
        h = Heap([self.core])
        end = 0
        for b in h.blocks:
            self.assertGreaterEqual(b["address"], end, b)
            end = b["address"] + b["size"]
        segs = [b for b in h.blocks if b["where"] == "segment"]
        self.assertTrue(segs)
        for s in segs:
            self.assertEqual(s["address"] % (32 << 20), 0, s)

    def test_threads_are_the_arenas(self):
        doc = hslib.run_json(["--allocator", "mimalloc", self.core, "arenas"], timeout=60)
        names = sorted(a["name"] for a in doc["arenas"])
        # main and workers 1, 2 own segments; worker 3 exited: abandoned.
        want = sorted(["mimalloc thread %d" % t for t in self.truth["threads"][:3]] + ["mimalloc abandoned"])
        self.assertEqual(names, want)

    def test_leaks_are_exactly_the_leaked_objects(self):
        doc = hslib.run_json(["--allocator", "mimalloc", self.core, "leaks", "--list"], timeout=60)
        check_leaks(self, doc["objects"], self.truth)


def make_cases():
    for name in VARIANTS:
        for kind in hslib.KINDS:
            cls_name = "Test_%s_%s" % (name, kind)
            globals()[cls_name] = type(cls_name, (MimallocCore, unittest.TestCase), {"name": name, "kind": kind})


make_cases()


def normalize(text):
    """Output with every number (sizes, counts, addresses) made N, spaces collapsed."""
    import re
    lines = []
    for line in text.strip().splitlines():
        line = re.sub(r"\b(0x[0-9a-fA-F]+|[0-9][0-9.]*)\b", "N", line)
        lines.append(" ".join(line.split()))
    return lines


class TestMimallocDocs(unittest.TestCase):
    """docs/mimalloc.md's examples are what heapscope prints (numbers aside)."""

    def test_doc_examples(self):
        with open(os.path.join(hslib.ROOT, "docs", "mimalloc.md")) as f:
            text = f.read()
        blocks = [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith("\n$ heapscope ")]
        self.assertEqual(len(blocks), 2)
        for b in blocks:
            cmd, want = b.split("\n", 1)
            args = [a.replace("build/cores/", hslib.CORES + "/") for a in cmd.split()[2:]]
            r = hslib.run(args, timeout=60)
            hslib.check_no_crash(r)
            self.assertEqual(normalize(r.stdout + r.stderr), normalize(want), cmd)


class TestMimallocBadInput(unittest.TestCase):
    """A damaged or foreign mimalloc core: a clear message, true partial results, never a crash."""

    def test_corrupt_free_list(self):
        src = mi_core("mimalloc_dynamic", "gdb")
        truth = hslib.truth("mimalloc_dynamic", "gdb")
        h = Heap([src])
        # A block on a page's free list whose link leads to another free
        # block: point the link into nowhere.
        freed = {r["address"] for r in truth["freed"]}
        victim = None
        segs = hslib.load_segments(src)
        with open(src, "rb") as f:
            for r in truth["freed"]:
                b = h.by_address.get(r["address"])
                if not b or b["where"] != "local-free":
                    continue
                f.seek(hslib.file_offset(segs, r["address"]))
                link, = struct.unpack("<Q", f.read(8))
                if link in freed:
                    victim = r["address"]
                    break
        self.assertIsNotNone(victim, "no local-free block links to another")
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "corrupt.core")
            shutil.copyfile(src, path)
            with open(path, "r+b") as f:
                f.seek(hslib.file_offset(segs, victim))
                f.write(struct.pack("<Q", 0x4141414141414140))
            bad = Heap([path])
            errors = [d for d in bad.doc["diagnostics"] if d["level"] == "error" and d.get("stage") == "mimalloc"]
            self.assertTrue(any("0x4141414141414140" in d["message"] and "local_free" in d["message"]
                                for d in errors), bad.doc["diagnostics"])
            # Everything live is still exactly right; freed blocks are right
            # except those behind the break (now counted as in use), and the
            # victim itself is still free.
            check_live(self, bad, truth)
            wrong, _ = freed_kinds(bad, truth)
            self.assertNotIn(hex(victim), [w[0] for w in wrong])
            for addr, _size, b in wrong:
                self.assertTrue(b and b["state"] == "used" and h.by_address[int(addr, 16)]["where"] == "local-free",
                                (addr, b))
            self.assertLess(len(wrong), 1024)
        finally:
            shutil.rmtree(tmp)

    def test_cyclic_free_list(self):
        # A free list that loops back to its first block: bounded, said, and
        # the blocks it did walk stay free.
        src = mi_core("mimalloc_dynamic", "kernel")
        truth = hslib.truth("mimalloc_dynamic", "kernel")
        h = Heap([src])
        segs = hslib.load_segments(src)
        chain = None
        with open(src, "rb") as f:
            for r in truth["freed"]:
                b = h.by_address.get(r["address"])
                if not b or b["where"] != "local-free":
                    continue
                f.seek(hslib.file_offset(segs, r["address"]))
                link, = struct.unpack("<Q", f.read(8))
                if link and h.by_address.get(link, {}).get("where") == "local-free":
                    chain = (r["address"], link)
                    break
        self.assertIsNotNone(chain)
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "cycle.core")
            shutil.copyfile(src, path)
            with open(path, "r+b") as f:
                f.seek(hslib.file_offset(segs, chain[1]))
                f.write(struct.pack("<Q", chain[0]))
            r = hslib.run(["--json", "--allocator", "mimalloc", path, "summary"], timeout=60)
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 0, r.describe())
            doc = json.loads(r.stdout)
            self.assertTrue(any("local_free list" in d["message"] and ("loops" in d["message"] or "another list" in d["message"])
                                for d in doc["diagnostics"]), doc["diagnostics"])
            bad = Heap([path])
            check_live(self, bad, truth)
            self.assertEqual(bad.by_address[chain[0]]["state"], "free")
            self.assertEqual(bad.by_address[chain[1]]["state"], "free")
        finally:
            shutil.rmtree(tmp)

    def test_truncated_core(self):
        src = mi_core("mimalloc_dynamic", "kernel")
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
                r = hslib.run(["--json", "--allocator", "mimalloc", path, "summary"], timeout=30)
                hslib.check_no_crash(r)
                self.assertIn(r.status, (0, 2, 3, 4), r.describe())
                if r.status:
                    self.assertTrue(r.stderr.strip(), "a failure says why")
        finally:
            shutil.rmtree(tmp)

    def test_unsupported_version_is_refused_by_name(self):
        # The fixture run with a libmimalloc.so.2 whose mi_version() returns
        # 210 (its structures are 2.0.9's: only the version tells).
        core = mi_core("mimalloc_badversion", "gdb")
        for args in (["--allocator", "mimalloc"], []):
            r = hslib.run(args + [core, "summary"], timeout=30)
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 4, r.describe())
            self.assertIn("libmimalloc.so.2 is mimalloc 2.1.0: not supported", r.stderr)

    def test_glibc_core_has_no_mimalloc(self):
        core = hslib.core("threads", "gdb")
        r = hslib.run(["--allocator", "mimalloc", core, "summary"], timeout=30)
        hslib.check_no_crash(r)
        self.assertNotEqual(r.status, 0)
        self.assertIn("mimalloc is not in this process", r.stderr)


class TestMimallocPid(unittest.TestCase):
    """--pid on the running fixture: the same exact checks as on its cores."""

    def test_pid_dynamic(self):
        self.check_pid("mimalloc_dynamic")

    def test_pid_stripped(self):
        self.check_pid("mimalloc_stripped")

    def check_pid(self, name):
        exe = os.path.join(hslib.CORES, name)
        if not os.access(exe, os.X_OK):
            raise AssertionError("%s is missing (run cores/make-mimalloc-cores.sh)" % exe)
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
            with open(path) as f:
                truth = json.load(f)
            target = ["--pid", str(p.pid)]
            h = Heap(target)
            check_live(self, h, truth)
            bad, kinds = freed_kinds(h, truth)
            self.assertEqual(bad, [])
            self.assertEqual(sorted(kinds), FREE_STATES, kinds)
            check_no_findings(self, h.doc)
            doc = hslib.run_json(["--allocator", "mimalloc"] + target + ["leaks", "--list"], timeout=60)
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
