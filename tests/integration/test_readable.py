"""Answers people can read (issue 14, items 2-5) on the grow fixture's second core:
a list of 250 `struct item` from g_items (next at +8, 56 bytes each), 20
`struct record` from g_records (next at +16) and g_alt, 50 pairs of alt_a ->
alt_b (alternating types: nothing alike to collapse).

* top: the list is one row (OBJECTS 250, the truth's count), owned by g_items;
* chain to the list's tail: the root, the head, one run line for the 248 hops
  alike, the tail, exactly; --max-hops elides the middle and keeps the first and
  the last hop; the alternating chain has no run and is cut by --max-hops.

The list is walked from the core file itself (test_leaks.Core), not by heapscope.
Cores: gdb and kernel, with and without debug info, and the stripped executable.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402
import test_export  # noqa: E402
import test_leaks  # noqa: E402

BIG = "1000000"


def walk(core, head, link):
    """Addresses of the list from head, following the word at offset link."""
    out, p = [], head
    while p and len(out) < 100000:
        out.append(p)
        p = core.u64(p + link)
    return out


class Grow:
    kind = "gdb"
    opts = ()
    stripped = False

    @classmethod
    def setUpClass(cls):
        if cls.stripped:
            cls.core = os.path.join(hslib.CORES, "grow.stripped.two.gdb.core")
            if not os.path.exists(cls.core):
                raise AssertionError("%s is missing (run cores/make-grow-cores.sh)" % cls.core)
        else:
            cls.core = test_export.grow_core("two", cls.kind)
        cls.truth = test_export.grow_truth(cls.kind)
        cls.mem = test_leaks.Core(cls.core)
        top = cls.run_json("top", "--limit", BIG)["objects"]
        # The rows of the three lists, found by their shape: sizes and counts.
        cls.rows = top

    @classmethod
    def run_json(cls, *args):
        return hslib.run_json(list(cls.opts) + [cls.core] + list(args))

    def list_row(self, count, size):
        rows = [x for x in self.rows if x["retained_count"] == count and x["size"] == size]
        self.assertEqual(len(rows), 1, "one top row of %d allocations of %d bytes" % (count, size))
        return rows[0]

    def test_top_list_is_one_row_owned_by_its_global(self):
        n, size = self.truth["two"]["item"], self.truth["sizes"]["item"]
        row = self.list_row(n, size)
        nodes = walk(self.mem, row["address"], 8)
        self.assertEqual(len(nodes), n, "the core's list from the row")
        self.assertEqual(row["retained"], n * size)
        addrs = {x["address"] for x in self.rows}
        self.assertFalse(addrs & set(nodes[1:]), "the other items are folded under the head")
        self.assertEqual(row["owner"]["kind"], "global")
        if not self.stripped:
            self.assertEqual((row["owner"]["name"], row["owner"]["symbol"]), ("g_items", "g_items"))
        self.assertEqual(self.mem.u64(row["owner"]["address"]), row["address"], "the owner's word holds the head")

    def test_top_depth_unfolds_the_list(self):
        n, size = self.truth["two"]["item"], self.truth["sizes"]["item"]
        head = self.list_row(n, size)["address"]
        nodes = walk(self.mem, head, 8)
        doc = self.run_json("top", "--limit", BIG, "--depth", "3")
        row = next(x for x in doc["objects"] if x["address"] == head)
        got = []
        while "children" in row:
            self.assertEqual(len(row["children"]), 1, "an item keeps one item alive")
            row = row["children"][0]
            got.append((row["address"], row["retained_count"], row["via_offset"], row["via_field"]))
        field = None if self.stripped else "next"
        self.assertEqual(got, [(nodes[k], n - k, 8, field) for k in (1, 2, 3)])

    def expect_chain(self, nodes, link, type_, field, size):
        hop = lambda a, off: {"kind": "allocation", "address": a, "size": size, "offset": off,
                              "type": type_, "field": field if off is not None else None}
        run = {"kind": "run", "count": len(nodes) - 2, "first": nodes[1], "last": nodes[-2],
               "bytes": (len(nodes) - 2) * size, "min_size": size, "max_size": size, "offset": link,
               "type": type_, "field": field}
        return hop(nodes[0], link), run, hop(nodes[-1], None)

    def check(self, got, want):
        self.assertEqual([{k: g.get(k) for k in w} for g, w in zip(got, want)], list(want))
        self.assertEqual(len(got), len(want))

    def test_chain_collapses_the_list(self):
        n, size = self.truth["two"]["item"], self.truth["sizes"]["item"]
        nodes = walk(self.mem, self.list_row(n, size)["address"], 8)
        typed = not self.stripped  # --no-debuginfo: the executable's own DWARF stays
        doc = self.run_json("chain", "%#x" % nodes[-1])
        self.assertEqual((doc["anchored"], doc["hops"]), (True, n))
        root = doc["chain"][0]
        self.assertEqual((root["kind"], self.mem.u64(root["address"])), ("global", nodes[0]))
        self.check(doc["chain"][1:], self.expect_chain(nodes, 8, "item" if typed else None,
                                                       "next" if typed else None, size))
        text = hslib.run(list(self.opts) + [self.core, "chain", "%#x" % nodes[-1]]).stdout
        self.assertIn(" x %d (" % (n - 2), text)
        self.assertEqual(len(text.splitlines()), 5, text)

    def test_chain_max_hops_keeps_first_and_last(self):
        n, size = self.truth["two"]["item"], self.truth["sizes"]["item"]
        nodes = walk(self.mem, self.list_row(n, size)["address"], 8)
        doc = self.run_json("chain", "%#x" % nodes[-1], "--max-hops", "2")
        got = [(x["kind"], x.get("address"), x.get("hops"), x.get("lines")) for x in doc["chain"][1:]]
        self.assertEqual(got, [("allocation", nodes[0], None, None), ("elided", None, n - 2, 1),
                               ("allocation", nodes[-1], None, None)])

    def test_chain_of_alternating_types_is_cut_by_max_hops(self):
        pairs = self.truth["alt"]["pairs"]
        a_size, b_size = self.truth["alt"]["alt_a"], self.truth["alt"]["alt_b"]
        row = self.list_row(2 * pairs, a_size)
        nodes = walk(self.mem, row["address"], 0)
        self.assertEqual(len(nodes), 2 * pairs)
        for max_hops, head, tail in (("0", 2 * pairs, 0), ("20", 10, 10), ("7", 4, 3)):
            doc = self.run_json("chain", "%#x" % nodes[-1], "--max-hops", max_hops)
            chain = doc["chain"][1:]
            addrs = [x.get("address") for x in chain]
            want = nodes[:head] + ([None] if tail else []) + (nodes[-tail:] if tail else [])
            self.assertEqual(addrs, want, "--max-hops %s" % max_hops)
            if tail:
                self.assertEqual((chain[head]["kind"], chain[head]["hops"]), ("elided", 2 * pairs - head - tail))
            sizes = {x["size"] for x in chain if x["kind"] == "allocation"}
            self.assertEqual(sizes, {a_size, b_size})


def make_cases():
    for kind in hslib.KINDS:
        for debug, opts in (("Debuginfo", ()), ("NoDebuginfo", ("--no-debuginfo",))):
            name = "Readable_grow_%s_%s" % (kind, debug)
            globals()[name] = type(name, (Grow, unittest.TestCase), {"kind": kind, "opts": opts})
    globals()["Readable_grow_stripped"] = type("Readable_grow_stripped", (Grow, unittest.TestCase),
                                               {"stripped": True})


make_cases()

if __name__ == "__main__":
    unittest.main()
