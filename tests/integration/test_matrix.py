"""The version matrix: other Debian releases' glibc and jemalloc, checked exactly.

cores/make-matrix-cores.sh (make cores runs it) fetches Debian 11's and 13's
C library (2.31, 2.41, with their libc6-dbg) and jemalloc (5.2.1, and 5.3.0
built with LG_VADDR 57) through a private apt sources list, builds the fixture
programs against them and runs each with that release's own loader:

  m11_* / m13_*   glibc_heap, leaks, jemalloc_dynamic (the release's stripped
                  libjemalloc.so.2), jemalloc_static (its libjemalloc.a, the
                  executable stripped), jemalloc_symbols (the same, unstripped),
                  jemalloc_pic (its libjemalloc_pic.a linked into a stripped
                  shared library of another name), jemalloc_burst (a burst of
                  frees)

Each has a gdb core and a kernel core.  The same exact checks as for this
machine's builds (test_glibc, test_leaks, test_jemalloc) run on them, with the
release's debug info (--debug-dir ROOT/usr/lib/debug: its libc6-dbg) and without
(--no-debuginfo: the built-in layouts).  A missing matrix core is a failure
(the download or the build failed: make cores says why), never a skip.

jemalloc_burst (this machine's and both releases'): 20,000 x 4 KiB and 20,000 x
80 bytes allocated and freed, then 200 x 16 KiB allocated: slabs emptied by the
thousand, whose rtree elements keep stale slab bits and size classes.  The heap
is healthy: it must be read with no warning, every live pointer used with its
size class, every freed pointer free, and jemalloc's own byte counts exact.
"""
import bisect
import os
import unittest

import hslib
import test_glibc
import test_jemalloc
import test_leaks

# prefix: (release, glibc, jemalloc layout name, LG_VADDR, rtree levels)
RELEASES = {
    "m11": ("bullseye", "2.31", "5.2.1 (LG_VADDR 48)", 48, 2),
    "m13": ("trixie", "2.41", "5.3.0 (LG_VADDR 57)", 57, 3),
}


def root_of(name):
    """The sysroot the fixture was built against (its .root file)."""
    path = os.path.join(hslib.CORES, name + ".root")
    if not os.path.exists(path):
        raise AssertionError("%s is missing: the version matrix was not built (run BUILD=%s "
                             "cores/make-matrix-cores.sh; it downloads Debian 11 and 13 packages)"
                             % (path, os.path.relpath(hslib.BUILD, hslib.ROOT)))
    with open(path) as f:
        return f.read().strip()


def debug_opts(name):
    return ("--debug-dir", os.path.join(root_of(name), "usr", "lib", "debug"))


class DebugOpts:
    """opts resolved at setUp: the release's debug directory, or --no-debuginfo."""
    debug = True

    def setUp(self):
        self.opts = debug_opts(self.fixture) if self.debug else ("--no-debuginfo",)
        super().setUp()


# --- glibc ------------------------------------------------------------------------------------

class GlibcVersionCase:
    def test_layout_of_the_release(self):
        doc = hslib.run_json(list(self.opts) + [self.core, "summary"])
        g = [a for a in doc["allocators"] if a["name"] == "glibc"]
        self.assertEqual(len(g), 1, doc["allocators"])
        src = g[0]["layout_source"]
        if self.debug:
            # The release's libc6-dbg, not this machine's.
            self.assertIn(root_of(self.fixture), src)
            self.assertIn("DWARF", src)
        else:
            self.assertIn("built-in", src)
            self.assertIn(RELEASES[self.fixture[:3]][1], src)
        errors = [d for d in doc.get("diagnostics", []) if d.get("level") in ("error", "warning")]
        self.assertEqual(errors, [])


    def test_mallinfo_used_total(self):
        # test_glibc's formula, with this release's sizeof(heap_info): 32 in
        # 2.31, 48 from 2.35 on (heap_info gained pagesize).
        hi = {"m11": 32, "m13": 48}[self.fixture[:3]]
        allocs, by = self.chunks()
        mi = self.truth["mallinfo2"]
        used = sum(a["size"] + 8 for a in allocs if a["where"] in ("used", "meta", "tcache"))
        unreported = sum(r["size"] + 8 for r in self.truth["internal"] if r["address"] not in by)
        extra_heaps = sum(1 for r in self.truth["internal"] if "fencepost" in r["what"])
        arena = (hi + 2200 + 15) // 16 * 16     # heap_info + malloc_state, aligned
        overhead = arena * (self.truth["arenas"] - 1) + (hi + 16) * extra_heaps
        self.assertEqual(used + unreported + overhead, mi["uordblks"])


LEAK_TESTS = ("test_summary_leaked_and_unreferenced", "test_leaked_set_exact", "test_unreferenced_set_exact",
              "test_no_free_chunk_reported_leaked", "test_stale_pointers_in_free_chunks_anchor_nothing",
              "test_allocator_metadata_anchors_nothing", "test_leaks_object_fields")


# --- jemalloc ---------------------------------------------------------------------------------

class JemallocVersionCase(test_jemalloc.JemallocCore):
    test_found_as_jemalloc_530 = None
    locator = "disassembly"

    def test_found_as_the_release_build(self):
        _, _, layout, vaddr, levels = RELEASES[self.name[:3]]
        doc = hslib.run_json(["--allocator", "jemalloc", self.core, "summary"], timeout=60)
        je = test_jemalloc.jemalloc_desc(doc)
        self.assertTrue(je["version"].startswith(layout.split()[0] + "-0-g"), je["version"])
        self.assertTrue(self.truth["version"].startswith(je["version"].split("-g")[0]))
        self.assertIn("built-in %s; emap by %s" % (layout, self.locator), je["layout_source"])
        f = je["facts"]
        self.assertEqual((f["LG_PAGE"], f["LG_QUANTUM"], f["LG_VADDR"], f["rtree levels"]), (12, 4, vaddr, levels))
        self.assertEqual(f["size tables checked"], 1, "the size class tables were not found in memory")
        self.assertEqual(f["tcaches"], len(self.truth["threads"]), "one tcache per thread")
        self.assertEqual(doc.get("diagnostics", []), [], "a healthy heap gives no diagnostics")

    def test_totals_agree_with_malloc_stats_print(self):
        if not self.name.startswith("m11"):
            return super().test_totals_agree_with_malloc_stats_print()
        # jemalloc 5.2.1's malloc_stats_print writes without a buffer of its
        # own: its numbers are mallctl's.
        h = test_jemalloc.heap(self.core)
        f = test_jemalloc.jemalloc_desc(self.summary())["facts"]
        stats = self.truth["malloc_stats"]["jemalloc"]["stats"]
        merged = self.truth["malloc_stats"]["jemalloc"]["stats.arenas"]["merged"]
        self.assertEqual(stats["allocated"], self.truth["mallctl"]["allocated"])
        tcache = h.total(("tcache",))
        # 5.2.1's tcache_bytes counts the small classes only: arena_stats_merge()
        # reads bins_large[i] from i = SC_NBINS (a jemalloc bug, fixed in 5.3).
        small = sum(b["size"] for b in h.blocks if b["where"] == "tcache" and b["size"] <= 14336)
        self.assertEqual(small, merged["tcache_bytes"], "small tcache-cached bytes")
        self.assertGreater(tcache, small, "the fixture caches large objects too")
        self.assertEqual(tcache, f["tcache_bytes"])
        self.assertEqual(h.total(test_jemalloc.USED) + tcache + f["internal_bytes"], stats["allocated"])
        self.assertEqual(f["allocated_bytes"], stats["allocated"])
        self.assertEqual(f["active_bytes"], stats["active"])
        self.assertEqual(f["retained_bytes"], stats["retained"])


class BurstCase:
    """jemalloc_burst: a healthy heap just after a burst of frees."""
    name = kind = None

    def setUp(self):
        self.core = test_jemalloc.je_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)

    def summary(self, *extra):
        return hslib.run_json(["--allocator", "jemalloc"] + list(extra) + [self.core, "summary"], timeout=60)

    def test_no_diagnostic(self):
        doc = self.summary()
        self.assertEqual(doc.get("diagnostics", []), [], "a healthy heap after a burst of frees")
        je = test_jemalloc.jemalloc_desc(doc)
        self.assertTrue(self.truth["version"].startswith(je["version"].split("-g")[0]), je["version"])

    def test_live_and_freed_exact(self):
        h = test_jemalloc.heap(self.core)
        bad = []
        live = {r["address"] for r in self.truth["live"]}
        for r in self.truth["live"]:
            b = h.by_address.get(r["address"])
            if not b or b["state"] != "used" or b["where"] not in test_jemalloc.USED or b["size"] != r["size"]:
                bad.append(("live", hex(r["address"]), r["size"], b))
        for r in self.truth["freed"]:
            b = h.containing(r["address"])
            if b is None:
                # Pages of a large extent that its allocation does not cover: the
                # cache-oblivious offset before it, the page of sz_large_pad after.
                i = bisect.bisect_right(h.starts, r["address"]) - 1
                p = h.blocks[i] if i >= 0 else None
                n = h.blocks[i + 1] if i + 1 < len(h.blocks) else None
                if p and p["where"] == "large" and r["address"] < (p["address"] & ~4095) + p["size"] + 4096:
                    continue
                if n and n["where"] == "large" and r["address"] >= n["address"] & ~4095:
                    continue
            if b and b["state"] == "used" and b["address"] in live and b["address"] != r["address"]:
                continue   # its memory reused by a live allocation (the 16 KiB ones)
            if not b or b["state"] != "free" or b["where"] not in ("slab", "extent"):
                bad.append(("freed", hex(r["address"]), r["size"], b))
        self.assertEqual(bad[:10], [], "%d wrong" % len(bad))
        self.assertEqual(len(self.truth["live"]), 64 + 200)
        self.assertGreater(len(self.truth["freed"]), 39000)

    def test_byte_counts_exact(self):
        h = test_jemalloc.heap(self.core)
        f = test_jemalloc.jemalloc_desc(self.summary())["facts"]
        m = self.truth["mallctl"]
        self.assertEqual(h.total(("tcache",)), 0, "the fixture flushed its tcache")
        self.assertEqual(h.total(test_jemalloc.USED) + f["internal_bytes"], m["allocated"])
        self.assertEqual(f["allocated_bytes"], m["allocated"])
        self.assertEqual(f["active_bytes"], m["active"])

    def test_every_locator(self):
        emap = test_jemalloc.jemalloc_desc(self.summary())["facts"]["je_arena_emap_global"]
        for n, how in test_jemalloc.LOCATORS.items():
            je = test_jemalloc.jemalloc_desc(self.summary("--override", "je_locator=%d" % n))
            self.assertIn(how, je["layout_source"])
            self.assertEqual(je["facts"]["je_arena_emap_global"], emap, how)


def make_cases():
    g = globals()
    for p in sorted(RELEASES):
        for kind in hslib.KINDS:
            for debug in (True, False):
                dname = "Debuginfo" if debug else "NoDebuginfo"
                name = "Matrix_%s_glibc_heap_%s_%s" % (p, kind, dname)
                g[name] = type(name, (DebugOpts, GlibcVersionCase, test_glibc.GlibcWalkCase, unittest.TestCase),
                               {"fixture": p + "_glibc_heap", "kind": kind, "debug": debug})
                name = "Matrix_%s_leaks_%s_%s" % (p, kind, dname)
                attrs = {t: getattr(test_leaks.LeakCase, t) for t in LEAK_TESTS}
                attrs.update({"fixture": p + "_leaks", "kind": kind, "debug": debug,
                              "run_json": test_leaks.LeakCase.run_json, "listed": test_leaks.LeakCase.listed,
                              "truth_totals": test_leaks.LeakCase.truth_totals,
                              "set_problems": test_leaks.LeakCase.set_problems})
                g[name] = type(name, (DebugOpts, test_leaks.Base, unittest.TestCase), attrs)
            for je in ("jemalloc_dynamic", "jemalloc_static", "jemalloc_pic"):
                name = "Matrix_%s_%s_%s" % (p, je, kind)
                attrs = {"name": "%s_%s" % (p, je), "kind": kind}
                if p == "m11":
                    # jemalloc 5.2.1 also defines __libc_malloc: the fixture's
                    # "glibc" objects are jemalloc's, glibc's heap is unused.
                    attrs["test_both_heaps_in_auto_mode"] = None
                if kind != "gdb":
                    attrs["test_show_tells_used_and_cached"] = None
                g[name] = type(name, (JemallocVersionCase, unittest.TestCase), attrs)
        # The static executable with its je_ symbols: found by name (5.2's
        # je_extents_rtree, 5.3's je_arena_emap_global, told apart by size).
        name = "Matrix_%s_jemalloc_symbols_gdb" % p
        g[name] = type(name, (JemallocVersionCase, unittest.TestCase),
                       {"name": p + "_jemalloc_symbols", "kind": "gdb", "locator": "symbol",
                        "test_both_heaps_in_auto_mode": None if p == "m11" else
                        JemallocVersionCase.test_both_heaps_in_auto_mode})
    for p in ("", "m11_", "m13_"):
        for kind in hslib.KINDS:
            name = "Burst_%s%s" % (p, kind)
            g[name] = type(name, (BurstCase, unittest.TestCase), {"name": p + "jemalloc_burst", "kind": kind})


make_cases()
