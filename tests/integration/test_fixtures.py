"""The fixtures' truth, checked against glibc's own view of each core.

cores/make-cores.sh runs cores/validate.py under gdb (with libc6-dbg) on every
core it makes: an independent walk from main_arena, mp_ and each thread's
tcache that must agree with the truth the fixture wrote.  A failure here means
the fixture's truth is wrong, not heapscope.
"""
import os
import unittest

import hslib


class FixtureTruth(unittest.TestCase):
    def check(self, kind):
        names = hslib.glibc_fixtures()
        self.assertTrue(names)
        for name in names:
            hslib.core(name, kind)
            path = os.path.join(hslib.CORES, "%s.%s.validation" % (name, kind))
            self.assertTrue(os.path.exists(path), "%s is missing (cores/make-cores.sh)" % path)
            with open(path) as f:
                lines = f.read().splitlines()
            problems = [l for l in lines if l.startswith("PROBLEM")]
            self.assertTrue(lines and lines[-1] == "validation: OK",
                            "%s.%s: %s" % (name, kind, "\n".join(problems or lines[-5:])))

    def test_gdb_cores(self):
        self.check("gdb")

    def test_kernel_cores(self):
        self.check("kernel")


class FixtureCoverage(unittest.TestCase):
    """glibc_heap holds every kind of block the walker must classify."""

    def test_glibc_heap_has_everything(self):
        hslib.core("glibc_heap", "gdb")
        t = hslib.truth("glibc_heap", "gdb")
        kinds = {r["expect"] for r in t["freed"]}
        self.assertEqual(kinds, {"tcache", "fastbin", "unsorted", "smallbin", "largebin"})
        self.assertEqual(t["arenas"], 4)
        self.assertGreaterEqual(len(t["mmapped"]), 3)
        self.assertTrue(any("fencepost" in r["what"] for r in t["internal"]),
                        "no arena grew a second heap")
        big = {r["arena"] for r in t["live"] if r["size"] > 100000 and r["arena"] not in (0, -1)}
        self.assertEqual(len(big), 1)
        self.assertEqual(len({r["tid"] for r in t["threads"]}), 4)
