#!/usr/bin/env python3
"""Containers against the maps_cpp fixture's truth (issue 9).

    BUILD=build python3 tests/integration/run.py Maps

cores/make-maps-cores.sh builds cores/maps_cpp.cc three ways -- maps_cpp (with
DWARF), maps_cpp_nodebug (symbols, no DWARF) and maps_cpp_stripped (neither)
-- and dumps a gdb core and a kernel core of each.  The fixture writes, per
container: address, anchor, kind, key and value types, count, buckets,
longest chain, tree height, bytes of its own allocations, retained bytes, and
chosen entries (key, node, value).  Every check is EXACT:

* maps: every truth container is found at its address with the truth's
  numbers (and, with DWARF, its kind and types; anchors with symbols); the
  only other containers are GLib's own empty tables; the mass-erased map is
  flagged sparse, the 3-valued hash degenerate; the leaked map has no anchor.
* map: the chosen entries are listed with the truth's keys (strings and
  longs everywhere, ints with DWARF), nodes and values.
* types: with DWARF the sessions are typed Session through g_sessions, the
  nodes after their container; Blob comes from RTTI even when stripped.
* chain: a session's chain names its key: g_sessions["session-000012-api"].
* owners: g_sessions alone retains what the truth says.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402

BUILDS = ("maps_cpp", "maps_cpp_nodebug", "maps_cpp_stripped")
FAMILY_KIND = {"hashtable": "std::_Hashtable", "rbtree": "std::_Rb_tree", "ghash": "GHashTable",
               "uthash": "uthash"}
# Keys a no-DWARF run renders right: strings, and 8-byte integers (or uthash's
# key length).  int keys in std containers need their type.
NO_DWARF_KEYS = {"g_sessions", "leaked", "g_ids", "t_cache", "g_names", "g_events", "g_erased", "g_degenerate",
                 "g_table", "g_items"}
NUMBERS = ("count", "buckets", "max_chain", "height", "bytes", "retained")


class MapsBase:
    build = None
    kind = None

    def setUp(self):
        self.core = hslib.core(self.build, self.kind)
        self.truth = hslib.truth(self.build, self.kind)
        self.dwarf = self.build == "maps_cpp"
        self.symbols = self.build != "maps_cpp_stripped"

    def frame_of_main(self):
        """GDB's frame number and line of main in this core: a stack local's
        anchor is numbered and placed as GDB's backtrace does, except for the
        tail-call frames GDB makes up from call-site DWARF (a function that
        ended in a jump has no frame of its own), which heapscope does not."""
        exe = os.path.join(hslib.CORES, self.build)
        script = ("python\n"
                  "f, n = gdb.newest_frame(), 0\n"
                  "while f is not None and f.name() != 'main':\n"
                  "    n += f.type() != gdb.TAILCALL_FRAME\n"
                  "    f = f.older()\n"
                  "sal = f.find_sal()\n"
                  "print('MAIN %d %s %d' % (n, os.path.basename(sal.symtab.filename), sal.line))\n"
                  "end\n")
        with tempfile.NamedTemporaryFile("w", suffix=".gdb") as f:
            f.write(script.replace("python\n", "python\nimport os\n", 1))
            f.flush()
            r = subprocess.run(["gdb", "-batch", "-nx", "-iex", "set debuginfod enabled off", "-x", f.name,
                                exe, self.core], capture_output=True, text=True, timeout=120)
        m = re.search(r"^MAIN (\d+) (\S+) (\d+)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        return m.group(1), m.group(2), m.group(3)

    def want_anchor(self, t):
        if t["anchor"] is None:
            return None
        if not self.dwarf and "anchor_nodwarf" in t:
            return t["anchor_nodwarf"]
        if "{frame}" in t["anchor"]:
            frame, _, line = self.frame_of_main()
            return t["anchor"].replace("{frame}", frame).replace("{line}", line)
        # Without DWARF a member is named by its offset.
        return t["anchor"] if self.dwarf or "->" not in t["anchor"] else "g_reg->+8"

    def maps(self):
        doc = hslib.run_json([self.core, "maps"])
        return {c["address"]: c for c in doc["containers"]}, doc

    def test_containers(self):
        got, doc = self.maps()
        problems = []
        for t in self.truth["containers"]:
            g = got.get(t["address"])
            if g is None:
                problems.append("%s: no container at %#x" % (t["name"], t["address"]))
                continue
            for k in NUMBERS:
                if g[k] != t[k]:
                    problems.append("%s: %s %s, truth %s" % (t["name"], k, g[k], t[k]))
            if g["family"] != t["family"]:
                problems.append("%s: family %s, truth %s" % (t["name"], g["family"], t["family"]))
            # DWARF names globals, members, thread_locals and stack locals.
            typed = self.dwarf and t["anchor"] is not None
            want_kind = t["kind"] if typed or t["family"] in ("ghash", "uthash") else FAMILY_KIND[t["family"]]
            if g["kind"] != want_kind:
                problems.append("%s: kind %s, want %s" % (t["name"], g["kind"], want_kind))
            if typed and (g["key_type"], g["value_type"]) != (t["key_type"], t["value_type"]):
                problems.append("%s: types %s/%s, truth %s/%s" % (t["name"], g["key_type"], g["value_type"],
                                                                   t["key_type"], t["value_type"]))
            if t["anchor"] is None:
                if g["anchor"] is not None or not g["leaked"]:
                    problems.append("%s: anchor %s, truth: leaked" % (t["name"], g["anchor"]))
            elif self.symbols or t["anchor"].startswith("thread "):
                want = self.want_anchor(t)
                if not self.symbols and "(frame of" in want:
                    want = want.split(" (frame of")[0]    # stripped: no function names
                if g["anchor"] != want:
                    problems.append("%s: anchor %s, truth %s" % (t["name"], g["anchor"], want))
            elif g["anchor"] is None:
                problems.append("%s: no anchor" % t["name"])
        self.assertEqual(problems, [], "\n".join(problems))
        truth_addrs = {t["address"] for t in self.truth["containers"]}
        truth_addrs |= {t["address"] for t in self.truth["corrupt"]}
        extra = [c for a, c in got.items() if a not in truth_addrs]
        for c in extra:
            # GLib's own tables (empty, in libglib's data): real, and not ours.
            self.assertEqual((c["family"], c["count"]), ("ghash", 0), "an unexpected container: %s" % c)
            self.assertRegex(c["anchor"] or "", r"^libglib", "an unexpected container: %s" % c)
        self.assertLessEqual(len(extra), 2)

    def test_same_from_a_small_index(self):
        """Discovery asks whether a container is known already through
        containers.c's index by address: DWARF's globals, found first by
        shape in the root ranges, are asked again by address.  Started at
        4 slots (the test hook), the index grows several times on this
        fixture, and the containers are the same, in the same order."""
        runs = []
        for small in (False, True):
            if small:
                os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"] = "1"
            try:
                r = hslib.run(["--json", self.core, "maps"])
            finally:
                os.environ.pop("HEAPSCOPE_TEST_SMALL_SPLITS", None)
            self.assertEqual(r.status, 0, r.describe())
            runs.append(json.loads(r.stdout)["containers"])
        self.assertGreater(len(runs[0]), 8)
        self.assertEqual(runs[1], runs[0])

    def test_probes_in_the_scan(self):
        """The containers' shape probes ride along with the pointer scan; run
        in a pass of their own over the heap instead, they find the same
        containers in the same order, and type the same blocks.  Small
        splits: the scan's two parts take each other's blocks all the time,
        so that the hits come from many pieces."""
        for cmd in (["maps"], ["histogram", "--used", "--by", "type"], ["leaks", "--list"]):
            docs = []
            for alone in (False, True):
                os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"] = "1"
                if alone:
                    os.environ["HEAPSCOPE_TEST_PROBE_AFTER_SCAN"] = "1"
                try:
                    r = hslib.run(["--json", "--jobs", "2", self.core] + cmd)
                finally:
                    del os.environ["HEAPSCOPE_TEST_SMALL_SPLITS"]
                    os.environ.pop("HEAPSCOPE_TEST_PROBE_AFTER_SCAN", None)
                self.assertEqual(r.status, 0, r.describe())
                docs.append(json.loads(r.stdout))
            self.assertEqual(docs[0], docs[1], " ".join(cmd))
            if cmd == ["maps"]:
                self.assertGreaterEqual(len(docs[0]["containers"]), len(self.truth["containers"]))

    def test_corrupt(self):
        """Broken containers: with DWARF listed as corrupt, with a diagnostic
        naming each; by shape alone never called a container."""
        got, doc = self.maps()
        diags = {d["address"]: d["message"] for d in doc["diagnostics"] if d["stage"] == "containers"}
        for t in self.truth["corrupt"]:
            if self.dwarf:
                self.assertIn(t["address"], got, t["name"])
                self.assertEqual(got[t["address"]]["findings"], ["corrupt"], t["name"])
                self.assertIn(t["name"], diags.get(t["address"], ""), t["name"])
            else:
                self.assertNotIn(t["address"], got, t["name"])
        self.assertEqual(len(diags), len(self.truth["corrupt"]) if self.dwarf else 0, diags)

    def test_findings(self):
        got, _ = self.maps()
        by_name = {t["name"]: got.get(t["address"]) for t in self.truth["containers"]}
        self.assertIn("sparse_buckets", by_name["g_erased"]["findings"])
        self.assertIn("degenerate_hash", by_name["g_degenerate"]["findings"])
        for name in ("g_ids", "g_index", "g_items", "g_table"):
            self.assertEqual(by_name[name]["findings"], [], name)

    def test_entries(self):
        problems = []
        for t in self.truth["containers"]:
            if not self.dwarf and t["name"] not in NO_DWARF_KEYS:
                continue
            doc = hslib.run_json([self.core, "map", "0x%x" % t["address"]])
            entries = {e["node"]: e for e in doc["entries"]}
            if len(doc["entries"]) != t["count"]:
                problems.append("%s: %d entries listed, truth %d" % (t["name"], len(doc["entries"]), t["count"]))
            for want in t["entries"]:
                e = entries.get(want["node"])
                if e is None:
                    problems.append("%s: no entry at node %#x" % (t["name"], want["node"]))
                    continue
                if e["key"] != want["key"]:
                    problems.append("%s: key %r, truth %r" % (t["name"], e["key"], want["key"]))
                typed = self.dwarf and t["anchor"] is not None
                if want["value"] is not None and (typed or t["family"] == "ghash"):
                    if e["value"] != want["value"]:
                        problems.append("%s: value %s, truth %s" % (t["name"], e["value"], want["value"]))
                    if want["value_type"] and e["value_type"] != want["value_type"]:
                        problems.append("%s: value type %s, truth %s" % (t["name"], e["value_type"],
                                                                         want["value_type"]))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_limit_and_names(self):
        t = self.truth["containers"][0]
        doc = hslib.run_json([self.core, "map", "0x%x" % t["address"], "--limit", "3"])
        self.assertEqual(len(doc["entries"]), 3)
        self.assertEqual(doc["container"]["address"], t["address"])
        if self.symbols:
            by_name = hslib.run_json([self.core, "map", "g_sessions", "--limit", "3"])
            self.assertEqual(by_name["entries"], doc["entries"])
        r = hslib.run([self.core, "map", "0x1234"])
        self.assertNotEqual(r.status, 0)
        self.assertIn("no container", r.stderr)

    def test_types(self):
        groups = {g["type"]: g for g in hslib.run_json([self.core, "histogram", "--by", "type"])["groups"]}
        # Blob has a vtable: named with symbols, and from RTTI when stripped.
        self.assertEqual(groups["Blob"]["count"], 120 + 200 + 64)
        sessions = self.truth["containers"][0]
        if self.dwarf:
            self.assertEqual(groups["Session"]["count"], sessions["count"])
            node = "std::unordered_map<std::string, Session*> node"
            self.assertEqual(groups[node]["count"], sessions["count"])
        else:
            hashnodes = sum(t["count"] for t in self.truth["containers"] if t["family"] == "hashtable")
            self.assertEqual(groups["std::_Hashtable node"]["count"], hashnodes)

    def test_chain_names_key(self):
        t = self.truth["containers"][0]
        e = t["entries"][0]
        doc = hslib.run_json([self.core, "chain", "0x%x" % e["value"]])
        entries = [h.get("entry") for h in doc["chain"] if h.get("entry")]
        self.assertIn('%s["%s"]' % ("g_sessions" if self.symbols else entries[-1].split("[")[0], e["key"]),
                      entries)
        text = hslib.run([self.core, "chain", "0x%x" % e["value"]]).stdout
        if self.symbols:
            self.assertIn('g_sessions["%s"]' % e["key"], text)
            self.assertNotIn("_Z10g_sessions", text)

    def test_show_demangles(self):
        # show names C++ symbols as people write them (issue 9).
        t = self.truth["containers"][0]
        doc = hslib.run_json([self.core, "show", "0x%x" % t["address"]])
        if not self.symbols:   # stripped: the module and the offset
            self.assertTrue(doc["symbol"].startswith("maps_cpp_stripped+0x"), doc["symbol"])
            return
        self.assertEqual(doc["symbol"], "g_sessions")
        text = hslib.run([self.core, "show", "0x%x" % t["address"]]).stdout
        self.assertIn(": g_sessions;", text)
        self.assertNotIn("_Z", text)

    def test_owners(self):
        doc = hslib.run_json([self.core, "owners"])
        roots = {r["name"]: r for r in doc["roots"]}
        t = self.truth["containers"][0]
        # Stripped, the global is named by its module and offset.
        name = "g_sessions" if self.symbols else [c["anchor"] for c in doc["containers"]
                                                  if c["address"] == t["address"]][0]
        self.assertEqual(roots[name]["retained"], t["retained"])
        self.assertEqual(roots[name]["kind"], "global")
        conts = {c["address"]: c for c in doc["containers"]}
        for t in self.truth["containers"]:
            self.assertEqual(conts[t["address"]]["retained"], t["retained"], t["name"])


def _make(build, kind):
    name = "Maps_%s_%s" % (build, kind)
    globals()[name] = type(name, (MapsBase, unittest.TestCase), {"build": build, "kind": kind})


for _b in BUILDS:
    for _k in hslib.KINDS:
        _make(_b, _k)


class MapsGdb(unittest.TestCase):
    """hs maps / hs map EXPR / hs owners in GDB give the CLI's documents."""

    def test_twins(self):
        import gdbutil
        import tempfile
        core = hslib.core("maps_cpp", "gdb")
        exe = os.path.join(hslib.CORES, "maps_cpp")
        cases = [("maps", "hs --json maps"), ("sessions", "hs --json map g_sessions --limit 5"),
                 ("table", "hs --json map g_table"), ("items", "hs --json map g_items --limit 3"),
                 ("reg", "hs --json map &g_reg->byid"), ("owners", "hs --json owners"),
                 ("text", "hs map g_sessions --limit 2")]
        with tempfile.TemporaryDirectory() as d:
            args = gdbutil.batch_args(d) + ["-ex", "file " + exe, "-ex", "core-file " + core]
            for tag, cmd in cases:
                args += ["-ex", "python _hs_case(%r, %r)" % (tag, cmd)]
            s = gdbutil.run_batch(args, 600)
        s.check_alive(self)
        truth = {t["name"]: t for t in hslib.truth("maps_cpp", "gdb")["containers"]}
        self.assertEqual(s.json("maps"), hslib.run_json([core, "maps"]))
        self.assertEqual(s.json("owners"), hslib.run_json([core, "owners"]))
        for tag, name, limit in (("sessions", "g_sessions", "5"), ("table", "g_table", None),
                                 ("items", "g_items", "3"), ("reg", "g_reg->byid", None)):
            t = truth[name]
            want = hslib.run_json([core, "map", name] + (["--limit", limit] if limit else []))
            self.assertEqual(s.json(tag), want, name)
            self.assertEqual(want["container"]["address"], t["address"])
        self.assertIn('"session-', s.ok("text"))


class MapsBadInput(unittest.TestCase):
    """No container where there is none: the C fixtures."""

    def test_no_false_containers(self):
        for name in ("leaks", "glibc_heap", "threads"):
            doc = hslib.run_json([hslib.core(name, "gdb"), "maps"])
            self.assertEqual(doc["containers"], [], name)

    def test_usage(self):
        core = hslib.core("maps_cpp", "gdb")
        r = hslib.run([core, "map"])
        self.assertEqual(r.status, 2)
        r = hslib.run([core, "maps", "extra"])
        self.assertEqual(r.status, 2)


if __name__ == "__main__":
    unittest.main()
