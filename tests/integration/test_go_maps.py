"""Go maps (issue 15, item 5, and map keys in chain and refs, item 3): every
map of the fixture as the runtime's own structures describe it, exactly.

The fixture, cores/go_maps/main.go (cores/make-go-cores.sh), fills global
maps of known shape: main.sessions (map[string]*main.Conn, 200 entries),
main.registry.ByID (map[int]*main.Order in a global struct, 300), main.churn
(map[int]string: 2000 inserted, 1900 deleted: tombstones), main.small (3
entries: one bucket or group), main.growing (1665 entries: with buckets, a
grow not finished), main.empty (made, empty) and main.byConn (pointer
keys).  Its truth: each map's
address as %p prints it, count, key and value types (reflect), and its shape
read from the runtime's own header with that release's layout: buckets
(hmap: 1 << B; Swiss: groups), overflow buckets and emptyOne tombstones
(hmap, go1.19-1.23), deleted slots and tables (Swiss, go1.24); every entry of
sessions, registry.ByID, churn and byConn; the *Conn of sessions["sess/00012"] and
the *Order of registry.ByID[42].  Built with go1.19 and go1.21-1.24, gdb
cores (stopped in main.dump_here) and kernel cores (GOTRACEBACK=crash); and
with -ldflags=-w (no DWARF: maps are found through DWARF, and the report says
so).

The checks are exact: `maps --json` has each fixture map at its %p address,
anchored by its Go name, with the truth's count, types, layout, buckets,
overflow buckets, tombstones and tables; `map NAME --json` lists exactly the
truth's entries (keys, value addresses or value text); `chain` to the
chosen *Conn and *Order goes through the map's bucket array named by the
entry (main.sessions["sess/00012"]), and `refs` names the same entry.  GDB's
`hs maps` prints what the CLI prints.

Run alone:  BUILD=build python3 tests/integration/test_go_maps.py
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402


class GoMapsCore:
    name = kind = None

    @classmethod
    def setUpClass(cls):
        cls.core = hslib.go_core(cls.name, cls.kind)
        cls.truth = hslib.truth(cls.name, cls.kind)
        cls.doc = hslib.run_json([cls.core, "maps"], timeout=300)
        cls.by_addr = {c["address"]: c for c in cls.doc["containers"]}

    def test_same_from_a_small_index(self):
        """Discovery asks of every map header whether it is known already,
        through containers.c's index by address; started at 4 slots (the
        test hook), the index grows on every fixture, and finds the same
        containers in the same order."""
        os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"] = "1"
        try:
            # (Not run_json: it would answer from its cache.)
            r = hslib.run(["--json", self.core, "maps"], timeout=300)
        finally:
            del os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"]
        self.assertEqual(r.status, 0, r.describe())
        doc = json.loads(r.stdout)
        self.assertGreater(len(doc["containers"]), 2)
        self.assertEqual(doc["containers"], self.doc["containers"])

    def found(self, m):
        c = self.by_addr.get(m["address"])
        self.assertIsNotNone(c, "%s at 0x%x is not among the maps" % (m["name"], m["address"]))
        return c

    def test_every_map_exactly(self):
        self.assertEqual(len(self.truth["maps"]), 7)
        for m in self.truth["maps"]:
            with self.subTest(m=m["name"]):
                c = self.found(m)
                self.assertEqual(c["anchor"], m["name"])
                self.assertEqual((c["kind"], c["family"], c["leaked"]), ("map", "gomap", False))
                self.assertEqual(c["count"], m["count"])
                self.assertEqual((c["key_type"], c["value_type"]), (m["key_type"], m["value_type"]))
                self.assertEqual(c["layout"], m["layout"])
                self.assertEqual(c["buckets"], m["buckets"])
                self.assertEqual(c["tombstones"], m["tombstones"])
                if m["layout"] == "hmap":
                    self.assertEqual(c["overflow_buckets"], m["overflow"])
                    self.assertIsNone(c["tables"])
                else:
                    self.assertEqual(c["tables"], m["tables"])
                    self.assertIsNone(c["overflow_buckets"])
                self.assertEqual(c["findings"], [])
                self.assertGreaterEqual(c["retained"], c["bytes"])
                self.assertGreaterEqual(c["bytes"], 48)

    def test_every_shard(self):
        """main.shards: 66,000 maps of one entry in one slice's backing
        array, more elements than the Go typing once visited of one block
        (65,536): the last shard was no map at all.  Every one is found,
        typed map[int]int, with its one entry."""
        sh = self.truth["shards"]
        self.assertEqual(sh["count"], 66000)
        shards = [c for c in self.doc["containers"] if (c["anchor"] or "").startswith("main.shards")]
        self.assertEqual(sorted(c["anchor"] for c in shards),
                         sorted("main.shards->[%d]" % i for i in range(sh["count"])))
        self.assertEqual({(c["family"], c["key_type"], c["value_type"], c["count"], len(c["findings"]))
                          for c in shards}, {("gomap", "int", "int", 1, 0)})
        for addr, i in ((sh["first"], 0), (sh["last"], sh["count"] - 1)):
            c = self.by_addr.get(addr)
            self.assertIsNotNone(c, "shard 0x%x is not among the maps" % addr)
            self.assertEqual(c["anchor"], "main.shards->[%d]" % i)

    def test_shape_of_the_fixture(self):
        """What the fixture was made to show: tombstones after deletions, a
        bucket array kept for a 20th of its entries, a grow in progress."""
        m = {x["name"]: x for x in self.truth["maps"]}
        self.assertGreater(m["main.churn"]["tombstones"], 0)
        self.assertEqual(m["main.churn"]["buckets"], 512)
        self.assertEqual(m["main.empty"]["buckets"], 0)
        self.assertEqual(m["main.small"]["buckets"], 1)
        self.assertEqual(m["main.growing"]["growing"], m["main.growing"]["layout"] == "hmap")

    def test_retained_by_value(self):
        """Each *Order (48 bytes) is reached only through its map: the map
        retains them, exactly.  Each *Conn (48 bytes) and its 40-byte buffer
        are retained by main.sessions, and its key's 10 bytes (a 16-byte
        tiny block) too, unless a stale word on a goroutine stack (scanned
        conservatively) still reaches the fixture's truth writer's
        []main.entry, which holds the keys (seen on go1.22 and go1.23), or
        a tiny block holds another small object."""
        m = {x["name"]: x for x in self.truth["maps"]}
        s, r = self.found(m["main.sessions"]), self.found(m["main.registry.ByID"])
        self.assertEqual(r["retained"] - r["bytes"], 300 * 48)
        self.assertGreaterEqual(s["retained"] - s["bytes"], 200 * (48 + 48))
        self.assertLessEqual(s["retained"] - s["bytes"], 200 * (48 + 48 + 16) + 64)

    def test_owned_as_owners_says(self):
        """export's ownership stacks (report's and diff's too) give each
        global map what owners says it alone keeps: a bucket array awaiting
        GC (left by a grow) that still points at live entries is no way in
        to them.  Once main.sessions' Conns and main.churn's strings were
        "[several roots]" for it, on every core here."""
        roots = {r["name"]: r for r in hslib.run_json([self.core, "owners"], timeout=300)["roots"]}
        r = hslib.run([self.core, "export", "--format", "folded"], timeout=300)
        self.assertEqual(r.status, 0, r.describe())
        held = {}
        for line in r.stdout.splitlines():
            stack, _, n = line.rpartition(" ")
            frames = stack.split(";")
            if frames[0] == "globals":
                held[frames[1]] = held.get(frames[1], 0) + int(n)
        for name in ("main.sessions", "main.registry", "main.churn", "main.growing", "main.shards"):
            self.assertEqual(held.get(name), roots[name]["retained"], name)

    def entries(self, name):
        doc = hslib.run_json([self.core, "map", name], timeout=300)
        self.assertEqual(doc["container"]["anchor"], name)
        return doc["entries"]

    def test_entries_with_pointer_values(self):
        for name in ("main.sessions", "main.registry.ByID"):
            with self.subTest(m=name):
                got = sorted((e["key"], e["value"]) for e in self.entries(name))
                want = sorted((e["key"], e["value"]) for e in self.truth["entries"][name])
                self.assertEqual(got, want)
                vt = "main.Conn" if name == "main.sessions" else "main.Order"
                self.assertEqual({e["value_type"] for e in self.entries(name)}, {vt})

    def test_entries_with_string_values(self):
        got = sorted((e["key"], e["value_text"]) for e in self.entries("main.churn"))
        want = sorted((e["key"], e["text"]) for e in self.truth["entries"]["main.churn"])
        self.assertEqual(got, want)
        self.assertEqual(len(got), 100)

    def test_entries_with_pointer_keys(self):
        """A pointer key is shown by its value (text); JSON has no key
        value for it (null) but the key's address."""
        want = sorted((e["key"], e["value"]) for e in self.truth["entries"]["main.byConn"])
        es = self.entries("main.byConn")
        self.assertEqual([e["key"] for e in es], [None] * 3)
        self.assertEqual(sorted(e["value_text"] for e in es), [v for _, v in want])
        r = hslib.run([self.core, "map", "main.byConn"], timeout=300)
        self.assertEqual(r.status, 0, r.describe())
        rows = [l.split() for l in r.stdout.splitlines()[3:] if l.strip()]
        self.assertEqual(sorted((int(w[0], 16), int(w[-1])) for w in rows), want)

    def test_entries_by_address(self):
        m = self.truth["maps"][0]
        doc = hslib.run_json([self.core, "map", "0x%x" % m["address"], "--limit", "5"], timeout=300)
        self.assertEqual(doc["container"]["anchor"], m["name"])
        self.assertEqual(len(doc["entries"]), 5)

    def test_chain_and_refs_name_the_key(self):
        for entry, target in sorted(self.truth["chain"].items()):
            with self.subTest(entry=entry):
                ch = hslib.run_json([self.core, "chain", "0x%x" % target], timeout=300)["chain"]
                self.assertEqual(ch[-1]["address"], target)
                self.assertEqual(ch[-2]["entry"], entry)
                self.assertEqual(ch[0]["kind"], "global")
                self.assertEqual([e["kind"] for e in ch[1:]], ["allocation"] * (len(ch) - 1))
                refs = hslib.run_json([self.core, "refs", "0x%x" % target], timeout=300)["referrers"]
                self.assertEqual([r.get("entry") for r in refs], [entry])
                text = hslib.run([self.core, "chain", "0x%x" % target], timeout=300)
                self.assertEqual(text.status, 0, text.describe())
                self.assertIn(" " + entry + "\n", text.stdout)


def make_cases():
    for v in hslib.GO_VERSIONS:
        for kind in ("gdb", "kernel"):
            name = "go%s_maps" % v if v else "go_maps"
            cls = type("TestGoMaps_%s_%s" % (name, kind), (GoMapsCore, unittest.TestCase),
                       {"name": name, "kind": kind})
            globals()[cls.__name__] = cls


make_cases()


class TestGoMapsNoDwarf(unittest.TestCase):
    """-ldflags=-w: Go maps are found through DWARF; the report says so and
    what still works."""

    def test_said(self):
        core = hslib.go_core("go_maps_nodwarf", "kernel")
        doc = hslib.run_json([core, "maps"], timeout=300)
        self.assertEqual([c for c in doc["containers"] if c["family"] == "gomap"], [])
        msgs = " ".join(d["message"] for d in doc["diagnostics"])
        self.assertIn("Go maps are found through the executable's DWARF, and it has none", msgs)
        self.assertIn("chain, refs, top and goroutines still work", msgs)
        r = hslib.run([core, "maps"], timeout=300)
        self.assertEqual(r.status, 0, r.describe())
        self.assertIn("No containers found.", r.stdout)
        self.assertIn("it has none (built with -ldflags=-w?)", r.stdout + r.stderr)


class TestGoMapsDamaged(unittest.TestCase):
    """A copy of a kernel core with a map header or its buckets overwritten:
    the map is listed marked corrupt with a diagnostic naming it and what
    is wrong, the others exactly as before; never a crash or a hang."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hs-gomaps-bad-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def damaged(self, name, writes):
        """writes(read) -> [(address, u64)]; read(address) -> u64 of the core."""
        import struct
        src = hslib.go_core(name, "kernel")
        segs = hslib.load_segments(src)
        with open(src, "rb") as f:
            data = bytearray(f.read())

        def read(addr):
            return struct.unpack_from("<Q", data, hslib.file_offset(segs, addr))[0]
        for addr, v in writes(read):
            struct.pack_into("<Q", data, hslib.file_offset(segs, addr), v & (2**64 - 1))
        fd, dst = tempfile.mkstemp(suffix=".core", dir=self.tmp)
        os.close(fd)
        with open(dst, "wb") as f:
            f.write(data)
        return dst

    def check(self, name, writes, why):
        truth = hslib.truth(name, "kernel")
        sess = [m for m in truth["maps"] if m["name"] == "main.sessions"][0]
        core = self.damaged(name, lambda read: writes(read, sess["address"]))
        doc = hslib.run_json([core, "maps"], timeout=300)
        by = {c["address"]: c for c in doc["containers"]}
        self.assertEqual(by[sess["address"]]["findings"], ["corrupt"])
        msgs = [d["message"] for d in doc["diagnostics"] if d["stage"] == "containers"]
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn("Go map[string]*main.Conn at 0x%x: " % sess["address"], msgs[0])
        self.assertIn(why, msgs[0])
        for m in truth["maps"]:
            if m["name"] != "main.sessions":
                self.assertEqual((by[m["address"]]["count"], by[m["address"]]["findings"]), (m["count"], []))
        for args in (["map", "main.sessions"], ["refs", "0x%x" % truth["chain"]['main.sessions["sess/00012"]']]):
            r = hslib.run([core] + args, timeout=300)
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 0, r.describe())

    def test_count_that_lies(self):
        self.check("go_maps", lambda read, h: [(h, 1 << 40)], "its count says 1099511627776 entries")
        self.check("go124_maps", lambda read, h: [(h, 7)], "it says 7 entries, its groups hold 200")

    def test_too_many_buckets(self):
        # B is byte 9 of the hmap header.
        self.check("go_maps", lambda read, h: [(h + 8, read(h + 8) | 0xff00)], "B = 255")

    def test_buckets_elsewhere(self):
        self.check("go_maps", lambda read, h: [(h + 16, 0x1000)], "bucket array 0x1000 is not in a heap object")
        self.check("go124_maps", lambda read, h: [(h + 16, 0x1000)], "its directory 0x1000 is not in a heap object")

    def test_overflow_cycle(self):
        """The first bucket's overflow pointer names itself: a chain without end."""
        def writes(read, h):
            b = read(h + 16)
            return [(b + 208 - 8, b)]   # bucket<string,*main.Conn>: 208 bytes, overflow last
        self.check("go_maps", writes, "an overflow chain is longer than 65536 buckets")

    def test_huge_directory(self):
        self.check("go124_maps", lambda read, h: [(h + 24, 1 << 40)], "its directory has 1099511627776 entries")


class TestGoMapsGdbTwin(unittest.TestCase):
    """GDB's `hs maps` and `hs map` (a GDB expression: the Go map variable)
    print what the CLI prints."""

    def twin(self, name):
        import gdbutil
        gdbutil.need_build()
        core = hslib.go_core(name, "gdb")
        exe = os.path.join(hslib.CORES, name)
        tmp = tempfile.mkdtemp(prefix="hs-gomaps-gdb-")
        try:
            args = gdbutil.batch_args(tmp) + ["-ex", "file " + exe, "-ex", "core-file " + core]
            for tag, cmd in (("text", "hs maps"), ("json", "hs --json maps"),
                             ("map", "hs --json map main.registry.ByID")):
                args += ["-ex", "python _hs_case(%r, %r)" % (tag, cmd)]
            s = gdbutil.run_batch(args, 300)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        s.check_alive(self)
        self.assertEqual(s.ok("text").strip(), gdbutil.cli(core, "maps").stdout.strip())
        got, want = s.json("json"), gdbutil.cli_json(core, "maps")
        self.assertEqual(got, want, gdbutil.doc_diff(got, want)[0])
        got, want = s.json("map"), gdbutil.cli_json(core, "map", "main.registry.ByID")
        self.assertEqual(got, want, gdbutil.doc_diff(got, want)[0])
        self.assertEqual(len(got["entries"]), 300)

    def test_go_1_19(self):
        self.twin("go_maps")

    def test_go_1_24(self):
        self.twin("go124_maps")


if __name__ == "__main__":
    import gdbutil
    sys.exit(gdbutil.main(sys.modules[__name__], gdbutil.Scratch("hs-gomaps-")))
