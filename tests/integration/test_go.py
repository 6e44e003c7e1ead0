"""The Go runtime heap (go1.19, go1.21-1.24): every figure the runtime itself gave, exactly.

The fixture cores come from cores/make-go-cores.sh: cores/go_heap/main.go built
with Debian 12's Go 1.19 as go_heap (DWARF), go_heap_nodwarf (-ldflags=-w:
symbols, no DWARF), go_heap_stripped (-ldflags='-s -w') and go_heap_cgo (cgo:
C blocks from glibc's malloc too, half freed), and with Go
1.21, 1.22, 1.23 (Debian 12 backports) and 1.24 (Debian 13) as go12N_heap; a
gdb core of go_heap and each go12N_heap and a kernel core (GOTRACEBACK=crash,
SIGABRT) of each.  The program
allocates objects of several size classes and large ones, drops half of them,
collects twice with the GC then turned off, and writes runtime.ReadMemStats'
figures (which stop the world and flush every mcache) as its truth, with
nothing allocated after them.

The checks are exact: allocated objects and bytes are MemStats.HeapObjects
and HeapAlloc; allocated objects by size are MemStats.BySize (Mallocs -
Frees, up to its last class; the rest are the remainder); the in-use spans'
bytes (objects, free slots and span tails) are HeapInuse; idle pages are
HeapIdle; the mspan and mcache structs are MSpanInuse and MCacheInuse; each
kept object is an allocated block of its size class at its address, each
dropped one is free; the built-in go1.19 layout (no DWARF) gives the same
numbers as DWARF.  A binary without symbols gets a message saying what is
missing; reachability is refused for Go (exit 4), never guessed; a damaged
span is reported and left out, the rest stays exact; a truncated core exits 3
without a crash.  --pid on the running fixture gives the same exact figures.
GDB's `hs summary` prints what the CLI prints.

Run alone:  BUILD=build python3 tests/integration/test_go.py
(last line "N passed, N failed"; exit status 1 on failure), or through run.py.
"""
import bisect
import collections
import json
import os
import re
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

FREE_STATES = ("free-slot", "idle-pages")


def go_desc(doc):
    for a in doc.get("allocators", []):
        if a["name"] == "go":
            return a
    raise AssertionError("no go allocator in %s" % [a["name"] for a in doc.get("allocators", [])])


def by_where(doc):
    return {w["where"]: (w["count"], w["bytes"]) for w in doc["by_where"]}


class Heap:
    """The blocks of one core, sorted, with a lookup for any address; go_used:
    the used blocks of the Go heap's arenas (a cgo program has glibc's too)."""

    def __init__(self, args):
        self.doc = hslib.run_json(args + ["chunks"], timeout=120)
        self.blocks = sorted(self.doc["allocations"], key=lambda b: b["address"])
        self.starts = [b["address"] for b in self.blocks]
        arenas = hslib.run_json(args + ["arenas"], timeout=120)["arenas"]
        go = {a["index"] for a in arenas if a["allocator"] == "go"}
        self.go_used = [b for b in self.blocks if b["state"] == "used" and b["arena"] in go]

    def containing(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.blocks[i]["address"] + self.blocks[i]["size"]:
            return self.blocks[i]
        return None


class GoCore:
    """Checks of one fixture core (mixed into a TestCase per variant and kind)."""
    name = None
    kind = None
    extra = ()
    layout = "DWARF"

    def setUp(self):
        self.core = hslib.go_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)
        self.args = list(self.extra) + [self.core]
        self.summary = hslib.run_json(self.args + ["summary"], timeout=120)

    def test_found_as_go_1_19(self):
        d = go_desc(self.summary)
        self.assertEqual(self.summary["allocator"], "glibc+go" if self.truth["c_live"] else "go")
        self.assertEqual(d["version"], self.truth["go_version"])
        self.assertTrue(d["layout_source"].startswith(self.layout), d["layout_source"])

    def test_in_use_is_heap_objects_and_heap_alloc(self):
        go = go_desc(self.summary)["in_use"]
        self.assertEqual((go["count"], go["bytes"]), (self.truth["heap_objects"], self.truth["heap_alloc"]))
        if not self.truth["c_live"]:
            self.assertEqual(self.summary["in_use"], go)

    def test_in_use_by_size_is_by_size(self):
        used = collections.Counter(b["size"] for b in Heap(self.args).go_used)
        top = self.truth["by_size_max"]
        got = {size: n for size, n in used.items() if size <= top}
        want = {c["size"]: c["count"] for c in self.truth["by_size"]}
        self.assertEqual(got, want)
        rest = sum(n for size, n in used.items() if size > top)
        self.assertEqual(rest, self.truth["heap_objects"] - sum(want.values()))

    def test_spans_in_use_are_heap_inuse(self):
        w = by_where(self.summary)
        total = go_desc(self.summary)["in_use"]["bytes"] + sum(w.get(k, (0, 0))[1] for k in ("free-slot", "span-tail"))
        self.assertEqual(total, self.truth["heap_inuse"])

    def test_idle_pages_are_heap_idle(self):
        self.assertEqual(by_where(self.summary)["idle-pages"][1], self.truth["heap_idle"])

    def test_runtime_structs_are_mspan_and_mcache_inuse(self):
        facts = go_desc(self.summary)["facts"]
        self.assertEqual(facts["mspan structs bytes"], self.truth["mspan_inuse"])
        self.assertEqual(facts["mcache structs bytes"], self.truth["mcache_inuse"])
        self.assertEqual(by_where(self.summary)["mcache"][1], self.truth["mcache_inuse"])

    def test_stacks_are_named_and_hold_the_stacks(self):
        w = by_where(self.summary)
        self.assertGreaterEqual(w["stack-span"][1], self.truth["stack_inuse"])
        self.assertEqual(w["stack-span"][1] % 8192, 0)
        self.assertIn("arena-meta", w)
        self.assertIn("span-struct", w)

    def test_kept_objects_are_used_with_their_size_class(self):
        h = Heap(self.args)
        # go1.22+: an object with pointers of more than 512 bytes in a small
        # size class starts after the 8-byte malloc header in its slot.
        header = 8 if self.truth["go_version"] >= "go1.22" else 0
        bad = []
        for k in self.truth["kinds"]:
            b = h.containing(k["kept_address"])
            skip = header if k["name"] == "rec8k" else 0
            if not b or b["address"] + skip != k["kept_address"] or b["state"] != "used" or b["size"] != k["size"]:
                bad.append((k["name"], hex(k["kept_address"]), b))
        self.assertEqual(bad, [])

    def test_dropped_objects_are_free(self):
        h = Heap(self.args)
        garbage = set(self.truth["garbage"]["addresses"])
        bad = []
        for k in self.truth["kinds"]:
            if not k["freed_address"]:
                continue
            b = h.containing(k["freed_address"])
            # Its pages may since hold a goroutine stack (the GC's stack
            # shrinking takes freed pages): gone from the heap all the same.
            if b and b["where"] == "stack-span":
                continue
            # Or its slot was taken by one of the garbage objects the fixture
            # allocates after its last GC (their truth names each address).
            if b and b["state"] == "used" and b["address"] in garbage and b["size"] == self.truth["garbage"]["size"]:
                continue
            if not b or b["state"] != "free" or b["where"] not in FREE_STATES:
                bad.append((k["name"], hex(k["freed_address"]), b))
        self.assertEqual(bad, [])

    def test_large_objects(self):
        used = collections.Counter(b["size"] for b in Heap(self.args).go_used)
        for k in self.truth["kinds"]:
            if k["size"] > 32768:
                self.assertEqual(used[k["size"]], k["kept"], k["name"])

    def test_no_findings(self):
        bad = [d for d in self.summary.get("diagnostics", []) if d.get("level") in ("error", "warning")]
        self.assertEqual(bad, [])

    def test_c_blocks_are_glibc_blocks(self):
        """cgo: glibc's heap beside Go's: each live C block used with its
        usable size; each freed one free, or (a mmapped block) gone."""
        h = Heap(self.args)
        bad = []
        for b in self.truth["c_live"]:
            got = h.containing(b["address"])
            if not got or got["address"] != b["address"] or got["state"] != "used" or got["size"] != b["size"]:
                bad.append(("live", hex(b["address"]), got))
        for b in self.truth["c_freed"]:
            got = h.containing(b["address"])
            if got and got["state"] != "free":
                bad.append(("freed", hex(b["address"]), got))
        self.assertEqual(bad, [])
        names = sorted(a["name"] for a in self.summary["allocators"])
        self.assertEqual(names, ["glibc", "go"] if self.truth["c_live"] else ["go"])

    def test_objects_named_by_go_type(self):
        """histogram's groups by Go type: the fixture's counts exactly (types.go:
        through DWARF-typed globals, interface type words, malloc headers);
        a chosen object of each type is named by show.  Without DWARF
        (go1.19: no malloc headers) nothing is named, never a wrong name."""
        doc = hslib.run_json(self.args + ["histogram", "--by", "type"], timeout=120)
        got = collections.Counter()
        for g in doc["groups"]:
            got[g["type"]] += g["count"]
        if self.layout != "DWARF":
            self.assertEqual([t for t in got if t is not None], [])
            return
        want = {t["type"]: t["count"] for t in self.truth["go_types"]}
        self.assertEqual({t: got[t] for t in want}, want)
        for t in self.truth["go_types"]:
            show = hslib.run_json(self.args + ["show", "0x%x" % t["address"]], timeout=120)
            self.assertEqual(show["type"], t["type"], hex(t["address"]))
        # Backing arrays are []T; a slice of interfaces too.
        self.assertEqual(got["[]*main.Conn"], 1)
        self.assertEqual(got["[]interface {}"], 1)
        # The map of runtime types to DWARF started at 16 slots (the test
        # hook): doubled as it fills, the same types (a full map went round
        # its probes for ever).
        os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"] = "1"
        try:
            small = hslib.run_json(["--jobs", "1"] + self.args + ["histogram", "--by", "type"], timeout=120)
        finally:
            del os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"]
        self.assertEqual(small["groups"], hslib.run_json(["--jobs", "1"] + self.args + ["histogram", "--by", "type"],
                                                         timeout=120)["groups"])

    def test_garbage_awaiting_gc(self):
        """The mark from Go's roots (GC-masked globals, finalizers, goroutine
        stacks, registers): the fixture's 300 garbage objects (allocated after the
        last GC by a goroutine that exited) are exactly the unreachable ones
        of their size class, called garbage, never leaks; every kept object
        is reachable.  cgo: refused (the C heap's roots are not joined yet)."""
        if self.truth["c_live"]:
            for cmd in (["leaks"], ["top"], ["chain", "0x%x" % self.truth["go_types"][0]["address"]]):
                r = hslib.run(self.args + cmd, timeout=120)
                hslib.check_no_crash(r)
                self.assertEqual(r.status, 4, r.describe())
                self.assertIn("not supported for Go heaps yet", r.stderr)
                self.assertIn("garbage awaiting GC", r.stderr)
                self.assertEqual(r.stdout, "")
            return
        doc = hslib.run_json(self.args + ["leaks", "--list"], timeout=120)
        self.assertNotIn("leaked", doc)
        unreachable = {o["address"]: o for o in doc["objects"]}
        self.assertEqual(doc["garbage"]["count"], len(unreachable))
        want = self.truth["garbage"]["addresses"]
        size = self.truth["garbage"]["size"]
        # Every unreachable object of the garbage's size class is garbage.
        self.assertEqual([hex(a) for a, o in unreachable.items() if o["size"] == size and a not in want], [])
        # A garbage object still reachable is held directly by a stale word
        # the collector would not trust either: a register, or a stack word
        # scanned conservatively (the frame a running goroutine is in, the
        # registers a signal saved), never a live slot by a stack map, a
        # global or an object (those are scanned precisely).  Conservative
        # stacks held 11-15 of the 300 on the kernel cores; stack maps, 0-1.
        held = [a for a in want if a not in unreachable]
        for a in held:
            ch = hslib.run_json(self.args + ["chain", "0x%x" % a], timeout=120)["chain"]
            self.assertEqual(len(ch), 2, (hex(a), ch))
            self.assertIn(ch[0]["kind"], ("stack", "register"), (hex(a), ch))
            self.assertFalse(ch[0].get("stack_map"), (hex(a), ch))
        self.assertLessEqual(len(held), 5, held)
        h = Heap(self.args)
        kept = [k["kept_address"] for k in self.truth["kinds"]] + [t["address"] for t in self.truth["go_types"]]
        bad = [hex(a) for a in kept if h.containing(a) and h.containing(a)["address"] in unreachable]
        self.assertEqual(bad, [])
        r = hslib.run(self.args + ["leaks"], timeout=120)
        self.assertIn("are unreachable: garbage awaiting GC (the next GC frees them), not leaks", r.stdout)
        self.assertNotIn("leaked", r.stdout)
        show = hslib.run_json(self.args + ["show", "0x%x" % want[0]], timeout=120)
        self.assertEqual((show["anchored"], show["garbage"]), (False, True))

    def test_globals_retain_their_kept_objects_exactly(self):
        """owners: each slice global of the fixture alone keeps its kept
        objects and its backing array, exactly (the stale words of dead
        stack slots keep nothing: goroutine stacks are scanned by their
        stack maps; conservatively, each global here lost 1 to 2 objects
        to a stack and main.huge all of its 2.3 MB)."""
        if self.truth["c_live"] or "--pid" in self.args:
            return   # refused beside cgo; a live process's globals have no symbol yet
        roots = {r["name"]: r for r in hslib.run_json(self.args + ["owners"], timeout=120)["roots"]}
        kinds = {k["name"]: k for k in self.truth["kinds"]}
        # main.main is a call frame, read by its stack map: in kill, under
        # dump_here, or asleep in a raw system call after kill (the fixture
        # never spins in its own code, whose frame, stopped anywhere, would
        # be scanned word by word and might share what the globals hold).
        g = hslib.run_json(self.args + ["goroutines", "--list"], timeout=120)["goroutines"]
        main = [x for x in g if x["goid"] == 1]
        if main and main[0]["stack"]:
            self.assertNotEqual(main[0]["stack"][0]["function"], "main.main",
                                "main.main was stopped in its own code")
        for name, kind in (("main.recs", "rec128"), ("main.bufs", "buf1k"), ("main.rec8ks", "rec8k"),
                           ("main.larges", "large100k")):
            k, r = kinds[kind], roots[name]
            self.assertEqual(r["count"], k["kept"] + 1, name)
            array = r["retained"] - k["kept"] * k["size"]   # the slice's backing array
            self.assertTrue(8 * k["made"] <= array <= 2 * 24 * k["made"], (name, array))
        self.assertEqual((roots["main.huge"]["count"], roots["main.huge"]["retained"]),
                         (1, kinds["huge2m"]["size"]))

    def test_report_export_diff_say_garbage(self):
        """report, export and diff from Go's roots: the unreachable are garbage
        awaiting GC in every format, never leaked; their totals are leaks'
        exactly, and each slice global owns in export what owners says it
        keeps.  cgo: refused, as reachability is."""
        tmp = tempfile.mkdtemp(prefix="hs-go-export-")
        self.addCleanup(shutil.rmtree, tmp, True)
        prof = os.path.join(tmp, "heap.pb.gz")
        if self.truth["c_live"]:
            for cmd in (["report"], ["export", "--format", "folded"], ["export", "--format", "pprof", "-o", prof],
                        ["diff", self.core]):
                r = hslib.run(self.args + cmd, timeout=120)
                hslib.check_no_crash(r)
                self.assertEqual(r.status, 4, r.describe())
                self.assertIn("reachability is not supported for Go heaps yet", r.stderr, r.describe())
                self.assertNotRegex(r.stdout, r"\d", r.describe())
            # summary --leaks: the summary, and the refusal among its findings.
            r = hslib.run(self.args + ["summary", "--leaks"], timeout=120)
            self.assertEqual(r.status, 0, r.describe())
            self.assertIn("reachability is not supported for Go heaps yet", r.stdout)
            self.assertNotRegex(r.stdout, r"garbage awaiting GC +\d|leaked +\d")
            return
        r = hslib.run(self.args + ["summary", "--leaks"], timeout=120)
        self.assertRegex(r.stdout, r"\n  garbage awaiting GC +%d " % hslib.run_json(self.args + ["leaks"], timeout=120)[
            "garbage"]["count"])
        self.assertNotIn("leaked", r.stdout)
        leaks = hslib.run_json(self.args + ["leaks"], timeout=120)["garbage"]
        self.assertGreaterEqual(leaks["count"], 295)
        # report: JSON, text and HTML.
        rep = hslib.run_json(self.args + ["report"], timeout=120)
        self.assertEqual(rep["garbage"], leaks)
        keys = set()

        def walk(x):
            if isinstance(x, dict):
                keys.update(x)
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(rep)
        self.assertEqual(keys & {"leaked", "unreferenced", "leak_suspects"}, set())
        self.assertTrue(all("garbage" in r for r in rep["retainers"]))
        groups = rep["garbage_groups"]
        self.assertLessEqual(sum(g["bytes"] for g in groups), leaks["bytes"])
        # The fixture's garbage is the biggest group: every unreachable object of its size.
        unreachable = hslib.run_json(self.args + ["leaks", "--list"], timeout=120)["objects"]
        size = self.truth["garbage"]["size"]
        self.assertEqual((groups[0]["size"], groups[0]["count"]),
                         (size, len([o for o in unreachable if o["size"] == size])))
        self.assertFalse([o["owner"] for o in rep["owners"] if "leaked" in o["owner"]])
        text = hslib.run(self.args + ["report"], timeout=120)
        self.assertEqual(text.status, 0, text.describe())
        self.assertIn("Garbage awaiting GC (unreachable: the next GC frees it, not a leak)", text.stdout)
        self.assertIn("    garbage  %10d allocations" % leaks["count"], text.stdout)
        self.assertNotRegex(text.stdout, r"leaked|LEAKED|Leak suspects")
        html = os.path.join(tmp, "report.html")
        r = hslib.run(self.args + ["report", "--html", "-o", html], timeout=120)
        self.assertEqual(r.status, 0, r.describe())
        with open(html) as f:
            page = f.read()
        self.assertIn("<h2>Garbage awaiting GC</h2>", page)
        self.assertNotRegex(page, r"leaked|Leak suspects")
        # export: folded stacks, pprof (read by go tool pprof) and the JSON summary.
        r = hslib.run(self.args + ["export", "--format", "folded"], timeout=120)
        self.assertEqual(r.status, 0, r.describe())
        by_owner = collections.Counter()
        total = 0
        for line in r.stdout.splitlines():
            stack, _, n = line.rpartition(" ")
            frames = stack.split(";")
            total += int(n)
            by_owner[";".join(frames[:2]) if frames[0] == "globals" else frames[0]] += int(n)
        self.assertEqual(total, rep["in_use"]["bytes"])
        self.assertEqual(by_owner["[garbage]"], leaks["bytes"])
        self.assertNotIn("[leaked]", by_owner)
        if "--pid" not in self.args:
            roots = {o["name"]: o for o in hslib.run_json(self.args + ["owners"], timeout=120)["roots"]}
            for name in ("main.recs", "main.bufs", "main.rec8ks", "main.larges", "main.huge"):
                self.assertEqual(by_owner["globals;" + name], roots[name]["retained"], name)
        doc = hslib.run_json(self.args + ["export", "--format", "pprof", "-o", prof], timeout=120)
        self.assertEqual((doc["in_use"], doc["garbage"]), (rep["in_use"], leaks))
        self.assertNotIn("leaked", doc)
        go = shutil.which("go")
        self.assertTrue(go, "go is not installed (scripts/deps.sh check installs golang-go)")
        env = dict(os.environ, HOME=tmp, PPROF_TMPDIR=tmp)
        p = subprocess.run([go, "tool", "pprof", "-raw", prof], capture_output=True, text=True, env=env,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("inuse_objects/count inuse_space/bytes[dflt] garbage_objects/count garbage_space/bytes",
                      p.stdout)
        self.assertIn("state:[garbage]", p.stdout)
        self.assertNotIn("leaked", p.stdout)
        sums = [0, 0, 0, 0]
        for line in p.stdout.split("Samples:", 1)[1].split("Locations", 1)[0].splitlines():
            values, colon, _ = line.partition(":")
            if colon and values.split() and values.split()[0].isdigit():
                sums = [a + int(b) for a, b in zip(sums, values.split())]
        self.assertEqual(sums, [rep["in_use"]["count"], rep["in_use"]["bytes"], leaks["count"], leaks["bytes"]])
        if "--pid" in self.args:
            return
        # diff against the other kind's core of the same program: the deltas
        # of the two reports, worded for Go.
        # (go_heap_nodwarf has a kernel core only: against itself.)
        other = self.core if self.name == "go_heap_nodwarf" else \
            hslib.go_core(self.name, "gdb" if self.kind == "kernel" else "kernel")
        old = hslib.run_json(list(self.extra) + [other, "report"], timeout=120)
        d = hslib.run_json(self.args + ["diff", other], timeout=120)
        self.assertNotIn("leaked", d)
        # The same program by its build-id: GNU's (go1.24 on) or Go's own.
        self.assertTrue(d["new_build_id"] and d["new_build_id"] == d["old_build_id"], d)
        self.assertFalse([x for x in d["diagnostics"] if "build-id" in x["message"]], d["diagnostics"])
        self.assertEqual(d["garbage"], {"count_delta": leaks["count"] - old["garbage"]["count"],
                                        "bytes_delta": leaks["bytes"] - old["garbage"]["bytes"]})
        self.assertEqual(d["in_use"], {"count_delta": rep["in_use"]["count"] - old["in_use"]["count"],
                                       "bytes_delta": rep["in_use"]["bytes"] - old["in_use"]["bytes"]})
        self.assertFalse([o["owner"] for o in d["owners"] if "leaked" in o["owner"]])
        self.assertFalse([m["map"] for m in d["maps"] if "leaked" in m["map"]])
        # The program's own globals kept the same objects in both runs.
        self.assertFalse([o["owner"] for o in d["owners"] if o["owner"].startswith("globals;main.")], d["owners"])
        text = hslib.run(self.args + ["diff", other], timeout=120)
        self.assertIn("  garbage awaiting GC  %+d allocations" % d["garbage"]["count_delta"], text.stdout)
        self.assertNotRegex(text.stdout, r"leaked|\[leaked\]")

    def test_go_build_id(self):
        """A Go executable without a GNU build-id (before go1.24) is known by
        Go's own, exactly what `go tool buildid` reads; diff refuses two
        cores of different Go programs by it (once it only warned that the
        build-id was unknown, and compared them)."""
        if "--pid" in self.args:
            return
        main = [m for m in hslib.run_json(self.args + ["info"], timeout=120)["modules"] if m["main"]][0]
        go = shutil.which("go")
        self.assertTrue(go, "go is not installed (scripts/deps.sh check installs golang-go)")
        p = subprocess.run([go, "tool", "buildid", main["path"]], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        if main["build_id"]:
            self.assertIsNone(main["go_build_id"])
        else:
            self.assertEqual(main["go_build_id"], p.stdout.strip())
        if self.truth["c_live"]:
            return
        other = hslib.go_core("go_heap" if self.name != "go_heap" else "go124_heap", "kernel")
        r = hslib.run(self.args + ["diff", other], timeout=120)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 2, r.describe())
        self.assertIn("are cores of different programs", r.stderr)

    def test_chain_from_a_global(self):
        """chain to a chosen main.Conn: from the global main.conns through its
        backing array; refs names the array among its referrers."""
        if self.truth["c_live"]:
            return
        conn = self.truth["go_types"][0]["address"]
        doc = hslib.run_json(self.args + ["chain", "0x%x" % conn], timeout=120)
        self.assertTrue(doc["anchored"])
        ch = doc["chain"]
        self.assertEqual(ch[0]["kind"], "global")
        if "--pid" not in self.args:
            # (a live process's module range ends before .bss: no symbol yet)
            self.assertEqual(ch[0]["symbol"], "main.conns")
        if self.layout == "DWARF":
            self.assertEqual([e.get("type") for e in ch[1:]], ["[]*main.Conn", "main.Conn"])
            # Go field paths from DWARF: conns[7] is element 7 of the array.
            self.assertEqual(ch[1]["field"], "[7]")
        self.assertEqual(ch[-1]["address"], conn)
        refs = hslib.run_json(self.args + ["refs", "0x%x" % conn], timeout=120)
        self.assertIn(ch[1]["address"], [r.get("address") for r in refs["referrers"]])
        if self.layout == "DWARF":
            # conns[8].next and boxes[7].(*Order).item point at it too.
            fields = sorted(r.get("field") or "" for r in refs["referrers"])
            self.assertEqual(fields, ["[7]", "item", "next"])


def make_cases():
    cases = [("go_heap", "gdb", (), "DWARF"), ("go_heap", "kernel", (), "DWARF"),
             ("go_heap_cgo", "gdb", (), "DWARF"), ("go_heap_cgo", "kernel", (), "DWARF"),
             ("go_heap_nodwarf", "kernel", (), "built-in go1.19"),
             ("go_heap", "gdb", ("--no-debuginfo",), "built-in go1.19"),
             ] + [("go%s_heap" % v, kind, (), "DWARF") for v in ("121", "122", "123", "124")
                  for kind in ("gdb", "kernel")]
    for name, kind, extra, layout in cases:
        cls = type("TestGo_%s_%s%s" % (name, kind, "_nodebuginfo" if extra else ""), (GoCore, unittest.TestCase),
                   {"name": name, "kind": kind, "extra": extra, "layout": layout})
        globals()[cls.__name__] = cls


make_cases()


class TestGoPid(GoCore, unittest.TestCase):
    """--pid on the running fixture (go1.19): the same exact checks.  The
    fixture waits in a raw system call that keeps the only P, and async
    preemption is off, so no goroutine runs while heapscope reads."""
    layout = "DWARF"
    proc = tmpdir = None

    @classmethod
    def setUpClass(cls):
        exe = os.path.join(hslib.CORES, "go_heap")
        if not os.access(exe, os.X_OK):
            raise AssertionError("%s is missing (run make cores)" % exe)
        cls.tmpdir = tempfile.mkdtemp(prefix="hs-go-pid-")
        path = os.path.join(cls.tmpdir, "truth.json")
        cls.proc = subprocess.Popen([exe, path, "wait"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=dict(os.environ, GODEBUG="asyncpreemptoff=1"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and cls.proc.poll() is None:
            if os.path.exists(path):
                with open(path) as f:
                    if f.read().endswith("}\n"):
                        break
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        if cls.proc:
            cls.proc.send_signal(signal.SIGKILL)
            cls.proc.wait()
        shutil.rmtree(cls.tmpdir, ignore_errors=True)

    def setUp(self):
        self.assertIsNone(self.proc.poll(), "the fixture exited")
        with open(os.path.join(self.tmpdir, "truth.json")) as f:
            self.truth = json.load(f)
        self.args = ["--pid", str(self.proc.pid)]
        self.summary = hslib.run_json(self.args + ["summary"], timeout=120)


class TestGoBadInput(unittest.TestCase):
    """A Go core heapscope cannot read whole: a clear message, true partial results, never a crash."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hs-go-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_stripped_binary_says_what_is_missing(self):
        core = hslib.go_core("go_heap_stripped", "kernel")
        truth = hslib.truth("go_heap_stripped", "kernel")
        r = hslib.run([core, "summary"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("without a symbol table", r.stderr)
        self.assertIn(truth["go_version"], r.stderr)
        self.assertIn("runtime.mheap_", r.stderr)
        self.assertEqual(re.findall(r"\d+", r.stdout), [])   # no number presented as a heap figure
        info = hslib.run_json([core, "info"])
        self.assertGreaterEqual(len(info["threads"]), 1)

    def test_no_built_in_layout_for_go_1_24(self):
        core = hslib.go_core("go124_heap", "kernel")
        r = hslib.run(["--no-debuginfo", core, "summary"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("go1.24", r.stderr)
        self.assertIn("built-in Go layout is for go1.19 only", r.stderr)
        self.assertEqual(re.findall(r"\d+", r.stdout), [])

    def test_other_version_is_refused_by_name(self):
        # A copy of the kernel core that names a copy of the executable whose
        # version says go1.20 (.go.buildinfo and runtime.buildVersion's
        # bytes), at a path of the same length.
        src = hslib.go_core("go_heap", "kernel")
        exe_path = os.path.realpath(os.path.join(hslib.CORES, "go_heap"))
        with open(exe_path, "rb") as f:
            exe = f.read()
        self.assertEqual(exe.count(b"go1.19."), 2)
        d = "/tmp/hsgo%d" % os.getpid()
        d += "v" * (len(exe_path) - len(d) - len("/go_heap"))
        self.assertGreater(len(exe_path), len(d) - 1, "the build path is too short for this test")
        os.makedirs(d, exist_ok=True)
        try:
            other = d + "/go_heap"
            with open(other, "wb") as f:
                f.write(exe.replace(b"go1.19.", b"go1.20."))
            with open(src, "rb") as f:
                core = f.read()
            self.assertIn(exe_path.encode(), core)
            dst = os.path.join(self.tmp, "other.core")
            with open(dst, "wb") as f:
                f.write(core.replace(exe_path.encode(), other.encode()))
            r = hslib.run([dst, "summary"], timeout=60)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("go1.20.8", r.stderr)
        self.assertIn("not supported yet (heapscope reads the heap of go1.19, go1.21", r.stderr)
        self.assertEqual(re.findall(r"\d+", r.stdout), [])

    def damaged(self, field, value, size):
        """A copy of go_heap's gdb core with one field of the mspan of the
        node48 kept object's span overwritten; (core, span start, npages)."""
        src = hslib.go_core("go_heap", "gdb")
        truth = hslib.truth("go_heap", "gdb")
        doc = hslib.run_json([src, "summary"])
        facts = go_desc(doc)["facts"]
        arenas = hslib.run_json([src, "arenas"])["arenas"]
        addr = [k for k in truth["kinds"] if k["name"] == "node48"][0]["kept_address"]
        arena = [a for a in arenas if a["address"] <= addr < a["address"] + facts["arena size"]][0]
        # The arena's heapArena struct is its arena-meta block.
        ha = [b["address"] for b in Heap([src]).blocks if b["where"] == "arena-meta" and b["arena"] == arena["index"]]
        self.assertEqual(len(ha), 1)
        segs = hslib.load_segments(src)
        dst = os.path.join(self.tmp, "damaged.core")
        shutil.copyfile(src, dst)
        with open(dst, "r+b") as f:
            page = (addr - arena["address"]) // facts["page size"]
            f.seek(hslib.file_offset(segs, ha[0] + facts["heapArena.spans"] + page * 8))
            mspan, = struct.unpack("<Q", f.read(8))
            f.seek(hslib.file_offset(segs, mspan + facts["mspan.startAddr"]))
            start, npages = struct.unpack("<QQ", f.read(16))
            f.seek(hslib.file_offset(segs, mspan + facts[field]))
            f.write(value.to_bytes(size, "little"))
        return dst, start, npages * facts["page size"]

    def test_wrong_alloc_count_is_said_and_the_bits_counted(self):
        core, start, _ = self.damaged("mspan.allocCount", 7, 2)
        truth = hslib.truth("go_heap", "gdb")
        doc = hslib.run_json([core, "summary"])
        self.assertEqual((doc["in_use"]["count"], doc["in_use"]["bytes"]),
                         (truth["heap_objects"], truth["heap_alloc"]))
        warn = [d for d in doc["diagnostics"] if d["stage"] == "go" and "allocCount says 7" in d["message"]]
        self.assertEqual(len(warn), 1, doc["diagnostics"])

    def test_bad_span_state_leaves_that_span_out(self):
        core, start, size = self.damaged("mspan.state", 7, 1)
        truth = hslib.truth("go_heap", "gdb")
        good = Heap([hslib.go_core("go_heap", "gdb")])
        lost = [b for b in good.blocks if start <= b["address"] < start + size and b["state"] == "used"]
        self.assertTrue(lost)
        doc = hslib.run_json([core, "summary"])
        self.assertEqual(doc["in_use"]["count"], truth["heap_objects"] - len(lost))
        self.assertEqual(doc["in_use"]["bytes"], truth["heap_alloc"] - sum(b["size"] for b in lost))
        msgs = [d["message"] for d in doc["diagnostics"] if d["stage"] == "go"]
        self.assertTrue(any("state 7" in m and "left out" in m for m in msgs), msgs)
        self.assertTrue(any("idle pages are not counted" in m for m in msgs), msgs)
        self.assertNotIn("idle-pages", by_where(doc))

    def test_unreadable_alloc_bits_leave_that_span_out(self):
        core, start, size = self.damaged("mspan.allocBits", 0x1000, 8)
        truth = hslib.truth("go_heap", "gdb")
        good = Heap([hslib.go_core("go_heap", "gdb")])
        lost = [b for b in good.blocks if start <= b["address"] < start + size and b["state"] == "used"]
        doc = hslib.run_json([core, "summary"])
        self.assertEqual(doc["in_use"]["count"], truth["heap_objects"] - len(lost))
        msgs = [d["message"] for d in doc["diagnostics"] if d["stage"] == "go"]
        self.assertTrue(any("allocBits (0x1000) are not in the core" in m for m in msgs), msgs)
        # Its pages are known: idle pages are still exact.
        self.assertEqual(by_where(doc)["idle-pages"][1], truth["heap_idle"])

    def damaged_mheap(self, field, value):
        """A copy of go_heap's gdb core with one word of runtime.mheap_ overwritten."""
        src = hslib.go_core("go_heap", "gdb")
        facts = go_desc(hslib.run_json([src, "summary"]))["facts"]
        segs = hslib.load_segments(src)
        dst = os.path.join(self.tmp, "mheap.core")
        shutil.copyfile(src, dst)
        with open(dst, "r+b") as f:
            f.seek(hslib.file_offset(segs, facts["runtime.mheap_"] + field(facts)))
            f.write(struct.pack("<Q", value))
        return dst

    def test_absurd_span_count_is_refused(self):
        core = self.damaged_mheap(lambda f: f["mheap.allspans"] + 8, 1 << 40)
        r = hslib.run([core, "summary"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("not a Go heap heapscope can believe", r.stderr)

    def test_span_list_out_of_the_core(self):
        core = self.damaged_mheap(lambda f: f["mheap.allspans"], 0x1000)
        r = hslib.run([core, "summary"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("no span of the Go heap is known", r.stderr)

    def test_every_command_answers(self):
        """Every command on a Go core answers (0), from Go's own roots where
        it follows pointers: none is refused any more (export, diff, report
        and summary --leaks once were, and said which commands answer)."""
        for kind in ("gdb", "kernel"):
            core = hslib.go_core("go_heap", kind)
            other = hslib.go_core("go_heap", "gdb" if kind == "kernel" else "kernel")
            addr = "0x%x" % hslib.truth("go_heap", kind)["kinds"][1]["kept_address"]
            out = os.path.join(self.tmp, "out")
            for cmd in (["info"], ["summary"], ["summary", "--leaks"], ["arenas"], ["chunks", "--limit", "5"],
                        ["bins"], ["show", addr], ["leaks"], ["histogram"], ["chain", addr], ["refs", addr],
                        ["top"], ["pools"], ["export", "--format", "pprof", "-o", out], ["diff", other],
                        ["report"], ["maps"], ["map", "main.freed"], ["owners"], ["goroutines"]):
                r = hslib.run([core] + cmd, timeout=120)
                hslib.check_no_crash(r)
                self.assertEqual(r.status, 0, r.describe())
                self.assertNotIn("not supported", r.stdout + r.stderr, r.describe())

    def test_random_damage_to_the_runtime_metadata(self):
        """Seeded random words written over mspan structs, mheap_ and the
        page map: a finding or a refusal, never a crash, a hang or a
        document that is not one."""
        import random
        src = hslib.go_core("go_heap", "kernel")
        doc = hslib.run_json([src, "summary"])
        facts = go_desc(doc)["facts"]
        h = Heap([src])
        spans = [b["address"] for b in h.blocks if b["where"] == "span-struct"]
        ha = [b["address"] for b in h.blocks if b["where"] == "arena-meta"][0]
        segs = hslib.load_segments(src)
        with open(src, "rb") as f:
            data = bytearray(f.read())
        rng = random.Random(15)
        for round_ in range(12):
            d = bytearray(data)
            for _ in range(rng.choice((1, 4, 16))):
                where = rng.random()
                if where < 0.6:
                    addr = rng.choice(spans) + 8 * rng.randrange(facts["sizeof(runtime.mspan)"] // 8)
                elif where < 0.8:
                    addr = facts["runtime.mheap_"] + facts["mheap.allspans"] + 8 * rng.randrange(-2, 24)
                else:
                    addr = ha + facts["heapArena.spans"] + 8 * rng.randrange(1024)
                off = hslib.file_offset(segs, addr)
                word = rng.choice((0, 1, 0x1000, 1 << 40, rng.getrandbits(64), 0xc000000000 + 8192 * rng.randrange(512)))
                d[off:off + 8] = struct.pack("<Q", word)
            dst = os.path.join(self.tmp, "r%d.core" % round_)
            with open(dst, "wb") as f:
                f.write(d)
            for cmd in (["summary"], ["chunks", "--limit", "3"], ["report"]):
                r = hslib.json_result([dst] + cmd, timeout=60)
                hslib.check_no_crash(r)
                self.assertIn(r.status, (0, 4), r.describe())
                self.assertTrue(r.stdout.endswith("}\n"), r.describe())
            r = hslib.run([dst, "export", "--format", "folded"], timeout=60)
            hslib.check_no_crash(r)
            self.assertIn(r.status, (0, 4), r.describe())
            os.unlink(dst)

    def test_truncated_core(self):
        src = hslib.go_core("go_heap", "kernel")
        dst = os.path.join(self.tmp, "cut.core")
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read(os.path.getsize(src) // 3))
        for cmd in (["summary"], ["info"], ["chunks"], ["bins"], ["leaks"], ["report"], ["export", "--format", "folded"],
                    ["diff", src]):
            r = hslib.run([dst] + cmd, timeout=60)
            hslib.check_no_crash(r)
            self.assertIn(r.status, (3, 4), r.describe())
            self.assertTrue(r.stderr.strip(), r.describe())


class TestGoGdbTwin(unittest.TestCase):
    """GDB's `hs` on a Go core prints what the CLI prints: summary's text, and
    the JSON of the commands that work on a Go heap, and leaks' text."""
    COMMANDS = ("summary", "arenas", "bins", "chunks --limit 40", "chunks --free --limit 5", "show ADDR",
                "histogram --by type", "chain ADDR")

    def twin(self, name):
        import gdbutil
        gdbutil.need_build()
        core = hslib.go_core(name, "gdb")
        exe = os.path.join(hslib.CORES, name)
        addr = "0x%x" % hslib.truth(name, "gdb")["kinds"][1]["kept_address"]
        tmp = tempfile.mkdtemp(prefix="hs-go-gdb-")
        try:
            args = gdbutil.batch_args(tmp) + ["-ex", "file " + exe, "-ex", "core-file " + core]
            cases = [("text", "hs summary"), ("leaks", "hs leaks")]
            cases += [("c%d" % i, "hs --json " + c.replace("ADDR", addr)) for i, c in enumerate(self.COMMANDS)]
            for tag, cmd in cases:
                args += ["-ex", "python _hs_case(%r, %r)" % (tag, cmd)]
            s = gdbutil.run_batch(args, 300)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        s.check_alive(self)
        self.assertEqual(s.ok("text").strip(), gdbutil.cli(core, "summary").stdout.strip())
        self.assertEqual(s.ok("leaks").strip(), gdbutil.cli(core, "leaks").stdout.strip())
        for i, cmd in enumerate(self.COMMANDS):
            got = s.json("c%d" % i)
            want = gdbutil.cli_json(core, *cmd.replace("ADDR", addr).split())
            self.assertEqual(got, want, "hs --json %s differs from the CLI's in %s" % (
                cmd, gdbutil.doc_diff(got, want)[0]))

    def test_go_1_19(self):
        self.twin("go_heap")

    def test_go_1_24(self):
        self.twin("go124_heap")


if __name__ == "__main__":
    import gdbutil
    sys.exit(gdbutil.main(sys.modules[__name__], gdbutil.Scratch("hs-go-")))
