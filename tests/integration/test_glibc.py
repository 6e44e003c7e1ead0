"""The glibc walk against the fixtures' truth (issue 3, "Done when").

On glibc_heap (4 arenas, one with 2 heaps, mmapped chunks, every free list),
threads and mapped_elf (copies of its libc.so.6 and executable mapped whole, as a
debugger maps what it reads), gdb and kernel cores, with and without
--no-debuginfo:

* every live pointer is reported used with its exact usable size;
* every freed pointer is reported free on the list glibc put it on;
* every other used chunk is libc-internal (listed by the fixture) or meta;
* every other free chunk is an arena's top;
* mmapped chunks and arenas are counted right;
* the totals agree with mallinfo2() taken at the dump.  glibc's int_mallinfo
  (2.36) counts chunk sizes (usable + 8; usable + 16 for mmapped chunks):
    fordblks = sum of top, fastbin, unsorted, small and large bin chunks
    fsmblks  = fastbin chunks' bytes, smblks = their count
    ordblks  = tops + unsorted + small + large chunks (fastbins not included)
    hblks    = mmapped chunks, hblkhd = their bytes
    uordblks = system_mem - fordblks: every used chunk, *including tcache'd
               chunks* (tcache frees look in use to malloc) and meta chunks,
               plus what no chunk covers: 0x8d0 per thread arena (heap_info 48 +
               malloc_state 2200 + 8 alignment) and 64 per extra heap (heap_info
               48 + the 16-byte size-0 fencepost at the old heap's end).
"""
import unittest

import hslib

FREE_LISTS = ("fastbin", "unsorted", "smallbin", "largebin", "top")
ARENA_OVERHEAD = 48 + 2200 + 8     # glibc 2.36 x86-64: heap_info + malloc_state + alignment
EXTRA_HEAP_OVERHEAD = 48 + 16      # heap_info + end fencepost header


def listing(problems, limit=15):
    more = "" if len(problems) <= limit else "\n... and %d more" % (len(problems) - limit)
    return "\n".join(problems[:limit]) + more


class GlibcWalkCase:
    fixture = kind = None
    opts = ()

    def setUp(self):
        self.core = hslib.core(self.fixture, self.kind)
        self.truth = hslib.truth(self.fixture, self.kind)

    def chunks(self):
        doc = hslib.run_json(list(self.opts) + [self.core, "chunks"])
        self.assertEqual(doc.get("command"), "chunks")
        allocs = doc["allocations"]
        by_addr = {}
        for a in allocs:
            self.assertNotIn(a["address"], by_addr, "address listed twice: %#x" % a["address"])
            by_addr[a["address"]] = a
        return allocs, by_addr

    def summary(self):
        return hslib.run_json(list(self.opts) + [self.core, "summary"])

    def test_live_reported_used(self):
        _, by = self.chunks()
        mm = set(self.truth["mmapped"])
        bad = []
        for rec in self.truth["live"]:
            a = by.get(rec["address"])
            want_where = "mmapped" if rec["address"] in mm else "used"
            if a is None:
                bad.append("live %#x (%d bytes): not reported" % (rec["address"], rec["size"]))
            elif (a["state"], a["where"], a["size"]) != ("used", want_where, rec["size"]):
                bad.append("live %#x: reported %s/%s size %d, truth used/%s size %d"
                           % (rec["address"], a["state"], a["where"], a["size"], want_where, rec["size"]))
        self.assertFalse(bad, "%d of %d live pointers wrong:\n%s"
                         % (len(bad), len(self.truth["live"]), listing(bad)))

    def test_freed_reported_on_their_list(self):
        _, by = self.chunks()
        bad = []
        for rec in self.truth["freed"]:
            a = by.get(rec["address"])
            if a is None:
                bad.append("freed %#x (%s): not reported" % (rec["address"], rec["expect"]))
            elif (a["state"], a["where"], a["size"]) != ("free", rec["expect"], rec["size"]):
                bad.append("freed %#x: reported %s/%s size %d, truth free/%s size %d"
                           % (rec["address"], a["state"], a["where"], a["size"], rec["expect"], rec["size"]))
        self.assertFalse(bad, "%d of %d freed pointers wrong:\n%s"
                         % (len(bad), len(self.truth["freed"]), listing(bad)))

    def test_tcache_structs_are_meta(self):
        _, by = self.chunks()
        bad = []
        for rec in self.truth["meta"]:
            a = by.get(rec["address"])
            if a is None or a["where"] != "meta" or a["size"] != rec["size"]:
                bad.append("%s at %#x: reported %s" % (rec["what"], rec["address"], a))
        self.assertFalse(bad, listing(bad))

    def test_other_used_chunks_explained(self):
        allocs, _ = self.chunks()
        live = {r["address"] for r in self.truth["live"]}
        internal = {r["address"]: r for r in self.truth["internal"]}
        bad = []
        for a in allocs:
            if a["state"] != "used" or a["address"] in live or a["where"] == "meta":
                continue
            rec = internal.get(a["address"])
            if rec is None:
                bad.append("used %#x size %d (%s, arena %s) is in no truth list"
                           % (a["address"], a["size"], a["where"], a["arena"]))
            elif rec["size"] != a["size"]:
                bad.append("%s at %#x: size %d, truth %d" % (rec["what"], a["address"], a["size"], rec["size"]))
        self.assertFalse(bad, listing(bad))

    def test_other_free_chunks_are_tops(self):
        allocs, _ = self.chunks()
        freed = {r["address"] for r in self.truth["freed"]}
        bad, tops = [], {}
        for a in allocs:
            if a["state"] == "free" and a["address"] not in freed:
                if a["where"] != "top":
                    bad.append("free %#x size %d on %s is not in the truth"
                               % (a["address"], a["size"], a["where"]))
            if a["where"] == "top":
                tops.setdefault(a["arena"], []).append(a["address"])
        self.assertFalse(bad, listing(bad))
        self.assertEqual(len(tops), self.truth["arenas"], "arenas with a top: %s" % tops)
        self.assertTrue(all(len(v) == 1 for v in tops.values()), "several tops in one arena: %s" % tops)

    def test_states_and_wheres_are_known(self):
        allocs, _ = self.chunks()
        wheres = {"used", "mmapped", "meta", "tcache", "free-unlisted"} | set(FREE_LISTS)
        for a in allocs:
            self.assertIn(a["where"], wheres)
            # docs/json.md: state is used, free or meta (allocator metadata).
            want = {"used": "used", "mmapped": "used", "meta": "meta"}.get(a["where"], "free")
            self.assertEqual(a["state"], want, "state of %r" % a)

    def test_mmapped_chunks(self):
        allocs, _ = self.chunks()
        mm = [a for a in allocs if a["where"] == "mmapped"]
        mi = self.truth["mallinfo2"]
        self.assertEqual(sorted(a["address"] for a in mm), sorted(self.truth["mmapped"]))
        self.assertEqual(len(mm), mi["hblks"])
        self.assertEqual(sum(a["size"] + 16 for a in mm), mi["hblkhd"])
        self.assertTrue(all(a["arena"] is None for a in mm), "an mmapped chunk has an arena")

    def test_arenas(self):
        allocs, by = self.chunks()
        self.assertEqual(self.summary()["arenas"], self.truth["arenas"])
        seen = {a["arena"] for a in allocs if a["where"] != "mmapped"}
        self.assertNotIn(None, seen, "a chunk in an arena heap has arena null")
        self.assertEqual(len(seen), self.truth["arenas"])
        # The truth names arenas by address (0: main_arena); the same arenas must
        # group the same chunks under one number each.
        pairs = {}
        for rec in self.truth["live"] + self.truth["freed"] + self.truth["meta"]:
            a = by.get(rec["address"])
            if rec["arena"] != -1 and a is not None:
                pairs.setdefault(rec["arena"], set()).add(a["arena"])
        self.assertTrue(all(len(v) == 1 for v in pairs.values()), "arenas split: %s" % pairs)
        numbers = [next(iter(v)) for v in pairs.values()]
        self.assertEqual(len(set(numbers)), len(numbers), "arenas merged: %s" % pairs)

    def test_mallinfo_free_totals(self):
        allocs, _ = self.chunks()
        mi = self.truth["mallinfo2"]

        def chunk_bytes(wheres):
            return sum(a["size"] + 8 for a in allocs if a["where"] in wheres)

        self.assertEqual(chunk_bytes(FREE_LISTS), mi["fordblks"],
                         "fordblks: tops + fastbins + bins (chunk sizes)")
        self.assertEqual(chunk_bytes(("fastbin",)), mi["fsmblks"])
        self.assertEqual(sum(1 for a in allocs if a["where"] == "fastbin"), mi["smblks"])
        self.assertEqual(sum(1 for a in allocs if a["where"] in ("unsorted", "smallbin", "largebin", "top")),
                         mi["ordblks"], "ordblks: tops + binned chunks")

    def test_mallinfo_used_total(self):
        allocs, by = self.chunks()
        mi = self.truth["mallinfo2"]
        used = sum(a["size"] + 8 for a in allocs if a["where"] in ("used", "meta", "tcache"))
        unreported = sum(r["size"] + 8 for r in self.truth["internal"] if r["address"] not in by)
        extra_heaps = sum(1 for r in self.truth["internal"] if "fencepost" in r["what"])
        overhead = ARENA_OVERHEAD * (self.truth["arenas"] - 1) + EXTRA_HEAP_OVERHEAD * extra_heaps
        self.assertEqual(used + unreported + overhead, mi["uordblks"],
                         "uordblks = used + tcache + meta chunks (%d) + unreported internal (%d) "
                         "+ arena/heap headers (%d)" % (used, unreported, overhead))

    def test_summary_matches_chunks(self):
        allocs, _ = self.chunks()
        s = self.summary()
        self.assertEqual(s.get("command", "summary"), "summary")
        self.assertEqual(s["allocator"], "glibc")
        used = [a for a in allocs if a["where"] in ("used", "mmapped")]
        free = [a for a in allocs if a["state"] == "free"]
        self.assertEqual(s["in_use"], {"count": len(used), "bytes": sum(a["size"] for a in used)})
        self.assertEqual(s["free"], {"count": len(free), "bytes": sum(a["size"] for a in free)})


def make_cases():
    for fixture in ("glibc_heap", "threads", "mapped_elf"):
        for kind in hslib.KINDS:
            for debug, opts in (("Debuginfo", ()), ("NoDebuginfo", ("--no-debuginfo",))):
                name = "Walk_%s_%s_%s" % (fixture, kind, debug)
                globals()[name] = type(name, (GlibcWalkCase, unittest.TestCase),
                                       {"fixture": fixture, "kind": kind, "opts": opts})


make_cases()
