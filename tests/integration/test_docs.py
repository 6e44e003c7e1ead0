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


NUMBER = re.compile(r"(0x)?[0-9a-f]*[0-9][0-9a-f.]*")
# Paths of the build the docs were made in.
BUILD_PATH = re.compile(r"/\S*/build/cores/")


def same_line(want, got, ids, vary=False):
    """Equal, but for a thread id or pid where the output has one; with vary
    (the example says its numbers vary from run to run), every number."""
    want, got = BUILD_PATH.sub("build/cores/", want), BUILD_PATH.sub("build/cores/", got)
    if vary:
        want, got = NUMBER.sub("#", want), NUMBER.sub("#", got)
    if want == got:
        return True
    # "a; ... ;b": the docs cut a long line.
    if " ... " in want and re.fullmatch(".*".join(re.escape(p) for p in want.split(" ... ")), got):
        return True
    w, g = want.split(" "), got.split(" ")
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
# TestMimallocDocs, TestTcmallocDocs): threads race, kernel cores have ASLR.
VARY_DOCS = {"mimalloc.md", "tcmalloc.md"}

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
        self.assertEqual([p for p in placeholders if "heapscope core" not in p[2]
                          and "heapscope core.1234" not in p[2]], [])
