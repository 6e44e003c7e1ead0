"""Issue 14, item 6: a command line that helps.  `heapscope help CMD`,
`heapscope CORE CMD --help` and GDB's `help hs CMD` show one text (the
library's); misspelt commands and options get "did you mean"; a global option
after the command says where it goes; ADDR takes SYMBOL[+OFF], &SYMBOL and
*SYMBOL; wrong --override names, missing paths, arenas that do not exist and
out-of-range GDB settings are errors with the contract's exit status."""
import json
import os
import re
import subprocess
import unittest

import gdbutil
import hslib

ROOT = hslib.ROOT
KINDS = ("gdb", "kernel")


def commands():
    r = hslib.run(["--help"])
    names = []
    on = False
    for line in r.stdout.splitlines():
        if line == "Commands:":
            on = True
            continue
        if on:
            m = re.match(r"  ([a-z]+)\b", line)
            if not m:
                break
            names.append(m.group(1))
    return names


def truth_block(kind, label):
    return [b for b in hslib.truth("leaks", kind)["leaks"]["objects"] if b.get("label") == label][0]["address"]


class Help(unittest.TestCase):
    def test_every_command_has_one_help_text(self):
        names = commands()
        self.assertGreater(len(names), 10)
        core = hslib.core("glibc_heap", "gdb")
        gdb_cmds = ["source " + os.path.join(ROOT, "gdb", "heapscope.py")]
        for name in names:
            gdb_cmds.append("echo @@%s\\n" % name)
            gdb_cmds.append("help hs %s" % name)
        args = ["gdb", "-nx", "-batch"]
        for c in gdb_cmds:
            args += ["-ex", c]
        # (skipped under make asan: gdb cannot load an ASan-built library)
        env = gdbutil.gdb_env(dict(os.environ, HEAPSCOPE_LIB=os.path.join(hslib.BUILD, "libheapscope.so")))
        out = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=120).stdout
        gdb_help = dict(re.findall(r"@@(\w+)\n(.*?)(?=@@|\Z)", out, re.S))
        for name in names:
            r = hslib.run(["help", name])
            self.assertEqual(r.status, 0, r.describe())
            self.assertIn("Usage: heapscope [GLOBAL OPTIONS] CORE %s" % name, r.stdout)
            self.assertIn("(gdb) hs %s" % name, r.stdout)
            # CORE is not read for --help: a core that is not there is fine.
            r2 = hslib.run(["/nonexistent.core", name, "--help"])
            self.assertEqual((r2.status, r2.stdout), (0, r.stdout), r2.describe())
            r3 = hslib.run([core, name, "--limit", "3", "-h"])
            self.assertEqual(r3.stdout, r.stdout, r3.describe())
            # GDB shows the same text, then its own parts.
            body = r.stdout.split("\nGlobal options (--json")[0]
            self.assertIn(body.rstrip("\n"), gdb_help.get(name, ""), "help hs %s differs:\n%s" % (name, out))

    def test_help_of_nothing_and_of_a_typo(self):
        r = hslib.run(["help"])
        self.assertEqual(r.status, 0)
        self.assertIn("Commands:", r.stdout)
        r = hslib.run(["help", "chians"])
        self.assertEqual(r.status, 2, r.describe())
        self.assertIn("did you mean chain?", r.stderr)


class DidYouMean(unittest.TestCase):
    def test_typos(self):
        core = hslib.core("glibc_heap", "gdb")
        for args, want in (([core, "leak"], "unknown command 'leak' (did you mean leaks?)"),
                           ([core, "sumary"], "did you mean summary?"),
                           ([core, "hist"], "did you mean histogram?"),
                           ([core, "chunks", "--lmit", "3"], "unknown option '--lmit' (did you mean --limit?)"),
                           ([core, "leaks", "--fail-on-leak"], "did you mean --fail-on-leaks?"),
                           (["--jsno", core], "unknown option '--jsno' (did you mean --json?)"),
                           (["--no-debug-info", core], "did you mean --no-debuginfo?")):
            r = hslib.run(args)
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn(want, r.stderr)
        # Nothing close: no guess.
        r = hslib.run([core, "xyzzy"])
        self.assertNotIn("did you mean", r.stderr)

    def test_global_option_after_the_command(self):
        core = hslib.core("glibc_heap", "gdb")
        for opt in ("--json", "--exact-pointers", "--quiet"):
            r = hslib.run([core, "leaks", opt])
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn("%s is a global option: put it before CORE" % opt, r.stderr)

    def test_global_options_between_core_and_command(self):
        """heapscope CORE --json --jobs 1 leaks is heapscope --json --jobs 1 CORE
        leaks; a misspelt one or one without its value is the same usage error."""
        core = hslib.core("glibc_heap", "gdb")
        want = hslib.run(["--json", "--jobs", "1", "--exact-pointers", core, "leaks"])
        got = hslib.run([core, "--json", "--jobs", "1", "--exact-pointers", "leaks"])
        self.assertEqual((got.status, got.stdout), (0, want.stdout), got.describe())
        got = hslib.run(["--quiet", core, "--json", "leaks", "--min-size", "64"])
        want = hslib.run(["--quiet", "--json", core, "leaks", "--min-size", "64"])
        self.assertEqual((got.status, got.stdout), (0, want.stdout), got.describe())
        self.assertEqual(json.loads(hslib.run([core, "--json"]).stdout)["command"], "summary")
        for args, msg in (([core, "--jsno", "leaks"], "unknown option '--jsno' (did you mean --json?)"),
                          ([core, "--jobs"], "option --jobs needs a value"),
                          ([core, "--jobs", "x", "leaks"], "--jobs takes a number from 1 to 256, not 'x'")):
            r = hslib.run(args)
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn(msg, r.stderr)


class Addresses(unittest.TestCase):
    def test_symbol_forms(self):
        for kind in KINDS:
            core = hslib.core("leaks", kind)
            config = truth_block(kind, "config")
            doc = hslib.run_json([core, "show", "*g_config"], expect_status=0)
            self.assertEqual(doc["address"], config, kind)
            doc = hslib.run_json([core, "show", "*g_config+16"], expect_status=0)
            self.assertEqual(doc["address"], config + 16, kind)
            a = hslib.run_json([core, "show", "&g_registry"], expect_status=0)
            b = hslib.run_json([core, "show", "g_registry"], expect_status=0)
            c = hslib.run_json([core, "show", "g_registry+0x8"], expect_status=0)
            self.assertEqual(a["symbol"], "g_registry")
            self.assertEqual(a["address"], b["address"])
            self.assertEqual(c["address"], a["address"] + 8)
            self.assertEqual(c["symbol"], "g_registry+0x8")
            # The address show printed is an ADDR again.
            d = hslib.run_json([core, "show", "0x%x" % a["address"]], expect_status=0)
            self.assertEqual(d["symbol"], "g_registry")
            doc = hslib.run_json([core, "chain", "*g_config"], expect_status=0)
            self.assertIn("g_config", json.dumps(doc))

    def test_bad_symbols(self):
        core = hslib.core("leaks", "gdb")
        for addr, want in (("g_nope", "'g_nope' is not an address or a symbol"),
                           ("*tls_ptr", "one location per thread"),
                           ("g_registry+x", "the offset after + must be a number")):
            r = hslib.run([core, "show", addr])
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn(want, r.stderr)


class Refused(unittest.TestCase):
    def test_unknown_override(self):
        core = hslib.core("glibc_heap", "gdb")
        r = hslib.run(["--override", "main_arna=0x10", core, "summary"])
        self.assertEqual(r.status, 2, r.describe())
        self.assertIn("unknown override 'main_arna'", r.stderr)
        self.assertTrue(r.stderr.startswith("heapscope: "), r.describe())

    def test_every_override_a_walker_reads_is_accepted(self):
        names = set()
        for d, _, files in os.walk(os.path.join(ROOT, "src")):
            for f in files:
                if f.endswith(".c"):
                    with open(os.path.join(d, f)) as fh:
                        names |= set(re.findall(r'hs_walk_override\([^,]+,\s*"(\w+)"', fh.read()))
        self.assertGreater(len(names), 8)
        core = hslib.core("glibc_heap", "gdb")
        for name in sorted(names):
            r = hslib.run(["--override", "%s=0" % name, core, "info"])
            self.assertNotIn("unknown override", r.stderr, name)

    def test_missing_paths(self):
        core = hslib.core("glibc_heap", "gdb")
        for opt in ("--exe", "--sysroot", "--debug-dir"):
            r = hslib.run([opt, "/nonexistent/x", core, "summary"])
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn("%s /nonexistent/x: No such file or directory" % opt, r.stderr)
            doc = json.loads(hslib.run(["--json", opt, "/nonexistent/x", core]).stdout)
            self.assertEqual(doc["error"]["code"], "usage")

    def test_arena_that_does_not_exist(self):
        core = hslib.core("glibc_heap", "gdb")
        n = len(hslib.run_json([core, "arenas"], expect_status=0)["arenas"])
        for cmd in ("bins", "chunks"):
            r = hslib.run([core, cmd, "--arena", str(n)])
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn("no arena %d: the heap has %d (0 to %d" % (n, n, n - 1), r.stderr)
            r = hslib.run([core, cmd, "--arena", str(n - 1)])
            self.assertEqual(r.status, 0, r.describe())

    def test_gdb_settings_out_of_range(self):
        args = ["gdb", "-nx", "-batch", "-ex", "source " + os.path.join(ROOT, "gdb", "heapscope.py")]
        for c in ("set heapscope jobs 3", "set heapscope jobs 1000", "show heapscope jobs",
                  "set heapscope sysroot /nonexistent/dir", "show heapscope",
                  "set heapscope debug-directories /tmp:/nonexistent/dir",
                  "set heapscope overrides main_arena"):
            args += ["-ex", c]
        # (skipped under make asan: gdb cannot load an ASan-built library)
        env = gdbutil.gdb_env(dict(os.environ, HEAPSCOPE_LIB=os.path.join(hslib.BUILD, "libheapscope.so")))
        out = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=60).stdout
        self.assertIn("heapscope jobs takes 0 (the library's default) to 256, not 1000", out)
        self.assertIn("heapscope jobs is 3.", out)     # the refused value did not stay
        self.assertIn("heapscope sysroot: no directory /nonexistent/dir", out)
        self.assertIn('sysroot: ""', out)
        self.assertIn("heapscope debug-directories: no directory /nonexistent/dir", out)
        self.assertIn("'main_arena' is not NAME=ADDR", out)
        self.assertNotIn("Traceback", out)


if __name__ == "__main__":
    unittest.main()
