"""Issue 14, item 7: one output contract.  Every limited list says how many
were left out (text "... N more WHAT (--limit N)", JSON LIST_total and
LIST_truncated); every JSON document, errors included, carries "version" and
"diagnostics"; empty results say so in words; offsets are hex; the unknown
type is "?" in text (null in JSON) everywhere."""
import re
import unittest

import hslib


def version():
    return hslib.run(["--version"]).stdout.split()[1]


# (command, JSON array, what the text footer calls its items, whether --limit
# cuts the JSON list too: a given --limit always does)
LIMITED = (
    (["chunks", "--used"], "allocations", "blocks", True),
    (["leaks"], "groups", "groups", True),
    (["leaks", "--list"], "objects", "objects", True),
    (["top"], "objects", "objects", True),
    (["owners"], "roots", "roots", True),
    (["histogram"], "groups", "groups", True),
)


class Limits(unittest.TestCase):
    def test_every_limited_list_says_what_was_left_out(self):
        for kind in hslib.KINDS:
            core = hslib.core("leaks", kind)
            for cmd, key, what, cuts_json in LIMITED:
                full = hslib.run_json([core] + cmd + ["--limit", "1000000"], expect_status=0)
                n = len(full[key])
                self.assertGreater(n, 2, (cmd, key))
                self.assertEqual(full[key + "_total"], n, (cmd, full.get(key + "_total")))
                self.assertFalse(full[key + "_truncated"], cmd)
                cut = hslib.run_json([core] + cmd + ["--limit", "2"], expect_status=0)
                self.assertEqual(len(cut[key]), 2 if cuts_json else n, cmd)
                self.assertEqual(cut[key + "_total"], n, cmd)
                self.assertEqual(cut[key + "_truncated"], cuts_json, cmd)
                r = hslib.run([core] + cmd + ["--limit", "2"])
                self.assertEqual(r.status, 0, r.describe())
                self.assertRegex(r.stdout, r"\.\.\. %d more %s\b.*\(--limit N\)" % (n - 2, what),
                                 "%s: %s" % (cmd, r.stdout))

    def test_histogram_and_diff(self):
        core = hslib.core("leaks", "gdb")
        # Without --limit, histogram's and owners' JSON is whole (50 and 20 text rows).
        doc = hslib.run_json([core, "histogram"], expect_status=0)
        self.assertEqual(doc["groups_total"], len(doc["groups"]))
        self.assertFalse(doc["groups_truncated"])
        own = hslib.run_json([core, "owners"], expect_status=0)
        self.assertGreater(own["roots_total"], 2)
        self.assertEqual(own["roots_total"], len(own["roots"]))
        r = hslib.run([core, "histogram", "--limit", "1"])
        self.assertIn("... %d more groups (--limit N)" % (len(doc["groups"]) - 1), r.stdout)
        old = hslib.core("leaks", "kernel")
        doc = hslib.run_json([core, "diff", old, "--force", "--limit", "1"], expect_status=0)
        for key in ("groups", "owners", "maps"):
            self.assertIn(key + "_total", doc)
            self.assertEqual(doc[key + "_truncated"], doc[key + "_total"] > 1, key)


class Documents(unittest.TestCase):
    def test_version_and_diagnostics_everywhere(self):
        v = version()
        core = hslib.core("leaks", "gdb")
        cmds = [["info"], ["summary"], ["arenas"], ["chunks", "--limit", "1"], ["bins"], ["leaks"],
                ["histogram"], ["top"], ["pools"], ["maps"], ["owners"], ["refs", "*g_config"],
                ["chain", "*g_config"], ["show", "*g_config"], ["report"]]
        for cmd in cmds:
            doc = hslib.run_json([core] + cmd, expect_status=0)
            self.assertEqual(doc.get("version"), v, cmd)
            self.assertIsInstance(doc.get("diagnostics"), list, cmd)
        # Failures too: before a core is opened, a bad core, a command's usage error.
        for args, status in ((["--bogus"], 2), (["/nonexistent.core"], 3), ([core, "show"], 2),
                             ([core, "leak"], 2)):
            r = hslib.run(["--json"] + args)
            self.assertEqual(r.status, status, r.describe())
            doc = __import__("json").loads(r.stdout)
            self.assertEqual(doc.get("version"), v, args)
            self.assertIsInstance(doc.get("diagnostics"), list, args)


class Words(unittest.TestCase):
    def test_empty_results_say_so(self):
        heap = hslib.core("glibc_heap", "gdb")     # leaks nothing, has no containers
        for args, want in (([heap, "leaks"], "No leaks found.\n"),
                           ([heap, "leaks", "--list"], "No leaks found.\n"),
                           ([heap, "maps"], "No containers found.\n"),
                           ([heap, "chunks", "--min-size", "1G"], "No blocks match.\n")):
            r = hslib.run(args)
            self.assertEqual(r.status, 0, r.describe())
            self.assertTrue(r.stdout.startswith(want) or ("\n" + want) in r.stdout, "%s:\n%s" % (args, r.stdout))
        self.assertEqual(hslib.run_json([heap, "leaks"], expect_status=0)["groups"], [])

    def test_hex_offsets(self):
        core = hslib.core("leaks", "gdb")
        config = hslib.run_json([core, "show", "*g_config"], expect_status=0)
        entries = [w["value"] for w in config["words"] if w["offset"] == 8][0]
        text = "".join(hslib.run([core] + cmd).stdout for cmd in (
            ["show", "*g_config"], ["refs", "0x%x" % entries], ["chain", "*g_tree"], ["top", "--depth", "2"]))
        self.assertIn("+0x8 .entries", text)
        self.assertIn("+ 0x0\n", text)
        # No decimal "+N" offset after an address or a name.
        bad = re.findall(r"(?:0x[0-9a-f]+|\)) ?\+ ?[1-9][0-9]*\b(?!x)", text)
        self.assertEqual(bad, [], text)

    def test_unknown_type_is_one_word(self):
        core = hslib.core("leaks", "gdb")
        untyped = hslib.run_json([core, "leaks", "--list"], expect_status=0)["objects"][0]
        self.assertIsNone(untyped["type"])
        r = hslib.run([core, "show", "0x%x" % untyped["address"], "--bytes", "8"])
        self.assertIn(", type ?\n", r.stdout)
        for cmd in (["leaks", "--list"], ["top"], ["histogram"], ["show", "0x%x" % untyped["address"]], ["report"]):
            out = hslib.run([core] + cmd).stdout
            self.assertNotRegex(out, r"\b(unknown|untyped)\b|<unknown>|\(unknown\)", cmd)


if __name__ == "__main__":
    unittest.main()
