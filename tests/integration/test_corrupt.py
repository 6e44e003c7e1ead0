"""Corrupt heaps: a smashed chunk size, a fastbin cycle, a tcache count that lies.

Each must finish within 10 s with exit status 0, name the corruption in a
diagnostic (an address inside the truth's "accept" ranges: the JSON
diagnostics' addresses, or a hex address in their messages or on stderr), and
still report every intact part of the truth exactly.  Truth entries the
corruption "involves" are only required not to be reported in use when freed.
"""
import unittest

import hslib

TIMEOUT = 10


def listing(problems, limit=15):
    more = "" if len(problems) <= limit else "\n... and %d more" % (len(problems) - limit)
    return "\n".join(problems[:limit]) + more


class CorruptCase:
    fixture = kind = None

    def setUp(self):
        self.core = hslib.core(self.fixture, self.kind)
        self.truth = hslib.truth(self.fixture, self.kind)
        self.involved = {a for c in self.truth["corrupt"] for a in c["involves"]}
        self.assertTrue(self.truth["corrupt"], "the fixture's truth lists no corruption")

    def chunks(self):
        doc = hslib.run_json([self.core, "chunks"], timeout=TIMEOUT)
        return doc, {a["address"]: a for a in doc["allocations"]}

    def diagnostic_addresses(self):
        doc, _ = self.chunks()
        r = hslib.json_result([self.core, "chunks"], TIMEOUT)
        found = set(hslib.hexes(r.stderr))
        for d in doc.get("diagnostics", []):
            found.add(d.get("address") or 0)
            found.update(hslib.hexes(d.get("message", "")))
        if not found:
            info = hslib.run_json([self.core, "info"], timeout=TIMEOUT)
            for d in info.get("diagnostics", []):
                found.add(d.get("address") or 0)
                found.update(hslib.hexes(d.get("message", "")))
        return found

    def test_finishes_with_status_0(self):
        self.chunks()

    def test_diagnostic_names_the_corruption(self):
        found = self.diagnostic_addresses()
        for c in self.truth["corrupt"]:
            ok = any(lo <= a < hi for a in found for lo, hi in c["accept"])
            self.assertTrue(ok, "no diagnostic names %s (%#x; accepted %s); addresses seen: %s"
                            % (c["what"], c["address"],
                               ["%#x-%#x" % tuple(r) for r in c["accept"]],
                               sorted(hex(a) for a in found)[:20]))

    def intact_problems(self, select):
        _, by = self.chunks()
        mm = set(self.truth["mmapped"])
        bad = []
        for rec in self.truth["live"]:
            if rec["address"] in self.involved or not select(rec["address"]):
                continue
            a = by.get(rec["address"])
            want = ("used", "mmapped" if rec["address"] in mm else "used", rec["size"])
            if a is None or (a["state"], a["where"], a["size"]) != want:
                bad.append("live %#x size %d: reported %s" % (rec["address"], rec["size"], a))
        for rec in self.truth["freed"]:
            a = by.get(rec["address"])
            if rec["address"] in self.involved:
                if a is not None and a["state"] != "free":
                    bad.append("freed %#x (in the corruption) reported %s" % (rec["address"], a))
                continue
            if not select(rec["address"]):
                continue
            if a is None or (a["state"], a["where"], a["size"]) != ("free", rec["expect"], rec["size"]):
                bad.append("freed %#x (%s, size %d): reported %s"
                           % (rec["address"], rec["expect"], rec["size"], a))
        for rec in self.truth["meta"]:
            a = by.get(rec["address"])
            if select(rec["address"]) and (a is None or a["where"] != "meta"):
                bad.append("%s at %#x: reported %s" % (rec["what"], rec["address"], a))
        return bad

    def test_intact_before_corruption(self):
        first = min(c["address"] for c in self.truth["corrupt"])
        bad = self.intact_problems(lambda addr: addr < first)
        self.assertFalse(bad, listing(bad))

    def test_intact_after_corruption(self):
        first = min(c["address"] for c in self.truth["corrupt"])
        bad = self.intact_problems(lambda addr: addr >= first)
        self.assertFalse(bad, "after the corruption at %#x:\n%s" % (first, listing(bad)))

    def test_text_output_finishes(self):
        r = hslib.run([self.core, "chunks"], timeout=TIMEOUT)
        self.assertEqual(r.status, 0, r.describe())
        hslib.check_no_crash(r)

    def test_summary_finishes(self):
        hslib.run_json([self.core, "summary"], timeout=TIMEOUT)


def make_cases():
    for fixture in ("corrupt_size", "corrupt_fastbin_cycle", "corrupt_tcache_count"):
        for kind in hslib.KINDS:
            name = "Corrupt_%s_%s" % (fixture, kind)
            globals()[name] = type(name, (CorruptCase, unittest.TestCase),
                                   {"fixture": fixture, "kind": kind})


make_cases()
