"""One mapping split in several VMAs: the same heap, the same answers.

madvise and mprotect split a mapping into VMAs (Go's heap arenas when
transparent huge pages are on: MADV_HUGEPAGE or MADV_NOHUGEPAGE on part of an
arena), and a core has a PT_LOAD for each, so allocations lie across two
segments.  Each case cuts a fixture core's writable loads at many page
boundaries (a copy whose program header table is rewritten at its end; no
byte of memory moves), checks that allocations do lie across the cuts, and
asks for the same answers as from the whole core, byte for byte.  A thread's
stack is cut only above its stack pointer: below it, the core cannot tell the
stack's own dead part from another mapping right beside it (the pieces there
are scanned as other memory, roots: fewer leaks, never more).  Each
thread's TLS page and the page below it are cut too: static TLS blocks lie
below fs_base, and a cut between them and the TCB once turned the main
thread's TLS into "other memory".  A heap whose allocations straddled a cut
was once partly "not in the core" (its pointers unknown, so what it held
could be reported leaked).
"""
import bisect
import os
import re
import shutil
import struct
import tempfile
import unittest

import hslib

PAGE = 4096
MAX_CUTS = 400        # per load: the program header table stays small
COMMANDS = (["summary", "--leaks"], ["leaks", "--list"], ["histogram"], ["top"], ["owners"],
            ["pools"], ["maps"], ["chunks"])


def split_core(src, dst, sps=(), tls=(), inside=()):
    """Copy src to dst with each wholly dumped writable PT_LOAD of more than two
    pages cut at odd page boundaries (4 KiB, not 8 KiB aligned: inside Go's
    spans too), at the page of each address in tls and the page below, and
    at each address in inside (not page aligned: across a variable wherever
    the stack lay); a load that holds a thread's stack pointer (sps) only
    above it.  Returns the cut addresses."""
    shutil.copyfile(src, dst)
    cuts = []
    with open(dst, "r+b") as f:
        eh, rows = hslib.raw_program_headers(f)
        out = []
        for p in rows:
            p_type, flags, off, vaddr, _pa, filesz, memsz, align = p
            if p_type != 1 or not flags & 2 or filesz != memsz or filesz <= 2 * PAGE or vaddr % PAGE:
                out.append(p)
                continue
            pages = filesz // PAGE
            step = 2 * max(1, pages // (2 * MAX_CUTS))
            at = [vaddr + k * PAGE for k in range(1, pages, step)]
            for fs in tls:
                page = fs & ~(PAGE - 1)
                at += [c for c in (page - PAGE, page) if vaddr < c < vaddr + filesz]
            at += [c for c in inside if vaddr < c < vaddr + filesz]
            at = sorted(set(at))
            below = [sp for sp in sps if vaddr <= sp < vaddr + filesz]
            at = [c for c in at if all(c > sp for sp in below)]
            prev = vaddr
            for c in at + [vaddr + filesz]:
                out.append((1, flags, off + prev - vaddr, prev, 0, c - prev, c - prev, align))
                prev = c
            cuts += at
        end = (f.seek(0, 2) + 7) & ~7
        f.truncate(end)
        f.seek(end)
        for p in out:
            f.write(struct.pack("<IIQQQQQQ", *p))
        struct.pack_into("<Q", eh, 32, end)
        struct.pack_into("<H", eh, 56, len(out))
        f.seek(0)
        f.write(eh)
    return cuts


class SplitCase:
    fixture = kind = None
    exe = None            # the executable, when the core's path to it is not the fixture's

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="heapscope-split-")
        cls.whole = hslib.core(cls.fixture, cls.kind)
        cls.split = os.path.join(cls.tmp, os.path.basename(cls.whole))
        info = hslib.run_json([cls.whole, "info"], timeout=300)
        # Through the middle of each container a stack local holds: a variable
        # across a cut is still one variable (a map in main's frame once
        # went unnamed when the cut fell inside it).
        doc = hslib.run_json([cls.whole, "maps"], timeout=300)
        cls.locals = [c["address"] + 8 for c in doc["containers"] if re.search(r" frame \d+ ", c["anchor"] or "")]
        cls.cuts = split_core(cls.whole, cls.split, [t["sp"] for t in info["threads"]],
                              [t["fs_base"] for t in info["threads"] if t.get("fs_base")], cls.locals)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def answer(self, core, args):
        r = hslib.run(["--json", core] + args, timeout=300)
        hslib.check_no_crash(r)
        return r.status, r.stdout.replace(self.split, self.whole)

    def test_allocations_lie_across_the_cuts(self):
        self.assertGreater(len(self.cuts), 10, "the core has no writable load to cut")
        doc = hslib.run_json([self.split, "chunks", "--used"], timeout=300)
        cuts = sorted(self.cuts)
        across = 0
        for a in doc["allocations"]:
            k = bisect.bisect_right(cuts, a["address"])
            across += k < len(cuts) and cuts[k] < a["address"] + a["size"]
        self.assertGreater(across, 0, "no allocation lies across a cut: the case tests nothing")

    def test_stack_locals_are_cut(self):
        if self.fixture == "maps_cpp":
            self.assertTrue(self.locals, "main's local_map is no longer found on the whole core")
            self.assertTrue(set(self.locals) <= set(self.cuts), "a stack local was not cut")

    def test_same_answers_as_the_whole_core(self):
        for args in COMMANDS:
            with self.subTest(command=" ".join(args)):
                want = self.answer(self.whole, args)
                got = self.answer(self.split, args)
                self.assertEqual(got[0], want[0], "exit status of %s" % " ".join(args))
                self.assertEqual(got[1], want[1], "%s differs on the split core" % " ".join(args))


def case(fixture, kind):
    name = "TestSplit_%s_%s" % (fixture, kind)
    return name, type(name, (SplitCase, unittest.TestCase), {"fixture": fixture, "kind": kind})


for _fixture, _kind in (("go_heap", "gdb"), ("go_heap", "kernel"), ("go124_heap", "kernel"),
                        ("go_maps", "kernel"), ("go_pools", "gdb"), ("leaks", "kernel"),
                        ("maps_cpp", "kernel"), ("jemalloc_dynamic", "kernel"), ("pools", "gdb")):
    _name, _cls = case(_fixture, _kind)
    globals()[_name] = _cls

if __name__ == "__main__":
    unittest.main()
