"""Full thread heaps: what glibc leaves at their end is never an allocation (issue 12).

On heap_ends (cores/heap_ends.c: 3 thread arenas, 3 full 64 MiB heaps each,
closed with 48, 32 or 64 bytes of old top left), gdb and kernel cores, with and
without --no-debuginfo:

* each filler chunk (the 0x20 chunk without NON_MAIN_ARENA that closes a heap
  whose old top had 48 bytes) is reported as allocator metadata, 24 bytes, in
  its arena, never used;
* the used chunks are exactly the truth's live chunks and its other internal
  chunks (the threads' DTVs), with their sizes; summary's in_use agrees;
* the old top glibc freed into the tcache (64 bytes left) is free on the tcache;
* leaks, summary --leaks: leaked and unreferenced counts and bytes equal the
  truth's ("leaked COUNT BYTES", "unreferenced COUNT BYTES" in its notes).
"""
import unittest

import hslib

FIXTURE = "heap_ends"


def listing(problems, limit=15):
    more = "" if len(problems) <= limit else "\n... and %d more" % (len(problems) - limit)
    return "\n".join(problems[:limit]) + more


class HeapEndsCase:
    kind = None
    opts = ()

    def setUp(self):
        self.core = hslib.core(FIXTURE, self.kind)
        self.truth = hslib.truth(FIXTURE, self.kind)
        self.fillers = [r for r in self.truth["internal"] if r["what"].startswith("filler")]
        self.internal = [r for r in self.truth["internal"] if not r["what"].startswith("filler")]

    def note(self, key):
        for n in self.truth["notes"]:
            words = n.split()
            if words[0] == key:
                return {"count": int(words[1]), "bytes": int(words[2])}
        raise AssertionError("the truth has no %r note" % key)

    def chunks(self):
        doc = hslib.run_json(list(self.opts) + [self.core, "chunks"])
        return {a["address"]: a for a in doc["allocations"]}

    def test_fixture_fills_heaps(self):
        # The fixture must exercise the case: a filler in every arena, two in some.
        self.assertEqual(len(self.fillers), 5)
        self.assertEqual(len({r["arena"] for r in self.fillers}), 3)
        self.assertEqual(self.truth["arenas"], 4)

    def test_fillers_are_meta(self):
        by = self.chunks()
        arena_of = {}
        for r in self.truth["live"]:
            if r["address"] in by:
                arena_of[r["arena"]] = by[r["address"]]["arena"]
        bad = []
        for r in self.fillers:
            a = by.get(r["address"])
            want = ("meta", "meta", 24, arena_of.get(r["arena"]))
            if a is None or (a["state"], a["where"], a["size"], a["arena"]) != want:
                bad.append("%s at %#x: reported %s, want state/where/size/arena %s"
                           % (r["what"], r["address"], a, want))
        self.assertFalse(bad, listing(bad))

    def test_used_chunks_exact(self):
        by = self.chunks()
        want = {r["address"]: r["size"] for r in self.truth["live"] + self.internal}
        got = {a: c["size"] for a, c in by.items() if c["state"] == "used"}
        bad = ["used %#x size %d is not in the truth" % (a, s) for a, s in sorted(got.items()) if a not in want]
        bad += ["truth %#x size %d is reported %s" % (a, s, by.get(a)) for a, s in sorted(want.items())
                if got.get(a) != s]
        self.assertFalse(bad, listing(bad))

    def test_summary_in_use(self):
        s = hslib.run_json(list(self.opts) + [self.core, "summary"])
        recs = self.truth["live"] + self.internal
        self.assertEqual(s["in_use"], {"count": len(recs), "bytes": sum(r["size"] for r in recs)})

    def test_old_tops_in_tcache(self):
        by = self.chunks()
        freed = self.truth["freed"]
        self.assertEqual(len(freed), 2)
        for r in freed:
            a = by.get(r["address"])
            self.assertEqual((a["state"], a["where"], a["size"]) if a else None, ("free", "tcache", 24),
                             "old top %#x" % r["address"])

    def test_leaks_exact(self):
        doc = hslib.run_json(list(self.opts) + [self.core, "leaks"])
        self.assertEqual(doc["leaked"], self.note("leaked"))
        self.assertEqual(doc["unreferenced"], self.note("unreferenced"))

    def test_summary_leaks_exact(self):
        doc = hslib.run_json(list(self.opts) + [self.core, "summary", "--leaks"])
        self.assertEqual(doc["leaked"], self.note("leaked"))
        self.assertEqual(doc["unreferenced"], self.note("unreferenced"))


def make_cases():
    for kind in hslib.KINDS:
        for debug, opts in (("Debuginfo", ()), ("NoDebuginfo", ("--no-debuginfo",))):
            name = "HeapEnds_%s_%s" % (kind, debug)
            globals()[name] = type(name, (HeapEndsCase, unittest.TestCase), {"kind": kind, "opts": opts})


make_cases()
