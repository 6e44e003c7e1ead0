"""Inferred C types (issue 14, item 1) against the ctypes fixture's truth.

    BUILD=build python3 tests/integration/test_ctypes.py [-v] [SUBSTRING...]

cores/ctypes.c leaks lists, a cycle, a tree whose payloads and blobs no typed
block anywhere points at, a big <-> big cycle and decoys of equal sizes (no
pointers, or a pointer to a certain block of another type).  Its truth gives
each leaked object the type inference must give it ("inferred", spelled "~node"
as heapscope prints it) or null (must stay unknown).  Checked exactly on the
gdb and the kernel core:
* with the fixture's DWARF: every leaked object's type, certainty, rule;
  nothing certain among the leaked; the anchored objects certain as before;
* without it (--exe on a stripped copy): nothing is inferred, every leaked C
  block stays unknown (no struct layouts to infer from).

cores/ctypes_small.c's certain layouts point only at structs of 72 bytes or
more, so inference marks the untyped blocks under 72 bytes small (no such
layout's pointer types them): a mid of 72 bytes is not small, a tiny behind a
field-typed mid (whose layout points at 16 bytes) is typed all the same, a
small decoy where a leaf should be is not; and a fan with 22 open targets,
more than the field rule matches by address.  Its leaked types checked exactly
the same way, on one thread and in small splits on two.

cores/ctypes_many.c has 4,096 struct types a global points at: the certain
types of its blocks, and no hang on so many layouts.
"""
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402

BIG = 1000000
_stripped = {}


def stripped_exe():
    if "exe" not in _stripped:
        d = tempfile.mkdtemp(prefix="hs-ctypes-")
        exe = os.path.join(d, "ctypes")
        subprocess.run(["strip", "-o", exe, os.path.join(hslib.CORES, "ctypes")], check=True)
        _stripped["exe"] = exe
    return _stripped["exe"]


class Base:
    kind = None
    fixture = "ctypes"

    def setUp(self):
        self.core = hslib.core(self.fixture, self.kind)
        self.truth = hslib.truth(self.fixture, self.kind)["leaks"]
        self.objs = {o["address"]: o for o in self.truth["objects"]}
        self.leaked = {a for a, o in self.objs.items() if o["leaked"]}

    def listed(self, opts=()):
        doc = hslib.run_json(list(opts) + [self.core, "leaks", "--list", "--limit", str(BIG)])
        return {x["address"]: x for x in doc["objects"]}, doc


class Exact:
    """The leaked objects' types exactly as the truth says, and the same on
    two threads with the work cut small as on one."""

    def test_leaked_types_exact(self):
        objs, _ = self.listed()
        self.assertEqual(set(objs), self.leaked, "leaked set")
        bad = []
        for a in sorted(self.leaked):
            o, x = self.objs[a], objs[a]
            want = (o["inferred"], "inferred" if o["inferred"] else None)
            got = (x.get("type"), x.get("type_certainty"))
            if got != want:
                bad.append("%#x %s: heapscope %s, truth %s" % (a, o["label"], got, want))
        self.assertFalse(bad, "\n".join(bad))

    def test_jobs_agree_in_small_splits(self):
        """Both inference rules and the certain types, with their work cut
        into pieces of a few entries (the test hook) on two threads, type
        every block as one thread does."""
        for cmd in (["leaks", "--list", "--limit", str(BIG)], ["histogram", "--used", "--by", "type"]):
            one = hslib.run_json(["--jobs", "1", self.core] + cmd)
            os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"] = "1"
            try:
                two = hslib.run_json(["--jobs", "2", self.core] + cmd)
            finally:
                del os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"]
            self.assertEqual(one, two, " ".join(cmd))


class DwarfCase(Base, Exact):
    def test_fixture_has_every_kind(self):
        inf = {o["inferred"] for o in self.objs.values() if o["leaked"]}
        self.assertEqual(inf, {"~node", "~rev", "~tnode", "~payload", "~blob", "~big", None})

    def test_rules_and_confidence(self):
        objs, _ = self.listed()
        bad = []
        for a in self.leaked:
            x = objs[a]
            if self.objs[a]["inferred"]:
                ok = x.get("type_rule") in ("layout", "field") and 0 < x.get("type_confidence", 0) < 100
            else:
                ok = x.get("type_rule") is None and x.get("type_confidence") is None
            if not ok:
                bad.append("%s: %s" % (self.objs[a]["label"], x))
        self.assertFalse(bad, "\n".join(bad))
        # Cluster heads of pointer-bearing kinds are typed by layout; the
        # list tails, payloads and blobs (no typed instance) only by a field.
        for a in self.leaked:
            o = self.objs[a]
            if o["label"] in ("payload", "blob", "big a's node", "rev tail"):
                self.assertEqual(objs[a].get("type_rule"), "field", o["label"])
            if o["label"] in ("rev head", "big a", "big b"):
                self.assertEqual(objs[a].get("type_rule"), "layout", o["label"])

    def test_first_claim_wins(self):
        """A payload two inferred tnodes point at is the first one's (the
        leaf, less sure than the other), with its confidence: the field rule
        types a block once, in queue order."""
        objs, _ = self.listed()
        by = {self.objs[a]["label"]: objs[a] for a in self.leaked}
        first, second = by["shared payload's first claimant"], by["shared payload's second claimant"]
        shared = by["shared payload"]
        self.assertLess(first["type_confidence"], second["type_confidence"], (first, second))
        self.assertEqual((shared["type"], shared["type_rule"], shared["type_confidence"]),
                         ("~payload", "field", first["type_confidence"] * 95 // 100), shared)

    def test_none_certain_wrong(self):
        doc = hslib.run_json([self.core, "histogram", "--used", "--by", "type", "--limit", str(BIG)])
        got = {}
        for g in doc["groups"]:
            if g.get("type") and not g["type"].startswith("~"):
                self.assertEqual(g.get("type_certainty"), "certain", g)
                got[g["type"]] = got.get(g["type"], 0) + g["count"]
        want = {}
        for o in self.objs.values():
            if o["type"]:
                want[o["type"]] = want.get(o["type"], 0) + 1
        self.assertEqual({t: got.get(t) for t in want}, want, "certain types of the fixture's objects")

    def test_histogram_groups_inferred(self):
        doc = hslib.run_json([self.core, "histogram", "--leaked", "--by", "type", "--limit", str(BIG)])
        got = {g.get("type"): g["count"] for g in doc["groups"]}
        want = {}
        for a in self.leaked:
            t = self.objs[a]["inferred"]
            want[t] = want.get(t, 0) + 1
        self.assertEqual(got, want)
        for g in doc["groups"]:
            self.assertEqual(g.get("type_certainty"),
                             None if g.get("type") is None else "inferred", g)

    def test_show_and_top_carry_certainty(self):
        a = next(a for a in sorted(self.leaked) if self.objs[a]["inferred"] == "~tnode")
        doc = hslib.run_json([self.core, "show", "%#x" % a])
        blk = doc.get("block", doc)
        self.assertEqual((blk.get("type"), blk.get("type_certainty")), ("~tnode", "inferred"), doc)
        top = hslib.run_json([self.core, "top", "--limit", "100"])
        rows = top.get("rows", top.get("objects", []))
        self.assertTrue(rows)
        for r in rows:
            if r.get("type"):
                want = "inferred" if r["type"].startswith("~") else "certain"
                self.assertEqual(r.get("type_certainty"), want, r)


class SmallDwarfCase(Base, Exact):
    fixture = "ctypes_small"

    def test_fixture_has_every_kind(self):
        inf = {o["label"]: o["inferred"] for o in self.objs.values() if o["leaked"]}
        self.assertEqual(inf, {"wide fan": "~fan", "narrow fan": "~fan", "mid": "~mid", "tiny": "~tiny",
                               "leaf": "~leaf", "small decoy": None})

    def test_rules(self):
        """The wide fan by its layout, everything behind it by a field."""
        objs, _ = self.listed()
        for a in self.leaked:
            o = self.objs[a]
            if o["inferred"]:
                want = "layout" if o["label"] == "wide fan" else "field"
                self.assertEqual(objs[a].get("type_rule"), want, o["label"])


class ManyTypesCase(Base, Exact):
    """4,096 struct types (cores/ctypes_many.c): their layouts' hash index
    once went round a cycle of full slots for ever on such programs.  And
    an array of 70,000 structs whose last element points at a block: every
    element is visited (it stopped at 65,536); and a global array of 5,000
    pointers, the last one set (it stopped at 4,096)."""
    fixture = "ctypes_many"

    def test_certain_types(self):
        doc = hslib.run_json([self.core, "histogram", "--used", "--by", "type", "--limit", str(BIG)], timeout=60)
        got = {g["type"]: g["count"] for g in doc["groups"] if g.get("type")}
        want = dict(collections.Counter(o["type"] for o in self.objs.values() if o["type"]))
        self.assertEqual(want, {"s000": 1, "s7a5": 1, "sfff": 1, "cell": 1, "s456": 2, "s789": 2})
        self.assertEqual(got, want)


class NoDwarfCase(Base):
    def test_nothing_inferred_without_dwarf(self):
        objs, _ = self.listed(["--exe", stripped_exe()])
        self.assertEqual(set(objs), self.leaked, "leaked set")
        bad = ["%s: %s" % (self.objs[a]["label"], objs[a]) for a in self.leaked
               if objs[a].get("type") is not None or objs[a].get("type_certainty") is not None]
        self.assertFalse(bad, "\n".join(bad))


def make_cases():
    for kind in ("gdb", "kernel"):
        for base, name in ((DwarfCase, "Ctypes_%s"), (NoDwarfCase, "CtypesNoDwarf_%s"),
                           (SmallDwarfCase, "CtypesSmall_%s"), (ManyTypesCase, "CtypesMany_%s")):
            cls = type(name % kind, (base, unittest.TestCase), {"kind": kind})
            globals()[cls.__name__] = cls


make_cases()


def setUpModule():
    if os.environ.get("HS_NO_MAKE_CORES"):
        return
    script = os.path.join(hslib.ROOT, "cores", "make-leak-cores.sh")
    r = subprocess.run([script, "ctypes", "ctypes_small", "ctypes_many"], env=dict(os.environ, BUILD=hslib.BUILD),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("cores/make-leak-cores.sh ctypes ctypes_small ctypes_many failed:\n%s%s" % (r.stdout, r.stderr))


def main(argv):
    patterns = [a for a in argv if not a.startswith("-")]
    suite = unittest.TestSuite()
    for test in unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]):
        for t in test:
            if not patterns or any(p in t.id() for p in patterns):
                suite.addTest(t)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if "-v" in argv else 1).run(suite)
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
