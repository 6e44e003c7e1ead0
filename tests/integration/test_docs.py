"""The docs' examples run (issue 14, item 9): every `$ heapscope ...` example
in docs/*.md that names a shipped fixture core is run against that core and
its documented output compared with what heapscope prints, so the docs cannot
drift from the behaviour.

Comparison: each documented output line (spaces collapsed) must appear in the
real output, in order; a line "..." stands for any number of lines (the docs
may show an excerpt, said by a `# ... of it` comment).  A documented `; echo $?`
compares the status.  An example whose comment says its numbers "vary from run
to run" (threads racing, ASLR) is compared with every number masked.  Examples on a placeholder core (`core`, `core.1234`) or
a live pid are counted and listed, not run: test_placeholder_examples_are_known
keeps that list from growing silently.
"""
import glob
import os
import re
import shlex
import subprocess
import unittest

import hslib

DOCS = sorted(glob.glob(os.path.join(hslib.ROOT, "docs", "*.md")))


def examples():
    """(doc, line number, command, [documented output lines]) of every `$ heapscope`."""
    out = []
    for path in DOCS:
        with open(path) as f:
            lines = f.read().split("\n")
        in_block = False
        cur = None
        for n, line in enumerate(lines, 1):
            if line.startswith("```"):
                if cur:
                    out.append(cur)
                cur = None
                in_block = not in_block
                continue
            if not in_block:
                continue
            if line.startswith("$ "):
                if cur:
                    out.append(cur)
                cur = (os.path.basename(path), n, line[2:], []) if re.match(r"\$ (\S+=\S+ )*heapscope ", line) else None
            elif cur:
                cur[3].append(line)
    return out


def core_of(cmd):
    """The fixture core an example runs on (its path), or None for a placeholder."""
    for word in shlex.split(cmd.split("#")[0].split("|")[0].split(";")[0]):
        if word.endswith(".core") or word.startswith("core"):
            path = word if os.path.isabs(word) else os.path.join(hslib.ROOT, word)
            if os.path.exists(path):
                return path
            if os.path.dirname(word) in ("", "build/cores"):
                cand = os.path.join(hslib.CORES, os.path.basename(word))
                if os.path.exists(cand) or word.endswith(".core"):
                    return cand
    return None


def norm(line):
    return " ".join(line.split())


def run_example(cmd, scratch):
    """Run the example's shell line with heapscope from this build, in scratch."""
    line = cmd.split("   #")[0].split("  #")[0]
    if " # " in line:
        line = line.split(" # ")[0]
    env = dict(os.environ, PATH=hslib.BUILD + os.pathsep + os.environ.get("PATH", ""),
               DEBUGINFOD_URLS="")
    # Fixture cores by bare name (the scratch directory links them), and
    # build/cores/NAME from the top of the tree.
    line = line.replace("build/cores/", "")
    for path in glob.glob(os.path.join(hslib.CORES, "*.core")):
        link = os.path.join(scratch, os.path.basename(path))
        if not os.path.lexists(link):
            os.symlink(path, link)
    p = subprocess.run(["bash", "-c", line], cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300, env=env, errors="replace")
    return p.stdout


_ids = {}


def process_ids(core):
    """The core's pid and thread ids: they change each time the fixture runs."""
    if core not in _ids:
        r = hslib.run(["--json", core, "info"], timeout=120)
        try:
            import json
            d = json.loads(r.stdout)
            _ids[core] = {str(t["tid"]) for t in d["threads"]} | {str(d["process"].get("pid"))}
        except (ValueError, KeyError, TypeError):
            _ids[core] = set()
    return _ids[core]


# (A sign is part of a number: diff's deltas may change sign between runs.)
NUMBER = re.compile(r"[+-]?(0x)?[0-9a-f]*[0-9][0-9a-f.]*")
# Where libraries, thread stacks and mmaps land (0x7f..., 0x7e... under
# ASan, whose shadow memory pushes mmaps down) shifts with the length of the
# paths and environment the fixture ran with, even without ASLR: such
# addresses (twelve hex digits from 0x7...) are compared as addresses, not by value.
HIGH_ADDRESS = re.compile(r"\b0x0*7[0-9a-f]{11}\b")
# Paths of the build the docs were made in.
BUILD_PATH = re.compile(r"/\S*/build(-[a-z]+)?/cores/")


def same_line(want, got, ids, vary=False):
    """Equal, but for a thread id or pid where the output has one; with vary
    (the example says its numbers vary from run to run), every number."""
    want, got = BUILD_PATH.sub("build/cores/", want), BUILD_PATH.sub("build/cores/", got)
    want, got = HIGH_ADDRESS.sub("0x7f…", want), HIGH_ADDRESS.sub("0x7f…", got)
    if vary:
        want, got = NUMBER.sub("#", want), NUMBER.sub("#", got)
    if want == got:
        return True
    # "a; ... ;b": the docs cut a long line.
    if " ... " in want and re.fullmatch(".*".join(re.escape(p) for p in want.split(" ... ")), got):
        return True
    w, g = want.split(" "), got.split(" ")
    # The process's command line is what the kernel kept of it (80 bytes):
    # with a longer build path, the cut lands earlier in the last word.
    if "command" in w and len(w) == len(g) and g[-1] and w[-1].startswith(g[-1]):
        g[-1] = w[-1]
    return len(w) == len(g) and all(a == b or (b.strip(",.:()") in ids and a.strip(",.:()").isdigit())
                                    for a, b in zip(w, g))


def matches(doc_lines, real, ids=frozenset(), vary=False):
    """The documented lines in order in the real output ("..." skips)."""
    real_lines = [norm(l) for l in real.split("\n")]
    k = 0
    for want in doc_lines:
        w = norm(want)
        if not w or w in ("...", "…"):
            continue
        while k < len(real_lines) and not same_line(w, real_lines[k], ids, vary):
            k += 1
        if k == len(real_lines):
            return want
        k += 1
    return None


# Docs whose examples are compared "numbers aside" (their own tests say so:
# TestMimallocDocs, TestTcmallocDocs): threads race, kernel cores have ASLR;
# the Go runtime's own allocations differ between runs.
VARY_DOCS = {"mimalloc.md", "tcmalloc.md", "go.md"}

# Examples that cannot run here: a live pid, a debuginfod server, a placeholder
# core of no fixture.  Each names why; a new one must be added here knowingly.
NOT_RUN = {
    "--pid": "a live process",
    "DEBUGINFOD_URLS=": "a debuginfod server",
    "go tool pprof": "the go tool",
}


class DocExamples(unittest.TestCase):
    def test_examples_on_fixture_cores(self):
        scratch = os.path.join(hslib.BUILD, "docs-examples")
        os.makedirs(scratch, exist_ok=True)
        bad, ran = [], 0
        for doc, n, cmd, output in examples():
            if any(k in cmd for k in NOT_RUN):
                continue
            core = core_of(cmd)
            if not core:
                continue
            if not os.path.exists(core):
                bad.append("%s:%d: %s: the core %s is missing" % (doc, n, cmd, core))
                continue
            ran += 1
            real = run_example(cmd, scratch)
            vary = "vary from run to run" in cmd or doc in VARY_DOCS
            miss = matches(output, real, process_ids(core), vary)
            if miss is not None:
                bad.append("%s:%d: %s\n  documented line not in the output: %r\n  output:\n%s"
                           % (doc, n, cmd, miss, "\n".join("    " + l for l in real.split("\n")[:40])))
        self.assertGreater(ran, 20)
        self.assertEqual(bad, [], "\n".join(bad))

    def test_placeholder_examples_are_known(self):
        """Examples on a placeholder core: how many, so none is added unseen."""
        placeholders = [(doc, n, cmd) for doc, n, cmd, _ in examples()
                        if not any(k in cmd for k in NOT_RUN) and not core_of(cmd)]
        # Left on a placeholder: info (its paths and pids are the machine's),
        # show outside the heap and top (their outputs change with issue 14's
        # work; give them a fixture core and they are run).  No new ones.
        known = {"heapscope core.1234 info", "heapscope core show 0x7ffff7d85010 --bytes 64",
                 "heapscope core show 0x7ffff7d52e70", "heapscope core top --limit 4 --depth 1"}
        self.assertLessEqual({p[2].split("  #")[0].strip() for p in placeholders}, known, placeholders)


def man_entries():
    """docs/heapscope.1's command entries: {name: the .B line, unescaped}."""
    with open(os.path.join(hslib.ROOT, "docs", "heapscope.1")) as f:
        text = f.read()
    entries = {}
    for m in re.finditer(r"^\.TP\n\.B (.*)$", text, re.M):
        line = re.sub(r"\\f[BIR]", "", m.group(1)).replace("\\-", "-")
        entries.setdefault(line.split()[0], line)
    return entries


class DocsMatchBehaviour(unittest.TestCase):
    def test_man_page_has_every_command_and_option(self):
        """Each command of the table is in the man page with every option it takes."""
        entries = man_entries()
        helptext = hslib.run(["--help"]).stdout
        commands = re.findall(r"^  ([a-z]+)\b", helptext.split("\nCommands:\n")[1].split("\n\n")[0], re.M)
        self.assertIn("summary", commands)
        bad = []
        for name in commands:
            if name not in entries:
                bad.append("%s: not in the man page" % name)
                continue
            cmd_help = hslib.run(["help", name]).stdout
            opts = re.findall(r"^  (-[-\w]+)", cmd_help.split("\nOptions:\n")[1], re.M) if "\nOptions:\n" in cmd_help else []
            for o in opts:
                if o in ("--output", "--no-leaks"):     # the same as -o; the default
                    continue
                if not re.search(r"(^|[\s\[|])%s\b" % re.escape(o), entries[name]):
                    bad.append("%s: %s missing from the man page's '%s'" % (name, o, entries[name]))
        self.assertEqual(bad, [])

    def test_man_page_has_every_global_option(self):
        with open(os.path.join(hslib.ROOT, "docs", "heapscope.1")) as f:
            man = f.read().replace("\\-", "-")
        opts = re.findall(r"^  (--[a-z-]+)", hslib.run(["--help"]).stdout.split("\nOptions:\n")[1].split("\n\n")[0], re.M)
        self.assertIn("--quiet", opts)
        self.assertEqual([o for o in opts if o not in man], [])

    def test_quiet_is_described_one_way_and_does_it(self):
        """--quiet: no progress line on stderr; the output (diagnostics and all) unchanged."""
        core = hslib.core("corrupt_size", "gdb")
        loud = hslib.run(["--progress", core, "summary"])
        quiet = hslib.run(["--progress", "--quiet", core, "summary"])
        self.assertIn("heapscope: ", loud.stderr)
        self.assertEqual(quiet.stderr, "", quiet.describe())
        self.assertEqual(loud.stdout, quiet.stdout)
        self.assertIn("Diagnostics", quiet.stdout)
        self.assertRegex(hslib.run(["--help"]).stdout, r"--quiet +no progress line on stderr")
        for doc in ("cli.md", "gdb.md"):
            with open(os.path.join(hslib.ROOT, "docs", doc)) as f:
                text = f.read()
            self.assertIn("no progress", text[text.index("`--quiet`"):][:200], doc)

    def test_gdb_md_warns_of_pointer_arithmetic(self):
        """`hs show p + 8` is C: eight elements past p; the byte offset is (char *)p + 8."""
        with open(os.path.join(hslib.ROOT, "docs", "gdb.md")) as f:
            text = f.read()
        i = text.index("`hs show p + 8`")
        self.assertIn("(char *)p + 8", text[i:i + 400])

    def test_exit_status_130_in_help(self):
        text = hslib.run(["--help"]).stdout
        self.assertIn("130 SIGINT", text)
        self.assertIn("4 the heap could not be reconstructed", text)


class GdbTranscript(unittest.TestCase):
    def test_core_session_is_what_the_cli_prints(self):
        """gdb.md's session on the threads core: each `(gdb) hs CMD` whose
        arguments are no GDB expression prints what `heapscope CORE CMD` prints
        (GDB and the CLI print the same text: test_gdb's twins)."""
        with open(os.path.join(hslib.ROOT, "docs", "gdb.md")) as f:
            text = f.read()
        block = text.split("## Session: a core")[1].split("```")[1]
        self.assertIn("build/cores/threads.gdb.core", block)
        core = hslib.core("threads", "gdb")
        ids = process_ids(core)
        steps = re.split(r"^\(gdb\) ", block, flags=re.M)[1:]
        ran = 0
        bad = []
        for step in steps:
            cmd, _, out = step.partition("\n")
            words = cmd.split()
            if words[0] not in ("hs", "heapscope") or any(c in cmd for c in "$[>."):
                continue
            args = words[1:]
            # JSON is checked by test_gdb; GDB's own errors name GDB's terms.
            if (args and args[0] == "--json") or out.startswith("heapscope "):
                continue
            ran += 1
            r = hslib.run([core] + args)
            miss = matches(out.rstrip("\n").split("\n"), r.stdout, ids)
            if miss is not None:
                bad.append("(gdb) %s: %r not in\n%s" % (cmd, miss, r.stdout))
        self.assertGreaterEqual(ran, 3)
        self.assertEqual(bad, [], "\n".join(bad))
