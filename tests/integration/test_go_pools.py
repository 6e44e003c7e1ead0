"""Go sync.Pools (issue 15, item 6): every pool of a Go program and what its
per-P caches hold, exactly.

The fixture, cores/go_pools/main.go (cores/make-go-cores.sh), has three
global pools: main.bufPool (*main.Buf, each holding a 64 KiB buffer: 4 put
before a GC, which moved them to the victim cache, 3 after), main.connPool
(21 *main.Conn: 1 private, 20 on the shared chain of two rings) and
main.slicePool (3 []byte values boxed in slice headers, all in the victim
cache; the pool is in sync.oldPools only).  Its truth: per pool the object
addresses by cache, their size and type, and the bytes only the pooled
objects keep alive (the buffers).  Built with go1.19 and go1.21-1.24, gdb
cores (stopped in main.dump_here) and kernel cores (GOTRACEBACK=crash).

The checks are exact: each pool's anchor (the global), count, bytes, object
size, private/shared/victim counts, type, every object's address and cache,
polluted and polluted_retained; with --no-debuginfo (go1.19's built-in
rows) the same document; summary's pooled count is the pools'; show and
chain name the pool of a pooled object.

Owners (issue 15, item 7), on the same cores: main.registry (a []*Session
of 64, each Session with a 1024-byte buffer), main.index (a list of 100
nodes), goroutine main.holdSessions (32 Sessions with 2048-byte buffers)
and goroutine main.holdBlob (a 1 MiB []byte) retain exactly the objects and
bytes the fixture made each one keep, named as `goroutine N (function)`.

Run alone:  BUILD=build python3 tests/integration/test_go_pools.py
"""
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402


class PoolsCore:
    name = kind = None
    extra = ()

    def setUp(self):
        self.core = hslib.go_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)
        self.doc = hslib.run_json(list(self.extra) + [self.core, "pools", "--list"], timeout=120)
        self.pools = {p["anchor"]: p for p in self.doc["pools"]}

    def test_each_pool_exactly(self):
        for want in self.truth["pools"]:
            got = self.pools.get(want["anchor"])
            self.assertIsNotNone(got, "%s not in %s" % (want["anchor"], sorted(self.pools)))
            self.assertEqual(got["kind"], "sync.Pool")
            self.assertIsNone(got["head"])
            self.assertFalse(got["broken"])
            self.assertEqual((got["count"], got["bytes"]), (want["count"], want["bytes"]), want["anchor"])
            self.assertEqual((got["private"]["count"], got["shared"]["count"], got["victim"]["count"]),
                             (want["private"], want["shared"], want["victim"]), want["anchor"])
            self.assertEqual(got["types"], [{"type": want["type"], "count": want["count"], "bytes": want["bytes"]}])
            self.assertEqual(got["polluted_retained"], want["retained"], want["anchor"])
            self.assertEqual(got["polluted"], want["count"] if want["retained"] else 0, want["anchor"])
            self.assertEqual(got["procs"], 1 if want["local_objects"] else 0)
            self.assertEqual(got["victim_procs"], 1 if want["victim_objects"] else 0)
            objs = got["objects"]
            self.assertEqual({o["size"] for o in objs}, {want["object_size"]})
            self.assertEqual({o["type"] for o in objs}, {want["type"]})
            self.assertEqual({o["p"] for o in objs}, {0})
            self.assertEqual(sorted(o["address"] for o in objs if o["cache"] != "victim"),
                             sorted(want["local_objects"]))
            self.assertEqual(sorted(o["address"] for o in objs if o["cache"] == "victim"),
                             sorted(want["victim_objects"]))

    def test_totals_and_diagnostics(self):
        self.assertEqual(self.doc["pooled"]["count"], sum(p["count"] for p in self.doc["pools"]))
        self.assertEqual(self.doc["pooled"]["bytes"], sum(p["bytes"] for p in self.doc["pools"]))
        self.assertEqual(self.doc["diagnostics"], [])
        # Most retained first.
        keys = [p["bytes"] + p["polluted_retained"] for p in self.doc["pools"]]
        self.assertEqual(keys, sorted(keys, reverse=True))

    def test_summary_counts_them_pooled(self):
        doc = hslib.run_json(list(self.extra) + [self.core, "summary"], timeout=120)
        self.assertEqual(doc["pooled"], self.doc["pooled"])
        self.assertEqual(doc["pools"], len(self.doc["pools"]))

    def test_show_and_chain_name_the_pool(self):
        want = self.truth["pools"][0]
        addr = want["victim_objects"][0]
        doc = hslib.run_json(list(self.extra) + [self.core, "show", hex(addr)], timeout=120)
        self.assertEqual(doc["pool"]["anchor"], want["anchor"])
        doc = hslib.run_json(list(self.extra) + [self.core, "chain", hex(addr)], timeout=120)
        self.assertEqual(doc["chain"][0]["kind"], "global")
        # The word of the pool that holds its victim cache.
        self.assertEqual(doc["chain"][0]["symbol"], want["anchor"] + "+0x10")
        self.assertTrue(doc["chain"][-1]["pooled"])
        self.assertEqual(doc["chain"][-1]["pool"], want["anchor"])


class OwnersCore:
    """owners on the same cores: the globals main.registry and main.index and
    the goroutines main.holdSessions and main.holdBlob keep alone what the
    fixture made them keep, exactly."""
    name = kind = None

    def setUp(self):
        self.core = hslib.go_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)
        self.doc = hslib.run_json([self.core, "owners"], timeout=120)
        self.roots = {r["name"]: r for r in self.doc["roots"]}

    def test_globals_and_goroutines_retain_exactly(self):
        for want in self.truth["owners"]:
            got = self.roots.get(want["name"])
            self.assertIsNotNone(got, "%s not in %s" % (want["name"], sorted(self.roots)[:40]))
            self.assertEqual((got["kind"], got["count"], got["retained"]),
                             (want["kind"], want["count"], want["retained"]), want["name"])

    def test_a_goroutine_holds_by_a_live_slot_of_its_frame(self):
        """main.holdBlob's 1 MiB blob is live across its receive: the word
        that holds it is a live pointer slot of main.holdBlob's frame by the
        executable's stack map (funcdata), not a word scanned conservatively."""
        top = hslib.run_json([self.core, "top", "--limit", "1"], timeout=120)["objects"][0]
        self.assertEqual(top["size"], 1 << 20)
        ch = hslib.run_json([self.core, "chain", hex(top["address"])], timeout=120)["chain"]
        self.assertEqual(len(ch), 2, ch)
        self.assertEqual((ch[0]["kind"], ch[0]["function"], ch[0]["stack_map"]), ("stack", "main.holdBlob", True))
        text = hslib.run([self.core, "chain", hex(top["address"])], timeout=120).stdout
        self.assertRegex(text, r"in goroutine \d+ \(main.holdBlob\), frame of main.holdBlob "
                               r"\(a live pointer by its stack map\)")

    def test_top_of_every_object(self):
        """top with a limit past every object: 41 of them are reached from
        several roots, and their owners are the rows they are reached
        through, gathered with the rooted rows' (that list once overflowed
        its array: a crash at exit, or a heap overflow under ASan).  The
        first rows are those of a short top, owners and all."""
        full = hslib.run_json([self.core, "top", "--limit", "100000"], timeout=120)
        self.assertFalse(full["objects_truncated"])
        self.assertEqual(len(full["objects"]), full["objects_total"])
        kinds = [o["owner"]["kind"] for o in full["objects"]]
        self.assertGreater(kinds.count("shared"), 16)
        self.assertTrue(all(o["owner"]["name"] for o in full["objects"]))
        short = hslib.run_json([self.core, "top", "--limit", "20"], timeout=120)
        self.assertEqual(short["objects"], full["objects"][:20])

    def test_no_thread_stacks_on_a_go_heap(self):
        # Goroutine stacks are named by their goroutine; the Ms' own stacks
        # are not roots.
        kinds = {r["kind"] for r in self.doc["roots"]}
        self.assertNotIn("stack", kinds)
        self.assertIn("goroutine", kinds)
        self.assertEqual(self.doc["diagnostics"], [])

    def test_histogram_types_pooled_objects(self):
        """Pooled objects are reached only through the pools' unsafe.Pointer
        caches: typed by their interface values (with DWARF)."""
        doc = hslib.run_json([self.core, "histogram", "--by", "type"], timeout=120)
        got = {g["type"]: g["count"] for g in doc["groups"]}
        for want in self.truth["pools"]:
            if want["type"].startswith("*"):
                self.assertEqual(got.get(want["type"][1:]), want["count"], want["type"])

    def test_the_text_names_them(self):
        r = hslib.run([self.core, "owners", "--limit", "100"], timeout=120)
        self.assertEqual(r.status, 0, r.describe())
        for want in self.truth["owners"]:
            self.assertRegex(r.stdout, r"\n +[0-9.]+ [KMG]?i?B +%d  %-9s %s\n"
                             % (want["count"], want["kind"], re.escape(want["name"])))


def make_cases():
    cases = [("go%s_pools" % v if v else "go_pools", kind, ()) for v in hslib.GO_VERSIONS for kind in ("gdb", "kernel")]
    cases += [("go_pools", "kernel", ("--no-debuginfo",))]
    for name, kind, extra in cases:
        cls = type("TestGoPools_%s_%s%s" % (name, kind, "_nodebuginfo" if extra else ""),
                   (PoolsCore, unittest.TestCase), {"name": name, "kind": kind, "extra": extra})
        globals()[cls.__name__] = cls
        if not extra:
            cls = type("TestGoOwners_%s_%s" % (name, kind), (OwnersCore, unittest.TestCase),
                       {"name": name, "kind": kind})
            globals()[cls.__name__] = cls


make_cases()


class TestGoPoolsGdbTwin(unittest.TestCase):
    """GDB's `hs pools` and `hs owners` print what the CLI prints."""

    def twin(self, name):
        import gdbutil
        gdbutil.need_build()
        core = hslib.go_core(name, "gdb")
        exe = os.path.join(hslib.CORES, name)
        tmp = tempfile.mkdtemp(prefix="hs-pools-gdb-")
        cases = (("pools", "hs pools", ["pools"]), ("pools-json", "hs --json pools --list", ["pools", "--list"]),
                 ("owners", "hs owners", ["owners"]))
        try:
            args = gdbutil.batch_args(tmp) + ["-ex", "file " + exe, "-ex", "core-file " + core]
            for tag, cmd, _ in cases:
                args += ["-ex", "python _hs_case(%r, %r)" % (tag, cmd)]
            s = gdbutil.run_batch(args, 300)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        s.check_alive(self)
        for tag, _, cli in cases:
            if tag.endswith("-json"):
                got, want = s.json(tag), gdbutil.cli_json(core, *cli)
                self.assertEqual(got, want, gdbutil.doc_diff(got, want)[0])
            else:
                self.assertEqual(s.ok(tag).strip(), gdbutil.cli(core, *cli).stdout.strip())

    def test_go_1_19(self):
        self.twin("go_pools")

    def test_go_1_24(self):
        self.twin("go124_pools")


class TestGoPoolsText(unittest.TestCase):
    def test_the_table(self):
        core = hslib.go_core("go124_pools", "kernel")
        r = hslib.run([core, "pools"], timeout=120)
        self.assertEqual(r.status, 0, r.describe())
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["SYNC.POOL", "COUNT", "BYTES", "RETAINED", "POLLUTED", "PRIVATE",
                                            "SHARED", "VICTIM", "TYPES"])
        row = [l.split() for l in lines if l.split()[:1] == ["main.bufPool"]][0]
        self.assertEqual(row[1], "7")
        self.assertEqual(row[-4:], ["1", "2", "4", "*main.Buf"])
        self.assertRegex(lines[-1], r"^\d+ pools, \d+ pooled objects")

    def test_no_pool_holds_anything(self):
        """cores/go_heap never uses a sync.Pool: no pool, said so."""
        core = hslib.go_core("go124_heap", "kernel")
        self.assertEqual(hslib.run_json([core, "pools"])["pools"], [])
        r = hslib.run([core, "pools"], timeout=120)
        self.assertEqual(r.status, 0, r.describe())
        self.assertEqual(r.stdout.splitlines()[0], "  (no sync.Pool holds anything)")


if __name__ == "__main__":
    import gdbutil
    sys.exit(gdbutil.main(sys.modules[__name__], gdbutil.Scratch("hs-pools-")))
