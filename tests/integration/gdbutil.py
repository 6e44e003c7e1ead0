"""gdbutil - what the GDB extension tests (test_gdb.py, test_live.py) share:
the build's CLI, library and extension, a scratch directory, small C programs
compiled once, and `gdb -batch -nx` runs whose commands are tagged by a helper
so that each command's output, error or value can be picked out (Session).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import hslib

ROOT = hslib.ROOT
BUILD = hslib.BUILD
CLI = hslib.HEAPSCOPE
LIB = os.path.join(BUILD, "libheapscope.so")
EXT = os.path.join(ROOT, "gdb", "heapscope.py")
CRASH_MARKS = ("Traceback", "Python Exception", "Fatal signal", "Segmentation fault",
               "internal-error", "AddressSanitizer")


class Scratch:
    """A temporary directory, made on first use: call it for its path."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.path = None

    def __call__(self):
        if self.path is None:
            self.path = tempfile.mkdtemp(prefix=self.prefix)
        return self.path

    def remove(self):
        if self.path:
            shutil.rmtree(self.path, ignore_errors=True)


def need_build():
    for path in (CLI, LIB):
        if not os.path.exists(path):
            raise AssertionError("%s is not built (run make)" % path)
    if not shutil.which("gdb"):
        raise unittest.SkipTest("gdb is not installed")


def compile_once(exe, src, text, *flags):
    """exe, built from the C text (written to src) with gcc -g -O0 flags, unless it exists."""
    if not os.path.exists(exe):
        with open(src, "w") as f:
            f.write(text)
        subprocess.run(["gcc", "-g", "-O0"] + list(flags) + ["-o", exe, src], check=True)
    return exe


def cli(*args, timeout=300):
    return subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=timeout,
                          errors="replace")


def cli_json(*args):
    r = cli("--json", *args)
    if r.returncode != 0:
        raise AssertionError("heapscope --json %s: exit %d\n%s" % (" ".join(args), r.returncode,
                                                                   r.stderr[-2000:]))
    return json.loads(r.stdout)


def doc_diff(got, want):
    """The keys in which two documents differ, and both documents cut to those keys."""
    diff = [k for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    return (diff, json.dumps({k: got.get(k) for k in diff})[:1500],
            json.dumps({k: want.get(k) for k in diff})[:1500])


# Sourced into gdb: _hs_case runs a command between @@BEGIN and @@OK/@@ERROR
# lines, _hs_value prints an expression's value.
HELPER = r'''
import gdb
def _hs_case(tag, cmd):
    gdb.write("\n@@BEGIN %s\n" % tag)
    try:
        gdb.execute(cmd)
        gdb.write("\n@@OK %s\n" % tag)
    except gdb.error as e:
        gdb.write("\n@@ERROR %s: %s\n" % (tag, str(e).replace("\n", " | ")))
def _hs_value(tag, expr):
    gdb.write("\n@@VALUE %s %d\n" % (tag, int(gdb.parse_and_eval(expr)) & 0xffffffffffffffff))
'''


class Session:
    """One `gdb -batch -nx` run: results by tag."""
    crash_marks = CRASH_MARKS

    def __init__(self, output, status):
        self.output = output
        self.status = status
        self.results = {}
        for m in re.finditer(r"\n@@BEGIN (\S+)\n(.*?)\n@@(OK|ERROR) \1(?:: ([^\n]*))?\n",
                             output, re.S):
            tag, body, how, err = m.groups()
            self.results[tag] = (how == "OK", body, err)
        self.values = {t: int(v) for t, v in re.findall(r"\n@@VALUE (\S+) (\d+)\n", output)}

    def ok(self, tag):
        if tag not in self.results:
            raise AssertionError("no result for %s in the gdb output:\n%s" % (tag, self.output[-3000:]))
        ok, body, err = self.results[tag]
        if not ok:
            raise AssertionError("%s failed in gdb: %s" % (tag, err))
        return body

    def json(self, tag):
        body = self.ok(tag)
        try:
            return json.loads(body)
        except ValueError as e:
            raise AssertionError("%s: not one JSON document (%s):\n%s" % (tag, e, body[:2000]))

    def error(self, tag):
        if tag not in self.results:
            raise AssertionError("no result for %s in the gdb output:\n%s" % (tag, self.output[-3000:]))
        ok, body, err = self.results[tag]
        if ok:
            raise AssertionError("%s succeeded in gdb, expected an error:\n%s" % (tag, body[:1000]))
        return err

    def check_alive(self, testcase):
        testcase.assertIn("@@ALIVE", self.output, "gdb did not reach its last command:\n" + self.output[-3000:])
        for mark in self.crash_marks:
            testcase.assertNotIn(mark, self.output, "gdb output shows %r:\n%s" % (mark, self.output[-3000:]))


def batch_args(d, helper=HELPER, source=EXT):
    """The start of a `gdb -batch -nx` command line: helper (written into d) and
    the extension source (none if empty) sourced."""
    path = os.path.join(d, "helper.py")
    with open(path, "w") as f:
        f.write(helper)
    args = ["gdb", "-batch", "-nx", "-iex", "set auto-load off", "-ex", "set pagination off",
            "-ex", "set width 0", "-ex", "source " + path]
    if source:
        args += ["-ex", "source " + source]
    return args


def gdb_env(env=None):
    """The environment for a gdb that loads libheapscope.so.  Under `make asan`
    (HS_ASAN=1) the library is built with AddressSanitizer, whose runtime would
    have to come first in gdb, and gdb 13 with the runtime preloaded hangs in
    setlocale at start-up: those tests are skipped there (the same library runs
    under ASan through the CLI tests)."""
    if os.environ.get("HS_ASAN"):
        raise unittest.SkipTest("an ASan-built library cannot be loaded into gdb")
    return dict(os.environ if env is None else env)


def run_batch(args, timeout, session=Session, env=None, show_args=False):
    """Run gdb with args and a last command that prints @@ALIVE; a session of its output.
    A timeout is a test failure (naming the command line if show_args)."""
    args = args + ["-ex", "echo \\n@@ALIVE\\n"]
    env = gdb_env(env)
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace", timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        if show_args:
            raise AssertionError("gdb did not finish within %d s: %s" % (timeout, " ".join(args)))
        raise AssertionError("gdb did not finish within %d s" % timeout)
    return session(p.stdout, p.returncode)


def main(module, scratch):
    """Run a test module alone: NAME_PATTERN... and -v from the command line; the
    last line is "N passed, N failed"; the scratch directory is removed."""
    patterns = [a for a in sys.argv[1:] if not a.startswith("-")]
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = ["*%s*" % p for p in patterns]
    suite = loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(verbosity=2 if "-v" in sys.argv else 1, stream=sys.stderr)
    try:
        result = runner.run(suite)
    finally:
        scratch.remove()
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    if result.skipped:
        print("%d skipped" % len(result.skipped))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
