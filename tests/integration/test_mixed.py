"""Mixed allocators (issue 14, item 8): glibc and jemalloc in one process.

The jemalloc fixtures (cores/jemalloc_heap.c) also allocate through glibc's
__libc_malloc, and their truth lists both heaps' pointers (glibc_live,
glibc_freed; live, leaked).  summary gives each allocator's share (text: an
ALLOCATOR table; JSON: in_use/free/metadata per "allocators" entry), bins an
ALLOCATOR column; both are checked against the truth and against chunks.
An allocator that is in the process but cannot be walked (jemalloc_badversion)
makes the status 4 in auto mode too, said before the totals it is missing from.
"""
import json
import re
import unittest

import hslib
import test_jemalloc

FIXTURES = ("jemalloc_dynamic", "jemalloc_static")


class Mixed(unittest.TestCase):
    def check_core(self, name, kind):
        core = test_jemalloc.je_core(name, kind)
        truth = hslib.truth(name, kind)
        doc = hslib.run_json([core, "summary"], timeout=60)
        names = [a["name"] for a in doc["allocators"]]
        self.assertEqual(names, ["glibc", "jemalloc"])
        # Which global arena numbers are whose (arenas are numbered across allocators).
        owner, base = {}, 0
        for a in doc["allocators"]:
            for k in range(a["arenas"]):
                owner[base + k] = a["name"]
            base += a["arenas"]
        chunks = hslib.run_json([core, "chunks"], timeout=60)["allocations"]
        # glibc's mmapped chunks belong to no arena; nothing else may.
        for b in chunks:
            if b["arena"] is None:
                self.assertEqual(b["where"], "mmapped", b)
        whose = {b["address"]: owner.get(b["arena"], "glibc") for b in chunks}
        # Each truth pointer is in its own allocator's heap.
        bad = [hex(r["address"]) for r in truth["glibc_live"] + truth["glibc_freed"]
               if whose.get(r["address"]) not in (None, "glibc")]
        bad += [hex(r["address"]) for r in truth["glibc_live"] if r["address"] not in whose]
        bad += [hex(r["address"]) for r in truth["live"] if whose.get(r["address"]) != "jemalloc"]
        self.assertEqual(bad, [], "%s %s: pointers in the wrong allocator" % (name, kind))
        # summary's share of each allocator is exactly its blocks in chunks.
        for a in doc["allocators"]:
            for state, key in (("used", "in_use"), ("free", "free"), ("meta", "metadata")):
                mine = [b for b in chunks if whose[b["address"]] == a["name"] and b["state"] == state]
                self.assertEqual((a[key]["count"], a[key]["bytes"]),
                                 (len(mine), sum(b["size"] for b in mine)), "%s %s %s" % (name, a["name"], key))
        for key in ("in_use", "free", "metadata"):
            self.assertEqual(sum(a[key]["count"] for a in doc["allocators"]), doc[key]["count"], key)
            self.assertEqual(sum(a[key]["bytes"] for a in doc["allocators"]), doc[key]["bytes"], key)
        glibc = doc["allocators"][0]
        self.assertGreaterEqual(glibc["in_use"]["count"], len(truth["glibc_live"]))
        # The text table says the same.
        text = hslib.run([core, "summary"], timeout=60).stdout
        for a in doc["allocators"]:
            m = re.search(r"^  %s +(\d+) +\S+ \S+ +(\d+) " % a["name"], text, re.M)
            self.assertTrue(m, text)
            self.assertEqual(int(m.group(1)), a["in_use"]["count"])
            self.assertEqual(int(m.group(2)), a["free"]["count"])
        # bins: every free list says whose it is, in JSON and in the text column.
        lists = hslib.run_json([core, "bins"], timeout=60)["lists"]
        self.assertEqual({l["allocator"] for l in lists}, {"glibc", "jemalloc"})
        for l in lists:
            if l["arena"] is not None:
                self.assertEqual(owner[l["arena"]], l["allocator"], l)
        rows = [line.split()[0] for line in hslib.run([core, "bins"], timeout=60).stdout.splitlines()[1:]
                if line.startswith("  ") and line.split()[0] in ("glibc", "jemalloc")]
        self.assertEqual(rows, [l["allocator"] for l in lists])
        # Free lists of glibc hold glibc's freed pointers only.
        glibc_kinds = {l["kind"] for l in lists if l["allocator"] == "glibc"}
        je_kinds = {l["kind"] for l in lists if l["allocator"] == "jemalloc"}
        self.assertTrue(glibc_kinds and je_kinds)

    def test_mixed_gdb(self):
        for name in FIXTURES:
            self.check_core(name, "gdb")

    def test_mixed_kernel(self):
        for name in FIXTURES:
            self.check_core(name, "kernel")

    def test_single_allocator_has_no_table(self):
        text = hslib.run([hslib.core("glibc_heap", "gdb"), "summary"]).stdout
        self.assertNotIn("ALLOCATOR", text)


class Unsupported(unittest.TestCase):
    def test_auto_mode_exits_4_message_first(self):
        """jemalloc 5.2.1 (not supported) beside glibc: glibc's heap is shown,
        the status is 4, and the message comes before the totals."""
        core = test_jemalloc.je_core("jemalloc_badversion", "gdb")
        r = hslib.run([core, "summary"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertTrue(r.stderr.startswith("heapscope: the heap is incomplete: jemalloc 5.2.1"), r.describe())
        self.assertIn("not supported", r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("Allocator:  glibc"), r.stdout)
        self.assertTrue(lines[1].startswith("Not walked: jemalloc 5.2.1"), r.stdout)
        # Every command, JSON too: one whole document, and exit 4.
        for cmd in (["chunks"], ["bins"], ["leaks"]):
            j = hslib.run(["--json", core] + cmd, timeout=60)
            self.assertEqual(j.status, 4, j.describe())
            doc = json.loads(j.stdout)
            self.assertTrue(any("5.2.1" in d["message"] for d in doc["diagnostics"]))
        # A process with one supported allocator still exits 0.
        self.assertEqual(hslib.run([hslib.core("glibc_heap", "gdb"), "summary"]).status, 0)
